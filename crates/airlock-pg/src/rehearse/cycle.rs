//! Clone rehearsal: the whole cycle on `CREATE DATABASE … TEMPLATE target`, or, when
//! the target has other sessions (a live database), on a clone restored from one
//! `pg_dump` snapshot ([`crate::rehearse::dump_clone`]). Before ratification the gate is
//! reported BLOCKED and the rehearsal goes past it on the clone only.
//!
//! Invariant: the target itself is only read (its size before the clone, its
//! fingerprint at the end); every change happens on the clone, which is dropped
//! whatever happens (success, failure, Ctrl-C; subscriptions a bundle made there are
//! detached and dropped first). The name guard accepts the clone's name here and
//! nowhere else. Nothing outside the clone may change: a bundle whose files reach
//! beyond their database (roles, database settings, subscriptions…) is refused before
//! anything is cloned, and the cluster's shared catalogs are read around every step
//! that runs bundle SQL and inside each of its transactions before COMMIT
//! ([`crate::rehearse::cluster_state::Watch`]) — what the rehearsal's own transactions changed
//! fails it, named with its undo (not undone); what other sessions changed meanwhile
//! is noted.
//!
//! The proof ([`crate::rehearse::proof`]): the clone at the end (after apply and rollback) and
//! the target at the same moment each hold the schema the clone had at entry and, in
//! every table, the rows the target had at the clone. `CREATE DATABASE … TEMPLATE`
//! refuses to start while anyone is connected to the target (or a prepared
//! transaction uses it) and locks new connections out until the copy is done, so the
//! clone is the target's content at that instant. Rows are not read where storage
//! proves them unchanged ([`crate::rehearse::storage`]): the target's storage is recorded right
//! before the clone, the clone's while it is closed to connections, and a side whose
//! table's files nobody wrote since (checked after a `CHECKPOINT` at the end) holds
//! that table's content at the clone. The entry reads the tables storage cannot vouch
//! for; the end reads, on the sides whose storage changed, what it must compare.
//! Without the rights storage needs, every table is read at entry and at both ends.
//! A dump clone is the target at the dumped snapshot: its schema is checked against
//! the target's in that snapshot, every table is read (its files are new), and the
//! live target is held to the entry by its schema only.

use crate::catalog::fingerprint::{self, Fingerprint};
use crate::deploy::apply;
use crate::deploy::options::{Observer, Options};
use crate::rehearse::cluster_state::{ClusterChange, Watch, Watched};
use crate::rehearse::dump_clone::{self, DumpCost};
use crate::rehearse::lock_impact::{self, LockImpact, Timer};
use crate::rehearse::proof::{self, Ends, Entry, Recorded, Where};
use crate::rehearse::storage::{self, Files};
use crate::session::conn::{self, ConnSpec};
use crate::{quote_ident, sql_err, sqlstate, DbError};
use airlock_base::exit::Exit;
use airlock_bundle::target_db::TargetDatabase;
use airlock_bundle::verified::VerifiedBundle;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Instant;

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct Step {
    pub step: String,
    /// PASS, FAIL, ASSUMED (gate BLOCKED: the rehearsal went past it on the clone) or
    /// SKIPPED.
    pub verdict: String,
    pub detail: String,
    pub duration_ms: u64,
}

/// The gate's verdict on the clone (the target's, as of the clone).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum GateSeen {
    Ready,
    /// BLOCKED: before ratification. The rehearsal went past it on the clone only
    /// (`gates_assumed`), unless `--require-ready` stopped it.
    Blocked,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct RehearseReport {
    pub bundle_id: String,
    pub target: String,
    pub clone: String,
    /// When the rehearsal started and ended (RFC 3339, this host's clock): the time a
    /// dossier names its evidence by. Absent in reports of older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// The strategy `CREATE DATABASE` used (`wal_log`, `file_copy`), once cloned.
    pub clone_strategy: Option<String>,
    /// WAL the server wrote while cloning (`pg_current_wal_lsn` difference; other
    /// sessions' writes in that time count too).
    pub clone_wal_bytes: Option<u64>,
    /// What the `dump` clone cost (time of pg_dump and pg_restore, dump size), when
    /// the clone was made that way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clone_cost: Option<crate::rehearse::dump_clone::DumpCost>,
    /// How long the `CHECKPOINT` before recording the target's storage took (ms): the
    /// server writing out pages changed before the rehearsal (a bulk load, hint bits
    /// set since its last checkpoint), the server's cost rather than the rehearsal's.
    /// Absent when storage was not recorded (no `pg_checkpoint`, or a dump clone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_checkpoint_ms: Option<u64>,
    /// How long the rehearsal waited for target files written in the last seconds to
    /// settle (so they need not be read at entry and at the end), when it waited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_settle_wait_ms: Option<u64>,
    pub ok: bool,
    pub exit_code: Exit,
    /// The gate's verdict on the clone (as the target's was at the clone), once asked.
    pub gate: Option<GateSeen>,
    /// The gate was BLOCKED and the rehearsal went past it on the clone only: it
    /// proves the cycle before ratification; `apply` on the target still waits for
    /// READY.
    pub gates_assumed: bool,
    pub steps: Vec<Step>,
    /// Where the failing bundle statement is, when apply or rollback on the clone
    /// failed on one (as in the error document of `apply`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<crate::deploy::files::StatementAt>,
    /// The rehearsal's entry fingerprint: the clone's schema at entry and, per table,
    /// its rows at the clone (as read, or a stand-in where storage proved them
    /// unchanged). Equal to `exit_fingerprint` exactly when the clone's check held; not
    /// comparable with `airlock fingerprint --data`.
    pub entry_fingerprint: Option<String>,
    /// The clone's exit fingerprint, made as the entry's (after a partial apply: its
    /// schema fingerprint, compared with the one recorded before the first tier).
    pub exit_fingerprint: Option<String>,
    /// What changed in the cluster outside the clone during the rehearsal (roles,
    /// settings, databases…), each with the statement that undoes it where one can.
    /// The rehearsal does not undo them itself: another session may have made them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cluster_changes: Vec<ClusterChange>,
    /// What other sessions changed in the cluster while a step ran bundle SQL: not the
    /// rehearsal's (no transaction of the rehearsal wrote those rows), so not counted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_sessions_changes: Vec<ClusterChange>,
    /// The locks the apply took on relations that existed before it, measured on the
    /// clone: per statement, the heaviest mode on each relation, the statement's own
    /// time and how long the lock was held (transactional tiers: until COMMIT; online
    /// tiers: the statement's run). Absent when the apply did not run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_impact: Option<LockImpact>,
    /// The statements that made the rehearsal refuse the bundle before cloning: they
    /// change the cluster beyond the target database, which a clone cannot isolate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reaches_beyond: Vec<airlock_sql::Reach>,
    /// `plan`'s predictions asked of the target before the clone; what the apply on
    /// the clone measured of the tables the release destroys or changes, beside what
    /// was predicted; and the statements the target could not judge, as the clone did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predictions: Option<crate::rehearse::predictions::Rehearsed>,
    /// What to do next, when the rehearsal failed for a reason the operator can fix
    /// before running it again (a login that may not create the clone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// What the clone step learnt besides its verdict: a dump clone's cost, and what to
/// do next when it could not clone.
#[derive(Default)]
struct CloneNotes {
    cost: std::cell::RefCell<Option<DumpCost>>,
    hint: std::cell::RefCell<Option<String>>,
}

/// The predictions with what the apply on the clone measured and did.
fn rehearsed(
    vb: &VerifiedBundle,
    p: crate::predict::Predictions,
    a: &mut Applied,
) -> crate::rehearse::predictions::Rehearsed {
    use crate::rehearse::predictions::{compare, judge, Rehearsed};
    let measured = std::mem::take(&mut a.measured);
    let stopped = a.stopped.as_ref().map(|(f, l)| (f.as_str(), *l));
    Rehearsed {
        compared: compare(&p, &measured),
        judged: judge(vb, &p, a.ran, stopped),
        predictions: p,
        measured,
    }
}

/// How `CREATE DATABASE` copies the target (PostgreSQL 15+; older servers copy files).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloneStrategy {
    /// `file_copy` for databases of at least [`FILE_COPY_FROM`] bytes per 1,000
    /// relation files, else `wal_log`.
    Auto,
    WalLog,
    FileCopy,
    /// `pg_dump` of one snapshot restored into a new database
    /// ([`crate::rehearse::dump_clone`]): needs nobody to leave the target. `auto` picks it when
    /// the target has other sessions.
    Dump,
}

