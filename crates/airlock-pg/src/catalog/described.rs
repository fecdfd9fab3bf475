//! The schema description kept up to date: taken whole once, then brought up to date
//! by describing again only the objects whose catalog rows changed ([`stamps`]) and
//! every object that depends on one of them, as `pg_depend` records it (a view on a
//! renamed column, a default calling a renamed function, a table whose row type or
//! TOAST table changed). Anything the incremental path does not follow one object at
//! a time (schemas, roles, operators, extensions, what initdb made, and the other
//! catalogs [`stamps`] stamps whole) makes it take the whole description again.
//!
//! `apply` and `rollback` take two fingerprints a transaction; this host keeps the last
//! description of each target in its state directory ([`cache_file`]), so that on a
//! large schema neither needs a whole description unless something it cannot follow
//! changed.
//!
//! A description also knows transactions: those whose every catalog row it saw and
//! that can write no more, so that their rows, though not before the reference, are
//! not taken for changes the next time. They are the transactions visible to the
//! snapshot its stamps were read in (all their rows were recent there, so each object
//! they touched was described again) once the deploy that took it has committed
//! ([`Tracker::committed`]: its own transaction among them, which wrote no catalog row
//! after its last fingerprint), and a subtransaction of the deploy's that has ended
//! ([`Tracker::finished`]: the ledger's creation). Without them, the run right after
//! an apply would describe again everything that apply changed, and the whole schema
//! when it created a schema (the ledger's, on a database's first apply).
//!
//! Invariant: after [`Described::refresh`], [`Described::fingerprint`] equals the
//! fingerprint a whole description ([`fingerprint::compute`]) gives at that moment
//! (tests/fingerprint.rs holds the two equal after every DDL step it tries). Stamps are
//! always read before the description they vouch for: a change committed in between
//! is seen as a change the next time. A transaction is known only once it can write
//! no more and the description saw all it wrote.

use crate::catalog::fingerprint::{self, fingerprint_err, Part, Prepared};
use crate::catalog::stamps::{self, Answer, ContentDigest, Key, Stamp};
use crate::DbError;
use postgres::Transaction;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

/// The objects that depend on the changed ones, as `pg_depend` records it, walked
/// both ways it matters: to what depends on an object (a view, a default, an index,
/// a foreign key), and from an internal part to what it is part of (a row type or a
/// TOAST table to its table, a view's rule to its view, an index to its constraint).
/// A default (pg_attrdef) is described with its table. Each object comes with the
/// relation its description is anchored to (an index's, a trigger's, a rule's or a
/// policy's table; a relation itself), NULL for the others.
const DEPENDENTS_SQL: &str = "WITH RECURSIVE walk (classid, objid) AS (
    SELECT (k OPERATOR(pg_catalog.>>) 32)::pg_catalog.oid,
        (k OPERATOR(pg_catalog.&) 4294967295::pg_catalog.int8)::pg_catalog.oid
    FROM pg_catalog.unnest($1::pg_catalog.int8[]) k
  UNION
    SELECT n.classid, n.objid
    FROM walk w
    CROSS JOIN LATERAL (
        SELECT d.classid, d.objid FROM pg_catalog.pg_depend d
        WHERE d.refclassid OPERATOR(pg_catalog.=) w.classid
          AND d.refobjid OPERATOR(pg_catalog.=) w.objid
        UNION ALL
        SELECT d.refclassid, d.refobjid FROM pg_catalog.pg_depend d
        WHERE d.classid OPERATOR(pg_catalog.=) w.classid
          AND d.objid OPERATOR(pg_catalog.=) w.objid
          AND d.deptype OPERATOR(pg_catalog.=) 'i'
    ) n
)
SELECT (CASE WHEN w.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_attrdef'::pg_catalog.regclass::pg_catalog.oid
            THEN 'pg_catalog.pg_class'::pg_catalog.regclass::pg_catalog.oid ELSE w.classid END::pg_catalog.int8
        OPERATOR(pg_catalog.<<) 32)
    OPERATOR(pg_catalog.|) COALESCE(CASE WHEN w.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_attrdef'::pg_catalog.regclass::pg_catalog.oid
            THEN (SELECT a.adrelid FROM pg_catalog.pg_attrdef a WHERE a.oid OPERATOR(pg_catalog.=) w.objid)
            ELSE w.objid END, 0::pg_catalog.oid)::pg_catalog.int8,
    CASE WHEN w.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass::pg_catalog.oid
            THEN COALESCE((SELECT x.indrelid FROM pg_catalog.pg_index x
                WHERE x.indexrelid OPERATOR(pg_catalog.=) w.objid), w.objid)
        WHEN w.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_trigger'::pg_catalog.regclass::pg_catalog.oid
            THEN (SELECT t.tgrelid FROM pg_catalog.pg_trigger t WHERE t.oid OPERATOR(pg_catalog.=) w.objid)
        WHEN w.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_rewrite'::pg_catalog.regclass::pg_catalog.oid
            THEN (SELECT r.ev_class FROM pg_catalog.pg_rewrite r WHERE r.oid OPERATOR(pg_catalog.=) w.objid)
        WHEN w.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_policy'::pg_catalog.regclass::pg_catalog.oid
            THEN (SELECT p.polrelid FROM pg_catalog.pg_policy p WHERE p.oid OPERATOR(pg_catalog.=) w.objid)
        WHEN w.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_attrdef'::pg_catalog.regclass::pg_catalog.oid
            THEN (SELECT a.adrelid FROM pg_catalog.pg_attrdef a WHERE a.oid OPERATOR(pg_catalog.=) w.objid)
        END
FROM walk w";

