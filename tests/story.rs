//! The reference release's whole story through the real binary against real
//! PostgreSQL: BLOCKED → ratified → READY → apply → rollback; rehearsals; the
//! fingerprint; the demo; and every `--json` output checked against `schemas/`.

mod util;
use std::path::Path;
use util::*;

const APR: &str = REFERENCE_APR;

fn fixture(db: &TestDb) {
    let sql =
        std::fs::read_to_string(repo().join("bundle/one-roof-fixture/01_greenfield.sql")).unwrap();
    db.exec(&sql);
}

fn approve(db: &TestDb) {
    db.exec(&std::fs::read_to_string(repo().join("bundle/one-roof-fixture/approve.sql")).unwrap());
}

/// Reference bundle for `db`, packed in `dir` with key `rm`; the trust store `trust`
/// and its two approvals in `approvals` ([`reference_release`]).
fn reference_bundle(dir: &Path, db: &TestDb) -> String {
    reference_release(dir, &db.name).bundle
}

fn validate(schema_name: &str, doc: &serde_json::Value) {
    let text =
        std::fs::read_to_string(repo().join("schemas").join(schema_name)).expect("schema file");
    let schema: serde_json::Value = serde_json::from_str(&text).expect("schema json");
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

#[test]
fn reference_release_blocked_then_ratified_then_applied_and_rolled_back() {
    let t = tempdir();
    let dir = t.path();
    let db = TestDb::new("story");
    fixture(&db);
    let b = reference_bundle(dir, &db);
    let base = ["--trust", "trust", "--db"];
    let bare = |cmd: &str, extra: &[&str]| {
        let mut a = vec!["--json", cmd, b.as_str()];
        a.extend(base);
        a.push(db.conn().leak());
        a.extend(extra);
        airlock(dir, &a)
    };
    // gate, plan and apply with the two signed approvals the bundle asks for.
    let with = |cmd: &str, extra: &[&str]| {
        let mut a = extra.to_vec();
        if cmd != "rollback" {
            a.extend(["--approval", "approvals"]);
        }
        bare(cmd, &a)
    };

    let o = with("gate", &[]);
    expect_code(&o, 3);
    let g = json(&o);
    validate("gate.schema.json", &g);
    assert_eq!(g["verdict"], "BLOCKED");
    assert!(g["gates"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("os_proposal_approvals = 0"));

    // The gated part cannot run while BLOCKED; nothing changes.
    let before = db.dump();
    let o = with("apply", &["--param", APR]);
    expect_code(&o, 3);
    assert_eq!(db.dump(), before, "a BLOCKED apply changed the database");
    assert_eq!(
        db.scalar("SELECT to_regclass('airlock.ledger') IS NULL"),
        "t"
    );

    // Ratification by a human (the fixture's stand-in): the database gate opens, and
    // READY needs the signed quorum too.
    approve(&db);
    let o = bare("gate", &["--param", APR]);
    expect_code(&o, 3);
    assert_eq!(json(&o)["ratification"]["counted"], 0);
    let o = with("gate", &["--param", APR]);
    expect_code(&o, 0);
    assert_eq!(json(&o)["verdict"], "READY");
    assert_eq!(json(&o)["ratification"]["counted"], 2);

    let o = with("plan", &["--param", APR]);
    expect_code(&o, 0);
    let p = json(&o);
    validate("plan.schema.json", &p);
    assert_eq!(p["tiers"].as_array().unwrap().len(), 8);
    assert_eq!(p["preflight"]["matches"], true);

    let before_apply = db.dump();
    let o = with("apply", &["--param", APR, "--receipt", "apply.json"]);
    expect_code(&o, 0);
    let r = json(&o);
    validate("apply.schema.json", &r);
    let receipt: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("apply.json")).unwrap()).unwrap();
    validate("receipt.schema.json", &receipt);
    assert_eq!(receipt["tiers"].as_array().unwrap().len(), 8);
    // Receipts are records for auditors, not secrets: made like any file.
    assert_mode(&dir.join("apply.json"), 0o666 & !umask());
    assert_eq!(r["verify"]["values"]["gap"], "0");
    assert_eq!(
        db.scalar("SELECT count(*) FROM one_roof.v_ownership"),
        "210"
    );
    assert_eq!(
        db.scalar(
            "SELECT count(DISTINCT ratified_by) || ':' || min(ratified_by) FROM one_roof.ownership"
        ),
        "1:APR-BOOT-AUTHMODEL-1"
    );

    let o = airlock(
        dir,
        &["--json", "status", "--db", &db.conn(), "--verify-chain"],
    );
    expect_code(&o, 0);
    let s = json(&o);
    validate("status.schema.json", &s);
    assert_eq!(s["bundles"][0]["state"], "applied");
    assert_eq!(s["chain"]["ok"], true);

    let o = with("apply", &["--param", APR]);
    expect_code(&o, 6);

    let o = with("rollback", &["--receipt", "rollback.json"]);
    expect_code(&o, 0);
    let rb = json(&o);
    validate("rollback.schema.json", &rb);
    assert_eq!(rb["rollback_probe"]["values"]["gap"], "210");
    // Everything but the ledger is exactly as before the apply.
    assert!(
        db.dump().contains("airlock.ledger"),
        "the ledger must remember"
    );
    assert_eq!(
        db.dump_without_ledger(),
        before_apply,
        "rollback did not restore the database"
    );

    let o = with("rollback", &[]);
    expect_code(&o, 0);
    assert_eq!(json(&o)["outcome"], "nothing-to-roll-back");

    // Apply after rollback works again.
    let o = with("apply", &["--param", APR]);
    expect_code(&o, 0);
}

