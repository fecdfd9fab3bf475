//! `fingerprint --data` (and `--data-strict`) cover what no table holds: the bytes of
//! each large object and each sequence's value (`last_value`, `is_called`). Changing
//! either changes the fingerprint and `--diff` names it; putting it back gives the same
//! fingerprint again (issue 47).

mod util;
use util::*;

/// `fingerprint --json` at `level` (`""`: the schema level).
fn fp(db: &TestDb, level: &str) -> serde_json::Value {
    let t = tempdir();
    let conn = db.conn();
    let mut args = vec!["--json", "fingerprint", "--db", &conn];
    args.extend([level].into_iter().filter(|l| !l.is_empty()));
    let o = airlock(t.path(), &args);
    expect_code(&o, 0);
    json(&o)
}

fn print(db: &TestDb, level: &str) -> String {
    fp(db, level)["fingerprint"].as_str().unwrap().to_string()
}

#[test]
fn a_large_objects_bytes_change_the_data_fingerprint() {
    let db = TestDb::new("fpv_lo");
    db.exec("SELECT lo_from_bytea(424242, 'hello'::bytea)");
    for level in ["--data", "--data-strict"] {
        let before = print(&db, level);
        db.exec("SELECT lo_put(424242, 0, 'j'::bytea)");
        let changed = fp(&db, level);
        assert_ne!(changed["fingerprint"].as_str().unwrap(), before, "{level}");
        let names: Vec<&str> = changed["parts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["kind"] == "data")
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"large object 424242"), "{level}: {names:?}");
        db.exec("SELECT lo_put(424242, 0, 'h'::bytea)");
        assert_eq!(print(&db, level), before, "{level}: the same bytes again");
    }
    // The schema fingerprint leaves data alone.
    let schema = print(&db, "");
    db.exec("SELECT lo_put(424242, 0, 'x'::bytea)");
    assert_eq!(print(&db, ""), schema);
}

#[test]
fn a_sequences_value_changes_the_data_fingerprint() {
    let db = TestDb::new("fpv_seq");
    db.exec("CREATE SEQUENCE public.s; SELECT nextval('public.s')");
    for level in ["--data", "--data-strict"] {
        let before = print(&db, level);
        db.exec("SELECT setval('public.s', 40)");
        assert_ne!(print(&db, level), before, "{level}: setval");
        db.exec("SELECT setval('public.s', 1, true)");
        assert_eq!(print(&db, level), before, "{level}: the same value again");
        db.exec("SELECT setval('public.s', 1, false)");
        assert_ne!(print(&db, level), before, "{level}: is_called differs");
        db.exec("SELECT setval('public.s', 1, true)");
    }
}

#[test]
fn fingerprint_help_says_what_data_covers() {
    let t = tempdir();
    let o = airlock(t.path(), &["fingerprint", "--help"]);
    let help = stdout(&o);
    assert!(help.contains("large objects"), "{help}");
    assert!(help.contains("sequence values"), "{help}");
}
