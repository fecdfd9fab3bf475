//! `airlock audit`: re-verify archived bundles, receipts and the ledger; one verdict.
//!
//! Invariant: audit only reads, and every verdict names its basis (which time, which
//! key, which evidence). Signatures are judged now (or at `--at`) with the trust store
//! as it is today; a signer's claimed signing time is shown, never relied on. A
//! revoked or retired key's signature counts only when evidence the signer cannot
//! make alone — a row of the target's ledger (`--db`), or a receipt signed by an
//! operator key that counts — shows the bundle existed before. A receipt is only as
//! good as what vouches for it: its operator's signature, and with `--db` the ledger
//! row for the fields the ledger records; anything else is UNVERIFIED, never PASS.
//! Every file given is accounted for: audited, or left out with the reason. Exit 0
//! only if every check passed, 4 when one failed, 7 when the audit is UNVERIFIED.

mod coverage;
mod deliveries;
mod human;
mod ledgers;
mod moved;
mod ran;
mod ratified;

use super::common::{judge_time, load_trust};
use crate::archive::{read_bundle, Discard, Judge, Limits, Opened};
use crate::cli::AuditArgs;
use crate::db::ledger::chain::LedgerRow;
use crate::error::{Error, Result};
use crate::minisign::SignatureBox;
use crate::report::{short, Outcome, Report};
use crate::trust::{self, Existence, Judging, SignatureCheck, TrustStore, TrustVerdict};
use crate::trust_history::History;
use chrono::{DateTime, Utc};
pub use ledgers::AuditedLedger;
use ledgers::Ledger;
pub use ran::Ran;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// What one check concluded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Finding {
    /// The check held.
    Pass,
    /// The check failed.
    Fail,
    /// Worth knowing, decides nothing (a signature that does not count: the
    /// threshold decides).
    Note,
    /// Nothing an auditor can rely on vouches for it (an unsigned receipt, receipt
    /// fields neither signed nor recorded in the ledger).
    Unverified,
}

impl Finding {
    pub fn as_str(self) -> &'static str {
        match self {
            Finding::Pass => "PASS",
            Finding::Fail => "FAIL",
            Finding::Note => "NOTE",
            Finding::Unverified => "UNVERIFIED",
        }
    }
}

/// The check a database of a `--fleet` fails when the audit could not read it.
const UNAUDITED: &str = "audited as a fleet member";

#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Verdict {
    /// The bundle file, receipt file or database the check is about.
    pub subject: String,
    pub check: String,
    pub verdict: Finding,
    pub detail: String,
    /// What the judgement rests on: which time, which key, which evidence.
    pub basis: String,
}

/// The audit as a whole: PASS only when every check passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum AuditResult {
    Pass,
    /// At least one check failed.
    Fail,
    /// Nothing failed, but something rests on nothing an auditor can rely on.
    Unverified,
}

#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct AuditedBundle {
    pub file: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bundle_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sequence: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trust: Option<TrustVerdict>,
    /// The trust store version its signatures were judged with: the one in force when
    /// it was signed (the time its evidence shows, else the judging time), with the
    /// revocations later versions made (absent: the store has no version).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trust_store_version: Option<u64>,
    pub files: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    pub runbooks: Vec<String>,
    /// A bundle for a fleet: its `[target] database` (names and patterns), which each
    /// of its receipts' database must match; absent for a bundle for one database.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_database: Option<crate::spec::TargetDatabase>,
    pub ok: bool,
}

#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct AuditedReceipt {
    pub file: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bundle_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bundle_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bundle_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// The database the receipt names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// The ledger its rows were checked against (`database D`, or `ledger export F
    /// (database D)`); absent when none of the ledgers given is its database's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checked_against: Option<String>,
    /// The operator key whose signature counts, when one does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_by: Option<String>,
    /// The judgement of `RECEIPT.minisig`, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<SignatureCheck>,
    /// Fields the database ledger (`--db`) vouches for.
    pub ledger_vouched: Vec<String>,
    /// Fields nothing vouches for (no signature that counts, not in the ledger).
    pub unverified_fields: Vec<String>,
    /// What the receipt says ran: tiers of how many, when, by whom (absent when it
    /// could not be read or names no bundle).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ran: Option<Ran>,
    /// No check about this receipt failed.
    pub ok: bool,
}

/// A receipt file found in a `--receipt` directory and not audited: it names a
/// bundle none of the audited bundles is, by id or by name and version (a receipt of
/// another release).
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct LeftOut {
    pub file: PathBuf,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bundle_id: Option<String>,
}

#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct AuditReport {
    /// Every check passed (`verdict` is PASS).
    pub ok: bool,
    /// PASS, FAIL or UNVERIFIED: the one verdict word, as `gate` and `plan` call theirs.
    pub verdict: AuditResult,
    /// The older name of `verdict` (kept for one release).
    pub result: AuditResult,
    /// The version of the trust store every signature was judged with (absent: the
    /// store has none). Judging each against the version in force when it was made
    /// (the store's history) is not done yet.
    pub trust_store_version: Option<u64>,
    /// `--at`, when given; otherwise signatures are judged now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    pub bundles: Vec<AuditedBundle>,
    /// The receipts audited.
    pub receipts: Vec<AuditedReceipt>,
    /// Receipt files of a `--receipt` directory not audited, each with why: with
    /// `receipts`, every receipt file given.
    pub left_out: Vec<LeftOut>,
    /// The first of `ledgers`' databases (kept for scripts that read it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// Every ledger checked: `--db` databases, then `--ledger` exports.
    pub ledgers: Vec<AuditedLedger>,
    /// What would make an UNVERIFIED audit VERIFIED, one step a line.
    pub to_verify: Vec<String>,
    pub verdicts: Vec<Verdict>,
}

impl Report for AuditReport {
    fn human(&self) -> String {
        human::render(self)
    }
    fn exit_code(&self) -> crate::exit::Exit {
        match self.result {
            AuditResult::Pass => crate::exit::Exit::Success,
            AuditResult::Fail => crate::exit::Exit::Verification,
            AuditResult::Unverified => crate::exit::Exit::Unverified,
        }
    }
    /// The verdict line when it is not PASS (a PASS prints nothing, like any success
    /// under `--quiet`); the exit code says which.
    fn quiet_line(&self) -> Option<String> {
        (self.result != AuditResult::Pass).then(|| human::verdict_line(self))
    }
}

struct Verdicts(Vec<Verdict>);

