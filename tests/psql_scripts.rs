//! What a DBA already has, as it is (issue 25): psql scripts with their meta-commands and
//! file-wide `BEGIN;` … `COMMIT;`, a plain `pg_dump` whose large objects pg_dump wraps
//! in `BEGIN;` … `COMMIT;`, a UTF-8 byte-order mark. Each lints as it is, says what it
//! skipped, and applies as `psql -1` applies it, all-or-nothing; what changes what runs
//! is refused with the psql-free way, and nothing is written.

mod util;
use std::path::{Path, PathBuf};
use std::process::Command;
use util::*;

/// A source with one tier holding `files` (name, bytes) in order, no rollback.
fn source(dir: &Path, database: &str, files: &[(&str, &[u8])]) -> PathBuf {
    source_with_rollback(dir, database, files, None)
}

/// [`source`] with a rollback file holding `rollback`.
fn source_with_rollback(
    dir: &Path,
    database: &str,
    files: &[(&str, &[u8])],
    rollback: Option<&str>,
) -> PathBuf {
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("sql")).unwrap();
    let mut names = vec![];
    for (name, bytes) in files {
        std::fs::write(src.join("sql").join(name), bytes).unwrap();
        names.push(format!("\"sql/{name}\""));
    }
    write(
        &src.join("bundle.toml"),
        &format!(
            "[bundle]\nname = \"psql\"\nversion = \"1.0\"\nsequence = 1\n\n[target]\ndatabase = \"{database}\"\n\n[[tier]]\nname = \"all\"\nfiles = [{}]\n",
            names.join(", ")
        ),
    );
    if let Some(sql) = rollback {
        write(&src.join("sql/rollback.sql"), sql);
        write(
            &src.join("sql/gone.sql"),
            "SELECT 'doc_absent'::text AS key, (to_regclass('public.doc') IS NULL)::text AS value",
        );
        let toml = std::fs::read_to_string(src.join("bundle.toml")).unwrap();
        write(
            &src.join("bundle.toml"),
            &format!("{toml}\n[rollback]\nfiles = [\"sql/rollback.sql\"]\nprobe = \"sql/gone.sql\"\nexpect = {{ doc_absent = \"true\" }}\n"),
        );
    }
    src
}

