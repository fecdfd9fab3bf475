//! The rehearsal's proof, table by table: what to read at the end, and the data parts
//! of the entry, the clone's exit and the target's exit fingerprints.
//!
//! Call E a table's content at the clone (the target's at that instant). A side (clone
//! or target) whose storage is as recorded at the clone ([`crate::rehearse::storage`]) holds E
//! at the exit snapshot without being read. Otherwise its rows are read at the exit
//! snapshot and compared with E, known as one of: the table's rows read at the entry
//! snapshot (tables read there because their storage could not be relied on), or the
//! rows read on the other side when that side's storage is as recorded. When neither
//! side's storage is as recorded and the entry did not read the table, E is known
//! nowhere and the table cannot be proven unchanged: both sides' parts differ from the
//! entry's, so both comparisons fail, naming it.
//!
//! Invariant: a side's part equals the entry's part only if that side's content at
//! the exit snapshot is E — never on storage alone unless that side's storage is as
//! recorded (`tests` below check every combination).
//!
//! Without a storage record (a login that may not read file times or force a
//! checkpoint) the entry reads every table and so do both exits: the three `--data`
//! fingerprints of earlier versions.

use crate::catalog::fingerprint::{self, Fingerprint, Level, Opened, Part, Table};
use crate::rehearse::storage::Files;
use crate::session::conn::{self, ConnSpec};
use crate::DbError;
use airlock_bundle::target_db::TargetDatabase;
use std::collections::{BTreeMap, BTreeSet};

/// What is known of one table at the end.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Known {
    /// Its rows were read at the entry snapshot.
    pub entry: bool,
    /// It exists there at the exit snapshot.
    pub on_clone: bool,
    pub on_target: bool,
    /// Its storage there is as recorded at the clone.
    pub clone_same: bool,
    pub target_same: bool,
}

impl Known {
    /// Which sides' rows to read at the exit snapshot: (clone, target). `check_clone`:
    /// the clone's data is compared with E (not after a partial apply, where the clone
    /// is held to the schema before the bundle's first tier).
    pub fn reads(&self, check_clone: bool) -> (bool, bool) {
        let (e, cs, ts) = (self.entry, self.clone_same, self.target_same);
        // The clone: to compare it, or as E for the target.
        let clone = self.on_clone
            && ((check_clone && !cs && (e || ts)) || (self.on_target && cs && !ts && !e));
        // The target: to compare it, or as E for the clone.
        let target = self.on_target
            && ((!ts && (e || cs)) || (check_clone && self.on_clone && ts && !cs && !e));
        (clone, target)
    }

    /// Neither side's storage is as recorded and the entry did not read it.
    pub fn unprovable(&self) -> bool {
        !self.entry && !self.clone_same && !self.target_same
    }
}

/// One table's data parts in the entry, the clone's exit and the target's exit
/// fingerprints (None where the table is not).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parts {
    pub entry: Option<Part>,
    pub clone: Option<Part>,
    pub target: Option<Part>,
}

/// The parts of `name` from what is known and what was read: `entry` at the entry
/// snapshot (None when not read there; `in_entry`: the table was there), `clone` and
/// `target` at the exit snapshot (as [`Known::reads`] asked).
pub fn parts(
    name: &str,
    k: &Known,
    in_entry: bool,
    entry: Option<Part>,
    clone: Option<Part>,
    target: Option<Part>,
) -> Parts {
    let e = entry
        .or_else(|| clone.clone().filter(|_| k.clone_same))
        .or_else(|| target.clone().filter(|_| k.target_same))
        .unwrap_or_else(|| {
            if k.clone_same || k.target_same {
                fingerprint::stand_in(name, "storage as at the clone")
            } else {
                fingerprint::stand_in(name, "unknown: storage changed on the clone and the target")
            }
        });
    let side = |same: bool, read: Option<Part>| {
        if same {
            e.clone()
        } else {
            read.unwrap_or_else(|| fingerprint::stand_in(name, "storage changed, not read"))
        }
    };
    Parts {
        clone: k.on_clone.then(|| side(k.clone_same, clone)),
        target: k.on_target.then(|| side(k.target_same, target)),
        entry: in_entry.then_some(e),
    }
}

