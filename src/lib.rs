//! airlock: signed, offline release bundles for PostgreSQL changes.
//!
//! The command line over the library crates (README, "Architecture"):
//! `cli → commands → airlock-pg → airlock-bundle → airlock-sql`, with `airlock-base`
//! under all of them. Libraries never print and never exit; `main.rs` renders the
//! returned report.
//!
//! Inside this crate rooms import only the rooms before them (`scripts/check-layers`
//! enforces the line below; `commands/mod.rs` orders the commands' rooms the same
//! way): how text looks and what the project file says, the report shapes every
//! command returns, the errors and progress that use them, the argument parser, the
//! commands, and the JSON schema written from all of them.
//!
//! Room order, lowest first: `style`, `project` < `report` < `error`, `progress` < `cli` < `commands` < `schema`.

// `unsafe` only for libc calls, each function allowed by name (style.rs
// `terminal_columns`, commands/demo_roles.rs `DemoRoles::new`), each with a SAFETY note.
#![deny(unsafe_code)]

pub mod cli;
pub mod commands;
pub mod error;
pub mod progress;
pub mod project;
pub mod report;
pub mod schema;
pub mod style;

// The layers below, under the names the commands (and the tests) have always used.
pub use airlock_base::exit;
pub use airlock_bundle::trust::{
    edit as trust_edit, history as trust_history, rotation as trust_rotation,
    update as trust_update,
};
pub use airlock_bundle::{
    approval, archive, bundle_path, fuzz_targets, manifest, minisign, spec, strict_json, trust,
    verdicts, verified,
};
pub use airlock_pg as db;
pub use airlock_pg::cluster;
pub use airlock_sql as sql_lint;

pub use error::{Error, Result};

/// `airlock --version`: the version, the commit it was built from (build.rs) and the
/// SQL check every build makes: PostgreSQL's own parser.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("AIRLOCK_GIT_COMMIT"),
    "; SQL check: PostgreSQL's parser, libpg_query)"
);

/// Run one parsed command line.
pub fn run(cli: cli::Cli) -> Result<report::Outcome> {
    commands::dispatch(cli)
}
