//! `plan`'s lock plan: for every tier statement, the existing relations it locks and in
//! which mode (read from PostgreSQL's parse tree, `airlock_sql::locks_in`), their size
//! now (one read-only round trip), the ones that rewrite, scan or index a table under a
//! lock that blocks writes, with the safer form, and the locks a single-transaction
//! release holds from their statement to its COMMIT. Information for the GO/NO-GO,
//! never a refusal.
//!
//! Invariant: reads only; a relation the release creates itself has no size (it does
//! not exist yet), and a lock on it blocks nobody.

mod retype;

use crate::session::hermetic::{quote_literal, render_search_path};
use crate::{sql_err, DbError};
use airlock_bundle::spec::TxMode;
use airlock_bundle::verified::{reader_of, VerifiedBundle};
use airlock_sql::{Lock, LockMode, Work};
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
    /// What the catalog says of the work beyond the statement's text (a type change
    /// PostgreSQL makes without a rewrite).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// `plan`'s lock plan: the locks, or why they could not be read.
#[derive(Clone, Debug, Default, Serialize, JsonSchema)]
pub struct LockPlan {
    pub locks: Vec<PlannedLock>,
    /// Why the lock plan could not be read, when it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What the operator must read about the sizes: a relation another session locked
    /// could not be sized within `--predict-timeout` (the sizes are then the catalog's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// The locks of the tiers `tiers` names (in order), statically.
pub fn of_tiers(vb: &VerifiedBundle, tiers: &[String]) -> Result<Vec<PlannedLock>, DbError> {
    let m = vb.manifest();
    let spec = m.spec();
    let single = spec.bundle.transaction == TxMode::Single;
    let mut out: Vec<PlannedLock> = Vec::new();
    // Which transaction each lock is taken in (an online tier ends the one before it
    // and runs outside any), and where in the release: (tier, file, line).
    let mut segments: Vec<Option<usize>> = Vec::new();
    let mut at: Vec<(usize, usize, usize)> = Vec::new();
    // The last statement of any kind (DML included) each transaction runs.
    let mut ends: std::collections::BTreeMap<usize, (usize, usize, usize)> = Default::default();
    let mut segment = 0;
    let mut added = airlock_sql::Added::default();
    for (t, tier) in spec
        .tier
        .iter()
        .filter(|t| tiers.contains(&t.name))
        .enumerate()
    {
        if tier.online {
            segment += 1;
            for l in out.iter_mut().filter(|l| l.commits_before.is_none()) {
                l.commits_before = Some(tier.name.clone());
            }
        }
        let own = (!tier.online).then_some(segment);
        for (f, file) in tier.files.iter().enumerate() {
            let payload = vb
                .payload(file)
                .map_err(|e| DbError::Unverified(Box::new(e)))?;
            let (locks, last) =
                airlock_sql::locks_to_end(file, &mut reader_of(payload), &mut added)
                    .map_err(|e| DbError::State(format!("reading {file} back: {e}")))?;
            if let (Some(seg), Some(line)) = (own, last) {
                ends.insert(seg, (t, f, line));
            }
            for lock in locks {
                segments.push(own);
                at.push((t, f, lock.line));
                out.push(PlannedLock {
                    tier: tier.name.clone(),
                    lock,
                    size: None,
                    held_to_commit: false,
                    commits_before: None,
                    note: None,
                });
            }
        }
        if tier.online {
            segment += 1;
        }
    }
    // Held to COMMIT: a lock that blocks writes, in a single transaction, taken before
    // the last statement that transaction runs (of any kind: a backfill's UPDATE in a
    // later tier works while the ALTER's lock is held).
    if single {
        for i in 0..out.len() {
            let later = segments[i]
                .and_then(|seg| ends.get(&seg))
                .is_some_and(|end| *end > at[i]);
            out[i].held_to_commit = later && out[i].lock.mode.blocks_writes();
        }
    }
    Ok(out)
}

/// The locks of the rollback files `files` (in order), statically, under the tier
/// name `rollback`. A rollback is one transaction (unless it is online: each statement
/// on its own), so a lock that blocks writes is held from its statement to COMMIT when
/// a statement follows it.
pub fn of_rollback(vb: &VerifiedBundle, files: &[String]) -> Result<Vec<PlannedLock>, DbError> {
    let online = vb
        .manifest()
        .spec()
        .rollback
        .as_ref()
        .is_some_and(|r| r.online);
    let mut out: Vec<PlannedLock> = Vec::new();
    let mut at: Vec<(usize, usize)> = Vec::new();
    let mut added = airlock_sql::Added::default();
    let mut last = None;
    for (f, file) in files.iter().enumerate() {
        let payload = vb
            .payload(file)
            .map_err(|e| DbError::Unverified(Box::new(e)))?;
        let (locks, end) = airlock_sql::locks_to_end(file, &mut reader_of(payload), &mut added)
            .map_err(|e| DbError::State(format!("reading {file} back: {e}")))?;
        if let Some(line) = end {
            last = Some((f, line));
        }
        for lock in locks {
            at.push((f, lock.line));
            out.push(PlannedLock {
                tier: "rollback".into(),
                lock,
                size: None,
                held_to_commit: false,
                commits_before: None,
                note: None,
            });
        }
    }
    // Held to COMMIT: taken before the last statement the transaction runs.
    if let (false, Some(end)) = (online, last) {
        for (l, at) in out.iter_mut().zip(&at) {
            l.held_to_commit = l.lock.mode.blocks_writes() && *at < end;
        }
    }
    Ok(out)
}

/// Take the rewrite back from every `ALTER COLUMN … TYPE` in `locks` (in release
/// order) that PostgreSQL makes without one (`retype`), saying so in its note. A
/// column retyped before in the release is not the catalog's type by then: only each
/// column's first change of an existing table is asked.
fn no_rewrite(client: &mut postgres::Client, path: &[String], locks: &mut [PlannedLock]) {
    let mut seen = std::collections::BTreeSet::new();
    let asked: Vec<usize> = (0..locks.len())
        .filter(|&i| {
            let l = &locks[i];
            let Some(r) = &l.lock.retype else {
                return false;
            };
            let first = seen.insert((l.lock.relation.clone(), r.column.clone()));
            first && r.to.is_some() && l.size.is_some() && l.lock.work == Some(Work::Rewrite)
        })
        .collect();
    let notes = {
        let questions: Vec<retype::Asked<'_>> = asked
            .iter()
            .filter_map(|&i| {
                let l = &locks[i];
                let r = l.lock.retype.as_ref()?;
                Some(retype::Asked {
                    relation: &l.lock.relation,
                    column: &r.column,
                    to: r.to.as_ref()?,
                })
            })
            .collect();
        retype::no_rewrite(client, path, &questions)
    };
    for (&i, note) in asked.iter().zip(notes) {
        if let Some(note) = note {
            let l = &mut locks[i];
            l.lock.work = None;
            l.lock.safer = None;
            l.note = Some(note);
        }
    }
}

/// The lock plan of `read` (the locks [`of_tiers`] or [`of_rollback`] found), with
/// sizes read now, a relation another session locks waited for `within` at most.
/// Information only: a failure to read it is said in its place, never a NO-GO.
pub fn sized(
    client: &mut postgres::Client,
    vb: &VerifiedBundle,
    read: Result<Vec<PlannedLock>, DbError>,
    within: std::time::Duration,
) -> LockPlan {
    let read = read.and_then(|mut locks| {
        let path = vb.manifest().spec().target.search_path();
        let warning = size(client, &path, &mut locks, Some(within))?;
        no_rewrite(client, &path, &mut locks);
        Ok((locks, warning))
    });
    match read {
        Ok((locks, warning)) => LockPlan {
            locks,
            error: None,
            warning,
        },
        Err(e) => LockPlan {
            locks: vec![],
            error: Some(e.to_string()),
            warning: None,
        },
    }
}

/// Fill in the sizes of the relations that exist now, looked up under the bundle's
/// search_path (one round trip, read only, nothing kept). With `within`, a relation
/// another session locks (`pg_total_relation_size` waits for ACCESS EXCLUSIVE to go)
/// is waited for that long at most: then every size is the catalog's (pages as of the
/// last VACUUM/ANALYZE, taking no lock), and the warning returned names the holders.
pub fn size(
    client: &mut postgres::Client,
    search_path: &[String],
    locks: &mut [PlannedLock],
    within: Option<std::time::Duration>,
) -> Result<Option<String>, DbError> {
    if locks.is_empty() {
        return Ok(None);
    }
    let mut names: Vec<&str> = locks.iter().map(|l| l.lock.relation.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let list: Vec<String> = names.iter().map(|n| quote_literal(n)).collect();
    let list = list.join(", ");
    let path = render_search_path(search_path);
    let bound = within
        .map(|d| format!(" SET LOCAL lock_timeout = '{}ms';", d.as_millis().max(1)))
        .unwrap_or_default();
    let read = |client: &mut postgres::Client, select: &str| {
        let got = client.simple_query(&format!(
            "BEGIN READ ONLY; SET LOCAL search_path TO {path};{bound} {select}; ROLLBACK"
        ));
        if got.is_err() {
            // The error left the transaction open (and aborted): end it.
            let _ = client.batch_execute("ROLLBACK");
        }
        got
    };
    let from = format!(
        "FROM pg_catalog.unnest(ARRAY[{list}]::pg_catalog.text[]) AS n \
         JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass(n)::pg_catalog.oid \
         WHERE c.relkind OPERATOR(pg_catalog.=) ANY ('{{r,p,m,i,I,t}}'::pg_catalog.\"char\"[])"
    );
    let mut warning = None;
    let rows = match read(
        client,
        &format!(
            "SELECT n, c.relpages::pg_catalog.int8::pg_catalog.text, pg_catalog.pg_total_relation_size(c.oid)::pg_catalog.text, \
             c.reltuples::pg_catalog.int8::pg_catalog.text {from}"
        ),
    ) {
        Ok(rows) => rows,
        Err(e) if crate::sqlstate(&e) == Some("55P03") => {
            warning = Some(locked_by_others(client, &list, &path, within));
            read(client, &format!("{CATALOG_SIZES} {from}"))
                .map_err(|e| sql_err("reading the locked relations' sizes from the catalog", &e))?
        }
        Err(e) => return Err(sql_err("reading the locked relations' sizes", &e)),
    };
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
    Ok(warning)
}

/// Sizes from the catalog alone (no relation is opened, so no lock is waited for): the
/// heap's, its indexes' and its TOAST table's pages as of the last VACUUM/ANALYZE.
const CATALOG_SIZES: &str = "SELECT n, c.relpages::pg_catalog.int8::pg_catalog.text, \
     ((c.relpages::pg_catalog.int8 \
       OPERATOR(pg_catalog.+) COALESCE((SELECT pg_catalog.sum(i.relpages) FROM pg_catalog.pg_index x \
                   JOIN pg_catalog.pg_class i ON i.oid OPERATOR(pg_catalog.=) x.indexrelid \
                   WHERE x.indrelid OPERATOR(pg_catalog.=) c.oid), 0) \
       OPERATOR(pg_catalog.+) COALESCE((SELECT t.relpages FROM pg_catalog.pg_class t \
                   WHERE t.oid OPERATOR(pg_catalog.=) c.reltoastrelid), 0)) \
      OPERATOR(pg_catalog.*) pg_catalog.current_setting('block_size')::pg_catalog.int8)::pg_catalog.int8::pg_catalog.text, \
     c.reltuples::pg_catalog.int8::pg_catalog.text";

/// Who holds ACCESS EXCLUSIVE on the relations named (`list`, quoted literals): the
/// lock plan's warning when their sizes could not be read in time.
fn locked_by_others(
    client: &mut postgres::Client,
    list: &str,
    path: &str,
    within: Option<std::time::Duration>,
) -> String {
    let holders = client
        .simple_query(&format!(
            "BEGIN READ ONLY; SET LOCAL search_path TO {path}; \
             SELECT DISTINCT l.relation::pg_catalog.regclass::pg_catalog.text, l.pid::pg_catalog.text \
             FROM pg_catalog.pg_locks l WHERE l.granted AND l.mode OPERATOR(pg_catalog.=) 'AccessExclusiveLock' \
             AND l.pid OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid() AND l.relation OPERATOR(pg_catalog.=) ANY \
             (SELECT pg_catalog.to_regclass(n)::pg_catalog.oid FROM pg_catalog.unnest(ARRAY[{list}]::pg_catalog.text[]) AS n) \
             ORDER BY 1, 2; ROLLBACK"
        ))
        .unwrap_or_default();
    let held: Vec<String> = holders
        .iter()
        .filter_map(|m| match m {
            postgres::SimpleQueryMessage::Row(r) => Some(format!(
                "{} (ACCESS EXCLUSIVE, held by backend {})",
                r.get(0).unwrap_or_default(),
                r.get(1).unwrap_or_default()
            )),
            _ => None,
        })
        .collect();
    let held = if held.is_empty() {
        "a relation the tiers lock".to_string()
    } else {
        held.join(", ")
    };
    format!(
        "sizes not read within {} ms: {held} is locked by another session; the sizes shown are the catalog's (pages as of the last VACUUM/ANALYZE), and apply would wait for that lock too",
        within.map_or(0, |d| d.as_millis())
    )
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
