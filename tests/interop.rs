//! Interop with tools nobody here wrote: minisign, GNU tar, sha256sum.

mod util;
use std::io::Write;
use std::process::{Command, Stdio};
use util::*;

fn sh(dir: &std::path::Path, script: &str) -> String {
    let o = Command::new("bash")
        .current_dir(dir)
        .args(["-ec", script])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{script}\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn minisign_uses_airlock_encrypted_keys_and_verifies_airlock_signatures() {
    let t = tempdir();
    let d = t.path();
    let o = airlock_env(
        d,
        &["keygen", "--out", "k"],
        &[("AIRLOCK_PASSPHRASE", "pw123")],
    );
    expect_code(&o, 0);
    std::fs::write(d.join("m"), "hello\n").unwrap();
    let mut child = tool("minisign")
        .current_dir(d)
        .args(["-S", "-s", "k.key", "-m", "m", "-t", "tc"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"pw123\n").unwrap();
    assert!(
        child.wait().unwrap().success(),
        "minisign could not use airlock's encrypted key"
    );
    sh(d, "minisign -Vm m -p k.pub");
}

#[test]
fn airlock_signatures_are_byte_identical_to_minisign_and_minisign_keys_sign_bundles() {
    let t = tempdir();
    let d = t.path();
    // A key made by minisign itself (-W: unencrypted) packs a bundle airlock verifies.
    sh(d, "minisign -G -W -p mk.pub -s mk.key >/dev/null");
    let src = reference_source(d, "directus");
    pack(d, &src, "mk.key", "b.tar.gz");
    let o = airlock(d, &["verify", "b.tar.gz", "--trust", "mk.pub"]);
    expect_code(&o, 0);
    // minisign -S -t with the same key, message and trusted comment writes the same bytes.
    let out = sh(
        d,
        "mkdir x && tar xzf b.tar.gz -C x && cd x\n\
         sig=$(ls signatures/*.minisig)\n\
         tc=$(sed -n 's/^trusted comment: //p' \"$sig\")\n\
         minisign -S -s ../mk.key -m manifest.json -t \"$tc\" -x ../theirs.minisig >/dev/null\n\
         cmp \"$sig\" ../theirs.minisig && echo IDENTICAL\n\
         minisign -Vm manifest.json -x \"$sig\" -p ../mk.pub >/dev/null && echo VERIFIED\n\
         sha256sum -c --quiet SHA256SUMS && echo SUMS\n\
         tar tzf ../b.tar.gz | head -3",
    );
    assert!(
        out.contains("IDENTICAL") && out.contains("VERIFIED") && out.contains("SUMS"),
        "{out}"
    );
    let first: Vec<&str> = out
        .lines()
        .rev()
        .take(3)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    assert_eq!(first[0], "manifest.json");
    assert!(first[1].starts_with("signatures/") && first[1].ends_with(".minisig"));
    assert_eq!(first[2], "SHA256SUMS");
}

/// The insider's re-encoding: GNU tar repacks a signed bundle's exact entries, in
/// order, with modes 6777, owner root and mtime 2100 (and airlock's gzip framing).
/// Every hash and the bundle id stay the same; airlock refuses it, and the README's
/// manual auditor path neither misses it nor creates setuid files as root.
#[test]
fn a_bundle_re_encoded_by_gnu_tar_with_setuid_modes_is_refused_and_the_manual_path_is_safe() {
    let t = tempdir();
    let d = t.path();
    keygen(d, "rm");
    let src = reference_source(d, "directus");
    pack(d, &src, "rm.key", "b.tar.gz");
    sh(
        d,
        "mkdir x && tar xzf b.tar.gz -C x && tar tzf b.tar.gz > list\n\
         tar -C x --format=ustar --numeric-owner --owner=0 --group=0 --mode=6777 \
             --mtime=@4102444800 --no-recursion -cf re.tar -T list",
    );
    let re = std::fs::read(d.join("re.tar")).unwrap();
    std::fs::write(d.join("re.tar.gz"), util::craft::gzip(&re)).unwrap();
    // Same entries, same bytes inside: the manifest (so the bundle id) is unchanged.
    let listing = sh(d, "tar --numeric-owner --utc -tvzf re.tar.gz");
    assert!(listing.contains("-rwsrwsrwx 0/0"), "{listing}");
    let id = sh(
        d,
        "tar xzf re.tar.gz -O manifest.json | sha256sum | cut -d' ' -f1",
    );
    let good = json(&airlock(
        d,
        &["--json", "verify", "b.tar.gz", "--trust", "rm.pub"],
    ));
    assert_eq!(good["bundle_id"].as_str().unwrap(), id.trim());

    for cmd in [
        vec!["verify", "re.tar.gz", "--trust", "rm.pub"],
        vec!["inspect", "re.tar.gz"],
        vec!["extract", "re.tar.gz", "--trust", "rm.pub", "--to", "out"],
    ] {
        let o = airlock(d, &cmd);
        expect_code(&o, 4);
        assert!(
            stderr(&o)
                .contains("manifest.json: tar header mode is \"0006777\", pack writes \"0000644\""),
            "{cmd:?}: {}",
            stderr(&o)
        );
    }
    assert!(!d.join("out").exists());

    // The README's manual path: the listing check prints every re-encoded entry (and
    // nothing for the real bundle), and extracting as root creates no setuid file.
    let check = "tar --numeric-owner --utc -tvzf BUNDLE | grep -v '^-rw-r--r-- 0/0 .* 1970-01-01 00:00 ' || true";
    assert_eq!(sh(d, &check.replace("BUNDLE", "b.tar.gz")), "");
    let flagged = sh(d, &check.replace("BUNDLE", "re.tar.gz"));
    assert_eq!(
        flagged.lines().count(),
        listing.lines().count(),
        "{flagged}"
    );
    sh(
        d,
        "mkdir manual && tar --no-same-owner --no-same-permissions -xzf re.tar.gz -C manual 2>/dev/null",
    );
    let special = sh(d, "find manual -perm /7000");
    assert_eq!(special, "", "the manual path created setuid/setgid files");
    if sh(d, "id -u").trim() == "0" {
        // Why the flags: GNU tar run by root restores the archive's modes and owners.
        sh(d, "mkdir plain && tar xzf re.tar.gz -C plain 2>/dev/null");
        assert_ne!(sh(d, "find plain -perm -4000"), "", "expected setuid files");
    }
}

/// `extract` writes files 0644 and directories 0755, whatever the umask: the manifest
/// has no modes, so none come from the archive or the environment.
#[test]
fn extract_writes_0644_files_and_0755_directories_whatever_the_umask() {
    let t = tempdir();
    let d = t.path();
    keygen(d, "rm");
    let src = reference_source(d, "directus");
    pack(d, &src, "rm.key", "b.tar.gz");
    for (umask, out) in [("000", "open"), ("077", "private")] {
        let o = airlock_umask(
            d,
            umask,
            &["extract", "b.tar.gz", "--trust", "rm.pub", "--to", out],
        );
        expect_code(&o, 0);
        let mut files = 0;
        for e in walkdir::WalkDir::new(d.join(out)) {
            let e = e.unwrap();
            let want = if e.file_type().is_dir() { 0o755 } else { 0o644 };
            assert_mode(e.path(), want);
            files += usize::from(e.file_type().is_file());
        }
        assert!(files > 5, "{umask}: {files} files");
    }
}
