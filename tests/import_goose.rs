//! `airlock import` never imports a history wrong with exit 0 (issue 69): another
//! tool's markers or a Liquibase XML/YAML/JSON changelog are refused, naming the tool
//! and the file, with nothing written; goose is a layout (Up sections as tiers, Down
//! sections newest first as the rollback, `NO TRANSACTION` honoured, Go migrations
//! named); and where the peer tool commits between migrations and the bundle must
//! too (an enum value added then used, a migration the peer runs outside a
//! transaction), the bundle commits there. The histories are written for these tests.

mod util;
use std::path::Path;
use std::process::Command;
use util::*;

/// `airlock import DIR --out OUT --database DB EXTRA…` (human output).
fn import(t: &Path, dir: &Path, out: &Path, db: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "import",
        dir.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--database",
        db,
    ];
    args.extend_from_slice(extra);
    airlock(t, &args)
}

/// Import refuses `dir` (exit 2), naming `tool` and `at`, and writes nothing.
#[track_caller]
fn refused(dir: &Path, extra: &[&str], tool: &str, at: &str) {
    let t = tempdir();
    let before = snapshot(dir);
    let out = t.path().join("src");
    let o = import(t.path(), dir, &out, "x", extra);
    expect_code(&o, 2);
    let err = stderr(&o);
    assert!(err.contains(tool) && err.contains(at), "{tool} {at}: {err}");
    assert!(!out.exists(), "{} was written", out.display());
    assert_eq!(leftovers(t.path()), Vec::<String>::new());
    assert_eq!(snapshot(dir), before);
}

const GOOSE_ONE: &str = "-- +goose Up\nCREATE TABLE widgets (id int PRIMARY KEY);\n\n-- +goose Down\nDROP TABLE widgets;\n";

#[test]
fn another_tools_markers_are_refused_naming_the_tool_and_nothing_is_written() {
    let t = tempdir();
    // goose read as a folder of psql scripts: the Down would run right after the Up.
    let goose = layout(&t.path().join("goose"), &[("00001_widgets.sql", GOOSE_ONE)]);
    refused(
        &goose,
        &["--from", "folder"],
        "goose",
        "00001_widgets.sql:1",
    );
    refused(
        &goose,
        &["--from", "golang-migrate"],
        "",
        "no migrations found",
    );
    // dbmate read as a folder, and goose markers inside a dbmate file.
    let dbmate = layout(
        &t.path().join("dbmate"),
        &[(
            "20240101000000_w.sql",
            "-- migrate:up\nCREATE TABLE w (id int);\n-- migrate:down\nDROP TABLE w;\n",
        )],
    );
    refused(
        &dbmate,
        &["--from", "folder"],
        "dbmate",
        "20240101000000_w.sql:1",
    );
    let mixed = layout(
        &t.path().join("mixed"),
        &[(
            "20240101000000_w.sql",
            "-- migrate:up\nCREATE TABLE w (id int);\n-- +goose Down\nDROP TABLE w;\n",
        )],
    );
    refused(
        &mixed,
        &[],
        "goose",
        "20240101000000_w.sql (line 2 of the up section",
    );
    // sql-migrate: no layout reads it; told from the files, it is refused all the same.
    let sqlmigrate = layout(
        &t.path().join("sqlm"),
        &[(
            "1_init.sql",
            "-- +migrate Up\nCREATE TABLE w (id int);\n-- +migrate Down\nDROP TABLE w;\n",
        )],
    );
    refused(&sqlmigrate, &[], "sql-migrate", "1_init.sql:1");
    // tern's separator, and shmig's sections.
    let tern = layout(
        &t.path().join("tern"),
        &[(
            "001_init.sql",
            "CREATE TABLE w (id int);\n\n---- create above / drop below ----\n\nDROP TABLE w;\n",
        )],
    );
    refused(&tern, &[], "tern", "001_init.sql:3");
    let shmig = layout(
        &t.path().join("shmig"),
        &[(
            "1700000000-init.sql",
            "-- ==== UP ====\nCREATE TABLE w (id int);\n-- ==== DOWN ====\nDROP TABLE w;\n",
        )],
    );
    refused(&shmig, &[], "shmig", "1700000000-init.sql:1");
    // A Liquibase formatted SQL changelog read as plain scripts.
    let lb = layout(
        &t.path().join("lbsql"),
        &[(
            "changelog.sql",
            "--liquibase formatted sql\n--changeset a:1\nCREATE TABLE w (id int);\n",
        )],
    );
    refused(&lb, &["--from", "folder"], "Liquibase", "changelog.sql:1");
}

