//! The first apply on a database creates the ledger. Nobody without rights in the
//! database can stop that: an unprivileged role squatting an advisory lock key (the
//! one airlock once serialised the creation with) changes nothing, and a session that
//! really is creating the ledger (another first apply, or the owner's uncommitted
//! `CREATE SCHEMA airlock`) makes airlock wait `--lock-timeout`, then refuse with
//! exit 6 naming it.

mod util;
use util::*;

struct Fresh {
    t: tempfile::TempDir,
    db: TestDb,
    _roles: DropRoles,
    /// CONNECT only (what PUBLIC has on every new database).
    nobody: String,
}

impl Fresh {
    fn new(tag: &str) -> Fresh {
        let db = TestDb::new(tag);
        let nobody = role_name("nobody");
        admin()
            .batch_execute(&format!("CREATE ROLE {nobody} LOGIN"))
            .expect("role");
        db.exec("CREATE SCHEMA app;");
        let t = keyed_dir();
        mini_bundle(
            t.path(),
            &db.name,
            "b.tar.gz",
            "SELECT true AS ready",
            &[("structure", "CREATE TABLE app.t1(i int);", false)],
            "DROP TABLE IF EXISTS app.t1;",
        );
        Fresh {
            t,
            db,
            _roles: DropRoles(vec![nobody.clone()]),
            nobody,
        }
    }

    fn apply(&self, lock_timeout: &str) -> std::process::Output {
        let conn = self.db.conn();
        airlock(
            self.t.path(),
            &[
                "apply",
                "b.tar.gz",
                "--json",
                "--trust",
                "rm.pub",
                "--db",
                &conn,
                "--lock-timeout",
                lock_timeout,
            ],
        )
    }
}

#[test]
fn squatting_the_old_creation_key_does_not_block_a_first_apply() {
    let f = Fresh::new("squat_create");
    let mut squatter = f.db.client_as(&f.nobody);
    // "airlock" as a bigint: the key the ledger's creation was serialised with.
    squatter
        .batch_execute("SELECT pg_advisory_lock(27419012907361131)")
        .unwrap();
    let o = f.apply("2s");
    expect_code(&o, 0);
    assert_eq!(
        f.db.scalar("SELECT count(*)::text FROM airlock.ledger WHERE event <> 'receipt'"),
        "1"
    );
    drop(squatter);
}

#[test]
fn an_uncommitted_creation_of_the_airlock_schema_is_waited_for_then_named() {
    let f = Fresh::new("creating");
    let mut holder = f.db.client();
    holder
        .batch_execute("SET application_name = 'half_created'; BEGIN; CREATE SCHEMA airlock;")
        .unwrap();
    let o = f.apply("300ms");
    expect_code(&o, 6);
    let j = json(&o);
    assert_eq!(j["kind"], "lock-busy");
    let e = j["error"].as_str().unwrap();
    assert!(e.contains("half_created") && e.contains("pid "), "{e}");
    holder.batch_execute("ROLLBACK").unwrap();
    // Nothing was created by the refused apply; the next one creates the ledger.
    assert_eq!(
        f.db.scalar("SELECT (to_regnamespace('airlock') IS NULL)::text"),
        "true"
    );
    expect_code(&f.apply("2s"), 0);
}
