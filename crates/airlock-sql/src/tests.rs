//! The SQL room's own tests: lint verdicts, statement ends against PostgreSQL's
//! parser, COPY data and chunking.
use super::*;

fn ok(sql: &str, role: SqlRole) -> bool {
    check("f.sql", sql, role).is_empty()
}

#[test]
fn gates_must_be_one_read_only_query() {
    assert!(ok("SELECT true AS ready, 'x' AS reason;", SqlRole::Gate));
    assert!(ok(
        "WITH a AS (SELECT 1) SELECT count(*) >= 1 AS ready FROM a",
        SqlRole::Gate
    ));
    assert!(ok("VALUES (true)", SqlRole::Gate));
    assert!(!ok("SELECT 1; SELECT 2", SqlRole::Gate));
    assert!(!ok(
        "WITH d AS (DELETE FROM t RETURNING 1) SELECT true",
        SqlRole::Gate
    ));
    assert!(!ok("SELECT * INTO newt FROM t", SqlRole::Gate));
    assert!(!ok("SET transaction_read_only = off", SqlRole::Gate));
    assert!(!ok("RESET transaction_read_only", SqlRole::Gate));
    assert!(!ok(
        "SELECT set_config('transaction_read_only','off',true)",
        SqlRole::Gate
    ));
    assert!(!ok("SELECT nextval('s') > 0 AS ready", SqlRole::Gate));
    assert!(!ok("SELECT 1 FROM t FOR UPDATE", SqlRole::Gate));
    assert!(!ok("COMMIT", SqlRole::Gate));
    assert!(!ok("", SqlRole::Probe));
}

#[test]
fn scripts_refuse_non_transactional_statements_with_line() {
    let sql = "CREATE TABLE a(i int);\n\nCREATE INDEX CONCURRENTLY i ON a(i);\n";
    let p = check("t.sql", sql, SqlRole::Script);
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].line, 3);
    for bad in [
        "VACUUM",
        "COMMIT",
        "ROLLBACK",
        "BEGIN",
        "ALTER SYSTEM SET work_mem='1MB'",
        "CREATE DATABASE x",
    ] {
        assert!(!ok(bad, SqlRole::Script), "{bad} should be refused");
    }
    assert!(ok(
        "CREATE TABLE a(i int); INSERT INTO a VALUES (1);",
        SqlRole::Script
    ));
}

#[test]
fn meta_commands_are_named_with_their_line() {
    let p = check("t.sql", "SELECT 1;\n\\i x.sql\n", SqlRole::Script);
    assert_eq!(p[0].line, 2);
    assert!(p[0].message.contains("`\\i`"), "{}", p[0].message);
    // Inside a string or a dollar-quoted body a backslash is data.
    assert!(ok(
        "INSERT INTO t VALUES ('\\set');\nDO $$ BEGIN RAISE NOTICE '\\n'; END $$;",
        SqlRole::Script
    ));
}

fn lines(sql: &str) -> Vec<(usize, String)> {
    check("t.sql", sql, SqlRole::Script)
        .into_iter()
        .map(|p| (p.line, p.message))
        .collect()
}

#[test]
fn hidden_semicolons_and_keywords_stay_hidden() {
    // Each of these is one harmless INSERT to PostgreSQL.
    for sql in [
        "INSERT INTO t VALUES ('a; COMMIT; b');",
        "INSERT INTO t VALUES ('it''s; COMMIT');",
        "INSERT INTO t VALUES (E'\\'; COMMIT; --');",
        "INSERT INTO t VALUES ($$; COMMIT;$$);",
        "INSERT INTO t VALUES ($q$ $$; COMMIT; $q$);",
        "INSERT INTO \"we;ird\"\"; COMMIT\" VALUES (1);",
        "INSERT INTO t /* a /* nested; COMMIT; */ still comment; COMMIT */ VALUES (1);",
        "INSERT INTO t VALUES (1) -- ; COMMIT;\n;",
    ] {
        assert_eq!(lines(sql), vec![], "{sql}");
    }
}

#[test]
fn what_postgres_would_run_is_seen() {
    for (sql, line) in [
        ("INSERT INTO t VALUES ('a');\nCOMMIT;", 2),
        // standard_conforming_strings: a backslash does not escape the quote.
        ("INSERT INTO t VALUES ('\\');\n COMMIT; --');", 2),
        // `xe` is an identifier, not an E prefix: the string is a standard one.
        ("SELECT xe'\\';\nCOMMIT; --';", 2),
        // A `$` inside a word is part of it, not a dollar quote.
        ("SELECT a$b$c;\nCOMMIT;\nSELECT 'x$b$';", 2),
        // E'…' continued after a newline keeps its backslash escapes (scan.l
        // quotecontinue): the COMMIT is outside the constant.
        ("SELECT E'a'\n'\\'';\nCOMMIT;", 3),
        ("SELECT E'a' -- gap comment\n  '\\'';\nCOMMIT;", 3),
        // A vertical tab before the newline is space of the gap (PostgreSQL 17).
        ("SELECT E'a'\u{b}\n'\\'';\nCOMMIT;", 3),
        // No newline in the gap: two constants, the second a standard one.
        ("SELECT E'a' '\\';\nCOMMIT; --';", 2),
        ("VACUUM;", 1),
        ("SELECT 1;\n\n   CREATE INDEX CONCURRENTLY i ON t(a);", 3),
        ("DROP INDEX CONCURRENTLY i;", 1),
        ("REINDEX DATABASE d;", 1),
        ("DISCARD ALL;", 1),
        ("CLUSTER;", 1),
        ("/* leading\ncomment */ BEGIN;", 2),
    ] {
        let got = lines(sql);
        assert_eq!(got.len(), 1, "{sql}: {got:?}");
        assert_eq!(got[0].0, line, "{sql}: {got:?}");
    }
}

#[test]
fn begin_atomic_bodies_are_one_statement_and_parsed() {
    let f = "CREATE FUNCTION f() RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT 1;\n  SELECT CASE WHEN true THEN 2 END;\nEND;\nCOMMIT;\n";
    assert_eq!(lines(f), vec![(6, lines("COMMIT")[0].1.clone())]);
}

#[test]
fn syntax_errors_in_parsed_statements_are_named() {
    let got = lines("SELECT 1;\nCREATE TABLE (;\n");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, 2);
    assert!(got[0].1.contains("does not parse"), "{got:?}");
}

