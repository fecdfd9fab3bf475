//! Whether a table's stored bytes are still the ones recorded: its relation files (the
//! main fork of the table, of its TOAST table and of the TOAST index), each 1 GB
//! segment's size, modification and change times (`pg_stat_file`), and the catalog
//! rows that decode its rows. `rehearse` uses it to prove a table unchanged without
//! reading its rows (see [`crate::rehearse::cycle`]).
//!
//! Invariant: a table is [`Files::unchanged`] only when, between the record and now,
//! none of those files was written. The argument, and what it assumes:
//! - every change to a permanent heap table's rows is a change to a page, which
//!   PostgreSQL writes to the table's files (`pwrite`, never `mmap`) at the latest at
//!   the next checkpoint; the caller runs `CHECKPOINT` after the snapshot it claims the
//!   content at, and before comparing. Unlogged tables (their pages are not written by
//!   a checkpoint) and other access methods are never [`Stored::tracked`].
//! - a write, a truncation or an extension sets the file's modification and change
//!   times to the kernel's clock (the change time cannot be set back from user space);
//!   `pg_stat_file` shows them in whole seconds, so a file is trusted only when the
//!   server's clock, read to the millisecond when the times are recorded, is past the
//!   end of the second its times show by at least [`SLACK_MS`] (the kernel stamps
//!   files from a clock that may lag by a tick): any later write then falls in a later
//!   second and shows in the times. A file written in the same second would not.
//!   The server's clock must not step backwards during the rehearsal (checked where
//!   it can be: the clock when compared is not earlier than when recorded).
//! - a table rewritten (TRUNCATE, VACUUM FULL, CLUSTER, a rewriting ALTER TABLE,
//!   REFRESH MATERIALIZED VIEW) gets new files: its file paths differ.
//! - a row's text also depends on catalog rows that change without writing the table:
//!   a column dropped and added again reads as NULL (or the new default) in every old
//!   row, a composite type's attribute likewise. The attributes of the table and of
//!   every composite type its columns reach (through arrays, domains and ranges),
//!   dropped ones and missing-value defaults included, are part of the record.
//! - the visibility of the rows in unchanged pages must not change either: the caller
//!   records only files in which no transaction still running can have written (a
//!   database nobody could connect to since it was copied, or the source of that
//!   copy, which `CREATE DATABASE … TEMPLATE` requires nobody to use).
//!
//! Reading the files needs `pg_stat_file` (superuser, or EXECUTE granted, e.g. through
//! `pg_read_server_files`) and `CHECKPOINT` (superuser, or `pg_checkpoint` from
//! PostgreSQL 15): [`usable`] says whether this login has both.

use crate::catalog::fingerprint::{self, fingerprint_err};
use crate::{sql_err, DbError};
use std::collections::{BTreeMap, BTreeSet};

/// Milliseconds the server's clock must be past the end of the second a file's times
/// show before the file is trusted: the kernel stamps files from its coarse clock,
/// which lags the one `clock_timestamp()` reads by up to a tick (10 ms at 100 Hz).
pub const SLACK_MS: i64 = 50;

/// The server clock (ms since the epoch) from which a file whose times show the
/// second `shown` is settled.
pub fn settled_from(shown: i64) -> i64 {
    (shown.saturating_add(1)).saturating_mul(1000) + SLACK_MS
}

