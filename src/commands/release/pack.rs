//! `airlock pack`: lint, hash, sign, write the deterministic bundle atomically.

use crate::archive::writer::BundleWriter;
use crate::cli::PackArgs;
use crate::commands::common::{source_date_epoch, AtomicFile, NewFileMode};
use crate::commands::signing_key::load_secret_key;
use crate::error::{Error, Result};
use crate::manifest::{self, FileEntry, Manifest, TrustUpdateRef};
use crate::minisign::SignatureBox;
use crate::minisign::{sign_with, KeySigner};
use crate::progress::Progress;
use crate::report::{Outcome, Report};
use crate::trust_update::EmbeddedStore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::io::BufReader;
use std::path::{Path, PathBuf};

#[derive(Serialize, schemars::JsonSchema)]
pub struct PackReport {
    pub bundle: PathBuf,
    pub bundle_id: String,
    pub name: String,
    pub version: String,
    pub sequence: u64,
    pub files: usize,
    pub payload_bytes: u64,
    pub bundle_bytes: u64,
    pub signed_by: String,
    /// A bundle for a fleet: its `[target] database` (names and patterns; see
    /// `fleet_line`); absent for a bundle for one database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_database: Option<crate::spec::TargetDatabase>,
    pub warnings: Vec<String>,
    /// Statements of the tier and rollback files that reach beyond the target
    /// database, as `lint` and `plan` name them: `rehearse` refuses such a bundle.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reaches_beyond: Vec<crate::sql_lint::Reach>,
}

impl Report for PackReport {
    fn human(&self) -> String {
        let mut s = format!(
            "packed {} {} (sequence {})\n  bundle:    {}\n  bundle id: {}\n  files:     {} ({} bytes, {} compressed)\n  signed by: {}",
            self.name,
            self.version,
            self.sequence,
            self.bundle.display(),
            self.bundle_id,
            self.files,
            self.payload_bytes,
            self.bundle_bytes,
            self.signed_by
        );
        s.push_str(&crate::commands::release::lint::fleet_line(
            self.target_database.as_ref(),
        ));
        for w in &self.warnings {
            s.push_str(&format!("\nwarning: {w}"));
        }
        s.push_str(&crate::commands::release::lint::reach_lines(
            &self.reaches_beyond,
        ));
        s
    }
}

/// A file name made only of safe characters.
pub fn default_name(m: &Manifest) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "._-".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    format!(
        "{}-{}.airlock.tar.gz",
        clean(&m.bundle.name),
        clean(&m.bundle.version)
    )
}

/// Pack `source` signed by `key` into `out` (or the default name in the cwd).
pub fn pack_dir(
    source: &Path,
    key: &dyn KeySigner,
    out: Option<&Path>,
    level: u32,
    force: bool,
) -> Result<PackReport> {
    pack_linted(crate::spec::lint(source)?, key, out, level, force, None)
}

/// The trust store `--trust-update` names, as the bundle carries it, and its manifest
/// listing.
fn carried(dir: &Path) -> Result<(EmbeddedStore, TrustUpdateRef)> {
    let store = EmbeddedStore::from_dir(dir, chrono::Utc::now())?;
    let files = store
        .files
        .iter()
        .map(|(rel, bytes)| FileEntry {
            path: format!("{}{rel}", manifest::TRUST_UPDATE_DIR),
            sha256: hex::encode(Sha256::digest(bytes)),
            size: bytes.len() as u64,
            chunks: None,
        })
        .collect();
    let listed = TrustUpdateRef {
        version: store.version,
        files,
    };
    Ok((store, listed))
}

