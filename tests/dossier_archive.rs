//! The page, read first and read later (issue 75, part 3, and part 2's rollback
//! section), through the real binary against real PostgreSQL: the first screen
//! carries every NO-GO fact the page holds before any instruction; the auditor
//! re-makes an old page offline on the evidence `audit` accepts; a page re-made for the
//! archive judges the past; "How it is undone" shows what `plan --rollback` predicts.

mod util;
use std::path::Path;
use util::*;

/// `airlock dossier b.tar.gz --trust TRUST --param code=A1 --out OUT` with `extra`.
fn dossier(d: &Path, trust: &str, out: &str, extra: &[&str]) -> std::process::Output {
    let mut a = vec![
        "--json", "dossier", "b.tar.gz", "--trust", trust, "--param", "code=A1", "--out", out,
        "--force",
    ];
    a.extend(extra);
    airlock(d, &a)
}

/// The page's header and banner: what it shows before its sections begin.
fn first_screen(page: &str) -> &str {
    &page[page.find("<header>").expect("a header")..page.find("<nav>").expect("a nav")]
}

/// The section `id` of a page.
fn section<'a>(page: &'a str, id: &str) -> &'a str {
    let at = page
        .find(&format!("<section id=\"{id}\">"))
        .unwrap_or_else(|| panic!("no section {id}"));
    &page[at..at + page[at..].find("</section>").unwrap()]
}

/// A release signed by `rm`, applied with a receipt signed by operator `op`, then the
/// release key revoked from a second after the apply. Returns the apply's ledger time.
fn applied_then_revoked(d: &Path, db: &TestDb) -> String {
    applied_then_revoked_with(d, db, &[])
}

