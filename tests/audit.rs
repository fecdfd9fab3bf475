//! `airlock audit`: archived bundles, receipts and the ledger, judged years later with
//! a trust store that changed since. Plus the auditor's path with no airlock at all.

mod util;
use std::path::Path;
use util::*;

// Signing times (trusted-comment timestamps come from SOURCE_DATE_EPOCH).
const T2025: &str = "1735689600"; // 2025-01-01T00:00:00Z
const T2026: &str = "1767225600"; // 2026-01-01T00:00:00Z

fn mini(dir: &Path, name: &str, seq: u32, db: &str) -> std::path::PathBuf {
    let root = dir.join(format!("src-{name}-{seq}"));
    let s = MiniSource::new(
        &root,
        db,
        "SELECT true AS ready",
        // Gated, so receipts carry a gate and its reason (apply: `--param code=…`).
        &[("t1", "CREATE TABLE app.t1(i int);", true)],
        "DROP TABLE IF EXISTS app.t1;",
    );
    let toml = s.dir.join("bundle.toml");
    let text = std::fs::read_to_string(&toml)
        .unwrap()
        .replace("name = \"mini\"", &format!("name = \"{name}\""))
        .replace("sequence = 1", &format!("sequence = {seq}"));
    std::fs::write(&toml, text).unwrap();
    s.dir
}

fn pack_at(dir: &Path, src: &Path, key: &str, out: &str, epoch: &str) {
    let o = airlock_env(
        dir,
        &["pack", src.to_str().unwrap(), "--key", key, "--out", out],
        &[("SOURCE_DATE_EPOCH", epoch)],
    );
    expect_code(&o, 0);
}

fn store(dir: &Path, keys: &[&str], toml: &str) -> String {
    let s = trust_store(dir, "store", keys, toml);
    s.to_str().unwrap().to_string()
}

fn audit(dir: &Path, args: &[&str]) -> (i32, serde_json::Value) {
    let mut a = vec!["--json", "audit"];
    a.extend(args);
    let o = airlock(dir, &a);
    let doc = json(&o);
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("schemas/audit.schema.json")).unwrap(),
    )
    .unwrap();
    let compiled = jsonschema::JSONSchema::compile(&schema).unwrap();
    assert!(
        compiled.is_valid(&doc),
        "audit output does not match schemas/audit.schema.json"
    );
    (code(&o), doc)
}

