//! A hostile target database: roles other than airlock's own (an unprivileged
//! attacker with CREATE on `public`, a database owner who is not a superuser) try to
//! hijack airlock's queries, spoof its ledger and bend gates, while airlock runs as
//! the recommended deploy login (`airlock setup`: no superuser, may become the owner,
//! owns the ledger); a superuser's login refuses to run the owner's SQL at all
//! (tests/least_privilege.rs). Each test proves what was planted never ran (a marker the attacker's
//! code would write stays empty, no role gained privileges), tiers ran at most once,
//! and the operator got a clear refusal where one is due.

mod util;
use std::path::Path;
use util::*;

struct Hostile {
    t: tempfile::TempDir,
    db: TestDb,
    _roles: DropRoles,
    /// Unprivileged, with CREATE on public.
    evil: String,
    /// Owns the database; not a superuser.
    owner: String,
    /// How airlock logs in: the deploy login `airlock setup` made.
    conn: String,
    _serial: Serial,
}

impl Hostile {
    /// airlock logs in as the deploy login `airlock setup` made.
    fn new(tag: &str) -> Hostile {
        Hostile::make(tag, true)
    }

    /// airlock logs in as the superuser the tests run as (no deploy login, no ledger
    /// yet): for bundles that declare `superuser = true`.
    fn on_superuser_login(tag: &str) -> Hostile {
        Hostile::make(tag, false)
    }

    fn make(tag: &str, deploy: bool) -> Hostile {
        let serial = cluster_serial();
        let db = TestDb::new(tag);
        let (evil, owner, deployer) =
            (role_name("evil"), role_name("owner"), role_name("deployer"));
        admin()
            .batch_execute(&format!(
                "CREATE ROLE {evil} LOGIN; CREATE ROLE {owner} LOGIN;
                 ALTER DATABASE \"{}\" OWNER TO {owner};",
                db.name
            ))
            .expect("roles");
        db.exec(&format!(
            "GRANT CREATE ON SCHEMA public TO {evil};
             -- bundle SQL runs as the database owner (the default role): the
             -- release's schema is the owner's, the owner may read fx
             CREATE SCHEMA app AUTHORIZATION {owner}; CREATE SCHEMA fx;
             GRANT USAGE ON SCHEMA fx TO {owner};
             ALTER DEFAULT PRIVILEGES IN SCHEMA fx GRANT SELECT, REFERENCES ON TABLES TO {owner};
             CREATE TABLE fx.approvals(id int);
             -- what the attacker's code writes when it runs
             CREATE TABLE public.marker(what text);
             GRANT INSERT, SELECT ON public.marker TO PUBLIC;"
        ));
        let t = keyed_dir();
        let conn = if deploy {
            deploy_login(t.path(), &db, &deployer)
        } else {
            db.conn()
        };
        Hostile {
            t,
            db,
            _roles: DropRoles(vec![evil.clone(), owner.clone(), deployer]),
            evil,
            owner,
            conn,
            _serial: serial,
        }
    }

    fn dir(&self) -> &Path {
        self.t.path()
    }

    fn bundle(&self, out: &str, gate: &str, tiers: &[(&str, &str, bool)]) -> String {
        self.bundle_with(out, gate, tiers, "")
    }

    /// A bundle with `target_extra` added to its `[target]` section.
    fn bundle_with(
        &self,
        out: &str,
        gate: &str,
        tiers: &[(&str, &str, bool)],
        target_extra: &str,
    ) -> String {
        let root = self.dir().join(format!("src-{out}"));
        let s = MiniSource::new(
            &root,
            &self.db.name,
            gate,
            tiers,
            "DROP TABLE IF EXISTS app.t1;",
        );
        let toml = s.dir.join("bundle.toml");
        let text = std::fs::read_to_string(&toml).unwrap();
        let db_line = format!("database = \"{}\"\n", self.db.name);
        write(
            &toml,
            &text.replacen(&db_line, &format!("{db_line}{target_extra}\n"), 1),
        );
        pack(self.dir(), &s.dir, "rm.key", out);
        out.to_string()
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        let conn = self.conn.clone();
        if args[0] != "status" && args[0] != "fingerprint" {
            return run_json(self.dir(), "rm.pub", &conn, args);
        }
        let mut a: Vec<&str> = vec!["--json"];
        a.extend(args);
        a.extend(["--db", conn.as_str()]);
        airlock(self.dir(), &a)
    }

