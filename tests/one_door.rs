//! One door (issue 66, findings 1 and 2; DESIGN §5.1): nothing a database role
//! defines runs in airlock's own sessions. Roles of the target plant code behind the
//! operators, casts and types airlock's questions of the data could reach: an enum
//! `tier` whose owner made `CREATE CAST (tier AS text)`, a table whose owner made a
//! cast of its row type to text, `public.>(numeric, integer)` beating `pg_catalog`'s
//! `numeric > numeric` in `CHECK (amount > 0)`, a domain whose CHECK calls a planted
//! function, a row security policy calling one, a view. Every planted function leaves
//! three traces when it runs as anyone but the database owner (as whom bundle SQL may
//! run it): a file the server writes when it runs as a superuser (`COPY … TO`), a
//! WARNING, and an error `planted … ran as ROLE` that the question airlock asked would
//! carry into its output. The tests run `plan`, `dossier --db`, `rehearse`,
//! `fingerprint --data` and the other commands through the binary, on the superuser
//! login and on the deploy login `airlock setup` makes, and assert no trace is left
//! and the output names what could not be asked ("cannot tell here").

mod util;
use std::path::Path;
use util::*;

struct Door {
    t: tempfile::TempDir,
    /// Where a planted function run by a superuser writes (world-writable).
    traces: tempfile::TempDir,
    db: TestDb,
    _roles: DropRoles,
    /// Unprivileged, with CREATE on public: owns `tier`, its cast, the operators.
    evil: String,
    /// Owns the database and schema `shop`; bundle SQL runs as it.
    owner: String,
    /// The deploy login `airlock setup` made.
    deploy: String,
    _serial: Serial,
}

/// A planted function's body: unless the database's owner runs it (bundle SQL as its
/// declared role may) or its author, leave every trace and fail.
fn body((owner, evil): (&str, &str), traces: &Path, what: &str) -> String {
    format!(
        "BEGIN \
           IF current_user::text NOT IN ('{owner}', '{evil}') THEN \
             BEGIN EXECUTE pg_catalog.format('COPY (SELECT %L) TO %L', current_user::text, '{dir}/{what}'); \
             EXCEPTION WHEN others THEN NULL; END; \
             BEGIN INSERT INTO public.marker VALUES ('{what} as ' || current_user::text); \
             EXCEPTION WHEN others THEN NULL; END; \
             RAISE WARNING 'planted {what} ran as %', current_user; \
             RAISE EXCEPTION 'planted {what} ran as %', current_user; \
           END IF;",
        dir = traces.display()
    )
}

impl Door {
    /// The deploy login made by `airlock setup` too.
    fn new(tag: &str) -> Door {
        Door::make(tag, true)
    }

    fn make(tag: &str, setup: bool) -> Door {
        let serial = cluster_serial();
        let db = TestDb::new(tag);
        let (evil, owner, deploy) = (role_name("evil"), role_name("owner"), role_name("deployer"));
        admin()
            .batch_execute(&format!(
                "CREATE ROLE {evil} LOGIN; CREATE ROLE {owner} LOGIN;
                 ALTER DATABASE \"{}\" OWNER TO {owner};",
                db.name
            ))
            .expect("roles");
        db.exec(&format!(
            "GRANT CREATE ON SCHEMA public TO {evil};
             CREATE SCHEMA shop AUTHORIZATION {owner};
             CREATE TABLE public.marker(what text);
             GRANT INSERT, SELECT ON public.marker TO PUBLIC;"
        ));
        let traces = tempdir();
        std::fs::set_permissions(
            traces.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o1777),
        )
        .unwrap();
        let t = keyed_dir();
        if setup {
            let login = deploy_login(t.path(), &db, &deploy);
            assert!(login.contains(&deploy));
        }
        Door {
            t,
            traces,
            db,
            _roles: DropRoles(vec![evil.clone(), owner.clone(), deploy.clone()]),
            evil,
            owner,
            deploy,
            _serial: serial,
        }
    }

    fn dir(&self) -> &Path {
        self.t.path()
    }

    fn deploy_conn(&self) -> String {
        format!("dbname={} user={}", self.db.name, self.deploy)
    }

    fn planted(&self, what: &str) -> String {
        body((&self.owner, &self.evil), self.traces.path(), what)
    }

    /// The findings' plant: `tier` with its cast, `>(numeric, integer)`, and the
    /// owner's table `shop.acct` keyed by a tier.
    fn plant(&self) {
        self.db.exec_as(
            &self.evil,
            &format!(
                "CREATE TYPE public.tier AS ENUM ('gold', 'silver', 'bronze');
                 CREATE FUNCTION public.tier_text(public.tier) RETURNS text LANGUAGE plpgsql AS $$ {} RETURN 'x'; END $$;
                 CREATE CAST (public.tier AS text) WITH FUNCTION public.tier_text(public.tier);
                 CREATE FUNCTION public.gt(numeric, integer) RETURNS boolean LANGUAGE plpgsql AS $$ {} RETURN true; END $$;
                 CREATE OPERATOR public.> (LEFTARG = numeric, RIGHTARG = integer, FUNCTION = public.gt);",
                self.planted("tier_text"),
                self.planted("gt"),
            ),
        );
        self.db.exec_as(
            &self.owner,
            "CREATE TABLE shop.acct (k public.tier PRIMARY KEY, amount numeric);
             INSERT INTO shop.acct VALUES ('gold', -1), ('silver', 5), ('bronze', 500);",
        );
    }

    /// A bundle of one tier running `sql` (rolled back by `rollback`), packed as `out`.
    fn bundle(&self, out: &str, sql: &str, rollback: &str) -> String {
        let s = MiniSource::new(
            &self.dir().join(format!("src-{out}")),
            &self.db.name,
            "SELECT true AS ready",
            &[("one", sql, false)],
            rollback,
        );
        pack(self.dir(), &s.dir, "rm.key", out);
        out.to_string()
    }

    /// stdout and stderr of `airlock --json ARGS --trust rm.pub --db CONN`.
    fn run(&self, conn: &str, args: &[&str]) -> (i32, String) {
        let o = run_json(self.dir(), "rm.pub", conn, args);
        (code(&o), format!("{}{}", stdout(&o), stderr(&o)))
    }

    /// `airlock --json ARGS --db CONN` (commands without a bundle).
    fn run_plain(&self, conn: &str, args: &[&str]) -> (i32, String) {
        let mut a = vec!["--json"];
        a.extend(args);
        a.extend(["--db", conn]);
        let o = airlock(self.dir(), &a);
        (code(&o), format!("{}{}", stdout(&o), stderr(&o)))
    }

    /// No planted function ran but as the database's owner: no file, no marker row
    /// of anyone else, no trace in `output`.
    #[track_caller]
    fn assert_nothing_planted_ran(&self, output: &str) {
        assert!(
            !output.contains("planted "),
            "planted code ran in airlock's session: {output}"
        );
        let files: Vec<_> = std::fs::read_dir(self.traces.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(
            files.is_empty(),
            "planted code ran as a superuser: {files:?}"
        );
        let others = self
            .db
            .scalar("SELECT coalesce(string_agg(what, ','), '') FROM public.marker");
        assert_eq!(
            others, "",
            "planted code ran as someone else than the owner"
        );
        assert!(!is_superuser(&self.evil));
    }
}

