//! Property tests through the library API (the same `pack_dir` and `read_bundle` the
//! binary runs, without a process per case):
//! - pack∘verify and pack∘extract give back every file of an arbitrary tree (names
//!   within the path rules, sizes 0, around tar's 512-byte blocks, and past gzip's
//!   1 MiB blocks), byte for byte;
//! - every single-bit flip of a packed bundle is refused, unless it decodes to the
//!   byte-identical archive (deflate has bits the decoder ignores and equivalent
//!   encodings; then nothing that is verified or executed changed).

use airlock::archive::{extract, read_bundle_from, Judge, Limits, MemorySink, VerifyError};
use airlock::bundle_path::{collision_key, BundlePath};
use airlock::minisign::SecretKey;
use airlock::trust::TrustStore;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Cursor, Read};
use std::path::Path;

fn store_of(key: &SecretKey) -> TrustStore {
    TrustStore::single("k.pub", key.public())
}

fn judge(store: &TrustStore) -> Judge<'_> {
    Judge::Trust {
        store,
        at: chrono::Utc::now(),
    }
}

/// Verify bundle bytes exactly as `verify`/`apply` do; the payload as it arrived.
fn verify_bytes(
    bytes: &[u8],
    store: &TrustStore,
) -> Result<BTreeMap<String, Vec<u8>>, VerifyError> {
    let mut sink = MemorySink::new(u64::MAX);
    read_bundle_from(
        Cursor::new(bytes.to_vec()),
        judge(store),
        &Limits::default(),
        &mut sink,
    )?;
    Ok(sink.files)
}

fn gunzip(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut out = vec![];
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .ok()
        .map(|_| out)
}

fn write(path: &Path, data: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
}

const TIER: &str = "sql/t.sql";

/// A source with one tier file plus `extra` files, each named as a runbook (runbooks
/// carry any bytes; SQL files would have to parse).
fn source(dir: &Path, extra: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut toml = String::from(
        "[bundle]\nname = \"p\"\nversion = \"1\"\nsequence = 1\n\n[target]\ndatabase = \"x\"\n\n[[tier]]\nname = \"t\"\nfiles = [\"sql/t.sql\"]\n\n",
    );
    for (p, data) in extra {
        write(&dir.join(p), data);
        toml.push_str(&format!(
            "[[runbook]]\nfile = {}\ntitle = \"r\"\n\n",
            serde_json::to_string(p).unwrap()
        ));
    }
    write(&dir.join(TIER), b"SELECT 1;");
    write(&dir.join("bundle.toml"), toml.as_bytes());
    toml.into_bytes()
}

fn pack(src: &Path, key: &SecretKey, out: &Path) -> Vec<u8> {
    airlock::commands::pack::pack_dir(src, key, Some(out), 6, true).expect("pack");
    std::fs::read(out).unwrap()
}

/// Flip one bit; the verifier must refuse, or the archive must decode identically.
fn check_flip(good: &[u8], good_tar: &[u8], store: &TrustStore, i: usize, bit: u8) -> bool {
    let mut bad = good.to_vec();
    bad[i] ^= 1 << bit;
    match verify_bytes(&bad, store) {
        Err(_) => false,
        Ok(_) => {
            assert_eq!(
                gunzip(&bad).as_deref(),
                Some(good_tar),
                "flipping bit {bit} of byte {i} was accepted and changed the archive"
            );
            true
        }
    }
}

fn component() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9_-]{1,12}",
        "[A-Za-z0-9 ._~+=,@()-]{1,16}",
        // NFC letters outside ASCII: 2- and 3-byte UTF-8.
        "[a-zéüñ漢字ß]{1,10}",
    ]
    .prop_filter("not . or ..", |c| c != "." && c != "..")
}

fn contents() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => prop::collection::vec(any::<u8>(), 0..1500),
        2 => Just(vec![]),
        2 => (
            prop::sample::select(vec![1usize, 511, 512, 513, 1023, 1024, 1025, 10_240]),
            any::<u8>()
        )
            .prop_map(|(n, b)| vec![b; n]),
        // Past gzip's 1 MiB block: several deflate blocks joined by sync flushes.
        1 => ((1usize << 20)..(1 << 20) + 70_000, any::<u64>()).prop_map(|(n, seed)| noise(n, seed)),
    ]
}

/// Incompressible bytes, cheaply.
fn noise(n: usize, mut x: u64) -> Vec<u8> {
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Keep the files `lint` accepts and a file system can hold: valid bundle paths, not
/// reserved, no case/Unicode collisions, no file that is also another's directory.
fn keep_valid(files: Vec<(String, Vec<u8>)>) -> Vec<(String, Vec<u8>)> {
    let mut taken: Vec<String> = vec!["bundle.toml".into(), TIER.into()];
    let mut keys: BTreeSet<String> = taken.iter().map(|p| collision_key(p)).collect();
    let mut out = vec![];
    for (p, data) in files {
        if BundlePath::new(&p).is_err() || airlock::manifest::is_reserved(&p) {
            continue;
        }
        let conflict = taken.iter().any(|q| {
            let (a, b) = (collision_key(q), collision_key(&p));
            a.starts_with(&format!("{b}/")) || b.starts_with(&format!("{a}/"))
        });
        if conflict || !keys.insert(collision_key(&p)) {
            continue;
        }
        taken.push(p.clone());
        out.push((p, data));
    }
    out
}

fn tree() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
    prop::collection::vec(
        (
            prop::collection::vec(component(), 1..4).prop_map(|c| c.join("/")),
            contents(),
        ),
        0..8,
    )
    .prop_map(keep_valid)
}

