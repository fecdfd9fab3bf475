//! Liquibase `preConditions` decided by `airlock import` for the target the bundle is
//! made for (issue 76, item 6): a Keycloak-sized changelog written here (hundreds of
//! changesets across included files, guarded by `onFail="MARK_RAN"` preconditions of
//! every kind Keycloak uses) imports with no edit on a fresh target (`--fresh-on`),
//! and on a database Liquibase migrated halfway (`--history`), and the bundle applied
//! gives the pg_dump of the real `liquibase update` (from npm). What cannot be
//! decided, or fails with HALT, is refused by name with nothing written.

mod util;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use util::*;

const HEAD: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<databaseChangeLog xmlns="http://www.liquibase.org/xml/ns/dbchangelog"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
    xsi:schemaLocation="http://www.liquibase.org/xml/ns/dbchangelog http://www.liquibase.org/xml/ns/dbchangelog/dbchangelog-4.20.xsd">
"#;

fn xml(body: &str) -> String {
    format!("{HEAD}{body}</databaseChangeLog>\n")
}

/// One included changelog of the generated history: part `k`, at `file`, about 36
/// changesets: tables created and created again under `not tableExists` (the second
/// marked ran), columns, indexes and foreign keys added under the matching `not …Exists`
/// guard, rows inserted under a `sqlCheck`, `and`/`or`/`not` with `dbms`, and
/// `changeSetExecuted` of a changeset that ran and of one that did not.
fn part(k: usize, file: &str) -> String {
    let mut s = String::new();
    let t = |x: &str| format!("P{k}_{x}");
    let cs = |s: &mut String, id: &str, pre: &str, body: &str| {
        let pre = if pre.is_empty() {
            String::new()
        } else {
            format!("\n    <preConditions onFail=\"MARK_RAN\">{pre}</preConditions>")
        };
        write!(
            s,
            "  <changeSet id=\"{k}-{id}\" author=\"kc\">{pre}\n    {body}\n  </changeSet>\n"
        )
        .unwrap();
    };
    for x in ["REALM", "CLIENT", "ROLE"] {
        let table = t(x);
        let create = format!("<createTable tableName=\"{table}\"><column name=\"ID\" type=\"VARCHAR(36)\"><constraints primaryKey=\"true\" primaryKeyName=\"PK_{table}\" nullable=\"false\"/></column><column name=\"NAME\" type=\"VARCHAR(255)\"/><column name=\"REALM_ID\" type=\"VARCHAR(36)\"/></createTable>");
        let absent = format!("<not><tableExists tableName=\"{table}\"/></not>");
        cs(&mut s, &format!("{x}-create"), &absent, &create);
        // The same guard again: the table is there now, Liquibase marks it ran.
        cs(&mut s, &format!("{x}-create-again"), &absent, &create);
        for col in ["ENABLED", "CREATED"] {
            let add = format!("<addColumn tableName=\"{table}\"><column name=\"{col}\" type=\"BOOLEAN\" defaultValueBoolean=\"false\"/></addColumn>");
            let pre =
                format!("<not><columnExists tableName=\"{table}\" columnName=\"{col}\"/></not>");
            cs(&mut s, &format!("{x}-{col}"), &pre, &add);
            cs(&mut s, &format!("{x}-{col}-again"), &pre, &add);
        }
        let idx = format!("IDX_{table}_NAME");
        let create_idx = format!("<createIndex tableName=\"{table}\" indexName=\"{idx}\"><column name=\"NAME\"/></createIndex>");
        let pre = format!("<not><indexExists tableName=\"{table}\" indexName=\"{idx}\"/></not>");
        cs(&mut s, &format!("{x}-idx"), &pre, &create_idx);
        cs(&mut s, &format!("{x}-idx-again"), &pre, &create_idx);
        let rows = format!("<insert tableName=\"{table}\"><column name=\"ID\" value=\"{k}-{x}\"/><column name=\"NAME\" value=\"{x} {k}\"/></insert>");
        let empty =
            format!("<sqlCheck expectedResult=\"0\">SELECT count(*) FROM {table}</sqlCheck>");
        cs(&mut s, &format!("{x}-seed"), &empty, &rows);
        cs(&mut s, &format!("{x}-seed-again"), &empty, &rows);
    }
    for x in ["CLIENT", "ROLE"] {
        let fk = format!("FK_{}_REALM", t(x));
        let add = format!("<addForeignKeyConstraint baseTableName=\"{}\" baseColumnNames=\"REALM_ID\" constraintName=\"{fk}\" referencedTableName=\"{}\" referencedColumnNames=\"ID\"/>", t(x), t("REALM"));
        let pre = format!("<not><foreignKeyConstraintExists foreignKeyName=\"{fk}\"/></not>");
        cs(&mut s, &format!("{x}-fk"), &pre, &add);
        cs(&mut s, &format!("{x}-fk-again"), &pre, &add);
    }
    // Logic and dbms: for PostgreSQL, or where the column is not yet there.
    let col = format!(
        "<addColumn tableName=\"{}\"><column name=\"NOTE\" type=\"TEXT\"/></addColumn>",
        t("REALM")
    );
    let pre = format!("<or><dbms type=\"oracle,mssql\"/><and><tableExists tableName=\"{}\"/><not><columnExists tableName=\"{}\" columnName=\"NOTE\"/></not></and></or>", t("REALM"), t("REALM"));
    cs(&mut s, "note", &pre, &col);
    cs(&mut s, "note-again", &pre, &col);
    cs(
        &mut s,
        "oracle-only",
        "<dbms type=\"oracle\"/>",
        &format!("<dropTable tableName=\"{}\"/>", t("ROLE")),
    );
    cs(
        &mut s,
        "postgres-only",
        "<dbms type=\"postgresql\"/>",
        &format!(
            "<createTable tableName=\"{}\"><column name=\"ID\" type=\"INT\"/></createTable>",
            t("PG")
        ),
    );
    // onFail CONTINUE skips it; WARN runs it anyway.
    for (id, on) in [("continue", "CONTINUE"), ("warn", "WARN")] {
        write!(s, "  <changeSet id=\"{k}-{id}\" author=\"kc\">\n    <preConditions onFail=\"{on}\"><tableExists tableName=\"NO_SUCH\"/></preConditions>\n    <createTable tableName=\"{}\"><column name=\"ID\" type=\"INT\"/></createTable>\n  </changeSet>\n", t(&id.to_ascii_uppercase())).unwrap();
    }
    // changeSetExecuted: of a changeset that ran, and of one that was marked ran.
    cs(&mut s, "after-realm", &format!("<changeSetExecuted id=\"{k}-REALM-create\" author=\"kc\" changeLogFile=\"{file}\"/>"),
        &format!("<createIndex tableName=\"{}\" indexName=\"IDX_{}_RID\"><column name=\"REALM_ID\"/></createIndex>", t("CLIENT"), t("CLIENT")));
    cs(
        &mut s,
        "never",
        &format!("<changeSetExecuted id=\"{k}-no-such\" author=\"kc\" changeLogFile=\"{file}\"/>"),
        &format!("<dropTable tableName=\"{}\"/>", t("CLIENT")),
    );
    cs(&mut s, "plain", "", &format!("<addColumn tableName=\"{}\"><column name=\"DESCRIPTION\" type=\"VARCHAR(255)\"/></addColumn>", t("ROLE")));
    s
}

