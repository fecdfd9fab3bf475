//! `manifest.json`: the one document signers vouch for.
//!
//! Invariant: the bundle id is the SHA-256 of the exact manifest bytes; the manifest is
//! produced once in canonical form (sorted keys, no whitespace) and, when read back,
//! parsed strictly from those signed bytes (unknown fields, duplicate keys, non-UTF-8
//! and unknown formats refused) and never re-serialized for checking.

use crate::bundle_path::BundlePath;
use crate::spec::{
    BundleSection, GateSpec, ParamSpec, ProbeSpec, Ratification, RollbackSpec, RunbookSpec, Spec,
    Target, TierSpec,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

pub const FORMAT: &str = "airlock-bundle/1";
/// The format of a bundle whose manifest carries chunk hashes (some file is larger
/// than [`CHUNK`]); a bundle without such a file stays [`FORMAT`], byte for byte.
pub const FORMAT_CHUNKED: &str = "airlock-bundle/2";
pub use crate::bundle_path::{is_reserved, MANIFEST, SIG_DIR, SUMS, TRUST_UPDATE_DIR};
pub use crate::hashing::{HashingReader, CHUNK};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    pub path: String,
    /// Lowercase hex SHA-256 of the file's bytes.
    pub sha256: String,
    pub size: u64,
    /// Format 2, files larger than [`CHUNK`] only: the lowercase hex SHA-256 of each
    /// `CHUNK` bytes of the file in order (the last one short).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunks: Option<Vec<String>>,
}

/// How many chunk hashes a file of `size` bytes carries (none up to [`CHUNK`]).
pub fn chunk_count(size: u64) -> usize {
    if size > CHUNK {
        size.div_ceil(CHUNK) as usize
    } else {
        0
    }
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `manifest.json`: every field of `bundle.toml`, resolved, plus the file list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// `airlock-bundle/1`, or `airlock-bundle/2` when some file carries chunk hashes;
    /// anything else is refused.
    pub format: String,
    pub bundle: BundleSection,
    pub target: Target,
    pub params: BTreeMap<String, ParamSpec>,
    pub gate: Vec<GateSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preflight: Option<ProbeSpec>,
    pub tier: Vec<TierSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<ProbeSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<RollbackSpec>,
    pub runbook: Vec<RunbookSpec>,
    /// Signed approvals the gated tiers need (absent: none; then the manifest's bytes
    /// are what they were before ratification existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratification: Option<Ratification>,
    /// A signed trust store the bundle carries (`pack --trust-update`), applied to a
    /// host's store before the bundle is judged (absent: none; then the manifest's
    /// bytes are what they were before bundles could carry one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_update: Option<TrustUpdateRef>,
    /// The release this one follows (absent: none; then the manifest's bytes are what
    /// they were before release trains).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follows: Option<crate::spec::Follows>,
    /// The migrations this release and those before it carried (empty: left out).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub released: Vec<crate::spec::Released>,
    /// Every payload file plus `SHA256SUMS`, sorted by path.
    pub files: Vec<FileEntry>,
}

/// The trust store a bundle carries: its version and its files, which the archive
/// holds under `trust-update/` right after the signatures (not payload: they are
/// neither extracted nor in `SHA256SUMS`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrustUpdateRef {
    /// The carried store's `version`.
    pub version: u64,
    /// Every file of it, paths under `trust-update/`, sorted by path.
    pub files: Vec<FileEntry>,
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest.json is not UTF-8")]
    NotUtf8,
    #[error("manifest.json is not strict JSON: {0}")]
    Json(String),
    #[error("unknown bundle format {0:?} (this airlock reads {FORMAT:?} and {FORMAT_CHUNKED:?}); use a newer airlock")]
    UnknownFormat(String),
    #[error("manifest.json is inconsistent: {0}")]
    Invalid(String),
}

