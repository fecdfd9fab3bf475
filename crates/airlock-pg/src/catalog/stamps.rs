//! Catalog stamps: which described objects may have changed since the schema
//! description was last taken, found without describing anything.
//!
//! Every catalog row the description (fingerprint.sql) reads belongs to one described
//! object, its *key* (catalog OID × 2^32 + object OID): a column's row to its
//! relation, an enum label to its type, a comment to what it comments on. An object's
//! *stamp* is how many rows it has, plus sums of what PostgreSQL updates in place
//! (an index's state flags). A row is *recent* when its xmin is not before a
//! reference snapshot's xmin, unless its transaction is one the description *knows*
//! (it saw all its rows, and the transaction can write no more: see
//! [`crate::catalog::described`]): every row inserted after that snapshot is recent (its
//! transaction had not started, or was running, then). A row
//! that is not recent existed at the reference snapshot, and can only have vanished
//! since (UPDATE makes a new, recent version): so when the rows that are not recent
//! still add up to what was counted then, every object without a recent row is as it
//! was, and only the objects with one need describing again.
//!
//! Rows of what initdb made (OID below 16384, or in pg_catalog), and every row of the
//! catalogs whose objects are not re-described one by one (schemas, roles,
//! extensions, operators and their classes, collations, text search, foreign data,
//! languages, publications, subscriptions, statistics objects, default and initial
//! privileges, tablespaces), belong to one key per catalog, [`global`]: when such a
//! key changes, the whole description is taken again.
//!
//! The views that show no row versions (roles, user mappings, subscriptions: their
//! catalogs are not readable by everyone) are stamped by *content*, one
//! [`ContentDigest`] a view: the SHA-256 of the sorted SHA-256s of its rows' text.
//! Nobody can change a row and keep the digest without a SHA-256 collision; a sum or
//! an XOR of per-row hashes would not do (a generalized birthday attack, or linear
//! algebra, finds rows that add up to any value).
//!
//! Invariant: the comparison "not before" is PostgreSQL's modulo 2^32 (through
//! `age()`), so it holds while fewer than 2^31 transactions separate the reference
//! from now; callers check that ([`Snapshot::within_reach`]). Every row the
//! description reads is either versioned (counted by object, recent by xmin) or in a
//! content digest.
//! Every statement here names only pg_catalog objects (the fingerprint's unit test
//! parses them).

use std::collections::{BTreeMap, HashMap};

/// A described object: catalog OID × 2^32 + object OID.
pub type Key = u64;

/// The key of the rows that belong to a whole catalog (see the module text).
pub fn global(key: Key) -> bool {
    key & 0xffff_ffff == 0
}

/// The content digest of a view stamped by content (see the module text).
pub type ContentDigest = [u8; 32];

/// An object's rows: how many, and sums (two 32-bit halves) of their weights.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stamp {
    pub rows: i64,
    pub w1: i64,
    pub w2: i64,
}

impl Stamp {
    fn add(&mut self, o: Stamp) {
        self.rows += o.rows;
        self.w1 = self.w1.wrapping_add(o.w1);
        self.w2 = self.w2.wrapping_add(o.w2);
    }

    pub fn sub(&mut self, o: Stamp) {
        self.rows -= o.rows;
        self.w1 = self.w1.wrapping_sub(o.w1);
        self.w2 = self.w2.wrapping_sub(o.w2);
    }
}

/// The 64-bit transaction IDs bounding a statement's snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// Every transaction before it had ended.
    pub xmin: u64,
    /// The next transaction ID to be assigned.
    pub xmax: u64,
}

impl Snapshot {
    /// Whether rows made since `reference` can still be told by xmin (fewer than 2^31
    /// transactions in between, with a margin).
    pub fn within_reach(&self, reference: u64) -> bool {
        self.xmax >= reference && self.xmax - reference < (1 << 30)
    }
}

