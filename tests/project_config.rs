//! The project file, `airlock.toml` (issue 68, item 12): the connection, trust store,
//! gate role, receipts folder and lock timeout a team would otherwise repeat on every
//! command, found upward from the working directory (or `--config`/`AIRLOCK_CONFIG`),
//! named by every command that used it; flags and `AIRLOCK_*` variables win. A file
//! someone else could have written, or a key airlock does not know, stops airlock
//! before it does anything.

mod util;
use std::os::unix::fs::PermissionsExt;
use util::*;

const TIER: &str = "CREATE TABLE made_here (id int);\n";

/// A project: `proj/airlock.toml` with `settings`, the bundle and key beside it, and
/// `proj/work/deep`, the directory commands run in.
fn project(db: &TestDb, settings: &str) -> (tempfile::TempDir, std::path::PathBuf, String) {
    let t = keyed_dir();
    let proj = t.path().join("proj");
    std::fs::create_dir_all(proj.join("work/deep")).unwrap();
    std::fs::set_permissions(&proj, std::fs::Permissions::from_mode(0o755)).unwrap();
    let b = mini_bundle(
        t.path(),
        &db.name,
        "b.tar.gz",
        "SELECT true AS ready",
        &[("one", TIER, false)],
        "DROP TABLE made_here;\n",
    );
    std::fs::rename(t.path().join(&b), proj.join("b.tar.gz")).unwrap();
    std::fs::copy(t.path().join("rm.pub"), proj.join("rm.pub")).unwrap();
    write_config(&proj, settings);
    (t, proj, "../../b.tar.gz".into())
}

fn write_config(proj: &std::path::Path, settings: &str) {
    let f = proj.join("airlock.toml");
    std::fs::write(&f, settings).unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
}

