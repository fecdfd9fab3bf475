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

/// From PostgreSQL 17 a vertical tab is whitespace (scan.l's `non_newline_space`), and
/// space before the newline that lets a constant continue: `E'a'`, a vertical tab, a
/// newline, then `'\'X'` is one constant there, its `\'` an escaped quote, so the
/// COMMIT after it is a statement the server runs. Lint read the constant as ended at
/// the tab and the COMMIT as inside the next one, and passed the file.
#[test]
fn a_commit_behind_a_vertical_tab_and_a_continued_constant_is_refused() {
    let t = tempdir();
    let tier = "SELECT E'a'\u{b}\n'\\'X' ; COMMIT; --'\n;\n";
    let src = source(t.path(), "x", tier);
    let o = airlock(t.path(), &["lint", src.to_str().unwrap()]);
    expect_code(&o, 2);
    let err = stderr(&o);
    assert!(
        err.contains("sql/tier1.sql:2") && err.contains("COMMIT"),
        "lint names the COMMIT on line 2: {err}"
    );
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

/// Files sent in one string (as `apply` sends small files) are each still followed by
/// their trailer: a file that ends airlock's transaction is caught right after it and
/// named (its index in the string), its fate told, and the files after it in the
/// string do not run.
#[test]
fn a_file_that_ends_the_transaction_inside_a_string_of_files_is_caught_and_named() {
    let db = TestDb::new("guard_group");
    let files = [
        "CREATE TABLE g1(i int);\n",
        "CREATE TABLE g2(i int);\nCOMMIT;\nCREATE TABLE g2b(i int);\n",
        "CREATE TABLE g3(i int);\n",
    ];
    let mut client = db.client();
    let mut tx = client.transaction().expect("BEGIN");
    let guard = TxGuard::begin(&mut tx).expect("guard");
    let segments: Vec<exec::Segment> = files
        .iter()
        .enumerate()
        .map(|(k, sql)| {
            exec::prepare(
                &mut tx,
                &guard,
                "",
                &format!("f{k}.sql"),
                Payload::Memory(sql.as_bytes()),
                1 << 20,
            )
            .expect("prepared")
            .expect("one message")
        })
        .collect();
    let r = exec::run_group(&mut tx, &guard, &segments);
    assert!(
        matches!(
            &r,
            Err((
                1,
                FileError::Ended {
                    fate: Fate::Committed,
                    lines: (1, _)
                }
            ))
        ),
        "{r:?}"
    );
    drop(tx);
    drop(client);
    assert!(
        exists(&db, "g1") && exists(&db, "g2"),
        "committed by the COMMIT"
    );
    assert!(
        !exists(&db, "g2b"),
        "ran after the COMMIT on its own, then rolled back"
    );
    assert!(!exists(&db, "g3"), "the file after it in the string ran");
}

/// Tier 2 of the attack: lexed as lint lexes it (UTF-8), one string holding a
/// `DROP TABLE`; lexed as SJIS (where `ā`'s second byte and the backslash make one
/// character), the string ends early and the `DROP TABLE` runs. Then a row whose
/// bytes SJIS would read otherwise.
const SJIS_ATTACK: &str = "INSERT INTO public.t VALUES (2, E'\u{101}\\' ); DROP TABLE public.victim; --');\nINSERT INTO public.t VALUES (3, 'caf\u{e9}');\n";

/// A function, planted by `owner` (lint never sees it), that switches the session's
/// client encoding to SJIS (`set_config(…, false)`: the session's value, which
/// outlives `SET LOCAL`).
fn plant_flip(db: &TestDb, owner: &str) {
    db.exec_as(
        owner,
        "CREATE TABLE public.victim(i int);
         CREATE TABLE public.t(i int, s text);
         CREATE FUNCTION public.flip() RETURNS void LANGUAGE plpgsql AS $f$
         BEGIN PERFORM pg_catalog.set_config('client_' || 'encoding', 'SJIS', false); END $f$;
         CREATE FUNCTION public.flip_row() RETURNS trigger LANGUAGE plpgsql AS $f$
         BEGIN PERFORM public.flip(); RETURN NEW; END $f$;
         CREATE TABLE public.stamped(i int);
         CREATE TRIGGER stamp BEFORE INSERT ON public.stamped
           FOR EACH ROW EXECUTE FUNCTION public.flip_row();
         CREATE TABLE public.deferred(i int);
         CREATE CONSTRAINT TRIGGER at_commit AFTER INSERT ON public.deferred
           DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION public.flip_row();",
    );
}

/// A [`MiniSource`] with `tiers` (name, sql, online) and `transaction` mode, packed.
fn bundle_with(
    t: &std::path::Path,
    db: &str,
    transaction: &str,
    tiers: &[(&str, &str, bool)],
) -> std::path::PathBuf {
    let plain: Vec<(&str, &str, bool)> = tiers.iter().map(|(n, s, _)| (*n, *s, false)).collect();
    let src = MiniSource::new(t, db, "SELECT true AS ready", &plain, "SELECT 1;").dir;
    let toml_path = src.join("bundle.toml");
    let mut toml = std::fs::read_to_string(&toml_path).unwrap().replacen(
        "sequence = 1\n",
        &format!("sequence = 1\ntransaction = \"{transaction}\"\n"),
        1,
    );
    for (name, _, online) in tiers {
        if *online {
            let head = format!("[[tier]]\nname = \"{name}\"\n");
            toml = toml.replacen(&head, &format!("{head}online = true\n"), 1);
        }
    }
    write(&toml_path, &toml);
    pack(t, &src, "rm.key", "b.tar.gz")
}

/// apply of `bundle` to `db` connected as `user` (None: the tests' superuser).
fn apply_as(
    t: &std::path::Path,
    db: &TestDb,
    user: Option<&str>,
    bundle: &std::path::Path,
) -> std::process::Output {
    let conn = match user {
        Some(u) => format!("dbname={} user={u}", db.name),
        None => db.conn(),
    };
    airlock(
        t,
        &[
            "apply",
            bundle.to_str().unwrap(),
            "--trust",
            "rm.pub",
            "--db",
            &conn,
            "--param",
            "code=A1",
        ],
    )
}

/// Tier 2 ran as lint read it: the victim is there, the string holds the `DROP`, the
/// accented row is stored as written.
#[track_caller]
fn assert_lexed_as_lint_read(db: &TestDb, what: &str) {
    assert!(
        exists(db, "public.victim"),
        "{what}: the DROP TABLE lint saw inside a string ran"
    );
    assert_eq!(
        db.scalar("SELECT s FROM public.t WHERE i = 2"),
        "\u{101}' ); DROP TABLE public.victim; --",
        "{what}"
    );
    assert_eq!(
        db.scalar("SELECT s FROM public.t WHERE i = 3"),
        "caf\u{e9}",
        "{what}"
    );
}

#[test]
fn a_session_encoding_set_by_one_tier_never_lexes_the_next_in_any_transaction_mode() {
    let owner = std::env::var("PGUSER").unwrap_or_else(|_| "root".into());
    // (transaction mode, what tier 1 does to change the session's client_encoding)
    let cases = [
        // Issue 46 finding 9: a DO block lint cannot read the name in.
        (
            "per-tier",
            "DO $$ BEGIN PERFORM set_config('client_' || 'encoding', 'SJIS', false); END $$;\n",
        ),
        // A constraint trigger deferred to COMMIT: after the last message of the tier.
        ("per-tier", "INSERT INTO public.deferred VALUES (1);\n"),
        (
            "single",
            "DO $$ BEGIN PERFORM set_config('client_' || 'encoding', 'SJIS', false); END $$;\n",
        ),
        ("single", "INSERT INTO public.stamped VALUES (1);\n"),
    ];
    for (mode, tier1) in cases {
        let db = TestDb::new("lexsess");
        plant_flip(&db, &owner);
        let t = keyed_dir();
        let b = bundle_with(
            t.path(),
            &db.name,
            mode,
            &[("one", tier1, false), ("two", SJIS_ATTACK, false)],
        );
        let o = apply_as(t.path(), &db, None, &b);
        let what = format!("{mode}: {tier1}");
        expect_code(&o, 0);
        assert_lexed_as_lint_read(&db, &what);
    }
}

#[test]
fn a_non_superuser_owners_trigger_cannot_change_how_the_next_tier_is_lexed() {
    let _serial = cluster_serial();
    // Declared before the database it owns: locals drop in reverse, the database first.
    let (owner, deployer) = (role_name("owner"), role_name("deployer"));
    let _roles = DropRoles(vec![owner.clone(), deployer.clone()]);
    let db = TestDb::new("lexowner");
    admin()
        .batch_execute(&format!(
            "CREATE ROLE {owner} LOGIN; CREATE ROLE {deployer} LOGIN;
             ALTER DATABASE \"{db}\" OWNER TO {owner}; GRANT ALL ON SCHEMA public TO {owner};
             GRANT {owner} TO {deployer}; GRANT airlock_gate TO {deployer};
             GRANT CREATE ON DATABASE \"{db}\" TO {deployer};",
            db = db.name
        ))
        .unwrap();
    plant_flip(&db, &owner);
    let t = keyed_dir();
    let b = bundle_with(
        t.path(),
        &db.name,
        "per-tier",
        &[
            ("one", "INSERT INTO public.stamped VALUES (1);\n", false),
            ("two", SJIS_ATTACK, false),
        ],
    );
    let o = apply_as(t.path(), &db, Some(&deployer), &b);
    expect_code(&o, 0);
    assert_lexed_as_lint_read(&db, "the owner's trigger");
    assert_eq!(db.scalar("SELECT count(*)::text FROM public.stamped"), "1");
}

#[test]
fn an_online_tier_after_a_tier_that_changed_the_session_encoding_is_lexed_as_lint_read_it() {
    let db = TestDb::new("lexonline");
    let owner = std::env::var("PGUSER").unwrap_or_else(|_| "root".into());
    plant_flip(&db, &owner);
    let t = keyed_dir();
    // Tier 1 commits SJIS as the session's encoding; each online step is a message of
    // its own, outside any transaction; the second names an index lint read as
    // `café_idx`.
    let online = "CREATE INDEX CONCURRENTLY IF NOT EXISTS t_i ON public.t (i);\n\
                  CREATE INDEX CONCURRENTLY IF NOT EXISTS \"caf\u{e9}_idx\" ON public.t (s);\n";
    let b = bundle_with(
        t.path(),
        &db.name,
        "single",
        &[
            ("one", "INSERT INTO public.t VALUES (1, 'one');\nDO $$ BEGIN PERFORM set_config('client_' || 'encoding', 'SJIS', false); END $$;\n", false),
            ("two", online, true),
        ],
    );
    let o = apply_as(t.path(), &db, None, &b);
    expect_code(&o, 0);
    assert_eq!(
        db.scalar("SELECT string_agg(indexname, ',' ORDER BY indexname) FROM pg_indexes WHERE tablename = 't'"),
        "caf\u{e9}_idx,t_i"
    );
}

/// Whether `public.victim` is still there, asked in the transaction the attack ran in.
fn victim_stands(tx: &mut postgres::Transaction<'_>) -> bool {
    let found = tx
        .simple_query("SELECT (pg_catalog.to_regclass('public.victim') IS NOT NULL)::text")
        .unwrap()
        .into_iter()
        .find_map(|m| match m {
            postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        });
    found.as_deref() == Some("true")
}

#[test]
fn a_message_that_reaches_the_server_under_other_lexing_settings_runs_nothing() {
    let db = TestDb::new("lexhead");
    db.exec("CREATE TABLE public.victim(i int); CREATE TABLE public.t(i int, s text);");
    let mut client = db.client();
    let mut tx = client.transaction().expect("BEGIN");
    let guard = TxGuard::begin(&mut tx).expect("guard");
    // Whatever changed it since the last message airlock sent (nothing airlock runs
    // can, which is the point: the check does not rely on that).
    tx.batch_execute("SET client_encoding TO 'SJIS'").unwrap();
    let r = exec::run_file(
        &mut tx,
        &guard,
        "",
        "f.sql",
        Payload::Memory(SJIS_ATTACK.as_bytes()),
        1 << 20,
        &mut |_, _| {},
    );
    assert!(victim_stands(&mut tx), "the DROP TABLE ran: {r:?}");
    assert!(
        matches!(&r, Err(FileError::Lexing { lines: (1, _), found }) if found.contains("client_encoding=SJIS")),
        "{r:?}"
    );
}

/// Small files travel several to a string, and only the first carries the lexing
/// check (the server lexes the string whole on arrival): a string that arrives under
/// other settings runs nothing, not even the later file whose text those settings
/// would turn into a DROP.
#[test]
fn a_string_of_small_files_that_reaches_the_server_under_other_lexing_settings_runs_nothing() {
    let db = TestDb::new("lexgroup");
    db.exec("CREATE TABLE public.victim(i int); CREATE TABLE public.t(i int, s text);");
    let mut client = db.client();
    let mut tx = client.transaction().expect("BEGIN");
    let guard = TxGuard::begin(&mut tx).expect("guard");
    let segment = |tx: &mut postgres::Transaction<'_>, file: &str, sql: &'static str| {
        exec::prepare(
            tx,
            &guard,
            "",
            file,
            Payload::Memory(sql.as_bytes()),
            1 << 20,
        )
        .expect("prepared")
        .expect("a file that goes in a string")
    };
    let files = [
        segment(&mut tx, "a.sql", "INSERT INTO public.t VALUES (1, 'a');\n"),
        segment(&mut tx, "b.sql", SJIS_ATTACK),
    ];
    tx.batch_execute("SET client_encoding TO 'SJIS'").unwrap();
    let r = exec::run_group(&mut tx, &guard, &files);
    assert!(victim_stands(&mut tx), "the DROP TABLE ran: {r:?}");
    assert!(
        matches!(&r, Err((0, FileError::Lexing { found, .. })) if found.contains("client_encoding=SJIS")),
        "{r:?}"
    );
}

/// A per-tier apply that fails after many tiers committed names the last one that
/// committed, with how many did (issue 76, item 12): the list of 143 long names was
/// cut at the message's line bound before its end.
#[test]
fn a_per_tier_failure_after_many_tiers_names_the_last_one_that_committed() {
    let db = TestDb::new("pertier_many");
    let t = keyed_dir();
    let names: Vec<String> = (1..=144)
        .map(|i| format!("{i:06}_create_the_table_of_many_things"))
        .collect();
    let sql: Vec<String> = (1..=144)
        .map(|i| match i {
            144 => "SELECT 1/0;\n".to_string(),
            _ => format!("CREATE TABLE public.t{i} (i int);\n"),
        })
        .collect();
    let tiers: Vec<(&str, &str, bool)> = names
        .iter()
        .zip(&sql)
        .map(|(n, s)| (n.as_str(), s.as_str(), false))
        .collect();
    let b = bundle_with(t.path(), &db.name, "per-tier", &tiers);
    let o = apply_as(t.path(), &db, None, &b);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_ne!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains(&names[0]) && err.contains(&names[142]) && err.contains("143 tiers"),
        "the first and last committed tiers and their count: {err}"
    );
    // What it names is what committed.
    assert_eq!(
        db.scalar("SELECT count(*)::text FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 't%'"),
        "143"
    );
}