fn fails(doc: &serde_json::Value) -> Vec<String> {
    doc["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["verdict"] == "FAIL")
        .map(|v| {
            format!(
                "{} | {} | {}",
                v["subject"].as_str().unwrap(),
                v["check"].as_str().unwrap(),
                v["detail"].as_str().unwrap()
            )
        })
        .collect()
}

/// Some FAIL verdict of the audit document says every one of `needles`.
#[track_caller]
fn assert_fail(doc: &serde_json::Value, needles: &[&str]) {
    let fails = fails(doc);
    assert!(
        fails.iter().any(|l| needles.iter().all(|n| l.contains(n))),
        "no FAIL verdict says {needles:?}: {fails:#?}"
    );
}

#[test]
fn archive_directory_with_one_tampered_bundle_names_it_and_passes_the_rest() {
    let t = tempdir();
    let d = t.path();
    keygen(d, "rm");
    std::fs::create_dir(d.join("archive")).unwrap();
    for (i, name) in ["alpha", "bravo", "charlie"].iter().enumerate() {
        let src = mini(d, name, 1, "x");
        pack_at(
            d,
            &src,
            "rm.key",
            &format!("archive/{name}.airlock.tar.gz"),
            T2025,
        );
        let _ = i;
    }
    // Tamper with bravo: one byte of its compressed stream.
    let p = d.join("archive/bravo.airlock.tar.gz");
    let mut bytes = std::fs::read(&p).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&p, bytes).unwrap();
    let s = store(d, &["rm"], "");
    let (code, doc) = audit(d, &["archive", "--trust", &s]);
    assert_eq!(code, 4);
    let f = fails(&doc);
    assert!(
        !f.is_empty() && f.iter().all(|l| l.contains("bravo")),
        "{f:#?}"
    );
    let ok: Vec<bool> = doc["bundles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["ok"].as_bool().unwrap())
        .collect();
    assert_eq!(ok, vec![true, false, true]);
}

#[test]
fn a_retired_key_counts_only_with_evidence() {
    let t = tempdir();
    let d = t.path();
    let old = keygen(d, "old");
    keygen(d, "new");
    pack_at(d, &mini(d, "rel", 1, "x"), "old.key", "r1.tar.gz", T2025);
    pack_at(d, &mini(d, "rel", 2, "x"), "new.key", "r2.tar.gz", T2026);
    // The old key was retired at the end of 2025; the new one starts then. r1 claims
    // to be signed in 2025, but the old key's holder could sign it today with that
    // claim: without evidence of its existence by the end of 2025, it does not count.
    let s = store(
        d,
        &["old", "new"],
        &format!("[keys.{old}]\nnot_after = \"2025-12-31T23:59:59Z\"\n"),
    );
    let (code, doc) = audit(d, &["r1.tar.gz", "r2.tar.gz", "--trust", &s]);
    assert_eq!(code, 4);
    let f = fails(&doc);
    assert!(
        f.len() == 1 && f[0].contains("r1.tar.gz | threshold"),
        "{f:#?}"
    );
    // Judging an earlier time does not change that.
    let (code, _) = audit(
        d,
        &["r1.tar.gz", "--trust", &s, "--at", "2025-06-01T00:00:00Z"],
    );
    assert_eq!(code, 4);
}

#[test]
fn a_signature_back_dated_before_a_revocation_does_not_count() {
    // The insider case: a key revoked from 2025-06-01 ("laptop lost") signs a new
    // bundle with SOURCE_DATE_EPOCH in 2025-01. Its claimed time is only a claim.
    let t = tempdir();
    let d = t.path();
    let k = keygen(d, "rm");
    pack_at(d, &mini(d, "rel", 1, "x"), "rm.key", "r.tar.gz", T2025);
    let s = store(
        d,
        &["rm"],
        &format!(
            "[keys.{k}]\nrevoked = \"2025-06-01T00:00:00Z\"\nrevoked_reason = \"laptop lost\"\n"
        ),
    );
    for at in [None, Some("2025-03-01T00:00:00Z")] {
        let mut args = vec!["r.tar.gz", "--trust", &s];
        if let Some(at) = at {
            args.extend(["--at", at]);
        }
        let (code, doc) = audit(d, &args);
        assert_eq!(code, 4, "{at:?}");
        let sig = &doc["bundles"][0]["trust"]["signatures"][0];
        assert_eq!(sig["not_counted"], "revoked", "{sig:#}");
        assert!(
            sig["basis"]
                .as_str()
                .unwrap()
                .contains("signer claims 2025-01-01T00:00:00Z (a claim, not evidence)"),
            "{sig:#}"
        );
        assert_fail(&doc, &["threshold", "0 distinct"]);
    }
    // `verify` refuses it too.
    let o = airlock(d, &["verify", "r.tar.gz", "--trust", &s]);
    expect_code(&o, 4);
}

#[test]
fn threshold_raised_after_signing_is_reported() {
    let t = tempdir();
    let d = t.path();
    keygen(d, "rm");
    keygen(d, "co");
    pack_at(d, &mini(d, "rel", 1, "x"), "rm.key", "r.tar.gz", T2025);
    let s = store(d, &["rm", "co"], "threshold = 2\n");
    let (code, doc) = audit(d, &["r.tar.gz", "--trust", &s]);
    assert_eq!(code, 4);
    assert_fail(&doc, &["1 distinct trusted key(s), 2 required"]);
}

#[test]
fn an_operator_key_alone_does_not_meet_the_release_threshold() {
    let t = tempdir();
    let d = t.path();
    let op = keygen(d, "op");
    pack_at(d, &mini(d, "rel", 1, "x"), "op.key", "r.tar.gz", T2025);
    let s = store(d, &["op"], &format!("[keys.{op}]\nrole = \"operator\"\n"));
    let (code, doc) = audit(d, &["r.tar.gz", "--trust", &s]);
    assert_eq!(code, 4);
    assert_fail(&doc, &["threshold"]);
}

/// Apply a mini bundle with a signed receipt; returns (dir-relative bundle, receipt).
fn applied(d: &Path, db: &TestDb) -> (String, String) {
    keygen(d, "rm");
    keygen(d, "op");
    db.exec("CREATE SCHEMA app;");
    pack_at(d, &mini(d, "rel", 1, &db.name), "rm.key", "r.tar.gz", T2025);
    let o = airlock(
        d,
        &[
            "apply",
            "r.tar.gz",
            "--trust",
            "rm.pub",
            "--db",
            &db.conn(),
            "--receipt",
            "apply.json",
            "--sign-receipt",
            "op.key",
            "--param",
            "code=APR-1",
        ],
    );
    expect_code(&o, 0);
    assert!(d.join("apply.json.minisig").exists());
    ("r.tar.gz".into(), "apply.json".into())
}

#[test]
fn receipts_and_ledger_pass_together_and_each_forgery_is_named() {
    let t = tempdir();
    let d = t.path();
    let db = TestDb::new("audit");
    let (b, r) = applied(d, &db);
    let op_id = std::fs::read_to_string(d.join("op.pub"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .to_string();
    let s = store(
        d,
        &["rm", "op"],
        &format!("[keys.{op_id}]\nrole = \"operator\"\n"),
    );
    let conn = db.conn();
    let (code, doc) = audit(d, &[&b, "--trust", &s, "--receipt", &r, "--db", &conn]);
    assert_eq!(code, 0, "{:#?}", fails(&doc));
    assert!(doc["receipts"][0]["signed_by"]
        .as_str()
        .unwrap()
        .contains("operator"));

    // A receipt for another bundle.
    pack_at(
        d,
        &mini(d, "other", 1, &db.name),
        "rm.key",
        "other.tar.gz",
        T2025,
    );
    let (code, doc) = audit(d, &["other.tar.gz", "--trust", &s, "--receipt", &r]);
    assert_eq!(code, 4);
    assert_fail(&doc, &["not among the audited bundles"]);

    // An edited receipt: its signature and its ledger row no longer agree.
    let text = std::fs::read_to_string(d.join(&r)).unwrap();
    std::fs::write(
        d.join("edited.json"),
        text.replace("\"operator\": \"", "\"operator\": \"mallory-"),
    )
    .unwrap();
    std::fs::copy(d.join("apply.json.minisig"), d.join("edited.json.minisig")).unwrap();
    let (code, doc) = audit(d, &[&b, "--trust", &s, "--receipt", "edited.json"]);
    assert_eq!(code, 4);
    assert_fail(&doc, &["receipt signature", "does not verify"]);
    let edited_row = text.replace("\"tiers\": \"[", "\"tiers\": \"[\\\"extra\\\",");
    std::fs::write(d.join("edited2.json"), edited_row).unwrap();
    let (code, doc) = audit(d, &[&b, "--trust", &s, "--receipt", "edited2.json"]);
    assert_eq!(code, 4);
    assert_fail(&doc, &["integrity"]);

    // The receipt audited against another database that has a ledger of its own: it
    // is not checked against that ledger (it names its own database), and that
    // ledger's row of another "rel" fails.
    let db2 = TestDb::new("audit2");
    db2.exec("CREATE SCHEMA app;");
    let t2 = tempdir();
    let d2 = t2.path();
    std::fs::copy(d.join("rm.key"), d2.join("rm.key")).unwrap();
    std::fs::copy(d.join("rm.pub"), d2.join("rm.pub")).unwrap();
    let src2 = mini(d2, "rel", 1, &db2.name);
    pack_at(d2, &src2, "rm.key", "r2.tar.gz", T2025);
    let o = airlock(
        d2,
        &[
            "apply",
            "r2.tar.gz",
            "--trust",
            "rm.pub",
            "--db",
            &db2.conn(),
            "--param",
            "code=APR-1",
        ],
    );
    expect_code(&o, 0);
    let conn2 = db2.conn();
    let (code, doc) = audit(d, &[&b, "--trust", &s, "--receipt", &r, "--db", &conn2]);
    assert_eq!(code, 4);
    let v = verdict(&doc, &r, "ledger");
    assert_eq!(v["verdict"], "NOTE", "{v:#}");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("database {}'s ledger was not given", db.name)),
        "{v:#}"
    );
    assert_fail(
        &doc,
        &["ledger row 1 bundle", "which no audited bundle has"],
    );
}

#[test]
fn a_ledger_with_a_deleted_middle_row_fails_the_audit() {
    let t = tempdir();
    let d = t.path();
    let db = TestDb::new("auditdel");
    let (b, _) = applied(d, &db);
    let conn = db.conn();
    for _ in 0..2 {
        expect_code(
            &airlock(
                d,
                &["rollback", "r.tar.gz", "--trust", "rm.pub", "--db", &conn],
            ),
            0,
        );
        expect_code(
            &airlock(
                d,
                &[
                    "apply",
                    "r.tar.gz",
                    "--trust",
                    "rm.pub",
                    "--db",
                    &conn,
                    "--param",
                    "code=APR-1",
                ],
            ),
            0,
        );
    }
    let s = store(d, &["rm"], "");
    let (code, _) = audit(d, &[&b, "--trust", &s, "--db", &conn]);
    assert_eq!(code, 0);
    db.exec(
        "ALTER TABLE airlock.ledger DISABLE TRIGGER ALL; DELETE FROM airlock.ledger WHERE seq = 3; ALTER TABLE airlock.ledger ENABLE TRIGGER ALL;",
    );
    let (code, doc) = audit(d, &[&b, "--trust", &s, "--db", &conn]);
    assert_eq!(code, 4);
    assert_fail(&doc, &["ledger hash chain", "row 4"]);
}

#[test]
fn the_readme_auditor_path_works_with_no_airlock_at_all() {
    let t = tempdir();
    let d = t.path();
    let key_id = keygen(d, "alice");
    let src = reference_source(d, "directus");
    pack(d, &src, "alice.key", "bundle.airlock.tar.gz");
    let sh = format!(
        "set -e; test -z \"$(tar --numeric-owner --utc -tvzf bundle.airlock.tar.gz | grep -v '^-rw-r--r-- 0/0 .* 1970-01-01 00:00 ')\"\n\
         mkdir audit && tar --no-same-owner --no-same-permissions -xzf bundle.airlock.tar.gz -C audit && cd audit\n\
         minisign -Vm manifest.json -x signatures/{key_id}.minisig -p ../alice.pub\n\
         sha256sum -c SHA256SUMS\n\
         want=$(grep -o '\"path\":\"SHA256SUMS\",\"sha256\":\"[0-9a-f]*\"' manifest.json | grep -o '[0-9a-f]\\{{64\\}}')\n\
         got=$(sha256sum SHA256SUMS | cut -d' ' -f1)\n\
         test \"$want\" = \"$got\"\n\
         sha256sum manifest.json | cut -d' ' -f1"
    );
    let o = std::process::Command::new("bash")
        .current_dir(d)
        .args(["-c", &sh])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let out = String::from_utf8_lossy(&o.stdout);
    let id = out.lines().last().unwrap().trim();
    let v = airlock(
        d,
        &[
            "--json",
            "verify",
            "bundle.airlock.tar.gz",
            "--trust",
            "alice.pub",
        ],
    );
    expect_code(&v, 0);
    assert_eq!(
        json(&v)["bundle_id"],
        id,
        "sha256 of manifest.json must be the bundle id"
    );
}

/// The key id in a `.pub` file.
fn key_id_of(d: &Path, name: &str) -> String {
    std::fs::read_to_string(d.join(format!("{name}.pub")))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .to_string()
}

/// The store an auditor uses after `applied`: rm (release) and op (operator), plus
/// whatever else trust.toml says.
fn audit_store(d: &Path, extra: &str) -> String {
    let op = key_id_of(d, "op");
    store(
        d,
        &["rm", "op"],
        &format!("[keys.{op}]\nrole = \"operator\"\n{extra}"),
    )
}

fn verdict<'a>(doc: &'a serde_json::Value, subject: &str, check: &str) -> &'a serde_json::Value {
    doc["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["subject"].as_str().unwrap().contains(subject) && v["check"] == check)
        .unwrap_or_else(|| panic!("no verdict {subject} | {check} in {doc:#}"))
}

