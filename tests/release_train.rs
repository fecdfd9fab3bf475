//! The release train (issue 75, part 1): a team keeps writing migrations in its old
//! layout and ships each release through airlock. `import --since PREVIOUS` carries
//! only what no earlier release carried, refuses a released migration edited since (or
//! a new one inserted before the released ones), and the bundle it writes follows the
//! previous release: `plan` names it, and `plan`/`apply` refuse a database where it is
//! not applied. Real server, real binary.

mod util;
use std::path::{Path, PathBuf};
use util::*;

/// A Flyway folder holding `files`.
fn flyway(dir: &Path, files: &[(&str, &str)]) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    dir.to_path_buf()
}

const V1: (&str, &str) = (
    "V1__customer.sql",
    "CREATE TABLE customer (id int PRIMARY KEY, name text NOT NULL);\n",
);
const V2: (&str, &str) = (
    "V2__customer_email.sql",
    "ALTER TABLE customer ADD COLUMN email text;\n",
);
const V3: (&str, &str) = (
    "V3__orders.sql",
    "CREATE TABLE orders (id int PRIMARY KEY, customer_id int REFERENCES customer (id));\n",
);
const V4: (&str, &str) = (
    "V4__orders_idx.sql",
    "CREATE INDEX orders_customer ON orders (customer_id);\n",
);

/// `airlock --json import DIR --out OUT --database DB --bundle-version V [EXTRA…]`.
fn import(
    dir: &Path,
    migrations: &Path,
    out: &str,
    db: &str,
    version: &str,
    extra: &[&str],
) -> std::process::Output {
    let mut a = vec![
        "--json",
        "import",
        migrations.to_str().unwrap(),
        "--out",
        out,
        "--database",
        db,
        "--bundle-version",
        version,
    ];
    a.extend(extra);
    airlock(dir, &a)
}

/// The first release, imported (V1, V2), packed as `r1.tar.gz`.
fn first_release(dir: &Path, migrations: &Path, db: &str) {
    let o = import(dir, migrations, "src1", db, "1.0.0", &["--name", "shop"]);
    expect_code(&o, 0);
    let toml = std::fs::read_to_string(dir.join("src1/bundle.toml")).unwrap();
    assert!(
        toml.contains("[[released]]\nmigration = \"V1__customer\""),
        "{toml}"
    );
    assert!(toml.contains("release = \"1.0.0\""), "{toml}");
    pack(dir, &dir.join("src1"), "rm.key", "r1.tar.gz");
}

