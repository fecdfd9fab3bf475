//! The lock impact measured on the clone (issue 24): `rehearse` times every tier
//! statement that locks an existing relation and reports, per statement, the heaviest
//! mode it took on which relation and how long it was held — in a transactional tier
//! until the transaction's COMMIT, in an online tier while the statement ran. Real
//! server, the real binary; durations are only compared with one another (both
//! measured), never with a fixed figure.

mod util;
use serde::Deserialize;
use std::path::Path;
use util::*;

#[derive(Debug, Deserialize)]
struct Report {
    ok: bool,
    steps: Vec<Step>,
    lock_impact: Option<Impact>,
}

#[derive(Debug, Deserialize)]
struct Step {
    step: String,
    verdict: String,
}

#[derive(Debug, Deserialize)]
struct Impact {
    locks: Vec<Held>,
    #[serde(default)]
    omitted: usize,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Held {
    tier: String,
    file: String,
    line: usize,
    statement: String,
    relation: String,
    mode: String,
    size: Size,
    held_until: String,
    statement_ms: u64,
    held_ms: u64,
}

#[derive(Debug, Deserialize)]
struct Size {
    rows: i64,
}

const ROWS: i64 = 300_000;

fn target(tag: &str) -> TestDb {
    let db = TestDb::new(tag);
    db.exec(&format!(
        "CREATE SCHEMA app; CREATE TABLE app.t (id bigserial PRIMARY KEY, a int, b int); \
         INSERT INTO app.t (a, b) SELECT g % 97, g FROM generate_series(1, {ROWS}) g; \
         CREATE TABLE app.small (id int); ANALYZE app.t;"
    ));
    db
}

/// A bundle with one tier (`online` or not) and its rollback, packed as `out`.
fn bundle(d: &Path, db: &str, out: &str, tier_sql: &str, online: bool, rollback: &str) {
    let src = d.join(format!("src-{out}"));
    write(
        &src.join("bundle.toml"),
        &format!(
            "[bundle]\nname = \"locks\"\nversion = \"1\"\nsequence = 1\n\n\
             [target]\ndatabase = \"{db}\"\n\n\
             [preflight]\nfile = \"sql/probe.sql\"\nexpect = {{ indexes = \"0\" }}\n\n\
             [[tier]]\nname = \"schema\"\nfiles = [\"sql/tier.sql\"]\nonline = {online}\n\n\
             [rollback]\nfiles = [\"sql/rollback.sql\"]\nonline = {online}\n"
        ),
    );
    write(
        &src.join("sql/probe.sql"),
        "SELECT 'indexes' AS key, count(*)::text AS value FROM pg_indexes \
         WHERE schemaname = 'app' AND indexname IN ('t_a', 't_b')",
    );
    write(&src.join("sql/tier.sql"), tier_sql);
    write(&src.join("sql/rollback.sql"), rollback);
    pack(d, &src, "rm.key", out);
}

fn rehearse(d: &Path, db: &TestDb, bundle: &str) -> Report {
    let o = run_json(d, "rm.pub", &db.conn(), &["rehearse", bundle]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("rehearse --json");
    // The document matches its blessed schema.
    let text = std::fs::read_to_string(repo().join("schemas/rehearse.schema.json")).unwrap();
    let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
    let compiled = jsonschema::JSONSchema::compile(&schema).expect("schema compiles");
    if let Err(errors) = compiled.validate(&doc) {
        let msgs: Vec<String> = errors
            .map(|e| format!("{e} at {}", e.instance_path))
            .collect();
        panic!("not as schemas/rehearse.schema.json says: {msgs:?}\n{doc:#}");
    }
    let r: Report = serde_json::from_value(doc).expect("rehearse --json");
    assert!(r.ok);
    assert!(
        r.steps.iter().all(|s| s.verdict == "PASS"),
        "every proof still holds: {:#?}",
        r.steps
    );
    r
}

fn held<'a>(i: &'a Impact, line: usize, relation: &str) -> &'a Held {
    i.locks
        .iter()
        .find(|h| h.line == line && h.relation == relation)
        .unwrap_or_else(|| panic!("no lock at line {line} on {relation}: {i:#?}"))
}

const TIER: &str = "-- an index the plain way, then more work in the same transaction\n\
CREATE INDEX t_a ON app.t (a);\n\
CREATE INDEX t_b ON app.t (b);\n\
ALTER TABLE app.t ADD COLUMN note text;\n\
INSERT INTO app.small SELECT g FROM generate_series(1, 10) g;\n\
CREATE TABLE app.fresh (i int);\n\
CREATE INDEX fresh_i ON app.fresh (i);\n";

