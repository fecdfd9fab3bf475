//! The trust core's promises: round trip, reproducibility, a tamper matrix where every
//! case exits 4 with the right reason and the right advice and writes nothing,
//! trust-store policy (key windows, relabelled key ids, trust.toml mistakes), sign
//! refusing what it must not touch, expiry, keygen and lint.

mod util;
use std::path::Path;
use util::craft::*;
use util::*;

/// What the hint must tell the user to do, by class of failure.
#[derive(Clone, Copy, Debug)]
enum Advice {
    /// The bytes are not what was signed: throw this copy away.
    Tampered,
    /// Authentic but expired: a new bundle, or `--at` for auditors.
    Expired,
    /// Authentic, but the trust store does not accept enough of its signatures: the
    /// hint is about the store or co-signing, and contains this text.
    Trust(&'static str),
}

const TAMPERED: &str = "not what the release manager signed";

/// verify and extract both refuse with `reason` and the same hint, of the class
/// `advice`, in human and --json output; extract leaves nothing behind.
#[track_caller]
fn refused(d: &Path, bundle: &str, trust: &str, reason: &str, advice: Advice) {
    let human = airlock(d, &["verify", bundle, "--trust", trust]);
    assert_eq!(code(&human), 4, "{bundle}: verify\n{}", stderr(&human));
    assert!(
        stderr(&human).contains(reason),
        "{bundle}: wanted {reason:?} in:\n{}",
        stderr(&human)
    );
    let mut hints = vec![];
    for cmd in [
        vec!["--json", "verify", bundle, "--trust", trust],
        vec![
            "--json", "extract", bundle, "--trust", trust, "--to", "dest",
        ],
    ] {
        let o = airlock(d, &cmd);
        assert_eq!(code(&o), 4, "{cmd:?}\n{}", stdout(&o));
        let v = json(&o);
        assert_eq!(v["kind"], "verification", "{cmd:?}: {v:#}");
        assert!(
            v["error"].as_str().unwrap().contains(reason),
            "{cmd:?}: wanted {reason:?} in {v:#}"
        );
        hints.push(v["hint"].as_str().unwrap_or_default().to_string());
    }
    let hint = &hints[0];
    assert_eq!(
        hint, &hints[1],
        "{bundle}: verify and extract advise differently"
    );
    assert!(
        stderr(&human).contains(&format!("\nhint: {hint}\n")),
        "{bundle}: the human hint differs from the JSON one:\n{}",
        stderr(&human)
    );
    match advice {
        Advice::Tampered => assert!(hint.contains(TAMPERED), "{bundle}: {hint}"),
        Advice::Expired => assert!(
            !hint.contains(TAMPERED) && hint.contains("expired") && hint.contains("--at"),
            "{bundle}: an expired bundle needs its own advice: {hint}"
        ),
        Advice::Trust(what) => assert!(
            !hint.contains(TAMPERED) && hint.contains(what),
            "{bundle}: wanted trust-store advice with {what:?}: {hint}"
        ),
    }
    assert!(
        !d.join("dest").exists(),
        "{bundle}: extract wrote its destination"
    );
    let left = leftovers(d);
    assert!(left.is_empty(), "{bundle}: left {left:?}");
}

/// A trust store directory `d/NAME` with the given `KEY.pub` files and trust.toml.
fn store(d: &Path, name: &str, keys: &[&str], toml: &str) -> String {
    trust_store(d, name, keys, toml);
    name.to_string()
}

/// The key id of the (first) signature in a crafted bundle's entries.
fn signer(entries: &[Entry]) -> String {
    String::from_utf8(entries[1].name.clone())
        .unwrap()
        .trim_start_matches("signatures/")
        .trim_end_matches(".minisig")
        .to_string()
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

#[test]
fn round_trip_pack_verify_extract() {
    let b = base();
    let d = b.dir.path();
    let o = airlock(d, &["--json", "verify", "good.tar.gz", "--trust", "rm.pub"]);
    expect_code(&o, 0);
    let v = json(&o);
    assert_eq!(v["status"], "VERIFIED");
    assert_eq!(v["bundle_id"].as_str().unwrap().len(), 64);
    expect_code(
        &airlock(
            d,
            &["extract", "good.tar.gz", "--trust", "rm.pub", "--to", "out"],
        ),
        0,
    );
    for e in b
        .entries
        .iter()
        .filter(|e| !e.name.starts_with(b"signatures/"))
    {
        let p = d
            .join("out")
            .join(String::from_utf8_lossy(&e.name).as_ref());
        assert_eq!(std::fs::read(&p).unwrap(), e.data, "{}", p.display());
        let src = d
            .join("src")
            .join(String::from_utf8_lossy(&e.name).as_ref());
        if src.exists() {
            assert_eq!(std::fs::read(src).unwrap(), e.data);
        }
    }
    // extract never overwrites; an empty directory is fine.
    expect_code(
        &airlock(
            d,
            &["extract", "good.tar.gz", "--trust", "rm.pub", "--to", "out"],
        ),
        2,
    );
    std::fs::create_dir(d.join("empty")).unwrap();
    expect_code(
        &airlock(
            d,
            &[
                "extract",
                "good.tar.gz",
                "--trust",
                "rm.pub",
                "--to",
                "empty",
            ],
        ),
        0,
    );
    assert!(d.join("empty/sql/tier1.sql").is_file());
    assert!(leftovers(d).is_empty(), "{:?}", leftovers(d));
}

#[test]
fn packing_twice_gives_the_same_bytes() {
    let b = base();
    let d = b.dir.path();
    let s = d.join("src");
    let s = s.to_str().unwrap();
    let env = [("SOURCE_DATE_EPOCH", "1700000000")];
    expect_code(
        &airlock_env(
            d,
            &["pack", s, "--key", "rm.key", "--out", "r1.tar.gz"],
            &env,
        ),
        0,
    );
    expect_code(
        &airlock_env(
            d,
            &["pack", s, "--key", "rm.key", "--out", "r2.tar.gz"],
            &env,
        ),
        0,
    );
    assert_eq!(
        std::fs::read(d.join("r1.tar.gz")).unwrap(),
        std::fs::read(d.join("r2.tar.gz")).unwrap()
    );
    // Another epoch: other bytes (timestamps), the same bundle id (the manifest).
    expect_code(
        &airlock_env(
            d,
            &["pack", s, "--key", "rm.key", "--out", "r3.tar.gz"],
            &[("SOURCE_DATE_EPOCH", "1800000000")],
        ),
        0,
    );
    assert_ne!(
        std::fs::read(d.join("r1.tar.gz")).unwrap(),
        std::fs::read(d.join("r3.tar.gz")).unwrap()
    );
    let id = |f: &str| json(&airlock(d, &["--json", "inspect", f]))["bundle_id"].clone();
    assert_eq!(id("r1.tar.gz"), id("r3.tar.gz"));

    // What is fixed: gzip header without mtime or name; every entry a regular file,
    // mtime 0, mode 0644, uid/gid 0; the signature's trusted comment carries the
    // SOURCE_DATE_EPOCH timestamp, name, version, sequence and the bundle id.
    let bytes = std::fs::read(d.join("r1.tar.gz")).unwrap();
    assert_eq!(bytes[..10], GZ_HEADER);
    let mut raw = vec![];
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut raw).unwrap();
    let mut ar = tar::Archive::new(&raw[..]);
    let mut comment = None;
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let h = e.header();
        assert!(h.entry_type().is_file());
        assert_eq!(h.mtime().unwrap(), 0);
        assert_eq!(h.mode().unwrap() & 0o7777, 0o644);
        assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (0, 0));
        if e.path_bytes().starts_with(b"signatures/") {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut e, &mut text).unwrap();
            comment = text
                .lines()
                .find_map(|l| l.strip_prefix("trusted comment: "))
                .map(str::to_string);
        }
    }
    let comment = comment.expect("a signature with a trusted comment");
    let id = id("r1.tar.gz");
    for part in [
        "timestamp:1700000000".to_string(),
        "name:mini".into(),
        "version:1.0".into(),
        "sequence:1".into(),
        format!("bundle_id:{}", id.as_str().unwrap()),
    ] {
        assert!(
            comment.split('\t').any(|p| p == part),
            "{part} not in {comment:?}"
        );
    }
}

