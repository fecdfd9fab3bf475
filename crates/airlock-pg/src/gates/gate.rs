//! Gates and probes: read-only questions asked of the target.
//!
//! Invariant: gate and probe SQL runs (1) only after passing the parser rules, (2) as
//! one statement through the extended protocol, (3) inside a savepoint under
//! `transaction_read_only = on` that is always rolled back, (4) under the bundle's
//! pinned settings (`BundlePins::prelude`), and (5) as a role without powers outside
//! the database ([`resolve_role`]: no superuser, no server programs or files, no
//! dblink).
//!
//! Gates and probes also (6) run in *parallel mode*, judged by what they do, not by
//! how they are written. READ ONLY alone is not a boundary on PostgreSQL 15: a plpgsql
//! function can `RESET transaction_read_only` inside an EXCEPTION block and then write.
//! A sequence advance (`nextval`) survives any rollback, and on a sequence with cached
//! values it assigns no transaction id, so (3) cannot catch it. In parallel mode the
//! server refuses every SET/RESET (so also `RESET ROLE`), subtransaction, `nextval` and
//! transaction id (so every write and row lock). The query becomes the body of a
//! `PARALLEL SAFE SECURITY DEFINER` SQL function owned by the gate role, created in
//! `pg_temp` within the savepoint ([`run_wrapped`]); with `force_parallel_mode`
//! (PostgreSQL 16+: `debug_parallel_query`) on, airlock proves the call to it runs under
//! a Gather, so the body — its planning included — runs in parallel mode whatever it
//! holds: sublinks and InitPlans (which keep the planner from parallelising a query
//! itself), functions not declared PARALLEL SAFE, `query_to_xml`. A gate's shape
//! (`ready` boolean, `reason`) is read from the server's description of it first,
//! which runs nothing. PostgreSQL also refuses `SET ROLE`, `RESET ROLE` and
//! `SET SESSION AUTHORIZATION` inside a security definer function.
//!
//! Both (7) run with `row_security = off`: a table whose policies would apply to the
//! gate role is an error (BLOCKED, the probe fails), so no policy — owner code — is
//! ever evaluated for a gate or probe; and (8) must leave no session-level advisory
//! lock behind: one this backend holds after the savepoint is gone (taken by owner
//! code the planner ran, e.g. an IMMUTABLE function folded in a view) makes the gate
//! BLOCKED (the probe fails) and is released before airlock goes on
//! ([`crate::gates::leftovers`]). What is left — owner code in views the gate role reads —
//! runs as the gate role, which holds only the grants [`crate::gates::gate_grants`] derives.

