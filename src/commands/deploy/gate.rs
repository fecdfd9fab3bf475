//! `airlock gate` and `airlock plan`.

use crate::cli::{GateArgs, PlanArgs};
use crate::commands::deploy::db_common::prepare;
use crate::commands::deploy::plan_predict::Whose;
use crate::db::apply::{self, Options, PlanReport};
use crate::db::gate::{GateReport, ProbeReport};
use crate::db::plan::{Check, CheckName, PlanVerdict};
use crate::db::wait::{PollChange, WaitEnd, WaitReport, WaitSpec};
use crate::error::Result;
use crate::report::{one_line, short, table, Outcome, Report};
use serde::Serialize;

#[derive(Serialize, schemars::JsonSchema)]
pub struct GateOutcome {
    pub bundle_id: String,
    pub database: String,
    #[serde(flatten)]
    pub report: GateReport,
    /// With --wait: how the wait ended and every change of verdict seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait: Option<WaitReport>,
}

/// `--wait`: poll with `poll_once`, telling the operator each change of verdict.
pub fn wait_for_ready(
    args: &crate::cli::WaitArgs,
    poll_once: impl FnMut() -> std::result::Result<GateReport, crate::db::DbError>,
) -> Result<(GateReport, WaitReport)> {
    let spec = WaitSpec {
        poll_interval: args.poll_interval,
        timeout: args.wait_timeout,
        heartbeat: (!args.heartbeat.is_zero()).then_some(args.heartbeat),
    };
    let started = std::time::Instant::now();
    crate::commands::note(&format!(
        "waiting for the gate: a read-only poll every {}{}; Ctrl-C stops, nothing changed",
        human_duration(args.poll_interval),
        args.wait_timeout
            .map(|t| format!(", for at most {}", human_duration(t)))
            .unwrap_or_default()
    ));
    let on_change = |c: &PollChange| {
        let what = if c.still {
            format!(
                "still {} after {}",
                c.verdict,
                human_duration(started.elapsed())
            )
        } else {
            c.verdict.clone()
        };
        if c.reason.is_empty() {
            crate::commands::note(&format!("{} poll {}: {what}", c.at, c.poll));
        } else {
            crate::commands::note(&format!("{} poll {}: {what}: {}", c.at, c.poll, c.reason));
        }
    };
    let (report, history) = crate::db::wait::wait(&spec, poll_once, &on_change)?;
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let waited = human_duration(std::time::Duration::from_millis(history.waited_ms));
    match history.ended {
        WaitEnd::Ready => {}
        WaitEnd::Timeout => crate::commands::note(&format!(
            "{now} still BLOCKED after {waited} ({} poll(s)); nothing was changed",
            history.polls
        )),
        WaitEnd::Interrupted => crate::commands::note(&format!(
            "{now} stopped waiting (Ctrl-C) after {waited} ({} poll(s)); nothing was changed",
            history.polls
        )),
    }
    Ok((report, history))
}