/// `auto` picks `file_copy` when the target has at least this many bytes per 1,000
/// relation files (and at least this many bytes): `wal_log` writes every block to the
/// WAL, `file_copy` pays two checkpoints and a per-file cost (see README).
pub const FILE_COPY_FROM: i64 = 512 << 20;

impl CloneStrategy {
    /// The strategy to use for a database of `bytes` in `files` relation files.
    pub fn pick(self, bytes: i64, files: i64) -> &'static str {
        match self {
            CloneStrategy::WalLog => "wal_log",
            CloneStrategy::FileCopy => "file_copy",
            CloneStrategy::Dump => "dump",
            CloneStrategy::Auto => {
                let per_thousand = bytes.saturating_mul(1000) / files.max(1000);
                if per_thousand >= FILE_COPY_FROM {
                    "file_copy"
                } else {
                    "wal_log"
                }
            }
        }
    }
}

pub struct RehearseOptions<'a> {
    pub conn: &'a ConnSpec,
    pub clone_strategy: CloneStrategy,
    pub params: BTreeMap<String, String>,
    /// Go past a BLOCKED gate on the clone (the command line's default; false is
    /// `--require-ready`: a BLOCKED gate stops the rehearsal, exit 3).
    pub assume_gates: bool,
    pub statement_timeout: String,
    pub gate_role: Option<String>,
    /// The signed approvals `--approval` names (a bundle with `[ratification]`).
    pub approvals: Option<&'a crate::deploy::options::Approvals>,
    /// Shown the apply and rollback steps on the clone as they run.
    pub observer: Option<&'a dyn Observer>,
    /// How long each of `plan`'s questions may take on the target before the clone
    /// (`--predict-timeout`).
    pub predict_timeout: std::time::Duration,
}

struct Run {
    steps: Vec<Step>,
    exit: Exit,
    /// Where the first failing bundle statement is (apply or rollback on the clone).
    at: Option<crate::deploy::files::StatementAt>,
}

impl Run {
    /// Run a step that runs whatever happened before (cleanup, the final proofs): PASS
    /// with `Ok(detail)`, FAIL with `Err((exit, detail))`; the first failure's exit
    /// code stays the run's.
    fn always(&mut self, name: &str, f: impl FnOnce() -> Result<String, (Exit, String)>) {
        let t = Instant::now();
        let (verdict, detail) = match f() {
            Ok(detail) => ("PASS", detail),
            Err((code, detail)) => {
                if self.exit.is_success() {
                    self.exit = code;
                }
                ("FAIL", detail)
            }
        };
        self.steps.push(Step {
            step: name.into(),
            verdict: verdict.into(),
            detail,
            duration_ms: t.elapsed().as_millis() as u64,
        });
    }

    /// Run one step; after the first failure the remaining steps are SKIPPED.
    fn step<T>(
        &mut self,
        name: &str,
        f: impl FnOnce() -> Result<(T, String), (Exit, String)>,
    ) -> Option<T> {
        if !self.exit.is_success() || conn::interrupted() {
            if conn::interrupted() && self.exit.is_success() {
                self.exit = Exit::Runtime;
                self.steps.push(Step {
                    step: name.into(),
                    verdict: "FAIL".into(),
                    detail: "interrupted (Ctrl-C)".into(),
                    duration_ms: 0,
                });
            } else {
                self.steps.push(Step {
                    step: name.into(),
                    verdict: "SKIPPED".into(),
                    detail: "an earlier step failed".into(),
                    duration_ms: 0,
                });
            }
            return None;
        }
        let t = Instant::now();
        let r = f();
        let ms = t.elapsed().as_millis() as u64;
        match r {
            Ok((v, detail)) => {
                let verdict = if detail.starts_with("ASSUMED") {
                    "ASSUMED"
                } else {
                    "PASS"
                };
                self.steps.push(Step {
                    step: name.into(),
                    verdict: verdict.into(),
                    detail,
                    duration_ms: ms,
                });
                Some(v)
            }
            Err((code, detail)) => {
                self.exit = code;
                self.steps.push(Step {
                    step: name.into(),
                    verdict: "FAIL".into(),
                    detail,
                    duration_ms: ms,
                });
                None
            }
        }
    }
}

/// A syntax error on the target: lint parses with PostgreSQL 18's grammar (and names
/// only a short list of newer syntax), while the target may be older. Say so.
fn explain_syntax_error(e: DbError, min_server_version: Option<i64>) -> DbError {
    let explained = |message: String| {
        let admits = min_server_version
            .map(|v| {
                format!(
                    " (the bundle's [target] min_server_version = {v} admits PostgreSQL {})",
                    v / 10000
                )
            })
            .unwrap_or_default();
        format!(
            "{message}\nlint checks PostgreSQL 18's grammar; this server may be older than the syntax{admits}: rewrite the statement for the oldest target, or raise min_server_version"
        )
    };
    match e {
        DbError::Sql { context, message } if message.contains("syntax error") => DbError::Sql {
            context,
            message: explained(message),
        },
        DbError::Statement {
            context,
            message,
            at,
        } if message.contains("syntax error") => DbError::Statement {
            context,
            message: explained(message),
            at,
        },
        e => e,
    }
}

fn fail(e: DbError) -> (Exit, String) {
    (e.exit_code(), e.to_string())
}

/// [`fail`] for a step the watch is around: a transaction bundle SQL ended itself
/// makes every cluster change of the step count ([`Watch::ended_unseen`]).
fn seen_fail(watch: &Watch, e: DbError) -> (Exit, String) {
    watch.ended_unseen(&e);
    fail(e)
}

/// What `auto` needs to know of the target: its size, its relation files and the
/// server version (no STRATEGY before PostgreSQL 15). The connection closes before
/// the clone (CREATE DATABASE waits up to 5 s for its backend to exit).
/// What the target's catalog holds that reaches beyond it ([`crate::session::outside`]).
fn target_reach(
    spec: &ConnSpec,
    expected: &TargetDatabase,
) -> Result<Vec<airlock_sql::Reach>, DbError> {
    let mut c = spec.connect()?;
    conn::name_guard(&mut c, expected)?;
    crate::session::outside::in_catalog(&mut c)
}

fn size_of(spec: &ConnSpec, expected: &TargetDatabase) -> Result<(i64, i64, i64), DbError> {
    let mut c = spec.connect()?;
    let info = conn::name_guard(&mut c, expected)?;
    let row = c
        .query_one(
            "SELECT pg_catalog.pg_database_size(pg_catalog.current_database()), \
             (SELECT pg_catalog.count(*) FROM pg_catalog.pg_class c \
              WHERE c.relkind OPERATOR(pg_catalog.=) ANY ('{r,i,t,m,S}'::pg_catalog.\"char\"[]))",
            &[],
        )
        .map_err(|e| sql_err("target size", &e))?;
    Ok((row.get(0), row.get(1), info.server_version_num))
}

/// What `CREATE DATABASE … TEMPLATE` does not copy, left out when the target is
/// compared with the clone's entry fingerprint.
const NOT_CLONED: &[&str] = &["subscription"];

/// The rollback did not bring back the entry: a short summary for the table (the
/// objects that differ, counted, the first few named).
fn not_restored(now: &Fingerprint, entry: &Fingerprint) -> String {
    let diff = fingerprint::diff(entry, now);
    let shown: Vec<&str> = diff.iter().take(3).map(String::as_str).collect();
    format!(
        "rollback did not restore the baseline: {} != {}; {} object(s) differ{}{}",
        now.short(),
        entry.short(),
        diff.len(),
        if shown.is_empty() { "" } else { ": " },
        shown.join(", ")
    )
}

