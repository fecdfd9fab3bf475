//! The receipt of a deploy (what happened, tied to the bundle id: also the `--json`
//! of apply and rollback), and the planned tiers a plan and a preview show.
//!
//! Invariant: a receipt is only handed out for a committed change (or a rollback that
//! found nothing to do); one is built with `Receipt::new` and nothing else.

use crate::catalog::described::DescriptionStep;
use crate::gates::gate::{GateReport, ProbeReport};
use crate::ledger::chain::LedgerRow;
use crate::session::conn::{self, ServerInfo};
use airlock_bundle::verified::VerifiedBundle;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct PlannedFile {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct PlannedTier {
    pub index: usize,
    pub name: String,
    pub gates: Vec<String>,
    pub files: Vec<PlannedFile>,
}

/// The receipt: what happened, tied to the bundle id. Also the `--json` of apply/rollback.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct Receipt {
    pub format: String,
    /// apply | rollback
    pub event: String,
    /// applied | rolled-back | nothing-to-roll-back
    pub outcome: String,
    pub bundle_id: String,
    pub bundle_name: String,
    pub bundle_version: String,
    pub sequence: u64,
    pub database: String,
    /// A bundle for a fleet: its `[target] database` (names and patterns), which
    /// `database` matched; absent for a bundle for one database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_database: Option<airlock_bundle::target_db::TargetDatabase>,
    /// The server's system identifier (pg_control_system()): with `database`, which
    /// target this is, also when two clusters have a database of the same name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub system_identifier: String,
    pub server_version_num: i64,
    pub session_user: String,
    pub operator: String,
    pub tiers: Vec<String>,
    pub remaining_tiers: Vec<String>,
    pub params: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gates: Option<GateReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preflight: Option<ProbeReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify: Option<ProbeReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback_probe: Option<ProbeReport>,
    pub fingerprint_before: String,
    pub fingerprint_after: String,
    pub ledger: Vec<LedgerRow>,
    /// The online steps this run ran (tiers with `online = true`), each recorded in
    /// the ledger as it completed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub online_steps: Vec<StepDone>,
    pub started_at: String,
    pub finished_at: String,
    pub duration_ms: u64,
    /// Set on a receipt written after its run was interrupted (`airlock reissue`),
    /// from the ledger alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reissued: Option<Reissued>,
    /// How the run's schema fingerprints were taken (not part of the receipt file;
    /// `--json` shows them).
    #[serde(skip)]
    pub descriptions: Vec<DescriptionStep>,
    /// Whether the ledger records this receipt's delivery (not part of the receipt
    /// file, which is written before; `--json` shows it).
    #[serde(skip)]
    pub delivery: Option<DeliveryRecord>,
}

/// Saves a receipt where it goes, after its run committed.
pub trait Deliver {
    /// Write `receipt`; what was written, or `None` when it could not be written
    /// anywhere (then no delivery is recorded, and the rows can be reissued).
    fn deliver(&self, receipt: &Receipt) -> Option<Delivered>;
}

/// A receipt written ([`Deliver::deliver`]).
pub struct Delivered {
    /// SHA-256 (lowercase hex) of the exact bytes written.
    pub sha256: String,
    /// The operator key's signature (`.minisig` text) over the receipt's ledger rows
    /// ([`crate::ledger::signed_rows`]), when the run signs.
    pub rows_signature: Option<String>,
}

/// What became of recording a receipt's delivery in the ledger.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct DeliveryRecord {
    /// The `receipt` row that records it, when it was recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ledger_seq: Option<i64>,
    /// Why it was not recorded (the change is committed all the same).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// How a receipt came to be written after its run: reissued from the ledger.
#[derive(Clone, Debug, Serialize, serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Reissued {
    /// When it was written.
    pub at: String,
    /// Who wrote it (`user@host`); the run's own operator stays in `operator`.
    pub by: String,
    /// Why there was no receipt.
    pub reason: String,
    /// What it carries from the ledger rows (which the database's hash chain vouches
    /// for), beyond tiers, params and fingerprints: e.g. the approvals an apply row
    /// records, verified again when it was written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from_ledger: Vec<String>,
    /// What only the interrupted run knew and no ledger row records (absent here).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_recorded: Vec<String>,
}

impl Receipt {
    /// A receipt for `event` on this bundle and server, before anything ran.
    pub(crate) fn new(
        event: &str,
        outcome: &str,
        vb: &VerifiedBundle,
        info: &ServerInfo,
        params: &BTreeMap<String, String>,
        started_at: String,
    ) -> Receipt {
        let m = vb.manifest();
        Receipt {
            format: "airlock-receipt/1".into(),
            event: event.into(),
            outcome: outcome.into(),
            bundle_id: vb.id().into(),
            bundle_name: m.bundle.name.clone(),
            bundle_version: m.bundle.version.clone(),
            sequence: m.bundle.sequence,
            database: info.database.clone(),
            target_database: m.target.database.fleet(),
            system_identifier: String::new(),
            server_version_num: info.server_version_num,
            session_user: info.session_user.clone(),
            operator: operator_name(),
            tiers: vec![],
            remaining_tiers: vec![],
            params: params.clone(),
            gates: None,
            preflight: None,
            verify: None,
            rollback_probe: None,
            fingerprint_before: String::new(),
            fingerprint_after: String::new(),
            ledger: vec![],
            online_steps: vec![],
            started_at,
            finished_at: String::new(),
            duration_ms: 0,
            reissued: None,
            descriptions: vec![],
            delivery: None,
        }
    }

    pub(crate) fn finish(mut self, started: std::time::Instant) -> Receipt {
        self.finished_at = now();
        self.duration_ms = started.elapsed().as_millis() as u64;
        self
    }
}

pub fn operator_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into our buffer.
    let host = unsafe {
        if libc::gethostname(buf.as_mut_ptr() as *mut libc::c_char, buf.len()) == 0 {
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            String::from_utf8_lossy(&buf[..end]).into_owned()
        } else {
            "unknown-host".into()
        }
    };
    format!("{}@{}", conn::os_user(), host)
}

pub(crate) fn now() -> String {
    airlock_bundle::trust::rfc3339(chrono::Utc::now())
}

pub(crate) fn planned(vb: &VerifiedBundle, idx: &[usize]) -> Vec<PlannedTier> {
    let m = vb.manifest();
    idx.iter()
        .map(|&i| PlannedTier {
            index: i + 1,
            name: m.tier[i].name.clone(),
            gates: m.tier[i].gates.clone(),
            files: m.tier[i]
                .files
                .iter()
                .map(|f| {
                    let e = m.file(f);
                    PlannedFile {
                        path: f.clone(),
                        size: e.map(|e| e.size).unwrap_or(0),
                        sha256: e.map(|e| e.sha256.clone()).unwrap_or_default(),
                    }
                })
                .collect(),
        })
        .collect()
}

/// What one online step did, for the receipt and the operator.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct StepDone {
    /// The tier (or `rollback`).
    pub tier: String,
    /// 1-based, of `of`.
    pub step: usize,
    pub of: usize,
    pub file: String,
    pub line: usize,
    pub duration_ms: u64,
    /// What airlock did before it (an INVALID index left by an interrupted build,
    /// dropped), if anything.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}
