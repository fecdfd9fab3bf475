//! The checks of a deploy as named rows with evidence: `plan`'s report, and the order
//! every deploy checks in ([`CheckName`]).
//!
//! Invariant: the rows appear in [`CheckName`]'s order; the verdict and exit code are
//! those of the first row that did not pass. The serialized names and their order are
//! the `plan --json` schema.

use crate::gates::gate::{self, GateReport, ProbeReport};
use crate::gates::gate_grants::{self, GateGrants};
use crate::ledger::receipt::PlannedTier;
use crate::session::hermetic::BundlePins;
use crate::DbError;
use airlock_base::exit::Exit;
use airlock_bundle::verified::VerifiedBundle;
use postgres::Transaction;
use schemars::JsonSchema;
use serde::Serialize;

/// One thing `apply` checks, in the order it checks them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CheckName {
    /// Signatures, threshold, key windows, expiry, hashes (before anything else).
    Signatures,
    /// Every `--param` is declared, given once and matches its pattern.
    Params,
    /// The receipt would count: signed with an operator key of the trust store when
    /// it has `require_signed_receipts` (`--sign-receipt`, judged before connecting).
    ReceiptPolicy,
    /// Connection, name guard, server version, session settings.
    Database,
    /// The ledger is airlock's own and its hash chain holds.
    Ledger,
    /// The ledger still holds the head this host remembers (anti-rollback).
    RememberedHead,
    /// Whether another session holds the deploy lock now (apply waits up to
    /// `--lock-timeout` for it, then refuses with exit 6). A deploy transaction's hold
    /// is shown, never decisive: it ends with that transaction. An airlock run running
    /// online steps (between its transactions, a killed apply's server session still
    /// building included) fails it with exit 6, naming the session: apply would wait
    /// for that run, and the schema it changes is judged once it has ended.
    DeployLock,
    /// What the ledger allows: the next tiers, or a refusal (already applied,
    /// downgrade, equivocation, `--through` behind the applied tiers).
    LedgerState,
    /// Required params, when a gated tier is about to run.
    RequiredParams,
    /// The role gates and probes run as has no powers outside the database.
    GateRole,
    /// The gates of the tiers about to run.
    Gates,
    /// First apply: the preflight probe equals its expectation.
    Preflight,
    /// Continuation: the schema is what the previous apply left.
    Drift,
    /// The role bundle SQL runs as: it exists, airlock's login role can become it,
    /// and no code owned by a non-superuser sits where a superuser's SQL would fire it.
    BundleRole,
    /// `plan` only: the tier statements the data there now would make fail (a
    /// duplicate under a new unique key, a NULL under a new NOT NULL, a row a new
    /// CHECK or foreign key rejects, a value a new column type cannot hold, a DROP
    /// others depend on), asked read-only within `--predict-timeout`.
    PredictedFailures,
    /// `plan` only: what the release destroys of what is there now, held against what
    /// its tiers declare (`[[tier]] destroys`): WARN for undeclared destruction.
    Destroys,
}