#[test]
fn gate_free_structure_ships_while_blocked_then_the_rest_after_ratification() {
    let t = tempdir();
    let dir = t.path();
    let db = TestDb::new("through");
    fixture(&db);
    let b = reference_bundle(dir, &db);
    let conn = db.conn();
    // No param needed for the inert tiers; the gate is BLOCKED and not required.
    let o = airlock(
        dir,
        &[
            "--json",
            "apply",
            &b,
            "--trust",
            "trust",
            "--db",
            &conn,
            "--through",
            "axis",
        ],
    );
    expect_code(&o, 0);
    assert_eq!(json(&o)["tiers"], serde_json::json!(["structure", "axis"]));
    // Continuing while BLOCKED is refused, and without the param it is a usage error.
    let o = airlock(dir, &["apply", &b, "--trust", "trust", "--db", &conn]);
    expect_code(&o, 2);
    assert!(stderr(&o).contains("ratified_apr"), "{}", stderr(&o));
    let o = airlock(
        dir,
        &[
            "apply",
            &b,
            "--trust",
            "trust",
            "--db",
            &conn,
            "--param",
            APR,
            "--approval",
            "approvals",
        ],
    );
    expect_code(&o, 3);
    approve(&db);
    let o = airlock(
        dir,
        &[
            "--json",
            "apply",
            &b,
            "--trust",
            "trust",
            "--db",
            &conn,
            "--param",
            APR,
            "--approval",
            "approvals",
        ],
    );
    expect_code(&o, 0);
    assert_eq!(json(&o)["tiers"].as_array().unwrap().len(), 6);
    assert_eq!(
        db.scalar("SELECT count(*) FROM airlock.ledger WHERE event = 'apply'"),
        "2"
    );
}

