//! Smaller findings of the new-user walks (issue 75, part 5), each through the binary.

mod util;
use util::*;

/// `plan` printed an empty "grants the gate role … needs" header for a bundle whose
/// gates read nothing that needs a grant.
#[test]
fn plan_prints_no_empty_gate_grants_header() {
    let t = keyed_dir();
    let dir = t.path();
    let db = TestDb::new("nogrants");
    let b = mini_bundle(
        dir,
        &db.name,
        "b.tar.gz",
        "SELECT true AS ready",
        &[("one", "CREATE TABLE t (i int);\n", false)],
        "DROP TABLE IF EXISTS t;\n",
    );
    let o = airlock(dir, &["plan", &b, "--trust", "rm.pub", "--db", &db.conn()]);
    expect_code(&o, 0);
    let out = stdout(&o);
    assert!(!out.contains("grants the gate role"), "{out}");
}

/// `status` said "from --db or AIRLOCK_DB" when the database came from `airlock.toml`.
#[test]
fn status_says_the_database_came_from_the_project_file() {
    let t = tempdir();
    let db = TestDb::new("dbfrom");
    std::fs::write(
        t.path().join("airlock.toml"),
        format!("db = {:?}\n", db.conn()),
    )
    .unwrap();
    let o = airlock(t.path(), &["--json", "status"]);
    expect_code(&o, 0);
    let v = json(&o);
    let from = v["database_from"].as_str().unwrap();
    assert!(from.starts_with("db in airlock.toml ("), "{v:#}");
    let o = airlock(t.path(), &["status"]);
    expect_code(&o, 0);
    assert!(
        stdout(&o).contains("from db in airlock.toml ("),
        "{}",
        stdout(&o)
    );
    // A flag still wins, and says so.
    let o = airlock(t.path(), &["--json", "status", "--db", &db.conn()]);
    expect_code(&o, 0);
    assert_eq!(json(&o)["database_from"], "--db or AIRLOCK_DB");
}
