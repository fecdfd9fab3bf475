//! Issue 69, items 4–13: what `airlock import` (and what it leads to) got wrong on
//! real histories, each reproduced as a small faithful layout written for these tests.

mod util;
use std::path::Path;
use util::*;

/// `airlock --json import MIGRATIONS --out DIR/src --database DB EXTRA…`.
fn import(dir: &Path, migrations: &Path, database: &str, extra: &[&str]) -> std::process::Output {
    let out = dir.join("src");
    let mut args = vec![
        "--json",
        "import",
        migrations.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--database",
        database,
        "--bundle-version",
        "2024.1",
    ];
    args.extend_from_slice(extra);
    airlock(dir, &args)
}

/// Item 7: a table made by `CREATE TABLE … AS` is in the rollback probe, and a probe
/// that fails names the tables still there.
#[test]
fn the_rollback_probe_covers_create_table_as_and_names_the_tables_left() {
    let t = tempdir();
    let dir = t.path();
    let db = TestDb::new("ctas");
    let migrations = layout(
        &dir.join("migrations"),
        &[
            (
                "1_users.up.sql",
                "CREATE TABLE users (id int PRIMARY KEY, name text);\n",
            ),
            ("1_users.down.sql", "DROP TABLE users;\n"),
            (
                "2_copy.up.sql",
                "CREATE TABLE users_copy AS SELECT * FROM users;\n",
            ),
            // The down forgets the copy: the rollback must not say the database is back.
            ("2_copy.down.sql", "SELECT 1;\n"),
        ],
    );
    let o = import(dir, &migrations, &db.name, &[]);
    expect_code(&o, 0);
    let probe = std::fs::read_to_string(dir.join("src/sql/probe/rolled_back.sql")).unwrap();
    assert!(probe.contains("users_copy"), "{probe}");
    keygen(dir, "rm");
    pack(dir, &dir.join("src"), "rm.key", "b.tar.gz");
    let run = |cmd: &str| {
        airlock(
            dir,
            &[cmd, "b.tar.gz", "--trust", "rm.pub", "--db", &db.conn()],
        )
    };
    expect_code(&run("apply"), 0);
    let o = run("rollback");
    assert_ne!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let said = format!("{}{}", stdout(&o), stderr(&o));
    assert!(said.contains("users_copy"), "{said}");
    assert!(
        !said.contains("users,"),
        "only the table left is named: {said}"
    );
    assert_eq!(
        db.scalar("SELECT to_regclass('users_copy') IS NOT NULL"),
        "t"
    );
}

/// Item 4: import writes no name its own lint refuses: a migration folder name past
/// ustar's 100 bytes (Hasura's `<version>_<long description>/up.sql`) is shortened,
/// each still unique, with the mapping in the report; a folder named `Migrations`
/// gives the bundle its project's name.
#[test]
fn import_writes_only_names_lint_accepts() {
    let t = tempdir();
    let dir = t.path();
    let long_a = format!("1600000000001_create_table_public_{}", "a".repeat(120));
    let long_b = format!("1600000000002_create_table_public_{}", "a".repeat(120));
    let migrations = layout(
        &dir.join("Shop.Api/Migrations"),
        &[
            (&format!("{long_a}/up.sql"), "CREATE TABLE a (id int);\n"),
            (&format!("{long_a}/down.sql"), "DROP TABLE a;\n"),
            (&format!("{long_b}/up.sql"), "CREATE TABLE b (id int);\n"),
            (&format!("{long_b}/down.sql"), "DROP TABLE b;\n"),
        ],
    );
    let o = import(dir, &migrations, "shop", &["--from", "diesel"]);
    expect_code(&o, 0);
    let report = json(&o);
    assert_eq!(report["problems"], serde_json::json!([]), "{report:#}");
    let toml = std::fs::read_to_string(dir.join("src/bundle.toml")).unwrap();
    assert!(toml.contains("name = \"shop.api\""), "{toml}");
    // Every file written fits, and the report maps each migration to it.
    let files = report["files"].as_array().unwrap();
    assert_eq!(files.len(), 4, "{report:#}");
    let mut tos: Vec<&str> = files.iter().map(|f| f["to"].as_str().unwrap()).collect();
    for to in &tos {
        assert!(to.rsplit('/').next().unwrap().len() <= 100, "{to}");
    }
    tos.sort();
    tos.dedup();
    assert_eq!(tos.len(), 4, "{report:#}");
    assert!(
        files
            .iter()
            .any(|f| f["from"].as_str().unwrap().contains(&long_b)),
        "{report:#}"
    );
    expect_code(
        &airlock(dir, &["lint", dir.join("src").to_str().unwrap()]),
        0,
    );
}

