use super::*;

fn steps(sql: &str) -> Vec<DataStep> {
    data_steps_in("t.sql", &mut sql.as_bytes()).unwrap()
}

#[test]
fn finds_what_the_rows_decide() {
    let s = steps(
        "ALTER TABLE a ADD PRIMARY KEY (x, y);\nCREATE UNIQUE INDEX i ON s.\"B\" (z);\n\
         ALTER TABLE a ALTER COLUMN c SET NOT NULL, ADD COLUMN d int NOT NULL;\n\
         ALTER TABLE a ADD COLUMN e int NOT NULL DEFAULT 0;\n\
         ALTER TABLE a ADD CONSTRAINT k CHECK (x > 0 AND length(c) < 5);\n\
         ALTER TABLE a ADD CONSTRAINT k2 CHECK (x > (SELECT 1));\n\
         ALTER TABLE a ADD CONSTRAINT k3 CHECK (x > 0) NOT VALID;\n\
         ALTER TABLE a ADD FOREIGN KEY (x) REFERENCES b;\n\
         DROP TABLE a, s.b; DELETE FROM a; UPDATE a SET x = 1 WHERE y = 2;\n\
         INSERT INTO \"Q\"\"x\".b VALUES (1); insert   into c(x) values (2);",
    );
    // length(c) is a call (of a built-in, the walk finds): one step of its own.
    assert!(matches!(&s[6].step, Step::Calls { functions } if functions[0].name == "length"));
    // A column added with a default: the release's own column (a backfill of it
    // destroys nothing).
    assert!(matches!(&s[4].step, Step::AddColumn { column } if column == "e"));
    let s: Vec<DataStep> = s
        .into_iter()
        .filter(|d| !matches!(d.step, Step::Calls { .. } | Step::AddColumn { .. }))
        .collect();
    let kinds: Vec<&Step> = s.iter().map(|d| &d.step).collect();
    assert!(matches!(kinds[0], Step::Unique { columns, primary: true } if columns == &["x", "y"]));
    assert_eq!(s[1].relation.to_string(), "s.\"B\"");
    assert_eq!(s[1].line, 2);
    assert!(matches!(kinds[2], Step::SetNotNull { column } if column == "c"));
    assert!(matches!(kinds[3], Step::AddNotNullColumn { column } if column == "d"));
    assert!(
        matches!(kinds[4], Step::Check { expr: Some(e), not_valid: false, functions, .. }
            if e.contains("length(c)") && functions == &["length"])
    );
    assert!(matches!(kinds[5], Step::Check { expr: None, .. }));
    assert!(matches!(kinds[6], Step::Check { name: Some(n), not_valid: true, .. } if n == "k3"));
    assert!(matches!(kinds[7], Step::ForeignKey { ref_columns, .. } if ref_columns.is_empty()));
    assert_eq!(
        kinds[8..11],
        [
            &Step::DropTable {
                cascade: false,
                if_exists: false
            },
            &Step::DropTable {
                cascade: false,
                if_exists: false
            },
            &Step::DeleteAll,
        ]
    );
    assert!(
        matches!(kinds[11], Step::Filtered { delete: false, pinned, filter: Some(f), .. }
            if pinned == &["y"] && f == "y = 2")
    );
    assert_eq!(s[12].relation.to_string(), "\"Q\"\"x\".b");
    assert_eq!(s[13].relation.to_string(), "c");
    assert_eq!(s.len(), 14);
}

