//! `airlock rehearse`: the full cycle on a throw-away clone.

use crate::cli::RehearseArgs;
use crate::commands::deploy::db_common::prepare;
use crate::commands::deploy::plan_locks;
use crate::db::lock_impact::{HeldUntil, LockImpact};
use crate::db::rehearse::cycle::{self as rehearse, RehearseOptions, RehearseReport};
use crate::error::Result;
use crate::report::{clip, one_line, short, table, Outcome, Report};
use serde::Serialize;

#[derive(Serialize, schemars::JsonSchema)]
pub struct RehearseOutcome {
    #[serde(flatten)]
    pub report: RehearseReport,
    /// The first step that failed and why (`STEP: DETAIL`), as an error document
    /// says it; absent when the rehearsal passed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl RehearseOutcome {
    pub fn new(report: RehearseReport) -> Self {
        let error = (report.steps.iter())
            .find(|s| s.verdict == "FAIL")
            .map(|f| format!("{}: {}", f.step, f.detail));
        RehearseOutcome { report, error }
    }
}

/// Characters of a step's detail shown in the table (the whole of it is in `--json`).
const DETAIL_CELL: usize = 100;

pub fn steps_table(r: &RehearseReport) -> String {
    let mut rows: Vec<Vec<String>> = vec![];
    for s in &r.steps {
        rows.push(vec![
            s.step.clone(),
            s.verdict.clone(),
            format!("{} ms", s.duration_ms),
            // The whole detail is in --json; a table cell stays readable.
            crate::report::clip(&s.detail, DETAIL_CELL),
        ]);
        if s.step == "apply" {
            rows.extend(r.lock_impact.iter().flat_map(lock_rows));
        }
    }
    table(&["step", "verdict", "time", "detail"], &rows)
}

/// The locks the apply held, one row each under the apply step: the mode in the
/// verdict column, how long it was held in the time column.
fn lock_rows(l: &LockImpact) -> Vec<Vec<String>> {
    let mut rows: Vec<Vec<String>> = l
        .locks
        .iter()
        .map(|h| {
            let until = match h.held_until {
                HeldUntil::Commit => "held until COMMIT",
                HeldUntil::StatementEnd => "held while it ran (online)",
            };
            vec![
                format!("  lock {}", h.relation),
                h.mode.name().to_string(),
                format!("{} ms", h.held_ms),
                format!(
                    "{until}; {} at {}:{} ran {} ms ({})",
                    h.statement,
                    h.file,
                    h.line,
                    h.statement_ms,
                    // Said once below the locks when the server has no estimate.
                    match h.size.rows {
                        rows if rows < 0 => plan_locks::bytes(h.size.bytes),
                        _ => plan_locks::size_text(&h.size),
                    }
                ),
            ]
        })
        .collect();
    let uncounted = l.locks.iter().filter(|h| h.size.rows < 0).count();
    if uncounted > 0 {
        rows.push(vec![
            "  locks".into(),
            String::new(),
            String::new(),
            format!("rows not yet counted on {uncounted} of the tables above: PostgreSQL estimates them after a VACUUM or ANALYZE"),
        ]);
    }
    if l.omitted > 0 {
        rows.push(vec![
            "  locks".into(),
            String::new(),
            String::new(),
            format!("{} more held shorter than those listed", l.omitted),
        ]);
    }
    if let Some(e) = &l.error {
        rows.push(vec![
            "  locks".into(),
            String::new(),
            String::new(),
            crate::report::clip(&format!("not measured: {e}"), DETAIL_CELL),
        ]);
    }
    rows
}

/// `before -> after` of a measurement.
fn through(before: i64, after: i64) -> String {
    format!("{before} -> {after}")
}

