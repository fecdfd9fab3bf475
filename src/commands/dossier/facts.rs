//! The dossier's facts: the result structs the other commands already produce —
//! `inspect`'s report of the verified bundle, `trust list`'s keys, `plan`'s report
//! (with `--db`), a saved `rehearse --json`, the approvals' quorum, receipts — and the
//! statements of each SQL file as the SQL room names them. The page and `dossier
//! --json` are both rendered from this one struct.
//!
//! Invariant: nothing here is judged otherwise than the command that owns it judges
//! it: the matrix with a database is `plan`'s own check rows; without one, the rows
//! `plan` makes before it connects (signatures, params) and the quorum as `gate`
//! judges files, with every database row named as not asked. A saved report is used
//! only when it names this bundle's id.

use crate::commands::release::subject::Subject;
use crate::commands::release::trust::TrustListReport;
use crate::commands::release::verify::BundleReport;
use crate::db::apply::Receipt;
use crate::db::deploy::rollback_plan::RollbackPlan;
use crate::db::lock_plan::LockPlan;
use crate::db::plan::{Check, PlanReport};
use crate::db::rehearse::cycle::RehearseReport;
use crate::trust::SignatureCheck;
use crate::verified::VerifiedBundle;
use airlock_bundle::approval::QuorumReport;
use airlock_sql::StatementKind;
use schemars::JsonSchema;
use serde::Serialize;

/// The format of the dossier (the page's and `--json`'s).
pub const FORMAT: &str = "airlock-dossier/1";

/// Tier and rollback files up to this size have their statements named; a larger one
/// is shown by its size and hash (reading it whole would cost what applying does).
pub const SUMMARISED_BELOW: u64 = 8 << 20;

/// Where the GO/NO-GO matrix comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum MatrixFrom {
    /// `plan`'s check rows: the database was asked (`--db`).
    Database,
    /// The bundle's verification alone: the database was not asked.
    Verification,
}

/// The GO/NO-GO matrix: each check, its verdict and its evidence.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Matrix {
    pub from: MatrixFrom,
    pub checks: Vec<Check>,
}

/// One SQL file of the bundle and the statements in it.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct FileChanges {
    pub path: String,
    pub size: u64,
    pub sha256: String,
    /// Its statements, in order (absent: not read, see `not_read`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statements: Option<Vec<StatementKind>>,
    /// Why its statements are not named (too large to summarise, not readable).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_read: Option<String>,
}

/// One tier: what it runs, what it waits for.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct TierChanges {
    /// 1-based.
    pub index: usize,
    pub name: String,
    pub gates: Vec<String>,
    /// It runs one statement at a time, outside a transaction.
    pub online: bool,
    /// Its gates need the bundle's signed approvals (`[ratification]`).
    pub needs_approvals: bool,
    pub files: Vec<FileChanges>,
}

/// A saved `airlock rehearse --json` of this bundle.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct RehearsalEvidence {
    /// The file, as given.
    pub file: String,
    /// SHA-256 of the file's bytes.
    pub sha256: String,
    pub report: RehearseReport,
}

/// A receipt `apply` or `rollback` wrote for this bundle.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ReceiptEvidence {
    /// The file, as given.
    pub file: String,
    /// SHA-256 of the file's bytes.
    pub sha256: String,
    /// Its `RECEIPT.minisig`, judged as `audit` judges it (absent: unsigned).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<SignatureCheck>,
    pub receipt: Receipt,
}

/// What `plan --rollback` predicts on the database (`--db`): its own result, or why
/// it has none (nothing of the release is applied there, no rollback, an error).
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct RollbackPrediction {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<RollbackPlan>,
    /// Why there is no plan: `plan --rollback`'s own refusal or error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_asked: Option<String>,
}

impl RollbackPrediction {
    /// `plan --rollback` of a bundle with a rollback (`ask` asks it), or why not.
    pub fn of(
        vb: &VerifiedBundle,
        ask: impl FnOnce() -> crate::error::Result<RollbackPlan>,
    ) -> RollbackPrediction {
        if vb.manifest().rollback.is_none() {
            return RollbackPrediction {
                plan: None,
                not_asked: Some("the bundle has no rollback".into()),
            };
        }
        match ask() {
            Ok(plan) => RollbackPrediction {
                plan: Some(plan),
                not_asked: None,
            },
            Err(e) => RollbackPrediction {
                plan: None,
                not_asked: Some(e.to_string()),
            },
        }
    }

    /// A statement of the rollback the data would make fail.
    pub fn fails(&self) -> bool {
        self.plan.as_ref().is_some_and(RollbackPlan::fails)
    }
}

