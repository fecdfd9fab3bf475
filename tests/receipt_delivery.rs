//! A killed run recovers, a hidden receipt does not: every receipt's delivery is a
//! ledger row (`receipt`), `airlock reissue` writes the receipt of a run interrupted
//! after it committed, and `audit` tells the two apart from the ledger alone.

mod util;
use std::path::Path;
use util::*;

/// A three-tier source for `db`, one transaction per tier: `t1` and `t2` create a
/// table each, `t3` writes to `ops.blocker` (a test holds its lock to stop the run
/// there).
fn per_tier_source(d: &Path, db: &TestDb) -> std::path::PathBuf {
    let s = MiniSource::new(
        &d.join("src"),
        &db.name,
        "SELECT true AS ready",
        &[
            ("t1", "CREATE TABLE app.t1(i int);", false),
            ("t2", "CREATE TABLE app.t2(i int);", false),
            ("t3", "INSERT INTO ops.blocker VALUES (1);", false),
        ],
        "DROP TABLE IF EXISTS app.t1, app.t2; DELETE FROM ops.blocker;",
    );
    let toml = s.dir.join("bundle.toml");
    let text = std::fs::read_to_string(&toml).unwrap().replace(
        "sequence = 1\n",
        "sequence = 1\ntransaction = \"per-tier\"\n",
    );
    std::fs::write(&toml, text).unwrap();
    s.dir
}

/// rm (release) and op (operator) keys, and a trust store `store` counting op's
/// receipt signatures.
fn keys_and_store(d: &Path) -> String {
    keygen(d, "rm");
    keygen(d, "op");
    let op = key_id_of(&d.join("op.pub"));
    trust_store(
        d,
        "store",
        &["rm", "op"],
        &format!("[keys.{op}]\nrole = \"operator\"\n"),
    )
    .to_str()
    .unwrap()
    .to_string()
}

/// `airlock --json audit BUNDLE --trust STORE --receipt DIR --db CONN`: exit code and
/// document.
fn audit(d: &Path, store: &str, db: &TestDb, receipts: &str) -> (i32, serde_json::Value) {
    let o = airlock(
        d,
        &[
            "--json",
            "audit",
            "b.tar.gz",
            "--trust",
            store,
            "--receipt",
            receipts,
            "--db",
            &db.conn(),
        ],
    );
    (code(&o), json(&o))
}

/// Every verdict line `SUBJECT | CHECK | VERDICT | DETAIL` of an audit document.
fn verdicts(doc: &serde_json::Value) -> Vec<String> {
    doc["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            format!(
                "{} | {} | {} | {}",
                v["subject"].as_str().unwrap(),
                v["check"].as_str().unwrap(),
                v["verdict"].as_str().unwrap(),
                v["detail"].as_str().unwrap()
            )
        })
        .collect()
}

#[track_caller]
fn assert_verdict(doc: &serde_json::Value, needles: &[&str]) {
    let all = verdicts(doc);
    assert!(
        all.iter().any(|l| needles.iter().all(|n| l.contains(n))),
        "no verdict says {needles:?}: {all:#?}"
    );
}