    fn marker(&self) -> String {
        self.db
            .scalar("SELECT coalesce(string_agg(what, ','), '') FROM public.marker")
    }

    /// Nothing the attacker planted ran, and nobody was made superuser.
    #[track_caller]
    fn assert_nothing_planted_ran(&self) {
        assert_eq!(self.marker(), "", "the attacker's code ran as airlock");
        assert!(!is_superuser(&self.evil), "the attacker became superuser");
        assert!(!is_superuser(&self.owner), "the owner became superuser");
    }
}

/// A function body that records it ran and tries to make the attacker superuser.
fn payload(evil: &str, what: &str) -> String {
    format!("INSERT INTO public.marker VALUES ('{what}'); BEGIN EXECUTE 'ALTER ROLE {evil} SUPERUSER'; EXCEPTION WHEN others THEN NULL; END;")
}

const TWO: &[(&str, &str, bool)] = &[
    ("structure", "CREATE TABLE app.t1(i int);", false),
    ("seed", "INSERT INTO app.t1 VALUES (1);", true),
];
const GATE: &str =
    "SELECT count(*) >= 1 AS ready, 'approvals: ' || count(*) AS reason FROM fx.approvals";

/// Plant, as the attacker, an operator/function for everything airlock's own
/// statements could resolve to, and (as the database owner) a search_path that puts
/// `public` before `pg_catalog`.
fn plant(h: &Hostile) {
    let p = |w: &str| payload(&h.evil, w);
    h.db.exec_as(
        &h.evil,
        &format!(
            "CREATE FUNCTION public.cat(name, name) RETURNS text LANGUAGE plpgsql AS $$ BEGIN {} RETURN $1::text || $2::text; END $$;
             CREATE OPERATOR public.|| (LEFTARG = name, RIGHTARG = name, FUNCTION = public.cat);
             CREATE FUNCTION public.eqn(name, name) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN {} RETURN $1::text = $2::text; END $$;
             CREATE OPERATOR public.= (LEFTARG = name, RIGHTARG = name, FUNCTION = public.eqn);
             CREATE FUNCTION public.ge(bigint, integer) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN {} RETURN true; END $$;
             CREATE OPERATOR public.>= (LEFTARG = bigint, RIGHTARG = integer, FUNCTION = public.ge);
             CREATE FUNCTION public.current_database() RETURNS name LANGUAGE plpgsql AS $$ BEGIN {} RETURN 'somewhere_else'; END $$;
             CREATE FUNCTION public.pg_advisory_xact_lock(bigint) RETURNS void LANGUAGE plpgsql AS $$ BEGIN {} END $$;
             CREATE FUNCTION public.set_config(text, text, boolean) RETURNS text LANGUAGE plpgsql AS $$ BEGIN {} RETURN $2; END $$;
             CREATE FUNCTION public.format_type(oid, integer) RETURNS text LANGUAGE plpgsql AS $$ BEGIN {} RETURN 'x'; END $$;
             CREATE FUNCTION public.pg_get_userbyid(oid) RETURNS name LANGUAGE plpgsql AS $$ BEGIN {} RETURN 'x'; END $$;
             CREATE FUNCTION public.json_build_object(VARIADIC text[]) RETURNS json LANGUAGE plpgsql AS $$ BEGIN {} RETURN '{{}}'; END $$;
             CREATE FUNCTION public.to_char(timestamp, text) RETURNS text LANGUAGE plpgsql AS $$ BEGIN {} RETURN 'x'; END $$;",
            p("||"), p("="), p(">="), p("current_database"), p("advisory"), p("set_config"),
            p("format_type"), p("pg_get_userbyid"), p("json_build_object"), p("to_char")
        ),
    );
    h.db.exec_as(
        &h.owner,
        &format!(
            "ALTER DATABASE \"{}\" SET search_path = public, pg_catalog;
             ALTER DATABASE \"{0}\" SET standard_conforming_strings = off;
             ALTER DATABASE \"{0}\" SET DateStyle = 'SQL, DMY';",
            h.db.name
        ),
    );
    // The same as a role default for the role airlock connects as, in this database.
    h.db.exec(&format!(
        "ALTER ROLE CURRENT_USER IN DATABASE \"{}\" SET search_path = public, pg_catalog",
        h.db.name
    ));
}

