//! One bundle, many databases: `[target] database` as a glob pattern or a list of
//! names and patterns (issue 52). The name guard accepts exactly the databases the
//! fleet names, every command shows the fleet, a bundle signed before fleets keeps its
//! bytes and meaning, and hostile patterns never reach a signature.

mod util;
use std::path::{Path, PathBuf};
use util::*;

/// A mini source whose `[target] database` is the TOML value `target` (a string or a
/// list), packed with `d/rm.key` into `d/OUT`.
fn fleet_bundle(d: &Path, target: &str, out: &str) -> String {
    let s = MiniSource::new(
        &d.join(format!("src-{out}")),
        "PLACEHOLDER",
        "SELECT true AS ready",
        &[(
            "structure",
            "CREATE SCHEMA app; CREATE TABLE app.t(i int);",
            false,
        )],
        "DROP SCHEMA IF EXISTS app CASCADE;",
    );
    retarget(&s.dir, target);
    pack(d, &s.dir, "rm.key", out);
    out.into()
}

/// Rewrite the source's `database = "PLACEHOLDER"` line to `database = TARGET`.
fn retarget(src: &Path, target: &str) {
    let toml = src.join("bundle.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    assert!(text.contains("database = \"PLACEHOLDER\""));
    write(
        &toml,
        &text.replace(
            "database = \"PLACEHOLDER\"",
            &format!("database = {target}"),
        ),
    );
}

fn apply(d: &Path, bundle: &str, db: &str) -> std::process::Output {
    run_json(
        d,
        "rm.pub",
        db,
        &[
            "apply",
            bundle,
            "--param",
            "code=A1",
            "--receipt-dir",
            "receipts",
        ],
    )
}

/// The tables of schema `app` in `db` (the tier makes `app.t`).
fn app_tables(db: &TestDb) -> String {
    db.scalar("SELECT count(*)::text FROM pg_tables WHERE schemaname = 'app'")
}

/// A database whose name the fleet pattern does not match: nothing may be written to
/// it, and the name guard says what the bundle is for.
#[track_caller]
fn refused_with_nothing_written(d: &Path, bundle: &str, other: &TestDb, says: &str) {
    let before = other.dump();
    let o = apply(d, bundle, &other.conn());
    expect_code(&o, 5);
    let doc = json(&o);
    assert_eq!(doc["kind"], "name-guard", "{doc}");
    let error = doc["error"].as_str().unwrap();
    assert!(
        error.contains(&other.name) && error.contains(says),
        "{error}"
    );
    assert!(doc["hint"].as_str().unwrap().contains(says), "{doc}");
    assert_eq!(other.ledger_rows(), "none");
    assert_eq!(
        other.dump(),
        before,
        "a refused apply changed {}",
        other.name
    );
}

#[test]
fn a_glob_bundle_applies_on_each_matching_database_and_is_refused_elsewhere() {
    let t = keyed_dir();
    let d = t.path();
    let (a, b) = (TestDb::new("fleetg"), TestDb::new("fleetg"));
    let other = TestDb::new("fleeto");
    let pattern = format!("airlock_t_fleetg_{}_*", std::process::id());
    let bundle = fleet_bundle(d, &format!("\"{pattern}\""), "glob.tar.gz");

    // plan names the pattern and the match, in --json and for people.
    let o = run_json(
        d,
        "rm.pub",
        &a.conn(),
        &["plan", &bundle, "--param", "code=A1"],
    );
    expect_code(&o, 0);
    let plan = json(&o);
    assert_eq!(plan["database"], a.name.as_str());
    assert_eq!(plan["target_database"], serde_json::json!([pattern]));
    assert_eq!(plan["target_match"], pattern.as_str());
    let human = airlock(
        d,
        &[
            "plan",
            &bundle,
            "--trust",
            "rm.pub",
            "--db",
            &a.conn(),
            "--param",
            "code=A1",
        ],
    );
    expect_code(&human, 0);
    assert!(
        stdout(&human).contains(&format!(
            "fleet: the databases matching {pattern:?}; {} matches {pattern:?}",
            a.name
        )),
        "{}",
        stdout(&human)
    );

    for db in [&a, &b] {
        let o = apply(d, &bundle, &db.conn());
        expect_code(&o, 0);
        let receipt = json(&o);
        assert_eq!(receipt["database"], db.name.as_str());
        assert_eq!(receipt["target_database"], serde_json::json!([pattern]));
        assert_eq!(app_tables(db), "1");
        assert_eq!(db.ledger_rows(), "1");
        // The host remembers each tenant's ledger head apart (server + database).
        let s = airlock(d, &["--json", "status", "--db", &db.conn()]);
        expect_code(&s, 0);
        assert_eq!(json(&s)["remembered_head"]["state"], "held", "{}", db.name);
    }
    // The receipts of two tenants never share a name.
    let receipts: Vec<_> = std::fs::read_dir(d.join("receipts")).unwrap().collect();
    assert_eq!(receipts.len(), 2);

    // plan on the database it does not match: NO-GO at the database row, exit 5.
    let o = run_json(
        d,
        "rm.pub",
        &other.conn(),
        &["plan", &bundle, "--param", "code=A1"],
    );
    expect_code(&o, 5);
    let plan = json(&o);
    assert_eq!(plan["verdict"], "NO-GO");
    assert_eq!(plan["checks"][3]["check"], "database");
    assert!(plan.get("target_match").is_none(), "{plan}");
    refused_with_nothing_written(d, &bundle, &other, &format!("{pattern:?}"));
}

