//! A trust store's versions over time, for judging old signatures: the current store
//! and the earlier versions it keeps under `history/vN/` (`airlock trust update` and a
//! bundle's carried update put them there), each in force from its `issued` time until
//! the next version's.
//!
//! Invariant: an earlier version is used only when it is proven forward: it is a
//! version this host trusts (its memory holds its canonical form), or it follows a
//! proven version directly and is signed by that version's root threshold and by its
//! own (TUF's root chain); never backward from what a later version's signers claim
//! (root public keys are public: anyone can list them in a forged version). The current
//! store is the one the host admitted; a history that is not proven is never used. A signature is judged with the version in force at its time, and with every
//! revocation a later version made (a key revoked since stays revoked for the times
//! the revocation covers): a later version can take trust away, never give it back.

use crate::trust::rotation::{self, KnownVersion};
use crate::trust::TrustStore;
use chrono::{DateTime, Utc};

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

impl History {
    /// `current` and the versions under its `history/`, each proven forward from a
    /// version this host trusts (`known`, from its memory of the store; with none, the
    /// first version the store keeps: the store as it was handed over).
    pub fn load(current: &TrustStore, known: &[KnownVersion]) -> History {
        let earlier = rotation::history_versions(current);
        let proofs = rotation::prove_forward(&earlier, known);
        let mut versions: Vec<Version> = earlier
            .into_iter()
            .zip(proofs)
            .map(|(store, proof)| Version {
                version: store.rotation.as_ref().map(|r| r.version).unwrap_or(0),
                issued: store.rotation.as_ref().and_then(|r| r.issued),
                store,
                unproven: proof.err(),
            })
            .collect();
        versions.push(Version {
            version: current.rotation.as_ref().map(|r| r.version).unwrap_or(0),
            issued: current.rotation.as_ref().and_then(|r| r.issued),
            store: current.clone(),
            unproven: None,
        });
        History { versions }
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
