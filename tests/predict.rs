//! `plan` predicts (issue 50): the tier statements the data there now would make fail
//! are NO-GO with apply's exit for a failing statement (1), naming the statement, the
//! table, the count and the first keys; clean data is GO; what the release destroys is
//! counted; a table the release creates is not asked about; a question cut short is a
//! warning, never a silent GO. Plan changes nothing.

mod util;
use util::*;

/// `plan --json` of a one-tier bundle running `sql` on `db`.
fn plan(db: &TestDb, sql: &str, extra: &[&str]) -> (i32, serde_json::Value, String) {
    let t = keyed_dir();
    let d = t.path();
    let b = one_tier_bundle(d, db, sql);
    let mut args = vec!["plan", b.as_str()];
    args.extend(extra);
    let before = db.dump_without_ledger();
    let o = run_json(d, "rm.pub", &db.conn(), &args);
    assert_eq!(
        db.dump_without_ledger(),
        before,
        "plan changed the database"
    );
    let human = airlock(
        d,
        &[&args[..], &["--trust", "rm.pub", "--db", &db.conn()]].concat(),
    );
    (code(&o), json(&o), stdout(&human))
}

fn row(v: &serde_json::Value) -> &serde_json::Value {
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "predicted-failures")
        .unwrap_or_else(|| panic!("no predicted-failures row: {v:#}"))
}

fn prediction(v: &serde_json::Value, i: usize) -> &serde_json::Value {
    &v["predictions"]["predictions"][i]
}

/// NO-GO, exit 1, naming the statement and the count.
fn assert_fails(code: i32, v: &serde_json::Value, count: i64) {
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(v["verdict"], "NO-GO");
    let r = row(v);
    assert_eq!(r["verdict"], "FAIL", "{r:#}");
    assert_eq!(r["exit_code"], 1);
    let p = prediction(v, 0);
    assert_eq!(p["outcome"], "fails", "{p:#}");
    assert_eq!(p["count"], count, "{p:#}");
}

fn assert_go(code: i32, v: &serde_json::Value) {
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["verdict"], "GO");
    assert_eq!(row(v)["verdict"], "OK", "{:#}", row(v));
}

#[test]
fn a_primary_key_or_unique_key_over_duplicates_is_no_go_and_clean_keys_are_go() {
    let db = TestDb::new("pred_pk");
    db.exec(
        "CREATE TABLE dups (x int, y text); INSERT INTO dups VALUES (1,'a'),(1,'b'),(1,'c'),(2,'d'),(3,NULL),(3,NULL);\n\
         CREATE TABLE clean (x int, y text); INSERT INTO clean VALUES (1,NULL),(2,NULL),(NULL,'z');",
    );
    let (c, v, human) = plan(&db, "ALTER TABLE dups ADD PRIMARY KEY (x);\n", &[]);
    assert_fails(c, &v, 5);
    assert_eq!(prediction(&v, 0)["keys"][0], "1 ×3");
    assert!(
        human.contains("NO-GO") && human.contains("dups") && human.contains("FAILS"),
        "{human}"
    );
    let ev = row(&v)["evidence"].as_str().unwrap().to_string();
    assert!(
        ev.contains("sql/tier1.sql:1 ") && ev.contains("dups: 5 rows"),
        "{ev}"
    );

    let (c, v, _) = plan(&db, "CREATE UNIQUE INDEX u ON dups (x, y);\n", &[]);
    assert_eq!(c, 0, "(3,NULL) twice does not collide under UNIQUE: {v:#}");
    let (c, v, _) = plan(
        &db,
        "\n\nALTER TABLE dups ADD CONSTRAINT u UNIQUE (y, x), ADD UNIQUE (x);\n",
        &[],
    );
    assert_eq!(c, 1, "{v:#}");
    assert_eq!(prediction(&v, 0)["outcome"], "passes");
    assert_eq!(prediction(&v, 1)["count"], 5, "x = 1 three times, 3 twice");
    assert_eq!(prediction(&v, 1)["line"], 3);

    // NULLs do not collide under UNIQUE, but fail a primary key.
    let (c, v, _) = plan(&db, "CREATE UNIQUE INDEX u ON clean (x);\n", &[]);
    assert_go(c, &v);
    let (c, v, _) = plan(&db, "ALTER TABLE clean ADD PRIMARY KEY (x);\n", &[]);
    assert_fails(c, &v, 1);
}

