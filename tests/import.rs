//! `airlock import` (issue 25): a migration history as teams have it — golang-migrate
//! (pop/kratos flavour, with per-dialect files), dbmate, Flyway, Sqitch, a folder of
//! psql scripts — becomes a bundle source that lints, applies as the peer applies its
//! up scripts in order, and rolls back as its down scripts do. The layouts are small
//! faithful excerpts written for these tests, not copies of any project's files.

mod util;
use std::path::{Path, PathBuf};
use std::process::Command;
use util::*;

/// What the peer does: each file through `psql` in order, stopping at the first error.
fn psql_files(db: &TestDb, dir: &Path, files: &[&str]) {
    for f in files {
        let o = Command::new("psql")
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", &db.name, "-f"])
            .arg(dir.join(f))
            .output()
            .expect("psql");
        assert!(
            o.status.success(),
            "{f}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

/// Import `migrations`, check the report, pack, apply and roll back against what the
/// peer's `ups` and `downs` (files of `migrations`, in the order the peer runs them) do.
fn import_apply_rollback(
    tag: &str,
    migrations: &Path,
    ups: &[&str],
    downs: &[&str],
) -> serde_json::Value {
    let t = tempdir();
    let dir = t.path();
    let target = TestDb::new(tag);
    let peer = TestDb::new(&format!("{tag}peer"));
    let empty = target.dump_without_ledger();
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
            "--bundle-version",
            "2024.1",
            // The peer here is psql, which keeps no Liquibase history (for the other
            // layouts the flag changes nothing).
            "--no-peer-history",
        ],
    );
    let report = json(&o);
    // A rollback that leaves a down script out is not OK (exit 2, each named in
    // `rollback_left_out`); the callers check which.
    let left_out = report["rollback_left_out"].as_array().unwrap();
    expect_code(&o, if left_out.is_empty() { 0 } else { 2 });
    assert_eq!(report["problems"], serde_json::json!([]), "{report}");
    expect_code(&airlock(dir, &["lint", out.to_str().unwrap()]), 0);
    keygen(dir, "rm");
    pack(dir, &out, "rm.key", "b.tar.gz");
    let run = |cmd: &str| {
        airlock(
            dir,
            &[cmd, "b.tar.gz", "--trust", "rm.pub", "--db", &target.conn()],
        )
    };
    expect_code(&run("apply"), 0);
    psql_files(&peer, migrations, ups);
    assert_eq!(target.dump_without_ledger(), peer.dump(), "{tag}: apply");
    if !downs.is_empty() {
        expect_code(&run("rollback"), 0);
        psql_files(&peer, migrations, downs);
        assert_eq!(target.dump_without_ledger(), peer.dump(), "{tag}: rollback");
        assert_eq!(target.dump_without_ledger(), empty, "{tag}: rollback");
    }
    report
}

/// A kratos-like golang-migrate/pop layout: PostgreSQL files beside MySQL and SQLite
/// ones, a version with only a PostgreSQL down file, and wrappers psql scripts carry.
const GOLANG_MIGRATE: &[(&str, &str)] = &[
    ("20191100000001000000_identities.postgres.up.sql", "CREATE TABLE identities (\n  id UUID NOT NULL PRIMARY KEY,\n  traits_schema_id VARCHAR(2048) NOT NULL,\n  traits JSONB NOT NULL,\n  created_at timestamp NOT NULL,\n  updated_at timestamp NOT NULL\n);\n"),
    ("20191100000001000000_identities.postgres.down.sql", "DROP TABLE identities;\n"),
    ("20191100000001000000_identities.mysql.up.sql", "CREATE TABLE `identities` (`id` char(36) NOT NULL, PRIMARY KEY(`id`)) ENGINE=InnoDB;\n"),
    ("20191100000001000000_identities.sqlite3.up.sql", "CREATE TABLE \"identities\" (\"id\" TEXT PRIMARY KEY);\n"),
    ("20191100000002000000_credentials.postgres.up.sql", "BEGIN;\nCREATE TABLE identity_credentials (\n  id UUID NOT NULL PRIMARY KEY,\n  config JSONB NOT NULL,\n  identity_id UUID NOT NULL REFERENCES identities (id) ON DELETE CASCADE\n);\nCREATE INDEX identity_credentials_identity_id_idx ON identity_credentials (identity_id);\nCOMMIT;\n"),
    ("20191100000002000000_credentials.postgres.down.sql", "DROP TABLE identity_credentials;\n"),
    ("20191100000003000000_credentials.postgres.up.sql", "ALTER TABLE identity_credentials ADD COLUMN created_at timestamp NOT NULL DEFAULT now();\n"),
    ("20191100000003000000_credentials.postgres.down.sql", "ALTER TABLE identity_credentials DROP COLUMN created_at;\n"),
    ("README.md", "migrations for kratos-like tests\n"),
];

#[test]
fn a_golang_migrate_history_with_other_dialects_imports_applies_and_rolls_back_as_migrate_does() {
    let t = tempdir();
    let dir = layout(&t.path().join("migrations"), GOLANG_MIGRATE);
    let report = import_apply_rollback(
        "gmig",
        &dir,
        &[
            "20191100000001000000_identities.postgres.up.sql",
            "20191100000002000000_credentials.postgres.up.sql",
            "20191100000003000000_credentials.postgres.up.sql",
        ],
        &[
            "20191100000003000000_credentials.postgres.down.sql",
            "20191100000002000000_credentials.postgres.down.sql",
            "20191100000001000000_identities.postgres.down.sql",
        ],
    );
    assert_eq!(report["layout"], "golang-migrate");
    assert_eq!(report["tiers"].as_array().unwrap().len(), 3, "{report}");
    let left: Vec<String> = report["left_behind"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            format!(
                "{}: {}",
                l["file"].as_str().unwrap(),
                l["why"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        left.contains(
            &"20191100000001000000_identities.mysql.up.sql: for mysql, not PostgreSQL".to_string()
        ),
        "{left:?}"
    );
    assert!(
        left.iter()
            .any(|l| l.starts_with("README.md: not a golang-migrate migration file")),
        "{left:?}"
    );
    // The file-wide BEGIN; … COMMIT; came over as it is, and lint said it skipped it.
    let notes = report["notes"].to_string();
    assert!(
        notes.contains("`BEGIN;` … `COMMIT;` asks for one transaction"),
        "{notes}"
    );
}

#[test]
fn dbmate_sections_are_cut_between_their_markers() {
    let t = tempdir();
    let dir = layout(
        &t.path().join("db/migrations"),
        &[
            ("20240101000000_create_users.sql", "-- migrate:up\nCREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL);\n\n-- migrate:down\nDROP TABLE users;\n"),
            ("20240202000000_add_name.sql", "-- migrate:up\nALTER TABLE users ADD COLUMN name text;\n-- migrate:down\nALTER TABLE users DROP COLUMN name;\n"),
        ],
    );
    // The peer's own result, from the same sections cut by hand.
    let peer_dir = layout(
        &t.path().join("peer"),
        &[
            (
                "1.up.sql",
                "CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL);\n",
            ),
            ("2.up.sql", "ALTER TABLE users ADD COLUMN name text;\n"),
            ("2.down.sql", "ALTER TABLE users DROP COLUMN name;\n"),
            ("1.down.sql", "DROP TABLE users;\n"),
        ],
    );
    // import_apply_rollback runs the peer from `migrations`; give it the cut copies.
    for f in ["1.up.sql", "2.up.sql", "1.down.sql", "2.down.sql"] {
        std::fs::copy(peer_dir.join(f), dir.join(format!("peer-{f}.txt"))).unwrap();
    }
    let report = import_apply_rollback(
        "dbmate",
        &dir,
        &["peer-1.up.sql.txt", "peer-2.up.sql.txt"],
        &["peer-2.down.sql.txt", "peer-1.down.sql.txt"],
    );
    assert_eq!(report["layout"], "dbmate");
    let files = report["files"].to_string();
    assert!(files.contains("the up section of a dbmate file"), "{files}");
    assert!(
        files.contains("the down section of a dbmate file"),
        "{files}"
    );
}

#[test]
fn a_flyway_history_uses_its_undo_scripts_as_the_rollback_and_leaves_repeatables() {
    let t = tempdir();
    let dir = layout(
        &t.path().join("sql"),
        &[
            ("V1__create_orders.sql", "CREATE TABLE orders (id int PRIMARY KEY, total numeric(10,2));\n"),
            ("V1.1__orders_note.sql", "ALTER TABLE orders ADD COLUMN note text;\n"),
            ("V2__items.sql", "\\set ON_ERROR_STOP 1\nCREATE TABLE items (order_id int REFERENCES orders, sku text);\n"),
            ("U1__create_orders.sql", "DROP TABLE orders;\n"),
            ("U1.1__orders_note.sql", "ALTER TABLE orders DROP COLUMN note;\n"),
            ("U2__items.sql", "DROP TABLE items;\n"),
            ("R__order_totals.sql", "CREATE OR REPLACE VIEW order_totals AS SELECT sum(total) FROM orders;\n"),
        ],
    );
    let report = import_apply_rollback(
        "flyway",
        &dir,
        &[
            "V1__create_orders.sql",
            "V1.1__orders_note.sql",
            "V2__items.sql",
        ],
        &[
            "U2__items.sql",
            "U1.1__orders_note.sql",
            "U1__create_orders.sql",
        ],
    );
    assert_eq!(report["layout"], "flyway");
    assert_eq!(
        report["tiers"],
        serde_json::json!(["V1__create_orders", "V1.1__orders_note", "V2__items"])
    );
    assert!(
        report["left_behind"]
            .to_string()
            .contains("R__order_totals.sql"),
        "{report}"
    );
}

#[test]
fn a_sqitch_plan_runs_in_plan_order_and_reverts_in_reverse() {
    let t = tempdir();
    let dir = layout(
        &t.path().join("sqitch"),
        &[
            ("sqitch.plan", "%syntax-version=1.0.0\n%project=flipr\n\nappschema 2024-01-01T00:00:00Z Ann <ann@example.com> # Add schema.\nusers [appschema] 2024-01-02T00:00:00Z Ann <ann@example.com> # Add users.\n@v1.0 2024-01-03T00:00:00Z Ann <ann@example.com> # Tag v1.0.\n"),
            ("deploy/appschema.sql", "-- Deploy flipr:appschema to pg\n\nBEGIN;\n\nCREATE SCHEMA flipr;\n\nCOMMIT;\n"),
            ("deploy/users.sql", "-- Deploy flipr:users to pg\n-- requires: appschema\n\nBEGIN;\n\nCREATE TABLE flipr.users (\n    nickname  TEXT        PRIMARY KEY,\n    password  TEXT        NOT NULL,\n    timestamp TIMESTAMPTZ NOT NULL DEFAULT NOW()\n);\n\nCOMMIT;\n"),
            ("revert/appschema.sql", "-- Revert flipr:appschema from pg\n\nBEGIN;\n\nDROP SCHEMA flipr;\n\nCOMMIT;\n"),
            ("revert/users.sql", "-- Revert flipr:users from pg\n\nBEGIN;\n\nDROP TABLE flipr.users;\n\nCOMMIT;\n"),
            ("verify/appschema.sql", "-- Verify flipr:appschema on pg\n\nSELECT pg_catalog.has_schema_privilege('flipr', 'usage');\n"),
            ("verify/users.sql", "-- Verify flipr:users on pg\n\nBEGIN;\n\nSELECT nickname, password, timestamp\n  FROM flipr.users\n WHERE FALSE;\n\nROLLBACK;\n"),
        ],
    );
    let report = import_apply_rollback(
        "sqitch",
        &dir,
        &["deploy/appschema.sql", "deploy/users.sql"],
        &["revert/users.sql", "revert/appschema.sql"],
    );
    assert_eq!(report["layout"], "sqitch");
    // Each verify script is the second file of its change's tier, run by the apply.
    let left = report["left_behind"].to_string();
    assert!(!left.contains("verify/"), "{left}");
    let files = report["files"].to_string();
    for v in ["001_appschema", "002_users"] {
        let name = &v[4..];
        assert!(
            files.contains(&format!(
                "\"from\":\"verify/{name}.sql\",\"to\":\"sql/verify/{v}.sql\""
            )),
            "{v}: {files}"
        );
    }
}

/// Sqitch's verify scripts are read-only queries that fail (raise an error) when the
/// change is missing: each becomes the second file of its change's tier, run right
/// after the change. A failing one fails the apply, as `sqitch deploy --verify` fails,
/// and nothing stays; one that is not a read-only query (a DO block, a psql
/// meta-command) is not brought over, with why.
#[test]
fn sqitch_verify_scripts_run_after_their_change_and_a_failing_one_fails_the_apply() {
    let t = tempdir();
    let dir = t.path();
    let migrations = layout(
        &dir.join("sqitch"),
        &[
            ("sqitch.plan", "%syntax-version=1.0.0\n%project=flipr\n\nappschema 2024-01-01T00:00:00Z Ann <ann@example.com> # Add schema.\nusers [appschema] 2024-01-02T00:00:00Z Ann <ann@example.com> # Add users.\nadmin [users] 2024-01-03T00:00:00Z Ann <ann@example.com> # The admin user.\nflips [users] 2024-01-04T00:00:00Z Ann <ann@example.com> # Flips.\n"),
            ("deploy/appschema.sql", "BEGIN;\nCREATE SCHEMA flipr;\nCOMMIT;\n"),
            ("deploy/users.sql", "BEGIN;\nCREATE TABLE flipr.users (nickname text PRIMARY KEY);\nCOMMIT;\n"),
            // Forgot the row the verify script looks for.
            ("deploy/admin.sql", "BEGIN;\nINSERT INTO flipr.users VALUES ('root');\nCOMMIT;\n"),
            ("deploy/flips.sql", "BEGIN;\nCREATE TABLE flipr.flips (id bigint PRIMARY KEY, body text);\nCOMMIT;\n"),
            ("verify/users.sql", "BEGIN;\nSELECT nickname FROM flipr.users WHERE FALSE;\nROLLBACK;\n"),
            ("verify/admin.sql", "-- Verify flipr:admin on pg\nBEGIN;\nSELECT 1/COUNT(*) FROM flipr.users WHERE nickname = 'admin';\nROLLBACK;\n"),
            ("verify/flips.sql", "DO $$\nBEGIN\n  ASSERT (SELECT has_table_privilege('flipr.flips', 'select'));\nEND $$;\n"),
            ("verify/appschema.sql", "\\set ON_ERROR_STOP 1\nSELECT pg_catalog.has_schema_privilege('flipr', 'usage');\n"),
        ],
    );
    let target = TestDb::new("sqverify");
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
    let left = report["left_behind"].to_string();
    assert!(
        left.contains(r#"{"file":"verify/flips.sql","why":"not brought over: a verify script is brought over as read-only queries run after its change, and this is not one (line 1: "#),
        "{left}"
    );
    assert!(
        left.contains(r#"{"file":"verify/appschema.sql","why":"not brought over: a verify script"#),
        "{left}"
    );
    let toml = std::fs::read_to_string(out.join("bundle.toml")).unwrap();
    assert!(
        toml.contains("name = \"admin\"\nfiles = [\"sql/tiers/003_admin.sql\", \"sql/verify/003_admin.sql\"]\n"),
        "{toml}"
    );
    // What sqitch would say: the admin verify script fails after the deploy scripts.
    let peer = TestDb::new("sqverifypeer");
    psql_files(
        &peer,
        &migrations,
        &[
            "deploy/appschema.sql",
            "deploy/users.sql",
            "deploy/admin.sql",
        ],
    );
    let o = Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", &peer.name, "-f"])
        .arg(migrations.join("verify/admin.sql"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("division by zero"));
    // airlock: the admin verify fails the apply, and nothing stays.
    keygen(dir, "rm");
    pack(dir, &out, "rm.key", "b.tar.gz");
    let before = target.dump_without_ledger();
    let o = airlock(
        dir,
        &[
            "apply",
            "b.tar.gz",
            "--trust",
            "rm.pub",
            "--db",
            &target.conn(),
        ],
    );
    assert_ne!(code(&o), 0, "{}", stdout(&o));
    assert!(stderr(&o).contains("division by zero"), "{}", stderr(&o));
    assert_eq!(target.dump_without_ledger(), before);
    // With the admin row deployed, the same verify passes.
    std::fs::write(
        migrations.join("deploy/admin.sql"),
        "BEGIN;\nINSERT INTO flipr.users VALUES ('admin');\nCOMMIT;\n",
    )
    .unwrap();
    let out2 = dir.join("src2");
    let o = airlock(
        dir,
        &[
            "import",
            migrations.to_str().unwrap(),
            "--out",
            out2.to_str().unwrap(),
            "--database",
            &target.name,
        ],
    );
    expect_code(&o, 0);
    pack(dir, &out2, "rm.key", "b2.tar.gz");
    expect_code(
        &airlock(
            dir,
            &[
                "apply",
                "b2.tar.gz",
                "--trust",
                "rm.pub",
                "--db",
                &target.conn(),
            ],
        ),
        0,
    );
    assert_eq!(
        target.scalar("SELECT count(*) FROM flipr.users WHERE nickname = 'admin'"),
        "1"
    );
}

#[test]
fn a_folder_of_psql_scripts_becomes_tiers_in_name_order() {
    let t = tempdir();
    let dir = layout(
        &t.path().join("scripts"),
        &[
            ("01_schema.sql", "\\set ON_ERROR_STOP 1\nBEGIN;\nCREATE TABLE album (id int PRIMARY KEY, title text);\nCOMMIT;\n"),
            ("02_data.sql", "\\encoding UTF8\nINSERT INTO album VALUES (1, 'For Those About To Rock');\n"),
        ],
    );
    let report = import_apply_rollback("folder", &dir, &["01_schema.sql", "02_data.sql"], &[]);
    assert_eq!(report["layout"], "folder");
    assert_eq!(report["rollback"], serde_json::json!([]));
}

/// Camunda's upgrade scripts: `7.10_patch` sorts before `7.1_to_7.2` as text and
/// after it as versions, and only the version order applies (the patch sets a
/// default on the column 7.1_to_7.2 adds).
const UPGRADES: &[(&str, &str)] = &[
    ("7.0_base.sql", "CREATE TABLE act (id int PRIMARY KEY);\n"),
    ("7.1_to_7.2.sql", "ALTER TABLE act ADD COLUMN rev int;\n"),
    (
        "7.10_patch.sql",
        "ALTER TABLE act ALTER COLUMN rev SET DEFAULT 1;\n",
    ),
];

#[test]
fn a_folder_whose_names_sort_otherwise_as_versions_is_refused_until_order_says_which() {
    let t = tempdir();
    let dir = layout(&t.path().join("upgrades"), UPGRADES);
    let out = t.path().join("src");
    let target = TestDb::new("folder_order");
    let import = |extra: &[&str]| {
        let mut args = vec![
            "--json",
            "import",
            dir.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--database",
            &target.name,
        ];
        args.extend_from_slice(extra);
        airlock(t.path(), &args)
    };
    // No --order: refused by name, with both ways out, and nothing written.
    let o = import(&[]);
    expect_code(&o, 2);
    let refusal = json(&o);
    let (error, hint) = (refusal["error"].to_string(), refusal["hint"].to_string());
    assert!(
        error.contains("7.10_patch.sql sorts before 7.1_to_7.2.sql as text, after it as a version")
            && hint.contains("--order version")
            && hint.contains("--order text"),
        "{refusal}"
    );
    assert!(!out.exists(), "a refused import wrote {}", out.display());
    // --order text: the names' order, as asked.
    let o = import(&["--order", "text"]);
    expect_code(&o, 0);
    assert_eq!(
        json(&o)["tiers"],
        serde_json::json!(["7.0_base", "7.10_patch", "7.1_to_7.2"])
    );
    std::fs::remove_dir_all(&out).unwrap();
    // --order version: the order the upgrades were written for, which applies.
    let o = import(&["--order", "version"]);
    expect_code(&o, 0);
    assert_eq!(
        json(&o)["tiers"],
        serde_json::json!(["7.0_base", "7.1_to_7.2", "7.10_patch"])
    );
    keygen(t.path(), "rm");
    pack(t.path(), &out, "rm.key", "b.tar.gz");
    let o = airlock(
        t.path(),
        &[
            "apply",
            "b.tar.gz",
            "--trust",
            "rm.pub",
            "--db",
            &target.conn(),
        ],
    );
    expect_code(&o, 0);
    assert_eq!(
        target.scalar("SELECT column_default FROM information_schema.columns WHERE table_name = 'act' AND column_name = 'rev'"),
        "1"
    );
}

#[test]
fn order_is_refused_for_a_layout_with_an_order_of_its_own() {
    let t = tempdir();
    let dir = layout(
        &t.path().join("m"),
        &[("1_a.up.sql", "CREATE TABLE a (i int);\n")],
    );
    let out = t.path().join("src");
    let o = airlock(
        t.path(),
        &[
            "import",
            dir.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--database",
            "x",
            "--order",
            "version",
        ],
    );
    expect_code(&o, 2);
    assert!(
        stderr(&o).contains(
            "--order sorts a plain folder of SQL files; a golang-migrate layout has its own order"
        ),
        "{}",
        stderr(&o)
    );
    assert!(!out.exists(), "a refused import wrote {}", out.display());
}

#[test]
fn import_refuses_a_non_empty_out_and_names_what_it_cannot_read() {
    let t = tempdir();
    let dir = layout(
        &t.path().join("m"),
        &[("1_a.up.sql", "CREATE TABLE a (i int);\n")],
    );
    let out = layout(&t.path().join("out"), &[("keep.txt", "mine\n")]);
    let o = airlock(
        t.path(),
        &[
            "import",
            dir.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--database",
            "x",
        ],
    );
    expect_code(&o, 2);
    assert!(stderr(&o).contains("is not empty"), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(out.join("keep.txt")).unwrap(),
        "mine\n"
    );
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 1);
    // A source airlock would refuse is written, and the report says what lint refuses.
    let bad = layout(
        &t.path().join("bad"),
        // Inside its own BEGIN/COMMIT, as psql refuses it too: kept whole, not online.
        &[(
            "1_a.up.sql",
            "BEGIN;\nCREATE INDEX CONCURRENTLY i ON a (i);\nCOMMIT;\n",
        )],
    );
    let o = airlock(
        t.path(),
        &[
            "import",
            bad.to_str().unwrap(),
            "--out",
            t.path().join("o2").to_str().unwrap(),
            "--database",
            "x",
        ],
    );
    expect_code(&o, 2);
    assert!(
        stdout(&o).contains("CREATE INDEX CONCURRENTLY cannot run inside a transaction block"),
        "{}",
        stdout(&o)
    );
}

/// `airlock --json import MIGRATIONS --out OUT --database TARGET --history TARGET`.
fn import_with_history(
    dir: &Path,
    migrations: &Path,
    out: &Path,
    target: &TestDb,
) -> std::process::Output {
    airlock(
        dir,
        &[
            "--json",
            "import",
            migrations.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--database",
            &target.name,
            "--history",
            &target.conn(),
        ],
    )
}

/// Flyway's own history table, as Flyway creates it, with the rows it writes:
/// (version, script, checksum, success).
fn flyway_history(db: &TestDb, applied: &[(&str, &str, i32, bool)]) {
    db.exec("CREATE TABLE flyway_schema_history (installed_rank int PRIMARY KEY, version varchar(50), description varchar(200) NOT NULL, type varchar(20) NOT NULL, script varchar(1000) NOT NULL, checksum int, installed_by varchar(100) NOT NULL, installed_on timestamp NOT NULL DEFAULT now(), execution_time int NOT NULL, success boolean NOT NULL)");
    for (i, (version, script, checksum, success)) in applied.iter().enumerate() {
        db.exec(&format!("INSERT INTO flyway_schema_history VALUES ({}, '{version}', 'x', 'SQL', '{script}', {checksum}, 'flyway', '2024-01-01 00:00:00', 7, {success})", i + 1));
    }
}

/// Flyway's checksums of the scripts below, as Flyway computes them (java.util.zip.CRC32
/// over the lines `BufferedReader.readLine` gives, BOM dropped; computed with exactly
/// that Java code, not with airlock's).
const CK_V1: i32 = -2063562544; // "CREATE TABLE orders (id int PRIMARY KEY, total numeric(10,2));\n"
const CK_V1_1: i32 = 595524217; // "ALTER TABLE orders ADD COLUMN note text;\n"

/// A target where Flyway applied V1 and V1.1: import with `--history` writes only V2,
/// guarded by a preflight on `flyway_schema_history`; the ledger records only what
/// airlock applies; a target whose history says otherwise is refused, unchanged.
#[test]
fn import_with_history_starts_after_what_the_peer_applied_and_its_preflight_guards_it() {
    let t = tempdir();
    let dir = t.path();
    let migrations = layout(
        &dir.join("sql"),
        &[
            (
                "V1__create_orders.sql",
                "CREATE TABLE orders (id int PRIMARY KEY, total numeric(10,2));\n",
            ),
            (
                "V1.1__orders_note.sql",
                "ALTER TABLE orders ADD COLUMN note text;\n",
            ),
            (
                "V2__items.sql",
                "CREATE TABLE items (order_id int REFERENCES orders, sku text);\n",
            ),
            ("U2__items.sql", "DROP TABLE items;\n"),
        ],
    );
    let target = TestDb::new("fwhist");
    let peer = TestDb::new("fwhistpeer");
    for db in [&target, &peer] {
        psql_files(
            db,
            &migrations,
            &["V1__create_orders.sql", "V1.1__orders_note.sql"],
        );
        flyway_history(
            db,
            &[
                ("1", "V1__create_orders.sql", CK_V1, true),
                ("1.1", "V1.1__orders_note.sql", CK_V1_1, true),
            ],
        );
    }
    let out = dir.join("src");
    let o = import_with_history(dir, &migrations, &out, &target);
    expect_code(&o, 0);
    let report = json(&o);
    assert_eq!(
        report["tiers"],
        serde_json::json!(["V2__items"]),
        "{report}"
    );
    let left = report["left_behind"].to_string();
    assert!(
        left.contains("V1__create_orders")
            && left.contains("V1.1__orders_note")
            && left.contains("applied on the target already"),
        "{left}"
    );
    let toml = std::fs::read_to_string(out.join("bundle.toml")).unwrap();
    assert!(
        toml.contains("[preflight]") && toml.contains("peer_history = \"1,1.1\""),
        "{toml}"
    );

    keygen(dir, "rm");
    pack(dir, &out, "rm.key", "b.tar.gz");
    // The target's history no longer says V1.1: refused by the preflight, unchanged.
    target.exec("DELETE FROM flyway_schema_history WHERE version = '1.1'");
    let before = target.dump();
    let o = airlock(
        dir,
        &[
            "apply",
            "b.tar.gz",
            "--trust",
            "rm.pub",
            "--db",
            &target.conn(),
        ],
    );
    assert_ne!(code(&o), 0);
    assert!(stderr(&o).contains("peer_history"), "{}", stderr(&o));
    assert_eq!(target.dump(), before);
    target.exec(&format!("INSERT INTO flyway_schema_history VALUES (2, '1.1', 'x', 'SQL', 'V1.1__orders_note.sql', {CK_V1_1}, 'flyway', '2024-01-01 00:00:00', 7, true)"));

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
    psql_files(&peer, &migrations, &["V2__items.sql"]);
    assert_eq!(target.dump_without_ledger(), peer.dump());
    assert_eq!(
        target.scalar("SELECT count(*) FROM airlock.ledger WHERE event <> 'receipt'"),
        "1"
    );
    expect_code(
        &airlock(
            dir,
            &[
                "rollback",
                "b.tar.gz",
                "--trust",
                "rm.pub",
                "--db",
                &target.conn(),
            ],
        ),
        0,
    );
    assert_eq!(target.scalar("SELECT to_regclass('items') IS NULL"), "t");
    assert_eq!(
        target.scalar("SELECT to_regclass('orders') IS NOT NULL"),
        "t"
    );

    // A failed migration in the history: import refuses, naming it, and writes nothing.
    let failed = TestDb::new("fwhistfailed");
    flyway_history(&failed, &[("1", "V1__create_orders.sql", CK_V1, false)]);
    let out2 = dir.join("src2");
    let o = airlock(
        dir,
        &[
            "import",
            migrations.to_str().unwrap(),
            "--out",
            out2.to_str().unwrap(),
            "--database",
            &failed.name,
            "--history",
            &failed.conn(),
        ],
    );
    expect_code(&o, 2);
    assert!(stderr(&o).contains("failed half-way (1)"), "{}", stderr(&o));
    assert!(!out2.exists());
}

/// golang-migrate keeps only the last version (and `dirty`): everything up to it is
/// applied; a dirty one is refused.
#[test]
fn import_with_a_golang_migrate_history_starts_after_its_version() {
    let t = tempdir();
    let dir = t.path();
    let migrations = layout(
        &dir.join("m"),
        &[
            (
                "20240101000000_users.up.sql",
                "CREATE TABLE users (id bigint PRIMARY KEY);\n",
            ),
            ("20240101000000_users.down.sql", "DROP TABLE users;\n"),
            (
                "20240202000000_name.up.sql",
                "ALTER TABLE users ADD COLUMN name text;\n",
            ),
            (
                "20240303000000_email.up.sql",
                "ALTER TABLE users ADD COLUMN email text;\n",
            ),
        ],
    );
    let target = TestDb::new("gmhist");
    psql_files(
        &target,
        &migrations,
        &["20240101000000_users.up.sql", "20240202000000_name.up.sql"],
    );
    target.exec("CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL); INSERT INTO schema_migrations VALUES (20240202000000, false)");
    let out = dir.join("src");
    let o = import_with_history(dir, &migrations, &out, &target);
    expect_code(&o, 0);
    let report = json(&o);
    assert_eq!(
        report["tiers"],
        serde_json::json!(["20240303000000_email"]),
        "{report}"
    );
    // pop's own table (default name `schema_migration`, one row per version).
    let pop = TestDb::new("pophist");
    psql_files(&pop, &migrations, &["20240101000000_users.up.sql"]);
    pop.exec("CREATE TABLE schema_migration (version varchar(14) NOT NULL); INSERT INTO schema_migration VALUES ('20240101000000')");
    let o = airlock(
        dir,
        &[
            "--json",
            "import",
            migrations.to_str().unwrap(),
            "--out",
            dir.join("src-pop").to_str().unwrap(),
            "--database",
            &pop.name,
            "--history",
            &pop.conn(),
        ],
    );
    expect_code(&o, 0);
    assert_eq!(
        json(&o)["tiers"],
        serde_json::json!(["20240202000000_name", "20240303000000_email"])
    );
    target.exec("UPDATE schema_migrations SET dirty = true");
    let o = airlock(
        dir,
        &[
            "import",
            migrations.to_str().unwrap(),
            "--out",
            dir.join("src2").to_str().unwrap(),
            "--database",
            &target.name,
            "--history",
            &target.conn(),
        ],
    );
    expect_code(&o, 2);
    assert!(stderr(&o).contains("failed half-way"), "{}", stderr(&o));
}

/// kratos's pop `.autocommit` files (pop runs them outside a transaction): one that
/// needs it (`CREATE INDEX CONCURRENTLY IF NOT EXISTS`) becomes an `online = true`
/// tier, with its down script left out of the transactional rollback; one that does
/// not (`CREATE INDEX IF NOT EXISTS`) stays transactional; a cockroach autocommit file
/// is another dialect's.
#[test]
fn pop_autocommit_migrations_become_online_tiers_only_when_they_must() {
    let t = tempdir();
    let dir = t.path();
    let migrations = layout(
        &dir.join("m"),
        &[
            ("20240101000000000000_messages.up.sql", "CREATE TABLE courier_messages (id uuid PRIMARY KEY, nid uuid, status int NOT NULL, created_at timestamp NOT NULL);\n"),
            ("20240101000000000000_messages.down.sql", "DROP TABLE courier_messages;\n"),
            ("20240202000000000000_nid_idx.autocommit.up.sql", "DROP INDEX IF EXISTS courier_messages_nid_idx;\n\nCREATE INDEX IF NOT EXISTS courier_messages_nid_idx ON courier_messages (nid ASC);\n"),
            ("20240202000000000000_nid_idx.autocommit.down.sql", "DROP INDEX IF EXISTS courier_messages_nid_idx;\n"),
            ("20240202000000000000_nid_idx.cockroach.autocommit.up.sql", "CREATE INDEX IF NOT EXISTS courier_messages_nid_idx ON courier_messages (nid ASC) USING HASH;\n"),
            ("20240303000000000000_status_idx.postgres.autocommit.up.sql", "CREATE INDEX CONCURRENTLY IF NOT EXISTS courier_messages_status_created_at_idx ON courier_messages (status ASC, created_at ASC);\n"),
            ("20240303000000000000_status_idx.postgres.autocommit.down.sql", "DROP INDEX CONCURRENTLY IF EXISTS courier_messages_status_created_at_idx;\n"),
            ("20240303000000000000_status_idx.mysql.up.sql", "CREATE INDEX courier_messages_status_created_at_idx ON courier_messages (status, created_at);\n"),
        ],
    );
    let target = TestDb::new("popauto");
    let peer = TestDb::new("popautopeer");
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
    // The rollback leaves the status index's down script out: not OK (exit 2).
    expect_code(&o, 2);
    let report = json(&o);
    assert_eq!(report["problems"], serde_json::json!([]), "{report}");
    assert_eq!(
        report["rollback_left_out"],
        serde_json::json!(["20240303000000000000_status_idx.postgres.autocommit.down.sql"])
    );
    assert_eq!(report["tiers"].as_array().unwrap().len(), 3, "{report}");
    let left = report["left_behind"].to_string();
    assert!(left.contains(r#"{"file":"20240202000000000000_nid_idx.cockroach.autocommit.up.sql","why":"for cockroach, not PostgreSQL"}"#), "{left}");
    assert!(left.contains(r#"{"file":"20240303000000000000_status_idx.postgres.autocommit.down.sql","why":"20240303000000000000_status_idx.postgres.autocommit.down.sql:1: DROP INDEX CONCURRENTLY cannot run inside a transaction block, and the rollback runs in one"#), "{left}");
    let toml = std::fs::read_to_string(out.join("bundle.toml")).unwrap();
    assert_eq!(toml.matches("online = true").count(), 1, "{toml}");
    assert!(
        toml.contains(
            "files = [\"sql/tiers/003_20240303000000000000_status_idx.sql\"]\nonline = true"
        ),
        "{toml}"
    );
    assert_eq!(report["rollback"].as_array().unwrap().len(), 2, "{report}");

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
    // pop: each in order, an autocommit file outside a transaction.
    psql_files(
        &peer,
        &migrations,
        &[
            "20240101000000000000_messages.up.sql",
            "20240202000000000000_nid_idx.autocommit.up.sql",
            "20240303000000000000_status_idx.postgres.autocommit.up.sql",
        ],
    );
    assert_eq!(target.dump_without_ledger(), peer.dump());
}

/// Sqitch records deployed changes in `sqitch.changes`, per project: with `--history`,
/// only the plan's changes not recorded for its `%project` become tiers. (The table
/// here has the columns import reads, of the types Sqitch gives them.)
#[test]
fn import_with_a_sqitch_history_starts_after_the_deployed_changes() {
    let t = tempdir();
    let dir = t.path();
    let migrations = layout(
        &dir.join("sqitch"),
        &[
            ("sqitch.plan", "%syntax-version=1.0.0\n%project=flipr\n\nappschema 2024-01-01T00:00:00Z Ann <ann@example.com> # Add schema.\nusers [appschema] 2024-01-02T00:00:00Z Ann <ann@example.com> # Add users.\n"),
            ("deploy/appschema.sql", "BEGIN;\nCREATE SCHEMA flipr;\nCOMMIT;\n"),
            ("deploy/users.sql", "BEGIN;\nCREATE TABLE flipr.users (nickname text PRIMARY KEY);\nCOMMIT;\n"),
        ],
    );
    let target = TestDb::new("sqhist");
    target.exec("CREATE SCHEMA flipr; CREATE SCHEMA sqitch; CREATE TABLE sqitch.changes (change_id text PRIMARY KEY, change text NOT NULL, project text NOT NULL, committed_at timestamptz NOT NULL); INSERT INTO sqitch.changes VALUES ('a1', 'appschema', 'flipr', '2024-01-01'), ('b2', 'users', 'another', '2024-01-02')");
    let out = dir.join("src");
    let o = import_with_history(dir, &migrations, &out, &target);
    expect_code(&o, 0);
    let report = json(&o);
    assert_eq!(report["tiers"], serde_json::json!(["users"]), "{report}");
    let toml = std::fs::read_to_string(out.join("bundle.toml")).unwrap();
    assert!(toml.contains("peer_history = \"appschema\""), "{toml}");
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
        target.scalar("SELECT to_regclass('flipr.users') IS NOT NULL"),
        "t"
    );
}

/// Flyway's checksum of each applied migration (`flyway_schema_history.checksum`) is
/// compared with the script in the directory: a script edited after it was applied is
/// refused, named, and nothing is written; line endings and a byte-order mark do not
/// count, as they do not for Flyway.
#[test]
fn import_with_flyway_history_refuses_a_script_edited_after_it_was_applied() {
    let t = tempdir();
    let dir = t.path();
    // As applied: LF line endings (Flyway's checksum 1369891448, from the same Java code
    // as above); in the directory now: the same lines with a BOM and CRLF.
    let applied_ck = 1369891448;
    let migrations = layout(
        &dir.join("sql"),
        &[
            (
                "V1__create_orders.sql",
                "\u{feff}-- orders, as applied\r\nCREATE TABLE orders (\r\n  id int PRIMARY KEY,\r\n  total numeric(10,2)\r\n);\r\n",
            ),
            (
                "V2__items.sql",
                "CREATE TABLE items (order_id int REFERENCES orders, sku text);\n",
            ),
        ],
    );
    let target = TestDb::new("fwck");
    target.exec("CREATE TABLE orders (id int PRIMARY KEY, total numeric(10,2))");
    flyway_history(&target, &[("1", "V1__create_orders.sql", applied_ck, true)]);
    let out = dir.join("src");
    let o = import_with_history(dir, &migrations, &out, &target);
    expect_code(&o, 0);
    assert_eq!(json(&o)["tiers"], serde_json::json!(["V2__items"]));

    // The script was edited after Flyway applied it: refused, named, nothing written.
    std::fs::write(
        migrations.join("V1__create_orders.sql"),
        "-- orders, as applied\nCREATE TABLE orders (\n  id int PRIMARY KEY,\n  total numeric(12,2)\n);\n",
    )
    .unwrap();
    let out2 = dir.join("src2");
    let o = import_with_history(dir, &migrations, &out2, &target);
    expect_code(&o, 2);
    let err = stdout(&o); // --json: the error document
    assert!(
        err.contains("V1__create_orders.sql: differs from the script Flyway applied (public.flyway_schema_history records checksum 1369891448, the file's is 476988275)"),
        "{err}"
    );
    assert!(!out2.exists());
    // A wrong checksum in the table is refused the same way.
    let wrong = TestDb::new("fwckwrong");
    flyway_history(&wrong, &[("1", "V1__create_orders.sql", CK_V1, true)]);
    let o = import_with_history(dir, &migrations, &dir.join("src3"), &wrong);
    expect_code(&o, 2);
    assert!(
        stdout(&o).contains("V1__create_orders.sql: differs from the script Flyway applied"),
        "{}",
        stdout(&o)
    );
    assert!(!dir.join("src3").exists());
}

/// pop/kratos trees hold each migration once per dialect; a file for another dialect
/// (`.cockroach.sql`, `.mysql.sql`, `.sqlite3.sql`, with or without up/down) is never
/// taken as PostgreSQL's, in any layout, and the report names it.
#[test]
fn files_of_other_dialects_are_left_behind_by_name_in_every_layout() {
    let t = tempdir();
    let dir = t.path();
    let kratos = layout(
        &dir.join("kratos"),
        &[
            ("20200101000000000000_networks.postgres.up.sql", "CREATE TABLE networks (id uuid PRIMARY KEY);\n"),
            ("20200101000000000000_networks.postgres.down.sql", "DROP TABLE networks;\n"),
            ("20200101000000000000_networks.cockroach.up.sql", "CREATE TABLE networks (id UUID NOT NULL, CONSTRAINT \"primary\" PRIMARY KEY (id ASC));\n"),
            ("20200101000000000000_networks.cockroachdb.up.sql", "CREATE TABLE networks (id UUID NOT NULL PRIMARY KEY);\n"),
            ("20200101000000000000_networks.mariadb.up.sql", "CREATE TABLE `networks` (`id` char(36) NOT NULL) ENGINE=InnoDB;\n"),
            ("20200101000000000000_networks.cockroach.sql", "SET CLUSTER SETTING sql.defaults.default_int_size = 4;\n"),
            ("20200101000000000000_networks.mysql.sql", "SET sql_mode = 'ANSI_QUOTES';\n"),
        ],
    );
    let folder = layout(
        &dir.join("scripts"),
        &[
            (
                "01_schema.sql",
                "CREATE TABLE album (id int PRIMARY KEY);\n",
            ),
            (
                "01_schema.mysql.sql",
                "CREATE TABLE `album` (`id` int PRIMARY KEY) ENGINE=InnoDB;\n",
            ),
            (
                "02_schema.sqlite3.sql",
                "CREATE TABLE album2 (id INTEGER PRIMARY KEY AUTOINCREMENT);\n",
            ),
        ],
    );
    for (migrations, tiers, others) in [
        (
            &kratos,
            1,
            &[
                (
                    "20200101000000000000_networks.cockroach.up.sql",
                    "cockroach",
                ),
                (
                    "20200101000000000000_networks.cockroachdb.up.sql",
                    "cockroachdb",
                ),
                ("20200101000000000000_networks.mariadb.up.sql", "mariadb"),
                ("20200101000000000000_networks.cockroach.sql", "cockroach"),
                ("20200101000000000000_networks.mysql.sql", "mysql"),
            ][..],
        ),
        (
            &folder,
            1,
            &[
                ("01_schema.mysql.sql", "mysql"),
                ("02_schema.sqlite3.sql", "sqlite3"),
            ][..],
        ),
    ] {
        let out = dir.join(format!(
            "{}-src",
            migrations.file_name().unwrap().to_str().unwrap()
        ));
        let o = airlock(
            dir,
            &[
                "--json",
                "import",
                migrations.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
                "--database",
                "x",
            ],
        );
        expect_code(&o, 0);
        let report = json(&o);
        assert_eq!(report["tiers"].as_array().unwrap().len(), tiers, "{report}");
        let left = report["left_behind"].to_string();
        for (file, dialect) in others {
            assert!(
                left.contains(&format!(
                    r#"{{"file":"{file}","why":"for {dialect}, not PostgreSQL"}}"#
                )),
                "{file}: {left}"
            );
        }
        let brought = report["files"].to_string();
        for (file, _) in others {
            assert!(!brought.contains(file), "{file}: {brought}");
        }
    }
}

/// What a file outside the imported folder holds: it must appear nowhere `import` writes.
const OUTSIDE: &str = "SELECT 'OUTSIDE-SECRET-7f3a';\n";

/// `dir/outside/secret.sql`, a file beside (not inside) the folders imported below.
fn outside_file(dir: &Path) -> PathBuf {
    layout(&dir.join("outside"), &[("secret.sql", OUTSIDE)]).join("secret.sql")
}

/// Import `migrations` (`--json`, then again for the human report) and prove the
/// entry `file` was refused: listed under "not brought over" with a reason naming
/// `why`, the run exits 2 (the source is incomplete, so lint's OK is not the word),
/// and the outside file's text is in no file written. Returns the human report.
#[track_caller]
fn refused(migrations: &Path, file: &str, why: &str) -> String {
    let parent = migrations.parent().unwrap();
    let out = parent.join("src-json");
    let o = airlock(
        parent,
        &[
            "--json",
            "import",
            migrations.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--database",
            "x",
        ],
    );
    expect_code(&o, 2);
    let report = json(&o);
    let left = report["left_behind"].as_array().unwrap();
    assert!(
        left.iter()
            .any(|l| l["file"] == file && l["why"].as_str().unwrap().contains(why)),
        "{file} is not listed as refused ({why}): {report}"
    );
    assert!(
        !report["problems"].as_array().unwrap().is_empty(),
        "{report}"
    );
    assert_nothing_from_outside(&out);
    let human_out = parent.join("src-human");
    let o = airlock(
        parent,
        &[
            "import",
            migrations.to_str().unwrap(),
            "--out",
            human_out.to_str().unwrap(),
            "--database",
            "x",
        ],
    );
    expect_code(&o, 2);
    assert_nothing_from_outside(&human_out);
    let human = stdout(&o);
    assert!(!human.contains("lint: OK"), "{human}");
    assert!(!human.contains("OUTSIDE-SECRET"), "{human}");
    human
}

/// No file under `out` holds the outside file's text, and none is a link.
#[track_caller]
fn assert_nothing_from_outside(out: &Path) {
    for entry in walkdir::WalkDir::new(out) {
        let entry = entry.unwrap();
        assert!(
            !entry.path_is_symlink(),
            "{} is a link",
            entry.path().display()
        );
        if entry.file_type().is_file() {
            let bytes = std::fs::read(entry.path()).unwrap();
            assert!(
                !String::from_utf8_lossy(&bytes).contains("OUTSIDE-SECRET"),
                "{} holds the outside file's text",
                entry.path().display()
            );
        }
    }
}

/// A Sqitch project (`proj/sqitch`) with one good change `ok` and the extra plan
/// lines `extra`, plus `files`.
fn sqitch_project(dir: &Path, extra: &str, files: &[(&str, &str)]) -> PathBuf {
    let plan = format!(
        "%syntax-version=1.0.0\n%project=p\n\nok 2024-01-01T00:00:00Z Ann <ann@example.com> # ok\n{extra}"
    );
    let mut all = vec![
        ("sqitch.plan", plan.as_str()),
        ("deploy/ok.sql", "CREATE TABLE ok (i int);\n"),
        ("revert/ok.sql", "DROP TABLE ok;\n"),
    ];
    all.extend_from_slice(files);
    layout(&dir.join("proj").join("sqitch"), &all)
}

#[test]
fn a_sqitch_plan_naming_a_path_out_of_the_folder_is_not_brought_over() {
    let t = tempdir();
    // deploy/../../outside/secret.sql is proj/outside/secret.sql.
    outside_file(&t.path().join("proj"));
    let dir = sqitch_project(
        t.path(),
        "../../outside/secret 2024-01-02T00:00:00Z Ann <ann@example.com> # out\n",
        &[],
    );
    refused(
        &dir,
        "deploy/../../outside/secret.sql",
        "outside the folder",
    );
}

#[test]
fn a_sqitch_plan_naming_an_absolute_path_is_not_brought_over() {
    let t = tempdir();
    let secret = outside_file(t.path());
    let stem = secret
        .to_str()
        .unwrap()
        .trim_end_matches(".sql")
        .to_string();
    let dir = sqitch_project(
        t.path(),
        &format!("{stem} 2024-01-02T00:00:00Z Ann <ann@example.com> # out\n"),
        &[],
    );
    refused(&dir, &format!("deploy/{stem}.sql"), "outside the folder");
}

#[test]
fn a_sqitch_deploy_or_revert_or_verify_script_that_links_out_of_the_folder_is_not_brought_over() {
    for sub in ["deploy", "revert", "verify"] {
        let t = tempdir();
        let secret = outside_file(t.path());
        let dir = sqitch_project(
            t.path(),
            "evil 2024-01-02T00:00:00Z Ann <ann@example.com> # evil\n",
            &[
                ("deploy/evil.sql", "CREATE TABLE evil (i int);\n"),
                ("revert/evil.sql", "DROP TABLE evil;\n"),
            ],
        );
        let link = dir.join(sub).join("evil.sql");
        let _ = std::fs::remove_file(&link);
        std::fs::create_dir_all(link.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(&secret, &link).unwrap();
        refused(&dir, &format!("{sub}/evil.sql"), "symbolic link");
    }
}

#[test]
fn a_sqitch_deploy_subfolder_that_is_a_link_out_of_the_folder_is_not_followed() {
    let t = tempdir();
    let secret = outside_file(t.path());
    let dir = sqitch_project(
        t.path(),
        "sub/secret 2024-01-02T00:00:00Z Ann <ann@example.com> # out\n",
        &[],
    );
    // deploy/sub is a link to the outside folder: deploy/sub/secret.sql is outside.
    std::os::unix::fs::symlink(secret.parent().unwrap(), dir.join("deploy/sub")).unwrap();
    refused(&dir, "deploy/sub/secret.sql", "symbolic link");
}

#[test]
fn a_script_that_is_a_link_is_listed_not_skipped_in_every_flat_layout() {
    let plain = "CREATE TABLE a (i int);\n";
    let dbmate = "-- migrate:up\nCREATE TABLE a (i int);\n";
    for (first, text, evil, layout_name) in [
        ("V1__a.sql", plain, "V2__evil.sql", "flyway"),
        ("1_a.up.sql", plain, "2_evil.up.sql", "golang-migrate"),
        ("20240101_a.sql", dbmate, "20240102_evil.sql", "dbmate"),
        ("01_a.sql", plain, "02_evil.sql", "folder"),
    ] {
        let t = tempdir();
        let secret = outside_file(t.path());
        let dir = layout(&t.path().join("m"), &[(first, text)]);
        std::os::unix::fs::symlink(&secret, dir.join(evil)).unwrap();
        let human = refused(&dir, evil, "symbolic link");
        assert!(
            human.contains(&format!("from a {layout_name} layout")),
            "{human}"
        );
    }
}

#[test]
fn a_fifo_named_like_a_script_is_listed_and_never_opened() {
    let t = tempdir();
    let dir = layout(
        &t.path().join("m"),
        &[("1_a.up.sql", "CREATE TABLE a (i int);\n")],
    );
    let fifo = dir.join("2_b.up.sql");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    // A blocking open of the FIFO would hang the import: it ends, and says why.
    outside_file(t.path());
    refused(&dir, "2_b.up.sql", "not a regular file");
}

#[test]
fn a_file_name_with_a_newline_or_an_escape_is_printed_escaped() {
    let t = tempdir();
    let dir = layout(
        &t.path().join("m"),
        &[
            ("1_a.up.sql", "CREATE TABLE a (i int);\n"),
            (
                "2_b\nnot brought over: x.up.sql",
                "CREATE TABLE b (i int);\n",
            ),
            ("3_c\u{1b}[2J.up.sql", "CREATE TABLE c (i int);\n"),
        ],
    );
    let o = airlock(
        t.path(),
        &[
            "import",
            dir.to_str().unwrap(),
            "--out",
            t.path().join("src").to_str().unwrap(),
            "--database",
            "x",
        ],
    );
    // Lint refuses control characters in tier names (exit 2); the report still
    // names every file, each on its own line.
    expect_code(&o, 2);
    let human = stdout(&o);
    assert!(!human.contains("2_b\nnot brought over"), "{human}");
    assert!(
        human.contains("2_b\\nnot brought over: x.up.sql"),
        "{human}"
    );
    assert!(!human.contains('\u{1b}'), "{human}");
    assert!(human.contains("3_c\\x1b[2J.up.sql"), "{human}");
    assert!(
        !human
            .lines()
            .any(|l| l.starts_with("not brought over: x.up.sql")),
        "{human}"
    );
}

/// `airlock import DIR --out DIR/src --database x` (plus `extra`), human output.
fn import_human(t: &Path, dir: &Path, extra: &[&str]) -> (std::process::Output, String) {
    let out = t.join("src");
    let mut args = vec![
        "import",
        dir.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--database",
        "x",
    ];
    args.extend_from_slice(extra);
    let o = airlock(t, &args);
    let human = stdout(&o);
    (o, human)
}

#[test]
fn golang_migrate_pairs_up_and_down_by_version_not_by_file_name() {
    let t = tempdir();
    let dir = layout(
        &t.path().join("m"),
        &[
            ("1_add_a.up.sql", "CREATE TABLE a (i int);\n"),
            ("1_drop_a.down.sql", "DROP TABLE a;\n"),
            ("2_add_b.up.sql", "CREATE TABLE b (i int);\n"),
            ("2_add_b.down.sql", "DROP TABLE b;\n"),
        ],
    );
    let report = import_apply_rollback(
        "gmpair",
        &dir,
        &["1_add_a.up.sql", "2_add_b.up.sql"],
        &["2_add_b.down.sql", "1_drop_a.down.sql"],
    );
    assert_eq!(report["tiers"], serde_json::json!(["1_add_a", "2_add_b"]));
    assert_eq!(report["rollback"].as_array().unwrap().len(), 2, "{report}");
    assert!(!report.to_string().contains("no down script"), "{report}");
}

#[test]
fn a_second_file_for_one_version_and_direction_is_refused() {
    let t = tempdir();
    let dir = layout(
        &t.path().join("m"),
        &[
            ("1_add_a.up.sql", "CREATE TABLE a (i int);\n"),
            ("1_add_b.up.sql", "CREATE TABLE b (i int);\n"),
        ],
    );
    let (o, _) = import_human(t.path(), &dir, &[]);
    expect_code(&o, 2);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(
        err.contains("1_add_a.up.sql") && err.contains("1_add_b.up.sql"),
        "{err}"
    );
    assert!(!t.path().join("src").exists());
}

#[test]
fn no_down_script_is_said_once_and_lint_warnings_are_warnings() {
    let t = tempdir();
    let dir = layout(
        &t.path().join("m"),
        &[
            (
                "1_a.up.sql",
                "CREATE TYPE mood AS ENUM ('ok');\nCREATE TABLE a (m mood);\n",
            ),
            (
                "2_b.up.sql",
                "ALTER TYPE mood ADD VALUE 'meh';\nINSERT INTO a VALUES ('meh');\n",
            ),
            ("3_c.up.sql", "CREATE TABLE c (i int);\n"),
        ],
    );
    let (_, human) = import_human(t.path(), &dir, &[]);
    let lines: Vec<&str> = human
        .lines()
        .filter(|l| l.contains("no down script"))
        .collect();
    assert_eq!(lines.len(), 1, "{human}");
    assert!(
        lines[0].contains("3 migration(s)") && lines[0].contains("1_a, 2_b, 3_c"),
        "{human}"
    );
    // What lint prints as a warning, import prints as a warning, in the same words.
    let lint = stdout(&airlock(
        t.path(),
        &["lint", t.path().join("src").to_str().unwrap()],
    ));
    let warnings: Vec<&str> = lint
        .lines()
        .filter(|l| l.starts_with("warning: "))
        .collect();
    assert!(!warnings.is_empty(), "{lint}");
    for w in warnings {
        assert!(human.lines().any(|l| l == w), "{w}\n---\n{human}");
        assert!(
            !human.contains(&format!("note: {}", &w["warning: ".len()..])),
            "{human}"
        );
    }
}

#[test]
fn a_prisma_history_imports_in_folder_order_and_says_once_it_has_no_down_scripts() {
    let t = tempdir();
    let dir = layout(
        &t.path().join("prisma/migrations"),
        &[
            ("migration_lock.toml", "# Please do not edit this file manually\nprovider = \"postgresql\"\n"),
            ("20240101120000_init/migration.sql", "-- CreateTable\nCREATE TABLE \"User\" (\n    \"id\" SERIAL NOT NULL,\n    \"email\" TEXT NOT NULL,\n    CONSTRAINT \"User_pkey\" PRIMARY KEY (\"id\")\n);\n\n-- CreateIndex\nCREATE UNIQUE INDEX \"User_email_key\" ON \"User\"(\"email\");\n"),
            ("20240202120000_posts/migration.sql", "-- CreateTable\nCREATE TABLE \"Post\" (\"id\" SERIAL NOT NULL, \"authorId\" INTEGER NOT NULL REFERENCES \"User\"(\"id\"), CONSTRAINT \"Post_pkey\" PRIMARY KEY (\"id\"));\n"),
        ],
    );
    let report = import_apply_rollback(
        "prisma",
        &dir,
        &[
            "20240101120000_init/migration.sql",
            "20240202120000_posts/migration.sql",
        ],
        &[],
    );
    assert_eq!(report["layout"], "prisma");
    assert_eq!(
        report["tiers"],
        serde_json::json!(["20240101120000_init", "20240202120000_posts"])
    );
    assert_eq!(
        report["no_down_script"],
        serde_json::json!(["20240101120000_init", "20240202120000_posts"])
    );
    // Another provider's history is refused whole, nothing written.
    let my = layout(
        &t.path().join("my"),
        &[
            ("migration_lock.toml", "provider = \"mysql\"\n"),
            (
                "20240101120000_init/migration.sql",
                "CREATE TABLE `User` (`id` INTEGER);\n",
            ),
        ],
    );
    let (o, _) = import_human(t.path(), &my, &[]);
    expect_code(&o, 2);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("provider = \"mysql\""),
        "{o:?}"
    );
    assert!(!t.path().join("src").exists());
}

#[test]
fn a_diesel_history_imports_with_its_initial_setup_and_rolls_back() {
    let t = tempdir();
    let dir = layout(
        &t.path().join("migrations"),
        &[
            ("00000000000000_diesel_initial_setup/up.sql", "CREATE OR REPLACE FUNCTION diesel_manage_updated_at(_tbl regclass) RETURNS VOID AS $$\nBEGIN\n    EXECUTE format('CREATE TRIGGER set_updated_at BEFORE UPDATE ON %s\n                    FOR EACH ROW EXECUTE PROCEDURE diesel_set_updated_at()', _tbl);\nEND;\n$$ LANGUAGE plpgsql;\n\nCREATE OR REPLACE FUNCTION diesel_set_updated_at() RETURNS trigger AS $$\nBEGIN\n    IF (\n        NEW IS DISTINCT FROM OLD AND\n        NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at\n    ) THEN\n        NEW.updated_at := current_timestamp;\n    END IF;\n    RETURN NEW;\nEND;\n$$ LANGUAGE plpgsql;\n"),
            ("00000000000000_diesel_initial_setup/down.sql", "DROP FUNCTION IF EXISTS diesel_manage_updated_at(_tbl regclass);\nDROP FUNCTION IF EXISTS diesel_set_updated_at();\n"),
            ("2024-01-01-120000_create_posts/up.sql", "CREATE TABLE posts (\n  id SERIAL PRIMARY KEY,\n  title VARCHAR NOT NULL,\n  updated_at TIMESTAMP NOT NULL DEFAULT now()\n);\nSELECT diesel_manage_updated_at('posts');\n"),
            ("2024-01-01-120000_create_posts/down.sql", "DROP TABLE posts;\n"),
            ("2024-02-01-120000_posts_body/up.sql", "ALTER TABLE posts ADD COLUMN body TEXT;\n"),
            ("2024-02-01-120000_posts_body/down.sql", "ALTER TABLE posts DROP COLUMN body;\n"),
            (".keep", ""),
        ],
    );
    let report = import_apply_rollback(
        "diesel",
        &dir,
        &[
            "00000000000000_diesel_initial_setup/up.sql",
            "2024-01-01-120000_create_posts/up.sql",
            "2024-02-01-120000_posts_body/up.sql",
        ],
        &[
            "2024-02-01-120000_posts_body/down.sql",
            "2024-01-01-120000_create_posts/down.sql",
            "00000000000000_diesel_initial_setup/down.sql",
        ],
    );
    assert_eq!(report["layout"], "diesel");
    assert_eq!(report["tiers"].as_array().unwrap().len(), 3, "{report}");
    assert_eq!(report["rollback"].as_array().unwrap().len(), 3, "{report}");
    assert_eq!(report["no_down_script"], serde_json::json!([]));
}

#[test]
fn flyway_locations_merge_in_version_order_from_the_command_line_or_flyway_conf() {
    let t = tempdir();
    let files: &[(&str, &str)] = &[
        ("db/migration_postgres/V1__orders.sql", "CREATE TABLE orders (id int PRIMARY KEY);\n"),
        ("db/migration_postgres/V3__items.sql", "CREATE TABLE items (order_id int REFERENCES orders);\n"),
        ("db/migration_data/V2__seed.sql", "INSERT INTO orders VALUES (1), (2);\n"),
        ("db/migration_notify/sub/V4__notify.sql", "CREATE FUNCTION notify_orders() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN PERFORM pg_notify('orders', NEW.id::text); RETURN NEW; END$$;\n"),
        ("flyway.conf", "flyway.url=jdbc:postgresql://localhost/app\nflyway.locations=filesystem:db/migration_postgres,filesystem:db/migration_data, filesystem:db/migration_notify\n"),
    ];
    let dir = layout(&t.path().join("project"), files);
    let peer = [
        "db/migration_postgres/V1__orders.sql",
        "db/migration_data/V2__seed.sql",
        "db/migration_postgres/V3__items.sql",
        "db/migration_notify/sub/V4__notify.sql",
    ];
    let report = import_apply_rollback("flywayloc", &dir, &peer, &[]);
    assert_eq!(report["layout"], "flyway");
    assert_eq!(
        report["tiers"],
        serde_json::json!(["V1__orders", "V2__seed", "V3__items", "V4__notify"])
    );
    // The same locations named on the command line.
    let t2 = tempdir();
    let locs: Vec<PathBuf> = ["migration_postgres", "migration_data", "migration_notify"]
        .iter()
        .map(|l| dir.join("db").join(l))
        .collect();
    let out = t2.path().join("src");
    let mut args = vec!["--json", "import", "--from", "flyway"];
    let locs_s: Vec<String> = locs.iter().map(|l| l.display().to_string()).collect();
    args.extend(locs_s.iter().map(String::as_str));
    args.extend(["--out", out.to_str().unwrap(), "--database", "x"]);
    let o = airlock(t2.path(), &args);
    expect_code(&o, 0);
    assert_eq!(json(&o)["tiers"], report["tiers"]);
    // A version found in two locations is refused, as Flyway refuses it; nothing written.
    std::fs::write(dir.join("db/migration_data/V1.0__again.sql"), "SELECT 1;\n").unwrap();
    let out2 = t2.path().join("dup");
    let o = airlock(
        t2.path(),
        &[
            "import",
            dir.to_str().unwrap(),
            "--out",
            out2.to_str().unwrap(),
            "--database",
            "x",
        ],
    );
    expect_code(&o, 2);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(
        err.contains("more than one migration with version 1.0") && err.contains("V1__orders.sql"),
        "{err}"
    );
    assert!(!out2.exists());
}

/// Atlas's `atlas.sum` for `files` (name, text), sorted by name: a running SHA-256 over
/// each name then bytes, base64, and the total over the lines (checked by hand against
/// a sum file `atlas migrate hash` wrote).
fn atlas_sum(files: &[(&str, &str)]) -> String {
    use base64::Engine;
    use sha2::{Digest, Sha256};
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let mut h = Sha256::new();
    let mut lines = vec![];
    for (n, text) in files {
        h.update(n.as_bytes());
        h.update(text.as_bytes());
        lines.push((n.to_string(), b64(&h.clone().finalize())));
    }
    let mut total = Sha256::new();
    for (n, hash) in &lines {
        total.update(n.as_bytes());
        total.update(hash.as_bytes());
    }
    let mut out = format!("h1:{}\n", b64(&total.finalize()));
    for (n, hash) in lines {
        out.push_str(&format!("{n} h1:{hash}\n"));
    }
    out
}

#[test]
fn an_atlas_history_is_checked_against_atlas_sum_and_an_edited_file_is_refused() {
    let t = tempdir();
    let files: &[(&str, &str)] = &[
        ("20240101000000_init.sql", "-- Create \"users\" table\nCREATE TABLE \"users\" (\"id\" bigserial NOT NULL, \"name\" text NOT NULL, PRIMARY KEY (\"id\"));\n"),
        ("20240201000000_email.sql", "-- Modify \"users\" table\nALTER TABLE \"users\" ADD COLUMN \"email\" text NULL;\n"),
    ];
    let dir = layout(&t.path().join("migrations"), files);
    std::fs::write(dir.join("atlas.sum"), atlas_sum(files)).unwrap();
    let report = import_apply_rollback(
        "atlas",
        &dir,
        &["20240101000000_init.sql", "20240201000000_email.sql"],
        &[],
    );
    assert_eq!(report["layout"], "atlas");
    assert_eq!(
        report["tiers"],
        serde_json::json!(["20240101000000_init", "20240201000000_email"])
    );
    // One byte changed after `atlas migrate hash`: refused, the file named, nothing written.
    std::fs::write(
        dir.join("20240201000000_email.sql"),
        "-- Modify \"users\" table\nALTER TABLE \"users\" ADD COLUMN \"email\" text NOT NULL;\n",
    )
    .unwrap();
    let (o, _) = import_human(t.path(), &dir, &[]);
    expect_code(&o, 2);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(
        err.contains("20240201000000_email.sql: checksum mismatch"),
        "{err}"
    );
    assert!(!t.path().join("src").exists());
}

/// Issue 69 item 5: Atlas in golang-migrate format sums only the `.up.sql` files (its
/// directory reads those as the migrations): such an `atlas.sum` is accepted, checked as
/// Atlas checks it, and the downs become the rollback.
#[test]
fn an_atlas_history_in_golang_migrate_format_is_checked_over_its_up_files() {
    let t = tempdir();
    let ups: &[(&str, &str)] = &[
        (
            "20240101000000_init.up.sql",
            "CREATE TABLE users (id bigserial PRIMARY KEY, name text NOT NULL);\n",
        ),
        (
            "20240201000000_email.up.sql",
            "ALTER TABLE users ADD COLUMN email text;\n",
        ),
    ];
    let downs: &[(&str, &str)] = &[
        ("20240101000000_init.down.sql", "DROP TABLE users;\n"),
        (
            "20240201000000_email.down.sql",
            "ALTER TABLE users DROP COLUMN email;\n",
        ),
    ];
    let dir = layout(&t.path().join("migrations"), ups);
    layout(&dir, downs);
    std::fs::write(dir.join("atlas.sum"), atlas_sum(ups)).unwrap();
    let report = import_apply_rollback(
        "atlasgm",
        &dir,
        &["20240101000000_init.up.sql", "20240201000000_email.up.sql"],
        &[
            "20240201000000_email.down.sql",
            "20240101000000_init.down.sql",
        ],
    );
    assert_eq!(report["layout"], "atlas");
    assert_eq!(
        report["tiers"],
        serde_json::json!(["20240101000000_init", "20240201000000_email"])
    );
    // An up file edited after `atlas migrate hash`: refused, named.
    std::fs::write(
        dir.join("20240201000000_email.up.sql"),
        "ALTER TABLE users ADD COLUMN email text NOT NULL;\n",
    )
    .unwrap();
    let (o, _) = import_human(t.path(), &dir, &[]);
    expect_code(&o, 2);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(
        err.contains("20240201000000_email.up.sql: checksum mismatch"),
        "{err}"
    );
    assert!(!t.path().join("src").exists());
}

#[test]
fn liquibase_formatted_sql_changesets_become_tiers_and_their_rollback_lines_the_rollback() {
    let t = tempdir();
    let dir = layout(
        &t.path().join("changelog"),
        &[
            ("001-schema.sql", "--liquibase formatted sql\n\n--changeset ann:1\nCREATE TABLE person (id int PRIMARY KEY, name text NOT NULL);\n--rollback DROP TABLE person;\n\n--changeset ann:2\nALTER TABLE person ADD COLUMN address text;\n/* liquibase rollback\nALTER TABLE person\n  DROP COLUMN address;\n*/\n\n--changeset bob:3 dbms:oracle\nCREATE TABLE only_oracle (id NUMBER);\n"),
            ("002-more.sql", "--liquibase formatted sql\n--changeset bob:4\nCREATE TABLE company (id int PRIMARY KEY);\n--rollback DROP TABLE company;\n--changeset bob:5\nCREATE INDEX person_name ON person (name);\n"),
            // What psql runs for the peer: the rollbacks, newest first.
            ("peer-down-4.txt", "DROP TABLE company;\n"),
            ("peer-down-2.txt", "ALTER TABLE person\n  DROP COLUMN address;\n"),
            ("peer-down-1.txt", "DROP TABLE person;\n"),
            ("peer-up-1.txt", "CREATE TABLE person (id int PRIMARY KEY, name text NOT NULL);\nALTER TABLE person ADD COLUMN address text;\n"),
        ],
    );
    let t2 = tempdir();
    let out = t2.path().join("src");
    let o = airlock(
        t2.path(),
        &[
            "--json",
            "import",
            dir.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--database",
            "x",
        ],
    );
    expect_code(&o, 0);
    let report = json(&o);
    assert_eq!(report["layout"], "liquibase");
    assert_eq!(
        report["tiers"],
        serde_json::json!(["ann:1", "ann:2", "bob:4", "bob:5"])
    );
    assert_eq!(report["no_down_script"], serde_json::json!(["bob:5"]));
    assert!(
        report["left_behind"].to_string().contains("dbms:oracle"),
        "{report}"
    );
    // The three `--rollback` texts, after the file that removes the DATABASECHANGELOG
    // rows the tiers write (issue 89, item 13: Liquibase kept in step).
    assert_eq!(
        report["rollback"],
        serde_json::json!([
            "sql/rollback/000_liquibase_history.sql",
            "sql/rollback/003_bob_4.sql",
            "sql/rollback/002_ann_2.sql",
            "sql/rollback/001_ann_1.sql"
        ]),
        "{report}"
    );
    // The peer's order through psql: the changesets for PostgreSQL (Liquibase runs
    // each as psql runs the file: its rollback lines are comments), then the rollbacks.
    let report = import_apply_rollback(
        "liquibase",
        &dir,
        &["peer-up-1.txt", "002-more.sql"],
        &["peer-down-4.txt", "peer-down-2.txt", "peer-down-1.txt"],
    );
    assert_eq!(report["tiers"].as_array().unwrap().len(), 4);
}

#[test]
fn concurrent_index_migrations_become_online_tiers_as_written_and_a_mixed_file_is_cut() {
    let t = tempdir();
    let dir = layout(
        &t.path().join("m"),
        &[
            ("1_t.up.sql", "CREATE TABLE t (id int PRIMARY KEY, a int);\n"),
            ("1_t.down.sql", "DROP TABLE t;\n"),
            ("2_idx.up.sql", "CREATE INDEX CONCURRENTLY t_a ON t (a);\n"),
            ("2_idx.down.sql", "DROP INDEX CONCURRENTLY t_a;\n"),
            ("3_mixed.up.sql", "ALTER TABLE t ADD COLUMN b int;\n-- the index, outside any transaction\nCREATE INDEX CONCURRENTLY t_b ON t (b);\nCOMMENT ON COLUMN t.b IS 'b';\n"),
        ],
    );
    let report = import_apply_rollback(
        "online",
        &dir,
        &["1_t.up.sql", "2_idx.up.sql", "3_mixed.up.sql"],
        &["1_t.down.sql"],
    );
    assert_eq!(
        report["tiers"],
        serde_json::json!(["1_t", "2_idx", "3_mixed.1", "3_mixed.2", "3_mixed.3"])
    );
    let files = report["files"].to_string();
    assert!(
        files.contains("an `online = true` tier, as written"),
        "{files}"
    );
    assert!(
        files.contains("part 2 of 3") && files.contains("runs online"),
        "{files}"
    );
    // The down script's DROP INDEX CONCURRENTLY cannot run in the rollback's
    // transaction, and `DROP TABLE t` (no IF EXISTS) keeps the rollback from running
    // online: left behind, saying which statement is in the way.
    let left = report["left_behind"].to_string();
    assert!(
        left.contains("2_idx.down.sql") && left.contains("1_t.down.sql:1"),
        "{left}"
    );
    assert_eq!(
        report["rollback_left_out"],
        serde_json::json!(["2_idx.down.sql"])
    );
}

#[test]
fn a_rollback_of_concurrent_drops_runs_online() {
    let t = tempdir();
    let dir = layout(
        &t.path().join("fw"),
        &[
            ("V1__t.sql", "CREATE TABLE t (id int PRIMARY KEY, a int);\n"),
            ("U1__t.sql", "DROP TABLE IF EXISTS t;\n"),
            ("V2__idx.sql", "CREATE INDEX CONCURRENTLY t_a ON t (a);\n"),
            ("U2__idx.sql", "DROP INDEX CONCURRENTLY IF EXISTS t_a;\n"),
        ],
    );
    let report = import_apply_rollback(
        "onlinerb",
        &dir,
        &["V1__t.sql", "V2__idx.sql"],
        &["U2__idx.sql", "U1__t.sql"],
    );
    // Both down scripts are the rollback (DROP INDEX CONCURRENTLY runs only outside a
    // transaction: the rollback above succeeded online).
    assert_eq!(report["rollback"].as_array().unwrap().len(), 2, "{report}");
}

/// `sqitch deploy --verify` runs each change's verify script right after that change:
/// a later change that renames what an earlier verify reads does not fail it.
#[test]
fn each_sqitch_verify_script_runs_after_its_own_change() {
    let t = tempdir();
    let dir = layout(
        &t.path().join("sqitch"),
        &[
            ("sqitch.plan", "%syntax-version=1.0.0\n%project=shop\n\nitems 2024-01-01T00:00:00Z Ann <ann@example.com> # Items.\nrename [items] 2024-01-02T00:00:00Z Ann <ann@example.com> # Items are products.\nseed [rename] 2024-01-03T00:00:00Z Ann <ann@example.com> # One product.\n"),
            ("deploy/items.sql", "BEGIN;\nCREATE TABLE items (id int PRIMARY KEY, label text);\nCOMMIT;\n"),
            ("deploy/rename.sql", "BEGIN;\nALTER TABLE items RENAME TO products;\nALTER TABLE products RENAME COLUMN label TO name;\nCOMMIT;\n"),
            ("deploy/seed.sql", "BEGIN;\nINSERT INTO products VALUES (1, 'one');\nCOMMIT;\n"),
            ("revert/seed.sql", "DELETE FROM products;\n"),
            ("revert/rename.sql", "ALTER TABLE products RENAME COLUMN name TO label;\nALTER TABLE products RENAME TO items;\n"),
            ("revert/items.sql", "DROP TABLE items;\n"),
            ("verify/items.sql", "BEGIN;\nSELECT id, label FROM items WHERE FALSE;\nROLLBACK;\n"),
            // Passes only before the seed: it divides by the products there are not.
            ("verify/rename.sql", "BEGIN;\nSELECT id, name FROM products WHERE FALSE;\nSELECT 1/(1 - count(*)) FROM products;\nROLLBACK;\n"),
            ("verify/seed.sql", "BEGIN;\nSELECT 1/count(*) FROM products WHERE name = 'one';\nROLLBACK;\n"),
        ],
    );
    let report = import_apply_rollback(
        "sqeach",
        &dir,
        &[
            "deploy/items.sql",
            "verify/items.sql",
            "deploy/rename.sql",
            "verify/rename.sql",
            "deploy/seed.sql",
            "verify/seed.sql",
        ],
        &["revert/seed.sql", "revert/rename.sql", "revert/items.sql"],
    );
    let files = report["files"].to_string();
    for v in ["items", "rename", "seed"] {
        assert!(
            files.contains(&format!("\"from\":\"verify/{v}.sql\"")),
            "{files}"
        );
    }
    assert!(
        !report["left_behind"].to_string().contains("verify/"),
        "{report}"
    );
}

#[test]
fn new_layouts_read_nothing_outside_the_folder() {
    let t = tempdir();
    let outside = outside_file(t.path());
    // A flyway.conf location out of the folder: refused, nothing written.
    let fw = layout(
        &t.path().join("fw"),
        &[
            ("V1__a.sql", "CREATE TABLE a (i int);\n"),
            (
                "flyway.conf",
                "flyway.locations=filesystem:.,filesystem:../elsewhere\n",
            ),
        ],
    );
    std::fs::create_dir_all(t.path().join("elsewhere")).unwrap();
    let (o, _) = import_human(t.path(), &fw, &[]);
    expect_code(&o, 2);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("outside the folder"),
        "{o:?}"
    );
    assert!(!t.path().join("src").exists());
    // A location that is a link: refused.
    std::fs::write(fw.join("flyway.conf"), "flyway.locations=filesystem:db\n").unwrap();
    std::os::unix::fs::symlink(t.path().join("elsewhere"), fw.join("db")).unwrap();
    let (o, _) = import_human(t.path(), &fw, &[]);
    expect_code(&o, 2);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("symbolic link"),
        "{o:?}"
    );
    assert!(!t.path().join("src").exists());
    // A Prisma migration folder that is a link, and a migration.sql that is one:
    // named, not read, and the import not OK.
    let pr = layout(
        &t.path().join("prisma"),
        &[
            ("migration_lock.toml", "provider = \"postgresql\"\n"),
            (
                "20240101000000_a/migration.sql",
                "CREATE TABLE a (i int);\n",
            ),
        ],
    );
    std::fs::create_dir_all(pr.join("20240303000000_c")).unwrap();
    std::os::unix::fs::symlink(&outside, pr.join("20240303000000_c/migration.sql")).unwrap();
    std::os::unix::fs::symlink(outside.parent().unwrap(), pr.join("20240202000000_b")).unwrap();
    let out = t.path().join("prisma-src");
    let o = airlock(
        t.path(),
        &[
            "--json",
            "import",
            pr.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--database",
            "x",
        ],
    );
    expect_code(&o, 2);
    let report = json(&o);
    let left = report["left_behind"].to_string();
    assert!(
        left.contains("20240202000000_b") && left.contains("20240303000000_c/migration.sql"),
        "{left}"
    );
    let problems = report["problems"].to_string();
    assert!(
        problems.contains("2 migration file(s) not read") && problems.contains("20240202000000_b"),
        "{problems}"
    );
    assert_nothing_from_outside(&out);
}

/// diesel orders by version as text with dashes dropped (crates.io mixes
/// `20170318181441_x` and `2017-09-23-182408_y`), reads a `metadata.toml` without
/// `run_in_transaction` as false, and a down script that does not parse is left out
/// of the rollback, named.
#[test]
fn diesel_orders_by_version_without_dashes_and_leaves_out_a_down_that_does_not_parse() {
    let t = tempdir();
    let dir = layout(
        &t.path().join("migrations"),
        &[
            (
                "20170318181441_a/up.sql",
                "CREATE TABLE a (id int PRIMARY KEY, v int);\n",
            ),
            (
                "20170318181441_a/down.sql",
                "DROP TABLE a\nDROP TABLE nothing;\n",
            ),
            (
                "2017-09-23-182408_b/up.sql",
                "ALTER TABLE a ADD COLUMN b int;\n",
            ),
            (
                "2017-09-23-182408_b/down.sql",
                "ALTER TABLE a DROP COLUMN b;\n",
            ),
            (
                "2018-01-01-000000_idx/up.sql",
                "CREATE INDEX CONCURRENTLY a_v ON a (v);\n",
            ),
            (
                "2018-01-01-000000_idx/metadata.toml",
                "# no key: diesel reads run_in_transaction = false\n",
            ),
            (".hidden/up.sql", "SELECT 1;\n"),
        ],
    );
    let report = import_apply_rollback(
        "dieselorder",
        &dir,
        &[
            "20170318181441_a/up.sql",
            "2017-09-23-182408_b/up.sql",
            "2018-01-01-000000_idx/up.sql",
        ],
        &[],
    );
    assert_eq!(
        report["tiers"],
        serde_json::json!([
            "20170318181441_a",
            "2017-09-23-182408_b",
            "2018-01-01-000000_idx"
        ])
    );
    let left = report["left_behind"].to_string();
    assert!(
        left.contains("20170318181441_a/down.sql") && left.contains("does not parse"),
        "{left}"
    );
    assert!(
        report["rollback_left_out"]
            .to_string()
            .contains("20170318181441_a/down.sql"),
        "{report}"
    );
    assert!(
        report["files"]
            .to_string()
            .contains("an `online = true` tier"),
        "{report}"
    );
}

/// A Temporal-style versioned schema folder: `vX.Y/manifest.json` naming each
/// version's files in the order they run.
fn temporal_manifest(version: &str, files: &[&str]) -> String {
    let files: Vec<String> = files.iter().map(|f| format!("\"{f}\"")).collect();
    format!(
        "{{\n  \"CurrVersion\": \"{version}\",\n  \"MinCompatibleVersion\": \"1.0\",\n  \"Description\": \"schema changes for {version}\",\n  \"SchemaUpdateCqlFiles\": [\n    {}\n  ]\n}}\n",
        files.join(",\n    ")
    )
}

#[test]
fn a_temporal_versioned_schema_folder_imports_by_version_in_its_manifests_order() {
    let t = tempdir();
    let dir = layout(
        &t.path().join("temporal/versioned"),
        &[
            ("v1.0/manifest.json", temporal_manifest("1.0", &["b_tables.sql", "a_index.sql"]).as_str()),
            ("v1.0/b_tables.sql", "CREATE TABLE namespaces (id bytea PRIMARY KEY, name text NOT NULL);\n"),
            ("v1.0/a_index.sql", "CREATE UNIQUE INDEX namespaces_name ON namespaces (name);\n"),
            ("v1.10/manifest.json", temporal_manifest("1.10", &["later.sql"]).as_str()),
            ("v1.10/later.sql", "ALTER TABLE namespaces ADD COLUMN notes text;\n"),
            ("v1.2/manifest.json", temporal_manifest("1.2", &["queue.sql"]).as_str()),
            ("v1.2/queue.sql", "CREATE TABLE queues (namespace_id bytea REFERENCES namespaces (id));\nALTER TABLE namespaces ADD COLUMN data bytea;\n"),
            ("v1.2/notes.txt", "not a migration\n"),
        ],
    );
    let report = import_apply_rollback(
        "temporal",
        &dir,
        &[
            "v1.0/b_tables.sql",
            "v1.0/a_index.sql",
            "v1.2/queue.sql",
            "v1.10/later.sql",
        ],
        &[],
    );
    assert_eq!(report["layout"], "temporal");
    assert_eq!(
        report["tiers"],
        serde_json::json!(["v1.0/b_tables", "v1.0/a_index", "v1.2/queue", "v1.10/later"])
    );
    // A file its manifest does not list is named as left behind.
    assert!(
        report["left_behind"].to_string().contains("v1.2/notes.txt"),
        "{report}"
    );
    // A manifest naming a file that is not there: refused by name, nothing written.
    let broken = layout(
        &t.path().join("broken"),
        &[(
            "v1.0/manifest.json",
            temporal_manifest("1.0", &["gone.sql"]).as_str(),
        )],
    );
    let (o, _) = import_human(t.path(), &broken, &[]);
    expect_code(&o, 2);
    assert!(stderr(&o).contains("v1.0/gone.sql"), "{}", stderr(&o));
    assert!(!t.path().join("src").exists());
}

#[test]
fn no_migrations_under_a_named_layout_does_not_say_to_name_the_layout() {
    let t = tempdir();
    let dir = layout(&t.path().join("empty"), &[("README.md", "nothing here\n")]);
    let (o, _) = import_human(t.path(), &dir, &["--from", "folder"]);
    expect_code(&o, 2);
    let err = stderr(&o);
    assert!(err.contains("no migrations found"), "{err}");
    assert!(!err.contains("name the layout with --from"), "{err}");
    assert!(err.contains("--from folder"), "{err}");
    assert!(!t.path().join("src").exists());
}

/// `airlock import MIGRATIONS --out OUT --database app EXTRA…` in `t`.
fn import_into(t: &Path, migrations: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "--json",
        "import",
        migrations.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--database",
        "app",
    ];
    args.extend_from_slice(extra);
    airlock(t, &args)
}

/// Issue 88, finding 9: importing again into an existing `--out` is a usage refusal
/// (exit 2) that names `--force`; with `--force` the new source replaces the old one
/// whole (built beside it, then exchanged in one rename), and an import that fails,
/// or a `--force` aimed at what is no source import wrote (a file, a link, a
/// directory without bundle.toml, the folder holding the migrations), changes nothing
/// and leaves nothing behind.
#[test]
fn import_replaces_an_existing_out_only_with_force_and_whole() {
    let t = tempdir();
    let root = t.path();
    let gm = layout(
        &root.join("gm"),
        &[
            ("1_users.up.sql", "CREATE TABLE users (id int);\n"),
            ("1_users.down.sql", "DROP TABLE users;\n"),
        ],
    );
    let out = root.join("release");
    expect_code(&import_into(root, &gm, &out, &[]), 0);
    let first = snapshot(&out);
    // Again, without --force: refused as usage, naming the way to replace it.
    write(
        &gm.join("2_name.up.sql"),
        "ALTER TABLE users ADD COLUMN name text;\n",
    );
    let o = import_into(root, &gm, &out, &[]);
    expect_code(&o, 2);
    let doc = json(&o);
    assert_eq!(doc["kind"], "usage", "{doc:#}");
    assert!(doc["hint"].as_str().unwrap().contains("--force"), "{doc:#}");
    assert_eq!(snapshot(&out), first);
    // With --force: the new source, whole, in its place.
    let o = import_into(root, &gm, &out, &["--force"]);
    expect_code(&o, 0);
    assert_eq!(
        json(&o)["tiers"].as_array().unwrap().len(),
        2,
        "{}",
        stdout(&o)
    );
    assert!(std::fs::read_to_string(out.join("bundle.toml"))
        .unwrap()
        .contains("2_name"));
    assert!(leftovers(root).is_empty(), "{:?}", leftovers(root));
    let second = snapshot(&out);
    // An import that fails with --force (sql-migrate's marker, which no layout
    // reads, is refused) keeps the old source as it was.
    write(&gm.join("3_bad.up.sql"), "-- +migrate Up\nSELECT 1;\n");
    let o = import_into(root, &gm, &out, &["--force"]);
    expect_code(&o, 2);
    assert_eq!(snapshot(&out), second);
    assert!(leftovers(root).is_empty(), "{:?}", leftovers(root));
    std::fs::remove_file(gm.join("3_bad.up.sql")).unwrap();
    // --force never replaces what import did not write.
    let mine = layout(&root.join("mine"), &[("notes.txt", "mine\n")]);
    let file = root.join("a-file");
    write(&file, "mine\n");
    let link = root.join("link");
    std::os::unix::fs::symlink(&out, &link).unwrap();
    let holder = root.join("holder");
    copy_dir(&out, &holder);
    copy_dir(&gm, &holder.join("migrations"));
    for (target, says) in [
        (&mine, "bundle.toml"),
        (&file, "not a directory"),
        (&link, "link"),
        (&holder, "migrations"),
    ] {
        let migrations = if target == &holder {
            holder.join("migrations")
        } else {
            gm.clone()
        };
        let before = snapshot(target);
        let o = import_into(root, &migrations, target, &["--force"]);
        expect_code(&o, 2);
        let doc = json(&o);
        assert!(
            doc["error"].as_str().unwrap().contains(says),
            "{}: {doc:#}",
            target.display()
        );
        assert_eq!(snapshot(target), before, "{}", target.display());
        assert!(leftovers(root).is_empty(), "{:?}", leftovers(root));
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "mine\n");
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    // The help teaches it.
    let help = stdout(&airlock(root, &["import", "--help"]));
    assert!(help.contains("--force"), "{help}");
}

/// Issue 88, finding 8: a down script left out of the rollback (its `DROP INDEX
/// CONCURRENTLY` cannot run in the rollback's transaction, and another down script keeps
/// the rollback from running online) is named by its own file and line, with one thing
/// to do; and import's verdict is not `lint: OK` (exit 2, `ok` false), since the
/// rollback it wrote leaves that index behind.
#[test]
fn a_concurrent_drop_left_out_of_the_rollback_is_named_by_its_own_file_and_import_is_not_ok() {
    let t = tempdir();
    let dir = t.path();
    let migrations = layout(
        &dir.join("m"),
        &[
            (
                "1_t.up.sql",
                "CREATE TABLE t (id int PRIMARY KEY, a int);\n",
            ),
            ("1_t.down.sql", "DROP TABLE IF EXISTS t;\n"),
            ("2_b.up.sql", "ALTER TABLE t ADD COLUMN b int;\n"),
            ("2_b.down.sql", "ALTER TABLE t DROP COLUMN b;\n"),
            ("3_idx.up.sql", "CREATE INDEX CONCURRENTLY t_a ON t (a);\n"),
            (
                "3_idx.down.sql",
                "-- the index\nDROP INDEX CONCURRENTLY t_a;\n",
            ),
        ],
    );
    let import = |out: &str, json: bool| {
        let mut args = vec![];
        if json {
            args.push("--json");
        }
        args.extend([
            "import",
            migrations.to_str().unwrap(),
            "--out",
            out,
            "--database",
            "app",
        ]);
        airlock(dir, &args)
    };
    let o = import("human", false);
    expect_code(&o, 2);
    let text = stdout(&o);
    let line = text
        .lines()
        .find(|l| l.starts_with("not brought over: 3_idx.down.sql"))
        .unwrap_or_else(|| panic!("{text}"));
    // Its own file and line is the reason; the other file only says why the rollback
    // is not online; one instruction, not lint's advice for an online tier.
    assert!(
        line.contains("3_idx.down.sql:2") && line.contains("DROP INDEX CONCURRENTLY"),
        "{line}"
    );
    assert!(line.contains("2_b.down.sql:1"), "{line}");
    assert!(!line.contains("transactional tier"), "{line}");
    assert!(!line.contains("online = true"), "{line}");
    assert_eq!(line.matches("run it by hand").count(), 1, "{line}");
    assert!(!text.contains("lint: OK"), "{text}");
    let verdict = text.lines().last().unwrap();
    assert!(
        verdict.contains("the rollback leaves out 1 down script(s): 3_idx.down.sql"),
        "{verdict}"
    );
    let o = import("json", true);
    expect_code(&o, 2);
    let report = json(&o);
    assert_eq!(report["ok"], false, "{report}");
    assert_eq!(report["problems"], serde_json::json!([]), "{report}");
    assert_eq!(
        report["rollback_left_out"],
        serde_json::json!(["3_idx.down.sql"]),
        "{report}"
    );
}
