//! airlock: signed, offline release bundles for PostgreSQL changes.
//!
//! Data flows one way: `cli → commands → domain modules → (archive | db)`. Domain
//! modules never print and never exit; `main.rs` renders the returned report.

pub mod archive;
pub mod bundle_path;
pub mod cli;
pub mod cluster;
pub mod commands;
pub mod db;
pub mod error;
pub mod exit;
pub mod fuzz_targets;
pub mod manifest;
pub mod minisign;
pub mod progress;
pub mod report;
pub mod schema;
pub mod spec;
pub mod sql_lint;
pub mod strict_json;
pub mod style;
pub mod trust;
pub mod verified;

pub use error::{Error, Result};

/// `airlock --version`: the version, the commit it was built from (build.rs) and
/// which SQL check this build makes (`sql_lint::Classifier::BUILD`).
#[cfg(feature = "pg-parser")]
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("AIRLOCK_GIT_COMMIT"),
    "; SQL check: PostgreSQL parser, pg-parser build)"
);
/// `airlock --version`: the version, the commit it was built from (build.rs) and
/// which SQL check this build makes (`sql_lint::Classifier::BUILD`).
#[cfg(not(feature = "pg-parser"))]
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("AIRLOCK_GIT_COMMIT"),
    "; SQL check: token classifier, default build without pg-parser)"
);

/// Run one parsed command line.
pub fn run(cli: cli::Cli) -> Result<report::Outcome> {
    commands::dispatch(cli)
}
