//! A rehearsal touches nothing outside its clone (DESIGN §5, "Rehearse touches
//! nothing outside its clone"). Roles, memberships, database and role settings,
//! tablespaces and subscriptions are cluster-wide: a bundle that changes them on the
//! clone changes them for every database. Each test runs the real binary as a
//! superuser against the local server and proves what is left afterwards: no role,
//! no setting, no clone database.

mod util;
use std::path::Path;
use util::*;

struct Case {
    t: tempfile::TempDir,
    db: TestDb,
    /// The role the bundle tries to create (cluster-wide), dropped at the end.
    role: String,
    _serial: Serial,
}

const GATE: &str = "SELECT true AS ready, 'open' AS reason";
const ROLLBACK: &str = "DROP TABLE IF EXISTS app.t1; DROP SCHEMA IF EXISTS app;";

impl Case {
    fn new(tag: &str) -> Case {
        let serial = cluster_serial();
        let db = TestDb::new(tag);
        let role = role_name("iso_role");
        Case {
            t: keyed_dir(),
            db,
            role,
            _serial: serial,
        }
    }

    fn dir(&self) -> &Path {
        self.t.path()
    }

    /// A bundle whose one tier creates `app.t1` and then runs `extra`.
    fn bundle(&self, out: &str, extra: &str) -> String {
        let tier = format!("CREATE SCHEMA app;\nCREATE TABLE app.t1(i int);\n{extra}\n");
        mini_bundle(
            self.dir(),
            &self.db.name,
            out,
            GATE,
            &[("structure", &tier, false)],
            ROLLBACK,
        )
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        let conn = self.db.conn();
        let mut a: Vec<&str> = args.to_vec();
        a.extend(["--trust", "rm.pub", "--db", conn.as_str()]);
        airlock(self.dir(), &a)
    }

    fn role_exists(&self) -> bool {
        !admin()
            .query("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&self.role])
            .expect("pg_roles")
            .is_empty()
    }

    /// The target's own rows in pg_db_role_setting, as text.
    fn target_settings(&self) -> String {
        admin()
            .query_one(
                "SELECT coalesce(string_agg(array_to_string(s.setconfig, ','), ';'), '') \
                 FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase \
                 WHERE d.datname = $1",
                &[&self.db.name],
            )
            .expect("pg_db_role_setting")
            .get(0)
    }

    /// Databases named like a clone of this target.
    fn clones_left(&self) -> Vec<String> {
        admin()
            .query(
                "SELECT datname::text FROM pg_database WHERE starts_with(datname, $1)",
                &[&format!("{}_rehearse_", self.db.name)],
            )
            .expect("pg_database")
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    #[track_caller]
    fn assert_nothing_left(&self) {
        assert!(!self.role_exists(), "role {} was left behind", self.role);
        assert_eq!(self.target_settings(), "", "the target's settings changed");
        assert_eq!(self.clones_left(), Vec::<String>::new(), "a clone was left");
    }
}

impl Drop for Case {
    fn drop(&mut self) {
        if let Ok(mut c) = std::panic::catch_unwind(admin) {
            for clone in self.clones_left() {
                let _ =
                    c.batch_execute(&format!("DROP DATABASE IF EXISTS \"{clone}\" WITH (FORCE)"));
            }
            let _ = c.batch_execute(&format!(
                "ALTER DATABASE \"{}\" RESET ALL; DROP ROLE IF EXISTS {};",
                self.db.name, self.role
            ));
        }
    }
}

fn step<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["step"] == name)
        .unwrap_or_else(|| panic!("no step {name:?} in {report:#}"))
}

/// The bundle: a role and a setting on the real target, in plain SQL.
fn reaching_sql(c: &Case) -> String {
    format!(
        "CREATE ROLE {};\nALTER DATABASE \"{}\" SET work_mem = '7MB';",
        c.role, c.db.name
    )
}