#[test]
fn set_not_null_and_a_not_null_column_without_default_are_no_go_on_nulls_and_rows() {
    let db = TestDb::new("pred_nn");
    db.exec(
        "CREATE TABLE nn (c int); INSERT INTO nn VALUES (1), (NULL), (NULL);\n\
         CREATE TABLE full_ (c int); INSERT INTO full_ VALUES (1);\n\
         CREATE TABLE empty (c int);",
    );
    let (c, v, _) = plan(&db, "ALTER TABLE nn ALTER COLUMN c SET NOT NULL;\n", &[]);
    assert_fails(c, &v, 2);
    let (c, v, _) = plan(&db, "ALTER TABLE full_ ALTER COLUMN c SET NOT NULL;\n", &[]);
    assert_go(c, &v);
    let (c, v, _) = plan(&db, "ALTER TABLE full_ ADD COLUMN d int NOT NULL;\n", &[]);
    assert_fails(c, &v, 1);
    let (c, v, _) = plan(
        &db,
        "ALTER TABLE empty ADD COLUMN d int NOT NULL;\nALTER TABLE full_ ADD COLUMN e int NOT NULL DEFAULT 0;\n",
        &[],
    );
    assert_go(c, &v);
    // Backfilled first by the release: the data there now does not decide it.
    let (c, v, _) = plan(
        &db,
        "UPDATE nn SET c = 0 WHERE c IS NULL;\nALTER TABLE nn ALTER COLUMN c SET NOT NULL;\n",
        &[],
    );
    assert_eq!(c, 0, "{v:#}");
    assert_eq!(prediction(&v, 0)["outcome"], "not-predictable");
}

#[test]
fn a_check_or_foreign_key_without_not_valid_is_no_go_on_violating_rows() {
    let db = TestDb::new("pred_ck");
    db.exec(
        "CREATE TABLE p (id int PRIMARY KEY); INSERT INTO p VALUES (1), (2);\n\
         CREATE TABLE ch (x int, pid int); INSERT INTO ch VALUES (1, 1), (-1, 7), (-2, NULL), (NULL, 2);",
    );
    let (c, v, _) = plan(
        &db,
        "ALTER TABLE ch ADD CONSTRAINT pos CHECK (x > 0);\n",
        &[],
    );
    assert_fails(c, &v, 2);
    let (c, v, _) = plan(
        &db,
        "ALTER TABLE ch ADD CONSTRAINT pos CHECK (x > -5);\n",
        &[],
    );
    assert_go(c, &v);
    let (c, v, _) = plan(
        &db,
        "ALTER TABLE ch ADD CONSTRAINT pos CHECK (x > 0) NOT VALID;\n",
        &[],
    );
    assert_go(c, &v);
    let (c, v, _) = plan(
        &db,
        "ALTER TABLE ch ADD CONSTRAINT odd CHECK (x > (SELECT 0));\n",
        &[],
    );
    assert_eq!(c, 0, "{v:#}");
    assert_eq!(prediction(&v, 0)["outcome"], "not-predictable");

    let (c, v, _) = plan(
        &db,
        "ALTER TABLE ch ADD FOREIGN KEY (pid) REFERENCES p;\n",
        &[],
    );
    assert_fails(c, &v, 1);
    assert_eq!(prediction(&v, 0)["keys"][0], "7");
    db.exec("INSERT INTO p VALUES (7)");
    let (c, v, _) = plan(
        &db,
        "ALTER TABLE ch ADD FOREIGN KEY (pid) REFERENCES p (id);\n",
        &[],
    );
    assert_go(c, &v);
}

#[test]
fn what_the_release_destroys_is_counted_and_a_table_it_creates_is_not_asked_about() {
    let db = TestDb::new("pred_drop");
    db.exec(
        "CREATE TABLE doomed (i int); INSERT INTO doomed SELECT generate_series(1, 1234);\n\
         CREATE TABLE gone (i int, j int); INSERT INTO gone VALUES (1, 1), (2, 2);",
    );
    let sql = "CREATE TABLE fresh (x int);\n\
               ALTER TABLE fresh ADD PRIMARY KEY (x);\n\
               DROP TABLE doomed;\n\
               ALTER TABLE gone DROP COLUMN j;\n\
               DELETE FROM gone;\n\
               TRUNCATE fresh;\n";
    let (c, v, human) = plan(&db, sql, &[]);
    assert_eq!(c, 0, "{v:#}");
    let p = prediction(&v, 0);
    assert_eq!(p["outcome"], "not-predictable");
    assert!(
        p["reason"]
            .as_str()
            .unwrap()
            .contains("the release creates it"),
        "{p:#}"
    );
    let d = v["predictions"]["destroys"].as_array().expect("destroys");
    assert_eq!(d[0]["relation"], "doomed");
    assert_eq!(d[0]["rows"], 1234);
    assert_eq!(d[0]["exact"], true);
    assert!(d[0]["bytes"].as_i64().unwrap() > 0);
    assert_eq!(d[1]["rows"], 2, "{:#}", d[1]);
    assert_eq!(d[2]["statement"], "DELETE without WHERE");
    assert!(d[3]["rows"].is_null() && d[3]["note"].as_str().unwrap().contains("creates"));
    assert!(
        human.contains("what the release destroys") && human.contains("1234 (exact)"),
        "{human}"
    );
}

