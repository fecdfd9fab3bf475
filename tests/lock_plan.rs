//! `plan`'s lock plan (issue 24): every tier statement's locks on existing relations,
//! the mode, the size now, whole-table work under a write-blocking lock with the safer
//! form, and the locks a single-transaction release holds to COMMIT. Information,
//! never a refusal; plan still changes nothing.

mod util;
use util::*;

const TIER1: &str = "ALTER TABLE shop.big ADD COLUMN note text;\n\
CREATE INDEX big_id ON shop.big (id);\n\
ALTER TABLE shop.big ADD CONSTRAINT pos CHECK (id > 0);\n\
CREATE TABLE shop.fresh (i int);\n\
CREATE INDEX fresh_i ON shop.fresh (i);\n";

fn target(tag: &str) -> TestDb {
    let db = TestDb::new(tag);
    db.exec(
        "CREATE SCHEMA shop; CREATE TABLE shop.big (id int); \
         INSERT INTO shop.big SELECT generate_series(1, 5000); ANALYZE shop.big;",
    );
    db
}

fn plan_json(d: &std::path::Path, db: &TestDb, bundle: &str) -> serde_json::Value {
    let o = run_json(d, "rm.pub", &db.conn(), &["plan", bundle]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    json(&o)
}

#[test]
fn plan_names_each_lock_its_size_the_heavy_ones_and_what_is_held_to_commit() {
    let t = keyed_dir();
    let d = t.path();
    let db = target("lockplan");
    let tiers = [
        ("schema", TIER1, false),
        ("data", "UPDATE shop.big SET note = 'x';\n", false),
    ];
    let b = mini_bundle(
        d,
        &db.name,
        "b.tar.gz",
        "SELECT true AS ready",
        &tiers,
        "DROP TABLE shop.fresh;\n",
    );
    let v = plan_json(d, &db, &b);
    let locks = v["locks"]["locks"].as_array().expect("locks");
    let at = |line: u64, rel: &str| {
        locks
            .iter()
            .find(|l| l["line"] == line && l["relation"] == rel)
            .unwrap_or_else(|| panic!("no lock at line {line} on {rel}: {locks:#?}"))
    };
    // ADD COLUMN without a default: ACCESS EXCLUSIVE, no whole-table work, but held to
    // COMMIT behind everything that follows (single transaction).
    let add = at(1, "shop.big");
    assert_eq!(add["mode"], "ACCESS_EXCLUSIVE");
    assert!(add["work"].is_null(), "{add:#}");
    assert_eq!(add["held_to_commit"], true);
    assert!(add["size"]["rows"].as_i64().unwrap() >= 5000, "{add:#}");
    assert!(add["size"]["bytes"].as_i64().unwrap() > 0, "{add:#}");
    // A plain CREATE INDEX on a table with rows: SHARE, an index build, the safer form.
    let idx = at(2, "shop.big");
    assert_eq!(idx["mode"], "SHARE");
    assert_eq!(idx["work"], "index-build");
    assert!(
        idx["safer"].as_str().unwrap().contains("CONCURRENTLY"),
        "{idx:#}"
    );
    // ADD CONSTRAINT CHECK without NOT VALID: a scan under ACCESS EXCLUSIVE.
    let chk = at(3, "shop.big");
    assert_eq!(chk["work"], "scan");
    assert!(
        chk["safer"].as_str().unwrap().contains("NOT VALID"),
        "{chk:#}"
    );
    // A relation the release creates has no size (it does not exist yet).
    let fresh = at(5, "shop.fresh");
    assert!(fresh["size"].is_null(), "{fresh:#}");
    // DML is listed only when it writes every row (this UPDATE has no WHERE).
    assert!(
        locks
            .iter()
            .all(|l| l["tier"] == "schema" || l["work"] == "every-row"),
        "{locks:#?}"
    );

    let o = airlock(d, &["plan", &b, "--trust", "rm.pub", "--db", &db.conn()]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("locks (read from the tiers' SQL"), "{out}");
    assert!(
        out.contains(
            "! CREATE INDEX at sql/tier1.sql:2 builds an index over the whole table shop.big"
        ),
        "{out}"
    );
    assert!(out.contains("is held until the release commits"), "{out}");
    // Plan changed nothing.
    assert_eq!(
        db.scalar("SELECT count(*)::text FROM pg_indexes WHERE schemaname = 'shop'"),
        "0"
    );
    assert_eq!(
        db.scalar("SELECT count(*)::text FROM information_schema.columns WHERE table_name = 'big'"),
        "1"
    );
}

#[test]
fn per_tier_transactions_hold_nothing_to_the_release_commit() {
    let t = keyed_dir();
    let d = t.path();
    let db = target("lockplan_pt");
    let src = MiniSource::new(
        &d.join("pt"),
        &db.name,
        "SELECT true AS ready",
        &[("schema", TIER1, false)],
        "DROP TABLE shop.fresh;\n",
    );
    let toml = src.dir.join("bundle.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(
        &toml,
        text.replace(
            "sequence = 1\n",
            "sequence = 1\ntransaction = \"per-tier\"\n",
        ),
    )
    .unwrap();
    pack(d, &src.dir, "rm.key", "pt.tar.gz");
    let v = plan_json(d, &db, "pt.tar.gz");
    let locks = v["locks"]["locks"].as_array().expect("locks");
    assert!(!locks.is_empty());
    assert!(
        locks.iter().all(|l| l["held_to_commit"] == false),
        "{locks:#?}"
    );
}

#[test]
fn plan_flags_every_whole_table_form_with_its_safer_form_and_not_the_deferred_one() {
    let t = keyed_dir();
    let d = t.path();
    let db = target("lockplan_forms");
    db.exec(
        "ALTER TABLE shop.big ADD COLUMN c int, ADD COLUMN n int DEFAULT 1; \
         CREATE INDEX big_n ON shop.big (n); ANALYZE shop.big;",
    );
    let forms = "ALTER TABLE shop.big ALTER COLUMN c TYPE bigint;\n\
ALTER TABLE shop.big ADD COLUMN at timestamptz DEFAULT clock_timestamp();\n\
ALTER TABLE shop.big ALTER COLUMN n SET NOT NULL;\n\
ALTER TABLE shop.big ADD CONSTRAINT pos CHECK (id > 0);\n\
CREATE INDEX big_c ON shop.big (c);\n\
CLUSTER shop.big USING big_n;\n\
ALTER TABLE shop.big ADD CONSTRAINT pos2 CHECK (id > 0) NOT VALID;\n";
    let b = mini_bundle(
        d,
        &db.name,
        "b.tar.gz",
        "SELECT true AS ready",
        &[("schema", forms, false)],
        "SELECT 1;\n",
    );
    let v = plan_json(d, &db, &b);
    let locks = v["locks"]["locks"].as_array().expect("locks");
    let on_line = |line: u64| {
        locks
            .iter()
            .find(|l| l["line"] == line && l["relation"] == "shop.big")
            .unwrap_or_else(|| panic!("no lock at line {line}: {locks:#?}"))
    };
    for (line, mode, work, safer) in [
        (1, "ACCESS_EXCLUSIVE", "rewrite", "column"),
        (2, "ACCESS_EXCLUSIVE", "rewrite", "default"),
        (3, "ACCESS_EXCLUSIVE", "scan", "NOT VALID"),
        (4, "ACCESS_EXCLUSIVE", "scan", "NOT VALID"),
        (5, "SHARE", "index-build", "CONCURRENTLY"),
        (6, "ACCESS_EXCLUSIVE", "rewrite", ""),
    ] {
        let l = on_line(line);
        assert_eq!(l["mode"], mode, "line {line}: {l:#}");
        assert_eq!(l["work"], work, "line {line}: {l:#}");
        if !safer.is_empty() {
            let hint = l["safer"].as_str().unwrap_or_default();
            assert!(hint.contains(safer), "line {line}: {l:#}");
        }
    }
    // ADD CONSTRAINT … NOT VALID takes its lock without a scan: not flagged.
    assert!(on_line(7)["work"].is_null(), "{:#}", on_line(7));
    // The human plan says the same, each flagged statement with its line.
    let o = airlock(d, &["plan", &b, "--trust", "rm.pub", "--db", &db.conn()]);
    let text = stdout(&o);
    for line in 1..=6 {
        assert!(text.contains(&format!("tier1.sql:{line}")), "{text}");
    }
}

/// Issue 48 finding 5: an online tier ends the single transaction before it, so an
/// ACCESS EXCLUSIVE lock of the tier before is let go when that tier commits, not
/// "held until the release commits"; the table shows the whole-table work its JSON knows.
#[test]
fn an_online_tier_ends_what_a_lock_before_it_is_held_for() {
    let t = keyed_dir();
    let d = t.path();
    let db = target("lockplan_on");
    let src = MiniSource::new(
        &d.join("on"),
        &db.name,
        "SELECT true AS ready",
        &[
            (
                "schema",
                "ALTER TABLE shop.big ADD COLUMN note text;\nALTER TABLE shop.big ALTER COLUMN id TYPE bigint;\n",
                false,
            ),
            (
                "indexes",
                "CREATE INDEX CONCURRENTLY IF NOT EXISTS big_id ON shop.big (id);\n",
                false,
            ),
            ("later", "ALTER TABLE shop.big ADD COLUMN more text;\nCREATE TABLE shop.x (i int);\nCREATE INDEX x_i ON shop.x (i);\n", false),
        ],
        "DROP TABLE shop.x;\n",
    );
    let toml = src.dir.join("bundle.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(
        &toml,
        text.replace(
            "name = \"indexes\"\n",
            "name = \"indexes\"\nonline = true\n",
        ),
    )
    .unwrap();
    pack(d, &src.dir, "rm.key", "on.tar.gz");
    let v = plan_json(d, &db, "on.tar.gz");
    let locks = v["locks"]["locks"].as_array().expect("locks");
    let at = |tier: &str, line: u64| {
        locks
            .iter()
            .find(|l| l["tier"] == tier && l["line"] == line)
            .unwrap_or_else(|| panic!("no lock at {tier}:{line}: {locks:#?}"))
    };
    // Line 1 is held until tier 1 commits (line 2 follows it there); line 2 is the
    // last lock of that transaction; the online tier's lock is its own statement's.
    assert_eq!(at("schema", 1)["held_to_commit"], true);
    assert_eq!(at("schema", 2)["held_to_commit"], false);
    assert_eq!(at("indexes", 1)["held_to_commit"], false);
    assert_eq!(at("later", 1)["held_to_commit"], true);
    let o = airlock(
        d,
        &["plan", "on.tar.gz", "--trust", "rm.pub", "--db", &db.conn()],
    );
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("is held until the transaction commits before online tier indexes"),
        "{out}"
    );
    assert!(out.contains("is held until the release commits"), "{out}");
    // The table's row for the type change names its rewrite.
    assert!(
        out.lines().any(|l| !l.starts_with('!')
            && l.contains("sql/tier1.sql:2")
            && l.split_whitespace().any(|w| w == "rewrite")),
        "{out}"
    );
}