#[test]
fn type_changes_enum_recreation_and_drops_are_read_from_the_tree() {
    let s = steps(
        "ALTER TABLE t ALTER COLUMN c TYPE integer;\n\
         ALTER TABLE t ALTER COLUMN d TYPE varchar(3), ALTER COLUMN e TYPE numeric(5,2) USING (e * 2);\n\
         ALTER TYPE mood RENAME TO mood_old;\n\
         CREATE TYPE mood AS ENUM ('happy', 'ok');\n\
         ALTER TABLE t ALTER COLUMN m TYPE mood USING m::text::mood;\n\
         DROP TYPE mood_old;\n\
         ALTER TABLE t ALTER COLUMN f TYPE date USING my_parse(f);\n\
         DROP SCHEMA s CASCADE; DROP TABLE x CASCADE; TRUNCATE y CASCADE;\n\
         ALTER TABLE t VALIDATE CONSTRAINT k;\n",
    );
    let kinds: Vec<&Step> = s.iter().map(|d| &d.step).collect();
    let Step::AlterType { column, to, using } = kinds[0] else {
        panic!("{:?}", kinds[0])
    };
    assert_eq!((column.as_str(), using), ("c", &Using::Absent));
    assert_eq!(to.names.last().unwrap(), "int4");
    let Step::AlterType { to, .. } = kinds[1] else {
        panic!()
    };
    assert_eq!(
        (to.typmods.clone(), to.text.as_str()),
        (vec![3], "varchar(3)")
    );
    let Step::AlterType { to, using, .. } = kinds[2] else {
        panic!()
    };
    assert_eq!(to.typmods, vec![5, 2]);
    assert!(matches!(using, Using::Plain { expr, inner: None, .. } if expr == "e * 2"));
    assert!(matches!(kinds[3], Step::RenameType { to } if to == "mood_old"));
    assert_eq!(s[3].relation.name, "mood");
    assert!(matches!(kinds[4], Step::CreateEnum { labels } if labels == &["happy", "ok"]));
    let Step::AlterType { using, .. } = kinds[5] else {
        panic!()
    };
    assert!(
        matches!(using, Using::Plain { inner: Some(i), casts, .. } if i == "m::text" && casts.len() == 2),
        "{using:?}"
    );
    assert!(matches!(kinds[6], Step::DropType { cascade: false }));
    assert_eq!(s[6].relation.name, "mood_old");
    assert!(matches!(
        kinds[7],
        Step::AlterType {
            using: Using::Other,
            ..
        }
    ));
    // my_parse is called: a function that may not be built in.
    assert!(
        matches!(kinds[8], Step::Calls { functions } if functions[0].to_string() == "my_parse")
    );
    assert_eq!(kinds[9], &Step::DropSchema { cascade: true });
    assert_eq!(s[9].relation.name, "s");
    assert_eq!(
        kinds[10],
        &Step::DropTable {
            cascade: true,
            if_exists: false
        }
    );
    assert_eq!(kinds[11], &Step::Truncate { cascade: true });
    assert!(matches!(kinds[12], Step::Validate { constraint } if constraint == "k"));
}

#[test]
fn calls_are_named_in_queries_and_in_inserts() {
    let s = steps(
        "SELECT public.backfill();\nINSERT INTO t VALUES (1, 'a(b');\nINSERT INTO t VALUES (f(1));\n\
         SELECT set_config('search_path', '', false);\nINSERT INTO u VALUES (f(2));\n\
         SELECT set_config('a.b', '', false), g();\n",
    );
    let names = |s: &Step| match s {
        Step::Calls { functions } => functions.iter().map(|f| f.to_string()).collect(),
        _ => vec![],
    };
    assert_eq!(names(&s[0].step), ["public.backfill"]);
    // A second write of the table written just before tells nothing new: one step.
    assert_eq!(s[1].step, Step::Writes);
    assert_eq!(names(&s[2].step), ["f"]);
    assert_eq!(names(&s[3].step), ["set_config"]);
    assert_eq!(s[4].relation.name, "u");
    // A function called before in the file is not named again.
    assert_eq!(names(&s[5].step), ["g"]);
    assert_eq!(s.len(), 6);
}

