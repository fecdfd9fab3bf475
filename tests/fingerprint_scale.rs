//! `fingerprint --rows/--data/--data-strict` at scale, through the real binary and
//! real PostgreSQL: thousands of tables without accumulating locks, the format-2
//! data hash sees what an order-free sum of record hashes would miss and ignores what
//! it should, every table is read once and at one snapshot (a table rewritten after
//! it is refused, not read as empty), and format-1 fingerprints are reported as such.
//! The 33,554,432-row limit of format 1 needs a GiB-size table: benches/scale.sh
//! reproduces it; here the format's logic is tested at small size.

mod util;
use airlock::db::fingerprint::Fingerprint;
use std::time::{Duration, Instant};
use util::cluster::Cluster;
use util::*;

fn fp(db: &TestDb, args: &[&str]) -> Fingerprint {
    fp_at(&db.conn(), args)
}

/// `airlock --json fingerprint ARGS --db CONN`.
fn fp_at(conn: &str, args: &[&str]) -> Fingerprint {
    let dir = tempdir();
    let mut all = vec!["--json", "fingerprint"];
    all.extend(args);
    all.extend(["--db", conn]);
    let o = airlock(dir.path(), &all);
    expect_code(&o, 0);
    serde_json::from_slice(&o.stdout).expect("a fingerprint report")
}

fn data(db: &TestDb) -> String {
    fp(db, &["--data"]).fingerprint
}

fn strict(db: &TestDb) -> String {
    fp(db, &["--data-strict"]).fingerprint
}

fn part<'a>(f: &'a Fingerprint, kind: &str, name: &str) -> Option<&'a str> {
    f.parts
        .iter()
        .find(|p| p.kind == kind && p.name == name)
        .map(|p| p.hash.as_str())
}

#[test]
fn thousands_of_tables_fingerprint_without_running_out_of_locks() {
    // The whole lock table is the point, so a cluster of this test's own: on the shared
    // server other sessions' locks made creating the tables run out of shared memory.
    let cluster = Cluster::start();
    cluster
        .client("postgres")
        .batch_execute("CREATE DATABASE fp_many")
        .expect("create fp_many");
    let conn = cluster.conn("fp_many");
    // Format 1 read every table in one transaction and failed with "out of shared
    // memory" once the server's lock table (max_locks_per_transaction times the
    // connection slots, plus whatever shared memory is spare: about twice that) was
    // full. A table and its primary key take two locks: twice the nominal capacity
    // in locks is more than the server has.
    let capacity: i64 = cluster
        .scalar(
            "fp_many",
            "SELECT current_setting('max_locks_per_transaction')::int8 * \
             (current_setting('max_connections')::int8 + current_setting('max_prepared_transactions')::int8)",
        )
        .parse()
        .unwrap();
    let tables = capacity + 600;
    let mut c = cluster.client("fp_many");
    let t = Instant::now();
    let mut from = 1;
    while from <= tables {
        let to = (from + 499).min(tables);
        c.batch_execute(&format!(
            "DO $$ BEGIN FOR i IN {from}..{to} LOOP \
             EXECUTE format('CREATE TABLE public.t%s (id int PRIMARY KEY)', i); END LOOP; END $$"
        ))
        .expect("create tables");
        from = to + 1;
    }
    c.batch_execute("INSERT INTO public.t1 VALUES (1); INSERT INTO public.t7 VALUES (7)")
        .unwrap();
    eprintln!("{tables} tables made in {:?}", t.elapsed());
    for level in ["--rows", "--data"] {
        let t = Instant::now();
        let f = fp_at(&conn, &[level]);
        eprintln!("{level} over {tables} tables: {:?}", t.elapsed());
        let kind = &level[2..];
        let per_table = f.parts.iter().filter(|p| p.kind == kind).count() as i64;
        assert_eq!(per_table, tables, "{level}: one part per table");
    }
    // And it still sees a change in one of them.
    let before = fp_at(&conn, &["--data"]).fingerprint;
    c.batch_execute("INSERT INTO public.t4000 VALUES (1)")
        .unwrap();
    assert_ne!(
        fp_at(&conn, &["--data"]).fingerprint,
        before,
        "a new row in t4000 went unseen"
    );
}

