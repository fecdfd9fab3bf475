//! The commands that act on a database: `gate` and `plan` (`gate`, with the lock plan
//! and predictions in `plan_locks`, `plan_predict`), `apply` and `rollback` (`apply`,
//! with the receipt policy in `receipt_policy`), `reissue`, `rehearse`, `setup`,
//! `status` and `fingerprint` (`status`, with where each release train stands in
//! `status_train`), and what they share (`db_common`: the bundle
//! verified, the connection resolved).
//!
//! Invariant: each renders the result structs of `airlock-pg`; none computes a fact
//! its `--json` lacks.

pub mod apply;
pub mod db_common;
pub mod gate;
pub mod plan_locks;
pub mod plan_predict;
pub mod receipt_policy;
pub mod rehearse;
pub mod reissue;
pub mod setup;
pub mod signed_rows;
pub mod status;
pub mod status_train;
