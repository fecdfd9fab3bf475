//! Issue 46: an online step is recorded only when its result is in the catalog (a
//! squatted name, a build that timed out, another role's INVALID index, a build a
//! killed run left behind), the online key cannot be squatted, and the online
//! allow-list says what is safe to run again. Real server, real concurrent sessions,
//! the real binary; every wait is on the server's own state (pg_locks,
//! pg_stat_activity), never on time.

mod util;
use std::path::Path;
use util::*;

/// A source for `db`: a transactional tier `schema` (`schema_sql`), an online tier
/// `indexes` (`online_sql`) and an online rollback (`rollback_sql`); a neutral preflight.
fn source(dir: &Path, db: &str, schema_sql: &str, online_sql: &str, rollback_sql: &str) {
    let src = dir.join("src");
    let _ = std::fs::remove_dir_all(&src);
    write(
        &src.join("bundle.toml"),
        &format!(
            "[bundle]\nname = \"proof\"\nversion = \"1\"\nsequence = 1\n\n\
             [target]\ndatabase = \"{db}\"\n\n\
             [preflight]\nfile = \"sql/probe.sql\"\nexpect = {{ ok = \"ok\" }}\n\n\
             [[tier]]\nname = \"schema\"\nfiles = [\"sql/schema.sql\"]\n\n\
             [[tier]]\nname = \"indexes\"\nfiles = [\"sql/indexes.sql\"]\nonline = true\n\n\
             [rollback]\nfiles = [\"sql/rollback.sql\"]\nonline = true\n"
        ),
    );
    write(&src.join("sql/probe.sql"), PROBE);
    write(&src.join("sql/schema.sql"), schema_sql);
    write(&src.join("sql/indexes.sql"), online_sql);
    write(&src.join("sql/rollback.sql"), rollback_sql);
    pack(dir, &src, "rm.key", "b.tar.gz");
}

/// A neutral probe: the preflight and the rollback's expectation.
const PROBE: &str = "SELECT 'ok' AS key, 'ok' AS value";

/// A database with public.t (c, d) and app.t2 (b) holding a few rows.
fn target(tag: &str) -> TestDb {
    let db = TestDb::new(tag);
    db.exec(
        "CREATE SCHEMA app; \
         CREATE TABLE public.t (id bigserial PRIMARY KEY, c int, d int); \
         INSERT INTO public.t (c, d) SELECT g, g % 7 FROM generate_series(1, 1000) g; \
         CREATE TABLE app.t2 (id bigserial PRIMARY KEY, b int); \
         INSERT INTO app.t2 (b) SELECT g FROM generate_series(1, 1000) g;",
    );
    db
}

fn apply_with(d: &Path, db: &TestDb, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["apply", "b.tar.gz", "--yes"];
    args.extend_from_slice(extra);
    run_json(d, "rm.pub", &db.conn(), &args)
}

/// The ledger's rows of what ran, `event:tiers` (a `receipt` row records a receipt
/// delivered after the run).
fn events(db: &TestDb) -> String {
    if db.ledger_rows() == "none" {
        return String::new();
    }
    db.scalar("SELECT coalesce(string_agg(event || ':' || tiers, ' ' ORDER BY seq), '') FROM airlock.ledger WHERE event <> 'receipt'")
}

/// `valid`, `INVALID` or `absent`: the index `schema.name`.
fn index_state(db: &TestDb, schema: &str, name: &str) -> String {
    db.scalar(&format!(
        "SELECT coalesce((SELECT CASE WHEN i.indisvalid THEN 'valid' ELSE 'INVALID' END \
           FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
           JOIN pg_namespace n ON n.oid = c.relnamespace \
          WHERE n.nspname = '{schema}' AND c.relname = '{name}'), 'absent')"
    ))
}

/// A role that may only connect and create in `public` (and, with `own_table`, own
/// the table app.other it made there).
fn low_role(db: &TestDb, prefix: &str) -> String {
    let role = role_name(prefix);
    admin()
        .batch_execute(&format!("CREATE ROLE {role} LOGIN"))
        .unwrap();
    db.exec(&format!(
        "GRANT CONNECT ON DATABASE \"{}\" TO {role}; GRANT CREATE ON SCHEMA public TO {role};",
        db.name
    ));
    role
}

