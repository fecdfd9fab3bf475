//! airlock's bundles, with no database and no terminal in them: the bundle format
//! (paths, manifest, spec), the deterministic archive and its streaming, verifying
//! reader, minisign keys and signatures, trust stores, and [`verified::VerifiedBundle`],
//! the only way a bundle reaches anything that acts on it. An auditor's verifier needs
//! this crate alone.
//!
//! Invariant: nothing here opens a database connection or draws on a terminal; the
//! reader reports progress through [`archive::Meter`], which the caller implements.
//!
//! Rooms import only the rooms before them (`scripts/check-layers` enforces the line
//! below): plain formats and bounds first, then the spec a source is linted by, the
//! manifest it becomes, the trust that signs it, the archive that carries it, and last
//! the verified bundle everything above the crate receives.
//!
//! Room order, lowest first: `strict_json`, `hashing`, `exchange`, `bundle_path`, `target_db`, `minisign`, `carried_files` < `lint_reach` < `spec` < `manifest` < `trust` < `approval`, `archive` < `verdicts` < `sql_rules` < `verified` < `import`, `fuzz_targets`.

// `unsafe` only for libc calls, each function allowed by name (import/folder.rs
// `open_at`), each block with its SAFETY note; the directory exchange is rustix's.
#![deny(unsafe_code)]

pub mod approval;
pub mod archive;
pub mod bundle_path;
pub mod carried_files;
mod exchange;
pub mod fuzz_targets;
pub mod hashing;
pub mod import;
mod lint_reach;
pub mod manifest;
pub mod minisign;
pub mod spec;
pub mod sql_rules;
pub mod strict_json;
pub mod target_db;
pub mod trust;
pub mod verdicts;
pub mod verified;
