//! Keys and the files airlock writes: passphrases (from a file, the environment or a
//! terminal), secret-key permissions, and the modes of secret keys, public keys and
//! bundles. Every refusal proves that nothing was written or changed.

mod util;
use std::path::Path;
use util::*;

fn mini(d: &Path) -> String {
    let s = MiniSource::new(
        d,
        "x",
        "SELECT true AS ready",
        &[("t1", "SELECT 1;", false)],
        "SELECT 1;",
    );
    s.dir.to_str().unwrap().to_string()
}

/// The empty-passphrase refusal: exit 2, names where it came from, says how to get
/// an unencrypted key on purpose, and leaves no key file behind.
#[track_caller]
fn refused_empty(d: &Path, o: &std::process::Output, text: &str, source: &str) {
    expect_code(o, 2);
    assert!(
        text.contains(&format!("empty passphrase from {source}")),
        "{source}: {text}"
    );
    assert!(text.contains("--unencrypted"), "{source}: {text}");
    for f in ["e.key", "e.pub"] {
        assert!(!d.join(f).exists(), "{source}: {f} was written");
    }
    assert!(leftovers(d).is_empty(), "{source}: {:?}", leftovers(d));
}

#[test]
fn empty_passphrase_for_a_new_key_is_refused_from_every_source() {
    let t = tempdir();
    let d = t.path();
    // AIRLOCK_PASSPHRASE="" (say, "$UNSET_VAR"): refused, in human and JSON output.
    let o = airlock_env(d, &["keygen", "--out", "e"], &[("AIRLOCK_PASSPHRASE", "")]);
    refused_empty(d, &o, &stderr(&o), "AIRLOCK_PASSPHRASE");
    let o = airlock_env(
        d,
        &["--json", "keygen", "--out", "e"],
        &[("AIRLOCK_PASSPHRASE", "")],
    );
    let v = json(&o);
    assert_eq!(v["kind"], "usage", "{v:#}");
    let text = format!("{}\n{}", v["error"], v["hint"]);
    refused_empty(d, &o, &text, "AIRLOCK_PASSPHRASE");
    // An empty --passphrase-file, or one whose first line is empty.
    for (file, content) in [("empty.txt", ""), ("blank.txt", "\nsecret\n")] {
        std::fs::write(d.join(file), content).unwrap();
        let o = airlock(d, &["keygen", "--out", "e", "--passphrase-file", file]);
        refused_empty(d, &o, &stderr(&o), &format!("the first line of {file}"));
    }
    // On a terminal, the same rule and the same advice.
    let o = airlock_tty(d, &["keygen", "--out", "e"], "\n");
    refused_empty(d, &o, &stdout(&o), "the terminal");
    // --unencrypted is the way to have no passphrase; the empty variable is unused.
    let o = airlock_env(
        d,
        &["--json", "keygen", "--out", "e", "--unencrypted"],
        &[("AIRLOCK_PASSPHRASE", "")],
    );
    expect_code(&o, 0);
    assert_eq!(json(&o)["encrypted"], false);
}

#[test]
fn encrypted_key_needs_the_right_passphrase_from_any_source() {
    let t = tempdir();
    let d = t.path();
    let o = airlock_env(
        d,
        &["--json", "keygen", "--out", "enc"],
        &[("AIRLOCK_PASSPHRASE", "secret")],
    );
    expect_code(&o, 0);
    assert_eq!(json(&o)["encrypted"], true);
    let s = mini(d);
    // The passphrase from a file (its first line) or a terminal (the environment:
    // tests/faults.rs). Each opening costs a full scrypt, so this test stays short.
    std::fs::write(d.join("pw.txt"), "secret\nnot this line\n").unwrap();
    expect_code(
        &airlock(
            d,
            &[
                "pack",
                &s,
                "--key",
                "enc.key",
                "--out",
                "file.tar.gz",
                "--passphrase-file",
                "pw.txt",
            ],
        ),
        0,
    );
    let o = airlock_tty(
        d,
        &["pack", &s, "--key", "enc.key", "--out", "tty.tar.gz"],
        "secret\n",
    );
    expect_code(&o, 0);
    for b in ["file.tar.gz", "tty.tar.gz"] {
        expect_code(&airlock(d, &["verify", b, "--trust", "enc.pub"]), 0);
    }
    // An empty passphrase opening an existing key is just a wrong one, on a terminal
    // as from AIRLOCK_PASSPHRASE (no advice to use --unencrypted).
    let o = airlock_tty(
        d,
        &["pack", &s, "--key", "enc.key", "--out", "none.tar.gz"],
        "\n",
    );
    expect_code(&o, 2);
    assert!(
        stdout(&o).contains("key enc.key: secret key checksum mismatch: wrong passphrase"),
        "{}",
        stdout(&o)
    );
    assert!(!stdout(&o).contains("--unencrypted"), "{}", stdout(&o));
    assert!(!d.join("none.tar.gz").exists());
    // sign with a wrong passphrase: exit 2, the bundle untouched.
    let before = std::fs::read(d.join("file.tar.gz")).unwrap();
    std::fs::copy(d.join("file.tar.gz"), d.join("co.tar.gz")).unwrap();
    let o = airlock_env(
        d,
        &["sign", "co.tar.gz", "--key", "enc.key"],
        &[("AIRLOCK_PASSPHRASE", "wrong")],
    );
    expect_code(&o, 2);
    assert!(stderr(&o).contains("wrong passphrase"), "{}", stderr(&o));
    assert_eq!(std::fs::read(d.join("co.tar.gz")).unwrap(), before);
    assert!(leftovers(d).is_empty(), "{:?}", leftovers(d));
}

