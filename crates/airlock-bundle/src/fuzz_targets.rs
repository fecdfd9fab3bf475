//! Entry points shared by the `cargo fuzz` targets (`fuzz/`) and the regression replay
//! test (`tests/fuzz_replay.rs`), so a crash input replays through exactly the code the
//! fuzzer ran, with no fuzz toolchain.
//!
//! Invariant: each function accepts any bytes, never panics on its own account, and
//! panics only when an oracle fails — a property that must hold for every input (a
//! parsed value re-parses equal from its serialization, a judged bundle is also
//! structurally sound, a spec that passes the structural rules yields a manifest the
//! verifier accepts). Not part of airlock's supported API.
#![doc(hidden)]

use crate::archive::{read_bundle_from, Judge, Limits, MemorySink, Opened};
use crate::bundle_path::collision_key;
use crate::manifest::{self, FileEntry, Manifest};
use crate::minisign::{PublicKey, SecretKey, SignatureBox};
use crate::trust::TrustStore;
use std::collections::BTreeSet;
use std::io::Cursor;
use std::path::Path;

/// Public half of `tests/data/snakeoil.key`, the throw-away key the seed bundles are
/// signed with, so mutated bundles also reach the trust judgement.
pub const SNAKEOIL_PUB: &str = include_str!("../../../tests/data/snakeoil.pub");

/// Small limits, so a fuzz input cannot make one execution slow or large.
fn limits() -> Limits {
    Limits {
        max_manifest: 1 << 20,
        max_signature: 4096,
        max_signatures: 16,
        max_entries: 1000,
        max_entry: 16 << 20,
        max_total: 32 << 20,
        max_ratio: 200,
        ratio_floor: 1 << 20,
    }
}

fn snakeoil_store() -> TrustStore {
    TrustStore::single(
        "snakeoil.pub",
        PublicKey::parse(SNAKEOIL_PUB).expect("snakeoil.pub parses"),
    )
}

fn read(bytes: &[u8], judge: Judge<'_>) -> (Result<Opened, String>, MemorySink) {
    let mut sink = MemorySink::new(32 << 20);
    let r = read_bundle_from(Cursor::new(bytes.to_vec()), judge, &limits(), &mut sink)
        .map_err(|e| e.to_string());
    (r, sink)
}

/// What a successful read must satisfy, whatever the input was.
fn check_opened(op: &Opened, sink: &MemorySink) {
    assert_eq!(op.bundle_id, manifest::bundle_id(&op.manifest_bytes));
    let again = Manifest::parse(&op.manifest_bytes).expect("accepted manifest re-parses");
    assert_eq!(again, op.manifest);
    let listed: BTreeSet<&str> = op.manifest.files.iter().map(|f| f.path.as_str()).collect();
    let got: BTreeSet<&str> = sink.files.keys().map(String::as_str).collect();
    assert_eq!(listed, got, "every listed file arrived, and nothing else");
    for f in &op.manifest.files {
        let data = &sink.files[&f.path];
        assert_eq!(data.len() as u64, f.size, "{}: size", f.path);
        assert_eq!(
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(data)),
            f.sha256,
            "{}: hash",
            f.path
        );
    }
    for (name, sig) in &op.signatures {
        assert_eq!(*name, format!("signatures/{}.minisig", sig.key_id));
    }
}

/// The whole verification path from the gzip bytes of a bundle.
pub fn bundle_gz(bytes: &[u8]) {
    let (structure, sink) = read(bytes, Judge::StructureOnly);
    if let Ok(op) = &structure {
        check_opened(op, &sink);
    }
    let store = snakeoil_store();
    let (trusted, sink) = read(
        bytes,
        Judge::Trust {
            store: &store,
            at: chrono::DateTime::from_timestamp(1_750_000_000, 0).expect("a time"),
        },
    );
    if let Ok(op) = &trusted {
        check_opened(op, &sink);
        assert!(structure.is_ok(), "trusted but structurally refused");
        let verdict = op.trust.as_ref().expect("a trust verdict");
        assert!(verdict.met && verdict.distinct_keys >= 1);
    }
}