#[test]
fn a_list_bundle_applies_on_its_names_and_patterns_and_is_refused_elsewhere() {
    let t = keyed_dir();
    let d = t.path();
    let named = TestDb::new("fleetn");
    let by_pattern = TestDb::new("fleetl");
    let other = TestDb::new("fleeto");
    let pattern = format!("airlock_t_fleetl_{}_[0-9]*", std::process::id());
    let target = format!("[\"{}\", \"{pattern}\"]", named.name);
    let bundle = fleet_bundle(d, &target, "list.tar.gz");

    // lint and inspect show the fleet.
    let o = airlock(
        d,
        &[
            "--json",
            "lint",
            d.join("src-list.tar.gz/src").to_str().unwrap(),
        ],
    );
    expect_code(&o, 0);
    assert_eq!(
        json(&o)["target_database"],
        serde_json::json!([named.name, pattern])
    );
    let o = airlock(d, &["inspect", &bundle, "--trust", "rm.pub"]);
    expect_code(&o, 0);
    assert!(
        stdout(&o).contains(&format!(
            "target:    fleet: the databases matching {:?} or {pattern:?}",
            named.name
        )),
        "{}",
        stdout(&o)
    );

    for (db, entry) in [
        (&named, named.name.as_str()),
        (&by_pattern, pattern.as_str()),
    ] {
        let o = run_json(
            d,
            "rm.pub",
            &db.conn(),
            &["plan", &bundle, "--param", "code=A1"],
        );
        expect_code(&o, 0);
        assert_eq!(json(&o)["target_match"], entry);
        expect_code(&apply(d, &bundle, &db.conn()), 0);
        assert_eq!(app_tables(db), "1");
        // Applied: the second run is the ledger's refusal, typed as nothing-to-do.
        let again = apply(d, &bundle, &db.conn());
        expect_code(&again, 6);
        let doc = json(&again);
        assert_eq!(doc["kind"], "refused");
        assert_eq!(doc["refusal_kind"], "already-applied", "{doc}");
        let o = run_json(
            d,
            "rm.pub",
            &db.conn(),
            &["plan", &bundle, "--param", "code=A1"],
        );
        expect_code(&o, 6);
        assert_eq!(json(&o)["refusal_kind"], "already-applied");
    }
    refused_with_nothing_written(d, &bundle, &other, &format!("{:?}", named.name));
}

#[test]
fn a_fleet_bundle_needs_the_database_named_on_the_connection() {
    let t = keyed_dir();
    let d = t.path();
    let db = TestDb::new("fleetg");
    let pattern = format!("airlock_t_fleetg_{}_*", std::process::id());
    let bundle = fleet_bundle(d, &format!("\"{pattern}\""), "glob.tar.gz");
    // A connection string that names the server and no database (and no PGDATABASE).
    let no_name = "host=/var/run/postgresql";
    for cmd in ["plan", "apply", "gate"] {
        let o = run_json(d, "rm.pub", no_name, &[cmd, &bundle, "--param", "code=A1"]);
        expect_code(&o, 2);
        let doc = json(&o);
        assert_eq!(doc["kind"], "usage", "{cmd}: {doc}");
        assert!(
            doc["error"]
                .as_str()
                .unwrap()
                .contains(&format!("{pattern:?}")),
            "{cmd}: {doc}"
        );
        assert!(
            doc["hint"]
                .as_str()
                .unwrap()
                .contains("--db \"dbname=NAME\""),
            "{cmd}: {doc}"
        );
    }
    let o = airlock(
        d,
        &[
            "--json", "status", &bundle, "--trust", "rm.pub", "--db", no_name,
        ],
    );
    expect_code(&o, 2);
    assert_eq!(db.ledger_rows(), "none");
    // PGDATABASE names it as well as --db does (when --db is not given).
    let o = airlock_env(
        d,
        &[
            "--json", "plan", &bundle, "--trust", "rm.pub", "--param", "code=A1",
        ],
        &[("PGDATABASE", &db.name)],
    );
    expect_code(&o, 0);
    // A single-name bundle still defaults to its one database.
    let one = fleet_bundle(d, &format!("\"{}\"", db.name), "one.tar.gz");
    let o = run_json(d, "rm.pub", no_name, &["plan", &one, "--param", "code=A1"]);
    expect_code(&o, 0);
    assert_eq!(json(&o)["database"], db.name.as_str());
    assert!(json(&o).get("target_database").is_none());
}

