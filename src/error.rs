//! The one place where errors become exit codes (DESIGN.md §6) and hints.
//!
//! 0 success / READY · 1 runtime · 2 usage · 3 BLOCKED · 4 verification ·
//! 5 database state check · 6 ledger refusal or deploy lock.

use crate::archive::{ExtractError, VerifyError};
use crate::db::DbError;
use crate::exit::Exit;
use crate::minisign::MinisignError;
use crate::spec::SpecError;
use crate::trust::TrustError;
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
    #[error("{}", verify_message(.0))]
    Verify(#[from] VerifyError),
    /// Never holds `ExtractError::Verify`: `From` turns that into [`Error::Verify`].
    #[error(transparent)]
    Extract(ExtractError),
    #[error(transparent)]
    Trust(#[from] TrustError),
    #[error(transparent)]
    TrustEdit(#[from] crate::trust_edit::EditError),
    #[error(transparent)]
    Rotation(#[from] crate::trust_rotation::RotationError),
    #[error("key {path}: {source}")]
    Key {
        path: PathBuf,
        source: MinisignError,
    },
    /// A `--key` on a token or in an agent that cannot be used (opened before anything
    /// is written).
    #[error("{0}")]
    DeviceKey(#[from] airlock_keys::KeyError),
    /// An opened key that failed to sign (a token pulled, an agent gone).
    #[error("cannot sign: {0}")]
    Signer(#[from] crate::minisign::SignerError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Db(#[from] DbError),
    /// A project file (`airlock.toml`) that may not be used: nothing ran.
    #[error(transparent)]
    Project(#[from] crate::project::ProjectError),
    /// `apply --wait` found, before waiting, a check that waiting cannot fix.
    #[error("not waiting for the gate: the {check} check fails, and waiting cannot fix it: {evidence}; nothing was changed")]
    NotWaiting {
        check: String,
        evidence: String,
        hint: Option<String>,
        exit: crate::exit::Exit,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A file read whole over its cap is a usage error (the input is wrong, DESIGN §6),
/// with the cap's hint; one that cannot be read is an I/O error.
impl From<airlock_base::bounded::ReadError> for Error {
    fn from(e: airlock_base::bounded::ReadError) -> Error {
        match e {
            airlock_base::bounded::ReadError::Io { path, source } => {
                Error::io(format!("cannot read {}", path.display()), source)
            }
            too_large => Error::usage(too_large.to_string(), too_large.hint()),
        }
    }
}

impl From<ExtractError> for Error {
    fn from(e: ExtractError) -> Error {
        match e {
            ExtractError::Verify(v) => Error::Verify(v),
            other => Error::Extract(other),
        }
    }
}

/// The advice when `sign` has nothing to add.
const ALREADY_SIGNED_HINT: &str = "to add another signer, run `airlock sign` with that signer's key; `airlock inspect BUNDLE` lists who signed";

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
            // The file is the input to fix (or to do without: --config none).
            Error::Project(_) => Exit::Usage,
            Error::Verify(e) | Error::Extract(ExtractError::Verify(e)) => e.exit_code(),
            // Nothing was verified: the store is the thing to fix.
            Error::Trust(_) => Exit::Usage,
            Error::TrustEdit(e) if e.is_usage() => Exit::Usage,
            Error::TrustEdit(_) => Exit::Runtime,
            Error::Rotation(crate::trust_rotation::RotationError::Trust(_)) => Exit::Usage,
            Error::Rotation(crate::trust_rotation::RotationError::Refused { .. }) => {
                Exit::Verification
            }
            Error::Rotation(_) => Exit::Runtime,
            Error::Extract(ExtractError::DestinationExists(_)) => Exit::Usage,
            Error::Extract(ExtractError::Io(..)) => Exit::Runtime,
            Error::Key { source, .. } => match source {
                MinisignError::WrongPassphrase | MinisignError::PassphraseRequired => Exit::Usage,
                _ => Exit::Runtime,
            },
            // A key of another type is refused as a signature would be (4); a device
            // that failed mid-way is a runtime error; the rest is the input to fix (2).
            Error::DeviceKey(e) if e.is_refused_key() => Exit::Verification,
            Error::DeviceKey(e) if e.is_runtime() => Exit::Runtime,
            Error::DeviceKey(_) => Exit::Usage,
            Error::Signer(_) => Exit::Runtime,
            Error::Io { .. } => Exit::Runtime,
            Error::Db(e) => e.exit_code(),
            Error::NotWaiting { exit, .. } => *exit,
        }
    }

    /// What to do next, on its own line.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Usage { hint, .. } => hint.clone(),
            Error::AlreadySigned { .. } => Some(ALREADY_SIGNED_HINT.into()),
            Error::Project(e) => e.hint(),
            Error::Spec(SpecError::TooLarge(e)) => e.hint(),
            Error::Spec(_) => Some(
                "fix bundle.toml or the named files, then run `airlock lint SOURCE` again".into(),
            ),
            Error::Verify(e) | Error::Extract(ExtractError::Verify(e)) => e.hint(),
            Error::Trust(e) => Some(e.hint()),
            Error::TrustEdit(e) => e.hint(),
            Error::Rotation(crate::trust_rotation::RotationError::Trust(e)) => Some(e.hint()),
            Error::Rotation(crate::trust_rotation::RotationError::Refused { .. }) => Some(
                "a versioned trust store changes only by `airlock trust update NEW --trust STORE` with a higher version its root keys signed (airlock trust sign); `airlock trust list STORE` shows its version and who signed it".into(),
            ),
            Error::Key {
                source: MinisignError::WrongPassphrase,
                ..
            } => Some("check the passphrase (AIRLOCK_PASSPHRASE or --passphrase-file)".into()),
            Error::Key {
                source: MinisignError::PassphraseRequired,
                ..
            } => Some("set AIRLOCK_PASSPHRASE or pass --passphrase-file FILE".into()),
            Error::DeviceKey(e) => Some(e.hint()),
            Error::Signer(_)
            | Error::Rotation(crate::trust_rotation::RotationError::Signer(_)) => Some(
                "check the token is inserted or the agent still runs, and run the command again; nothing was written"
                    .into(),
            ),
            Error::Db(e) => e.hint(),
            Error::NotWaiting { hint, .. } => hint
                .clone()
                .or_else(|| Some("airlock plan shows every check; fix this one, then wait".into())),
            _ => None,
        }
    }

    /// Drift that stopped a continued apply: the objects that changed.
    pub fn drift(&self) -> Option<crate::db::drift::DriftChanges> {
        match self {
            Error::Db(crate::db::DbError::Mismatch(crate::db::refusal::Mismatch::Drift {
                changes,
                ..
            })) => Some((**changes).clone()),
            _ => None,
        }
    }

    /// What a run that stopped part way committed (`committed` of the error document).
    pub fn committed(&self) -> Option<crate::report::Committed> {
        match self {
            Error::Db(crate::db::DbError::Partial { receipt, saved, .. }) => {
                Some(crate::report::Committed {
                    tiers: receipt.tiers.clone(),
                    online_steps: receipt.online_steps.clone(),
                    remaining_tiers: receipt.remaining_tiers.clone(),
                    receipt_file: saved.clone(),
                })
            }
            _ => None,
        }
    }

    /// Which ledger refusal this is, when it is one (`refusal_kind` of the error
    /// document).
    pub fn refusal_kind(&self) -> Option<crate::db::refusal::RefusalKind> {
        match self {
            Error::Db(e) => e.refusal_kind(),
            _ => None,
        }
    }

    /// Where in a bundle file the failing statement is, when a statement failed.
    pub fn at(&self) -> Option<crate::db::files::StatementAt> {
        match self {
            Error::Db(e) => e.at().cloned(),
            _ => None,
        }
    }

    /// The problems of a refused source, one by one (empty for other errors).
    pub fn problems(&self) -> Vec<crate::report::Problem> {
        match self {
            Error::Spec(SpecError::Invalid { problems, .. }) => problems
                .iter()
                .map(|p| crate::report::Problem::parse(p))
                .collect(),
            _ => vec![],
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Error::Usage { .. } | Error::AlreadySigned { .. } | Error::Project(_) => "usage",
            Error::Spec(_) => "source",
            Error::Verify(VerifyError::Open { .. }) => "io",
            Error::Verify(_) | Error::Extract(ExtractError::Verify(_)) => "verification",
            Error::Extract(_) => "extract",
            Error::Trust(_) | Error::TrustEdit(_) | Error::Rotation(_) => "trust-store",
            Error::Key { .. } | Error::DeviceKey(_) | Error::Signer(_) => "key",
            Error::Io { .. } => "io",
            Error::Db(e) => e.kind(),
            Error::NotWaiting { .. } => "not-waiting",
        }
    }
}

/// A bundle that could not be opened (a wrong path) was never judged: its message says
/// so, without "verification failed".
fn verify_message(e: &VerifyError) -> String {
    match e {
        VerifyError::Open { .. } => e.to_string(),
        _ => format!("bundle verification failed: {e}"),
    }
}