#[test]
fn a_secret_key_others_can_read_is_refused_by_pack_and_sign() {
    use std::os::unix::fs::PermissionsExt;
    let t = tempdir();
    let d = t.path();
    keygen(d, "rm");
    keygen(d, "co");
    let s = mini(d);
    pack(d, Path::new(&s), "rm.key", "b.tar.gz");
    let chmod = |f: &str, m: u32| {
        std::fs::set_permissions(d.join(f), std::fs::Permissions::from_mode(m)).unwrap()
    };
    chmod("rm.key", 0o644);
    let o = airlock(
        d,
        &[
            "--json",
            "pack",
            &s,
            "--key",
            "rm.key",
            "--out",
            "new.tar.gz",
        ],
    );
    expect_code(&o, 2);
    let v = json(&o);
    assert!(v["error"].as_str().unwrap().contains("rm.key"), "{v:#}");
    assert_eq!(v["hint"], "chmod 600 rm.key", "{v:#}");
    assert!(!d.join("new.tar.gz").exists());
    // sign refuses a group-readable key too, and leaves the bundle alone.
    chmod("co.key", 0o640);
    let before = std::fs::read(d.join("b.tar.gz")).unwrap();
    let o = airlock(d, &["sign", "b.tar.gz", "--key", "co.key"]);
    expect_code(&o, 2);
    assert!(
        stderr(&o).contains("co.key is readable by others (mode 640)")
            && stderr(&o).contains("chmod 600 co.key"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read(d.join("b.tar.gz")).unwrap(), before);
    assert!(leftovers(d).is_empty(), "{:?}", leftovers(d));
}

#[test]
fn public_files_follow_the_umask_secret_keys_stay_private_and_sign_keeps_the_mode() {
    let t = tempdir();
    let d = t.path();
    let s = mini(d);
    // Public keys and bundles are made like any file (0666 minus the umask), so an
    // operator's account can read them; secret keys are 0600 whatever the umask.
    for (umask, public) in [("022", 0o644), ("027", 0o640), ("077", 0o600)] {
        let k = format!("k{umask}");
        let o = airlock_umask(d, umask, &["keygen", "--out", &k, "--unencrypted"]);
        expect_code(&o, 0);
        assert_mode(&d.join(format!("{k}.pub")), public);
        assert_mode(&d.join(format!("{k}.key")), 0o600);
        let b = format!("b{umask}.tar.gz");
        let o = airlock_umask(
            d,
            umask,
            &["pack", &s, "--key", &format!("{k}.key"), "--out", &b],
        );
        expect_code(&o, 0);
        assert_mode(&d.join(&b), public);
    }
    // sign rewrites the bundle in place and keeps its mode, whatever the umask.
    use std::os::unix::fs::PermissionsExt;
    keygen(d, "co");
    let b = d.join("signed.tar.gz");
    for (umask, kept) in [("077", 0o644), ("022", 0o640), ("022", 0o604)] {
        std::fs::copy(d.join("b022.tar.gz"), &b).unwrap();
        std::fs::set_permissions(&b, std::fs::Permissions::from_mode(kept)).unwrap();
        let o = airlock_umask(d, umask, &["sign", "signed.tar.gz", "--key", "co.key"]);
        expect_code(&o, 0);
        assert_mode(&b, kept);
    }
    assert!(leftovers(d).is_empty(), "{:?}", leftovers(d));
}

/// A trust store holds public keys and `trust.toml`, nothing that could be mistaken
/// for either: secret keys (by name or by content) and policy files under any other
/// name are refused (exit 2) with a hint, and nothing is verified or extracted.
#[test]
fn a_trust_store_with_secret_keys_or_a_misnamed_policy_is_refused() {
    let t = tempdir();
    let d = t.path();
    let id = keygen(d, "alice");
    let o = airlock_env(
        d,
        &["keygen", "--out", "enc"],
        &[("AIRLOCK_PASSPHRASE", "pw123")],
    );
    expect_code(&o, 0);
    let src = mini(d);
    pack(d, Path::new(&src), "alice.key", "b.tar.gz");
    let secret = std::fs::read(d.join("alice.key")).unwrap();
    let encrypted = std::fs::read(d.join("enc.key")).unwrap();
    let revoke = format!("[keys.{id}]\nrevoked = true\n");
    // (case, extra file in a store that also holds alice.pub, its content, what the
    // error names, what the hint says)
    let cases: Vec<(&str, &str, Vec<u8>, &str, &str)> = vec![
        // The README used to generate keys into the store it then trusted.
        (
            "secret-key",
            "alice.key",
            secret.clone(),
            "is a secret key",
            "move",
        ),
        (
            "encrypted-key",
            "enc.key",
            encrypted.clone(),
            "is a secret key",
            "move",
        ),
        (
            "uppercase-key",
            "ALICE.KEY",
            secret.clone(),
            "is a secret key",
            "move",
        ),
        (
            "secret-as-pub",
            "bob.pub",
            secret.clone(),
            "is a secret key",
            "move",
        ),
        (
            "secret-as-txt",
            "backup.txt",
            encrypted,
            "is a secret key",
            "move",
        ),
        (
            "Trust.toml",
            "Trust.toml",
            revoke.clone().into_bytes(),
            "looks like a policy file",
            "rename",
        ),
        (
            "TRUST.TOML",
            "TRUST.TOML",
            revoke.clone().into_bytes(),
            "looks like a policy file",
            "rename",
        ),
        (
            "policy.toml",
            "policy.toml",
            revoke.clone().into_bytes(),
            "looks like a policy file",
            "rename",
        ),
        (
            "trust.Toml",
            "trust.Toml",
            revoke.into_bytes(),
            "looks like a policy file",
            "rename",
        ),
        (
            "uppercase-pub",
            "carol.PUB",
            std::fs::read(d.join("enc.pub")).unwrap(),
            "looks like a public key",
            "rename",
        ),
    ];
    for (case, extra, content, what, hint) in cases {
        let s = d.join(format!("store-{case}"));
        std::fs::create_dir(&s).unwrap();
        std::fs::copy(d.join("alice.pub"), s.join("alice.pub")).unwrap();
        std::fs::write(s.join(extra), &content).unwrap();
        let store = s.to_str().unwrap();
        for cmd in [
            vec!["--json", "verify", "b.tar.gz", "--trust", store],
            vec!["--json", "inspect", "b.tar.gz", "--trust", store],
            vec![
                "--json", "extract", "b.tar.gz", "--trust", store, "--to", "out",
            ],
            vec!["--json", "audit", "b.tar.gz", "--trust", store],
        ] {
            let o = airlock(d, &cmd);
            assert_eq!(code(&o), 2, "{case}: {cmd:?}: {}", stdout(&o));
            let v = json(&o);
            assert_eq!(v["kind"], "trust-store", "{case}: {v:#}");
            let e = v["error"].as_str().unwrap();
            assert!(
                e.contains(what) && e.contains(&s.join(extra).display().to_string()),
                "{case}: {e}"
            );
            assert!(
                v["hint"].as_str().unwrap().to_lowercase().starts_with(hint),
                "{case}: {v:#}"
            );
            assert!(!d.join("out").exists(), "{case}: extract wrote");
        }
        assert!(leftovers(d).is_empty(), "{case}: {:?}", leftovers(d));
    }
    // A secret key given as the trust store itself.
    let o = airlock(d, &["verify", "b.tar.gz", "--trust", "alice.key"]);
    expect_code(&o, 2);
    assert!(stderr(&o).contains("is a secret key"), "{}", stderr(&o));
    // Other files (a README, signatures) are no keys and no policy: left alone.
    let s = d.join("store-ok");
    std::fs::create_dir(&s).unwrap();
    std::fs::copy(d.join("alice.pub"), s.join("alice.pub")).unwrap();
    std::fs::write(s.join("README.md"), "release keys, confirmed in person\n").unwrap();
    std::fs::write(s.join("trust.toml"), "threshold = 1\n").unwrap();
    expect_code(
        &airlock(d, &["verify", "b.tar.gz", "--trust", s.to_str().unwrap()]),
        0,
    );
}

/// `airlock new` suggests `keygen --out ~/.airlock/release`: on a fresh account the
/// folder does not exist yet, and keygen makes it, readable by its owner alone.
#[test]
fn keygen_makes_the_missing_key_folder_private() {
    use std::os::unix::fs::PermissionsExt;
    let t = tempdir();
    let d = t.path();
    let o = airlock(
        d,
        &[
            "--json",
            "keygen",
            "--out",
            "home/.airlock/release",
            "--unencrypted",
        ],
    );
    expect_code(&o, 0);
    assert!(d.join("home/.airlock/release.key").is_file());
    assert!(d.join("home/.airlock/release.pub").is_file());
    let mode = std::fs::metadata(d.join("home/.airlock"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700, "{mode:o}");
}
