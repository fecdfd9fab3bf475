//! A trust store by command (issue 48, finding 4): a `.pub`'s key id, adding, listing
//! and revoking keys, each through the binary; a refused change writes nothing.

mod util;

use std::path::Path;
use util::*;

/// Every file of a store and its bytes, to prove a refused change wrote nothing.
fn snapshot(store: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(store)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn the_key_id_of_a_pub_is_printed_by_a_command_even_with_a_comment() {
    let d = tempdir();
    let o = airlock(
        d.path(),
        &[
            "--json",
            "keygen",
            "--unencrypted",
            "--out",
            "carol",
            "--comment",
            "carol's laptop",
        ],
    );
    expect_code(&o, 0);
    let made = json(&o)["key_id"].as_str().unwrap().to_string();
    // The recipe the docs used (`sed 's/.* public key //'`) finds nothing here.
    let first = std::fs::read_to_string(d.path().join("carol.pub")).unwrap();
    assert!(!first.contains("public key"), "{first}");
    let o = airlock(d.path(), &["trust", "id", "carol.pub"]);
    expect_code(&o, 0);
    assert_eq!(stdout(&o).trim(), format!("{made}  carol.pub"));
    let o = airlock(d.path(), &["--json", "trust", "id", "carol.pub"]);
    assert_eq!(json(&o)["keys"][0]["key_id"], made.as_str());
    // A file that is no public key: exit 2, named.
    std::fs::write(d.path().join("x.pub"), "hello\n").unwrap();
    let o = airlock(d.path(), &["trust", "id", "x.pub"]);
    expect_code(&o, 2);
    assert!(stderr(&o).contains("x.pub"), "{}", stderr(&o));
}

#[test]
fn keys_added_by_command_count_and_a_revoked_one_stops_counting() {
    let d = keyed_dir();
    let dir = d.path();
    keygen(dir, "bob");
    keygen(dir, "carol");
    let b = mini_bundle(
        dir,
        "app",
        "b.airlock.tar.gz",
        "SELECT true AS ready",
        &[("t", "CREATE TABLE app.a (i int);\n", false)],
        "DROP TABLE app.a;\n",
    );
    let o = airlock(dir, &["sign", &b, "--key", "bob.key"]);
    expect_code(&o, 0);
    let o = airlock(
        dir,
        &["trust", "add", "store", "rm.pub", "--name", "Rita Manager"],
    );
    expect_code(&o, 0);
    assert!(dir.join("store/rm.pub").is_file() && dir.join("store/trust.toml").is_file());
    let o = airlock(dir, &["trust", "add", "store", "bob.pub"]);
    expect_code(&o, 0);
    let o = airlock(
        dir,
        &[
            "trust",
            "add",
            "store",
            "carol.pub",
            "--role",
            "approver",
            "--group",
            "finance",
            "--name",
            "Carol Jones",
        ],
    );
    expect_code(&o, 0);
    // The threshold by command, set at the top (appended after a [keys.ID] table it
    // would be that key's, and refused); a comment the keeper wrote stays.
    expect_code(
        &airlock(dir, &["trust", "set", "store", "--threshold", "2"]),
        0,
    );
    let toml = dir.join("store/trust.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    assert!(text.starts_with("threshold = 2\n"), "{text}");
    std::fs::write(&toml, format!("# kept by ops; reviewed monthly\n{text}")).unwrap();
    let o = airlock(dir, &["verify", &b, "--trust", "store"]);
    expect_code(&o, 0);

    let o = airlock(dir, &["--json", "trust", "list", "store"]);
    expect_code(&o, 0);
    let listed = json(&o);
    assert_eq!(listed["threshold"], 2);
    let carol = listed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "Carol Jones")
        .expect("carol listed")
        .clone();
    assert_eq!(carol["role"], "approver");
    assert_eq!(carol["groups"][0], "finance");
    assert_eq!(carol["state"], "counts");
    let text = stdout(&airlock(dir, &["trust", "list", "store"]));
    assert!(
        text.contains("Rita Manager") && text.contains("approver (finance)"),
        "{text}"
    );

    let bob = key_id_of(&dir.join("bob.pub"));
    let o = airlock(
        dir,
        &[
            "trust",
            "revoke",
            "store",
            &bob,
            "--reason",
            "laptop stolen",
        ],
    );
    expect_code(&o, 0);
    let after = std::fs::read_to_string(&toml).unwrap();
    assert!(
        after.starts_with("# kept by ops; reviewed monthly\nthreshold = 2\n"),
        "{after}"
    );
    assert!(
        after.contains("revoked = true") && after.contains("laptop stolen"),
        "{after}"
    );
    let o = airlock(dir, &["verify", &b, "--trust", "store"]);
    expect_code(&o, 4);
    let o = airlock(dir, &["--json", "trust", "list", "store"]);
    let states: Vec<String> = json(&o)["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["state"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        states.iter().filter(|s| *s == "revoked").count(),
        1,
        "{states:?}"
    );
    assert!(leftovers(&dir.join("store")).is_empty());
}

#[test]
fn a_refused_change_to_a_trust_store_writes_nothing() {
    let d = keyed_dir();
    let dir = d.path();
    keygen(dir, "bob");
    let o = airlock(dir, &["trust", "add", "store", "rm.pub"]);
    expect_code(&o, 0);
    std::fs::write(dir.join("store/trust.toml"), "# mine\n").unwrap();
    let before = snapshot(&dir.join("store"));
    let refused: Vec<(Vec<&str>, &str)> = vec![
        // The same key again, under another file name.
        (
            vec!["trust", "add", "store", "again.pub"],
            "already in trust store",
        ),
        // A secret key is no public key.
        (vec!["trust", "add", "store", "bob.key"], "bob.key"),
        (
            vec!["trust", "add", "store", "bob.pub", "--group", "l4"],
            "--role approver",
        ),
        (
            vec![
                "trust", "add", "store", "bob.pub", "--role", "approver", "--group", "L 4",
            ],
            "--group",
        ),
        (
            vec!["trust", "add", "store", "bob.pub", "--name", "two\nlines"],
            "--name",
        ),
        (
            vec!["trust", "add", "store", "bob.pub", "--not-after", "someday"],
            "--not-after",
        ),
        (
            vec!["trust", "revoke", "store", "0123456789ABCDEF"],
            "has no key 0123456789ABCDEF",
        ),
        (
            vec!["trust", "set", "store", "--threshold", "0"],
            "would trust anything",
        ),
        (vec!["trust", "set", "store"], "nothing to set"),
    ];
    std::fs::copy(dir.join("rm.pub"), dir.join("again.pub")).unwrap();
    for (args, says) in refused {
        let o = airlock(dir, &args);
        expect_code(&o, 2);
        assert!(stderr(&o).contains(says), "{args:?}: {}", stderr(&o));
        assert_eq!(
            snapshot(&dir.join("store")),
            before,
            "{args:?} changed the store"
        );
        assert!(leftovers(&dir.join("store")).is_empty(), "{args:?}");
    }
    // A store the reader refuses (a secret key inside) is not edited further.
    std::fs::copy(dir.join("bob.key"), dir.join("store/bob.key")).unwrap();
    let before = snapshot(&dir.join("store"));
    let o = airlock(dir, &["trust", "add", "store", "bob.pub"]);
    expect_code(&o, 2);
    assert!(stderr(&o).contains("secret key"), "{}", stderr(&o));
    assert_eq!(snapshot(&dir.join("store")), before);
    // Revoking twice says so and changes nothing.
    std::fs::remove_file(dir.join("store/bob.key")).unwrap();
    let rm = key_id_of(&dir.join("rm.pub"));
    expect_code(&airlock(dir, &["trust", "revoke", "store", &rm]), 0);
    let before = snapshot(&dir.join("store"));
    let o = airlock(
        dir,
        &["trust", "revoke", "store", &rm, "--from", "2030-01-01"],
    );
    expect_code(&o, 2);
    assert!(stderr(&o).contains("already revoked"), "{}", stderr(&o));
    assert_eq!(snapshot(&dir.join("store")), before);
}

#[test]
fn a_pipe_gets_tables_120_wide_that_never_split_a_key_id_or_a_path() {
    let d = keyed_dir();
    let dir = d.path();
    let long = "a-rather-long-file-name-for-a-public-key-of-the-release-team.pub";
    std::fs::copy(dir.join("rm.pub"), dir.join(long)).unwrap();
    let o = airlock(
        dir,
        &[
            "trust",
            "add",
            "store",
            long,
            "--name",
            "Rita Manager of the release team, second floor, building C",
        ],
    );
    expect_code(&o, 0);
    for columns in [None, Some("60")] {
        let env: Vec<(&str, &str)> = columns.map(|c| vec![("COLUMNS", c)]).unwrap_or_default();
        let o = airlock_env(dir, &["trust", "list", "store"], &env);
        let out = stdout(&o);
        let width = columns.map_or(120, |c| c.parse().unwrap());
        assert!(
            out.contains(long),
            "{columns:?}: the file name was split:\n{out}"
        );
        assert!(out.contains(&key_id_of(&dir.join("rm.pub"))), "{out}");
        for l in out.lines().skip(2) {
            assert!(
                l.chars().count() <= width || l.contains(long),
                "{columns:?}: {l}\n{out}"
            );
        }
    }
}

/// Every `--json` document, success or error, says which field names it uses
/// (`json_version`), and lint names the bundle as every other command does (issue 48,
/// finding 8).
#[test]
fn json_documents_carry_their_version_and_one_name_for_the_bundle() {
    let d = keyed_dir();
    let dir = d.path();
    let o = airlock(dir, &["--json", "trust", "id", "rm.pub"]);
    assert_eq!(json(&o)["json_version"], 2);
    let o = airlock(dir, &["--json", "trust", "id", "missing.pub"]);
    expect_code(&o, 2);
    assert_eq!(json(&o)["json_version"], 2);
    let o = airlock(dir, &["--json", "trust", "id"]);
    expect_code(&o, 2);
    assert_eq!(json(&o)["json_version"], 2);
    expect_code(&airlock(dir, &["new", "rel", "--database", "app"]), 0);
    let o = airlock(dir, &["--json", "lint", "rel"]);
    let l = json(&o);
    assert_eq!(
        (l["bundle_name"].as_str(), l["bundle_version"].as_str()),
        (Some("rel"), Some("0.1.0"))
    );
    // verify, inspect and sign name it the same way.
    expect_code(
        &airlock(dir, &["pack", "rel", "--key", "rm.key", "--out", "r.tgz"]),
        0,
    );
    keygen(dir, "co");
    for args in [
        vec!["--json", "verify", "r.tgz", "--trust", "rm.pub"],
        vec!["--json", "inspect", "r.tgz"],
        vec!["--json", "sign", "r.tgz", "--key", "co.key"],
    ] {
        let v = json(&airlock(dir, &args));
        assert_eq!(v["bundle_name"], "rel", "{args:?}: {v:#}");
        assert_eq!(v["bundle_version"], "0.1.0", "{args:?}");
    }
}
