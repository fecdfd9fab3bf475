//! Hostile input: a crafted-archive corpus generated here (no checked-in binaries).
//! Every case must make `verify` and `extract` exit 4 with a precise reason, and
//! write nothing: no destination, no leftover temp dir, nothing outside.

mod util;
use std::path::Path;
use util::*;

use util::craft::*;

/// Write `bytes` as a bundle, then require verify and extract to refuse with `reason`
/// and leave nothing behind.
fn refused(b: &Base, case: &str, bytes: &[u8], reason: &str) {
    let d = b.dir.path();
    let name = format!("{case}.tar.gz");
    std::fs::write(d.join(&name), bytes).unwrap();
    let o = airlock(d, &["verify", &name, "--trust", "rm.pub"]);
    assert_eq!(code(&o), 4, "{case}: verify exit code\n{}", stderr(&o));
    assert!(
        stderr(&o).contains(reason),
        "{case}: expected reason {reason:?}, got:\n{}",
        stderr(&o)
    );
    let dest = format!("out-{case}");
    let o = airlock(d, &["extract", &name, "--trust", "rm.pub", "--to", &dest]);
    assert_eq!(code(&o), 4, "{case}: extract exit code\n{}", stderr(&o));
    assert!(
        stderr(&o).contains(reason),
        "{case}: extract reason, got:\n{}",
        stderr(&o)
    );
    assert!(
        !d.join(&dest).exists(),
        "{case}: extract created its destination"
    );
    let left = leftovers(d);
    assert!(left.is_empty(), "{case}: temp files left behind: {left:?}");
    for outside in ["evil", "../evil"] {
        assert!(!d.join(outside).exists(), "{case}: wrote {outside}");
    }
    assert!(
        !Path::new("/tmp/airlock-evil").exists(),
        "{case}: wrote an absolute path"
    );
}

fn with_inserted(b: &Base, at: usize, e: Entry) -> Vec<u8> {
    let mut es = b.entries.clone();
    es.insert(at, e);
    gzip(&tar(&es))
}

/// Index of the first payload entry (after manifest, signatures, SHA256SUMS).
fn payload_at(b: &Base) -> usize {
    b.entries
        .iter()
        .position(|e| e.name == b"SHA256SUMS")
        .unwrap()
        + 1
}