impl Manifest {
    pub fn from_spec(spec: Spec, files: Vec<FileEntry>) -> Manifest {
        let s = spec.resolved();
        let chunked = files.iter().any(|f| f.chunks.is_some());
        Manifest {
            format: if chunked { FORMAT_CHUNKED } else { FORMAT }.into(),
            bundle: s.bundle,
            target: s.target,
            params: s.params,
            gate: s.gate,
            preflight: s.preflight,
            tier: s.tier,
            verify: s.verify,
            rollback: s.rollback,
            runbook: s.runbook,
            ratification: s.ratification,
            trust_update: None,
            follows: s.follows,
            released: s.released,
            files,
        }
    }

    /// The spec part, for code shared with `bundle.toml` checks.
    pub fn spec(&self) -> Spec {
        Spec {
            bundle: self.bundle.clone(),
            target: self.target.clone(),
            params: self.params.clone(),
            gate: self.gate.clone(),
            preflight: self.preflight.clone(),
            tier: self.tier.clone(),
            verify: self.verify.clone(),
            rollback: self.rollback.clone(),
            runbook: self.runbook.clone(),
            ratification: self.ratification.clone(),
            follows: self.follows.clone(),
            released: self.released.clone(),
        }
    }

    /// Canonical bytes: serde_json's `Value` keeps object keys sorted (BTreeMap), and
    /// compact output has no insignificant whitespace.
    pub fn to_canonical_bytes(&self) -> Vec<u8> {
        let value = serde_json::to_value(self).expect("manifest serializes");
        let mut out = serde_json::to_vec(&value).expect("value serializes");
        out.push(b'\n');
        out
    }