/// The manifest entry of a packed bundle.
fn manifest_bytes(bundle: &Path) -> Vec<u8> {
    use std::io::Read;
    let mut raw = vec![];
    flate2::read::GzDecoder::new(std::fs::File::open(bundle).unwrap())
        .read_to_end(&mut raw)
        .unwrap();
    let mut ar = tar::Archive::new(&raw[..]);
    let mut first = ar.entries().unwrap().next().unwrap().unwrap();
    assert_eq!(&*first.path_bytes(), b"manifest.json");
    let mut data = vec![];
    first.read_to_end(&mut data).unwrap();
    data
}

#[test]
fn a_single_name_keeps_its_manifest_bytes_and_a_pattern_is_recorded_as_a_list() {
    let t = keyed_dir();
    let d = t.path();
    fleet_bundle(d, "\"app\"", "one.tar.gz");
    fleet_bundle(d, "\"tenant_*\"", "glob.tar.gz");
    let one = String::from_utf8(manifest_bytes(&d.join("one.tar.gz"))).unwrap();
    let glob = String::from_utf8(manifest_bytes(&d.join("glob.tar.gz"))).unwrap();
    // The exact bytes a single name always had (the reference release's pinned id is
    // tests/stream.rs a_small_bundle_is_byte_identical_to_format_1_as_packed_before_chunks).
    assert!(one.contains("\"target\":{\"database\":\"app\"}"), "{one}");
    assert!(
        glob.contains("\"target\":{\"database\":[\"tenant_*\"]}"),
        "{glob}"
    );
}

#[test]
fn a_manifest_string_with_a_glob_character_stays_one_exact_name() {
    use airlock::minisign::SecretKey;
    use sha2::Digest;
    use util::craft::{gzip, tar};
    // A bundle signed before fleets for a database literally named `PATTERN`: its
    // manifest holds the string, and means that one name, not a pattern.
    let t = keyed_dir();
    let d = t.path();
    let db = TestDb::new("fleetg");
    let literal = format!("airlock_t_fleetg_{}_*", std::process::id());
    let packed = fleet_bundle(d, "\"stand-in\"", "old.tar.gz");
    let mut es = {
        use std::io::Read;
        let mut raw = vec![];
        flate2::read::GzDecoder::new(std::fs::File::open(d.join(&packed)).unwrap())
            .read_to_end(&mut raw)
            .unwrap();
        let mut ar = ::tar::Archive::new(&raw[..]);
        ar.entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let name = String::from_utf8(e.path_bytes().into_owned()).unwrap();
                let mut data = vec![];
                e.read_to_end(&mut data).unwrap();
                util::craft::file(&name, &data)
            })
            .collect::<Vec<_>>()
    };
    let mut m: serde_json::Value = serde_json::from_slice(&es[0].data).unwrap();
    assert_eq!(m["target"]["database"], "stand-in");
    m["target"]["database"] = literal.clone().into();
    let mut bytes = serde_json::to_vec(&m).unwrap();
    bytes.push(b'\n');
    let parsed = airlock::manifest::Manifest::parse(&bytes).unwrap();
    let id = hex::encode(sha2::Sha256::digest(&bytes));
    let key = SecretKey::parse(&std::fs::read_to_string(d.join("rm.key")).unwrap(), None).unwrap();
    let sig = key.sign(
        &bytes,
        &airlock::manifest::trusted_comment(&parsed, &id, 1_700_000_000),
    );
    es[0].data = bytes;
    es[1].data = sig.to_file_text().into_bytes();
    std::fs::write(d.join("then.tar.gz"), gzip(&tar(&es))).unwrap();
    expect_code(
        &airlock(d, &["verify", "then.tar.gz", "--trust", "rm.pub"]),
        0,
    );
    // The database matching it as a pattern is not the database it names.
    let before = db.dump();
    let o = apply(d, "then.tar.gz", &db.conn());
    expect_code(&o, 5);
    assert_eq!(json(&o)["kind"], "name-guard");
    assert_eq!(db.ledger_rows(), "none");
    assert_eq!(db.dump(), before);
    // And without --db it connects to that one exact name (which does not exist).
    let o = run_json(
        d,
        "rm.pub",
        "host=/var/run/postgresql",
        &["plan", "then.tar.gz", "--param", "code=A1"],
    );
    assert_eq!(json(&o)["database"], literal.as_str(), "{}", stdout(&o));
}

