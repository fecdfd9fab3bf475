//! All-or-nothing cannot be broken from inside a file: what lint lexed is what the
//! server lexes, for every message airlock sends (the pins go back after each message
//! and after COPY data), lint refuses changing the settings that decide lexing, and
//! if bundle SQL ever ends airlock's transaction, the run stops and says what became
//! of it instead of "nothing was changed".

mod util;
use airlock::db::exec::{self, Fate, FileError, TxGuard};
use airlock::verified::Payload;
use util::*;

/// A source with one tier (`tier`) and a probe-free rollback, for `db`.
fn source(root: &std::path::Path, db: &str, tier: &str) -> std::path::PathBuf {
    MiniSource::new(
        root,
        db,
        "SELECT true AS ready",
        &[("only", tier, false)],
        "SELECT 1;",
    )
    .dir
}

#[test]
fn settings_that_decide_lexing_cannot_be_changed_by_a_tier_file() {
    let t = tempdir();
    // The reported file: SET off, a COPY block, then a COMMIT hidden in a string as
    // lint lexes it.
    let reported = "CREATE TABLE public.t(x text);\nSET standard_conforming_strings = off;\nCOPY public.t (x) FROM stdin;\nrow\n\\.\nSELECT 'a\\', '; COMMIT; SELECT 1 --';\n";
    for (i, tier) in [
        reported,
        "SET LOCAL standard_conforming_strings TO off;\n",
        "SELECT pg_catalog.set_config('standard_conforming_strings', 'off', false);\n",
        "INSERT INTO x SELECT set_config('client_encoding', 'SJIS', true);\n",
        "SET client_encoding = 'SJIS';\n",
        "SET NAMES 'SJIS';\n",
        "DO $$ BEGIN EXECUTE 'SET standard_conforming_strings = off'; END $$;\n",
    ]
    .iter()
    .enumerate()
    {
        let src = source(&t.path().join(format!("s{i}")), "x", tier);
        let o = airlock(t.path(), &["lint", src.to_str().unwrap()]);
        expect_code(&o, 2);
        let err = stderr(&o);
        assert!(
            err.contains("standard_conforming_strings") || err.contains("client_encoding"),
            "{tier}: {err}"
        );
        assert!(err.contains("sql/tier1.sql:"), "names the file: {err}");
    }
    // What plain pg_dump writes passes.
    let dump_header = "SET statement_timeout = 0;\nSET client_encoding = 'UTF8';\nSET standard_conforming_strings = on;\nSELECT pg_catalog.set_config('search_path', '', false);\nCREATE TABLE public.t(x text);\n";
    let src = source(&t.path().join("dump"), "x", dump_header);
    expect_code(&airlock(t.path(), &["lint", src.to_str().unwrap()]), 0);
}

#[test]
fn a_lexing_setting_changed_where_lint_cannot_see_is_put_back_before_the_next_message() {
    let db = TestDb::new("lexpin");
    let t = keyed_dir();
    // The setting's name is built at run time (lint cannot see it); the COPY makes the
    // rest of the file a new message; lexed with the setting off, the string below
    // would hold a COMMIT. The last statement fails, so nothing may stay.
    let tier = "CREATE TABLE public.t(x text);\n\
                DO $$ BEGIN EXECUTE 'SET standard_' || 'conforming_strings = off'; END $$;\n\
                COPY public.t (x) FROM stdin;\nrow\n\\.\n\
                SELECT 'a\\', '; COMMIT; SELECT 1 --';\n\
                SELECT 1/0;\n";
    let src = source(t.path(), &db.name, tier);
    let b = pack(t.path(), &src, "rm.key", "b.tar.gz");
    let before = db.dump();
    let o = airlock(
        t.path(),
        &[
            "apply",
            b.to_str().unwrap(),
            "--trust",
            "rm.pub",
            "--db",
            &db.conn(),
            "--param",
            "code=A1",
        ],
    );
    expect_code(&o, 1);
    assert!(stderr(&o).contains("division by zero"), "{}", stderr(&o));
    assert!(stderr(&o).contains("nothing was changed"), "{}", stderr(&o));
    assert_eq!(
        db.scalar("SELECT (to_regclass('public.t') IS NULL)::text"),
        "true",
        "the table created before the smuggled COMMIT was committed"
    );
    assert_eq!(db.dump(), before, "the database changed");
}

/// A transaction on `db` with the guard set, as apply makes it.
fn guarded_run(db: &TestDb, sql: &str) -> Result<(), FileError> {
    let mut client = db.client();
    let mut tx = client.transaction().expect("BEGIN");
    let guard = TxGuard::begin(&mut tx).expect("guard");
    exec::run_file(
        &mut tx,
        &guard,
        "",
        "f.sql",
        Payload::Memory(sql.as_bytes()),
        1 << 20,
        &mut |_, _| {},
    )
}

fn exists(db: &TestDb, table: &str) -> bool {
    db.scalar(&format!(
        "SELECT (to_regclass('{table}') IS NOT NULL)::text"
    )) == "true"
}

#[test]
fn bundle_sql_that_ends_the_transaction_is_caught_after_its_message_and_its_fate_told() {
    let db = TestDb::new("guard");
    // (file, the fate told, tables that must exist after, tables that must not)
    let cases: &[(&str, Fate, &[&str], &[&str])] = &[
        // COMMIT: what ran before stays (and the guard says so); what follows in the
        // same message ran on its own and failed with the guard's check.
        (
            "CREATE TABLE a1(i int); COMMIT; CREATE TABLE b1(i int);",
            Fate::Committed,
            &["a1"],
            &["b1"],
        ),
        // COMMIT, then a new transaction block: still caught (another transaction id).
        // (Not a plain `BEGIN;`, which the splitter takes for half of a wrapper and,
        // with no COMMIT after it, refuses before anything is sent.)
        (
            "CREATE TABLE a2(i int); COMMIT; BEGIN ISOLATION LEVEL READ COMMITTED; CREATE TABLE b2(i int);",
            Fate::Committed,
            &["a2"],
            &["b2"],
        ),
        // COMMIT, then an error in the same message: not taken for the file's own error
        // (which would mean "nothing was changed").
        (
            "CREATE TABLE a3(i int); COMMIT; SELECT 1/0;",
            Fate::Committed,
            &["a3"],
            &[],
        ),
        // ROLLBACK: nothing of the transaction stays, and it is said so.
        (
            "CREATE TABLE a4(i int); ROLLBACK; CREATE TABLE b4(i int);",
            Fate::RolledBack,
            &[],
            &["a4", "b4"],
        ),
    ];
    for (sql, fate, present, absent) in cases {
        let r = guarded_run(&db, sql);
        assert!(
            matches!(&r, Err(FileError::Ended { fate: f, lines: (1, _) }) if f == fate),
            "{sql}: {r:?}"
        );
        for t in *present {
            assert!(exists(&db, t), "{sql}: {t} should have been committed");
        }
        for t in *absent {
            assert!(!exists(&db, t), "{sql}: {t} should not exist");
        }
    }
    // The file's own error inside airlock's transaction is an ordinary SQL error.
    let r = guarded_run(&db, "CREATE TABLE a5(i int);\nSELECT 1/0;");
    assert!(matches!(&r, Err(FileError::Sql { .. })), "{r:?}");
    assert!(!exists(&db, "a5"));
    // And a clean file passes, its changes still in the (open) transaction.
    guarded_run(&db, "CREATE TABLE a6(i int);").expect("a clean file");
}
