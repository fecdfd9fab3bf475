//! Rehearsing a live target (issue 26): a database in use always has sessions, and
//! `CREATE DATABASE … TEMPLATE` needs nobody connected. `auto` then clones from one
//! `pg_dump` snapshot, restored, and says what it cost; the proofs still hold on the
//! restored clone, and the target is compared by schema (its rows are live).

mod util;
use util::*;

fn fixture(tag: &str) -> (tempfile::TempDir, TestDb, String) {
    let t = keyed_dir();
    let db = TestDb::new(tag);
    db.exec(
        "CREATE TABLE public.orders(id int PRIMARY KEY, qty int, note text);
         INSERT INTO public.orders SELECT g, g % 7, 'n' || g FROM generate_series(1, 5000) g;
         CREATE TABLE public.gone(id int); ALTER TABLE public.gone ADD COLUMN x int;
         ALTER TABLE public.gone DROP COLUMN x; INSERT INTO public.gone VALUES (1);
         CREATE SEQUENCE public.s; SELECT setval('public.s', 42);",
    );
    let b = mini_bundle(
        t.path(),
        &db.name,
        "b.tar.gz",
        "SELECT true AS ready, 'open' AS reason",
        &[(
            "structure",
            "CREATE SCHEMA app;\nCREATE TABLE app.t1(i int);\nUPDATE public.orders SET qty = qty + 1 WHERE id < 10;\n",
            false,
        )],
        "UPDATE public.orders SET qty = qty - 1 WHERE id < 10; DROP TABLE IF EXISTS app.t1; DROP SCHEMA IF EXISTS app;",
    );
    (t, db, b)
}

fn step<'a>(r: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    r["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["step"] == name)
        .unwrap_or_else(|| panic!("no step {name:?} in {r:#}"))
}

#[test]
fn a_target_with_another_session_is_rehearsed_on_a_clone_from_a_dump() {
    let (t, db, b) = fixture("live_dump");
    // A real second session on the target, in the middle of a transaction, for the
    // whole rehearsal.
    let mut other = db.client();
    let mut busy = other.transaction().expect("BEGIN");
    busy.query_one("SELECT count(*) FROM public.orders", &[])
        .expect("read");
    let conn = db.conn();
    let args = |extra: &[&'static str]| {
        let mut a = vec![
            "--json",
            "rehearse",
            b.as_str(),
            "--param",
            "code=A1",
            "--trust",
            "rm.pub",
            "--db",
            conn.as_str(),
        ];
        a.extend_from_slice(extra);
        a
    };
    // A template clone cannot start; the error says what to do.
    let o = airlock(t.path(), &args(&["--clone-strategy", "wal_log"]));
    expect_code(&o, 1);
    let r = json(&o);
    let d = step(&r, "clone the target")["detail"].as_str().unwrap();
    assert!(d.contains("--clone-strategy dump"), "{d}");
    // auto: from a dump, every proof held, the cost reported.
    let o = airlock(t.path(), &args(&[]));
    let r = json(&o);
    expect_code(&o, 0);
    assert_eq!(r["clone_strategy"], "dump", "{r:#}");
    let cost = &r["clone_cost"];
    assert!(
        cost["dump_ms"].is_u64()
            && cost["restore_ms"].is_u64()
            && cost["dump_bytes"].as_u64().unwrap() > 0,
        "{r:#}"
    );
    for s in r["steps"].as_array().unwrap() {
        assert_eq!(s["verdict"], "PASS", "{r:#}");
    }
    let clone = step(&r, "clone the target")["detail"].as_str().unwrap();
    assert!(
        clone.contains("the target has 1 other session(s)")
            && clone.contains("the restored schema is the target's at that snapshot"),
        "{clone}"
    );
    assert!(
        step(&r, "target schema unchanged")["detail"]
            .as_str()
            .unwrap()
            .contains("schema only: the target is live"),
        "{r:#}"
    );
    validate_rehearse(&r);
    // The second session was never disturbed, and the target is as it was.
    busy.query_one("SELECT count(*) FROM public.orders", &[])
        .expect("the other session still works");
    busy.rollback().expect("ROLLBACK");
    assert_eq!(
        db.scalar("SELECT sum(qty) FROM public.orders"),
        db.scalar("SELECT sum(g % 7) FROM generate_series(1, 5000) g")
    );
    assert_eq!(db.scalar("SELECT to_regnamespace('app') IS NULL"), "t");
    assert!(
        !TestDb::exists(r["clone"].as_str().unwrap()),
        "the clone was left"
    );
    // The human report says how the clone was made and what it cost.
    let o = airlock(
        t.path(),
        &[
            "rehearse",
            &b,
            "--param",
            "code=A1",
            "--trust",
            "rm.pub",
            "--db",
            &conn,
            "--clone-strategy",
            "dump",
        ],
    );
    expect_code(&o, 0);
    let out = stdout(&o);
    assert!(
        out.contains("clone: pg_dump of one snapshot, restored"),
        "{out}"
    );
}