/// The tables `fingerprint --data` reads (kinds `r` and `m` outside `pg_*` and
/// `information_schema`, the ledger left out), each with whether its files hold all of
/// its rows (permanent, heap access method), how its rows decode, and its relation
/// files: the table's, its TOAST table's and the TOAST index's.
const CATALOG_SQL: &str = r#"WITH RECURSIVE tabs AS (
  SELECT c.oid, n.nspname, c.relname, c.reltoastrelid,
    (c.relpersistence OPERATOR(pg_catalog.=) 'p' AND c.relam OPERATOR(pg_catalog.=)
      (SELECT am.oid FROM pg_catalog.pg_am am WHERE am.amname OPERATOR(pg_catalog.=) 'heap')) AS tracked,
    (c.relkind, c.relnatts, c.relispopulated, c.relpersistence, c.relam,
      c.reltoastrelid OPERATOR(pg_catalog.<>) 0)::pg_catalog.text AS shape
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
  WHERE c.relkind OPERATOR(pg_catalog.=) ANY ('{r,m}'::pg_catalog."char"[])
    AND pg_catalog.left(n.nspname, 3) OPERATOR(pg_catalog.<>) 'pg_'
    AND n.nspname OPERATOR(pg_catalog.<>) 'information_schema'
    AND NOT (n.nspname OPERATOR(pg_catalog.=) @LEDGER_SCHEMA@
         AND c.relname OPERATOR(pg_catalog.=) @LEDGER_TABLE@)
),
reach(tab, typ) AS (
  SELECT t.oid, a.atttypid FROM tabs t
  JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) t.oid
  WHERE a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
  UNION
  SELECT r.tab, x.typ FROM reach r
  JOIN pg_catalog.pg_type y ON y.oid OPERATOR(pg_catalog.=) r.typ
  CROSS JOIN LATERAL (
    SELECT y.typelem AS typ
    UNION ALL SELECT y.typbasetype
    UNION ALL SELECT g.rngsubtype FROM pg_catalog.pg_range g
      WHERE g.rngtypid OPERATOR(pg_catalog.=) y.oid
    UNION ALL SELECT g.rngtypid FROM pg_catalog.pg_range g
      WHERE g.rngmultitypid OPERATOR(pg_catalog.=) y.oid
    UNION ALL SELECT a.atttypid FROM pg_catalog.pg_attribute a
      WHERE a.attrelid OPERATOR(pg_catalog.=) y.typrelid
        AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
  ) x
  WHERE x.typ OPERATOR(pg_catalog.<>) 0
),
decoders(tab, rel) AS (
  SELECT t.oid, t.oid FROM tabs t
  UNION
  SELECT r.tab, y.typrelid FROM reach r
  JOIN pg_catalog.pg_type y ON y.oid OPERATOR(pg_catalog.=) r.typ
  WHERE y.typrelid OPERATOR(pg_catalog.<>) 0
)
SELECT t.nspname, t.relname, t.tracked::pg_catalog.text,
  t.shape OPERATOR(pg_catalog.||) COALESCE((SELECT pg_catalog.string_agg(
      (a.attrelid, a.attnum, a.atttypid, a.atttypmod, a.attlen, a.attbyval, a.attalign,
       a.attndims, a.attisdropped, a.atthasmissing, a.attmissingval)::pg_catalog.text,
      ' ' ORDER BY a.attrelid, a.attnum)
    FROM decoders d
    JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) d.rel
    WHERE d.tab OPERATOR(pg_catalog.=) t.oid AND a.attnum OPERATOR(pg_catalog.>) 0), ''),
  pg_catalog.pg_relation_filepath(t.oid),
  pg_catalog.pg_relation_filepath(t.reltoastrelid),
  (SELECT pg_catalog.pg_relation_filepath(i.indexrelid) FROM pg_catalog.pg_index i
    WHERE i.indrelid OPERATOR(pg_catalog.=) t.reltoastrelid
      AND t.reltoastrelid OPERATOR(pg_catalog.<>) 0)
FROM tabs t"#;

/// Size, modification and change times (whole seconds since the epoch) of each path in
/// `$1` (NULL when missing), and the server's clock (whole seconds) when it was read.
const STAT_SQL: &str = "SELECT s.size, \
pg_catalog.date_part('epoch', s.modification)::pg_catalog.int8, \
pg_catalog.date_part('epoch', s.change)::pg_catalog.int8, \
pg_catalog.floor(pg_catalog.date_part('epoch', pg_catalog.clock_timestamp()) OPERATOR(pg_catalog.*) 1000)::pg_catalog.int8 \
FROM pg_catalog.unnest($1::pg_catalog.text[]) WITH ORDINALITY AS p(path, i) \
CROSS JOIN LATERAL pg_catalog.pg_stat_file(p.path, true) AS s ORDER BY p.i";

