//! Lint's transaction classification checked against the real server: each case's
//! script runs inside a transaction block (BEGIN, a first query as apply makes, the
//! script, ROLLBACK) on PostgreSQL. Whatever lint accepts runs there, or fails only for
//! an ordinary reason (never "cannot run inside a transaction block", never "invalid
//! transaction termination", and it leaves the transaction open and writable); whatever
//! lint refuses for a transaction reason really fails that way or ends or changes the
//! transaction. Each case also runs behind a pg_dump-like prefix (a `begin` column, a
//! DML statement), which must change neither verdict.

mod util;
use airlock::sql_lint::{self, SqlRole};
use util::*;

/// `(setup, statement)`; `{db}` is the test database's name. Setups must lint clean and
/// run.
const CASES: &[(&str, &str)] = &[
    // Accepted: the server runs these inside a transaction block.
    ("CREATE TABLE t (a int)", "ANALYZE"),
    ("CREATE TABLE t (a int)", "ANALYZE t (a)"),
    (
        "CREATE TABLE t (a int); CREATE TABLE a (x int); CREATE TABLE b (x int)",
        "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (new.a); INSERT INTO b VALUES (';'))",
    ),
    (
        "",
        "CREATE SUBSCRIPTION s CONNECTION 'host=127.0.0.1 port=1 dbname=x' PUBLICATION p WITH (connect = false)",
    ),
    (
        "CREATE SUBSCRIPTION s CONNECTION 'host=127.0.0.1 port=1 dbname=x' PUBLICATION p WITH (connect = false)",
        "ALTER SUBSCRIPTION s SET PUBLICATION q WITH (refresh = false)",
    ),
    ("", "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE"),
    ("", "SET LOCAL work_mem = '8MB'"),
    ("", "DO $$ BEGIN RAISE NOTICE 'commit; rollback'; END $$"),
    ("CREATE TABLE t (a int)", "CREATE TABLE u (begin int, \"end\" int)"),
    ("CREATE TABLE t (a int)", "REINDEX TABLE t"),
    ("CREATE TABLE t (a int); CREATE INDEX i ON t (a)", "CLUSTER t USING i"),
    ("", "ALTER DATABASE {db} SET work_mem = '8MB'"),
    ("", "DISCARD PLANS"),
    ("CREATE TABLE t (a int)", "LOCK TABLE t IN SHARE MODE"),
    ("CREATE TABLE t (a int)", "CREATE INDEX ON t (a)"),
    (
        "",
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 2 END; END",
    ),
    // Refused for a transaction reason: the server agrees.
    ("", "VACUUM"),
    ("CREATE TABLE t (a int)", "CREATE INDEX CONCURRENTLY i ON t (a)"),
    ("CREATE TABLE t (a int); CREATE INDEX i ON t (a)", "DROP INDEX CONCURRENTLY i"),
    ("CREATE TABLE t (a int)", "REINDEX TABLE CONCURRENTLY t"),
    ("CREATE SCHEMA s", "REINDEX SCHEMA s"),
    ("", "REINDEX DATABASE {db}"),
    ("", "REINDEX SYSTEM {db}"),
    (
        "CREATE TABLE p (a int) PARTITION BY LIST (a); CREATE TABLE c PARTITION OF p FOR VALUES IN (1)",
        "ALTER TABLE p DETACH PARTITION c CONCURRENTLY",
    ),
    ("", "ALTER DATABASE {db} SET TABLESPACE pg_default"),
    ("", "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE"),
    ("", "SET TRANSACTION DEFERRABLE"),
    ("", "SET transaction_isolation = 'serializable'"),
    ("", "SET TRANSACTION READ ONLY"),
    ("", "SET LOCAL transaction_read_only = on"),
    ("", "DO $$ BEGIN COMMIT; END $$"),
    ("CREATE TABLE t (a int)", "DO $$ BEGIN INSERT INTO t VALUES (1); ROLLBACK; END $$"),
    (
        "",
        "CREATE SUBSCRIPTION s CONNECTION 'host=127.0.0.1 port=1 dbname=x' PUBLICATION p",
    ),
    (
        "CREATE SUBSCRIPTION s CONNECTION 'host=127.0.0.1 port=1 dbname=x' PUBLICATION p WITH (connect = false)",
        "DROP SUBSCRIPTION s",
    ),
    ("", "CLUSTER"),
    ("", "DISCARD ALL"),
    ("", "CREATE DATABASE airlock_never_created"),
    ("", "DROP DATABASE IF EXISTS airlock_never_created"),
    ("", "ALTER SYSTEM SET work_mem = '8MB'"),
    ("", "CREATE TABLESPACE never LOCATION '/nonexistent'"),
    ("", "COMMIT"),
    ("", "ROLLBACK"),
    ("", "END"),
];