/// One catalog the description reads rows of.
struct Source {
    /// The FROM clause: one catalog (or view), aliased `x`.
    from: &'static str,
    /// The key's catalog OID (SQL).
    class: &'static str,
    /// The object OID (SQL); its rows belong to the catalog's key when `builtin`.
    object: &'static str,
    /// Rows of what initdb made (SQL condition).
    builtin: &'static str,
    /// What a row adds to the sums (SQL int8), beyond being counted.
    weight: Option<&'static str>,
    /// The column the objects wanted by a keyed query are looked up by; `None` for a
    /// catalog stamped whole (a keyed query never asks for it).
    by: Option<&'static str>,
    /// Rows that count (SQL condition).
    filter: &'static str,
}

const CLASS: &str = "'pg_catalog.pg_class'::pg_catalog.regclass::pg_catalog.oid";
macro_rules! below {
    ($col:literal) => {
        concat!($col, " OPERATOR(pg_catalog.<) 16384::pg_catalog.oid")
    };
}

macro_rules! in_catalog {
    ($col:literal, $nsp:literal) => {
        concat!(
            $col,
            " OPERATOR(pg_catalog.<) 16384::pg_catalog.oid OR ",
            $nsp,
            " OPERATOR(pg_catalog.=) 'pg_catalog'::pg_catalog.regnamespace::pg_catalog.oid"
        )
    };
}

/// A catalog whose rows belong to its own objects (by `oid`).
const fn own(from: &'static str, class: &'static str, builtin: &'static str) -> Source {
    Source {
        from,
        class,
        object: "x.oid",
        builtin,
        weight: None,
        by: Some("x.oid"),
        filter: "",
    }
}

/// A catalog whose rows belong to another object (`object`, looked up by it).
const fn part_of(
    from: &'static str,
    class: &'static str,
    object: &'static str,
    builtin: &'static str,
) -> Source {
    Source {
        from,
        class,
        object,
        builtin,
        weight: None,
        by: Some(object),
        filter: "",
    }
}

/// A catalog stamped whole, by row version.
const fn whole(from: &'static str) -> Source {
    Source {
        from,
        class: "x.tableoid",
        object: "0",
        builtin: "",
        weight: None,
        by: None,
        filter: "",
    }
}

/// A view stamped by content: what this role may read of each row.
struct Content {
    /// The FROM clause: one view, aliased `x`.
    from: &'static str,
    /// The catalog behind it (SQL: its OID), whose [`global`] key the digest is for.
    class: &'static str,
    /// A row's text (SQL).
    row: &'static str,
}

/// Every view stamped by content.
fn contents(server_version_num: u32) -> [Content; 3] {
    [
        // pg_authid is not readable by everyone; a password is in no description.
        Content {
            from: "pg_catalog.pg_roles x",
            class: "'pg_catalog.pg_authid'::pg_catalog.regclass::pg_catalog.oid",
            row: "ROW(x.oid, x.rolname)::pg_catalog.text",
        },
        Content {
            from: "pg_catalog.pg_user_mappings x",
            class: "'pg_catalog.pg_user_mapping'::pg_catalog.regclass::pg_catalog.oid",
            row: "ROW(x.umid, x.srvid, x.umuser, x.umoptions)::pg_catalog.text",
        },
        // What anyone may read of a subscription (its connection string is
        // superuser-only).
        Content {
            from: "pg_catalog.pg_subscription x",
            class: "'pg_catalog.pg_subscription'::pg_catalog.regclass::pg_catalog.oid",
            row: if server_version_num >= 150000 {
                SUBSCRIPTION_15
            } else if server_version_num >= 140000 {
                SUBSCRIPTION_14
            } else {
                SUBSCRIPTION_13
            },
        },
    ]
}

/// One row a view stamped by content: ('content', its catalog's key, rows, 0, 0,
/// digest). Each row's text in the database's own encoding (no conversion that could
/// fail or merge two texts), hashed; the hashes sorted and hashed again.
fn content_row(c: &Content) -> String {
    format!(
        "SELECT 'content'::pg_catalog.text, ({})::pg_catalog.int8 OPERATOR(pg_catalog.<<) 32, \
         pg_catalog.count(*), 0::pg_catalog.int8, 0::pg_catalog.int8, \
         pg_catalog.sha256(COALESCE(pg_catalog.string_agg(r.h, ''::pg_catalog.bytea ORDER BY r.h), ''::pg_catalog.bytea)) \
         FROM (SELECT pg_catalog.sha256(pg_catalog.convert_to({}, pg_catalog.getdatabaseencoding())) AS h \
         FROM {}) r",
        c.class, c.row, c.from
    )
}

