//! airlock's ground floor: the exit codes every command ends with ([`exit::Exit`],
//! DESIGN.md §6) and the small text helpers every layer needs ([`text`]: short ids,
//! bounded and clipped text).
//!
//! Invariant: this crate names no other airlock crate and does no I/O; everything
//! above may use it, so it stays small.

pub mod exit;
pub mod text;

pub use exit::Exit;
