//! Lint and pack say early what later steps would say or refuse (issue 47): the enum
//! warning only where the new value is used, statements that reach beyond the
//! database in plan's words, the right hint for a rollback file's `DROP INDEX
//! CONCURRENTLY`, several `BEGIN;` … `COMMIT;` pairs in one file; and plan says when
//! the database's own search_path differs from the bundle's.

mod util;
use std::path::{Path, PathBuf};
use util::*;

/// A source with one tier of `tier` (sql/t.sql), a rollback of `rollback` (sql/r.sql).
fn source(root: &Path, db: &str, tier: &str, rollback: &str) -> PathBuf {
    let dir = root.join("src");
    write(&dir.join("sql/t.sql"), tier);
    write(&dir.join("sql/r.sql"), rollback);
    write(
        &dir.join("sql/p.sql"),
        "SELECT 'k'::text AS key, 'v'::text AS value\n",
    );
    write(
        &dir.join("bundle.toml"),
        &format!(
            "[bundle]\nname = \"lr\"\nversion = \"1\"\nsequence = 1\n\n[target]\ndatabase = \"{db}\"\n\n\
             [[tier]]\nname = \"t\"\nfiles = [\"sql/t.sql\"]\n\n\
             [rollback]\nfiles = [\"sql/r.sql\"]\nprobe = \"sql/p.sql\"\nexpect = {{ k = \"v\" }}\n"
        ),
    );
    dir
}

fn lint_json(dir: &Path, src: &Path) -> serde_json::Value {
    json(&airlock(dir, &["--json", "lint", src.to_str().unwrap()]))
}

#[test]
fn another_enums_definition_is_no_use_of_the_new_value() {
    let t = tempdir();
    let quiet = "CREATE TYPE e AS ENUM ('a');\nALTER TYPE e ADD VALUE 'b';\nCREATE TYPE e2 AS ENUM ('a', 'b');\nCOMMENT ON TYPE e2 IS 'b';\n";
    let src = source(t.path(), "d", quiet, "SELECT 1;\n");
    let j = lint_json(t.path(), &src);
    assert_eq!(j["warnings"], serde_json::json!([]), "{j}");
    let used = format!("{quiet}CREATE TABLE u (x e DEFAULT 'b');\n");
    let src = source(t.path(), "d", &used, "SELECT 1;\n");
    let j = lint_json(t.path(), &src);
    let w = j["warnings"].as_array().unwrap();
    assert_eq!(w.len(), 1, "{j}");
    assert!(
        w[0].as_str().unwrap().starts_with("sql/t.sql:5: uses 'b'"),
        "{j}"
    );
}

#[test]
fn lint_and_pack_name_role_statements_in_plans_words() {
    let t = keyed_dir();
    let src = source(
        t.path(),
        "d",
        "CREATE ROLE app_reader;\nALTER ROLE app_reader SET work_mem = '1MB';\n",
        "DROP ROLE app_reader;\n",
    );
    let words = "(reaches beyond this database, into the cluster, another database or the server: rehearse refuses this bundle, a clone cannot isolate it)";
    let o = airlock(t.path(), &["lint", src.to_str().unwrap()]);
    expect_code(&o, 0);
    let lint = stdout(&o);
    let o = airlock(
        t.path(),
        &[
            "pack",
            src.to_str().unwrap(),
            "--key",
            "rm.key",
            "--out",
            "b.tar.gz",
        ],
    );
    expect_code(&o, 0);
    let pack = stdout(&o);
    for out in [&lint, &pack] {
        for line in [
            "reaches beyond its database: CREATE ROLE at sql/t.sql:1",
            "reaches beyond its database: ALTER ROLE at sql/t.sql:2",
            "reaches beyond its database: DROP ROLE at sql/r.sql:1",
            words,
        ] {
            assert!(out.lines().any(|l| l == line), "{line:?} not in:\n{out}");
        }
    }
    let j = json(&airlock(
        t.path(),
        &[
            "--json",
            "pack",
            src.to_str().unwrap(),
            "--key",
            "rm.key",
            "--out",
            "c.tar.gz",
        ],
    ));
    assert_eq!(j["reaches_beyond"].as_array().map(Vec::len), Some(3), "{j}");
}

#[test]
fn drop_index_concurrently_in_a_rollback_file_says_what_a_rollback_can_do() {
    let t = tempdir();
    let src = source(
        t.path(),
        "d",
        "CREATE TABLE x (i int);\n",
        "DROP INDEX CONCURRENTLY IF EXISTS x_i;\n",
    );
    let o = airlock(t.path(), &["lint", src.to_str().unwrap()]);
    expect_code(&o, 2);
    let err = stderr(&o);
    assert!(err.contains("sql/r.sql:1: DROP INDEX CONCURRENTLY cannot run inside a transaction block; a rollback file has no tier: set `online = true` in [rollback]"), "{err}");
    assert!(!err.contains("declare its tier"), "{err}");
}

#[test]
fn several_begin_commit_pairs_in_one_file_are_warned_about() {
    let t = tempdir();
    let src = source(
        t.path(),
        "d",
        "BEGIN;\nCREATE TABLE a (i int);\nCOMMIT;\nBEGIN;\nCREATE TABLE b (i int);\nCOMMIT;\n",
        "SELECT 1;\n",
    );
    let j = lint_json(t.path(), &src);
    let w: Vec<&str> = j["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert_eq!(w.len(), 1, "{j}");
    assert!(
        w[0].starts_with("sql/t.sql:6: lines 4–6: another `BEGIN;` … `COMMIT;` in this file (the first: lines 1–3): psql commits each pair before the next runs"),
        "{j}"
    );
}

#[test]
fn plan_says_when_the_databases_own_search_path_differs_from_the_bundles() {
    let db = TestDb::new("lr_path");
    let t = keyed_dir();
    let src = source(
        t.path(),
        &db.name,
        "CREATE TABLE x (i int);\n",
        "DROP TABLE x;\n",
    );
    let b = pack(t.path(), &src, "rm.key", "b.tar.gz");
    let plan = |t: &Path| {
        let j = json(&airlock(
            t,
            &[
                "--json",
                "plan",
                b.to_str().unwrap(),
                "--trust",
                "rm.pub",
                "--db",
                &db.conn(),
            ],
        ));
        j["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == "database")
            .map(|c| c["evidence"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert!(
        !plan(t.path()).contains("search_path"),
        "{}",
        plan(t.path())
    );
    db.exec(&format!(
        "CREATE SCHEMA app; ALTER DATABASE \"{}\" SET search_path = app, public",
        db.name
    ));
    let said = plan(t.path());
    assert!(
        said.contains("the database's own search_path (ALTER DATABASE … SET search_path = app, public) differs from the bundle's (\"public\")"),
        "{said}"
    );
    assert!(
        said.contains("[target] search_path = [\"app\", \"public\"]"),
        "{said}"
    );
}
