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
    let mut child = Command::new("minisign")
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
