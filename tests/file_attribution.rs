//! A failing statement in file k of n names file k (and the line where it can be told),
//! whatever way the files travel to the server: one message each, or several small
//! files of a run in one message. The message, the exit code and the `--json` error are
//! the same, and nothing of the run stays.

mod util;
use std::path::{Path, PathBuf};
use util::*;

/// A source for `db` with tiers `(name, [(file, sql)])`, each file `sql/FILE`.
fn source(root: &Path, db: &str, tiers: &[(&str, Vec<(String, String)>)]) -> PathBuf {
    let dir = root.join("src");
    let mut toml = format!(
        "[bundle]\nname = \"files\"\nversion = \"1\"\nsequence = 1\n\n[target]\ndatabase = \"{db}\"\n"
    );
    for (name, files) in tiers {
        let mut names = vec![];
        for (f, sql) in files {
            write(&dir.join("sql").join(f), sql);
            names.push(format!("\"sql/{f}\""));
        }
        toml.push_str(&format!(
            "\n[[tier]]\nname = \"{name}\"\nfiles = [{}]\n",
            names.join(", ")
        ));
    }
    write(&dir.join("bundle.toml"), &toml);
    dir
}

/// Five small files, each creating a table, with file `k` (1-based) replaced by `bad`.
fn five_with(k: usize, bad: &str) -> Vec<(String, String)> {
    (1..=5)
        .map(|i| {
            let sql = if i == k {
                bad.to_string()
            } else {
                format!("-- file {i}\nCREATE TABLE public.f{i} (i int);\n")
            };
            (format!("f{i}.sql"), sql)
        })
        .collect()
}

/// Apply `tiers` to a fresh database: the run fails with `want` (the whole first
/// line of the error) and exit code 1, and the database is as before (no table, no
/// ledger row). Checked in human and in `--json` output.
fn fails_naming(tag: &str, tiers: &[(&str, Vec<(String, String)>)], want: &str) {
    let db = TestDb::new(tag);
    let t = keyed_dir();
    let src = source(t.path(), &db.name, tiers);
    let b = pack(t.path(), &src, "rm.key", "b.tar.gz");
    let before = db.dump();
    let args = [
        "apply",
        b.to_str().unwrap(),
        "--trust",
        "rm.pub",
        "--db",
        &db.conn(),
    ];
    let o = airlock(t.path(), &args);
    expect_code(&o, 1);
    let err = stderr(&o);
    assert!(
        err.lines().any(|l| l == format!("error: {want}")),
        "want the line `error: {want}`, got:\n{err}"
    );
    assert_eq!(db.dump(), before, "the database changed");
    let o = airlock(t.path(), &[&["--json"], &args[..]].concat());
    expect_code(&o, 1);
    let j = json(&o);
    assert_eq!(j["error"].as_str(), Some(want), "{j}");
    assert_eq!(j["kind"].as_str(), Some("sql"), "{j}");
    assert_eq!(db.dump(), before, "the database changed");
}

const NOTHING: &str = "; the whole transaction was rolled back, nothing was changed";

#[test]
fn a_failure_in_the_first_file_names_it_and_its_line() {
    fails_naming(
        "attr_first",
        &[("all", five_with(1, "-- fails\n\nSELECT 1/0;\n"))],
        &format!(
            "tier 1/1 \"all\", file sql/f1.sql:3:1: division by zero (SQLSTATE 22012){NOTHING}"
        ),
    );
}

#[test]
fn a_failure_in_a_middle_file_of_several_statements_names_the_file() {
    // A runtime error without a position, in a file of several statements: the
    // statements the server completed before it tell which one failed.
    fails_naming(
        "attr_middle",
        &[(
            "all",
            five_with(
                3,
                "CREATE TABLE public.m (i int);\nINSERT INTO public.m VALUES (1);\nSELECT 1/(i - 1) FROM public.m;\n",
            ),
        )],
        &format!("tier 1/1 \"all\", file sql/f3.sql:3:1: division by zero (SQLSTATE 22012){NOTHING}"),
    );
}

