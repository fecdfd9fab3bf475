//! Trust updates travel with bundles (issue 49): `pack --trust-update DIR` carries a
//! signed trust store; a host's verify (and every command that judges a bundle for it)
//! installs it before judging the bundle when its roots approve it, walks the versions
//! it missed through the carried history, never lowers its store, and refuses a bundle
//! whose carried store its roots did not sign, replacing nothing.

mod util;
use std::path::Path;
use util::*;

fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
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

/// The keeper of the trust store (`keeper`: version 1, roots r1 and r2 with
/// root_threshold 2, release key rm) and an operator host whose store (`host`) is a
/// copy of version 1. Bundle `old.tar.gz` is signed by rm.
struct World {
    t: tempfile::TempDir,
}

impl World {
    fn new() -> World {
        let w = World { t: keyed_dir() };
        for name in ["r1", "r2", "r3", "rm2"] {
            keygen(w.dir(), name);
        }
        w.ok(&["trust", "add", "keeper", "rm.pub", "--name", "Rita"]);
        w.ok(&["trust", "add", "keeper", "r1.pub", "--role", "root"]);
        w.ok(&["trust", "add", "keeper", "r2.pub", "--role", "root"]);
        w.ok(&["trust", "set", "keeper", "--root-threshold", "2"]);
        w.ok(&["trust", "sign", "keeper", "--key", "r1.key"]);
        w.ok(&["trust", "sign", "keeper", "--key", "r2.key"]);
        copy_dir(&w.dir().join("keeper"), &w.dir().join("host"));
        w.source("src");
        w.ok(&["pack", "src", "--key", "rm.key", "--out", "old.tar.gz"]);
        w.ok(&["verify", "old.tar.gz", "--trust", "host"]);
        w
    }

    fn dir(&self) -> &Path {
        self.t.path()
    }

    /// A small source at `dir/NAME`.
    fn source(&self, name: &str) {
        MiniSource::new(
            &self.dir().join(format!("{name}-root")),
            "app",
            "SELECT true AS ready",
            &[("t", "CREATE TABLE app.a (i int);\n", false)],
            "DROP TABLE app.a;\n",
        );
        copy_dir(
            &self.dir().join(format!("{name}-root/src")),
            &self.dir().join(name),
        );
    }