impl Verdicts {
    /// Record a finding; true when it lets the audit pass (PASS or NOTE).
    fn push(
        &mut self,
        subject: &str,
        check: &str,
        verdict: Finding,
        detail: impl Into<String>,
        basis: impl Into<String>,
    ) -> bool {
        self.0.push(Verdict {
            subject: subject.into(),
            check: check.into(),
            verdict,
            detail: detail.into(),
            basis: basis.into(),
        });
        matches!(verdict, Finding::Pass | Finding::Note)
    }

    fn check(
        &mut self,
        subject: &str,
        check: &str,
        ok: bool,
        detail: impl Into<String>,
        basis: impl Into<String>,
    ) -> bool {
        let f = if ok { Finding::Pass } else { Finding::Fail };
        self.push(subject, check, f, detail, basis)
    }
}

/// Expand directories into their `*.tar.gz` files (sorted).
fn bundle_files(args: &[PathBuf]) -> Result<Vec<PathBuf>> {
    Ok(files_in(args, ".tar.gz", "bundles")?
        .into_iter()
        .map(|(p, _)| p)
        .collect())
}

/// Expand directories (a receipts directory) into their `*.receipt.json` files
/// (sorted); their `.minisig` files are found beside them. Each with whether it came
/// from a directory; each file once.
fn receipt_files(args: &[PathBuf]) -> Result<Vec<(PathBuf, bool)>> {
    files_in(args, ".receipt.json", "receipts")
}

fn files_in(args: &[PathBuf], suffix: &str, what: &str) -> Result<Vec<(PathBuf, bool)>> {
    let mut out = vec![];
    for a in args {
        if a.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(a)
                .map_err(|e| Error::io(format!("cannot read {}", a.display()), e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && p.to_string_lossy().ends_with(suffix))
                .collect();
            found.sort();
            if found.is_empty() {
                return Err(Error::usage(
                    format!("{} holds no *{suffix} {what}", a.display()),
                    None,
                ));
            }
            out.extend(found.into_iter().map(|p| (p, true)));
        } else {
            out.push((a.clone(), false));
        }
    }
    // A file named twice (itself and in its directory, or by two spellings of its
    // path) is one file: audited once, where it was first named.
    let mut seen = std::collections::BTreeSet::new();
    out.retain(|(p, _)| seen.insert(std::fs::canonicalize(p).unwrap_or_else(|_| p.clone())));
    Ok(out)
}

/// The receipt fields airlock reads (the receipt is `db::apply::Receipt`'s JSON).
#[derive(Clone, Debug, Default, Deserialize)]
struct ReceiptDoc {
    event: Option<String>,
    outcome: Option<String>,
    bundle_id: Option<String>,
    bundle_name: Option<String>,
    bundle_version: Option<String>,
    sequence: Option<u64>,
    database: Option<String>,
    /// The server the run was on (`pg_control_system()`).
    system_identifier: Option<String>,
    operator: Option<String>,
    tiers: Option<Vec<String>>,
    params: Option<BTreeMap<String, String>>,
    fingerprint_before: Option<String>,
    fingerprint_after: Option<String>,
    #[serde(default)]
    ledger: Vec<LedgerRow>,
    started_at: Option<String>,
    finished_at: Option<String>,
    /// The gates it ran, with the approvals that opened them.
    #[serde(default)]
    gates: Option<ratified::ReceiptGates>,
    /// Written from the ledger after its run was interrupted (`airlock reissue`).
    #[serde(default)]
    reissued: Option<crate::db::receipt::Reissued>,
}

/// The receipt fields a ledger row records (and `database`, which `--db` names).
const LEDGER_FIELDS: [&str; 12] = [
    "event",
    "bundle_id",
    "bundle_name",
    "bundle_version",
    "sequence",
    "operator",
    "tiers",
    "params",
    "fingerprint_before",
    "fingerprint_after",
    "ledger",
    "database",
];

enum ReceiptSig {
    Missing,
    Unreadable(String),
    Judged(Box<SignatureCheck>),
}

/// A receipt that could not be read or parsed: the check it fails, and why.
struct Broken {
    check: &'static str,
    why: String,
}

/// One receipt, read and judged before any bundle (its signature may be evidence).
struct ReadReceipt {
    path: PathBuf,
    subject: String,
    /// Why it could not be read or parsed.
    broken: Option<Broken>,
    doc: ReceiptDoc,
    /// Its top-level field names.
    fields: Vec<String>,
    sig_file: PathBuf,
    sig: ReceiptSig,
    /// Where the receipt contradicts itself.
    problems: Vec<String>,
    /// SHA-256 of its bytes (what the ledger's receipt rows record).
    sha256: String,
}

impl ReadReceipt {
    fn read(path: &Path, history: &History, now: DateTime<Utc>) -> ReadReceipt {
        let mut sig_file = path.as_os_str().to_owned();
        sig_file.push(".minisig");
        let mut receipt = ReadReceipt {
            path: path.to_path_buf(),
            subject: path.display().to_string(),
            broken: None,
            doc: ReceiptDoc::default(),
            fields: vec![],
            sig_file: PathBuf::from(sig_file),
            sig: ReceiptSig::Missing,
            problems: vec![],
            sha256: String::new(),
        };
        let bytes = match airlock_base::bounded::read_capped(path, airlock_base::bounded::RECEIPT) {
            Ok(bytes) => bytes,
            Err(e) => {
                receipt.broken = Some(Broken {
                    check: "readable",
                    why: e.to_string(),
                });
                return receipt;
            }
        };
        receipt.sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
        let parsed = serde_json::from_slice::<serde_json::Value>(&bytes)
            .map_err(|e| e.to_string())
            .and_then(|value| {
                let fields = value
                    .as_object()
                    .map(|o| o.keys().cloned().collect())
                    .ok_or_else(|| "not a JSON object".to_string())?;
                let doc = serde_json::from_value::<ReceiptDoc>(value).map_err(|e| e.to_string())?;
                Ok((fields, doc))
            });
        match parsed {
            Ok((fields, doc)) => {
                receipt.fields = fields;
                receipt.doc = doc;
            }
            Err(why) => {
                receipt.broken = Some(Broken {
                    check: "receipt JSON",
                    why,
                });
                return receipt;
            }
        }
        receipt.problems = consistency(&receipt.doc);
        if receipt.sig_file.exists() {
            // With the store version in force when its last row was written.
            let when = receipt
                .doc
                .ledger
                .last()
                .and_then(|r| trust::parse_rfc3339(&r.at))
                .unwrap_or(now);
            let in_force = history.in_force(when.min(now));
            receipt.sig = receipt.judge_signature(&bytes, &in_force.store, now);
        }
        receipt
    }

