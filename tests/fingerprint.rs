//! The schema fingerprint against `pg_dump --schema-only`, through the real binary
//! and real PostgreSQL: it changes exactly when the dump does, one DDL step at a time;
//! it does not depend on session, role or database settings; objects a hostile role
//! plants in `public` cannot hijack it; and only airlock's own ledger objects are
//! left out of it.

mod util;
use airlock::db::described::{Refresh, Tracker};
use airlock::db::fingerprint::{self, Fingerprint};
use std::collections::BTreeSet;
use util::*;

/// `airlock fingerprint --json`, parsed.
#[derive(serde::Deserialize)]
struct Report {
    database: String,
    #[serde(flatten)]
    fingerprint: Fingerprint,
}

fn socket() -> String {
    std::env::var("PGHOST").unwrap_or_else(|_| "/var/run/postgresql".into())
}

/// `--db` for `db` as the superuser `postgres`, plus extra libpq keywords.
fn conn_as_postgres(db: &TestDb, extra: &str) -> String {
    format!("host={} dbname={} user=postgres {extra}", socket(), db.name)
}

/// `airlock fingerprint --json [LEVEL] --db CONN` with `env`.
fn fingerprint_with(db: &TestDb, level: &[&str], conn: &str, env: &[(&str, &str)]) -> Fingerprint {
    let dir = tempdir();
    let mut args = vec!["--json", "fingerprint"];
    args.extend(level);
    args.extend(["--db", conn]);
    let o = airlock_env(dir.path(), &args, env);
    expect_code(&o, 0);
    let r: Report = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not a fingerprint report ({e}):\n{}", stdout(&o)));
    assert_eq!(r.database, db.name);
    r.fingerprint
}

/// The description query before it was made set-based, frozen (see its header).
const REFERENCE: &str = include_str!("data/fingerprint_reference.sql");

/// The description query of fingerprint format 3, frozen: what ledger rows written
/// before format 4 recorded. The legacy form must describe every object as it did.
const FORMAT3: &str = include_str!("data/fingerprint_format3.sql");

/// The equivalence oracle: the description query describes every object of `db`
/// exactly as the frozen reference does (same kind, name and definition text, so
/// the same hash), read in one transaction as the superuser. `None` when they
/// agree, or the objects they disagree on.
fn differs_from_reference(db: &TestDb) -> Option<String> {
    let mut client = db.client_as("postgres");
    let mut tx = client.transaction().expect("BEGIN");
    // Both forms: the normalised one (format 4 on), and the one older ledgers recorded.
    let mut now = vec![];
    let mut reference = vec![];
    for form in [fingerprint::Form::Normalised, fingerprint::Form::Legacy] {
        now.extend(fingerprint::describe(&mut tx, None, form).expect("the description query"));
        reference
            .extend(fingerprint::describe(&mut tx, Some(REFERENCE), form).expect("the reference"));
    }
    let legacy = fingerprint::describe(&mut tx, None, fingerprint::Form::Legacy)
        .expect("the description query, legacy form");
    let format3 =
        fingerprint::describe(&mut tx, Some(FORMAT3), fingerprint::Form::Legacy).expect("format 3");
    tx.rollback().expect("ROLLBACK");
    assert!(
        legacy == format3,
        "the legacy form does not describe the schema as format 3 did: {} rows against {}; first difference: {:?}",
        legacy.len(),
        format3.len(),
        legacy.iter().zip(&format3).find(|(a, b)| a != b)
    );
    if now == reference {
        return None;
    }
    let (a, b): (BTreeSet<_>, BTreeSet<_>) = (reference.iter().collect(), now.iter().collect());
    let shown: Vec<String> = a
        .difference(&b)
        .map(|r| format!("  reference: {r:?}"))
        .chain(b.difference(&a).map(|r| format!("  query:     {r:?}")))
        .take(20)
        .collect();
    Some(format!(
        "{} rows from the query, {} from the reference; first differences:\n{}",
        now.len(),
        reference.len(),
        shown.join("\n")
    ))
}

fn assert_same_as_reference(db: &TestDb, when: &str) {
    if let Some(d) = differs_from_reference(db) {
        panic!("{when}: the description query and the frozen reference differ: {d}");
    }
}

fn schema_fingerprint(db: &TestDb) -> Fingerprint {
    fingerprint_with(db, &[], &conn_as_postgres(db, ""), &[])
}