/// [`applied_then_revoked`], the bundle co-signed by the release keys `cosigners` too
/// (in the trust store, never revoked).
fn applied_then_revoked_with(d: &Path, db: &TestDb, cosigners: &[&str]) -> String {
    keygen(d, "rm");
    keygen(d, "op");
    for k in cosigners {
        keygen(d, k);
    }
    let rm = key_id_of(&d.join("rm.pub"));
    let op = key_id_of(&d.join("op.pub"));
    let mut keys = vec!["rm", "op"];
    keys.extend_from_slice(cosigners);
    trust_store(
        d,
        "trust",
        &keys,
        &format!("[keys.{op}]\nrole = \"operator\"\n"),
    );
    let src = MiniSource::new(
        &d.join("src"),
        &db.name,
        "SELECT true AS ready",
        &[("t1", "CREATE TABLE app.t1(i int);", false)],
        "DROP TABLE IF EXISTS app.t1;",
    )
    .dir;
    pack(d, &src, "rm.key", "b.tar.gz");
    for k in cosigners {
        let key = format!("{k}.key");
        expect_code(&airlock(d, &["sign", "b.tar.gz", "--key", &key]), 0);
    }
    let conn = db.conn();
    let o = airlock(
        d,
        &[
            "apply",
            "b.tar.gz",
            "--trust",
            "trust",
            "--db",
            &conn,
            "--param",
            "code=A1",
            "--sign-receipt",
            "op.key",
        ],
    );
    expect_code(&o, 0);
    let applied_at = db.scalar("SELECT at FROM airlock.ledger WHERE seq = 1");
    // The revocation comes after everything the apply wrote and signed (its receipt is
    // signed after the ledger row, later than a second after it on a loaded machine):
    // a second after apply returned.
    let from = chrono::Utc::now() + chrono::Duration::seconds(1);
    while chrono::Utc::now() <= from {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let from = from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let o = airlock(
        d,
        &[
            "trust",
            "revoke",
            "trust",
            &rm,
            "--from",
            &from,
            "--reason",
            "routine rotation",
        ],
    );
    expect_code(&o, 0);
    let still = if cosigners.is_empty() { 4 } else { 0 };
    expect_code(
        &airlock(d, &["verify", "b.tar.gz", "--trust", "trust"]),
        still,
    );
    applied_at
}

/// The one receipt file `apply` wrote in `d/receipts`.
fn the_receipt(d: &Path) -> std::path::PathBuf {
    let mut found: Vec<_> = std::fs::read_dir(d.join("receipts"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".receipt.json"))
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found.pop().unwrap()
}

#[test]
fn the_auditor_remakes_the_page_offline_on_the_operator_signed_receipt_audit_accepts() {
    let t = tempdir();
    let d = t.path();
    let db = TestDb::new("dossier_offline_receipt");
    db.exec("CREATE SCHEMA app");
    let applied_at = applied_then_revoked(d, &db);
    let op = key_id_of(&d.join("op.pub"));

    // audit accepts the receipt as evidence, offline: PASS, and says why.
    let o = airlock(
        d,
        &[
            "audit",
            "b.tar.gz",
            "--trust",
            "trust",
            "--receipt",
            "receipts",
        ],
    );
    expect_code(&o, 0);

    // The page, offline (no --db), on the same receipt: written.
    let o = dossier(
        d,
        "trust",
        "a.html",
        &["--receipt", "receipts", "--at", &applied_at],
    );
    expect_code(&o, 0);
    let page = std::fs::read_to_string(d.join("a.html")).unwrap();
    assert!(
        page.contains(&format!("signed by operator key {op}")) && page.contains("receipts/"),
        "the page does not name the receipt as its evidence"
    );
    // The receipt of the apply at that very time is what ran, not "later".
    assert!(
        page.contains("id=\"receipt-1\""),
        "the receipt is not shown"
    );
    assert!(!page.contains("after this page's time"));

    // An edited receipt is no evidence: refused, exit 4, nothing written.
    let receipt = the_receipt(d);
    let original = std::fs::read_to_string(&receipt).unwrap();
    let edited = original.replacen("\"operator\": \"", "\"operator\": \"x", 1);
    assert_ne!(
        original, edited,
        "the receipt has no operator field to edit"
    );
    std::fs::write(&receipt, &edited).unwrap();
    let o = dossier(
        d,
        "trust",
        "edited.html",
        &["--receipt", "receipts", "--at", &applied_at],
    );
    expect_code(&o, 4);
    assert!(!d.join("edited.html").exists());
    // Unsigned, it is no evidence either.
    std::fs::write(&receipt, &original).unwrap();
    let mut sig = receipt.as_os_str().to_owned();
    sig.push(".minisig");
    std::fs::remove_file(&sig).unwrap();
    let o = dossier(
        d,
        "trust",
        "unsigned.html",
        &["--receipt", "receipts", "--at", &applied_at],
    );
    expect_code(&o, 4);
    assert!(!d.join("unsigned.html").exists());
    assert!(leftovers(d).is_empty(), "{:?}", leftovers(d));
}

#[test]
fn audit_says_why_a_bundle_signed_by_a_key_revoked_since_passes_and_labels_a_fail() {
    let t = tempdir();
    let d = t.path();
    let db = TestDb::new("audit_revoked_why");
    db.exec("CREATE SCHEMA app");
    applied_then_revoked(d, &db);
    let o = airlock(
        d,
        &[
            "audit",
            "b.tar.gz",
            "--trust",
            "trust",
            "--receipt",
            "receipts",
        ],
    );
    expect_code(&o, 0);
    let out = stdout(&o);
    assert!(
        out.contains("counts: evidence from before the revocation")
            && out.contains("signed by operator key"),
        "{out}"
    );
    // Without the receipt there is no evidence: FAIL, and the reason says it is one.
    let o = airlock(d, &["audit", "b.tar.gz", "--trust", "trust"]);
    expect_code(&o, 4);
    let out = stdout(&o);
    assert!(out.contains("FAIL because"), "{out}");
    // The database alone is evidence: the operator key signed the apply's ledger row
    // (issue 86), and the page's history says so of that row.
    let conn = db.conn();
    let o = airlock(d, &["audit", "b.tar.gz", "--trust", "trust", "--db", &conn]);
    expect_code(&o, 0);
    let out = stdout(&o);
    assert!(
        out.contains("counts: evidence from before the revocation")
            && out.contains("ledger row 1 of database")
            && out.contains("signed by operator key"),
        "{out}"
    );
    let o = dossier(d, "trust", "s.html", &["--db", &conn]);
    expect_code(&o, 0);
    let page = std::fs::read_to_string(d.join("s.html")).unwrap();
    let op = key_id_of(&d.join("op.pub"));
    assert!(
        section(&page, "status").contains(&format!("(ledger row 1, signed by operator key {op})")),
        "{}",
        section(&page, "status")
    );
}

/// A one-tier source for `db` whose rollback breaks (it drops a table that is
/// not there), packed into `d/b.tar.gz`.
fn broken_rollback(d: &Path, db: &TestDb) {
    let src = MiniSource::new(
        &d.join("src"),
        &db.name,
        "SELECT true AS ready",
        &[("t1", "CREATE TABLE app.t1(i int);", false)],
        "DROP TABLE app.t1; DROP TABLE app.not_there;",
    )
    .dir;
    pack(d, &src, "rm.key", "b.tar.gz");
}

#[test]
fn the_first_screen_says_the_rehearsal_failed_before_any_instruction() {
    let t = keyed_dir();
    let d = t.path();
    let db = TestDb::new("dossier_failed_rehearsal");
    db.exec("CREATE SCHEMA app");
    broken_rollback(d, &db);
    let conn = db.conn();
    let o = airlock(
        d,
        &[
            "--json", "rehearse", "b.tar.gz", "--trust", "rm.pub", "--db", &conn, "--param",
            "code=A1",
        ],
    );
    assert_ne!(code(&o), 0, "the rehearsal passed: {}", stdout(&o));
    assert_eq!(json(&o)["ok"], false);
    std::fs::write(d.join("rehearsal.json"), &o.stdout).unwrap();

    let o = dossier(d, "rm.pub", "p.html", &["--rehearsal", "rehearsal.json"]);
    expect_code(&o, 0);
    let report = json(&o);
    let page = std::fs::read_to_string(d.join("p.html")).unwrap();
    let top = first_screen(&page);
    assert!(top.contains("v-nogo"), "the banner is not red: {top}");
    assert!(top.contains("rehearsal FAILED"), "{top}");
    let status = section(&page, "status");
    let failed = status.find("rehearsal FAILED").expect("status says it");
    let command = status.find("<pre class=\"cmd\">").expect("a command");
    assert!(failed < command, "the instruction comes first");
    let news = report["no_go"].as_array().expect("no_go in --json");
    assert!(
        news.iter()
            .any(|n| n.as_str().unwrap().contains("rehearsal FAILED")),
        "{news:?}"
    );
}

#[test]
fn the_first_screen_says_what_the_data_makes_fail_and_what_it_destroys() {
    let t = keyed_dir();
    let d = t.path();
    let db = TestDb::new("dossier_worst_news");
    db.exec(
        "CREATE SCHEMA shop; CREATE TABLE shop.customers (id int PRIMARY KEY, email text);\n\
         INSERT INTO shop.customers VALUES (1, 'a@x'), (2, 'a@x'), (3, 'b@x');\n\
         CREATE TABLE shop.old (i int); INSERT INTO shop.old SELECT generate_series(1, 7);",
    );
    let src = MiniSource::new(
        &d.join("src"),
        &db.name,
        "SELECT true AS ready",
        &[(
            "keys",
            "DROP TABLE shop.old;\nCREATE UNIQUE INDEX customers_email ON shop.customers (email);\n",
            false,
        )],
        "DROP INDEX shop.customers_email;",
    )
    .dir;
    pack(d, &src, "rm.key", "b.tar.gz");
    let conn = db.conn();
    let o = dossier(d, "rm.pub", "p.html", &["--db", &conn]);
    expect_code(&o, 0);
    let page = std::fs::read_to_string(d.join("p.html")).unwrap();
    let top = first_screen(&page);
    assert!(
        top.contains("CREATE UNIQUE INDEX") && top.contains("would fail"),
        "{top}"
    );
    assert!(top.contains("shop.old") && top.contains("7 rows"), "{top}");
}

#[test]
fn blocked_only_by_missing_approvals_says_so() {
    let t = keyed_dir();
    let d = t.path();
    keygen(d, "carol");
    let db = TestDb::new("dossier_approvals_only");
    db.exec("CREATE SCHEMA app");
    let s = MiniSource::new(
        &d.join("src"),
        &db.name,
        "SELECT true AS ready",
        &[("one", "CREATE TABLE app.t (i int);", true)],
        "DROP TABLE app.t;",
    );
    let toml = s.dir.join("bundle.toml");
    let text = std::fs::read_to_string(&toml).unwrap() + "\n[ratification]\nthreshold = 1\n";
    std::fs::write(&toml, text).unwrap();
    pack(d, &s.dir, "rm.key", "b.tar.gz");
    let carol = key_id_of(&d.join("carol.pub"));
    trust_store(
        d,
        "trust",
        &["rm", "carol"],
        &format!("[keys.{carol}]\nrole = \"approver\"\n"),
    );
    let conn = db.conn();
    let o = dossier(d, "trust", "p.html", &["--db", &conn]);
    expect_code(&o, 0);
    assert_eq!(json(&o)["verdict"], "BLOCKED");
    let page = std::fs::read_to_string(d.join("p.html")).unwrap();
    let top = first_screen(&page);
    assert!(!top.contains("a gate is closed"), "{top}");
    assert!(
        top.contains("BLOCKED: every gate is open; it waits for the signed approvals"),
        "{top}"
    );
}

/// Apply `b.tar.gz` (trust `rm.pub`) to `db`.
fn apply(d: &Path, db: &TestDb, extra: &[&str]) {
    let conn = db.conn();
    let mut a = vec![
        "apply", "b.tar.gz", "--trust", "rm.pub", "--db", &conn, "--param", "code=A1",
    ];
    a.extend(extra);
    expect_code(&airlock(d, &a), 0);
}

#[test]
fn a_page_remade_for_the_archive_says_what_happened_as_of_at() {
    let t = keyed_dir();
    let d = t.path();
    let db = TestDb::new("dossier_archive");
    db.exec("CREATE SCHEMA app");
    let src = MiniSource::new(
        &d.join("src"),
        &db.name,
        "SELECT true AS ready",
        &[("t1", "CREATE TABLE app.t1(i int);", false)],
        "DROP TABLE app.t1;",
    )
    .dir;
    pack(d, &src, "rm.key", "b.tar.gz");
    apply(d, &db, &[]);
    let applied_at = db.scalar("SELECT at FROM airlock.ledger WHERE seq = 1");
    let conn = db.conn();
    // Applied, as of now: the page says what happened, not "apply would refuse".
    let o = dossier(d, "rm.pub", "a.html", &["--db", &conn]);
    expect_code(&o, 0);
    assert_eq!(json(&o)["verdict"], "APPLIED", "{}", stdout(&o));
    let page = std::fs::read_to_string(d.join("a.html")).unwrap();
    let top = first_screen(&page);
    assert!(!top.contains("apply would refuse"), "{top}");
    assert!(!top.contains("v-nogo"), "{top}");
    assert!(top.contains(&format!("APPLIED at {applied_at}")), "{top}");
    // Applied with no operator key: the page says what its unsigned row proves.
    assert!(
        top.contains(
            "unsigned: the ledger the deploy login keeps says so, no operator key vouches for it"
        ),
        "{top}"
    );
    let status = section(&page, "status");
    assert!(
        status.contains("ledger row 1: unsigned, so it shows only that the chain holds it"),
        "{status}"
    );
    assert!(!status.contains("airlock apply"), "{status}");

    // Rolled back later (the ledger's times are to the second: a second later): a page
    // as of before the rollback still says applied; a page as of now says it was
    // rolled back, and when.
    let after =
        chrono::DateTime::parse_from_rfc3339(&applied_at).unwrap() + chrono::Duration::seconds(1);
    while chrono::Utc::now() <= after {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let rb = airlock(
        d,
        &[
            "rollback", "b.tar.gz", "--trust", "rm.pub", "--db", &conn, "--param", "code=A1",
            "--yes",
        ],
    );
    expect_code(&rb, 0);
    let rolled_at = db.scalar("SELECT at FROM airlock.ledger WHERE event = 'rollback'");
    let o = dossier(d, "rm.pub", "b.html", &["--db", &conn, "--at", &applied_at]);
    expect_code(&o, 0);
    assert_eq!(
        json(&o)["verdict"],
        "APPLIED",
        "{:#}",
        json(&o)["facts"]["history"]
    );
    let page = std::fs::read_to_string(d.join("b.html")).unwrap();
    let status = section(&page, "status");
    assert!(
        !status.contains("rollback of t1"),
        "a later row is shown: {status}"
    );
    assert!(status.contains("later row(s) not shown"), "{status}");
    // The receipts given are of the page's time too: the rollback's, written after
    // it, is named as later, not shown as what ran.
    let o = dossier(
        d,
        "rm.pub",
        "r.html",
        &["--db", &conn, "--at", &applied_at, "--receipt", "receipts"],
    );
    expect_code(&o, 0);
    let report = json(&o);
    let events: Vec<&str> = report["facts"]["receipts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["receipt"]["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["apply"], "a later receipt is shown as what ran");
    assert_eq!(
        report["facts"]["receipts_later"].as_array().unwrap().len(),
        1
    );
    let page = std::fs::read_to_string(d.join("r.html")).unwrap();
    assert!(
        section(&page, "ran").contains("after this page's time"),
        "the later receipt is not named"
    );
    let o = dossier(d, "rm.pub", "c.html", &["--db", &conn]);
    expect_code(&o, 0);
    assert_ne!(json(&o)["verdict"], "APPLIED");
    let page = std::fs::read_to_string(d.join("c.html")).unwrap();
    let status = section(&page, "status");
    assert!(
        status.contains(&format!("rollback of t1 at {rolled_at}")),
        "{status}"
    );
}

#[test]
fn how_it_is_undone_shows_what_the_rollback_destroys_and_what_the_data_makes_fail() {
    let t = keyed_dir();
    let d = t.path();
    let db = TestDb::new("dossier_undo_predicted");
    db.exec("CREATE SCHEMA app");
    let src = MiniSource::new(
        &d.join("src"),
        &db.name,
        "SELECT true AS ready",
        &[(
            "t1",
            "CREATE TABLE app.plans(id int PRIMARY KEY);\nINSERT INTO app.plans VALUES (1), (2);\nCREATE TABLE app.orders(id int, plan int REFERENCES app.plans);\n",
            false,
        )],
        "DELETE FROM app.plans WHERE id IN (1, 2);\nDROP TABLE IF EXISTS app.orders;\nDROP TABLE IF EXISTS app.plans;\n",
    )
    .dir;
    pack(d, &src, "rm.key", "b.tar.gz");
    apply(d, &db, &[]);
    // The application writes 5 orders referencing the seed.
    db.exec("INSERT INTO app.orders SELECT g, 1 + g % 2 FROM generate_series(1, 5) g");
    let conn = db.conn();
    // What plan --rollback predicts, for comparison.
    let o = airlock(
        d,
        &[
            "--json",
            "plan",
            "b.tar.gz",
            "--trust",
            "rm.pub",
            "--db",
            &conn,
            "--param",
            "code=A1",
            "--rollback",
        ],
    );
    let predicted = json(&o);
    assert_eq!(predicted["verdict"], "NO-GO", "{predicted:#}");

    let o = dossier(d, "rm.pub", "u.html", &["--db", &conn]);
    expect_code(&o, 0);
    let report = json(&o);
    assert_eq!(
        report["facts"]["rollback_plan"]["plan"]["verdict"], "NO-GO",
        "{:#}",
        report["facts"]["rollback_plan"]
    );
    let page = std::fs::read_to_string(d.join("u.html")).unwrap();
    let undo = section(&page, "undo");
    assert!(undo.contains("airlock plan BUNDLE --rollback"), "{undo}");
    assert!(
        undo.contains("What the rollback destroys") && undo.contains("app.orders"),
        "{undo}"
    );
    assert!(undo.contains("would fail"), "{undo}");
    // And the first screen says the rollback would fail.
    assert!(first_screen(&page).contains("rollback would fail"));
}

/// Issue 88, finding 3: a bundle signed by a key revoked since and co-signed by one
/// that was not, so the threshold holds without evidence. `audit` counts the revoked
/// key's signature on the operator-signed receipt ("evidence from before"); the page
/// looked for evidence only when the threshold needed it, and said the same signature
/// did "not count … nothing the signer could not make alone". One judgment: the page
/// counts it on the same receipt, as audit does.
#[test]
fn the_page_and_audit_judge_a_revoked_keys_signature_alike_when_another_key_suffices() {
    let t = tempdir();
    let d = t.path();
    let db = TestDb::new("dossier_revoked_cosigned");
    db.exec("CREATE SCHEMA app");
    let applied_at = applied_then_revoked_with(d, &db, &["rm2"]);
    let rm = key_id_of(&d.join("rm.pub"));
    let o = airlock(
        d,
        &[
            "audit",
            "b.tar.gz",
            "--trust",
            "trust",
            "--receipt",
            "receipts",
        ],
    );
    expect_code(&o, 0);
    let said = stdout(&o);
    assert!(
        said.contains(&format!("by key {rm} counts: evidence from before")),
        "{said}"
    );
    let o = dossier(
        d,
        "trust",
        "a.html",
        &["--receipt", "receipts", "--at", &applied_at],
    );
    expect_code(&o, 0);
    let page = std::fs::read_to_string(d.join("a.html")).unwrap();
    assert!(
        !page.contains("nothing the signer could not make alone"),
        "the page does not count the revoked key's signature that audit counts"
    );
    assert!(
        page.contains("Evidence the signer could not make alone shows the bundle existed by"),
        "the page does not name the evidence audit counts"
    );
}

/// A release of two tiers, its first applied (`--through t1`): the receipt the apply
/// wrote is in `d/receipts`.
fn half_applied(d: &Path, db: &TestDb) {
    db.exec("CREATE SCHEMA app");
    let src = MiniSource::new(
        &d.join("src"),
        &db.name,
        "SELECT true AS ready",
        &[
            ("t1", "CREATE TABLE app.t1(i int);", false),
            ("t2", "CREATE TABLE app.t2(i int);", false),
        ],
        "DROP TABLE IF EXISTS app.t2; DROP TABLE IF EXISTS app.t1;",
    )
    .dir;
    pack(d, &src, "rm.key", "b.tar.gz");
    apply(d, db, &["--through", "t1"]);
}

#[test]
fn a_page_for_the_archive_leads_with_what_the_receipts_say_happened() {
    let t = keyed_dir();
    let d = t.path();
    let db = TestDb::new("dossier_archive_partial");
    half_applied(d, &db);
    // The auditor's page: the archive's bundle and receipts, no database.
    let o = dossier(d, "rm.pub", "a.html", &["--receipt", "receipts"]);
    expect_code(&o, 0);
    let report = json(&o);
    assert_eq!(report["verdict"], "PARTIAL", "{}", stdout(&o));
    let page = std::fs::read_to_string(d.join("a.html")).unwrap();
    let top = first_screen(&page);
    let lead = &top[top.find("class=\"verdict").expect("a banner")..];
    assert!(
        lead.contains("PARTIALLY APPLIED: 1 of 2 tier(s) (t1)"),
        "{lead}"
    );
    assert!(!top.contains("NO-GO"), "{top}");
    assert!(!top.contains("apply would refuse"), "{top}");
    assert!(!top.contains("whether this release may go ahead"), "{top}");
}

#[test]
fn the_dossier_digest_says_it_covers_the_release_and_not_the_page() {
    let t = keyed_dir();
    let d = t.path();
    let db = TestDb::new("dossier_digest_covers");
    half_applied(d, &db);
    // Two pages of the same release, params and trust store that differ (one shows
    // the receipt): the same dossier digest, different bytes.
    let plain = json(&dossier(d, "rm.pub", "plain.html", &[]));
    let with = json(&dossier(
        d,
        "rm.pub",
        "with.html",
        &["--receipt", "receipts"],
    ));
    assert_ne!(plain["sha256"], with["sha256"]);
    assert_eq!(plain["digest"], with["digest"]);
    // So each page says exactly what its digest covers, beside it.
    for f in ["plain.html", "with.html"] {
        let page = std::fs::read_to_string(d.join(f)).unwrap();
        let top = first_screen(&page);
        assert!(
            top.contains("dossier digest (of the bundle, its params and the trust store's keys, as <code>airlock approve</code> prints it; not of this page's bytes)"),
            "{top}"
        );
    }
    let o = airlock(
        d,
        &[
            "dossier", "b.tar.gz", "--trust", "rm.pub", "--param", "code=A1", "--out", "h.html",
        ],
    );
    expect_code(&o, 0);
    assert!(
        stdout(&o).contains("not of this page's bytes"),
        "{}",
        stdout(&o)
    );
}