#[test]
fn rehearse_refuses_up_front_a_bundle_that_reaches_beyond_its_database() {
    let c = Case::new("iso_refuse");
    let b = c.bundle("b.tar.gz", &reaching_sql(&c));
    let o = c.run(&["--json", "rehearse", &b, "--param", "code=A1"]);
    expect_code(&o, 5);
    let r = json(&o);
    let s = step(&r, "stays inside its database");
    assert_eq!(s["verdict"], "FAIL", "{r:#}");
    let detail = s["detail"].as_str().unwrap();
    assert!(
        detail.contains("CREATE ROLE at sql/tier1.sql:3")
            && detail.contains("ALTER DATABASE at sql/tier1.sql:4"),
        "{detail}"
    );
    let listed: Vec<String> = r["reaches_beyond"]
        .as_array()
        .unwrap_or_else(|| panic!("no reaches_beyond in {r:#}"))
        .iter()
        .map(|x| format!("{} at line {}", x["statement"].as_str().unwrap(), x["line"]))
        .collect();
    assert_eq!(
        listed,
        ["CREATE ROLE at line 3", "ALTER DATABASE at line 4"]
    );
    // Refused before cloning: no clone step ran, nothing was created anywhere.
    assert!(r["clone_strategy"].is_null(), "{r:#}");
    assert_eq!(step(&r, "clone the target")["verdict"], "SKIPPED");
    c.assert_nothing_left();
    // The human report says why.
    let o = c.run(&["rehearse", &b, "--param", "code=A1"]);
    expect_code(&o, 5);
    assert!(
        stdout(&o).contains("reaches beyond its database"),
        "{}",
        stdout(&o)
    );
    c.assert_nothing_left();
    // So does `--quiet`, on one line: the step that failed and its detail.
    let o = c.run(&["-q", "rehearse", &b, "--param", "code=A1"]);
    expect_code(&o, 5);
    let out = stdout(&o);
    assert!(
        out.starts_with("FAIL: stays inside its database: ") && out.contains("CREATE ROLE"),
        "{out}"
    );
    assert_eq!(out.lines().count(), 1, "{out}");
    c.assert_nothing_left();
}

#[test]
fn plan_names_the_statements_that_reach_beyond_the_database() {
    let c = Case::new("iso_plan");
    let b = c.bundle("b.tar.gz", &reaching_sql(&c));
    let o = c.run(&["--json", "plan", &b, "--param", "code=A1"]);
    expect_code(&o, 0);
    let r = json(&o);
    let reaches: Vec<String> = r["reaches_beyond"]
        .as_array()
        .unwrap_or_else(|| panic!("no reaches_beyond in {r:#}"))
        .iter()
        .map(|x| {
            format!(
                "{} at {}:{}",
                x["statement"].as_str().unwrap(),
                x["file"].as_str().unwrap(),
                x["line"]
            )
        })
        .collect();
    assert_eq!(
        reaches,
        vec![
            "CREATE ROLE at sql/tier1.sql:3".to_string(),
            "ALTER DATABASE at sql/tier1.sql:4".to_string()
        ]
    );
    let o = c.run(&["plan", &b, "--param", "code=A1"]);
    expect_code(&o, 0);
    let out = stdout(&o);
    assert!(
        out.contains("reaches beyond its database: CREATE ROLE at sql/tier1.sql:3"),
        "{out}"
    );
    // A bundle that stays inside says nothing of the kind.
    let inside = c.bundle("in.tar.gz", "INSERT INTO app.t1 VALUES (1);");
    let o = c.run(&["--json", "plan", &inside, "--param", "code=A1"]);
    expect_code(&o, 0);
    assert!(json(&o).get("reaches_beyond").is_none());
    c.assert_nothing_left();
}

