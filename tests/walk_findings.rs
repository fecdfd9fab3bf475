//! Smaller findings of the new-user walks (issue 75, part 5), each through the binary.

mod util;
use util::*;

/// `plan` printed an empty "grants the gate role … needs" header for a bundle whose
/// gates read nothing that needs a grant.
#[test]
fn plan_prints_no_empty_gate_grants_header() {
    let t = keyed_dir();
    let dir = t.path();
    let db = TestDb::new("nogrants");
    let b = mini_bundle(
        dir,
        &db.name,
        "b.tar.gz",
        "SELECT true AS ready",
        &[("one", "CREATE TABLE t (i int);\n", false)],
        "DROP TABLE IF EXISTS t;\n",
    );
    let o = airlock(dir, &["plan", &b, "--trust", "rm.pub", "--db", &db.conn()]);
    expect_code(&o, 0);
    let out = stdout(&o);
    assert!(!out.contains("grants the gate role"), "{out}");
}

/// `status` said "from --db or AIRLOCK_DB" when the database came from `airlock.toml`.
#[test]
fn status_says_the_database_came_from_the_project_file() {
    let t = tempdir();
    let db = TestDb::new("dbfrom");
    std::fs::write(
        t.path().join("airlock.toml"),
        format!("db = {:?}\n", db.conn()),
    )
    .unwrap();
    let o = airlock(t.path(), &["--json", "status"]);
    expect_code(&o, 0);
    let v = json(&o);
    let from = v["database_from"].as_str().unwrap();
    assert!(from.starts_with("db in airlock.toml ("), "{v:#}");
    let o = airlock(t.path(), &["status"]);
    expect_code(&o, 0);
    assert!(
        stdout(&o).contains("from db in airlock.toml ("),
        "{}",
        stdout(&o)
    );
    // A flag still wins, and says so.
    let o = airlock(t.path(), &["--json", "status", "--db", &db.conn()]);
    expect_code(&o, 0);
    assert_eq!(json(&o)["database_from"], "--db or AIRLOCK_DB");
}

/// `rehearse` on a login `airlock setup` made without `--createdb` failed on
/// PostgreSQL's "permission denied to create database", and `--json` carried neither
/// the error nor what to do: both say `airlock setup --createdb` now.
#[test]
fn rehearse_without_createdb_says_airlock_setup_createdb_in_text_and_json() {
    let t = keyed_dir();
    let dir = t.path();
    let db = TestDb::new("nocreatedb");
    let login = role_name("nocdb");
    let owner = role_name("nocdb_owner");
    let _roles = DropRoles(vec![login.clone(), owner.clone()]);
    admin()
        .batch_execute(&format!(
            "CREATE ROLE {owner} LOGIN; ALTER DATABASE \"{}\" OWNER TO {owner};",
            db.name
        ))
        .unwrap();
    let o = airlock(dir, &["setup", "--db", &db.conn(), "--login", &login]);
    expect_code(&o, 0);
    let conn = format!("dbname={} user={login}", db.name);
    let b = mini_bundle(
        dir,
        &db.name,
        "b.tar.gz",
        "SELECT true AS ready",
        &[("one", "CREATE TABLE t (i int);\n", false)],
        "DROP TABLE IF EXISTS t;\n",
    );
    let args = [
        "rehearse", &b, "--param", "code=x", "--trust", "rm.pub", "--db", &conn,
    ];
    let o = airlock(dir, &args);
    let said = format!("{}{}", stdout(&o), stderr(&o));
    assert_ne!(code(&o), 0, "{said}");
    assert!(said.contains("CREATEDB"), "{said}");
    assert!(
        said.contains("airlock setup --db") && said.contains("--createdb"),
        "{said}"
    );
    let mut with_json = vec!["--json"];
    with_json.extend(args);
    let o = airlock(dir, &with_json);
    assert_ne!(code(&o), 0);
    let v = json(&o);
    let text = v.to_string();
    assert!(text.contains("CREATEDB"), "{v:#}");
    assert!(
        v["error"].as_str().is_some_and(|e| e.contains("CREATEDB")),
        "{v:#}"
    );
    assert!(
        v["hint"].as_str().is_some_and(|h| h.contains("--createdb")),
        "{v:#}"
    );
}