/// Every catalog row the description reads, by the object it belongs to.
fn sources(server_version_num: u32) -> Vec<Source> {
    let mut sources: Vec<Source> = RELATION_ROWS
        .into_iter()
        .chain(OBJECT_ROWS)
        .chain(SAID_ELSEWHERE)
        .collect();
    sources.push(Source {
        filter: "NOT pg_catalog.starts_with(x.nspname::pg_catalog.text, 'pg_temp_') \
                 AND NOT pg_catalog.starts_with(x.nspname::pg_catalog.text, 'pg_toast_temp_')",
        ..whole("pg_catalog.pg_namespace x")
    });
    sources.extend(STAMPED_WHOLE.into_iter().map(whole));
    if server_version_num >= 150000 {
        sources.push(whole("pg_catalog.pg_publication_namespace x"));
    }
    sources
}

/// A relation's rows: its own, its columns' and defaults', and its kind's (index,
/// inheritance, sequence, partitioning, foreign table).
const RELATION_ROWS: [Source; 8] = [
    own(
        "pg_catalog.pg_class x",
        CLASS,
        in_catalog!("x.oid", "x.relnamespace"),
    ),
    part_of(
        "pg_catalog.pg_attribute x",
        CLASS,
        "x.attrelid",
        below!("x.attrelid"),
    ),
    part_of(
        "pg_catalog.pg_attrdef x",
        CLASS,
        "x.adrelid",
        below!("x.adrelid"),
    ),
    // The state flags CREATE/DROP INDEX CONCURRENTLY set are updated in place.
    Source {
        weight: Some(
            "(CASE WHEN x.indisvalid THEN 1 ELSE 0 END OPERATOR(pg_catalog.+) \
             CASE WHEN x.indisready THEN 2 ELSE 0 END OPERATOR(pg_catalog.+) \
             CASE WHEN x.indislive THEN 4 ELSE 0 END)::pg_catalog.int8",
        ),
        ..part_of(
            "pg_catalog.pg_index x",
            CLASS,
            "x.indexrelid",
            below!("x.indexrelid"),
        )
    },
    part_of(
        "pg_catalog.pg_inherits x",
        CLASS,
        "x.inhrelid",
        below!("x.inhrelid"),
    ),
    part_of(
        "pg_catalog.pg_sequence x",
        CLASS,
        "x.seqrelid",
        below!("x.seqrelid"),
    ),
    part_of(
        "pg_catalog.pg_partitioned_table x",
        CLASS,
        "x.partrelid",
        below!("x.partrelid"),
    ),
    part_of(
        "pg_catalog.pg_foreign_table x",
        CLASS,
        "x.ftrelid",
        below!("x.ftrelid"),
    ),
];

/// The other objects described one by one, with their parts: constraints, triggers,
/// rules, policies, types (enum labels, ranges) and functions (aggregates).
const OBJECT_ROWS: [Source; 9] = [
    own(
        "pg_catalog.pg_constraint x",
        "'pg_catalog.pg_constraint'::pg_catalog.regclass::pg_catalog.oid",
        below!("x.oid"),
    ),
    own(
        "pg_catalog.pg_trigger x",
        "'pg_catalog.pg_trigger'::pg_catalog.regclass::pg_catalog.oid",
        below!("x.oid"),
    ),
    own(
        "pg_catalog.pg_rewrite x",
        "'pg_catalog.pg_rewrite'::pg_catalog.regclass::pg_catalog.oid",
        below!("x.oid"),
    ),
    own(
        "pg_catalog.pg_policy x",
        "'pg_catalog.pg_policy'::pg_catalog.regclass::pg_catalog.oid",
        below!("x.oid"),
    ),
    own(
        "pg_catalog.pg_type x",
        TYPE,
        in_catalog!("x.oid", "x.typnamespace"),
    ),
    part_of(
        "pg_catalog.pg_enum x",
        TYPE,
        "x.enumtypid",
        below!("x.enumtypid"),
    ),
    part_of(
        "pg_catalog.pg_range x",
        TYPE,
        "x.rngtypid",
        below!("x.rngtypid"),
    ),
    own(
        "pg_catalog.pg_proc x",
        PROC,
        in_catalog!("x.oid", "x.pronamespace"),
    ),
    part_of(
        "pg_catalog.pg_aggregate x",
        PROC,
        "x.aggfnoid::pg_catalog.oid",
        "x.aggfnoid::pg_catalog.oid OPERATOR(pg_catalog.<) 16384::pg_catalog.oid",
    ),
];

