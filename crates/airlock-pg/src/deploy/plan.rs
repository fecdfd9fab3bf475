//! `airlock plan`: the GO/NO-GO. Every check `apply` makes, in the order `apply` makes
//! them, each a row with its evidence; the verdict and exit code are those of the
//! first row that does not pass, which is what `apply` would return for the same
//! inputs. `plan` is the deploy pipeline ([`crate::deploy::pipeline`]) stopped before its first
//! write, so it cannot judge otherwise than `apply`: `apply` on a terminal runs the
//! same checks before it asks for the database name, and again under the lock.
//!
//! Invariant: plan changes nothing. Its one transaction is always rolled back, it never
//! takes the deploy lock, and it never writes this host's memory of the ledger head.

use crate::deploy::lock_plan::{self, LockPlan};
use crate::deploy::options::Options;
use crate::deploy::skeleton::{plan_deploy, Deploy};
use crate::deploy::target;
use crate::predict::ReadAhead;
use airlock_bundle::verified::VerifiedBundle;

pub use crate::deploy::checks::{Check, CheckName, CheckVerdict, PlanReport, PlanVerdict};
pub use crate::deploy::skeleton::plan_on;

/// What the bundle's SQL changes beyond its database; a file that cannot be read back
/// is named as such (never silently nothing).
fn reaches_beyond(vb: &VerifiedBundle) -> Vec<airlock_sql::Reach> {
    vb.reaches_beyond().unwrap_or_else(|e| {
        vec![airlock_sql::Reach {
            file: String::new(),
            line: 0,
            statement: format!("unknown (the bundle's SQL could not be read back: {e})"),
        }]
    })
}

/// What the target's catalog holds that reaches beyond it (one query; information:
/// a failure to read it is named in its place).
fn catalog_reach(client: &mut postgres::Client) -> Vec<airlock_sql::Reach> {
    crate::session::outside::in_catalog(client).unwrap_or_else(|e| {
        vec![airlock_sql::Reach {
            file: String::new(),
            line: 0,
            statement: format!("unknown (the target's catalog could not be read: {e})"),
        }]
    })
}

/// The lock plan of the tiers this plan would run (all of them when it says NO-GO
/// before knowing), with sizes read now, a relation another session locks waited for
/// `within` at most. Information only: a failure to read it is said in its place,
/// never a NO-GO.
fn lock_plan(
    client: &mut postgres::Client,
    vb: &VerifiedBundle,
    report: &PlanReport,
    within: std::time::Duration,
) -> LockPlan {
    let tiers: Vec<String> = if report.tiers.is_empty() {
        vb.manifest()
            .spec()
            .tier
            .iter()
            .map(|t| t.name.clone())
            .collect()
    } else {
        report.tiers.iter().map(|t| t.name.clone()).collect()
    };
    lock_plan::sized(client, vb, lock_plan::of_tiers(vb, &tiers), within)
}

/// The predictions for the tiers this plan would run, and their check row (the
/// verdict is judged again with it, after every check apply makes); asked only when
/// the bundle-role check passed.
fn predictions(
    client: &mut postgres::Client,
    vb: &VerifiedBundle,
    mut report: PlanReport,
    timeout: std::time::Duration,
    ahead: Option<ReadAhead>,
) -> PlanReport {
    if report.tiers.is_empty() {
        return report;
    }
    // One door: nothing reads the target's data before the login and the role bundle
    // SQL runs as have passed; a refusal (or a check not reached) asks nothing more.
    let role_passed = report.checks.iter().any(|c| {
        c.check == CheckName::BundleRole
            && matches!(c.verdict, CheckVerdict::Ok | CheckVerdict::Warn)
    });
    if !role_passed {
        let why = "not asked: the bundle-role check did not pass, and nothing reads the target's data before it does";
        report.push(Check::skipped(CheckName::PredictedFailures, why));
        report.push(Check::skipped(CheckName::Destroys, why));
        return report.finish();
    }
    let tiers: Vec<String> = report.tiers.iter().map(|t| t.name.clone()).collect();
    let p = crate::predict::predict(client, vb, &tiers, timeout, ahead);
    report.push(crate::deploy::predicted::check(&p));
    report.push(crate::deploy::predicted::destroys_check(&p));
    report.predictions = Some(p);
    report.finish()
}