#[test]
fn the_corpus_is_refused_and_nothing_is_written() {
    let b = base();
    let p = payload_at(&b);
    let mut n = 0;
    let mut case = |name: &str, bytes: Vec<u8>, reason: &str| {
        refused(&b, name, &bytes, reason);
        n += 1;
    };
    // Control: the unmodified entries re-tarred by this generator verify.
    std::fs::write(b.dir.path().join("control.tar.gz"), gzip(&tar(&b.entries))).unwrap();
    expect_code(
        &airlock(
            b.dir.path(),
            &["verify", "control.tar.gz", "--trust", "rm.pub"],
        ),
        0,
    );

    case(
        "dotdot",
        with_inserted(&b, p, file("../evil", b"x")),
        "'..' component",
    );
    case(
        "absolute",
        with_inserted(&b, p, file("/tmp/airlock-evil", b"x")),
        "absolute path",
    );
    case(
        "normalizes-outside",
        with_inserted(&b, p, file("sql/../../evil", b"x")),
        "'..' component",
    );
    case(
        "dot-slash",
        with_inserted(&b, p, file("./bundle.toml", b"x")),
        "'.' component",
    );
    let mut link = file("sql/link", b"");
    link.typeflag = b'2';
    link.link = b"/etc/passwd".to_vec();
    case(
        "symlink-outside",
        with_inserted(&b, p, link.clone()),
        "symlink entries are refused",
    );
    link.link = b"bundle.toml".to_vec();
    case(
        "symlink-inside",
        with_inserted(&b, p, link.clone()),
        "symlink entries are refused",
    );
    link.typeflag = b'1';
    case(
        "hardlink",
        with_inserted(&b, p, link.clone()),
        "hard link entries are refused",
    );
    let mut dev = file("sql/dev", b"");
    dev.typeflag = b'3';
    case(
        "char-device",
        with_inserted(&b, p, dev.clone()),
        "device entries are refused",
    );
    dev.typeflag = b'4';
    case(
        "block-device",
        with_inserted(&b, p, dev.clone()),
        "device entries are refused",
    );
    dev.typeflag = b'6';
    case(
        "fifo",
        with_inserted(&b, p, dev.clone()),
        "FIFO entries are refused",
    );
    dev.typeflag = b'5';
    case(
        "directory",
        with_inserted(&b, p, dev),
        "directory entries are refused",
    );
    let dup = b.entries[p].clone();
    case("duplicate", with_inserted(&b, p + 1, dup), "appears twice");
    let upper = Entry {
        name: String::from_utf8(b.entries[p].name.clone())
            .unwrap()
            .to_uppercase()
            .into_bytes(),
        ..b.entries[p].clone()
    };
    case(
        "case-duplicate",
        with_inserted(&b, p + 1, upper),
        "appears twice",
    );
    let pax = |recs: &str| Entry {
        name: b"PaxHeader".to_vec(),
        data: recs.as_bytes().to_vec(),
        typeflag: b'x',
        link: vec![],
        size: None,
    };
    let rec = |k: &str, v: &str| {
        let body = format!(" {k}={v}\n");
        let mut len = body.len() + 1;
        while format!("{len}{body}").len() != len {
            len += 1;
        }
        format!("{len}{body}")
    };
    case(
        "pax-path-override",
        with_inserted(&b, p, pax(&rec("path", "../evil"))),
        "carry no PAX headers",
    );
    case(
        "pax-other-record",
        with_inserted(&b, p, pax(&rec("linkpath", "/etc/passwd"))),
        "carry no PAX headers",
    );
    let mut gnu = file("././@LongLink", b"../../evil\0");
    gnu.typeflag = b'L';
    case(
        "gnu-longname",
        with_inserted(&b, p, gnu),
        "GNU long-name record",
    );
    let mut global = pax(&rec("path", "evil"));
    global.typeflag = b'g';
    case(
        "pax-global",
        with_inserted(&b, p, global),
        "PAX global header",
    );
    let mut huge = b.entries[p].clone();
    huge.size = Some(1 << 40);
    let mut es = b.entries.clone();
    es[p] = huge;
    let mut t = tar(&es);
    t.truncate(t.len() - 1024);
    case("huge-declared-size", gzip(&t), "size limit");
    // A gzip bomb: 200 MiB of zeros after the end-of-archive marker (~1000:1). The
    // reader stops at the first zero byte past the 1024 pack writes; the ratio guard
    // stays for what a bundle may hold before its signatures are judged.
    let mut bomb = tar(&b.entries);
    bomb.extend(std::iter::repeat_n(0u8, 200 << 20));
    case(
        "gzip-bomb",
        gzip(&bomb),
        "zero bytes after the last entry, pack writes exactly 1024",
    );
    let good = gzip(&tar(&b.entries));
    let mut trailing = good.clone();
    trailing.extend_from_slice(b"garbage");
    case(
        "trailing-garbage",
        trailing,
        "after the end of the gzip stream",
    );
    let mut two = good.clone();
    two.extend_from_slice(&gzip(b"second member"));
    case(
        "second-gzip-member",
        two,
        "after the end of the gzip stream",
    );
    case(
        "truncated",
        good[..good.len() / 2].to_vec(),
        "corrupt or truncated",
    );
    let mut after_eoa = tar(&b.entries);
    after_eoa.extend_from_slice(b"hidden data after the end-of-archive marker");
    case(
        "bytes-after-tar-end",
        gzip(&after_eoa),
        "after the tar end-of-archive marker",
    );
    let mut swapped = b.entries.clone();
    swapped.swap(0, 1);
    case(
        "manifest-not-first",
        gzip(&tar(&swapped)),
        "must be the first entry",
    );
    let manifest = String::from_utf8(b.entries[0].data.clone()).unwrap();
    let mut es = b.entries.clone();
    es[0].data = manifest.replacen("{", "{\"extra\":1,", 1).into_bytes();
    case("manifest-unknown-field", gzip(&tar(&es)), "unknown field");
    es[0].data = manifest
        .replacen("{", "{\"format\":\"airlock-bundle/1\",", 1)
        .into_bytes();
    case("manifest-duplicate-key", gzip(&tar(&es)), "duplicate key");
    let mut bad = manifest.clone().into_bytes();
    bad.insert(1, 0xff);
    es[0].data = bad;
    case("manifest-non-utf8", gzip(&tar(&es)), "not UTF-8");
    es[0].data = manifest
        .replacen("airlock-bundle/1", "airlock-bundle/3", 1)
        .into_bytes();
    case(
        "manifest-unknown-format",
        gzip(&tar(&es)),
        "unknown bundle format",
    );
    es[0].data = vec![b' '; 9 << 20];
    case("manifest-too-large", gzip(&tar(&es)), "size limit");
    // A signature whose base64 has non-zero padding bits: same bytes, other spelling.
    let sig_idx = 1;
    let text = String::from_utf8(b.entries[sig_idx].data.clone()).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let pad = lines[3].len() - lines[3].trim_end_matches('=').len();
    let mut body = lines[3].trim_end_matches('=').to_string();
    let prev = body.pop().unwrap();
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let i = alphabet.find(prev).unwrap();
    // With padding, the last character's lowest bit carries no data.
    body.push(alphabet.as_bytes()[i ^ 1] as char);
    lines[3] = format!("{body}{}", "=".repeat(pad));
    assert!(pad > 0);
    let mut es = b.entries.clone();
    es[sig_idx].data = format!("{}\n", lines.join("\n")).into_bytes();
    case(
        "signature-non-canonical-base64",
        gzip(&tar(&es)),
        "Invalid last symbol",
    );
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut legacy: Vec<String> = text.lines().map(str::to_string).collect();
    let mut raw = b64.decode(&legacy[1]).unwrap();
    raw[..2].copy_from_slice(b"Ed");
    legacy[1] = b64.encode(raw);
    es[sig_idx].data = format!("{}\n", legacy.join("\n")).into_bytes();
    case("signature-legacy-algorithm", gzip(&tar(&es)), "legacy");
    eprintln!("hostile corpus: {n} crafted archives refused");
    assert!(n >= 30);
}

