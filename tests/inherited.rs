//! What the database or a role sets is never inherited silently: a schema named after
//! the deploying role (or the gate role) does not shadow `public`, and every
//! `ALTER DATABASE/ROLE … SET` default is overridden back to the server's own value
//! for airlock's session and the bundle's SQL, so one signed tier stores the same
//! values whatever the target database was set to. The attacker is the database's
//! owner, who is not a superuser; airlock connects as the deploy login `airlock setup`
//! made (no superuser, may become the owner).

mod util;
use util::*;

/// A test database owned by a fresh non-superuser role, with a key to pack with.
struct Owned {
    t: tempfile::TempDir,
    db: TestDb,
    _roles: DropRoles,
    owner: String,
    /// The deploy login airlock connects as.
    deployer: String,
    conn: String,
}

impl Owned {
    fn new(tag: &str) -> Owned {
        let db = TestDb::new(tag);
        let owner = role_name("inh_owner");
        admin()
            .batch_execute(&format!(
                "CREATE ROLE {owner} LOGIN; ALTER DATABASE \"{}\" OWNER TO {owner};",
                db.name
            ))
            .expect("owner role");
        // Bundle SQL runs as the database's owner (the default role): the release's
        // schema is the owner's.
        db.exec(&format!(
            "CREATE SCHEMA app AUTHORIZATION {owner}; CREATE TABLE public.approvals(id int);"
        ));
        let t = keyed_dir();
        let deployer = role_name("inh_deployer");
        let conn = deploy_login(t.path(), &db, &deployer);
        Owned {
            t,
            db,
            _roles: DropRoles(vec![owner.clone(), deployer.clone()]),
            owner,
            deployer,
            conn,
        }
    }

    /// Run SQL as the database's owner.
    fn as_owner(&self, sql: &str) {
        self.db.exec_as(&self.owner, sql);
    }

    fn bundle(&self, out: &str, gate: &str, tiers: &[(&str, &str, bool)]) -> String {
        mini_bundle(self.t.path(), &self.db.name, out, gate, tiers, "SELECT 1;")
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        run_json(self.t.path(), "rm.pub", &self.conn, args)
    }
}

const OPEN: &str = "SELECT true AS ready, 'open' AS reason";

#[test]
fn a_schema_named_after_the_deploying_role_does_not_shadow_public() {
    let o = Owned::new("user_shadow");
    // public is locked down (PostgreSQL 15's default, said again here); the owner may
    // create schemas in its database, so it creates one named after airlock's role.
    // The tier runs as the owner, who may write the release's table.
    o.db.exec(&format!(
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC; CREATE TABLE public.items(i int); GRANT INSERT ON public.items TO {};",
        o.owner
    ));
    o.as_owner(&format!(
        "CREATE SCHEMA \"{0}\"; CREATE TABLE \"{0}\".items(i int); GRANT USAGE ON SCHEMA \"{0}\" TO PUBLIC; GRANT INSERT, SELECT ON \"{0}\".items TO PUBLIC;",
        o.deployer
    ));
    let b = o.bundle(
        "b.tar.gz",
        OPEN,
        &[("seed", "INSERT INTO items VALUES (1);", false)],
    );
    expect_code(&o.run(&["apply", &b, "--param", "code=A1"]), 0);
    assert_eq!(o.db.scalar("SELECT count(*)::text FROM public.items"), "1");
    assert_eq!(
        o.db.scalar(&format!(
            "SELECT count(*)::text FROM \"{}\".items",
            o.deployer
        )),
        "0",
        "the tier's row went to the owner's shadow table"
    );
}

#[test]
fn a_schema_named_after_the_gate_role_does_not_shadow_a_gate() {
    let o = Owned::new("gate_shadow");
    // public.approvals is empty, so the gate must say BLOCKED; the owner's
    // airlock_gate.approvals holds a row that would open it.
    o.as_owner(
        "CREATE SCHEMA airlock_gate; CREATE TABLE airlock_gate.approvals(id int);
         INSERT INTO airlock_gate.approvals VALUES (1);
         GRANT USAGE ON SCHEMA airlock_gate TO PUBLIC; GRANT SELECT ON airlock_gate.approvals TO PUBLIC;",
    );
    let b = o.bundle(
        "b.tar.gz",
        "SELECT count(*) >= 1 AS ready, 'approvals: ' || count(*) AS reason FROM approvals",
        &[("structure", "CREATE TABLE app.t1(i int);", true)],
    );
    let out = o.run(&["gate", &b, "--param", "code=A1"]);
    expect_code(&out, 3);
    assert!(stdout(&out).contains("approvals: 0"), "{}", stdout(&out));
}