/// `psql -1 -f` each file into `db`, as the peer would, stopping at the first error.
fn psql_single_transaction(db: &TestDb, files: &[&Path]) {
    let mut c = Command::new("psql");
    c.args(["-X", "-q", "-1", "-v", "ON_ERROR_STOP=1", "-d", &db.name]);
    for f in files {
        c.arg("-f").arg(f);
    }
    let o = c.output().expect("psql");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// A MusicBrainz-style script: `\set ON_ERROR_STOP 1`, the whole file in `BEGIN;` …
/// `COMMIT;`, a `\echo`; written with a byte-order mark by a Windows editor.
const MUSICBRAINZ_STYLE: &str = "\u{feff}\\set ON_ERROR_STOP 1
\\echo creating tables
BEGIN;

SET search_path = 'public';

CREATE TABLE artist ( -- replicate
    id          SERIAL,
    name        VARCHAR NOT NULL,
    comment     VARCHAR(255) NOT NULL DEFAULT ''
);

CREATE TYPE fluency AS ENUM ('basic', 'intermediate', 'advanced', 'native');

INSERT INTO artist (name) VALUES ('O''Hara'), (E'back\\\\slash'), ('\\c not a command');

COMMIT;
";

#[test]
fn a_psql_script_lints_as_it_is_says_what_it_skipped_and_applies_as_psql_does() {
    let t = tempdir();
    let dir = t.path();
    let target = TestDb::new("psqlscript");
    let peer = TestDb::new("psqlpeer");
    let src = source(
        dir,
        &target.name,
        &[("CreateTables.sql", MUSICBRAINZ_STYLE.as_bytes())],
    );
    let o = airlock(dir, &["lint", src.to_str().unwrap()]);
    expect_code(&o, 0);
    let out = stdout(&o);
    for said in [
        "note: sql/CreateTables.sql:1: starts with a UTF-8 byte-order mark",
        "note: sql/CreateTables.sql:1: `\\set ON_ERROR_STOP` is what airlock does anyway",
        "note: sql/CreateTables.sql:2: `\\echo` only changes what psql prints",
        "note: sql/CreateTables.sql:17: lines 3–17: `BEGIN;` … `COMMIT;` asks for one transaction",
    ] {
        assert!(out.contains(said), "{said:?} not in:\n{out}");
    }
    // The same notes in the JSON document.
    let j = json(&airlock(dir, &["lint", src.to_str().unwrap(), "--json"]));
    assert_eq!(j["notes"].as_array().map(Vec::len), Some(4), "{j}");

    keygen(dir, "rm");
    pack(dir, &src, "rm.key", "b.tar.gz");
    let run = |cmd: &str| {
        airlock(
            dir,
            &[cmd, "b.tar.gz", "--trust", "rm.pub", "--db", &target.conn()],
        )
    };
    expect_code(
        &airlock(dir, &["verify", "b.tar.gz", "--trust", "rm.pub"]),
        0,
    );
    expect_code(&run("apply"), 0);
    psql_single_transaction(&peer, &[&src.join("sql/CreateTables.sql")]);
    assert_eq!(target.dump_without_ledger(), peer.dump());
}

#[test]
fn meta_commands_that_change_what_runs_are_refused_once_each_with_the_way_out() {
    let t = tempdir();
    let dir = t.path();
    let script = "\\set ON_ERROR_STOP 1\nSELECT 1;\n\\c musicbrainz_db\nCREATE SCHEMA :\"SCHEMA\";\n\\ir CreateTables.sql\nSELECT format('ANALYZE %I', relname) FROM pg_class WHERE relkind = 'r'\n\\gexec\n";
    let src = source(dir, "postgres", &[("Init.sql", script.as_bytes())]);
    let o = airlock(dir, &["lint", src.to_str().unwrap()]);
    expect_code(&o, 2);
    let err = stderr(&o);
    assert!(err.contains("4 problem(s)"), "{err}");
    for said in [
        "sql/Init.sql:3: psql meta-command `\\c` connects to another database",
        "Make one bundle per database",
        "sql/Init.sql:4: psql variable interpolation",
        "[params.NAME]",
        "sql/Init.sql:5: psql meta-command `\\ir` reads another file",
        "`files` list",
        "sql/Init.sql:7: psql meta-command `\\gexec`",
        "DO block with EXECUTE",
    ] {
        assert!(err.contains(said), "{said:?} not in:\n{err}");
    }
    // No artifacts of the old reading (the meta-command running into the next line).
    assert!(
        !err.contains("cannot prove") && !err.contains("syntax error"),
        "{err}"
    );
    // pack refuses the same and writes nothing.
    keygen(dir, "rm");
    let o = airlock(
        dir,
        &[
            "pack",
            src.to_str().unwrap(),
            "--key",
            "rm.key",
            "--out",
            "b.tar.gz",
        ],
    );
    expect_code(&o, 2);
    assert!(!dir.join("b.tar.gz").exists());
}

#[test]
fn a_legacy_file_with_standard_conforming_strings_off_is_named_with_the_fix() {
    let t = tempdir();
    let dir = t.path();
    let legacy = "SET standard_conforming_strings = off;\nSET escape_string_warning = off;\nINSERT INTO customers VALUES (1, 'O\\'Reilly');\nINSERT INTO customers VALUES (2, 'D\\'Arcy');\n";
    let src = source(dir, "postgres", &[("northwind.sql", legacy.as_bytes())]);
    let o = airlock(dir, &["lint", src.to_str().unwrap()]);
    expect_code(&o, 2);
    let err = stderr(&o);
    assert!(err.contains("1 problem(s)"), "{err}");
    assert!(
        err.contains("sql/northwind.sql:1: sets standard_conforming_strings off: a legacy file")
            && err.contains("current pg_dump"),
        "{err}"
    );
    // Without the SET, the first problem says what the file looks like.
    let bare = "INSERT INTO customers VALUES (1, 'O\\'Reilly');\nINSERT INTO customers VALUES (2, 'D\\'Arcy');\n";
    let src = source(dir, "postgres", &[("northwind.sql", bare.as_bytes())]);
    let err = stderr(&airlock(dir, &["lint", src.to_str().unwrap()]));
    assert!(
        err.contains("written for standard_conforming_strings = off") && err.contains("line 1 has"),
        "{err}"
    );
}

/// A database with a large object between two tables, dumped by the real pg_dump.
fn dump_with_large_object(db: &TestDb) -> Vec<u8> {
    db.exec(
        "CREATE TABLE doc (id int PRIMARY KEY, body oid);
         INSERT INTO doc VALUES (1, lo_from_bytea(0, convert_to('large object ''body'' \\ with a backslash', 'UTF8')));
         INSERT INTO doc VALUES (2, lo_from_bytea(0, '\\x00ff'::bytea));
         CREATE TABLE after_blobs (id int PRIMARY KEY REFERENCES doc);
         INSERT INTO after_blobs VALUES (1);",
    );
    let o = Command::new("pg_dump")
        .args(["-d", &db.name])
        .output()
        .expect("pg_dump");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("\nBEGIN;\n") && text.contains("lowrite") && text.contains("\nCOMMIT;\n"),
        "no BLOBS section in:\n{text}"
    );
    o.stdout
}

