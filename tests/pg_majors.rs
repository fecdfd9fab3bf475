//! Every PostgreSQL major airlock supports, side by side: the servers
//! `scripts/pg-majors start` runs (13 to 18, each on port 543NN and its own socket
//! directory under `$AIRLOCK_PG_RUN`, default /var/tmp/airlock-pg). On each supported
//! major (14 to 18) the demo's whole story passes; 13 is refused at connect (exit 5)
//! having written nothing; one schema has one fingerprint whatever the major; and a
//! database moved from 16 to 18 by dump and restore is no drift.
//!
//! Fails loudly when a major's server is not running: these tests never skip.

mod util;
use std::path::PathBuf;
use std::process::{Command, Output};
use util::*;

const SUPPORTED: [u32; 5] = [14, 15, 16, 17, 18];

/// Where `scripts/pg-majors` runs PostgreSQL `major`: its socket directory and port.
struct Major {
    major: u32,
    sock: PathBuf,
    port: u16,
}

impl Major {
    fn of(major: u32) -> Major {
        let run = std::env::var("AIRLOCK_PG_RUN").unwrap_or_else(|_| "/var/tmp/airlock-pg".into());
        let m = Major {
            major,
            sock: PathBuf::from(run).join(major.to_string()).join("sock"),
            port: 54300 + major as u16,
        };
        // Reachable, and the major it says it is.
        let version: String = m
            .admin()
            .query_one("SELECT current_setting('server_version_num')", &[])
            .expect("server_version_num")
            .get(0);
        assert_eq!(
            version.parse::<u32>().unwrap() / 10000,
            major,
            "the server at {} port {} is not PostgreSQL {major}",
            m.sock.display(),
            m.port
        );
        m
    }

    fn config(&self, dbname: &str) -> postgres::Config {
        let mut c = postgres::Config::new();
        c.host_path(&self.sock)
            .port(self.port)
            .user("root")
            .dbname(dbname);
        c
    }

    fn admin(&self) -> postgres::Client {
        self.config("postgres")
            .connect(postgres::NoTls)
            .unwrap_or_else(|e| {
                panic!(
                    "PostgreSQL {} is not reachable at {} port {}: {e}\n\
                     These tests need every major's server: scripts/pg-majors start",
                    self.major,
                    self.sock.display(),
                    self.port
                )
            })
    }

    /// `--db` for `dbname` on this server, as `root`.
    fn conn(&self, dbname: &str) -> String {
        format!(
            "host={} port={} user=root dbname={dbname}",
            self.sock.display(),
            self.port
        )
    }

    /// A fresh database owned by a role of its own (NOLOGIN, as an application's),
    /// both dropped when the guard goes.
    fn database(&self, tag: &str) -> MajorDb<'_> {
        let name = format!("airlock_m{}_{tag}_{}", self.major, std::process::id());
        let mut admin = self.admin();
        let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"));
        let _ = admin.batch_execute(&format!("DROP ROLE IF EXISTS \"{name}\""));
        admin
            .batch_execute(&format!("CREATE ROLE \"{name}\" NOLOGIN"))
            .expect("create the owner role");
        admin
            .batch_execute(&format!("CREATE DATABASE \"{name}\" OWNER \"{name}\""))
            .expect("create database");
        MajorDb { on: self, name }
    }

    /// `airlock ARGS` with the libpq environment pointing at this server.
    fn airlock(&self, dir: &std::path::Path, args: &[&str]) -> Output {
        let port = self.port.to_string();
        airlock_env(
            dir,
            args,
            &[
                ("PGHOST", self.sock.to_str().unwrap()),
                ("PGPORT", &port),
                ("PGUSER", "root"),
            ],
        )
    }
}

struct MajorDb<'a> {
    on: &'a Major,
    name: String,
}

impl MajorDb<'_> {
    fn client(&self) -> postgres::Client {
        self.on
            .config(&self.name)
            .connect(postgres::NoTls)
            .expect("connect")
    }

    fn exec(&self, sql: &str) {
        self.client()
            .batch_execute(sql)
            .unwrap_or_else(|e| panic!("PostgreSQL {}: {sql}: {e}", self.on.major));
    }

    fn conn(&self) -> String {
        self.on.conn(&self.name)
    }
}

impl Drop for MajorDb<'_> {
    fn drop(&mut self) {
        if let Ok(mut c) = self.on.config("postgres").connect(postgres::NoTls) {
            let _ = c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            ));
            let _ = c.batch_execute(&format!("DROP ROLE IF EXISTS \"{}\"", self.name));
        }
    }
}

