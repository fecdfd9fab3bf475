//! The operator's day, output side (issue 14): `--json` keeps its promise for argument
//! errors too, server NOTICEs are part of the report, colour and progress appear on a
//! terminal only (a real pseudo-terminal from script(1)) and never in a pipe, tables
//! fit the width, and the smaller promises of help and messages.

mod util;
use std::path::Path;
use std::process::{Command, Output};
use util::*;

/// A database with schema `app`, a key pair `rm`, and a one-tier mini bundle
/// `b.tar.gz`.
struct Case {
    t: tempfile::TempDir,
    db: TestDb,
}

impl Case {
    /// The tier raises a NOTICE (and sleeps `sleep` seconds) before creating `app.t1`.
    fn new(tag: &str, gate: &str, sleep: &str) -> Case {
        let tier = format!(
            "DO $$ BEGIN RAISE NOTICE 'hello from tier one'; END $$;\nSELECT pg_sleep({sleep});\nCREATE TABLE app.t1(i int);"
        );
        Case::with_tier(tag, gate, &tier, "DROP TABLE IF EXISTS app.t1;")
    }

    fn with_tier(tag: &str, gate: &str, tier: &str, rollback: &str) -> Case {
        let db = TestDb::new(tag);
        db.exec("CREATE SCHEMA app;");
        let t = keyed_dir();
        let tiers = [("structure", tier, false)];
        mini_bundle(t.path(), &db.name, "b.tar.gz", gate, &tiers, rollback);
        Case { t, db }
    }

    fn dir(&self) -> &Path {
        self.t.path()
    }

    /// `airlock [pre…] SUB b.tar.gz --trust rm.pub --db dbname=… [post…]` through pipes.
    fn run(&self, pre: &[&str], sub: &str, post: &[&str], env: &[(&str, &str)]) -> Output {
        let conn = self.db.conn();
        let mut a: Vec<&str> = pre.to_vec();
        a.extend([sub, "b.tar.gz", "--trust", "rm.pub", "--db", conn.as_str()]);
        a.extend(post);
        airlock_env(self.dir(), &a, env)
    }

    /// The same on a pseudo-terminal (stdin, stdout and stderr); returns what it showed.
    fn on_terminal(&self, env: &str, pre: &str, sub: &str, post: &str) -> String {
        let line = format!(
            "env {env} {} {pre} {sub} b.tar.gz --trust rm.pub --db dbname={} {post}",
            bin().display(),
            self.db.name
        );
        terminal(self.dir(), &line)
    }
}

