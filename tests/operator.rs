//! The operator's day through the real binary against real PostgreSQL: `plan` as the
//! GO/NO-GO with apply's exit code, `--wait` for the gate to open, a rehearsal and a
//! status after `apply --through`, and receipts that never collide and never turn a
//! committed change into a failure.

mod util;
use serde_json::Value;
use std::io::BufRead;
use std::path::Path;
use util::child::{finish, spawn, until_line};
use util::*;

const APR: &str = "ratified_apr=APR-BOOT-AUTHMODEL-1";

fn validate(schema_name: &str, doc: &Value) {
    let text =
        std::fs::read_to_string(repo().join("schemas").join(schema_name)).expect("schema file");
    let schema: Value = serde_json::from_str(&text).expect("schema json");
    let compiled = jsonschema::JSONSchema::compile(&schema).expect("schema compiles");
    if let Err(errors) = compiled.validate(doc) {
        let msgs: Vec<String> = errors
            .map(|e| format!("{} at {}", e, e.instance_path))
            .collect();
        panic!(
            "output does not match schemas/{schema_name}:\n{}\n{doc:#}",
            msgs.join("\n")
        );
    };
}

struct Case {
    t: tempfile::TempDir,
    db: TestDb,
}

const TWO: &[(&str, &str, bool)] = &[
    ("structure", "CREATE TABLE app.t1(i int);", false),
    ("seed", "INSERT INTO app.t1 VALUES (1);", true),
];
const RB: &str = "DROP TABLE IF EXISTS app.t1;";
const GATE: &str =
    "SELECT count(*) >= 1 AS ready, count(*) || ' approval(s)' AS reason FROM fx.approvals";

impl Case {
    fn new(tag: &str) -> Case {
        let db = TestDb::new(tag);
        db.exec("CREATE SCHEMA app; CREATE SCHEMA fx; CREATE TABLE fx.approvals(id int);");
        let t = keyed_dir();
        Case { t, db }
    }

    fn dir(&self) -> &Path {
        self.t.path()
    }

    /// The mini bundle (name "mini", version 1.0) for this database, with `sequence`
    /// and extra SQL in its first tier (another bundle id).
    fn bundle(&self, out: &str, sequence: u32, extra_sql: &str) -> String {
        let root = self.dir().join(format!("src-{out}"));
        let first = format!("CREATE TABLE app.t1(i int);{extra_sql}");
        let tiers = [(TWO[0].0, first.as_str(), false), TWO[1]];
        let s = MiniSource::new(&root, &self.db.name, GATE, &tiers, RB);
        let toml = s.dir.join("bundle.toml");
        let text = std::fs::read_to_string(&toml)
            .unwrap()
            .replace("sequence = 1", &format!("sequence = {sequence}"));
        std::fs::write(&toml, text).unwrap();
        pack(self.dir(), &s.dir, "rm.key", out);
        out.to_string()
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        let conn = self.db.conn();
        let mut a: Vec<&str> = vec!["--json"];
        a.extend(args);
        a.extend(["--trust", "rm.pub", "--db", conn.as_str()]);
        airlock(self.dir(), &a)
    }

    fn approve(&self) {
        self.db.exec("INSERT INTO fx.approvals VALUES (1)");
    }

    /// `apply BUNDLE --wait`, polling every 100ms for at most `timeout`.
    fn apply_wait(&self, bundle: &str, timeout: &str) -> std::process::Output {
        self.run(&[
            "apply",
            bundle,
            "--param",
            "code=x",
            "--wait",
            "--poll-interval",
            "100ms",
            "--wait-timeout",
            timeout,
        ])
    }

