//! Reading a ledger to judge the past (`audit`, `status`, the dossier's history), on
//! any login that may read it: the deploy login that keeps it, or a login that may
//! only read it (an auditor's: CONNECT, USAGE on schema `airlock`, SELECT on
//! `airlock.ledger`; `airlock setup --auditor` makes one).
//!
//! Reading needs no ownership: what the reading rests on is the hash chain, this
//! host's memory of the head and the signed receipts, judged by the callers. So a
//! reader that is no superuser accepts a ledger the role owning schema `airlock`
//! keeps ([`chain::INSPECT_TO_READ`]), and names that role (the keeper) for the
//! auditor to see; everything else about the ledger is judged as for a writer (no
//! rules, policies, row security, other triggers or indexes: nothing that hides rows
//! or runs code on a read). A superuser's session still reads only a ledger a
//! superuser or itself owns: code a non-superuser attached there would run as the
//! superuser, so it is refused naming the logins that read it.
//!
//! Invariant: one read-only transaction, rolled back; nothing is written.

use super::chain::{self, LedgerRow, Presence};
use crate::{sql_err, DbError};
use postgres::GenericClient;

/// What one read of a ledger found.
pub struct Reading {
    pub presence: Presence,
    /// The role that owns `airlock.ledger` (none without a ledger).
    pub keeper: Option<String>,
    /// Every row, in order ([`chain::read_all`]'s checks).
    pub rows: Vec<LedgerRow>,
    /// [`chain::delivery_era`] of the rows.
    pub era: Option<i64>,
}

/// The ledger as a reader sees it, inside the caller's (read-only) transaction.
pub fn read_in(client: &mut impl GenericClient) -> Result<Reading, DbError> {
    let (presence, keeper) = chain::inspect_with(client, chain::INSPECT_TO_READ)?;
    if presence != Presence::Present {
        return Ok(Reading {
            presence,
            keeper,
            rows: vec![],
            era: None,
        });
    }
    let rows = chain::rows_of_checked(client)?;
    let era = chain::delivery_era(&rows, chain::has_receipt_column(client)?);
    Ok(Reading {
        presence,
        keeper,
        rows,
        era,
    })
}

/// What one read-only transaction reads of a database's ledger: the database's name
/// and [`Reading`].
pub struct ReadBack {
    pub database: String,
    pub rows: Vec<LedgerRow>,
    pub era: Option<i64>,
    /// [`Reading::keeper`].
    pub keeper: Option<String>,
}

/// [`ReadBack`] of the database `client` is connected to, in a read-only transaction
/// rolled back.
pub fn read_back(client: &mut postgres::Client) -> Result<ReadBack, DbError> {
    let mut tx = client
        .build_transaction()
        .read_only(true)
        .start()
        .map_err(|e| sql_err("BEGIN READ ONLY", &e))?;
    let database: String = tx
        // `name`, read as a String by its own type (no cast a role could have made).
        .query_one("SELECT pg_catalog.current_database()", &[])
        .map_err(|e| sql_err("reading the database's name", &e))?
        .get(0);
    let read = read_in(&mut tx)?;
    tx.rollback().map_err(|e| sql_err("ROLLBACK", &e))?;
    Ok(ReadBack {
        database,
        rows: read.rows,
        era: read.era,
        keeper: read.keeper,
    })
}