#[test]
fn settings_come_from_the_project_file_found_upward_and_flags_win() {
    let db = TestDb::new("proj_cfg");
    let settings = format!(
        "db = \"{}\"\ntrust = \"rm.pub\"\ngate_role = \"airlock_gate\"\nreceipts = \"kept-receipts\"\nlock_timeout = \"3s\"\n",
        db.conn()
    );
    let (_t, proj, b) = project(&db, &settings);
    let deep = proj.join("work/deep");
    // plan with no --db, --trust or --gate-role: all from the file, and said so (only
    // what plan reads: it has no receipts folder or lock timeout).
    let out = airlock(&deep, &["plan", &b, "--param", "code=x"]);
    expect_code(&out, 0);
    let err = stderr(&out);
    assert!(
        err.contains("settings from airlock.toml (") && err.contains("): db, trust, gate_role ("),
        "{err}"
    );
    // verify reads only the trust store.
    let out = airlock(&deep, &["--json", "verify", &b]);
    expect_code(&out, 0);
    assert_eq!(
        json(&out)["project_config"]["used"],
        serde_json::json!(["trust"])
    );
    let out = airlock(&deep, &["--json", "plan", &b, "--param", "code=x"]);
    expect_code(&out, 0);
    let j = json(&out);
    assert_eq!(j["project_config"]["used"][0], "db", "{j:#}");
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));

    // A flag wins over the file; so does the variable.
    let out = airlock(
        &deep,
        &[
            "--json",
            "plan",
            &b,
            "--param",
            "code=x",
            "--gate-role",
            "no_such_role_here",
        ],
    );
    assert!(
        stdout(&out).contains("no_such_role_here"),
        "{}",
        stdout(&out)
    );
    let out = airlock_env(
        &deep,
        &["--json", "plan", &b, "--param", "code=x"],
        &[("AIRLOCK_GATE_ROLE", "no_such_role_either")],
    );
    assert!(
        stdout(&out).contains("no_such_role_either"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        json(&out)["project_config"]["used"],
        serde_json::json!(["db", "trust"])
    );
    // The message names where the role came from, and the hint the role to create.
    let out = airlock_env(
        &deep,
        &["--json", "gate", &b, "--param", "code=x"],
        &[("AIRLOCK_GATE_ROLE", "no_such_role_either")],
    );
    let j = json(&out);
    assert_eq!(j["kind"], "gate-role", "{j:#}");
    assert!(
        j["error"]
            .as_str()
            .unwrap()
            .contains("AIRLOCK_GATE_ROLE or gate_role in airlock.toml"),
        "{j:#}"
    );
    assert!(
        j["hint"]
            .as_str()
            .unwrap()
            .contains("CREATE ROLE \"no_such_role_either\" NOLOGIN"),
        "{j:#}"
    );

    // apply: the receipt goes to the file's folder, relative to the file.
    let out = airlock(&deep, &["apply", &b, "--param", "code=x", "--yes"]);
    expect_code(&out, 0);
    let kept: Vec<_> = std::fs::read_dir(proj.join("kept-receipts"))
        .expect("the receipts folder the file names")
        .collect();
    assert_eq!(kept.len(), 1);
    assert!(!deep.join("receipts").exists());
    assert_eq!(
        db.scalar("SELECT to_regclass('made_here') IS NOT NULL"),
        "t"
    );

    // --config none: no file; without --db the bundle's name is used, without --trust
    // there is no trust store: refused, nothing done.
    let out = airlock(
        &deep,
        &["--config", "none", "plan", &b, "--param", "code=x"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(!stderr(&out).contains("settings from"), "{}", stderr(&out));
}

#[test]
fn a_project_file_someone_else_could_write_or_with_an_unknown_key_stops_airlock() {
    let db = TestDb::new("proj_cfg_refused");
    let (_t, proj, b) = project(
        &db,
        &format!("db = \"{}\"\ntrust = \"rm.pub\"\n", db.conn()),
    );
    let deep = proj.join("work/deep");
    let before = db.ledger_rows();
    let refused = |out: &std::process::Output, why: &str| {
        assert_eq!(out.status.code(), Some(2), "{}{}", stdout(out), stderr(out));
        assert!(stderr(out).contains(why), "{}", stderr(out));
        assert!(!proj.join("receipts").exists() && !deep.join("receipts").exists());
        assert_eq!(db.ledger_rows(), before);
        assert_eq!(db.scalar("SELECT to_regclass('made_here') IS NULL"), "t");
    };
    // Writable by the group.
    let f = proj.join("airlock.toml");
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o664)).unwrap();
    refused(
        &airlock(&deep, &["apply", &b, "--param", "code=x", "--yes"]),
        "others may write it (mode 664)",
    );
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
    // Its directory writable by others (not sticky).
    std::fs::set_permissions(&proj, std::fs::Permissions::from_mode(0o777)).unwrap();
    refused(
        &airlock(&deep, &["apply", &b, "--param", "code=x", "--yes"]),
        "others may write its directory",
    );
    std::fs::set_permissions(&proj, std::fs::Permissions::from_mode(0o755)).unwrap();
    // Another user's file.
    let chown = std::process::Command::new("chown")
        .args(["nobody", f.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(chown.success());
    refused(
        &airlock(&deep, &["apply", &b, "--param", "code=x", "--yes"]),
        "it belongs to user id",
    );
    std::process::Command::new("chown")
        .args(["0", f.to_str().unwrap()])
        .status()
        .unwrap();
    // A key airlock does not know: refused, naming it (and the JSON error says so).
    write_config(
        &proj,
        &format!("db = \"{}\"\ntrust_store = \"rm.pub\"\n", db.conn()),
    );
    let out = airlock(
        &deep,
        &["--json", "apply", &b, "--param", "code=x", "--yes"],
    );
    assert_eq!(out.status.code(), Some(2));
    let j = json(&out);
    assert!(
        j["error"].as_str().unwrap().contains("trust_store"),
        "{j:#}"
    );
    assert!(
        j["hint"].as_str().unwrap().contains("--config none"),
        "{j:#}"
    );
    // --config FILE that is not there.
    let out = airlock(&deep, &["--config", "nope.toml", "plan", &b]);
    refused(&out, "nope.toml: no such file");
}

/// Issue 74, item 4: a project file reached through a symbolic link is refused before
/// anything reads it, whoever owns the link's target. A link is what a user who can
/// write a folder above the operator's plants (and swaps between a check and a read);
/// airlock reads the file it opened once, without following a link.
#[test]
fn a_project_file_that_is_a_symbolic_link_is_refused_and_nothing_is_read_from_it() {
    let db = TestDb::new("proj_cfg_link");
    let (t, proj, b) = project(
        &db,
        &format!("db = \"{}\"\ntrust = \"rm.pub\"\n", db.conn()),
    );
    let deep = proj.join("work/deep");
    let before = db.ledger_rows();
    // The target passes every check the file itself would: the user's, mode 644, in a
    // folder of the user's that nobody else may write.
    let elsewhere = t.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o755)).unwrap();
    let target = elsewhere.join("real.toml");
    std::fs::rename(proj.join("airlock.toml"), &target).unwrap();
    std::os::unix::fs::symlink(&target, proj.join("airlock.toml")).unwrap();
    let refused = |out: &std::process::Output| {
        assert_eq!(out.status.code(), Some(2), "{}{}", stdout(out), stderr(out));
        let err = stderr(out);
        assert!(
            err.contains(&proj.join("airlock.toml").display().to_string())
                && err.contains("symbolic link"),
            "{err}"
        );
        assert!(err.contains("hint: "), "{err}");
        assert!(!err.contains("settings from"), "{err}");
        assert!(!proj.join("receipts").exists() && !deep.join("receipts").exists());
        assert_eq!(db.ledger_rows(), before);
        assert_eq!(db.scalar("SELECT to_regclass('made_here') IS NULL"), "t");
    };
    // Found upward from the working directory.
    refused(&airlock(
        &deep,
        &["apply", &b, "--param", "code=x", "--yes"],
    ));
    // Named by --config, or by AIRLOCK_CONFIG.
    let link = proj.join("airlock.toml").display().to_string();
    refused(&airlock(
        &deep,
        &["--config", &link, "apply", &b, "--param", "code=x", "--yes"],
    ));
    refused(&airlock_env(
        &deep,
        &["apply", &b, "--param", "code=x", "--yes"],
        &[("AIRLOCK_CONFIG", &link)],
    ));
    // A link that leads nowhere is refused as well, not passed over for a file above.
    std::fs::remove_file(&target).unwrap();
    refused(&airlock(
        &deep,
        &["apply", &b, "--param", "code=x", "--yes"],
    ));
    // The file itself, in the link's place, is read again.
    std::fs::remove_file(proj.join("airlock.toml")).unwrap();
    write_config(
        &proj,
        &format!("db = \"{}\"\ntrust = \"rm.pub\"\n", db.conn()),
    );
    let out = airlock(&deep, &["plan", &b, "--param", "code=x"]);
    expect_code(&out, 0);
    assert!(
        stderr(&out).contains("settings from airlock.toml ("),
        "{}",
        stderr(&out)
    );
}