    /// `plan ARGS`, then `apply ARGS`: plan exits with what apply exits with, names
    /// `failing` as its first check that did not pass, and changes nothing; a refused
    /// apply changes nothing either. Returns plan's document.
    #[track_caller]
    fn plan_then_apply(&self, args: &[&str], want: i32, failing: Option<&str>) -> Value {
        let before = self.db.dump();
        let mut p = vec!["plan"];
        p.extend(args);
        let o = self.run(&p);
        expect_code(&o, want);
        assert_eq!(self.db.dump(), before, "plan {args:?} changed the database");
        let plan = json(&o);
        validate("plan.schema.json", &plan);
        assert_eq!(plan["exit_code"], want, "{plan:#}");
        let first = plan["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["verdict"] != "OK" && c["verdict"] != "SKIPPED");
        assert_eq!(
            first.map(|c| c["check"].clone()),
            failing.map(Value::from),
            "{plan:#}"
        );
        let verdict = match want {
            0 => "GO",
            3 => "BLOCKED",
            _ => "NO-GO",
        };
        assert_eq!(plan["verdict"], verdict, "{plan:#}");
        let mut a = vec!["apply"];
        a.extend(args);
        let o = self.run(&a);
        expect_code(&o, want);
        if want != 0 {
            assert_eq!(
                self.db.dump(),
                before,
                "a refused apply {args:?} changed the database"
            );
        }
        plan
    }
}

#[test]
fn plan_exits_as_apply_would_for_every_check_and_changes_nothing() {
    let c = Case::new("planrows");
    let b = c.bundle("b.tar.gz", 1, "");
    // Every check is a row, in apply's order.
    let p = c.plan_then_apply(&[&b], 2, Some("required-params"));
    let names: Vec<&str> = p["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "signatures",
            "params",
            "receipt-policy",
            "database",
            "ledger",
            "remembered-head",
            "deploy-lock",
            "ledger-state",
            "required-params",
            "gate-role",
            "gates",
            "preflight",
            "bundle-role",
            "predicted-failures",
            "destroys"
        ]
    );
    c.plan_then_apply(&[&b, "--param", "code=not!ok"], 2, Some("params"));
    c.plan_then_apply(&[&b, "--through", "nope"], 2, Some("ledger-state"));
    // BLOCKED: which tiers can run now.
    let p = c.plan_then_apply(&[&b, "--param", "code=x"], 3, Some("gates"));
    assert_eq!(p["runnable_now"], serde_json::json!(["structure"]));
    assert!(p["checks"][10]["evidence"]
        .as_str()
        .unwrap()
        .contains("0 approval(s)"));
    // The target is not where the bundle expects it.
    c.db.exec("CREATE TABLE app.stray(i int)");
    c.plan_then_apply(&[&b, "--through", "structure"], 5, Some("preflight"));
    c.db.exec("DROP TABLE app.stray");
    // GO, and apply runs what plan listed.
    let p = c.plan_then_apply(&[&b, "--through", "structure"], 0, None);
    assert_eq!(p["tiers"][0]["name"], "structure");
    // Another session holding the deploy lock is shown (it may be gone by the time
    // apply runs, so it does not decide the verdict).
    {
        let mut holder = c.db.client();
        let mut tx = holder.transaction().unwrap();
        tx.batch_execute("LOCK TABLE airlock.ledger IN SHARE ROW EXCLUSIVE MODE")
            .unwrap();
        let o = c.run(&["plan", &b, "--param", "code=x"]);
        let p = json(&o);
        let lock = p["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == "deploy-lock")
            .unwrap();
        assert!(
            lock["evidence"]
                .as_str()
                .unwrap()
                .starts_with("held now by pid"),
            "{p:#}"
        );
        tx.rollback().unwrap();
    }
    // A continuation on a schema that changed since.
    c.approve();
    c.db.exec("ALTER TABLE app.t1 ADD COLUMN surprise int");
    c.plan_then_apply(&[&b, "--param", "code=x"], 5, Some("drift"));
    c.plan_then_apply(&[&b, "--param", "code=x", "--allow-drift"], 0, None);
    // Everything applied.
    let p = c.plan_then_apply(&[&b, "--param", "code=x"], 6, Some("ledger-state"));
    assert!(p["refusal"].as_str().unwrap().contains("already applied"));
    // A ledger edited outside airlock.
    c.db.exec(
        "ALTER TABLE airlock.ledger DISABLE TRIGGER ledger_append_only;
         UPDATE airlock.ledger SET operator = 'mallory' WHERE seq = 1;
         ALTER TABLE airlock.ledger ENABLE TRIGGER ledger_append_only;",
    );
    c.plan_then_apply(&[&b, "--param", "code=x"], 5, Some("ledger"));
}

#[test]
fn plan_names_equivocation_downgrade_and_a_ledger_that_lost_history_as_apply_does() {
    let c = Case::new("planledger");
    c.approve();
    let v1 = c.bundle("v1.tar.gz", 1, "");
    let v1b = c.bundle("v1b.tar.gz", 1, " SELECT 'other';");
    let v2 = c.bundle("v2.tar.gz", 2, " SELECT 2;");
    expect_code(&c.run(&["apply", &v1, "--param", "code=x"]), 0);
    let p = c.plan_then_apply(&[&v1b, "--param", "code=x"], 6, Some("ledger-state"));
    assert!(p["refusal"].as_str().unwrap().contains("equivocation"));
    expect_code(&c.run(&["rollback", &v1]), 0);
    expect_code(&c.run(&["apply", &v2, "--param", "code=x"]), 0);
    let p = c.plan_then_apply(&[&v1, "--param", "code=x"], 6, Some("ledger-state"));
    assert!(p["refusal"].as_str().unwrap().contains("downgrade"));
    // Rows this host saw are gone.
    c.db.exec(
        "ALTER TABLE airlock.ledger DISABLE TRIGGER ledger_append_only;
         DELETE FROM airlock.ledger WHERE seq > 1;
         ALTER TABLE airlock.ledger ENABLE TRIGGER ledger_append_only;",
    );
    c.plan_then_apply(&[&v2, "--param", "code=x"], 5, Some("remembered-head"));
}

/// `airlock ARGS` (human output) in `dir`, stdout and stderr piped.
fn fixture(db: &TestDb) {
    let sql =
        std::fs::read_to_string(repo().join("bundle/one-roof-fixture/01_greenfield.sql")).unwrap();
    db.exec(&sql);
}

fn approve(db: &TestDb) {
    db.exec(&std::fs::read_to_string(repo().join("bundle/one-roof-fixture/approve.sql")).unwrap());
}

/// The reference release packed as `ref.tar.gz` (key `rm`) in a fresh directory with
/// the trust store `trust` and both approvals in `approvals` ([`reference_release`]),
/// and applied `--through axis` to a fresh fixture database.
fn reference_through_axis(tag: &str) -> (tempfile::TempDir, TestDb) {
    let t = tempdir();
    let dir = t.path();
    let db = TestDb::new(tag);
    fixture(&db);
    reference_release(dir, &db.name);
    let conn = db.conn();
    let a = [
        "apply",
        "ref.tar.gz",
        "--through",
        "axis",
        "--trust",
        "trust",
        "--db",
        &conn,
    ];
    expect_code(&airlock(dir, &a), 0);
    (t, db)
}

#[test]
fn apply_wait_goes_on_when_the_gate_opens_and_runs_the_rest_of_the_reference_release() {
    let (t, db) = reference_through_axis("waitopen");
    let dir = t.path();
    let conn = db.conn();
    let base = [
        "--trust",
        "trust",
        "--db",
        conn.as_str(),
        "--approval",
        "approvals",
    ];
    // The post-ratification step, started before the ratification.
    let mut a = vec![
        "apply",
        "ref.tar.gz",
        "--param",
        APR,
        "--wait",
        "--poll-interval",
        "200ms",
        "--wait-timeout",
        "2m",
    ];
    a.extend(base);
    let mut child = spawn(dir, &a);
    let (err, seen) = until_line(&mut child, "BLOCKED");
    assert!(
        seen.last()
            .unwrap()
            .contains("poll 1: BLOCKED: ratification"),
        "{seen:?}"
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM airlock.ledger WHERE event <> 'receipt'"),
        "1",
        "nothing may change while waiting"
    );
    approve(&db);
    let (code, out, rest) = finish(child, err);
    assert_eq!(code, 0, "{out}\n{rest}");
    assert!(rest.contains(": READY"), "{rest}");
    assert!(out.starts_with("APPLIED"), "{out}");
    assert_eq!(
        db.scalar("SELECT count(*) FROM airlock.ledger WHERE event = 'apply'"),
        "2"
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM one_roof.v_ownership"),
        "210"
    );
}

/// `dir/TO` holding the approvals of `whos` from `dir/approvals` (each with its
/// signature): fewer than the quorum, for a test to complete.
fn some_approvals(dir: &Path, to: &str, whos: &[&str]) {
    std::fs::create_dir_all(dir.join(to)).unwrap();
    for who in whos {
        for ext in ["approval", "approval.minisig"] {
            let name = format!("{who}.{ext}");
            std::fs::copy(dir.join("approvals").join(&name), dir.join(to).join(&name)).unwrap();
        }
    }
}

#[test]
fn rehearse_with_one_approval_short_goes_past_the_gate_on_the_clone_and_with_both_is_ready() {
    let t = tempdir();
    let dir = t.path();
    let db = TestDb::new("rehquorum");
    fixture(&db);
    approve(&db); // the database gate is open: only the signed quorum is short
    reference_release(dir, &db.name);
    some_approvals(dir, "one", &APPROVERS[..1]);
    let conn = db.conn();
    let before = db.dump();
    let rehearse = |approvals: &str, extra: &[&str]| {
        let mut a = vec![
            "--json",
            "rehearse",
            "ref.tar.gz",
            "--trust",
            "trust",
            "--db",
            &conn,
            "--param",
            APR,
            "--approval",
            approvals,
        ];
        a.extend(extra);
        airlock(dir, &a)
    };
    // N-1 with --require-ready: stopped at the gate (exit 3), the clone dropped.
    let o = rehearse("one", &["--require-ready"]);
    expect_code(&o, 3);
    let r = json(&o);
    validate("rehearse.schema.json", &r);
    assert_eq!(r["gate"], "BLOCKED", "{r:#}");
    assert_eq!(r["gates_assumed"], false, "{r:#}");
    assert!(!TestDb::exists(r["clone"].as_str().unwrap()));
    let gate = r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == "gate")
        .unwrap();
    assert!(
        gate["detail"]
            .as_str()
            .unwrap()
            .contains("ratification: 1 of 2 approval(s)"),
        "{gate:#}"
    );
    // N-1 by default: the whole cycle on the clone, past the gate, said so.
    let o = rehearse("one", &[]);
    expect_code(&o, 0);
    let r = json(&o);
    assert_eq!(r["gate"], "BLOCKED", "{r:#}");
    assert_eq!(r["gates_assumed"], true, "{r:#}");
    // N: READY on the target, every step held with the gate judged, not assumed.
    let o = rehearse("approvals", &[]);
    expect_code(&o, 0);
    let r = json(&o);
    validate("rehearse.schema.json", &r);
    assert_eq!(r["gate"], "READY", "{r:#}");
    assert_eq!(r["gates_assumed"], false, "{r:#}");
    assert!(
        r["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["verdict"] == "PASS"),
        "{r:#}"
    );
    assert_eq!(db.dump(), before, "a rehearsal changed the target");
}

#[test]
fn apply_wait_goes_on_when_the_last_approval_lands_in_the_directory() {
    let (t, db) = reference_through_axis("waitsigned");
    let dir = t.path();
    approve(&db); // the database gate is open: the wait is for the second signature
    some_approvals(dir, "incoming", &APPROVERS[..1]);
    let conn = db.conn();
    let mut child = spawn(
        dir,
        &[
            "apply",
            "ref.tar.gz",
            "--param",
            APR,
            "--wait",
            "--poll-interval",
            "200ms",
            "--wait-timeout",
            "2m",
            "--yes",
            "--receipt",
            "apply.json",
            "--trust",
            "trust",
            "--db",
            &conn,
            "--approval",
            "incoming",
        ],
    );
    let (err, seen) = until_line(&mut child, "BLOCKED");
    assert!(
        seen.last()
            .unwrap()
            .contains("poll 1: BLOCKED: ratification: 1 of 2 approval(s)"),
        "{seen:?}"
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM airlock.ledger WHERE event <> 'receipt'"),
        "1",
        "nothing may change while waiting"
    );
    // The second approver signs into the directory the apply reads at each poll.
    approve_as(dir, "trust", "ref.tar.gz", APPROVERS[1], &[APR], "incoming");
    let (code, out, rest) = finish(child, err);
    assert_eq!(code, 0, "{out}\n{rest}");
    assert!(rest.contains(": READY"), "{rest}");
    assert!(out.starts_with("APPLIED"), "{out}");
    assert_eq!(
        db.scalar("SELECT count(*) FROM airlock.ledger WHERE event = 'apply'"),
        "2"
    );
    // The receipt carries both approvals that opened the gate.
    let receipt: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("apply.json")).unwrap()).unwrap();
    let quorum = &receipt["gates"]["ratification"];
    assert_eq!(quorum["counted"], 2, "{receipt:#}");
    assert_eq!(quorum["met"], true, "{receipt:#}");
}

