//! Trust that rotates: a trust store with a `version`, a `root_threshold` and root keys
//! changes only to a higher version signed by a threshold of the root keys of the
//! version a host accepted **and** of its own (as TUF's root metadata rotates), and a
//! host refuses an older copy put back by hand.
//!
//! What is signed is the store's canonical form ([`canonical`]): a header line, then
//! one line per file, `trust.toml` first and every `*.pub` in name order, each
//! `NAME SIZE SHA256`. The signatures are minisign signatures over those bytes, one
//! file per key under `signatures/KEYID.minisig`, with the trusted comment
//! `airlock-trust-store version=N canonical=SHA256` (so a signature binds the version
//! and the very bytes). Earlier versions a host replaced are kept under
//! `history/vN/`. Neither directory is part of the canonical form.
//!
//! Invariant: a versioned store is used only when its own root keys signed it (a hand
//! edit after signing is refused), and only at the version this host remembers or at
//! a higher one the remembered roots signed; the memory (in the state directory)
//! only moves forward. A store without a version works as before, and says it cannot
//! be rotated by signature.

pub use crate::carried_files::{HISTORY_DIR, SIGNATURES_DIR};
use crate::minisign::{sign_with, KeySigner, SignatureBox};
use crate::trust::{Role, TrustStore, TrustedKey, POLICY_FILE};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The first line of the canonical form.
const HEADER: &str = "airlock-trust-store-v1\n";