fn prediction(v: &serde_json::Value, line: u64) -> &serde_json::Value {
    v["predictions"]["predictions"]
        .as_array()
        .unwrap_or_else(|| panic!("no predictions: {v:#}"))
        .iter()
        .find(|p| p["line"] == line)
        .unwrap_or_else(|| panic!("no prediction at line {line}: {v:#}"))
}

/// Finding 1: `plan` on the deploy login never calls the enum's cast (the keys are
/// the labels, by enum_out) nor the planted `>` (the CHECK is "cannot tell here",
/// naming the operator and its owner); an honest CHECK is still predicted. `dossier
/// --db` and `rehearse` ask the same questions and say the same.
#[test]
fn plan_dossier_and_rehearse_never_call_a_planted_cast_or_operator() {
    let d = Door::new("door_plan");
    d.plant();
    let conn = d.deploy_conn();
    let b = d.bundle(
        "b.tar.gz",
        "ALTER TABLE shop.acct ADD CONSTRAINT pos CHECK (amount > 0);\n\
         ALTER TABLE shop.acct ADD CONSTRAINT small CHECK (amount < 100);\n\
         ALTER TABLE shop.acct ALTER COLUMN amount SET NOT NULL;\n",
        "ALTER TABLE shop.acct DROP CONSTRAINT IF EXISTS pos, DROP CONSTRAINT IF EXISTS small;\n",
    );
    let (c, out) = d.run(&conn, &["plan", &b]);
    d.assert_nothing_planted_ran(&out);
    assert_eq!(c, 1, "the honest CHECK fails on 'bronze': {out}");
    let v: serde_json::Value = serde_json::from_str(out.lines().next().unwrap_or(""))
        .unwrap_or_else(|_| {
            serde_json::from_str(&out[..out.rfind('}').map_or(0, |i| i + 1)]).expect("plan --json")
        });
    let hostile = prediction(&v, 1);
    // Code a role defines stops the question: cannot tell (issue 86), not "not
    // predictable" (the honest CHECK's failure makes the plan NO-GO all the same).
    assert_eq!(hostile["outcome"], "cannot-tell", "{hostile:#}");
    let why = hostile["reason"].as_str().unwrap();
    assert!(
        why.contains("cannot tell here")
            && why.contains(">(numeric,integer)")
            && why.contains(&d.evil),
        "{why}"
    );
    let honest = prediction(&v, 2);
    assert_eq!(honest["outcome"], "fails", "{honest:#}");
    assert_eq!(honest["count"], 1);
    assert_eq!(
        honest["keys"][0], "bronze",
        "the key by enum_out, not the cast"
    );
    assert_eq!(prediction(&v, 3)["outcome"], "passes");

    // The human plan says it too.
    let human = airlock(d.dir(), &["plan", &b, "--trust", "rm.pub", "--db", &conn]);
    d.assert_nothing_planted_ran(&format!("{}{}", stdout(&human), stderr(&human)));
    assert!(
        stdout(&human).contains("cannot tell here"),
        "{}",
        stdout(&human)
    );

    // dossier --db asks through the same door.
    let html = d.dir().join("d.html");
    let o = airlock(
        d.dir(),
        &[
            "dossier",
            &b,
            "--trust",
            "rm.pub",
            "--db",
            &conn,
            "--out",
            html.to_str().unwrap(),
        ],
    );
    d.assert_nothing_planted_ran(&format!("{}{}", stdout(&o), stderr(&o)));
    let page = std::fs::read_to_string(&html).unwrap_or_default();
    assert!(
        page.contains("cannot tell here"),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );

    // rehearse: its predictions stop at the honest failure before any clone.
    let (c, out) = d.run(&conn, &["rehearse", &b]);
    d.assert_nothing_planted_ran(&out);
    assert_eq!(c, 1, "{out}");

    // Without the honest failure the rehearsal runs: bundle SQL on the clone runs the
    // planted `>` as the owner (its declared role), airlock's own questions never.
    let b2 = d.bundle(
        "b2.tar.gz",
        "ALTER TABLE shop.acct ADD CONSTRAINT pos CHECK (amount > 0);\n",
        "ALTER TABLE shop.acct DROP CONSTRAINT IF EXISTS pos;\n",
    );
    // Plan cannot tell (exit 8, never GO); the rehearsal is what settles it: it goes
    // on to the clone, which runs the statement.
    let (c, out) = d.run(&conn, &["plan", &b2]);
    d.assert_nothing_planted_ran(&out);
    assert_eq!(c, 8, "{out}");
    let (c, out) = d.run(&conn, &["rehearse", &b2]);
    d.assert_nothing_planted_ran(&out);
    assert_eq!(c, 0, "{out}");
    assert!(out.contains("cannot tell here"), "{out}");
    assert!(out.contains("the clone below runs it"), "{out}");
}