    /// `RECEIPT.minisig` read and judged against the receipt's own claim.
    fn judge_signature(&self, bytes: &[u8], store: &TrustStore, now: DateTime<Utc>) -> ReceiptSig {
        let doc = &self.doc;
        let claim = trust::ReceiptClaim {
            tag: trust::RECEIPT_TAG,
            bundle_id: doc.bundle_id.as_deref().unwrap_or(""),
            event: doc.event.as_deref().unwrap_or(""),
            ledger_seq: doc.ledger.last().map(|l| l.seq).unwrap_or(0),
        };
        let name = self
            .sig_file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match airlock_base::bounded::read_capped_string(
            &self.sig_file,
            airlock_base::bounded::SIGNATURE,
        )
        .map_err(|e| e.to_string())
        .and_then(|t| SignatureBox::parse(&t).map_err(|e| e.to_string()))
        {
            Ok(sig) => ReceiptSig::Judged(Box::new(trust::judge_receipt_signature(
                store, bytes, &name, &sig, &claim, now,
            ))),
            Err(e) => ReceiptSig::Unreadable(e),
        }
    }

    fn counted_signature(&self) -> Option<&SignatureCheck> {
        match &self.sig {
            ReceiptSig::Judged(c) if c.counted => Some(c),
            _ => None,
        }
    }

    /// Evidence the receipt's bundle existed: its operator's signature counts and the
    /// receipt is consistent. By the later of the signing time the operator claims
    /// and its last ledger row's time.
    fn evidence(&self) -> Option<(String, Existence)> {
        let c = self.counted_signature()?;
        if self.broken.is_some() || !self.problems.is_empty() {
            return None;
        }
        let signed = c.signed_at.as_deref().and_then(trust::parse_rfc3339)?;
        let row_at = trust::parse_rfc3339(&self.doc.ledger.last()?.at)?;
        Some((
            self.doc.bundle_id.clone()?,
            Existence::new(
                signed.max(row_at),
                format!(
                    "receipt {} signed by operator key {}",
                    self.subject, c.key_id
                ),
            ),
        ))
    }
}

/// Where a receipt contradicts its own ledger rows (anyone can recompute a row
/// hash, so this shows consistency, not authenticity).
fn consistency(doc: &ReceiptDoc) -> Vec<String> {
    let rows = &doc.ledger;
    if rows.is_empty() {
        return vec!["holds no ledger row".to_string()];
    }
    let mut problems = row_problems(doc);
    problems.extend(summary_problems(doc));
    problems.extend(time_problems(doc));
    problems
}

/// Each of the receipt's ledger rows: its hash, its link to the row before, and the
/// receipt fields it repeats.
fn row_problems(doc: &ReceiptDoc) -> Vec<String> {
    let mut problems = vec![];
    let rows = &doc.ledger;
    for (i, row) in rows.iter().enumerate() {
        if row.compute_hash() != row.row_hash {
            problems.push(format!(
                "ledger row {} does not hash to its row_hash",
                row.seq
            ));
        }
        if i > 0 && row.seq == rows[i - 1].seq + 1 && row.prev_hash != rows[i - 1].row_hash {
            problems.push(format!(
                "ledger row {} does not chain to row {}",
                row.seq,
                rows[i - 1].seq
            ));
        }
        let same = |mine: &Option<String>, recorded: &str| mine.as_deref() == Some(recorded);
        for (field, ok) in [
            ("bundle_id", same(&doc.bundle_id, &row.bundle_id)),
            // An apply's online statements are its `step` rows.
            (
                "event",
                same(&doc.event, &row.event)
                    || (row.event == "step" && doc.event.as_deref() == Some("apply")),
            ),
            ("bundle_name", same(&doc.bundle_name, &row.bundle_name)),
            (
                "bundle_version",
                same(&doc.bundle_version, &row.bundle_version),
            ),
            (
                "sequence",
                doc.sequence.map(|s| s as i64) == Some(row.sequence),
            ),
            ("operator", same(&doc.operator, &row.operator)),
        ] {
            if !ok {
                problems.push(format!("{field} differs from ledger row {}", row.seq));
            }
        }
    }
    problems
}

/// The receipt's summary fields against its rows taken together: fingerprints,
/// tiers, params and outcome.
fn summary_problems(doc: &ReceiptDoc) -> Vec<String> {
    let mut problems = vec![];
    let rows = &doc.ledger;
    let first = &rows[0];
    let last = &rows[rows.len() - 1];
    if doc.fingerprint_before.as_deref() != Some(first.fingerprint_before.as_str()) {
        problems.push("fingerprint_before differs from its first ledger row".into());
    }
    if doc.fingerprint_after.as_deref() != Some(last.fingerprint_after.as_str()) {
        problems.push("fingerprint_after differs from its last ledger row".into());
    }
    // A `step` row records one online statement of a tier not yet done; the tier
    // counts once its `apply` row comes.
    let tiers: Vec<String> = rows
        .iter()
        .filter(|r| r.event != "step")
        .flat_map(|r| r.tier_names())
        .collect();
    if doc.tiers.as_ref() != Some(&tiers) {
        problems.push("tiers differ from its ledger rows".into());
    }
    let params = doc
        .params
        .as_ref()
        .and_then(|p| serde_json::to_string(p).ok());
    if params.as_deref() != Some(last.params.as_str()) {
        problems.push("params differ from its ledger row".into());
    }
    let outcome = match doc.event.as_deref() {
        // A run that stopped after part of it committed says so.
        Some("apply") if doc.outcome.as_deref() == Some("partial") => "partial",
        Some("apply") => "applied",
        Some("rollback") => "rolled-back",
        _ => "",
    };
    if doc.outcome.as_deref() != Some(outcome) {
        problems.push(format!(
            "outcome {:?} is not what a receipt with ledger rows of event {:?} says",
            doc.outcome.as_deref().unwrap_or(""),
            doc.event.as_deref().unwrap_or("")
        ));
    }
    problems
}

/// The rows were written between the receipt's start and finish.
fn time_problems(doc: &ReceiptDoc) -> Vec<String> {
    let mut problems = vec![];
    let rows = &doc.ledger;
    let time = |t: &Option<String>| t.as_deref().and_then(trust::parse_rfc3339);
    let (started, finished) = (time(&doc.started_at), time(&doc.finished_at));
    for row in [&rows[0], &rows[rows.len() - 1]] {
        let at = trust::parse_rfc3339(&row.at);
        if started.is_none() || finished.is_none() || at.is_none() {
            problems.push("started_at, finished_at or a row's at is not a time".into());
            break;
        }
        if at < started || at > finished {
            problems.push(format!(
                "ledger row {} was written at {}, outside started_at..finished_at",
                row.seq, row.at
            ));
        }
    }
    problems
}

