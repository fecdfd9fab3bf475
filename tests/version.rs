//! `airlock --version` names the version, the commit it was built from and which SQL
//! check this build makes.

mod util;
use std::process::Command;
use util::*;

#[test]
fn version_names_the_commit_and_the_sql_check_of_this_build() {
    let t = tempdir();
    let o = airlock(t.path(), &["--version"]);
    expect_code(&o, 0);
    let line = stdout(&o);
    let line = line.trim();
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(repo())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let check = if cfg!(feature = "pg-parser") {
        "SQL check: PostgreSQL parser, pg-parser build"
    } else {
        "SQL check: token classifier, default build without pg-parser"
    };
    assert_eq!(
        line,
        format!(
            "airlock {} (commit {commit}; {check})",
            env!("CARGO_PKG_VERSION")
        )
    );
}