#[test]
fn unterminated_constructs_are_named() {
    for (sql, what, line) in [
        (
            "SELECT 1;\nINSERT INTO t VALUES ('oops);\n",
            "string constant",
            2,
        ),
        ("SELECT $x$ never closed", "dollar-quoted", 1),
        ("SELECT 1;\n/* open", "/* comment", 2),
        ("SELECT \"open", "quoted identifier", 1),
    ] {
        let got = lines(sql);
        assert!(
            got.len() == 1 && got[0].0 == line && got[0].1.contains(what),
            "{sql}: {got:?}"
        );
    }
    let p = check("t.sql", "SELECT 1;\0", SqlRole::Script);
    assert!(p[0].message.contains("NUL"));
}

#[test]
fn invalid_utf8_is_refused_and_a_split_character_is_not() {
    let mut c = ScriptChecker::new("t.sql");
    c.feed(b"INSERT INTO t VALUES ('caf\xc3");
    c.feed(b"\xa9');\n");
    assert!(c.finish().is_empty());
    let mut c = ScriptChecker::new("t.sql");
    c.feed(b"SELECT 1;\nINSERT INTO t VALUES ('\xff');");
    let p = c.finish();
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].line, 2);
    assert!(p[0].message.contains("UTF-8"));
}

/// The UTF-8 check reads wide blocks: a bad byte deep in a long piece is still found on
/// its line, and a character split between long pieces at any of its bytes still passes.
#[test]
fn utf8_is_checked_at_every_position_of_long_pieces() {
    let row = "INSERT INTO t VALUES (1, 'caf\u{e9} \u{20ac} \u{1f600}');\n";
    let text = row.repeat(40);
    for cut in 1..text.len() {
        let mut c = ScriptChecker::new("t.sql");
        c.feed(&text.as_bytes()[..cut]);
        c.feed(&text.as_bytes()[cut..]);
        assert!(c.finish().is_empty(), "cut at {cut}");
    }
    for at in (0..text.len()).step_by(7) {
        let mut bytes = text.clone().into_bytes();
        bytes[at] = 0xff;
        let line = 1 + text.as_bytes()[..at]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        let mut c = ScriptChecker::new("t.sql");
        c.feed(&bytes);
        let p = c.finish();
        assert!(
            p.len() == 1 && p[0].line == line && p[0].message.contains("UTF-8"),
            "0xff at {at}: {p:?}"
        );
    }
}

#[test]
fn a_large_data_file_is_checked_in_bounded_memory() {
    let mut c = ScriptChecker::new("big.sql");
    let line = b"INSERT INTO t VALUES (1, 'x; COMMIT', $$y$$, E'\\'');\n";
    for _ in 0..200_000 {
        c.feed(line);
    }
    assert!(
        c.lexer.capture.capacity() < 4096,
        "DML must not be captured"
    );
    c.feed(b"COMMIT;\n");
    let p = c.finish();
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].line, 200_001);
}

#[test]
fn a_begin_column_never_opens_a_block() {
    // pg_dump leaves the column name `begin` unquoted; only CREATE FUNCTION and
    // CREATE PROCEDURE bodies are blocks (psql's rule).
    let mut sql = String::from("CREATE TABLE public.t (\n    id integer,\n    begin date\n);\n");
    for i in 0..2000 {
        sql.push_str(&format!("ALTER TABLE public.t ADD COLUMN c{i} int;\n"));
    }
    sql.push_str("COMMIT;\n");
    let mut c = ScriptChecker::new("t.sql");
    let mut largest = 0;
    for piece in sql.as_bytes().chunks(64) {
        c.feed(piece);
        largest = largest.max(c.lexer.capture.len());
    }
    assert!(largest < 200, "one statement held {largest} bytes");
    let p = c.finish();
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].line, 2005);
    let pieces = split_all("t.sql", sql.as_bytes()).unwrap();
    let statements = pieces
        .iter()
        .filter(|p| matches!(p, Piece::Sql { .. }))
        .count();
    assert_eq!(statements, 2002, "every statement its own piece");
}

#[test]
fn what_the_server_runs_in_a_transaction_is_accepted() {
    for sql in [
        "ANALYZE;",
        "ANALYZE t (a);",
        "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (';'));\nSELECT 1;",
        "CREATE SUBSCRIPTION s CONNECTION 'host=x' PUBLICATION p WITH (connect = false);",
        "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY;",
        "DO $$ BEGIN RAISE NOTICE 'commit'; END $$;",
        "COPY t (a, begin) FROM stdin;\n1\t2\n\\N\t\\.\nCOMMIT;\n\\.\nSELECT 1;",
    ] {
        assert_eq!(lines(sql), vec![], "{sql}");
    }
    // A gate whose string continues on a line starting with a backslash.
    assert!(ok(
        "SELECT true AS ready, 'a\n\\b' AS reason",
        SqlRole::Gate
    ));
}

#[test]
fn what_the_server_refuses_in_a_transaction_is_refused_with_its_reason() {
    for (sql, why) in [
        ("REINDEX SCHEMA s;", "REINDEX SCHEMA"),
        (
            "ALTER TABLE p DETACH PARTITION c CONCURRENTLY;",
            "CONCURRENTLY",
        ),
        ("ALTER DATABASE d SET TABLESPACE x;", ""),
        ("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE;", ""),
        ("SET LOCAL transaction_isolation = 'serializable';", ""),
        ("DO $$ BEGIN COMMIT; END $$;", ""),
        ("DO $$ BEGIN UPDATE t SET a = 1; ROLLBACK; END $$;", ""),
        (
            "CREATE SUBSCRIPTION s CONNECTION 'host=x' PUBLICATION p;",
            "",
        ),
        ("VACUUM t;", "VACUUM"),
    ] {
        let got = lines(sql);
        assert_eq!(got.len(), 1, "{sql}: {got:?}");
        assert!(got[0].1.contains(why), "{sql}: {got:?}");
    }
}