/// `750ms`, `5s`, `5.0s` below a minute as measured, `2m 5s`, `1h 20m`.
pub fn human_duration(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    let s = ms / 1000;
    match ms {
        ms if ms < 1000 => format!("{ms}ms"),
        ms if ms < 60_000 && ms % 1000 == 0 => format!("{s}s"),
        ms if ms < 60_000 => format!("{:.1}s", ms as f64 / 1000.0),
        _ if s < 3600 && s.is_multiple_of(60) => format!("{}m", s / 60),
        _ if s < 3600 => format!("{}m {}s", s / 60, s % 60),
        _ if (s % 3600) / 60 == 0 => format!("{}h", s / 3600),
        _ => format!("{}h {}m", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::human_duration;
    use std::time::Duration;

    #[test]
    fn durations_read_as_an_operator_reads_them() {
        let ms = Duration::from_millis;
        assert_eq!(human_duration(ms(750)), "750ms");
        assert_eq!(human_duration(ms(5000)), "5s");
        assert_eq!(human_duration(ms(5031)), "5.0s");
        assert_eq!(human_duration(ms(60_000)), "1m");
        assert_eq!(human_duration(ms(125_400)), "2m 5s");
        assert_eq!(human_duration(ms(3_600_000)), "1h");
        assert_eq!(human_duration(ms(4_830_000)), "1h 20m");
    }
}

/// The gates, and the bundle's quorum of signed approvals as a row of its own (READY
/// needs every row).
pub fn gate_table(r: &GateReport) -> String {
    let verdict = |ready: bool| if ready { "READY" } else { "BLOCKED" }.to_string();
    let mut rows: Vec<Vec<String>> = r
        .gates
        .iter()
        .map(|g| vec![g.name.clone(), verdict(g.ready), g.reason.clone()])
        .collect();
    if let Some(q) = &r.ratification {
        rows.push(vec![QUORUM_ROW.into(), verdict(q.met), q.summary()]);
    }
    table(&["gate", "verdict", "reason"], &rows)
}

/// The gate table's row for `[ratification]`: the signed approvals (`--approval` files and the
/// bundle's approvals table).
pub const QUORUM_ROW: &str = "(signed approvals)";

pub fn probe_table(p: &ProbeReport) -> String {
    let mut rows: Vec<Vec<String>> = p
        .expected
        .iter()
        .map(|(k, v)| {
            let actual = p
                .values
                .get(k)
                .cloned()
                .unwrap_or_else(|| "(no row)".into());
            vec![
                k.clone(),
                v.clone(),
                actual.clone(),
                if &actual == v {
                    "ok".into()
                } else {
                    "MISMATCH".into()
                },
            ]
        })
        .collect();
    // Keys the probe returned that nothing expects (a misspelt key shows here).
    rows.extend(
        p.values
            .iter()
            .filter(|(k, _)| !p.expected.contains_key(*k))
            .map(|(k, v)| vec![k.clone(), "(not expected)".into(), v.clone(), String::new()]),
    );
    table(&["key", "expected", "actual", ""], &rows)
}

impl Report for GateOutcome {
    fn human(&self) -> String {
        let quorum = self
            .report
            .ratification
            .as_ref()
            .map(|q| format!(" and {} signed approval(s) asked", q.threshold))
            .unwrap_or_default();
        let mut s = format!(
            "{}: {} gate(s){quorum} on database {} (bundle {})\n\n{}",
            crate::style::verdict(&self.report.verdict),
            self.report.gates.len(),
            self.database,
            short(&self.bundle_id),
            gate_table(&self.report)
        );
        if let Some(w) = &self.wait {
            s.push_str(&format!(
                "\n\nwaited {} over {} poll(s): {}",
                human_duration(std::time::Duration::from_millis(w.waited_ms)),
                w.polls,
                match w.ended {
                    WaitEnd::Ready => "READY",
                    WaitEnd::Timeout => "--wait-timeout reached, nothing was changed",
                    WaitEnd::Interrupted => "stopped by Ctrl-C, nothing was changed",
                }
            ));
        }
        s
    }
    /// Under `--quiet`, a BLOCKED gate still says what blocks it.
    fn quiet_line(&self) -> Option<String> {
        if self.exit_code().is_success() {
            return None;
        }
        let mut why: Vec<String> = self
            .report
            .gates
            .iter()
            .filter(|g| !g.ready)
            .map(|g| format!("gate {}: {}", g.name, one_line(&g.reason)))
            .collect();
        if let Some(q) = self.report.ratification.as_ref().filter(|q| !q.met) {
            why.push(format!(
                "{} of {} signed approval(s)",
                q.counted, q.threshold
            ));
        }
        if let Some(w) = self.wait.as_ref().filter(|w| w.ended != WaitEnd::Ready) {
            why.push(match w.ended {
                WaitEnd::Timeout => "--wait-timeout reached".into(),
                _ => "stopped by Ctrl-C".into(),
            });
        }
        Some(format!("BLOCKED: {}", why.join("; ")))
    }
    fn exit_code(&self) -> crate::exit::Exit {
        if self.report.ready() && self.wait.as_ref().is_none_or(|w| w.ended == WaitEnd::Ready) {
            crate::exit::Exit::Success
        } else {
            crate::exit::Exit::Blocked
        }
    }
}

fn options<'a>(
    conn: &'a crate::db::conn::ConnSpec,
    vb: &crate::verified::VerifiedBundle,
    params: std::collections::BTreeMap<String, String>,
    statement_timeout: &str,
) -> Options<'a> {
    Options {
        conn,
        expected_db: vb.manifest().target.database.clone(),
        params,
        through: None,
        lock_timeout: "10s".into(),
        lock_retries: 3,
        statement_timeout: statement_timeout.into(),
        allow_drift: false,
        resume: false,
        gate_role: None,
        // As apply: plan reads the schema description this host keeps, so that both
        // judge drift on the same description (nothing here writes it).
        remember: true,
        approvals: None,
        skip_gates: false,
        confirm: None,
        observer: None,
        deliver: None,
        vouch: None,
    }
}