#[test]
fn plan_shows_the_quorum_as_a_row_of_its_own() {
    let t = tempdir();
    let dir = t.path();
    let db = TestDb::new("planquorum");
    fixture(&db);
    approve(&db);
    reference_release(dir, &db.name);
    some_approvals(dir, "one", &APPROVERS[..1]);
    let conn = db.conn();
    let plan = |approvals: &str| {
        airlock(
            dir,
            &[
                "plan",
                "ref.tar.gz",
                "--param",
                APR,
                "--trust",
                "trust",
                "--db",
                &conn,
                "--approval",
                approvals,
            ],
        )
    };
    let o = plan("one");
    expect_code(&o, 3);
    let out = stdout(&o);
    let row = out
        .lines()
        .find(|l| l.starts_with("(signed approvals)"))
        .unwrap_or_else(|| panic!("no quorum row:\n{out}"));
    assert!(row.contains("BLOCKED"), "{row}");
    assert!(row.contains("ratification: 1 of 2 approval(s)"), "{out}");
    assert!(out.contains("missing: 1 more approver(s)"), "{out}");
    let o = plan("approvals");
    expect_code(&o, 0);
    let out = stdout(&o);
    let row = out
        .lines()
        .find(|l| l.starts_with("(signed approvals)"))
        .unwrap_or_else(|| panic!("no quorum row:\n{out}"));
    assert!(row.contains("READY"), "{row}");
    assert!(row.contains("ratification: 2 of 2 approval(s)"), "{out}");
    // gate prints the same table, the quorum asked in its first line.
    let o = airlock(
        dir,
        &[
            "gate",
            "ref.tar.gz",
            "--param",
            APR,
            "--trust",
            "trust",
            "--db",
            &conn,
            "--approval",
            "one",
        ],
    );
    expect_code(&o, 3);
    let out = stdout(&o);
    assert!(
        out.starts_with("BLOCKED: 1 gate(s) and 2 signed approval(s) asked on database"),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("(signed approvals)") && l.contains("BLOCKED")),
        "{out}"
    );
}