impl AuditedBundle {
    /// A bundle file before anything in it is known.
    fn unread(path: &Path) -> AuditedBundle {
        AuditedBundle {
            file: path.to_path_buf(),
            bundle_id: None,
            name: None,
            version: None,
            sequence: None,
            format: None,
            trust: None,
            trust_store_version: None,
            files: 0,
            expires: None,
            runbooks: vec![],
            target_database: None,
            ok: false,
        }
    }

    /// What its manifest says about it.
    fn describe(&mut self, opened: &Opened) {
        let manifest = &opened.manifest;
        self.bundle_id = Some(opened.bundle_id.clone());
        self.name = Some(manifest.bundle.name.clone());
        self.version = Some(manifest.bundle.version.clone());
        self.sequence = Some(manifest.bundle.sequence);
        self.format = Some(manifest.format.clone());
        self.files = manifest.files.len();
        self.expires = manifest.bundle.expires.clone();
        self.target_database = manifest.target.database.fleet();
        self.runbooks = manifest
            .runbook
            .iter()
            .map(|r| format!("{} ({})", r.file, r.title))
            .collect();
    }
}

fn audit_bundle(
    path: &Path,
    read: std::result::Result<Opened, crate::archive::VerifyError>,
    history: &History,
    at: Option<DateTime<Utc>>,
    evidence: &BTreeMap<String, Existence>,
    verdicts: &mut Verdicts,
) -> (AuditedBundle, Option<Opened>) {
    let subject = path.display().to_string();
    let mut audited = AuditedBundle::unread(path);
    let structure_basis = format!(
        "one read of {subject}: every tar header, size and SHA-256 against manifest.json, whose SHA-256 is the bundle id"
    );
    let opened = match read {
        Ok(opened) => opened,
        Err(e) => {
            verdicts.check(
                &subject,
                "structure and hashes",
                false,
                e.to_string(),
                structure_basis,
            );
            return (audited, None);
        }
    };
    audited.describe(&opened);
    let manifest = &opened.manifest;
    let mut ok = verdicts.check(
        &subject,
        "structure and hashes",
        true,
        format!(
            "{} {} seq {} id {}: {} files, every SHA-256 matches",
            manifest.bundle.name,
            manifest.bundle.version,
            manifest.bundle.sequence,
            short(&opened.bundle_id),
            manifest.files.len()
        ),
        structure_basis,
    );
    let mut judging = Judging::at(at);
    judging.existed = evidence.get(&opened.bundle_id).cloned();
    // The store version in force when it was signed: as far as evidence shows it,
    // else at the judging time.
    let when = judging
        .existed
        .as_ref()
        .map(|e| e.time)
        .unwrap_or(judging.at);
    let in_force = history.in_force(when);
    let store = &in_force.store;
    audited.trust_store_version = in_force.version;
    let verdict = trust::evaluate(
        store,
        &opened.manifest_bytes,
        &opened.manifest,
        &opened.bundle_id,
        &opened.signatures,
        &judging,
    );
    signature_notes(&subject, &verdict, verdicts);
    ok &= verdicts.check(
        &subject,
        "threshold",
        verdict.met,
        format!(
            "{} distinct trusted key(s), {} required",
            verdict.distinct_keys, verdict.threshold,
        ),
        format!(
            "{}{}",
            threshold_basis(store, &verdict),
            in_force
                .version
                .map(|v| format!("; trust store version {v}, {}", in_force.why))
                .unwrap_or_default()
        ),
    );
    ok &= expiry(&subject, manifest, at, verdicts);
    audited.trust = Some(verdict);
    audited.ok = ok;
    (audited, Some(opened))
}

/// With `--at`, the "expiry" verdict of a manifest that sets one; true when it
/// lets the audit pass (or there is nothing to judge).
fn expiry(
    subject: &str,
    manifest: &crate::manifest::Manifest,
    at: Option<DateTime<Utc>>,
    verdicts: &mut Verdicts,
) -> bool {
    let (Some(expires), Some(at)) = (&manifest.bundle.expires, at) else {
        return true;
    };
    let Some(t) = trust::parse_rfc3339(expires) else {
        return true;
    };
    verdicts.check(
        subject,
        "expiry",
        at <= t,
        format!("expires {expires}"),
        format!(
            "the manifest's expires, judged at {} (--at)",
            trust::rfc3339(at)
        ),
    )
}

/// One verdict per signature file: PASS when it counts, NOTE when it does not.
fn signature_notes(subject: &str, verdict: &TrustVerdict, verdicts: &mut Verdicts) {
    for sig in &verdict.signatures {
        let detail = format!(
            "{}{}{}",
            sig.key_id,
            sig.signed_at
                .as_ref()
                .map(|t| format!(" claims signing at {t}"))
                .unwrap_or_default(),
            sig.note
                .as_ref()
                .map(|n| format!(": {n}"))
                .unwrap_or_default()
        );
        // A signature that does not count is reported; whether the bundle fails is
        // the threshold's decision.
        let finding = if sig.counted {
            Finding::Pass
        } else {
            Finding::Note
        };
        verdicts.push(
            subject,
            &format!("signature {}", sig.file),
            finding,
            detail,
            sig.basis.clone(),
        );
    }
}

fn threshold_basis(store: &TrustStore, verdict: &TrustVerdict) -> String {
    format!(
        "trust store {}: distinct public keys counted; judged at {} ({}); evidence of existence: {}",
        store.path.display(),
        verdict.judged_at,
        verdict.judged_by,
        match &verdict.evidence {
            Some(e) => format!("{} (by {})", e.source, e.by),
            None => "none".into(),
        }
    )
}

/// What every receipt is judged with, and what the audit learns for its what-to-do.
struct ReceiptJudge<'a> {
    store: &'a TrustStore,
    bundles: &'a BTreeMap<String, &'a Opened>,
    ledgers: &'a [Ledger],
    todo: Todo,
}

/// What would make the audit VERIFIED, gathered while judging.
#[derive(Default)]
struct Todo {
    /// Unsigned receipts not checked against a ledger, by the database they name.
    unchecked: BTreeMap<String, usize>,
    /// Receipts with no signature (trust.toml does not require one).
    unsigned: usize,
}

impl Todo {
    /// One line per step, for an UNVERIFIED audit (a FAIL needs its failures fixed
    /// first; a PASS needs nothing).
    fn lines(&self, result: AuditResult) -> Vec<String> {
        if result != AuditResult::Unverified {
            return vec![];
        }
        let mut out: Vec<String> = self
            .unchecked
            .iter()
            .map(|(db, n)| {
                format!(
                    "give --db {db} (or --ledger with its `airlock status --db {db} --json` export) to check {n} unsigned receipt(s) against the ledger of database {db}"
                )
            })
            .collect();
        if self.unsigned > 0 {
            out.push(format!(
                "sign receipts from now on: apply/rollback --sign-receipt KEY, with role = \"operator\" for KEY in trust.toml (require_signed_receipts = true enforces it); {} receipt(s) here are unsigned, so nothing vouches for what a ledger does not record (session_user, gates, times) and they stay UNVERIFIED",
                self.unsigned
            ));
        }
        if out.is_empty() {
            out.push("see the UNVERIFIED lines above; --json gives each check's basis".into());
        }
        out
    }
}

