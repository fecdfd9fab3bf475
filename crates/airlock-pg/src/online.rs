//! Online steps: a tier (or rollback) declared `online = true` runs outside any
//! transaction, one statement at a time, in order.
//!
//! ```text
//!   decide (in a deploy transaction, rolled back): ledger · gates · preflight|drift ·
//!          bundle role; this session takes the online lock (session-level)
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
//! Invariant: a statement is recorded only after it completed; a recorded statement
//! never runs again for this bundle (until a rollback); the one that was running when a
//! run stopped runs again, which lint made safe (`IF NOT EXISTS`/`IF EXISTS`, or
//! idempotent by nature); an index build found INVALID (an interrupted or failed
//! `CREATE INDEX CONCURRENTLY`) is dropped before it is built again, and never counted
//! as done.

use super::bundle_role::BundleRole;
use super::decide::{self, Decision, Tools};
use super::deploy::Deploy;
use super::gate::ProbeReport;
use super::ledger::{self, LedgerRow};
use super::options::Options;
use super::refusal::Mismatch;
use super::session::SessionFacts;
use super::target::Session;
use super::{files, pg_message, session, sql_err, DbError};
use airlock_bundle::verified::VerifiedBundle;
use airlock_sql::{IndexBuild, OnlineStep};
use postgres::{Client, GenericClient};
use std::time::Instant;

/// Every statement of `files` (verified bytes), in order, with its file.
pub(crate) fn steps_of(
    vb: &VerifiedBundle,
    files: &[String],
) -> Result<Vec<(String, OnlineStep, String)>, DbError> {
    let mut out = vec![];
    for f in files {
        let bytes = vb
            .read_all(f)
            .map_err(|e| DbError::Unverified(Box::new(e)))?;
        let steps = airlock_sql::online_steps(f, &bytes).map_err(|p| DbError::Sql {
            context: format!("{}:{}", p.file, p.line),
            message: format!("{} (an online step)", p.message),
        })?;
        for s in steps {
            let text =
                String::from_utf8_lossy(&bytes[s.start as usize..s.end as usize]).into_owned();
            out.push((f.clone(), s, text));
        }
    }
    Ok(out)
}

/// What one online step did, for the receipt and the operator.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct StepDone {
    /// The tier (or `rollback`).
    pub tier: String,
    /// 1-based, of `of`.
    pub step: usize,
    pub of: usize,
    pub file: String,
    pub line: usize,
    pub duration_ms: u64,
    /// What airlock did before it (an INVALID index left by an interrupted build,
    /// dropped), if anything.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// The bundle prelude as session settings (there is no transaction for `SET LOCAL`).
fn session_prelude(local: &str) -> String {
    local.replace("SET LOCAL ", "SET ")
}

/// An INVALID index named as `b` builds it, if there is one: its qualified name. An
/// unqualified table is looked for along `search_path` (the bundle's).
pub(crate) fn invalid_leftover(
    client: &mut impl GenericClient,
    b: &IndexBuild,
    search_path: &[String],
) -> Result<Option<String>, DbError> {
    let schemas: Vec<String> = match &b.schema {
        Some(s) => vec![s.clone()],
        None => search_path.to_vec(),
    };
    let rows = client
        .query(
            "SELECT pg_catalog.format('%I.%I', n.nspname, c.relname)
               FROM pg_catalog.pg_class c
               JOIN pg_catalog.pg_index i ON i.indexrelid OPERATOR(pg_catalog.=) c.oid
               JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
              WHERE c.relname OPERATOR(pg_catalog.=) $1
                AND n.nspname OPERATOR(pg_catalog.=) ANY ($2)
                AND NOT i.indisvalid
              ORDER BY pg_catalog.array_position($2, n.nspname::pg_catalog.text)
              LIMIT 1",
            &[&b.index, &schemas],
        )
        .map_err(|e| sql_err("looking for an INVALID index an earlier build left", &e))?;
    Ok(rows.first().map(|r| r.get(0)))
}