/// A ledger row's `row_hash` as airlock computes it: sha256(prev_hash || the row's
/// sorted-key JSON without row_hash). Anyone can do this: it proves nothing.
fn rehash(row: &mut serde_json::Value) {
    use sha2::Digest;
    let mut canon = row.clone();
    canon.as_object_mut().unwrap().remove("row_hash");
    let mut h = sha2::Sha256::new();
    h.update(row["prev_hash"].as_str().unwrap().as_bytes());
    h.update(serde_json::to_vec(&canon).unwrap());
    row["row_hash"] = hex::encode(h.finalize()).into();
}

fn write_json(path: &Path, doc: &serde_json::Value) {
    let mut text = serde_json::to_vec_pretty(doc).unwrap();
    text.push(b'\n');
    std::fs::write(path, text).unwrap();
}

#[test]
fn a_forged_unsigned_receipt_for_a_rollback_that_never_happened_never_passes() {
    let t = tempdir();
    let d = t.path();
    let db = TestDb::new("auditforge");
    let (b, r) = applied(d, &db);
    // The insider writes the receipt of a rollback that never happened: event,
    // outcome, a second ledger row chained to the real one, hashes recomputed.
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join(&r)).unwrap()).unwrap();
    let real = doc["ledger"][0].clone();
    let mut row = real.clone();
    row["seq"] = 2.into();
    row["event"] = "rollback".into();
    row["prev_hash"] = real["row_hash"].clone();
    row["fingerprint_before"] = real["fingerprint_after"].clone();
    row["fingerprint_after"] = real["fingerprint_before"].clone();
    rehash(&mut row);
    doc["event"] = "rollback".into();
    doc["outcome"] = "rolled-back".into();
    doc["fingerprint_before"] = row["fingerprint_before"].clone();
    doc["fingerprint_after"] = row["fingerprint_after"].clone();
    doc["ledger"] = serde_json::json!([row]);
    write_json(&d.join("forged.json"), &doc);

    // Without --db: consistent (anyone can recompute hashes), but unsigned, so the
    // receipt and every field are UNVERIFIED, and the audit is not a pass.
    let s = audit_store(d, "");
    let (code, out) = audit(d, &[&b, "--trust", &s, "--receipt", "forged.json"]);
    assert_eq!(code, 7, "{out:#}");
    assert_eq!(out["result"], "UNVERIFIED", "{:#?}", fails(&out));
    assert_eq!(verdict(&out, "forged.json", "integrity")["verdict"], "PASS");
    let sig = verdict(&out, "forged.json", "receipt signature");
    assert_eq!(sig["verdict"], "UNVERIFIED", "{sig:#}");
    assert!(
        sig["detail"].as_str().unwrap().contains("unsigned"),
        "{sig:#}"
    );
    assert_eq!(
        verdict(&out, "forged.json", "fields")["verdict"],
        "UNVERIFIED"
    );
    let fields = out["receipts"][0]["unverified_fields"].as_array().unwrap();
    assert!(fields.iter().any(|f| f == "event"), "{fields:?}");
    // Human output says it, with the basis of each judgement.
    let o = airlock(d, &["audit", &b, "--trust", &s, "--receipt", "forged.json"]);
    expect_code(&o, 7);
    let text = stdout(&o);
    assert!(text.contains("AUDIT UNVERIFIED"), "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("UNVERIFIED")
            && l.contains("forged.json: rollback rel 1.0, unsigned")),
        "{text}"
    );
    assert!(!text.contains("AUDIT PASS"), "{text}");

    // A trust store that requires signed receipts fails it.
    let s = audit_store(d, "");
    std::fs::write(
        Path::new(&s).join("trust.toml"),
        format!(
            "require_signed_receipts = true\n{}",
            std::fs::read_to_string(Path::new(&s).join("trust.toml")).unwrap()
        ),
    )
    .unwrap();
    let (code, out) = audit(d, &[&b, "--trust", &s, "--receipt", "forged.json"]);
    assert_eq!(code, 4);
    assert_eq!(out["result"], "FAIL");
    assert_fail(&out, &["receipt signature", "unsigned"]);

    // With --db: the ledger never recorded that row.
    let s = audit_store(d, "");
    let conn = db.conn();
    let (code, out) = audit(
        d,
        &[&b, "--trust", &s, "--receipt", "forged.json", "--db", &conn],
    );
    assert_eq!(code, 4);
    assert_fail(&out, &["ledger row 2", "missing from the database ledger"]);
}

#[test]
fn an_unsigned_receipt_edited_where_the_ledger_rows_cannot_see_fails_against_its_recorded_delivery()
{
    let t = tempdir();
    let d = t.path();
    let db = TestDb::new("auditedit");
    let (b, r) = applied(d, &db);
    let s = audit_store(d, "");
    let conn = db.conn();
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join(&r)).unwrap()).unwrap();
    let row_at =
        chrono::DateTime::parse_from_rfc3339(doc["ledger"][0]["at"].as_str().unwrap()).unwrap();
    // The .minisig deleted; session_user, a gate reason and started_at (still before
    // the ledger row) edited.
    let mut edited = doc.clone();
    edited["session_user"] = "postgres".into();
    edited["gates"]["gates"][0]["reason"] = "approved by the board".into();
    edited["started_at"] = (row_at - chrono::Duration::hours(3))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        .into();
    write_json(&d.join("edited.json"), &edited);
    let (code, out) = audit(
        d,
        &[&b, "--trust", &s, "--receipt", "edited.json", "--db", &conn],
    );
    // The rows it holds are the ledger's, but the ledger also records the bytes of the
    // receipt that was delivered: these are not they.
    assert_eq!(code, 4, "{out:#}");
    assert_eq!(out["result"], "FAIL", "{out:#}");
    assert_fail(&out, &["delivery", "changed after it was delivered"]);
    let rec = &out["receipts"][0];
    let list = |k: &str| -> Vec<String> {
        rec[k]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap().to_string())
            .collect()
    };
    for f in ["session_user", "gates", "started_at"] {
        assert!(
            list("unverified_fields").contains(&f.to_string()),
            "{rec:#}"
        );
    }
    for f in ["operator", "event", "tiers", "params", "ledger", "database"] {
        assert!(list("ledger_vouched").contains(&f.to_string()), "{rec:#}");
    }
    // What the ledger records is compared: the operator, and a started_at after the
    // row was written, both fail.
    for (name, field, value) in [
        (
            "op.json",
            "operator",
            serde_json::Value::from("mallory@elsewhere"),
        ),
        (
            "late.json",
            "started_at",
            (row_at + chrono::Duration::hours(1))
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                .into(),
        ),
        ("db.json", "database", "another_db".into()),
    ] {
        let mut e = doc.clone();
        e[field] = value;
        write_json(&d.join(name), &e);
        let (code, out) = audit(d, &[&b, "--trust", &s, "--receipt", name, "--db", &conn]);
        assert_eq!(code, 4);
        assert_eq!(out["result"], "FAIL", "{name}");
        assert!(
            fails(&out).iter().any(|l| l.contains(field)),
            "{name}: {:#?}",
            fails(&out)
        );
    }
    // The genuine, signed receipt passes, every field covered by its signature.
    let (code, out) = audit(d, &[&b, "--trust", &s, "--receipt", &r, "--db", &conn]);
    assert_eq!(code, 0, "{:#?}", fails(&out));
    assert_eq!(out["result"], "PASS");
    assert!(out["receipts"][0]["unverified_fields"]
        .as_array()
        .unwrap()
        .is_empty());
}