/// `pg_dump --schema-only` (owners and privileges included), `\restrict` lines
/// stripped.
fn schema_dump(db: &TestDb) -> String {
    let o = std::process::Command::new("pg_dump")
        .args([
            "--schema-only",
            "-h",
            &socket(),
            "-U",
            "postgres",
            "-d",
            &db.name,
        ])
        .output()
        .expect("pg_dump");
    assert!(
        o.status.success(),
        "pg_dump failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Lines only in `a` (-) or only in `b` (+): enough to see what a step changed.
fn line_diff(a: &str, b: &str) -> String {
    let (la, lb): (BTreeSet<&str>, BTreeSet<&str>) = (a.lines().collect(), b.lines().collect());
    let mut out: Vec<String> = la.difference(&lb).map(|l| format!("- {l}")).collect();
    out.extend(lb.difference(&la).map(|l| format!("+ {l}")));
    out.join("\n")
}

/// Roles made for one test (roles are cluster-wide and tests run in parallel, so
/// names are unique per process), dropped when this goes away.
struct Roles {
    names: Vec<String>,
}

impl Roles {
    fn new(tags: &[&str]) -> Roles {
        let names: Vec<String> = tags
            .iter()
            .map(|t| format!("airlock_fp_{}_{t}", std::process::id()))
            .collect();
        let mut admin = admin();
        for n in &names {
            admin
                .batch_execute(&format!("DROP ROLE IF EXISTS {n}; CREATE ROLE {n}"))
                .unwrap_or_else(|e| panic!("CREATE ROLE {n}: {e}"));
        }
        Roles { names }
    }
}

impl Drop for Roles {
    fn drop(&mut self) {
        if let Ok(mut admin) = std::panic::catch_unwind(admin) {
            for n in &self.names {
                let _ = admin.batch_execute(&format!("DROP ROLE IF EXISTS {n}"));
            }
        }
    }
}

/// A tablespace in a fresh directory owned by the server's user, dropped (with the
/// directory) when this goes away.
struct Tablespace {
    name: String,
    dir: std::path::PathBuf,
}

impl Tablespace {
    fn new(tag: usize) -> Tablespace {
        use std::os::unix::fs::MetadataExt;
        let name = format!("airlock_fp_ts_{}_{tag}", std::process::id());
        let dir = std::env::temp_dir().join(&name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).expect("tablespace directory");
        let mut admin = admin();
        let data_dir: String = admin
            .query_one("SHOW data_directory", &[])
            .expect("SHOW data_directory")
            .get(0);
        let server = std::fs::metadata(&data_dir).expect("the server's data directory");
        let path = std::ffi::CString::new(dir.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path; chown has no other preconditions.
        let rc = unsafe { libc::chown(path.as_ptr(), server.uid(), server.gid()) };
        assert_eq!(
            rc,
            0,
            "chown {} to the PostgreSQL server's user (uid {}): {} (run the tests as root or as that user)",
            dir.display(),
            server.uid(),
            std::io::Error::last_os_error()
        );
        admin
            .batch_execute(&format!(
                "CREATE TABLESPACE {name} LOCATION '{}'",
                dir.display()
            ))
            .expect("CREATE TABLESPACE");
        Tablespace { name, dir }
    }
}

impl Drop for Tablespace {
    fn drop(&mut self) {
        if let Ok(mut admin) = std::panic::catch_unwind(admin) {
            let _ = admin.batch_execute(&format!("DROP TABLESPACE IF EXISTS {}", self.name));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What a step must do to the schema-only dump and the fingerprint.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Expect {
    /// Both change.
    Changes,
    /// Neither changes.
    Stays,
    /// pg_dump does not print it, and the fingerprint sees it anyway: the one kind of
    /// change the two disagree on, on purpose (see the step).
    FingerprintOnly,
}
use Expect::{Changes, FingerprintOnly, Stays};

/// The differential steps: each is run alone, then the fingerprint and the dump are
/// compared with the previous ones. `{owner}` and `{user}` are roles, `{ts}` a
/// tablespace, `{db}` the database.
const STEPS: &[(&str, Expect, &str)] = &[
    // schemas
    ("create schema", Changes, "CREATE SCHEMA s"),
    ("schema owner", Changes, "ALTER SCHEMA s OWNER TO {owner}"),
    ("schema grant", Changes, "GRANT USAGE ON SCHEMA s TO {user}"),
    ("schema comment", Changes, "COMMENT ON SCHEMA s IS 'app'"),
    // extensions
    ("create extension", Changes, "CREATE EXTENSION citext WITH SCHEMA s"),
    ("extension comment", Changes, "COMMENT ON EXTENSION citext IS 'case-insensitive'"),
    // types
    ("enum", Changes, "CREATE TYPE s.mood AS ENUM ('sad', 'ok')"),
    ("enum add value", Changes, "ALTER TYPE s.mood ADD VALUE 'happy'"),
    ("enum add value before", Changes, "ALTER TYPE s.mood ADD VALUE 'meh' BEFORE 'ok'"),
    ("enum rename value", Changes, "ALTER TYPE s.mood RENAME VALUE 'ok' TO 'fine'"),
    ("domain", Changes, "CREATE DOMAIN s.posint AS integer CHECK (VALUE > 0)"),
    ("domain default", Changes, "ALTER DOMAIN s.posint SET DEFAULT 1"),
    ("domain not null", Changes, "ALTER DOMAIN s.posint SET NOT NULL"),
    ("domain constraint not valid", Changes, "ALTER DOMAIN s.posint ADD CONSTRAINT small CHECK (VALUE < 1000) NOT VALID"),
    ("domain constraint validate", Changes, "ALTER DOMAIN s.posint VALIDATE CONSTRAINT small"),
    ("composite type", Changes, "CREATE TYPE s.pair AS (a integer, b text)"),
    ("composite add attribute", Changes, "ALTER TYPE s.pair ADD ATTRIBUTE c date"),
    ("composite attribute collation", Changes, "ALTER TYPE s.pair ALTER ATTRIBUTE b TYPE text COLLATE \"C\""),
    ("range type", Changes, "CREATE TYPE s.floatrange AS RANGE (subtype = float8, subtype_diff = float8mi)"),
    ("shell type", Changes, "CREATE TYPE s.myint"),
    ("base type", Changes, "CREATE FUNCTION s.myint_in(cstring) RETURNS s.myint LANGUAGE internal IMMUTABLE STRICT AS 'int4in';
        CREATE FUNCTION s.myint_out(s.myint) RETURNS cstring LANGUAGE internal IMMUTABLE STRICT AS 'int4out';
        CREATE TYPE s.myint (INPUT = s.myint_in, OUTPUT = s.myint_out, LIKE = integer)"),
    ("type owner", Changes, "ALTER TYPE s.mood OWNER TO {owner}"),
    ("type grant", Changes, "REVOKE USAGE ON TYPE s.mood FROM PUBLIC"),
    ("type comment", Changes, "COMMENT ON TYPE s.pair IS 'two things'"),
    ("rename attribute", Changes, "ALTER TYPE s.pair RENAME ATTRIBUTE a TO first"),
    ("domain constraint comment", Changes, "COMMENT ON CONSTRAINT small ON DOMAIN s.posint IS 'small'"),
    // tables and columns
    ("create table", Changes, "CREATE TABLE s.t (
        id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        name text NOT NULL DEFAULT 'x',
        mood s.mood,
        qty numeric(10,2),
        twice integer GENERATED ALWAYS AS (id * 2) STORED)"),
    ("column default", Changes, "ALTER TABLE s.t ALTER COLUMN name SET DEFAULT 'y'"),
    ("column typmod", Changes, "ALTER TABLE s.t ALTER COLUMN qty TYPE numeric(12,2)"),
    ("column collation", Changes, "ALTER TABLE s.t ALTER COLUMN name TYPE text COLLATE \"C\""),
    ("column not null", Changes, "ALTER TABLE s.t ALTER COLUMN qty SET NOT NULL"),
    ("column storage", Changes, "ALTER TABLE s.t ALTER COLUMN name SET STORAGE EXTERNAL"),
    ("column compression", Changes, "ALTER TABLE s.t ALTER COLUMN name SET COMPRESSION pglz"),
    ("column statistics", Changes, "ALTER TABLE s.t ALTER COLUMN qty SET STATISTICS 500"),
    ("column options", Changes, "ALTER TABLE s.t ALTER COLUMN qty SET (n_distinct = 10)"),
    ("drop expression", Changes, "ALTER TABLE s.t ADD COLUMN thrice integer GENERATED ALWAYS AS (id * 3) STORED;
        ALTER TABLE s.t ALTER COLUMN thrice DROP EXPRESSION"),
    ("identity options", Changes, "ALTER TABLE s.t ALTER COLUMN id SET INCREMENT BY 5"),
    ("identity kind", Changes, "ALTER TABLE s.t ALTER COLUMN id SET GENERATED BY DEFAULT"),
    ("add column", Changes, "ALTER TABLE s.t ADD COLUMN note text"),
    ("rename column", Changes, "ALTER TABLE s.t RENAME COLUMN note TO remark"),
    ("drop column", Changes, "ALTER TABLE s.t DROP COLUMN remark"),
    ("column comment", Changes, "COMMENT ON COLUMN s.t.name IS 'the name'"),
    ("reloptions", Changes, "ALTER TABLE s.t SET (fillfactor = 70)"),
    ("toast reloptions", Changes, "ALTER TABLE s.t SET (toast.autovacuum_enabled = false)"),
    ("replica identity full", Changes, "ALTER TABLE s.t REPLICA IDENTITY FULL"),
    ("row level security", Changes, "ALTER TABLE s.t ENABLE ROW LEVEL SECURITY"),
    ("force row level security", Changes, "ALTER TABLE s.t FORCE ROW LEVEL SECURITY"),
    ("policy", Changes, "CREATE POLICY p ON s.t USING (qty > 0)"),
    ("policy roles", Changes, "ALTER POLICY p ON s.t TO {user}"),
    ("policy check", Changes, "ALTER POLICY p ON s.t WITH CHECK (qty < 100)"),
    ("restrictive policy", Changes, "CREATE POLICY q ON s.t AS RESTRICTIVE FOR UPDATE USING (true)"),
    ("policy comment", Changes, "COMMENT ON POLICY q ON s.t IS 'q'"),
    ("check constraint not valid", Changes, "ALTER TABLE s.t ADD CONSTRAINT positive CHECK (qty >= 0) NOT VALID"),
    ("validate constraint", Changes, "ALTER TABLE s.t VALIDATE CONSTRAINT positive"),
    ("constraint comment", Changes, "COMMENT ON CONSTRAINT positive ON s.t IS 'no debts'"),
    ("unique index", Changes, "CREATE UNIQUE INDEX t_name ON s.t (name) WITH (fillfactor = 80)"),
    ("cluster on", Changes, "ALTER TABLE s.t CLUSTER ON t_name"),
    ("without cluster", Changes, "ALTER TABLE s.t SET WITHOUT CLUSTER"),
    ("cluster on again", Changes, "ALTER TABLE s.t CLUSTER ON t_name"),
    ("replica identity index", Changes, "ALTER TABLE s.t REPLICA IDENTITY USING INDEX t_name"),
    ("index reloptions", Changes, "ALTER INDEX s.t_name SET (fillfactor = 60)"),
    ("expression index", Changes, "CREATE INDEX t_lower ON s.t (lower(name)) WHERE qty > 1"),
    ("index statistics", Changes, "ALTER INDEX s.t_lower ALTER COLUMN 1 SET STATISTICS 100"),
    ("index comment", Changes, "COMMENT ON INDEX s.t_lower IS 'lookups'"),
    ("foreign key", Changes, "CREATE TABLE s.ref (tid integer REFERENCES s.t (id) ON DELETE CASCADE DEFERRABLE)"),
    ("foreign key deferrable", Changes, "ALTER TABLE s.ref ALTER CONSTRAINT ref_tid_fkey NOT DEFERRABLE"),
    // Turns foreign key enforcement off; pg_dump prints nothing about its internal
    // triggers, the fingerprint keeps their state with the constraint.
    ("foreign key triggers disabled", FingerprintOnly, "ALTER TABLE s.ref DISABLE TRIGGER ALL"),
    ("constraint trigger", Changes, "CREATE FUNCTION s.ctrg() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NULL; END$$;
        CREATE CONSTRAINT TRIGGER checked AFTER INSERT ON s.ref DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION s.ctrg()"),
    ("exclusion constraint", Changes, "CREATE TABLE s.booking (during tsrange, EXCLUDE USING gist (during WITH &&))"),
    ("inheritance", Changes, "CREATE TABLE s.base (a integer); CREATE TABLE s.kid (b integer) INHERITS (s.base)"),
    ("no inherit", Changes, "ALTER TABLE s.kid NO INHERIT s.base"),
    ("inherit again", Changes, "ALTER TABLE s.kid INHERIT s.base"),
    ("not of type", Changes, "CREATE TABLE s.typed OF s.pair; ALTER TABLE s.typed NOT OF"),
    ("typed table", Changes, "CREATE TABLE s.pairs OF s.pair"),
    ("partitioned table", Changes, "CREATE TABLE s.parted (k integer, v text) PARTITION BY RANGE (k)"),
    ("partition", Changes, "CREATE TABLE s.part1 PARTITION OF s.parted FOR VALUES FROM (0) TO (10)"),
    ("attach partition", Changes, "CREATE TABLE s.part2 (k integer, v text);
        ALTER TABLE s.parted ATTACH PARTITION s.part2 FOR VALUES FROM (10) TO (20)"),
    ("partitioned index", Changes, "CREATE INDEX parted_k ON s.parted (k)"),
    ("detach partition", Changes, "ALTER TABLE s.parted DETACH PARTITION s.part2"),
    ("attach partition index", Changes, "ALTER TABLE s.parted ATTACH PARTITION s.part2 FOR VALUES FROM (10) TO (30)"),
    ("partition options", Changes, "ALTER TABLE s.part1 SET (autovacuum_enabled = false)"),
    ("unlogged", Changes, "ALTER TABLE s.base SET UNLOGGED"),
    ("access method", Changes, "CREATE ACCESS METHOD heap2 TYPE TABLE HANDLER heap_tableam_handler"),
    ("table access method", Changes, "ALTER TABLE s.base SET ACCESS METHOD heap2"),
    ("index access method", Changes, "CREATE ACCESS METHOD bt2 TYPE INDEX HANDLER bthandler"),
    ("tablespace", Changes, "ALTER TABLE s.kid SET TABLESPACE {ts}"),
    ("index tablespace", Changes, "ALTER INDEX s.t_lower SET TABLESPACE {ts}"),
    ("table owner", Changes, "ALTER TABLE s.t OWNER TO {owner}"),
    ("table grant", Changes, "GRANT SELECT ON s.t TO {user}"),
    ("column grant", Changes, "GRANT UPDATE (name) ON s.t TO {user}"),
    ("column revoke", Changes, "REVOKE UPDATE (name) ON s.t FROM {user}"),
    ("table comment", Changes, "COMMENT ON TABLE s.t IS 'things'"),
    ("grant with grant option", Changes, "GRANT DELETE ON s.t TO {user} WITH GRANT OPTION"),
    ("rename table", Changes, "CREATE TABLE s.old_name (a integer); ALTER TABLE s.old_name RENAME TO new_name"),
    ("set schema", Changes, "CREATE SCHEMA s2; ALTER TABLE s.new_name SET SCHEMA s2"),
    // views
    ("view", Changes, "CREATE VIEW s.v AS SELECT id, name FROM s.t"),
    ("view definition", Changes, "CREATE OR REPLACE VIEW s.v AS SELECT id, name FROM s.t WHERE id > 0"),
    ("security barrier", Changes, "ALTER VIEW s.v SET (security_barrier = true)"),
    ("check option", Changes, "ALTER VIEW s.v SET (check_option = local)"),
    ("security invoker", Changes, "ALTER VIEW s.v SET (security_invoker = true)"),
    ("view column default", Changes, "ALTER VIEW s.v ALTER COLUMN name SET DEFAULT 'z'"),
    ("view grant", Changes, "GRANT INSERT ON s.v TO {user}"),
    ("materialized view", Changes, "CREATE MATERIALIZED VIEW s.mv AS SELECT id, qty FROM s.t WITH NO DATA"),
    ("materialized view options", Changes, "ALTER MATERIALIZED VIEW s.mv SET (fillfactor = 50)"),
    ("materialized view index", Changes, "CREATE UNIQUE INDEX mv_id ON s.mv (id)"),
    // sequences
    ("sequence", Changes, "CREATE SEQUENCE s.seq AS bigint START 5 INCREMENT 2"),
    ("sequence owner", Changes, "ALTER SEQUENCE s.seq OWNER TO {owner}"),
    ("sequence owned by", Changes, "ALTER SEQUENCE s.seq OWNED BY s.t.qty"),
    ("sequence options", Changes, "ALTER SEQUENCE s.seq MAXVALUE 1000 CYCLE"),
    ("sequence start", Changes, "ALTER SEQUENCE s.seq START WITH 7"),
    ("sequence restart", Stays, "ALTER SEQUENCE s.seq RESTART WITH 9"),
    ("identity restart", Stays, "ALTER TABLE s.t ALTER COLUMN id RESTART WITH 100"),
    ("unlogged sequence", Changes, "ALTER SEQUENCE s.seq SET UNLOGGED"),
    ("sequence grant", Changes, "GRANT USAGE ON SEQUENCE s.seq TO {user}"),
    ("serial column", Changes, "ALTER TABLE s.ref ADD COLUMN n serial"),
    // functions
    ("function", Changes, "CREATE FUNCTION s.f(integer) RETURNS integer LANGUAGE sql IMMUTABLE AS 'SELECT $1 + 1'"),
    ("function body", Changes, "CREATE OR REPLACE FUNCTION s.f(integer) RETURNS integer LANGUAGE sql IMMUTABLE AS 'SELECT $1 + 2'"),
    ("security definer", Changes, "ALTER FUNCTION s.f(integer) SECURITY DEFINER"),
    ("function config", Changes, "ALTER FUNCTION s.f(integer) SET search_path = pg_catalog"),
    ("volatility", Changes, "ALTER FUNCTION s.f(integer) STABLE"),
    ("parallel", Changes, "ALTER FUNCTION s.f(integer) PARALLEL SAFE"),
    ("leakproof", Changes, "ALTER FUNCTION s.f(integer) LEAKPROOF"),
    ("cost", Changes, "ALTER FUNCTION s.f(integer) COST 5"),
    ("strict", Changes, "ALTER FUNCTION s.f(integer) STRICT"),
    ("function owner", Changes, "ALTER FUNCTION s.f(integer) OWNER TO {owner}"),
    ("function revoke", Changes, "REVOKE EXECUTE ON FUNCTION s.f(integer) FROM PUBLIC"),
    ("function comment", Changes, "COMMENT ON FUNCTION s.f(integer) IS 'adds'"),
    ("rename function", Changes, "ALTER FUNCTION s.f(integer) RENAME TO f1"),
    ("function rows", Changes, "CREATE FUNCTION s.srf() RETURNS SETOF integer LANGUAGE sql ROWS 5 AS 'SELECT 1'"),
    ("function depends on extension", Changes, "ALTER FUNCTION s.srf() DEPENDS ON EXTENSION citext"),
    ("sql-standard body", Changes, "CREATE FUNCTION s.g(a integer) RETURNS integer LANGUAGE sql BEGIN ATOMIC SELECT a * 2; END"),
    ("procedure", Changes, "CREATE PROCEDURE s.p() LANGUAGE plpgsql AS $$BEGIN PERFORM 1; END$$"),
    ("aggregate", Changes, "CREATE AGGREGATE s.total(integer) (SFUNC = int4pl, STYPE = integer, INITCOND = '0')"),
    ("aggregate owner", Changes, "ALTER AGGREGATE s.total(integer) OWNER TO {owner}"),
    ("extension member", Changes, "ALTER EXTENSION citext ADD FUNCTION s.g(integer)"),
    ("trigger function", Changes, "CREATE FUNCTION s.trg() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$"),
    // operators and friends
    ("operator", Changes, "CREATE OPERATOR s.=== (LEFTARG = integer, RIGHTARG = integer, FUNCTION = int4eq, COMMUTATOR = OPERATOR(s.===))"),
    ("operator restrict", Changes, "ALTER OPERATOR s.=== (integer, integer) SET (RESTRICT = eqsel, JOIN = eqjoinsel)"),
    ("operator owner", Changes, "ALTER OPERATOR s.=== (integer, integer) OWNER TO {owner}"),
    ("operator with negator", Changes, "CREATE OPERATOR s.!== (LEFTARG = integer, RIGHTARG = integer, FUNCTION = int4ne, NEGATOR = OPERATOR(s.===), HASHES, MERGES)"),
    ("operator class", Changes, "CREATE OPERATOR CLASS s.rev_ops FOR TYPE integer USING btree AS
        OPERATOR 1 >, OPERATOR 2 >=, OPERATOR 3 =, OPERATOR 4 <=, OPERATOR 5 <, FUNCTION 1 btint4cmp(integer, integer)"),
    ("operator family member", Changes, "ALTER OPERATOR FAMILY s.rev_ops USING btree ADD FUNCTION 1 (integer, bigint) btint48cmp(integer, bigint)"),
    ("operator family", Changes, "CREATE OPERATOR FAMILY s.fam USING hash"),
    ("cast", Changes, "CREATE CAST (s.pair AS s.myint) WITH INOUT AS ASSIGNMENT"),
    ("cast comment", Changes, "COMMENT ON CAST (s.pair AS s.myint) IS 'odd'"),
    ("collation", Changes, "CREATE COLLATION s.c2 FROM \"C\""),
    ("collation owner", Changes, "ALTER COLLATION s.c2 OWNER TO {owner}"),
    ("conversion", Changes, "CREATE CONVERSION s.conv FOR 'LATIN1' TO 'UTF8' FROM iso8859_1_to_utf8"),
    ("text search configuration", Changes, "CREATE TEXT SEARCH CONFIGURATION s.ts (COPY = english)"),
    ("text search mapping", Changes, "ALTER TEXT SEARCH CONFIGURATION s.ts DROP MAPPING FOR email"),
    ("text search dictionary", Changes, "CREATE TEXT SEARCH DICTIONARY s.dict (TEMPLATE = simple, STOPWORDS = english)"),
    ("text search dictionary options", Changes, "ALTER TEXT SEARCH DICTIONARY s.dict (ACCEPT = false)"),
    ("text search template", Changes, "CREATE TEXT SEARCH TEMPLATE s.tmpl (INIT = dsimple_init, LEXIZE = dsimple_lexize)"),
    ("text search parser", Changes, "CREATE TEXT SEARCH PARSER s.prs (START = prsd_start, GETTOKEN = prsd_nexttoken, END = prsd_end, LEXTYPES = prsd_lextype)"),
    // languages and transforms
    ("language", Changes, "CREATE TRUSTED LANGUAGE plx HANDLER plpgsql_call_handler"),
    ("language grant", Changes, "GRANT USAGE ON LANGUAGE plx TO {user}"),
    ("transform", Changes, "CREATE FUNCTION s.from_sql(internal) RETURNS internal LANGUAGE internal IMMUTABLE AS 'int4recv';
        CREATE FUNCTION s.to_sql(internal) RETURNS s.myint LANGUAGE internal IMMUTABLE AS 'int4recv';
        CREATE TRANSFORM FOR s.myint LANGUAGE plx (FROM SQL WITH FUNCTION s.from_sql(internal), TO SQL WITH FUNCTION s.to_sql(internal))"),
    // foreign data
    ("foreign-data wrapper", Changes, "CREATE FOREIGN DATA WRAPPER w OPTIONS (debug 'true')"),
    ("server", Changes, "CREATE SERVER srv FOREIGN DATA WRAPPER w OPTIONS (host 'example')"),
    ("server grant", Changes, "GRANT USAGE ON FOREIGN SERVER srv TO {user}"),
    ("server version", Changes, "ALTER SERVER srv VERSION '2'"),
    ("user mapping", Changes, "CREATE USER MAPPING FOR {user} SERVER srv OPTIONS (user 'bob')"),
    ("user mapping options", Changes, "ALTER USER MAPPING FOR {user} SERVER srv OPTIONS (SET user 'alice')"),
    ("foreign table", Changes, "CREATE FOREIGN TABLE s.ft (a integer OPTIONS (col 'x')) SERVER srv OPTIONS (tab 'y')"),
    ("foreign table options", Changes, "ALTER FOREIGN TABLE s.ft OPTIONS (ADD schema 'z')"),
    ("foreign column options", Changes, "ALTER FOREIGN TABLE s.ft ALTER COLUMN a OPTIONS (SET col 'w')"),
    // triggers and rules
    ("trigger", Changes, "CREATE TRIGGER stamp BEFORE INSERT ON s.t FOR EACH ROW EXECUTE FUNCTION s.trg()"),
    ("trigger disabled", Changes, "ALTER TABLE s.t DISABLE TRIGGER stamp"),
    ("trigger always", Changes, "ALTER TABLE s.t ENABLE ALWAYS TRIGGER stamp"),
    ("trigger comment", Changes, "COMMENT ON TRIGGER stamp ON s.t IS 'stamps'"),
    ("event trigger", Changes, "CREATE FUNCTION s.on_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$BEGIN END$$;
        CREATE EVENT TRIGGER on_ddl ON ddl_command_end WHEN TAG IN ('CREATE TABLE') EXECUTE FUNCTION s.on_ddl()"),
    ("event trigger disabled", Changes, "ALTER EVENT TRIGGER on_ddl DISABLE"),
    ("event trigger comment", Changes, "COMMENT ON EVENT TRIGGER on_ddl IS 'ddl'"),
    ("rule", Changes, "CREATE RULE keep AS ON DELETE TO s.kid DO INSTEAD NOTHING"),
    ("rule disabled", Changes, "ALTER TABLE s.kid DISABLE RULE keep"),
    ("rule on a view", Changes, "CREATE RULE v_del AS ON DELETE TO s.v DO INSTEAD DELETE FROM s.t WHERE id = OLD.id"),
    // data (before publications want a replica identity for deletes)
    ("insert rows", Stays, "INSERT INTO s.t (name, qty) SELECT 'n' || g, g FROM generate_series(1, 500) g;
        INSERT INTO s.parted SELECT g, 'v' FROM generate_series(0, 19) g"),
    ("update and delete rows", Stays, "UPDATE s.t SET qty = qty + 1 WHERE id % 2 = 0; DELETE FROM s.t WHERE id % 7 = 0"),
    // replication
    ("publication", Changes, "CREATE PUBLICATION pub FOR TABLE s.t (id, name, qty) WHERE (qty > 1)"),
    ("publication options", Changes, "ALTER PUBLICATION pub SET (publish = 'insert')"),
    ("publication of a schema", Changes, "CREATE PUBLICATION pub2 FOR TABLES IN SCHEMA s"),
    ("publication owner", Changes, "ALTER PUBLICATION pub2 OWNER TO {owner}"),
    ("subscription", Changes, "CREATE SUBSCRIPTION sub CONNECTION 'dbname=airlock_nowhere' PUBLICATION pub WITH (connect = false, slot_name = NONE, enabled = false)"),
    ("subscription options", Changes, "ALTER SUBSCRIPTION sub SET (binary = true)"),
    ("drop subscription", Changes, "DROP SUBSCRIPTION sub"),
    // statistics objects
    ("statistics object", Changes, "CREATE STATISTICS s.st (ndistinct) ON id, qty FROM s.t"),
    ("statistics target", Changes, "ALTER STATISTICS s.st SET STATISTICS 50"),
    ("statistics owner", Changes, "ALTER STATISTICS s.st OWNER TO {owner}"),
    // default privileges
    ("default privileges in schema", Changes, "ALTER DEFAULT PRIVILEGES IN SCHEMA s GRANT SELECT ON TABLES TO {user}"),
    ("default privileges for role", Changes, "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC"),
    ("default privileges on types", Changes, "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} REVOKE USAGE ON TYPES FROM PUBLIC"),
    ("default privileges on schemas", Changes, "ALTER DEFAULT PRIVILEGES GRANT USAGE ON SCHEMAS TO {user}"),
    // privileges on what initdb made
    ("grant on a pg_catalog function", Changes, "GRANT EXECUTE ON FUNCTION pg_catalog.pg_ls_dir(text) TO {user}"),
    ("column grant on a catalog", Changes, "GRANT SELECT (rolname) ON pg_catalog.pg_authid TO {user}"),
    ("revoke on plpgsql", Changes, "REVOKE USAGE ON LANGUAGE plpgsql FROM PUBLIC"),
    ("revoke on pg_catalog", Changes, "REVOKE USAGE ON SCHEMA pg_catalog FROM PUBLIC"),
    ("public schema", Changes, "REVOKE ALL ON SCHEMA public FROM PUBLIC"),
    // what must change neither
    ("analyze", Stays, "ANALYZE"),
    ("vacuum", Stays, "VACUUM"),
    ("vacuum full", Stays, "VACUUM FULL s.t"),
    ("cluster", Stays, "CLUSTER s.t"),
    ("reindex", Stays, "REINDEX TABLE s.t"),
    ("refresh materialized view", Stays, "REFRESH MATERIALIZED VIEW s.mv"),
    ("setval", Stays, "SELECT setval('s.seq', 77)"),
    ("nextval", Stays, "SELECT nextval('s.seq'), nextval('s.t_id_seq')"),
    ("checkpoint", Stays, "CHECKPOINT"),
    ("large object", Stays, "SELECT lo_create(4242); COMMENT ON LARGE OBJECT 4242 IS 'blob'"),
    ("database settings", Stays, "ALTER DATABASE {db} SET search_path = public, pg_catalog"),
    ("role settings in the database", Stays, "ALTER ROLE {user} IN DATABASE {db} SET DateStyle = 'SQL, DMY'"),
    ("temporary table", Stays, "CREATE TEMPORARY TABLE scratch (a integer)"),
    ("statistics reset", Stays, "SELECT pg_stat_reset()"),
    ("truncate", Stays, "TRUNCATE s.ref"),
    ("rolled back ddl", Stays, "BEGIN; DROP TABLE s.ref; ROLLBACK"),
    ("same statistics target again", Stays, "ALTER TABLE s.t ALTER COLUMN qty SET STATISTICS 500"),
    ("the same function again", Stays, "CREATE OR REPLACE FUNCTION s.trg() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$"),
    ("scratch objects", Changes, "CREATE TABLE s.again (a integer PRIMARY KEY, b text DEFAULT 'b' CHECK (b <> ''));
        CREATE INDEX again_b ON s.again (b);
        CREATE VIEW s.again_v AS SELECT a, b FROM s.again WHERE a > 0;
        CREATE FUNCTION s.again_f(x integer) RETURNS integer LANGUAGE sql AS 'SELECT x';
        CREATE TRIGGER again_t BEFORE UPDATE ON s.again FOR EACH ROW EXECUTE FUNCTION s.trg()"),
    ("drop and recreate an identical view", Stays, "DROP VIEW s.again_v; CREATE VIEW s.again_v AS SELECT a, b FROM s.again WHERE a > 0"),
    ("drop and recreate an identical function", Stays, "DROP FUNCTION s.again_f(integer); CREATE FUNCTION s.again_f(x integer) RETURNS integer LANGUAGE sql AS 'SELECT x'"),
    ("drop and recreate an identical table", Stays, "DROP TABLE s.again CASCADE;
        CREATE TABLE s.again (a integer PRIMARY KEY, b text DEFAULT 'b' CHECK (b <> ''));
        CREATE INDEX again_b ON s.again (b);
        CREATE VIEW s.again_v AS SELECT a, b FROM s.again WHERE a > 0;
        CREATE TRIGGER again_t BEFORE UPDATE ON s.again FOR EACH ROW EXECUTE FUNCTION s.trg()"),
    ("drop and recreate an identical type", Stays, "DROP TYPE s.floatrange; CREATE TYPE s.floatrange AS RANGE (subtype = float8, subtype_diff = float8mi)"),
    // renames that change how other objects are written (the incremental description
    // must describe those again too), each undone after
    ("enum default", Changes, "ALTER TABLE s.t ALTER COLUMN mood SET DEFAULT 'sad'"),
    ("rename an enum value a default shows", Changes, "ALTER TYPE s.mood RENAME VALUE 'sad' TO 'blue'"),
    ("rename a column views, keys and indexes use", Changes, "ALTER TABLE s.t RENAME COLUMN id TO ident"),
    ("rename the column back", Changes, "ALTER TABLE s.t RENAME COLUMN ident TO id"),
    ("rename a table views and keys use", Changes, "ALTER TABLE s.t RENAME TO things"),
    ("rename the table back", Changes, "ALTER TABLE s.things RENAME TO t"),
    ("rename a trigger function", Changes, "ALTER FUNCTION s.trg() RENAME TO trg2"),
    ("rename a type columns use", Changes, "ALTER TYPE s.mood RENAME TO feeling"),
    ("function a default calls", Changes, "CREATE FUNCTION s.dflt() RETURNS integer LANGUAGE sql AS 'SELECT 7';
        ALTER TABLE s.ref ADD COLUMN d integer DEFAULT s.dflt()"),
    ("rename a function a default calls", Changes, "ALTER FUNCTION s.dflt() RENAME TO dflt2"),
    ("rename a schema", Changes, "ALTER SCHEMA s RENAME TO s4"),
    ("rename the schema back", Changes, "ALTER SCHEMA s4 RENAME TO s"),
    ("rename a role that owns objects", Changes, "ALTER ROLE {owner} RENAME TO {owner}_x"),
    ("rename the role back", Changes, "ALTER ROLE {owner}_x RENAME TO {owner}"),
    ("drop a comment", Changes, "COMMENT ON TABLE s.t IS NULL"),
    ("drop a column a view does not use", Changes, "ALTER TABLE s.ref DROP COLUMN d"),
    // and dropping things again
    ("drop policy", Changes, "DROP POLICY q ON s.t"),
    ("drop rule", Changes, "DROP RULE keep ON s.kid"),
    ("drop trigger", Changes, "DROP TRIGGER stamp ON s.t"),
    ("drop event trigger", Changes, "DROP EVENT TRIGGER on_ddl"),
    ("drop index", Changes, "DROP INDEX s.t_lower"),
    ("drop table", Changes, "DROP TABLE s.ref"),
    ("drop extension", Changes, "ALTER EXTENSION citext DROP FUNCTION s.g(integer); DROP EXTENSION citext"),
];

/// The server's major version.
fn server_major(db: &TestDb) -> u32 {
    db.scalar("SELECT current_setting('server_version_num')")
        .parse::<u32>()
        .expect("server_version_num")
        / 10000
}

/// A step as PostgreSQL `major` can run it: what 15 added (a table's access method,
/// security_invoker, unlogged sequences, publication column lists, row filters and
/// schemas) is left out on 14, or written as 14 can where later steps need its object.
fn on_major(major: u32, step: &str, sql: &str) -> Option<String> {
    if major >= 15 {
        return Some(sql.to_string());
    }
    match step {
        "table access method" | "security invoker" | "unlogged sequence" => None,
        "publication" => Some("CREATE PUBLICATION pub FOR TABLE s.t".into()),
        "publication of a schema" => Some("CREATE PUBLICATION pub2 FOR TABLE s.t".into()),
        _ => Some(sql.to_string()),
    }
}

/// The steps are walked in this many parts, each its own test from a fresh database
/// (the steps before its part run first, unchecked), so the two test threads share the
/// walk (a step runs the binary, `pg_dump` and the reference queries: 243 of them on
/// one thread were ~170 s of every run; issue 87).
const PARTS: usize = 4;

#[test]
fn the_fingerprint_changes_exactly_when_the_schema_dump_does_first_part() {
    walk_steps(0);
}

#[test]
fn the_fingerprint_changes_exactly_when_the_schema_dump_does_second_part() {
    walk_steps(1);
}

#[test]
fn the_fingerprint_changes_exactly_when_the_schema_dump_does_third_part() {
    walk_steps(2);
}

#[test]
fn the_fingerprint_changes_exactly_when_the_schema_dump_does_fourth_part() {
    walk_steps(3);
}

/// The steps of `part` (of [`PARTS`]): every step of the list is in exactly one part.
fn part_of_steps(part: usize) -> std::ops::Range<usize> {
    let per = STEPS.len().div_ceil(PARTS);
    (part * per).min(STEPS.len())..((part + 1) * per).min(STEPS.len())
}

#[test]
fn the_parts_of_the_step_walk_cover_every_step_once() {
    let mut next = 0;
    for part in 0..PARTS {
        let r = part_of_steps(part);
        assert_eq!(
            r.start, next,
            "part {part} starts where the one before ended"
        );
        assert!(r.len() >= 50, "part {part} has {} steps", r.len());
        next = r.end;
    }
    assert_eq!(next, STEPS.len());
    let changing = STEPS.iter().filter(|(_, want, _)| *want == Changes).count();
    assert!(changing >= 60, "only {changing} kinds of DDL are tried");
}

/// Walks the steps of `part` on a fresh database that the steps before it built: after
/// each, the fingerprint changes exactly when the schema-only dump does (as the step
/// expects), the description agrees with the frozen reference, and the incremental
/// description says what the whole one says.
fn walk_steps(part: usize) {
    let (owner, user) = (format!("owner{part}"), format!("user{part}"));
    let roles = Roles::new(&[&owner, &user]);
    let tablespace = Tablespace::new(part);
    let db = TestDb::new(&format!("fp_diff{part}"));
    let substitute = |sql: &str| {
        sql.replace("{owner}", &roles.names[0])
            .replace("{user}", &roles.names[1])
            .replace("{ts}", &tablespace.name)
            .replace("{db}", &db.name)
    };
    let major = server_major(&db);
    let run = |step: &str, sql: &str| {
        if let Err(e) = db.client().batch_execute(sql) {
            // Clean up what cannot go with the database, then fail.
            let _ = db.client().batch_execute("DROP SUBSCRIPTION IF EXISTS sub");
            panic!("step {step:?}: {sql}: {}", airlock::db::pg_message(&e));
        }
    };
    let steps = part_of_steps(part);
    // The steps before this part, each alone as the walk runs it, unchecked.
    for (step, _, sql) in &STEPS[..steps.start] {
        if let Some(sql) = on_major(major, step, sql) {
            run(step, &substitute(&sql));
        }
    }
    let mut fp = schema_fingerprint(&db);
    let mut dump = schema_dump(&db);
    let mut failures = vec![];
    let mut changing = 0;
    // The incremental description, brought up to date after every step, must say
    // what the whole one says.
    let mut tracked = db.client_as("postgres");
    // (A schema this small is described whole every time by default: the test
    // follows it incrementally, as a larger one is.)
    let mut tracker = Tracker::new("", &db.name, false).following_any_size();
    // Described whole where this part starts, as a deploy's first fingerprint is.
    let mut tx = tracked.transaction().expect("BEGIN");
    let first = tracker.fingerprint(&mut tx).expect("the first description");
    tx.rollback().expect("ROLLBACK");
    tracker.committed();
    assert_eq!(
        first, fp.fingerprint,
        "the first description and the binary's"
    );
    let mut incremental = 0;
    let mut walked = 0;
    for (step, want, sql) in &STEPS[steps.clone()] {
        let Some(sql) = on_major(major, step, sql) else {
            eprintln!("step {step:?} needs PostgreSQL 15 or newer: not on {major}");
            continue;
        };
        let sql = substitute(&sql);
        run(step, &sql);
        walked += 1;
        let (fp2, dump2) = (schema_fingerprint(&db), schema_dump(&db));
        let fp_changed = fp2.fingerprint != fp.fingerprint;
        let dump_changed = dump2 != dump;
        let expected = match want {
            Changes => (true, true),
            Stays => (false, false),
            FingerprintOnly => (true, false),
        };
        if (fp_changed, dump_changed) != expected {
            failures.push(format!(
                "step {step:?} ({sql}): fingerprint {}, dump {}, expected {want:?}\n  \
                 fingerprint parts: {:?}\n  dump lines:\n{}",
                if fp_changed { "changed" } else { "unchanged" },
                if dump_changed { "changed" } else { "unchanged" },
                fingerprint::diff(&fp, &fp2),
                line_diff(&dump, &dump2)
            ));
        }
        if let Some(d) = differs_from_reference(&db) {
            failures.push(format!("step {step:?} ({sql}): {d}"));
        }
        let mut tx = tracked.transaction().expect("BEGIN");
        let kept = tracker
            .fingerprint(&mut tx)
            .expect("the incremental description");
        tx.rollback().expect("ROLLBACK");
        // The tracker's transaction wrote nothing: as after a deploy's commit, every
        // transaction whose rows that description saw (this step's) is known to it,
        // and the next step's changes must still be found.
        tracker.committed();
        if kept != fp2.fingerprint {
            failures.push(format!(
                "step {step:?} ({sql}): the incremental description ({:?}) says {}, the whole one {}",
                tracker.last,
                &kept[..8],
                fp2.short()
            ));
        }
        if matches!(tracker.last, Some(Refresh::Incremental { .. })) {
            incremental += 1;
        }
        if *want == Changes {
            changing += 1;
        }
        (fp, dump) = (fp2, dump2);
    }
    let _ = db.client().batch_execute("DROP SUBSCRIPTION IF EXISTS sub");
    drop(db);
    assert!(
        failures.is_empty(),
        "{} of {walked} steps ({steps:?} of {}) broke the rule:\n\n{}",
        failures.len(),
        STEPS.len(),
        failures.join("\n\n")
    );
    // Each part tries many kinds of DDL (all of them: more than 60 that change both).
    assert!(
        changing >= 10,
        "only {changing} kinds of DDL were tried in {steps:?}"
    );
    // Many steps were followed one object at a time, not by describing everything (a
    // part's share is 40-70%: some kinds of change are described whole on purpose).
    assert!(
        incremental * 3 > walked,
        "only {incremental} of {walked} steps ({steps:?}) were followed incrementally"
    );
}

/// Objects whose rendering depends on settings: literals of every output-sensitive
/// type in defaults, checks, views and a function body; names that need quoting or
/// qualifying; rows of those types for `--data`; a schema whose name LIKE 'pg\_%'
/// would miss only when backslashes are escapes.
const SETTINGS_SENSITIVE: &str = r#"
CREATE SCHEMA app;
CREATE TABLE app."Mixed Case" (
    id integer PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT '2024-03-01 12:34:56.789+00',
    day date DEFAULT '2024-03-01' CHECK (day > '2000-01-31'),
    span interval DEFAULT '1 day 02:03:04.5',
    ratio float8 DEFAULT 0.1,
    raw bytea DEFAULT '\x00ff10'::bytea,
    price money DEFAULT 12.34,
    doc xml DEFAULT '<a>b</a>',
    note text DEFAULT 'it''s a \ backslash'
);
INSERT INTO app."Mixed Case" (id) VALUES (1);
INSERT INTO app."Mixed Case" VALUES (2, '1999-12-31 23:59:59+13', '2001-02-03', '-3 years 2 mons', 1e-7, '\xdeadbeef', 0.5, '<x/>', 'plain');
CREATE VIEW app.recent AS
    SELECT id, at AT TIME ZONE 'UTC' AS utc, span * 2 AS twice, ratio / 3 AS third
    FROM app."Mixed Case" WHERE at > '2020-01-01 00:00:00+00'::timestamptz - '1 year'::interval;
CREATE FUNCTION app.count_recent() RETURNS bigint LANGUAGE sql STABLE
BEGIN ATOMIC SELECT count(*) FROM app.recent WHERE third < 0.5; END;
CREATE SCHEMA pg0toast_x;
CREATE TABLE pg0toast_x.hidden (a integer);
"#;

#[test]
fn hostile_session_role_and_database_settings_do_not_change_the_fingerprint() {
    let db = TestDb::new("fp_settings");
    db.exec(SETTINGS_SENSITIVE);
    let plain = conn_as_postgres(&db, "");
    let schema = fingerprint_with(&db, &[], &plain, &[]);
    let data = fingerprint_with(&db, &["--data"], &plain, &[]);
    assert!(
        schema
            .parts
            .iter()
            .any(|p| p.kind == "schema" && p.name == "pg0toast_x")
            && schema
                .parts
                .iter()
                .any(|p| p.kind == "table" && p.name == "pg0toast_x.hidden"),
        "the schema pg0toast_x is not described"
    );

    db.exec(&format!(
        "ALTER DATABASE {db} SET search_path = public, pg_catalog;
         ALTER DATABASE {db} SET DateStyle = 'SQL, DMY';
         ALTER DATABASE {db} SET TimeZone = 'Pacific/Chatham';
         ALTER DATABASE {db} SET standard_conforming_strings = off;
         ALTER DATABASE {db} SET extra_float_digits = 3;
         ALTER DATABASE {db} SET bytea_output = escape;
         ALTER DATABASE {db} SET IntervalStyle = sql_standard;
         ALTER DATABASE {db} SET quote_all_identifiers = on;
         ALTER DATABASE {db} SET xmloption = document;
         ALTER DATABASE {db} SET jit_above_cost = 0;
         ALTER ROLE postgres IN DATABASE {db} SET DateStyle = 'German';
         ALTER ROLE postgres IN DATABASE {db} SET IntervalStyle = iso_8601;",
        db = db.name
    ));
    assert_same_as_reference(&db, "names that need quoting, hostile database defaults");
    // Session settings on top: libpq's `options` (the Rust client does not read
    // PGOPTIONS; it is set too, for anything that does).
    let options = "-c search_path=public -c TimeZone=Asia/Kathmandu -c extra_float_digits=-15 \
                   -c DateStyle=Postgres,YMD -c lc_monetary=C.UTF-8";
    let hostile = conn_as_postgres(&db, &format!("options='{options}'"));
    let env = [("PGOPTIONS", options)];
    for (how, conn) in [
        ("database and role defaults", &plain),
        ("session options", &hostile),
    ] {
        let s = fingerprint_with(&db, &[], conn, &env);
        assert_eq!(
            s.fingerprint,
            schema.fingerprint,
            "{how}: schema fingerprint changed: {:?}",
            fingerprint::diff(&schema, &s)
        );
        let d = fingerprint_with(&db, &["--data"], conn, &env);
        assert_eq!(
            d.fingerprint,
            data.fingerprint,
            "{how}: data fingerprint changed: {:?}",
            fingerprint::diff(&data, &d)
        );
        assert!(
            s.parts
                .iter()
                .any(|p| p.kind == "schema" && p.name == "pg0toast_x"),
            "{how}: pg0toast_x is hidden under standard_conforming_strings = off"
        );
    }
}

/// A function `public.NAME(ARGS) RETURNS RESULT` that records its call in
/// `public.marker` and then does what `pg_catalog.NAME` does.
fn plant_function(name: &str, args: &str, result: &str, call: &str) -> String {
    format!(
        "CREATE FUNCTION public.{name}({args}) RETURNS {result} LANGUAGE plpgsql AS $f$
         BEGIN
             INSERT INTO public.marker VALUES ('{name}({args})');
             RETURN {call};
         END $f$;"
    )
}

/// What an unprivileged role with CREATE on `public` can plant for a superuser whose
/// search_path puts `public` first: shadowing functions, operators, types and
/// tables, each of which records that it ran.
fn planted() -> String {
    let mut sql = String::from(
        "CREATE TABLE public.marker (what text);
         GRANT INSERT ON public.marker TO PUBLIC;
         CREATE FUNCTION public.mark(what text) RETURNS boolean LANGUAGE plpgsql AS $f$
         BEGIN INSERT INTO public.marker VALUES (what); RETURN true; END $f$;",
    );
    for (name, args, result, call) in [
        (
            "format_type",
            "oid, integer",
            "text",
            "pg_catalog.format_type($1, $2)",
        ),
        (
            "pg_get_viewdef",
            "oid, boolean",
            "text",
            "pg_catalog.pg_get_viewdef($1, $2)",
        ),
        (
            "pg_get_viewdef",
            "oid",
            "text",
            "pg_catalog.pg_get_viewdef($1)",
        ),
        (
            "pg_get_functiondef",
            "oid",
            "text",
            "pg_catalog.pg_get_functiondef($1)",
        ),
        (
            "pg_get_indexdef",
            "oid",
            "text",
            "pg_catalog.pg_get_indexdef($1)",
        ),
        (
            "pg_get_constraintdef",
            "oid",
            "text",
            "pg_catalog.pg_get_constraintdef($1)",
        ),
        (
            "pg_get_triggerdef",
            "oid",
            "text",
            "pg_catalog.pg_get_triggerdef($1)",
        ),
        (
            "pg_get_ruledef",
            "oid",
            "text",
            "pg_catalog.pg_get_ruledef($1)",
        ),
        (
            "pg_get_expr",
            "pg_node_tree, oid",
            "text",
            "pg_catalog.pg_get_expr($1, $2)",
        ),
        (
            "pg_get_userbyid",
            "oid",
            "name",
            "pg_catalog.pg_get_userbyid($1)",
        ),
        (
            "pg_get_partkeydef",
            "oid",
            "text",
            "pg_catalog.pg_get_partkeydef($1)",
        ),
        (
            "pg_get_statisticsobjdef",
            "oid",
            "text",
            "pg_catalog.pg_get_statisticsobjdef($1)",
        ),
        ("quote_ident", "text", "text", "pg_catalog.quote_ident($1)"),
        ("left", "text, integer", "text", "pg_catalog.left($1, $2)"),
        (
            "starts_with",
            "text, text",
            "boolean",
            "pg_catalog.starts_with($1, $2)",
        ),
        (
            "acldefault",
            "\"char\", oid",
            "aclitem[]",
            "pg_catalog.acldefault($1, $2)",
        ),
        ("to_jsonb", "anyelement", "jsonb", "pg_catalog.to_jsonb($1)"),
        (
            "jsonb_strip_nulls",
            "jsonb",
            "jsonb",
            "pg_catalog.jsonb_strip_nulls($1)",
        ),
        (
            "current_database",
            "",
            "name",
            "pg_catalog.current_database()",
        ),
        (
            "current_setting",
            "text",
            "text",
            "pg_catalog.current_setting($1)",
        ),
        ("md5", "text", "text", "pg_catalog.md5($1)"),
        (
            "pg_encoding_to_char",
            "integer",
            "name",
            "pg_catalog.pg_encoding_to_char($1)",
        ),
        (
            "nameeq_evil",
            "name, name",
            "boolean",
            "pg_catalog.nameeq($1, $2)",
        ),
        (
            "namene_evil",
            "name, name",
            "boolean",
            "pg_catalog.namene($1, $2)",
        ),
        (
            "oideq_evil",
            "oid, oid",
            "boolean",
            "pg_catalog.oideq($1, $2)",
        ),
        (
            "oidge_evil",
            "oid, oid",
            "boolean",
            "pg_catalog.oidge($1, $2)",
        ),
        (
            "charge_evil",
            "\"char\", \"char\"",
            "boolean",
            "pg_catalog.chareq($1, $2)",
        ),
        (
            "namecat_evil",
            "name, name",
            "text",
            "pg_catalog.textcat($1::text, $2::text)",
        ),
        (
            "textcat_evil",
            "text, text",
            "text",
            "pg_catalog.textcat($1, $2)",
        ),
        (
            "jsonbcat_evil",
            "jsonb, jsonb",
            "jsonb",
            "pg_catalog.jsonb_concat($1, $2)",
        ),
        (
            "jsonbminus_evil",
            "jsonb, text[]",
            "jsonb",
            "pg_catalog.jsonb_delete($1, $2)",
        ),
        ("int8inc_evil", "bigint", "bigint", "$1 + 1"),
    ] {
        sql.push_str(&plant_function(name, args, result, call));
    }
    sql.push_str(
        "CREATE OPERATOR public.= (LEFTARG = name, RIGHTARG = name, FUNCTION = public.nameeq_evil);
         CREATE OPERATOR public.<> (LEFTARG = name, RIGHTARG = name, FUNCTION = public.namene_evil);
         CREATE OPERATOR public.= (LEFTARG = oid, RIGHTARG = oid, FUNCTION = public.oideq_evil);
         CREATE OPERATOR public.>= (LEFTARG = oid, RIGHTARG = oid, FUNCTION = public.oidge_evil);
         CREATE OPERATOR public.= (LEFTARG = \"char\", RIGHTARG = \"char\", FUNCTION = public.charge_evil);
         CREATE OPERATOR public.|| (LEFTARG = name, RIGHTARG = name, FUNCTION = public.namecat_evil);
         CREATE OPERATOR public.|| (LEFTARG = text, RIGHTARG = text, FUNCTION = public.textcat_evil);
         CREATE OPERATOR public.|| (LEFTARG = jsonb, RIGHTARG = jsonb, FUNCTION = public.jsonbcat_evil);
         CREATE OPERATOR public.- (LEFTARG = jsonb, RIGHTARG = text[], FUNCTION = public.jsonbminus_evil);
         CREATE AGGREGATE public.count(*) (SFUNC = public.int8inc_evil, STYPE = bigint, INITCOND = '0');
         CREATE FUNCTION public.pg_identify_object(classid oid, objid oid, objsubid integer,
             OUT type text, OUT schema text, OUT name text, OUT identity text) LANGUAGE plpgsql AS $f$
         BEGIN
             INSERT INTO public.marker VALUES ('pg_identify_object');
             SELECT * INTO type, schema, name, identity FROM pg_catalog.pg_identify_object(classid, objid, objsubid);
         END $f$;
         CREATE FUNCTION public.unnest(anyarray) RETURNS SETOF anyelement LANGUAGE plpgsql AS $f$
         BEGIN
             INSERT INTO public.marker VALUES ('unnest');
             RETURN QUERY SELECT pg_catalog.unnest($1);
         END $f$;
         CREATE TYPE public.text AS ENUM ('planted');
         CREATE DOMAIN public.regclass AS integer CHECK (public.mark('regclass'));
         CREATE DOMAIN public.jsonb AS integer CHECK (public.mark('jsonb'));
         CREATE VIEW public.pg_class AS SELECT * FROM pg_catalog.pg_class WHERE public.mark('pg_class');
         CREATE VIEW public.pg_namespace AS SELECT * FROM pg_catalog.pg_namespace WHERE public.mark('pg_namespace');
         CREATE VIEW public.pg_proc AS SELECT * FROM pg_catalog.pg_proc WHERE public.mark('pg_proc');
         CREATE VIEW public.pg_attribute AS SELECT attrelid, attname, attnum, attisdropped FROM pg_catalog.pg_attribute WHERE public.mark('pg_attribute');",
    );
    sql
}

#[test]
fn objects_planted_in_public_cannot_hijack_the_fingerprint() {
    let roles = Roles::new(&["evil"]);
    let evil = &roles.names[0];
    let db = TestDb::new("fp_hijack");
    db.exec(SETTINGS_SENSITIVE);
    db.exec(&format!(
        "CREATE TABLE app.items (id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text UNIQUE, tags text[]);
         INSERT INTO app.items (name, tags) VALUES ('a', '{{x,y}}'), ('b', NULL);
         CREATE INDEX items_lower ON app.items (lower(name));
         CREATE FUNCTION app.touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
         CREATE TRIGGER touch BEFORE UPDATE ON app.items FOR EACH ROW EXECUTE FUNCTION app.touch();
         CREATE RULE no_delete AS ON DELETE TO app.items DO INSTEAD NOTHING;
         ALTER TABLE app.items ENABLE ROW LEVEL SECURITY;
         CREATE POLICY mine ON app.items TO {evil} USING (name = current_user);
         CREATE STATISTICS app.items_stats ON id, name FROM app.items;
         CREATE TYPE app.mood AS ENUM ('sad', 'ok');
         CREATE TABLE app.parted (k integer) PARTITION BY RANGE (k);
         CREATE TABLE app.p1 PARTITION OF app.parted FOR VALUES FROM (0) TO (10);
         GRANT SELECT (name) ON app.items TO {evil};
         ALTER DEFAULT PRIVILEGES IN SCHEMA app GRANT SELECT ON TABLES TO {evil};
         GRANT EXECUTE ON FUNCTION pg_catalog.pg_ls_dir(text) TO {evil};
         GRANT CREATE ON SCHEMA public TO {evil};"
    ));
    let mut planter = db.client();
    planter
        .batch_execute(&format!("SET ROLE {evil}; {}", planted()))
        .unwrap_or_else(|e| panic!("planting: {}", airlock::db::pg_message(&e)));
    drop(planter);

    let conn = conn_as_postgres(&db, "");
    let schema = fingerprint_with(&db, &[], &conn, &[]);
    let data = fingerprint_with(&db, &["--data"], &conn, &[]);
    assert_eq!(db.scalar("SELECT count(*) FROM public.marker"), "0");

    db.exec(&format!(
        "ALTER DATABASE {db} SET search_path = public, pg_catalog",
        db = db.name
    ));
    // The planted objects are in the way for ordinary SQL now.
    assert_eq!(
        db.scalar("SELECT count(*) FROM pg_class WHERE relname = 'marker'"),
        "1"
    );
    assert_ne!(db.scalar("SELECT count(*) FROM public.marker"), "0");
    db.exec("TRUNCATE public.marker");

    assert_same_as_reference(&db, "objects planted in public, search_path = public");
    let hostile_schema = fingerprint_with(&db, &[], &conn, &[]);
    let hostile_data = fingerprint_with(&db, &["--data"], &conn, &[]);
    // The binary reads in read-only transactions, where a planted INSERT would fail;
    // the library's schema level in a read-write one, where it would succeed and stay
    // (the data level always reads in read-only ones; its SQL is checked by the unit
    // test that parses every statement sent).
    let mut client = db.client_as("postgres");
    let mut tx = client.transaction().expect("BEGIN");
    let library = fingerprint::compute(&mut tx).expect("compute");
    tx.commit().expect("COMMIT");
    drop(client);

    assert_eq!(
        db.scalar("SELECT string_agg(what, ', ') FROM public.marker"),
        "NULL",
        "a planted object ran"
    );
    assert_eq!(hostile_schema.fingerprint, schema.fingerprint);
    assert_eq!(hostile_data.fingerprint, data.fingerprint);
    assert_eq!(library.fingerprint, schema.fingerprint);
}

#[test]
fn only_the_ledger_objects_are_left_out_of_schema_airlock() {
    use airlock::db::ledger::chain as ledger;
    let db = TestDb::new("fp_airlock");
    db.exec("CREATE TABLE public.t (a integer); INSERT INTO public.t VALUES (1)");
    let conn = conn_as_postgres(&db, "");
    let schema = fingerprint_with(&db, &[], &conn, &[]);
    let data = fingerprint_with(&db, &["--data"], &conn, &[]);

    // The real ledger, made the way the first apply makes it.
    let mut client = db.client();
    let mut tx = client.transaction().expect("BEGIN");
    ledger::lock_for_deploy(&mut tx, "10s", &mut |_| Ok(()), &mut None).expect("create the ledger");
    ledger::append(
        &mut tx,
        ledger::NewRow {
            event: "apply",
            bundle_name: "b".into(),
            bundle_version: "1".into(),
            sequence: 1,
            bundle_id: "id".into(),
            tiers: vec!["t".into()],
            params: Default::default(),
            operator: "me".into(),
            fingerprint_before: schema.fingerprint.clone(),
            fingerprint_after: schema.fingerprint.clone(),
            bundle_tiers: vec!["t".into()],
            approvals: vec![],
            receipt: None,
        },
    )
    .expect("append a row");
    tx.commit().expect("COMMIT");
    drop(client);
    assert!(
        db.scalar("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'airlock.ledger'::regclass")
            != "0",
        "the ledger has no trigger"
    );
    assert_same_as_reference(&db, "with the ledger");
    let with_ledger = fingerprint_with(&db, &[], &conn, &[]);
    assert_eq!(
        with_ledger.fingerprint,
        schema.fingerprint,
        "the ledger changed the fingerprint: {:?}",
        fingerprint::diff(&schema, &with_ledger)
    );
    assert_eq!(
        fingerprint_with(&db, &["--data"], &conn, &[]).fingerprint,
        data.fingerprint,
        "the ledger's rows changed the data fingerprint"
    );
    // What is attached to the ledger goes with it.
    db.exec(
        "COMMENT ON COLUMN airlock.ledger.at IS 'when';
         GRANT SELECT ON airlock.ledger TO PUBLIC;
         CREATE INDEX ledger_at ON airlock.ledger (at)",
    );
    assert_eq!(
        fingerprint_with(&db, &[], &conn, &[]).fingerprint,
        schema.fingerprint
    );

    // Anything else in schema airlock counts, one at a time.
    let mut last = schema;
    for sql in [
        "CREATE TABLE airlock.extra (a integer)",
        "CREATE FUNCTION airlock.helper() RETURNS integer LANGUAGE sql AS 'SELECT 1'",
        "CREATE FUNCTION airlock.ledger_append_only(integer) RETURNS integer LANGUAGE sql AS 'SELECT $1'",
        "CREATE VIEW airlock.recent AS SELECT seq, at FROM airlock.ledger",
        "CREATE SEQUENCE airlock.counter",
        "CREATE TYPE airlock.mood AS ENUM ('sad', 'ok')",
        "CREATE TRIGGER sneaky BEFORE UPDATE ON public.t FOR EACH STATEMENT EXECUTE FUNCTION airlock.ledger_append_only()",
        "CREATE RULE quiet AS ON UPDATE TO airlock.ledger DO INSTEAD NOTHING",
        "CREATE POLICY everyone ON airlock.ledger USING (true)",
        "ALTER DEFAULT PRIVILEGES IN SCHEMA airlock GRANT SELECT ON TABLES TO PUBLIC",
    ] {
        db.exec(sql);
        assert_same_as_reference(&db, sql);
        let now = fingerprint_with(&db, &[], &conn, &[]);
        assert_ne!(now.fingerprint, last.fingerprint, "unnoticed: {sql}");
        last = now;
    }
    let data_before = fingerprint_with(&db, &["--data"], &conn, &[]);
    db.exec("INSERT INTO airlock.extra VALUES (1)");
    assert_ne!(
        fingerprint_with(&db, &["--data"], &conn, &[]).fingerprint,
        data_before.fingerprint,
        "rows in another airlock table went unnoticed"
    );
}

/// Every shape of index and key the description query writes itself, and the ones
/// next to them it must leave to the server, on a few hundred tables; extensions whose
/// names need quoting, and operator families with ordering operators (pg_trgm's).
const SHAPES: &str = r#"
CREATE EXTENSION citext;
CREATE EXTENSION "uuid-ossp";
CREATE EXTENSION pg_trgm;
CREATE SCHEMA "Odd Schema";
CREATE SCHEMA "select";
CREATE DOMAIN "Odd Schema".posint AS integer CHECK (VALUE > 0);
CREATE TABLE "Odd Schema"."Mixed Case" (
    "Id" integer, "select" text, "naïve" varchar(20), c citext, d "Odd Schema".posint,
    r int4range, tags text[], doc tsvector, n numeric, "b""q" text COLLATE "C",
    PRIMARY KEY ("Id", "select") INCLUDE (n),
    UNIQUE NULLS NOT DISTINCT ("naïve"),
    EXCLUDE USING gist (r WITH &&),
    CHECK (n > 0));
CREATE INDEX ON "Odd Schema"."Mixed Case" ("select" DESC, "Id" NULLS FIRST);
CREATE INDEX ON "Odd Schema"."Mixed Case" ("select" COLLATE "C");
CREATE INDEX ON "Odd Schema"."Mixed Case" ("b""q");
CREATE INDEX ON "Odd Schema"."Mixed Case" ("b""q" COLLATE "default");
CREATE INDEX ON "Odd Schema"."Mixed Case" ("select" text_pattern_ops);
CREATE INDEX ON "Odd Schema"."Mixed Case" ("naïve");
CREATE INDEX ON "Odd Schema"."Mixed Case" (c);
CREATE INDEX ON "Odd Schema"."Mixed Case" (d);
CREATE INDEX "Expr Idx" ON "Odd Schema"."Mixed Case" (lower("select"));
CREATE INDEX ON "Odd Schema"."Mixed Case" ("Id") WHERE n > 0;
CREATE INDEX ON "Odd Schema"."Mixed Case" ("Id") INCLUDE ("select", "naïve");
CREATE INDEX ON "Odd Schema"."Mixed Case" USING hash ("select");
CREATE INDEX ON "Odd Schema"."Mixed Case" USING gin (tags);
CREATE INDEX ON "Odd Schema"."Mixed Case" USING brin (n);
CREATE INDEX ON "Odd Schema"."Mixed Case" USING gist (doc tsvector_ops (siglen = 100));
CREATE INDEX ON "Odd Schema"."Mixed Case" ("Id") WITH (fillfactor = 70);
CREATE UNIQUE INDEX "Unique Idx" ON "Odd Schema"."Mixed Case" ("Id", "naïve") NULLS NOT DISTINCT;
CREATE UNIQUE INDEX ON "Odd Schema"."Mixed Case" ("Id", n);
ALTER INDEX "Odd Schema"."Expr Idx" ALTER COLUMN 1 SET STATISTICS 50;
CLUSTER "Odd Schema"."Mixed Case" USING "Unique Idx";
CREATE TABLE "select"."from" ("where" integer PRIMARY KEY DEFERRABLE INITIALLY DEFERRED,
    ref varchar(20) REFERENCES "Odd Schema"."Mixed Case" ("naïve") ON DELETE CASCADE);
CREATE TABLE "select".parted (k integer, v text, PRIMARY KEY (k)) PARTITION BY RANGE (k);
CREATE INDEX ON "select".parted (v);
CREATE TABLE "select".p1 PARTITION OF "select".parted FOR VALUES FROM (0) TO (10);
CREATE TABLE "select".p2 (k integer NOT NULL, v text);
CREATE INDEX p2_v ON "select".p2 (v);
ALTER TABLE "select".parted ATTACH PARTITION "select".p2 FOR VALUES FROM (10) TO (20);
CREATE TABLE "select".kid () INHERITS ("select"."from");
ALTER TABLE "select"."from" ADD CONSTRAINT "from_where_not_valid" CHECK ("where" > 0) NOT VALID;
CREATE MATERIALIZED VIEW "select".mv AS SELECT "where" FROM "select"."from";
CREATE UNIQUE INDEX ON "select".mv ("where");
CREATE TYPE "select".pair AS (a integer, "B" text);
COMMENT ON INDEX "Odd Schema"."Unique Idx" IS 'an index';
COMMENT ON CONSTRAINT "Mixed Case_pkey" ON "Odd Schema"."Mixed Case" IS 'a key';
COMMENT ON COLUMN "select".pair."B" IS 'a field';
COMMENT ON COLUMN "Odd Schema"."Mixed Case"."naïve" IS 'a column';
DO $$ BEGIN FOR i IN 1..300 LOOP
    EXECUTE format('CREATE TABLE public.%I (id int PRIMARY KEY, v text, w int, u text UNIQUE)', 'small ' || i);
    IF i % 3 = 0 THEN EXECUTE format('CREATE INDEX ON public.%I (w, v)', 'small ' || i); END IF;
    IF i % 5 = 0 THEN EXECUTE format('ALTER TABLE public.%I ADD FOREIGN KEY (w) REFERENCES public.%I', 'small ' || i, 'small 1'); END IF;
    IF i % 7 = 0 THEN EXECUTE format('CREATE INDEX ON public.%I (v DESC)', 'small ' || i); END IF;
    IF i % 11 = 0 THEN EXECUTE format('COMMENT ON TABLE public.%I IS %L', 'small ' || i, 'table ' || i); END IF;
END LOOP; END $$;
"#;

#[test]
fn the_description_query_describes_every_shape_as_the_frozen_reference_does() {
    let db = TestDb::new("fp_shapes");
    // NULLS NOT DISTINCT came in PostgreSQL 15.
    if server_major(&db) < 15 {
        db.exec(&SHAPES.replace(" NULLS NOT DISTINCT", ""));
    } else {
        db.exec(SHAPES);
    }
    assert_same_as_reference(&db, "many tables of every shape");
    // The shapes are really there: 300 tables and their keys, indexes, columns.
    let fp = schema_fingerprint(&db);
    let count = |kind: &str| fp.parts.iter().filter(|p| p.kind == kind).count();
    assert!(count("table") > 300, "{} tables", count("table"));
    assert!(count("index") > 400, "{} indexes", count("index"));
    assert!(
        count("table constraint") > 600,
        "{} constraints",
        count("table constraint")
    );
}