/// rehearse's "tables the release changes" listed a table under every tier, changed
/// or not, and each lock line said "rows not yet counted": a table is listed under
/// the tiers that changed it (one that none changed, once), the missing count said
/// once.
#[test]
fn rehearse_lists_a_table_under_the_tiers_that_change_it_and_says_rows_not_counted_once() {
    let t = keyed_dir();
    let dir = t.path();
    let db = TestDb::new("measuredonce");
    db.exec(
        "CREATE TABLE public.t (i int); INSERT INTO public.t VALUES (1), (2); \
         CREATE TABLE public.w (i int)",
    );
    let b = mini_bundle(
        dir,
        &db.name,
        "b.tar.gz",
        "SELECT true AS ready",
        &[
            ("one", "INSERT INTO public.t VALUES (3);\n", false),
            (
                "two",
                "UPDATE public.w SET i = i WHERE false;\nALTER TABLE public.w ADD COLUMN j int;\n",
                false,
            ),
            ("three", "DELETE FROM public.t WHERE i = 1;\n", false),
            (
                "four",
                "UPDATE public.w SET i = 1 WHERE false;\nALTER TABLE public.t ADD COLUMN k int;\n",
                false,
            ),
        ],
        "ALTER TABLE public.t DROP COLUMN IF EXISTS k;\nALTER TABLE public.w DROP COLUMN IF EXISTS j;\n",
    );
    let o = airlock(
        dir,
        &[
            "rehearse",
            &b,
            "--param",
            "code=x",
            "--trust",
            "rm.pub",
            "--db",
            &db.conn(),
        ],
    );
    let out = stdout(&o);
    let measured = out
        .split("tables the release changes")
        .nth(1)
        .unwrap_or_else(|| panic!("no measured tables:\n{out}{}", stderr(&o)));
    let measured = measured.split("\n\n").next().unwrap();
    let t_lines = measured.lines().filter(|l| l.contains("public.t ")).count();
    assert_eq!(
        t_lines, 2,
        "public.t under tiers one and three only:\n{measured}"
    );
    let w_lines: Vec<&str> = measured
        .lines()
        .filter(|l| l.contains("public.w"))
        .collect();
    assert_eq!(w_lines.len(), 1, "public.w once:\n{measured}");
    assert!(w_lines[0].contains("unchanged"), "{measured}");
    assert_eq!(
        out.matches("rows not yet counted").count(),
        1,
        "said once:\n{out}"
    );
}

/// `status` at 80 columns joined the applied tiers with bare commas: one word the
/// terminal split mid-name and that overflowed the line; they wrap at spaces now.
#[test]
fn status_at_80_columns_wraps_the_tiers_at_spaces() {
    let t = keyed_dir();
    let dir = t.path();
    let db = TestDb::new("status80");
    let names: Vec<(String, String)> = (1..=6)
        .map(|i| {
            (
                format!("customer_email_normalization_step_{i}"),
                format!("CREATE TABLE t{i} (i int);\n"),
            )
        })
        .collect();
    let tiers: Vec<(&str, &str, bool)> = names
        .iter()
        .map(|(n, sql)| (n.as_str(), sql.as_str(), false))
        .collect();
    let b = mini_bundle(
        dir,
        &db.name,
        "b.tar.gz",
        "SELECT true AS ready",
        &tiers,
        "SELECT 1;\n",
    );
    let conn = db.conn();
    let o = airlock(
        dir,
        &[
            "apply", &b, "--param", "code=x", "--yes", "--trust", "rm.pub", "--db", &conn,
        ],
    );
    expect_code(&o, 0);
    let o = airlock_tty_sized(
        dir,
        &["status", "--db", &conn, "--color", "never"],
        "",
        Some(80),
    );
    let shown = stdout(&o).replace('\r', "");
    expect_code(&o, 0);
    assert!(
        shown.lines().all(|l| l.chars().count() <= 80),
        "a line wider than 80:\n{shown}"
    );
    for (name, _) in &names {
        assert!(shown.contains(name.as_str()), "{name} split:\n{shown}");
    }
}

