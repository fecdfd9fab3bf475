//! `plan` derives every grant the gate role needs for the gates, the preflight, the
//! verify probe and the rollback probe, schemas included, also for what the release
//! itself creates (those can only be granted once it exists: plan says so and names
//! them); and a probe refused for a missing grant names that grant at apply.

mod util;
use std::path::{Path, PathBuf};
use util::*;

struct Setup {
    t: tempfile::TempDir,
    db: TestDb,
    _roles: DropRoles,
    gate: String,
}

impl Setup {
    /// A database with schema `ex` (tables `pre` and `back`, nothing granted), a gate
    /// role with TEMP on it.
    fn new(tag: &str) -> Setup {
        let db = TestDb::new(tag);
        let gate = role_name("gg_gate");
        db.exec(&format!(
            "CREATE ROLE {gate} NOLOGIN; GRANT TEMP ON DATABASE \"{}\" TO {gate};
             CREATE SCHEMA ex; CREATE TABLE ex.pre (i int); CREATE TABLE ex.back (i int);",
            db.name
        ));
        Setup {
            t: keyed_dir(),
            _roles: DropRoles(vec![gate.clone()]),
            db,
            gate,
        }
    }

    fn dir(&self) -> &Path {
        self.t.path()
    }

    /// The tier creates schema `app` and `app.t`; the verify probe reads `app.t`, the
    /// preflight `ex.pre`, the rollback probe `ex.back`.
    fn bundle(&self) -> PathBuf {
        let src = self.dir().join("src");
        write(
            &src.join("bundle.toml"),
            &format!(
                "[bundle]\nname = \"gg\"\nversion = \"1\"\nsequence = 1\n\n[target]\ndatabase = \"{}\"\n\n\
                 [preflight]\nfile = \"sql/pre.sql\"\nexpect = {{ n = \"0\" }}\n\n\
                 [[tier]]\nname = \"one\"\nfiles = [\"sql/tier.sql\"]\n\n\
                 [verify]\nfile = \"sql/verify.sql\"\nexpect = {{ n = \"0\" }}\n\n\
                 [rollback]\nfiles = [\"sql/undo.sql\"]\nprobe = \"sql/back.sql\"\nexpect = {{ n = \"0\" }}\n",
                self.db.name
            ),
        );
        write(
            &src.join("sql/tier.sql"),
            "CREATE SCHEMA app;\nCREATE TABLE app.t (i int);\n",
        );
        write(&src.join("sql/undo.sql"), "DROP SCHEMA app CASCADE;\n");
        write(
            &src.join("sql/pre.sql"),
            "SELECT 'n'::text AS key, count(*)::text AS value FROM ex.pre\n",
        );
        write(
            &src.join("sql/verify.sql"),
            "SELECT 'n'::text AS key, count(*)::text AS value FROM app.t\n",
        );
        write(
            &src.join("sql/back.sql"),
            "SELECT 'n'::text AS key, count(*)::text AS value FROM ex.back\n",
        );
        pack(self.dir(), &src, "rm.key", "b.tar.gz")
    }

