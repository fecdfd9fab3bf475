//! The server restarts while `airlock apply` runs a tier: on a throwaway PostgreSQL
//! cluster of this test's own (initdb into a temp dir, its own socket directory, never
//! the shared server), stopped and removed when the test ends, even on panic.
//! Fails loudly when the server binaries are missing: it never skips.

mod util;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use util::*;

/// The directory holding initdb/pg_ctl/postgres: `$PG_BIN`, else the newest
/// `/usr/lib/postgresql/*/bin`.
fn pg_bin() -> PathBuf {
    if let Ok(p) = std::env::var("PG_BIN") {
        return PathBuf::from(p);
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, b)| b).unwrap_or_else(|| {
        panic!(
            "PostgreSQL server binaries (initdb, pg_ctl) not found under /usr/lib/postgresql/*/bin \
             and PG_BIN is not set; this test needs them (apt-get install postgresql)"
        )
    })
}

/// initdb refuses to run as root: as root, the cluster belongs to `postgres`.
fn cluster_owner() -> Option<(u32, u32)> {
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let name = std::ffi::CString::new("postgres").unwrap();
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    assert!(
        !pw.is_null(),
        "running as root and there is no `postgres` user to own a throwaway cluster"
    );
    Some(unsafe { ((*pw).pw_uid, (*pw).pw_gid) })
}

struct Cluster {
    bin: PathBuf,
    root: tempfile::TempDir,
    owner: Option<(u32, u32)>,
    port: u16,
}

impl Cluster {
    fn data(&self) -> PathBuf {
        self.root.path().join("data")
    }

    fn sock(&self) -> PathBuf {
        self.root.path().join("sock")
    }

    /// A server program, run as the cluster's owner.
    fn tool(&self, name: &str) -> Command {
        let mut c = Command::new(self.bin.join(name));
        if let Some((uid, gid)) = self.owner {
            c.uid(uid).gid(gid);
        }
        c.env_remove("PGDATA");
        c
    }

    fn run(&self, name: &str, args: &[&str]) {
        let o = self.tool(name).args(args).output().expect(name);
        assert!(
            o.status.success(),
            "{name} {args:?} failed\n{}\n{}\nserver log:\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
            std::fs::read_to_string(self.root.path().join("log")).unwrap_or_default()
        );
    }

