//! The worst news first: every NO-GO fact the page holds, gathered from the results
//! it renders — `plan`'s first failing check, the statements its predictions say the
//! data would make fail, what the release destroys (counted with `--db`, read from the
//! SQL without), a rehearsal that FAILED, a rollback `plan --rollback` says would fail
//! — so that the banner and the Status say them before any instruction.
//!
//! Invariant: each line restates a fact another section shows from the same result
//! struct; nothing is judged here that its command did not judge. Plain text: the
//! renderer escapes it.

use super::facts::{archived, check_name, destroys_data, Dossier};
use crate::db::plan::PlanVerdict;
use crate::db::predict::{Destroyed, Outcome, Prediction};

/// Lines of each kind named before "and N more".
const SHOWN: usize = 5;

/// The page's worst news, in plain words.
pub(crate) struct News {
    /// What stops the release or its undoing: apply would refuse, the rehearsal
    /// FAILED, statements the data would make fail (the release's, the rollback's).
    pub stops: Vec<String>,
    /// What the release destroys.
    pub destroys: Vec<String>,
}

impl News {
    pub fn of(d: &Dossier) -> News {
        let mut stops = vec![];
        stops.extend(refused(d));
        stops.extend(rehearsal(d));
        stops.extend(predicted_failures(d));
        stops.extend(rollback(d));
        News {
            stops,
            destroys: destruction(d),
        }
    }

    /// Every line, the stops first.
    pub fn all(&self) -> Vec<String> {
        self.stops.iter().chain(&self.destroys).cloned().collect()
    }
}

/// `plan`'s first failing check, when apply would refuse (an applied release's page,
/// or one made for the archive on its receipts, judges the past: a new apply's refusal
/// is not its news).
fn refused(d: &Dossier) -> Option<String> {
    let p = d.plan.as_ref().filter(|p| p.verdict == PlanVerdict::NoGo)?;
    // A page for the archive (receipts given) leads with what happened, too.
    if archived(d) || super::happened::of_receipts(d).is_some() {
        return None;
    }
    let c = p.first_failure()?;
    Some(format!(
        "apply would refuse at the check {}: {}",
        check_name(c),
        c.evidence
    ))
}

/// A rehearsal that FAILED, and its first step that did not pass.
fn rehearsal(d: &Dossier) -> Option<String> {
    let r = d.rehearsal.as_ref().filter(|r| !r.report.ok)?;
    let step = r
        .report
        .steps
        .iter()
        .find(|s| s.verdict == "FAIL")
        .map(|s| format!(": the step \"{}\" failed: {}", s.step, s.detail))
        .unwrap_or_default();
    Some(format!(
        "the rehearsal FAILED (the saved report {}){step}",
        r.file
    ))
}

/// `STATEMENT at FILE:LINE (tier T) would fail on the rows in REL now (N of them): WHY`.
fn predicted(x: &Prediction) -> String {
    format!(
        "{} at {}:{} (tier {}) would fail on the rows in {} now{}: {}",
        x.statement,
        x.file,
        x.line,
        x.tier,
        x.relation,
        x.count
            .map(|n| format!(" ({n} of them)"))
            .unwrap_or_default(),
        x.reason
    )
}

/// Up to [`SHOWN`] lines, then how many more.
fn bounded(mut lines: Vec<String>) -> Vec<String> {
    if lines.len() > SHOWN {
        let more = lines.len() - SHOWN;
        lines.truncate(SHOWN);
        lines.push(format!("… and {more} more (see below)"));
    }
    lines
}

/// The release's statements `plan` predicts would fail on the data there now.
fn predicted_failures(d: &Dossier) -> Vec<String> {
    let Some(p) = d.plan.as_ref().and_then(|p| p.predictions.as_ref()) else {
        return vec![];
    };
    if archived(d) {
        return vec![];
    }
    bounded(
        p.predictions
            .iter()
            .filter(|x| x.outcome == Outcome::Fails)
            .map(|x| format!("the release's {}", predicted(x)))
            .collect(),
    )
}

/// The rollback's statements `plan --rollback` predicts would fail.
fn rollback(d: &Dossier) -> Vec<String> {
    let Some(p) = d.rollback_plan.as_ref().and_then(|r| r.plan.as_ref()) else {
        return vec![];
    };
    bounded(
        p.predictions
            .predictions
            .iter()
            .filter(|x| x.outcome == Outcome::Fails)
            .map(|x| format!("the rollback would fail: its {}", predicted(x)))
            .collect(),
    )
}

/// How many rows a destruction takes, in words.
pub(super) fn rows_taken(x: &Destroyed) -> String {
    match (x.rows, &x.note) {
        (Some(n), _) if x.exact => format!("{n} rows"),
        (Some(n), _) => format!("~{n} rows (estimate)"),
        (None, Some(note)) => format!("rows not counted: {note}"),
        (None, None) => "rows not counted".into(),
    }
}

/// What the release destroys: counted by `plan` with `--db`, read from the SQL
/// without (an applied release's page judges the past: none).
fn destruction(d: &Dossier) -> Vec<String> {
    if archived(d) {
        return vec![];
    }
    if let Some(p) = d.plan.as_ref().and_then(|p| p.predictions.as_ref()) {
        return bounded(
            p.destroys
                .iter()
                .filter(|x| x.existing)
                .map(|x| {
                    format!(
                        "it destroys {} ({}): {} at {}:{} (tier {})",
                        x.object,
                        rows_taken(x),
                        x.statement,
                        x.file,
                        x.line,
                        x.tier
                    )
                })
                .collect(),
        );
    }
    let mut lines = vec![];
    for t in &d.tiers {
        for f in &t.files {
            for st in f
                .statements
                .iter()
                .flatten()
                .filter(|st| destroys_data(&st.kind))
            {
                lines.push(format!(
                    "it runs {}{} at {}:{} (tier {}; read from the SQL: --db counts the rows)",
                    st.kind,
                    st.object
                        .as_deref()
                        .map(|o| format!(" on {o}"))
                        .unwrap_or_default(),
                    f.path,
                    st.line,
                    t.name
                ));
            }
        }
    }
    bounded(lines)
}