#[test]
fn a_pg_dump_with_large_objects_applies_unchanged_and_all_or_nothing() {
    let t = tempdir();
    let dir = t.path();
    let source_db = TestDb::new("losrc");
    let dump = dump_with_large_object(&source_db);
    let target = TestDb::new("lodst");
    let empty = target.dump_without_ledger();
    let rollback = "DROP TABLE public.after_blobs, public.doc;\nSELECT lo_unlink(oid) FROM pg_largeobject_metadata;\n";
    let src = source_with_rollback(dir, &target.name, &[("dump.sql", &dump)], Some(rollback));
    let o = airlock(dir, &["lint", src.to_str().unwrap()]);
    expect_code(&o, 0);
    assert!(
        stdout(&o).contains("`BEGIN;` … `COMMIT;` asks for one transaction"),
        "{}",
        stdout(&o)
    );
    keygen(dir, "rm");
    pack(dir, &src, "rm.key", "b.tar.gz");
    let run = |cmd: &str, db: &TestDb| {
        airlock(
            dir,
            &[cmd, "b.tar.gz", "--trust", "rm.pub", "--db", &db.conn()],
        )
    };
    expect_code(&run("rehearse", &target), 0);
    assert_eq!(target.dump_without_ledger(), empty);
    expect_code(&run("apply", &target), 0);
    assert_eq!(target.dump_without_ledger(), source_db.dump());
    assert_eq!(
        target.scalar("SELECT convert_from(lo_get(body), 'UTF8') FROM doc WHERE id = 1"),
        "large object 'body' \\ with a backslash"
    );
    expect_code(&run("rollback", &target), 0);
    assert_eq!(target.dump_without_ledger(), empty);

    // The same dump with a failure after its BLOBS section: nothing stays, neither the
    // tables before nor after it, nor the large objects (psql -1 would keep them).
    let failing = TestDb::new("lofail");
    let mut broken = dump.clone();
    broken.extend_from_slice(b"\nINSERT INTO public.after_blobs VALUES (3);\n");
    let dir2 = dir.join("broken");
    std::fs::create_dir_all(&dir2).unwrap();
    let src = source(&dir2, &failing.name, &[("dump.sql", &broken)]);
    keygen(&dir2, "rm");
    pack(&dir2, &src, "rm.key", "b.tar.gz");
    let before = failing.dump_without_ledger();
    let o = airlock(
        &dir2,
        &[
            "apply",
            "b.tar.gz",
            "--trust",
            "rm.pub",
            "--db",
            &failing.conn(),
        ],
    );
    assert_ne!(code(&o), 0, "{}", stderr(&o));
    assert!(stderr(&o).contains("after_blobs"), "{}", stderr(&o));
    assert_eq!(failing.dump_without_ledger(), before);
    assert_eq!(
        failing.scalar("SELECT count(*) FROM pg_largeobject_metadata"),
        "0"
    );
}

