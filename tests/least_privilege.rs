//! Who bundle SQL runs as, and in whose session. The tiers and the rollback run as the
//! role the bundle declares (`[target] role`; default: the database's owner), airlock's
//! own statements as the role it connects as. Code that bundle SQL fires can always
//! `RESET SESSION AUTHORIZATION` back to the login, so: bundle SQL of a role that is no
//! superuser runs only on a login that is none and has no path to one (`airlock setup`
//! makes it), and bundle SQL that runs as a superuser runs only while nothing a
//! non-superuser owns could fire (derived from the catalog's owner and dependency
//! records).
//!
//! The attacker is `dbowner`: it owns the target database and its tables, is not a
//! superuser, and planted a `BEFORE INSERT` trigger whose function tries to get back
//! to the session's login role and then `ALTER ROLE dbowner SUPERUSER` when it is one.

mod util;
use std::path::Path;
use util::*;

struct Owned {
    t: tempfile::TempDir,
    db: TestDb,
    _roles: DropRoles,
    /// Owns the database (and the tables, unless the test hands them to `app`).
    dbowner: String,
    /// A login role that is no superuser.
    deployer: String,
    /// Another non-superuser (an application role).
    app: String,
    /// One test at a time: a rehearsal compares the cluster's roles before and after
    /// each step, and the roles another test of this file creates meanwhile would count.
    _serial: Serial,
}

/// The trigger function: back to the login role if it can, then superuser for the
/// owner when the current user is one.
const PWN: &str = "CREATE FUNCTION public.pwn() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
  BEGIN
    EXECUTE 'RESET SESSION AUTHORIZATION';
    EXECUTE 'RESET ROLE';
  EXCEPTION WHEN others THEN NULL;
  END;
  IF (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user) THEN
    EXECUTE pg_catalog.format('ALTER ROLE %I SUPERUSER', TG_ARGV[0]);
  END IF;
  RETURN NEW;
END $f$;";

impl Owned {
    fn new(tag: &str) -> Owned {
        let serial = cluster_serial();
        let db = TestDb::new(tag);
        let (dbowner, deployer, app) = (
            role_name("dbowner"),
            role_name("deployer"),
            role_name("app"),
        );
        admin()
            .batch_execute(&format!(
                "CREATE ROLE {dbowner} LOGIN; CREATE ROLE {deployer} LOGIN; CREATE ROLE {app} LOGIN;
                 ALTER DATABASE \"{}\" OWNER TO {dbowner};",
                db.name
            ))
            .expect("roles");
        let t = tempdir();
        keygen(t.path(), "k");
        Owned {
            t,
            db,
            _roles: DropRoles(vec![dbowner.clone(), deployer.clone(), app.clone()]),
            dbowner,
            deployer,
            app,
            _serial: serial,
        }
    }

    fn dir(&self) -> &Path {
        self.t.path()
    }

    /// `public.approvals` owned by `owner`, with the planted trigger (function owned
    /// by `owner` too).
    fn plant(&self, owner: &str) {
        let mut c = self.db.client_as(owner);
        c.batch_execute(&format!(
            "CREATE TABLE public.approvals(id int, who text);
             {PWN}
             CREATE TRIGGER stamp BEFORE INSERT ON public.approvals
               FOR EACH ROW EXECUTE FUNCTION public.pwn('{}');",
            self.dbowner
        ))
        .expect("plant");
    }

    /// A bundle with one tier (and a rollback), `target_extra` added to `[target]`.
    fn bundle(&self, out: &str, target_extra: &str, tier: &str, rollback: &str) -> String {
        let database = format!("\"{}\"", self.db.name);
        self.bundle_for(out, "lp", &database, target_extra, tier, rollback)
    }

    /// [`Self::bundle`] named `name`, for `database` (TOML: a name, or a fleet's list).
    fn bundle_for(
        &self,
        out: &str,
        name: &str,
        database: &str,
        target_extra: &str,
        tier: &str,
        rollback: &str,
    ) -> String {
        let src = self.dir().join(format!("src-{out}"));
        write(
            &src.join("bundle.toml"),
            &format!(
                "[bundle]\nname = \"{name}\"\nversion = \"1\"\nsequence = 1\n\n[target]\ndatabase = {database}\n{target_extra}\n\n[[tier]]\nname = \"one\"\nfiles = [\"sql/tier.sql\"]\n\n[rollback]\nfiles = [\"sql/rollback.sql\"]\nprobe = \"sql/probe.sql\"\nexpect = {{ x = \"1\" }}\n",
            ),
        );
        write(&src.join("sql/tier.sql"), tier);
        write(&src.join("sql/rollback.sql"), rollback);
        write(
            &src.join("sql/probe.sql"),
            "SELECT 'x'::text AS key, '1'::text AS value",
        );
        pack(self.dir(), &src, "k.key", out);
        out.to_string()
    }

    /// Run airlock connected as `user` (None: the superuser the tests run as).
    fn run_as(&self, user: Option<&str>, args: &[&str]) -> std::process::Output {
        let conn = match user {
            Some(u) => format!("dbname={} user={u}", self.db.name),
            None => self.db.conn(),
        };
        run_json(self.dir(), "k.pub", &conn, args)
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        self.run_as(None, args)
    }

    /// `airlock setup` as the superuser: `deployer` becomes the deploy login.
    fn setup_deployer(&self) {
        self.setup_deployer_with(&[]);
    }

    /// [`Self::setup_deployer`] with more of setup's flags (`--createdb`).
    fn setup_deployer_with(&self, flags: &[&str]) {
        let conn = self.db.conn();
        let mut args = vec!["setup", "--db", &conn, "--login", &self.deployer];
        args.extend_from_slice(flags);
        let out = airlock(self.dir(), &args);
        expect_code(&out, 0);
    }

    /// Run airlock as the deploy login `airlock setup` made.
    fn deploy(&self, args: &[&str]) -> std::process::Output {
        self.run_as(Some(&self.deployer), args)
    }

    fn owner_of(&self, rel: &str) -> String {
        self.db.scalar(&format!(
            "SELECT coalesce((SELECT pg_get_userbyid(relowner)::text FROM pg_class WHERE oid = to_regclass('{rel}')), 'none')"
        ))
    }

    /// Nothing ran: no ledger, no table the tier creates, no row, nobody promoted.
    #[track_caller]
    fn assert_nothing_changed(&self) {
        assert!(!is_superuser(&self.dbowner), "dbowner became superuser");
        assert!(!is_superuser(&self.app), "app became superuser");
        assert_eq!(self.db.ledger_rows(), "none");
        assert_eq!(self.owner_of("public.made"), "none");
        assert_eq!(
            self.db
                .scalar("SELECT count(*)::text FROM public.approvals"),
            "0"
        );
    }
}

const TIER: &str =
    "CREATE TABLE public.made(i int); INSERT INTO public.approvals VALUES (1, current_user);";
const ROLLBACK: &str =
    "INSERT INTO public.approvals VALUES (2, current_user); DROP TABLE public.made;";

#[track_caller]
fn assert_names_the_trigger(o: &std::process::Output, owner: &str) {
    let j = json(o);
    let e = j["error"].as_str().unwrap_or_default().to_string();
    assert!(e.contains("stamp"), "the trigger is not named: {e}");
    assert!(e.contains("public.pwn"), "its function is not named: {e}");
    assert!(e.contains(owner), "its owner is not named: {e}");
}

/// (a) A superuser login, the default role (the owner, no superuser): code the tier
/// fires could climb back to the login, so apply and plan refuse before anything runs,
/// saying why and how to make a deploy login.
#[test]
fn a_superuser_login_refuses_to_run_sql_of_a_role_that_is_no_superuser() {
    let o = Owned::new("lp_apply");
    o.plant(&o.dbowner);
    let b = o.bundle("b.tar.gz", "", TIER, ROLLBACK);
    let out = o.run(&["apply", &b]);
    expect_code(&out, 5);
    let j = json(&out);
    assert_eq!(j["kind"], "bundle-role", "{j}");
    let e = j["error"].as_str().unwrap_or_default();
    assert!(
        e.contains("is a superuser") && e.contains(&o.dbowner),
        "{e}"
    );
    assert!(
        j["hint"]
            .as_str()
            .unwrap_or_default()
            .contains("airlock setup"),
        "{j}"
    );
    o.assert_nothing_changed();
    let p = o.run(&["plan", &b]);
    expect_code(&p, 5);
    let j = json(&p);
    assert_eq!(j["verdict"], "NO-GO");
    assert_eq!(j["bundle_role"]["login_powers"][0], "is a superuser", "{j}");
}

/// A login that is no superuser but may reach server programs (or CREATEROLE) is
/// refused the same way: code could switch back to it and use them.
#[test]
fn a_login_with_a_path_to_server_programs_or_createrole_is_refused() {
    let o = Owned::new("lp_powers");
    o.db.client_as(&o.dbowner)
        .batch_execute("CREATE TABLE public.approvals(id int, who text);")
        .unwrap();
    admin()
        .batch_execute(&format!(
            "GRANT {} TO {}; GRANT airlock_gate TO {1}; GRANT CREATE ON DATABASE \"{}\" TO {1}; GRANT pg_execute_server_program TO {1};",
            o.dbowner, o.deployer, o.db.name
        ))
        .unwrap();
    let b = o.bundle("b.tar.gz", "", TIER, ROLLBACK);
    let out = o.deploy(&["apply", &b]);
    expect_code(&out, 5);
    assert!(
        json(&out)["error"]
            .as_str()
            .unwrap_or_default()
            .contains("pg_execute_server_program"),
        "{}",
        stdout(&out)
    );
    o.assert_nothing_changed();
    admin()
        .batch_execute(&format!(
            "REVOKE pg_execute_server_program FROM {0}; ALTER ROLE {0} CREATEROLE;",
            o.deployer
        ))
        .unwrap();
    let out = o.deploy(&["apply", &b]);
    expect_code(&out, 5);
    assert!(
        json(&out)["error"]
            .as_str()
            .unwrap_or_default()
            .contains("CREATEROLE"),
        "{}",
        stdout(&out)
    );
    o.assert_nothing_changed();
    admin()
        .batch_execute(&format!("ALTER ROLE {0} NOCREATEROLE;", o.deployer))
        .unwrap();
    expect_code(&o.deploy(&["apply", &b]), 0);
}

/// (a) A deployer that is no superuser but a member of the owner: the tier and the
/// rollback run as the owner, the trigger fires and its climb gets it nothing, the
/// apply succeeds; airlock's own ledger belongs to the deployer.
#[test]
fn a_member_of_the_owner_runs_the_tiers_as_the_owner_and_the_trigger_gains_nothing() {
    let o = Owned::new("lp_member");
    o.plant(&o.dbowner);
    admin()
        .batch_execute(&format!(
            "GRANT {} TO {}; GRANT airlock_gate TO {1}; GRANT CREATE ON DATABASE \"{}\" TO {1};",
            o.dbowner, o.deployer, o.db.name
        ))
        .unwrap();
    let b = o.bundle("b.tar.gz", "", TIER, ROLLBACK);
    let out = o.run_as(Some(&o.deployer), &["apply", &b]);
    expect_code(&out, 0);
    assert!(!is_superuser(&o.dbowner), "dbowner became superuser");
    assert_eq!(
        o.db.scalar("SELECT string_agg(who, ',') FROM public.approvals"),
        o.dbowner
    );
    assert_eq!(o.owner_of("public.made"), o.dbowner);
    assert_eq!(o.owner_of("airlock.ledger"), o.deployer);
    let out = o.run_as(Some(&o.deployer), &["rollback", &b]);
    expect_code(&out, 0);
    assert_eq!(
        o.db.scalar("SELECT string_agg(who, ',' ORDER BY id) FROM public.approvals"),
        format!("{0},{0}", o.dbowner)
    );
    assert!(!is_superuser(&o.dbowner), "dbowner became superuser");
}

/// The recommended setup: `airlock setup` (as a superuser, once) makes the deploy
/// login and airlock's ledger, owned by it; the tier runs as the owner, and nothing of
/// the login is a superuser's.
#[test]
fn a_deploy_login_made_by_setup_runs_the_tiers_as_the_database_owner() {
    let o = Owned::new("lp_owner");
    o.db.client_as(&o.dbowner)
        .batch_execute("CREATE TABLE public.approvals(id int, who text);")
        .unwrap();
    o.setup_deployer();
    assert_eq!(o.owner_of("airlock.ledger"), o.deployer);
    assert!(!is_superuser(&o.deployer));
    let b = o.bundle("b.tar.gz", "", TIER, ROLLBACK);
    expect_code(&o.deploy(&["apply", &b]), 0);
    assert_eq!(o.owner_of("public.made"), o.dbowner);
    assert_eq!(o.db.scalar("SELECT who FROM public.approvals"), o.dbowner);
    assert_eq!(o.owner_of("airlock.ledger"), o.deployer);
    // setup again is harmless: it checks and grants what is there.
    o.setup_deployer();
}

