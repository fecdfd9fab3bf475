//! The description this host keeps between runs (src/db/described.rs), through the real
//! binary and real PostgreSQL: every receipt records the fingerprint a whole
//! description gives; drift made between runs is refused as before, however it was
//! made; and a kept description that is stale or damaged is never trusted.

mod util;
use std::path::{Path, PathBuf};
use util::*;

/// One apply or rollback receipt, as `--json` prints it.
#[derive(serde::Deserialize)]
struct Receipt {
    fingerprint_before: String,
    fingerprint_after: String,
}

/// `airlock fingerprint --json`: a whole description, kept nowhere.
#[derive(serde::Deserialize)]
struct Whole {
    fingerprint: String,
}

struct Case {
    db: TestDb,
    dir: tempfile::TempDir,
    state: tempfile::TempDir,
    bundle: PathBuf,
    trust: String,
}

impl Case {
    fn new() -> Case {
        let db = TestDb::new("kept");
        // Older than any apply: no run's own changes, so only the stamps tell when
        // something happens to them.
        db.exec(
            "CREATE SCHEMA app;
             CREATE TABLE public.base (a integer);
             COMMENT ON TABLE public.base IS 'kept';
             CREATE VIEW public.base_v AS SELECT a FROM public.base;",
        );
        let dir = tempdir();
        keygen(dir.path(), "k");
        let src = MiniSource::new(
            dir.path(),
            &db.name,
            "SELECT true AS ready",
            &[
                (
                    "one",
                    "CREATE TABLE app.t (id integer PRIMARY KEY, name text);
                     COMMENT ON COLUMN app.t.name IS 'the name';
                     CREATE VIEW app.v AS SELECT id, name FROM app.t;
                     CREATE FUNCTION app.f() RETURNS integer LANGUAGE sql AS 'SELECT 1';",
                    false,
                ),
                (
                    "two",
                    "ALTER TABLE app.t RENAME COLUMN name TO label;
                     CREATE INDEX t_label ON app.t (label);
                     ALTER TABLE app.t ADD COLUMN n integer DEFAULT app.f();",
                    false,
                ),
            ],
            "DROP TABLE IF EXISTS app.t CASCADE; DROP FUNCTION IF EXISTS app.f()",
        );
        let bundle = pack(dir.path(), &src.dir, "k.key", "b.tar.gz");
        let trust = dir.path().join("k.pub").to_string_lossy().into_owned();
        Case {
            db,
            dir,
            state: tempdir(),
            bundle,
            trust,
        }
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        let state = self.state.path().to_string_lossy().into_owned();
        let conn = self.db.conn();
        let mut all = vec!["--json"];
        all.extend(args);
        all.extend(["--db", &conn]);
        airlock_env(self.dir.path(), &all, &[("AIRLOCK_STATE_DIR", &state)])
    }

    /// `apply` or `rollback` with `extra`, expecting exit 0; its receipt.
    fn deploy(&self, command: &str, extra: &[&str]) -> Receipt {
        let bundle = self.bundle.to_string_lossy().into_owned();
        let mut args = vec![command, &bundle, "--trust", &self.trust];
        args.extend(extra);
        let o = self.run(&args);
        expect_code(&o, 0);
        serde_json::from_slice(&o.stdout).expect("a receipt")
    }

    fn whole(&self) -> String {
        let o = self.run(&["fingerprint"]);
        expect_code(&o, 0);
        serde_json::from_slice::<Whole>(&o.stdout)
            .expect("a fingerprint")
            .fingerprint
    }

    /// The one description file this host keeps for the test's database.
    fn kept(&self) -> PathBuf {
        let root = self.state.path().join("descriptions");
        let file = format!("{}.bin", hex::encode(self.db.name.as_bytes()));
        let found: Vec<PathBuf> = std::fs::read_dir(&root)
            .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
            .flatten()
            .map(|d| d.path().join(&file))
            .filter(|p| p.exists())
            .collect();
        assert_eq!(found.len(), 1, "one kept description for {}", self.db.name);
        found[0].clone()
    }
}

fn flip_a_byte(path: &Path) {
    let mut bytes = std::fs::read(path).expect("read the kept description");
    let i = bytes.len() / 2;
    bytes[i] ^= 0x20;
    std::fs::write(path, bytes).expect("write it back");
}

