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
//! Exit 0 only if every check passed, 4 otherwise.

use super::common::{judge_time, load_trust};
use crate::archive::{read_bundle, Discard, Judge, Limits, Opened};
use crate::cli::AuditArgs;
use crate::db::conn;
use crate::db::ledger::{self, LedgerRow};
use crate::error::{Error, Result};
use crate::minisign::SignatureBox;
use crate::report::{short, table_blocks, terminal_safe, Outcome, Report};
use crate::trust::{self, Existence, Judging, SignatureCheck, TrustStore, TrustVerdict};
use chrono::{DateTime, Utc};
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
    fn as_str(self) -> &'static str {
        match self {
            Finding::Pass => "PASS",
            Finding::Fail => "FAIL",
            Finding::Note => "NOTE",
            Finding::Unverified => "UNVERIFIED",
        }
    }
}

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
    pub files: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    pub runbooks: Vec<String>,
    pub ok: bool,
}

#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct AuditedReceipt {
    pub file: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bundle_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
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
    /// No check about this receipt failed.
    pub ok: bool,
}

#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct AuditReport {
    /// Every check passed (`result` is PASS).
    pub ok: bool,
    pub result: AuditResult,
    /// `--at`, when given; otherwise signatures are judged now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    pub bundles: Vec<AuditedBundle>,
    pub receipts: Vec<AuditedReceipt>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    pub verdicts: Vec<Verdict>,
}

impl Report for AuditReport {
    fn human(&self) -> String {
        let rows: Vec<Vec<String>> = self
            .verdicts
            .iter()
            .map(|v| {
                vec![
                    v.subject.clone(),
                    v.check.clone(),
                    v.verdict.as_str().into(),
                    terminal_safe(&v.detail).into_owned(),
                ]
            })
            .collect();
        // Each row, then what it rests on.
        let blocks = table_blocks(
            &["subject", "check", "verdict", "detail"],
            &rows,
            crate::style::width(),
        );
        let mut blocks = blocks.into_iter();
        let mut out: Vec<String> = blocks.by_ref().take(2).collect();
        for (block, v) in blocks.zip(&self.verdicts) {
            out.push(block);
            out.push(format!("    basis: {}", terminal_safe(&v.basis)));
        }
        let count = |f: Finding| self.verdicts.iter().filter(|v| v.verdict == f).count();
        let summary = match self.result {
            AuditResult::Pass => "AUDIT PASS: every check held".to_string(),
            AuditResult::Fail => format!(
                "AUDIT FAIL: {} check(s) failed, {} unverified",
                count(Finding::Fail),
                count(Finding::Unverified)
            ),
            AuditResult::Unverified => format!(
                "AUDIT UNVERIFIED: nothing failed, but {} check(s) rest on nothing an auditor can rely on (see their basis)",
                count(Finding::Unverified)
            ),
        };
        let paint = match self.result {
            AuditResult::Pass => crate::style::Paint::Good,
            AuditResult::Fail => crate::style::Paint::Bad,
            AuditResult::Unverified => crate::style::Paint::Warn,
        };
        let summary = crate::style::paint(paint, &summary);
        format!(
            "audit: {} bundle(s), {} receipt(s){}\n\n{}\n\n{}",
            self.bundles.len(),
            self.receipts.len(),
            self.database
                .as_ref()
                .map(|d| format!(", ledger of database {d}"))
                .unwrap_or_default(),
            out.join("\n"),
            summary
        )
    }
    fn exit_code(&self) -> crate::exit::Exit {
        if self.ok {
            crate::exit::Exit::Success
        } else {
            crate::exit::Exit::Verification
        }
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
/// from a directory.
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
    Ok(out)
}

/// The target's ledger as read (read-only) with `--db`.
struct Ledger {
    database: String,
    rows: Vec<LedgerRow>,
    /// Where the hash chain breaks, if it does.
    broken: Option<(i64, String)>,
}

impl Ledger {
    fn read(args: &AuditArgs, default_db: &str) -> Result<Option<Ledger>> {
        if args.db.is_none() {
            return Ok(None);
        }
        let spec = conn::resolve(args.db.as_deref(), default_db)?;
        let mut c = spec.connect()?;
        let mut tx = c
            .build_transaction()
            .read_only(true)
            .start()
            .map_err(|e| crate::db::sql_err("BEGIN READ ONLY", &e))?;
        let database: String = tx
            .query_one("SELECT pg_catalog.current_database()::text", &[])
            .map_err(|e| crate::db::sql_err("audit", &e))?
            .get(0);
        let rows = ledger::read_all(&mut tx)?;
        tx.rollback()
            .map_err(|e| crate::db::sql_err("ROLLBACK", &e))?;
        let broken = ledger::verify_chain(&rows);
        Ok(Some(Ledger {
            database,
            rows,
            broken,
        }))
    }