/// When the database's own search_path differs from the bundle's, the Database
/// check says so (information: it decides nothing).
fn search_path_note(client: &mut postgres::Client, vb: &VerifiedBundle, report: &mut PlanReport) {
    let path = vb.manifest().target.search_path.clone();
    let path = path.unwrap_or_else(crate::session::hermetic::default_search_path);
    let role = report.bundle_role.as_ref().map(|r| r.role.clone());
    if let Some(note) = crate::session::db_search_path::differs(client, &path, role.as_deref()) {
        if let Some(c) = report
            .checks
            .iter_mut()
            .find(|c| c.check == CheckName::Database && c.passed())
        {
            c.evidence.push_str(&format!("; {note}"));
        }
    }
}

/// How long the lock plan waits for a relation another session locks when no
/// `--predict-timeout` bounds it (plan before `apply --wait`).
const LOCK_PLAN_WITHIN: std::time::Duration = std::time::Duration::from_secs(5);

/// `airlock plan`: `checks` holds what the command checked before the database
/// (signatures, params); the rest is asked of the database in one transaction that is
/// always rolled back.
///
/// `predict`: ask the data about the statements it decides (each question bounded by
/// this timeout; [`crate::predict`]); `None` asks nothing.
pub fn plan(
    vb: &VerifiedBundle,
    opts: &Options<'_>,
    checks: Vec<Check>,
    predict: Option<std::time::Duration>,
) -> PlanReport {
    // The bundle's SQL read for what it reaches and for the predictions' steps on a
    // thread of its own, while the connection and apply's checks wait on the server.
    std::thread::scope(|scope| {
        let ahead = scope.spawn(|| Ahead::read(vb, predict.is_some()));
        let report = PlanReport::new(vb, &opts.shown_db(), checks);
        let m = vb.manifest();
        let opened = target::open(opts.conn, &opts.expected_db, m, &opts.statement_timeout);
        let ahead = move || {
            ahead
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        };
        planned(vb, opts, report, opened, predict, ahead)
    })
}

/// What [`plan`] reads of the bundle's SQL while it connects.
struct Ahead {
    reaches: Vec<airlock_sql::Reach>,
    steps: Option<ReadAhead>,
}

impl Ahead {
    fn read(vb: &VerifiedBundle, predict: bool) -> Ahead {
        Ahead {
            reaches: reaches_beyond(vb),
            steps: predict.then(|| ReadAhead::of(vb)),
        }
    }
}

/// [`plan`] once the session is open (or could not be); `ahead` waits for what was
/// read of the bundle meanwhile.
fn planned(
    vb: &VerifiedBundle,
    opts: &Options<'_>,
    mut report: PlanReport,
    opened: Result<target::Session, crate::DbError>,
    predict: Option<std::time::Duration>,
    ahead: impl FnOnce() -> Ahead,
) -> PlanReport {
    match opened {
        Ok(session) => {
            let mut deploy = Deploy::on(session, vb, opts);
            let (mut report, _) = plan_deploy(&mut deploy, vb, opts, report);
            let within = predict.unwrap_or(LOCK_PLAN_WITHIN);
            report.locks = Some(lock_plan(&mut deploy.session.client, vb, &report, within));
            search_path_note(&mut deploy.session.client, vb, &mut report);
            let ahead = ahead();
            if let Some(timeout) = predict {
                report = predictions(&mut deploy.session.client, vb, report, timeout, ahead.steps);
            }
            report.reaches_beyond = ahead.reaches;
            report
                .reaches_beyond
                .extend(catalog_reach(&mut deploy.session.client));
            report
        }
        Err(e) => {
            report.reaches_beyond = ahead().reaches;
            report.push(Check::failed(CheckName::Database, &e));
            report.skip_rest("apply stops at the connection");
            report.finish()
        }
    }
}
