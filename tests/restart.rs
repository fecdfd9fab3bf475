//! The server restarts while `airlock apply` runs a tier: on a throwaway PostgreSQL
//! cluster of this test's own (initdb into a temp dir, its own socket directory, never
//! the shared server), stopped and removed when the test ends, even on panic.
//! Fails loudly when the server binaries are missing: it never skips.

mod util;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use util::cluster::Cluster;
use util::*;

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
    let mut c = airlock_command(dir, &[]);
    c.args([
        "apply", "b.tar.gz", "--trust", "rm.pub", "--db", conn, "--param",
    ])
    .arg(format!("code={code}"))
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
            // Known by its wait event: airlock's prelude can fill pg_stat_activity's
            // 1 kB of the message before the tier's text.
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'airlock' AND wait_event = 'PgSleep' AND state = 'active'",
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
    assert_eq!(
        c.scalar(
            "app",
            "SELECT count(*) FROM airlock.ledger WHERE event <> 'receipt'"
        ),
        "1"
    );
    assert_eq!(c.scalar("app", "SELECT count(*) FROM app.t1"), "2");
    assert_eq!(
        c.scalar("app", "SELECT sum(balance) FROM keep.accounts"),
        "50600"
    );
}
