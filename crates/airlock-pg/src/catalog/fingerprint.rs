//! Database fingerprint: SHA-256 over a canonical description of the database's
//! schema, as `pg_dump --schema-only` would print it.
//!
//! Covered: schemas, extensions (and which objects belong to them), types of every
//! kind, tables and their columns (type, default, identity, generated, collation,
//! storage, compression, statistics target, options, ACL), partitioning,
//! inheritance, reloptions, access method, tablespace, persistence, replica
//! identity, row security, constraints, indexes (and CLUSTER ON), views and
//! materialized views with their options, sequences (definition and OWNED BY),
//! functions, procedures and aggregates (full definition, owner, ACL), operators,
//! operator classes and families, casts, collations, conversions, text search
//! objects, foreign-data wrappers, servers, user mappings, foreign tables, triggers,
//! event triggers, rules, policies, publications, subscriptions, statistics objects,
//! default privileges, languages, transforms, access methods, changed privileges on
//! `pg_catalog` objects, and the owner, ACL, comment and security labels of each.
//! Not covered: the ledger objects named in [`LEDGER`] (the ledger module checks
//! those before every use), a subscription's connection string (superuser-only),
//! the privileges of a `pg_catalog` object whose ACL a superuser set to NULL by
//! writing the catalog (GRANT and REVOKE never do), and what `pg_dump --schema-only`
//! leaves out too (data, statistics, sequence values, large objects, roles,
//! tablespaces, database settings).
//!
//! Invariant: the schema fingerprint changes exactly when `pg_dump --schema-only`
//! output does (tests/fingerprint.rs checks this one DDL step at a time), but for the
//! ledger objects and one deliberate addition: a foreign key whose internal triggers
//! were disabled, which pg_dump does not show. The description holds names and
//! server-rendered definitions, never OIDs, statistics, sequence values or physical
//! layout, so dropping and recreating an identical object, VACUUM, ANALYZE,
//! CHECKPOINT or data changes leave it alone. It
//! is computed in a savepoint that first pins every setting the server's renderers
//! read (`search_path`, `DateStyle`, …) and is rolled back afterwards, and its SQL
//! names only `pg_catalog` objects (a unit test checks this with the PostgreSQL
//! parser): neither session, role or database defaults nor objects a hostile role
//! planted change what it says. `--rows` and `--data` add per-table row counts and
//! in-server content hashes (format 2, [`FORMAT`]): every table read once, at the
//! snapshot the schema was described at, by several connections and at most
//! [`CHUNK`] tables to a transaction ([`compute_consistent`]). `--data` is exact
//! against accidents, `--data-strict` against chosen rows too (README, "Fingerprints
//! and rehearsals of large databases"); both add each sequence's value and each large
//! object's bytes ([`crate::catalog::data_values`], format 3).

pub use crate::schema_change::{changes, ChangeKind, SchemaChange};
use crate::session::owner_code;
use crate::{pg_message, DbError};
use postgres::{SimpleQueryMessage, Transaction};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Schema,
    Rows,
    /// The fast content hash: per row a 64-bit hash of its text, summed (see DESIGN.md).
    Data,
    /// The strict content hash: SHA-256 over the sorted per-row SHA-256s.
    DataStrict,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::Schema => "schema",
            Level::Rows => "rows",
            Level::Data => "data",
            Level::DataStrict => "data-strict",
        }
    }
}

/// The fingerprint format this airlock writes. Format 1 (airlock up to 0.x, no
/// `format` field in its JSON) hashed each table with `string_agg` over sorted md5s
/// and counted a parent's rows with its children's; format 2 reads every table once
/// (`ONLY`), at one exported snapshot, with the per-table forms in [`DATA_SQL`],
/// [`ROWS_SQL`] and [`STRICT_SQL`]. Schema-level parts are the same in both.
/// Format 3 adds to `--data` and `--data-strict` each sequence's value and each large
/// object's bytes ([`crate::catalog::data_values`]).
/// Format 4 describes the schema the same way on every PostgreSQL major airlock
/// supports ([`Form::Normalised`]): privileges as what was granted or revoked against
/// the defaults of their kind, with a grantee's every privilege written `ALL` (17
/// added `MAINTAIN` to a table's), the public schema as initdb made it (14's and 15's
/// differ), no statistics target for the default (-1 before 17, NULL since), and
/// PostgreSQL 18's NOT NULL constraints left to the columns' NOT NULL they are. The
/// formats before it describe the schema as [`Form::Legacy`] does, which a ledger row
/// an older airlock wrote is checked against ([`compute_legacy`]).
pub const FORMAT: u32 = 4;

/// The first format whose schema description is [`Form::Normalised`].
pub const NORMALISED_SINCE: u32 = 4;

/// How the schema is described: the same way on every supported major (format 4 on),
/// or as airlock described it before (formats 1 to 3, which differ from major to
/// major), to recognise the fingerprints older ledger rows recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    Normalised,
    Legacy,
}

fn format_1() -> u32 {
    1
}

/// One described object; `hash` is the SHA-256 of its canonical line. Ordered as
/// the fingerprint hashes them: by kind, name, hash.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
pub struct Part {
    pub kind: String,
    pub name: String,
    pub hash: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct Fingerprint {
    pub fingerprint: String,
    pub level: String,
    /// The format version ([`FORMAT`]); absent (1) in fingerprints saved by older
    /// versions.
    #[serde(default = "format_1")]
    pub format: u32,
    pub parts: Vec<Part>,
}

impl Fingerprint {
    pub fn short(&self) -> &str {
        &self.fingerprint[..8]
    }

    /// The fingerprint without the parts of these kinds.
    pub fn without(&self, kinds: &[&str]) -> Fingerprint {
        let parts = self
            .parts
            .iter()
            .filter(|p| !kinds.contains(&p.kind.as_str()))
            .cloned()
            .collect();
        let mut f = finish(parts, Level::Schema);
        f.level.clone_from(&self.level);
        f.format = self.format;
        f
    }

    /// The schema-level fingerprint within this one (its row and data parts left out).
    pub fn schema_only(&self) -> Fingerprint {
        let mut f = self.without(&["rows", "data"]);
        f.level = Level::Schema.name().into();
        f
    }

    /// Why two fingerprints cannot be compared, if they cannot: different levels, or
    /// row or data levels of different formats (a schema-level fingerprint is the same
    /// in every format).
    pub fn incomparable(&self, other: &Fingerprint) -> Option<String> {
        if self.level != other.level {
            return Some(format!(
                "cannot compare a {} fingerprint with a {} one",
                self.level, other.level
            ));
        }
        if (self.format >= NORMALISED_SINCE) != (other.format >= NORMALISED_SINCE) {
            return Some(format!(
                "cannot compare a format-{} fingerprint with a format-{} one: since format \
                 {NORMALISED_SINCE} the schema is described the same way on every PostgreSQL \
                 major; take both with the same airlock version",
                self.format, other.format
            ));
        }
        if self.level != "schema" && self.format != other.format {
            return Some(format!(
                "cannot compare a format-{} {} fingerprint with a format-{} one: the per-table \
                 hashes are computed differently; take both with the same airlock version",
                self.format, self.level, other.format
            ));
        }
        None
    }
}

/// The objects airlock creates for its ledger, left out of the fingerprint: the
/// ledger is created inside the apply whose before and after the fingerprints
/// describe, and `ledger` checks these objects itself before every use. Left out are
/// the schema itself (owner, ACL, comment), the table with everything attached to it
/// (columns, constraints, indexes, triggers, comments, ACLs, row type) and the
/// no-argument functions named here. Everything else in the schema counts: another
/// table, function, view or sequence there, an overload of these functions, or a
/// rule, policy or statistics object on the ledger changes the fingerprint.
pub const LEDGER: LedgerObjects = LedgerObjects {
    schema: "airlock",
    table: "ledger",
    functions: &["ledger_append_only", "ledger_no_truncate"],
};

/// See [`LEDGER`].
#[derive(Clone, Copy, Debug)]
pub struct LedgerObjects {
    pub schema: &'static str,
    /// A table in `schema`.
    pub table: &'static str,
    /// Functions in `schema` that take no arguments.
    pub functions: &'static [&'static str],
}

