//! Progress bars appear on a terminal for large bundles and never pollute `--json`,
//! `--quiet` or a pipe. The terminal is a real pseudo-terminal from script(1).

mod util;
use std::path::Path;
use std::process::Command;
use util::*;

/// A source of `mib` MiB of INSERT statements (large enough for a bar).
fn big_source(dir: &Path, mib: usize) -> std::path::PathBuf {
    let src = dir.join("big");
    let line = "INSERT INTO t VALUES (12345, 'some text; not a statement', 42);\n";
    let text = line.repeat((mib << 20) / line.len() + 1);
    write(&src.join("sql/data.sql"), &text);
    write(
        &src.join("bundle.toml"),
        "[bundle]\nname = \"big\"\nversion = \"1\"\nsequence = 1\n\n[target]\ndatabase = \"big\"\n\n[[tier]]\nname = \"data\"\nfiles = [\"sql/data.sql\"]\n",
    );
    src
}

/// Run airlock under a pseudo-terminal; returns everything the terminal showed.
fn on_a_terminal(dir: &Path, args: &str) -> String {
    let o = Command::new("script")
        .current_dir(dir)
        .args(["-qec", &format!("{} {args}", bin().display()), "/dev/null"])
        .output()
        .expect("script(1) from util-linux is needed for the terminal tests");
    assert!(
        o.status.success(),
        "{args}: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn a_bar_on_a_terminal_never_in_json_quiet_or_a_pipe() {
    let t = tempdir();
    let d = t.path();
    keygen(d, "k");
    big_source(d, 40);
    let shown = on_a_terminal(d, "pack big --key k.key --out b.tar.gz");
    assert!(
        shown.contains("packing [") && shown.contains("eta"),
        "no progress bar on a terminal:\n{shown}"
    );
    assert!(shown.contains("packed big 1"), "{shown}");
    let shown = on_a_terminal(d, "--json pack big --key k.key --out j.tar.gz");
    assert!(!shown.contains("eta"), "a bar in --json:\n{shown}");
    let shown = on_a_terminal(d, "--quiet pack big --key k.key --out q.tar.gz");
    assert!(!shown.contains("eta"), "a bar with --quiet:\n{shown}");
    // Not a terminal: stderr stays empty on success.
    let o = airlock(d, &["pack", "big", "--key", "k.key", "--out", "p.tar.gz"]);
    expect_code(&o, 0);
    assert_eq!(stderr(&o), "");
    // The same bundle however it was shown.
    let id = |f: &str| json(&airlock(d, &["--json", "inspect", f]))["bundle_id"].clone();
    assert_eq!(id("p.tar.gz"), id("b.tar.gz"));
    assert_eq!(id("q.tar.gz"), id("b.tar.gz"));
}
