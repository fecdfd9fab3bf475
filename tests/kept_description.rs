//! How much of the schema a deploy describes again, through the real binary (its
//! `--json` `schema_descriptions`) on a throwaway cluster of this file's own: the
//! description this host keeps lets each run describe only what changed since the
//! last one, the run right after a host's first apply included (the objects that apply
//! changed, and the schema it created for the ledger, are not taken for changes
//! again). Timing is benches/apply.sh's; these tests hold the mechanism. On the shared
//! server another test's new role would make a description whole (a role is in every
//! description), so each test has a cluster of its own.

mod util;
use std::path::PathBuf;
use util::cluster::Cluster;
use util::*;

/// How a run took its schema fingerprints, as `--json` shows them.
#[derive(serde::Deserialize, Debug)]
struct Steps {
    schema_descriptions: Vec<Step>,
}

#[derive(serde::Deserialize, Debug)]
struct Step {
    how: String,
    why: Option<String>,
    described: usize,
    #[serde(default)]
    stamped: Option<bool>,
}

const DB: &str = "kept";

struct Case {
    dir: tempfile::TempDir,
    state: tempfile::TempDir,
    bundle: PathBuf,
    trust: String,
    // Last: stopped after the runs above are done with it.
    cluster: Cluster,
}

impl Case {
    /// A database with schema `app` and `extra` untouched tables, and a two-tier
    /// bundle: tier one creates a table, a view and a function, tier two changes the
    /// table.
    fn new(extra: usize) -> Case {
        let cluster = Cluster::start();
        cluster
            .client("postgres")
            .batch_execute(&format!("CREATE DATABASE {DB}"))
            .expect("CREATE DATABASE");
        // Untouched tables (a table is one object; integer columns need no TOAST).
        cluster
            .client(DB)
            .batch_execute(&format!(
                "CREATE SCHEMA app;
                 DO $$ BEGIN FOR i IN 1..{extra} LOOP
                   EXECUTE format('CREATE TABLE public.other_%s (id integer, v integer)', i);
                 END LOOP; END $$;"
            ))
            .expect("the untouched objects");
        let dir = tempdir();
        keygen(dir.path(), "k");
        let src = MiniSource::new(
            dir.path(),
            DB,
            "SELECT true AS ready",
            &[
                (
                    "one",
                    "CREATE TABLE app.t (id integer PRIMARY KEY, name text);
                     CREATE VIEW app.v AS SELECT id, name FROM app.t;
                     CREATE FUNCTION app.f() RETURNS integer LANGUAGE sql AS 'SELECT 1';",
                    false,
                ),
                (
                    "two",
                    "ALTER TABLE app.t RENAME COLUMN name TO label;
                     ALTER TABLE app.t ADD COLUMN n integer DEFAULT app.f();",
                    false,
                ),
            ],
            "DROP TABLE IF EXISTS app.t CASCADE; DROP FUNCTION IF EXISTS app.f()",
        );
        let bundle = pack(dir.path(), &src.dir, "k.key", "b.tar.gz");
        let trust = dir.path().join("k.pub").to_string_lossy().into_owned();
        Case {
            dir,
            state: tempdir(),
            bundle,
            trust,
            cluster,
        }
    }

    /// `command` (apply or rollback) with `extra` (exit 0): how its fingerprints
    /// were taken.
    fn run(&self, command: &str, extra: &[&str]) -> Vec<Step> {
        let state = self.state.path().to_string_lossy().into_owned();
        let bundle = self.bundle.to_string_lossy().into_owned();
        let conn = self.cluster.conn(DB);
        let mut args = vec!["--json", command, &bundle, "--trust", &self.trust];
        args.extend(extra);
        args.extend(["--param", "code=x", "--db", &conn]);
        let o = airlock_env(self.dir.path(), &args, &[("AIRLOCK_STATE_DIR", &state)]);
        expect_code(&o, 0);
        serde_json::from_slice::<Steps>(&o.stdout)
            .expect("--json")
            .schema_descriptions
    }
}

#[test]
fn the_apply_after_a_hosts_first_describes_only_what_it_changes() {
    // The database's first apply: it creates the ledger (a schema) in its transaction.
    let c = Case::new(600);
    let first = c.run("apply", &["--through", "one"]);
    assert_eq!(first.len(), 2, "{first:?}");
    assert_eq!(
        (first[0].how.as_str(), first[0].why.as_deref()),
        ("whole", Some("first")),
        "nothing kept on this host yet: {first:?}"
    );
    assert!(first[0].described > 600, "every object: {first:?}");
    // Followed from here on: its stamps were read with it.
    assert_eq!(first[0].stamped, Some(true), "{first:?}");
    // Its continuation, right after: nothing changed in between, so the description
    // the first apply kept holds as it is, and only what tier two changes (and what
    // depends on it) is described again.
    let second = c.run("apply", &[]);
    assert_eq!(second.len(), 2, "{second:?}");
    for step in &second {
        assert_eq!(step.how, "incremental", "{second:?}");
        assert!(step.described <= 20, "{second:?}");
    }
    assert_eq!(second[0].described, 0, "nothing changed since: {second:?}");
    // And so on: a rollback, and an apply after it.
    for (command, extra) in [("rollback", &[][..]), ("apply", &["--through", "one"][..])] {
        let later = c.run(command, extra);
        assert_eq!(later[0].how, "incremental", "{command}: {later:?}");
        assert_eq!(later[0].described, 0, "{command}: {later:?}");
    }
}

#[test]
fn a_hosts_first_apply_describes_the_whole_schema_once() {
    let c = Case::new(600);
    let first = c.run("apply", &["--through", "one"]);
    assert_eq!(first[0].how, "whole", "{first:?}");
    // After tier one, and the ledger the apply created: only what changed.
    assert_eq!(first[1].how, "incremental", "{first:?}");
    assert!(first[1].described <= 20, "{first:?}");
}

#[test]
fn a_small_schema_is_described_whole_every_time_without_stamps() {
    // A schema of fewer than 500 objects: describing it again costs less than planning
    // the incremental statements on a connection, and than reading every object's
    // stamps to follow it from.
    let c = Case::new(10);
    let first = c.run("apply", &["--through", "one"]);
    let why: Vec<Option<&str>> = first.iter().map(|s| s.why.as_deref()).collect();
    assert_eq!(why, [Some("first"), Some("small")], "{first:?}");
    let stamped: Vec<Option<bool>> = first.iter().map(|s| s.stamped).collect();
    assert_eq!(stamped, [Some(false), Some(false)], "{first:?}");
    // The run after it, and a rollback: whole again, still without stamps. What this
    // host keeps (the parts, to name what drifted) is used for nothing else.
    for (command, extra) in [("apply", &[][..]), ("rollback", &[][..])] {
        let later = c.run(command, extra);
        let how: Vec<(&str, Option<&str>, Option<bool>)> = later
            .iter()
            .map(|s| (s.how.as_str(), s.why.as_deref(), s.stamped))
            .collect();
        assert_eq!(
            how,
            [("whole", Some("small"), Some(false)); 2],
            "{command}: {later:?}"
        );
    }
}
