//! `airlock gate` and `airlock plan`.

use super::db_common::prepare;
use crate::cli::{GateArgs, PlanArgs};
use crate::db::apply::{self, Options, PlanReport};
use crate::db::gate::{GateReport, ProbeReport};
use crate::error::Result;
use crate::report::{short, table, Outcome, Report};
use serde::Serialize;

#[derive(Serialize, schemars::JsonSchema)]
pub struct GateOutcome {
    pub bundle_id: String,
    pub database: String,
    #[serde(flatten)]
    pub report: GateReport,
}

pub fn gate_table(r: &GateReport) -> String {
    let rows: Vec<Vec<String>> = r
        .gates
        .iter()
        .map(|g| {
            vec![
                g.name.clone(),
                if g.ready {
                    "READY".into()
                } else {
                    "BLOCKED".into()
                },
                g.reason.clone(),
            ]
        })
        .collect();
    table(&["gate", "verdict", "reason"], &rows)
}

pub fn probe_table(p: &ProbeReport) -> String {
    let rows: Vec<Vec<String>> = p
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
    table(&["key", "expected", "actual", ""], &rows)
}

impl Report for GateOutcome {
    fn human(&self) -> String {
        format!(
            "{}: {} gate(s) on database {} (bundle {})\n\n{}",
            crate::style::verdict(&self.report.verdict),
            self.report.gates.len(),
            self.database,
            short(&self.bundle_id),
            gate_table(&self.report)
        )
    }
    fn exit_code(&self) -> u8 {
        if self.report.ready() {
            0
        } else {
            3
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
        statement_timeout: statement_timeout.into(),
        allow_drift: false,
        gate_role: None,
        remember: false,
        skip_gates: false,
        confirm: None,
        observer: None,
    }
}

pub fn gate(args: GateArgs) -> Result<Outcome> {
    let (vb, conn, params) = prepare(&args.bundle, &args.trust, &args.db, &args.params)?;
    let mut o = options(&conn, &vb, params, &args.db.statement_timeout);
    o.gate_role = args.gate.gate_role.clone();
    let report = apply::gate(&vb, &o)?;
    Ok(Box::new(GateOutcome {
        bundle_id: vb.id().into(),
        database: o.expected_db.clone(),
        report,
    }))
}

#[derive(Serialize, schemars::JsonSchema)]
pub struct PlanOutcome {
    #[serde(flatten)]
    pub plan: PlanReport,
}

impl Report for PlanOutcome {
    fn human(&self) -> String {
        let p = &self.plan;
        let mut s = format!(
            "plan for {} {} (bundle {}) on database {}",
            p.bundle_name,
            p.bundle_version,
            short(&p.bundle_id),
            p.database
        );
        if !p.already_applied.is_empty() {
            s.push_str(&format!(
                "\nalready applied: {}",
                p.already_applied.join(", ")
            ));
        }
        if let Some(r) = &p.refusal {
            s.push_str(&format!("\n\nREFUSED: {r}"));
            return s;
        }
        if let Some(g) = &p.gates {
            s.push_str(&format!(
                "\n\ngates: {}\n{}",
                g.verdict,
                if g.gates.is_empty() {
                    "(no gates for these tiers)".into()
                } else {
                    gate_table(g)
                }
            ));
        }
        if let Some(pf) = &p.preflight {
            s.push_str(&format!(
                "\n\npreflight {}: {}\n{}",
                pf.file,
                if pf.matches { "matches" } else { "MISMATCH" },
                probe_table(pf)
            ));
        }
        if let Some(d) = &p.drift {
            s.push_str(&format!("\n\n{d}"));
        }
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
        let blocked = p.gates.as_ref().is_some_and(|g| !g.ready());
        if blocked {
            match p.runnable_now.last() {
                Some(last) => s.push_str(&format!(
                    "\n\nBLOCKED, but the gate-free tiers can run now: airlock apply … --through {last} ({})",
                    p.runnable_now.join(", ")
                )),
                None => s.push_str("\n\nBLOCKED: no tier can run until the gates open"),
            }
            s.push_str("\n\nonce the gates open, apply would run, in one transaction per the bundle's mode:\n");
        } else {
            s.push_str("\n\napply would run, in one transaction per the bundle's mode:\n");
        }
        s.push_str(&table(
            &["#", "tier", "gates", "file", "bytes", "sha256"],
            &rows,
        ));
        s
    }
    fn exit_code(&self) -> u8 {
        let p = &self.plan;
        if p.refusal.is_some() {
            6
        } else if p.gates.as_ref().map(|g| !g.ready()).unwrap_or(false) {
            3
        } else if p.preflight.as_ref().map(|x| !x.matches).unwrap_or(false)
            || p.drift
                .as_deref()
                .map(|d| d.starts_with("DRIFT"))
                .unwrap_or(false)
        {
            5
        } else {
            0
        }
    }
}

pub fn plan(args: PlanArgs) -> Result<Outcome> {
    let (vb, conn, params) = prepare(&args.bundle, &args.trust, &args.db, &args.params)?;
    let mut o = options(&conn, &vb, params, &args.db.statement_timeout);
    o.through = args.through.clone();
    o.gate_role = args.gate.gate_role.clone();
    let plan = apply::plan(&vb, &o)?;
    Ok(Box::new(PlanOutcome { plan }))
}