/// Issue 50: the lock plan's size question used to wait, with no bound, behind a table
/// another session holds ACCESS EXCLUSIVE, so `plan` hung. Now it is bounded by
/// `--predict-timeout`, and what could not be read in time is a warning naming the
/// holder; the plan still ends with its verdict, and changes nothing.
#[test]
fn a_table_another_session_locks_is_a_warning_not_a_hang() {
    let t = keyed_dir();
    let d = t.path();
    let db = target("lockplan_held");
    let b = mini_bundle(
        d,
        &db.name,
        "b.tar.gz",
        "SELECT true AS ready",
        &[(
            "schema",
            "ALTER TABLE shop.big ADD COLUMN note text;\nALTER TABLE shop.big ALTER COLUMN id SET NOT NULL;\n",
            false,
        )],
        "ALTER TABLE shop.big DROP COLUMN note;\n",
    );
    let before = db.dump_without_ledger();
    let mut holder = db.client();
    let mut tx = Some(holder.transaction().unwrap());
    tx.as_mut()
        .unwrap()
        .batch_execute("LOCK TABLE shop.big IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let (send, got) = std::sync::mpsc::channel();
    let (dir, conn, bundle) = (d.to_path_buf(), db.conn(), b.clone());
    std::thread::spawn(move || {
        let args = ["plan", bundle.as_str(), "--predict-timeout", "300ms"];
        let _ = send.send(run_json(&dir, "rm.pub", &conn, &args));
    });
    // A plan that waits on the lock ends when it is let go (after 60 s at most); the
    // assertions below then fail, saying it waited.
    let (o, waited) = match got.recv_timeout(std::time::Duration::from_secs(60)) {
        Ok(o) => (o, false),
        Err(_) => {
            tx.take().unwrap().rollback().unwrap();
            (got.recv().unwrap(), true)
        }
    };
    assert!(!waited, "plan waited on the lock until it was let go");
    let v = json(&o);
    assert_eq!(code(&o), 0, "{v:#}");
    let warning = v["locks"]["warning"].as_str().unwrap_or_default();
    assert!(
        warning.contains("shop.big") && warning.contains("another session"),
        "{v:#}"
    );
    // The locks are still listed, sized from the catalog.
    let locks = v["locks"]["locks"].as_array().expect("locks");
    assert!(
        !locks.is_empty() && locks.iter().all(|l| !l["size"].is_null()),
        "{locks:#?}"
    );
    let predicted = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "predicted-failures")
        .expect("predicted-failures row");
    assert_eq!(predicted["verdict"], "WARN", "{predicted:#}");
    let human = stdout(&airlock(
        d,
        &[
            "plan",
            &b,
            "--predict-timeout",
            "300ms",
            "--trust",
            "rm.pub",
            "--db",
            &db.conn(),
        ],
    ));
    assert!(human.contains("warning: locks:"), "{human}");
    drop(tx);
    assert_eq!(
        db.dump_without_ledger(),
        before,
        "plan changed the database"
    );
}