/// Everything the page says.
#[derive(Serialize, JsonSchema)]
pub struct Dossier {
    /// `airlock-dossier/1`.
    pub format: String,
    /// The airlock version that made it.
    pub airlock_version: String,
    /// The time it judges signatures, expiry and approvals at and states it was made
    /// (RFC 3339): `--at`, or this host's clock.
    pub generated_at: String,
    /// `--at` or `now`.
    pub generated_by: String,
    /// What the page is about, hashed: `airlock approve` prints the same digest.
    pub digest: String,
    pub subject: Subject,
    /// The bundle file as given.
    pub bundle_file: String,
    /// `inspect`'s report of the verified bundle (manifest, signatures, trust).
    pub verification: BundleReport,
    /// `trust list`'s report of the store the page was judged with.
    pub trust_store: TrustListReport,
    pub matrix: Matrix,
    /// `plan`'s report, with `--db`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<PlanReport>,
    /// When the database was asked (this host's clock), with `--db`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_at: Option<String>,
    pub tiers: Vec<TierChanges>,
    /// The gate and probe files.
    pub checks: Vec<FileChanges>,
    pub rollback: Vec<FileChanges>,
    /// With `--db`: what `airlock plan BUNDLE --rollback` predicts now (what the
    /// rollback destroys, which of its statements the data would make fail).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback_plan: Option<RollbackPrediction>,
    /// With `--db`: the release's ledger rows as of the page's time (applies,
    /// rollbacks, by whom, when).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<super::history::History>,
    /// Without `--db`: the locks read from the tiers' SQL (no sizes: those are the
    /// database's); with it, `plan.locks` has them with sizes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub static_locks: Option<LockPlan>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rehearsal: Option<RehearsalEvidence>,
    /// The signed approvals judged for this run (a bundle with `[ratification]`): from
    /// `plan` with `--db` (the bundle's approvals table too), else from the files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approvals: Option<QuorumReport>,
    pub receipts: Vec<ReceiptEvidence>,
    /// The receipts given of runs finished after the page's time (`--at`): named, not
    /// shown as what ran by then.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub receipts_later: Vec<String>,
}

/// Whether the ledger (`--db`) shows every tier of the release applied as of the
/// page's time: the page then records what happened, not a new apply's verdict.
pub(crate) fn archived(d: &Dossier) -> bool {
    let tiers: Vec<String> = d.tiers.iter().map(|t| t.name.clone()).collect();
    d.history.as_ref().is_some_and(|h| h.fully_applied(&tiers))
}

/// A check's name as `plan --json` spells it.
pub(crate) fn check_name(c: &Check) -> String {
    serde_json::to_value(c.check)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// The kinds of statement that take data away.
pub(crate) fn destroys_data(kind: &str) -> bool {
    kind.starts_with("DROP ")
        || matches!(
            kind,
            "TRUNCATE" | "DELETE" | "ALTER TABLE … DROP COLUMN" | "ALTER TABLE … ALTER COLUMN TYPE"
        )
}

/// A file of the bundle and its statements, read from the verified bytes.
pub fn file_changes(vb: &VerifiedBundle, path: &str, kinds: bool) -> FileChanges {
    let entry = vb.manifest().files.iter().find(|f| f.path == path);
    let (size, sha256) = entry.map_or((0, String::new()), |f| (f.size, f.sha256.clone()));
    let mut out = FileChanges {
        path: path.into(),
        size,
        sha256,
        statements: None,
        not_read: None,
    };
    if !kinds {
        return out;
    }
    if size >= SUMMARISED_BELOW {
        out.not_read = Some(format!(
            "{size} bytes: too large to name its statements here (`airlock sql` prints it)"
        ));
        return out;
    }
    let read = vb.payload(path).map_err(|e| e.to_string()).and_then(|p| {
        airlock_sql::kinds_in(&mut crate::verified::reader_of(p)).map_err(|e| e.to_string())
    });
    match read {
        Ok(k) => out.statements = Some(k),
        Err(e) => out.not_read = Some(format!("not read: {e}")),
    }
    out
}

/// The tiers, each with its files' statements.
pub fn tiers(vb: &VerifiedBundle) -> Vec<TierChanges> {
    let m = vb.manifest();
    m.tier
        .iter()
        .enumerate()
        .map(|(i, t)| TierChanges {
            index: i + 1,
            name: t.name.clone(),
            gates: t.gates.clone(),
            online: t.online,
            needs_approvals: m.ratification.as_ref().is_some_and(|r| r.guards(&t.gates)),
            files: t.files.iter().map(|f| file_changes(vb, f, true)).collect(),
        })
        .collect()
}

/// The gate and probe files (preflight, verify, rollback probe), each once.
pub fn check_files(vb: &VerifiedBundle) -> Vec<FileChanges> {
    let m = vb.manifest();
    let mut paths: Vec<String> = m.gate.iter().map(|g| g.file.clone()).collect();
    paths.extend(m.preflight.iter().map(|p| p.file.clone()));
    paths.extend(m.verify.iter().map(|p| p.file.clone()));
    paths.extend(m.rollback.iter().filter_map(|r| r.probe.clone()));
    let mut seen = std::collections::BTreeSet::new();
    paths.retain(|p| seen.insert(p.clone()));
    paths.iter().map(|p| file_changes(vb, p, false)).collect()
}

/// The rollback files, with their statements.
pub fn rollback_files(vb: &VerifiedBundle) -> Vec<FileChanges> {
    vb.manifest()
        .rollback
        .iter()
        .flat_map(|r| r.files.iter())
        .map(|f| file_changes(vb, f, true))
        .collect()
}

/// The locks of every tier, read from the SQL (no database: no sizes).
pub fn static_locks(vb: &VerifiedBundle) -> LockPlan {
    let tiers: Vec<String> = vb.manifest().tier.iter().map(|t| t.name.clone()).collect();
    match crate::db::lock_plan::of_tiers(vb, &tiers) {
        Ok(locks) => LockPlan {
            locks,
            error: None,
            warning: None,
        },
        Err(e) => LockPlan {
            locks: vec![],
            error: Some(e.to_string()),
            warning: None,
        },
    }
}