    fn start() -> Cluster {
        let bin = pg_bin();
        let owner = cluster_owner();
        let root = tempfile::Builder::new()
            .prefix("airlock-cluster-")
            .tempdir()
            .expect("tempdir");
        std::fs::create_dir(root.path().join("sock")).unwrap();
        if let Some((uid, gid)) = owner {
            for p in [root.path().to_path_buf(), root.path().join("sock")] {
                std::os::unix::fs::chown(&p, Some(uid), Some(gid)).expect("chown");
            }
        }
        // The socket lives in our own directory, so any port number is free there;
        // no TCP listener at all.
        let port = 20_000 + (std::process::id() % 20_000) as u16;
        let c = Cluster {
            bin,
            root,
            owner,
            port,
        };
        let data = c.data();
        c.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        );
        c.pg_ctl(&["start"]);
        // The one-time setup: gates and probes run as a role without outside powers
        // (these gates and probes read only what PUBLIC may: no grant at all).
        c.client("postgres")
            .batch_execute("CREATE ROLE airlock_gate NOLOGIN;")
            .expect("create airlock_gate");
        c
    }

    fn pg_ctl(&self, action: &[&str]) {
        let data = self.data();
        let log = self.root.path().join("log");
        let opts = format!(
            "-p {} -k {} -c listen_addresses='' -c fsync=off",
            self.port,
            self.sock().display()
        );
        let mut args = vec![
            "-D",
            data.to_str().unwrap(),
            "-l",
            log.to_str().unwrap(),
            "-o",
            &opts,
            "-w",
            "-t",
            "60",
        ];
        args.extend_from_slice(action);
        self.run("pg_ctl", &args);
    }

    fn conn(&self, db: &str) -> String {
        format!(
            "host={} port={} user=postgres dbname={db}",
            self.sock().display(),
            self.port
        )
    }

    fn client(&self, db: &str) -> postgres::Client {
        postgres::Client::connect(&self.conn(db), postgres::NoTls)
            .unwrap_or_else(|e| panic!("connect to the throwaway cluster: {e}"))
    }

    fn scalar(&self, db: &str, sql: &str) -> String {
        let rows = self.client(db).simple_query(sql).expect(sql);
        for m in rows {
            if let postgres::SimpleQueryMessage::Row(r) = m {
                return r.get(0).unwrap_or("NULL").to_string();
            }
        }
        panic!("no row from {sql}")
    }

    /// Full schema + data dump, `\restrict` lines stripped.
    fn dump(&self, db: &str) -> String {
        let pg_dump = if self.bin.join("pg_dump").exists() {
            self.bin.join("pg_dump")
        } else {
            PathBuf::from("pg_dump")
        };
        util::pg_dump(&pg_dump, &self.conn(db), &[])
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self
            .tool("pg_ctl")
            .args([
                "-D",
                data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

const TIERS: [(&str, &str, bool); 2] = [
    (
        "t1",
        "CREATE TABLE app.t1(i int); INSERT INTO app.t1 VALUES (1); UPDATE keep.accounts SET balance = balance + 1;",
        false,
    ),
    (
        "slow",
        "INSERT INTO app.t1 VALUES (2); SELECT pg_sleep(CASE WHEN current_setting('airlock.code') = 'slow' THEN 60 ELSE 0 END);",
        false,
    ),
];

fn apply(dir: &Path, conn: &str, code: &str) -> Command {
    let mut c = Command::new(bin());
    c.current_dir(dir)
        .args([
            "apply", "b.tar.gz", "--trust", "rm.pub", "--db", conn, "--param",
        ])
        .arg(format!("code={code}"))
        .env_remove("AIRLOCK_DB")
        .env_remove("AIRLOCK_TRUST")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Start a sleeping apply, restart the server in `mode` while its slow tier runs.
fn restart_mid_apply(c: &Cluster, dir: &Path, mode: &str) -> Output {
    let child = apply(dir, &c.conn("app"), "slow").spawn().expect("airlock");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let n = c.scalar(
            "postgres",
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'airlock' AND query LIKE '%pg_sleep%' AND state = 'active'",
        );
        if n != "0" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the slow tier never started ({mode})"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let t = Instant::now();
    c.pg_ctl(&["-m", mode, "restart"]);
    let o = child.wait_with_output().unwrap();
    eprintln!(
        "restart -m {mode}: server back and apply exited {} after {:.1?}; it said:\n{}",
        code(&o),
        t.elapsed(),
        stderr(&o).trim_end()
    );
    o
}

#[test]
fn a_server_restart_mid_apply_leaves_the_database_as_before_and_a_fresh_apply_succeeds() {
    let c = Cluster::start();
    let mut admin = c.client("postgres");
    admin.batch_execute("CREATE DATABASE app").unwrap();
    c.client("app")
        .batch_execute(
            "CREATE SCHEMA app; CREATE SCHEMA keep;
             CREATE TABLE keep.accounts(id int PRIMARY KEY, balance int);
             INSERT INTO keep.accounts SELECT g, g * 10 FROM generate_series(1, 100) g;",
        )
        .unwrap();
    let t = tempdir();
    let dir = t.path();
    keygen(dir, "rm");
    let src = MiniSource::new(dir, "app", "SELECT true AS ready", &TIERS, "SELECT 1;");
    pack(dir, &src.dir, "rm.key", "b.tar.gz");
    let before = c.dump("app");

    for mode in ["immediate", "fast"] {
        let o = restart_mid_apply(&c, dir, mode);
        expect_code(&o, 1);
        let err = stderr(&o);
        assert!(
            err.contains("tier 2/2 \"slow\"")
                && err.contains("connection")
                && err.contains("rolled back"),
            "-m {mode}: the error should name the tier, the lost connection and the rollback:\n{err}"
        );
        assert_eq!(c.dump("app"), before, "-m {mode}: the database changed");
        assert_eq!(
            c.scalar("app", "SELECT to_regclass('airlock.ledger') IS NULL"),
            "t",
            "-m {mode}: a ledger exists after a failed first apply"
        );
    }

    // After the restarts, the same bundle applies cleanly.
    let o = apply(dir, &c.conn("app"), "fast").output().unwrap();
    expect_code(&o, 0);
    assert_eq!(c.scalar("app", "SELECT count(*) FROM airlock.ledger"), "1");
    assert_eq!(c.scalar("app", "SELECT count(*) FROM app.t1"), "2");
    assert_eq!(
        c.scalar("app", "SELECT sum(balance) FROM keep.accounts"),
        "50600"
    );
}
