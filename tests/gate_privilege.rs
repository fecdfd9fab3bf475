//! Gates and probes run code the database owner wrote (policies, views, the functions
//! they call) as the gate role. Each test sets up a non-superuser database owner who
//! plants such code on what a gate or probe reads, and proves that the code never
//! ran through a policy, that nothing it could leave behind (a session advisory lock,
//! a sequence change) stays, and that `plan` names the exact grants the gate role
//! needs instead of `pg_read_all_data`.

mod util;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use util::*;

/// The advisory-lock class the planted code leaks through (locks are looked for in
/// the test's own database: tests run in parallel).
const LEAK_CLASS: i32 = 4_242_017;

/// A database owned by a non-superuser, and a gate role set up as the README used to
/// say (with `pg_read_all_data`: the worst case a policy could exploit).
struct Owned {
    t: tempfile::TempDir,
    db: TestDb,
    _roles: DropRoles,
    owner: String,
    gate: String,
    /// `--db` for airlock: the test's superuser unless a test logs in as the owner.
    conn: String,
}

impl Owned {
    fn new(tag: &str) -> Owned {
        let db = TestDb::new(tag);
        let (owner, gate) = (role_name("gp_owner"), role_name("gp_gate"));
        admin()
            .batch_execute(&format!(
                "CREATE ROLE {owner} LOGIN; CREATE ROLE {gate} NOLOGIN;
                 GRANT pg_read_all_data TO {gate};
                 ALTER DATABASE \"{}\" OWNER TO {owner};",
                db.name
            ))
            .expect("roles");
        db.exec(&format!("GRANT TEMP ON DATABASE \"{}\" TO {gate}", db.name));
        let conn = db.conn();
        Owned {
            t: keyed_dir(),
            db,
            _roles: DropRoles(vec![owner.clone(), gate.clone()]),
            owner,
            gate,
            conn,
        }
    }

    fn dir(&self) -> &Path {
        self.t.path()
    }

    fn as_owner(&self, sql: &str) {
        self.db.exec_as(&self.owner, sql);
    }

    /// A bundle: one gate, a preflight (and rollback) probe, one tier, a rollback.
    fn bundle(&self, out: &str, gate: &str, probe: &str) -> String {
        let dir = self.dir().join(format!("src-{out}"));
        write(
            &dir.join("bundle.toml"),
            &format!(
                "[bundle]\nname = \"gp\"\nversion = \"1.0\"\nsequence = 1\n\n\
                 [target]\ndatabase = \"{}\"\n\n\
                 [[gate]]\nname = \"g\"\nfile = \"sql/gate.sql\"\n\n\
                 [preflight]\nfile = \"sql/probe.sql\"\nexpect = {{ n = \"1\" }}\n\n\
                 [[tier]]\nname = \"one\"\nfiles = [\"sql/tier.sql\"]\ngates = [\"g\"]\n\n\
                 [rollback]\nfiles = [\"sql/rollback.sql\"]\n",
                self.db.name
            ),
        );
        write(&dir.join("sql/gate.sql"), gate);
        write(&dir.join("sql/probe.sql"), probe);
        write(&dir.join("sql/tier.sql"), "CREATE TABLE public.t1(x int);");
        write(&dir.join("sql/rollback.sql"), "DROP TABLE public.t1;");
        pack(self.dir(), &dir, "rm.key", out);
        out.to_string()
    }

