//! Online tiers (issue 24): statements that must run outside a transaction
//! (`CREATE INDEX CONCURRENTLY` and its family) run one at a time, each recorded in the
//! ledger as it completes; an interrupted run goes on with the next statement; a
//! failed concurrent build never stays behind as an INVALID index counted as done;
//! rollback runs online too; two operators are kept apart. Real server, real
//! concurrent sessions, the real binary.

mod util;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use util::*;

/// A source with a transactional tier `schema`, an online tier `indexes` and an online
/// rollback; `probe` counts the indexes named `t_%` on app.t (0 before the release).
fn source(
    dir: &Path,
    db: &str,
    schema_sql: &str,
    online_sql: &str,
    rollback_sql: &str,
) -> std::path::PathBuf {
    let src = dir.join("src");
    let _ = std::fs::remove_dir_all(&src);
    write(
        &src.join("bundle.toml"),
        &format!(
            "[bundle]\nname = \"online\"\nversion = \"1\"\nsequence = 1\n\n\
             [target]\ndatabase = \"{db}\"\n\n\
             [preflight]\nfile = \"sql/probe.sql\"\nexpect = {{ indexes = \"0\" }}\n\n\
             [[tier]]\nname = \"schema\"\nfiles = [\"sql/schema.sql\"]\n\n\
             [[tier]]\nname = \"indexes\"\nfiles = [\"sql/indexes.sql\"]\nonline = true\n\n\
             [rollback]\nfiles = [\"sql/rollback.sql\"]\nonline = true\n"
        ),
    );
    write(
        &src.join("sql/probe.sql"),
        "SELECT 'indexes' AS key, count(*)::text AS value FROM pg_indexes WHERE schemaname = 'app' AND indexname IN ('t_a', 't_u', 't2_b')",
    );
    write(&src.join("sql/schema.sql"), schema_sql);
    write(&src.join("sql/indexes.sql"), online_sql);
    write(&src.join("sql/rollback.sql"), rollback_sql);
    src
}

/// [`source`] for `db`, packed into `d/b.tar.gz`.
fn packed(d: &Path, db: &TestDb, schema_sql: &str, online_sql: &str, rollback_sql: &str) {
    let src = source(d, &db.name, schema_sql, online_sql, rollback_sql);
    pack(d, &src, "rm.key", "b.tar.gz");
}

fn target(tag: &str, rows: i64) -> TestDb {
    let db = TestDb::new(tag);
    db.exec(&format!(
        "CREATE SCHEMA app; CREATE TABLE app.t (id bigserial PRIMARY KEY, a int, b int, u int); \
         INSERT INTO app.t (a, b, u) SELECT g % 97, g % 89, g FROM generate_series(1, {rows}) g; \
         CREATE TABLE app.t2 (id bigserial PRIMARY KEY, b int); \
         INSERT INTO app.t2 (b) SELECT g FROM generate_series(1, 1000) g;"
    ));
    db
}

fn apply(d: &Path, db: &TestDb, bundle: &str) -> std::process::Output {
    run_json(
        d,
        "rm.pub",
        &db.conn(),
        &["apply", bundle, "--yes", "--lock-timeout", "5min"],
    )
}

/// The ledger's rows of what ran, `event:tiers` (a `receipt` row records a receipt
/// delivered after the run).
fn events(db: &TestDb) -> String {
    db.scalar("SELECT coalesce(string_agg(event || ':' || tiers, ' ' ORDER BY seq), '') FROM airlock.ledger WHERE event <> 'receipt'")
}

fn index_state(db: &TestDb, name: &str) -> String {
    db.scalar(&format!(
        "SELECT coalesce((SELECT CASE WHEN i.indisvalid THEN 'valid' ELSE 'INVALID' END \
           FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
           JOIN pg_namespace n ON n.oid = c.relnamespace \
          WHERE n.nspname = 'app' AND c.relname = '{name}'), 'absent')"
    ))
}

#[test]
fn lint_accepts_the_online_family_in_an_online_tier_only_and_says_why() {
    let t = keyed_dir();
    let d = t.path();
    let src = source(
        d,
        "x",
        "CREATE INDEX CONCURRENTLY t_a ON app.t (a);\n",
        "CREATE INDEX CONCURRENTLY t_b ON app.t (b);\nUPDATE app.t SET a = 1;\nCREATE INDEX CONCURRENTLY IF NOT EXISTS t_u ON app.t (u);\n",
        // (`DROP INDEX CONCURRENTLY name` without IF EXISTS is accepted since issue 69:
        // the catalog finds it gone on a rerun; a plain DROP TABLE is not.)
        "DROP INDEX CONCURRENTLY app.t_u;\nDROP TABLE app.t2;\n",
    );
    let o = airlock(d, &["--json", "lint", src.to_str().unwrap()]);
    assert_eq!(code(&o), 2, "{}{}", stdout(&o), stderr(&o));
    let all = stdout(&o);
    // In a transactional tier: refused, with the way to run it.
    assert!(
        all.contains("schema.sql:1") && all.contains("online = true"),
        "{all}"
    );
    // In the online tier: refused only what is not safe to run again, with the reason
    // (a build without IF NOT EXISTS is accepted: airlock decides from the catalog
    // whether to run it again).
    assert!(!all.contains("indexes.sql:1"), "{all}");
    assert!(
        all.contains("indexes.sql:2") && all.contains("online tier"),
        "{all}"
    );
    assert!(!all.contains("indexes.sql:3"), "{all}");
    assert!(!all.contains("rollback.sql:1"), "{all}");
    assert!(
        all.contains("rollback.sql:2") && all.contains("IF EXISTS"),
        "{all}"
    );
    // Nothing was written.
    assert!(!d.join("b.tar.gz").exists());
}