#[test]
fn the_tamper_matrix() {
    let b = base();
    let d = b.dir.path();
    let write =
        |name: &str, entries: &[Entry]| std::fs::write(d.join(name), gzip(&tar(entries))).unwrap();
    let sums = b
        .entries
        .iter()
        .position(|e| e.name == b"SHA256SUMS")
        .unwrap();
    let key_id = signer(&b.entries);
    let sig_file = format!("signatures/{key_id}.minisig");

    // A flipped byte in each payload file: its hash, named, expected vs actual.
    for i in sums..b.entries.len() {
        let mut es = b.entries.clone();
        let expected = sha256_hex(&es[i].data);
        let mid = es[i].data.len() / 2;
        es[i].data[mid] ^= 0x20;
        let actual = sha256_hex(&es[i].data);
        let name = String::from_utf8(es[i].name.clone()).unwrap();
        write("flip.tar.gz", &es);
        let reason = if name == "SHA256SUMS" {
            "SHA256SUMS does not match".to_string()
        } else {
            format!("{name}: SHA-256 mismatch\n  expected {expected}\n  actual   {actual}")
        };
        refused(d, "flip.tar.gz", "rm.pub", &reason, Advice::Tampered);
    }
    // A flipped byte in the manifest: the signature no longer covers it.
    let mut es = b.entries.clone();
    let m = String::from_utf8(es[0].data.clone()).unwrap();
    es[0].data = m
        .replacen("\"version\":\"1.0\"", "\"version\":\"1.1\"", 1)
        .into_bytes();
    write("manifest.tar.gz", &es);
    refused(
        d,
        "manifest.tar.gz",
        "rm.pub",
        "does not verify over this manifest",
        Advice::Tampered,
    );
    // A flipped byte in the signature, in its trusted comment, in its global
    // signature; the signature moved under another key id; no signature at all.
    let sig = String::from_utf8(b.entries[1].data.clone()).unwrap();
    let lines: Vec<String> = sig.lines().map(str::to_string).collect();
    let flip = |line: usize, at: usize| {
        let mut l = lines.clone();
        let c = l[line].remove(at);
        l[line].insert(at, if c == 'A' { 'B' } else { 'A' });
        let mut es = b.entries.clone();
        es[1].data = format!("{}\n", l.join("\n")).into_bytes();
        es
    };
    write("sig.tar.gz", &flip(1, 20));
    refused(
        d,
        "sig.tar.gz",
        "rm.pub",
        "does not verify",
        Advice::Tampered,
    );
    let mut es = b.entries.clone();
    es[1].data = sig
        .replacen("\tversion:1.0", "\tversion:9.0", 1)
        .into_bytes();
    write("comment.tar.gz", &es);
    refused(
        d,
        "comment.tar.gz",
        "rm.pub",
        "trusted comment signature does not verify",
        Advice::Tampered,
    );
    write("global.tar.gz", &flip(3, 10));
    refused(
        d,
        "global.tar.gz",
        "rm.pub",
        "trusted comment signature does not verify",
        Advice::Tampered,
    );
    let mut es = b.entries.clone();
    es[1].name = b"signatures/0123456789ABCDEF.minisig".to_vec();
    write("sig-renamed.tar.gz", &es);
    refused(
        d,
        "sig-renamed.tar.gz",
        "rm.pub",
        "file name does not match the key id inside",
        Advice::Tampered,
    );
    let mut es = b.entries.clone();
    es.remove(1);
    write("unsigned.tar.gz", &es);
    refused(
        d,
        "unsigned.tar.gz",
        "rm.pub",
        "the bundle carries no signatures",
        Advice::Tampered,
    );
    // Add, remove (the last file, or one in the middle), rename, duplicate an entry
    // (a payload file, the manifest, the signature).
    let mut es = b.entries.clone();
    es.push(file("zzz-extra.sql", b"SELECT 1;"));
    write("add.tar.gz", &es);
    refused(
        d,
        "add.tar.gz",
        "rm.pub",
        "zzz-extra.sql: not listed in the manifest",
        Advice::Tampered,
    );
    let mut es = b.entries.clone();
    let gone = String::from_utf8(es.remove(es.len() - 1).name).unwrap();
    write("remove.tar.gz", &es);
    refused(
        d,
        "remove.tar.gz",
        "rm.pub",
        &format!("{gone}: listed in the manifest but missing"),
        Advice::Tampered,
    );
    let mut es = b.entries.clone();
    es.retain(|e| e.name != b"sql/gate.sql");
    write("remove-middle.tar.gz", &es);
    refused(
        d,
        "remove-middle.tar.gz",
        "rm.pub",
        "expected sql/gate.sql here",
        Advice::Tampered,
    );
    let mut es = b.entries.clone();
    let last = es.len() - 1;
    es[last].name = b"sql/renamed.sql".to_vec();
    write("rename.tar.gz", &es);
    refused(
        d,
        "rename.tar.gz",
        "rm.pub",
        "sql/renamed.sql: not listed in the manifest",
        Advice::Tampered,
    );
    let mut es = b.entries.clone();
    let dup = es[last].clone();
    es.push(dup);
    write("dup.tar.gz", &es);
    refused(d, "dup.tar.gz", "rm.pub", "appears twice", Advice::Tampered);
    let mut es = b.entries.clone();
    es.insert(1, b.entries[0].clone());
    write("dup-manifest.tar.gz", &es);
    refused(
        d,
        "dup-manifest.tar.gz",
        "rm.pub",
        "manifest.json: appears twice",
        Advice::Tampered,
    );
    let mut es = b.entries.clone();
    es.insert(2, b.entries[1].clone());
    write("dup-sig.tar.gz", &es);
    refused(
        d,
        "dup-sig.tar.gz",
        "rm.pub",
        &format!("{sig_file}: appears twice"),
        Advice::Tampered,
    );

    // Another bundle's signature (same key, different manifest).
    let other = d.join("other");
    let s2 = MiniSource::new(
        &other,
        "y",
        "SELECT true AS ready",
        &[("t1", "SELECT 2;", false)],
        "SELECT 1;",
    );
    pack(d, &s2.dir, "rm.key", "other.tar.gz");
    let mut raw = vec![];
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(std::fs::File::open(d.join("other.tar.gz")).unwrap()),
        &mut raw,
    )
    .unwrap();
    let mut ar = tar::Archive::new(&raw[..]);
    let their_sig = ar
        .entries()
        .unwrap()
        .map(|e| e.unwrap())
        .find(|e| e.path_bytes().starts_with(b"signatures/"))
        .map(|mut e| {
            let mut v = vec![];
            std::io::Read::read_to_end(&mut e, &mut v).unwrap();
            v
        })
        .unwrap();
    let mut es = b.entries.clone();
    es[1].data = their_sig;
    write("swapped.tar.gz", &es);
    refused(
        d,
        "swapped.tar.gz",
        "rm.pub",
        "does not verify over this manifest",
        Advice::Tampered,
    );

    // The bundle is authentic from here on; the trust store decides, and the advice
    // is about the store or co-signing, never "not what was signed".
    // Wrong key, revoked key, below threshold, not yet valid, operator role.
    let other_id = keygen(d, "other-key");
    refused(
        d,
        "good.tar.gz",
        "other-key.pub",
        "is not in the trust store",
        Advice::Trust("--trust"),
    );
    // ...unless a .pub claims the signer's key id but holds another key: the
    // signature does not verify with what the store calls that key.
    let raw_of = |f: &str| {
        use base64::Engine;
        let text = std::fs::read_to_string(d.join(f)).unwrap();
        base64::engine::general_purpose::STANDARD
            .decode(text.lines().nth(1).unwrap())
            .unwrap()
    };
    let mut impostor = raw_of("other-key.pub");
    impostor[2..10].copy_from_slice(&raw_of("rm.pub")[2..10]);
    std::fs::write(
        d.join("impostor.pub"),
        format!(
            "untrusted comment: impostor\n{}\n",
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &impostor)
        ),
    )
    .unwrap();
    refused(
        d,
        "good.tar.gz",
        "impostor.pub",
        &format!("signature by key {key_id} does not verify over this manifest"),
        Advice::Tampered,
    );
    let s = store(
        d,
        "store",
        &["rm"],
        &format!("[keys.{key_id}]\nrevoked = true\nrevoked_reason = \"compromised\"\n"),
    );
    refused(
        d,
        "good.tar.gz",
        &s,
        "is revoked (compromised)",
        Advice::Trust("revoked"),
    );
    store(d, "store", &["rm", "other-key"], "threshold = 2\n");
    refused(
        d,
        "good.tar.gz",
        &s,
        "1 distinct trusted key(s) signed, 2 required",
        Advice::Trust("co-signed by 1 more"),
    );
    store(
        d,
        "store",
        &["rm"],
        &format!("[keys.{key_id}]\nnot_before = \"2999-01-01T00:00:00Z\"\n"),
    );
    refused(
        d,
        "good.tar.gz",
        &s,
        "is not valid before",
        Advice::Trust("not valid yet"),
    );
    store(
        d,
        "store",
        &["rm"],
        &format!("[keys.{key_id}]\nrole = \"operator\"\n"),
    );
    refused(
        d,
        "good.tar.gz",
        &s,
        "role operator",
        Advice::Trust("role operator"),
    );
    // Two .pub files holding the same key cannot vote twice: the store is refused.
    store(d, "store", &["rm"], "threshold = 2\n");
    std::fs::copy(d.join("rm.pub"), d.join("store/rm-copy.pub")).unwrap();
    let o = airlock(d, &["verify", "good.tar.gz", "--trust", &s]);
    expect_code(&o, 2);
    assert!(
        stderr(&o).contains("hold the same public key"),
        "{}",
        stderr(&o)
    );
    store(d, "store", &["rm"], "threshold = 2\n");
    refused(
        d,
        "good.tar.gz",
        &s,
        "2 required",
        Advice::Trust("co-signed by 1 more"),
    );
    // A co-signature meets the threshold; the bundle id does not change.
    let before = json(&airlock(d, &["--json", "inspect", "good.tar.gz"]))["bundle_id"].clone();
    expect_code(
        &airlock(d, &["sign", "good.tar.gz", "--key", "other-key.key"]),
        0,
    );
    store(d, "store", &["rm", "other-key"], "threshold = 2\n");
    let o = airlock(d, &["--json", "verify", "good.tar.gz", "--trust", &s]);
    expect_code(&o, 0);
    assert_eq!(json(&o)["bundle_id"], before);
    // Signing again with a key that already signed (the co-signer, or the packer) is
    // a usage error, not a verification failure, and changes nothing.
    let bytes = std::fs::read(d.join("good.tar.gz")).unwrap();
    for (key, id) in [("other-key.key", &other_id), ("rm.key", &key_id)] {
        let o = airlock(d, &["sign", "good.tar.gz", "--key", key]);
        expect_code(&o, 2);
        let msg = format!("good.tar.gz is already signed by key {id}; nothing changed");
        assert!(stderr(&o).contains(&msg), "{key}: {}", stderr(&o));
        let o = airlock(d, &["--json", "sign", "good.tar.gz", "--key", key]);
        expect_code(&o, 2);
        let v = json(&o);
        assert_eq!(v["kind"], "usage", "{v:#}");
        assert_eq!(v["error"], msg.as_str(), "{v:#}");
        assert!(!v["hint"].as_str().unwrap().contains(TAMPERED), "{v:#}");
        assert_eq!(std::fs::read(d.join("good.tar.gz")).unwrap(), bytes);
        assert!(leftovers(d).is_empty(), "{:?}", leftovers(d));
    }
}