/// Finding 1, superuser login: the bundle-role check refuses (the owner's SQL may not
/// run on a superuser's login; on a superuser-owned database, SQL that runs as a
/// superuser may not run beside code a non-superuser owns) before any question of the
/// data is asked.
#[test]
fn a_refused_bundle_role_asks_the_data_nothing() {
    let d = Door::make("door_refused", false);
    d.plant();
    let b = d.bundle(
        "b.tar.gz",
        "ALTER TABLE shop.acct ADD CONSTRAINT pos CHECK (amount > 0);\n\
         ALTER TABLE shop.acct ALTER COLUMN amount SET NOT NULL;\n",
        "SELECT 1;\n",
    );
    for owned_by_superuser in [false, true] {
        if owned_by_superuser {
            d.db.exec(&format!(
                "ALTER DATABASE \"{}\" OWNER TO CURRENT_USER",
                d.db.name
            ));
        }
        let (c, out) = d.run(&d.db.conn(), &["plan", &b]);
        d.assert_nothing_planted_ran(&out);
        assert_ne!(c, 0, "{out}");
        let v: serde_json::Value =
            serde_json::from_str(&out[..out.rfind('}').map_or(0, |i| i + 1)]).expect("plan --json");
        let row = |name: &str| {
            v["checks"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["check"] == name)
                .cloned()
                .unwrap_or_else(|| panic!("no {name}: {v:#}"))
        };
        assert_eq!(row("bundle-role")["verdict"], "FAIL", "{v:#}");
        assert_eq!(row("predicted-failures")["verdict"], "SKIPPED", "{v:#}");
        assert!(v["predictions"].is_null(), "{v:#}");
        // dossier --db: the same plan, the same refusal, no question asked.
        let html = d.dir().join("d.html");
        let o = airlock(
            d.dir(),
            &[
                "dossier",
                &b,
                "--trust",
                "rm.pub",
                "--db",
                &d.db.conn(),
                "--out",
                html.to_str().unwrap(),
            ],
        );
        d.assert_nothing_planted_ran(&format!("{}{}", stdout(&o), stderr(&o)));
        // rehearse refuses at its bundle SQL role step, before its predictions.
        let (c, out) = d.run(&d.db.conn(), &["rehearse", &b]);
        d.assert_nothing_planted_ran(&out);
        assert_ne!(c, 0, "{out}");
    }
}

