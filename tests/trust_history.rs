//! Audit across rotations (issue 49): each bundle's signatures are judged with the
//! trust store version in force when it was signed (its ledger row's time), from the
//! history the store keeps, with every revocation later versions made; a history that
//! does not prove itself is never used.

mod util;
use std::path::Path;
use util::*;

fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    for e in walkdir::WalkDir::new(from) {
        let e = e.unwrap();
        let dest = to.join(e.path().strip_prefix(from).unwrap());
        if e.file_type().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
}

fn id(dir: &Path, key: &str) -> String {
    key_id_of(&dir.join(format!("{key}.pub")))
}

struct Keeper {
    t: tempfile::TempDir,
}

impl Keeper {
    fn dir(&self) -> &Path {
        self.t.path()
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        let state = self.dir().join("state");
        airlock_env(
            self.dir(),
            args,
            &[("AIRLOCK_STATE_DIR", state.to_str().unwrap())],
        )
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        expect_code(&o, 0);
        stdout(&o)
    }

    /// The next version of `store`: `edits` (which start it), `hand` on its directory,
    /// then `issued` set by hand (before signing: the signatures cover it), signed by r1
    /// and r2, installed with `trust update`.
    fn next_version(&self, store: &str, edits: &[&[&str]], hand: impl Fn(&Path), issued: &str) {
        copy_dir(&self.dir().join(store), &self.dir().join("next"));
        for e in edits {
            let mut a: Vec<&str> = e.to_vec();
            a.insert(2, "next");
            self.ok(&a);
        }
        hand(&self.dir().join("next"));
        let toml = self.dir().join("next/trust.toml");
        let text: Vec<String> = std::fs::read_to_string(&toml)
            .unwrap()
            .lines()
            .map(|l| match l.starts_with("issued") {
                true => format!("issued = \"{issued}\""),
                false => l.to_string(),
            })
            .collect();
        std::fs::write(&toml, text.join("\n") + "\n").unwrap();
        for k in ["r1", "r2"] {
            self.ok(&["trust", "sign", "next", "--key", &format!("{k}.key")]);
        }
        self.ok(&["trust", "update", "next", "--trust", store]);
    }

    /// `audit BUNDLE --trust store [--db CONN]`: exit code and document.
    fn audit(&self, bundle: &str, db: Option<&TestDb>) -> (i32, serde_json::Value) {
        let mut a = vec!["--json", "audit", bundle, "--trust", "store"];
        let conn = db.map(TestDb::conn).unwrap_or_default();
        if db.is_some() {
            a.extend(["--db", &conn]);
        }
        let o = self.run(&a);
        (code(&o), json(&o))
    }

    /// The `at` of the ledger row that applied `bundle_id`.
    fn applied_at(db: &TestDb, bundle: &str) -> chrono::DateTime<chrono::Utc> {
        let _ = bundle;
        chrono::DateTime::parse_from_rfc3339(&db.scalar(
            "SELECT at FROM airlock.ledger WHERE event = 'apply' ORDER BY seq DESC LIMIT 1",
        ))
        .unwrap()
        .with_timezone(&chrono::Utc)
    }
}

fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Wait (bounded) until the clock has passed `t`: a time set in a store must be in
/// the past before the audit judges at "now".
fn until_past(t: chrono::DateTime<chrono::Utc>) {
    while chrono::Utc::now() <= t {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Every verdict of an audit document, one line each.
fn lines(doc: &serde_json::Value) -> Vec<String> {
    doc["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            format!(
                "{} | {} | {} | {}",
                v["check"].as_str().unwrap(),
                v["verdict"].as_str().unwrap(),
                v["detail"].as_str().unwrap(),
                v["basis"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn each_signature_is_judged_with_the_version_in_force_when_it_was_signed() {
    let k = Keeper { t: keyed_dir() };
    let d = k.dir();
    for name in ["r1", "r2", "rm2", "op"] {
        keygen(d, name);
    }
    k.ok(&["trust", "add", "store", "rm.pub"]);
    // The operator's key signs each apply's ledger rows: only a signed row's time is
    // evidence of when a bundle existed (issue 86).
    k.ok(&["trust", "add", "store", "op.pub", "--role", "operator"]);
    k.ok(&["trust", "add", "store", "r1.pub", "--role", "root"]);
    k.ok(&["trust", "add", "store", "r2.pub", "--role", "root"]);
    k.ok(&["trust", "set", "store", "--root-threshold", "2"]);
    for r in ["r1", "r2"] {
        k.ok(&["trust", "sign", "store", "--key", &format!("{r}.key")]);
    }
    let db = TestDb::new("trust_history");
    db.exec("CREATE SCHEMA app;");
    let release = |out: &str, key: &str, table: &str| {
        let s = MiniSource::new(
            &d.join(format!("src-{out}")),
            &db.name,
            "SELECT true AS ready",
            &[(
                table,
                &format!("CREATE TABLE app.{table} (i int);\n"),
                false,
            )],
            &format!("DROP TABLE app.{table};\n"),
        );
        let toml = s.dir.join("bundle.toml");
        let text = std::fs::read_to_string(&toml)
            .unwrap()
            .replace("name = \"mini\"", &format!("name = \"{table}\""));
        std::fs::write(&toml, text).unwrap();
        // Its own table is not there yet (the others' are).
        std::fs::write(
            s.dir.join("sql/probe.sql"),
            format!("SELECT 't'::text AS key, (SELECT count(*) FROM pg_tables WHERE schemaname = 'app' AND tablename = '{table}')::text AS value"),
        )
        .unwrap();
        pack(d, &s.dir, key, out);
        out.to_string()
    };
    let rm = id(d, "rm");
    // Release one, signed by rm, applied under version 1.
    let one = release("one.tar.gz", "rm.key", "a");
    k.ok(&[
        "apply",
        &one,
        "--trust",
        "store",
        "--db",
        &db.conn(),
        "--out",
        "receipts",
        "--sign-receipt",
        "op.key",
    ]);
    let one_at = Keeper::applied_at(&db, &one);
    // Version 2, issued after that: rm taken out (its holder left; not revoked), rm2
    // the release key from then on.
    let issued2 = one_at + chrono::Duration::seconds(1);
    k.next_version(
        "store",
        &[&["trust", "add", "rm2.pub"]],
        |dir| {
            // rm.pub and its [keys.ID] table go (by hand, before signing).
            std::fs::remove_file(dir.join("rm.pub")).unwrap();
            let toml = dir.join("trust.toml");
            let text = std::fs::read_to_string(&toml).unwrap();
            let mut skipping = false;
            let kept: Vec<&str> = text
                .lines()
                .filter(|l| {
                    if l.starts_with('[') {
                        skipping = *l == format!("[keys.{rm}]");
                    }
                    !skipping
                })
                .collect();
            std::fs::write(&toml, kept.join("\n") + "\n").unwrap();
        },
        &rfc3339(issued2),
    );
    until_past(issued2);
    // One is judged with version 1, in force when its ledger row was written: it passes.
    let (c, doc) = k.audit(&one, Some(&db));
    assert_eq!(c, 0, "{:#?}", lines(&doc));
    assert_eq!(doc["bundles"][0]["trust_store_version"], 1, "{doc:#}");
    assert!(
        lines(&doc)
            .iter()
            .any(|l| l.contains("threshold | PASS") && l.contains("trust store version 1")),
        "{:#?}",
        lines(&doc)
    );
    // A bundle rm signs now has no evidence of an earlier time: version 2 judges it,
    // and rm is not in it.
    let late = release("late.tar.gz", "rm.key", "b");
    let (c, doc) = k.audit(&late, None);
    assert_eq!(c, 4, "{doc:#}");
    assert_eq!(doc["bundles"][0]["trust_store_version"], 2, "{doc:#}");

    // A later version's revocation covers the earlier version's times: rm2 signs
    // release three (applied under version 2), then version 3 revokes rm2 from before
    // that apply (the key leaked earlier than anyone knew).
    let three = release("three.tar.gz", "rm2.key", "c");
    k.ok(&[
        "apply",
        &three,
        "--trust",
        "store",
        "--db",
        &db.conn(),
        "--out",
        "receipts",
        "--sign-receipt",
        "op.key",
    ]);
    let three_at = Keeper::applied_at(&db, &three);
    let issued3 = three_at + chrono::Duration::seconds(1);
    let rm2 = id(d, "rm2");
    let leaked = rfc3339(three_at - chrono::Duration::seconds(30));
    k.next_version(
        "store",
        &[&[
            "trust", "revoke", &rm2, "--from", &leaked, "--reason", "leaked",
        ]],
        |_| {},
        &rfc3339(issued3),
    );
    until_past(issued3);
    let (c, doc) = k.audit(&three, Some(&db));
    assert_eq!(c, 4, "{:#?}", lines(&doc));
    assert_eq!(doc["bundles"][0]["trust_store_version"], 2, "{doc:#}");
    assert!(
        lines(&doc).iter().any(|l| l.contains("threshold | FAIL")),
        "{:#?}",
        lines(&doc)
    );
    // Release one still passes under version 1 (rm2's revocation does not touch it).
    let (c, _) = k.audit(&one, Some(&db));
    assert_eq!(c, 0);

    // A history that does not prove itself is never used: version 1 edited by hand,
    // and release one is judged with the current version (no proven version was in
    // force then; rm is unknown to it).
    let v1 = d.join("store/history/v1/trust.toml");
    let text = std::fs::read_to_string(&v1).unwrap();
    std::fs::write(&v1, format!("{text}# edited\n")).unwrap();
    let (c, doc) = k.audit(&one, Some(&db));
    assert_eq!(c, 4, "{:#?}", lines(&doc));
    assert_eq!(doc["bundles"][0]["trust_store_version"], 3, "{doc:#}");
}