/// Of the objects in `$1` (keys of the catalogs in [`DESCRIBED_ONE_BY_ONE`]), those
/// no longer in their own catalog.
const VANISHED_SQL: &str = "WITH live (key) AS (
    SELECT (1259::pg_catalog.int8 OPERATOR(pg_catalog.<<) 32) OPERATOR(pg_catalog.|) x.oid::pg_catalog.int8 FROM pg_catalog.pg_class x
    UNION ALL SELECT (2606::pg_catalog.int8 OPERATOR(pg_catalog.<<) 32) OPERATOR(pg_catalog.|) x.oid::pg_catalog.int8 FROM pg_catalog.pg_constraint x
    UNION ALL SELECT (2620::pg_catalog.int8 OPERATOR(pg_catalog.<<) 32) OPERATOR(pg_catalog.|) x.oid::pg_catalog.int8 FROM pg_catalog.pg_trigger x
    UNION ALL SELECT (2618::pg_catalog.int8 OPERATOR(pg_catalog.<<) 32) OPERATOR(pg_catalog.|) x.oid::pg_catalog.int8 FROM pg_catalog.pg_rewrite x
    UNION ALL SELECT (3256::pg_catalog.int8 OPERATOR(pg_catalog.<<) 32) OPERATOR(pg_catalog.|) x.oid::pg_catalog.int8 FROM pg_catalog.pg_policy x
    UNION ALL SELECT (1247::pg_catalog.int8 OPERATOR(pg_catalog.<<) 32) OPERATOR(pg_catalog.|) x.oid::pg_catalog.int8 FROM pg_catalog.pg_type x
    UNION ALL SELECT (1255::pg_catalog.int8 OPERATOR(pg_catalog.<<) 32) OPERATOR(pg_catalog.|) x.oid::pg_catalog.int8 FROM pg_catalog.pg_proc x
)
SELECT k FROM pg_catalog.unnest($1::pg_catalog.int8[]) k
WHERE NOT (k OPERATOR(pg_catalog.=) ANY (SELECT live.key FROM live))";

/// The catalogs whose objects the restricted description describes one at a time
/// (see [`fingerprint::restricted_sql`]).
const DESCRIBED_ONE_BY_ONE: [u32; 7] = [
    1259, // pg_class
    2606, // pg_constraint
    2620, // pg_trigger
    2618, // pg_rewrite
    3256, // pg_policy
    1247, // pg_type
    1255, // pg_proc
];

fn class_of(key: Key) -> u32 {
    (key >> 32) as u32
}

fn object_of(key: Key) -> u32 {
    (key & 0xffff_ffff) as u32
}

/// Why the whole description was taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Whole {
    /// There was no earlier description (or it was taken for another server version
    /// or another airlock).
    First,
    /// Too many transactions since the earlier one to tell new rows by xmin.
    OutOfReach,
    /// Rows of a catalog stamped whole changed (catalog OID).
    Catalog(u32),
    /// An object of a kind not described one at a time changed or depends on what
    /// changed (its key).
    Object(Key),
    /// The schema is small (fewer than [`SMALL`] objects): describing it whole costs less
    /// than planning the incremental statements on a connection, and than reading the
    /// stamps they follow changes from.
    Small,
}

/// A schema of fewer objects than this is described whole every time, never followed
/// incrementally: planning the summary, the per-object stamps and the restricted
/// description on a connection (~20 ms), and reading every object's stamps with a
/// whole description (~7 ms at 400 objects), costs what describing ~800 objects again
/// does. kratos's 346 migrations leave 396 objects; a run of theirs takes four
/// descriptions (before and after the main transaction, after each online tier), the
/// last two of them ~11 ms each whole with the plan already made.
const SMALL: usize = 500;

/// Whether the database holds fewer than [`SMALL`] relations (not counting TOAST
/// tables and their indexes) and functions of its own (OID 16384 and up): two counts
/// by the catalogs' OID indexes, each stopping at [`SMALL`], so a large database costs
/// no more than a small one. Asked before a whole description, whose stamps are read
/// only when the answer is no (a proxy for its part count, which is known only once
/// it is taken).
const FEW_OBJECTS_SQL: &str =
    "SELECT (SELECT pg_catalog.count(*) FROM (SELECT FROM pg_catalog.pg_class c
        WHERE c.oid OPERATOR(pg_catalog.>=) 16384::pg_catalog.oid
          AND c.relnamespace OPERATOR(pg_catalog.<>) 99::pg_catalog.oid LIMIT 500) c)
    OPERATOR(pg_catalog.+) (SELECT pg_catalog.count(*) FROM (SELECT FROM pg_catalog.pg_proc p
        WHERE p.oid OPERATOR(pg_catalog.>=) 16384::pg_catalog.oid LIMIT 500) p)";

fn few_objects(tx: &mut Transaction<'_>) -> Result<bool, DbError> {
    let n: i64 = tx
        .query_one(FEW_OBJECTS_SQL, &[])
        .map_err(|e| fingerprint_err("counting objects", &e))?
        .get(0);
    Ok(n < SMALL as i64)
}

/// What [`Described::refresh`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refresh {
    Whole(Whole),
    /// Nothing changed, or `changed` objects (with their dependents, `described`
    /// in all) were described again; `counted` when every object's rows had to be
    /// counted (rows vanished from an object without a new one).
    Incremental {
        changed: usize,
        described: usize,
        counted: bool,
    },
}

