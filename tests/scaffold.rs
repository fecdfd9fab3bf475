//! `airlock new` and param defaults (issue 48, finding 12): a new source lints as
//! written and runs the whole cycle on an empty database; a param with a default may
//! be left out at run time; a refused `new` writes nothing.

mod util;
use util::*;

#[test]
fn a_new_source_lints_packs_applies_with_its_param_default_and_rolls_back() {
    let db = TestDb::new("scaffold");
    let t = keyed_dir();
    let dir = t.path();
    let o = airlock(dir, &["new", "rel", "--database", &db.name]);
    expect_code(&o, 0);
    assert!(
        stdout(&o).contains("airlock pack rel --key"),
        "{}",
        stdout(&o)
    );
    for f in [
        "bundle.toml",
        "sql/gate/ready.sql",
        "sql/rollback/01_undo.sql",
        "runbooks/operator.md",
    ] {
        let text = std::fs::read_to_string(dir.join("rel").join(f)).unwrap();
        assert!(
            text.starts_with("#") || text.starts_with("--"),
            "{f} is not commented"
        );
    }
    expect_code(&airlock(dir, &["lint", "rel"]), 0);
    let o = airlock(
        dir,
        &[
            "pack",
            "rel",
            "--key",
            "rm.key",
            "--out",
            "rel.airlock.tar.gz",
        ],
    );
    expect_code(&o, 0);
    let conn = db.conn();
    let base = ["--trust", "rm.pub", "--db", conn.as_str()];
    let run = |cmd: &str, extra: &[&str]| {
        let mut a = vec![cmd, "rel.airlock.tar.gz"];
        a.extend(extra);
        a.extend(base);
        airlock(dir, &a)
    };
    // No --param ticket: the bundle's default is the value the SQL reads.
    let o = run("apply", &[]);
    expect_code(&o, 0);
    assert_eq!(
        db.scalar("SELECT ticket FROM public.airlock_example"),
        "CHG-0000"
    );
    let o = run("rollback", &[]);
    expect_code(&o, 0);
    assert_eq!(
        db.scalar("SELECT to_regclass('public.airlock_example') IS NULL"),
        "t"
    );
    // Given, the param wins over the default; the ledger records the value used.
    let o = run("apply", &["--param", "ticket=CHG-42"]);
    expect_code(&o, 0);
    assert_eq!(
        db.scalar("SELECT ticket FROM public.airlock_example"),
        "CHG-42"
    );
}

