//! `plan`'s lock plan: for every tier statement, the existing relations it locks and in
//! which mode (read from PostgreSQL's parse tree, `airlock_sql::locks_in`), their size
//! now (one read-only round trip), the ones that rewrite, scan or index a table under a
//! lock that blocks writes, with the safer form, and the locks a single-transaction
//! release holds from their statement to its COMMIT. Information for the GO/NO-GO,
//! never a refusal.
//!
//! Invariant: reads only; a relation the release creates itself has no size (it does
//! not exist yet), and a lock on it blocks nobody.

use super::session::{quote_literal, render_search_path};
use super::{sql_err, DbError};
use airlock_bundle::spec::TxMode;
use airlock_bundle::verified::{reader_of, VerifiedBundle};
use airlock_sql::{Lock, LockMode};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A relation's size when `plan` ran.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RelSize {
    /// Heap, indexes and TOAST (`pg_total_relation_size`).
    pub bytes: i64,
    /// Heap pages (`relpages`, as of the last VACUUM/ANALYZE).
    pub pages: i64,
    /// Row estimate (`reltuples`; -1: never vacuumed or analyzed).
    pub rows: i64,
}

/// One lock of one tier statement.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct PlannedLock {
    pub tier: String,
    #[serde(flatten)]
    pub lock: Lock,
    /// Its size now; `None`: not there yet (the release creates it) or not a table.
    pub size: Option<RelSize>,
    /// In a single-transaction release, held from this statement until its transaction
    /// commits, after the statements and tiers that follow in it (an online tier ends
    /// the transaction before it).
    pub held_to_commit: bool,
    /// The online tier whose start commits the transaction this lock is taken in
    /// (`None`: the release's end does).
    #[serde(skip)]
    pub commits_before: Option<String>,
}

/// `plan`'s lock plan: the locks, or why they could not be read.
#[derive(Clone, Debug, Default, Serialize, JsonSchema)]
pub struct LockPlan {
    pub locks: Vec<PlannedLock>,
    /// Why the lock plan could not be read, when it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The locks of the tiers `tiers` names (in order), statically.
pub fn of_tiers(vb: &VerifiedBundle, tiers: &[String]) -> Result<Vec<PlannedLock>, DbError> {
    let m = vb.manifest();
    let spec = m.spec();
    let single = spec.bundle.transaction == TxMode::Single;
    let mut out: Vec<PlannedLock> = Vec::new();
    // Which transaction each lock is taken in: an online tier ends the one before it
    // and runs outside any.
    let mut segments: Vec<Option<usize>> = Vec::new();
    let mut segment = 0;
    for tier in spec.tier.iter().filter(|t| tiers.contains(&t.name)) {
        if tier.online {
            segment += 1;
            for l in out.iter_mut().filter(|l| l.commits_before.is_none()) {
                l.commits_before = Some(tier.name.clone());
            }
        }
        let before = out.len();
        for file in &tier.files {
            let payload = vb
                .payload(file)
                .map_err(|e| DbError::Unverified(Box::new(e)))?;
            let locks = airlock_sql::locks_in(file, &mut reader_of(payload))
                .map_err(|e| DbError::State(format!("reading {file} back: {e}")))?;
            out.extend(locks.into_iter().map(|lock| PlannedLock {
                tier: tier.name.clone(),
                lock,
                size: None,
                held_to_commit: false,
                commits_before: None,
            }));
        }
        let own = (!tier.online).then_some(segment);
        segments.extend(std::iter::repeat_n(own, out.len() - before));
        if tier.online {
            segment += 1;
        }
    }
    // Held to COMMIT: a lock that blocks writes, in a single transaction, taken before
    // the last statement of that transaction that locks anything.
    if single {
        for i in 0..out.len() {
            let later = segments[i].is_some() && segments[i + 1..].contains(&segments[i]);
            out[i].held_to_commit = later && out[i].lock.mode.blocks_writes();
        }
    }
    Ok(out)
}

/// Fill in the sizes of the relations that exist now, looked up under the bundle's
/// search_path (one round trip, read only, nothing kept).
pub fn size(
    client: &mut postgres::Client,
    search_path: &[String],
    locks: &mut [PlannedLock],
) -> Result<(), DbError> {
    if locks.is_empty() {
        return Ok(());
    }
    let mut names: Vec<&str> = locks.iter().map(|l| l.lock.relation.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let list: Vec<String> = names.iter().map(|n| quote_literal(n)).collect();
    let sql = format!(
        "BEGIN READ ONLY; SET LOCAL search_path TO {}; \
         SELECT n, c.relpages::bigint::text, pg_catalog.pg_total_relation_size(c.oid)::text, \
         c.reltuples::bigint::text \
         FROM pg_catalog.unnest(ARRAY[{}]::text[]) AS n \
         JOIN pg_catalog.pg_class c ON c.oid = pg_catalog.to_regclass(n) \
         WHERE c.relkind IN ('r', 'p', 'm', 'i', 'I', 't'); ROLLBACK",
        render_search_path(search_path),
        list.join(", ")
    );
    let rows = client
        .simple_query(&sql)
        .map_err(|e| sql_err("reading the locked relations' sizes", &e))?;
    let mut sizes = std::collections::BTreeMap::new();
    for m in rows {
        if let postgres::SimpleQueryMessage::Row(r) = m {
            let num = |i: usize| r.get(i).and_then(|v| v.parse::<i64>().ok()).unwrap_or(-1);
            sizes.insert(
                r.get(0).unwrap_or_default().to_string(),
                RelSize {
                    pages: num(1),
                    bytes: num(2),
                    rows: num(3),
                },
            );
        }
    }
    for l in locks.iter_mut() {
        l.size = sizes.get(&l.lock.relation).cloned();
    }
    Ok(())
}

/// What the GO/NO-GO should look at twice: whole-table work under a lock that blocks
/// writes on a table that has rows, and write-blocking locks held to COMMIT.
pub fn attention(locks: &[PlannedLock]) -> Vec<&PlannedLock> {
    locks
        .iter()
        .filter(|l| l.size.as_ref().is_some_and(|s| s.pages > 0 || s.rows > 0))
        .filter(|l| l.lock.flagged() || (l.held_to_commit && l.lock.mode >= LockMode::Share))
        .collect()
}
