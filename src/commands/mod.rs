//! One file per subcommand: read args, call the domain modules, return a report.
//!
//! The commands' rooms import only the rooms before them (`scripts/check-layers`
//! enforces the line below): what every command shares (`common`, `signing_key`),
//! then the release manager's commands, the operator's, the dossier that shows both,
//! and the commands that read all of them.
//!
//! Room order, lowest first: `common` < `signing_key`, `man_sections`, `completions` < `release` < `deploy` < `audit` < `dossier`, `man` < `demo`.

pub mod demo;
pub mod deploy;
pub mod release;

// The commands under the names the binary has always used.
pub use deploy::{
    apply, db_common, gate, plan_locks, plan_predict, receipt_policy, rehearse, reissue, setup,
    status,
};
pub use release::{
    approve, carried, extract, import, import_history, keygen, lint, new, pack, runbook, show_sql,
    sign, trust, verify,
};
pub mod audit;
pub mod common;
pub mod completions;
pub mod dossier;
pub mod man;
mod man_sections;
pub mod signing_key;

use crate::cli::{Cli, Command};
use crate::error::Result;
use crate::report::Outcome;

/// Whether running notes (e.g. `--wait`'s changes of verdict) go to stderr: not with
/// `--json` or `--quiet`.
static NOTES: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// A running note on stderr, when the global flags allow it.
pub fn note(text: &str) {
    if NOTES.load(std::sync::atomic::Ordering::Relaxed) {
        eprintln!("{}", crate::report::for_stderr(text));
    }
}

pub fn dispatch(cli: Cli) -> Result<Outcome> {
    crate::progress::allow(cli.global.json, cli.global.quiet);
    NOTES.store(
        !cli.global.json && !cli.global.quiet,
        std::sync::atomic::Ordering::Relaxed,
    );
    match cli.command {
        Command::Keygen(a) => keygen::run(a),
        Command::New(a) => new::run(a),
        Command::Lint(a) => lint::run(a),
        Command::Pack(a) => pack::run(a),
        Command::Import(a) => import::run(a),
        Command::Sign(a) => sign::run(a),
        Command::Verify(a) => verify::verify(a),
        Command::Inspect(a) => verify::inspect(a),
        Command::Extract(a) => extract::run(a),
        Command::Runbook(a) => runbook::run(a),
        Command::Sql(a) => show_sql::run(a),
        Command::Dossier(a) => dossier::run(a),
        Command::Approve(a) => approve::run(a),
        Command::Gate(a) => gate::gate(a),
        Command::Plan(a) => gate::plan(a),
        Command::Apply(a) => apply::apply(a),
        Command::Rollback(a) => apply::rollback(a),
        Command::Reissue(a) => reissue::run(a),
        Command::Rehearse(a) => rehearse::run(a),
        Command::Setup(a) => setup::run(a),
        Command::Status(a) => status::status(a),
        Command::Fingerprint(a) => status::fingerprint(a),
        Command::Audit(a) => audit::run(a),
        Command::Demo(a) => demo::run(a),
        Command::Completions(a) => completions::run(a),
        Command::Tiers(a) => completions::tiers(a),
        Command::Man(a) => man::run(a),
        Command::Trust(c) => trust::run(c.command),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        crate::cli::Cli::command().debug_assert();
    }

    #[test]
    fn durations_are_plain_seconds_or_a_number_with_a_unit() {
        use crate::cli::parse_duration;
        use std::time::Duration;
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        for bad in [
            "",
            "soon",
            "5 parsecs",
            "0",
            "0s",
            "-1",
            "1.5m",
            "99999999999999999999h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
