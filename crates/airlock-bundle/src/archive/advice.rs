//! What a failed verification means for the person holding the bundle: its exit code
//! (DESIGN.md §6) and one hint per class of failure (unreadable, expired, not trusted
//! enough, not what was signed).
//!
//! Invariant: the hint never tells anyone to use a bundle that did not verify.

use super::VerifyError;
use crate::trust::{NotCounted, TrustVerdict};
use airlock_base::Exit;

/// The advice for a bundle whose bytes are not what its signers signed.
const TAMPERED_HINT: &str = "do not use this bundle: it is not what the release manager signed. Ask for a fresh copy and verify again";

/// The advice for a bundle a SQL rule refuses: nothing says it was tampered with.
const SQL_RULE_HINT: &str = "a SQL rule of this airlock refused a file of the bundle: a verdict about its SQL, not a finding that the bundle was tampered with. Ask the release manager to fix the file named and re-pack; `airlock lint SOURCE` with this airlock shows the same finding, and `airlock verify BUNDLE --trust PATH` checks its signatures and hashes";

/// The advice for an authentic bundle past its `expires`.
const EXPIRED_HINT: &str = "the bundle is authentic but expired: ask the release manager for a new bundle with a later `expires` (re-packed and signed). Auditors can judge it as of an earlier time with `airlock verify BUNDLE --trust PATH --at TIME`";

/// What to do about a threshold that is not met. Signatures that are wrong (bad
/// bytes, another bundle's comment) or absent mean the bundle is not what was
/// signed; otherwise the signatures are sound and the trust store does not accept
/// enough of them, so the advice is about the store or about co-signing.
fn untrusted_hint(v: &TrustVerdict) -> String {
    let reasons: Vec<NotCounted> = v.signatures.iter().filter_map(|c| c.not_counted).collect();
    if v.signatures.is_empty() || reasons.iter().any(|r| r.is_bad_signature()) {
        return TAMPERED_HINT.into();
    }
    let ids = |want: NotCounted| -> Option<String> {
        let ids: Vec<&str> = v
            .signatures
            .iter()
            .filter(|c| c.not_counted == Some(want))
            .map(|c| c.key_id.as_str())
            .collect();
        (!ids.is_empty()).then(|| ids.join(", "))
    };
    let mut causes = vec![];
    if let Some(ids) = ids(NotCounted::UnknownKey) {
        causes.push(format!(
            "check that --trust (or AIRLOCK_TRUST) names the store with the release keys: it holds no key {ids} (add a .pub only after confirming it with its owner)"
        ));
    }
    if let Some(ids) = ids(NotCounted::Revoked) {
        causes.push(format!(
            "key {ids} is revoked in trust.toml: ask for the bundle signed by a current release key. A signer's claimed time is no evidence; auditors can show the bundle existed before the revocation with `airlock audit BUNDLE --db CONN` (its ledger row) or `--receipt FILE` (signed by an operator key)"
        ));
    }
    if let Some(ids) = ids(NotCounted::NotYetValid) {
        causes.push(format!(
            "key {ids} is not valid yet (not_before in trust.toml): correct the date if it is wrong, or ask for a signature by a key valid now"
        ));
    }
    if let Some(ids) = ids(NotCounted::KeyExpired) {
        causes.push(format!(
            "key {ids} is past its not_after in trust.toml: ask for a signature by a current key. A signer's claimed time is no evidence; auditors can show the bundle existed by then with `airlock audit BUNDLE --db CONN` (its ledger row) or `--receipt FILE` (signed by an operator key)"
        ));
    }
    if let Some(ids) = ids(NotCounted::OperatorRole) {
        causes.push(format!(
            "key {ids} has role operator in trust.toml, which never counts for bundles"
        ));
    }
    let need = v.threshold.saturating_sub(v.distinct_keys);
    let co_sign = format!(
        "get it co-signed by {need} more trusted release key(s) with `airlock sign BUNDLE --key KEY`"
    );
    if causes.is_empty() {
        co_sign
    } else {
        format!("{}; or {co_sign}", causes.join("; "))
    }
}

impl VerifyError {
    /// Runtime (1) when the file cannot be read or written, else verification (4).
    pub fn exit_code(&self) -> Exit {
        match self {
            VerifyError::Open { .. } | VerifyError::Write(_) => Exit::Runtime,
            _ => Exit::Verification,
        }
    }

    /// One hint per class of verification failure: unreadable or unwritable (none: the
    /// message says it), expired, not trusted enough, or not what was signed.
    pub fn hint(&self) -> Option<String> {
        match self {
            VerifyError::Open { .. } => {
                Some("check the bundle's path (nothing was read, so nothing was judged)".into())
            }
            VerifyError::Write(_) => None,
            VerifyError::Expired { .. } => Some(EXPIRED_HINT.into()),
            VerifyError::Untrusted(v) => Some(untrusted_hint(v)),
            VerifyError::SqlRule(_) => Some(SQL_RULE_HINT.into()),
            _ => Some(TAMPERED_HINT.into()),
        }
    }
}