#[test]
fn rehearse_passes_on_the_reference_bundle_and_leaves_target_and_server_clean() {
    let t = tempdir();
    let dir = t.path();
    let db = TestDb::new("rehearse");
    fixture(&db);
    approve(&db);
    let b = reference_bundle(dir, &db);
    let before = db.dump();
    let o = airlock(
        dir,
        &[
            "--json",
            "rehearse",
            &b,
            "--trust",
            "trust",
            "--db",
            &db.conn(),
            "--param",
            APR,
            "--approval",
            "approvals",
        ],
    );
    expect_code(&o, 0);
    let r = json(&o);
    validate("rehearse.schema.json", &r);
    assert_eq!(r["ok"], true);
    assert!(
        r["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["verdict"] == "PASS"),
        "{r:#}"
    );
    assert!(
        !TestDb::exists(r["clone"].as_str().unwrap()),
        "clone left behind"
    );
    assert_eq!(db.dump(), before, "rehearse changed the target");
}

#[test]
fn rehearse_takes_three_fingerprints_and_reports_its_clone_strategy_and_wal() {
    let t = tempdir();
    let dir = t.path();
    let db = TestDb::new("rehstrat");
    fixture(&db);
    approve(&db);
    let b = reference_bundle(dir, &db);
    // A small database with a few hundred files: auto copies it through the WAL.
    for (asked, used) in [
        (None, "wal_log"),
        (Some("file_copy"), "file_copy"),
        (Some("wal_log"), "wal_log"),
    ] {
        let conn = db.conn();
        let mut args = vec![
            "--json",
            "rehearse",
            &b,
            "--trust",
            "trust",
            "--db",
            &conn,
            "--param",
            APR,
            "--approval",
            "approvals",
        ];
        if let Some(s) = asked {
            args.extend(["--clone-strategy", s]);
        }
        let o = airlock(dir, &args);
        expect_code(&o, 0);
        let r = json(&o);
        validate("rehearse.schema.json", &r);
        assert_eq!(r["clone_strategy"], used, "{asked:?}");
        assert!(r["clone_wal_bytes"].is_u64(), "{r:#}");
        let steps: Vec<&serde_json::Value> = r["steps"].as_array().unwrap().iter().collect();
        let clone = steps
            .iter()
            .find(|s| s["step"] == "clone the target")
            .unwrap();
        let detail = clone["detail"].as_str().unwrap();
        assert!(
            detail.contains(&format!("STRATEGY {used}")) && detail.contains("WAL written"),
            "{detail}"
        );
        // Fingerprints: the clone's entry and exit, the target's at the end.
        let names: Vec<&str> = steps.iter().map(|s| s["step"].as_str().unwrap()).collect();
        assert!(
            !names
                .iter()
                .any(|n| n.contains("target fingerprint (entry)")),
            "{names:?}"
        );
        assert_eq!(
            names.iter().filter(|n| n.contains("fingerprint")).count(),
            3,
            "{names:?}"
        );
        assert!(steps.iter().all(|s| s["verdict"] == "PASS"), "{r:#}");
    }
}

#[test]
fn rehearse_before_ratification_goes_past_the_gate_on_the_clone_and_says_so() {
    let t = tempdir();
    let dir = t.path();
    let db = TestDb::new("rehblock");
    fixture(&db);
    let b = reference_bundle(dir, &db);
    let conn = db.conn();
    let base = [
        "rehearse", &b, "--trust", "trust", "--db", &conn, "--param", APR,
    ];
    // --require-ready: the old stop at a BLOCKED gate (exit 3), clone dropped.
    let mut a = vec!["--json"];
    a.extend(base);
    a.push("--require-ready");
    let o = airlock(dir, &a);
    expect_code(&o, 3);
    let r = json(&o);
    assert_eq!(r["gate"], "BLOCKED", "{r:#}");
    assert_eq!(r["gates_assumed"], false, "{r:#}");
    assert!(!TestDb::exists(r["clone"].as_str().unwrap()));
    // The default, as the runbooks tell it: the whole cycle on the clone, past the
    // gate, said loudly; the gate's verdict is reported.
    let o = airlock(dir, &base);
    expect_code(&o, 0);
    let out = stdout(&o);
    let prose = out.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        prose.contains("BLOCKED: the gate is BLOCKED on the target (not ratified yet); this rehearsal went past it on the clone only"),
        "{out}"
    );
    // --assume-gates is still accepted (and the same); JSON says what happened.
    let mut a = vec!["--json"];
    a.extend(base);
    a.push("--assume-gates");
    let o = airlock(dir, &a);
    expect_code(&o, 0);
    let r = json(&o);
    assert_eq!(r["gate"], "BLOCKED", "{r:#}");
    assert_eq!(r["gates_assumed"], true, "{r:#}");
    let gate = r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == "gate")
        .unwrap();
    assert_eq!(gate["verdict"], "ASSUMED");
    // Only the clone saw the assumption: the target has no approval and no ledger.
    assert_eq!(
        db.scalar("SELECT count(*) FROM governance.os_proposal_approvals"),
        "0"
    );
    assert_eq!(
        db.scalar("SELECT to_regclass('airlock.ledger') IS NULL"),
        "t"
    );
}

