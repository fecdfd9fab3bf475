//! `--wait`: poll the gate until READY, a timeout, or Ctrl-C.
//!
//! Invariant: waiting holds nothing. Each poll is a fresh connection with one
//! transaction that is rolled back (the gates in it run read-only) and a session that
//! is closed; no lock is held and nothing is written between polls. No daemon: the process that
//! waits is the operator's own command, and a READY only lets `apply` start its
//! ordinary run, which checks everything again under the deploy lock.

use crate::deploy::apply::{self, check_required, gates_for, next_tiers, Options};
use crate::gates::gate::{self, GateReport};
use crate::{session::conn, sql_err, DbError};
use airlock_bundle::verified::VerifiedBundle;
use schemars::JsonSchema;
use serde::Serialize;
use std::time::{Duration, Instant};

/// How a wait ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum WaitEnd {
    Ready,
    Timeout,
    Interrupted,
}

/// One change of verdict, or of the BLOCKED reason, seen while waiting (the first poll
/// is always one).
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct PollChange {
    pub at: String,
    /// Which poll saw it (1 = the first).
    pub poll: u32,
    pub verdict: String,
    /// The BLOCKED gates and their reasons (empty when READY).
    pub reason: String,
    /// Not a change: the verdict is still this, said again after the heartbeat
    /// interval (shown to the operator, never recorded in the history).
    #[serde(skip)]
    pub still: bool,
}

/// The poll history, in the final document.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct WaitReport {
    pub ended: WaitEnd,
    pub polls: u32,
    pub poll_interval_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait_timeout_ms: Option<u64>,
    pub waited_ms: u64,
    pub changes: Vec<PollChange>,
}

pub struct WaitSpec {
    pub poll_interval: Duration,
    pub timeout: Option<Duration>,
    /// Say the verdict again when nothing was said for this long (`None`: never).
    pub heartbeat: Option<Duration>,
}

/// Poll with `poll_once` until READY, the timeout, or Ctrl-C; `on_change` sees each
/// change of verdict as it happens. Returns the last gate report and the history.
pub fn wait(
    spec: &WaitSpec,
    mut poll_once: impl FnMut() -> Result<GateReport, DbError>,
    on_change: &dyn Fn(&PollChange),
) -> Result<(GateReport, WaitReport), DbError> {
    conn::install_interrupt_handler();
    let _waiting = conn::Waiting::begin();
    let started = Instant::now();
    let mut history = WaitReport {
        ended: WaitEnd::Timeout,
        polls: 0,
        poll_interval_ms: spec.poll_interval.as_millis() as u64,
        wait_timeout_ms: spec.timeout.map(|t| t.as_millis() as u64),
        waited_ms: 0,
        changes: vec![],
    };
    let mut last: Option<GateReport> = None;
    let mut said = Instant::now();
    loop {
        let polled = poll_once();
        history.polls += 1;
        let (verdict, reason, report) = match polled {
            Ok(report) => {
                let reason = if report.ready() {
                    String::new()
                } else {
                    report.blocked_summary()
                };
                (report.verdict.clone(), reason, Some(report))
            }
            // Ctrl-C cancelled the poll's statement: the wait ends as interrupted.
            Err(_) if conn::interrupted() => {
                history.ended = WaitEnd::Interrupted;
                history.waited_ms = started.elapsed().as_millis() as u64;
                return match last {
                    Some(report) => Ok((report, history)),
                    None => Err(DbError::Blocked(
                        "stopped waiting (Ctrl-C) during the first poll; nothing was changed"
                            .into(),
                    )),
                };
            }
            // The server went away after a poll that reached it (a restart, a failover,
            // connections refused for a while): keep waiting, and say so. A first poll
            // that fails ends the wait at once, so a wrong --db is not waited on.
            Err(e) if last.is_some() && unreachable(&e) => {
                (UNREACHABLE.to_string(), e.to_string(), None)
            }
            Err(e) => return Err(e),
        };
        let changed = history
            .changes
            .last()
            .is_none_or(|c| c.verdict != verdict || c.reason != reason);
        let due = spec.heartbeat.is_some_and(|h| said.elapsed() >= h);
        if changed || due {
            let c = PollChange {
                at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                poll: history.polls,
                verdict,
                reason,
                still: !changed,
            };
            on_change(&c);
            said = Instant::now();
            if changed {
                history.changes.push(c);
            }
        }
        let end = if report.as_ref().is_some_and(GateReport::ready) {
            Some(WaitEnd::Ready)
        } else {
            sleep_until_next(started, Instant::now() + spec.poll_interval, spec.timeout)
        };
        if report.is_some() {
            last = report;
        }
        if let Some(end) = end {
            history.ended = end;
            history.waited_ms = started.elapsed().as_millis() as u64;
            let report = last.expect("a wait ends after at least one answered poll");
            return Ok((report, history));
        }
    }
}

