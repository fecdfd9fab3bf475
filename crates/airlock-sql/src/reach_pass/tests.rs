//! The one pass lists exactly what `reaches_in` lists, whatever the bytes and however
//! they are cut into reads.

use super::super::reach::may_call_outside;
use super::super::{check_script_reaching, reaches_in, Reach, ScriptChecker};
use super::{NameWatch, Reaches};
use proptest::prelude::*;

/// The one pass over `sql` fed in reads of `chunk` bytes, and whether it settled the
/// file itself (false: it asked for `reaches_in`).
fn one_pass(sql: &[u8], chunk: usize) -> (Vec<Reach>, bool) {
    one_pass_as(sql, chunk, false)
}

/// [`one_pass`] of an online tier's file (`online`).
fn one_pass_as(sql: &[u8], chunk: usize, online: bool) -> (Vec<Reach>, bool) {
    let mut c = ScriptChecker::new("f.sql").online(online).reaching();
    for piece in sql.chunks(chunk.max(1)) {
        c.feed(piece);
    }
    match c.finish_reaching().1.expect("asked for") {
        Reaches::Found(found) => (found, true),
        Reaches::ReadAgain => (reaches_in("f.sql", &mut &sql[..]).expect("read"), false),
    }
}

fn second_read(sql: &[u8]) -> Vec<Reach> {
    reaches_in("f.sql", &mut &sql[..]).expect("read")
}

/// Through the public entry, in its own 256 KiB reads.
fn public(sql: &[u8]) -> (Vec<Reach>, bool) {
    let (_, reaches) = check_script_reaching("f.sql", &mut &sql[..], false, None).expect("read");
    match reaches {
        Reaches::Found(found) => (found, true),
        Reaches::ReadAgain => (second_read(sql), false),
    }
}

/// Scripts, and whether one pass settles them (no DML names a function that
/// reaches, none is over 8 MiB, no problem).
const SCRIPTS: &[(&str, bool)] = &[
    ("INSERT INTO t VALUES (1, 'alpha');\nSELECT 1;\n", true),
    ("CREATE ROLE x;\nINSERT INTO t VALUES (1);\nALTER ROLE x SET work_mem = '1MB';\n", true),
    // Lint refuses it (not in a transaction): the pass does not settle a refused file.
    ("CREATE ROLE x;\nALTER SYSTEM SET work_mem = '1MB';\n", false),
    ("SELECT 1;\nSELECT dblink_exec('x', 'y');\n", false),
    ("SELECT 1;\nINSERT INTO t SELECT * FROM public.DBLINK('c', 'q') AS r(i int);\n", false),
    ("UPDATE t SET f = pg_catalog.PG_READ_FILE('/etc/passwd');\n", false),
    ("select Lo_Import('/tmp/x');\n", false),
    ("SELECT pg_create_physical_replication_slot('s');\n", false),
    ("INSERT INTO t VALUES ('dblink_exec(1)');\n", false),
    ("SELECT pg_catalog.setval('s', 1);\nINSERT INTO hello_world VALUES (1);\n", true),
    ("INSERT INTO t VALUES ('xlo_import', 'apg_read_file', 'dblinkage');\n", false),
    ("INSERT INTO t VALUES ('xlo_import', 'apg_read_file');\n", true),
    ("-- lo_import in a comment between statements\nSELECT 1;\n", false),
    (
        "DO $$ BEGIN PERFORM dblink_exec('x', 'y'); END $$;\nINSERT INTO t VALUES (1);\n",
        false,
    ),
    (
        "CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $$ SELECT 1 $$;\nCREATE EXTENSION dblink;\n",
        false,
    ),
    ("CREATE EXTENSION postgres_fdw;\nGRANT CONNECT ON DATABASE d TO u;\n", true),
    ("COPY t FROM stdin;\nlo_import\tpg_read_file\n\\.\nSELECT 1;\n", false),
    ("COPY t FROM stdin;\nplain\tdata\n\\.\nCREATE ROLE r;\n", true),
    (
        "ALTER TYPE e ADD VALUE 'v';\nINSERT INTO t VALUES ('v');\nSELECT lo_export(1, 'x');\n",
        false,
    ),
    ("ALTER TYPE e ADD VALUE 'v';\nINSERT INTO t VALUES ('v');\nDROP ROLE r;\n", true),
    ("CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT (1; END;", false),
    ("BEGIN;\nALTER DATABASE d SET work_mem = 1;\nCOMMIT;\n", true),
    ("\u{feff}INSERT INTO t VALUES (1);\nCOMMENT ON TABLESPACE ts IS 'x';\n", true),
    ("MERGE INTO t USING s ON t.i = s.i WHEN MATCHED THEN DELETE;\n", true),
    ("\\set ON_ERROR_STOP 1\nSELECT 1;\nCREATE ROLE x;\n", true),
    ("SELECT lo\\gset\n_import(1);\n", false),
    ("SELECT 1;\nCREATE ROLE x; SELECT 'unterminated", false),
];