/// How one schema fingerprint of a run was taken, for `--json` (where a deploy's time
/// went): the whole description, or only what changed since the description kept.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct DescriptionStep {
    /// `whole` (every object described) or `incremental` (only the objects whose
    /// catalog rows changed since the description this host keeps, or took earlier
    /// in the run, and what depends on them).
    pub how: String,
    /// Why the whole description was taken: `first` (nothing kept, or kept by another
    /// airlock or server version), `out-of-reach` (too many transactions since),
    /// `catalog OID` (a catalog not followed one object at a time changed), `object
    /// KEY` (an object of a kind not followed one at a time changed or depends on
    /// what changed), `small` (a schema of fewer than 500 objects: described whole every
    /// time, as that costs less than following it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// Objects found changed since the earlier description (incremental only).
    pub changed: usize,
    /// Objects described: all of them (whole), or the changed ones and their
    /// dependents (incremental).
    pub described: usize,
    /// Whether the objects' stamps (what a later description follows changes from)
    /// were read with it: not when the database holds fewer than 500 relations and
    /// functions of its own, whose next description is whole anyway (`small`).
    pub stamped: bool,
}

impl DescriptionStep {
    fn of(refresh: &Refresh, objects: usize, stamped: bool) -> DescriptionStep {
        match refresh {
            Refresh::Whole(why) => DescriptionStep {
                how: "whole".into(),
                why: Some(match why {
                    Whole::First => "first".into(),
                    Whole::OutOfReach => "out-of-reach".into(),
                    Whole::Catalog(oid) => format!("catalog {oid}"),
                    Whole::Object(key) => format!("object {key}"),
                    Whole::Small => "small".into(),
                }),
                changed: 0,
                described: objects,
                stamped,
            },
            Refresh::Incremental {
                changed, described, ..
            } => DescriptionStep {
                how: "incremental".into(),
                why: None,
                changed: *changed,
                described: *described,
                stamped: true,
            },
        }
    }
}

/// A description of one database: its parts by object, the objects' stamps, and the
/// reference snapshot the stamps were read against.
#[derive(Clone, Debug)]
pub struct Described {
    /// The server version and the statements' text it was taken with.
    basis: String,
    reference: u64,
    /// Transactions (full IDs, not before `reference`) that had ended when the stamps
    /// were read, every catalog row of which this description saw: their rows are not
    /// recent (see [`Tracker::finished`] and [`Tracker::committed`]).
    known: Vec<u64>,
    /// The transactions with rows not before `reference` this description saw, its
    /// own transaction's among them: known once that transaction has committed
    /// ([`Tracker::committed`]). Not kept.
    pending: Vec<u64>,
    stamps: HashMap<Key, Stamp>,
    /// The views stamped by content, by their catalog's key.
    contents: BTreeMap<Key, ContentDigest>,
    /// Each object's parts, as [`Part::line`]s.
    parts: KeyMap<Vec<Line>>,
    /// Every part with its object, in the fingerprint's order (and how many times it
    /// occurs).
    ordered: BTreeMap<(Line, Key), u32>,
    /// Whether the stamps were read with it: an unstamped description (of a schema
    /// with few objects: [`Tracker::fingerprint`]) gives its fingerprint and its parts,
    /// never the ground for an incremental one: the next description is whole. Kept
    /// with `reference` 0 (a stamped one's is a transaction ID, never 0).
    stamped: bool,
}

/// A part as the fingerprint hashes it ([`Part::line`]), shared by both maps.
type Line = Arc<str>;

/// A map by key: keys are already well spread OIDs, so a multiplication hashes them.
type KeyMap<V> = HashMap<Key, V, std::hash::BuildHasherDefault<KeyHasher>>;

#[derive(Default)]
struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// The server version and a hash of every statement a description is made with: a
/// description kept across runs is only used by the same airlock on the same
/// server version.
fn basis(full: &str, version: u32) -> String {
    let mut h = Sha256::new();
    for sql in [
        fingerprint::schema_sql(version),
        fingerprint::restricted_sql(version),
        stamps::summary_sql(version),
        stamps::objects_sql(version, true),
        stamps::objects_sql(version, false),
        DEPENDENTS_SQL.to_string(),
    ] {
        h.update(sql.as_bytes());
        h.update([0]);
    }
    format!("{full} {}", hex::encode(&h.finalize()[..12]))
}

/// The low 32 bits of transaction IDs, as the catalogs' `xmin` holds them (an int8[]
/// parameter).
fn xids32(full: &[u64]) -> Vec<i64> {
    full.iter().map(|x| (x & 0xffff_ffff) as i64).collect()
}

/// The full transaction ID whose low 32 bits are `x`, the one nearest `near` (a full
/// ID within 2^31 of it: callers keep to [`stamps::Snapshot::within_reach`]).
fn full_id(x: u32, near: u64) -> u64 {
    let d = (i64::from(x) - (near & 0xffff_ffff) as i64).rem_euclid(1 << 32);
    let d = if d >= 1 << 31 { d - (1 << 32) } else { d };
    (near as i64 + d) as u64
}

/// `xids` (32 bits) as full IDs, by the snapshot they were read in.
fn full_ids(xids: &[u32], snapshot: &stamps::Snapshot) -> Vec<u64> {
    let mut full: Vec<u64> = xids.iter().map(|x| full_id(*x, snapshot.xmax)).collect();
    full.sort_unstable();
    full.dedup();
    full
}

/// The sorted union of two sorted lists of IDs, at most [`MAX_KNOWN`] long (the
/// newest kept: a transaction left out only makes its rows look recent).
fn union(a: &[u64], b: &[u64]) -> Vec<u64> {
    let mut all: Vec<u64> = a.iter().chain(b).copied().collect();
    all.sort_unstable();
    all.dedup();
    let over = all.len().saturating_sub(MAX_KNOWN);
    all.drain(..over);
    all
}

/// The most transactions a description knows (a parameter of every stamps
/// statement).
const MAX_KNOWN: usize = 10_000;

fn answer(
    tx: &mut Transaction<'_>,
    st: &postgres::Statement,
    params: &[&(dyn postgres::types::ToSql + Sync)],
    what: &str,
) -> Result<Answer, DbError> {
    let rows = tx
        .query(st, params)
        .map_err(|e| fingerprint_err(what, &e))?;
    Ok(Answer::read(&rows))
}

