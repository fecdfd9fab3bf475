//! Trust that rotates (issue 49): a versioned trust store changes only by
//! `airlock trust update` to a higher version signed by a threshold of the current
//! root keys and of its own; every command refuses an older copy put back, a store
//! edited after it was signed, and root keys never sign releases. Each refusal
//! replaces nothing.

mod util;
use std::path::Path;
use util::*;

/// Every file under `dir` (recursively) and its bytes.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = vec![];
    for e in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let e = e.unwrap();
        if e.file_type().is_file() {
            out.push((
                e.path().strip_prefix(dir).unwrap().display().to_string(),
                std::fs::read(e.path()).unwrap(),
            ));
        }
    }
    out
}

struct Keeper {
    t: tempfile::TempDir,
}

impl Keeper {
    /// Keys r1, r2, r3 (roots), rm and rm2 (release); `cur`: version 1 with roots r1
    /// and r2 (root_threshold 2) and release key rm, signed by both roots; a bundle
    /// `b.tar.gz` signed by rm.
    fn new() -> Keeper {
        let k = Keeper { t: keyed_dir() };
        for name in ["r1", "r2", "r3", "rm2"] {
            keygen(k.dir(), name);
        }
        k.ok(&["trust", "add", "cur", "rm.pub", "--name", "Rita"]);
        k.ok(&["trust", "add", "cur", "r1.pub", "--role", "root"]);
        k.ok(&["trust", "add", "cur", "r2.pub", "--role", "root"]);
        k.ok(&["trust", "set", "cur", "--root-threshold", "2"]);
        k.ok(&["trust", "sign", "cur", "--key", "r1.key"]);
        k.ok(&["trust", "sign", "cur", "--key", "r2.key"]);
        mini_bundle(
            k.dir(),
            "app",
            "b.tar.gz",
            "SELECT true AS ready",
            &[("t", "CREATE TABLE app.a (i int);\n", false)],
            "DROP TABLE app.a;\n",
        );
        k.ok(&["verify", "b.tar.gz", "--trust", "cur"]);
        k
    }

    fn dir(&self) -> &Path {
        self.t.path()
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        let state = self.dir().join("state");
        airlock_env(
            self.dir(),
            args,
            &[("AIRLOCK_STATE_DIR", state.to_str().unwrap())],
        )
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        expect_code(&o, 0);
        stdout(&o)
    }

    /// `new`: a copy of `cur` (its signatures too) changed by `edit` commands.
    fn next(&self, new: &str, edits: &[&[&str]]) {
        let _ = std::fs::remove_dir_all(self.dir().join(new));
        copy_dir(&self.dir().join("cur"), &self.dir().join(new));
        for e in edits {
            let mut a: Vec<&str> = e.to_vec();
            a.insert(2, new);
            self.ok(&a);
        }
    }

    /// `trust update NEW --trust cur` is refused (exit 4) saying `says`, and `cur` is
    /// byte for byte what it was.
    fn refused(&self, new: &str, says: &str) {
        let before = snapshot(&self.dir().join("cur"));
        let o = self.run(&["trust", "update", new, "--trust", "cur"]);
        expect_code(&o, 4);
        assert!(stderr(&o).contains(says), "{}", stderr(&o));
        assert!(stderr(&o).contains("nothing replaced"), "{}", stderr(&o));
        assert_eq!(snapshot(&self.dir().join("cur")), before, "cur changed");
    }
}

