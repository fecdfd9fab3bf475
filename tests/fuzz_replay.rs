//! Replays every fuzz regression input (`tests/data/fuzz-regressions/TARGET/`) and the
//! kept, minimized seed corpus (`tests/data/fuzz-corpus/TARGET/`) through the entry
//! points the `cargo fuzz` targets call, so a crash once found stays fixed in plain
//! `cargo test`, with no fuzz toolchain.

use std::path::Path;

type Target = fn(&[u8]);

const TARGETS: [(&str, Target); 5] = [
    ("bundle_gz", airlock::fuzz_targets::bundle_gz),
    ("bundle_tar", airlock::fuzz_targets::bundle_tar),
    ("manifest", airlock::fuzz_targets::manifest),
    ("minisign", airlock::fuzz_targets::minisign),
    ("spec", airlock::fuzz_targets::spec),
];

fn replay(set: &str) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(set);
    let mut n = 0;
    let mut failed = vec![];
    for (target, run) in TARGETS {
        let Ok(dir) = std::fs::read_dir(root.join(target)) else {
            continue;
        };
        let mut files: Vec<_> = dir.filter_map(Result::ok).map(|e| e.path()).collect();
        files.sort();
        for f in files {
            let bytes = std::fs::read(&f).unwrap();
            if std::panic::catch_unwind(|| run(&bytes)).is_err() {
                failed.push(f.display().to_string());
            }
            n += 1;
        }
    }
    assert!(failed.is_empty(), "inputs that still fail: {failed:#?}");
    eprintln!("{set}: {n} inputs replayed");
    n
}

#[test]
fn fuzz_regressions_replay() {
    replay("fuzz-regressions");
}

#[test]
fn kept_fuzz_corpus_replays() {
    // Every target keeps at least its seeds.
    assert!(replay("fuzz-corpus") >= TARGETS.len());
}

/// The seed bundles are signed by the snakeoil key the bundle targets trust, so the
/// fuzzer starts from inputs that pass the whole path, trust included.
#[test]
fn seed_bundles_verify_against_the_snakeoil_key() {
    use airlock::archive::{read_bundle_from, Discard, Judge, Limits};
    use airlock::minisign::PublicKey;
    use airlock::trust::TrustStore;
    let store = TrustStore::single(
        "snakeoil.pub",
        PublicKey::parse(airlock::fuzz_targets::SNAKEOIL_PUB).unwrap(),
    );
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fuzz-corpus/bundle_gz");
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if !p
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("seed-")
        {
            continue;
        }
        let bytes = std::fs::read(&p).unwrap();
        let judge = Judge::Trust {
            store: &store,
            at: chrono::Utc::now(),
        };
        read_bundle_from(
            std::io::Cursor::new(bytes),
            judge,
            &Limits::default(),
            &mut Discard,
        )
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        n += 1;
    }
    assert!(n >= 3);
}