/// The `data` part of `public.wide` in `fingerprint --json` output.
fn wide_part(out: &str) -> (String, String) {
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect(out);
    let p = v["parts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["kind"] == "data" && p["name"].as_str().unwrap().contains("wide"))
        .unwrap_or_else(|| panic!("no data part for wide: {v:#}"));
    (
        p["name"].as_str().unwrap().to_string(),
        p["hash"].as_str().unwrap().to_string(),
    )
}

/// Finding 2: `fingerprint --data` never calls the cast a table's owner made of its
/// row type, so the owner cannot choose what is hashed; the row's text is the same
/// as the I/O cast's was (the old `(t.*)::text`, computed here), so fingerprints of
/// databases without a planted cast do not change.
#[test]
fn fingerprint_data_never_calls_a_row_types_cast_and_hashes_the_same_text() {
    let d = Door::new("door_fp");
    d.db.exec_as(
        &d.evil,
        "CREATE TYPE public.tier AS ENUM ('gold', 'silver');
         CREATE TABLE public.wide (k public.tier, n numeric(10,2), t text, a int[], j jsonb,
           at timestamptz, b bytea, r int4range, z text);
         INSERT INTO public.wide VALUES ('gold', 1.5, 'a \"quoted\", (x)', '{1,NULL,3}', '{\"k\": [1]}',
           '2024-02-29 12:00+00', '\\x00ff', '[1,5)', NULL), (NULL, NULL, '', '{}', 'null', NULL, '', 'empty', 'z');
         GRANT SELECT ON public.wide TO PUBLIC;",
    );
    // What the code before the door hashed for this table: (t.*)::text.
    let old = |name: &str| {
        d.db.scalar(&format!(
            "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, MDY'; SET extra_float_digits = 1; SET bytea_output = hex; \
             SELECT encode(sha256(convert_to('data', 'UTF8') || '\\x00'::bytea || convert_to('{name}', 'UTF8') \
               || '\\x00'::bytea || convert_to('v2 ' || (SELECT count(*)::text || ' ' || \
               COALESCE(sum(hashtextextended((t.*)::text COLLATE \"C\", 0))::text, '0') FROM ONLY public.wide t), 'UTF8')), 'hex')"
        ))
    };
    let (c, out) = d.run_plain(&d.db.conn(), &["fingerprint", "--data"]);
    assert_eq!(c, 0, "{out}");
    let (name, hash) = wide_part(&out);
    assert_eq!(hash, old(&name), "the data fingerprint of a table changed");
    d.db.exec_as(
        &d.evil,
        &format!(
            "CREATE FUNCTION public.row_text(public.wide) RETURNS text LANGUAGE plpgsql AS $$ {} RETURN 'same'; END $$;
             CREATE CAST (public.wide AS text) WITH FUNCTION public.row_text(public.wide);",
            d.planted("row_text")
        ),
    );
    for conn in [d.db.conn(), d.deploy_conn()] {
        for level in ["--data", "--data-strict"] {
            let (c, out) = d.run_plain(&conn, &["fingerprint", level]);
            d.assert_nothing_planted_ran(&out);
            assert_eq!(c, 0, "{out}");
            if level == "--data" {
                assert_eq!(
                    wide_part(&out).1,
                    hash,
                    "the owner's cast chose what was hashed"
                );
            }
        }
    }
}

/// Plant code behind every operator, cast and type the target's roles can create,
/// and behind what reading a relation can run: operators on numeric, integer and text
/// in public, and `=(oid, regclass)` and `=(oid, regtype)`, which beat `pg_catalog`'s
/// `oid = oid` in a catalog question asked under the bundle's search_path; casts from the attacker's enum, composite and table row types to text;
/// a domain whose CHECK calls a planted function; a row security policy calling one;
/// a view calling one.
fn plant_everything(d: &Door) {
    d.plant();
    let p = |w: &str| d.planted(w);
    d.db.exec_as(
        &d.evil,
        &format!(
            "CREATE FUNCTION public.eq(integer, numeric) RETURNS boolean LANGUAGE plpgsql AS $$ {} RETURN true; END $$;
             CREATE OPERATOR public.= (LEFTARG = integer, RIGHTARG = numeric, FUNCTION = public.eq);
             CREATE FUNCTION public.oideq(oid, regclass) RETURNS boolean LANGUAGE plpgsql AS $$ {} RETURN $1 OPERATOR(pg_catalog.=) $2::oid; END $$;
             CREATE OPERATOR public.= (LEFTARG = oid, RIGHTARG = regclass, FUNCTION = public.oideq);
             CREATE FUNCTION public.typeq(oid, regtype) RETURNS boolean LANGUAGE plpgsql AS $$ {} RETURN $1 OPERATOR(pg_catalog.=) $2::oid; END $$;
             CREATE OPERATOR public.= (LEFTARG = oid, RIGHTARG = regtype, FUNCTION = public.typeq);
             CREATE FUNCTION public.cat(text, integer) RETURNS text LANGUAGE plpgsql AS $$ {} RETURN 'x'; END $$;
             CREATE OPERATOR public.|| (LEFTARG = text, RIGHTARG = integer, FUNCTION = public.cat);
             CREATE FUNCTION public.lt(numeric, integer) RETURNS boolean LANGUAGE plpgsql AS $$ {} RETURN true; END $$;
             CREATE OPERATOR public.< (LEFTARG = numeric, RIGHTARG = integer, FUNCTION = public.lt);
             CREATE TYPE public.pair AS (a integer, b text);
             CREATE FUNCTION public.pair_text(public.pair) RETURNS text LANGUAGE plpgsql AS $$ {} RETURN 'x'; END $$;
             CREATE CAST (public.pair AS text) WITH FUNCTION public.pair_text(public.pair);
             CREATE FUNCTION public.dom_ok(integer) RETURNS boolean LANGUAGE plpgsql AS $$ {} RETURN true; END $$;
             CREATE DOMAIN public.posint AS integer CHECK (public.dom_ok(VALUE));
             CREATE TABLE public.things (id integer PRIMARY KEY, p public.pair, n public.posint, k public.tier);
             INSERT INTO public.things VALUES (1, ROW(1, 'a'), 1, 'gold');
             CREATE FUNCTION public.things_text(public.things) RETURNS text LANGUAGE plpgsql AS $$ {} RETURN 'x'; END $$;
             CREATE CAST (public.things AS text) WITH FUNCTION public.things_text(public.things);
             CREATE FUNCTION public.pol_ok(integer) RETURNS boolean LANGUAGE plpgsql AS $$ {} RETURN true; END $$;
             CREATE TABLE public.guarded (id integer);
             INSERT INTO public.guarded VALUES (1);
             ALTER TABLE public.guarded ENABLE ROW LEVEL SECURITY;
             CREATE POLICY p ON public.guarded USING (public.pol_ok(id));
             CREATE FUNCTION public.view_fn(integer) RETURNS integer LANGUAGE plpgsql AS $$ {} RETURN 1; END $$;
             CREATE VIEW public.v AS SELECT public.view_fn(id) AS id FROM public.things;
             GRANT SELECT ON public.things, public.guarded, public.v TO PUBLIC;",
            p("eq"), p("oideq"), p("typeq"), p("cat"), p("lt"), p("pair_text"), p("dom_ok"), p("things_text"), p("pol_ok"), p("view_fn")
        ),
    );
}

/// Every command on one login: nothing planted runs (bundle SQL may run the planted
/// `>` as the database's owner, its declared role). `applies`: whether the bundle
/// role lets the release run on this login.
fn every_command(d: &Door, conn: &str, applies: bool) {
    let b = d.bundle(
        "every.tar.gz",
        "ALTER TABLE shop.acct ADD CONSTRAINT pos CHECK (amount > 0);\n\
         ALTER TABLE shop.acct ADD CONSTRAINT small CHECK (amount < 1000);\n\
         ALTER TABLE shop.acct ALTER COLUMN amount SET NOT NULL;\n\
         DELETE FROM shop.acct WHERE amount > 100000;\n\
         UPDATE shop.acct SET amount = amount WHERE k = 'gold' AND amount > 100000;\n",
        "ALTER TABLE shop.acct DROP CONSTRAINT IF EXISTS pos, DROP CONSTRAINT IF EXISTS small, \
         ALTER COLUMN amount DROP NOT NULL;\n",
    );
    let html = d.dir().join("every.html");
    let html = html.to_str().unwrap();
    let mut exits = vec![];
    let with_bundle: &[&[&str]] = &[
        &["plan", &b],
        &["dossier", &b, "--out", html],
        &["gate", &b],
        &["rehearse", &b],
        &["apply", &b],
        &["audit", &b],
        &["rollback", &b],
    ];
    // A table whose row security would apply to the login is refused, never read
    // through its policy: what reads every table fails closed, saying so.
    let closed = |c: i32, out: &str| {
        assert!(c == 0 || out.contains("row-level security"), "{out}");
    };
    for args in with_bundle {
        let (c, out) = d.run(conn, args);
        d.assert_nothing_planted_ran(&out);
        if args[0] == "rehearse" && applies {
            closed(c, &out);
        }
        exits.push((args[0], c));
    }
    for args in [
        &["status", "--verify-chain"][..],
        &["fingerprint"],
        &["fingerprint", "--rows"],
        &["fingerprint", "--data"],
        &["fingerprint", "--data-strict"],
    ] {
        let (c, out) = d.run_plain(conn, args);
        d.assert_nothing_planted_ran(&out);
        closed(c, &out);
        exits.push((args[0], c));
    }
    let exit = |name: &str| exits.iter().find(|(n, _)| *n == name).unwrap().1;
    if applies {
        // The planted `>` stops the CHECK's question: plan cannot tell (exit 8, issue
        // 86), never GO; apply, which predicts nothing, runs.
        assert_eq!(exit("plan"), 8, "{exits:?}");
        assert_eq!(exit("gate"), 0, "{exits:?}");
        assert_eq!(exit("apply"), 0, "{exits:?}");
        assert_eq!(exit("rollback"), 0, "{exits:?}");
    } else {
        assert_ne!(exit("plan"), 0, "{exits:?}");
        assert_ne!(exit("apply"), 0, "{exits:?}");
    }
    assert_eq!(exit("status"), 0, "{exits:?}");
    assert_eq!(exit("fingerprint"), 0, "{exits:?}");
}

/// Issue 66 "done when": every command, on the deploy login `airlock setup` makes and
/// on the superuser login, with code planted behind everything the target's roles can
/// create: nothing planted runs in airlock's sessions.
#[test]
fn no_command_runs_planted_code_on_the_deploy_login() {
    let d = Door::new("door_every_deploy");
    plant_everything(&d);
    every_command(&d, &d.deploy_conn(), true);
}

#[test]
fn no_command_runs_planted_code_on_the_superuser_login() {
    let d = Door::make("door_every_super", false);
    plant_everything(&d);
    every_command(&d, &d.db.conn(), false);
}

/// The proof's temporary view (and the derived grants' one) would fire an enabled DDL
/// event trigger: then nothing is asked (the trigger is named), and the trigger never
/// fires for them. (Only a superuser makes an event trigger; it is limited to CREATE
/// VIEW here because the gate and probe harness makes temporary objects of other
/// kinds, outside the door.)
#[test]
fn an_event_trigger_is_never_fired_by_the_proof() {
    let d = Door::new("door_evt");
    d.plant();
    d.db.exec(&format!(
        "CREATE FUNCTION public.on_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$ {} END $$;
         CREATE EVENT TRIGGER airlock_door_evt ON ddl_command_start WHEN TAG IN ('CREATE VIEW') EXECUTE FUNCTION public.on_ddl();",
        d.planted("on_ddl")
    ));
    let b = d.bundle(
        "b.tar.gz",
        "ALTER TABLE shop.acct ALTER COLUMN amount SET NOT NULL;\n",
        "SELECT 1;\n",
    );
    let (_, out) = d.run(&d.deploy_conn(), &["plan", &b]);
    d.assert_nothing_planted_ran(&out);
    assert!(
        out.contains("cannot tell here (event trigger airlock_door_evt"),
        "{out}"
    );
    d.db.exec("DROP EVENT TRIGGER airlock_door_evt");
}

/// The predictions' questions of the catalog are fixed and name every function,
/// operator and type in `pg_catalog`, so the door asks no proof of them: under a
/// bundle search_path that puts `public` before `pg_catalog`, where an unqualified
/// `oid = oid`, `oid < 16384`, `to_regclass(…)` or `format_type(…)` would be the
/// planted ones, `plan` still answers every question (before: each catalog question
/// was refused by its proof, "cannot tell here") and runs nothing planted.
#[test]
fn the_catalog_questions_reach_nothing_planted_under_a_path_that_puts_pg_catalog_last() {
    let d = Door::new("door_fixed");
    d.plant();
    let p = |w: &str| d.planted(w);
    d.db.exec_as(
        &d.evil,
        &format!(
            "CREATE FUNCTION public.oideq(oid, oid) RETURNS boolean LANGUAGE plpgsql AS $$ {} RETURN true; END $$;
             CREATE OPERATOR public.= (LEFTARG = oid, RIGHTARG = oid, FUNCTION = public.oideq);
             CREATE FUNCTION public.oidlt(oid, integer) RETURNS boolean LANGUAGE plpgsql AS $$ {} RETURN true; END $$;
             CREATE OPERATOR public.< (LEFTARG = oid, RIGHTARG = integer, FUNCTION = public.oidlt);
             CREATE FUNCTION public.to_regclass(text) RETURNS regclass LANGUAGE plpgsql AS $$ {} RETURN NULL; END $$;
             CREATE FUNCTION public.format_type(oid, integer) RETURNS text LANGUAGE plpgsql AS $$ {} RETURN 'x'; END $$;",
            p("oideq"),
            p("oidlt"),
            p("to_regclass"),
            p("format_type")
        ),
    );
    d.db.exec_as(
        &d.owner,
        "CREATE TABLE shop.parent (id int PRIMARY KEY, v int);
         CREATE TABLE shop.child (id int PRIMARY KEY, pid int, note text);
         CREATE TABLE shop.gone (id int);
         INSERT INTO shop.parent VALUES (1, NULL), (2, 2);
         INSERT INTO shop.child VALUES (1, 1, 'a'), (2, 3, 'b'), (3, 3, 'b');
         INSERT INTO shop.gone VALUES (1), (2);
         ANALYZE shop.parent, shop.child, shop.gone;",
    );
    let s = MiniSource::new(
        &d.dir().join("src-fixed"),
        &d.db.name,
        "SELECT true AS ready",
        &[(
            "one",
            "ALTER TABLE shop.parent ALTER COLUMN v SET NOT NULL;\n\
             ALTER TABLE shop.child ADD CONSTRAINT child_pid FOREIGN KEY (pid) REFERENCES shop.parent;\n\
             ALTER TABLE shop.child ADD CONSTRAINT child_note UNIQUE (note);\n\
             ALTER TABLE shop.child ALTER COLUMN note TYPE varchar(40);\n\
             DROP TABLE shop.gone;\n",
            false,
        )],
        "SELECT 1;\n",
    );
    let toml = s.dir.join("bundle.toml");
    let text = std::fs::read_to_string(&toml).unwrap().replacen(
        "\n\n[params.code]",
        "\nsearch_path = [\"public\", \"pg_catalog\"]\n\n[params.code]",
        1,
    );
    assert!(text.contains("search_path"));
    std::fs::write(&toml, text).unwrap();
    pack(d.dir(), &s.dir, "rm.key", "fixed.tar.gz");

    let (c, out) = d.run(&d.deploy_conn(), &["plan", "fixed.tar.gz"]);
    d.assert_nothing_planted_ran(&out);
    assert_eq!(c, 1, "{out}");
    let v: serde_json::Value =
        serde_json::from_str(&out[..out.rfind('}').map_or(0, |i| i + 1)]).expect("plan --json");
    assert!(!out.contains("cannot tell here"), "{out}");
    let not_null = prediction(&v, 1);
    assert_eq!(
        (&not_null["outcome"], &not_null["count"]),
        (&"fails".into(), &1.into()),
        "{not_null:#}"
    );
    let fk = prediction(&v, 2);
    assert_eq!(
        (&fk["outcome"], &fk["count"]),
        (&"fails".into(), &2.into()),
        "the referenced table's primary key was read: {fk:#}"
    );
    let unique = prediction(&v, 3);
    assert_eq!(
        (&unique["outcome"], &unique["count"]),
        (&"fails".into(), &2.into()),
        "{unique:#}"
    );
    assert_eq!(prediction(&v, 4)["outcome"], "passes", "{v:#}");
    let destroys = v["predictions"]["destroys"].as_array().expect("destroys");
    let gone = destroys
        .iter()
        .find(|x| x["line"] == 5)
        .unwrap_or_else(|| panic!("{v:#}"));
    assert_eq!(gone["rows"], 2, "{gone:#}");
}

/// The functions [`plant_attached`] attaches, one per site.
const ATTACHED: [&str; 7] = ["k_acct", "k_ix", "k_pi", "k_st", "k_pt", "k_ck", "k_pk"];

/// Issue 74, findings 1 and 3: code a role attaches to a table runs when a read of it
/// is merely *planned* (PostgreSQL const-folds it), though no question names it. The
/// attacker's IMMUTABLE functions sit in every such site: an index expression on the
/// table the release changes (`shop.acct`), an index expression, a partial index's
/// predicate, a statistics expression, a partition's index expression, an inheritance
/// child's CHECK and a partition key.
fn plant_attached(d: &Door) {
    d.plant();
    let mut fns = String::new();
    for f in ATTACHED {
        fns.push_str(&format!(
            "CREATE FUNCTION public.{f}() RETURNS integer LANGUAGE plpgsql IMMUTABLE AS $$ {} RETURN 0; END $$;\n",
            d.planted(f)
        ));
    }
    d.db.exec_as(&d.evil, &fns);
    d.db.exec_as(
        &d.owner,
        "CREATE INDEX acct_k ON shop.acct ((amount + public.k_acct()));
         CREATE TABLE shop.ix (id integer); INSERT INTO shop.ix VALUES (1);
         CREATE INDEX ix_k ON shop.ix ((id + public.k_ix()));
         CREATE TABLE shop.pi (id integer); INSERT INTO shop.pi VALUES (1);
         CREATE INDEX pi_k ON shop.pi (id) WHERE id > public.k_pi();
         CREATE TABLE shop.st (id integer); INSERT INTO shop.st VALUES (1);
         CREATE STATISTICS shop.st_k ON (id + public.k_st()) FROM shop.st;
         CREATE TABLE shop.pt (id integer) PARTITION BY RANGE (id);
         CREATE TABLE shop.pt1 PARTITION OF shop.pt FOR VALUES FROM (0) TO (100);
         CREATE INDEX pt1_k ON shop.pt1 ((id + public.k_pt()));
         CREATE TABLE shop.par (id integer);
         CREATE TABLE shop.kid (CHECK (id > public.k_ck())) INHERITS (shop.par);
         CREATE TABLE shop.pk (id integer) PARTITION BY RANGE ((id + public.k_pk()));
         CREATE TABLE shop.pk1 PARTITION OF shop.pk FOR VALUES FROM (0) TO (100);
         INSERT INTO shop.pt VALUES (1); INSERT INTO shop.kid VALUES (5); INSERT INTO shop.pk VALUES (1);
         GRANT USAGE ON SCHEMA shop TO PUBLIC;
         GRANT SELECT ON ALL TABLES IN SCHEMA shop TO PUBLIC;",
    );
}

/// Issue 74, findings 1 and 3, on both logins: `fingerprint` at every level, `plan`,
/// `dossier --db`, `gate`, `rehearse`, `apply`, `audit`, `rollback` and `status`
/// plan no table whose attached code a role defines. Before the fix, `fingerprint
/// --rows` on the superuser login ran every planted function as the superuser (the
/// trace files), and `plan` on the deploy login ran `k_acct` as the deploy login.
#[test]
fn no_command_plans_a_table_with_code_a_role_attached() {
    for superuser in [true, false] {
        let d = if superuser {
            Door::make("door_att_super", false)
        } else {
            Door::new("door_att_deploy")
        };
        plant_attached(&d);
        let conn = if superuser {
            d.db.conn()
        } else {
            d.deploy_conn()
        };
        // The schema fingerprint reads catalogs only.
        let (c, out) = d.run_plain(&conn, &["fingerprint"]);
        d.assert_nothing_planted_ran(&out);
        assert_eq!(c, 0, "{out}");
        for level in ["--rows", "--data", "--data-strict"] {
            let (c, out) = d.run_plain(&conn, &["fingerprint", level]);
            d.assert_nothing_planted_ran(&out);
            assert_eq!(c, 5, "superuser {superuser} {level}: {out}");
            assert!(out.contains("attached-code"), "{out}");
            for f in ATTACHED {
                assert!(
                    out.contains(&format!("function public.{f}()")) && out.contains(&d.evil),
                    "superuser {superuser} {level} does not name {f}: {out}"
                );
            }
            for site in [
                "index shop.acct_k",
                "index shop.pi_k",
                "statistics object shop.st_k",
                "index shop.pt1_k",
                "on table shop.kid",
                "table shop.pk",
            ] {
                assert!(out.contains(site), "{level} does not name {site}: {out}");
            }
        }
        let b = d.bundle(
            "att.tar.gz",
            "ALTER TABLE shop.acct ADD CONSTRAINT small CHECK (amount < 1000);\n\
             ALTER TABLE shop.acct ALTER COLUMN amount SET NOT NULL;\n",
            "ALTER TABLE shop.acct DROP CONSTRAINT IF EXISTS small, ALTER COLUMN amount DROP NOT NULL;\n",
        );
        let html = d.dir().join("att.html");
        let html = html.to_str().unwrap();
        for args in [
            &["plan", &b][..],
            &["dossier", &b, "--out", html],
            &["gate", &b],
            &["rehearse", &b],
            &["apply", &b],
            &["audit", &b],
            &["rollback", &b],
        ] {
            let (c, out) = d.run(&conn, args);
            d.assert_nothing_planted_ran(&out);
            if !superuser && args[0] == "plan" {
                // Issue 86, finding 2: code a role attached stops the prediction, so
                // plan cannot tell: its own verdict and exit code, never GO.
                assert_eq!(c, 8, "{out}");
                let v: serde_json::Value =
                    serde_json::from_str(&out[..out.rfind('}').map_or(0, |i| i + 1)])
                        .expect("plan --json");
                assert_eq!(v["verdict"], "CANNOT-TELL", "{v:#}");
                let row = v["checks"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|c| c["check"] == "predicted-failures")
                    .unwrap_or_else(|| panic!("{v:#}"));
                assert_eq!(
                    (&row["verdict"], &row["exit_code"]),
                    (&"CANNOT-TELL".into(), &8.into()),
                    "{row:#}"
                );
                assert!(
                    row["hint"].as_str().unwrap().contains("airlock rehearse"),
                    "{row:#}"
                );
                let p = prediction(&v, 1);
                assert_eq!(p["outcome"], "cannot-tell", "{p:#}");
                let why = p["reason"].as_str().unwrap();
                assert!(
                    why.contains("cannot tell here")
                        && why.contains("k_acct(), in index shop.acct_k")
                        && why.contains(&d.evil),
                    "{why}"
                );
            }
            if !superuser && args[0] == "dossier" {
                // The page's first screen says it too, and what to do.
                let page = std::fs::read_to_string(html).expect("the page");
                assert!(
                    page.contains("CANNOT TELL: code a database role attached"),
                    "{out}"
                );
                assert!(page.contains("airlock rehearse"), "{out}");
                assert!(out.contains("\"verdict\": \"CANNOT-TELL\""), "{out}");
            }
            if !superuser && args[0] == "rehearse" {
                assert_eq!(c, 5, "{out}");
                assert!(out.contains("function public.k_acct()"), "{out}");
            }
            if !superuser && ["apply", "rollback"].contains(&args[0]) {
                assert_eq!(c, 0, "{} on the deploy login: {out}", args[0]);
            }
        }
        if !superuser {
            let o = airlock(d.dir(), &["plan", &b, "--trust", "rm.pub", "--db", &conn]);
            let (c, out) = (code(&o), format!("{}{}", stdout(&o), stderr(&o)));
            d.assert_nothing_planted_ran(&out);
            assert_eq!(c, 8, "{out}");
            assert!(out.contains("CANNOT TELL (exit 8)"), "{out}");
            assert!(
                out.contains("code a database role attached kept airlock from predicting"),
                "{out}"
            );
        }
        let (c, out) = d.run_plain(&conn, &["status", "--verify-chain"]);
        d.assert_nothing_planted_ran(&out);
        assert_eq!(c, 0, "{out}");
    }
}

/// Issue 74, finding 2: a plain trigger on the table the release writes queues a
/// deferred constraint trigger on `q1`; fired by airlock's `SET CONSTRAINTS ALL
/// IMMEDIATE`, it defers again and queues one on `q2`, which fires at COMMIT, after
/// the login's last check, as the deploy login: `ALTER ROLE session_user PASSWORD`.
/// Before the fix apply exited 0 and the owner had the login. Now the transaction is
/// read-only before the last check: COMMIT fails, nothing is applied, the password
/// is not set.
#[test]
fn a_trigger_at_commit_cannot_change_the_deploy_login() {
    let d = Door::new("door_commit");
    d.db.exec_as(
        &d.owner,
        "CREATE TABLE shop.orders (id integer);
         CREATE TABLE shop.q1 (id integer);
         CREATE TABLE shop.q2 (id integer);
         GRANT USAGE ON SCHEMA shop TO PUBLIC;
         GRANT INSERT ON shop.q1, shop.q2 TO PUBLIC;
         CREATE FUNCTION shop.to_q1() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN INSERT INTO shop.q1 VALUES (NEW.id); RETURN NEW; END $$;
         CREATE TRIGGER orders_q1 AFTER INSERT ON shop.orders FOR EACH ROW EXECUTE FUNCTION shop.to_q1();
         CREATE FUNCTION shop.q1_fires() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN SET CONSTRAINTS ALL DEFERRED; INSERT INTO shop.q2 VALUES (NEW.id); RETURN NULL; END $$;
         CREATE CONSTRAINT TRIGGER q1_later AFTER INSERT ON shop.q1 DEFERRABLE INITIALLY DEFERRED
           FOR EACH ROW EXECUTE FUNCTION shop.q1_fires();
         CREATE FUNCTION shop.q2_fires() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN
             IF current_user::text <> (SELECT pg_catalog.pg_get_userbyid(d.datdba) FROM pg_catalog.pg_database d
                                        WHERE d.datname = current_database())::text THEN
               EXECUTE format('ALTER ROLE %I PASSWORD %L', session_user, 'owned-at-commit');
             END IF;
             RETURN NULL;
           END $$;
         CREATE CONSTRAINT TRIGGER q2_later AFTER INSERT ON shop.q2 DEFERRABLE INITIALLY DEFERRED
           FOR EACH ROW EXECUTE FUNCTION shop.q2_fires();",
    );
    let b = d.bundle(
        "commit.tar.gz",
        "INSERT INTO shop.orders VALUES (1);\n",
        "DELETE FROM shop.orders;\n",
    );
    let password = || {
        d.db.scalar(&format!(
            "SELECT (rolpassword IS NOT NULL)::text FROM pg_authid WHERE rolname = '{}'",
            d.deploy
        ))
    };
    assert_eq!(password(), "false");
    let (c, out) = d.run(&d.deploy_conn(), &["apply", &b]);
    assert_eq!(password(), "false", "the deploy login's password was set");
    let version: i64 = d.db.scalar("SHOW server_version_num").parse().unwrap();
    if version >= 180000 {
        // PostgreSQL 18 runs an AFTER trigger as the role that queued its event: the
        // chain's last trigger runs as the owner, who cannot change the login, so the
        // release may apply; the login is kept either way.
        assert!(c == 0 || c == 5, "{out}");
        return;
    }
    assert_eq!(c, 5, "{out}");
    assert!(
        out.contains("code ran after airlock's last statement"),
        "{out}"
    );
    assert!(out.contains("read-only transaction"), "{out}");
    assert_eq!(d.db.scalar("SELECT count(*)::text FROM shop.orders"), "0");
    assert_eq!(d.db.scalar("SELECT count(*)::text FROM shop.q2"), "0");
    assert_eq!(
        d.db.scalar("SELECT count(*)::text FROM airlock.ledger"),
        "0",
        "a ledger row was committed"
    );
}