#[test]
fn the_demo_passes_on_every_supported_major() {
    for major in SUPPORTED {
        let m = Major::of(major);
        let dir = tempdir();
        let o = airlock(
            dir.path(),
            &[
                "demo",
                "--quiet",
                "--db",
                &format!("host={} port={} user=root", m.sock.display(), m.port),
            ],
        );
        assert_eq!(
            code(&o),
            0,
            "the demo failed on PostgreSQL {major}:\n{}{}",
            stdout(&o),
            stderr(&o)
        );
    }
}

#[test]
fn setup_makes_a_ledger_airlock_calls_its_own_on_every_supported_major() {
    for major in SUPPORTED {
        let m = Major::of(major);
        let db = m.database("setup");
        let login = format!("airlock_m{major}_login_{}", std::process::id());
        let dir = tempdir();
        let o = m.airlock(
            dir.path(),
            &["setup", "--db", &db.conn(), "--login", &login],
        );
        let said = format!("{}{}", stdout(&o), stderr(&o));
        // Run twice: the second setup inspects the ledger the first one made.
        let again = m.airlock(
            dir.path(),
            &["setup", "--db", &db.conn(), "--login", &login],
        );
        let as_login = format!("{} user={login}", db.conn());
        let status = m.airlock(dir.path(), &["status", "--verify-chain", "--db", &as_login]);
        drop(db);
        let _ = m
            .admin()
            .batch_execute(&format!("DROP ROLE IF EXISTS \"{login}\""));
        assert_eq!(code(&o), 0, "setup on PostgreSQL {major}: {said}");
        assert_eq!(
            code(&again),
            0,
            "setup again on PostgreSQL {major}: {}{}",
            stdout(&again),
            stderr(&again)
        );
        assert_eq!(
            code(&status),
            0,
            "status on PostgreSQL {major}: {}{}",
            stdout(&status),
            stderr(&status)
        );
    }
}

#[allow(dead_code)]
fn psql(m: &Major, db: &str, sql: &str) -> Output {
    Command::new("psql")
        .args([
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            &m.conn(db),
            "-c",
            sql,
        ])
        .output()
        .expect("psql")
}

