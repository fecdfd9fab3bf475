//! What happened to the release, as the receipts given record it: a page made for the
//! archive (`--receipt`) leads with it (applied, partially applied, rolled back, not
//! applied) rather than with what a new apply would meet. The ledger of `--db`, when it
//! shows every tier applied, says it first ([`super::facts::archived`]).
//!
//! Invariant: judged from the receipts the page shows (those of its time), in the
//! order of their ledger rows; the release's own tiers (its manifest) are counted,
//! nothing is asked of a database.

use super::facts::Dossier;

/// What the receipts record, in one word and one line.
pub(crate) struct Happened {
    /// APPLIED, PARTIAL, ROLLED-BACK or NOT-APPLIED: the page's verdict word.
    pub word: &'static str,
    /// The banner's line, in plain words.
    pub said: String,
}

/// What the receipts given record, when the page shows any.
pub(crate) fn of_receipts(d: &Dossier) -> Option<Happened> {
    let last = d.receipts.last()?;
    let mut applied: Vec<&str> = vec![];
    let mut rolled_back = false;
    for r in &d.receipts {
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
