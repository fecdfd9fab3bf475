//! The gate role's grants for a gate or probe the server cannot resolve now (it reads
//! what the release creates), derived from the names its text gives
//! ([`airlock_sql::reads_of`]) and what the target holds now: USAGE on each schema and
//! SELECT on each relation, either grantable now (it exists) or only once the release
//! made it. A name given as text to `to_regclass` (or cast to `regclass`) needs USAGE on
//! its schema only.
//!
//! Invariant: fail closed. What cannot be told by name (an unqualified name with no
//! schema to fall in, a user function whose body may read more, a statement the parser
//! refuses) is reported, never silently left out.

use crate::session::hermetic::BundlePins;
use crate::{sql_err, DbError};
use postgres::Transaction;
use std::collections::BTreeSet;

/// What the gate role needs, split by when it can be granted.
#[derive(Default)]
pub(crate) struct Needs {
    pub schemas_now: BTreeSet<String>,
    pub relations_now: BTreeSet<String>,
    pub schemas_after: BTreeSet<String>,
    pub relations_after: BTreeSet<String>,
    pub not_derived: BTreeSet<String>,
}

/// One name looked up: (quoted schema, quoted qualified name, schema exists, relation
/// exists), or None when it falls in no schema (unqualified, and the bundle's
/// search_path names no schema that exists).
type Found = Option<(String, String, bool, bool)>;

/// Under the bundle's search_path (the prelude of the savepoint): the schema a name
/// falls in (as written, else where it is found now, else the first schema of the
/// search_path that exists, where the release would create it), quoted, and whether
/// the schema and the relation exist.
const LOOKUP: &str = "
WITH s AS (
  SELECT COALESCE($1::pg_catalog.text,
           (SELECT n.nspname::pg_catalog.text FROM pg_catalog.pg_class c
              JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
             WHERE c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass(pg_catalog.quote_ident($2::pg_catalog.text))),
           pg_catalog.current_schema()::pg_catalog.text) AS nsp)
SELECT pg_catalog.quote_ident(s.nsp),
       pg_catalog.quote_ident(s.nsp) OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) pg_catalog.quote_ident($2::pg_catalog.text),
       EXISTS (SELECT FROM pg_catalog.pg_namespace n WHERE n.nspname OPERATOR(pg_catalog.=) s.nsp),
       EXISTS (SELECT FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
                WHERE n.nspname OPERATOR(pg_catalog.=) s.nsp AND c.relname OPERATOR(pg_catalog.=) $2::pg_catalog.text),
       s.nsp IN ('pg_catalog', 'information_schema')
  FROM s";

/// User functions (outside `pg_catalog`) by name.
const USER_FUNCTION: &str = "SELECT EXISTS (SELECT FROM pg_catalog.pg_proc p
  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) p.pronamespace
 WHERE p.proname OPERATOR(pg_catalog.=) $1::pg_catalog.text
   AND n.nspname NOT IN ('pg_catalog', 'information_schema'))";

fn lookup(
    tx: &mut Transaction<'_>,
    schema: Option<&str>,
    name: &str,
) -> Result<Option<Found>, DbError> {
    let r = tx
        .query_one(LOOKUP, &[&schema, &name])
        .map_err(|e| sql_err("looking up what a gate or probe reads", &e))?;
    let (quoted, qualified): (Option<String>, Option<String>) = (r.get(0), r.get(1));
    let catalog: Option<bool> = r.get(4);
    if catalog == Some(true) {
        return Ok(None);
    }
    Ok(Some(
        quoted
            .zip(qualified)
            .map(|(q, qq)| (q, qq, r.get(2), r.get(3))),
    ))
}

/// What `sql` (of `file`) needs by name, added to `needs`: every relation it names
/// when `all` (the server could not resolve it), else only the names it gives as text
/// (its relations were resolved by the server). `Err(reason)` when the text gives no
/// names to go by.
pub(crate) fn by_name(
    tx: &mut Transaction<'_>,
    pins: &BundlePins,
    (file, sql): (&str, &str),
    all: bool,
    needs: &mut Needs,
) -> Result<Result<(), String>, DbError> {
    let reads = match airlock_sql::reads_of(sql) {
        Ok(r) => r,
        Err(e) => return Ok(Err(e)),
    };
    let mut sp = tx.transaction().map_err(|e| sql_err("savepoint", &e))?;
    sp.batch_execute(&pins.prelude())
        .map_err(|e| sql_err("the bundle's settings", &e))?;
    let (relations, functions) = if all {
        (&reads.relations[..], &reads.functions[..])
    } else {
        (&[][..], &[][..])
    };
    for (schema, name) in relations {
        match lookup(&mut sp, schema.as_deref(), name)? {
            None => {}
            Some(None) => {
                needs.not_derived.insert(format!(
                    "{file}: {name} (unqualified, and no schema of the bundle's search_path exists)"
                ));
            }
            Some(Some((s, rel, schema_now, rel_now))) => {
                if schema_now {
                    &mut needs.schemas_now
                } else {
                    &mut needs.schemas_after
                }
                .insert(s);
                if rel_now {
                    &mut needs.relations_now
                } else {
                    &mut needs.relations_after
                }
                .insert(rel);
            }
        }
    }
    regclass_schemas(&mut sp, file, &reads.regclass_texts, needs)?;
    for f in functions {
        let user: bool = sp
            .query_one(USER_FUNCTION, &[f])
            .map_err(|e| sql_err("looking up a function a probe calls", &e))?
            .get(0);
        if user {
            needs.not_derived.insert(format!("{f}() (in {file})"));
        }
    }
    sp.rollback()
        .map_err(|e| sql_err("rolling back the grants savepoint", &e))?;
    Ok(Ok(()))
}

/// USAGE on the schemas of relation names given as text (`to_regclass('app.t')`).
pub(crate) fn regclass_schemas(
    tx: &mut Transaction<'_>,
    file: &str,
    texts: &[String],
    needs: &mut Needs,
) -> Result<(), DbError> {
    for text in texts {
        let parts: Option<Vec<String>> = tx
            .query_one(
                "SELECT pg_catalog.parse_ident($1::pg_catalog.text, false)",
                &[text],
            )
            .ok()
            .map(|r| r.get(0));
        let parts = parts.unwrap_or_default();
        let (schema, name) = match parts.as_slice() {
            [.., s, n] => (Some(s.as_str()), n.as_str()),
            [n] => (None, n.as_str()),
            [] => {
                needs
                    .not_derived
                    .insert(format!("{file}: the relation named by {text:?}"));
                continue;
            }
        };
        if let Some(Some((s, _, schema_now, _))) = lookup(tx, schema, name)? {
            if schema_now {
                &mut needs.schemas_now
            } else {
                &mut needs.schemas_after
            }
            .insert(s);
        }
    }
    Ok(())
}
