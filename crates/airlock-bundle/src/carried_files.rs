//! The files a trust store carried inside a bundle may hold, and its bounds: what the
//! manifest's `trust_update` listing is checked against before anything of it is read.
//!
//! Invariant: a carried file's name is one a store's directory holds (`trust.toml`,
//! `NAME.pub`, `signatures/KEYID.minisig`, each also under `history/vN/`), and its size
//! is within the cap a store on disk is read under.

/// The one policy file a trust store may hold.
pub const POLICY_FILE: &str = "trust.toml";
/// Where a store's signatures live, inside it.
pub const SIGNATURES_DIR: &str = "signatures";
/// Where the versions a store replaced are kept, inside it.
pub const HISTORY_DIR: &str = "history";

/// At most this many files in a carried store, history included.
pub const MAX_FILES: usize = 4096;
/// At most this many bytes in all.
pub const MAX_BYTES: u64 = 16 << 20;

/// The cap on one carried file, by its name; `Err` for a name a store does not hold:
/// `trust.toml`, `NAME.pub`, `signatures/KEYID.minisig`, each also under
/// `history/vN/`.
pub fn cap_of(rel: &str) -> Result<airlock_base::bounded::Cap, String> {
    let own = match rel
        .strip_prefix(HISTORY_DIR)
        .and_then(|r| r.strip_prefix("/v"))
    {
        Some(rest) => {
            let (n, inner) = rest
                .split_once('/')
                .ok_or_else(|| format!("{rel}: a history entry is history/vN/FILE"))?;
            if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) || n.starts_with('0') {
                return Err(format!(
                    "{rel}: a history version is v followed by its number"
                ));
            }
            inner
        }
        None => rel,
    };
    let plain = |s: &str| {
        !s.is_empty()
            && !s.starts_with('.')
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    };
    if own == POLICY_FILE {
        Ok(airlock_base::bounded::TRUST_POLICY)
    } else if own.strip_suffix(".pub").is_some_and(plain) {
        Ok(airlock_base::bounded::PUBLIC_KEY)
    } else if own
        .strip_prefix(SIGNATURES_DIR)
        .and_then(|s| s.strip_prefix('/'))
        .and_then(|s| s.strip_suffix(".minisig"))
        .is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric()))
    {
        Ok(airlock_base::bounded::SIGNATURE)
    } else {
        Err(format!(
            "{rel}: a carried trust store holds only trust.toml, *.pub, signatures/KEYID.minisig and history/vN/ copies of them"
        ))
    }
}