/// What the ledger on the clone says about this bundle before the rehearsal.
struct Partial {
    applied: Vec<String>,
    /// The schema fingerprint before the first applied tier.
    baseline: String,
    baseline_seq: i64,
}

fn applied_on(spec: &ConnSpec, expected: &str, vb: &VerifiedBundle) -> Result<Partial, DbError> {
    let mut c = spec.connect()?;
    conn::name_guard_exact(&mut c, expected)?;
    let mut tx = c
        .build_transaction()
        .read_only(true)
        .start()
        .map_err(|e| sql_err("BEGIN READ ONLY", &e))?;
    let rows = crate::ledger::chain::read_chained(&mut tx)?;
    tx.rollback().map_err(|e| sql_err("ROLLBACK", &e))?;
    let st = crate::ledger::chain::state_of(&rows, vb.id());
    let (baseline, baseline_seq) = st
        .first_apply
        .map(|r| (r.fingerprint_before, r.seq))
        .unwrap_or_default();
    Ok(Partial {
        applied: st.applied,
        baseline,
        baseline_seq,
    })
}

pub fn clone_name(target: &str) -> String {
    let suffix = format!("_rehearse_{}", std::process::id());
    let mut base = target.to_string();
    while base.len() + suffix.len() > 63 {
        base.pop();
    }
    format!("{base}{suffix}")
}

/// The databases a rehearsal names.
struct Places {
    /// The target as connected (`--db`), and the bundle's target.database (the name
    /// guard's expectation there: one name, or a fleet the target must match).
    target: String,
    expected_target: TargetDatabase,
    clone: String,
    clone_spec: ConnSpec,
    /// The maintenance database, where the clone is made and dropped.
    admin: ConnSpec,
}

/// What the cycle on the clone leaves for the final proofs.
#[derive(Default)]
struct OnClone {
    gate: Option<GateSeen>,
    entry: Option<Entry>,
    exit: Option<Fingerprint>,
    /// The end as read with the clone's exit fingerprint: the target's fingerprint and
    /// the entry fingerprint it is compared with.
    ends: Option<Ends>,
    /// The entry fingerprint with a data part for every table (known at the end).
    entry_fingerprint: Option<Fingerprint>,
    /// What the apply held and changed, measured.
    applied: Applied,
}

/// `airlock rehearse`: clone the target, run the deploy pipeline on the clone (apply,
/// re-apply refused, rollback, rollback again), compare, drop the clone.
pub fn rehearse(vb: &VerifiedBundle, o: &RehearseOptions<'_>) -> RehearseReport {
    let started_at = crate::ledger::receipt::now();
    let target = o.conn.dbname().to_string();
    let clone = clone_name(&target);
    let places = Places {
        expected_target: vb.manifest().target.database.clone(),
        clone_spec: o.conn.with_dbname(&clone),
        admin: o.conn.with_dbname("postgres"),
        target,
        clone,
    };
    let mut run = Run {
        steps: vec![],
        exit: Exit::Success,
        at: None,
    };
    // 1. Before anything is cloned: the bundle stays inside its database, its SQL runs
    //    as it would on the target, and the target's size picks the strategy.
    let mut predicted = None;
    let mut target_costs = TargetCosts::default();
    let (reaches_beyond, owner, sized, target_files) =
        before_clone(&mut run, vb, o, &places, &mut predicted, &mut target_costs);
    // 2. The clone, closed to connections until its files are read when the target's
    //    storage was recorded.
    let closed = matches!(target_files, Some(Ok(_)));
    let notes = CloneNotes::default();
    let cloned = run.step("clone the target", || {
        clone_target(
            o,
            &places,
            sized.unwrap_or_default(),
            owner.as_deref(),
            closed,
            &notes,
        )
    });
    let dumped = matches!(cloned, Some(("dump", _)));
    // 3. The deploy pipeline on the clone, the cluster read around every step that runs
    //    bundle SQL.
    let watch = Watch::new(
        match cloned {
            Some(_) => places.admin.connect(),
            None => Err(DbError::State("nothing was cloned".into())),
        },
        &places.clone,
    );
    let mut on_clone = OnClone::default();
    let mut recorded = None;
    if let Some((strategy, _)) = cloned {
        recorded = storage_step(&mut run, &places, strategy, target_files);
        on_clone = cycle_on_clone(
            &mut run,
            vb,
            o,
            &places,
            &watch,
            (recorded.as_ref(), dumped),
        );
        // 4. Always drop the clone, even after a failure or Ctrl-C.
        drop_step(&mut run, &places);
    }
    // 5. Whatever happened: the target and the cluster are as they were.
    target_unchanged(
        &mut run,
        o,
        &places,
        &mut on_clone,
        recorded.as_ref(),
        dumped,
    );
    let (cluster_changes, other_sessions_changes) = cluster_unchanged(&mut run, watch);
    RehearseReport {
        bundle_id: vb.id().into(),
        target: places.target,
        clone: places.clone,
        started_at: Some(started_at),
        finished_at: Some(crate::ledger::receipt::now()),
        clone_strategy: cloned.map(|(s, _)| s.to_string()),
        clone_wal_bytes: cloned.and_then(|(_, w)| w),
        clone_cost: notes.cost.take(),
        hint: notes.hint.take(),
        target_checkpoint_ms: target_costs.checkpoint_ms,
        target_settle_wait_ms: target_costs.settle_wait_ms,
        ok: run.exit.is_success(),
        exit_code: run.exit,
        gates_assumed: on_clone.gate == Some(GateSeen::Blocked) && o.assume_gates,
        gate: on_clone.gate,
        steps: run.steps,
        at: run.at,
        entry_fingerprint: on_clone.entry_fingerprint.map(|f| f.fingerprint),
        exit_fingerprint: on_clone.exit.map(|f| f.fingerprint),
        lock_impact: on_clone.applied.lock_impact.take(),
        predictions: predicted.map(|p| rehearsed(vb, p, &mut on_clone.applied)),
        cluster_changes,
        other_sessions_changes,
        reaches_beyond,
    }
}

/// Step "storage recorded": the clone's storage beside the target's (not for a clone
/// restored from a dump, whose files are its own).
fn storage_step(
    run: &mut Run,
    places: &Places,
    strategy: &str,
    target_files: Option<TargetFiles>,
) -> Option<Recorded> {
    let target_files = if strategy == "dump" {
        Err("the clone was restored from a dump: its files are its own".to_string())
    } else {
        target_files.unwrap_or(Err(String::new()))
    };
    run.step("storage recorded", || {
        clone_storage(places, strategy, target_files)
    })
    .flatten()
}

/// The target's storage and database OID, recorded right before the clone; or why not.
type TargetFiles = Result<(Files, u32), String>;