/// Issue 66, finding 7: a DELETE or UPDATE in a WITH clause, at any depth, gives the
/// steps the statement written alone gives.
#[test]
fn what_a_with_clause_destroys_is_read_like_the_plain_statement() {
    let s: Vec<DataStep> = steps(
        "WITH gone AS (DELETE FROM customers RETURNING id) SELECT count(*) FROM gone;\n\
         WITH a AS (WITH b AS (UPDATE s.t SET x = 1 WHERE y > 2 RETURNING *) SELECT * FROM b) SELECT 1;\n\
         WITH c AS (DELETE FROM o WHERE id = 3 RETURNING *) INSERT INTO arch SELECT * FROM c;\n\
         SELECT 1 UNION ALL (WITH d AS (DELETE FROM u RETURNING 1) SELECT * FROM d);\n\
         EXPLAIN ANALYZE UPDATE v SET x = 0;\nEXPLAIN DELETE FROM kept;\n",
    )
    .into_iter()
    .filter(|d| !matches!(d.step, Step::Calls { .. }))
    .collect();
    let got: Vec<(usize, &str, String, &Step)> = s
        .iter()
        .map(|d| {
            (
                d.line,
                d.statement.as_str(),
                d.relation.to_string(),
                &d.step,
            )
        })
        .collect();
    assert_eq!(
        got[0],
        (
            1,
            "WITH … DELETE without WHERE",
            "customers".into(),
            &Step::DeleteAll
        )
    );
    assert!(
        matches!(got[1], (2, "WITH … UPDATE", ref r, Step::Filtered { delete: false, filter: Some(f), .. })
            if r == "s.t" && f == "y > 2"),
        "{:?}",
        got[1]
    );
    assert!(
        matches!(got[2], (3, "WITH … DELETE", ref r, Step::Filtered { delete: true, pinned, .. })
            if r == "o" && pinned == &["id"]),
        "{:?}",
        got[2]
    );
    assert_eq!(got[3], (3, "INSERT", "arch".into(), &Step::Writes));
    assert_eq!(
        got[4],
        (
            4,
            "WITH … DELETE without WHERE",
            "u".into(),
            &Step::DeleteAll
        )
    );
    assert_eq!(
        got[5],
        (
            5,
            "UPDATE without WHERE",
            "v".into(),
            &Step::UpdateAll {
                sets: vec!["x".into()]
            }
        )
    );
    assert_eq!(got.len(), 6, "{got:?}");
}

#[test]
fn drops_know_if_exists_and_what_may_bring_a_name_in() {
    let s = steps(
        "DROP TABLE IF EXISTS a, b; DROP TABLE c;\n\
         ALTER TABLE d RENAME TO e; ALTER TABLE f RENAME COLUMN g TO h;\n\
         ALTER TABLE i SET SCHEMA j; CREATE EXTENSION k; ALTER EXTENSION k UPDATE;\n\
         IMPORT FOREIGN SCHEMA l FROM SERVER m INTO n;\n\
         CREATE FOREIGN TABLE o (x int) SERVER m;\n\
         CREATE SCHEMA p CREATE TABLE q (x int); CREATE SCHEMA r;\n\
         ALTER TYPE mood RENAME TO mood_old;",
    );
    let kinds: Vec<&Step> = s.iter().map(|d| &d.step).collect();
    let drop = |if_exists| Step::DropTable {
        cascade: false,
        if_exists,
    };
    assert_eq!(kinds[..3], [&drop(true), &drop(true), &drop(false)]);
    let statements: Vec<&str> = s[3..].iter().map(|d| d.statement.as_str()).collect();
    assert_eq!(
        statements,
        [
            "RENAME",
            "RENAME",
            "SET SCHEMA",
            "EXTENSION",
            "EXTENSION",
            "IMPORT FOREIGN SCHEMA",
            "CREATE FOREIGN TABLE",
            "CREATE SCHEMA … CREATE",
            "ALTER TYPE … RENAME TO",
        ]
    );
    assert!(kinds[3..11].iter().all(|k| **k == Step::MayCreate));
}