impl Described {
    /// The whole description, with every object's stamp (read first) when `stamped`;
    /// without them, only its fingerprint and parts are of use (see
    /// [`Described::stamped`]).
    fn take(
        tx: &mut Transaction<'_>,
        prepared: &mut Prepared,
        version: u32,
        basis: String,
        stamped: bool,
    ) -> Result<Described, DbError> {
        let mut d = Described {
            basis,
            reference: 0,
            known: vec![],
            pending: vec![],
            stamps: HashMap::new(),
            contents: BTreeMap::new(),
            parts: KeyMap::default(),
            ordered: BTreeMap::new(),
            stamped,
        };
        if stamped {
            let st = prepared.get(tx, version, "stamps (every object)", |v| {
                stamps::objects_sql(v, false)
            })?;
            let none: Vec<i64> = vec![];
            let all = answer(tx, &st, &[&0i64, &none], "stamps")?;
            let snapshot = all.snapshot.ok_or_else(|| {
                DbError::State("fingerprint: the stamps came without a snapshot".into())
            })?;
            d.reference = snapshot.xmin;
            d.pending = full_ids(&all.fresh, &snapshot);
            d.stamps = all.by_key;
            d.contents = all.content;
        }
        d.describe_all(tx, prepared, version)?;
        Ok(d)
    }

    /// Every object's parts, described now.
    fn describe_all(
        &mut self,
        tx: &mut Transaction<'_>,
        prepared: &mut Prepared,
        version: u32,
    ) -> Result<(), DbError> {
        for (key, part) in fingerprint::described_parts(tx, prepared, version, None)? {
            self.insert(key, part);
        }
        Ok(())
    }

    fn insert(&mut self, key: Key, part: Part) {
        let line: Line = Arc::from(part.line());
        *self.ordered.entry((line.clone(), key)).or_default() += 1;
        self.parts.entry(key).or_default().push(line);
    }

    fn remove(&mut self, key: Key) {
        for line in self.parts.remove(&key).unwrap_or_default() {
            let entry = (line, key);
            if let Some(n) = self.ordered.get_mut(&entry) {
                *n -= 1;
                if *n == 0 {
                    self.ordered.remove(&entry);
                }
            }
        }
    }

    /// Every part as (kind, name, hash), in the fingerprint's order.
    fn parts(&self) -> impl Iterator<Item = (&str, &str, &str)> {
        self.ordered.iter().flat_map(|((line, _), n)| {
            let mut fields = line.splitn(3, '\0');
            let part = (
                fields.next().unwrap_or_default(),
                fields.next().unwrap_or_default(),
                fields.next().unwrap_or_default(),
            );
            std::iter::repeat_n(part, *n as usize)
        })
    }

    /// The schema fingerprint of this description (as [`fingerprint::compute`] gives
    /// it).
    pub fn fingerprint(&self) -> String {
        fingerprint::digest_lines(
            self.ordered
                .iter()
                .flat_map(|((line, _), n)| std::iter::repeat_n(&**line, *n as usize)),
        )
    }

    /// Bring the description up to date (inside the pinned savepoint).
    fn refresh(
        &mut self,
        tx: &mut Transaction<'_>,
        prepared: &mut Prepared,
        version: u32,
    ) -> Result<Refresh, DbError> {
        match self.refresh_incrementally(tx, prepared, version) {
            Ok(refresh) => Ok(refresh),
            Err(Stop::Whole(why)) => Ok(Refresh::Whole(why)),
            Err(Stop::Failed(e)) => Err(e),
        }
    }

    /// [`Described::refresh`] in its steps: stamps, the objects that changed, their
    /// description, the new stamps. Nothing of `self` changes before the last step, so
    /// a step that stops for a whole description leaves it as it was.
    fn refresh_incrementally(
        &mut self,
        tx: &mut Transaction<'_>,
        prepared: &mut Prepared,
        version: u32,
    ) -> Result<Refresh, Stop> {
        let reference = self.reference as i64;
        let known = xids32(&self.known);
        let st = prepared.get(tx, version, "stamps (summary)", stamps::summary_sql)?;
        let summary = answer(tx, &st, &[&reference, &known], "stamps")?;
        let snapshot = summary.snapshot.ok_or_else(|| {
            DbError::State("fingerprint: the stamps came without a snapshot".into())
        })?;
        self.check_followable(&summary, &snapshot)?;
        let recent: Vec<Key> = summary.by_key.keys().copied().collect();
        let keyed = if recent.is_empty() {
            Answer::default()
        } else {
            let st = prepared.get(tx, version, "stamps (some objects)", |v| {
                stamps::objects_sql(v, true)
            })?;
            let keys: Vec<i64> = recent.iter().map(|k| *k as i64).collect();
            answer(tx, &st, &[&reference, &keys, &known], "stamps")?
        };
        let (changed, counted) =
            self.changed_by_count(tx, prepared, version, &summary, &keyed, &recent)?;
        let (changed, new_stamps) = if counted {
            let (changed, all) = self.recount(tx, prepared, version, &recent)?;
            (changed, Some(all))
        } else {
            (changed, None)
        };
        let described = if changed.is_empty() {
            0
        } else {
            self.describe_again(tx, prepared, version, &changed)?
        };
        match new_stamps {
            Some(all) => self.stamps = all,
            None => {
                for k in &changed {
                    match keyed.by_key.get(k) {
                        Some(s) => self.stamps.insert(*k, *s),
                        None => self.stamps.remove(k),
                    };
                }
            }
        }
        self.reference = snapshot.xmin;
        self.known.retain(|x| *x >= snapshot.xmin);
        // Only the summary's: a transaction visible to its snapshot had all its rows
        // counted recent there, so each of its objects was described again (one that
        // ended later may have changed objects that were not).
        self.pending = union(&self.known, &full_ids(&summary.fresh, &snapshot));
        Ok(Refresh::Incremental {
            changed: changed.len(),
            described,
            counted,
        })
    }