/// The steps before the clone: what the bundle reaches, the role its SQL runs as (and
/// the clone's owner), the target's size, files and server version, and its storage.
#[allow(clippy::type_complexity)]
fn before_clone(
    run: &mut Run,
    vb: &VerifiedBundle,
    o: &RehearseOptions<'_>,
    places: &Places,
    predicted: &mut Option<crate::predict::Predictions>,
    target_costs: &mut TargetCosts,
) -> (
    Vec<airlock_sql::Reach>,
    Option<String>,
    Option<(i64, i64, i64)>,
    Option<TargetFiles>,
) {
    let mut reaches_beyond = Vec::new();
    run.step("stays inside its database", || {
        let mut r = vb
            .reaches_beyond()
            .map_err(|e| (Exit::State, format!("could not read the bundle's SQL: {e}")))?;
        r.extend(target_reach(o.conn, &places.expected_target).map_err(fail)?);
        if r.is_empty() {
            return Ok((
                (),
                "no statement reaches beyond the database, and the target's catalog holds no way out (dblink, foreign servers…); the cluster is compared too".into(),
            ));
        }
        let why = refusal(&r);
        reaches_beyond = r;
        Err((Exit::State, why))
    });
    // Bundle SQL on the clone runs as it would on the target, under the same rule:
    // refused before anything is cloned.
    let owner = run.step("bundle SQL role", || {
        let (role, owner) = crate::deploy::bundle_role::check_target(
            o.conn,
            &places.expected_target,
            &vb.manifest().target,
        )
        .map_err(fail)?;
        Ok((owner, role.describe_guarded()))
    });
    // What the target's ledger allows, as apply judges it: a bundle applied in full
    // has nothing to rehearse, said before anything is cloned.
    let next = run.step("ledger", || ledger_allows(vb, o.conn)).flatten();
    // What the data there now says about the tiers it would run: a certain failure
    // stops the rehearsal before anything is cloned.
    let tiers = next.unwrap_or_else(|| vb.manifest().tier.iter().map(|t| t.name.clone()).collect());
    *predicted = run.step("predicted failures", || {
        crate::rehearse::predictions::on_target(
            vb,
            (o.conn, &places.expected_target),
            &tiers,
            o.predict_timeout,
        )
    });
    let sized = run.step("target", || {
        let (bytes, files, version) = size_of(o.conn, &places.expected_target).map_err(fail)?;
        let (recorded, costs) = record_target(o.conn, &places.expected_target);
        *target_costs = costs;
        let d = format!(
            "{} MB in {files} relations; {}{}",
            bytes >> 20,
            match &recorded {
                Ok((f, _)) => format!(
                    "storage of {} table(s) recorded ({} files)",
                    f.len(),
                    f.segment_count()
                ),
                Err(why) => format!("storage not recorded ({why}): every table is read"),
            },
            costs.describe()
        );
        Ok((((bytes, files, version), recorded), d))
    });
    let (sized, target_files) = sized.unzip();
    (reaches_beyond, owner, sized, target_files)
}

/// Tier names.
type Tiers = Vec<String>;

/// The target ledger's verdict on this bundle, as `plan` and `apply` reach it: the
/// tiers a rehearsal runs (`None`: the ledger was not read here), or the refusal
/// (every tier applied, a downgrade…). A ledger this login cannot read is left to the
/// clone's apply to judge.
fn ledger_allows(
    vb: &VerifiedBundle,
    conn: &ConnSpec,
) -> Result<(Option<Tiers>, String), (Exit, String)> {
    use crate::ledger::precheck::Allowed;
    Ok(
        match crate::ledger::precheck::ledger_allows(vb, conn, None).map_err(fail)? {
            Allowed::Unread(e) => (
                None,
                format!("not read here ({e}); the clone's apply judges it"),
            ),
            Allowed::Next { applied, next } if applied.is_empty() => {
                let d = format!(
                    "nothing of this bundle applied yet: all {} tier(s) to rehearse",
                    next.len()
                );
                (Some(next), d)
            }
            Allowed::Next { applied, next } => {
                let d = format!(
                    "{} tier(s) applied; rehearsing the rest: {}",
                    applied.len(),
                    next.join(", ")
                );
                (Some(next), d)
            }
        },
    )
}

/// The target's storage ([`storage`]) after a checkpoint, and its database OID; why
/// not, when this login may not read file times or force a checkpoint. Read on a
/// connection closed before the clone (`CREATE DATABASE` waits for the target's
/// sessions to end).
fn record_target(spec: &ConnSpec, expected: &TargetDatabase) -> (TargetFiles, TargetCosts) {
    let mut costs = TargetCosts::default();
    let mut read = || -> Result<Result<(Files, u32), String>, DbError> {
        let mut c = spec.connect()?;
        conn::name_guard(&mut c, expected)?;
        if let Err(why) = storage::usable(&mut c) {
            return Ok(Err(why));
        }
        // Pages changed before now reach the files first: a table written recently is
        // then read at entry, rather than seen to change when written out later.
        let t = Instant::now();
        c.batch_execute("CHECKPOINT")
            .map_err(|e| sql_err("CHECKPOINT", &e))?;
        costs.checkpoint_ms = Some(t.elapsed().as_millis() as u64);
        let oid = database_oid(&mut c, None)?;
        let mut files = Files::record(&mut c)?;
        // Files written in the last seconds (a bulk load, or that CHECKPOINT writing
        // it out) would be read whole at entry and at the end: when they hold enough
        // to matter, wait until they are old enough and record again (a record taken
        // later proves the same: nothing written between it and the end).
        // Not while other sessions are connected (as the clone step sees them): a
        // template clone cannot start then (`auto` clones from a dump, whose files
        // are its own).
        let t = Instant::now();
        let (bytes, from) = files.unsettled(|_| true);
        let own = spec.config.get_application_name().unwrap_or("airlock");
        if bytes >= WAIT_FROM
            && dump_clone::others_settled(&mut c, spec.dbname(), own)?.is_empty()
            && wait_for_clock(&mut c, from)?
        {
            files = Files::record(&mut c)?;
            costs.settle_wait_ms = Some(t.elapsed().as_millis() as u64);
        }
        Ok(Ok((files, oid)))
    };
    let files = read().unwrap_or_else(|e| Err(e.to_string()));
    (files, costs)
}

/// What recording the target's storage cost the server before the clone.
#[derive(Clone, Copy, Debug, Default)]
struct TargetCosts {
    /// The `CHECKPOINT`'s time.
    checkpoint_ms: Option<u64>,
    /// Time waited for freshly written files to settle, when it waited.
    settle_wait_ms: Option<u64>,
}

impl TargetCosts {
    /// How the target step says them.
    fn describe(&self) -> String {
        let mut s = String::new();
        if let Some(ms) = self.checkpoint_ms {
            s.push_str(&format!("; CHECKPOINT {ms} ms"));
            if ms >= CHECKPOINT_NOTED_MS {
                s.push_str(
                    " (the server writing out pages changed before the rehearsal, such as a bulk load or hint bits set since its last checkpoint: the server's cost, which a CHECKPOINT before rehearsing takes out of the rehearsal; the clone's own copy pays the rest of it)",
                );
            }
        }
        if let Some(ms) = self.settle_wait_ms {
            s.push_str(&format!(
                "; waited {ms} ms for files written in the last second to settle, rather than read them at entry and at the end"
            ));
        }
        s
    }
}

/// A target `CHECKPOINT` at least this long is explained in the output.
const CHECKPOINT_NOTED_MS: u64 = 1000;

/// The OID of database `name` (None: the connected one).
fn database_oid(c: &mut postgres::Client, name: Option<&str>) -> Result<u32, DbError> {
    c.query_one(
        "SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname OPERATOR(pg_catalog.=) \
         COALESCE($1, pg_catalog.current_database())",
        &[&name],
    )
    .map(|r| r.get(0))
    .map_err(|e| sql_err("database OID", &e))
}

/// Files written in the second the clock is in cannot be relied on
/// ([`storage::settled_from`]); when the clone's (or the target's) hold at least this
/// many bytes of tables the entry would otherwise not read, the rehearsal waits (at
/// most [`MAX_WAIT_S`], the clone closed) until they are old enough, rather than read
/// them three times.
const WAIT_FROM: i64 = 64 << 20;

/// The longest wait for files to settle: file times further ahead of the server's
/// clock are not waited for (their tables are read instead).
const MAX_WAIT_S: f64 = 3.0;

