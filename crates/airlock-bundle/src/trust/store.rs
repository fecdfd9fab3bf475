//! Trust store: which public keys count, when, for what, and how many are needed.
//!
//! Invariant: the threshold counts distinct public keys (never key ids, never signature
//! files) whose signature verifies strictly over the exact manifest bytes, whose
//! trusted comment names this bundle (id, name, version and sequence), that are
//! unrevoked and inside their validity window at the time judged, and whose role may
//! sign releases. A loaded store holds each public key once, under one key id, so a
//! key's policy never depends on the id a signature claims.

use crate::manifest::{self, CommentFields, Manifest};
use crate::minisign::{KeyId, PublicKey, SignatureBox};
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A trust store that cannot be used as it is. Each is fixed in the store, never by
/// retrying: `Error::hint` says how.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("trust store {path}: {message}")]
    Store { path: PathBuf, message: String },
    /// A key or policy file over its cap, or unreadable (`airlock_base::bounded`).
    #[error("trust store: {0}")]
    Read(#[from] airlock_base::bounded::ReadError),
    /// A minisign secret key among the public ones.
    #[error("trust store {}: {} is a secret key; a trust store holds public keys (*.pub) and trust.toml only", store.display(), file.display())]
    SecretKey { store: PathBuf, file: PathBuf },
    /// A file named like a policy that is not exactly `trust.toml`: reading nothing
    /// from it would silently drop a revocation or a threshold.
    #[error("trust store {}: {} looks like a policy file, but only trust.toml (exactly that name) is read", store.display(), file.display())]
    UnknownPolicyFile { store: PathBuf, file: PathBuf },
    /// A file named like a public key that is not exactly `*.pub`.
    #[error("trust store {}: {} looks like a public key, but only *.pub files (lowercase) are read", store.display(), file.display())]
    MisnamedKey { store: PathBuf, file: PathBuf },
    /// One public key in two files: its policy (revocation, window, role) would depend
    /// on which key id a signature claims.
    #[error("trust store {}: {} (key {first_id}) and {} (key {second_id}) hold the same public key", store.display(), first.display(), second.display())]
    DuplicateKey {
        store: PathBuf,
        first: PathBuf,
        first_id: String,
        second: PathBuf,
        second_id: String,
    },
    /// Two different public keys with one key id: `[keys.ID]` would name both.
    #[error("trust store {}: {} and {} are different public keys with the same key id {key_id}", store.display(), first.display(), second.display())]
    DuplicateKeyId {
        store: PathBuf,
        first: PathBuf,
        second: PathBuf,
        key_id: String,
    },
}

impl TrustError {
    /// What to do next, on its own line.
    pub fn hint(&self) -> String {
        match self {
            TrustError::Store { .. } => "fix the trust store (*.pub files and trust.toml)".into(),
            TrustError::Read(e) => e
                .hint()
                .unwrap_or_else(|| "fix the trust store (*.pub files and trust.toml)".into()),
            TrustError::SecretKey { file, .. } => format!(
                "move {} out of the trust store (secret keys stay with their owner, mode 0600); keep only its .pub there",
                file.display()
            ),
            TrustError::UnknownPolicyFile { file, .. } => format!(
                "rename {} to trust.toml if it is the policy, or move it out of the trust store",
                file.display()
            ),
            TrustError::MisnamedKey { file, .. } => format!(
                "rename {} to end in .pub, or move it out of the trust store",
                file.display()
            ),
            TrustError::DuplicateKey { first, second, .. } => format!(
                "keep one of {} and {} (and its [keys.ID] entry in trust.toml); a key is identified by its public key bytes, not its key id",
                first.display(),
                second.display()
            ),
            TrustError::DuplicateKeyId { first, second, .. } => format!(
                "confirm with their owners which of {} and {} is the real key, and remove the other",
                first.display(),
                second.display()
            ),
        }
    }
}

/// `trust.toml`: the policy of a trust store (a directory of minisign `*.pub` keys).
/// Without it every key is a release key with no window, and one signature suffices.
/// `schemas/trust.toml.schema.json` is generated from this type.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "trust.toml")]
pub struct TrustToml {
    /// How many distinct release keys of this store must have signed a bundle (default
    /// 1; 0 is refused). Distinct public keys count, never signature files or key ids.
    #[serde(default)]
    #[schemars(range(min = 1))]
    threshold: Option<u32>,
    /// Receipts must be signed by an operator key of this store: `apply` and
    /// `rollback` refuse to run without `--sign-receipt`, `audit` fails an unsigned
    /// receipt (otherwise it reports it as unverified).
    #[serde(default)]
    require_signed_receipts: bool,
    /// The store's version: a store with one (and `root_threshold` and root keys)
    /// changes only by `airlock trust update`, to a higher version signed by its root
    /// keys; without one it cannot be rotated by signature.
    #[serde(default)]
    version: Option<u64>,
    /// How many distinct root keys of this store must sign a store that replaces it,
    /// and this store itself (`airlock trust sign`).
    #[serde(default)]
    #[schemars(range(min = 1))]
    root_threshold: Option<u32>,
    /// After this time (RFC 3339) `airlock trust update` no longer accepts this store.
    #[schemars(with = "Option<TimeSchema>")]
    expires: Option<toml::Value>,
    /// When this version was begun (RFC 3339; `airlock trust add/revoke/set` write it
    /// when they start a version): `audit` judges a signature with the version in
    /// force when it was made, from this version's `issued` until the next one's.
    #[schemars(with = "Option<TimeSchema>")]
    issued: Option<toml::Value>,
    /// Policy per key, under its minisign key id in uppercase hex (`[keys.62340C72430C8DD3]`,
    /// as `airlock inspect` and `minisign -V` show it). Each id must name a `*.pub` in
    /// the store; a key without an entry is a release key with no window.
    #[serde(default)]
    keys: BTreeMap<String, KeyPolicyToml>,
}