#[test]
fn hostile_patterns_are_refused_at_lint_and_pack_and_nothing_is_written() {
    let t = keyed_dir();
    let d = t.path();
    let long = format!("\"t_{}*\"", "[ab]".repeat(70));
    let too_long_name = format!("[\"{}\"]", "n".repeat(64));
    let cases: Vec<(String, &str)> = vec![
        ("[]".into(), "empty list"),
        ("[\"\"]".into(), "empty name"),
        ("\"*\"".into(), "no character of its own"),
        ("[\"tenant_1\", \"*\"]".into(), "no character of its own"),
        ("\"*es*\"".into(), "the server's own database"),
        ("\"tenant_[0-9\"".into(), "never closed"),
        ("\"tenant_[9-0]\"".into(), "runs backwards"),
        (long, "bytes, more than 255"),
        (too_long_name, "PostgreSQL cuts database names to 63 bytes"),
        ("[\"a\", \"a\"]".into(), "twice"),
        (
            "7".into(),
            "a database name, or a list of database names and patterns",
        ),
    ];
    for (i, (target, why)) in cases.iter().enumerate() {
        let s = MiniSource::new(
            &d.join(format!("case{i}")),
            "PLACEHOLDER",
            "SELECT true AS ready",
            &[("t", "CREATE TABLE t(i int);", false)],
            "DROP TABLE IF EXISTS t;",
        );
        retarget(&s.dir, target);
        let lint = airlock(d, &["--json", "lint", s.dir.to_str().unwrap()]);
        expect_code(&lint, 2);
        let doc = json(&lint);
        assert!(
            doc["error"].as_str().unwrap().contains(why),
            "{target}: {doc}"
        );
        let out: PathBuf = d.join(format!("case{i}.tar.gz"));
        let packed = airlock(
            d,
            &[
                "--json",
                "pack",
                s.dir.to_str().unwrap(),
                "--key",
                "rm.key",
                "--out",
                out.to_str().unwrap(),
            ],
        );
        expect_code(&packed, 2);
        assert!(json(&packed)["error"].as_str().unwrap().contains(why));
        assert!(!out.exists(), "{target}: pack wrote {}", out.display());
        assert!(leftovers(d).is_empty());
    }
}

#[test]
fn rehearse_accepts_its_clone_for_a_tenant_of_a_fleet_bundle() {
    let t = keyed_dir();
    let d = t.path();
    let db = TestDb::new("fleetg");
    let pattern = format!("airlock_t_fleetg_{}_*", std::process::id());
    let bundle = fleet_bundle(d, &format!("[\"{pattern}\"]"), "glob.tar.gz");
    let before = db.dump();
    let o = run_json(
        d,
        "rm.pub",
        &db.conn(),
        &["rehearse", &bundle, "--param", "code=A1"],
    );
    expect_code(&o, 0);
    assert_eq!(json(&o)["target"], db.name.as_str());
    assert_eq!(db.dump(), before, "rehearse changed the tenant");
    let other = TestDb::new("fleeto");
    let o = run_json(
        d,
        "rm.pub",
        &other.conn(),
        &["rehearse", &bundle, "--param", "code=A1"],
    );
    expect_code(&o, 5);
}

