//! The audit for people: one line per bundle, receipt (with what it says ran), ledger
//! (with what ran of each release it is for) and file left out, the checks that
//! failed (with their basis) and notes under their line, the verdict, and what would
//! make it VERIFIED. `--json` keeps every check with its basis.

use super::{AuditReport, AuditResult, AuditedBundle, AuditedReceipt, Finding, Verdict};
use crate::report::{short, terminal_safe};
use crate::style::{self, Paint};

/// The whole human report.
pub(super) fn render(r: &AuditReport) -> String {
    let mut lines = vec![header(r), String::new()];
    for b in &r.bundles {
        let subject = b.file.display().to_string();
        item(&mut lines, r, &subject, &subject, &bundle_summary(b));
        lines.extend(evidence_lines(b));
    }
    // Receipts of one directory under its name, each by its file name.
    let mut dir: Option<&std::path::Path> = None;
    for rc in &r.receipts {
        let subject = rc.file.display().to_string();
        let parent = rc.file.parent().filter(|p| !p.as_os_str().is_empty());
        if parent.is_some() && parent != dir {
            lines.push(format!(
                "in {}/:",
                parent.unwrap_or(std::path::Path::new("")).display()
            ));
        }
        dir = parent;
        let shown = match parent {
            Some(_) => rc
                .file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| subject.clone()),
            None => subject.clone(),
        };
        item(&mut lines, r, &subject, &shown, &receipt_summary(rc));
    }
    for l in &r.ledgers {
        let subject = match &l.file {
            Some(f) => format!("ledger export {} (database {})", f.display(), l.database),
            None => format!("database {}", l.database),
        };
        let mut chain = if l.chain_ok {
            "hash chain intact".to_string()
        } else {
            "hash chain broken".to_string()
        };
        if let Some(keeper) = &l.kept_by {
            chain.push_str(&format!(", kept by {keeper:?}"));
        }
        let ran: String = l
            .ran
            .iter()
            .map(|x| format!("; {}", x.ledger_line()))
            .collect();
        item(
            &mut lines,
            r,
            &subject,
            &subject,
            &format!("{} row(s), {chain}{ran}", l.rows),
        );
    }
    // A database whose receipts name another server, when no ledger line carries it.
    for v in r.verdicts.iter().filter(|v| v.check == super::moved::CHECK) {
        if !r
            .ledgers
            .iter()
            .any(|l| l.file.is_none() && v.subject == format!("database {}", l.database))
        {
            lines.push(format!(
                "{}  {}: {}",
                pad("NOTE", None),
                terminal_safe(&v.subject),
                terminal_safe(&v.detail)
            ));
        }
    }
    // A database of a --fleet the audit could not read: named, failed.
    for v in r.verdicts.iter().filter(|v| v.check == super::UNAUDITED) {
        item(&mut lines, r, &v.subject, &v.subject, "no ledger read");
    }
    for left in &r.left_out {
        lines.push(format!(
            "{}  {}: {}",
            pad("LEFT OUT", None),
            left.file.display(),
            terminal_safe(&left.reason)
        ));
    }
    lines.push(String::new());
    let paint = match r.result {
        AuditResult::Pass => Paint::Good,
        AuditResult::Fail => Paint::Bad,
        AuditResult::Unverified => Paint::Warn,
    };
    lines.push(style::paint(paint, &verdict_line(r)));
    for step in &r.to_verify {
        lines.push(format!("to make it PASS: {step}"));
    }
    if r.result != AuditResult::Pass {
        lines.push("(--json lists every check with its basis)".into());
    }
    lines.join("\n")
}

/// `audit: 2 bundle(s), 6 receipt file(s), ledger(s): database shop`.
fn header(r: &AuditReport) -> String {
    let files = r.receipts.len() + r.left_out.len();
    let left = if r.left_out.is_empty() {
        String::new()
    } else {
        format!(" ({} left out)", r.left_out.len())
    };
    let ledgers = if r.ledgers.is_empty() {
        "no ledger (--db, --ledger)".to_string()
    } else {
        let names: Vec<String> = r
            .ledgers
            .iter()
            .map(|l| match &l.file {
                Some(f) => format!("export {} of database {}", f.display(), l.database),
                None => format!("database {}", l.database),
            })
            .collect();
        format!("ledger of {}", names.join(", "))
    };
    format!(
        "audit: {} bundle(s), {files} receipt file(s){left}, {ledgers}; trust store {}",
        r.bundles.len(),
        match r.trust_store_version {
            Some(v) => format!("version {v}"),
            None => "without a version".to_string(),
        }
    )
}

/// The audit's verdict in one line (also what `--quiet` prints when it is not PASS).
pub(super) fn verdict_line(r: &AuditReport) -> String {
    let count = |f: Finding| r.verdicts.iter().filter(|v| v.verdict == f).count();
    match r.result {
        AuditResult::Pass => "AUDIT PASS: every check held".to_string(),
        AuditResult::Fail => format!(
            "AUDIT FAIL: {} check(s) failed, {} unverified",
            count(Finding::Fail),
            count(Finding::Unverified)
        ),
        AuditResult::Unverified => {
            let items: std::collections::BTreeSet<&str> = r
                .verdicts
                .iter()
                .filter(|v| v.verdict == Finding::Unverified)
                .map(|v| v.subject.as_str())
                .collect();
            format!(
                "AUDIT UNVERIFIED: nothing failed, but {} item(s) rest on nothing an auditor can rely on ({} check(s))",
                items.len(),
                count(Finding::Unverified)
            )
        }
    }
}