/// Item 9: Flyway with several locations (docs/sql.md's example, plus a Java and a
/// Kotlin migration): every file is listed in exactly one place of the report, and the
/// code migrations are named as not brought over, with what that means.
#[test]
fn a_flyway_multi_location_report_lists_every_file_once() {
    let t = tempdir();
    let dir = t.path();
    let fw = layout(
        &dir.join("fw-multi"),
        &[
            (
                "db/migration/V1__orders.sql",
                "CREATE TABLE orders (id int PRIMARY KEY);\n",
            ),
            ("db/data/V2__seed.sql", "INSERT INTO orders VALUES (1);\n"),
            (
                "db/migration/V3__note.sql",
                "ALTER TABLE orders ADD COLUMN note text;\n",
            ),
            (
                "db/migration/V4__backfill.java",
                "public class V4__backfill {}\n",
            ),
            ("db/data/V5__more.kt", "class V5__more\n"),
            (
                "flyway.conf",
                "flyway.locations=filesystem:db/migration,filesystem:db/data\n",
            ),
        ],
    );
    let every = [
        "V1__orders.sql",
        "V2__seed.sql",
        "V3__note.sql",
        "V4__backfill.java",
        "V5__more.kt",
    ];
    let check = |report: &serde_json::Value| {
        let mut places: Vec<String> = vec![];
        for f in report["files"].as_array().unwrap() {
            places.push(
                f["from"]
                    .as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .to_string(),
            );
        }
        for l in report["left_behind"].as_array().unwrap() {
            places.push(
                l["file"]
                    .as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .to_string(),
            );
        }
        for f in every {
            assert_eq!(
                places.iter().filter(|p| *p == f).count(),
                1,
                "{f}: {report:#}"
            );
        }
        let left = report["left_behind"].to_string();
        assert!(
            left.contains("Java") && left.contains("Kotlin"),
            "{report:#}"
        );
    };
    let o = airlock(
        dir,
        &[
            "--json",
            "import",
            "fw-multi",
            "--out",
            "r1",
            "--database",
            "x",
        ],
    );
    expect_code(&o, 0);
    check(&json(&o));
    let o = airlock(
        dir,
        &[
            "--json",
            "import",
            "--from",
            "flyway",
            fw.join("db/migration").to_str().unwrap(),
            fw.join("db/data").to_str().unwrap(),
            "--out",
            "r2",
            "--database",
            "x",
        ],
    );
    expect_code(&o, 0);
    check(&json(&o));
}

/// Item 10: a history that alters the peer tool's own table (golang-migrate's
/// `schema_migrations`) fails on a fresh database, where airlock never makes that
/// table: import warns, naming the table, the tool and the file.
#[test]
fn a_history_that_alters_the_peers_own_table_is_named() {
    let t = tempdir();
    let dir = t.path();
    let migrations = layout(
        &dir.join("migrations"),
        &[
            ("1_init.up.sql", "CREATE TABLE t (id int);\n"),
            ("1_init.down.sql", "DROP TABLE t;\n"),
            ("2_mark.up.sql", "ALTER TABLE t ADD COLUMN n int;\nALTER TABLE public.schema_migrations ADD COLUMN note text;\n"),
            ("2_mark.down.sql", "ALTER TABLE t DROP COLUMN n;\n"),
        ],
    );
    let o = import(dir, &migrations, "x", &[]);
    expect_code(&o, 0);
    let report = json(&o);
    let warnings = report["warnings"].to_string();
    assert!(
        warnings.contains("schema_migrations")
            && warnings.contains("golang-migrate")
            && warnings.contains("2_mark"),
        "{report:#}"
    );
    let human = stdout(&airlock(
        dir,
        &[
            "import",
            migrations.to_str().unwrap(),
            "--out",
            "again",
            "--database",
            "x",
        ],
    ));
    assert!(human.contains("schema_migrations"), "{human}");
    // A history that makes such a table itself is not warned about.
    let own = layout(
        &dir.join("own"),
        &[
            ("1_init.up.sql", "CREATE TABLE schema_migrations (v int);\n"),
            (
                "2_more.up.sql",
                "ALTER TABLE schema_migrations ADD COLUMN note text;\n",
            ),
        ],
    );
    let o = airlock(
        dir,
        &[
            "--json",
            "import",
            own.to_str().unwrap(),
            "--out",
            "own-src",
            "--database",
            "x",
        ],
    );
    expect_code(&o, 0);
    assert!(
        !json(&o)["warnings"]
            .to_string()
            .contains("schema_migrations"),
        "{}",
        stdout(&o)
    );
}

/// Item 13: a project's template placeholders in `$%NAME%$` form (a chat server's
/// `$%AUTO_INCREMENT_PRIMARY_KEY%$`) are rendered from `--option NAME=VALUE`, as pop's
/// are; one with no value given is refused, named, and nothing is written.
#[test]
fn dollar_percent_placeholders_take_option_values_or_are_refused_by_name() {
    let t = tempdir();
    let dir = t.path();
    let migrations = layout(
        &dir.join("schema"),
        &[(
            "01_users.sql",
            "CREATE TABLE users (id $%AUTO_INCREMENT_PRIMARY_KEY%$, name text);\n",
        )],
    );
    let o = import(dir, &migrations, "x", &[]);
    expect_code(&o, 2);
    assert!(
        stdout(&o).contains("$%AUTO_INCREMENT_PRIMARY_KEY%$")
            && stdout(&o).contains("01_users.sql"),
        "{}",
        stdout(&o)
    );
    assert!(!dir.join("src").exists());
    let o = import(
        dir,
        &migrations,
        "x",
        &[
            "--option",
            "AUTO_INCREMENT_PRIMARY_KEY=bigserial PRIMARY KEY",
        ],
    );
    expect_code(&o, 0);
    let written = std::fs::read_to_string(dir.join("src/sql/tiers/001_01_users.sql")).unwrap();
    assert_eq!(
        written,
        "CREATE TABLE users (id bigserial PRIMARY KEY, name text);\n"
    );
    assert!(
        json(&o)["files"]
            .to_string()
            .contains("AUTO_INCREMENT_PRIMARY_KEY"),
        "{}",
        stdout(&o)
    );
}
