//! The least the gate role needs: the `GRANT` statements that let it run exactly the
//! bundle's gates and probes, instead of `pg_read_all_data` (which includes
//! `pg_authid`, and so every password hash, for whatever code runs as the gate role).
//!
//! The server derives them, the same way in both builds: each gate and probe becomes a
//! temporary view (as airlock's own role, under the bundle's pinned search_path, in a
//! savepoint that is always rolled back), and the view's recorded dependencies are
//! exactly the relations and functions the statement names, resolved as PostgreSQL
//! resolves them — a view read counts as the view, not what it reads (its owner's
//! grants cover those). The gate role gets SELECT on those relations and USAGE on
//! their schemas; `pg_catalog` and `information_schema` need no grant (what they hide
//! stays hidden).
//!
//! Invariant: fail closed. A statement the server cannot resolve now (it reads what
//! the release creates) is listed as unresolved with the server's reason, and the
//! functions whose reads cannot be derived (user functions, whose bodies may read
//! more; `query_to_xml` and kin, which read a query given as text) are named, so the
//! list never silently claims to be complete.

use crate::gates::named_reads::{by_name, Needs};
use crate::session::hermetic::BundlePins;
use crate::{pg_message, sql_err, DbError};
use postgres::types::Type;
use postgres::Transaction;
use schemars::JsonSchema;
use serde::Serialize;
use std::collections::BTreeSet;

/// A gate or probe file whose relations the server could not resolve.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Unresolved {
    pub file: String,
    /// The server's reason (e.g. a relation the release creates does not exist yet).
    pub reason: String,
}

/// What the gate role needs to run this bundle's gates and probes.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct GateGrants {
    /// The role the grants are for.
    pub role: String,
    /// Run once by a superuser (or the objects' owner): USAGE on the schemas, then
    /// SELECT on the relations the gates and probes read, that the role lacks now.
    pub statements: Vec<String>,
    /// The grants of the same kind the role holds already (given earlier, through a
    /// role it is a member of, or PUBLIC): in place, nothing to run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub in_place: Vec<String>,
    /// What the release itself creates and the gates and probes read (the schemas
    /// and relations do not exist yet): these grants can only run once it exists, so
    /// give them in the tier that creates it (the verify probe runs inside the apply's
    /// transaction, right after the tiers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after_release: Vec<String>,
    /// Files whose reads could not be derived, not even by name; grant what they read
    /// by hand (or from the tier that creates it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unresolved: Vec<Unresolved>,
    /// Functions the gates and probes call whose reads are not derived (user
    /// functions' bodies, `query_to_xml` and kin); what they read needs its own grant.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_derived: Vec<String>,
}

impl GateGrants {
    /// The statements and caveats as lines for a human.
    pub fn lines(&self) -> Vec<String> {
        let mut out = self.statements.clone();
        if !self.after_release.is_empty() {
            out.push(format!(
                "-- for what the release creates (grant it in the tier that creates it; the verify probe runs in the apply's transaction): {}",
                self.after_release.join(" ")
            ));
        }
        for u in &self.unresolved {
            out.push(format!(
                "-- {}: not derived ({}); grant what it reads once it exists",
                u.file, u.reason
            ));
        }
        if !self.not_derived.is_empty() {
            out.push(format!(
                "-- not derived (what these read needs its own grant): {}",
                self.not_derived.join(", ")
            ));
        }
        out
    }