/// `role` made what it makes in `public`: it may create there no more. (Bundle SQL
/// runs as a superuser in these tests, which airlock refuses while a role that is no
/// superuser may create in its search_path: docs/security.md, "A superuser's
/// unqualified names". What the role made stays, its own.)
fn made(db: &TestDb, role: &str) {
    db.exec(&format!("REVOKE CREATE ON SCHEMA public FROM {role}"));
}

#[test]
fn a_name_held_by_something_else_is_refused_naming_its_owner_and_nothing_is_recorded() {
    // (what squats the name, as which role, what the refusal names)
    let cases: [(&str, bool, &str); 3] = [
        ("CREATE SEQUENCE public.t_c_idx", true, "sequence"),
        (
            "CREATE TABLE public.u (c int); CREATE INDEX t_c_idx ON public.u (c)",
            true,
            "on public.u",
        ),
        (
            "CREATE INDEX t_c_idx ON public.t (d)",
            false,
            "another definition",
        ),
    ];
    for (squat, by_low_role, names) in cases {
        for statement in [
            "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS t_c_idx ON public.t (c);\n",
            "CREATE UNIQUE INDEX CONCURRENTLY t_c_idx ON public.t (c);\n",
        ] {
            let t = keyed_dir();
            let d = t.path();
            let db = target("online_squat");
            let role = low_role(&db, "squatter");
            let _roles = DropRoles(vec![role.clone()]);
            let owner = if by_low_role {
                db.exec_as(&role, squat);
                role.clone()
            } else {
                db.exec(squat);
                db.scalar("SELECT current_user")
            };
            made(&db, &role);
            source(
                d,
                &db.name,
                "COMMENT ON TABLE public.t IS 'proof';\n",
                statement,
                "DROP INDEX CONCURRENTLY IF EXISTS public.t_c_idx;\n",
            );
            let o = apply_with(d, &db, &[]);
            let out = stdout(&o) + &stderr(&o);
            assert_eq!(code(&o), 5, "{squat} / {statement}: {out}");
            assert!(
                out.contains("t_c_idx") && out.contains(&owner) && out.contains(names),
                "{squat} / {statement}: {out}"
            );
            // Nothing of the online tier is recorded; no unique index is there.
            assert_eq!(events(&db), "apply:[\"schema\"]", "{squat}: {out}");
            assert_eq!(
                db.scalar("SELECT count(*)::text FROM pg_index WHERE indrelid = 'public.t'::regclass AND indisunique AND NOT indisprimary"),
                "0"
            );
            // plan says the same, not "already applied".
            let o = run_json(d, "rm.pub", &db.conn(), &["plan", "b.tar.gz"]);
            assert!(!stdout(&o).contains("already applied"), "{}", stdout(&o));
        }
    }
}

/// The pid of the session running `like` while it waits on a lock (of any kind).
fn waiting(db: &TestDb, like: &str) -> Option<i32> {
    let mut c = db.client();
    c.query(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
           AND query LIKE $1 AND wait_event_type = 'Lock'",
        &[&like],
    )
    .unwrap()
    .first()
    .map(|r| r.get(0))
}

