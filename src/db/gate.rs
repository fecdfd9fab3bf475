//! Gates and probes: read-only questions asked of the target.
//!
//! Invariant: gate and probe SQL runs (1) only after passing the parser rules, (2) as
//! one statement through the extended protocol, (3) inside a savepoint under
//! `transaction_read_only = on` that is always rolled back, and (4) any gate that got a
//! transaction id assigned — i.e. wrote something — is BLOCKED.
//!
//! Gates also (5) run only when PostgreSQL itself will execute them in *parallel mode*.
//! READ ONLY alone is not a boundary on PostgreSQL 15: a plpgsql function can
//! `RESET transaction_read_only` inside an EXCEPTION block and then write. A sequence
//! advance (`nextval`) survives any rollback, and on a sequence with cached values it
//! assigns no transaction id, so (3) and (4) cannot catch it. In parallel mode the
//! server refuses every SET/RESET, subtransaction, `nextval` and transaction id, so
//! nothing can switch read-only off. With `force_parallel_mode` (PostgreSQL 16+:
//! `debug_parallel_query`) on, the planner puts a Gather node in every plan that may run
//! in parallel mode, and only in those; a gate whose plan has none (it calls a PARALLEL
//! UNSAFE function, or something parallel-restricted at the top) is BLOCKED before it
//! runs. Probes do not get (5): they legitimately use parallel-unsafe functions such as
//! `query_to_xml`, and they run beside tiers that write anyway.