/// A bundle's manifest, signatures and payload fix its tar bytes completely: every
/// header field, the padding and the end marker. Each re-encoding here keeps every
/// hash and the bundle id, and is refused naming what differs.
#[test]
fn every_tar_encoding_but_the_one_pack_writes_is_refused() {
    let b = base();
    let es = &b.entries;
    let p = payload_at(&b);
    let field = |at: usize, text: &'static [u8]| {
        move |h: &mut [u8; 512]| {
            h[at..at + text.len()].copy_from_slice(text);
        }
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "setuid-mode",
            tar_with_header(es, p, field(100, b"0006777\0")),
            "tar header mode is \"0006777\", pack writes \"0000644\"",
        ),
        (
            "executable-manifest",
            tar_with_header(es, 0, field(100, b"0000755\0")),
            "manifest.json: tar header mode is \"0000755\"",
        ),
        (
            "mtime-2100",
            // 2100-01-01T00:00:00Z
            tar_with_header(es, p, field(136, b"31004453200\0")),
            "tar header mtime is \"31004453200\", pack writes \"00000000000\"",
        ),
        (
            "uid-1000",
            tar_with_header(es, p, field(108, b"0001750\0")),
            "tar header uid is \"0001750\"",
        ),
        (
            "owner-name-root",
            tar_with_header(es, p, field(265, b"root")),
            "tar header user name is \"root\", pack writes \"\"",
        ),
        (
            "group-name",
            tar_with_header(es, p, field(297, b"wheel")),
            "tar header group name is \"wheel\"",
        ),
        (
            "device-numbers",
            tar_with_header(es, p, field(329, b"0000001\0")),
            "tar header device major",
        ),
        (
            "gnu-magic",
            tar_with_header(es, p, field(257, b"ustar  \0")),
            "tar header magic",
        ),
        (
            "checksum-spelled-as-gnu-tar-does",
            {
                // Same sum, other spelling ("%06o\0 "): GNU tar's, not pack's.
                let mut t = tar(es);
                let sum = std::str::from_utf8(&t[148..155]).unwrap().to_string();
                let six = format!("{:06o}\0 ", u32::from_str_radix(&sum, 8).unwrap());
                t[148..156].copy_from_slice(six.as_bytes());
                t
            },
            "manifest.json: tar header checksum",
        ),
        (
            "typeflag-nul",
            // An old-style regular file (type NUL) reads as a file too.
            tar_with_header(es, p, field(156, b"\0")),
            "tar header type is \"\", pack writes \"0\"",
        ),
        (
            "nonzero-padding",
            {
                let mut t = tar(es);
                let len = 512 + es[0].data.len();
                assert!(!len.is_multiple_of(512), "the manifest leaves padding");
                t[len] = b'x';
                t
            },
            "manifest.json: non-zero bytes in the padding",
        ),
        (
            "extra-end-block",
            {
                let mut t = tar(es);
                t.extend(std::iter::repeat_n(0u8, 512));
                t
            },
            "1536 zero bytes after the last entry, pack writes exactly 1024",
        ),
        (
            "no-end-marker",
            {
                let mut t = tar(es);
                t.truncate(t.len() - 1024);
                t
            },
            "0 zero bytes after the last entry",
        ),
        (
            "short-end-marker",
            {
                let mut t = tar(es);
                t.truncate(t.len() - 512);
                t
            },
            "512 zero bytes after the last entry",
        ),
    ];
    let id = json(&airlock(
        b.dir.path(),
        &["--json", "verify", "good.tar.gz", "--trust", "rm.pub"],
    ))["bundle_id"]
        .clone();
    assert!(id.is_string());
    for (name, t, reason) in cases {
        // Same hashes, same bundle id: only the tar encoding differs.
        let mut ar = tar::Archive::new(&t[..]);
        let first = ar.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(first.path_bytes().as_ref(), b"manifest.json", "{name}");
        refused(&b, name, &gzip(&t), reason);
        let o = airlock(b.dir.path(), &["inspect", &format!("{name}.tar.gz")]);
        expect_code(&o, 4);
    }
}