#[test]
fn copy_data_is_data_and_only_copy_from_stdin_is_accepted() {
    let dump = "\\restrict Abc123\nSET x = 1;\nCOPY public.t (a, begin) FROM stdin;\nx\\ty\t\\N\n;COMMIT;\t$$\t'\t/*\n\\.\nSELECT 2;\n\\unrestrict Abc123\n";
    assert_eq!(lines(dump), vec![]);
    for (sql, why) in [
        ("COPY t FROM '/etc/passwd';", "server"),
        ("COPY t FROM PROGRAM 'id';", "PROGRAM"),
        ("COPY t TO STDOUT;", "reads data out"),
        ("COPY t FROM STDIN (FORMAT binary);\n\\.\n", "binary"),
        ("COPY t FROM stdin;\n1\n", "no `\\.`"),
        ("SELECT 1;\n\\.\n", "`\\.`"),
        ("\\restrict\n", "key"),
        ("\\copy t from 'x'\n", "`\\copy`"),
    ] {
        let got = lines(sql);
        assert!(got.iter().any(|(_, m)| m.contains(why)), "{sql:?}: {got:?}");
    }
    // Gates and probes are one query: no data, no \restrict.
    assert!(!ok("\\restrict k\nSELECT true AS ready", SqlRole::Gate));
}

/// (line, message) of each problem or note.
type Lines = Vec<(usize, String)>;

/// Problems and notes of a script.
fn noted(sql: &str) -> (Lines, Lines) {
    let c = check_noted("t.sql", sql, SqlRole::Script);
    let flat = |v: Vec<SqlProblem>| v.into_iter().map(|p| (p.line, p.message)).collect();
    (flat(c.problems), flat(c.notes))
}

#[test]
fn a_meta_command_ends_at_the_end_of_its_line() {
    // psql reads `\set ON_ERROR_STOP 1` and runs `SELECT 1;` after it: nothing else.
    let (problems, notes) = noted("\\set ON_ERROR_STOP 1\nSELECT 1;\nCREATE TABLE t (a int);\n");
    assert_eq!(problems, vec![]);
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0].0, 1);
    assert!(notes[0].1.contains("ON_ERROR_STOP"), "{notes:?}");
    // A refused one is one problem, with no artifacts from the rest of its line.
    let (problems, _) = noted("\\c musicbrainz_db\nCREATE TABLE t (a int);\n");
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].1.contains("one bundle per database"),
        "{problems:?}"
    );
    // Inside a statement too: the statement is judged without the meta-command's line.
    let (problems, _) = noted("CREATE TABLE t (\n\\echo hi there\n a int);\n");
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].0, 2);
    assert!(
        problems[0].1.contains("middle of a statement"),
        "{problems:?}"
    );
    // psql runs one after a statement on the same line.
    assert_eq!(noted("SELECT 1; \\echo done\n").0, vec![]);
    // Indented, with a Windows line end, at the end of the file without a newline.
    assert_eq!(
        noted("  \\set ON_ERROR_STOP on\r\nSELECT 1;\n\\unset ON_ERROR_STOP").0,
        vec![]
    );
}

#[test]
fn harmless_meta_commands_are_skipped_with_a_note_and_the_rest_refused_with_a_hint() {
    for line in [
        "\\set ON_ERROR_STOP 1",
        "\\set ON_ERROR_STOP",
        "\\unset ON_ERROR_STOP",
        "\\set VERBOSITY verbose",
        "\\pset pager off",
        "\\timing on",
        "\\echo 'creating tables'",
        "\\encoding UTF8",
        "\\x",
    ] {
        let (problems, notes) = noted(&format!("{line}\nCREATE TABLE t (a int);\n"));
        assert_eq!(problems, vec![], "{line}");
        assert_eq!(notes.len(), 1, "{line}: {notes:?}");
    }
    // pg_dump's \restrict lines are in every current dump: skipped without a note.
    assert_eq!(
        noted("\\restrict abc\nSELECT 1;\n\\unrestrict abc\n"),
        (vec![], vec![])
    );
    for (line, hint) in [
        ("\\c other", "one bundle per database"),
        ("\\connect other", "one bundle per database"),
        ("\\i CreateTables.sql", "`files` list"),
        ("\\ir CreateTables.sql", "`files` list"),
        ("\\copy t FROM 't.csv' CSV", "COPY table FROM STDIN"),
        ("\\set ON_ERROR_STOP 0", "stops at the first error"),
        ("\\set AUTOCOMMIT off", "own transaction"),
        ("\\encoding LATIN1", "UTF-8"),
        ("\\if :flag", "DO block with IF"),
        ("\\! rm -rf /", "machine running psql"),
        ("\\lo_import '/tmp/x'", "lo_from_bytea"),
        ("\\zz", "Remove it"),
    ] {
        let (problems, _) = noted(&format!("SELECT 1;\n{line}\nSELECT 2;\n"));
        assert_eq!(problems.len(), 1, "{line}: {problems:?}");
        assert_eq!(problems[0].0, 2, "{line}");
        assert!(problems[0].1.contains(hint), "{line}: {problems:?}");
    }
    let (problems, _) = noted("SELECT format('VACUUM %I', relname) FROM pg_class\n\\gexec\n");
    assert!(
        problems[0].1.contains("DO block with EXECUTE"),
        "{problems:?}"
    );
}

#[test]
fn psql_variables_are_refused_and_casts_slices_and_named_arguments_are_not() {
    for sql in [
        "CREATE SCHEMA :schema;",
        "SET search_path = :\"SCHEMA\";",
        "INSERT INTO t VALUES (:'value');",
        "SELECT :n;",
    ] {
        let (problems, _) = noted(sql);
        assert_eq!(problems.len(), 1, "{sql}: {problems:?}");
        assert!(
            problems[0].1.contains("[params.NAME]"),
            "{sql}: {problems:?}"
        );
    }
    for sql in [
        "SELECT 'a'::text, x::int FROM t;",
        "SELECT a[1:2], a[lo:hi], a[:hi] FROM t;",
        "SELECT f(a => 1, b := 2);",
        "CREATE VIEW v AS SELECT a[lo:hi]::int[], ' :x ' AS s, \":x\" FROM t;",
        "DO $$ DECLARE x int := 1; BEGIN x := :y; END $$;",
        "-- :comment\nSELECT 1; /* :x */",
    ] {
        assert_eq!(noted(sql).0, vec![], "{sql}");
    }
}

#[test]
fn a_backslash_in_a_constant_a_comment_or_copy_data_is_no_meta_command() {
    for sql in [
        "INSERT INTO t VALUES ('\\c other');",
        "CREATE TABLE t (a text DEFAULT '\\i x');",
        "SELECT E'\\\\set\\'';",
        "DO $$ BEGIN RAISE NOTICE '\\c'; END $$;",
        "CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $body$ SELECT '\\gexec' $body$;",
        "-- \\c other\nSELECT 1;",
        "/* \\i x.sql */ SELECT 1;",
        "COPY t (a) FROM stdin;\n\\c\n\\i x\n\\.\n",
        "CREATE TABLE \"\\c\" (a int);",
    ] {
        let (problems, notes) = noted(sql);
        assert_eq!((problems, notes), (vec![], vec![]), "{sql}");
    }
}