/// The clone's storage, read while nobody can connect to it (so it is the target's
/// content at the clone, and no transaction that wrote it is still running), after a
/// checkpoint when its pages went through shared buffers (`wal_log`); then the clone is
/// opened. Without the target's record, or when reading fails, every table is read
/// at entry and exit instead.
fn clone_storage(
    places: &Places,
    strategy: &str,
    target: TargetFiles,
) -> Result<(Option<Recorded>, String), (Exit, String)> {
    let (target, target_oid) = match target {
        Ok(t) => t,
        Err(why) if why.is_empty() => {
            return Ok((None, "not recorded: every table is read".into()))
        }
        Err(why) => {
            return Ok((None, format!("not recorded ({why}): every table is read")));
        }
    };
    let mut admin = places.admin.connect().map_err(fail)?;
    let started = Instant::now();
    let read = read_clone_files(&mut admin, places, strategy, &target, target_oid);
    let opened = admin.batch_execute(&format!(
        "ALTER DATABASE {} ALLOW_CONNECTIONS true",
        quote_ident(&places.clone)
    ));
    opened.map_err(|e| fail(sql_err("opening the clone to connections", &e)))?;
    match read {
        Ok((clone, waited)) => {
            let settled = target
                .names()
                .filter(|t| target.settled(t) && clone.settled(t))
                .count();
            let d = format!(
                "{} table(s) in {} files on the target before the clone and on the clone before anyone could connect{}; {settled} settled on both (the rest are read at entry: unlogged, not heap, or written in the second it was recorded){}",
                target.len(),
                target.segment_count() + clone.segment_count(),
                if strategy == "wal_log" { ", after a CHECKPOINT" } else { "" },
                if waited { format!("; waited {} ms for fresh files to settle", started.elapsed().as_millis()) } else { String::new() }
            );
            Ok((Some(Recorded { target, clone }), d))
        }
        Err(e) => Ok((None, format!("not recorded ({e}): every table is read"))),
    }
}

/// The clone's files (see [`clone_storage`]), and whether it waited for fresh ones.
fn read_clone_files(
    admin: &mut postgres::Client,
    places: &Places,
    strategy: &str,
    target: &Files,
    target_oid: u32,
) -> Result<(Files, bool), DbError> {
    if strategy == "wal_log" {
        admin
            .batch_execute("CHECKPOINT")
            .map_err(|e| sql_err("CHECKPOINT", &e))?;
    }
    let clone_oid = database_oid(admin, Some(&places.clone))?;
    let mut clone = target.copied(target_oid, clone_oid, admin)?;
    let (bytes, from) = clone.unsettled(|t| target.settled(t));
    if bytes < WAIT_FROM || !wait_for_clock(admin, from)? {
        return Ok((clone, false));
    }
    clone.restat(admin)?;
    Ok((clone, true))
}

/// Wait until the server's clock reaches `from` (milliseconds since the epoch); false
/// when that is more than a few seconds away (file times ahead of the clock).
fn wait_for_clock(admin: &mut postgres::Client, from: i64) -> Result<bool, DbError> {
    loop {
        let now: f64 = admin
            .query_one(
                "SELECT pg_catalog.date_part('epoch', pg_catalog.clock_timestamp())",
                &[],
            )
            .map_err(|e| sql_err("the server's clock", &e))?
            .get(0);
        let left = from as f64 / 1000.0 - now;
        if left <= 0.0 {
            return Ok(true);
        }
        if left > MAX_WAIT_S {
            return Ok(false);
        }
        if conn::interrupted() {
            return Err(DbError::State("interrupted (Ctrl-C)".into()));
        }
        std::thread::sleep(std::time::Duration::from_secs_f64(left.min(0.25) + 0.01));
    }
}