/// A relation file's segment size in bytes (`RELSEG_SIZE` × `BLCKSZ`).
const SEGMENT_SQL: &str = "SELECT s.setting::pg_catalog.int8 OPERATOR(pg_catalog.*) \
b.setting::pg_catalog.int8 FROM pg_catalog.pg_settings s, pg_catalog.pg_settings b \
WHERE s.name OPERATOR(pg_catalog.=) 'segment_size' AND b.name OPERATOR(pg_catalog.=) 'block_size'";

/// Whether this login may read file times and force a checkpoint.
const USABLE_SQL: &str = "SELECT COALESCE((SELECT r.rolsuper FROM pg_catalog.pg_roles r \
WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER), false), \
pg_catalog.has_function_privilege('pg_catalog.pg_stat_file(pg_catalog.text, pg_catalog.bool)', 'EXECUTE'), \
COALESCE((SELECT pg_catalog.pg_has_role(r.oid, 'MEMBER') FROM pg_catalog.pg_roles r \
WHERE r.rolname OPERATOR(pg_catalog.=) 'pg_checkpoint'), false)";

/// The statements this module sends (for the parser check in `fingerprint`'s tests).
#[cfg(test)]
pub(crate) fn statements() -> Vec<(&'static str, String)> {
    vec![
        ("storage catalog", fingerprint::with_ledger(CATALOG_SQL)),
        ("storage stat", STAT_SQL.into()),
        ("storage segment size", SEGMENT_SQL.into()),
        ("storage usable", USABLE_SQL.into()),
    ]
}

/// One segment file's size, modification and change times (whole seconds), and the
/// server's clock when they were read (milliseconds; not compared).
#[derive(Clone, Copy, Debug)]
struct Stat {
    size: i64,
    modified: i64,
    changed: i64,
    seen: i64,
}

impl Stat {
    fn same(&self, other: &Stat) -> bool {
        (self.size, self.modified, self.changed) == (other.size, other.modified, other.changed)
            && other.seen >= self.seen
    }

    /// Old enough that a later write would show in its times.
    fn settled(&self) -> bool {
        settled_from(self.modified.max(self.changed)) <= self.seen
    }
}

#[derive(Clone, Debug)]
struct Segment {
    path: String,
    /// None: no such file.
    stat: Option<Stat>,
    /// When the file was missing, the server's clock then.
    seen: i64,
}

/// One table's storage as recorded.
#[derive(Clone, Debug)]
struct Stored {
    /// Permanent and of the heap access method: every change to its rows reaches its
    /// files at a checkpoint.
    tracked: bool,
    /// How its rows decode: its shape and the attributes of it and of every composite
    /// type its columns reach.
    decoding: String,
    /// Segment 0 of each relation file.
    rels: Vec<String>,
    /// Every segment PostgreSQL reads, and the first one past them (missing, or not
    /// full).
    segments: Vec<Segment>,
}

impl Stored {
    fn settled(&self) -> bool {
        self.tracked
            && self
                .segments
                .iter()
                .all(|s| s.stat.as_ref().is_none_or(Stat::settled))
    }
}

/// The storage of a database's tables, by table name (`schema.table`).
#[derive(Clone, Debug, Default)]
pub struct Files {
    tables: BTreeMap<String, Stored>,
}

/// Whether this login can read file times and force a checkpoint; why not, if not.
pub fn usable(c: &mut postgres::Client) -> Result<(), String> {
    let row = c
        .query_one(USABLE_SQL, &[])
        .map_err(|e| sql_err("privileges", &e).to_string())?;
    let (superuser, stat, checkpoint): (bool, bool, bool) = (row.get(0), row.get(1), row.get(2));
    match (superuser || stat, superuser || checkpoint) {
        (true, true) => Ok(()),
        (false, _) => Err(
            "this login may not read file times (pg_stat_file: superuser or pg_read_server_files)"
                .into(),
        ),
        (_, false) => {
            Err("this login may not force a checkpoint (superuser or pg_checkpoint)".into())
        }
    }
}

