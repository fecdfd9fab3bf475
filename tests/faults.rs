//! Database faults: whatever happens to `airlock apply`, the target ends exactly
//! before or exactly after, and the ledger agrees.

mod util;
use std::process::Stdio;
use std::time::{Duration, Instant};
use util::*;

/// Data-level fingerprint without the ledger (the airlock schema is excluded).
fn fingerprint(db: &TestDb) -> String {
    let d = tempdir();
    let o = airlock(
        d.path(),
        &["--json", "fingerprint", "--data", "--db", &db.conn()],
    );
    expect_code(&o, 0);
    json(&o)["fingerprint"].as_str().unwrap().to_string()
}

/// The ledger's rows of what ran (a `receipt` row records a receipt delivered after
/// the commit; a run killed before it has none).
fn ledger_rows(db: &TestDb) -> i64 {
    if db.scalar("SELECT to_regclass('airlock.ledger') IS NULL") == "t" {
        return 0;
    }
    db.scalar("SELECT count(*) FROM airlock.ledger WHERE event <> 'receipt'")
        .parse()
        .unwrap()
}

/// Wait (bounded) until no airlock session is left on the database, so a killed
/// client's transaction has been resolved by the server.
fn wait_for_no_airlock_sessions(db: &TestDb) {
    let mut admin = admin();
    for _ in 0..1000 {
        let rows = admin
            .query("SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND application_name = 'airlock'", &[&db.name])
            .unwrap();
        if rows.is_empty() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("airlock sessions did not go away");
}

const TIERS: &[(&str, &str, bool)] = &[
    ("t1", "CREATE TABLE app.a AS SELECT g AS i FROM generate_series(1, 20000) g;", false),
    ("t2", "CREATE INDEX a_i ON app.a (i); CREATE TABLE app.b AS SELECT i, md5(i::text) AS h FROM app.a;", false),
    ("t3", "UPDATE app.b SET h = upper(h); CREATE TABLE app.c AS SELECT count(*) AS n FROM app.b;", false),
    ("t4", "SELECT pg_sleep(0.05); INSERT INTO app.c SELECT n + 1 FROM app.c;", false),
];
const ROLLBACK: &str =
    "DROP TABLE IF EXISTS app.c; DROP TABLE IF EXISTS app.b; DROP TABLE IF EXISTS app.a;";

#[test]
fn sigkill_at_fifty_points_leaves_before_or_after_and_a_consistent_ledger() {
    let t = tempdir();
    let dir = t.path();
    let db = TestDb::new("sigkill");
    db.exec("CREATE SCHEMA app;");
    let src = MiniSource::new(dir, &db.name, "SELECT true AS ready", TIERS, ROLLBACK);
    keygen(dir, "rm");
    pack(dir, &src.dir, "rm.key", "b.tar.gz");
    let conn = db.conn();
    let apply = [
        "apply",
        "b.tar.gz",
        "--trust",
        "rm.pub",
        "--db",
        conn.as_str(),
    ];
    let rollback = [
        "rollback",
        "b.tar.gz",
        "--trust",
        "rm.pub",
        "--db",
        conn.as_str(),
    ];

    // Reference: the states before and after, and how long an apply takes.
    let before = fingerprint(&db);
    let start = Instant::now();
    expect_code(&airlock(dir, &apply), 0);
    let span = start.elapsed();
    let after = fingerprint(&db);
    assert_ne!(before, after);
    expect_code(&airlock(dir, &rollback), 0);
    assert_eq!(fingerprint(&db), before);

    let (mut saw_before, mut saw_after) = (0, 0);
    for i in 0..50u64 {
        let rows_before = ledger_rows(&db);
        // Kill points spread over 0..1.2x the apply's duration (deterministic).
        let delay = span.mul_f64(((i * 7919) % 50) as f64 / 50.0 * 1.2);
        let mut child = airlock_command(dir, &[])
            .args(apply)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL
        let status = child.wait().unwrap();
        wait_for_no_airlock_sessions(&db);
        let now = fingerprint(&db);
        let rows = ledger_rows(&db);
        if now == before {
            saw_before += 1;
            assert_eq!(
                rows, rows_before,
                "run {i}: database is as before but the ledger grew"
            );
            assert_ne!(
                status.code(),
                Some(0),
                "run {i}: apply said success but nothing happened"
            );
        } else {
            assert_eq!(now, after, "run {i}: killed apply left a partial state");
            saw_after += 1;
            assert_eq!(rows, rows_before + 1, "run {i}: applied but no ledger row");
            assert_eq!(
                db.scalar(
                    "SELECT event FROM airlock.ledger WHERE event <> 'receipt' ORDER BY seq DESC LIMIT 1"
                ),
                "apply"
            );
            expect_code(&airlock(dir, &rollback), 0);
            assert_eq!(fingerprint(&db), before);
        }
    }
    let chain = airlock(dir, &["status", "--db", &conn, "--verify-chain"]);
    expect_code(&chain, 0);
    eprintln!("sigkill: 50 runs, {saw_before} left the database before, {saw_after} after");
    assert_eq!(saw_before + saw_after, 50);
}

#[test]
fn statement_timeout_in_a_tier_rolls_everything_back() {
    let t = tempdir();
    let dir = t.path();
    let db = TestDb::new("stmttimeout");
    db.exec("CREATE SCHEMA app;");
    let src = MiniSource::new(
        dir,
        &db.name,
        "SELECT true AS ready",
        &[
            ("t1", "CREATE TABLE app.t1(i int);", false),
            ("slow", "SELECT pg_sleep(5);", false),
        ],
        "DROP TABLE IF EXISTS app.t1;",
    );
    keygen(dir, "rm");
    pack(dir, &src.dir, "rm.key", "b.tar.gz");
    let before = db.dump();
    let o = airlock(
        dir,
        &[
            "apply",
            "b.tar.gz",
            "--trust",
            "rm.pub",
            "--db",
            &db.conn(),
            "--statement-timeout",
            "300ms",
        ],
    );
    expect_code(&o, 1);
    assert!(stderr(&o).contains("statement timeout"), "{}", stderr(&o));
    assert!(stderr(&o).contains("tier 2/2"), "{}", stderr(&o));
    assert_eq!(db.dump(), before);
}

#[test]
fn an_application_lock_makes_the_tier_wait_then_fail_by_lock_timeout() {
    let t = tempdir();
    let dir = t.path();
    let db = TestDb::new("applock");
    db.exec("CREATE SCHEMA app; CREATE TABLE public.orders(id int);");
    let src = MiniSource::new(
        dir,
        &db.name,
        "SELECT true AS ready",
        &[
            ("t1", "CREATE TABLE app.t1(i int);", false),
            (
                "alter",
                "ALTER TABLE public.orders ADD COLUMN note text;",
                false,
            ),
        ],
        "DROP TABLE IF EXISTS app.t1; ALTER TABLE public.orders DROP COLUMN IF EXISTS note;",
    );
    keygen(dir, "rm");
    pack(dir, &src.dir, "rm.key", "b.tar.gz");
    let before = db.dump();
    // An application transaction holds a lock the tier needs.
    let mut app = db.client();
    let mut tx = app.transaction().unwrap();
    tx.batch_execute("LOCK TABLE public.orders IN ROW EXCLUSIVE MODE")
        .unwrap();
    let o = airlock(
        dir,
        &[
            "apply",
            "b.tar.gz",
            "--trust",
            "rm.pub",
            "--db",
            &db.conn(),
            "--lock-timeout",
            "300ms",
            "--lock-retries",
            "1",
        ],
    );
    // Retried once, then refused as lock-busy, naming the application's session.
    expect_code(&o, 6);
    assert!(stderr(&o).contains("lock timeout"), "{}", stderr(&o));
    assert!(stderr(&o).contains("retry 1/1"), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("LOCK TABLE public.orders"),
        "{}",
        stderr(&o)
    );
    // And says what to do next (issue 48, finding 9: it named the holder only).
    assert!(
        stderr(&o).contains("hint: nothing was changed: run it again once that session"),
        "{}",
        stderr(&o)
    );
    tx.rollback().unwrap();
    assert_eq!(db.dump(), before);
    // With the application gone, the same apply goes through.
    expect_code(
        &airlock(
            dir,
            &["apply", "b.tar.gz", "--trust", "rm.pub", "--db", &db.conn()],
        ),
        0,
    );
}

#[test]
fn a_gate_that_never_returns_is_blocked_by_the_statement_timeout() {
    let t = tempdir();
    let dir = t.path();
    let db = TestDb::new("gatehang");
    // The timeout covers airlock's own statements too (creating the ledger): long
    // enough for those on a loaded machine, short next to the gate's hour.
    db.exec("CREATE SCHEMA app;");
    let src = MiniSource::new(
        dir,
        &db.name,
        "SELECT pg_sleep(3600) IS NULL AS ready",
        &[("t1", "CREATE TABLE app.t1(i int);", true)],
        "DROP TABLE IF EXISTS app.t1;",
    );
    keygen(dir, "rm");
    pack(dir, &src.dir, "rm.key", "b.tar.gz");
    let o = airlock(
        dir,
        &[
            "--json",
            "gate",
            "b.tar.gz",
            "--trust",
            "rm.pub",
            "--db",
            &db.conn(),
            "--statement-timeout",
            "2s",
        ],
    );
    expect_code(&o, 3);
    let g = json(&o);
    assert!(
        g["gates"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("statement timeout"),
        "{g}"
    );
    let o = airlock(
        dir,
        &[
            "apply",
            "b.tar.gz",
            "--trust",
            "rm.pub",
            "--db",
            &db.conn(),
            "--statement-timeout",
            "2s",
            "--param",
            "code=x",
        ],
    );
    expect_code(&o, 3);
    assert_eq!(db.scalar("SELECT to_regclass('app.t1') IS NULL"), "t");
}

#[test]
fn passphrases_never_reach_argv_output_or_json() {
    let t = tempdir();
    let dir = t.path();
    let secret = "correct horse battery staple 7731";
    let o = airlock_env(
        dir,
        &["--json", "keygen", "--out", "enc"],
        &[("AIRLOCK_PASSPHRASE", secret)],
    );
    expect_code(&o, 0);
    assert!(!stdout(&o).contains(secret) && !stderr(&o).contains(secret));
    let key = std::fs::read_to_string(dir.join("enc.key")).unwrap();
    assert!(!key.contains(secret));
    let src = MiniSource::new(
        dir,
        "x",
        "SELECT true AS ready",
        &[("t1", "SELECT 1;", false)],
        "SELECT 1;",
    );
    let s = src.dir.to_str().unwrap();
    let o = airlock_env(
        dir,
        &["--json", "pack", s, "--key", "enc.key", "--out", "b.tar.gz"],
        &[("AIRLOCK_PASSPHRASE", secret)],
    );
    expect_code(&o, 0);
    assert!(!stdout(&o).contains(secret) && !stderr(&o).contains(secret));
    let o = airlock_env(
        dir,
        &["--json", "pack", s, "--key", "enc.key", "--out", "c.tar.gz"],
        &[("AIRLOCK_PASSPHRASE", "wrong")],
    );
    expect_code(&o, 2);
    assert!(!stdout(&o).contains("wrong\"") && !dir.join("c.tar.gz").exists());
    // There is no flag that takes a passphrase on the command line.
    let help = airlock(dir, &["pack", "--help"]);
    assert!(
        !stdout(&help).contains("--passphrase "),
        "{}",
        stdout(&help)
    );
    // A group-readable secret key is refused.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.join("enc.key"), std::fs::Permissions::from_mode(0o640)).unwrap();
    let o = airlock_env(
        dir,
        &["pack", s, "--key", "enc.key", "--out", "d.tar.gz"],
        &[("AIRLOCK_PASSPHRASE", secret)],
    );
    expect_code(&o, 2);
    assert!(stderr(&o).contains("chmod 600"));
}