#[test]
fn an_online_index_builds_while_a_writer_writes_each_step_recorded_then_rolls_back_online() {
    let t = keyed_dir();
    let d = t.path();
    let db = target("online_writer", 200_000);
    packed(
        d,
        &db,
        "ALTER TABLE app.t ADD COLUMN note text;\n",
        "-- built without blocking writes\nCREATE INDEX CONCURRENTLY IF NOT EXISTS t_a ON app.t (a);\n\nCREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS t_u ON app.t (u);\nANALYZE app.t;\n",
        // (An online rollback cannot drop the column: ALTER TABLE … DROP COLUMN is
        // transactional. It undoes the indexes.)
        "DROP INDEX CONCURRENTLY IF EXISTS app.t_u;\nDROP INDEX CONCURRENTLY IF EXISTS app.t_a;\n",
    );
    let before = db.dump_without_ledger();

    // A writer inserting for as long as the apply runs, on its own connection.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let mut c = db.client();
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                c.execute(
                    "INSERT INTO app.t (a, b, u) VALUES (1, 1, 1000000 + $1)",
                    &[&(n as i32)],
                )
                .expect("the writer is never refused");
                n += 1;
            }
            n
        })
    };
    let o = apply(d, &db, "b.tar.gz");
    stop.store(true, Ordering::Relaxed);
    let written = writer.join().unwrap();
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let r = json(&o);
    // Every row the writer wrote is there; both indexes are built and valid.
    assert_eq!(
        db.scalar("SELECT count(*)::text FROM app.t WHERE u >= 1000000"),
        written.to_string()
    );
    assert_eq!(index_state(&db, "t_a"), "valid");
    assert_eq!(index_state(&db, "t_u"), "valid");
    // One row per completed statement: the schema tier, two steps, the tier's apply.
    assert_eq!(
        events(&db),
        "apply:[\"schema\"] step:[\"indexes\"] step:[\"indexes\"] apply:[\"indexes\"]"
    );
    let steps = r["online_steps"].as_array().expect("online_steps");
    assert_eq!(steps.len(), 3, "{r:#}");
    assert_eq!(steps[0]["line"], 2);
    assert_eq!(steps[2]["of"], 3);
    assert_eq!(r["tiers"], serde_json::json!(["schema", "indexes"]));
    // The receipt holds every row it wrote, and status says applied.
    assert_eq!(r["ledger"].as_array().unwrap().len(), 4, "{r:#}");

    // Rollback runs online: the indexes go, the probe holds.
    let o = run_json(d, "rm.pub", &db.conn(), &["rollback", "b.tar.gz", "--yes"]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let r = json(&o);
    assert_eq!(r["outcome"], "rolled-back");
    assert_eq!(r["online_steps"].as_array().unwrap().len(), 2, "{r:#}");
    assert_eq!(index_state(&db, "t_a"), "absent");
    assert_eq!(index_state(&db, "t_u"), "absent");
    assert!(
        events(&db).ends_with("rollback:[\"schema\",\"indexes\"]"),
        "{}",
        events(&db)
    );
    // What stays is the column (the rollback does not drop it) and the writer's rows.
    let after = db.dump_without_ledger();
    assert_ne!(before, after);
    assert!(!after.contains("t_a") && !after.contains("t_u"), "{after}");
}

#[test]
fn a_failed_unique_build_leaves_no_invalid_index_and_a_fixed_reapply_builds_it() {
    let t = keyed_dir();
    let d = t.path();
    let db = target("online_unique", 1000);
    db.exec("UPDATE app.t SET u = 7 WHERE id = 10;");
    packed(
        d,
        &db,
        "ALTER TABLE app.t ADD COLUMN note text;\n",
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS t_a ON app.t (a);\nCREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS t_u ON app.t (u);\n",
        "DROP INDEX CONCURRENTLY IF EXISTS app.t_u;\nDROP INDEX CONCURRENTLY IF EXISTS app.t_a;\n",
    );
    let o = apply(d, &db, "b.tar.gz");
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    let err = stdout(&o) + &stderr(&o);
    assert!(err.contains("could not create unique index"), "{err}");
    assert!(
        err.contains("INVALID index app.t_u") && err.contains("dropped"),
        "{err}"
    );
    assert!(
        err.contains("step 2/2") && err.contains("continues with step 2"),
        "{err}"
    );
    // What committed (the schema tier, step 1) has its receipt: outcome partial.
    assert!(
        err.contains("recorded in the ledger and in receipt"),
        "{err}"
    );
    let partial = receipts(d);
    assert_eq!(partial.len(), 1, "{partial:?}");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&partial[0]).unwrap()).unwrap();
    assert_eq!(doc["outcome"], "partial");
    assert_eq!(doc["tiers"], serde_json::json!(["schema"]));
    assert_eq!(doc["ledger"].as_array().unwrap().len(), 2, "{doc:#}");
    // PostgreSQL's INVALID leftover is gone; the first step is done and recorded.
    assert_eq!(index_state(&db, "t_u"), "absent");
    assert_eq!(index_state(&db, "t_a"), "valid");
    assert_eq!(events(&db), "apply:[\"schema\"] step:[\"indexes\"]");
    // status and plan say exactly where the run stands.
    let o = airlock(d, &["--json", "status", "--db", &db.conn()]);
    let b = &json(&o)["bundles"][0];
    assert_eq!(b["state"], "partially-applied", "{b:#}");
    assert_eq!(b["online_steps"]["indexes"], 1, "{b:#}");
    let o = airlock(d, &["status", "--db", &db.conn()]);
    assert!(
        stdout(&o).contains("online tier \"indexes\": 1 step(s) done and recorded; airlock apply continues with step 2"),
        "{}",
        stdout(&o)
    );
    let o = run_json(d, "rm.pub", &db.conn(), &["plan", "b.tar.gz"]);
    assert!(
        stdout(&o).contains("1 step(s) done and recorded, apply continues with step 2"),
        "{}",
        stdout(&o)
    );

    // The DBA fixes the data; the same bundle goes on with step 2 only.
    db.exec("UPDATE app.t SET u = 100010 WHERE id = 10;");
    let o = apply(d, &db, "b.tar.gz");
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let r = json(&o);
    let steps = r["online_steps"].as_array().unwrap();
    assert_eq!(steps.len(), 1, "{r:#}");
    assert_eq!(steps[0]["step"], 2);
    assert_eq!(index_state(&db, "t_u"), "valid");
    assert_eq!(
        events(&db),
        "apply:[\"schema\"] step:[\"indexes\"] apply:[\"indexes\"]"
    );
    // An auditor finds every ledger row in a receipt, the partial run's included.
    let o = airlock(
        d,
        &[
            "--json",
            "audit",
            "b.tar.gz",
            "--trust",
            "rm.pub",
            "--receipt",
            "receipts",
            "--db",
            &db.conn(),
        ],
    );
    let v = json(&o);
    assert_ne!(code(&o), 4, "{v:#}");
    assert!(!v.to_string().contains("\"FAIL\""), "{v:#}");
}