/// One key's policy in `trust.toml`.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct KeyPolicyToml {
    /// The key counts only from this time on (RFC 3339, e.g. "2026-01-01T00:00:00Z", or
    /// a TOML datetime).
    #[schemars(with = "Option<TimeSchema>")]
    not_before: Option<toml::Value>,
    /// The key is retired from this time on: bundles judged later need evidence that
    /// they existed before it (a ledger row or a signed receipt; see `airlock audit`).
    #[schemars(with = "Option<TimeSchema>")]
    not_after: Option<toml::Value>,
    /// `true`: the key never counts again, whenever a bundle was signed. A time: revoked
    /// from then on (earlier bundles need the same evidence as after `not_after`).
    /// `false` is the same as leaving it out.
    #[schemars(with = "Option<RevokedSchema>")]
    revoked: Option<toml::Value>,
    /// Why, for people (shown with the revocation).
    revoked_reason: Option<String>,
    /// release (default): signs bundles and counts toward the threshold. operator:
    /// signs receipts only, never counts for a bundle. approver: signs approvals
    /// (`airlock approve`) toward a bundle's `[ratification]`, never counts for a
    /// bundle or a receipt.
    #[schemars(with = "Option<Role>")]
    role: Option<String>,
    /// Approver keys only: the groups the key belongs to (e.g. `["l4"]`), which a
    /// bundle's `[ratification] required_groups` can ask for.
    #[serde(default)]
    groups: Vec<String>,
    /// Who holds the key, for people (e.g. "Carol Jones, finance"): shown beside the
    /// key id wherever airlock names a signer or an approver. One line, at most 100
    /// characters; it vouches for nothing (the key id and the signature do).
    name: Option<String>,
}

/// A point in time: RFC 3339 text with a zone, or a TOML datetime.
#[derive(JsonSchema)]
#[allow(dead_code)]
#[schemars(transparent)]
struct TimeSchema(String);

/// `true` (revoked for good), `false` (not revoked), or the time it is revoked from.
#[derive(JsonSchema)]
#[allow(dead_code)]
#[serde(untagged)]
enum RevokedSchema {
    Always(bool),
    From(TimeSchema),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Release managers: their signatures count toward the bundle threshold.
    Release,
    /// Operators: may sign receipts, never count toward a bundle's threshold.
    Operator,
    /// Approvers: sign approvals (ratification), never count for a bundle or a receipt.
    Approver,
    /// Root keys: sign trust stores (`airlock trust sign`), and nothing else.
    Root,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Release => "release",
            Role::Operator => "operator",
            Role::Approver => "approver",
            Role::Root => "root",
        }
    }
}

#[derive(Clone, Debug)]
pub struct KeyPolicy {
    pub not_before: Option<DateTime<Utc>>,
    pub not_after: Option<DateTime<Utc>>,
    /// `Some(None)`: revoked with no date (always). `Some(Some(t))`: revoked from `t`.
    pub revoked: Option<Option<DateTime<Utc>>>,
    pub revoked_reason: Option<String>,
    pub role: Role,
    /// The approver groups the key belongs to (`groups` in trust.toml).
    pub groups: Vec<String>,
    /// Who holds the key (`name` in trust.toml), for people.
    pub name: Option<String>,
}

impl KeyPolicy {
    /// What a signature this key made at `at` would be, by its policy alone (no
    /// evidence weighed): `counts`, `revoked`, `retired` or `not-yet`.
    pub fn state_at(&self, at: DateTime<Utc>) -> &'static str {
        if matches!(self.revoked, Some(None)) || self.revoked.flatten().is_some_and(|t| t <= at) {
            "revoked"
        } else if self.not_after.is_some_and(|t| t <= at) {
            "retired"
        } else if self.not_before.is_some_and(|t| t > at) {
            "not-yet"
        } else {
            "counts"
        }
    }
}

/// A release key with no window and no revocation (a `.pub` with no trust.toml entry).
impl Default for KeyPolicy {
    fn default() -> Self {
        KeyPolicy {
            not_before: None,
            not_after: None,
            revoked: None,
            revoked_reason: None,
            role: Role::Release,
            groups: vec![],
            name: None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct TrustedKey {
    pub key: PublicKey,
    pub file: PathBuf,
    pub policy: KeyPolicy,
}

#[derive(Clone, Debug)]
pub struct TrustStore {
    pub path: PathBuf,
    pub threshold: u32,
    pub keys: Vec<TrustedKey>,
    /// `require_signed_receipts = true` in trust.toml.
    pub require_signed_receipts: bool,
    /// The rotation policy, when the store has one (`version`, `root_threshold` and
    /// root keys): see `trust_rotation`.
    pub rotation: Option<Rotation>,
}

/// A store's version and what it takes to replace it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rotation {
    pub version: u64,
    pub root_threshold: u32,
    pub expires: Option<DateTime<Utc>>,
    /// When this version was begun (`issued`), when it says.
    pub issued: Option<DateTime<Utc>>,
}

fn parse_time(path: &Path, field: &str, v: &toml::Value) -> Result<DateTime<Utc>, TrustError> {
    let text = match v {
        toml::Value::Datetime(d) => d.to_string(),
        toml::Value::String(s) => s.clone(),
        _ => return Err(store_err(path, format!("{field} must be an RFC 3339 time"))),
    };
    parse_rfc3339(&text)
        .ok_or_else(|| store_err(path, format!("{field} {text:?} is not an RFC 3339 time")))
}

pub fn parse_rfc3339(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|d| d.with_timezone(&Utc))
        .or_else(|| {
            chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|d| d.and_utc())
        })
}