/// What is said about an object elsewhere: comments, security labels, and the
/// dependencies the description shows (extension membership; every other kind
/// counts too, which only makes more objects look changed).
const SAID_ELSEWHERE: [Source; 3] = [
    part_of(
        "pg_catalog.pg_description x",
        "x.classoid",
        "x.objoid",
        below!("x.objoid"),
    ),
    part_of(
        "pg_catalog.pg_seclabel x",
        "x.classoid",
        "x.objoid",
        below!("x.objoid"),
    ),
    part_of(
        "pg_catalog.pg_depend x",
        "x.classid",
        "x.objid",
        below!("x.objid"),
    ),
];

/// The catalogs stamped whole, by row version (besides pg_namespace, whose temporary
/// schemas do not count, and pg_publication_namespace from PostgreSQL 15).
const STAMPED_WHOLE: [&str; 26] = [
    "pg_catalog.pg_extension x",
    "pg_catalog.pg_operator x",
    "pg_catalog.pg_opclass x",
    "pg_catalog.pg_opfamily x",
    "pg_catalog.pg_amop x",
    "pg_catalog.pg_amproc x",
    "pg_catalog.pg_am x",
    "pg_catalog.pg_cast x",
    "pg_catalog.pg_collation x",
    "pg_catalog.pg_conversion x",
    "pg_catalog.pg_ts_parser x",
    "pg_catalog.pg_ts_template x",
    "pg_catalog.pg_ts_dict x",
    "pg_catalog.pg_ts_config x",
    "pg_catalog.pg_ts_config_map x",
    "pg_catalog.pg_foreign_data_wrapper x",
    "pg_catalog.pg_foreign_server x",
    "pg_catalog.pg_language x",
    "pg_catalog.pg_transform x",
    "pg_catalog.pg_event_trigger x",
    "pg_catalog.pg_publication x",
    "pg_catalog.pg_publication_rel x",
    "pg_catalog.pg_statistic_ext x",
    "pg_catalog.pg_default_acl x",
    "pg_catalog.pg_init_privs x",
    "pg_catalog.pg_tablespace x",
];

const TYPE: &str = "'pg_catalog.pg_type'::pg_catalog.regclass::pg_catalog.oid";
const PROC: &str = "'pg_catalog.pg_proc'::pg_catalog.regclass::pg_catalog.oid";

macro_rules! subscription {
    ($($extra:literal),*) => {
        concat!(
            "ROW(x.oid, x.subdbid, x.subname, x.subowner, \
             x.subenabled, x.subslotname, x.subsynccommit, x.subpublications",
            $(", ", $extra,)*
            ")::pg_catalog.text"
        )
    };
}
const SUBSCRIPTION_13: &str = subscription!();
const SUBSCRIPTION_14: &str = subscription!("x.subbinary", "x.substream");
const SUBSCRIPTION_15: &str = subscription!(
    "x.subbinary",
    "x.substream",
    "x.subtwophasestate",
    "x.subdisableonerr"
);

impl Source {
    fn key(&self) -> String {
        let object = if self.builtin.is_empty() {
            self.object.to_string()
        } else {
            format!(
                "CASE WHEN {} THEN 0::pg_catalog.oid ELSE {} END",
                self.builtin, self.object
            )
        };
        format!(
            "(({})::pg_catalog.int8 OPERATOR(pg_catalog.<<) 32) OPERATOR(pg_catalog.|) ({object})::pg_catalog.int8",
            self.class
        )
    }