#[test]
fn the_next_release_carries_only_the_new_migrations_and_follows_the_first() {
    let t = keyed_dir();
    let dir = t.path();
    let db = TestDb::new("train");
    let m = flyway(&dir.join("migrations"), &[V1, V2]);
    first_release(dir, &m, &db.name);
    // The team writes two more migrations; release 1.0.1 follows 1.0.0.
    flyway(&m, &[V3, V4]);
    let o = import(
        dir,
        &m,
        "src2",
        &db.name,
        "1.0.1",
        &["--since", "r1.tar.gz", "--trust", "rm.pub"],
    );
    expect_code(&o, 0);
    let report = json(&o);
    assert_eq!(
        report["tiers"],
        serde_json::json!(["V3__orders", "V4__orders_idx"]),
        "{report:#}"
    );
    let toml = std::fs::read_to_string(dir.join("src2/bundle.toml")).unwrap();
    assert!(
        toml.contains("name = \"shop\""),
        "the name is the previous one's: {toml}"
    );
    assert!(toml.contains("sequence = 2"), "{toml}");
    assert!(toml.contains("[follows]"), "{toml}");
    for m in [
        "V1__customer",
        "V2__customer_email",
        "V3__orders",
        "V4__orders_idx",
    ] {
        assert!(
            toml.contains(&format!("migration = \"{m}\"")),
            "{m}: {toml}"
        );
    }
    pack(dir, &dir.join("src2"), "rm.key", "r2.tar.gz");
    let run = |cmd: &str, bundle: &str, extra: &[&str]| {
        let mut a = vec![cmd, bundle, "--trust", "rm.pub", "--db", &db.name];
        a.extend(extra);
        let conn = db.conn();
        a[5] = &conn;
        airlock(dir, &a)
    };

    // 1.0.0 is not applied here: plan and apply of 1.0.1 refuse, naming it (exit 6),
    // and nothing is written.
    let before = db.dump();
    for cmd in ["plan", "apply"] {
        let o = run(cmd, "r2.tar.gz", &[]);
        expect_code(&o, 6);
        let all = format!("{}{}", stdout(&o), stderr(&o));
        assert!(
            all.contains("shop 1.0.1 follows shop 1.0.0")
                && all.contains("which is not applied here"),
            "{cmd}: {all}"
        );
    }
    assert_eq!(db.dump(), before, "a refused apply changed the database");

    // 1.0.0 applied only through its first tier: still refused, naming the tier missing.
    expect_code(
        &run("apply", "r1.tar.gz", &["--through", "V1__customer"]),
        0,
    );
    let o = run("apply", "r2.tar.gz", &[]);
    expect_code(&o, 6);
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert!(
        all.contains("tier(s) V2__customer_email not applied"),
        "{all}"
    );
    expect_code(&run("apply", "r1.tar.gz", &[]), 0);

    // plan names the release it follows and runs only the new ones.
    let o = airlock(
        dir,
        &[
            "--json",
            "plan",
            "r2.tar.gz",
            "--trust",
            "rm.pub",
            "--db",
            &db.conn(),
        ],
    );
    expect_code(&o, 0);
    let v = json(&o);
    let row = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "ledger-state")
        .unwrap_or_else(|| panic!("{v:#}"));
    let evidence = row["evidence"].as_str().unwrap();
    assert!(
        evidence.contains("follows shop 1.0.0, applied here at"),
        "{evidence}"
    );
    assert!(
        evidence.contains("apply would run 2 of 2 tier(s): V3__orders, V4__orders_idx"),
        "{evidence}"
    );
    expect_code(&run("apply", "r2.tar.gz", &[]), 0);
    assert_eq!(
        db.scalar("SELECT (to_regclass('orders_customer') IS NOT NULL)::text"),
        "true"
    );
}

#[test]
fn an_edited_or_inserted_migration_is_refused_by_name_and_nothing_is_written() {
    let t = keyed_dir();
    let dir = t.path();
    let m = flyway(&dir.join("migrations"), &[V1, V2]);
    first_release(dir, &m, "shop");
    flyway(&m, &[V3]);

    // An edited released migration.
    std::fs::write(
        m.join(V2.0),
        "ALTER TABLE customer ADD COLUMN email varchar(200);\n",
    )
    .unwrap();
    let o = import(
        dir,
        &m,
        "src2",
        "shop",
        "1.0.1",
        &["--since", "r1.tar.gz", "--trust", "rm.pub"],
    );
    expect_code(&o, 2);
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert!(
        all.contains("V2__customer_email: edited since release 1.0.0 carried it"),
        "{all}"
    );
    assert!(
        !dir.join("src2").exists(),
        "an import refused wrote its source"
    );
    std::fs::write(m.join(V2.0), V2.1).unwrap();

    // A new migration inserted before the last released one.
    std::fs::write(m.join("V1_5__sneaky.sql"), "CREATE TABLE sneaky (i int);\n").unwrap();
    let o = import(
        dir,
        &m,
        "src2",
        "shop",
        "1.0.1",
        &["--since", "r1.tar.gz", "--trust", "rm.pub"],
    );
    expect_code(&o, 2);
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert!(
        all.contains("V1_5__sneaky is new, but sorts before V2__customer_email"),
        "{all}"
    );
    assert!(!dir.join("src2").exists());
    std::fs::remove_file(m.join("V1_5__sneaky.sql")).unwrap();

    // A --since bundle of another history.
    let other = flyway(
        &dir.join("billing"),
        &[("V1__invoice.sql", "CREATE TABLE invoice (i int);\n")],
    );
    let o = import(
        dir,
        &other,
        "src3",
        "shop",
        "1.0.1",
        &["--since", "r1.tar.gz", "--trust", "rm.pub"],
    );
    expect_code(&o, 2);
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert!(all.contains("carried none of the migrations"), "{all}");
    assert!(!dir.join("src3").exists());

    // --since without the trust store to verify it with; and a tampered bundle.
    let o = airlock(
        dir,
        &[
            "import",
            m.to_str().unwrap(),
            "--out",
            "src4",
            "--database",
            "shop",
            "--bundle-version",
            "1.0.1",
            "--since",
            "r1.tar.gz",
        ],
    );
    expect_code(&o, 2);
    assert!(
        stderr(&o).contains("--since needs --trust"),
        "{}",
        stderr(&o)
    );
    let mut bytes = std::fs::read(dir.join("r1.tar.gz")).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 1;
    std::fs::write(dir.join("bad.tar.gz"), bytes).unwrap();
    let o = import(
        dir,
        &m,
        "src4",
        "shop",
        "1.0.1",
        &["--since", "bad.tar.gz", "--trust", "rm.pub"],
    );
    expect_code(&o, 4);
    assert!(!dir.join("src4").exists());

    // Nothing new: every migration was carried.
    std::fs::remove_file(m.join(V3.0)).unwrap();
    let o = import(
        dir,
        &m,
        "src5",
        "shop",
        "1.0.1",
        &["--since", "r1.tar.gz", "--trust", "rm.pub"],
    );
    expect_code(&o, 2);
    assert!(format!("{}{}", stdout(&o), stderr(&o)).contains("nothing new to import"));
    assert!(!dir.join("src5").exists());
}