/// The settings [`PIN`] sets, also set in every per-table transaction of `--rows` and
/// `--data`.
macro_rules! pin_settings {
    () => {
        "SET LOCAL search_path = pg_catalog, pg_temp;
SET LOCAL DateStyle = 'ISO, MDY';
SET LOCAL IntervalStyle = postgres;
SET LOCAL TimeZone = 'UTC';
SET LOCAL extra_float_digits = 1;
SET LOCAL bytea_output = hex;
SET LOCAL standard_conforming_strings = on;
SET LOCAL quote_all_identifiers = off;
SET LOCAL xmloption = content;
SET LOCAL lc_monetary = 'C';
SET LOCAL row_security = off;
SET LOCAL jit = off;
SET LOCAL enable_mergejoin = off;"
    };
}

/// Opens the savepoint and pins what the server's renderers read (`pg_get_*def`,
/// `format_type`, reg* and value output) whatever the session, role or database
/// defaults say, then answers the server version. `SET` resolves no names.
/// `row_security = off` makes `--data` fail rather than hash the part of a table a
/// policy lets this role see; `jit = off` because compiling the description query
/// costs ten times more than running it; `enable_mergejoin = off` because costing
/// merge joins (histogram probes) is a tenth of its planning and they never win on
/// catalogs; `plan_cache_mode`, so that the incremental description's parameterized
/// statements are planned once a connection, not five times; `work_mem`, so that
/// counting every object's catalog rows at once stays in memory.
const PIN: &str = concat!(
    "SAVEPOINT airlock_fingerprint;\n",
    pin_settings!(),
    "\nSET LOCAL plan_cache_mode = force_generic_plan;
SET LOCAL work_mem = '64MB';
SELECT pg_catalog.current_setting('server_version_num'), pg_catalog.current_setting('server_version')"
);

/// Ends the savepoint: the pinned settings go, the caller's transaction goes on as
/// it was.
const UNPIN: &str =
    "ROLLBACK TO SAVEPOINT airlock_fingerprint; RELEASE SAVEPOINT airlock_fingerprint";

/// The description: (kind, name, definition) for every object.
const SCHEMA_SQL: &str = include_str!("fingerprint.sql");

/// The tables `--rows` and `--data` count and hash: those of the dumped schemas but
/// the ledger, largest first (`relpages`, for the work queue). Partitioned tables hold
/// no rows themselves: their partitions are tables of their own here.
const TABLES_SQL: &str = r#"SELECT c.oid::pg_catalog.text, n.nspname, c.relname,
    c.relpages::pg_catalog.text, c.relispopulated::pg_catalog.text
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
WHERE c.relkind OPERATOR(pg_catalog.=) ANY ('{r,m}'::pg_catalog."char"[])
  AND pg_catalog.left(n.nspname, 3) OPERATOR(pg_catalog.<>) 'pg_'
  AND n.nspname OPERATOR(pg_catalog.<>) 'information_schema'
  AND NOT (n.nspname OPERATOR(pg_catalog.=) @LEDGER_SCHEMA@
       AND c.relname OPERATOR(pg_catalog.=) @LEDGER_TABLE@)
ORDER BY c.relpages DESC"#;

/// Whether `@OID@` still has, for the server, the storage the fingerprint's snapshot
/// sees: false after a TRUNCATE, a rewriting ALTER TABLE, VACUUM FULL, CLUSTER or
/// REFRESH MATERIALIZED VIEW committed since, which PostgreSQL does not hide from an
/// older snapshot (the table would read as empty or rewritten). Evaluated after the
/// statement locked the table, so no such change can come in between.
const SAME_STORAGE: &str = "(SELECT c.relfilenode FROM pg_catalog.pg_class c \
WHERE c.oid OPERATOR(pg_catalog.=) @OID@::pg_catalog.oid) \
OPERATOR(pg_catalog.=) pg_catalog.pg_relation_filenode(@OID@::pg_catalog.oid)";

/// `--rows`: the row count of `@TABLE@` (quoted and qualified) without its
/// inheritance children, and [`SAME_STORAGE`].
const ROWS_SQL: &str = "SELECT pg_catalog.count(*)::pg_catalog.text, @SAME_STORAGE@ \
FROM ONLY @TABLE@ t";

/// `--data` (format 2): the row count and the exact sum of a 64-bit hash
/// (`hashtextextended`, seed 0) of each row's text (the record output pg_dump's text
/// COPY also starts from), and [`SAME_STORAGE`]. The row's text is its type's output
/// function (`record_out`, through `pg_catalog.format`, [`crate::door::text_of`]),
/// never `(t.*)::text`, which calls a `CREATE CAST (tbl AS text)` the table's owner
/// may have made: the same text for every row, and nothing of the owner's runs. No sort, no temporary files, no size
/// limit, parallel workers where the planner sees fit. Proves "same multiset of rows"
/// against accidents, not against someone choosing rows (see DESIGN.md).
const DATA_SQL: &str = "SELECT pg_catalog.count(*)::pg_catalog.text OPERATOR(pg_catalog.||) ' ' \
OPERATOR(pg_catalog.||) COALESCE(pg_catalog.sum(pg_catalog.hashtextextended(\
pg_catalog.format('%s', t.*) COLLATE pg_catalog.\"C\", 0))::pg_catalog.text, '0'), @SAME_STORAGE@ \
FROM ONLY @TABLE@ t";

/// `--data-strict`: the SHA-256 of each row's text, sorted in the server and streamed
/// to airlock, which counts them and folds them into one SHA-256 (no aggregate, so no
/// size limit; the sort spills to temporary files on large tables).
const STRICT_SQL: &str = "COPY (SELECT pg_catalog.sha256(pg_catalog.convert_to(\
pg_catalog.format('%s', t.*), pg_catalog.getdatabaseencoding())) FROM ONLY @TABLE@ t ORDER BY 1) \
TO STDOUT";

/// [`SAME_STORAGE`] on its own, after a `--data-strict` COPY.
const STRICT_CHECK_SQL: &str = "SELECT @SAME_STORAGE@";

/// Tables of at least this many pages (8 MB) get a transaction of their own; smaller
/// ones go [`CHUNK`] to a transaction, so that a transaction never holds the locks
/// of more than [`CHUNK`] tables and their indexes (`max_locks_per_transaction`
/// is 64 per connection by default, shared server-wide).
const BIG_PAGES: i64 = 1024;
const CHUNK: usize = 50;

/// An SQL string literal of one of airlock's own constants.
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

pub(crate) fn with_ledger(sql: &str) -> String {
    let functions: Vec<String> = LEDGER.functions.iter().map(|f| literal(f)).collect();
    sql.replace("@LEDGER_SCHEMA@", &literal(LEDGER.schema))
        .replace("@LEDGER_TABLE@", &literal(LEDGER.table))
        .replace(
            "@LEDGER_FUNCTIONS@",
            &format!("ARRAY[{}]::pg_catalog.name[]", functions.join(", ")),
        )
}

/// The description query for a server version: columns gained a compression method
/// and subscriptions binary and streaming options in PostgreSQL 14; publications
/// gained row filters, column lists and schemas in PostgreSQL 15, subscriptions
/// two-phase commit and disable-on-error, indexes NULLS NOT DISTINCT.
pub(crate) fn schema_sql(server_version_num: u32) -> String {
    schema_sql_from(SCHEMA_SQL, server_version_num, false, Form::Normalised)
}