/// The YAML part: one changeset marked ran (its table is there), one run (its
/// `sqlCheck` holds), one marked ran by `onError` (its `sqlCheck`'s SQL fails).
const YAML_PART: &str = "databaseChangeLog:
  - changeSet:
      id: y-1
      author: kc
      preConditions:
        - onFail: MARK_RAN
        - not:
            - tableExists:
                tableName: P1_REALM
      changes:
        - createTable:
            tableName: P1_REALM
            columns:
              - column:
                  name: ID
                  type: INT
  - changeSet:
      id: y-2
      author: kc
      preConditions:
        - onFail: MARK_RAN
        - sqlCheck:
            expectedResult: 1
            sql: SELECT count(*) FROM P1_REALM
      changes:
        - createTable:
            tableName: Y_TABLE
            columns:
              - column:
                  name: ID
                  type: INT
  - changeSet:
      id: y-3
      author: kc
      preConditions:
        - onError: MARK_RAN
        - sqlCheck:
            expectedResult: 0
            sql: SELECT count(*) FROM NO_SUCH_TABLE
      changes:
        - createTable:
            tableName: Y_ERRORED
            columns:
              - column:
                  name: ID
                  type: INT
";

/// A changelog of `parts` included files (about 40 changesets each) in `dir`.
fn history(dir: &Path, parts: usize) -> PathBuf {
    let root = dir.join("changelog");
    let mut master = String::new();
    for k in 1..=parts {
        let file = format!("changes/part-{k:02}.xml");
        write(&root.join(&file), &xml(&part(k, &file)));
        writeln!(
            master,
            "  <include file=\"{file}\" relativeToChangelogFile=\"true\"/>"
        )
        .unwrap();
    }
    // A YAML changelog too, its preconditions written Liquibase's YAML way.
    write(&root.join("changes/yaml.yaml"), YAML_PART);
    master.push_str("  <include file=\"changes/yaml.yaml\" relativeToChangelogFile=\"true\"/>\n");
    write(&root.join("master.xml"), &xml(&master));
    root
}

/// `liquibase ARGS…` on this test's changelog in `dir` against `db`: what it printed.
fn run_liquibase(dir: &Path, db: &TestDb, args: &[&str]) -> String {
    util::liquibase::run_liquibase(dir, "master.xml", db, args)
}

/// Where `--fresh-on` makes its throwaway database: the test server.
fn server() -> String {
    let host = std::env::var("PGHOST").unwrap_or_else(|_| "/var/run/postgresql".into());
    format!("host={host} port={} user=root dbname=postgres", pg_port())
}

fn import(
    dir: &Path,
    changelog: &Path,
    out: &Path,
    db: &str,
    extra: &[&str],
) -> std::process::Output {
    let mut args = vec![
        "--json",
        "import",
        changelog.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--database",
        db,
    ];
    args.extend_from_slice(extra);
    let child = airlock_spawn(dir, &args);
    let pid = child.id();
    let o = child.wait_with_output().expect("airlock import");
    // Whatever happened, the throwaway database it made (named after its pid) is gone.
    assert_eq!(throwaways(pid), 0, "the throwaway database is dropped");
    o
}