/// `airlock --json status BUNDLES… --trust rm.pub --db CONN` (no `--json` when `human`).
fn status(dir: &Path, db: &TestDb, bundles: &[&str], human: bool) -> std::process::Output {
    let conn = db.conn();
    let mut a = vec!["--json", "status"];
    if human {
        a.remove(0);
    }
    a.extend(bundles);
    if !bundles.is_empty() {
        a.extend(["--trust", "rm.pub"]);
    }
    a.extend(["--db", &conn]);
    airlock(dir, &a)
}

/// The given bundle of `version` in a status document.
fn given<'a>(doc: &'a serde_json::Value, name: &str, version: &str) -> &'a serde_json::Value {
    doc["bundles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["bundle_name"] == name && b["bundle_version"] == version && b["given"] == true)
        .unwrap_or_else(|| panic!("{name} {version} not given: {doc:#}"))
}

/// The train of `name` in a status document.
fn train<'a>(doc: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    doc["trains"]
        .as_array()
        .unwrap_or_else(|| panic!("no trains: {doc:#}"))
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no train {name}: {doc:#}"))
}

#[test]
fn status_shows_where_a_train_of_three_releases_stands_and_never_asks_to_apply_an_earlier_one() {
    let t = keyed_dir();
    let dir = t.path();
    let db = TestDb::new("train_status");
    let m = flyway(&dir.join("migrations"), &[V1, V2]);
    first_release(dir, &m, &db.name);
    flyway(&m, &[V3]);
    let since = |prev: &'static str| ["--since", prev, "--trust", "rm.pub"];
    expect_code(
        &import(dir, &m, "src2", &db.name, "1.1.0", &since("r1.tar.gz")),
        0,
    );
    pack(dir, &dir.join("src2"), "rm.key", "r2.tar.gz");
    // 1.2.0 creates a table, so import writes its rollback (the undo script, and a
    // probe that the table is gone).
    flyway(
        &m,
        &[
            (
                "V4__shipment.sql",
                "CREATE TABLE shipment (id int PRIMARY KEY);\n",
            ),
            ("U4__shipment.sql", "DROP TABLE shipment;\n"),
        ],
    );
    expect_code(
        &import(dir, &m, "src3", &db.name, "1.2.0", &since("r2.tar.gz")),
        0,
    );
    pack(dir, &dir.join("src3"), "rm.key", "r3.tar.gz");
    let conn = db.conn();
    let deploy =
        |cmd: &str, bundle: &str| airlock(dir, &[cmd, bundle, "--trust", "rm.pub", "--db", &conn]);
    for r in ["r1.tar.gz", "r2.tar.gz", "r3.tar.gz"] {
        expect_code(&deploy("apply", r), 0);
    }
    let all = ["r1.tar.gz", "r2.tar.gz", "r3.tar.gz"];

    // All three applied: each given release is applied, the two before the top one
    // superseded by it; the train stands at 1.2.0; nothing says to apply anything.
    let o = status(dir, &db, &all, false);
    expect_code(&o, 0);
    let doc = json(&o);
    for (version, place) in [
        ("1.0.0", "superseded"),
        ("1.1.0", "superseded"),
        ("1.2.0", "current"),
    ] {
        let b = given(&doc, "shop", version);
        assert_eq!(b["state"], "applied", "{version}: {doc:#}");
        assert_eq!(b["train"], place, "{version}: {doc:#}");
        assert_eq!(
            b["remaining_tiers"],
            serde_json::json!([]),
            "{version}: {doc:#}"
        );
        assert!(b.get("apply_refusal").is_none(), "{version}: {doc:#}");
    }
    let shop = train(&doc, "shop");
    assert_eq!(shop["stands_at"]["version"], "1.2.0", "{doc:#}");
    assert_eq!(shop["releases"].as_array().unwrap().len(), 3, "{doc:#}");
    let o = status(dir, &db, &all, true);
    expect_code(&o, 0);
    let text = stdout(&o);
    assert!(!text.contains("not-applied"), "{text}");
    assert!(!text.contains("airlock apply continues"), "{text}");
    assert!(
        text.contains("shop stands at 1.2.0 (sequence 3); before it: 1.0.0, 1.1.0"),
        "{text}"
    );

    // 1.2.0 rolled back: plain status (no bundles) shows each release, and says the
    // database stands at 1.1.0 with 1.2.0 rolled back on top.
    expect_code(&deploy("rollback", "r3.tar.gz"), 0);
    let o = status(dir, &db, &[], false);
    expect_code(&o, 0);
    let doc = json(&o);
    let states = train_places(&doc, false);
    let want = |v: &str, s: &str, p: &str| (v.to_string(), s.to_string(), p.to_string());
    assert_eq!(
        states,
        [
            want("1.0.0", "applied", "superseded"),
            want("1.1.0", "applied", "current"),
            want("1.2.0", "rolled-back", "rolled-back"),
        ],
        "{doc:#}"
    );
    let shop = train(&doc, "shop");
    assert_eq!(shop["stands_at"]["version"], "1.1.0", "{doc:#}");
    assert_eq!(shop["stands_at"]["sequence"], 2, "{doc:#}");
    let o = status(dir, &db, &[], true);
    expect_code(&o, 0);
    let text = stdout(&o);
    assert!(
        text.contains(
            "shop stands at 1.1.0 (sequence 2); before it: 1.0.0; rolled back on top: 1.2.0"
        ),
        "{text}"
    );

    // Odd inputs. A bundle of another train (billing), never applied here; and 1.3.0,
    // which follows the rolled-back 1.2.0: neither is in the ledger. billing is judged
    // on its own train (apply would run it); 1.3.0 against shop's: apply would refuse
    // it, and status says why rather than "apply continues with".
    let b = flyway(
        &dir.join("billing"),
        &[("V1__invoice.sql", "CREATE TABLE invoice (i int);\n")],
    );
    let o = import(dir, &b, "srcb", &db.name, "1.0.0", &["--name", "billing"]);
    expect_code(&o, 0);
    pack(dir, &dir.join("srcb"), "rm.key", "b1.tar.gz");
    flyway(
        &m,
        &[(
            "V5__orders_note.sql",
            "ALTER TABLE orders ADD COLUMN note text;\n",
        )],
    );
    expect_code(
        &import(dir, &m, "src4", &db.name, "1.3.0", &since("r3.tar.gz")),
        0,
    );
    pack(dir, &dir.join("src4"), "rm.key", "r4.tar.gz");
    let odd = ["r1.tar.gz", "r3.tar.gz", "r4.tar.gz", "b1.tar.gz"];
    let o = status(dir, &db, &odd, false);
    expect_code(&o, 0);
    let doc = json(&o);
    assert_eq!(
        given(&doc, "shop", "1.0.0")["train"],
        "superseded",
        "{doc:#}"
    );
    assert_eq!(
        given(&doc, "shop", "1.2.0")["state"],
        "rolled-back",
        "{doc:#}"
    );
    let next = given(&doc, "shop", "1.3.0");
    assert_eq!(next["state"], "not-applied", "{doc:#}");
    assert_eq!(next["apply_refusal"]["kind"], "not-followed", "{doc:#}");
    let billing = given(&doc, "billing", "1.0.0");
    assert_eq!(billing["state"], "not-applied", "{doc:#}");
    assert!(billing.get("apply_refusal").is_none(), "{doc:#}");
    assert_eq!(
        train(&doc, "shop")["stands_at"]["version"],
        "1.1.0",
        "{doc:#}"
    );
    assert!(train(&doc, "billing").get("stands_at").is_none(), "{doc:#}");
    let o = status(dir, &db, &odd, true);
    expect_code(&o, 0);
    let text = stdout(&o);
    assert!(
        text.contains("shop 1.3.0: apply would refuse it: shop 1.3.0 follows shop 1.2.0"),
        "{text}"
    );
    assert!(
        !text.contains("shop 1.3.0: 0 of 1 tier(s) applied"),
        "told to apply a release that would be refused: {text}"
    );
    assert!(
        text.contains("billing 1.0.0: 0 of 1 tier(s) applied; remaining: V1__invoice (airlock apply continues with V1__invoice)"),
        "{text}"
    );
    assert!(text.contains("billing: nothing applied here"), "{text}");
}

