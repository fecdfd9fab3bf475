//! `plan`'s rows from the predictions (`predicted-failures`, `destroys`): what the data
//! said, as a check with its verdict and exit code. The predictions themselves
//! (`crate::predict`) know nothing of checks; this is where the two meet.
//!
//! Invariant: a question cut short or not asked is a WARN, never a silent OK; one that
//! code a database role attached stops is CANNOT-TELL (exit 8), never GO; a statement
//! the data makes fail is a FAIL with apply's exit for a failing statement.

use crate::deploy::checks::{Check, CheckName, CheckVerdict};
use crate::predict::{Destroyed, Outcome, Prediction, Predictions};
use airlock_base::exit::Exit;

/// A prediction's line in a check's evidence.
fn line(x: &Prediction) -> String {
    let mut s = match x.count.filter(|n| *n > 0) {
        Some(n) => format!(
            "{}:{} {} on {}: {n} {}",
            x.file, x.line, x.statement, x.relation, x.reason
        ),
        None => format!(
            "{}:{} {} on {}: {}",
            x.file, x.line, x.statement, x.relation, x.reason
        ),
    };
    if !x.keys.is_empty() {
        s.push_str(&format!(" (first: {})", x.keys.join(", ")));
    }
    s
}

fn warn(check: CheckName, evidence: String) -> Check {
    Check {
        check,
        verdict: CheckVerdict::Warn,
        exit_code: Exit::Success,
        evidence,
        hint: None,
    }
}

/// `plan`'s `predicted-failures` row: FAIL with apply's exit for a failing statement
/// (1) when the data makes one fail, WARN when a question was cut short or could not
/// be asked at all, OK otherwise.
pub fn check(p: &Predictions) -> Check {
    let of = |o: Outcome| p.predictions.iter().filter(move |x| x.outcome == o);
    let fails: Vec<String> = of(Outcome::Fails).map(line).collect();
    if !fails.is_empty() {
        return Check::failed_with(
            CheckName::PredictedFailures,
            Exit::Runtime,
            format!("{} statement(s) would fail on the data there now: {}", fails.len(), fails.join("; ")),
            Some("fix the data first (or make the release do it before the statement), then plan again".into()),
        );
    }
    let barred: Vec<String> = of(Outcome::CannotTell).map(line).collect();
    if !barred.is_empty() {
        return Check {
            check: CheckName::PredictedFailures,
            verdict: CheckVerdict::CannotTell,
            exit_code: Exit::CannotTell,
            evidence: format!(
                "cannot tell for {} statement(s): code a database role attached stops airlock from asking (it runs none of it): {}",
                barred.len(),
                barred.join("; ")
            ),
            hint: Some("run the release on a clone first (airlock rehearse), or have the role remove that code, then plan again".into()),
        };
    }
    if let Some(e) = &p.error {
        return warn(CheckName::PredictedFailures, format!("cannot tell: {e}"));
    }
    let late: Vec<String> = of(Outcome::TimedOut).map(line).collect();
    if !late.is_empty() {
        return warn(
            CheckName::PredictedFailures,
            format!(
                "cannot tell in time for {} statement(s): {} (raise --predict-timeout, or rehearse)",
                late.len(),
                late.join("; ")
            ),
        );
    }
    let asked = of(Outcome::Passes).count();
    let unasked = of(Outcome::NotPredictable).count();
    Check::ok(
        CheckName::PredictedFailures,
        match (asked, unasked) {
            (0, 0) => "no tier statement depends on the data there now".to_string(),
            (a, 0) => format!("{a} data-dependent statement(s) pass on the data there now"),
            (a, u) => format!("{a} data-dependent statement(s) pass on the data there now; {u} not predictable here (listed below)"),
        },
    )
}

/// `plan`'s `destroys` row: WARN when the release destroys something there now that
/// its tier does not declare (`[[tier]] destroys`), OK otherwise (information: what
/// it destroys is listed either way).
pub fn destroys_check(p: &Predictions) -> Check {
    let there: Vec<&Destroyed> = p.destroys.iter().filter(|d| d.existing).collect();
    let undeclared: Vec<String> = there
        .iter()
        .filter(|d| !d.declared)
        .map(|d| {
            format!(
                "{}:{} {} destroys {} (tier {:?})",
                d.file, d.line, d.statement, d.object, d.tier
            )
        })
        .collect();
    if !undeclared.is_empty() {
        return warn(
            CheckName::Destroys,
            format!(
                "{} undeclared destruction(s): {}; declare each in its tier (destroys = [\"schema.table\"]) when it is meant",
                undeclared.len(),
                undeclared.join("; ")
            ),
        );
    }
    let stale = p.declared_not_destroyed.len();
    let notes = if stale == 0 {
        String::new()
    } else {
        format!("; note: {stale} declared name(s) destroyed by no statement (listed below)")
    };
    Check::ok(
        CheckName::Destroys,
        match there.len() {
            0 => format!("nothing there now is destroyed{notes}"),
            n => format!("{n} destruction(s), each declared{notes}"),
        },
    )
}
