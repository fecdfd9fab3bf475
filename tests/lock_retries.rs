//! Lock waits as the deploy login `airlock setup` makes sees them: a statement that
//! cannot have its lock within `--lock-timeout` is run again (`--lock-retries`),
//! naming the sessions with a transaction open each time, also those of other roles
//! whose state PostgreSQL hides from the login (never "no other session" while one
//! is there); out of retries, exit 6 with nothing changed. `apply` and `rollback`
//! (transactional and online) retry alike. Real server, a real second session of
//! another role, the real binary; no sleep decides anything (each test waits for
//! airlock's own retry line).

mod util;
use std::path::Path;
use util::*;

/// A database owned by an application role that is no superuser (`app.t` is its),
/// and the deploy login `airlock setup` made for it.
struct Target {
    t: tempfile::TempDir,
    db: TestDb,
    _roles: DropRoles,
    deployer: String,
    conn: String,
}

impl Target {
    fn new(tag: &str) -> Target {
        let db = TestDb::new(tag);
        let owner = role_name("lr_owner");
        admin()
            .batch_execute(&format!(
                "CREATE ROLE {owner} LOGIN; ALTER DATABASE \"{}\" OWNER TO {owner};",
                db.name
            ))
            .expect("owner role");
        db.exec(&format!("CREATE SCHEMA app AUTHORIZATION {owner};"));
        db.exec_as(
            &owner,
            "CREATE TABLE app.t (id int PRIMARY KEY, a int); \
             INSERT INTO app.t SELECT g, g FROM generate_series(1, 100) g;",
        );
        let t = keyed_dir();
        let deployer = role_name("lr_deployer");
        let conn = deploy_login(t.path(), &db, &deployer);
        Target {
            t,
            db,
            _roles: DropRoles(vec![owner, deployer.clone()]),
            deployer,
            conn,
        }
    }

    fn dir(&self) -> &Path {
        self.t.path()
    }

    /// `b.tar.gz`: one tier that adds a column to app.t and an index on it (online when
    /// `online_rollback`), and its rollback.
    fn bundle(&self, online_rollback: bool) {
        let src = self.dir().join("src");
        let (tier, rollback, online) = if online_rollback {
            (
                "CREATE INDEX t_a ON app.t (a);\n",
                "DROP INDEX CONCURRENTLY IF EXISTS app.t_a;\n",
                "online = true\n",
            )
        } else {
            (
                "ALTER TABLE app.t ADD COLUMN flag boolean;\n",
                "ALTER TABLE app.t DROP COLUMN IF EXISTS flag;\n",
                "",
            )
        };
        write(
            &src.join("bundle.toml"),
            &format!(
                "[bundle]\nname = \"locks\"\nversion = \"1\"\nsequence = 1\n\n\
                 [target]\ndatabase = \"{}\"\n\n\
                 [[tier]]\nname = \"schema\"\nfiles = [\"sql/tier.sql\"]\n\n\
                 [rollback]\nfiles = [\"sql/rollback.sql\"]\nprobe = \"sql/probe.sql\"\n\
                 expect = {{ released = \"1\" }}\n{online}",
                self.db.name
            ),
        );
        write(&src.join("sql/tier.sql"), tier);
        write(&src.join("sql/rollback.sql"), rollback);
        write(
            &src.join("sql/probe.sql"),
            "SELECT 'released'::text AS key, '1'::text AS value",
        );
        pack(self.dir(), &src, "rm.key", "b.tar.gz");
    }

    /// `airlock COMMAND b.tar.gz --yes` as the deploy login, each statement waiting at
    /// most 100ms for its lock, `retries` times run again.
    fn args(&self, command: &str, retries: &str) -> Vec<String> {
        [
            command,
            "b.tar.gz",
            "--yes",
            "--trust",
            "rm.pub",
            "--db",
            &self.conn,
            "--lock-timeout",
            "100ms",
            "--lock-retries",
            retries,
        ]
        .map(String::from)
        .to_vec()
    }

    fn run(&self, command: &str, retries: &str) -> std::process::Output {
        let args = self.args(command, retries);
        airlock(
            self.dir(),
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        )
    }

    fn columns(&self) -> String {
        self.db.scalar(
            "SELECT count(*)::text FROM information_schema.columns \
              WHERE table_schema = 'app' AND table_name = 't' AND column_name = 'flag'",
        )
    }

    fn indexes(&self) -> String {
        self.db.scalar(
            "SELECT count(*)::text FROM pg_indexes WHERE schemaname = 'app' AND indexname = 't_a'",
        )
    }

    /// The ledger's events, in order (`receipt` rows left out).
    fn events(&self) -> String {
        self.db.scalar("SELECT coalesce(string_agg(event, ' ' ORDER BY seq), '') FROM airlock.ledger WHERE event <> 'receipt'")
    }
}

