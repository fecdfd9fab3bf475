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