/// The description of only some objects: those whose OIDs are in `$1` (an oid[]),
/// with the relations in it anchoring their columns, indexes, triggers, rules and
/// policies; types, domain constraints, functions and table constraints by their own
/// OID. Every other kind is left out: the incremental description
/// ([`crate::catalog::described`]) takes the whole description again when one of those
/// changes.
pub(crate) fn restricted_sql(server_version_num: u32) -> String {
    schema_sql_from(SCHEMA_SQL, server_version_num, true, Form::Normalised)
}

/// [`schema_sql`] of another description text with the same placeholders (the
/// tests' frozen reference, `tests/data/fingerprint_reference.sql`), or
/// [`restricted_sql`].
fn schema_sql_from(
    template: &str,
    server_version_num: u32,
    restricted: bool,
    form: Form,
) -> String {
    let (attcompression, subscription14) = if server_version_num >= 140000 {
        ("a.attcompression", ", s.subbinary, s.substream")
    } else {
        ("NULL::pg_catalog.\"char\"", "")
    };
    let (publication_rel, publication_namespace, subscription15) = if server_version_num >= 150000 {
        (
            "ROW(pg_catalog.pg_get_expr(r.prqual, r.prrelid),
            (SELECT pg_catalog.array_agg(a.attname ORDER BY a.attnum)
                FROM pg_catalog.pg_attribute a
                WHERE a.attrelid OPERATOR(pg_catalog.=) r.prrelid
                  AND a.attnum OPERATOR(pg_catalog.=) ANY (r.prattrs::pg_catalog.int2[])))::pg_catalog.text",
            "UNION ALL
    SELECT 'pg_catalog.pg_publication_namespace'::pg_catalog.regclass, p.oid, 0, NULL,
        NULL::pg_catalog.text
    FROM pg_catalog.pg_publication_namespace p",
            ", s.subtwophasestate, s.subdisableonerr",
        )
    } else {
        ("NULL::pg_catalog.text", "", "")
    };
    let (nulls_distinct, nulls_distinct_group) = if server_version_num >= 150000 {
        ("AND NOT x.indnullsnotdistinct", "x.indnullsnotdistinct,")
    } else {
        ("", "")
    };
    let only = "OPERATOR(pg_catalog.=) ANY ((SELECT ctx.only FROM ctx)::pg_catalog.oid[])";
    let (only_param, only_rels, only_constraints, only_obj) = if restricted {
        (
            "$1::pg_catalog.oid[]".to_string(),
            "AND c.oid OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.oid[])".to_string(),
            format!("AND k.oid {only}"),
            format!(
                "b.classid::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (ARRAY['pg_catalog.pg_type'::pg_catalog.regclass, \
                 'pg_catalog.pg_constraint'::pg_catalog.regclass, 'pg_catalog.pg_proc'::pg_catalog.regclass]::pg_catalog.oid[]) \
                 AND b.objid {only}"
            ),
        )
    } else {
        (
            "NULL::pg_catalog.oid[]".to_string(),
            String::new(),
            String::new(),
            "true".to_string(),
        )
    };
    // The public schema's owner as initdb makes it: the bootstrap superuser before 15,
    // pg_database_owner since.
    let initial_public_owner = if server_version_num >= 150000 {
        "6171"
    } else {
        "10"
    };
    let not_null_filter = match form {
        Form::Normalised => NOT_NULL_FILTER,
        Form::Legacy => "",
    };
    expand_forms(&with_ledger(template), form)
        .replace("@INITIAL_PUBLIC_OWNER@", initial_public_owner)
        .replace("@NOT_NULL_FILTER@", not_null_filter)
        .replace("@ONLY@", &only_param)
        .replace("@ONLY_RELS@", &only_rels)
        .replace("@ONLY_CONSTRAINTS@", &only_constraints)
        .replace("@ONLY_OBJ@", &only_obj)
        .replace("@PG14_ATTCOMPRESSION@", attcompression)
        .replace("@PG14_SUBSCRIPTION@", subscription14)
        .replace("@PG15_PUBLICATION_REL@", publication_rel)
        .replace("@PG15_PUBLICATION_NAMESPACE@", publication_namespace)
        .replace("@PG15_SUBSCRIPTION@", subscription15)
        .replace("@PG15_NULLS_DISTINCT@", nulls_distinct)
        .replace("@PG15_NULLS_DISTINCT_GROUP@", nulls_distinct_group)
}

/// PostgreSQL 18 records each column's NOT NULL in `pg_constraint` too (17 a
/// domain's): a validated, inheritable one says what the column's `attnotnull` (the
/// domain's `typnotnull`) says, so the normalised description leaves it out (its name with it, which pg_dump prints only when it is
/// not the default one); a `NOT VALID` or `NO INHERIT` one, which only 18 has, stays.
const NOT_NULL_FILTER: &str =
    "AND NOT (k.contype OPERATOR(pg_catalog.=) 'n' AND k.convalidated AND NOT k.connoinherit)";

/// The placeholders of the description text whose meaning depends on the [`Form`]:
/// `@NORM(normalised@|@legacy)@`, `@ACLDIFF(acl@|@default@|@kind)@` (normalised only)
/// and `@STATTARGET(column)@`. Expanded innermost first.
fn expand_forms(sql: &str, form: Form) -> String {
    const NAMES: [&str; 3] = ["@NORM(", "@ACLDIFF(", "@STATTARGET("];
    let mut sql = sql.to_string();
    loop {
        let Some((start, name)) = NAMES
            .iter()
            .filter_map(|n| sql.rfind(n).map(|at| (at, *n)))
            .max_by_key(|(at, _)| *at)
        else {
            return sql;
        };
        let open = start + name.len();
        let (args, end) = placeholder_args(&sql[open..])
            .unwrap_or_else(|| panic!("fingerprint.sql: unclosed {name}…)@"));
        let with = match (name, form) {
            ("@NORM(", Form::Normalised) => args[0].to_string(),
            ("@NORM(", Form::Legacy) => args[1].to_string(),
            ("@ACLDIFF(", _) => acl_diff(args[0], args[1], args[2]),
            ("@STATTARGET(", Form::Normalised) => format!(
                "CASE WHEN {c} OPERATOR(pg_catalog.>=) 0 THEN {c} END",
                c = args[0]
            ),
            _ => args[0].to_string(),
        };
        sql.replace_range(start..open + end, &with);
    }
}

