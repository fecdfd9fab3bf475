//! The quorum of signed approvals a gated tier needs (`[ratification]`): judged by
//! one function for `gate`, `plan`, `apply` (under the lock) and `--wait`'s polls.
//!
//! Invariant: a run of a bundle that declares `[ratification]` is READY only with a
//! quorum judged here, from the approval files the operator named, read again at each
//! judgement (an approval dropped into a directory counts at the next poll) and
//! verified with the trust store's approver keys: never from anything the database
//! says.

pub use super::options::Approvals;
use super::options::Options;
use airlock_bundle::approval::{self, QuorumReport, RunClaim};
use airlock_bundle::trust::TrustStore;
use airlock_bundle::verified::VerifiedBundle;
use std::path::PathBuf;

/// The bundle's quorum judged for this run, now; `None` when it asks for none.
pub fn judge(vb: &VerifiedBundle, opts: &Options<'_>) -> Option<QuorumReport> {
    let m = vb.manifest();
    let ratification = m.ratification.as_ref()?;
    let claim = RunClaim {
        bundle_id: vb.id(),
        manifest: m,
        params: &opts.params,
    };
    let now = chrono::Utc::now();
    let Some(given) = opts.approvals else {
        let empty = TrustStore {
            path: PathBuf::new(),
            threshold: 1,
            keys: vec![],
            require_signed_receipts: false,
        };
        return Some(approval::judge_quorum(
            &empty,
            ratification,
            &claim,
            &[],
            now,
        ));
    };
    // A path that vanished since the command started reads as no approval: the
    // quorum says what is missing.
    let read: Vec<_> = given
        .paths
        .iter()
        .flat_map(|p| approval::read_approvals(std::slice::from_ref(p)).unwrap_or_default())
        .collect();
    Some(approval::judge_quorum(
        &given.store,
        ratification,
        &claim,
        &read,
        now,
    ))
}