/// The receipt files apply wrote in `d/receipts`.
fn receipts(d: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(d.join("receipts"))
        .map(|r| r.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.retain(|p| p.to_string_lossy().ends_with(".receipt.json"));
    v.sort();
    v
}

#[test]
fn a_ledger_made_before_online_tiers_is_widened_by_the_first_online_step() {
    let t = keyed_dir();
    let d = t.path();
    let db = target("online_old_ledger", 100);
    // A ledger as airlock made it before online tiers: events apply and rollback only.
    db.exec(
        "CREATE SCHEMA airlock; \
         CREATE TABLE airlock.ledger (seq bigint PRIMARY KEY, at text NOT NULL, \
           event text NOT NULL CHECK (event IN ('apply', 'rollback')), bundle_name text NOT NULL, \
           bundle_version text NOT NULL, sequence bigint NOT NULL, bundle_id text NOT NULL, \
           tiers text NOT NULL, params text NOT NULL, operator text NOT NULL, \
           fingerprint_before text NOT NULL, fingerprint_after text NOT NULL, \
           prev_hash text NOT NULL, row_hash text NOT NULL UNIQUE); \
         CREATE FUNCTION airlock.ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$\n\
         BEGIN\n    RAISE EXCEPTION 'airlock.ledger is append-only (% refused)', TG_OP;\nEND $$; \
         CREATE TRIGGER ledger_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON airlock.ledger \
           FOR EACH STATEMENT EXECUTE FUNCTION airlock.ledger_append_only();",
    );
    packed(
        d,
        &db,
        "ALTER TABLE app.t ADD COLUMN note text;\n",
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS t_a ON app.t (a);\nANALYZE app.t;\n",
        "DROP INDEX CONCURRENTLY IF EXISTS app.t_a;\n",
    );
    let o = apply(d, &db, "b.tar.gz");
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert_eq!(
        events(&db),
        "apply:[\"schema\"] step:[\"indexes\"] apply:[\"indexes\"]"
    );
    let check = db.scalar(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'ledger_event_check'",
    );
    assert!(check.contains("'step'"), "{check}");
}

/// The session running the bundle's CREATE INDEX on app.t2 while it waits for `key`.
fn waiting_build(db: &TestDb) -> Option<i32> {
    let mut c = db.client();
    c.query(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
           AND query LIKE '%CREATE INDEX CONCURRENTLY IF NOT EXISTS t2_b%' AND wait_event = 'advisory'",
        &[],
    )
    .unwrap()
    .first()
    .map(|r| r.get(0))
}

/// A target `tag` and the packed online release whose step 2 builds an index on an
/// expression that waits while the returned session holds advisory lock 4242 (held).
fn held_step_two(d: &Path, tag: &str) -> (TestDb, postgres::Client) {
    let db = target(tag, 1000);
    db.exec(
        "CREATE FUNCTION app.held(v int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS \
         $$ BEGIN PERFORM pg_advisory_lock_shared(4242); PERFORM pg_advisory_unlock_shared(4242); RETURN v; END $$;",
    );
    packed(
        d,
        &db,
        "ALTER TABLE app.t ADD COLUMN note text;\n",
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS t_a ON app.t (a);\n\
         CREATE INDEX CONCURRENTLY IF NOT EXISTS t2_b ON app.t2 (app.held(b));\n\
         ANALYZE app.t2;\n",
        "DROP INDEX CONCURRENTLY IF EXISTS app.t2_b;\nDROP INDEX CONCURRENTLY IF EXISTS app.t_a;\n",
    );
    let mut holder = db.client();
    holder
        .batch_execute("SELECT pg_advisory_lock(4242)")
        .unwrap();
    (db, holder)
}

/// `apply --json` of [`held_step_two`]'s release, started, once its step 2 waits.
fn apply_paused_at_step_two(d: &Path, db: &TestDb) -> std::process::Child {
    let child = airlock_command(d, &[])
        .args([
            "--json", "apply", "b.tar.gz", "--yes", "--trust", "rm.pub", "--db",
        ])
        .arg(db.conn())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    while waiting_build(db).is_none() {
        std::thread::yield_now();
    }
    child
}

#[test]
fn an_apply_killed_during_an_online_step_goes_on_with_that_step_and_keeps_others_out() {
    let t = keyed_dir();
    let d = t.path();
    let (db, mut holder) = held_step_two(d, "online_killed");
    let mut child = airlock_command(d, &[])
        .args([
            "--json",
            "apply",
            "b.tar.gz",
            "--yes",
            "--lock-timeout",
            "5min",
            "--trust",
            "rm.pub",
            "--db",
        ])
        .arg(db.conn())
        .stdout(std::fs::File::create(d.join("child.out")).unwrap())
        .stderr(std::fs::File::create(d.join("child.err")).unwrap())
        .spawn()
        .unwrap();
    // Wait (polling the server, no timing assumption) until step 2 is building.
    let pid = loop {
        if let Some(pid) = waiting_build(&db) {
            break pid;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the apply ended before step 2 waited: {}",
            std::fs::read_to_string(d.join("child.out")).unwrap()
        );
        std::thread::yield_now();
    };
    // Another operator meanwhile: refused once its --lock-timeout has passed (the key
    // looked at between statements: the build is not kept waiting on it), naming the
    // session that runs the steps.
    let o = run_json(
        d,
        "rm.pub",
        &db.conn(),
        &["apply", "b.tar.gz", "--yes", "--lock-timeout", "1s"],
    );
    assert_eq!(code(&o), 6, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("online steps"), "{}", stdout(&o));
    // The operator's airlock dies; its server session with it.
    child.kill().unwrap();
    child.wait().unwrap();
    db.exec(&format!("SELECT pg_terminate_backend({pid})"));
    holder
        .batch_execute("SELECT pg_advisory_unlock(4242)")
        .unwrap();
    // Step 1 is recorded; the killed build left an INVALID index.
    assert_eq!(events(&db), "apply:[\"schema\"] step:[\"indexes\"]");
    while index_state(&db, "t2_b") == "absent" {
        std::thread::yield_now();
    }
    assert_eq!(index_state(&db, "t2_b"), "INVALID");
    // plan (issue 68, item 8) names the leftover, the command that resumes the step and
    // the one that removes it by hand; never "continue with --allow-drift", which would
    // leave the INVALID index for good.
    for json_out in [true, false] {
        let mut args = vec!["plan", "b.tar.gz", "--trust", "rm.pub", "--db"];
        let conn = db.conn();
        args.push(&conn);
        if json_out {
            args.insert(0, "--json");
        }
        let p = airlock(d, &args);
        let text = format!("{}{}", stdout(&p), stderr(&p));
        assert_eq!(code(&p), 5, "{text}");
        assert!(
            text.contains("INVALID index")
                && text.contains("apply again with --resume")
                && text.contains("DROP INDEX CONCURRENTLY app.t2_b;"),
            "{text}"
        );
        assert!(
            !text.contains("--allow-drift") && !text.contains("drift: drift"),
            "{text}"
        );
    }
    // The continuation without --resume sees the leftover as drift and names both ways.
    let o = apply(d, &db, "b.tar.gz");
    assert_eq!(code(&o), 5, "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("DROP INDEX CONCURRENTLY app.t2_b;") && stdout(&o).contains("--resume"),
        "{}",
        stdout(&o)
    );
    assert_eq!(events(&db), "apply:[\"schema\"] step:[\"indexes\"]");
    // --resume accepts that leftover only: with any other change it is still drift.
    db.exec("CREATE TABLE app.meanwhile (i int);");
    let o = run_json(
        d,
        "rm.pub",
        &db.conn(),
        &["apply", "b.tar.gz", "--yes", "--resume"],
    );
    assert_eq!(code(&o), 5, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("app.meanwhile"), "{}", stdout(&o));
    assert_eq!(index_state(&db, "t2_b"), "INVALID");
    assert_eq!(events(&db), "apply:[\"schema\"] step:[\"indexes\"]");
    db.exec("DROP TABLE app.meanwhile;");
    // --resume: the leftover is proven the step's own (its name and definition, INVALID,
    // built by nobody, and the schema otherwise what step 1 left), dropped, and the step
    // goes on with step 2, never running step 1 again.
    let o = run_json(
        d,
        "rm.pub",
        &db.conn(),
        &["apply", "b.tar.gz", "--yes", "--resume"],
    );
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let steps: Vec<i64> = json(&o)["online_steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_i64().unwrap())
        .collect();
    assert_eq!(steps, vec![2, 3]);
    assert_eq!(index_state(&db, "t2_b"), "valid");
    assert_eq!(
        events(&db),
        "apply:[\"schema\"] step:[\"indexes\"] step:[\"indexes\"] apply:[\"indexes\"]"
    );
}

/// Release walk, finding 2: an apply killed while its online step builds leaves that
/// build going on in its server session (holding the online key). `plan` (and `plan
/// --resume`) then judges as `apply` does: the deploy lock is held by that run (FAIL,
/// exit 6, naming its session), in the human table and in `--json`; the index it is
/// building is never taken for drift to continue past with `--allow-drift`. Nothing is
/// written or changed by either.
#[test]
fn plan_while_a_killed_applys_build_goes_on_refuses_as_apply_does_naming_its_session() {
    let t = keyed_dir();
    let d = t.path();
    let (db, mut holder) = held_step_two(d, "online_plan_orphan");
    let mut child = apply_paused_at_step_two(d, &db);
    let pid = waiting_build(&db).expect("step 2 is building");
    // The operator's airlock dies; its server session goes on with step 2.
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(waiting_build(&db), Some(pid), "the build went on");
    let ledger = events(&db);
    assert_eq!(ledger, "apply:[\"schema\"] step:[\"indexes\"]");
    let named = format!("pid {pid}");
    let conn = db.conn();
    for resume in [false, true] {
        let mut args = vec!["plan", "b.tar.gz", "--trust", "rm.pub", "--db", &conn];
        if resume {
            args.push("--resume");
        }
        // The human table: the deploy-lock row fails with exit 6 and names the session.
        let p = airlock(d, &args);
        let text = format!("{}{}", stdout(&p), stderr(&p));
        assert_eq!(code(&p), 6, "{text}");
        let row = text
            .lines()
            .find(|l| l.starts_with("deploy-lock"))
            .unwrap_or_else(|| panic!("no deploy-lock row: {text}"));
        assert!(row.contains("FAIL") && row.contains('6'), "{text}");
        assert!(
            text.contains(&named) && text.contains("online steps"),
            "{text}"
        );
        assert!(!text.contains("--allow-drift"), "{text}");
        // --json: the same check, the same code, the same session.
        args.insert(0, "--json");
        let p = airlock(d, &args);
        assert_eq!(code(&p), 6, "{}{}", stdout(&p), stderr(&p));
        let v = json(&p);
        assert_eq!(v["exit_code"], 6, "{v:#}");
        assert_eq!(v["verdict"], "NO-GO", "{v:#}");
        let check = |name: &str| {
            v["checks"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["check"] == name)
                .unwrap_or_else(|| panic!("no {name} row: {v:#}"))
                .clone()
        };
        let lock = check("deploy-lock");
        assert_eq!(lock["verdict"], "FAIL", "{v:#}");
        assert_eq!(lock["exit_code"], 6, "{v:#}");
        assert!(lock["evidence"].as_str().unwrap().contains(&named), "{v:#}");
        // The schema the run is changing is not judged now (apply waits for the run).
        assert_eq!(check("drift")["verdict"], "SKIPPED", "{v:#}");
        assert!(!v.to_string().contains("--allow-drift"), "{v:#}");
        assert!(v["runnable_now"].is_null(), "{v:#}");
    }
    // apply refuses with the same code, naming the same session.
    let o = run_json(
        d,
        "rm.pub",
        &conn,
        &[
            "apply",
            "b.tar.gz",
            "--yes",
            "--resume",
            "--lock-timeout",
            "1s",
        ],
    );
    assert_eq!(code(&o), 6, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains(&named), "{}", stdout(&o));
    // Nothing was written: the ledger, and the build still going on.
    assert_eq!(events(&db), ledger);
    assert_eq!(waiting_build(&db), Some(pid));
    db.exec(&format!("SELECT pg_terminate_backend({pid})"));
    holder
        .batch_execute("SELECT pg_advisory_unlock(4242)")
        .unwrap();
}

/// A transactional one-tier source that adds a column to app.t.
fn alter_source(d: &Path, db: &str) -> std::path::PathBuf {
    let src = d.join("alter");
    write(
        &src.join("bundle.toml"),
        &format!(
            "[bundle]\nname = \"alter\"\nversion = \"1\"\nsequence = 1\n\n\
             [target]\ndatabase = \"{db}\"\n\n\
             [[tier]]\nname = \"schema\"\nfiles = [\"sql/schema.sql\"]\n"
        ),
    );
    write(
        &src.join("sql/schema.sql"),
        "ALTER TABLE app.t ADD COLUMN flag boolean;\n",
    );
    src
}

#[test]
fn a_lock_never_released_ends_in_lock_busy_after_the_retries_with_nothing_changed() {
    let t = keyed_dir();
    let d = t.path();
    let db = target("lock_never", 10);
    pack(d, &alter_source(d, &db.name), "rm.key", "a.tar.gz");
    let mut holder = db.client();
    let mut tx = holder.transaction().unwrap();
    tx.batch_execute("LOCK TABLE app.t IN ACCESS SHARE MODE")
        .unwrap();
    let pid = db.scalar("SELECT pid::text FROM pg_stat_activity WHERE datname = current_database() AND state = 'idle in transaction'");
    let o = airlock(
        d,
        &[
            "apply",
            "a.tar.gz",
            "--yes",
            "--trust",
            "rm.pub",
            "--db",
            &db.conn(),
            "--lock-timeout",
            "100ms",
            "--lock-retries",
            "2",
        ],
    );
    let err = stderr(&o);
    assert_eq!(code(&o), 6, "{}{err}", stdout(&o));
    // Each retry named the session holding a transaction open; the refusal too.
    assert!(
        err.contains("retry 1/2") && err.contains("retry 2/2"),
        "{err}"
    );
    assert!(err.contains(&format!("pid {pid}")), "{err}");
    assert!(err.contains("tried 3 time(s)"), "{err}");
    // Nothing changed: no column, no ledger row.
    tx.rollback().unwrap();
    assert_eq!(
        db.scalar("SELECT count(*)::text FROM information_schema.columns WHERE table_name = 't' AND column_name = 'flag'"),
        "0"
    );
    assert_eq!(db.ledger_rows(), "none");
}

#[test]
fn a_lock_released_between_retries_lets_the_apply_through() {
    use std::io::BufRead;
    let t = keyed_dir();
    let d = t.path();
    let db = target("lock_released", 10);
    pack(d, &alter_source(d, &db.name), "rm.key", "a.tar.gz");
    let mut holder = db.client();
    let mut tx = holder.transaction().unwrap();
    tx.batch_execute("LOCK TABLE app.t IN ACCESS SHARE MODE")
        .unwrap();
    let mut child = airlock_command(d, &[])
        .args([
            "apply",
            "a.tar.gz",
            "--yes",
            "--trust",
            "rm.pub",
            "--lock-timeout",
            "100ms",
            "--lock-retries",
            "20",
            "--db",
        ])
        .arg(db.conn())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The first retry notice: the statement timed out on the lock once.
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let first = lines
        .by_ref()
        .map(|l| l.unwrap())
        .find(|l| l.contains("lock busy, retry 1/20"))
        .expect("a retry notice");
    assert!(first.contains("idle in transaction"), "{first}");
    tx.rollback().unwrap();
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    let status = child.wait().unwrap();
    assert!(status.success(), "{first}\n{}", rest.join("\n"));
    assert_eq!(
        db.scalar("SELECT count(*)::text FROM information_schema.columns WHERE table_name = 't' AND column_name = 'flag'"),
        "1"
    );
    assert_eq!(db.ledger_rows(), "1");
}

#[test]
fn a_bundle_with_online_tiers_rehearses_apply_and_rollback_on_the_clone() {
    let t = keyed_dir();
    let d = t.path();
    let db = target("online_rehearse", 1000);
    packed(
        d,
        &db,
        "ALTER TABLE app.t ADD COLUMN note text;\n",
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS t_a ON app.t (a);\nANALYZE app.t;\n",
        "DROP INDEX CONCURRENTLY IF EXISTS app.t_a;\n",
    );
    let before = db.dump();
    let o = run_json(d, "rm.pub", &db.conn(), &["rehearse", "b.tar.gz"]);
    let v = json(&o);
    // The rollback cannot drop the column (an online rollback runs no ALTER TABLE):
    // the rehearsal says so rather than pretending the round trip holds.
    assert_eq!(code(&o), 5, "{v:#}");
    let steps = v["steps"].as_array().unwrap();
    let failed: Vec<&serde_json::Value> = steps.iter().filter(|s| s["verdict"] == "FAIL").collect();
    assert_eq!(failed.len(), 1, "{v:#}");
    assert_eq!(failed[0]["step"], "exit fingerprint == entry");
    let why = failed[0]["detail"].as_str().unwrap();
    assert!(why.contains("added table column app.t.note"), "{why}");
    assert!(!why.contains("t_a"), "{why}");
    // The target itself is untouched.
    assert_eq!(db.dump(), before);
    assert_eq!(db.ledger_rows(), "none");
}

#[test]
fn a_row_appended_behind_an_online_run_stops_it_at_the_next_record() {
    use airlock::db::ledger::chain as ledger;
    let t = keyed_dir();
    let d = t.path();
    let (db, mut holder) = held_step_two(d, "online_moved");
    let child = apply_paused_at_step_two(d, &db);
    // Step 1 is recorded; a row is appended behind the run (by a superuser, who needs
    // no lock to insert), chained correctly onto that head.
    assert_eq!(events(&db), "apply:[\"schema\"] step:[\"indexes\"]");
    let mut c = db.client();
    let mut tx = c.transaction().unwrap();
    ledger::append(
        &mut tx,
        ledger::NewRow {
            event: "apply",
            bundle_name: "other".into(),
            bundle_version: "1".into(),
            sequence: 1,
            bundle_id: "0".repeat(64),
            tiers: vec!["x".into()],
            params: Default::default(),
            operator: "someone".into(),
            fingerprint_before: "0".repeat(64),
            fingerprint_after: "0".repeat(64),
            bundle_tiers: vec!["x".into()],
            approvals: vec![],
            receipt: None,
        },
    )
    .unwrap();
    tx.commit().unwrap();
    holder
        .batch_execute("SELECT pg_advisory_unlock(4242)")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(code(&o), 5, "{}", stdout(&o));
    assert!(
        stdout(&o).contains("the ledger changed while this run's online steps ran"),
        "{}",
        stdout(&o)
    );
    // Nothing recorded after the foreign row: step 2 ran (it cannot be undone outside a
    // transaction) but the run stopped before writing on a head it did not see.
    assert_eq!(
        events(&db),
        "apply:[\"schema\"] step:[\"indexes\"] apply:[\"x\"]"
    );
}

/// A source with the transactional tier `schema` and two online tiers, `one` and `two`,
/// each building an index on app.t; `gated` (`one`, `two` or `one,two`) is guarded by the gate
/// `open`, READY while app.open holds a row.
fn two_online(dir: &Path, db: &str, gated: &str) -> std::path::PathBuf {
    let src = dir.join("src2");
    let _ = std::fs::remove_dir_all(&src);
    let gate = |tier: &str| {
        if gated.split(',').any(|g| g == tier) {
            "gates = [\"open\"]\n"
        } else {
            ""
        }
    };
    write(
        &src.join("bundle.toml"),
        &format!(
            "[bundle]\nname = \"online2\"\nversion = \"1\"\nsequence = 1\n\n\
             [target]\ndatabase = \"{db}\"\n\n\
             [[gate]]\nname = \"open\"\nfile = \"sql/gate.sql\"\n\n\
             [preflight]\nfile = \"sql/probe.sql\"\nexpect = {{ indexes = \"0\" }}\n\n\
             [[tier]]\nname = \"schema\"\nfiles = [\"sql/schema.sql\"]\n\n\
             [[tier]]\nname = \"one\"\nfiles = [\"sql/one.sql\"]\nonline = true\n{}\n\
             [[tier]]\nname = \"two\"\nfiles = [\"sql/two.sql\"]\nonline = true\n{}\n\
             [rollback]\nfiles = [\"sql/rollback.sql\"]\nonline = true\n",
            gate("one"),
            gate("two")
        ),
    );
    for (file, text) in [
        ("gate.sql", "SELECT (count(*) >= 1) AS ready, 'app.open holds a row' AS reason FROM app.open"),
        ("probe.sql", "SELECT 'indexes' AS key, count(*)::text AS value FROM pg_indexes WHERE schemaname = 'app' AND indexname IN ('t_a', 't_b')"),
        ("schema.sql", "ALTER TABLE app.t ADD COLUMN note text;\n"),
        ("one.sql", "CREATE INDEX CONCURRENTLY IF NOT EXISTS t_a ON app.t (a);\n"),
        ("two.sql", "CREATE INDEX CONCURRENTLY IF NOT EXISTS t_b ON app.t (b);\n"),
        ("rollback.sql", "DROP INDEX CONCURRENTLY IF EXISTS app.t_a;\nDROP INDEX CONCURRENTLY IF EXISTS app.t_b;\n"),
    ] {
        write(&src.join("sql").join(file), text);
    }
    src
}

/// The target of [`two_online`]: app.t, and app.open (empty: the gate is shut).
fn gated_target(tag: &str) -> TestDb {
    let db = target(tag, 1000);
    db.exec("CREATE TABLE app.open (at timestamptz); GRANT SELECT ON app.open TO airlock_gate;");
    db
}

#[test]
fn each_online_tier_is_decided_in_the_transaction_before_it_without_describing_the_schema_again() {
    let t = keyed_dir();
    let d = t.path();
    let db = gated_target("online_folded");
    db.exec("INSERT INTO app.open VALUES (now())");
    let src = two_online(d, &db.name, "two");
    pack(d, &src, "rm.key", "b.tar.gz");
    let o = apply(d, &db, "b.tar.gz");
    let v = json(&o);
    assert_eq!(code(&o), 0, "{v:#}");
    assert_eq!(
        events(&db),
        "apply:[\"schema\"] apply:[\"one\"] apply:[\"two\"]"
    );
    assert_eq!(index_state(&db, "t_a"), "valid");
    assert_eq!(index_state(&db, "t_b"), "valid");
    // The gate of `two` was asked (READY), in the transaction that recorded `one`.
    assert_eq!(v["gates"]["gates"][0]["name"], "open", "{v:#}");
    assert_eq!(v["gates"]["gates"][0]["ready"], true, "{v:#}");
    // Four descriptions: before the tiers, and after each of the three. Each online
    // tier was decided in the transaction that had just described the schema after
    // the tier before it, so none was described again to decide it (two more before).
    let how: Vec<String> = v["schema_descriptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| format!("{}:{}", s["how"], s["changed"]))
        .collect();
    assert_eq!(how.len(), 4, "{how:?}");
    // Every row of what ran records the fingerprint the one before it left: nothing
    // drifted (the last row records its receipt's delivery).
    let chained = db.scalar(
        "SELECT bool_and(l.fingerprint_before = p.fingerprint_after)::text FROM airlock.ledger l \
           JOIN airlock.ledger p ON p.seq = l.seq - 1 WHERE l.event <> 'receipt'",
    );
    assert_eq!(chained, "true");
}

/// Issue 68, item 10: a gate asked again before each online tier it guards is one row
/// of apply's gate table (its latest answer), not one row per time it was asked.
#[test]
fn a_gate_asked_before_two_online_tiers_is_listed_once() {
    let t = keyed_dir();
    let d = t.path();
    let db = gated_target("online_gate_once");
    db.exec("INSERT INTO app.open VALUES (now())");
    let src = two_online(d, &db.name, "one,two");
    pack(d, &src, "rm.key", "b.tar.gz");
    let conn = db.conn();
    let o = airlock(
        d,
        &["apply", "b.tar.gz", "--trust", "rm.pub", "--db", &conn],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(index_state(&db, "t_b"), "valid");
    // The human table: one row for the gate.
    let rows = stdout(&o)
        .lines()
        .filter(|l| l.starts_with("open ") && l.contains("READY"))
        .count();
    assert_eq!(rows, 1, "{}", stdout(&o));
    // The receipt (apply --json's document) says the same.
    let receipt = receipts(d).pop().expect("a receipt");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(receipt).unwrap()).unwrap();
    let names: Vec<&str> = r["gates"]["gates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["open"], "{r:#}");
    assert_eq!(r["gates"]["gates"][0]["ready"], true, "{r:#}");
}

#[test]
fn a_shut_gate_of_an_online_tier_stops_the_run_after_the_tier_before_it_and_leaves_no_lock() {
    for (gated, done) in [
        ("one", "apply:[\"schema\"]"),
        ("two", "apply:[\"schema\"] apply:[\"one\"]"),
    ] {
        let t = keyed_dir();
        let d = t.path();
        let db = gated_target(&format!("online_shut_{gated}"));
        let src = two_online(d, &db.name, gated);
        pack(d, &src, "rm.key", "b.tar.gz");
        let o = apply(d, &db, "b.tar.gz");
        let v = json(&o);
        // BLOCKED, after the tiers before the gated one committed (a partial run).
        assert_eq!(code(&o), 3, "{gated}: {v:#}");
        assert!(
            v.to_string().contains("app.open holds a row"),
            "{gated}: {v:#}"
        );
        assert_eq!(events(&db), done, "{gated}");
        let (a, b) = if gated == "one" {
            ("absent", "absent")
        } else {
            ("valid", "absent")
        };
        assert_eq!(index_state(&db, "t_a"), a, "{gated}");
        assert_eq!(index_state(&db, "t_b"), b, "{gated}");
        // The gate opens: the next apply goes on where the run stopped (no lock of the
        // stopped run's is left behind).
        db.exec("INSERT INTO app.open VALUES (now())");
        let o = apply(d, &db, "b.tar.gz");
        assert_eq!(code(&o), 0, "{gated}: {}", stdout(&o));
        assert_eq!(
            events(&db),
            "apply:[\"schema\"] apply:[\"one\"] apply:[\"two\"]",
            "{gated}"
        );
        assert_eq!(index_state(&db, "t_b"), "valid", "{gated}");
    }
}

#[test]
fn a_trigger_added_to_the_ledger_behind_an_online_run_is_refused_at_the_next_record() {
    // The ledger is inspected again in every record transaction of the run (the
    // inspection is prepared once a connection; what it reads is the catalogs now).
    let t = keyed_dir();
    let d = t.path();
    let (db, mut holder) = held_step_two(d, "online_trigger");
    db.exec(
        "CREATE TABLE public.fired (at timestamptz); \
         CREATE FUNCTION public.spy() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN INSERT INTO public.fired VALUES (now()); RETURN NEW; END $$;",
    );
    let child = apply_paused_at_step_two(d, &db);
    assert_eq!(events(&db), "apply:[\"schema\"] step:[\"indexes\"]");
    db.exec(
        "CREATE TRIGGER spy BEFORE INSERT ON airlock.ledger FOR EACH ROW EXECUTE FUNCTION public.spy()",
    );
    holder
        .batch_execute("SELECT pg_advisory_unlock(4242)")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    let v = json(&o);
    assert_eq!(code(&o), 5, "{v:#}");
    assert_eq!(v["kind"], "ledger-untrusted", "{v:#}");
    assert!(v.to_string().contains("spy"), "{v:#}");
    // Nothing more recorded, and the planted trigger never ran.
    assert_eq!(events(&db), "apply:[\"schema\"] step:[\"indexes\"]");
    assert_eq!(db.scalar("SELECT count(*)::text FROM public.fired"), "0");
}

/// Issue 69 item 8: `DROP INDEX CONCURRENTLY name` without `IF EXISTS` (as upstream
/// SQL writes it) is an online step: the catalog decides on a run that goes on after
/// a stopped one. The drop finished (the index gone): the step is done; the drop cut
/// short (the index left INVALID): it runs again. Neither is drift.
#[test]
fn a_drop_index_concurrently_without_if_exists_resumes_after_an_interrupted_run() {
    for finished in [true, false] {
        let t = keyed_dir();
        let d = t.path();
        let db = target(&format!("online_drop{}", u8::from(finished)), 1000);
        db.exec("CREATE INDEX t_old ON app.t (b)");
        packed(
            d,
            &db,
            "CREATE TABLE app.other (id int);\n",
            "DROP INDEX CONCURRENTLY app.t_old;\nCREATE INDEX CONCURRENTLY t_a ON app.t (a);\n",
            "DROP INDEX CONCURRENTLY IF EXISTS app.t_a;\n",
        );
        interrupted_drop(d, &db);
        if finished {
            // The stopped run's drop, finished (here by hand): the index is gone.
            db.exec("DROP INDEX IF EXISTS app.t_old");
        } else {
            assert_eq!(index_state(&db, "t_old"), "INVALID");
        }
        let o = apply(d, &db, "b.tar.gz");
        assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
        assert_eq!(
            stdout(&o).contains("index t_old was not there"),
            finished,
            "the note names the index gone: {}",
            stdout(&o)
        );
        assert_eq!(index_state(&db, "t_old"), "absent");
        assert_eq!(index_state(&db, "t_a"), "valid");
        assert_eq!(
            events(&db),
            "apply:[\"schema\"] step:[\"indexes\"] apply:[\"indexes\"]"
        );
    }
}

/// An apply of [`packed`]'s release whose online step 1 (`DROP INDEX CONCURRENTLY
/// app.t_old`) waits for a reader of app.t: killed there, its server session ended.
fn interrupted_drop(d: &Path, db: &TestDb) {
    let mut holder = db.client();
    holder
        .batch_execute("BEGIN; SELECT count(*) FROM app.t")
        .unwrap();
    let mut child = airlock_command(d, &[])
        .args([
            "--json",
            "apply",
            "b.tar.gz",
            "--yes",
            "--lock-timeout",
            "5min",
            "--trust",
            "rm.pub",
            "--db",
        ])
        .arg(db.conn())
        .stdout(std::fs::File::create(d.join("child.out")).unwrap())
        .stderr(std::fs::File::create(d.join("child.err")).unwrap())
        .spawn()
        .unwrap();
    let find = "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
                AND query LIKE 'DROP INDEX CONCURRENTLY app.t_old%' AND wait_event_type = 'Lock'";
    let pid: i32 = loop {
        if let Some(r) = db.client().query(find, &[]).unwrap().first() {
            break r.get(0);
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the apply ended before the drop waited: {}{}",
            std::fs::read_to_string(d.join("child.out")).unwrap(),
            std::fs::read_to_string(d.join("child.err")).unwrap()
        );
        std::thread::yield_now();
    };
    child.kill().unwrap();
    child.wait().unwrap();
    db.exec(&format!("SELECT pg_terminate_backend({pid})"));
    holder.batch_execute("COMMIT").unwrap();
    assert_eq!(events(db), "apply:[\"schema\"]");
}

/// Issue 69 item 12: a tier that fails after earlier tiers of the run committed does
/// not say "nothing was changed": it says its own transaction was rolled back and
/// names what committed before it.
#[test]
fn a_failure_after_committed_online_steps_says_what_committed() {
    let t = keyed_dir();
    let d = t.path();
    let db = target("online_said", 100);
    let src = source(
        d,
        &db.name,
        "CREATE TABLE app.other (id int);\n",
        "CREATE INDEX CONCURRENTLY t_a ON app.t (a);\n",
        "DROP INDEX CONCURRENTLY IF EXISTS app.t_a;\n",
    );
    let toml = src.join("bundle.toml");
    let text = std::fs::read_to_string(&toml).unwrap().replace(
        "\n[rollback]",
        "\n[[tier]]\nname = \"data\"\nfiles = [\"sql/data.sql\"]\n\n[rollback]",
    );
    write(&toml, &text);
    write(
        &src.join("sql/data.sql"),
        "INSERT INTO app.t (id) VALUES (1);\n",
    );
    pack(d, &src, "rm.key", "b.tar.gz");
    let o = apply(d, &db, "b.tar.gz");
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    let j = json(&o);
    let said = j["error"].as_str().unwrap();
    assert!(!said.contains("nothing was changed"), "{said}");
    assert!(
        said.contains("\"schema\"") && said.contains("\"indexes\""),
        "{said}"
    );
    assert!(said.contains("1 online step"), "{said}");
    assert_eq!(index_state(&db, "t_a"), "valid");
}