#[test]
fn planted_operators_and_functions_never_run_as_airlock() {
    let h = Hostile::new("plant");
    plant(&h);
    let b = h.bundle("b.tar.gz", GATE, TWO);
    expect_code(&h.run(&["fingerprint"]), 0);
    expect_code(&h.run(&["status", "--verify-chain"]), 0);
    // 0 approvals: the planted >=(bigint,integer) would say READY; bundle SQL runs
    // under the bundle's search_path (pg_catalog first), so it does not.
    expect_code(&h.run(&["gate", &b]), 3);
    expect_code(&h.run(&["plan", &b, "--through", "structure"]), 0);
    h.db.exec("INSERT INTO fx.approvals VALUES (1)");
    expect_code(&h.run(&["rehearse", &b, "--param", "code=A1"]), 0);
    expect_code(&h.run(&["apply", &b, "--through", "structure"]), 0);
    expect_code(&h.run(&["apply", &b, "--param", "code=A1"]), 0);
    assert_eq!(h.db.scalar("SELECT count(*)::text FROM app.t1"), "1");
    expect_code(&h.run(&["rollback", &b]), 0);
    expect_code(&h.run(&["status", "--verify-chain"]), 0);
    h.assert_nothing_planted_ran();
}

#[test]
fn a_planted_current_database_does_not_pass_the_name_guard() {
    let h = Hostile::new("guard");
    plant(&h);
    // A bundle for another database name than this one: the planted
    // current_database() would claim to be it.
    let root = h.dir().join("src-other");
    let s = MiniSource::new(&root, "somewhere_else", GATE, TWO, "SELECT 1;");
    pack(h.dir(), &s.dir, "rm.key", "other.tar.gz");
    let o = h.run(&["gate", "other.tar.gz"]);
    expect_code(&o, 5);
    assert_eq!(json(&o)["kind"], "name-guard");
    h.assert_nothing_planted_ran();
}

#[test]
fn a_precreated_airlock_schema_or_ledger_is_refused_and_nothing_runs() {
    let h = Hostile::new("squat");
    let b = h.bundle("b.tar.gz", GATE, TWO);
    // Before airlock setup made the ledger, the database owner (not a superuser)
    // pre-created airlock's ledger with a trigger that swallows every row.
    h.db.exec("DROP SCHEMA airlock CASCADE");
    h.db.exec_as(
        &h.owner,
        "CREATE SCHEMA airlock;
         CREATE TABLE airlock.ledger (seq bigint PRIMARY KEY, at text NOT NULL, event text NOT NULL CHECK (event IN ('apply', 'rollback')),
           bundle_name text NOT NULL, bundle_version text NOT NULL, sequence bigint NOT NULL, bundle_id text NOT NULL, tiers text NOT NULL,
           params text NOT NULL, operator text NOT NULL, fingerprint_before text NOT NULL, fingerprint_after text NOT NULL,
           prev_hash text NOT NULL, row_hash text NOT NULL UNIQUE);
         CREATE FUNCTION airlock.swallow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
         CREATE TRIGGER swallow BEFORE INSERT ON airlock.ledger FOR EACH ROW EXECUTE FUNCTION airlock.swallow();",
    );
    for _ in 0..2 {
        let o = h.run(&["apply", &b, "--through", "structure"]);
        expect_code(&o, 5);
        let j = json(&o);
        assert_eq!(j["kind"], "ledger-untrusted");
        let e = j["error"].as_str().unwrap();
        assert!(e.contains("owned by"), "{e}");
    }
    assert_eq!(
        h.db.scalar("SELECT (to_regclass('app.t1') IS NULL)::text"),
        "true"
    );
    expect_code(&h.run(&["status"]), 5);
    expect_code(&h.run(&["plan", &b]), 5);
    // The schema alone, pre-created by the owner, is refused too.
    h.db.exec("DROP SCHEMA airlock CASCADE");
    h.db.exec_as(&h.owner, "CREATE SCHEMA airlock;");
    let o = h.run(&["apply", &b, "--through", "structure"]);
    expect_code(&o, 5);
    assert!(json(&o)["error"]
        .as_str()
        .unwrap()
        .contains("schema airlock is owned by"));
    assert_eq!(
        h.db.scalar("SELECT (to_regclass('app.t1') IS NULL)::text"),
        "true"
    );
}

