//! One truth per dossier page (issue 68, findings 5 and 6), through the real binary
//! against real PostgreSQL: after `apply --through` the rehearsal's verdict and its
//! round-trip box agree and the status knows which tiers are applied; receipts are in
//! the order they ran, the latest rollback is the one the page names, and a rollback's
//! row says plainly what it left.

mod util;
use std::path::Path;
use util::*;

/// A three-tier source for `db`: `t1` and `t2` need no gate, `t3` is gated.
fn source(d: &Path, db: &TestDb) -> std::path::PathBuf {
    MiniSource::new(
        &d.join("src"),
        &db.name,
        "SELECT true AS ready",
        &[
            ("t1", "CREATE TABLE app.t1(i int);", false),
            ("t2", "CREATE TABLE app.t2(i int);", false),
            ("t3", "CREATE TABLE app.t3(i int);", true),
        ],
        "DROP TABLE IF EXISTS app.t1, app.t2, app.t3;",
    )
    .dir
}

fn run(d: &Path, db: &TestDb, args: &[&str]) -> std::process::Output {
    let conn = db.conn();
    let mut a = args.to_vec();
    a.extend([
        "b.tar.gz", "--trust", "rm.pub", "--db", &conn, "--param", "code=A1",
    ]);
    airlock(d, &a)
}

/// `dossier b.tar.gz … --out OUT` with `extra`: the page's text and the JSON report.
fn dossier(d: &Path, out: &str, extra: &[&str]) -> (String, serde_json::Value) {
    let mut a = vec![
        "--json", "dossier", "b.tar.gz", "--trust", "rm.pub", "--param", "code=A1", "--out", out,
        "--force",
    ];
    a.extend(extra);
    let o = airlock(d, &a);
    expect_code(&o, 0);
    (std::fs::read_to_string(d.join(out)).unwrap(), json(&o))
}

#[test]
fn after_apply_through_the_page_says_one_thing_about_the_rehearsal_and_the_tiers() {
    let t = keyed_dir();
    let d = t.path();
    let db = TestDb::new("dossier_through");
    db.exec("CREATE SCHEMA app");
    pack(d, &source(d, &db), "rm.key", "b.tar.gz");
    expect_code(&run(d, &db, &["apply", "--through", "t1"]), 0);
    let o = run(d, &db, &["--json", "rehearse"]);
    expect_code(&o, 0);
    std::fs::write(d.join("rehearsal.json"), &o.stdout).unwrap();

    let conn = db.conn();
    let (page, _) = dossier(
        d,
        "d.html",
        &["--db", &conn, "--rehearsal", "rehearsal.json"],
    );
    assert!(page.contains("The rehearsal: PASS"), "no PASS on the page");
    assert!(
        !page.contains("did not return to the entry fingerprint") && !page.contains("did not hold"),
        "the page says PASS and that the round trip failed"
    );
    assert!(page.contains("The round trip held"), "no round-trip proof");
    assert!(
        page.contains("began part-applied"),
        "the box does not say why"
    );
    // The status knows t1 is applied: it does not offer it to run.
    assert!(
        !page.contains("(t1, t2) need no gate and can run now"),
        "an applied tier is said to run now"
    );
    assert!(page.contains("Applied already"), "no applied tiers named");
    assert!(
        page.contains("The next 1 (t2) need no gate and can run now"),
        "the tier to run next is not named"
    );
}

