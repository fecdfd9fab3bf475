//! The rollback's own GO/NO-GO (issue 75, part 2): `plan BUNDLE --rollback` counts what
//! the rollback destroys and predicts what the data makes fail, read-only, before the
//! operator runs it. The story: a release seeds plans and creates `orders`; the
//! application writes orders referencing the seed; the rollback's DELETE of the seed
//! would fail on the foreign key, and had it not, its DROP would take every order.

mod util;
use util::*;

const TIERS: &[(&str, &str, bool)] = &[
    (
        "seed",
        "CREATE TABLE plans (id int PRIMARY KEY, name text NOT NULL);\n\
         INSERT INTO plans VALUES (1, 'basic'), (2, 'pro');\n",
        false,
    ),
    (
        "orders",
        "CREATE TABLE orders (id int PRIMARY KEY, plan_id int NOT NULL REFERENCES plans (id));\n",
        false,
    ),
];

const ROLLBACK: &str = "DELETE FROM plans WHERE id IN (1, 2);\n\
                        DROP TABLE IF EXISTS orders;\n\
                        DROP TABLE IF EXISTS plans;\n";

fn plan_rollback(dir: &std::path::Path, b: &str, db: &TestDb) -> (i32, serde_json::Value, String) {
    let o = run_json(dir, "rm.pub", &db.conn(), &["plan", b, "--rollback"]);
    let human = airlock(
        dir,
        &[
            "plan",
            b,
            "--rollback",
            "--trust",
            "rm.pub",
            "--db",
            &db.conn(),
        ],
    );
    assert_eq!(
        code(&human),
        code(&o),
        "human and --json agree on the exit code"
    );
    (code(&o), json(&o), stdout(&human) + &stderr(&human))
}

