//! Who bundle SQL runs as. The tiers and the rollback run as the role the bundle
//! declares (`[target] role`; default: the database's owner), airlock's own statements
//! as the role it connects as. A session whose login role is (or may become) a
//! superuser never runs bundle SQL while code owned by a non-superuser sits on the
//! database's relations: such code could `RESET SESSION AUTHORIZATION` back to the
//! superuser whatever role the tier switched to.
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
        let src = self.dir().join(format!("src-{out}"));
        write(
            &src.join("bundle.toml"),
            &format!(
                "[bundle]\nname = \"lp\"\nversion = \"1\"\nsequence = 1\n\n[target]\ndatabase = \"{}\"\n{target_extra}\n\n[[tier]]\nname = \"one\"\nfiles = [\"sql/tier.sql\"]\n\n[rollback]\nfiles = [\"sql/rollback.sql\"]\nprobe = \"sql/probe.sql\"\nexpect = {{ x = \"1\" }}\n",
                self.db.name
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

/// (a) A superuser deployer, the default role (the owner): the trigger could climb
/// back to the superuser, so apply refuses before anything runs, naming it.
#[test]
fn a_superuser_deploy_refuses_while_the_owners_trigger_sits_on_the_tables() {
    let o = Owned::new("lp_apply");
    o.plant(&o.dbowner);
    let b = o.bundle("b.tar.gz", "", TIER, ROLLBACK);
    let out = o.run(&["apply", &b]);
    expect_code(&out, 5);
    assert_names_the_trigger(&out, &o.dbowner);
    o.assert_nothing_changed();
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

/// A superuser deployer on a database with no code of anyone else's: the tier runs as
/// the owner (what it creates is the owner's), airlock's ledger is the superuser's.
#[test]
fn a_superuser_deploy_runs_the_tiers_as_the_database_owner() {
    let o = Owned::new("lp_owner");
    o.db.client_as(&o.dbowner)
        .batch_execute("CREATE TABLE public.approvals(id int, who text);")
        .unwrap();
    let b = o.bundle("b.tar.gz", "", TIER, ROLLBACK);
    expect_code(&o.run(&["apply", &b]), 0);
    assert_eq!(o.owner_of("public.made"), o.dbowner);
    assert_eq!(o.db.scalar("SELECT who FROM public.approvals"), o.dbowner);
    let me = o.db.scalar("SELECT current_user::text");
    assert_eq!(o.owner_of("airlock.ledger"), me);
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
    let text = j.to_string();
    assert!(
        text.contains("stamp") && text.contains("public.pwn"),
        "{text}"
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

/// A rehearsal with a member of the owner runs on a clone owned like the target:
/// the tier runs as the owner there too, and passes.
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
    let out = o.run(&["rehearse", &b]);
    expect_code(&out, 0);
}

/// (d) plan shows the role bundle SQL runs as, in JSON and for people.
#[test]
fn plan_shows_the_role_bundle_sql_runs_as() {
    let o = Owned::new("lp_plan");
    o.db.client_as(&o.dbowner)
        .batch_execute("CREATE TABLE public.approvals(id int, who text);")
        .unwrap();
    let b = o.bundle("b.tar.gz", "", TIER, ROLLBACK);
    let p = o.run(&["plan", &b]);
    expect_code(&p, 0);
    let j = json(&p);
    assert_eq!(j["bundle_role"]["role"], o.dbowner.as_str());
    assert_eq!(j["bundle_role"]["source"], "database-owner");
    assert_eq!(j["bundle_role"]["superuser"], false);
    let human = airlock(
        o.dir(),
        &["plan", &b, "--trust", "k.pub", "--db", &o.db.conn()],
    );
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
    admin()
        .batch_execute(&format!(
            "ALTER DATABASE \"{}\" OWNER TO postgres",
            o.db.name
        ))
        .unwrap();
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

/// Every kind of code a superuser's bundle SQL could fire is listed with its owner;
/// constants, serials and `now()` defaults are not code.
#[test]
fn rules_views_policies_defaults_checks_and_called_functions_are_listed() {
    let o = Owned::new("lp_kinds");
    let mut c = o.db.client_as(&o.dbowner);
    c.batch_execute(
        "CREATE FUNCTION public.f(int) RETURNS int LANGUAGE sql AS 'SELECT $1';
         CREATE TABLE public.plain(id serial, at timestamptz DEFAULT now(), n int DEFAULT 0, s text DEFAULT 'x');
         CREATE TABLE public.coded(i int DEFAULT public.f(1) CHECK (i > 0));
         CREATE VIEW public.v AS SELECT public.f(i) AS j FROM public.coded;
         CREATE RULE r AS ON UPDATE TO public.coded DO ALSO NOTIFY x;
         ALTER TABLE public.coded ENABLE ROW LEVEL SECURITY;
         CREATE POLICY p ON public.coded USING (public.f(i) > 0);
         CREATE INDEX ON public.coded (public.f(i));
         CREATE DOMAIN public.d AS int CHECK (VALUE > 0);",
    )
    .unwrap();
    let b = o.bundle("b.tar.gz", "", "SELECT 1;", "SELECT 1;");
    let p = o.run(&["plan", &b]);
    expect_code(&p, 5);
    let j = json(&p);
    let e = j["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "bundle-role")
        .unwrap()["evidence"]
        .as_str()
        .unwrap()
        .to_string();
    for want in [
        "default of column i on public.coded",
        "check constraint coded_i_check on public.coded",
        "view public.v",
        "rule r on public.coded",
        "policy p on public.coded",
        "index public.coded_f_idx on public.coded",
        "check constraint d_check on domain public.d",
        "function public.f(integer), called by view public.v",
        "function public.f(integer), called by policy p on public.coded",
    ] {
        assert!(e.contains(want), "{want} missing: {e}");
    }
    assert!(!e.contains("public.plain"), "harmless defaults listed: {e}");
    assert!(e.contains(&format!("(owner {})", o.dbowner)), "{e}");
}

/// The query before it filtered by owner before naming anything, frozen.
const OWNER_CODE_REFERENCE: &str = include_str!("data/owner_code_reference.sql");

/// What the owner-code query finds, as `user`, and what the frozen reference finds.
fn found_both(db: &TestDb, user: &str) -> (Vec<String>, Vec<String>) {
    let mut c = db.client_as(user);
    // As airlock asks it: under its pinned search_path, so names come qualified.
    c.batch_execute("SET search_path TO pg_catalog, pg_temp")
        .unwrap();
    let show = |v: Vec<airlock_pg::owner_code::OwnerCode>| {
        v.iter()
            .map(|o| format!("{} | {} | {}", o.kind, o.object, o.owner))
            .collect::<Vec<_>>()
    };
    let now = airlock_pg::owner_code::find(&mut c).expect("the query");
    let before =
        airlock_pg::owner_code::find_with(&mut c, OWNER_CODE_REFERENCE).expect("the reference");
    // The statement a deploy prepares once a connection answers the same, prepared
    // and then from its cache.
    let mut cache = None;
    for _ in 0..2 {
        let prepared =
            airlock_pg::owner_code::find_prepared(&mut c, &mut cache).expect("the prepared query");
        assert_eq!(show(prepared), show(now.clone()));
    }
    (show(now), show(before))
}

/// The owner-code query finds exactly what the query before it found (the same rows,
/// the same order), on code of every kind that a non-superuser owns, on a superuser's
/// objects that call a non-superuser's function or operator, on harmless defaults and
/// on nothing at all; whoever asks (a superuser, or the owner itself, whom the query
/// trusts as the session's login role).
#[test]
fn the_owner_code_query_finds_what_the_one_before_it_found() {
    let o = Owned::new("lp_ref");
    let su = "postgres";
    let (none, before) = found_both(&o.db, su);
    assert_eq!(none, before);
    assert!(none.is_empty(), "{none:?}");
    o.db.exec(&format!("GRANT CREATE ON SCHEMA public TO {}", o.app));
    // Code the database owner owns, of every kind.
    o.db.client_as(&o.dbowner)
        .batch_execute(
            "CREATE FUNCTION public.f(int) RETURNS int LANGUAGE sql AS 'SELECT $1';
             CREATE FUNCTION public.eq(int, int) RETURNS bool LANGUAGE sql AS 'SELECT $1 = $2';
             CREATE OPERATOR public.=== (FUNCTION = public.eq, LEFTARG = int, RIGHTARG = int);
             CREATE FUNCTION public.tg() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';
             CREATE TABLE public.plain(id serial, at timestamptz DEFAULT now(), n int DEFAULT 0, s text DEFAULT 'x');
             CREATE TABLE public.coded(i int DEFAULT public.f(1) CHECK (i > 0), g int GENERATED ALWAYS AS (i * 2) STORED);
             CREATE VIEW public.v AS SELECT public.f(i) AS j FROM public.coded;
             CREATE MATERIALIZED VIEW public.mv AS SELECT i FROM public.coded;
             CREATE INDEX ON public.mv ((i === 1));
             CREATE RULE r AS ON UPDATE TO public.coded DO ALSO NOTIFY x;
             ALTER TABLE public.coded ENABLE ROW LEVEL SECURITY;
             CREATE POLICY p ON public.coded USING (public.f(i) > 0);
             CREATE INDEX ON public.coded (public.f(i));
             CREATE INDEX ON public.coded (i) WHERE i === 2;
             CREATE TRIGGER t BEFORE INSERT ON public.coded FOR EACH ROW WHEN (NEW.i > 1) EXECUTE FUNCTION public.tg();
             CREATE DOMAIN public.d AS int CHECK (VALUE > 0);
             CREATE DOMAIN public.d2 AS int CHECK (public.f(VALUE) > 0);
             CREATE TABLE public.parted(i int, k int CHECK (k === 3)) PARTITION BY RANGE (i);
             CREATE INDEX ON public.parted ((i + 1));
             CREATE FUNCTION public.evt() RETURNS event_trigger LANGUAGE plpgsql AS 'BEGIN END';",
        )
        .unwrap();
    // A superuser's objects that call them, and code the application role owns.
    o.db.client_as(su)
        .batch_execute(
            "CREATE TABLE public.su(i int DEFAULT public.f(2) CHECK (i === 1), k int CHECK (k > 0));
             CREATE INDEX ON public.su (public.f(i));
             CREATE INDEX ON public.su ((i + 1));
             CREATE VIEW public.suv AS SELECT public.f(i) FROM public.su;
             CREATE VIEW public.suv_plain AS SELECT i FROM public.su;
             ALTER TABLE public.su ENABLE ROW LEVEL SECURITY;
             CREATE POLICY sp ON public.su USING (i === 1);
             CREATE TRIGGER st BEFORE INSERT ON public.su FOR EACH ROW EXECUTE FUNCTION public.tg();
             CREATE TRIGGER sw BEFORE UPDATE ON public.su FOR EACH ROW WHEN (public.f(NEW.i) > 0) EXECUTE FUNCTION public.tg();
             CREATE DOMAIN public.sud AS int CHECK (public.f(VALUE) > 0);
             CREATE EVENT TRIGGER e ON ddl_command_end EXECUTE FUNCTION public.evt();",
        )
        .unwrap();
    o.db.client_as(&o.app)
        .batch_execute(
            "CREATE TABLE public.apps(id bigserial PRIMARY KEY, a int DEFAULT 1 CHECK (a <> 0));
             CREATE INDEX ON public.apps (abs(a));",
        )
        .unwrap();
    let (now, before) = found_both(&o.db, su);
    assert_eq!(now, before, "as the superuser");
    for want in [
        "of operator public.===(integer,integer), called by check constraint su_i_check on public.su",
        "event trigger e executing public.evt()",
        "index public.su_f_idx on public.su",
        "view public.suv",
        "policy sp on public.su",
        "WHEN condition of trigger sw on public.su",
        "trigger st on public.su executing public.tg()",
        "domain public.sud",
        "generation expression of column g on public.coded",
        "index public.apps_abs_idx",
    ] {
        assert!(
            now.iter().any(|r| r.contains(want)),
            "{want} missing: {now:#?}"
        );
    }
    assert!(!now.iter().any(|r| r.contains("public.plain")), "{now:#?}");
    assert!(!now.iter().any(|r| r.contains("suv_plain")), "{now:#?}");
    // The owner itself asking: its own code is trusted, the application role's is not.
    let (now, before) = found_both(&o.db, &o.dbowner);
    assert_eq!(now, before, "as the database owner");
    assert!(now.iter().all(|r| r.ends_with(&o.app)), "{now:#?}");
    assert!(!now.is_empty());
}