#[test]
fn a_ledger_that_was_tampered_with_is_refused() {
    let h = Hostile::new("tamper");
    let b = h.bundle("b.tar.gz", GATE, TWO);
    expect_code(&h.run(&["apply", &b, "--through", "structure"]), 0);
    let cases: &[(&str, &str, &str)] = &[
        (
            "CREATE FUNCTION public.swallow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
             CREATE TRIGGER swallow BEFORE INSERT ON airlock.ledger FOR EACH ROW EXECUTE FUNCTION public.swallow();",
            "DROP TRIGGER swallow ON airlock.ledger; DROP FUNCTION public.swallow();",
            "triggers",
        ),
        (
            "ALTER TABLE airlock.ledger DISABLE TRIGGER ledger_append_only;",
            "ALTER TABLE airlock.ledger ENABLE TRIGGER ledger_append_only;",
            "triggers",
        ),
        ("GRANT INSERT, TRUNCATE ON airlock.ledger TO PUBLIC;", "REVOKE INSERT, TRUNCATE ON airlock.ledger FROM PUBLIC;", "write grants"),
        ("CREATE RULE r AS ON INSERT TO airlock.ledger DO INSTEAD NOTHING;", "DROP RULE r ON airlock.ledger;", "rules"),
        ("ALTER TABLE airlock.ledger ENABLE ROW LEVEL SECURITY;", "ALTER TABLE airlock.ledger DISABLE ROW LEVEL SECURITY;", "row-level security"),
        ("ALTER TABLE airlock.ledger ALTER COLUMN operator SET DEFAULT 'x';", "ALTER TABLE airlock.ledger ALTER COLUMN operator DROP DEFAULT;", "columns"),
        ("CREATE OR REPLACE FUNCTION airlock.ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;", "", "not airlock's"),
    ];
    for (tamper, undo, why) in cases {
        h.db.exec(tamper);
        let o = h.run(&["apply", &b, "--param", "code=A1"]);
        expect_code(&o, 5);
        let e = json(&o)["error"].as_str().unwrap().to_string();
        assert!(e.contains(why), "{tamper}: {e}");
        assert_eq!(
            h.db.scalar("SELECT count(*)::text FROM app.t1"),
            "0",
            "{tamper}"
        );
        assert_eq!(h.db.ledger_rows(), "1");
        if !undo.is_empty() {
            h.db.exec(undo);
        }
    }
}