/// What one tier stores on a fresh database after `setting` (run as the database's
/// owner, or as a superuser when it starts with `superuser:`; `{db}` is the
/// database's name, `{owner}` its owner), as text.
fn stored_after(tag: &str, setting: &str, tier: &str) -> String {
    let o = Owned::new(tag);
    let sql = setting
        .replace("{db}", &o.db.name)
        .replace("{owner}", &o.owner);
    match sql.strip_prefix("superuser:") {
        Some(sql) => o.db.exec(sql),
        None if !sql.is_empty() => o.as_owner(&sql),
        None => {}
    }
    let b = o.bundle("b.tar.gz", OPEN, &[("structure", tier, false)]);
    // plan says which settings are not inherited.
    let plan = json(&o.run(&["plan", &b, "--param", "code=A1"]));
    let connected = plan["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "database")
        .unwrap_or_else(|| panic!("no database check: {plan}"))["evidence"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        connected.contains("not inherited"),
        !setting.is_empty(),
        "{connected}"
    );
    let out = o.run(&["apply", &b, "--param", "code=A1"]);
    expect_code(&out, 0);
    // The ledger is airlock's own, not the owner's. (`SET ROLE NONE`: this test's
    // own session must not run as the owner either.)
    assert_eq!(
        o.db.scalar(
            "SET ROLE NONE; SELECT pg_get_userbyid(relowner)::text FROM pg_class WHERE oid = 'airlock.ledger'::regclass"
        ),
        o.deployer
    );
    // The tier ran as this database's owner, named differently in each test database.
    o.db.scalar("SET ROLE NONE; SELECT string_agg(v, ' | ' ORDER BY v) FROM app.stored")
        .replace(&o.owner, "OWNER")
        .replace(&o.deployer, "DEPLOYER")
}

#[track_caller]
fn same_as_without(tag: &str, setting: &str, tier: &str) {
    let plain = stored_after(&format!("{tag}_plain"), "", tier);
    let set = stored_after(tag, setting, tier);
    assert_eq!(
        set, plain,
        "with `{setting}` the tier stored something else"
    );
}

#[test]
fn a_database_default_role_does_not_run_the_session_as_the_owner() {
    same_as_without(
        "role",
        "ALTER DATABASE \"{db}\" SET role = {owner}",
        "CREATE TABLE app.stored(v text); INSERT INTO app.stored VALUES (current_user), (session_user), ((SELECT pg_get_userbyid(relowner)::text FROM pg_class WHERE oid = 'app.stored'::regclass));",
    );
}

#[test]
fn a_database_default_timezone_abbreviations_does_not_change_what_a_tier_stores() {
    same_as_without(
        "tzabbrev",
        "ALTER DATABASE \"{db}\" SET timezone_abbreviations = 'India'",
        "CREATE TABLE app.stored(v text); INSERT INTO app.stored VALUES ('2020-01-01 12:00 IST'::timestamptz::text);",
    );
}

#[test]
fn a_database_default_text_search_config_does_not_change_what_a_tier_stores() {
    same_as_without(
        "tsconfig",
        "ALTER DATABASE \"{db}\" SET default_text_search_config = 'pg_catalog.simple'",
        "CREATE TABLE app.stored(v text); INSERT INTO app.stored VALUES (to_tsvector('The cats are running')::text), (current_setting('default_text_search_config'));",
    );
}

#[test]
fn placeholder_and_message_level_defaults_are_overridden_too() {
    // A custom setting the bundle's SQL might read (only a superuser may set one for
    // a database), as a database default and as a default of airlock's own role in
    // this database, and a message level that would hide the tier's notices.
    same_as_without(
        "roleset",
        "superuser:ALTER DATABASE \"{db}\" SET app.tenant = 'db-chosen'; ALTER ROLE CURRENT_USER IN DATABASE \"{db}\" SET app.tenant = 'role-chosen'; ALTER DATABASE \"{db}\" SET client_min_messages = 'error'; ALTER ROLE CURRENT_USER IN DATABASE \"{db}\" SET default_text_search_config = 'pg_catalog.simple'",
        "CREATE TABLE app.stored(v text); INSERT INTO app.stored VALUES (coalesce(current_setting('app.tenant', true), '')), (current_setting('client_min_messages')), (current_setting('default_text_search_config'));",
    );
}
