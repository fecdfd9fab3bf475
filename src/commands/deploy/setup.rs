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
    /// How to connect as the deploy login from now on (`--db`): the server (hosts and
    /// ports) and database setup was given, as the login; no password.
    pub deploy_db: String,
}

/// `s` as one shell word: in double quotes when nothing in it is special there, else
/// in single quotes.
fn shell_word(s: &str) -> String {
    if s.chars().any(|c| matches!(c, '"' | '$' | '`' | '\\' | '!')) {
        format!("'{}'", s.replace('\'', "'\\''"))
    } else {
        format!("\"{s}\"")
    }
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
            "  it is no superuser and has no path to one. Deploy as it from now on: --db {}",
            shell_word(&self.deploy_db)
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
    let deploy_db = spec.conninfo_as(&report.login);
    Ok(Box::new(SetupOutcome {
        setup: report,
        deploy_db,
    }))
}