fn store_err(path: &Path, message: impl Into<String>) -> TrustError {
    TrustError::Store {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// `version`, `root_threshold` and root keys: all or none, the threshold within the
/// root keys there are.
fn rotation_of(
    policy: &TrustToml,
    policy_path: &Path,
    keys: &[TrustedKey],
) -> Result<Option<Rotation>, TrustError> {
    let roots = keys.iter().filter(|k| k.policy.role == Role::Root).count();
    if policy.version.is_none()
        && policy.root_threshold.is_none()
        && roots == 0
        && policy.expires.is_none()
        && policy.issued.is_none()
    {
        return Ok(None);
    }
    let (Some(version), Some(root_threshold)) = (policy.version, policy.root_threshold) else {
        return Err(store_err(
            policy_path,
            "a store rotated by signature needs all of `version`, `root_threshold` and keys with role \"root\" (or none of them)",
        ));
    };
    if root_threshold == 0 || root_threshold as usize > roots {
        return Err(store_err(
            policy_path,
            format!("root_threshold {root_threshold} needs between 1 and the {roots} root key(s) the store holds"),
        ));
    }
    let expires = match &policy.expires {
        Some(v) => Some(parse_time(policy_path, "expires", v)?),
        None => None,
    };
    let issued = match &policy.issued {
        Some(v) => Some(parse_time(policy_path, "issued", v)?),
        None => None,
    };
    Ok(Some(Rotation {
        version,
        root_threshold,
        expires,
        issued,
    }))
}

pub use crate::carried_files::POLICY_FILE;

/// A secret key by its name (`*.key`, `*.sec`, any case) or its content.
fn is_secret_key_file(path: &Path, lower_name: &str) -> bool {
    if lower_name.ends_with(".key") || lower_name.ends_with(".sec") {
        return true;
    }
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    if !meta.is_file() || meta.len() > 64 * 1024 {
        return false;
    }
    airlock_base::bounded::read_capped(path, airlock_base::bounded::SECRET_KEY)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .map(zeroize::Zeroizing::new)
        .is_some_and(|text| crate::minisign::SecretKey::is_secret_key_text(&text))
}

/// The files of a trust store directory that are read: its public keys and its policy.
struct StoreFiles {
    pubs: Vec<PathBuf>,
    policy_file: Option<PathBuf>,
}

impl StoreFiles {
    /// The directory's `*.pub` files and `trust.toml`, in name order; refused: a file
    /// that looks like a policy or a key but is not named exactly so, and a secret key.
    fn scan(store: &Path) -> Result<StoreFiles, TrustError> {
        let mut files = StoreFiles {
            pubs: vec![],
            policy_file: None,
        };
        let mut entries: Vec<_> = std::fs::read_dir(store)
            .map_err(|e| store_err(store, e.to_string()))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .collect();
        entries.sort();
        for p in entries {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let lower = name.to_lowercase();
            let err_for = |f: fn(PathBuf, PathBuf) -> TrustError| f(store.into(), p.clone());
            if name == POLICY_FILE {
                files.policy_file = Some(p);
            } else if lower.ends_with(".toml") {
                return Err(err_for(|store, file| TrustError::UnknownPolicyFile {
                    store,
                    file,
                }));
            } else if is_secret_key_file(&p, &lower) {
                return Err(err_for(|store, file| TrustError::SecretKey { store, file }));
            } else if name.ends_with(".pub") {
                files.pubs.push(p);
            } else if lower.ends_with(".pub") {
                return Err(err_for(|store, file| TrustError::MisnamedKey {
                    store,
                    file,
                }));
            }
        }
        Ok(files)
    }
}

/// Each `.pub` file's key, with the default policy.
fn read_keys(pubs: Vec<PathBuf>) -> Result<Vec<TrustedKey>, TrustError> {
    let mut keys = vec![];
    for p in pubs {
        let text =
            airlock_base::bounded::read_capped_string(&p, airlock_base::bounded::PUBLIC_KEY)?;
        let key = PublicKey::parse(&text).map_err(|e| store_err(&p, e.to_string()))?;
        keys.push(TrustedKey {
            key,
            file: p,
            policy: KeyPolicy::default(),
        });
    }
    Ok(keys)
}

/// One public key in two files, or one key id for two keys, is refused.
fn refuse_duplicates(store: &Path, keys: &[TrustedKey]) -> Result<(), TrustError> {
    for (i, a) in keys.iter().enumerate() {
        for b in &keys[i + 1..] {
            if a.key.key == b.key.key {
                return Err(TrustError::DuplicateKey {
                    store: store.into(),
                    first: a.file.clone(),
                    first_id: a.key.key_id.to_string(),
                    second: b.file.clone(),
                    second_id: b.key.key_id.to_string(),
                });
            }
            if a.key.key_id == b.key.key_id {
                return Err(TrustError::DuplicateKeyId {
                    store: store.into(),
                    first: a.file.clone(),
                    second: b.file.clone(),
                    key_id: a.key.key_id.to_string(),
                });
            }
        }
    }
    Ok(())
}

/// A key holder's name as trust.toml may give it: one line of at most 100 printable
/// characters, not empty.
pub fn is_key_name(name: &str) -> bool {
    !name.trim().is_empty() && name.chars().count() <= 100 && !name.chars().any(char::is_control)
}

/// What `entry`, `[keys.ID]` (`id`) of the policy file at `policy_path`, says, onto
/// `policy`.
fn apply_key_policy(
    policy: &mut KeyPolicy,
    policy_path: &Path,
    id: &str,
    entry: &KeyPolicyToml,
) -> Result<(), TrustError> {
    if let Some(v) = &entry.not_before {
        policy.not_before = Some(parse_time(policy_path, "not_before", v)?);
    }
    if let Some(v) = &entry.not_after {
        policy.not_after = Some(parse_time(policy_path, "not_after", v)?);
    }
    policy.revoked = match &entry.revoked {
        None | Some(toml::Value::Boolean(false)) => None,
        Some(toml::Value::Boolean(true)) => Some(None),
        Some(v) => Some(Some(parse_time(policy_path, "revoked", v)?)),
    };
    policy.revoked_reason = entry.revoked_reason.clone();
    policy.role = match entry.role.as_deref() {
        None | Some("release") => Role::Release,
        Some("operator") => Role::Operator,
        Some("approver") => Role::Approver,
        Some("root") => Role::Root,
        Some(other) => {
            return Err(store_err(
                policy_path,
                format!(
                    "[keys.{id}] role {other:?} must be \"release\", \"operator\", \"approver\" or \"root\""
                ),
            ))
        }
    };
    for g in &entry.groups {
        if !crate::spec::is_group_name(g) {
            return Err(store_err(
                policy_path,
                format!("[keys.{id}] group {g:?} must be lowercase letters, digits, _ and - (e.g. \"l4\")"),
            ));
        }
    }
    if !entry.groups.is_empty() && policy.role != Role::Approver {
        return Err(store_err(
            policy_path,
            format!("[keys.{id}] has groups but role {}: groups name approvers for [ratification] required_groups; only role \"approver\" keys take them", policy.role.as_str()),
        ));
    }
    policy.groups = entry.groups.clone();
    if let Some(name) = &entry.name {
        if !is_key_name(name) {
            return Err(store_err(
                policy_path,
                format!("[keys.{id}] name {name:?} must be one line of at most 100 printable characters"),
            ));
        }
    }
    policy.name = entry.name.clone();
    Ok(())
}

impl TrustStore {
    /// One release key, threshold 1: what `--trust KEY.pub` gives (tests, fuzzing).
    pub fn single(file: impl Into<PathBuf>, key: PublicKey) -> TrustStore {
        let file = file.into();
        TrustStore {
            path: file.clone(),
            threshold: 1,
            keys: vec![TrustedKey {
                key,
                file,
                policy: KeyPolicy::default(),
            }],
            require_signed_receipts: false,
            rotation: None,
        }
    }

    /// Load a directory of `*.pub` keys with an optional `trust.toml`, or a single
    /// `.pub` file (threshold 1). Refused: secret keys, files that look like a policy
    /// but are not exactly `trust.toml`, and one public key (or one key id) twice.
    pub fn load(path: &Path) -> Result<TrustStore, TrustError> {
        let meta =
            std::fs::metadata(path).map_err(|e| store_err(path, format!("cannot read: {e}")))?;
        let files = if meta.is_dir() {
            StoreFiles::scan(path)?
        } else if is_secret_key_file(path, "") {
            return Err(TrustError::SecretKey {
                store: path.into(),
                file: path.into(),
            });
        } else {
            StoreFiles {
                pubs: vec![path.to_path_buf()],
                policy_file: None,
            }
        };
        let policy: TrustToml = match &files.policy_file {
            Some(p) => {
                let text = airlock_base::bounded::read_capped_string(
                    p,
                    airlock_base::bounded::TRUST_POLICY,
                )?;
                toml::from_str(&text).map_err(|e| store_err(p, e.to_string()))?
            }
            None => TrustToml::default(),
        };
        let mut keys = read_keys(files.pubs)?;
        if keys.is_empty() {
            return Err(store_err(path, "holds no *.pub keys"));
        }
        refuse_duplicates(path, &keys)?;
        let policy_path = files.policy_file.unwrap_or_else(|| path.to_path_buf());
        for (id, key_policy) in &policy.keys {
            let Some(key) = keys.iter_mut().find(|k| k.key.key_id.to_string() == *id) else {
                let upper = id.to_ascii_uppercase();
                let why = if keys.iter().any(|k| k.key.key_id.to_string() == upper) {
                    format!("[keys.{id}] is in lower case; key ids are written in upper case, as `airlock inspect` and `minisign -V` show them: [keys.{upper}]")
                } else {
                    format!("[keys.{id}] names a key id with no .pub file in the store")
                };
                return Err(store_err(&policy_path, why));
            };
            apply_key_policy(&mut key.policy, &policy_path, id, key_policy)?;
        }
        let threshold = policy.threshold.unwrap_or(1);
        if threshold == 0 {
            return Err(store_err(
                &policy_path,
                "threshold 0 would trust anything; use 1 or more",
            ));
        }
        let rotation = rotation_of(&policy, &policy_path, &keys)?;
        Ok(TrustStore {
            path: path.to_path_buf(),
            threshold,
            keys,
            require_signed_receipts: policy.require_signed_receipts,
            rotation,
        })
    }

    /// The key a signature names. Key ids are unique in a loaded store, and so are
    /// public keys, so the key found carries the one policy of its public key.
    pub fn find(&self, id: KeyId) -> Option<&TrustedKey> {
        self.keys.iter().find(|k| k.key.key_id == id)
    }

    /// The key with this key id as shown (uppercase hex).
    pub fn find_id(&self, id: &str) -> Option<&TrustedKey> {
        self.keys.iter().find(|k| k.key.key_id.to_string() == id)
    }

    /// The entry holding this public key (whatever key id it is given).
    pub fn find_key(&self, key: &PublicKey) -> Option<&TrustedKey> {
        self.keys.iter().find(|k| k.key.key == key.key)
    }
}

/// Why a signature does not count toward the threshold. Typed, so that what the
/// user is told to do next (`Error::hint`) never depends on parsing `note` text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum NotCounted {
    /// No key with this key id is in the trust store.
    UnknownKey,
    /// The signature (or its trusted comment) does not verify over these manifest
    /// bytes, or uses a refused algorithm: the bytes are not what the key signed.
    BadSignature,
    /// It verifies, but its trusted comment names another bundle id, name, version
    /// or sequence than the manifest's.
    OtherBundle,
    /// The key is revoked with no date, or since a date in force, and no evidence
    /// shows the bundle existed before it.
    Revoked,
    /// The time judged is before the key's `not_before`.
    NotYetValid,
    /// The key's `not_after` is in force and no evidence shows the bundle existed
    /// by then.
    KeyExpired,
    /// The key has role `operator`, which never counts for bundles.
    OperatorRole,
    /// The key has role `approver`, which never counts for bundles.
    ApproverRole,
    /// The key has role `root`, which signs trust stores and nothing else.
    RootRole,
    /// The key has role `release`, which never counts for receipts.
    ReleaseRole,
    /// Another signature by the same public key already counted.
    SamePublicKey,
}

impl NotCounted {
    /// True when the signature itself is wrong (tampering or forgery), as opposed
    /// to a sound signature the trust store does not accept.
    pub fn is_bad_signature(self) -> bool {
        matches!(self, NotCounted::BadSignature | NotCounted::OtherBundle)
    }
}

/// Evidence, from something the signer alone cannot make, that a bundle existed by
/// a time: a row in the target's ledger, or a receipt signed by an operator key that
/// counts. A signer's own claimed time is never evidence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Existence {
    /// The bundle existed by this time (RFC 3339).
    pub by: String,
    /// What shows it, e.g. `ledger row 3 of database prod`.
    pub source: String,
    #[serde(skip)]
    #[schemars(skip)]
    pub time: DateTime<Utc>,
}