#[test]
fn a_failure_with_a_position_in_the_last_file_names_its_line() {
    fails_naming(
        "attr_last",
        &[(
            "all",
            five_with(
                5,
                "CREATE TABLE public.l (i int);\n\nINSERT INTO public.l VALUES (1);\nSELECT nosuch\n  FROM public.l;\n",
            ),
        )],
        &format!(
            "tier 1/1 \"all\", file sql/f5.sql:4:8: column \"nosuch\" does not exist (SQLSTATE 42703){NOTHING}"
        ),
    );
}

#[test]
fn a_failure_in_the_first_statement_of_a_file_of_several_names_its_line() {
    fails_naming(
        "attr_several",
        &[(
            "all",
            five_with(
                2,
                "INSERT INTO public.nosuch VALUES (1);\nCREATE TABLE public.s (i int);\n",
            ),
        )],
        &format!("tier 1/1 \"all\", file sql/f2.sql:1:13: relation \"public.nosuch\" does not exist (SQLSTATE 42P01){NOTHING}"),
    );
}

#[test]
fn a_failure_in_a_later_tier_names_that_tier_and_file() {
    let first: Vec<(String, String)> = (1..=3)
        .map(|i| {
            (
                format!("a{i}.sql"),
                format!("CREATE TABLE public.a{i} (i int);\n"),
            )
        })
        .collect();
    let mut second = five_with(4, "ALTER TABLE public.a9 ADD COLUMN j int;\n");
    second.truncate(4);
    fails_naming(
        "attr_tier",
        &[("one", first), ("two", second)],
        &format!(
            "tier 2/2 \"two\", file sql/f4.sql:1:1: relation \"public.a9\" does not exist (SQLSTATE 42P01){NOTHING}"
        ),
    );
}

#[test]
fn a_failure_after_a_file_that_changed_a_setting_is_still_named() {
    // File 2 moves search_path; file 3 relies on the prelude having put it back.
    let mut files = five_with(3, "CREATE TABLE f3 (i int);\nSELECT 1/0;\n");
    files[1].1 = "SET LOCAL search_path TO pg_catalog;\nCREATE TABLE public.f2 (i int);\n".into();
    fails_naming(
        "attr_setting",
        &[("all", files)],
        &format!(
            "tier 1/1 \"all\", file sql/f3.sql:2:1: division by zero (SQLSTATE 22012){NOTHING}"
        ),
    );
}

/// Small files of a tier travel in one string, which the server lexes whole when it
/// arrives: a file that turns `standard_conforming_strings` off where lint cannot see
/// it changes nothing of how the next file was lexed (as lint read it: the whole
/// string was lexed on arrival, under the settings its first file's check proves), and
/// each file's trailer puts the setting back before the next file runs. Read
/// with the setting off, file 2's string would hold a COMMIT; it does not, the last
/// statement fails, and nothing stays.
#[test]
fn small_files_in_one_string_are_lexed_as_lint_read_them() {
    let files = vec![
        (
            "a.sql".to_string(),
            "CREATE TABLE public.t (x text);\n\
             DO $$ BEGIN EXECUTE 'SET standard_' || 'conforming_strings = off'; END $$;\n"
                .to_string(),
        ),
        (
            "b.sql".to_string(),
            "SELECT 'a\\', '; COMMIT; SELECT 1 --';\nSELECT 1/0;\n".to_string(),
        ),
    ];
    fails_naming(
        "attr_lexed",
        &[("all", files)],
        &format!(
            "tier 1/1 \"all\", file sql/b.sql:2:1: division by zero (SQLSTATE 22012){NOTHING}"
        ),
    );
}