#[test]
fn a_deleted_ledger_tail_is_refused_until_the_host_is_told_to_forget() {
    let h = Hostile::new("tail");
    h.db.exec("INSERT INTO fx.approvals VALUES (1)");
    let b = h.bundle("b.tar.gz", GATE, TWO);
    expect_code(&h.run(&["apply", &b, "--param", "code=A1"]), 0);
    expect_code(&h.run(&["rollback", &b]), 0);
    // A superuser removes the newest rows (the rollback and the row recording its
    // receipt's delivery) behind the trigger's back.
    h.db.exec(
        "ALTER TABLE airlock.ledger DISABLE TRIGGER ledger_append_only;
         DELETE FROM airlock.ledger WHERE seq >= 3;
         ALTER TABLE airlock.ledger ENABLE TRIGGER ledger_append_only;",
    );
    // The chain itself still verifies: only this host's memory can tell.
    let o = h.run(&["status", "--verify-chain"]);
    expect_code(&o, 5);
    let j = json(&o);
    assert_eq!(j["chain"]["ok"], true);
    assert_eq!(j["remembered_head"]["state"], "lost");
    let conn = h.conn.clone();
    let quiet_status = || {
        let o = airlock(h.dir(), &["-q", "status", "--verify-chain", "--db", &conn]);
        expect_code(&o, 5);
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    // `status --quiet` still says why it exits 5, on one line.
    let out = quiet_status();
    assert!(out.starts_with("remembered head: LOST: "), "{out}");
    assert_eq!(out.lines().count(), 1, "{out}");
    let o = h.run(&["apply", &b, "--param", "code=A1"]);
    expect_code(&o, 5);
    assert_eq!(json(&o)["kind"], "ledger-rewound");
    // `plan --quiet` says NO-GO and why, on one line and its hint, nothing more.
    let o = airlock(
        h.dir(),
        &[
            "-q", "plan", &b, "--trust", "rm.pub", "--db", &conn, "--param", "code=A1",
        ],
    );
    expect_code(&o, 5);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.starts_with("NO-GO (apply would exit 5): remembered-head: the airlock ledger of"),
        "{out}"
    );
    assert!(out.contains("lost history this host saw"), "{out}");
    assert!(
        out.contains("\nhint: ") && out.contains("--forget-head"),
        "{out}"
    );
    assert_eq!(out.lines().count(), 2, "{out}");
    let o = h.run(&["rollback", &b]);
    expect_code(&o, 5);
    // Still rolled back: the refused apply did not run the tiers again.
    assert_eq!(
        h.db.scalar("SELECT (to_regclass('app.t1') IS NULL)::text"),
        "true"
    );
    assert_eq!(h.db.ledger_rows(), "1");
    // A deliberate reset: forget, and the current head is what is remembered now.
    let o = h.run(&["status", "--forget-head"]);
    expect_code(&o, 0);
    assert_eq!(json(&o)["remembered_head"]["state"], "forgotten");
    let o = h.run(&["status"]);
    expect_code(&o, 0);
    assert_eq!(json(&o)["remembered_head"]["state"], "held");
    // A row rewritten behind the trigger's back breaks the chain: `--quiet` says where.
    h.db.exec(
        "ALTER TABLE airlock.ledger DISABLE TRIGGER ledger_append_only;
         UPDATE airlock.ledger SET operator = 'mallory' WHERE seq = 1;
         ALTER TABLE airlock.ledger ENABLE TRIGGER ledger_append_only;",
    );
    let out = quiet_status();
    assert!(out.starts_with("hash chain: BROKEN at row 1: "), "{out}");
    assert_eq!(out.lines().count(), 1, "{out}");
}

#[test]
fn gate_and_probe_helpers_cannot_act_outside_the_database() {
    let h = Hostile::new("outside");
    let dir = tempdir();
    let d = dir.path().display().to_string();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    // Helpers a release manager might call from a gate, each trying one way out;
    // created by a superuser, declared PARALLEL SAFE as the README recommends.
    let attempts = [
        (
            "program",
            format!("COPY (SELECT 1) TO PROGRAM 'touch {d}/program'"),
        ),
        ("file", format!("COPY (SELECT 1) TO '{d}/file'")),
        ("read", "PERFORM pg_read_file('/etc/hostname')".to_string()),
        (
            "lo",
            format!("PERFORM lo_export(lo_from_bytea(0, 'x'), '{d}/lo')"),
        ),
        (
            "reset",
            format!("RESET ROLE; COPY (SELECT 1) TO PROGRAM 'touch {d}/reset'"),
        ),
        (
            "auth",
            format!(
                "SET SESSION AUTHORIZATION DEFAULT; COPY (SELECT 1) TO PROGRAM 'touch {d}/auth'"
            ),
        ),
    ];
    for (name, body) in &attempts {
        h.db.exec(&format!(
            "CREATE FUNCTION fx.try_{name}() RETURNS boolean LANGUAGE plpgsql PARALLEL SAFE AS $f$
               BEGIN {body}; INSERT INTO public.marker VALUES ('{name}'); RETURN true; END $f$;"
        ));
    }
    for (name, _) in &attempts {
        let gate = format!("SELECT fx.try_{name}() AS ready");
        let b = h.bundle(&format!("g-{name}.tar.gz"), &gate, TWO);
        let o = h.run(&["gate", &b]);
        expect_code(&o, 3);
        // The same helper from the preflight probe of an apply.
        let root = h.dir().join(format!("src-p-{name}"));
        let s = MiniSource::new(&root, &h.db.name, "SELECT true AS ready", TWO, "SELECT 1;");
        write(
            &s.dir.join("sql/probe.sql"),
            &format!("SELECT 't'::text AS key, (fx.try_{name}())::text AS value"),
        );
        pack(h.dir(), &s.dir, "rm.key", &format!("p-{name}.tar.gz"));
        let o = h.run(&["apply", &format!("p-{name}.tar.gz"), "--param", "code=A1"]);
        expect_code(&o, 5);
        assert_eq!(
            h.db.scalar("SELECT (to_regclass('app.t1') IS NULL)::text"),
            "true"
        );
    }
    assert_eq!(
        leftovers(dir.path()),
        Vec::<String>::new(),
        "a helper reached the server's files or programs"
    );
    h.assert_nothing_planted_ran();
}

