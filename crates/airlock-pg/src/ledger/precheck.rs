//! A read-only look at the target's ledger before anything costly (a clone, a key's
//! decryption): the refusal `apply` would give (every tier already applied, a
//! downgrade, another release's sequence…), said first.
//!
//! Invariant: it only reads, outside any deploy lock; it never replaces the check
//! `apply` makes under the lock, it only says earlier what that check would say. A
//! ledger this login cannot read is left to that check (`Unread`).

use crate::session::conn::ConnSpec;
use crate::{ledger::chain as ledger, ledger::policy, DbError};
use airlock_bundle::verified::VerifiedBundle;

/// What the ledger allows a run of this bundle now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Allowed {
    /// The tiers already applied, and the names of the tiers the run would apply.
    Next {
        applied: Vec<String>,
        next: Vec<String>,
    },
    /// The ledger could not be read here (why); the run's own check judges it.
    Unread(String),
}

/// The ledger's verdict on a run of `vb` through `through` (None: to the end):
/// `Err` with the refusal `apply` would give.
pub fn ledger_allows(
    vb: &VerifiedBundle,
    conn: &ConnSpec,
    through: Option<&str>,
) -> Result<Allowed, DbError> {
    let mut client = conn.connect()?;
    // Every look at a database passes the name guard first.
    crate::session::conn::name_guard(&mut client, &vb.manifest().target.database)?;
    let rows = match ledger::inspect(&mut client)? {
        ledger::Presence::Present => match ledger::read_all(&mut client) {
            Ok(rows) => rows,
            Err(e) => return Ok(Allowed::Unread(e.to_string())),
        },
        _ => vec![],
    };
    let (applied, next) = policy::next_tiers(vb.manifest(), vb.id(), &rows, through)?;
    Ok(Allowed::Next {
        applied,
        next: next
            .iter()
            .map(|&i| vb.manifest().tier[i].name.clone())
            .collect(),
    })
}
