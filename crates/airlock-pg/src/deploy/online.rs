//! Online steps: a tier (or rollback) declared `online = true` runs outside any
//! transaction, one statement at a time, in order.
//!
//! ```text
//!   decide (in a deploy transaction, rolled back): ledger · gates · preflight|drift ·
//!          bundle role; this session takes the online lock (session-level). When the
//!          tier before it ran in this run, in the transaction that ran (or recorded)
//!          it instead, after its ledger row: [`decide_next`]
//!   per statement: bundle prelude (session SETs) · INVALID leftover dropped · the
//!          statement alone · airlock's settings back · a record transaction: deploy
//!          lock, ledger unchanged since, the `step` row (the tier's last statement:
//!          the verify probe if it is the bundle's last tier, then its `apply` row) ·
//!          COMMIT · remember
//!   online lock released
//! ```
//!
//! Two operators are kept apart without a transaction held across a build (which would
//! make `CREATE INDEX CONCURRENTLY` wait for it): the running session holds the
//! advisory lock [`ledger::ONLINE_KEY`] for the whole run, and every deploy
//! transaction takes it with the deploy lock, so any other apply or rollback is
//! refused (lock-busy, naming the session) until the run ends; a dead session's lock
//! goes with it.
//!
//! Invariant: a statement is recorded only after it completed and the catalog holds
//! what it promised (its index by that name, on that table, with that definition,
//! VALID and READY; its constraint validated; its enum value present); a recorded
//! statement never runs again for this bundle (until a rollback); the one that was
//! running when a run stopped runs again, unless the catalog shows it done (its index
//! built, by the server after the run stopped: recorded, with a note), which lint made
//! safe otherwise (`IF EXISTS`, or idempotent by nature); an index build found INVALID
//! is dropped before it is built again only when it is the step's own (its table, its
//! definition) and no other session may be building it, and is never counted as done;
//! a name held by anything else is refused, naming it and its owner.

use crate::catalog::invalid_index::{drop_invalid, held, name_held, steps_of, Held, Ours};
use crate::deploy::bundle_role::BundleRole;
use crate::deploy::decide::{self, Ctx, Decision, Tools};
use crate::deploy::options::Options;
use crate::deploy::skeleton::Deploy;
use crate::deploy::target::Session;
use crate::gates::gate::ProbeReport;
use crate::ledger::chain::{self as ledger, LedgerRow};
use crate::ledger::receipt::StepDone;
use crate::refusal::Mismatch;
use crate::session::hermetic::Scope;
use crate::{
    catalog::promised, deploy::files, pg_message, session::hermetic as session, sql_err, DbError,
};
use airlock_bundle::approval::QuorumReport;
use airlock_bundle::verified::VerifiedBundle;
use airlock_sql::{IndexBuild, OnlineStep};
use postgres::{Client, Transaction};
use std::time::Instant;

/// Where the online steps run: the session, the bundle prelude (session settings,
/// sent before each step), the bundle's search_path, the operator's options.
struct StepSession<'a> {
    prelude: &'a str,
    search_path: &'a [String],
    opts: &'a Options<'a>,
}

/// Run steps `from..` of `steps` on the session, told to `record` as each completes.
/// `context` names the tier for messages.
fn run_steps(
    client: &mut Client,
    ss: &StepSession<'_>,
    steps: &[(String, OnlineStep, String)],
    from: usize,
    context: &str,
    record: &mut dyn FnMut(&mut Client, usize, StepDone) -> Result<(), DbError>,
) -> Result<(), DbError> {
    let n = steps.len();
    outside_code_refused(client, &steps[from.min(n)..])?;
    for (k, (file, step, text)) in steps.iter().enumerate().skip(from) {
        files::interrupted_check()?;
        let started = Instant::now();
        if let Some(o) = ss.opts.observer {
            o.step(k + 1, n, file, step.line);
        }
        let at = format!("{context}, step {}/{n}, {file}:{}", k + 1, step.line);
        let notes = match run_step(client, ss, step, text, &at) {
            Ok(notes) => notes,
            Err(e) => {
                let _ = client.batch_execute(&repin(ss));
                return Err(stopped_at(e, k));
            }
        };
        let done = StepDone {
            tier: String::new(),
            step: k + 1,
            of: n,
            file: file.clone(),
            line: step.line,
            duration_ms: started.elapsed().as_millis() as u64,
            notes,
        };
        record(client, k, done)?;
    }
    Ok(())
}