#[test]
fn a_signature_whose_trusted_comment_names_another_bundle_does_not_count() {
    // Real signatures by the trusted key over these exact manifest bytes (made with
    // minisign itself), whose trusted comment names another bundle id, name, version
    // or sequence: what `minisign -V` would show a reader is not this release.
    let b = base();
    let d = b.dir.path();
    std::fs::write(d.join("manifest.json"), &b.entries[0].data).unwrap();
    let id = sha256_hex(&b.entries[0].data);
    let zeros = "0".repeat(64);
    let comment = |name: &str, version: &str, sequence: &str, bundle_id: &str| {
        format!(
            "timestamp:1700000000\tname:{name}\tversion:{version}\tsequence:{sequence}\tbundle_id:{bundle_id}"
        )
    };
    for (case, tc, reason) in [
        (
            "other-id",
            comment("mini", "1.0", "1", &zeros),
            format!("trusted comment names bundle id {zeros}, not this bundle's {id}"),
        ),
        (
            "other-name",
            comment("payroll", "1.0", "1", &id),
            "trusted comment names name payroll, not this bundle's mini".to_string(),
        ),
        (
            "other-version",
            comment("mini", "2.0", "1", &id),
            "trusted comment names version 2.0, not this bundle's 1.0".to_string(),
        ),
        (
            "other-sequence",
            comment("mini", "1.0", "7", &id),
            "trusted comment names sequence 7, not this bundle's 1".to_string(),
        ),
        (
            "no-version",
            format!("timestamp:1700000000\tname:mini\tsequence:1\tbundle_id:{id}"),
            "trusted comment names no version (this bundle's is 1.0)".to_string(),
        ),
    ] {
        let sig = format!("{case}.minisig");
        let o = tool("minisign")
            .current_dir(d)
            .args(["-S", "-s", "rm.key", "-m", "manifest.json", "-t", &tc])
            .args(["-x", &sig])
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let mut es = b.entries.clone();
        es[1].data = std::fs::read(d.join(&sig)).unwrap();
        let bundle = format!("{case}.tar.gz");
        std::fs::write(d.join(&bundle), gzip(&tar(&es))).unwrap();
        refused(d, &bundle, "rm.pub", &reason, Advice::Tampered);
    }
}

