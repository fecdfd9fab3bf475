//! `VerifiedBundle`: the only way bundle content reaches gate/plan/apply/rollback.
//!
//! Invariant: a `VerifiedBundle` was read in one pass from one file, verified against
//! a trust store (threshold, windows, expiry, hashes, structure), its SQL re-checked
//! with the parser rules, and it executes from the bytes kept during that pass — the
//! bundle file is never re-opened by path.
//!
//! Where those bytes live: small files (gates, probes, most tiers) in memory; a file
//! larger than [`ExecLimits::spill_above`] in one private, nameless temporary file
//! (`O_TMPFILE`, mode 0600, in `$TMPDIR`), written in the same pass that hashes it:
//! the bytes written are the bytes the hash was computed over, the file has no name
//! anyone could open, and only this process holds its descriptor. So a data release of
//! any size is applied in bounded memory, with no size cap.

use crate::archive::{self, Judge, Limits, Opened, Sink, VerifyError};
use crate::bundle_path::BundlePath;
use crate::manifest::{Manifest, ManifestError};
use crate::sql_lint::{self, SqlRole};
use crate::trust::TrustStore;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

/// How a verified bundle keeps and runs its payload. Tests lower both to exercise the
/// large-file paths with small files.
#[derive(Clone, Debug)]
pub struct ExecLimits {
    /// Payload files larger than this go to the private spill file instead of memory.
    pub spill_above: u64,
    /// A large tier file is sent in simple-query messages of about this many bytes,
    /// cut at statement boundaries (a small file is one message).
    pub message_bytes: usize,
}

impl Default for ExecLimits {
    fn default() -> Self {
        ExecLimits {
            spill_above: 8 << 20,
            message_bytes: 8 << 20,
        }
    }
}

/// Where one verified file's bytes are.
enum Kept {
    Memory(Vec<u8>),
    Spilled { offset: u64, len: u64 },
}

pub struct VerifiedBundle {
    pub opened: Opened,
    files: BTreeMap<String, Kept>,
    spill: Option<File>,
    limits: ExecLimits,
}

/// The verified bytes of one file, wherever they are kept.
#[derive(Clone, Copy)]
pub enum Payload<'a> {
    Memory(&'a [u8]),
    Spilled {
        file: &'a File,
        offset: u64,
        len: u64,
    },
}

impl Payload<'_> {
    pub fn len(&self) -> u64 {
        match self {
            Payload::Memory(b) => b.len() as u64,
            Payload::Spilled { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Fill `buf` from byte `pos` of the file (less only at its end); returns the count.
    pub fn read_at(&self, pos: u64, buf: &mut [u8]) -> io::Result<usize> {
        let len = self.len();
        if pos >= len {
            return Ok(0);
        }
        let want = buf.len().min((len - pos) as usize);
        match self {
            Payload::Memory(b) => {
                buf[..want].copy_from_slice(&b[pos as usize..pos as usize + want]);
            }
            Payload::Spilled { file, offset, .. } => {
                use std::os::unix::fs::FileExt;
                file.read_exact_at(&mut buf[..want], offset + pos)?;
            }
        }
        Ok(want)
    }

    /// Bytes `from..to` appended to `out`.
    pub fn append_range(&self, from: u64, to: u64, out: &mut Vec<u8>) -> io::Result<()> {
        let start = out.len();
        out.resize(start + (to - from) as usize, 0);
        let n = self.read_at(from, &mut out[start..])?;
        if n as u64 != to - from {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "range beyond the end of the verified file",
            ));
        }
        Ok(())
    }
}

/// Reads a [`Payload`] from its start.
pub struct PayloadReader<'a> {
    payload: Payload<'a>,
    pos: u64,
}