/// A session of the superuser the tests run as (another role than the deploy login,
/// whose state the login cannot see) with a transaction open on app.t: `sql` ran in
/// it. Returns the client (the transaction ends when it commits or drops) and its pid.
fn blocker(db: &TestDb, sql: &str) -> (postgres::Client, i32) {
    let mut c = db.client();
    let pid: i32 = c
        .query_one("SELECT pg_backend_pid()", &[])
        .expect("pid")
        .get(0);
    c.batch_execute(sql).expect("the blocking transaction");
    (c, pid)
}

const SNAPSHOT: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM app.t;";
const READ: &str = "BEGIN; SELECT count(*) FROM app.t;";

/// The lines of `err` that announce a retry.
fn retry_lines(err: &str) -> Vec<&str> {
    err.lines()
        .filter(|l| l.contains("lock busy, retry"))
        .collect()
}

#[test]
fn a_session_of_another_role_is_named_by_pid_though_its_state_is_hidden_from_the_deploy_login() {
    let o = Target::new("lr_hidden");
    o.bundle(false);
    // What the login sees of that session: no state, no transaction start, no query.
    let (mut holder, pid) = blocker(&o.db, SNAPSHOT);
    let seen = o.db.client_as(&o.deployer).query_one(
        "SELECT state IS NULL AND xact_start IS NULL FROM pg_stat_activity WHERE pid = $1",
        &[&pid],
    );
    assert!(
        seen.expect("its row").get::<_, bool>(0),
        "the login sees its state"
    );
    let out = o.run("apply", "2");
    let err = stderr(&out);
    expect_code(&out, 6);
    let retries = retry_lines(&err);
    assert_eq!(retries.len(), 2, "{err}");
    for line in retries.iter().chain(
        err.lines()
            .filter(|l| l.starts_with("error:"))
            .collect::<Vec<_>>()
            .iter(),
    ) {
        assert!(line.contains(&format!("pid {pid}")), "no pid in: {line}");
        assert!(line.contains("hidden from this login"), "{line}");
        // What the login can see of it: its lock on the table.
        assert!(line.contains("AccessShareLock on app.t"), "{line}");
    }
    assert!(!err.contains("no other session"), "{err}");
    // The hint says how to see more (the pid it points to is above now).
    let hint = err
        .lines()
        .find(|l| l.starts_with("hint:"))
        .expect("a hint");
    assert!(
        hint.contains(&format!("GRANT pg_read_all_stats TO \"{}\"", o.deployer)),
        "{hint}"
    );
    // Nothing changed: no column, no ledger row.
    holder.batch_execute("ROLLBACK").unwrap();
    assert_eq!(o.columns(), "0");
    assert_eq!(o.events(), "");
}

#[test]
fn with_pg_read_all_stats_the_deploy_login_sees_what_the_session_runs() {
    let o = Target::new("lr_stats");
    o.bundle(false);
    // The hint's advice: the login may read every session's state (and is no less a
    // deploy login for it).
    admin()
        .batch_execute(&format!("GRANT pg_read_all_stats TO {}", o.deployer))
        .unwrap();
    let (mut holder, pid) = blocker(&o.db, SNAPSHOT);
    let out = o.run("apply", "1");
    let err = stderr(&out);
    expect_code(&out, 6);
    let retries = retry_lines(&err);
    assert_eq!(retries.len(), 1, "{err}");
    assert!(retries[0].contains(&format!("pid {pid}")), "{err}");
    assert!(retries[0].contains("idle in transaction"), "{err}");
    assert!(retries[0].contains("SELECT count(*) FROM app.t"), "{err}");
    assert!(!err.contains("hidden"), "{err}");
    holder.batch_execute("ROLLBACK").unwrap();
    assert_eq!(o.columns(), "0");
    // Once the session is gone, the same apply runs.
    expect_code(&o.run("apply", "1"), 0);
    assert_eq!(o.columns(), "1");
}

#[test]
fn a_rollback_whose_lock_is_never_had_retries_names_the_session_and_exits_6_changing_nothing() {
    let o = Target::new("lr_rb_busy");
    o.bundle(false);
    expect_code(&o.run("apply", "0"), 0);
    let (mut holder, pid) = blocker(&o.db, READ);
    let out = o.run("rollback", "2");
    let err = stderr(&out);
    expect_code(&out, 6);
    let retries = retry_lines(&err);
    assert_eq!(retries.len(), 2, "{err}");
    assert!(
        retries[0].contains("retry 1/2") && retries[1].contains("retry 2/2"),
        "{err}"
    );
    for line in &retries {
        assert!(line.contains(&format!("pid {pid}")), "{line}");
    }
    let error = err
        .lines()
        .find(|l| l.starts_with("error:"))
        .expect("an error");
    assert!(error.contains("tried 3 time(s)"), "{error}");
    assert!(error.contains(&format!("pid {pid}")), "{error}");
    // The same in --json: a lock-busy refusal.
    let args = o.args("rollback", "0");
    let mut json_args = vec!["--json"];
    json_args.extend(args.iter().map(String::as_str));
    let doc = json(&airlock(o.dir(), &json_args));
    assert_eq!(doc["kind"], "lock-busy", "{doc}");
    assert_eq!(doc["exit_code"], 6, "{doc}");
    // The database is as it was: the column stays, no rollback row.
    holder.batch_execute("ROLLBACK").unwrap();
    assert_eq!(o.columns(), "1");
    assert_eq!(o.events(), "apply");
}

