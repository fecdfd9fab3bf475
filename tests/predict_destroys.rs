//! `plan` names what a release destroys (issue 50): what a DROP TABLE/SCHEMA/TYPE …
//! CASCADE and a TRUNCATE … CASCADE take with them (views, other tables' foreign keys,
//! owned sequences, the tables of a schema, each with rows and bytes where they hold
//! data, from the catalog's statistics), the DROP or TRUNCATE that fails without
//! CASCADE (NO-GO), a DELETE or UPDATE that pins no key (its rows counted); and holds
//! it against what each tier declares (`[[tier]] destroys`): undeclared destruction is
//! a warning, a declared name nothing destroys a note, a name that does not parse is
//! refused at lint and pack. Plan writes nothing (every call checks the dump).

mod util;
use util::*;

fn declaring(names: &'static str) -> impl Fn(String) -> String {
    move |t: String| {
        t.replace(
            "gates = []\n",
            &format!("gates = []\ndestroys = [{names}]\n"),
        )
    }
}

fn fixture(tag: &str) -> TestDb {
    let db = TestDb::new(tag);
    db.exec(
        "CREATE TABLE doomed (id serial PRIMARY KEY, v text);\n\
         INSERT INTO doomed (v) SELECT 'x' FROM generate_series(1, 300);\n\
         CREATE VIEW doomed_view AS SELECT id FROM doomed;\n\
         CREATE TABLE child (id int PRIMARY KEY, did int REFERENCES doomed);\n\
         INSERT INTO child VALUES (1, 1), (2, 2);\n\
         CREATE SCHEMA arch; CREATE TABLE arch.a (i int); CREATE TABLE arch.b (i int);\n\
         INSERT INTO arch.a SELECT generate_series(1, 40); INSERT INTO arch.b SELECT generate_series(1, 2);\n\
         ANALYZE;",
    );
    db
}

