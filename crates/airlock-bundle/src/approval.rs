//! Signed approvals (ratification): the small document an approver signs with
//! `airlock approve`, the files it travels in, and the judgement of a quorum.
//!
//! An approval is two files, as minisign keeps them: `NAME.approval` (the document:
//! canonical JSON) and `NAME.approval.minisig` (a minisign signature over its exact
//! bytes), so plain `minisign -Vm NAME.approval -p APPROVER.pub` verifies one.
//!
//! Invariant: an approval counts only when its signature verifies strictly over the
//! exact document bytes with a key of the trust store whose role is `approver`, not
//! revoked and inside its window at the time judged; when the document names that key,
//! this bundle id, name and sequence, and exactly the params of the run; and when it
//! has not expired. The quorum counts distinct public keys, never files or key ids.

use crate::manifest::Manifest;
use crate::minisign::{sign_with, KeySigner, SignatureBox, SignerError};
use crate::spec::Ratification;
use crate::trust::{parse_rfc3339, rfc3339, Role, TrustStore};
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The document format this airlock writes and reads.
pub const FORMAT: &str = "airlock-approval/1";
/// The file extension of an approval document (its signature adds `.minisig`).
pub const EXTENSION: &str = "approval";
/// The tag in an approval signature's trusted comment.
const TAG: &str = "airlock-approval";
/// Most approval files read from one directory.
const MAX_FILES: usize = 1000;
/// How far in the future an approval's claimed time may be (clock skew).
const SKEW_MINUTES: i64 = 5;

/// What an approver signs: who consents to which bundle, run with which params, when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalDoc {
    /// `airlock-approval/1`.
    pub format: String,
    /// The approver's key id (uppercase hex, as minisign shows it).
    pub approver: String,
    /// The bundle id approved (SHA-256 of its manifest.json).
    pub bundle_id: String,
    pub bundle_name: String,
    pub bundle_version: String,
    pub sequence: u64,
    /// The params the approver consents to: the run must give exactly these.
    #[serde(deserialize_with = "crate::strict_json::strict_map")]
    pub params: BTreeMap<String, String>,
    /// When the approver signed (RFC 3339; the approver's claim).
    pub approved_at: String,
    /// After this time (RFC 3339) the approval no longer counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    /// What the approver wrote with it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub comment: String,
}

impl ApprovalDoc {
    /// Canonical bytes: sorted keys, compact, one trailing newline.
    pub fn to_canonical_bytes(&self) -> Vec<u8> {
        let value = serde_json::to_value(self).expect("approval serializes");
        let mut out = serde_json::to_vec(&value).expect("value serializes");
        out.push(b'\n');
        out
    }

    /// Parse the signed bytes strictly (no duplicate keys, no unknown fields, this
    /// format only). Never re-serialized for checking.
    pub fn parse(bytes: &[u8]) -> Result<ApprovalDoc, String> {
        std::str::from_utf8(bytes).map_err(|_| "the document is not UTF-8".to_string())?;
        crate::strict_json::check_no_duplicate_keys(bytes)?;
        let doc: ApprovalDoc = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if doc.format != FORMAT {
            return Err(format!(
                "format {:?} is not {FORMAT:?} (use a newer airlock)",
                doc.format
            ));
        }
        Ok(doc)
    }

    /// The trusted comment of its signature: what `minisign -V` shows a reader.
    pub fn trusted_comment(&self, timestamp: i64) -> String {
        format!(
            "timestamp:{timestamp}\t{TAG}\tapprover:{}\tname:{}\tversion:{}\tsequence:{}\tbundle_id:{}",
            self.approver, self.bundle_name, self.bundle_version, self.sequence, self.bundle_id
        )
    }

    /// Sign the canonical bytes: the document and its `.minisig` text.
    pub fn sign(
        &self,
        key: &dyn KeySigner,
        timestamp: i64,
    ) -> Result<(Vec<u8>, String), SignerError> {
        let bytes = self.to_canonical_bytes();
        let mut sig = sign_with(key, &bytes, &self.trusted_comment(timestamp))?;
        sig.untrusted_comment = format!("airlock approval by key {}", sig.key_id);
        Ok((bytes, sig.to_file_text()))
    }
}

/// An approval as read: the exact document text and signature text, and where from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedApproval {
    pub file: String,
    pub document: String,
    pub signature: String,
}

