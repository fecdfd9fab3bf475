//! The auditor's story of issue 88, lived end to end through the binary against real
//! PostgreSQL, as docs/auditor.md ("An audit, start to finish") tells it: three
//! releases of one product rolled out over six tenants by a deploy login, receipts
//! signed by the operator; one receipt lost, one tenant half-applied; the release key's
//! laptop stolen, the key revoked, and a forged release the thief signed afterwards
//! (back-dated) slipped into the archive. The auditor holds only the archive and a
//! login `airlock setup --auditor` made, which may read each ledger and nothing else.

mod util;
use std::path::{Path, PathBuf};
use util::*;

const TENANTS: usize = 6;
/// The tenant whose receipt of 1.1.0 never reached the archive.
const LOST: usize = 2;
/// The tenant where 1.2.0 ran its first tier only.
const HALF: usize = 5;
/// What the thief claims as the forged bundle's signing time: 2025-01-01, long before
/// the revocation (SOURCE_DATE_EPOCH sets the trusted comment's timestamp).
const BACKDATED: &str = "1735689600";

/// A release's tiers: (name, sql).
type Tiers = &'static [(&'static str, &'static str)];

/// The releases of "shop": (version, sequence, tiers).
const RELEASES: [(&str, u32, Tiers); 3] = [
    (
        "1.0.0",
        1,
        &[(
            "schema",
            "CREATE SCHEMA shop; CREATE TABLE shop.customers(id int PRIMARY KEY, email text);",
        )],
    ),
    (
        "1.1.0",
        2,
        &[(
            "orders",
            "CREATE TABLE shop.orders(id int PRIMARY KEY, customer int REFERENCES shop.customers);",
        )],
    ),
    (
        "1.2.0",
        3,
        &[
            (
                "schema",
                "ALTER TABLE shop.customers ADD COLUMN phone text;",
            ),
            (
                "data",
                "UPDATE shop.customers SET phone = '' WHERE phone IS NULL;",
            ),
            (
                "index",
                "CREATE INDEX customers_phone ON shop.customers(phone);",
            ),
        ],
    ),
];

/// The source of shop VERSION for the fleet `pattern`, under `d/src-VERSION`.
fn shop_source(
    d: &Path,
    pattern: &str,
    version: &str,
    seq: u32,
    tiers: &[(&str, &str)],
) -> PathBuf {
    let dir = d.join(format!("src-{version}"));
    let mut toml = format!(
        "[bundle]\nname = \"shop\"\nversion = \"{version}\"\nsequence = {seq}\n\n[target]\ndatabase = \"{pattern}\"\n\n"
    );
    for (i, (name, sql)) in tiers.iter().enumerate() {
        let f = format!("sql/{}_{name}.sql", i + 1);
        write(&dir.join(&f), sql);
        toml.push_str(&format!(
            "[[tier]]\nname = \"{name}\"\nfiles = [\"{f}\"]\n\n"
        ));
    }
    write(&dir.join("bundle.toml"), &toml);
    dir
}

/// The receipt files in `d/receipts` (each with its `.minisig`) whose receipt is of
/// `version` on `database`.
fn receipts_of(d: &Path, version: &str, database: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(d.join("receipts"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".receipt.json"))
        .filter(|p| {
            let r: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
            r["bundle_version"] == version && r["database"] == database
        })
        .collect();
    found.sort();
    found
}

/// The verdicts of an audit document: (subject, check, verdict, detail).
fn verdicts(doc: &serde_json::Value) -> Vec<(String, String, String, String)> {
    doc["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
            (s("subject"), s("check"), s("verdict"), s("detail"))
        })
        .collect()
}

/// The audited bundle of `version` in an audit document.
fn bundle_of<'a>(doc: &'a serde_json::Value, version: &str) -> &'a serde_json::Value {
    doc["bundles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| {
            b["file"]
                .as_str()
                .unwrap_or_default()
                .contains(&format!("shop-{version}."))
        })
        .unwrap_or_else(|| panic!("no bundle shop {version} in {doc:#}"))
}