#[test]
fn a_build_that_times_out_is_not_recorded_and_the_message_says_what_to_run() {
    let t = keyed_dir();
    let d = t.path();
    let db = target("online_timeout");
    source(
        d,
        &db.name,
        "COMMENT ON TABLE public.t IS 'proof';\n",
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS t_c_idx ON public.t (c);\n",
        "DROP INDEX CONCURRENTLY IF EXISTS public.t_c_idx;\n",
    );
    // An old snapshot that has read the table: the build waits for it, and so does
    // the drop of the INVALID index the build leaves.
    let mut holder = db.client();
    let mut tx = holder
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .start()
        .unwrap();
    tx.query("SELECT count(*) FROM public.t", &[]).unwrap();
    let o = apply_with(d, &db, &["--lock-timeout", "300ms", "--lock-retries", "1"]);
    let out = stdout(&o) + &stderr(&o);
    assert_ne!(code(&o), 0, "{out}");
    assert!(
        out.contains("DROP INDEX CONCURRENTLY public.t_c_idx;"),
        "{out}"
    );
    // The step is not recorded, and the index is not counted as there.
    assert_eq!(events(&db), "apply:[\"schema\"]", "{out}");
    assert_eq!(index_state(&db, "public", "t_c_idx"), "INVALID");
    let o = run_json(d, "rm.pub", &db.conn(), &["plan", "b.tar.gz"]);
    assert!(!stdout(&o).contains("already applied"), "{}", stdout(&o));
    // The snapshot goes; the command airlock named, then the step builds it.
    tx.rollback().unwrap();
    db.exec("DROP INDEX CONCURRENTLY public.t_c_idx;");
    let o = apply_with(d, &db, &[]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert_eq!(index_state(&db, "public", "t_c_idx"), "valid");
    assert_eq!(
        events(&db),
        "apply:[\"schema\"] apply:[\"indexes\"]",
        "{}",
        stdout(&o)
    );
}

#[test]
fn another_roles_invalid_index_of_the_same_name_on_another_table_is_left_alone() {
    let t = keyed_dir();
    let d = t.path();
    let db = target("online_other_invalid");
    let role = low_role(&db, "neighbour");
    let _roles = DropRoles(vec![role.clone()]);
    // The neighbour's unique build on its own table fails: an INVALID public.t_c_idx.
    db.exec_as(
        &role,
        "CREATE TABLE public.theirs (c int); INSERT INTO public.theirs VALUES (1), (1);",
    );
    let mut c = db.client_as(&role);
    assert!(c
        .batch_execute("CREATE UNIQUE INDEX CONCURRENTLY t_c_idx ON public.theirs (c)")
        .is_err());
    assert_eq!(index_state(&db, "public", "t_c_idx"), "INVALID");
    made(&db, &role);
    source(
        d,
        &db.name,
        "COMMENT ON TABLE public.t IS 'proof';\n",
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS t_c_idx ON public.t (c);\n",
        "DROP INDEX CONCURRENTLY IF EXISTS public.t_c_idx;\n",
    );
    let o = apply_with(d, &db, &[]);
    let out = stdout(&o) + &stderr(&o);
    assert_eq!(code(&o), 5, "{out}");
    assert!(
        out.contains(&role) && out.contains("public.theirs"),
        "{out}"
    );
    // Theirs is still there, untouched; nothing of the step recorded.
    assert_eq!(
        db.scalar("SELECT indrelid::regclass::text FROM pg_index WHERE indexrelid = 'public.t_c_idx'::regclass"),
        "theirs"
    );
    assert_eq!(events(&db), "apply:[\"schema\"]");
}

#[test]
fn another_sessions_build_in_progress_is_not_dropped_and_is_recorded_once_it_finished() {
    let t = keyed_dir();
    let d = t.path();
    let db = target("online_other_build");
    db.exec(
        "CREATE FUNCTION public.held(v int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS \
         $$ BEGIN PERFORM pg_advisory_lock_shared(4242); PERFORM pg_advisory_unlock_shared(4242); RETURN v; END $$;",
    );
    let build = "CREATE INDEX CONCURRENTLY t_c_idx ON public.t (public.held(c));\n";
    source(
        d,
        &db.name,
        "COMMENT ON TABLE app.t2 IS 'proof';\n",
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS t_c_idx ON public.t (public.held(c));\n",
        "DROP INDEX CONCURRENTLY IF EXISTS public.t_c_idx;\n",
    );
    // Another session builds the very same index, held half-way by lock 4242.
    let mut holder = db.client();
    holder
        .batch_execute("SELECT pg_advisory_lock(4242)")
        .unwrap();
    let builder = {
        let mut c = db.client();
        std::thread::spawn(move || c.batch_execute(build).map_err(|e| e.to_string()))
    };
    let pid = loop {
        if let Some(pid) = waiting(&db, "%CREATE INDEX CONCURRENTLY t_c_idx%") {
            break pid;
        }
        std::thread::yield_now();
    };
    assert_eq!(index_state(&db, "public", "t_c_idx"), "INVALID");
    let o = apply_with(d, &db, &["--lock-timeout", "100ms", "--lock-retries", "0"]);
    let out = stdout(&o) + &stderr(&o);
    assert_eq!(code(&o), 6, "{out}");
    assert!(
        out.contains(&format!("pid {pid}")) && out.contains("building"),
        "{out}"
    );
    // Not dropped, not counted: the other build goes on; nothing of the step recorded.
    assert_eq!(index_state(&db, "public", "t_c_idx"), "INVALID");
    assert_eq!(events(&db), "apply:[\"schema\"]");
    holder
        .batch_execute("SELECT pg_advisory_unlock(4242)")
        .unwrap();
    builder.join().unwrap().expect("the other session's build");
    assert_eq!(index_state(&db, "public", "t_c_idx"), "valid");
    // Its result is the step's: done, with a note, not drift; the note is on the
    // operator's screen, not only in the receipt.
    let conn = db.conn();
    let o = airlock(
        d,
        &[
            "apply", "b.tar.gz", "--yes", "--trust", "rm.pub", "--db", &conn,
        ],
    );
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o)
            .lines()
            .any(|l| l.starts_with("note: tier \"indexes\" step 1/") && l.contains("already there")),
        "{}",
        stdout(&o)
    );
    let receipt = std::fs::read_dir(d.join("receipts"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".receipt.json"))
        .max()
        .expect("its receipt");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(receipt).unwrap()).unwrap();
    assert!(
        v["online_steps"][0]["notes"]
            .to_string()
            .contains("already there"),
        "{v:#}"
    );
    assert_eq!(events(&db), "apply:[\"schema\"] apply:[\"indexes\"]");
}