/// `target` (applied by airlock) as `peer` (by `liquibase update`): the real Liquibase
/// finds the same pending on both (its history kept in step, issue 89, item 13), and,
/// its own tables dropped, their pg_dumps are equal.
#[track_caller]
fn assert_as_liquibase_left_it(changelog: &Path, target: &TestDb, peer: &TestDb) {
    let status = |db: &TestDb| {
        run_liquibase(changelog, db, &["status", "--verbose"]).replace(&db.name, "DB")
    };
    assert_eq!(status(target), status(peer));
    target.exec("DROP TABLE databasechangelog, databasechangeloglock");
    peer.exec("DROP TABLE databasechangelog, databasechangeloglock");
    assert_eq!(
        target.dump_without_ledger(),
        peer.dump(),
        "liquibase update"
    );
}

fn apply(dir: &Path, out: &Path, db: &TestDb) {
    keygen(dir, "rm");
    pack(dir, out, "rm.key", "b.tar.gz");
    let o = airlock(
        dir,
        &["apply", "b.tar.gz", "--trust", "rm.pub", "--db", &db.conn()],
    );
    expect_code(&o, 0);
}

/// The throwaway databases the import of process `pid` left.
fn throwaways(pid: u32) -> i64 {
    let rows = admin()
        .query(
            "SELECT count(*) FROM pg_database WHERE datname LIKE $1",
            &[&format!("airlock_import_{pid}_%")],
        )
        .unwrap();
    rows[0].get(0)
}

#[test]
fn a_keycloak_sized_changelog_with_preconditions_imports_for_a_fresh_database_as_liquibase_runs_it()
{
    let t = tempdir();
    let dir = t.path();
    let changelog = history(dir, 8);
    let target = TestDb::new("lbpre");
    let peer = TestDb::new("lbprepeer");
    let out = dir.join("src");
    let o = import(
        dir,
        &changelog,
        &out,
        &target.name,
        &["--fresh-on", &server()],
    );
    expect_code(&o, 0);
    let report = json(&o);
    assert_eq!(report["problems"], serde_json::json!([]), "{report}");
    let decided = report["preconditions"].as_array().unwrap();
    let count = |what: &str| decided.iter().filter(|d| d["outcome"] == what).count();
    // Per part: 3 tables × (create, 2 columns, index, seed) and 2 FKs, `note`,
    // `postgres-only`, `after-realm` run; each guard's second copy, `oracle-only` and
    // `never` are marked ran.
    // And the YAML part's three: one run, two marked ran.
    assert_eq!(count("run"), 8 * (3 * 5 + 2 + 3) + 1, "{report}");
    assert_eq!(count("mark-ran"), 8 * (3 * 5 + 2 + 3) + 2, "{report}");
    assert_eq!((count("skipped"), count("run-warned")), (8, 8), "{report}");
    assert!(
        report["decided_on"]
            .as_str()
            .unwrap()
            .contains("fresh database"),
        "{report}"
    );
    let toml = std::fs::read_to_string(out.join("bundle.toml")).unwrap();
    assert!(
        toml.contains("kc:1-REALM-create-again") && toml.contains("mark-ran"),
        "{toml}"
    );
    assert!(toml.contains("public_relations"), "{toml}");
    apply(dir, &out, &target);
    run_liquibase(&changelog, &peer, &["update"]);
    // Liquibase's history kept in step (issue 89, item 13): Liquibase finds pending
    // on the database airlock applied what it finds after its own update (the
    // changesets CONTINUE skips, which it tries again).
    assert_as_liquibase_left_it(&changelog, &target, &peer);
}

#[test]
fn on_a_database_liquibase_migrated_halfway_only_the_changesets_it_lacks_are_imported() {
    let t = tempdir();
    let dir = t.path();
    let changelog = history(dir, 3);
    let target = TestDb::new("lbhalf");
    let peer = TestDb::new("lbhalfpeer");
    run_liquibase(&changelog, &target, &["update-count", "--count=50"]);
    let rows: usize = target
        .scalar("SELECT count(*) FROM databasechangelog")
        .parse()
        .unwrap();
    let out = dir.join("src");
    let o = import(
        dir,
        &changelog,
        &out,
        &target.name,
        &["--history", &target.conn(), "--fresh-on", &server()],
    );
    expect_code(&o, 0);
    let report = json(&o);
    let decided = report["preconditions"].as_array().unwrap();
    let before = decided
        .iter()
        .filter(|d| d["outcome"] == "applied" || d["outcome"] == "marked-ran")
        .count();
    // update-count 50 counts the changeset CONTINUE skipped, which has no row.
    assert!((45..=50).contains(&rows), "{rows}");
    assert_eq!(before, rows, "{report}");
    let tiers = report["tiers"].as_array().unwrap();
    assert!(
        !tiers
            .iter()
            .any(|t| t.as_str().unwrap().contains("kc:1-REALM-create")),
        "{tiers:?}"
    );
    assert!(
        tiers
            .iter()
            .any(|t| t.as_str().unwrap().contains("kc:3-plain")),
        "{tiers:?}"
    );
    apply(dir, &out, &target);
    run_liquibase(&changelog, &peer, &["update"]);
    // Liquibase's history kept in step (issue 89, item 13): on the database Liquibase
    // migrated halfway and airlock finished, Liquibase finds pending what it finds
    // after its own whole update.
    assert_as_liquibase_left_it(&changelog, &target, &peer);
}

