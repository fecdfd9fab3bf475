//! Where this host keeps what airlock remembers between runs (each target's ledger
//! head, schema descriptions, receipts): read from the environment only; nothing is
//! created here.

use std::path::PathBuf;

/// The state directory (not created until something is remembered):
/// `AIRLOCK_STATE_DIR`, else `$XDG_STATE_HOME/airlock`, else
/// `~/.local/state/airlock`, else `.airlock-state` (no home).
pub fn state_dir() -> PathBuf {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(d) = env("AIRLOCK_STATE_DIR") {
        return PathBuf::from(d);
    }
    if let Some(d) = env("XDG_STATE_HOME") {
        return PathBuf::from(d).join("airlock");
    }
    match env("HOME") {
        Some(h) => PathBuf::from(h).join(".local/state/airlock"),
        None => PathBuf::from(".airlock-state"),
    }
}
