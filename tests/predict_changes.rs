//! `plan` predicts the rest of issue 50's data-dependent failures: a column type the
//! values there now do not fit (tested with the conversion PostgreSQL runs, USING
//! included), an enum recreated without a label rows still hold, a DROP TYPE of a type
//! in use, VALIDATE CONSTRAINT of a NOT VALID check or foreign key on rows that break
//! it. Each is NO-GO with apply's exit (1), the statement, the table, the count and the
//! first keys (the primary key's values); each has a clean control that is GO; plan
//! writes nothing (every call checks the dump); a function the database defines is
//! never run.

mod util;
use util::*;

/// NO-GO, exit 1, the prediction at `line` fails with `count` rows.
fn assert_fails(p: &Planned, line: u64, count: i64) -> serde_json::Value {
    assert_eq!(p.code, 1, "{:#}", p.json);
    assert_eq!(p.json["verdict"], "NO-GO");
    assert_eq!(p.row("predicted-failures")["verdict"], "FAIL");
    let at = p.at_line(line);
    let x = at
        .iter()
        .find(|x| x["outcome"] == "fails")
        .unwrap_or_else(|| panic!("nothing fails at line {line}: {:#}", p.json));
    assert_eq!(x["count"], count, "{x:#}");
    (*x).clone()
}

fn assert_go(p: &Planned) {
    assert_eq!(p.code, 0, "{:#}", p.json);
    assert_eq!(p.json["verdict"], "GO");
    assert_eq!(p.row("predicted-failures")["verdict"], "OK", "{:#}", p.json);
}

#[test]
fn a_column_type_the_values_do_not_fit_is_no_go_with_the_rows_and_clean_values_are_go() {
    let db = TestDb::new("pred_cast");
    db.exec(
        "CREATE TABLE t (id int PRIMARY KEY, n text, d text, u text, v varchar(20), m numeric(10,2), ok text);\n\
         INSERT INTO t VALUES (1, '10', '2024-01-31', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'abc', 12345678.91, '5'),\n\
           (2, 'ten', '2024-02-30', 'nope', 'abcdef', 1.5, '6'),\n\
           (3, ' 7 ', 'not a date', NULL, 'abc   ', 99.99, NULL),\n\
           (4, '99999999999', '2024-13-01', 'x', 'a\"bcde', -5, '7');",
    );
    // text -> integer: 'ten' and the one that overflows an integer.
    let p = plan_sql(
        &db,
        "ALTER TABLE t ALTER COLUMN n TYPE integer USING n::integer;\n",
    );
    let x = assert_fails(&p, 1, 2);
    assert_eq!(x["keys"], serde_json::json!(["2", "4"]), "{x:#}");
    assert!(x["reason"].as_str().unwrap().contains("keys: id)"), "{x:#}");
    assert!(
        p.human.contains("FAILS") && p.human.contains("column"),
        "{}",
        p.human
    );
    // text -> date and text -> uuid.
    assert_fails(
        &plan_sql(
            &db,
            "ALTER TABLE t ALTER COLUMN d TYPE date USING d::date;\n",
        ),
        1,
        3,
    );
    assert_fails(
        &plan_sql(
            &db,
            "ALTER TABLE t ALTER COLUMN u TYPE uuid USING u::uuid;\n",
        ),
        1,
        2,
    );
    // A shorter varchar: what does not fit (trailing spaces are cut, not refused).
    let x = assert_fails(
        &plan_sql(&db, "ALTER TABLE t ALTER COLUMN v TYPE varchar(3);\n"),
        1,
        2,
    );
    assert_eq!(x["keys"], serde_json::json!(["2", "4"]), "{x:#}");
    // numeric precision: 12345678.91 does not fit numeric(5,2).
    assert_fails(
        &plan_sql(&db, "ALTER TABLE t ALTER COLUMN m TYPE numeric(5,2);\n"),
        1,
        1,
    );
    // Clean controls: GO.
    assert_go(&plan_sql(
        &db,
        "ALTER TABLE t ALTER COLUMN ok TYPE integer USING ok::integer;\n",
    ));
    assert_go(&plan_sql(
        &db,
        "ALTER TABLE t ALTER COLUMN v TYPE varchar(6);\n",
    ));
    assert_go(&plan_sql(
        &db,
        "ALTER TABLE t ALTER COLUMN m TYPE numeric(12,2);\n",
    ));
    // Without USING, text cannot become an integer whatever the rows: PostgreSQL
    // refuses it, and so does plan.
    let p = plan_sql(&db, "ALTER TABLE t ALTER COLUMN ok TYPE integer;\n");
    let x = &p.at_line(1)[0];
    assert_eq!(p.code, 1, "{:#}", p.json);
    assert!(x["reason"].as_str().unwrap().contains("USING"), "{x:#}");
}