#[test]
fn a_rollback_that_misses_a_row_is_caught_on_a_dump_clone() {
    let (t, db, _) = fixture("live_dump_catch");
    let b = mini_bundle(
        t.path(),
        &db.name,
        "bad.tar.gz",
        "SELECT true AS ready, 'open' AS reason",
        &[(
            "structure",
            "CREATE SCHEMA app;\nDELETE FROM public.orders WHERE id = 77;\n",
            false,
        )],
        "DROP SCHEMA IF EXISTS app;",
    );
    let _other = db.client();
    let o = airlock(
        t.path(),
        &[
            "--json",
            "rehearse",
            &b,
            "--param",
            "code=A1",
            "--trust",
            "rm.pub",
            "--db",
            &db.conn(),
        ],
    );
    let r = json(&o);
    expect_code(&o, 5);
    assert_eq!(r["clone_strategy"], "dump", "{r:#}");
    let d = step(&r, "exit fingerprint == entry")["detail"]
        .as_str()
        .unwrap();
    assert!(d.contains("rollback did not restore the baseline"), "{d}");
    assert_eq!(db.scalar("SELECT count(*) FROM public.orders"), "5000");
}

fn validate_rehearse(r: &serde_json::Value) {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("schemas/rehearse.schema.json")).expect("schema"),
    )
    .expect("schema json");
    let compiled = jsonschema::JSONSchema::compile(&schema).expect("schema compiles");
    if let Err(errors) = compiled.validate(r) {
        let msgs: Vec<String> = errors
            .map(|e| format!("{e} at {}", e.instance_path))
            .collect();
        panic!("output does not match the schema: {msgs:?}\n{r:#}");
    };
}

#[test]
fn a_partly_applied_live_target_is_rehearsed_from_a_dump_with_its_ledger() {
    let (t, db, _) = fixture("live_dump_ledger");
    let b = mini_bundle(
        t.path(),
        &db.name,
        "two.tar.gz",
        "SELECT true AS ready, 'open' AS reason",
        &[
            (
                "structure",
                "CREATE SCHEMA app;\nCREATE TABLE app.t1(i int);\n",
                false,
            ),
            ("data", "INSERT INTO app.t1 VALUES (1);\n", false),
        ],
        "DROP TABLE IF EXISTS app.t1; DROP SCHEMA IF EXISTS app;",
    );
    let conn = db.conn();
    let base = [
        "--trust",
        "rm.pub",
        "--db",
        conn.as_str(),
        "--param",
        "code=A1",
    ];
    let mut a = vec!["apply", b.as_str(), "--through", "structure", "--yes"];
    a.extend(base);
    expect_code(&airlock(t.path(), &a), 0);
    let _other = db.client();
    let mut a = vec!["--json", "rehearse", b.as_str()];
    a.extend(base);
    let o = airlock(t.path(), &a);
    let r = json(&o);
    expect_code(&o, 0);
    assert_eq!(r["clone_strategy"], "dump", "{r:#}");
    assert!(
        step(&r, "tiers already applied")["detail"]
            .as_str()
            .unwrap()
            .starts_with("1 of 2"),
        "{r:#}"
    );
    assert_eq!(
        step(&r, "exit schema == before the first tier")["verdict"],
        "PASS",
        "{r:#}"
    );
}

#[test]
fn without_pg_dump_the_dump_clone_fails_saying_what_to_do_and_leaves_no_clone() {
    let (t, db, b) = fixture("live_dump_notool");
    let _other = db.client();
    let before = db.dump();
    let conn = db.conn();
    let o = airlock_env(
        t.path(),
        &[
            "--json", "rehearse", &b, "--param", "code=A1", "--trust", "rm.pub", "--db", &conn,
        ],
        &[("AIRLOCK_PG_BIN", "/nonexistent/airlock-test-bin")],
    );
    let r = json(&o);
    expect_code(&o, 1);
    let d = step(&r, "clone the target")["detail"].as_str().unwrap();
    assert!(
        d.contains("could not run pg_dump of the target") && d.contains("AIRLOCK_PG_BIN"),
        "{d}"
    );
    assert_eq!(step(&r, "clone the target")["verdict"], "FAIL", "{r:#}");
    assert!(
        !TestDb::exists(r["clone"].as_str().unwrap()),
        "the clone was left"
    );
    assert_eq!(db.dump(), before, "the target changed");
}
