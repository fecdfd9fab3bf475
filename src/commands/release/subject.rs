//! What a dossier is about, and its digest: the bundle (by id), the params of the run,
//! and the trust store's keys that give the page its names and roles. `airlock
//! approve` prints the digest of what it signs, computed here from its own inputs, so
//! an approver can check that the page they read is about exactly that.
//!
//! Invariant: the digest is a function of the bundle id, its name, version and
//! sequence, the params and the trust store's keys (id, name, role, groups) and
//! version, and of nothing else: no time, no database, no file path. The same inputs
//! give the same digest on any host, offline; a different bundle, other params, or a
//! store that names someone else give another.

use crate::trust::{Role, TrustStore};
use crate::verified::VerifiedBundle;
use schemars::JsonSchema;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The version of the subject's canonical form (part of what is hashed).
pub const FORMAT: &str = "airlock-dossier-subject/1";

/// One key of the trust store, as the page names it.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct SubjectKey {
    pub key_id: String,
    /// Who holds it (`name` in trust.toml).
    pub name: Option<String>,
    pub role: Role,
    pub groups: Vec<String>,
}

/// What the page (and an approval of it) is about.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Subject {
    /// `airlock-dossier-subject/1`.
    pub format: String,
    pub bundle_id: String,
    pub bundle_name: String,
    pub bundle_version: String,
    pub sequence: u64,
    /// The params of the run the page describes (the ones an approval consents to).
    pub params: BTreeMap<String, String>,
    /// The trust store's version (absent: it has none).
    pub trust_store_version: Option<u64>,
    /// Every key of the trust store, by key id.
    pub keys: Vec<SubjectKey>,
}

impl Subject {
    pub fn of(
        vb: &VerifiedBundle,
        store: &TrustStore,
        params: &BTreeMap<String, String>,
    ) -> Subject {
        let m = vb.manifest();
        let mut keys: Vec<SubjectKey> = store
            .keys
            .iter()
            .map(|k| SubjectKey {
                key_id: k.key.key_id.to_string(),
                name: k.policy.name.clone(),
                role: k.policy.role,
                groups: k.policy.groups.clone(),
            })
            .collect();
        keys.sort_by(|a, b| a.key_id.cmp(&b.key_id));
        Subject {
            format: FORMAT.into(),
            bundle_id: vb.id().into(),
            bundle_name: m.bundle.name.clone(),
            bundle_version: m.bundle.version.clone(),
            sequence: m.bundle.sequence,
            params: params.clone(),
            trust_store_version: store.rotation.as_ref().map(|r| r.version),
            keys,
        }
    }

    /// Lowercase hex SHA-256 of the subject's JSON (fields in their declared order,
    /// maps sorted, no spaces).
    pub fn digest(&self) -> String {
        let bytes = serde_json::to_vec(self).expect("a subject serializes");
        hex::encode(Sha256::digest(&bytes))
    }
}

/// The digest of the dossier of `vb` run with `params`, judged with `store`.
pub fn digest(
    vb: &VerifiedBundle,
    store: &TrustStore,
    params: &BTreeMap<String, String>,
) -> String {
    Subject::of(vb, store, params).digest()
}