#[test]
fn one_public_key_under_two_key_ids_is_a_trust_store_error_naming_both_files() {
    // The key id in a .minisig is not covered by the Ed25519 signature. Copy the
    // signature under a second key id, and put the same public key in the store under
    // that id too, the first id revoked: the relabelled signature would be judged by
    // the policy of an id, not of the key. A key is its public key bytes, so a store
    // holding one key twice is refused before any bundle is judged.
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let b = base();
    let d = b.dir.path();
    let key_id = signer(&b.entries);
    let relabel = |raw: &mut Vec<u8>| raw[2] ^= 0x01;
    let pubtext = std::fs::read_to_string(d.join("rm.pub")).unwrap();
    let mut raw = b64.decode(pubtext.lines().nth(1).unwrap()).unwrap();
    relabel(&mut raw);
    let twin_id = format!(
        "{:016X}",
        u64::from_le_bytes(raw[2..10].try_into().unwrap())
    );
    assert_ne!(twin_id, key_id);
    std::fs::write(
        d.join("twin.pub"),
        format!("untrusted comment: twin\n{}\n", b64.encode(&raw)),
    )
    .unwrap();
    let sig = String::from_utf8(b.entries[1].data.clone()).unwrap();
    let mut lines: Vec<String> = sig.lines().map(str::to_string).collect();
    let mut sraw = b64.decode(&lines[1]).unwrap();
    relabel(&mut sraw);
    lines[1] = b64.encode(&sraw);
    let mut es = b.entries.clone();
    es[1] = file(
        &format!("signatures/{twin_id}.minisig"),
        format!("{}\n", lines.join("\n")).as_bytes(),
    );
    std::fs::write(d.join("twin.tar.gz"), gzip(&tar(&es))).unwrap();
    // With only the twin .pub, the relabelled copy is a perfectly valid signature.
    expect_code(
        &airlock(d, &["verify", "twin.tar.gz", "--trust", "twin.pub"]),
        0,
    );
    for (name, toml) in [
        ("revoked-twin", format!("[keys.{key_id}]\nrevoked = true\n")),
        ("plain-twin", String::new()),
    ] {
        let s = store(d, name, &["rm", "twin"], &toml);
        for bundle in ["twin.tar.gz", "good.tar.gz"] {
            let o = airlock(d, &["--json", "verify", bundle, "--trust", &s]);
            expect_code(&o, 2);
            let v = json(&o);
            assert_eq!(v["kind"], "trust-store", "{v:#}");
            let e = v["error"].as_str().unwrap();
            assert!(
                e.contains(&format!("{s}/rm.pub (key {key_id})"))
                    && e.contains(&format!("{s}/twin.pub (key {twin_id})"))
                    && e.contains("hold the same public key"),
                "{name}: {e}"
            );
            assert!(v["hint"].as_str().unwrap().contains("public key bytes"));
        }
        let o = airlock(d, &["extract", "twin.tar.gz", "--trust", &s, "--to", "out"]);
        expect_code(&o, 2);
        assert!(!d.join("out").exists());
    }
    // Two different keys claiming one key id: [keys.ID] would name both.
    keygen(d, "other");
    let other = std::fs::read_to_string(d.join("other.pub")).unwrap();
    let mut oraw = b64.decode(other.lines().nth(1).unwrap()).unwrap();
    oraw[2..10].copy_from_slice(&raw[2..10]);
    std::fs::write(
        d.join("clash.pub"),
        format!("untrusted comment: clash\n{}\n", b64.encode(&oraw)),
    )
    .unwrap();
    let s = store(d, "clash", &["twin", "clash"], "");
    let o = airlock(d, &["verify", "twin.tar.gz", "--trust", &s]);
    expect_code(&o, 2);
    assert!(
        stderr(&o).contains(&format!(
            "different public keys with the same key id {twin_id}"
        )),
        "{}",
        stderr(&o)
    );
}

