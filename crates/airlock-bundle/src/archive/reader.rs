//! Streaming, verifying bundle reader.
//!
//! Invariant: one pass over the archive, memory bounded by the limits, and a payload
//! byte reaches a [`Sink`] only inside an entry that is a regular file, at a safe path,
//! in manifest order, of the manifest's size; the sink's result is only kept by the
//! caller after the whole bundle verified (hash, trailing data, trust).

use super::chunks::{ChunkRoom, ChunkVerifier, CHUNK_MISMATCH};
use super::gz::ThreadedGzReader;
use super::piece::{Piece, Tap};
use super::writer::END_OF_ARCHIVE;
use super::VerifyError;
use super::{Meter, NoMeter};
use crate::bundle_path::{collision_key, BundlePath};
use crate::manifest::{self, Manifest, MANIFEST, SIG_DIR, TRUST_UPDATE_DIR};
use crate::minisign::SignatureBox;
use crate::trust::update::EmbeddedStore;
use crate::trust::{self, TrustStore, TrustVerdict};
use chrono::{DateTime, Utc};
use std::cell::RefCell;
use std::collections::{HashSet, VecDeque};
use std::io::{self, Read};
use std::path::Path;
use std::rc::Rc;
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
    /// Whether this sink acts on no byte before the whole bundle verified (it keeps or
    /// drops them): then nothing needs a chunk authenticated before the file's end.
    fn holds_until_verified(&self) -> bool {
        false
    }
    /// Asked after [`begin`](Self::begin): whether this bundle's chunk hashes were
    /// proven for its bytes before (the crate's `verdicts`) and nothing acts on a byte
    /// before the file's hash is checked. Then the file's SHA-256, checked as ever,
    /// proves the same bytes and so their chunks: the reader hashes each file once.
    fn chunks_proven(&self) -> bool {
        false
    }
    /// Whether the bytes it reads go anywhere (kept, written, passed on): a sink that
    /// only lets them be hashed says no.
    fn keeps_bytes(&self) -> bool {
        true
    }
    /// Take the file's bytes as pieces of the inflated stream, each of a chunk already
    /// authenticated, when the sink only hands them on (to a thread judging them): the
    /// reader takes them (`fill`, given what takes them on) with no copy at all. False:
    /// the sink reads them through [`file`](Self::file) instead. Offered only for
    /// files with chunk hashes.
    fn pieces(
        &mut self,
        _path: &BundlePath,
        _size: u64,
        _fill: &mut dyn FnMut(&mut dyn Pieces) -> io::Result<()>,
    ) -> io::Result<bool> {
        Ok(false)
    }
}

/// Takes a file's bytes as pieces of the inflated stream ([`Sink::pieces`]).
pub trait Pieces {
    /// The file's next bytes, authenticated.
    fn take(&mut self, piece: Piece) -> io::Result<()>;
}

/// A sink that only lets the bytes be hashed.
pub struct Discard;
impl Sink for Discard {
    fn file(&mut self, _: &BundlePath, _: u64, _: &mut dyn Read) -> io::Result<()> {
        Ok(())
    }

    fn holds_until_verified(&self) -> bool {
        true
    }

    fn keeps_bytes(&self) -> bool {
        false
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
    /// The signed trust store the bundle carries, its files as the manifest lists
    /// them (`trust_update`), read before any payload.
    pub trust_update: Option<EmbeddedStore>,
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

struct Guarded<'p> {
    inner: ThreadedGzReader,
    compressed: Arc<AtomicU64>,
    out: u64,
    limits: Limits,
    /// Shows compressed bytes consumed out of the file's size.
    progress: &'p dyn Meter,
    zero: ZeroRanges,
    /// How an entry's data is taken without a copy.
    tap: Rc<Tap>,
}

impl Guarded<'_> {
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

impl Read for Guarded<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = if self.tap.stealing() {
            // An entry's data, taken as a piece of the stream (`buf` is not filled:
            // the tar reader only counts it).
            let Some(piece) = self.inner.take_piece(buf.len())? else {
                return Ok(0);
            };
            self.check_zero(self.out, piece.bytes())?;
            let n = piece.len();
            self.tap.taken(piece);
            n
        } else {
            let n = self.inner.read(buf)?;
            self.check_zero(self.out, &buf[..n])?;
            n
        };
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
        VerifyError::SqlRule(rest.to_string())
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
                    at: crate::trust::rfc3339(*at),
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
    let tap: Rc<Tap> = Default::default();
    let guarded = Guarded {
        inner: gz,
        compressed,
        out: 0,
        limits: limits.clone(),
        progress,
        zero: zero.clone(),
        tap: Rc::clone(&tap),
    };
    let mut archive = tar::Archive::new(guarded);
    let mut walk = EntryWalk::new(judge, limits, sink, zero, tap);
    for entry in archive.entries().map_err(io_to_verify)?.raw(true) {
        walk.entry(entry.map_err(io_to_verify)?)?;
    }
    let (opened, stream_len) = walk.finish()?;
    check_archive_end(archive.into_inner(), stream_len)?;
    Ok(opened)
}

