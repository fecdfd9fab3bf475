//! `airlock audit`: re-verify archived bundles, receipts and the ledger; one verdict.
//!
//! Invariant: audit only reads. Signatures are judged now (or at `--at`) with the trust
//! store as it is today (rotations, revocations with dates, raised thresholds); a
//! signer's claimed signing time is shown, never relied on. Exit 0 only if every check
//! passed, 4 otherwise.

use super::common::{judge_time, load_trust};
use crate::archive::{read_bundle, Discard, Judge, Limits, Opened};
use crate::cli::AuditArgs;
use crate::db::conn;
use crate::db::ledger::{self, LedgerRow};
use crate::error::{Error, Result};
use crate::minisign::SignatureBox;
use crate::report::{short, table, Outcome, Report};
use crate::trust::{self, TrustStore, TrustVerdict};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Verdict {
    /// The bundle file, receipt file or database the check is about.
    pub subject: String,
    pub check: String,
    /// PASS, FAIL, or NOTE (a signature that does not count; the threshold decides).
    pub verdict: String,
    pub detail: String,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_by: Option<String>,
    pub ok: bool,
}

#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct AuditReport {
    pub ok: bool,
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
                    v.verdict.clone(),
                    v.detail.clone(),
                ]
            })
            .collect();
        let fails = self.verdicts.iter().filter(|v| v.verdict == "FAIL").count();
        format!(
            "audit: {} bundle(s), {} receipt(s){}\n\n{}\n\n{}",
            self.bundles.len(),
            self.receipts.len(),
            self.database
                .as_ref()
                .map(|d| format!(", ledger of database {d}"))
                .unwrap_or_default(),
            table(&["subject", "check", "verdict", "detail"], &rows),
            if self.ok {
                "AUDIT PASS: every check held".to_string()
            } else {
                format!("AUDIT FAIL: {fails} check(s) failed")
            }
        )
    }
    fn exit_code(&self) -> u8 {
        if self.ok {
            0
        } else {
            4
        }
    }
}

struct Verdicts(Vec<Verdict>);

impl Verdicts {
    fn add(&mut self, subject: &str, check: &str, ok: bool, detail: impl Into<String>) -> bool {
        self.0.push(Verdict {
            subject: subject.into(),
            check: check.into(),
            verdict: if ok { "PASS" } else { "FAIL" }.into(),
            detail: detail.into(),
        });
        ok
    }
}

/// Expand directories into their `*.tar.gz` files (sorted).
fn bundle_files(args: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = vec![];
    for a in args {
        if a.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(a)
                .map_err(|e| Error::io(format!("cannot read {}", a.display()), e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.to_string_lossy().ends_with(".tar.gz"))
                .collect();
            found.sort();
            if found.is_empty() {
                return Err(Error::usage(
                    format!("{} holds no *.tar.gz bundles", a.display()),
                    None,
                ));
            }
            out.extend(found);
        } else {
            out.push(a.clone());
        }
    }
    Ok(out)
}