#[test]
fn rehearse_catches_what_dynamic_sql_changes_in_the_cluster() {
    let c = Case::new("iso_dyn");
    // Static classification cannot see inside EXECUTE: the before/after comparison does.
    let hidden = format!(
        "DO $$ BEGIN EXECUTE 'CREATE ROLE ' || '{}'; EXECUTE 'ALTER DATABASE ' || quote_ident('{}') || ' SET work_mem = ''7MB'''; END $$;",
        c.role, c.db.name
    );
    let b = c.bundle("b.tar.gz", &hidden);
    let o = c.run(&["--json", "rehearse", &b, "--param", "code=A1"]);
    expect_code(&o, 5);
    let r = json(&o);
    assert_eq!(step(&r, "stays inside its database")["verdict"], "PASS");
    let s = step(&r, "cluster unchanged");
    assert_eq!(s["verdict"], "FAIL", "{r:#}");
    let changes: Vec<String> = r["cluster_changes"]
        .as_array()
        .unwrap_or_else(|| panic!("no cluster_changes in {r:#}"))
        .iter()
        .map(|x| {
            format!(
                "{} | {}",
                x["what"].as_str().unwrap(),
                x["undo"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert!(
        changes.contains(&format!(
            "role {} created | DROP ROLE \"{}\"",
            c.role, c.role
        )),
        "{changes:?}"
    );
    assert!(
        changes.contains(&format!(
            "database {} setting work_mem=7MB added | ALTER DATABASE \"{}\" RESET \"work_mem\"",
            c.db.name, c.db.name
        )),
        "{changes:?}"
    );
    // The clone is gone; what the bundle did to the cluster is named, not undone.
    assert_eq!(c.clones_left(), Vec::<String>::new());
    assert!(c.role_exists());
    assert_eq!(c.target_settings(), "work_mem=7MB");
    // The human report names each change with the command that undoes it.
    admin()
        .batch_execute(&format!(
            "DROP ROLE {}; ALTER DATABASE \"{}\" RESET ALL",
            c.role, c.db.name
        ))
        .expect("undo");
    let o = c.run(&["rehearse", &b, "--param", "code=A1"]);
    expect_code(&o, 5);
    let out = stdout(&o);
    assert!(
        out.contains(&format!("role {} created", c.role))
            && out.contains(&format!("undo: DROP ROLE \"{}\"", c.role)),
        "{out}"
    );
}

#[test]
fn a_subscription_on_the_clone_never_leaves_the_clone_behind() {
    let c = Case::new("iso_sub");
    let sub = format!("iso_sub_{}", c.role);
    let create = format!(
        "CREATE SUBSCRIPTION {sub} CONNECTION 'dbname=airlock_nowhere' PUBLICATION p WITH (connect = false, slot_name = NONE)"
    );
    // Plain: refused up front.
    let b = c.bundle("plain.tar.gz", &format!("{create};"));
    let o = c.run(&["--json", "rehearse", &b, "--param", "code=A1"]);
    expect_code(&o, 5);
    let detail = step(&json(&o), "stays inside its database")["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        detail.contains("CREATE SUBSCRIPTION at sql/tier1.sql:3"),
        "{detail}"
    );
    c.assert_nothing_left();
    // Hidden in dynamic SQL: it runs on the clone, and the clone is still dropped.
    let b = c.bundle(
        "hidden.tar.gz",
        &format!("DO $$ BEGIN EXECUTE $q${create}$q$; END $$;"),
    );
    let o = c.run(&["--json", "rehearse", &b, "--param", "code=A1"]);
    let r = json(&o);
    assert_eq!(step(&r, "drop the clone")["verdict"], "PASS", "{r:#}");
    assert_ne!(code(&o), 0, "{r:#}");
    c.assert_nothing_left();
    let left: i64 = admin()
        .query_one(
            "SELECT count(*) FROM pg_subscription WHERE subname = $1",
            &[&sub],
        )
        .expect("pg_subscription")
        .get(0);
    assert_eq!(left, 0, "the subscription was left behind");
}

#[test]
fn a_replication_slot_made_by_a_tier_fails_the_rehearsal_with_its_undo() {
    let c = Case::new("iso_slot");
    let slot = format!("iso_slot_{}", c.role);
    let slots = || -> i64 {
        admin()
            .query_one(
                "SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1",
                &[&slot],
            )
            .expect("pg_replication_slots")
            .get(0)
    };
    // The call written out: the parser names it, refused before anything is cloned.
    let b = c.bundle(
        "plain.tar.gz",
        &format!("SELECT pg_create_physical_replication_slot('{slot}');"),
    );
    let o = c.run(&["--json", "rehearse", &b, "--param", "code=A1"]);
    expect_code(&o, 5);
    let r = json(&o);
    assert_eq!(
        step(&r, "stays inside its database")["verdict"],
        "FAIL",
        "{r:#}"
    );
    assert_eq!(slots(), 0, "a refused rehearsal made the slot");
    // Built at run time, where no parser sees it (and a slot outlives a rollback):
    // the cluster's comparison catches it.
    let b = c.bundle(
        "b.tar.gz",
        &format!("DO $$ BEGIN EXECUTE 'SELECT pg_create_physical_' || 'replication_slot(''{slot}'')'; END $$;"),
    );
    let o = c.run(&["--json", "rehearse", &b, "--param", "code=A1"]);
    let left: i64 = admin()
        .query_one(
            "SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .expect("pg_replication_slots")
        .get(0);
    if left > 0 {
        admin()
            .execute("SELECT pg_drop_replication_slot($1)", &[&slot])
            .expect("drop the slot");
    }
    expect_code(&o, 5);
    let r = json(&o);
    let changes = r["cluster_changes"].to_string();
    assert!(
        changes.contains(&format!("replication slot {slot} created while the rehearsal ran (the server ties no slot to a transaction: if another session made it, rehearse again)"))
            && changes.contains(&format!("SELECT pg_drop_replication_slot('{slot}')")),
        "{r:#}"
    );
    assert_eq!(
        left, 1,
        "the rehearsal left the slot for the operator to see"
    );
    c.assert_nothing_left();
}

/// Another session's cluster-wide changes, made while the rehearsal is provably in the
/// middle of its apply step: the tier waits for a row lock this test holds on a role's
/// `pg_authid` row (a shared catalog, so the clone's session can wait on it), the test
/// sees the clone's backend waiting on a lock, changes roles, memberships, role
/// settings and databases from its own session, then lets the tier go on.
struct Concurrent {
    /// The role whose row the tier waits for.
    lock_role: String,
    /// Roles and databases this test's "other session" makes and drops.
    made: String,
    gone: String,
    db_made: String,
    db_gone: String,
}

impl Concurrent {
    fn new() -> Concurrent {
        let c = Concurrent {
            lock_role: role_name("iso_lock"),
            made: role_name("iso_other_made"),
            gone: role_name("iso_other_gone"),
            db_made: role_name("iso_other_db_made"),
            db_gone: role_name("iso_other_db_gone"),
        };
        let mut a = admin();
        // One statement a message: CREATE DATABASE cannot run in a transaction block.
        for sql in [
            format!("CREATE ROLE {}", c.lock_role),
            format!("CREATE ROLE {}", c.gone),
            format!("CREATE DATABASE {}", c.db_gone),
        ] {
            a.batch_execute(&sql)
                .expect("set up the other session's objects");
        }
        c
    }

    /// The tier line that waits for this test's row lock.
    fn wait_sql(&self) -> String {
        format!(
            "SELECT 1 FROM pg_catalog.pg_authid WHERE rolname = '{}' FOR SHARE;",
            self.lock_role
        )
    }

    /// Rehearse `bundle` while another session changes the cluster mid-apply.
    fn rehearse(&self, c: &Case, bundle: &str) -> std::process::Output {
        // The row lock the tier will wait for, held on another database (the
        // target must have no session for the clone).
        let mut holder = admin();
        let mut hold = holder.transaction().expect("BEGIN");
        hold.execute(
            "SELECT 1 FROM pg_catalog.pg_authid WHERE rolname = $1 FOR UPDATE",
            &[&self.lock_role],
        )
        .expect("lock the role's row");
        let conn = c.db.conn();
        let child = airlock_spawn(
            c.dir(),
            &[
                "--json", "rehearse", bundle, "--param", "code=A1", "--trust", "rm.pub", "--db",
                &conn,
            ],
        );
        let clone = format!("{}_rehearse_{}", c.db.name, child.id());
        // Provably mid-tier: the clone's backend waits for a lock (this one).
        let mut watcher = admin();
        let mut polls = 0;
        loop {
            let waiting: i64 = watcher
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'",
                    &[&clone],
                )
                .expect("pg_stat_activity")
                .get(0);
            if waiting > 0 {
                break;
            }
            polls += 1;
            assert!(
                polls < 12_000,
                "the rehearsal never reached the tier's lock"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        // Another session changes the cluster while the apply transaction is open.
        let mut other = admin();
        let (made, lock) = (&self.made, &self.lock_role);
        for sql in [
            format!("CREATE ROLE {made}"),
            format!("ALTER ROLE {made} SET work_mem = '3MB'"),
            format!("GRANT {made} TO {lock}"),
            format!("DROP ROLE {}", self.gone),
            format!("CREATE DATABASE {}", self.db_made),
            format!("DROP DATABASE {}", self.db_gone),
        ] {
            other
                .batch_execute(&sql)
                .expect("the other session's changes");
        }
        hold.rollback().expect("release the row lock");
        child.wait_with_output().expect("rehearse")
    }
}

impl Drop for Concurrent {
    fn drop(&mut self) {
        if let Ok(mut c) = std::panic::catch_unwind(admin) {
            for db in [&self.db_made, &self.db_gone] {
                let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"));
            }
            let _ = c.batch_execute(&format!(
                "DROP ROLE IF EXISTS {}; DROP ROLE IF EXISTS {}; DROP ROLE IF EXISTS {};",
                self.made, self.gone, self.lock_role
            ));
        }
    }
}

#[test]
fn another_sessions_cluster_changes_during_a_rehearsal_are_noted_not_counted() {
    let c = Case::new("iso_conc");
    let other = Concurrent::new();
    let b = c.bundle("b.tar.gz", &other.wait_sql());
    let o = other.rehearse(&c, &b);
    let r = json(&o);
    expect_code(&o, 0);
    let s = step(&r, "cluster unchanged");
    assert_eq!(s["verdict"], "PASS", "{r:#}");
    let noted: Vec<&str> = r["other_sessions_changes"]
        .as_array()
        .unwrap_or_else(|| panic!("no other_sessions_changes in {r:#}"))
        .iter()
        .map(|x| x["what"].as_str().unwrap())
        .collect();
    for want in [
        format!("role {} created", other.made),
        format!("role {} dropped", other.gone),
        format!("role {} made a member of {}", other.lock_role, other.made),
        format!("role {} setting work_mem=3MB added", other.made),
    ] {
        assert!(noted.contains(&want.as_str()), "{want:?} not in {noted:?}");
    }
    c.assert_nothing_left();
}

#[test]
fn a_leaking_bundle_is_caught_while_another_session_changes_the_cluster() {
    let c = Case::new("iso_conc_leak");
    let other = Concurrent::new();
    // The bundle's own role, hidden from static reading, made after the wait.
    let leak = format!(
        "{}\nDO $$ BEGIN EXECUTE 'CREATE ROLE ' || '{}'; END $$;",
        other.wait_sql(),
        c.role
    );
    let b = c.bundle("b.tar.gz", &leak);
    let o = other.rehearse(&c, &b);
    let r = json(&o);
    expect_code(&o, 5);
    assert_eq!(step(&r, "cluster unchanged")["verdict"], "FAIL", "{r:#}");
    let counted: Vec<&str> = r["cluster_changes"]
        .as_array()
        .unwrap_or_else(|| panic!("no cluster_changes in {r:#}"))
        .iter()
        .map(|x| x["what"].as_str().unwrap())
        .collect();
    // Exactly the bundle's role: the other session's changes are only noted.
    assert_eq!(counted, [format!("role {} created", c.role)], "{r:#}");
    let noted = r["other_sessions_changes"].to_string();
    assert!(
        noted.contains(&format!("role {} created", other.made))
            && noted.contains(&format!("role {} dropped", other.gone)),
        "{r:#}"
    );
    assert!(c.role_exists(), "the bundle's role is named, not undone");
}

/// Issue 46 finding 10: a `superuser = true` bundle whose tier calls `dblink_exec` back
/// into the live target. Rehearsed on a dump clone, every step passed ("target schema
/// unchanged": the dump strategy compares the live target by its schema only) and
/// the target's rows were changed. Now `lint` and `plan` name the call, and
/// `rehearse` refuses before cloning anything; the rows stay.
#[test]
fn rehearse_refuses_a_bundle_that_reaches_another_database_and_the_live_rows_stay() {
    let c = Case::new("iso_dblink");
    c.db.exec(
        "CREATE EXTENSION dblink;
         DO $$ DECLARE f regprocedure; BEGIN
           FOR f IN SELECT p.oid FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                    WHERE n.nspname = 'public' AND p.proname LIKE 'dblink%' LOOP
             EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
           END LOOP;
         END $$;
         CREATE TABLE public.accounts(id int, balance int);
         INSERT INTO public.accounts VALUES (1, 100);",
    );
    let host = std::env::var("PGHOST").unwrap_or_else(|_| "/var/run/postgresql".into());
    let call = format!(
        "SELECT dblink_exec('host={host} dbname={} user=postgres', 'UPDATE public.accounts SET balance = 0');",
        c.db.name
    );
    let src = MiniSource::new(
        &c.dir().join("src-dblink"),
        &c.db.name,
        GATE,
        &[(
            "structure",
            &format!("CREATE SCHEMA app;\nCREATE TABLE app.t1(i int);\n{call}\n"),
            false,
        )],
        ROLLBACK,
    )
    .dir;
    let toml = std::fs::read_to_string(src.join("bundle.toml")).unwrap();
    write(
        &src.join("bundle.toml"),
        &toml.replacen("[target]\n", "[target]\nsuperuser = true\n", 1),
    );
    // lint names it, as reaching another database.
    let o = airlock(c.dir(), &["--json", "lint", src.to_str().unwrap()]);
    expect_code(&o, 0);
    let r = json(&o);
    assert_eq!(
        r["reaches_beyond"][0]["statement"], "dblink_exec(…) (another database)",
        "{r:#}"
    );
    pack(c.dir(), &src, "rm.key", "b.tar.gz");
    // plan names it too, and what the target's catalog holds that SQL built at run
    // time could use unseen.
    let o = c.run(&["--json", "plan", "b.tar.gz", "--param", "code=A1"]);
    let r = json(&o);
    let reaches: Vec<String> = r["reaches_beyond"]
        .as_array()
        .unwrap_or_else(|| panic!("no reaches_beyond in {r:#}"))
        .iter()
        .map(|x| x["statement"].as_str().unwrap().to_string())
        .collect();
    assert!(
        reaches.contains(&"dblink_exec(…) (another database)".to_string()),
        "{reaches:?}"
    );
    assert!(
        reaches.iter().any(|s| s.contains("extension dblink")),
        "{reaches:?}"
    );
    // rehearse refuses, before cloning anything.
    let o = c.run(&[
        "--json",
        "rehearse",
        "b.tar.gz",
        "--param",
        "code=A1",
        "--clone-strategy",
        "dump",
    ]);
    let r = json(&o);
    expect_code(&o, 5);
    let s = step(&r, "stays inside its database");
    assert_eq!(s["verdict"], "FAIL", "{r:#}");
    assert!(
        s["detail"].as_str().unwrap().contains("dblink_exec"),
        "{r:#}"
    );
    assert!(r["clone_strategy"].is_null(), "{r:#}");
    assert_eq!(
        c.db.scalar("SELECT balance::text FROM public.accounts WHERE id = 1"),
        "100",
        "the live target's rows were changed"
    );
    c.assert_nothing_left();
}
