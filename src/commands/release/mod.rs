//! The commands of a release that need no database: making one (`new`, `lint`,
//! `import`, `pack`), signing and approving it (`keygen`, `sign`, `approve`), the trust
//! store (`trust`), and reading one (`verify` and `inspect`, `extract`, `runbook`, `sql`),
//! with a carried trust update's note (`carried`).
//!
//! Invariant: nothing here opens a database connection, but `import` when told to:
//! `--history` reads a peer's history table, `--fresh-on` makes (and drops) a
//! throwaway database to decide Liquibase preconditions on.

pub mod approve;
pub mod carried;
pub mod extract;
pub mod import;
pub mod import_custom;
pub mod import_fresh;
pub mod import_history;
pub mod import_policy;
pub mod import_target;
pub mod keygen;
pub mod lint;
pub mod new;
pub mod pack;
pub mod runbook;
pub mod show_sql;
pub mod sign;
pub mod subject;
pub mod trust;
pub mod verify;