/// Run a shell line under script(1); returns the terminal's bytes as text.
fn terminal(dir: &Path, line: &str) -> String {
    let o = Command::new("script")
        .current_dir(dir)
        .env_remove("NO_COLOR")
        .env_remove("AIRLOCK_DB")
        .env_remove("PGDATABASE")
        .env("AIRLOCK_STATE_DIR", state_dir())
        .args(["-qec", line, "/dev/null"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("script(1) from util-linux is needed for the terminal tests");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn json_argument_errors_are_the_error_document_on_stdout_with_exit_2() {
    let t = tempdir();
    for args in [
        &["--json", "gate"][..],
        &["--json", "frobnicate"],
        &["--json"],
        &["status", "--json", "--no-such-flag"],
        &["--json", "pack", "src", "--key", "k.key", "--level", "12"],
    ] {
        let o = airlock(t.path(), args);
        expect_code(&o, 2);
        let doc = json(&o);
        assert_eq!(doc["ok"], false, "{args:?}");
        assert_eq!(doc["exit_code"], 2, "{args:?}");
        assert_eq!(doc["kind"], "usage", "{args:?}");
        assert!(
            !doc["error"].as_str().unwrap().is_empty(),
            "{args:?}: {doc}"
        );
        assert!(doc["hint"].as_str().unwrap().contains("--help"), "{doc}");
    }
    let doc = json(&airlock(t.path(), &["--json", "gate"]));
    let error = doc["error"].as_str().unwrap();
    assert!(
        error.contains("--trust <PATH>") && error.contains("<BUNDLE>"),
        "the missing arguments are named: {error}"
    );
    // Without --json: clap's text on stderr, nothing on stdout; --help still exits 0.
    let o = airlock(t.path(), &["gate"]);
    expect_code(&o, 2);
    assert_eq!(stdout(&o), "");
    assert!(stderr(&o).contains("required arguments"), "{}", stderr(&o));
    expect_code(&airlock(t.path(), &["--json", "gate", "--help"]), 0);
    // A `--json` after `--` is an argument, not the flag.
    let o = airlock(t.path(), &["lint", "--", "--json"]);
    assert_eq!(stdout(&o), "", "{}", stderr(&o));
}

#[test]
fn server_notices_are_in_the_report_never_raw_on_stderr() {
    let c = Case::new("notices", "SELECT true AS ready", "0");
    let o = c.run(&["--json"], "apply", &["--yes"], &[]);
    expect_code(&o, 0);
    assert_eq!(stderr(&o), "", "nothing raw on stderr with --json");
    let doc = json(&o);
    let notices = doc["notices"].as_array().expect("a notices list");
    assert!(
        notices
            .iter()
            .any(|n| n["severity"] == "NOTICE" && n["message"] == "hello from tier one"),
        "{doc:#}"
    );
    // Human output shows them in the report on stdout.
    c.run(&[], "rollback", &["--yes"], &[]);
    let o = c.run(&[], "apply", &["--yes"], &[]);
    expect_code(&o, 0);
    assert_eq!(stderr(&o), "");
    assert!(
        stdout(&o).contains("server notices (1):\n  NOTICE: hello from tier one"),
        "{}",
        stdout(&o)
    );
    // --quiet: nothing at all.
    c.run(&[], "rollback", &["--yes"], &[]);
    let o = c.run(&["-q"], "apply", &["--yes"], &[]);
    expect_code(&o, 0);
    assert_eq!(stdout(&o), "");
    assert_eq!(stderr(&o), "");
    // Commands whose run raised nothing carry an empty list.
    let o = c.run(&["--json"], "gate", &[], &[]);
    assert_eq!(json(&o)["notices"], serde_json::json!([]));
}

#[test]
fn every_json_document_says_ok_and_exit_code_and_errors_leave_stderr_empty() {
    let c = Case::new(
        "envelope",
        "SELECT false AS ready, 'not yet' AS reason",
        "0",
    );
    let o = c.run(&["--json"], "gate", &[], &[]);
    expect_code(&o, 3);
    let doc = json(&o);
    assert_eq!(
        (doc["ok"].clone(), doc["exit_code"].clone()),
        (false.into(), 3.into()),
        "{doc:#}"
    );
    let o = airlock(
        c.dir(),
        &["--json", "verify", "b.tar.gz", "--trust", "rm.pub"],
    );
    expect_code(&o, 0);
    let doc = json(&o);
    assert_eq!(
        (doc["ok"].clone(), doc["exit_code"].clone()),
        (true.into(), 0.into()),
        "{doc:#}"
    );
    // An error: the error document on stdout, nothing on stderr.
    let o = airlock(
        c.dir(),
        &["--json", "verify", "missing.tar.gz", "--trust", "rm.pub"],
    );
    expect_code(&o, 1);
    let doc = json(&o);
    assert_eq!(doc["ok"], false);
    assert_eq!(stderr(&o), "", "stderr under --json");
    // A path that does not open was never judged: not "verification failed".
    let error = doc["error"].as_str().unwrap();
    assert!(
        error.starts_with("cannot open bundle missing.tar.gz"),
        "{doc:#}"
    );
    assert_eq!(doc["kind"], "io", "{doc:#}");
}

#[test]
fn notices_before_an_error_are_in_the_error_document() {
    let c = Case::with_tier(
        "noticeerr",
        "SELECT true AS ready",
        "DO $$ BEGIN RAISE NOTICE 'about to fail'; END $$;\nCREATE TABLE app.t1(i int);\nSELECT 1/0;",
        "SELECT 1;",
    );
    let o = c.run(&["--json"], "apply", &["--yes"], &[]);
    expect_code(&o, 1);
    let doc = json(&o);
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["notices"][0]["message"], "about to fail", "{doc:#}");
    assert!(!stderr(&o).contains("NOTICE"), "{}", stderr(&o));
    assert_eq!(c.db.scalar("SELECT to_regclass('app.t1') IS NULL"), "t");
}

#[test]
fn colour_only_on_a_terminal_and_never_with_no_color_or_never() {
    let c = Case::new("colour", "SELECT true AS ready, 'open' AS reason", "0");
    let green = "\x1b[1;32mREADY\x1b[0m";
    let shown = c.on_terminal("", "", "gate", "");
    assert!(shown.contains(green), "no colour on a terminal:\n{shown:?}");
    let shown = c.on_terminal("NO_COLOR=1", "", "gate", "");
    assert!(
        shown.contains("READY") && !shown.contains('\x1b'),
        "{shown:?}"
    );
    let shown = c.on_terminal("", "--color never", "gate", "");
    assert!(
        shown.contains("READY") && !shown.contains('\x1b'),
        "{shown:?}"
    );
    // A pipe: plain by default, coloured when asked for.
    let o = c.run(&[], "gate", &[], &[]);
    expect_code(&o, 0);
    assert!(!stdout(&o).contains('\x1b'), "{}", stdout(&o));
    let o = c.run(&["--color", "always"], "gate", &[], &[("NO_COLOR", "1")]);
    assert!(stdout(&o).contains(green), "{:?}", stdout(&o));
    // --json is never coloured.
    let o = c.run(&["--json", "--color", "always"], "gate", &[], &[]);
    assert!(!stdout(&o).contains('\x1b'));
    json(&o);
}

#[test]
fn colour_cannot_be_forged_by_text_from_the_database() {
    // A gate reason holding airlock's own private-use style markers gets no colour.
    let c = Case::new(
        "forge",
        "SELECT true AS ready, chr(57344) || chr(57345) || 'looks fine' || chr(57359) AS reason",
        "0",
    );
    let o = c.run(&["--color", "always"], "gate", &[], &[]);
    expect_code(&o, 0);
    let out = stdout(&o);
    assert!(!out.contains('\x1b'), "{out:?}");
    assert!(out.contains("\\u{e000}\\u{e001}looks fine"), "{out}");
}

#[test]
fn tables_fit_the_terminal_width_and_a_pipe_gets_a_default() {
    let c = Case::new(
        "width",
        "SELECT true AS ready, repeat('a long reason that goes on ', 40) AS reason",
        "0",
    );
    let widest = |o: &Output| stdout(o).lines().map(|l| l.chars().count()).max().unwrap();
    let o = c.run(&[], "gate", &[], &[("COLUMNS", "80")]);
    expect_code(&o, 0);
    assert!(widest(&o) <= 80, "{}", stdout(&o));
    assert!(
        stdout(&o).lines().count() > 5,
        "wrapped, not cut:\n{}",
        stdout(&o)
    );
    // A pipe without COLUMNS: 120 columns (docs/operator.md), and the room is used.
    let o = c.run(&[], "gate", &[], &[]);
    assert!(widest(&o) <= 120 && widest(&o) > 100, "{}", stdout(&o));
    // At 60 columns the table still fits (the title line is prose, the terminal's
    // to wrap).
    let o = c.run(&[], "gate", &[], &[("COLUMNS", "60")]);
    let out = stdout(&o);
    let table = out.lines().skip_while(|l| !l.starts_with("gate "));
    let rows: Vec<&str> = table.take_while(|l| !l.is_empty()).collect();
    assert!(rows.len() > 3, "{out}");
    assert!(rows.iter().all(|l| l.chars().count() <= 60), "{out}");
    // The JSON keeps the whole reason.
    let o = c.run(&["--json"], "gate", &[], &[("COLUMNS", "80")]);
    let reason = json(&o)["gates"][0]["reason"].as_str().unwrap().to_string();
    assert_eq!(reason, "a long reason that goes on ".repeat(40));
    // On a terminal: the terminal's own width.
    let shown = c.on_terminal("", "", "gate", "");
    let cols: usize = terminal(c.dir(), "stty size </dev/tty")
        .split_whitespace()
        .nth(1)
        .and_then(|w| w.parse().ok())
        .unwrap_or(0);
    if cols >= 40 {
        let widest = shown
            .lines()
            .map(|l| l.trim_end_matches('\r').chars().count());
        assert!(widest.max().unwrap() <= cols, "{shown}");
    }
}

#[test]
fn progress_shows_tier_and_file_on_a_terminal_only() {
    let c = Case::new("progress", "SELECT true AS ready", "1.5");
    let shown = c.on_terminal("", "", "apply", "--yes");
    assert!(shown.contains("APPLIED"), "{shown}");
    assert!(
        shown.contains("tier 1/1 structure: sql/tier1.sql (file 1/1)"),
        "no progress line on a terminal:\n{shown:?}"
    );
    assert!(shown.contains("00:00:0"), "no elapsed time:\n{shown:?}");
    let shown = c.on_terminal("", "", "rollback", "--yes");
    assert!(shown.contains("rollback"), "{shown}");
    assert!(shown.contains("sql/rollback.sql"), "{shown:?}");
    // --json and --quiet on a terminal: no progress.
    let shown = c.on_terminal("", "--json", "apply", "--yes");
    assert!(!shown.contains("tier 1/1"), "{shown:?}");
    c.run(&[], "rollback", &["--yes"], &[]);
    let shown = c.on_terminal("", "-q", "apply", "--yes");
    assert!(!shown.contains("tier 1/1"), "{shown:?}");
    c.run(&[], "rollback", &["--yes"], &[]);
    // A pipe: stderr stays empty.
    let o = c.run(&[], "apply", &["--yes"], &[]);
    expect_code(&o, 0);
    assert_eq!(stderr(&o), "");
    // Rehearse on a terminal shows the clone's apply.
    c.run(&[], "rollback", &["--yes"], &[]);
    let shown = c.on_terminal("", "", "rehearse", "");
    assert!(shown.contains("tier 1/1 structure"), "{shown:?}");
}

#[test]
fn db_takes_a_bare_name_and_status_names_its_database() {
    let db = TestDb::new("barename");
    let t = tempdir();
    let o = airlock(t.path(), &["--json", "status", "--db", &db.name]);
    expect_code(&o, 0);
    let doc = json(&o);
    assert_eq!(doc["database"], db.name.as_str());
    assert_eq!(doc["database_from"], "--db or AIRLOCK_DB");
    let o = airlock(t.path(), &["status", "--db", &db.name]);
    assert!(
        stdout(&o).starts_with(&format!("database {} (from --db", db.name)),
        "{}",
        stdout(&o)
    );
    // No name anywhere: libpq's default, and the output says so.
    let o = airlock(t.path(), &["--json", "fingerprint"]);
    if code(&o) == 0 {
        assert_eq!(json(&o)["database_from"], "default");
    }
    let o = airlock_env(t.path(), &["--json", "status"], &[("PGDATABASE", &db.name)]);
    expect_code(&o, 0);
    assert_eq!(json(&o)["database_from"], "PGDATABASE");
    assert_eq!(json(&o)["database"], db.name.as_str());
    let o = airlock(t.path(), &["status"]);
    if code(&o) == 0 {
        assert!(
            stdout(&o).contains("libpq's default, the user name"),
            "{}",
            stdout(&o)
        );
    }
}

#[test]
fn a_missing_database_and_a_missing_server_get_different_hints() {
    let t = tempdir();
    let o = airlock(
        t.path(),
        &["--json", "status", "--db", "airlock_no_such_db_x"],
    );
    expect_code(&o, 1);
    let hint = json(&o)["hint"].as_str().unwrap().to_string();
    assert!(hint.contains("no database by that name"), "{hint}");
    assert!(!hint.contains("pg_ctlcluster"), "{hint}");
    let o = airlock(
        t.path(),
        &["--json", "status", "--db", "host=127.0.0.1 port=1 dbname=x"],
    );
    expect_code(&o, 1);
    let hint = json(&o)["hint"].as_str().unwrap().to_string();
    assert!(hint.contains("no server answered"), "{hint}");
}

#[test]
fn extract_takes_out_like_every_other_command_and_still_to() {
    let t = tempdir();
    let d = t.path();
    keygen(d, "rm");
    let src = reference_source(d, "directus");
    pack(d, &src, "rm.key", "b.tar.gz");
    let o = airlock(
        d,
        &["extract", "b.tar.gz", "--trust", "rm.pub", "--out", "x1"],
    );
    expect_code(&o, 0);
    assert!(d.join("x1/bundle.toml").exists() || d.join("x1").read_dir().unwrap().count() > 0);
    let o = airlock(
        d,
        &["extract", "b.tar.gz", "--trust", "rm.pub", "--to", "x2"],
    );
    expect_code(&o, 0);
    assert!(d.join("x2").read_dir().unwrap().count() > 0);
    let help = stdout(&airlock(d, &["extract", "--help"]));
    assert!(
        help.contains("--out <DIR>") && !help.contains("--to <DIR>"),
        "{help}"
    );
}

#[test]
fn pack_refuses_an_expired_bundle_warns_of_one_expiring_soon_and_verify_refuses_it() {
    let t = tempdir();
    let d = t.path();
    keygen(d, "rm");
    let src = reference_source(d, "directus");
    let toml = src.join("bundle.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    let text = text.replacen(
        "[bundle]\n",
        "[bundle]\nexpires = \"2001-01-01T00:00:00Z\"\n",
        1,
    );
    std::fs::write(&toml, text).unwrap();
    let o = airlock(
        d,
        &[
            "--json",
            "pack",
            src.to_str().unwrap(),
            "--key",
            "rm.key",
            "--out",
            "old.tar.gz",
        ],
    );
    // Already expired when signed: refused, nothing written.
    expect_code(&o, 2);
    let error = json(&o)["error"].to_string();
    assert!(error.contains("is not after the signing time"), "{error}");
    assert!(
        !d.join("old.tar.gz").exists(),
        "an expired bundle was written"
    );
    // Re-packing an old release as of its own time (SOURCE_DATE_EPOCH before the
    // expiry) reproduces it; verify then refuses it as expired, as it should.
    let o = airlock_env(
        d,
        &[
            "pack",
            src.to_str().unwrap(),
            "--key",
            "rm.key",
            "--out",
            "old.tar.gz",
        ],
        &[("SOURCE_DATE_EPOCH", "946684800")],
    );
    expect_code(&o, 0);
    let o = airlock(d, &["verify", "old.tar.gz", "--trust", "rm.pub"]);
    expect_code(&o, 4);
    // Soon, but not yet: a gentler word.
    let soon = (chrono::Utc::now() + chrono::TimeDelta::days(2)).to_rfc3339();
    let text = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(&toml, text.replace("2001-01-01T00:00:00Z", &soon)).unwrap();
    let o = airlock(
        d,
        &[
            "pack",
            src.to_str().unwrap(),
            "--key",
            "rm.key",
            "--out",
            "soon.tar.gz",
        ],
    );
    expect_code(&o, 0);
    assert!(
        stdout(&o).contains("warning: bundle.expires"),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("hour(s)"), "{}", stdout(&o));
}

#[test]
fn a_public_key_given_as_key_is_named_as_such() {
    let t = tempdir();
    let d = t.path();
    keygen(d, "alice");
    let src = reference_source(d, "directus");
    let o = airlock(
        d,
        &[
            "--json",
            "pack",
            src.to_str().unwrap(),
            "--key",
            "alice.pub",
            "--out",
            "b.tar.gz",
        ],
    );
    expect_code(&o, 2);
    let doc = json(&o);
    let error = doc["error"].as_str().unwrap();
    assert!(error.contains("alice.pub is a public key"), "{error}");
    assert!(!doc["hint"].as_str().unwrap().contains("chmod"), "{doc}");
    assert!(doc["hint"].as_str().unwrap().contains("alice.key"), "{doc}");
    assert!(!d.join("b.tar.gz").exists());
}

/// Every argument and positional of every subcommand has a description in --help.
#[test]
fn every_argument_of_every_subcommand_is_described() {
    use clap::CommandFactory;
    let root = airlock::cli::Cli::command();
    let mut blank = vec![];
    let mut names = vec![];
    for arg in root.get_arguments() {
        if arg.get_help().is_none() && !["help", "version"].contains(&arg.get_id().as_str()) {
            blank.push(format!("airlock {}", arg.get_id()));
        }
    }
    for sub in root.get_subcommands() {
        names.push(sub.get_name().to_string());
        for arg in sub.get_arguments() {
            if ["help", "version"].contains(&arg.get_id().as_str()) {
                continue;
            }
            let help = arg
                .get_help()
                .or(arg.get_long_help())
                .map(|h| h.to_string())
                .unwrap_or_default();
            if help.trim().is_empty() {
                blank.push(format!("{} {}", sub.get_name(), arg.get_id()));
            }
        }
    }
    assert!(blank.is_empty(), "arguments without help: {blank:?}");
    // And the real binary shows each subcommand's help.
    let t = tempdir();
    for name in names {
        let o = airlock(t.path(), &[&name, "--help"]);
        expect_code(&o, 0);
        assert!(
            stdout(&o).contains("Usage: airlock"),
            "{name}: {}",
            stdout(&o)
        );
    }
    // apply and rollback share their flags, described the same in --help and man.
    let apply = stdout(&airlock(t.path(), &["apply", "--help"]));
    let rollback = stdout(&airlock(t.path(), &["rollback", "--help"]));
    for flag in ["--lock-timeout", "--yes", "--receipt", "--sign-receipt"] {
        let describe = |help: &str| {
            let at = help
                .find(&format!("{flag} "))
                .or(help.find(&format!("{flag}\n")));
            help[at.unwrap_or_else(|| panic!("{flag} missing:\n{help}"))..]
                .lines()
                .take(3)
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(describe(&apply), describe(&rollback), "{flag}");
    }
    let man = t.path().join("man");
    std::fs::create_dir(&man).unwrap();
    expect_code(
        &airlock(t.path(), &["man", "--out-dir", man.to_str().unwrap()]),
        0,
    );
    let page = std::fs::read_to_string(man.join("airlock-rollback.1")).unwrap();
    assert!(page.contains("deploy lock"), "{page}");
}

#[test]
fn status_and_fingerprint_help_do_not_speak_of_a_bundle() {
    let t = tempdir();
    for sub in ["status", "fingerprint"] {
        let help = stdout(&airlock(t.path(), &[sub, "--help"]));
        assert!(!help.contains("target.database"), "{sub}: {help}");
        assert!(help.contains("the user name"), "{sub}: {help}");
    }
    let help = stdout(&airlock(t.path(), &["apply", "--help"]));
    assert!(help.contains("target.database"), "{help}");
}

#[test]
fn trust_toml_in_the_trust_store_reference_matches_its_schema() {
    let page = std::fs::read_to_string(repo().join("docs/trust-store.md")).unwrap();
    let start = page
        .find("# keys/trust.toml")
        .expect("docs/trust-store.md shows a trust.toml");
    let end = start + page[start..].find("```").unwrap();
    let doc: toml::Value =
        toml::from_str(&page[start..end]).expect("docs/trust-store.md's trust.toml parses");
    let doc = serde_json::to_value(doc).unwrap();
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("schemas/trust.toml.schema.json")).unwrap(),
    )
    .unwrap();
    let compiled = jsonschema::JSONSchema::compile(&schema).expect("schema compiles");
    assert!(compiled.is_valid(&doc), "{doc:#}");
    let bad = serde_json::json!({"threshold": 0, "keys": {"AB": {"role": "admin"}}});
    assert!(!compiled.is_valid(&bad));
    let typo = serde_json::json!({"treshold": 2});
    assert!(!compiled.is_valid(&typo));
}

#[test]
fn a_tier_that_raises_thousands_of_notices_keeps_the_first_thousand_and_counts_the_rest() {
    let c = Case::with_tier(
        "noticecap",
        "SELECT true AS ready",
        "DO $$ BEGIN FOR i IN 1..1500 LOOP RAISE NOTICE 'n %', i; END LOOP; END $$;\nCREATE TABLE app.t1(i int);",
        "DROP TABLE IF EXISTS app.t1;",
    );
    let o = c.run(&["--json"], "apply", &["--yes"], &[]);
    expect_code(&o, 0);
    let doc = json(&o);
    let notices = doc["notices"].as_array().unwrap();
    assert_eq!(notices.len(), 1000);
    assert_eq!(notices[0]["message"], "n 1");
    assert_eq!(notices[999]["message"], "n 1000");
    assert_eq!(doc["notices_omitted"], 500);
    expect_code(&c.run(&[], "rollback", &["--yes"], &[]), 0);
    let o = c.run(&[], "apply", &["--yes"], &[]);
    expect_code(&o, 0);
    assert!(
        stdout(&o).contains("server notices (1500):")
            && stdout(&o).contains("… and 500 more (only the first 1000 are kept)"),
        "{}",
        stdout(&o).lines().last().unwrap_or("")
    );
}

#[test]
fn a_lower_case_key_id_in_trust_toml_is_named_as_such() {
    let t = tempdir();
    let d = t.path();
    let id = keygen(d, "rm");
    let src = reference_source(d, "directus");
    pack(d, &src, "rm.key", "b.tar.gz");
    let lower = id.to_ascii_lowercase();
    assert_ne!(lower, id, "the key id has letters");
    trust_store(
        d,
        "store",
        &["rm"],
        &format!("[keys.{lower}]\nrole = \"release\"\n"),
    );
    let o = airlock(d, &["--json", "verify", "b.tar.gz", "--trust", "store"]);
    expect_code(&o, 2);
    let error = json(&o)["error"].as_str().unwrap().to_string();
    assert!(
        error.contains("is in lower case") && error.contains(&format!("[keys.{id}]")),
        "{error}"
    );
    // Written as shown, it is the key's policy.
    trust_store(
        d,
        "store",
        &["rm"],
        &format!("[keys.{id}]\nrole = \"release\"\n"),
    );
    expect_code(&airlock(d, &["verify", "b.tar.gz", "--trust", "store"]), 0);
}

#[test]
fn a_missing_tier_file_names_its_tier_and_the_nearest_file() {
    let t = tempdir();
    let d = t.path();
    let src = reference_source(d, "directus");
    let toml = src.join("bundle.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    // A typo in the second tier's file name.
    std::fs::write(
        &toml,
        text.replace("sql/tiers/02_axis.sql", "sql/tiers/02_axsi.sql"),
    )
    .unwrap();
    let o = airlock(d, &["--json", "lint", src.to_str().unwrap()]);
    expect_code(&o, 2);
    let error = json(&o)["error"].as_str().unwrap().to_string();
    assert!(
        error.contains(
            "tier \"axis\" (tier.files) names sql/tiers/02_axsi.sql, which does not exist"
        ) && error.contains("did you mean sql/tiers/02_axis.sql?"),
        "{error}"
    );
    // Nothing near: no guess.
    let text = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(
        &toml,
        text.replace("sql/tiers/02_axsi.sql", "sql/tiers/zzz_unrelated_name.sql"),
    )
    .unwrap();
    let error = json(&airlock(d, &["--json", "lint", src.to_str().unwrap()]))["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        error.contains("zzz_unrelated_name.sql, which does not exist")
            && !error.contains("did you mean"),
        "{error}"
    );
    // --json: each problem on its own, with its file and line where it has one.
    let tier = src.join("sql/tiers/01_structure.sql");
    let mut sql = std::fs::read_to_string(&tier).unwrap();
    sql.push_str("\nVACUUM;\n");
    std::fs::write(&tier, &sql).unwrap();
    let doc = json(&airlock(d, &["--json", "lint", src.to_str().unwrap()]));
    let problems = doc["problems"].as_array().expect("problems");
    assert_eq!(problems.len(), 2, "{doc:#}");
    assert!(
        problems
            .iter()
            .any(|p| p["file"] == "sql/tiers/01_structure.sql"
                && p["line"].as_u64() == Some(sql.lines().count() as u64)
                && p["message"]
                    .as_str()
                    .unwrap()
                    .starts_with("VACUUM cannot run")),
        "{doc:#}"
    );
    assert!(
        problems.iter().any(|p| p["file"].is_null()
            && p["message"]
                .as_str()
                .unwrap()
                .contains("zzz_unrelated_name.sql")),
        "{doc:#}"
    );
}