    /// The weight's two halves (SQL int4 each).
    fn halves(&self) -> (String, String) {
        match self.weight {
            None => ("0".into(), "0".into()),
            Some(w) => (
                format!("(({w}) OPERATOR(pg_catalog.>>) 32)::pg_catalog.int4"),
                format!(
                    "((({w}) OPERATOR(pg_catalog.&) 4294967295::pg_catalog.int8) \
                     OPERATOR(pg_catalog.-) 2147483648::pg_catalog.int8)::pg_catalog.int4"
                ),
            ),
        }
    }

    /// Whether a row is recent: its xmin not before the reference, and not of a
    /// transaction known to have ended before the earlier description (SQL).
    fn recent(&self) -> &'static str {
        "(pg_catalog.age(x.xmin) OPERATOR(pg_catalog.<=) (SELECT here.age_ref FROM here) \
         AND NOT x.xmin OPERATOR(pg_catalog.=) ANY ((SELECT here.known FROM here)::pg_catalog.xid[]))"
    }

    /// The row's xmin (SQL int8, 32 bits) when it is not before this statement's
    /// snapshot (`here.age_new`), else NULL.
    fn fresh(&self) -> &'static str {
        "CASE WHEN pg_catalog.age(x.xmin) OPERATOR(pg_catalog.<=) (SELECT here.age_new FROM here) \
         THEN x.xmin::pg_catalog.text::pg_catalog.int8 END"
    }

    fn filter(&self) -> String {
        if self.filter.is_empty() {
            "true".into()
        } else {
            format!("({})", self.filter)
        }
    }
}

/// The `here` CTE every statement starts with. Units of `age()` for the reference
/// transaction ID `$reference` (an xid8 as int8): rows with an `age(xmin)` of at most
/// this are recent (`age()` gives 2^31 - 1 for the bootstrap's rows, which are never
/// recent), unless their xmin is one of `$known` (int8[] of 32-bit transaction IDs:
/// transactions whose every catalog row the earlier description saw, see
/// [`crate::catalog::described`]); the units of this statement's snapshot's xmin, the
/// reference of the description taken with it; the snapshot's bounds.
fn here(reference: u8, known: u8) -> String {
    format!(
        "here AS MATERIALIZED (
    SELECT pg_catalog.age(((${reference}::pg_catalog.int8 OPERATOR(pg_catalog.%) 4294967296::pg_catalog.int8)::pg_catalog.text)::pg_catalog.xid) AS age_ref,
        ARRAY(SELECT (k.k::pg_catalog.text)::pg_catalog.xid FROM pg_catalog.unnest(${known}::pg_catalog.int8[]) k (k)) AS known,
        pg_catalog.age(((pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())::pg_catalog.text::pg_catalog.int8 \
            OPERATOR(pg_catalog.%) 4294967296::pg_catalog.int8)::pg_catalog.text)::pg_catalog.xid) AS age_new,
        pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())::pg_catalog.text::pg_catalog.int8 AS xmin64,
        pg_catalog.pg_snapshot_xmax(pg_catalog.pg_current_snapshot())::pg_catalog.text::pg_catalog.int8 AS xmax64
)"
    )
}

/// The snapshot row every statement ends with: ('snapshot', NULL, xmin, xmax, 0, NULL).
const SNAPSHOT_ROW: &str = "SELECT 'snapshot', NULL::pg_catalog.int8, here.xmin64, here.xmax64, 0::pg_catalog.int8, NULL::pg_catalog.bytea FROM here";