#[test]
fn key_validity_windows_not_before_and_not_after() {
    let b = base();
    let d = b.dir.path();
    let k = signer(&b.entries);
    let verify_at = |s: &str, at: &str| {
        let o = airlock(d, &["verify", "good.tar.gz", "--trust", s, "--at", at]);
        code(&o)
    };
    // not_before as a TOML datetime, and as a string; the past is fine.
    let s = store(
        d,
        "nb",
        &["rm"],
        &format!("[keys.{k}]\nnot_before = 2999-01-01T00:00:00Z\n"),
    );
    refused(
        d,
        "good.tar.gz",
        &s,
        &format!("key {k} is not valid before 2999-01-01"),
        Advice::Trust("not valid yet"),
    );
    let s = store(
        d,
        "nb",
        &["rm"],
        &format!("[keys.{k}]\nnot_before = \"2020-01-01T00:00:00Z\"\n"),
    );
    expect_code(&airlock(d, &["verify", "good.tar.gz", "--trust", &s]), 0);
    assert_eq!(verify_at(&s, "2019-12-31T23:59:59Z"), 4);
    // not_after in the past: refused now, and judging an earlier time with --at does
    // not bring it back (the bundle may have been signed after the key retired,
    // whatever its trusted comment claims; only evidence can show otherwise).
    let s = store(
        d,
        "na",
        &["rm"],
        &format!("[keys.{k}]\nnot_after = \"2021-01-01T00:00:00Z\"\n"),
    );
    refused(
        d,
        "good.tar.gz",
        &s,
        &format!("key {k} expired at 2021-01-01"),
        Advice::Trust("not_after"),
    );
    assert_eq!(verify_at(&s, "2020-06-01T00:00:00Z"), 4);
    // not_after in the future: fine now, refused when judged later.
    let s = store(
        d,
        "na",
        &["rm"],
        &format!("[keys.{k}]\nnot_after = \"2999-01-01T00:00:00Z\"\n"),
    );
    assert_eq!(verify_at(&s, "2998-12-31T00:00:00Z"), 0);
    assert_eq!(verify_at(&s, "2999-06-01T00:00:00Z"), 4);
}

