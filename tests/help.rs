//! Every `--help` pinned: `airlock --help` and `airlock SUB --help` for each subcommand
//! it lists must equal the committed `tests/data/help/*.txt` (re-bless after an
//! intended change with `AIRLOCK_BLESS=1 cargo test --test help`), and no subcommand,
//! argument or flag may show an empty help line.

mod util;
use std::process::Command;
use util::*;

/// The subcommands `airlock --help` lists (clap's own `help` aside), in its order.
const SUBCOMMANDS: [&str; 27] = [
    "keygen",
    "new",
    "lint",
    "pack",
    "import",
    "sign",
    "verify",
    "inspect",
    "extract",
    "runbook",
    "sql",
    "dossier",
    "approve",
    "gate",
    "plan",
    "apply",
    "rollback",
    "reissue",
    "rehearse",
    "setup",
    "status",
    "fingerprint",
    "audit",
    "trust",
    "demo",
    "completions",
    "man",
];

/// Subcommands of subcommands, pinned as `trust-add.txt` and so on.
const NESTED: [&str; 7] = [
    "trust id",
    "trust list",
    "trust add",
    "trust revoke",
    "trust set",
    "trust sign",
    "trust update",
];

/// `airlock ARGS` with nothing of this environment: a fixed width of 100 columns
/// (stdout is a pipe, so clap's wrap_help reads COLUMNS; the Cli caps it at 100 too)
/// and no AIRLOCK_* variable whose value clap would print as `[env: NAME=value]`.
fn help(args: &[&str]) -> String {
    let o = Command::new(bin())
        .args(args)
        .env_clear()
        .env("COLUMNS", "100")
        .output()
        .expect("run airlock");
    expect_code(&o, 0);
    assert!(
        o.stderr.is_empty(),
        "{args:?} wrote on stderr: {}",
        stderr(&o)
    );
    stdout(&o)
}

/// The entries (first column) of the sections `Commands:`, `Arguments:` and
/// `Options:` whose help text is empty. An entry is a line indented by two to six
/// spaces (`  -q, --quiet`, `      --json`, `  <BUNDLE>`, `  keygen`); its help follows
/// two or more spaces on the same line, or on the next line indented deeper (clap's
/// long format, or a name too wide for the column).
fn entries_without_help(text: &str) -> Vec<String> {
    let indent = |l: &str| l.len() - l.trim_start().len();
    let lines: Vec<&str> = text.lines().collect();
    let mut missing = Vec::new();
    let mut in_section = false;
    for (i, line) in lines.iter().enumerate() {
        if !line.starts_with(' ') {
            in_section = matches!(line.trim_end(), "Commands:" | "Arguments:" | "Options:");
            continue;
        }
        if !in_section || line.trim().is_empty() || !(2..=6).contains(&indent(line)) {
            continue;
        }
        let entry = line.trim();
        let (name, rest) = entry.split_once("  ").unwrap_or((entry, ""));
        let next_is_help = lines
            .get(i + 1)
            .is_some_and(|n| indent(n) > 6 && !n.trim().is_empty());
        if rest.trim().is_empty() && !next_is_help {
            missing.push(name.to_string());
        }
    }
    missing
}

/// The subcommand names in the `Commands:` section of the top-level help.
fn listed_subcommands(top: &str) -> Vec<String> {
    top.lines()
        .skip_while(|l| l.trim_end() != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.strip_prefix("  ").filter(|e| !e.starts_with(' ')))
        .map(|e| e.split_whitespace().next().unwrap_or_default().to_string())
        .filter(|name| name != "help")
        .collect()
}

#[test]
fn the_list_of_subcommands_is_what_airlock_help_shows() {
    let listed = listed_subcommands(&help(&["--help"]));
    assert_eq!(
        listed, SUBCOMMANDS,
        "a subcommand came or went: pin its --help here"
    );
}