/// A subject's line (`shown` as its name), its verdict the worst of its checks, then
/// each failed check with its basis and each note.
fn item(lines: &mut Vec<String>, r: &AuditReport, subject: &str, shown: &str, summary: &str) {
    let mine: Vec<&Verdict> = r.verdicts.iter().filter(|v| v.subject == subject).collect();
    let worst = if mine.iter().any(|v| v.verdict == Finding::Fail) {
        Finding::Fail
    } else if mine.iter().any(|v| v.verdict == Finding::Unverified) {
        Finding::Unverified
    } else {
        Finding::Pass
    };
    let paint = match worst {
        Finding::Fail => Some(Paint::Bad),
        Finding::Unverified => Some(Paint::Warn),
        _ => Some(Paint::Good),
    };
    lines.push(format!(
        "{}  {shown}: {}",
        pad(worst.as_str(), paint),
        terminal_safe(summary)
    ));
    for v in mine {
        match v.verdict {
            Finding::Fail => {
                lines.push(format!(
                    "    FAIL because {}: {}",
                    v.check,
                    terminal_safe(&v.detail)
                ));
                lines.push(format!("      basis: {}", terminal_safe(&v.basis)));
            }
            // "Not checked against a ledger" is on the line already.
            Finding::Note if v.check != "ledger" => {
                lines.push(format!(
                    "    note: {}: {}",
                    v.check,
                    terminal_safe(&v.detail)
                ));
            }
            _ => {}
        }
    }
}

/// Why each signature by a key revoked or retired since counts: the evidence, from
/// before the end of its trust, that the bundle existed (its judgement's basis).
fn evidence_lines(b: &AuditedBundle) -> Vec<String> {
    let Some(trust) = &b.trust else {
        return vec![];
    };
    trust
        .signatures
        .iter()
        .filter(|sig| sig.counted)
        .filter_map(|sig| {
            let e = sig.evidence.as_ref()?;
            let end = if sig.basis.contains("is revoked since") {
                "the revocation"
            } else {
                "the end of its key's trust (not_after)"
            };
            Some(format!(
                "    signature {} by key {} counts: evidence from before {end}: {} shows the bundle existed by {}",
                terminal_safe(&sig.file),
                sig.key_id,
                terminal_safe(&e.source),
                e.by
            ))
        })
        .collect()
}

/// A verdict word padded to one width, then painted.
fn pad(word: &str, paint: Option<Paint>) -> String {
    let padded = format!("{word:<10}");
    match paint {
        Some(p) => style::paint(p, &padded),
        None => padded,
    }
}

fn bundle_summary(b: &AuditedBundle) -> String {
    let (Some(name), Some(version)) = (&b.name, &b.version) else {
        return "could not be read".into();
    };
    let keys = b
        .trust
        .as_ref()
        .map(|t| format!(", {} of {} trusted key(s)", t.distinct_keys, t.threshold))
        .unwrap_or_default();
    let keys = match b.trust_store_version {
        Some(v) => format!("{keys} (trust store version {v})"),
        None => keys,
    };
    let fleet = b
        .target_database
        .as_ref()
        .map(|t| format!(", for {}", t.describe()))
        .unwrap_or_default();
    format!(
        "{name} {version} seq {} (id {}){keys}{fleet}",
        b.sequence.unwrap_or_default(),
        short(b.bundle_id.as_deref().unwrap_or(""))
    )
}

fn receipt_summary(rc: &AuditedReceipt) -> String {
    let Some(event) = &rc.event else {
        return "could not be read".into();
    };
    let signature = match (&rc.signed_by, &rc.signature) {
        (Some(k), _) => format!("signed by {k}"),
        (None, Some(_)) => "its signature does not count".into(),
        (None, None) => "unsigned".into(),
    };
    let ledger = match &rc.checked_against {
        Some(l) if l.starts_with("ledger export") => "checked against its export".to_string(),
        Some(_) => "checked against its ledger".to_string(),
        None => format!(
            "not checked against a ledger (database {})",
            rc.database.as_deref().unwrap_or("not named")
        ),
    };
    let unvouched = if rc.unverified_fields.is_empty() {
        String::new()
    } else {
        format!(
            ", {} field(s) no signature or ledger vouches for ({})",
            rc.unverified_fields.len(),
            rc.unverified_fields
                .iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
                + if rc.unverified_fields.len() > 5 {
                    ", …"
                } else {
                    ""
                }
        )
    };
    let ran = rc
        .ran
        .as_ref()
        .map(|x| format!("; {}", x.receipt_line()))
        .unwrap_or_default();
    format!(
        "{event} {} {}, {signature}, {ledger}{unvouched}{ran}",
        rc.bundle_name.as_deref().unwrap_or("(no name)"),
        rc.bundle_version.as_deref().unwrap_or("(no version)"),
    )
}
