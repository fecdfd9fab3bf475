//! The catalog room: what the target's schema is, read from the catalog. The
//! description kept up to date (`described`, `stamps`; what changed between two is
//! the crate's `schema_change`, judged by the ledger's `drift`), the fingerprint (`fingerprint`, `data_values`), and an
//! online step's index as the catalog holds it (`invalid_index`, `promised`).
//!
//! Invariant: read only, with pg_catalog's functions and operators named explicitly;
//! a description covers everything `pg_dump --schema-only` prints.

pub mod data_values;
pub mod described;
pub mod fingerprint;
pub mod invalid_index;
pub(crate) mod promised;
pub(crate) mod record_text;
pub mod stamps;