/// A revocation in force is absolute for `verify`: a back-dated trusted comment or an
/// earlier `--at` cannot revive the key. A revocation dated in the future is a note
/// until its date.
#[test]
fn a_revoked_key_stays_revoked_whatever_time_is_claimed_or_judged() {
    let b = base();
    let d = b.dir.path();
    let k = signer(&b.entries);
    // Signed "2025-05-01" (SOURCE_DATE_EPOCH), key revoked from 2025-06-01.
    let src = d.join("src");
    expect_code(
        &airlock_env(
            d,
            &[
                "pack",
                src.to_str().unwrap(),
                "--key",
                "rm.key",
                "--out",
                "back.tar.gz",
            ],
            &[("SOURCE_DATE_EPOCH", "1746057600")],
        ),
        0,
    );
    let s = store(
        d,
        "rev",
        &["rm"],
        &format!(
            "[keys.{k}]\nrevoked = \"2025-06-01T00:00:00Z\"\nrevoked_reason = \"laptop stolen\"\n"
        ),
    );
    for at in [
        None,
        Some("2025-05-02T00:00:00Z"),
        Some("2024-01-01T00:00:00Z"),
    ] {
        let mut args = vec!["--json", "verify", "back.tar.gz", "--trust", &s];
        if let Some(at) = at {
            args.extend(["--at", at]);
        }
        let o = airlock(d, &args);
        assert_eq!(code(&o), 4, "{at:?}: {}", stdout(&o));
        let v = json(&o);
        let e = v["error"].as_str().unwrap();
        assert!(
            e.contains(&format!(
                "key {k} is revoked since 2025-06-01T00:00:00Z (laptop stolen)"
            )) && e.contains("nothing the signer could not make alone"),
            "{at:?}: {e}"
        );
        assert!(
            v["hint"].as_str().unwrap().contains("airlock audit"),
            "{v:#}"
        );
    }
    refused(
        d,
        "back.tar.gz",
        &s,
        "is revoked since 2025-06-01",
        Advice::Trust("revoked"),
    );
    // Revoked from a date still to come: counts, and says so.
    let s = store(
        d,
        "rev",
        &["rm"],
        &format!("[keys.{k}]\nrevoked = \"2999-01-01T00:00:00Z\"\n"),
    );
    let o = airlock(d, &["--json", "verify", "back.tar.gz", "--trust", &s]);
    expect_code(&o, 0);
    let sig = &json(&o)["trust"]["signatures"][0];
    assert!(
        sig["note"]
            .as_str()
            .unwrap()
            .contains("revocation scheduled from 2999-01-01"),
        "{sig:#}"
    );
    assert!(
        sig["basis"]
            .as_str()
            .unwrap()
            .contains("signer claims 2025-05-01T00:00:00Z (a claim, not evidence)"),
        "{sig:#}"
    );
    let o = airlock(
        d,
        &[
            "verify",
            "back.tar.gz",
            "--trust",
            &s,
            "--at",
            "2999-06-01T00:00:00Z",
        ],
    );
    expect_code(&o, 4);
}