    /// `airlock ARGS` on the machine it belongs to: each host (`--trust host…`) and the
    /// keeper's machine (everything else) remember stores in a state directory of its
    /// own, as separate machines do (a host knows a store by its root keys, so one
    /// memory for all would see the keeper's newer version as the hosts' future).
    fn run(&self, args: &[&str]) -> std::process::Output {
        let machine = args
            .windows(2)
            .find(|w| w[0] == "--trust" && w[1].starts_with("host"))
            .map(|w| w[1])
            .unwrap_or("keeper");
        let state = self.dir().join(format!("{machine}-state"));
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

    /// The keeper's next version: `edits` on `keeper` (each `trust SUB keeper ARGS…`),
    /// signed by `signers`, installed into `keeper` with `trust update` (so its history
    /// holds the versions before).
    fn next_version(&self, edits: &[&[&str]], signers: &[&str]) {
        copy_dir(&self.dir().join("keeper"), &self.dir().join("next"));
        for e in edits {
            let mut a: Vec<&str> = e.to_vec();
            a.insert(2, "next");
            self.ok(&a);
        }
        for s in signers {
            self.ok(&["trust", "sign", "next", "--key", &format!("{s}.key")]);
        }
        self.ok(&["trust", "update", "next", "--trust", "keeper"]);
    }
}

#[test]
fn a_revocation_shipped_inside_the_next_bundle_takes_effect_before_that_bundle_is_judged() {
    let w = World::new();
    let d = w.dir();
    let rm = id(d, "rm");
    // rm is compromised: version 2 revokes it and brings rm2, signed by both roots.
    w.next_version(
        &[
            &["trust", "add", "rm2.pub", "--name", "Rita (new laptop)"],
            &["trust", "revoke", &rm, "--reason", "laptop stolen"],
        ],
        &["r1", "r2"],
    );
    // The next release is signed by rm2 alone and carries version 2.
    w.source("src2");
    w.ok(&[
        "pack",
        "src2",
        "--key",
        "rm2.key",
        "--out",
        "new.tar.gz",
        "--trust-update",
        "keeper",
    ]);
    let shown = w.ok(&["inspect", "new.tar.gz"]);
    assert!(shown.contains("signed trust store version 2"), "{shown}");
    // The host still has version 1, which does not know rm2: the carried store is
    // installed first, so the bundle verifies, and says so.
    let o = w.run(&["--json", "verify", "new.tar.gz", "--trust", "host"]);
    expect_code(&o, 0);
    let doc = json(&o);
    assert_eq!(doc["trust_update"]["outcome"], "updated", "{doc:#}");
    assert_eq!(doc["trust_update"]["from"], 1);
    assert_eq!(doc["trust_update"]["to"], 2);
    assert_eq!(doc["trust_store_version"], 2);
    assert!(d.join("host/history/v1/trust.toml").is_file());
    assert_eq!(
        std::fs::read(d.join("host/trust.toml")).unwrap(),
        std::fs::read(d.join("keeper/trust.toml")).unwrap()
    );
    // The revocation holds on the host from now on: rm's old bundle is refused.
    let o = w.run(&["verify", "old.tar.gz", "--trust", "host"]);
    expect_code(&o, 4);
    // Verifying the carrier again changes nothing and says it kept the store.
    let before = snapshot(&d.join("host"));
    let o = w.run(&["verify", "new.tar.gz", "--trust", "host"]);
    expect_code(&o, 0);
    assert!(
        stderr(&o).contains("is at version 2: kept"),
        "{}",
        stderr(&o)
    );
    assert_eq!(snapshot(&d.join("host")), before);
    // A co-signature keeps what the bundle carries.
    w.ok(&["sign", "new.tar.gz", "--key", "rm.key"]);
    let o = w.run(&["--json", "inspect", "new.tar.gz"]);
    assert_eq!(json(&o)["manifest"]["trust_update"]["version"], 2);
}

#[test]
fn a_carried_store_the_hosts_roots_did_not_sign_refuses_the_bundle_and_replaces_nothing() {
    let w = World::new();
    let d = w.dir();
    // A "version 2" whose only root is r3 (someone else's key), signed by r3 alone:
    // it is signed by its own roots, so pack carries it; no host root signed it.
    copy_dir(&d.join("keeper"), &d.join("rogue"));
    w.ok(&["trust", "add", "rogue", "r3.pub", "--role", "root"]);
    w.ok(&["trust", "add", "rogue", "rm2.pub"]);
    w.ok(&["trust", "set", "rogue", "--root-threshold", "1"]);
    let (r1, r2) = (id(d, "r1"), id(d, "r2"));
    let toml = d.join("rogue/trust.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    let kept: Vec<&str> = text
        .split("\n\n")
        .filter(|b| !b.contains(&r1) && !b.contains(&r2))
        .collect();
    std::fs::write(&toml, kept.join("\n\n")).unwrap();
    std::fs::remove_file(d.join("rogue/r1.pub")).unwrap();
    std::fs::remove_file(d.join("rogue/r2.pub")).unwrap();
    w.ok(&["trust", "sign", "rogue", "--key", "r3.key"]);
    w.source("src2");
    w.ok(&[
        "pack",
        "src2",
        "--key",
        "rm2.key",
        "--out",
        "evil.tar.gz",
        "--trust-update",
        "rogue",
    ]);
    let before = snapshot(&d.join("host"));
    let state_before = snapshot(&d.join("host-state"));
    for args in [
        vec!["verify", "evil.tar.gz", "--trust", "host"],
        vec!["sql", "evil.tar.gz", "--trust", "host"],
        vec![
            "plan",
            "evil.tar.gz",
            "--trust",
            "host",
            "--db",
            "dbname=postgres",
        ],
    ] {
        let o = w.run(&args);
        expect_code(&o, 4);
        assert!(
            stderr(&o).contains("signed by 0 of the 2 root key(s) the current version 1 needs"),
            "{args:?}: {}",
            stderr(&o)
        );
        assert_eq!(
            snapshot(&d.join("host")),
            before,
            "{args:?} changed the store"
        );
        assert_eq!(snapshot(&d.join("host-state")), state_before);
        assert!(
            !std::fs::read_dir(d).unwrap().flatten().any(|e| e
                .file_name()
                .to_string_lossy()
                .starts_with(".airlock-trust-")),
            "a staging directory was left behind"
        );
    }
    // A store its own roots did not sign is not even packed.
    copy_dir(&d.join("keeper"), &d.join("unsigned"));
    w.ok(&["trust", "add", "unsigned", "rm2.pub"]);
    let o = w.run(&[
        "pack",
        "src2",
        "--key",
        "rm2.key",
        "--out",
        "x.tar.gz",
        "--trust-update",
        "unsigned",
    ]);
    expect_code(&o, 4);
    assert!(!d.join("x.tar.gz").exists());
}

#[test]
fn a_host_that_missed_versions_walks_the_carried_history_and_a_bundle_never_lowers_a_store() {
    let w = World::new();
    let d = w.dir();
    copy_dir(&d.join("keeper"), &d.join("keeper-v1"));
    // Version 2 hands the store to r3 alone (signed by the old roots and the new);
    // version 3, signed by r3 alone, brings rm2.
    let (r1, r2) = (id(d, "r1"), id(d, "r2"));
    copy_dir(&d.join("keeper"), &d.join("next"));
    w.ok(&["trust", "add", "next", "r3.pub", "--role", "root"]);
    w.ok(&["trust", "set", "next", "--root-threshold", "1"]);
    let toml = d.join("next/trust.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    let kept: Vec<&str> = text
        .split("\n\n")
        .filter(|b| !b.contains(&r1) && !b.contains(&r2))
        .collect();
    std::fs::write(&toml, kept.join("\n\n")).unwrap();
    std::fs::remove_file(d.join("next/r1.pub")).unwrap();
    std::fs::remove_file(d.join("next/r2.pub")).unwrap();
    for k in ["r1", "r2", "r3"] {
        w.ok(&["trust", "sign", "next", "--key", &format!("{k}.key")]);
    }
    w.ok(&["trust", "update", "next", "--trust", "keeper"]);
    w.next_version(&[&["trust", "add", "rm2.pub"]], &["r3"]);
    assert!(d.join("keeper/history/v2/trust.toml").is_file());
    // The host at version 1: version 3 is not signed by its roots, but version 2
    // (carried in the history) is, and version 3 by version 2's.
    w.source("src3");
    w.ok(&[
        "pack",
        "src3",
        "--key",
        "rm2.key",
        "--out",
        "v3.tar.gz",
        "--trust-update",
        "keeper",
    ]);
    let o = w.run(&["--json", "verify", "v3.tar.gz", "--trust", "host"]);
    expect_code(&o, 0);
    let doc = json(&o);
    assert_eq!(doc["trust_update"]["to"], 3, "{doc:#}");
    assert_eq!(doc["trust_update"]["via"], serde_json::json!([2]));
    for v in ["v1", "v2"] {
        assert!(
            d.join(format!("host/history/{v}/trust.toml")).is_file(),
            "{v}"
        );
    }
    // `trust update` walks the same way by hand.
    copy_dir(&d.join("keeper-v1"), &d.join("host2"));
    w.ok(&["verify", "old.tar.gz", "--trust", "host2"]);
    let o = w.run(&["--json", "trust", "update", "keeper", "--trust", "host2"]);
    expect_code(&o, 0);
    assert_eq!(json(&o)["to_version"], 3, "{}", stdout(&o));
    // A bundle carrying the older version 1 never lowers the host's store.
    w.source("src1");
    w.ok(&[
        "pack",
        "src1",
        "--key",
        "rm.key",
        "--out",
        "with-v1.tar.gz",
        "--trust-update",
        "keeper-v1",
    ]);
    let before = snapshot(&d.join("host"));
    let o = w.run(&["--json", "verify", "with-v1.tar.gz", "--trust", "host"]);
    let doc = json(&o);
    assert_eq!(doc["trust_update"]["outcome"], "kept", "{doc:#}");
    assert_eq!(doc["trust_update"]["host"], 3);
    assert_eq!(snapshot(&d.join("host")), before);
    // A host whose store has no version is told, and judges with its own store.
    std::fs::create_dir(d.join("plain")).unwrap();
    std::fs::copy(d.join("rm.pub"), d.join("plain/rm.pub")).unwrap();
    let o = w.run(&["verify", "with-v1.tar.gz", "--trust", "plain"]);
    expect_code(&o, 0);
    assert!(stderr(&o).contains("has no version"), "{}", stderr(&o));
    assert!(!d.join("plain/trust.toml").exists());
}