/// An online tier's file: its lexer refuses wrappers and reports DML, which the pass
/// leaves to the raw-byte watch as in any file.
#[test]
fn an_online_tier_lists_what_a_second_read_lists() {
    for (sql, settled) in [
        (
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a);\n",
            true,
        ),
        (
            "CREATE INDEX CONCURRENTLY i ON t (a);\nGRANT r TO u;\n",
            false,
        ),
        (
            "BEGIN;\nCREATE INDEX CONCURRENTLY i ON t (a);\nCOMMIT;\n",
            false,
        ),
        ("SELECT lo_import('x');\n", false),
    ] {
        for chunk in [1, 5, 1 << 20] {
            let (found, alone) = one_pass_as(sql.as_bytes(), chunk, true);
            assert_eq!(found, second_read(sql.as_bytes()), "{sql:?}");
            assert_eq!(alone, settled, "{sql:?}");
        }
    }
}

#[test]
fn hand_written_scripts_list_what_a_second_read_lists() {
    for (sql, settled) in SCRIPTS {
        for chunk in [1, 2, 3, 5, 7, 11, 13, 64, 1 << 20] {
            let (found, alone) = one_pass(sql.as_bytes(), chunk);
            assert_eq!(
                found,
                second_read(sql.as_bytes()),
                "{sql:?} in reads of {chunk}"
            );
            assert_eq!(alone, *settled, "{sql:?} in reads of {chunk}");
        }
    }
}

#[test]
fn what_is_not_utf8_lists_what_a_second_read_lists() {
    let mut sql = b"CREATE ROLE a;\nINSERT INTO t VALUES ('".to_vec();
    sql.extend_from_slice(&[0xff, 0xfe]);
    sql.extend_from_slice(b"');\nCREATE ROLE b;\n");
    for chunk in [1, 3, 40, 1 << 20] {
        let (found, alone) = one_pass(&sql, chunk);
        assert_eq!(found, second_read(&sql));
        assert!(!alone, "a file lint refuses is read again");
    }
}

/// A statement over 8 MiB: DML is named (too long to look into), whether its text was
/// kept or not (after an `ADD VALUE`, lint keeps DML text).
#[test]
fn dml_over_8_mib_is_named_as_a_second_read_names_it() {
    for head in ["SELECT 1;\n", "ALTER TYPE e ADD VALUE 'v';\n"] {
        let mut sql = format!("{head}INSERT INTO t VALUES ('");
        sql.push_str(&"x".repeat(9 << 20));
        sql.push_str("');\nCREATE ROLE r;\n");
        let (found, alone) = public(sql.as_bytes());
        assert!(!alone, "{head}");
        assert_eq!(found, second_read(sql.as_bytes()), "{head}");
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].statement.contains("over 8 MiB"), "{found:?}");
    }
    // Just under the limit: settled in one pass, nothing named.
    let mut sql = String::from("INSERT INTO t VALUES ('");
    sql.push_str(&"x".repeat((8 << 20) - 30));
    sql.push_str("');\n");
    let (found, alone) = public(sql.as_bytes());
    assert!(alone && found.is_empty(), "{found:?}");
    assert_eq!(found, second_read(sql.as_bytes()));
}

