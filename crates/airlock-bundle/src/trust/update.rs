//! A trust store carried inside a bundle (`pack --trust-update DIR`), applied to a
//! host's store before the bundle itself is judged: how a revocation reaches a host
//! with no network.
//!
//! The bundle holds the store's files under `trust-update/` (trust.toml, every `.pub`,
//! its root signatures, and the earlier versions it keeps under `history/vN/`), right
//! after its own signatures and before its payload, each listed with its size and
//! SHA-256 in the manifest's `trust_update` (so the release's signers vouch for which
//! update they shipped). The update itself needs no such vouching: it counts only
//! when root keys signed it, as `airlock trust update` judges it.
//!
//! Invariant: a carried store changes a host's store only as `airlock trust update`
//! would (a higher version signed by the threshold of the host's current root keys,
//! or reached from them version by version through the history it carries, and by
//! its own), never lowers it, and a carried store its own roots did not sign refuses
//! the bundle. Its files are read under the caps of a store on disk, and only under
//! the names a store holds.

pub use crate::carried_files::{cap_of, MAX_BYTES, MAX_FILES};
use crate::trust::rotation::{self, RotationError, UpdateVerdict, HISTORY_DIR, SIGNATURES_DIR};
use crate::trust::TrustStore;
use chrono::{DateTime, Utc};
use std::path::Path;

/// Where a bundle holds a carried store (a reserved name: no payload file lives there).
pub const DIR: &str = crate::bundle_path::TRUST_UPDATE_DIR;
/// A trust store as a bundle carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmbeddedStore {
    /// Its trust.toml's `version`.
    pub version: u64,
    /// (path under [`DIR`], bytes), sorted by path.
    pub files: Vec<(String, Vec<u8>)>,
}

impl EmbeddedStore {
    /// The store at `dir`, to carry: it must have a version and be signed by its own
    /// roots as it is (what a host would refuse is never shipped); every file a store
    /// holds, its history included, each under its cap.
    pub fn from_dir(dir: &Path, now: DateTime<Utc>) -> Result<EmbeddedStore, RotationError> {
        let store = TrustStore::load(dir)?;
        let version = store
            .rotation
            .as_ref()
            .map(|r| r.version)
            .ok_or_else(|| RotationError::Refused {
                store: dir.into(),
                message: "has no version: only a store that rotates by signature can travel in a bundle (airlock trust add --role root …, then airlock trust sign)".into(),
            })?;
        rotation::check_self(&store, now)?;
        let mut files = vec![];
        collect(dir, "", &mut files)?;
        files.sort();
        let carried = EmbeddedStore { version, files };
        carried
            .check_bounds()
            .map_err(|message| RotationError::Refused {
                store: dir.into(),
                message,
            })?;
        Ok(carried)
    }

    /// Within [`MAX_FILES`] and [`MAX_BYTES`], each file under its cap and name.
    pub fn check_bounds(&self) -> Result<(), String> {
        if self.files.len() > MAX_FILES {
            return Err(format!("holds more than {MAX_FILES} files"));
        }
        let total: u64 = self.files.iter().map(|(_, b)| b.len() as u64).sum();
        if total > MAX_BYTES {
            return Err(format!("holds more than {MAX_BYTES} bytes"));
        }
        for (rel, bytes) in &self.files {
            let cap = cap_of(rel)?;
            if bytes.len() as u64 > cap.bytes {
                return Err(format!(
                    "{rel} is larger than {} bytes ({})",
                    cap.bytes, cap.what
                ));
            }
        }
        Ok(())
    }

    /// Write its files into `into` (a new, empty directory), as the store's directory.
    pub fn materialize(&self, into: &Path) -> Result<(), RotationError> {
        self.check_bounds()
            .map_err(|message| RotationError::Refused {
                store: into.into(),
                message,
            })?;
        for (rel, bytes) in &self.files {
            let path = into.join(rel);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|source| RotationError::Io {
                    context: format!("cannot create {}", parent.display()),
                    source,
                })?;
            }
            std::fs::write(&path, bytes).map_err(|source| RotationError::Io {
                context: format!("cannot write {}", path.display()),
                source,
            })?;
        }
        Ok(())
    }
}