#[test]
fn apply_wait_refuses_to_wait_when_a_check_waiting_cannot_fix_fails() {
    let c = Case::new("waithopeless");
    let b = c.bundle("b.tar.gz", 1, "");
    // The preflight expects no table in app: one there is a NO-GO a gate cannot lift.
    c.db.exec("CREATE TABLE app.stray (i int);");
    let before = c.db.dump();
    let o = c.apply_wait(&b, "30s");
    expect_code(&o, 5);
    let e = json(&o);
    validate("error.schema.json", &e);
    assert_eq!(e["kind"], "not-waiting", "{e:#}");
    let error = e["error"].as_str().unwrap();
    assert!(error.contains("the preflight check fails"), "{error}");
    assert_eq!(c.db.dump(), before);
    // plan says the same before anyone waits: BLOCKED first, the preflight failing too.
    let o = c.run(&["plan", &b, "--param", "code=x"]);
    let p = json(&o);
    let preflight = p["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["check"] == "preflight")
        .unwrap();
    assert_eq!(preflight["verdict"], "FAIL", "{p:#}");
}

#[test]
fn a_gate_that_never_opens_times_out_blocked_and_nothing_changes() {
    let c = Case::new("waitnever");
    let b = c.bundle("b.tar.gz", 1, "");
    let before = c.db.dump();
    let o = c.run(&[
        "gate",
        &b,
        "--wait",
        "--poll-interval",
        "100ms",
        "--wait-timeout",
        "1s",
    ]);
    expect_code(&o, 3);
    let g = json(&o);
    validate("gate.schema.json", &g);
    assert_eq!(g["verdict"], "BLOCKED");
    assert_eq!(g["wait"]["ended"], "timeout");
    assert!(g["wait"]["polls"].as_u64().unwrap() >= 2, "{g:#}");
    // One change of verdict: the first poll.
    assert_eq!(g["wait"]["changes"].as_array().unwrap().len(), 1, "{g:#}");
    assert_eq!(g["wait"]["changes"][0]["verdict"], "BLOCKED");
    // Without --json the wait speaks: a heartbeat when nothing changed for a while
    // (never in the history), and a last line with its time and a human duration.
    let conn = c.db.conn();
    let o = airlock(
        c.dir(),
        &[
            "gate",
            &b,
            "--trust",
            "rm.pub",
            "--db",
            &conn,
            "--wait",
            "--poll-interval",
            "100ms",
            "--heartbeat",
            "300ms",
            "--wait-timeout",
            "1s",
        ],
    );
    expect_code(&o, 3);
    let err = stderr(&o);
    assert!(
        err.contains(": still BLOCKED after "),
        "no heartbeat:\n{err}"
    );
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("20") && last.contains("T") && last.contains(" still BLOCKED after 1"),
        "the last line has no time or no human duration: {last}"
    );
    // apply --wait ends the same way, as the gate document with its poll history.
    let o = c.apply_wait(&b, "500ms");
    expect_code(&o, 3);
    let g = json(&o);
    validate("gate.schema.json", &g);
    assert_eq!(g["wait"]["ended"], "timeout");
    assert_eq!(
        c.db.dump(),
        before,
        "a wait that timed out changed the database"
    );
    assert_eq!(
        c.db.scalar("SELECT to_regclass('airlock.ledger') IS NULL"),
        "t"
    );
    // A bad duration is a usage error.
    expect_code(
        &c.run(&["gate", &b, "--wait", "--poll-interval", "soon"]),
        2,
    );
    // Once READY, apply --wait is a plain apply; its document carries the poll history.
    c.approve();
    let o = c.apply_wait(&b, "1m");
    expect_code(&o, 0);
    let r = json(&o);
    validate("apply.schema.json", &r);
    assert_eq!(r["wait"]["ended"], "ready");
    assert_eq!(r["wait"]["changes"][0]["verdict"], "READY");
    assert_eq!(r["tiers"], serde_json::json!(["structure", "seed"]));
}

