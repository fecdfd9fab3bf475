//! Records the git commit the binary is built from, for `airlock --version`.
//!
//! Invariant: a build outside a git checkout (a source tarball, a vendored copy) still
//! succeeds and says "unknown"; `AIRLOCK_GIT_COMMIT` in the environment wins (a
//! packager building from an exported tree can name the commit).

use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn main() {
    println!("cargo:rerun-if-env-changed=AIRLOCK_GIT_COMMIT");
    println!("cargo:rerun-if-changed=build.rs");
    let commit = std::env::var("AIRLOCK_GIT_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".into());
    // Rebuild when HEAD moves: HEAD itself, its reflog (appended on every commit and
    // checkout), the branch it names and packed-refs (in the common dir for a
    // worktree). Only existing files: cargo reruns on every build for a missing one.
    if let (Some(dir), Some(common)) = (
        git(&["rev-parse", "--absolute-git-dir"]),
        git(&["rev-parse", "--git-common-dir"]),
    ) {
        let dir = PathBuf::from(dir);
        let common = if PathBuf::from(&common).is_absolute() {
            PathBuf::from(common)
        } else {
            std::env::current_dir().unwrap_or_default().join(common)
        };
        let mut watch = vec![
            dir.join("HEAD"),
            dir.join("logs/HEAD"),
            common.join("packed-refs"),
        ];
        if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
            watch.push(common.join(branch));
        }
        for path in watch.iter().filter(|p| p.exists()) {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    println!("cargo:rustc-env=AIRLOCK_GIT_COMMIT={commit}");
}
