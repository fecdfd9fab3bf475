//! `airlock pack`: lint, hash, sign, write the deterministic bundle atomically.

use super::common::{load_secret_key, source_date_epoch, AtomicFile, NewFileMode};
use crate::archive::writer::BundleWriter;
use crate::cli::PackArgs;
use crate::error::{Error, Result};
use crate::manifest::{self, FileEntry, Manifest};
use crate::minisign::SecretKey;
use crate::progress::Progress;
use crate::report::{Outcome, Report};
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
    pub warnings: Vec<String>,
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
        for w in &self.warnings {
            s.push_str(&format!("\nwarning: {w}"));
        }
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
    key: &SecretKey,
    out: Option<&Path>,
    level: u32,
    force: bool,
) -> Result<PackReport> {
    pack_linted(crate::spec::lint(source)?, key, out, level, force)
}

/// Pack an already linted source.
fn pack_linted(
    linted: crate::spec::Linted,
    key: &SecretKey,
    out: Option<&Path>,
    level: u32,
    force: bool,
) -> Result<PackReport> {
    let source = linted.dir.as_path();
    // Lint read and hashed every file (the manifest, with the hashes, comes first in
    // the archive); this second pass compresses them and checks they did not change.
    let mut files = vec![];
    for p in &linted.files {
        let (sha256, size, chunks) =
            linted.hashes.get(p.as_str()).cloned().ok_or_else(|| {
                Error::usage(format!("internal: {p} was not hashed by lint"), None)
            })?;
        files.push(FileEntry {
            path: p.to_string(),
            sha256,
            size,
            chunks,
        });
    }
    let progress = Progress::bytes(files.iter().map(|f| f.size).sum(), "packing");
    let sums = manifest::render_sums(&files);
    files.push(FileEntry {
        path: manifest::SUMS.into(),
        sha256: hex::encode(Sha256::digest(&sums)),
        size: sums.len() as u64,
        chunks: None,
    });
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let m = Manifest::from_spec(linted.spec.clone(), files);
    let bytes = m.to_canonical_bytes();
    // Round-trip through the strict parser: never ship what a verifier would refuse.
    Manifest::parse(&bytes)
        .map_err(|e| Error::usage(format!("internal: manifest does not re-parse: {e}"), None))?;
    let id = manifest::bundle_id(&bytes);
    let epoch = source_date_epoch()?;
    let timestamp = epoch.unwrap_or_else(|| chrono::Utc::now().timestamp());
    let sig = key.sign(&bytes, &manifest::trusted_comment(&m, &id, timestamp));
    let dest = out
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(default_name(&m)));
    if dest.exists() && !force {
        return Err(Error::usage(
            format!("{} already exists", dest.display()),
            Some("use --out FILE, or --force to overwrite".into()),
        ));
    }
    let mut tmp = AtomicFile::new(&dest, NewFileMode::Public)?;
    let file = tmp
        .file()
        .try_clone()
        .map_err(|e| Error::io("cannot write bundle", e))?;
    let werr = |e: std::io::Error| Error::io(format!("cannot write {}", dest.display()), e);
    let mut w = BundleWriter::new(
        std::io::BufWriter::with_capacity(1 << 20, file),
        level,
        &bytes,
        &[sig],
    )
    .map_err(werr)?;
    for entry in &m.files {
        if entry.path == manifest::SUMS {
            w.add(&entry.path, entry.size, &mut &sums[..])
                .map_err(werr)?;
            continue;
        }
        let path = source.join(&entry.path);
        let f = std::fs::File::open(&path)
            .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
        // Hashed again while compressed: what is packed is what the manifest says.
        let mut hr =
            manifest::HashingReader::new(progress.reader(BufReader::with_capacity(1 << 20, f)));
        w.add(&entry.path, entry.size, &mut hr).map_err(werr)?;
        if hr.finish() != (entry.sha256.clone(), entry.size) {
            return Err(Error::usage(
                format!("{} changed while packing", entry.path),
                Some("nothing was written; pack again from a source nobody is editing".into()),
            ));
        }
    }
    let buf = w.finish().map_err(werr)?;
    buf.into_inner().map_err(|e| werr(e.into_error()))?;
    tmp.commit(force)?;
    let bundle_bytes = std::fs::metadata(&dest).map(|m| m.len()).unwrap_or(0);
    Ok(PackReport {
        bundle: dest,
        bundle_id: id,
        name: m.bundle.name.clone(),
        version: m.bundle.version.clone(),
        sequence: m.bundle.sequence,
        files: m.files.len(),
        payload_bytes: m.payload_size(),
        bundle_bytes,
        signed_by: key.key_id.to_string(),
        warnings: linted
            .warnings
            .into_iter()
            .chain(expiry_warning(&m, chrono::Utc::now()))
            .collect(),
    })
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
    let key = load_secret_key(&args.key, &args.pass)?;
    Ok(Box::new(pack_linted(
        linted,
        &key,
        args.out.as_deref(),
        args.level,
        args.force,
    )?))
}