/// The rows of "tables the release changes": under each tier the tables it changed
/// (rows or bytes) or dropped, and once, after them, each table no tier changed (the
/// JSON keeps every table through every tier).
fn measured_rows(measured: &[crate::db::rehearse::measure::TierMeasured]) -> Vec<Vec<String>> {
    let changed = |x: &crate::db::rehearse::measure::TableThrough| x.dropped || x.before != x.after;
    let mut rows: Vec<Vec<String>> = vec![];
    for t in measured {
        for x in t.tables.iter().filter(|x| changed(x)) {
            rows.push(vec![
                t.tier.clone(),
                x.table.clone(),
                through(x.before.rows, x.after.rows) + if x.dropped { " (dropped)" } else { "" },
                through(x.before.bytes, x.after.bytes),
            ]);
        }
        if let Some(e) = &t.error {
            rows.push(vec![
                t.tier.clone(),
                "-".into(),
                clip(&format!("not measured: {e}"), DETAIL_CELL),
                String::new(),
            ]);
        }
    }
    // A table measured in some tier and changed in none: one row, its size as it was.
    let mut unchanged: Vec<&crate::db::rehearse::measure::TableThrough> = vec![];
    for x in measured.iter().flat_map(|t| &t.tables) {
        let ever_changed = measured
            .iter()
            .flat_map(|t| &t.tables)
            .any(|y| y.table == x.table && changed(y));
        if !ever_changed && !unchanged.iter().any(|u| u.table == x.table) {
            unchanged.push(x);
        }
    }
    for x in unchanged {
        rows.push(vec![
            "no tier".into(),
            x.table.clone(),
            format!("{} (unchanged)", x.before.rows),
            format!("{} (unchanged)", x.before.bytes),
        ]);
    }
    rows
}

/// What plan predicted on the target beside what the apply measured on the clone, the
/// tables the release changes through each tier, and the statements plan could not
/// judge as the clone did.
fn predicted_and_measured(p: &crate::db::rehearse_predict::Rehearsed) -> String {
    use crate::db::rehearse_predict::OnClone;
    let mut s = String::new();
    if !p.compared.is_empty() {
        let rows: Vec<Vec<String>> = p
            .compared
            .iter()
            .map(|c| {
                let predicted = match (c.predicted_rows, c.predicted_exact) {
                    (Some(n), true) => format!("{n} (exact)"),
                    (Some(n), false) => format!("~{n} (estimate)"),
                    (None, _) => "-".into(),
                };
                let (rows, bytes) = match &c.measured {
                    Some(m) => (
                        through(m.before.rows, m.after.rows),
                        through(m.before.bytes, m.after.bytes),
                    ),
                    None => ("not measured".into(), String::new()),
                };
                vec![
                    c.tier.clone(),
                    format!("{}:{}", c.file, c.line),
                    c.statement.clone(),
                    c.object.clone(),
                    predicted,
                    rows,
                    bytes,
                ]
            })
            .collect();
        s.push_str(&format!(
            "\n\nwhat the release destroys: predicted on the target, measured on the clone (rows and bytes of its table before -> after its tier):\n{}",
            table(
                &["tier", "where", "statement", "object", "predicted rows", "rows", "bytes"],
                &rows
            )
        ));
    }
    let rows = measured_rows(&p.measured);
    if !rows.is_empty() {
        s.push_str(&format!(
            "\n\ntables the release changes, measured on the clone (exact):\n{}",
            table(&["tier", "table", "rows", "bytes"], &rows)
        ));
    }
    for j in &p.judged {
        let verdict = match j.on_clone {
            OnClone::Passed => "passed on the clone",
            OnClone::Failed => "FAILED on the clone",
            OnClone::NotReached => "not reached on the clone",
        };
        s.push_str(&format!(
            "\n{}:{} {} on {}: plan could not tell; {verdict}",
            j.file, j.line, j.statement, j.relation
        ));
    }
    s
}

