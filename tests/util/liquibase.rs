//! Liquibase itself, for the tests where matching it is the point: the npm package
//! `scripts/liquibase-npm` installs (once) and the commands run against a test database.

use super::TestDb;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The `liquibase` launcher (installed by `scripts/liquibase-npm` when missing).
pub fn liquibase() -> PathBuf {
    let o = Command::new(super::repo().join("scripts/liquibase-npm"))
        .output()
        .expect("scripts/liquibase-npm");
    assert!(
        o.status.success(),
        "scripts/liquibase-npm: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&o.stdout).trim())
}

/// `liquibase ARGS…` on the changelog `changelog` (relative to `dir`) against `db`:
/// what it printed. A failure fails the test, with Liquibase's own output.
pub fn run_liquibase(dir: &Path, changelog: &str, db: &TestDb, args: &[&str]) -> String {
    let o = Command::new(liquibase())
        .current_dir(dir)
        // The JVM's quick compiler only and one GC thread: each run is a few seconds,
        // and this takes a third less CPU than the defaults (docs/performance.md), which
        // the other tests beside it need. Liquibase itself is unchanged.
        .env("JAVA_OPTS", "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC")
        .args([
            "--show-banner=false",
            &format!("--changelog-file={changelog}"),
            &format!("--url=jdbc:postgresql://127.0.0.1:5432/{}", db.name),
            "--username=root",
        ])
        .args(args)
        .output()
        .expect("liquibase");
    assert!(
        o.status.success(),
        "liquibase {args:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}
