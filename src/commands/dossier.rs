//! `airlock dossier`: one self-contained HTML page about a release, for the approver
//! who reads it before signing and the auditor who files it after. It renders the
//! results the other commands produce (`inspect`, `trust list`, `plan` with `--db`, a
//! saved `rehearse --json`, the approvals' quorum, receipts); it judges nothing of
//! its own.
//!
//! Invariant: a page is written only about a bundle that verified (otherwise exit 4,
//! nothing written), only from a rehearsal report or receipt of that very bundle
//! (otherwise exit 2, nothing written), atomically (a temp file renamed; an existing
//! page only with `--force`), and the same inputs at the same `--at` give the same
//! bytes. A NO-GO or BLOCKED verdict is written on the page, not refused: the page is
//! a document, and its exit code says it was written.

mod changes;
mod chart;
pub(crate) mod facts;
mod happened;
pub(crate) mod history;
mod html;
mod markdown;
mod news;
mod page;
mod people;
mod sql;
mod status;
use super::release::subject;

use super::common::{judge_time, verdicts, AtomicFile, NewFileMode};
use crate::cli::{DbArgs, DossierArgs, PassphraseArgs, PlanArgs};
use crate::error::{Error, Result};
use crate::report::{short, Outcome, Report};
use crate::trust::{rfc3339, TrustStore};
use crate::verified::VerifiedBundle;
use facts::{Dossier, Matrix, MatrixFrom, ReceiptEvidence, RehearsalEvidence};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// One section of the page, in page order.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Section {
    /// Its anchor on the page (`#matrix`).
    pub id: String,
    pub title: String,
    /// The sources its facts come from ([`SourceRow::id`]).
    pub sources: Vec<String>,
}

/// Where facts on the page come from.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct SourceRow {
    /// `bundle`, `trust-store`, `command-line`, `database`, `rehearsal`, `approvals`,
    /// `receipt-N`.
    pub id: String,
    pub what: String,
    /// The time its facts are of (RFC 3339), when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
}

/// What `airlock dossier` wrote.
#[derive(Serialize, schemars::JsonSchema)]
pub struct DossierReport {
    /// The page written.
    pub out: PathBuf,
    /// SHA-256 of the page's bytes (what `sha256sum FILE` prints).
    pub sha256: String,
    pub bytes: u64,
    /// The dossier digest: what the page is about (bundle, params, the trust store's
    /// keys); `airlock approve` prints the digest of what it signs.
    pub digest: String,
    pub bundle_id: String,
    pub bundle_name: String,
    pub bundle_version: String,
    /// GO, BLOCKED, NO-GO or CANNOT-TELL (`plan`'s, with `--db`), NOT-ASKED (no database), or
    /// APPLIED (with `--db`, the ledger shows every tier applied as of the page's
    /// time: the page records what happened); with `--receipt`, what the receipts
    /// record: APPLIED, PARTIAL, ROLLED-BACK or NOT-APPLIED.
    pub verdict: String,
    /// Every NO-GO fact the page holds, as its banner states them before any
    /// instruction: apply would refuse, the rehearsal FAILED, statements the data
    /// would make fail (the release's, the rollback's), what the release destroys.
    pub no_go: Vec<String>,
    pub sections: Vec<Section>,
    pub sources: Vec<SourceRow>,
    /// Everything the page says, as the page renders it.
    pub facts: Dossier,
}