/// The release day (issue 68, finding 1): tier 1 adds a column (ACCESS EXCLUSIVE, no
/// other locking statement after it), tier 2 backfills it with an UPDATE. In one
/// transaction the ALTER's lock is held through the backfill: plan says so, though the
/// UPDATE itself takes no lock the lock plan lists.
#[test]
fn a_lock_is_held_through_a_later_tiers_backfill() {
    let t = keyed_dir();
    let d = t.path();
    let db = target("lockplan_backfill");
    let tiers = [
        (
            "schema",
            "ALTER TABLE shop.big ADD COLUMN note text;\n",
            false,
        ),
        (
            "backfill",
            "UPDATE shop.big SET note = 'n' || id WHERE note IS NULL;\n",
            false,
        ),
    ];
    let b = mini_bundle(
        d,
        &db.name,
        "b.tar.gz",
        "SELECT true AS ready",
        &tiers,
        "SELECT 1;\n",
    );
    let v = plan_json(d, &db, &b);
    let locks = v["locks"]["locks"].as_array().expect("locks");
    let add = locks
        .iter()
        .find(|l| l["relation"] == "shop.big" && l["tier"] == "schema")
        .unwrap_or_else(|| panic!("{locks:#?}"));
    assert_eq!(add["mode"], "ACCESS_EXCLUSIVE");
    assert_eq!(add["held_to_commit"], true, "{add:#}");
    let o = airlock(d, &["plan", &b, "--trust", "rm.pub", "--db", &db.conn()]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("is held until the release commits"),
        "{}",
        stdout(&o)
    );
    // The dossier says it in one plain sentence per lock, with and without a database.
    for with_db in [false, true] {
        let conn = db.conn();
        let mut args = vec![
            "dossier",
            b.as_str(),
            "--trust",
            "rm.pub",
            "--out",
            "page.html",
            "--force",
        ];
        if with_db {
            args.extend(["--db", conn.as_str()]);
        }
        let o = airlock(d, &args);
        assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
        let html = std::fs::read_to_string(d.join("page.html")).unwrap();
        let plain = "Readers and writers of shop.big";
        let at = html.find(plain).unwrap_or_else(|| panic!("{html}"));
        let sentence = &html[at..at + html[at..].find("</li>").unwrap()];
        assert!(
            sentence.contains("wait from the ALTER TABLE")
                && sentence.contains("(tier schema)")
                && sentence.contains(
                    "until the release commits, after every statement and tier that follows it"
                ),
            "{sentence}"
        );
        assert_eq!(sentence.contains(" rows"), with_db, "{sentence}");
    }
    // The same ALTER alone, last in its transaction, is held by nothing after it.
    let alone = [(
        "schema",
        "ALTER TABLE shop.big ADD COLUMN note text;\n",
        false,
    )];
    let b = mini_bundle(
        d,
        &db.name,
        "a.tar.gz",
        "SELECT true AS ready",
        &alone,
        "SELECT 1;\n",
    );
    let v = plan_json(d, &db, &b);
    let locks = v["locks"]["locks"].as_array().expect("locks");
    assert!(
        locks.iter().all(|l| l["held_to_commit"] == false),
        "{locks:#?}"
    );
}