/// The storage the proof compares with at the end: the target's, recorded before the
/// clone, and the clone's, read while nobody could connect to it.
pub struct Recorded {
    pub target: Files,
    pub clone: Files,
}

impl Recorded {
    /// Both storages were settled when recorded: the entry need not read the table.
    fn settled(&self, table: &str) -> bool {
        self.target.settled(table) && self.clone.settled(table)
    }
}

/// What the entry step read on the clone: the schema, the tables, and the rows of those
/// whose storage cannot be relied on (every table without a record).
pub struct Entry {
    pub schema: Fingerprint,
    pub tables: Vec<String>,
    pub read: BTreeMap<String, Part>,
}

/// A connection to `expected` (name-guarded).
fn guarded(spec: &ConnSpec, expected: &TargetDatabase) -> Result<postgres::Client, DbError> {
    let mut c = spec.connect()?;
    conn::name_guard(&mut c, expected)?;
    Ok(c)
}

/// The entry on the clone `expected`: schema, tables, and the rows of every table
/// `recorded` does not settle, read at one snapshot by `jobs` connections.
pub fn entry(
    spec: &ConnSpec,
    expected: &str,
    recorded: Option<&Recorded>,
    jobs: usize,
) -> Result<Entry, DbError> {
    let mut c = guarded(spec, &TargetDatabase::Name(expected.into()))?;
    let mut tx = fingerprint::begin_leader(&mut c)?;
    let Opened {
        snapshot,
        schema,
        tables,
    } = fingerprint::open(&mut tx)?;
    let names = tables.iter().map(|t| t.name.clone()).collect();
    let wanted = tables
        .into_iter()
        .filter(|t| recorded.is_none_or(|r| !r.settled(&t.name)))
        .collect();
    let read = fingerprint::table_parts(spec, &snapshot, wanted, Level::Data, jobs)?;
    tx.rollback()
        .map_err(|e| fingerprint::fingerprint_err("ROLLBACK", &e))?;
    Ok(Entry {
        schema,
        tables: names,
        read: read.into_iter().map(|p| (p.name.clone(), p)).collect(),
    })
}

/// One side at the end: its leader transaction (holding the exit snapshot), what it
/// sees, and which tables' storage is as recorded.
struct Side<'a> {
    tx: postgres::Transaction<'a>,
    opened: Opened,
    same: BTreeSet<String>,
}

fn side(client: &mut Result<postgres::Client, DbError>) -> Result<Side<'_>, DbError> {
    let c = match client {
        Ok(c) => c,
        Err(e) => return Err(std::mem::replace(e, DbError::State(String::new()))),
    };
    let mut tx = fingerprint::begin_leader(c)?;
    let opened = fingerprint::open(&mut tx)?;
    Ok(Side {
        tx,
        opened,
        same: BTreeSet::new(),
    })
}

/// Where the end reads: the clone (when it is still there) and the target, each as
/// connected and as the name guard expects it, and the maintenance database (for
/// `CHECKPOINT`).
pub struct Where<'a> {
    pub clone: Option<(&'a ConnSpec, &'a str)>,
    pub target: (&'a ConnSpec, &'a TargetDatabase),
    pub admin: &'a ConnSpec,
}

/// What the end found: the clone's exit fingerprint (None when not read), the
/// target's, and the entry fingerprint both are compared with, each with a data part
/// for every table; the tables nothing could prove unchanged; how many tables each
/// side read and how many were proven by their storage; why storage proved nothing,
/// if it did not.
pub struct Ends {
    pub clone: Option<Result<Fingerprint, DbError>>,
    pub target: Result<Fingerprint, DbError>,
    pub entry: Fingerprint,
    pub unprovable: Vec<String>,
    pub read: (usize, usize),
    pub by_storage: usize,
    pub note: Option<String>,
}