/// An entry that passed what every entry must: within the limits, a regular file at a
/// safe path seen once, with the header pack writes for it.
struct Admitted {
    path: String,
    bundle_path: BundlePath,
    size: u64,
}

/// The walk over a bundle's entries in the order the format fixes: manifest.json
/// first, then `signatures/<KEYID>.minisig` sorted, then exactly the manifest's files
/// in its order.
struct EntryWalk<'a> {
    judge: Judge<'a>,
    limits: &'a Limits,
    sink: &'a mut dyn Sink,
    /// Padding ranges the guarded stream checks, registered entry by entry.
    zero: ZeroRanges,
    /// Collision keys of the paths seen so far.
    seen: HashSet<String>,
    entries: usize,
    /// Bytes the entries so far declare.
    total: u64,
    /// Where the tar stream's entries end: headers, data and padding so far.
    stream_len: u64,
    opened: Option<Opened>,
    /// Index in the manifest's files of the payload file that comes next.
    next_file: usize,
    signatures: Vec<(String, SignatureBox)>,
    /// The carried trust store's files read so far (`trust-update/`, after the
    /// signatures, before the payload).
    carried: Vec<(String, Vec<u8>)>,
    /// What files with chunk hashes share.
    chunks: ChunkRoom,
    /// How a file with chunk hashes is handed on without a copy.
    tap: Rc<Tap>,
}

impl<'a> EntryWalk<'a> {
    fn new(
        judge: Judge<'a>,
        limits: &'a Limits,
        sink: &'a mut dyn Sink,
        zero: ZeroRanges,
        tap: Rc<Tap>,
    ) -> Self {
        EntryWalk {
            judge,
            limits,
            sink,
            zero,
            seen: HashSet::new(),
            entries: 0,
            total: 0,
            stream_len: 0,
            opened: None,
            next_file: 0,
            signatures: vec![],
            carried: vec![],
            chunks: ChunkRoom::default(),
            tap,
        }
    }

    /// Check one entry, then take it as the manifest, a signature or the next payload
    /// file.
    fn entry<T: Read>(&mut self, mut entry: tar::Entry<'_, T>) -> Result<(), VerifyError> {
        let admitted = self.admit(&entry)?;
        if self.opened.is_none() {
            self.manifest(&mut entry, admitted)
        } else if admitted.path.starts_with(SIG_DIR) {
            self.signature(&mut entry, admitted)
        } else if admitted.path.starts_with(TRUST_UPDATE_DIR) {
            self.carried_file(&mut entry, admitted)
        } else {
            self.payload(&mut entry, admitted)
        }
    }