fn mini_rehearsal(
    tag: &str,
    tiers: &[(&str, &str, bool)],
    rollback: &str,
    want: i32,
    failing_step: &str,
) -> serde_json::Value {
    let t = tempdir();
    let dir = t.path();
    let db = TestDb::new(tag);
    db.exec("CREATE SCHEMA app;");
    let src = MiniSource::new(dir, &db.name, "SELECT true AS ready", tiers, rollback);
    keygen(dir, "rm");
    pack(dir, &src.dir, "rm.key", "b.tar.gz");
    let before = db.dump();
    let o = airlock(
        dir,
        &[
            "--json",
            "rehearse",
            "b.tar.gz",
            "--trust",
            "rm.pub",
            "--db",
            &db.conn(),
            "--param",
            "code=x",
        ],
    );
    expect_code(&o, want);
    let r = json(&o);
    let failed: Vec<&str> = r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["verdict"] == "FAIL")
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(failed, vec![failing_step], "{r:#}");
    assert!(
        !TestDb::exists(r["clone"].as_str().unwrap()),
        "clone left behind after a failure"
    );
    assert_eq!(db.dump(), before);
    r
}

#[test]
fn rehearse_reports_a_rollback_that_does_not_restore_the_baseline() {
    // The rollback forgets the data the tier inserted into a pre-existing table.
    let t = tempdir();
    let _ = t;
    mini_rehearsal(
        "rehrb",
        &[(
            "structure",
            "CREATE TABLE app.t1(i int); CREATE TABLE public.side(i int);",
            false,
        )],
        "DROP TABLE IF EXISTS app.t1;",
        5,
        "exit fingerprint == entry",
    );
}

#[test]
fn rehearse_reports_a_failing_tier() {
    mini_rehearsal(
        "rehtier",
        &[
            ("structure", "CREATE TABLE app.t1(i int);", false),
            ("broken", "SELECT 1/0;", true),
        ],
        "DROP TABLE IF EXISTS app.t1;",
        1,
        "apply",
    );
}

#[test]
fn rehearse_explains_a_syntax_error_by_the_grammar_lint_checks() {
    // JSON_TABLE is PostgreSQL 17 syntax: lint (PostgreSQL 18's grammar) accepts it,
    // the PostgreSQL 15 target does not parse it.
    let r = mini_rehearsal(
        "rehsyntax",
        &[(
            "views",
            "CREATE VIEW app.v AS SELECT * FROM JSON_TABLE('[1]'::jsonb, '$[*]' COLUMNS (a int PATH '$'));",
            false,
        )],
        "DROP VIEW IF EXISTS app.v;",
        1,
        "apply",
    );
    let detail = r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == "apply")
        .and_then(|s| s["detail"].as_str())
        .unwrap()
        .to_string();
    assert!(
        detail.contains("syntax error") && detail.contains("PostgreSQL 18's grammar"),
        "{detail}"
    );
}

#[test]
fn a_template_clone_refuses_clearly_when_the_target_has_other_sessions() {
    // (`auto` clones such a target from a dump: tests/rehearse_live.rs.)
    let t = tempdir();
    let dir = t.path();
    let db = TestDb::new("rehbusy");
    fixture(&db);
    approve(&db);
    let b = reference_bundle(dir, &db);
    let _held = db.client(); // another session on the target
    let o = airlock(
        dir,
        &[
            "--json",
            "rehearse",
            &b,
            "--trust",
            "rm.pub",
            "--db",
            &db.conn(),
            "--param",
            APR,
            "--clone-strategy",
            "wal_log",
        ],
    );
    expect_code(&o, 1);
    let r = json(&o);
    let clone_step = r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == "clone the target")
        .expect("a clone step");
    assert_eq!(clone_step["verdict"], "FAIL");
    assert!(
        clone_step["detail"]
            .as_str()
            .unwrap()
            .contains("other sessions"),
        "{r:#}"
    );
    assert!(
        clone_step["detail"]
            .as_str()
            .unwrap()
            .contains("--clone-strategy dump"),
        "{r:#}"
    );
    // The human table cuts the detail; what to do is printed whole below it.
    let detail = clone_step["detail"].as_str().unwrap();
    let o = airlock_env(
        dir,
        &[
            "rehearse",
            &b,
            "--trust",
            "rm.pub",
            "--db",
            &db.conn(),
            "--param",
            APR,
            "--clone-strategy",
            "wal_log",
        ],
        &[("COLUMNS", "60")],
    );
    expect_code(&o, 1);
    let out = stdout(&o);
    assert!(
        out.contains(&format!("clone the target: {detail}")),
        "the clone step's detail is not whole below the table:\n{out}"
    );
    // The steps table fits COLUMNS (prose lines are the terminal's to wrap).
    let table = out.lines().skip_while(|l| !l.starts_with("step "));
    for line in table.take_while(|l| !l.is_empty()) {
        assert!(
            line.chars().count() <= 60,
            "wider than COLUMNS=60: {line}\n{out}"
        );
    }
}