/// An approval path that cannot be read at all (a file that reads but is malformed is
/// judged, and refused, instead).
#[derive(Debug, thiserror::Error)]
#[error("approval {}: {why}", path.display())]
pub struct ApprovalReadError {
    pub path: PathBuf,
    pub why: String,
}

/// The signature file of an approval document.
pub fn signature_path(doc: &Path) -> PathBuf {
    let mut name = doc.as_os_str().to_owned();
    name.push(".minisig");
    PathBuf::from(name)
}

/// Read the approvals `--approval` names: each a document (its signature beside it as
/// `FILE.minisig`), or a directory whose `*.approval` files are read, in name order.
pub fn read_approvals(paths: &[PathBuf]) -> Result<Vec<SignedApproval>, ApprovalReadError> {
    let mut out = vec![];
    for path in paths {
        let err = |why: String| ApprovalReadError {
            path: path.clone(),
            why,
        };
        let meta = std::fs::metadata(path).map_err(|e| err(e.to_string()))?;
        if meta.is_dir() {
            let mut docs: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| err(e.to_string()))?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == EXTENSION))
                .collect();
            docs.sort();
            if docs.len() > MAX_FILES {
                return Err(err(format!(
                    "holds more than {MAX_FILES} *.{EXTENSION} files"
                )));
            }
            out.extend(docs.iter().map(|d| read_one(d)));
        } else {
            out.push(read_one(path));
        }
    }
    Ok(out)
}

/// One approval's two files as text; what cannot be read becomes empty text, which the
/// judgement refuses as malformed (naming the file).
fn read_one(doc: &Path) -> SignedApproval {
    use airlock_base::bounded::{read_capped_string, Cap, APPROVAL, SIGNATURE};
    // Only a regular file is opened (a FIFO would block the open); the read is capped
    // whatever the file turns out to be.
    let read = |p: &Path, cap: Cap| -> String {
        match std::fs::metadata(p) {
            Ok(m) if m.is_file() => read_capped_string(p, cap).unwrap_or_default(),
            _ => String::new(),
        }
    };
    SignedApproval {
        file: doc.display().to_string(),
        document: read(doc, APPROVAL),
        signature: read(&signature_path(doc), SIGNATURE),
    }
}

/// Why an approval does not count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Refusal {
    /// The document or its `.minisig` is missing, unreadable or not well-formed.
    Malformed,
    /// No key with the signature's key id is in the trust store.
    UnknownKey,
    /// The signature does not verify over the document's bytes (edited after
    /// signing?), or names another approver than the key that signed.
    BadSignature,
    /// The key's role is not `approver` (a release or operator key).
    NotApprover,
    /// The key is revoked (with no date, or since a date in force).
    Revoked,
    /// The time judged is before the key's `not_before`.
    KeyNotYetValid,
    /// The key's `not_after` has passed.
    KeyExpired,
    /// It approves another bundle (another bundle id or name).
    OtherBundle,
    /// It approves another sequence of this release.
    OtherSequence,
    /// It consents to other params than the run gives.
    OtherParams,
    /// Its own `expires` has passed.
    Expired,
    /// It claims to be signed in the future.
    NotYetSigned,
    /// Another approval by the same public key already counted.
    SameKey,
}

impl Refusal {
    /// True when the approval itself is wrong (tampering, forgery, damage), as
    /// opposed to a sound approval that does not fit this run or this trust store.
    pub fn is_bad(self) -> bool {
        matches!(self, Refusal::Malformed | Refusal::BadSignature)
    }
}

/// What was concluded about one approval.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct ApprovalCheck {
    pub file: String,
    /// The key id its signature names (empty when the signature is unreadable).
    pub key_id: String,
    /// Who holds the key, as the trust store names it (`name` in trust.toml).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub comment: String,
    /// It counts toward the quorum.
    pub counted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<Refusal>,
    /// Why it does not count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The exact document text (evidence: `audit` verifies it again).
    pub document: String,
    /// The exact `.minisig` text.
    pub signature: String,
}

impl ApprovalCheck {
    /// The approval as it was read, to judge again (audit).
    pub fn signed(&self) -> SignedApproval {
        SignedApproval {
            file: self.file.clone(),
            document: self.document.clone(),
            signature: self.signature.clone(),
        }
    }