#[test]
fn a_lock_released_between_retries_lets_the_rollback_through() {
    let o = Target::new("lr_rb_free");
    o.bundle(false);
    expect_code(&o.run("apply", "0"), 0);
    let (mut holder, pid) = blocker(&o.db, READ);
    let args = o.args("rollback", "20");
    let mut child = child::spawn(
        o.dir(),
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let (rest, seen) = child::until_line(&mut child, "lock busy, retry 1/20");
    assert!(
        seen.last().unwrap().contains(&format!("pid {pid}")),
        "{seen:?}"
    );
    holder.batch_execute("ROLLBACK").unwrap();
    let (code, out, err) = child::finish(child, rest);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(o.columns(), "0");
    assert_eq!(o.events(), "apply rollback");
}

#[test]
fn an_online_rollback_statement_retries_on_its_own_and_goes_through_once_the_lock_is_free() {
    let o = Target::new("lr_rb_online");
    o.bundle(true);
    expect_code(&o.run("apply", "0"), 0);
    assert_eq!(o.indexes(), "1");
    let (mut holder, pid) = blocker(&o.db, READ);
    let args = o.args("rollback", "20");
    let mut child = child::spawn(
        o.dir(),
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let (rest, seen) = child::until_line(&mut child, "lock busy, retry 1/20");
    let line = seen.last().unwrap();
    assert!(line.contains("rollback (online)"), "{line}");
    assert!(line.contains(&format!("pid {pid}")), "{line}");
    holder.batch_execute("ROLLBACK").unwrap();
    let (code, out, err) = child::finish(child, rest);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(o.indexes(), "0");
    assert_eq!(o.events(), "apply rollback");
}

#[test]
fn reissue_names_an_airlock_session_of_another_role_whose_start_it_cannot_see() {
    let o = Target::new("lr_reissue");
    o.bundle(false);
    expect_code(&o.run("apply", "0"), 0);
    // Another role's airlock (a DBA's `airlock status` as a superuser, say).
    let mut other = postgres::Config::new()
        .host(&std::env::var("PGHOST").unwrap_or_else(|_| "/var/run/postgresql".into()))
        .port(pg_port())
        .user(&std::env::var("PGUSER").unwrap_or_else(|_| "root".into()))
        .dbname(&o.db.name)
        .application_name("airlock")
        .connect(postgres::NoTls)
        .expect("another airlock session");
    let pid: i32 = other
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    let out = run_json(o.dir(), "rm.pub", &o.conn, &["reissue", "b.tar.gz"]);
    let doc = json(&out);
    assert_eq!(doc["kind"], "run-in-progress", "{doc}");
    let error = doc["error"].as_str().unwrap();
    assert!(error.contains(&format!("pid {pid}")), "{error}");
    assert!(
        error.contains("its state is hidden from this login"),
        "{error}"
    );
    drop(other);
}

/// One deploy login on two databases (issue 76, item 11): another database the login
/// may connect to is dropped while an apply here waits for its lock. The login's
/// grant on that database goes with it, which no statement of this transaction can
/// do (DROP DATABASE runs in no transaction): the apply goes through, not "exit 5,
/// the bundle's code changed what the login holds".
#[test]
fn another_database_of_the_login_dropped_during_an_apply_is_not_blamed_on_the_bundle() {
    let o = Target::new("lr_twodb");
    let other = TestDb::new("lr_twodb_b");
    admin()
        .batch_execute(&format!(
            "GRANT CONNECT ON DATABASE \"{}\" TO {}",
            other.name, o.deployer
        ))
        .unwrap();
    o.bundle(false);
    let (mut holder, _) = blocker(&o.db, READ);
    let mut args = o.args("apply", "0");
    let at = args.iter().position(|a| a == "100ms").unwrap();
    args[at] = "120s".into();
    let mut child = child::spawn(
        o.dir(),
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    // The apply's transaction began (and read what the login holds): its ALTER waits
    // for the lock the holder has.
    let mut watch = o.db.client();
    loop {
        let waiting: i64 = watch
            .query_one(
                "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
                  WHERE NOT l.granted AND l.relation = 'app.t'::regclass AND a.usename = $1",
                &[&o.deployer],
            )
            .unwrap()
            .get(0);
        if waiting > 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    admin()
        .batch_execute(&format!("DROP DATABASE \"{}\"", other.name))
        .unwrap();
    holder.batch_execute("ROLLBACK").unwrap();
    let err = child.stderr.take().unwrap();
    let (code, out, err) = child::finish(child, err);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(o.columns(), "1");
    assert_eq!(o.events(), "apply");
}