/// Pack an already linted source.
fn pack_linted(
    linted: crate::spec::Linted,
    key: &dyn KeySigner,
    out: Option<&Path>,
    level: u32,
    force: bool,
    trust_update: Option<(EmbeddedStore, TrustUpdateRef)>,
) -> Result<PackReport> {
    // Lint read and hashed every file (the manifest, with the hashes, comes first in
    // the archive); this second pass compresses them and checks they did not change.
    let mut files = payload_entries(&linted)?;
    let progress = Progress::bytes(files.iter().map(|f| f.size).sum(), "packing");
    let sums = manifest::render_sums(&files);
    files.push(FileEntry {
        path: manifest::SUMS.into(),
        sha256: hex::encode(Sha256::digest(&sums)),
        size: sums.len() as u64,
        chunks: None,
    });
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let mut manifest = Manifest::from_spec(linted.spec.clone(), files);
    let (carried, listed) = match trust_update {
        Some((store, listed)) => (Some(store), Some(listed)),
        None => (None, None),
    };
    manifest.trust_update = listed;
    let manifest_bytes = manifest.to_canonical_bytes();
    // Round-trip through the strict parser: never ship what a verifier would refuse.
    Manifest::parse(&manifest_bytes)
        .map_err(|e| Error::usage(format!("internal: manifest does not re-parse: {e}"), None))?;
    let id = manifest::bundle_id(&manifest_bytes);
    let timestamp = signing_time()?;
    refuse_expired(&manifest, timestamp)?;
    let signature = sign_with(
        key,
        &manifest_bytes,
        &manifest::trusted_comment(&manifest, &id, timestamp),
    )?;
    let dest = out
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(default_name(&manifest)));
    if dest.exists() && !force {
        return Err(Error::usage(
            format!("{} already exists", dest.display()),
            Some("use --out FILE, or --force to overwrite".into()),
        ));
    }
    let archive = Archive {
        source: linted.dir.as_path(),
        manifest: &manifest,
        manifest_bytes: &manifest_bytes,
        signature,
        sums: &sums,
        level,
        carried: carried.as_ref(),
    };
    write_bundle(&dest, force, &archive, &progress)?;
    let bundle_bytes = std::fs::metadata(&dest).map(|m| m.len()).unwrap_or(0);
    Ok(PackReport {
        reaches_beyond: linted.reaches_beyond,
        bundle: dest,
        bundle_id: id,
        name: manifest.bundle.name.clone(),
        version: manifest.bundle.version.clone(),
        sequence: manifest.bundle.sequence,
        files: manifest.files.len(),
        payload_bytes: manifest.payload_size(),
        bundle_bytes,
        signed_by: key.public().key_id.to_string(),
        target_database: manifest.target.database.fleet(),
        warnings: linted
            .warnings
            .into_iter()
            .chain(expiry_warning(&manifest, chrono::Utc::now()))
            .collect(),
    })
}

/// The manifest entries of the source's files, with the hashes lint computed.
fn payload_entries(linted: &crate::spec::Linted) -> Result<Vec<FileEntry>> {
    let mut files = vec![];
    for path in &linted.files {
        let (sha256, size, chunks) =
            linted.hashes.get(path.as_str()).cloned().ok_or_else(|| {
                Error::usage(format!("internal: {path} was not hashed by lint"), None)
            })?;
        files.push(FileEntry {
            path: path.to_string(),
            sha256,
            size,
            chunks,
        });
    }
    Ok(files)
}

/// What goes into the archive: the signed manifest, then every file it lists.
struct Archive<'a> {
    source: &'a Path,
    manifest: &'a Manifest,
    manifest_bytes: &'a [u8],
    signature: SignatureBox,
    /// The rendered `SHA256SUMS`, which is not in the source.
    sums: &'a [u8],
    level: u32,
    /// The trust store the bundle carries (`--trust-update`).
    carried: Option<&'a EmbeddedStore>,
}

