//! Trust proven forward (issue 66, findings 5 and 6): a historical trust store version
//! counts only as a link of a chain from a version this host already trusts, each
//! signed by its predecessor's root threshold and its own, never backward from what
//! it claims of itself; a carried store's history is checked the same way before
//! anything is installed; and the host's memory of a store follows its root keys, not
//! its path, so an older version is refused wherever it is put back.

mod util;
use std::path::Path;
use util::*;

/// `to` replaced by a copy of `from`.
fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    util::copy_dir(from, to);
}

/// `issued` of the store at `dir`.
fn issued(dir: &Path) -> chrono::DateTime<chrono::Utc> {
    let text = std::fs::read_to_string(dir.join("trust.toml")).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("issued"))
        .expect("an issued line");
    let value = line.split('"').nth(1).unwrap();
    chrono::DateTime::parse_from_rfc3339(value)
        .unwrap()
        .with_timezone(&chrono::Utc)
}

fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Wait (bounded by the clock) until a whole second has passed, so versions made one
/// after the other have distinct `issued` times.
fn next_second() {
    let start = chrono::Utc::now().timestamp();
    while chrono::Utc::now().timestamp() <= start {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The keeper's store (`keeper`: roots r1, r2, root_threshold 2, release key rm) at
/// version 3 (versions 2 and 3 real, each signed by both roots), a host (`host`) still
/// at version 1, and an attacker's root `ra` and release key `ka`.
struct World {
    t: tempfile::TempDir,
}

impl World {
    fn new() -> World {
        let w = World { t: keyed_dir() };
        for name in ["r1", "r2", "ra", "ka", "rm2"] {
            keygen(w.dir(), name);
        }
        w.ok(&["trust", "add", "keeper", "rm.pub"]);
        w.ok(&["trust", "add", "keeper", "r1.pub", "--role", "root"]);
        w.ok(&["trust", "add", "keeper", "r2.pub", "--role", "root"]);
        w.ok(&["trust", "set", "keeper", "--root-threshold", "2"]);
        w.ok(&["trust", "sign", "keeper", "--key", "r1.key"]);
        w.ok(&["trust", "sign", "keeper", "--key", "r2.key"]);
        copy_dir(&w.dir().join("keeper"), &w.dir().join("host"));
        MiniSource::new(
            &w.dir().join("mini"),
            "app",
            "SELECT true AS ready",
            &[("t", "CREATE TABLE app.a (i int);\n", false)],
            "DROP TABLE app.a;\n",
        );
        w.ok(&[
            "verify",
            &w.pack("old.tar.gz", "rm.key", None),
            "--trust",
            "host",
        ]);
        next_second();
        w.next_version(&["trust", "add", "rm2.pub"]);
        next_second();
        w.next_version(&["trust", "set", "--threshold", "1"]);
        w
    }

    fn dir(&self) -> &Path {
        self.t.path()
    }

    fn run_in(&self, state: &str, args: &[&str]) -> std::process::Output {
        let state = self.dir().join(state);
        airlock_env(
            self.dir(),
            args,
            &[("AIRLOCK_STATE_DIR", state.to_str().unwrap())],
        )
    }

    /// `airlock ARGS` as the host (its state directory).
    fn run(&self, args: &[&str]) -> std::process::Output {
        self.run_in("state", args)
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        expect_code(&o, 0);
        stdout(&o)
    }

    /// As the attacker, with a state directory of its own.
    fn attacker(&self, args: &[&str]) {
        let o = self.run_in("attacker-state", args);
        expect_code(&o, 0);
    }

    /// The mini source packed with `key` into `out`, carrying `update` when given.
    fn pack(&self, out: &str, key: &str, update: Option<&str>) -> String {
        let src = self.dir().join("mini/src");
        let mut a = vec!["pack", src.to_str().unwrap(), "--key", key, "--out", out];
        if let Some(u) = update {
            a.extend(["--trust-update", u]);
        }
        let o = self.run_in("packer-state", &a);
        expect_code(&o, 0);
        out.to_string()
    }

    /// The keeper's next version: `edit` (`trust SUB ARGS…`, the store inserted),
    /// signed by r1 and r2, installed into `keeper` with `trust update`.
    fn next_version(&self, edit: &[&str]) {
        let (d, next) = (self.dir(), self.dir().join("next"));
        copy_dir(&d.join("keeper"), &next);
        let mut a: Vec<&str> = edit.to_vec();
        a.insert(2, "next");
        self.run_in("keeper-state", &a);
        for k in ["r1", "r2"] {
            let o = self.run_in(
                "keeper-state",
                &["trust", "sign", "next", "--key", &format!("{k}.key")],
            );
            expect_code(&o, 0);
        }
        let o = self.run_in(
            "keeper-state",
            &["trust", "update", "next", "--trust", "keeper"],
        );
        expect_code(&o, 0);
        std::fs::remove_dir_all(&next).unwrap();
    }

    /// The attacker's version 2, put in place of `store/history/v2`: the real roots'
    /// public keys (public, after all) plus `ra`, root_threshold 1, the attacker's
    /// release key `ka`, issued between the real versions 2 and 3, signed by `ra`
    /// alone. Backward it "proves" itself: version 3 is signed by one of its roots (r1),
    /// and its own threshold (1) signed it.
    fn forge_v2(&self, store: &str) {
        let d = self.dir();
        let forged = d.join("forged");
        copy_dir(&d.join(store).join("history/v1"), &forged);
        self.attacker(&["trust", "add", "forged", "ka.pub"]);
        self.attacker(&["trust", "add", "forged", "ra.pub", "--role", "root"]);
        self.attacker(&[
            "trust",
            "set",
            "forged",
            "--root-threshold",
            "1",
            "--store-version",
            "2",
        ]);
        let real2 = issued(&d.join(store).join("history/v2"));
        let real3 = issued(&d.join(store));
        assert!(real3 - real2 >= chrono::Duration::seconds(1));
        let when = rfc3339(real2 + (real3 - real2) / 2);
        let toml = forged.join("trust.toml");
        let text: Vec<String> = std::fs::read_to_string(&toml)
            .unwrap()
            .lines()
            .map(|l| match l.starts_with("issued") {
                true => format!("issued = \"{when}\""),
                false => l.to_string(),
            })
            .collect();
        std::fs::write(&toml, text.join("\n") + "\n").unwrap();
        let _ = std::fs::remove_dir_all(forged.join("signatures"));
        self.attacker(&["trust", "sign", "forged", "--key", "ra.key"]);
        copy_dir(&forged, &d.join(store).join("history/v2"));
    }

    /// A time when the forged version 2 would be in force.
    fn forged_time(&self, store: &str) -> String {
        rfc3339(issued(&self.dir().join(store).join("history/v2")) + chrono::Duration::seconds(0))
    }
}

#[test]
fn a_carried_store_whose_history_holds_a_forged_version_is_refused_and_nothing_installed() {
    let w = World::new();
    let d = w.dir();
    w.forge_v2("keeper");
    // The attacker's bundle, signed by ka, carries the keeper's store (real version 3,
    // forged history/v2). The host at version 1 must not install it.
    let bundle = w.pack("evil.tar.gz", "ka.key", Some("keeper"));
    let host_before = snapshot(&d.join("host"));
    let state_before = snapshot(&d.join("state"));
    let o = w.run(&["verify", &bundle, "--trust", "host"]);
    expect_code(&o, 4);
    assert!(
        stderr(&o).contains("version 2"),
        "the refusal names the forged version: {}",
        stderr(&o)
    );
    assert_eq!(
        snapshot(&d.join("host")),
        host_before,
        "the host's store changed"
    );
    assert_eq!(
        snapshot(&d.join("state")),
        state_before,
        "the host's memory changed"
    );
    // And audit, asked at the forged version's time, does not count ka.
    let at = w.forged_time("keeper");
    let o = w.run(&["audit", &bundle, "--trust", "host", "--at", &at]);
    expect_code(&o, 4);
}

#[test]
fn audit_never_judges_with_a_history_version_not_proven_forward() {
    let w = World::new();
    let d = w.dir();
    // A far host's store as a buggy carrier left it: real version 3, forged history/v2.
    copy_dir(&d.join("keeper"), &d.join("far"));
    w.forge_v2("far");
    let bundle = w.pack("evil.tar.gz", "ka.key", None);
    let at = w.forged_time("far");
    // An auditor's machine that never saw this store (fresh state), and the host
    // itself: neither judges with the forged version.
    for state in ["auditor-state", "state"] {
        let o = w.run_in(
            state,
            &["--json", "audit", &bundle, "--trust", "far", "--at", &at],
        );
        expect_code(&o, 4);
        let doc = json(&o);
        assert_ne!(
            doc["bundles"][0]["trust_store_version"], 2,
            "judged with the forged version: {doc:#}"
        );
    }
    // The real history still serves: a bundle rm signed, judged at version 1's time,
    // passes on the auditor's machine.
    let old = d.join("old.tar.gz");
    let v1_time = rfc3339(issued(&d.join("far/history/v1")));
    let o = w.run_in(
        "auditor-state",
        &[
            "--json",
            "audit",
            old.to_str().unwrap(),
            "--trust",
            "far",
            "--at",
            &v1_time,
        ],
    );
    expect_code(&o, 0);
}

#[test]
fn an_older_version_is_refused_at_any_path_by_copy_or_by_link() {
    let w = World::new();
    let d = w.dir();
    let old = d.join("old.tar.gz");
    let old = old.to_str().unwrap();
    // A copy of the host's version 1 kept aside, then the host moves to version 3.
    copy_dir(&d.join("host"), &d.join("v1-copy"));
    w.ok(&["trust", "update", "keeper", "--trust", "host"]);
    // The same bundle verifies under version 3 (rm is still trusted); now revoke it in
    // a version 4 so version 1 would say otherwise.
    let rm = key_id_of(&d.join("rm.pub"));
    w.next_version(&["trust", "revoke", &rm, "--reason", "stolen"]);
    w.ok(&["trust", "update", "keeper", "--trust", "host"]);
    let o = w.run(&["verify", old, "--trust", "host"]);
    expect_code(&o, 4);
    // Version 1 from another path: refused as a rollback.
    let state_before = snapshot(&d.join("state"));
    let o = w.run(&["verify", old, "--trust", "v1-copy"]);
    expect_code(&o, 4);
    assert!(stderr(&o).contains("rollback refused"), "{}", stderr(&o));
    assert_eq!(snapshot(&d.join("state")), state_before);
    // Version 1 put back by a link in the host store's place: refused too.
    std::fs::rename(d.join("host"), d.join("host-real")).unwrap();
    std::os::unix::fs::symlink(d.join("v1-copy"), d.join("host")).unwrap();
    let o = w.run(&["verify", old, "--trust", "host"]);
    expect_code(&o, 4);
    assert!(stderr(&o).contains("rollback refused"), "{}", stderr(&o));
    assert_eq!(snapshot(&d.join("state")), state_before);
}
