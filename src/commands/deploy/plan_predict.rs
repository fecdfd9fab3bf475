//! `plan`'s predictions, as text: the statements the data decides that do not simply
//! pass, then what the release destroys (with what a CASCADE takes, and whether its
//! tier declares it), then the declared names nothing destroys (rendered from
//! `db::predict::Predictions`, as `--json` is).

use crate::db::predict::{Destroyed, Outcome, Predictions};
use crate::report::{clip, table};

/// Characters of a reason shown in the table (`--json` has all of it).
const REASON_CELL: usize = 100;
/// Dependent objects named per destruction in the text (`--json` lists more).
const DEPENDENTS_SHOWN: usize = 10;

/// The predictions section of `plan`'s human output (empty when there is nothing to say).
/// Whose statements the predictions are of: a release's tiers (which declare what
/// they destroy) or its rollback (which declares nothing).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Whose {
    Release,
    Rollback,
}

pub fn human(p: &Predictions, whose: Whose) -> String {
    let mut s = String::new();
    if let Some(e) = &p.error {
        s.push_str(&format!("\n\npredictions: cannot tell ({e})"));
    }
    let rows: Vec<Vec<String>> = p
        .predictions
        .iter()
        .filter(|x| x.outcome != Outcome::Passes)
        .map(|x| {
            vec![
                format!("{}:{}", x.file, x.line),
                x.statement.clone(),
                x.relation.clone(),
                match x.outcome {
                    Outcome::Fails => "FAILS".into(),
                    Outcome::TimedOut => "cannot tell in time".into(),
                    Outcome::NotPredictable => "not predictable".into(),
                    Outcome::CannotTell => "CANNOT TELL".into(),
                    Outcome::Passes => "passes".into(),
                },
                x.count.map(|n| n.to_string()).unwrap_or_else(|| {
                    if x.outcome == Outcome::Fails {
                        "≥1".into()
                    } else {
                        String::new()
                    }
                }),
                with_keys(&x.reason, &x.keys),
            ]
        })
        .collect();
    if !rows.is_empty() {
        s.push_str(&format!(
            "\n\npredicted on the data there now (read-only, each question within --predict-timeout):\n{}",
            table(&["where", "statement", "relation", "outcome", "rows", "why"], &rows)
        ));
    }
    for (x, f) in p
        .predictions
        .iter()
        .filter_map(|x| x.full_question.as_ref().map(|f| (x, f)))
    {
        s.push_str(&format!(
            "\nnote: {}:{} {} on {}: cannot tell in time; the full question over ~{} rows would take about {:.1} s \
             (~{} rows/s, measured on a sample of the table): --predict-timeout {} would do",
            x.file, x.line, x.statement, x.relation, crate::report::thousands(f.rows), f.estimated_seconds, crate::report::thousands(f.rows_per_second as i64),
            f.suggested_predict_timeout
        ));
    }
    if !p.destroys.is_empty() {
        s.push_str(&destroys(p, whose));
    }
    s
}

/// What the release destroys: the table, then each CASCADE's dependents, the
/// undeclared ones as warnings and the declared names nothing destroys as notes.
fn destroys(p: &Predictions, whose: Whose) -> String {
    let rows: Vec<Vec<String>> = p.destroys.iter().map(destroyed_row).collect();
    let mut s = format!(
        "\n\nwhat the {} destroys (information, not a refusal):\n{}",
        if whose == Whose::Rollback {
            "rollback"
        } else {
            "release"
        },
        table(
            &[
                "tier",
                "where",
                "statement",
                "object",
                "rows",
                "bytes",
                "declared"
            ],
            &rows
        )
    );
    for d in p.destroys.iter().filter(|d| d.dependents_total > 0) {
        s.push_str(&format!(
            "\n{}:{} {} takes {} more object(s) with it:",
            d.file, d.line, d.statement, d.dependents_total
        ));
        for x in d.dependents.iter().take(DEPENDENTS_SHOWN) {
            let mut size = vec![];
            if let Some(n) = x.rows {
                size.push(format!("~{n} rows (estimate)"));
            }
            if let Some(b) = x.bytes {
                size.push(format!("{b} bytes"));
            }
            let size = if size.is_empty() {
                String::new()
            } else {
                format!(" ({})", size.join(", "))
            };
            s.push_str(&format!("\n  {}{size}", x.what));
        }
        let more = d
            .dependents_total
            .saturating_sub(DEPENDENTS_SHOWN.min(d.dependents.len()));
        if more > 0 {
            s.push_str(&format!(
                "\n  … and {more} more (--json lists the first {})",
                crate::db::predict::DEPENDENTS_SHOWN
            ));
        }
    }
    // A rollback declares nothing it destroys (`[[tier]] destroys` is the release's).
    let undeclared = p
        .destroys
        .iter()
        .filter(|d| whose == Whose::Release && !d.declared && d.existing);
    for d in undeclared {
        s.push_str(&format!(
            "\nwarning: {}:{} {} destroys {}, which tier {:?} does not declare (destroys = [\"{}\"])",
            d.file, d.line, d.statement, d.object, d.tier, d.object
        ));
    }
    for n in &p.declared_not_destroyed {
        s.push_str(&format!(
            "\nnote: tier {:?} declares destroys {:?}, and no statement of it destroys that",
            n.tier, n.name
        ));
    }
    s
}

/// The why cell: the reason, clipped so that the first keys (themselves clipped to
/// half the cell) always show.
fn with_keys(reason: &str, keys: &[String]) -> String {
    if keys.is_empty() {
        return clip(reason, REASON_CELL);
    }
    let keys = clip(&keys.join(", "), REASON_CELL / 2);
    let room = REASON_CELL.saturating_sub(keys.chars().count() + "; first: ".len());
    format!("{}; first: {keys}", clip(reason, room.max(40)))
}

fn destroyed_row(d: &Destroyed) -> Vec<String> {
    let rows = match (d.rows, &d.note) {
        (Some(n), _) if d.exact => format!("{n} (exact)"),
        (Some(n), _) => format!("~{n} (estimate)"),
        (None, Some(note)) => clip(note, REASON_CELL),
        (None, None) => "?".into(),
    };
    vec![
        d.tier.clone(),
        format!("{}:{}", d.file, d.line),
        d.statement.clone(),
        d.object.clone(),
        rows,
        d.bytes.map(|b| b.to_string()).unwrap_or_default(),
        if d.declared { "yes" } else { "no" }.into(),
    ]
}