    /// Parse the signed bytes strictly. Never re-serialized afterwards.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        std::str::from_utf8(bytes).map_err(|_| ManifestError::NotUtf8)?;
        crate::strict_json::check_no_duplicate_keys(bytes).map_err(ManifestError::Json)?;
        // Read the format first, so a future format gets the right message rather than
        // an unknown-field error.
        let probe: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| ManifestError::Json(e.to_string()))?;
        match probe.get("format").and_then(|f| f.as_str()) {
            Some(FORMAT | FORMAT_CHUNKED) => {}
            Some(other) => return Err(ManifestError::UnknownFormat(other.into())),
            None => return Err(ManifestError::Invalid("no \"format\" field".into())),
        }
        let m: Manifest =
            serde_json::from_slice(bytes).map_err(|e| ManifestError::Json(e.to_string()))?;
        m.check()?;
        Ok(m)
    }

    fn check(&self) -> Result<(), ManifestError> {
        let problems = self.spec().structural_problems();
        if let Some(p) = problems.first() {
            return Err(ManifestError::Invalid(p.clone()));
        }
        let mut prev: Option<&str> = None;
        let mut keys = std::collections::HashSet::new();
        for f in &self.files {
            BundlePath::new(&f.path)
                .map_err(|e| ManifestError::Invalid(format!("file {:?}: {e}", f.path)))?;
            if f.path != SUMS && is_reserved(&f.path) {
                return Err(ManifestError::Invalid(format!(
                    "file {:?} uses a reserved name",
                    f.path
                )));
            }
            if !is_sha256_hex(&f.sha256) {
                return Err(ManifestError::Invalid(format!(
                    "file {:?}: sha256 must be 64 lowercase hex digits",
                    f.path
                )));
            }
            self.check_chunks(f)?;
            if let Some(p) = prev {
                if p >= f.path.as_str() {
                    return Err(ManifestError::Invalid(
                        "files are not sorted by path, or a path repeats".into(),
                    ));
                }
            }
            if !keys.insert(crate::bundle_path::collision_key(&f.path)) {
                return Err(ManifestError::Invalid(format!(
                    "file {:?} collides with another after case/Unicode normalization",
                    f.path
                )));
            }
            prev = Some(&f.path);
        }
        // A file that is also another file's directory (`a` and `a/b`) cannot be
        // extracted; `pack` can never produce it, so a bundle holding it was crafted.
        for f in &self.files {
            let mut dir = f.path.as_str();
            while let Some((parent, _)) = dir.rsplit_once('/') {
                if keys.contains(&crate::bundle_path::collision_key(parent)) {
                    return Err(ManifestError::Invalid(format!(
                        "file {:?} is inside {parent:?}, which is also a file",
                        f.path
                    )));
                }
                dir = parent;
            }
        }
        if self.format == FORMAT_CHUNKED && !self.files.iter().any(|f| f.chunks.is_some()) {
            return Err(ManifestError::Invalid(format!(
                "format {FORMAT_CHUNKED} without any chunk hashes (pack writes {FORMAT} then)"
            )));
        }
        if !self.files.iter().any(|f| f.path == SUMS) {
            return Err(ManifestError::Invalid("SHA256SUMS is not listed".into()));
        }
        if let Some(t) = &self.trust_update {
            t.check()?;
        }
        if !self.files.iter().any(|f| f.path == crate::spec::SPEC_FILE) {
            return Err(ManifestError::Invalid("bundle.toml is not listed".into()));
        }
        for (file, _, field) in self.spec().named_files() {
            if !self.files.iter().any(|f| f.path == file) {
                return Err(ManifestError::Invalid(format!(
                    "{field} names {file}, which is not in files"
                )));
            }
        }
        Ok(())
    }

    /// Format 1 has no `chunks`; format 2 has them exactly on the files larger than
    /// [`CHUNK`], one 64-hex-digit hash per `CHUNK` bytes.
    fn check_chunks(&self, f: &FileEntry) -> Result<(), ManifestError> {
        let bad = |why: String| ManifestError::Invalid(format!("file {:?}: {why}", f.path));
        let want = chunk_count(f.size);
        match (&f.chunks, self.format.as_str()) {
            (None, _) if want == 0 => Ok(()),
            (Some(_), FORMAT) => Err(bad(format!(
                "has chunk hashes, which {FORMAT} bundles do not carry"
            ))),
            (None, _) => Err(bad(format!(
                "is {} bytes, over {CHUNK}, and has no chunk hashes ({FORMAT_CHUNKED} lists one per {CHUNK} bytes)",
                f.size
            ))),
            (Some(_), _) if want == 0 => Err(bad(format!(
                "has chunk hashes but is only {} bytes (chunks are listed only for files over {CHUNK} bytes)",
                f.size
            ))),
            (Some(c), _) if c.len() != want => Err(bad(format!(
                "lists {} chunk hashes, its {} bytes make {want}",
                c.len(),
                f.size
            ))),
            (Some(c), _) => match c.iter().position(|h| !is_sha256_hex(h)) {
                Some(i) => Err(bad(format!(
                    "chunk {i}: a chunk hash must be 64 lowercase hex digits"
                ))),
                None => Ok(()),
            },
        }
    }

    pub fn tier_index(&self, name: &str) -> Option<usize> {
        self.tier.iter().position(|t| t.name == name)
    }

    pub fn file(&self, path: &str) -> Option<&FileEntry> {
        self.files
            .binary_search_by(|f| f.path.as_str().cmp(path))
            .ok()
            .map(|i| &self.files[i])
    }

    /// Total bytes of the payload the manifest promises.
    pub fn payload_size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

impl TrustUpdateRef {
    /// Paths under `trust-update/` a store holds (within its caps), sorted, each once,
    /// hashes as `files` has them; within the carried store's bounds.
    fn check(&self) -> Result<(), ManifestError> {
        let bad = |why: String| ManifestError::Invalid(format!("trust_update: {why}"));
        if self.files.len() > crate::carried_files::MAX_FILES {
            return Err(bad(format!(
                "more than {} files",
                crate::carried_files::MAX_FILES
            )));
        }
        let mut total = 0u64;
        let mut prev: Option<&str> = None;
        for f in &self.files {
            let rel = f
                .path
                .strip_prefix(TRUST_UPDATE_DIR)
                .ok_or_else(|| bad(format!("{:?} is not under {TRUST_UPDATE_DIR}", f.path)))?;
            BundlePath::new(&f.path).map_err(|e| bad(format!("{:?}: {e}", f.path)))?;
            let cap = crate::carried_files::cap_of(rel).map_err(bad)?;
            if f.size > cap.bytes {
                return Err(bad(format!("{:?} is over {} bytes", f.path, cap.bytes)));
            }
            if !is_sha256_hex(&f.sha256) || f.chunks.is_some() {
                return Err(bad(format!(
                    "{:?}: sha256 must be 64 lowercase hex digits, and no chunks",
                    f.path
                )));
            }
            if prev.is_some_and(|p| p >= f.path.as_str()) {
                return Err(bad("files are not sorted by path, or a path repeats".into()));
            }
            prev = Some(&f.path);
            total += f.size;
        }
        if total > crate::carried_files::MAX_BYTES {
            return Err(bad(format!(
                "over {} bytes",
                crate::carried_files::MAX_BYTES
            )));
        }
        if !self
            .files
            .iter()
            .any(|f| f.path == format!("{TRUST_UPDATE_DIR}trust.toml"))
        {
            return Err(bad("it has no trust.toml".into()));
        }
        Ok(())
    }
}