/// Import of `body` (one changeset) is refused with `code`, naming each of `names`,
/// and writes nothing.
#[track_caller]
fn refused(body: &str, extra: &[&str], names: &[&str]) {
    let t = tempdir();
    let changelog = t.path().join("changelog");
    write(&changelog.join("master.xml"), &xml(body));
    let before = snapshot(&changelog);
    let out = t.path().join("src");
    let o = import(t.path(), &changelog, &out, "x", extra);
    expect_code(&o, 2);
    let err = stderr(&o) + &stdout(&o);
    for n in names {
        assert!(err.contains(n), "{n}: {err}");
    }
    assert!(!out.exists(), "{} was written", out.display());
    assert_eq!(snapshot(&changelog), before);
}

#[test]
fn a_precondition_that_halts_or_cannot_be_decided_or_is_unknown_is_refused_and_nothing_is_written()
{
    let fresh = server();
    let table = r#"<createTable tableName="t"><column name="a" type="int"/></createTable>"#;
    // HALT (the default) on a fresh database where the table is not there.
    refused(
        &format!(
            r#"<changeSet id="h" author="ann"><preConditions><tableExists tableName="missing"/></preConditions>{table}</changeSet>"#
        ),
        &["--fresh-on", &fresh],
        &[
            "master.xml:5",
            "ann:h",
            "tableExists public.missing: false",
            "HALT",
        ],
    );
    // No database to ask: refused naming the flags that give one.
    refused(
        &format!(
            r#"<changeSet id="n" author="ann"><preConditions onFail="MARK_RAN"><not><tableExists tableName="t"/></not></preConditions>{table}</changeSet>"#
        ),
        &[],
        &["ann:n", "tableExists public.t", "--fresh-on", "--history"],
    );
    // Who applies the bundle is not known at import.
    refused(
        &format!(
            r#"<changeSet id="r" author="ann"><preConditions><runningAs username="kc"/></preConditions>{table}</changeSet>"#
        ),
        &["--fresh-on", &fresh],
        &["ann:r", "runningAs", "login"],
    );
    // A condition import does not read.
    refused(
        &format!(
            r#"<changeSet id="u" author="ann"><preConditions><customPrecondition className="x.Y"/></preConditions>{table}</changeSet>"#
        ),
        &["--fresh-on", &fresh],
        &["ann:u", "customPrecondition"],
    );
}

