//! What a gate or probe could leave behind in airlock's session: session-level
//! advisory locks. A rolled-back savepoint releases everything else it took (its
//! locks, settings, temp objects), but a lock taken with `pg_advisory_lock` stays with
//! the session until it is released or the session ends, visible in `pg_locks` to
//! everyone — a channel out, and a lock apply would go on holding.
//!
//! Invariant: after every gate and probe, this backend holds no advisory lock it did
//! not hold before; any new one is named (so the gate or probe is refused) and
//! released at once, before airlock sends its next statement. airlock itself only
//! takes transaction-level advisory locks, so releasing every session-level one
//! (`pg_advisory_unlock_all`) never drops one of its own.

use crate::{sql_err, DbError};
use postgres::Transaction;

/// The advisory locks this backend holds now, each as `class/object/key kind: mode`.
pub(crate) fn advisory_locks(tx: &mut Transaction<'_>) -> Result<Vec<String>, DbError> {
    let rows = tx
        .query_typed(
            "SELECT l.classid::pg_catalog.text OPERATOR(pg_catalog.||) '/' OPERATOR(pg_catalog.||) l.objid::pg_catalog.text
                    OPERATOR(pg_catalog.||) '/' OPERATOR(pg_catalog.||) l.objsubid::pg_catalog.text
                    OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) l.mode
               FROM pg_catalog.pg_locks l
              WHERE l.locktype OPERATOR(pg_catalog.=) 'advisory'
                AND l.pid OPERATOR(pg_catalog.=) pg_catalog.pg_backend_pid()
              ORDER BY 1",
            &[],
        )
        .map_err(|e| sql_err("listing this session's advisory locks", &e))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The advisory locks held now that were not in `before`, described; when there are
/// any, every session-level advisory lock is released.
pub(crate) fn release_new_advisory_locks(
    tx: &mut Transaction<'_>,
    before: &[String],
) -> Result<Vec<String>, DbError> {
    let new: Vec<String> = advisory_locks(tx)?
        .into_iter()
        .filter(|l| !before.contains(l))
        .map(|l| format!("advisory lock {l}"))
        .collect();
    if !new.is_empty() {
        tx.execute("SELECT pg_catalog.pg_advisory_unlock_all()", &[])
            .map_err(|e| sql_err("releasing advisory locks a gate or probe left", &e))?;
        let still: Vec<String> = advisory_locks(tx)?
            .into_iter()
            .filter(|l| !before.contains(l))
            .collect();
        if !still.is_empty() {
            return Err(DbError::State(format!(
                "a gate or probe left advisory locks airlock could not release ({}); nothing was changed",
                still.join(", ")
            )));
        }
    }
    Ok(new)
}
