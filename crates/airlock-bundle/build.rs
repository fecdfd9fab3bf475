//! `AIRLOCK_RULES_ID`: a SHA-256 over the sources that decide a bundle's SQL verdict
//! (this crate's and `airlock-sql`'s) and the workspace's `Cargo.lock` (the parser
//! `pg_query` and everything else they build on). A host remembers a bundle this build
//! judged under this id (`verdicts.rs`), so any change to the rules, however
//! small, and any other build, judges again.

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn main() {
    let here = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let inputs = [
        here.join("src"),
        here.join("../airlock-sql/src"),
        here.join("../airlock-sql/Cargo.toml"),
        here.join("Cargo.toml"),
        here.join("../../Cargo.lock"),
    ];
    let mut hash = Sha256::new();
    hash.update(std::env::var("CARGO_PKG_VERSION").unwrap_or_default());
    for input in &inputs {
        println!("cargo:rerun-if-changed={}", input.display());
        let mut files = vec![];
        if input.is_dir() {
            files_under(input, &mut files);
        } else {
            files.push(input.clone());
        }
        files.sort();
        for f in files {
            let Ok(bytes) = std::fs::read(&f) else {
                continue;
            };
            let name = f.strip_prefix(&here).unwrap_or(&f).to_string_lossy();
            hash.update((name.len() as u64).to_le_bytes());
            hash.update(name.as_bytes());
            hash.update((bytes.len() as u64).to_le_bytes());
            hash.update(&bytes);
        }
    }
    let id: String = hash.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    println!("cargo:rustc-env=AIRLOCK_RULES_ID={id}");
}
