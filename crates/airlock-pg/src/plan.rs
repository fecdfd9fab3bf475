//! `airlock plan`: the GO/NO-GO. Every check `apply` makes, in the order `apply` makes
//! them, each a row with its evidence; the verdict and exit code are those of the
//! first row that does not pass, which is what `apply` would return for the same
//! inputs. `apply` on a terminal runs the same checks before it asks for the database
//! name, so the operator is never asked to confirm a run that would be refused.
//!
//! Invariant: plan changes nothing. Its one transaction is always rolled back, it never
//! takes the deploy lock, and it never writes this host's memory of the ledger head.

use super::apply::{self, gates_for, next_tiers, planned, Options, PlannedTier, Session};
use super::drift;
use super::gate::{self, GateReport, Harness, ProbeReport};
use super::gate_grants::{self, GateGrants};
use super::{ledger, remembered, sql_err, DbError};
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
    /// Connection, name guard, server version, session settings.
    Database,
    /// The ledger is airlock's own and its hash chain holds.
    Ledger,
    /// The ledger still holds the head this host remembers (anti-rollback).
    RememberedHead,
    /// Whether another session holds the deploy lock now (apply waits up to
    /// `--lock-timeout` for it, then refuses with exit 6). Shown, never decisive: who
    /// holds it by the time apply runs cannot be known in advance.
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
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum CheckVerdict {
    Ok,
    Blocked,
    Fail,
    /// Not checked: an earlier row decided the outcome, or it does not apply.
    Skipped,
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

    fn skipped(check: CheckName, why: &str) -> Check {
        Check {
            check,
            verdict: CheckVerdict::Skipped,
            exit_code: Exit::Success,
            evidence: why.into(),
            hint: None,
        }
    }

    pub fn passed(&self) -> bool {
        matches!(self.verdict, CheckVerdict::Ok | CheckVerdict::Skipped)
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
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct PlanReport {
    pub bundle_id: String,
    pub bundle_name: String,
    pub bundle_version: String,
    pub database: String,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gates: Option<GateReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preflight: Option<ProbeReport>,
    /// Continuation: the fingerprint the previous apply left, and whether it still holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drift: Option<String>,
    /// The grants the gate role needs for this bundle's gates and probes (derived by
    /// the server from their SQL), instead of `pg_read_all_data`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gate_grants: Option<GateGrants>,
    /// When the gates are BLOCKED: the leading tiers whose gates are open, which
    /// `apply --through LAST` can run now.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runnable_now: Vec<String>,
    /// The role the tier and rollback files run as, once resolved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bundle_role: Option<super::bundle_role::BundleRole>,
    /// Statements of the tier and rollback files that change the cluster beyond the
    /// target database (roles, database settings, tablespaces, subscriptions…):
    /// `rehearse` refuses such a bundle, since a clone cannot isolate them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reaches_beyond: Vec<airlock_sql::Reach>,
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
            verdict: PlanVerdict::Go,
            exit_code: Exit::Success,
            checks,
            already_applied: vec![],
            tiers: vec![],
            refusal: None,
            gates: None,
            preflight: None,
            drift: None,
            gate_grants: None,
            runnable_now: vec![],
            bundle_role: None,
            reaches_beyond: vec![],
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

    fn push(&mut self, c: Check) {
        self.checks.push(c);
    }

    /// Every check not reached is SKIPPED, named, so the table always shows them all.
    fn skip_rest(&mut self, after: &str) {
        const ORDER: [CheckName; 10] = [
            CheckName::Database,
            CheckName::Ledger,
            CheckName::RememberedHead,
            CheckName::DeployLock,
            CheckName::LedgerState,
            CheckName::RequiredParams,
            CheckName::GateRole,
            CheckName::Gates,
            CheckName::Preflight,
            CheckName::BundleRole,
        ];
        let why = format!("not checked: {after}");
        for name in ORDER {
            let seen = self.checks.iter().any(|c| {
                c.check == name || (name == CheckName::Preflight && c.check == CheckName::Drift)
            });
            if !seen {
                self.checks.push(Check::skipped(name, &why));
            }
        }
    }

    /// Verdict and exit code: the first check, in apply's order, that did not pass.
    fn finish(mut self) -> PlanReport {
        match self.checks.iter().find(|c| !c.passed()) {
            None => {
                self.verdict = PlanVerdict::Go;
                self.exit_code = Exit::Success;
            }
            Some(c) => {
                self.exit_code = c.exit_code;
                self.verdict = if c.verdict == CheckVerdict::Blocked {
                    PlanVerdict::Blocked
                } else {
                    PlanVerdict::NoGo
                };
            }
        }
        self
    }

    pub fn first_failure(&self) -> Option<&Check> {
        self.checks.iter().find(|c| !c.passed())
    }
}

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
    let mut session = match apply::open(opts.conn, &opts.expected_db, m, &opts.statement_timeout) {
        Ok(s) => s,
        Err(e) => {
            report.push(Check::failed(CheckName::Database, &e));
            report.skip_rest("apply stops at the connection");
            return report.finish();
        }
    };
    plan_on(&mut session, vb, opts, report).0
}

/// The checks on an open session; also what `apply` runs before it asks for the
/// database name. Returns the first error as `apply` would have raised it.
pub fn plan_on(
    session: &mut Session,
    vb: &VerifiedBundle,
    opts: &Options<'_>,
    mut report: PlanReport,
) -> (PlanReport, Option<DbError>) {
    let m = vb.manifest();
    report.database = session.info.database.clone();
    report.push(Check::ok(
        CheckName::Database,
        format!(
            "connected to {} (server_version_num {}) as {}{}",
            session.info.database,
            session.info.server_version_num,
            session.info.session_user,
            match session.facts.overridden.as_str() {
                "" => String::new(),
                names => format!("; database/role settings not inherited (the server's own values instead): {names}"),
            }
        ),
    ));
    let facts = session.facts.clone();
    let pins = session.pins(m, opts);
    let mut tx = match session.client.transaction() {
        Ok(tx) => tx,
        Err(e) => {
            let e = sql_err("BEGIN", &e);
            report.push(Check::failed(CheckName::Ledger, &e));
            report.skip_rest("apply stops above");
            return (report.finish(), Some(e));
        }
    };
    let first_error = checks_in(&mut tx, vb, opts, &facts, pins, &mut report);
    let _ = tx.rollback();
    (report.finish(), first_error)
}

/// Each check in apply's order. Returns the first failure as apply would raise it.
fn checks_in(
    tx: &mut Transaction<'_>,
    vb: &VerifiedBundle,
    opts: &Options<'_>,
    facts: &super::session::SessionFacts,
    pins: super::session::BundlePins,
    report: &mut PlanReport,
) -> Option<DbError> {
    let m = vb.manifest();
    let mut first: Option<DbError> = None;
    let mut note = |report: &mut PlanReport, name: CheckName, e: DbError| {
        report.push(Check::failed(name, &e));
        if first.is_none() {
            first = Some(e);
        }
    };
    // The ledger: airlock's own, chain intact.
    let rows = match ledger::read_chained(tx) {
        Ok(rows) => {
            report.push(Check::ok(
                CheckName::Ledger,
                match rows.last() {
                    None => "no ledger yet: this would be the database's first apply".into(),
                    Some(last) => format!(
                        "{} row(s), airlock's own, hash chain intact; head seq {} ({})",
                        rows.len(),
                        last.seq,
                        airlock_base::text::short(&last.row_hash)
                    ),
                },
            ));
            rows
        }
        Err(e) => {
            note(report, CheckName::Ledger, e);
            report.skip_rest("apply refuses an untrusted or damaged ledger");
            return first;
        }
    };
    match remembered::check(&facts.system_identifier, &facts.database, &rows) {
        Ok(Some(head)) => report.push(Check::ok(
            CheckName::RememberedHead,
            format!(
                "this host saw seq {} ({}); the ledger still holds it",
                head.seq,
                airlock_base::text::short(&head.row_hash)
            ),
        )),
        Ok(None) => report.push(Check::ok(
            CheckName::RememberedHead,
            "this host remembers no head for this database yet (its first apply here)",
        )),
        Err(e) => {
            note(report, CheckName::RememberedHead, e);
            report.skip_rest("apply refuses a ledger that lost history");
            return first;
        }
    }
    match ledger::lock_holders(tx) {
        Ok(holders) if holders.is_empty() => report.push(Check::ok(
            CheckName::DeployLock,
            "free: no other session holds it now",
        )),
        Ok(holders) => report.push(Check::ok(
            CheckName::DeployLock,
            format!(
                "held now by {}: apply waits up to --lock-timeout for it, then refuses (exit 6)",
                holders.join("; ")
            ),
        )),
        Err(e) => note(report, CheckName::DeployLock, e),
    }
    let st = ledger::state_of(&rows, vb.id());
    report.already_applied = st.applied.clone();
    let idx = match next_tiers(m, vb.id(), &rows, opts.through.as_deref()) {
        Ok((_, idx)) => idx,
        Err(e) => {
            if let DbError::Refused(r) = &e {
                report.refusal = Some(r.clone());
            }
            note(report, CheckName::LedgerState, e);
            report.skip_rest("apply refuses at the ledger");
            return first;
        }
    };
    let n = m.tier.len();
    report.tiers = planned(vb, &idx);
    let names = |idx: &[usize]| {
        idx.iter()
            .map(|&i| m.tier[i].name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    report.push(Check::ok(
        CheckName::LedgerState,
        format!(
            "{}; apply would run {} of {n} tier(s): {}",
            if st.applied.is_empty() {
                format!("{} is not applied here", m.bundle.name)
            } else {
                format!(
                    "applied so far: {} ({} of {n})",
                    st.applied.join(", "),
                    st.applied.len()
                )
            },
            idx.len(),
            names(&idx)
        ),
    ));
    match apply::check_required(vb, &idx, &opts.params) {
        Ok(()) => {
            let gated = idx.iter().any(|&i| !m.tier[i].gates.is_empty());
            let required: Vec<&str> = m
                .params
                .iter()
                .filter(|(_, p)| p.required)
                .map(|(k, _)| k.as_str())
                .collect();
            report.push(Check::ok(
                CheckName::RequiredParams,
                if required.is_empty() {
                    "the bundle requires no param".to_string()
                } else if gated {
                    format!("given: {}", required.join(", "))
                } else {
                    format!(
                        "not needed: no gated tier runs (required for the gated tiers: {})",
                        required.join(", ")
                    )
                },
            ))
        }
        Err(e) => note(report, CheckName::RequiredParams, e),
    }
    let gates = match gates_for(vb, &idx) {
        Ok(g) => g,
        Err(e) => {
            note(report, CheckName::Gates, e);
            report.skip_rest("the bundle's gate files could not be read");
            return first;
        }
    };
    let first_apply = st.applied.is_empty();
    let needs_role = (!gates.is_empty() && !opts.skip_gates)
        || (first_apply && m.preflight.is_some())
        || (idx.last() == Some(&(n - 1)) && m.verify.is_some());
    let pins_for_grants = pins.clone();
    let harness = if needs_role {
        match gate::resolve_role(tx, opts.gate_role.as_deref()) {
            Ok(role) => {
                report.push(Check::ok(
                    CheckName::GateRole,
                    match &role {
                        Some(r) => format!("gates and probes run as role {r}"),
                        None => {
                            "gates and probes run as airlock's own role (no outside powers)".into()
                        }
                    },
                ));
                Some(Harness { pins, role })
            }
            Err(e) => {
                note(report, CheckName::GateRole, e);
                None
            }
        }
    } else {
        report.push(Check::ok(
            CheckName::GateRole,
            "not needed: no gate or probe runs for these tiers",
        ));
        Some(Harness { pins, role: None })
    };
    if needs_role {
        grants_in(tx, vb, opts, &pins_for_grants, harness.as_ref(), report);
    }
    let Some(harness) = harness else {
        report.skip_rest("gates and probes need a role without outside powers");
        return first;
    };
    if let Err(e) = apply::set_params(tx, &opts.params) {
        note(report, CheckName::Gates, e);
        report.skip_rest("the params could not be set");
        return first;
    }
    if gates.is_empty() || opts.skip_gates {
        report.push(Check::ok(
            CheckName::Gates,
            "no gate guards the tiers about to run",
        ));
        report.gates = Some(GateReport::from_results(vec![]));
    } else {
        match gate::run_gates(tx, &gates, &harness) {
            Ok(g) => {
                if g.ready() {
                    report.push(Check::ok(
                        CheckName::Gates,
                        format!(
                            "READY: {}",
                            g.gates
                                .iter()
                                .map(|r| r.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                } else {
                    let open = |name: &String| g.gates.iter().any(|r| &r.name == name && r.ready);
                    report.runnable_now = idx
                        .iter()
                        .map(|&i| &m.tier[i])
                        .take_while(|t| t.gates.iter().all(open))
                        .map(|t| t.name.clone())
                        .collect();
                    note(
                        report,
                        CheckName::Gates,
                        DbError::Blocked(format!("{}; nothing was changed", g.blocked_summary())),
                    );
                }
                report.gates = Some(g);
            }
            Err(e) => note(report, CheckName::Gates, e),
        }
    }
    if first_apply {
        match &m.preflight {
            None => report.push(Check::ok(
                CheckName::Preflight,
                "the bundle has no preflight probe",
            )),
            Some(p) => {
                let probe = vb
                    .sql(&p.file)
                    .map_err(|e| DbError::State(e.to_string()))
                    .and_then(|sql| gate::run_probe(tx, &p.file, sql, &p.expect, &harness));
                match probe {
                    Ok(pr) if pr.matches => {
                        report.push(Check::ok(
                            CheckName::Preflight,
                            format!("{}: all {} expectation(s) hold", p.file, p.expect.len()),
                        ));
                        report.preflight = Some(pr);
                    }
                    Ok(pr) => {
                        note(
                            report,
                            CheckName::Preflight,
                            DbError::State(format!(
                                "preflight: the target is not where the bundle expects it ({}); nothing was changed",
                                pr.describe()
                            )),
                        );
                        report.preflight = Some(pr);
                    }
                    Err(e) => note(report, CheckName::Preflight, e),
                }
            }
        }
    } else if let Some(last) = &st.last_apply {
        // Judged as apply judges it, on the description this host keeps (read here,
        // never written: nothing commits).
        let mut tracker = drift::tracker(facts, opts);
        match tracker.fingerprint(tx) {
            Ok(fp) => {
                let j = drift::judge(&fp, last, opts.allow_drift);
                report.drift = Some(j.summary);
                match j.refusal {
                    None => report.push(Check::ok(CheckName::Drift, j.evidence)),
                    Some(e) => note(report, CheckName::Drift, e),
                }
            }
            Err(e) => note(report, CheckName::Drift, e),
        }
    }
    match super::bundle_role::resolve(tx, &m.target) {
        Ok(r) => {
            match super::bundle_role::guard(tx, &r) {
                Ok(()) => report.push(Check::ok(CheckName::BundleRole, r.describe_guarded())),
                Err(e) => note(report, CheckName::BundleRole, e),
            }
            report.bundle_role = Some(r);
        }
        Err(e) => note(report, CheckName::BundleRole, e),
    }
    first
}

/// The gate role's grants, derived from the bundle's gates and probes; when the role
/// is missing or cannot be used, they join the GateRole check's setup hint.
fn grants_in(
    tx: &mut Transaction<'_>,
    vb: &VerifiedBundle,
    opts: &Options<'_>,
    pins: &super::session::BundlePins,
    harness: Option<&Harness>,
    report: &mut PlanReport,
) {
    let role = harness
        .and_then(|h| h.role.clone())
        .or_else(|| opts.gate_role.clone())
        .unwrap_or_else(|| gate::DEFAULT_GATE_ROLE.to_string());
    let derived = gate_grants::bundle_queries(vb)
        .and_then(|queries| gate_grants::derive(tx, pins, &role, &queries));
    let grants = match derived {
        Ok(g) => g,
        Err(e) => GateGrants {
            role,
            statements: vec![],
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