    /// What every entry must be, checked in this order before any of its data is read.
    fn admit<T: Read>(&mut self, entry: &tar::Entry<'_, T>) -> Result<Admitted, VerifyError> {
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(VerifyError::Limit(format!(
                "more than {} entries",
                self.limits.max_entries
            )));
        }
        let raw_path = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw_path).into_owned();
        let header = entry.header();
        let etype = header.entry_type();
        let size = entry.size();
        self.register_padding(entry.raw_file_position() + size, &shown);
        if etype.is_pax_local_extensions() {
            return Err(VerifyError::Pax {
                path: shown,
                why: "airlock bundles carry no PAX headers (pack never writes one)".into(),
            });
        }
        if !(etype.is_file()) {
            return Err(VerifyError::EntryType {
                path: shown,
                kind: entry_kind(etype),
            });
        }
        let path = String::from_utf8(raw_path).map_err(|_| VerifyError::UnsafePath {
            path: shown.clone(),
            why: "path is not UTF-8".into(),
        })?;
        let bundle_path = BundlePath::new(&path).map_err(|e| VerifyError::UnsafePath {
            path: path.clone(),
            why: e.to_string(),
        })?;
        if !self.seen.insert(collision_key(&path)) {
            return Err(VerifyError::Duplicate { path });
        }
        if size > self.limits.max_entry {
            return Err(VerifyError::Limit(format!(
                "{path} declares {size} bytes, limit {}",
                self.limits.max_entry
            )));
        }
        self.total += size;
        if self.total > self.limits.max_total {
            return Err(VerifyError::Limit(format!(
                "bundle holds more than {} bytes",
                self.limits.max_total
            )));
        }
        check_canonical_header(&path, size, header)?;
        Ok(Admitted {
            path,
            bundle_path,
            size,
        })
    }

    /// Everything up to the end of this entry's padding (its data ends at `data_end`);
    /// the padding must be zero.
    fn register_padding(&mut self, data_end: u64, shown: &str) {
        self.stream_len = data_end.div_ceil(512) * 512;
        if self.stream_len > data_end {
            self.zero
                .borrow_mut()
                .push_back((data_end, self.stream_len, shown.to_string()));
        }
    }

    /// Step 1: manifest.json first.
    fn manifest(&mut self, entry: &mut dyn Read, admitted: Admitted) -> Result<(), VerifyError> {
        if admitted.path != MANIFEST {
            return Err(VerifyError::ManifestNotFirst {
                found: admitted.path,
            });
        }
        let bytes = read_limited(
            entry,
            admitted.size,
            self.limits.max_manifest,
            "manifest.json",
        )?;
        let manifest = Manifest::parse(&bytes)?;
        let bundle_id = manifest::bundle_id(&bytes);
        self.opened = Some(Opened {
            manifest_bytes: bytes,
            manifest,
            bundle_id,
            signatures: vec![],
            trust: None,
            trust_update: None,
        });
        Ok(())
    }

    /// Step 2: signatures/<KEYID>.minisig, before any payload, sorted by name.
    fn signature(&mut self, entry: &mut dyn Read, admitted: Admitted) -> Result<(), VerifyError> {
        let path = admitted.path;
        if self.next_file > 0 || !self.carried.is_empty() {
            return Err(VerifyError::OutOfOrder {
                path,
                why: "signature after payload or the carried trust store".into(),
            });
        }
        if self.signatures.len() >= self.limits.max_signatures {
            return Err(VerifyError::Limit(format!(
                "more than {} signatures",
                self.limits.max_signatures
            )));
        }
        let bytes = read_limited(entry, admitted.size, self.limits.max_signature, &path)?;
        let text = String::from_utf8(bytes).map_err(|_| VerifyError::Signature {
            file: path.clone(),
            why: "not UTF-8".into(),
        })?;
        let sig = SignatureBox::parse(&text).map_err(|e| VerifyError::Signature {
            file: path.clone(),
            why: e.to_string(),
        })?;
        let name = &path[SIG_DIR.len()..];
        if name != format!("{}.minisig", sig.key_id) {
            return Err(VerifyError::Signature {
                file: path.clone(),
                why: format!(
                    "file name does not match the key id inside ({})",
                    sig.key_id
                ),
            });
        }
        if let Some((last, _)) = self.signatures.last() {
            if *last >= path {
                return Err(VerifyError::OutOfOrder {
                    path,
                    why: "signatures are not sorted".into(),
                });
            }
        }
        self.signatures.push((path, sig));
        Ok(())
    }

    /// Step 3, the carried trust store (`trust-update/`): exactly the files the
    /// manifest's `trust_update` lists, in order, each of its size and SHA-256, kept in
    /// memory (bounded by the manifest's own caps on them).
    fn carried_file(
        &mut self,
        entry: &mut dyn Read,
        admitted: Admitted,
    ) -> Result<(), VerifyError> {
        let op = self.opened.as_ref().expect("manifest read first");
        let path = admitted.path;
        if self.next_file > 0 {
            return Err(VerifyError::OutOfOrder {
                path,
                why: "the carried trust store comes before the payload".into(),
            });
        }
        let Some(expected) = op
            .manifest
            .trust_update
            .as_ref()
            .and_then(|t| t.files.get(self.carried.len()))
        else {
            return Err(VerifyError::Unexpected { path });
        };
        if expected.path != path {
            return Err(VerifyError::OutOfOrder {
                path,
                why: format!("expected {} next", expected.path),
            });
        }
        if admitted.size != expected.size {
            return Err(VerifyError::SizeMismatch {
                path,
                expected: expected.size,
                actual: admitted.size,
            });
        }
        let bytes = read_limited(entry, admitted.size, expected.size, &path)?;
        let actual = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
        if actual != expected.sha256 {
            return Err(VerifyError::HashMismatch {
                path,
                expected: expected.sha256.clone(),
                actual,
            });
        }
        self.carried.push((path, bytes));
        Ok(())
    }

    /// Before the payload (or the end): the carried trust store is whole, and goes to
    /// [`Opened::trust_update`].
    fn carried_whole(&mut self) -> Result<(), VerifyError> {
        let op = self.opened.as_mut().expect("manifest read first");
        let Some(listed) = &op.manifest.trust_update else {
            return Ok(());
        };
        if let Some(missing) = listed.files.get(self.carried.len()) {
            return Err(VerifyError::Missing {
                path: missing.path.clone(),
            });
        }
        let files = std::mem::take(&mut self.carried)
            .into_iter()
            .map(|(p, b)| (p[TRUST_UPDATE_DIR.len()..].to_string(), b))
            .collect();
        op.trust_update = Some(EmbeddedStore {
            version: listed.version,
            files,
        });
        Ok(())
    }

    /// Step 4, payload: exactly the manifest's files, in order. Trust is judged, and the
    /// sink told, before the first one.
    fn payload(&mut self, entry: &mut dyn Read, admitted: Admitted) -> Result<(), VerifyError> {
        if self.next_file == 0 {
            self.carried_whole()?;
        }
        let op = self.opened.as_mut().expect("manifest read first");
        if self.next_file == 0 {
            op.signatures = std::mem::take(&mut self.signatures);
            judge_trust(&self.judge, op)?;
            self.sink.begin(op)?;
        }
        let manifest = &op.manifest;
        let expected = expected_file(manifest, self.next_file, &admitted)?;
        let room = (!self.sink.chunks_proven()).then_some(&mut self.chunks);
        let chunks = room.map(|room| (room, &*self.tap));
        stream_file(&mut *self.sink, entry, manifest, expected, admitted, chunks)?;
        self.next_file += 1;
        Ok(())
    }

    /// After the last entry: the manifest was there, trust was judged, and no file the
    /// manifest lists is missing. With where the entries end.
    fn finish(mut self) -> Result<(Opened, u64), VerifyError> {
        let Some(mut op) = self.opened.take() else {
            return Err(VerifyError::ManifestNotFirst {
                found: "(empty archive)".into(),
            });
        };
        if self.next_file == 0 {
            // No payload at all: still judge trust so the message is the right one.
            self.opened = Some(op);
            self.carried_whole()?;
            op = self.opened.take().expect("put back");
            op.signatures = std::mem::take(&mut self.signatures);
            judge_trust(&self.judge, &mut op)?;
        }
        if let Some(missing) = op.manifest.files.get(self.next_file) {
            return Err(VerifyError::Missing {
                path: missing.path.clone(),
            });
        }
        Ok((op, self.stream_len))
    }
}