#[test]
fn a_question_cut_short_is_a_warning_never_a_silent_go() {
    let db = TestDb::new("pred_slow");
    // A table big enough that grouping it takes far longer than 1ms.
    db.exec(
        "CREATE TABLE big (x int); INSERT INTO big SELECT g % 400000 FROM generate_series(1, 800000) g;",
    );
    let (c, v, human) = plan(
        &db,
        "ALTER TABLE big ADD PRIMARY KEY (x);\n",
        &["--predict-timeout", "1ms"],
    );
    assert_eq!(c, 0, "{v:#}");
    let r = row(&v);
    assert_eq!(r["verdict"], "WARN", "{r:#}");
    assert!(
        r["evidence"]
            .as_str()
            .unwrap()
            .contains("cannot tell in time"),
        "{r:#}"
    );
    assert_eq!(prediction(&v, 0)["outcome"], "timed-out");
    assert!(human.contains("cannot tell in time"), "{human}");
}

#[test]
fn a_hostile_identifier_stays_a_name() {
    let db = TestDb::new("pred_hostile");
    db.exec(
        "CREATE TABLE keep (i int);\n\
         CREATE TABLE \"a\"\"; DROP TABLE keep; --\" (\"c\"\") OR 1=1 --\" int);\n\
         INSERT INTO \"a\"\"; DROP TABLE keep; --\" VALUES (5), (5);",
    );
    let (c, v, _) = plan(
        &db,
        "ALTER TABLE \"a\"\"; DROP TABLE keep; --\" ADD UNIQUE (\"c\"\") OR 1=1 --\");\n",
        &[],
    );
    assert_fails(c, &v, 2);
    assert_eq!(
        db.scalar("SELECT (to_regclass('keep') IS NOT NULL)::text"),
        "true"
    );
}

/// Issue 69 item 6: a widening that keeps every value's text (`varchar(50)` to
/// `varchar(100)`, to `text`) leaves the rows deciding a later UNIQUE or NOT NULL, so
/// plan does not say GO over the duplicates and NULLs apply then fails on.
#[test]
fn a_text_keeping_widening_earlier_leaves_a_later_unique_or_not_null_predicted() {
    let db = TestDb::new("pred_widen");
    db.exec(
        "CREATE TABLE users (id int PRIMARY KEY, email varchar(50), nick varchar(20));\n\
         INSERT INTO users VALUES (1,'a@x','n'),(2,'a@x',NULL),(3,'b@x','m');",
    );
    let (c, v, _) = plan(
        &db,
        "ALTER TABLE users ALTER COLUMN email TYPE varchar(100);\nCREATE UNIQUE INDEX users_email ON users (email);\n",
        &[],
    );
    assert_eq!(c, 1, "{v:#}");
    let p = &v["predictions"]["predictions"][1];
    assert_eq!(p["outcome"], "fails", "{p:#}");
    assert_eq!(p["count"], 2, "{p:#}");
    let (c, v, _) = plan(
        &db,
        "ALTER TABLE users ALTER COLUMN nick TYPE text;\nALTER TABLE users ALTER COLUMN nick SET NOT NULL;\n",
        &[],
    );
    assert_eq!(c, 1, "{v:#}");
    assert_eq!(v["predictions"]["predictions"][1]["count"], 1, "{v:#}");
    // A change that may alter the text (to char(60): padded) still leaves it to rehearse.
    let (c, v, _) = plan(
        &db,
        "ALTER TABLE users ALTER COLUMN email TYPE char(60);\nCREATE UNIQUE INDEX users_email ON users (email);\n",
        &[],
    );
    assert_eq!(c, 0, "{v:#}");
    assert_eq!(
        v["predictions"]["predictions"][1]["outcome"], "not-predictable",
        "{v:#}"
    );
}

/// Issue 69 item 6: a partial unique index (the soft-delete pattern) is predicted on
/// the rows its WHERE keeps.
#[test]
fn a_partial_unique_index_is_predicted_on_the_rows_its_where_keeps() {
    let db = TestDb::new("pred_partial");
    db.exec(
        "CREATE TABLE accounts (id int PRIMARY KEY, email text, deleted_at timestamptz);\n\
         INSERT INTO accounts VALUES (1,'a',NULL),(2,'a',now()),(3,'b',NULL),(4,'b',NULL),(5,'b',now());",
    );
    let (c, v, _) = plan(
        &db,
        "CREATE UNIQUE INDEX accounts_live_email ON accounts (email) WHERE deleted_at IS NULL;\n",
        &[],
    );
    assert_fails(c, &v, 2);
    assert_eq!(prediction(&v, 0)["keys"][0], "b ×2", "{v:#}");
    db.exec("UPDATE accounts SET deleted_at = now() WHERE id = 4");
    let (c, v, _) = plan(
        &db,
        "CREATE UNIQUE INDEX accounts_live_email ON accounts (email) WHERE deleted_at IS NULL;\n",
        &[],
    );
    assert_go(c, &v);
    assert_eq!(prediction(&v, 0)["outcome"], "passes", "{v:#}");
}