    /// Stop for a whole description when the incremental path cannot follow: too
    /// many transactions since the reference, a view stamped by content changed, or a
    /// catalog stamped whole has a recent row.
    fn check_followable(&self, summary: &Answer, snapshot: &stamps::Snapshot) -> Result<(), Stop> {
        if !snapshot.within_reach(self.reference) {
            return Err(Stop::Whole(Whole::OutOfReach));
        }
        if summary.content != self.contents {
            let k = summary
                .content
                .keys()
                .chain(self.contents.keys())
                .find(|k| summary.content.get(k) != self.contents.get(k))
                .copied()
                .unwrap_or_default();
            return Err(Stop::Whole(Whole::Catalog(class_of(k))));
        }
        if let Some(k) = summary.by_key.keys().find(|k| stamps::global(**k)) {
            return Err(Stop::Whole(Whole::Catalog(class_of(*k))));
        }
        Ok(())
    }

    /// The objects with a recent row, and those dropped since; true when the rows that
    /// are not recent still do not add up, so every object's rows must be counted.
    fn changed_by_count(
        &self,
        tx: &mut Transaction<'_>,
        prepared: &mut Prepared,
        version: u32,
        summary: &Answer,
        keyed: &Answer,
        recent: &[Key],
    ) -> Result<(BTreeSet<Key>, bool), DbError> {
        // The rows that are not recent still add up to what the other objects had:
        // none of them lost one.
        let recent_set: HashSet<Key> = recent.iter().copied().collect();
        let mut expected = stamps::total(
            self.stamps
                .iter()
                .filter(|(k, _)| !recent_set.contains(k))
                .map(|(_, s)| s),
        );
        let mut actual = stamps::not_recent(summary);
        actual.sub(stamps::total(keyed.old.values()));
        let mut changed: BTreeSet<Key> = recent.iter().copied().collect();
        if expected == actual {
            return Ok((changed, false));
        }
        // Objects dropped since: gone from their own catalogs with all their rows.
        let saved: Vec<i64> = self
            .stamps
            .keys()
            .filter(|k| {
                !stamps::global(**k)
                    && !recent_set.contains(k)
                    && DESCRIBED_ONE_BY_ONE.contains(&class_of(**k))
            })
            .map(|k| *k as i64)
            .collect();
        let st = prepared.get(tx, version, "vanished", |_| VANISHED_SQL.to_string())?;
        let gone: Vec<Key> = tx
            .query(&st, &[&saved])
            .map_err(|e| fingerprint_err("vanished", &e))?
            .iter()
            .map(|r| r.get::<_, i64>(0) as u64)
            .collect();
        for k in &gone {
            if let Some(s) = self.stamps.get(k) {
                expected.sub(*s);
            }
            changed.insert(*k);
        }
        Ok((changed, expected != actual))
    }

    /// Every object's stamp counted again: the objects whose stamp differs (with the
    /// recent ones), and the new stamps. Stops when one is a catalog stamped whole.
    fn recount(
        &self,
        tx: &mut Transaction<'_>,
        prepared: &mut Prepared,
        version: u32,
        recent: &[Key],
    ) -> Result<(BTreeSet<Key>, HashMap<Key, Stamp>), Stop> {
        let reference = self.reference as i64;
        let st = prepared.get(tx, version, "stamps (every object)", |v| {
            stamps::objects_sql(v, false)
        })?;
        let known = xids32(&self.known);
        let all = answer(tx, &st, &[&reference, &known], "stamps")?;
        let mut changed: BTreeSet<Key> = recent.iter().copied().collect();
        for k in self.stamps.keys().chain(all.by_key.keys()) {
            if self.stamps.get(k) != all.by_key.get(k) {
                changed.insert(*k);
            }
        }
        if let Some(k) = changed.iter().find(|k| stamps::global(**k)) {
            return Err(Stop::Whole(Whole::Catalog(class_of(*k))));
        }
        Ok((changed, all.by_key))
    }

    /// Describe again the `changed` objects and every object that depends on one;
    /// how many were. Stops when one of them is not described one at a time.
    fn describe_again(
        &mut self,
        tx: &mut Transaction<'_>,
        prepared: &mut Prepared,
        version: u32,
        changed: &BTreeSet<Key>,
    ) -> Result<usize, Stop> {
        let keys: Vec<i64> = changed.iter().map(|k| *k as i64).collect();
        let st = prepared.get(tx, version, "dependents", |_| DEPENDENTS_SQL.to_string())?;
        let rows = tx
            .query(&st, &[&keys])
            .map_err(|e| fingerprint_err("dependents", &e))?;
        let mut affected: BTreeSet<Key> = BTreeSet::new();
        let mut only: BTreeSet<u32> = BTreeSet::new();
        for r in &rows {
            let key = r.get::<_, i64>(0) as u64;
            if stamps::global(key) || !DESCRIBED_ONE_BY_ONE.contains(&class_of(key)) {
                return Err(Stop::Whole(Whole::Object(key)));
            }
            affected.insert(key);
            only.insert(object_of(key));
            if let Some(anchor) = r.get::<_, Option<u32>>(1) {
                only.insert(anchor);
            }
        }
        let only: Vec<u32> = only.into_iter().collect();
        let fresh = fingerprint::described_parts(tx, prepared, version, Some(&only))?;
        for k in &affected {
            self.remove(*k);
        }
        for (k, p) in fresh {
            if affected.contains(&k) {
                self.insert(k, p);
            }
        }
        Ok(affected.len())
    }
}

