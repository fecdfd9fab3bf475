//! Every PostgreSQL major airlock supports, side by side: the servers
//! `scripts/pg-majors start` runs (13 to 18, each on port 543NN and its own socket
//! directory under `$AIRLOCK_PG_RUN`, default /var/tmp/airlock-pg). On each supported
//! major (14 to 18) the demo's whole story passes; 13 is refused at connect (exit 5)
//! having written nothing; one schema has one fingerprint whatever the major; a
//! database moved from 16 to 18 by dump and restore is no drift; and a year of a
//! release train (docs/release-train.md): three releases of a golang-migrate history,
//! the server upgraded from 16 to 18 by docs/operator.md's recipe between the second
//! and the third, the third rolled back after the application wrote rows.
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
        if major == 14 {
            // The test clusters give 14's template1 15's `public` (scripts/pg-majors);
            // the schema compared here is the one each major's initdb made.
            db.exec(
                "ALTER SCHEMA public OWNER TO postgres; GRANT CREATE ON SCHEMA public TO PUBLIC",
            );
        }
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

/// Moving a database to 18 makes roles there (the story's `pg_dumpall --roles-only`
/// copies every role of 16): the tests that move one take turns, so one never drops
/// a role the other is about to make.
static MOVING: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn a_database_moved_from_16_to_18_by_dump_and_restore_is_no_drift() {
    let _moving = MOVING.lock().unwrap_or_else(|e| e.into_inner());
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

/// golang-migrate's layout in `dir`: `VERSION_NAME.up.sql` and its `.down.sql`.
fn golang_migrate(dir: &std::path::Path, migrations: &[(&str, &str, &str)]) {
    for (name, up, down) in migrations {
        write(&dir.join(format!("{name}.up.sql")), up);
        write(&dir.join(format!("{name}.down.sql")), down);
    }
}

/// The roles on `m`'s server now.
fn roles_on(m: &Major) -> std::collections::BTreeSet<String> {
    m.admin()
        .query("SELECT rolname::text FROM pg_roles", &[])
        .expect("pg_roles")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Roles a test made on a server, dropped when it ends. Declare it before the
/// databases those roles own or are granted in: locals drop in reverse order.
struct RolesOn<'a> {
    on: &'a Major,
    roles: Vec<String>,
}

impl Drop for RolesOn<'_> {
    fn drop(&mut self) {
        if let Ok(mut c) = self.on.config("postgres").connect(postgres::NoTls) {
            for role in &self.roles {
                let _ = c.batch_execute(&format!("DROP ROLE IF EXISTS \"{role}\""));
            }
        }
    }
}

/// PostgreSQL 18's client tool `name` (from `client`) with `args`, which must succeed.
#[track_caller]
fn client_tool(client: &std::path::Path, name: &str, args: &[&str]) {
    let o = Command::new(client.join(name))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(
        o.status.success(),
        "{name} {args:?}: {}{}",
        stdout(&o),
        stderr(&o)
    );
}

/// The check named `check` of a plan document.
fn check<'a>(plan: &'a serde_json::Value, check: &str) -> &'a serde_json::Value {
    plan["checks"]
        .as_array()
        .unwrap_or_else(|| panic!("no checks: {plan:#}"))
        .iter()
        .find(|c| c["check"] == check)
        .unwrap_or_else(|| panic!("no {check} check: {plan:#}"))
}

