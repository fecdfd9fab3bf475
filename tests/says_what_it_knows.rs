//! What the tool knows, it says (issue 26, the operator's items), through the real
//! binary and real PostgreSQL: drift names the objects that changed (plan, apply,
//! `fingerprint --diff`); plain `status` states a partial apply; `plan` judges a
//! trust store's receipt policy as `apply` does; timestamps come in one format; and
//! the steps `demo --keep` prints replay as printed on a fresh database.

mod util;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use util::*;

/// One object a drift report or `fingerprint --diff` names.
#[derive(Debug, Deserialize, PartialEq, Eq)]
struct Change {
    change: String,
    kind: String,
    name: String,
}

#[derive(Debug, Deserialize)]
struct DriftChanges {
    changes: Vec<Change>,
    total: usize,
    unnamed: Option<String>,
}

#[derive(Debug, Deserialize)]
struct PlanDoc {
    verdict: String,
    exit_code: i32,
    checks: Vec<CheckDoc>,
    drift_changes: Option<DriftChanges>,
}

#[derive(Debug, Deserialize)]
struct CheckDoc {
    check: String,
    verdict: String,
    exit_code: i32,
    evidence: String,
}

#[derive(Debug, Deserialize)]
struct ErrorDoc {
    exit_code: i32,
    error: String,
    drift: Option<DriftChanges>,
}

fn change(change: &str, kind: &str, name: &str) -> Change {
    Change {
        change: change.into(),
        kind: kind.into(),
        name: name.into(),
    }
}

/// A two-tier bundle on its own database, with this test's own state directory (what
/// the host remembers: ledger heads and schema descriptions).
struct Case {
    db: TestDb,
    dir: tempfile::TempDir,
    state: tempfile::TempDir,
    bundle: String,
    trust: String,
}

impl Case {
    fn new(tag: &str) -> Case {
        let db = TestDb::new(tag);
        db.exec("CREATE SCHEMA app;");
        let dir = tempdir();
        keygen(dir.path(), "k");
        let src = MiniSource::new(
            dir.path(),
            &db.name,
            "SELECT true AS ready",
            &[
                (
                    "one",
                    "CREATE TABLE app.t (id integer PRIMARY KEY, label text);
                     CREATE INDEX t_label ON app.t (label);",
                    false,
                ),
                ("two", "ALTER TABLE app.t ADD COLUMN n integer;", false),
            ],
            "DROP TABLE IF EXISTS app.t CASCADE",
        );
        let bundle = pack(dir.path(), &src.dir, "k.key", "b.tar.gz");
        Case {
            db,
            state: tempdir(),
            bundle: bundle.to_string_lossy().into_owned(),
            trust: dir.path().join("k.pub").to_string_lossy().into_owned(),
            dir,
        }
    }

    /// `airlock ARGS --db THIS` with this case's state directory.
    fn run_in(&self, state: &Path, args: &[&str]) -> std::process::Output {
        let state = state.to_string_lossy().into_owned();
        let conn = self.db.conn();
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--db", &conn]);
        airlock_env(self.dir.path(), &all, &[("AIRLOCK_STATE_DIR", &state)])
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        self.run_in(self.state.path(), args)
    }

    fn deploy(&self, command: &str, extra: &[&str]) -> std::process::Output {
        let mut args = vec![command, &self.bundle, "--trust", &self.trust, "--yes"];
        args.extend(extra);
        self.run(&args)
    }
}

/// The first part of the story every drift test tells: tier one applied, then three
/// changes made out of band (a column added, an index dropped, a table created).
fn drifted(tag: &str) -> Case {
    let c = Case::new(tag);
    expect_code(&c.deploy("apply", &["--through", "one"]), 0);
    c.db.exec(
        "ALTER TABLE app.t ADD COLUMN extra integer;
         DROP INDEX app.t_label;
         CREATE TABLE app.oob (a integer);",
    );
    c
}