/// Why a step of [`Described::refresh`] stopped: the whole description is to be
/// taken, or a statement failed.
enum Stop {
    Whole(Whole),
    Failed(DbError),
}

impl From<DbError> for Stop {
    fn from(e: DbError) -> Stop {
        Stop::Failed(e)
    }
}

/// The description this host keeps, being read: on a thread of its own from the
/// tracker's start, while the deploy takes its lock and runs its gates (reading and
/// checking the 6 MB kept at 25,000 objects takes ~20 ms, all of it before the first
/// fingerprint otherwise); here, should the thread not start.
enum Loading {
    Thread(std::thread::JoinHandle<Option<Described>>),
    Here(PathBuf),
}

impl Loading {
    fn start(path: PathBuf) -> Loading {
        let reader = path.clone();
        std::thread::Builder::new()
            .name("airlock-kept".into())
            .spawn(move || load(&reader))
            .map_or(Loading::Here(path), Loading::Thread)
    }

    /// The kept description, if there is one this airlock can use.
    fn finish(self) -> Option<Described> {
        match self {
            Loading::Thread(reading) => reading.join().ok().flatten(),
            Loading::Here(path) => load(&path),
        }
    }
}

/// The fingerprints of one target's deploy: the description kept between them (and,
/// when this host remembers descriptions, between runs).
pub struct Tracker {
    prepared: Prepared,
    described: Option<Described>,
    /// Where this host keeps the target's description; `None`: not kept.
    cache: Option<PathBuf>,
    /// The kept description on its way in, taken by the first fingerprint; `None`
    /// once taken, or when nothing is kept.
    loading: Option<Loading>,
    /// The basis for the server version this connection has ([`basis`]), worked out
    /// once.
    basis: Option<(u32, String)>,
    /// What the last [`Tracker::fingerprint`] did.
    pub last: Option<Refresh>,
    /// How each fingerprint of this tracker was taken, in order.
    pub steps: Vec<DescriptionStep>,
    /// Transactions (32 bits) of the caller's that ended after the last description:
    /// the next one sees all their rows, and knows them ([`Tracker::finished`]).
    finished: Vec<u32>,
    /// Schemas of fewer objects than this are described whole every time ([`SMALL`]).
    small: usize,
}

impl Tracker {
    /// A tracker that keeps the description of (`system_identifier`, `database`)
    /// between runs when `keep` is set.
    pub fn new(system_identifier: &str, database: &str, keep: bool) -> Tracker {
        let cache = keep.then(|| cache_file(system_identifier, database));
        let loading = cache.clone().map(Loading::start);
        Tracker {
            prepared: Prepared::default(),
            described: None,
            cache,
            loading,
            basis: None,
            last: None,
            steps: vec![],
            finished: vec![],
            small: SMALL,
        }
    }

    /// This tracker follows a schema of any size incrementally, reading the stamps
    /// with every whole description (by default a schema of fewer than [`SMALL`] objects
    /// is described whole every time): the incremental path held to the whole one on
    /// a small schema (tests/fingerprint.rs).
    pub fn following_any_size(mut self) -> Tracker {
        self.small = 0;
        self
    }

    /// The schema fingerprint now (64 hex), inside the caller's transaction (only
    /// reads; the transaction's settings are left as they were).
    pub fn fingerprint(&mut self, tx: &mut Transaction<'_>) -> Result<String, DbError> {
        let (version, full) = self.prepared.pin(tx)?;
        let basis = match &self.basis {
            Some((v, b)) if *v == version => b.clone(),
            _ => {
                let b = basis(&full, version);
                self.basis = Some((version, b.clone()));
                b
            }
        };
        if let Some(loading) = self.loading.take() {
            self.described = loading.finish();
        }
        let refresh = match self.described.as_mut() {
            Some(d) if d.basis != basis => Refresh::Whole(Whole::First),
            Some(d) if !d.stamped || d.parts.len() < self.small => Refresh::Whole(Whole::Small),
            Some(d) => d.refresh(tx, &mut self.prepared, version)?,
            None => Refresh::Whole(Whole::First),
        };
        if let Refresh::Whole(_) = &refresh {
            // Stamps are read only for a schema the next description may follow
            // incrementally: a small one is described whole again anyway.
            let stamped = self.small == 0 || !few_objects(tx)?;
            let earlier = self.described.take().map(|d| d.known).unwrap_or_default();
            let mut d = Described::take(tx, &mut self.prepared, version, basis, stamped)?;
            d.known = earlier.into_iter().filter(|x| *x >= d.reference).collect();
            d.pending = union(&d.known, &d.pending);
            self.described = Some(d);
        }
        fingerprint::unpin(tx)?;
        let d = self.described.as_mut().expect("described above");
        // Ended before this description's stamps were read: it saw all their rows.
        // (Without stamps, they wait for the next description, which has them.)
        let finished = if d.stamped {
            std::mem::take(&mut self.finished)
        } else {
            vec![]
        };
        let finished: Vec<u64> = finished
            .into_iter()
            .map(|x| full_id(x, d.reference))
            .filter(|x| *x >= d.reference)
            .collect();
        d.known = union(&d.known, &finished);
        d.pending = union(&d.pending, &finished);
        let described = &*d;
        self.steps.push(DescriptionStep::of(
            &refresh,
            described.parts.len(),
            described.stamped,
        ));
        self.last = Some(refresh);
        Ok(described.fingerprint())
    }

    /// Transaction `xid` (its 32 bits) of the caller's has ended and will write
    /// nothing more: a subtransaction released or rolled back (the ledger's creation).
    /// The next description sees all its rows; the ones after it do not take them for
    /// changes.
    pub fn finished(&mut self, xid: u32) {
        self.finished.push(xid);
    }

