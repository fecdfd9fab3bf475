//! Liquibase XML and YAML changelogs as an import layout (issue 69): a changelog as a
//! Java service keeps it (an XML master including a YAML changelog and a folder
//! through `includeAll`, an `sqlFile`, a `<rollback>` block, a changeset run outside a
//! transaction) imports with no edit, and the bundle applied gives the schema and
//! data Liquibase itself gives (the real tool, from npm: `scripts/liquibase-npm`),
//! compared by `airlock fingerprint --data`. What import cannot evaluate
//! (preconditions, contexts, an unknown change) is refused naming the changeset and
//! the file, with nothing written.

mod util;
use std::path::{Path, PathBuf};
use std::process::Command;
use util::*;

const HEAD: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<databaseChangeLog xmlns="http://www.liquibase.org/xml/ns/dbchangelog"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
    xsi:schemaLocation="http://www.liquibase.org/xml/ns/dbchangelog http://www.liquibase.org/xml/ns/dbchangelog/dbchangelog-4.20.xsd">
"#;

/// An XML changelog of `body`.
fn xml(body: &str) -> String {
    format!("{HEAD}{body}</databaseChangeLog>\n")
}

const MASTER: &str = r#"
  <changeSet id="1" author="ann">
    <comment>customers</comment>
    <createTable tableName="customer" remarks="who buys">
      <column name="id" type="bigint" autoIncrement="true"><constraints primaryKey="true" nullable="false"/></column>
      <column name="email" type="varchar(255)"><constraints nullable="false" unique="true"/></column>
      <column name="name" type="varchar(100)"/>
      <column name="active" type="boolean" defaultValueBoolean="true"/>
      <column name="created_at" type="datetime" defaultValueComputed="now()"><constraints nullable="false"/></column>
    </createTable>
  </changeSet>
  <changeSet id="2" author="ann">
    <createTable tableName="product">
      <column name="id" type="int" autoIncrement="true"><constraints primaryKey="true" primaryKeyName="product_pk"/></column>
      <column name="sku" type="varchar(32)"><constraints unique="true" uniqueConstraintName="product_sku_uq"/></column>
      <column name="price" type="currency"/>
      <column name="description" type="clob"/>
      <column name="code" type="uuid"/>
      <column name="stock" type="int" defaultValueNumeric="0"/>
    </createTable>
  </changeSet>
  <changeSet id="3" author="ann">
    <createTable tableName="orders">
      <column name="id" type="bigint" autoIncrement="true"><constraints primaryKey="true"/></column>
      <column name="customer_id" type="bigint"><constraints nullable="false" foreignKeyName="fk_orders_customer" references="customer(id)"/></column>
      <column name="status" type="varchar(20)" defaultValue="new"><constraints nullable="false"/></column>
      <column name="total" type="decimal(10,2)" defaultValueNumeric="0"/>
      <column name="placed_on" type="date"/>
    </createTable>
    <rollback>
      <dropTable tableName="orders"/>
    </rollback>
  </changeSet>
  <changeSet id="4" author="ann">
    <addColumn tableName="customer">
      <column name="phone" type="varchar(20)"/>
      <column name="score" type="int" defaultValueNumeric="0"><constraints nullable="false"/></column>
    </addColumn>
    <renameColumn tableName="customer" oldColumnName="name" newColumnName="full_name"/>
    <modifyDataType tableName="customer" columnName="full_name" newDataType="varchar(200)"/>
  </changeSet>
  <changeSet id="5" author="bob">
    <createSequence sequenceName="invoice_seq" startValue="1000" incrementBy="1"/>
    <createTable tableName="invoice">
      <column name="id" type="bigint" defaultValueComputed="nextval('invoice_seq')"><constraints primaryKey="true"/></column>
      <column name="order_id" type="bigint"/>
      <column name="issued_at" type="timestamp"/>
    </createTable>
    <addForeignKeyConstraint baseTableName="invoice" baseColumnNames="order_id" constraintName="fk_invoice_order"
        referencedTableName="orders" referencedColumnNames="id" onDelete="CASCADE"/>
  </changeSet>
  <changeSet id="6" author="bob">
    <addNotNullConstraint tableName="product" columnName="price" defaultNullValue="0"/>
    <addDefaultValue tableName="product" columnName="price" defaultValueNumeric="9.99"/>
    <addDefaultValue tableName="orders" columnName="placed_on" defaultValueComputed="CURRENT_DATE"/>
  </changeSet>
  <changeSet id="7" author="bob">
    <createTable tableName="order_item">
      <column name="order_id" type="bigint"><constraints nullable="false"/></column>
      <column name="product_id" type="int"><constraints nullable="false"/></column>
      <column name="qty" type="int" defaultValueNumeric="1"/>
    </createTable>
    <addPrimaryKey tableName="order_item" columnNames="order_id, product_id" constraintName="pk_order_item"/>
    <addForeignKeyConstraint baseTableName="order_item" baseColumnNames="order_id" constraintName="fk_item_order"
        referencedTableName="orders" referencedColumnNames="id" onDelete="CASCADE"/>
    <addForeignKeyConstraint baseTableName="order_item" baseColumnNames="product_id" constraintName="fk_item_product"
        referencedTableName="product" referencedColumnNames="id"/>
  </changeSet>
  <changeSet id="8" author="bob">
    <createIndex tableName="orders" indexName="idx_orders_status"><column name="status"/></createIndex>
    <createIndex tableName="product" indexName="idx_product_sku_desc" unique="true"><column name="sku" descending="true"/></createIndex>
  </changeSet>
  <changeSet id="9" author="cy">
    <insert tableName="customer"><column name="email" value="ann@example.com"/><column name="full_name" value="Ann O'Neil"/><column name="created_at" valueDate="2024-01-05T09:00:00"/></insert>
    <insert tableName="customer"><column name="email" value="bob@example.com"/><column name="active" valueBoolean="false"/><column name="created_at" valueDate="2024-01-06T10:30:00"/></insert>
    <insert tableName="product"><column name="sku" value="A-1"/><column name="price" valueNumeric="12.50"/><column name="code" value="6f1c1d6e-3f4a-4f1e-9a59-0c6f5b2d7e11"/></insert>
  </changeSet>
  <changeSet id="10" author="cy">
    <update tableName="customer"><column name="score" valueNumeric="10"/><where>email = 'ann@example.com'</where></update>
    <delete tableName="customer"><where>active = false</where></delete>
  </changeSet>
  <changeSet id="11" author="cy">
    <createView viewName="active_customer">SELECT id, email, full_name FROM customer WHERE active</createView>
  </changeSet>
  <changeSet id="12" author="dee" runInTransaction="false">
    <sql>CREATE INDEX CONCURRENTLY idx_orders_customer ON orders (customer_id)</sql>
    <rollback>DROP INDEX CONCURRENTLY idx_orders_customer</rollback>
  </changeSet>
  <changeSet id="13" author="dee">
    <sqlFile path="sql/touch.sql" relativeToChangelogFile="true" splitStatements="false"/>
  </changeSet>
  <include file="changes/audit.yaml" relativeToChangelogFile="true"/>
  <includeAll path="changes/later/" relativeToChangelogFile="true"/>
  <changeSet id="release-1" author="dee">
    <tagDatabase tag="v1.0"/>
  </changeSet>
"#;

const AUDIT_YAML: &str = "databaseChangeLog:
  - changeSet:
      id: audit-1
      author: eve
      changes:
        - createTable:
            tableName: audit_log
            columns:
              - column:
                  name: id
                  type: bigint
                  autoIncrement: true
                  constraints:
                    primaryKey: true
              - column:
                  name: entity
                  type: varchar(50)
                  constraints:
                    nullable: false
              - column:
                  name: at
                  type: datetime
                  defaultValueComputed: now()
        - addUniqueConstraint:
            tableName: audit_log
            columnNames: entity, at
            constraintName: audit_log_entity_at_uq
      rollback: DROP TABLE audit_log;
  - changeSet:
      id: audit-2
      author: eve
      changes:
        - sql:
            sql: INSERT INTO audit_log (entity, at) VALUES ('customer', '2024-01-07 12:00:00')
";

const LATER_1: &str = r#"
  <changeSet id="later-1" author="fay">
    <createTable tableName="legacy_import"><column name="line" type="text"/></createTable>
    <renameTable oldTableName="legacy_import" newTableName="import_line"/>
    <dropNotNullConstraint tableName="orders" columnName="status"/>
    <dropDefaultValue tableName="orders" columnName="status"/>
    <dropForeignKeyConstraint baseTableName="invoice" constraintName="fk_invoice_order"/>
    <setColumnRemarks tableName="customer" columnName="email" remarks="the login"/>
    <renameSequence oldSequenceName="invoice_seq" newSequenceName="invoice_no_seq"/>
    <alterSequence sequenceName="invoice_no_seq" incrementBy="10"/>
    <createTable tableName="tag"><column name="id" type="bigint"/><column name="label" type="text"/></createTable>
    <addAutoIncrement tableName="tag" columnName="id" columnDataType="bigint"/>
  </changeSet>
"#;

const LATER_2: &str = r#"
  <changeSet id="later-2" author="fay">
    <dropIndex tableName="orders" indexName="idx_orders_status"/>
    <dropColumn tableName="customer" columnName="phone"/>
    <dropView viewName="active_customer"/>
    <createView viewName="active_customer" replaceIfExists="true">SELECT id, email FROM customer WHERE active</createView>
    <dropTable tableName="import_line"/>
  </changeSet>
"#;

const TOUCH_SQL: &str = "CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.issued_at := now();
    RETURN NEW;
END;
$$;
";

const RAW_SQL: &str = "CREATE TABLE note (id serial PRIMARY KEY, body text NOT NULL);\n";

/// The changelog folder, as the service keeps it.
fn history(dir: &Path) -> PathBuf {
    let root = dir.join("changelog");
    for (name, text) in [
        ("db.changelog-master.xml", xml(MASTER)),
        ("changes/audit.yaml", AUDIT_YAML.to_string()),
        ("changes/later/001-cleanup.xml", xml(LATER_1)),
        ("changes/later/002-more.xml", xml(LATER_2)),
        ("changes/later/003-notes.sql", RAW_SQL.to_string()),
        ("sql/touch.sql", TOUCH_SQL.to_string()),
    ] {
        write(&root.join(name), &text);
    }
    root
}

/// `liquibase ARGS…` on this test's changelog in `dir` against `db`: what it printed.
fn run_liquibase(dir: &Path, db: &TestDb, args: &[&str]) -> String {
    util::liquibase::run_liquibase(dir, "db.changelog-master.xml", db, args)
}

/// `liquibase update` of the changelog in `dir` against `db`, then Liquibase's own
/// tables dropped (they are its bookkeeping, not the schema).
fn liquibase_update(dir: &Path, db: &TestDb) {
    run_liquibase(dir, db, &["update"]);
    db.exec("DROP TABLE databasechangelog, databasechangeloglock");
}

/// The bundle source `src` packed with a new key and applied to `target` (exit 0).
fn pack_and_apply(dir: &Path, src: &Path, target: &TestDb) {
    keygen(dir, "rm");
    pack(dir, src, "rm.key", "b.tar.gz");
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
}

/// `airlock import` of the changelog folder `changelog` into `dir/src` for `target`
/// (exit 0), then [`pack_and_apply`].
fn import_and_apply(dir: &Path, changelog: &Path, target: &TestDb) {
    let out = dir.join("src");
    let o = airlock(
        dir,
        &[
            "--json",
            "import",
            changelog.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--database",
            &target.name,
        ],
    );
    expect_code(&o, 0);
    pack_and_apply(dir, &out, target);
}