fn audit_receipt(
    receipt: &ReadReceipt,
    judge: &mut ReceiptJudge,
    verdicts: &mut Verdicts,
) -> AuditedReceipt {
    let subject = receipt.subject.as_str();
    let doc = &receipt.doc;
    let mut audited = AuditedReceipt {
        file: receipt.path.clone(),
        bundle_id: doc.bundle_id.clone(),
        bundle_name: doc.bundle_name.clone(),
        bundle_version: doc.bundle_version.clone(),
        event: doc.event.clone(),
        database: doc.database.clone(),
        checked_against: None,
        signed_by: None,
        signature: None,
        ledger_vouched: vec![],
        unverified_fields: vec![],
        ran: None,
        ok: false,
    };
    if let Some(Broken { check, why }) = &receipt.broken {
        verdicts.check(
            subject,
            check,
            false,
            why.clone(),
            format!("read {subject}"),
        );
        return audited;
    }
    audited.ran = ran::of_receipt(doc, judge.bundles);
    let mut ok = true;
    let named = names_audited_bundle(doc, judge.bundles);
    ok &= verdicts.check(
        subject,
        "names an audited bundle",
        named.is_ok(),
        named.unwrap_or_else(|e| e),
        "the receipt's bundle_id, name, version, sequence and database against the audited bundles' manifests (their [target] database)",
    );
    ok &= integrity(receipt, verdicts);
    ok &= receipt_signature(receipt, judge, verdicts, &mut audited);
    if let Some(opened) = doc.bundle_id.as_ref().and_then(|id| judge.bundles.get(id)) {
        ok &= ratified::check(subject, doc, opened, judge.store, verdicts);
    }
    // The ledger vouches for the fields it records, when every row is there.
    let mut ledger_vouches = false;
    let own = judge
        .ledgers
        .iter()
        .find(|l| doc.database.as_deref() == Some(l.database.as_str()));
    if let Some(db) = own {
        let held = against_ledger(receipt, db, verdicts);
        ok &= held;
        ledger_vouches = held && receipt.problems.is_empty();
        audited.checked_against = Some(db.label());
    } else {
        ok &= not_checked(receipt, judge, verdicts);
    }
    ok &= deliveries::receipt_delivery(receipt, own, verdicts);
    if ledger_vouches {
        audited.ledger_vouched = receipt
            .fields
            .iter()
            .filter(|f| LEDGER_FIELDS.contains(&f.as_str()))
            .cloned()
            .collect();
    }
    ok &= what_vouches(receipt, own, verdicts, &mut audited);
    audited.ok = ok;
    audited
}

/// The "integrity" verdict: the receipt agrees with its own ledger rows.
fn integrity(receipt: &ReadReceipt, verdicts: &mut Verdicts) -> bool {
    verdicts.check(
        &receipt.subject,
        "integrity",
        receipt.problems.is_empty(),
        if receipt.problems.is_empty() {
            format!(
                "{} ledger row(s) consistent with the receipt",
                receipt.doc.ledger.len()
            )
        } else {
            receipt.problems.join("; ")
        },
        "the receipt's own ledger rows (row_hash recomputed) against its fields: anyone can recompute these, so this shows consistency, not authenticity",
    )
}

/// The audited bundle the receipt names, by id, name, version and sequence: its line,
/// or why not.
fn names_audited_bundle(
    doc: &ReceiptDoc,
    bundles: &BTreeMap<String, &Opened>,
) -> std::result::Result<String, String> {
    let id = doc.bundle_id.clone().unwrap_or_default();
    let Some(opened) = bundles.get(&id) else {
        let same_release = bundles.values().find(|o| same_release(doc, o));
        return Err(match same_release {
            Some(o) => format!(
                "names bundle {} {} for database {} with id {}, but the audited {} {} for that database is bundle {}: a receipt for another bundle under the same name, version and target (an edited bundle_id, or an equivocating release)",
                o.manifest.bundle.name,
                o.manifest.bundle.version,
                o.manifest.target.database,
                short(&id),
                o.manifest.bundle.name,
                o.manifest.bundle.version,
                short(&o.bundle_id)
            ),
            None => format!(
                "names bundle {}, which is not among the audited bundles",
                short(&id)
            ),
        });
    };
    let bundle = &opened.manifest.bundle;
    let target = &opened.manifest.target.database;
    let database = doc.database.as_deref().unwrap_or_default();
    if doc.bundle_name.as_deref() != Some(&bundle.name)
        || doc.bundle_version.as_deref() != Some(&bundle.version)
        || doc.sequence != Some(bundle.sequence)
    {
        Err(format!(
            "names bundle {} but not its name, version and sequence ({} {} seq {})",
            short(&id),
            bundle.name,
            bundle.version,
            bundle.sequence
        ))
    } else if target.matching(database).is_none() {
        // The name guard refuses any other database: a receipt for one was not made by
        // a run of this bundle there.
        Err(format!(
            "names bundle {} and database {database:?}, which the bundle is not for (it is for {}): the name guard refuses that database",
            short(&id),
            target.describe()
        ))
    } else if target.is_fleet() {
        Ok(format!(
            "bundle {} {} {}, database {database} matching {:?} of its fleet",
            short(&id),
            bundle.name,
            bundle.version,
            target.matching(database).unwrap_or_default()
        ))
    } else {
        Ok(format!(
            "bundle {} {} {}",
            short(&id),
            bundle.name,
            bundle.version
        ))
    }
}

/// The receipt names the name, version and target database of this audited bundle
/// (one release may be packed once per target: those differ by database).
fn same_release(doc: &ReceiptDoc, opened: &Opened) -> bool {
    let bundle = &opened.manifest.bundle;
    doc.bundle_name.as_deref() == Some(bundle.name.as_str())
        && doc.bundle_version.as_deref() == Some(bundle.version.as_str())
        && doc
            .database
            .as_deref()
            .is_some_and(|d| opened.manifest.target.database.matching(d).is_some())
}