#[test]
fn every_help_equals_its_committed_copy() {
    let dir = repo().join("tests/data/help");
    let bless = std::env::var("AIRLOCK_BLESS").is_ok();
    if bless {
        std::fs::create_dir_all(&dir).expect("create tests/data/help");
    }
    let pages = std::iter::once(("airlock".to_string(), help(&["--help"])))
        .chain(
            SUBCOMMANDS
                .iter()
                .map(|s| (s.to_string(), help(&[s, "--help"]))),
        )
        .chain(NESTED.iter().map(|s| {
            let args: Vec<&str> = s.split(' ').chain(["--help"]).collect();
            (s.replace(' ', "-"), help(&args))
        }));
    let mut drifted = Vec::new();
    for (name, text) in pages {
        let path = dir.join(format!("{name}.txt"));
        if bless {
            std::fs::write(&path, &text).expect("write the help page");
            continue;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        if committed != text {
            drifted.push(format!("{name}.txt"));
        }
    }
    assert!(
        drifted.is_empty(),
        "tests/data/help/{{{}}} differ from --help; if the change is meant, run \
         AIRLOCK_BLESS=1 cargo test --test help and commit the files",
        drifted.join(",")
    );
}

#[test]
fn no_subcommand_argument_or_flag_has_an_empty_help_line() {
    let top = help(&["--help"]);
    let missing = entries_without_help(&top);
    assert!(
        missing.is_empty(),
        "airlock --help: no help for {missing:?}"
    );
    for sub in SUBCOMMANDS.iter().chain(NESTED.iter()) {
        let args: Vec<&str> = sub.split(' ').chain(["--help"]).collect();
        let text = help(&args);
        let about = text.lines().next().unwrap_or_default();
        assert!(
            !about.trim().is_empty() && !about.starts_with("Usage:"),
            "airlock {sub} --help has no description:\n{text}"
        );
        let missing = entries_without_help(&text);
        assert!(
            missing.is_empty(),
            "airlock {sub} --help: no help for {missing:?}"
        );
    }
}

#[test]
fn the_empty_help_check_sees_a_bare_entry() {
    let page = "Commands:\n  keygen  Create a key pair\n  lint\n\n\
                Arguments:\n  <BUNDLE>\n\n\
                Options:\n      --documented  Says what it does\n      --bare\n  \
                -h, --help\n          Print help\n  -q, --quiet\n";
    assert_eq!(
        entries_without_help(page),
        ["lint", "<BUNDLE>", "--bare", "-q, --quiet"]
    );
}

#[test]
fn every_manual_page_has_exit_status_environment_and_examples() {
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(bin())
        .args(["man"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut pages = 0;
    for sub in std::iter::once("airlock".to_string())
        .chain(SUBCOMMANDS.iter().map(|s| format!("airlock-{s}")))
    {
        let page = std::fs::read_to_string(dir.path().join(format!("{sub}.1")))
            .unwrap_or_else(|e| panic!("{sub}.1: {e}"));
        for section in [".SH \"EXIT STATUS\"", ".SH ENVIRONMENT", ".SH EXAMPLES"] {
            assert!(page.contains(section), "{sub}.1 has no {section}");
        }
        for code in 0..=6 {
            assert!(
                page.contains(&format!("\\fB{code}\\fR")),
                "{sub}.1: exit {code}"
            );
        }
        for var in [
            "AIRLOCK_TRUST",
            "AIRLOCK_DB",
            "AIRLOCK_PASSPHRASE",
            "AIRLOCK_STATE_DIR",
        ] {
            assert!(page.contains(var), "{sub}.1: no {var}");
        }
        pages += 1;
    }
    assert!(pages > 15, "{pages} pages");
    // The page on stdout is the top page, with the same sections.
    let top = Command::new(bin()).arg("man").output().unwrap();
    assert!(String::from_utf8_lossy(&top.stdout).contains(".SH \"EXIT STATUS\""));
}
