//! Chunk hashes (bundle format 2) and `apply` executing a large tier as it streams
//! from the archive, one authenticated chunk at a time.
//!
//! The files here are a little over two chunks (8 MiB each, the format's constant, not
//! a test knob), so every case runs the real thing.

mod util;
use airlock::minisign::SecretKey;
use sha2::Digest;
use std::path::Path;
use util::craft::*;
use util::*;

const CHUNK: usize = 8 << 20;

/// A tier file of three chunks: a table filled by COPY, `early` advanced in chunk 0,
/// and in chunk 1 a statement padded to `marker` (so a same-length edit can replace
/// it), then more rows, an index.
fn big_tier(marker: &str) -> Vec<u8> {
    let mut s = String::from(
        "CREATE TABLE app.big (id int, note text);\nSELECT pg_catalog.nextval('early');\nCOPY app.big (id, note) FROM stdin;\n",
    );
    let mut i = 0;
    while s.len() < CHUNK + CHUNK / 2 {
        s.push_str(&format!(
            "{i}\tnote {i} with a tab-free text of some length\n"
        ));
        i += 1;
    }
    s.push_str("\\.\n");
    s.push_str(marker);
    s.push('\n');
    s.push_str("COPY app.big (id, note) FROM stdin;\n");
    while s.len() < 2 * CHUNK + CHUNK / 4 {
        s.push_str(&format!("{i}\tmore {i}\n"));
        i += 1;
    }
    s.push_str("\\.\nCREATE INDEX big_id ON app.big (id);\n");
    s.into_bytes()
}

/// The statement in chunk 1 as signed, and same-length replacements.
const HARMLESS: &str = "SELECT 1 AS harmless_padding_statement_________;";
const CANARY: &str = "SELECT pg_catalog.nextval('canary') AS advanced;";
const VACUUM: &str = "SELECT pg_catalog.nextval('canary') AS a;VACUUM;";

/// `dir/src`: a gate and a preflight probe (sorted before the tier), the big tier,
/// a rollback.
fn source(dir: &Path, database: &str, tier: &[u8]) -> std::path::PathBuf {
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("sql")).unwrap();
    std::fs::write(src.join("sql/tiers.sql"), tier).unwrap();
    write(&src.join("sql/gate.sql"), "SELECT true AS ready");
    write(
        &src.join("sql/probe.sql"),
        "SELECT 't'::text AS key, (SELECT count(*) FROM pg_tables WHERE schemaname = 'app')::text AS value",
    );
    write(&src.join("sql/rollback.sql"), "DROP TABLE app.big;\n");
    write(
        &src.join("bundle.toml"),
        &format!(
            "[bundle]\nname = \"big\"\nversion = \"1.0\"\nsequence = 1\n\n[target]\ndatabase = \"{database}\"\n\n[[gate]]\nname = \"g\"\nfile = \"sql/gate.sql\"\n\n[preflight]\nfile = \"sql/probe.sql\"\nexpect = {{ t = \"0\" }}\n\n[[tier]]\nname = \"data\"\nfiles = [\"sql/tiers.sql\"]\ngates = [\"g\"]\n\n[rollback]\nfiles = [\"sql/rollback.sql\"]\n"
        ),
    );
    src
}

fn sha(b: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(b))
}

fn entries_of(bundle: &Path) -> Vec<Entry> {
    use std::io::Read;
    let mut raw = vec![];
    flate2::read::GzDecoder::new(std::fs::File::open(bundle).unwrap())
        .read_to_end(&mut raw)
        .unwrap();
    let mut ar = tar::Archive::new(&raw[..]);
    ar.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = e.path_bytes().into_owned();
            let mut data = vec![];
            e.read_to_end(&mut data).unwrap();
            file(std::str::from_utf8(&name).unwrap(), &data)
        })
        .collect()
}

fn entry<'a>(es: &'a mut [Entry], name: &str) -> &'a mut Entry {
    es.iter_mut().find(|e| e.name == name.as_bytes()).unwrap()
}

/// Replace the manifest (entry 0) by `manifest` and its signature by one made with
/// `dir/rm.key` over it: a bundle a trusted key really signed.
fn resign(dir: &Path, es: &mut [Entry], manifest: &serde_json::Value) {
    let key =
        SecretKey::parse(&std::fs::read_to_string(dir.join("rm.key")).unwrap(), None).unwrap();
    let mut bytes = serde_json::to_vec(manifest).unwrap();
    bytes.push(b'\n');
    let m = airlock::manifest::Manifest::parse(&bytes);
    let id = sha(&bytes);
    let comment = match &m {
        Ok(m) => airlock::manifest::trusted_comment(m, &id, 1_700_000_000),
        Err(_) => {
            format!("timestamp:1700000000\tname:big\tversion:1.0\tsequence:1\tbundle_id:{id}")
        }
    };
    let sig = key.sign(&bytes, &comment);
    es[0].data = bytes;
    es[1].data = sig.to_file_text().into_bytes();
}