/// airlock's own session settings (role, search_path, pins), sent after each step
/// and before each catalog check.
fn repin(ss: &StepSession<'_>) -> String {
    session::repin_sql(&ss.opts.statement_timeout)
}

/// One step: its statement (unless the catalog already holds what it builds), run
/// again on a lock timeout (`--lock-retries`); then airlock's settings back, and the
/// catalog read for what the statement promised ([`promised::prove`]): only then is
/// the step done. What airlock did beside the statement, as notes.
fn run_step(
    client: &mut Client,
    ss: &StepSession<'_>,
    step: &OnlineStep,
    text: &str,
    at: &str,
) -> Result<Vec<String>, DbError> {
    let mut notes = vec![];
    crate::deploy::retry::retrying(
        ss.opts,
        client,
        |c| c,
        |c| attempt(c, ss, step, text, at, &mut notes),
    )?;
    restore(client, ss)?;
    promised::prove(client, step, ss.search_path, at)?;
    Ok(notes)
}

/// One attempt of a step. An index build asks the catalog first: built already (a
/// stopped run's build finished) → nothing to run; an INVALID leftover of it → dropped
/// first; being built by another session → wait (a lock timeout, retried); the name
/// someone else's → refused. Then the bundle prelude and the statement alone.
fn attempt(
    c: &mut Client,
    ss: &StepSession<'_>,
    step: &OnlineStep,
    text: &str,
    at: &str,
    notes: &mut Vec<String>,
) -> Result<(), DbError> {
    let set_session = |c: &mut Client| {
        c.batch_execute(ss.prelude)
            .map_err(|e| sql_err("setting the bundle's session for an online step", &e))
    };
    // (The session has airlock's settings here: a failed attempt restores them.)
    if let Some(b) = &step.builds {
        match held(c, b, ss.search_path)? {
            Held::Ours(o) if o.valid => {
                notes.push(format!("the index {} was already there, VALID, with this step's definition (the build of an earlier run that stopped, finished by the server): not built again, recorded as done", o.name));
                return Ok(());
            }
            Held::Ours(o) if !o.builders.is_empty() => return Err(being_built(c, &o, at)),
            Held::Ours(o) => {
                set_session(c)?;
                let dropped = drop_invalid(c, &o, at);
                restore(c, ss)?;
                notes.push(dropped?);
            }
            Held::Other { what, owner } => return Err(name_held(at, &b.index, &what, &owner)),
            Held::Nothing | Held::NoTable => {}
        }
    }
    if let Some(d) = &step.drops {
        if crate::catalog::promised::index_gone(c, d, ss.search_path)? {
            notes.push(format!("the index {} was not there (the drop of an earlier run that stopped, finished): not dropped again, recorded as done", d.index));
            return Ok(());
        }
    }
    set_session(c)?;
    let e = match run_statement(c, ss, step, text) {
        Ok(()) => return Ok(()),
        Err(StepError::Sql(e)) => e,
        Err(StepError::Kept(e)) => {
            restore(c, ss)?;
            return Err(e);
        }
    };
    restore(c, ss)?;
    // The step did not happen: a failed build's INVALID index goes first, when it is
    // the step's own and nobody builds it.
    let leftover = match &step.builds {
        Some(b) => drop_failed_build(c, ss, b, at)?,
        None => String::new(),
    };
    let message = format!("{}{leftover}", pg_message(&e));
    let context = at.to_string();
    if crate::sqlstate(&e) == Some("55P03") {
        return Err(DbError::lock_timeout(context, message));
    }
    Err(DbError::Sql { context, message })
}

/// A step that runs outside any transaction airlock can check (an index built
/// concurrently, `VACUUM`, `ALTER TYPE … ADD VALUE`) fires event triggers in the
/// session as the bundle's role, not in a security-restricted operation: one that runs
/// a function a non-superuser owns could reset to the login and change what outlives
/// the run, committed with the statement. Refused before such steps run
/// ([`crate::ledger::login_kept`]); `VALIDATE CONSTRAINT` runs in a checked transaction.
fn outside_code_refused(
    client: &mut Client,
    steps: &[(String, OnlineStep, String)],
) -> Result<(), DbError> {
    let unchecked = steps
        .iter()
        .any(|(_, step, _)| !matches!(step.promise, Some(airlock_sql::Promise::Validated { .. })));
    if !unchecked {
        return Ok(());
    }
    let code: Option<String> = client
        .query_one(
            &format!("SELECT {}", crate::session::owner_code::EVENT_TRIGGER_CODE),
            &[],
        )
        .map_err(|e| sql_err("looking for event triggers", &e))?
        .get(0);
    match code {
        None => Ok(()),
        Some(triggers) => Err(DbError::LoginKept {
            message: format!("an online tier's steps run outside any transaction airlock can check, and event triggers would run code a non-superuser owns in them, as the bundle's role, free to reset to the deploy login and keep what it changes: {triggers}; nothing of this tier ran"),
            hint: "have a superuser drop those event triggers or take their functions over (ALTER FUNCTION … OWNER TO postgres) after reviewing them, or make the tier transactional".into(),
        }),
    }
}