/// SQLSTATEs of "cannot run inside a transaction block" (and "must be called before
/// any query") and of "invalid transaction termination".
const TRANSACTION_STATES: [&str; 2] = ["25001", "2D000"];

#[derive(Debug, PartialEq)]
enum Outcome {
    /// Ran; the transaction is still open and writable.
    Ran,
    /// Failed with this SQLSTATE.
    Failed(String, String),
    /// Ran, but ended the transaction or made it read-only.
    ChangedTransaction,
}

fn run(db: &TestDb, setup: &str, sql: &str) -> Outcome {
    let mut c = db.client();
    c.batch_execute("BEGIN; SELECT 1; CREATE TEMP TABLE airlock_marker (x int) ON COMMIT DROP;")
        .unwrap();
    if !setup.is_empty() {
        c.batch_execute(setup)
            .unwrap_or_else(|e| panic!("setup {setup}: {e}"));
    }
    let outcome = match c.batch_execute(sql) {
        Err(e) => {
            let code = e.code().map(|c| c.code().to_string()).unwrap_or_default();
            Outcome::Failed(code, e.to_string())
        }
        Ok(()) => {
            let still = c
                .simple_query(
                    "SELECT to_regclass('pg_temp.airlock_marker') IS NOT NULL
                        AND current_setting('transaction_read_only') = 'off'",
                )
                .ok()
                .and_then(|rows| {
                    rows.into_iter().find_map(|m| match m {
                        postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
                        _ => None,
                    })
                });
            if still.as_deref() == Some("t") {
                Outcome::Ran
            } else {
                Outcome::ChangedTransaction
            }
        }
    };
    let _ = c.batch_execute("ROLLBACK");
    outcome
}

#[test]
fn every_classification_matches_what_the_server_does_in_a_transaction() {
    let db = TestDb::new("classify");
    let (mut checked, mut accepted, mut refused) = (0, 0, 0);
    for (i, (setup, sql)) in CASES.iter().enumerate() {
        let setup = setup.replace("{db}", &db.name);
        let sql = sql.replace("{db}", &db.name);
        let prefix =
            format!("CREATE TABLE g{i} (id int, begin int);\nINSERT INTO g{i} VALUES (1, 2);\n");
        for setup in [setup.clone(), format!("{prefix}{setup}")] {
            let setup_problems = sql_lint::check("setup.sql", &setup, SqlRole::Script);
            assert_eq!(setup_problems, vec![], "setup of {sql}");
            let script = format!("{setup};\n{sql};\n");
            let problems = sql_lint::check("t.sql", &script, SqlRole::Script);
            let outcome = run(&db, &setup, &sql);
            let refused_for_transaction = problems
                .iter()
                .any(|p| p.message.contains("transaction") && !p.message.contains("cannot prove"));
            if problems.is_empty() {
                accepted += 1;
                match &outcome {
                    Outcome::Ran => {}
                    Outcome::Failed(code, msg) => assert!(
                        !TRANSACTION_STATES.contains(&code.as_str()),
                        "lint accepts {sql:?}, the server refuses it in a transaction: {code} {msg}"
                    ),
                    Outcome::ChangedTransaction => {
                        panic!("lint accepts {sql:?}, which ends or changes the transaction")
                    }
                }
            } else if refused_for_transaction {
                refused += 1;
                let server_agrees = match &outcome {
                    Outcome::Failed(code, _) => TRANSACTION_STATES.contains(&code.as_str()),
                    Outcome::ChangedTransaction => true,
                    Outcome::Ran => false,
                };
                assert!(
                    server_agrees,
                    "lint refuses {sql:?} ({problems:?}), the server: {outcome:?}"
                );
            } else {
                // One judge, PostgreSQL's parser: every refusal names a transaction
                // reason, never "cannot prove".
                panic!("lint refuses {sql:?} for no transaction reason: {problems:?}");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, CASES.len() * 2);
    eprintln!(
        "{checked} scripts: lint accepted {accepted}, refused {refused} for a transaction reason"
    );
    // Not vacuous: both directions were exercised.
    assert!(
        accepted >= 30 && refused >= 40,
        "{accepted} accepted, {refused} refused"
    );
}