#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    /// The store as given is refused by the reader.
    #[error(transparent)]
    Trust(#[from] crate::trust::TrustError),
    #[error("trust store {}: {message}", store.display())]
    Refused { store: PathBuf, message: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    /// The key (a token, an agent) could not sign; nothing was written.
    #[error("cannot sign: {0}")]
    Signer(#[from] crate::minisign::SignerError),
}

impl RotationError {
    fn refused(store: &Path, message: impl Into<String>) -> RotationError {
        RotationError::Refused {
            store: store.into(),
            message: message.into(),
        }
    }
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> RotationError {
    let context = context.into();
    move |source| RotationError::Io { context, source }
}

/// The bytes a store's signatures cover.
pub fn canonical(store: &Path) -> Result<Vec<u8>, RotationError> {
    let mut names: Vec<String> = std::fs::read_dir(store)
        .map_err(io(format!("cannot read {}", store.display())))?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".pub"))
        .collect();
    names.sort();
    let mut out = HEADER.as_bytes().to_vec();
    for name in std::iter::once(POLICY_FILE.to_string()).chain(names) {
        let path = store.join(&name);
        // Read under the same caps as the store's reader.
        let cap = if name == POLICY_FILE {
            airlock_base::bounded::TRUST_POLICY
        } else {
            airlock_base::bounded::PUBLIC_KEY
        };
        let bytes = match airlock_base::bounded::read_capped(&path, cap) {
            Ok(b) => b,
            Err(airlock_base::bounded::ReadError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound && name == POLICY_FILE =>
            {
                continue
            }
            Err(e) => return Err(crate::trust::TrustError::Read(e).into()),
        };
        out.extend_from_slice(
            format!(
                "{name} {} {}\n",
                bytes.len(),
                hex::encode(Sha256::digest(&bytes))
            )
            .as_bytes(),
        );
    }
    Ok(out)
}

/// The SHA-256 of the canonical form, hex: how a signature names the bytes it covers.
pub fn canonical_id(canonical: &[u8]) -> String {
    hex::encode(Sha256::digest(canonical))
}

fn trusted_comment(version: u64, id: &str) -> String {
    format!("airlock-trust-store version={version} canonical={id}")
}

fn rotation_of(store: &TrustStore) -> Result<&crate::trust::Rotation, RotationError> {
    store.rotation.as_ref().ok_or_else(|| {
        RotationError::refused(
            &store.path,
            "has no `version`, `root_threshold` and root keys: it cannot be rotated by signature",
        )
    })
}

/// Sign the store at `dir` (as it is now) with `key`: `signatures/KEYID.minisig`,
/// replacing that key's earlier signature. Any key may sign; only root keys count.
pub fn sign(dir: &Path, key: &dyn KeySigner) -> Result<PathBuf, RotationError> {
    let store = TrustStore::load(dir)?;
    let rot = rotation_of(&store)?;
    let bytes = canonical(dir)?;
    let sig = sign_with(
        key,
        &bytes,
        &trusted_comment(rot.version, &canonical_id(&bytes)),
    )?;
    let sigs = dir.join(SIGNATURES_DIR);
    std::fs::create_dir_all(&sigs).map_err(io(format!("cannot create {}", sigs.display())))?;
    let path = sigs.join(format!("{}.minisig", sig.key_id));
    let tmp = sigs.join(format!(".{}.minisig.tmp", sig.key_id));
    std::fs::write(&tmp, sig.to_file_text())
        .map_err(io(format!("cannot write {}", tmp.display())))?;
    std::fs::rename(&tmp, &path).map_err(io(format!("cannot write {}", path.display())))?;
    Ok(path)
}

/// Which of `keys` (root keys, unrevoked and in their window at `now`) signed the
/// store at `dir` as it is: distinct key ids, in order.
pub fn signed_by(
    dir: &Path,
    version: u64,
    keys: &[&TrustedKey],
    now: DateTime<Utc>,
) -> Result<Vec<String>, RotationError> {
    Ok(signed_over(dir, &canonical(dir)?, version, keys, now))
}

/// [`signed_by`], given the store's canonical form read once by the caller.
fn signed_over(
    dir: &Path,
    bytes: &[u8],
    version: u64,
    keys: &[&TrustedKey],
    now: DateTime<Utc>,
) -> Vec<String> {
    let counted: Vec<&TrustedKey> = keys.iter().copied().filter(|k| usable(k, now)).collect();
    signers_over(dir, bytes, version, &counted)
}

/// Which of `keys` signed the store at `dir` (canonical form `bytes`, version
/// `version`), whatever their windows: distinct key ids, in order.
fn signers_over(dir: &Path, bytes: &[u8], version: u64, keys: &[&TrustedKey]) -> Vec<String> {
    let comment = trusted_comment(version, &canonical_id(bytes));
    let mut out = vec![];
    for k in keys {
        let path = dir
            .join(SIGNATURES_DIR)
            .join(format!("{}.minisig", k.key.key_id));
        let Ok(text) =
            airlock_base::bounded::read_capped_string(&path, airlock_base::bounded::SIGNATURE)
        else {
            continue;
        };
        let Ok(sig) = SignatureBox::parse(&text) else {
            continue;
        };
        if sig.trusted_comment == comment && k.key.verify(bytes, &sig).is_ok() {
            let id = k.key.key_id.to_string();
            if !out.contains(&id) {
                out.push(id);
            }
        }
    }
    out
}

/// A root key counts now: not revoked, inside its window.
fn usable(k: &TrustedKey, now: DateTime<Utc>) -> bool {
    k.policy.state_at(now) == "counts"
}

fn roots(store: &TrustStore) -> Vec<&TrustedKey> {
    store
        .keys
        .iter()
        .filter(|k| k.policy.role == Role::Root)
        .collect()
}

/// How a set of roots judged a store: who signed, how many were needed.
fn judged(signers: &[String], need: u32, whose: &str, version: u64) -> Result<(), String> {
    if signers.len() as u32 >= need {
        return Ok(());
    }
    Err(format!(
        "version {version} is signed by {} of the {need} root key(s) {whose} needs{}",
        signers.len(),
        if signers.is_empty() {
            String::new()
        } else {
            format!(" (by {})", signers.join(", "))
        }
    ))
}

/// A versioned store's own roots signed it as it is (refused: a hand edit after
/// signing, a store nobody signed).
pub fn check_self(store: &TrustStore, now: DateTime<Utc>) -> Result<(), RotationError> {
    self_signed(store, &canonical(&store.path)?, now)
}

/// [`check_self`], given the store's canonical form.
fn self_signed(store: &TrustStore, bytes: &[u8], now: DateTime<Utc>) -> Result<(), RotationError> {
    let Some(rot) = &store.rotation else {
        return Ok(());
    };
    let signers = signed_over(&store.path, bytes, rot.version, &roots(store), now);
    judged(&signers, rot.root_threshold, "its own root_threshold", rot.version).map_err(|why| {
        RotationError::refused(
            &store.path,
            format!("{why}: it was changed after it was signed, or never signed (airlock trust sign STORE --key ROOT.key, by each root key)"),
        )
    })
}

/// The root keys and threshold a version hands on to the next.
#[derive(Clone)]
struct Roots {
    version: u64,
    keys: Vec<TrustedKey>,
    threshold: u32,
}

impl Roots {
    fn of(store: &TrustStore) -> Option<Roots> {
        let rot = store.rotation.as_ref()?;
        Some(Roots {
            version: rot.version,
            keys: roots(store).into_iter().cloned().collect(),
            threshold: rot.root_threshold,
        })
    }
}

/// `target` (canonical form `bytes`) is reached from `from`'s roots: version by
/// version through the copies of the versions in between that `target` keeps under
/// `history/vN/`, each signed by the threshold of the one before it and of its own
/// roots (TUF's root rotation: a host that missed versions walks them), or, when it
/// keeps none of them, signed by `from`'s threshold directly. A version in between
/// that it keeps is always walked, and one that does not prove itself refuses the
/// whole store (a history is never installed unproven). The versions walked through,
/// or why not.
fn reached(
    from: &Roots,
    whose: &str,
    target: &TrustStore,
    bytes: &[u8],
    now: DateTime<Utc>,
) -> Result<(Vec<String>, Vec<u64>), String> {
    let version = target.rotation.as_ref().map(|r| r.version).unwrap_or(0);
    let kept = |v: u64| target.path.join(HISTORY_DIR).join(format!("v{v}")).exists();
    let between = from.version + 1..version;
    if between.clone().all(|v| !kept(v)) {
        let refs: Vec<&TrustedKey> = from.keys.iter().collect();
        let direct = signed_over(&target.path, bytes, version, &refs, now);
        return judged(&direct, from.threshold, whose, version).map(|()| (direct, vec![]));
    }
    let mut prev = from.clone();
    let mut via = vec![];
    for v in between {
        let dir = target.path.join(HISTORY_DIR).join(format!("v{v}"));
        let step = TrustStore::load(&dir).map_err(|e| {
            format!("walking its history: version {v}, between {} and {version}, is not in it whole ({e})", from.version)
        })?;
        if step.rotation.as_ref().map(|r| r.version) != Some(v) {
            return Err(format!("its history/v{v} is not version {v}"));
        }
        let step_bytes = canonical(&dir).map_err(|e| e.to_string())?;
        let refs: Vec<&TrustedKey> = prev.keys.iter().collect();
        let by_prev = signed_over(&dir, &step_bytes, v, &refs, now);
        judged(
            &by_prev,
            prev.threshold,
            &format!("version {}", prev.version),
            v,
        )
        .map_err(|why| format!("walking its history: {why}"))?;
        self_signed(&step, &step_bytes, now)
            .map_err(|e| format!("walking its history: version {v}: {e}"))?;
        prev = Roots::of(&step).expect("a versioned store");
        via.push(v);
    }
    let refs: Vec<&TrustedKey> = prev.keys.iter().collect();
    let last = signed_over(&target.path, bytes, version, &refs, now);
    judged(
        &last,
        prev.threshold,
        &format!("version {}", prev.version),
        version,
    )
    .map_err(|why| format!("walking its history: {why}"))?;
    Ok((last, via))
}

/// What a host remembers of a store it accepted: its version, the bytes it held, the
/// root keys and threshold that may sign the next version, and every version of its
/// chain this host trusts (the anchors a history is proven forward from).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Memory {
    pub store: String,
    pub version: u64,
    pub canonical: String,
    pub root_threshold: u32,
    /// The root keys' public keys, base64 as in a `.pub`.
    pub roots: Vec<String>,
    pub accepted_at: String,
    /// Every version of the chain this host trusts, by its canonical form (older
    /// memories have none: their history is proven forward from its first version).
    #[serde(default)]
    pub versions: Vec<KnownVersion>,
}

/// One version of a store's chain that this host trusts.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnownVersion {
    pub version: u64,
    /// [`canonical_id`] of its canonical form.
    pub canonical: String,
}