/// The summary at reference `$1` (`$2`: the known transactions, see [`here`]): per
/// catalog, every row counted ('all', NULL, rows, w1, w2, NULL, NULL), and the recent
/// rows by object and, for those not before this statement's snapshot, transaction
/// ('recent', key, rows, w1, w2, NULL, xmin); each content digest ([`content_row`]);
/// then the snapshot. Two plain scans a catalog: counting every row needs no
/// expression, and the recent ones are found by a filter on xmin alone. The recent
/// rows of every catalog are grouped once: a grouping a catalog took two to three times
/// as long to plan (19–21 ms on a connection's first use, against 7.5–10.5 ms), and one
/// scan a catalog with the recency judged per row ran twice as long at 10,000 tables.
pub fn summary_sql(server_version_num: u32) -> String {
    let mut recent = vec![];
    let mut parts = vec![];
    for s in sources(server_version_num) {
        let (w1, w2) = s.halves();
        parts.push(format!(
            "SELECT 'all'::pg_catalog.text, NULL::pg_catalog.int8, pg_catalog.count(*), \
             COALESCE(pg_catalog.sum({w1}), 0)::pg_catalog.int8, COALESCE(pg_catalog.sum({w2}), 0)::pg_catalog.int8, \
             NULL::pg_catalog.bytea, NULL::pg_catalog.int8 FROM {} WHERE {}",
            s.from,
            s.filter()
        ));
        recent.push(format!(
            "SELECT {} AS key, {w1} AS w1, {w2} AS w2, {} AS fresh FROM {} WHERE {} AND {}",
            s.key(),
            s.fresh(),
            s.from,
            s.filter(),
            s.recent()
        ));
    }
    parts.push(
        "SELECT 'recent', r.key, pg_catalog.count(*), pg_catalog.sum(r.w1), pg_catalog.sum(r.w2), \
         NULL::pg_catalog.bytea, r.fresh \
         FROM recent r GROUP BY 2, 7"
            .into(),
    );
    for c in contents(server_version_num) {
        parts.push(format!(
            "SELECT *, NULL::pg_catalog.int8 FROM ({}) c",
            content_row(&c)
        ));
    }
    parts.push(format!(
        "SELECT *, NULL::pg_catalog.int8 FROM ({SNAPSHOT_ROW}) s"
    ));
    // Two chains of set operations, each about as long as the catalog list: one chain of
    // both branches of every catalog would be deeper than the parser used by the tests
    // decodes (a chain of 100 `UNION ALL`s is over its recursion limit).
    format!(
        "WITH {},\nrecent AS (\n{}\n)\n{}",
        here(1, 2),
        recent.join("\nUNION ALL\n"),
        parts.join("\nUNION ALL\n")
    )
}

/// Per object (those in `$2`, an int8[] of keys, or every one): ('object', key, rows,
/// w1, w2, NULL) over all its rows and, for the objects in `$2`, ('old', key, rows,
/// w1, w2, NULL) over those that are not recent at reference `$1` (the known
/// transactions: `$3`, see [`here`]); ('xid', xmin, rows, 0, 0, NULL) for each
/// transaction with rows not before this statement's snapshot; for every object, the
/// content digests too ([`content_row`]); then the snapshot.
pub fn objects_sql(server_version_num: u32, keyed: bool) -> String {
    let mut branches = vec![];
    for s in sources(server_version_num) {
        let restrict = match (keyed, s.by) {
            (false, _) => String::new(),
            (true, None) => continue,
            (true, Some(col)) => format!(
                " AND {col} OPERATOR(pg_catalog.=) ANY ((SELECT here.only FROM here)::pg_catalog.oid[])"
            ),
        };
        let (w1, w2) = s.halves();
        // Only the objects asked for are counted at the reference too.
        let recent = if keyed {
            format!(", {} AS recent", s.recent())
        } else {
            String::new()
        };
        branches.push(format!(
            "SELECT {} AS key, {w1} AS w1, {w2} AS w2{recent}, {} AS fresh FROM {} WHERE {}{restrict}",
            s.key(),
            s.fresh(),
            s.from,
            s.filter()
        ));
    }
    let (here, wanted) = if keyed {
        (
            here(1, 3).replace(
                " AS xmax64\n)",
                " AS xmax64,\n        ARRAY(SELECT (k OPERATOR(pg_catalog.&) 4294967295::pg_catalog.int8)::pg_catalog.oid \
                 FROM pg_catalog.unnest($2::pg_catalog.int8[]) k) AS only\n)",
            ),
            "WHERE r.key OPERATOR(pg_catalog.=) ANY ($2::pg_catalog.int8[]) ",
        )
    } else {
        (here(1, 2), "")
    };
    let old = if keyed {
        format!(
            "SELECT 'old', r.key, pg_catalog.count(*), pg_catalog.sum(r.w1), pg_catalog.sum(r.w2), NULL::pg_catalog.bytea
FROM rows r {wanted}AND NOT r.recent GROUP BY r.key
UNION ALL
"
        )
    } else {
        String::new()
    };
    format!(
        "WITH {here},
rows AS (
{}
)
SELECT 'object'::pg_catalog.text, r.key, pg_catalog.count(*), pg_catalog.sum(r.w1), pg_catalog.sum(r.w2), NULL::pg_catalog.bytea
FROM rows r {wanted}GROUP BY r.key
UNION ALL
{old}SELECT 'xid', r.fresh, pg_catalog.count(*), 0::pg_catalog.int8, 0::pg_catalog.int8, NULL::pg_catalog.bytea
FROM rows r WHERE r.fresh IS NOT NULL GROUP BY r.fresh
UNION ALL
{}{SNAPSHOT_ROW}",
        branches.join("\nUNION ALL\n"),
        if keyed {
            String::new()
        } else {
            contents(server_version_num)
                .iter()
                .map(|c| format!("{}\nUNION ALL\n", content_row(c)))
                .collect::<String>()
        }
    )
}