#[test]
fn data_hash_sees_every_row_change_and_only_those() {
    let db = TestDb::new("fp_rows");
    // json, point and xml have no hash function at all (hash_record_extended would
    // fail on them); numeric, float8 and interval hash equal values alike whatever
    // their text (1.0 and 1.00, '1 day' and '24 hours'); the row hash is over the
    // text, so all of these count.
    db.exec(
        "CREATE TABLE public.t (id int, a int, b int, n numeric, f float8, i interval,
                                j json, p point, x xml, tx text COLLATE \"C\");
         INSERT INTO public.t SELECT g, g, g * 10, 1.0, 0, '1 day', '{\"k\": 1}', '(1,2)',
                                     '<a/>', 'x' || g FROM generate_series(1, 200) g;",
    );
    let (base, base_strict) = (data(&db), strict(&db));
    let changes = [
        // Swapping two values of a column between rows: an order-free sum of
        // hash_record_extended (31 * h(a) + h(b) per row) does not change.
        (
            "swap b between two rows",
            "UPDATE public.t SET b = CASE id WHEN 1 THEN 20 ELSE 10 END WHERE id IN (1, 2)",
        ),
        ("numeric scale", "UPDATE public.t SET n = 1.00 WHERE id = 5"),
        (
            "float sign of zero",
            "UPDATE public.t SET f = '-0' WHERE id = 6",
        ),
        (
            "interval spelling",
            "UPDATE public.t SET i = '24 hours' WHERE id = 7",
        ),
        (
            "json whitespace",
            "UPDATE public.t SET j = '{\"k\":1}' WHERE id = 8",
        ),
        ("point", "UPDATE public.t SET p = '(2,1)' WHERE id = 9"),
        ("xml", "UPDATE public.t SET x = '<b/>' WHERE id = 10"),
        (
            "NULL for a value",
            "UPDATE public.t SET tx = NULL WHERE id = 11",
        ),
        (
            "a duplicate row",
            "INSERT INTO public.t SELECT * FROM public.t WHERE id = 12",
        ),
        ("a row less", "DELETE FROM public.t WHERE id = 13"),
    ];
    for (what, sql) in changes {
        db.exec(sql);
        assert_ne!(data(&db), base, "--data missed: {what}");
        assert_ne!(strict(&db), base_strict, "--data-strict missed: {what}");
        // Back to the baseline: rebuild the table from scratch in another order.
        db.exec(
            "TRUNCATE public.t;
             INSERT INTO public.t SELECT g, g, g * 10, 1.0, 0, '1 day', '{\"k\": 1}', '(1,2)',
                                         '<a/>', 'x' || g FROM generate_series(200, 1, -1) g;",
        );
        assert_eq!(data(&db), base, "--data: not back after {what}");
        assert_eq!(
            strict(&db),
            base_strict,
            "--data-strict: not back after {what}"
        );
    }
    // Physical order and dead rows are not content.
    db.exec("UPDATE public.t SET a = a WHERE id % 2 = 0");
    assert_eq!(data(&db), base, "--data: an UPDATE to the same values");
    db.exec("VACUUM FULL public.t");
    assert_eq!(strict(&db), base_strict, "--data-strict: VACUUM FULL");
}

#[test]
fn every_table_is_read_once_and_partitioned_parents_not_at_all() {
    let db = TestDb::new("fp_inherit");
    db.exec(
        "CREATE TABLE public.parent (id int);
         CREATE TABLE public.child () INHERITS (public.parent);
         INSERT INTO public.parent VALUES (1); INSERT INTO public.child VALUES (2), (3);
         CREATE TABLE public.p (id int) PARTITION BY RANGE (id);
         CREATE TABLE public.p1 PARTITION OF public.p FOR VALUES FROM (0) TO (10);
         INSERT INTO public.p VALUES (1), (2);
         CREATE MATERIALIZED VIEW public.m AS SELECT 1 AS one WITH NO DATA;",
    );
    let rows = fp(&db, &["--rows"]);
    let mut rows_parts: Vec<&str> = rows
        .parts
        .iter()
        .filter(|p| p.kind == "rows")
        .map(|p| p.name.as_str())
        .collect();
    rows_parts.sort();
    assert_eq!(
        rows_parts,
        ["public.child", "public.m", "public.p1", "public.parent"],
        "which tables are counted"
    );
    // The parent's own rows only: moving a row from parent to child changes both.
    let before = fp(&db, &["--rows"]);
    db.exec("DELETE FROM public.parent WHERE id = 1; INSERT INTO public.child VALUES (1)");
    let after = fp(&db, &["--rows"]);
    assert_ne!(
        part(&before, "rows", "public.parent"),
        part(&after, "rows", "public.parent")
    );
    assert_ne!(
        part(&before, "rows", "public.child"),
        part(&after, "rows", "public.child")
    );
    // One connection or four: the same fingerprint.
    for level in ["--rows", "--data", "--data-strict"] {
        assert_eq!(
            fp(&db, &[level, "--jobs", "1"]).fingerprint,
            fp(&db, &[level, "--jobs", "4"]).fingerprint,
            "{level}: --jobs changed it"
        );
    }
    // An unpopulated materialized view is described, not read (reading it fails).
    let d = fp(&db, &["--data"]);
    assert!(part(&d, "data", "public.m").is_some());
    db.exec("REFRESH MATERIALIZED VIEW public.m");
    assert_ne!(
        part(&fp(&db, &["--data"]), "data", "public.m"),
        part(&d, "data", "public.m")
    );
}