#[test]
fn without_a_gate_role_a_superuser_airlock_refuses_to_run_gates() {
    let h = Hostile::new("norole");
    let b = h.bundle("b.tar.gz", GATE, TWO);
    let o = h.run(&["gate", &b, "--gate-role", "no_such_role_here"]);
    expect_code(&o, 5);
    let j = json(&o);
    assert_eq!(j["kind"], "gate-role");
    // The hint creates the role named, not the default one.
    assert!(j["hint"]
        .as_str()
        .unwrap()
        .contains("CREATE ROLE \"no_such_role_here\" NOLOGIN"));
    // Set once in the environment, every command takes it (gate, plan, dossier --db).
    for cmd in ["gate", "plan"] {
        let o = airlock_env(
            h.dir(),
            &[
                "--json", cmd, &b, "--trust", "rm.pub", "--db", &h.conn, "--param", "code=A1",
            ],
            &[("AIRLOCK_GATE_ROLE", "no_such_role_here")],
        );
        expect_code(&o, 5);
        assert!(
            stdout(&o).contains("no_such_role_here"),
            "{cmd}: {}",
            stdout(&o)
        );
    }
    let o = airlock_env(
        h.dir(),
        &[
            "--json", "dossier", &b, "--trust", "rm.pub", "--db", &h.conn, "--out", "d.html",
            "--param", "code=A1",
        ],
        &[("AIRLOCK_GATE_ROLE", "no_such_role_here")],
    );
    assert!(
        stdout(&o).contains("no_such_role_here")
            || stderr(&o).contains("no_such_role_here")
            || std::fs::read_to_string(h.dir().join("d.html"))
                .unwrap_or_default()
                .contains("no_such_role_here"),
        "dossier --db did not take AIRLOCK_GATE_ROLE: {}",
        stdout(&o)
    );
    // A gate role with powers outside the database is refused by name.
    let o = h.run(&["gate", &b, "--gate-role", "postgres"]);
    expect_code(&o, 5);
    assert!(json(&o)["error"]
        .as_str()
        .unwrap()
        .contains("is a superuser"));
}

#[test]
fn a_tier_that_changes_session_settings_cannot_change_later_tiers_or_the_ledger() {
    let h = Hostile::new("settings");
    h.db.exec("INSERT INTO fx.approvals VALUES (1)");
    let tiers: &[(&str, &str, bool)] = &[
        (
            "structure",
            // what a real pg_dump tier starts with
            "SET statement_timeout = 0; SELECT pg_catalog.set_config('search_path', '', false); CREATE TABLE app.t1(i int); CREATE TABLE public.seen(i int);",
            false,
        ),
        ("seed", "INSERT INTO seen VALUES (1); SELECT pg_sleep(3);", true),
    ];
    let b = h.bundle("b.tar.gz", GATE, tiers);
    expect_code(&h.run(&["apply", &b, "--through", "structure"]), 0);
    // The continuation sees no false drift, resolves `seen` under the bundle's
    // search_path, and the operator's statement timeout still holds for it.
    let o = h.run(&[
        "apply",
        &b,
        "--param",
        "code=A1",
        "--statement-timeout",
        "1s",
    ]);
    expect_code(&o, 1);
    let e = json(&o)["error"].as_str().unwrap().to_string();
    assert!(e.contains("statement timeout"), "{e}");
    assert_eq!(h.db.scalar("SELECT count(*)::text FROM public.seen"), "0");
    assert_eq!(h.db.ledger_rows(), "1");
}

/// `[target]` of a bundle that runs as the superuser under a search_path only
/// superusers may create in (`fx`; `public` is the owner's, and evil may create there).
const SUPERUSER_ON_FX: &str = "superuser = true\nsearch_path = [\"fx\"]";