/// `CREATE DATABASE clone TEMPLATE target`, with the strategy `auto` picks for the
/// target's size: the strategy used and the WAL it wrote.
#[allow(clippy::type_complexity)]
fn clone_target(
    o: &RehearseOptions<'_>,
    places: &Places,
    (bytes, files, version): (i64, i64, i64),
    owner: Option<&str>,
    closed: bool,
    notes: &CloneNotes,
) -> Result<((&'static str, Option<u64>), String), (Exit, String)> {
    let dump_cost = &notes.cost;
    let (clone, target) = (&places.clone, &places.target);
    let strategy = o.clone_strategy.pick(bytes, files);
    let mut c = places.admin.connect().map_err(fail)?;
    may_create_databases(&mut c, target, notes)?;
    // A live target (other sessions): `auto` clones from a dump, which needs nobody
    // to leave.
    let others = match o.clone_strategy {
        CloneStrategy::Auto | CloneStrategy::Dump => {
            let own = o.conn.config.get_application_name().unwrap_or("airlock");
            dump_clone::others_settled(&mut c, target, own).map_err(fail)?
        }
        _ => Vec::new(),
    };
    if o.clone_strategy == CloneStrategy::Dump || !others.is_empty() {
        drop(c);
        return clone_dumped(o, places, (version, owner), &others, dump_cost);
    }
    let with = if version >= 150000 {
        format!(" STRATEGY {strategy}")
    } else {
        String::new()
    };
    let owned_by = owner
        .map(|r| format!(" OWNER {}", quote_ident(r)))
        .unwrap_or_default();
    let closed_sql = if closed {
        " ALLOW_CONNECTIONS false"
    } else {
        ""
    };
    let sql = format!(
        "CREATE DATABASE {} TEMPLATE {}{owned_by}{with}{closed_sql}",
        quote_ident(clone),
        quote_ident(target)
    );
    let before = lsn(&mut c);
    match c.batch_execute(&sql) {
        Ok(()) => {
            let after = lsn(&mut c);
            let wal = wal_between(&mut c, before, after);
            let strategy = if version >= 150000 {
                strategy
            } else {
                "file_copy"
            };
            let shown = wal.map_or("unknown".into(), |w| format!("{} MB", w >> 20));
            Ok((
                (strategy, wal),
                format!("CREATE DATABASE {clone} TEMPLATE {target}{with}{closed_sql}; WAL written: {shown}"),
            ))
        }
        Err(e) if sqlstate(&e) == Some("55006") && o.clone_strategy == CloneStrategy::Auto => {
            // Someone connected since the look: clone from a dump instead.
            drop(c);
            let who = vec!["a session that connected while the clone began".to_string()];
            clone_dumped(o, places, (version, owner), &who, dump_cost)
        }
        Err(e) if sqlstate(&e) == Some("55006") => {
            let who = dump_clone::others_on(&mut c, target)
                .unwrap_or_default()
                .join("; ");
            Err((Exit::Runtime, format!(
                "{target} has other sessions ({who}); PostgreSQL can only clone a database nobody is connected to with CREATE DATABASE … TEMPLATE. Hint: --clone-strategy dump (or auto, the default) clones from a pg_dump snapshot and needs nobody to leave"
            )))
        }
        Err(e) => Err((Exit::Runtime, sql_err("CREATE DATABASE", &e).to_string())),
    }
}

/// Whether the login may create the clone (CREATEDB, or a superuser; the attribute is
/// never inherited): asked before any strategy tries, so the refusal names the fix
/// (`airlock setup --createdb`, which leaves it off by default) rather than
/// PostgreSQL's "permission denied to create database".
fn may_create_databases(
    c: &mut postgres::Client,
    target: &str,
    notes: &CloneNotes,
) -> Result<(), (Exit, String)> {
    let row = c
        .query_one(
            "SELECT r.rolcreatedb OR r.rolsuper, r.rolname::pg_catalog.text FROM pg_catalog.pg_roles r \
             WHERE r.rolname OPERATOR(pg_catalog.=) current_user",
            &[],
        )
        .map_err(|e| (Exit::Runtime, sql_err("the login's CREATEDB", &e).to_string()))?;
    let (may, login): (bool, String) = (row.get(0), row.get(1));
    if may {
        return Ok(());
    }
    *notes.hint.borrow_mut() = Some(format!(
        "give it CREATEDB as a superuser: airlock setup --db {} --login {} --createdb (or rehearse as a login that may create databases)",
        airlock_base::text::shell_word(&format!("dbname={target}")),
        airlock_base::text::shell_word(&login)
    ));
    Err((
        Exit::Runtime,
        format!("the login {login} may not create databases (it has no CREATEDB), and rehearse clones {target} into a new database; nothing was cloned"),
    ))
}

/// The server's WAL position, as text.
fn lsn(c: &mut postgres::Client) -> Option<String> {
    c.query_one(
        "SELECT pg_catalog.pg_current_wal_lsn()::pg_catalog.text",
        &[],
    )
    .ok()
    .map(|r| r.get(0))
}

/// Bytes of WAL between two LSNs (as text), when both were read.
fn wal_between(
    c: &mut postgres::Client,
    before: Option<String>,
    after: Option<String>,
) -> Option<u64> {
    let (b, a) = (before?, after?);
    c.query_one(
        "SELECT pg_catalog.pg_wal_lsn_diff($1::pg_catalog.text::pg_catalog.pg_lsn, $2::pg_catalog.text::pg_catalog.pg_lsn)::pg_catalog.int8",
        &[&a, &b],
    )
    .ok()
    .map(|r| r.get::<_, i64>(0).max(0) as u64)
}

/// A clone step's result: (strategy, WAL written) and its detail, or the failure.
type Cloned = Result<((&'static str, Option<u64>), String), (Exit, String)>;

/// The clone from one `pg_dump` snapshot of the live target ([`dump_clone`]), with
/// what it cost.
fn clone_dumped(
    o: &RehearseOptions<'_>,
    places: &Places,
    (version, owner): (i64, Option<&str>),
    others: &[String],
    dump_cost: &std::cell::RefCell<Option<DumpCost>>,
) -> Cloned {
    let (clone, target) = (&places.clone, &places.target);
    // A missing tool or a restore that failed: the run failed, not the target's state.
    let cost = dump_clone::clone_by_dump(&places.admin, o.conn, (target, clone), owner, version)
        .map_err(|e| (Exit::Runtime, e.to_string()))?;
    let why = if others.is_empty() {
        "--clone-strategy dump".to_string()
    } else {
        format!(
            "the target has {} other session(s): {}",
            others.len(),
            airlock_base::text::clip(&others.join("; "), 160)
        )
    };
    let d = format!(
        "pg_dump of one snapshot of {target} restored into {clone} ({why}): dump {:.1} s ({:.1} MB, {} job(s)), restore {:.1} s; the restored schema is the target's at that snapshot, its rows are the snapshot's",
        cost.dump_ms as f64 / 1000.0,
        cost.dump_bytes as f64 / 1048576.0,
        cost.jobs,
        cost.restore_ms as f64 / 1000.0
    );
    *dump_cost.borrow_mut() = Some(cost);
    Ok((("dump", None), d))
}

/// The deploy's options on the clone: the name guard expects the clone, nothing is
/// remembered, nobody is asked.
fn clone_options<'a>(
    o: &RehearseOptions<'a>,
    places: &'a Places,
    skip_gates: bool,
    observer: &'a dyn crate::deploy::options::Observer,
) -> Options<'a> {
    Options {
        conn: &places.clone_spec,
        expected_db: TargetDatabase::Name(places.clone.clone()),
        params: o.params.clone(),
        through: None,
        lock_timeout: "10s".into(),
        lock_retries: 0,
        statement_timeout: o.statement_timeout.clone(),
        allow_drift: false,
        resume: false,
        gate_role: o.gate_role.clone(),
        approvals: o.approvals,
        skip_gates,
        remember: false,
        confirm: None,
        observer: Some(observer),
        deliver: None,
        vouch: None,
    }
}

/// The cycle on the clone: entry fingerprint, what is applied already, the pipeline's
/// gate/apply/re-apply/rollback, the exit fingerprint, rollback again.
fn cycle_on_clone(
    run: &mut Run,
    vb: &VerifiedBundle,
    o: &RehearseOptions<'_>,
    places: &Places,
    watch: &Watch,
    (recorded, dumped): (Option<&Recorded>, bool),
) -> OnClone {
    let n = vb.manifest().tier.len();
    let (clone_spec, clone) = (&places.clone_spec, &places.clone);
    let entry = run.step("entry fingerprint (clone = target)", || {
        let e = proof::entry(clone_spec, clone, recorded, JOBS).map_err(fail)?;
        let d = format!(
            "schema {} (schema only; the exit step compares schema and data); data: {} of {} table(s) read now{}",
            e.schema.short(),
            e.read.len(),
            e.tables.len(),
            if recorded.is_some() {
                ", the others are proven by their storage at the end"
            } else if dumped {
                " (the clone's rows are the dumped snapshot's as restored; they are not compared with the live target's, whose schema was)"
            } else {
                ""
            }
        );
        Ok((e, d))
    });
    // A target where `apply --through` ran: the rehearsal applies what remains, and
    // the rollback is held to what the bundle promises, the schema before its
    // first tier (recorded in the ledger), not to the partly applied entry.
    let partial = run.step("tiers already applied", || {
        let p = applied_on(clone_spec, clone, vb).map_err(fail)?;
        let d = if p.applied.is_empty() {
            format!("none of {n}: the rehearsal applies every tier")
        } else {
            format!(
                "{} of {n} ({}); the rehearsal applies the {} remaining",
                p.applied.len(),
                p.applied.join(", "),
                n - p.applied.len()
            )
        };
        Ok((p, d))
    });
    let partial = partial.filter(|p| !p.applied.is_empty());
    // Which statements lock a relation the clone has now: the apply times them.
    let planned = lock_impact::planned(vb, clone_spec, clone);
    let (skip, gate, applied) = deploy_cycle(run, vb, o, places, watch, planned);
    let (exit, ends) = exit_fingerprint(run, o, places, entry.as_ref(), partial.as_ref(), recorded);
    let watched = Watched {
        watch,
        inner: o.observer,
    };
    run.step("rollback again is a no-op", || {
        watch.around(|| {
            let r = apply::rollback(vb, &clone_options(o, places, skip, &watched))
                .map_err(|e| seen_fail(watch, e))?;
            if r.outcome == "nothing-to-roll-back" {
                Ok(((), "nothing to roll back".into()))
            } else {
                Err((
                    Exit::State,
                    format!("second rollback did something: {}", r.outcome),
                ))
            }
        })
    });
    OnClone {
        entry,
        exit,
        ends,
        entry_fingerprint: None,
        gate,
        applied,
    }
}

/// The deploy pipeline on the clone: gate, apply, the verify probe, a re-apply the
/// ledger refuses, rollback. Returns whether the gates were assumed open, the gate's
/// verdict, and the locks the apply held (its statements that lock what `planned`
/// names timed).
fn deploy_cycle(
    run: &mut Run,
    vb: &VerifiedBundle,
    o: &RehearseOptions<'_>,
    places: &Places,
    watch: &Watch,
    planned: Result<Vec<crate::deploy::lock_plan::PlannedLock>, DbError>,
) -> (bool, Option<GateSeen>, Applied) {
    let gate_seen = std::cell::RefCell::new(None);
    let m = vb.manifest();
    let watched = Watched {
        watch,
        inner: o.observer,
    };
    let opts = |skip_gates| clone_options(o, places, skip_gates, &watched);
    let gate_ok = run.step("gate", || {
        watch.around(|| {
            let r = apply::gate(vb, &opts(false)).map_err(fail)?;
            if r.ready() {
                *gate_seen.borrow_mut() = Some(GateSeen::Ready);
                Ok((false, "READY".into()))
            } else if o.assume_gates {
                *gate_seen.borrow_mut() = Some(GateSeen::Blocked);
                Ok((
                    true,
                    format!(
                        "ASSUMED open on the clone only: the gate is BLOCKED ({}); the rehearsal went past it on the clone, while apply on the target stops here (exit 3) until it is READY",
                        r.blocked_summary()
                    ),
                ))
            } else {
                *gate_seen.borrow_mut() = Some(GateSeen::Blocked);
                Err((
                    Exit::Blocked,
                    format!(
                        "BLOCKED: {} (--require-ready stops here; without it the rehearsal goes past the gate on the clone)",
                        r.blocked_summary()
                    ),
                ))
            }
        })
    });
    let skip = gate_ok.unwrap_or(false);
    let (receipt, applied) = apply_step(run, vb, o, places, (watch, &watched), skip, planned);
    run.step("verify probe", || {
        match receipt.as_ref().and_then(|r| r.verify.as_ref()) {
            Some(v) => Ok(((), format!("all {} expectations held", v.expected.len()))),
            None if m.verify.is_none() => Ok(((), "bundle has no [verify] probe".into())),
            None => Err((Exit::State, "the verify probe did not run".into())),
        }
    });
    run.step("re-apply is refused", || {
        watch.around(|| {
            match apply::apply(vb, &opts(skip)).inspect_err(|e| watch.ended_unseen(e)) {
                Err(DbError::Refused(r)) => Ok((
                    (),
                    // Whole: the table cuts what does not fit, --json keeps it.
                    format!("refused: {r}"),
                )),
                Err(e) => Err((
                    e.exit_code(),
                    format!("expected a ledger refusal, got: {e}"),
                )),
                Ok(_) => Err((Exit::State, "a second apply was NOT refused".into())),
            }
        })
    });
    let at = std::cell::RefCell::new(None);
    run.step("rollback", || {
        watch.around(|| {
            let r = apply::rollback(vb, &opts(skip)).map_err(|e| {
                *at.borrow_mut() = e.at().cloned();
                seen_fail(watch, e)
            })?;
            Ok((
                (),
                format!(
                    "{}; fingerprint {} -> {}",
                    r.outcome,
                    &r.fingerprint_before[..8],
                    &r.fingerprint_after[..8]
                ),
            ))
        })
    });
    run.at = run.at.take().or(at.into_inner());
    (skip, gate_seen.into_inner(), applied)
}

/// What the apply on the clone left for the report beyond its receipt.
#[derive(Default)]
struct Applied {
    /// The locks it held.
    lock_impact: Option<LockImpact>,
    /// The tables the release changes, before and after each tier it committed.
    measured: Vec<crate::rehearse::measure::TierMeasured>,
    /// Whether the apply got to its tiers: it passed, or stopped at a statement.
    ran: bool,
    /// Where it stopped: the failing statement's file and first line.
    stopped: Option<(String, usize)>,
}

/// The apply on the clone, its statements that lock what `planned` names timed and
/// the tables the release changes measured around each tier: the receipt, and what
/// it held and changed.
fn apply_step(
    run: &mut Run,
    vb: &VerifiedBundle,
    o: &RehearseOptions<'_>,
    places: &Places,
    (watch, watched): (&Watch, &Watched<'_>),
    skip: bool,
    planned: Result<Vec<crate::deploy::lock_plan::PlannedLock>, DbError>,
) -> (Option<apply::Receipt>, Applied) {
    let m = vb.manifest();
    let n = m.tier.len();
    let timer = Timer::new(vb, planned, watched);
    let tables =
        crate::rehearse::predictions::tables_to_measure(vb, (&places.clone_spec, &places.clone))
            .unwrap_or_default();
    let meter = crate::rehearse::measure::Meter::new(tables, &timer);
    let at = std::cell::RefCell::new(None);
    let applied = run.step("apply", || {
        watch.around(|| {
            let r = apply::apply(vb, &clone_options(o, places, skip, &meter)).map_err(|e| {
                watch.ended_unseen(&e);
                *at.borrow_mut() = e.at().cloned();
                fail(explain_syntax_error(e, m.target.min_server_version))
            })?;
            let d = format!(
                "{} tier(s) applied ({} of {n} now); fingerprint {} -> {}",
                r.tiers.len(),
                n - r.remaining_tiers.len(),
                &r.fingerprint_before[..8],
                &r.fingerprint_after[..8]
            );
            Ok((r, d))
        })
    });
    let passed = run
        .steps
        .last()
        .is_some_and(|s| s.step == "apply" && s.verdict == "PASS");
    let stopped = at
        .borrow()
        .as_ref()
        .map(|a: &crate::deploy::files::StatementAt| (a.file.clone(), a.statement_line as usize));
    run.at = run.at.take().or(at.into_inner());
    let tiers: Vec<String> = m.tier.iter().map(|t| t.name.clone()).collect();
    let measured = meter.report(&tiers);
    let online_steps = applied.as_ref().map_or(&[][..], |r| &r.online_steps[..]);
    let impact = timer.report(vb, online_steps);
    // A failed apply committed nothing timed; what it did commit (earlier per-tier
    // transactions, online steps) is still reported.
    let lock_impact = (applied.is_some() || !impact.locks.is_empty()).then_some(impact);
    let done = Applied {
        lock_impact,
        measured,
        ran: passed || stopped.is_some(),
        stopped: stopped.filter(|_| !passed),
    };
    (applied, done)
}

/// Connections each side reads its tables with.
const JOBS: usize = 2;

/// The clone's exit fingerprint against its entry (or, after a partial apply, the
/// schema before the first tier), with the target's read at the same time on other
/// connections ([`proof::ends`]).
fn exit_fingerprint(
    run: &mut Run,
    o: &RehearseOptions<'_>,
    places: &Places,
    entry: Option<&Entry>,
    partial: Option<&Partial>,
    recorded: Option<&Recorded>,
) -> (Option<Fingerprint>, Option<Ends>) {
    let at = Where {
        clone: Some((&places.clone_spec, &places.clone)),
        target: (o.conn, &places.expected_target),
        admin: &places.admin,
    };
    let mut kept = None;
    let exit = match partial {
        None => run.step("exit fingerprint == entry", || {
            let entry = entry.ok_or((Exit::Runtime, "no entry fingerprint".to_string()))?;
            let mut ends = proof::ends(&at, entry, recorded, true, JOBS);
            let fp = ends.clone.take().unwrap_or_else(|| Err(DbError::State("the clone was not read".into())));
            let how = ends.how();
            let verdict = match fp {
                Err(e) => Err(fail(e)),
                Ok(fp) if fp.fingerprint == ends.entry.fingerprint => {
                    // Schema and data together: not the entry step's schema-only hash.
                    let d = format!(
                        "schema and data {} == {} ({how})",
                        fp.short(),
                        ends.entry.short()
                    );
                    Ok((fp, d))
                }
                Ok(fp) => Err((
                    Exit::State,
                    format!("{}{}; {how}", not_restored(&fp, &ends.entry), ends.unprovable_note()),
                )),
            };
            kept = Some(ends);
            verdict
        }),
        Some(p) => run.step("exit schema == before the first tier", || {
            let entry = entry.ok_or((Exit::Runtime, "no entry fingerprint".to_string()))?;
            let mut ends = proof::ends(&at, entry, recorded, false, JOBS);
            let fp = ends
                .clone
                .take()
                .unwrap_or_else(|| Err(DbError::State("the clone was not read".into())))
                .map(|f| f.schema_only());
            kept = Some(ends);
            let fp = fp.map_err(fail)?;
            if fp.fingerprint == p.baseline {
                let d = format!(
                    "{} == {} (schema before ledger seq {}, where tier {} was applied)",
                    fp.short(),
                    airlock_base::text::short(&p.baseline),
                    p.baseline_seq,
                    p.applied.first().map(String::as_str).unwrap_or("1")
                );
                Ok((fp, d))
            } else {
                Err((
                    Exit::State,
                    format!(
                        "rollback did not return the schema to where it was before ledger seq {}: {} != {}",
                        p.baseline_seq,
                        fp.short(),
                        airlock_base::text::short(&p.baseline)
                    ),
                ))
            }
        }),
    };
    (exit, kept)
}

/// Drop the clone (after a failure or Ctrl-C too).
fn drop_step(run: &mut Run, places: &Places) {
    let clone = &places.clone;
    run.always("drop the clone", || {
        match places
            .admin
            .connect()
            .and_then(|mut c| drop_clone(&mut c, &places.clone_spec, clone))
        {
            Ok(0) => Ok(format!("DROP DATABASE {clone}")),
            Ok(n) => Ok(format!("DROP DATABASE {clone} (after detaching and dropping the {n} subscription(s) the bundle created there)")),
            Err(e) => Err((
                Exit::Runtime,
                format!("{e}; drop it by hand: DROP DATABASE {clone}"),
            )),
        }
    });
}

/// The target's fingerprint now is the clone's entry fingerprint (the target did not
/// change from the clone to the end): as read with the clone's exit fingerprint, or
/// read now when the cycle stopped before it.
fn target_unchanged(
    run: &mut Run,
    o: &RehearseOptions<'_>,
    places: &Places,
    on_clone: &mut OnClone,
    recorded: Option<&Recorded>,
    live: bool,
) {
    let Some(entry) = &on_clone.entry else { return };
    let ends = on_clone.ends.take().unwrap_or_else(|| {
        let at = Where {
            clone: None,
            target: (o.conn, &places.expected_target),
            admin: &places.admin,
        };
        proof::ends(&at, entry, recorded, false, JOBS)
    });
    let how = ends.how();
    let unprovable = ends.unprovable_note();
    on_clone.entry_fingerprint = Some(ends.entry.clone());
    // A subscription belongs to its database in a shared catalog: the clone has
    // none of the target's, and the rehearsal cannot change them.
    let entry = &ends.entry.without(NOT_CLONED);
    if live {
        // Cloned from a dump because other sessions are on the target: they may write
        // its rows at any time, so only its schema can be held to the clone's entry.
        let entry = &entry.schema_only();
        run.always("target schema unchanged", || {
            match ends.target.map(|f| f.without(NOT_CLONED).schema_only()) {
                Ok(fp) if fp.fingerprint == entry.fingerprint => Ok(format!(
                    "{} == {} (schema only: the target is live, its other sessions may change its rows, so they are not compared; the rehearsal read the target only in pg_dump's read-only snapshot)",
                    fp.short(),
                    entry.short()
                )),
                Ok(fp) => Err((
                    Exit::State,
                    format!(
                        "the target's schema changed during the rehearsal: {} != {}; {} (the rehearsal only read the target: another session changed it, or the clone was not the target's)",
                        fp.short(),
                        entry.short(),
                        fingerprint::diff(entry, &fp).join(", ")
                    ),
                )),
                Err(e) => Err((e.exit_code(), e.to_string())),
            }
        });
        return;
    }
    run.always("target fingerprint unchanged", || {
        match ends.target.map(|f| f.without(NOT_CLONED)) {
            Ok(fp) if fp.fingerprint == entry.fingerprint => Ok(format!(
                "{} == {} (target untouched since the clone; read with the clone's exit fingerprint; {how})",
                fp.short(),
                entry.short()
            )),
            Ok(fp) => Err((
                Exit::State,
                format!(
                    "target changed during the rehearsal: {} != {}; {}{unprovable}; {how}",
                    fp.short(),
                    entry.short(),
                    fingerprint::diff(entry, &fp).join(", ")
                ),
            )),
            Err(e) => Err((e.exit_code(), e.to_string())),
        }
    });
}

/// The cluster outside the clone is as it was before each step that ran bundle SQL,
/// as far as the rehearsal's own transactions go; returns what they changed and what
/// other sessions changed meanwhile (not counted).
fn cluster_unchanged(run: &mut Run, watch: Watch) -> (Vec<ClusterChange>, Vec<ClusterChange>) {
    let mut cluster_changes = Vec::new();
    let Some(seen) = watch.finish() else {
        return (cluster_changes, Vec::new());
    };
    let others = seen.others;
    let noted = match others.len() {
        0 => String::new(),
        n => format!(
            "; {n} change(s) other sessions made meanwhile were not counted (no transaction of the rehearsal wrote them): {}",
            others.iter().map(|c| c.what.as_str()).collect::<Vec<_>>().join("; ")
        ),
    };
    run.always("cluster unchanged", || match seen.changes {
        Ok(changes) if changes.is_empty() => Ok(format!(
            "roles, memberships, database and role settings, databases, tablespaces, subscriptions, replication slots and origins, shared comments and labels: no transaction of the rehearsal changed them{noted}"
        )),
        Ok(changes) => {
            let detail = changed_outside(&changes);
            cluster_changes = changes;
            Err((Exit::State, format!("{detail}{noted}")))
        }
        Err(e) => Err((e.exit_code(), e.to_string())),
    });
    (cluster_changes, others)
}

/// Why a bundle that reaches beyond its database is not rehearsed.
fn refusal(reaches: &[airlock_sql::Reach]) -> String {
    let shown: Vec<String> = reaches.iter().map(ToString::to_string).collect();
    let catalog = reaches.iter().any(|r| r.file.is_empty());
    format!(
        "reaches beyond its database: {}; a clone isolates one database, while these reach the whole cluster, another database (the real target included) or the server, and the rehearsal could not prove them unchanged, so nothing was cloned or run. Review these statements by hand; rehearse the rest in a bundle without them{}",
        shown.join("; "),
        if catalog {
            "; for what the target's catalog holds, rehearse on a copy without it (restore a dump elsewhere, DROP EXTENSION … / DROP SERVER … CASCADE there)"
        } else {
            ""
        }
    )
}

/// The cluster changed while the rehearsal ran: what, and how to undo it.
fn changed_outside(changes: &[ClusterChange]) -> String {
    let shown: Vec<String> = changes
        .iter()
        .map(|c| match &c.undo {
            Some(u) => format!("{} (undo: {u})", c.what),
            None => c.what.clone(),
        })
        .collect();
    format!(
        "changed outside the clone by the rehearsal's own transactions (the bundle's SQL): {}. The clone is gone; these are not: undo them",
        shown.join("; ")
    )
}

/// Drop the clone whatever the bundle left in it: a subscription (its row is in a
/// shared catalog and blocks DROP DATABASE) is disabled, detached from its slot and
/// dropped first; a clone marked as a template or closed to connections is opened
/// again. Returns how many subscriptions were dropped.
fn drop_clone(
    admin: &mut postgres::Client,
    clone_spec: &ConnSpec,
    clone: &str,
) -> Result<i64, DbError> {
    let q = quote_ident(clone);
    let exists = admin
        .query_opt(
            "SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname OPERATOR(pg_catalog.=) $1",
            &[&clone],
        )
        .map_err(|e| sql_err("looking up the clone", &e))?;
    let Some(row) = exists else { return Ok(0) };
    let oid: u32 = row.get(0);
    // Best effort: when this fails (the bundle gave the clone away), DROP DATABASE
    // says why it cannot drop it.
    let _ = admin.batch_execute(&format!(
        "ALTER DATABASE {q} WITH ALLOW_CONNECTIONS true CONNECTION LIMIT -1 IS_TEMPLATE false"
    ));
    let subs: i64 = admin
        .query_one(
            "SELECT pg_catalog.count(*) FROM pg_catalog.pg_subscription s WHERE s.subdbid OPERATOR(pg_catalog.=) $1",
            &[&oid],
        )
        .map_err(|e| sql_err("looking for subscriptions in the clone", &e))?
        .get(0);
    if subs > 0 {
        let mut c = clone_spec.connect()?;
        conn::name_guard_exact(&mut c, clone)?;
        let names: Vec<String> = c
            .query(
                "SELECT s.subname::pg_catalog.text FROM pg_catalog.pg_subscription s \
                 WHERE s.subdbid OPERATOR(pg_catalog.=) (SELECT d.oid FROM pg_catalog.pg_database d \
                   WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database())",
                &[],
            )
            .map_err(|e| sql_err("listing the clone's subscriptions", &e))?
            .iter()
            .map(|r| r.get(0))
            .collect();
        for name in names {
            let s = quote_ident(&name);
            for sql in [
                format!("ALTER SUBSCRIPTION {s} DISABLE"),
                format!("ALTER SUBSCRIPTION {s} SET (slot_name = NONE)"),
                format!("DROP SUBSCRIPTION {s}"),
            ] {
                c.batch_execute(&sql)
                    .map_err(|e| sql_err(&format!("{sql} in the clone"), &e))?;
            }
        }
    }
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {q} WITH (FORCE)"))
        .map_err(|e| sql_err("DROP DATABASE", &e))?;
    Ok(subs)
}