#[test]
fn a_liquibase_changelog_is_never_read_as_its_sql_fragments() {
    let t = tempdir();
    let fragment = (
        "changes/001-users.sql",
        "CREATE TABLE users (id int PRIMARY KEY);\n",
    );
    let beside = ("002-more.sql", "CREATE TABLE more (id int PRIMARY KEY);\n");
    for (name, text) in [
        ("db.changelog-master.xml", "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<databaseChangeLog xmlns=\"http://www.liquibase.org/xml/ns/dbchangelog\">\n  <include file=\"changes/001-users.sql\" relativeToChangelogFile=\"true\"/>\n  <changeSet id=\"2\" author=\"ann\"><sqlFile path=\"002-more.sql\" relativeToChangelogFile=\"true\"/></changeSet>\n</databaseChangeLog>\n"),
        ("db.changelog-master.yaml", "databaseChangeLog:\n  - changeSet:\n      id: 2\n      author: ann\n      changes:\n        - sqlFile:\n            path: 002-more.sql\n"),
        ("changelog.json", "{ \"databaseChangeLog\": [ { \"changeSet\": { \"id\": \"2\", \"author\": \"ann\" } } ] }\n"),
    ] {
        let dir = layout(&t.path().join(name.replace('.', "-")), &[(name, text), fragment, beside]);
        let line = if name.ends_with(".xml") { 2 } else { 1 };
        let at = format!("{name}:{line}");
        // As a folder: refused every time. Told from the files or named as Liquibase:
        // XML and YAML are read (tests/import_liquibase.rs), JSON is refused.
        refused(&dir, &["--from", "folder"], "Liquibase", &at);
        if name.ends_with(".json") {
            refused(&dir, &[], "Liquibase", &at);
            refused(&dir, &["--from", "liquibase"], "Liquibase", &at);
        }
    }
}