    /// The grants in place, as privileges (`USAGE ON SCHEMA ex; SELECT ON ex.t`):
    /// said, not printed as statements to run.
    pub fn held(&self) -> String {
        let suffix = format!(" TO {};", ident(&self.role));
        self.in_place
            .iter()
            .map(|g| {
                let g = g.strip_prefix("GRANT ").unwrap_or(g);
                g.strip_suffix(suffix.as_str()).unwrap_or(g).to_string()
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Built-in functions that run a query given as text: what it reads is invisible here.
/// Built-ins are pinned, so no dependency on them is recorded; they are found by name
/// in the server's own rendering of the statement (comments and quoting normalised).
const DYNAMIC: &str = r"\m(query_to_xml|query_to_xmlschema|query_to_xml_and_xmlschema|cursor_to_xml|cursor_to_xmlschema|database_to_xml|database_to_xmlschema|database_to_xml_and_xmlschema|schema_to_xml|schema_to_xmlschema|schema_to_xml_and_xmlschema|table_to_xml|table_to_xmlschema|table_to_xml_and_xmlschema)\s*\(";

const VIEW: &str = "pg_temp.airlock_gate_grants";

/// One gate or probe of the bundle.
pub struct BundleQuery {
    pub file: String,
    pub sql: String,
    /// A probe (gates and probes alike run through a function in `pg_temp`, which
    /// needs TEMPORARY on the database).
    pub probe: bool,
}

/// Derive the grants `role` needs for `queries` in savepoints of `tx` that are always
/// rolled back. Runs as the connecting role.
pub fn derive(
    tx: &mut Transaction<'_>,
    pins: &BundlePins,
    role: &str,
    queries: &[BundleQuery],
) -> Result<GateGrants, DbError> {
    let mut needs = Needs::default();
    let mut unresolved = vec![];
    for BundleQuery { file, sql, .. } in queries {
        let resolved = resolve(tx, pins, sql, &mut needs)?;
        // What the server could not resolve (it reads what the release creates) is
        // derived from the names it gives; names given as text always are.
        if let Some(why) = by_name(tx, pins, (file, sql), resolved.is_err(), &mut needs)?.err() {
            unresolved.push(Unresolved {
                file: file.clone(),
                reason: resolved.err().unwrap_or(why),
            });
        }
    }
    let quoted: String = tx
        .query_one("SELECT pg_catalog.quote_ident($1)", &[&role])
        .map_err(|e| sql_err("quoting the gate role", &e))?
        .get(0);
    let held = held_now(tx, role, &needs)?;
    let (schemas_held, schemas_missing) = split(&needs.schemas_now, &held);
    let (relations_held, relations_missing) = split(&needs.relations_now, &held);
    let mut statements = grants(&schemas_missing, &relations_missing, &quoted);
    let in_place = grants(&schemas_held, &relations_held, &quoted);
    let temp: bool = tx
        .query_one(TEMP_ALLOWED, &[&role])
        .map_err(|e| sql_err("checking TEMP on the database", &e))?
        .get(0);
    if !temp && !queries.is_empty() {
        let db: String = tx
            .query_one(
                "SELECT pg_catalog.quote_ident(pg_catalog.current_database()::pg_catalog.text)",
                &[],
            )
            .map_err(|e| sql_err("naming the database", &e))?
            .get(0);
        statements.push(format!("GRANT TEMPORARY ON DATABASE {db} TO {quoted};"));
    }
    Ok(GateGrants {
        role: role.into(),
        statements,
        in_place,
        after_release: grants(&needs.schemas_after, &needs.relations_after, &quoted),
        unresolved,
        not_derived: needs.not_derived.into_iter().collect(),
    })
}

/// Whether the role holds USAGE on a schema, SELECT on a relation, by the object's own
/// privileges: granted to it, to a role it is a member of, or to PUBLIC (an owner's
/// implicit ones included). Never through `pg_read_all_data` or superuser, which no
/// object's privileges name: the list is what replaces them.
const HELD: &str = "
SELECT x.name FROM ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3)) AS x(name, schema)
 WHERE EXISTS (SELECT FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) $1)
   AND CASE WHEN x.schema
  THEN EXISTS (SELECT FROM pg_catalog.pg_namespace n,
                      pg_catalog.aclexplode(COALESCE(n.nspacl, pg_catalog.acldefault('n', n.nspowner))) a
                WHERE n.oid OPERATOR(pg_catalog.=) pg_catalog.to_regnamespace(x.name)
                  AND a.privilege_type OPERATOR(pg_catalog.=) 'USAGE'
                  AND (a.grantee OPERATOR(pg_catalog.=) 0::pg_catalog.oid
                       OR pg_catalog.pg_has_role($1, a.grantee, 'USAGE')))
  ELSE EXISTS (SELECT FROM pg_catalog.pg_class c,
                      pg_catalog.aclexplode(COALESCE(c.relacl, pg_catalog.acldefault(CASE WHEN c.relkind OPERATOR(pg_catalog.=) 'S' THEN 's' ELSE 'r' END::pg_catalog.\"char\", c.relowner))) a
                WHERE c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass(x.name)
                  AND a.privilege_type OPERATOR(pg_catalog.=) 'SELECT'
                  AND (a.grantee OPERATOR(pg_catalog.=) 0::pg_catalog.oid
                       OR pg_catalog.pg_has_role($1, a.grantee, 'USAGE'))) END";

/// The schemas and relations of `needs` (now) the role holds already.
fn held_now(
    tx: &mut Transaction<'_>,
    role: &str,
    needs: &Needs,
) -> Result<BTreeSet<String>, DbError> {
    let (names, schemas): (Vec<&String>, Vec<bool>) = needs
        .schemas_now
        .iter()
        .map(|s| (s, true))
        .chain(needs.relations_now.iter().map(|r| (r, false)))
        .unzip();
    // One round trip for every name, each typed by its parameter (no cast).
    let rows = tx
        .query_typed(
            HELD,
            &[
                (&role, Type::NAME),
                (&names, Type::TEXT_ARRAY),
                (&schemas, Type::BOOL_ARRAY),
            ],
        )
        .map_err(|e| sql_err("reading the gate role's grants", &e))?;
    Ok(rows.iter().map(|r| r.get::<_, String>(0)).collect())
}

/// `names` split into those in `held` and the others.
fn split(
    names: &BTreeSet<String>,
    held: &BTreeSet<String>,
) -> (BTreeSet<String>, BTreeSet<String>) {
    names.iter().cloned().partition(|n| held.contains(n))
}

/// `GRANT USAGE` on `schemas` and `GRANT SELECT` on `relations` to `quoted`.
fn grants(schemas: &BTreeSet<String>, relations: &BTreeSet<String>, quoted: &str) -> Vec<String> {
    let mut out = vec![];
    if !schemas.is_empty() {
        out.push(format!(
            "GRANT USAGE ON SCHEMA {} TO {quoted};",
            schemas.iter().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    if !relations.is_empty() {
        out.push(format!(
            "GRANT SELECT ON {} TO {quoted};",
            relations.iter().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    out
}

/// What the server resolves `sql` to now, added to `needs`; `Err(reason)` when it
/// cannot (a relation the release creates does not exist yet).
fn resolve(
    tx: &mut Transaction<'_>,
    pins: &BundlePins,
    sql: &str,
    needs: &mut Needs,
) -> Result<Result<(), String>, DbError> {
    let mut sp = tx.transaction().map_err(|e| sql_err("savepoint", &e))?;
    let body = sql.trim_end().trim_end_matches(';');
    // One door: the temporary view would fire an enabled DDL event trigger; the
    // guard refuses first, naming it.
    let made = sp.batch_execute(&format!(
        "{}{}; CREATE TEMPORARY VIEW {VIEW} AS {body}\n; SET LOCAL search_path = pg_catalog, pg_temp",
        pins.prelude(),
        crate::door::EVENT_GUARD
    ));
    let out = match made {
        Err(e) => Err(pg_message(&e)),
        Ok(()) => {
            for r in sp
                .query(&dependencies(), &[])
                .map_err(|e| sql_err("reading what a gate or probe reads", &e))?
            {
                let (kind, schema, name): (String, String, String) = (r.get(0), r.get(1), r.get(2));
                match kind.as_str() {
                    "relation" => {
                        needs.schemas_now.insert(schema);
                        needs.relations_now.insert(name);
                    }
                    "function" => {
                        needs.schemas_now.insert(schema);
                        needs.not_derived.insert(name);
                    }
                    _ => {
                        needs.not_derived.insert(name);
                    }
                }
            }
            Ok(())
        }
    };
    sp.rollback()
        .map_err(|e| sql_err("rolling back the grants savepoint", &e))?;
    Ok(out)
}

/// Whether the role (or, when it does not exist, PUBLIC) may create temporary objects
/// here: gates and probes run through a function in `pg_temp` created as the gate role.
const TEMP_ALLOWED: &str = "
SELECT CASE WHEN EXISTS (SELECT FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) $1)
  THEN pg_catalog.has_database_privilege($1, pg_catalog.current_database(), 'TEMPORARY')
  ELSE EXISTS (SELECT FROM pg_catalog.pg_database d,
                      pg_catalog.aclexplode(COALESCE(d.datacl, pg_catalog.acldefault('d', d.datdba))) a
                WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database()
                  AND a.grantee OPERATOR(pg_catalog.=) 0::pg_catalog.oid
                  AND a.privilege_type OPERATOR(pg_catalog.=) 'TEMPORARY') END";

/// What the temporary view depends on: relations (kind, schema, qualified name) and
/// functions outside `pg_catalog` (schema, signature), and the dynamic-SQL functions
/// in it. Schema-qualified through `quote_ident`, run under `pg_catalog, pg_temp`.
fn dependencies() -> String {
    format!(
        "
WITH deps AS (
  SELECT DISTINCT d.refclassid, d.refobjid
    FROM pg_catalog.pg_depend d
    JOIN pg_catalog.pg_rewrite w ON w.oid OPERATOR(pg_catalog.=) d.objid
   WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_rewrite'::pg_catalog.regclass
     AND w.ev_class OPERATOR(pg_catalog.=) '{VIEW}'::pg_catalog.regclass
     AND d.refobjid OPERATOR(pg_catalog.<>) w.ev_class)
SELECT 'relation', pg_catalog.quote_ident(n.nspname::pg_catalog.text),
       pg_catalog.quote_ident(n.nspname::pg_catalog.text) OPERATOR(pg_catalog.||) '.'
         OPERATOR(pg_catalog.||) pg_catalog.quote_ident(c.relname::pg_catalog.text)
  FROM deps JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) deps.refobjid
  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
 WHERE deps.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
   AND c.relkind IN ('r', 'v', 'm', 'f', 'p', 'S')
   AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.oid OPERATOR(pg_catalog.<>) pg_catalog.pg_my_temp_schema()
UNION ALL
SELECT 'function', pg_catalog.quote_ident(n.nspname::pg_catalog.text),
       p.oid::pg_catalog.regprocedure::pg_catalog.text
  FROM deps JOIN pg_catalog.pg_proc p ON p.oid OPERATOR(pg_catalog.=) deps.refobjid
  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) p.pronamespace
 WHERE deps.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
   AND n.nspname NOT IN ('pg_catalog', 'information_schema')
UNION ALL
SELECT DISTINCT 'dynamic', '', m[1] OPERATOR(pg_catalog.||) '()'
  FROM pg_catalog.regexp_matches(pg_catalog.pg_get_viewdef('{VIEW}'::pg_catalog.regclass), $re${DYNAMIC}$re$, 'g') m
ORDER BY 1, 3"
    )
}

/// Every gate and probe of the bundle (each file once): what the gate role must read.
pub fn bundle_queries(
    vb: &airlock_bundle::verified::VerifiedBundle,
) -> Result<Vec<BundleQuery>, DbError> {
    let m = vb.manifest();
    let mut out: Vec<BundleQuery> = vec![];
    for (_, file, sql) in crate::gates::listed::all_gates(vb)? {
        out.push(BundleQuery {
            file,
            sql,
            probe: false,
        });
    }
    let probes = [
        m.preflight.as_ref().map(|p| p.file.clone()),
        m.verify.as_ref().map(|v| v.file.clone()),
        m.rollback.as_ref().and_then(|r| {
            r.probe
                .clone()
                .or_else(|| m.preflight.as_ref().map(|p| p.file.clone()))
        }),
    ];
    for file in probes.into_iter().flatten() {
        if out.iter().any(|q| q.file == file) {
            continue;
        }
        let sql = vb.sql(&file).map_err(|e| DbError::State(e.to_string()))?;
        out.push(BundleQuery {
            file,
            sql: sql.to_string(),
            probe: true,
        });
    }
    // The approvals table `[ratification]` names: the gate role reads it too.
    if let Some((schema, name)) = m.ratification.as_ref().and_then(|r| r.table_parts()) {
        out.push(BundleQuery {
            file: "[ratification] table".into(),
            sql: format!(
                "SELECT document, signature FROM {}.{}",
                crate::quote_ident(schema),
                crate::quote_ident(name)
            ),
            probe: false,
        });
    }
    Ok(out)
}

/// The exact grant the server's refusal `e` (SQLSTATE 42501) says `role` lacks, when it
/// names one: USAGE on a schema, SELECT on a relation, EXECUTE on a function, TEMPORARY
/// on the database (PostgreSQL names the object unqualified for relations). `role`:
/// the gate role, when known.
pub fn missing_grant(role: Option<&str>, e: &postgres::Error) -> Option<String> {
    let d = e.as_db_error().filter(|d| d.code().code() == "42501")?;
    let m = d.message();
    let to = role.map_or_else(|| "<the gate role>".to_string(), ident);
    if let Some(db) = m.strip_prefix("permission denied to create temporary tables in database ") {
        return Some(format!(
            "GRANT TEMPORARY ON DATABASE {} TO {to}",
            ident(db.trim_matches('"'))
        ));
    }
    if m.starts_with("permission denied to set role") {
        return Some(format!(
            "GRANT {to} TO the role airlock connects as (it must be allowed to SET ROLE to it), or pass --gate-role ROLE (or set AIRLOCK_GATE_ROLE) naming a role it may set"
        ));
    }
    let rest = m.strip_prefix("permission denied for ")?;
    for (kind, grant) in [
        ("schema ", "USAGE ON SCHEMA"),
        ("table ", "SELECT ON"),
        ("view ", "SELECT ON"),
        ("materialized view ", "SELECT ON"),
        ("foreign table ", "SELECT ON"),
        ("sequence ", "SELECT ON SEQUENCE"),
        ("function ", "EXECUTE ON FUNCTION"),
    ] {
        if let Some(name) = rest.strip_prefix(kind) {
            let name = if grant.starts_with("EXECUTE") {
                name.to_string()
            } else {
                ident(name)
            };
            return Some(format!("GRANT {grant} {name} TO {to}"));
        }
    }
    None
}

/// An identifier as SQL needs it: quoted only where a bare one would fold or break.
fn ident(s: &str) -> String {
    let bare = !s.is_empty()
        && s.bytes().enumerate().all(|(i, b)| {
            b.is_ascii_lowercase() || b == b'_' || (i > 0 && (b.is_ascii_digit() || b == b'$'))
        });
    if bare {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('"', "\"\""))
    }
}