fn receipt_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".receipt.json"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Wait (bounded) until no airlock session is left on the database.
fn wait_for_no_airlock_sessions(db: &TestDb) {
    for _ in 0..1000 {
        let n = db.scalar(&format!(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND application_name = 'airlock'",
            db.name
        ));
        if n == "0" {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("airlock sessions did not go away");
}

/// The backend of the airlock run waiting for a lock in `db`, if one is waiting.
fn waiting_for_lock(db: &TestDb) -> bool {
    db.scalar(&format!(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' \
           AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()",
        db.name
    )) != "0"
}

#[test]
fn a_run_killed_after_a_commit_gets_its_receipt_reissued_and_audit_accepts_it_as_such() {
    let t = tempdir();
    let d = t.path();
    let store = keys_and_store(d);
    let db = TestDb::new("delivery_killed");
    db.exec("CREATE SCHEMA app; CREATE SCHEMA ops; CREATE TABLE ops.blocker(i int);");
    let src = per_tier_source(d, &db);
    pack(d, &src, "rm.key", "b.tar.gz");
    let o = airlock(
        d,
        &[
            "apply",
            "b.tar.gz",
            "--trust",
            &store,
            "--db",
            &db.conn(),
            "--through",
            "t1",
            "--out",
            "receipts",
            "--sign-receipt",
            "op.key",
        ],
    );
    expect_code(&o, 0);

    // The test holds ops.blocker: tier 2 commits, tier 3 waits for the lock; then the
    // run is killed (SIGKILL: no receipt, no cleanup).
    let mut holder = db.client();
    let mut hold = holder.transaction().unwrap();
    hold.batch_execute("LOCK TABLE ops.blocker IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let mut child = airlock_spawn(
        d,
        &[
            "apply",
            "b.tar.gz",
            "--trust",
            &store,
            "--db",
            &db.conn(),
            "--yes",
            "--lock-timeout",
            "10min",
            "--out",
            "receipts",
            "--sign-receipt",
            "op.key",
        ],
    );
    let mut polls = 0;
    while !waiting_for_lock(&db) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it waited"
        );
        polls += 1;
        assert!(polls < 6000, "the run never reached tier 3");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    hold.rollback().unwrap();
    drop(holder);
    assert_eq!(
        db.scalar("SELECT string_agg(event, ',' ORDER BY seq) FROM airlock.ledger"),
        "apply,receipt,apply"
    );
    assert_eq!(
        receipt_files(&d.join("receipts")).len(),
        1,
        "a killed run wrote no receipt"
    );

    // Before: the audit fails, naming the interruption and the way out; status lists
    // the row.
    let (c, doc) = audit(d, &store, &db, "receipts");
    assert_eq!(c, 4, "{doc:#}");
    assert_verdict(
        &doc,
        &[
            "ledger row 3 receipt",
            "FAIL",
            "interrupted",
            "airlock reissue",
        ],
    );
    let o = airlock(d, &["--json", "status", "--db", &db.conn()]);
    expect_code(&o, 0);
    assert_eq!(
        json(&o)["bundles"][0]["undelivered"],
        serde_json::json!([3])
    );
    let o = airlock(d, &["status", "--db", &db.conn()]);
    assert!(stdout(&o).contains("airlock reissue"), "{}", stdout(&o));

    // The killed run's server session ends once it sees its client gone.
    wait_for_no_airlock_sessions(&db);
    // While another airlock session is connected (a run between its transactions
    // holds only its connection), reissue refuses and writes nothing.
    let ledger_before =
        db.scalar("SELECT string_agg(row_hash, ',' ORDER BY seq) FROM airlock.ledger");
    let other = postgres::Config::new()
        .host(&std::env::var("PGHOST").unwrap_or_else(|_| "/var/run/postgresql".into()))
        .port(pg_port())
        .user(&std::env::var("PGUSER").unwrap_or_else(|_| "root".into()))
        .dbname(&db.name)
        .application_name("airlock")
        .connect(postgres::NoTls)
        .unwrap();
    let o = airlock(
        d,
        &[
            "--json",
            "reissue",
            "b.tar.gz",
            "--trust",
            &store,
            "--db",
            &db.conn(),
            "--out",
            "receipts",
        ],
    );
    expect_code(&o, 6);
    assert_eq!(json(&o)["kind"], "run-in-progress", "{}", stdout(&o));
    assert_eq!(receipt_files(&d.join("receipts")).len(), 1);
    assert_eq!(
        db.scalar("SELECT string_agg(row_hash, ',' ORDER BY seq) FROM airlock.ledger"),
        ledger_before
    );
    drop(other);
    wait_for_no_airlock_sessions(&db);

    // The reissue: one receipt, marked, signed, its delivery recorded.
    let o = airlock(
        d,
        &[
            "--json",
            "reissue",
            "b.tar.gz",
            "--trust",
            &store,
            "--db",
            &db.conn(),
            "--out",
            "receipts",
            "--sign-receipt",
            "op.key",
        ],
    );
    expect_code(&o, 0);
    let doc = json(&o);
    let reissued = doc["reissued"].as_array().unwrap();
    assert_eq!(reissued.len(), 1, "{doc:#}");
    assert_eq!(reissued[0]["tiers"], serde_json::json!(["t2"]));
    assert_eq!(reissued[0]["remaining_tiers"], serde_json::json!(["t3"]));
    assert!(reissued[0]["reissued"]["reason"]
        .as_str()
        .unwrap()
        .contains("stopped before"));
    assert_eq!(receipt_files(&d.join("receipts")).len(), 2);
    let file = std::path::PathBuf::from(reissued[0]["receipt_file"].as_str().unwrap());
    let file = d.join(file);
    assert!(Path::new(&format!("{}.minisig", file.display())).exists());
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("\"reissued\""), "{text}");
    assert_eq!(
        db.scalar("SELECT string_agg(event, ',' ORDER BY seq) FROM airlock.ledger"),
        "apply,receipt,apply,receipt"
    );
    let delivery: serde_json::Value =
        serde_json::from_str(&db.scalar("SELECT receipt FROM airlock.ledger WHERE seq = 4"))
            .unwrap();
    assert_eq!(delivery["covers"], serde_json::json!([3]));
    assert_eq!(delivery["reissued"], true);

    // The audit now passes, and says the receipt is a reissue.
    let (c, doc) = audit(d, &store, &db, "receipts");
    assert_eq!(c, 0, "{:#?}", verdicts(&doc));
    assert_verdict(
        &doc,
        &["delivery", "PASS", "reissued after an interrupted run"],
    );

    // A second reissue has nothing to do and writes nothing.
    let o = airlock(
        d,
        &[
            "reissue",
            "b.tar.gz",
            "--trust",
            &store,
            "--db",
            &db.conn(),
            "--out",
            "receipts",
        ],
    );
    expect_code(&o, 0);
    assert!(stdout(&o).contains("nothing to reissue"), "{}", stdout(&o));
    assert_eq!(receipt_files(&d.join("receipts")).len(), 2);
    assert_eq!(db.scalar("SELECT count(*) FROM airlock.ledger"), "4");

    // The run continues; its own receipt is delivered, and the whole history audits.
    let o = airlock(
        d,
        &[
            "apply",
            "b.tar.gz",
            "--trust",
            &store,
            "--db",
            &db.conn(),
            "--out",
            "receipts",
            "--sign-receipt",
            "op.key",
        ],
    );
    expect_code(&o, 0);
    assert!(
        stdout(&o).contains("receipt delivered: ledger row #6 records it"),
        "{}",
        stdout(&o)
    );
    assert_eq!(
        db.scalar("SELECT string_agg(event, ',' ORDER BY seq) FROM airlock.ledger"),
        "apply,receipt,apply,receipt,apply,receipt"
    );
    let (c, doc) = audit(d, &store, &db, "receipts");
    assert_eq!(c, 0, "{:#?}", verdicts(&doc));
    assert_verdict(
        &doc,
        &["delivery", "PASS", "these exact bytes were delivered"],
    );
}