    /// The fingerprint of the last description with the objects of `kind` named in
    /// `names` left out: what the schema's fingerprint would be without them (drift
    /// asks whether the indexes a stopped run's build finished are all that changed).
    /// `None` before any description.
    pub fn fingerprint_without(&self, kind: &str, names: &[String]) -> Option<String> {
        let d = self.described.as_ref()?;
        let left_out = |line: &str| {
            let mut fields = line.splitn(3, '\0');
            fields.next() == Some(kind)
                && fields
                    .next()
                    .is_some_and(|name| names.iter().any(|n| n == name))
        };
        Some(fingerprint::digest_lines(
            d.ordered
                .iter()
                .filter(|((line, _), _)| !left_out(line))
                .flat_map(|((line, _), n)| std::iter::repeat_n(&**line, *n as usize)),
        ))
    }

    /// The transaction in which the last description was taken has committed, and
    /// wrote no catalog row after it: every transaction whose rows that description
    /// saw has now ended, so the next description (in this run or, kept, the next)
    /// does not take their rows for changes.
    pub fn committed(&mut self) {
        if let Some(d) = self.described.as_mut() {
            d.known = union(&d.known, &d.pending);
        }
    }

    /// The objects that differ between the schema whose fingerprint was `then` and the
    /// last description this tracker took, when this host kept a description of that
    /// schema (the one the last committed deploy here left: only a commit writes it);
    /// otherwise why they cannot be named. Reads the kept file again: it is only asked
    /// when the fingerprints differ.
    pub fn changes_since(&self, then: &str) -> Result<Vec<fingerprint::SchemaChange>, String> {
        let Some(now) = &self.described else {
            return Err("no description was taken".into());
        };
        let Some(path) = &self.cache else {
            return Err("this run keeps no description of the schema".into());
        };
        let Some(kept) = load(path) else {
            return Err(format!(
                "this host keeps no description of this database ({})",
                path.display()
            ));
        };
        if kept.fingerprint() != then {
            return Err(format!(
                "the description this host keeps ({}) is of schema {}, not of {}: another host or a change since left it",
                path.display(),
                airlock_base::text::short(&kept.fingerprint()),
                airlock_base::text::short(then)
            ));
        }
        Ok(fingerprint::changes(kept.parts(), now.parts()))
    }

    /// Keep the description for the next run (after a commit); a failure is only a
    /// warning, as the next run then takes the whole description.
    pub fn keep(&self) -> Option<String> {
        let (Some(path), Some(d)) = (&self.cache, &self.described) else {
            return None;
        };
        // Without stamps, the next run describes the schema whole again; the parts
        // kept still name what drifted ([`Tracker::changes_since`]).
        save(path, d).err().map(|e| {
            format!(
                "warning: could not keep the schema description in {}: {e}",
                path.display()
            )
        })
    }
}

/// Objects in a description from which it is freed on a thread of its own when its
/// tracker goes (a deploy ends: the process exits right after, and freeing 25,000
/// objects' parts took ~5 ms of it).
const FREED_APART: usize = 5_000;

impl Drop for Tracker {
    fn drop(&mut self) {
        if let Some(d) = self.described.take() {
            if d.parts.len() >= FREED_APART {
                // Should the thread not start, the closure, and `d` with it, is
                // dropped here.
                let _ = std::thread::Builder::new()
                    .name("airlock-free".into())
                    .spawn(move || drop(d));
            }
        }
    }
}

/// Where this host keeps a target's description:
/// `descriptions/<system identifier>/<database name as hex>.bin` in the state
/// directory (next to the remembered ledger heads).
pub fn cache_file(system_identifier: &str, database: &str) -> PathBuf {
    let sys = if system_identifier.is_empty() {
        "unknown-system"
    } else {
        system_identifier
    };
    airlock_base::host::state_dir()
        .join("descriptions")
        .join(sys)
        .join(format!("{}.bin", hex::encode(database.as_bytes())))
}