#[test]
fn a_param_default_must_match_its_pattern_and_cannot_be_required() {
    let t = keyed_dir();
    let dir = t.path();
    expect_code(&airlock(dir, &["new", "rel", "--database", "app"]), 0);
    let toml = dir.join("rel/bundle.toml");
    let good = std::fs::read_to_string(&toml).unwrap();
    let bad = good.replace("default = \"CHG-0000\"", "default = \"none\"");
    std::fs::write(&toml, &bad).unwrap();
    let o = airlock(dir, &["lint", "rel"]);
    expect_code(&o, 2);
    assert!(
        stderr(&o).contains("params.ticket.default \"none\" does not match"),
        "{}",
        stderr(&o)
    );
    let both = good.replace(
        "default = \"CHG-0000\"",
        "default = \"CHG-0000\"\nrequired = true",
    );
    std::fs::write(&toml, &both).unwrap();
    let o = airlock(dir, &["lint", "rel"]);
    expect_code(&o, 2);
    assert!(
        stderr(&o).contains("a param with a default is never missing"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn new_refuses_a_directory_that_holds_anything_and_writes_nothing() {
    let t = tempdir();
    let dir = t.path();
    std::fs::create_dir(dir.join("mine")).unwrap();
    write(&dir.join("mine/notes.txt"), "keep me");
    let o = airlock(dir, &["new", "mine", "--database", "app"]);
    expect_code(&o, 2);
    assert!(
        stderr(&o).contains("not an empty directory"),
        "{}",
        stderr(&o)
    );
    let names: Vec<_> = std::fs::read_dir(dir.join("mine"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("notes.txt")]);
    let o = airlock(dir, &["new", "x", "--database", "a\"b"]);
    expect_code(&o, 2);
    assert!(!dir.join("x").exists());
    assert!(
        leftovers(dir).is_empty()
            && !std::fs::read_dir(dir).unwrap().any(|e| e
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(".airlock-new"))
    );
    // An empty directory is fine, as is --out.
    std::fs::create_dir(dir.join("empty")).unwrap();
    expect_code(&airlock(dir, &["new", "empty", "--database", "app"]), 0);
    expect_code(
        &airlock(dir, &["new", "--out", "other", "--database", "app"]),
        0,
    );
    assert!(dir.join("empty/bundle.toml").is_file() && dir.join("other/bundle.toml").is_file());
}

/// `airlock sql`: the SQL a run would send, from the verified bundle, without
/// extracting (issue 48, finding 12); a bundle that does not verify shows nothing.
#[test]
fn the_sql_a_run_sends_is_shown_from_the_verified_bundle() {
    let t = keyed_dir();
    let dir = t.path();
    expect_code(&airlock(dir, &["new", "rel", "--database", "app"]), 0);
    let o = airlock(
        dir,
        &[
            "pack",
            "rel",
            "--key",
            "rm.key",
            "--out",
            "rel.airlock.tar.gz",
        ],
    );
    expect_code(&o, 0);
    let o = airlock(dir, &["sql", "rel.airlock.tar.gz", "--trust", "rm.pub"]);
    expect_code(&o, 0);
    let out = stdout(&o);
    let schema = out
        .find("-- tier 1 schema: sql/tiers/01_schema.sql")
        .expect(&out);
    let data = out
        .find("-- tier 2 data: sql/tiers/02_data.sql")
        .expect(&out);
    assert!(schema < data, "{out}");
    assert!(out.contains("CREATE TABLE public.airlock_example"), "{out}");
    assert!(!out.contains("DROP TABLE"), "{out}");
    let o = airlock(
        dir,
        &[
            "sql",
            "rel.airlock.tar.gz",
            "--trust",
            "rm.pub",
            "--through",
            "schema",
        ],
    );
    assert!(!stdout(&o).contains("tier 2"), "{}", stdout(&o));
    let o = airlock(
        dir,
        &[
            "sql",
            "rel.airlock.tar.gz",
            "--trust",
            "rm.pub",
            "--rollback",
        ],
    );
    assert!(
        stdout(&o).contains("DROP TABLE IF EXISTS public.airlock_example"),
        "{}",
        stdout(&o)
    );
    let o = airlock(
        dir,
        &[
            "--json",
            "sql",
            "rel.airlock.tar.gz",
            "--trust",
            "rm.pub",
            "--checks",
        ],
    );
    let parts: Vec<String> = json(&o)["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["part"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        parts,
        [
            "gate ready",
            "preflight",
            "tier 1 schema",
            "tier 2 data",
            "verify"
        ]
    );
    // Another key's trust store: exit 4, no SQL.
    keygen(dir, "other");
    let o = airlock(dir, &["sql", "rel.airlock.tar.gz", "--trust", "other.pub"]);
    expect_code(&o, 4);
    assert!(!stdout(&o).contains("CREATE TABLE"), "{}", stdout(&o));
}

/// A rehearsal of a bundle the target has applied in full refuses as apply would,
/// before anything is cloned (issue 48, finding 9: it cloned, then failed at apply).
#[test]
fn rehearse_of_a_fully_applied_bundle_refuses_before_cloning() {
    let db = TestDb::new("rehapplied");
    let t = keyed_dir();
    let dir = t.path();
    expect_code(&airlock(dir, &["new", "rel", "--database", &db.name]), 0);
    let o = airlock(
        dir,
        &[
            "pack",
            "rel",
            "--key",
            "rm.key",
            "--out",
            "rel.airlock.tar.gz",
        ],
    );
    expect_code(&o, 0);
    let conn = db.conn();
    let base = [
        "rel.airlock.tar.gz",
        "--trust",
        "rm.pub",
        "--db",
        conn.as_str(),
    ];
    let with = |cmd: &str| {
        let mut a = vec!["--json", cmd];
        a.extend(base);
        airlock(dir, &a)
    };
    expect_code(&with("apply"), 0);
    let o = with("rehearse");
    expect_code(&o, 6);
    let r = json(&o);
    let ledger = r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == "ledger")
        .expect("a ledger step")
        .clone();
    assert_eq!(ledger["verdict"], "FAIL", "{r:#}");
    assert!(
        ledger["detail"]
            .as_str()
            .unwrap()
            .contains("already applied"),
        "{r:#}"
    );
    assert!(r["clone_strategy"].is_null(), "it cloned: {r:#}");
    let clones = db.scalar(&format!(
        "SELECT count(*) FROM pg_database WHERE datname LIKE '{}%' AND datname <> '{}'",
        db.name, db.name
    ));
    assert_eq!(clones, "0");
}

/// `import`'s closing line gives a `pack` command that runs as printed, key included
/// (issue 48, finding 9: `next: airlock pack gm-release` failed, --key required).
#[test]
fn imports_next_step_names_the_key_pack_needs() {
    let t = keyed_dir();
    let dir = t.path();
    write(&dir.join("m/001_a.sql"), "CREATE TABLE a (i int);\n");
    let o = airlock(dir, &["import", "m", "--out", "rel", "--database", "app"]);
    expect_code(&o, 0);
    let out = stdout(&o);
    let next = out
        .lines()
        .find(|l| l.contains("next:"))
        .expect(&out)
        .to_string();
    assert!(next.contains("airlock pack rel --key YOUR.key"), "{next}");
    // And suggests the target's own search_path (issue 47: it said nothing of it).
    assert!(next.contains("[target] search_path"), "{next}");
    let o = airlock(dir, &["pack", "rel", "--key", "rm.key"]);
    expect_code(&o, 0);
}

/// Re-applying an applied bundle is refused before the receipt key is opened (issue
/// 48, finding 7: it spent seconds on the key, or stopped at its passphrase, first).
#[test]
fn a_refused_reapply_never_opens_the_receipt_key() {
    let db = TestDb::new("reapplykey");
    let t = keyed_dir();
    let dir = t.path();
    let pass = [("AIRLOCK_PASSPHRASE", "op-secret")];
    expect_code(&airlock_env(dir, &["keygen", "--out", "op"], &pass), 0);
    expect_code(&airlock(dir, &["trust", "add", "store", "rm.pub"]), 0);
    expect_code(
        &airlock(
            dir,
            &["trust", "add", "store", "op.pub", "--role", "operator"],
        ),
        0,
    );
    expect_code(&airlock(dir, &["new", "rel", "--database", &db.name]), 0);
    let o = airlock(
        dir,
        &[
            "pack",
            "rel",
            "--key",
            "rm.key",
            "--out",
            "rel.airlock.tar.gz",
        ],
    );
    expect_code(&o, 0);
    let conn = db.conn();
    let args = [
        "apply",
        "rel.airlock.tar.gz",
        "--trust",
        "store",
        "--db",
        &conn,
        "--sign-receipt",
        "op.key",
    ];
    expect_code(&airlock_env(dir, &args, &pass), 0);
    // No passphrase now: a run that opened the key would stop there (exit 2).
    let o = airlock(dir, &args);
    expect_code(&o, 6);
    assert!(stderr(&o).contains("already applied"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("passphrase"), "{}", stderr(&o));
}

/// Issue 68, item 9: every doc a new source's files point at is there, and says what
/// they say it does (`bundle.toml`'s fields: the release manager's "The source", not
/// the archive format's page).
#[test]
fn the_docs_a_new_source_points_at_are_there() {
    let t = tempdir();
    let dir = t.path();
    expect_code(&airlock(dir, &["new", "rel", "--database", "shop"]), 0);
    let toml = std::fs::read_to_string(dir.join("rel/bundle.toml")).unwrap();
    let first = toml.lines().take(2).collect::<Vec<_>>().join("\n");
    assert!(
        first.contains("docs/release-manager.md, \"The source\"")
            && !first.contains("bundle-format.md"),
        "{first}"
    );
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let guide = std::fs::read_to_string(root.join("docs/release-manager.md")).unwrap();
    assert!(guide.contains("\n## The source\n"));
    assert!(root.join("schemas/bundle.toml.schema.json").is_file());
}