/// setup takes the gate role from airlock.toml's gate_role (as every other command
/// does) and grants that one, not airlock_gate; the run says it used the file for it.
#[test]
fn setup_takes_the_gate_role_from_the_project_file() {
    use std::os::unix::fs::PermissionsExt;
    let o = Owned::new("lp_setup_project");
    let gate = role_name("gate");
    let _gate = DropRoles(vec![gate.clone()]);
    let file = o.dir().join("airlock.toml");
    std::fs::write(&file, format!("gate_role = \"{gate}\"\n")).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let conn = o.db.conn();
    let out = airlock(
        o.dir(),
        &["--json", "setup", "--db", &conn, "--login", &o.deployer],
    );
    expect_code(&out, 0);
    let j = json(&out);
    assert_eq!(j["gate_role"], gate.as_str(), "{j:#}");
    assert_eq!(
        j["project_config"]["used"],
        serde_json::json!(["gate_role"]),
        "{j:#}"
    );
    let member = |role: &str| {
        o.db.scalar(&format!(
            "SELECT EXISTS (SELECT FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid \
               JOIN pg_roles u ON u.oid = m.member WHERE g.rolname = '{role}' AND u.rolname = '{}')",
            o.deployer
        ))
    };
    assert_eq!(member(&gate), "t");
    assert_eq!(member("airlock_gate"), "f");
    // Every statement it ran is listed, the ledger it created as the login included.
    assert!(
        j["statements"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s.as_str().unwrap().contains("CREATE TABLE airlock.ledger")),
        "{j:#}"
    );
}

/// A superuser who connects to a database whose ledger the deploy login owns (as
/// `airlock setup` makes it) is told whose ledger it is and to connect as that login:
/// the ledger's trigger would run in a superuser's session under another role's
/// control, so it is still refused (exit 5), but never called damaged or something to
/// restore from a backup; the ledger is left as it was.
#[test]
fn a_superuser_is_told_the_ledger_is_the_deploy_logins_and_to_connect_as_it() {
    let o = Owned::new("lp_super_reads");
    o.db.client_as(&o.dbowner)
        .batch_execute("CREATE TABLE public.approvals(id int, who text);")
        .unwrap();
    o.setup_deployer();
    let b = o.bundle("b.tar.gz", "", TIER, ROLLBACK);
    expect_code(&o.deploy(&["apply", &b]), 0);
    let rows = o.db.ledger_rows();
    for args in [vec!["status"], vec!["plan", b.as_str()]] {
        let out = o.run(&args);
        expect_code(&out, 5);
        let v = json(&out);
        // status's error document; plan's check row.
        let said = match v["checks"].as_array() {
            None => {
                assert_eq!(v["kind"], "ledger-untrusted", "{v:#}");
                format!(
                    "{} {}",
                    v["error"].as_str().unwrap(),
                    v["hint"].as_str().unwrap()
                )
            }
            Some(checks) => {
                let c = (checks.iter())
                    .find(|c| c["check"] == "ledger")
                    .expect("plan's ledger check");
                assert_eq!(c["exit_code"], 5, "{c:#}");
                format!(
                    "{} {}",
                    c["evidence"].as_str().unwrap(),
                    c["hint"].as_str().unwrap()
                )
            }
        };
        assert!(
            said.contains(&format!("the deploy login {:?}", o.deployer)),
            "{args:?}: {said}"
        );
        assert!(
            said.contains(&format!("user={}", o.deployer)),
            "{args:?}: {said}"
        );
        assert!(!said.contains("backup"), "{args:?}: {said}");
    }
    assert_eq!(o.db.ledger_rows(), rows);
    assert_eq!(o.owner_of("airlock.ledger"), o.deployer);
}

/// setup refuses, changing nothing: a caller that is no superuser, a database owned by
/// a superuser (its SQL would run as one), an existing login with a superuser's powers.
#[test]
fn setup_refuses_what_would_not_be_a_deploy_login_and_changes_nothing() {
    let o = Owned::new("lp_setup");
    let setup = |conn: &str, login: &str| {
        airlock(
            o.dir(),
            &["--json", "setup", "--db", conn, "--login", login],
        )
    };
    let as_owner = format!("dbname={} user={}", o.db.name, o.dbowner);
    let out = setup(&as_owner, &o.deployer);
    expect_code(&out, 5);
    assert_eq!(json(&out)["kind"], "setup");
    admin()
        .batch_execute(&format!("ALTER ROLE {} CREATEROLE", o.app))
        .unwrap();
    let out = setup(&o.db.conn(), &o.app);
    expect_code(&out, 5);
    assert!(json(&out)["error"].as_str().unwrap().contains("CREATEROLE"));
    o.to_postgres();
    let out = setup(&o.db.conn(), &o.deployer);
    expect_code(&out, 5);
    assert!(json(&out)["error"].as_str().unwrap().contains("superuser"));
    // Nothing was made: no schema airlock, and no grant to the app role.
    assert_eq!(o.owner_of("airlock.ledger"), "none");
    assert_eq!(
        o.db.scalar("SELECT count(*)::text FROM pg_namespace WHERE nspname = 'airlock'"),
        "0"
    );
    assert_eq!(
        o.db.scalar(&format!(
            "SELECT pg_has_role('{}', '{}', 'MEMBER')::text",
            o.app, o.dbowner
        )),
        "false"
    );
}