#[test]
fn a_static_precondition_needs_no_database() {
    let t = tempdir();
    let changelog = t.path().join("changelog");
    write(
        &changelog.join("master.xml"),
        &xml(r#"<preConditions><dbms type="postgresql"/></preConditions>
<changeSet id="1" author="ann"><preConditions onFail="MARK_RAN"><dbms type="oracle"/></preConditions><createTable tableName="o"><column name="a" type="int"/></createTable></changeSet>
<changeSet id="2" author="ann"><preConditions><dbms type="postgresql, h2"/></preConditions><createTable tableName="p"><column name="a" type="int"/></createTable></changeSet>"#),
    );
    let out = t.path().join("src");
    let o = import(t.path(), &changelog, &out, "x", &[]);
    expect_code(&o, 0);
    let report = json(&o);
    assert_eq!(report["tiers"], serde_json::json!(["ann:2"]), "{report}");
    assert_eq!(
        report["preconditions"][0]["outcome"], "mark-ran",
        "{report}"
    );
    // The root changelog's own preConditions are decided before its first changeset.
    let why = report["preconditions"][0]["why"].as_str().unwrap();
    assert!(
        why.contains("the changelog's preConditions passed (dbms postgresql: true)"),
        "{why}"
    );
    // An included changelog's own are refused by name.
    write(
        &changelog.join("more.xml"),
        &xml(r#"<preConditions><dbms type="postgresql"/></preConditions>"#),
    );
    write(
        &changelog.join("master.xml"),
        &xml(r#"<include file="more.xml" relativeToChangelogFile="true"/>"#),
    );
    let o = import(t.path(), &changelog, &t.path().join("src2"), "x", &[]);
    expect_code(&o, 2);
    let said = stdout(&o) + &stderr(&o);
    assert!(
        said.contains("more.xml:5") && said.contains("preConditions"),
        "{said}"
    );
}

/// The items changelog of issue 89, item 9: a table and its rows (1), a check
/// constraint guarded by a `sqlCheck` about the rows with `onFail="MARK_RAN"` (2), and
/// a plain table (3).
fn items_changelog(dir: &Path) -> PathBuf {
    let changelog = dir.join("changelog");
    write(
        &changelog.join("master.xml"),
        &xml(
            r#"<changeSet id="1" author="ann"><createTable tableName="item"><column name="id" type="int"/><column name="weight_grams" type="int"/></createTable></changeSet>
<changeSet id="2" author="ann"><preConditions onFail="MARK_RAN"><sqlCheck expectedResult="0">SELECT count(*) FROM item WHERE weight_grams &lt; 0</sqlCheck></preConditions><sql>ALTER TABLE item ADD CONSTRAINT weight_positive CHECK (weight_grams &gt;= 0)</sql></changeSet>
<changeSet id="3" author="ann"><createTable tableName="shelf"><column name="id" type="int"/></createTable></changeSet>
"#,
        ),
    );
    changelog
}

/// Issue 89, item 9: a precondition about the data, on a database Liquibase migrated
/// halfway and the application filled, is decided on that database (read-only), as
/// the real Liquibase decides it there, not on an empty replay: the changeset whose
/// `sqlCheck` finds a negative weight is marked ran, not made a tier that fails.
#[test]
fn a_precondition_about_the_data_is_decided_on_the_target_not_on_an_empty_replay() {
    let t = tempdir();
    let dir = t.path();
    let changelog = items_changelog(dir);
    let target = TestDb::new("lbdata");
    let peer = TestDb::new("lbdatapeer");
    for db in [&target, &peer] {
        run_liquibase(&changelog, db, &["update-count", "--count=1"]);
        db.exec("INSERT INTO item VALUES (1, 250), (2, -5)");
    }
    let before = target.dump();
    let out = dir.join("src");
    // --fresh-on too: the replay is there, and still not what decides a sqlCheck.
    let o = import(
        dir,
        &changelog,
        &out,
        &target.name,
        &["--history", &target.conn(), "--fresh-on", &server()],
    );
    expect_code(&o, 0);
    assert_eq!(target.dump(), before, "import changed the target");
    let report = json(&o);
    let outcome = |id: &str| {
        report["preconditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["changeset"] == format!("ann:{id}"))
            .map(|d| d["outcome"].as_str().unwrap().to_string())
    };
    assert_eq!(outcome("2").as_deref(), Some("mark-ran"), "{report}");
    assert_eq!(report["tiers"], serde_json::json!(["ann:3"]), "{report}");
    assert!(
        report["decided_on"]
            .as_str()
            .unwrap()
            .contains("the target"),
        "{report}"
    );
    // The decision is about the moment import asked: the bundle's preflight asks the
    // sqlCheck again at apply. Mended data (Liquibase would now run changeset 2)
    // stops the apply, nothing changed.
    let toml = std::fs::read_to_string(out.join("bundle.toml")).unwrap();
    assert!(toml.contains("liquibase_sql_check_1 = \"false\""), "{toml}");
    target.exec("UPDATE item SET weight_grams = 5 WHERE id = 2");
    let changed = target.dump();
    keygen(dir, "early");
    pack(dir, &out, "early.key", "early.tar.gz");
    let o = airlock(
        dir,
        &[
            "apply",
            "early.tar.gz",
            "--trust",
            "early.pub",
            "--db",
            &target.conn(),
        ],
    );
    expect_code(&o, 5);
    assert!(
        (stderr(&o) + &stdout(&o)).contains("liquibase_sql_check_1"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        target.dump(),
        changed,
        "the refused apply changed the target"
    );
    target.exec("UPDATE item SET weight_grams = -5 WHERE id = 2");
    apply(dir, &out, &target);
    run_liquibase(&changelog, &peer, &["update"]);
    assert_as_liquibase_left_it(&changelog, &target, &peer);
}

/// A precondition about what a changeset earlier in the same import writes cannot be
/// answered by the target before that changeset has run: refused by name (exit 2),
/// nothing written, the target unchanged.
#[test]
fn a_precondition_about_rows_an_earlier_changeset_of_the_import_writes_is_refused() {
    let t = tempdir();
    let dir = t.path();
    let changelog = items_changelog(dir);
    let target = TestDb::new("lbsoon");
    // Liquibase ran nothing yet here but its own tables: changeset 1 creates `item`,
    // which changeset 2's sqlCheck reads.
    run_liquibase(&changelog, &target, &["update-count", "--count=0"]);
    let before = target.dump();
    let out = dir.join("src");
    let o = import(
        dir,
        &changelog,
        &out,
        &target.name,
        &["--history", &target.conn()],
    );
    expect_code(&o, 2);
    let err = stderr(&o) + &stdout(&o);
    for n in [
        "ann:2",
        "sqlCheck",
        "ann:1, earlier in this import",
        "import again with --history",
    ] {
        assert!(err.contains(n), "{n}: {err}");
    }
    assert!(!out.exists(), "{} was written", out.display());
    assert_eq!(target.dump(), before, "import changed the target");
}

/// A `sqlCheck` that calls a function a role of the target defines is not asked
/// (nothing a role defines runs while import decides): refused by name, nothing run
/// or written.
#[test]
fn a_sql_check_that_calls_a_roles_function_is_not_asked_on_the_target() {
    let t = tempdir();
    let dir = t.path();
    let changelog = dir.join("changelog");
    write(
        &changelog.join("master.xml"),
        &xml(
            r#"<changeSet id="1" author="ann"><createTable tableName="item"><column name="id" type="int"/></createTable></changeSet>
<changeSet id="2" author="ann"><preConditions onFail="MARK_RAN"><sqlCheck expectedResult="0">SELECT public.planted()</sqlCheck></preConditions><createTable tableName="shelf"><column name="id" type="int"/></createTable></changeSet>
"#,
        ),
    );
    let target = TestDb::new("lbplant");
    run_liquibase(&changelog, &target, &["update-count", "--count=1"]);
    target.exec(
        "CREATE TABLE public.planted_ran(at timestamptz);
         CREATE FUNCTION public.planted() RETURNS int LANGUAGE sql AS
           'INSERT INTO public.planted_ran VALUES (now()) RETURNING 0';",
    );
    let out = dir.join("src");
    let o = import(
        dir,
        &changelog,
        &out,
        &target.name,
        &["--history", &target.conn()],
    );
    expect_code(&o, 2);
    let err = stderr(&o) + &stdout(&o);
    for n in ["ann:2", "the target was not asked", "planted"] {
        assert!(err.contains(n), "{n}: {err}");
    }
    assert!(!out.exists(), "{} was written", out.display());
    assert_eq!(
        target.scalar("SELECT count(*)::text FROM public.planted_ran"),
        "0"
    );
}

/// A seed and a guarded repeat (Keycloak's shape): changeset 3's `sqlCheck` counts the
/// rows changeset 2, in the same import, inserts.
fn seeded_changelog(dir: &Path) -> PathBuf {
    let changelog = dir.join("changelog");
    let seed = r#"<insert tableName="item"><column name="id" value="1"/></insert>"#;
    let empty = r#"<preConditions onFail="MARK_RAN"><sqlCheck expectedResult="0">SELECT count(*) FROM item</sqlCheck></preConditions>"#;
    write(
        &changelog.join("master.xml"),
        &xml(&format!(
            r#"<changeSet id="1" author="ann"><createTable tableName="item"><column name="id" type="int"/></createTable></changeSet>
<changeSet id="2" author="ann">{seed}</changeSet>
<changeSet id="3" author="ann">{empty}{seed}</changeSet>
<changeSet id="4" author="ann"><createTable tableName="shelf"><column name="id" type="int"/></createTable></changeSet>
"#
        )),
    );
    changelog
}

/// Issue 89, item 9: a `sqlCheck` about rows a changeset earlier in the same import
/// writes is decided on the replay only when the table holds only this import's rows
/// (empty on the target and on the replay before the import), and the bundle's
/// preflight holds the target to that at apply: a row the application adds in between
/// stops the apply (exit 5, nothing changed). A table with rows on the target at
/// import is refused by name, nothing written.
#[test]
fn a_precondition_about_rows_the_import_writes_is_decided_on_the_replay_only_while_they_are_its_own(
) {
    let t = tempdir();
    let dir = t.path();
    let changelog = seeded_changelog(dir);
    let target = TestDb::new("lbown");
    let peer = TestDb::new("lbownpeer");
    for db in [&target, &peer] {
        run_liquibase(&changelog, db, &["update-count", "--count=1"]);
    }
    let out = dir.join("src");
    let history = ["--history", &target.conn(), "--fresh-on", &server()];
    let o = import(dir, &changelog, &out, &target.name, &history);
    expect_code(&o, 0);
    let report = json(&o);
    let outcome = |id: &str| {
        report["preconditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["changeset"] == format!("ann:{id}"))
            .map(|d| d["outcome"].as_str().unwrap().to_string())
    };
    assert_eq!(outcome("3").as_deref(), Some("mark-ran"), "{report}");
    assert_eq!(
        report["tiers"],
        serde_json::json!(["ann:2", "ann:4"]),
        "{report}"
    );
    let toml = std::fs::read_to_string(out.join("bundle.toml")).unwrap();
    assert!(
        toml.contains("rows_in_tables_assumed_empty = \"0\""),
        "{toml}"
    );
    // The application adds a row before the apply: the decision no longer holds.
    target.exec("INSERT INTO item VALUES (7)");
    let before = target.dump();
    keygen(dir, "rm");
    pack(dir, &out, "rm.key", "b.tar.gz");
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
    expect_code(&o, 5);
    assert!(
        (stderr(&o) + &stdout(&o)).contains("rows_in_tables_assumed_empty"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        target.dump(),
        before,
        "the refused apply changed the target"
    );
    // At import, such a row is refused by name.
    let out2 = dir.join("src2");
    let o = import(dir, &changelog, &out2, &target.name, &history);
    expect_code(&o, 2);
    let err = stderr(&o) + &stdout(&o);
    for n in [
        "ann:3",
        "public.item holds rows on the target",
        "import again with --history",
    ] {
        assert!(err.contains(n), "{n}: {err}");
    }
    assert!(!out2.exists(), "{} was written", out2.display());
    // Gone again: the bundle applies, and Liquibase agrees with its own update.
    target.exec("DELETE FROM item");
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
    expect_code(&o, 0);
    run_liquibase(&changelog, &peer, &["update"]);
    assert_as_liquibase_left_it(&changelog, &target, &peer);
}

/// Issue 89, item 11: `--fresh-on` naming a role that may not create databases is
/// refused saying so, with what to do (exit 2), and nothing is written.
#[test]
fn fresh_on_a_role_without_createdb_is_refused_with_what_to_do() {
    let t = tempdir();
    let role = format!("airlock_nocreatedb_{}", std::process::id());
    let mut a = admin();
    a.batch_execute(&format!(
        "DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN NOCREATEDB"
    ))
    .unwrap();
    let changelog = t.path().join("changelog");
    write(
        &changelog.join("master.xml"),
        &xml(
            r#"<changeSet id="1" author="ann"><preConditions onFail="MARK_RAN"><not><tableExists tableName="t"/></not></preConditions><createTable tableName="t"><column name="a" type="int"/></createTable></changeSet>"#,
        ),
    );
    let host = std::env::var("PGHOST").unwrap_or_else(|_| "/var/run/postgresql".into());
    let conn = format!("host={host} port={} user={role} dbname=postgres", pg_port());
    let out = t.path().join("src");
    let o = import(t.path(), &changelog, &out, "x", &["--fresh-on", &conn]);
    a.batch_execute(&format!("DROP ROLE {role}")).unwrap();
    expect_code(&o, 2);
    let err = stderr(&o) + &stdout(&o);
    for n in [
        "may not create databases",
        "CREATEDB",
        "nothing was written",
    ] {
        assert!(err.contains(n), "{n}: {err}");
    }
    assert!(!out.exists(), "{} was written", out.display());
}

/// `uniqueConstraintExists` (issue 89, item 3; Keycloak uses it), by name and by
/// columns, holding and not: decided on the fresh replay as the real Liquibase
/// decides it on its own update (the same schema, the same rows in its history).
#[test]
fn unique_constraint_exists_is_decided_as_liquibase_decides_it() {
    let t = tempdir();
    let dir = t.path();
    let changelog = dir.join("changelog");
    let table = |n: &str| {
        format!(r#"<createTable tableName="{n}"><column name="id" type="int"/></createTable>"#)
    };
    let cs = |id: &str, pre: &str, body: &str| {
        format!(
            r#"<changeSet id="{id}" author="ann"><preConditions onFail="MARK_RAN">{pre}</preConditions>{body}</changeSet>"#
        )
    };
    let body = [
        r#"<changeSet id="1" author="ann"><createTable tableName="T"><column name="A" type="int"/><column name="B" type="int"/></createTable><addUniqueConstraint tableName="T" columnNames="A, B" constraintName="UQ_T_AB"/></changeSet>"#.to_string(),
        cs("2", r#"<not><uniqueConstraintExists tableName="T" constraintName="UQ_T_AB"/></not>"#, r#"<addUniqueConstraint tableName="T" columnNames="A, B" constraintName="UQ_T_AB"/>"#),
        cs("3", r#"<not><uniqueConstraintExists tableName="T" columnNames="A, B"/></not>"#, &table("X1")),
        cs("4", r#"<uniqueConstraintExists tableName="T" constraintName="UQ_NOPE"/>"#, &table("X2")),
        cs("5", r#"<not><uniqueConstraintExists tableName="T" columnNames="B"/></not>"#, &table("X3")),
        cs("6", r#"<uniqueConstraintExists tableName="T" constraintName="UQ_T_AB" columnNames="A, B"/>"#, &table("X4")),
    ]
    .join("\n");
    write(&changelog.join("master.xml"), &xml(&body));
    let target = TestDb::new("lbuq");
    let peer = TestDb::new("lbuqpeer");
    let out = dir.join("src");
    let o = import(
        dir,
        &changelog,
        &out,
        &target.name,
        &["--fresh-on", &server()],
    );
    expect_code(&o, 0);
    let report = json(&o);
    let outcome = |id: &str| {
        report["preconditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["changeset"] == format!("ann:{id}"))
            .map(|d| d["outcome"].as_str().unwrap().to_string())
            .unwrap()
    };
    let outcomes: Vec<String> = ["2", "3", "4", "5", "6"]
        .iter()
        .map(|i| outcome(i))
        .collect();
    assert_eq!(
        outcomes,
        ["mark-ran", "mark-ran", "mark-ran", "run", "run"],
        "{report}"
    );
    apply(dir, &out, &target);
    run_liquibase(&changelog, &peer, &["update"]);
    let exec = |db: &TestDb| {
        db.scalar("SELECT string_agg(id || ' ' || exectype, ', ' ORDER BY orderexecuted) FROM databasechangelog")
    };
    assert_eq!(exec(&target), exec(&peer));
    assert_as_liquibase_left_it(&changelog, &target, &peer);
}

/// Issue 89, item 10: the second airlock release of a Liquibase history needs no hand
/// edit. `import --since` never asks an already-released changeset's preconditions
/// again, decides the new ones' schema checks on the replay, and writes no
/// fresh-database preflight (the target is the one the first release left, as apply's
/// continuation check holds it); a `sqlCheck` about rows, which the replay has not, is
/// refused by name, nothing written.
#[test]
fn a_second_release_of_a_liquibase_history_imports_with_no_edit() {
    let t = tempdir();
    let dir = t.path();
    let changelog = dir.join("changelog");
    let master = changelog.join("master.xml");
    let first = r#"<changeSet id="1" author="ann"><createTable tableName="item"><column name="id" type="int"/></createTable></changeSet>
<changeSet id="2" author="ann"><preConditions onFail="MARK_RAN"><not><tableExists tableName="shelf"/></not></preConditions><createTable tableName="shelf"><column name="id" type="int"/></createTable></changeSet>
"#;
    write(&master, &xml(first));
    let target = TestDb::new("lbsince");
    let peer = TestDb::new("lbsincepeer");
    let out = dir.join("src");
    expect_code(
        &import(
            dir,
            &changelog,
            &out,
            &target.name,
            &["--fresh-on", &server()],
        ),
        0,
    );
    apply(dir, &out, &target);
    target.exec("INSERT INTO item VALUES (1)");
    // The second release: a column under a schema precondition.
    let second = format!(
        r#"{first}<changeSet id="3" author="ann"><preConditions onFail="MARK_RAN"><not><columnExists tableName="item" columnName="note"/></not></preConditions><addColumn tableName="item"><column name="note" type="text"/></addColumn></changeSet>
"#
    );
    write(&master, &xml(&second));
    let since = [
        "--since",
        "b.tar.gz",
        "--trust",
        "rm.pub",
        "--bundle-version",
        "2",
        "--fresh-on",
        &server(),
    ];
    let out2 = dir.join("src2");
    let o = import(dir, &changelog, &out2, &target.name, &since);
    expect_code(&o, 0);
    let report = json(&o);
    let outcome = |id: &str| {
        report["preconditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["changeset"] == format!("ann:{id}"))
            .map(|d| d["outcome"].as_str().unwrap().to_string())
    };
    assert_eq!(outcome("2").as_deref(), Some("released"), "{report}");
    assert_eq!(outcome("3").as_deref(), Some("run"), "{report}");
    assert_eq!(report["tiers"], serde_json::json!(["ann:3"]), "{report}");
    let toml = std::fs::read_to_string(out2.join("bundle.toml")).unwrap();
    assert!(!toml.contains("public_relations"), "{toml}");
    pack(dir, &out2, "rm.key", "r2.tar.gz");
    let o = airlock(
        dir,
        &[
            "apply",
            "r2.tar.gz",
            "--trust",
            "rm.pub",
            "--db",
            &target.conn(),
        ],
    );
    expect_code(&o, 0);
    run_liquibase(&changelog, &peer, &["update"]);
    peer.exec("INSERT INTO item VALUES (1)");
    let status = |db: &TestDb| {
        run_liquibase(&changelog, db, &["status", "--verbose"]).replace(&db.name, "DB")
    };
    assert_eq!(status(&target), status(&peer));
    // A third with a precondition about rows: the replay has none of the target's.
    let third = format!(
        r#"{second}<changeSet id="4" author="ann"><preConditions onFail="MARK_RAN"><sqlCheck expectedResult="0">SELECT count(*) FROM item</sqlCheck></preConditions><createTable tableName="bin"><column name="id" type="int"/></createTable></changeSet>
"#
    );
    write(&master, &xml(&third));
    let out3 = dir.join("src3");
    let since = [
        "--since",
        "r2.tar.gz",
        "--trust",
        "rm.pub",
        "--bundle-version",
        "3",
        "--fresh-on",
        &server(),
    ];
    let o = import(dir, &changelog, &out3, &target.name, &since);
    expect_code(&o, 2);
    let err = stderr(&o) + &stdout(&o);
    for n in ["ann:4", "a release that follows another (--since)", "item"] {
        assert!(err.contains(n), "{n}: {err}");
    }
    assert!(!out3.exists(), "{} was written", out3.display());
}

/// The rows a `sqlCheck` reads may come, through the import's own changesets, from a
/// table two steps away (`t` filled from `mid`, `mid` from `src`): when `src` has rows
/// on the target, the replay (where it has none) cannot decide it: refused by name.
#[test]
fn a_precondition_whose_rows_come_from_the_targets_through_two_changesets_is_refused() {
    let t = tempdir();
    let dir = t.path();
    let changelog = dir.join("changelog");
    let table = |n: &str| {
        format!(r#"<createTable tableName="{n}"><column name="id" type="int"/></createTable>"#)
    };
    let sql = |id: &str, q: &str| {
        format!(r#"<changeSet id="{id}" author="ann"><sql>{q}</sql></changeSet>"#)
    };
    let body = [
        format!(r#"<changeSet id="1" author="ann">{}</changeSet>"#, table("src")),
        format!(r#"<changeSet id="2" author="ann">{}</changeSet>"#, table("mid")),
        sql("3", "INSERT INTO mid SELECT id FROM src"),
        format!(r#"<changeSet id="4" author="ann">{}</changeSet>"#, table("t")),
        sql("5", "INSERT INTO t SELECT id FROM mid"),
        format!(r#"<changeSet id="6" author="ann"><preConditions onFail="MARK_RAN"><sqlCheck expectedResult="0">SELECT count(*) FROM t</sqlCheck></preConditions>{}</changeSet>"#, table("bin")),
    ]
    .join("\n");
    write(&changelog.join("master.xml"), &xml(&body));
    let target = TestDb::new("lbchain");
    run_liquibase(&changelog, &target, &["update-count", "--count=1"]);
    target.exec("INSERT INTO src VALUES (1)");
    let before = target.dump();
    let out = dir.join("src");
    let o = import(
        dir,
        &changelog,
        &out,
        &target.name,
        &["--history", &target.conn(), "--fresh-on", &server()],
    );
    expect_code(&o, 2);
    let err = stderr(&o) + &stdout(&o);
    for n in ["ann:6", "public.src holds rows on the target"] {
        assert!(err.contains(n), "{n}: {err}");
    }
    assert!(!out.exists(), "{} was written", out.display());
    assert_eq!(target.dump(), before, "import changed the target");
}
