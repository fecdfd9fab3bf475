//! Where the bundle must commit between migrations, as the peer tool does: the peer
//! commits each migration before the next runs, the bundle runs them in one
//! transaction (`transaction = "single"`), and two things need the peer's commit:
//!
//! - a migration the peer runs outside a transaction (goose's `NO TRANSACTION`,
//!   dbmate's `transaction:false`), whatever it holds: an `online = true` tier when
//!   every statement of it is fit to run online (each statement then commits, as the
//!   peer runs it), else a transaction of its own;
//! - a migration that uses an enum value an earlier migration adds (`ALTER TYPE …
//!   ADD VALUE`): the server refuses the use before the transaction that added the
//!   value commits (lint's `enum_values.rs` finds such uses).
//!
//! A transaction of its own is `transaction = "per-tier"` for the whole bundle (the
//! format has no commit between two tiers of a single transaction but an online
//! tier): each tier then commits on its own, as each migration commits under the
//! peer. Every such split is reported, with why.
//!
//! Invariant: nothing is rewritten: only how the tiers commit changes.

use airlock_sql::{check, check_noted, enum_uses_after, EnumValueAdded, SqlRole};

/// How a migration the peer runs outside a transaction is run here.
pub(super) enum Apart {
    /// An online tier: every statement fits one.
    Online,
    /// Its own transaction (the bundle goes per-tier): why it cannot be online.
    OwnTransaction(String),
}

/// How the script `file` (its bytes), run outside a transaction by the peer, runs.
pub(super) fn apart(file: &str, bytes: &[u8]) -> Apart {
    let Ok(sql) = std::str::from_utf8(bytes) else {
        return Apart::OwnTransaction("not UTF-8".into());
    };
    match check(file, sql, SqlRole::Online).into_iter().next() {
        None => Apart::Online,
        Some(p) => Apart::OwnTransaction(format!(
            "line {}: {}",
            p.line,
            p.message
                .split(" (an online tier holds only")
                .next()
                .unwrap_or_default()
        )),
    }
}

/// What the change of a tier committing apart says.
pub(super) const ONLINE_APART: &str = "run outside a transaction by the peer tool (goose's `NO TRANSACTION`, dbmate's `transaction:false`): an `online = true` tier, as written, each statement committing as the peer runs it";

/// Why the bundle commits each tier on its own for a migration the peer runs outside
/// a transaction that no online tier can hold.
pub(super) fn own_transaction(label: &str, why: &str) -> String {
    format!("`{label}` is run outside a transaction by the peer tool (goose's `NO TRANSACTION`, dbmate's `transaction:false`) and cannot be an online tier ({why}): the bundle commits each tier on its own (`transaction = \"per-tier\"`), as the peer commits each migration")
}

/// For each tier (name, files, online) with its up script's bytes (`ups`, one per
/// tier, in order): the uses of an enum value that an earlier tier of the same
/// transaction adds, each as why the bundle must commit between them.
pub(super) fn enum_splits(tiers: &[(String, Vec<String>, bool)], ups: &[Vec<u8>]) -> Vec<String> {
    let mut out = vec![];
    let mut earlier: Vec<EnumValueAdded> = vec![];
    for ((name, files, online), bytes) in tiers.iter().zip(ups) {
        if *online {
            // An online tier ends the transaction before it.
            earlier.clear();
            continue;
        }
        let Some(file) = files.first() else { continue };
        if !earlier.is_empty() {
            if let Ok(found) = enum_uses_after(file, &mut &bytes[..], earlier.clone()) {
                out.extend(found.into_iter().map(|p| {
                    let what = p.message.split(" in the same transaction").next().unwrap_or_default();
                    format!("tier `{name}` ({file}:{}) {what}: the server refuses a new enum value before the transaction that adds it commits, and the peer tool commits each migration before the next runs; so the bundle commits each tier on its own (`transaction = \"per-tier\"`), as the peer does", p.line)
                }));
            }
        }
        if let Ok(sql) = std::str::from_utf8(bytes) {
            let added = check_noted(file, sql, SqlRole::Script).enum_values_added;
            earlier.extend(added.into_iter().map(|v| v.from_file(file)));
        }
    }
    out
}