#[test]
fn a_balanced_begin_commit_is_skipped_and_named() {
    // MusicBrainz's shape: \set ON_ERROR_STOP 1, then the whole file in BEGIN … COMMIT.
    let file = "\\set ON_ERROR_STOP 1\nBEGIN;\n\nSET search_path = 'app';\nCREATE TABLE a (id int);\n\nCOMMIT;\n";
    let (problems, notes) = noted(file);
    assert_eq!(problems, vec![]);
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(
        notes[1].1.starts_with("lines 2–7: `BEGIN;` … `COMMIT;`"),
        "{notes:?}"
    );
    // pg_dump's BLOBS section between other statements; other spellings.
    for sql in [
        "CREATE TABLE a (id int);\nBEGIN;\nSELECT pg_catalog.lo_open('16385', 131072);\nSELECT pg_catalog.lowrite(0, '\\x41');\nSELECT pg_catalog.lo_close(0);\nCOMMIT;\nALTER TABLE a ADD PRIMARY KEY (id);\n",
        "START TRANSACTION;\nCREATE TABLE a (id int);\nEND;\n",
        "begin transaction;\nCREATE TABLE a (id int);\ncommit work;\nBEGIN;\nCOMMIT;\n",
    ] {
        let (problems, notes) = noted(sql);
        assert_eq!(problems, vec![], "{sql}");
        assert!(notes.iter().any(|(_, n)| n.contains("one transaction")), "{sql}");
    }
    // Anything else stays refused.
    for (sql, line, why) in [
        (
            "BEGIN;\nCREATE TABLE a (id int);\n",
            1,
            "without its COMMIT",
        ),
        (
            "CREATE TABLE a (id int);\nCOMMIT;\n",
            2,
            "transaction control",
        ),
        ("BEGIN;\nBEGIN;\nCOMMIT;\nCOMMIT;\n", 2, "second BEGIN"),
        (
            "BEGIN ISOLATION LEVEL SERIALIZABLE;\nCOMMIT;\n",
            1,
            "transaction control",
        ),
        (
            "BEGIN;\nCREATE TABLE a (id int);\nROLLBACK;\n",
            1,
            "without its COMMIT",
        ),
        (
            "BEGIN;\nSELECT 1;\nCOMMIT AND CHAIN;\n",
            1,
            "without its COMMIT",
        ),
        ("BEGIN;\nSAVEPOINT s;\nCOMMIT;\n", 2, "transaction control"),
    ] {
        let (problems, _) = noted(sql);
        assert!(
            problems.iter().any(|(l, m)| *l == line && m.contains(why)),
            "{sql}: {problems:?}"
        );
    }
    // A gate is one query: no wrapper.
    assert!(!ok("BEGIN;\nSELECT true AS ready;\nCOMMIT;", SqlRole::Gate));
}

#[test]
fn a_byte_order_mark_is_skipped_at_the_start_only() {
    let (problems, notes) = noted("\u{feff}CREATE TABLE t (a int);\n");
    assert_eq!(problems, vec![]);
    assert!(notes[0].1.contains("byte-order mark"), "{notes:?}");
    // Fed one byte at a time.
    let mut c = ScriptChecker::new("t.sql");
    for b in "\u{feff}\\set ON_ERROR_STOP 1\nSELECT 1;\n".as_bytes() {
        c.feed(std::slice::from_ref(b));
    }
    assert_eq!(c.finish(), vec![]);
    // Elsewhere it is a character like any other (and no identifier).
    assert!(!ok(
        "CREATE TABLE t (a int);\n\u{feff}CREATE TABLE u (a int);",
        SqlRole::Script
    ));
    let gate = check("g.sql", "\u{feff}SELECT true AS ready", SqlRole::Gate);
    assert!(gate[0].message.contains("byte-order mark"), "{gate:?}");
    // A file shorter than a mark, and one that starts like it.
    assert!(ok("", SqlRole::Script));
    assert!(ok("SELECT '\u{fec0}';", SqlRole::Script));
}

#[test]
fn a_file_written_for_standard_conforming_strings_off_is_named() {
    let (problems, _) =
        noted("INSERT INTO t VALUES (1, 'O\\'Reilly');\nINSERT INTO t VALUES (2, 'D\\'Arcy');\n");
    assert!(!problems.is_empty());
    assert!(
        problems[0].1.contains("standard_conforming_strings = off")
            && problems[0].1.contains("line 1"),
        "{problems:?}"
    );
    let (problems, _) =
        noted("SET standard_conforming_strings = off;\nINSERT INTO t VALUES ('O\\'Reilly');\n");
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].1.contains("legacy"), "{problems:?}");
}

/// A string that ends with a backslash (`'\\'`, `'/\\Slash/\\'`) is standard SQL; a
/// later refusal that no misreading of quotes explains (PostgREST's fixtures: a `COPY
/// … TO` file 150 lines after `('\\')`) is not blamed on a legacy setting.
#[test]
fn a_refusal_unrelated_to_quotes_is_not_blamed_on_a_legacy_setting() {
    let sql = "INSERT INTO names VALUES ('\\');\nINSERT INTO names VALUES ('/\\Slash/\\Beast/\\');\n\nCOPY (SELECT 1) TO '/tmp/x.csv' WITH csv;\n";
    let (problems, _) = noted(sql);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].1.contains("COPY … TO"), "{problems:?}");
    assert!(
        !problems[0].1.contains("standard_conforming_strings"),
        "{problems:?}"
    );
    // A misread quote still is: the meta-command the rest of the line becomes.
    let (problems, _) = noted("INSERT INTO names VALUES ('\\');\nCOPY (SELECT 1) TO '/tmp/x.csv';\nINSERT INTO t VALUES ('D\\'Arcy');\n");
    assert!(
        problems
            .iter()
            .any(|p| p.1.contains("standard_conforming_strings = off")),
        "{problems:?}"
    );
}