impl Memory {
    fn of(store: &TrustStore, canonical_id: String, known: Vec<KnownVersion>) -> Option<Memory> {
        let rot = store.rotation.as_ref()?;
        let mut versions = known;
        versions.push(KnownVersion {
            version: rot.version,
            canonical: canonical_id.clone(),
        });
        versions.sort();
        versions.dedup();
        Some(Memory {
            store: store.path.display().to_string(),
            version: rot.version,
            canonical: canonical_id,
            root_threshold: rot.root_threshold,
            roots: roots(store).iter().map(|k| k.key.to_base64()).collect(),
            accepted_at: crate::trust::rfc3339(Utc::now()),
            versions,
        })
    }
}

/// Where the host remembers the chain a root key belongs to, under the state
/// directory `state`: a host knows a store by its root keys, not by its path, so an
/// older version is refused wherever it is put back (a copy elsewhere, a link in the
/// store's place). Stores that share a root key are one chain to the host.
fn root_memory_file(state: &Path, root_b64: &str) -> PathBuf {
    let key = hex::encode(Sha256::digest(root_b64.as_bytes()));
    state
        .join("trust")
        .join("roots")
        .join(format!("{key}.json"))
}

/// The memory file an earlier airlock kept of the store at `store` (by its path):
/// still read, so what a host remembered survives the upgrade.
pub fn memory_file(state: &Path, store: &Path) -> PathBuf {
    let abs = std::fs::canonicalize(store).unwrap_or_else(|_| store.to_path_buf());
    let key = hex::encode(Sha256::digest(abs.as_os_str().as_encoded_bytes()));
    state.join("trust").join(format!("{key}.json"))
}