fn manifest_of(es: &[Entry]) -> serde_json::Value {
    serde_json::from_slice(&es[0].data).unwrap()
}

/// The manifest entry of `path`.
fn file_entry<'a>(m: &'a mut serde_json::Value, path: &str) -> &'a mut serde_json::Value {
    m["files"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|f| f["path"] == path)
        .unwrap()
}

/// Replace the tier's bytes and make the manifest, SHA256SUMS and signature say so:
/// a bundle the release manager signed with this content.
fn signed_with_tier(dir: &Path, es: &mut [Entry], tier: &[u8]) {
    entry(es, "sql/tiers.sql").data = tier.to_vec();
    let mut m = manifest_of(es);
    {
        let f = file_entry(&mut m, "sql/tiers.sql");
        f["sha256"] = sha(tier).into();
        if tier.len() > CHUNK {
            f["chunks"] = tier.chunks(CHUNK).map(sha).collect::<Vec<_>>().into();
        }
    }
    signed_with_sums(dir, es, m);
}

/// Sign `m` with SHA256SUMS rewritten to say what its file hashes say.
fn signed_with_sums(dir: &Path, es: &mut [Entry], mut m: serde_json::Value) {
    let files: Vec<(String, String)> = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["path"] != "SHA256SUMS")
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["sha256"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let sums: String = files.iter().map(|(p, h)| format!("{h}  {p}\n")).collect();
    entry(es, "SHA256SUMS").data = sums.clone().into_bytes();
    file_entry(&mut m, "SHA256SUMS")["sha256"] = sha(sums.as_bytes()).into();
    resign(dir, es, &m);
}

/// The database's state that an apply must not change when it fails: schema and data,
/// the ledger, and both sequences.
struct Before {
    dump: String,
    ledger: String,
    early: String,
    canary: String,
}

fn state_of(db: &TestDb) -> Before {
    Before {
        // Everything but the ledger and `early` (which chunk 0 advances, outside any
        // transaction, before the failure).
        dump: pg_dump(
            Path::new("pg_dump"),
            &db.name,
            &["--exclude-schema=airlock", "--exclude-table=public.early"],
        ),
        ledger: db.scalar(
            "SELECT CASE WHEN to_regclass('airlock.ledger') IS NULL THEN 'no ledger' ELSE query_to_xml('SELECT * FROM airlock.ledger ORDER BY seq', true, false, '')::text END",
        ),
        early: db.scalar("SELECT last_value::text || is_called::text FROM early"),
        canary: db.scalar("SELECT last_value::text || is_called::text FROM canary"),
    }
}

fn target(tag: &str) -> TestDb {
    let db = TestDb::new(tag);
    db.exec("CREATE SCHEMA app; CREATE SEQUENCE early; CREATE SEQUENCE canary;");
    db
}

fn apply_code(dir: &Path, bundle: &str, db: &TestDb) -> std::process::Output {
    airlock_env(
        dir,
        &[
            "--json",
            "apply",
            bundle,
            "--trust",
            "rm.pub",
            "--db",
            &db.conn(),
            "--yes",
        ],
        &[("TMPDIR", "/nonexistent/airlock-no-temp-space")],
    )
}

#[test]
fn a_file_over_one_chunk_makes_format_2_and_a_small_bundle_stays_format_1() {
    let t = tempdir();
    let d = t.path();
    keygen(d, "rm");
    let tier = big_tier(HARMLESS);
    let src = source(d, "x", &tier);
    pack(d, &src, "rm.key", "big.tar.gz");
    let m = manifest_of(&entries_of(&d.join("big.tar.gz")));
    assert_eq!(m["format"], "airlock-bundle/2");
    let want: Vec<String> = tier.chunks(CHUNK).map(sha).collect();
    assert_eq!(want.len(), 3);
    assert_eq!(m["files"].as_array().unwrap().len(), 6);
    for f in m["files"].as_array().unwrap() {
        if f["path"] == "sql/tiers.sql" {
            assert_eq!(f["chunks"], serde_json::json!(want));
        } else {
            assert!(f.get("chunks").is_none(), "{f}");
        }
    }
    expect_code(
        &airlock(d, &["verify", "big.tar.gz", "--trust", "rm.pub"]),
        0,
    );
    // Exactly CHUNK bytes: no chunks, format 1.
    std::fs::write(src.join("sql/tiers.sql"), {
        let mut b = b"SELECT 1;\n".to_vec();
        b.resize(CHUNK, b'\n');
        b
    })
    .unwrap();
    pack(d, &src, "rm.key", "small.tar.gz");
    let small = &entries_of(&d.join("small.tar.gz"))[0].data;
    let text = String::from_utf8(small.clone()).unwrap();
    assert!(text.starts_with("{\"bundle\""), "{text}");
    assert!(text.contains("\"format\":\"airlock-bundle/1\""), "{text}");
    assert!(!text.contains("chunks"), "{text}");
}