fn audit_bundle(
    path: &Path,
    store: &TrustStore,
    at: Option<DateTime<Utc>>,
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
    let op = match read_bundle(path, Judge::StructureOnly, &Limits::default(), &mut Discard) {
        Ok(op) => op,
        Err(e) => {
            v.add(&subject, "structure and hashes", false, e.to_string());
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
    let mut ok = v.add(
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
    );
    let verdict = trust::evaluate(
        store,
        &op.manifest_bytes,
        &op.manifest,
        &op.bundle_id,
        &op.signatures,
        &trust::Judging::at(at),
    );
    for c in &verdict.signatures {
        let detail = format!(
            "{}{}{}",
            c.key_id,
            c.signed_at
                .as_ref()
                .map(|t| format!(" signed {t}"))
                .unwrap_or_default(),
            c.note
                .as_ref()
                .map(|n| format!(": {n}"))
                .unwrap_or_default()
        );
        // A signature that does not count is reported; whether the bundle fails is
        // the threshold's decision.
        v.0.push(Verdict {
            subject: subject.clone(),
            check: format!("signature {}", c.file),
            verdict: if c.counted {
                "PASS".into()
            } else {
                "NOTE".into()
            },
            detail,
        });
    }
    ok &= v.add(
        &subject,
        "threshold",
        verdict.met,
        format!(
            "{} distinct trusted key(s), {} required{}",
            verdict.distinct_keys,
            verdict.threshold,
            format!(" (judged at {}, {})", verdict.judged_at, verdict.judged_by)
        ),
    );
    if let (Some(exp), Some(at)) = (&m.bundle.expires, at) {
        if let Some(t) = trust::parse_rfc3339(exp) {
            ok &= v.add(&subject, "expiry", at <= t, format!("expires {exp}"));
        }
    }
    ab.trust = Some(verdict);
    ab.ok = ok;
    (ab, Some(op))
}

fn audit_receipt(
    path: &Path,
    store: &TrustStore,
    bundle_ids: &BTreeSet<String>,
    db_rows: Option<&[LedgerRow]>,
    v: &mut Verdicts,
) -> (AuditedReceipt, Vec<String>) {
    let subject = path.display().to_string();
    let mut ar = AuditedReceipt {
        file: path.to_path_buf(),
        bundle_id: None,
        event: None,
        signed_by: None,
        ok: false,
    };
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            v.add(&subject, "readable", false, e.to_string());
            return (ar, vec![]);
        }
    };
    let doc: serde_json::Value = match serde_json::from_slice(&bytes) {
        Ok(d) => d,
        Err(e) => {
            v.add(&subject, "receipt JSON", false, e.to_string());
            return (ar, vec![]);
        }
    };
    let s = |k: &str| doc.get(k).and_then(|x| x.as_str()).map(str::to_string);
    ar.bundle_id = s("bundle_id");
    ar.event = s("event");
    let mut ok = true;
    let id = ar.bundle_id.clone().unwrap_or_default();
    ok &= v.add(
        &subject,
        "names an audited bundle",
        bundle_ids.contains(&id),
        if bundle_ids.contains(&id) {
            format!("bundle {}", short(&id))
        } else {
            format!(
                "names bundle {}, which is not among the audited bundles",
                short(&id)
            )
        },
    );
    // Integrity: the receipt's ledger rows must hash to their row_hash, and the
    // receipt's summary must say what those rows say.
    let rows: Vec<LedgerRow> = doc
        .get("ledger")
        .cloned()
        .and_then(|l| serde_json::from_value(l).ok())
        .unwrap_or_default();
    let mut problems = vec![];
    if rows.is_empty() {
        problems.push("holds no ledger row".to_string());
    }
    for r in &rows {
        if r.compute_hash() != r.row_hash {
            problems.push(format!(
                "ledger row {} does not hash to its row_hash",
                r.seq
            ));
        }
        if r.bundle_id != id || Some(&r.event) != ar.event.as_ref() {
            problems.push(format!(
                "ledger row {} names another bundle or event",
                r.seq
            ));
        }
    }
    if let Some(last) = rows.last() {
        if s("fingerprint_after").as_deref() != Some(last.fingerprint_after.as_str()) {
            problems.push("fingerprint_after differs from its ledger row".into());
        }
        let tiers: Vec<String> = rows.iter().flat_map(|r| r.tier_names()).collect();
        let said: Vec<String> = doc
            .get("tiers")
            .cloned()
            .and_then(|t| serde_json::from_value(t).ok())
            .unwrap_or_default();
        if tiers != said {
            problems.push("tiers differ from its ledger rows".into());
        }
        let params: BTreeMap<String, String> = doc
            .get("params")
            .cloned()
            .and_then(|p| serde_json::from_value(p).ok())
            .unwrap_or_default();
        if serde_json::to_string(&params).ok().as_deref() != Some(last.params.as_str()) {
            problems.push("params differ from its ledger row".into());
        }
    }
    ok &= v.add(
        &subject,
        "integrity",
        problems.is_empty(),
        if problems.is_empty() {
            format!("{} ledger row(s) consistent", rows.len())
        } else {
            problems.join("; ")
        },
    );
    // Signature, when a RECEIPT.minisig sits beside it.
    let mut sig_path = path.as_os_str().to_owned();
    sig_path.push(".minisig");
    let sig_path = PathBuf::from(sig_path);
    if sig_path.exists() {
        let checked = std::fs::read_to_string(&sig_path)
            .map_err(|e| e.to_string())
            .and_then(|t| SignatureBox::parse(&t).map_err(|e| e.to_string()))
            .and_then(|sig| {
                let Some(k) = store.find(sig.key_id) else {
                    return Err(format!(
                        "signed by key {}, which is not in the trust store",
                        sig.key_id
                    ));
                };
                k.key
                    .verify(&bytes, &sig)
                    .map(|()| format!("{} ({:?})", sig.key_id, k.policy.role).to_lowercase())
                    .map_err(|_| {
                        format!(
                            "signature by {} does not verify over this receipt (edited?)",
                            sig.key_id
                        )
                    })
            });
        match checked {
            Ok(who) => {
                ar.signed_by = Some(who.clone());
                v.add(
                    &subject,
                    "receipt signature",
                    true,
                    format!("signed by {who}"),
                );
            }
            Err(e) => ok &= v.add(&subject, "receipt signature", false, e),
        }
    }
    if let Some(db_rows) = db_rows {
        for r in &rows {
            let found = db_rows.iter().find(|d| d.row_hash == r.row_hash);
            ok &= v.add(
                &subject,
                &format!("ledger row {}", r.seq),
                found == Some(r),
                match found {
                    Some(d) if d == r => {
                        format!("present in the database ledger ({})", short(&r.row_hash))
                    }
                    Some(_) => "the database's row with this hash differs".into(),
                    None => format!(
                        "row_hash {} is missing from the database ledger",
                        short(&r.row_hash)
                    ),
                },
            );
        }
    }
    ar.ok = ok;
    (ar, rows.into_iter().map(|r| r.row_hash).collect())
}