use crate::session::hermetic::BundlePins;
use crate::{gates::leftovers, pg_message, sql_err, DbError};
use airlock_bundle::approval::QuorumReport;
use airlock_sql::{self, SqlRole, GATE_SHAPE, PROBE_SHAPE};
use postgres::types::Type;
use postgres::Transaction;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct GateResult {
    pub name: String,
    pub file: String,
    pub ready: bool,
    pub reason: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct GateReport {
    /// READY only if every gate said `ready = true` and, when the bundle asks for
    /// ratification, its quorum of signed approvals is met.
    pub verdict: String,
    pub gates: Vec<GateResult>,
    /// The bundle's `[ratification]` quorum, judged for this run: the approvals, each
    /// with its document and signature (evidence `audit` verifies again).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratification: Option<QuorumReport>,
}

impl GateReport {
    pub fn ready(&self) -> bool {
        self.verdict == "READY"
    }
    pub fn from_results(gates: Vec<GateResult>) -> GateReport {
        GateReport {
            verdict: String::new(),
            gates,
            ratification: None,
        }
        .with_ratification(None)
    }
    /// The report with the quorum judged for the run: READY needs both.
    pub fn with_ratification(mut self, quorum: Option<QuorumReport>) -> GateReport {
        let ready = self.gates.iter().all(|g| g.ready) && quorum.as_ref().is_none_or(|q| q.met);
        self.verdict = if ready { "READY" } else { "BLOCKED" }.into();
        self.ratification = quorum;
        self
    }
    pub fn blocked_summary(&self) -> String {
        let mut parts: Vec<String> = self
            .gates
            .iter()
            .filter(|g| !g.ready)
            .map(|g| {
                let reason =
                    airlock_base::text::bound(&g.reason, airlock_base::text::MAX_LINE_BYTES);
                format!("{}: {reason}", g.name)
            })
            .collect();
        if let Some(q) = self.ratification.as_ref().filter(|q| !q.met) {
            parts.push(q.summary());
        }
        parts.join("; ")
    }
}

fn xid_assigned(tx: &mut Transaction<'_>) -> Result<bool, DbError> {
    let row = tx
        .query_typed_one("SELECT pg_current_xact_id_if_assigned() IS NOT NULL", &[])
        .map_err(|e| sql_err("checking for writes", &e))?;
    Ok(row.get(0))
}

/// Where and as whom bundle queries (gates and probes) run: the bundle's settings,
/// and the role without outside powers they run as (None: airlock's own role, which
/// was checked to have none).
#[derive(Clone, Debug)]
pub struct Harness {
    pub pins: BundlePins,
    pub role: Option<String>,
}

impl Harness {
    fn role_sql(&self) -> String {
        match &self.role {
            Some(r) => format!("SET LOCAL ROLE {}; ", crate::quote_ident(r)),
            None => String::new(),
        }
    }
}

/// Run `f` in a read-only savepoint that is always rolled back, under the bundle's
/// settings, the gate role, no policies and parallel mode (one message). Returns f's result
/// and what outlived the savepoint (a write, a session advisory lock — released).
pub(crate) fn in_gate_savepoint<T>(
    tx: &mut Transaction<'_>,
    harness: &Harness,
    f: impl FnOnce(&mut Transaction<'_>) -> T,
) -> Result<(T, Effects), DbError> {
    let had_xid = xid_assigned(tx)?;
    let locks_before = leftovers::advisory_locks(tx)?;
    let mut sp = tx.transaction().map_err(|e| sql_err("savepoint", &e))?;
    // The prelude first: it may set session_replication_role, which only airlock's
    // own (superuser) role may do; then the gate role; then read-only, no policies and
    // parallel mode.
    sp.batch_execute(&format!(
        "{}{}SET LOCAL transaction_read_only = on; {NO_POLICIES} {FORCE_PARALLEL_MODE}",
        harness.pins.prelude(),
        harness.role_sql()
    ))
    .map_err(|e| gate_setup_error(harness, &e))?;
    let out = f(&mut sp);
    // A failed statement leaves the savepoint aborted; the check must run after the
    // rollback, in the enclosing transaction. A write inside the savepoint assigned an
    // xid to the top-level transaction too, and rolling back does not unassign it.
    sp.rollback()
        .map_err(|e| sql_err("rolling back the read-only savepoint", &e))?;
    let wrote = !had_xid && xid_assigned(tx)?;
    let left = leftovers::release_new_advisory_locks(tx, &locks_before)?;
    Ok((out, Effects { wrote, left }))
}

/// What a gate or probe did that outlived its rolled-back savepoint.
pub(crate) struct Effects {
    /// A transaction id was assigned: it wrote (rolled back).
    wrote: bool,
    /// Session-level advisory locks it took (released since).
    left: Vec<String>,
}

impl Effects {
    /// Why the gate or probe is refused, if it is.
    pub(crate) fn refusal(&self, what: &str) -> Option<String> {
        if self.wrote {
            return Some(format!(
                "the {what} wrote to the database (it was rolled back); {what}s must be read-only"
            ));
        }
        if !self.left.is_empty() {
            return Some(format!(
                "the {what} took session-level advisory lock(s) that would outlive it ({}); they were released. Something it reads (a view, a function) takes locks: {what}s must leave nothing behind",
                self.left.join(", ")
            ));
        }
        None
    }
}

/// No row-level security policy runs for a gate or probe: a table whose policies
/// would apply to the gate role is an error instead (it names the table).
const NO_POLICIES: &str = "SET LOCAL row_security = off;";

fn gate_setup_error(harness: &Harness, e: &postgres::Error) -> DbError {
    match &harness.role {
        Some(r) if crate::sqlstate(e) == Some("42501") => DbError::GateRole {
            message: format!(
                "cannot run gates and probes as role {r:?}: {}",
                pg_message(e)
            ),
            setup: Some(r.clone()),
        },
        _ => sql_err("preparing the gate/probe session", e),
    }
}

/// Settings that make the planner run every parallel-safe query in parallel mode; local
/// to the (always rolled back) savepoint. The GUC was renamed in PostgreSQL 16.
/// `max_parallel_workers = 0`: the Gather launches no worker, so airlock's own backend
/// runs the plan, in parallel mode all the same: whatever the query does (a session
/// advisory lock taken by owner code, say) happens here, where it is seen, and the
/// verdict does not depend on whether the server had a worker free.
const FORCE_PARALLEL_MODE: &str = "SELECT pg_catalog.set_config(CASE WHEN pg_catalog.current_setting('server_version_num')::pg_catalog.int4 >= 160000 THEN 'debug_parallel_query' ELSE 'force_parallel_mode' END, 'on', true), pg_catalog.set_config('max_parallel_workers_per_gather', GREATEST(pg_catalog.current_setting('max_parallel_workers_per_gather')::pg_catalog.int4, 1)::pg_catalog.text, true), pg_catalog.set_config('max_parallel_workers', '0', true)";

/// Why a gate or probe statement failed, run as `role` (the gate role; `None`: airlock's
/// own); a missing privilege names the grant, to that role, and where the list of the
/// gate role's grants is.
fn query_error_as(e: &postgres::Error, role: Option<&str>) -> String {
    let mut m = format!("SQL error: {}", pg_message(e));
    if crate::sqlstate(e) == Some("42501") {
        let grant = crate::gates::gate_grants::missing_grant(role, e)
            .map(|g| format!(": {g}"))
            .unwrap_or_default();
        m.push_str(&format!(
            " (the gate role lacks a grant{grant}; `airlock plan BUNDLE` lists the ones this bundle's gates and probes need)"
        ));
    }
    m
}

/// Whether a plan node (from `EXPLAIN (FORMAT JSON)`) is, or contains, a Gather.
fn has_gather(node: &serde_json::Value) -> bool {
    let own = node["Node Type"]
        .as_str()
        .is_some_and(|t| t.starts_with("Gather"));
    own || node["Plans"]
        .as_array()
        .is_some_and(|plans| plans.iter().any(has_gather))
}

/// Prove, without running it, that PostgreSQL will execute `sql` (the call to a
/// wrapper) in parallel mode (see the module docs); otherwise why not.
fn prove_parallel_mode(
    tx: &mut Transaction<'_>,
    harness: &Harness,
    sql: &str,
) -> Result<(), String> {
    let row = tx
        .query_typed_one(&format!("EXPLAIN (FORMAT JSON) {sql}"), &[])
        .map_err(|e| query_error_as(&e, harness.role.as_deref()))?;
    let plan: serde_json::Value = row
        .try_get(0)
        .map_err(|e| format!("could not read the plan: {e}"))?;
    if has_gather(&plan[0]["Plan"]) {
        return Ok(());
    }
    Err("the plan of the call to its wrapper has no Gather".into())
}

/// The text of the one statement in `sql`, without the `;` and comments after it.
fn statement_text(sql: &str) -> &str {
    let parsed = airlock_sql::pg_query::parse(sql, airlock_sql::pg_query::ParserOptions::DEFAULT);
    let Some(raw) = parsed
        .ok()
        .and_then(|p| p.protobuf.stmts.into_iter().next())
    else {
        return sql;
    };
    let from = usize::try_from(raw.stmt_location).unwrap_or(0);
    let len = usize::try_from(raw.stmt_len).unwrap_or(0);
    let to = if len == 0 { sql.len() } else { from + len };
    sql.get(from..to).unwrap_or(sql)
}

/// Set the bundle's settings and the gate role in `tx` (a savepoint).
fn enter_harness(tx: &mut Transaction<'_>, harness: &Harness) -> Result<(), DbError> {
    tx.batch_execute(&format!("{}{}", harness.pins.prelude(), harness.role_sql()))
        .map_err(|e| gate_setup_error(harness, &e))
}

/// How a gate or probe is read: through its wrapper (see [`run_wrapped`]).
const WRAPPED_CALL: &str = "SELECT * FROM pg_temp.airlock_query()";

/// Make `body` the body of a `PARALLEL SAFE SECURITY DEFINER` SQL function returning
/// `returns`, owned by the gate role (the harness is entered), created in `pg_temp`
/// inside the savepoint (and gone with it); then, read-only, without policies and in
/// parallel mode, prove the call to it runs under a Gather and read its rows.
///
/// The body — its planning included — runs in parallel mode whatever it is written
/// as (sublinks, InitPlans, CTEs, functions not declared PARALLEL SAFE): what the
/// server refuses there is what it would *do* (SET/RESET, a subtransaction,
/// `nextval`/`setval`, a transaction id, so any write or row lock). Inside a security
/// definer function PostgreSQL also refuses `SET ROLE`, `RESET ROLE` and
/// `SET SESSION AUTHORIZATION`, so nothing it calls can climb back to airlock's role.
fn run_wrapped(
    tx: &mut Transaction<'_>,
    harness: &Harness,
    what: &str,
    returns: &str,
    body: &str,
) -> Result<Vec<postgres::Row>, String> {
    let tag = dollar_tag(body);
    tx.batch_execute(&format!(
        "CREATE FUNCTION pg_temp.airlock_query() RETURNS TABLE ({returns}) \
         LANGUAGE sql STABLE SECURITY DEFINER PARALLEL SAFE SET search_path FROM CURRENT AS {tag}{body}\n{tag}; \
         SET LOCAL transaction_read_only = on; {NO_POLICIES} {FORCE_PARALLEL_MODE}",
    ))
    .map_err(|e| match (&harness.role, crate::sqlstate(&e)) {
        (Some(r), Some("42501")) if crate::gates::gate_grants::missing_grant(Some(r), &e).is_some() => format!(
            "the gate role {r:?} lacks a grant ({}): {}; `airlock plan BUNDLE` lists every grant this bundle's gates and probes need",
            pg_message(&e),
            crate::gates::gate_grants::missing_grant(Some(r), &e).unwrap_or_default()
        ),
        (Some(r), Some("42501")) => format!(
            "cannot run as gate role {r:?} ({}); it needs TEMP on this database (GRANT TEMP ON DATABASE … TO {r}) and the role airlock connects as must be allowed to SET ROLE to it",
            pg_message(&e)
        ),
        _ => query_error_as(&e, harness.role.as_deref()),
    })?;
    prove_parallel_mode(tx, harness, WRAPPED_CALL).map_err(|e| {
        format!("refused before running: PostgreSQL would not run the {what} in parallel mode, so airlock cannot prove it is read-only: {e}")
    })?;
    tx.query_typed(WRAPPED_CALL, &[])
        .map_err(|e| query_error_as(&e, harness.role.as_deref()))
}

/// Evaluate one gate (the harness is entered): its shape from the server's description
/// of it (nothing runs), then its one row through the wrapper ([`run_wrapped`]).
fn judge_gate(
    tx: &mut Transaction<'_>,
    harness: &Harness,
    sql: &str,
) -> Result<(bool, String), String> {
    let text = statement_text(sql);
    let described = tx
        .prepare(text)
        .map_err(|e| query_error_as(&e, harness.role.as_deref()))?;
    let cols = described.columns();
    let ready = cols
        .iter()
        .find(|c| c.name() == "ready")
        .ok_or_else(|| format!("has no column named \"ready\" ({GATE_SHAPE})"))?;
    if *ready.type_() != Type::BOOL {
        return Err(format!(
            "column \"ready\" is {}, not boolean ({GATE_SHAPE})",
            ready.type_()
        ));
    }
    let reason = if cols.iter().any(|c| c.name() == "reason") {
        "g.reason::pg_catalog.text"
    } else {
        "NULL::pg_catalog.text"
    };
    let body = format!("SELECT g.ready, {reason} FROM (\n{text}\n) AS g");
    let rows = run_wrapped(
        tx,
        harness,
        "gate",
        "ready pg_catalog.bool, reason pg_catalog.text",
        &body,
    )?;
    if rows.is_empty() {
        return Err("returned no row (a gate must return exactly one)".into());
    }
    if rows.len() > 1 {
        return Err(format!(
            "returned {} rows (a gate must return exactly one)",
            rows.len()
        ));
    }
    let reason: String = rows[0].get::<_, Option<String>>(1).unwrap_or_default();
    let or = |default: &str| {
        if reason.is_empty() {
            default.to_string()
        } else {
            reason.clone()
        }
    };
    match rows[0].get::<_, Option<bool>>(0) {
        Some(true) => Ok((true, or("ready"))),
        Some(false) => Ok((false, or("ready = false"))),
        None if reason.is_empty() => Err("ready is NULL".into()),
        None => Err(format!("ready is NULL ({reason})")),
    }
}

/// Run `f` in a savepoint of `tx` that is always rolled back; what outlived it
/// (session advisory locks, released since) comes back as [`Effects`]. A write is
/// refused inside: the wrapper runs in parallel mode, where no transaction id is given.
fn in_wrapper_savepoint<T>(
    tx: &mut Transaction<'_>,
    f: impl FnOnce(&mut Transaction<'_>) -> Result<T, DbError>,
) -> Result<(T, Effects), DbError> {
    let locks_before = leftovers::advisory_locks(tx)?;
    let mut sp = tx.transaction().map_err(|e| sql_err("savepoint", &e))?;
    let out = f(&mut sp)?;
    sp.rollback()
        .map_err(|e| sql_err("rolling back the read-only savepoint", &e))?;
    let left = leftovers::release_new_advisory_locks(tx, &locks_before)?;
    Ok((out, Effects { wrote: false, left }))
}

/// Run the named gates inside `tx` (which the caller always rolls back or which
/// continues an apply). Each gate gets its own rolled-back read-only savepoint.
pub fn run_gates(
    tx: &mut Transaction<'_>,
    gates: &[(String, String, String)], // (name, file, sql)
    harness: &Harness,
) -> Result<GateReport, DbError> {
    let mut results = vec![];
    for (name, file, sql) in gates {
        if let Some(p) = airlock_sql::check(file, sql, SqlRole::Gate)
            .into_iter()
            .next()
        {
            results.push(GateResult {
                name: name.clone(),
                file: file.clone(),
                ready: false,
                reason: format!("refused before running: {p}"),
            });
            continue;
        }
        let (judged, effects) = in_wrapper_savepoint(tx, |sp| {
            enter_harness(sp, harness)?;
            Ok(judge_gate(sp, harness, sql))
        })?;
        let (ready, reason) = match (judged, effects.refusal("gate")) {
            (_, Some(refused)) => (false, refused),
            (Ok((r, reason)), None) => (r, reason),
            (Err(e), None) => (false, e),
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

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct ProbeDiff {
    pub key: String,
    pub expected: String,
    /// None when the probe returned no row for the key.
    pub actual: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct ProbeReport {
    pub file: String,
    pub matches: bool,
    pub values: BTreeMap<String, String>,
    pub expected: BTreeMap<String, String>,
    pub mismatches: Vec<ProbeDiff>,
}

impl ProbeReport {
    pub fn describe(&self) -> String {
        let b =
            |t: &str| airlock_base::text::bound(t, airlock_base::text::MAX_LINE_BYTES).into_owned();
        let mut s = self
            .mismatches
            .iter()
            .map(|d| {
                format!(
                    "{}: expected {}, got {}",
                    b(&d.key),
                    b(&d.expected),
                    b(d.actual.as_deref().unwrap_or("(no row)"))
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        if let Some(keys) = self.unexpected_keys() {
            s.push_str(&format!(
                " (the probe returned no row for an expected key, and rows for keys the bundle does not expect: {}; a misspelt key?)",
                b(&keys)
            ));
        }
        s
    }

    /// The keys the probe returned that no expectation names, when an expected key
    /// got no row: together they usually mean a key spelt two ways.
    fn unexpected_keys(&self) -> Option<String> {
        if !self.mismatches.iter().any(|d| d.actual.is_none()) {
            return None;
        }
        let extra: Vec<&str> = self
            .values
            .keys()
            .filter(|k| !self.expected.contains_key(*k))
            .map(String::as_str)
            .collect();
        (!extra.is_empty()).then(|| extra.join(", "))
    }
}

/// Read a probe's rows through its wrapper ([`run_wrapped`]; the harness is entered).
fn read_probe(
    tx: &mut Transaction<'_>,
    harness: &Harness,
    sql: &str,
) -> Result<BTreeMap<String, String>, String> {
    let rows = run_wrapped(
        tx,
        harness,
        "probe",
        "key pg_catalog.text, value pg_catalog.text",
        statement_text(sql),
    )
    .map_err(|e| format!("{e} ({PROBE_SHAPE})"))?;
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

/// A dollar-quote tag that does not occur in `sql`.
fn dollar_tag(sql: &str) -> String {
    (0u64..)
        .map(|n| format!("$airlock_probe_{n}$"))
        .find(|t| !sql.contains(t.as_str()))
        .expect("some tag is free")
}

/// Run a probe in a rolled-back read-only savepoint and compare with `expect`.
pub fn run_probe(
    tx: &mut Transaction<'_>,
    file: &str,
    sql: &str,
    expect: &BTreeMap<String, String>,
    harness: &Harness,
) -> Result<ProbeReport, DbError> {
    if let Some(p) = airlock_sql::check(file, sql, SqlRole::Probe)
        .into_iter()
        .next()
    {
        return Err(DbError::State(format!("probe refused before running: {p}")));
    }
    let (values, effects) = in_wrapper_savepoint(tx, |sp| {
        enter_harness(sp, harness)?;
        Ok(read_probe(sp, harness, sql))
    })?;
    if let Some(refused) = effects.refusal("probe") {
        return Err(DbError::State(format!("probe {file}: {refused}")));
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

/// The role gates and probes run as when `--gate-role` is not given.
pub const DEFAULT_GATE_ROLE: &str = "airlock_gate";

/// Powers that reach outside the database, for each of the candidate gate role ($1)
/// and airlock's own role: one row each, `which` = 'gate' | 'self'.
const ROLE_POWERS: &str = r#"
WITH x AS (
  SELECT 'gate' AS which, r.oid, r.rolname::pg_catalog.text AS name, r.rolsuper, r.rolcreaterole
    FROM pg_catalog.pg_roles r WHERE r.rolname = $1
  UNION ALL
  SELECT 'self', r.oid, r.rolname::pg_catalog.text, r.rolsuper, r.rolcreaterole
    FROM pg_catalog.pg_roles r WHERE r.rolname = SESSION_USER)
SELECT x.which, x.name,
  pg_catalog.array_remove(ARRAY[
    CASE WHEN x.rolsuper THEN 'is a superuser' END,
    CASE WHEN x.rolcreaterole THEN 'has CREATEROLE (it could grant itself more)' END,
    CASE WHEN EXISTS (SELECT FROM pg_catalog.pg_roles s WHERE s.rolsuper AND s.oid <> x.oid
                       AND pg_catalog.pg_has_role(x.oid, s.oid, 'MEMBER')) THEN 'is a member of a superuser role' END,
    CASE WHEN pg_catalog.pg_has_role(x.oid, 'pg_execute_server_program', 'MEMBER') THEN 'may run server programs (pg_execute_server_program)' END,
    CASE WHEN pg_catalog.pg_has_role(x.oid, 'pg_read_server_files', 'MEMBER') THEN 'may read server files (pg_read_server_files)' END,
    CASE WHEN pg_catalog.pg_has_role(x.oid, 'pg_write_server_files', 'MEMBER') THEN 'may write server files (pg_write_server_files)' END
  ], NULL) OPERATOR(pg_catalog.||) ARRAY(
    SELECT 'may execute ' || p.oid::pg_catalog.regprocedure::pg_catalog.text
      FROM pg_catalog.pg_proc p
     WHERE p.proname IN ('lo_import', 'lo_export', 'pg_read_file', 'pg_read_binary_file', 'pg_stat_file',
                         'pg_ls_dir', 'pg_file_write', 'pg_file_rename', 'pg_file_unlink', 'pg_file_sync',
                         'pg_logdir_ls', 'dblink', 'dblink_exec', 'dblink_connect', 'dblink_connect_u',
                         'dblink_open', 'dblink_send_query')
       AND (p.pronamespace = 'pg_catalog'::pg_catalog.regnamespace
            OR EXISTS (SELECT FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid
                        WHERE d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND d.objid = p.oid AND d.deptype = 'e'
                          AND e.extname IN ('dblink', 'adminpack', 'postgres_fdw')))
       AND pg_catalog.has_function_privilege(x.oid, p.oid, 'EXECUTE')
     ORDER BY 1),
  pg_catalog.pg_has_role(SESSION_USER, x.oid, 'MEMBER')
FROM x"#;

/// Decide which role gates and probes run as: `--gate-role`, else `airlock_gate` when
/// it exists, else airlock's own role when it has no power outside the database.
/// Any role with such powers (superuser, server programs or files, dblink…) is refused.
pub fn resolve_role(
    client: &mut impl postgres::GenericClient,
    requested: Option<&str>,
) -> Result<Option<String>, DbError> {
    let wanted = requested.unwrap_or(DEFAULT_GATE_ROLE);
    let rows = client
        .query_typed(ROLE_POWERS, &[(&wanted, postgres::types::Type::NAME)])
        .map_err(|e| sql_err("checking the gate role", &e))?;
    let find = |which: &str| {
        rows.iter()
            .find(|r| r.get::<_, String>(0) == which)
            .map(|r| {
                (
                    r.get::<_, String>(1),
                    r.get::<_, Vec<String>>(2),
                    r.get::<_, bool>(3),
                )
            })
    };
    match find("gate") {
        Some((name, powers, member)) => {
            if !powers.is_empty() {
                return Err(DbError::GateRole {
                    message: format!(
                        "gate role {name:?} {}: gates and probes must not be able to act outside the database",
                        powers.join(", ")
                    ),
                    setup: None,
                });
            }
            if !member {
                return Err(DbError::GateRole {
                    message: format!(
                        "the role airlock connects as may not SET ROLE to gate role {name:?}: GRANT {} TO the connecting role, or name a gate role of your own with --gate-role ROLE (or AIRLOCK_GATE_ROLE)",
                        crate::quote_ident(&name)
                    ),
                    setup: None,
                });
            }
            Ok(Some(name))
        }
        None if requested.is_some() => Err(DbError::GateRole {
            message: format!(
                "gate role {wanted:?} (from --gate-role, AIRLOCK_GATE_ROLE or gate_role in airlock.toml): no such role"
            ),
            setup: Some(wanted.to_string()),
        }),
        None => match find("self") {
            Some((_, powers, _)) if powers.is_empty() => Ok(None),
            Some((me, powers, _)) => Err(DbError::GateRole {
                message: format!(
                    "airlock connects as {me:?}, which {}; gates and probes must not run with powers outside the database, and there is no role {DEFAULT_GATE_ROLE:?} to run them as",
                    powers.join(", ")
                ),
                setup: Some(DEFAULT_GATE_ROLE.into()),
            }),
            None => Err(DbError::GateRole {
                message: "cannot find the role airlock connects as in pg_roles".into(),
                setup: None,
            }),
        },
    }
}

#[cfg(test)]
mod probe_tests {
    use super::*;

    #[test]
    fn a_missing_key_beside_an_unexpected_one_names_both() {
        let r = ProbeReport {
            file: "p.sql".into(),
            matches: false,
            values: [
                ("gap".to_string(), "210".to_string()),
                ("inventroy".to_string(), "35".to_string()),
            ]
            .into_iter()
            .collect(),
            expected: [
                ("gap".to_string(), "210".to_string()),
                ("inventory".to_string(), "35".to_string()),
            ]
            .into_iter()
            .collect(),
            mismatches: vec![ProbeDiff {
                key: "inventory".into(),
                expected: "35".into(),
                actual: None,
            }],
        };
        let d = r.describe();
        assert!(d.starts_with("inventory: expected 35, got (no row)"), "{d}");
        assert!(
            d.contains("keys the bundle does not expect: inventroy"),
            "{d}"
        );
        // A plain value mismatch says nothing of other keys.
        let r = ProbeReport {
            mismatches: vec![ProbeDiff {
                key: "gap".into(),
                expected: "0".into(),
                actual: Some("210".into()),
            }],
            ..r
        };
        assert!(
            !r.describe().contains("does not expect"),
            "{}",
            r.describe()
        );
    }
}