/// Roles and databases on a server, to prove a command wrote nothing there.
fn cluster_objects(m: &Major) -> Vec<String> {
    m.admin()
        .query(
            "SELECT 'role ' || rolname FROM pg_roles UNION ALL SELECT 'database ' || datname FROM pg_database ORDER BY 1",
            &[],
        )
        .expect("roles and databases")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[test]
fn postgresql_13_is_refused_at_connect_with_exit_5_having_written_nothing() {
    let m = Major::of(13);
    let db = m.database("refused");
    let login = format!("airlock_m13_login_{}", std::process::id());
    let dir = tempdir();
    let before = cluster_objects(&m);
    let as_root = format!("host={} port={} user=root", m.sock.display(), m.port);
    for args in [
        vec!["setup", "--db", &db.conn(), "--login", &login],
        vec!["status", "--db", &db.conn()],
        vec!["fingerprint", "--db", &db.conn()],
        vec!["demo", "--db", &as_root],
    ] {
        let o = m.airlock(dir.path(), &args);
        assert_eq!(
            code(&o),
            5,
            "airlock {args:?} on PostgreSQL 13: {}{}",
            stdout(&o),
            stderr(&o)
        );
        assert!(
            stderr(&o).contains("PostgreSQL 13 is not supported (14 or newer)"),
            "airlock {args:?} on PostgreSQL 13 does not say why: {}",
            stderr(&o)
        );
        let json = m.airlock(dir.path(), &[&["--json"], &args[..]].concat());
        assert_eq!(code(&json), 5);
        let doc: serde_json::Value = serde_json::from_slice(&json.stdout)
            .unwrap_or_else(|e| panic!("{args:?} --json: {e}: {}", stdout(&json)));
        assert_eq!(doc["kind"], "state-check", "{doc}");
        assert_eq!(doc["exit_code"], 5, "{doc}");
    }
    assert_eq!(
        cluster_objects(&m),
        before,
        "a refused command changed roles or databases"
    );
    let schemas: i64 = db
        .client()
        .query_one(
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'airlock'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(schemas, 0, "a refused command made schema airlock");
}

/// One schema of many kinds of object, as an application would make it: enum,
/// domain, sequence, identity, primary, unique, foreign keys and checks, a generated
/// column, indexes (partial, expression), views (one table, a join, a subquery, a
/// CTE, grouped), a materialized view, functions, a trigger, a partitioned table,
/// comments, grants (ALL, some, column), default privileges, a policy, statistics.
/// (A grant short of ALL on a table lists what it holds: an owner who revoked one
/// privilege on 17 still holds MAINTAIN, which 16 has not; docs/operator.md.)
const MANY_KINDS: &str = r#"
CREATE ROLE "@APP@_reader" NOLOGIN;
CREATE SCHEMA shop;
CREATE TYPE shop.mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN shop.posint AS integer CHECK (VALUE > 0);
CREATE DOMAIN shop.code AS text NOT NULL;
CREATE SEQUENCE shop.order_no START 1000;
CREATE TABLE shop.customer (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  email text NOT NULL UNIQUE,
  name text NOT NULL DEFAULT '',
  feeling shop.mood,
  age shop.posint CHECK (age < 200),
  created timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE shop.orders (
  id integer PRIMARY KEY DEFAULT nextval('shop.order_no'),
  customer_id bigint NOT NULL REFERENCES shop.customer (id) ON DELETE CASCADE,
  qty integer NOT NULL,
  price numeric(10,2) NOT NULL,
  total numeric GENERATED ALWAYS AS (qty * price) STORED,
  note varchar(200),
  CONSTRAINT orders_qty_positive CHECK (qty > 0)
);
ALTER SEQUENCE shop.order_no OWNED BY shop.orders.id;
CREATE INDEX orders_customer ON shop.orders (customer_id);
CREATE INDEX orders_big ON shop.orders (total) WHERE qty > 10;
CREATE UNIQUE INDEX customer_lower_email ON shop.customer (lower(email));
ALTER TABLE shop.orders ALTER COLUMN note SET STATISTICS 500;
CREATE VIEW shop.big_orders AS SELECT id, total FROM shop.orders WHERE total > 100;
CREATE VIEW shop.customer_orders AS
  SELECT c.email, o.id, o.total FROM shop.customer c JOIN shop.orders o ON o.customer_id = c.id;
CREATE VIEW shop.active AS
  SELECT id, email FROM shop.customer c WHERE EXISTS (SELECT 1 FROM shop.orders o WHERE o.customer_id = c.id);
CREATE VIEW shop.per_customer AS
  WITH t AS (SELECT customer_id, total FROM shop.orders) SELECT customer_id, sum(total) AS spent FROM t GROUP BY customer_id;
CREATE MATERIALIZED VIEW shop.totals AS SELECT customer_id, count(*) AS n FROM shop.orders GROUP BY customer_id;
CREATE FUNCTION shop.add(a integer, b integer) RETURNS integer LANGUAGE sql IMMUTABLE AS 'SELECT a + b';
CREATE FUNCTION shop.touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN NEW.name := trim(NEW.name); RETURN NEW; END$$;
CREATE TRIGGER customer_touch BEFORE INSERT OR UPDATE ON shop.customer FOR EACH ROW EXECUTE FUNCTION shop.touch();
CREATE TABLE shop.events (at date NOT NULL, what text) PARTITION BY RANGE (at);
CREATE TABLE shop.events_2026 PARTITION OF shop.events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE INDEX events_at ON shop.events (at);
COMMENT ON TABLE shop.orders IS 'what was bought';
CREATE STATISTICS shop.orders_stats (dependencies) ON qty, price FROM shop.orders;
ALTER TABLE shop.orders ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_orders ON shop.orders USING (customer_id > 0);
GRANT USAGE ON SCHEMA shop TO "@APP@_reader";
GRANT SELECT ON shop.customer TO "@APP@_reader";
GRANT ALL ON shop.orders TO "@APP@_reader";
GRANT SELECT (id, email) ON shop.customer TO PUBLIC;
GRANT USAGE ON SEQUENCE shop.order_no TO "@APP@_reader";
REVOKE ALL ON shop.events FROM PUBLIC;
ALTER DEFAULT PRIVILEGES IN SCHEMA shop GRANT SELECT ON TABLES TO "@APP@_reader";
ALTER DEFAULT PRIVILEGES GRANT ALL ON TABLES TO "@APP@_reader";
"#;

/// `airlock fingerprint --json --db CONN` on `m`, parsed.
fn fingerprint_on(m: &Major, conn: &str) -> airlock::db::fingerprint::Fingerprint {
    let dir = tempdir();
    let o = m.airlock(dir.path(), &["--json", "fingerprint", "--db", conn]);
    assert_eq!(
        code(&o),
        0,
        "fingerprint on PostgreSQL {}: {}{}",
        m.major,
        stdout(&o),
        stderr(&o)
    );
    serde_json::from_slice(&o.stdout).expect("a fingerprint report")
}

#[test]
fn one_schema_has_one_fingerprint_on_every_supported_major() {
    let mut seen: Vec<(u32, airlock::db::fingerprint::Fingerprint)> = vec![];
    for major in SUPPORTED {
        let m = Major::of(major);
        let db = m.database("kinds");
        // The role names are the server's: the same on every major.
        let app = format!("airlock_kinds_{}", std::process::id());
        let _ = m
            .admin()
            .batch_execute(&format!("DROP ROLE IF EXISTS \"{app}_reader\""));
        db.exec(&MANY_KINDS.replace("@APP@", &app));
        let fp = fingerprint_on(&m, &db.conn());
        drop(db);
        m.admin()
            .batch_execute(&format!(
                "DROP OWNED BY \"{app}_reader\"; DROP ROLE \"{app}_reader\""
            ))
            .expect("drop the reader role");
        assert_eq!(fp.format, airlock::db::fingerprint::FORMAT);
        seen.push((major, fp));
    }
    let (first, want) = &seen[0];
    for (major, fp) in &seen[1..] {
        let a: std::collections::BTreeSet<_> = want.parts.iter().collect();
        let b: std::collections::BTreeSet<_> = fp.parts.iter().collect();
        assert_eq!(
            fp.fingerprint,
            want.fingerprint,
            "PostgreSQL {major} fingerprints the schema otherwise than {first}: only on {first}: {:?}; only on {major}: {:?}",
            a.difference(&b).collect::<Vec<_>>(),
            b.difference(&a).collect::<Vec<_>>()
        );
    }
}

/// PostgreSQL 18's client tools (pg_dump of any supported major), as
/// `scripts/pg-majors client` installs them.
fn client_bin() -> PathBuf {
    let o = Command::new(repo().join("scripts/pg-majors"))
        .arg("client")
        .output()
        .expect("scripts/pg-majors client");
    assert!(
        o.status.success(),
        "scripts/pg-majors client: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&o.stdout).trim())
}

/// The gate role a deploy's gates run as, on `m` (idempotent).
fn gate_role_on(m: &Major) {
    m.admin()
        .batch_execute(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'airlock_gate')
             THEN CREATE ROLE airlock_gate NOLOGIN; END IF; END $$",
        )
        .expect("the gate role");
}

#[test]
fn a_database_moved_from_16_to_18_by_dump_and_restore_is_no_drift() {
    let (old, new) = (Major::of(16), Major::of(18));
    gate_role_on(&old);
    gate_role_on(&new);
    let db = old.database("upgrade");
    let login = format!("{}_deploy", db.name);
    let dir = tempdir();
    keygen(dir.path(), "k");
    let src = MiniSource::new(
        dir.path(),
        &db.name,
        "SELECT true AS ready",
        &[
            (
                "one",
                "CREATE TABLE app.t (id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL);
                 CREATE VIEW app.v AS SELECT id, name FROM app.t;
                 CREATE FUNCTION app.f() RETURNS integer LANGUAGE sql AS 'SELECT 1';",
                false,
            ),
            (
                "two",
                "ALTER TABLE app.t ADD COLUMN n integer NOT NULL DEFAULT 0;
                 CREATE INDEX t_name ON app.t (name) WHERE n > 0;",
                false,
            ),
        ],
        "DROP TABLE IF EXISTS app.t CASCADE; DROP FUNCTION IF EXISTS app.f()",
    );
    let bundle = pack(dir.path(), &src.dir, "k.key", "b.tar.gz");
    let bundle = bundle.to_string_lossy().into_owned();
    let trust = dir.path().join("k.pub").to_string_lossy().into_owned();
    db.exec(&format!("CREATE SCHEMA app AUTHORIZATION \"{}\"", db.name));
    let run = |m: &Major, dbname: &str, user: &str, args: &[&str]| {
        let conn = format!("{} user={user}", m.conn(dbname));
        let mut all = vec!["--json"];
        all.extend(args);
        all.extend(["--db", &conn]);
        m.airlock(dir.path(), &all)
    };
    let ok = |what: &str, o: &Output| {
        assert_eq!(code(o), 0, "{what}: {}{}", stdout(o), stderr(o));
        json(o)
    };
    // 1. On 16: the deploy login, then the first tier.
    ok(
        "setup on 16",
        &run(&old, &db.name, "root", &["setup", "--login", &login]),
    );
    let first = ok(
        "apply --through one on 16",
        &run(
            &old,
            &db.name,
            &login,
            &["apply", &bundle, "--trust", &trust, "--through", "one"],
        ),
    );
    let recorded = first["fingerprint_after"]
        .as_str()
        .expect("fingerprint_after")
        .to_string();

    // 2. Moved to 18: the roles made there, the database dumped with 18's pg_dump
    //    and restored into a database of the same name.
    let client = client_bin();
    let dump = dir.path().join("db.dump");
    let dumped = Command::new(client.join("pg_dump"))
        .args(["-Fc", "-f"])
        .arg(&dump)
        .args(["-d", &old.conn(&db.name)])
        .output()
        .expect("pg_dump");
    assert!(
        dumped.status.success(),
        "pg_dump: {}",
        String::from_utf8_lossy(&dumped.stderr)
    );
    let mut admin = new.admin();
    for role in [&db.name, &login] {
        let _ = admin.batch_execute(&format!(
            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
            db.name
        ));
        let _ = admin.batch_execute(&format!("DROP ROLE IF EXISTS \"{role}\""));
    }
    admin
        .batch_execute(&format!(
            "CREATE ROLE \"{}\" NOLOGIN; CREATE ROLE \"{login}\" LOGIN",
            db.name
        ))
        .expect("roles on 18");
    admin
        .batch_execute(&format!("CREATE DATABASE \"{0}\" OWNER \"{0}\"", db.name))
        .expect("the database on 18");
    let moved = MajorDb {
        on: &new,
        name: db.name.clone(),
    };
    let restored = Command::new(client.join("pg_restore"))
        .args(["--exit-on-error", "-d", &new.conn(&db.name)])
        .arg(&dump)
        .output()
        .expect("pg_restore");
    assert!(
        restored.status.success(),
        "pg_restore: {}",
        String::from_utf8_lossy(&restored.stderr)
    );

    // 3. setup again on 18; the chain is intact and the schema is what 16 recorded.
    ok(
        "setup again on 18",
        &run(&new, &moved.name, "root", &["setup", "--login", &login]),
    );
    ok(
        "status --verify-chain on 18",
        &run(&new, &moved.name, &login, &["status", "--verify-chain"]),
    );
    let now = ok(
        "fingerprint on 18",
        &run(&new, &moved.name, &login, &["fingerprint"]),
    );
    assert_eq!(
        now["fingerprint"].as_str(),
        Some(recorded.as_str()),
        "the schema restored on 18 does not fingerprint as 16 recorded it"
    );
    // 4. The rest of the release: GO, and applied, with no --allow-drift.
    ok(
        "plan on 18",
        &run(
            &new,
            &moved.name,
            &login,
            &["plan", &bundle, "--trust", &trust],
        ),
    );
    let rest = ok(
        "apply on 18",
        &run(
            &new,
            &moved.name,
            &login,
            &["apply", &bundle, "--trust", &trust],
        ),
    );
    assert_eq!(rest["fingerprint_before"].as_str(), Some(recorded.as_str()));
    // 5. The auditor, with the receipts of both servers: no failure for the move, and
    //    a note that the database moved (issue 88, finding 15), in --json and in words.
    let audit = |json_out: bool| {
        let mut a = vec!["audit", &bundle, "--trust", &trust, "--receipt", "receipts"];
        if json_out {
            a.insert(0, "--json");
        }
        airlock(dir.path(), &a)
    };
    let report = json(&audit(true));
    assert_ne!(report["verdict"], "FAIL", "{report:#}");
    let moved_notes: Vec<&serde_json::Value> = report["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["check"] == "server moved")
        .collect();
    assert_eq!(moved_notes.len(), 1, "{:#}", report["verdicts"]);
    let note = moved_notes[0];
    assert_eq!(note["verdict"], "NOTE", "{note}");
    assert_eq!(note["subject"], format!("database {}", db.name), "{note}");
    let detail = note["detail"].as_str().unwrap();
    assert!(
        detail.contains("moved to another server (system identifier"),
        "{detail}"
    );
    let words = stdout(&audit(false));
    assert!(
        words.contains("moved to another server (system identifier"),
        "{words}"
    );
    drop(moved);
    let _ = new.admin().batch_execute(&format!(
        "DROP ROLE IF EXISTS \"{login}\"; DROP ROLE IF EXISTS \"{}\"",
        db.name
    ));
    drop(db);
    let _ = old
        .admin()
        .batch_execute(&format!("DROP ROLE IF EXISTS \"{login}\""));
}