fn copy_dir(from: &Path, to: &Path) {
    for e in walkdir::WalkDir::new(from) {
        let e = e.unwrap();
        let dest = to.join(e.path().strip_prefix(from).unwrap());
        if e.file_type().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
}

fn id(dir: &Path, key: &str) -> String {
    key_id_of(&dir.join(format!("{key}.pub")))
}

#[test]
fn a_revocation_reaches_the_host_only_through_an_update_its_roots_signed() {
    let k = Keeper::new();
    let rm = id(k.dir(), "rm");
    // The keeper's next version: rm revoked, rm2 added (the first change of a signed
    // store starts version 2 and drops its signatures).
    k.next(
        "v2",
        &[
            &["trust", "add", "rm2.pub"],
            &["trust", "revoke", &rm, "--reason", "laptop lost"],
        ],
    );
    assert!(!k.dir().join("v2/signatures").exists());
    let listed = k.ok(&["trust", "list", "v2"]);
    assert!(
        listed.contains("version 2") && listed.contains("signed by 0 of the 2"),
        "{listed}"
    );
    // Unsigned, and signed by one root of two: refused, naming who signed.
    k.refused(
        "v2",
        "signed by 0 of the 2 root key(s) the current version 1 needs",
    );
    k.ok(&["trust", "sign", "v2", "--key", "r1.key"]);
    k.refused(
        "v2",
        &format!(
            "signed by 1 of the 2 root key(s) the current version 1 needs (by {})",
            id(k.dir(), "r1")
        ),
    );
    k.ok(&["trust", "sign", "v2", "--key", "r2.key"]);
    copy_dir(&k.dir().join("cur"), &k.dir().join("cur-v1"));
    let o = k.run(&["--json", "trust", "update", "v2", "--trust", "cur"]);
    expect_code(&o, 0);
    let u = json(&o);
    assert_eq!(
        (u["from_version"].as_u64(), u["to_version"].as_u64()),
        (Some(1), Some(2))
    );
    assert!(k.dir().join("cur/history/v1/trust.toml").is_file());
    // The revocation holds on the host: rm's bundle no longer verifies.
    let o = k.run(&["verify", "b.tar.gz", "--trust", "cur"]);
    expect_code(&o, 4);
    // audit says which version of the store it judged with.
    let o = k.run(&["--json", "audit", "b.tar.gz", "--trust", "cur"]);
    assert_eq!(json(&o)["trust_store_version"], 2, "{}", stdout(&o));
    // The same version again, or an older one: refused, nothing replaced.
    k.refused("v2", "not higher than the current version 2");
    // An old copy put back by hand is refused by every command that reads the store.
    std::fs::remove_dir_all(k.dir().join("cur")).unwrap();
    copy_dir(&k.dir().join("cur-v1"), &k.dir().join("cur"));
    for args in [
        vec!["verify", "b.tar.gz", "--trust", "cur"],
        vec!["inspect", "b.tar.gz", "--trust", "cur"],
        vec!["sql", "b.tar.gz", "--trust", "cur"],
    ] {
        let o = k.run(&args);
        expect_code(&o, 4);
        assert!(
            stderr(&o).contains("rollback refused"),
            "{args:?}: {}",
            stderr(&o)
        );
    }
}

#[test]
fn an_update_signed_by_the_wrong_keys_or_over_other_bytes_or_expired_replaces_nothing() {
    let k = Keeper::new();
    // Signed by keys that are no root of the current version (r3 made itself a root).
    k.next(
        "rogue",
        &[
            &["trust", "add", "r3.pub", "--role", "root"],
            &["trust", "set", "--root-threshold", "1"],
        ],
    );
    std::fs::remove_file(k.dir().join("rogue/r1.pub")).unwrap();
    std::fs::remove_file(k.dir().join("rogue/r2.pub")).unwrap();
    let text = std::fs::read_to_string(k.dir().join("rogue/trust.toml")).unwrap();
    let kept: Vec<&str> = text
        .split("\n\n")
        .filter(|b| !b.contains(&id(k.dir(), "r1")) && !b.contains(&id(k.dir(), "r2")))
        .collect();
    std::fs::write(k.dir().join("rogue/trust.toml"), kept.join("\n\n")).unwrap();
    k.ok(&["trust", "sign", "rogue", "--key", "r3.key"]);
    k.refused(
        "rogue",
        "signed by 0 of the 2 root key(s) the current version 1 needs",
    );
    // Signed by the right keys, then edited: the signatures cover other bytes.
    k.next("edited", &[&["trust", "add", "rm2.pub"]]);
    k.ok(&["trust", "sign", "edited", "--key", "r1.key"]);
    k.ok(&["trust", "sign", "edited", "--key", "r2.key"]);
    let toml = k.dir().join("edited/trust.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(&toml, format!("{text}\n# edited after signing\n")).unwrap();
    k.refused(
        "edited",
        "signed by 0 of the 2 root key(s) the current version 1 needs",
    );
    // Expired.
    k.next(
        "old",
        &[&["trust", "set", "--expires", "2020-01-01T00:00:00Z"]],
    );
    k.ok(&["trust", "sign", "old", "--key", "r1.key"]);
    k.ok(&["trust", "sign", "old", "--key", "r2.key"]);
    k.refused("old", "expired at 2020-01-01T00:00:00Z");
    // A store edited by hand after it was signed is refused by every command.
    let cur = k.dir().join("cur/trust.toml");
    let text = std::fs::read_to_string(&cur).unwrap();
    std::fs::write(&cur, format!("{text}\n# a harmless-looking edit\n")).unwrap();
    let o = k.run(&["verify", "b.tar.gz", "--trust", "cur"]);
    expect_code(&o, 4);
    assert!(
        stderr(&o).contains("changed after it was signed"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_new_root_set_takes_over_when_both_sets_signed_and_root_keys_never_sign_releases() {
    let k = Keeper::new();
    // Version 2 hands the store to r3 alone: the old roots and the new one sign it.
    // (Issue 68, item 9: by command, `trust remove`, not by editing trust.toml.)
    let (r1, r2) = (id(k.dir(), "r1"), id(k.dir(), "r2"));
    k.next(
        "handover",
        &[
            &["trust", "add", "r3.pub", "--role", "root"],
            &["trust", "set", "--root-threshold", "1"],
            &["trust", "remove", &r1],
            &["trust", "remove", &r2],
        ],
    );
    let text = std::fs::read_to_string(k.dir().join("handover/trust.toml")).unwrap();
    assert!(!text.contains(&r1) && !text.contains(&r2), "{text}");
    assert!(!k.dir().join("handover/r1.pub").exists());
    assert!(!k.dir().join("handover/r2.pub").exists());
    k.ok(&["trust", "sign", "handover", "--key", "r1.key"]);
    k.ok(&["trust", "sign", "handover", "--key", "r2.key"]);
    k.refused(
        "handover",
        "signed by 0 of the 1 root key(s) its own root_threshold needs",
    );
    k.ok(&["trust", "sign", "handover", "--key", "r3.key"]);
    k.ok(&["trust", "update", "handover", "--trust", "cur"]);
    // From now on the old roots alone cannot move it.
    k.next("v3", &[&["trust", "add", "rm2.pub"]]);
    k.ok(&["trust", "sign", "v3", "--key", "r1.key"]);
    k.ok(&["trust", "sign", "v3", "--key", "r2.key"]);
    k.refused(
        "v3",
        "signed by 0 of the 1 root key(s) the current version 2 needs",
    );
    // A root key's signature on a bundle never counts.
    expect_code(&k.run(&["sign", "b.tar.gz", "--key", "r3.key"]), 0);
    let o = k.run(&["--json", "verify", "b.tar.gz", "--trust", "cur"]);
    let sigs = json(&o)["trust"]["signatures"].clone();
    let r3 = sigs
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key_id"] == id(k.dir(), "r3").as_str())
        .expect("r3's signature judged")
        .clone();
    assert_eq!(r3["counted"], false, "{sigs:#}");
    assert_eq!(r3["not_counted"], "root-role", "{sigs:#}");
}

/// `trust remove` refuses what would leave a store the reader refuses (its only root
/// key, fewer root keys than root_threshold), and a key it does not hold, changing
/// nothing; a removed release key no longer counts for a bundle it signed.
#[test]
fn trust_remove_refuses_what_would_break_the_store_and_a_removed_key_counts_for_nothing() {
    let k = Keeper::new();
    let (r1, r2, rm) = (id(k.dir(), "r1"), id(k.dir(), "r2"), id(k.dir(), "rm"));
    k.next("w", &[]);
    let before = snapshot(&k.dir().join("w"));
    // root_threshold 2 of two roots: one cannot go.
    let o = k.run(&["trust", "remove", "w", &r1]);
    expect_code(&o, 2);
    assert!(stderr(&o).contains("would be refused"), "{}", stderr(&o));
    assert_eq!(snapshot(&k.dir().join("w")), before);
    let o = k.run(&["trust", "remove", "w", "0123456789ABCDEF"]);
    expect_code(&o, 2);
    assert!(
        stderr(&o).contains("has no key 0123456789ABCDEF"),
        "{}",
        stderr(&o)
    );
    assert_eq!(snapshot(&k.dir().join("w")), before);
    // With threshold 1, r1 goes; the last root (r2) cannot.
    k.ok(&["trust", "set", "w", "--root-threshold", "1"]);
    k.ok(&["trust", "remove", "w", &r1]);
    let mid = snapshot(&k.dir().join("w"));
    let o = k.run(&["trust", "remove", "w", &r2]);
    expect_code(&o, 2);
    assert!(stderr(&o).contains("only root key"), "{}", stderr(&o));
    assert_eq!(snapshot(&k.dir().join("w")), mid);
    // The release key goes (rm2 added first, so the store keeps a release key): the
    // bundle rm signed no longer verifies with the store once installed.
    k.ok(&["trust", "add", "w", "rm2.pub"]);
    k.ok(&["trust", "remove", "w", &rm]);
    k.ok(&["trust", "sign", "w", "--key", "r1.key"]);
    k.ok(&["trust", "sign", "w", "--key", "r2.key"]);
    k.ok(&["trust", "update", "w", "--trust", "cur"]);
    expect_code(&k.run(&["verify", "b.tar.gz", "--trust", "cur"]), 4);
}

#[test]
fn a_root_key_listed_as_a_release_key_too_or_a_store_too_large_is_refused_replacing_nothing() {
    let k = Keeper::new();
    // r1's public key a second time, as a release key: one key, two roles.
    k.next("twice", &[&["trust", "add", "rm2.pub"]]);
    std::fs::copy(
        k.dir().join("r1.pub"),
        k.dir().join("twice/r1-as-release.pub"),
    )
    .unwrap();
    let before = snapshot(&k.dir().join("cur"));
    let o = k.run(&["trust", "update", "twice", "--trust", "cur"]);
    expect_code(&o, 2);
    assert!(stderr(&o).contains("r1-as-release.pub"), "{}", stderr(&o));
    assert_eq!(snapshot(&k.dir().join("cur")), before);
    // A trust.toml over its cap (256 KiB): refused before it is read whole.
    k.next("huge", &[&["trust", "add", "rm2.pub"]]);
    let toml = k.dir().join("huge/trust.toml");
    let mut text = std::fs::read_to_string(&toml).unwrap();
    text.push_str(&format!("# {}\n", "x".repeat(300 << 10)));
    std::fs::write(&toml, text).unwrap();
    let o = k.run(&["trust", "update", "huge", "--trust", "cur"]);
    assert_ne!(code(&o), 0);
    assert!(stderr(&o).contains("cap"), "{}", stderr(&o));
    assert_eq!(snapshot(&k.dir().join("cur")), before);
}

/// `airlock ARGS` under strace, killed (SIGKILL) at the first entry into `syscall`:
/// deterministic crash points inside one run.
fn killed_at(k: &Keeper, syscall: &str, args: &[&str]) -> std::process::Output {
    let state = k.dir().join("state");
    let mut c = std::process::Command::new("strace");
    c.args(["-f", "-qq", "-o", "/dev/null", "-e"])
        .arg(format!("inject={syscall}:signal=SIGKILL:when=1"))
        .arg(bin())
        .args(args)
        .current_dir(k.dir())
        .env("AIRLOCK_STATE_DIR", state);
    c.output().expect("strace (scripts/test-deps installs it)")
}

#[test]
fn an_update_killed_mid_way_leaves_the_old_store_or_the_new_never_a_mix() {
    let k = Keeper::new();
    k.next("v2", &[&["trust", "add", "rm2.pub"]]);
    for r in ["r1", "r2"] {
        k.ok(&["trust", "sign", "v2", "--key", &format!("{r}.key")]);
    }
    let old = snapshot(&k.dir().join("cur"));
    // Killed as it exchanges the directories: the exchange never happened.
    let o = killed_at(
        &k,
        "renameat2",
        &["trust", "update", "v2", "--trust", "cur"],
    );
    assert_ne!(code(&o), 0, "the run was killed");
    assert_eq!(snapshot(&k.dir().join("cur")), old, "not the old store");
    k.ok(&["verify", "b.tar.gz", "--trust", "cur"]);
    // Killed right after the exchange (syncing the directory that holds it): the new
    // store whole, its history with the old one; every command takes it as version 2.
    let o = killed_at(&k, "fsync", &["trust", "update", "v2", "--trust", "cur"]);
    assert_ne!(code(&o), 0, "the run was killed");
    let new = snapshot(&k.dir().join("cur"));
    let top: Vec<&(String, Vec<u8>)> = new
        .iter()
        .filter(|(p, _)| !p.starts_with("history"))
        .collect();
    let v2: Vec<(String, Vec<u8>)> = snapshot(&k.dir().join("v2"));
    assert_eq!(
        top.iter()
            .map(|(p, b)| (p.clone(), b.clone()))
            .collect::<Vec<_>>(),
        v2,
        "not the new store"
    );
    let kept: Vec<(String, Vec<u8>)> = new
        .iter()
        .filter_map(|(p, b)| {
            p.strip_prefix("history/v1/")
                .map(|p| (p.to_string(), b.clone()))
        })
        .collect();
    assert_eq!(kept, old, "history/v1 is not the old store");
    let listed = k.ok(&["trust", "list", "cur"]);
    assert!(listed.contains("version 2"), "{listed}");
}