/// The arguments of a placeholder whose text (after its opening parenthesis) starts
/// `text`, split at `@|@`, and where it ends (after its closing `)@`): the first `)`
/// outside quotes that closes the opening one.
fn placeholder_args(text: &str) -> Option<(Vec<&str>, usize)> {
    let (mut depth, mut quoted, mut from) = (0usize, false, 0usize);
    let mut args = vec![];
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' => quoted = !quoted,
            b'(' if !quoted => depth += 1,
            b')' if !quoted && depth > 0 => depth -= 1,
            b')' if !quoted => {
                if bytes.get(i + 1) != Some(&b'@') {
                    return None;
                }
                args.push(&text[from..i]);
                return Some((args, i + 2));
            }
            b'@' if !quoted && depth == 0 && text[i..].starts_with("@|@") => {
                args.push(&text[from..i]);
                from = i + 3;
                i += 2;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// What an ACL grants and revokes against `default` (both `aclitem[]` expressions), as
/// a sorted `text[]` of `+grantor>grantee[*]:PRIVILEGES` and `-…` lines (NULL when
/// nothing differs): a grantee's privileges from one grantor written `ALL` when they
/// are every privilege `kind` (an `acldefault` kind) has on this major, as pg_dump
/// writes them. So `GRANT ALL` reads the same before and after PostgreSQL 17 added
/// `MAINTAIN`, and an owner's default privileges are not listed at all. An empty ACL
/// (everything revoked) has no dimension, which `aclexplode` refuses: it explodes to
/// nothing.
fn acl_diff(acl: &str, default: &str, kind: &str) -> String {
    let all = format!(
        "ARRAY(SELECT f.privilege_type FROM pg_catalog.aclexplode(pg_catalog.acldefault({kind}, \
         10::pg_catalog.oid)) f WHERE f.grantee OPERATOR(pg_catalog.=) 10::pg_catalog.oid)"
    );
    let grouped = |items: &str| {
        format!(
            "SELECT pg_catalog.format('%s>%s%s:%s', e.grantor::pg_catalog.regrole, \
             e.grantee::pg_catalog.regrole, CASE WHEN e.is_grantable THEN '*' ELSE '' END, \
             CASE WHEN pg_catalog.arraycontains(pg_catalog.array_agg(e.privilege_type), {all}) THEN 'ALL' \
             ELSE pg_catalog.array_to_string(pg_catalog.array_agg(e.privilege_type \
             ORDER BY e.privilege_type COLLATE pg_catalog.\"C\"), ',') END) AS line \
             FROM pg_catalog.aclexplode(CASE WHEN pg_catalog.cardinality({items}) OPERATOR(pg_catalog.>) 0 \
             THEN {items} END) e GROUP BY e.grantor, e.grantee, e.is_grantable"
        )
    };
    let (have, default) = (
        grouped(&format!("COALESCE({acl}, {default})")),
        grouped(default),
    );
    format!(
        "CASE WHEN {acl} IS NULL THEN NULL::pg_catalog.text[] ELSE \
         (SELECT pg_catalog.array_agg(q.line ORDER BY q.line COLLATE pg_catalog.\"C\") FROM \
         (SELECT '+' OPERATOR(pg_catalog.||) g.line AS line FROM ({have} EXCEPT {default}) g \
         UNION ALL SELECT '-' OPERATOR(pg_catalog.||) g.line FROM ({default} EXCEPT {have}) g) q) END"
    )
}

pub(crate) fn line_hash(kind: &str, name: &str, def: &str) -> String {
    let mut h = Sha256::new();
    h.update(kind.as_bytes());
    h.update([0]);
    h.update(name.as_bytes());
    h.update([0]);
    h.update(def.as_bytes());
    hex::encode(h.finalize())
}

pub fn quote_qualified(schema: &str, table: &str) -> String {
    format!(
        "{}.{}",
        crate::quote_ident(schema),
        crate::quote_ident(table)
    )
}

pub(crate) fn fingerprint_err(what: &str, e: &postgres::Error) -> DbError {
    DbError::Sql {
        context: format!("fingerprint ({what})"),
        message: pg_message(e),
    }
}

/// The fingerprint's SHA-256 over parts given in their order ([`Part`]'s).
fn digest<'a>(sorted: impl Iterator<Item = &'a Part>) -> String {
    let mut h = Sha256::new();
    for p in sorted {
        h.update(p.line().as_bytes());
        h.update(b"\n");
    }
    hex::encode(h.finalize())
}

/// [`digest`] over parts given as their [`Part::line`]s, in order.
pub(crate) fn digest_lines<'a>(sorted: impl Iterator<Item = &'a str>) -> String {
    let mut h = Sha256::new();
    for line in sorted {
        h.update(line.as_bytes());
        h.update(b"\n");
    }
    hex::encode(h.finalize())
}

impl Part {
    /// What the fingerprint hashes of a part: kind, name and hash, NUL-separated
    /// (neither holds a NUL, so these lines sort as the parts do).
    pub fn line(&self) -> String {
        format!("{}\0{}\0{}", self.kind, self.name, self.hash)
    }
}

/// The rows of `sql` (one statement), run in the fingerprint's savepoint with its
/// pinned settings, rolled back after.
pub(crate) fn batch_pinned(
    tx: &mut impl postgres::GenericClient,
    sql: &str,
    what: &str,
) -> Result<Rows, DbError> {
    let mut results = batch(
        tx,
        &format!(
            "SAVEPOINT airlock_fingerprint;\n{}\n{sql};\n{UNPIN}",
            pin_settings!()
        ),
        what,
    )?;
    // ROLLBACK TO and RELEASE come after it.
    let at = results.len().saturating_sub(3);
    Ok(std::mem::take(&mut results[at]))
}

/// One statement's result rows, every value as text.
pub(crate) type Rows = Vec<Vec<Option<String>>>;