/// The same path from an uncompressed tar: wrapped here in the exact gzip framing
/// airlock accepts (stored deflate blocks), so mutations reach the tar layer instead
/// of dying at the gzip checksum.
pub fn bundle_tar(tar: &[u8]) {
    bundle_gz(&gzip_stored(tar));
}

/// A gzip member with stored (uncompressed) deflate blocks and airlock's exact header.
pub fn gzip_stored(data: &[u8]) -> Vec<u8> {
    let mut out = crate::archive::gz::GZIP_HEADER.to_vec();
    let mut chunks = data.chunks(65_535).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(c) = chunks.next() {
        out.push(u8::from(chunks.peek().is_none()));
        let n = c.len() as u16;
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&(!n).to_le_bytes());
        out.extend_from_slice(c);
    }
    let mut crc = flate2::Crc::new();
    crc.update(data);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

/// `Manifest::parse`: what it accepts re-parses equal from its canonical bytes.
pub fn manifest(bytes: &[u8]) {
    if let Ok(m) = Manifest::parse(bytes) {
        let canonical = m.to_canonical_bytes();
        let again = Manifest::parse(&canonical).expect("canonical bytes re-parse");
        assert_eq!(again, m);
        assert_eq!(again.to_canonical_bytes(), canonical);
    }
}

/// The minisign parsers. The first byte picks the format; the rest is the file text.
pub fn minisign(bytes: &[u8]) {
    let Some((&kind, rest)) = bytes.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    match kind % 3 {
        0 => {
            if let Ok(pk) = PublicKey::parse(text) {
                let again = PublicKey::parse(&pk.to_file_text()).expect("public key re-parses");
                assert_eq!(again, pk);
                assert!(!pk.key.is_weak());
            }
        }
        1 => {
            if let Ok(sig) = SignatureBox::parse(text) {
                let again = SignatureBox::parse(&sig.to_file_text()).expect("signature re-parses");
                assert_eq!(again, sig);
                // Verifying a parsed signature never panics (and a snakeoil key only
                // accepts what the snakeoil key signed).
                let pk = PublicKey::parse(SNAKEOIL_PUB).expect("snakeoil.pub");
                let _ = pk.verify(text.as_bytes(), &sig);
            }
        }
        _ => {
            let encrypted = SecretKey::file_is_encrypted(text);
            // Without a passphrase nothing reaches scrypt, whose cost the file sets.
            match SecretKey::parse(text, None) {
                Ok(sk) => {
                    assert_eq!(encrypted.ok(), Some(false));
                    let out = sk.to_file_text(None).expect("serialize");
                    let again = SecretKey::parse(&out, None).expect("secret key re-parses");
                    assert_eq!(again.public(), sk.public());
                    let sig = sk.sign(b"m", "tc");
                    sk.public()
                        .verify(b"m", &sig)
                        .expect("own signature verifies");
                }
                Err(crate::minisign::MinisignError::PassphraseRequired) => {
                    assert_eq!(encrypted.ok(), Some(true));
                }
                Err(_) => {}
            }
        }
    }
}

/// `bundle.toml`: parsing and the structural rules. A spec that passes them (and whose
/// files do not collide, as `lint` also requires) must give a manifest that
/// `Manifest::parse` accepts, or `pack` would sign what `verify` refuses.
pub fn spec(bytes: &[u8]) {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let Ok(spec) = crate::spec::parse(Path::new("bundle.toml"), text) else {
        return;
    };
    let problems = spec.structural_problems();
    let named = spec.named_files();
    if !problems.is_empty() {
        return;
    }
    let mut paths: BTreeSet<String> = named.into_iter().map(|(f, _, _)| f).collect();
    paths.insert(crate::spec::SPEC_FILE.into());
    paths.insert(manifest::SUMS.into());
    let keys: BTreeSet<String> = paths.iter().map(|p| collision_key(p)).collect();
    if keys.len() != paths.len() {
        return;
    }
    let files = paths
        .into_iter()
        .map(|path| FileEntry {
            path,
            sha256: "0".repeat(64),
            size: 0,
            chunks: None,
        })
        .collect();
    let m = Manifest::from_spec(spec, files);
    if let Err(e) = Manifest::parse(&m.to_canonical_bytes()) {
        panic!("a spec without structural problems gave a refused manifest: {e}");
    }
}