/// Names cut by the public entry's 256 KiB reads, at every cut.
#[test]
fn names_split_across_256_kib_reads_are_seen() {
    for name in [
        "lo_import",
        "DBLINK",
        "pg_Read_File",
        "pg_x_replication_slot",
    ] {
        for at in 0..=name.len() {
            let pad = (256 << 10) - at - "INSERT INTO t VALUES ('".len() - "');\nSELECT ".len();
            let sql = format!(
                "INSERT INTO t VALUES ('{}');\nSELECT {name}(1);\n",
                "y".repeat(pad)
            );
            assert_eq!(
                &sql.as_bytes()[(256 << 10) - at..][..name.len()],
                name.as_bytes()
            );
            let (found, alone) = public(sql.as_bytes());
            assert!(!alone, "{name} cut at {at}");
            assert_eq!(found, second_read(sql.as_bytes()), "{name} cut at {at}");
        }
    }
}

#[test]
fn the_watch_sees_every_name_at_every_cut() {
    let names = [
        "dblink",
        "dblink_exec",
        "lo_import",
        "LO_EXPORT",
        "pg_read_binary_file",
        "pg_ls_dir",
        "pg_stat_file",
        "pg_file_write",
        "pg_logdir_ls",
        "pg_terminate_backend",
        "PG_CANCEL_BACKEND",
        "pg_reload_conf",
        "pg_rotate_logfile",
        "pg_switch_wal",
        "pg_promote",
        "pg_replication_origin_drop",
        "pg_copy_logical_replication_slot",
    ];
    for name in names {
        for before in ["", " ", "(", ".", "\n"] {
            let text = format!("{before}{name}(1)");
            let bytes = text.as_bytes();
            for a in 0..=bytes.len() {
                for b in a..=bytes.len() {
                    let mut w = NameWatch::default();
                    w.feed(&bytes[..a]);
                    w.feed(&bytes[a..b]);
                    w.feed(&bytes[b..]);
                    assert!(w.hit(), "{text:?} cut at {a}, {b}");
                }
            }
        }
        for miss in [format!("x{name}"), format!("1{name}")] {
            if !miss.contains("replication_") {
                let mut w = NameWatch::default();
                w.feed(miss.as_bytes());
                assert!(!w.hit(), "{miss}");
            }
        }
    }
}

/// Words near the names, in any case, cut anywhere.
fn text() -> BoxedStrategy<Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![
            Just("dblink"),
            Just("DbLiNk_exec"),
            Just("dblin"),
            Just("lo_"),
            Just("LO_import"),
            Just("l"),
            Just("o_"),
            Just("pg_"),
            Just("PG_"),
            Just("read"),
            Just("ls_"),
            Just("stat_file"),
            Just("file_"),
            Just("TERMINATE"),
            Just("replication_"),
            Just("replicatio"),
            Just("catalog"),
            Just("x"),
            Just("_"),
            Just("1"),
            Just(" "),
            Just("("),
            Just("."),
            Just("é"),
            Just("\u{0}"),
        ],
        0..12,
    )
    .prop_map(|v| v.concat().into_bytes())
    .boxed()
}