/// Format 2 holds the content digests (format 1's content stamps were sums of a
/// non-cryptographic hash; its files are not read).
/// Format 3 holds the known transactions.
const MAGIC: &[u8] = b"airlock-description/3\n";

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn encode(d: &Described) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    put_str(&mut out, &d.basis);
    out.extend_from_slice(&d.reference.to_le_bytes());
    out.extend_from_slice(&(d.stamps.len() as u64).to_le_bytes());
    for (k, s) in &d.stamps {
        for v in [*k as i64, s.rows, s.w1, s.w2] {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    out.extend_from_slice(&(d.contents.len() as u64).to_le_bytes());
    for (k, digest) in &d.contents {
        out.extend_from_slice(&k.to_le_bytes());
        out.extend_from_slice(digest);
    }
    out.extend_from_slice(&(d.known.len() as u64).to_le_bytes());
    for x in &d.known {
        out.extend_from_slice(&x.to_le_bytes());
    }
    // In the fingerprint's order, so that reading them back needs no sorting.
    out.extend_from_slice(&(d.ordered.len() as u64).to_le_bytes());
    for ((line, key), n) in &d.ordered {
        out.extend_from_slice(&key.to_le_bytes());
        out.extend_from_slice(&n.to_le_bytes());
        put_str(&mut out, line);
    }
    let sum = Sha256::digest(&out);
    out.extend_from_slice(&sum);
    out
}

/// Reads what [`encode`] wrote; `None` for anything else (a damaged or foreign file
/// is not used: the whole description is taken instead).
fn decode(bytes: &[u8]) -> Option<Described> {
    let (body, sum) = bytes.split_at(bytes.len().checked_sub(32)?);
    if Sha256::digest(body).as_slice() != sum || !body.starts_with(MAGIC) {
        return None;
    }
    let mut r = Reader {
        bytes: &body[MAGIC.len()..],
    };
    let basis = r.string()?;
    let reference = r.u64()?;
    let n = r.u64()?;
    let mut stamps = HashMap::with_capacity(n.min(1 << 24) as usize);
    for _ in 0..n {
        let k = r.u64()?;
        let s = Stamp {
            rows: r.u64()? as i64,
            w1: r.u64()? as i64,
            w2: r.u64()? as i64,
        };
        stamps.insert(k, s);
    }
    let n = r.u64()?;
    let mut contents = BTreeMap::new();
    for _ in 0..n {
        let k = r.u64()?;
        contents.insert(k, ContentDigest::try_from(r.take(32)?).ok()?);
    }
    let n = r.u64()?;
    if n > MAX_KNOWN as u64 {
        return None;
    }
    let mut known = Vec::with_capacity(n as usize);
    for _ in 0..n {
        known.push(r.u64()?);
    }
    let n = r.u64()?;
    let mut parts: KeyMap<Vec<Line>> = KeyMap::default();
    let mut sorted: Vec<((Line, Key), u32)> = Vec::with_capacity(n.min(1 << 24) as usize);
    for _ in 0..n {
        let key = r.u64()?;
        let count = u32::from_le_bytes(r.take(4)?.try_into().ok()?);
        let line: Line = Arc::from(r.string()?);
        let entry = (line.clone(), key);
        if count == 0 || sorted.last().is_some_and(|(last, _)| *last >= entry) {
            return None;
        }
        for _ in 0..count {
            parts.entry(key).or_default().push(line.clone());
        }
        sorted.push((entry, count));
    }
    r.bytes.is_empty().then_some(Described {
        basis,
        reference,
        pending: known.clone(),
        known,
        stamps,
        contents,
        parts,
        ordered: sorted.into_iter().collect(),
        stamped: reference != 0,
    })
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.bytes.len() < n {
            return None;
        }
        let (a, b) = self.bytes.split_at(n);
        self.bytes = b;
        Some(a)
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn string(&mut self) -> Option<String> {
        let n = u32::from_le_bytes(self.take(4)?.try_into().ok()?) as usize;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
}

fn load(path: &std::path::Path) -> Option<Described> {
    decode(&airlock_base::bounded::read_capped(path, airlock_base::bounded::DESCRIBED).ok()?)
}

fn save(path: &std::path::Path, d: &Described) -> std::io::Result<()> {
    let dir = path.parent().expect("a cache file has a directory");
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, &encode(d))?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Every statement of this module (for the fingerprint's unit test, which parses them).
#[cfg(test)]
pub(crate) fn statements() -> Vec<(&'static str, String)> {
    vec![
        ("dependents", DEPENDENTS_SQL.into()),
        ("vanished", VANISHED_SQL.into()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Described {
        let mut stamps = HashMap::new();
        stamps.insert(
            (1259u64 << 32) | 16390,
            Stamp {
                rows: 9,
                w1: -3,
                w2: 7,
            },
        );
        let mut parts = HashMap::new();
        parts.insert(
            (1259u64 << 32) | 16390,
            vec![Part {
                kind: "table".into(),
                name: "public.t".into(),
                hash: "ab".repeat(32),
            }],
        );
        let mut d = Described {
            basis: "15.4 abc".into(),
            reference: 7_000_000_123,
            known: vec![7_000_000_125, 7_000_000_130],
            pending: vec![],
            stamps,
            contents: [(1260u64 << 32, [7u8; 32])].into(),
            parts: KeyMap::default(),
            ordered: BTreeMap::new(),
            stamped: true,
        };
        for (k, list) in parts {
            for p in list {
                d.insert(k, p);
            }
        }
        d
    }

    #[test]
    fn a_kept_description_reads_back_as_it_was_written() {
        let d = sample();
        let back = decode(&encode(&d)).expect("decodes");
        assert_eq!(back.basis, d.basis);
        assert_eq!(back.reference, d.reference);
        assert_eq!(back.known, d.known);
        assert_eq!(back.stamps, d.stamps);
        assert_eq!(back.contents, d.contents);
        assert_eq!(back.fingerprint(), d.fingerprint());
    }

    #[test]
    fn a_description_kept_in_format_1_is_not_used() {
        // What the build with content stamps by hashtextextended wrote: its magic,
        // with a valid checksum.
        let mut body = encode(&sample());
        body.truncate(body.len() - 32);
        body.splice(..MAGIC.len(), b"airlock-description/1\n".iter().copied());
        let sum = Sha256::digest(&body);
        body.extend_from_slice(&sum);
        assert!(decode(&body).is_none());
    }

    #[test]
    fn a_damaged_or_cut_description_is_not_used() {
        let bytes = encode(&sample());
        for i in [0, MAGIC.len() + 3, bytes.len() / 2, bytes.len() - 1] {
            let mut b = bytes.clone();
            b[i] ^= 1;
            assert!(decode(&b).is_none(), "byte {i} flipped");
        }
        assert!(decode(&bytes[..bytes.len() - 1]).is_none());
        assert!(decode(&[]).is_none());
    }

    #[test]
    fn a_description_kept_without_stamps_reads_back_without_them() {
        let mut d = sample();
        d.stamped = false;
        d.reference = 0;
        d.stamps.clear();
        let back = decode(&encode(&d)).expect("reads back");
        assert!(!back.stamped, "followed from stamps it does not have");
        assert_eq!(back.fingerprint(), d.fingerprint());
        assert!(decode(&encode(&sample())).expect("reads back").stamped);
    }

    #[test]
    fn the_object_count_stops_where_a_schema_stops_being_small() {
        let limit = format!("LIMIT {SMALL})");
        assert_eq!(
            FEW_OBJECTS_SQL.matches(&limit).count(),
            2,
            "{FEW_OBJECTS_SQL}"
        );
    }
}