impl Existence {
    pub fn new(time: DateTime<Utc>, source: impl Into<String>) -> Existence {
        Existence {
            by: rfc3339(time),
            source: source.into(),
            time,
        }
    }
}

/// When, and with what evidence, signatures are judged.
#[derive(Clone, Debug)]
pub struct Judging {
    /// The judging time: now, or the time given with `--at`.
    pub at: DateTime<Utc>,
    /// `at` was given (`--at`) rather than taken from the clock.
    pub given: bool,
    /// The clock when judging. A revocation or a `not_after` dated at or before the
    /// later of `now` and `at` is in force, whatever time anyone claims.
    pub now: DateTime<Utc>,
    /// The earliest evidence that the bundle existed.
    pub existed: Option<Existence>,
}

impl Judging {
    /// Judge now, with no evidence (verify, apply and every operator command).
    pub fn now() -> Judging {
        let now = Utc::now();
        Judging {
            at: now,
            given: false,
            now,
            existed: None,
        }
    }

    /// Judge at `at` if given (auditors), else now.
    pub fn at(at: Option<DateTime<Utc>>) -> Judging {
        let mut j = Judging::now();
        if let Some(at) = at {
            j.at = at;
            j.given = true;
        }
        j
    }

    /// The time from which revocations and key retirements are in force.
    fn in_force_until(&self) -> DateTime<Utc> {
        self.at.max(self.now)
    }