#[test]
fn a_continuation_after_a_search_path_change_sees_no_false_drift() {
    let h = Hostile::new("drift");
    h.db.exec("INSERT INTO fx.approvals VALUES (1)");
    let tiers: &[(&str, &str, bool)] = &[
        ("structure", "CREATE TABLE app.t1(i int DEFAULT 1); CREATE VIEW app.v AS SELECT i FROM app.t1; SET search_path = '';", false),
        ("seed", "INSERT INTO app.t1 VALUES (2);", true),
    ];
    let b = h.bundle("b.tar.gz", GATE, tiers);
    expect_code(&h.run(&["apply", &b, "--through", "structure"]), 0);
    // On the deploy login, the continuation sees no false drift.
    expect_code(&h.run(&["apply", &b, "--param", "code=A1"]), 0);
    // The same release as a bundle that runs as the superuser, on a superuser's
    // login: no false drift either. (Its search_path is `fx`, which only superusers
    // may create in: `public` is the database owner's here, and evil may create in
    // it, so a superuser's unqualified names there are refused.)
    let h = Hostile::on_superuser_login("drift_su");
    h.db.exec("INSERT INTO fx.approvals VALUES (1)");
    let b = h.bundle_with("s.tar.gz", GATE, tiers, SUPERUSER_ON_FX);
    expect_code(&h.run(&["apply", &b, "--through", "structure"]), 0);
    expect_code(&h.run(&["apply", &b, "--param", "code=A1"]), 0);
}

#[test]
fn session_replication_role_replica_as_a_database_default_is_neutralised() {
    for superuser in [false, true] {
        let h = if superuser {
            Hostile::on_superuser_login("srr_su")
        } else {
            Hostile::new("srr")
        };
        h.db.exec(&format!(
            "CREATE TABLE fx.parent(id int PRIMARY KEY);
             ALTER DATABASE \"{}\" SET session_replication_role = replica;",
            h.db.name
        ));
        let tiers: &[(&str, &str, bool)] = &[(
            "structure",
            "CREATE TABLE app.t1(p int REFERENCES fx.parent(id)); INSERT INTO app.t1 VALUES (42);",
            false,
        )];
        let extra = if superuser { SUPERUSER_ON_FX } else { "" };
        let b = h.bundle_with("b.tar.gz", GATE, tiers, extra);
        let o = h.run(&["apply", &b]);
        if superuser {
            // A superuser's session puts it back: the foreign key holds.
            expect_code(&o, 1);
            assert!(json(&o)["error"].as_str().unwrap().contains("foreign key"));
        } else {
            // The deploy login cannot put it back: refused before anything runs.
            expect_code(&o, 5);
            assert_eq!(json(&o)["kind"], "session");
        }
        // No row (the deploy login's ledger, made by setup, stays empty).
        let rows = h.db.ledger_rows();
        assert!(rows == "none" || rows == "0", "{rows}");
    }
}

#[test]
fn escape_sequences_from_the_database_reach_the_terminal_escaped() {
    let h = Hostile::new("esc");
    let b = h.bundle(
        "b.tar.gz",
        "SELECT false AS ready, E'\\x1b[2J\\x1b[32mREADY' AS reason",
        TWO,
    );
    let conn = h.conn.clone();
    let o = airlock(h.dir(), &["gate", &b, "--trust", "rm.pub", "--db", &conn]);
    expect_code(&o, 3);
    let out = stdout(&o);
    assert!(
        !out.contains('\u{1b}'),
        "raw ESC reached the terminal: {out:?}"
    );
    assert!(out.contains("\\x1b[2J"), "{out}");
    let tiers: &[(&str, &str, bool)] = &[(
        "structure",
        "DO $$ BEGIN RAISE NOTICE E'\\x1b]0;pwned\\x07'; END $$; CREATE TABLE app.t1(i int);",
        false,
    )];
    let b = h.bundle("n.tar.gz", "SELECT true AS ready", tiers);
    let o = airlock(h.dir(), &["apply", &b, "--trust", "rm.pub", "--db", &conn]);
    expect_code(&o, 0);
    // The NOTICE is shown in the report on stdout, escaped like every other text.
    let shown = stdout(&o) + &stderr(&o);
    assert!(
        !shown.contains('\u{1b}') && !shown.contains('\u{7}'),
        "{shown:?}"
    );
    assert!(stdout(&o).contains("\\x1b]0;pwned"), "{shown}");
}

