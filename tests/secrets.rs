//! Secret key files: created 0600 whatever the umask (encrypted or not, and when
//! `--force` replaces a file that was readable by others), and refused by every
//! command that loads one (`pack`, `sign`, `apply --sign-receipt`) when group or world
//! can read them, before a passphrase is asked for and before anything is written.

mod util;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use util::*;

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn chmod(p: &Path, m: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
}

/// keygen with umask 000, so only airlock itself decides the mode.
fn keygen_umask0(dir: &Path, args: &[&str]) {
    let mut c = Command::new(bin());
    c.current_dir(dir)
        .args(["keygen"])
        .args(args)
        .env("AIRLOCK_PASSPHRASE", "pw");
    // SAFETY: the closure only calls umask(2), which is async-signal-safe (it runs
    // between fork and exec).
    unsafe {
        c.pre_exec(|| {
            libc::umask(0);
            Ok(())
        });
    }
    let o = c.output().unwrap();
    expect_code(&o, 0);
}

#[test]
fn secret_keys_are_created_0600_even_with_umask_000() {
    let t = tempdir();
    let d = t.path();
    keygen_umask0(d, &["--out", "enc"]);
    keygen_umask0(d, &["--out", "plain", "--unencrypted"]);
    assert_eq!(mode(&d.join("enc.key")), 0o600);
    assert_eq!(mode(&d.join("plain.key")), 0o600);
    // --force over a world-readable key: the new file is 0600 from its first byte.
    chmod(&d.join("plain.key"), 0o644);
    keygen_umask0(d, &["--out", "plain", "--unencrypted", "--force"]);
    assert_eq!(mode(&d.join("plain.key")), 0o600);
}

#[test]
fn group_or_world_readable_secret_keys_are_refused_by_every_command() {
    let t = tempdir();
    let d = t.path();
    keygen(d, "rm");
    let enc = airlock_env(
        d,
        &["keygen", "--out", "enc"],
        &[("AIRLOCK_PASSPHRASE", "pw")],
    );
    expect_code(&enc, 0);
    let src = MiniSource::new(
        d,
        "x",
        "SELECT true AS ready",
        &[("t1", "SELECT 1;", false)],
        "SELECT 1;",
    );
    let s = src.dir.to_str().unwrap();
    expect_code(
        &airlock(d, &["pack", s, "--key", "rm.key", "--out", "b.tar.gz"]),
        0,
    );
    let bundle = std::fs::read(d.join("b.tar.gz")).unwrap();
    let mut refused = 0;
    for key in ["rm.key", "enc.key"] {
        for m in [
            0o640,
            0o604,
            0o644,
            0o660,
            0o606,
            0o610,
            0o601,
            0o700 | 0o044,
        ] {
            chmod(&d.join(key), m);
            // No passphrase is offered: the mode check comes before any prompt.
            let o = airlock(d, &["pack", s, "--key", key, "--out", "c.tar.gz"]);
            expect_code(&o, 2);
            assert!(
                stderr(&o).contains("readable by others") && stderr(&o).contains("chmod 600"),
                "{key} {m:o}: {}",
                stderr(&o)
            );
            assert!(!d.join("c.tar.gz").exists());
            let o = airlock(d, &["sign", "b.tar.gz", "--key", key]);
            expect_code(&o, 2);
            assert!(stderr(&o).contains("chmod 600"), "{}", stderr(&o));
            assert_eq!(std::fs::read(d.join("b.tar.gz")).unwrap(), bundle);
            let o = airlock(
                d,
                &[
                    "apply",
                    "b.tar.gz",
                    "--trust",
                    "rm.pub",
                    "--db",
                    "dbname=x",
                    "--param",
                    "code=x",
                    "--sign-receipt",
                    key,
                ],
            );
            expect_code(&o, 2);
            assert!(stderr(&o).contains("chmod 600"), "{}", stderr(&o));
            refused += 3;
        }
        // Owner-only modes work (0400 too).
        for m in [0o600, 0o400] {
            chmod(&d.join(key), m);
            let o = airlock_env(
                d,
                &["pack", s, "--key", key, "--out", "ok.tar.gz", "--force"],
                &[("AIRLOCK_PASSPHRASE", "pw")],
            );
            expect_code(&o, 0);
        }
    }
    assert_eq!(refused, 48);
}