#[test]
fn every_receipt_records_the_fingerprint_a_whole_description_gives() {
    let c = Case::new();
    let first = c.deploy("apply", &["--through", "one"]);
    assert_eq!(first.fingerprint_after, c.whole(), "after tier one");
    assert!(c.kept().exists());
    let second = c.deploy("apply", &[]);
    assert_eq!(
        second.fingerprint_before, first.fingerprint_after,
        "nothing changed in between"
    );
    assert_eq!(second.fingerprint_after, c.whole(), "after tier two");
    let back = c.deploy("rollback", &[]);
    assert_eq!(back.fingerprint_before, second.fingerprint_after);
    assert_eq!(back.fingerprint_after, c.whole(), "after the rollback");
    assert_eq!(back.fingerprint_after, first.fingerprint_before);
}

#[test]
fn drift_made_between_runs_is_refused_however_it_was_made() {
    let c = Case::new();
    // (what, the drift, what undoes it)
    let drifts = [
        (
            "a dropped comment on what no apply touched (rows gone, none new)",
            "COMMENT ON TABLE public.base IS NULL",
            "COMMENT ON TABLE public.base IS 'kept'",
        ),
        (
            "a renamed column of what no apply touched, which a view shows",
            "ALTER TABLE public.base RENAME COLUMN a TO b",
            "ALTER TABLE public.base RENAME COLUMN b TO a",
        ),
        (
            "a dropped view no apply touched",
            "DROP VIEW public.base_v",
            "CREATE VIEW public.base_v AS SELECT a FROM public.base",
        ),
        (
            "a renamed column a view shows",
            "ALTER TABLE app.t RENAME COLUMN id TO ident",
            "ALTER TABLE app.t RENAME COLUMN ident TO id",
        ),
        (
            "a dropped comment (rows gone, none new)",
            "COMMENT ON COLUMN app.t.name IS NULL",
            "COMMENT ON COLUMN app.t.name IS 'the name'",
        ),
        (
            "a new table",
            "CREATE TABLE app.extra (a integer)",
            "DROP TABLE app.extra",
        ),
        (
            "a dropped function",
            "DROP FUNCTION app.f()",
            "CREATE FUNCTION app.f() RETURNS integer LANGUAGE sql AS 'SELECT 1'",
        ),
        (
            "a renamed schema, renamed back",
            "ALTER SCHEMA app RENAME TO app2; ALTER SCHEMA app2 RENAME TO app; \
             ALTER VIEW app.v RENAME TO w",
            "ALTER VIEW app.w RENAME TO v",
        ),
    ];
    for (what, drift, undo) in drifts {
        let first = c.deploy("apply", &["--through", "one"]);
        c.db.exec(drift);
        let bundle = c.bundle.to_string_lossy().into_owned();
        let o = c.run(&["apply", &bundle, "--trust", &c.trust]);
        expect_code(&o, 5);
        assert!(
            stderr(&o).contains("drift") || stdout(&o).contains("drift"),
            "{what}: not refused as drift:\n{}{}",
            stdout(&o),
            stderr(&o)
        );
        c.db.exec(undo);
        let second = c.deploy("apply", &[]);
        assert_eq!(
            second.fingerprint_before, first.fingerprint_after,
            "{what}: undone, the schema is as tier one left it"
        );
        assert_eq!(second.fingerprint_after, c.whole(), "{what}");
        c.deploy("rollback", &[]);
    }
}

#[test]
fn a_stale_or_damaged_kept_description_is_never_trusted() {
    let c = Case::new();
    let first = c.deploy("apply", &["--through", "one"]);
    let then = std::fs::read(c.kept()).expect("the kept description");
    let second = c.deploy("apply", &[]);
    c.deploy("rollback", &[]);
    let third = c.deploy("apply", &["--through", "one"]);
    assert_eq!(third.fingerprint_after, first.fingerprint_after);
    // The description kept after tier two's apply, put back after a rollback and a
    // new apply: everything it says about tier two is stale.
    std::fs::write(c.kept(), &then).expect("put the old description back");
    c.db.exec("ALTER TABLE app.t ADD COLUMN late integer");
    let bundle = c.bundle.to_string_lossy().into_owned();
    let o = c.run(&["apply", &bundle, "--trust", &c.trust]);
    expect_code(&o, 5);
    c.db.exec("ALTER TABLE app.t DROP COLUMN late");
    let fourth = c.deploy("apply", &[]);
    assert_eq!(fourth.fingerprint_before, third.fingerprint_after);
    assert_eq!(fourth.fingerprint_after, second.fingerprint_after);
    assert_eq!(fourth.fingerprint_after, c.whole());
    // A damaged one is not used at all.
    flip_a_byte(&c.kept());
    let back = c.deploy("rollback", &[]);
    assert_eq!(back.fingerprint_before, fourth.fingerprint_after);
    assert_eq!(back.fingerprint_after, c.whole());
}