fn fp(db: &TestDb, level: &str) -> serde_json::Value {
    let dir = tempdir();
    let mut args = vec!["--json", "fingerprint", "--db"];
    let c = db.conn();
    args.push(&c);
    if !level.is_empty() {
        args.push(level);
    }
    let o = airlock(dir.path(), &args);
    expect_code(&o, 0);
    let v = json(&o);
    validate("fingerprint.schema.json", &v);
    v
}

#[test]
fn fingerprint_is_stable_and_sees_every_kind_of_change() {
    let db = TestDb::new("fp");
    fixture(&db);
    db.exec("CREATE FUNCTION public.f() RETURNS int LANGUAGE sql AS 'SELECT 1';");
    let a = fp(&db, "--data");
    assert_eq!(
        fp(&db, "--data")["fingerprint"],
        a["fingerprint"],
        "not stable across runs"
    );
    db.exec("VACUUM ANALYZE");
    assert_eq!(
        fp(&db, "--data")["fingerprint"],
        a["fingerprint"],
        "VACUUM/ANALYZE changed it"
    );

    let schema0 = fp(&db, "")["fingerprint"].clone();
    db.exec("INSERT INTO public.directus_users VALUES (4, 'new@example.org', 'viewer')");
    let d1 = fp(&db, "--data")["fingerprint"].clone();
    assert_ne!(d1, a["fingerprint"], "an added row went unnoticed");
    assert_eq!(
        fp(&db, "")["fingerprint"],
        schema0,
        "schema level must ignore data"
    );

    db.exec("ALTER TABLE public.directus_users ALTER COLUMN role SET DEFAULT 'viewer'");
    let s1 = fp(&db, "")["fingerprint"].clone();
    assert_ne!(s1, schema0, "a changed default went unnoticed");

    db.exec("CREATE INDEX users_role_idx ON public.directus_users (role)");
    let s2 = fp(&db, "")["fingerprint"].clone();
    assert_ne!(s2, s1, "an added index went unnoticed");

    db.exec("CREATE OR REPLACE FUNCTION public.f() RETURNS int LANGUAGE sql AS 'SELECT 2';");
    let s3 = fp(&db, "");
    assert_ne!(
        s3["fingerprint"], s2,
        "an altered function body went unnoticed"
    );
    assert!(s3["parts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["kind"] == "function" && p["name"] == "public.f()"));
}

#[test]
fn demo_runs_green_and_leaves_no_database_behind() {
    let t = tempdir();
    // Its own state directory: the demo remembers nothing on the host (no ledger
    // head, no kept description, no verified bundle).
    let state = t.path().join("state");
    let o = airlock_env(
        t.path(),
        &["--json", "demo"],
        &[("AIRLOCK_STATE_DIR", state.to_str().unwrap())],
    );
    expect_code(&o, 0);
    assert!(!state.exists(), "the demo wrote to the state directory");
    let d = json(&o);
    validate("demo.schema.json", &d);
    assert_eq!(d["ok"], true);
    assert!(d["steps"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["ok"] == true));
    assert!(!TestDb::exists(d["database"].as_str().unwrap()));
    // Each step names the command an operator would type to replay it.
    let command = |step: &str| -> String {
        let s = d["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["step"] == step);
        s.and_then(|s| s["command"].as_str())
            .unwrap_or_default()
            .to_string()
    };
    let db = d["database"].as_str().unwrap();
    // The recommended setup: the database's owner is an application role, the steps
    // run on the deploy login `airlock setup` made; both roles are gone afterwards.
    assert!(command("one-time setup: the deploy login").starts_with("airlock setup "));
    let tag = db.trim_start_matches("airlock_demo_");
    for role in ["app", "deploy"] {
        let name = format!("airlock_demo_{role}_{tag}");
        let left: i64 = admin()
            .query_one("SELECT count(*) FROM pg_roles WHERE rolname = $1", &[&name])
            .unwrap()
            .get(0);
        assert_eq!(left, 0, "the demo left role {name} behind");
    }
    assert!(command("verify against the trust store").starts_with("airlock verify "));
    for (step, sub) in [
        ("gate (before ratification)", "gate"),
        ("rehearse on a clone", "rehearse"),
        ("write the release dossier", "dossier"),
        ("apply", "apply"),
        ("rollback", "rollback"),
    ] {
        let c = command(step);
        assert!(c.starts_with(&format!("airlock {sub} ")), "{step}: {c}");
        // On the deploy login the one-time setup made, as an operator would.
        assert!(
            c.contains(&format!("--db 'dbname={db} user=airlock_demo_deploy_")),
            "{step}: {c}"
        );
    }
    assert!(command("apply").contains("--param ratified_apr="));
    // Ratified by two throw-away approver keys: BLOCKED with one, READY with both.
    let detail = |step: &str| -> String {
        d["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["step"] == step)
            .and_then(|s| s["detail"].as_str())
            .unwrap_or_else(|| panic!("no step {step}: {d:#}"))
            .to_string()
    };
    assert!(detail("gate with 1 of 2 approvals")
        .starts_with("BLOCKED as expected - ratification: 1 of 2 approval(s)"));
    assert!(
        detail("gate (after ratification)").starts_with("READY - ratification: 2 of 2 approval(s)")
    );
    for who in ["approver-1", "approver-2"] {
        let c = command(&format!("{who} signs an approval"));
        assert!(
            c.contains("airlock approve ") && c.contains(&format!("{who}.key")),
            "{c}"
        );
    }
    for step in ["gate (after ratification)", "rehearse on a clone", "apply"] {
        assert!(
            command(step).contains("--approval "),
            "{step}: {}",
            command(step)
        );
    }
}

#[test]
fn trust_core_json_outputs_match_their_schemas() {
    let t = tempdir();
    let dir = t.path();
    let o = airlock(dir, &["--json", "keygen", "--out", "rm", "--unencrypted"]);
    expect_code(&o, 0);
    validate("keygen.schema.json", &json(&o));
    let src = reference_source(dir, "directus");
    let s = src.to_str().unwrap();
    let o = airlock(dir, &["--json", "lint", s]);
    expect_code(&o, 0);
    validate("lint.schema.json", &json(&o));
    let o = airlock(
        dir,
        &["--json", "pack", s, "--key", "rm.key", "--out", "b.tar.gz"],
    );
    expect_code(&o, 0);
    validate("pack.schema.json", &json(&o));
    let o = airlock(dir, &["--json", "verify", "b.tar.gz", "--trust", "rm.pub"]);
    expect_code(&o, 0);
    validate("verify.schema.json", &json(&o));
    let o = airlock(dir, &["--json", "inspect", "b.tar.gz"]);
    expect_code(&o, 0);
    let v = json(&o);
    validate("inspect.schema.json", &v);
    assert_eq!(v["status"], "UNVERIFIED");
    let o = airlock(dir, &["inspect", "b.tar.gz"]);
    expect_code(&o, 0);
    assert!(stdout(&o).starts_with("UNVERIFIED: "), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("NOT checked: no trust store given"),
        "{}",
        stdout(&o)
    );
    // AIRLOCK_TRUST stands in for --trust.
    let o = airlock_env(
        dir,
        &["--json", "inspect", "b.tar.gz"],
        &[("AIRLOCK_TRUST", "rm.pub")],
    );
    expect_code(&o, 0);
    assert_eq!(json(&o)["status"], "VERIFIED");
    let o = airlock(
        dir,
        &[
            "--json", "runbook", "b.tar.gz", "--trust", "rm.pub", "owner",
        ],
    );
    expect_code(&o, 0);
    let v = json(&o);
    validate("runbook.schema.json", &v);
    assert!(v["text"].as_str().unwrap().contains("The one blocker"));
    let o = airlock(
        dir,
        &[
            "--json", "extract", "b.tar.gz", "--trust", "rm.pub", "--to", "x",
        ],
    );
    expect_code(&o, 0);
    validate("extract.schema.json", &json(&o));
    keygen(dir, "co");
    let o = airlock(dir, &["--json", "sign", "b.tar.gz", "--key", "co.key"]);
    expect_code(&o, 0);
    validate("sign.schema.json", &json(&o));
    // Errors are one JSON document too (json() refuses anything after it), for
    // every trust-core command, with the exit code the process exits with.
    keygen(dir, "stranger");
    let failures: &[(&[&str], i32, &str)] = &[
        (
            &["verify", "b.tar.gz", "--trust", "nope.pub"],
            2,
            "trust-store",
        ),
        (&["keygen", "--out", "rm", "--unencrypted"], 2, "usage"),
        (&["lint", "nowhere"], 2, "source"),
        (&["pack", "nowhere", "--key", "rm.key"], 2, "source"),
        (
            &["verify", "b.tar.gz", "--trust", "stranger.pub"],
            4,
            "verification",
        ),
        (&["verify", "missing.tar.gz", "--trust", "rm.pub"], 1, "io"),
        (&["inspect", "missing.tar.gz"], 1, "io"),
        (
            &["extract", "b.tar.gz", "--trust", "rm.pub", "--to", "x"],
            2,
            "extract",
        ),
        (&["sign", "b.tar.gz", "--key", "co.key"], 2, "usage"),
    ];
    for (args, want, kind) in failures {
        let mut a = vec!["--json"];
        a.extend(args.iter());
        let o = airlock(dir, &a);
        assert_eq!(code(&o), *want, "{args:?}: {}", stdout(&o));
        let v = json(&o);
        validate("error.schema.json", &v);
        assert_eq!(v["ok"], false, "{args:?}");
        assert_eq!(v["exit_code"], *want, "{args:?}");
        assert_eq!(v["kind"], *kind, "{args:?}: {v:#}");
    }
}

#[test]
fn rehearse_drops_the_clone_after_sigint() {
    let t = tempdir();
    let dir = t.path();
    let db = TestDb::new("rehint");
    db.exec("CREATE SCHEMA app;");
    let src = MiniSource::new(
        dir,
        &db.name,
        "SELECT true AS ready",
        &[(
            "slow",
            "CREATE TABLE app.t1(i int); SELECT pg_sleep(30);",
            false,
        )],
        "DROP TABLE IF EXISTS app.t1;",
    );
    keygen(dir, "rm");
    pack(dir, &src.dir, "rm.key", "b.tar.gz");
    let child = airlock_command(dir, &[])
        .args([
            "--json",
            "rehearse",
            "b.tar.gz",
            "--trust",
            "rm.pub",
            "--db",
            &db.conn(),
            "--param",
            "code=x",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    // Wait (bounded) until the tier's pg_sleep runs on the clone.
    let clone_prefix = format!("{}_rehearse_", db.name);
    let mut admin = admin();
    let mut seen = false;
    for _ in 0..600 {
        let rows = admin
            .query("SELECT 1 FROM pg_stat_activity WHERE datname LIKE $1 || '%' AND wait_event = 'PgSleep'", &[&clone_prefix])
            .unwrap();
        if !rows.is_empty() {
            seen = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(seen, "the rehearsal never reached the slow tier");
    // SAFETY: sending SIGINT to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let o = child.wait_with_output().unwrap();
    assert_ne!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json report after SIGINT");
    let clone = r["clone"].as_str().unwrap();
    assert!(
        !TestDb::exists(clone),
        "clone {clone} left behind after SIGINT"
    );
    assert!(r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["step"] == "drop the clone" && s["verdict"] == "PASS"));
}