#[test]
fn files_of_a_run_all_apply_with_their_notices_in_order() {
    let db = TestDb::new("attr_ok");
    let t = keyed_dir();
    let files: Vec<(String, String)> = (1..=6)
        .map(|i| {
            (
                format!("n{i}.sql"),
                format!(
                    "CREATE TABLE n{i} (i int);\nDO $$ BEGIN RAISE NOTICE 'file {i}'; END $$;\n"
                ),
            )
        })
        .collect();
    // Each file runs behind the prelude: an earlier file's search_path is gone.
    let mut files = files;
    files[2].1 = format!(
        "CREATE SCHEMA other;\nSET LOCAL search_path TO other;\n{}",
        files[2].1
    );
    let src = source(t.path(), &db.name, &[("all", files)]);
    let b = pack(t.path(), &src, "rm.key", "b.tar.gz");
    let o = airlock(
        t.path(),
        &[
            "--json",
            "apply",
            b.to_str().unwrap(),
            "--trust",
            "rm.pub",
            "--db",
            &db.conn(),
        ],
    );
    expect_code(&o, 0);
    let j = json(&o);
    let said: Vec<&str> = j["notices"]
        .as_array()
        .expect("notices")
        .iter()
        .map(|n| n["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        said,
        ["file 1", "file 2", "file 3", "file 4", "file 5", "file 6"]
    );
    // n3 went to `other` (its own search_path); the others to public.
    assert_eq!(
        db.scalar("SELECT string_agg(relnamespace::regnamespace || '.' || relname, ' ' ORDER BY relname) FROM pg_class WHERE relname ~ '^n[0-9]$'"),
        "public.n1 public.n2 other.n3 public.n4 public.n5 public.n6"
    );
}

#[test]
fn a_failure_in_a_middle_rollback_file_names_it_and_changes_nothing() {
    let db = TestDb::new("attr_rollback");
    let t = keyed_dir();
    let src = source(t.path(), &db.name, &[("all", five_with(0, ""))]);
    // Three rollback files; the second (one statement, on its line 3) fails.
    let mut toml = std::fs::read_to_string(src.join("bundle.toml")).unwrap();
    toml.push_str("\n[rollback]\nfiles = [\"sql/r1.sql\", \"sql/r2.sql\", \"sql/r3.sql\"]\nprobe = \"sql/rp.sql\"\nexpect = { n = \"0\" }\n");
    write(
        &src.join("sql/rp.sql"),
        "SELECT 'n'::text AS key, '0'::text AS value",
    );
    write(&src.join("bundle.toml"), &toml);
    write(&src.join("sql/r1.sql"), "DROP TABLE public.f1;\n");
    write(&src.join("sql/r2.sql"), "-- r2\n\nSELECT 1/0;\n");
    write(&src.join("sql/r3.sql"), "DROP TABLE public.f3;\n");
    let b = pack(t.path(), &src, "rm.key", "b.tar.gz");
    let run = |cmd: &str| {
        airlock(
            t.path(),
            &[
                cmd,
                b.to_str().unwrap(),
                "--trust",
                "rm.pub",
                "--db",
                &db.conn(),
            ],
        )
    };
    expect_code(&run("apply"), 0);
    let before = db.dump();
    let o = run("rollback");
    expect_code(&o, 1);
    let want = "error: rollback file sql/r2.sql:3:1: division by zero (SQLSTATE 22012); the rollback was rolled back, the database is as it was";
    assert!(
        stderr(&o).lines().any(|l| l == want),
        "want `{want}`, got:\n{}",
        stderr(&o)
    );
    assert_eq!(db.dump(), before, "the database changed");
    let conn = db.conn();
    let args = [
        "--json",
        "rollback",
        b.to_str().unwrap(),
        "--trust",
        "rm.pub",
        "--db",
        &conn,
    ];
    let o = airlock(t.path(), &args);
    expect_code(&o, 1);
    let at = &json(&o)["at"];
    assert_eq!(at["file"], "sql/r2.sql", "{at}");
    assert_eq!(
        (at["line"].as_u64(), at["column"].as_u64()),
        (Some(3), Some(1)),
        "{at}"
    );
    assert_eq!(at["statement"], "SELECT 1/0;", "{at}");
}

/// The report's case: three statements, the third (on line 5, after a comment and a
/// blank line) fails with no server position. The error names `FILE:LINE:COLUMN` and
/// the statement's first line, in human output and in `--json` (`at`), for apply,
/// rehearse and rollback alike.
#[test]
fn the_third_statement_failing_without_a_position_is_named_with_its_line_and_column() {
    let db = TestDb::new("attr_third");
    let t = keyed_dir();
    let sql = "CREATE TABLE public.t1 (i int);\nCREATE TABLE public.t2 (i int);\n-- the third\n\n  ALTER TABLE public.missing\n    ADD COLUMN j int;\n";
    let src = source(
        t.path(),
        &db.name,
        &[("t", vec![("t.sql".into(), sql.into())])],
    );
    let b = pack(t.path(), &src, "rm.key", "b.tar.gz");
    let before = db.dump();
    for cmd in ["apply", "rehearse"] {
        let args = [
            cmd,
            b.to_str().unwrap(),
            "--trust",
            "rm.pub",
            "--db",
            &db.conn(),
        ];
        let o = airlock(t.path(), &args);
        expect_code(&o, 1);
        // apply's error is on stderr; rehearse's report (its FAIL step) on stdout.
        let err = format!("{}{}", stdout(&o), stderr(&o));
        assert!(
            err.contains("file sql/t.sql:5:3: relation \"public.missing\" does not exist"),
            "{cmd}: {err}"
        );
        assert!(
            err.lines()
                .any(|l| l == "statement: sql/t.sql:5:3: ALTER TABLE public.missing"),
            "{cmd}: {err}"
        );
        let o = airlock(t.path(), &[&["--json"], &args[..]].concat());
        expect_code(&o, 1);
        let j = json(&o);
        let at = &j["at"];
        assert_eq!(at["file"], "sql/t.sql", "{cmd}: {j}");
        assert_eq!(
            (at["line"].as_u64(), at["column"].as_u64()),
            (Some(5), Some(3)),
            "{j}"
        );
        assert_eq!(at["statement_line"].as_u64(), Some(5), "{j}");
        assert_eq!(at["statement"], "ALTER TABLE public.missing", "{j}");
        assert_eq!(db.dump(), before, "{cmd} changed the database");
    }
}

/// With a server position, the error's place is the position, and the statement's
/// own start comes with it.
#[test]
fn a_position_inside_a_later_statement_gives_both_places() {
    let db = TestDb::new("attr_pos");
    let t = keyed_dir();
    let sql = "CREATE TABLE public.p (i int);\nSELECT i,\n       nosuch FROM public.p;\n";
    let src = source(
        t.path(),
        &db.name,
        &[("t", vec![("p.sql".into(), sql.into())])],
    );
    let b = pack(t.path(), &src, "rm.key", "b.tar.gz");
    let args = [
        "--json",
        "apply",
        b.to_str().unwrap(),
        "--trust",
        "rm.pub",
        "--db",
        &db.conn(),
    ];
    let o = airlock(t.path(), &args);
    expect_code(&o, 1);
    let j = json(&o);
    let at = &j["at"];
    assert_eq!(
        (at["line"].as_u64(), at["column"].as_u64()),
        (Some(3), Some(8)),
        "{j}"
    );
    assert_eq!(
        (
            at["statement_line"].as_u64(),
            at["statement_column"].as_u64()
        ),
        (Some(2), Some(1)),
        "{j}"
    );
    assert_eq!(at["statement"], "SELECT i,", "{j}");
    assert!(
        j["error"]
            .as_str()
            .unwrap()
            .contains("file sql/p.sql:3:8: column"),
        "{j}"
    );
}