/// Issue 88, finding 10: `import --since` sums up the migrations earlier releases
/// carried in one line, instead of one "not brought over" line each that buries what
/// is really left behind; `--json` lists them apart (`already_released`), each with
/// the release that carried it, and `left_behind` keeps only the rest.
#[test]
fn the_next_release_sums_up_what_earlier_releases_carried_in_one_line() {
    let t = keyed_dir();
    let dir = t.path();
    let db = TestDb::new("train_sum");
    let m = flyway(&dir.join("migrations"), &[V1, V2]);
    first_release(dir, &m, &db.name);
    flyway(&m, &[V3, ("R__view.sql", "CREATE VIEW v AS SELECT 1;\n")]);
    let since = ["--since", "r1.tar.gz", "--trust", "rm.pub"];
    let mut args = vec![
        "import",
        m.to_str().unwrap(),
        "--out",
        "src2",
        "--database",
        &db.name,
        "--bundle-version",
        "1.0.1",
    ];
    args.extend(since);
    let o = airlock(dir, &args);
    expect_code(&o, 0);
    let text = stdout(&o);
    let lines: Vec<&str> = text.lines().collect();
    let released: Vec<&&str> = lines
        .iter()
        .filter(|l| l.contains("V1__customer") || l.contains("V2__customer_email"))
        .collect();
    assert!(released.is_empty(), "{text}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("already released: 2 migration(s)") && l.contains("1.0.0")),
        "{text}"
    );
    // What is really left behind still has its line.
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("not brought over: R__view.sql")),
        "{text}"
    );
    std::fs::remove_dir_all(dir.join("src2")).unwrap();
    let o = import(dir, &m, "src2", &db.name, "1.0.1", &since);
    expect_code(&o, 0);
    let report = json(&o);
    assert_eq!(
        report["already_released"],
        serde_json::json!([
            {"migration": "V1__customer", "release": "1.0.0"},
            {"migration": "V2__customer_email", "release": "1.0.0"}
        ]),
        "{report:#}"
    );
    let left: Vec<&str> = report["left_behind"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["file"].as_str().unwrap())
        .collect();
    assert_eq!(left, ["R__view.sql"], "{report:#}");
}