/// Send a simple-query batch (one round trip); the rows of each statement, in order.
fn batch(
    tx: &mut impl postgres::GenericClient,
    sql: &str,
    what: &str,
) -> Result<Vec<Rows>, DbError> {
    let messages = tx
        .simple_query(sql)
        .map_err(|e| fingerprint_err(what, &e))?;
    let mut statements = vec![];
    let mut rows = vec![];
    for m in messages {
        match m {
            SimpleQueryMessage::Row(r) => {
                rows.push((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
            }
            SimpleQueryMessage::CommandComplete(_) => statements.push(std::mem::take(&mut rows)),
            _ => {}
        }
    }
    Ok(statements)
}

/// The rows of one query run inside the pinned savepoint ([`PIN`]'s settings, rolled
/// back after), as text, in one round trip.
pub(crate) fn pinned_rows(
    tx: &mut Transaction<'_>,
    sql: &str,
    what: &str,
) -> Result<Rows, DbError> {
    let results = batch(
        tx,
        &format!(
            "SAVEPOINT airlock_fingerprint;\n{}\n{sql};\n{UNPIN}",
            pin_settings!()
        ),
        what,
    )?;
    // The query's result is followed by the two of UNPIN.
    Ok(results.into_iter().rev().nth(2).unwrap_or_default())
}

pub(crate) fn text(row: &[Option<String>], i: usize) -> String {
    row.get(i).cloned().flatten().unwrap_or_default()
}

/// airlock's own statements prepared on one connection, for its later fingerprints
/// (`apply` takes two, before and after the tiers): PostgreSQL plans each once, and
/// planning is most of a description's cost. Use it only with the connection that
/// prepared it.
///
/// A cached plan is made again when the session's temporary schema comes into use
/// after it was prepared (`pg_temp` in the pinned search_path then names a schema,
/// even for a moment: a probe's wrapper in a rolled-back savepoint, a tier's
/// temporary table). So before preparing, [`TEMP_SCHEMA`] puts it in use for the
/// rest of the caller's transaction; where that is refused (a read-only
/// transaction, no TEMP privilege) the plan is simply made again when needed.
#[derive(Default)]
pub struct Prepared {
    ready: bool,
    version: u32,
    statements: std::collections::HashMap<&'static str, postgres::Statement>,
}

impl Prepared {
    /// Opens the pinned savepoint ([`PIN`]; the server version, number and text),
    /// having put the temporary schema in use ([`TEMP_SCHEMA`], outside the savepoint,
    /// whose rollback would undo it) before the first statement is prepared on this
    /// connection: one message.
    pub(crate) fn pin(&mut self, tx: &mut Transaction<'_>) -> Result<(u32, String), DbError> {
        if !self.ready {
            self.ready = true;
            match batch(tx, &format!("{TEMP_SCHEMA};\n{PIN}"), "pinning settings") {
                Ok(answer) => return pinned(answer),
                Err(_) => {
                    batch(tx, TEMP_SCHEMA_FAILED, "releasing the temporary schema")?;
                }
            }
        }
        pinned(batch(tx, PIN, "pinning settings")?)
    }

    /// The statement `name` for `version` (its text from `sql`), prepared now if it
    /// was not yet on this connection.
    pub(crate) fn get(
        &mut self,
        tx: &mut Transaction<'_>,
        version: u32,
        name: &'static str,
        sql: impl FnOnce(u32) -> String,
    ) -> Result<postgres::Statement, DbError> {
        if self.version != version {
            self.statements.clear();
            self.version = version;
        }
        if let Some(st) = self.statements.get(name) {
            return Ok(st.clone());
        }
        let st = tx
            .prepare(&sql(version))
            .map_err(|e| fingerprint_err(name, &e))?;
        self.statements.insert(name, st.clone());
        Ok(st)
    }
}

/// Puts the session's temporary schema in use for the caller's transaction (see
/// [`Prepared`]): a function made and dropped there, in a savepoint that is released.
const TEMP_SCHEMA: &str = "SAVEPOINT airlock_fingerprint_temp;
CREATE FUNCTION pg_temp.airlock_fingerprint_temp() RETURNS pg_catalog.void LANGUAGE sql AS '';
DROP FUNCTION pg_temp.airlock_fingerprint_temp();
RELEASE SAVEPOINT airlock_fingerprint_temp";

/// Undoes a failed [`TEMP_SCHEMA`].
const TEMP_SCHEMA_FAILED: &str = "ROLLBACK TO SAVEPOINT airlock_fingerprint_temp;
RELEASE SAVEPOINT airlock_fingerprint_temp";

/// Compute the schema fingerprint inside the caller's transaction. It only reads, and
/// leaves the transaction's settings as they were.
pub fn compute(tx: &mut Transaction<'_>) -> Result<Fingerprint, DbError> {
    let version = pin(tx)?;
    let parts = described_parts(tx, &mut Prepared::default(), version, None)?;
    unpin(tx)?;
    Ok(finish(
        parts.into_iter().map(|(_, p)| p).collect(),
        Level::Schema,
    ))
}

/// A view's or materialized view's definition `def` as PostgreSQL 16 and later print
/// its query, on a server before 16, in the normalised form; `def` otherwise.
fn as_16(version: u32, form: Form, kind: &str, def: String) -> String {
    if form == Form::Normalised
        && version < 160000
        && (kind == "view" || kind == "materialized view")
    {
        crate::catalog::record_text::view_as_16(&def)
    } else {
        def
    }
}

/// The schema fingerprint as airlock wrote it before format 4 ([`Form::Legacy`]): what a
/// ledger row an older airlock wrote on this server recorded, when the schema did not
/// change since. Only asked when the normalised one differs from a recorded one.
pub fn compute_legacy(tx: &mut Transaction<'_>) -> Result<String, DbError> {
    let version = pin(tx)?;
    let sql = schema_sql_from(SCHEMA_SQL, version, false, Form::Legacy);
    let rows = tx
        .query(&sql, &[])
        .map_err(|e| fingerprint_err("schema (before format 4)", &e));
    unpin(tx)?;
    let parts = rows?
        .iter()
        .map(|r| {
            let field = |i: usize| r.get::<_, Option<String>>(i).unwrap_or_default();
            let (kind, name, def) = (field(0), field(1), field(2));
            Part {
                hash: line_hash(&kind, &name, &def),
                kind,
                name,
            }
        })
        .collect();
    Ok(finish(parts, Level::Schema).fingerprint)
}

/// The description's parts, each with the key of the object it belongs to ([`crate::catalog::stamps::Key`]):
/// of every object, or (`only`: OIDs) of the objects [`restricted_sql`] keeps. Inside
/// the pinned savepoint ([`pin`]).
pub(crate) fn described_parts(
    tx: &mut Transaction<'_>,
    prepared: &mut Prepared,
    version: u32,
    only: Option<&[u32]>,
) -> Result<Vec<(u64, Part)>, DbError> {
    let rows = match only {
        None => {
            let st = prepared.get(tx, version, "schema", schema_sql)?;
            tx.query(&st, &[])
        }
        Some(oids) => {
            let st = prepared.get(tx, version, "schema (restricted)", restricted_sql)?;
            tx.query(&st, &[&oids])
        }
    }
    .map_err(|e| fingerprint_err("schema", &e))?;
    Ok(rows
        .iter()
        .map(|r| {
            let field = |i: usize| r.get::<_, Option<String>>(i).unwrap_or_default();
            let (kind, name, def) = (field(0), field(1), field(2));
            let def = as_16(version, Form::Normalised, &kind, def);
            let key: i64 = r.get(3);
            (
                key as u64,
                Part {
                    hash: line_hash(&kind, &name, &def),
                    kind,
                    name,
                },
            )
        })
        .collect())
}

/// Ends the pinned savepoint ([`UNPIN`]).
pub(crate) fn unpin(tx: &mut Transaction<'_>) -> Result<(), DbError> {
    batch(tx, UNPIN, "releasing settings").map(|_| ())
}

/// Opens the savepoint with the pinned settings ([`PIN`]); the server version.
pub(crate) fn pin(tx: &mut Transaction<'_>) -> Result<u32, DbError> {
    Ok(pinned(batch(tx, PIN, "pinning settings")?)?.0)
}

/// What [`PIN`] answered: the server version (number and text).
fn pinned(answer: Vec<Vec<Vec<Option<String>>>>) -> Result<(u32, String), DbError> {
    answer
        .last()
        .and_then(|rows| rows.first())
        .and_then(|row| Some((text(row, 0).parse().ok()?, text(row, 1))))
        .ok_or_else(|| DbError::State("fingerprint: the server sent no server_version_num".into()))
}

/// One described object: kind, name and definition, as the server sent them.
pub type Described = (Option<String>, Option<String>, Option<String>);

/// The description's rows, sorted, as the schema fingerprint reads them (pinned
/// settings, in the caller's transaction, rolled back), from the built-in query or
/// from `template`, another text with the same placeholders. For the tests'
/// equivalence oracle: the built-in query must describe every object exactly as
/// the frozen reference (`tests/data/fingerprint_reference.sql`) does.
#[doc(hidden)]
pub fn describe(
    tx: &mut Transaction<'_>,
    template: Option<&str>,
    form: Form,
) -> Result<Vec<Described>, DbError> {
    let version = pin(tx)?;
    let sql = schema_sql_from(template.unwrap_or(SCHEMA_SQL), version, false, form);
    let mut rows: Vec<Described> = tx
        .query(&sql, &[])
        .map_err(|e| fingerprint_err("schema", &e))?
        .iter()
        .map(|r| {
            let (kind, name, def): Described = (r.get(0), r.get(1), r.get(2));
            let def = match (&kind, def) {
                (Some(k), Some(d)) => Some(as_16(version, form, k, d)),
                (_, d) => d,
            };
            (kind, name, def)
        })
        .collect();
    batch(tx, UNPIN, "releasing settings")?;
    rows.sort();
    Ok(rows)
}

/// The fingerprint over `parts`, sorted.
pub(crate) fn finish(mut parts: Vec<Part>, level: Level) -> Fingerprint {
    // (kind, name) is unique; the hash only makes the order total whatever the rows.
    parts.sort();
    Fingerprint {
        fingerprint: digest(parts.iter()),
        level: level.name().into(),
        format: FORMAT,
        parts,
    }
}

/// One table `--rows` or `--data` reads.
#[derive(Clone, Debug)]
pub struct Table {
    oid: String,
    /// `schema.table`, as the table's part names it.
    pub name: String,
    quoted: String,
    pages: i64,
    populated: bool,
}

/// What a read-only REPEATABLE READ transaction that exported its snapshot sees: the
/// snapshot's name, the schema fingerprint and the tables `--rows` and `--data` read.
/// While that transaction stays open, [`table_parts`] reads any of the tables at the
/// same snapshot on other connections.
pub struct Opened {
    pub snapshot: String,
    pub schema: Fingerprint,
    pub tables: Vec<Table>,
}

/// Export the snapshot of `tx` (read-only, REPEATABLE READ, opened by the caller on a
/// connection whose database it checked), describe the schema and list the tables.
/// The leader holds only catalog locks.
pub fn open(tx: &mut Transaction<'_>) -> Result<Opened, DbError> {
    let snapshot = batch(tx, "SELECT pg_catalog.pg_export_snapshot()", "snapshot")?
        .first()
        .and_then(|rows| rows.first())
        .map(|row| text(row, 0))
        .ok_or_else(|| DbError::State("fingerprint: no snapshot was exported".into()))?;
    let schema = compute(tx)?;
    let listed = batch(
        tx,
        &format!(
            "SAVEPOINT airlock_fingerprint;\n{}\n{};\n{UNPIN}",
            pin_settings!(),
            with_ledger(TABLES_SQL)
        ),
        "tables",
    )?;
    let tables = listed
        .into_iter()
        .find(|rows| !rows.is_empty())
        .unwrap_or_default()
        .iter()
        .map(|r| {
            let (schema, table) = (text(r, 1), text(r, 2));
            Table {
                oid: text(r, 0),
                name: format!("{schema}.{table}"),
                quoted: quote_qualified(&schema, &table),
                pages: text(r, 3).parse().unwrap_or(0),
                populated: text(r, 4) == "true",
            }
        })
        .collect::<Vec<Table>>();
    planned_safely(tx, &tables)?;
    Ok(Opened {
        snapshot,
        schema,
        tables,
    })
}

/// Reading a table's rows plans it, and planning const-folds its index expressions,
/// statistics expressions and partition key: a role's function attached there would
/// run in airlock's session, as this login (a superuser's rights, on a superuser
/// login). So nothing is read while a table has attached code a role defines
/// ([`crate::door::attached`], DESIGN §5.1): proven from the catalogs, before any
/// table is read.
fn planned_safely(tx: &mut Transaction<'_>, tables: &[Table]) -> Result<(), DbError> {
    if tables.is_empty() {
        return Ok(());
    }
    let oids: Vec<u32> = tables.iter().filter_map(|t| t.oid.parse().ok()).collect();
    let err = |e: postgres::Error| fingerprint_err("reading the code attached to the tables", &e);
    tx.batch_execute(concat!("SAVEPOINT airlock_fingerprint;\n", pin_settings!()))
        .map_err(err)?;
    let found = crate::door::attached::find(tx, &oids);
    tx.batch_execute(UNPIN).map_err(err)?;
    let found = found.map_err(err)?;
    if found.is_empty() {
        return Ok(());
    }
    Err(DbError::AttachedCode {
        message: format!(
            "cannot fingerprint rows or data here: reading a table plans it, and planning runs code a role \
             attached to it: {}. airlock plans no table with code a database role defines (it would run in \
             airlock's session, with this login's rights: a superuser's, on a superuser login); nothing was read",
            crate::door::attached::describe(&found)
        ),
        hint: "the schema fingerprint (no --rows or --data) reads catalogs only and works here; to compare \
               rows or data, connect as the role that owns that code (its own code is its own), or have it \
               removed from the tables named"
            .into(),
    })
}

/// The fingerprint at `level`, read on `leader` (connected by the caller, who checked
/// which database it is) in a read-only REPEATABLE READ transaction. For `--rows` and
/// `--data` that transaction exports its snapshot and up to `jobs` more connections
/// made with `spec` read the tables at that same snapshot, each table in a short
/// transaction of its own or with at most [`CHUNK`] - 1 other small tables, so no
/// transaction accumulates locks. The leader holds only catalog locks; importing the
/// snapshot fails on another database. Everything is rolled back.
pub fn compute_consistent(
    leader: &mut postgres::Client,
    spec: &crate::session::conn::ConnSpec,
    level: Level,
    jobs: usize,
) -> Result<Fingerprint, DbError> {
    if level == Level::Schema {
        let mut tx = begin_leader(leader)?;
        let fp = compute(&mut tx)?;
        tx.rollback().map_err(|e| fingerprint_err("ROLLBACK", &e))?;
        return Ok(fp);
    }
    let mut rounds = 1;
    let mut tx = loop {
        match begin_holding(leader)? {
            Some(tx) => break tx,
            None if rounds < owner_code::HOLD_ROUNDS => rounds += 1,
            None => return Err(owner_code::kept_appearing(owner_code::Holder::Reader)),
        }
    };
    let opened = open(&mut tx)?;
    let mut parts = opened.schema.parts;
    if level != Level::Rows {
        let values =
            crate::catalog::data_values::values(&mut |sql, what| batch_pinned(&mut tx, sql, what))?;
        parts.extend(values.into_iter().map(|v| Part {
            hash: line_hash("data", &v.name, &v.line),
            kind: "data".into(),
            name: v.name,
        }));
    }
    parts.extend(table_parts(
        spec,
        &opened.snapshot,
        opened.tables,
        level,
        jobs,
    )?);
    tx.rollback().map_err(|e| fingerprint_err("ROLLBACK", &e))?;
    Ok(finish(parts, level))
}

/// How long a superuser's `--rows`/`--data` waits to hold its tables still (apply's
/// `--lock-timeout` default).
const HOLD_TIMEOUT: &str = "10s";

/// [`begin_leader`] for reading rows. Planning a read const-folds what is attached to
/// the table (an index or statistics expression, a partition key): the proof that
/// nothing of a role's is there ([`planned_safely`]) must hold until the readers, on
/// other connections, have planned. On a superuser's login, every relation a
/// non-superuser could attach code to is locked `SHARE UPDATE EXCLUSIVE` first
/// ([`owner_code::lock_still`]; readers' `ACCESS SHARE` does not conflict), then the
/// transaction is made read-only and takes its snapshot, so that the snapshot's
/// catalogs, which the proof reads, are what every reader plans with until the end.
/// A relation made between the listing and the snapshot is not held: none then, and
/// the caller begins again ([`owner_code::HOLD_ROUNDS`] times). A login that is no
/// superuser needs no hold: code a role attached runs with no more than its rights.
fn begin_holding(leader: &mut postgres::Client) -> Result<Option<Transaction<'_>>, DbError> {
    use crate::session::owner_code::Holder;
    if !owner_code::login_is_superuser(leader)? {
        return begin_leader(leader).map(Some);
    }
    let names = owner_code::movable(leader, Holder::Reader)?;
    let mut tx = leader
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .start()
        .map_err(|e| fingerprint_err("BEGIN", &e))?;
    owner_code::lock_still(&mut tx, &names, HOLD_TIMEOUT)?;
    tx.batch_execute("SET TRANSACTION READ ONLY")
        .map_err(|e| fingerprint_err("SET TRANSACTION READ ONLY", &e))?;
    // The snapshot's own list: nothing made before it may be left unheld.
    if owner_code::movable(&mut tx, Holder::Reader)?
        .iter()
        .all(|n| names.contains(n))
    {
        return Ok(Some(tx));
    }
    tx.rollback().map_err(|e| fingerprint_err("ROLLBACK", &e))?;
    Ok(None)
}

/// The read-only REPEATABLE READ transaction a consistent fingerprint is read in.
pub fn begin_leader(leader: &mut postgres::Client) -> Result<Transaction<'_>, DbError> {
    leader
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .map_err(|e| fingerprint_err("BEGIN READ ONLY", &e))
}