/// The one line of `text` holding every one of `needles`.
#[track_caller]
fn line_with<'a>(text: &'a str, needles: &[&str]) -> &'a str {
    text.lines()
        .find(|l| needles.iter().all(|n| l.contains(n)))
        .unwrap_or_else(|| panic!("no line says {needles:?}:\n{text}"))
}

#[test]
fn the_auditors_story_over_six_tenants_with_a_read_only_login() {
    let t = tempdir();
    let d = t.path();
    let (owner, deployer, auditor) = (
        role_name("storyowner"),
        role_name("storydeployer"),
        role_name("storyauditor"),
    );
    // Declared before the tenants, so they are dropped after them.
    let _roles = DropRoles(vec![auditor.clone(), deployer.clone(), owner.clone()]);
    admin()
        .batch_execute(&format!("CREATE ROLE {owner} NOLOGIN"))
        .unwrap();
    let tenants: Vec<TestDb> = (0..TENANTS).map(|_| TestDb::new("auditstory")).collect();
    let pattern = format!("airlock_t_auditstory_{}_*", std::process::id());

    // The keys: alice signs releases, the operators' key signs receipts.
    let alice = keygen(d, "alice");
    let op = keygen(d, "op");
    trust_store(
        d,
        "trust",
        &["alice", "op"],
        &format!("[keys.{op}]\nrole = \"operator\"\n"),
    );

    // Each tenant set up once by a superuser: the deploy login and the auditor's.
    for db in &tenants {
        db.exec(&format!("ALTER DATABASE \"{}\" OWNER TO {owner}", db.name));
        let o = airlock(
            d,
            &[
                "--json",
                "setup",
                "--db",
                &db.conn(),
                "--login",
                &deployer,
                "--auditor",
                &auditor,
            ],
        );
        expect_code(&o, 0);
        assert_eq!(json(&o)["auditor"]["login"], auditor.as_str());
    }

    // Three releases, signed by alice, rolled out tenant by tenant by the deploy login,
    // each receipt signed by the operators' key. The last tenant runs 1.2.0's first
    // tier only.
    std::fs::create_dir(d.join("archive")).unwrap();
    for (version, seq, tiers) in RELEASES {
        let src = shop_source(d, &pattern, version, seq, tiers);
        let bundle = format!("archive/shop-{version}.airlock.tar.gz");
        pack(d, &src, "alice.key", &bundle);
        for (i, db) in tenants.iter().enumerate() {
            let conn = format!("dbname={} user={deployer}", db.name);
            let mut args = vec![
                "apply",
                &bundle,
                "--trust",
                "trust",
                "--db",
                &conn,
                "--receipt-dir",
                "receipts",
                "--sign-receipt",
                "op.key",
            ];
            if version == "1.2.0" && i == HALF {
                args.extend(["--through", "schema"]);
            }
            expect_code(&airlock(d, &args), 0);
        }
    }
    let half = &tenants[HALF].name;
    let lost = &tenants[LOST].name;
    assert_eq!(
        tenants[HALF]
            .scalar("SELECT count(*)::text FROM pg_indexes WHERE indexname = 'customers_phone'"),
        "0",
        "the half-applied tenant ran more than its first tier"
    );

    // One receipt never reaches the archive: tenant LOST's of 1.1.0.
    let gone = receipts_of(d, "1.1.0", lost);
    assert_eq!(gone.len(), 1, "{gone:?}");
    let gone_sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(std::fs::read(&gone[0]).unwrap()))
    };
    std::fs::remove_file(&gone[0]).unwrap();
    std::fs::remove_file(format!("{}.minisig", gone[0].display())).unwrap();
    assert_eq!(
        std::fs::read_dir(d.join("receipts")).unwrap().count(),
        2 * (3 * TENANTS - 1),
        "every other receipt and its signature is in the archive"
    );

    // The laptop is stolen after the rollout: alice's key is revoked from a second
    // after the last apply committed (by the database servers' clock).
    let last_apply = tenants
        .iter()
        .map(|db| db.scalar("SELECT max(at) FROM airlock.ledger"))
        .map(|at| chrono::DateTime::parse_from_rfc3339(&at).unwrap())
        .max()
        .unwrap();
    let revoked_from = last_apply + chrono::Duration::seconds(1);
    while chrono::Utc::now() <= revoked_from {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let revoked_from = revoked_from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let o = airlock(
        d,
        &[
            "trust",
            "revoke",
            "trust",
            &alice,
            "--from",
            &revoked_from,
            "--reason",
            "laptop stolen",
        ],
    );
    expect_code(&o, 0);
    // The thief signs a 1.2.1 with the stolen key, back-dated, and slips it in.
    let forged_src = shop_source(
        d,
        &pattern,
        "1.2.1",
        4,
        &[("schema", "DROP SCHEMA shop CASCADE;")],
    );
    let o = airlock_env(
        d,
        &[
            "pack",
            forged_src.to_str().unwrap(),
            "--key",
            "alice.key",
            "--out",
            "archive/shop-1.2.1.airlock.tar.gz",
        ],
        &[("SOURCE_DATE_EPOCH", BACKDATED)],
    );
    expect_code(&o, 0);
    let ledgers_before: Vec<String> = tenants.iter().map(TestDb::ledger_rows).collect();

    // ---- The auditor: the archive, the trust store as it stands, their own login. ----
    let host = std::env::var("PGHOST").unwrap_or_else(|_| "/var/run/postgresql".into());
    let server = format!(
        "host={host} port={} dbname=postgres user={auditor}",
        pg_port()
    );
    let audit_args = [
        "audit",
        "archive/",
        "--trust",
        "trust",
        "--receipt",
        "receipts",
        "--fleet",
        &server,
    ];
    let mut json_args = vec!["--json"];
    json_args.extend(audit_args);
    let o = airlock(d, &json_args);
    expect_code(&o, 4);
    let doc = json(&o);
    assert_eq!(doc["verdict"], "FAIL", "{doc:#}");
    let all = verdicts(&doc);

    // Every tenant was found by the bundles' pattern and read on the auditor's login,
    // each ledger kept by the deploy login, named.
    let ledgers = doc["ledgers"].as_array().unwrap();
    assert_eq!(ledgers.len(), TENANTS, "{doc:#}");
    for l in ledgers {
        assert_eq!(l["kept_by"], deployer.as_str(), "{l:#}");
    }

    // The revoked key: each real release counts on evidence from before the
    // revocation; the forged one counts on nothing, whatever time it claims.
    for (version, _, _) in RELEASES {
        let b = bundle_of(&doc, version);
        let sig = &b["trust"]["signatures"][0];
        assert_eq!(sig["counted"], true, "{version}: {sig:#}");
        assert!(
            sig["basis"]
                .as_str()
                .unwrap()
                .contains("shows the bundle existed by"),
            "{version}: {sig:#}"
        );
    }
    let forged = bundle_of(&doc, "1.2.1");
    let sig = &forged["trust"]["signatures"][0];
    assert_eq!(sig["counted"], false, "{sig:#}");
    assert_eq!(sig["not_counted"], "revoked", "{sig:#}");

    // What failed: the forged bundle (as a bundle), and the lost receipt (on its
    // tenant, for 1.1.0). Nothing else: no healthy tenant is charged for the forgery,
    // and the half-applied tenant is said, not failed.
    let failed: Vec<&(String, String, String, String)> =
        all.iter().filter(|v| v.2 == "FAIL").collect();
    assert!(
        failed
            .iter()
            .any(|(s, c, _, _)| s.contains("shop-1.2.1") && c == "threshold"),
        "{failed:#?}"
    );
    for (s, c, _, detail) in &failed {
        let about_forgery = s.contains("shop-1.2.1");
        let about_lost = s == &format!("database {lost}")
            && (detail.contains("shop 1.1.0") || detail.contains(&gone_sha[..8]));
        assert!(
            about_forgery || about_lost,
            "a FAIL neither about the forgery nor the lost receipt: {s} | {c} | {detail}"
        );
        assert!(
            !detail.contains("1.2.1") || about_forgery,
            "{s} | {c} | {detail}"
        );
    }
    // The lost receipt: its tenant's ledger records the run and the receipt delivered
    // (its SHA-256), which is not among those given; and no receipt names the tenant
    // for 1.1.0 though its ledger holds rows of it.
    let lost_subject = format!("database {lost}");
    assert!(
        failed.iter().any(|(s, _, _, detail)| s == &lost_subject
            && detail.contains(&format!("delivered receipt {}", &gone_sha[..8]))
            && detail.contains("hidden or lost")),
        "the lost receipt is not named: {failed:#?}"
    );
    assert!(
        failed.iter().any(|(s, c, _, detail)| s == &lost_subject
            && c == "reached by the release"
            && detail.contains("shop 1.1.0")
            && detail.contains("no receipt of it names it")
            && detail.contains("its ledger has")),
        "the lost receipt's release is not named: {failed:#?}"
    );

    // What ran: the half-applied tenant's ledger and receipt say 1 of 3.
    let half_ledger = ledgers
        .iter()
        .find(|l| l["database"] == half.as_str())
        .unwrap();
    let ran_120 = half_ledger["ran"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["release"].as_str().unwrap_or_default().contains("1.2.0"))
        .unwrap_or_else(|| panic!("no 1.2.0 in {half_ledger:#}"));
    assert_eq!(
        ran_120["tiers"],
        serde_json::json!(["schema"]),
        "{ran_120:#}"
    );
    assert_eq!(ran_120["of"], 3, "{ran_120:#}");
    let operator =
        tenants[HALF].scalar("SELECT operator FROM airlock.ledger ORDER BY seq DESC LIMIT 1");
    assert_eq!(ran_120["by"], operator.as_str(), "{ran_120:#}");
    for l in ledgers.iter().filter(|l| l["database"] != half.as_str()) {
        for r in l["ran"].as_array().unwrap() {
            assert_eq!(
                r["tiers"].as_array().unwrap().len() as u64,
                r["of"].as_u64().unwrap(),
                "{l:#}"
            );
        }
    }
    let half_receipt = doc["receipts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ran"]["tiers"] == serde_json::json!(["schema"]) && r["ran"]["of"] == 3)
        .unwrap_or_else(|| panic!("no receipt ran 1 of 3: {doc:#}"));
    let half_receipt_file = half_receipt["file"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        half_receipt_file.contains(half.as_str()),
        "{half_receipt:#}"
    );

    // The same audit for people.
    let o = airlock(d, &audit_args);
    expect_code(&o, 4);
    let text = stdout(&o);
    line_with(
        &text,
        &[
            &format!("database {half}"),
            "shop 1.2.0: 1 of 3 tier(s) applied (schema)",
        ],
    );
    line_with(&text, &[&format!("kept by {deployer:?}")]);
    line_with(
        &text,
        &[
            half.as_str(),
            ".receipt.json",
            "ran 1 of 3 tier(s) (schema)",
        ],
    );
    line_with(&text, &["counts: evidence from before the revocation"]);
    line_with(&text, &["shop-1.2.1", "FAIL"]);
    // The lost receipt, under its tenant's line; the releases on each database's line
    // in the train's order.
    let lost_block: String = text
        .lines()
        .skip_while(|l| !l.contains(&format!("database {lost}:")))
        .take(5)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(lost_block.starts_with("FAIL"), "{lost_block}");
    line_with(
        &lost_block,
        &["FAIL because reached by the release: shop 1.1.0"],
    );
    line_with(
        &lost_block,
        &[
            "FAIL because ledger row 3 receipt",
            &gone_sha[..8],
            "hidden or lost",
        ],
    );
    for db in &tenants {
        let l = line_with(&text, &[&format!("database {}:", db.name)]);
        let at = |v: &str| {
            l.find(&format!("shop {v}:"))
                .unwrap_or_else(|| panic!("{l}"))
        };
        assert!(
            at("1.0.0") < at("1.1.0") && at("1.1.0") < at("1.2.0"),
            "{l}"
        );
    }
    line_with(&text, &["AUDIT FAIL: 3 check(s) failed"]);

    // ---- The archive page of 1.2.0 for the half-applied tenant, as of the rollout's
    // end: made offline from its receipt, on the same evidence audit counts. ----
    let at = last_apply.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    // `dossier --json BUNDLE --receipt R --at (the rollout's end) --out OUT`, offline.
    let archive_page = |bundle: &str, receipt: &str, out: &str| {
        airlock(
            d,
            &[
                "--json",
                "dossier",
                bundle,
                "--trust",
                "trust",
                "--receipt",
                receipt,
                "--at",
                &at,
                "--out",
                out,
            ],
        )
    };
    let o = archive_page(
        "archive/shop-1.2.0.airlock.tar.gz",
        &half_receipt_file,
        "page.html",
    );
    expect_code(&o, 0);
    assert_eq!(json(&o)["verdict"], "PARTIAL", "{}", stdout(&o));
    let page = std::fs::read_to_string(d.join("page.html")).unwrap();
    let top = &page[page.find("<header>").unwrap()..page.find("<nav>").unwrap()];
    let lead = &top[top.find("class=\"verdict").expect("a banner")..];
    assert!(
        lead.contains("PARTIALLY APPLIED: 1 of 3 tier(s) (schema) ran"),
        "{lead}"
    );
    assert!(!top.contains("NO-GO"), "{top}");
    assert!(
        page.contains("Evidence the signer could not make alone shows the bundle existed by")
            && !page.contains("nothing the signer could not make alone"),
        "the page does not count alice's signature on the evidence audit counts"
    );
    // The forged bundle has no page: no evidence, as audit found (exit 4, nothing written).
    let o = archive_page(
        "archive/shop-1.2.1.airlock.tar.gz",
        "receipts",
        "forged.html",
    );
    expect_code(&o, 4);
    assert!(!d.join("forged.html").exists());

    // The page over the whole fleet's receipts of 1.2.0.
    let o = archive_page(
        "archive/shop-1.2.0.airlock.tar.gz",
        "receipts",
        "fleet.html",
    );
    expect_code(&o, 0);
    // Six tenants' receipts are six histories: the page is not APPLIED while one
    // tenant ran 1 of 3 tiers, and it names that tenant (it said "APPLIED: every tier
    // (3 of 3) ran", the last receipt being the half-applied tenant's own).
    assert_eq!(json(&o)["verdict"], "PARTIAL", "{}", stdout(&o));
    let fleet_page = std::fs::read_to_string(d.join("fleet.html")).unwrap();
    let top = &fleet_page[fleet_page.find("<header>").unwrap()..fleet_page.find("<nav>").unwrap()];
    let lead = &top[top.find("class=\"verdict").expect("a banner")..];
    assert!(
        lead.contains(
            "PARTIALLY APPLIED over the 6 database(s) the receipts name: every tier ran on 5"
        ) && lead.contains(&format!(
            "on {half}, PARTIALLY APPLIED: 1 of 3 tier(s) (schema) ran"
        )),
        "{lead}"
    );
    assert!(!top.contains("NO-GO"), "{top}");

    // Reading changed no ledger.
    let ledgers_after: Vec<String> = tenants.iter().map(TestDb::ledger_rows).collect();
    assert_eq!(ledgers_after, ledgers_before, "the audit changed a ledger");
}