const CUSTOMER: (&str, &str, &str) = (
    "20240101000000_customer",
    "CREATE TABLE customer (id bigint PRIMARY KEY, name text NOT NULL);\n",
    "DROP TABLE customer;\n",
);
const CUSTOMER_EMAIL: (&str, &str, &str) = (
    "20240202000000_customer_email",
    "ALTER TABLE customer ADD COLUMN email text;\n",
    "ALTER TABLE customer DROP COLUMN email;\n",
);
const ORDERS: (&str, &str, &str) = (
    "20240301000000_orders",
    "CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint NOT NULL REFERENCES customer (id));\n",
    "DROP TABLE orders;\n",
);
const SHIPMENT: (&str, &str, &str) = (
    "20240401000000_shipment",
    "CREATE TABLE shipment (id bigint PRIMARY KEY, order_id bigint NOT NULL REFERENCES orders (id), shipped_at timestamptz NOT NULL DEFAULT now());\n",
    "DROP TABLE shipment;\n",
);
const ORDERS_NOTE: (&str, &str, &str) = (
    "20240402000000_orders_note",
    "ALTER TABLE orders ADD COLUMN note text;\n",
    "ALTER TABLE orders DROP COLUMN note;\n",
);

/// The story docs/release-train.md tells ("A year of the train"), lived as a
/// golang-migrate team lives it, through the binary and the client tools only: 1.0.0
/// imported with the team's policy added (a gate, a required `ticket`), applied on
/// PostgreSQL 16; 1.1.0 imported `--since` it (the policy carried) and applied on 16;
/// the server upgraded to 18 by docs/operator.md's recipe as written (the same
/// fingerprint on both, 1.2.0's plan GO); 1.2.0 applied on 18, the application writes
/// rows, `plan --rollback` counts what the rollback destroys and 1.2.0 is rolled back;
/// `status` says the train stands at 1.1.0 and never asks to apply 1.0.0 or 1.1.0
/// again; `audit` of the three bundles with `--db` passes and says what ran, in the
/// train's order.
#[test]
fn a_year_of_the_train_three_releases_a_server_upgrade_from_16_to_18_and_a_rollback() {
    let _moving = MOVING.lock().unwrap_or_else(|e| e.into_inner());
    let (old, new) = (Major::of(16), Major::of(18));
    gate_role_on(&old);
    gate_role_on(&new);
    let mut made_on_16 = RolesOn {
        on: &old,
        roles: vec![],
    };
    let mut made_on_18 = RolesOn {
        on: &new,
        roles: vec![],
    };
    let db = old.database("train");
    let login = format!("{}_deploy", db.name);
    made_on_16.roles.push(login.clone());
    let t = tempdir();
    let dir = t.path();
    let run = |args: &[&str]| airlock(dir, args);
    let deploy_on = |m: &Major| format!("{} user={login}", m.conn(&db.name));
    let (deploy_16, deploy_18) = (deploy_on(&old), deploy_on(&new));

    // The team's keys: a release key, an operator key that signs receipts.
    keygen(dir, "release");
    keygen(dir, "ops");
    expect_code(
        &run(&[
            "trust",
            "add",
            "keys/",
            "release.pub",
            "--name",
            "the release manager",
        ]),
        0,
    );
    expect_code(
        &run(&[
            "trust",
            "add",
            "keys/",
            "ops.pub",
            "--role",
            "operator",
            "--name",
            "the operators",
        ]),
        0,
    );
    // One-time setup on 16: the deploy login.
    let o = run(&["setup", "--db", &old.conn(&db.name), "--login", &login]);
    expect_code(&o, 0);
    assert!(
        stdout(&o).contains("Deploy as it from now on"),
        "{}",
        stdout(&o)
    );

    // 1.0.0: two migrations, imported, the team's policy added, packed, applied on 16.
    let migrations = dir.join("migrations");
    golang_migrate(&migrations, &[CUSTOMER, CUSTOMER_EMAIL]);
    let o = run(&[
        "import",
        "migrations",
        "--from",
        "golang-migrate",
        "--out",
        "rel-1.0.0",
        "--database",
        &db.name,
        "--name",
        "shop",
        "--bundle-version",
        "1.0.0",
    ]);
    expect_code(&o, 0);
    let text = stdout(&o);
    assert!(
        text.contains("imported 2 migration(s) from a golang-migrate layout into rel-1.0.0: 2 tier(s), rollback of 2 file(s)")
            && text.contains("lint: OK"),
        "{text}"
    );
    let toml_path = dir.join("rel-1.0.0/bundle.toml");
    let toml = std::fs::read_to_string(&toml_path).unwrap();
    let second = "files = [\"sql/tiers/002_20240202000000_customer_email.sql\"]\n";
    assert!(toml.contains(second), "{toml}");
    let policy = "\n[params.ticket]\nrequired = true\npattern = \"^CHG-[0-9]+$\"\ndescription = \"the change ticket\"\n\n[[gate]]\nname = \"window\"\nfile = \"sql/gate/window.sql\"\n";
    std::fs::write(
        &toml_path,
        toml.replacen(second, &format!("{second}gates = [\"window\"]\n"), 1) + policy,
    )
    .unwrap();
    write(
        &dir.join("rel-1.0.0/sql/gate/window.sql"),
        "SELECT true AS ready, 'the change window is open' AS reason\n",
    );
    pack(
        dir,
        &dir.join("rel-1.0.0"),
        "release.key",
        "shop-1.0.0.tar.gz",
    );
    let o = run(&[
        "plan",
        "shop-1.0.0.tar.gz",
        "--trust",
        "keys/",
        "--db",
        &deploy_16,
        "--param",
        "ticket=CHG-100",
    ]);
    expect_code(&o, 0);
    let text = stdout(&o);
    assert!(
        text.contains("plan for shop 1.0.0 (bundle ")
            && text.contains(&format!("on database {}: GO", db.name))
            && text.contains("window  READY"),
        "{text}"
    );
    let o = run(&[
        "apply",
        "shop-1.0.0.tar.gz",
        "--trust",
        "keys/",
        "--db",
        &deploy_16,
        "--param",
        "ticket=CHG-100",
        "--sign-receipt",
        "ops.key",
    ]);
    expect_code(&o, 0);
    let text = stdout(&o);
    assert!(
        text.starts_with("APPLIED shop 1.0.0 (bundle ")
            && text.contains(&format!(
                ") on {}: tiers {}, {}",
                db.name, CUSTOMER.0, CUSTOMER_EMAIL.0
            )),
        "{text}"
    );

    // 1.1.0: one new migration, imported --since 1.0.0 (the policy carried), on 16.
    golang_migrate(&migrations, &[ORDERS]);
    let since = |prev: &'static str| ["--since", prev, "--trust", "keys/"];
    let mut args = vec![
        "import",
        "migrations",
        "--from",
        "golang-migrate",
        "--out",
        "rel-1.1.0",
        "--database",
        &db.name,
        "--bundle-version",
        "1.1.0",
    ];
    args.extend(since("shop-1.0.0.tar.gz"));
    let o = run(&args);
    expect_code(&o, 0);
    let text = stdout(&o);
    for line in [
        "imported 1 migration(s) from a golang-migrate layout into rel-1.1.0: 1 tier(s), rollback of 1 file(s)",
        "already released: 2 migration(s) carried by release(s) 1.0.0 of this train",
        "carried from the release followed: params.ticket: required",
        "carried from the release followed: gate.window: its query sql/gate/window.sql",
        "carried from the release followed: tier.gates: every new tier names window",
    ] {
        assert!(text.contains(line), "{line}: {text}");
    }
    assert!(!text.contains("not brought over"), "{text}");
    pack(
        dir,
        &dir.join("rel-1.1.0"),
        "release.key",
        "shop-1.1.0.tar.gz",
    );
    let o = run(&[
        "--json",
        "apply",
        "shop-1.1.0.tar.gz",
        "--trust",
        "keys/",
        "--db",
        &deploy_16,
        "--param",
        "ticket=CHG-110",
        "--sign-receipt",
        "ops.key",
    ]);
    expect_code(&o, 0);
    let applied = json(&o);
    assert_eq!(applied["bundle_version"], "1.1.0", "{applied:#}");
    assert_eq!(
        applied["tiers"].as_array().map(Vec::len),
        Some(1),
        "{applied:#}"
    );
    let recorded = applied["fingerprint_after"]
        .as_str()
        .expect("fingerprint_after")
        .to_string();

    // 1.2.0 is written and packed before the upgrade: a table and a column.
    golang_migrate(&migrations, &[SHIPMENT, ORDERS_NOTE]);
    let mut args = vec![
        "--json",
        "import",
        "migrations",
        "--from",
        "golang-migrate",
        "--out",
        "rel-1.2.0",
        "--database",
        &db.name,
        "--bundle-version",
        "1.2.0",
    ];
    args.extend(since("shop-1.1.0.tar.gz"));
    let o = run(&args);
    expect_code(&o, 0);
    let imported = json(&o);
    assert_eq!(
        imported["tiers"],
        serde_json::json!([SHIPMENT.0, ORDERS_NOTE.0]),
        "{imported:#}"
    );
    assert_eq!(
        imported["already_released"].as_array().map(Vec::len),
        Some(3),
        "{imported:#}"
    );
    let carried: Vec<&str> = imported["carried"]
        .as_array()
        .unwrap_or_else(|| panic!("{imported:#}"))
        .iter()
        .map(|c| c["what"].as_str().unwrap())
        .collect();
    for what in ["params.ticket", "gate.window", "tier.gates"] {
        assert!(carried.contains(&what), "{what}: {imported:#}");
    }
    pack(
        dir,
        &dir.join("rel-1.2.0"),
        "release.key",
        "shop-1.2.0.tar.gz",
    );

    // The server upgrade, 16 to 18, by docs/operator.md's recipe as written: the roles,
    // the database of the same name and owner, the new major's pg_dump and pg_restore,
    // setup again; the chain intact, the same fingerprint, 1.2.0's plan GO.
    let on_old = fingerprint_on(&old, &deploy_16);
    assert_eq!(on_old.fingerprint, recorded, "16 before the move");
    let client = client_bin();
    let (roles_16, roles_18) = (roles_on(&old), roles_on(&new));
    let (old_host, new_host) = (
        format!("host={} port={}", old.sock.display(), old.port),
        format!("host={} port={}", new.sock.display(), new.port),
    );
    let roles = Command::new("bash")
        .arg("-c")
        .arg(r#"set -o pipefail; "$0/pg_dumpall" --roles-only -d "$1" | "$0/psql" -d "$2""#)
        .arg(&client)
        .arg(format!("{old_host} user=root"))
        .arg(format!("{new_host} dbname=postgres user=root"))
        .output()
        .expect("pg_dumpall | psql");
    // Every role 16 had (before or after the dump: the other tests on 16 come and go)
    // and 18 had not is now 18's too: dropped when the story ends.
    let mut roles_16 = roles_16;
    roles_16.extend(roles_on(&old));
    made_on_18.roles = roles_16.difference(&roles_18).cloned().collect();
    assert!(
        roles.status.success(),
        "pg_dumpall --roles-only | psql: {}{}",
        stdout(&roles),
        stderr(&roles)
    );
    assert!(
        made_on_18.roles.contains(&login) && made_on_18.roles.contains(&db.name),
        "the deploy login and the owner were not copied: {:?}",
        made_on_18.roles
    );
    let moved = MajorDb {
        on: &new,
        name: db.name.clone(),
    };
    client_tool(
        &client,
        "createdb",
        &[
            "-h",
            new.sock.to_str().unwrap(),
            "-p",
            &new.port.to_string(),
            "-U",
            "root",
            "-O",
            &db.name,
            &db.name,
        ],
    );
    let dump = dir.join("app.dump").to_string_lossy().into_owned();
    client_tool(
        &client,
        "pg_dump",
        &["-Fc", "-d", &old.conn(&db.name), "-f", &dump],
    );
    client_tool(
        &client,
        "pg_restore",
        &["--exit-on-error", "-d", &new.conn(&db.name), &dump],
    );
    expect_code(
        &run(&["setup", "--db", &new.conn(&db.name), "--login", &login]),
        0,
    );
    let o = run(&["status", "--verify-chain", "--db", &deploy_18]);
    expect_code(&o, 0);
    let text = stdout(&o);
    assert!(
        text.contains("hash chain: OK (4 rows)")
            && text.contains("shop stands at 1.1.0 (sequence 2); before it: 1.0.0"),
        "{text}"
    );
    let on_new = fingerprint_on(&new, &deploy_18);
    assert_eq!(
        on_new.fingerprint, on_old.fingerprint,
        "the schema restored on 18 does not fingerprint as on 16"
    );
    // The policy carried through two imports holds on 18: no ticket, no plan.
    let plan = |json_out: bool, extra: &[&str]| {
        let mut a = vec![
            "plan",
            "shop-1.2.0.tar.gz",
            "--trust",
            "keys/",
            "--db",
            &deploy_18,
        ];
        if json_out {
            a.insert(0, "--json");
        }
        a.extend(extra);
        run(&a)
    };
    let o = plan(false, &[]);
    expect_code(&o, 2);
    assert!(
        format!("{}{}", stdout(&o), stderr(&o)).contains("ticket"),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
    let ticket = ["--param", "ticket=CHG-120"];
    let o = plan(true, &ticket);
    expect_code(&o, 0);
    let planned = json(&o);
    assert_eq!(planned["verdict"], "GO", "{planned:#}");
    let evidence = |c: &str| check(&planned, c)["evidence"].as_str().unwrap().to_string();
    assert!(
        evidence("database").contains("(server_version_num 18"),
        "{planned:#}"
    );
    // It names the release applied here, and calls the one not applied by its version:
    // "shop is not applied here" would read as if the train were not.
    let state = evidence("ledger-state");
    assert!(
        state.contains("follows shop 1.1.0, applied here at")
            && state.contains("shop 1.2.0 is not applied here")
            && state.ends_with(&format!(
                "apply would run 2 of 2 tier(s): {}, {}",
                SHIPMENT.0, ORDERS_NOTE.0
            ))
            && !state.contains("shop is not applied here"),
        "{state}"
    );
    let o = plan(false, &ticket);
    expect_code(&o, 0);
    let text = stdout(&o);
    assert!(
        text.contains(": GO") && text.contains("follows shop 1.1.0, applied here at"),
        "{text}"
    );

    // 1.2.0 on 18, from where 16 left off (no --allow-drift).
    let o = run(&[
        "--json",
        "apply",
        "shop-1.2.0.tar.gz",
        "--trust",
        "keys/",
        "--db",
        &deploy_18,
        "--param",
        "ticket=CHG-120",
        "--sign-receipt",
        "ops.key",
    ]);
    expect_code(&o, 0);
    let applied = json(&o);
    assert_eq!(
        applied["fingerprint_before"].as_str(),
        Some(recorded.as_str()),
        "{applied:#}"
    );
    assert_eq!(
        applied["tiers"].as_array().map(Vec::len),
        Some(2),
        "{applied:#}"
    );

    // The application writes rows: 40 customers, 120 orders (30 with a note, the
    // column 1.2.0 added), 75 shipments (the table 1.2.0 made).
    moved.exec(&format!(
        "SET ROLE \"{0}\";
         INSERT INTO customer (id, name, email) SELECT g, 'c' || g, 'c' || g || '@example.com' FROM generate_series(1, 40) g;
         INSERT INTO orders (id, customer_id, note) SELECT g, 1 + g % 40, CASE WHEN g % 4 = 0 THEN 'gift' END FROM generate_series(1, 120) g;
         INSERT INTO shipment (id, order_id) SELECT g, g FROM generate_series(1, 75) g;",
        db.name
    ));

    // What the rollback destroys, counted before anyone types the database's name:
    // the table's 75 rows, and the column dropped from orders' 120 rows (docs/operator.md:
    // a DROP COLUMN counts the table's rows).
    let rollback_plan = |json_out: bool| {
        let mut a = vec![
            "plan",
            "shop-1.2.0.tar.gz",
            "--rollback",
            "--trust",
            "keys/",
            "--db",
            &deploy_18,
        ];
        if json_out {
            a.insert(0, "--json");
        }
        run(&a)
    };
    let o = rollback_plan(true);
    expect_code(&o, 0);
    let rb = json(&o);
    assert_eq!(rb["verdict"], "GO", "{rb:#}");
    assert_eq!(
        rb["undoes"],
        serde_json::json!([SHIPMENT.0, ORDERS_NOTE.0]),
        "{rb:#}"
    );
    let destroys: Vec<(String, i64)> = rb["predictions"]["destroys"]
        .as_array()
        .unwrap_or_else(|| panic!("{rb:#}"))
        .iter()
        .map(|d| {
            (
                d["object"].as_str().unwrap().to_string(),
                d["rows"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    assert_eq!(
        destroys,
        [
            ("public.orders.note".to_string(), 120),
            ("public.shipment".to_string(), 75)
        ],
        "{rb:#}"
    );
    let o = rollback_plan(false);
    expect_code(&o, 0);
    let text = stdout(&o);
    assert!(
        text.contains("rollback plan for shop 1.2.0")
            && text.contains(": GO")
            && text.contains("what the rollback destroys")
            && text.contains("75 (exact)"),
        "{text}"
    );
    let o = run(&[
        "rollback",
        "shop-1.2.0.tar.gz",
        "--trust",
        "keys/",
        "--db",
        &deploy_18,
        "--sign-receipt",
        "ops.key",
    ]);
    expect_code(&o, 0);
    let text = stdout(&o);
    assert!(
        text.starts_with("ROLLED BACK shop 1.2.0 (bundle ")
            && text.contains(&format!(
                ") on {}: tiers {}, {}",
                db.name, SHIPMENT.0, ORDERS_NOTE.0
            ))
            && text.contains("created_tables_left  none      none    ok"),
        "{text}"
    );
    let rows = |sql: &str| -> String {
        moved
            .client()
            .query_one(sql, &[])
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .get(0)
    };
    assert_eq!(rows("SELECT count(*)::text FROM orders"), "120");
    assert_eq!(rows("SELECT count(*)::text FROM customer"), "40");
    assert_eq!(
        rows("SELECT coalesce(to_regclass('shipment')::text, 'gone')"),
        "gone"
    );
    assert_eq!(
        rows("SELECT count(*)::text FROM information_schema.columns WHERE table_name = 'orders' AND column_name = 'note'"),
        "0"
    );
    assert_eq!(fingerprint_on(&new, &deploy_18).fingerprint, recorded);

    // status with the three bundles: the train stands at 1.1.0, 1.0.0 superseded,
    // 1.2.0 rolled back on top; nothing says to apply 1.0.0 or 1.1.0 again.
    let all = [
        "shop-1.0.0.tar.gz",
        "shop-1.1.0.tar.gz",
        "shop-1.2.0.tar.gz",
    ];
    let status = |json_out: bool| {
        let mut a = vec!["status"];
        if json_out {
            a.insert(0, "--json");
        }
        a.extend(all);
        a.extend(["--trust", "keys/", "--db", &deploy_18]);
        run(&a)
    };
    let o = status(false);
    expect_code(&o, 0);
    let text = stdout(&o);
    assert!(
        text.contains(
            "shop stands at 1.1.0 (sequence 2); before it: 1.0.0; rolled back on top: 1.2.0"
        ),
        "{text}"
    );
    for never in [
        "not-applied",
        "airlock apply continues",
        "apply would refuse",
    ] {
        assert!(!text.contains(never), "{never}: {text}");
    }
    let o = status(true);
    expect_code(&o, 0);
    let doc = json(&o);
    let given = train_places(&doc, true);
    let want = |v: &str, s: &str, p: &str| (v.to_string(), s.to_string(), p.to_string());
    assert_eq!(
        given,
        [
            want("1.0.0", "applied", "superseded"),
            want("1.1.0", "applied", "current"),
            want("1.2.0", "rolled-back", "rolled-back"),
        ],
        "{doc:#}"
    );
    for b in doc["bundles"].as_array().unwrap() {
        if b["state"] == "applied" {
            assert_eq!(b["remaining_tiers"], serde_json::json!([]), "{b:#}");
        }
        assert!(b.get("apply_refusal").is_none(), "{b:#}");
    }
    let trains = doc["trains"]
        .as_array()
        .unwrap_or_else(|| panic!("{doc:#}"));
    assert_eq!(trains.len(), 1, "{doc:#}");
    let shop = &trains[0];
    assert_eq!(shop["name"], "shop", "{doc:#}");
    assert_eq!(shop["stands_at"]["version"], "1.1.0", "{doc:#}");
    assert_eq!(shop["stands_at"]["sequence"], 2, "{doc:#}");
    let places: Vec<(&str, &str)> = shop["releases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["version"].as_str().unwrap(), r["place"].as_str().unwrap()))
        .collect();
    assert_eq!(
        places,
        [
            ("1.0.0", "superseded"),
            ("1.1.0", "current"),
            ("1.2.0", "rolled-back")
        ],
        "{doc:#}"
    );

    // audit of the three bundles, the four receipts of both servers and the ledger on
    // 18: PASS, what ran of each release in the train's order, and the move noted.
    let audit = |json_out: bool| {
        let mut a = vec!["audit"];
        if json_out {
            a.insert(0, "--json");
        }
        a.extend(all);
        a.extend([
            "--trust",
            "keys/",
            "--receipt",
            "receipts/",
            "--db",
            &deploy_18,
        ]);
        run(&a)
    };
    let o = audit(false);
    expect_code(&o, 0);
    let text = stdout(&o);
    assert!(text.contains("AUDIT PASS: every check held"), "{text}");
    for receipt in [
        "apply shop 1.0.0, signed by",
        "apply shop 1.1.0, signed by",
        "apply shop 1.2.0, signed by",
        "rollback shop 1.2.0, signed by",
    ] {
        assert!(text.contains(receipt), "{receipt}: {text}");
    }
    assert!(
        text.contains("ran 2 of 2 tier(s) at") && text.contains("rolled back 2 of 2 tier(s) at"),
        "{text}"
    );
    let line = text
        .lines()
        .find(|l| {
            l.contains(&format!(
                "database {}: 8 row(s), hash chain intact",
                db.name
            ))
        })
        .unwrap_or_else(|| panic!("no line for the database: {text}"));
    let at = |what: &str| line.find(what).unwrap_or_else(|| panic!("{what}: {line}"));
    let (first, second, third) = (
        at("shop 1.0.0: 2 of 2 tier(s) applied, last apply at"),
        at("shop 1.1.0: 1 of 1 tier(s) applied, last apply at"),
        at("shop 1.2.0: 0 of 2 tier(s) applied, last rollback at"),
    );
    assert!(
        first < second && second < third,
        "the releases in the train's order: {line}"
    );
    assert!(
        text.contains("the database moved to another server (system identifier changed 1 time(s))"),
        "{text}"
    );
    let o = audit(true);
    expect_code(&o, 0);
    let report = json(&o);
    assert_eq!(report["verdict"], "PASS", "{report:#}");
    let receipts = report["receipts"].as_array().unwrap();
    assert_eq!(receipts.len(), 4, "{report:#}");
    assert!(receipts.iter().all(|r| r["ok"] == true), "{report:#}");
    let ran: Vec<(&str, &str, usize, u64)> = report["ledgers"][0]["ran"]
        .as_array()
        .unwrap_or_else(|| panic!("{report:#}"))
        .iter()
        .map(|r| {
            (
                r["release"].as_str().unwrap(),
                r["event"].as_str().unwrap(),
                r["tiers"].as_array().unwrap().len(),
                r["of"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ran,
        [
            ("shop 1.0.0", "apply", 2, 2),
            ("shop 1.1.0", "apply", 1, 1),
            ("shop 1.2.0", "rollback", 0, 2)
        ],
        "{report:#}"
    );
    assert!(
        report["verdicts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["check"] == "server moved" && v["verdict"] == "NOTE"),
        "{report:#}"
    );
    drop(moved);
    drop(db);
}

/// A rehearsal that must clone from a dump (`--clone-strategy dump`, or a target with
/// other sessions) on PostgreSQL 14 with only 18's client tools: 18's `pg_restore`
/// sets `transaction_timeout`, which 14 rejects. Refused by name before the clone is
/// made, saying which tools to install; nothing is left behind.
#[test]
fn a_pg_restore_too_new_for_the_server_is_refused_before_anything_is_cloned() {
    let m = Major::of(14);
    let db = m.database("restore_too_new");
    // Owned by the login, so the bundle's SQL runs as the login (one superuser).
    m.admin()
        .batch_execute(&format!("ALTER DATABASE \"{}\" OWNER TO root", db.name))
        .expect("owner");
    db.exec("CREATE TABLE public.orders(id int PRIMARY KEY); INSERT INTO public.orders VALUES (1)");
    let t = keyed_dir();
    let b = mini_bundle(
        t.path(),
        &db.name,
        "b.tar.gz",
        "SELECT true AS ready, 'open' AS reason",
        &[("structure", "CREATE TABLE public.t1(i int);\n", false)],
        "DROP TABLE IF EXISTS public.t1;",
    );
    // (Not other test files' databases: a run of the suite against this server may
    // make and drop its own meanwhile.)
    let databases = |m: &Major| -> Vec<String> {
        m.admin()
            .query(
                "SELECT datname::text FROM pg_database WHERE datname !~ '^airlock_t_' ORDER BY 1",
                &[],
            )
            .expect("pg_database")
            .iter()
            .map(|r| r.get(0))
            .collect()
    };
    let before = databases(&m);
    let client = client_bin();
    let port = m.port.to_string();
    let conn = db.conn();
    let o = airlock_env(
        t.path(),
        &[
            "--json",
            "rehearse",
            &b,
            "--clone-strategy",
            "dump",
            "--param",
            "code=A1",
            "--trust",
            "rm.pub",
            "--db",
            &conn,
        ],
        &[
            ("PGHOST", m.sock.to_str().unwrap()),
            ("PGPORT", &port),
            ("PGUSER", "root"),
            ("AIRLOCK_PG_BIN", client.to_str().unwrap()),
        ],
    );
    expect_code(&o, 1);
    let r = json(&o);
    let step = r["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["step"] == "clone the target")
        .unwrap_or_else(|| panic!("no clone step in {r:#}"));
    let d = step["detail"].as_str().unwrap();
    assert_eq!(step["verdict"], "FAIL", "{r:#}");
    assert!(
        d.contains("is PostgreSQL 18's, which cannot restore into PostgreSQL 14")
            && d.contains("nothing was cloned")
            && d.contains("postgresql-client-14")
            && d.contains("AIRLOCK_PG_BIN"),
        "{d}"
    );
    assert_eq!(databases(&m), before, "a database was made or dropped");
    let rows: i64 = db
        .client()
        .query_one("SELECT count(*) FROM public.orders", &[])
        .unwrap()
        .get(0);
    assert_eq!(rows, 1);
    assert!(
        db.client()
            .query_opt("SELECT 1 FROM pg_class WHERE relname = 't1'", &[])
            .unwrap()
            .is_none(),
        "the release ran on the target"
    );
}