pub fn gate(args: GateArgs) -> Result<Outcome> {
    let (vb, conn, params) = prepare(&args.bundle, &args.trust, &args.db, &args.params)?;
    let approvals = crate::commands::deploy::db_common::approvals(&args.approvals, &args.trust)?;
    let mut o = options(&conn, &vb, params, &args.db.statement_timeout);
    o.gate_role = args.gate.gate_role.clone();
    o.approvals = Some(&approvals);
    let (report, wait) = if args.wait.wait {
        let (r, w) = wait_for_ready(&args.wait, || apply::gate(&vb, &o))?;
        (r, Some(w))
    } else {
        (apply::gate(&vb, &o)?, None)
    };
    Ok(Box::new(GateOutcome {
        bundle_id: vb.id().into(),
        database: o.shown_db(),
        report,
        wait,
    }))
}

#[derive(Serialize, schemars::JsonSchema)]
pub struct PlanOutcome {
    #[serde(flatten)]
    pub plan: PlanReport,
}

/// The checks as a table; long evidence is cut here (the JSON has all of it).
/// Characters of a check's evidence shown in the table (the whole of it is in
/// `--json`, and below the table for the first failure).
const EVIDENCE_CELL: usize = 110;

/// A plan's verdict as its report and its `--quiet` line say it: `GO`, `BLOCKED (exit
/// 3)`, `NO-GO (apply would exit N)`, `CANNOT TELL (exit 8)`.
fn plan_verdict(p: &crate::db::plan::PlanReport) -> String {
    match p.verdict {
        PlanVerdict::Go => crate::style::verdict("GO"),
        PlanVerdict::Blocked => format!("{} (exit 3)", crate::style::verdict("BLOCKED")),
        PlanVerdict::NoGo => format!(
            "{} (apply would exit {})",
            crate::style::verdict("NO-GO"),
            p.exit_code
        ),
        PlanVerdict::CannotTell => format!("{} (exit 8)", crate::style::verdict("CANNOT TELL")),
    }
}

/// Under a plan's first line, for a bundle for a fleet: its names and patterns, and
/// which one this database matched (or that none did).
fn fleet_match_line(p: &crate::db::plan::PlanReport) -> String {
    let Some(fleet) = &p.target_database else {
        return String::new();
    };
    match p
        .target_match
        .as_deref()
        .or_else(|| fleet.matching(&p.database))
    {
        Some(m) => format!(
            "\nfleet: {}; {} matches {m:?}",
            fleet.describe(),
            p.database
        ),
        None => format!(
            "\nfleet: {}; {} is not matched (the name guard refuses it)",
            fleet.describe(),
            p.database
        ),
    }
}

