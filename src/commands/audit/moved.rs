//! A database that moved to another server: the receipts of one database name more
//! than one server system identifier (`pg_control_system()`), as after an upgrade by
//! dump and restore, a restore elsewhere or a move to a new cluster. The audit says it
//! as a note, one per database, in the order the servers were first seen.
//!
//! Invariant: a note, never a failure (a move is a normal operation; the receipts'
//! signatures and the ledgers judge the rest); only what the receipts themselves say.

use super::{Finding, ReadReceipt, Verdicts};
use std::collections::BTreeMap;

/// The check's name in `--json` and in words.
pub(super) const CHECK: &str = "server moved";

/// One server a database's receipts name: its identifier, its first and last receipt.
struct Seen {
    system_identifier: String,
    first: String,
    last: String,
    receipts: usize,
}

/// A note for each database whose receipts name more than one server.
pub(super) fn note(receipts: &[ReadReceipt], verdicts: &mut Verdicts) {
    let mut by_database: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
    for r in receipts.iter().filter(|r| r.broken.is_none()) {
        let doc = &r.doc;
        let (Some(db), Some(sys)) = (doc.database.as_deref(), doc.system_identifier.as_deref())
        else {
            continue;
        };
        if sys.is_empty() {
            continue;
        }
        let when = doc
            .ledger
            .last()
            .map(|l| l.at.as_str())
            .or(doc.finished_at.as_deref())
            .unwrap_or("");
        by_database.entry(db).or_default().push((when, sys));
    }
    for (database, mut runs) in by_database {
        runs.sort();
        let servers = servers(&runs);
        if servers.len() < 2 {
            continue;
        }
        let said: Vec<String> = servers
            .iter()
            .map(|s| {
                let when = if s.first == s.last {
                    format!("at {}", s.first)
                } else {
                    format!("{} to {}", s.first, s.last)
                };
                format!(
                    "system identifier {} in {} receipt(s), {when}",
                    s.system_identifier, s.receipts
                )
            })
            .collect();
        verdicts.push(
            &format!("database {database}"),
            CHECK,
            Finding::Note,
            format!(
                "the database moved to another server (system identifier changed {} time(s)): {}",
                servers.len() - 1,
                said.join("; then ")
            ),
            "the server system identifier each receipt of this database records (a move by dump and restore, a restore elsewhere or a new cluster changes it; the ledger's hash chain carries over)",
        );
    }
}

/// The servers of one database's runs (sorted by time), each once, in order of first use.
fn servers(runs: &[(&str, &str)]) -> Vec<Seen> {
    let mut out: Vec<Seen> = vec![];
    for (when, sys) in runs {
        match out.iter_mut().find(|s| s.system_identifier == *sys) {
            Some(s) => {
                s.last = when.to_string();
                s.receipts += 1;
            }
            None => out.push(Seen {
                system_identifier: sys.to_string(),
                first: when.to_string(),
                last: when.to_string(),
                receipts: 1,
            }),
        }
    }
    out
}