/// What a tar entry that is not a regular file is, for the refusal.
fn entry_kind(etype: tar::EntryType) -> String {
    if etype.is_symlink() {
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
    }
}

/// The manifest's file at `index`, which this entry must be: same path, same size.
fn expected_file<'m>(
    manifest: &'m Manifest,
    index: usize,
    entry: &Admitted,
) -> Result<&'m manifest::FileEntry, VerifyError> {
    let path = &entry.path;
    let Some(expected) = manifest.files.get(index) else {
        return Err(VerifyError::Unexpected { path: path.clone() });
    };
    if expected.path != *path {
        return Err(if manifest.file(path).is_some() {
            VerifyError::OutOfOrder {
                path: path.clone(),
                why: format!("expected {} here", expected.path),
            }
        } else {
            VerifyError::Unexpected { path: path.clone() }
        });
    }
    if entry.size != expected.size {
        return Err(VerifyError::SizeMismatch {
            path: path.clone(),
            expected: expected.size,
            actual: entry.size,
        });
    }
    Ok(expected)
}

/// Hand one payload file to the sink through what authenticates it on the way, then
/// hash whatever the sink left unread and compare with the manifest (`room`: what files
/// with chunk hashes share).
fn stream_file(
    sink: &mut dyn Sink,
    entry: &mut dyn Read,
    manifest: &Manifest,
    expected: &manifest::FileEntry,
    admitted: Admitted,
    chunks: Option<(&mut ChunkRoom, &Tap)>,
) -> Result<(), VerifyError> {
    let Admitted {
        path,
        bundle_path,
        size,
    } = admitted;
    // SHA256SUMS must say exactly what the manifest says, so that an auditor's
    // `sha256sum -c` checks every payload file.
    let sums_bytes;
    let mut sums_cursor;
    let source: &mut dyn Read = if path == manifest::SUMS {
        sums_bytes = read_limited(entry, size, 16 << 20, "SHA256SUMS")?;
        if sums_bytes != manifest::render_sums(&manifest.files) {
            return Err(VerifyError::SumsMismatch);
        }
        sums_cursor = io::Cursor::new(sums_bytes);
        &mut sums_cursor
    } else {
        entry
    };
    // A file with chunk hashes reaches the sink one authenticated chunk at a
    // time: a chunk is read whole and hashed before any byte of it is handed on
    // (unless its chunks were proven before: `chunks` is then None, see
    // `Sink::chunks_proven`).
    let (actual, len) = match (&expected.chunks, chunks) {
        (Some(chunks), Some((room, tap))) => {
            let mut chunked = ChunkVerifier::new(source, room, &path, size, chunks);
            let mut fill = |pieces: &mut dyn Pieces| chunked.hand_pieces(pieces, tap);
            if !sink
                .pieces(&bundle_path, size, &mut fill)
                .map_err(sink_error)?
            {
                hand_on(sink, &bundle_path, size, &mut chunked)?;
                chunked.drain().map_err(io_to_verify)?;
            }
            chunked.finish()
        }
        _ => {
            let mut hashing = manifest::HashingReader::new(source);
            hand_on(sink, &bundle_path, size, &mut hashing)?;
            drain(&mut hashing).map_err(io_to_verify)?;
            hashing.finish()
        }
    };
    if len != size {
        return Err(VerifyError::Tar(format!("{path}: truncated entry")));
    }
    if actual != expected.sha256 {
        return Err(VerifyError::HashMismatch {
            path,
            expected: expected.sha256.clone(),
            actual,
        });
    }
    Ok(())
}