pub fn run(args: AuditArgs) -> Result<Outcome> {
    let store = load_trust(&args.trust.trust)?;
    let at = match &args.at {
        Some(_) => Some(judge_time(args.at.as_deref())?),
        None => None,
    };
    let files = bundle_files(&args.bundles)?;
    let mut v = Verdicts(vec![]);
    let mut bundles = vec![];
    let mut opened = vec![];
    for f in &files {
        let (ab, op) = audit_bundle(f, &store, at, &mut v);
        bundles.push(ab);
        if let Some(op) = op {
            opened.push(op);
        }
    }
    let ids: BTreeSet<String> = opened.iter().map(|o| o.bundle_id.clone()).collect();
    let names: BTreeSet<String> = opened
        .iter()
        .map(|o| o.manifest.bundle.name.clone())
        .collect();

    let mut database = None;
    let mut db_rows = None;
    if args.db.is_some() {
        let default_db = opened
            .first()
            .map(|o| o.manifest.target.database.clone())
            .unwrap_or_else(|| "postgres".into());
        let spec = conn::resolve(args.db.as_deref(), &default_db)?;
        let mut c = spec.connect()?;
        let mut tx = c
            .build_transaction()
            .read_only(true)
            .start()
            .map_err(|e| crate::db::sql_err("BEGIN READ ONLY", &e))?;
        let name: String = tx
            .query_one("SELECT current_database()::text", &[])
            .map_err(|e| crate::db::sql_err("audit", &e))?
            .get(0);
        let rows = ledger::read_all(&mut tx)?;
        tx.rollback()
            .map_err(|e| crate::db::sql_err("ROLLBACK", &e))?;
        let subject = format!("database {name}");
        match ledger::verify_chain(&rows) {
            None => v.add(
                &subject,
                "ledger hash chain",
                true,
                format!("{} row(s) chain correctly", rows.len()),
            ),
            Some((seq, why)) => v.add(
                &subject,
                "ledger hash chain",
                false,
                format!("broken at row {seq}: {why}"),
            ),
        };
        database = Some(name);
        db_rows = Some(rows);
    }
    let mut receipts = vec![];
    let mut receipted = BTreeSet::new();
    for r in &args.receipts {
        let (ar, hashes) = audit_receipt(r, &store, &ids, db_rows.as_deref(), &mut v);
        receipts.push(ar);
        receipted.extend(hashes);
    }
    if let (Some(rows), Some(dbname)) = (&db_rows, &database) {
        let subject = format!("database {dbname}");
        for r in rows.iter().filter(|r| names.contains(&r.bundle_name)) {
            let known = ids.contains(&r.bundle_id);
            v.add(
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
            );
            if !args.receipts.is_empty() {
                let has = receipted.contains(&r.row_hash);
                v.add(
                    &subject,
                    &format!("ledger row {} receipt", r.seq),
                    has,
                    if has {
                        "matched by a receipt".into()
                    } else {
                        "no receipt given for this row".to_string()
                    },
                );
            }
        }
    }
    let ok = v.0.iter().all(|x| x.verdict != "FAIL");
    Ok(Box::new(AuditReport {
        ok,
        at: at.map(|t| t.to_rfc3339()),
        bundles,
        receipts,
        database,
        verdicts: v.0,
    }))
}
