//! What a rehearsal's apply did to the rows and bytes of the tables the release
//! destroys or changes, measured exactly on the clone: each table counted before the
//! first tier of a transaction and after every tier, inside that transaction (so a
//! tier's own uncommitted work is seen), by `count(*)` and `pg_total_relation_size`.
//!
//! Invariant: measured only on a rehearsal's clone (an apply on a target never asks);
//! a measurement runs in a savepoint of the deploy transaction and reads only, so one
//! that fails (a bundle role that may not read a table) changes nothing and is said
//! as not measured; a transaction that did not commit leaves nothing measured.

use crate::deploy::options::Observer;
pub use crate::deploy::options::TierEdge;
use crate::DbError;
use schemars::JsonSchema;
use serde::Serialize;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A table's rows and bytes at one moment of the apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize, JsonSchema)]
pub struct Size {
    /// Rows (`count(*)`, exact); 0 for a table the tier dropped.
    pub rows: i64,
    /// Heap, indexes and TOAST (`pg_total_relation_size`); 0 for a dropped table.
    pub bytes: i64,
}

/// One table through one tier.
#[derive(Clone, Debug, Serialize, serde::Deserialize, JsonSchema)]
pub struct TableThrough {
    /// Schema-qualified, as it was before the apply.
    pub table: String,
    pub before: Size,
    pub after: Size,
    /// The tier dropped it (it is gone after).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dropped: bool,
}

/// What one tier did to the tables measured.
#[derive(Clone, Debug, Serialize, serde::Deserialize, JsonSchema)]
pub struct TierMeasured {
    pub tier: String,
    pub tables: Vec<TableThrough>,
    /// Why this tier's tables were not measured, when they were not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The tables to measure: (oid, schema-qualified name), looked up on the clone before
/// the apply.
pub(crate) type Tables = Vec<(u32, String)>;

type Measurement = (TierEdge, Result<BTreeMap<u32, Size>, String>);

/// The rehearsal's apply observer that measures: everything else goes on to `inner`.
pub(crate) struct Meter<'a> {
    inner: &'a dyn Observer,
    tables: Tables,
    /// Taken in the transaction running now.
    pending: RefCell<Vec<Measurement>>,
    /// Taken, and their transaction committed.
    done: RefCell<Vec<Measurement>>,
}

/// Counts and sizes by oid, in one statement (a table the tier dropped is absent).
const MEASURE: &str = "SELECT c.oid, (pg_catalog.xpath('/row/n/text()', \
    pg_catalog.query_to_xml(pg_catalog.format('SELECT pg_catalog.count(*) AS n FROM %s', c.oid::pg_catalog.regclass), \
      false, true, '')))[1]::text::bigint, pg_catalog.pg_total_relation_size(c.oid) \
    FROM pg_catalog.pg_class c WHERE c.oid = ANY ($1::pg_catalog.oid[])";