/// (b) A bundle that says it needs superuser is refused while the owner's trigger
/// sits there; nothing changed.
#[test]
fn a_bundle_declaring_superuser_is_refused_while_owner_code_sits_there() {
    let o = Owned::new("lp_super");
    o.plant(&o.dbowner);
    let b = o.bundle("b.tar.gz", "superuser = true", TIER, ROLLBACK);
    let out = o.run(&["apply", &b]);
    expect_code(&out, 5);
    assert_names_the_trigger(&out, &o.dbowner);
    o.assert_nothing_changed();
    // plan says the same, as a NO-GO reason.
    let p = o.run(&["plan", &b]);
    expect_code(&p, 5);
    let j = json(&p);
    assert_eq!(j["verdict"], "NO-GO");
    let failed = j["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["verdict"] == "FAIL")
        .unwrap()
        .clone();
    assert_eq!(failed["check"], "bundle-role");
    assert!(failed["evidence"].as_str().unwrap().contains("stamp"));
}

/// (c) The same through rehearse: refused before the clone, nobody promoted (roles
/// are cluster-wide), no clone left.
#[test]
fn rehearse_refuses_while_the_owners_trigger_sits_there_and_leaves_no_clone() {
    let o = Owned::new("lp_rehearse");
    o.plant(&o.dbowner);
    let b = o.bundle("b.tar.gz", "", TIER, ROLLBACK);
    let out = o.run(&["rehearse", &b]);
    expect_code(&out, 5);
    let j = json(&out);
    let role_step = j["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == "bundle SQL role")
        .unwrap()
        .clone();
    assert_eq!(role_step["verdict"], "FAIL", "{j}");
    assert!(
        role_step["detail"]
            .as_str()
            .unwrap()
            .contains("is a superuser"),
        "{j}"
    );
    o.assert_nothing_changed();
    let clones = admin()
        .query(
            "SELECT datname::text FROM pg_database WHERE datname LIKE $1",
            &[&format!("{}_rehearse_%", o.db.name)],
        )
        .unwrap();
    assert!(clones.is_empty(), "a clone was left behind");
}

/// A rehearsal by the deploy login runs on a clone owned like the target: the tier
/// runs as the owner there too, and passes.
#[test]
fn rehearse_runs_the_tiers_as_the_targets_owner() {
    let o = Owned::new("lp_rehearse_ok");
    o.db.client_as(&o.dbowner)
        .batch_execute("CREATE TABLE public.approvals(id int, who text);")
        .unwrap();
    // Only the database owner may create tables in public (PostgreSQL 15), also on the clone.
    let tier = format!(
        "CREATE TABLE public.made(i int); DO $$ BEGIN IF current_user::text <> '{0}' OR (SELECT pg_get_userbyid(datdba)::text FROM pg_database WHERE datname = current_database()) <> '{0}' THEN RAISE EXCEPTION 'not the owner: %', current_user; END IF; END $$;",
        o.dbowner
    );
    let b = o.bundle("b.tar.gz", "", &tier, "DROP TABLE public.made;");
    // Without --createdb the login may not clone the target.
    o.setup_deployer();
    assert_eq!(o.role_attr("rolcreatedb"), "false");
    assert_ne!(code(&o.deploy(&["rehearse", &b])), 0);
    o.setup_deployer_with(&["--createdb"]);
    assert_eq!(o.role_attr("rolcreatedb"), "true");
    let out = o.deploy(&["rehearse", &b]);
    expect_code(&out, 0);
    // setup again without it takes it back.
    o.setup_deployer();
    assert_eq!(o.role_attr("rolcreatedb"), "false");
}

/// (d) plan shows the role bundle SQL runs as, in JSON and for people.
#[test]
fn plan_shows_the_role_bundle_sql_runs_as() {
    let o = Owned::new("lp_plan");
    o.db.client_as(&o.dbowner)
        .batch_execute("CREATE TABLE public.approvals(id int, who text);")
        .unwrap();
    let b = o.bundle("b.tar.gz", "", TIER, ROLLBACK);
    o.setup_deployer();
    let p = o.deploy(&["plan", &b]);
    expect_code(&p, 0);
    let j = json(&p);
    assert_eq!(j["bundle_role"]["role"], o.dbowner.as_str());
    assert_eq!(j["bundle_role"]["source"], "database-owner");
    assert_eq!(j["bundle_role"]["superuser"], false);
    let conn = format!("dbname={} user={}", o.db.name, o.deployer);
    let human = airlock(o.dir(), &["plan", &b, "--trust", "k.pub", "--db", &conn]);
    expect_code(&human, 0);
    let text = stdout(&human);
    assert!(
        text.contains(&format!("bundle SQL runs as {}", o.dbowner)),
        "{text}"
    );
}

/// (e) A database owned by `postgres` whose tables belong to an application role: the
/// default role is a superuser, and the app's trigger is listed in the refusal.
#[test]
fn a_postgres_owned_database_with_app_owned_tables_is_refused_listing_the_app_trigger() {
    let o = Owned::new("lp_pg");
    o.to_postgres();
    o.db.exec(&format!("GRANT CREATE ON SCHEMA public TO {}", o.app));
    o.plant(&o.app);
    let b = o.bundle("b.tar.gz", "", TIER, ROLLBACK);
    let p = o.run(&["plan", &b]);
    expect_code(&p, 5);
    let j = json(&p);
    assert_eq!(j["bundle_role"]["role"], "postgres");
    assert_eq!(j["bundle_role"]["superuser"], true);
    let out = o.run(&["apply", &b]);
    expect_code(&out, 5);
    assert_names_the_trigger(&out, &o.app);
    o.assert_nothing_changed();
}

/// A login role that cannot become the declared role is refused before anything runs.
#[test]
fn a_deployer_that_cannot_become_the_declared_role_is_refused_up_front() {
    let o = Owned::new("lp_nomember");
    o.db.client_as(&o.dbowner)
        .batch_execute("CREATE TABLE public.approvals(id int, who text);")
        .unwrap();
    admin()
        .batch_execute(&format!(
            "GRANT CREATE ON DATABASE \"{}\" TO {}",
            o.db.name, o.deployer
        ))
        .unwrap();
    let b = o.bundle("b.tar.gz", &format!("role = \"{}\"", o.app), TIER, ROLLBACK);
    let out = o.run_as(Some(&o.deployer), &["apply", &b]);
    expect_code(&out, 5);
    let e = json(&out)["error"].as_str().unwrap().to_string();
    assert!(e.contains(&o.app) && e.contains(&o.deployer), "{e}");
    assert_eq!(o.db.ledger_rows(), "none");
    assert_eq!(o.owner_of("public.made"), "none");
}

/// lint: `role` and `superuser = true` together, or a reserved name, are refused.
#[test]
fn lint_refuses_a_role_and_superuser_together_and_reserved_names() {
    let t = tempdir();
    for (extra, want) in [
        ("role = \"x\"\nsuperuser = true", "superuser"),
        ("role = \"public\"", "public"),
        ("role = \"\"", "role"),
    ] {
        let src = t.path().join("s");
        write(
            &src.join("bundle.toml"),
            &format!("[bundle]\nname = \"lp\"\nversion = \"1\"\nsequence = 1\n\n[target]\ndatabase = \"d\"\n{extra}\n\n[[tier]]\nname = \"one\"\nfiles = [\"sql/tier.sql\"]\n"),
        );
        write(&src.join("sql/tier.sql"), "SELECT 1;");
        let o = airlock(t.path(), &["lint", src.to_str().unwrap()]);
        assert_ne!(code(&o), 0, "{extra}");
        let all = format!("{}{}", stdout(&o), stderr(&o));
        assert!(
            all.contains("target.") && all.contains(want),
            "{extra}: {all}"
        );
    }
}

/// Code at every site kind a non-superuser can plant on PostgreSQL 15
/// (`tests/data/every_site.sql`), owned by the database owner.
const EVERY_SITE: &str = include_str!("data/every_site.sql");

/// A tier that fires every site of [`EVERY_SITE`] (the range type's `subtype_diff`
/// only runs inside a GiST index's page splits), then fails unless each one fired.
const FIRE_EVERY_SITE: &str = "INSERT INTO public.approvals VALUES (1, current_user);
INSERT INTO public.t_domain_default(id) VALUES (1);
INSERT INTO public.t_domain_check VALUES (1);
INSERT INTO public.t_default(id) VALUES (1);
INSERT INTO public.t_check VALUES (1);
INSERT INTO public.t_part VALUES (1);
INSERT INTO public.t_generated(i) VALUES (1);
INSERT INTO public.t_index VALUES (1);
INSERT INTO public.t_rule VALUES (1);
INSERT INTO public.t_policy VALUES (1);
CREATE TABLE public.made AS SELECT (SELECT v.x FROM public.v_climb v) AS x, 1 OPERATOR(public.===) 1 AS eq, (SELECT public.agg_climb(1)) AS agg, (ROW(1, 2)::public.pair)::int AS c;
DO $$
DECLARE
  site text;
BEGIN
  FOREACH site IN ARRAY ARRAY['trigger', 'domain default', 'domain check', 'default', 'check', 'partition key', 'generated', 'index', 'view', 'rule', 'policy', 'operator', 'aggregate', 'cast', 'event trigger'] LOOP
    IF pg_catalog.strpos(pg_catalog.current_setting('lp.fired', true), site || ',') = 0 THEN
      RAISE EXCEPTION 'site % did not fire: %', site, pg_catalog.current_setting('lp.fired', true);
    END IF;
  END LOOP;
END $$;";

impl Owned {
    /// [`EVERY_SITE`], owned by the database owner; the event trigger (only a superuser
    /// may make one) runs the owner's function.
    fn plant_every_site(&self, event_trigger: bool) {
        self.db
            .client_as(&self.dbowner)
            .batch_execute(&EVERY_SITE.replace("OWNER", &self.dbowner))
            .expect("plant every site");
        if event_trigger {
            self.plant_event_trigger();
        }
    }

    fn plant_event_trigger(&self) {
        self.db.exec(
            "CREATE EVENT TRIGGER et_climb ON ddl_command_end EXECUTE FUNCTION public.climb_evt()",
        );
    }
}

/// Findings 1 and 2 of issue 46, and every other site: on the deploy login `airlock
/// setup` made, a tier that fires the owner's code at every site kind runs (each site
/// fired, or the tier fails), and the code's climb back to the login gains nothing:
/// the owner is no superuser afterwards, and neither is anyone else. Since issue 66
/// the apply is refused before COMMIT: the climb left the rest of the tier running as
/// the login, whose `public.made` would have outlived the run (`login_kept`).
#[test]
fn on_the_deploy_login_code_at_every_site_fires_and_gains_nothing() {
    let o = Owned::new("lp_sites_deploy");
    o.setup_deployer();
    o.plant_every_site(true);
    let b = o.bundle("b.tar.gz", "", FIRE_EVERY_SITE, "DROP TABLE public.made;");
    let out = o.deploy(&["apply", &b]);
    expect_code(&out, 5);
    let j = json(&out);
    assert_eq!(j["kind"], "login-kept", "{j}");
    assert!(
        j["error"]
            .as_str()
            .unwrap_or_default()
            .contains("owns table public.made"),
        "{j}"
    );
    assert_eq!(o.owner_of("public.made"), "none");
    assert!(!is_superuser(&o.dbowner), "the owner became superuser");
    assert!(
        !is_superuser(&o.deployer),
        "the deploy login became superuser"
    );
    expect_code(&o.deploy(&["rollback", &b]), 0);
    assert!(!is_superuser(&o.dbowner), "the owner became superuser");
}

/// Findings 1 and 2 as filed: a superuser login and the owner's domain default (or
/// partition key) whose function climbs: refused up front, nothing ran, nobody promoted.
#[test]
fn a_superuser_login_never_fires_the_owners_domain_default_or_partition_key() {
    let o = Owned::new("lp_sites_su");
    o.plant_every_site(false);
    for (n, tier) in [
        "INSERT INTO public.t_domain_default(id) VALUES (2);",
        "INSERT INTO public.t_part VALUES (2);",
    ]
    .into_iter()
    .enumerate()
    {
        let b = o.bundle(&format!("b{n}.tar.gz"), "", tier, "SELECT 1;");
        for cmd in ["apply", "rehearse"] {
            let out = o.run(&[cmd, &b]);
            expect_code(&out, 5);
            assert!(
                json(&out).to_string().contains("which is a superuser"),
                "{cmd} {tier}"
            );
            assert!(
                !is_superuser(&o.dbowner),
                "{cmd} {tier}: the owner became superuser"
            );
        }
        assert_eq!(o.db.ledger_rows(), "none");
        assert_eq!(
            o.db.scalar("SELECT (SELECT count(*) FROM public.t_domain_default) + (SELECT count(*) FROM public.t_part)"),
            "0"
        );
    }
}

/// A bundle whose SQL runs as a superuser (`superuser = true`, or a superuser-owned
/// database) is refused while anything the owner owns could fire: every site kind is
/// named, found from the catalog's owner and dependency records; nothing ran.
#[test]
fn a_superusers_bundle_sql_is_refused_naming_code_at_every_site() {
    let o = Owned::new("lp_sites_list");
    o.plant_every_site(false);
    let fire = FIRE_EVERY_SITE.replace("'cast', 'event trigger'", "'cast'");
    let b = o.bundle("b.tar.gz", "superuser = true", &fire, "SELECT 1;");
    let out = o.run(&["apply", &b]);
    expect_code(&out, 5);
    assert!(!is_superuser(&o.dbowner), "the owner became superuser");
    assert_eq!(o.db.ledger_rows(), "none");
    let p = o.run(&["plan", &b]);
    expect_code(&p, 5);
    let j = json(&p);
    let evidence = j["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "bundle-role")
        .unwrap()["evidence"]
        .as_str()
        .unwrap()
        .to_string();
    for site in [
        "called by trigger stamp on table public.approvals",
        "called by type public.d_default",
        "called by constraint d_check_check",
        "called by default value for column c of table public.t_default",
        "called by constraint t_check_check on table public.t_check",
        "called by table public.t_part",
        "called by index public.t_index_climb",
        "view public.v_climb",
        "rule r_climb on table public.t_rule",
        "policy p_climb on table public.t_policy",
        "called by operator public.===(integer,integer)",
        "called by function public.agg_climb(integer)",
        "called by cast from public.pair to integer",
        "called by type public.floatrange",
    ] {
        assert!(evidence.contains(site), "{site} not named: {evidence}");
    }
    // A generated column's expression: PostgreSQL 15 on records that it calls the
    // function, 14 that the column does.
    assert!(
        evidence.contains("called by default value for column g of table public.t_generated")
            || evidence.contains("called by column g of table public.t_generated"),
        "the generated column not named: {evidence}"
    );
    assert!(evidence.contains(&o.dbowner), "{evidence}");
    // An event trigger running the owner's function would fire on airlock's own DDL:
    // a superuser's session refuses as it opens, for every command.
    o.plant_event_trigger();
    let out = o.run(&["apply", &b]);
    expect_code(&out, 5);
    let j = json(&out);
    assert_eq!(j["kind"], "event-trigger", "{j}");
    assert!(j["error"].as_str().unwrap().contains("public.climb_evt()"));
    let p = o.run(&["plan", &b]);
    expect_code(&p, 5);
    assert!(json(&p).to_string().contains("public.climb_evt()"));
    // fingerprint too (its description makes a temporary function).
    let f = airlock(o.dir(), &["--json", "fingerprint", "--db", &o.db.conn()]);
    expect_code(&f, 5);
    assert_eq!(json(&f)["kind"], "event-trigger");
    assert!(!is_superuser(&o.dbowner), "the owner became superuser");
    assert_eq!(o.db.ledger_rows(), "none");
}

/// The guard reads what PostgreSQL records, not a list: a view (the owner's) calling a
/// built-in that is dangerous with a superuser's rights is named; constants, serials
/// and `now()` defaults, keys, plain and expression indexes, default privileges and
/// user mappings are not code; and the prepared
/// statement a deploy keeps answers as the plain one does.
#[test]
fn what_the_guard_names_and_what_it_leaves() {
    let o = Owned::new("lp_kinds");
    o.to_postgres();
    o.db.exec(&format!(
        "GRANT CREATE ON SCHEMA public TO {}, {}",
        o.app, o.dbowner
    ));
    o.db.client_as(&o.app)
        .batch_execute(
            "CREATE TABLE public.plain(id serial PRIMARY KEY, at timestamptz DEFAULT now(), n int DEFAULT 0, s text DEFAULT 'x');
             CREATE TABLE public.child(id int REFERENCES public.plain);
             CREATE INDEX ON public.plain (n);
             CREATE INDEX ON public.plain ((n + 1));
             CREATE VIEW public.secret AS SELECT pg_catalog.pg_read_file('/etc/hostname') AS f;
             ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO PUBLIC;",
        )
        .unwrap();
    // A user mapping for the app role holds options, no code.
    o.db.exec(&format!(
        "CREATE FOREIGN DATA WRAPPER lp_w; CREATE SERVER lp_srv FOREIGN DATA WRAPPER lp_w;
         CREATE USER MAPPING FOR {} SERVER lp_srv OPTIONS (user 'x');",
        o.app
    ));
    let mut c = o.db.client_as("postgres");
    c.batch_execute("SET search_path TO pg_catalog, pg_temp")
        .unwrap();
    let show = |v: Vec<airlock_pg::owner_code::OwnerCode>| {
        v.iter()
            .map(|o| format!("{} | {} | {}", o.kind, o.object, o.owner))
            .collect::<Vec<_>>()
    };
    let found = show(airlock_pg::owner_code::find(&mut c).expect("the query"));
    assert_eq!(
        found,
        vec![format!("view | view public.secret | {}", o.app)]
    );
    let mut cache = None;
    for _ in 0..2 {
        let prepared = airlock_pg::owner_code::find_prepared(&mut c, &mut cache).expect("prepared");
        assert_eq!(show(prepared), found);
    }
    // The owner itself asking (the login): its own objects are trusted, not the app's.
    o.db.client_as(&o.dbowner)
        .batch_execute("CREATE VIEW public.own AS SELECT 1 AS x")
        .unwrap();
    let mut c = o.db.client_as(&o.dbowner);
    c.batch_execute("SET search_path TO pg_catalog, pg_temp")
        .unwrap();
    let found = show(airlock_pg::owner_code::find(&mut c).expect("the query"));
    assert_eq!(
        found,
        vec![format!("view | view public.secret | {}", o.app)]
    );
}

/// setup runs DDL in a superuser's session: an event trigger running the owner's
/// function would fire there, so setup refuses first, naming it, and changes nothing.
#[test]
fn setup_refuses_while_an_event_trigger_runs_a_non_superusers_function() {
    let o = Owned::new("lp_setup_evt");
    o.plant_every_site(true);
    let out = airlock(
        o.dir(),
        &[
            "--json",
            "setup",
            "--db",
            &o.db.conn(),
            "--login",
            &o.deployer,
        ],
    );
    expect_code(&out, 5);
    let e = json(&out)["error"].as_str().unwrap_or_default().to_string();
    assert!(
        e.contains("et_climb") && e.contains("public.climb_evt()"),
        "{e}"
    );
    assert!(!is_superuser(&o.dbowner), "the owner became superuser");
    assert_eq!(
        o.db.scalar("SELECT count(*)::text FROM pg_namespace WHERE nspname = 'airlock'"),
        "0"
    );
}

impl Owned {
    /// A column of `pg_authid` for the deploy login, as text (read as the superuser).
    fn role_attr(&self, column: &str) -> String {
        self.db.scalar(&format!(
            "SELECT coalesce({column}::text, 'NULL') FROM pg_authid WHERE rolname = '{}'",
            self.deployer
        ))
    }

    /// The owner's trigger on `public.approvals`: back to the login (`RESET ROLE`),
    /// then `payload` (SQL, `LOGIN` replaced by the login's quoted name) as it.
    fn plant_as_login(&self, payload: &str) {
        let body = payload.replace("LOGIN", &format!("\"{}\"", self.deployer));
        self.db.exec_as(
            &self.dbowner,
            &format!(
                "CREATE OR REPLACE FUNCTION public.keep() RETURNS trigger LANGUAGE plpgsql AS $f$
                 BEGIN
                   EXECUTE 'RESET SESSION AUTHORIZATION';
                   EXECUTE 'RESET ROLE';
                   EXECUTE {};
                   RETURN NEW;
                 END $f$;
                 DROP TRIGGER IF EXISTS keep ON public.approvals;
                 CREATE TRIGGER keep BEFORE INSERT ON public.approvals
                   FOR EACH ROW EXECUTE FUNCTION public.keep();",
                quote(&body)
            ),
        );
    }

    /// What the login owns, has granted or has set, and its password: read as the
    /// superuser, to compare before and after.
    fn login_state(&self) -> String {
        self.db.scalar(&format!(
            "SELECT concat_ws(' | ',
               (SELECT coalesce(rolpassword, 'no password') || ' ' || rolcreatedb::text || ' ' || coalesce(rolvaliduntil::text, '-') FROM pg_authid WHERE rolname = '{0}'),
               (SELECT string_agg(m.roleid::regrole::text || '>' || m.member::regrole::text, ',' ORDER BY 1) FROM pg_auth_members m
                 WHERE m.member = '{0}'::regrole OR m.roleid = '{0}'::regrole),
               (SELECT string_agg(array_to_string(setconfig, ','), ';') FROM pg_db_role_setting WHERE setrole = '{0}'::regrole),
               (SELECT string_agg(pg_describe_object(classid, objid, objsubid), ',' ORDER BY 1) FROM pg_shdepend WHERE refobjid = '{0}'::regrole),
               (SELECT string_agg(row_hash, ',' ORDER BY seq) FROM airlock.ledger WHERE event <> 'receipt'))",
            self.deployer
        ))
    }
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Issue 66, finding 3: code the owner planted runs as the deploy login during an
/// apply (its trigger resets the role) and tries to keep the login: its password, a
/// default for it, a function that runs as it, a grant of what it owns, its ledger.
/// Each apply is refused before COMMIT (exit 5, `login-kept`), rolled back: the
/// login's password, defaults, memberships, objects and ledger are what they were,
/// and the tier's table was not made.
#[test]
fn the_owners_code_running_as_the_deploy_login_keeps_nothing() {
    let o = Owned::new("lp_keep");
    o.db.exec_as(
        &o.dbowner,
        "CREATE TABLE public.approvals(id int, who text);",
    );
    o.setup_deployer();
    assert_eq!(
        o.role_attr("rolpassword"),
        "NULL",
        "setup makes no password"
    );
    assert_eq!(
        o.role_attr("rolcreatedb"),
        "false",
        "nor CREATEDB unless asked"
    );
    // One honest apply first, so the ledger has a row to rewrite.
    let first = o.bundle_for(
        "first.tar.gz",
        "first",
        &format!("\"{}\"", o.db.name),
        "",
        "SELECT 1;",
        "SELECT 1;",
    );
    expect_code(&o.deploy(&["apply", &first]), 0);
    let before = o.login_state();
    let b = o.bundle("b.tar.gz", "", TIER, ROLLBACK);
    for (payload, names) in [
        ("ALTER ROLE LOGIN PASSWORD 'owned-by-the-owner'", "pg_authid"),
        ("ALTER ROLE LOGIN SET work_mem = '1MB'", "own defaults"),
        (
            "CREATE FUNCTION airlock.as_login() RETURNS void SECURITY DEFINER LANGUAGE sql AS 'SELECT 1'",
            "owns",
        ),
        ("GRANT SELECT ON airlock.ledger TO PUBLIC", "owns or granted"),
        (
            "ALTER TABLE airlock.ledger DISABLE TRIGGER ledger_append_only; DELETE FROM airlock.ledger; ALTER TABLE airlock.ledger ENABLE TRIGGER ledger_append_only",
            "ledger",
        ),
        (
            "ALTER TABLE airlock.ledger DISABLE TRIGGER ledger_append_only; UPDATE airlock.ledger SET operator = 'someone else'; ALTER TABLE airlock.ledger ENABLE TRIGGER ledger_append_only",
            "ledger",
        ),
    ] {
        o.plant_as_login(payload);
        let out = o.deploy(&["apply", &b]);
        expect_code(&out, 5);
        let j = json(&out);
        assert_eq!(j["kind"], "login-kept", "{payload}: {j}");
        let e = j["error"].as_str().unwrap_or_default();
        assert!(e.contains(names) && e.contains("rolled back"), "{payload}: {e}");
        assert_eq!(o.login_state(), before, "{payload}: the login changed");
        assert_eq!(o.owner_of("public.made"), "none", "{payload}");
        assert_eq!(o.db.ledger_rows(), "1", "{payload}");
    }
    // Control: the same trigger doing nothing of the kind lets the apply through.
    o.plant_as_login("SELECT 1");
    expect_code(&o.deploy(&["apply", &b]), 0);
    assert_eq!(o.owner_of("public.made"), o.dbowner);
    assert_eq!(o.role_attr("rolpassword"), "NULL");
}

/// Issue 66, finding 4: the deploy login cannot read the server's configuration
/// files. setup grants nothing of them; a login an older setup gave `pg_file_settings`
/// is refused before anything runs (it is a power a deploy login must not have), and
/// setup run again takes the grant back.
#[test]
fn the_deploy_login_never_reads_the_configuration_files() {
    let o = Owned::new("lp_conf");
    o.db.exec_as(
        &o.dbowner,
        "CREATE TABLE public.approvals(id int, who text);",
    );
    o.setup_deployer();
    let may_read = || {
        o.db.scalar(&format!(
            "SELECT (has_table_privilege('{0}', 'pg_catalog.pg_file_settings', 'SELECT')
                  OR has_function_privilege('{0}', 'pg_catalog.pg_show_all_file_settings()', 'EXECUTE'))::text",
            o.deployer
        ))
    };
    assert_eq!(may_read(), "false");
    let err =
        o.db.client_as(&o.deployer)
            .simple_query("SELECT count(*) FROM pg_catalog.pg_file_settings")
            .expect_err("the login read the configuration files");
    let message = err.as_db_error().map(|d| d.message().to_string());
    assert!(
        message
            .as_deref()
            .unwrap_or_default()
            .contains("permission denied"),
        "{err:?}"
    );
    // What it may ask instead: the file's value of a setting any session may change,
    // and of nothing else.
    let mut c = o.db.client_as(&o.deployer);
    let ask = |c: &mut postgres::Client, name: &str| -> Option<String> {
        c.query_one("SELECT airlock_conf.file_setting($1)", &[&name])
            .expect("file_setting")
            .get(0)
    };
    assert!(ask(&mut c, "default_text_search_config").is_some());
    for secret in [
        "primary_conninfo",
        "archive_command",
        "ssl_passphrase_command",
        "data_directory",
    ] {
        assert_eq!(ask(&mut c, secret), None, "{secret}");
    }
    // What setup granted before issue 66.
    o.db.exec(&format!(
        "GRANT SELECT ON pg_catalog.pg_file_settings TO {0};
         GRANT EXECUTE ON FUNCTION pg_catalog.pg_show_all_file_settings() TO {0};",
        o.deployer
    ));
    let b = o.bundle("b.tar.gz", "", TIER, ROLLBACK);
    let out = o.deploy(&["apply", &b]);
    expect_code(&out, 5);
    let e = json(&out)["error"].as_str().unwrap_or_default().to_string();
    assert!(e.contains("pg_file_settings"), "{e}");
    assert_eq!(o.owner_of("public.made"), "none");
    o.setup_deployer();
    assert_eq!(may_read(), "false");
    expect_code(&o.deploy(&["apply", &b]), 0);
}

/// Issue 66, finding 3 (the fleet): a fleet pattern never accepts a database the
/// deploy login owns (one it created, or code acting as it created); the same
/// database owned by its application role is accepted.
#[test]
fn a_fleet_pattern_never_matches_a_database_the_login_owns() {
    let o = Owned::new("lp_fleet");
    o.setup_deployer();
    let pattern = format!("[\"{}*\"]", o.db.name.rsplit_once('_').unwrap().0);
    let b = o.bundle_for("fleet.tar.gz", "lp", &pattern, "", "SELECT 1;", "SELECT 1;");
    o.db.exec(&format!(
        "ALTER DATABASE \"{}\" OWNER TO {}",
        o.db.name, o.deployer
    ));
    for command in ["plan", "apply"] {
        let out = o.deploy(&[command, &b]);
        expect_code(&out, 5);
        let j = json(&out).to_string();
        assert!(
            j.contains("is owned by the login airlock connects as"),
            "{command}: {j}"
        );
    }
    assert_eq!(o.db.ledger_rows(), "0");
    o.db.exec(&format!(
        "ALTER DATABASE \"{}\" OWNER TO {}",
        o.db.name, o.dbowner
    ));
    expect_code(&o.deploy(&["plan", &b]), 0);
}

/// Issue 66, finding 3's last bullet (DESIGN §5.1: the login cannot make databases a
/// fleet pattern would match). On the deploy login a fleet pattern accepts only the
/// databases `airlock setup` ran on: two tenants set up, plan and apply work on both;
/// a tenant the application role creates afterwards (plain, and as a `TEMPLATE` copy
/// of a set-up tenant, which carries `airlock_conf` and its record but not the
/// database's oid, and with a record it forged in a schema of its own) is refused by
/// plan and apply, nothing written; once setup ran on it, accepted.
#[test]
fn a_fleet_pattern_accepts_only_the_databases_setup_ran_on() {
    let o = Owned::new("lp_setup_fleet");
    let t2 = TestDb::new("lp_setup_fleet");
    t2.exec(&format!(
        "ALTER DATABASE \"{}\" OWNER TO {}",
        t2.name, o.dbowner
    ));
    let prefix = o.db.name.rsplit_once('_').unwrap().0.to_string();
    assert!(t2.name.starts_with(&format!("{prefix}_")), "{}", t2.name);
    let setup = |db: &str| {
        let conn = format!("dbname={db}");
        let out = airlock(o.dir(), &["setup", "--db", &conn, "--login", &o.deployer]);
        expect_code(&out, 0);
    };
    let on = |db: &str, args: &[&str]| {
        let conn = format!("dbname={db} user={}", o.deployer);
        run_json(o.dir(), "k.pub", &conn, args)
    };
    setup(&o.db.name);
    setup(&t2.name);
    let b = o.bundle_for(
        "fleet.tar.gz",
        "lpf",
        &format!("[\"{prefix}_*\"]"),
        "",
        "CREATE TABLE public.made(i int);",
        "DROP TABLE public.made;",
    );
    // Made afterwards by the application role (given CREATEDB, as the owner in the
    // issue had the login's): dropped before the fixture's roles.
    admin()
        .batch_execute(&format!("ALTER ROLE {} CREATEDB", o.dbowner))
        .expect("createdb");
    let late = TestDb {
        name: format!("{prefix}_late"),
    };
    let copy = TestDb {
        name: format!("{prefix}_copy"),
    };
    t2.exec_as(&o.dbowner, &format!("CREATE DATABASE \"{}\"", late.name));
    t2.exec_as(
        &o.dbowner,
        &format!(
            "CREATE DATABASE \"{}\" TEMPLATE \"{}\"",
            copy.name, o.db.name
        ),
    );
    // And one where the application role forged the record: its own schema and table
    // `airlock_conf.set_up`, naming this database's oid and the login's.
    let forged = TestDb {
        name: format!("{prefix}_forged"),
    };
    t2.exec_as(&o.dbowner, &format!("CREATE DATABASE \"{}\"", forged.name));
    forged.exec_as(
        &o.dbowner,
        &format!(
            "CREATE SCHEMA airlock_conf;
             CREATE TABLE airlock_conf.set_up (datoid oid NOT NULL, login oid NOT NULL);
             INSERT INTO airlock_conf.set_up SELECT d.oid, r.oid FROM pg_database d, pg_roles r
              WHERE d.datname = current_database() AND r.rolname = '{0}';
             GRANT USAGE ON SCHEMA airlock_conf TO {0};
             GRANT SELECT ON airlock_conf.set_up TO {0};",
            o.deployer
        ),
    );
    let made = |db: &TestDb| db.scalar("SELECT (to_regclass('public.made') IS NOT NULL)::text");
    for t in [&o.db, &t2] {
        for command in ["plan", "apply"] {
            expect_code(&on(&t.name, &[command, &b]), 0);
        }
        assert_eq!(t.ledger_rows(), "1", "{}", t.name);
        assert_eq!(made(t), "true");
    }
    for (db, says, ledger) in [
        (
            &late,
            "holds no record that airlock setup set it up",
            "none",
        ),
        (&copy, "names another database", "0"),
        (
            &forged,
            "holds no record that airlock setup set it up",
            "none",
        ),
    ] {
        let before = db.dump();
        for command in ["plan", "apply"] {
            let out = on(&db.name, &[command, &b]);
            expect_code(&out, 5);
            let j = json(&out);
            if command == "apply" {
                assert_eq!(j["kind"], "login-kept", "{command} on {}: {j}", db.name);
            }
            let j = j.to_string();
            assert!(j.contains("was not set up for this login"), "{j}");
            assert!(j.contains(says), "{command} on {}: {j}", db.name);
            assert!(j.contains("run airlock setup on it"), "{j}");
        }
        assert_eq!(db.ledger_rows(), ledger, "{}", db.name);
        assert_eq!(made(db), "false");
        assert_eq!(db.dump(), before, "{} changed", db.name);
    }
    // Set up by a superuser, each is a tenant like the others.
    for db in [&late, &copy] {
        setup(&db.name);
        for command in ["plan", "apply"] {
            expect_code(&on(&db.name, &[command, &b]), 0);
        }
        assert_eq!(db.ledger_rows(), "1", "{}", db.name);
        assert_eq!(made(db), "true");
    }
    // The copy's record names the copy now, and nothing else.
    assert_eq!(
        copy.scalar(
            "SELECT (count(*) = 1 AND bool_and(datoid = (SELECT oid FROM pg_database WHERE datname = current_database())))::text FROM airlock_conf.set_up"
        ),
        "true"
    );
}

/// Issue 66, finding 3, in an online tier: `VALIDATE CONSTRAINT` runs outside the
/// deploy transaction and evaluates the table's CHECK as the bundle's role, so the
/// owner's function there resets to the login and sets its password. The step runs in
/// a transaction of its own held to the same check: refused, rolled back, the
/// password is what it was and the constraint is not validated.
#[test]
fn an_online_validate_cannot_keep_the_login_either() {
    let o = Owned::new("lp_keep_online");
    o.db.exec_as(
        &o.dbowner,
        &format!(
            "CREATE TABLE public.approvals(id int, who text);
             CREATE TABLE public.checked(i int); INSERT INTO public.checked VALUES (1);
             CREATE FUNCTION public.ok(i int) RETURNS boolean LANGUAGE plpgsql AS $f$
             BEGIN
               BEGIN
                 EXECUTE 'RESET SESSION AUTHORIZATION';
                 EXECUTE 'RESET ROLE';
                 EXECUTE 'ALTER ROLE \"{}\" PASSWORD ''owned-by-the-owner''';
               EXCEPTION WHEN others THEN NULL;
               END;
               RETURN true;
             END $f$;
             ALTER TABLE public.checked ADD CONSTRAINT c CHECK (public.ok(i)) NOT VALID;",
            o.deployer
        ),
    );
    o.setup_deployer();
    let src = o.dir().join("src-online");
    write(
        &src.join("bundle.toml"),
        &format!(
            "[bundle]\nname = \"online\"\nversion = \"1\"\nsequence = 1\n\n[target]\ndatabase = \"{}\"\n\n[[tier]]\nname = \"one\"\nfiles = [\"sql/one.sql\"]\nonline = true\n",
            o.db.name
        ),
    );
    write(
        &src.join("sql/one.sql"),
        "ALTER TABLE public.checked VALIDATE CONSTRAINT c;\n",
    );
    pack(o.dir(), &src, "k.key", "online.tar.gz");
    let out = o.deploy(&["apply", "online.tar.gz"]);
    expect_code(&out, 5);
    let e = json(&out)["error"].as_str().unwrap_or_default().to_string();
    assert!(e.contains("pg_authid"), "{e}");
    assert_eq!(o.role_attr("rolpassword"), "NULL");
    assert_eq!(
        o.db.scalar("SELECT convalidated::text FROM pg_constraint WHERE conname = 'c'"),
        "false"
    );
    // Control: the same function without the ALTER ROLE validates.
    o.db.exec_as(
        &o.dbowner,
        "CREATE OR REPLACE FUNCTION public.ok(i int) RETURNS boolean LANGUAGE sql AS 'SELECT true'",
    );
    expect_code(&o.deploy(&["apply", "online.tar.gz"]), 0);
    assert_eq!(
        o.db.scalar("SELECT convalidated::text FROM pg_constraint WHERE conname = 'c'"),
        "true"
    );
}

/// An online tier whose steps run outside any transaction (an index built
/// concurrently) is refused on the deploy login while an event trigger runs a
/// function a non-superuser owns: it would fire in the step as the bundle's role and
/// could reset to the login with nothing airlock could check. Nothing of the tier ran.
#[test]
fn an_online_step_is_refused_while_an_event_trigger_runs_the_owners_code() {
    let o = Owned::new("lp_keep_online_evt");
    o.db.exec_as(
        &o.dbowner,
        "CREATE TABLE public.approvals(id int, who text);
         CREATE FUNCTION public.evt() RETURNS event_trigger LANGUAGE plpgsql AS $f$ BEGIN NULL; END $f$;",
    );
    o.setup_deployer();
    o.db.exec("CREATE EVENT TRIGGER et_keep ON ddl_command_end EXECUTE FUNCTION public.evt()");
    let src = o.dir().join("src-online-evt");
    write(
        &src.join("bundle.toml"),
        &format!(
            "[bundle]\nname = \"online\"\nversion = \"1\"\nsequence = 1\n\n[target]\ndatabase = \"{}\"\n\n[[tier]]\nname = \"one\"\nfiles = [\"sql/one.sql\"]\nonline = true\n",
            o.db.name
        ),
    );
    write(
        &src.join("sql/one.sql"),
        "CREATE INDEX CONCURRENTLY approvals_id ON public.approvals (id);\n",
    );
    pack(o.dir(), &src, "k.key", "online.tar.gz");
    let out = o.deploy(&["apply", "online.tar.gz"]);
    o.db.exec("DROP EVENT TRIGGER et_keep");
    expect_code(&out, 5);
    let j = json(&out);
    assert_eq!(j["kind"], "login-kept", "{j}");
    assert!(
        j["error"].as_str().unwrap_or_default().contains("et_keep"),
        "{j}"
    );
    assert_eq!(o.owner_of("public.approvals_id"), "none");
    expect_code(&o.deploy(&["apply", "online.tar.gz"]), 0);
    assert_eq!(o.owner_of("public.approvals_id"), o.dbowner);
}

/// Issue 68, item 7: a login that may not SET ROLE to the default gate role is told
/// both ways out: grant it, or name a gate role of its own with `--gate-role` (or
/// `AIRLOCK_GATE_ROLE`); before, the hint named only `GRANT "airlock_gate"`, someone
/// else's role.
#[test]
fn a_login_outside_the_default_gate_role_is_told_it_may_name_its_own() {
    let o = Owned::new("lp_gate_hint");
    o.db.client_as(&o.dbowner)
        .batch_execute("CREATE TABLE public.approvals(id int, who text);")
        .unwrap();
    admin()
        .batch_execute(&format!(
            "GRANT {} TO {}; GRANT CREATE ON DATABASE \"{}\" TO {1};",
            o.dbowner, o.deployer, o.db.name
        ))
        .unwrap();
    let t = keyed_dir();
    let d = t.path();
    let b = mini_bundle(
        d,
        &o.db.name,
        "g.tar.gz",
        "SELECT true AS ready",
        &[("one", TIER, true)],
        ROLLBACK,
    );
    let conn = format!("dbname={} user={}", o.db.name, o.deployer);
    for cmd in ["plan", "apply"] {
        let out = run_json(d, "rm.pub", &conn, &[cmd, &b, "--param", "code=x"]);
        assert_ne!(out.status.code(), Some(0), "{}", stdout(&out));
        let text = format!("{}{}", stdout(&out), stderr(&out));
        assert!(
            text.contains("airlock_gate\\\" TO the connecting role")
                && text.contains("--gate-role ROLE (or AIRLOCK_GATE_ROLE)"),
            "{cmd}: {text}"
        );
    }
    // The dossier writes its NO-GO page, and says why where it was made.
    let out = airlock(
        d,
        &[
            "dossier", &b, "--trust", "rm.pub", "--db", &conn, "--param", "code=x", "--out",
            "p.html",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("NO-GO because gate-role: ") && text.contains("--gate-role ROLE"),
        "{text}"
    );
    o.assert_nothing_changed();
}

/// Issue 68, item 9: setup says it created the ledger; the next plan must not say there
/// is none ("no ledger yet" contradicted it): it says no apply is recorded yet.
#[test]
fn after_setup_plan_does_not_say_there_is_no_ledger() {
    let o = Owned::new("lp_setup_ledger");
    o.db.client_as(&o.dbowner)
        .batch_execute("CREATE TABLE public.approvals(id int, who text);")
        .unwrap();
    o.setup_deployer();
    assert_eq!(
        o.db.scalar("SELECT to_regclass('airlock.ledger') IS NOT NULL"),
        "t"
    );
    let b = o.bundle("b.tar.gz", "", TIER, ROLLBACK);
    let out = o.deploy(&["plan", &b]);
    expect_code(&out, 0);
    let j = json(&out);
    let ledger = j["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "ledger")
        .unwrap()["evidence"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        ledger.starts_with("no apply recorded yet") && !ledger.contains("no ledger"),
        "{ledger}"
    );
}

/// Issue 69 item 11: what `airlock setup` makes (the schema airlock_conf, its function
/// and table, their grants) is airlock's own, as the ledger is: `fingerprint --diff` of
/// the database before and after setup says equal, naming those objects apart.
#[test]
fn fingerprint_diff_leaves_setups_own_objects_apart() {
    let o = Owned::new("lp_fpdiff");
    let conn = o.db.conn();
    let save = |name: &str| {
        let out = airlock(o.dir(), &["--json", "fingerprint", "--db", &conn]);
        expect_code(&out, 0);
        std::fs::write(o.dir().join(name), stdout(&out)).unwrap();
    };
    save("a.json");
    o.setup_deployer();
    save("b.json");
    let out = airlock(
        o.dir(),
        &["--json", "fingerprint", "--diff", "a.json", "b.json"],
    );
    expect_code(&out, 0);
    let j = json(&out);
    assert_eq!(j["equal"], true, "{j:#}");
    assert_eq!(j["changes"], serde_json::json!([]), "{j:#}");
    let own = j["airlock_own"].to_string();
    assert!(own.contains("airlock_conf"), "{j:#}");
    let human = stdout(&airlock(
        o.dir(),
        &["fingerprint", "--diff", "a.json", "b.json"],
    ));
    assert!(
        human.contains("equal") && human.contains("airlock_conf"),
        "{human}"
    );
    // A change of the user's beside it still counts.
    o.db.exec("CREATE TABLE public.mine (id int)");
    save("c.json");
    let out = airlock(
        o.dir(),
        &["--json", "fingerprint", "--diff", "a.json", "c.json"],
    );
    expect_code(&out, 5);
    assert!(
        json(&out)["differences"].to_string().contains("mine"),
        "{}",
        stdout(&out)
    );
}

impl Owned {
    /// The owner's trigger on `public.approvals`: back to the login (`RESET ROLE`),
    /// then an `apply` row for `bundle_id` inserted into the ledger, chained onto its
    /// head exactly as airlock chains (`row_hash = sha256(prev_hash || canonical row)`,
    /// the canonical row serde's sorted-key JSON), its `at` copied from the head.
    fn plant_forger(&self, bundle_id: &str, deferred: bool) {
        let forge = format!(
            "DECLARE h record; c text; n bigint;
             BEGIN
               EXECUTE 'RESET SESSION AUTHORIZATION';
               EXECUTE 'RESET ROLE';
               SELECT l.seq, l.row_hash, l.at, l.fingerprint_after AS fp INTO h FROM airlock.ledger l ORDER BY l.seq DESC LIMIT 1;
               n := h.seq + 1;
               c := '{{\"at\":' || to_json(h.at)::text
                 || ',\"bundle_id\":' || to_json('{bundle_id}'::text)::text
                 || ',\"bundle_name\":\"stolen\",\"bundle_tiers\":' || to_json('[\"one\"]'::text)::text
                 || ',\"bundle_version\":\"2\",\"event\":\"apply\",\"fingerprint_after\":' || to_json(h.fp)::text
                 || ',\"fingerprint_before\":' || to_json(h.fp)::text
                 || ',\"operator\":\"ops\",\"params\":\"{{}}\",\"prev_hash\":' || to_json(h.row_hash)::text
                 || ',\"seq\":' || n::text || ',\"sequence\":2,\"tiers\":' || to_json('[\"one\"]'::text)::text || '}}';
               INSERT INTO airlock.ledger (seq, at, event, bundle_name, bundle_version, sequence, bundle_id,
                   tiers, params, operator, fingerprint_before, fingerprint_after, prev_hash, row_hash, bundle_tiers)
                 VALUES (n, h.at, 'apply', 'stolen', '2', 2, '{bundle_id}', '[\"one\"]', '{{}}', 'ops', h.fp, h.fp,
                   h.row_hash, pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(h.row_hash || c, 'UTF8')), 'hex'),
                   '[\"one\"]');
               RETURN NEW;
             END"
        );
        self.db.exec_as(
            &self.dbowner,
            &format!(
                "CREATE OR REPLACE FUNCTION public.forge() RETURNS trigger LANGUAGE plpgsql AS {};
                 DROP TRIGGER IF EXISTS forge ON public.approvals;
                 {};",
                quote(&forge),
                if deferred {
                    "CREATE CONSTRAINT TRIGGER forge AFTER INSERT ON public.approvals
                       DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION public.forge()"
                } else {
                    "CREATE TRIGGER forge BEFORE INSERT ON public.approvals
                       FOR EACH ROW EXECUTE FUNCTION public.forge()"
                }
            ),
        );
    }
}

/// Issue 86, findings 4 and 5: the owner's trigger fires during a routine apply, gets
/// back to the deploy login (which owns the ledger) and inserts a correctly chained
/// `apply` row naming release 2, so that airlock chains its own row after it: release
/// 2 would then read as applied (`already-applied`) and its REVOKE never run. The
/// ledger takes exactly one row per airlock transaction: refused before COMMIT (exit 5,
/// `ledger-forged`), rolled back, the ledger as it was. With the trigger gone, both
/// releases run.
#[test]
fn a_ledger_row_that_code_fired_by_the_tier_forges_is_refused_before_commit() {
    let o = Owned::new("lp_forge");
    o.db.exec_as(
        &o.dbowner,
        "CREATE TABLE public.approvals(id int, who text);",
    );
    o.setup_deployer();
    let db = format!("\"{}\"", o.db.name);
    let first = o.bundle_for("first.tar.gz", "first", &db, "", "SELECT 1;", "SELECT 1;");
    expect_code(&o.deploy(&["apply", &first]), 0);
    let release2 = o.bundle_for(
        "r2.tar.gz",
        "security",
        &db,
        "",
        "CREATE TABLE public.revoked(i int);",
        "DROP TABLE public.revoked;",
    );
    let id = json(&airlock(
        o.dir(),
        &["--json", "verify", &release2, "--trust", "k.pub"],
    ))["bundle_id"]
        .as_str()
        .expect("bundle id")
        .to_string();
    let before = o.login_state();
    let b = o.bundle("b.tar.gz", "", TIER, ROLLBACK);
    // At once (before airlock's row), and deferred to the end of the transaction.
    for deferred in [false, true] {
        o.plant_forger(&id, deferred);
        let out = o.deploy(&["apply", &b]);
        expect_code(&out, 5);
        let j = json(&out);
        assert_eq!(j["kind"], "ledger-forged", "deferred {deferred}: {j}");
        let e = j["error"].as_str().unwrap_or_default();
        assert!(
            e.contains("2 row(s) were inserted into airlock.ledger in this transaction, 1 of them airlock's")
                && e.contains("rolled back"),
            "deferred {deferred}: {e}"
        );
        assert_eq!(o.login_state(), before, "the ledger or the login changed");
        assert_eq!(o.db.ledger_rows(), "1");
        assert_eq!(o.owner_of("public.made"), "none");
    }
    // Without the trigger, release 1 then release 2 run: nothing says 2 was applied.
    o.db.exec_as(&o.dbowner, "DROP TRIGGER forge ON public.approvals");
    expect_code(&o.deploy(&["apply", &b]), 0);
    expect_code(&o.deploy(&["apply", &release2]), 0);
    assert_eq!(o.owner_of("public.revoked"), o.dbowner);
    assert_eq!(o.db.ledger_rows(), "3");
}

/// Issue 86, finding 3: on a superuser's session in a database owned by `postgres`,
/// where the application role owns a schema and its table, the owner locks its table
/// and waits until airlock's session waits for it (`pg_locks`, not a sleep), then
/// attaches a `BEFORE UPDATE` trigger that makes it a superuser and commits. The guard
/// once judged "nothing a non-superuser owns could fire" before the tier's UPDATE
/// waited for its lock, and the trigger ran as the superuser. Now the table is held
/// still (`SHARE UPDATE EXCLUSIVE`) before the guard asks, so the guard sees the
/// trigger: refused (exit 5), nothing ran, nobody promoted.
#[test]
fn a_trigger_attached_while_a_superusers_tier_waits_for_its_lock_never_fires() {
    let o = Owned::new("lp_race");
    o.to_postgres();
    o.db.exec(&format!("CREATE SCHEMA app AUTHORIZATION {}", o.app));
    o.db.exec_as(
        &o.app,
        &format!(
            "CREATE TABLE app.t(i int); INSERT INTO app.t VALUES (1);
             {}",
            PWN.replace("public.pwn", "app.pwn")
        ),
    );
    let b = o.bundle(
        "race.tar.gz",
        "",
        "UPDATE app.t SET i = i + 1;",
        "UPDATE app.t SET i = i - 1;",
    );
    // The owner holds its table, so that airlock's session has to wait for it.
    let mut owner = o.db.client_as(&o.app);
    let mut tx = owner.transaction().unwrap();
    tx.batch_execute("LOCK TABLE app.t IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let child = o.spawn_until_waiting(&["apply", &b, "--trust", "k.pub"], "app.t");
    // airlock waits for app.t: the owner attaches its trigger and lets go.
    tx.batch_execute(&format!(
        "CREATE TRIGGER stamp BEFORE UPDATE ON app.t FOR EACH ROW EXECUTE FUNCTION app.pwn('{}')",
        o.app
    ))
    .unwrap();
    tx.commit().unwrap();
    let out = child.wait_with_output().expect("wait");
    assert!(!is_superuser(&o.app), "the trigger ran as the superuser");
    expect_code(&out, 5);
    let j = json(&out);
    assert_eq!(j["kind"], "bundle-role", "{j}");
    let e = j["error"].as_str().unwrap_or_default();
    assert!(e.contains("trigger stamp on table app.t"), "{e}");
    assert_eq!(o.db.scalar("SELECT i::text FROM app.t"), "1");
    assert_eq!(o.db.ledger_rows(), "none");
}

impl Owned {
    /// Spawn `airlock --json ARGS --db <superuser>` and wait until its
    /// session waits for a lock on `rel` (`pg_locks`, polled: never a sleep that
    /// decides anything).
    fn spawn_until_waiting(&self, args: &[&str], rel: &str) -> std::process::Child {
        self.spawn_until_waiting_in(args, rel, "")
    }

    /// [`Self::spawn_until_waiting`] in a statement whose text matches the regular
    /// expression `query`.
    fn spawn_until_waiting_in(&self, args: &[&str], rel: &str, query: &str) -> std::process::Child {
        self.spawn_as_until_waiting(None, args, rel, query)
    }

    /// [`Self::spawn_until_waiting_in`] connected as `user` (None: the superuser).
    fn spawn_as_until_waiting(
        &self,
        user: Option<&str>,
        args: &[&str],
        rel: &str,
        query: &str,
    ) -> std::process::Child {
        let conn = match user {
            Some(u) => format!("dbname={} user={u}", self.db.name),
            None => self.db.conn(),
        };
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        all.extend(["--db", &conn]);
        let mut child = airlock_command(self.dir(), &all)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run airlock");
        let mut watch = self.db.client();
        loop {
            let waiting: i64 = watch
                .query_one(
                    "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
                      WHERE NOT l.granted AND l.relation = $1::text::regclass AND a.application_name LIKE 'airlock%' \
                        AND a.query ~ $2",
                    &[&rel, &query],
                )
                .unwrap()
                .get(0);
            if waiting > 0 {
                return child;
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!("airlock ended ({status}) before it waited for {rel}");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

/// Issue 86, finding 1: `fingerprint --rows` on a superuser's login proved once, on
/// the leader, that no table has code a role attached, and its readers planned the
/// tables later on other connections, with the catalogs as they were then. The owner
/// holds its table until airlock waits for it, then adds an index whose expression
/// calls its function (`COPY … TO PROGRAM` when run as a superuser) and commits. Now
/// the table is held still before the proof and the snapshot: the proof sees the
/// index and refuses (exit 5, `attached-code`); the program never ran.
#[test]
fn an_index_attached_while_a_superusers_fingerprint_waits_never_runs_its_code() {
    let o = Owned::new("lp_fprace");
    let marker = o.app_with_a_folded_program("fprace", "(1), (2), (3)");
    let mut owner = o.db.client_as(&o.app);
    let mut tx = owner.transaction().unwrap();
    tx.batch_execute("LOCK TABLE app.t IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let child = o.spawn_until_waiting(&["fingerprint", "--rows"], "app.t");
    tx.batch_execute("CREATE INDEX t_planted ON app.t ((app.f() + i))")
        .unwrap();
    tx.commit().unwrap();
    let out = child.wait_with_output().expect("wait");
    assert!(
        !marker.exists(),
        "the index expression ran as the superuser"
    );
    expect_code(&out, 5);
    let j = json(&out);
    assert_eq!(j["kind"], "attached-code", "{j}");
    assert!(
        j["error"]
            .as_str()
            .unwrap_or_default()
            .contains("t_planted"),
        "{j}"
    );
}

/// Issue 86, finding 2: `plan` on a superuser's login. The door compared each
/// question's tables with the tainted list it made when it opened: the owner, holding
/// its table until airlock waits for it, adds an index whose expression calls its
/// function (`COPY … TO PROGRAM` as a superuser) to that old table and commits, and
/// the question planned it. Now the door holds still, before it makes that list, every
/// relation a non-superuser could attach code to: the index is seen, the question is
/// "cannot tell here" naming it, and nothing of the owner's ran.
#[test]
fn an_index_attached_while_a_superusers_plan_waits_never_runs_its_code() {
    let o = Owned::new("lp_planrace");
    let marker = o.app_with_a_folded_program("planrace", "(1), (NULL)");
    let b = o.bundle(
        "nn.tar.gz",
        "",
        "ALTER TABLE app.t ALTER COLUMN i SET NOT NULL;",
        "ALTER TABLE app.t ALTER COLUMN i DROP NOT NULL;",
    );
    let mut owner = o.db.client_as(&o.app);
    let mut tx = owner.transaction().unwrap();
    tx.batch_execute("LOCK TABLE app.t IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    // Held through plan's lock sizes (they give up after --predict-timeout), until the
    // door's question or its hold waits for the table.
    let child = o.spawn_until_waiting_in(
        &["plan", &b, "--trust", "k.pub", "--predict-timeout", "3s"],
        "app.t",
        "airlock_door_probe|LOCK TABLE .* IN SHARE UPDATE EXCLUSIVE MODE",
    );
    tx.batch_execute("CREATE INDEX t_planted ON app.t ((app.f() + i))")
        .unwrap();
    tx.commit().unwrap();
    let out = child.wait_with_output().expect("wait");
    assert!(
        !marker.exists(),
        "the index expression ran as the superuser"
    );
    let text = stdout(&out);
    assert!(
        text.contains("cannot tell here") && text.contains("t_planted"),
        "{text}"
    );
    assert_eq!(o.db.ledger_rows(), "none");
}

impl Owned {
    /// The database handed to `postgres` (bundle SQL then runs as a superuser), and
    /// `app`'s schema `app` with its table `app.t` (`rows`: an INSERT's VALUES) and a
    /// function `app.f()` an index may call: IMMUTABLE, so planning a read const-folds
    /// it, and it runs a program (`touch` of the returned path) when the user it runs
    /// as is a superuser.
    fn app_with_a_folded_program(&self, tag: &str, rows: &str) -> std::path::PathBuf {
        self.to_postgres();
        self.db
            .exec(&format!("CREATE SCHEMA app AUTHORIZATION {}", self.app));
        let marker = std::env::temp_dir().join(format!("airlock-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_file(&marker);
        self.db.exec_as(
            &self.app,
            &format!(
                "CREATE TABLE app.t(i int); INSERT INTO app.t VALUES {rows};
                 CREATE FUNCTION app.g() RETURNS int LANGUAGE plpgsql AS $f$
                 BEGIN
                   IF (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user) THEN
                     EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch {}''';
                   END IF;
                   RETURN 1;
                 END $f$;
                 CREATE FUNCTION app.f() RETURNS int IMMUTABLE LANGUAGE plpgsql AS $f$ BEGIN RETURN app.g(); END $f$;",
                marker.display()
            ),
        );
        marker
    }
}

impl Owned {
    /// Hand the database to `postgres`: bundle SQL then runs as a superuser.
    fn to_postgres(&self) {
        admin()
            .batch_execute(&format!(
                "ALTER DATABASE \"{}\" OWNER TO postgres",
                self.db.name
            ))
            .unwrap();
    }
}

/// Issue 86, finding 3, for `rollback`: the same race on the rollback's UPDATE, after
/// an honest apply. Its guard runs in the same step as apply's and holds the table
/// still before it asks: refused (exit 5), the rollback did not run, nobody promoted.
#[test]
fn a_trigger_attached_while_a_superusers_rollback_waits_for_its_lock_never_fires() {
    let o = Owned::new("lp_rbrace");
    o.to_postgres();
    o.db.exec(&format!("CREATE SCHEMA app AUTHORIZATION {}", o.app));
    o.db.exec_as(
        &o.app,
        &format!(
            "CREATE TABLE app.t(i int); INSERT INTO app.t VALUES (1);
             {}",
            PWN.replace("public.pwn", "app.pwn")
        ),
    );
    let b = o.bundle(
        "rbrace.tar.gz",
        "",
        "UPDATE app.t SET i = i + 1;",
        "UPDATE app.t SET i = i - 1;",
    );
    expect_code(&o.run(&["apply", &b]), 0);
    assert_eq!(o.db.scalar("SELECT i::text FROM app.t"), "2");
    let mut owner = o.db.client_as(&o.app);
    let mut tx = owner.transaction().unwrap();
    tx.batch_execute("LOCK TABLE app.t IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let child = o.spawn_until_waiting(&["rollback", &b, "--trust", "k.pub"], "app.t");
    tx.batch_execute(&format!(
        "CREATE TRIGGER stamp BEFORE UPDATE ON app.t FOR EACH ROW EXECUTE FUNCTION app.pwn('{}')",
        o.app
    ))
    .unwrap();
    tx.commit().unwrap();
    let out = child.wait_with_output().expect("wait");
    assert!(!is_superuser(&o.app), "the trigger ran as the superuser");
    expect_code(&out, 5);
    let j = json(&out);
    assert_eq!(j["kind"], "bundle-role", "{j}");
    assert!(
        j["error"]
            .as_str()
            .unwrap_or_default()
            .contains("trigger stamp on table app.t"),
        "{j}"
    );
    assert_eq!(o.db.scalar("SELECT i::text FROM app.t"), "2");
    assert_eq!(o.db.ledger_rows(), "1");
}

/// Issue 86, the race on the deploy login, for `rollback`: after an honest apply, the
/// owner holds its table until the rollback's INSERT waits for it (`pg_locks`), then
/// attaches a trigger that gets back to the deploy login (`RESET ROLE`) and chains a
/// forged `apply` row, and commits. The rollback's own proofs (the login's state and
/// the ledger's row count when its transaction began) are checked again as the last
/// statement before COMMIT, after the trigger fired: refused (exit 5,
/// `ledger-forged`), rolled back; the release stays applied and the ledger and the
/// login are as they were.
#[test]
fn a_forger_attached_while_the_deploy_logins_rollback_waits_is_refused_before_commit() {
    let o = Owned::new("lp_rbforge");
    o.db.exec_as(
        &o.dbowner,
        "CREATE TABLE public.approvals(id int, who text);",
    );
    o.setup_deployer();
    let b = o.bundle("b.tar.gz", "", TIER, ROLLBACK);
    expect_code(&o.deploy(&["apply", &b]), 0);
    // The forger's function is there; its trigger is not, yet.
    o.plant_forger(&"f".repeat(64), false);
    o.db.exec_as(&o.dbowner, "DROP TRIGGER forge ON public.approvals");
    let before = (o.login_state(), o.db.ledger_rows(), o.db.dump());
    let mut owner = o.db.client_as(&o.dbowner);
    let mut tx = owner.transaction().unwrap();
    tx.batch_execute("LOCK TABLE public.approvals IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let child = o.spawn_as_until_waiting(
        Some(&o.deployer),
        &["rollback", &b, "--trust", "k.pub", "--yes"],
        "public.approvals",
        "",
    );
    tx.batch_execute(
        "CREATE TRIGGER forge BEFORE INSERT ON public.approvals
           FOR EACH ROW EXECUTE FUNCTION public.forge()",
    )
    .unwrap();
    tx.commit().unwrap();
    let out = child.wait_with_output().expect("wait");
    expect_code(&out, 5);
    let j = json(&out);
    assert_eq!(j["kind"], "ledger-forged", "{j}");
    assert!(
        j["error"].as_str().unwrap_or_default().contains(
            "2 row(s) were inserted into airlock.ledger in this transaction, 1 of them airlock's"
        ),
        "{j}"
    );
    o.db.exec_as(&o.dbowner, "DROP TRIGGER forge ON public.approvals");
    assert_eq!((o.login_state(), o.db.ledger_rows(), o.db.dump()), before);
    assert_ne!(
        o.owner_of("public.made"),
        "none",
        "the release was rolled back"
    );
}

/// Issue 86, the race on `gate` (a superuser's login): the gate reads the owner's
/// table; the owner holds it until the gate's question waits for it (`pg_locks`),
/// then adds an index whose expression calls its function (`COPY … TO PROGRAM` when
/// run as a superuser; planning a read of the table const-folds it) and commits. The
/// question is planned after the index came, and the function runs: but as the gate
/// role (never the superuser) and in parallel mode, so the program never runs, and
/// the gate answers READY (here) or BLOCKED with the server's reason; nothing is
/// written.
#[test]
fn an_index_attached_while_a_superusers_gate_waits_runs_nothing_as_the_superuser() {
    let o = Owned::new("lp_gaterace");
    ensure_gate_role();
    let marker = o.app_with_a_folded_program("gaterace", "(1)");
    o.db.exec_as(
        &o.app,
        "GRANT USAGE ON SCHEMA app TO airlock_gate; GRANT SELECT ON app.t TO airlock_gate;",
    );
    let src = o.dir().join("src-gate");
    write(
        &src.join("bundle.toml"),
        &format!(
            "[bundle]\nname = \"gr\"\nversion = \"1\"\nsequence = 1\n\n[target]\ndatabase = \"{}\"\n\n[[gate]]\nname = \"g\"\nfile = \"sql/gate.sql\"\n\n[[tier]]\nname = \"one\"\nfiles = [\"sql/tier.sql\"]\ngates = [\"g\"]\n\n[rollback]\nfiles = [\"sql/rollback.sql\"]\nprobe = \"sql/probe.sql\"\nexpect = {{ x = \"1\" }}\n",
            o.db.name
        ),
    );
    write(
        &src.join("sql/gate.sql"),
        "SELECT count(*) > 0 AS ready FROM app.t",
    );
    write(&src.join("sql/tier.sql"), "SELECT 1;");
    write(&src.join("sql/rollback.sql"), "SELECT 1;");
    write(
        &src.join("sql/probe.sql"),
        "SELECT 'x'::text AS key, '1'::text AS value",
    );
    pack(o.dir(), &src, "k.key", "g.tar.gz");
    let before = o.db.dump();
    let mut owner = o.db.client_as(&o.app);
    let mut tx = owner.transaction().unwrap();
    tx.batch_execute("LOCK TABLE app.t IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let child = o.spawn_until_waiting(&["gate", "g.tar.gz", "--trust", "k.pub"], "app.t");
    tx.batch_execute("CREATE INDEX t_planted ON app.t ((app.f() + i))")
        .unwrap();
    tx.commit().unwrap();
    let out = child.wait_with_output().expect("wait");
    assert!(
        !marker.exists(),
        "the index expression ran as the superuser"
    );
    assert!(
        matches!(code(&out), 0 | 3),
        "the gate answers READY or BLOCKED: {}{}",
        stdout(&out),
        stderr(&out)
    );
    o.db.exec_as(&o.app, "DROP INDEX app.t_planted");
    assert_eq!(o.db.dump(), before);
    assert_eq!(o.db.ledger_rows(), "none");
}

/// Issue 86: airlock holds still at most 1,000 relations a non-superuser could attach
/// code to (each lock is a slot of the server's shared lock table). Past that, bundle
/// SQL that would run as a superuser is refused outright (exit 5, `bundle-role`,
/// naming the count and the login to use), nothing ran; at exactly 1,000 the
/// relations are held and the tier runs.
#[test]
fn past_a_thousand_relations_a_role_could_change_a_superusers_tier_is_refused() {
    let o = Owned::new("lp_thousand");
    o.to_postgres();
    o.db.exec(&format!("CREATE SCHEMA app AUTHORIZATION {}", o.app));
    o.db.exec_as(
        &o.app,
        "DO $$ BEGIN
           FOR i IN 1..1001 LOOP EXECUTE format('CREATE TABLE app.t%s(i int)', i); END LOOP;
         END $$;",
    );
    let b = o.bundle(
        "k.tar.gz",
        "",
        "CREATE TABLE public.made(i int);",
        "DROP TABLE public.made;",
    );
    let out = o.run(&["apply", &b]);
    expect_code(&out, 5);
    let j = json(&out);
    assert_eq!(j["kind"], "bundle-role", "{j}");
    let e = j["error"].as_str().unwrap_or_default();
    assert!(
        e.contains("1001 relations a non-superuser could attach code to (more than the 1000 airlock locks)")
            && e.contains("nothing ran"),
        "{e}"
    );
    assert!(
        j["hint"]
            .as_str()
            .unwrap_or_default()
            .contains("airlock setup --login"),
        "{j}"
    );
    assert_eq!(o.owner_of("public.made"), "none");
    assert_eq!(o.db.ledger_rows(), "none");
    // One fewer: all 1,000 are held, and the tier runs.
    o.db.exec_as(&o.app, "DROP TABLE app.t1001");
    expect_code(&o.run(&["apply", &b]), 0);
    assert_eq!(o.owner_of("public.made"), "postgres");
}

/// Issue 86, "or may create there" (CVE-2018-1058's shape): where a role that is no
/// superuser may create in a schema of the bundle's search_path (PUBLIC may create in
/// `public` by default on PostgreSQL 14 and older), it can make a function there that
/// a superuser's tier calls in place of the one it means (an exact-match overload of
/// `lower(varchar)` beats `pg_catalog.lower(text)`), before the guard or after it:
/// locks cannot hold what does not exist yet. Bundle SQL that would run as a superuser
/// is refused there (exit 5, `bundle-role`, naming the schema and who may create, or
/// the function in the way), nothing ran; with neither, the tier runs.
#[test]
fn a_superusers_tier_is_refused_where_a_role_may_create_in_its_search_path() {
    let o = Owned::new("lp_shadow");
    o.to_postgres();
    o.db.exec(
        "GRANT CREATE ON SCHEMA public TO PUBLIC;
         CREATE TABLE public.t(v varchar); INSERT INTO public.t VALUES ('A');",
    );
    let marker = std::env::temp_dir().join(format!("airlock-shadow-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    o.db.exec_as(
        &o.app,
        &format!(
            "CREATE FUNCTION public.lower(varchar) RETURNS text LANGUAGE plpgsql AS $f$
             BEGIN
               IF (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user) THEN
                 EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch {}''';
               END IF;
               RETURN pg_catalog.lower($1::text);
             END $f$;",
            marker.display()
        ),
    );
    let b = o.bundle(
        "sh.tar.gz",
        "",
        "UPDATE public.t SET v = lower(v);",
        "SELECT 1;",
    );
    let refused = |needle: &str| {
        let out = o.run(&["apply", &b]);
        assert!(!marker.exists(), "the role's function ran as the superuser");
        expect_code(&out, 5);
        let j = json(&out);
        assert_eq!(j["kind"], "bundle-role", "{j}");
        let e = j["error"].as_str().unwrap_or_default();
        assert!(e.contains(needle), "{e}");
        assert!(
            j["hint"]
                .as_str()
                .unwrap_or_default()
                .contains("REVOKE CREATE ON SCHEMA public FROM PUBLIC"),
            "{j}"
        );
        assert_eq!(o.db.scalar("SELECT v FROM public.t"), "A");
        assert_eq!(o.db.ledger_rows(), "none");
    };
    refused("PUBLIC may create in schema public of the search_path");
    // plan says so (its bundle-role row), and rehearse before it clones.
    for cmd in ["plan", "rehearse"] {
        let out = o.run(&[cmd, &b]);
        assert!(
            !marker.exists(),
            "{cmd}: the role's function ran as the superuser"
        );
        expect_code(&out, 5);
        assert!(
            stdout(&out).contains("PUBLIC may create in schema public of the search_path"),
            "{cmd}: {}",
            stdout(&out)
        );
    }
    // PostgreSQL 15's default: nobody else may create there now, but the function
    // made before is still in the way.
    o.db.exec("REVOKE CREATE ON SCHEMA public FROM PUBLIC");
    refused("function public.lower(character varying), in schema public of the search_path");
    // Gone: only what superusers made is left on the path, and the tier runs.
    o.db.exec("DROP FUNCTION public.lower(varchar)");
    expect_code(&o.run(&["apply", &b]), 0);
    assert!(!marker.exists());
    assert_eq!(o.db.scalar("SELECT v FROM public.t"), "a");
}

impl Owned {
    /// A login that may only read the ledger, made by hand as an auditor's DBA would:
    /// CONNECT, USAGE on schema airlock, SELECT on airlock.ledger (nothing else).
    fn hand_made_auditor(&self) -> String {
        let auditor = role_name("auditor");
        admin()
            .batch_execute(&format!(
                "CREATE ROLE {auditor} LOGIN; GRANT CONNECT ON DATABASE \"{}\" TO {auditor};",
                self.db.name
            ))
            .expect("auditor");
        self.db.exec_as(
            "postgres",
            &format!(
                "GRANT USAGE ON SCHEMA airlock TO {auditor}; GRANT SELECT ON airlock.ledger TO {auditor};"
            ),
        );
        auditor
    }

    /// `audit`, `status` and `dossier --db` on `login`: each exit code, and what each
    /// said (error and hint, or the document).
    fn read_as(&self, login: Option<&str>, b: &str) -> Vec<(i32, String)> {
        let page = self.dir().join("page.html");
        let page = page.to_str().unwrap();
        [
            vec!["audit", b],
            vec!["status"],
            vec!["status", b],
            vec!["dossier", b, "--out", page, "--force"],
        ]
        .iter()
        .map(|args| {
            let out = self.run_as(login, args);
            (
                code(&out),
                format!("{args:?}: {}{}", stdout(&out), stderr(&out)),
            )
        })
        .collect()
    }
}

/// Issue 88, finding 2: an auditor's login that can only read the ledger (CONNECT,
/// USAGE on schema airlock, SELECT on airlock.ledger) audits, reads status and makes
/// the dossier of the database `airlock setup` set up, where the deploy login owns the
/// ledger: reading needs no ownership (the hash chain, this host's memory of the head
/// and signed receipts are what the reading rests on). It changes nothing. A
/// superuser's session is told which logins read it.
#[test]
fn an_auditors_read_only_login_audits_and_reads_the_deploy_logins_ledger() {
    let o = Owned::new("lp_auditor");
    o.db.exec_as(
        &o.dbowner,
        "CREATE TABLE public.approvals(id int, who text);",
    );
    o.setup_deployer();
    let b = o.bundle("b.tar.gz", "", TIER, ROLLBACK);
    expect_code(&o.deploy(&["apply", &b]), 0);
    let auditor = o.hand_made_auditor();
    let mut roles = DropRoles(vec![]);
    roles.0.push(auditor.clone());
    let before = o.login_state();
    for (code, said) in o.read_as(Some(&auditor), &b) {
        assert_eq!(code, 0, "{said}");
        assert!(!said.contains("cannot be trusted"), "{said}");
    }
    assert_eq!(o.login_state(), before, "reading changed the ledger");
    // The audit names who keeps the ledger it read.
    let conn = format!("dbname={} user={auditor}", o.db.name);
    let out = airlock(o.dir(), &["audit", &b, "--trust", "k.pub", "--db", &conn]);
    let kept = format!("kept by {:?}", o.deployer);
    assert!(stdout(&out).contains(&kept), "{}", stdout(&out));
    // A superuser's session reads no ledger a non-superuser owns: told which logins do.
    // (The dossier is made, exit 0: its page says so where the database's answers go.)
    for (code, said) in o.read_as(None, &b) {
        assert_eq!(
            code,
            if said.starts_with("[\"dossier\"") {
                0
            } else {
                5
            },
            "{said}"
        );
        assert!(said.contains("--auditor"), "{said}");
        assert!(said.contains(&o.deployer), "{said}");
    }
    assert_eq!(o.login_state(), before);
}

/// `airlock setup --auditor NAME` makes the auditor's login beside the deploy login: it
/// audits and reads status, and can write nothing (not the ledger, not as the deploy
/// login). An existing role that could act as the deploy login, or has a superuser's
/// powers, is refused as an auditor's login, and nothing changes.
#[test]
fn setup_makes_an_auditors_login_that_reads_and_cannot_write() {
    let o = Owned::new("lp_setup_auditor");
    o.db.exec_as(
        &o.dbowner,
        "CREATE TABLE public.approvals(id int, who text);",
    );
    let auditor = role_name("auditor");
    let _auditor_role = DropRoles(vec![auditor.clone()]);
    let conn = o.db.conn();
    let setup = |who: &str| {
        airlock(
            o.dir(),
            &[
                "--json",
                "setup",
                "--db",
                &conn,
                "--login",
                &o.deployer,
                "--auditor",
                who,
            ],
        )
    };
    // Refused: one that may act as the deploy login; one with CREATEROLE. Nothing made.
    admin()
        .batch_execute(&format!(
            "ALTER ROLE {} CREATEROLE; CREATE ROLE {auditor} LOGIN; GRANT {} TO {auditor};",
            o.app, o.deployer
        ))
        .unwrap();
    for (who, says) in [
        (auditor.as_str(), "may act as the deploy login"),
        (o.app.as_str(), "CREATEROLE"),
    ] {
        let out = setup(who);
        expect_code(&out, 5);
        let e = json(&out)["error"].as_str().unwrap().to_string();
        assert!(e.contains(says) && e.contains("nothing changed"), "{e}");
        assert_eq!(
            o.db.scalar("SELECT count(*)::text FROM pg_namespace WHERE nspname = 'airlock'"),
            "0"
        );
    }
    admin()
        .batch_execute(&format!("REVOKE {} FROM {auditor}", o.deployer))
        .unwrap();
    let out = setup(&auditor);
    expect_code(&out, 0);
    let report = json(&out);
    assert_eq!(report["auditor"]["login"], auditor.as_str(), "{report:#}");
    assert_eq!(report["auditor"]["created"], false, "{report:#}");
    let b = o.bundle("b.tar.gz", "", TIER, ROLLBACK);
    expect_code(&o.deploy(&["apply", &b]), 0);
    let before = o.login_state();
    for (code, said) in o.read_as(Some(&auditor), &b) {
        assert_eq!(code, 0, "{said}");
    }
    // It writes nothing: not through airlock, not by hand.
    let db = format!("\"{}\"", o.db.name);
    let next = o.bundle_for(
        "next.tar.gz",
        "next",
        &db,
        "",
        "CREATE TABLE public.next(i int);",
        "DROP TABLE public.next;",
    );
    let out = o.run_as(Some(&auditor), &["apply", &next]);
    assert_eq!(code(&out), 5, "{}", stdout(&out));
    assert_eq!(o.owner_of("public.next"), "none");
    let forged = o.db.client_as(&auditor).batch_execute(
        "INSERT INTO airlock.ledger SELECT * FROM airlock.ledger ORDER BY seq DESC LIMIT 1",
    );
    assert!(forged.is_err(), "the auditor's login wrote the ledger");
    assert_eq!(
        o.db.scalar(&format!(
            "SELECT pg_has_role('{auditor}', '{}', 'USAGE')::text",
            o.deployer
        )),
        "false"
    );
    assert_eq!(o.login_state(), before, "reading changed the ledger");
}

/// Issue 88, finding 12: `setup`'s closing advice keeps the host and port it was given,
/// so the line works where the libpq environment points elsewhere; `--json` carries
/// the same string (`deploy_db`), and no password.
#[test]
fn setup_advice_keeps_the_server_it_was_given() {
    let o = Owned::new("lp_advice");
    let socket = std::env::var("PGHOST").unwrap_or_else(|_| "/var/run/postgresql".into());
    let given = format!(
        "host={socket} port={} dbname={} password=unused",
        pg_port(),
        o.db.name
    );
    let out = airlock(o.dir(), &["setup", "--db", &given, "--login", &o.deployer]);
    expect_code(&out, 0);
    let text = stdout(&out);
    let advice = text
        .split("Deploy as it from now on: --db \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no advice: {text}"))
        .to_string();
    assert_eq!(
        advice,
        format!(
            "host={socket} port={} dbname={} user={}",
            pg_port(),
            o.db.name,
            o.deployer
        ),
        "{text}"
    );
    // The advice as typed connects as the login, whatever the environment says.
    let elsewhere = [
        ("PGHOST", "/nonexistent"),
        ("PGPORT", "1"),
        ("PGUSER", "nobody"),
    ];
    let status = airlock_env(o.dir(), &["--json", "status", "--db", &advice], &elsewhere);
    expect_code(&status, 0);
    // --json says the same.
    let out = airlock(
        o.dir(),
        &["--json", "setup", "--db", &given, "--login", &o.deployer],
    );
    expect_code(&out, 0);
    assert_eq!(json(&out)["deploy_db"], advice.as_str());
}

/// Issue 86: the hold that makes a superuser's proof last until the act waits for each
/// relation a non-superuser could attach code to within `--lock-timeout`, and no
/// longer: while the owner keeps its table locked the whole time, the apply is refused
/// once its tries ran out (exit 6, `lock-busy`), naming the session in the way and what
/// it holds, and nothing ran: no ledger, the row as it was.
#[test]
fn a_superusers_hold_that_cannot_be_taken_in_time_is_refused_and_changes_nothing() {
    let o = Owned::new("lp_hold_timeout");
    o.to_postgres();
    o.db.exec(&format!("CREATE SCHEMA app AUTHORIZATION {}", o.app));
    o.db.exec_as(
        &o.app,
        "CREATE TABLE app.t(i int); INSERT INTO app.t VALUES (1);",
    );
    let b = o.bundle(
        "hold.tar.gz",
        "",
        "UPDATE app.t SET i = i + 1;",
        "UPDATE app.t SET i = i - 1;",
    );
    let mut owner = o.db.client_as(&o.app);
    let mut tx = owner.transaction().unwrap();
    tx.batch_execute("LOCK TABLE app.t IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let out = o.run(&["apply", &b, "--lock-timeout", "200ms"]);
    tx.rollback().unwrap();
    expect_code(&out, 6);
    let j = json(&out);
    assert_eq!(j["kind"], "lock-busy", "{j}");
    let e = j["error"].as_str().unwrap_or_default();
    assert!(
        e.contains("holding still the relations a non-superuser could change")
            && e.contains("canceling statement due to lock timeout")
            && e.contains("holds AccessExclusiveLock on app.t")
            && e.contains(&o.app),
        "{e}"
    );
    assert_eq!(o.db.scalar("SELECT i::text FROM app.t"), "1");
    assert_eq!(o.db.ledger_rows(), "none");
}