#[test]
fn a_small_bundle_is_byte_identical_to_format_1_as_packed_before_chunks() {
    // The reference release, packed with a fixed epoch by this build, against the
    // bundle id recorded before chunk hashes existed (the id is the SHA-256 of the
    // manifest bytes, so equal ids mean byte-identical manifests).
    let t = tempdir();
    let d = t.path();
    keygen(d, "rm");
    let src = reference_source(d, "directus");
    // The reference's files as they were then: its runbooks have been edited since
    // (rehearse's live-database clone, signed approvals) and its bundle.toml asks for
    // signed approvals now, which change the manifest's hashes of them.
    for (then, now) in [
        ("engineer.md", "runbooks/engineer.md"),
        ("owner.md", "runbooks/owner.md"),
        ("bundle.toml", "bundle.toml"),
    ] {
        std::fs::copy(
            repo().join("tests/data/reference-then").join(then),
            src.join(now),
        )
        .unwrap();
    }
    let o = airlock_env(
        d,
        &[
            "--json",
            "pack",
            src.to_str().unwrap(),
            "--key",
            "rm.key",
            "--out",
            "ref.tar.gz",
        ],
        &[("SOURCE_DATE_EPOCH", "1700000000")],
    );
    expect_code(&o, 0);
    let manifest = &entries_of(&d.join("ref.tar.gz"))[0].data;
    let text = String::from_utf8(manifest.clone()).unwrap();
    assert!(text.contains("\"format\":\"airlock-bundle/1\""));
    assert!(!text.contains("chunks"));
    assert_eq!(json(&o)["bundle_id"], REFERENCE_ID);
}

/// `bundle/one-roof` packed by airlock before this change (commit 95a53ab).
const REFERENCE_ID: &str = "387dd4c32ee8f198c62c34be2cbdb828ae3e9626d060d7336ab5bb46d25178eb";

