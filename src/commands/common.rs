//! Helpers shared by subcommands: keys and passphrases, times, atomic output files.

use crate::cli::PassphraseArgs;
use crate::error::{Error, Result};
use airlock_base::bounded::{self, read_capped_string};
use chrono::{DateTime, Utc};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// What a passphrase is for. The rules depend on this, never on where the
/// passphrase came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Encrypting a new secret key: it must not be empty (an empty passphrase is an
    /// unencrypted key that claims otherwise), and a terminal asks twice.
    NewKey,
    /// Opening an existing key: whatever it was made with; a wrong one fails there.
    Unlock,
}

/// Passphrase from --passphrase-file, AIRLOCK_PASSPHRASE, or a terminal prompt.
pub fn passphrase(args: &PassphraseArgs, purpose: Purpose) -> Result<Zeroizing<String>> {
    let (pass, source) = if let Some(p) = &args.passphrase_file {
        let text = Zeroizing::new(read_capped_string(p, bounded::PASSPHRASE)?);
        let first = Zeroizing::new(text.lines().next().unwrap_or("").to_string());
        (first, format!("the first line of {}", p.display()))
    } else if let Ok(p) = std::env::var("AIRLOCK_PASSPHRASE") {
        (Zeroizing::new(p), "AIRLOCK_PASSPHRASE".to_string())
    } else if std::io::stdin().is_terminal() {
        let p = Zeroizing::new(
            rpassword::prompt_password("Passphrase: ")
                .map_err(|e| Error::io("cannot read passphrase", e))?,
        );
        if purpose == Purpose::NewKey && !p.is_empty() {
            let again = Zeroizing::new(
                rpassword::prompt_password("Passphrase (again): ")
                    .map_err(|e| Error::io("cannot read passphrase", e))?,
            );
            if *again != *p {
                return Err(Error::usage(
                    "the passphrases do not match",
                    Some("run the command again and type the same passphrase twice".into()),
                ));
            }
        }
        (p, "the terminal".to_string())
    } else {
        return Err(Error::usage(
            "a passphrase is needed and stdin is not a terminal",
            Some("set AIRLOCK_PASSPHRASE or pass --passphrase-file FILE".into()),
        ));
    };
    if purpose == Purpose::NewKey && pass.is_empty() {
        return Err(Error::usage(
            format!("empty passphrase from {source}: a new encrypted key needs a non-empty passphrase"),
            Some("give a non-empty passphrase, or pass --unencrypted to make an unencrypted key on purpose (throw-away and test keys only)".into()),
        ));
    }
    Ok(pass)
}

/// A progress bar over a bundle file's bytes (shown only for large bundles on a
/// terminal; a missing file gets none, and the reader reports the error).
pub fn bundle_progress(path: &Path, what: &str) -> crate::progress::Progress {
    let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    crate::progress::Progress::bytes(len, what)
}

/// This host's memory of the bundles this build verified whole, in the state directory
/// ([`crate::verdicts`]); none when the state directory is only the working directory's
/// `.airlock-state` (no HOME): `verify` leaves no directory where it is run.
pub fn verdicts() -> crate::verdicts::Verdicts {
    let dir = crate::db::remembered::state_dir();
    if dir.is_relative() {
        return crate::verdicts::Verdicts::none();
    }
    crate::verdicts::Verdicts::in_dir(dir.join("judged"))
}

/// `--at TIME` or now.
pub fn judge_time(at: Option<&str>) -> Result<DateTime<Utc>> {
    Ok(time_flag("--at", at)?.unwrap_or_else(Utc::now))
}

/// The time a flag gives (RFC 3339 or a date), or a usage error naming the flag.
pub fn time_flag(flag: &str, text: Option<&str>) -> Result<Option<DateTime<Utc>>> {
    text.map(|t| {
        crate::trust::parse_rfc3339(t).ok_or_else(|| {
            Error::usage(
                format!("{flag} {t:?} is not a time"),
                Some("use RFC 3339 (e.g. 2026-06-03T12:00:00Z) or a date (2026-06-03)".into()),
            )
        })
    })
    .transpose()
}

/// SOURCE_DATE_EPOCH, if set (reproducible builds).
pub fn source_date_epoch() -> Result<Option<i64>> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => {
            v.trim().parse::<i64>().map(Some).map_err(|_| {
                Error::usage(format!("SOURCE_DATE_EPOCH={v:?} is not an integer"), None)
            })
        }
        Err(_) => Ok(None),
    }
}