/// What the host remembers of the chain `store` belongs to: the highest version any
/// of its root keys (or, from an earlier airlock, its path) is remembered at, with
/// every version any of them trusts.
fn recall(state: &Path, store: &TrustStore) -> Result<Option<Memory>, RotationError> {
    let mut files = vec![memory_file(state, &store.path)];
    files.extend(
        roots(store)
            .iter()
            .map(|k| root_memory_file(state, &k.key.to_base64())),
    );
    let mut found: Vec<Memory> = vec![];
    for f in &files {
        if let Some(m) = load_memory(f, &store.path)? {
            found.push(m);
        }
    }
    let known: Vec<KnownVersion> = found.iter().flat_map(|m| m.versions.clone()).collect();
    let Some(mut best) = found.into_iter().max_by_key(|m| m.version) else {
        return Ok(None);
    };
    best.versions.extend(known);
    best.versions.sort();
    best.versions.dedup();
    Ok(Some(best))
}

/// Remember `m` under each of its root keys and each of `also` (the roots the host
/// knew the chain by before: an older version listing only those is refused too).
fn remember(state: &Path, m: &Memory, also: &[String]) -> Result<(), RotationError> {
    let mut keys: Vec<&String> = m.roots.iter().chain(also).collect();
    keys.sort();
    keys.dedup();
    for k in keys {
        save_memory(&root_memory_file(state, k), m)?;
    }
    Ok(())
}

/// Every version of `store`'s chain this host trusts (empty: none remembered): the
/// anchors [`crate::trust::history::History`] proves a history forward from.
pub fn known_versions(state: Option<&Path>, store: &TrustStore) -> Vec<KnownVersion> {
    state
        .and_then(|s| recall(s, store).ok().flatten())
        .map(|m| m.versions)
        .unwrap_or_default()
}

fn load_memory(file: &Path, store: &Path) -> Result<Option<Memory>, RotationError> {
    match airlock_base::bounded::read_capped_string(file, airlock_base::bounded::REMEMBERED_HEAD) {
        Ok(text) => serde_json::from_str(&text).map(Some).map_err(|e| {
            RotationError::refused(
                store,
                format!(
                    "what this host remembers of it ({}) is malformed: {e}",
                    file.display()
                ),
            )
        }),
        Err(airlock_base::bounded::ReadError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            Ok(None)
        }
        Err(e) => Err(RotationError::refused(
            store,
            format!("cannot read what this host remembers of it ({e})"),
        )),
    }
}