use super::{pg_message, sql_err, DbError};
use crate::sql_lint::{self, SqlRole};
use postgres::types::Type;
use postgres::Transaction;
use schemars::JsonSchema;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct GateResult {
    pub name: String,
    pub file: String,
    pub ready: bool,
    pub reason: String,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct GateReport {
    /// READY only if every gate said `ready = true`.
    pub verdict: String,
    pub gates: Vec<GateResult>,
}

impl GateReport {
    pub fn ready(&self) -> bool {
        self.verdict == "READY"
    }
    pub fn from_results(gates: Vec<GateResult>) -> GateReport {
        let ready = gates.iter().all(|g| g.ready);
        GateReport {
            verdict: if ready { "READY" } else { "BLOCKED" }.into(),
            gates,
        }
    }
    pub fn blocked_summary(&self) -> String {
        self.gates
            .iter()
            .filter(|g| !g.ready)
            .map(|g| format!("{}: {}", g.name, g.reason))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

fn xid_assigned(tx: &mut Transaction<'_>) -> Result<bool, DbError> {
    let row = tx
        .query_one("SELECT pg_current_xact_id_if_assigned() IS NOT NULL", &[])
        .map_err(|e| sql_err("checking for writes", &e))?;
    Ok(row.get(0))
}

/// Run `f` in a read-only savepoint that is always rolled back. Returns f's result and
/// whether anything was written (a transaction id got assigned).
fn in_read_only_savepoint<T>(
    tx: &mut Transaction<'_>,
    role: Option<&str>,
    f: impl FnOnce(&mut Transaction<'_>) -> T,
) -> Result<(T, bool), DbError> {
    let had_xid = xid_assigned(tx)?;
    let mut sp = tx.transaction().map_err(|e| sql_err("savepoint", &e))?;
    sp.batch_execute("SET LOCAL transaction_read_only = on")
        .map_err(|e| sql_err("read-only savepoint", &e))?;
    if let Some(r) = role {
        sp.batch_execute(&format!("SET LOCAL ROLE {}", super::quote_ident(r)))
            .map_err(|e| DbError::Usage(format!("--gate-role {r:?}: {}", pg_message(&e))))?;
    }
    let out = f(&mut sp);
    // A failed statement leaves the savepoint aborted; the check must run after the
    // rollback, in the enclosing transaction. A write inside the savepoint assigned an
    // xid to the top-level transaction too, and rolling back does not unassign it.
    sp.rollback()
        .map_err(|e| sql_err("rolling back the read-only savepoint", &e))?;
    let wrote = !had_xid && xid_assigned(tx)?;
    Ok((out, wrote))
}

/// Settings that make the planner run every parallel-safe query in parallel mode; local
/// to the (always rolled back) savepoint. The GUC was renamed in PostgreSQL 16.
const FORCE_PARALLEL_MODE: &str = "SELECT set_config(CASE WHEN current_setting('server_version_num')::int >= 160000 THEN 'debug_parallel_query' ELSE 'force_parallel_mode' END, 'on', true), set_config('max_parallel_workers_per_gather', greatest(current_setting('max_parallel_workers_per_gather')::int, 1)::text, true)";

/// Whether a plan node (from `EXPLAIN (FORMAT JSON)`) is, or contains, a Gather.
fn has_gather(node: &serde_json::Value) -> bool {
    let own = node["Node Type"]
        .as_str()
        .is_some_and(|t| t.starts_with("Gather"));
    own || node["Plans"]
        .as_array()
        .is_some_and(|plans| plans.iter().any(has_gather))
}

/// Prove, without running it, that PostgreSQL will execute this gate in parallel mode
/// (see the module docs); otherwise the reason it is BLOCKED.
fn prove_parallel_mode(tx: &mut Transaction<'_>, sql: &str) -> Result<(), String> {
    tx.batch_execute(FORCE_PARALLEL_MODE)
        .map_err(|e| format!("could not enable parallel mode: {}", pg_message(&e)))?;
    let row = tx
        .query_one(&format!("EXPLAIN (FORMAT JSON) {sql}"), &[])
        .map_err(|e| format!("SQL error: {}", pg_message(&e)))?;
    let plan: serde_json::Value = row
        .try_get(0)
        .map_err(|e| format!("could not read the gate's plan: {e}"))?;
    if has_gather(&plan[0]["Plan"]) {
        return Ok(());
    }
    Err(
        "refused before running: PostgreSQL would not run this gate in parallel mode, so \
         airlock cannot prove it is read-only (it calls a PARALLEL UNSAFE function such as \
         nextval() or a plpgsql function not declared PARALLEL SAFE, or a parallel-restricted \
         one such as random() or pg_stat_activity at the top, or it locks rows). Declare the \
         functions it reads through PARALLEL SAFE, or ask the question without them"
            .into(),
    )
}

/// Evaluate one gate's rows.
fn judge_gate(tx: &mut Transaction<'_>, sql: &str) -> Result<(bool, String), String> {
    let rows = tx
        .query(sql, &[])
        .map_err(|e| format!("SQL error: {}", pg_message(&e)))?;
    if rows.is_empty() {
        return Err("returned no row (a gate must return exactly one)".into());
    }
    if rows.len() > 1 {
        return Err(format!(
            "returned {} rows (a gate must return exactly one)",
            rows.len()
        ));
    }
    let row = &rows[0];
    let cols = row.columns();
    let ready_idx = cols
        .iter()
        .position(|c| c.name() == "ready")
        .ok_or("has no column named \"ready\"")?;
    if *cols[ready_idx].type_() != Type::BOOL {
        return Err(format!(
            "column \"ready\" is {}, not boolean",
            cols[ready_idx].type_()
        ));
    }
    let reason = match cols.iter().position(|c| c.name() == "reason") {
        Some(i) => row
            .try_get::<_, Option<String>>(i)
            .ok()
            .flatten()
            .unwrap_or_default(),
        None => String::new(),
    };
    match row.get::<_, Option<bool>>(ready_idx) {
        Some(true) => Ok((
            true,
            if reason.is_empty() {
                "ready".into()
            } else {
                reason
            },
        )),
        Some(false) => Ok((
            false,
            if reason.is_empty() {
                "ready = false".into()
            } else {
                reason
            },
        )),
        None => Err(format!(
            "ready is NULL{}",
            if reason.is_empty() {
                String::new()
            } else {
                format!(" ({reason})")
            }
        )),
    }
}

/// Run the named gates inside `tx` (which the caller always rolls back or which
/// continues an apply). Each gate gets its own rolled-back read-only savepoint.
pub fn run_gates(
    tx: &mut Transaction<'_>,
    gates: &[(String, String, String)], // (name, file, sql)
    role: Option<&str>,
) -> Result<GateReport, DbError> {
    let mut results = vec![];
    for (name, file, sql) in gates {
        if let Some(p) = sql_lint::check(file, sql, SqlRole::Gate).into_iter().next() {
            results.push(GateResult {
                name: name.clone(),
                file: file.clone(),
                ready: false,
                reason: format!("refused before running: {p}"),
            });
            continue;
        }
        let (judged, wrote) = in_read_only_savepoint(tx, role, |sp| {
            prove_parallel_mode(sp, sql)?;
            judge_gate(sp, sql)
        })?;
        let (ready, reason) = match (judged, wrote) {
            (_, true) => (
                false,
                "the gate wrote to the database (it was rolled back); gates must be read-only"
                    .to_string(),
            ),
            (Ok((r, reason)), false) => (r, reason),
            (Err(e), false) => (false, e),
        };
        results.push(GateResult {
            name: name.clone(),
            file: file.clone(),
            ready,
            reason,
        });
    }
    Ok(GateReport::from_results(results))
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ProbeDiff {
    pub key: String,
    pub expected: String,
    /// None when the probe returned no row for the key.
    pub actual: Option<String>,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ProbeReport {
    pub file: String,
    pub matches: bool,
    pub values: BTreeMap<String, String>,
    pub expected: BTreeMap<String, String>,
    pub mismatches: Vec<ProbeDiff>,
}

impl ProbeReport {
    pub fn describe(&self) -> String {
        self.mismatches
            .iter()
            .map(|d| {
                format!(
                    "{}: expected {}, got {}",
                    d.key,
                    d.expected,
                    d.actual.as_deref().unwrap_or("(no row)")
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

fn is_text(t: &Type) -> bool {
    [
        Type::TEXT,
        Type::VARCHAR,
        Type::NAME,
        Type::BPCHAR,
        Type::UNKNOWN,
    ]
    .contains(t)
}

fn read_probe(tx: &mut Transaction<'_>, sql: &str) -> Result<BTreeMap<String, String>, String> {
    let stmt = tx
        .prepare(sql)
        .map_err(|e| format!("SQL error: {}", pg_message(&e)))?;
    let cols = stmt.columns();
    if cols.len() < 2 || !is_text(cols[0].type_()) || !is_text(cols[1].type_()) {
        return Err("a probe must return (key text, value text) rows; cast with ::text".into());
    }
    let rows = tx
        .query(&stmt, &[])
        .map_err(|e| format!("SQL error: {}", pg_message(&e)))?;
    let mut out = BTreeMap::new();
    for r in rows {
        let k: Option<String> = r.get(0);
        let v: Option<String> = r.get(1);
        let k = k.ok_or("a probe row has a NULL key")?;
        if out
            .insert(k.clone(), v.unwrap_or_else(|| "NULL".into()))
            .is_some()
        {
            return Err(format!("the probe returned key {k:?} twice"));
        }
    }
    Ok(out)
}

/// Run a probe in a rolled-back read-only savepoint and compare with `expect`.
pub fn run_probe(
    tx: &mut Transaction<'_>,
    file: &str,
    sql: &str,
    expect: &BTreeMap<String, String>,
) -> Result<ProbeReport, DbError> {
    if let Some(p) = sql_lint::check(file, sql, SqlRole::Probe)
        .into_iter()
        .next()
    {
        return Err(DbError::State(format!("probe refused before running: {p}")));
    }
    let (values, wrote) = in_read_only_savepoint(tx, None, |sp| read_probe(sp, sql))?;
    if wrote {
        return Err(DbError::State(format!(
            "probe {file} wrote to the database (rolled back); probes must be read-only"
        )));
    }
    let values = values.map_err(|e| DbError::State(format!("probe {file}: {e}")))?;
    let mismatches: Vec<ProbeDiff> = expect
        .iter()
        .filter(|(k, v)| values.get(*k) != Some(v))
        .map(|(k, v)| ProbeDiff {
            key: k.clone(),
            expected: v.clone(),
            actual: values.get(k).cloned(),
        })
        .collect();
    Ok(ProbeReport {
        file: file.into(),
        matches: mismatches.is_empty(),
        values,
        expected: expect.clone(),
        mismatches,
    })
}