    /// `alice.approval (key AB…): other-params: …`
    pub fn describe(&self) -> String {
        let why = self
            .refused
            .and_then(|r| serde_json::to_value(r).ok())
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let key = match self.key_id.as_str() {
            "" => String::new(),
            id => format!(" (key {id})"),
        };
        format!(
            "{}{key}: {why}: {}",
            self.file,
            self.note.as_deref().unwrap_or("")
        )
    }
}

/// The quorum a run needs and what its approvals made of it.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct QuorumReport {
    pub threshold: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required: Vec<String>,
    /// Distinct approver keys whose approval counted.
    pub counted: u32,
    /// `counted >= threshold` and every required key among them.
    pub met: bool,
    /// Required keys with no approval that counted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_required: Vec<String>,
    /// Key groups one of whose keys must be among the approvals that counted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required_groups: Vec<String>,
    /// Required groups with no approval that counted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_groups: Vec<String>,
    pub judged_at: String,
    pub approvals: Vec<ApprovalCheck>,
    /// Where approvals were to be read from and could not be (the bundle's table,
    /// with the server's reason): its rows were not judged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unread: Vec<String>,
}

impl QuorumReport {
    /// `2 of 2 approvals (…)`, or what is missing and what was refused.
    pub fn summary(&self) -> String {
        let counted: Vec<String> = self
            .approvals
            .iter()
            .filter(|a| a.counted)
            .map(|a| match &a.key_name {
                Some(n) => format!("{n}, key {}", a.key_id),
                None => a.key_id.clone(),
            })
            .collect();
        let mut s = format!(
            "ratification: {} of {} approval(s)",
            self.counted, self.threshold
        );
        if !counted.is_empty() {
            s.push_str(&format!(" (by {})", counted.join(", ")));
        }
        if !self.met {
            let mut missing = vec![];
            let short = self.threshold.saturating_sub(self.counted);
            if short > 0 {
                missing.push(format!("{short} more approver(s)"));
            }
            for k in &self.missing_required {
                missing.push(format!("required key {k}"));
            }
            for g in &self.missing_groups {
                missing.push(format!("an approver of group {g}"));
            }
            s.push_str(&format!("; missing: {}", missing.join(", ")));
        }
        let refused: Vec<String> = self
            .approvals
            .iter()
            .filter(|a| !a.counted)
            .map(ApprovalCheck::describe)
            .collect();
        if !refused.is_empty() {
            s.push_str(&format!("; not counted: {}", refused.join("; ")));
        }
        if !self.unread.is_empty() {
            s.push_str(&format!("; not read: {}", self.unread.join("; ")));
        }
        s
    }
}

/// What a run is: the approvals must name exactly this.
pub struct RunClaim<'a> {
    pub bundle_id: &'a str,
    pub manifest: &'a Manifest,
    pub params: &'a BTreeMap<String, String>,
}

/// Judge `approvals` for the run `claim` against `ratification`, with the keys of
/// `store`, at `at` (now; an auditor: when the run happened).
pub fn judge_quorum(
    store: &TrustStore,
    ratification: &Ratification,
    claim: &RunClaim<'_>,
    approvals: &[SignedApproval],
    at: DateTime<Utc>,
) -> QuorumReport {
    let mut counted_keys = BTreeSet::new();
    let mut counted_ids = BTreeSet::new();
    let mut checks = vec![];
    for approval in approvals {
        let mut check = judge_one(store, claim, approval, at);
        if check.refused.is_none() {
            let key = store
                .find_id(&check.key_id)
                .map(|k| *k.key.key.as_bytes())
                .unwrap_or_default();
            if counted_keys.insert(key) {
                check.counted = true;
                counted_ids.insert(check.key_id.clone());
            } else {
                check.refused = Some(Refusal::SameKey);
                check.note = Some("another approval by the same key already counted".into());
            }
        }
        checks.push(check);
    }
    let counted = counted_keys.len() as u32;
    let missing_required: Vec<String> = ratification
        .required
        .iter()
        .filter(|k| !counted_ids.contains(*k))
        .cloned()
        .collect();
    let in_group = |g: &String| {
        counted_ids.iter().any(|id| {
            store
                .find_id(id)
                .is_some_and(|k| k.policy.groups.contains(g))
        })
    };
    let missing_groups: Vec<String> = ratification
        .required_groups
        .iter()
        .filter(|g| !in_group(g))
        .cloned()
        .collect();
    QuorumReport {
        threshold: ratification.threshold,
        required: ratification.required.clone(),
        counted,
        met: counted >= ratification.threshold
            && missing_required.is_empty()
            && missing_groups.is_empty(),
        missing_required,
        required_groups: ratification.required_groups.clone(),
        missing_groups,
        judged_at: rfc3339(at),
        approvals: checks,
        unread: vec![],
    }
}