#[test]
fn audit_checks_each_receipt_database_against_the_fleet() {
    let t = keyed_dir();
    let d = t.path();
    let (a, b) = (TestDb::new("fleetg"), TestDb::new("fleetg"));
    let pattern = format!("airlock_t_fleetg_{}_*", std::process::id());
    let bundle = fleet_bundle(d, &format!("\"{pattern}\""), "glob.tar.gz");
    for db in [&a, &b] {
        expect_code(&apply(d, &bundle, &db.conn()), 0);
    }
    // Both tenants' receipts, audited together with their ledgers: each names a
    // database the fleet matches.
    let o = airlock(
        d,
        &[
            "--json",
            "audit",
            &bundle,
            "--trust",
            "rm.pub",
            "--receipt",
            "receipts",
            "--db",
            &a.conn(),
            "--db",
            &b.conn(),
        ],
    );
    let doc = json(&o);
    assert_eq!(
        doc["bundles"][0]["target_database"],
        serde_json::json!([pattern])
    );
    let named: Vec<&serde_json::Value> = doc["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["check"] == "names an audited bundle")
        .collect();
    assert_eq!(named.len(), 2, "{doc}");
    for v in &named {
        assert_eq!(v["verdict"], "PASS", "{v}");
        assert!(v["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("matching {pattern:?}")));
    }
    assert_ne!(doc["verdict"], "FAIL", "{doc}");
    // A receipt whose database the fleet does not match is not a receipt of a run of
    // this bundle: the audit fails on it.
    let file = std::fs::read_dir(d.join("receipts"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".receipt.json"))
        .unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    let mut r: serde_json::Value = serde_json::from_str(&text).unwrap();
    r["database"] = "billing".into();
    std::fs::write(
        d.join("edited.receipt.json"),
        serde_json::to_vec_pretty(&r).unwrap(),
    )
    .unwrap();
    let o = airlock(
        d,
        &[
            "--json",
            "audit",
            &bundle,
            "--trust",
            "rm.pub",
            "--receipt",
            "edited.receipt.json",
        ],
    );
    expect_code(&o, 4);
    let doc = json(&o);
    assert_eq!(doc["verdict"], "FAIL");
    let failed = doc["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["check"] == "names an audited bundle")
        .unwrap();
    assert_eq!(failed["verdict"], "FAIL");
    assert!(
        failed["detail"]
            .as_str()
            .unwrap()
            .contains("\"billing\", which the bundle is not for"),
        "{failed}"
    );
}

#[test]
fn status_names_the_fleet_and_whether_this_database_matches() {
    let t = keyed_dir();
    let d = t.path();
    let db = TestDb::new("fleetg");
    let other = TestDb::new("fleeto");
    let pattern = format!("airlock_t_fleetg_{}_*", std::process::id());
    let bundle = fleet_bundle(d, &format!("\"{pattern}\""), "glob.tar.gz");
    let o = airlock(
        d,
        &[
            "--json",
            "status",
            &bundle,
            "--trust",
            "rm.pub",
            "--db",
            &db.conn(),
        ],
    );
    expect_code(&o, 0);
    let given = &json(&o)["bundles"][0];
    assert_eq!(given["state"], "not-applied");
    assert_eq!(given["target_database"], serde_json::json!([pattern]));
    assert_eq!(given["target_match"], pattern.as_str());
    let o = airlock(
        d,
        &[
            "status",
            &bundle,
            "--trust",
            "rm.pub",
            "--db",
            &other.conn(),
        ],
    );
    expect_code(&o, 0);
    assert!(
        stdout(&o).contains("this database matches none of them"),
        "{}",
        stdout(&o)
    );
}

/// The "reached by the release" verdicts of an audit document, by database.
fn reached(doc: &serde_json::Value) -> std::collections::BTreeMap<String, (String, String)> {
    verdicts_of(doc, "reached by the release")
}

/// The verdicts of an audit document's `check`, by subject: (verdict, detail).
fn verdicts_of(
    doc: &serde_json::Value,
    check: &str,
) -> std::collections::BTreeMap<String, (String, String)> {
    doc["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["check"] == check)
        .map(|v| {
            (
                v["subject"].as_str().unwrap().to_string(),
                (
                    v["verdict"].as_str().unwrap().to_string(),
                    v["detail"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect()
}

/// Issue 75, part 4: a tenant of the fleet with no receipt fails the audit (it never
/// passes for want of a receipt), and `--fleet CONN` finds the fleet's databases on
/// the server by the bundle's own pattern instead of one `--db` each.
#[test]
fn audit_of_a_fleet_fails_a_tenant_the_release_missed_and_finds_the_tenants_by_pattern() {
    let t = keyed_dir();
    let d = t.path();
    let tenants = [
        TestDb::new("fleetm"),
        TestDb::new("fleetm"),
        TestDb::new("fleetm"),
    ];
    let pattern = format!("airlock_t_fleetm_{}_*", std::process::id());
    let bundle = fleet_bundle(d, &format!("\"{pattern}\""), "glob.tar.gz");
    for db in &tenants[..2] {
        expect_code(&apply(d, &bundle, &db.conn()), 0);
    }
    let audit = |extra: &[&str]| {
        let mut args = vec![
            "--json",
            "audit",
            &bundle,
            "--trust",
            "rm.pub",
            "--receipt",
            "receipts",
        ];
        args.extend_from_slice(extra);
        airlock(d, &args)
    };
    let missed = format!("database {}", tenants[2].name);
    // Each tenant given with --db: the third, which the release never reached, fails.
    let dbs: Vec<String> = tenants.iter().map(TestDb::conn).collect();
    let o = audit(&["--db", &dbs[0], "--db", &dbs[1], "--db", &dbs[2]]);
    expect_code(&o, 4);
    let doc = json(&o);
    assert_eq!(doc["verdict"], "FAIL", "{doc:#}");
    let found = reached(&doc);
    assert_eq!(found.len(), 3, "{doc:#}");
    assert_eq!(found[&missed].0, "FAIL", "{found:?}");
    assert!(
        found[&missed].1.contains("no receipt of it names it")
            && found[&missed].1.contains("did not reach this database"),
        "{found:?}"
    );
    for db in &tenants[..2] {
        assert_eq!(found[&format!("database {}", db.name)].0, "PASS");
    }
    // The human report names the tenant and why.
    let human = airlock(
        d,
        &[
            "audit",
            &bundle,
            "--trust",
            "rm.pub",
            "--receipt",
            "receipts",
            "--db",
            &dbs[0],
            "--db",
            &dbs[2],
        ],
    );
    expect_code(&human, 4);
    let text = stdout(&human);
    assert!(
        text.contains(&missed) && text.contains("did not reach this database"),
        "{text}"
    );

    // The same fleet found on the server by the bundle's pattern: every tenant, once.
    let server = "host=/var/run/postgresql dbname=postgres";
    let o = audit(&["--fleet", server]);
    expect_code(&o, 4);
    let doc = json(&o);
    let ledgers: std::collections::BTreeSet<&str> = doc["ledgers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["database"].as_str().unwrap())
        .collect();
    let names: Vec<&str> = tenants.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(doc["ledgers"].as_array().unwrap().len(), 3, "{doc:#}");
    assert_eq!(ledgers, names.iter().copied().collect(), "{doc:#}");
    assert_eq!(reached(&doc)[&missed].0, "FAIL", "{doc:#}");
    // Without receipts, --fleet still sees the tenant whose ledger has no row of it.
    let o = airlock(
        d,
        &[
            "--json", "audit", &bundle, "--trust", "rm.pub", "--fleet", server,
        ],
    );
    expect_code(&o, 4);
    let found = reached(&json(&o));
    assert_eq!(found[&missed].0, "FAIL", "{found:?}");
    assert_eq!(found[&format!("database {}", names[0])].0, "PASS");

    // Once the release reached it, no tenant fails.
    expect_code(&apply(d, &bundle, &tenants[2].conn()), 0);
    let o = audit(&["--fleet", server]);
    let doc = json(&o);
    assert_ne!(doc["verdict"], "FAIL", "{doc:#}");
    assert!(reached(&doc).values().all(|(v, _)| v == "PASS"), "{doc:#}");

    // Bad input: a fleet that is on no database of the server, a connection that is
    // no connection, a tenant given twice. Each refused before any verdict (exit 2).
    let elsewhere = fleet_bundle(
        d,
        &format!("\"airlock_t_nowhere_{}_*\"", std::process::id()),
        "nowhere.tar.gz",
    );
    let o = airlock(
        d,
        &[
            "--json", "audit", &elsewhere, "--trust", "rm.pub", "--fleet", server,
        ],
    );
    expect_code(&o, 2);
    let doc = json(&o);
    assert!(
        doc["error"].as_str().unwrap().contains("no database there"),
        "{doc:#}"
    );
    assert!(doc.get("verdicts").is_none(), "{doc:#}");
    let o = audit(&["--fleet", "host=/var/run/postgresql dbname='unclosed"]);
    expect_code(&o, 2);
    let o = audit(&["--fleet", server, "--db", &dbs[0]]);
    expect_code(&o, 2);
    assert!(
        json(&o)["error"].as_str().unwrap().contains("given twice"),
        "{}",
        stdout(&o)
    );
}

/// Puts a database back to an ordinary one (connections allowed, no template) when
/// the test ends, however it ends, so that it can be dropped.
struct Ordinary(String);

impl Drop for Ordinary {
    fn drop(&mut self) {
        let _ = admin().batch_execute(&format!(
            "ALTER DATABASE \"{0}\" IS_TEMPLATE false; ALTER DATABASE \"{0}\" ALLOW_CONNECTIONS true",
            self.0
        ));
    }
}

/// The "audited as a fleet member" verdicts of an audit document, by database.
fn unaudited(doc: &serde_json::Value) -> std::collections::BTreeMap<String, (String, String)> {
    verdicts_of(doc, "audited as a fleet member")
}

/// Issue 86, finding 6: a tenant the release missed hides from `audit --fleet` when
/// its owner marks it a template (`IS_TEMPLATE true`) or has it refuse connections
/// for the audit's duration; it keeps serving. A fleet never loses a member silently:
/// it is listed, FAIL "it matches the fleet, and was not audited", with why; the
/// audit fails.
#[test]
fn audit_of_a_fleet_fails_a_tenant_hidden_as_a_template_or_closed_to_connections() {
    let t = keyed_dir();
    let d = t.path();
    let tenants = [TestDb::new("fleeth"), TestDb::new("fleeth")];
    let pattern = format!("airlock_t_fleeth_{}_*", std::process::id());
    let bundle = fleet_bundle(d, &format!("\"{pattern}\""), "glob.tar.gz");
    expect_code(&apply(d, &bundle, &tenants[0].conn()), 0);
    let hidden = &tenants[1].name;
    let _ordinary = Ordinary(hidden.clone());
    let server = "host=/var/run/postgresql dbname=postgres";
    for (alter, why) in [
        ("IS_TEMPLATE true", "it is marked a template"),
        ("IS_TEMPLATE false", ""),
        ("ALLOW_CONNECTIONS false", "it refuses connections"),
    ] {
        admin()
            .batch_execute(&format!("ALTER DATABASE \"{hidden}\" {alter}"))
            .expect("alter");
        let o = airlock(
            d,
            &[
                "--json", "audit", &bundle, "--trust", "rm.pub", "--fleet", server,
            ],
        );
        expect_code(&o, 4);
        let doc = json(&o);
        assert_eq!(doc["verdict"], "FAIL", "{alter}: {doc:#}");
        let subject = format!("database {hidden}");
        if why.is_empty() {
            // Ordinary again: read, and failed for the release it missed.
            assert_eq!(reached(&doc)[&subject].0, "FAIL", "{doc:#}");
            assert!(unaudited(&doc).is_empty(), "{doc:#}");
            continue;
        }
        let found = unaudited(&doc);
        assert_eq!(found.len(), 1, "{alter}: {doc:#}");
        let (verdict, detail) = &found[&subject];
        assert_eq!(verdict, "FAIL", "{alter}");
        assert!(
            detail.contains("it matches the fleet, and was not audited") && detail.contains(why),
            "{alter}: {detail}"
        );
        // The tenant that was read still passes.
        assert_eq!(
            reached(&doc)[&format!("database {}", tenants[0].name)].0,
            "PASS",
            "{doc:#}"
        );
    }
    // The human report names it too.
    let o = airlock(
        d,
        &["audit", &bundle, "--trust", "rm.pub", "--fleet", server],
    );
    expect_code(&o, 4);
    let text = stdout(&o);
    assert!(
        text.contains(&format!("database {hidden}: no ledger read"))
            && text.contains("was not audited: it refuses connections"),
        "{text}"
    );
}

/// The verdicts of an audit document about `subject`: (check, verdict, detail).
fn verdicts_about(doc: &serde_json::Value, subject: &str) -> Vec<(String, String, String)> {
    doc["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["subject"] == subject)
        .map(|v| {
            let s = |k: &str| v[k].as_str().unwrap().to_string();
            (s("check"), s("verdict"), s("detail"))
        })
        .collect()
}

/// Issue 88, finding 7: a forged bundle of the release (signed by a key the trust
/// store does not hold) audited with the real one over a `--fleet` fails the audit as
/// a bundle, and only as a bundle: its reach is not a database's failure, so no
/// healthy tenant is charged "the release did not reach this database" for it, with
/// receipts or without.
#[test]
fn audit_of_a_fleet_charges_a_forged_bundle_to_the_bundle_not_to_each_tenant() {
    let t = keyed_dir();
    let d = t.path();
    keygen(d, "forger");
    let tenants = [TestDb::new("fleetf"), TestDb::new("fleetf")];
    let pattern = format!("\"airlock_t_fleetf_{}_*\"", std::process::id());
    let bundle = fleet_bundle(d, &pattern, "real.tar.gz");
    for db in &tenants {
        expect_code(&apply(d, &bundle, &db.conn()), 0);
    }
    // The forgery: the same release's next version, for the same fleet, signed by a
    // key nobody trusts.
    let s = MiniSource::new(
        &d.join("src-forged"),
        "PLACEHOLDER",
        "SELECT true AS ready",
        &[("structure", "DROP SCHEMA app CASCADE;", false)],
        "SELECT 1;",
    );
    retarget(&s.dir, &pattern);
    let toml = s.dir.join("bundle.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    write(
        &toml,
        &text
            .replace("version = \"1.0\"", "version = \"1.2.1\"")
            .replace("sequence = 1", "sequence = 2"),
    );
    pack(d, &s.dir, "forger.key", "forged.tar.gz");
    let server = "host=/var/run/postgresql dbname=postgres";
    for receipts in [true, false] {
        let mut args = vec![
            "--json",
            "audit",
            &bundle,
            "forged.tar.gz",
            "--trust",
            "rm.pub",
            "--fleet",
            server,
        ];
        if receipts {
            args.extend(["--receipt", "receipts"]);
        }
        let o = airlock(d, &args);
        expect_code(&o, 4);
        let doc = json(&o);
        assert_eq!(doc["verdict"], "FAIL", "{doc:#}");
        // The forged bundle fails, as a bundle.
        let forged = verdicts_about(&doc, "forged.tar.gz");
        assert!(
            forged
                .iter()
                .any(|(check, v, _)| check == "threshold" && v == "FAIL"),
            "receipts {receipts}: {forged:?}"
        );
        // Each tenant passes everything, and is judged reached by the real release only.
        for db in &tenants {
            let about = verdicts_about(&doc, &format!("database {}", db.name));
            // (Its rows are unsigned, no operator key at apply: a NOTE says what
            // they prove, and fails nothing.)
            assert!(
                about
                    .iter()
                    .all(|(c, v, _)| v == "PASS" || (c == "ledger rows signed" && v == "NOTE")),
                "receipts {receipts}: {about:#?}"
            );
            let reached: Vec<_> = about
                .iter()
                .filter(|(check, _, _)| check == "reached by the release")
                .collect();
            assert_eq!(reached.len(), 1, "receipts {receipts}: {about:#?}");
            assert!(!reached[0].2.contains("1.2.1"), "{reached:?}");
        }
        // Nothing else failed: the forged bundle is the audit's one failure.
        let failed: Vec<_> = doc["verdicts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| v["verdict"] == "FAIL")
            .map(|v| v["subject"].as_str().unwrap())
            .collect();
        assert!(
            failed.iter().all(|s| *s == "forged.tar.gz"),
            "receipts {receipts}: {failed:?}"
        );
    }
}

/// Issue 88, finding 2, for a fleet: every tenant set up with a deploy login and an
/// auditor's login (`airlock setup --auditor`), the release applied on two of three by
/// the deploy login. `audit --fleet` on the auditor's login, which may only read each
/// ledger, finds every tenant, reads each ledger the deploy login keeps (named), and
/// fails the one the release missed; once it is reached, the audit passes. Reading
/// changed no ledger.
#[test]
fn an_auditors_login_audits_a_fleet_set_up_for_it() {
    let t = keyed_dir();
    let d = t.path();
    let (owner, deployer, auditor) = (
        role_name("fleetowner"),
        role_name("fleetdeployer"),
        role_name("fleetauditor"),
    );
    admin()
        .batch_execute(&format!("CREATE ROLE {owner} NOLOGIN"))
        .unwrap();
    let tenants = [
        TestDb::new("fleetaud"),
        TestDb::new("fleetaud"),
        TestDb::new("fleetaud"),
    ];
    let _roles = DropRoles(vec![auditor.clone(), deployer.clone(), owner.clone()]);
    for db in &tenants {
        db.exec(&format!("ALTER DATABASE \"{}\" OWNER TO {owner}", db.name));
        let out = airlock(
            d,
            &[
                "setup",
                "--db",
                &db.conn(),
                "--login",
                &deployer,
                "--auditor",
                &auditor,
            ],
        );
        expect_code(&out, 0);
    }
    let pattern = format!("airlock_t_fleetaud_{}_*", std::process::id());
    let bundle = fleet_bundle(d, &format!("\"{pattern}\""), "glob.tar.gz");
    let as_deployer = |db: &TestDb| format!("dbname={} user={deployer}", db.name);
    for db in &tenants[..2] {
        expect_code(&apply(d, &bundle, &as_deployer(db)), 0);
    }
    let before: Vec<String> = tenants.iter().map(TestDb::ledger_rows).collect();
    let server = format!("host=/var/run/postgresql dbname=postgres user={auditor}");
    let audit = || {
        airlock(
            d,
            &[
                "--json",
                "audit",
                &bundle,
                "--trust",
                "rm.pub",
                "--receipt",
                "receipts",
                "--fleet",
                &server,
            ],
        )
    };
    let o = audit();
    expect_code(&o, 4);
    let doc = json(&o);
    let ledgers = doc["ledgers"].as_array().unwrap();
    assert_eq!(ledgers.len(), 3, "{doc:#}");
    assert!(
        ledgers.iter().all(|l| l["kept_by"] == deployer.as_str()),
        "{doc:#}"
    );
    let found = reached(&doc);
    let missed = format!("database {}", tenants[2].name);
    assert_eq!(found[&missed].0, "FAIL", "{found:?}");
    for db in &tenants[..2] {
        assert_eq!(
            found[&format!("database {}", db.name)].0,
            "PASS",
            "{found:?}"
        );
    }
    // Once reached, nothing fails (UNVERIFIED, exit 7: the receipts are unsigned).
    expect_code(&apply(d, &bundle, &as_deployer(&tenants[2])), 0);
    let o = audit();
    expect_code(&o, 7);
    let doc = json(&o);
    assert!(reached(&doc).values().all(|(v, _)| v == "PASS"), "{doc:#}");
    let after: Vec<String> = tenants[..2].iter().map(TestDb::ledger_rows).collect();
    assert_eq!(after, before[..2], "reading changed a ledger");
}