#[test]
fn a_table_truncated_after_the_snapshot_is_refused_not_read_as_empty() {
    let db = TestDb::new("fp_truncate");
    db.exec("CREATE TABLE public.t (id int); INSERT INTO public.t SELECT generate_series(1, 100)");
    // Hold the table: the fingerprint exports its snapshot, then waits for the lock.
    let mut holder = db.client();
    holder
        .batch_execute("BEGIN; LOCK TABLE public.t IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let dir = tempdir();
    let child = airlock_spawn(dir.path(), &["fingerprint", "--data", "--db", &db.conn()]);
    let mut admin = admin();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let waiting: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 \
                 AND wait_event_type = 'Lock' AND query LIKE '%FROM ONLY%'",
                &[&db.name],
            )
            .unwrap()
            .get(0);
        if waiting > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the fingerprint never waited for the table"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // TRUNCATE is not MVCC-safe: an older snapshot would see the table empty.
    holder.batch_execute("TRUNCATE public.t; COMMIT").unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(
        code(&o),
        5,
        "stdout:\n{}\nstderr:\n{}",
        stdout(&o),
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("public.t was truncated or rewritten"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn older_format_fingerprints_are_reported_as_older_not_compared() {
    let db = TestDb::new("fp_format");
    db.exec("CREATE TABLE public.t (id int); INSERT INTO public.t VALUES (1)");
    let dir = tempdir();
    let conn = db.conn();
    let save = |args: &[&str], name: &str, format_1: bool| {
        let mut all = vec!["--json", "fingerprint"];
        all.extend(args);
        all.extend(["--db", conn.as_str()]);
        let o = airlock(dir.path(), &all);
        expect_code(&o, 0);
        let mut v = json(&o);
        assert_eq!(v["format"], 4, "a new fingerprint says its format");
        if format_1 {
            // What airlock wrote before the format field existed.
            v.as_object_mut().unwrap().remove("format");
        }
        let p = dir.path().join(name);
        write(&p, &v.to_string());
        p.display().to_string()
    };
    let old_data = save(&["--data"], "old-data.json", true);
    let new_data = save(&["--data"], "new-data.json", false);
    let o = airlock(dir.path(), &["fingerprint", "--diff", &old_data, &new_data]);
    expect_code(&o, 2);
    assert!(
        stderr(&o).contains("cannot compare a format-1 fingerprint with a format-4 one"),
        "{}",
        stderr(&o)
    );
    // Schema-level fingerprints too: since format 4 the schema is described the same
    // way on every PostgreSQL major, which formats 1 to 3 did not.
    let old_schema = save(&[], "old-schema.json", true);
    let new_schema = save(&[], "new-schema.json", false);
    let o = airlock(
        dir.path(),
        &["fingerprint", "--diff", &old_schema, &new_schema],
    );
    expect_code(&o, 2);
    assert!(
        stderr(&o).contains("since format 4 the schema is described the same way"),
        "{}",
        stderr(&o)
    );
    // And two format-4 data fingerprints compare.
    let again = save(&["--data"], "again.json", false);
    expect_code(
        &airlock(dir.path(), &["fingerprint", "--diff", &new_data, &again]),
        0,
    );
}
