//! `rehearse` and plan's predictions (issue 50): before anything is cloned it asks the
//! target plan's questions (a statement the data there now makes fail stops it, exit
//! 1, nothing cloned); on the clone it measures, exactly, the rows and bytes of every
//! table the release destroys or changes before and after each tier, and reports them
//! beside plan's prediction; and the statements plan could not judge (a table the
//! release creates first) are judged by what the tiers did on the clone, a failing one
//! named with file:line. The target never changes.

mod util;
use std::path::Path;
use util::*;

fn target(tag: &str) -> TestDb {
    let db = TestDb::new(tag);
    db.exec(
        "CREATE TABLE doomed (id int PRIMARY KEY, v text);\n\
         INSERT INTO doomed SELECT g, 'x' FROM generate_series(1, 300) g;\n\
         CREATE TABLE dups (x int); INSERT INTO dups VALUES (1), (1), (2);",
    );
    db
}

const ROLLBACK: &str = "DROP TABLE IF EXISTS fresh;\n\
CREATE TABLE doomed (id int PRIMARY KEY, v text);\n\
INSERT INTO doomed SELECT g, 'x' FROM generate_series(1, 300) g;\n";

/// Two tiers: the first deletes part of doomed, the second drops it and builds a table
/// of its own with a primary key over `fresh_rows`.
fn bundle(d: &Path, db: &TestDb, out: &str, fresh_rows: &str) -> String {
    let tier2 = format!(
        "DROP TABLE doomed;\nCREATE TABLE fresh (x int);\nINSERT INTO fresh VALUES {fresh_rows};\n\
         ALTER TABLE fresh ADD PRIMARY KEY (x);\n"
    );
    mini_bundle(
        d,
        &db.name,
        out,
        "SELECT true AS ready",
        &[
            ("trim", "DELETE FROM doomed WHERE id > 100;\n", false),
            ("drop", &tier2, false),
        ],
        ROLLBACK,
    )
}

fn rehearse(d: &Path, db: &TestDb, b: &str) -> (i32, serde_json::Value, String) {
    let before = db.dump();
    let o = run_json(d, "rm.pub", &db.conn(), &["rehearse", b]);
    assert_eq!(db.dump(), before, "the target changed");
    let human = stdout(&airlock(
        d,
        &["rehearse", b, "--trust", "rm.pub", "--db", &db.conn()],
    ));
    assert_eq!(db.dump(), before, "the target changed");
    (code(&o), json(&o), human)
}

fn step<'a>(v: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == name)
        .unwrap_or_else(|| panic!("no step {name}: {v:#}"))
}

#[test]
fn rehearse_measures_what_each_tier_destroys_beside_the_prediction() {
    let t = keyed_dir();
    let d = t.path();
    let db = target("reh_measure");
    let b = bundle(d, &db, "b.tar.gz", "(1), (2)");
    let (c, v, human) = rehearse(d, &db, &b);
    assert_eq!(c, 0, "{v:#}");
    assert_eq!(step(&v, "predicted failures")["verdict"], "PASS");
    let p = &v["predictions"];
    // Per tier, measured on the clone: 300 -> 100 rows in "trim", 100 -> gone in "drop".
    let m = p["measured"].as_array().expect("measured");
    let trim = &m.iter().find(|t| t["tier"] == "trim").expect("trim")["tables"][0];
    assert_eq!(
        (
            trim["table"].as_str(),
            trim["before"]["rows"].as_i64(),
            trim["after"]["rows"].as_i64()
        ),
        (Some("public.doomed"), Some(300), Some(100)),
        "{m:#?}"
    );
    let dropped = &m.iter().find(|t| t["tier"] == "drop").expect("drop")["tables"][0];
    assert_eq!(
        (
            dropped["before"]["rows"].as_i64(),
            dropped["after"]["bytes"].as_i64(),
            dropped["dropped"].as_bool()
        ),
        (Some(100), Some(0), Some(true)),
        "{m:#?}"
    );
    // Beside the prediction: the DELETE predicted 200 rows, exact.
    let compared = p["compared"].as_array().expect("compared");
    let del = compared
        .iter()
        .find(|x| x["tier"] == "trim")
        .expect("the DELETE");
    assert_eq!(
        (
            del["predicted_rows"].as_i64(),
            del["predicted_exact"].as_bool()
        ),
        (Some(200), Some(true))
    );
    assert_eq!(del["measured"]["after"]["rows"], 100);
    // The primary key on a table the release creates: plan could not tell; it passed.
    let judged = p["judged"].as_array().expect("judged");
    assert!(
        judged
            .iter()
            .any(|j| j["relation"] == "fresh" && j["on_clone"] == "passed"),
        "{judged:#?}"
    );
    assert!(
        human.contains("predicted on the target, measured on the clone")
            && human.contains("300 -> 100"),
        "{human}"
    );
    assert!(
        human.contains("plan could not tell; passed on the clone"),
        "{human}"
    );
}

#[test]
fn a_statement_plan_could_not_judge_that_fails_on_the_clone_is_named_with_its_line() {
    let t = keyed_dir();
    let d = t.path();
    let db = target("reh_judged");
    let b = bundle(d, &db, "b.tar.gz", "(1), (1)");
    let (c, v, human) = rehearse(d, &db, &b);
    assert_eq!(c, 1, "{v:#}");
    let judged = v["predictions"]["judged"].as_array().expect("judged");
    let j = judged
        .iter()
        .find(|j| j["relation"] == "fresh")
        .expect("the primary key");
    assert_eq!(
        (
            j["on_clone"].as_str(),
            j["file"].as_str(),
            j["line"].as_i64()
        ),
        (Some("failed"), Some("sql/tier2.sql"), Some(4)),
        "{j:#}"
    );
    assert!(human.contains("sql/tier2.sql:4 ALTER TABLE … ADD PRIMARY KEY on fresh: plan could not tell; FAILED on the clone"), "{human}");
}

#[test]
fn a_failure_the_data_there_now_makes_certain_stops_the_rehearsal_before_the_clone() {
    let t = keyed_dir();
    let d = t.path();
    let db = target("reh_stop");
    let b = mini_bundle(
        d,
        &db.name,
        "b.tar.gz",
        "SELECT true AS ready",
        &[("one", "ALTER TABLE dups ADD PRIMARY KEY (x);\n", false)],
        "ALTER TABLE dups DROP CONSTRAINT dups_pkey;\n",
    );
    let (c, v, human) = rehearse(d, &db, &b);
    assert_eq!(c, 1, "{v:#}");
    let s = step(&v, "predicted failures");
    assert_eq!(s["verdict"], "FAIL", "{s:#}");
    assert!(
        s["detail"].as_str().unwrap().contains("dups: 2 rows")
            && s["detail"].as_str().unwrap().contains("nothing was cloned"),
        "{s:#}"
    );
    assert_eq!(step(&v, "clone the target")["verdict"], "SKIPPED");
    assert!(v["clone_strategy"].is_null(), "{v:#}");
    assert!(!TestDb::exists(v["clone"].as_str().unwrap()));
    assert!(human.contains("predicted failures"), "{human}");
}