/// The per-table parts, read by up to `jobs` connections at `snapshot` (exported by a
/// transaction that is still open, see [`open`]).
pub fn table_parts(
    spec: &crate::session::conn::ConnSpec,
    snapshot: &str,
    tables: Vec<Table>,
    level: Level,
    jobs: usize,
) -> Result<Vec<Part>, DbError> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Mutex;
    let mut chunks: Vec<Vec<Table>> = vec![];
    let mut small: Vec<Table> = vec![];
    for t in tables {
        if t.pages >= BIG_PAGES {
            chunks.push(vec![t]);
        } else {
            small.push(t);
            if small.len() == CHUNK {
                chunks.push(std::mem::take(&mut small));
            }
        }
    }
    if !small.is_empty() {
        chunks.push(small);
    }
    let jobs = jobs.clamp(1, chunks.len().max(1));
    let queue = Mutex::new(chunks.into_iter());
    let failed = AtomicBool::new(false);
    let mut parts = vec![];
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..jobs)
            .map(|_| {
                s.spawn(|| -> Result<Vec<Part>, DbError> {
                    let mut out = vec![];
                    let mut c: Option<postgres::Client> = None;
                    loop {
                        if failed.load(Ordering::SeqCst) || crate::session::conn::interrupted() {
                            break;
                        }
                        let next = queue.lock().unwrap_or_else(|p| p.into_inner()).next();
                        let Some(chunk) = next else { break };
                        let client = match &mut c {
                            Some(client) => client,
                            None => c.insert(spec.connect()?),
                        };
                        match read_chunk(client, snapshot, &chunk, level) {
                            Ok(p) => out.extend(p),
                            Err(e) => {
                                failed.store(true, Ordering::SeqCst);
                                return Err(e);
                            }
                        }
                    }
                    Ok(out)
                })
            })
            .collect();
        let mut first_err = None;
        for w in workers {
            match w.join() {
                Ok(Ok(p)) => parts.extend(p),
                Ok(Err(e)) => {
                    first_err.get_or_insert(e);
                }
                Err(_) => {
                    first_err.get_or_insert(DbError::State(
                        "fingerprint: a table reader panicked".into(),
                    ));
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None if crate::session::conn::interrupted() => {
                Err(DbError::State("fingerprint: interrupted (Ctrl-C)".into()))
            }
            None => Ok(()),
        }
    })?;
    Ok(parts)
}