    fn args<'a>(&'a self, conn: &'a str, args: &[&'a str]) -> Vec<&'a str> {
        let mut a = vec!["--json"];
        a.extend(args);
        a.extend(["--trust", "rm.pub", "--db", conn, "--gate-role", &self.gate]);
        a
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        airlock(self.dir(), &self.args(&self.conn, args))
    }

    /// From now on airlock logs in as the owner (not a superuser), a member of the
    /// gate role: bundle SQL and probes then run, where a superuser login refuses to
    /// run bundle SQL while the owner's code sits in the database.
    fn log_in_as_owner(&mut self) {
        // The gate role loses pg_read_all_data first: through it the login could read
        // pg_file_settings (the server's configuration), and a deploy refuses such a
        // login (issue 66, finding 4); the tests grant what the gate reads instead.
        admin()
            .batch_execute(&format!(
                "REVOKE pg_read_all_data FROM {gate}; GRANT {gate} TO {owner}",
                gate = self.gate,
                owner = self.owner
            ))
            .expect("gate role membership");
        self.conn = format!("dbname={} user={}", self.db.name, self.owner);
    }

    /// Run airlock while another session polls `pg_locks` for the leak class until
    /// airlock has exited; returns airlock's output and how many polls saw a leak.
    fn run_watched(&self, args: &[&str]) -> (std::process::Output, usize) {
        let done = Arc::new(AtomicBool::new(false));
        let watcher = {
            let done = done.clone();
            let mut c = self.db.client();
            std::thread::spawn(move || {
                let mut seen = 0;
                while !done.load(Ordering::SeqCst) {
                    let n: i64 = c
                        .query_one(
                            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = $1::int::oid
                               AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                            &[&LEAK_CLASS],
                        )
                        .expect("poll pg_locks")
                        .get(0);
                    if n > 0 {
                        seen += 1;
                    }
                }
                seen
            })
        };
        let mut c = airlock_command(self.dir(), &[]);
        c.args(self.args(&self.conn, args))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let out = c
            .spawn()
            .expect("run airlock")
            .wait_with_output()
            .expect("airlock");
        done.store(true, Ordering::SeqCst);
        (out, watcher.join().expect("watcher"))
    }

    fn leaked_locks_now(&self) -> String {
        self.db.scalar(&format!(
            "SELECT count(*)::text FROM pg_locks WHERE locktype = 'advisory' AND classid = {LEAK_CLASS}
               AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ))
    }
}

/// The owner's table, readable by the gate role, with a policy whose function reads
/// `pg_authid` and leaks what it read through a session advisory lock (held long
/// enough for anyone polling `pg_locks` to see it).
fn plant_leaking_policy(o: &Owned) {
    o.as_owner(&format!(
        "CREATE SCHEMA app;
         CREATE TABLE app.readings(x int); INSERT INTO app.readings VALUES (1);
         CREATE FUNCTION app.leak() RETURNS boolean LANGUAGE plpgsql PARALLEL SAFE AS $f$
           BEGIN
             PERFORM pg_catalog.pg_advisory_lock({LEAK_CLASS}, (SELECT count(*)::int FROM pg_catalog.pg_authid));
             PERFORM pg_catalog.pg_sleep(0.3);
             RETURN true;
           END $f$;
         ALTER TABLE app.readings ENABLE ROW LEVEL SECURITY;
         CREATE POLICY peek ON app.readings FOR SELECT USING (app.leak());
         GRANT USAGE ON SCHEMA app TO {gate}; GRANT SELECT ON app.readings TO {gate};",
        gate = o.gate
    ));
}

#[test]
fn a_policy_on_a_table_a_gate_reads_never_runs_and_leaks_nothing() {
    let o = Owned::new("gp_policy");
    plant_leaking_policy(&o);
    let b = o.bundle(
        "b.tar.gz",
        "SELECT count(*) >= 1 AS ready FROM app.readings",
        "SELECT 'n'::text AS key, '1'::text AS value",
    );
    let (out, seen) = o.run_watched(&["gate", &b]);
    assert_eq!(seen, 0, "another session saw the policy's advisory lock");
    expect_code(&out, 3);
    let j = json(&out);
    assert_eq!(j["verdict"], "BLOCKED");
    let reason = j["gates"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("row-level security") && reason.contains("readings"),
        "{reason}"
    );
    assert_eq!(o.leaked_locks_now(), "0");
    // Through apply too (the gate inside the deploy transaction): BLOCKED, nothing ran.
    let (out, seen) = o.run_watched(&["apply", &b]);
    assert_eq!(seen, 0, "another session saw the policy's advisory lock");
    expect_code(&out, 3);
    assert_eq!(
        o.db.scalar("SELECT (to_regclass('public.t1') IS NULL)::text"),
        "true"
    );
    assert_eq!(o.leaked_locks_now(), "0");
}

