//! `airlock plan`: the GO/NO-GO. Every check `apply` makes, in the order `apply` makes
//! them, each a row with its evidence; the verdict and exit code are those of the
//! first row that does not pass, which is what `apply` would return for the same
//! inputs. `plan` is the deploy pipeline ([`super::pipeline`]) stopped before its first
//! write, so it cannot judge otherwise than `apply`: `apply` on a terminal runs the
//! same checks before it asks for the database name, and again under the lock.
//!
//! Invariant: plan changes nothing. Its one transaction is always rolled back, it never
//! takes the deploy lock, and it never writes this host's memory of the ledger head.

use super::options::Options;
use super::target;
use airlock_bundle::verified::VerifiedBundle;

pub use super::checks::{Check, CheckName, CheckVerdict, PlanReport, PlanVerdict};
pub use super::deploy::plan_on;

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

/// `airlock plan`: `checks` holds what the command checked before the database
/// (signatures, params); the rest is asked of the database in one transaction that is
/// always rolled back.
pub fn plan(vb: &VerifiedBundle, opts: &Options<'_>, checks: Vec<Check>) -> PlanReport {
    let m = vb.manifest();
    let mut report = PlanReport::new(vb, &opts.expected_db, checks);
    report.reaches_beyond = reaches_beyond(vb);
    match target::open(opts.conn, &opts.expected_db, m, &opts.statement_timeout) {
        Ok(session) => plan_on(session, vb, opts, report).0,
        Err(e) => {
            report.push(Check::failed(CheckName::Database, &e));
            report.skip_rest("apply stops at the connection");
            report.finish()
        }
    }
}
