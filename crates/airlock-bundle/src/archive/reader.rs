//! Streaming, verifying bundle reader.
//!
//! Invariant: one pass over the archive, memory bounded by the limits, and a payload
//! byte reaches a [`Sink`] only inside an entry that is a regular file, at a safe path,
//! in manifest order, of the manifest's size; the sink's result is only kept by the
//! caller after the whole bundle verified (hash, trailing data, trust).

use super::writer::END_OF_ARCHIVE;
use super::VerifyError;
use super::{Meter, NoMeter};
use crate::bundle_path::{collision_key, BundlePath};
use crate::manifest::{self, Manifest, MANIFEST, SIG_DIR};
use crate::minisign::SignatureBox;
use crate::trust::{self, TrustStore, TrustVerdict};
use chrono::{DateTime, Utc};
use std::cell::RefCell;
use std::collections::{HashSet, VecDeque};
use std::io::{self, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Bounds on what a bundle may make us read. Defaults suit multi-GiB data releases.
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_manifest: u64,
    pub max_signature: u64,
    pub max_signatures: usize,
    pub max_entries: usize,
    pub max_entry: u64,
    pub max_total: u64,
    /// Decompressed:compressed ratio allowed once `ratio_floor` bytes were inflated.
    pub max_ratio: u64,
    pub ratio_floor: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_manifest: 8 << 20,
            max_signature: 4096,
            max_signatures: 64,
            max_entries: 100_000,
            max_entry: 16 << 30,
            max_total: 64 << 30,
            max_ratio: 200,
            ratio_floor: 64 << 20,
        }
    }
}

/// Receives the verified parts of a bundle as they stream by.
pub trait Sink {
    /// Called once the manifest and signatures are read (and trusted, if a store was
    /// given), before any payload byte.
    fn begin(&mut self, _opened: &Opened) -> Result<(), VerifyError> {
        Ok(())
    }
    /// Read the entry's bytes (the reader hashes them). Reading less is fine.
    fn file(&mut self, path: &BundlePath, size: u64, data: &mut dyn Read) -> io::Result<()>;
}

/// A sink that only lets the bytes be hashed.
pub struct Discard;
impl Sink for Discard {
    fn file(&mut self, _: &BundlePath, _: u64, _: &mut dyn Read) -> io::Result<()> {
        Ok(())
    }
}

/// What the head of the archive said.
#[derive(Clone, Debug)]
pub struct Opened {
    pub manifest_bytes: Vec<u8>,
    pub manifest: Manifest,
    pub bundle_id: String,
    /// (file name inside the bundle, signature)
    pub signatures: Vec<(String, SignatureBox)>,
    pub trust: Option<TrustVerdict>,
}

/// How the reader judges trust.
pub enum Judge<'a> {
    /// Require the store's threshold, judged at `at` (the clock, for the operator's
    /// commands); refuse expired bundles.
    Trust {
        store: &'a TrustStore,
        at: DateTime<Utc>,
    },
    /// As `Trust`, as `judging` says (`verify --at`: another time, and whether it was
    /// given).
    Judged {
        store: &'a TrustStore,
        judging: trust::Judging,
    },
    /// Structure and hashes only (inspect without a store, co-signing).
    StructureOnly,
}

/// Byte ranges of the tar stream that must be zero (the padding after each entry's
/// data), with the entry they follow. Registered before the tar reader reaches them.
type ZeroRanges = std::rc::Rc<RefCell<VecDeque<(u64, u64, String)>>>;

struct Guarded<'p, R> {
    inner: R,
    compressed: Arc<AtomicU64>,
    out: u64,
    limits: Limits,
    /// Shows compressed bytes consumed out of the file's size.
    progress: &'p dyn Meter,
    zero: ZeroRanges,
}