enum StepError {
    Sql(postgres::Error),
    Kept(DbError),
}

/// A step's statement. `VALIDATE CONSTRAINT` evaluates the table's CHECK expressions
/// as the session's role, so the owner's function there may reset to the deploy login:
/// it runs in a transaction block of its own held to [`crate::ledger::login_kept`] (refused
/// before COMMIT when a role, the login's defaults, what it owns or the ledger
/// changed). The other online statements cannot run in a transaction block, and the
/// code they fire runs as the table's owner in a security-restricted operation, which
/// may not change the role.
/// airlock's own reads run under airlock's settings (role, `search_path`), the
/// statement under the bundle's, all in that one transaction.
fn run_statement(
    c: &mut Client,
    ss: &StepSession<'_>,
    step: &OnlineStep,
    text: &str,
) -> Result<(), StepError> {
    if !matches!(step.promise, Some(airlock_sql::Promise::Validated { .. })) {
        return c.simple_query(text).map(|_| ()).map_err(StepError::Sql);
    }
    let mut tx = c.transaction().map_err(StepError::Sql)?;
    tx.batch_execute(&repin(ss)).map_err(StepError::Sql)?;
    let before = crate::ledger::login_kept::before(&mut tx, false).map_err(StepError::Kept)?;
    tx.batch_execute(ss.prelude).map_err(StepError::Sql)?;
    tx.simple_query(text).map_err(StepError::Sql)?;
    tx.batch_execute(&repin(ss)).map_err(StepError::Sql)?;
    crate::ledger::login_kept::seal(&mut tx).map_err(StepError::Kept)?;
    crate::ledger::login_kept::check(&mut tx, &before, None, 0).map_err(StepError::Kept)?;
    crate::ledger::login_kept::commit(tx).map_err(StepError::Kept)
}

/// After a failed build: the INVALID index PostgreSQL keeps, when it is the step's own
/// and no other session builds it (asked as airlock), dropped at once (as the bundle
/// role, its owner); what to tell. The session is left with airlock's settings.
fn drop_failed_build(
    c: &mut Client,
    ss: &StepSession<'_>,
    b: &IndexBuild,
    at: &str,
) -> Result<String, DbError> {
    let o = match held(c, b, ss.search_path) {
        Ok(Held::Ours(o)) if !o.valid && o.builders.is_empty() => o,
        _ => return Ok(String::new()),
    };
    c.batch_execute(ss.prelude)
        .map_err(|e| sql_err("setting the bundle's session for an online step", &e))?;
    let dropped = drop_invalid(c, &o, at);
    restore(c, ss)?;
    Ok(match dropped {
        Ok(_) => format!("; the failed build left the INVALID index {}, which airlock dropped (DROP INDEX CONCURRENTLY): nothing of this step stays", o.name),
        Err(e) => format!("; {}", error_message(e)),
    })
}

/// airlock's own settings back on the session (after bundle SQL ran on it).
fn restore(c: &mut Client, ss: &StepSession<'_>) -> Result<(), DbError> {
    c.batch_execute(&repin(ss))
        .map_err(|e| sql_err("restoring airlock's session settings", &e))
}

/// The message of an error built by [`drop_invalid`].
fn error_message(e: DbError) -> String {
    match e {
        DbError::LockTimeout { message, .. } | DbError::Sql { message, .. } => message,
        other => other.to_string(),
    }
}

/// The step's index is INVALID and another session may be building it now: not ours
/// to drop; a lock timeout (retried with `--lock-retries`), naming the sessions.
fn being_built(c: &mut Client, o: &Ours, at: &str) -> DbError {
    let who = crate::session::sessions::by_pid(c, &o.builders);
    DbError::lock_timeout(
        at.to_string(),
        format!(
            "the index {} this step builds is INVALID and another session may be building it now ({}); airlock neither drops nor builds it meanwhile: wait for that build to end (the next apply finds it built and records the step), or end it (SELECT pg_cancel_backend(pid)) and apply again",
            o.name,
            who.join("; ")
        ),
    )
}

