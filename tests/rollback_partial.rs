//! Rollback after a partial apply (`apply --through`) undoes only what ran: each rollback
//! file may name the tier it undoes (`[rollback.undoes]`), and `rollback` runs only the
//! files of the tiers the ledger says ran (in the order of `files`), then its probe. A
//! rollback file named nowhere undoes the whole bundle and always runs (as before).

mod util;
use std::path::{Path, PathBuf};
use util::*;

/// Three tiers a, b, c, each creating its table; rollback files dropping them, last
/// first; `undoes` (a TOML table body) says which undoes which.
fn source(root: &Path, db: &str, undoes: &str) -> PathBuf {
    let dir = root.join("src");
    let mut toml = format!(
        "[bundle]\nname = \"partial\"\nversion = \"1\"\nsequence = 1\n\n[target]\ndatabase = \"{db}\"\n"
    );
    for t in ["a", "b", "c"] {
        write(
            &dir.join(format!("sql/{t}.sql")),
            &format!("CREATE TABLE public.{t} (i int);\n"),
        );
        write(
            &dir.join(format!("sql/undo_{t}.sql")),
            &format!("DROP TABLE public.{t};\n"),
        );
        toml.push_str(&format!(
            "\n[[tier]]\nname = \"{t}\"\nfiles = [\"sql/{t}.sql\"]\n"
        ));
    }
    write(
        &dir.join("sql/probe.sql"),
        "SELECT 'tables'::text AS key, count(*)::text AS value FROM pg_catalog.pg_tables WHERE schemaname = 'public' AND tablename IN ('a', 'b', 'c')\n",
    );
    toml.push_str("\n[rollback]\nfiles = [\"sql/undo_c.sql\", \"sql/undo_b.sql\", \"sql/undo_a.sql\"]\nprobe = \"sql/probe.sql\"\nexpect = { tables = \"0\" }\n");
    if !undoes.is_empty() {
        toml.push_str(&format!("\n[rollback.undoes]\n{undoes}"));
    }
    write(&dir.join("bundle.toml"), &toml);
    dir
}

const ALL: &str =
    "\"sql/undo_a.sql\" = \"a\"\n\"sql/undo_b.sql\" = \"b\"\n\"sql/undo_c.sql\" = \"c\"\n";

fn run(t: &Path, db: &TestDb, b: &Path, args: &[&str]) -> std::process::Output {
    let conn = db.conn();
    let mut all = vec![
        args[0],
        b.to_str().unwrap(),
        "--trust",
        "rm.pub",
        "--db",
        &conn,
    ];
    all.extend_from_slice(&args[1..]);
    airlock(t, &all)
}

#[test]
fn rollback_after_apply_through_runs_only_the_files_of_the_tiers_that_ran() {
    let db = TestDb::new("partial_rb");
    let t = keyed_dir();
    let src = source(t.path(), &db.name, ALL);
    let b = pack(t.path(), &src, "rm.key", "b.tar.gz");
    let empty = db.dump_without_ledger();
    expect_code(&run(t.path(), &db, &b, &["apply", "--through", "b"]), 0);
    assert_eq!(
        db.scalar("SELECT count(*) FROM pg_tables WHERE tablename IN ('a','b','c')"),
        "2"
    );
    let o = run(t.path(), &db, &b, &["rollback", "--json"]);
    expect_code(&o, 0);
    let j = json(&o);
    assert_eq!(j["outcome"], "rolled-back", "{j}");
    assert_eq!(
        db.dump_without_ledger(),
        empty,
        "the partial apply was not undone"
    );
    // Rolled back: a second rollback has nothing to do.
    let o = run(t.path(), &db, &b, &["rollback", "--json"]);
    expect_code(&o, 0);
    assert_eq!(json(&o)["outcome"], "nothing-to-roll-back");
}