#[test]
fn a_malformed_ledger_row_is_an_error_naming_it_not_a_panic() {
    let h = Hostile::new("malformed");
    let b = h.bundle("b.tar.gz", GATE, TWO);
    expect_code(&h.run(&["apply", &b, "--through", "structure"]), 0);
    h.db.exec(
        "INSERT INTO airlock.ledger SELECT 3, at, event, bundle_name, bundle_version, sequence, bundle_id, tiers, params, operator, fingerprint_before, 'x', row_hash, repeat('a', 64) FROM airlock.ledger WHERE seq = 1",
    );
    let o = h.run(&["apply", &b, "--param", "code=A1"]);
    expect_code(&o, 5);
    let j = json(&o);
    assert_eq!(j["kind"], "ledger-broken");
    assert!(j["error"].as_str().unwrap().contains("seq 3"));
    // plan says the same, as its ledger row, with apply's exit code.
    let o = h.run(&["plan", &b, "--param", "code=A1"]);
    expect_code(&o, 5);
    let j = json(&o);
    let failed = j["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["verdict"] == "FAIL")
        .unwrap();
    assert_eq!(failed["check"], "ledger");
    assert!(failed["evidence"].as_str().unwrap().contains("seq 3"));
}

#[test]
fn the_deploy_lock_cannot_be_squatted_and_a_wait_names_the_holder() {
    let h = Hostile::new("lock");
    let b = h.bundle("b.tar.gz", GATE, TWO);
    expect_code(&h.run(&["apply", &b, "--through", "structure"]), 0);
    let host = std::env::var("PGHOST").unwrap_or_else(|_| "/var/run/postgresql".into());
    // The attacker squats the advisory lock key older airlock versions used, and
    // cannot lock the ledger table.
    let mut evil = postgres::Config::new()
        .host(&host)
        .port(pg_port())
        .user(&h.evil)
        .dbname(&h.db.name)
        .connect(postgres::NoTls)
        .expect("connect as attacker");
    evil.batch_execute("SELECT pg_advisory_lock(27419012907361131)")
        .unwrap();
    let err = evil
        .batch_execute("BEGIN; LOCK TABLE airlock.ledger IN ACCESS EXCLUSIVE MODE")
        .unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("42501"));
    h.db.exec("INSERT INTO fx.approvals VALUES (1)");
    expect_code(
        &h.run(&["apply", &b, "--param", "code=A1", "--lock-timeout", "2s"]),
        0,
    );
    // A session that may lock the ledger holds it: the refusal names it.
    expect_code(&h.run(&["rollback", &b]), 0);
    let mut holder = postgres::Config::new()
        .host(&host)
        .port(pg_port())
        .user("postgres")
        .dbname(&h.db.name)
        .application_name("the_blocker")
        .connect(postgres::NoTls)
        .unwrap();
    holder
        .batch_execute("BEGIN; LOCK TABLE airlock.ledger IN EXCLUSIVE MODE")
        .unwrap();
    let o = h.run(&[
        "apply",
        &b,
        "--through",
        "structure",
        "--lock-timeout",
        "200ms",
    ]);
    expect_code(&o, 6);
    let j = json(&o);
    assert_eq!(j["kind"], "lock-busy");
    let e = j["error"].as_str().unwrap();
    assert!(e.contains("the_blocker") && e.contains("pid "), "{e}");
    drop(holder);
}

#[test]
fn a_rule_added_between_through_and_the_continuation_is_drift() {
    let h = Hostile::new("rule");
    h.db.exec("INSERT INTO fx.approvals VALUES (1)");
    let b = h.bundle("b.tar.gz", GATE, TWO);
    expect_code(&h.run(&["apply", &b, "--through", "structure"]), 0);
    // Between the two applies, someone redirects the seed rows to a table of theirs.
    h.db.exec(
        "CREATE TABLE public.loot(i int);
         CREATE RULE steal AS ON INSERT TO app.t1 DO INSTEAD INSERT INTO public.loot VALUES (NEW.i);",
    );
    let o = h.run(&["apply", &b, "--param", "code=A1"]);
    expect_code(&o, 5);
    assert!(json(&o)["error"].as_str().unwrap().contains("drift"));
    assert_eq!(h.db.scalar("SELECT count(*)::text FROM public.loot"), "0");
    assert_eq!(h.db.ledger_rows(), "1");
}