impl<R> Guarded<'_, R> {
    /// Refuse a non-zero byte inside a registered padding range of `buf`, which holds
    /// the stream's bytes from offset `start`.
    fn check_zero(&self, start: u64, buf: &[u8]) -> io::Result<()> {
        let end = start + buf.len() as u64;
        let mut ranges = self.zero.borrow_mut();
        while let Some((from, to, path)) = ranges.front() {
            if *from >= end {
                break;
            }
            let lo = (*from).max(start);
            let hi = (*to).min(end);
            if lo < hi
                && buf[(lo - start) as usize..(hi - start) as usize]
                    .iter()
                    .any(|&b| b != 0)
            {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{NONCANONICAL}{path}\tnon-zero bytes in the padding after its data (pack pads with zeros)"),
                ));
            }
            if *to <= end {
                ranges.pop_front();
            } else {
                break;
            }
        }
        Ok(())
    }
}

/// Prefix of an I/O error that is really a non-canonical archive (`path\twhy` follows).
const NONCANONICAL: &str = "NONCANONICAL: ";

impl<R: Read> Read for Guarded<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.check_zero(self.out, &buf[..n])?;
        self.out += n as u64;
        self.progress
            .set_position(self.compressed.load(Ordering::Relaxed));
        if self.out > self.limits.ratio_floor {
            let c = self.compressed.load(Ordering::Relaxed).max(1);
            if self.out / c > self.limits.max_ratio {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "LIMIT: decompression ratio above {}:1 after {} bytes (gzip bomb?)",
                        self.limits.max_ratio, self.out
                    ),
                ));
            }
        }
        if self.out > self.limits.max_total + (64 << 20) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "LIMIT: archive larger than the total size limit",
            ));
        }
        Ok(n)
    }
}

struct CountingFile<R> {
    f: R,
    count: Arc<AtomicU64>,
}
impl<R: Read> Read for CountingFile<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.f.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Prefix of an I/O error that is a chunk hash mismatch (`path\tindex\texpected\tactual`).
const CHUNK_MISMATCH: &str = "CHUNK: ";

/// Hands a file on only in whole chunks of [`manifest::CHUNK`] bytes whose SHA-256
/// matches the manifest's `chunks` entry: a chunk is read and hashed before its first
/// byte is released, so no reader of a bundle ever sees a byte of an altered chunk.
struct ChunkVerifier<'a> {
    inner: &'a mut dyn Read,
    path: String,
    size: u64,
    chunks: &'a [String],
    /// The chunk being handed on, and how much of it was.
    buf: Vec<u8>,
    pos: usize,
    /// Chunks read so far.
    next: usize,
}

impl<'a> ChunkVerifier<'a> {
    fn new(inner: &'a mut dyn Read, path: &str, size: u64, chunks: &'a [String]) -> Self {
        ChunkVerifier {
            inner,
            path: path.into(),
            size,
            chunks,
            buf: Vec::new(),
            pos: 0,
            next: 0,
        }
    }

    /// Read and check the next chunk; false at the end of the file.
    fn fill(&mut self) -> io::Result<bool> {
        let start = self.next as u64 * manifest::CHUNK;
        if start >= self.size {
            return Ok(false);
        }
        let want = (self.size - start).min(manifest::CHUNK) as usize;
        self.buf.resize(want, 0);
        let mut got = 0;
        while got < want {
            match self.inner.read(&mut self.buf[got..]) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{}: truncated entry", self.path),
                    ))
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let actual = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&self.buf));
        let expected = self.chunks.get(self.next).map(String::as_str).unwrap_or("");
        if actual != expected {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{CHUNK_MISMATCH}{}\t{}\t{expected}\t{actual}",
                    self.path, self.next
                ),
            ));
        }
        self.next += 1;
        self.pos = 0;
        Ok(true)
    }
}