impl Ends {
    /// What the detail of a comparison says about how the data parts were had.
    pub fn how(&self) -> String {
        let mut s = format!(
            "data: {} table(s) unchanged in storage since the clone, read at the end: {} on the clone, {} on the target",
            self.by_storage, self.read.0, self.read.1
        );
        if let Some(n) = &self.note {
            s.push_str(&format!("; {n}"));
        }
        s
    }

    /// The tables nothing could prove unchanged, for a failure's detail.
    pub fn unprovable_note(&self) -> String {
        if self.unprovable.is_empty() {
            return String::new();
        }
        let shown: Vec<&str> = self.unprovable.iter().take(5).map(String::as_str).collect();
        format!(
            "; {} table(s) cannot be proven unchanged: their storage changed both on the clone and on the target (written during the rehearsal, by another session or by autovacuum), and the entry did not read them: {}. Rehearse again while the target is quiet",
            self.unprovable.len(),
            shown.join(", ")
        )
    }
}

/// Read the ends of the proof: both exit snapshots (at once), `CHECKPOINT`, which
/// tables' storage is as recorded, the rows [`Known::reads`] asks for (both sides at
/// once), and the three fingerprints. `check_clone`: the clone's data is compared
/// with the entry.
pub fn ends(
    at: &Where<'_>,
    entry: &Entry,
    recorded: Option<&Recorded>,
    check_clone: bool,
    jobs: usize,
) -> Ends {
    let mut clone_client = at
        .clone
        .map(|(spec, name)| guarded(spec, &TargetDatabase::Name(name.into())));
    let mut target_client = guarded(at.target.0, at.target.1);
    let (mut clone, mut target) = std::thread::scope(|s| {
        let t = s.spawn(|| side(&mut target_client));
        let c = clone_client.as_mut().map(side);
        let t = t
            .join()
            .unwrap_or_else(|_| Err(DbError::State("the target's fingerprint panicked".into())));
        (c, t)
    });
    let note = recorded.and_then(|r| {
        compare_storage(
            at.admin,
            r,
            clone.as_mut().and_then(|c| c.as_mut().ok()),
            target.as_mut().ok(),
        )
    });
    let clone_ok = clone.as_ref().and_then(|c| c.as_ref().ok());
    let target_ok = target.as_ref().ok();
    let (on_clone, on_target) = (tables_of(clone_ok), tables_of(target_ok));
    let known = knowns(entry, (&on_clone, clone_ok), (&on_target, target_ok));
    let wanted = |pick: fn((bool, bool)) -> bool, on: &BTreeMap<String, Table>| -> Vec<Table> {
        known
            .iter()
            .filter(|(_, k)| pick(k.reads(check_clone)))
            .filter_map(|(n, _)| on.get(*n).cloned())
            .collect()
    };
    let (clone_wanted, target_wanted) = (wanted(|r| r.0, &on_clone), wanted(|r| r.1, &on_target));
    let read = (clone_wanted.len(), target_wanted.len());
    let (clone_read, target_read) = read_rows(
        at,
        (clone_ok, clone_wanted),
        (target_ok, target_wanted),
        jobs,
    );
    let assembled = assemble(
        entry,
        &known,
        check_clone,
        (by_part(&clone_read), by_part(&target_read)),
    );
    let finish = |side: Result<Side<'_>, DbError>,
                  read: Option<Result<Vec<Part>, DbError>>,
                  parts: Vec<Part>| {
        let side = side?;
        if let Some(Err(e)) = read {
            return Err(e);
        }
        let mut all = side.opened.schema.parts;
        all.extend(parts);
        let _ = side.tx.rollback();
        Ok(fingerprint::finish(all, Level::Data))
    };
    Ends {
        clone: clone.map(|c| finish(c, clone_read, assembled.clone)),
        target: finish(target, target_read, assembled.target),
        entry: fingerprint::finish(assembled.entry, Level::Data),
        unprovable: assembled.unprovable,
        read,
        by_storage: assembled.by_storage,
        note,
    }
}