#[test]
fn a_liquibase_xml_changelog_imports_with_no_edit_and_applies_as_liquibase_runs_it() {
    let t = tempdir();
    let dir = t.path();
    let changelog = history(dir);
    let target = TestDb::new("lbxml");
    let peer = TestDb::new("lbxmlpeer");
    let out = dir.join("src");
    let o = airlock(
        dir,
        &[
            "--json",
            "import",
            changelog.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--database",
            &target.name,
        ],
    );
    // Changeset dee:12's `DROP INDEX CONCURRENTLY` rollback cannot run in the
    // rollback's transaction: left out, named, and the import is not OK (exit 2).
    expect_code(&o, 2);
    let report = json(&o);
    assert_eq!(report["layout"], "liquibase");
    assert_eq!(report["problems"], serde_json::json!([]), "{report}");
    let left_out = report["rollback_left_out"].to_string();
    assert!(left_out.contains("dee:12"), "{left_out}");
    let tiers: Vec<&str> = report["tiers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    // 13 changesets of the master, 2 of the YAML, 2 XML and one raw SQL file of the
    // includeAll folder (in file-name order); the changeset that only tags the
    // database is no tier: it names the version, and the report says so.
    assert_eq!(tiers.len(), 18, "{tiers:?}");
    assert!(
        report["left_behind"].to_string().contains("dee:release-1"),
        "{report}"
    );
    assert!(
        tiers[13].contains("audit-1")
            && tiers[15].contains("later-1")
            && tiers[17].contains("notes"),
        "{tiers:?}"
    );
    let toml = std::fs::read_to_string(out.join("bundle.toml")).unwrap();
    // `runInTransaction="false"`: an online tier, as Liquibase commits it apart.
    assert!(toml.contains("online = true"), "{toml}");
    assert!(toml.contains("version = \"v1.0\""), "{toml}");
    // The sqlFile is named where its text went.
    assert!(
        report["files"]
            .to_string()
            .contains("with the text of sql/touch.sql"),
        "{report}"
    );

    keygen(dir, "rm");
    pack(dir, &out, "rm.key", "b.tar.gz");
    let run = |cmd: &str| {
        airlock(
            dir,
            &[cmd, "b.tar.gz", "--trust", "rm.pub", "--db", &target.conn()],
        )
    };
    expect_code(&run("apply"), 0);
    liquibase_update(&changelog, &peer);
    // Liquibase's history airlock kept in step is bookkeeping too.
    target.exec("DROP TABLE databasechangelog");
    assert_eq!(
        target.dump_without_ledger(),
        peer.dump(),
        "liquibase update"
    );
    assert_eq!(
        data_fingerprint(dir, &target),
        data_fingerprint(dir, &peer),
        "liquibase update"
    );
}

/// Every changeset of it can be rolled back: some by their `<rollback>` (XML, YAML
/// text), the others by what Liquibase derives (each change undone, the last first).
const REVERSIBLE: &str = r#"
  <changeSet id="1" author="ann">
    <createTable tableName="account">
      <column name="id" type="bigint" autoIncrement="true"><constraints primaryKey="true"/></column>
      <column name="login" type="varchar(64)"><constraints nullable="false"/></column>
    </createTable>
    <createSequence sequenceName="ticket_seq" startValue="100"/>
  </changeSet>
  <changeSet id="2" author="ann">
    <addColumn tableName="account">
      <column name="mail" type="varchar(255)"/>
      <column name="level" type="int" defaultValueNumeric="1"/>
    </addColumn>
    <addUniqueConstraint tableName="account" columnNames="login" constraintName="account_login_uq"/>
    <createIndex tableName="account" indexName="account_mail_idx"><column name="mail"/></createIndex>
    <renameColumn tableName="account" oldColumnName="level" newColumnName="tier"/>
  </changeSet>
  <changeSet id="3" author="bob">
    <createTable tableName="session">
      <column name="id" type="uuid"><constraints primaryKey="true" primaryKeyName="session_pk"/></column>
      <column name="account_id" type="bigint"/>
    </createTable>
    <addForeignKeyConstraint baseTableName="session" baseColumnNames="account_id" constraintName="fk_session_account"
        referencedTableName="account" referencedColumnNames="id"/>
    <addNotNullConstraint tableName="session" columnName="account_id"/>
    <addDefaultValue tableName="account" columnName="mail" defaultValue="none"/>
    <createView viewName="account_view">SELECT id, login FROM account</createView>
  </changeSet>
  <changeSet id="4" author="bob">
    <insert tableName="account"><column name="login" value="root"/></insert>
    <rollback>
      <delete tableName="account"><where>login = 'root'</where></delete>
    </rollback>
  </changeSet>
  <include file="more.yaml" relativeToChangelogFile="true"/>
"#;

const REVERSIBLE_YAML: &str = "databaseChangeLog:
  - changeSet:
      id: 5
      author: cy
      changes:
        - renameTable:
            oldTableName: session
            newTableName: login_session
        - sql:
            sql: COMMENT ON TABLE login_session IS 'who is in'
      rollback: COMMENT ON TABLE login_session IS NULL; ALTER TABLE login_session RENAME TO session
";

#[test]
fn a_liquibase_changelog_rolls_back_as_liquibase_rolls_it_back() {
    let t = tempdir();
    let dir = t.path();
    let changelog = dir.join("changelog");
    write(&changelog.join("db.changelog-master.xml"), &xml(REVERSIBLE));
    write(&changelog.join("more.yaml"), REVERSIBLE_YAML);
    let target = TestDb::new("lbrb");
    let peer = TestDb::new("lbrbpeer");
    let entry = data_fingerprint(dir, &target);
    let out = dir.join("src");
    let o = airlock(
        dir,
        &[
            "--json",
            "import",
            changelog.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--database",
            &target.name,
        ],
    );
    expect_code(&o, 0);
    let report = json(&o);
    assert_eq!(report["no_down_script"], serde_json::json!([]), "{report}");
    keygen(dir, "rm");
    pack(dir, &out, "rm.key", "b.tar.gz");
    let run = |cmd: &str| {
        airlock(
            dir,
            &[cmd, "b.tar.gz", "--trust", "rm.pub", "--db", &target.conn()],
        )
    };
    expect_code(&run("apply"), 0);
    run_liquibase(&changelog, &peer, &["update"]);
    let without_bookkeeping = |db: &TestDb| {
        let copy = TestDb::new("lbrbcopy");
        let o = Command::new("sh")
            .arg("-c")
            .arg(format!("pg_dump -d {} | psql -q -v ON_ERROR_STOP=1 -d {} >/dev/null && psql -q -d {} -c 'DROP TABLE IF EXISTS databasechangelog, databasechangeloglock'", db.name, copy.name, copy.name))
            .output()
            .expect("pg_dump | psql");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        data_fingerprint(dir, &copy)
    };
    let applied = without_bookkeeping(&peer);
    assert_eq!(without_bookkeeping(&target), applied, "liquibase update");
    assert_ne!(applied, entry);
    expect_code(&run("rollback"), 0);
    run_liquibase(&changelog, &peer, &["rollback-count", "--count=5"]);
    peer.exec("DROP TABLE databasechangelog, databasechangeloglock");
    assert_eq!(
        data_fingerprint(dir, &peer),
        entry,
        "liquibase rollback-count"
    );
    assert_eq!(data_fingerprint(dir, &target), entry, "airlock rollback");
}

#[test]
fn a_spring_boot_changelog_folder_resolves_its_search_path_includes() {
    // Spring Boot keeps src/main/resources/db/changelog/db.changelog-master.yaml and
    // names includes from the resources root; the folder imported is db/changelog.
    let t = tempdir();
    let dir = t.path().join("resources/db/changelog");
    write(
        &dir.join("db.changelog-master.yaml"),
        "databaseChangeLog:\n  - include:\n      file: db/changelog/changes/001-person.yaml\n",
    );
    write(&dir.join("changes/001-person.yaml"), "databaseChangeLog:\n  - changeSet:\n      id: 1\n      author: ann\n      changes:\n        - createTable:\n            tableName: person\n            columns:\n              - column:\n                  name: id\n                  type: int\n");
    let out = t.path().join("src");
    let o = airlock(
        t.path(),
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
    assert_eq!(json(&o)["tiers"], serde_json::json!(["ann:1"]));
    let tier = std::fs::read_to_string(out.join("sql/tiers/001_ann_1.sql")).unwrap();
    assert_eq!(tier, "CREATE TABLE person (id INTEGER);\n");
}

/// Import refuses `dir` (exit 2), naming each of `names`, and writes nothing.
#[track_caller]
fn refused(dir: &Path, extra: &[&str], names: &[&str]) {
    let t = tempdir();
    let before = snapshot(dir);
    let out = t.path().join("src");
    let mut args = vec![
        "import",
        dir.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--database",
        "x",
    ];
    args.extend_from_slice(extra);
    let o = airlock(t.path(), &args);
    expect_code(&o, 2);
    let err = stderr(&o);
    for n in names {
        assert!(err.contains(n), "{n}: {err}");
    }
    assert!(!out.exists(), "{} was written", out.display());
    assert_eq!(snapshot(dir), before);
}

#[test]
fn what_liquibase_decides_at_run_time_or_import_cannot_read_is_refused_by_name() {
    let t = tempdir();
    for (i, (body, names)) in [
        (
            r#"<changeSet id="p" author="ann"><preConditions onFail="MARK_RAN"><tableExists tableName="t"/></preConditions><createTable tableName="t"><column name="a" type="int"/></createTable></changeSet>"#,
            &["c.xml:6", "ann:p", "preConditions"][..],
        ),
        (
            r#"<changeSet id="c" author="ann" context="test"><sql>SELECT 1</sql></changeSet>"#,
            &["ann:c", "context=\"test\""][..],
        ),
        (
            r#"<changeSet id="l" author="ann" labels="v2"><sql>SELECT 1</sql></changeSet>"#,
            &["ann:l", "labels=\"v2\""][..],
        ),
        (
            r#"<changeSet id="u" author="ann"><loadData tableName="t" file="x.csv"/></changeSet>"#,
            &["c.xml:6", "ann:u", "loadData"][..],
        ),
        // A Java class (Keycloak's migrations have a few): named, with its class.
        (
            r#"<changeSet id="j" author="ann"><customChange class="org.example.MoveThings"/></changeSet>"#,
            &["c.xml:6", "ann:j", "customChange", "org.example.MoveThings", "Java"][..],
        ),
        (
            r#"<changeSet id="a" author="ann"><createIndex tableName="t" indexName="i" tablespace="fast"><column name="a"/></createIndex></changeSet>"#,
            &["ann:a", "tablespace"][..],
        ),
        (
            r#"<property file="x.properties"/>"#,
            &["c.xml:6", "a `property file=…`"][..],
        ),
        (
            r#"<changeSet id="s" author="ann"><createTable tableName="t" schemaName="${schema}"><column name="a" type="int"/></createTable></changeSet>"#,
            &["ann:s", "${schema}"][..],
        ),
        (
            r#"<changeSet id="d" author="ann"><sql>SELECT 1</sql></changeSet><changeSet id="d" author="ann"><sql>SELECT 2</sql></changeSet>"#,
            &["ann:d", "a second changeset"][..],
        ),
        // An empty logicalFilePath names no path Liquibase could record.
        (
            r#"<changeSet id="e" author="ann" logicalFilePath=" "><sql>SELECT 1</sql></changeSet>"#,
            &["ann:e", "`logicalFilePath` is empty"][..],
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let dir = t.path().join(format!("c{i}"));
        write(&dir.join("c.xml"), &xml(&format!("\n{body}\n")));
        refused(&dir, &[], names);
        refused(&dir, &["--from", "liquibase"], names);
    }
    // YAML: refused the same way, naming the changeset and the file.
    let dir = t.path().join("yaml");
    write(&dir.join("changelog.yaml"), "databaseChangeLog:\n  - changeSet:\n      id: 1\n      author: ann\n      preConditions:\n        - onFail: MARK_RAN\n        - tableExists:\n            tableName: t\n      changes:\n        - dropTable:\n            tableName: t\n");
    refused(&dir, &[], &["changelog.yaml", "ann:1", "preConditions"]);
    // An include out of the folder is never followed.
    let dir = t.path().join("outside");
    write(
        &dir.join("c.xml"),
        &xml(r#"<include file="../../secret.xml" relativeToChangelogFile="true"/>"#),
    );
    refused(&dir, &[], &["c.xml", "leaves the imported folder"]);
    // An include of a file that is not there: named, as Liquibase fails on it.
    let dir = t.path().join("missing");
    write(
        &dir.join("m.yaml"),
        "databaseChangeLog:\n  - include:\n      file: nope/missing.yaml\n",
    );
    refused(&dir, &[], &["m.yaml", "nope/missing.yaml", "no such file"]);
    // A JSON changelog stays refused, named.
    let dir = t.path().join("json");
    write(
        &dir.join("changelog.json"),
        "{ \"databaseChangeLog\": [] }\n",
    );
    refused(&dir, &[], &["changelog.json:1", "JSON"]);
    // An XML changelog read as a folder of scripts would take its fragments for it.
    let dir = history(&t.path().join("folder"));
    refused(
        &dir,
        &["--from", "folder"],
        &["db.changelog-master.xml", "Liquibase"],
    );
}

/// Issue 74, item 5: a YAML changelog of under 512 bytes whose anchors and aliases expand
/// into 9^9 nodes (billion laughs) is refused at its first alias, by name and line,
/// before anything is expanded; nothing is written. Liquibase changelogs have no use
/// for aliases.
#[test]
fn a_yaml_alias_bomb_is_refused_at_its_first_alias_and_nothing_is_written() {
    let t = tempdir();
    let mut bomb = String::from(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for (prev, name) in ["a", "b", "c", "d", "e", "f", "g", "h"]
        .iter()
        .zip(["b", "c", "d", "e", "f", "g", "h", "i"])
    {
        let items = vec![format!("*{prev}"); 9].join(",");
        bomb.push_str(&format!("{name}: &{name} [{items}]\n"));
    }
    bomb.push_str("databaseChangeLog: []\n");
    assert!(bomb.len() < 512, "{bomb}");
    let dir = t.path().join("bomb");
    write(&dir.join("c.yaml"), &bomb);
    refused(&dir, &[], &["c.yaml:2", "alias", "*a"]);
    refused(&dir, &["--from", "liquibase"], &["c.yaml:2", "alias"]);
}

/// Issue 74, item 6: an XML changelog nested 20,000 elements deep (140 KB) is refused
/// at the first element deeper than 256, by file and line, not read down to the
/// bottom on the stack; nothing is written.
#[test]
fn an_xml_changelog_nested_deeper_than_256_elements_is_refused_by_file_and_line() {
    let t = tempdir();
    let dir = t.path().join("deep");
    // The root is element 1 (HEAD's line 2); element 2 opens on line 5, element n on
    // line n + 3: the 257th on line 260.
    let body = format!("{}{}", "<a>\n".repeat(20_000), "</a>".repeat(20_000));
    write(&dir.join("c.xml"), &xml(&body));
    refused(&dir, &[], &["c.xml:260", "256"]);
    refused(&dir, &["--from", "liquibase"], &["c.xml:260", "256"]);
}

/// Every change type import writes, its names upper-case (`PERSON{S}`), mixed-case
/// (`Email`) and reserved (`user`), its types ones Liquibase maps (`TINYBLOB(16)`,
/// `BINARY(64)`, `TINYINT`…), for the changesets `q{S}-N` with the attribute `{Q}`.
const EVERY_CHANGE: &str = r#"
  <changeSet id="q{S}-1" author="ann"{Q}>
    <createTable tableName="PERSON{S}" remarks="people">
      <column name="ID" type="BIGINT" autoIncrement="true"><constraints primaryKey="true"/></column>
      <column name="Email" type="VARCHAR(255)"><constraints nullable="false" unique="true" uniqueConstraintName="PERSON{S}_EMAIL_UQ"/></column>
      <column name="user" type="varchar(20)" defaultValue="x" remarks="the login"/>
      <column name="ACTIVE" type="BOOLEAN" defaultValueBoolean="true"/>
      <column name="SCORE" type="TINYINT" defaultValueNumeric="0"/>
      <column name="PHOTO" type="TINYBLOB(16)"/>
      <column name="HASH" type="BINARY(64)"/>
      <column name="SEEN" type="DATETIME"/>
      <column name="BIO" type="LONGTEXT"/>
      <column name="RATIO" type="DOUBLE"/>
      <column name="KEY_ID" type="UUID"/>
      <column name="NICK" type="NVARCHAR(40)"/>
      <column name="PRICE" type="CURRENCY"/>
    </createTable>
    <createTable tableName="ADDRESS{S}">
      <column name="ID" type="INT"><constraints primaryKey="true" primaryKeyName="ADDRESS{S}_PK"/></column>
      <column name="PERSON_ID" type="BIGINT"><constraints foreignKeyName="ADDRESS{S}_PERSON_FK" referencedTableName="PERSON{S}" referencedColumnNames="ID"/></column>
      <column name="Street" type="VARCHAR(100)"/>
    </createTable>
  </changeSet>
  <changeSet id="q{S}-2" author="ann"{Q}>
    <addColumn tableName="PERSON{S}">
      <column name="PHONE" type="VARCHAR(20)"><constraints unique="true"/></column>
    </addColumn>
    <renameColumn tableName="ADDRESS{S}" oldColumnName="Street" newColumnName="STREET_NAME"/>
    <modifyDataType tableName="ADDRESS{S}" columnName="STREET_NAME" newDataType="VARCHAR(200)"/>
    <addNotNullConstraint tableName="ADDRESS{S}" columnName="STREET_NAME" defaultNullValue="unknown"/>
    <dropNotNullConstraint tableName="ADDRESS{S}" columnName="STREET_NAME"/>
    <addDefaultValue tableName="ADDRESS{S}" columnName="STREET_NAME" defaultValue="main"/>
    <dropDefaultValue tableName="ADDRESS{S}" columnName="STREET_NAME"/>
    <setTableRemarks tableName="ADDRESS{S}" remarks="where"/>
    <setColumnRemarks tableName="ADDRESS{S}" columnName="STREET_NAME" remarks="the street"/>
  </changeSet>
  <changeSet id="q{S}-3" author="ann"{Q}>
    <createTable tableName="TAG{S}"><column name="ID" type="BIGINT"/><column name="LABEL" type="TEXT"/><column name="PERSON_ID" type="BIGINT"/></createTable>
    <addPrimaryKey tableName="TAG{S}" columnNames="ID" constraintName="TAG{S}_PK"/>
    <addUniqueConstraint tableName="TAG{S}" columnNames="LABEL, PERSON_ID" constraintName="TAG{S}_LABEL_UQ"/>
    <dropUniqueConstraint tableName="TAG{S}" constraintName="TAG{S}_LABEL_UQ"/>
    <addForeignKeyConstraint baseTableName="TAG{S}" baseColumnNames="PERSON_ID" constraintName="TAG{S}_PERSON_FK" referencedTableName="PERSON{S}" referencedColumnNames="ID" onDelete="CASCADE"/>
    <dropForeignKeyConstraint baseTableName="TAG{S}" constraintName="TAG{S}_PERSON_FK"/>
    <createIndex tableName="TAG{S}" indexName="TAG{S}_LABEL_IDX" unique="true"><column name="LABEL" type="TEXT"/><column name="PERSON_ID" descending="true"/></createIndex>
    <dropIndex tableName="TAG{S}" indexName="TAG{S}_LABEL_IDX"/>
    <dropPrimaryKey tableName="TAG{S}" constraintName="TAG{S}_PK"/>
    <addAutoIncrement tableName="TAG{S}" columnName="ID" columnDataType="BIGINT"/>
  </changeSet>
  <changeSet id="q{S}-4" author="ann"{Q}>
    <createSequence sequenceName="TICKET{S}_SEQ" startValue="100" incrementBy="5"/>
    <renameSequence oldSequenceName="TICKET{S}_SEQ" newSequenceName="TICKET{S}_NO_SEQ"/>
    <alterSequence sequenceName="TICKET{S}_NO_SEQ" incrementBy="10"/>
    <dropSequence sequenceName="TICKET{S}_NO_SEQ"/>
    <createView viewName="ACTIVE{S}_PERSON">SELECT 1 AS one</createView>
    <renameView oldViewName="ACTIVE{S}_PERSON" newViewName="ACTIVE{S}_PEOPLE"/>
    <dropView viewName="ACTIVE{S}_PEOPLE"/>
  </changeSet>
  <changeSet id="q{S}-5" author="ann"{Q}>
    <insert tableName="PERSON{S}"><column name="Email" value="ann@example.com"/><column name="SCORE" valueNumeric="3"/></insert>
    <update tableName="PERSON{S}"><column name="SCORE" valueNumeric="4"/><where>1 = 1</where></update>
    <delete tableName="PERSON{S}"><where>1 = 0</where></delete>
    <dropColumn tableName="PERSON{S}" columnName="PHONE"/>
    <renameTable oldTableName="ADDRESS{S}" newTableName="PLACE{S}"/>
    <dropTable tableName="PLACE{S}"/>
    <sql>CREATE TABLE sql_made_{S} (a int)</sql>
  </changeSet>
  <changeSet id="q{S}-6" author="ann"{Q}>
    <tagDatabase tag="q{S}"/>
  </changeSet>
"#;

fn every_change(s: &str, q: &str) -> String {
    EVERY_CHANGE.replace("{S}", s).replace("{Q}", q)
}

/// The statements of each changeset (by id) in `liquibase update-sql`'s output,
/// without its bookkeeping and with the `public.` it puts before every name.
fn statements_by_changeset(update_sql: &str) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut out = std::collections::BTreeMap::<String, Vec<String>>::new();
    let mut current = None;
    for line in update_sql.lines() {
        if let Some(c) = line.strip_prefix("-- Changeset ") {
            current = c.split("::").nth(1).map(str::to_string);
            out.entry(current.clone().unwrap()).or_default();
            continue;
        }
        let Some(id) = &current else { continue };
        if line.trim().is_empty()
            || line.starts_with("--")
            || line.starts_with("SET SEARCH_PATH")
            || line.contains("databasechangelog")
        {
            continue;
        }
        let line = line.replace("\"public\".", "").replace("public.", "");
        out.get_mut(id).unwrap().push(line);
    }
    out
}

#[test]
fn names_and_types_are_written_as_liquibase_writes_them_under_each_quoting_strategy() {
    // Upper-case names bare (Liquibase 4.x's LEGACY default: PostgreSQL folds them),
    // every name quoted (QUOTE_ALL_OBJECTS), only reserved words quoted
    // (QUOTE_ONLY_RESERVED_WORDS); set on a changeset, or on a changelog for its own
    // changesets (an included changelog does not inherit it).
    let t = tempdir();
    let dir = t.path();
    let changelog = dir.join("changelog");
    let master = format!(
        "{}{}{}  <include file=\"quoted.xml\" relativeToChangelogFile=\"true\"/>\n  <include file=\"plain.xml\" relativeToChangelogFile=\"true\"/>\n",
        every_change("1", ""),
        every_change("2", " objectQuotingStrategy=\"QUOTE_ALL_OBJECTS\""),
        every_change("3", " objectQuotingStrategy=\"QUOTE_ONLY_RESERVED_WORDS\""),
    );
    write(&changelog.join("db.changelog-master.xml"), &xml(&master));
    let quoted = xml(&every_change("4", "")).replacen(
        ".xsd\">",
        ".xsd\" objectQuotingStrategy=\"QUOTE_ALL_OBJECTS\">",
        1,
    );
    assert!(quoted.contains("QUOTE_ALL_OBJECTS"));
    write(&changelog.join("quoted.xml"), &quoted);
    write(&changelog.join("plain.xml"), &xml(&every_change("5", "")));
    let target = TestDb::new("lbquote");
    let peer = TestDb::new("lbquotepeer");
    let out = dir.join("src");
    let o = airlock(
        dir,
        &[
            "--json",
            "import",
            changelog.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--database",
            &target.name,
        ],
    );
    expect_code(&o, 0);
    let report = json(&o);
    assert_eq!(report["problems"], serde_json::json!([]), "{report}");
    let expected = statements_by_changeset(&run_liquibase(&changelog, &peer, &["update-sql"]));
    let tiers = report["tiers"].as_array().unwrap();
    // Six changesets in each of five changelogs, less the five that only tag.
    assert_eq!(tiers.len(), 25, "{tiers:?}");
    for (i, tier) in tiers.iter().enumerate() {
        let label = tier.as_str().unwrap();
        let id = label.split(':').nth(1).unwrap();
        let file = out.join(format!(
            "sql/tiers/{:03}_{}.sql",
            i + 1,
            label.replace(':', "_")
        ));
        let written = std::fs::read_to_string(&file).unwrap();
        let written: Vec<&str> = written.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(written, expected[id], "changeset {id}");
    }

    pack_and_apply(dir, &out, &target);
    liquibase_update(&changelog, &peer);
    // Liquibase's history airlock kept in step is bookkeeping too.
    target.exec("DROP TABLE databasechangelog");
    assert_eq!(
        target.dump_without_ledger(),
        peer.dump(),
        "liquibase update"
    );
    // Upper-case names made lower-case ones, as Hibernate's unquoted names expect.
    assert_eq!(
        target.scalar("SELECT count(*) FROM person1 WHERE score = 4"),
        "1"
    );
    assert_eq!(target.scalar("SELECT count(*) FROM \"PERSON2\""), "1");
}

#[test]
fn a_type_no_postgresql_has_is_refused_by_name_and_nothing_is_written() {
    let t = tempdir();
    for ty in [
        "MEDIUMINT",
        "YEAR",
        "FLOAT(10,2)",
        "varchar(10)[]",
        "DATETIMEOFFSET",
    ] {
        let dir = t.path().join(format!("c{}", ty.len()));
        write(
            &dir.join("c.xml"),
            &xml(&format!(
                "<changeSet id=\"1\" author=\"ann\"><createTable tableName=\"t\"><column name=\"a\" type=\"{ty}\"/></createTable></changeSet>\n"
            )),
        );
        refused(&dir, &[], &["c.xml", "ann:1", &format!("`{ty}`")]);
    }
}

#[test]
fn one_author_and_id_in_two_files_are_two_tiers_with_names_of_their_own() {
    // Liquibase knows a changeset by author, id and file: Keycloak's
    // `keycloak:map-remove-ri` is in two of its changelogs.
    let t = tempdir();
    let dir = t.path().join("changelog");
    write(
        &dir.join("master.xml"),
        &xml(
            r#"<include file="one.xml" relativeToChangelogFile="true"/><include file="sub/two.xml" relativeToChangelogFile="true"/>"#,
        ),
    );
    for (f, table) in [("one.xml", "a"), ("sub/two.xml", "b")] {
        write(
            &dir.join(f),
            &xml(&format!("<changeSet id=\"map-remove-ri\" author=\"kc\"><createTable tableName=\"{table}\"><column name=\"x\" type=\"int\"/></createTable></changeSet><changeSet id=\"{table}\" author=\"kc\"><sql>SELECT 1</sql></changeSet>\n")),
        );
    }
    let out = t.path().join("src");
    let o = airlock(
        t.path(),
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
    assert_eq!(report["problems"], serde_json::json!([]), "{report}");
    assert_eq!(
        report["tiers"],
        serde_json::json!([
            "kc:map-remove-ri (one.xml)",
            "kc:a",
            "kc:map-remove-ri (sub/two.xml)",
            "kc:b"
        ])
    );
    expect_code(&airlock(t.path(), &["lint", out.to_str().unwrap()]), 0);
}

#[test]
fn an_attribute_liquibase_ignores_is_ignored_and_reported() {
    // Liquibase reads a `createIndex` column's name, `descending` and `computed`;
    // its `type` (Keycloak writes it on most of its indexes) changes nothing.
    let t = tempdir();
    let dir = t.path().join("changelog");
    write(
        &dir.join("c.xml"),
        &xml(
            r#"<changeSet id="1" author="ann"><createTable tableName="t"><column name="a" type="varchar(36)"/></createTable><createIndex tableName="t" indexName="t_a"><column name="a" type="VARCHAR(36)"/></createIndex></changeSet>
"#,
        ),
    );
    let out = t.path().join("src");
    let o = airlock(
        t.path(),
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
    let tier = std::fs::read_to_string(out.join("sql/tiers/001_ann_1.sql")).unwrap();
    assert!(tier.contains("CREATE INDEX t_a ON t(a);"), "{tier}");
    assert!(
        report["files"]
            .to_string()
            .contains("ignored as Liquibase ignores it: `type` of a `createIndex` column"),
        "{report}"
    );
}

#[test]
fn two_root_changelogs_are_refused_naming_the_roots_only() {
    let t = tempdir();
    let dir = t.path().join("changelog");
    for root in ["a-master.xml", "b-master.xml"] {
        write(
            &dir.join(root),
            &xml(&format!(
                r#"<include file="{root}-part.xml" relativeToChangelogFile="true"/>"#
            )),
        );
        write(
            &dir.join(format!("{root}-part.xml")),
            &xml(r#"<changeSet id="1" author="ann"><sql>SELECT 1</sql></changeSet>"#),
        );
    }
    refused(
        &dir,
        &[],
        &["a-master.xml, b-master.xml", "2 root changelogs"],
    );
    let o = airlock(
        t.path(),
        &[
            "import",
            dir.to_str().unwrap(),
            "--out",
            "src",
            "--database",
            "x",
        ],
    );
    assert!(!stderr(&o).contains("part.xml"), "{}", stderr(&o));
}

/// The changelog of `history`, its master including every change type import writes
/// too (`EVERY_CHANGE`, as `changes/every.xml`).
fn history_of_every_change(dir: &Path) -> PathBuf {
    let root = history(dir);
    write(
        &root.join("changes/every.xml"),
        &xml(&every_change("_E", "")),
    );
    let master = MASTER.replace(
        "  <include file=\"changes/audit.yaml\"",
        "  <include file=\"changes/every.xml\" relativeToChangelogFile=\"true\"/>\n  <include file=\"changes/audit.yaml\"",
    );
    write(&root.join("db.changelog-master.xml"), &xml(&master));
    root
}

/// `airlock --json import CHANGELOG --out OUT --history DB` in `dir`.
fn import_on_history(dir: &Path, changelog: &Path, db: &TestDb) -> std::process::Output {
    let out = dir.join("src");
    let _ = std::fs::remove_dir_all(&out);
    airlock(
        dir,
        &[
            "--json",
            "import",
            changelog.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--database",
            &db.name,
            "--history",
            &db.conn(),
        ],
    )
}

/// Import on `db`'s history is refused (exit 2), its error naming each of `names`,
/// and nothing is written.
#[track_caller]
fn refused_on_history(dir: &Path, changelog: &Path, db: &TestDb, names: &[&str]) {
    let o = import_on_history(dir, changelog, db);
    expect_code(&o, 2);
    let err = json(&o)["error"].as_str().unwrap().to_string();
    for n in names {
        assert!(err.contains(n), "{n}: {err}");
    }
    assert!(!dir.join("src").exists(), "nothing is written");
}

#[test]
fn each_md5sum_liquibase_records_is_checked_as_liquibase_computes_it() {
    let t = tempdir();
    let dir = t.path();
    let changelog = history_of_every_change(dir);
    let db = TestDb::new("lbsum");
    run_liquibase(&changelog, &db, &["update"]);
    // One changeset more than Liquibase ran: every recorded row (each change type
    // import writes, the YAML ones, the sqlFile and the raw SQL file) must check.
    let later = changelog.join("changes/later/004-after.xml");
    write(&later, &xml("  <changeSet id=\"after-1\" author=\"gil\">\n    <createTable tableName=\"after_liquibase\"><column name=\"id\" type=\"int\"/></createTable>\n  </changeSet>\n"));
    let o = import_on_history(dir, &changelog, &db);
    expect_code(&o, 0);
    let report = json(&o);
    assert_eq!(report["tiers"].as_array().unwrap().len(), 1, "{report}");

    // A row whose MD5SUM Liquibase cleared (NULL) is taken, as Liquibase takes it.
    db.exec("UPDATE databasechangelog SET md5sum = NULL WHERE id = '1'");
    expect_code(&import_on_history(dir, &changelog, &db), 0);

    // An older version's checksum cannot be checked: refused, naming it.
    db.exec(
        "UPDATE databasechangelog SET md5sum = '8:0123456789abcdef0123456789abcdef' WHERE id = '2'",
    );
    refused_on_history(
        dir,
        &changelog,
        &db,
        &[
            "db.changelog-master.xml:",
            "ann:2",
            "8:0123456789abcdef0123456789abcdef",
            "older",
        ],
    );
    db.exec("UPDATE databasechangelog SET md5sum = NULL WHERE id = '2'");

    // One changeset edited after Liquibase ran it: refused with both checksums, and
    // nothing written.
    let every = changelog.join("changes/every.xml");
    let text = std::fs::read_to_string(&every).unwrap();
    write(
        &every,
        &text.replace("startValue=\"100\"", "startValue=\"200\""),
    );
    let recorded = db.scalar("SELECT md5sum FROM databasechangelog WHERE id = 'q_E-4'");
    refused_on_history(
        dir,
        &changelog,
        &db,
        &[
            "changes/every.xml:",
            "ann:q_E-4",
            &recorded,
            "edited since Liquibase ran it",
        ],
    );
    // Unless the changeset lists the recorded checksum as valid, as Liquibase allows.
    let text = std::fs::read_to_string(&every).unwrap();
    let valid = format!(
        "<changeSet id=\"q_E-4\" author=\"ann\">\n    <validCheckSum>{recorded}</validCheckSum>"
    );
    write(
        &every,
        &text.replace("<changeSet id=\"q_E-4\" author=\"ann\">", &valid),
    );
    expect_code(&import_on_history(dir, &changelog, &db), 0);
}

#[test]
fn a_formatted_sql_changeset_whose_md5sum_import_cannot_compute_is_refused_by_name() {
    let t = tempdir();
    let dir = t.path();
    let changelog = dir.join("changelog");
    write(&changelog.join("changelog.sql"), "--liquibase formatted sql\n\n--changeset ann:1\nCREATE TABLE a (id int);\n\n--changeset ann:2\nCREATE TABLE b (id int);\n");
    let db = TestDb::new("lbfmtsum");
    // DATABASECHANGELOG as Liquibase makes it, recording the first changeset.
    db.exec("CREATE TABLE databasechangelog (id varchar(255) NOT NULL, author varchar(255) NOT NULL, filename varchar(255) NOT NULL, dateexecuted timestamp NOT NULL, orderexecuted int NOT NULL, exectype varchar(10) NOT NULL, md5sum varchar(35)); INSERT INTO databasechangelog VALUES ('1', 'ann', 'changelog.sql', now(), 1, 'EXECUTED', '9:0123456789abcdef0123456789abcdef'); CREATE TABLE a (id int)");
    refused_on_history(
        dir,
        &changelog,
        &db,
        &[
            "changelog.sql:",
            "ann:1",
            "formatted SQL",
            "9:0123456789abcdef0123456789abcdef",
        ],
    );
    // With the MD5SUM cleared, Liquibase takes the row, and so does import.
    db.exec("UPDATE databasechangelog SET md5sum = NULL");
    let o = import_on_history(dir, &changelog, &db);
    expect_code(&o, 0);
    assert_eq!(json(&o)["tiers"].as_array().unwrap().len(), 1);
}

/// A changelog as a Liquibase shop keeps it: a changeset with a comment, one a
/// precondition marks ran (onFail MARK_RAN, decided from the text: not PostgreSQL),
/// one that only tags the database, and an included YAML changelog.
const IN_STEP: &str = r#"
  <changeSet id="1" author="ann">
    <comment>customers</comment>
    <createTable tableName="customer">
      <column name="id" type="bigint"><constraints primaryKey="true"/></column>
      <column name="name" type="varchar(80)"/>
    </createTable>
  </changeSet>
  <changeSet id="2" author="ann">
    <preConditions onFail="MARK_RAN"><dbms type="oracle"/></preConditions>
    <createTable tableName="oracle_only"><column name="id" type="int"/></createTable>
  </changeSet>
  <changeSet id="3" author="bob">
    <addColumn tableName="customer"><column name="email" type="varchar(255)"/></addColumn>
  </changeSet>
  <changeSet id="4" author="bob">
    <tagDatabase tag="v1.0"/>
  </changeSet>
  <include file="more.yaml" relativeToChangelogFile="true"/>
"#;

const IN_STEP_YAML: &str = "databaseChangeLog:
  - changeSet:
      id: 5
      author: cy
      changes:
        - createIndex:
            tableName: customer
            indexName: customer_email_idx
            columns:
              - column:
                  name: email
";

/// The rows of DATABASECHANGELOG on `db`, in order: `author:id exectype md5sum`.
fn changelog_rows(db: &TestDb) -> String {
    db.scalar("SELECT coalesce(string_agg(author || ':' || id || ' ' || filename || ' ' || exectype || ' ' || coalesce(md5sum, '-') || ' ' || coalesce(tag, '-') || ' ' || description, E'\\n' ORDER BY orderexecuted), '') FROM databasechangelog")
}

#[test]
fn after_airlock_applies_liquibase_status_says_up_to_date_and_update_runs_nothing() {
    // Issue 89, item 13: the tiers write the DATABASECHANGELOG rows Liquibase writes,
    // in their transaction; the rollback removes them.
    let t = tempdir();
    let dir = t.path();
    let changelog = dir.join("changelog");
    write(&changelog.join("db.changelog-master.xml"), &xml(IN_STEP));
    write(&changelog.join("more.yaml"), IN_STEP_YAML);
    let target = TestDb::new("lbstep");
    let peer = TestDb::new("lbsteppeer");
    let out = dir.join("src");
    let o = airlock(
        dir,
        &[
            "--json",
            "import",
            changelog.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--database",
            &target.name,
        ],
    );
    expect_code(&o, 0);
    let report = json(&o);
    let peer_history = &report["peer_history"];
    assert_eq!(peer_history["table"], "databasechangelog", "{report}");
    assert_eq!(peer_history["executed"], 4, "{report}");
    assert_eq!(peer_history["mark_ran"], 1, "{report}");
    assert_eq!(peer_history["creates_table"], true, "{report}");
    keygen(dir, "rm");
    pack(dir, &out, "rm.key", "b.tar.gz");
    let run = |cmd: &str| {
        airlock(
            dir,
            &[cmd, "b.tar.gz", "--trust", "rm.pub", "--db", &target.conn()],
        )
    };
    expect_code(&run("apply"), 0);

    // The real Liquibase on the database airlock applied: nothing pending.
    let status = run_liquibase(&changelog, &target, &["status", "--verbose"]);
    assert!(status.contains("is up to date"), "{status}");
    let ours = changelog_rows(&target);
    run_liquibase(&changelog, &target, &["update"]);
    assert_eq!(
        changelog_rows(&target),
        ours,
        "liquibase update ran something"
    );
    // The rows are those Liquibase itself writes (but their time and deployment).
    run_liquibase(&changelog, &peer, &["update"]);
    assert_eq!(ours, changelog_rows(&peer));
    let columns = |db: &TestDb| {
        db.scalar("SELECT string_agg(column_name || ' ' || data_type || ' ' || coalesce(character_maximum_length::text, '') || ' ' || is_nullable, ', ' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_name = 'databasechangelog'")
    };
    assert_eq!(columns(&target), columns(&peer));
    let deployments = target.scalar("SELECT count(DISTINCT deployment_id) FROM databasechangelog");
    assert_eq!(deployments, "1");

    // The rollback removes them: Liquibase finds every changeset pending again, and
    // its own update then runs them all.
    expect_code(&run("rollback"), 0);
    let status = run_liquibase(&changelog, &target, &["status", "--verbose"]);
    assert!(
        status.contains("5 changesets have not been applied"),
        "{status}"
    );
    run_liquibase(&changelog, &target, &["update"]);
    assert_eq!(changelog_rows(&target), ours);
}

#[test]
fn no_peer_history_leaves_databasechangelog_alone() {
    let t = tempdir();
    let dir = t.path();
    let changelog = dir.join("changelog");
    write(&changelog.join("db.changelog-master.xml"), &xml(IN_STEP));
    write(&changelog.join("more.yaml"), IN_STEP_YAML);
    let out = dir.join("src");
    let o = airlock(
        dir,
        &[
            "--json",
            "import",
            changelog.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--database",
            "shop",
            "--no-peer-history",
        ],
    );
    expect_code(&o, 0);
    let report = json(&o);
    assert_eq!(report["peer_history"], serde_json::Value::Null, "{report}");
    assert!(!out.join("sql/liquibase").exists());
    let toml = std::fs::read_to_string(out.join("bundle.toml")).unwrap();
    assert!(!toml.contains("liquibase_history"), "{toml}");
}

/// A Keycloak-shaped changelog (issue 89, item 5): a master in `META-INF` including
/// each release's changelog; one of them a `*-db2.xml` whose `databaseChangeLog`
/// sets `logicalFilePath` (Liquibase records its changesets under that name, not the
/// file's), one changeset that sets its own, and a `changeSetExecuted` precondition
/// naming a changeset by the logical path.
const KC_MASTER: &str = r#"
  <include file="META-INF/jpa-changelog-1.0.0.Final.xml"/>
  <include file="META-INF/jpa-changelog-1.1.0.Final-db2.xml"/>
  <include file="META-INF/jpa-changelog-1.2.0.Final.xml"/>
"#;

const KC_1_0: &str = r#"
  <changeSet id="1.0.0.Final-1" author="keycloak">
    <createTable tableName="realm">
      <column name="id" type="varchar(36)"><constraints primaryKey="true" nullable="false"/></column>
      <column name="name" type="varchar(255)"/>
    </createTable>
  </changeSet>
"#;

const KC_1_1_DB2: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<databaseChangeLog xmlns="http://www.liquibase.org/xml/ns/dbchangelog"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
    xsi:schemaLocation="http://www.liquibase.org/xml/ns/dbchangelog http://www.liquibase.org/xml/ns/dbchangelog/dbchangelog-4.20.xsd"
    logicalFilePath="META-INF/db2-jpa-changelog-1.1.0.Final.xml">
  <changeSet id="1.1.0.Final-a" author="keycloak">
    <createTable tableName="client">
      <column name="id" type="varchar(36)"><constraints primaryKey="true" nullable="false"/></column>
      <column name="realm_id" type="varchar(36)"/>
    </createTable>
  </changeSet>
  <changeSet id="1.1.0.Final-b" author="keycloak">
    <addColumn tableName="client"><column name="secret" type="varchar(255)"/></addColumn>
  </changeSet>
</databaseChangeLog>
"#;

const KC_1_2: &str = r#"
  <changeSet id="1.2.0.Final-a" author="keycloak" logicalFilePath="META-INF/jpa-changelog-1.2.0.CR1.xml">
    <createTable tableName="user_entity">
      <column name="id" type="varchar(36)"><constraints primaryKey="true" nullable="false"/></column>
    </createTable>
  </changeSet>
  <changeSet id="1.2.0.Final-b" author="keycloak">
    <preConditions onFail="MARK_RAN">
      <changeSetExecuted id="1.1.0.Final-b" author="keycloak" changeLogFile="META-INF/db2-jpa-changelog-1.1.0.Final.xml"/>
    </preConditions>
    <createTable tableName="client_secret_history">
      <column name="client_id" type="varchar(36)"/>
    </createTable>
  </changeSet>
"#;

/// The Keycloak-shaped changelog folder: the folder holding `META-INF`.
fn keycloak_shaped(dir: &Path) -> PathBuf {
    let root = dir.join("resources");
    for (name, text) in [
        ("META-INF/jpa-changelog-master.xml", xml(KC_MASTER)),
        ("META-INF/jpa-changelog-1.0.0.Final.xml", xml(KC_1_0)),
        (
            "META-INF/jpa-changelog-1.1.0.Final-db2.xml",
            KC_1_1_DB2.to_string(),
        ),
        ("META-INF/jpa-changelog-1.2.0.Final.xml", xml(KC_1_2)),
    ] {
        write(&root.join(name), &text);
    }
    root
}

/// `liquibase ARGS…` on the Keycloak-shaped changelog in `dir` against `db`.
fn run_kc_liquibase(dir: &Path, db: &TestDb, args: &[&str]) -> String {
    util::liquibase::run_liquibase(dir, "META-INF/jpa-changelog-master.xml", db, args)
}

/// `airlock --json import RESOURCES --changelog META-INF/jpa-changelog-master.xml
/// --history DB` in `dir`: the folder as Liquibase's search path, the root named as
/// its `--changelog-file` names it.
fn kc_import_on_history(dir: &Path, changelog: &Path, db: &TestDb) -> std::process::Output {
    let out = dir.join("src");
    let _ = std::fs::remove_dir_all(&out);
    airlock(
        dir,
        &[
            "--json",
            "import",
            changelog.to_str().unwrap(),
            "--changelog",
            "META-INF/jpa-changelog-master.xml",
            "--out",
            out.to_str().unwrap(),
            "--database",
            &db.name,
            "--history",
            &db.conn(),
        ],
    )
}

#[test]
fn logical_file_paths_are_the_changesets_identity_as_liquibase_records_them() {
    let t = tempdir();
    let dir = t.path();
    let changelog = keycloak_shaped(dir);
    let target = TestDb::new("lblogical");
    let peer = TestDb::new("lblogicalpeer");
    // Liquibase ran the first two changesets: the second it records under the db2
    // changelog's logicalFilePath.
    run_kc_liquibase(&changelog, &target, &["update-count", "--count=2"]);
    assert_eq!(
        target.scalar("SELECT filename FROM databasechangelog WHERE id = '1.1.0.Final-a'"),
        "META-INF/db2-jpa-changelog-1.1.0.Final.xml"
    );
    let o = kc_import_on_history(dir, &changelog, &target);
    expect_code(&o, 0);
    let report = json(&o);
    assert_eq!(
        report["tiers"],
        serde_json::json!([
            "keycloak:1.1.0.Final-b",
            "keycloak:1.2.0.Final-a",
            "keycloak:1.2.0.Final-b"
        ]),
        "{report}"
    );
    // changeSetExecuted names 1.1.0.Final-b by its logical path: it runs.
    let decided = report["preconditions"].to_string();
    assert!(decided.contains("\"run\""), "{decided}");

    pack_and_apply(dir, &dir.join("src"), &target);
    // The real Liquibase finds nothing pending, and its own rows (FILENAME the logical
    // paths) are those airlock wrote.
    let status = run_kc_liquibase(&changelog, &target, &["status", "--verbose"]);
    assert!(status.contains("is up to date"), "{status}");
    run_kc_liquibase(&changelog, &peer, &["update"]);
    assert_eq!(changelog_rows(&target), changelog_rows(&peer));
    assert!(
        changelog_rows(&target)
            .contains("keycloak:1.2.0.Final-a META-INF/jpa-changelog-1.2.0.CR1.xml EXECUTED"),
        "{}",
        changelog_rows(&target)
    );
}

#[test]
fn a_row_under_the_files_own_path_where_liquibase_uses_the_logical_one_is_refused_saying_so() {
    let t = tempdir();
    let dir = t.path();
    let changelog = keycloak_shaped(dir);
    let db = TestDb::new("lblogicalbad");
    run_kc_liquibase(&changelog, &db, &["update-count", "--count=2"]);
    // A row as a tool that ignored logicalFilePath would write it.
    db.exec("UPDATE databasechangelog SET filename = 'META-INF/jpa-changelog-1.1.0.Final-db2.xml' WHERE id = '1.1.0.Final-a'");
    let before = db.scalar("SELECT count(*) FROM databasechangelog");
    let o = kc_import_on_history(dir, &changelog, &db);
    expect_code(&o, 2);
    let err = json(&o)["error"].as_str().unwrap().to_string();
    for n in [
        "keycloak:1.1.0.Final-a",
        "META-INF/jpa-changelog-1.1.0.Final-db2.xml",
        "logicalFilePath",
        "FILENAME `META-INF/db2-jpa-changelog-1.1.0.Final.xml`",
    ] {
        assert!(err.contains(n), "{n}: {err}");
    }
    assert!(!dir.join("src").exists(), "nothing is written");
    assert_eq!(db.scalar("SELECT count(*) FROM databasechangelog"), before);
}

#[test]
fn an_orphan_changelog_beside_the_root_is_left_when_changelog_names_the_root() {
    // Issue 89, item 4: a folder holding a changelog no other includes besides the
    // root; Liquibase runs the one its `--changelog-file` names, and so does import.
    let t = tempdir();
    let dir = t.path();
    // The META-INF folder itself: its includes (`META-INF/…`) resolve on Liquibase's
    // search path, whose `META-INF` the folder is.
    let changelog = keycloak_shaped(dir).join("META-INF");
    write(
        &changelog.join("jpa-changelog-old.xml"),
        &xml(r#"<changeSet id="old-1" author="keycloak"><sql>SELECT 1</sql></changeSet>"#),
    );
    // Without it: two roots, and the error says how to name one.
    refused(
        &changelog,
        &[],
        &[
            "2 root changelogs",
            "`--changelog jpa-changelog-master.xml` or `--changelog jpa-changelog-old.xml`",
        ],
    );
    // A name that is no file of the folder, or leaves it: refused, nothing written.
    refused(
        &changelog,
        &["--changelog", "nope.xml"],
        &["nope.xml", "--changelog"],
    );
    refused(
        &changelog,
        &["--changelog", "../outside.xml"],
        &["../outside.xml", "--changelog"],
    );
    let out = dir.join("src");
    let o = airlock(
        dir,
        &[
            "--json",
            "import",
            changelog.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--database",
            "keycloak",
            "--changelog",
            "jpa-changelog-master.xml",
        ],
    );
    expect_code(&o, 0);
    let report = json(&o);
    assert_eq!(report["tiers"].as_array().unwrap().len(), 5, "{report}");
    let left = report["left_behind"].to_string();
    assert!(left.contains("jpa-changelog-old.xml"), "{left}");
    assert!(left.contains("--changelog"), "{left}");
    // Only a Liquibase layout has a root changelog to name.
    let o = airlock(
        dir,
        &[
            "import",
            changelog.to_str().unwrap(),
            "--out",
            "other",
            "--database",
            "x",
            "--from",
            "folder",
            "--changelog",
            "jpa-changelog-master.xml",
        ],
    );
    expect_code(&o, 2);
    assert!(stderr(&o).contains("--changelog"), "{}", stderr(&o));
    assert!(!dir.join("other").exists());
}

#[test]
fn yaml_and_formatted_sql_logical_file_paths_are_recorded_as_liquibase_records_them() {
    let t = tempdir();
    let dir = t.path();
    let changelog = dir.join("changelog");
    write(
        &changelog.join("db.changelog-master.xml"),
        &xml(r#"
  <include file="y.yaml" relativeToChangelogFile="true"/>
  <include file="f.sql" relativeToChangelogFile="true"/>
  <include file="g.sql" relativeToChangelogFile="true"/>
"#),
    );
    write(
        &changelog.join("y.yaml"),
        "databaseChangeLog:\n  - logicalFilePath: legacy/y-old.yaml\n  - changeSet:\n      id: 1\n      author: ann\n      changes:\n        - createTable:\n            tableName: y\n            columns:\n              - column:\n                  name: id\n                  type: int\n  - changeSet:\n      id: 2\n      author: ann\n      logicalFilePath: legacy/y-own.yaml\n      changes:\n        - createTable:\n            tableName: y2\n            columns:\n              - column:\n                  name: id\n                  type: int\n",
    );
    write(
        &changelog.join("f.sql"),
        "--liquibase formatted sql\n\n--changeset bob:1 logicalFilePath:legacy/f-own.sql\nCREATE TABLE f (id int);\n--rollback DROP TABLE f;\n",
    );
    write(
        &changelog.join("g.sql"),
        "--liquibase formatted sql logicalFilePath:legacy/g-old.sql\n\n--changeset bob:1\nCREATE TABLE g (id int);\n--rollback DROP TABLE g;\n",
    );
    let target = TestDb::new("lblogicalyaml");
    let peer = TestDb::new("lblogicalyamlpeer");
    import_and_apply(dir, &changelog, &target);
    run_liquibase(&changelog, &peer, &["update"]);
    let rows = changelog_rows(&peer);
    assert!(rows.contains("ann:1 legacy/y-old.yaml"), "{rows}");
    assert!(rows.contains("ann:2 legacy/y-own.yaml"), "{rows}");
    assert!(rows.contains("bob:1 legacy/f-own.sql"), "{rows}");
    assert!(rows.contains("bob:1 legacy/g-old.sql"), "{rows}");
    // Everything but the MD5SUM of the formatted SQL changeset (import computes none:
    // Liquibase writes its own on its next update).
    let strip = |s: String| {
        s.replace(' ', "|")
            .split('\n')
            .map(|l| l.split('|').take(3).collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(strip(changelog_rows(&target)), strip(rows));
    let status = run_liquibase(&changelog, &target, &["status", "--verbose"]);
    assert!(status.contains("is up to date"), "{status}");
}

#[test]
fn a_changelog_folder_below_its_search_path_writes_the_paths_liquibase_records() {
    // Keycloak's META-INF imported as it is vendored: its includes (`META-INF/…`) name
    // the files on Liquibase's search path, whose `META-INF` the folder is. Liquibase
    // records those paths (and the root's, run as `META-INF/jpa-changelog-master.xml`),
    // so the rows the tiers write must too.
    let t = tempdir();
    let dir = t.path();
    let resources = keycloak_shaped(dir);
    let target = TestDb::new("lbsearchpath");
    let peer = TestDb::new("lbsearchpathpeer");
    import_and_apply(dir, &resources.join("META-INF"), &target);
    let status = run_kc_liquibase(&resources, &target, &["status", "--verbose"]);
    assert!(status.contains("is up to date"), "{status}");
    run_kc_liquibase(&resources, &peer, &["update"]);
    assert_eq!(changelog_rows(&target), changelog_rows(&peer));
}

/// `modifySql` as Keycloak writes it: for PostgreSQL (a type replaced, a storage
/// parameter appended, a pattern with a group), and for other databases (ignored on
/// PostgreSQL, as Liquibase ignores it).
const MODIFY_SQL: &str = r#"
  <changeSet id="1" author="kc">
    <createTable tableName="person">
      <column name="id" type="int"><constraints primaryKey="true" nullable="false"/></column>
      <column name="name" type="varchar(255)"/>
    </createTable>
    <modifySql dbms="postgresql">
      <replace replace="VARCHAR(255)" with="TEXT"/>
      <append value=" WITH (fillfactor = 70)"/>
    </modifySql>
    <modifySql dbms="mssql,oracle">
      <append value=" ON [PRIMARY]"/>
    </modifySql>
  </changeSet>
  <changeSet id="2" author="kc">
    <addColumn tableName="person"><column name="code" type="varchar(36)"/></addColumn>
    <modifySql>
      <regExpReplace replace="VARCHAR\((\d+)\)" with="CHAR($1)"/>
    </modifySql>
  </changeSet>
"#;

#[test]
fn modify_sql_for_postgresql_edits_the_sql_as_liquibase_does_and_another_dbms_is_ignored() {
    let t = tempdir();
    let dir = t.path();
    let changelog = dir.join("changelog");
    write(&changelog.join("db.changelog-master.xml"), &xml(MODIFY_SQL));
    let target = TestDb::new("lbmodify");
    let peer = TestDb::new("lbmodifypeer");
    let out = dir.join("src");
    let o = airlock(
        dir,
        &[
            "--json",
            "import",
            changelog.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--database",
            &target.name,
        ],
    );
    expect_code(&o, 0);
    let report = json(&o);
    let files = report["files"].to_string();
    assert!(
        files.contains("edited by its `modifySql` as Liquibase edits it on PostgreSQL: replace \\\"VARCHAR(255)\\\" with \\\"TEXT\\\"")
            && files.contains("ignored as Liquibase ignores it: `modifySql dbms=mssql,oracle`"),
        "{report}"
    );
    pack_and_apply(dir, &out, &target);
    // The real Liquibase finds it applied (the rows' MD5SUMs are its own) …
    let status = run_liquibase(&changelog, &target, &["status", "--verbose"]);
    assert!(status.contains("is up to date"), "{status}");
    // … and its own update on a fresh database makes the same schema.
    run_liquibase(&changelog, &peer, &["update"]);
    for db in [&target, &peer] {
        db.exec("DROP TABLE databasechangelog");
    }
    peer.exec("DROP TABLE databasechangeloglock");
    target.exec("DROP TABLE IF EXISTS databasechangeloglock");
    assert_eq!(target.dump_without_ledger(), peer.dump());
    assert_eq!(
        target.scalar("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'person'::regclass AND attname = 'code'"),
        "character(36)"
    );
    assert_eq!(
        target.scalar(
            "SELECT array_to_string(reloptions, ',') FROM pg_class WHERE relname = 'person'"
        ),
        "fillfactor=70"
    );
}

#[test]
fn a_modify_sql_import_cannot_apply_exactly_is_refused_by_name_and_nothing_is_written() {
    let t = tempdir();
    for (i, (body, names)) in [
        (
            r#"<changeSet id="m" author="kc"><createTable tableName="t"><column name="a" type="int"/></createTable><modifySql context="prod"><append value=" x"/></modifySql></changeSet>"#,
            &["kc:m", "modifySql context="][..],
        ),
        (
            r#"<changeSet id="n" author="kc"><createTable tableName="t"><column name="a" type="int"/></createTable><modifySql><replace replace="NOT THERE" with="x"/></modifySql></changeSet>"#,
            &["kc:n", "replace \"NOT THERE\" with \"x\" matches nothing"][..],
        ),
        (
            r#"<changeSet id="s" author="kc"><sql>SELECT 1; SELECT 2;</sql><modifySql><append value=" LIMIT 1"/></modifySql></changeSet>"#,
            &["kc:s", "append \" LIMIT 1\" on a `sql` or `sqlFile` change"][..],
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let dir = t.path().join(format!("m{i}"));
        write(&dir.join("c.xml"), &xml(body));
        refused(&dir, &[], names);
    }
}

/// Keycloak's expression indexes (issue 89, item 6): a `createIndex` column whose name
/// is an expression, with or without `valueComputed`, edited for PostgreSQL by a
/// `modifySql` (Keycloak 14.0.0's `IDX_CLIENT_ATT_BY_NAME_VALUE`).
const COMPUTED_INDEX: &str = r#"<changeSet id="1" author="kc"><createTable tableName="CLIENT_ATTRIBUTES"><column name="NAME" type="VARCHAR(255)"/><column name="VALUE" type="TEXT"/></createTable></changeSet>
<changeSet id="2" author="kc">
  <createIndex tableName="CLIENT_ATTRIBUTES" indexName="IDX_A">
    <column name="NAME" type="VARCHAR(255)"/>
    <column name="VALUE(255)" valueComputed="VALUE(255)"/>
  </createIndex>
  <modifySql dbms="postgresql"><replace replace="VALUE(255)" with="(value::varchar(250))"/></modifySql>
</changeSet>
<changeSet id="3" author="kc"><createIndex tableName="CLIENT_ATTRIBUTES" indexName="IDX_B"><column name="lower(NAME)" valueComputed="lower(NAME)"/></createIndex></changeSet>
<changeSet id="4" author="kc"><createIndex tableName="CLIENT_ATTRIBUTES" indexName="IDX_C"><column name="upper(NAME)" descending="true"/></createIndex></changeSet>
"#;

/// An expression in a `createIndex` column is written bare, as Liquibase writes it (it
/// was quoted as a column name, and the apply failed), and a `valueComputed` there is
/// in the MD5SUM as Liquibase computes it: the real `liquibase update`'s schema, and
/// its rows check on `--history`.
#[test]
fn an_expression_index_column_is_written_as_liquibase_writes_it_and_its_md5sum_checks() {
    let t = tempdir();
    let dir = t.path();
    let changelog = dir.join("changelog");
    write(
        &changelog.join("db.changelog-master.xml"),
        &xml(COMPUTED_INDEX),
    );
    let target = TestDb::new("lbexpr");
    let peer = TestDb::new("lbexprpeer");
    import_and_apply(dir, &changelog, &target);
    liquibase_update(&changelog, &peer);
    target.exec("DROP TABLE databasechangelog");
    target.exec("DROP TABLE IF EXISTS databasechangeloglock");
    assert_eq!(target.dump_without_ledger(), peer.dump());
    assert!(
        peer.dump().contains("((value)::character varying(250))"),
        "{}",
        peer.dump()
    );
    // Liquibase's own rows, then one changeset more: each recorded MD5SUM checks.
    let history = TestDb::new("lbexprhist");
    run_liquibase(&changelog, &history, &["update"]);
    write(
        &changelog.join("db.changelog-master.xml"),
        &xml(&format!("{COMPUTED_INDEX}<changeSet id=\"5\" author=\"kc\"><createTable tableName=\"LATER\"><column name=\"id\" type=\"int\"/></createTable></changeSet>\n")),
    );
    let o = import_on_history(dir, &changelog, &history);
    expect_code(&o, 0);
    assert_eq!(json(&o)["tiers"], serde_json::json!(["kc:5"]));
}

/// `whereParams` (issue 89, item 3; Keycloak uses three): `:name`, `:value` and `?` in
/// the `where` of an `update` and a `delete`.
const WHERE_PARAMS: &str = r#"<changeSet id="1" author="kc"><createTable tableName="REALM_ATTRIBUTE"><column name="NAME" type="VARCHAR(255)"/><column name="VALUE" type="TEXT"/><column name="N" type="INT"/></createTable>
<insert tableName="REALM_ATTRIBUTE"><column name="NAME" value="a"/><column name="VALUE" value="x"/><column name="N" valueNumeric="1"/></insert>
<insert tableName="REALM_ATTRIBUTE"><column name="NAME" value="b"/><column name="VALUE" value="y"/><column name="N" valueNumeric="2"/></insert>
<insert tableName="REALM_ATTRIBUTE"><column name="NAME" value="it's"/><column name="VALUE" value="w"/><column name="N" valueNumeric="3"/></insert></changeSet>
<changeSet id="2" author="kc"><update tableName="REALM_ATTRIBUTE"><column name="VALUE" value="z"/><where>:name = :value AND N = ?</where><whereParams><param name="NAME" value="a"/><param valueNumeric="1"/></whereParams></update></changeSet>
<changeSet id="3" author="kc"><delete tableName="REALM_ATTRIBUTE"><where>NAME = :value OR NAME = :value</where><whereParams><param value="b"/><param value="it's"/></whereParams></delete></changeSet>
"#;

/// An `update` or `delete` with `whereParams` imports with its placeholders put in as
/// Liquibase puts them (it was refused), the rows as `liquibase update` leaves them,
/// and its MD5SUM as Liquibase's (which leaves `whereParams` out).
#[test]
fn where_params_are_put_in_as_liquibase_puts_them_and_their_md5sum_checks() {
    let t = tempdir();
    let dir = t.path();
    let changelog = dir.join("changelog");
    write(
        &changelog.join("db.changelog-master.xml"),
        &xml(WHERE_PARAMS),
    );
    let target = TestDb::new("lbwhere");
    let peer = TestDb::new("lbwherepeer");
    import_and_apply(dir, &changelog, &target);
    liquibase_update(&changelog, &peer);
    target.exec("DROP TABLE databasechangelog");
    target.exec("DROP TABLE IF EXISTS databasechangeloglock");
    assert_eq!(target.dump_without_ledger(), peer.dump());
    assert_eq!(
        peer.scalar("SELECT string_agg(name || '=' || value, ',' ORDER BY n) FROM realm_attribute"),
        "a=z"
    );
    let history = TestDb::new("lbwherehist");
    run_liquibase(&changelog, &history, &["update"]);
    write(
        &changelog.join("db.changelog-master.xml"),
        &xml(&format!("{WHERE_PARAMS}<changeSet id=\"5\" author=\"kc\"><createTable tableName=\"LATER\"><column name=\"id\" type=\"int\"/></createTable></changeSet>\n")),
    );
    let o = import_on_history(dir, &changelog, &history);
    expect_code(&o, 0);
    assert_eq!(json(&o)["tiers"], serde_json::json!(["kc:5"]));
}

/// Issue 89, item 8: every changeset edited since Liquibase ran it is named in one
/// run, each with both checksums, and nothing is written.
#[test]
fn every_changeset_edited_since_liquibase_ran_it_is_named_in_one_run() {
    let t = tempdir();
    let dir = t.path();
    let changelog = dir.join("changelog");
    let master = changelog.join("db.changelog-master.xml");
    write(&master, &xml(WHERE_PARAMS));
    let db = TestDb::new("lbedits");
    run_liquibase(&changelog, &db, &["update"]);
    let edited = WHERE_PARAMS
        .replace("value=\"z\"", "value=\"zz\"")
        .replace("NAME = :value OR", "NAME = :value AND");
    write(&master, &xml(&edited));
    let before = std::fs::read_to_string(&master).unwrap();
    let o = import_on_history(dir, &changelog, &db);
    expect_code(&o, 2);
    let all = stderr(&o) + &stdout(&o);
    for named in [
        "2 problems, each named",
        "(changeset kc:2): edited since Liquibase ran it",
        "(changeset kc:3): edited since Liquibase ran it",
        "put the changeset back as Liquibase ran it",
    ] {
        assert!(all.contains(named), "{named}: {all}");
    }
    assert!(
        !dir.join("src").exists(),
        "an import refused wrote its source"
    );
    assert_eq!(std::fs::read_to_string(&master).unwrap(), before);
}

/// Issue 89, item 1: two Keycloak-shaped `customChange` classes (Java, which airlock
/// cannot run). `FillQty` writes rows (`UPDATE item SET qty = 0 WHERE qty IS NULL`),
/// `Hello` touches nothing in the database.
const CUSTOM: &str = r#"
  <changeSet id="1" author="kc">
    <createTable tableName="item"><column name="id" type="int"><constraints primaryKey="true"/></column><column name="qty" type="int"/></createTable>
    <insert tableName="item"><column name="id" valueNumeric="1"/></insert>
  </changeSet>
  <changeSet id="2" author="kc">
    <customChange class="org.example.kc.FillQty"/>
  </changeSet>
  <changeSet id="3" author="kc">
    <customChange class="org.example.kc.Hello"><param name="helloTo" value="realm"/></customChange>
    <addColumn tableName="item"><column name="note" type="varchar(20)"/></addColumn>
  </changeSet>
  <changeSet id="4" author="kc">
    <customChange class="org.example.kc.Hello"/>
  </changeSet>
"#;

/// The classes of [`CUSTOM`] compiled for the real Liquibase (`javac` against its own
/// jar): the folder to give it as `--classpath`.
fn custom_classes(dir: &Path) -> PathBuf {
    let src = dir.join("java/org/example/kc");
    write(
        &src.join("FillQty.java"),
        "package org.example.kc;\n\
         import liquibase.change.custom.CustomSqlChange;\n\
         import liquibase.database.Database;\n\
         import liquibase.exception.ValidationErrors;\n\
         import liquibase.resource.ResourceAccessor;\n\
         import liquibase.statement.SqlStatement;\n\
         import liquibase.statement.core.RawSqlStatement;\n\
         public class FillQty implements CustomSqlChange {\n\
           public SqlStatement[] generateStatements(Database d) {\n\
             return new SqlStatement[] { new RawSqlStatement(\"UPDATE item SET qty = 0 WHERE qty IS NULL\") };\n\
           }\n\
           public String getConfirmationMessage() { return \"filled\"; }\n\
           public void setUp() {}\n\
           public void setFileOpener(ResourceAccessor r) {}\n\
           public ValidationErrors validate(Database d) { return new ValidationErrors(); }\n\
         }\n",
    );
    write(
        &src.join("Hello.java"),
        "package org.example.kc;\n\
         import liquibase.change.custom.CustomTaskChange;\n\
         import liquibase.database.Database;\n\
         import liquibase.exception.ValidationErrors;\n\
         import liquibase.resource.ResourceAccessor;\n\
         public class Hello implements CustomTaskChange {\n\
           private String helloTo;\n\
           public void setHelloTo(String h) { helloTo = h; }\n\
           public void execute(Database d) {}\n\
           public String getConfirmationMessage() { return \"hello \" + helloTo; }\n\
           public void setUp() {}\n\
           public void setFileOpener(ResourceAccessor r) {}\n\
           public ValidationErrors validate(Database d) { return new ValidationErrors(); }\n\
         }\n",
    );
    let core = util::liquibase::liquibase()
        .parent()
        .unwrap()
        .join("internal/lib/liquibase-core.jar");
    let classes = dir.join("classes");
    let o = Command::new("javac")
        .arg("-cp")
        .arg(&core)
        .arg("-d")
        .arg(&classes)
        .arg(src.join("FillQty.java"))
        .arg(src.join("Hello.java"))
        .output()
        .expect("javac (scripts/test-deps installs a JDK)");
    assert!(
        o.status.success(),
        "javac: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    classes
}

#[test]
fn a_custom_change_mapped_in_the_project_file_imports_with_no_edit_and_runs_as_liquibase_runs_it() {
    let t = tempdir();
    let dir = t.path();
    let changelog = dir.join("changelog");
    let master = changelog.join("db.changelog-master.xml");
    write(&master, &xml(CUSTOM));
    let before = std::fs::read_to_string(&master).unwrap();
    let target = TestDb::new("lbcustom");
    let out = dir.join("src");
    let import = || {
        airlock(
            dir,
            &[
                "--json",
                "import",
                changelog.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
                "--database",
                &target.name,
            ],
        )
    };

    // Nobody mapped the classes: refused, each class named once with where it is
    // used, the block to fill in given, nothing written.
    let o = import();
    expect_code(&o, 2);
    let err = json(&o)["error"].as_str().unwrap().to_string();
    for named in [
        "2 Liquibase customChange class(es)",
        "org.example.kc.FillQty: db.changelog-master.xml:11 (changeset kc:2)",
        "org.example.kc.Hello: db.changelog-master.xml:14 (changeset kc:3); db.changelog-master.xml:18 (changeset kc:4)",
        "[import.custom_change]\n\"org.example.kc.FillQty\" = { sql = \"custom/FillQty.sql\" }",
    ] {
        assert!(err.contains(named), "{named}: {err}");
    }
    assert!(!out.exists(), "an import refused wrote its source");

    // Mapped once, in airlock.toml: the changelog is not edited.
    write(
        &dir.join("custom/fill_qty.sql"),
        "UPDATE item SET qty = 0 WHERE qty IS NULL;\n",
    );
    write(
        &dir.join("airlock.toml"),
        "[import.custom_change]\n\
         \"org.example.kc.FillQty\" = { sql = \"custom/fill_qty.sql\" }\n\
         \"org.example.kc.Hello\" = { skip = \"logs a greeting; nothing in the database\" }\n",
    );
    let o = import();
    expect_code(&o, 0);
    let report = json(&o);
    assert_eq!(report["tiers"], serde_json::json!(["kc:1", "kc:2", "kc:3"]));
    let uses: Vec<String> = (report["custom_changes"].as_array().unwrap().iter())
        .map(|c| {
            format!(
                "{} {}",
                c["class"].as_str().unwrap(),
                c["mapped"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        uses,
        [
            "org.example.kc.FillQty sql custom/fill_qty.sql",
            "org.example.kc.Hello skipped: logs a greeting; nothing in the database"
        ]
    );
    let left = report["left_behind"].to_string();
    assert!(
        left.contains("changeset kc:4") && left.contains("skipped: logs a greeting"),
        "{left}"
    );
    let brought = (report["files"].as_array().unwrap().iter())
        .find(|f| f["change"].as_str().unwrap().contains("changeset kc:2"))
        .expect("kc:2's tier file");
    assert!(
        brought["change"].as_str().unwrap().contains("in place of each Java class, as airlock.toml maps it: `customChange class=\"org.example.kc.FillQty\"`: sql custom/fill_qty.sql"),
        "{brought}"
    );
    let tier2 = std::fs::read_to_string(out.join(brought["to"].as_str().unwrap())).unwrap();
    assert!(
        tier2.contains("-- customChange org.example.kc.FillQty: sql custom/fill_qty.sql (airlock.toml)\nUPDATE item SET qty = 0 WHERE qty IS NULL;"),
        "{tier2}"
    );
    assert_eq!(std::fs::read_to_string(&master).unwrap(), before);

    // Applied, it leaves what the real Liquibase leaves (the classes on its class
    // path), and Liquibase finds nothing to run.
    pack_and_apply(dir, &out, &target);
    let classes = custom_classes(dir);
    let cp = format!("--classpath={}", classes.display());
    let status = run_liquibase(&changelog, &target, &[&cp, "status", "--verbose"]);
    assert!(status.contains("is up to date"), "{status}");
    let peer = TestDb::new("lbcustompeer");
    run_liquibase(&changelog, &peer, &[&cp, "update"]);
    assert_eq!(changelog_rows(&target), changelog_rows(&peer));
    assert_eq!(target.scalar("SELECT qty::text FROM item"), "0");
    target.exec("DROP TABLE databasechangelog");
    target.exec("DROP TABLE IF EXISTS databasechangeloglock");
    peer.exec("DROP TABLE databasechangelog, databasechangeloglock");
    assert_eq!(target.dump_without_ledger(), peer.dump());
}

#[test]
fn a_custom_change_the_targets_history_records_as_run_needs_no_mapping() {
    // Issue 89, items 1 and 7: a changeset DATABASECHANGELOG records as run is no
    // tier, and its class is never asked for.
    let t = tempdir();
    let dir = t.path();
    let changelog = dir.join("changelog");
    write(&changelog.join("db.changelog-master.xml"), &xml(CUSTOM));
    let db = TestDb::new("lbcustomhist");
    let classes = custom_classes(dir);
    let cp = format!("--classpath={}", classes.display());
    run_liquibase(&changelog, &db, &[&cp, "update-count", "--count=2"]);
    write(
        &dir.join("airlock.toml"),
        "[import.custom_change]\n\"org.example.kc.Hello\" = { skip = \"logs a greeting\" }\n",
    );
    let o = import_on_history(dir, &changelog, &db);
    expect_code(&o, 0);
    let report = json(&o);
    assert_eq!(report["tiers"], serde_json::json!(["kc:3"]), "{report}");
    assert!(!report["custom_changes"].to_string().contains("FillQty"));
}

#[test]
fn a_custom_change_mapping_to_no_file_both_a_link_a_fifo_or_a_huge_file_is_refused() {
    let t = tempdir();
    let dir = t.path();
    let changelog = dir.join("changelog");
    write(&changelog.join("db.changelog-master.xml"), &xml(CUSTOM));
    let out = dir.join("src");
    // A link to a real SQL file, a FIFO (a read would wait forever), a file past the
    // cap a migration script has (sparse: its size is what counts, nothing is read).
    write(&dir.join("real.sql"), "UPDATE thing SET qty = 0;\n");
    std::fs::create_dir_all(dir.join("custom")).unwrap();
    std::os::unix::fs::symlink(dir.join("real.sql"), dir.join("custom/link.sql")).unwrap();
    let fifo = Command::new("mkfifo")
        .arg(dir.join("custom/pipe.sql"))
        .status()
        .expect("run mkfifo");
    assert!(fifo.success());
    let big = std::fs::File::create(dir.join("custom/big.sql")).unwrap();
    big.set_len((64 << 20) + 1).unwrap();
    for (toml, named) in [
        (
            "\"org.example.kc.FillQty\" = { sql = \"custom/none.sql\" }",
            "sql custom/none.sql: No such file",
        ),
        (
            "\"org.example.kc.FillQty\" = { sql = \"custom/link.sql\" }",
            "sql custom/link.sql: a symbolic link",
        ),
        (
            "\"org.example.kc.FillQty\" = { sql = \"custom/pipe.sql\" }",
            "sql custom/pipe.sql: not a regular file",
        ),
        (
            "\"org.example.kc.FillQty\" = { sql = \"custom/big.sql\" }",
            "sql custom/big.sql: 67108865 bytes, over the 67108864",
        ),
        (
            "\"org.example.kc.FillQty\" = { sql = \"a.sql\", skip = \"x\" }",
            "needs exactly one of sql and skip",
        ),
        (
            "\"org.example.kc.FillQty\" = { skip = \" \" }",
            "skip says no reason",
        ),
    ] {
        write(
            &dir.join("airlock.toml"),
            &format!("[import.custom_change]\n{toml}\n"),
        );
        let o = airlock(
            dir,
            &[
                "--json",
                "import",
                changelog.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
                "--database",
                "d",
            ],
        );
        expect_code(&o, 2);
        let all = stderr(&o) + &stdout(&o);
        assert!(all.contains(named), "{named}: {all}");
        assert!(!out.exists(), "an import refused wrote its source");
    }
}

/// Issue 89, item 3: changelog properties, Keycloak's `${database.defaultSchemaName}`
/// among them.
const PROPERTIES: &str = r#"
  <property name="tbl" value="thing"/>
  <property name="tbl" value="ignored, set already"/>
  <property name="kind" value="NUMBER(10)" dbms="oracle"/>
  <property name="kind" value="int"/>
  <changeSet id="1" author="kc">
    <createTable tableName="${tbl}"><column name="id" type="${kind}"/></createTable>
  </changeSet>
  <changeSet id="2" author="kc">
    <sql>CREATE TABLE ${database.defaultSchemaName}.other (id int)</sql>
  </changeSet>
  <include file="more.xml" relativeToChangelogFile="true"/>
"#;

const PROPERTIES_MORE: &str = r#"
  <property name="col" value="note" global="false"/>
  <changeSet id="3" author="kc">
    <addColumn tableName="${tbl}"><column name="${col}" type="varchar(20)"/></addColumn>
  </changeSet>
"#;

#[test]
fn changelog_properties_are_substituted_as_liquibase_substitutes_them() {
    let t = tempdir();
    let dir = t.path();
    let changelog = dir.join("changelog");
    write(&changelog.join("db.changelog-master.xml"), &xml(PROPERTIES));
    write(&changelog.join("more.xml"), &xml(PROPERTIES_MORE));
    let target = TestDb::new("lbprops");
    let out = dir.join("src");
    let import = |extra: &[&str]| {
        let mut args = vec![
            "--json",
            "import",
            changelog.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--database",
            &target.name,
        ];
        args.extend_from_slice(extra);
        airlock(dir, &args)
    };
    // The connection's default schema is Liquibase's to know: refused, saying how.
    let o = import(&[]);
    expect_code(&o, 2);
    let err = json(&o)["error"].as_str().unwrap().to_string();
    for named in [
        "(changeset kc:2)",
        "`${database.defaultSchemaName}`: a changelog property nobody set here",
        "`--option database.defaultSchemaName=VALUE`",
    ] {
        assert!(err.contains(named), "{named}: {err}");
    }
    assert!(!out.exists(), "an import refused wrote its source");

    let o = import(&["--option", "database.defaultSchemaName=public"]);
    expect_code(&o, 0);
    pack_and_apply(dir, &out, &target);
    // As the real Liquibase: the same tables, the same rows and MD5SUMs (of the
    // values, as Liquibase computes them), and nothing pending.
    let status = run_liquibase(&changelog, &target, &["status", "--verbose"]);
    assert!(status.contains("is up to date"), "{status}");
    let peer = TestDb::new("lbpropspeer");
    run_liquibase(&changelog, &peer, &["update"]);
    assert_eq!(changelog_rows(&target), changelog_rows(&peer));
    assert_eq!(
        target.scalar("SELECT count(*) FROM databasechangelog WHERE md5sum IS NULL"),
        "0",
        "every MD5SUM written"
    );
    // On the database Liquibase itself migrated, its MD5SUMs (of the values) are
    // checked and a new changeset is the only tier; `--history` gives the connection's
    // default schema, as Liquibase takes it there, so no `--option` is needed.
    write(
        &changelog.join("more.xml"),
        &xml(&format!(
            "{PROPERTIES_MORE}<changeSet id=\"4\" author=\"kc\"><createTable tableName=\"${{tbl}}_later\"><column name=\"${{col}}\" type=\"int\"/></createTable></changeSet>\n"
        )),
    );
    let o = import_on_history(dir, &changelog, &peer);
    expect_code(&o, 0);
    assert_eq!(json(&o)["tiers"], serde_json::json!(["kc:4"]));
    let f = &json(&o)["files"][0]["to"];
    let tier = std::fs::read_to_string(dir.join("src").join(f.as_str().unwrap())).unwrap();
    assert!(
        tier.contains("CREATE TABLE thing_later (note INTEGER)"),
        "{tier}"
    );
    target.exec("DROP TABLE databasechangelog");
    target.exec("DROP TABLE IF EXISTS databasechangeloglock");
    peer.exec("DROP TABLE databasechangelog, databasechangeloglock");
    assert_eq!(target.dump_without_ledger(), peer.dump());
}