#[test]
fn trust_toml_mistakes_fail_closed() {
    let b = base();
    let d = b.dir.path();
    let k = signer(&b.entries);
    for (name, toml, what) in [
        ("typo", "treshold = 2\n".to_string(), "treshold"),
        ("zero", "threshold = 0\n".to_string(), "threshold 0"),
        (
            "unknown-key",
            "[keys.0123456789ABCDEF]\nrevoked = true\n".to_string(),
            "0123456789ABCDEF",
        ),
        (
            "field-typo",
            format!("[keys.{k}]\nrevokd = true\n"),
            "revokd",
        ),
        (
            "bad-time",
            format!("[keys.{k}]\nnot_after = \"soon\"\n"),
            "not_after",
        ),
        (
            "unknown-role",
            format!("[keys.{k}]\nrole = \"admin\"\n"),
            "admin",
        ),
    ] {
        let s = store(d, name, &["rm"], &toml);
        let o = airlock(d, &["--json", "verify", "good.tar.gz", "--trust", &s]);
        assert_eq!(code(&o), 2, "{name}: {}", stdout(&o));
        let v = json(&o);
        assert_eq!(v["kind"], "trust-store", "{name}: {v:#}");
        let e = v["error"].as_str().unwrap();
        assert!(
            e.contains(what) && e.contains(&s),
            "{name}: wanted {what:?} and the store in {v:#}"
        );
        let o = airlock(d, &["extract", "good.tar.gz", "--trust", &s, "--to", "out"]);
        assert_eq!(code(&o), 2, "{name}: extract");
        assert!(!d.join("out").exists(), "{name}: extract wrote");
        assert!(leftovers(d).is_empty(), "{name}: {:?}", leftovers(d));
    }
    // An empty directory, and a missing path.
    std::fs::create_dir(d.join("empty")).unwrap();
    let o = airlock(d, &["verify", "good.tar.gz", "--trust", "empty"]);
    expect_code(&o, 2);
    assert!(stderr(&o).contains("no *.pub keys"), "{}", stderr(&o));
    let o = airlock(d, &["verify", "good.tar.gz", "--trust", "nowhere"]);
    expect_code(&o, 2);
    assert!(stderr(&o).contains("nowhere"), "{}", stderr(&o));
}