/// Issue 88, finding 4: the policy the team added to 1.0.0's `bundle.toml` — a
/// required `ticket` param, a gate named by one of its tiers, a verify probe, the
/// target's role and search_path — is carried into 1.0.1 by `import --since`, from the
/// signed bundle: written into the new bundle.toml (each new tier names the gate),
/// reported (human and --json), and enforced by `plan` and `apply` on a real server.
/// Tier and rollback SQL is never carried.
#[test]
fn the_next_release_carries_the_policy_of_the_release_it_follows() {
    let t = keyed_dir();
    let dir = t.path();
    // The roles go after the database (locals drop in reverse order).
    let (app, login) = (role_name("trainapp"), role_name("traindeploy"));
    let _roles = DropRoles(vec![login.clone(), app.clone()]);
    let db = TestDb::new("trainpolicy");
    // The application's role owns the database; the deploy login may become it.
    db.exec(&format!(
        "CREATE ROLE {app}; ALTER DATABASE \"{}\" OWNER TO {app}; GRANT CREATE, USAGE ON SCHEMA public TO {app}",
        db.name
    ));
    let conn = deploy_login(dir, &db, &login);
    let m = flyway(&dir.join("migrations"), &[V1, V2]);
    let o = import(dir, &m, "src1", &db.name, "1.0.0", &["--name", "shop"]);
    expect_code(&o, 0);
    // The team's policy, written once, for 1.0.0.
    let toml_path = dir.join("src1/bundle.toml");
    let toml = std::fs::read_to_string(&toml_path).unwrap();
    let toml = toml
        .replacen(
            &format!("database = \"{}\"\n", db.name),
            &format!(
                "database = \"{}\"\nrole = \"{app}\"\nsearch_path = [\"public\"]\n",
                db.name
            ),
            1,
        )
        .replacen(
            "name = \"V2__customer_email\"\n",
            "name = \"V2__customer_email\"\ngates = [\"window\"]\n",
            1,
        );
    let policy = "\n[params.ticket]\nrequired = true\npattern = \"^CHG-[0-9]+$\"\ndescription = \"the change ticket\"\n\n[[gate]]\nname = \"window\"\nfile = \"sql/gate/window.sql\"\n\n[verify]\nfile = \"sql/probe/customers.sql\"\nexpect = { customer_table = \"present\" }\n";
    std::fs::write(&toml_path, format!("{toml}{policy}")).unwrap();
    let gate_sql = "SELECT true AS ready, 'the change window is open' AS reason\n";
    let probe_sql = "SELECT 'customer_table'::text AS key, CASE WHEN to_regclass('public.customer') IS NULL THEN 'absent' ELSE 'present' END AS value\n";
    for sub in ["gate", "probe"] {
        std::fs::create_dir_all(dir.join("src1/sql").join(sub)).unwrap();
    }
    std::fs::write(dir.join("src1/sql/gate/window.sql"), gate_sql).unwrap();
    std::fs::write(dir.join("src1/sql/probe/customers.sql"), probe_sql).unwrap();
    pack(dir, &dir.join("src1"), "rm.key", "r1.tar.gz");
    let run = |args: &[&str]| {
        let mut a = args.to_vec();
        a.extend(["--trust", "rm.pub", "--db", &conn]);
        airlock(dir, &a)
    };
    expect_code(&run(&["apply", "r1.tar.gz", "--param", "ticket=CHG-1"]), 0);

    // 1.0.1: nothing of the policy is written again.
    flyway(&m, &[V3, V4]);
    let since = ["--since", "r1.tar.gz", "--trust", "rm.pub"];
    let o = import(dir, &m, "src2", &db.name, "1.0.1", &since);
    expect_code(&o, 0);
    let report = json(&o);
    let carried: Vec<String> = report["carried"]
        .as_array()
        .unwrap_or_else(|| panic!("{report:#}"))
        .iter()
        .map(|c| c["what"].as_str().unwrap().to_string())
        .collect();
    for what in [
        "params.ticket",
        "gate.window",
        "target.role",
        "target.search_path",
        "verify",
        "tier.gates",
    ] {
        assert!(carried.iter().any(|c| c == what), "{what}: {report:#}");
    }
    let toml = std::fs::read_to_string(dir.join("src2/bundle.toml")).unwrap();
    assert!(toml.contains(&format!("role = \"{app}\"")), "{toml}");
    assert!(toml.contains("[params.ticket]"), "{toml}");
    assert!(toml.contains("pattern = \"^CHG-[0-9]+$\""), "{toml}");
    // Both new tiers name the gate (1.0.0's tiers named it: the strictest carries).
    assert_eq!(toml.matches("gates = [\"window\"]").count(), 2, "{toml}");
    assert_eq!(
        std::fs::read_to_string(dir.join("src2/sql/gate/window.sql")).unwrap(),
        gate_sql
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("src2/sql/probe/customers.sql")).unwrap(),
        probe_sql
    );
    // Policy only: no tier of 1.0.0 came along.
    assert!(!dir.join("src2/sql/tiers/001_V1__customer.sql").exists());
    assert!(!toml.contains("name = \"V1__customer\""), "{toml}");
    // The human report says what was carried.
    std::fs::remove_dir_all(dir.join("src2")).unwrap();
    let mut human = vec![
        "import",
        m.to_str().unwrap(),
        "--out",
        "src2",
        "--database",
        &db.name,
        "--bundle-version",
        "1.0.1",
    ];
    human.extend(since);
    let o = airlock(dir, &human);
    expect_code(&o, 0);
    let text = stdout(&o);
    assert!(
        text.contains("carried from the release followed: params.ticket: required"),
        "{text}"
    );
    assert!(
        text.contains(
            "carried from the release followed: gate.window: its query sql/gate/window.sql"
        ),
        "{text}"
    );
    pack(dir, &dir.join("src2"), "rm.key", "r2.tar.gz");

    // Enforced: without the ticket, plan and apply refuse (usage, exit 2); with it,
    // the gate is asked and apply runs as the carried role.
    for cmd in ["plan", "apply"] {
        let o = run(&[cmd, "r2.tar.gz"]);
        expect_code(&o, 2);
        let all = format!("{}{}", stdout(&o), stderr(&o));
        assert!(all.contains("ticket"), "{cmd}: {all}");
    }
    let o = run(&["--json", "gate", "r2.tar.gz", "--param", "ticket=CHG-2"]);
    expect_code(&o, 0);
    assert!(stdout(&o).contains("window"), "{}", stdout(&o));
    expect_code(&run(&["apply", "r2.tar.gz", "--param", "ticket=CHG-2"]), 0);
    assert_eq!(
        db.scalar("SELECT tableowner FROM pg_tables WHERE tablename = 'orders'"),
        app
    );
}

