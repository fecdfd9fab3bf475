//! What this host remembers of each target's ledger: the last head (seq and row hash)
//! it saw, so a ledger that lost rows since (a deleted tail, a ledger replaced by an
//! older copy) is refused, as TUF clients refuse rolled-back metadata.
//!
//! Memory lives in `AIRLOCK_STATE_DIR`, else `$XDG_STATE_HOME/airlock`, else
//! `~/.local/state/airlock`, one file per target under
//! `heads/<server system identifier>/<database name as hex>.json`, written atomically.
//!
//! Invariant: the remembered head only moves forward, and only to a head read from a
//! ledger that passed every check; a ledger that does not hold it is never used.

use crate::ledger::chain::LedgerRow;
use crate::DbError;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Head {
    pub system_identifier: String,
    pub database: String,
    pub seq: i64,
    pub row_hash: String,
    /// When the row was written (the ledger's `at`).
    pub at: String,
    /// When this host saw it.
    pub seen_at: String,
}

/// The state directory (not created until something is remembered).
pub use airlock_base::host::state_dir;

/// One target's memory file.
pub fn file_for(system_identifier: &str, database: &str) -> PathBuf {
    let sys = if system_identifier.is_empty() {
        "unknown-system"
    } else {
        system_identifier
    };
    state_dir()
        .join("heads")
        .join(sys)
        .join(format!("{}.json", hex::encode(database.as_bytes())))
}

/// The remembered head, if any. An unreadable or malformed memory is an error: the
/// host cannot tell what it saw, so it refuses rather than guess.
pub fn load(system_identifier: &str, database: &str) -> Result<Option<Head>, DbError> {
    let path = file_for(system_identifier, database);
    let text = match airlock_base::bounded::read_capped_string(
        &path,
        airlock_base::bounded::REMEMBERED_HEAD,
    ) {
        Ok(t) => t,
        Err(airlock_base::bounded::ReadError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            return Ok(None)
        }
        Err(e) => {
            return Err(DbError::LedgerRewound {
                database: database.into(),
                what: format!("cannot read what this host remembers ({e})"),
                memory: path,
            })
        }
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| DbError::LedgerRewound {
            database: database.into(),
            what: format!("the memory file is malformed ({e})"),
            memory: path,
        })
}

/// Refuse a ledger that does not hold the remembered head.
pub fn check(
    system_identifier: &str,
    database: &str,
    rows: &[LedgerRow],
) -> Result<Option<Head>, DbError> {
    let Some(head) = load(system_identifier, database)? else {
        return Ok(None);
    };
    let held = rows
        .iter()
        .any(|r| r.seq == head.seq && r.row_hash == head.row_hash);
    if held {
        return Ok(Some(head));
    }
    let now = match rows.last() {
        None => "the database now has no ledger rows at all".to_string(),
        Some(last) => format!(
            "the ledger now ends at seq {} ({})",
            last.seq,
            airlock_base::text::short(&last.row_hash)
        ),
    };
    Err(DbError::LedgerRewound {
        database: database.into(),
        what: format!(
            "this host saw seq {} (row hash {}, written {}) on {}, but the ledger does not hold it: {now}. Rows were deleted, or the ledger was replaced",
            head.seq,
            airlock_base::text::short(&head.row_hash),
            head.at,
            head.seen_at
        ),
        memory: file_for(system_identifier, database),
    })
}

/// Remember `last` as the newest head seen (never moves backwards). Returns a warning
/// to show when the memory cannot be written: the change it records has committed.
pub fn remember(system_identifier: &str, database: &str, last: &LedgerRow) -> Option<String> {
    match load(system_identifier, database) {
        Ok(Some(h)) if h.seq >= last.seq => return None,
        _ => {}
    }
    let path = file_for(system_identifier, database);
    let head = Head {
        system_identifier: system_identifier.into(),
        database: database.into(),
        seq: last.seq,
        row_hash: last.row_hash.clone(),
        at: last.at.clone(),
        seen_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    };
    let write = || -> std::io::Result<()> {
        let mut text = serde_json::to_vec_pretty(&head)?;
        text.push(b'\n');
        write_durably(&path, &text)
    };
    write().err().map(|e| {
        format!(
            "warning: could not remember ledger seq {} in {}: {e}",
            last.seq,
            path.display()
        )
    })
}

/// Forget what this host remembers of a target (after a deliberate restore).
pub fn forget(system_identifier: &str, database: &str) -> Result<Option<Head>, DbError> {
    let old = load(system_identifier, database).unwrap_or(None);
    let path = file_for(system_identifier, database);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(old),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(DbError::Sql {
            context: format!("forgetting {}", path.display()),
            message: e.to_string(),
        }),
    }
}

/// Replace `path` with `bytes` so that a crash or power loss leaves the old file or the
/// new one, never a torn or empty one: a temporary file beside it, synced, renamed over
/// it, and the directory synced (its directory is created if missing).
pub(crate) fn write_durably(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().expect("a state file has a directory");
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    std::fs::File::open(dir)?.sync_all()
}
