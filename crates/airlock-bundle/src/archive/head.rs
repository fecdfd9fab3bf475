//! The head of a bundle, read before the bundle is verified: its manifest and the
//! trust store it carries, which `verify`, `plan`, `apply` and `rehearse` apply to the
//! host's store before they judge the bundle with it.
//!
//! Invariant: reads only the entries before the payload, each bounded; nothing read
//! here counts on its own account. The carried store counts only by its root
//! signatures (`trust_update::apply`), and the full verification that follows checks
//! every byte again, headers and order included.

use super::{Limits, VerifyError};
use crate::manifest::{Manifest, MANIFEST, SIG_DIR, TRUST_UPDATE_DIR};
use crate::trust::update::EmbeddedStore;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::Path;

fn tar_err(e: std::io::Error) -> VerifyError {
    VerifyError::Tar(e.to_string())
}

/// Read `size` bytes (at most `limit`) of an entry.
fn bounded(r: &mut dyn Read, size: u64, limit: u64, what: &str) -> Result<Vec<u8>, VerifyError> {
    if size > limit {
        return Err(VerifyError::Limit(format!(
            "{what} is {size} bytes, limit {limit}"
        )));
    }
    let mut buf = Vec::with_capacity(size as usize);
    r.take(size).read_to_end(&mut buf).map_err(tar_err)?;
    if buf.len() as u64 != size {
        return Err(VerifyError::Tar(format!("{what}: truncated entry")));
    }
    Ok(buf)
}

/// The trust store the bundle at `path` carries, as its manifest lists it; `None` when
/// it carries none (only the manifest was read then).
pub fn carried_trust_store(path: &Path) -> Result<Option<EmbeddedStore>, VerifyError> {
    let f = std::fs::File::open(path).map_err(|source| VerifyError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let limits = Limits::default();
    let gz = flate2::read::GzDecoder::new(std::io::BufReader::with_capacity(64 << 10, f));
    let mut archive = tar::Archive::new(gz);
    let mut entries = archive.entries().map_err(tar_err)?.raw(true);
    let Some(first) = entries.next() else {
        return Err(VerifyError::ManifestNotFirst {
            found: "(empty archive)".into(),
        });
    };
    let mut first = first.map_err(tar_err)?;
    let name = String::from_utf8_lossy(&first.path_bytes()).into_owned();
    if name != MANIFEST || !first.header().entry_type().is_file() {
        return Err(VerifyError::ManifestNotFirst { found: name });
    }
    let size = first.size();
    let bytes = bounded(&mut first, size, limits.max_manifest, MANIFEST)?;
    let Some(listed) = Manifest::parse(&bytes)?.trust_update else {
        return Ok(None);
    };
    let mut files = vec![];
    for entry in entries {
        let mut entry = entry.map_err(tar_err)?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        if !entry.header().entry_type().is_file() {
            return Err(VerifyError::EntryType {
                path: name,
                kind: "non-file".into(),
            });
        }
        let size = entry.size();
        if name.starts_with(SIG_DIR) && files.is_empty() {
            bounded(&mut entry, size, limits.max_signature, &name)?;
            continue;
        }
        if !name.starts_with(TRUST_UPDATE_DIR) {
            break;
        }
        let Some(expected) = listed.files.get(files.len()) else {
            return Err(VerifyError::Unexpected { path: name });
        };
        if expected.path != name || expected.size != size {
            return Err(VerifyError::OutOfOrder {
                path: name,
                why: format!("expected {} ({} bytes) next", expected.path, expected.size),
            });
        }
        let data = bounded(&mut entry, size, expected.size, &name)?;
        let actual = hex::encode(Sha256::digest(&data));
        if actual != expected.sha256 {
            return Err(VerifyError::HashMismatch {
                path: name,
                expected: expected.sha256.clone(),
                actual,
            });
        }
        files.push((name[TRUST_UPDATE_DIR.len()..].to_string(), data));
    }
    if let Some(missing) = listed.files.get(files.len()) {
        return Err(VerifyError::Missing {
            path: missing.path.clone(),
        });
    }
    Ok(Some(EmbeddedStore {
        version: listed.version,
        files,
    }))
}