/// The pattern docs/live-databases.md names, "one UPDATE of every row", is flagged:
/// a backfill of a column the release added (`WHERE col IS NULL`) and an UPDATE with
/// no WHERE write every row, each locked until the transaction commits; plan lists
/// them with the safer form, and the dossier says who waits in plain words. An UPDATE
/// that picks its rows is not listed (found by a new-user walk).
#[test]
fn an_update_of_every_row_is_flagged_with_the_safer_form() {
    let t = keyed_dir();
    let d = t.path();
    let db = target("lockplan_every_row");
    let tiers = [
        (
            "schema",
            "ALTER TABLE shop.big ADD COLUMN note text;\n",
            false,
        ),
        (
            "backfill",
            "UPDATE shop.big SET note = 'n' || id WHERE note IS NULL;\nUPDATE shop.big SET note = upper(note);\nUPDATE shop.big SET note = 'x' WHERE id = 1;\n",
            false,
        ),
    ];
    let b = mini_bundle(
        d,
        &db.name,
        "b.tar.gz",
        "SELECT true AS ready",
        &tiers,
        "SELECT 1;\n",
    );
    let v = plan_json(d, &db, &b);
    let every: Vec<_> = v["locks"]["locks"]
        .as_array()
        .expect("locks")
        .iter()
        .filter(|l| l["work"] == "every-row")
        .collect();
    let lines: Vec<_> = every.iter().map(|l| l["line"].as_u64().unwrap()).collect();
    assert_eq!(lines, [1, 2], "{every:#?}");
    assert!(every.iter().all(|l| l["mode"] == "ROW_EXCLUSIVE"
        && l["relation"] == "shop.big"
        && l["safer"].as_str().unwrap().contains("batches")));
    let o = airlock(d, &["plan", &b, "--trust", "rm.pub", "--db", &db.conn()]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let flagged = stdout(&o)
        .lines()
        .filter(|l| {
            l.starts_with("! UPDATE (every row)") && l.contains("writes every row of shop.big")
        })
        .count();
    assert_eq!(flagged, 2, "{}", stdout(&o));
    let o = airlock(
        d,
        &[
            "dossier",
            &b,
            "--trust",
            "rm.pub",
            "--out",
            "page.html",
            "--force",
        ],
    );
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let html = std::fs::read_to_string(d.join("page.html")).unwrap();
    assert!(
        html.contains("writes every row of shop.big: sessions that update or delete its rows wait"),
        "{html}"
    );
}

/// A type change PostgreSQL makes without rewriting the table is not flagged as a
/// rewrite (issue 76, item 10): `varchar(100)` to `varchar(255)` or to `text`, `text`
/// to unbounded `varchar`, `numeric(10,2)` to `numeric(12,2)`, `timestamp(3)` to
/// `timestamp(6)` keep every row as it is (binary-coercible, a length check that
/// cannot fail); `varchar(255)` to `varchar(50)`, `int` to `bigint`, `numeric(10,2)`
/// to `numeric(12,4)` and a change of a column the release retyped already still
/// rewrite. Read from the catalog: a column of another type, or not there, is judged
/// by what is there.
#[test]
fn a_type_change_postgresql_makes_without_a_rewrite_is_not_flagged() {
    let t = keyed_dir();
    let d = t.path();
    let db = target("lockplan_retype");
    db.exec(
        "ALTER TABLE shop.big ADD COLUMN a varchar(100), ADD COLUMN b varchar(2000), \
           ADD COLUMN c text, ADD COLUMN n numeric(10,2), ADD COLUMN s timestamp(3), \
           ADD COLUMN e varchar(255), ADD COLUMN i int, ADD COLUMN m numeric(10,2), \
           ADD COLUMN twice varchar(10); ANALYZE shop.big;",
    );
    let tier = "ALTER TABLE shop.big ALTER COLUMN a TYPE varchar(255);\n\
ALTER TABLE shop.big ALTER COLUMN b TYPE text;\n\
ALTER TABLE shop.big ALTER COLUMN c TYPE varchar;\n\
ALTER TABLE shop.big ALTER COLUMN n TYPE numeric(12,2);\n\
ALTER TABLE shop.big ALTER COLUMN s TYPE timestamp(6);\n\
ALTER TABLE shop.big ALTER COLUMN e TYPE varchar(50);\n\
ALTER TABLE shop.big ALTER COLUMN i TYPE bigint;\n\
ALTER TABLE shop.big ALTER COLUMN m TYPE numeric(12,4);\n\
ALTER TABLE shop.big ALTER COLUMN twice TYPE text USING twice || 'x';\n\
ALTER TABLE shop.big ALTER COLUMN twice TYPE varchar(20);\n";
    let b = mini_bundle(
        d,
        &db.name,
        "b.tar.gz",
        "SELECT true AS ready",
        &[("schema", tier, false)],
        "SELECT 1;\n",
    );
    let v = plan_json(d, &db, &b);
    let locks = v["locks"]["locks"].as_array().expect("locks");
    let work = |line: u64| {
        locks
            .iter()
            .find(|l| l["line"] == line)
            .unwrap_or_else(|| panic!("no lock at line {line}: {locks:#?}"))["work"]
            .clone()
    };
    for line in 1..=5 {
        assert!(
            work(line).is_null(),
            "line {line} rewrites nothing: {locks:#?}"
        );
    }
    for line in 6..=10 {
        assert_eq!(work(line), "rewrite", "line {line}: {locks:#?}");
    }
    let o = airlock(d, &["plan", &b, "--trust", "rm.pub", "--db", &db.conn()]);
    let text = stdout(&o);
    for line in 1..=5 {
        assert!(
            !text.contains(&format!("at sql/tier1.sql:{line} rewrites")),
            "{text}"
        );
    }
    assert!(text.contains("at sql/tier1.sql:6 rewrites"), "{text}");
    assert!(text.contains("no rewrite"), "{text}");
}