#[test]
fn a_policy_on_a_table_the_rollback_probe_reads_cannot_change_a_sequence() {
    for superuser_login in [true, false] {
        let mut o = Owned::new("gp_probe");
        // The owner's own login applies (a superuser's would refuse to run the owner's
        // SQL at all); the rollback below runs on the login the loop names.
        let superuser_conn = o.conn.clone();
        o.log_in_as_owner();
        o.as_owner(&format!(
            "CREATE SCHEMA app;
             CREATE TABLE app.readings(x int); INSERT INTO app.readings VALUES (1);
             CREATE SEQUENCE app.counter;
             GRANT USAGE ON SCHEMA app TO {gate}; GRANT SELECT ON app.readings TO {gate};",
            gate = o.gate
        ));
        let probe = "SELECT 'n'::text AS key, count(*)::text AS value FROM app.readings";
        let b = o.bundle("b.tar.gz", "SELECT true AS ready", probe);
        expect_code(&o.run(&["apply", &b]), 0);
        // After the apply, the owner plants a policy that escapes read-only mode and
        // moves a sequence, on the table the rollback probe reads.
        o.as_owner(&format!(
            "CREATE FUNCTION app.bump() RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER AS $f$
               BEGIN
                 PERFORM pg_catalog.pg_advisory_lock({LEAK_CLASS}, 1);
                 BEGIN RESET transaction_read_only; EXCEPTION WHEN OTHERS THEN NULL; END;
                 BEGIN PERFORM pg_catalog.setval('app.counter', 777); EXCEPTION WHEN OTHERS THEN NULL; END;
                 RETURN true;
               END $f$;
             ALTER TABLE app.readings ENABLE ROW LEVEL SECURITY;
             CREATE POLICY bump ON app.readings FOR SELECT USING (app.bump());"
        ));
        let before =
            o.db.scalar("SELECT last_value || '/' || is_called FROM app.counter");
        if superuser_login {
            o.conn = superuser_conn;
        }
        let (out, seen) = o.run_watched(&["rollback", &b, "--yes"]);
        assert_eq!(seen, 0, "another session saw the policy's advisory lock");
        assert_eq!(o.leaked_locks_now(), "0");
        let after =
            o.db.scalar("SELECT last_value || '/' || is_called FROM app.counter");
        assert_eq!(
            before, after,
            "the rollback probe moved the owner's sequence"
        );
        assert_ne!(code(&out), 0, "{}", stdout(&out));
        let j = json(&out);
        let error = j["error"].as_str().unwrap_or_default();
        if superuser_login {
            // A superuser login refuses before any bundle SQL or probe runs: here
            // already at the ledger, which the owner's login made (the owner's SQL never
            // runs on a superuser's login either: bundle-role).
            assert_eq!(code(&out), 5, "{j}");
            assert_eq!(j["kind"], "ledger-untrusted", "{j}");
        } else {
            // Logged in as the owner, the rollback runs and its probe meets the policy:
            // refused, never evaluated.
            assert!(
                error.contains("row-level security") && error.contains("readings"),
                "{error}"
            );
        }
        // Nothing was rolled back: the table the tier created is still there.
        assert_eq!(
            o.db.scalar("SELECT (to_regclass('public.t1') IS NOT NULL)::text"),
            "true"
        );
    }
}

/// What a view folded at plan time can still do (policies cannot run any more): take
/// a session advisory lock. The gate is BLOCKED, the lock is released before the
/// deploy continues, and nothing is applied.
#[test]
fn an_advisory_lock_left_by_a_gate_is_refused_and_released() {
    let o = Owned::new("gp_lock");
    o.as_owner(&format!(
        "CREATE SCHEMA app;
         CREATE FUNCTION app.grab(k int) RETURNS boolean LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $f$
           BEGIN PERFORM pg_catalog.pg_advisory_lock({LEAK_CLASS}, k); RETURN true; END $f$;
         CREATE VIEW app.ok AS SELECT app.grab(7) AS ready;
         GRANT USAGE ON SCHEMA app TO {gate}; GRANT SELECT ON app.ok TO {gate};",
        gate = o.gate
    ));
    let b = o.bundle(
        "b.tar.gz",
        "SELECT ready FROM app.ok",
        "SELECT 'n'::text AS key, '1'::text AS value",
    );
    let out = o.run(&["plan", &b]);
    expect_code(&out, 3);
    let out = o.run(&["apply", &b]);
    expect_code(&out, 3);
    let j = json(&out);
    let error = j["error"].as_str().unwrap();
    assert!(error.contains("advisory lock"), "{error}");
    assert_eq!(
        o.db.scalar("SELECT (to_regclass('public.t1') IS NULL)::text"),
        "true"
    );
    assert_eq!(o.leaked_locks_now(), "0");
}