impl Report for RehearseOutcome {
    fn human(&self) -> String {
        let r = &self.report;
        let mut s = format!(
            "rehearsal of bundle {} on a clone of {} ({}): {}\n\n{}",
            short(&r.bundle_id),
            r.target,
            r.clone,
            if r.ok {
                crate::style::paint(crate::style::Paint::Good, "PASS - every step held")
            } else {
                crate::style::verdict("FAIL")
            },
            steps_table(r)
        );
        // Both notes below are whole, wrapped at words to the table's width.
        let para = |text: String| crate::report::wrap(&text, crate::style::width()).join("\n");
        if let Some(c) = &r.clone_cost {
            s.push_str("\n\n");
            s.push_str(&para(format!(
                "clone: pg_dump of one snapshot, restored (the target has other sessions, or --clone-strategy dump): dump {:.1} s, {:.1} MB in {} job(s); restore {:.1} s. The target is compared by schema only: its rows are live.",
                c.dump_ms as f64 / 1000.0,
                c.dump_bytes as f64 / 1048576.0,
                c.jobs,
                c.restore_ms as f64 / 1000.0
            )));
        }
        // Loud, and never cut: the rehearsal went past a gate the real apply stops at.
        if r.gates_assumed {
            let text = para("BLOCKED: the gate is BLOCKED on the target (not ratified yet); this rehearsal went past it on the clone only. `apply` stops at that gate (exit 3) until it is READY; `apply --through TIER` ships the tiers without gates now. --require-ready makes rehearse stop there instead.".into());
            s.push_str("\n\n");
            s.push_str(&text.replacen("BLOCKED", &crate::style::verdict("BLOCKED"), 1));
        }
        // The table cuts long details; the first failure's, which says what to do,
        // is printed whole below it.
        if let Some(failed) = r.steps.iter().find(|s| s.verdict == "FAIL") {
            if crate::report::clip(&failed.detail, DETAIL_CELL) != failed.detail {
                s.push_str(&format!("\n\n{}: {}", failed.step, failed.detail));
            }
        }
        if let Some(at) = &r.at {
            s.push_str(&format!("\nstatement: {}", at.human()));
        }
        if let Some(h) = &r.hint {
            s.push_str(&format!("\nhint: {h}"));
        }
        if let Some(p) = &r.predictions {
            s.push_str(&predicted_and_measured(p));
        }
        if !r.cluster_changes.is_empty() {
            s.push_str("\n\nchanged outside the clone during the rehearsal (not undone: another session may have made them):");
            for c in &r.cluster_changes {
                s.push_str(&format!("\n  {}", c.what));
                if let Some(u) = &c.undo {
                    s.push_str(&format!("\n    undo: {u}"));
                }
            }
        }
        s
    }
    fn exit_code(&self) -> crate::exit::Exit {
        self.report.exit_code
    }
    /// Under `--quiet`, a rehearsal that did not pass names the step that failed.
    fn quiet_line(&self) -> Option<String> {
        let r = &self.report;
        if r.ok {
            return None;
        }
        Some(match r.steps.iter().find(|s| s.verdict == "FAIL") {
            Some(f) => format!("FAIL: {}: {}", f.step, one_line(&f.detail)),
            None => format!("FAIL (exit {})", r.exit_code),
        })
    }
}

pub fn run(args: RehearseArgs) -> Result<Outcome> {
    let (vb, conn, params) = prepare(&args.bundle, &args.trust, &args.db, &args.params)?;
    let all: Vec<usize> = (0..vb.manifest().tier.len()).collect();
    crate::db::apply::check_required(&vb, &all, &params)?;
    let approvals = crate::commands::deploy::db_common::approvals(&args.approvals, &args.trust)?;
    let progress = crate::progress::Deploy::new();
    let report = rehearse::rehearse(
        &vb,
        &RehearseOptions {
            conn: &conn,
            clone_strategy: args.clone_strategy.into(),
            params,
            assume_gates: !args.require_ready,
            statement_timeout: args.db.statement_timeout.clone(),
            gate_role: args.gate.gate_role.clone(),
            approvals: Some(&approvals),
            observer: Some(&progress),
            predict_timeout: args.predict_timeout,
        },
    );
    drop(progress);
    Ok(Box::new(RehearseOutcome::new(report)))
}
