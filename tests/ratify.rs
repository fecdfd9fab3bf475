//! Signed ratification through the binary, against real PostgreSQL: a bundle with
//! `[ratification]` runs its gated tiers only on a quorum of approvals signed with
//! approver keys (`airlock approve`), each bound to the bundle id, sequence and params;
//! approvals that do not fit never count, and nothing is written; the receipt carries
//! the approvals and `audit` verifies them again.

mod util;
use airlock::approval::ApprovalDoc;
use airlock::minisign::SecretKey;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::process::Output;
use util::*;

/// What `gate --json` says (the fields these tests read).
#[derive(Deserialize)]
struct GateJson {
    exit_code: i32,
    verdict: String,
    ratification: Option<Quorum>,
}

#[derive(Deserialize)]
struct Quorum {
    threshold: u32,
    counted: u32,
    met: bool,
    #[serde(default)]
    missing_required: Vec<String>,
    approvals: Vec<Approval>,
}

#[derive(Deserialize)]
struct Approval {
    file: String,
    key_id: String,
    counted: bool,
    refused: Option<String>,
    note: Option<String>,
    document: String,
}

#[derive(Deserialize)]
struct AuditJson {
    verdicts: Vec<AuditVerdict>,
}

#[derive(Deserialize)]
struct AuditVerdict {
    check: String,
    verdict: String,
    detail: String,
}

/// A target database, a mini bundle whose second tier is gated and ratified, and keys:
/// `rm` (release), `alice`, `bob`, `carol` (approvers), `mallory` (an approver key,
/// revoked), `eve` (an approver key retired in 2020), `op` (operator).
struct Ratify {
    t: tempfile::TempDir,
    db: TestDb,
    ids: std::collections::BTreeMap<&'static str, String>,
}

const PARAM: &str = "code=APR-1";

impl Ratify {
    fn new(tag: &str) -> Ratify {
        let db = TestDb::new(tag);
        db.exec("CREATE SCHEMA app");
        let t = tempdir();
        let mut ids = std::collections::BTreeMap::new();
        for k in ["rm", "alice", "bob", "carol", "mallory", "eve", "op"] {
            ids.insert(k, keygen(t.path(), k));
        }
        let toml = format!(
            "[keys.{}]\nrole = \"approver\"\n[keys.{}]\nrole = \"approver\"\n[keys.{}]\nrole = \"approver\"\n[keys.{}]\nrole = \"approver\"\nrevoked = true\nrevoked_reason = \"laptop stolen\"\n[keys.{}]\nrole = \"approver\"\nnot_after = \"2020-01-01T00:00:00Z\"\n[keys.{}]\nrole = \"operator\"\n",
            ids["alice"], ids["bob"], ids["carol"], ids["mallory"], ids["eve"], ids["op"]
        );
        trust_store(
            t.path(),
            "trust",
            &["rm", "alice", "bob", "carol", "mallory", "eve", "op"],
            &toml,
        );
        std::fs::create_dir_all(t.path().join("approvals")).unwrap();
        Ratify { t, db, ids }
    }

    fn dir(&self) -> &Path {
        self.t.path()
    }

    /// Pack the mini bundle `out` with `[ratification]` as given (and this sequence).
    fn bundle(&self, out: &str, sequence: u64, ratification: &str) -> String {
        self.bundle_with(out, sequence, ratification, |t| t)
    }

    /// [`Self::bundle`] with its bundle.toml edited by `edit` first.
    fn bundle_with(
        &self,
        out: &str,
        sequence: u64,
        ratification: &str,
        edit: impl Fn(String) -> String,
    ) -> String {
        let s = MiniSource::new(
            &self.dir().join(format!("src-{out}")),
            &self.db.name,
            "SELECT true AS ready",
            &[
                ("structure", "CREATE TABLE app.s(i int);", false),
                ("seed", "CREATE TABLE app.seeded(i int);", true),
            ],
            "DROP TABLE IF EXISTS app.seeded; DROP TABLE IF EXISTS app.s;",
        );
        let toml = s.dir.join("bundle.toml");
        let text = std::fs::read_to_string(&toml)
            .unwrap()
            .replace("sequence = 1", &format!("sequence = {sequence}"));
        let text = edit(text);
        std::fs::write(&toml, format!("{text}\n[ratification]\n{ratification}\n")).unwrap();
        pack(self.dir(), &s.dir, "rm.key", out);
        out.to_string()
    }