#[test]
fn a_type_change_that_rounds_values_is_counted_as_destruction() {
    let db = TestDb::new("pred_round");
    db.exec(
        "CREATE TABLE p (id int PRIMARY KEY, price numeric(10,4), at timestamptz);\n\
         INSERT INTO p VALUES (1, 1.2345, '2024-01-01 10:00+00'), (2, 2.5, '2024-01-02 00:00+00'), (3, 3.1000, NULL);",
    );
    let p = plan_sql(
        &db,
        "ALTER TABLE p ALTER COLUMN price TYPE numeric(10,2);\n",
    );
    assert_go(&p);
    let d = p.destroys();
    assert_eq!(d.len(), 1, "{:#}", p.json);
    assert_eq!(d[0]["rows"], 1, "{:#}", d[0]);
    assert_eq!(d[0]["object"], "public.p.price");
    assert!(d[0]["statement"]
        .as_str()
        .unwrap()
        .contains("loses precision"));
    assert!(p.human.contains("loses precision"), "{}", p.human);
    // Widening loses nothing.
    let p = plan_sql(
        &db,
        "ALTER TABLE p ALTER COLUMN price TYPE numeric(12,4);\n",
    );
    assert!(p.destroys().is_empty(), "{:#}", p.json);
}

#[test]
fn an_enum_recreated_without_a_label_in_use_is_no_go_and_drop_type_in_use_too() {
    let db = TestDb::new("pred_enum");
    db.exec(
        "CREATE TYPE mood AS ENUM ('happy', 'ok', 'sad', 'meh');\n\
         CREATE TABLE people (id int PRIMARY KEY, m mood);\n\
         INSERT INTO people VALUES (1, 'happy'), (2, 'sad'), (3, 'sad'), (4, 'meh'), (5, NULL);\n\
         CREATE TYPE unused AS ENUM ('a');",
    );
    // How a release removes an enum label: rename, recreate, cast, drop the old one.
    let recreate = |labels: &str| {
        format!(
            "ALTER TYPE mood RENAME TO mood_old;\n\
             CREATE TYPE mood AS ENUM ({labels});\n\
             ALTER TABLE people ALTER COLUMN m TYPE mood USING m::text::mood;\n\
             DROP TYPE mood_old;\n"
        )
    };
    let p = plan_sql(&db, &recreate("'happy', 'ok'"));
    let x = assert_fails(&p, 3, 3);
    assert_eq!(x["keys"], serde_json::json!(["sad ×2", "meh ×1"]), "{x:#}");
    // The old type is no longer used once the column is cast: its DROP is fine.
    assert!(p.at_line(4).is_empty(), "{:#}", p.json);
    // What goes: the labels (the rows holding them: the prediction), then the old type.
    let d = p.destroys();
    assert!(
        d[0]["statement"]
            .as_str()
            .unwrap()
            .contains("enum labels removed"),
        "{:#}",
        d[0]
    );
    assert_eq!(
        (d[0]["object"].as_str(), d[0]["rows"].as_i64()),
        (Some("public.mood"), Some(3)),
        "{:#}",
        d[0]
    );
    assert!(
        d[0]["note"].as_str().unwrap().contains("sad, meh"),
        "{:#}",
        d[0]
    );
    assert_eq!(
        (
            d[1]["statement"].as_str(),
            d[1]["object"].as_str(),
            d[1]["existing"].as_bool()
        ),
        (Some("DROP TYPE"), Some("public.mood"), Some(true)),
        "{:#}",
        d[1]
    );
    // Clean control: every label in use kept.
    assert_go(&plan_sql(&db, &recreate("'happy', 'sad', 'meh'")));
    // DROP TYPE of a type a column uses fails whatever the rows; one nobody uses is GO.
    let p = plan_sql(&db, "DROP TYPE mood;\n");
    let x = assert_fails(&p, 1, 1);
    assert!(
        x["keys"][0]
            .as_str()
            .unwrap()
            .contains("column m of table people"),
        "{x:#}"
    );
    assert_go(&plan_sql(&db, "DROP TYPE unused;\n"));
    // With CASCADE it drops the column: counted as destruction.
    let p = plan_sql(&db, "DROP TYPE mood CASCADE;\n");
    assert_go(&p);
    let d = p.destroys();
    assert_eq!(d[0]["object"], "public.mood");
    assert!(
        d[0]["dependents"][0]["what"]
            .as_str()
            .unwrap()
            .contains("column m of table people"),
        "{:#}",
        d[0]
    );
}