/// Its signature: the only thing that vouches for every field. True when the check
/// lets the audit pass.
fn receipt_signature(
    receipt: &ReadReceipt,
    judge: &mut ReceiptJudge,
    verdicts: &mut Verdicts,
    audited: &mut AuditedReceipt,
) -> bool {
    let store = judge.store;
    let subject = receipt.subject.as_str();
    let required = if store.require_signed_receipts {
        "trust.toml requires signed receipts"
    } else {
        "trust.toml does not require signed receipts (require_signed_receipts)"
    };
    match &receipt.sig {
        ReceiptSig::Missing => {
            let finding = if store.require_signed_receipts {
                Finding::Fail
            } else {
                judge.todo.unsigned += 1;
                Finding::Unverified
            };
            verdicts.push(
                subject,
                "receipt signature",
                finding,
                format!(
                    "unsigned: no {} beside it",
                    receipt
                        .sig_file
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default()
                ),
                required,
            )
        }
        ReceiptSig::Unreadable(e) => verdicts.check(
            subject,
            "receipt signature",
            false,
            format!("{}: {e}", receipt.sig_file.display()),
            required,
        ),
        ReceiptSig::Judged(sig) => {
            let detail = if sig.counted {
                format!(
                    "signed by operator key {}{}",
                    sig.key_id,
                    sig.note
                        .as_ref()
                        .map(|n| format!(": {n}"))
                        .unwrap_or_default()
                )
            } else {
                sig.note.clone().unwrap_or_default()
            };
            let held = verdicts.check(
                subject,
                "receipt signature",
                sig.counted,
                detail,
                sig.basis.clone(),
            );
            if sig.counted {
                audited.signed_by = Some(format!("{} (operator)", sig.key_id));
            }
            audited.signature = Some((**sig).clone());
            held
        }
    }
}

/// Each of the receipt's rows against the database's ledger, then its database
/// against `--db`'s. True when every one is there, field for field.
fn against_ledger(receipt: &ReadReceipt, db: &Ledger, verdicts: &mut Verdicts) -> bool {
    let subject = receipt.subject.as_str();
    let mut held = true;
    for row in &receipt.doc.ledger {
        let found = db.rows.iter().find(|x| x.row_hash == row.row_hash);
        let same = found == Some(row);
        let (ledger, its) = match db.source {
            ledgers::Source::Database { .. } => {
                ("the database ledger".to_string(), "the database's")
            }
            ledgers::Source::Export { .. } => (format!("the {}", db.label()), "the export's"),
        };
        held &= verdicts.check(
            subject,
            &format!("ledger row {}", row.seq),
            same,
            match found {
                Some(x) if x == row => {
                    format!("present in {ledger} ({})", short(&row.row_hash))
                }
                Some(_) => format!("{its} row with this hash differs"),
                None => format!("row_hash {} is missing from {ledger}", short(&row.row_hash)),
            },
            format!(
                "{}: the row with this row_hash, compared field by field",
                db.read_how()
            ),
        );
    }
    held &= verdicts.check(
        subject,
        "database",
        true,
        format!("database {}", db.database),
        "the receipt's database against the database of each ledger given (current_database() of --db, the export's database)",
    );
    held
}

/// A receipt whose database is none of the ledgers': FAIL when a ledger given holds
/// one of its rows all the same (it names the wrong database), otherwise "not checked
/// against a ledger" — a NOTE when its signature vouches for it, else UNVERIFIED.
fn not_checked(receipt: &ReadReceipt, judge: &mut ReceiptJudge, verdicts: &mut Verdicts) -> bool {
    let subject = receipt.subject.as_str();
    let named = receipt.doc.database.as_deref();
    let elsewhere = receipt.doc.ledger.iter().find_map(|row| {
        judge
            .ledgers
            .iter()
            .find(|l| l.rows.iter().any(|x| x.row_hash == row.row_hash))
            .map(|l| (row.seq, l))
    });
    if let Some((seq, l)) = elsewhere {
        return verdicts.check(
            subject,
            "database",
            false,
            format!(
                "names database {}, but its ledger row {seq} is in the ledger of {}",
                named.unwrap_or("(none)"),
                l.label()
            ),
            "the receipt's rows, by row_hash, in every ledger given",
        );
    }
    let given: Vec<String> = judge.ledgers.iter().map(Ledger::label).collect();
    let why = match named {
        Some(db) => format!(
            "database {db}'s ledger was not given (--db {db}, or --ledger with an export of it)"
        ),
        None => "it names no database".into(),
    };
    let signed = receipt.counted_signature().is_some();
    let finding = if signed {
        Finding::Note
    } else {
        if let Some(db) = named {
            *judge.todo.unchecked.entry(db.to_string()).or_default() += 1;
        }
        Finding::Unverified
    };
    verdicts.push(
        subject,
        "ledger",
        finding,
        format!(
            "not checked against a ledger: {why}{}",
            if signed {
                "; its operator's signature vouches for its fields"
            } else {
                ""
            }
        ),
        format!(
            "the receipt's database against the ledgers given: {}",
            if given.is_empty() {
                "none".to_string()
            } else {
                given.join(", ")
            }
        ),
    )
}

/// The "fields" verdict: what vouches for the receipt's fields (its signature, the
/// ledger, or nothing). True when it lets the audit pass.
fn what_vouches(
    receipt: &ReadReceipt,
    db: Option<&Ledger>,
    verdicts: &mut Verdicts,
    audited: &mut AuditedReceipt,
) -> bool {
    let subject = receipt.subject.as_str();
    let unvouched: Vec<String> = receipt
        .fields
        .iter()
        .filter(|f| !audited.ledger_vouched.contains(f))
        .cloned()
        .collect();
    let vouched_by_ledger = match db {
        Some(db) if !audited.ledger_vouched.is_empty() => format!(
            "; the ledger of {} vouches for {}",
            db.label(),
            audited.ledger_vouched.join(", ")
        ),
        _ => String::new(),
    };
    match receipt.counted_signature() {
        Some(sig) => {
            verdicts.push(
                subject,
                "fields",
                Finding::Pass,
                format!("every field is signed by operator key {}", sig.key_id),
                format!("the receipt's signature{vouched_by_ledger}"),
            );
            true
        }
        None if !unvouched.is_empty() => {
            audited.unverified_fields = unvouched.clone();
            verdicts.push(
                subject,
                "fields",
                Finding::Unverified,
                format!(
                    "nothing vouches for {}: no operator signature counts{}",
                    unvouched.join(", "),
                    if db.is_none() {
                        ", and no ledger was checked, so no ledger row backs any field"
                    } else {
                        ""
                    }
                ),
                format!("the fields of the receipt{vouched_by_ledger}"),
            )
        }
        None => {
            verdicts.push(
                subject,
                "fields",
                Finding::Pass,
                "every field is recorded in the database ledger",
                format!("the fields of the receipt{vouched_by_ledger}"),
            );
            true
        }
    }
}