/// The session running the step's CREATE INDEX on app.t2 while it waits for lock 4242.
fn waiting_build(db: &TestDb) -> Option<i32> {
    let mut c = db.client();
    c.query(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
           AND query LIKE '%CREATE INDEX CONCURRENTLY IF NOT EXISTS t2_b%' AND wait_event = 'advisory'",
        &[],
    )
    .unwrap()
    .first()
    .map(|r| r.get(0))
}

#[test]
fn a_build_a_killed_run_left_is_waited_for_then_recorded_as_done_not_called_drift() {
    let t = keyed_dir();
    let d = t.path();
    let db = target("online_orphan");
    db.exec(
        "CREATE FUNCTION app.held(v int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS \
         $$ BEGIN PERFORM pg_advisory_lock_shared(4242); PERFORM pg_advisory_unlock_shared(4242); RETURN v; END $$;",
    );
    // (IF NOT EXISTS, so that 914d3ea's lint takes it: what fails there is the drift.)
    source(
        d,
        &db.name,
        "COMMENT ON TABLE app.t2 IS 'proof';\n",
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS t2_a ON app.t2 (b);\n\
         CREATE INDEX CONCURRENTLY IF NOT EXISTS t2_b ON app.t2 (app.held(b));\n\
         ANALYZE app.t2;\n",
        "DROP INDEX CONCURRENTLY IF EXISTS app.t2_b;\nDROP INDEX CONCURRENTLY IF EXISTS app.t2_a;\n",
    );
    let mut holder = db.client();
    holder
        .batch_execute("SELECT pg_advisory_lock(4242)")
        .unwrap();
    let mut child = airlock_command(d, &[])
        .args([
            "--json", "apply", "b.tar.gz", "--yes", "--trust", "rm.pub", "--db",
        ])
        .arg(db.conn())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = loop {
        if let Some(pid) = waiting_build(&db) {
            break pid;
        }
        assert!(child.try_wait().unwrap().is_none(), "the apply ended early");
        std::thread::yield_now();
    };
    // kill -9: the server session goes on building.
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(events(&db), "apply:[\"schema\"] step:[\"indexes\"]");
    // While it builds: refused, naming the backend that builds it.
    let o = apply_with(d, &db, &[]);
    let out = stdout(&o) + &stderr(&o);
    assert_eq!(code(&o), 6, "{out}");
    assert!(out.contains(&format!("pid {pid}")), "{out}");
    // The build finishes; its session ends (its client is gone).
    holder
        .batch_execute("SELECT pg_advisory_unlock(4242)")
        .unwrap();
    while db.scalar(&format!(
        "SELECT count(*)::text FROM pg_stat_activity WHERE pid = {pid}"
    )) != "0"
    {
        std::thread::yield_now();
    }
    assert_eq!(index_state(&db, "app", "t2_b"), "valid");
    // plan judges it as apply does: the step's own index, not drift.
    let o = run_json(d, "rm.pub", &db.conn(), &["plan", "b.tar.gz"]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(
        json(&o).to_string().contains("finished by the server"),
        "{}",
        stdout(&o)
    );
    // The next apply finds the very index its step builds: done, with a note.
    let o = apply_with(d, &db, &[]);
    let out = stdout(&o) + &stderr(&o);
    assert_eq!(code(&o), 0, "{out}");
    let v = json(&o);
    let steps = v["online_steps"].as_array().unwrap();
    assert_eq!(steps[0]["step"], 2, "{v:#}");
    assert!(
        steps[0]["notes"].to_string().contains("already there"),
        "{v:#}"
    );
    assert_eq!(
        events(&db),
        "apply:[\"schema\"] step:[\"indexes\"] step:[\"indexes\"] apply:[\"indexes\"]"
    );
}

#[test]
fn a_role_that_may_only_connect_cannot_stop_a_deploy_by_holding_the_online_key() {
    use airlock::db::ledger::chain::ONLINE_KEY;
    for online in [false, true] {
        let t = keyed_dir();
        let d = t.path();
        let db = target("online_key_squat");
        let role = low_role(&db, "keysquat");
        let _roles = DropRoles(vec![role.clone()]);
        made(&db, &role);
        let mut squatter = db.client_as(&role);
        squatter
            .batch_execute(&format!(
                "SELECT pg_advisory_lock({ONLINE_KEY}); SELECT pg_advisory_lock({}, g) FROM generate_series(0, 99) g",
                ONLINE_KEY >> 32
            ))
            .unwrap();
        let pid = squatter
            .query_one("SELECT pg_backend_pid()", &[])
            .unwrap()
            .get::<_, i32>(0);
        if online {
            source(
                d,
                &db.name,
                "COMMENT ON TABLE public.t IS 'proof';\n",
                "CREATE INDEX CONCURRENTLY t_c_idx ON public.t (c);\n",
                "DROP INDEX CONCURRENTLY IF EXISTS public.t_c_idx;\n",
            );
        } else {
            let src = d.join("src");
            write(
                &src.join("bundle.toml"),
                &format!(
                    "[bundle]\nname = \"proof\"\nversion = \"1\"\nsequence = 1\n\n\
                     [target]\ndatabase = \"{}\"\n\n\
             [preflight]\nfile = \"sql/probe.sql\"\nexpect = {{ ok = \"ok\" }}\n\n\
                     [[tier]]\nname = \"schema\"\nfiles = [\"sql/schema.sql\"]\n\n\
                     [[tier]]\nname = \"indexes\"\nfiles = [\"sql/more.sql\"]\n",
                    db.name
                ),
            );
            write(&src.join("sql/probe.sql"), PROBE);
            write(
                &src.join("sql/schema.sql"),
                "COMMENT ON TABLE public.t IS 'proof';\n",
            );
            write(
                &src.join("sql/more.sql"),
                "COMMENT ON TABLE app.t2 IS 'proof';\n",
            );
            pack(d, &src, "rm.key", "b.tar.gz");
        }
        // Human output: the ignored holder is named in a notice.
        let o = airlock(
            d,
            &[
                "apply",
                "b.tar.gz",
                "--yes",
                "--trust",
                "rm.pub",
                "--db",
                &db.conn(),
            ],
        );
        let out = stdout(&o) + &stderr(&o);
        assert_eq!(code(&o), 0, "online={online}: {out}");
        assert!(
            stderr(&o).contains(&format!("pid {pid}")) && stderr(&o).contains("ignored"),
            "online={online}: {out}"
        );
        assert_eq!(stderr(&o).matches("notice: ignored").count(), 1, "{out}");
        let want = if online {
            "apply:[\"schema\"] apply:[\"indexes\"]"
        } else {
            "apply:[\"schema\",\"indexes\"]"
        };
        assert_eq!(events(&db), want, "{out}");
    }
}

#[test]
fn an_online_rollback_of_a_release_that_adds_a_table_and_an_index_can_be_written() {
    let t = keyed_dir();
    let d = t.path();
    let db = target("online_rollback_table");
    let src = d.join("src");
    write(
        &src.join("bundle.toml"),
        &format!(
            "[bundle]\nname = \"proof\"\nversion = \"1\"\nsequence = 1\n\n\
             [target]\ndatabase = \"{}\"\n\n\
             [preflight]\nfile = \"sql/probe.sql\"\nexpect = {{ ok = \"ok\" }}\n\n\
             [[tier]]\nname = \"schema\"\nfiles = [\"sql/schema.sql\"]\n\n\
             [[tier]]\nname = \"indexes\"\nfiles = [\"sql/indexes.sql\"]\nonline = true\n\n\
             [rollback]\nfiles = [\"sql/rollback.sql\"]\nonline = true\n",
            db.name
        ),
    );
    write(&src.join("sql/probe.sql"), PROBE);
    write(
        &src.join("sql/schema.sql"),
        "CREATE TABLE app.audit (id bigint PRIMARY KEY, at timestamptz);\n",
    );
    write(
        &src.join("sql/indexes.sql"),
        "CREATE INDEX CONCURRENTLY audit_at ON app.audit (at);\n",
    );
    write(
        &src.join("sql/rollback.sql"),
        "DROP INDEX CONCURRENTLY IF EXISTS app.audit_at;\nDROP TABLE IF EXISTS app.audit;\n",
    );
    let o = airlock(d, &["--json", "lint", src.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    pack(d, &src, "rm.key", "b.tar.gz");
    let before = db.dump_without_ledger();
    let o = apply_with(d, &db, &[]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let o = run_json(d, "rm.pub", &db.conn(), &["rollback", "b.tar.gz", "--yes"]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert_eq!(db.dump_without_ledger(), before);
}

#[test]
fn lint_refuses_what_is_not_safe_to_run_again_online_and_says_why() {
    for (sql, why) in [
        (
            "ALTER TABLE app.p DETACH PARTITION app.p1 CONCURRENTLY;\n",
            "FINALIZE",
        ),
        ("REINDEX TABLE app.t2;\n", "CONCURRENTLY"),
        ("DROP TABLE app.t2;\n", "IF EXISTS"),
    ] {
        let t = keyed_dir();
        let d = t.path();
        let src = d.join("src");
        write(
            &src.join("bundle.toml"),
            "[bundle]\nname = \"proof\"\nversion = \"1\"\nsequence = 1\n\n\
             [target]\ndatabase = \"x\"\n\n\
             [[tier]]\nname = \"indexes\"\nfiles = [\"sql/indexes.sql\"]\nonline = true\n",
        );
        write(&src.join("sql/indexes.sql"), sql);
        let o = airlock(d, &["--json", "lint", src.to_str().unwrap()]);
        assert_eq!(code(&o), 2, "{sql}: {}", stdout(&o));
        assert!(stdout(&o).contains(why), "{sql}: {}", stdout(&o));
    }
}

#[test]
fn validated_constraints_enum_values_and_expression_indexes_are_proven_and_recorded() {
    let t = keyed_dir();
    let d = t.path();
    let db = target("online_promises");
    source(
        d,
        &db.name,
        "ALTER TABLE public.t ADD CONSTRAINT c_pos CHECK (c > 0) NOT VALID;\n\
         CREATE TYPE public.mood AS ENUM ('ok');\n",
        "ALTER TABLE public.t VALIDATE CONSTRAINT c_pos;\n\
         ALTER TYPE mood ADD VALUE IF NOT EXISTS 'meh';\n\
         CREATE UNIQUE INDEX CONCURRENTLY t_expr ON public.t USING btree (lower(d::text), c) INCLUDE (id) WHERE c > 0 AND d <> 3;\n",
        "DROP INDEX CONCURRENTLY IF EXISTS public.t_expr;\n",
    );
    let o = apply_with(d, &db, &[]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert_eq!(
        events(&db),
        "apply:[\"schema\"] step:[\"indexes\"] step:[\"indexes\"] apply:[\"indexes\"]"
    );
    assert_eq!(
        db.scalar("SELECT convalidated::text FROM pg_constraint WHERE conname = 'c_pos'"),
        "true"
    );
    assert_eq!(index_state(&db, "public", "t_expr"), "valid");
}