    fn run(&self, b: &Path, args: &[&str]) -> std::process::Output {
        let conn = self.db.conn();
        let mut all = args.to_vec();
        all.extend([
            b.to_str().unwrap(),
            "--trust",
            "rm.pub",
            "--db",
            &conn,
            "--gate-role",
            &self.gate,
        ]);
        airlock(self.dir(), &all)
    }
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn plan_derives_the_grants_of_every_probe_and_of_what_the_release_creates() {
    let s = Setup::new("gg_plan");
    let b = s.bundle();
    let j = json(&s.run(&b, &["--json", "plan"]));
    let g = &j["gate_grants"];
    assert_eq!(
        strings(&g["statements"]),
        vec![
            format!("GRANT USAGE ON SCHEMA ex TO {};", s.gate),
            format!("GRANT SELECT ON ex.back, ex.pre TO {};", s.gate),
        ],
        "{g}"
    );
    // What the release creates: named, with where the grant must be given.
    assert_eq!(
        strings(&g["after_release"]),
        vec![
            format!("GRANT USAGE ON SCHEMA app TO {};", s.gate),
            format!("GRANT SELECT ON app.t TO {};", s.gate),
        ],
        "{g}"
    );
    assert_eq!(g["unresolved"], serde_json::json!(null), "{g}");
    let human = stdout(&s.run(&b, &["plan"]));
    assert!(
        human.contains(&format!("GRANT USAGE ON SCHEMA app TO {};", s.gate)),
        "{human}"
    );
}

#[test]
fn apply_names_the_missing_usage_on_the_schema_the_verify_probe_reads() {
    let s = Setup::new("gg_apply");
    let b = s.bundle();
    // What plan says can be granted now, granted; the schema the release creates not.
    s.db.exec(&format!(
        "GRANT USAGE ON SCHEMA ex TO {0}; GRANT SELECT ON ex.pre, ex.back TO {0};",
        s.gate
    ));
    let before = s.db.dump();
    let o = s.run(&b, &["apply"]);
    expect_code(&o, 5);
    let err = stderr(&o);
    assert!(
        err.contains(&format!("GRANT USAGE ON SCHEMA app TO {}", s.gate)),
        "{err}"
    );
    assert!(!err.contains("GRANT TEMP"), "{err}");
    assert_eq!(s.db.dump(), before);
}

/// An imported bundle's rollback probe asks `to_regclass('schema.table') IS NULL`: the
/// name is text, so the server records no dependency on it, yet the gate role needs
/// USAGE on the schema (or the probe is refused). plan derives it; and a probe refused
/// for it at rollback names it.
#[test]
fn a_rollback_probe_naming_a_relation_as_text_needs_usage_on_its_schema() {
    let s = Setup::new("gg_regclass");
    s.db.exec(&format!(
        "CREATE SCHEMA keep; GRANT USAGE ON SCHEMA ex TO {0}; GRANT SELECT ON ex.pre, ex.back TO {0};",
        s.gate
    ));
    let src = s.dir().join("src");
    write(
        &src.join("bundle.toml"),
        &format!(
            "[bundle]\nname = \"gg\"\nversion = \"1\"\nsequence = 1\n\n[target]\ndatabase = \"{}\"\n\n\
             [[tier]]\nname = \"one\"\nfiles = [\"sql/tier.sql\"]\n\n\
             [rollback]\nfiles = [\"sql/undo.sql\"]\nprobe = \"sql/gone.sql\"\nexpect = {{ gone = \"true\" }}\n",
            s.db.name
        ),
    );
    write(&src.join("sql/tier.sql"), "CREATE TABLE keep.n (i int);\n");
    write(&src.join("sql/undo.sql"), "DROP TABLE keep.n;\n");
    write(
        &src.join("sql/gone.sql"),
        "SELECT 'gone'::text AS key, (to_regclass('keep.n') IS NULL)::text AS value\n",
    );
    let b = pack(s.dir(), &src, "rm.key", "b.tar.gz");
    let j = json(&s.run(&b, &["--json", "plan"]));
    assert_eq!(
        strings(&j["gate_grants"]["statements"]),
        vec![format!("GRANT USAGE ON SCHEMA keep TO {};", s.gate)],
        "{j}"
    );
    expect_code(&s.run(&b, &["apply"]), 0);
    let before = s.db.dump();
    let o = s.run(&b, &["rollback"]);
    expect_code(&o, 5);
    assert!(
        stderr(&o).contains(&format!("GRANT USAGE ON SCHEMA keep TO {}", s.gate)),
        "{}",
        stderr(&o)
    );
    assert_eq!(s.db.dump(), before);
}

/// Release walk, finding 6: a release whose ungated tier `schema` comes before tier
/// `backfill` behind gate `go`; the gate reads `ex.flags`, the preflight `ex.pre`, and
/// the gate role has no grant yet, so both fail for the missing USAGE on schema `ex`.
fn before_the_grants(tag: &str) -> (Setup, PathBuf) {
    let s = Setup::new(tag);
    s.db.exec("CREATE TABLE ex.flags (flag text); INSERT INTO ex.flags VALUES ('go');");
    let src = s.dir().join("src");
    write(
        &src.join("bundle.toml"),
        &format!(
            "[bundle]\nname = \"gg\"\nversion = \"1\"\nsequence = 1\n\n[target]\ndatabase = \"{}\"\n\n\
             [[gate]]\nname = \"go\"\nfile = \"sql/gate.sql\"\n\n\
             [preflight]\nfile = \"sql/pre.sql\"\nexpect = {{ n = \"0\" }}\n\n\
             [[tier]]\nname = \"schema\"\nfiles = [\"sql/schema.sql\"]\n\n\
             [[tier]]\nname = \"backfill\"\nfiles = [\"sql/backfill.sql\"]\ngates = [\"go\"]\n\n\
             [rollback]\nfiles = [\"sql/undo.sql\"]\n",
            s.db.name
        ),
    );
    write(
        &src.join("sql/gate.sql"),
        "SELECT EXISTS (SELECT 1 FROM ex.flags WHERE flag = 'go') AS ready\n",
    );
    write(
        &src.join("sql/pre.sql"),
        "SELECT 'n'::text AS key, count(*)::text AS value FROM ex.pre\n",
    );
    write(
        &src.join("sql/schema.sql"),
        "CREATE TABLE ex.added (i int);\n",
    );
    write(
        &src.join("sql/backfill.sql"),
        "INSERT INTO ex.added VALUES (1);\n",
    );
    write(
        &src.join("sql/undo.sql"),
        "DROP TABLE IF EXISTS ex.added;\n",
    );
    let b = pack(s.dir(), &src, "rm.key", "b.tar.gz");
    (s, b)
}

/// `plan --json`'s row for `name`.
fn row(plan: &serde_json::Value, name: &str) -> serde_json::Value {
    plan["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == name)
        .unwrap_or_else(|| panic!("no {name} row: {plan:#}"))
        .clone()
}

/// The gate's missing grant names the gate role, as the preflight's does (the walk
/// saw `GRANT USAGE ON SCHEMA shop TO <the gate role>` beside the role's name).
#[test]
fn the_gates_missing_grant_names_the_gate_role_as_the_preflights_does() {
    let (s, b) = before_the_grants("gg_gate_named");
    let grant = format!("GRANT USAGE ON SCHEMA ex TO {}", s.gate);
    let j = json(&s.run(&b, &["--json", "plan"]));
    assert_eq!(row(&j, "gates")["verdict"], "BLOCKED", "{j:#}");
    assert_eq!(row(&j, "preflight")["verdict"], "FAIL", "{j:#}");
    for name in ["gates", "preflight"] {
        let said = row(&j, name).to_string();
        assert!(said.contains(&grant), "{name}: {said}");
    }
    assert!(!j.to_string().contains("<the gate role>"), "{j:#}");
    let o = s.run(&b, &["--json", "gate"]);
    assert_eq!(code(&o), 3, "{}", stdout(&o));
    assert!(stdout(&o).contains(&grant), "{}", stdout(&o));
}

/// BLOCKED with the preflight failing too: no tier can run now, so plan names none
/// for `--through` (nor `--wait`, which apply would refuse as hopeless); its exit code
/// is the gates' (3), as apply's is, and apply `--through` the ungated tier is refused
/// by the preflight (5) with nothing changed.
#[test]
fn a_failing_preflight_leaves_no_tier_to_run_now_through_the_gates() {
    let (s, b) = before_the_grants("gg_through");
    let o = s.run(&b, &["--json", "plan"]);
    let j = json(&o);
    assert_eq!(code(&o), 3, "{j:#}");
    assert_eq!(row(&j, "preflight")["exit_code"], 5, "{j:#}");
    assert_eq!(j["runnable_now"], serde_json::Value::Null, "{j:#}");
    let human = stdout(&s.run(&b, &["plan"]));
    assert!(!human.contains("can run now"), "{human}");
    assert!(
        !human.contains("--through") && !human.contains("--wait"),
        "{human}"
    );
    assert!(human.contains("other checks above fail too"), "{human}");
    // The dossier's page says the same of the ungated tier.
    let o = s.run(&b, &["--json", "dossier", "--out", "page.html"]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let page = std::fs::read_to_string(s.dir().join("page.html")).unwrap();
    assert!(!page.contains("can run now"), "{page}");
    assert!(
        page.contains("(schema) need no gate, but cannot run before the failing checks pass"),
        "{page}"
    );
    let before = s.db.dump();
    let o = s.run(&b, &["--json", "apply", "--through", "schema", "--yes"]);
    assert_eq!(code(&o), 5, "{}{}", stdout(&o), stderr(&o));
    let o = s.run(&b, &["apply", "--yes"]);
    assert_eq!(code(&o), 3, "{}{}", stdout(&o), stderr(&o));
    assert_eq!(s.db.dump(), before);
    assert_eq!(s.db.ledger_rows(), "none");
    // Once the grants are there, the gate opens: nothing else stops it.
    s.db.exec(&format!(
        "GRANT USAGE ON SCHEMA ex TO {0}; GRANT SELECT ON ex.pre, ex.flags TO {0};",
        s.gate
    ));
    expect_code(&s.run(&b, &["--json", "plan"]), 0);
}

/// Every path under `d` (directories included), in name order: an empty directory
/// left behind shows here, where `snapshot` (files only) would miss it.
fn paths(d: &Path) -> Vec<String> {
    walkdir::WalkDir::new(d)
        .sort_by_file_name()
        .into_iter()
        .map(|e| e.unwrap().path().display().to_string())
        .collect()
}

/// "The destination is checked before anything changes": checked, not created. An
/// apply refused before its first write (by the preflight, or by the gates) leaves no
/// receipts directory behind, the default one or one further down.
#[test]
fn an_apply_refused_before_anything_changes_leaves_no_receipts_folder() {
    let (s, b) = before_the_grants("gg_no_folder");
    let before = (s.db.dump(), paths(s.dir()));
    for extra in [&[][..], &["--out", "deep/receipts"][..]] {
        for (args, want) in [(&["--through", "schema"][..], 5), (&[][..], 3)] {
            let mut all = vec!["apply", "--yes"];
            all.extend(args);
            all.extend(extra);
            let o = s.run(&b, &all);
            assert_eq!(code(&o), want, "{all:?}: {}{}", stdout(&o), stderr(&o));
            assert_eq!((s.db.dump(), paths(s.dir())), before, "{all:?}");
        }
    }
    assert!(!s.dir().join("receipts").exists());
    assert_eq!(s.db.ledger_rows(), "none");
}

#[test]
fn plan_says_the_gate_roles_grants_are_in_place_once_given() {
    let s = Setup::new("gg_in_place");
    let b = s.bundle();
    let j = json(&s.run(&b, &["--json", "plan"]));
    let given = strings(&j["gate_grants"]["statements"]);
    assert!(!given.is_empty(), "{j}");
    for g in &given {
        s.db.exec(g);
    }
    // Given: nothing left to run now, and plan says they are in place.
    let j = json(&s.run(&b, &["--json", "plan"]));
    let g = &j["gate_grants"];
    assert_eq!(strings(&g["statements"]), Vec::<String>::new(), "{g}");
    assert_eq!(strings(&g["in_place"]), given, "{g}");
    let human = stdout(&s.run(&b, &["plan"]));
    assert!(
        human.contains(&format!(
            "the gate role {} already holds the grants this bundle's gates and probes read now (in place):",
            s.gate
        )),
        "{human}"
    );
    assert!(
        !human.contains(&format!("GRANT SELECT ON ex.back, ex.pre TO {};", s.gate)),
        "a grant in place is printed as one to run: {human}"
    );
    // What the release creates is still to be granted, and said.
    assert!(
        human.contains(&format!("GRANT SELECT ON app.t TO {};", s.gate)),
        "{human}"
    );
}