/// A goose history as a Go service keeps it: numbered migrations and, later,
/// timestamped ones (goose orders them by number), a plpgsql function and trigger
/// in StatementBegin/End blocks, a `NO TRANSACTION` concurrent index, an enum value
/// added in one migration and used by the next two, and a Go migration.
const GOOSE_HISTORY: &[(&str, &str)] = &[
    ("00001_create_users.sql", "-- +goose Up\nCREATE TABLE users (\n    id bigserial PRIMARY KEY,\n    email text NOT NULL UNIQUE,\n    created_at timestamptz NOT NULL DEFAULT now()\n);\n\n-- +goose Down\nDROP TABLE users;\n"),
    ("00002_create_orders.sql", "-- +goose Up\n-- +goose StatementBegin\nCREATE TYPE order_status AS ENUM ('pending', 'paid');\n-- +goose StatementEnd\nCREATE TABLE orders (\n    id bigserial PRIMARY KEY,\n    user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,\n    status order_status NOT NULL DEFAULT 'pending',\n    total_cents bigint NOT NULL CHECK (total_cents >= 0)\n);\n\n-- +goose Down\nDROP TABLE orders;\nDROP TYPE order_status;\n"),
    ("00003_orders_updated_at.sql", "-- +goose Up\n-- +goose StatementBegin\nCREATE OR REPLACE FUNCTION set_updated_at() RETURNS trigger\nLANGUAGE plpgsql AS $$\nBEGIN\n    NEW.updated_at := now();\n    RETURN NEW;\nEND;\n$$;\n-- +goose StatementEnd\nALTER TABLE orders ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();\nCREATE TRIGGER orders_updated_at BEFORE UPDATE ON orders\n    FOR EACH ROW EXECUTE FUNCTION set_updated_at();\n\n-- +goose Down\nDROP TRIGGER orders_updated_at ON orders;\nALTER TABLE orders DROP COLUMN updated_at;\nDROP FUNCTION set_updated_at();\n"),
    ("00004_orders_user_idx.sql", "-- +goose NO TRANSACTION\n-- +goose Up\nCREATE INDEX CONCURRENTLY orders_user_id_idx ON orders (user_id);\n\n-- +goose Down\nDROP INDEX IF EXISTS orders_user_id_idx;\n"),
    ("00005_seed_users.sql", "-- +goose Up\nINSERT INTO users (email, created_at) VALUES\n    ('ann@example.com', '2024-01-05 09:00:00+00'),\n    ('bob@example.com', '2024-01-06 10:30:00+00');\nINSERT INTO orders (user_id, status, total_cents, updated_at)\n    SELECT id, 'paid', 1250, '2024-01-07 12:00:00+00' FROM users WHERE email = 'ann@example.com';\n\n-- +goose Down\nDELETE FROM users WHERE email IN ('ann@example.com', 'bob@example.com');\n"),
    ("00006_status_shipped.sql", "-- +goose Up\nALTER TYPE order_status ADD VALUE 'shipped' AFTER 'paid';\n\n-- +goose Down\n-- an enum value cannot be dropped: the type goes with 00002's Down\n"),
    ("00007_shipped_at.sql", "-- +goose Up\nALTER TABLE orders ADD COLUMN shipped_at timestamptz;\nCREATE INDEX orders_shipped_idx ON orders (shipped_at) WHERE status = 'shipped';\n\n-- +goose Down\nDROP INDEX orders_shipped_idx;\nALTER TABLE orders DROP COLUMN shipped_at;\n"),
    ("00008_audit_log.sql", "-- +goose Up\nCREATE TABLE audit_log (\n    id bigserial PRIMARY KEY,\n    at timestamptz NOT NULL DEFAULT now(),\n    order_id bigint NOT NULL,\n    change text NOT NULL\n);\n\n-- +goose StatementBegin\nCREATE FUNCTION audit_orders() RETURNS trigger\nLANGUAGE plpgsql AS $$\nBEGIN\n    IF TG_OP = 'INSERT' THEN\n        INSERT INTO audit_log (order_id, change) VALUES (NEW.id, 'created');\n    ELSIF NEW.status IS DISTINCT FROM OLD.status THEN\n        INSERT INTO audit_log (order_id, change) VALUES (NEW.id, 'status ' || NEW.status::text);\n    END IF;\n    RETURN NEW;\nEND;\n$$;\n-- +goose StatementEnd\n\nCREATE TRIGGER orders_audit AFTER INSERT OR UPDATE ON orders\n    FOR EACH ROW EXECUTE FUNCTION audit_orders();\n\n-- +goose Down\nDROP TRIGGER orders_audit ON orders;\nDROP FUNCTION audit_orders();\nDROP TABLE audit_log;\n"),
    ("00009_backfill_emails.go", "package migrations\n\nimport (\n\t\"context\"\n\t\"database/sql\"\n\n\t\"github.com/pressly/goose/v3\"\n)\n\nfunc init() {\n\tgoose.AddMigrationContext(upBackfill, downBackfill)\n}\n\n// Lower-cases emails (there are none in upper case in this history).\nfunc upBackfill(ctx context.Context, tx *sql.Tx) error {\n\t_, err := tx.ExecContext(ctx, \"UPDATE users SET email = lower(email) WHERE email <> lower(email)\")\n\treturn err\n}\n\nfunc downBackfill(ctx context.Context, tx *sql.Tx) error { return nil }\n"),
    ("00010_paid_orders_view.sql", "-- +goose Up\nCREATE VIEW paid_orders AS\n    SELECT o.id, u.email, o.total_cents\n    FROM orders o JOIN users u ON u.id = o.user_id\n    WHERE o.status IN ('paid', 'shipped');\n\n-- +goose Down\nDROP VIEW paid_orders;\n"),
    ("00011_orders_status_idx.sql", "-- +goose NO TRANSACTION\n-- +goose Up\nCREATE INDEX CONCURRENTLY IF NOT EXISTS orders_status_idx ON orders (status);\n\n-- +goose Down\nDROP INDEX IF EXISTS orders_status_idx;\n"),
    ("20240301120000_users_name.sql", "-- +goose Up\nALTER TABLE users ADD COLUMN name text;\nCOMMENT ON COLUMN users.name IS 'display name';\n\n-- +goose Down\nALTER TABLE users DROP COLUMN name;\n"),
    ("main.go", "package migrations\n"),
];

