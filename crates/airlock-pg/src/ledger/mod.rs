//! The ledger room: `airlock.ledger` itself (`chain`: an append-only, hash-chained
//! record of applies and rollbacks), the receipts it vouches for (`receipt`),
//! approvals that open ratified tiers (`ratify`), which tiers run next given the
//! ledger (`policy`), whether the schema is as the last apply left it (`drift`),
//! that a deploy login leaves itself and the ledger unchanged (`login_kept`), what
//! this host remembers of each target's ledger (`remembered`), a read-only look
//! before anything costly (`precheck`), where each release train stands (`train`),
//! and reading it to judge the past, on a login that may only read it (`reader`) and
//! the auditor's login that does (`auditor`); the operator's signature over the rows a
//! run wrote (`signed_rows`).
//!
//! Invariant: the ledger's schema, table and trigger are checked before every use; a
//! row that was not stored as computed is an error; a ledger that lost the head this
//! host remembers is refused.

pub mod auditor;
pub mod chain;
pub mod drift;
pub mod login_kept;
pub mod policy;
pub mod precheck;
pub mod ratify;
pub mod reader;
pub mod receipt;
pub mod remembered;
pub mod signed_rows;
pub mod train;