pub fn run(args: AuditArgs) -> Result<Outcome> {
    let store = load_trust(&args.trust.trust)?;
    let at = match &args.at {
        Some(_) => Some(judge_time(args.at.as_deref())?),
        None => None,
    };
    let now = Utc::now();
    let files = bundle_files(&args.bundles)?;
    // Bundles are opened first (structure only), so that a ledger connection can
    // default to their target, then receipts and the ledgers give evidence, then the
    // signatures are judged with it.
    let opened: Vec<_> = files
        .iter()
        .map(|f| read_bundle(f, Judge::StructureOnly, &Limits::default(), &mut Discard))
        .collect();
    let default_db = opened
        .iter()
        .flatten()
        .next()
        .map(|o| o.manifest.target.database.clone())
        .unwrap_or_else(|| "postgres".into());
    let targets: Vec<_> = opened
        .iter()
        .flatten()
        .map(|o| &o.manifest.target.database)
        .collect();
    let (ledgers, unaudited) = ledgers::read_all(&args, &default_db, &targets)?;
    let history = super::common::trust_history(&store);
    let (receipts, left_out) = read_receipts(&args, &history, now, &opened)?;
    let signed: Vec<_> = ledgers.iter().map(|l| l.signed(&history, now)).collect();
    let evidence = earliest_evidence(&opened, &ledgers, &signed, &receipts);

    let mut verdicts = Verdicts(vec![]);
    let mut bundles = vec![];
    let mut audited = vec![];
    for (file, read) in files.iter().zip(opened) {
        let (bundle, opened) = audit_bundle(file, read, &history, at, &evidence, &mut verdicts);
        bundles.push(bundle);
        audited.extend(opened);
    }
    let by_id: BTreeMap<String, &Opened> =
        audited.iter().map(|o| (o.bundle_id.clone(), o)).collect();
    for (l, signed) in ledgers.iter().zip(&signed) {
        ledger_chain(l, &mut verdicts);
        ledger_signed(l, signed, &mut verdicts);
    }
    let mut judge = ReceiptJudge {
        store: &store,
        bundles: &by_id,
        ledgers: &ledgers,
        todo: Todo::default(),
    };
    let mut audited_receipts = vec![];
    // Each row hash a receipt holds: true while only reissued receipts hold it.
    let mut receipted: BTreeMap<String, bool> = BTreeMap::new();
    for receipt in &receipts {
        audited_receipts.push(audit_receipt(receipt, &mut judge, &mut verdicts));
        let reissued = receipt.doc.reissued.is_some();
        for l in &receipt.doc.ledger {
            let only_reissued = receipted.entry(l.row_hash.clone()).or_insert(true);
            *only_reissued &= reissued;
        }
    }
    moved::note(&receipts, &mut verdicts);
    let todo = judge.todo;
    let needs = needs(&args);
    let verified = coverage::verified(&by_id, &bundles);
    if let Some(needs) = needs {
        coverage::reached(needs, &verified, &ledgers, &audited_receipts, &mut verdicts);
    }
    for u in &unaudited {
        verdicts.check(
            &format!("database {}", u.database),
            UNAUDITED,
            false,
            format!("it matches the fleet, and was not audited: {}", u.why),
            "every database of --fleet whose name an audited bundle's [target] database names or matches, templates and those refusing connections included",
        );
    }
    for l in &ledgers {
        let receipted = (!args.receipts.is_empty()).then_some(&receipted);
        ledger_rows(l, &by_id, receipted, &mut verdicts);
    }
    let result = AuditResult::of(&verdicts.0);
    Ok(Box::new(AuditReport {
        ok: result == AuditResult::Pass,
        verdict: result,
        result,
        trust_store_version: store.rotation.as_ref().map(|r| r.version),
        at: at.map(trust::rfc3339),
        bundles,
        receipts: audited_receipts,
        left_out,
        database: ledgers.first().map(|d| d.database.clone()),
        ledgers: ledgers.iter().map(|l| l.report(&verified)).collect(),
        to_verify: todo.lines(result),
        verdicts: verdicts.0,
    }))
}

/// What each verified release must have reached: a receipt with `--receipt`, else a
/// ledger row with `--fleet`.
fn needs(args: &AuditArgs) -> Option<coverage::Needs> {
    if !args.receipts.is_empty() {
        Some(coverage::Needs::Receipt)
    } else {
        (!args.fleet.is_empty()).then_some(coverage::Needs::LedgerRow)
    }
}

/// The receipts to audit, each read and its signature judged, and those of a
/// `--receipt` directory left out.
fn read_receipts(
    args: &AuditArgs,
    history: &History,
    now: DateTime<Utc>,
    opened: &[std::result::Result<Opened, crate::archive::VerifyError>],
) -> Result<(Vec<ReadReceipt>, Vec<LeftOut>)> {
    // A receipts directory holds receipts of other releases too: one found in a
    // directory is audited when it names an audited bundle by id, or by name and
    // version (an edited bundle_id then fails), or cannot be read; the others are
    // left out and listed. A receipt named on its own is always audited.
    let audited: Vec<&Opened> = opened.iter().flatten().collect();
    let mut keep = vec![];
    let mut left_out = vec![];
    for (path, from_dir) in receipt_files(&args.receipts)? {
        let receipt = ReadReceipt::read(&path, history, now);
        let doc = &receipt.doc;
        let ours = receipt.broken.is_some()
            || audited.iter().any(|o| {
                doc.bundle_id.as_deref() == Some(o.bundle_id.as_str()) || same_release(doc, o)
            });
        if !from_dir || ours {
            keep.push(receipt);
            continue;
        }
        left_out.push(LeftOut {
            file: path,
            reason: format!(
                "a receipt of bundle {} {} ({}), which is none of the audited bundles: give that bundle to audit it",
                doc.bundle_name.as_deref().unwrap_or("(no name)"),
                doc.bundle_version.as_deref().unwrap_or("(no version)"),
                short(doc.bundle_id.as_deref().unwrap_or("(no id)"))
            ),
            bundle_id: doc.bundle_id.clone(),
        });
    }
    Ok((keep, left_out))
}

/// Evidence from the ledger of the database `db` (as `audit --db` reads it) that
/// the bundle `bundle_id` existed: its first row, when the hash chain holds. For the
/// auditor's `dossier` of a bundle signed by a key revoked since.
pub(crate) fn ledger_evidence(
    db: &str,
    target: &crate::spec::TargetDatabase,
    store: &TrustStore,
    bundle_id: &str,
) -> Result<Option<Existence>> {
    let ledger = ledgers::Ledger::from_db(db, target)?;
    let signed = ledger.signed(&super::common::trust_history(store), Utc::now());
    Ok(ledger.evidence(bundle_id, &signed))
}