/// The lines of `text` between the `-- +goose WHICH` line and the next section's.
fn section(text: &str, which: &str) -> String {
    let mut on = false;
    let mut out = String::new();
    for line in text.lines() {
        if let Some(w) = line.strip_prefix("-- +goose ") {
            if w == "Up" || w == "Down" {
                on = w == which;
                continue;
            }
        }
        if on {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// What goose does with `which` (Up: oldest first; Down: newest first): each SQL
/// migration's section through its own psql session, in one transaction (`-1`)
/// unless the file says `NO TRANSACTION`.
fn goose_by_psql(db: &TestDb, dir: &Path, which: &str) {
    let mut sql: Vec<&(&str, &str)> = GOOSE_HISTORY
        .iter()
        .filter(|(n, _)| n.ends_with(".sql"))
        .collect();
    sql.sort_by_key(|(n, _)| n.split('_').next().unwrap().parse::<u64>().unwrap());
    if which == "Down" {
        sql.reverse();
    }
    for (name, text) in sql {
        let f = dir.join(format!("{name}.{which}"));
        write(&f, &section(text, which));
        let mut c = Command::new("psql");
        c.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", &db.name]);
        if !text.contains("-- +goose NO TRANSACTION") {
            c.arg("-1");
        }
        let o = c.arg("-f").arg(&f).output().expect("psql");
        assert!(
            o.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

#[test]
fn a_goose_history_imports_applies_as_goose_runs_it_and_rolls_back_with_its_downs() {
    let t = tempdir();
    let dir = t.path();
    let migrations = layout(&dir.join("migrations"), GOOSE_HISTORY);
    let target = TestDb::new("goose");
    let peer = TestDb::new("goosepeer");
    let entry = data_fingerprint(dir, &target);
    let out = dir.join("src");
    let o = import(dir, &migrations, &out, &target.name, &[]);
    let human = stdout(&o);
    expect_code(&o, 0);
    assert!(human.contains("from a goose layout"), "{human}");
    let o = airlock(
        dir,
        &[
            "--json",
            "import",
            migrations.to_str().unwrap(),
            "--out",
            dir.join("src2").to_str().unwrap(),
            "--database",
            &target.name,
        ],
    );
    expect_code(&o, 0);
    let report = json(&o);
    assert_eq!(report["layout"], "goose");
    assert_eq!(report["problems"], serde_json::json!([]), "{report}");
    assert_eq!(report["warnings"], serde_json::json!([]), "{report}");
    let tiers: Vec<&str> = report["tiers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(tiers.len(), 11, "{tiers:?}");
    assert_eq!(tiers[0], "00001_create_users");
    assert_eq!(tiers[10], "20240301120000_users_name");
    // The Go migration is named, with what it means; main.go is no migration.
    let left = report["left_behind"].to_string();
    assert!(
        left.contains("00009_backfill_emails.go") && left.contains("NOT in the bundle"),
        "{left}"
    );
    assert!(
        left.contains("main.go") && left.contains("not a goose migration file"),
        "{left}"
    );
    // 00006 adds 'shipped', 00007 uses it: the bundle commits between them.
    let splits = report["splits"].to_string();
    assert!(
        splits.contains("00007_shipped_at") && splits.contains("'shipped'"),
        "{splits}"
    );
    assert!(human.contains("transaction split: "), "{human}");
    let toml = std::fs::read_to_string(out.join("bundle.toml")).unwrap();
    assert!(toml.contains("transaction = \"per-tier\""), "{toml}");
    // The NO TRANSACTION migrations run online, as goose runs them.
    assert!(toml.contains("name = \"00004_orders_user_idx\"\nfiles = [\"sql/tiers/004_00004_orders_user_idx.sql\"]\nonline = true"), "{toml}");
    assert!(toml.contains("name = \"00011_orders_status_idx\"\nfiles = [\"sql/tiers/010_00011_orders_status_idx.sql\"]\nonline = true"), "{toml}");
    // The StatementBegin block came over as it was written.
    let t3 =
        std::fs::read_to_string(out.join("sql/tiers/003_00003_orders_updated_at.sql")).unwrap();
    assert_eq!(t3, section(GOOSE_HISTORY[2].1, "Up"));

    keygen(dir, "rm");
    pack(dir, &out, "rm.key", "b.tar.gz");
    let run = |cmd: &str| {
        airlock(
            dir,
            &[cmd, "b.tar.gz", "--trust", "rm.pub", "--db", &target.conn()],
        )
    };
    expect_code(&run("apply"), 0);
    goose_by_psql(&peer, dir, "Up");
    assert_eq!(target.dump_without_ledger(), peer.dump(), "goose up");
    let applied = data_fingerprint(dir, &peer);
    assert_eq!(data_fingerprint(dir, &target), applied, "goose up");
    assert_ne!(applied, entry);
    // The Downs, newest first, back to where it started.
    expect_code(&run("rollback"), 0);
    goose_by_psql(&peer, dir, "Down");
    assert_eq!(data_fingerprint(dir, &peer), entry, "goose down");
    assert_eq!(data_fingerprint(dir, &target), entry, "airlock rollback");
}

#[test]
fn goose_versions_are_ordered_as_numbers_and_a_duplicate_is_refused() {
    let t = tempdir();
    let dir = layout(
        &t.path().join("m"),
        &[
            ("99_a.sql", "-- +goose Up\nCREATE TABLE a (id int);\n"),
            (
                "100_b.sql",
                "-- +goose Up\nALTER TABLE a ADD COLUMN b int;\n",
            ),
        ],
    );
    let o = airlock(
        t.path(),
        &[
            "--json",
            "import",
            dir.to_str().unwrap(),
            "--out",
            t.path().join("src").to_str().unwrap(),
            "--database",
            "x",
        ],
    );
    expect_code(&o, 0);
    assert_eq!(json(&o)["tiers"], serde_json::json!(["99_a", "100_b"]));
    write(&dir.join("099_c.sql"), "-- +goose Up\nSELECT 1;\n");
    refused(&dir, &[], "second migration with version 99", "99_a.sql");
}

/// An enum value added by one migration and used by the next, as golang-migrate and
/// dbmate write them: the peer commits in between; before issue 69 the bundle ran both
/// in one transaction, import said OK and the apply failed.
#[test]
fn an_enum_value_added_then_used_by_a_later_migration_splits_the_transaction() {
    let t = tempdir();
    let dir = t.path();
    let migrations = layout(
        &dir.join("m"),
        &[
            (
                "1_mood.up.sql",
                "CREATE TYPE mood AS ENUM ('sad');\nCREATE TABLE feelings (m mood NOT NULL);\n",
            ),
            ("2_happy.up.sql", "ALTER TYPE mood ADD VALUE 'happy';\n"),
            ("3_use.up.sql", "INSERT INTO feelings VALUES ('happy');\n"),
        ],
    );
    let target = TestDb::new("enumsplit");
    let peer = TestDb::new("enumsplitpeer");
    let out = dir.join("src");
    let o = airlock(
        dir,
        &[
            "--json",
            "import",
            migrations.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--database",
            &target.name,
        ],
    );
    expect_code(&o, 0);
    let report = json(&o);
    assert!(
        report["splits"].to_string().contains("tier `3_use`"),
        "{report}"
    );
    // lint has nothing left to warn about: the use is in a transaction of its own.
    assert_eq!(report["warnings"], serde_json::json!([]), "{report}");
    keygen(dir, "rm");
    // What import wrote before: the same tiers in one transaction. lint only warns,
    // and the apply fails on the use, changing nothing.
    let single = dir.join("single");
    copy_dir(&out, &single);
    let toml = std::fs::read_to_string(single.join("bundle.toml")).unwrap();
    assert!(toml.contains("transaction = \"per-tier\"\n"), "{toml}");
    write(
        &single.join("bundle.toml"),
        &toml.replace("transaction = \"per-tier\"\n", ""),
    );
    expect_code(&airlock(dir, &["lint", single.to_str().unwrap()]), 0);
    pack(dir, &single, "rm.key", "single.tar.gz");
    let before = target.dump_without_ledger();
    let o = airlock(
        dir,
        &[
            "apply",
            "single.tar.gz",
            "--trust",
            "rm.pub",
            "--db",
            &target.conn(),
        ],
    );
    assert_ne!(code(&o), 0);
    assert!(
        stderr(&o).contains("unsafe use of new value"),
        "{}",
        stderr(&o)
    );
    assert_eq!(target.dump_without_ledger(), before);
    // As import writes it now, the apply works, as the peer's does.
    pack(dir, &out, "rm.key", "b.tar.gz");
    expect_code(
        &airlock(
            dir,
            &[
                "apply",
                "b.tar.gz",
                "--trust",
                "rm.pub",
                "--db",
                &target.conn(),
            ],
        ),
        0,
    );
    for f in ["1_mood.up.sql", "2_happy.up.sql", "3_use.up.sql"] {
        let o = Command::new("psql")
            .args([
                "-X",
                "-q",
                "-1",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                &peer.name,
                "-f",
            ])
            .arg(migrations.join(f))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    assert_eq!(data_fingerprint(dir, &target), data_fingerprint(dir, &peer));
}

/// dbmate's `transaction:false` is honoured even when nothing in the migration needs
/// it: the migration commits on its own (an online tier when it fits one).
#[test]
fn dbmate_transaction_false_commits_on_its_own_whatever_it_holds() {
    let t = tempdir();
    let dir = t.path();
    let migrations = layout(
        &dir.join("db"),
        &[
            ("20240101000000_mood.sql", "-- migrate:up\nCREATE TYPE mood AS ENUM ('sad');\nCREATE TABLE feelings (m mood NOT NULL);\n-- migrate:down\nDROP TABLE feelings;\nDROP TYPE mood;\n"),
            ("20240102000000_happy.sql", "-- migrate:up transaction:false\nALTER TYPE mood ADD VALUE IF NOT EXISTS 'happy';\n-- migrate:down\n"),
            ("20240103000000_use.sql", "-- migrate:up\nINSERT INTO feelings VALUES ('happy');\n-- migrate:down\nDELETE FROM feelings;\n"),
        ],
    );
    let target = TestDb::new("dbmatetx");
    let out = dir.join("src");
    let o = airlock(
        dir,
        &[
            "--json",
            "import",
            migrations.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--database",
            &target.name,
        ],
    );
    expect_code(&o, 0);
    let report = json(&o);
    assert_eq!(report["splits"], serde_json::json!([]), "{report}");
    let toml = std::fs::read_to_string(out.join("bundle.toml")).unwrap();
    assert!(toml.contains("name = \"20240102000000_happy\"\nfiles = [\"sql/tiers/002_20240102000000_happy.sql\"]\nonline = true"), "{toml}");
    keygen(dir, "rm");
    pack(dir, &out, "rm.key", "b.tar.gz");
    expect_code(
        &airlock(
            dir,
            &[
                "apply",
                "b.tar.gz",
                "--trust",
                "rm.pub",
                "--db",
                &target.conn(),
            ],
        ),
        0,
    );
    assert_eq!(
        target.scalar("SELECT count(*) FROM feelings WHERE m = 'happy'"),
        "1"
    );
}

/// goose's `NO TRANSACTION` on a migration no online tier can hold (a value added
/// without `IF NOT EXISTS` is not safe to run again): it still commits on its own,
/// the bundle committing each tier apart, and the report says why.
#[test]
fn goose_no_transaction_that_cannot_be_online_makes_each_tier_commit_on_its_own() {
    let t = tempdir();
    let dir = t.path();
    let migrations = layout(
        &dir.join("m"),
        &[
            ("00001_mood.sql", "-- +goose Up\nCREATE TYPE mood AS ENUM ('sad');\nCREATE TABLE feelings (m mood NOT NULL);\n"),
            ("00002_happy.sql", "-- +goose NO TRANSACTION\n-- +goose Up\nALTER TYPE mood ADD VALUE 'happy';\nCREATE TABLE happy_days (d date);\n"),
        ],
    );
    let target = TestDb::new("goosenotx");
    let out = dir.join("src");
    let o = airlock(
        dir,
        &[
            "--json",
            "import",
            migrations.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--database",
            &target.name,
        ],
    );
    expect_code(&o, 0);
    let report = json(&o);
    let splits = report["splits"].to_string();
    assert!(
        splits.contains("`00002_happy` is run outside a transaction")
            && splits.contains("cannot be an online tier"),
        "{splits}"
    );
    let toml = std::fs::read_to_string(out.join("bundle.toml")).unwrap();
    assert!(
        toml.contains("transaction = \"per-tier\"") && !toml.contains("online = true"),
        "{toml}"
    );
    keygen(dir, "rm");
    pack(dir, &out, "rm.key", "b.tar.gz");
    expect_code(
        &airlock(
            dir,
            &[
                "apply",
                "b.tar.gz",
                "--trust",
                "rm.pub",
                "--db",
                &target.conn(),
            ],
        ),
        0,
    );
    assert_eq!(
        target.scalar("SELECT count(*) FROM pg_enum WHERE enumlabel = 'happy'"),
        "1"
    );
}