    /// The first row naming `bundle_id`, as evidence: the bundle existed by that row's
    /// time, taken as the latest `at` of it and every row before it (a row appended
    /// later cannot be earlier than the rows it follows). None when the chain breaks.
    fn evidence(&self, bundle_id: &str) -> Option<Existence> {
        if self.broken.is_some() {
            return None;
        }
        let mut latest: Option<DateTime<Utc>> = None;
        for r in &self.rows {
            let at = trust::parse_rfc3339(&r.at)?;
            latest = Some(latest.map_or(at, |l| l.max(at)));
            if r.bundle_id == bundle_id {
                return Some(Existence::new(
                    latest?,
                    format!("ledger row {} of database {}", r.seq, self.database),
                ));
            }
        }
        None
    }
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
    operator: Option<String>,
    tiers: Option<Vec<String>>,
    params: Option<BTreeMap<String, String>>,
    fingerprint_before: Option<String>,
    fingerprint_after: Option<String>,
    #[serde(default)]
    ledger: Vec<LedgerRow>,
    started_at: Option<String>,
    finished_at: Option<String>,
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

/// One receipt, read and judged before any bundle (its signature may be evidence).
struct ReadReceipt {
    path: PathBuf,
    subject: String,
    /// Why it could not be read or parsed.
    broken: Option<(&'static str, String)>,
    doc: ReceiptDoc,
    /// Its top-level field names.
    fields: Vec<String>,
    sig_file: PathBuf,
    sig: ReceiptSig,
    /// Where the receipt contradicts itself.
    problems: Vec<String>,
}

impl ReadReceipt {
    fn read(path: &Path, store: &TrustStore, now: DateTime<Utc>) -> ReadReceipt {
        let mut sig_file = path.as_os_str().to_owned();
        sig_file.push(".minisig");
        let mut r = ReadReceipt {
            path: path.to_path_buf(),
            subject: path.display().to_string(),
            broken: None,
            doc: ReceiptDoc::default(),
            fields: vec![],
            sig_file: PathBuf::from(sig_file),
            sig: ReceiptSig::Missing,
            problems: vec![],
        };
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                r.broken = Some(("readable", e.to_string()));
                return r;
            }
        };
        let parsed = serde_json::from_slice::<serde_json::Value>(&bytes)
            .map_err(|e| e.to_string())
            .and_then(|v| {
                let fields = v
                    .as_object()
                    .map(|o| o.keys().cloned().collect())
                    .ok_or_else(|| "not a JSON object".to_string())?;
                let doc = serde_json::from_value::<ReceiptDoc>(v).map_err(|e| e.to_string())?;
                Ok((fields, doc))
            });
        match parsed {
            Ok((fields, doc)) => {
                r.fields = fields;
                r.doc = doc;
            }
            Err(e) => {
                r.broken = Some(("receipt JSON", e));
                return r;
            }
        }
        r.problems = consistency(&r.doc);
        if r.sig_file.exists() {
            let d = &r.doc;
            let claim = trust::ReceiptClaim {
                bundle_id: d.bundle_id.as_deref().unwrap_or(""),
                event: d.event.as_deref().unwrap_or(""),
                ledger_seq: d.ledger.last().map(|l| l.seq).unwrap_or(0),
            };
            let name = r
                .sig_file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            r.sig = match std::fs::read_to_string(&r.sig_file)
                .map_err(|e| e.to_string())
                .and_then(|t| SignatureBox::parse(&t).map_err(|e| e.to_string()))
            {
                Ok(sig) => ReceiptSig::Judged(Box::new(trust::judge_receipt_signature(
                    store, &bytes, &name, &sig, &claim, now,
                ))),
                Err(e) => ReceiptSig::Unreadable(e),
            };
        }
        r
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
fn consistency(d: &ReceiptDoc) -> Vec<String> {
    let mut problems = vec![];
    let rows = &d.ledger;
    if rows.is_empty() {
        problems.push("holds no ledger row".to_string());
        return problems;
    }
    for (i, r) in rows.iter().enumerate() {
        if r.compute_hash() != r.row_hash {
            problems.push(format!(
                "ledger row {} does not hash to its row_hash",
                r.seq
            ));
        }
        if i > 0 && r.seq == rows[i - 1].seq + 1 && r.prev_hash != rows[i - 1].row_hash {
            problems.push(format!(
                "ledger row {} does not chain to row {}",
                r.seq,
                rows[i - 1].seq
            ));
        }
        let same = |mine: &Option<String>, row: &str| mine.as_deref() == Some(row);
        for (field, ok) in [
            ("bundle_id", same(&d.bundle_id, &r.bundle_id)),
            ("event", same(&d.event, &r.event)),
            ("bundle_name", same(&d.bundle_name, &r.bundle_name)),
            ("bundle_version", same(&d.bundle_version, &r.bundle_version)),
            ("sequence", d.sequence.map(|s| s as i64) == Some(r.sequence)),
            ("operator", same(&d.operator, &r.operator)),
        ] {
            if !ok {
                problems.push(format!("{field} differs from ledger row {}", r.seq));
            }
        }
    }
    let first = &rows[0];
    let last = &rows[rows.len() - 1];
    if d.fingerprint_before.as_deref() != Some(first.fingerprint_before.as_str()) {
        problems.push("fingerprint_before differs from its first ledger row".into());
    }
    if d.fingerprint_after.as_deref() != Some(last.fingerprint_after.as_str()) {
        problems.push("fingerprint_after differs from its last ledger row".into());
    }
    let tiers: Vec<String> = rows.iter().flat_map(|r| r.tier_names()).collect();
    if d.tiers.as_ref() != Some(&tiers) {
        problems.push("tiers differ from its ledger rows".into());
    }
    let params = d
        .params
        .as_ref()
        .and_then(|p| serde_json::to_string(p).ok());
    if params.as_deref() != Some(last.params.as_str()) {
        problems.push("params differ from its ledger row".into());
    }
    let outcome = match d.event.as_deref() {
        Some("apply") => "applied",
        Some("rollback") => "rolled-back",
        _ => "",
    };
    if d.outcome.as_deref() != Some(outcome) {
        problems.push(format!(
            "outcome {:?} is not what a receipt with ledger rows of event {:?} says",
            d.outcome.as_deref().unwrap_or(""),
            d.event.as_deref().unwrap_or("")
        ));
    }
    // The rows were written between the receipt's start and finish.
    let time = |t: &Option<String>| t.as_deref().and_then(trust::parse_rfc3339);
    let (started, finished) = (time(&d.started_at), time(&d.finished_at));
    for r in [first, last] {
        let at = trust::parse_rfc3339(&r.at);
        if started.is_none() || finished.is_none() || at.is_none() {
            problems.push("started_at, finished_at or a row's at is not a time".into());
            break;
        }
        if at < started || at > finished {
            problems.push(format!(
                "ledger row {} was written at {}, outside started_at..finished_at",
                r.seq, r.at
            ));
        }
    }
    problems
}

fn audit_bundle(
    path: &Path,
    read: std::result::Result<Opened, crate::archive::VerifyError>,
    store: &TrustStore,
    at: Option<DateTime<Utc>>,
    evidence: &BTreeMap<String, Existence>,
    v: &mut Verdicts,
) -> (AuditedBundle, Option<Opened>) {
    let subject = path.display().to_string();
    let mut ab = AuditedBundle {
        file: path.to_path_buf(),
        bundle_id: None,
        name: None,
        version: None,
        sequence: None,
        format: None,
        trust: None,
        files: 0,
        expires: None,
        runbooks: vec![],
        ok: false,
    };
    let structure_basis = format!(
        "one read of {subject}: every tar header, size and SHA-256 against manifest.json, whose SHA-256 is the bundle id"
    );
    let op = match read {
        Ok(op) => op,
        Err(e) => {
            v.check(
                &subject,
                "structure and hashes",
                false,
                e.to_string(),
                structure_basis,
            );
            return (ab, None);
        }
    };
    let m = &op.manifest;
    ab.bundle_id = Some(op.bundle_id.clone());
    ab.name = Some(m.bundle.name.clone());
    ab.version = Some(m.bundle.version.clone());
    ab.sequence = Some(m.bundle.sequence);
    ab.format = Some(m.format.clone());
    ab.files = m.files.len();
    ab.expires = m.bundle.expires.clone();
    ab.runbooks = m
        .runbook
        .iter()
        .map(|r| format!("{} ({})", r.file, r.title))
        .collect();
    let mut ok = v.check(
        &subject,
        "structure and hashes",
        true,
        format!(
            "{} {} seq {} id {}: {} files, every SHA-256 matches",
            m.bundle.name,
            m.bundle.version,
            m.bundle.sequence,
            short(&op.bundle_id),
            m.files.len()
        ),
        structure_basis,
    );
    let mut judging = Judging::at(at);
    judging.existed = evidence.get(&op.bundle_id).cloned();
    let verdict = trust::evaluate(
        store,
        &op.manifest_bytes,
        &op.manifest,
        &op.bundle_id,
        &op.signatures,
        &judging,
    );
    for c in &verdict.signatures {
        let detail = format!(
            "{}{}{}",
            c.key_id,
            c.signed_at
                .as_ref()
                .map(|t| format!(" claims signing at {t}"))
                .unwrap_or_default(),
            c.note
                .as_ref()
                .map(|n| format!(": {n}"))
                .unwrap_or_default()
        );
        // A signature that does not count is reported; whether the bundle fails is
        // the threshold's decision.
        let f = if c.counted {
            Finding::Pass
        } else {
            Finding::Note
        };
        v.push(
            &subject,
            &format!("signature {}", c.file),
            f,
            detail,
            c.basis.clone(),
        );
    }
    ok &= v.check(
        &subject,
        "threshold",
        verdict.met,
        format!(
            "{} distinct trusted key(s), {} required",
            verdict.distinct_keys, verdict.threshold,
        ),
        format!(
            "trust store {}: distinct public keys counted; judged at {} ({}); evidence of existence: {}",
            store.path.display(),
            verdict.judged_at,
            verdict.judged_by,
            match &verdict.evidence {
                Some(e) => format!("{} (by {})", e.source, e.by),
                None => "none".into(),
            }
        ),
    );
    if let (Some(exp), Some(at)) = (&m.bundle.expires, at) {
        if let Some(t) = trust::parse_rfc3339(exp) {
            ok &= v.check(
                &subject,
                "expiry",
                at <= t,
                format!("expires {exp}"),
                format!(
                    "the manifest's expires, judged at {} (--at)",
                    trust::rfc3339(at)
                ),
            );
        }
    }
    ab.trust = Some(verdict);
    ab.ok = ok;
    (ab, Some(op))
}

fn audit_receipt(
    r: &ReadReceipt,
    store: &TrustStore,
    bundles: &BTreeMap<String, &Opened>,
    db: Option<&Ledger>,
    v: &mut Verdicts,
) -> AuditedReceipt {
    let subject = r.subject.as_str();
    let d = &r.doc;
    let mut ar = AuditedReceipt {
        file: r.path.clone(),
        bundle_id: d.bundle_id.clone(),
        event: d.event.clone(),
        signed_by: None,
        signature: None,
        ledger_vouched: vec![],
        unverified_fields: vec![],
        ok: false,
    };
    if let Some((check, why)) = &r.broken {
        v.check(
            subject,
            check,
            false,
            why.clone(),
            format!("read {subject}"),
        );
        return ar;
    }
    let mut ok = true;
    let id = d.bundle_id.clone().unwrap_or_default();
    let named = match bundles.get(&id) {
        None => Err(format!(
            "names bundle {}, which is not among the audited bundles",
            short(&id)
        )),
        Some(op) => {
            let b = &op.manifest.bundle;
            if d.bundle_name.as_deref() != Some(&b.name)
                || d.bundle_version.as_deref() != Some(&b.version)
                || d.sequence != Some(b.sequence)
            {
                Err(format!(
                    "names bundle {} but not its name, version and sequence ({} {} seq {})",
                    short(&id),
                    b.name,
                    b.version,
                    b.sequence
                ))
            } else {
                Ok(format!("bundle {} {} {}", short(&id), b.name, b.version))
            }
        }
    };
    ok &= v.check(
        subject,
        "names an audited bundle",
        named.is_ok(),
        named.unwrap_or_else(|e| e),
        "the receipt's bundle_id, name, version and sequence against the audited bundles' manifests",
    );
    ok &= v.check(
        subject,
        "integrity",
        r.problems.is_empty(),
        if r.problems.is_empty() {
            format!(
                "{} ledger row(s) consistent with the receipt",
                d.ledger.len()
            )
        } else {
            r.problems.join("; ")
        },
        "the receipt's own ledger rows (row_hash recomputed) against its fields: anyone can recompute these, so this shows consistency, not authenticity",
    );
    // Its signature: the only thing that vouches for every field.
    let required = if store.require_signed_receipts {
        "trust.toml requires signed receipts"
    } else {
        "trust.toml does not require signed receipts (require_signed_receipts)"
    };
    match &r.sig {
        ReceiptSig::Missing => {
            let f = if store.require_signed_receipts {
                Finding::Fail
            } else {
                Finding::Unverified
            };
            ok &= v.push(
                subject,
                "receipt signature",
                f,
                format!(
                    "unsigned: no {} beside it",
                    r.sig_file
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default()
                ),
                required,
            );
        }
        ReceiptSig::Unreadable(e) => {
            ok &= v.check(
                subject,
                "receipt signature",
                false,
                format!("{}: {e}", r.sig_file.display()),
                required,
            );
        }
        ReceiptSig::Judged(c) => {
            let detail = if c.counted {
                format!(
                    "signed by operator key {}{}",
                    c.key_id,
                    c.note
                        .as_ref()
                        .map(|n| format!(": {n}"))
                        .unwrap_or_default()
                )
            } else {
                c.note.clone().unwrap_or_default()
            };
            ok &= v.check(
                subject,
                "receipt signature",
                c.counted,
                detail,
                c.basis.clone(),
            );
            if c.counted {
                ar.signed_by = Some(format!("{} (operator)", c.key_id));
            }
            ar.signature = Some((**c).clone());
        }
    }
    // The ledger vouches for the fields it records, when every row is there.
    let mut ledger_ok = false;
    if let Some(db) = db {
        ledger_ok = r.problems.is_empty();
        for row in &d.ledger {
            let found = db.rows.iter().find(|x| x.row_hash == row.row_hash);
            let same = found == Some(row);
            ledger_ok &= same;
            ok &= v.check(
                subject,
                &format!("ledger row {}", row.seq),
                same,
                match found {
                    Some(x) if x == row => {
                        format!("present in the database ledger ({})", short(&row.row_hash))
                    }
                    Some(_) => "the database's row with this hash differs".into(),
                    None => format!(
                        "row_hash {} is missing from the database ledger",
                        short(&row.row_hash)
                    ),
                },
                format!(
                    "database {}: the row with this row_hash, compared field by field",
                    db.database
                ),
            );
        }
        let same_db = d.database.as_deref() == Some(db.database.as_str());
        ledger_ok &= same_db;
        ok &= v.check(
            subject,
            "database",
            same_db,
            if same_db {
                format!("database {}", db.database)
            } else {
                format!(
                    "names database {}, but the ledger audited is database {}'s",
                    d.database.as_deref().unwrap_or("(none)"),
                    db.database
                )
            },
            "the receipt's database against current_database() of --db",
        );
    }
    if ledger_ok {
        ar.ledger_vouched = r
            .fields
            .iter()
            .filter(|f| LEDGER_FIELDS.contains(&f.as_str()))
            .cloned()
            .collect();
    }
    let unvouched: Vec<String> = r
        .fields
        .iter()
        .filter(|f| !ar.ledger_vouched.contains(f))
        .cloned()
        .collect();
    let vouched_by_ledger = if ar.ledger_vouched.is_empty() {
        String::new()
    } else {
        format!(
            "; the ledger of database {} vouches for {}",
            db.map(|x| x.database.as_str()).unwrap_or(""),
            ar.ledger_vouched.join(", ")
        )
    };
    match r.counted_signature() {
        Some(c) => {
            v.push(
                subject,
                "fields",
                Finding::Pass,
                format!("every field is signed by operator key {}", c.key_id),
                format!("the receipt's signature{vouched_by_ledger}"),
            );
        }
        None if !unvouched.is_empty() => {
            ar.unverified_fields = unvouched.clone();
            ok &= v.push(
                subject,
                "fields",
                Finding::Unverified,
                format!(
                    "nothing vouches for {}: no operator signature counts{}",
                    unvouched.join(", "),
                    if db.is_none() {
                        ", and without --db no ledger row backs any field"
                    } else {
                        ""
                    }
                ),
                format!("the fields of the receipt{vouched_by_ledger}"),
            );
        }
        None => {
            v.push(
                subject,
                "fields",
                Finding::Pass,
                "every field is recorded in the database ledger",
                format!("the fields of the receipt{vouched_by_ledger}"),
            );
        }
    }
    ar.ok = ok;
    ar
}

pub fn run(args: AuditArgs) -> Result<Outcome> {
    let store = load_trust(&args.trust.trust)?;
    let at = match &args.at {
        Some(_) => Some(judge_time(args.at.as_deref())?),
        None => None,
    };
    let now = Utc::now();
    let files = bundle_files(&args.bundles)?;
    // Bundles are opened first (structure only), so that the ledger connection can
    // default to their target, then receipts and the ledger give evidence, then the
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
    let db = Ledger::read(&args, &default_db)?;
    // A receipts directory holds receipts of other releases too: those found in a
    // directory are audited when they name an audited bundle (or cannot be read); a
    // receipt named on its own is always audited.
    let audited_ids: Vec<&str> = opened
        .iter()
        .flatten()
        .map(|o| o.bundle_id.as_str())
        .collect();
    let receipts: Vec<ReadReceipt> = receipt_files(&args.receipts)?
        .iter()
        .map(|(r, from_dir)| (ReadReceipt::read(r, &store, now), *from_dir))
        .filter(|(r, from_dir)| {
            !from_dir
                || r.broken.is_some()
                || r.doc
                    .bundle_id
                    .as_deref()
                    .is_some_and(|id| audited_ids.contains(&id))
        })
        .map(|(r, _)| r)
        .collect();
    // The earliest evidence of each bundle id.
    let mut evidence: BTreeMap<String, Existence> = BTreeMap::new();
    let mut offer = |id: String, e: Existence| {
        let keep = evidence.get(&id).is_some_and(|old| old.time <= e.time);
        if !keep {
            evidence.insert(id, e);
        }
    };
    for o in opened.iter().flatten() {
        if let Some(e) = db.as_ref().and_then(|db| db.evidence(&o.bundle_id)) {
            offer(o.bundle_id.clone(), e);
        }
    }
    for r in &receipts {
        if let Some((id, e)) = r.evidence() {
            offer(id, e);
        }
    }

    let mut v = Verdicts(vec![]);
    let mut bundles = vec![];
    let mut audited = vec![];
    for (f, read) in files.iter().zip(opened) {
        let (ab, op) = audit_bundle(f, read, &store, at, &evidence, &mut v);
        bundles.push(ab);
        audited.extend(op);
    }
    let by_id: BTreeMap<String, &Opened> =
        audited.iter().map(|o| (o.bundle_id.clone(), o)).collect();
    let names: BTreeSet<String> = audited
        .iter()
        .map(|o| o.manifest.bundle.name.clone())
        .collect();
    if let Some(db) = &db {
        let subject = format!("database {}", db.database);
        let basis = format!(
            "database {}: every row's row_hash recomputed and linked by prev_hash, read in one read-only transaction",
            db.database
        );
        match &db.broken {
            None => v.check(
                &subject,
                "ledger hash chain",
                true,
                format!("{} row(s) chain correctly", db.rows.len()),
                basis,
            ),
            Some((seq, why)) => v.check(
                &subject,
                "ledger hash chain",
                false,
                format!("broken at row {seq}: {why}; no row of it is used as evidence"),
                basis,
            ),
        };
    }
    let mut audited_receipts = vec![];
    let mut receipted = BTreeSet::new();
    for r in &receipts {
        audited_receipts.push(audit_receipt(r, &store, &by_id, db.as_ref(), &mut v));
        receipted.extend(r.doc.ledger.iter().map(|l| l.row_hash.clone()));
    }
    if let Some(db) = &db {
        let subject = format!("database {}", db.database);
        for r in db.rows.iter().filter(|r| names.contains(&r.bundle_name)) {
            let known = by_id.contains_key(&r.bundle_id);
            v.check(
                &subject,
                &format!("ledger row {} bundle", r.seq),
                known,
                if known {
                    format!("{} {} of an audited bundle", r.event, r.bundle_version)
                } else {
                    format!(
                        "{} names bundle id {}, which no audited bundle has",
                        r.event,
                        short(&r.bundle_id)
                    )
                },
                "the row's bundle_id against the audited bundles (rows of the audited bundles' names)",
            );
            if !args.receipts.is_empty() {
                let has = receipted.contains(&r.row_hash);
                v.check(
                    &subject,
                    &format!("ledger row {} receipt", r.seq),
                    has,
                    if has {
                        "matched by a receipt".into()
                    } else {
                        "no receipt given for this row".to_string()
                    },
                    "the row's row_hash against the ledger rows the receipts hold",
                );
            }
        }
    }
    let has = |f: Finding| v.0.iter().any(|x| x.verdict == f);
    let result = if has(Finding::Fail) {
        AuditResult::Fail
    } else if has(Finding::Unverified) {
        AuditResult::Unverified
    } else {
        AuditResult::Pass
    };
    Ok(Box::new(AuditReport {
        ok: result == AuditResult::Pass,
        result,
        at: at.map(|t| t.to_rfc3339()),
        bundles,
        receipts: audited_receipts,
        database: db.map(|d| d.database),
        verdicts: v.0,
    }))
}