#[test]
fn receipt_signatures_count_only_from_unrevoked_operator_keys() {
    let t = tempdir();
    let d = t.path();
    let db = TestDb::new("auditsig");
    let (b, r) = applied(d, &db);
    let op = key_id_of(d, "op");
    let rm = key_id_of(d, "rm");
    // Re-sign the genuine receipt with other keys (minisign, as airlock would).
    let resign = |key: &str, out: &str| {
        let text = std::fs::read_to_string(d.join("apply.json.minisig")).unwrap();
        let tc = text
            .lines()
            .find_map(|l| l.strip_prefix("trusted comment: "))
            .unwrap()
            .to_string();
        std::fs::copy(d.join(&r), d.join(out)).unwrap();
        let o = tool("minisign")
            .current_dir(d)
            .args(["-S", "-s", key, "-m", out, "-t", &tc])
            .args(["-x", &format!("{out}.minisig")])
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    resign("rm.key", "by-release.json");
    keygen(d, "stranger");
    resign("stranger.key", "by-stranger.json");
    let cases = [
        ("by-release.json", "", "not_counted", "release-role"),
        ("by-stranger.json", "", "not_counted", "unknown-key"),
        (
            "apply.json",
            "revoked = \"2020-01-01T00:00:00Z\"\n",
            "not_counted",
            "revoked",
        ),
        ("apply.json", "revoked = true\n", "not_counted", "revoked"),
    ];
    for (receipt, op_policy, key, want) in cases {
        let s = store(
            d,
            &["rm", "op"],
            &format!("[keys.{op}]\nrole = \"operator\"\n{op_policy}"),
        );
        let (code, out) = audit(d, &[&b, "--trust", &s, "--receipt", receipt]);
        assert_eq!(code, 4, "{receipt} {op_policy}");
        let sig = &out["receipts"][0]["signature"];
        assert_eq!(sig[key], want, "{receipt} {op_policy}: {sig:#}");
        assert_eq!(
            verdict(&out, receipt, "receipt signature")["verdict"],
            "FAIL"
        );
        assert!(out["receipts"][0]["signed_by"].is_null());
    }
    // The release key signed it with its own role in the store.
    let s = store(
        d,
        &["rm", "op"],
        &format!("[keys.{op}]\nrole = \"operator\"\n"),
    );
    let (_, out) = audit(d, &[&b, "--trust", &s, "--receipt", "by-release.json"]);
    assert!(
        verdict(&out, "by-release.json", "receipt signature")["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("key {rm} has role release")),
        "{out:#}"
    );
}

#[test]
fn a_revoked_or_retired_key_counts_when_the_ledger_or_an_operator_receipt_shows_the_bundle_existed_before(
) {
    let t = tempdir();
    let d = t.path();
    let db = TestDb::new("auditev");
    let (b, r) = applied(d, &db);
    let rm = key_id_of(d, "rm");
    // Revoked from a moment after the apply (the laptop is stolen today).
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let revoked = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let conn = db.conn();
    for policy in [
        format!("[keys.{rm}]\nrevoked = \"{revoked}\"\nrevoked_reason = \"laptop stolen\"\n"),
        format!("[keys.{rm}]\nnot_after = \"{revoked}\"\n"),
    ] {
        let s = audit_store(d, &policy);
        // No evidence: the signature does not count.
        let (code, out) = audit(d, &[&b, "--trust", &s]);
        assert_eq!(code, 4, "{policy}");
        assert!(
            fails(&out).iter().any(|l| l.contains("threshold")),
            "{policy}: {:#?}",
            fails(&out)
        );
        // The ledger row, or the operator's signed receipt, shows it existed before.
        for (args, source) in [
            (vec!["--db", conn.as_str()], "ledger row 1 of database"),
            (
                vec!["--receipt", r.as_str()],
                "receipt apply.json signed by operator key",
            ),
        ] {
            let mut a = vec![b.as_str(), "--trust", &s];
            a.extend(args.iter().copied());
            let (code, out) = audit(d, &a);
            assert_eq!(code, 0, "{policy} {source}: {:#?}", fails(&out));
            let sig = &out["bundles"][0]["trust"]["signatures"][0];
            assert!(sig["counted"].as_bool().unwrap(), "{sig:#}");
            assert!(
                sig["evidence"]["source"].as_str().unwrap().contains(source),
                "{sig:#}"
            );
            assert!(
                sig["basis"]
                    .as_str()
                    .unwrap()
                    .contains("shows the bundle existed by"),
                "{sig:#}"
            );
        }
    }
    // Evidence after the revocation does not help: revoked long before the apply.
    let s = audit_store(
        d,
        &format!("[keys.{rm}]\nrevoked = \"2020-01-01T00:00:00Z\"\n"),
    );
    let (code, out) = audit(d, &[&b, "--trust", &s, "--db", &conn, "--receipt", &r]);
    assert_eq!(code, 4);
    let sig = &out["bundles"][0]["trust"]["signatures"][0];
    assert!(
        sig["note"].as_str().unwrap().contains("not before that"),
        "{sig:#}"
    );
    // A new bundle signed with the stolen key and back-dated has no ledger row and no
    // receipt: refused, with the ledger at hand.
    let s = audit_store(d, &format!("[keys.{rm}]\nrevoked = \"{revoked}\"\n"));
    pack_at(
        d,
        &mini(d, "rel", 2, &db.name),
        "rm.key",
        "new.tar.gz",
        T2025,
    );
    let (code, out) = audit(d, &["new.tar.gz", "--trust", &s, "--db", &conn]);
    assert_eq!(code, 4);
    let sig = &out["bundles"][0]["trust"]["signatures"][0];
    assert_eq!(sig["not_counted"], "revoked", "{sig:#}");
}

/// A row chained onto the head of `db`'s ledger exactly as airlock chains it,
/// inserted as the deploy login could insert it (here the test's own superuser): an
/// `event` row naming `bundle_id`, recording `delivery` (a receipt row's JSON) when
/// given, its `at` copied from the head. Its `seq`.
fn forge_row(
    db: &TestDb,
    event: &str,
    bundle_id: &str,
    delivery: Option<serde_json::Value>,
) -> i64 {
    forge_row_of(db, event, (bundle_id, 9, "t1"), delivery)
}

/// [`forge_row`] of release `rel` with this bundle id, sequence and one tier.
fn forge_row_of(
    db: &TestDb,
    event: &str,
    (bundle_id, sequence, tier): (&str, i64, &str),
    delivery: Option<serde_json::Value>,
) -> i64 {
    let mut c = db.client();
    let head = c
        .query_one(
            "SELECT seq, row_hash, at, fingerprint_after FROM airlock.ledger ORDER BY seq DESC LIMIT 1",
            &[],
        )
        .unwrap();
    let seq = head.get::<_, i64>(0) + 1;
    let (prev, at, fp): (String, String, String) = (head.get(1), head.get(2), head.get(3));
    let tiers = format!("[\"{tier}\"]");
    let mut row = serde_json::json!({
        "seq": seq, "at": at, "event": event, "bundle_name": "rel", "bundle_version": "9",
        "sequence": sequence, "bundle_id": bundle_id, "tiers": tiers, "params": "{}",
        "operator": "thief@host", "fingerprint_before": fp, "fingerprint_after": fp,
        "prev_hash": prev,
    });
    let receipt = delivery.map(|d| d.to_string());
    if let Some(r) = &receipt {
        row["receipt"] = r.clone().into();
    }
    rehash(&mut row);
    let text = |k: &str| row[k].as_str().unwrap().to_string();
    c.execute(
        "INSERT INTO airlock.ledger (seq, at, event, bundle_name, bundle_version, sequence, \
           bundle_id, tiers, params, operator, fingerprint_before, fingerprint_after, prev_hash, \
           row_hash, receipt) VALUES ($1, $2, $3, 'rel', '9', $4, $5, $6, '{}', \
           'thief@host', $7, $7, $8, $9, $10)",
        &[
            &seq,
            &text("at"),
            &event,
            &sequence,
            &bundle_id,
            &tiers,
            &fp,
            &text("prev_hash"),
            &text("row_hash"),
            &receipt,
        ],
    )
    .unwrap();
    seq
}

/// Issue 86, "evidence is what airlock signed" (DESIGN §5.1): code running as the
/// deploy login can write the ledger's table, hash chain and all, so a row's time
/// counts as evidence that a bundle existed before its key's revocation only when the
/// operator key signed the row. A run given `--sign-receipt` signs the rows it wrote
/// (kept in its receipt's delivery row); an unsigned row, airlock's or forged, is no
/// evidence and the audit says what it does prove; a signature copied onto forged
/// rows fails the audit.
#[test]
fn a_ledger_row_is_evidence_only_when_an_operator_key_signed_it_and_a_forged_one_never_is() {
    let t = tempdir();
    let d = t.path();
    let db = TestDb::new("auditsig");
    let (b, _) = applied(d, &db);
    // The same release for another database, applied without an operator key.
    let other = TestDb::new("auditsig2");
    other.exec("CREATE SCHEMA app;");
    pack_at(
        d,
        &mini(d, "rel", 1, &other.name),
        "rm.key",
        "unsigned.tar.gz",
        T2025,
    );
    let o = airlock(
        d,
        &[
            "apply",
            "unsigned.tar.gz",
            "--trust",
            "rm.pub",
            "--db",
            &other.conn(),
            "--receipt",
            "unsigned.json",
            "--param",
            "code=APR-1",
        ],
    );
    expect_code(&o, 0);
    // The thief's bundle: signed with the release key, never applied anywhere.
    pack_at(
        d,
        &mini(d, "rel", 2, &db.name),
        "rm.key",
        "stolen.tar.gz",
        T2025,
    );
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let rm = key_id_of(d, "rm");
    let revoked = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let s = audit_store(d, &format!("[keys.{rm}]\nrevoked = \"{revoked}\"\n"));
    let (_, out) = audit(d, &["stolen.tar.gz", "--trust", &s]);
    let stolen = out["bundles"][0]["bundle_id"].as_str().unwrap().to_string();
    let counted = |out: &serde_json::Value| out["bundles"][0]["trust"]["signatures"][0].clone();

    // Signed by the operator at apply: the ledger alone is evidence, and says whose.
    let (code, out) = audit(d, &[&b, "--trust", &s, "--db", &db.conn()]);
    assert_eq!(code, 0, "{:#?}", fails(&out));
    let sig = counted(&out);
    assert_eq!(sig["counted"], true, "{sig:#}");
    let source = sig["evidence"]["source"].as_str().unwrap();
    assert!(
        source.contains("ledger row 1 of database") && source.contains("signed by operator key"),
        "{sig:#}"
    );

    // Written by airlock, but with no operator key: no evidence, and the audit says
    // what such a row proves.
    let (code, out) = audit(
        d,
        &["unsigned.tar.gz", "--trust", &s, "--db", &other.conn()],
    );
    assert_eq!(code, 4, "{out:#}");
    assert_eq!(counted(&out)["not_counted"], "revoked", "{out:#}");
    let note = verdict(&out, &other.name, "ledger rows signed");
    assert_eq!(note["verdict"], "NOTE", "{note:#}");
    let detail = note["detail"].as_str().unwrap();
    assert!(
        detail.contains("rows 1)") && detail.contains("not that airlock wrote it nor when"),
        "{detail}"
    );

    // Forged after airlock's rows, chained correctly: a bare row, then one with the
    // operator's real signature copied from airlock's delivery onto it.
    let forged = forge_row(&db, "apply", &stolen, None);
    let (code, out) = audit(d, &["stolen.tar.gz", "--trust", &s, "--db", &db.conn()]);
    assert_eq!(code, 4, "{out:#}");
    assert_eq!(counted(&out)["not_counted"], "revoked", "{out:#}");
    let note = verdict(&out, &db.name, "ledger rows signed");
    assert_eq!(note["verdict"], "NOTE", "{note:#}");
    assert!(
        note["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("rows {forged})")),
        "{note:#}"
    );
    let real: String = db.scalar("SELECT receipt FROM airlock.ledger WHERE event = 'receipt'");
    let mut copied: serde_json::Value = serde_json::from_str(&real).unwrap();
    assert!(copied["signature"].is_string(), "{copied:#}");
    copied["covers"] = serde_json::json!([forged]);
    let kept = forge_row(&db, "receipt", &stolen, Some(copied));
    let (code, out) = audit(d, &["stolen.tar.gz", "--trust", &s, "--db", &db.conn()]);
    assert_eq!(code, 4, "{out:#}");
    assert_eq!(counted(&out)["not_counted"], "revoked", "{out:#}");
    let failed = verdict(&out, &db.name, "ledger rows signed");
    assert_eq!(failed["verdict"], "FAIL", "{failed:#}");
    assert!(
        failed["detail"].as_str().unwrap().contains(&format!(
            "ledger row {kept} keeps a signature that does not hold"
        )),
        "{failed:#}"
    );
    // The chain itself holds: only the signature tells the rows apart.
    assert_eq!(
        verdict(&out, &db.name, "ledger hash chain")["verdict"],
        "PASS"
    );
}

/// Issue 86: `already-applied` never relies on a row airlock did not write. A row of
/// the security release that follows, chained correctly by the deploy login (its
/// password used directly), makes apply call that release already applied (exit 6:
/// its REVOKE never runs). With a trust store that requires signed receipts, a row
/// no operator key signed decides nothing: the run is refused (exit 5,
/// `ledger-forged`, the row named) and nothing changes; rows airlock signed decide
/// as before.
#[test]
fn with_signed_receipts_required_a_row_no_operator_signed_never_decides_a_run() {
    let t = tempdir();
    let d = t.path();
    let db = TestDb::new("auditvouch");
    let (_, _) = applied(d, &db);
    let op = key_id_of(d, "op");
    let required = store(
        d,
        &["rm", "op"],
        &format!("require_signed_receipts = true\n[keys.{op}]\nrole = \"operator\"\n"),
    );
    // Release 2 of the train, its own table.
    let s = MiniSource::new(
        &d.join("src-rel-2"),
        &db.name,
        "SELECT true AS ready",
        &[("t2", "CREATE TABLE app.t2(i int);", false)],
        "DROP TABLE IF EXISTS app.t2;",
    );
    let toml = s.dir.join("bundle.toml");
    let text = std::fs::read_to_string(&toml)
        .unwrap()
        .replace("name = \"mini\"", "name = \"rel\"")
        .replace("sequence = 1", "sequence = 2");
    std::fs::write(&toml, text).unwrap();
    pack_at(d, &s.dir, "rm.key", "two.tar.gz", T2025);
    let (_, out) = audit(d, &["two.tar.gz", "--trust", &required]);
    let two = out["bundles"][0]["bundle_id"].as_str().unwrap().to_string();
    let forged = forge_row_of(&db, "apply", (&two, 2, "t2"), None);
    let apply_two = |trust: &str| {
        airlock(
            d,
            &[
                "apply",
                "two.tar.gz",
                "--trust",
                trust,
                "--db",
                &db.conn(),
                "--receipt-dir",
                "r2",
                "--sign-receipt",
                "op.key",
            ],
        )
    };
    // Taken as the deploy login keeps it: "already applied", and release 2 never runs.
    let o = apply_two("rm.pub");
    expect_code(&o, 6);
    let before = db.dump();
    let rows = db.scalar("SELECT count(*) FROM airlock.ledger");
    // Signed receipts required: the unsigned row decides nothing.
    let o = apply_two(&required);
    let said = format!("{}{}", stdout(&o), stderr(&o));
    expect_code(&o, 5);
    assert!(
        said.contains(&format!("ledger row(s) {forged} (apply of rel 9)"))
            && said.contains("no operator key signed them"),
        "{said}"
    );
    // plan says the same, with the same exit code.
    let o = airlock(
        d,
        &[
            "plan",
            "two.tar.gz",
            "--trust",
            &required,
            "--db",
            &db.conn(),
            "--sign-receipt",
            "op.key",
        ],
    );
    expect_code(&o, 5);
    assert!(
        stdout(&o).contains("no operator key signed them"),
        "{}",
        stdout(&o)
    );
    assert_eq!(db.dump(), before);
    assert_eq!(db.scalar("SELECT count(*) FROM airlock.ledger"), rows);
    assert_eq!(db.scalar("SELECT to_regclass('app.t2') IS NULL"), "t");
    assert!(!d.join("r2").exists());

    // A row airlock signed decides as before: release 2 applied on a ledger nobody
    // forged, then again: already applied (exit 6).
    let clean = TestDb::new("auditvouch2");
    clean.exec("CREATE SCHEMA app;");
    pack_at(
        d,
        &retarget(&s.dir, &db.name, &clean.name),
        "rm.key",
        "two-c.tar.gz",
        T2025,
    );
    for want in [0, 6] {
        let o = airlock(
            d,
            &[
                "apply",
                "two-c.tar.gz",
                "--trust",
                &required,
                "--db",
                &clean.conn(),
                "--receipt-dir",
                "rc",
                "--sign-receipt",
                "op.key",
            ],
        );
        expect_code(&o, want);
    }
    assert_eq!(
        clean.scalar("SELECT to_regclass('app.t2') IS NOT NULL"),
        "t"
    );
}

/// `src`'s bundle.toml for database `to` instead of `from`: the same source.
fn retarget(src: &Path, from: &str, to: &str) -> std::path::PathBuf {
    let toml = src.join("bundle.toml");
    let text = std::fs::read_to_string(&toml).unwrap().replace(from, to);
    std::fs::write(&toml, text).unwrap();
    src.to_path_buf()
}

#[test]
fn a_trust_store_requiring_signed_receipts_makes_apply_and_rollback_refuse_without_one() {
    let t = tempdir();
    let d = t.path();
    let db = TestDb::new("auditreq");
    keygen(d, "rm");
    let op = keygen(d, "op");
    db.exec("CREATE SCHEMA app;");
    pack_at(d, &mini(d, "rel", 1, &db.name), "rm.key", "r.tar.gz", T2025);
    let s = store(
        d,
        &["rm", "op"],
        &format!("require_signed_receipts = true\n[keys.{op}]\nrole = \"operator\"\n"),
    );
    let conn = db.conn();
    let before = db.dump();
    for (sign, why) in [
        (None, "requires signed receipts"),
        (Some("rm.key"), "has role release"),
    ] {
        for cmd in ["apply", "rollback"] {
            let mut a = vec![
                cmd,
                "r.tar.gz",
                "--trust",
                &s,
                "--db",
                &conn,
                "--receipt",
                "x.json",
            ];
            if let Some(k) = sign {
                a.extend(["--sign-receipt", k]);
            }
            let o = airlock(d, &a);
            expect_code(&o, 2);
            assert!(stderr(&o).contains(why), "{cmd} {sign:?}: {}", stderr(&o));
            assert!(stderr(&o).contains("nothing was changed"), "{}", stderr(&o));
            assert_eq!(db.dump(), before, "{cmd} {sign:?} changed the database");
            assert!(!d.join("x.json").exists());
        }
    }
    // With the operator key: applied, and the audit passes with that receipt.
    let o = airlock(
        d,
        &[
            "apply",
            "r.tar.gz",
            "--trust",
            &s,
            "--db",
            &conn,
            "--receipt",
            "ok.json",
            "--sign-receipt",
            "op.key",
            "--param",
            "code=APR-1",
        ],
    );
    expect_code(&o, 0);
    let (code, out) = audit(
        d,
        &[
            "r.tar.gz",
            "--trust",
            &s,
            "--receipt",
            "ok.json",
            "--db",
            &conn,
        ],
    );
    assert_eq!(code, 0, "{:#?}", fails(&out));
}

// ---- issue 26: audit loses nothing, spans databases, reads exports, says what to do.

/// `cmd` of the mini bundle `b` on `db`, its receipt into `receipts/`, signed with
/// op.key when `signed`.
fn run_into(d: &Path, cmd: &str, b: &str, db: &TestDb, signed: bool) {
    let conn = db.conn();
    let mut a = vec![
        cmd,
        b,
        "--trust",
        "rm.pub",
        "--db",
        &conn,
        "--receipt-dir",
        "receipts",
    ];
    if cmd == "apply" {
        a.extend(["--param", "code=APR-1"]);
    }
    if signed {
        a.extend(["--sign-receipt", "op.key"]);
    }
    expect_code(&airlock(d, &a), 0);
}

/// The receipt files in `receipts/`, sorted, dir-relative.
fn receipt_names(d: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(d.join("receipts"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".receipt.json"))
        .map(|n| format!("receipts/{n}"))
        .collect();
    v.sort();
    v
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn every_receipt_file_given_is_accounted_for_and_a_tampered_bundle_id_fails() {
    let t = tempdir();
    let d = t.path();
    let db = TestDb::new("auditacct");
    let (b, r) = applied(d, &db);
    std::fs::create_dir(d.join("rc")).unwrap();
    std::fs::copy(d.join(&r), d.join("rc/genuine.receipt.json")).unwrap();
    std::fs::copy(
        d.join("apply.json.minisig"),
        d.join("rc/genuine.receipt.json.minisig"),
    )
    .unwrap();
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join(&r)).unwrap()).unwrap();
    // The case: only bundle_id edited (rows rehashed, so it is consistent).
    let mut tampered = doc.clone();
    let fake = "f".repeat(64);
    tampered["bundle_id"] = fake.clone().into();
    tampered["ledger"][0]["bundle_id"] = fake.clone().into();
    rehash(&mut tampered["ledger"][0]);
    write_json(&d.join("rc/tampered.receipt.json"), &tampered);
    // A receipt of another release entirely.
    let mut other = tampered.clone();
    other["bundle_name"] = "other".into();
    other["ledger"][0]["bundle_name"] = "other".into();
    rehash(&mut other["ledger"][0]);
    write_json(&d.join("rc/other.receipt.json"), &other);

    let s = audit_store(d, "");
    let (code, out) = audit(d, &[&b, "--trust", &s, "--receipt", "rc"]);
    assert_eq!(out["result"], "FAIL", "{out:#}");
    assert_eq!(code, 4);
    assert_fail(
        &out,
        &[
            "tampered.receipt.json",
            "names an audited bundle",
            "rel 1.0",
        ],
    );
    // Three files, three accounted for: two audited, one left out with its reason.
    let audited: Vec<String> = out["receipts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["file"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(audited.len(), 2, "{audited:?}");
    let left = out["left_out"].as_array().unwrap();
    assert_eq!(left.len(), 1, "{out:#}");
    assert!(left[0]["file"]
        .as_str()
        .unwrap()
        .ends_with("other.receipt.json"));
    assert!(
        left[0]["reason"].as_str().unwrap().contains("other"),
        "{left:?}"
    );
    // Human output names every file.
    let o = airlock(d, &["audit", &b, "--trust", &s, "--receipt", "rc"]);
    expect_code(&o, 4);
    let text = stdout(&o);
    for f in ["genuine", "tampered", "other"] {
        assert!(text.contains(&format!("{f}.receipt.json")), "{f}: {text}");
    }
    assert!(text.contains("3 receipt file(s)"), "{text}");
}

#[test]
fn repeated_db_checks_each_receipt_against_the_ledger_of_its_own_database() {
    let t = tempdir();
    let d = t.path();
    keygen(d, "rm");
    keygen(d, "op");
    let one = TestDb::new("auditdb1");
    let two = TestDb::new("auditdb2");
    for (db, name) in [(&one, "alpha"), (&two, "bravo")] {
        db.exec("CREATE SCHEMA app;");
        let out = format!("{name}.tar.gz");
        pack_at(d, &mini(d, name, 1, &db.name), "rm.key", &out, T2025);
        run_into(d, "apply", &out, db, true);
    }
    let s = audit_store(d, "");
    let (c1, c2) = (one.conn(), two.conn());
    let base = [
        "alpha.tar.gz",
        "bravo.tar.gz",
        "--trust",
        &s,
        "--receipt",
        "receipts",
    ];
    let with = |extra: &[&str]| {
        let mut a = base.to_vec();
        a.extend(extra);
        audit(d, &a)
    };
    let (code, out) = with(&["--db", &c1, "--db", &c2]);
    assert_eq!(code, 0, "{:#?}", fails(&out));
    let ledgers = out["ledgers"].as_array().unwrap();
    assert_eq!(ledgers.len(), 2, "{out:#}");
    for rec in out["receipts"].as_array().unwrap() {
        let name = rec["file"].as_str().unwrap();
        let want = if name.contains("alpha") {
            &one.name
        } else {
            &two.name
        };
        assert_eq!(
            rec["checked_against"].as_str().unwrap(),
            format!("database {want}")
        );
    }
    // Only the first database: bravo's signed receipt is not checked against a
    // ledger (a note, its signature vouches), never a FAIL.
    let (code, out) = with(&["--db", &c1]);
    assert_eq!(code, 0, "{:#?}", fails(&out));
    let v = verdict(&out, "bravo-1.0", "ledger");
    assert_eq!(v["verdict"], "NOTE", "{v:#}");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("not checked against a ledger"),
        "{v:#}"
    );
    // Unsigned, the same receipt is UNVERIFIED (exit 7), and the summary says which
    // --db would check it.
    for f in receipt_names(d) {
        std::fs::remove_file(d.join(format!("{f}.minisig"))).unwrap();
    }
    let (code, out) = with(&["--db", &c1]);
    assert_eq!(out["result"], "UNVERIFIED", "{:#?}", fails(&out));
    assert_eq!(code, 7);
    assert_eq!(
        verdict(&out, "bravo-1.0", "ledger")["verdict"],
        "UNVERIFIED"
    );
    let todo = strings(&out["to_verify"]);
    assert!(
        todo.iter()
            .any(|l| l.contains(&format!("--db {}", two.name))),
        "{todo:#?}"
    );
}

#[test]
fn a_ledger_export_stands_in_for_a_database_that_is_gone_and_tampering_with_it_fails() {
    let t = tempdir();
    let d = t.path();
    let db = TestDb::new("auditexp");
    let (b, r) = applied(d, &db);
    run_into(d, "rollback", &b, &db, true);
    let conn = db.conn();
    let o = airlock(d, &["--json", "status", "--db", &conn]);
    expect_code(&o, 0);
    std::fs::write(d.join("ledger.json"), stdout(&o)).unwrap();
    let export = json(&o);
    drop(db);
    let s = audit_store(d, "");
    let (code, out) = audit(
        d,
        &[
            &b,
            "--trust",
            &s,
            "--receipt",
            &r,
            "--receipt",
            "receipts",
            "--ledger",
            "ledger.json",
        ],
    );
    assert_eq!(code, 0, "{:#?}", fails(&out));
    let l = &out["ledgers"][0];
    assert_eq!(l["source"], "export", "{l:#}");
    // apply, its receipt's delivery, rollback, its receipt's delivery.
    assert_eq!(l["rows"], 4, "{l:#}");
    assert!(out["receipts"][0]["checked_against"]
        .as_str()
        .unwrap()
        .contains("ledger.json"));

    // Tampered: one field of a row (chain breaks), the last row dropped (a receipt's
    // row is missing), the whole chain rewritten consistently (rows differ from the
    // receipts' own).
    let mut edited = export.clone();
    edited["rows"][0]["operator"] = "mallory".into();
    write_json(&d.join("edited.json"), &edited);
    let mut cut = export.clone();
    // The rollback's row and the row recording its receipt's delivery.
    cut["rows"].as_array_mut().unwrap().pop();
    cut["rows"].as_array_mut().unwrap().pop();
    write_json(&d.join("cut.json"), &cut);
    let mut rewritten = export.clone();
    let mut prev = rewritten["rows"][0]["prev_hash"].clone();
    for row in rewritten["rows"].as_array_mut().unwrap() {
        row["operator"] = "mallory".into();
        row["prev_hash"] = prev.clone();
        rehash(row);
        prev = row["row_hash"].clone();
    }
    write_json(&d.join("rewritten.json"), &rewritten);
    for (file, needles) in [
        ("edited.json", vec!["ledger hash chain", "row 1"]),
        ("cut.json", vec!["missing from the"]),
        ("rewritten.json", vec!["missing from the"]),
    ] {
        let (code, out) = audit(
            d,
            &[
                &b,
                "--trust",
                &s,
                "--receipt",
                &r,
                "--receipt",
                "receipts",
                "--ledger",
                file,
            ],
        );
        assert_eq!(code, 4, "{file}");
        assert_fail(&out, &needles);
    }
    // Not an export at all: a usage error, before anything is judged.
    std::fs::write(d.join("nonsense.json"), "{\"ok\": true}").unwrap();
    let o = airlock(
        d,
        &["audit", &b, "--trust", &s, "--ledger", "nonsense.json"],
    );
    expect_code(&o, 2);
    assert!(
        stderr(&o).contains("airlock status --db DB --json"),
        "{}",
        stderr(&o)
    );

    // An export is a file anyone can write: it is never evidence that a bundle
    // existed before a revocation (the live ledger is).
    let rm = key_id_of(d, "rm");
    let row_at = chrono::DateTime::parse_from_rfc3339(export["rows"][0]["at"].as_str().unwrap())
        .unwrap()
        .with_timezone(&chrono::Utc);
    let revoked_at = row_at + chrono::Duration::seconds(2);
    // The revocation must be in force (in the past) and after the apply.
    while chrono::Utc::now() <= revoked_at {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let revoked = revoked_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let s = audit_store(d, &format!("[keys.{rm}]\nrevoked = \"{revoked}\"\n"));
    let (code, out) = audit(d, &[&b, "--trust", &s, "--ledger", "ledger.json"]);
    assert_eq!(code, 4);
    assert_fail(&out, &["threshold"]);
}

#[test]
fn a_normal_history_under_default_settings_is_short_unverified_exit_7_and_says_what_to_do() {
    let t = tempdir();
    let d = t.path();
    keygen(d, "rm");
    keygen(d, "op");
    let db = TestDb::new("audithist");
    db.exec("CREATE SCHEMA app;");
    for name in ["alpha", "bravo"] {
        let out = format!("{name}.tar.gz");
        pack_at(d, &mini(d, name, 1, &db.name), "rm.key", &out, T2025);
    }
    for b in ["alpha.tar.gz", "bravo.tar.gz", "alpha.tar.gz"] {
        run_into(d, "apply", b, &db, false);
        run_into(d, "rollback", b, &db, false);
    }
    assert_eq!(receipt_names(d).len(), 6);
    let s = store(d, &["rm"], "");
    let conn = db.conn();
    let args = [
        "audit",
        "alpha.tar.gz",
        "bravo.tar.gz",
        "--trust",
        &s,
        "--receipt",
        "receipts",
        "--db",
        &conn,
    ];
    let o = airlock(d, &args);
    expect_code(&o, 7);
    let text = stdout(&o);
    let lines = text.lines().count();
    // A header, 2 bundles, 6 receipts, 1 ledger, the verdict and what to do.
    assert!(lines <= 20, "{lines} lines:\n{text}");
    for f in receipt_names(d) {
        let name = f.trim_start_matches("receipts/");
        assert_eq!(text.matches(name).count(), 1, "{name}:\n{text}");
    }
    assert!(text.contains("AUDIT UNVERIFIED"), "{text}");
    let todo = text
        .lines()
        .find(|l| l.contains("to make it PASS"))
        .unwrap_or_else(|| panic!("no what-to-do line:\n{text}"));
    assert!(todo.contains("--sign-receipt"), "{todo}");
    // -q: one line, the verdict; the exit code tells the rest.
    let mut quiet = vec!["-q"];
    quiet.extend(args);
    let o = airlock(d, &quiet);
    expect_code(&o, 7);
    let q = stdout(&o);
    assert_eq!(q.lines().count(), 1, "{q}");
    assert!(q.starts_with("AUDIT UNVERIFIED"), "{q}");
    // The JSON keeps every check and its basis.
    let mut j = vec!["--json"];
    j.extend(args);
    let o = airlock(d, &j);
    expect_code(&o, 7);
    let doc = json(&o);
    assert_eq!(doc["exit_code"], 7);
    assert!(doc["verdicts"].as_array().unwrap().len() > 20);
    // A PASS under -q prints nothing.
    let o = airlock(d, &["-q", "audit", "alpha.tar.gz", "--trust", &s]);
    expect_code(&o, 0);
    assert_eq!(stdout(&o), "");
}

#[test]
fn a_receipt_named_twice_as_a_file_and_in_its_directory_is_audited_once() {
    let t = tempdir();
    let d = t.path();
    let db = TestDb::new("audittwice");
    let (b, _) = applied(d, &db);
    std::fs::create_dir(d.join("rc")).unwrap();
    std::fs::rename(d.join("apply.json"), d.join("rc/a.receipt.json")).unwrap();
    let s = store(d, &["rm"], "");
    let (_, doc) = audit(
        d,
        &[
            &b,
            "--trust",
            &s,
            "--receipt",
            "rc/a.receipt.json",
            "--receipt",
            "rc",
            "--receipt",
            "./rc/../rc/a.receipt.json",
        ],
    );
    let audited = doc["receipts"].as_array().unwrap();
    assert_eq!(audited.len(), 1, "{audited:#?}");
}

/// Issue 88, finding 5: the audit says what ran, on one line per receipt and per
/// database: the tiers run of how many, when and by whom. A database where 1 of 3
/// tiers ran no longer reads like a complete one, and `--json` carries the same facts
/// (`ran`) the lines are drawn from.
#[test]
fn audit_says_what_ran_per_receipt_and_database() {
    let t = tempdir();
    let d = t.path();
    keygen(d, "rm");
    keygen(d, "op");
    let db = TestDb::new("auditran");
    let s = MiniSource::new(
        &d.join("src-ran"),
        &db.name,
        "SELECT true AS ready",
        &[
            ("first", "CREATE TABLE public.ta(i int);", false),
            ("second", "CREATE TABLE public.tb(i int);", false),
            ("third", "CREATE TABLE public.tc(i int);", false),
        ],
        "DROP TABLE IF EXISTS public.ta, public.tb, public.tc;",
    );
    pack_at(d, &s.dir, "rm.key", "ran.tar.gz", T2025);
    let conn = db.conn();
    let apply = |extra: &[&str]| {
        let mut a = vec![
            "apply",
            "ran.tar.gz",
            "--trust",
            "rm.pub",
            "--db",
            &conn,
            "--receipt-dir",
            "receipts",
            "--sign-receipt",
            "op.key",
        ];
        a.extend_from_slice(extra);
        expect_code(&airlock(d, &a), 0);
    };
    apply(&["--through", "first"]);
    let operator = db.scalar("SELECT operator FROM airlock.ledger WHERE event = 'apply'");
    let store = audit_store(d, "");
    let args = [
        "ran.tar.gz",
        "--trust",
        &store,
        "--receipt",
        "receipts",
        "--db",
        &conn,
    ];
    let human = |want: &str| {
        let mut a = vec!["audit"];
        a.extend_from_slice(&args);
        let o = airlock(d, &a);
        expect_code(&o, 0);
        let text = stdout(&o);
        let line = text
            .lines()
            .find(|l| l.contains(&format!("database {}:", db.name)))
            .unwrap_or_else(|| panic!("no database line: {text}"))
            .to_string();
        assert!(
            line.contains(want) && line.contains(&operator),
            "{want}: {text}"
        );
        text
    };
    // One tier of three: the database line and the receipt's say so.
    let (code, doc) = audit(d, &args);
    assert_eq!(code, 0, "{:#?}", fails(&doc));
    let ran = &doc["ledgers"][0]["ran"][0];
    assert_eq!(ran["tiers"], serde_json::json!(["first"]), "{doc:#}");
    assert_eq!(ran["of"], 3, "{doc:#}");
    assert_eq!(ran["by"], operator.as_str(), "{doc:#}");
    assert!(
        ran["at"].as_str().is_some_and(|at| !at.is_empty()),
        "{ran:#}"
    );
    let receipt = &doc["receipts"][0]["ran"];
    assert_eq!(receipt["tiers"], serde_json::json!(["first"]), "{doc:#}");
    assert_eq!(receipt["of"], 3, "{doc:#}");
    assert_eq!(receipt["by"], operator.as_str(), "{doc:#}");
    let text = human("1 of 3 tier(s) applied");
    assert!(
        text.lines()
            .any(|l| l.contains(".receipt.json") && l.contains("1 of 3 tier(s)")),
        "{text}"
    );
    // The rest: the database is whole, and the second receipt ran the other two.
    apply(&[]);
    let (code, doc) = audit(d, &args);
    assert_eq!(code, 0, "{:#?}", fails(&doc));
    let ran = &doc["ledgers"][0]["ran"][0];
    assert_eq!(
        ran["tiers"],
        serde_json::json!(["first", "second", "third"]),
        "{doc:#}"
    );
    let mut receipts: Vec<serde_json::Value> = doc["receipts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["ran"]["tiers"].clone())
        .collect();
    receipts.sort_by_key(|t| t.as_array().unwrap().len());
    assert_eq!(
        receipts,
        [
            serde_json::json!(["first"]),
            serde_json::json!(["second", "third"])
        ]
    );
    human("3 of 3 tier(s) applied");
}