#[test]
fn lint_warns_when_a_new_enum_value_is_used_in_the_tier_that_adds_it_as_the_server_refuses() {
    let t = tempdir();
    let dir = t.path();
    let db = TestDb::new("enumadd");
    db.exec("CREATE TYPE public.mood AS ENUM ('sad'); CREATE TABLE public.t (m public.mood);");
    let tier =
        "ALTER TYPE public.mood ADD VALUE 'happy';\nINSERT INTO public.t VALUES ('happy');\n";
    let src = source(dir, &db.name, &[("enum.sql", tier.as_bytes())]);
    let o = airlock(dir, &["lint", src.to_str().unwrap()]);
    expect_code(&o, 0);
    assert!(
        stdout(&o).contains("warning: sql/enum.sql:2: uses 'happy', which `ALTER TYPE public.mood ADD VALUE` at line 1 adds"),
        "{}",
        stdout(&o)
    );
    // The warning is true: the server refuses it, and nothing changes.
    keygen(dir, "rm");
    pack(dir, &src, "rm.key", "b.tar.gz");
    let before = db.dump_without_ledger();
    let o = airlock(
        dir,
        &["apply", "b.tar.gz", "--trust", "rm.pub", "--db", &db.conn()],
    );
    assert_ne!(code(&o), 0);
    assert!(
        stderr(&o).contains("unsafe use of new value"),
        "{}",
        stderr(&o)
    );
    assert_eq!(db.dump_without_ledger(), before);
}

/// A tier: its name, whether it is online, its files as (name, text).
type Tier<'a> = (&'a str, bool, &'a [(&'a str, &'a str)]);

/// A source of `tiers`, `transaction` mode given.
fn tiered_source(dir: &Path, database: &str, transaction: &str, tiers: &[Tier]) -> PathBuf {
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("sql")).unwrap();
    let mut toml = format!(
        "[bundle]\nname = \"tiers\"\nversion = \"1.0\"\nsequence = 1\ntransaction = \"{transaction}\"\n\n[target]\ndatabase = \"{database}\"\n"
    );
    for (name, online, files) in tiers {
        let mut names = vec![];
        for (file, text) in *files {
            write(&src.join("sql").join(file), text);
            names.push(format!("\"sql/{file}\""));
        }
        toml.push_str(&format!(
            "\n[[tier]]\nname = \"{name}\"\nfiles = [{}]\n{}",
            names.join(", "),
            if *online { "online = true\n" } else { "" }
        ));
    }
    write(&src.join("bundle.toml"), &toml);
    src
}

const ADD_HAPPY: &str = "ALTER TYPE public.mood ADD VALUE IF NOT EXISTS 'happy';\n";
const USE_HAPPY: &str = "-- the new value, used\nINSERT INTO public.t VALUES ('happy');\n";

