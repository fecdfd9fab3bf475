//! The rehearse room: the whole cycle on a clone (`cycle`), made by a template or by
//! `pg_dump` (`dump_clone`), on the server or a private throwaway cluster (`cluster`),
//! its predictions (`predictions`), what it measured (`measure`, `lock_impact`), its
//! proof that the rollback restored every table (`proof`, `storage`), and the
//! cluster-wide state it must leave as it found it (`cluster_state`).
//!
//! Invariant: a rehearsal changes nothing outside its clone, and drops the clone.

pub mod cluster;
pub mod cluster_state;
pub mod cycle;
pub mod dump_clone;
pub mod lock_impact;
pub mod measure;
pub mod predictions;
pub mod proof;
pub mod storage;