    fn describe(&self) -> String {
        format!(
            "judged at {} ({})",
            rfc3339(self.at),
            if self.given { "--at" } else { "now" }
        )
    }
}

/// The one timestamp format airlock writes and shows: RFC 3339, UTC, whole seconds
/// (`2026-06-03T09:15:00Z`).
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A stored timestamp (a ledger row's `at`, a receipt's times: evidence, never
/// rewritten) as [`rfc3339`] shows it; text that is not a time is shown as it is.
/// Rows and receipts written before 0.x kept fractions of a second.
pub fn shown(text: &str) -> String {
    parse_rfc3339(text)
        .map(rfc3339)
        .unwrap_or_else(|| text.to_string())
}

/// What was concluded about one signature file.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct SignatureCheck {
    pub file: String,
    pub key_id: String,
    /// The trust store file holding the key the signature was judged with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<String>,
    /// Who holds the key, as the trust store names it (`name` in trust.toml).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_name: Option<String>,
    pub trusted_comment: String,
    /// The signing time the signer claims (trusted comment): a claim, never evidence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// The signature verified against a trusted key and names this bundle.
    pub valid: bool,
    /// It counts toward the threshold.
    pub counted: bool,
    /// Why it does not count (absent when it counts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_counted: Option<NotCounted>,
    /// Why it does not count, or a flag worth knowing (e.g. a scheduled revocation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The evidence this judgement rests on, when a revocation or a key's `not_after`
    /// made evidence necessary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Existence>,
    /// What the judgement rests on: which key, which time, which evidence.
    pub basis: String,
}

impl SignatureCheck {
    /// A signature not judged yet: neither valid nor counted.
    fn unjudged(file: String, sig: &SignatureBox, signed_at: Option<String>) -> SignatureCheck {
        SignatureCheck {
            file,
            key_id: sig.key_id.to_string(),
            key_file: None,
            key_name: None,
            trusted_comment: sig.trusted_comment.clone(),
            signed_at,
            role: None,
            valid: false,
            counted: false,
            not_counted: None,
            note: None,
            evidence: None,
            basis: String::new(),
        }
    }

    fn refuse(&mut self, why: NotCounted, note: String) {
        self.not_counted = Some(why);
        self.note = Some(note);
    }