#[test]
fn the_rollback_plan_counts_what_it_destroys_and_names_the_rows_that_stop_it() {
    let t = keyed_dir();
    let dir = t.path();
    let db = TestDb::new("rbplan");
    let b = mini_bundle(
        dir,
        &db.name,
        "b.tar.gz",
        "SELECT true AS ready",
        TIERS,
        ROLLBACK,
    );

    // Never applied here: nothing to plan (exit 6), nothing written.
    let before = db.dump();
    let (c, v, human) = plan_rollback(dir, &b, &db);
    assert_eq!(c, 6, "{v:#}");
    assert_eq!(v["refusal_kind"], "nothing-to-roll-back", "{v:#}");
    assert!(human.contains("no tier of"), "{human}");
    assert_eq!(db.dump(), before);

    expect_code(
        &airlock(dir, &["apply", &b, "--trust", "rm.pub", "--db", &db.conn()]),
        0,
    );
    // The application writes 1,234 orders referencing the seed.
    db.exec("INSERT INTO orders SELECT g, 1 + g % 2 FROM generate_series(1, 1234) g");
    let before = db.dump();
    let (c, v, human) = plan_rollback(dir, &b, &db);
    assert_eq!(c, 1, "a DELETE the data makes fail is NO-GO: {v:#}");
    assert_eq!(v["verdict"], "NO-GO");
    assert_eq!(v["undoes"], serde_json::json!(["seed", "orders"]), "{v:#}");
    let fails: Vec<&serde_json::Value> = v["predictions"]["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["outcome"] == "fails")
        .collect();
    assert_eq!(fails.len(), 1, "{v:#}");
    assert_eq!(fails[0]["line"], 1);
    assert_eq!(fails[0]["count"], 1234, "{v:#}");
    let why = fails[0]["reason"].as_str().unwrap();
    assert!(
        why.contains("rows of public.orders reference rows it deletes"),
        "{why}"
    );
    let destroys = v["predictions"]["destroys"].as_array().unwrap();
    let orders = destroys
        .iter()
        .find(|d| d["object"] == "public.orders")
        .unwrap_or_else(|| panic!("the DROP of orders is not counted: {v:#}"));
    assert_eq!(orders["rows"], 1234, "{orders:#}");
    assert!(
        human.contains("NO-GO")
            && human.contains("fix the data first")
            && human.contains("what the rollback destroys")
            && !human.contains("does not declare"),
        "{human}"
    );
    // The locks it takes, sized now: the DROP of orders holds ACCESS EXCLUSIVE on a
    // table of 1,234 rows until the rollback commits.
    let locks = v["locks"]["locks"].as_array().expect("locks");
    let drop = locks
        .iter()
        .find(|l| l["relation"] == "orders" && l["mode"] == "ACCESS_EXCLUSIVE")
        .unwrap_or_else(|| panic!("the DROP's lock is not listed: {v:#}"));
    assert_eq!(drop["file"], "sql/rollback.sql", "{drop:#}");
    assert_eq!(drop["line"], 2, "{drop:#}");
    assert!(drop["size"]["bytes"].as_i64().unwrap() > 0, "{drop:#}");
    assert!(
        human.contains("locks (read from the rollback's SQL") && human.contains("ACCESS EXCLUSIVE"),
        "{human}"
    );
    assert_eq!(db.dump(), before, "plan --rollback changed the database");

    // On a terminal the confirmation shows the same destruction and failure before the
    // name is asked for; a wrong name changes nothing.
    let o = airlock_tty(
        dir,
        &["rollback", &b, "--trust", "rm.pub", "--db", &db.conn()],
        "not-the-name\n",
    );
    let all = stdout(&o) + &stderr(&o);
    assert!(
        all.contains("destroys public.orders (1234 row(s))")
            && all.contains(
                "FAILS at sql/rollback.sql:1: rows of public.orders reference rows it deletes"
            ),
        "{all}"
    );
    assert_eq!(
        db.dump(),
        before,
        "a cancelled rollback changed the database"
    );

    // The rollback itself fails as predicted, rolled back whole.
    let o = airlock(
        dir,
        &["rollback", &b, "--trust", "rm.pub", "--db", &db.conn()],
    );
    assert_eq!(code(&o), 1);
    let all = stdout(&o) + &stderr(&o);
    assert!(
        all.contains("the rollback was rolled back, the database is as it was")
            && all.contains("hint: `airlock plan BUNDLE --rollback` names the rows that stop it"),
        "{all}"
    );
    assert_eq!(db.scalar("SELECT count(*)::text FROM orders"), "1234");

    // With the orders gone the rollback is GO, and still says what it drops.
    db.exec("DELETE FROM orders");
    let (c, v, _) = plan_rollback(dir, &b, &db);
    assert_eq!(c, 0, "{v:#}");
    assert_eq!(v["verdict"], "GO");
    assert!(
        v["predictions"]["destroys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["object"] == "public.plans"),
        "{v:#}"
    );
}

/// Issue 88, finding 14: `plan --rollback`'s lock notes speak of the rollback, not of
/// "the release commits", tiers or per-tier transactions (a rollback has none).
#[test]
fn the_rollback_plan_speaks_of_the_rollback_in_its_lock_notes() {
    let t = keyed_dir();
    let dir = t.path();
    let db = TestDb::new("rblocks");
    let b = mini_bundle(
        dir,
        &db.name,
        "b.tar.gz",
        "SELECT true AS ready",
        &[(
            "seed",
            "CREATE TABLE plans (id int PRIMARY KEY, name text NOT NULL);\n\
             INSERT INTO plans SELECT g, 'p' FROM generate_series(1, 500) g;\n",
            false,
        )],
        "ALTER TABLE plans ADD COLUMN retired boolean;\nDROP TABLE IF EXISTS plans;\n",
    );
    expect_code(
        &airlock(dir, &["apply", &b, "--trust", "rm.pub", "--db", &db.conn()]),
        0,
    );
    db.exec("ANALYZE plans");
    let (_, _, human) = plan_rollback(dir, &b, &db);
    let notes: Vec<&str> = human.lines().filter(|l| l.starts_with("! ")).collect();
    assert!(
        notes
            .iter()
            .any(|l| l.contains("on plans") && l.contains("held until the rollback commits")),
        "{human}"
    );
    for l in &notes {
        assert!(
            !l.contains("release") && !l.contains("tier"),
            "a rollback's lock note: {l}\n{human}"
        );
    }
}
