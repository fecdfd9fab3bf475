//! INVALID indexes: what a `CREATE INDEX CONCURRENTLY` that failed or was interrupted
//! leaves behind, found by the name its step gives, for the online runner (drop it
//! before building again, or at once after a failure) and for the drift check (name
//! it, with the command that removes it).
//!
//! Invariant: only an index the bundle's own step names, in the schema that step
//! builds it in, and only while it is INVALID, is ever dropped or named.

use super::{pg_message, sql_err, DbError};
use airlock_bundle::verified::VerifiedBundle;
use airlock_sql::{IndexBuild, OnlineStep};
use postgres::{Client, GenericClient};

/// Every statement of `files` (verified bytes), in order, with its file.
pub(crate) fn steps_of(
    vb: &VerifiedBundle,
    files: &[String],
) -> Result<Vec<(String, OnlineStep, String)>, DbError> {
    let mut out = vec![];
    for f in files {
        let bytes = vb
            .read_all(f)
            .map_err(|e| DbError::Unverified(Box::new(e)))?;
        let steps = airlock_sql::online_steps(f, &bytes).map_err(|p| DbError::Sql {
            context: format!("{}:{}", p.file, p.line),
            message: format!("{} (an online step)", p.message),
        })?;
        for s in steps {
            let text =
                String::from_utf8_lossy(&bytes[s.start as usize..s.end as usize]).into_owned();
            out.push((f.clone(), s, text));
        }
    }
    Ok(out)
}

/// An INVALID index named as `b` builds it, if there is one: its qualified name. An
/// unqualified table is looked for along `search_path` (the bundle's).
pub(crate) fn invalid_leftover(
    client: &mut impl GenericClient,
    b: &IndexBuild,
    search_path: &[String],
) -> Result<Option<String>, DbError> {
    let schemas: Vec<String> = match &b.schema {
        Some(s) => vec![s.clone()],
        None => search_path.to_vec(),
    };
    let rows = client
        .query(
            "SELECT pg_catalog.format('%I.%I', n.nspname, c.relname)
               FROM pg_catalog.pg_class c
               JOIN pg_catalog.pg_index i ON i.indexrelid OPERATOR(pg_catalog.=) c.oid
               JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
              WHERE c.relname OPERATOR(pg_catalog.=) $1
                AND n.nspname OPERATOR(pg_catalog.=) ANY ($2)
                AND NOT i.indisvalid
              ORDER BY pg_catalog.array_position($2, n.nspname::pg_catalog.text)
              LIMIT 1",
            &[&b.index, &schemas],
        )
        .map_err(|e| sql_err("looking for an INVALID index an earlier build left", &e))?;
    Ok(rows.first().map(|r| r.get(0)))
}

/// The INVALID indexes the steps of `tier` not yet done would build (left by a run
/// that stopped during a build): `DROP INDEX CONCURRENTLY …;` for each, to name in a
/// refusal.
pub(crate) fn leftover_commands(
    client: &mut impl GenericClient,
    vb: &VerifiedBundle,
    files: &[String],
    from: usize,
    search_path: &[String],
) -> Vec<String> {
    let Ok(steps) = steps_of(vb, files) else {
        return vec![];
    };
    steps
        .iter()
        .skip(from)
        .filter_map(|(_, s, _)| s.builds.as_ref())
        .filter_map(|b| invalid_leftover(client, b, search_path).ok().flatten())
        .map(|name| format!("DROP INDEX CONCURRENTLY {name};"))
        .collect()
}

/// After a failed concurrent build: the INVALID index PostgreSQL keeps, dropped at
/// once (DROP INDEX CONCURRENTLY) when the session still can; what to tell.
pub(crate) fn drop_failed_build(
    client: &mut Client,
    b: &IndexBuild,
    search_path: &[String],
) -> String {
    let Ok(Some(name)) = invalid_leftover(client, b, search_path) else {
        return String::new();
    };
    match client.batch_execute(&format!("DROP INDEX CONCURRENTLY IF EXISTS {name}")) {
        Ok(()) => format!("; the failed build left the INVALID index {name}, which airlock dropped (DROP INDEX CONCURRENTLY): nothing of this step stays"),
        Err(e) => format!("; the failed build left the INVALID index {name} (not used by queries, but it slows every write to its table), and dropping it failed ({}): run DROP INDEX CONCURRENTLY {name}; then apply again", pg_message(&e)),
    }
}