const ROLLBACK: &str = "DROP TABLE app.fresh;\nDELETE FROM app.small;\n\
ALTER TABLE app.t DROP COLUMN note;\nDROP INDEX app.t_b;\nDROP INDEX app.t_a;\n";

#[test]
fn rehearse_measures_how_long_each_lock_of_a_transactional_tier_is_held_until_commit() {
    let t = keyed_dir();
    let d = t.path();
    let db = target("rehearse_locks");
    bundle(d, &db.name, "b.tar.gz", TIER, false, ROLLBACK);
    let before = db.dump();
    let r = rehearse(d, &db, "b.tar.gz");
    let i = r.lock_impact.as_ref().expect("lock_impact");
    assert_eq!(i.error, None);
    assert_eq!(i.omitted, 0);

    // The plain CREATE INDEX: SHARE on app.t, measured on the clone's 300,000 rows,
    // held from the statement until COMMIT, past the statements after it.
    let a = held(i, 2, "app.t");
    let b = held(i, 3, "app.t");
    let add = held(i, 4, "app.t");
    assert_eq!(
        (a.mode.as_str(), a.statement.as_str()),
        ("SHARE", "CREATE INDEX")
    );
    assert_eq!(
        (a.tier.as_str(), a.file.as_str()),
        ("schema", "sql/tier.sql")
    );
    assert_eq!(a.held_until, "commit");
    assert!(a.size.rows >= ROWS, "{a:#?}");
    assert!(a.held_ms >= a.statement_ms, "{a:#?}");
    assert!(
        a.held_ms >= a.statement_ms + b.statement_ms + add.statement_ms,
        "held through the statements after it: {i:#?}"
    );
    // ADD COLUMN: ACCESS EXCLUSIVE, held until COMMIT too.
    assert_eq!(add.mode, "ACCESS_EXCLUSIVE");
    assert_eq!(add.held_until, "commit");
    assert!(add.held_ms >= add.statement_ms, "{add:#?}");
    assert!(
        a.held_ms >= add.held_ms,
        "taken earlier, released together: {i:#?}"
    );
    // In the order the apply ran them; a relation the release creates locks nobody
    // out (it is not reported), and plain DML is not listed.
    let order: Vec<usize> = i.locks.iter().map(|h| h.line).collect();
    assert_eq!(order, vec![2, 3, 4], "{i:#?}");

    // The human step table shows them under the apply step (wide enough that no
    // cell wraps).
    let o = airlock_env(
        d,
        &[
            "rehearse",
            "b.tar.gz",
            "--trust",
            "rm.pub",
            "--db",
            &db.conn(),
        ],
        &[("COLUMNS", "250")],
    );
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    let apply_at = out.find("apply").expect("apply step");
    let lock_at = out.find("lock app.t").unwrap_or_else(|| panic!("{out}"));
    assert!(lock_at > apply_at, "{out}");
    assert!(
        out.contains("held until COMMIT; CREATE INDEX at sql/tier.sql:2"),
        "{out}"
    );
    assert!(out.contains("ACCESS EXCLUSIVE"), "{out}");

    // The target itself is untouched.
    assert_eq!(db.dump(), before);
    assert_eq!(db.ledger_rows(), "none");
}

#[test]
fn an_online_step_holds_its_lock_only_while_it_runs() {
    let t = keyed_dir();
    let d = t.path();
    let db = target("rehearse_locks_online");
    bundle(
        d,
        &db.name,
        "o.tar.gz",
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS t_a ON app.t (a);\n",
        true,
        "DROP INDEX CONCURRENTLY IF EXISTS app.t_a;\n",
    );
    let r = rehearse(d, &db, "o.tar.gz");
    let i = r.lock_impact.as_ref().expect("lock_impact");
    let a = held(i, 1, "app.t");
    assert_eq!(a.mode, "SHARE_UPDATE_EXCLUSIVE");
    assert_eq!(a.held_until, "statement-end");
    assert_eq!(a.held_ms, a.statement_ms, "{a:#?}");
    assert!(a.size.rows >= ROWS, "{a:#?}");
    assert_eq!(i.locks.len(), 1, "{i:#?}");
    assert!(r.steps.iter().any(|s| s.step == "apply"));
}