/// The verdict a poll records when the server could not be asked.
pub const UNREACHABLE: &str = "UNREACHABLE";

/// A failure to reach the server, not an answer from it: a refused or lost connection,
/// or a server that is starting up, shutting down or out of connection slots.
fn unreachable(e: &DbError) -> bool {
    let transient = |m: &str| {
        m.contains("SQLSTATE 08")
            || ["57P01", "57P02", "57P03", "53300"]
                .iter()
                .any(|code| m.contains(&format!("SQLSTATE {code}")))
    };
    match e {
        // Anything but an answer naming a wrong database, role or password.
        DbError::Connect { message, .. } => !message.contains("SQLSTATE") || transient(message),
        DbError::Sql { message, .. } => transient(message),
        _ => false,
    }
}

/// Sleep until `next` in short steps, so Ctrl-C and the timeout are seen promptly.
/// Returns how the wait ends, or `None` when it is time to poll again.
fn sleep_until_next(started: Instant, next: Instant, timeout: Option<Duration>) -> Option<WaitEnd> {
    loop {
        if conn::interrupted() {
            return Some(WaitEnd::Interrupted);
        }
        if timeout.is_some_and(|t| started.elapsed() >= t) {
            return Some(WaitEnd::Timeout);
        }
        let now = Instant::now();
        if now >= next {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50).min(next - now));
    }
}

/// One poll for `apply --wait`: the gates of the tiers apply would run next (the
/// ledger decides which), in a read-only transaction on a fresh connection. A refusal
/// (already applied, downgrade…) or a missing param ends the wait as apply would.
pub fn poll_apply_gates(vb: &VerifiedBundle, opts: &Options<'_>) -> Result<GateReport, DbError> {
    let m = vb.manifest();
    let mut session = apply::open(opts.conn, &opts.expected_db, m, &opts.statement_timeout)?;
    let facts = session.facts.clone();
    let pins = session.pins(m, opts);
    let mut tx = session
        .client
        // Not READ ONLY: each gate creates its wrapper function in `pg_temp` (in a
        // savepoint that is rolled back, as the whole transaction is); the gate itself
        // runs read-only and in parallel mode (`gate::run_gates`).
        .build_transaction()
        .start()
        .map_err(|e| sql_err("BEGIN", &e))?;
    let rows = apply::read_checked(&mut tx, &facts)?;
    let (_, idx) = next_tiers(m, vb.id(), &rows, opts.through.as_deref())?;
    check_required(vb, &idx, &opts.params)?;
    let gates = gates_for(vb, &idx)?;
    let report = if gates.is_empty() {
        GateReport::from_results(vec![])
    } else {
        let role = gate::resolve_role(&mut tx, opts.gate_role.as_deref())?;
        apply::set_params(&mut tx, &opts.params)?;
        // The quorum too, judged as apply will judge it under the lock: READY here
        // needs both (an approval dropped into an `--approval` directory or inserted
        // into the approvals table counts at the next poll).
        let harness = gate::Harness { pins, role };
        crate::ledger::ratify::gate_report(
            vb,
            &opts.claim(),
            Some(&idx),
            &mut tx,
            &gates,
            &harness,
        )?
    };
    tx.rollback().map_err(|e| sql_err("ROLLBACK", &e))?;
    drop(session);
    Ok(report)
}