/// The "settings from airlock.toml" line on stderr was one long line on an 80-column
/// terminal, split by the terminal wherever it reached the edge; it wraps at spaces.
#[test]
fn the_project_file_line_wraps_at_spaces_on_a_terminal() {
    let t = tempdir();
    let deep = t.path().join("release_project");
    std::fs::create_dir_all(&deep).unwrap();
    let db = TestDb::new("projline");
    std::fs::write(deep.join("airlock.toml"), format!("db = {:?}\n", db.conn())).unwrap();
    let o = airlock_tty_sized(&deep, &["status", "--color", "never"], "", Some(80));
    let shown = stdout(&o).replace('\r', "");
    expect_code(&o, 0);
    let first = shown.lines().next().unwrap_or_default();
    assert!(first.starts_with("settings from airlock.toml"), "{shown}");
    assert!(
        shown.lines().all(|l| l.chars().count() <= 80),
        "a line wider than 80:\n{shown}"
    );
    assert!(
        shown.contains("db (a flag"),
        "the wrapped line keeps its words:\n{shown}"
    );
}

/// Usage showed `--trust <PATH>` as required where airlock.toml supplies it.
#[test]
fn usage_shows_trust_as_optional_when_airlock_toml_supplies_it() {
    let t = keyed_dir();
    let dir = t.path();
    let usage = |args: &[&str]| {
        let o = airlock(dir, args);
        expect_code(&o, 0);
        let help = stdout(&o);
        let line = help
            .lines()
            .find(|l| l.starts_with("Usage:"))
            .unwrap_or_default();
        line.to_string()
    };
    for cmd in ["verify", "plan", "rehearse"] {
        let before = usage(&[cmd, "--help"]);
        assert!(before.contains(" --trust <PATH> "), "{before}");
    }
    std::fs::write(dir.join("airlock.toml"), "trust = \"rm.pub\"\n").unwrap();
    for cmd in ["verify", "plan", "rehearse"] {
        let after = usage(&[cmd, "--help"]);
        assert!(!after.contains("--trust"), "{after}");
        assert!(after.contains("[OPTIONS] <BUNDLE>"), "{after}");
    }
    // And it is still read from there.
    let o = airlock(dir, &["verify", "nothing.tar.gz"]);
    assert!(!stderr(&o).contains("required"), "{}", stderr(&o));
}

/// A Liquibase import was named after its folder (`liquibase`) and versioned `1`, and
/// the changeset holding only `tagDatabase` became an empty tier approvers read: the
/// name comes from the project above `liquibase/`, the version from the last tag (a
/// flag still wins), and the tag-only changeset is no tier, said in the report.
#[test]
fn a_liquibase_import_is_named_by_its_project_versioned_by_its_tag_and_writes_no_empty_tier() {
    let t = tempdir();
    let changelog = t.path().join("shop").join("liquibase");
    std::fs::create_dir_all(&changelog).unwrap();
    std::fs::write(
        changelog.join("db.changelog-master.xml"),
        r#"<?xml version="1.0" encoding="UTF-8"?>
<databaseChangeLog xmlns="http://www.liquibase.org/xml/ns/dbchangelog">
  <changeSet id="1" author="ann">
    <createTable tableName="customer"><column name="id" type="bigint"/></createTable>
  </changeSet>
  <changeSet id="release-1" author="ann">
    <tagDatabase tag="v1.0"/>
  </changeSet>
</databaseChangeLog>
"#,
    )
    .unwrap();
    let src = changelog.display().to_string();
    let o = airlock(
        t.path(),
        &[
            "--json",
            "import",
            &src,
            "--out",
            "out",
            "--database",
            "shop",
        ],
    );
    expect_code(&o, 0);
    let v = json(&o);
    assert_eq!(v["tiers"].as_array().unwrap().len(), 1, "{v:#}");
    let left = v["left_behind"].to_string();
    assert!(
        left.contains("release-1") && left.contains("tagDatabase"),
        "{v:#}"
    );
    let toml = std::fs::read_to_string(t.path().join("out/bundle.toml")).unwrap();
    assert!(toml.contains("name = \"shop\""), "{toml}");
    assert!(toml.contains("version = \"v1.0\""), "{toml}");
    // The human report says it too.
    let o = airlock(
        t.path(),
        &[
            "import",
            &src,
            "--out",
            "out2",
            "--database",
            "shop",
            "--name",
            "orders",
            "--bundle-version",
            "2.0.0",
        ],
    );
    expect_code(&o, 0);
    assert!(stdout(&o).contains("not brought over"), "{}", stdout(&o));
    let toml = std::fs::read_to_string(t.path().join("out2/bundle.toml")).unwrap();
    assert!(toml.contains("name = \"orders\""), "{toml}");
    assert!(toml.contains("version = \"2.0.0\""), "{toml}");
}
