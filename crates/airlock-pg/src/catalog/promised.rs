//! What an online step promised, read back from the catalog after it completed: the
//! online runner records a step only when this says it is there. An index build: the
//! index by its name, on its table, with its definition, VALID and READY
//! ([`crate::catalog::invalid_index`]); `VALIDATE CONSTRAINT`: each constraint validated;
//! `ADD VALUE`: the value in its enum. Other steps (`ANALYZE`, a drop `IF EXISTS`…)
//! promise nothing the catalog keeps.
//!
//! Invariant: read-only (the index check's temporary table is rolled back); a step
//! whose promise is not in the catalog is an error that says what is missing and
//! what to run, and nothing of it is recorded.

use crate::catalog::invalid_index::{held, name_held, Held};
use crate::{sql_err, DbError};
use airlock_sql::{IndexBuild, IndexDrop, OnlineStep, Promise};
use postgres::Client;

/// Whether the catalog holds what `step` promised, now that it completed; `at` names
/// the step.
pub(crate) fn prove(
    client: &mut Client,
    step: &OnlineStep,
    search_path: &[String],
    at: &str,
) -> Result<(), DbError> {
    if let Some(b) = &step.builds {
        return prove_index(client, b, search_path, at);
    }
    let missing = match &step.promise {
        Some(Promise::Validated {
            schema,
            table,
            constraints,
        }) => not_validated(client, schema, table, constraints, search_path)?,
        Some(Promise::EnumValue {
            schema,
            name,
            value,
        }) => no_enum_value(client, schema, name, value, search_path)?,
        None => None,
    };
    match missing {
        None => Ok(()),
        Some(missing) => Err(DbError::State(format!(
            "{at}: the statement completed, but the catalog does not hold what it promised: {missing}; the step is not done, and nothing of it is recorded\n\
             hint: find out what changed it (another session?), then apply again"
        ))),
    }
}

/// The index a build step promised: the step's own, VALID and READY.
fn prove_index(
    client: &mut Client,
    b: &IndexBuild,
    search_path: &[String],
    at: &str,
) -> Result<(), DbError> {
    let missing = match held(client, b, search_path)? {
        Held::Ours(o) if o.valid => return Ok(()),
        Held::Other { what, owner } => return Err(name_held(at, &b.index, &what, &owner)),
        Held::Ours(o) => format!(
            "the index {} is INVALID (a build that did not finish: a NOTICE \"already exists, skipping\" met an earlier build's leftover?); the step is not done, and nothing of it is recorded: run DROP INDEX CONCURRENTLY {}; then apply again",
            o.name, o.name
        ),
        Held::Nothing => format!("there is no index {} on {}", b.index, b.table),
        Held::NoTable => format!("there is no table {} along the bundle's search_path", b.table),
    };
    Err(DbError::State(format!(
        "{at}: the statement completed, but {missing}"
    )))
}

/// Whether no relation named as `d` names its index is there (in its schema, or
/// along the bundle's search_path): a `DROP INDEX CONCURRENTLY` without `IF EXISTS`
/// then has nothing left to do.
pub(crate) fn index_gone(
    client: &mut Client,
    d: &IndexDrop,
    search_path: &[String],
) -> Result<bool, DbError> {
    let there: bool = client
        .query_one(
            "SELECT EXISTS (SELECT FROM pg_catalog.pg_class c                JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace               WHERE c.relname OPERATOR(pg_catalog.=) $1                 AND n.nspname OPERATOR(pg_catalog.=) ANY ($2::pg_catalog.text[]))",
            &[&d.index, &schemas(&d.schema, search_path)],
        )
        .map_err(|e| sql_err("looking for the index a step drops", &e))?
        .get(0);
    Ok(!there)
}

/// The schemas a name is looked for in: its own, or the bundle's search_path.
fn schemas(schema: &Option<String>, search_path: &[String]) -> Vec<String> {
    match schema {
        Some(s) => vec![s.clone()],
        None => search_path.to_vec(),
    }
}

/// The constraints of `constraints` on the table not (or no longer) validated.
fn not_validated(
    client: &mut Client,
    schema: &Option<String>,
    table: &str,
    constraints: &[String],
    search_path: &[String],
) -> Result<Option<String>, DbError> {
    let row = client
        .query_one(
            "WITH tbl AS (
                SELECT c.oid FROM pg_catalog.pg_class c
                  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
                 WHERE c.relname OPERATOR(pg_catalog.=) $1 AND n.nspname OPERATOR(pg_catalog.=) ANY ($2)
                 ORDER BY pg_catalog.array_position($2, n.nspname::pg_catalog.text) LIMIT 1)
             SELECT ARRAY(SELECT k FROM pg_catalog.unnest($3::pg_catalog.text[]) k
                           WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_constraint x, tbl
                                              WHERE x.conrelid OPERATOR(pg_catalog.=) tbl.oid
                                                AND x.conname OPERATOR(pg_catalog.=) k AND x.convalidated))",
            &[&table, &schemas(schema, search_path), &constraints],
        )
        .map_err(|e| sql_err("checking the constraints an online step validated", &e))?;
    let missing: Vec<String> = row.get(0);
    Ok((!missing.is_empty()).then(|| {
        format!(
            "constraint(s) {} on {table} not there validated",
            missing.join(", ")
        )
    }))
}

/// Whether the enum `name` holds `value`; what is missing if not.
fn no_enum_value(
    client: &mut Client,
    schema: &Option<String>,
    name: &str,
    value: &str,
    search_path: &[String],
) -> Result<Option<String>, DbError> {
    let row = client
        .query_one(
            "SELECT EXISTS (SELECT FROM pg_catalog.pg_enum e
                 WHERE e.enumlabel OPERATOR(pg_catalog.=) $3 AND e.enumtypid OPERATOR(pg_catalog.=) (
                   SELECT t.oid FROM pg_catalog.pg_type t
                     JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) t.typnamespace
                    WHERE t.typname OPERATOR(pg_catalog.=) $1 AND n.nspname OPERATOR(pg_catalog.=) ANY ($2)
                    ORDER BY pg_catalog.array_position($2, n.nspname::pg_catalog.text) LIMIT 1))",
            &[&name, &schemas(schema, search_path), &value],
        )
        .map_err(|e| sql_err("checking the value an online step added to its enum", &e))?;
    Ok((!row.get::<_, bool>(0)).then(|| format!("the enum {name} has no value {value:?}")))
}
