//! The deploy room: `plan`, `apply` and `rollback` as one skeleton (`skeleton`: begin,
//! decide under the lock, run, ledger row, commit), the named checks (`checks`,
//! `decide`, `pipeline`, `predicted`), deploy policy (`policy`, `refusal`), running
//! bundle files (`files`, `exec`, `online`) as their declared role (`bundle_role`), the
//! lock plan (`lock_plan`), the operator's options (`options`), the rollback's own
//! GO/NO-GO (`rollback_plan`), and `setup` of a deploy login.
//!
//! Invariant: nothing commits outside the skeleton's deploy transaction, and only
//! after a ledger row was appended and the whole bundle verified; `plan` runs every
//! check `apply` makes and changes nothing.

pub mod apply;
pub mod bundle_role;
pub mod checks;
pub mod decide;
pub mod exec;
pub mod files;
pub mod lock_plan;
pub mod online;
pub mod options;
pub mod pipeline;
pub mod plan;
pub mod policy;
pub mod predicted;
pub mod refusal;
mod retype;
pub mod rollback_plan;
pub mod setup;
pub mod skeleton;