    /// `airlock approve BUNDLE --key KEY.key --param … --out approvals/OUT --yes`.
    fn approve(&self, bundle: &str, key: &str, out: &str, extra: &[&str]) -> Output {
        let key = format!("{key}.key");
        let out = format!("approvals/{out}");
        let mut a = vec![
            "--json", "approve", bundle, "--trust", "trust", "--key", &key, "--out", &out, "--yes",
        ];
        a.extend(extra);
        airlock(self.dir(), &a)
    }

    fn approve_ok(&self, bundle: &str, key: &str, out: &str) {
        expect_code(&self.approve(bundle, key, out, &["--param", PARAM]), 0);
    }

    /// `airlock --json CMD BUNDLE --param code=APR-1 --approval …` against the target.
    fn run(&self, cmd: &str, bundle: &str, approvals: &[&str], extra: &[&str]) -> Output {
        let mut a = vec![cmd, bundle, "--param", PARAM];
        for p in approvals {
            a.extend(["--approval", p]);
        }
        a.extend(extra);
        run_json(self.dir(), "trust", &self.db.conn(), &a)
    }

    fn gate(&self, bundle: &str, approvals: &[&str]) -> GateJson {
        let o = self.run("gate", bundle, approvals, &[]);
        serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("gate --json: {e}: {}", stdout(&o)))
    }

    /// Nothing of the bundle ran and no ledger was made.
    fn assert_untouched(&self) {
        assert_eq!(
            self.db
                .scalar("SELECT count(*) FROM pg_namespace WHERE nspname = 'airlock'"),
            "0",
            "a ledger was created"
        );
        assert_eq!(
            self.db
                .scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'app'"),
            "0",
            "a tier ran"
        );
    }

    /// A document signed directly with `key` (the cases `airlock approve` refuses to
    /// make), written as `approvals/OUT` with its `.minisig`.
    fn craft(&self, key: &str, out: &str, edit: impl FnOnce(&mut ApprovalDoc)) -> PathBuf {
        let text = std::fs::read_to_string(self.dir().join(format!("{key}.key"))).unwrap();
        let secret = SecretKey::parse(&text, None).unwrap();
        // Start from a sound approval by alice, then make it the key's and edit it.
        let base = std::fs::read(self.dir().join("approvals/alice.approval")).unwrap();
        let mut doc = ApprovalDoc::parse(&base).unwrap();
        doc.approver = secret.key_id.to_string();
        edit(&mut doc);
        let (bytes, sig) = doc.sign(&secret, chrono::Utc::now().timestamp()).unwrap();
        let path = self.dir().join("approvals").join(out);
        std::fs::write(&path, bytes).unwrap();
        std::fs::write(airlock::approval::signature_path(&path), sig).unwrap();
        path
    }
}

