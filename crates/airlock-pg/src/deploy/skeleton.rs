//! The deploy skeleton: `Deploy::start` (the Database step), `Deploy::dry` (a pass
//! in a transaction that is rolled back: `plan`) and
//! `Deploy::in_deploy_tx` (BEGIN → decide under the lock, run, ledger row → COMMIT →
//! remember), of which `apply` and `rollback` are written.
//!
//! Invariant: nothing commits outside `Deploy::in_deploy_tx`, and it commits only
//! after its body appended a ledger row, the operator did not press Ctrl-C and the
//! whole bundle verified and nothing in it changed a role (`login_kept`: the login
//! keeps nothing); the observer's `before_commit` sees every transaction that commits
//! bundle SQL (a rehearsal attributes cluster changes by it).

use crate::catalog::described::Tracker;
use crate::deploy::checks::{Check, CheckName, PlanReport};
use crate::deploy::decide::{decide, Ctx, Tools};
use crate::deploy::options::Options;
use crate::deploy::pipeline::{Pass, Recorder};
use crate::deploy::target::{self, Session};
use crate::ledger::chain::{self as ledger, LedgerRow, NewRow};
use crate::ledger::receipt::{self, operator_name, Receipt};
use crate::session::hermetic::{BundlePins, SessionFacts};
use crate::{deploy::files, ledger::remembered, sql_err, DbError};
use airlock_bundle::approval::QuorumReport;
use airlock_bundle::verified::VerifiedBundle;
use postgres::Transaction;
use std::time::Instant;

/// A deploy under way: the pinned session on the target, the prelude every bundle
/// file runs behind, the gate/probe harness and the fingerprint tracker.
pub(crate) struct Deploy {
    pub session: Session,
    pub pins: BundlePins,
    pub prelude: String,
    pub tools: Tools,
    pub started: Instant,
    pub started_at: String,
}

impl Deploy {
    /// Step Database: connect, name guard, server version, session settings.
    pub(crate) fn start(vb: &VerifiedBundle, opts: &Options<'_>) -> Result<Deploy, DbError> {
        let (started, started_at) = (Instant::now(), receipt::now());
        let m = vb.manifest();
        let session = target::open(opts.conn, &opts.expected_db, m, &opts.statement_timeout)?;
        let mut d = Deploy::on(session, vb, opts);
        (d.started, d.started_at) = (started, started_at);
        Ok(d)
    }

    /// A deploy on a session already open.
    pub(crate) fn on(session: Session, vb: &VerifiedBundle, opts: &Options<'_>) -> Deploy {
        let pins = session.pins(vb.manifest(), opts);
        Deploy {
            prelude: pins.file_prelude(),
            tools: Tools::new(&session.facts, &pins, opts),
            pins,
            session,
            started: Instant::now(),
            started_at: receipt::now(),
        }
    }

    /// A receipt for `event` on this bundle and server, before anything ran.
    pub(crate) fn receipt(
        &self,
        event: &str,
        outcome: &str,
        vb: &VerifiedBundle,
        opts: &Options<'_>,
    ) -> Receipt {
        let mut r = Receipt::new(
            event,
            outcome,
            vb,
            &self.session.info,
            &opts.params,
            self.started_at.clone(),
        );
        r.system_identifier = self.session.facts.system_identifier.clone();
        r
    }

    /// The receipt of this deploy, finished: its duration, and how its schema
    /// fingerprints were taken.
    pub(crate) fn finish(&self, mut receipt: Receipt) -> Receipt {
        receipt.descriptions = self.tools.tracker.steps.clone();
        receipt.finish(self.started)
    }

    /// BEGIN on the target, with the context the pipeline's steps read and this
    /// deploy's harness and tracker.
    fn begin<'s>(
        &'s mut self,
        vb: &'s VerifiedBundle,
        opts: &'s Options<'s>,
    ) -> Result<(Transaction<'s>, Ctx<'s>, &'s mut Tools), DbError> {
        let Deploy {
            session,
            pins,
            prelude,
            tools,
            ..
        } = self;
        let cx = Ctx {
            vb,
            opts,
            facts: &session.facts,
            pins,
            prelude,
            taken: None,
        };
        let tx = session
            .client
            .transaction()
            .map_err(|e| sql_err("BEGIN", &e))?;
        Ok((tx, cx, tools))
    }

    /// `pass` ([`Pass::Plan`]) in a transaction that is rolled
    /// back, with its own harness and tracker: nothing it does outlives it.
    pub(crate) fn dry(
        &mut self,
        vb: &VerifiedBundle,
        opts: &Options<'_>,
        rec: &mut Recorder<'_>,
    ) -> Result<(), DbError> {
        let (mut tx, cx, _) = self.begin(vb, opts)?;
        let mut tools = Tools::new(cx.facts, cx.pins, opts);
        decide(&mut tx, &cx, &mut tools, rec);
        let _ = tx.rollback();
        Ok(())
    }

    /// One deploy transaction: BEGIN → `body` (decide again under the lock, run,
    /// append the ledger row) → Ctrl-C check → the whole bundle verified → COMMIT →
    /// remember. A `body` that returns no ledger row had nothing to do: rolled back.
    pub(crate) fn in_deploy_tx<T>(
        &mut self,
        vb: &VerifiedBundle,
        opts: &Options<'_>,
        body: impl FnOnce(
            &mut Transaction<'_>,
            &Ctx<'_>,
            &mut Tools,
        ) -> Result<(Option<LedgerRow>, T), DbError>,
    ) -> Result<(Option<LedgerRow>, T), DbError> {
        let superuser = self.session.facts.superuser;
        let (mut tx, cx, tools) = self.begin(vb, opts)?;
        // A login that is the bundle's own role (the owner logging in) keeps nothing for
        // anyone else: only a deploy login distinct from it is held to `login_kept`.
        let own = !superuser
            && crate::ledger::login_kept::login_is_bundle_role(
                &mut tx,
                vb.manifest().spec().target.role.as_deref(),
            )?;
        let kept = crate::ledger::login_kept::before(&mut tx, superuser || own)?;
        tools.appended_rows = 0;
        let (row, value) = body(&mut tx, &cx, tools)?;
        let Some(row) = row else {
            tx.rollback().map_err(|e| sql_err("ROLLBACK", &e))?;
            return Ok((None, value));
        };
        files::interrupted_check()?;
        // Nothing commits before the whole bundle verified (a streamed tier ran while
        // the rest of the archive was still being read).
        files::all_verified(vb)?;
        // Nothing writes after this: whatever still runs (code that re-deferred a
        // constraint trigger past the last `SET CONSTRAINTS ALL IMMEDIATE` fires at
        // COMMIT, after the last check) finds the transaction read-only.
        crate::ledger::login_kept::seal(&mut tx)?;
        if let Some(o) = opts.observer {
            o.before_commit(&mut tx)?;
        }
        // Last: nothing that ran may leave the deploy login changed (`login_kept`).
        let ours = tools.appended_rows.max(1);
        crate::ledger::login_kept::check(&mut tx, &kept, Some(&row.row_hash), ours)?;
        crate::ledger::login_kept::commit(tx)?;
        if let Some(o) = opts.observer {
            o.committed();
        }
        // The body's last fingerprint came after its last catalog write.
        tools.tracker.committed();
        remember(opts, cx.facts, &row, &tools.tracker);
        Ok((Some(row), value))
    }
}