/// Issue 89, item 8: every edited, removed or inserted migration of one `--since`
/// import is named in one run (River's third release took six runs, one refusal
/// each), each with its way out, and nothing is written.
#[test]
fn every_edited_or_inserted_migration_is_named_in_one_run() {
    let t = keyed_dir();
    let dir = t.path();
    let m = flyway(&dir.join("migrations"), &[V1, V2]);
    first_release(dir, &m, "shop");
    flyway(&m, &[V3]);
    std::fs::write(m.join(V1.0), "CREATE TABLE customer (id bigint);\n").unwrap();
    std::fs::write(
        m.join(V2.0),
        "ALTER TABLE customer ADD COLUMN email varchar(200);\n",
    )
    .unwrap();
    std::fs::write(m.join("V1_5__sneaky.sql"), "CREATE TABLE sneaky (i int);\n").unwrap();
    let o = import(
        dir,
        &m,
        "src2",
        "shop",
        "1.0.1",
        &["--since", "r1.tar.gz", "--trust", "rm.pub"],
    );
    expect_code(&o, 2);
    let all = format!("{}{}", stdout(&o), stderr(&o));
    for named in [
        "3 problems, each named",
        "V1__customer: edited since release 1.0.0 carried it",
        "V2__customer_email: edited since release 1.0.0 carried it",
        "V1_5__sneaky is new, but sorts before V2__customer_email",
        "put the migration back as it was released",
        "rename it to sort after the released migrations",
    ] {
        assert!(all.contains(named), "{named}: {all}");
    }
    assert!(
        !dir.join("src2").exists(),
        "an import refused wrote its source"
    );
}