/// The catalog side of each table: (tracked, decoding, relation files).
type Catalog = BTreeMap<String, (bool, String, Vec<String>)>;

/// Read the catalog side in `tx`, at its snapshot, with the fingerprint's pinned
/// settings (a missing value's text depends on them).
fn catalog(tx: &mut postgres::Transaction<'_>) -> Result<Catalog, DbError> {
    let rows = fingerprint::pinned_rows(tx, &fingerprint::with_ledger(CATALOG_SQL), "storage")?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let field = |i: usize| r.get(i).cloned().flatten();
            let name = format!(
                "{}.{}",
                field(0).unwrap_or_default(),
                field(1).unwrap_or_default()
            );
            let rels = (4..7).filter_map(field).collect();
            (
                name,
                (
                    field(2).as_deref() == Some("true"),
                    field(3).unwrap_or_default(),
                    rels,
                ),
            )
        })
        .collect())
}

/// The stats of `paths`, in order.
fn stat(c: &mut impl postgres::GenericClient, paths: &[String]) -> Result<Vec<Segment>, DbError> {
    let rows = c
        .query(STAT_SQL, &[&paths])
        .map_err(|e| fingerprint_err("pg_stat_file", &e))?;
    if rows.len() != paths.len() {
        return Err(DbError::State(format!(
            "pg_stat_file answered {} rows for {} files",
            rows.len(),
            paths.len()
        )));
    }
    Ok(paths
        .iter()
        .zip(rows)
        .map(|(path, r)| {
            let seen: i64 = r.get(3);
            let size: Option<i64> = r.get(0);
            let stat = size.map(|size| Stat {
                size,
                modified: r.get::<_, Option<i64>>(1).unwrap_or(i64::MAX),
                changed: r.get::<_, Option<i64>>(2).unwrap_or(i64::MAX),
                seen,
            });
            Segment {
                path: path.clone(),
                stat,
                seen,
            }
        })
        .collect())
}

/// A segment's path: `rel`, `rel.1`, `rel.2`…
fn segment_path(rel: &str, n: usize) -> String {
    if n == 0 {
        rel.to_string()
    } else {
        format!("{rel}.{n}")
    }
}

/// Every segment of each relation PostgreSQL reads, and the first one past them: a
/// full segment is followed by the next.
fn segments_of(
    c: &mut impl postgres::GenericClient,
    rels: &[&String],
) -> Result<BTreeMap<String, Vec<Segment>>, DbError> {
    let full: i64 = c
        .query_one(SEGMENT_SQL, &[])
        .map_err(|e| fingerprint_err("segment size", &e))?
        .get(0);
    let mut out: BTreeMap<String, Vec<Segment>> = BTreeMap::new();
    let mut pending: Vec<(&String, usize)> = rels.iter().map(|r| (*r, 0)).collect();
    while !pending.is_empty() {
        let paths: Vec<String> = pending.iter().map(|(r, n)| segment_path(r, *n)).collect();
        let stats = stat(c, &paths)?;
        let mut next = vec![];
        for ((rel, n), seg) in pending.into_iter().zip(stats) {
            if seg.stat.is_some_and(|s| s.size >= full) {
                next.push((rel, n + 1));
            }
            out.entry(rel.clone()).or_default().push(seg);
        }
        pending = next;
    }
    Ok(out)
}

impl Files {
    /// Record the storage of every table of the database `c` is connected to.
    pub fn record(c: &mut postgres::Client) -> Result<Files, DbError> {
        let mut tx = fingerprint::begin_leader(c)?;
        let cat = catalog(&mut tx)?;
        let rels: Vec<&String> = cat.values().flat_map(|(_, _, r)| r).collect();
        let mut segs = segments_of(&mut tx, &rels)?;
        tx.rollback().map_err(|e| fingerprint_err("ROLLBACK", &e))?;
        let tables = cat
            .into_iter()
            .map(|(name, (tracked, decoding, rels))| {
                let segments = rels
                    .iter()
                    .flat_map(|r| segs.remove(r).unwrap_or_default())
                    .collect();
                (
                    name,
                    Stored {
                        tracked,
                        decoding,
                        rels,
                        segments,
                    },
                )
            })
            .collect();
        Ok(Files { tables })
    }