    /// Refused: the store has no key with this signature's id.
    fn refuse_unknown_key(&mut self, store: &TrustStore, note: String) {
        self.basis = format!(
            "no key with id {} in trust store {}",
            self.key_id,
            store.path.display()
        );
        self.refuse(NotCounted::UnknownKey, note);
    }
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct TrustVerdict {
    pub threshold: u32,
    pub distinct_keys: u32,
    pub met: bool,
    pub judged_at: String,
    /// Where `judged_at` came from: `now` or `--at`.
    pub judged_by: String,
    /// The earliest evidence that the bundle existed (audit: the ledger, receipts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Existence>,
    pub signatures: Vec<SignatureCheck>,
}

/// What a trusted comment says that this bundle is not: its name, version, sequence
/// and bundle id must all be the manifest's, or `minisign -V` shows a reader another
/// release than the one verified.
fn comment_mismatch(
    fields: &CommentFields,
    manifest: &Manifest,
    bundle_id: &str,
) -> Option<String> {
    let b = &manifest.bundle;
    let sequence = b.sequence.to_string();
    let said_sequence = fields.sequence.map(|s| s.to_string());
    let pairs: [(&str, Option<&str>, &str); 4] = [
        ("bundle id", fields.bundle_id.as_deref(), bundle_id),
        ("name", fields.name.as_deref(), &b.name),
        ("version", fields.version.as_deref(), &b.version),
        ("sequence", said_sequence.as_deref(), &sequence),
    ];
    pairs
        .iter()
        .find(|(_, said, is)| *said != Some(*is))
        .map(|(what, said, is)| match said {
            Some(said) => format!("trusted comment names {what} {said}, not this bundle's {is}"),
            None => format!("trusted comment names no {what} (this bundle's is {is})"),
        })
}

/// Why a key's policy keeps its (sound) signature from counting, or the evidence
/// that lets it count: a revocation or `not_after` in force needs evidence, which the
/// signer alone cannot make, that the bundle existed before that date.
struct PolicyJudgement {
    refusal: Option<(NotCounted, String)>,
    /// The policy facts that mattered, for the basis.
    facts: Vec<String>,
    /// The evidence used (whether it sufficed or not).
    evidence: Option<Existence>,
}

/// An end of trust in force (a revocation, or `not_after`): the signature counts only
/// when evidence shows the bundle existed before `end` (`strict`), or by it.
fn end_of_trust(
    judging: &Judging,
    out: &mut PolicyJudgement,
    what: String,
    end: DateTime<Utc>,
    strict: bool,
    why: NotCounted,
) -> Option<(NotCounted, String)> {
    let before = |e: &Existence| if strict { e.time < end } else { e.time <= end };
    match &judging.existed {
        Some(e) if before(e) => {
            out.facts.push(format!(
                "{what}, but {} shows the bundle existed by {}, before that",
                e.source, e.by
            ));
            out.evidence = Some(e.clone());
            None
        }
        Some(e) => {
            out.evidence = Some(e.clone());
            Some((
                why,
                format!(
                    "{what}; the earliest evidence ({}) shows the bundle only by {}, not before that",
                    e.source, e.by
                ),
            ))
        }
        None => Some((
            why,
            format!(
                "{what}; nothing the signer could not make alone (a ledger row, a receipt signed by an operator key) shows the bundle existed before that"
            ),
        )),
    }
}

fn judge_policy(key: &TrustedKey, judging: &Judging) -> PolicyJudgement {
    let p = &key.policy;
    let id = key.key.key_id;
    let reason = p
        .revoked_reason
        .as_ref()
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    let cutoff = judging.in_force_until();
    let mut out = PolicyJudgement {
        refusal: None,
        facts: vec![],
        evidence: None,
    };
    let revoked = match &p.revoked {
        Some(None) => Some((
            NotCounted::Revoked,
            format!("key {id} is revoked{reason}, with no date: nothing can show a signature predates it"),
        )),
        Some(Some(t)) if *t <= cutoff => end_of_trust(
            judging,
            &mut out,
            format!("key {id} is revoked since {}{reason}", rfc3339(*t)),
            *t,
            true,
            NotCounted::Revoked,
        ),
        Some(Some(t)) => {
            out.facts
                .push(format!("revocation scheduled from {}{reason}", rfc3339(*t)));
            None
        }
        None => None,
    };
    let expired = || match p.not_after {
        Some(na) if na < cutoff => Some(na),
        _ => None,
    };
    let refusal = revoked
        .or_else(|| match p.not_before {
            Some(nb) if judging.at < nb => Some((
                NotCounted::NotYetValid,
                format!("key {id} is not valid before {}", rfc3339(nb)),
            )),
            _ => None,
        })
        .or_else(|| {
            let na = expired()?;
            end_of_trust(
                judging,
                &mut out,
                format!("key {id} expired at {}", rfc3339(na)),
                na,
                false,
                NotCounted::KeyExpired,
            )
        })
        .or_else(|| match p.role {
            Role::Operator => Some((
                NotCounted::OperatorRole,
                format!("key {id} has role operator and cannot sign releases"),
            )),
            Role::Approver => Some((
                NotCounted::ApproverRole,
                format!("key {id} has role approver: it approves releases (airlock approve), it cannot sign them"),
            )),
            Role::Root => Some((
                NotCounted::RootRole,
                format!("key {id} has role root: it signs trust stores (airlock trust sign), never a release"),
            )),
            Role::Release => None,
        });
    if refusal.is_none() && out.facts.is_empty() {
        out.facts.push(match (p.not_before, p.not_after) {
            (None, None) => "not revoked, no validity window".into(),
            _ => "not revoked, inside its validity window".into(),
        });
    }
    out.refusal = refusal;
    out
}

/// Judge every signature over `manifest_bytes`: the signature, its trusted comment,
/// then its key's policy as `judging` says.
pub fn evaluate(
    store: &TrustStore,
    manifest_bytes: &[u8],
    manifest: &Manifest,
    bundle_id: &str,
    sigs: &[(String, SignatureBox)],
    judging: &Judging,
) -> TrustVerdict {
    let prehash = crate::minisign::blake2b512(manifest_bytes);
    let mut counted_keys = BTreeSet::new();
    let mut checks = vec![];
    for (file, sig) in sigs {
        let fields: CommentFields = manifest::parse_trusted_comment(&sig.trusted_comment);
        let claimed = fields
            .timestamp
            .and_then(|t| DateTime::<Utc>::from_timestamp(t, 0))
            .map(rfc3339);
        let claim = claim_text(claimed.as_deref());
        let mut check = SignatureCheck::unjudged(file.clone(), sig, claimed);
        let Some(key) = store.find(sig.key_id) else {
            check.refuse_unknown_key(
                store,
                format!("key {} is not in the trust store", sig.key_id),
            );
            checks.push(check);
            continue;
        };
        check.key_file = Some(key.file.display().to_string());
        check.key_name = key.policy.name.clone();
        let key_part = format!(
            "key {} ({}, role {})",
            sig.key_id,
            key.file.display(),
            key.policy.role.as_str()
        );
        check.basis = format!("{key_part}; {}", judging.describe());
        if let Err(e) = key.key.verify_prehashed(&prehash, sig) {
            check.refuse(
                NotCounted::BadSignature,
                format!(
                    "signature by key {} does not verify over this manifest ({e})",
                    sig.key_id
                ),
            );
            checks.push(check);
            continue;
        }
        check.role = Some(key.policy.role);
        if let Some(wrong) = comment_mismatch(&fields, manifest, bundle_id) {
            check.refuse(NotCounted::OtherBundle, wrong);
            checks.push(check);
            continue;
        }
        check.valid = true;
        let policy = judge_policy(key, judging);
        check.evidence = policy.evidence.clone();
        let mut basis = vec![key_part, judging.describe(), claim];
        basis.extend(policy.facts.iter().cloned());
        if let Some((_, note)) = &policy.refusal {
            basis.push(note.clone());
        }
        check.basis = basis.join("; ");
        match policy.refusal {
            Some((why, note)) => check.refuse(why, note),
            None => {
                if counted_keys.insert(*key.key.key.as_bytes()) {
                    check.counted = true;
                    check.note = counted_note(&policy.facts);
                } else {
                    check.refuse(
                        NotCounted::SamePublicKey,
                        "another signature by the same public key already counted".into(),
                    );
                }
            }
        }
        checks.push(check);
    }
    let distinct = counted_keys.len() as u32;
    TrustVerdict {
        threshold: store.threshold,
        distinct_keys: distinct,
        met: distinct >= store.threshold,
        judged_at: rfc3339(judging.at),
        judged_by: if judging.given { "--at" } else { "now" }.into(),
        evidence: judging.existed.clone(),
        signatures: checks,
    }
}

/// What the basis says of the signing time a signer claims.
fn claim_text(claimed: Option<&str>) -> String {
    match claimed {
        Some(t) => format!("signer claims {t} (a claim, not evidence)"),
        None => "no signing time claimed".into(),
    }
}

/// The note on a signature that counted: the facts about its key that deserve one
/// (a revocation scheduled, a window), all but the plain "not revoked…".
fn counted_note(facts: &[String]) -> Option<String> {
    let flagged: Vec<&str> = facts
        .iter()
        .filter(|f| !f.starts_with("not revoked"))
        .map(String::as_str)
        .collect();
    (!flagged.is_empty()).then(|| flagged.join("; "))
}

/// The tag of a receipt's signature's trusted comment.
pub const RECEIPT_TAG: &str = "airlock-receipt";

/// What a receipt's signature must say in its trusted comment (airlock writes
/// `timestamp:T<TAB>airlock-receipt<TAB>bundle_id:ID<TAB>event:E<TAB>ledger_seq:N`).
/// The operator's signature over a run's ledger rows says the same with its own tag.
pub struct ReceiptClaim<'a> {
    /// [`RECEIPT_TAG`], or the ledger rows' tag.
    pub tag: &'a str,
    pub bundle_id: &'a str,
    pub event: &'a str,
    pub ledger_seq: i64,
}

