//! The deploy room: `plan`, `apply` and `rollback` as one skeleton (`skeleton`: begin,
//! decide under the lock, run, ledger row, commit), the named checks (`checks`,
//! `decide`, `pipeline`, `predicted`), the name-guarded, version-checked session on a
//! bundle's target (`target`), running bundle files (`files`, `exec`, `online`) as
//! their declared role (`bundle_role`), lock waits (`retry`), the lock plan
//! (`lock_plan`, with `retype` inside it), the operator's options (`options`), `--wait`'s polling
//! (`wait`), a receipt's delivery after the commit (`delivery`), the rollback's own
//! GO/NO-GO (`rollback_plan`), and `setup` of a deploy login.
//!
//! Invariant: nothing commits outside the skeleton's deploy transaction, and only
//! after a ledger row was appended and the whole bundle verified; `plan` runs every
//! check `apply` makes and changes nothing.

pub mod apply;
pub mod bundle_role;
pub mod checks;
pub mod decide;
pub mod delivery;
pub mod exec;
pub mod files;
pub mod lock_plan;
pub mod online;
pub mod options;
pub mod pipeline;
pub mod plan;
pub mod predicted;
pub mod retry;
pub mod rollback_plan;
pub mod setup;
pub mod skeleton;
pub mod target;
pub mod wait;