#[test]
fn a_small_order_public_key_in_the_trust_store_is_refused() {
    let b = base();
    let d = b.dir.path();
    // The Ed25519 identity point (small order), with a valid minisign framing.
    let mut raw = b"Ed".to_vec();
    raw.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
    let mut point = [0u8; 32];
    point[0] = 1;
    raw.extend_from_slice(&point);
    use base64::Engine;
    let text = format!(
        "untrusted comment: weak\n{}\n",
        base64::engine::general_purpose::STANDARD.encode(raw)
    );
    std::fs::write(d.join("weak.pub"), text).unwrap();
    let o = airlock(d, &["verify", "good.tar.gz", "--trust", "weak.pub"]);
    // A trust-store error: nothing was verified, the store is what to fix.
    expect_code(&o, 2);
    assert!(stderr(&o).contains("weak"), "{}", stderr(&o));
}

#[test]
fn a_flipped_bit_anywhere_is_refused() {
    // Through the binary: one bit in every 97th byte of the bundle (every region: gzip
    // header, deflate blocks, trailer). tests/props.rs sweeps every bit of a bundle
    // and shows the only flips accepted are the few deflate bits that decode to the
    // byte-identical archive (padding after the last block, equivalent copies); which
    // bits those are depends on the (random) key, so they are allowed here too.
    let b = base();
    let d = b.dir.path();
    let good = std::fs::read(d.join("good.tar.gz")).unwrap();
    let decode = |bytes: &[u8]| {
        use std::io::Read;
        let mut out = vec![];
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .ok()
            .map(|_| out)
    };
    let mut checked = 0;
    for i in (0..good.len())
        .step_by(97)
        .chain([0, 4, 8, 9, good.len() - 8, good.len() - 1])
    {
        let mut bad = good.clone();
        bad[i] ^= 1 << (i % 8);
        std::fs::write(d.join("flip.tar.gz"), &bad).unwrap();
        let o = airlock(d, &["verify", "flip.tar.gz", "--trust", "rm.pub"]);
        if code(&o) == 0 {
            assert_eq!(
                decode(&bad),
                decode(&good),
                "flipping bit {} of byte {i} changed the archive and was accepted",
                i % 8
            );
        } else {
            assert_eq!(code(&o), 4, "bit {} of byte {i}: {}", i % 8, stderr(&o));
        }
        checked += 1;
    }
    assert!(checked > 10);
}