impl Report for DossierReport {
    fn human(&self) -> String {
        let titles: Vec<&str> = self.sections.iter().map(|s| s.title.as_str()).collect();
        // A page that is not GO says why where it was made, not only on the page (a
        // gate role left off is a NO-GO page otherwise written in silence).
        let why = self
            .facts
            .plan
            .as_ref()
            .filter(|_| {
                matches!(
                    self.verdict.as_str(),
                    "GO" | "BLOCKED" | "NO-GO" | "CANNOT-TELL"
                )
            })
            .and_then(|p| p.first_failure())
            .map(|c| {
                let name = serde_json::to_value(c.check)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                let mut line = format!("\n  {} because {name}: {}", self.verdict, c.evidence);
                if let Some(h) = &c.hint {
                    line.push_str(&format!("\n  hint: {h}"));
                }
                line
            })
            .unwrap_or_default();
        let text = format!(
            "wrote {} ({} bytes, sha256 {}): {} {} (bundle {}): {}\n  dossier digest: {} (of the bundle, its params and the trust store's keys, as airlock approve prints it; not of this page's bytes: their sha256 is above)\n  sections: {}\n  sources: {}",
            self.out.display(),
            self.bytes,
            self.sha256,
            self.bundle_name,
            self.bundle_version,
            short(&self.bundle_id),
            self.verdict,
            self.digest,
            titles.join(", "),
            self.sources
                .iter()
                .map(|s| s.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        let news: String = self
            .no_go
            .iter()
            .map(|n| format!("\n  read first: {}", crate::report::terminal_safe(n)))
            .collect();
        text + &why + &news
    }
}

/// An existing `--out` is refused before any work unless `--force`.
fn check_out(args: &DossierArgs) -> Result<()> {
    if args.out.exists() && !args.force {
        return Err(Error::usage(
            format!("{} already exists; nothing was written", args.out.display()),
            Some("choose another --out, or pass --force to replace it".into()),
        ));
    }
    Ok(())
}

/// SHA-256 of bytes, lowercase hex.
fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A saved `rehearse --json` of this bundle, or a usage error naming what is wrong.
fn read_rehearsal(path: &Path, vb: &VerifiedBundle) -> Result<RehearsalEvidence> {
    let refuse = |why: String| {
        Error::usage(
            format!("{}: {why}; nothing was written", path.display()),
            Some(
                "give --rehearsal the file `airlock rehearse BUNDLE … --json > FILE` wrote for this bundle"
                    .into(),
            ),
        )
    };
    let bytes = airlock_base::bounded::read_capped(path, airlock_base::bounded::REHEARSAL)
        .map_err(|e| refuse(e.to_string()))?;
    let report: crate::db::rehearse::cycle::RehearseReport = serde_json::from_slice(&bytes)
        .map_err(|e| refuse(format!("not a rehearsal report ({e})")))?;
    if report.bundle_id != vb.id() {
        return Err(refuse(format!(
            "a rehearsal of bundle {}, not of this bundle {}",
            short(&report.bundle_id),
            short(vb.id())
        )));
    }
    Ok(RehearsalEvidence {
        file: path.display().to_string(),
        sha256: sha256_hex(&bytes),
        report,
    })
}

/// A receipt of this bundle, with its signature judged as `audit` judges it.
fn read_receipt(
    path: &Path,
    vb: &VerifiedBundle,
    store: &TrustStore,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<ReceiptEvidence> {
    let refuse = |why: String| {
        Error::usage(
            format!("{}: {why}; nothing was written", path.display()),
            Some(
                "give --receipt a receipt `airlock apply` or `rollback` wrote for this bundle"
                    .into(),
            ),
        )
    };
    let bytes = airlock_base::bounded::read_capped(path, airlock_base::bounded::RECEIPT)
        .map_err(|e| refuse(e.to_string()))?;
    let receipt: crate::db::apply::Receipt =
        serde_json::from_slice(&bytes).map_err(|e| refuse(format!("not a receipt ({e})")))?;
    if receipt.bundle_id != vb.id() {
        return Err(refuse(format!(
            "a receipt of bundle {}, not of this bundle {}",
            short(&receipt.bundle_id),
            short(vb.id())
        )));
    }
    let sig_path = crate::approval::signature_path(path);
    let signature = match std::fs::metadata(&sig_path) {
        Ok(m) if m.is_file() => {
            let text = airlock_base::bounded::read_capped_string(
                &sig_path,
                airlock_base::bounded::SIGNATURE,
            )
            .map_err(|e| refuse(e.to_string()))?;
            let sig = crate::minisign::SignatureBox::parse(&text)
                .map_err(|e| refuse(format!("its signature {}: {e}", sig_path.display())))?;
            let claim = crate::trust::ReceiptClaim {
                tag: crate::trust::RECEIPT_TAG,
                bundle_id: &receipt.bundle_id,
                event: &receipt.event,
                ledger_seq: receipt.ledger.last().map_or(0, |l| l.seq),
            };
            let name = sig_path.display().to_string();
            Some(crate::trust::judge_receipt_signature(
                store, &bytes, &name, &sig, &claim, at,
            ))
        }
        _ => None,
    };
    Ok(ReceiptEvidence {
        file: path.display().to_string(),
        sha256: sha256_hex(&bytes),
        signature,
        receipt,
    })
}

/// Most receipt files read from one `--receipt DIR`.
const MAX_RECEIPTS: usize = 1000;

/// The receipts `--receipt` names: a file (it must be this bundle's), or a directory
/// whose `*.receipt.json` files of this bundle are read (the others, receipts of other
/// releases, are left out as `audit` leaves them out); all of them in the order they
/// ran (finished, then ledger row), never their names' text order (apply-15 before
/// apply-4).
fn receipts(
    given: &[PathBuf],
    vb: &VerifiedBundle,
    store: &TrustStore,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<ReceiptEvidence>> {
    let mut out = vec![];
    for path in given {
        if !path.is_dir() {
            out.push(read_receipt(path, vb, store, at)?);
            continue;
        }
        let listed = std::fs::read_dir(path)
            .map_err(|e| Error::io(format!("cannot list {}", path.display()), e))?;
        let mut files: Vec<PathBuf> = listed
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && p.to_string_lossy().ends_with(".receipt.json"))
            .collect();
        files.sort();
        if files.len() > MAX_RECEIPTS {
            return Err(Error::usage(
                format!(
                    "{} holds more than {MAX_RECEIPTS} receipts; nothing was written",
                    path.display()
                ),
                Some("name the receipts of this release one by one with --receipt FILE".into()),
            ));
        }
        for f in files {
            match read_receipt(&f, vb, store, at) {
                Ok(r) => out.push(r),
                // Another release's receipt in the same directory is not this page's.
                Err(_) if !names_this_bundle(&f, vb) => {}
                Err(e) => return Err(e),
            }
        }
    }
    out.sort_by_cached_key(|r| {
        (
            r.receipt.finished_at.clone(),
            r.receipt.ledger.last().map_or(0, |l| l.seq),
        )
    });
    Ok(out)
}

/// Whether a receipt file names this bundle's id at all (a receipt of another release
/// in a directory is left out; a damaged receipt of this one is refused).
fn names_this_bundle(path: &Path, vb: &VerifiedBundle) -> bool {
    airlock_base::bounded::read_capped(path, airlock_base::bounded::RECEIPT)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .is_some_and(|v| v["bundle_id"].as_str() == Some(vb.id()))
}

/// `plan`'s arguments for the dossier's `--db`: every check `apply` makes, as `airlock
/// plan BUNDLE --db CONN --param … --approval …` would make them.
pub(crate) fn plan_args(args: &DossierArgs) -> PlanArgs {
    PlanArgs {
        bundle: args.bundle.clone(),
        trust: args.trust.clone(),
        db: DbArgs {
            db: args.db.clone(),
            statement_timeout: "0".into(),
        },
        params: args.params.clone(),
        approvals: args.approvals.clone(),
        through: None,
        allow_drift: false,
        resume: false,
        rollback: false,
        gate: crate::cli::GateRoleArgs {
            gate_role: args.gate_role.clone().or_else(|| {
                std::env::var("AIRLOCK_GATE_ROLE")
                    .ok()
                    .filter(|r| !r.is_empty())
            }),
        },
        sign_receipt: None,
        pass: PassphraseArgs {
            passphrase_file: None,
        },
        predict_timeout: args.predict_timeout,
    }
}

/// The matrix without a database: the rows `plan` makes before it connects, the
/// quorum of the files given, and the database's rows named as not asked.
fn verification_matrix(
    vb: &VerifiedBundle,
    params_row: crate::db::plan::Check,
    quorum: Option<&airlock_bundle::approval::QuorumReport>,
) -> Matrix {
    use crate::db::plan::{Check, CheckName, CheckVerdict};
    use crate::exit::Exit;
    let mut checks = vec![
        crate::commands::deploy::gate::signatures_check(vb),
        params_row,
    ];
    // Built from `Check::ok` and changed: the row is plan's own type, whatever fields
    // it gains.
    if let Some(q) = quorum {
        let mut row = Check::ok(
            CheckName::Gates,
            format!(
                "the signed approvals only (the database's own gates were not asked): {}",
                q.summary()
            ),
        );
        if !q.met {
            row.verdict = CheckVerdict::Blocked;
            row.exit_code = Exit::Blocked;
        }
        checks.push(row);
    }
    let mut database = Check::ok(
        CheckName::Database,
        "not asked: no --db. The database's checks (name guard, ledger, gates, preflight, locks and sizes, predictions) are not on this page",
    );
    database.verdict = CheckVerdict::Skipped;
    database.hint =
        Some("airlock dossier … --db CONN (or airlock plan) asks them, read-only".into());
    checks.push(database);
    Matrix {
        from: MatrixFrom::Verification,
        checks,
    }
}

/// The quorum of the approval files, judged offline at `at` (no database).
fn offline_quorum(
    vb: &VerifiedBundle,
    store: &TrustStore,
    params: &BTreeMap<String, String>,
    paths: &[PathBuf],
    at: chrono::DateTime<chrono::Utc>,
) -> Result<Option<airlock_bundle::approval::QuorumReport>> {
    let m = vb.manifest();
    let Some(r) = m.ratification.as_ref() else {
        return Ok(None);
    };
    let read = crate::approval::read_approvals(paths).map_err(|e| {
        Error::usage(
            e.to_string(),
            Some("name approval files written by `airlock approve` (FILE, with FILE.minisig beside it) or a directory of them".into()),
        )
    })?;
    let claim = crate::approval::RunClaim {
        bundle_id: vb.id(),
        manifest: m,
        params,
    };
    Ok(Some(crate::approval::judge_quorum(
        store, r, &claim, &read, at,
    )))
}

/// What `plan` said of the database, and when it was asked (this host's clock);
/// what `plan --rollback` predicts; and the release's history as of the page's time.
pub(crate) struct Asked {
    pub report: crate::db::plan::PlanReport,
    pub at: String,
    /// Absent when the ledger could not be read (the matrix says why: the database
    /// row, the ledger row).
    pub history: Option<history::History>,
    pub rollback: facts::RollbackPrediction,
}

/// Ask the database as `plan` and `plan --rollback` do, now, and read the release's
/// ledger rows as of `page_at`.
pub(crate) fn ask(
    args: &DossierArgs,
    store: &TrustStore,
    vb: &VerifiedBundle,
    conn: &crate::db::conn::ConnSpec,
    page_at: chrono::DateTime<chrono::Utc>,
) -> Result<Asked> {
    let at = rfc3339(chrono::Utc::now());
    let plan_args = plan_args(args);
    let report = crate::commands::deploy::gate::plan_on(&plan_args, store, vb, conn)?;
    let history = history::read(conn, store, vb.id(), page_at).ok();
    let rollback = facts::RollbackPrediction::of(vb, || {
        crate::commands::deploy::gate::rollback_plan_on(&plan_args, vb, conn)
    });
    Ok(Asked {
        report,
        at,
        history,
        rollback,
    })
}

/// Every fact the page renders, from the inputs given.
fn gather(
    args: &DossierArgs,
    store: &TrustStore,
    vb: &VerifiedBundle,
    at: chrono::DateTime<chrono::Utc>,
    asked: Option<Asked>,
) -> Result<Dossier> {
    let rehearsal = args
        .rehearsal
        .as_deref()
        .map(|p| read_rehearsal(p, vb))
        .transpose()?;
    // A receipt of a run committed after the page's time is named, never shown as what
    // ran by then: judged by its last ledger row's time (the server's, at commit, as
    // the history's rows), else by when it finished; an unreadable time is later.
    let (receipts, later): (Vec<_>, Vec<_>) = receipts(&args.receipts, vb, store, at)?
        .into_iter()
        .partition(|r| {
            let when = r
                .receipt
                .ledger
                .last()
                .map_or(&r.receipt.finished_at, |l| &l.at);
            crate::trust::parse_rfc3339(when).is_some_and(|t| t <= at)
        });
    let (params_row, params) =
        crate::commands::deploy::gate::params_check(&args.params.params, &vb.manifest().params);
    let offline = offline_quorum(vb, store, &params, &args.approvals.approvals, at)?;
    let (plan, database_at, history, rollback_plan) = match asked {
        Some(a) => (Some(a.report), Some(a.at), a.history, Some(a.rollback)),
        None => (None, None, None, None),
    };
    let matrix = match &plan {
        Some(p) => Matrix {
            from: MatrixFrom::Database,
            checks: p.checks.clone(),
        },
        None => verification_matrix(vb, params_row, offline.as_ref()),
    };
    let approvals = match &plan {
        Some(p) => p
            .gates
            .as_ref()
            .and_then(|g| g.ratification.clone())
            .or(offline),
        None => offline,
    };
    let subject = subject::Subject::of(vb, store, &params);
    Ok(Dossier {
        format: facts::FORMAT.into(),
        airlock_version: env!("CARGO_PKG_VERSION").into(),
        generated_at: rfc3339(at),
        generated_by: if args.at.is_some() { "--at" } else { "now" }.into(),
        digest: subject.digest(),
        subject,
        bundle_file: args.bundle.display().to_string(),
        verification: crate::commands::release::verify::of_verified(args.bundle.clone(), vb),
        trust_store: crate::commands::release::trust::listing_at(store, at),
        static_locks: plan.is_none().then(|| facts::static_locks(vb)),
        matrix,
        plan,
        database_at,
        tiers: facts::tiers(vb),
        checks: facts::check_files(vb),
        rollback: facts::rollback_files(vb),
        rollback_plan,
        history,
        rehearsal,
        approvals,
        receipts,
        receipts_later: later.into_iter().map(|r| r.file).collect(),
    })
}

/// Write `bytes` to `out` through a temp file beside it, renamed into place.
fn write_page(out: &Path, bytes: &[u8], force: bool) -> Result<()> {
    let mut f = AtomicFile::new(out, NewFileMode::Public)?;
    f.file()
        .write_all(bytes)
        .map_err(|e| Error::io(format!("cannot write {}", out.display()), e))?;
    f.commit(force)
}

pub fn run(args: DossierArgs) -> Result<Outcome> {
    check_out(&args)?;
    let at = judge_time(args.at.as_deref())?;
    // Judged with the store `approve` judges with: the one this bundle's carried trust
    // update (if any) brings the host to, so both name the same digest.
    let store =
        crate::commands::release::carried::load_trust_for_bundle(&args.trust.trust, &args.bundle)?;
    // Judged as `audit` judges it: on the evidence given, whether or not the threshold
    // needs it (a key revoked since counts on it here too); without any, as it is.
    let vb = match on_evidence(&args, &store, at) {
        Some(vb) => vb,
        None => VerifiedBundle::load(&args.bundle, &store, at, &verdicts())?,
    };
    let asked = match &args.db {
        Some(db) => {
            let conn = crate::db::conn::resolve_for(Some(db), &vb.manifest().target.database)?;
            Some(ask(&args, &store, &vb, &conn, at)?)
        }
        None => None,
    };
    Ok(Box::new(write(&args, &store, &vb, at, asked)?))
}

/// The bundle verified as `audit` verifies it, for the auditor: at `--at`, with the
/// evidence `audit` accepts that it existed — the ledger of `--db`, or a `--receipt`
/// signed by an operator key that counts — so a signature by a key revoked or retired
/// since counts when that evidence shows it came first (the earliest evidence is
/// used). Asked first, whatever the threshold needs, so that the page and `audit`
/// judge every signature alike (issue 88). `None` without evidence, or when it does
/// not verify even so.
fn on_evidence(
    args: &DossierArgs,
    store: &TrustStore,
    at: chrono::DateTime<chrono::Utc>,
) -> Option<VerifiedBundle> {
    // Whatever keeps the evidence from being read (an unreadable archive, a database
    // that cannot be reached), the bundle's own verification error is the one to see.
    let Ok(opened) = crate::archive::read_bundle(
        &args.bundle,
        crate::archive::Judge::StructureOnly,
        &crate::archive::Limits::default(),
        &mut crate::archive::Discard,
    ) else {
        return None;
    };
    let target = &opened.manifest.target.database;
    let from_ledger = args.db.as_ref().and_then(|db| {
        super::audit::ledger_evidence(db, target, store, &opened.bundle_id)
            .ok()
            .flatten()
    });
    let from_receipts = super::audit::receipt_evidence(&args.receipts, store, &opened.bundle_id)
        .ok()
        .flatten();
    let existed = [from_ledger, from_receipts]
        .into_iter()
        .flatten()
        .min_by_key(|e| e.time)?;
    let mut judging = crate::trust::Judging::at(args.at.is_some().then_some(at));
    judging.existed = Some(existed);
    VerifiedBundle::load_judging(&args.bundle, store, judging, &verdicts()).ok()
}

/// Gather the facts, render the page and write it (`asked`: the database's answers,
/// when `--db` was given).
pub(crate) fn write(
    args: &DossierArgs,
    store: &TrustStore,
    vb: &VerifiedBundle,
    at: chrono::DateTime<chrono::Utc>,
    asked: Option<Asked>,
) -> Result<DossierReport> {
    let facts = gather(args, store, vb, at, asked)?;
    let rendered = page::render(&facts, vb);
    let bytes = rendered.html.into_bytes();
    write_page(&args.out, &bytes, args.force)?;
    let m = vb.manifest();
    Ok(DossierReport {
        out: args.out.clone(),
        sha256: sha256_hex(&bytes),
        bytes: bytes.len() as u64,
        digest: facts.digest.clone(),
        bundle_id: vb.id().into(),
        bundle_name: m.bundle.name.clone(),
        bundle_version: m.bundle.version.clone(),
        verdict: status::verdict_word(&facts).into(),
        no_go: news::News::of(&facts).all(),
        sections: rendered.sections,
        sources: rendered.sources,
        facts,
    })
}