#[test]
fn a_drop_cascade_names_what_it_takes_and_without_cascade_it_is_no_go() {
    let db = fixture("pred_cascade");
    let p = plan_sql(&db, "DROP TABLE doomed CASCADE;\n");
    assert_eq!(p.code, 0, "{:#}", p.json);
    let d = &p.destroys()[0];
    assert_eq!(
        (d["rows"].as_i64(), d["exact"].as_bool()),
        (Some(300), Some(true)),
        "{d:#}"
    );
    let what: Vec<&str> = d["dependents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["what"].as_str().unwrap())
        .collect();
    for want in [
        "view doomed_view",
        "constraint child_did_fkey on table child",
        "sequence doomed_id_seq",
    ] {
        assert!(what.contains(&want), "{want} not in {what:?}");
    }
    assert!(
        p.human.contains("takes 3 more object(s) with it") && p.human.contains("view doomed_view"),
        "{}",
        p.human
    );
    // Without CASCADE the view and the foreign key make it fail: NO-GO.
    let p = plan_sql(&db, "DROP TABLE doomed;\n");
    assert_eq!(p.code, 1, "{:#}", p.json);
    let x = &p.at_line(1)[0];
    assert_eq!(
        (x["outcome"].as_str(), x["count"].as_i64()),
        (Some("fails"), Some(2)),
        "{x:#}"
    );
    // Control: the release drops the view and the foreign key first: GO.
    let p = plan_sql(
        &db,
        "DROP VIEW doomed_view;\nALTER TABLE child DROP CONSTRAINT child_did_fkey;\nDROP TABLE doomed;\n",
    );
    assert_eq!(p.code, 0, "{:#}", p.json);
    // A schema: its tables counted from statistics; not empty without CASCADE: NO-GO.
    let p = plan_sql(&db, "DROP SCHEMA arch CASCADE;\n");
    let d = &p.destroys()[0];
    assert_eq!(
        (
            d["object"].as_str(),
            d["rows"].as_i64(),
            d["exact"].as_bool()
        ),
        (Some("arch"), Some(42), Some(false)),
        "{d:#}"
    );
    assert_eq!(d["dependents_total"], 2);
    assert_eq!(plan_sql(&db, "DROP SCHEMA arch;\n").code, 1);
    assert_eq!(
        plan_sql(&db, "CREATE SCHEMA empty;\nDROP SCHEMA empty;\n").code,
        0
    );
}

#[test]
fn truncate_of_a_referenced_table_fails_without_cascade_and_names_what_cascade_empties() {
    let db = fixture("pred_truncate");
    let p = plan_sql(&db, "TRUNCATE doomed;\n");
    assert_eq!(p.code, 1, "{:#}", p.json);
    assert!(
        p.at_line(1)[0]["keys"][0]
            .as_str()
            .unwrap()
            .contains("child"),
        "{:#}",
        p.json
    );
    let p = plan_sql(&db, "TRUNCATE doomed CASCADE;\n");
    assert_eq!(p.code, 0, "{:#}", p.json);
    assert!(p.destroys()[0]["dependents"][0]["what"]
        .as_str()
        .unwrap()
        .contains("child"));
    // Both named in one statement: nothing left referencing it.
    assert_eq!(plan_sql(&db, "TRUNCATE doomed, child;\n").code, 0);
}

#[test]
fn a_delete_or_update_that_pins_no_key_is_counted_and_one_by_key_is_not_listed() {
    let db = fixture("pred_delete");
    let p = plan_sql(
        &db,
        "DELETE FROM doomed WHERE id > 100;\nDELETE FROM child WHERE id = 2;\nUPDATE arch.a SET i = 0 WHERE i < 11;\n",
    );
    let d = p.destroys();
    assert_eq!(d.len(), 2, "{:#}", p.json);
    assert_eq!(
        (d[0]["rows"].as_i64(), d[0]["exact"].as_bool()),
        (Some(200), Some(true)),
        "{:#}",
        d[0]
    );
    assert_eq!(d[1]["object"], "arch.a");
    assert_eq!(d[1]["rows"], 10);
}

#[test]
fn undeclared_destruction_is_a_warning_declared_is_quiet_and_a_stale_declaration_a_note() {
    let db = fixture("pred_declared");
    let sql = "DROP TABLE doomed CASCADE;\nALTER TABLE arch.a DROP COLUMN i;\n";
    // Nothing declared: the destroys row warns, naming each, GO stays GO.
    let p = plan_sql(&db, sql);
    assert_eq!(
        (p.code, p.json["verdict"].as_str()),
        (0, Some("GO")),
        "{:#}",
        p.json
    );
    let row = p.row("destroys");
    assert_eq!(row["verdict"], "WARN", "{row:#}");
    let ev = row["evidence"].as_str().unwrap();
    assert!(
        ev.contains("public.doomed") && ev.contains("arch.a.i") && ev.contains("2 undeclared"),
        "{ev}"
    );
    assert!(
        p.human
            .contains("warning: sql/tier1.sql:1 DROP TABLE destroys public.doomed"),
        "{}",
        p.human
    );
    // Declared (a table, and a table covering its column): quiet.
    let p = plan_tier(&db, sql, &declaring("\"public.doomed\", \"arch.a\""), &[]);
    assert_eq!(p.row("destroys")["verdict"], "OK", "{:#}", p.json);
    assert!(
        p.destroys().iter().all(|d| d["declared"] == true),
        "{:#}",
        p.json
    );
    // Declared and not destroyed: a note, still OK.
    let p = plan_tier(
        &db,
        sql,
        &declaring("\"public.doomed\", \"arch\", \"public.kept\""),
        &[],
    );
    assert_eq!(p.row("destroys")["verdict"], "OK", "{:#}", p.json);
    assert_eq!(
        p.json["predictions"]["declared_not_destroyed"][0]["name"],
        "public.kept"
    );
    assert!(
        p.human
            .contains("note: tier \"one\" declares destroys \"public.kept\""),
        "{}",
        p.human
    );
    // Nothing destroyed, nothing declared: OK.
    assert_eq!(
        plan_sql(&db, "SELECT 1;\n").row("destroys")["verdict"],
        "OK"
    );
}

#[test]
fn a_destroys_name_that_does_not_parse_is_refused_at_lint_and_pack_and_old_manifests_keep_their_bytes(
) {
    let t = keyed_dir();
    let d = t.path();
    let src = MiniSource::new(
        &d.join("s"),
        "db",
        "SELECT true AS ready",
        &[("one", "SELECT 1;\n", false)],
        "SELECT 1;\n",
    );
    let toml = src.dir.join("bundle.toml");
    let plain = std::fs::read_to_string(&toml).unwrap();
    // Without destroys: the manifest has no such key (its bytes as before).
    pack(d, &src.dir, "rm.key", "plain.tar.gz");
    let o = airlock(
        d,
        &["--json", "inspect", "plain.tar.gz", "--trust", "rm.pub"],
    );
    assert!(!stdout(&o).contains("destroys"), "{}", stdout(&o));
    for bad in ["\"public..x\"", "\"a.b.c.d\"", "\"1x\""] {
        std::fs::write(&toml, declaring(bad)(plain.clone())).unwrap();
        let o = airlock(d, &["lint", src.dir.to_str().unwrap()]);
        assert_eq!(code(&o), 2, "{bad}: {}{}", stdout(&o), stderr(&o));
        assert!(
            format!("{}{}", stdout(&o), stderr(&o)).contains("destroys"),
            "{bad}"
        );
        let o = airlock(
            d,
            &[
                "pack",
                src.dir.to_str().unwrap(),
                "--key",
                "rm.key",
                "--out",
                "bad.tar.gz",
            ],
        );
        assert_eq!(code(&o), 2, "{bad}: {}", stderr(&o));
        assert!(!d.join("bad.tar.gz").exists(), "pack wrote a bundle");
    }
    std::fs::write(&toml, declaring("\"public.\\\"Doomed\\\"\"")(plain)).unwrap();
    pack(d, &src.dir, "rm.key", "declared.tar.gz");
    let o = airlock(
        d,
        &["--json", "inspect", "declared.tar.gz", "--trust", "rm.pub"],
    );
    assert!(stdout(&o).contains("\"destroys\""), "{}", stdout(&o));
}

/// Issue 66, finding 7: a DELETE inside a data-modifying WITH (`WITH gone AS (DELETE
/// FROM … RETURNING id) SELECT count(*) FROM gone`), and one nested deeper, is read
/// like the plain DELETE: plan counts its rows, the `destroys` check warns of it
/// undeclared and is quiet declared, and the dossier shows it to approvers as
/// "deletes rows" on that table, with or without a database.
#[test]
fn a_delete_inside_a_with_clause_is_counted_declared_and_shown_like_the_plain_one() {
    let db = fixture("pred_cte");
    let sql = "WITH gone AS (DELETE FROM doomed WHERE id > 100 RETURNING id) SELECT count(*) FROM gone;\n\
               WITH a AS (DELETE FROM arch.a RETURNING i), b AS (UPDATE arch.b SET i = 0 WHERE i < 2 RETURNING i) INSERT INTO child SELECT 10 + count(*), NULL FROM a;\n";
    let p = plan_sql(&db, sql);
    assert_eq!(p.code, 0, "{:#}", p.json);
    let d = p.destroys();
    let got: Vec<(&str, i64)> = d
        .iter()
        .map(|d| (d["object"].as_str().unwrap(), d["rows"].as_i64().unwrap()))
        .collect();
    assert_eq!(
        got,
        vec![("public.doomed", 200), ("arch.a", 40), ("arch.b", 1)],
        "{:#}",
        p.json
    );
    let row = p.row("destroys");
    assert_eq!(row["verdict"], "WARN", "{row:#}");
    assert!(
        row["evidence"].as_str().unwrap().contains("public.doomed"),
        "{row:#}"
    );
    assert!(
        p.human.contains("WITH … DELETE") && p.human.contains("public.doomed"),
        "{}",
        p.human
    );
    let p = plan_tier(&db, sql, &declaring("\"public.doomed\", \"arch\""), &[]);
    assert_eq!(p.row("destroys")["verdict"], "OK", "{:#}", p.json);

    // The dossier: without a database, the statements read from the SQL; with one,
    // plan's count.
    let t = keyed_dir();
    let d = t.path();
    let b = mini_bundle(
        d,
        &db.name,
        "b.tar.gz",
        "SELECT true AS ready",
        &[("one", sql, false)],
        "INSERT INTO child VALUES (99, NULL);\n",
    );
    for with_db in [false, true] {
        let mut args = vec![
            "dossier",
            b.as_str(),
            "--trust",
            "rm.pub",
            "--out",
            "page.html",
            "--force",
        ];
        let conn = db.conn();
        if with_db {
            args.extend(["--db", conn.as_str()]);
        }
        expect_code(&airlock(d, &args), 0);
        let html = std::fs::read_to_string(d.join("page.html")).unwrap();
        let at = html.find("<section id=\"destroys\">").expect("the section");
        let section = &html[at..];
        let section = &section[..section.find("</section>").unwrap_or(section.len())];
        if with_db {
            assert!(
                section.contains("doomed") && section.contains("200"),
                "{section}"
            );
        } else {
            assert!(
                section.contains("deletes rows")
                    && section.contains("doomed")
                    && section.contains("arch.a"),
                "{section}"
            );
        }
        assert!(!html.contains("runs a query"), "a DELETE shown as a query");
    }
}

/// Issue 68, finding 4: the most common data migration there is, a column added and
/// then filled (`UPDATE … SET new = f(old) WHERE new IS NULL`), destroys nothing: every
/// value it writes is one the release's own column holds, of rows the release keeps.
/// An UPDATE that also writes a column the release did not add is still counted.
#[test]
fn a_backfill_of_a_column_the_release_adds_destroys_nothing() {
    let db = TestDb::new("pred_backfill");
    db.exec(
        "CREATE SCHEMA shop; CREATE TABLE shop.customers (id serial PRIMARY KEY, email text);\n\
         INSERT INTO shop.customers (email) SELECT 'U' || g || '@x' FROM generate_series(1, 120) g;\n\
         ANALYZE;",
    );
    let backfill = "ALTER TABLE shop.customers ADD COLUMN email_normalized text;\n\
                    UPDATE shop.customers SET email_normalized = lower(email) WHERE email_normalized IS NULL;\n\
                    ALTER TABLE shop.customers ADD COLUMN tier int DEFAULT 0;\n\
                    UPDATE shop.customers SET tier = 1;\n";
    let p = plan_sql(&db, backfill);
    assert_eq!(p.code, 0, "{:#}", p.json);
    assert!(p.destroys().is_empty(), "{:#}", p.json);
    assert_eq!(p.row("destroys")["verdict"], "OK", "{:#}", p.json);
    assert!(!p.human.contains("destroys shop.customers"), "{}", p.human);

    // Writing a column that was there before the release overwrites its values.
    let mixed = "ALTER TABLE shop.customers ADD COLUMN email_normalized text;\n\
                 UPDATE shop.customers SET email_normalized = lower(email), email = lower(email);\n";
    let p = plan_sql(&db, mixed);
    let d = p.destroys();
    assert_eq!(d.len(), 1, "{:#}", p.json);
    assert_eq!(d[0]["object"], "shop.customers", "{:#}", p.json);
    assert_eq!(d[0]["rows"], 120, "{:#}", p.json);
    // A column of the same name the release did not add (another table's) does not count.
    let other = "ALTER TABLE shop.other ADD COLUMN email text;\nUPDATE shop.customers SET email = lower(email);\n";
    db.exec("CREATE TABLE shop.other (id int);");
    let p = plan_sql(&db, other);
    assert_eq!(p.destroys().len(), 1, "{:#}", p.json);
}

/// A DROP COLUMN is judged from the catalog at its point in the release, not from its
/// text (issue 76, item 9): `DROP COLUMN IF EXISTS` of a column not there destroys
/// nothing, nor does dropping a column the release added or already dropped; a plain
/// DROP COLUMN of a column not there is "not there now" with no count; a column there
/// now is counted with its table's rows.
#[test]
fn a_drop_column_is_judged_from_the_catalog_not_its_text() {
    let db = fixture("pred_dropcol_absent");
    let p = plan_sql(
        &db,
        "ALTER TABLE doomed DROP COLUMN IF EXISTS parentid;\n\
         ALTER TABLE doomed ADD COLUMN n int;\n\
         ALTER TABLE doomed DROP COLUMN n;\n\
         ALTER TABLE doomed DROP COLUMN v;\n\
         ALTER TABLE doomed DROP COLUMN IF EXISTS v;\n",
    );
    assert_eq!(p.code, 0, "{:#}", p.json);
    let d = p.destroys();
    let lines: Vec<u64> = d.iter().map(|x| x["line"].as_u64().unwrap()).collect();
    assert_eq!(lines, vec![4], "{:#}", p.json);
    assert_eq!(
        (d[0]["rows"].as_i64(), d[0]["existing"].as_bool()),
        (Some(300), Some(true)),
        "{:#}",
        p.json
    );
    assert!(!p.human.contains("parentid"), "{}", p.human);

    // Without IF EXISTS a column not there fails the statement (PostgreSQL: "column
    // … does not exist"): a NO-GO naming it, and nothing listed as destroyed.
    let p = plan_sql(&db, "ALTER TABLE doomed DROP COLUMN parentid;\n");
    assert_missing(
        &p,
        1,
        "public.doomed.parentid",
        "the column is not there now",
    );
    // Nor when the release dropped it already.
    let p = plan_sql(
        &db,
        "ALTER TABLE doomed DROP COLUMN v;\nALTER TABLE doomed DROP COLUMN v;\n",
    );
    assert_missing(
        &p,
        2,
        "public.doomed.v",
        "the release drops the column earlier",
    );
    assert_eq!(p.destroys().len(), 1, "{:#}", p.json);
    assert_eq!(p.destroys()[0]["line"], 1, "{:#}", p.json);
}

/// `p` is a NO-GO (exit 1) for exactly one statement, the DROP at `line`, whose object
/// (`object`) is missing for `why`; it lists nothing about that line as destroyed.
fn assert_missing(p: &Planned, line: u64, object: &str, why: &str) {
    assert_eq!(p.code, 1, "{:#}", p.json);
    assert_eq!(
        p.row("predicted-failures")["verdict"],
        "FAIL",
        "{:#}",
        p.json
    );
    let fails: Vec<&serde_json::Value> = p.json["predictions"]["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["outcome"] == "fails")
        .collect();
    assert_eq!(fails.len(), 1, "{:#}", p.json);
    assert_eq!(fails[0]["line"], line, "{:#}", p.json);
    assert_eq!(fails[0]["keys"][0], object, "{:#}", p.json);
    let reason = fails[0]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with(why) && reason.contains("the DROP fails"),
        "{reason}"
    );
    assert!(
        p.destroys().iter().all(|d| d["line"] != line),
        "{:#}",
        p.json
    );
}

/// A DROP TABLE without IF EXISTS of a table that is not there fails (PostgreSQL:
/// "table … does not exist"): plan says NO-GO before apply finds it, naming the table.
/// With IF EXISTS, or when the release creates the table first, or when an earlier
/// statement may bring it in under that name (a rename, SET SCHEMA, an extension), it
/// is no failure. Plan writes nothing (the dump is unchanged).
#[test]
fn a_drop_table_of_a_table_not_there_is_a_no_go_naming_it() {
    let db = fixture("pred_droptable_absent");
    let before = db.dump();
    let p = plan_sql(&db, "DROP TABLE doomed_view_old;\n");
    assert_missing(
        &p,
        1,
        "public.doomed_view_old",
        "the table is not there now",
    );
    assert!(
        p.human.contains("FAILS") && p.human.contains("doomed_view_old"),
        "{}",
        p.human
    );
    // Two tables in one DROP, one of them there: the missing one is named.
    let p = plan_sql(&db, "DROP TABLE arch.b, arch.gone;\n");
    assert_missing(&p, 1, "arch.gone", "the table is not there now");
    assert_eq!(db.dump(), before, "plan wrote nothing");

    for fine in [
        "DROP TABLE IF EXISTS doomed_view_old;\n",
        "CREATE TABLE scratch (i int);\nDROP TABLE scratch;\n",
        "ALTER TABLE arch.a RENAME TO a_old;\nDROP TABLE arch.a_old;\n",
        "ALTER TABLE arch.a SET SCHEMA public;\nDROP TABLE public.a;\n",
    ] {
        assert_no_failure(&db, fine);
    }
}

/// `sql` planned on `db` is no predicted failure: exit 0, `predicted-failures` not FAIL.
fn assert_no_failure(db: &TestDb, sql: &str) {
    let p = plan_sql(db, sql);
    assert_eq!(p.code, 0, "{sql}: {:#}", p.json);
    assert_ne!(
        p.row("predicted-failures")["verdict"],
        "FAIL",
        "{sql}: {:#}",
        p.json
    );
}

/// A DROP TABLE of a view, an index or a sequence fails, with IF EXISTS or without
/// (PostgreSQL: "… is not a table"): plan says NO-GO naming it and what it is, and
/// lists it as destroyed nowhere. A table the release makes under that name
/// first is dropped as a table. Plan writes nothing (the dump is unchanged).
#[test]
fn a_drop_table_of_a_view_an_index_or_a_sequence_is_a_no_go_naming_what_it_is() {
    let db = fixture("pred_droptable_kind");
    let before = db.dump();
    for (sql, object, what) in [
        ("DROP TABLE doomed_view;\n", "public.doomed_view", "a view"),
        (
            "DROP TABLE IF EXISTS doomed_view;\n",
            "public.doomed_view",
            "a view",
        ),
        (
            "DROP TABLE doomed_pkey;\n",
            "public.doomed_pkey",
            "an index",
        ),
        (
            "DROP TABLE doomed_id_seq;\n",
            "public.doomed_id_seq",
            "a sequence",
        ),
    ] {
        let p = plan_sql(&db, sql);
        assert_missing(&p, 1, object, &format!("{object} is {what}, not a table"));
    }
    assert_eq!(db.dump(), before, "plan wrote nothing");

    assert_no_failure(
        &db,
        "DROP VIEW doomed_view;\nCREATE TABLE doomed_view (i int);\nDROP TABLE doomed_view;\n",
    );
}