#[test]
fn a_new_enum_value_used_in_the_same_file_is_warned_about_whatever_the_chunking() {
    let sql = "CREATE TYPE mood AS ENUM ('sad');\nALTER TYPE public.mood ADD VALUE IF NOT EXISTS 'happy' AFTER 'sad';\nALTER TYPE mood RENAME VALUE 'sad' TO 'blue';\nINSERT INTO t (m) VALUES ('happy');\nUPDATE t SET m = 'happy';\nCREATE TABLE u (m mood DEFAULT 'ok');\n";
    for chunk in [1, 3, 7, 4096] {
        let mut c = ScriptChecker::new("t.sql");
        for piece in sql.as_bytes().chunks(chunk) {
            c.feed(piece);
        }
        let checked = c.finish_noted();
        assert_eq!(checked.problems, vec![], "chunk {chunk}");
        let warnings: Vec<(usize, &str)> = checked
            .warnings
            .iter()
            .map(|w| (w.line, w.message.as_str()))
            .collect();
        assert_eq!(warnings.len(), 1, "chunk {chunk}: {warnings:?}");
        assert_eq!(warnings[0].0, 4);
        assert!(
            warnings[0].1.contains("'happy'") && warnings[0].1.contains("at line 2"),
            "{warnings:?}"
        );
    }
    // A value added and not used, or used in another file, draws nothing.
    let c = check_noted(
        "t.sql",
        "ALTER TYPE mood ADD VALUE 'x';\nSELECT 1;\n",
        SqlRole::Script,
    );
    assert_eq!(c.warnings, vec![]);
}

#[test]
fn a_label_that_is_no_use_of_the_new_value_draws_no_warning() {
    // Issue 47: another enum's definition, a comment, a setting, a cast to another
    // type, a default of a column of another type are no use of e's new 'b'.
    let quiet = "CREATE TYPE e AS ENUM ('a');\nALTER TYPE e ADD VALUE 'b';\nCREATE TYPE e2 AS ENUM ('a', 'b');\nCOMMENT ON TYPE e2 IS 'b';\nSET LOCAL application_name = 'b';\nSELECT 'b'::e2;\nCREATE TABLE t2 (x e2 DEFAULT 'b', y public.e2 DEFAULT 'b');\nALTER TYPE e ADD VALUE 'c' AFTER 'b';\n";
    let c = check_noted("t.sql", quiet, SqlRole::Script);
    assert_eq!(c.warnings, vec![], "{:?}", c.warnings);
    // A use: a default of a column of the type, a cast to it, a plain constant.
    for (used, line) in [
        ("CREATE TABLE t (x e DEFAULT 'b');", 3),
        ("SELECT 'b'::public.e;", 3),
        ("INSERT INTO t VALUES ('b');", 3),
    ] {
        let sql = format!("CREATE TYPE e AS ENUM ('a');\nALTER TYPE e ADD VALUE 'b';\n{used}\n");
        let c = check_noted("t.sql", &sql, SqlRole::Script);
        assert_eq!(c.warnings.len(), 1, "{used}: {:?}", c.warnings);
        assert_eq!(c.warnings[0].line, line, "{used}");
    }
}

#[test]
fn syntax_newer_than_the_oldest_target_is_reported() {
    let sql = "CREATE TABLE t (a int, b int GENERATED ALWAYS AS (a * 2) VIRTUAL);\nMERGE INTO t USING u ON true WHEN MATCHED THEN DELETE;\n";
    let check = |min| {
        check_reader_for("t.sql", &mut sql.as_bytes(), SqlRole::Script, min)
            .unwrap()
            .into_iter()
            .map(|p| (p.line, p.message))
            .collect::<Vec<_>>()
    };
    let old = check(Some(140000));
    assert_eq!(old.len(), 2, "{old:?}");
    assert!(old[0].0 == 1 && old[0].1.contains("VIRTUAL"), "{old:?}");
    assert!(old[1].0 == 2 && old[1].1.contains("MERGE"), "{old:?}");
    assert_eq!(check(Some(150000)).len(), 1);
    assert_eq!(check(Some(180000)), vec![]);
    assert_eq!(check(None), vec![]);
}

pub(crate) mod differential {
    //! The lexer must split exactly where PostgreSQL's parser splits, on any text
    //! the parser accepts; and must not depend on how the bytes are chunked.
    use super::super::*;
    use crate::lex::lexer::{Keep, Lexer, Mode};
    use proptest::prelude::*;

    fn content() -> BoxedStrategy<String> {
        proptest::collection::vec(
            prop_oneof![
                Just("a"),
                Just(" "),
                Just(";"),
                Just("'"),
                Just("\""),
                Just("$"),
                Just("\\"),
                Just("\n"),
                Just("-"),
                Just("--"),
                Just("/*"),
                Just("*/"),
                Just("*"),
                Just("COMMIT"),
                Just("é"),
                Just("$$"),
                Just("$q$"),
                Just("\u{b}"),
                Just("\u{c}"),
            ],
            0..8,
        )
        .prop_map(|v| v.concat())
        .boxed()
    }

    fn gap() -> BoxedStrategy<String> {
        prop_oneof![
            Just(" "),
            Just("\n"),
            Just(" \t\n  "),
            Just(" -- c;'\n"),
            Just("\n-- c\n "),
            Just("/* c; ' */"),
            Just("\r\n"),
            // Vertical tab and form feed: whitespace too (scan.l's `space`).
            Just("\u{b}\u{c} \n"),
            Just(""),
        ]
        .prop_map(str::to_string)
        .boxed()
    }

    fn literal() -> BoxedStrategy<String> {
        let tags = prop_oneof![Just(""), Just("q"), Just("tag"), Just("x1")];
        prop_oneof![
            content().prop_map(|c| format!("'{}'", c.replace('\'', "''"))),
            content().prop_map(|c| format!("E'{}'", c.replace('\\', "\\\\").replace('\'', "\\'"))),
            (content(), gap(), content()).prop_map(|(a, g, b)| format!(
                "E'{}'{g}'{}'",
                a.replace('\\', "\\\\").replace('\'', "''"),
                b.replace('\\', "\\\\").replace('\'', "\\'")
            )),
            (content(), gap(), content()).prop_map(|(a, g, b)| format!(
                "'{}'{g}'{}'",
                a.replace('\'', "''"),
                b.replace('\'', "''")
            )),
            (tags, content()).prop_map(|(t, c)| {
                let close = format!("${t}$");
                format!("{close}{}{close}", c.replace('$', ""))
            }),
            content().prop_map(|c| format!("\"{}x\"", c.replace('"', "\"\""))),
            Just("1".to_string()),
            Just("a$b".to_string()),
            // `$` inside an identifier never opens a dollar quote.
            Just("a$q$x".to_string()),
            Just("x$$y".to_string()),
        ]
        .boxed()
    }

