//! The bundle archive: a deterministic writer and a streaming, verifying reader.
//!
//! Invariant: bytes only ever leave this module after the whole bundle verified —
//! in memory ([`MemorySink`]) or in a temporary directory renamed into place
//! ([`extract`]).

mod advice;
mod chunks;
pub mod gz;
pub mod head;
pub mod inflate;
pub mod piece;
pub mod reader;
pub mod writer;

use crate::bundle_path::BundlePath;
use crate::manifest::ManifestError;
use crate::trust::TrustVerdict;
use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

pub use reader::{
    read_bundle, read_bundle_from, read_bundle_observed, Discard, Judge, Limits, Opened, Pieces,
    Sink,
};

/// Where the reader reports how many compressed bytes of the file it has consumed: a
/// progress bar in the CLI. The bundle layer draws nothing itself.
pub trait Meter {
    fn set_position(&self, _consumed: u64) {}
}

/// A [`Meter`] that shows nothing.
pub struct NoMeter;

impl Meter for NoMeter {}

/// Prefix of a sink's I/O error that is a SQL rule violated by a file being read (a
/// streamed tier file is linted as it streams).
pub const SQL_RULE: &str = "SQLRULE: ";

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("cannot open bundle {path}: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error("{0}")]
    Gzip(String),
    #[error("malformed tar archive: {0}")]
    Tar(String),
    #[error("manifest.json must be the first entry, found {found}")]
    ManifestNotFirst { found: String },
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// A file of the bundle breaks a SQL rule this airlock enforces. The bundle may be
    /// exactly what its signers signed: a verdict about SQL, never one of tampering.
    #[error("SQL rule violated: {0}")]
    SqlRule(String),
    #[error("unsafe path {path:?}: {why}")]
    UnsafePath { path: String, why: String },
    #[error("{path}: {kind} entries are refused; a bundle holds regular files only")]
    EntryType { path: String, kind: String },
    #[error("{path}: refused PAX header: {why}")]
    Pax { path: String, why: String },
    /// The archive is not the one encoding `pack` writes for this manifest (header
    /// fields, padding, end marker): it was re-encoded, whatever its hashes say.
    #[error(
        "{path}: {why}; a bundle has exactly one tar encoding, so this archive was re-encoded"
    )]
    NonCanonical { path: String, why: String },
    #[error("{path}: appears twice (after case/Unicode normalization)")]
    Duplicate { path: String },
    #[error("{path}: not listed in the manifest")]
    Unexpected { path: String },
    #[error("{path}: out of order: {why}")]
    OutOfOrder { path: String, why: String },
    #[error("{path}: listed in the manifest but missing from the bundle")]
    Missing { path: String },
    #[error("{path}: size {actual} bytes, manifest says {expected}")]
    SizeMismatch {
        path: String,
        expected: u64,
        actual: u64,
    },
    #[error("{path}: SHA-256 mismatch\n  expected {expected}\n  actual   {actual}")]
    HashMismatch {
        path: String,
        expected: String,
        actual: String,
    },
    /// One chunk (of [`crate::manifest::CHUNK`] bytes) of a file is not what was signed;
    /// nothing of that chunk or after it was handed on.
    #[error("{path}: SHA-256 mismatch in chunk {index} (bytes from {})\n  expected {expected}\n  actual   {actual}", *index as u64 * crate::manifest::CHUNK)]
    ChunkMismatch {
        path: String,
        index: usize,
        expected: String,
        actual: String,
    },
    #[error("SHA256SUMS does not match the manifest's file list")]
    SumsMismatch,
    #[error("{file}: bad signature file: {why}")]
    Signature { file: String, why: String },
    #[error("{}", untrusted_message(.0))]
    Untrusted(Box<TrustVerdict>),
    #[error("bundle expired at {expires} (judged at {at}); auditors can judge an earlier time with --at")]
    Expired { expires: String, at: String },
    #[error("size limit: {0}")]
    Limit(String),
    #[error("{0}")]
    TrailingData(String),
    #[error("writing output failed: {0}")]
    Write(String),
    /// Said again: a streaming run's reader failed earlier with this.
    #[error("{0}")]
    Earlier(String),
}

fn untrusted_message(v: &TrustVerdict) -> String {
    let mut s = format!(
        "signature threshold not met: {} distinct trusted key(s) signed, {} required",
        v.distinct_keys, v.threshold
    );
    if v.signatures.is_empty() {
        s.push_str("\n  the bundle carries no signatures");
    }
    for c in &v.signatures {
        s.push_str(&format!(
            "\n  {}: {}",
            c.file,
            c.note.clone().unwrap_or_else(|| if c.counted {
                "counted".into()
            } else {
                "not counted".into()
            })
        ));
    }
    s
}