/// A check's name as `--json` spells it (`remembered-head`).
fn check_name(c: &Check) -> String {
    serde_json::to_value(c.check)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

pub fn checks_table(checks: &[Check]) -> String {
    let rows: Vec<Vec<String>> = checks
        .iter()
        .map(|c| {
            let name = check_name(c);
            let verdict = serde_json::to_value(c.verdict)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let exit = if c.exit_code.is_success() {
                String::new()
            } else {
                c.exit_code.to_string()
            };
            vec![
                name,
                verdict,
                exit,
                crate::report::clip(&c.evidence, EVIDENCE_CELL),
            ]
        })
        .collect();
    table(&["check", "verdict", "exit", "evidence"], &rows)
}

/// The checks table cuts long evidence: every failing row's printed whole, with its
/// hint (the way out of each, not only of the first).
fn failures_whole(checks: &[Check]) -> String {
    let mut s = String::new();
    for c in checks.iter().filter(|c| !c.passed()) {
        let name = check_name(c);
        if crate::report::clip(&c.evidence, EVIDENCE_CELL) != c.evidence {
            // Evidence that names its check already ("drift: …") is not named twice.
            let named = c.evidence.starts_with(&format!("{name}: "));
            let lead = if named {
                String::new()
            } else {
                format!("{name}: ")
            };
            s.push_str(&format!("\n{lead}{}", c.evidence));
        }
        if let Some(h) = &c.hint {
            s.push_str(&format!("\nhint ({name}): {h}"));
        }
    }
    s
}

/// The gates' verdict and table, the preflight probe, the bundle's role and the grants
/// the gate role needs, as `plan` shows them.
fn gates_shown(p: &PlanReport, s: &mut String) {
    if let Some(g) = &p.gates {
        if !g.gates.is_empty() {
            s.push_str(&format!(
                "\n\ngates: {}\n{}",
                crate::style::verdict(&g.verdict),
                gate_table(g)
            ));
        }
    }
    if let Some(pf) = &p.preflight {
        s.push_str(&format!(
            "\n\npreflight {}: {}\n{}",
            pf.file,
            if pf.matches { "matches" } else { "MISMATCH" },
            probe_table(pf)
        ));
    }
    if let Some(r) = &p.bundle_role {
        s.push_str(&format!("\n\n{}", r.describe()));
    }
    if let Some(g) = p.gate_grants.as_ref().filter(|g| !g.in_place.is_empty()) {
        s.push_str(&format!(
            "\n\nthe gate role {} already holds the grants this bundle's gates and probes read now (in place): {}",
            g.role,
            crate::report::clip(&g.held(), 4000)
        ));
    }
    // No header over nothing: a bundle whose gates read nothing that needs a grant.
    if let Some(g) = p.gate_grants.as_ref().filter(|g| !g.lines().is_empty()) {
        s.push_str(&format!(
                "\n\ngrants the gate role {} needs for this bundle (run once as a superuser; never pg_read_all_data):\n{}",
                g.role,
                g.lines()
                    .iter()
                    .map(|l| format!("  {}", crate::report::clip(l, 4000)))
                    .collect::<Vec<_>>()
                    .join("\n")
            ));
    }
}

/// What apply would run, tier by tier and file by file, under the line that says
/// when (now, once the gates open, once the checks pass); nothing without tiers.
fn tiers_shown(p: &PlanReport) -> String {
    if p.tiers.is_empty() {
        return String::new();
    }
    let mut s = String::new();
    let rows: Vec<Vec<String>> = p
        .tiers
        .iter()
        .flat_map(|t| {
            t.files.iter().map(move |f| {
                vec![
                    t.index.to_string(),
                    t.name.clone(),
                    t.gates.join(","),
                    f.path.clone(),
                    f.size.to_string(),
                    f.sha256[..16].to_string(),
                ]
            })
        })
        .collect();
    match p.verdict {
            // A gate is shut and another check fails too: opening the gates is not
            // enough, and waiting for them would be refused.
            PlanVerdict::Blocked if !p.only_gates_stop() => s.push_str(
                "\n\nBLOCKED, and other checks above fail too: no tier can run before they pass\n\nonce the checks above pass and the gates open, apply would run:\n",
            ),
            PlanVerdict::Blocked => {
                match p.runnable_now.last() {
                    Some(last) => s.push_str(&format!(
                        "\n\nBLOCKED, but these tiers can run now: airlock apply … --through {last} ({})",
                        p.runnable_now.join(", ")
                    )),
                    None => s.push_str("\n\nBLOCKED: no tier can run until the gates open"),
                }
                s.push_str(
                    "\nor start now and go on when the gates open: airlock apply … --wait --yes",
                );
                s.push_str("\n\nonce the gates open, apply would run:\n");
            }
            PlanVerdict::Go => s.push_str("\n\napply would run:\n"),
            PlanVerdict::NoGo => s.push_str("\n\nonce the checks above pass, apply would run:\n"),
            PlanVerdict::CannotTell => s.push_str(
                "\n\nCANNOT TELL: nothing stops apply, but code a database role attached kept airlock from predicting a statement (listed below); rehearse it (airlock rehearse) or have the role remove that code, then plan again\n\napply would run:\n",
            ),
        }
    s.push_str(&table(
        &["#", "tier", "gates", "file", "bytes", "sha256"],
        &rows,
    ));
    s
}

impl Report for PlanOutcome {
    fn human(&self) -> String {
        let p = &self.plan;
        let verdict = plan_verdict(p);
        let mut s = format!(
            "plan for {} {} (bundle {}) on database {}: {verdict}{}\n\n{}",
            p.bundle_name,
            p.bundle_version,
            short(&p.bundle_id),
            p.database,
            fleet_match_line(p),
            checks_table(&p.checks)
        );
        s.push_str(&failures_whole(&p.checks));
        if let Some(dc) = p.drift_changes.as_ref().filter(|d| !d.changes.is_empty()) {
            s.push_str(&drift_lines(dc));
        }
        if !p.reaches_beyond.is_empty() {
            s.push('\n');
            for r in &p.reaches_beyond {
                s.push_str(&format!("\nreaches beyond its database: {r}"));
            }
            s.push_str("\n(reaches beyond this database, into the cluster, another database or the server: rehearse refuses this bundle, a clone cannot isolate it)");
        }
        if let Some(lp) = &p.locks {
            s.push_str(&crate::commands::deploy::plan_locks::human(
                lp,
                Whose::Release,
            ));
        }
        if let Some(pp) = &p.predictions {
            s.push_str(&crate::commands::deploy::plan_predict::human(
                pp,
                Whose::Release,
            ));
        }
        if !p.already_applied.is_empty() {
            s.push_str(&format!(
                "\n\nalready applied: {}",
                p.already_applied.join(", ")
            ));
        }
        gates_shown(p, &mut s);
        s.push_str(&tiers_shown(p));
        s
    }
    /// Under `--quiet`, a plan that is not GO still names the check that stops it.
    fn quiet_line(&self) -> Option<String> {
        let p = &self.plan;
        if p.verdict == PlanVerdict::Go {
            return None;
        }
        let c = p.first_failure()?;
        let name = check_name(c);
        let evidence = one_line(&c.evidence);
        // Evidence that names its check already ("drift: …") is not named twice.
        let evidence = evidence
            .strip_prefix(&format!("{name}: "))
            .unwrap_or(&evidence);
        let mut line = format!("{}: {name}: {evidence}", plan_verdict(p));
        if let Some(h) = &c.hint {
            line.push_str(&format!("\nhint: {}", one_line(h)));
        }
        Some(line)
    }
    fn exit_code(&self) -> crate::exit::Exit {
        self.plan.exit_code
    }
}

/// The objects that changed since the previous apply, one a line (the first 20).
fn drift_lines(dc: &crate::db::drift::DriftChanges) -> String {
    const SHOWN: usize = 20;
    let mut s = "\n\nchanged since the previous apply:".to_string();
    for c in dc.changes.iter().take(SHOWN) {
        s.push_str(&format!("\n  {c}"));
    }
    let more = dc.total.saturating_sub(SHOWN.min(dc.changes.len()));
    if more > 0 {
        s.push_str(&format!(
            "\n  … and {more} more (--json lists the first {})",
            crate::db::drift::MAX_LISTED
        ));
    }
    s
}

/// The signatures row: what the verification that already passed rests on.
pub(crate) fn signatures_check(vb: &crate::verified::VerifiedBundle) -> Check {
    let m = vb.manifest();
    let keys = vb
        .opened
        .trust
        .as_ref()
        .map(|t| {
            let ids: Vec<&str> = t
                .signatures
                .iter()
                .filter(|c| c.counted)
                .map(|c| c.key_id.as_str())
                .collect();
            format!(
                "{} of {} required trusted key(s) signed ({})",
                t.distinct_keys,
                t.threshold,
                ids.join(", ")
            )
        })
        .unwrap_or_else(|| "verified".into());
    let expiry = match &m.bundle.expires {
        Some(e) => format!("expires {e}"),
        None => "no expiry".into(),
    };
    Check::ok(
        CheckName::Signatures,
        format!("{keys}; hashes and structure verified; {expiry}"),
    )
}

/// The params row, and the params that parsed: a bad one is reported, the others
/// still reach the gates (apply would stop at the first; plan shows everything).
pub(crate) fn params_check(
    given: &[String],
    decl: &std::collections::BTreeMap<String, crate::spec::ParamSpec>,
) -> (Check, std::collections::BTreeMap<String, String>) {
    match crate::db::parse_params(given, decl) {
        Ok(p) => {
            let shown = if p.is_empty() {
                "none given".to_string()
            } else {
                p.keys()
                    .map(|k| format!("{k} (matches its pattern)"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            (Check::ok(CheckName::Params, shown), p)
        }
        Err(e) => {
            let mut good = std::collections::BTreeMap::new();
            for g in given {
                if let Ok(one) = crate::db::parse_params(std::slice::from_ref(g), decl) {
                    for (k, v) in one {
                        good.entry(k).or_insert(v);
                    }
                }
            }
            (Check::failed(CheckName::Params, &e), good)
        }
    }
}

/// The receipt-policy row: what `apply` with the same `--sign-receipt` would say
/// before connecting (the same function judges both).
fn receipt_policy_check(store: &crate::trust::TrustStore, args: &PlanArgs) -> Check {
    let spec = args.sign_receipt.as_ref();
    let judged = receipt_public(spec, &args.pass).and_then(|(public, from)| {
        crate::commands::deploy::receipt_policy::receipt_policy(store, public.as_ref().zip(spec))
            .map(|evidence| format!("{evidence}{from}"))
    });
    match judged {
        Ok(evidence) => Check::ok(CheckName::ReceiptPolicy, evidence),
        Err(e) => Check::failed_with(
            CheckName::ReceiptPolicy,
            e.exit_code(),
            e.to_string(),
            e.hint(),
        ),
    }
}

/// The public half of a `--sign-receipt` key for plan's read-only judgement: an
/// encrypted key file is not opened (no passphrase, no key derivation) when the `.pub`
/// beside it reads; `apply` opens the key itself and judges again. Also what it was
/// read from, for the evidence.
fn receipt_public(
    spec: Option<&airlock_keys::KeySpec>,
    pass: &crate::cli::PassphraseArgs,
) -> Result<(Option<crate::minisign::PublicKey>, String)> {
    let Some(given) = spec else {
        return Ok((None, String::new()));
    };
    let encrypted = given
        .file()
        .and_then(|f| std::fs::read_to_string(f).ok())
        .and_then(|t| crate::minisign::SecretKey::file_is_encrypted(&t).ok())
        .unwrap_or(false);
    let beside = given.pub_beside().filter(|_| encrypted);
    let public = beside
        .as_ref()
        .and_then(|b| b.file().and_then(|f| std::fs::read_to_string(f).ok()))
        .and_then(|t| crate::minisign::PublicKey::parse(&t).ok());
    match (public, beside) {
        (Some(p), Some(beside)) => Ok((
            Some(p),
            format!(" (read from {beside}: plan does not open an encrypted key; apply does)"),
        )),
        _ => {
            let key = crate::commands::deploy::receipt_policy::receipt_key(spec, pass)?;
            Ok((
                key.as_ref()
                    .map(crate::commands::signing_key::SigningKey::public),
                String::new(),
            ))
        }
    }
}

pub fn plan(args: PlanArgs) -> Result<Outcome> {
    let store =
        crate::commands::release::carried::load_trust_for_bundle(&args.trust.trust, &args.bundle)?;
    let vb = crate::verified::VerifiedBundle::load(
        &args.bundle,
        &store,
        crate::commands::common::judge_time(None)?,
        &crate::commands::common::verdicts(),
    )?;
    if args.rollback {
        return rollback_plan(&args, &vb);
    }
    let plan = plan_verified(&args, &store, &vb)?;
    Ok(Box::new(PlanOutcome { plan }))
}

/// `plan --rollback`: the rollback's own GO/NO-GO.
fn rollback_plan(args: &PlanArgs, vb: &crate::verified::VerifiedBundle) -> Result<Outcome> {
    let conn = crate::db::conn::resolve_for(args.db.db.as_deref(), &vb.manifest().target.database)?;
    let plan = rollback_plan_on(args, vb, &conn)?;
    Ok(Box::new(RollbackPlanOutcome { plan }))
}

/// `plan --rollback`'s result on a connection already resolved (the dossier's `--db`
/// renders it in "How it is undone").
pub(crate) fn rollback_plan_on(
    args: &PlanArgs,
    vb: &crate::verified::VerifiedBundle,
    conn: &crate::db::conn::ConnSpec,
) -> Result<crate::db::deploy::rollback_plan::RollbackPlan> {
    let (_, params) = params_check(&args.params.params, &vb.manifest().params);
    let o = options(conn, vb, params, &args.db.statement_timeout);
    Ok(crate::db::deploy::rollback_plan::plan_rollback(
        vb,
        &o,
        args.predict_timeout,
    )?)
}

#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct RollbackPlanOutcome {
    #[serde(flatten)]
    pub plan: crate::db::deploy::rollback_plan::RollbackPlan,
}

impl Report for RollbackPlanOutcome {
    fn human(&self) -> String {
        let p = &self.plan;
        let verdict = if p.fails() {
            format!(
                "{} (rollback would exit 1: a statement fails, and the whole rollback is rolled back)",
                crate::style::verdict("NO-GO")
            )
        } else if p.cannot_tell() {
            format!(
                "{} (exit 8: code a database role attached kept a statement from being predicted; rehearse it, or have the role remove that code)",
                crate::style::verdict("CANNOT TELL")
            )
        } else {
            crate::style::verdict("GO")
        };
        let mut s = format!(
            "rollback plan for {} {} (bundle {}) on database {}: {verdict}
undoes tier(s): {}
runs: {}",
            one_line(&p.bundle),
            one_line(&p.version),
            airlock_base::text::short(&p.bundle_id),
            one_line(&p.database),
            p.undoes.join(", "),
            p.files.join(", ")
        );
        let predicted =
            crate::commands::deploy::plan_predict::human(&p.predictions, Whose::Rollback);
        if predicted.trim().is_empty() {
            s.push_str(
                "
it destroys nothing that holds rows, and the data makes no statement of it fail",
            );
        } else {
            s.push_str(&format!(
                "
{predicted}"
            ));
        }
        s.push_str(&crate::commands::deploy::plan_locks::human(
            &p.locks,
            Whose::Rollback,
        ));
        if p.fails() {
            s.push_str("
hint: the signed rollback cannot be edited: fix the data first (the rows named above), or ship a follow-up release whose rollback handles them");
        }
        s
    }
    fn exit_code(&self) -> crate::exit::Exit {
        self.plan.judged().1
    }
}

/// `plan` of a bundle already verified with `store` (the dossier's `--db` asks this).
pub(crate) fn plan_verified(
    args: &PlanArgs,
    store: &crate::trust::TrustStore,
    vb: &crate::verified::VerifiedBundle,
) -> Result<PlanReport> {
    let conn = crate::db::conn::resolve_for(args.db.db.as_deref(), &vb.manifest().target.database)?;
    plan_on(args, store, vb, &conn)
}

/// [`plan_verified`] on a connection already resolved (the demo's deploy login).
pub(crate) fn plan_on(
    args: &PlanArgs,
    store: &crate::trust::TrustStore,
    vb: &crate::verified::VerifiedBundle,
    conn: &crate::db::conn::ConnSpec,
) -> Result<PlanReport> {
    let (params_row, params) = params_check(&args.params.params, &vb.manifest().params);
    let receipt_row = receipt_policy_check(store, args);
    let approvals = crate::commands::deploy::db_common::approvals(&args.approvals, &args.trust)?;
    let vouch = crate::commands::deploy::signed_rows::Vouched::required_by(store);
    let mut o = options(conn, vb, params, &args.db.statement_timeout);
    // As apply: with signed receipts required, a row no operator key signed decides
    // nothing (plan says so at ledger-state, as apply would refuse).
    o.vouch = vouch
        .as_ref()
        .map(|v| v as &dyn crate::db::ledger::signed_rows::Vouch);
    o.approvals = Some(&approvals);
    o.through = args.through.clone();
    o.gate_role = args.gate.gate_role.clone();
    o.allow_drift = args.allow_drift;
    o.resume = args.resume;
    Ok(crate::db::plan::plan(
        vb,
        &o,
        vec![signatures_check(vb), params_row, receipt_row],
        Some(args.predict_timeout),
    ))
}