/// The checks a deploy makes against the database, in order.
pub(crate) const CHECKS: [CheckName; 11] = [
    CheckName::Database,
    CheckName::Ledger,
    CheckName::RememberedHead,
    CheckName::DeployLock,
    CheckName::LedgerState,
    CheckName::RequiredParams,
    CheckName::GateRole,
    CheckName::Gates,
    CheckName::Preflight,
    CheckName::Drift,
    CheckName::BundleRole,
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum CheckVerdict {
    Ok,
    Blocked,
    Fail,
    /// Passed, with something the operator must read (a prediction cut short).
    Warn,
    /// Not checked: an earlier row decided the outcome, or it does not apply.
    Skipped,
    /// Could not be decided because of code a database role attached (exit 8): not a
    /// pass; a rehearsal, or the code removed, decides it.
    #[serde(rename = "CANNOT-TELL")]
    CannotTell,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Check {
    pub check: CheckName,
    pub verdict: CheckVerdict,
    /// What `apply` would exit with at this check (0 when it passes or was skipped).
    pub exit_code: Exit,
    pub evidence: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Check {
    pub fn ok(check: CheckName, evidence: impl Into<String>) -> Check {
        Check {
            check,
            verdict: CheckVerdict::Ok,
            exit_code: Exit::Success,
            evidence: evidence.into(),
            hint: None,
        }
    }

    pub fn failed(check: CheckName, e: &DbError) -> Check {
        let code = e.exit_code();
        Check {
            check,
            verdict: if code == Exit::Blocked {
                CheckVerdict::Blocked
            } else {
                CheckVerdict::Fail
            },
            exit_code: code,
            evidence: e.to_string(),
            hint: e.hint(),
        }
    }

    pub fn failed_with(
        check: CheckName,
        code: Exit,
        evidence: String,
        hint: Option<String>,
    ) -> Check {
        Check {
            check,
            verdict: CheckVerdict::Fail,
            exit_code: code,
            evidence,
            hint,
        }
    }

    pub(crate) fn skipped(check: CheckName, why: &str) -> Check {
        Check {
            check,
            verdict: CheckVerdict::Skipped,
            exit_code: Exit::Success,
            evidence: why.into(),
            hint: None,
        }
    }

    pub fn passed(&self) -> bool {
        matches!(
            self.verdict,
            CheckVerdict::Ok | CheckVerdict::Skipped | CheckVerdict::Warn
        )
    }
}

/// The one verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub enum PlanVerdict {
    /// Every check passed: `apply` would run the tiers listed.
    #[serde(rename = "GO")]
    Go,
    /// A gate is BLOCKED (exit 3); `runnable_now` names what `--through` can run now.
    #[serde(rename = "BLOCKED")]
    Blocked,
    /// `apply` would refuse or fail before changing anything (exit 1, 2, 4, 5 or 6).
    #[serde(rename = "NO-GO")]
    NoGo,
    /// Nothing stops apply, but code a database role attached stops airlock from
    /// predicting a statement (exit 8): `airlock rehearse` runs it on a clone, or the
    /// code is removed. Never GO.
    #[serde(rename = "CANNOT-TELL")]
    CannotTell,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct PlanReport {
    pub bundle_id: String,
    pub bundle_name: String,
    pub bundle_version: String,
    pub database: String,
    /// A bundle for a fleet: its `[target] database` (names and patterns); absent for a
    /// bundle for one database.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_database: Option<airlock_bundle::target_db::TargetDatabase>,
    /// A bundle for a fleet: the name or pattern the connected database matched (the
    /// name guard passed by it); absent before the guard passed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_match: Option<String>,
    /// GO (exit 0), BLOCKED (exit 3) or NO-GO: the first check that did not pass.
    pub verdict: PlanVerdict,
    /// What `apply` would exit with for the same inputs.
    pub exit_code: Exit,
    /// Every check `apply` makes, in its order, with the evidence.
    pub checks: Vec<Check>,
    pub already_applied: Vec<String>,
    pub tiers: Vec<PlannedTier>,
    /// Set when apply would refuse (exit 6), with the reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
    /// Which refusal, when apply would refuse at the ledger (`already-applied` and
    /// `through-applied` mean nothing is left to do).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refusal_kind: Option<crate::refusal::RefusalKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gates: Option<GateReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preflight: Option<ProbeReport>,
    /// Continuation: the fingerprint the previous apply left, and whether it still holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drift: Option<String>,
    /// Continuation with drift: the objects that changed since the previous apply
    /// (kind, name, added/dropped/changed; the first 50 and how many in all), or why
    /// this host cannot name them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drift_changes: Option<crate::schema_change::DriftChanges>,
    /// The grants the gate role needs for this bundle's gates and probes (derived by
    /// the server from their SQL), instead of `pg_read_all_data`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gate_grants: Option<GateGrants>,
    /// When the gates are BLOCKED and nothing else stops apply: the leading tiers whose
    /// gates are open, which `apply --through LAST` can run now. Empty when any check
    /// other than the gates (and params only gated tiers need) does not pass.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runnable_now: Vec<String>,
    /// The role the tier and rollback files run as, once resolved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bundle_role: Option<crate::deploy::bundle_role::BundleRole>,
    /// Statements of the tier and rollback files that change the cluster beyond the
    /// target database (roles, database settings, tablespaces, subscriptions…):
    /// `rehearse` refuses such a bundle, since a clone cannot isolate them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reaches_beyond: Vec<airlock_sql::Reach>,
    /// Which existing relations each tier statement locks, in which mode, their size,
    /// and the whole-table work done under a lock that blocks writes (`plan` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locks: Option<crate::deploy::lock_plan::LockPlan>,
    /// `plan` only: what the data there now says about the tier statements it decides,
    /// and what the release destroys (rows and bytes), read before anything runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predictions: Option<crate::predict::Predictions>,
}

impl PlanReport {
    /// What is about to happen, before anything was asked of the database.
    pub fn new(vb: &VerifiedBundle, database: &str, checks: Vec<Check>) -> PlanReport {
        let m = vb.manifest();
        PlanReport {
            bundle_id: vb.id().into(),
            bundle_name: m.bundle.name.clone(),
            bundle_version: m.bundle.version.clone(),
            database: database.into(),
            target_database: m.target.database.fleet(),
            target_match: None,
            verdict: PlanVerdict::Go,
            exit_code: Exit::Success,
            checks,
            already_applied: vec![],
            tiers: vec![],
            refusal: None,
            refusal_kind: None,
            gates: None,
            preflight: None,
            drift: None,
            drift_changes: None,
            gate_grants: None,
            runnable_now: vec![],
            bundle_role: None,
            reaches_beyond: vec![],
            locks: None,
            predictions: None,
        }
    }

    /// The confirmation preview: the tiers about to run.
    pub fn preview(
        vb: &VerifiedBundle,
        database: &str,
        already_applied: Vec<String>,
        tiers: Vec<PlannedTier>,
    ) -> PlanReport {
        let mut p = PlanReport::new(vb, database, vec![]);
        p.already_applied = already_applied;
        p.tiers = tiers;
        p
    }

    pub(crate) fn push(&mut self, c: Check) {
        self.checks.push(c);
    }

    /// Every check not reached is SKIPPED, named, so the table always shows them all.
    pub(crate) fn skip_rest(&mut self, after: &str) {
        let why = format!("not checked: {after}");
        // Preflight and Drift are one row: whichever applies (Preflight when unknown).
        for name in CHECKS.into_iter().filter(|c| *c != CheckName::Drift) {
            let seen = self.checks.iter().any(|c| {
                c.check == name || (name == CheckName::Preflight && c.check == CheckName::Drift)
            });
            if !seen {
                self.checks.push(Check::skipped(name, &why));
            }
        }
    }

    /// Whether the gates are all that stop `apply` now ([`only_gates_stop`]).
    pub fn only_gates_stop(&self) -> bool {
        only_gates_stop(&self.checks)
    }

    /// Verdict and exit code: the first check, in apply's order, that did not pass.
    /// `runnable_now` stands only when the gates are all that stop apply
    /// ([`PlanReport::only_gates_stop`]).
    pub fn finish(mut self) -> PlanReport {
        if !self.only_gates_stop() {
            self.runnable_now.clear();
        }
        match self.checks.iter().find(|c| !c.passed()) {
            None => {
                self.verdict = PlanVerdict::Go;
                self.exit_code = Exit::Success;
            }
            Some(c) => {
                self.exit_code = c.exit_code;
                self.verdict = match c.verdict {
                    CheckVerdict::Blocked => PlanVerdict::Blocked,
                    CheckVerdict::CannotTell => PlanVerdict::CannotTell,
                    _ => PlanVerdict::NoGo,
                };
            }
        }
        self
    }

    pub fn first_failure(&self) -> Option<&Check> {
        self.checks.iter().find(|c| !c.passed())
    }
}

/// Whether the gates are all that stop `apply` among `checks`: every check that did not
/// pass is Gates (BLOCKED) or RequiredParams (which the tiers in `runnable_now` do not
/// need: a gated tier is named only with its params). Only then can `apply --through`
/// run the tiers before the shut gates; any other failure (the ledger, the deploy
/// lock, the preflight, drift, the bundle role, a predicted failure…) stops those
/// tiers too.
fn only_gates_stop(checks: &[Check]) -> bool {
    checks
        .iter()
        .all(|c| c.passed() || matches!(c.check, CheckName::Gates | CheckName::RequiredParams))
}

/// The gate role's grants, derived from the bundle's gates and probes; when the role
/// is missing or cannot be used, they join the GateRole check's setup hint.
pub(crate) fn grants_in(
    tx: &mut Transaction<'_>,
    vb: &VerifiedBundle,
    gate_role: Option<&str>,
    pins: &BundlePins,
    resolved: Option<Option<String>>,
    report: &mut PlanReport,
) {
    let role = resolved
        .flatten()
        .or_else(|| gate_role.map(str::to_string))
        .unwrap_or_else(|| gate::DEFAULT_GATE_ROLE.to_string());
    let derived = gate_grants::bundle_queries(vb)
        .and_then(|queries| gate_grants::derive(tx, pins, &role, &queries));
    let grants = match derived {
        Ok(g) => g,
        Err(e) => GateGrants {
            role,
            statements: vec![],
            in_place: vec![],
            after_release: vec![],
            unresolved: vec![gate_grants::Unresolved {
                file: "(all)".into(),
                reason: e.to_string(),
            }],
            not_derived: vec![],
        },
    };
    if let Some(check) = report
        .checks
        .iter_mut()
        .rev()
        .find(|c| c.check == CheckName::GateRole && !c.passed())
    {
        if let Some(hint) = &mut check.hint {
            hint.push_str(&format!(
                "; this bundle's gates and probes need: {}",
                grants.lines().join(" ")
            ));
        }
    }
    report.gate_grants = Some(grants);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(check: CheckName, e: DbError) -> Check {
        Check::failed(check, &e)
    }

    #[test]
    fn only_shut_gates_leave_tiers_to_run_through_them() {
        let blocked = || failed(CheckName::Gates, DbError::Blocked("g: shut".into()));
        let ok = |c| Check::ok(c, "");
        // Shut gates alone, or with params only gated tiers need.
        assert!(only_gates_stop(&[ok(CheckName::Ledger), blocked()]));
        let params = failed(CheckName::RequiredParams, DbError::Usage("--param".into()));
        assert!(only_gates_stop(&[params, blocked()]));
        assert!(only_gates_stop(&[
            blocked(),
            Check::skipped(CheckName::Drift, "")
        ]));
        // Anything else that fails stops the tiers before the gates too.
        for c in [
            CheckName::DeployLock,
            CheckName::Preflight,
            CheckName::Drift,
            CheckName::BundleRole,
            CheckName::GateRole,
            CheckName::PredictedFailures,
            CheckName::ReceiptPolicy,
        ] {
            let other = failed(c, DbError::State("no".into()));
            assert!(!only_gates_stop(&[blocked(), other]), "{c:?}");
        }
    }
}
