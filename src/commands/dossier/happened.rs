//! What happened to the release, as the receipts given record it: a page made for the
//! archive (`--receipt`) leads with it (applied, partially applied, rolled back, not
//! applied) rather than with what a new apply would meet. The ledger of `--db`, when it
//! shows every tier applied, says it first ([`super::facts::archived`]).
//!
//! Invariant: judged from the receipts the page shows (those of its time), in the
//! order of their ledger rows, each database's receipts apart (a fleet's receipts are
//! one history per tenant, never one history); the release's own tiers (its manifest)
//! are counted, nothing is asked of a database.

use super::facts::{Dossier, ReceiptEvidence};

/// What the receipts record, in one word and one line.
pub(crate) struct Happened {
    /// APPLIED, PARTIAL, ROLLED-BACK or NOT-APPLIED: the page's verdict word.
    pub word: &'static str,
    /// The banner's line, in plain words.
    pub said: String,
}

/// What the receipts given record, when the page shows any. Receipts of several
/// databases (a fleet's) are judged per database: the page is APPLIED only when every
/// database they name is, and says which database stands otherwise.
pub(crate) fn of_receipts(d: &Dossier) -> Option<Happened> {
    let mut databases: Vec<&str> = vec![];
    for r in &d.receipts {
        if !databases.contains(&r.receipt.database.as_str()) {
            databases.push(&r.receipt.database);
        }
    }
    if databases.len() <= 1 {
        return of_one(d, &d.receipts.iter().collect::<Vec<_>>());
    }
    let each: Vec<(&str, Happened)> = databases
        .iter()
        .filter_map(|db| {
            let its: Vec<&ReceiptEvidence> = d
                .receipts
                .iter()
                .filter(|r| r.receipt.database == *db)
                .collect();
            of_one(d, &its).map(|h| (*db, h))
        })
        .collect();
    let n = each.len();
    let first = each.first()?.1.word;
    if each.iter().all(|(_, h)| h.word == first) {
        let (_, last) = each.last()?;
        return Some(Happened {
            word: first,
            said: format!(
                "{} (the same on each of the {n} database(s) the receipts name: {})",
                last.said,
                databases.join(", ")
            ),
        });
    }
    let whole: Vec<&str> = each
        .iter()
        .filter(|(_, h)| h.word == "APPLIED")
        .map(|(db, _)| *db)
        .collect();
    let mut parts = vec![];
    if !whole.is_empty() {
        parts.push(format!(
            "every tier ran on {} ({})",
            whole.len(),
            whole.join(", ")
        ));
    }
    for (db, h) in each.iter().filter(|(_, h)| h.word != "APPLIED") {
        parts.push(format!("on {db}, {}", h.said));
    }
    Some(Happened {
        word: "PARTIAL",
        said: format!(
            "PARTIALLY APPLIED over the {n} database(s) the receipts name: {}",
            parts.join("; ")
        ),
    })
}

/// What one database's receipts record.
fn of_one(d: &Dossier, receipts: &[&ReceiptEvidence]) -> Option<Happened> {
    let last = receipts.last()?;
    let mut applied: Vec<&str> = vec![];
    let mut rolled_back = false;
    for r in receipts {
        let tiers = r.receipt.tiers.iter().map(String::as_str);
        if r.receipt.event == "rollback" {
            let undone: Vec<&str> = tiers.collect();
            applied.retain(|t| !undone.contains(t));
            rolled_back = true;
        } else {
            applied.extend(tiers);
            rolled_back = false;
        }
    }
    let all: Vec<&str> = d.tiers.iter().map(|t| t.name.as_str()).collect();
    let ran: Vec<&str> = all
        .iter()
        .copied()
        .filter(|t| applied.contains(t))
        .collect();
    let not_run: Vec<&str> = all
        .iter()
        .copied()
        .filter(|t| !applied.contains(t))
        .collect();
    let by = format!(
        "as the receipts given record it (the last: {} at {} by {}, {})",
        last.receipt.event, last.receipt.finished_at, last.receipt.operator, last.file
    );
    let (word, said) = if not_run.is_empty() {
        (
            "APPLIED",
            format!(
                "APPLIED: every tier ({} of {}) ran, {by}",
                ran.len(),
                all.len()
            ),
        )
    } else if !ran.is_empty() {
        (
            "PARTIAL",
            format!(
                "PARTIALLY APPLIED: {} of {} tier(s) ({}) ran, {}; not run: {}",
                ran.len(),
                all.len(),
                ran.join(", "),
                by,
                not_run.join(", ")
            ),
        )
    } else if rolled_back {
        (
            "ROLLED-BACK",
            format!("ROLLED BACK: no tier is applied, {by}"),
        )
    } else {
        ("NOT-APPLIED", format!("NOT APPLIED: no tier ran, {by}"))
    };
    Some(Happened { word, said })
}