/// The error of step `k` (0-based), saying what of the tier is done.
fn stopped_at(e: DbError, k: usize) -> DbError {
    let done = if k == 0 {
        "no step of it is done".to_string()
    } else {
        format!("steps 1-{k} are done and recorded")
    };
    let more = format!(
        "; {done} (an online tier: each step commits on its own); the next apply continues with step {}",
        k + 1
    );
    match e {
        DbError::Sql { context, message } => DbError::Sql {
            context,
            message: message + &more,
        },
        DbError::LockTimeout {
            context,
            message,
            in_the_way,
        } => DbError::LockTimeout {
            context,
            message: message + &more,
            in_the_way,
        },
        DbError::State(message) => DbError::State(match message.split_once("\nhint: ") {
            Some((said, hint)) => format!("{said}{more}\nhint: {hint}"),
            None => message + &more,
        }),
        other => other,
    }
}

/// The ledger head this run last saw or wrote; anything else means another session
/// wrote the ledger while this one ran steps (which the online lock should make
/// impossible): stop.
fn same_head(now: Option<&LedgerRow>, head: &Option<String>) -> Result<(), DbError> {
    let now = now.map(|r| r.row_hash.clone());
    if &now != head {
        return Err(DbError::State(format!(
            "the ledger changed while this run's online steps ran (head now {}, expected {}); stopping: run `airlock status` and plan again",
            now.as_deref().map(airlock_base::text::short).unwrap_or("none"),
            head.as_deref().map(airlock_base::text::short).unwrap_or("none")
        )));
    }
    Ok(())
}

/// apply: the online tier `decision.idx[0]` (decided, and the online lock taken, in
/// the deploy transaction before), from its first step not yet recorded.
pub(crate) fn apply_tier(
    deploy: &mut Deploy,
    vb: &VerifiedBundle,
    opts: &Options<'_>,
    decision: &Decision,
) -> TierRun {
    let m = vb.manifest();
    let i = decision.idx[0];
    let tier = &m.tier[i];
    if let Some(o) = opts.observer {
        // Its own line: the bytes and total of the transaction before it are done.
        o.start(
            "apply (online)",
            tier.files.len(),
            files::bytes_of(m, &tier.files),
        );
        o.tier(i, m.tier.len(), &tier.name);
    }
    let verify = m
        .verify
        .as_ref()
        .filter(|_| i + 1 == m.tier.len())
        .map(|v| LastProbe {
            file: v.file.clone(),
            expect: v.expect.clone(),
            mismatch: |described| Mismatch::Verify { described },
        });
    let rec = Recording {
        vb,
        opts,
        tiers: vec![tier.name.clone()],
        tier: Some(i),
        last_event: "apply",
        approvals: decision.gates.as_ref().and_then(|g| g.ratification.clone()),
        steps_recorded: true,
        last_probe: verify,
        head: decision.head.clone(),
        before: decision.before.clone().unwrap_or_default(),
        run: TierRun::default(),
    };
    let role = decision
        .bundle_role
        .as_ref()
        .expect("decided under the lock");
    let context = format!("tier {}/{} {:?} (online)", i + 1, m.tier.len(), tier.name);
    run_online(
        deploy,
        &tier.files,
        role,
        decision.steps_done,
        &context,
        rec,
    )
}

/// rollback with `[rollback] online = true`: every rollback statement from the first
/// (each is safe to run again), then the rollback probe and the rollback row. Decided,
/// and the online lock taken, in the deploy transaction before.
pub(crate) fn rollback(
    deploy: &mut Deploy,
    vb: &VerifiedBundle,
    opts: &Options<'_>,
    decided: RollbackDecision,
) -> TierRun {
    let rb = vb.manifest().rollback.as_ref().expect("checked before");
    let probe = match (&rb.probe, &rb.expect) {
        (Some(file), Some(expect)) => Some(LastProbe {
            file: file.clone(),
            expect: expect.clone(),
            mismatch: |described| Mismatch::RollbackProbe { described },
        }),
        _ => None,
    };
    // After a partial apply, only the files of the tiers that ran (and those that undo
    // the whole bundle).
    let files = rb.files_for(&decided.undone);
    let rec = Recording {
        vb,
        opts,
        tiers: decided.undone,
        tier: None,
        last_event: "rollback",
        approvals: None,
        steps_recorded: false,
        last_probe: probe,
        head: decided.head,
        before: decided.before,
        run: TierRun::default(),
    };
    if let Some(o) = opts.observer {
        o.start(
            "rollback (online)",
            files.len(),
            files::bytes_of(vb.manifest(), &files),
        );
    }
    run_online(deploy, &files, &decided.role, 0, "rollback (online)", rec)
}