/// Statements of every kind the pass treats apart: DML with and without names, in
/// constants and comments, statements the parser reads, bodies, COPY data, enum values
/// (after which lint keeps DML text), wrappers, a byte-order mark, bytes that are not
/// UTF-8, psql meta-commands.
fn statement() -> BoxedStrategy<String> {
    let name = prop_oneof![
        Just("lo_import"),
        Just("Lo_Export"),
        Just("dblink"),
        Just("DBLINK_EXEC"),
        Just("pg_read_file"),
        Just("pg_catalog.pg_ls_dir"),
        Just("pg_drop_replication_slot"),
    ];
    let harmless = prop_oneof![
        Just("pg_catalog.setval"),
        Just("xlo_import"),
        Just("hello_world"),
        Just("lower"),
        Just("dblin"),
        Just("pg_catalog.pg_class"),
    ];
    let name = prop_oneof![1 => name, 4 => harmless];
    prop_oneof![
        3 => name.clone().prop_map(|n| format!("SELECT {n}('x')")),
        3 => name.clone().prop_map(|n| format!("INSERT INTO t VALUES ('{n}', 1)")),
        2 => name.clone().prop_map(|n| format!("UPDATE t SET a = 1 /* {n} */ WHERE b = 2")),
        2 => name.clone().prop_map(|n| format!("DO $$ BEGIN PERFORM {n}(1); END $$")),
        2 => name.clone().prop_map(|n| format!(
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $b$ SELECT {n}(1) $b$"
        )),
        2 => name.prop_map(|n| format!("COPY t FROM stdin;\n{n}\tx\n\\.\n")),
        3 => Just("INSERT INTO bench.items (id, note) VALUES (1, 'alpha kilo')".to_string()),
        2 => Just("CREATE ROLE r".to_string()),
        2 => Just("GRANT r TO u".to_string()),
        2 => Just("ALTER DATABASE d SET work_mem = 1".to_string()),
        1 => Just("CREATE EXTENSION postgres_fdw".to_string()),
        1 => Just("CREATE EXTENSION dblink".to_string()),
        2 => Just("CREATE TABLE t (i int)".to_string()),
        1 => Just("ALTER TYPE e ADD VALUE 'v'".to_string()),
        1 => Just("BEGIN".to_string()),
        1 => Just("COMMIT".to_string()),
        1 => Just("\\set ON_ERROR_STOP 1\n".to_string()),
        1 => Just("SELECT lo\\gset\n_import(1)".to_string()),
        1 => Just("MERGE INTO t USING s ON t.i = s.i WHEN MATCHED THEN DELETE".to_string()),
        1 => Just("SELECT (1".to_string()),
    ]
    .boxed()
}

fn script() -> BoxedStrategy<Vec<u8>> {
    let gap =
        prop_oneof![4 => Just(" "), 4 => Just("\n"), 1 => Just("\n-- lo_import\n"), 4 => Just("")];
    let bad = prop_oneof![
        9 => Just(None),
        1 => (0usize..400, prop_oneof![Just(0xffu8), Just(0xc3)]).prop_map(Some),
    ];
    (
        any::<bool>(),
        proptest::collection::vec((statement(), gap), 1..8),
        bad,
    )
        .prop_map(|(bom, v, bad)| {
            let mut sql = if bom {
                "\u{feff}".to_string()
            } else {
                String::new()
            };
            for (s, g) in v {
                sql.push_str(&format!("{s};{g}\n"));
            }
            let mut bytes = sql.into_bytes();
            if let Some((at, b)) = bad {
                let at = at.min(bytes.len());
                bytes.insert(at, b);
            }
            bytes
        })
        .boxed()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// The raw-byte watch is a superset of `reaches_in`'s own test, however the text
    /// is cut into reads.
    #[test]
    fn the_watch_sees_whatever_reach_would_parse(t in text(), a in 0usize..64, b in 0usize..64) {
        let a = a.min(t.len());
        let b = b.clamp(a, t.len());
        let mut w = NameWatch::default();
        w.feed(&t[..a]);
        w.feed(&t[a..b]);
        w.feed(&t[b..]);
        if may_call_outside(&t) {
            prop_assert!(w.hit(), "{:?}", String::from_utf8_lossy(&t));
        }
    }

    #[test]
    fn one_pass_lists_what_a_second_read_lists(sql in script(), chunk in 1usize..40) {
        for online in [false, true] {
            let (found, _) = one_pass_as(&sql, chunk, online);
            prop_assert_eq!(found, second_read(&sql), "{:?}", String::from_utf8_lossy(&sql));
        }
    }
}
