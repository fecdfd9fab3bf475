//! `plan`'s predictions, as text: the statements the data decides that do not simply
//! pass, then what the release destroys (rendered from `db::predict::Predictions`, as
//! `--json` is).

use crate::db::predict::{Destroyed, Outcome, Predictions};
use crate::report::{clip, table};

/// Characters of a reason shown in the table (`--json` has all of it).
const REASON_CELL: usize = 100;

/// The predictions section of `plan`'s human output (empty when there is nothing to say).
pub fn human(p: &Predictions) -> String {
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
                    Outcome::Passes => "passes".into(),
                },
                x.count.map(|n| n.to_string()).unwrap_or_default(),
                clip(&with_keys(&x.reason, &x.keys), REASON_CELL),
            ]
        })
        .collect();
    if !rows.is_empty() {
        s.push_str(&format!(
            "\n\npredicted on the data there now (read-only, each question within --predict-timeout):\n{}",
            table(&["where", "statement", "relation", "outcome", "rows", "why"], &rows)
        ));
    }
    if !p.destroys.is_empty() {
        let rows: Vec<Vec<String>> = p.destroys.iter().map(destroyed_row).collect();
        s.push_str(&format!(
            "\n\nwhat the release destroys (information, not a refusal):\n{}",
            table(
                &["tier", "where", "statement", "relation", "rows", "bytes"],
                &rows
            )
        ));
    }
    s
}

fn with_keys(reason: &str, keys: &[String]) -> String {
    if keys.is_empty() {
        reason.to_string()
    } else {
        format!("{reason}; first: {}", keys.join(", "))
    }
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
        d.relation.clone(),
        rows,
        d.bytes.map(|b| b.to_string()).unwrap_or_default(),
    ]
}