impl Read for ChunkVerifier<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.buf.len() && !self.fill()? {
            return Ok(0);
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

fn io_to_verify(e: io::Error) -> VerifyError {
    let msg = e.to_string();
    if let Some(rest) = msg.strip_prefix(CHUNK_MISMATCH) {
        let mut parts = rest.split('\t');
        let mut next = || parts.next().unwrap_or("").to_string();
        let (path, index, expected, actual) = (next(), next(), next(), next());
        VerifyError::ChunkMismatch {
            path,
            index: index.parse().unwrap_or(0),
            expected,
            actual,
        }
    } else if let Some(rest) = msg.strip_prefix(super::SQL_RULE) {
        VerifyError::Manifest(crate::manifest::ManifestError::Invalid(format!(
            "SQL rule violated: {rest}"
        )))
    } else if let Some(rest) = msg.strip_prefix("LIMIT: ") {
        VerifyError::Limit(rest.to_string())
    } else if let Some(rest) = msg.strip_prefix(NONCANONICAL) {
        let (path, why) = rest.split_once('\t').unwrap_or(("(archive)", rest));
        VerifyError::NonCanonical {
            path: path.into(),
            why: why.into(),
        }
    } else if msg.contains("gzip") {
        VerifyError::Gzip(msg)
    } else {
        VerifyError::Tar(msg)
    }
}

fn read_limited(
    r: &mut dyn Read,
    size: u64,
    limit: u64,
    what: &str,
) -> Result<Vec<u8>, VerifyError> {
    if size > limit {
        return Err(VerifyError::Limit(format!(
            "{what} is {size} bytes, limit {limit}"
        )));
    }
    let mut buf = Vec::with_capacity(size as usize);
    r.take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(io_to_verify)?;
    if buf.len() as u64 != size {
        return Err(VerifyError::Tar(format!("{what}: truncated entry")));
    }
    Ok(buf)
}

/// The ustar header fields, by byte range, for saying which one differs.
const HEADER_FIELDS: [(&str, usize, usize); 16] = [
    ("name", 0, 100),
    ("mode", 100, 108),
    ("uid", 108, 116),
    ("gid", 116, 124),
    ("size", 124, 136),
    ("mtime", 136, 148),
    ("checksum", 148, 156),
    ("type", 156, 157),
    ("link name", 157, 257),
    ("magic", 257, 263),
    ("version", 263, 265),
    ("user name", 265, 297),
    ("group name", 297, 329),
    ("device major", 329, 337),
    ("device minor", 337, 345),
    ("prefix", 345, 512),
];

/// A header field as a person reads it: the text up to the first NUL, escaped.
fn field_text(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    let text = String::from_utf8_lossy(&bytes[..end]);
    let text = text.trim();
    if bytes[end..].iter().any(|&b| b != 0) {
        format!("{text:?} followed by non-zero bytes")
    } else {
        format!("{text:?}")
    }
}

/// The header must be byte for byte the one `pack` writes for this path and size:
/// mode, owner, names, mtime, type, device numbers, checksum encoding, everything.
fn check_canonical_header(path: &str, size: u64, found: &tar::Header) -> Result<(), VerifyError> {
    let expected = super::writer::header(path, size).map_err(|e| VerifyError::NonCanonical {
        path: path.into(),
        why: format!("pack cannot write this path in a ustar header ({e})"),
    })?;
    let (want, got) = (expected.as_bytes(), found.as_bytes());
    if want == got {
        return Ok(());
    }
    // Any other field first: a changed field changes the checksum too.
    let differs = |(_, from, to): &(&str, usize, usize)| want[*from..*to] != got[*from..*to];
    let (field, from, to) = HEADER_FIELDS
        .iter()
        .copied()
        .filter(|(name, _, _)| *name != "checksum")
        .find(differs)
        .or_else(|| HEADER_FIELDS.iter().copied().find(differs))
        .expect("headers differ in some field");
    Err(VerifyError::NonCanonical {
        path: path.into(),
        why: format!(
            "tar header {field} is {}, pack writes {}",
            field_text(&got[from..to]),
            field_text(&want[from..to])
        ),
    })
}

/// Signatures against the store's threshold, then expiry, both at the time judged.
fn judge_trust(judge: &Judge<'_>, op: &mut Opened) -> Result<(), VerifyError> {
    let (store, judging) = match judge {
        Judge::StructureOnly => return Ok(()),
        Judge::Trust { store, at } => (
            *store,
            trust::Judging {
                at: *at,
                given: false,
                now: Utc::now().max(*at),
                existed: None,
            },
        ),
        Judge::Judged { store, judging } => (*store, judging.clone()),
    };
    let at = &judging.at;
    let verdict = trust::evaluate(
        store,
        &op.manifest_bytes,
        &op.manifest,
        &op.bundle_id,
        &op.signatures,
        &judging,
    );
    if !verdict.met {
        return Err(VerifyError::Untrusted(Box::new(verdict)));
    }
    op.trust = Some(verdict);
    if let Some(exp) = &op.manifest.bundle.expires {
        if let Some(t) = trust::parse_rfc3339(exp) {
            if *at > t {
                return Err(VerifyError::Expired {
                    expires: exp.clone(),
                    at: at.to_rfc3339(),
                });
            }
        }
    }
    Ok(())
}

/// Read, check and (optionally) judge a bundle, streaming every payload file to `sink`.
pub fn read_bundle(
    path: &Path,
    judge: Judge<'_>,
    limits: &Limits,
    sink: &mut dyn Sink,
) -> Result<Opened, VerifyError> {
    read_bundle_observed(path, judge, limits, sink, &NoMeter)
}

/// [`read_bundle`], reporting the compressed bytes consumed to `progress`.
pub fn read_bundle_observed(
    path: &Path,
    judge: Judge<'_>,
    limits: &Limits,
    sink: &mut dyn Sink,
    progress: &dyn Meter,
) -> Result<Opened, VerifyError> {
    let f = std::fs::File::open(path).map_err(|source| VerifyError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    read_from(f, judge, limits, sink, progress)
}

/// As [`read_bundle`], from any byte source (the fuzz targets and property tests feed
/// bytes held in memory through exactly the path a file takes).
pub fn read_bundle_from<R: Read + Send + 'static>(
    input: R,
    judge: Judge<'_>,
    limits: &Limits,
    sink: &mut dyn Sink,
) -> Result<Opened, VerifyError> {
    read_from(input, judge, limits, sink, &NoMeter)
}

fn read_from<R: Read + Send + 'static>(
    input: R,
    judge: Judge<'_>,
    limits: &Limits,
    sink: &mut dyn Sink,
    progress: &dyn Meter,
) -> Result<Opened, VerifyError> {
    let compressed = Arc::new(AtomicU64::new(0));
    let gz = super::gz::ThreadedGzReader::new(CountingFile {
        f: input,
        count: Arc::clone(&compressed),
    });
    let zero: ZeroRanges = Default::default();
    let guarded = Guarded {
        inner: gz,
        compressed,
        out: 0,
        limits: limits.clone(),
        progress,
        zero: zero.clone(),
    };
    let mut archive = tar::Archive::new(guarded);
    let (opened, stream_len) = {
        let mut entries = archive.entries().map_err(io_to_verify)?.raw(true);
        let mut seen = HashSet::new();
        let mut count = 0usize;
        let mut total = 0u64;
        // Where the tar stream's entries end: headers, data and padding so far.
        let mut stream_len = 0u64;
        let mut opened: Option<Opened> = None;
        let mut expected_idx = 0usize;
        let mut sigs: Vec<(String, SignatureBox)> = vec![];
        for entry in entries.by_ref() {
            let mut entry = entry.map_err(io_to_verify)?;
            count += 1;
            if count > limits.max_entries {
                return Err(VerifyError::Limit(format!(
                    "more than {} entries",
                    limits.max_entries
                )));
            }
            let raw_path = entry.path_bytes().into_owned();
            let shown = String::from_utf8_lossy(&raw_path).into_owned();
            let header = entry.header().clone();
            let etype = header.entry_type();
            let size = entry.size();
            // Everything up to the end of this entry's padding; the padding must be zero.
            let data_end = entry.raw_file_position() + size;
            stream_len = data_end.div_ceil(512) * 512;
            if stream_len > data_end {
                zero.borrow_mut()
                    .push_back((data_end, stream_len, shown.clone()));
            }
            if etype.is_pax_local_extensions() {
                return Err(VerifyError::Pax {
                    path: shown,
                    why: "airlock bundles carry no PAX headers (pack never writes one)".into(),
                });
            }
            if !(etype.is_file()) {
                let kind = if etype.is_symlink() {
                    "symlink".to_string()
                } else if etype.is_hard_link() {
                    "hard link".to_string()
                } else if etype.is_dir() {
                    "directory".to_string()
                } else if etype.is_character_special() || etype.is_block_special() {
                    "device".to_string()
                } else if etype.is_fifo() {
                    "FIFO".to_string()
                } else if etype.is_gnu_longname() || etype.is_gnu_longlink() {
                    "GNU long-name record".to_string()
                } else if etype.is_pax_global_extensions() {
                    "PAX global header".to_string()
                } else {
                    format!("type {:?}", etype.as_byte() as char)
                };
                return Err(VerifyError::EntryType { path: shown, kind });
            }
            let path_str = String::from_utf8(raw_path).map_err(|_| VerifyError::UnsafePath {
                path: shown.clone(),
                why: "path is not UTF-8".into(),
            })?;
            let bpath = BundlePath::new(&path_str).map_err(|e| VerifyError::UnsafePath {
                path: path_str.clone(),
                why: e.to_string(),
            })?;
            if !seen.insert(collision_key(&path_str)) {
                return Err(VerifyError::Duplicate { path: path_str });
            }
            if size > limits.max_entry {
                return Err(VerifyError::Limit(format!(
                    "{path_str} declares {size} bytes, limit {}",
                    limits.max_entry
                )));
            }
            total += size;
            if total > limits.max_total {
                return Err(VerifyError::Limit(format!(
                    "bundle holds more than {} bytes",
                    limits.max_total
                )));
            }
            check_canonical_header(&path_str, size, &header)?;

            // 1. manifest.json first.
            if opened.is_none() {
                if path_str != MANIFEST {
                    return Err(VerifyError::ManifestNotFirst { found: path_str });
                }
                let bytes = read_limited(&mut entry, size, limits.max_manifest, "manifest.json")?;
                let manifest = Manifest::parse(&bytes)?;
                let bundle_id = manifest::bundle_id(&bytes);
                opened = Some(Opened {
                    manifest_bytes: bytes,
                    manifest,
                    bundle_id,
                    signatures: vec![],
                    trust: None,
                });
                continue;
            }
            let op = opened.as_mut().expect("manifest read first");
            // 2. signatures/<KEYID>.minisig, before any payload.
            if let Some(name) = path_str.strip_prefix(SIG_DIR) {
                if expected_idx > 0 {
                    return Err(VerifyError::OutOfOrder {
                        path: path_str,
                        why: "signature after payload".into(),
                    });
                }
                if sigs.len() >= limits.max_signatures {
                    return Err(VerifyError::Limit(format!(
                        "more than {} signatures",
                        limits.max_signatures
                    )));
                }
                let bytes = read_limited(&mut entry, size, limits.max_signature, &path_str)?;
                let text = String::from_utf8(bytes).map_err(|_| VerifyError::Signature {
                    file: path_str.clone(),
                    why: "not UTF-8".into(),
                })?;
                let sig = SignatureBox::parse(&text).map_err(|e| VerifyError::Signature {
                    file: path_str.clone(),
                    why: e.to_string(),
                })?;
                if name != format!("{}.minisig", sig.key_id) {
                    return Err(VerifyError::Signature {
                        file: path_str.clone(),
                        why: format!(
                            "file name does not match the key id inside ({})",
                            sig.key_id
                        ),
                    });
                }
                if let Some((last, _)) = sigs.last() {
                    if *last >= path_str {
                        return Err(VerifyError::OutOfOrder {
                            path: path_str,
                            why: "signatures are not sorted".into(),
                        });
                    }
                }
                sigs.push((path_str, sig));
                continue;
            }
            // 3. payload: exactly the manifest's files, in order.
            if expected_idx == 0 {
                op.signatures = std::mem::take(&mut sigs);
                judge_trust(&judge, op)?;
                sink.begin(op)?;
            }
            let Some(expected) = op.manifest.files.get(expected_idx) else {
                return Err(VerifyError::Unexpected { path: path_str });
            };
            if expected.path != path_str {
                return Err(if op.manifest.file(&path_str).is_some() {
                    VerifyError::OutOfOrder {
                        path: path_str,
                        why: format!("expected {} here", expected.path),
                    }
                } else {
                    VerifyError::Unexpected { path: path_str }
                });
            }
            if size != expected.size {
                return Err(VerifyError::SizeMismatch {
                    path: path_str,
                    expected: expected.size,
                    actual: size,
                });
            }
            // SHA256SUMS must say exactly what the manifest says, so that an auditor's
            // `sha256sum -c` checks every payload file.
            let sums_bytes;
            let mut sums_cursor;
            let source: &mut dyn Read = if path_str == manifest::SUMS {
                sums_bytes = read_limited(&mut entry, size, 16 << 20, "SHA256SUMS")?;
                if sums_bytes != manifest::render_sums(&op.manifest.files) {
                    return Err(VerifyError::SumsMismatch);
                }
                sums_cursor = io::Cursor::new(sums_bytes);
                &mut sums_cursor
            } else {
                &mut entry
            };
            // A file with chunk hashes reaches the sink one authenticated chunk at a
            // time: a chunk is read whole and hashed before any byte of it is handed on.
            let mut chunked;
            let source: &mut dyn Read = match &expected.chunks {
                Some(chunks) => {
                    chunked = ChunkVerifier::new(source, &path_str, size, chunks);
                    &mut chunked
                }
                None => source,
            };
            let mut hr = manifest::HashingReader::new(source);
            sink.file(&bpath, size, &mut hr)
                .map_err(|e| match e.kind() {
                    io::ErrorKind::InvalidData => io_to_verify(e),
                    _ => VerifyError::Write(e.to_string()),
                })?;
            io::copy(&mut hr, &mut io::sink()).map_err(io_to_verify)?;
            let (actual, len) = hr.finish();
            if len != size {
                return Err(VerifyError::Tar(format!("{path_str}: truncated entry")));
            }
            if actual != expected.sha256 {
                return Err(VerifyError::HashMismatch {
                    path: path_str,
                    expected: expected.sha256.clone(),
                    actual,
                });
            }
            expected_idx += 1;
        }
        let Some(mut op) = opened else {
            return Err(VerifyError::ManifestNotFirst {
                found: "(empty archive)".into(),
            });
        };
        if expected_idx == 0 {
            // No payload at all: still judge trust so the message is the right one.
            op.signatures = std::mem::take(&mut sigs);
            judge_trust(&judge, &mut op)?;
        }
        if let Some(missing) = op.manifest.files.get(expected_idx) {
            return Err(VerifyError::Missing {
                path: missing.path.clone(),
            });
        }
        (op, stream_len)
    };
    // After the last entry: exactly the end-of-archive marker pack writes (1024 zero
    // bytes), then the gzip end.
    let mut rest = archive.into_inner();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = rest.read(&mut buf).map_err(io_to_verify)?;
        if n == 0 {
            break;
        }
        if buf[..n].iter().any(|&b| b != 0) {
            return Err(VerifyError::TrailingData(
                "non-zero bytes after the tar end-of-archive marker".into(),
            ));
        }
        if rest.out > stream_len + END_OF_ARCHIVE {
            break;
        }
    }
    let end = rest.out.saturating_sub(stream_len);
    if end != END_OF_ARCHIVE {
        return Err(VerifyError::NonCanonical {
            path: "(end of archive)".into(),
            why: format!(
                "{end} zero bytes after the last entry, pack writes exactly {END_OF_ARCHIVE}"
            ),
        });
    }
    Ok(opened)
}