/// Judge the signature of a receipt (its `RECEIPT.minisig`) over the receipt's exact
/// bytes. It counts only from a key of this store with role `operator`, not revoked
/// (a revocation in force makes every receipt it signed unverified, whatever time it
/// claims), valid at the signing time it claims, and only when its trusted comment
/// names this receipt. The claimed time is the operator's: receipts have no other.
pub fn judge_receipt_signature(
    store: &TrustStore,
    receipt_bytes: &[u8],
    file: &str,
    sig: &SignatureBox,
    claim: &ReceiptClaim<'_>,
    now: DateTime<Utc>,
) -> SignatureCheck {
    let comment = ReceiptComment::parse(&sig.trusted_comment);
    let claimed_time = comment.claimed_time();
    let mut check = SignatureCheck::unjudged(file.into(), sig, claimed_time.map(rfc3339));
    let Some(key) = store.find(sig.key_id) else {
        check.refuse_unknown_key(
            store,
            format!(
                "signed by key {}, which is not in the trust store",
                sig.key_id
            ),
        );
        return check;
    };
    let policy = &key.policy;
    check.key_file = Some(key.file.display().to_string());
    check.key_name = policy.name.clone();
    check.role = Some(policy.role);
    let key_part = format!(
        "key {} ({}, role {})",
        sig.key_id,
        key.file.display(),
        policy.role.as_str()
    );
    check.basis = key_part.clone();
    if key.key.verify(receipt_bytes, sig).is_err() {
        check.refuse(
            NotCounted::BadSignature,
            format!(
                "signature by {} does not verify over this receipt (edited after signing?)",
                sig.key_id
            ),
        );
        return check;
    }
    if let Some(wrong) = comment.mismatch(claim) {
        check.refuse(NotCounted::OtherBundle, wrong);
        return check;
    }
    check.valid = true;
    let Some(signed) = claimed_time else {
        check.refuse(
            NotCounted::OtherBundle,
            "trusted comment claims no signing time".into(),
        );
        return check;
    };
    let mut basis = vec![
        key_part,
        format!(
            "judged at its claimed signing time {} (the operator's claim: receipts carry no other)",
            rfc3339(signed)
        ),
    ];
    match receipt_key_refusal(sig.key_id, policy, signed, now) {
        Some((why, note)) => {
            basis.push(note.clone());
            check.refuse(why, note);
        }
        None => {
            check.counted = true;
            basis.push("not revoked, valid then".into());
            let notes = receipt_key_notes(policy, now);
            if !notes.is_empty() {
                basis.extend(notes.iter().cloned());
                check.note = Some(notes.join("; "));
            }
        }
    }
    check.basis = basis.join("; ");
    check
}