#[test]
fn a_hidden_or_edited_receipt_fails_the_audit_and_a_reissue_never_stands_in_for_it() {
    let t = tempdir();
    let d = t.path();
    let store = keys_and_store(d);
    let db = TestDb::new("delivery_hidden");
    db.exec("CREATE SCHEMA app; CREATE SCHEMA ops; CREATE TABLE ops.blocker(i int);");
    let src = per_tier_source(d, &db);
    pack(d, &src, "rm.key", "b.tar.gz");
    let run = |through: &[&str]| {
        let mut args = vec![
            "--json", "apply", "b.tar.gz", "--trust", &store, "--db", "", "--out", "receipts",
        ];
        let conn = db.conn();
        args[6] = &conn;
        args.extend(through);
        let o = airlock(d, &args);
        expect_code(&o, 0);
        d.join(json(&o)["receipt_file"].as_str().unwrap())
    };
    let original = run(&["--through", "t1"]);
    run(&[]);
    assert_eq!(
        db.scalar("SELECT string_agg(event, ',' ORDER BY seq) FROM airlock.ledger"),
        "apply,receipt,apply,apply,receipt"
    );
    let text = std::fs::read_to_string(&original).unwrap();

    // Hidden: the audit names the delivery the ledger recorded.
    std::fs::create_dir(d.join("hidden")).unwrap();
    std::fs::rename(&original, d.join("hidden/r.json")).unwrap();
    let (c, doc) = audit(d, &store, &db, "receipts");
    assert_eq!(c, 4, "{doc:#}");
    assert_verdict(
        &doc,
        &[
            "ledger row 1 receipt",
            "FAIL",
            "was delivered",
            "hidden or lost",
        ],
    );

    // Nothing to reissue: the ledger records its delivery; nothing written.
    let ledger_before =
        db.scalar("SELECT string_agg(row_hash, ',' ORDER BY seq) FROM airlock.ledger");
    let o = airlock(
        d,
        &[
            "reissue",
            "b.tar.gz",
            "--trust",
            &store,
            "--db",
            &db.conn(),
            "--out",
            "receipts",
        ],
    );
    expect_code(&o, 0);
    assert!(stdout(&o).contains("nothing to reissue"), "{}", stdout(&o));
    assert_eq!(
        receipt_files(&d.join("receipts")).len(),
        1,
        "the second run's only"
    );
    assert_eq!(
        db.scalar("SELECT string_agg(row_hash, ',' ORDER BY seq) FROM airlock.ledger"),
        ledger_before
    );

    // A hand-made "reissue" of the same rows does not stand in for it.
    let mut forged: serde_json::Value = serde_json::from_str(&text).unwrap();
    forged["reissued"] = serde_json::json!({
        "at": "2026-01-01T00:00:00Z", "by": "someone@host", "reason": "lost"
    });
    std::fs::write(
        d.join("receipts/forged.receipt.json"),
        serde_json::to_vec_pretty(&forged).unwrap(),
    )
    .unwrap();
    let (c, doc) = audit(d, &store, &db, "receipts");
    assert_eq!(c, 4, "{doc:#}");
    assert_verdict(
        &doc,
        &["delivery", "FAIL", "a reissue does not stand in for it"],
    );
    std::fs::remove_file(d.join("receipts/forged.receipt.json")).unwrap();

    // Edited after delivery (a field the ledger does not record): the bytes differ
    // from the ones the ledger records.
    let mut edited: serde_json::Value = serde_json::from_str(&text).unwrap();
    edited["duration_ms"] = serde_json::json!(1);
    std::fs::write(
        d.join("receipts/edited.receipt.json"),
        serde_json::to_vec_pretty(&edited).unwrap(),
    )
    .unwrap();
    let (c, doc) = audit(d, &store, &db, "receipts");
    assert_eq!(c, 4, "{doc:#}");
    assert_verdict(
        &doc,
        &["delivery", "FAIL", "changed after it was delivered"],
    );
    std::fs::remove_file(d.join("receipts/edited.receipt.json")).unwrap();

    // The receipt itself, given back: its delivery holds.
    std::fs::rename(d.join("hidden/r.json"), &original).unwrap();
    let (_, doc) = audit(d, &store, &db, "receipts");
    assert_verdict(
        &doc,
        &["delivery", "PASS", "these exact bytes were delivered"],
    );
    assert!(
        !verdicts(&doc).iter().any(|l| l.contains("| FAIL |")),
        "{:#?}",
        verdicts(&doc)
    );
}

