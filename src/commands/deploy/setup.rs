//! `airlock setup`: the deploy login, once per database (see `airlock_pg::setup`).

use crate::cli::SetupArgs;
use crate::db::{conn, setup};
use crate::error::Result;
use crate::report::{Outcome, Report};
use serde::Serialize;

/// What `airlock setup` did.
#[derive(Serialize, schemars::JsonSchema)]
pub struct SetupOutcome {
    #[serde(flatten)]
    pub setup: setup::SetupReport,
}

impl Report for SetupOutcome {
    fn human(&self) -> String {
        let s = &self.setup;
        let made = |created: bool| if created { "created" } else { "existed" };
        let mut out = format!(
            "deploy login {} ({}) on database {}: may become {} (bundle SQL), {} (gates and probes; {}){}; airlock's ledger {}\n",
            s.login,
            made(s.login_created),
            s.database,
            s.role,
            s.gate_role,
            made(s.gate_role_created),
            if s.createdb { ", may create databases (rehearse)" } else { "" },
            s.ledger
        );
        out.push_str("  ran:\n");
        for st in &s.statements {
            out.push_str(&format!("    {st};\n"));
        }
        out.push_str(&format!(
            "  it is no superuser and has no path to one. Deploy as it from now on: --db \"dbname={} user={}\"",
            s.database, s.login
        ));
        if let Some(a) = &s.auditor {
            out.push_str(&format!(
                "\nauditor login {} ({}): may read airlock's ledger, nothing more. Audit as it: airlock audit … --db \"dbname={} user={}\"",
                a.login,
                made(a.created),
                s.database,
                a.login
            ));
        }
        out
    }
}

pub fn run(args: SetupArgs) -> Result<Outcome> {
    let spec = conn::resolve(
        args.db.db.as_deref(),
        &crate::commands::deploy::status::default_db(),
    )?;
    let mut client = spec.connect()?;
    let report = setup::run(
        &mut client,
        &setup::SetupRequest {
            login: &args.login,
            role: args.role.as_deref(),
            gate_role: &args.gate_role,
            createdb: args.createdb,
            auditor: args.auditor.as_deref(),
        },
    )?;
    Ok(Box::new(SetupOutcome { setup: report }))
}