impl<'a> Meter<'a> {
    pub(crate) fn new(tables: Tables, inner: &'a dyn Observer) -> Meter<'a> {
        Meter {
            inner,
            tables,
            pending: RefCell::new(vec![]),
            done: RefCell::new(vec![]),
        }
    }

    fn take(&self, tx: &mut postgres::Transaction<'_>) -> Result<BTreeMap<u32, Size>, String> {
        let oids: Vec<u32> = self.tables.iter().map(|(o, _)| *o).collect();
        let mut sp = tx.transaction().map_err(|e| crate::pg_message(&e))?;
        // One door: a policy's expression is code its author chose; with row security
        // off a count it would filter fails instead of running it.
        sp.batch_execute("SET LOCAL row_security = off; SET LOCAL transaction_read_only = on")
            .map_err(|e| crate::pg_message(&e))?;
        // The planner's door: counting plans each table, which runs the code attached
        // to it (index expressions…); a table with code not built in is not counted.
        let found =
            crate::door::attached::find(&mut sp, &oids).map_err(|e| crate::pg_message(&e))?;
        if !found.is_empty() {
            let _ = sp.rollback();
            return Err(format!(
                "cannot count here (counting plans the tables, which runs the code attached to them: {}; airlock runs nothing a database role defines)",
                crate::door::attached::describe(&found)
            ));
        }
        let got = sp.query(MEASURE, &[&oids]);
        let _ = sp.rollback();
        let rows = got.map_err(|e| crate::pg_message(&e))?;
        Ok(rows
            .iter()
            .map(|r| {
                (
                    r.get::<_, u32>(0),
                    Size {
                        rows: r.get(1),
                        bytes: r.get(2),
                    },
                )
            })
            .collect())
    }

    /// Per tier that ran (and committed), its tables before and after, in order.
    pub(crate) fn report(self, tiers: &[String]) -> Vec<TierMeasured> {
        let done = self.done.take();
        let mut out = vec![];
        let mut last: Option<&Result<BTreeMap<u32, Size>, String>> = None;
        for (edge, m) in &done {
            let TierEdge::After(i) = edge else {
                last = Some(m);
                continue;
            };
            let tier = tiers.get(*i).cloned().unwrap_or_default();
            let measured = match (last, m) {
                (Some(Ok(before)), Ok(after)) => Ok(self.through(before, after)),
                (Some(Err(e)), _) | (_, Err(e)) => Err(e.clone()),
                (None, _) => Err("nothing measured before it".to_string()),
            };
            out.push(match measured {
                Ok(tables) => TierMeasured {
                    tier,
                    tables,
                    error: None,
                },
                Err(e) => TierMeasured {
                    tier,
                    tables: vec![],
                    error: Some(e),
                },
            });
            last = Some(m);
        }
        out
    }

    fn through(
        &self,
        before: &BTreeMap<u32, Size>,
        after: &BTreeMap<u32, Size>,
    ) -> Vec<TableThrough> {
        let gone = Size { rows: 0, bytes: 0 };
        self.tables
            .iter()
            .filter_map(|(oid, name)| {
                let b = *before.get(oid)?;
                let a = after.get(oid).copied();
                Some(TableThrough {
                    table: name.clone(),
                    before: b,
                    after: a.unwrap_or(gone),
                    dropped: a.is_none(),
                })
            })
            .collect()
    }
}

impl Observer for Meter<'_> {
    fn start(&self, event: &str, files: usize, bytes: u64) {
        // A transaction's tiers begin (again, after a retry): nothing of an earlier
        // attempt counts.
        self.pending.borrow_mut().clear();
        self.inner.start(event, files, bytes);
    }
    fn tier(&self, index: usize, of: usize, name: &str) {
        self.inner.tier(index, of, name);
    }
    fn file(&self, path: &str, bytes: u64) {
        self.inner.file(path, bytes);
    }
    fn file_done(&self, path: &str, bytes: u64) {
        self.inner.file_done(path, bytes);
    }
    fn step(&self, k: usize, of: usize, file: &str, line: usize) {
        self.inner.step(k, of, file, line);
    }
    fn retry(&self, attempt: u32, of: u32, wait: Duration, why: &str) {
        self.inner.retry(attempt, of, wait, why);
    }
    fn notice(&self, line: &str) {
        self.inner.notice(line);
    }
    fn before_commit(&self, tx: &mut postgres::Transaction<'_>) -> Result<(), DbError> {
        self.inner.before_commit(tx)
    }
    fn committed(&self) {
        let mut pending = self.pending.borrow_mut();
        self.done.borrow_mut().extend(pending.drain(..));
        self.inner.committed();
    }
    fn time_alone(&self, path: &str) -> std::collections::BTreeSet<u64> {
        self.inner.time_alone(path)
    }
    fn statement_timed(&self, path: &str, line: u64, started: Instant, took: Duration) {
        self.inner.statement_timed(path, line, started, took);
    }
    fn measure(&self, tx: &mut postgres::Transaction<'_>, edge: TierEdge) {
        if self.tables.is_empty() {
            return;
        }
        let m = self.take(tx);
        self.pending.borrow_mut().push((edge, m));
        self.inner.measure(tx, edge);
    }
}