#[test]
fn a_quorum_of_approvals_opens_the_gate_and_the_receipt_carries_them_for_audit() {
    let r = Ratify::new("quorum");
    let b = r.bundle("b.tar.gz", 1, "threshold = 2");
    r.approve_ok(&b, "alice", "alice.approval");
    r.approve_ok(&b, "bob", "bob.approval");
    // plain minisign's view of it: the document, its signature beside it.
    let doc = std::fs::read_to_string(r.dir().join("approvals/alice.approval")).unwrap();
    let parsed = ApprovalDoc::parse(doc.as_bytes()).unwrap();
    assert_eq!(parsed.approver, r.ids["alice"]);
    assert_eq!(parsed.params.get("code").map(String::as_str), Some("APR-1"));
    assert_eq!(doc.as_bytes(), parsed.to_canonical_bytes(), "not canonical");

    let g = r.gate(&b, &["approvals"]);
    assert_eq!((g.exit_code, g.verdict.as_str()), (0, "READY"));
    let q = g.ratification.expect("ratification judged");
    assert_eq!((q.counted, q.threshold, q.met), (2, 2, true));
    let by: Vec<&str> = q.approvals.iter().map(|a| a.key_id.as_str()).collect();
    assert_eq!(by, [r.ids["alice"].as_str(), r.ids["bob"].as_str()]);

    let o = r.run(
        "apply",
        &b,
        &["approvals"],
        &["--receipt", "r.json", "--sign-receipt", "op.key"],
    );
    expect_code(&o, 0);
    assert_eq!(
        r.db.scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'app'"),
        "2"
    );
    let receipt: serde_json::Value =
        serde_json::from_slice(&std::fs::read(r.dir().join("r.json")).unwrap()).unwrap();
    let carried: Quorum =
        serde_json::from_value(receipt["gates"]["ratification"].clone()).expect("approvals");
    assert_eq!(carried.counted, 2);
    assert!(carried.approvals.iter().all(|a| !a.document.is_empty()));
    // The ledger row records them too (key ids, documents, signatures), hash-chained.
    let recorded: Vec<serde_json::Value> = serde_json::from_str(
        &r.db
            .scalar("SELECT approvals FROM airlock.ledger WHERE event = 'apply'"),
    )
    .unwrap();
    let ids: Vec<&str> = recorded
        .iter()
        .map(|a| a["key_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [r.ids["alice"].as_str(), r.ids["bob"].as_str()]);
    assert_eq!(recorded[0]["document"].as_str(), Some(doc.as_str()));

    let conn = r.db.conn();
    // `audit --receipt R` (and `--db` the target's ledger): exit code, ratification.
    let audit = |receipt: &str, with_db: bool| -> (i32, AuditVerdict) {
        let mut a = vec![
            "--json",
            "audit",
            &b,
            "--trust",
            "trust",
            "--receipt",
            receipt,
        ];
        if with_db {
            a.extend(["--db", &conn]);
        }
        let o = airlock(r.dir(), &a);
        let doc: AuditJson = serde_json::from_slice(&o.stdout).unwrap();
        let rat = doc.verdicts.into_iter().find(|v| v.check == "ratification");
        (code(&o), rat.expect("a ratification verdict"))
    };
    for with_db in [false, true] {
        let (exit, rat) = audit("r.json", with_db);
        assert_eq!(rat.verdict, "PASS", "{}", rat.detail);
        assert!(rat.detail.contains(&r.ids["alice"]) && rat.detail.contains(&r.ids["bob"]));
        assert_eq!(exit, 0, "audit of the honest history (--db: {with_db})");
    }
    // A receipt whose ledger row lost an approval: the row no longer matches the
    // ledger, and the quorum judged from it is not met.
    let mut thin = receipt.clone();
    let last = thin["ledger"].as_array().unwrap().len() - 1;
    let mut rows: Vec<serde_json::Value> =
        serde_json::from_str(thin["ledger"][last]["approvals"].as_str().unwrap()).unwrap();
    rows.pop();
    thin["ledger"][last]["approvals"] = serde_json::to_string(&rows).unwrap().into();
    std::fs::write(
        r.dir().join("thin.json"),
        serde_json::to_vec(&thin).unwrap(),
    )
    .unwrap();
    let (exit, rat) = audit("thin.json", true);
    assert_eq!((exit, rat.verdict.as_str()), (4, "FAIL"), "{}", rat.detail);

    // A receipt whose approval document was edited (bob "approved" other params).
    let mut forged = receipt.clone();
    let doc = forged["gates"]["ratification"]["approvals"][1]["document"]
        .as_str()
        .unwrap()
        .replace("APR-1", "APR-9");
    forged["gates"]["ratification"]["approvals"][1]["document"] = doc.into();
    std::fs::write(
        r.dir().join("forged.json"),
        serde_json::to_vec(&forged).unwrap(),
    )
    .unwrap();
    let (exit, rat) = audit("forged.json", false);
    assert_eq!(rat.verdict, "FAIL", "{}", rat.detail);
    assert!(rat.detail.contains("1 of 2"), "{}", rat.detail);
    assert_eq!(exit, 4);

    // A receipt whose params were edited: the approvals consent to other params, and
    // the verdict says so (issue 48, finding 9: it said a tier ran without its quorum).
    let mut edited = receipt.clone();
    edited["params"]["code"] = "APR-9".into();
    std::fs::write(
        r.dir().join("edited.json"),
        serde_json::to_vec(&edited).unwrap(),
    )
    .unwrap();
    let (_, rat) = audit("edited.json", false);
    let o = airlock(
        r.dir(),
        &[
            "--json",
            "audit",
            &b,
            "--trust",
            "trust",
            "--receipt",
            "edited.json",
        ],
    );
    assert_eq!(
        json(&o)["verdict"],
        "FAIL",
        "one verdict word, as gate and plan"
    );
    assert_eq!(rat.verdict, "FAIL", "{}", rat.detail);
    assert!(
        rat.detail.contains("were its params edited after the run?"),
        "{}",
        rat.detail
    );
}

#[test]
fn one_approval_short_is_blocked_naming_what_is_missing_and_nothing_is_written() {
    let r = Ratify::new("short");
    let b = r.bundle("b.tar.gz", 1, "threshold = 2");
    // None at all.
    let g = r.gate(&b, &[]);
    assert_eq!((g.exit_code, g.verdict.as_str()), (3, "BLOCKED"));
    assert_eq!(g.ratification.unwrap().counted, 0);
    r.approve_ok(&b, "alice", "alice.approval");
    let g = r.gate(&b, &["approvals"]);
    assert_eq!(g.exit_code, 3);
    assert_eq!(g.ratification.unwrap().counted, 1);
    for (cmd, extra) in [("plan", &[][..]), ("apply", &["--receipt-dir", "rc"][..])] {
        let o = r.run(cmd, &b, &["approvals"], extra);
        expect_code(&o, 3);
        let text = stdout(&o);
        assert!(
            text.contains("ratification: 1 of 2 approval(s)") && text.contains("1 more approver"),
            "{cmd}: {text}"
        );
    }
    r.assert_untouched();
    // The tiers without gates may run while it is BLOCKED.
    let o = r.run(
        "apply",
        &b,
        &[],
        &["--through", "structure", "--receipt-dir", "rc"],
    );
    expect_code(&o, 0);
}

#[test]
fn approvals_that_do_not_fit_this_run_never_count_and_nothing_is_written() {
    let r = Ratify::new("unfit");
    let b = r.bundle("b.tar.gz", 1, "threshold = 2");
    let seq2 = r.bundle("seq2.tar.gz", 2, "threshold = 2");
    r.approve_ok(&b, "alice", "alice.approval");
    // Each case: alice's sound approval plus one that must not count.
    let cases: Vec<(&str, PathBuf)> = vec![
        ("other-params", {
            expect_code(
                &r.approve(&b, "bob", "params.approval", &["--param", "code=APR-2"]),
                0,
            );
            r.dir().join("approvals/params.approval")
        }),
        ("other-sequence", {
            r.approve_ok(&seq2, "bob", "seq2.approval");
            r.dir().join("approvals/seq2.approval")
        }),
        (
            "other-bundle",
            r.craft("bob", "other.approval", |d| d.bundle_id = "0".repeat(64)),
        ),
        (
            "expired",
            r.craft("bob", "expired.approval", |d| {
                d.expires = Some("2020-01-01T00:00:00Z".into())
            }),
        ),
        ("revoked", {
            r.approve_ok(&b, "mallory", "mallory.approval");
            r.dir().join("approvals/mallory.approval")
        }),
        ("key-expired", r.craft("eve", "eve.approval", |_| {})),
        ("not-approver", r.craft("rm", "release.approval", |_| {})),
        ("not-approver", r.craft("op", "operator.approval", |_| {})),
        (
            "same-key",
            r.craft("alice", "alice-again.approval", |d| {
                d.comment = "again".into()
            }),
        ),
        ("bad-signature", {
            let p = r.craft("bob", "edited.approval", |_| {});
            let text = std::fs::read_to_string(&p)
                .unwrap()
                .replace("APR-1", "APR-3");
            std::fs::write(&p, text).unwrap();
            p
        }),
    ];
    let alice = r.dir().join("approvals/alice.approval");
    let alice = alice.to_str().unwrap();
    for (why, bad) in &cases {
        let bad = bad.to_str().unwrap();
        let g = r.gate(&b, &[alice, bad]);
        assert_eq!(g.exit_code, 3, "{why}: READY with {bad}");
        let q = g.ratification.unwrap();
        assert_eq!(q.counted, 1, "{why}");
        let refused = q.approvals.iter().find(|a| a.file == bad).unwrap();
        assert!(!refused.counted);
        assert_eq!(refused.refused.as_deref(), Some(*why), "{:?}", refused.note);
        let o = r.run("apply", &b, &[alice, bad], &["--receipt-dir", "rc"]);
        expect_code(&o, 3);
        assert!(stdout(&o).contains(why), "{why}: {}", stdout(&o));
        r.assert_untouched();
    }
}

#[test]
fn a_required_approver_must_be_among_the_quorum() {
    let r = Ratify::new("required");
    let carol = r.ids["carol"].clone();
    let b = r.bundle(
        "b.tar.gz",
        1,
        &format!("threshold = 2\nrequired = [\"{carol}\"]"),
    );
    r.approve_ok(&b, "alice", "alice.approval");
    r.approve_ok(&b, "bob", "bob.approval");
    let g = r.gate(&b, &["approvals"]);
    assert_eq!(g.exit_code, 3);
    let q = g.ratification.unwrap();
    assert_eq!(
        (q.counted, q.missing_required.clone()),
        (2, vec![carol.clone()])
    );
    let o = r.run("apply", &b, &["approvals"], &["--receipt-dir", "rc"]);
    expect_code(&o, 3);
    assert!(
        stdout(&o).contains(&format!("required key {carol}")),
        "{}",
        stdout(&o)
    );
    r.assert_untouched();
    r.approve_ok(&b, "carol", "carol.approval");
    let o = r.run("apply", &b, &["approvals"], &["--receipt-dir", "rc"]);
    expect_code(&o, 0);
}

#[test]
fn approve_refuses_a_key_that_is_not_an_approver_and_writes_nothing() {
    let r = Ratify::new("approver");
    let b = r.bundle("b.tar.gz", 1, "threshold = 1");
    let o = r.approve(&b, "rm", "rm.approval", &["--param", PARAM]);
    expect_code(&o, 2);
    assert!(stdout(&o).contains("role release"), "{}", stdout(&o));
    assert!(!r.dir().join("approvals/rm.approval").exists());
    assert!(!r.dir().join("approvals/rm.approval.minisig").exists());
    // A required param missing is a usage error too: the approver consents to params.
    expect_code(&r.approve(&b, "alice", "a.approval", &[]), 2);
    assert!(!r.dir().join("approvals/a.approval").exists());
}

impl Ratify {
    /// `ops.approvals`, the table the application stores approvals in (readable by
    /// the gate role through the test database's default privileges).
    fn approvals_table(&self) {
        self.db.exec(
            "CREATE SCHEMA ops; CREATE TABLE ops.approvals (document text, signature text, received timestamptz DEFAULT now())",
        );
    }

    /// Insert the approval `approvals/NAME` (document and signature) as a row.
    fn insert_row(&self, name: &str) {
        let read = |p: PathBuf| std::fs::read_to_string(p).unwrap().replace('\'', "''");
        let doc = self.dir().join("approvals").join(name);
        self.db.exec(&format!(
            "INSERT INTO ops.approvals (document, signature) VALUES ('{}', '{}')",
            read(doc.clone()),
            read(airlock::approval::signature_path(&doc))
        ));
    }
}

const TABLE: &str = "threshold = 2\ntable = \"ops.approvals\"";

#[test]
fn approvals_as_rows_of_the_named_table_count_only_by_their_signatures() {
    let r = Ratify::new("rows");
    r.approvals_table();
    let b = r.bundle("b.tar.gz", 1, TABLE);
    r.approve_ok(&b, "alice", "alice.approval");
    r.approve_ok(&b, "bob", "bob.approval");
    // A row anyone could insert: bob's document edited to other params, his signature.
    let forged = r.craft("bob", "forged.approval", |_| {});
    std::fs::write(
        &forged,
        std::fs::read_to_string(&forged)
            .unwrap()
            .replace("APR-1", "APR-2"),
    )
    .unwrap();
    r.insert_row("forged.approval");
    r.insert_row("alice.approval");
    r.insert_row("alice.approval");
    r.db.exec("INSERT INTO ops.approvals (document) VALUES ('yes, approved')");
    let g = r.gate(&b, &[]);
    assert_eq!((g.exit_code, g.verdict.as_str()), (3, "BLOCKED"));
    let q = g.ratification.unwrap();
    assert_eq!((q.counted, q.met), (1, false));
    let why: Vec<Option<&str>> = q.approvals.iter().map(|a| a.refused.as_deref()).collect();
    assert!(why.contains(&Some("bad-signature")), "{why:?}");
    assert!(why.contains(&Some("same-key")), "{why:?}");
    assert!(why.contains(&Some("malformed")), "{why:?}");
    assert!(q
        .approvals
        .iter()
        .all(|a| a.file.starts_with("ops.approvals row ")));
    let o = r.run("apply", &b, &[], &["--receipt-dir", "rc"]);
    expect_code(&o, 3);
    r.assert_untouched();

    // The last approver's row arrives: READY, and the receipt carries the rows.
    r.insert_row("bob.approval");
    let g = r.gate(&b, &[]);
    assert_eq!((g.exit_code, g.verdict.as_str()), (0, "READY"));
    // A file and a row by the same key count once.
    let g = r.gate(&b, &["approvals/alice.approval"]);
    assert_eq!(g.ratification.unwrap().counted, 2);
    let o = r.run("apply", &b, &[], &["--receipt", "r.json"]);
    expect_code(&o, 0);
    let receipt: serde_json::Value =
        serde_json::from_slice(&std::fs::read(r.dir().join("r.json")).unwrap()).unwrap();
    let carried: Quorum =
        serde_json::from_value(receipt["gates"]["ratification"].clone()).expect("approvals");
    assert_eq!((carried.counted, carried.met), (2, true));
}

#[test]
fn an_approvals_table_the_gate_role_cannot_read_counts_nothing_and_says_why() {
    let r = Ratify::new("rowsdenied");
    r.approvals_table();
    let b = r.bundle("b.tar.gz", 1, TABLE);
    r.approve_ok(&b, "alice", "alice.approval");
    r.approve_ok(&b, "bob", "bob.approval");
    r.insert_row("alice.approval");
    r.insert_row("bob.approval");
    r.db.exec("REVOKE SELECT ON ops.approvals FROM airlock_gate");
    let o = r.run("gate", &b, &[], &[]);
    expect_code(&o, 3);
    let text = stdout(&o);
    assert!(
        text.contains("table ops.approvals could not be read as the gate role")
            && text.contains("permission denied"),
        "{text}"
    );
    // plan names the grant the gate role needs.
    let o = r.run("plan", &b, &[], &[]);
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let grants = plan["gate_grants"]["statements"].to_string();
    assert!(
        grants.contains("GRANT SELECT ON ops.approvals TO airlock_gate"),
        "{grants}"
    );
    let o = r.run("apply", &b, &[], &["--receipt-dir", "rc"]);
    expect_code(&o, 3);
    r.assert_untouched();
    // A missing table is the same: nothing counts from it.
    r.db.exec("DROP TABLE ops.approvals");
    let g = r.gate(&b, &[]);
    assert_eq!(g.exit_code, 3);
    // Files still count beside it.
    let g = r.gate(&b, &["approvals"]);
    assert_eq!((g.exit_code, g.verdict.as_str()), (0, "READY"));
}

#[test]
fn apply_wait_goes_on_when_the_last_approval_row_arrives() {
    use util::child::{finish, spawn, until_line};
    let r = Ratify::new("rowswait");
    r.approvals_table();
    let b = r.bundle("b.tar.gz", 1, TABLE);
    r.approve_ok(&b, "alice", "alice.approval");
    r.approve_ok(&b, "bob", "bob.approval");
    r.insert_row("alice.approval");
    let conn = r.db.conn();
    let mut child = spawn(
        r.dir(),
        &[
            "apply",
            &b,
            "--param",
            PARAM,
            "--trust",
            "trust",
            "--db",
            &conn,
            "--receipt",
            "r.json",
            "--wait",
            "--poll-interval",
            "200ms",
            "--wait-timeout",
            "2m",
        ],
    );
    let (err, seen) = until_line(&mut child, "BLOCKED");
    assert!(
        seen.last().unwrap().contains("ratification: 1 of 2"),
        "{seen:?}"
    );
    r.assert_untouched();
    r.insert_row("bob.approval");
    let (code, out, rest) = finish(child, err);
    assert_eq!(code, 0, "{out}\n{rest}");
    assert!(rest.contains(": READY"), "{rest}");
    assert_eq!(
        r.db.scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'app'"),
        "2"
    );
    let receipt: serde_json::Value =
        serde_json::from_slice(&std::fs::read(r.dir().join("r.json")).unwrap()).unwrap();
    assert_eq!(receipt["gates"]["ratification"]["counted"], 2);
}

#[test]
fn a_required_key_group_needs_one_of_its_approvers() {
    let r = Ratify::new("groups");
    // carol is the L4 approver (trust.toml groups).
    let toml = std::fs::read_to_string(r.dir().join("trust/trust.toml")).unwrap();
    let carol = format!("[keys.{}]\nrole = \"approver\"\n", r.ids["carol"]);
    assert!(toml.contains(&carol), "{toml}");
    std::fs::write(
        r.dir().join("trust/trust.toml"),
        toml.replace(&carol, &format!("{carol}groups = [\"l4\"]\n")),
    )
    .unwrap();
    let b = r.bundle("b.tar.gz", 1, "threshold = 2\nrequired_groups = [\"l4\"]");
    for k in ["alice", "bob", "carol"] {
        r.approve_ok(&b, k, &format!("{k}.approval"));
    }
    let a = |k: &str| format!("approvals/{k}.approval");
    let g = r.gate(&b, &[&a("alice"), &a("bob")]);
    assert_eq!(g.exit_code, 3);
    let o = r.run(
        "apply",
        &b,
        &[&a("alice"), &a("bob")],
        &["--receipt-dir", "rc"],
    );
    expect_code(&o, 3);
    assert!(
        stdout(&o).contains("missing: an approver of group l4"),
        "{}",
        stdout(&o)
    );
    r.assert_untouched();
    let g = r.gate(&b, &[&a("alice"), &a("carol")]);
    assert_eq!((g.exit_code, g.verdict.as_str()), (0, "READY"));
    // A group on a key that is not an approver is refused when the store loads.
    let rm = format!("[keys.{}]\nrole = \"operator\"\n", r.ids["op"]);
    let toml = std::fs::read_to_string(r.dir().join("trust/trust.toml")).unwrap();
    std::fs::write(
        r.dir().join("trust/trust.toml"),
        toml.replace(&rm, &format!("{rm}groups = [\"l4\"]\n")),
    )
    .unwrap();
    let o = r.run("gate", &b, &[&a("alice"), &a("carol")], &[]);
    expect_code(&o, 2);
    assert!(
        stdout(&o).contains("has groups but role operator"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn a_quorum_for_some_gates_leaves_the_other_gated_tiers_to_their_gates() {
    let r = Ratify::new("pergate");
    // structure waits on a `window` gate only; seed on `g`, which the quorum guards.
    let b = r.bundle_with("b.tar.gz", 1, "threshold = 1\ngates = [\"g\"]", |t| {
        t.replacen("gates = []", "gates = [\"window\"]", 1)
            .replacen(
                "[[gate]]\n",
                "[[gate]]\nname = \"window\"\nfile = \"sql/gate.sql\"\n\n[[gate]]\n",
                1,
            )
    });
    // No approval: the window tier runs on its gate alone, the ratified one does not.
    let o = r.run(
        "apply",
        &b,
        &[],
        &["--through", "structure", "--receipt", "s.json"],
    );
    expect_code(&o, 0);
    let receipt: serde_json::Value =
        serde_json::from_slice(&std::fs::read(r.dir().join("s.json")).unwrap()).unwrap();
    assert!(receipt["gates"]["ratification"].is_null(), "{receipt:#}");
    let o = r.run("apply", &b, &[], &["--receipt-dir", "rc"]);
    expect_code(&o, 3);
    assert!(
        stdout(&o).contains("ratification: 0 of 1"),
        "{}",
        stdout(&o)
    );
    assert_eq!(
        r.db.scalar("SELECT count(*) FROM pg_tables WHERE tablename = 'seeded'"),
        "0"
    );
    r.approve_ok(&b, "alice", "alice.approval");
    let o = r.run("apply", &b, &["approvals"], &["--receipt-dir", "rc"]);
    expect_code(&o, 0);
    // A gate the quorum names must exist.
    let s = MiniSource::new(
        &r.dir().join("src-bad"),
        &r.db.name,
        "SELECT true AS ready",
        &[("seed", "SELECT 1;", true)],
        "SELECT 1;",
    );
    let toml = s.dir.join("bundle.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(
        &toml,
        format!("{text}\n[ratification]\nthreshold = 1\ngates = [\"nope\"]\n"),
    )
    .unwrap();
    let o = airlock(r.dir(), &["lint", s.dir.to_str().unwrap()]);
    expect_code(&o, 2);
    let said = format!("{}{}", stdout(&o), String::from_utf8_lossy(&o.stderr));
    assert!(
        said.contains("names gate \"nope\", which no [[gate]] declares"),
        "{said}"
    );
}

/// What the approver reads before consenting says a param left out must stay out and
/// names the group once; the gate names approvers as the trust store does (issue 48,
/// finding 9).
#[test]
fn the_approver_reads_what_a_left_out_param_means_and_approvers_go_by_name() {
    let r = Ratify::new("names");
    let toml = r.dir().join("trust/trust.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    let alice = format!("[keys.{}]\nrole = \"approver\"\n", r.ids["alice"]);
    std::fs::write(
        &toml,
        text.replace(
            &alice,
            &format!("{alice}name = \"Alice Owner\"\ngroups = [\"finance\"]\n"),
        ),
    )
    .unwrap();
    let b = r.bundle_with(
        "b.tar.gz",
        1,
        "threshold = 1\nrequired_groups = [\"finance\"]",
        |t| {
            t.replace(
                "[[gate]]",
                "[params.note]\ndescription = \"an optional note\"\n\n[[gate]]",
            )
        },
    );
    // On a terminal, `note` left out: the text says what leaving it out binds.
    let o = airlock_tty(
        r.dir(),
        &[
            "approve",
            &b,
            "--trust",
            "trust",
            "--key",
            "alice.key",
            "--param",
            PARAM,
            "--out",
            "approvals/x.approval",
        ],
        "wrong-name\n",
    );
    let shown = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        shown.contains("note: not given, and a run must not give it either"),
        "{shown}"
    );
    assert!(shown.contains("one from the group finance"), "{shown}");
    assert!(!r.dir().join("approvals/x.approval").exists());
    r.approve_ok(&b, "alice", "alice.approval");
    let o = r.run("gate", &b, &["approvals/alice.approval"], &[]);
    expect_code(&o, 0);
    assert!(
        stdout(&o).contains("\"key_name\": \"Alice Owner\""),
        "{}",
        stdout(&o)
    );
    let conn = r.db.conn();
    let o = airlock(
        r.dir(),
        &[
            "gate",
            &b,
            "--param",
            PARAM,
            "--approval",
            "approvals/alice.approval",
            "--trust",
            "trust",
            "--db",
            &conn,
        ],
    );
    expect_code(&o, 0);
    assert!(
        stdout(&o).contains("(by Alice Owner, key "),
        "{}",
        stdout(&o)
    );
}

/// Issue 68, item 10: on an 80-column terminal the approver's screen is wrapped at
/// spaces: no line is wider than the terminal unless it is one word that is (a key id
/// or hash is never split), and the bundle's name and the param's value, long as they
/// are, are shown whole; a wrong confirmation writes no approval.
#[test]
fn at_80_columns_the_approvers_screen_splits_no_word() {
    let r = Ratify::new("approve_80_columns");
    let long = "customer_email_normalization_and_unique_index_release";
    let b = r.bundle_with("b.tar.gz", 1, "threshold = 1", |t| {
        t.replace("name = \"mini\"", &format!("name = \"{long}\""))
    });
    let value = "APR-2026-11-27-customer-email-normalization-approved-by-the-change-board";
    let o = airlock_tty_sized(
        r.dir(),
        &[
            "approve",
            &b,
            "--trust",
            "trust",
            "--key",
            "alice.key",
            "--param",
            &format!("code={value}"),
            "--out",
            "approvals/x.approval",
        ],
        "wrong-name\n",
        Some(80),
    );
    let shown = String::from_utf8_lossy(&o.stdout).replace('\r', "");
    for line in shown.lines() {
        if line.chars().count() > 80 {
            assert!(
                // (The error follows the prompt on its line: the typed answer was
                // echoed first.)
                !line.trim().contains(' ') || line.contains("error: cancelled"),
                "a line wider than the terminal, split by it mid-word:\n{line}\n\n{shown}"
            );
        }
    }
    assert!(shown.contains(long), "{shown}");
    assert!(shown.contains(value), "{shown}");
    assert_ne!(o.status.code(), Some(0), "{shown}");
    assert!(!r.dir().join("approvals/x.approval").exists());
}