fn save_memory(file: &Path, m: &Memory) -> Result<(), RotationError> {
    let dir = file.parent().expect("a memory file has a directory");
    std::fs::create_dir_all(dir).map_err(io(format!("cannot create {}", dir.display())))?;
    let tmp = file.with_extension("json.tmp");
    let text = serde_json::to_string_pretty(m).expect("memory serializes");
    std::fs::write(&tmp, text).map_err(io(format!("cannot write {}", tmp.display())))?;
    std::fs::rename(&tmp, file).map_err(io(format!("cannot write {}", file.display())))
}

/// What the host's memory said of a store it was given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Accepted {
    /// No version: not rotated by signature.
    Unversioned,
    /// The version this host had accepted.
    Same(u64),
    /// First seen here (trusted on first use) or moved forward from `from`, signed
    /// by the roots this host remembered.
    New { version: u64, from: Option<u64> },
}

/// The check every command makes on a store before using it: a versioned store is
/// signed by its own roots, and is the version this host accepted or a later one the
/// remembered roots signed (then remembered); an older version, or the same version
/// with other bytes, is refused. `state`: the state directory (None: no memory).
pub fn admit(
    store: &TrustStore,
    state: Option<&Path>,
    now: DateTime<Utc>,
) -> Result<Accepted, RotationError> {
    let memory = match state {
        Some(s) => recall(s, store)?,
        None => None,
    };
    let Some(rot) = &store.rotation else {
        if let Some(m) = memory {
            return Err(RotationError::refused(
                &store.path,
                format!("this host accepted version {} of this store on {}, and it now has no version: an older copy was put back, or it was replaced", m.version, m.accepted_at),
            ));
        }
        return Ok(Accepted::Unversioned);
    };
    // The store's bytes, read once: what its own roots signed, what this host compares.
    let bytes = canonical(&store.path)?;
    self_signed(store, &bytes, now)?;
    let id = canonical_id(&bytes);
    let (accepted, known, also) = match &memory {
        // First seen: the store as it was handed to this host, and the versions of its
        // history proven forward from its first one.
        None => {
            let known = first_seen(store);
            let accepted = Accepted::New {
                version: rot.version,
                from: None,
            };
            (accepted, known, vec![])
        }
        Some(m) if rot.version < m.version => {
            return Err(RotationError::refused(
                &store.path,
                format!("it is version {}, but this host accepted version {} of this store (known by its root keys, wherever it is kept) on {}: an older copy was put back (rollback refused)", rot.version, m.version, m.accepted_at),
            ))
        }
        Some(m) if rot.version == m.version && id != m.canonical => {
            return Err(RotationError::refused(
                &store.path,
                format!("version {} now holds other bytes than the version {} this host accepted on {}: a store changes only with a higher version, signed", rot.version, m.version, m.accepted_at),
            ))
        }
        Some(m) if rot.version == m.version => {
            // Remembered under an earlier airlock's path only, or under other root
            // keys: remembered under this store's root keys too, from now on.
            if let Some(s) = state {
                let have = |k: &TrustedKey| root_memory_file(s, &k.key.to_base64()).is_file();
                if !roots(store).into_iter().all(have) {
                    remember(s, m, &m.roots)?;
                }
            }
            return Ok(Accepted::Same(m.version));
        }
        Some(m) => {
            let from = Roots {
                version: m.version,
                keys: remembered_roots(m),
                threshold: m.root_threshold,
            };
            let whose = format!("version {} (the one this host accepted)", m.version);
            let (_, via) = reached(&from, &whose, store, &bytes, now)
                .map_err(|why| RotationError::refused(&store.path, why))?;
            let mut known = m.versions.clone();
            if known.is_empty() {
                known.push(KnownVersion {
                    version: m.version,
                    canonical: m.canonical.clone(),
                });
            }
            for v in via {
                let dir = store.path.join(HISTORY_DIR).join(format!("v{v}"));
                known.push(KnownVersion {
                    version: v,
                    canonical: canonical_id(&canonical(&dir)?),
                });
            }
            let accepted = Accepted::New {
                version: rot.version,
                from: Some(m.version),
            };
            (accepted, known, m.roots.clone())
        }
    };
    if let (Some(s), Some(m)) = (state, Memory::of(store, id, known)) {
        // Under the path too: an unversioned store put in its place is refused.
        save_memory(&memory_file(s, &store.path), &m)?;
        remember(s, &m, &also)?;
    }
    Ok(accepted)
}