#[test]
fn drift_names_the_objects_changed_out_of_band_in_plan_and_apply() {
    let c = drifted("driftnames");
    let expected = [
        change("added", "table column", "app.t.extra"),
        change("dropped", "index", "app.t_label"),
        change("added", "table", "app.oob"),
    ];
    // plan --json: NO-GO at drift (exit 5), the objects listed.
    let o = c.run(&["--json", "plan", &c.bundle, "--trust", &c.trust]);
    expect_code(&o, 5);
    let plan: PlanDoc = serde_json::from_slice(&o.stdout).expect("plan document");
    assert_eq!((plan.verdict.as_str(), plan.exit_code), ("NO-GO", 5));
    let listed = plan.drift_changes.expect("plan lists drift_changes");
    assert!(listed.unnamed.is_none(), "{listed:?}");
    for e in &expected {
        assert!(listed.changes.contains(e), "{e:?} not in {listed:?}");
    }
    assert_eq!(listed.total, listed.changes.len(), "{listed:?}");
    // The columns of the new table are part of it, not named apart.
    assert!(
        !listed.changes.iter().any(|c| c.name == "app.oob.a"),
        "{listed:?}"
    );
    let check = plan
        .checks
        .iter()
        .find(|c| c.check == "drift")
        .expect("a drift row");
    assert_eq!((check.verdict.as_str(), check.exit_code), ("FAIL", 5));
    for said in [
        "added table column app.t.extra",
        "dropped index app.t_label",
        "added table app.oob",
    ] {
        assert!(check.evidence.contains(said), "{said}: {}", check.evidence);
    }
    // plan, for people: each object on its own line.
    let o = c.run(&["plan", &c.bundle, "--trust", &c.trust]);
    expect_code(&o, 5);
    let text = stdout(&o);

    assert!(text.contains("changed since the previous apply:"), "{text}");
    assert!(text.contains("\n  dropped index app.t_label"), "{text}");
    // apply: refused the same way, the same objects in its error document.
    let o = c.deploy("apply", &["--json"]);
    expect_code(&o, 5);
    let err: ErrorDoc = serde_json::from_slice(&o.stdout).expect("error document");
    assert_eq!(err.exit_code, 5);
    assert!(
        err.error.contains(&check.evidence),
        "apply says what plan says\nplan: {}\napply: {}",
        check.evidence,
        err.error
    );
    let drift = err.drift.expect("apply's error names the drift");
    for e in &expected {
        assert!(drift.changes.contains(e), "{e:?} not in {drift:?}");
    }
    // apply, for people: the objects in the message.
    let o = c.deploy("apply", &[]);
    expect_code(&o, 5);
    assert!(stderr(&o).contains("added table app.oob"), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("Find out who changed these objects"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn drift_seen_from_a_host_without_the_description_says_why_it_cannot_name_objects() {
    let c = drifted("driftunnamed");
    let elsewhere = tempdir();
    let o = c.run_in(
        elsewhere.path(),
        &["--json", "plan", &c.bundle, "--trust", &c.trust],
    );
    expect_code(&o, 5);
    let plan: PlanDoc = serde_json::from_slice(&o.stdout).expect("plan document");
    let listed = plan.drift_changes.expect("drift_changes");
    assert!(listed.changes.is_empty());
    let why = listed.unnamed.expect("why the objects are not named");
    assert!(why.contains("keeps no description"), "{why}");
    let check = plan.checks.iter().find(|c| c.check == "drift").unwrap();
    assert!(
        check
            .evidence
            .contains("which objects changed is not known here"),
        "{}",
        check.evidence
    );
}

#[test]
fn fingerprint_diff_of_two_saved_outputs_names_the_objects() {
    let c = Case::new("fpdiff");
    expect_code(&c.deploy("apply", &["--through", "one"]), 0);
    let save = |name: &str| -> PathBuf {
        let o = c.run(&["--json", "fingerprint"]);
        expect_code(&o, 0);
        let path = c.dir.path().join(name);
        std::fs::write(&path, &o.stdout).unwrap();
        path
    };
    let a = save("a.json");
    c.db.exec("ALTER TABLE app.t ADD COLUMN extra integer; DROP INDEX app.t_label;");
    let b = save("b.json");
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let o = c.run(&["--json", "fingerprint", "--diff", a, b]);
    expect_code(&o, 5);
    #[derive(Deserialize)]
    struct Diff {
        equal: bool,
        differences: Vec<String>,
        changes: Vec<Change>,
    }
    let d: Diff = serde_json::from_slice(&o.stdout).expect("diff document");
    assert!(!d.equal);
    assert!(d
        .changes
        .contains(&change("added", "table column", "app.t.extra")));
    assert!(d
        .changes
        .contains(&change("dropped", "index", "app.t_label")));
    assert_eq!(d.differences.len(), d.changes.len());
    assert!(d
        .differences
        .contains(&"dropped index app.t_label".to_string()));
    let o = c.run(&["fingerprint", "--diff", a, b]);
    expect_code(&o, 5);
    assert!(
        stdout(&o).contains("added table column app.t.extra"),
        "{}",
        stdout(&o)
    );
    // --quiet still says they differ, on one line, as `diff -q` does; equal says nothing.
    let o = c.run(&["-q", "fingerprint", "--diff", a, b]);
    expect_code(&o, 5);
    let line = stdout(&o);
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(
        line.starts_with("DIFFERENT: ")
            && line.contains(&format!("{} object(s) differ", d.changes.len())),
        "{line}"
    );
    let o = c.run(&["-q", "fingerprint", "--diff", a, a]);
    expect_code(&o, 0);
    assert_eq!(stdout(&o), "");
}

#[derive(Debug, Deserialize)]
struct StatusDoc {
    bundles: Vec<BundleDoc>,
    rows: Vec<RowDoc>,
}

#[derive(Debug, Deserialize)]
struct BundleDoc {
    state: String,
    applied_tiers: Vec<String>,
    tiers_total: Option<usize>,
    remaining_tiers: Option<Vec<String>>,
    at: String,
}

#[derive(Debug, Deserialize)]
struct RowDoc {
    at: String,
    event: String,
    bundle_tiers: Option<String>,
}

impl StatusDoc {
    /// The rows of what ran (a `receipt` row records a receipt delivered).
    fn ran(&self) -> Vec<&RowDoc> {
        self.rows.iter().filter(|r| r.event != "receipt").collect()
    }
}

#[test]
fn plain_status_states_a_partial_apply_and_what_remains() {
    let c = Case::new("partial");
    expect_code(&c.deploy("apply", &["--through", "one"]), 0);
    let o = c.run(&["--json", "status"]);
    expect_code(&o, 0);
    let s: StatusDoc = serde_json::from_slice(&o.stdout).expect("status document");
    let b = &s.bundles[0];
    assert_eq!(b.state, "partially-applied", "{b:?}");
    assert_eq!(b.applied_tiers, ["one"]);
    assert_eq!(b.tiers_total, Some(2));
    assert_eq!(b.remaining_tiers.as_deref(), Some(&["two".to_string()][..]));
    assert_eq!(s.rows[0].bundle_tiers.as_deref(), Some(r#"["one","two"]"#));
    let o = c.run(&["status"]);
    expect_code(&o, 0);
    let text = stdout(&o);
    assert!(text.contains("partial 1/2"), "{text}");
    assert!(
        text.contains("1 of 2 tier(s) applied; remaining: two (airlock apply continues with two)"),
        "{text}"
    );
    assert!(!text.contains("give --bundle"), "{text}");
    // Once the rest is applied: applied, nothing remains, the chain holds.
    expect_code(&c.deploy("apply", &[]), 0);
    let o = c.run(&["--json", "status", "--verify-chain"]);
    expect_code(&o, 0);
    let s: StatusDoc = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s.bundles[0].state, "applied");
    assert_eq!(s.bundles[0].remaining_tiers.as_deref(), Some(&[][..]));
}

/// RFC 3339, UTC, whole seconds: `2026-06-03T09:15:00Z`.
fn one_format(t: &str) -> bool {
    let b = t.as_bytes();
    t.len() == 20
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

#[test]
fn timestamps_come_in_one_format_in_receipts_the_ledger_and_status() {
    let c = Case::new("stamps");
    let o = c.deploy("apply", &["--json", "--through", "one"]);
    expect_code(&o, 0);
    let receipt = json(&o);
    for field in ["started_at", "finished_at"] {
        let t = receipt[field].as_str().unwrap_or_default();
        assert!(one_format(t), "{field}: {t}");
    }
    let o = c.run(&["--json", "status"]);
    let s: StatusDoc = serde_json::from_slice(&o.stdout).unwrap();
    assert!(one_format(&s.rows[0].at), "{}", s.rows[0].at);
    assert!(one_format(&s.bundles[0].at), "{}", s.bundles[0].at);
    // A row an earlier airlock wrote keeps its stored time (it is hashed); people see
    // it in the one format.
    let o = c.run(&["status"]);
    assert!(stdout(&o).contains(&s.rows[0].at), "{}", stdout(&o));
}

/// A trust store of `keys` with `toml`.
fn store(dir: &Path, keys: &[&str], toml: &str) -> String {
    trust_store(dir, "store", keys, toml)
        .to_string_lossy()
        .into_owned()
}

#[test]
fn plan_judges_the_receipt_policy_as_apply_does() {
    let c = Case::new("receipts");
    let d = c.dir.path();
    let op = keygen(d, "op");
    keygen(d, "other");
    let s = store(
        d,
        &["k", "op"],
        &format!("require_signed_receipts = true\n[keys.{op}]\nrole = \"operator\"\n"),
    );
    let before = c.db.dump();
    for (key, code_wanted) in [
        (None, 2),
        (Some("k.key"), 2),
        (Some("other.key"), 2),
        (Some("op.key"), 0),
    ] {
        let mut extra: Vec<&str> = vec![];
        if let Some(k) = key {
            extra.extend(["--sign-receipt", k]);
        }
        let mut plan_args = vec!["--json", "plan", &c.bundle, "--trust", &s];
        plan_args.extend(&extra);
        let o = c.run(&plan_args);
        let plan: PlanDoc = serde_json::from_slice(&o.stdout).expect("plan document");
        let row = plan
            .checks
            .iter()
            .find(|c| c.check == "receipt-policy")
            .expect("a receipt-policy row");
        assert_eq!(code(&o), code_wanted, "plan {key:?}: {row:?}");
        assert_eq!(plan.exit_code, code_wanted);
        if code_wanted == 2 {
            assert_eq!(
                (plan.verdict.as_str(), row.verdict.as_str()),
                ("NO-GO", "FAIL")
            );
            assert_eq!(c.db.dump(), before, "plan {key:?} changed the database");
        } else {
            assert_eq!(row.verdict, "OK", "{row:?}");
        }
        let receipt = d.join(format!("r-{}.json", key.unwrap_or("none")));
        let receipt = receipt.to_str().unwrap();
        let mut apply_args = vec![
            "--json",
            "apply",
            &c.bundle,
            "--trust",
            &s,
            "--yes",
            "--receipt",
            receipt,
        ];
        apply_args.extend(&extra);
        let o = c.run(&apply_args);
        assert_eq!(
            code(&o),
            code_wanted,
            "apply {key:?} exits as plan said: {}",
            stdout(&o)
        );
        if code_wanted == 2 {
            assert_eq!(
                json(&o)["error"].as_str().unwrap_or_default(),
                row.evidence,
                "plan and apply say the same"
            );
            assert_eq!(c.db.dump(), before, "apply {key:?} changed the database");
        }
    }
}

/// The commands under "the same steps by hand" of `demo`'s human output, numbers cut.
fn printed_commands(text: &str) -> Vec<String> {
    let mut lines = text
        .lines()
        .skip_while(|l| !l.starts_with("the same steps by hand"));
    lines.next();
    lines
        .take_while(|l| !l.trim().is_empty())
        .map(|l| {
            let l = l.trim_start();
            l[l.find(' ').expect("a numbered line")..]
                .trim()
                .to_string()
        })
        .collect()
}

#[test]
fn the_steps_demo_keep_prints_replay_as_printed_on_a_fresh_database() {
    let t = tempdir();
    let o = airlock(t.path(), &["demo", "--keep"]);
    expect_code(&o, 0);
    let text = stdout(&o);
    let kept = text
        .lines()
        .find_map(|l| l.strip_prefix("kept: database "))
        .unwrap_or_else(|| panic!("no kept line:\n{text}"));
    let (db, work) = kept
        .split_once(" and files in ")
        .expect("database and files");
    let (db, work) = (db.to_string(), PathBuf::from(work));
    let commands = printed_commands(&text);
    // The database is created owned by the demo's application role, made first.
    assert!(
        commands[0].starts_with("psql ") && commands[0].contains(" && createdb -O "),
        "{commands:#?}"
    );
    assert!(commands[2].starts_with("airlock setup "), "{commands:#?}");
    for shown in ["--through", "--wait", "fingerprint --diff", "> "] {
        assert!(
            commands.iter().any(|c| c.contains(shown)),
            "{shown} is never shown: {commands:#?}"
        );
    }
    for file in [
        "demo-release.key",
        "fixture/approve.sql",
        "fixture/01_greenfield.sql",
        "before.json",
        "trust/trust.toml",
        "approvals/approver-2.approval",
        "approvals/approver-2.approval.minisig",
    ] {
        assert!(work.join(file).exists(), "--keep left no {file}");
    }
    // A fresh database of the same name, its roles made anew, and a fresh host:
    // replay every line.
    let tag = db.trim_start_matches("airlock_demo_").to_string();
    let drop_all = || {
        let mut admin = admin();
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"))
            .unwrap();
        admin
            .batch_execute(&format!(
                "DROP ROLE IF EXISTS airlock_demo_deploy_{tag}; DROP ROLE IF EXISTS airlock_demo_app_{tag};"
            ))
            .unwrap();
    };
    drop_all();
    let replay = tempdir();
    let state = tempdir();
    let path = format!(
        "{}:{}",
        bin().parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut said = String::new();
    for c in &commands {
        let o = std::process::Command::new("sh")
            .args(["-e", "-c", c])
            .current_dir(replay.path())
            .env("PATH", &path)
            .env("AIRLOCK_STATE_DIR", state.path())
            .env_remove("AIRLOCK_DB")
            .env_remove("AIRLOCK_TRUST")
            .output()
            .expect("sh");
        said.push_str(&format!("$ {c}\n{}{}", stdout(&o), stderr(&o)));
        assert!(o.status.success(), "{c} failed:\n{said}");
    }
    // The story it told: the ledger holds the partial apply, the rest, the rollback;
    // and the last line compared the saved fingerprints (equal, or it would fail).
    let mut client = postgres::Config::new()
        .host(&std::env::var("PGHOST").unwrap_or_else(|_| "/var/run/postgresql".into()))
        .port(pg_port())
        .user(&std::env::var("PGUSER").unwrap_or_else(|_| "root".into()))
        .dbname(&db)
        .connect(postgres::NoTls)
        .expect("the replayed database");
    let events: Vec<String> = client
        .query(
            "SELECT event FROM airlock.ledger WHERE event <> 'receipt' ORDER BY seq",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(events, ["apply", "apply", "rollback"], "{said}");
    drop(client);
    drop_all();
    let _ = std::fs::remove_dir_all(&work);
}

/// The ledger as airlock up to this change created it: 14 columns, no `bundle_tiers`.
const LEDGER_OF_EARLIER_VERSIONS: &str = r#"
CREATE SCHEMA IF NOT EXISTS airlock;
CREATE TABLE airlock.ledger (
    seq                bigint PRIMARY KEY,
    at                 text   NOT NULL,
    event              text   NOT NULL CHECK (event IN ('apply', 'rollback')),
    bundle_name        text   NOT NULL,
    bundle_version     text   NOT NULL,
    sequence           bigint NOT NULL,
    bundle_id          text   NOT NULL,
    tiers              text   NOT NULL,
    params             text   NOT NULL,
    operator           text   NOT NULL,
    fingerprint_before text   NOT NULL,
    fingerprint_after  text   NOT NULL,
    prev_hash          text   NOT NULL,
    row_hash           text   NOT NULL UNIQUE
);
CREATE OR REPLACE FUNCTION airlock.ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'airlock.ledger is append-only (% refused)', TG_OP;
END $$;
CREATE TRIGGER ledger_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON airlock.ledger
    FOR EACH STATEMENT EXECUTE FUNCTION airlock.ledger_append_only();
"#;

#[test]
fn a_ledger_an_earlier_version_created_still_works_and_status_asks_for_the_bundle() {
    let c = Case::new("oldledger");
    c.db.exec(LEDGER_OF_EARLIER_VERSIONS);
    expect_code(&c.deploy("apply", &["--through", "one"]), 0);
    let o = c.run(&["--json", "status", "--verify-chain"]);
    expect_code(&o, 0);
    let s: StatusDoc = serde_json::from_slice(&o.stdout).expect("status document");
    assert_eq!(s.ran().len(), 1);
    assert_eq!(
        s.ran()[0].bundle_tiers,
        None,
        "no such column to record it in"
    );
    assert_eq!(s.bundles[0].tiers_total, None);
    let o = c.run(&["status"]);
    assert!(stdout(&o).contains("give --bundle"), "{}", stdout(&o));
    // With the bundle, status knows; and the continuation and rollback chain on.
    let o = c.run(&[
        "--json", "status", "--bundle", &c.bundle, "--trust", &c.trust,
    ]);
    expect_code(&o, 0);
    // The store that verified the bundle has no version: status says so.
    assert_eq!(
        json(&o)["trust_store"],
        serde_json::json!({}),
        "{}",
        stdout(&o)
    );
    let s: StatusDoc = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s.bundles[0].state, "partially-applied");
    let o = c.run(&["status", "--bundle", &c.bundle, "--trust", &c.trust]);
    assert!(
        stdout(&o).contains("no version: it cannot be rotated by signature"),
        "{}",
        stdout(&o)
    );
    expect_code(&c.deploy("apply", &[]), 0);
    expect_code(&c.deploy("rollback", &[]), 0);
    let o = c.run(&["--json", "status", "--verify-chain"]);
    expect_code(&o, 0);
    let s: StatusDoc = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s.ran().len(), 3);
    // Widened once, by the first receipt it recorded as delivered: the columns later
    // versions record, appended, every earlier row's hash unchanged (the chain held).
    assert_eq!(
        c.db.scalar("SELECT string_agg(column_name, ',' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_schema = 'airlock' AND table_name = 'ledger' AND ordinal_position > 14"),
        "bundle_tiers,approvals,receipt",
    );
}

#[test]
fn a_bundle_tiers_column_that_is_not_airlocks_makes_the_ledger_untrusted() {
    for (what, column) in [
        ("another type", "bundle_tiers integer"),
        ("a default", "bundle_tiers text DEFAULT '[\"x\"]'"),
        ("not null", "bundle_tiers text NOT NULL"),
        ("another name", "tiers_all text"),
    ] {
        let c = Case::new("tierscol");
        c.db.exec(LEDGER_OF_EARLIER_VERSIONS);
        c.db.exec(&format!("ALTER TABLE airlock.ledger ADD COLUMN {column}"));
        let before = c.db.dump();
        let o = c.deploy("apply", &["--json"]);
        expect_code(&o, 5);
        assert_eq!(
            json(&o)["kind"],
            "ledger-untrusted",
            "{what}: {}",
            stdout(&o)
        );
        assert_eq!(
            c.db.dump(),
            before,
            "{what}: the refused apply changed the database"
        );
    }
}