/// The statement reading one table at `level`.
fn per_table_sql(sql: &str, t: &Table) -> String {
    sql.replace("@SAME_STORAGE@", SAME_STORAGE)
        .replace("@TABLE@", &t.quoted)
        .replace("@OID@", &t.oid)
}

fn rewritten(t: &Table) -> DbError {
    DbError::State(format!(
        "fingerprint: {} was truncated or rewritten while the fingerprint was taken \
         (its storage changed after the snapshot); take it again",
        t.name
    ))
}

/// Opens a per-table transaction at `snapshot` with the pinned settings.
fn begin_at(snapshot: &str) -> String {
    format!(
        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;\nSET TRANSACTION SNAPSHOT {};\n{}\n",
        literal(snapshot),
        pin_settings!()
    )
}

/// One transaction at `snapshot` reading the tables of `chunk`: one round trip for
/// `--rows` and `--data`, one per table for `--data-strict`.
fn read_chunk(
    c: &mut postgres::Client,
    snapshot: &str,
    chunk: &[Table],
    level: Level,
) -> Result<Vec<Part>, DbError> {
    let mut sql = begin_at(snapshot);
    let (kind, per_table) = match level {
        Level::Rows => ("rows", ROWS_SQL),
        _ => ("data", DATA_SQL),
    };
    let mut parts = vec![];
    let mut pending = vec![];
    for t in chunk {
        if !t.populated {
            parts.push(Part {
                hash: line_hash(kind, &t.name, "v2 unpopulated"),
                kind: kind.into(),
                name: t.name.clone(),
            });
        } else if level == Level::DataStrict {
            // Read below, one COPY per table.
        } else {
            sql.push_str(&per_table_sql(per_table, t));
            sql.push_str(";\n");
            pending.push(t);
        }
    }
    if level != Level::DataStrict {
        sql.push_str("ROLLBACK");
    }
    let what = chunk.first().map(|t| t.name.as_str()).unwrap_or("tables");
    let mut results = batch(c, &sql, what)?;
    if level != Level::DataStrict {
        results.pop();
    }
    // The settings' results come first: the last `pending.len()` results are the
    // tables', in order.
    let skip = results.len().saturating_sub(pending.len());
    for (t, rows) in pending.iter().zip(results.into_iter().skip(skip)) {
        let row = rows.into_iter().next().unwrap_or_default();
        if text(&row, 1) != "t" {
            return Err(rewritten(t));
        }
        parts.push(Part {
            hash: line_hash(kind, &t.name, &format!("v2 {}", text(&row, 0))),
            kind: kind.into(),
            name: t.name.clone(),
        });
    }
    if level == Level::DataStrict {
        for t in chunk.iter().filter(|t| t.populated) {
            let (count, digest) = strict_hash(c, t)?;
            let same = batch(c, &per_table_sql(STRICT_CHECK_SQL, t), &t.name)?
                .first()
                .and_then(|rows| rows.first())
                .map(|row| text(row, 0))
                .unwrap_or_default();
            if same != "t" {
                return Err(rewritten(t));
            }
            parts.push(Part {
                hash: line_hash("data", &t.name, &format!("v2 strict {count} {digest}")),
                kind: "data".into(),
                name: t.name.clone(),
            });
        }
    }
    if level == Level::DataStrict {
        batch(c, "ROLLBACK", "ROLLBACK")?;
    }
    Ok(parts)
}

/// `--data-strict` of one table: the number of rows and the SHA-256 of the COPY
/// stream of their sorted SHA-256s.
fn strict_hash(c: &mut postgres::Client, t: &Table) -> Result<(u64, String), DbError> {
    use std::io::Read;
    let mut reader = c
        .copy_out(&per_table_sql(STRICT_SQL, t))
        .map_err(|e| fingerprint_err(&t.name, &e))?;
    let mut h = Sha256::new();
    let mut count = 0u64;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = reader.read(&mut buf).map_err(|e| DbError::Sql {
            context: format!("fingerprint ({})", t.name),
            message: e.to_string(),
        })?;
        if n == 0 {
            break;
        }
        count += buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
        h.update(&buf[..n]);
    }
    Ok((count, hex::encode(h.finalize())))
}

/// A `data` part of `name` that stands for what `what` says rather than for rows read
/// (the rehearsal's parts of tables whose storage proves them unchanged): equal to
/// another such part exactly when both say the same, never to a part of rows read.
pub(crate) fn stand_in(name: &str, what: &str) -> Part {
    Part {
        hash: line_hash("data", name, &format!("stand-in {what}")),
        kind: "data".into(),
        name: name.into(),
    }
}

/// [`diff_changes`] as lines ("added KIND NAME", "dropped …", "changed …").
pub fn diff(a: &Fingerprint, b: &Fingerprint) -> Vec<String> {
    diff_changes(a, b).iter().map(ToString::to_string).collect()
}

/// [`changes`] between two fingerprints (`fingerprint --diff`).
pub fn diff_changes(a: &Fingerprint, b: &Fingerprint) -> Vec<SchemaChange> {
    let parts = |f: &Fingerprint| -> Vec<(String, String, String)> {
        f.parts
            .iter()
            .map(|p| (p.kind.clone(), p.name.clone(), p.hash.clone()))
            .collect()
    };
    let (pa, pb) = (parts(a), parts(b));
    changes(
        pa.iter()
            .map(|(k, n, h)| (k.as_str(), n.as_str(), h.as_str())),
        pb.iter()
            .map(|(k, n, h)| (k.as_str(), n.as_str(), h.as_str())),
    )
}

/// Every construct of `sql` that could resolve outside `pg_catalog` (a function,
/// operator, type or relation a role could plant under the search_path), as shown: the
/// check the fixed SQL of the fingerprint and of the predictions' catalog questions pass.
#[cfg(test)]
pub(crate) fn outside_pg_catalog(sql: &str) -> Vec<String> {
    tests::outside_pg_catalog(sql)
}

