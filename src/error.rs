//! The one place where errors become exit codes (DESIGN.md §6) and hints.
//!
//! 0 success / READY · 1 runtime · 2 usage · 3 BLOCKED · 4 verification ·
//! 5 database state check · 6 ledger refusal or deploy lock.

use crate::archive::{ExtractError, VerifyError};
use crate::db::DbError;
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
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error("bundle verification failed: {0}")]
    Verify(#[from] VerifyError),
    #[error(transparent)]
    Extract(#[from] ExtractError),
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

    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage { .. } | Error::Spec(_) => 2,
            Error::Verify(VerifyError::Open { .. }) => 1,
            Error::Verify(VerifyError::Write(_)) => 1,
            Error::Verify(_) | Error::Trust(_) => 4,
            Error::Extract(ExtractError::Verify(VerifyError::Open { .. })) => 1,
            Error::Extract(ExtractError::Verify(_)) => 4,
            Error::Extract(ExtractError::DestinationExists(_)) => 2,
            Error::Extract(ExtractError::Io(..)) => 1,
            Error::Key { source, .. } => match source {
                MinisignError::WrongPassphrase | MinisignError::PassphraseRequired => 2,
                _ => 1,
            },
            Error::Io { .. } => 1,
            Error::Db(e) => e.exit_code(),
        }
    }

    /// What to do next, on its own line.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Usage { hint, .. } => hint.clone(),
            Error::Spec(_) => Some("fix bundle.toml or the named files, then run `airlock lint SOURCE` again".into()),
            Error::Verify(VerifyError::Open { .. }) => None,
            Error::Verify(VerifyError::Untrusted(_)) => Some(
                "get the bundle co-signed (`airlock sign`) by enough trusted release keys, or check that --trust points at the right store".into(),
            ),
            Error::Verify(_) | Error::Extract(ExtractError::Verify(_)) => Some(
                "do not use this bundle: it is not what the release manager signed. Ask for a fresh copy and verify again".into(),
            ),
            Error::Trust(_) => Some("fix the trust store (*.pub files and trust.toml)".into()),
            Error::Key { source: MinisignError::WrongPassphrase, .. } => {
                Some("check the passphrase (AIRLOCK_PASSPHRASE or --passphrase-file)".into())
            }
            Error::Key { source: MinisignError::PassphraseRequired, .. } => {
                Some("set AIRLOCK_PASSPHRASE or pass --passphrase-file FILE".into())
            }
            Error::Db(e) => e.hint(),
            _ => None,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Error::Usage { .. } => "usage",
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
