//! A trust store's versions over time, for judging old signatures: the current store
//! and the earlier versions it keeps under `history/vN/` (`airlock trust update` and a
//! bundle's carried update put them there), each in force from its `issued` time until
//! the next version's.
//!
//! Invariant: an earlier version is used only when it is proven by the version after
//! it, back from the current store (which the host admitted): that next version is
//! signed by the threshold of its root keys, and it is signed by its own roots, as
//! each was when it was installed; a history that does not prove itself is never
//! used. A signature is judged with the version in force at its time, and with every
//! revocation a later version made (a key revoked since stays revoked for the times
//! the revocation covers): a later version can take trust away, never give it back.

use crate::trust::{TrustStore, TrustedKey};
use crate::trust_rotation::{canonical, SIGNATURES_DIR};
use chrono::{DateTime, Utc};
use std::path::Path;

/// One version of a store, and whether the versions after it prove it.
pub struct Version {
    pub version: u64,
    pub issued: Option<DateTime<Utc>>,
    pub store: TrustStore,
    /// Why it cannot be used (its proof failed), when it cannot.
    pub unproven: Option<String>,
}

/// Every version of a store this host can show: the earlier ones it keeps, then the
/// current one, in version order.
pub struct History {
    pub versions: Vec<Version>,
}

/// The store a signature made at some time is judged with.
pub struct InForce {
    /// The version (absent: the store has none).
    pub version: Option<u64>,
    /// That version's store, with the revocations later versions made.
    pub store: TrustStore,
    /// Why this version, in words.
    pub why: String,
}

/// Whether `keys`' threshold signed the store at `dir` (canonical form `bytes`,
/// version `version`), whatever their windows say today (the signature over the very
/// bytes is what proves a version was handed on).
fn signed_by(dir: &Path, bytes: &[u8], version: u64, keys: &[&TrustedKey], need: u32) -> bool {
    let comment = format!(
        "airlock-trust-store version={version} canonical={}",
        crate::trust_rotation::canonical_id(bytes)
    );
    let mut signers: Vec<String> = vec![];
    for k in keys {
        let path = dir
            .join(SIGNATURES_DIR)
            .join(format!("{}.minisig", k.key.key_id));
        let Ok(text) =
            airlock_base::bounded::read_capped_string(&path, airlock_base::bounded::SIGNATURE)
        else {
            continue;
        };
        let Ok(sig) = crate::minisign::SignatureBox::parse(&text) else {
            continue;
        };
        let id = k.key.key_id.to_string();
        if sig.trusted_comment == comment
            && k.key.verify(bytes, &sig).is_ok()
            && !signers.contains(&id)
        {
            signers.push(id);
        }
    }
    signers.len() as u32 >= need
}

fn roots(store: &TrustStore) -> Vec<&TrustedKey> {
    store
        .keys
        .iter()
        .filter(|k| k.policy.role == crate::trust::Role::Root)
        .collect()
}