/// One approval: signature, document, key policy, binding to the run, expiry.
fn judge_one(
    store: &TrustStore,
    claim: &RunClaim<'_>,
    approval: &SignedApproval,
    at: DateTime<Utc>,
) -> ApprovalCheck {
    let mut check = ApprovalCheck {
        file: approval.file.clone(),
        key_id: String::new(),
        key_name: None,
        approved_at: None,
        expires: None,
        comment: String::new(),
        counted: false,
        refused: None,
        note: None,
        document: approval.document.clone(),
        signature: approval.signature.clone(),
    };
    let refusal = judge_refusal(store, claim, approval, at, &mut check);
    if let Some((why, note)) = refusal {
        check.refused = Some(why);
        check.note = Some(note);
    }
    check
}

fn judge_refusal(
    store: &TrustStore,
    claim: &RunClaim<'_>,
    approval: &SignedApproval,
    at: DateTime<Utc>,
    check: &mut ApprovalCheck,
) -> Option<(Refusal, String)> {
    let malformed = |why: String| Some((Refusal::Malformed, why));
    if approval.signature.is_empty() {
        let beside = if approval.file.ends_with(&format!(".{EXTENSION}")) {
            format!(" {}", signature_path(Path::new(&approval.file)).display())
        } else {
            String::new()
        };
        return malformed(format!("no readable signature{beside}"));
    }
    let sig = match SignatureBox::parse(&approval.signature) {
        Ok(sig) => sig,
        Err(e) => return malformed(format!("signature: {e}")),
    };
    check.key_id = sig.key_id.to_string();
    check.key_name = store.find(sig.key_id).and_then(|k| k.policy.name.clone());
    let Some(key) = store.find(sig.key_id) else {
        return Some((
            Refusal::UnknownKey,
            format!(
                "key {} is not in the trust store {}",
                sig.key_id,
                store.path.display()
            ),
        ));
    };
    if key.key.verify(approval.document.as_bytes(), &sig).is_err() {
        return Some((
            Refusal::BadSignature,
            format!(
                "the signature by key {} does not verify over this document (edited after signing?)",
                sig.key_id
            ),
        ));
    }
    let doc = match ApprovalDoc::parse(approval.document.as_bytes()) {
        Ok(doc) => doc,
        Err(e) => return malformed(format!("document: {e}")),
    };
    check.approved_at = Some(doc.approved_at.clone());
    check.expires = doc.expires.clone();
    check.comment = doc.comment.clone();
    if doc.approver != check.key_id
        || !sig.trusted_comment.split('\t').any(|p| p == TAG)
        || !sig
            .trusted_comment
            .contains(&format!("bundle_id:{}", doc.bundle_id))
    {
        return Some((
            Refusal::BadSignature,
            format!(
                "the document names approver {} and its signature's trusted comment does not match it (key {})",
                doc.approver, check.key_id
            ),
        ));
    }
    key_refusal(&check.key_id, &key.policy, at)
        .or_else(|| binding_refusal(&doc, claim))
        .or_else(|| time_refusal(&doc, at))
}

/// The key's role and policy at `at`: an approver key, not revoked, in its window.
fn key_refusal(
    id: &str,
    policy: &crate::trust::KeyPolicy,
    at: DateTime<Utc>,
) -> Option<(Refusal, String)> {
    if policy.role != Role::Approver {
        return Some((
            Refusal::NotApprover,
            format!(
                "key {id} has role {}; approvals count only from keys with role approver (trust.toml)",
                policy.role.as_str()
            ),
        ));
    }
    let reason = policy
        .revoked_reason
        .as_ref()
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    match policy.revoked {
        Some(None) => return Some((Refusal::Revoked, format!("key {id} is revoked{reason}"))),
        Some(Some(t)) if t <= at => {
            return Some((
                Refusal::Revoked,
                format!("key {id} is revoked since {}{reason}", rfc3339(t)),
            ))
        }
        _ => {}
    }
    if let Some(nb) = policy.not_before.filter(|nb| at < *nb) {
        return Some((
            Refusal::KeyNotYetValid,
            format!("key {id} is not valid before {}", rfc3339(nb)),
        ));
    }
    policy.not_after.filter(|na| *na < at).map(|na| {
        (
            Refusal::KeyExpired,
            format!("key {id} expired at {}", rfc3339(na)),
        )
    })
}