/// `plan` names the exact grants the gate role needs (the relations the bundle's gate
/// and probe SQL reads, and the schemas holding them), in the report and in JSON.
#[test]
fn plan_derives_the_gate_roles_grants_from_the_bundles_sql() {
    let o = Owned::new("gp_grants");
    o.as_owner(
        "CREATE SCHEMA app; CREATE SCHEMA other;
         CREATE TABLE app.approvals(id int); INSERT INTO app.approvals VALUES (1);
         CREATE TABLE other.facts(k text); CREATE TABLE app.unread(x int);
         CREATE VIEW app.fact_view AS SELECT k FROM other.facts;",
    );
    let b = o.bundle(
        "b.tar.gz",
        "SELECT count(*) >= 1 AS ready FROM app.approvals",
        "SELECT 'n'::text AS key, (SELECT count(*) FROM app.fact_view)::text AS value \
         UNION ALL SELECT 'c', count(*)::text FROM pg_catalog.pg_class WHERE false \
         UNION ALL SELECT 'x', query_to_xml('SELECT 1 FROM app.unread', false, true, '')::text WHERE false",
    );
    let out = o.run(&["plan", &b]);
    let j = json(&out);
    let grants: Vec<String> = j["gate_grants"]["statements"]
        .as_array()
        .unwrap_or_else(|| panic!("no gate_grants in {j}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        grants,
        vec![
            format!("GRANT USAGE ON SCHEMA app TO {};", o.gate),
            format!(
                "GRANT SELECT ON app.approvals, app.fact_view TO {};",
                o.gate
            ),
        ]
    );
    // What it cannot see it names: the query text query_to_xml runs.
    assert_eq!(
        j["gate_grants"]["not_derived"],
        serde_json::json!(["query_to_xml()"])
    );
    // The human report shows the same lines.
    let conn = o.db.conn();
    let mut a = o.args(&conn, &["plan", &b]);
    a.remove(0);
    let human = airlock(o.dir(), &a);
    for g in &grants {
        assert!(stdout(&human).contains(g.as_str()), "{}", stdout(&human));
    }
}

/// Issue 68, item 10: a gate the gate role may not read fails naming the table and the
/// grant, and never airlock's own wrapper (`SQL function "airlock_query"`), which is no
/// part of the bundle's SQL.
#[test]
fn a_gate_without_its_grant_names_the_table_not_airlocks_wrapper() {
    let db = TestDb::new("gate_wrapper_ctx");
    db.exec(
        "CREATE SCHEMA fx; CREATE TABLE fx.secret(i int); REVOKE ALL ON fx.secret FROM airlock_gate;",
    );
    let t = keyed_dir();
    let d = t.path();
    let b = mini_bundle(
        d,
        &db.name,
        "b.tar.gz",
        "SELECT count(*) >= 0 AS ready FROM fx.secret",
        &[("one", "CREATE TABLE a1(i int);", true)],
        "DROP TABLE a1;",
    );
    let conn = db.conn();
    let o = airlock(
        d,
        &[
            "apply", &b, "--param", "code=x", "--yes", "--trust", "rm.pub", "--db", &conn,
        ],
    );
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("permission denied for table secret") && err.contains("GRANT SELECT ON"),
        "{err}"
    );
    assert!(!err.contains("airlock_query"), "{err}");
    assert_eq!(db.scalar("SELECT to_regclass('a1') IS NULL"), "t");
}