impl Read for PayloadReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.payload.read_at(self.pos, buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

pub fn reader_of(payload: Payload<'_>) -> PayloadReader<'_> {
    PayloadReader { payload, pos: 0 }
}

/// Keeps what streams by: small files, gates and probes in memory, large ones appended
/// to the spill file.
struct KeepSink {
    spill_above: u64,
    /// Gates and probes: one query each, read whole; kept in memory up to the size the
    /// re-check allows them.
    queries: std::collections::BTreeSet<String>,
    files: BTreeMap<String, Kept>,
    spill: Option<File>,
    spilled: u64,
}

impl KeepSink {
    /// Append `data` to the spill file, created on first use; returns its length.
    /// Errors reading `data` pass through as they are (the reader's own verdicts);
    /// errors writing say where the file was being kept.
    fn spill_one(&mut self, path: &BundlePath, size: u64, data: &mut dyn Read) -> io::Result<u64> {
        let write_err = |e: io::Error| {
            io::Error::new(
                e.kind(),
                format!(
                    "keeping {path} ({size} bytes) in a private temporary file under {} (TMPDIR): {e}",
                    std::env::temp_dir().display()
                ),
            )
        };
        if self.spill.is_none() {
            // Nameless (O_TMPFILE where the filesystem has it, else created and
            // unlinked at once), 0600: nobody can open it by path.
            self.spill = Some(tempfile::tempfile().map_err(write_err)?);
        }
        let file = self.spill.as_mut().expect("created above");
        let mut buf = vec![0u8; 1 << 20];
        let mut len = 0u64;
        loop {
            let n = match data.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            file.write_all(&buf[..n]).map_err(write_err)?;
            len += n as u64;
        }
        Ok(len)
    }
}

impl Sink for KeepSink {
    fn begin(&mut self, opened: &Opened) -> Result<(), VerifyError> {
        self.queries = opened
            .manifest
            .spec()
            .named_files()
            .into_iter()
            .filter(|(_, role, _)| matches!(role, Some(SqlRole::Gate | SqlRole::Probe)))
            .map(|(file, _, _)| file)
            .collect();
        Ok(())
    }

    fn file(&mut self, path: &BundlePath, size: u64, data: &mut dyn Read) -> io::Result<()> {
        let query = size <= sql_lint::MAX_QUERY_FILE && self.queries.contains(path.as_str());
        let kept = if size <= self.spill_above || query {
            let mut buf = Vec::with_capacity(size as usize);
            data.read_to_end(&mut buf)?;
            Kept::Memory(buf)
        } else {
            let offset = self.spilled;
            let len = self.spill_one(path, size, data)?;
            self.spilled += len;
            Kept::Spilled { offset, len }
        };
        self.files.insert(path.as_str().to_string(), kept);
        Ok(())
    }
}

impl VerifiedBundle {
    pub fn load(
        path: &Path,
        store: &TrustStore,
        at: DateTime<Utc>,
    ) -> Result<VerifiedBundle, VerifyError> {
        Self::load_with(path, store, at, ExecLimits::default())
    }

    /// [`load`](Self::load) with other execution limits (tests).
    pub fn load_with(
        path: &Path,
        store: &TrustStore,
        at: DateTime<Utc>,
        limits: ExecLimits,
    ) -> Result<VerifiedBundle, VerifyError> {
        let mut sink = KeepSink {
            spill_above: limits.spill_above,
            queries: Default::default(),
            files: BTreeMap::new(),
            spill: None,
            spilled: 0,
        };
        let opened = archive::read_bundle(
            path,
            Judge::Trust { store, at },
            &Limits::default(),
            &mut sink,
        )?;
        let vb = VerifiedBundle {
            opened,
            files: sink.files,
            spill: sink.spill,
            limits,
        };
        vb.recheck_sql()?;
        Ok(vb)
    }

    /// Re-run the parser rules on the exact bytes that will execute (scripts stream
    /// through the checker in bounded memory).
    fn recheck_sql(&self) -> Result<(), VerifyError> {
        for (file, role, _) in self.manifest().spec().named_files() {
            let Some(role) = role else { continue };
            let payload = self.payload(&file)?;
            let problems = sql_lint::check_reader(&file, &mut reader_of(payload), role)
                .map_err(|e| VerifyError::Write(format!("reading {file} back: {e}")))?;
            if let Some(p) = problems.into_iter().next() {
                return Err(VerifyError::Manifest(ManifestError::Invalid(format!(
                    "SQL rule violated: {p}"
                ))));
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

    pub fn limits(&self) -> &ExecLimits {
        &self.limits
    }

    /// The verified bytes of a payload file.
    pub fn payload(&self, path: &str) -> Result<Payload<'_>, VerifyError> {
        match self.files.get(path) {
            None => Err(VerifyError::Missing { path: path.into() }),
            Some(Kept::Memory(b)) => Ok(Payload::Memory(b)),
            Some(Kept::Spilled { offset, len }) => Ok(Payload::Spilled {
                file: self
                    .spill
                    .as_ref()
                    .expect("a spilled file has a spill file"),
                offset: *offset,
                len: *len,
            }),
        }
    }

    /// Bytes of payload held in memory (the rest is in the spill file).
    pub fn bytes_in_memory(&self) -> u64 {
        self.files
            .values()
            .map(|k| match k {
                Kept::Memory(b) => b.len() as u64,
                Kept::Spilled { .. } => 0,
            })
            .sum()
    }

    /// A whole file read into memory, for files shown to a person (runbooks).
    pub fn read_all(&self, path: &str) -> Result<Vec<u8>, VerifyError> {
        let payload = self.payload(path)?;
        let mut out = Vec::new();
        reader_of(payload)
            .read_to_end(&mut out)
            .map_err(|e| VerifyError::Write(format!("reading {path} back: {e}")))?;
        Ok(out)
    }

    /// A gate or probe as text: one query, so always kept in memory (a query file
    /// larger than the limit was refused by the re-check).
    pub fn sql(&self, path: &str) -> Result<&str, VerifyError> {
        let bytes = match self.payload(path)? {
            Payload::Memory(b) => b,
            Payload::Spilled { .. } => {
                return Err(VerifyError::Manifest(ManifestError::Invalid(format!(
                    "{path} is too large to be read as one query"
                ))))
            }
        };
        std::str::from_utf8(bytes).map_err(|_| {
            VerifyError::Manifest(ManifestError::Invalid(format!("{path} is not UTF-8")))
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