    fn statement() -> BoxedStrategy<String> {
        prop_oneof![
            (literal(), gap()).prop_map(|(l, g)| format!("SELECT{g} {l}")),
            (literal(), gap(), literal())
                .prop_map(|(a, g, b)| format!("INSERT INTO t VALUES ({a},{g}{b})")),
            Just("COMMIT".to_string()),
            Just("VACUUM".to_string()),
            literal().prop_map(|l| format!(
                "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT {l}; SELECT CASE WHEN true THEN 1 END; END"
            )),
            literal().prop_map(|l| format!("DO $body$ BEGIN PERFORM {l}; END $body$")),
            literal().prop_map(|l| format!("CREATE TABLE t (begin int, x text DEFAULT {l})")),
            literal().prop_map(|l| format!(
                "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES ({l}); INSERT INTO b VALUES (1))"
            )),
            // The other first words of DML, as a statement after a DML statement's `;`
            // meets them (lexer::dml_boundary), and words that only begin like them.
            (literal(), gap()).prop_map(|(l, g)| format!("select{g}{l}")),
            literal().prop_map(|l| format!("VALUES ({l})")),
            literal().prop_map(|l| format!("WITH x AS (SELECT {l}) SELECT * FROM x")),
            literal().prop_map(|l| format!(
                "MERGE INTO t USING s ON true WHEN MATCHED THEN UPDATE SET a = {l}"
            )),
            literal().prop_map(|l| format!("UPDATE t SET a = {l}")),
            Just("TABLE t".to_string()),
            Just("DELETE FROM t".to_string()),
            Just("BEGIN".to_string()),
            Just("insert_x".to_string()),
        ]
    .boxed()
    }

    fn script() -> BoxedStrategy<String> {
        proptest::collection::vec((statement(), gap(), gap()), 1..6)
            .prop_map(|v| {
                v.into_iter()
                    .map(|(s, g1, g2)| format!("{g1}{s}{g2};"))
                    .collect::<String>()
            })
            .boxed()
    }

    /// Where the lexer ends each statement of `sql` fed in pieces of `chunk` bytes.
    fn ends_in_pieces(sql: &str, chunk: usize) -> Vec<usize> {
        let mut c = ScriptChecker::new("p.sql");
        for piece in sql.as_bytes().chunks(chunk) {
            c.feed(piece);
        }
        c.finish_ends()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]
        #[test]
        fn statement_ends_match_postgres(sql in script(), chunk in 1usize..64) {
            if let Some(theirs) = super::super::parser::statement_ends(&sql) {
                prop_assert_eq!(ends_in_pieces(&sql, chunk), theirs, "{:?}", sql);
            }
        }