/// Writes `archive` to `dest` atomically, each source file hashed again as it is
/// compressed: what is packed is what the manifest says.
fn write_bundle(
    dest: &Path,
    force: bool,
    archive: &Archive<'_>,
    progress: &Progress,
) -> Result<()> {
    let mut tmp = AtomicFile::new(dest, NewFileMode::Public)?;
    let file = tmp
        .file()
        .try_clone()
        .map_err(|e| Error::io("cannot write bundle", e))?;
    let werr = |e: std::io::Error| Error::io(format!("cannot write {}", dest.display()), e);
    let mut writer = BundleWriter::new(
        std::io::BufWriter::with_capacity(1 << 20, file),
        archive.level,
        archive.manifest_bytes,
        std::slice::from_ref(&archive.signature),
    )
    .map_err(werr)?;
    for (rel, bytes) in archive.carried.iter().flat_map(|c| c.files.iter()) {
        let path = format!("{}{rel}", manifest::TRUST_UPDATE_DIR);
        writer
            .add(&path, bytes.len() as u64, &mut &bytes[..])
            .map_err(werr)?;
    }
    for entry in &archive.manifest.files {
        if entry.path == manifest::SUMS {
            writer
                .add(&entry.path, entry.size, &mut &archive.sums[..])
                .map_err(werr)?;
            continue;
        }
        let path = archive.source.join(&entry.path);
        let file = std::fs::File::open(&path)
            .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
        // Hashed again while compressed: what is packed is what the manifest says.
        let mut hashing =
            manifest::HashingReader::new(progress.reader(BufReader::with_capacity(1 << 20, file)));
        writer
            .add(&entry.path, entry.size, &mut hashing)
            .map_err(werr)?;
        if hashing.finish() != (entry.sha256.clone(), entry.size) {
            return Err(Error::usage(
                format!("{} changed while packing", entry.path),
                Some("nothing was written; pack again from a source nobody is editing".into()),
            ));
        }
    }
    let buffered = writer.finish().map_err(werr)?;
    buffered.into_inner().map_err(|e| werr(e.into_error()))?;
    tmp.commit(force)?;
    Ok(())
}

/// When the signature says it was made: SOURCE_DATE_EPOCH (reproducible packs), else now.
fn signing_time() -> Result<i64> {
    Ok(source_date_epoch()?.unwrap_or_else(|| chrono::Utc::now().timestamp()))
}

/// A bundle already expired when it is signed is refused (exit 2, nothing written):
/// every verify, gate and apply would refuse it. Re-packing an old release with its
/// SOURCE_DATE_EPOCH, to show it reproduces, judges at that time.
fn refuse_expired(m: &Manifest, signed_at: i64) -> Result<()> {
    let Some(text) = m.bundle.expires.as_deref() else {
        return Ok(());
    };
    match crate::trust::parse_rfc3339(text) {
        Some(at) if at.timestamp() <= signed_at => Err(Error::usage(
            format!("bundle.expires {text} is not after the signing time: every verify, gate and apply would refuse this bundle as expired; nothing was written"),
            Some("set a later expires in bundle.toml (or none), then pack again".into()),
        )),
        _ => Ok(()),
    }
}

/// How soon an expiry counts as "very soon" for a warning at pack time.
const EXPIRES_SOON: chrono::TimeDelta = chrono::TimeDelta::days(7);

/// A bundle that expires before it can be carried across and applied is worth a word:
/// verify, gate and apply refuse it from `expires` on (exit 4).
fn expiry_warning(m: &Manifest, now: chrono::DateTime<chrono::Utc>) -> Option<String> {
    let text = m.bundle.expires.as_deref()?;
    let at = crate::trust::parse_rfc3339(text)?;
    if at <= now {
        Some(format!(
            "bundle.expires {text} has already passed: verify, gate and apply will refuse this bundle as expired; set a later expires and pack again"
        ))
    } else if at - now < EXPIRES_SOON {
        let hours = (at - now).num_hours();
        Some(format!(
            "bundle.expires {text} is in {} (under {} days): the bundle is refused as expired from then on",
            if hours < 1 {
                "less than an hour".to_string()
            } else {
                format!("about {hours} hour(s)")
            },
            EXPIRES_SOON.num_days()
        ))
    } else {
        None
    }
}

pub fn run(args: PackArgs) -> Result<Outcome> {
    // Lint before asking for a passphrase: a broken source fails fast (and once).
    let linted = crate::spec::lint(&args.source)?;
    refuse_expired(
        &Manifest::from_spec(linted.spec.clone(), vec![]),
        signing_time()?,
    )?;
    // The carried store is checked (signed by its own roots) before the passphrase.
    let trust_update = args.trust_update.as_deref().map(carried).transpose()?;
    let key = load_secret_key(&args.key, &args.pass)?;
    Ok(Box::new(pack_linted(
        linted,
        &key,
        args.out.as_deref(),
        args.level,
        args.force,
        trust_update,
    )?))
}