/// Who may read a file airlock creates. Every output file says which it is, so a
/// temp file's private default never leaks into a public artifact.
#[derive(Clone, Copy, Debug)]
pub enum NewFileMode<'a> {
    /// Owner only (0600) from the moment it exists: secret keys.
    Private,
    /// Like any new file (0666 minus the umask, as `cp` or `minisign` would make
    /// it): bundles, public keys, receipts.
    Public,
    /// The permissions of the existing file this one replaces (`sign` rewrites a
    /// bundle in place). `Public` when that file cannot be read; its reader will say
    /// why.
    SameAs(&'a Path),
}

/// A temp file beside `dest`; `commit` renames it into place (never half-written).
pub struct AtomicFile {
    tmp: tempfile::NamedTempFile,
    dest: PathBuf,
}

impl AtomicFile {
    pub fn new(dest: &Path, mode: NewFileMode<'_>) -> Result<AtomicFile> {
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut builder = tempfile::Builder::new();
        builder.prefix(".airlock-tmp-");
        // The mode given to open(2): the kernel applies the umask to it.
        #[cfg(unix)]
        let keep: Option<u32> = {
            use std::os::unix::fs::PermissionsExt;
            let (create, keep) = match mode {
                NewFileMode::Private => (0o600, None),
                NewFileMode::Public => (0o666, None),
                NewFileMode::SameAs(existing) => match std::fs::metadata(existing) {
                    // Created private, then set exactly (fchmod ignores the umask).
                    Ok(m) => (0o600, Some(m.permissions().mode() & 0o777)),
                    Err(_) => (0o666, None),
                },
            };
            builder.permissions(std::fs::Permissions::from_mode(create));
            keep
        };
        #[cfg(not(unix))]
        let _ = mode;
        let tmp = builder.tempfile_in(&dir).map_err(|e| {
            Error::io(
                format!("cannot create a temporary file in {}", dir.display()),
                e,
            )
        })?;
        #[cfg(unix)]
        if let Some(bits) = keep {
            use std::os::unix::fs::PermissionsExt;
            tmp.as_file()
                .set_permissions(std::fs::Permissions::from_mode(bits))
                .map_err(|e| {
                    Error::io(format!("cannot set permissions on {}", dest.display()), e)
                })?;
        }
        Ok(AtomicFile {
            tmp,
            dest: dest.to_path_buf(),
        })
    }

    pub fn file(&mut self) -> &mut std::fs::File {
        self.tmp.as_file_mut()
    }

    pub fn commit(self, overwrite: bool) -> Result<()> {
        self.tmp
            .as_file()
            .sync_all()
            .map_err(|e| Error::io(format!("cannot write {}", self.dest.display()), e))?;
        let dest = self.dest.clone();
        let res = if overwrite {
            self.tmp.persist(&dest).map(|_| ())
        } else {
            self.tmp.persist_noclobber(&dest).map(|_| ())
        };
        res.map_err(|e| {
            if e.error.kind() == std::io::ErrorKind::AlreadyExists {
                Error::usage(
                    format!("{} already exists", dest.display()),
                    Some("it appeared while airlock was writing; it was left as it is".into()),
                )
            } else {
                Error::io(format!("cannot write {}", dest.display()), e.error)
            }
        })
    }
}

/// Write a small file atomically.
pub fn write_atomic(
    dest: &Path,
    text: &[u8],
    mode: NewFileMode<'_>,
    overwrite: bool,
) -> Result<()> {
    let mut f = AtomicFile::new(dest, mode)?;
    f.file()
        .write_all(text)
        .map_err(|e| Error::io(format!("cannot write {}", dest.display()), e))?;
    f.commit(overwrite)
}

/// A trust store as every command reads it: loaded, and, when it has a version,
/// signed by its own roots and no older than what this host accepted
/// (`trust_rotation::admit`).
pub fn load_trust(path: &Path) -> Result<crate::trust::TrustStore> {
    Ok(load_trust_admitted(path)?.0)
}

/// [`load_trust`], with what the host's memory said of the store.
pub fn load_trust_admitted(
    path: &Path,
) -> Result<(crate::trust::TrustStore, crate::trust_rotation::Accepted)> {
    let store = crate::trust::TrustStore::load(path)?;
    let accepted =
        crate::trust_rotation::admit(&store, trust_state().as_deref(), chrono::Utc::now())?;
    Ok((store, accepted))
}

/// Where this host remembers trust stores (None: no state directory to remember in).
fn trust_state() -> Option<PathBuf> {
    let state = crate::db::remembered::state_dir();
    (!state.is_relative()).then_some(state)
}

/// A store's history as this host can prove it: each earlier version proven forward
/// from a version the host trusts (`trust_history`).
pub fn trust_history(store: &crate::trust::TrustStore) -> crate::trust_history::History {
    let known = crate::trust_rotation::known_versions(trust_state().as_deref(), store);
    crate::trust_history::History::load(store, &known)
}