impl History {
    /// `current` and the versions under its `history/`, each proven by the one after
    /// it (back from `current`).
    pub fn load(current: &TrustStore) -> History {
        let mut versions = vec![];
        if let Ok(dir) = std::fs::read_dir(current.path.join(crate::trust_rotation::HISTORY_DIR)) {
            for e in dir.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let Some(n) = name.strip_prefix('v').and_then(|n| n.parse::<u64>().ok()) else {
                    continue;
                };
                if let Ok(store) = TrustStore::load(&e.path()) {
                    versions.push(version_of(store, n));
                }
            }
        }
        let current_version = current.rotation.as_ref().map(|r| r.version).unwrap_or(0);
        versions.retain(|v| v.version < current_version);
        versions.sort_by_key(|v| v.version);
        versions.push(Version {
            version: current_version,
            issued: current.rotation.as_ref().and_then(|r| r.issued),
            store: current.clone(),
            unproven: None,
        });
        let mut history = History { versions };
        history.prove();
        history
    }

    /// Back from the current version: each earlier version is proven when the next
    /// one is, is its version plus one, signed its successor, and signed itself.
    fn prove(&mut self) {
        for i in (0..self.versions.len().saturating_sub(1)).rev() {
            let (before, after) = self.versions.split_at_mut(i + 1);
            let (this, next) = (&mut before[i], &after[0]);
            let why = if let Some(why) = &next.unproven {
                Some(format!(
                    "version {} after it is not proven ({why})",
                    next.version
                ))
            } else if next.version != this.version + 1 {
                Some(format!(
                    "version {} is missing from the history",
                    this.version + 1
                ))
            } else {
                proven_by(this, next).err()
            };
            this.unproven = why;
        }
    }

    /// The version in force at `at`: the highest proven one issued by then; when none
    /// is known to have been (a time before every proven version, or versions without
    /// `issued`), the current one; with later revocations applied.
    pub fn in_force(&self, at: DateTime<Utc>) -> InForce {
        let usable: Vec<&Version> = self
            .versions
            .iter()
            .filter(|v| v.unproven.is_none())
            .collect();
        let current = usable.last().expect("the current version is always usable");
        let issued_by_then = usable
            .iter()
            .rev()
            .find(|v| v.issued.is_some_and(|t| t <= at));
        let (chosen, why) = match issued_by_then {
            Some(v) if v.version == current.version => (*v, "the current version".to_string()),
            Some(v) => (
                *v,
                format!(
                    "in force at {} (issued {})",
                    crate::trust::rfc3339(at),
                    v.issued.map(crate::trust::rfc3339).unwrap_or_default()
                ),
            ),
            None => (
                *current,
                format!(
                    "the current version (no version this store can prove was in force at {})",
                    crate::trust::rfc3339(at)
                ),
            ),
        };
        let mut store = chosen.store.clone();
        for later in usable.iter().filter(|v| v.version > chosen.version) {
            carry_revocations(&mut store, &later.store);
        }
        InForce {
            version: (chosen.version > 0).then_some(chosen.version),
            store,
            why,
        }
    }
}

fn version_of(store: TrustStore, n: u64) -> Version {
    let unproven = match store.rotation.as_ref().map(|r| r.version) {
        Some(v) if v == n => None,
        other => Some(format!(
            "history/v{n} holds version {}",
            other
                .map(|v| v.to_string())
                .unwrap_or_else(|| "(none)".into())
        )),
    };
    Version {
        version: n,
        issued: store.rotation.as_ref().and_then(|r| r.issued),
        store,
        unproven,
    }
}

/// `next` is signed by `this`'s root threshold, and `this` by its own.
fn proven_by(this: &Version, next: &Version) -> Result<(), String> {
    if let Some(why) = &this.unproven {
        return Err(why.clone());
    }
    let threshold = this
        .store
        .rotation
        .as_ref()
        .map(|r| r.root_threshold)
        .unwrap_or(u32::MAX);
    let next_bytes = canonical(&next.store.path).map_err(|e| e.to_string())?;
    if !signed_by(
        &next.store.path,
        &next_bytes,
        next.version,
        &roots(&this.store),
        threshold,
    ) {
        return Err(format!(
            "version {} is not signed by version {}'s root threshold",
            next.version, this.version
        ));
    }
    let own = canonical(&this.store.path).map_err(|e| e.to_string())?;
    if !signed_by(
        &this.store.path,
        &own,
        this.version,
        &roots(&this.store),
        threshold,
    ) {
        return Err(format!(
            "version {} is not signed by its own roots",
            this.version
        ));
    }
    Ok(())
}

/// Every revocation `later` makes of a key `store` holds (the same public key),
/// applied to `store`: the earlier of the two times, or always.
fn carry_revocations(store: &mut TrustStore, later: &TrustStore) {
    for k in &mut store.keys {
        let Some(l) = later.keys.iter().find(|l| l.key.key == k.key.key) else {
            continue;
        };
        k.policy.revoked = match (k.policy.revoked, l.policy.revoked) {
            (Some(None), _) | (_, Some(None)) => Some(None),
            (Some(Some(a)), Some(Some(b))) => Some(Some(a.min(b))),
            (None, r) | (r, None) => r,
        };
        if l.policy.revoked.is_some() && k.policy.revoked_reason.is_none() {
            k.policy.revoked_reason = l.policy.revoked_reason.clone();
        }
    }
}