/// What rollback decided under the lock before its online statements.
pub(crate) struct RollbackDecision {
    /// The tiers it undoes (applied, or with online steps recorded).
    pub undone: Vec<String>,
    pub role: BundleRole,
    pub head: Option<String>,
    pub before: String,
}

/// Steps `from..` of `files` on the deploy's session as `role`, each recorded by `rec`;
/// the online lock released at the end, whatever happened.
fn run_online(
    deploy: &mut Deploy,
    files: &[String],
    role: &BundleRole,
    from: usize,
    context: &str,
    mut rec: Recording<'_>,
) -> TierRun {
    let result = (|| {
        // Every step commits: nothing runs before the whole bundle verified.
        files::all_verified(rec.vb)?;
        let steps = steps_of(rec.vb, files)?;
        // Session settings: there is no transaction for `SET LOCAL`.
        let prelude = role.prelude_in(&deploy.pins.prelude_in(Scope::Session), Scope::Session);
        let search_path = deploy.pins.search_path.clone();
        let n = steps.len();
        let Deploy {
            session,
            tools,
            pins,
            prelude: tx_prelude,
            ..
        } = &mut *deploy;
        let Session { client, facts, .. } = session;
        let cx = Ctx {
            vb: rec.vb,
            opts: rec.opts,
            facts,
            pins,
            prelude: tx_prelude,
            taken: None,
        };
        let ss = StepSession {
            prelude: &prelude,
            search_path: &search_path,
            opts: rec.opts,
        };
        run_steps(
            client,
            &ss,
            &steps,
            from,
            context,
            &mut |client, k, step| rec.record(client, tools, &cx, k + 1 == n, step),
        )?;
        if n == 0 {
            // Only comments: the closing row alone.
            let none = StepDone {
                tier: String::new(),
                step: 0,
                of: 0,
                file: String::new(),
                line: 0,
                duration_ms: 0,
                notes: vec![],
            };
            rec.record(client, tools, &cx, true, none)?;
            rec.run.steps.clear();
        }
        Ok(())
    })();
    // The next tier, decided in the last record transaction, holds it on.
    if rec.run.next.is_none() {
        ledger::release_online_lock(&mut deploy.session.client);
    }
    rec.run.failed = result.err();
    rec.run
}

/// What an online run left: its rows, its steps, the last probe's report, and why it
/// stopped early (what it recorded before stays recorded).
#[derive(Default)]
pub(crate) struct TierRun {
    pub failed: Option<DbError>,
    pub rows: Vec<LedgerRow>,
    pub steps: Vec<StepDone>,
    pub probe: Option<ProbeReport>,
    /// The schema fingerprint after the last step.
    pub after: String,
    /// The next tier of the run, online, decided in the transaction that recorded this
    /// one's last step ([`decide_next`]); the online lock is held for it.
    pub next: Option<Box<Decision>>,
}

/// The probe that runs before the closing row (apply: verify, after the bundle's last
/// tier; rollback: the rollback probe).
struct LastProbe {
    file: String,
    expect: std::collections::BTreeMap<String, String>,
    mismatch: fn(String) -> Mismatch,
}

/// What the record transactions of one online run need, and what they made.
struct Recording<'a> {
    vb: &'a VerifiedBundle,
    opts: &'a Options<'a>,
    /// The tiers its rows name.
    tiers: Vec<String>,
    /// apply: the tier it runs (the next one is decided in its last record
    /// transaction, when it is online); rollback: `None`.
    tier: Option<usize>,
    /// The closing row's event (`apply`, `rollback`).
    last_event: &'static str,
    /// The quorum that opened the tier's gates: its approvals go on the closing row.
    approvals: Option<QuorumReport>,
    /// Each statement but the last gets its `step` row (apply); else only the closing
    /// row is written (rollback, which runs again whole).
    steps_recorded: bool,
    last_probe: Option<LastProbe>,
    /// The ledger head this run last saw or wrote.
    head: Option<String>,
    /// The schema fingerprint after the last recorded step.
    before: String,
    run: TierRun,
}

