//! The catalog room: what the target's schema is, read from the catalog. The
//! description kept up to date (`described`, `stamps`), what changed between two
//! (`schema_change`, `drift`), the fingerprint (`fingerprint`, `data_values`), and an
//! online step's index as the catalog holds it (`invalid_index`, `promised`).
//!
//! Invariant: read only, with pg_catalog's functions and operators named explicitly;
//! a description covers everything `pg_dump --schema-only` prints.

pub mod data_values;
pub mod described;
pub mod drift;
pub mod fingerprint;
pub mod invalid_index;
pub(crate) mod promised;
pub(crate) mod record_text;
pub mod schema_change;
pub mod stamps;