#[test]
fn sign_refuses_a_damaged_bundle_and_leaves_it_alone() {
    use std::os::unix::fs::PermissionsExt;
    let b = base();
    let d = b.dir.path();
    keygen(d, "co");
    let unchanged = |f: &str, before: &[u8], o: &std::process::Output, reason: &str| {
        expect_code(o, 4);
        assert!(stderr(o).contains(reason), "{f}: {}", stderr(o));
        assert!(stderr(o).contains(TAMPERED), "{f}: {}", stderr(o));
        assert_eq!(std::fs::read(d.join(f)).unwrap(), before, "{f} changed");
        assert_mode(&d.join(f), 0o640);
        assert!(leftovers(d).is_empty(), "{f}: {:?}", leftovers(d));
    };
    // A payload byte changed.
    let mut es = b.entries.clone();
    let last = es.len() - 1;
    es[last].data[0] ^= 0x01;
    std::fs::write(d.join("bad.tar.gz"), gzip(&tar(&es))).unwrap();
    std::fs::set_permissions(d.join("bad.tar.gz"), std::fs::Permissions::from_mode(0o640)).unwrap();
    let before = std::fs::read(d.join("bad.tar.gz")).unwrap();
    let o = airlock(d, &["sign", "bad.tar.gz", "--key", "co.key"]);
    unchanged("bad.tar.gz", &before, &o, "sql/tier1.sql: SHA-256 mismatch");
    // Our own signature is in the bundle but damaged: not "already signed".
    let sig = String::from_utf8(b.entries[1].data.clone()).unwrap();
    let mut lines: Vec<String> = sig.lines().map(str::to_string).collect();
    let c = lines[1].remove(40);
    lines[1].insert(40, if c == 'A' { 'B' } else { 'A' });
    let mut es = b.entries.clone();
    es[1].data = format!("{}\n", lines.join("\n")).into_bytes();
    std::fs::write(d.join("badsig.tar.gz"), gzip(&tar(&es))).unwrap();
    std::fs::set_permissions(
        d.join("badsig.tar.gz"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    let before = std::fs::read(d.join("badsig.tar.gz")).unwrap();
    let o = airlock(d, &["sign", "badsig.tar.gz", "--key", "rm.key"]);
    unchanged(
        "badsig.tar.gz",
        &before,
        &o,
        "does not verify with this key",
    );
}

#[test]
fn expired_bundles_are_refused_unless_judged_earlier() {
    let t = tempdir();
    let d = t.path();
    keygen(d, "rm");
    let s = MiniSource::new(
        d,
        "x",
        "SELECT true AS ready",
        &[("t1", "SELECT 1;", false)],
        "SELECT 1;",
    );
    let toml = s.dir.join("bundle.toml");
    let text = std::fs::read_to_string(&toml).unwrap().replace(
        "sequence = 1",
        "sequence = 1\nexpires = \"2020-01-01T00:00:00Z\"",
    );
    std::fs::write(&toml, text).unwrap();
    // Signed in 2019 (pack refuses a bundle already expired when it signs it).
    let o = airlock_env(
        d,
        &[
            "pack",
            s.dir.to_str().unwrap(),
            "--key",
            "rm.key",
            "--out",
            "old.tar.gz",
        ],
        &[("SOURCE_DATE_EPOCH", "1546300800")],
    );
    expect_code(&o, 0);
    // Authentic, so the advice is a new bundle or --at, not "it was tampered with".
    refused(
        d,
        "old.tar.gz",
        "rm.pub",
        "bundle expired at 2020-01-01T00:00:00Z",
        Advice::Expired,
    );
    let o = airlock(
        d,
        &[
            "--json",
            "verify",
            "old.tar.gz",
            "--trust",
            "rm.pub",
            "--at",
            "2019-06-01T00:00:00Z",
        ],
    );
    expect_code(&o, 0);
    assert_eq!(json(&o)["trust"]["judged_at"], "2019-06-01T00:00:00Z");
    // inspect with a store judges expiry too; a bad --at is a usage error.
    let o = airlock(d, &["inspect", "old.tar.gz", "--trust", "rm.pub"]);
    expect_code(&o, 4);
    assert!(stderr(&o).contains("bundle expired"), "{}", stderr(&o));
    let o = airlock(
        d,
        &[
            "verify",
            "old.tar.gz",
            "--trust",
            "rm.pub",
            "--at",
            "yesterday",
        ],
    );
    expect_code(&o, 2);
    assert!(stderr(&o).contains("--at \"yesterday\""), "{}", stderr(&o));
}

#[test]
fn keygen_writes_0600_and_never_overwrites_without_force() {
    use std::os::unix::fs::PermissionsExt;
    let t = tempdir();
    let d = t.path();
    keygen(d, "k");
    assert_eq!(
        std::fs::metadata(d.join("k.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let before = std::fs::read(d.join("k.key")).unwrap();
    let o = airlock(d, &["keygen", "--out", "k", "--unencrypted"]);
    expect_code(&o, 2);
    assert!(stderr(&o).contains("already exists"));
    assert_eq!(std::fs::read(d.join("k.key")).unwrap(), before);
    expect_code(
        &airlock(d, &["keygen", "--out", "k", "--unencrypted", "--force"]),
        0,
    );
    assert_ne!(std::fs::read(d.join("k.key")).unwrap(), before);
    // No terminal and no passphrase source: a clear usage error, no files.
    let o = airlock(d, &["keygen", "--out", "enc"]);
    expect_code(&o, 2);
    assert!(stderr(&o).contains("AIRLOCK_PASSPHRASE"));
    assert!(!d.join("enc.key").exists());
}

#[test]
fn lint_refuses_with_file_and_line_and_pack_writes_nothing() {
    let t = tempdir();
    let d = t.path();
    keygen(d, "rm");
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "tier",
            "CREATE TABLE app.a(i int);\nCREATE INDEX CONCURRENTLY ai ON app.a(i);\n",
            "sql/tier1.sql:2",
            "CONCURRENTLY",
        ),
        (
            "tier",
            "CREATE TABLE app.a(i int);\nCOMMIT;\n",
            "sql/tier1.sql:2",
            "transaction control",
        ),
        (
            "tier",
            "\\i other.sql\nSELECT 1;\n",
            "sql/tier1.sql:1",
            "psql meta-command",
        ),
        (
            "gate",
            "SELECT true AS ready;\nSELECT false AS ready;\n",
            "sql/gate.sql:2",
            "exactly one statement",
        ),
        (
            "gate",
            "WITH d AS (DELETE FROM t RETURNING 1) SELECT true AS ready",
            "sql/gate.sql:1",
            "data-modifying",
        ),
    ];
    for (i, (kind, sql, at, what)) in cases.iter().enumerate() {
        let root = d.join(format!("c{i}"));
        let s = if *kind == "tier" {
            MiniSource::new(
                &root,
                "x",
                "SELECT true AS ready",
                &[("t1", sql, false)],
                "SELECT 1;",
            )
        } else {
            MiniSource::new(&root, "x", sql, &[("t1", "SELECT 1;", false)], "SELECT 1;")
        };
        let src = s.dir.to_str().unwrap();
        let o = airlock(d, &["lint", src]);
        expect_code(&o, 2);
        assert!(
            stderr(&o).contains(at) && stderr(&o).contains(what),
            "case {i}: {}",
            stderr(&o)
        );
        let o = airlock(
            d,
            &["pack", src, "--key", "rm.key", "--out", "never.tar.gz"],
        );
        expect_code(&o, 2);
        assert!(!d.join("never.tar.gz").exists());
    }
    // A named file that is missing; an unnamed file is a warning.
    let s = MiniSource::new(
        &d.join("m"),
        "x",
        "SELECT true AS ready",
        &[("t1", "SELECT 1;", false)],
        "SELECT 1;",
    );
    std::fs::write(s.dir.join("notes.txt"), "unnamed").unwrap();
    let o = airlock(d, &["lint", s.dir.to_str().unwrap()]);
    expect_code(&o, 0);
    assert!(
        stdout(&o).contains("notes.txt is in the source but not named"),
        "{}",
        stdout(&o)
    );
    std::fs::remove_file(s.dir.join("sql/rollback.sql")).unwrap();
    let o = airlock(d, &["lint", s.dir.to_str().unwrap()]);
    expect_code(&o, 2);
    assert!(
        stderr(&o).contains("rollback.files names sql/rollback.sql, which does not exist"),
        "{}",
        stderr(&o)
    );
}