#[test]
fn receipts_are_in_the_order_they_ran_and_the_page_names_the_latest_rollback() {
    let t = keyed_dir();
    let d = t.path();
    let db = TestDb::new("dossier_order");
    db.exec("CREATE SCHEMA app");
    pack(d, &source(d, &db), "rm.key", "b.tar.gz");
    // apply-1, apply-3, rollback-5, apply-7, rollback-9, apply-11, rollback-13: their
    // names' text order puts rollback-13 before rollback-5 and apply-11 before apply-3.
    expect_code(&run(d, &db, &["apply", "--through", "t1"]), 0);
    expect_code(&run(d, &db, &["apply"]), 0);
    for _ in 0..2 {
        expect_code(&run(d, &db, &["rollback", "--yes"]), 0);
        expect_code(&run(d, &db, &["apply"]), 0);
    }
    expect_code(&run(d, &db, &["rollback", "--yes"]), 0);
    let mut names: Vec<String> = std::fs::read_dir(d.join("receipts"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".receipt.json"))
        .collect();
    names.sort();
    assert_eq!(names.len(), 7, "{names:?}");

    let (page, doc) = dossier(d, "d.html", &["--receipt", "receipts"]);
    let seqs: Vec<i64> = doc["facts"]["receipts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["receipt"]["ledger"][0]["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 3, 5, 7, 9, 11, 13], "not in the order they ran");
    // The page's own order: receipt 7 is the last rollback (ledger seq 13).
    let last = page.find("id=\"receipt-7\"").expect("receipt 7");
    assert!(
        page[last..].contains("seq 13 at"),
        "receipt 7 is not the latest"
    );
    assert!(page[last..].starts_with("id=\"receipt-7\">rollback 7"));
    // A rollback's row says what it left, not an ambiguous "tiers left".
    assert!(
        !page.contains(">tiers left<"),
        "the ambiguous row is still there"
    );
    assert!(page.contains("tiers not applied after it"));
    assert!(page.contains("tiers still to run"));
}