#[test]
fn verify_refuses_signed_manifests_whose_chunks_are_wrong_missing_or_extra() {
    let t = tempdir();
    let d = t.path();
    keygen(d, "rm");
    let tier = big_tier(HARMLESS);
    let src = source(d, "x", &tier);
    pack(d, &src, "rm.key", "good.tar.gz");
    let good = entries_of(&d.join("good.tar.gz"));
    type Edit = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "wrong",
            Box::new(|m| {
                file_entry(m, "sql/tiers.sql")["chunks"][1] = sha(b"another chunk").into();
            }),
            "sql/tiers.sql: SHA-256 mismatch in chunk 1",
        ),
        (
            "wrong-first",
            Box::new(|m| {
                file_entry(m, "sql/tiers.sql")["chunks"][0] = sha(b"another chunk").into();
            }),
            "sql/tiers.sql: SHA-256 mismatch in chunk 0",
        ),
        (
            "wrong-last",
            Box::new(|m| {
                file_entry(m, "sql/tiers.sql")["chunks"][2] = sha(b"another chunk").into();
            }),
            "sql/tiers.sql: SHA-256 mismatch in chunk 2",
        ),
        (
            "missing",
            Box::new(|m| {
                file_entry(m, "sql/tiers.sql")["chunks"]
                    .as_array_mut()
                    .unwrap()
                    .pop();
            }),
            "lists 2 chunk hashes, its",
        ),
        (
            "extra",
            Box::new(|m| {
                let h = sha(b"x");
                file_entry(m, "sql/tiers.sql")["chunks"]
                    .as_array_mut()
                    .unwrap()
                    .push(h.into());
            }),
            "lists 4 chunk hashes",
        ),
        (
            "absent",
            Box::new(|m| {
                file_entry(m, "sql/tiers.sql")
                    .as_object_mut()
                    .unwrap()
                    .remove("chunks");
            }),
            "has no chunk hashes",
        ),
        (
            "on-small",
            Box::new(|m| {
                file_entry(m, "sql/gate.sql")["chunks"] = serde_json::json!([sha(b"")]);
            }),
            "has chunk hashes but is only",
        ),
        (
            "uppercase",
            Box::new(|m| {
                let c = &mut file_entry(m, "sql/tiers.sql")["chunks"][0];
                *c = c.as_str().unwrap().to_uppercase().into();
            }),
            "64 lowercase hex digits",
        ),
        (
            "format-1",
            Box::new(|m| m["format"] = "airlock-bundle/1".into()),
            "which airlock-bundle/1 bundles do not carry",
        ),
        (
            "format-3",
            Box::new(|m| m["format"] = "airlock-bundle/3".into()),
            "unknown bundle format \"airlock-bundle/3\"",
        ),
    ];
    for (name, edit, reason) in cases {
        let mut es = good.clone();
        let mut m = manifest_of(&es);
        edit(&mut m);
        resign(d, &mut es, &m);
        let file = format!("{name}.tar.gz");
        std::fs::write(d.join(&file), gzip(&tar(&es))).unwrap();
        let o = airlock(d, &["verify", &file, "--trust", "rm.pub"]);
        assert_eq!(code(&o), 4, "{name}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(reason),
            "{name}: wanted {reason:?} in:\n{}",
            stderr(&o)
        );
    }
    // Every chunk hash as the bytes say, the file's own hash not (and SHA256SUMS
    // saying the same): the whole-file hash is checked too, and extract writes nothing.
    let mut es = good.clone();
    let mut m = manifest_of(&es);
    file_entry(&mut m, "sql/tiers.sql")["sha256"] = sha(b"not the file").into();
    signed_with_sums(d, &mut es, m);
    std::fs::write(d.join("file-hash.tar.gz"), gzip(&tar(&es))).unwrap();
    let o = airlock(d, &["verify", "file-hash.tar.gz", "--trust", "rm.pub"]);
    assert_eq!(code(&o), 4, "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "sql/tiers.sql: SHA-256 mismatch\n  expected {}",
            sha(b"not the file")
        )),
        "{}",
        stderr(&o)
    );
    let o = airlock(
        d,
        &[
            "extract",
            "file-hash.tar.gz",
            "--trust",
            "rm.pub",
            "--out",
            "x",
        ],
    );
    assert_eq!(code(&o), 4, "{}", stderr(&o));
    assert!(!d.join("x").exists());
    assert!(
        std::fs::read_dir(d).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with(".airlock-extract")),
        "a temporary directory was left"
    );
    // A format 2 bundle without any chunk hashes is not what pack writes.
    let mut es = good.clone();
    entry(&mut es, "sql/tiers.sql").data = b"SELECT 1;\n".to_vec();
    let mut m = manifest_of(&es);
    {
        let f = file_entry(&mut m, "sql/tiers.sql");
        f["size"] = 10.into();
        f["sha256"] = sha(b"SELECT 1;\n").into();
        f.as_object_mut().unwrap().remove("chunks");
    }
    resign(d, &mut es, &m);
    std::fs::write(d.join("nochunks.tar.gz"), gzip(&tar(&es))).unwrap();
    let o = airlock(d, &["verify", "nochunks.tar.gz", "--trust", "rm.pub"]);
    assert_eq!(code(&o), 4, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("without any chunk hashes"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_large_tier_applies_as_it_streams_with_no_temp_space_like_the_spill_path() {
    let t = tempdir();
    let d = t.path();
    keygen(d, "rm");
    let streamed = target("streamed");
    let spilled = target("spilled");
    let src = source(d, &streamed.name, &big_tier(HARMLESS));
    pack(d, &src, "rm.key", "b.tar.gz");
    // TMPDIR does not exist: a spill file could not be made, so nothing was spilled.
    let o = apply_code(d, "b.tar.gz", &streamed);
    expect_code(&o, 0);
    assert_eq!(json(&o)["outcome"], "applied");
    assert_eq!(streamed.scalar("SELECT count(*)::text FROM app.big"), {
        let n = big_tier(HARMLESS)
            .split(|&b| b == b'\n')
            .filter(|l| l.contains(&b'\t'))
            .count();
        n.to_string()
    });
    // The same tier through the spill path (the library's plain load keeps the large
    // file in the spill file) gives the same database.
    let src2 = source(&d.join("second"), &spilled.name, &big_tier(HARMLESS));
    pack(d, &src2, "rm.key", "c.tar.gz");
    let store = airlock::trust::TrustStore::load(&d.join("rm.pub")).unwrap();
    let vb = airlock::verified::VerifiedBundle::load(
        &d.join("c.tar.gz"),
        &store,
        chrono::Utc::now(),
        &airlock::verdicts::Verdicts::none(),
    )
    .unwrap();
    assert!(vb.bytes_in_memory() < CHUNK as u64, "the tier was spilled");
    let conn = airlock::db::conn::resolve(Some(&spilled.conn()), &spilled.name).unwrap();
    let opts = plain_apply_options(&conn, &spilled);
    airlock::db::apply::apply(&vb, &opts).expect("apply from the spill file");
    assert_eq!(
        streamed.dump_without_ledger(),
        spilled.dump_without_ledger()
    );
    assert_eq!(
        streamed.scalar("SELECT last_value::text FROM early"),
        spilled.scalar("SELECT last_value::text FROM early")
    );
}

/// Apply `bundle` with no temp space; it must fail with the verification code, say
/// why (`reason`) and that nothing was committed, and change nothing but `early` when
/// `early_ran` (chunk 0 really reached the server before the failure).
#[track_caller]
fn refused_mid_run(d: &Path, bundle: &str, db: &TestDb, reason: &str, early_ran: bool) {
    let before = state_of(db);
    let o = apply_code(d, bundle, db);
    assert_eq!(code(&o), 4, "{bundle}: {}{}", stdout(&o), stderr(&o));
    let v = json(&o);
    assert_eq!(v["kind"], "verification", "{bundle}: {v:#}");
    let error = v["error"].as_str().unwrap();
    assert!(
        error.contains(reason),
        "{bundle}: wanted {reason:?} in {error}"
    );
    assert!(
        error.contains("failed verification during the run")
            && error.contains("nothing was committed"),
        "{bundle}: {error}"
    );
    let after = state_of(db);
    assert_eq!(after.dump, before.dump, "{bundle}: the database changed");
    assert_eq!(after.ledger, before.ledger, "{bundle}: the ledger changed");
    assert_eq!(
        after.canary, before.canary,
        "{bundle}: canary advanced: an unauthenticated chunk reached the server"
    );
    if early_ran {
        assert_ne!(
            after.early, before.early,
            "{bundle}: chunk 0 never ran, so this proves nothing about streaming"
        );
    }
}

#[test]
fn an_altered_chunk_is_never_sent_and_the_run_rolls_back() {
    let t = tempdir();
    let d = t.path();
    keygen(d, "rm");
    let db = target("tamper");
    let signed = big_tier(HARMLESS);
    let src = source(d, &db.name, &signed);
    pack(d, &src, "rm.key", "good.tar.gz");
    let good = entries_of(&d.join("good.tar.gz"));
    // Chunk 1 altered after signing: same size, the archive re-encoded canonically,
    // so only chunk 1's hash (and the file's) can tell.
    let at = signed
        .windows(HARMLESS.len())
        .position(|w| w == HARMLESS.as_bytes())
        .unwrap();
    assert_eq!(at / CHUNK, 1, "the marker is in chunk 1");
    assert_eq!(HARMLESS.len(), CANARY.len());
    let mut tampered = signed.clone();
    tampered[at..at + CANARY.len()].copy_from_slice(CANARY.as_bytes());
    let mut es = good.clone();
    entry(&mut es, "sql/tiers.sql").data = tampered;
    std::fs::write(d.join("tampered.tar.gz"), gzip(&tar(&es))).unwrap();
    // The signed bundle verified first, so this host remembers that it verified whole
    // (its SQL, every chunk): the altered one carries the same manifest (the same id).
    // Where nothing acts on a byte before the file's end (verify, plan), the file's
    // hash refuses it; streamed to the server, each chunk is still checked first.
    let o = run_on(d, "verify", "good.tar.gz", &db, None);
    expect_code(&o, 0);
    assert_eq!(json(&o)["sql_rules"], "judged");
    assert_eq!(
        json(&run_on(d, "verify", "good.tar.gz", &db, None))["sql_rules"],
        "remembered"
    );
    for command in ["verify", "plan"] {
        let o = run_on(d, command, "tampered.tar.gz", &db, None);
        assert_eq!(code(&o), 4, "{command}: {}{}", stdout(&o), stderr(&o));
        let error = json(&o)["error"].as_str().unwrap().to_string();
        assert!(
            error.contains("sql/tiers.sql") && error.contains("SHA-256 mismatch"),
            "{command}: {error}"
        );
    }
    refused_mid_run(
        d,
        "tampered.tar.gz",
        &db,
        "sql/tiers.sql: SHA-256 mismatch in chunk 1",
        true,
    );
    // The good bundle still applies, and the canary is advanced by nothing in it.
    expect_code(&apply_code(d, "good.tar.gz", &db), 0);
    assert_eq!(db.scalar("SELECT is_called::text FROM canary"), "false");
}

#[test]
fn a_sql_rule_broken_mid_file_is_refused_before_that_chunk_is_sent() {
    let t = tempdir();
    let d = t.path();
    keygen(d, "rm");
    let db = target("lintmid");
    let src = source(d, &db.name, &big_tier(HARMLESS));
    pack(d, &src, "rm.key", "good.tar.gz");
    let mut es = entries_of(&d.join("good.tar.gz"));
    // Signed by the trusted key, hashes right, but pack would never have made it:
    // VACUUM cannot run in the transaction.
    assert_eq!(HARMLESS.len(), VACUUM.len());
    signed_with_tier(d, &mut es, &big_tier(VACUUM));
    std::fs::write(d.join("vacuum.tar.gz"), gzip(&tar(&es))).unwrap();
    refused_mid_run(d, "vacuum.tar.gz", &db, "SQL rule violated", true);
    // A verdict about SQL is not tampering: the bundle is what its signer signed, and
    // the message and hint say so (not "manifest.json is inconsistent", not "do not
    // use this bundle: it is not what the release manager signed").
    let v = json(&apply_code(d, "vacuum.tar.gz", &db));
    let (error, hint) = (v["error"].as_str().unwrap(), v["hint"].as_str().unwrap());
    assert!(!error.contains("inconsistent"), "{error}");
    assert!(
        !hint.contains("not what the release manager signed"),
        "{hint}"
    );
    assert!(
        hint.contains("not a finding that the bundle was tampered with")
            && hint.contains("airlock lint"),
        "{hint}"
    );
}

#[test]
fn a_cut_archive_or_an_entry_after_the_tier_rolls_back() {
    let t = tempdir();
    let d = t.path();
    keygen(d, "rm");
    let db = target("cut");
    let src = source(d, &db.name, &big_tier(HARMLESS));
    pack(d, &src, "rm.key", "good.tar.gz");
    let es = entries_of(&d.join("good.tar.gz"));
    let whole = tar(&es);
    // Cut inside the tier's data (past its first chunk): the gzip stream ends early.
    let tier_at = es
        .iter()
        .take_while(|e| e.name != b"sql/tiers.sql")
        .map(|e| 512 + e.data.len().div_ceil(512) * 512)
        .sum::<usize>()
        + 512;
    let cut_tar = whole[..tier_at + CHUNK + CHUNK / 2].to_vec();
    let gz = gzip(&cut_tar);
    // A gzip stream of the cut tar, itself cut before its trailer.
    std::fs::write(d.join("cut.tar.gz"), &gz[..gz.len() - 8]).unwrap();
    refused_mid_run(d, "cut.tar.gz", &db, "", true);
    // The bytes of the real bundle cut in the middle.
    let real = std::fs::read(d.join("good.tar.gz")).unwrap();
    std::fs::write(d.join("half.tar.gz"), &real[..real.len() * 3 / 4]).unwrap();
    refused_mid_run(d, "half.tar.gz", &db, "", false);
    // An entry after the tier (which sorts last): refused after the tier ran.
    let mut extra = es.clone();
    extra.push(file(
        "zz-extra.sql",
        b"SELECT pg_catalog.nextval('canary');\n",
    ));
    std::fs::write(d.join("extra.tar.gz"), gzip(&tar(&extra))).unwrap();
    refused_mid_run(
        d,
        "extra.tar.gz",
        &db,
        "zz-extra.sql: not listed in the manifest",
        true,
    );
    // Trailing bytes after the archive's end.
    let mut trailing = tar(&es);
    trailing.extend_from_slice(b"junk");
    std::fs::write(d.join("trailing.tar.gz"), gzip(&trailing)).unwrap();
    refused_mid_run(
        d,
        "trailing.tar.gz",
        &db,
        "after the tar end-of-archive",
        true,
    );
}

/// `airlock COMMAND BUNDLE --trust rm.pub [--db …]` with --json, remembering in the
/// state directory `state` (the test's own when `None`).
fn run_on(
    dir: &Path,
    command: &str,
    bundle: &str,
    db: &TestDb,
    state: Option<&Path>,
) -> std::process::Output {
    let conn = db.conn();
    let mut args = vec!["--json", command, bundle, "--trust", "rm.pub"];
    if command != "verify" {
        args.extend(["--db", conn.as_str()]);
    }
    if command == "apply" || command == "rollback" {
        args.push("--yes");
    }
    match state {
        Some(s) => airlock_env(dir, &args, &[("AIRLOCK_STATE_DIR", s.to_str().unwrap())]),
        None => airlock(dir, &args),
    }
}

/// Each of `commands` refuses `bundle` (genuine, its SQL refused by this airlock) as a
/// SQL verdict naming `place`, never as tampering (exit 4), and nothing changed: the
/// schema, the ledger, the sequence a refused statement would advance.
fn refused_alike(d: &Path, bundle: &str, db: &TestDb, commands: &[&str], place: &str) {
    refused_alike_in(d, bundle, db, commands, place, None)
}

/// [`refused_alike`], remembering in the state directory `state`.
fn refused_alike_in(
    d: &Path,
    bundle: &str,
    db: &TestDb,
    commands: &[&str],
    place: &str,
    state: Option<&Path>,
) {
    let before = state_of(db);
    for command in commands {
        let o = run_on(d, command, bundle, db, state);
        assert_eq!(code(&o), 4, "{command}: {}{}", stdout(&o), stderr(&o));
        let v = json(&o);
        assert_eq!(v["kind"], "verification", "{command}: {v:#}");
        let (error, hint) = (v["error"].as_str().unwrap(), v["hint"].as_str().unwrap());
        assert!(
            error.contains("SQL rule violated") && error.contains(place),
            "{command}: {error}"
        );
        assert!(
            hint.contains("not a finding that the bundle was tampered with"),
            "{command}: {hint}"
        );
    }
    let after = state_of(db);
    assert_eq!(after.dump, before.dump, "the database changed");
    assert_eq!(after.ledger, before.ledger, "the ledger changed");
    assert_eq!(after.canary, before.canary, "a refused statement ran");
}

#[test]
fn verify_and_every_command_before_a_run_judge_the_sql_of_a_signed_bundle_alike() {
    let t = tempdir();
    let d = t.path();
    keygen(d, "rm");
    let db = target("onejudge");
    let src = source(d, &db.name, &big_tier(HARMLESS));
    pack(d, &src, "rm.key", "good.tar.gz");
    let mut es = entries_of(&d.join("good.tar.gz"));
    // Genuine (a trusted key signed it, every hash right), but its SQL is refused by
    // this airlock: verify must say so too, as a SQL verdict, never as tampering.
    signed_with_tier(d, &mut es, &big_tier(VACUUM));
    std::fs::write(d.join("vacuum.tar.gz"), gzip(&tar(&es))).unwrap();
    refused_alike(
        d,
        "vacuum.tar.gz",
        &db,
        &["verify", "gate", "plan", "apply"],
        "sql/tiers.sql",
    );
    // The same SQL swapped in without the signer: tampering is what verify reports
    // (integrity is judged before SQL), not a SQL verdict.
    let mut es = entries_of(&d.join("good.tar.gz"));
    entry(&mut es, "sql/tiers.sql").data = big_tier(VACUUM);
    std::fs::write(d.join("swapped.tar.gz"), gzip(&tar(&es))).unwrap();
    let o = run_on(d, "verify", "swapped.tar.gz", &db, None);
    assert_eq!(code(&o), 4, "{}{}", stdout(&o), stderr(&o));
    let error = json(&o)["error"].as_str().unwrap().to_string();
    assert!(
        error.contains("SHA-256 mismatch") && !error.contains("SQL rule"),
        "{error}"
    );
}

#[test]
fn a_small_tier_whose_sql_is_refused_is_refused_by_every_command_before_anything_runs() {
    // A tier held in memory (not streamed, not spilled): its SQL is judged as the
    // reader keeps it, on the judging thread, as verify judges it. Every command that
    // reads the bundle refuses it as a SQL verdict, and nothing runs.
    let t = tempdir();
    let d = t.path();
    keygen(d, "rm");
    let db = target("onejudgesmall");
    let harmless = format!("CREATE TABLE app.big (id int);\n{HARMLESS}\n");
    let src = source(d, &db.name, harmless.as_bytes());
    pack(d, &src, "rm.key", "good.tar.gz");
    let mut es = entries_of(&d.join("good.tar.gz"));
    let refused = format!("CREATE TABLE app.big (id int);\n{VACUUM}\n");
    signed_with_tier(d, &mut es, refused.as_bytes());
    std::fs::write(d.join("vacuum.tar.gz"), gzip(&tar(&es))).unwrap();
    refused_alike(
        d,
        "vacuum.tar.gz",
        &db,
        &["verify", "gate", "plan", "apply", "rollback"],
        "sql/tiers.sql:2",
    );
    // The bundle as signed first runs.
    expect_code(&apply_code(d, "good.tar.gz", &db), 0);
}

#[test]
fn a_host_verifies_a_bundle_whole_once_a_build_and_its_signatures_and_file_hashes_every_time() {
    let t = tempdir();
    let d = t.path();
    keygen(d, "rm");
    let db = target("judgedonce");
    let state = d.join("state");
    let harmless = format!("CREATE TABLE app.big (id int);\n{HARMLESS}\n");
    let src = source(d, &db.name, harmless.as_bytes());
    pack(d, &src, "rm.key", "good.tar.gz");
    let verify = |bundle: &str, extra: &[&str]| {
        let mut args = vec!["--json", "verify", bundle, "--trust", "rm.pub"];
        args.extend(extra);
        airlock_env(d, &args, &[("AIRLOCK_STATE_DIR", state.to_str().unwrap())])
    };
    let sql_rules = |o: &std::process::Output| {
        expect_code(o, 0);
        json(o)["sql_rules"].as_str().unwrap().to_string()
    };
    // Judged the first time, remembered under this build: one file, named by the
    // bundle id.
    let first = verify("good.tar.gz", &[]);
    assert_eq!(sql_rules(&first), "judged");
    let id = json(&first)["bundle_id"].as_str().unwrap().to_string();
    let builds: Vec<_> = std::fs::read_dir(state.join("judged")).unwrap().collect();
    assert_eq!(builds.len(), 1);
    let build = builds.into_iter().next().unwrap().unwrap().path();
    let names: Vec<String> = std::fs::read_dir(&build)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, std::slice::from_ref(&id));
    // Then remembered, and said so; --rejudge judges again.
    assert_eq!(sql_rules(&verify("good.tar.gz", &[])), "remembered");
    let human = airlock_env(
        d,
        &["verify", "good.tar.gz", "--trust", "rm.pub"],
        &[("AIRLOCK_STATE_DIR", state.to_str().unwrap())],
    );
    expect_code(&human, 0);
    assert!(
        stdout(&human).contains("SQL rules: passed (this build judged this bundle here before"),
        "{}",
        stdout(&human)
    );
    assert_eq!(sql_rules(&verify("good.tar.gz", &["--rejudge"])), "judged");
    // With no state directory but the working directory's fallback (no HOME), verify
    // judges every time and leaves nothing where it ran.
    let bare = d.join("bare");
    std::fs::create_dir(&bare).unwrap();
    std::fs::copy(d.join("good.tar.gz"), bare.join("good.tar.gz")).unwrap();
    std::fs::copy(d.join("rm.pub"), bare.join("rm.pub")).unwrap();
    for _ in 0..2 {
        let o = airlock_command(
            &bare,
            &["--json", "verify", "good.tar.gz", "--trust", "rm.pub"],
        )
        .env_remove("AIRLOCK_STATE_DIR")
        .env_remove("XDG_STATE_HOME")
        .env_remove("HOME")
        .output()
        .unwrap();
        assert_eq!(sql_rules(&o), "judged");
    }
    let mut left: Vec<_> = std::fs::read_dir(&bare)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, ["good.tar.gz", "rm.pub"]);
    // The memory never stands for the bytes: the same signed manifest (the same id)
    // over an altered tier is refused as tampering.
    let mut es = entries_of(&d.join("good.tar.gz"));
    entry(&mut es, "sql/tiers.sql").data =
        format!("CREATE TABLE app.big (id int);\n{CANARY}\n").into_bytes();
    std::fs::write(d.join("altered.tar.gz"), gzip(&tar(&es))).unwrap();
    let o = verify("altered.tar.gz", &[]);
    assert_eq!(code(&o), 4, "{}{}", stdout(&o), stderr(&o));
    let error = json(&o)["error"].as_str().unwrap().to_string();
    assert!(error.contains("SHA-256 mismatch"), "{error}");
    // A bundle whose SQL this build refuses is refused by every command even when the
    // state directory claims it passed under another build: only this build's
    // verdict counts.
    let mut es = entries_of(&d.join("good.tar.gz"));
    let refused = format!("CREATE TABLE app.big (id int);\n{VACUUM}\n");
    signed_with_tier(d, &mut es, refused.as_bytes());
    std::fs::write(d.join("vacuum.tar.gz"), gzip(&tar(&es))).unwrap();
    let vacuum_id = sha(&es[0].data);
    let other = state.join("judged").join("0".repeat(32));
    std::fs::create_dir_all(&other).unwrap();
    let claim = format!(
        "airlock SQL rules {} passed bundle {vacuum_id}\n",
        "0".repeat(32)
    );
    std::fs::write(other.join(&vacuum_id), claim).unwrap();
    refused_alike_in(
        d,
        "vacuum.tar.gz",
        &db,
        &["verify", "gate", "plan", "apply", "rollback"],
        "sql/tiers.sql:2",
        Some(&state),
    );
    assert!(
        !build.join(&vacuum_id).exists(),
        "a refused bundle was remembered"
    );
    // The remembered bundle runs, its SQL not judged again.
    let o = run_on(d, "apply", "good.tar.gz", &db, Some(&state));
    expect_code(&o, 0);
    assert_eq!(db.scalar("SELECT count(*) FROM app.big"), "0");
}

#[test]
fn a_reindex_table_bundle_verifies_and_runs() {
    // The field report: REINDEX TABLE verified with one build and was refused by the
    // other's gate. One build, one judge: every step accepts it, and it runs.
    let t = tempdir();
    let d = t.path();
    keygen(d, "rm");
    let db = target("reindex");
    let mut tier = big_tier(HARMLESS);
    tier.extend_from_slice(b"REINDEX TABLE app.big;\n");
    let src = source(d, &db.name, &tier);
    expect_code(&airlock(d, &["lint", src.to_str().unwrap()]), 0);
    pack(d, &src, "rm.key", "reindex.tar.gz");
    for command in ["verify", "gate", "plan", "apply"] {
        let o = run_on(d, command, "reindex.tar.gz", &db, None);
        assert_eq!(code(&o), 0, "{command}: {}{}", stdout(&o), stderr(&o));
    }
    assert_eq!(
        db.scalar("SELECT (count(*) > 1000)::text FROM app.big"),
        "true"
    );
}