impl Recording<'_> {
    /// After a step: unless it is the `last` or steps are not recorded, its `step` row;
    /// after the last, the probe, then the closing row (and the next tier decided, when
    /// it is online). Each row in a record transaction: deploy lock, the ledger as this
    /// run left it, the row, the whole bundle verified, COMMIT, remember.
    fn record(
        &mut self,
        client: &mut Client,
        tools: &mut Tools,
        cx: &Ctx<'_>,
        last: bool,
        mut step: StepDone,
    ) -> Result<(), DbError> {
        step.tier = self.tiers.join(", ");
        self.run.steps.push(step);
        if !last && !self.steps_recorded {
            return Ok(());
        }
        let (vb, opts) = (self.vb, self.opts);
        let mut tx = client.transaction().map_err(|e| sql_err("BEGIN", &e))?;
        let head = ledger::lock_head_for_record(&mut tx, &opts.lock_timeout, &mut tools.ledger)?;
        same_head(head.as_ref(), &self.head)?;
        if !last {
            ledger::allow_steps(&mut tx)?;
        }
        crate::deploy::target::set_params(&mut tx, &opts.params)?;
        if let (true, Some(p)) = (last, &self.last_probe) {
            let report = decide::expect_probe(&mut tx, vb, tools, &p.file, &p.expect, p.mismatch)?;
            self.run.probe = Some(report);
        }
        let after = tools.tracker.fingerprint(&mut tx)?;
        let event = if last { self.last_event } else { "step" };
        let row = crate::deploy::skeleton::append_row(
            &mut tx,
            vb,
            opts,
            event,
            self.tiers.clone(),
            (&self.before, &after),
            self.approvals.as_ref().filter(|_| last),
        )?;
        let next = match self.tier {
            Some(i) if last => decide_next(&mut tx, cx, tools, i, &after)?,
            _ => None,
        };
        files::all_verified(vb)?;
        crate::ledger::login_kept::seal(&mut tx)?;
        if let Some(o) = opts.observer {
            o.before_commit(&mut tx)?;
        }
        crate::ledger::login_kept::commit(tx)?;
        self.run.next = next.map(Box::new);
        tools.tracker.committed();
        crate::deploy::skeleton::remember(opts, cx.facts, &row, &tools.tracker);
        self.head = Some(row.row_hash.clone());
        self.before = after.clone();
        self.run.after = after;
        self.run.rows.push(row);
        Ok(())
    }
}

/// The next tier of the run, when it is online, decided in the transaction that ran
/// (or recorded) tier `ran`, after that transaction's ledger row and before its COMMIT:
/// every check a deploy transaction makes ([`decide::decide_under_lock`]: the ledger
/// with the row just written, the gates, drift, the bundle role), in a savepoint, with
/// `after` as the fingerprint before (the one that row records, taken in this
/// transaction after the tier's last statement; nothing of the bundle ran since), then
/// the online lock, so that no other deploy comes between the COMMIT and its steps.
/// This spares the tier a decide transaction of its own (the deploy lock again, the
/// ledger read again, the schema described again).
///
/// `Ok(None)`: the next tier is not online or not in this run, or a check did not pass
/// (rolled back to the savepoint): the next deploy transaction decides it as before,
/// and refuses with the reason. `Err` only when the transaction itself failed.
pub(crate) fn decide_next(
    tx: &mut Transaction<'_>,
    cx: &Ctx<'_>,
    tools: &mut Tools,
    ran: usize,
    after: &str,
) -> Result<Option<Decision>, DbError> {
    let m = cx.vb.manifest();
    let next = ran + 1;
    let last = crate::ledger::policy::last_of_run(m, cx.opts.through.as_deref());
    let tier = match m.tier.get(next) {
        Some(t) if t.online && next <= last => t,
        _ => return Ok(None),
    };
    let context = format!(
        "deciding online tier {}/{} {:?} in the transaction before it",
        next + 1,
        m.tier.len(),
        tier.name
    );
    tx.batch_execute("SAVEPOINT airlock_next")
        .map_err(|e| sql_err(&context, &e))?;
    let cx = Ctx {
        taken: Some(after),
        ..*cx
    };
    let decided = decide::decide_under_lock(tx, &cx, tools)
        .ok()
        .filter(|d| d.idx == [next])
        .filter(|_| matches!(ledger::hold_online_lock(tx), Ok(true)));
    let end = match decided {
        Some(_) => "RELEASE SAVEPOINT airlock_next",
        None => "ROLLBACK TO SAVEPOINT airlock_next; RELEASE SAVEPOINT airlock_next",
    };
    tx.batch_execute(end).map_err(|e| sql_err(&context, &e))?;
    Ok(decided)
}
