//! Keys and the files airlock writes: the modes of secret keys, public keys and
//! bundles.

mod util;
use std::path::Path;
use util::*;

/// `.airlock-*` temp files left in `d`.
fn leftovers(d: &Path) -> Vec<String> {
    std::fs::read_dir(d)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".airlock-"))
        .collect()
}

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