/// The INVALID indexes the steps of `tier` not yet done would build (left by a run
/// that stopped during a build): `DROP INDEX CONCURRENTLY …;` for each, to name in a
/// refusal.
pub(crate) fn leftover_commands(
    client: &mut impl GenericClient,
    vb: &VerifiedBundle,
    files: &[String],
    from: usize,
    search_path: &[String],
) -> Vec<String> {
    let Ok(steps) = steps_of(vb, files) else {
        return vec![];
    };
    steps
        .iter()
        .skip(from)
        .filter_map(|(_, s, _)| s.builds.as_ref())
        .filter_map(|b| invalid_leftover(client, b, search_path).ok().flatten())
        .map(|name| format!("DROP INDEX CONCURRENTLY {name};"))
        .collect()
}

/// Run steps `from..` of `steps` on the session (the bundle prelude before each), told
/// to `record` as each completes. `context` names the tier for messages.
#[allow(clippy::too_many_arguments)]
fn run_steps(
    client: &mut Client,
    prelude: &str,
    search_path: &[String],
    opts: &Options<'_>,
    steps: &[(String, OnlineStep, String)],
    from: usize,
    context: &str,
    record: &mut dyn FnMut(&mut Client, usize, StepDone) -> Result<(), DbError>,
) -> Result<(), DbError> {
    let n = steps.len();
    for (k, (file, step, text)) in steps.iter().enumerate().skip(from) {
        files::interrupted_check()?;
        let started = Instant::now();
        let at = || format!("{context}, step {}/{n}, {file}:{}", k + 1, step.line);
        client
            .batch_execute(prelude)
            .map_err(|e| sql_err("setting the bundle's session for an online step", &e))?;
        let mut notes = vec![];
        if let Some(b) = &step.builds {
            if let Some(name) = invalid_leftover(client, b, search_path)? {
                client
                    .batch_execute(&format!("DROP INDEX CONCURRENTLY IF EXISTS {name}"))
                    .map_err(|e| DbError::Sql {
                        context: at(),
                        message: format!("an earlier build left the INVALID index {name}, and dropping it failed: {}; drop it by hand (DROP INDEX CONCURRENTLY {name};) and apply again", pg_message(&e)),
                    })?;
                notes.push(format!("dropped the INVALID index {name} an earlier, interrupted build left; built it again"));
            }
        }
        let ran = super::retry::retrying(
            opts,
            client,
            |c| c,
            |c| {
                let e = match c.simple_query(text) {
                    Ok(_) => return Ok(()),
                    Err(e) => e,
                };
                // The step did not happen: a failed build's INVALID index goes first.
                let leftover = match &step.builds {
                    Some(b) => drop_failed_build(c, b, search_path),
                    None => String::new(),
                };
                let message = format!("{}{leftover}", pg_message(&e));
                if super::sqlstate(&e) == Some("55P03") {
                    c.batch_execute(prelude).map_err(|e| {
                        sql_err("setting the bundle's session for an online step", &e)
                    })?;
                    return Err(DbError::LockTimeout {
                        context: at(),
                        message,
                    });
                }
                Err(DbError::Sql {
                    context: at(),
                    message,
                })
            },
        );
        if let Err(e) = ran {
            let _ = client.batch_execute(&session::repin_sql(&opts.statement_timeout));
            let done = if k == 0 {
                "no step of it is done".to_string()
            } else {
                format!("steps 1-{k} are done and recorded")
            };
            let more = format!(
                "; {done} (an online tier: each step commits on its own); the next apply continues with step {}",
                k + 1
            );
            return Err(match e {
                DbError::Sql { context, message } => DbError::Sql {
                    context,
                    message: message + &more,
                },
                DbError::LockTimeout { context, message } => DbError::LockTimeout {
                    context,
                    message: message + &more,
                },
                other => other,
            });
        }
        client
            .batch_execute(&session::repin_sql(&opts.statement_timeout))
            .map_err(|e| sql_err("restoring airlock's session settings", &e))?;
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

/// After a failed concurrent build: the INVALID index PostgreSQL keeps, dropped at
/// once (DROP INDEX CONCURRENTLY) when the session still can; what to tell.
fn drop_failed_build(client: &mut Client, b: &IndexBuild, search_path: &[String]) -> String {
    let Ok(Some(name)) = invalid_leftover(client, b, search_path) else {
        return String::new();
    };
    match client.batch_execute(&format!("DROP INDEX CONCURRENTLY IF EXISTS {name}")) {
        Ok(()) => format!("; the failed build left the INVALID index {name}, which airlock dropped (DROP INDEX CONCURRENTLY): nothing of this step stays"),
        Err(e) => format!("; the failed build left the INVALID index {name} (not used by queries, but it slows every write to its table), and dropping it failed ({}): run DROP INDEX CONCURRENTLY {name}; then apply again", pg_message(&e)),
    }
}

/// The ledger head this run last saw or wrote; anything else means another session
/// wrote the ledger while this one ran steps (which the online lock should make
/// impossible): stop.
fn same_head(rows: &[LedgerRow], head: &Option<String>) -> Result<(), DbError> {
    let now = rows.last().map(|r| r.row_hash.clone());
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
        last_event: "apply",
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
    let rec = Recording {
        vb,
        opts,
        tiers: decided.undone,
        last_event: "rollback",
        steps_recorded: false,
        last_probe: probe,
        head: decided.head,
        before: decided.before,
        run: TierRun::default(),
    };
    run_online(
        deploy,
        &rb.files,
        &decided.role,
        0,
        "rollback (online)",
        rec,
    )
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
        let prelude = session_prelude(&role.prelude(&deploy.prelude));
        let search_path = deploy.pins.search_path.clone();
        let n = steps.len();
        let Deploy { session, tools, .. } = &mut *deploy;
        let Session { client, facts, .. } = session;
        let opts = rec.opts;
        run_steps(
            client,
            &prelude,
            &search_path,
            opts,
            &steps,
            from,
            context,
            &mut |client, k, step| rec.record(client, tools, facts, k + 1 == n, step),
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
            rec.record(client, tools, facts, true, none)?;
            rec.run.steps.clear();
        }
        Ok(())
    })();
    ledger::release_online_lock(&mut deploy.session.client);
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
    /// The closing row's event (`apply`, `rollback`).
    last_event: &'static str,
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
    /// after the last, the probe, then the closing row. Each row in a record
    /// transaction: deploy lock, the ledger as this run left it, the row, the whole
    /// bundle verified, COMMIT, remember.
    fn record(
        &mut self,
        client: &mut Client,
        tools: &mut Tools,
        facts: &SessionFacts,
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
        let locked = ledger::lock_for_deploy(&mut tx, &opts.lock_timeout, &mut |_| Ok(()))?;
        same_head(&locked.rows, &self.head)?;
        if !last {
            ledger::allow_steps(&mut tx)?;
        }
        super::target::set_params(&mut tx, &opts.params)?;
        if let (true, Some(p)) = (last, &self.last_probe) {
            let report = decide::expect_probe(&mut tx, vb, tools, &p.file, &p.expect, p.mismatch)?;
            self.run.probe = Some(report);
        }
        let after = tools.tracker.fingerprint(&mut tx)?;
        let event = if last { self.last_event } else { "step" };
        let row = super::apply::append_row(
            &mut tx,
            vb,
            opts,
            event,
            self.tiers.clone(),
            &self.before,
            &after,
        )?;
        files::all_verified(vb)?;
        if let Some(o) = opts.observer {
            o.before_commit(&mut tx)?;
        }
        tx.commit().map_err(|e| sql_err("COMMIT", &e))?;
        tools.tracker.committed();
        super::deploy::remember(opts, facts, &row, &tools.tracker);
        self.head = Some(row.row_hash.clone());
        self.before = after.clone();
        self.run.after = after;
        self.run.rows.push(row);
        Ok(())
    }
}