#[derive(Default, Debug)]
struct Seen {
    cases: usize,
    files: usize,
    empty: usize,
    over_1mib: usize,
    non_ascii_names: usize,
    nested: usize,
    bytes: u64,
    flips: usize,
    flips_equivalent: usize,
}

/// 128 cases (`PROPTEST_CASES` overrides); prints what the cases covered.
#[test]
fn pack_then_verify_and_extract_give_back_every_file() {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(128);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let seen = std::cell::RefCell::new(Seen::default());
    let start = std::time::Instant::now();
    let strategy = (
        tree(),
        prop::collection::vec((any::<prop::sample::Index>(), 0u8..8), 8),
    );
    let result = runner.run(&strategy, |(files, flips)| {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        let toml = source(&src, &files);
        let key = SecretKey::generate().unwrap();
        let store = store_of(&key);
        let bundle = t.path().join("b.tar.gz");
        let good = pack(&src, &key, &bundle);

        let got = verify_bytes(&good, &store).expect("a packed bundle verifies");
        let mut want: BTreeMap<String, Vec<u8>> = files.iter().cloned().collect();
        want.insert("bundle.toml".into(), toml);
        want.insert(TIER.into(), b"SELECT 1;".to_vec());
        let sums = got.get("SHA256SUMS").expect("SHA256SUMS").clone();
        want.insert("SHA256SUMS".into(), sums);
        prop_assert_eq!(&got, &want);

        let out = t.path().join("out");
        extract(
            &bundle,
            judge(&store),
            &Limits::default(),
            &out,
            &airlock::progress::Progress::hidden(),
        )
        .expect("extract");
        for (p, data) in &want {
            prop_assert_eq!(&std::fs::read(out.join(p)).unwrap(), data, "{}", p);
        }
        let on_disk = walkdir::WalkDir::new(&out)
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file())
            .count();
        // The payload plus manifest.json and one signature, nothing else.
        prop_assert_eq!(on_disk, want.len() + 2);

        let good_tar = gunzip(&good).expect("gzip");
        let mut equivalent = 0;
        for (at, bit) in &flips {
            if check_flip(&good, &good_tar, &store, at.index(good.len()), *bit) {
                equivalent += 1;
            }
        }
        let mut s = seen.borrow_mut();
        s.cases += 1;
        s.files += files.len();
        s.empty += files.iter().filter(|(_, d)| d.is_empty()).count();
        s.over_1mib += files.iter().filter(|(_, d)| d.len() > 1 << 20).count();
        s.non_ascii_names += files.iter().filter(|(p, _)| !p.is_ascii()).count();
        s.nested += files
            .iter()
            .filter(|(p, _)| p.matches('/').count() >= 2)
            .count();
        s.bytes += files.iter().map(|(_, d)| d.len() as u64).sum::<u64>();
        s.flips += flips.len();
        s.flips_equivalent += equivalent;
        Ok(())
    });
    eprintln!(
        "round trips in {:.1?} (cases include shrinking on failure): {:?}",
        start.elapsed(),
        seen.borrow()
    );
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// Every bit of a small bundle, one at a time (the hostile corpus samples every 97th
/// byte; this is the exhaustive sweep).
#[test]
fn every_single_bit_flip_is_refused_or_decodes_identically() {
    let t = tempfile::tempdir().unwrap();
    let key = SecretKey::generate().unwrap();
    let store = store_of(&key);
    source(
        &t.path().join("src"),
        &[("runbooks/a.md".into(), b"# runbook\n".to_vec())],
    );
    let good = pack(&t.path().join("src"), &key, &t.path().join("b.tar.gz"));
    verify_bytes(&good, &store).expect("control verifies");
    let good_tar = gunzip(&good).expect("gzip");
    let start = std::time::Instant::now();
    let mut equivalent = vec![];
    for i in 0..good.len() {
        for bit in 0..8 {
            if check_flip(&good, &good_tar, &store, i, bit) {
                equivalent.push((i, bit));
            }
        }
    }
    eprintln!(
        "bit flips: {} bytes, {} flips in {:.1?}: {} refused, {} accepted, each decoding to the identical archive: {equivalent:?}",
        good.len(),
        good.len() * 8,
        start.elapsed(),
        good.len() * 8 - equivalent.len(),
        equivalent.len()
    );
    // Ignored or equivalent deflate bits are rare; most of the stream is load-bearing.
    assert!(equivalent.len() * 100 < good.len() * 8);
}
