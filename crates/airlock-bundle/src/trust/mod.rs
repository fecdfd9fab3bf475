//! The trust room: which public keys count, when, for what and how many are needed
//! (`store`); how a store changes by signature and what a host remembers of it
//! (`rotation`); its versions over time, for judging old signatures (`history`); a
//! store carried inside a bundle (`update`, bounded by the crate's `carried_files`);
//! and editing a store
//! (`edit`).
//!
//! Invariant: a store is used only as its own root keys signed it and no older than
//! this host accepted (by its root keys, wherever it is kept); every earlier version
//! counts only when proven forward from a version the host trusts. Imports go one
//! way: `store` ← `rotation` ← `history`, `update`, `edit`.

pub mod edit;
pub mod history;
pub mod rotation;
mod store;
pub mod update;

pub use store::*;