/// Step Remember, after a commit: remember the new head and keep the schema
/// description (a failure is only a warning; the change has committed).
pub(crate) fn remember(
    opts: &Options<'_>,
    facts: &SessionFacts,
    row: &LedgerRow,
    tracker: &Tracker,
) {
    if opts.remember {
        if let Some(w) = remembered::remember(&facts.system_identifier, &facts.database, row) {
            eprintln!("{w}");
        }
        if let Some(w) = tracker.keep() {
            eprintln!("{w}");
        }
    }
}

/// The plan on an open session: every check, in apply's order, in one transaction
/// that is rolled back; also what `apply` runs before it asks for the database name.
/// Returns the first error as `apply` would have raised it.
pub fn plan_on(
    session: Session,
    vb: &VerifiedBundle,
    opts: &Options<'_>,
    report: PlanReport,
) -> (PlanReport, Option<DbError>) {
    let mut deploy = Deploy::on(session, vb, opts);
    plan_deploy(&mut deploy, vb, opts, report)
}

pub(crate) fn plan_deploy(
    deploy: &mut Deploy,
    vb: &VerifiedBundle,
    opts: &Options<'_>,
    mut report: PlanReport,
) -> (PlanReport, Option<DbError>) {
    let info = &deploy.session.info;
    report.database = info.database.clone();
    let fleet = &opts.expected_db;
    report.target_match = fleet
        .is_fleet()
        .then(|| fleet.matching(&info.database).map(str::to_string))
        .flatten();
    report.push(Check::ok(
        CheckName::Database,
        format!(
            "connected to {}{} (server_version_num {}) as {}{}",
            info.database,
            match &report.target_match {
                Some(m) if m != &info.database => format!(" (matches {m:?} of the bundle's fleet)"),
                Some(_) => " (named in the bundle's fleet)".to_string(),
                None => String::new(),
            },
            info.server_version_num,
            info.session_user,
            match deploy.session.facts.overridden.as_str() {
                "" => String::new(),
                names => format!("; database/role settings not inherited (the server's own values instead): {names}"),
            }
        ),
    ));
    let mut rec = Recorder::new(Pass::Plan, Some(&mut report));
    let began = deploy.dry(vb, opts, &mut rec);
    let first = rec.first.take();
    drop(rec);
    match began {
        Ok(()) => (report.finish(), first),
        Err(e) => {
            report.push(Check::failed(CheckName::Ledger, &e));
            report.skip_rest("apply stops above");
            (report.finish(), Some(e))
        }
    }
}

/// The row `event` appends for this bundle, with the operator's params and name, the
/// schema fingerprints `(before, after)` and the approvals that opened its gates.
pub(crate) fn append_row(
    tx: &mut Transaction<'_>,
    vb: &VerifiedBundle,
    opts: &Options<'_>,
    event: &'static str,
    tiers: Vec<String>,
    (before, after): (&str, &str),
    approvals: Option<&QuorumReport>,
) -> Result<LedgerRow, DbError> {
    let m = vb.manifest();
    ledger::append(
        tx,
        NewRow {
            event,
            bundle_name: m.bundle.name.clone(),
            bundle_version: m.bundle.version.clone(),
            sequence: m.bundle.sequence as i64,
            bundle_id: vb.id().into(),
            tiers,
            params: opts.params.clone(),
            operator: operator_name(),
            fingerprint_before: before.into(),
            fingerprint_after: after.into(),
            bundle_tiers: m.tier.iter().map(|t| t.name.clone()).collect(),
            approvals: counted_approvals(approvals),
            receipt: None,
        },
    )
}

/// The approvals that counted toward a quorum, as the ledger row records them.
fn counted_approvals(q: Option<&QuorumReport>) -> Vec<ledger::RecordedApproval> {
    q.iter()
        .flat_map(|q| q.approvals.iter())
        .filter(|a| a.counted)
        .map(|a| ledger::RecordedApproval {
            key_id: a.key_id.clone(),
            document: a.document.clone(),
            signature: a.signature.clone(),
        })
        .collect()
}
