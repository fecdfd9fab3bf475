//! The gates room: the read-only questions a bundle asks of the target (`gate`: gates
//! and probes, in the parallel-mode wrapper, as the gate role), the least the gate role
//! needs (`gate_grants`, `named_reads`), what a gate could leave in airlock's session
//! (`leftovers`), and which gates a bundle and its tiers name (`listed`).
//!
//! Invariant: a gate writes nothing, its transaction always ends in ROLLBACK, and
//! READY is only every gate's `ready = true`.

pub mod gate;
pub mod gate_grants;
pub mod leftovers;
pub mod listed;
pub(crate) mod named_reads;