/// A store first seen on this host: the versions of its history proven forward from
/// its first one.
fn first_seen(store: &TrustStore) -> Vec<KnownVersion> {
    let history = history_versions(store);
    prove_forward(&history, &[])
        .into_iter()
        .zip(&history)
        .filter_map(|(proof, v)| {
            Some(KnownVersion {
                version: v.rotation.as_ref()?.version,
                canonical: proof.ok()?,
            })
        })
        .collect()
}

/// The earlier versions `store` keeps under `history/vN/`, loaded, in version order:
/// each one whose directory name and `version` agree and that is older than `store`.
pub fn history_versions(store: &TrustStore) -> Vec<TrustStore> {
    let current = store.rotation.as_ref().map(|r| r.version).unwrap_or(0);
    let mut out: Vec<TrustStore> = vec![];
    if let Ok(dir) = std::fs::read_dir(store.path.join(HISTORY_DIR)) {
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(n) = name.strip_prefix('v').and_then(|n| n.parse::<u64>().ok()) else {
                continue;
            };
            let Ok(version) = TrustStore::load(&e.path()) else {
                continue;
            };
            if n < current && version.rotation.as_ref().map(|r| r.version) == Some(n) {
                out.push(version);
            }
        }
    }
    out.sort_by_key(|v| v.rotation.as_ref().map(|r| r.version));
    out
}

/// Whether `keys`' threshold signed the store at `dir` (canonical form `bytes`,
/// version `version`), whatever their windows say today: the signature over the very
/// bytes is what proves a version was handed on.
fn signed_whenever(
    dir: &Path,
    bytes: &[u8],
    version: u64,
    keys: &[&TrustedKey],
    need: u32,
) -> bool {
    signers_over(dir, bytes, version, keys).len() as u32 >= need
}

/// Which versions of a history (`versions`, in version order) are proven forward:
/// a version is proven when its own root threshold signed it and it is a version this
/// host trusts (`known`), or it follows a proven version directly (its version plus
/// one) and that version's root threshold signed it too (TUF's root chain). With
/// nothing known, the first version is where the chain starts (the store as it was
/// handed to this host). For each version: its canonical id, or why it is not proven.
pub fn prove_forward(
    versions: &[TrustStore],
    known: &[KnownVersion],
) -> Vec<Result<String, String>> {
    let mut out: Vec<Result<String, String>> = vec![];
    for (i, this) in versions.iter().enumerate() {
        let verdict = (|| {
            let rot = this.rotation.as_ref().ok_or("it has no version")?;
            let bytes = canonical(&this.path).map_err(|e| e.to_string())?;
            let id = canonical_id(&bytes);
            if !signed_whenever(
                &this.path,
                &bytes,
                rot.version,
                &roots(this),
                rot.root_threshold,
            ) {
                return Err(format!(
                    "version {} is not signed by its own roots",
                    rot.version
                ));
            }
            let anchored = known
                .iter()
                .any(|k| k.version == rot.version && k.canonical == id)
                || (known.is_empty() && i == 0);
            if anchored {
                return Ok(id);
            }
            let Some(prev) = i.checked_sub(1).map(|p| &versions[p]) else {
                return Err(format!(
                    "version {} is not one this host trusts, and no version before it proves it",
                    rot.version
                ));
            };
            let prev_rot = prev
                .rotation
                .as_ref()
                .ok_or("the version before it has no version")?;
            if let Err(why) = &out[i - 1] {
                return Err(format!(
                    "version {} before it is not proven ({why})",
                    prev_rot.version
                ));
            }
            if prev_rot.version + 1 != rot.version {
                return Err(format!(
                    "version {} is missing from the history",
                    prev_rot.version + 1
                ));
            }
            if !signed_whenever(
                &this.path,
                &bytes,
                rot.version,
                &roots(prev),
                prev_rot.root_threshold,
            ) {
                return Err(format!(
                    "version {} is not signed by version {}'s root threshold",
                    rot.version, prev_rot.version
                ));
            }
            Ok(id)
        })();
        out.push(verdict);
    }
    out
}