#[test]
fn a_full_apply_rolls_back_every_file() {
    let db = TestDb::new("partial_full");
    let t = keyed_dir();
    let src = source(t.path(), &db.name, ALL);
    let b = pack(t.path(), &src, "rm.key", "b.tar.gz");
    let empty = db.dump_without_ledger();
    expect_code(&run(t.path(), &db, &b, &["apply"]), 0);
    expect_code(&run(t.path(), &db, &b, &["rollback"]), 0);
    assert_eq!(db.dump_without_ledger(), empty);
}

#[test]
fn a_rollback_file_naming_no_tier_undoes_the_whole_bundle_and_always_runs() {
    // Without the table (every bundle before it): every file runs, as before; after a
    // partial apply undo_c fails, and nothing changes.
    let db = TestDb::new("partial_legacy");
    let t = keyed_dir();
    let src = source(t.path(), &db.name, "");
    let b = pack(t.path(), &src, "rm.key", "b.tar.gz");
    expect_code(&run(t.path(), &db, &b, &["apply", "--through", "b"]), 0);
    let before = db.dump();
    let o = run(t.path(), &db, &b, &["rollback"]);
    expect_code(&o, 1);
    assert!(
        stderr(&o).contains("rollback file sql/undo_c.sql:1:1: table \"c\" does not exist"),
        "{}",
        stderr(&o)
    );
    assert_eq!(db.dump(), before);
}

#[test]
fn undoes_naming_an_unknown_file_or_tier_is_refused_at_pack() {
    let t = keyed_dir();
    for (undoes, want) in [
        ("\"sql/nosuch.sql\" = \"a\"\n", "rollback.undoes names \"sql/nosuch.sql\", which is not in rollback.files"),
        ("\"sql/undo_a.sql\" = \"z\"\n", "rollback.undoes: \"sql/undo_a.sql\" undoes tier \"z\", and the bundle has no such tier"),
    ] {
        let src = source(t.path(), "whatever", undoes);
        let o = airlock(t.path(), &["pack", src.to_str().unwrap(), "--key", "rm.key", "--out", "x.tar.gz"]);
        expect_code(&o, 2);
        assert!(stderr(&o).contains(want), "{}", stderr(&o));
        assert!(!t.path().join("x.tar.gz").exists(), "a bundle was written");
    }
}

/// The report's case: an imported golang-migrate history, applied `--through` its second
/// migration, rolls back: `import` wrote which tier each down script undoes.
#[test]
fn an_imported_history_rolls_back_after_a_partial_apply() {
    let t = keyed_dir();
    let dir = t.path();
    let db = TestDb::new("partial_import");
    let migrations = dir.join("migrations");
    for (i, name) in ["a", "b", "c"].iter().enumerate() {
        let v = i + 1;
        write(
            &migrations.join(format!("{v}_add_{name}.up.sql")),
            &format!("CREATE TABLE {name} (i int);\n"),
        );
        write(
            &migrations.join(format!("{v}_add_{name}.down.sql")),
            &format!("DROP TABLE {name};\n"),
        );
    }
    let out = dir.join("src");
    let o = airlock(
        dir,
        &[
            "import",
            migrations.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--database",
            &db.name,
        ],
    );
    expect_code(&o, 0);
    let toml = std::fs::read_to_string(out.join("bundle.toml")).unwrap();
    assert!(toml.contains("[rollback.undoes]"), "{toml}");
    let b = pack(dir, &out, "rm.key", "b.tar.gz");
    let tiers = json(&airlock(dir, &["--json", "inspect", b.to_str().unwrap()]));
    let second = tiers["manifest"]["tier"][1]["name"]
        .as_str()
        .unwrap_or_else(|| panic!("{tiers}"))
        .to_string();
    let empty = db.dump_without_ledger();
    expect_code(&run(dir, &db, &b, &["apply", "--through", &second]), 0);
    let o = run(dir, &db, &b, &["rollback"]);
    expect_code(&o, 0);
    assert_eq!(db.dump_without_ledger(), empty);
}