/// The document names this bundle, sequence and exactly the run's params.
fn binding_refusal(doc: &ApprovalDoc, claim: &RunClaim<'_>) -> Option<(Refusal, String)> {
    let b = &claim.manifest.bundle;
    if doc.bundle_name != b.name {
        return Some((
            Refusal::OtherBundle,
            format!("it approves release {}, not {}", doc.bundle_name, b.name),
        ));
    }
    if doc.sequence != b.sequence {
        return Some((
            Refusal::OtherSequence,
            format!(
                "it approves sequence {} of {}, not sequence {}",
                doc.sequence, b.name, b.sequence
            ),
        ));
    }
    if doc.bundle_id != claim.bundle_id {
        return Some((
            Refusal::OtherBundle,
            format!(
                "it approves bundle {}, not this bundle {}",
                airlock_base::text::short(&doc.bundle_id),
                airlock_base::text::short(claim.bundle_id)
            ),
        ));
    }
    if &doc.params != claim.params {
        return Some((
            Refusal::OtherParams,
            format!(
                "it consents to params {}, the run gives {}",
                show_params(&doc.params),
                show_params(claim.params)
            ),
        ));
    }
    None
}

/// `{a=1, b=2}`, or `{}`.
pub fn show_params(params: &BTreeMap<String, String>) -> String {
    let parts: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{{{}}}", parts.join(", "))
}

/// The approval's own times: not expired at `at`, not signed after it.
fn time_refusal(doc: &ApprovalDoc, at: DateTime<Utc>) -> Option<(Refusal, String)> {
    let Some(signed) = parse_rfc3339(&doc.approved_at) else {
        return Some((
            Refusal::Malformed,
            format!("approved_at {:?} is not a time", doc.approved_at),
        ));
    };
    if signed > at + chrono::Duration::minutes(SKEW_MINUTES) {
        return Some((
            Refusal::NotYetSigned,
            format!(
                "it claims to be approved at {}, after {}",
                doc.approved_at,
                rfc3339(at)
            ),
        ));
    }
    let expires = doc.expires.as_deref()?;
    match parse_rfc3339(expires) {
        None => Some((
            Refusal::Malformed,
            format!("expires {expires:?} is not a time"),
        )),
        Some(e) if e <= at => Some((Refusal::Expired, format!("it expired at {}", rfc3339(e)))),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::minisign::SecretKey;

    fn doc() -> ApprovalDoc {
        ApprovalDoc {
            format: FORMAT.into(),
            approver: "62340C72430C8DD3".into(),
            bundle_id: "ab".repeat(32),
            bundle_name: "one-roof".into(),
            bundle_version: "1".into(),
            sequence: 3,
            params: [("ratified_apr".to_string(), "APR-1".to_string())].into(),
            approved_at: "2026-06-03T09:00:00Z".into(),
            expires: None,
            comment: String::new(),
        }
    }

    #[test]
    fn an_approval_document_is_canonical_and_signs_the_same_twice() {
        let d = doc();
        let bytes = d.to_canonical_bytes();
        assert_eq!(bytes, d.clone().to_canonical_bytes());
        assert_eq!(ApprovalDoc::parse(&bytes).unwrap(), d);
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with("{\"approved_at\":") && text.ends_with("}\n"));
        let key = SecretKey::generate().unwrap();
        assert_eq!(
            d.sign(&key, 7).unwrap(),
            d.sign(&key, 7).unwrap(),
            "Ed25519 is deterministic"
        );
    }

    #[test]
    fn a_document_with_a_duplicate_or_unknown_field_or_another_format_is_refused() {
        let text = String::from_utf8(doc().to_canonical_bytes()).unwrap();
        let dup = text.replacen("{", "{\"sequence\":4,", 1);
        assert!(ApprovalDoc::parse(dup.as_bytes()).is_err());
        let unknown = text.replacen("{", "{\"threshold\":1,", 1);
        assert!(ApprovalDoc::parse(unknown.as_bytes()).is_err());
        let other = text.replace(FORMAT, "airlock-approval/9");
        assert!(ApprovalDoc::parse(other.as_bytes())
            .unwrap_err()
            .contains("format"));
    }
}
