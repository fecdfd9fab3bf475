//! The one place where errors become exit codes (DESIGN.md §6) and hints.
//!
//! 0 success / READY · 1 runtime · 2 usage · 3 BLOCKED · 4 verification ·
//! 5 database state check · 6 ledger refusal or deploy lock.

use crate::archive::{ExtractError, VerifyError};
use crate::db::DbError;
use crate::exit::Exit;
use crate::minisign::MinisignError;
use crate::spec::SpecError;
use crate::trust::{NotCounted, TrustError, TrustVerdict};
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{message}")]
    Usage {
        message: String,
        hint: Option<String>,
    },
    /// `sign` with a key that already signed this bundle: there is nothing to add.
    #[error("{} is already signed by key {key_id}; nothing changed", bundle.display())]
    AlreadySigned { bundle: PathBuf, key_id: String },
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error("bundle verification failed: {0}")]
    Verify(#[from] VerifyError),
    /// Never holds `ExtractError::Verify`: `From` turns that into [`Error::Verify`].
    #[error(transparent)]
    Extract(ExtractError),
    #[error(transparent)]
    Trust(#[from] TrustError),
    #[error("key {path}: {source}")]
    Key {
        path: PathBuf,
        source: MinisignError,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Db(#[from] DbError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<ExtractError> for Error {
    fn from(e: ExtractError) -> Error {
        match e {
            ExtractError::Verify(v) => Error::Verify(v),
            other => Error::Extract(other),
        }
    }
}

/// The advice for a bundle whose bytes are not what its signers signed.
const TAMPERED_HINT: &str = "do not use this bundle: it is not what the release manager signed. Ask for a fresh copy and verify again";

/// The advice when `sign` has nothing to add.
const ALREADY_SIGNED_HINT: &str = "to add another signer, run `airlock sign` with that signer's key; `airlock inspect BUNDLE` lists who signed";

/// The advice for an authentic bundle past its `expires`.
const EXPIRED_HINT: &str = "the bundle is authentic but expired: ask the release manager for a new bundle with a later `expires` (re-packed and signed). Auditors can judge it as of an earlier time with `airlock verify BUNDLE --trust PATH --at TIME`";

/// What to do about a threshold that is not met. Signatures that are wrong (bad
/// bytes, another bundle's comment) or absent mean the bundle is not what was
/// signed; otherwise the signatures are sound and the trust store does not accept
/// enough of them, so the advice is about the store or about co-signing.
fn untrusted_hint(v: &TrustVerdict) -> String {
    let reasons: Vec<NotCounted> = v.signatures.iter().filter_map(|c| c.not_counted).collect();
    if v.signatures.is_empty() || reasons.iter().any(|r| r.is_bad_signature()) {
        return TAMPERED_HINT.into();
    }
    let ids = |want: NotCounted| -> Option<String> {
        let ids: Vec<&str> = v
            .signatures
            .iter()
            .filter(|c| c.not_counted == Some(want))
            .map(|c| c.key_id.as_str())
            .collect();
        (!ids.is_empty()).then(|| ids.join(", "))
    };
    let mut causes = vec![];
    if let Some(ids) = ids(NotCounted::UnknownKey) {
        causes.push(format!(
            "check that --trust (or AIRLOCK_TRUST) names the store with the release keys: it holds no key {ids} (add a .pub only after confirming it with its owner)"
        ));
    }
    if let Some(ids) = ids(NotCounted::Revoked) {
        causes.push(format!(
            "key {ids} is revoked in trust.toml: ask for the bundle signed by a current release key. A signer's claimed time is no evidence; auditors can show the bundle existed before the revocation with `airlock audit BUNDLE --db CONN` (its ledger row) or `--receipt FILE` (signed by an operator key)"
        ));
    }
    if let Some(ids) = ids(NotCounted::NotYetValid) {
        causes.push(format!(
            "key {ids} is not valid yet (not_before in trust.toml): correct the date if it is wrong, or ask for a signature by a key valid now"
        ));
    }
    if let Some(ids) = ids(NotCounted::KeyExpired) {
        causes.push(format!(
            "key {ids} is past its not_after in trust.toml: ask for a signature by a current key. A signer's claimed time is no evidence; auditors can show the bundle existed by then with `airlock audit BUNDLE --db CONN` (its ledger row) or `--receipt FILE` (signed by an operator key)"
        ));
    }
    if let Some(ids) = ids(NotCounted::OperatorRole) {
        causes.push(format!(
            "key {ids} has role operator in trust.toml, which never counts for bundles"
        ));
    }
    let need = v.threshold.saturating_sub(v.distinct_keys);
    let co_sign = format!(
        "get it co-signed by {need} more trusted release key(s) with `airlock sign BUNDLE --key KEY`"
    );
    if causes.is_empty() {
        co_sign
    } else {
        format!("{}; or {co_sign}", causes.join("; "))
    }
}

pub(crate) fn verify_exit_code(e: &VerifyError) -> Exit {
    match e {
        VerifyError::Open { .. } | VerifyError::Write(_) => Exit::Runtime,
        _ => Exit::Verification,
    }
}

/// One hint per class of verification failure: unreadable or unwritable (none: the
/// message says it), expired, not trusted enough, or not what was signed.
pub(crate) fn verify_hint(e: &VerifyError) -> Option<String> {
    match e {
        VerifyError::Open { .. } | VerifyError::Write(_) => None,
        VerifyError::Expired { .. } => Some(EXPIRED_HINT.into()),
        VerifyError::Untrusted(v) => Some(untrusted_hint(v)),
        _ => Some(TAMPERED_HINT.into()),
    }
}

impl Error {
    pub fn usage(message: impl Into<String>, hint: impl Into<Option<String>>) -> Error {
        Error::Usage {
            message: message.into(),
            hint: hint.into(),
        }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    pub fn exit_code(&self) -> Exit {
        match self {
            Error::Usage { .. } | Error::AlreadySigned { .. } | Error::Spec(_) => Exit::Usage,
            Error::Verify(e) | Error::Extract(ExtractError::Verify(e)) => verify_exit_code(e),
            // Nothing was verified: the store is the thing to fix.
            Error::Trust(_) => Exit::Usage,
            Error::Extract(ExtractError::DestinationExists(_)) => Exit::Usage,
            Error::Extract(ExtractError::Io(..)) => Exit::Runtime,
            Error::Key { source, .. } => match source {
                MinisignError::WrongPassphrase | MinisignError::PassphraseRequired => Exit::Usage,
                _ => Exit::Runtime,
            },
            Error::Io { .. } => Exit::Runtime,
            Error::Db(e) => e.exit_code(),
        }
    }

    /// What to do next, on its own line.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Usage { hint, .. } => hint.clone(),
            Error::AlreadySigned { .. } => Some(ALREADY_SIGNED_HINT.into()),
            Error::Spec(_) => Some(
                "fix bundle.toml or the named files, then run `airlock lint SOURCE` again".into(),
            ),
            Error::Verify(e) | Error::Extract(ExtractError::Verify(e)) => verify_hint(e),
            Error::Trust(e) => Some(e.hint()),
            Error::Key {
                source: MinisignError::WrongPassphrase,
                ..
            } => Some("check the passphrase (AIRLOCK_PASSPHRASE or --passphrase-file)".into()),
            Error::Key {
                source: MinisignError::PassphraseRequired,
                ..
            } => Some("set AIRLOCK_PASSPHRASE or pass --passphrase-file FILE".into()),
            Error::Db(e) => e.hint(),
            _ => None,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Error::Usage { .. } | Error::AlreadySigned { .. } => "usage",
            Error::Spec(_) => "source",
            Error::Verify(_) | Error::Extract(ExtractError::Verify(_)) => "verification",
            Error::Extract(_) => "extract",
            Error::Trust(_) => "trust-store",
            Error::Key { .. } => "key",
            Error::Io { .. } => "io",
            Error::Db(e) => e.kind(),
        }
    }
}