#[test]
fn a_ledger_from_before_deliveries_never_takes_its_old_rows_for_interrupted_runs() {
    let t = tempdir();
    let d = t.path();
    let store = keys_and_store(d);
    let db = TestDb::new("delivery_old_ledger");
    db.exec("CREATE SCHEMA app; CREATE SCHEMA ops; CREATE TABLE ops.blocker(i int);");
    let src = per_tier_source(d, &db);
    pack(d, &src, "rm.key", "b.tar.gz");
    let o = airlock(
        d,
        &[
            "apply",
            "b.tar.gz",
            "--trust",
            &store,
            "--db",
            &db.conn(),
            "--out",
            "old",
        ],
    );
    expect_code(&o, 0);
    // The same history in a ledger as airlock made it before it recorded deliveries:
    // its rows (apply rows only: no receipt rows), no receipt column, no 'receipt' event.
    db.exec(
        "CREATE TABLE public.kept AS SELECT * FROM airlock.ledger WHERE event <> 'receipt';
         DROP SCHEMA airlock CASCADE;
         CREATE SCHEMA airlock;
         CREATE TABLE airlock.ledger (seq bigint PRIMARY KEY, at text NOT NULL,
           event text NOT NULL CHECK (event IN ('apply', 'rollback', 'step')), bundle_name text NOT NULL,
           bundle_version text NOT NULL, sequence bigint NOT NULL, bundle_id text NOT NULL,
           tiers text NOT NULL, params text NOT NULL, operator text NOT NULL,
           fingerprint_before text NOT NULL, fingerprint_after text NOT NULL,
           prev_hash text NOT NULL, row_hash text NOT NULL UNIQUE, bundle_tiers text, approvals text);
         CREATE FUNCTION airlock.ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'airlock.ledger is append-only (% refused)', TG_OP;
END $$;
         CREATE TRIGGER ledger_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON airlock.ledger
           FOR EACH STATEMENT EXECUTE FUNCTION airlock.ledger_append_only();
         INSERT INTO airlock.ledger SELECT seq, at, event, bundle_name, bundle_version, sequence,
           bundle_id, tiers, params, operator, fingerprint_before, fingerprint_after, prev_hash,
           row_hash, bundle_tiers, approvals FROM public.kept;
         DROP TABLE public.kept;",
    );
    // This host saw the ledger with its receipt row: another host's state stands in.
    let state = tempdir();
    let env = [("AIRLOCK_STATE_DIR", state.path().to_str().unwrap())];
    let rows_before =
        db.scalar("SELECT string_agg(row_hash, ',' ORDER BY seq) FROM airlock.ledger");
    let o = airlock_env(d, &["--json", "status", "--db", &db.conn()], &env);
    expect_code(&o, 0);
    let doc = json(&o);
    assert!(doc.get("deliveries_recorded_from").is_none(), "{doc:#}");
    assert!(doc["bundles"][0].get("undelivered").is_none(), "{doc:#}");
    let o = airlock_env(
        d,
        &[
            "reissue",
            "b.tar.gz",
            "--trust",
            &store,
            "--db",
            &db.conn(),
            "--out",
            "receipts",
        ],
        &env,
    );
    expect_code(&o, 0);
    assert!(stdout(&o).contains("nothing to reissue"), "{}", stdout(&o));
    assert_eq!(
        db.scalar("SELECT string_agg(row_hash, ',' ORDER BY seq) FROM airlock.ledger"),
        rows_before
    );

    // The first delivery widens the ledger and says from which row it records them.
    let o = airlock_env(
        d,
        &[
            "rollback",
            "b.tar.gz",
            "--trust",
            &store,
            "--db",
            &db.conn(),
            "--out",
            "receipts",
        ],
        &env,
    );
    expect_code(&o, 0);
    let delivery: serde_json::Value = serde_json::from_str(
        &db.scalar("SELECT receipt FROM airlock.ledger WHERE event = 'receipt'"),
    )
    .unwrap();
    let rollback_seq: i64 = db
        .scalar("SELECT seq FROM airlock.ledger WHERE event = 'rollback'")
        .parse()
        .unwrap();
    assert_eq!(delivery["since"], serde_json::json!(rollback_seq));
    let o = airlock_env(d, &["--json", "status", "--db", &db.conn()], &env);
    expect_code(&o, 0);
    let doc = json(&o);
    assert_eq!(
        doc["deliveries_recorded_from"],
        serde_json::json!(rollback_seq)
    );
    assert!(doc["bundles"][0].get("undelivered").is_none(), "{doc:#}");

    // The audit does not take the old apply's missing receipt for an interruption.
    let (c, doc) = audit(d, &store, &db, "receipts");
    assert_eq!(c, 4, "{doc:#}");
    assert_verdict(
        &doc,
        &[
            "ledger row 1 receipt",
            "FAIL",
            "before the ledger recorded deliveries",
        ],
    );
    assert_verdict(
        &doc,
        &[
            &format!("ledger row {rollback_seq} receipt"),
            "PASS",
            "matched by a receipt",
        ],
    );
}