/// The tables a side's exit snapshot holds, by name.
fn tables_of(s: Option<&Side<'_>>) -> BTreeMap<String, Table> {
    s.map(|s| {
        s.opened
            .tables
            .iter()
            .map(|t| (t.name.clone(), t.clone()))
            .collect()
    })
    .unwrap_or_default()
}

/// What is known of every table the entry, the clone or the target holds.
fn knowns<'a>(
    entry: &'a Entry,
    (on_clone, clone): (&'a BTreeMap<String, Table>, Option<&Side<'_>>),
    (on_target, target): (&'a BTreeMap<String, Table>, Option<&Side<'_>>),
) -> BTreeMap<&'a String, Known> {
    let none = BTreeSet::new();
    entry
        .tables
        .iter()
        .chain(on_clone.keys())
        .chain(on_target.keys())
        .map(|n| {
            let k = Known {
                entry: entry.read.contains_key(n),
                on_clone: on_clone.contains_key(n),
                on_target: on_target.contains_key(n),
                clone_same: clone.map_or(&none, |s| &s.same).contains(n),
                target_same: target.map_or(&none, |s| &s.same).contains(n),
            };
            (n, k)
        })
        .collect()
}

/// Rows read at the exit snapshots, (clone, target); `None` for a side not opened.
type Read = Option<Result<Vec<Part>, DbError>>;