// These tests parse the statements with PostgreSQL's parser.
#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// A row's text is made by the door's output-function form, never a cast.
    #[test]
    fn row_text_is_the_doors() {
        let row = crate::door::text_of("t.*");
        for sql in [DATA_SQL, STRICT_SQL] {
            assert!(sql.contains(&row), "{sql}");
            assert!(!sql.contains("(t.*)::"), "{sql}");
        }
    }

    /// Every statement `compute` sends, for each server-version variant.
    fn everything_sent() -> Vec<(String, String)> {
        // The per-table statements name the user's table with its schema (quoted); a
        // catalog stands in for it here.
        let t = Table {
            oid: "1259".into(),
            name: "pg_catalog.pg_class".into(),
            quoted: quote_qualified("pg_catalog", "pg_class"),
            pages: 0,
            populated: true,
        };
        vec![
            ("PIN".into(), PIN.into()),
            ("TEMP_SCHEMA".into(), TEMP_SCHEMA.into()),
            ("TEMP_SCHEMA_FAILED".into(), TEMP_SCHEMA_FAILED.into()),
            ("UNPIN".into(), UNPIN.into()),
            ("schema (PostgreSQL 15+)".into(), schema_sql(150000)),
            ("schema (PostgreSQL 14)".into(), schema_sql(140000)),
            ("schema (PostgreSQL 13)".into(), schema_sql(130000)),
            ("restricted (PostgreSQL 15+)".into(), restricted_sql(150000)),
            ("restricted (PostgreSQL 13)".into(), restricted_sql(130000)),
            (
                "stamps summary (15+)".into(),
                crate::catalog::stamps::summary_sql(150000),
            ),
            (
                "stamps summary (14)".into(),
                crate::catalog::stamps::summary_sql(140000),
            ),
            (
                "stamps summary (13)".into(),
                crate::catalog::stamps::summary_sql(130000),
            ),
            (
                "stamps by object".into(),
                crate::catalog::stamps::objects_sql(150000, true),
            ),
            (
                "stamps of every object".into(),
                crate::catalog::stamps::objects_sql(150000, false),
            ),
            ("tables".into(), with_ledger(TABLES_SQL)),
            ("rows".into(), per_table_sql(ROWS_SQL, &t)),
            ("data".into(), per_table_sql(DATA_SQL, &t)),
            ("data-strict".into(), per_table_sql(STRICT_SQL, &t)),
            (
                "data-strict check".into(),
                per_table_sql(STRICT_CHECK_SQL, &t),
            ),
            (
                "snapshot".into(),
                "SELECT pg_catalog.pg_export_snapshot()".into(),
            ),
            (
                "per-table transaction".into(),
                begin_at("00000003-0000001B-1"),
            ),
        ]
        .into_iter()
        .chain(
            crate::catalog::described::statements()
                .into_iter()
                .chain(crate::rehearse::storage::statements())
                .map(|(what, sql)| (what.to_string(), sql)),
        )
        .collect()
    }

    fn strings(list: &Value) -> Vec<String> {
        list.as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|n| n["node"]["String"]["sval"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn qualified(list: &Value) -> bool {
        let names = strings(list);
        names.len() == 2 && names[0] == "pg_catalog"
    }

    fn walk(v: &Value, ctes: &[String], bad: &mut Vec<String>) {
        match v {
            Value::Array(items) => items.iter().for_each(|i| walk(i, ctes, bad)),
            Value::Object(fields) => {
                for (key, node) in fields {
                    let shown = || {
                        format!(
                            "{key} {}",
                            node.to_string().chars().take(160).collect::<String>()
                        )
                    };
                    let ok = match key.as_str() {
                        "FuncCall" => qualified(&node["funcname"]),
                        // Only plain operators (also with ANY/ALL), named with their schema;
                        // IN, IS DISTINCT FROM, NULLIF, LIKE, BETWEEN look "=" or "<" up.
                        "AExpr" => {
                            matches!(node["kind"].as_i64(), Some(1..=3)) && qualified(&node["name"])
                        }
                        // x op ANY (SELECT ...) needs its operator named; IN (SELECT) has none.
                        "SubLink" => {
                            !matches!(node["sub_link_type"].as_i64(), Some(2..=4))
                                || qualified(&node["oper_name"])
                        }
                        // A type name, wrapped in a node or a field of another.
                        _ if node.get("type_oid").is_some() => {
                            strings(&node["names"]).first().map(String::as_str)
                                == Some("pg_catalog")
                        }
                        // A table name: in pg_catalog, or one of the query's own CTEs.
                        _ if node.get("relname").is_some() => {
                            node["schemaname"] == "pg_catalog"
                                || (node["schemaname"] == ""
                                    && node["relname"]
                                        .as_str()
                                        .is_some_and(|r| ctes.iter().any(|c| c == r)))
                        }
                        // CASE x WHEN y compares with "=".
                        "CaseExpr" => node["arg"].is_null(),
                        "JoinExpr" => {
                            node["is_natural"] != true
                                && node["using_clause"].as_array().is_none_or(Vec::is_empty)
                        }
                        "CollateClause" => qualified(&node["collname"]),
                        "SortBy" => node["use_op"].as_array().is_none_or(Vec::is_empty),
                        _ => true,
                    };
                    if !ok {
                        bad.push(shown());
                    }
                    walk(node, ctes, bad);
                }
            }
            _ => {}
        }
    }

    fn cte_names(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Array(items) => items.iter().for_each(|i| cte_names(i, out)),
            Value::Object(fields) => {
                if let Some(name) = fields.get("ctename").and_then(Value::as_str) {
                    out.push(name.to_string());
                }
                fields.values().for_each(|f| cte_names(f, out));
            }
            _ => {}
        }
    }

    pub(super) fn outside_pg_catalog(sql: &str) -> Vec<String> {
        let parsed =
            airlock_sql::pg_query::parse(sql, airlock_sql::pg_query::ParserOptions::DEFAULT)
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        let tree = serde_json::to_value(&parsed.protobuf).expect("parse tree as JSON");
        let mut ctes = vec![];
        cte_names(&tree, &mut ctes);
        let mut bad = vec![];
        walk(&tree, &ctes, &mut bad);
        bad
    }

    #[test]
    fn every_statement_names_only_pg_catalog_objects_and_has_no_backslash() {
        for (what, sql) in everything_sent() {
            assert!(!sql.contains('\\'), "{what}: a backslash");
            assert!(!sql.contains('@'), "{what}: a placeholder is left");
            let parsed =
                airlock_sql::pg_query::parse(&sql, airlock_sql::pg_query::ParserOptions::DEFAULT)
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
            let tree = serde_json::to_value(&parsed.protobuf).expect("parse tree as JSON");
            let mut ctes = vec![];
            cte_names(&tree, &mut ctes);
            let mut bad = vec![];
            walk(&tree, &ctes, &mut bad);
            assert!(
                bad.is_empty(),
                "{what}: {} construct(s) could resolve outside pg_catalog:\n{}",
                bad.len(),
                bad.join("\n")
            );
        }
    }

    #[test]
    fn the_checker_catches_what_a_planted_object_could_hijack() {
        for sql in [
            "SELECT format_type(1, NULL)",
            "SELECT 1 FROM pg_catalog.pg_class c WHERE c.relname = 'x'",
            "SELECT 1 FROM pg_class",
            "SELECT 'a'::text",
            "SELECT 1 WHERE 'a' OPERATOR(pg_catalog.=) ANY (SELECT 'b') AND 1 IN (1, 2)",
            "SELECT 1 WHERE 1 IN (SELECT 1)",
            "SELECT 1 WHERE 1 IS DISTINCT FROM 2",
            "SELECT CASE 1 WHEN 1 THEN 2 END",
            "SELECT 1 FROM pg_catalog.pg_class a JOIN pg_catalog.pg_class b USING (oid)",
            "SELECT 1 ORDER BY 1 COLLATE \"C\"",
        ] {
            let parsed =
                airlock_sql::pg_query::parse(sql, airlock_sql::pg_query::ParserOptions::DEFAULT)
                    .expect(sql);
            let tree = serde_json::to_value(&parsed.protobuf).expect("JSON");
            let mut bad = vec![];
            walk(&tree, &[], &mut bad);
            assert!(!bad.is_empty(), "not caught: {sql}");
        }
    }
}