/// A ratified release killed while its online step waits (issue 68, finding 3): the
/// transactional tiers committed with two approvals (recorded on their ledger row),
/// the online step's build waits for advisory lock 4343, the operator's airlock is
/// killed. The reissued receipt carries the approvals the ledger row records and says
/// it is a reissue; the audit accepts it as ratified, the ledger vouching for it; the
/// dossier and status say it was reissued.
#[test]
fn a_ratified_run_killed_in_its_online_step_is_reissued_with_its_approvals_and_audits() {
    let t = tempdir();
    let d = t.path();
    keygen(d, "rm");
    keygen(d, "op");
    let trust = approver_trust(d, &["rm", "op"]);
    let op = key_id_of(&d.join("op.pub"));
    let toml = std::fs::read_to_string(d.join("trust/trust.toml")).unwrap();
    std::fs::write(
        d.join("trust/trust.toml"),
        format!("{toml}[keys.{op}]\nrole = \"operator\"\n"),
    )
    .unwrap();
    let db = TestDb::new("delivery_ratified_kill");
    db.exec(
        "CREATE SCHEMA shop; CREATE TABLE shop.t (a int); \
         INSERT INTO shop.t SELECT g FROM generate_series(1, 100) g; \
         CREATE FUNCTION shop.held(v int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS \
         $$ BEGIN PERFORM pg_advisory_lock_shared(4343); PERFORM pg_advisory_unlock_shared(4343); RETURN v; END $$;",
    );
    let src = d.join("src");
    write(
        &src.join("bundle.toml"),
        &format!(
            "[bundle]\nname = \"ratified\"\nversion = \"1\"\nsequence = 1\n\n\
             [target]\ndatabase = \"{}\"\n\n\
             [params.code]\nrequired = true\npattern = \"^[A-Z0-9-]+$\"\ndescription = \"a code\"\n\n\
             [[gate]]\nname = \"g\"\nfile = \"sql/gate.sql\"\n\n\
             [preflight]\nfile = \"sql/probe.sql\"\nexpect = {{ indexes = \"0\" }}\n\n\
             [[tier]]\nname = \"schema\"\nfiles = [\"sql/schema.sql\"]\n\n\
             [[tier]]\nname = \"seed\"\nfiles = [\"sql/seed.sql\"]\ngates = [\"g\"]\n\n\
             [[tier]]\nname = \"index\"\nfiles = [\"sql/index.sql\"]\nonline = true\n\n\
             [rollback]\nfiles = [\"sql/rollback.sql\"]\nonline = true\n\n\
             [ratification]\nthreshold = 2\n",
            db.name
        ),
    );
    write(&src.join("sql/gate.sql"), "SELECT true AS ready");
    write(
        &src.join("sql/probe.sql"),
        "SELECT 'indexes' AS key, count(*)::text AS value FROM pg_indexes WHERE schemaname = 'shop' AND indexname = 't_held'",
    );
    write(
        &src.join("sql/schema.sql"),
        "ALTER TABLE shop.t ADD COLUMN note text;\n",
    );
    write(
        &src.join("sql/seed.sql"),
        "UPDATE shop.t SET note = 'x' WHERE note IS NULL;\n",
    );
    write(
        &src.join("sql/index.sql"),
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS t_held ON shop.t (shop.held(a));\n",
    );
    write(
        &src.join("sql/rollback.sql"),
        "DROP INDEX CONCURRENTLY IF EXISTS shop.t_held;\n",
    );
    pack(d, &src, "rm.key", "b.tar.gz");
    for who in APPROVERS {
        approve_as(d, &trust, "b.tar.gz", who, &["code=APR-1"], "approvals");
    }

    // The build waits for the lock the test holds; then the run is killed.
    let mut holder = db.client();
    holder
        .batch_execute("SELECT pg_advisory_lock(4343)")
        .unwrap();
    let mut child = airlock_spawn(
        d,
        &[
            "apply",
            "b.tar.gz",
            "--trust",
            &trust,
            "--db",
            &db.conn(),
            "--param",
            "code=APR-1",
            "--approval",
            "approvals",
            "--yes",
            "--lock-timeout",
            "10min",
            "--out",
            "receipts",
            "--sign-receipt",
            "op.key",
        ],
    );
    let waiting = || {
        db.scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
               AND query LIKE '%CREATE INDEX CONCURRENTLY IF NOT EXISTS t_held%' \
               AND wait_event = 'advisory' AND pid <> pg_backend_pid()",
        ) != "0"
    };
    let mut polls = 0;
    while !waiting() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before its online step waited"
        );
        polls += 1;
        assert!(polls < 6000, "the run never reached its online step");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    holder
        .batch_execute("SELECT pg_advisory_unlock(4343)")
        .unwrap();
    drop(holder);
    wait_for_no_airlock_sessions(&db);
    assert_eq!(
        db.scalar("SELECT string_agg(event, ',' ORDER BY seq) FROM airlock.ledger"),
        "apply"
    );
    assert_eq!(
        db.scalar("SELECT (approvals IS NOT NULL)::text FROM airlock.ledger WHERE seq = 1"),
        "true"
    );

    let o = airlock(
        d,
        &[
            "--json",
            "reissue",
            "b.tar.gz",
            "--trust",
            &trust,
            "--db",
            &db.conn(),
            "--out",
            "receipts",
            "--sign-receipt",
            "op.key",
        ],
    );
    expect_code(&o, 0);
    let doc = json(&o);
    let reissued = doc["reissued"].as_array().unwrap();
    assert_eq!(reissued.len(), 1, "{doc:#}");
    assert_eq!(reissued[0]["tiers"], serde_json::json!(["schema", "seed"]));
    assert_eq!(reissued[0]["remaining_tiers"], serde_json::json!(["index"]));
    let file = d.join(reissued[0]["receipt_file"].as_str().unwrap());
    let receipt: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    // It carries the approvals the ledger row records, verified again, and says so.
    let rat = &receipt["gates"]["ratification"];
    assert_eq!(rat["met"], true, "{receipt:#}");
    assert_eq!(rat["counted"], 2, "{receipt:#}");
    assert!(receipt["reissued"]["from_ledger"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s.as_str().unwrap().contains("approvals")));
    assert!(receipt["reissued"]["not_recorded"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s.as_str().unwrap().contains("probe")));

    // The audit, the ledger vouching: ratified, delivered as a reissue; PASS.
    let (c, doc) = audit(d, &trust, &db, "receipts");
    assert_eq!(c, 0, "{:#?}", verdicts(&doc));
    assert_verdict(&doc, &["ratification", "PASS", "ratified"]);
    assert_verdict(
        &doc,
        &["delivery", "PASS", "reissued after an interrupted run"],
    );
    // A hand-made copy without the approvals still passes on what the ledger row
    // records (a receipt reissued before they were carried), and says where they came
    // from; never without the ledger.
    let mut bare = receipt.clone();
    bare.as_object_mut().unwrap().remove("gates");
    std::fs::create_dir_all(d.join("bare")).unwrap();
    std::fs::write(
        d.join("bare/r.receipt.json"),
        serde_json::to_string_pretty(&bare).unwrap(),
    )
    .unwrap();
    let o = airlock(
        d,
        &[
            "--json",
            "audit",
            "b.tar.gz",
            "--trust",
            &trust,
            "--receipt",
            "bare",
            "--db",
            &db.conn(),
        ],
    );
    assert_verdict(
        &json(&o),
        &["ratification", "PASS", "the ledger row records"],
    );

    // status and the dossier say the receipt was reissued.
    let o = airlock(d, &["status", "--db", &db.conn()]);
    expect_code(&o, 0);
    assert!(stdout(&o).contains("reissued"), "{}", stdout(&o));
    let o = airlock(
        d,
        &[
            "dossier",
            "b.tar.gz",
            "--trust",
            &trust,
            "--receipt",
            "receipts",
            "--db",
            &db.conn(),
            "--out",
            "d.html",
        ],
    );
    expect_code(&o, 0);
    let page = std::fs::read_to_string(d.join("d.html")).unwrap();
    assert!(page.contains("reissued"), "the dossier marks the reissue");
}
