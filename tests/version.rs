//! What the binary says about itself: `--version` (version, commit, which SQL check),
//! the manual pages and the shell completions the Debian package ships.

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
    let check = "SQL check: PostgreSQL's parser, libpg_query";
    assert_eq!(
        line,
        format!(
            "airlock {} (commit {commit}; {check})",
            env!("CARGO_PKG_VERSION")
        )
    );
}

#[test]
fn man_pages_and_completions_come_from_the_same_definitions_as_help() {
    let t = tempdir();
    let o = airlock(t.path(), &["man"]);
    expect_code(&o, 0);
    let page = stdout(&o);
    assert!(page.contains(".TH airlock 1"), "{page}");
    assert!(page.contains("rehearse"), "subcommands listed");
    let out = t.path().join("man1");
    std::fs::create_dir(&out).unwrap();
    let o = airlock(t.path(), &["man", "--out-dir", out.to_str().unwrap()]);
    expect_code(&o, 0);
    for name in [
        "airlock.1",
        "airlock-apply.1",
        "airlock-demo.1",
        "airlock-man.1",
    ] {
        let text = std::fs::read_to_string(out.join(name)).unwrap_or_default();
        assert!(text.contains(".TH"), "{name}: {text}");
    }
    let o = airlock(t.path(), &["man", "--out-dir", "missing"]);
    expect_code(&o, 2);
    for shell in ["bash", "zsh", "fish"] {
        let o = airlock(t.path(), &["completions", shell]);
        expect_code(&o, 0);
        assert!(stdout(&o).contains("rehearse"), "{shell}");
    }
    // The bash script is valid bash.
    let script = t.path().join("airlock.bash");
    std::fs::write(
        &script,
        stdout(&airlock(t.path(), &["completions", "bash"])),
    )
    .unwrap();
    let check = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}