/// The remembered root keys, as keys of a store (root role, no window).
fn remembered_roots(m: &Memory) -> Vec<TrustedKey> {
    m.roots
        .iter()
        .filter_map(|b64| crate::minisign::PublicKey::from_base64(b64).ok())
        .map(|key| TrustedKey {
            key,
            file: PathBuf::from("(remembered)"),
            policy: crate::trust::KeyPolicy {
                role: Role::Root,
                ..Default::default()
            },
        })
        .collect()
}

/// Why `new` may replace `current`: who signed it among each root set.
#[derive(Clone, Debug)]
pub struct UpdateVerdict {
    pub from: u64,
    pub to: u64,
    /// The versions in between, walked through from `new`'s history (none: `new` is
    /// signed by `current`'s roots directly).
    pub via: Vec<u64>,
    /// Who signed `new` among the roots of the version before it (`current`'s, or the
    /// last one walked through).
    pub signed_by_current_roots: Vec<String>,
    pub signed_by_new_roots: Vec<String>,
}

/// `new` may replace `current`: a higher version, not expired, signed by at least
/// `root_threshold` of `current`'s root keys and of its own.
pub fn judge_update(
    current: &TrustStore,
    new: &TrustStore,
    now: DateTime<Utc>,
) -> Result<UpdateVerdict, RotationError> {
    let cur = rotation_of(current)?;
    let next = rotation_of(new)?;
    if next.version <= cur.version {
        return Err(RotationError::refused(
            &new.path,
            format!(
                "is version {}, not higher than the current version {}: nothing replaced",
                next.version, cur.version
            ),
        ));
    }
    if let Some(t) = next.expires.filter(|t| *t <= now) {
        return Err(RotationError::refused(
            &new.path,
            format!(
                "version {} expired at {}: nothing replaced",
                next.version,
                crate::trust::rfc3339(t)
            ),
        ));
    }
    let bytes = canonical(&new.path)?;
    let from = Roots::of(current).expect("a versioned store");
    let by_new = signed_over(&new.path, &bytes, next.version, &roots(new), now);
    let mut missing = vec![];
    let (by_current, via) = match reached(
        &from,
        &format!("the current version {}", cur.version),
        new,
        &bytes,
        now,
    ) {
        Ok(found) => found,
        Err(why) => {
            missing.push(why);
            (vec![], vec![])
        }
    };
    if let Err(why) = judged(
        &by_new,
        next.root_threshold,
        "its own root_threshold",
        next.version,
    ) {
        missing.push(why);
    }
    if !missing.is_empty() {
        return Err(RotationError::refused(
            &new.path,
            format!("{}: nothing replaced", missing.join("; ")),
        ));
    }
    Ok(UpdateVerdict {
        from: cur.version,
        to: next.version,
        via,
        signed_by_current_roots: by_current,
        signed_by_new_roots: by_new,
    })
}

/// A copy of a new store beside the one it is to replace: what is judged is this copy,
/// so the bytes judged are the bytes installed (NEW may change after it was read).
pub struct Staged {
    dir: tempfile::TempDir,
}

impl Staged {
    /// Copy the store at `new` (its keys, policy, signatures and history) beside
    /// `current`.
    pub fn of(current: &Path, new: &Path) -> Result<Staged, RotationError> {
        let parent = current
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let dir = tempfile::Builder::new()
            .prefix(".airlock-trust-")
            .tempdir_in(parent)
            .map_err(io(format!("cannot stage in {}", parent.display())))?;
        copy_store(new, dir.path(), true)?;
        // The versions NEW keeps: what a host that missed some walks through.
        copy_tree(&new.join(HISTORY_DIR), &dir.path().join(HISTORY_DIR))?;
        Ok(Staged { dir })
    }