/// A receipt signature's trusted comment: its `name:value` fields, and its tags
/// (`airlock-receipt`).
struct ReceiptComment<'a> {
    fields: BTreeMap<&'a str, &'a str>,
    tags: Vec<&'a str>,
}

impl<'a> ReceiptComment<'a> {
    fn parse(trusted_comment: &'a str) -> ReceiptComment<'a> {
        let mut fields = BTreeMap::new();
        let mut tags = vec![];
        for part in trusted_comment.split('\t') {
            match part.split_once(':') {
                Some((name, value)) => {
                    fields.insert(name, value);
                }
                None => tags.push(part),
            }
        }
        ReceiptComment { fields, tags }
    }

    /// The signing time it claims.
    fn claimed_time(&self) -> Option<DateTime<Utc>> {
        self.fields
            .get("timestamp")
            .and_then(|t| t.parse::<i64>().ok())
            .and_then(|t| DateTime::<Utc>::from_timestamp(t, 0))
    }

    /// Why it is not this receipt's comment (no tag, or another bundle id, event or
    /// ledger row), if it is not.
    fn mismatch(&self, claim: &ReceiptClaim<'_>) -> Option<String> {
        if !self.tags.contains(&claim.tag) {
            return Some(if claim.tag == RECEIPT_TAG {
                "trusted comment is not an airlock receipt's (no airlock-receipt tag)".into()
            } else {
                format!(
                    "trusted comment is not of airlock's ledger rows (no {} tag)",
                    claim.tag
                )
            });
        }
        let seq = claim.ledger_seq.to_string();
        let wanted = [
            ("bundle_id", claim.bundle_id),
            ("event", claim.event),
            ("ledger_seq", seq.as_str()),
        ];
        wanted
            .iter()
            .find(|(name, want)| self.fields.get(name).copied() != Some(*want))
            .map(|(name, want)| {
                format!(
                    "trusted comment names {name} {}, not this receipt's {want}",
                    self.fields.get(name).copied().unwrap_or("(none)")
                )
            })
    }
}

/// Why key `id`, with `policy`, does not count for a receipt it claims to have signed
/// at `signed`: not an operator key, revoked (whatever time it claims), the claim in
/// the future, or outside the key's window.
fn receipt_key_refusal(
    id: KeyId,
    policy: &KeyPolicy,
    signed: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<(NotCounted, String)> {
    if policy.role != Role::Operator {
        Some((
            NotCounted::ReleaseRole,
            format!("key {id} has role {}; receipts count only from operator keys", policy.role.as_str()),
        ))
    } else {
        match &policy.revoked {
            Some(None) => Some((
                NotCounted::Revoked,
                format!("key {id} is revoked: no receipt it signed counts"),
            )),
            Some(Some(t)) if *t <= now => Some((
                NotCounted::Revoked,
                format!(
                    "key {id} is revoked since {}: no receipt it signed counts, whatever time it claims",
                    rfc3339(*t)
                ),
            )),
            _ => None,
        }
    }
    .or_else(|| {
        (signed > now + chrono::Duration::minutes(5)).then(|| {
            (
                NotCounted::NotYetValid,
                format!("claims to be signed at {}, after now", rfc3339(signed)),
            )
        })
    })
    .or_else(|| match policy.not_before {
        Some(nb) if signed < nb => Some((
            NotCounted::NotYetValid,
            format!("key {id} was not valid before {} (signed {})", rfc3339(nb), rfc3339(signed)),
        )),
        _ => None,
    })
    .or_else(|| match policy.not_after {
        Some(na) if signed > na => Some((
            NotCounted::KeyExpired,
            format!("key {id} expired at {} (signed {})", rfc3339(na), rfc3339(signed)),
        )),
        _ => None,
    })
}

/// What a receipt that counted should still say about its key: a revocation
/// scheduled, or a key retired since.
fn receipt_key_notes(policy: &KeyPolicy, now: DateTime<Utc>) -> Vec<String> {
    let mut notes = vec![];
    if let Some(Some(t)) = &policy.revoked {
        notes.push(format!("revocation scheduled from {}", rfc3339(*t)));
    }
    if let Some(na) = policy.not_after.filter(|na| *na < now) {
        notes.push(format!(
            "key retired since {}: its holder could still sign receipts claiming earlier times",
            rfc3339(na)
        ));
    }
    notes
}
