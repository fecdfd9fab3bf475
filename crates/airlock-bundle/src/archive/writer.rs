//! Deterministic bundle writer.
//!
//! Invariant: the archive bytes depend only on the manifest, the signatures, the
//! payload bytes and the compression level: entries sorted as DESIGN §3 orders them,
//! ustar headers made only by [`header`] (mode 0644, uid/gid 0, empty owner names,
//! mtime 0), data padded with zeros, exactly 1024 zero bytes at the end, gzip from
//! [`ParallelGzWriter`](super::gz::ParallelGzWriter). The reader requires every one of
//! those bytes, so one manifest has exactly one tar encoding.

use super::gz::ParallelGzWriter;
use crate::manifest::{MANIFEST, SIG_DIR};
use crate::minisign::SignatureBox;
use std::io::{self, Read, Write};

/// `pack`'s gzip level. Measured on 1 GiB of SQL text (benches/compare.sh), zlib-rs
/// level 5 packs 40% faster than 6 for a bundle 1.5% larger: the knee of the curve.
pub const DEFAULT_LEVEL: u32 = 5;

pub struct BundleWriter<W: Write> {
    tar: tar::Builder<ParallelGzWriter<W>>,
}

/// The mode every entry's header carries. Headers are not what `extract` writes
/// with: it makes files 0644 and directories 0755 whatever an archive says.
pub const ENTRY_MODE: u32 = 0o644;

/// The zero bytes after the last entry (two 512-byte blocks, as `tar::Builder`
/// writes them).
pub const END_OF_ARCHIVE: u64 = 1024;

/// The one header an entry with this path and size has. Its mtime is 0: the time a
/// bundle was signed is in its signatures' trusted comments, and a header time would
/// be a second, unsigned, freely chosen one.
pub fn header(path: &str, size: u64) -> io::Result<tar::Header> {
    let mut h = tar::Header::new_ustar();
    h.set_path(path)?;
    h.set_size(size);
    h.set_mode(ENTRY_MODE);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    Ok(h)
}

pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(8)
}

impl<W: Write> BundleWriter<W> {
    /// Starts the archive with the manifest and the signatures (sorted by file name).
    pub fn new(out: W, level: u32, manifest: &[u8], sigs: &[SignatureBox]) -> io::Result<Self> {
        let gz = ParallelGzWriter::new(out, level, default_threads());
        let mut tar = tar::Builder::new(gz);
        tar.mode(tar::HeaderMode::Deterministic);
        let mut w = BundleWriter { tar };
        w.add(MANIFEST, manifest.len() as u64, &mut &manifest[..])?;
        let mut named: Vec<(String, String)> = sigs
            .iter()
            .map(|s| (format!("{SIG_DIR}{}.minisig", s.key_id), s.to_file_text()))
            .collect();
        named.sort();
        for (name, text) in named {
            w.add(&name, text.len() as u64, &mut text.as_bytes())?;
        }
        Ok(w)
    }

    /// Append one payload file; exactly `size` bytes are read from `data`.
    pub fn add(&mut self, path: &str, size: u64, data: &mut dyn Read) -> io::Result<()> {
        let h = header(path, size)?;
        self.tar.append(&h, data.take(size))
    }

    pub fn finish(self) -> io::Result<W> {
        let gz = self.tar.into_inner()?;
        gz.finish()
    }
}
