//! One file per subcommand: read args, call the domain modules, return a report.

pub mod common;
pub mod extract;
pub mod keygen;
pub mod lint;
pub mod pack;
pub mod runbook;
pub mod sign;
pub mod verify;

use crate::cli::{Cli, Command};
use crate::error::Result;
use crate::report::Outcome;

pub fn dispatch(cli: Cli) -> Result<Outcome> {
    match cli.command {
        Command::Keygen(a) => keygen::run(a),
        Command::Lint(a) => lint::run(a),
        Command::Pack(a) => pack::run(a),
        Command::Sign(a) => sign::run(a),
        Command::Verify(a) => verify::verify(a),
        Command::Inspect(a) => verify::inspect(a),
        Command::Extract(a) => extract::run(a),
        Command::Runbook(a) => runbook::run(a),
        _ => Err(crate::Error::usage("not implemented yet", None)),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        crate::cli::Cli::command().debug_assert();
    }
}