#[test]
fn validate_constraint_of_a_not_valid_check_or_foreign_key_is_no_go_on_rows_that_break_it() {
    let db = TestDb::new("pred_validate");
    db.exec(
        "CREATE TABLE parent (id int PRIMARY KEY); INSERT INTO parent VALUES (1), (2);\n\
         CREATE TABLE child (id int PRIMARY KEY, x int, pid int);\n\
         INSERT INTO child VALUES (10, 5, 1), (11, -1, 9), (12, -2, NULL), (13, 3, 2);\n\
         ALTER TABLE child ADD CONSTRAINT pos CHECK (x > 0) NOT VALID;\n\
         ALTER TABLE child ADD CONSTRAINT fk FOREIGN KEY (pid) REFERENCES parent NOT VALID;\n\
         ALTER TABLE child ADD CONSTRAINT small CHECK (x < 100) NOT VALID;",
    );
    // The constraints in the catalog.
    let x = assert_fails(
        &plan_sql(&db, "ALTER TABLE child VALIDATE CONSTRAINT pos;\n"),
        1,
        2,
    );
    assert_eq!(x["keys"], serde_json::json!(["11", "12"]), "{x:#}");
    let x = assert_fails(
        &plan_sql(&db, "ALTER TABLE child VALIDATE CONSTRAINT fk;\n"),
        1,
        1,
    );
    assert_eq!(x["keys"], serde_json::json!(["9"]), "{x:#}");
    assert_go(&plan_sql(
        &db,
        "ALTER TABLE child VALIDATE CONSTRAINT small;\n",
    ));
    // Added NOT VALID by the release itself, then validated: asked as written.
    let p = plan_sql(
        &db,
        "ALTER TABLE child ADD CONSTRAINT even CHECK (x % 2 = 1) NOT VALID;\nALTER TABLE child VALIDATE CONSTRAINT even;\n",
    );
    assert_fails(&p, 2, 2);
    assert_go(&plan_sql(
        &db,
        "ALTER TABLE child ADD CONSTRAINT big CHECK (x > -10) NOT VALID;\nALTER TABLE child VALIDATE CONSTRAINT big;\n",
    ));
}

#[test]
fn a_function_the_database_defines_is_never_run_and_makes_what_follows_unpredictable() {
    let db = TestDb::new("pred_calls");
    db.exec(
        "CREATE TABLE t (id int PRIMARY KEY, x int); INSERT INTO t VALUES (1, NULL), (2, 2);\n\
         CREATE TABLE trace (at text);\n\
         CREATE FUNCTION noisy(int) RETURNS boolean LANGUAGE plpgsql AS \
           $$ BEGIN INSERT INTO trace VALUES ('ran'); RETURN true; END $$;\n\
         CREATE FUNCTION fill() RETURNS void LANGUAGE sql AS $$ UPDATE t SET x = 0 WHERE x IS NULL $$;",
    );
    // A CHECK calling a function the database defines is not asked about.
    let p = plan_sql(&db, "ALTER TABLE t ADD CONSTRAINT k CHECK (noisy(x));\n");
    assert_eq!(p.code, 0, "{:#}", p.json);
    assert_eq!(
        p.prediction(0)["outcome"],
        "not-predictable",
        "{:#}",
        p.json
    );
    // A SELECT of a function that may write: what follows is not judged on the rows
    // there now (the NULL would otherwise fail SET NOT NULL).
    let p = plan_sql(
        &db,
        "SELECT fill();\nALTER TABLE t ALTER COLUMN x SET NOT NULL;\n",
    );
    assert_eq!(p.code, 0, "{:#}", p.json);
    let x = &p.at_line(2)[0];
    assert_eq!(x["outcome"], "not-predictable", "{x:#}");
    assert!(x["reason"].as_str().unwrap().contains("fill"), "{x:#}");
    // A built-in call changes nothing of that.
    let x = assert_fails(
        &plan_sql(&db, "SELECT pg_catalog.set_config('search_path', 'public', false);\nALTER TABLE t ALTER COLUMN x SET NOT NULL;\n"),
        2,
        1,
    );
    assert_eq!(
        x["keys"],
        serde_json::json!(["1"]),
        "the primary key's value, not a ctid: {x:#}"
    );
    assert_eq!(
        db.scalar("SELECT count(*)::text FROM trace"),
        "0",
        "noisy() ran"
    );
}