    /// The record of a copy of the database (`CREATE DATABASE … TEMPLATE` keeps each
    /// relation's file name, in the copy's directory), read now through `c`: every
    /// path with the database's directory `from` (its OID) replaced by `to`, the same
    /// catalog side. A path that does not name `from` leaves its table untracked.
    pub fn copied(
        &self,
        from: u32,
        to: u32,
        c: &mut impl postgres::GenericClient,
    ) -> Result<Files, DbError> {
        let mut copy = self.moved(from, to);
        copy.restat(c)?;
        Ok(copy)
    }

    /// [`Files::copied`] before reading the copy's files.
    fn moved(&self, from: u32, to: u32) -> Files {
        let (from, to) = (from.to_string(), to.to_string());
        let moved = |path: &str| -> Option<String> {
            let mut parts: Vec<&str> = path.split('/').collect();
            let n = parts.len();
            (n >= 3 && parts[n - 2] == from).then(|| {
                parts[n - 2] = &to;
                parts.join("/")
            })
        };
        let tables = self
            .tables
            .iter()
            .map(|(name, s)| {
                let rels: Option<Vec<String>> = s.rels.iter().map(|r| moved(r)).collect();
                let segments: Option<Vec<Segment>> = s
                    .segments
                    .iter()
                    .map(|seg| {
                        moved(&seg.path).map(|path| Segment {
                            path,
                            ..seg.clone()
                        })
                    })
                    .collect();
                let stored = match (rels, segments) {
                    (Some(rels), Some(segments)) => Stored {
                        rels,
                        segments,
                        ..s.clone()
                    },
                    _ => Stored {
                        tracked: false,
                        ..s.clone()
                    },
                };
                (name.clone(), stored)
            })
            .collect();
        Files { tables }
    }

    /// Read every recorded segment's times again (the same segments).
    pub fn restat(&mut self, c: &mut impl postgres::GenericClient) -> Result<(), DbError> {
        let paths: Vec<String> = self
            .tables
            .values()
            .flat_map(|s| s.segments.iter().map(|seg| seg.path.clone()))
            .collect();
        let mut fresh = stat(c, &paths)?.into_iter();
        for s in self.tables.values_mut() {
            for seg in &mut s.segments {
                if let Some(f) = fresh.next() {
                    *seg = f;
                }
            }
        }
        Ok(())
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tables.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.tables.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }

    pub fn segment_count(&self) -> usize {
        self.tables.values().map(|s| s.segments.len()).sum()
    }

    /// Whether `table` was recorded, is tracked, and its files were old enough when
    /// recorded that a later write shows.
    pub fn settled(&self, table: &str) -> bool {
        self.tables.get(table).is_some_and(Stored::settled)
    }

    /// The bytes of tracked tables among `wanted` not yet settled, and the server time
    /// (milliseconds since the epoch) from which all of their files would be.
    pub fn unsettled(&self, wanted: impl Fn(&str) -> bool) -> (i64, i64) {
        let mut bytes = 0;
        let mut from = 0;
        for (name, s) in &self.tables {
            if !s.tracked || s.settled() || !wanted(name) {
                continue;
            }
            for st in s.segments.iter().filter_map(|seg| seg.stat.as_ref()) {
                bytes += st.size;
                from = from.max(settled_from(st.modified.max(st.changed)));
            }
        }
        (bytes, from)
    }

