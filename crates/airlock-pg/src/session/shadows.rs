//! What a role that is no superuser could put in the way of a superuser's unqualified
//! names (DESIGN §5.1: "a superuser session never … writes a relation a non-superuser
//! could change"; the "or may create there" of issue 86; CVE-2018-1058's shape).
//!
//! Bundle SQL names functions, operators and types without a schema and PostgreSQL
//! looks them up along the search_path: `pg_catalog` first, then the bundle's schemas.
//! A function a role makes in one of those schemas with a better-matching signature
//! (`public.lower(varchar)` against `pg_catalog.lower(text)`) is called in place of the
//! one meant, with the caller's rights: a superuser's, for bundle SQL that runs as one.
//! Locks cannot hold back what does not exist yet, so where such a role owns a schema
//! of the path, may create in one (PUBLIC may in `public` on PostgreSQL 14 and older),
//! may create a schema of the path not made yet, or already owns a function, operator
//! or type in one, superuser bundle SQL is refused; the privileges themselves change
//! only at a superuser's (or the schema owner's, already refused) hand.
//!
//! Invariant: read from catalogs every role may read, in the caller's transaction; names
//! made text by their type's output function (`pg_catalog.format('%s', …)`, as
//! the door's `text_of`), never a cast a role could have made; the
//! trusted roles are the same as [`super::owner_code`]'s (superusers, the login, and
//! `pg_database_owner` when the database's owner is one of those).

use super::owner_code::{trusted_roles, OwnerCode};
use crate::{sql_err, DbError};
use postgres::GenericClient;

/// Each entry a row (kind, object, owner). `$1`: the search_path's schema names.
const QUERY: &str = concat!(
    trusted_roles!(),
    r#",
path AS MATERIALIZED (
  SELECT e.name, n.oid, n.nspowner,
         pg_catalog.aclexplode(COALESCE(n.nspacl, pg_catalog.acldefault('n', n.nspowner))) AS a
    FROM pg_catalog.unnest($1::pg_catalog.text[]) AS e(name)
    LEFT JOIN pg_catalog.pg_namespace n ON n.nspname OPERATOR(pg_catalog.=) e.name
   WHERE e.name OPERATOR(pg_catalog.<>) ALL (ARRAY['pg_catalog', 'pg_temp']::pg_catalog.text[])
),
who AS (
  SELECT p.name, p.oid, p.nspowner, (p.a).grantee AS grantee, (p.a).privilege_type AS privilege
    FROM path p
),
there AS (
  SELECT DISTINCT w.name, w.oid FROM who w WHERE w.oid IS NOT NULL
)
SELECT 'schema',
       pg_catalog.format('schema %I of the search_path is owned by %s, which is no superuser',
                         s.name, pg_catalog.pg_get_userbyid(s.nspowner)),
       pg_catalog.format('%s', pg_catalog.pg_get_userbyid(s.nspowner))
  FROM (SELECT DISTINCT w.name, w.nspowner FROM who w WHERE w.oid IS NOT NULL) s, trusted t
 WHERE s.nspowner OPERATOR(pg_catalog.<>) ALL (t.oids)
UNION ALL
SELECT 'schema',
       pg_catalog.format('%s may create in schema %I of the search_path',
                         CASE WHEN w.grantee OPERATOR(pg_catalog.=) 0::pg_catalog.oid THEN 'PUBLIC'
                              ELSE pg_catalog.format('%s', pg_catalog.pg_get_userbyid(w.grantee)) END, w.name),
       pg_catalog.format('%s', pg_catalog.pg_get_userbyid(w.nspowner))
  FROM who w, trusted t
 WHERE w.oid IS NOT NULL AND w.privilege OPERATOR(pg_catalog.=) 'CREATE'
   AND w.grantee OPERATOR(pg_catalog.<>) ALL (t.oids)
   AND w.grantee OPERATOR(pg_catalog.<>) w.nspowner
UNION ALL
SELECT 'schema',
       pg_catalog.format('%s may create schema %I of the search_path (not there yet)',
                         CASE WHEN (d.a).grantee OPERATOR(pg_catalog.=) 0::pg_catalog.oid THEN 'PUBLIC'
                              ELSE pg_catalog.format('%s', pg_catalog.pg_get_userbyid((d.a).grantee)) END, m.name),
       pg_catalog.format('%s', pg_catalog.pg_get_userbyid(d.datdba))
  FROM (SELECT DISTINCT w.name FROM who w WHERE w.oid IS NULL) m,
       (SELECT db.datdba, pg_catalog.aclexplode(COALESCE(db.datacl, pg_catalog.acldefault('d', db.datdba))) AS a
          FROM pg_catalog.pg_database db
         WHERE db.datname OPERATOR(pg_catalog.=) pg_catalog.current_database()) d, trusted t
 WHERE (d.a).privilege_type OPERATOR(pg_catalog.=) 'CREATE'
   AND (d.a).grantee OPERATOR(pg_catalog.<>) ALL (t.oids)
UNION ALL
SELECT 'function',
       pg_catalog.format('function %s, in schema %I of the search_path', f.oid::pg_catalog.regprocedure, s.name),
       pg_catalog.format('%s', pg_catalog.pg_get_userbyid(f.proowner))
  FROM there s
  JOIN pg_catalog.pg_proc f ON f.pronamespace OPERATOR(pg_catalog.=) s.oid, trusted t
 WHERE f.proowner OPERATOR(pg_catalog.<>) ALL (t.oids)
UNION ALL
SELECT 'operator',
       pg_catalog.format('operator %s, in schema %I of the search_path', o.oid::pg_catalog.regoperator, s.name),
       pg_catalog.format('%s', pg_catalog.pg_get_userbyid(o.oprowner))
  FROM there s
  JOIN pg_catalog.pg_operator o ON o.oprnamespace OPERATOR(pg_catalog.=) s.oid, trusted t
 WHERE o.oprowner OPERATOR(pg_catalog.<>) ALL (t.oids)
UNION ALL
SELECT 'type',
       pg_catalog.format('type %s, in schema %I of the search_path', ty.oid::pg_catalog.regtype, s.name),
       pg_catalog.format('%s', pg_catalog.pg_get_userbyid(ty.typowner))
  FROM there s
  JOIN pg_catalog.pg_type ty ON ty.typnamespace OPERATOR(pg_catalog.=) s.oid, trusted t
 WHERE ty.typowner OPERATOR(pg_catalog.<>) ALL (t.oids)
   AND ty.typrelid OPERATOR(pg_catalog.=) 0::pg_catalog.oid
   AND NOT EXISTS (SELECT FROM pg_catalog.pg_type e WHERE e.typarray OPERATOR(pg_catalog.=) ty.oid)
"#
);

/// What a role that is no superuser owns in, or may create in, the schemas of
/// `search_path` (each entry a schema's name; `$user` already resolved): empty when
/// unqualified names in a superuser's session resolve only to what superusers made.
pub fn find(
    client: &mut impl GenericClient,
    search_path: &[String],
) -> Result<Vec<OwnerCode>, DbError> {
    let rows = client
        .query_typed(QUERY, &[(&search_path, postgres::types::Type::TEXT_ARRAY)])
        .map_err(|e| {
            sql_err(
                "looking for what a non-superuser may put in the search_path",
                &e,
            )
        })?;
    Ok(rows
        .iter()
        .map(|r| OwnerCode {
            kind: r.get(0),
            object: r.get(1),
            owner: r.get(2),
        })
        .collect())
}