#[test]
fn the_auditor_makes_the_page_again_after_a_routine_revocation_on_the_ledgers_evidence() {
    let t = tempdir();
    let d = t.path();
    keygen(d, "rm");
    keygen(d, "op");
    let rm = key_id_of(&d.join("rm.pub"));
    let op = key_id_of(&d.join("op.pub"));
    trust_store(
        d,
        "trust",
        &["rm", "op"],
        &format!("[keys.{op}]\nrole = \"operator\"\n"),
    );
    let db = TestDb::new("dossier_revoked");
    db.exec("CREATE SCHEMA app");
    pack(d, &source(d, &db), "rm.key", "b.tar.gz");
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
    // The release key is revoked, routinely, from a second after the apply (once the
    // clock has passed it: a revocation is in force from its time).
    let from =
        chrono::DateTime::parse_from_rfc3339(&applied_at).unwrap() + chrono::Duration::seconds(1);
    while chrono::Utc::now() <= from {
        std::thread::yield_now();
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
    // Today the bundle does not verify (its key is revoked): plain verify says so.
    expect_code(&airlock(d, &["verify", "b.tar.gz", "--trust", "trust"]), 4);

    // The auditor's page, at the time of the apply, with the ledger as evidence.
    let o = airlock(
        d,
        &[
            "--json",
            "dossier",
            "b.tar.gz",
            "--trust",
            "trust",
            "--param",
            "code=A1",
            "--receipt",
            "receipts",
            "--db",
            &conn,
            "--at",
            &applied_at,
            "--out",
            "a.html",
        ],
    );
    expect_code(&o, 0);
    let page = std::fs::read_to_string(d.join("a.html")).unwrap();
    assert!(
        page.contains("ledger row 1"),
        "the page does not name its evidence"
    );
    // Without evidence (no --db, no signed receipt) it is refused, nothing written.
    let o = airlock(
        d,
        &[
            "dossier",
            "b.tar.gz",
            "--trust",
            "trust",
            "--param",
            "code=A1",
            "--at",
            &applied_at,
            "--out",
            "none.html",
        ],
    );
    expect_code(&o, 4);
    assert!(!d.join("none.html").exists());
}

/// Issue 68, item 11: the approvers' page says in plain words what could go wrong,
/// from plan's predictions (the duplicate e-mails a new unique index meets, with their
/// keys; what cannot be told here), and what a failed online step leaves.
#[test]
fn the_page_says_what_could_go_wrong_in_plain_words() {
    let t = keyed_dir();
    let d = t.path();
    let db = TestDb::new("dossier_wrong");
    db.exec(
        "CREATE SCHEMA shop; CREATE TABLE shop.customers (id int PRIMARY KEY, email text);\n\
         INSERT INTO shop.customers VALUES (1, 'a@x'), (2, 'a@x'), (3, 'b@x');",
    );
    let src = MiniSource::new(
        &d.join("src"),
        &db.name,
        "SELECT true AS ready",
        &[(
            "keys",
            "CREATE UNIQUE INDEX customers_email ON shop.customers (email);\nCREATE TABLE shop.made (i int);\nALTER TABLE shop.made ADD CONSTRAINT made_pk PRIMARY KEY (i);\n",
            false,
        )],
        "DROP INDEX shop.customers_email; DROP TABLE shop.made;",
    )
    .dir;
    pack(d, &src, "rm.key", "b.tar.gz");
    let conn = db.conn();
    let o = airlock(
        d,
        &[
            "dossier",
            "b.tar.gz",
            "--trust",
            "rm.pub",
            "--db",
            &conn,
            "--param",
            "code=x",
            "--out",
            "page.html",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let html = std::fs::read_to_string(d.join("page.html")).unwrap();
    let at = html
        .find("<h3>What could go wrong</h3>")
        .unwrap_or_else(|| panic!("{html}"));
    let section = &html[at..at + html[at..].find("</ul>").unwrap()];
    assert!(
        section.contains("CREATE UNIQUE INDEX at sql/tier1.sql:1 (tier keys) would fail on the rows in shop.customers now (2 of them)")
            && section.contains("for example"),
        "{section}"
    );
    assert!(
        section.contains("cannot be told here") && section.contains("rehearse runs it"),
        "{section}"
    );
}

/// What the rehearsal given with `--rehearsal` saw a statement do on its clone is on
/// the page beside "cannot be told here": an approver is never told a risk is unknown
/// when the attached rehearsal answered it (found by a new-user walk).
#[test]
fn what_plan_could_not_tell_says_what_the_rehearsal_saw() {
    let t = keyed_dir();
    let d = t.path();
    let db = TestDb::new("dossier_judged");
    db.exec("CREATE SCHEMA shop");
    let src = MiniSource::new(
        &d.join("src"),
        &db.name,
        "SELECT true AS ready",
        &[(
            "keys",
            "CREATE TABLE shop.made (i int);\nINSERT INTO shop.made VALUES (1), (2);\nALTER TABLE shop.made ADD CONSTRAINT made_pk PRIMARY KEY (i);\n",
            false,
        )],
        "DROP TABLE shop.made;",
    )
    .dir;
    pack(d, &src, "rm.key", "b.tar.gz");
    let o = run(d, &db, &["--json", "rehearse"]);
    expect_code(&o, 0);
    let r = json(&o);
    assert_eq!(r["predictions"]["judged"][0]["on_clone"], "passed", "{r:#}");
    std::fs::write(d.join("rehearsal.json"), &o.stdout).unwrap();
    let conn = db.conn();
    let section = |page: &str| {
        let at = page
            .find("<h3>What could go wrong</h3>")
            .unwrap_or_else(|| panic!("{page}"));
        page[at..at + page[at..].find("</ul>").unwrap()].to_string()
    };
    let (page, _) = dossier(
        d,
        "d.html",
        &["--db", &conn, "--rehearsal", "rehearsal.json"],
    );
    let s = section(&page);
    assert!(
        s.contains("cannot be told here")
            && s.contains("the rehearsal ran it on a copy, where it passed"),
        "{s}"
    );
    // Without the rehearsal the page says where to find out.
    let (page, _) = dossier(d, "e.html", &["--db", &conn]);
    assert!(section(&page).contains("rehearse runs it on a copy"));
}