    /// The tables whose storage is now as recorded: settled when recorded, tracked, the
    /// same relation files and decoding now (read in `tx`, at its snapshot), and every
    /// segment's size and times the same (read now: run `CHECKPOINT` between the
    /// snapshot and this call).
    pub fn unchanged(
        &self,
        tx: &mut postgres::Transaction<'_>,
    ) -> Result<BTreeSet<String>, DbError> {
        let now = catalog(tx)?;
        let mut current = self.clone();
        current.restat(tx)?;
        Ok(self
            .tables
            .iter()
            .filter(|(name, then)| {
                let (Some(cur), Some((tracked, decoding, rels))) =
                    (current.tables.get(*name), now.get(*name))
                else {
                    return false;
                };
                then.settled()
                    && *tracked
                    && *decoding == then.decoding
                    && *rels == then.rels
                    && then.segments.len() == cur.segments.len()
                    && then
                        .segments
                        .iter()
                        .zip(&cur.segments)
                        .all(|(a, b)| same_segment(a, b))
            })
            .map(|(name, _)| name.clone())
            .collect())
    }
}

fn same_segment(then: &Segment, now: &Segment) -> bool {
    then.path == now.path
        && match (&then.stat, &now.stat) {
            (Some(a), Some(b)) => a.same(b),
            (None, None) => now.seen >= then.seen,
            _ => false,
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(path: &str, size: i64, modified: i64, seen: i64) -> Segment {
        Segment {
            path: path.into(),
            stat: Some(Stat {
                size,
                modified,
                changed: modified,
                seen,
            }),
            seen,
        }
    }

    #[test]
    fn a_file_is_settled_only_once_the_clock_is_past_its_second_and_the_slack() {
        assert!(seg("a", 1, 100, 101_050).stat.unwrap().settled());
        assert!(!seg("a", 1, 100, 101_049).stat.unwrap().settled());
        assert!(!seg("a", 1, 100, 100_999).stat.unwrap().settled());
        let mut s = seg("a", 1, 90, 101_050).stat.unwrap();
        s.changed = 100;
        assert!(s.settled());
        s.changed = 101;
        assert!(!s.settled(), "the change time counts too");
    }

    #[test]
    fn a_segment_is_the_same_only_with_equal_size_and_times_and_a_clock_not_gone_back() {
        let then = seg("base/1/2", 8192, 100, 110);
        assert!(same_segment(&then, &seg("base/1/2", 8192, 100, 120)));
        assert!(!same_segment(&then, &seg("base/1/2", 16384, 100, 120)));
        assert!(!same_segment(&then, &seg("base/1/2", 8192, 111, 120)));
        assert!(!same_segment(&then, &seg("base/1/3", 8192, 100, 120)));
        assert!(!same_segment(&then, &seg("base/1/2", 8192, 100, 109)));
        let missing = |seen| Segment {
            path: "base/1/2.1".into(),
            stat: None,
            seen,
        };
        assert!(same_segment(&missing(5), &missing(6)));
        assert!(!same_segment(&missing(5), &seg("base/1/2.1", 0, 100, 120)));
    }

    #[test]
    fn a_copy_moves_every_path_to_its_database_directory() {
        let mut f = Files::default();
        f.tables.insert(
            "public.t".into(),
            Stored {
                tracked: true,
                decoding: "d".into(),
                rels: vec!["base/5/16384".into(), "pg_tblspc/9/PG_15_1/5/16390".into()],
                segments: vec![
                    seg("base/5/16384", 1, 1, 9),
                    seg("base/5/16384.1", 1, 1, 9),
                    seg("pg_tblspc/9/PG_15_1/5/16390", 1, 1, 9),
                ],
            },
        );
        f.tables.insert(
            "public.odd".into(),
            Stored {
                tracked: true,
                decoding: "d".into(),
                rels: vec!["base/6/1".into()],
                segments: vec![seg("base/6/1", 1, 1, 9)],
            },
        );
        let c = f.moved(5, 77);
        let t = &c.tables["public.t"];
        assert_eq!(t.rels, ["base/77/16384", "pg_tblspc/9/PG_15_1/77/16390"]);
        assert_eq!(t.segments[1].path, "base/77/16384.1");
        assert!(!c.tables["public.odd"].tracked);
    }
}