/// Evidence from the receipts `paths` names (files, or directories of
/// `*.receipt.json`, read as `audit --receipt` reads them) that the bundle `bundle_id`
/// existed: the earliest receipt of it whose operator signature counts with the store
/// in force when it was written. For the auditor's offline `dossier` of a bundle
/// signed by a key revoked since: the same evidence `audit` accepts.
pub(crate) fn receipt_evidence(
    paths: &[PathBuf],
    store: &TrustStore,
    bundle_id: &str,
) -> Result<Option<Existence>> {
    let history = super::common::trust_history(store);
    let now = Utc::now();
    let mut earliest: Option<Existence> = None;
    for (path, _) in receipt_files(paths)? {
        let receipt = ReadReceipt::read(&path, &history, now);
        let Some((id, existed)) = receipt.evidence() else {
            continue;
        };
        if id == bundle_id && earliest.as_ref().is_none_or(|e| existed.time < e.time) {
            earliest = Some(existed);
        }
    }
    Ok(earliest)
}

/// The earliest evidence of each bundle id: the databases' ledger rows, then receipts
/// whose operator signature counts.
fn earliest_evidence(
    opened: &[std::result::Result<Opened, crate::archive::VerifyError>],
    ledgers: &[Ledger],
    signed: &[crate::commands::deploy::signed_rows::Signed],
    receipts: &[ReadReceipt],
) -> BTreeMap<String, Existence> {
    let mut evidence: BTreeMap<String, Existence> = BTreeMap::new();
    let mut offer = |id: String, existed: Existence| {
        let keep = evidence
            .get(&id)
            .is_some_and(|old| old.time <= existed.time);
        if !keep {
            evidence.insert(id, existed);
        }
    };
    for bundle in opened.iter().flatten() {
        let each = ledgers.iter().zip(signed);
        for existed in each.filter_map(|(l, s)| l.evidence(&bundle.bundle_id, s)) {
            offer(bundle.bundle_id.clone(), existed);
        }
    }
    for receipt in receipts {
        if let Some((id, existed)) = receipt.evidence() {
            offer(id, existed);
        }
    }
    evidence
}

/// The "ledger rows signed" verdict of a live ledger: FAIL where a signature it keeps
/// does not verify over its rows (they changed after airlock signed them), else a
/// NOTE naming the rows of what ran no operator signature covers and what such a row
/// proves; nothing when every row is signed.
fn ledger_signed(
    db: &Ledger,
    signed: &crate::commands::deploy::signed_rows::Signed,
    verdicts: &mut Verdicts,
) {
    const CHECK: &str = "ledger rows signed";
    if db.broken.is_some() || !matches!(db.source, ledgers::Source::Database { .. }) {
        return;
    }
    let subject = db.label();
    let basis = "each delivery row's operator signature, judged as a receipt's (a key of the trust store with role operator, not revoked, valid at the time it claims) over the rows it names, as the ledger holds them";
    for (seq, why) in &signed.broken {
        verdicts.check(
            &subject,
            CHECK,
            false,
            format!("ledger row {seq} keeps a signature that does not hold for the rows it names: {why}; they changed after airlock signed them"),
            basis,
        );
    }
    let unsigned = signed.unsigned(&db.rows);
    if unsigned.is_empty() {
        return;
    }
    // The first rows named; a long ledger's count says the rest.
    const LISTED: usize = 20;
    let mut seqs: Vec<String> = unsigned
        .iter()
        .take(LISTED)
        .map(|r| r.seq.to_string())
        .collect();
    if unsigned.len() > LISTED {
        seqs.push(format!("and {} more", unsigned.len() - LISTED));
    }
    let mut detail = format!(
        "{} of the {} rows of what ran carry no operator signature that counts (rows {}): each shows that the hash chain holds it, not that airlock wrote it nor when, so none is evidence that a bundle existed before a key's revocation. apply, rollback and reissue sign the rows they write with --sign-receipt KEY",
        unsigned.len(),
        db.rows.iter().filter(|r| r.ran()).count(),
        seqs.join(", ")
    );
    for (seq, why) in &signed.not_counted {
        detail.push_str(&format!(
            "; the signature in row {seq} does not count: {why}"
        ));
    }
    verdicts.push(&subject, CHECK, Finding::Note, detail, basis);
}

/// The "ledger hash chain" verdict of a ledger.
fn ledger_chain(db: &Ledger, verdicts: &mut Verdicts) {
    let subject = db.label();
    let basis = format!(
        "{}: every row's row_hash recomputed and linked by prev_hash",
        db.read_how()
    );
    match &db.broken {
        None => verdicts.check(
            &subject,
            "ledger hash chain",
            true,
            format!("{} row(s) chain correctly", db.rows.len()),
            basis,
        ),
        Some((seq, why)) => verdicts.check(
            &subject,
            "ledger hash chain",
            false,
            format!("broken at row {seq}: {why}; no row of it is used as evidence"),
            basis,
        ),
    };
}

/// Each ledger row of the audited bundles' names: of an audited bundle, and (when
/// receipts were given) matched by one of their rows (`receipted`).
fn ledger_rows(
    db: &Ledger,
    by_id: &BTreeMap<String, &Opened>,
    receipted: Option<&BTreeMap<String, bool>>,
    verdicts: &mut Verdicts,
) {
    let names: BTreeSet<&str> = by_id
        .values()
        .map(|o| o.manifest.bundle.name.as_str())
        .collect();
    let subject = db.label();
    for row in db
        .rows
        .iter()
        .filter(|r| names.contains(r.bundle_name.as_str()))
    {
        let known = by_id.contains_key(&row.bundle_id);
        verdicts.check(
            &subject,
            &format!("ledger row {} bundle", row.seq),
            known,
            if known {
                format!("{} {} of an audited bundle", row.event, row.bundle_version)
            } else {
                format!(
                    "{} names bundle id {}, which no audited bundle has",
                    row.event,
                    short(&row.bundle_id)
                )
            },
            "the row's bundle_id against the audited bundles (rows of the audited bundles' names)",
        );
        // A receipt row is itself the record of a receipt delivered.
        if let (Some(receipted), true) = (receipted, row.ran()) {
            deliveries::row_receipt(&subject, db, row, receipted, verdicts);
        }
    }
}

impl AuditResult {
    /// FAIL if any check failed, else UNVERIFIED if any rests on nothing, else PASS.
    fn of(verdicts: &[Verdict]) -> AuditResult {
        let has = |finding: Finding| verdicts.iter().any(|x| x.verdict == finding);
        if has(Finding::Fail) {
            AuditResult::Fail
        } else if has(Finding::Unverified) {
            AuditResult::Unverified
        } else {
            AuditResult::Pass
        }
    }
}