#[test]
fn a_table_is_the_same_table_with_or_without_its_schema() {
    let db = TestDb::new("pred_schema");
    db.exec("CREATE TABLE t (x int); INSERT INTO t VALUES (NULL);");
    // The release backfills public.t, then sets NOT NULL on t: the same table.
    let p = plan_sql(
        &db,
        "UPDATE public.t SET x = 0 WHERE x IS NULL;\nALTER TABLE t ALTER COLUMN x SET NOT NULL;\n",
    );
    assert_eq!(p.code, 0, "{:#}", p.json);
    assert_eq!(
        p.at_line(2)[0]["outcome"],
        "not-predictable",
        "{:#}",
        p.json
    );
    // And a table the release creates in another schema is not this one.
    let x = assert_fails(
        &plan_sql(&db, "CREATE SCHEMA other; CREATE TABLE other.t (x int);\nALTER TABLE public.t ALTER COLUMN x SET NOT NULL;\n"),
        2,
        1,
    );
    assert!(
        x["reason"].as_str().unwrap().contains("ctid"),
        "no primary key: ctids: {x:#}"
    );
}

#[test]
fn hostile_names_stay_names_and_airlocks_own_quoting_is_never_run() {
    let db = TestDb::new("pred_cast_hostile");
    db.exec(
        "CREATE TABLE keep (i int);\n\
         CREATE TABLE \"t\"\"; DROP TABLE keep; --\" (\"c'); DROP TABLE keep; --\" text, \"x$airlock_cast$\" text);\n\
         INSERT INTO \"t\"\"; DROP TABLE keep; --\" VALUES ('1', '1'), ('no', 'no');",
    );
    let p = plan_sql(
        &db,
        "ALTER TABLE \"t\"\"; DROP TABLE keep; --\" ALTER COLUMN \"c'); DROP TABLE keep; --\" TYPE int \
         USING \"c'); DROP TABLE keep; --\"::int;\n",
    );
    assert_fails(&p, 1, 1);
    // A name holding the DO block's own quote tag is not asked about at all.
    let p = plan_sql(
        &db,
        "ALTER TABLE \"t\"\"; DROP TABLE keep; --\" ALTER COLUMN \"x$airlock_cast$\" TYPE int USING \"x$airlock_cast$\"::int;\n",
    );
    assert_eq!(p.code, 0, "{:#}", p.json);
    assert_eq!(
        p.prediction(0)["outcome"],
        "not-predictable",
        "{:#}",
        p.json
    );
    assert_eq!(
        db.scalar("SELECT (to_regclass('keep') IS NOT NULL)::text"),
        "true"
    );
}

#[test]
fn counting_what_does_not_convert_on_a_big_table_is_bounded_by_the_timeout() {
    let db = TestDb::new("pred_cast_big");
    // The first row does not convert (the one scan stops there at once); counting the
    // rest, a subtransaction a row, takes far longer than 300 ms.
    db.exec(
        "CREATE TABLE big (v text); INSERT INTO big VALUES ('bad');\n\
         INSERT INTO big SELECT g::text FROM generate_series(1, 400000) g;",
    );
    let p = plan_tier(
        &db,
        "ALTER TABLE big ALTER COLUMN v TYPE int USING v::int;\n",
        &|t| t,
        &["--predict-timeout", "300ms"],
    );
    assert_eq!(p.code, 1, "a certain failure, even uncounted: {:#}", p.json);
    let x = p.prediction(0);
    assert_eq!(x["outcome"], "fails", "{x:#}");
    assert!(x["count"].is_null(), "{x:#}");
    assert!(
        x["reason"]
            .as_str()
            .unwrap()
            .contains("at least one, not counted in time"),
        "{x:#}"
    );
    assert!(p.human.contains("≥1"), "{}", p.human);
}
