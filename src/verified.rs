//! `VerifiedBundle`: the only way bundle content reaches gate/plan/apply/rollback.
//!
//! Invariant: a `VerifiedBundle` was read in one pass from one file, verified against
//! a trust store (threshold, windows, expiry, hashes, structure), its SQL re-checked
//! with the parser rules, and it executes from these in-memory bytes — the bundle file
//! is never re-opened by path.

use crate::archive::{self, Judge, Limits, MemorySink, Opened, VerifyError};
use crate::manifest::Manifest;
use crate::sql_lint::{self, SqlRole};
use crate::trust::TrustStore;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::path::Path;

/// Payloads above this are refused for execution (use `extract` to inspect them).
pub const MAX_EXEC_PAYLOAD: u64 = 1 << 30;

pub struct VerifiedBundle {
    pub opened: Opened,
    files: BTreeMap<String, Vec<u8>>,
}

impl VerifiedBundle {
    pub fn load(
        path: &Path,
        store: &TrustStore,
        at: DateTime<Utc>,
    ) -> Result<VerifiedBundle, VerifyError> {
        let mut sink = MemorySink::new(MAX_EXEC_PAYLOAD);
        let opened = archive::read_bundle(
            path,
            Judge::Trust { store, at },
            &Limits::default(),
            &mut sink,
        )?;
        let vb = VerifiedBundle {
            opened,
            files: sink.files,
        };
        vb.recheck_sql()?;
        Ok(vb)
    }

    /// Re-run the parser rules on the exact bytes that will execute.
    fn recheck_sql(&self) -> Result<(), VerifyError> {
        for (file, role, _) in self.manifest().spec().named_files() {
            let Some(role) = role else { continue };
            let text = self.sql(&file)?;
            if let Some(p) = sql_lint::check(&file, text, role).into_iter().next() {
                return Err(VerifyError::Manifest(
                    crate::manifest::ManifestError::Invalid(format!("SQL rule violated: {p}")),
                ));
            }
        }
        Ok(())
    }

    pub fn manifest(&self) -> &Manifest {
        &self.opened.manifest
    }

    pub fn id(&self) -> &str {
        &self.opened.bundle_id
    }

    pub fn bytes(&self, path: &str) -> Option<&[u8]> {
        self.files.get(path).map(Vec::as_slice)
    }

    /// A named SQL file as text (UTF-8 was required at pack time; checked again here).
    pub fn sql(&self, path: &str) -> Result<&str, VerifyError> {
        let bytes = self
            .bytes(path)
            .ok_or_else(|| VerifyError::Missing { path: path.into() })?;
        std::str::from_utf8(bytes).map_err(|_| {
            VerifyError::Manifest(crate::manifest::ManifestError::Invalid(format!(
                "{path} is not UTF-8"
            )))
        })
    }

    pub fn role_of(&self, path: &str) -> Option<SqlRole> {
        self.manifest()
            .spec()
            .named_files()
            .into_iter()
            .find(|(f, _, _)| f == path)
            .and_then(|(_, r, _)| r)
    }
}