/// One statement's answer, as [`summary_sql`] and [`objects_sql`] give it.
#[derive(Debug, Default)]
pub struct Answer {
    /// ('all'): every row counted, every catalog together.
    pub all: Stamp,
    /// ('recent' or 'object'): by object.
    pub by_key: HashMap<Key, Stamp>,
    /// ('recent' summed, or 'old'): by object.
    pub old: HashMap<Key, Stamp>,
    /// ('content'): by the [`global`] key of the catalog behind the view.
    pub content: BTreeMap<Key, ContentDigest>,
    /// ('xid', or 'recent' with a transaction): the transactions (32-bit IDs) with
    /// rows not before this statement's snapshot.
    pub fresh: Vec<u32>,
    pub snapshot: Option<Snapshot>,
}

impl Answer {
    /// Read rows of (what, key, rows, w1, w2, digest).
    pub fn read(rows: &[postgres::Row]) -> Answer {
        let mut a = Answer::default();
        for r in rows {
            let what: &str = r.get(0);
            let key: Option<i64> = r.get(1);
            let stamp = Stamp {
                rows: r.get::<_, Option<i64>>(2).unwrap_or(0),
                w1: r.get::<_, Option<i64>>(3).unwrap_or(0),
                w2: r.get::<_, Option<i64>>(4).unwrap_or(0),
            };
            match (what, key) {
                ("all", _) => a.all.add(stamp),
                ("recent" | "object", Some(k)) => {
                    a.by_key.entry(k as u64).or_default().add(stamp);
                    if r.len() > 6 {
                        if let Some(x) = r.get::<_, Option<i64>>(6) {
                            a.fresh.push(x as u32);
                        }
                    }
                }
                ("old", Some(k)) => a.old.entry(k as u64).or_default().add(stamp),
                ("xid", Some(x)) => a.fresh.push(x as u32),
                ("content", Some(k)) => {
                    let d: Option<Vec<u8>> = r.get(5);
                    if let Some(d) = d.and_then(|d| ContentDigest::try_from(d).ok()) {
                        a.content.insert(k as u64, d);
                    }
                }
                ("snapshot", _) => {
                    a.snapshot = Some(Snapshot {
                        xmin: stamp.rows as u64,
                        xmax: stamp.w1 as u64,
                    })
                }
                _ => {}
            }
        }
        a
    }
}

/// The rows not recent at the reference, every catalog together: every row counted
/// less the recent ones.
pub fn not_recent(summary: &Answer) -> Stamp {
    let mut s = summary.all;
    for r in summary.by_key.values() {
        s.sub(*r);
    }
    s
}

/// The sum of these stamps.
pub fn total<'a>(stamps: impl Iterator<Item = &'a Stamp>) -> Stamp {
    let mut s = Stamp::default();
    for x in stamps {
        s.add(*x);
    }
    s
}