/// Read the wanted tables' rows on both sides at once (the target on its own thread).
fn read_rows(
    at: &Where<'_>,
    (clone, clone_wanted): (Option<&Side<'_>>, Vec<Table>),
    (target, target_wanted): (Option<&Side<'_>>, Vec<Table>),
    jobs: usize,
) -> (Read, Read) {
    std::thread::scope(|s| {
        let t = target.map(|side| {
            let snapshot = side.opened.snapshot.clone();
            s.spawn(move || {
                fingerprint::table_parts(at.target.0, &snapshot, target_wanted, Level::Data, jobs)
            })
        });
        let c = match (clone, at.clone) {
            (Some(side), Some((spec, _))) => Some(fingerprint::table_parts(
                spec,
                &side.opened.snapshot,
                clone_wanted,
                Level::Data,
                jobs,
            )),
            _ => None,
        };
        let t = t.map(|h| {
            h.join()
                .unwrap_or_else(|_| Err(DbError::State("the target's fingerprint panicked".into())))
        });
        (c, t)
    })
}

fn by_part(r: &Read) -> BTreeMap<String, Part> {
    r.as_ref()
        .and_then(|r| r.as_ref().ok())
        .map(|ps| ps.iter().map(|p| (p.name.clone(), p.clone())).collect())
        .unwrap_or_default()
}

/// Each side's data parts, table by table ([`parts`]), and what could not be proven.
struct Assembled {
    entry: Vec<Part>,
    clone: Vec<Part>,
    target: Vec<Part>,
    unprovable: Vec<String>,
    by_storage: usize,
}

fn assemble(
    entry: &Entry,
    known: &BTreeMap<&String, Known>,
    check_clone: bool,
    (cr, tr): (BTreeMap<String, Part>, BTreeMap<String, Part>),
) -> Assembled {
    let in_entry: BTreeSet<&String> = entry.tables.iter().collect();
    let mut out = Assembled {
        entry: entry.schema.parts.clone(),
        clone: vec![],
        target: vec![],
        unprovable: vec![],
        by_storage: 0,
    };
    for (n, k) in known {
        let p = parts(
            n,
            k,
            in_entry.contains(n),
            entry.read.get(*n).cloned(),
            cr.get(*n).cloned(),
            tr.get(*n).cloned(),
        );
        if k.unprovable()
            && p.entry.is_some()
            && (p.target.is_some() || (check_clone && p.clone.is_some()))
        {
            out.unprovable.push((*n).clone());
        }
        if k.clone_same && k.target_same {
            out.by_storage += 1;
        }
        out.entry.extend(p.entry);
        out.clone.extend(p.clone);
        out.target.extend(p.target);
    }
    out
}

/// `CHECKPOINT` (every change made before the exit snapshots reaches the files), then
/// which tables' storage is as recorded on each side; why nothing was compared, if so.
fn compare_storage<'a>(
    admin: &ConnSpec,
    r: &Recorded,
    clone: Option<&mut Side<'a>>,
    target: Option<&mut Side<'a>>,
) -> Option<String> {
    if let Err(e) = admin.connect().and_then(|mut c| {
        c.batch_execute("CHECKPOINT")
            .map_err(|e| crate::sql_err("CHECKPOINT", &e))
    }) {
        return Some(format!("no table proven by its storage: {e}"));
    }
    let mut failed = vec![];
    for (side, files, what) in [(clone, &r.clone, "clone"), (target, &r.target, "target")] {
        if let Some(side) = side {
            match files.unchanged(&mut side.tx) {
                Ok(same) => side.same = same,
                Err(e) => failed.push(format!("the {what}'s storage not compared: {e}")),
            }
        }
    }
    (!failed.is_empty()).then(|| failed.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(v: u8) -> Part {
        Part {
            kind: "data".into(),
            name: "s.t".into(),
            hash: format!("rows {v}"),
        }
    }

    /// Every combination: E is 0; each side's true content is 0 or 1, and 0 whenever
    /// its storage is as recorded; the entry, when read, saw 0. A side passes (its
    /// part equals the entry's) only when its content is 0, and does whenever E is
    /// known and its content is 0.
    #[test]
    fn a_side_passes_exactly_when_its_content_is_the_clones() {
        for bits in 0..64u8 {
            let b = |i: u8| bits & (1 << i) != 0;
            let (entry, cs, ts, check, clone_v, target_v) = (b(0), b(1), b(2), b(3), b(4), b(5));
            let (clone_v, target_v) = (u8::from(clone_v && !cs), u8::from(target_v && !ts));
            let k = Known {
                entry,
                on_clone: true,
                on_target: true,
                clone_same: cs,
                target_same: ts,
            };
            let (rc, rt) = k.reads(check);
            let p = parts(
                "s.t",
                &k,
                true,
                entry.then(|| rows(0)),
                rc.then(|| rows(clone_v)),
                rt.then(|| rows(target_v)),
            );
            let e = p.entry.unwrap();
            let clone_pass = p.clone.unwrap() == e;
            let target_pass = p.target.unwrap() == e;
            let known = entry || cs || ts;
            let why = format!("{k:?} check={check} clone={clone_v} target={target_v}");
            assert!(
                !target_pass || target_v == 0,
                "target passed wrongly: {why}"
            );
            assert_eq!(target_pass, known && target_v == 0, "target: {why}");
            if check {
                assert!(!clone_pass || clone_v == 0, "clone passed wrongly: {why}");
                assert_eq!(clone_pass, known && clone_v == 0, "clone: {why}");
            }
            assert_eq!(k.unprovable(), !known);
        }
    }

    #[test]
    fn nothing_is_read_where_both_storages_are_as_recorded() {
        let k = Known {
            entry: false,
            on_clone: true,
            on_target: true,
            clone_same: true,
            target_same: true,
        };
        assert_eq!(k.reads(true), (false, false));
        let p = parts("s.t", &k, true, None, None, None);
        assert_eq!(p.clone, p.entry);
        assert_eq!(p.target, p.entry);
    }

    #[test]
    fn a_table_only_on_one_side_has_no_part_on_the_other() {
        let k = Known {
            on_clone: true,
            ..Known::default()
        };
        assert_eq!(k.reads(true), (false, false));
        let p = parts("s.t", &k, false, None, None, None);
        assert!(p.entry.is_none() && p.target.is_none() && p.clone.is_some());
    }
}