#[test]
fn lint_warns_when_a_new_enum_value_is_used_by_a_later_file_or_tier_of_the_same_transaction() {
    let t = tempdir();
    let dir = t.path();
    let db = TestDb::new("enumtiers");
    db.exec("CREATE TYPE public.mood AS ENUM ('sad'); CREATE TABLE public.t (m public.mood);");
    let warning = "warning: sql/use.sql:2: uses 'happy', which `ALTER TYPE public.mood ADD VALUE` at sql/add.sql:1 adds in the same transaction";
    // Two files of one tier, and two tiers of one transaction (the default): warned.
    for (tag, tiers) in [
        (
            "files",
            vec![(
                "all",
                false,
                &[("add.sql", ADD_HAPPY), ("use.sql", USE_HAPPY)][..],
            )],
        ),
        (
            "tiers",
            vec![
                ("add", false, &[("add.sql", ADD_HAPPY)][..]),
                ("use", false, &[("use.sql", USE_HAPPY)][..]),
            ],
        ),
    ] {
        let d = dir.join(tag);
        let src = tiered_source(&d, &db.name, "single", &tiers);
        let o = airlock(&d, &["lint", src.to_str().unwrap()]);
        expect_code(&o, 0);
        assert!(stdout(&o).contains(warning), "{tag}: {}", stdout(&o));
        // The warning is true: the server refuses the use, and nothing changes.
        keygen(&d, "rm");
        pack(&d, &src, "rm.key", "b.tar.gz");
        let before = db.dump_without_ledger();
        let o = airlock(
            &d,
            &["apply", "b.tar.gz", "--trust", "rm.pub", "--db", &db.conn()],
        );
        assert_ne!(code(&o), 0, "{tag}");
        assert!(
            stderr(&o).contains("unsafe use of new value"),
            "{tag}: {}",
            stderr(&o)
        );
        assert_eq!(db.dump_without_ledger(), before, "{tag}");
    }
    // Tiers that commit in between: per-tier transactions, or an online tier adding
    // the value (each of its statements commits): no warning, and the apply works.
    for (tag, transaction, tiers) in [
        (
            "pertier",
            "per-tier",
            vec![
                ("add", false, &[("add.sql", ADD_HAPPY)][..]),
                ("use", false, &[("use.sql", USE_HAPPY)][..]),
            ],
        ),
        (
            "online",
            "single",
            vec![
                ("add", true, &[("add.sql", ADD_HAPPY)][..]),
                ("use", false, &[("use.sql", USE_HAPPY)][..]),
            ],
        ),
    ] {
        let d = dir.join(tag);
        let db = TestDb::new(&format!("enum{tag}"));
        db.exec("CREATE TYPE public.mood AS ENUM ('sad'); CREATE TABLE public.t (m public.mood);");
        let src = tiered_source(&d, &db.name, transaction, &tiers);
        let o = airlock(&d, &["lint", src.to_str().unwrap()]);
        expect_code(&o, 0);
        assert!(
            !stdout(&o).contains("uses 'happy'"),
            "{tag}: {}",
            stdout(&o)
        );
        keygen(&d, "rm");
        pack(&d, &src, "rm.key", "b.tar.gz");
        let o = airlock(
            &d,
            &["apply", "b.tar.gz", "--trust", "rm.pub", "--db", &db.conn()],
        );
        expect_code(&o, 0);
        assert_eq!(
            db.scalar("SELECT count(*) FROM public.t WHERE m = 'happy'"),
            "1"
        );
    }
}

#[test]
fn a_transaction_wrapper_in_an_online_tier_is_refused_by_lint() {
    let t = tempdir();
    let dir = t.path();
    let db = TestDb::new("onlinewrap");
    db.exec("CREATE TABLE public.t (id int);");
    let src = tiered_source(
        dir,
        &db.name,
        "single",
        &[(
            "index",
            true,
            &[(
                "index.sql",
                "BEGIN;\nCREATE INDEX CONCURRENTLY IF NOT EXISTS t_id ON public.t (id);\nCOMMIT;\n",
            )][..],
        )],
    );
    let o = airlock(dir, &["lint", src.to_str().unwrap()]);
    assert_ne!(code(&o), 0, "{}", stdout(&o));
    let said = format!("{}{}", stdout(&o), stderr(&o));
    assert!(
        said.contains("sql/index.sql:1: `BEGIN;` … `COMMIT;` (lines 1–3) in an online tier"),
        "{said}"
    );
    assert!(said.contains("outside any transaction"), "{said}");
    // pack refuses the same, and nothing reached the database.
    keygen(dir, "rm");
    let o = airlock(
        dir,
        &[
            "pack",
            src.to_str().unwrap(),
            "--key",
            "rm.key",
            "--out",
            "b.tar.gz",
        ],
    );
    assert_ne!(code(&o), 0);
    assert!(!dir.join("b.tar.gz").exists());
    assert_eq!(
        db.scalar("SELECT count(*) FROM pg_indexes WHERE indexname = 't_id'"),
        "0"
    );
}