    /// An empty staging directory beside `current`, to fill (a carried store).
    pub fn empty_beside(current: &Path) -> Result<Staged, RotationError> {
        let parent = current
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let dir = tempfile::Builder::new()
            .prefix(".airlock-trust-")
            .tempdir_in(parent)
            .map_err(io(format!("cannot stage in {}", parent.display())))?;
        Ok(Staged { dir })
    }

    /// The staged copy, to load and judge.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Put the staged store in place of `current`, in one atomic exchange: it gets
    /// `current`'s history plus `current` itself as `history/vN`, then is exchanged
    /// with `current` by `renameat2(RENAME_EXCHANGE)`, so the directory is the old
    /// store or the new one, never a mix; the old one (now at the staging name) is
    /// removed. Of the history the new store brought, only `walked` (the versions
    /// between, each proven on the way) is kept: every other version it claims is
    /// left out, and the versions up to `current`'s are the host's own.
    pub fn install(
        self,
        current: &Path,
        current_version: u64,
        walked: &[u64],
    ) -> Result<(), RotationError> {
        let history = self.dir.path().join(HISTORY_DIR);
        if let Ok(entries) = std::fs::read_dir(&history) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let walked_here = name
                    .strip_prefix('v')
                    .and_then(|n| n.parse::<u64>().ok())
                    .is_some_and(|n| walked.contains(&n) && format!("v{n}") == name);
                if !walked_here {
                    let path = e.path();
                    std::fs::remove_dir_all(&path)
                        .or_else(|_| std::fs::remove_file(&path))
                        .map_err(io(format!("cannot remove {}", path.display())))?;
                }
            }
        }
        copy_tree(&current.join(HISTORY_DIR), &history)?;
        copy_store(current, &history.join(format!("v{current_version}")), true)?;
        set_mode(self.dir.path(), 0o755)?;
        exchange(self.dir.path(), current)?;
        // `self.dir` now names the old store: dropping it removes it.
        Ok(())
    }
}

/// The files of a store (`*.pub`, trust.toml, and with `signatures` its
/// signatures) into `to` (made).
fn copy_store(from: &Path, to: &Path, signatures: bool) -> Result<(), RotationError> {
    std::fs::create_dir_all(to).map_err(io(format!("cannot create {}", to.display())))?;
    for e in std::fs::read_dir(from).map_err(io(format!("cannot read {}", from.display())))? {
        let e = e.map_err(io(format!("cannot read {}", from.display())))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name == POLICY_FILE || name.ends_with(".pub") {
            std::fs::copy(e.path(), to.join(&name))
                .map_err(io(format!("cannot copy {}", e.path().display())))?;
        }
    }
    if signatures {
        copy_tree(&from.join(SIGNATURES_DIR), &to.join(SIGNATURES_DIR))?;
    }
    Ok(())
}

/// A directory tree of plain files, when it exists.
fn copy_tree(from: &Path, to: &Path) -> Result<(), RotationError> {
    if !from.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(to).map_err(io(format!("cannot create {}", to.display())))?;
    for e in std::fs::read_dir(from).map_err(io(format!("cannot read {}", from.display())))? {
        let e = e.map_err(io(format!("cannot read {}", from.display())))?;
        let kind = e
            .file_type()
            .map_err(io(format!("cannot read {}", e.path().display())))?;
        let dest = to.join(e.file_name());
        if kind.is_dir() {
            copy_tree(&e.path(), &dest)?;
        } else if kind.is_file() {
            std::fs::copy(e.path(), &dest)
                .map_err(io(format!("cannot copy {}", e.path().display())))?;
        }
    }
    Ok(())
}

fn set_mode(p: &Path, mode: u32) -> Result<(), RotationError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
        .map_err(io(format!("cannot set the mode of {}", p.display())))
}

/// Exchange two directories atomically ([`crate::exchange`]).
fn exchange(a: &Path, b: &Path) -> Result<(), RotationError> {
    crate::exchange::exchange(a, b).map_err(io(format!(
        "cannot exchange {} with {}",
        a.display(),
        b.display()
    )))
}