/// Keeps every payload file in memory (gate/plan/apply execute from these bytes).
#[derive(Default)]
pub struct MemorySink {
    pub files: BTreeMap<String, Vec<u8>>,
    pub max_total: u64,
    total: u64,
}

impl MemorySink {
    pub fn new(max_total: u64) -> MemorySink {
        MemorySink {
            files: BTreeMap::new(),
            max_total,
            total: 0,
        }
    }
}

impl Sink for MemorySink {
    fn file(&mut self, path: &BundlePath, size: u64, data: &mut dyn Read) -> io::Result<()> {
        self.total += size;
        if self.total > self.max_total {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "LIMIT: payload larger than {} bytes cannot be executed from memory",
                    self.max_total
                ),
            ));
        }
        let mut buf = Vec::with_capacity(size as usize);
        data.read_to_end(&mut buf)?;
        self.files.insert(path.as_str().to_string(), buf);
        Ok(())
    }
}

/// The modes `extract` writes, whatever the archive's headers or the umask say: a
/// bundle holds plain files (the manifest has no modes), never executables, setuid
/// bits or private files.
pub const EXTRACTED_FILE_MODE: u32 = 0o644;
pub const EXTRACTED_DIR_MODE: u32 = 0o755;

/// Writes each file under a (temporary) root. Paths are `BundlePath`s, so they stay
/// inside the root.
struct DirSink {
    root: PathBuf,
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_: &Path, _: u32) -> io::Result<()> {
    Ok(())
}

impl DirSink {
    /// Create the directories between the root and `dest`, each 0755.
    fn make_dirs(&self, dest: &Path) -> io::Result<()> {
        let Some(parent) = dest.parent() else {
            return Ok(());
        };
        let mut missing = vec![];
        let mut dir = parent;
        while dir != self.root && !dir.exists() {
            missing.push(dir.to_path_buf());
            dir = match dir.parent() {
                Some(p) => p,
                None => break,
            };
        }
        for d in missing.iter().rev() {
            std::fs::create_dir(d)?;
            set_mode(d, EXTRACTED_DIR_MODE)?;
        }
        Ok(())
    }

    fn write_file(&self, rel: &str, data: &mut dyn Read) -> io::Result<()> {
        let dest = self.root.join(rel);
        self.make_dirs(&dest)?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&dest)?;
        set_mode(&dest, EXTRACTED_FILE_MODE)?;
        io::copy(data, &mut f)?;
        f.sync_all()
    }
}

impl Sink for DirSink {
    fn begin(&mut self, opened: &Opened) -> Result<(), VerifyError> {
        let w = |e: io::Error| VerifyError::Write(e.to_string());
        self.write_file(crate::manifest::MANIFEST, &mut &opened.manifest_bytes[..])
            .map_err(w)?;
        for (name, sig) in &opened.signatures {
            self.write_file(name, &mut sig.to_file_text().as_bytes())
                .map_err(w)?;
        }
        Ok(())
    }
    fn file(&mut self, path: &BundlePath, _size: u64, data: &mut dyn Read) -> io::Result<()> {
        self.write_file(path.as_str(), data)
    }
}

/// Verify fully into a temporary directory beside `to`, then rename it into place.
/// `to` must not exist (or be an empty directory). On any failure nothing remains.
pub fn extract(
    bundle: &Path,
    judge: Judge<'_>,
    limits: &Limits,
    to: &Path,
    progress: &dyn Meter,
) -> Result<Opened, ExtractError> {
    if to.exists() {
        let empty = to.is_dir()
            && std::fs::read_dir(to)
                .map(|mut d| d.next().is_none())
                .unwrap_or(false);
        if !empty {
            return Err(ExtractError::DestinationExists(to.to_path_buf()));
        }
    }
    let parent = match to.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".airlock-extract-")
        .tempdir_in(&parent)
        .map_err(|e| ExtractError::Io(parent.clone(), e))?;
    let mut sink = DirSink {
        root: tmp.path().to_path_buf(),
    };
    let opened = read_bundle_observed(bundle, judge, limits, &mut sink, progress)?;
    // The temporary directory is private (0700) while it fills; the result is not.
    set_mode(tmp.path(), EXTRACTED_DIR_MODE).map_err(|e| ExtractError::Io(tmp.path().into(), e))?;
    if to.exists() {
        std::fs::remove_dir(to).map_err(|e| ExtractError::Io(to.to_path_buf(), e))?;
    }
    let kept = tmp.keep();
    std::fs::rename(&kept, to).map_err(|e| {
        let _ = std::fs::remove_dir_all(&kept);
        ExtractError::Io(to.to_path_buf(), e)
    })?;
    Ok(opened)
}

#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error(transparent)]
    Verify(#[from] VerifyError),
    #[error("{0} already exists and is not an empty directory; choose a new --to")]
    DestinationExists(PathBuf),
    #[error("{0}: {1}")]
    Io(PathBuf, io::Error),
}