pub fn bundle_id(manifest_bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(manifest_bytes))
}

/// `SHA256SUMS` in coreutils format for every payload file (all but itself).
pub fn render_sums(files: &[FileEntry]) -> Vec<u8> {
    let mut out = String::new();
    for f in files.iter().filter(|f| f.path != SUMS) {
        out.push_str(&f.sha256);
        out.push_str("  ");
        out.push_str(&f.path);
        out.push('\n');
    }
    out.into_bytes()
}

/// The trusted comment signers sign: tab-separated `key:value` pairs, like minisign's.
pub fn trusted_comment(m: &Manifest, bundle_id: &str, timestamp: i64) -> String {
    format!(
        "timestamp:{timestamp}\tname:{}\tversion:{}\tsequence:{}\tbundle_id:{bundle_id}",
        m.bundle.name, m.bundle.version, m.bundle.sequence
    )
}

/// Fields read back from a trusted comment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct CommentFields {
    pub timestamp: Option<i64>,
    pub name: Option<String>,
    pub version: Option<String>,
    pub sequence: Option<u64>,
    pub bundle_id: Option<String>,
}

pub fn parse_trusted_comment(tc: &str) -> CommentFields {
    let mut f = CommentFields::default();
    for part in tc.split('\t') {
        let Some((k, v)) = part.split_once(':') else {
            continue;
        };
        match k {
            "timestamp" => f.timestamp = v.parse().ok(),
            "name" => f.name = Some(v.into()),
            "version" => f.version = Some(v.into()),
            "sequence" => f.sequence = v.parse().ok(),
            "bundle_id" => f.bundle_id = Some(v.into()),
            _ => {}
        }
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest_with(extra: &[&str]) -> Manifest {
        let spec: Spec = toml::from_str(
            "[bundle]\nname = \"m\"\nversion = \"1\"\nsequence = 1\n[target]\ndatabase = \"x\"\n[[tier]]\nname = \"t\"\nfiles = [\"sql/t.sql\"]\n",
        )
        .unwrap();
        let mut paths = vec![SUMS, crate::spec::SPEC_FILE, "sql/t.sql"];
        paths.extend_from_slice(extra);
        paths.sort();
        let files = paths
            .into_iter()
            .map(|p| FileEntry {
                path: p.into(),
                sha256: "0".repeat(64),
                size: 0,
                chunks: None,
            })
            .collect();
        Manifest::from_spec(spec, files)
    }

    #[test]
    fn canonical_bytes_parse_back_equal() {
        let m = manifest_with(&["runbooks/a.md"]);
        assert_eq!(Manifest::parse(&m.to_canonical_bytes()).unwrap(), m);
    }

    #[test]
    fn a_file_that_is_also_a_directory_is_refused() {
        for extra in [&["sql"][..], &["SQL"], &["a", "a/b/c"], &["bundle.toml/x"]] {
            let m = manifest_with(extra);
            let err = Manifest::parse(&m.to_canonical_bytes()).unwrap_err();
            assert!(err.to_string().contains("also a file"), "{extra:?}: {err}");
        }
    }
}