#[test]
fn ctrl_c_while_waiting_exits_blocked_with_nothing_changed() {
    let c = Case::new("waitint");
    let b = c.bundle("b.tar.gz", 1, "");
    let before = c.db.dump();
    let conn = c.db.conn();
    let mut child = spawn(
        c.dir(),
        &[
            "apply",
            &b,
            "--param",
            "code=x",
            "--wait",
            "--poll-interval",
            "100ms",
            "--trust",
            "rm.pub",
            "--db",
            &conn,
        ],
    );
    let (err, _) = until_line(&mut child, "poll 1: BLOCKED");
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let (code, out, rest) = finish(child, err);
    assert_eq!(code, 3, "{out}\n{rest}");
    assert!(rest.contains("stopped waiting (Ctrl-C)"), "{rest}");
    // Ctrl-C says what it does to a wait, not what it would do to a deploy.
    assert!(
        rest.contains("no longer waiting for the gate; nothing was changed"),
        "{rest}"
    );
    assert!(!rest.contains("will be rolled back"), "{rest}");
    assert_eq!(c.db.dump(), before);
}

/// Issue 68, item 10: on an 80-column terminal the confirmation is wrapped at spaces,
/// so the database name to type (and every other identifier) is shown whole, never
/// split mid-word by the terminal; a wrong name changes nothing.
#[test]
fn at_80_columns_the_confirmation_never_splits_the_name_to_type() {
    let c = Case::new("a_confirmation_naming_a_long_database");
    assert!(c.db.name.len() > 50, "{}", c.db.name);
    c.approve();
    let b = c.bundle("b.tar.gz", 1, "");
    let conn = c.db.conn();
    let o = airlock_tty_sized(
        c.dir(),
        &[
            "apply", &b, "--param", "code=x", "--trust", "rm.pub", "--db", &conn,
        ],
        "not-the-name\n",
        Some(80),
    );
    let shown = stdout(&o).replace('\r', "");
    let lines: Vec<&str> = shown.lines().collect();
    assert!(
        // (The error follows the prompt on its line: the typed answer was echoed first.)
        lines
            .iter()
            .filter(|l| !l.contains("error: cancelled"))
            .all(|l| l.chars().count() <= 80),
        "a line wider than the terminal:\n{shown}"
    );
    let about = lines
        .iter()
        .position(|l| l.starts_with("About to apply"))
        .unwrap_or_else(|| panic!("the confirmation:\n{shown}"));
    assert!(
        lines[about..]
            .iter()
            .filter(|l| l.contains(&c.db.name))
            .count()
            >= 2,
        "the name, whole, in the summary and the prompt:\n{shown}"
    );
    assert_ne!(o.status.code(), Some(0), "{shown}");
    assert_eq!(c.db.scalar("SELECT to_regclass('app.t1') IS NULL"), "t");
}

/// Issue 68, item 10: `--wait`'s poll lines on an 80-column terminal are wrapped at
/// spaces under their label: the gate's reason, long as it is, splits no word.
#[test]
fn at_80_columns_the_poll_lines_split_no_word() {
    let c = Case::new("poll_lines_80_columns");
    let table = "fx.approvals_from_the_change_advisory_board";
    let gate = format!(
        "SELECT false AS ready, 'waiting for {table} to hold the approval of the customer_email_normalization release' AS reason"
    );
    let s = MiniSource::new(&c.dir().join("src-long"), &c.db.name, &gate, TWO, RB);
    pack(c.dir(), &s.dir, "rm.key", "long.tar.gz");
    let before = c.db.dump();
    let conn = c.db.conn();
    let o = airlock_tty_sized(
        c.dir(),
        &[
            "apply",
            "long.tar.gz",
            "--param",
            "code=x",
            "--wait",
            "--yes",
            "--poll-interval",
            "100ms",
            "--wait-timeout",
            "300ms",
            "--trust",
            "rm.pub",
            "--db",
            &conn,
        ],
        "",
        Some(80),
    );
    let shown = stdout(&o).replace('\r', "");
    expect_code(&o, 3);
    assert!(shown.contains("poll 1: BLOCKED"), "{shown}");
    assert!(shown.contains(table), "the table name was split:\n{shown}");
    // What the terminal shows: colours (ESC [ … m) take no column.
    let visible = |l: &str| {
        let mut n = 0;
        let mut in_escape = false;
        for ch in l.chars() {
            match (in_escape, ch) {
                (false, '\u{1b}') => in_escape = true,
                (true, 'm') => in_escape = false,
                (true, _) => {}
                (false, _) => n += 1,
            }
        }
        n
    };
    for line in shown.lines() {
        assert!(
            visible(line) <= 80 || !line.trim().contains(' '),
            "a line wider than the terminal:\n{line}\n\n{shown}"
        );
    }
    assert_eq!(c.db.dump(), before);
}

#[test]
fn apply_wait_on_a_terminal_needs_yes() {
    let c = Case::new("waittty");
    let b = c.bundle("b.tar.gz", 1, "");
    let conn = c.db.conn();
    let o = airlock_tty(
        c.dir(),
        &[
            "apply", &b, "--param", "code=x", "--wait", "--trust", "rm.pub", "--db", &conn,
        ],
        "",
    );
    expect_code(&o, 2);
    assert!(
        stdout(&o).contains("--wait on a terminal needs --yes"),
        "{}",
        stdout(&o)
    );
    assert_eq!(
        c.db.scalar("SELECT to_regclass('airlock.ledger') IS NULL"),
        "t"
    );
}