        #[test]
        fn chunking_does_not_change_the_verdict(sql in script(), chunk in 1usize..17) {
            let whole = check("p.sql", &sql, SqlRole::Script);
            let mut c = ScriptChecker::new("p.sql");
            for piece in sql.as_bytes().chunks(chunk) {
                c.feed(piece);
            }
            prop_assert_eq!(c.finish(), whole);
        }
    }

    /// A raw run of the bytes that open, close or escape something (quotes and their
    /// prefixes, dollar tags, comments, every whitespace byte, `;`), in any order and
    /// unescaped; also what the tokenizer's differential test reads (`tokens.rs`).
    pub(crate) fn raw_run() -> BoxedStrategy<String> {
        let atom = prop_oneof![
            Just("'"),
            Just("''"),
            Just("E'"),
            Just("e'"),
            Just("U&'"),
            Just("U&\""),
            Just("B'"),
            Just("X'"),
            Just("N'"),
            Just("\\"),
            Just("\""),
            Just("$$"),
            Just("$q$"),
            Just("$1"),
            Just("$é$"),
            Just("--"),
            Just("/*"),
            Just("*/"),
            Just(";"),
            Just(" "),
            Just("\n"),
            Just("\r"),
            Just("\u{b}"),
            Just("\u{c}"),
            Just("\t"),
            Just("a"),
            Just("é"),
            Just("1"),
            Just("-"),
            Just("+"),
            Just(","),
            Just("("),
            Just(")"),
            Just("COMMIT"),
        ];
        proptest::collection::vec(atom, 0..14)
            .prop_map(|v| v.concat())
            .boxed()
    }

    /// `SELECT` and a raw run, then another statement: what PostgreSQL parses must
    /// split where airlock's lexer splits. Most such texts do not parse and are
    /// skipped; those that do are where a reader that reads one byte otherwise would
    /// see another statement.
    fn raw_script() -> BoxedStrategy<String> {
        raw_run()
            .prop_map(|r| format!("SELECT {r};\nSELECT 2;"))
            .boxed()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5000))]
        #[test]
        fn statement_ends_match_postgres_on_raw_text(sql in raw_script(), chunk in 1usize..64) {
            if let Some(theirs) = super::super::parser::statement_ends(&sql) {
                prop_assert_eq!(ends_in_pieces(&sql, chunk), theirs, "{:?}", sql);
            }
        }
    }

    /// A vertical tab before the newline that lets a string constant continue: space
    /// that is no newline since PostgreSQL 17 (scan.l's `non_newline_space`), so an
    /// `E'…'` constant goes on in the next quote, where `\'` is an escaped quote. Read as
    /// the constant's end, the `;` PostgreSQL reads outside it was inside a constant of
    /// airlock's, and the statement after it, which the server runs, was never judged.
    #[test]
    fn a_vertical_tab_before_a_continuation_hides_no_statement() {
        let sql = "SELECT E'a'\u{b}\n'\\'X' ; DROP TABLE x; --'\n;\n";
        let theirs = super::super::parser::statement_ends(sql).expect("PostgreSQL parses it");
        assert_eq!(ends_in_pieces(sql, sql.len()), theirs, "{sql:?}");
        let statements: Vec<&str> = split_all("p.sql", sql.as_bytes())
            .expect("splits")
            .into_iter()
            .filter_map(|p| match p {
                Piece::Sql { start, end, .. } => Some(sql[start as usize..end as usize].trim()),
                _ => None,
            })
            .collect();
        assert!(
            statements.contains(&"DROP TABLE x;"),
            "the statement the server runs is one of airlock's: {statements:?}"
        );
    }

    /// DML where the `set_config` watch has work: calls, near misses, names cut by
    /// constants, comments and chunk ends.
    fn watched() -> BoxedStrategy<String> {
        let name = prop_oneof![
            Just("set_config"),
            Just("SET_CONFIG"),
            Just("pg_catalog.set_config"),
            Just("xset_config"),
            Just("set_configs"),
            Just("set_conf"),
            Just("s"),
            Just("set_config/**/"),
            Just("set_config --c\n"),
        ];
        let args = prop_oneof![
            Just("('standard_conforming_strings', 'off', false)"),
            Just("( 'client_encoding' , 'SJIS', true)"),
            Just("('search_path', '', false)"),
            Just("('standard_conforming_strings', 'on', false)"),
            Just("(x, 'off')"),
            Just("('a''b', ')')"),
            Just(""),
        ];
        (name, args, literal(), gap())
            .prop_map(|(n, a, l, g)| {
                format!("SELECT {n}{a},{g}{l}, (s), 'x'::text, n.nspname FROM (SELECT {l}) s")
            })
            .boxed()
    }

    fn mixed_script() -> BoxedStrategy<String> {
        proptest::collection::vec((prop_oneof![statement(), watched()], gap(), gap()), 1..6)
            .prop_map(|v| {
                v.into_iter()
                    .map(|(s, g1, g2)| format!("{g1}{s}{g2};"))
                    .collect::<String>()
            })
            .boxed()
    }

    /// What a lexer reported, where it ended, and the first line that showed a legacy
    /// `\'` (named in later problems).
    fn lexed(sql: &str, chunk: usize, mode: Mode, keep: Keep, byte_by_byte: bool) -> String {
        let mut l = Lexer::new(mode, keep);
        l.byte_by_byte = byte_by_byte;
        for piece in sql.as_bytes().chunks(chunk) {
            l.feed(piece);
        }
        l.finish();
        let legacy = (1..=sql.lines().count() + 1).find(|&n| l.legacy_hint(n).is_some());
        format!(
            "{:?} at {}, legacy quote {legacy:?}, ends {:?}, long {}",
            l.events,
            l.offset(),
            l.ends,
            l.long_dml
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]
        /// The lexer's whole-token fast paths (the first word of a statement, constants
        /// and Normal text inside DML) end in exactly the state reading byte by byte
        /// does: the same statements, ends, lines and problems, whatever the chunking.
        #[test]
        fn fast_paths_read_as_byte_by_byte(
            sql in mixed_script(),
            chunk in prop_oneof![1usize..17, Just(1 << 20)],
        ) {
            for (mode, keep) in [
                (Mode::Script, Keep::NonDml),
                (Mode::Script, Keep::Copy),
                (Mode::Query, Keep::Copy),
            ] {
                prop_assert_eq!(
                    lexed(&sql, chunk, mode, keep, false),
                    lexed(&sql, chunk, mode, keep, true),
                    "{:?}", sql
                );
            }
        }
    }

    /// Multi-row INSERTs whose stops (parentheses, quotes, newlines, words that start
    /// with `s`) crowd together, as dumps write them: a run stops at several of them
    /// in a few bytes, and finds a constant's close (`memchr`).
    fn crowded_rows() -> BoxedStrategy<String> {
        let cell = prop_oneof![
            literal(),
            Just("'a-1'".to_string()),
            Just("'a''b'".to_string()),
            Just("'x\\'".to_string()),
            Just("'two\nlines'".to_string()),
            Just("'(s);'".to_string()),
            Just("s".to_string()),
            Just("sum(s)".to_string()),
            Just("set_config('a', 'b', false)".to_string()),
            Just("(1)".to_string()),
            Just("'x'::text".to_string()),
            Just("'x' ".to_string()),
            Just("\n".to_string()),
            Just("42".to_string()),
            // Constants that are not plain, or longer than a wide read; brackets,
            // stops, word bytes before a quote, lexing settings set in a row.
            Just("E'x\\'".to_string()),
            Just("U&'d'".to_string()),
            Just("b'1'".to_string()),
            Just("''".to_string()),
            Just(format!("'{}'", "w".repeat(70))),
            Just("ARRAY[1]".to_string()),
            Just("-1".to_string()),
            Just("'é'".to_string()),
            Just("x.s".to_string()),
            Just("((1), (2))".to_string()),
            Just("'a''".to_string()),
            Just(")".to_string()),
            Just("'(('".to_string()),
            Just("set_config('standard_conforming_strings', 'off', false)".to_string()),
            Just("x.SET_CONFIG('client_encoding', 'SJIS', true)".to_string()),
        ];
        let row = proptest::collection::vec(cell, 1..6).prop_map(|c| format!("({})", c.join(", ")));
        (proptest::collection::vec(row, 1..10), gap())
            .prop_map(|(rows, g)| format!("INSERT INTO t (a, s) VALUES {}{g}", rows.join(",\n")))
            .boxed()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// Stops read from a kept block end where reading byte by byte does.
        #[test]
        fn crowded_rows_read_as_byte_by_byte(
            rows in proptest::collection::vec(crowded_rows(), 1..4),
            chunk in prop_oneof![1usize..64, Just(1 << 20)],
        ) {
            let sql: String = rows.iter().map(|r| format!("{r};\n")).collect();
            for (mode, keep) in [(Mode::Script, Keep::NonDml), (Mode::Query, Keep::Copy)] {
                prop_assert_eq!(
                    lexed(&sql, chunk, mode, keep, false),
                    lexed(&sql, chunk, mode, keep, true),
                    "{:?}", sql
                );
            }
        }
    }

    /// A data file's rows as the lexer's DML runs read them: many to a 64-byte
    /// block, or one across several, and among them, at any place, each thing that
    /// must stop a run (comments, quoted identifiers, dollar quotes,
    /// psql variables and meta-commands, `E'…'` constants, a backslash before a quote,
    /// `set_config` calls, nested or stray parentheses, `;` inside them, MERGE and
    /// statements that are not DML) and the near misses it may read past (`::` casts,
    /// a lone `-` or `/`, `_c` in other words, an `e` that prefixes nothing).
    fn rows_file() -> BoxedStrategy<String> {
        let cell = prop_oneof![
            8 => Just("1".to_string()),
            8 => Just("'alpha-1'".to_string()),
            4 => "[a-z ]{0,70}".prop_map(|w| format!("'{w}'")),
            2 => Just("'it''s'".to_string()),
            2 => Just("'two\nlines'".to_string()),
            2 => Just("'a'\n'b'".to_string()),
            2 => Just("-1".to_string()),
            2 => Just("4/2".to_string()),
            2 => Just("'x'::text".to_string()),
            1 => Just("x:::y".to_string()),
            1 => Just("a[1:2]".to_string()),
            1 => Just(":v".to_string()),
            1 => Just(":'v'".to_string()),
            1 => Just("-- c\n1".to_string()),
            1 => Just("/* c; ' */ 1".to_string()),
            1 => Just("\"Id\"".to_string()),
            1 => Just("$1".to_string()),
            1 => Just("$$a;'$$".to_string()),
            1 => Just("E'a\\'b'".to_string()),
            1 => Just("e'x'".to_string()),
            1 => Just("be'x'".to_string()),
            1 => Just("'\\'".to_string()),
            1 => Just("'a\\b'".to_string()),
            1 => Just("now()".to_string()),
            1 => Just("((1))".to_string()),
            1 => Just("')'".to_string()),
            1 => Just(")".to_string()),
            1 => Just("(1; 2)".to_string()),
            1 => Just("created_at".to_string()),
            1 => Just("set_config('a', 'b', false)".to_string()),
            1 => Just("set_config('standard_conforming_strings', 'off', false)".to_string()),
            1 => Just("SET_CONFIG('client_encoding', 'SJIS', true)".to_string()),
            1 => Just("x.set_config('client_encoding', 'SJIS', true)".to_string()),
            1 => Just("xset_config('client_encoding', 'SJIS')".to_string()),
            1 => Just("set_configs('client_encoding', 'SJIS')".to_string()),
            1 => Just("'é'".to_string()),
            1 => Just("\\echo x\n1".to_string()),
            1 => Just("x\u{0}".to_string()),
        ];
        let row = proptest::collection::vec(cell, 1..5).prop_map(|c| format!("({})", c.join(", ")));
        let statement = prop_oneof![
            12 => (proptest::collection::vec(row, 1..3), "[a-z]{0,9}").prop_map(|(rows, pad)| {
                format!("INSERT INTO t{pad} (a, b) VALUES {}", rows.join(", "))
            }),
            1 => Just("MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE".to_string()),
            1 => Just("CREATE TABLE x (a int)".to_string()),
            1 => Just("UPDATE t SET a = 'x;'".to_string()),
            1 => Just("insert_x".to_string()),
            1 => Just("SELECT\n1".to_string()),
        ];
        let gap = prop_oneof![
            12 => Just("\n"),
            2 => Just(""),
            2 => Just(" \n  "),
            1 => Just("\n-- c\n"),
            1 => Just("\r\n"),
            1 => Just("\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n"),
        ];
        proptest::collection::vec((statement, gap), 1..60)
            .prop_map(|v| v.into_iter().map(|(s, g)| format!("{s};{g}")).collect())
            .boxed()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1500))]
        /// The DML runs read a data file as the lexer reads it byte by byte: the same
        /// statements, ends, lines and problems, whatever the pieces.
        #[test]
        fn rows_read_as_byte_by_byte(
            sql in rows_file(),
            chunk in prop_oneof![Just(1usize << 20), 1usize..17, 40usize..400],
        ) {
            let slow = lexed(&sql, chunk, Mode::Script, Keep::NonDml, true);
            let fast = lexed(&sql, chunk, Mode::Script, Keep::NonDml, false);
            prop_assert_eq!(&fast, &slow, "{:?}", sql);
        }
    }

    /// A DML statement of exactly [`MAX_STATEMENT`] bytes before its `;` is not a long
    /// one, one byte more is, whether the DML runs (reading it after two short rows, in
    /// one piece) or the byte-by-byte reading ends it.
    #[test]
    fn a_long_statement_is_long_by_the_byte() {
        for (len, long) in [(MAX_STATEMENT, false), (MAX_STATEMENT + 1, true)] {
            let head = "INSERT INTO t VALUES ('";
            let fill = "x".repeat(len - head.len() - 2);
            let sql = format!(
                "INSERT INTO t VALUES (1);\nINSERT INTO t VALUES (2);\n{head}{fill}');\nINSERT INTO t VALUES (3);\n"
            );
            let lane = lexed(&sql, sql.len(), Mode::Script, Keep::NonDml, false);
            assert!(lane.ends_with(&format!("long {long}")), "{len}: {lane}");
            assert_eq!(
                lane,
                lexed(&sql, sql.len(), Mode::Script, Keep::NonDml, true),
                "{len}"
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        #[test]
        fn copy_data_comes_back_exactly_whatever_the_chunking(
            before in script(),
            rows in proptest::collection::vec(content(), 0..6),
            after in script(),
            chunk in 1usize..17,
        ) {
            let data: String = rows.iter().map(|r| format!("{r}\n")).collect();
            let sql = format!("{before}\nCOPY t (a, begin) FROM stdin;\n{data}\\.\n{after}");
            let whole = split_all("p.sql", sql.as_bytes());
            let mut s = Splitter::new("p.sql");
            let mut out = Vec::new();
            for piece in sql.as_bytes().chunks(chunk) {
                s.feed(piece, &mut out);
            }
            let chunked = s.finish(&mut out).map(|()| out);
            prop_assert_eq!(&chunked, &whole);
            // When the script before it ends at a statement boundary (nothing left
            // open), the data is exactly the rows.
            let probe = format!("{before}\nSELECT 1;");
            let closed = match split_all("b.sql", probe.as_bytes()) {
                Ok(p) => matches!(p.last(), Some(Piece::Sql { start, end, .. })
                    if &probe[*start as usize..*end as usize] == "\nSELECT 1;"),
                Err(_) => false,
            };
            if let (true, Ok(pieces)) = (closed, whole) {
                let copies: Vec<&Piece> =
                    pieces.iter().filter(|p| matches!(p, Piece::Copy { .. })).collect();
                prop_assert_eq!(copies.len(), 1);
                if let Piece::Copy { data: range, .. } = copies[0] {
                    prop_assert_eq!(&sql[range.start as usize..range.end as usize], data.as_str());
                }
                let mut at = 0;
                for p in &pieces {
                    let start = match p {
                        Piece::Sql { start, .. } | Piece::Skip { start, .. } => *start,
                        Piece::Copy { stmt, .. } | Piece::CopyBegin { stmt, .. } => stmt.start,
                    };
                    prop_assert_eq!(start, at);
                    at = p.end();
                }
                prop_assert_eq!(at, sql.len() as u64);
            }
        }
    }
}