/// The sink reads the file (through what checks it); its own I/O failure is a write
/// failure, a check's is the check's.
fn hand_on(
    sink: &mut dyn Sink,
    path: &BundlePath,
    size: u64,
    data: &mut dyn Read,
) -> Result<(), VerifyError> {
    sink.file(path, size, data).map_err(sink_error)
}

/// A failure while a sink read a file: the checks' own (invalid data) as they are, its
/// own as a write failure.
fn sink_error(e: io::Error) -> VerifyError {
    match e.kind() {
        io::ErrorKind::InvalidData => io_to_verify(e),
        _ => VerifyError::Write(e.to_string()),
    }
}

/// Read what the sink left unread (most sinks read it all). `io::copy` reads into a
/// buffer it never zeroes, so each of many small files costs nothing to drain.
fn drain(r: &mut dyn Read) -> io::Result<()> {
    io::copy(r, &mut io::sink()).map(drop)
}

/// After the last entry: exactly the end-of-archive marker pack writes (1024 zero
/// bytes), then the gzip end.
fn check_archive_end(mut rest: Guarded<'_>, stream_len: u64) -> Result<(), VerifyError> {
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
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::writer::BundleWriter;
    use crate::manifest::{FileEntry, CHUNK, SUMS};
    use crate::spec::{Spec, SPEC_FILE};
    use sha2::{Digest, Sha256};

    fn sha(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    /// A bundle (no signatures: judged for its structure) whose one tier file is
    /// `data` with its chunk hashes, then changed by `alter`.
    fn bundle(data: &[u8], alter: impl Fn(&mut Vec<u8>)) -> Vec<u8> {
        let spec_text = "[bundle]\nname = \"p\"\nversion = \"1\"\nsequence = 1\n[target]\ndatabase = \"x\"\n[[tier]]\nname = \"t\"\nfiles = [\"sql/t.sql\"]\n";
        let spec: Spec = toml::from_str(spec_text).unwrap();
        let entry = |path: &str, bytes: &[u8]| FileEntry {
            path: path.into(),
            sha256: sha(bytes),
            size: bytes.len() as u64,
            chunks: (bytes.len() as u64 > CHUNK)
                .then(|| bytes.chunks(CHUNK as usize).map(sha).collect()),
        };
        let mut files = vec![
            entry(SPEC_FILE, spec_text.as_bytes()),
            entry("sql/t.sql", data),
        ];
        let sums = manifest::render_sums(&files);
        files.push(entry(SUMS, &sums));
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let manifest = Manifest::from_spec(spec, files);
        let mut altered = data.to_vec();
        alter(&mut altered);
        let mut w = BundleWriter::new(Vec::new(), 1, &manifest.to_canonical_bytes(), &[]).unwrap();
        for f in &manifest.files {
            let bytes: &[u8] = match f.path.as_str() {
                SUMS => &sums,
                SPEC_FILE => spec_text.as_bytes(),
                _ => &altered,
            };
            w.add(&f.path, bytes.len() as u64, &mut &bytes[..]).unwrap();
        }
        w.finish().unwrap()
    }

    /// Takes the tier file's bytes as pieces, and keeps them.
    #[derive(Default)]
    struct Taker {
        taken: Vec<u8>,
        pieces: usize,
    }

    impl Pieces for Taker {
        fn take(&mut self, piece: Piece) -> io::Result<()> {
            self.taken.extend_from_slice(piece.bytes());
            self.pieces += 1;
            Ok(())
        }
    }

    impl Sink for Taker {
        fn file(&mut self, _: &BundlePath, _: u64, _: &mut dyn Read) -> io::Result<()> {
            Ok(())
        }

        fn keeps_bytes(&self) -> bool {
            false
        }

        fn pieces(
            &mut self,
            _: &BundlePath,
            _: u64,
            fill: &mut dyn FnMut(&mut dyn Pieces) -> io::Result<()>,
        ) -> io::Result<bool> {
            fill(self).map(|()| true)
        }
    }

    fn rows(len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 100);
        let mut i = 0u64;
        while out.len() < len {
            out.extend_from_slice(
                format!("INSERT INTO t VALUES ({i}, 'x{}');\n", i * 7).as_bytes(),
            );
            i += 1;
        }
        out.truncate(len);
        out
    }

    fn read(bundle: Vec<u8>, sink: &mut Taker) -> Result<Opened, VerifyError> {
        read_bundle_from(
            io::Cursor::new(bundle),
            Judge::StructureOnly,
            &Limits::default(),
            sink,
        )
    }

    /// The pieces bring the file whole, as pieces of the inflated stream (none a copy
    /// of the reader's: several to a chunk).
    #[test]
    fn pieces_bring_a_file_whole() {
        let data = rows(2 * CHUNK as usize + 12_345);
        let mut sink = Taker::default();
        read(bundle(&data, |_| {}), &mut sink).unwrap();
        assert!(sink.taken == data, "the bytes taken are the file's");
        assert!(
            sink.pieces > 3 * (CHUNK as usize >> 20),
            "{} pieces",
            sink.pieces
        );
    }

    /// A chunk altered after it was hashed: the pieces of the chunks before it are
    /// taken, and not one byte of it or after it.
    #[test]
    fn no_piece_of_an_altered_chunk_is_taken() {
        let data = rows(3 * CHUNK as usize);
        for (at, before) in [(0, 0), (CHUNK as usize + 7, 1), (3 * CHUNK as usize - 1, 2)] {
            let mut sink = Taker::default();
            let err = read(bundle(&data, |d| d[at] ^= 1), &mut sink).unwrap_err();
            assert!(
                matches!(&err, VerifyError::ChunkMismatch { index, .. } if *index == before),
                "{err}"
            );
            assert!(
                sink.taken == data[..before * CHUNK as usize],
                "altered at {at}"
            );
        }
    }
}