/// Every file a store holds under `dir`/`rel`, by the names [`cap_of`] allows; any
/// other file under `signatures/` or `history/` refuses (fail closed).
fn collect(dir: &Path, rel: &str, out: &mut Vec<(String, Vec<u8>)>) -> Result<(), RotationError> {
    let here = dir.join(rel);
    let io = |source| RotationError::Io {
        context: format!("cannot read {}", here.display()),
        source,
    };
    let mut names: Vec<_> = std::fs::read_dir(&here)
        .map_err(io)?
        .filter_map(Result::ok)
        .collect();
    names.sort_by_key(|e| e.file_name());
    for e in names {
        let name = e.file_name().to_string_lossy().into_owned();
        let path = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        let kind = e.file_type().map_err(|source| RotationError::Io {
            context: format!("cannot read {}", e.path().display()),
            source,
        })?;
        let nested = rel.starts_with(SIGNATURES_DIR) || rel.starts_with(HISTORY_DIR);
        if kind.is_dir()
            && (name == SIGNATURES_DIR || name == HISTORY_DIR || rel.starts_with(HISTORY_DIR))
        {
            collect(dir, &path, out)?;
            continue;
        }
        match cap_of(&path) {
            Ok(cap) if kind.is_file() => {
                let bytes = airlock_base::bounded::read_capped(&e.path(), cap)
                    .map_err(crate::trust::TrustError::Read)?;
                out.push((path, bytes));
            }
            // A top-level file a store does not carry (a README): left out.
            Err(_) if !nested && !kind.is_dir() => {}
            _ => {
                return Err(RotationError::Refused {
                    store: dir.into(),
                    message: format!(
                        "{path} is not a file a trust store holds, and nothing of it is carried"
                    ),
                })
            }
        }
    }
    Ok(())
}

/// What the carried store did to the host's store (`trust_update` in every `--json`
/// document of the run, a line on stderr otherwise).
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct CarriedNote {
    /// The host's trust store.
    pub store: std::path::PathBuf,
    #[serde(flatten)]
    pub applied: Applied,
    /// The same, in words.
    pub line: String,
}

/// What a carried store did to a host's store.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case", tag = "outcome")]
pub enum Applied {
    /// Installed: the host's store moved from `from` to `to`, through `via` (the
    /// versions in between, from the carried history).
    Updated { from: u64, to: u64, via: Vec<u64> },
    /// Not newer than the host's: the host keeps its store.
    Kept { host: u64, carried: u64 },
    /// The host's store has no version, so nothing can judge the carried one against
    /// it: not applied (`airlock trust update` by hand).
    HostUnversioned { carried: u64 },
}

impl Applied {
    /// One line for the operator.
    pub fn line(&self, store: &Path) -> String {
        match self {
            Applied::Updated { from, to, via } => format!(
                "trust store {} updated from version {from} to {to} by the signed update this bundle carries{}, before the bundle was judged",
                store.display(),
                if via.is_empty() {
                    String::new()
                } else {
                    format!(" (through version(s) {})", join(via))
                }
            ),
            Applied::Kept { host, carried } => format!(
                "this bundle carries trust store version {carried}; {} is at version {host}: kept",
                store.display()
            ),
            Applied::HostUnversioned { carried } => format!(
                "this bundle carries trust store version {carried}, but {} has no version, so nothing here can judge it: not applied (the keeper of the store installs it with airlock trust update)",
                store.display()
            ),
        }
    }
}

fn join(v: &[u64]) -> String {
    v.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
}

/// Apply `carried` to the host's store `current` (already admitted): check it is
/// signed by its own roots, then, when it is newer, judge it as `airlock trust update`
/// does (walking its history from the host's version when needed) and install it,
/// keeping the host's history. `state`: where the host remembers accepted versions
/// (the new one is remembered by the next admit).
pub fn apply(
    current: &TrustStore,
    carried: &EmbeddedStore,
    now: DateTime<Utc>,
) -> Result<Applied, RotationError> {
    let staged = rotation::Staged::empty_beside(&current.path)?;
    carried.materialize(staged.path())?;
    let new = TrustStore::load(staged.path()).map_err(|e| RotationError::Refused {
        store: current.path.clone(),
        message: format!("the trust store this bundle carries does not load: {e}"),
    })?;
    let version = new.rotation.as_ref().map(|r| r.version);
    if version != Some(carried.version) {
        return Err(RotationError::Refused {
            store: current.path.clone(),
            message: format!(
                "the trust store this bundle carries is version {}, its manifest says {}",
                version
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "(none)".into()),
                carried.version
            ),
        });
    }
    rotation::check_self(&new, now).map_err(|e| RotationError::Refused {
        store: current.path.clone(),
        message: format!(
            "the trust store this bundle carries is not signed as it is by its own roots: {e}"
        ),
    })?;
    let Some(host) = current.rotation.as_ref().map(|r| r.version) else {
        return Ok(Applied::HostUnversioned {
            carried: carried.version,
        });
    };
    if carried.version <= host {
        return Ok(Applied::Kept {
            host,
            carried: carried.version,
        });
    }
    let UpdateVerdict { from, to, via, .. } = rotation::judge_update(current, &new, now)?;
    staged.install(&current.path, host, &via)?;
    Ok(Applied::Updated { from, to, via })
}
