//! airlock's ground floor: the exit codes every command ends with ([`exit::Exit`],
//! DESIGN.md §6), the small text helpers every layer needs ([`text`]: short ids,
//! bounded and clipped text), the host's state directory ([`host`]), and the capped read every layer reads whole files with
//! ([`bounded`]: one table of caps).
//!
//! Invariant: this crate names no other airlock crate and does no I/O but
//! [`bounded::read_capped`]; everything above may use it, so it stays small.
//!
//! Room order, lowest first: `text`, `exit`, `host` < `bounded`.

#![forbid(unsafe_code)]

pub mod bounded;
pub mod exit;
pub mod host;
pub mod text;

pub use exit::Exit;