/// Issue 48 finding 7: the cheap argument check comes before any passphrase prompt:
/// `--wait` on a terminal without `--yes` is refused before the receipt key is opened.
#[test]
fn apply_wait_without_yes_is_refused_before_the_receipt_key_is_opened() {
    let c = Case::new("waitkey");
    let b = c.bundle("b.tar.gz", 1, "");
    let o = airlock_env(
        c.dir(),
        &["--json", "keygen", "--out", "op"],
        &[("AIRLOCK_PASSPHRASE", "secret")],
    );
    expect_code(&o, 0);
    let conn = c.db.conn();
    let o = airlock_tty(
        c.dir(),
        &[
            "apply",
            &b,
            "--param",
            "code=x",
            "--wait",
            "--sign-receipt",
            "op.key",
            "--trust",
            "rm.pub",
            "--db",
            &conn,
        ],
        "",
    );
    expect_code(&o, 2);
    let out = stdout(&o);
    assert!(out.contains("--wait on a terminal needs --yes"), "{out}");
    assert!(
        !out.contains("Passphrase"),
        "asked for the key first: {out}"
    );
    assert_eq!(
        c.db.scalar("SELECT to_regclass('airlock.ledger') IS NULL"),
        "t"
    );
}

/// Issue 48 finding 7: `plan --sign-receipt` is a read-only check: an encrypted key is
/// not opened (no passphrase asked, no key derivation) when its `.pub` is beside it.
#[test]
fn plan_judges_the_receipt_key_without_opening_an_encrypted_one() {
    let c = Case::new("planpub");
    let b = c.bundle("b.tar.gz", 1, "");
    let o = airlock_env(
        c.dir(),
        &["--json", "keygen", "--out", "op"],
        &[("AIRLOCK_PASSPHRASE", "secret")],
    );
    expect_code(&o, 0);
    // No passphrase anywhere: opening the key would fail.
    let o = c.run(&["plan", &b, "--param", "code=x", "--sign-receipt", "op.key"]);
    let j = json(&o);
    let row = j["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["check"] == "receipt-policy")
        .unwrap_or_else(|| panic!("no receipt-policy row: {j:#}"))
        .clone();
    let evidence = row["evidence"].as_str().unwrap();
    assert!(
        evidence.contains("op.pub: plan does not open an encrypted key"),
        "{row:#}"
    );
    let conn = c.db.conn();
    let o = airlock_tty(
        c.dir(),
        &[
            "plan",
            &b,
            "--param",
            "code=x",
            "--sign-receipt",
            "op.key",
            "--trust",
            "rm.pub",
            "--db",
            &conn,
        ],
        "",
    );
    assert!(!stdout(&o).contains("Passphrase"), "{}", stdout(&o));
}

#[test]
fn on_a_terminal_apply_asks_only_after_the_read_only_checks_passed() {
    let c = Case::new("promptorder");
    let b = c.bundle("b.tar.gz", 1, "");
    let conn = c.db.conn();
    // BLOCKED: refused before the question; nothing typed is read.
    let o = airlock_tty(
        c.dir(),
        &[
            "apply", &b, "--param", "code=x", "--trust", "rm.pub", "--db", &conn,
        ],
        &format!("{}\n", c.db.name),
    );
    expect_code(&o, 3);
    assert!(
        !stdout(&o).contains("Type the database name"),
        "{}",
        stdout(&o)
    );
    assert_eq!(
        c.db.scalar("SELECT to_regclass('airlock.ledger') IS NULL"),
        "t"
    );
    // READY: now it asks.
    c.approve();
    let o = airlock_tty(
        c.dir(),
        &[
            "apply", &b, "--param", "code=x", "--trust", "rm.pub", "--db", &conn,
        ],
        &format!("{}\n", c.db.name),
    );
    expect_code(&o, 0);
    assert!(
        stdout(&o).contains("Type the database name"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn rehearse_and_status_after_apply_through_axis_on_the_reference_release() {
    let (t, db) = reference_through_axis("partial");
    let dir = t.path();
    let conn = db.conn();
    let base = ["--trust", "rm.pub", "--db", conn.as_str()];
    // status: 2 of 8 tiers, and which remain (the bundle an argument, as everywhere;
    // `--bundle`, its older spelling, below).
    let mut a = vec!["--json", "status", "ref.tar.gz"];
    a.extend(base);
    let o = airlock(dir, &a);
    expect_code(&o, 0);
    let s = json(&o);
    validate("status.schema.json", &s);
    let b = &s["bundles"][0];
    assert_eq!(b["state"], "partially-applied");
    assert_eq!(b["tiers_total"], 8);
    assert_eq!(b["applied_tiers"].as_array().unwrap().len(), 2);
    assert_eq!(b["remaining_tiers"][0], "ownership-seed");
    assert_eq!(b["remaining_tiers"].as_array().unwrap().len(), 6);
    // Each ledger row's tiers and params decoded beside the text the chain covers.
    let row = &s["rows"][0];
    assert!(row["tiers"].is_string(), "{row:#}");
    assert_eq!(
        row["tier_names"],
        serde_json::json!(["structure", "axis"]),
        "{row:#}"
    );
    assert!(row["param_values"].is_object(), "{row:#}");
    let o = airlock(dir, &a[1..]);
    assert!(
        stdout(&o).contains("2 of 8 tier(s) applied; remaining: ownership-seed"),
        "{}",
        stdout(&o)
    );
    // Without --db (and no PGDATABASE), status reads the bundle's target.
    let o = airlock(
        dir,
        &[
            "--json",
            "status",
            "--bundle",
            "ref.tar.gz",
            "--trust",
            "rm.pub",
        ],
    );
    expect_code(&o, 0);
    let s = json(&o);
    assert_eq!(s["database"], db.name.as_str(), "{s:#}");
    assert_eq!(s["database_from"], "the bundle's [target] database");
    assert_eq!(s["bundles"][0]["state"], "partially-applied");
    // rehearse: the remaining tiers, and a rollback back to before the first tier.
    let before = db.dump();
    let mut a = vec!["rehearse", "ref.tar.gz", "--param", APR, "--assume-gates"];
    a.extend(base);
    let o = airlock(dir, &a);
    expect_code(&o, 0);
    for line in stdout(&o).lines() {
        assert!(
            line.chars().count() <= 200,
            "a {}-column line: {line}",
            line.chars().count()
        );
    }
    let mut a = vec![
        "--json",
        "rehearse",
        "ref.tar.gz",
        "--param",
        APR,
        "--assume-gates",
    ];
    a.extend(base);
    let o = airlock(dir, &a);
    expect_code(&o, 0);
    let r = json(&o);
    validate("rehearse.schema.json", &r);
    let step = |name: &str| {
        r["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["step"] == name)
            .unwrap_or_else(|| panic!("no step {name}: {r:#}"))
            .clone()
    };
    assert!(step("tiers already applied")["detail"]
        .as_str()
        .unwrap()
        .starts_with("2 of 8"));
    assert!(step("apply")["detail"]
        .as_str()
        .unwrap()
        .starts_with("6 tier(s) applied"));
    assert_eq!(
        step("exit schema == before the first tier")["verdict"],
        "PASS"
    );
    assert_eq!(db.dump(), before, "the rehearsal touched the target");
}

/// The mini bundle "mini 1.0" for `db`, packed as `out` in `dir`.
fn mini_for(dir: &Path, db: &TestDb, out: &str) -> String {
    let root = dir.join(format!("src-{out}"));
    let s = MiniSource::new(&root, &db.name, "SELECT true AS ready", &TWO[..1], RB);
    pack(dir, &s.dir, "rm.key", out);
    out.to_string()
}

#[test]
fn staging_then_production_from_one_directory_gives_two_receipts_and_exit_0_twice() {
    let t = tempdir();
    let dir = t.path();
    keygen(dir, "rm");
    let staging = TestDb::new("rcptstage");
    let production = TestDb::new("rcptprod");
    let mut names = vec![];
    for db in [&staging, &production] {
        db.exec("CREATE SCHEMA app;");
        let b = mini_for(dir, db, &format!("{}.tar.gz", db.name));
        let conn = db.conn();
        let o = airlock(
            dir,
            &["--json", "apply", &b, "--trust", "rm.pub", "--db", &conn],
        );
        expect_code(&o, 0);
        let r = json(&o);
        validate("apply.schema.json", &r);
        let f = r["receipt_file"].as_str().unwrap().to_string();
        assert!(f.starts_with("receipts/mini-1.0."), "{f}");
        assert!(f.contains(&format!(".{}@", db.name)), "{f}");
        assert!(f.ends_with(".apply-1.receipt.json"), "{f}");
        let saved: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(&f)).unwrap()).unwrap();
        validate("receipt.schema.json", &saved);
        assert_eq!(saved["database"], db.name.as_str());
        names.push(f);
    }
    assert_ne!(names[0], names[1]);
    // The auditor takes the receipts directory; each receipt is matched to its bundle.
    let bundles = [
        format!("{}.tar.gz", staging.name),
        format!("{}.tar.gz", production.name),
    ];
    let o = airlock(
        dir,
        &[
            "--json",
            "audit",
            &bundles[0],
            &bundles[1],
            "--trust",
            "rm.pub",
            "--receipt",
            "receipts",
        ],
    );
    let a = json(&o);
    assert_eq!(a["receipts"].as_array().unwrap().len(), 2, "{a:#}");
    // Receipts of other releases in the directory are left out, not failed.
    let o = airlock(
        dir,
        &[
            "--json",
            "audit",
            &bundles[0],
            "--trust",
            "rm.pub",
            "--receipt",
            "receipts",
        ],
    );
    let a = json(&o);
    assert_eq!(a["receipts"].as_array().unwrap().len(), 1, "{a:#}");
    assert!(!stdout(&o).contains("\"FAIL\""), "{}", stdout(&o));
}

#[test]
fn a_receipts_destination_that_fails_is_refused_before_and_falls_back_after_the_commit() {
    let c = Case::new("rcptfail");
    let b = c.bundle("b.tar.gz", 1, "");
    // Before: a receipts "directory" that is a file is refused, nothing changed.
    write(&c.dir().join("blocked-dir"), "not a directory");
    // (`--out` names where receipts go, as every output path; `--receipt-dir`, its
    // older spelling, below.)
    let o = c.run(&[
        "apply",
        &b,
        "--through",
        "structure",
        "--out",
        "blocked-dir",
    ]);
    expect_code(&o, 1);
    assert!(stdout(&o).contains("nothing was changed"), "{}", stdout(&o));
    assert_eq!(
        c.db.scalar("SELECT to_regclass('airlock.ledger') IS NULL"),
        "t"
    );
    // After: a file takes the directory's place while apply waits for the gate (the
    // directory is checked, not made, before the commit); the change commits, the
    // receipt goes to the state directory, and the exit code is 0.
    let conn = c.db.conn();
    let mut child = spawn(
        c.dir(),
        &[
            "apply",
            &b,
            "--param",
            "code=x",
            "--wait",
            "--poll-interval",
            "100ms",
            "--wait-timeout",
            "2m",
            "--receipt-dir",
            "later",
            "--trust",
            "rm.pub",
            "--db",
            &conn,
        ],
    );
    let (err, _) = until_line(&mut child, "poll 1: BLOCKED");
    assert!(!c.dir().join("later").exists(), "made before the commit");
    write(&c.dir().join("later"), "now a file");
    c.approve();
    let (code, out, rest) = finish(child, err);
    assert_eq!(code, 0, "{out}\n{rest}");
    assert!(
        out.contains("WARNING: the receipt could not be written"),
        "{out}"
    );
    let line = out
        .lines()
        .find(|l| l.starts_with("receipt: "))
        .expect("receipt line");
    let path = Path::new(line.trim_start_matches("receipt: "));
    assert!(path.starts_with(state_dir()), "{out}");
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(saved["tiers"], serde_json::json!(["structure", "seed"]));
    assert_eq!(
        c.db.scalar("SELECT count(*) FROM airlock.ledger WHERE event <> 'receipt'"),
        "1"
    );
}

#[test]
fn plan_and_apply_refuse_a_bundle_the_trust_store_does_not_vouch_for_alike() {
    let c = Case::new("plansig");
    keygen(c.dir(), "stranger");
    let root = c.dir().join("src-stranger");
    let s = MiniSource::new(&root, &c.db.name, GATE, TWO, RB);
    pack(c.dir(), &s.dir, "stranger.key", "stranger.tar.gz");
    let before = c.db.dump();
    for cmd in ["plan", "apply"] {
        let o = c.run(&[cmd, "stranger.tar.gz", "--param", "code=x"]);
        expect_code(&o, 4);
        let e = json(&o);
        validate("error.schema.json", &e);
        assert_eq!(e["kind"], "verification", "{e:#}");
    }
    assert_eq!(c.db.dump(), before);
}

/// A TCP relay to the local server (127.0.0.1:5432) on a port of its own: taking it
/// down refuses new connections, as a server that restarts or fails over does.
struct Relay {
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    accept: Option<std::thread::JoinHandle<()>>,
}

impl Relay {
    fn up(port: u16) -> Relay {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind relay");
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopping = stop.clone();
        let accept = std::thread::spawn(move || {
            while !stopping.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        let server = std::net::TcpStream::connect(("127.0.0.1", 5432))
                            .expect("the relay reaches the server");
                        for (mut from, mut to) in [
                            (client.try_clone().unwrap(), server.try_clone().unwrap()),
                            (server, client),
                        ] {
                            std::thread::spawn(move || {
                                let _ = std::io::copy(&mut from, &mut to);
                                let _ = to.shutdown(std::net::Shutdown::Both);
                            });
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(std::time::Duration::from_millis(5))
                    }
                    Err(e) => panic!("relay accept: {e}"),
                }
            }
        });
        Relay {
            port,
            stop,
            accept: Some(accept),
        }
    }

    /// Stop accepting and close the listening socket (connections already relayed
    /// finish on their own).
    fn down(mut self) -> u16 {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.accept.take().unwrap().join().unwrap();
        self.port
    }
}

#[test]
fn a_wait_outlives_a_server_that_stops_answering_and_goes_on_when_it_is_back() {
    let c = Case::new("waitgone");
    let b = c.bundle("b.tar.gz", 1, "");
    let relay = Relay::up(0);
    let conn = format!("host=127.0.0.1 port={} dbname={}", relay.port, c.db.name);
    let mut child = spawn(
        c.dir(),
        &[
            "apply",
            &b,
            "--param",
            "code=x",
            "--wait",
            "--poll-interval",
            "100ms",
            "--wait-timeout",
            "2m",
            "--trust",
            "rm.pub",
            "--db",
            &conn,
        ],
    );
    let (mut err, _) = until_line(&mut child, "poll 1: BLOCKED");
    // The server stops answering: the wait says so and goes on.
    let port = relay.down();
    let mut seen = vec![];
    loop {
        let mut line = String::new();
        assert!(err.read_line(&mut line).unwrap() > 0, "{seen:#?}");
        let hit = line.contains(": UNREACHABLE");
        seen.push(line);
        if hit {
            break;
        }
    }
    assert_eq!(
        c.db.scalar("SELECT to_regclass('airlock.ledger') IS NULL"),
        "t",
        "nothing may change while waiting"
    );
    // Back, and the gate opens: the apply goes on as a plain apply.
    let _relay = Relay::up(port);
    c.approve();
    let (code, out, rest) = finish(child, err);
    assert_eq!(code, 0, "{out}\n{rest}");
    assert!(rest.contains(": READY"), "{rest}");
    assert_eq!(c.db.scalar("SELECT count(*) FROM app.t1"), "1");
}

#[test]
fn a_wait_whose_first_poll_reaches_no_server_fails_at_once() {
    let c = Case::new("waitnone");
    let b = c.bundle("b.tar.gz", 1, "");
    // A port nothing listens on: taken from a relay that is then closed.
    let port = Relay::up(0).down();
    let conn = format!("host=127.0.0.1 port={port} dbname={}", c.db.name);
    let o = airlock(
        c.dir(),
        &[
            "--json",
            "gate",
            &b,
            "--wait",
            "--poll-interval",
            "100ms",
            "--wait-timeout",
            "2m",
            "--trust",
            "rm.pub",
            "--db",
            &conn,
        ],
    );
    expect_code(&o, 1);
    assert_eq!(json(&o)["kind"], "connect", "{}", stdout(&o));
}
