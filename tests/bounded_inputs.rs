//! Bounded inputs (issue 46, finding 11): every file airlock reads whole has a cap
//! (`airlock_base::bounded`, listed in docs/security.md), judged before the file is
//! read. Each input here is a sparse file just over its cap (fast: nothing is on disk)
//! and is refused with the cap named, the usage exit code (2) or, for evidence an
//! audit judges, a failed check; nothing is written. A 1 GiB one is refused with the
//! process's peak memory (its own `ru_maxrss`, from `wait4`) far below the file: the
//! cap is checked before reading, not after.

mod util;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use util::*;

/// A sparse file of `size` bytes (nothing written to disk; reads give zeros).
fn sparse(path: &Path, size: u64) -> PathBuf {
    std::fs::File::create(path).unwrap().set_len(size).unwrap();
    path.to_path_buf()
}

/// The caps, as `airlock_base::bounded` sets them (docs/security.md, "Bounded inputs").
use airlock_base::bounded;
const LEDGER_EXPORT: u64 = bounded::LEDGER_EXPORT.bytes;
const RECEIPT: u64 = bounded::RECEIPT.bytes;
const TRUST_POLICY: u64 = bounded::TRUST_POLICY.bytes;
const PUBLIC_KEY: u64 = bounded::PUBLIC_KEY.bytes;
const SECRET_KEY: u64 = bounded::SECRET_KEY.bytes;
const PASSPHRASE: u64 = bounded::PASSPHRASE.bytes;
const SPEC: u64 = bounded::SPEC.bytes;
const FINGERPRINT: u64 = bounded::FINGERPRINT.bytes;

/// The most memory a refusal may take: airlock's own footprint, far below the inputs.
const PEAK_BOUND_KIB: i64 = 64 * 1024;

/// A signed bundle `b.tar.gz` and its signer's key `rm.pub`, in `dir`.
fn bundle(dir: &Path) {
    keygen(dir, "rm");
    let src = MiniSource::new(
        dir,
        "x",
        "SELECT 'g'::text AS gate, true AS ready, ''::text AS reason",
        &[("one", "CREATE TABLE app.t (i int);\n", false)],
        "DROP TABLE app.t;\n",
    );
    pack(dir, &src.dir, "rm.key", "b.tar.gz");
}

/// Run airlock in `dir` and return its output with its peak resident memory in KiB
/// (`ru_maxrss` of that child alone, from `wait4`).
// The child is reaped by `wait4` (which gives its rusage), not `Child::wait`.
#[allow(clippy::zombie_processes)]
fn measured(dir: &Path, args: &[&str]) -> (i32, String, String, i64) {
    let mut c = airlock_command(dir, args);
    let child = c
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run airlock");
    let pid = child.id() as i32;
    let (mut out, mut err) = (String::new(), String::new());
    let (mut so, mut se) = (child.stdout.unwrap(), child.stderr.unwrap());
    let reader = std::thread::spawn(move || {
        std::io::Read::read_to_string(&mut se, &mut err).unwrap();
        err
    });
    std::io::Read::read_to_string(&mut so, &mut out).unwrap();
    let err = reader.join().unwrap();
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid, "wait4");
    assert!(libc::WIFEXITED(status), "airlock did not exit normally");
    (libc::WEXITSTATUS(status), out, err, usage.ru_maxrss)
}

/// `args` (one of them the input) refused: exit `code`, `needle` in the output, and
/// the peak memory far below the input's size.
#[track_caller]
fn refused(dir: &Path, args: &[&str], code: i32, needle: &str) {
    let (got, out, err, peak_kib) = measured(dir, args);
    assert_eq!(got, code, "exit code\n{out}\n{err}");
    assert!(
        out.contains(needle) || err.contains(needle),
        "{needle:?} not said:\n{out}\n{err}"
    );
    assert!(
        peak_kib < PEAK_BOUND_KIB,
        "peak memory {peak_kib} KiB reading an input over its cap"
    );
}

#[test]
fn a_ledger_export_over_its_cap_is_refused_before_it_is_read() {
    let t = tempdir();
    let d = t.path();
    bundle(d);
    for size in [LEDGER_EXPORT + 1, 1 << 30] {
        sparse(&d.join("ledger.json"), size);
        refused(
            d,
            &[
                "audit",
                "b.tar.gz",
                "--trust",
                "rm.pub",
                "--ledger",
                "ledger.json",
            ],
            2,
            &format!("over the cap of {LEDGER_EXPORT} bytes for a ledger export"),
        );
    }
}

#[test]
fn a_receipt_over_its_cap_fails_the_audit_before_it_is_read() {
    let t = tempdir();
    let d = t.path();
    bundle(d);
    for size in [RECEIPT + 1, 1 << 30] {
        sparse(&d.join("r.json"), size);
        refused(
            d,
            &[
                "--json",
                "audit",
                "b.tar.gz",
                "--trust",
                "rm.pub",
                "--receipt",
                "r.json",
            ],
            4,
            &format!("over the cap of {RECEIPT} bytes for a receipt"),
        );
    }
}

#[test]
fn a_trust_policy_or_public_key_over_its_cap_is_refused_before_it_is_read() {
    let t = tempdir();
    let d = t.path();
    bundle(d);
    let store = d.join("store");
    std::fs::create_dir(&store).unwrap();
    std::fs::copy(d.join("rm.pub"), store.join("rm.pub")).unwrap();
    for size in [TRUST_POLICY + 1, 1 << 30] {
        sparse(&store.join("trust.toml"), size);
        refused(
            d,
            &["verify", "b.tar.gz", "--trust", "store"],
            2,
            &format!("over the cap of {TRUST_POLICY} bytes for a trust store's trust.toml"),
        );
    }
    for size in [PUBLIC_KEY + 1, 1 << 30] {
        sparse(&d.join("big.pub"), size);
        refused(
            d,
            &["verify", "b.tar.gz", "--trust", "big.pub"],
            2,
            &format!("over the cap of {PUBLIC_KEY} bytes for a public key file"),
        );
    }
}

#[test]
fn a_bundle_toml_over_its_cap_is_refused_and_nothing_is_packed() {
    let t = tempdir();
    let d = t.path();
    bundle(d);
    for size in [SPEC + 1, 1 << 30] {
        sparse(&d.join("src/bundle.toml"), size);
        let needle = format!("over the cap of {SPEC} bytes for bundle.toml");
        refused(d, &["lint", "src"], 2, &needle);
        refused(
            d,
            &["pack", "src", "--key", "rm.key", "--out", "big.tar.gz"],
            2,
            &needle,
        );
        assert!(!d.join("big.tar.gz").exists());
        assert_eq!(leftovers(d), Vec::<String>::new());
    }
}

#[test]
fn a_secret_key_or_passphrase_file_over_its_cap_is_refused_and_nothing_is_written() {
    let t = tempdir();
    let d = t.path();
    bundle(d);
    let key = sparse(&d.join("big.key"), SECRET_KEY + 1);
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    refused(
        d,
        &["pack", "src", "--key", "big.key", "--out", "k.tar.gz"],
        2,
        &format!("over the cap of {SECRET_KEY} bytes for a secret key file"),
    );
    assert!(!d.join("k.tar.gz").exists());
    for size in [PASSPHRASE + 1, 1 << 30] {
        sparse(&d.join("pass.txt"), size);
        refused(
            d,
            &["keygen", "--out", "new", "--passphrase-file", "pass.txt"],
            2,
            &format!("over the cap of {PASSPHRASE} bytes for a passphrase file"),
        );
        assert!(!d.join("new.key").exists() && !d.join("new.pub").exists());
    }
}

#[test]
fn a_saved_fingerprint_over_its_cap_is_refused_before_it_is_read() {
    let t = tempdir();
    let d = t.path();
    std::fs::write(d.join("a.json"), "{}").unwrap();
    for size in [FINGERPRINT + 1, 1 << 30] {
        sparse(&d.join("b.json"), size);
        refused(
            d,
            &["fingerprint", "--diff", "b.json", "a.json"],
            2,
            &format!("over the cap of {FINGERPRINT} bytes for a saved fingerprint"),
        );
    }
}

#[test]
fn a_fifo_is_cut_at_the_cap_not_read_to_its_end() {
    let t = tempdir();
    let d = t.path();
    let fifo = d.join("pass.fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    // A writer that never stops: the read must end at cap + 1 bytes on its own.
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut f = std::fs::OpenOptions::new().write(true).open(fifo).unwrap();
            let block = vec![b'x'; 1 << 16];
            while std::io::Write::write_all(&mut f, &block).is_ok() {}
        })
    };
    refused(
        d,
        &["keygen", "--out", "new", "--passphrase-file", "pass.fifo"],
        2,
        &format!("longer than that, over the cap of {PASSPHRASE} bytes for a passphrase file"),
    );
    writer.join().unwrap();
    assert!(!d.join("new.key").exists());
}

#[test]
fn every_cap_is_in_the_security_docs_table() {
    let docs = std::fs::read_to_string(repo().join("docs/security.md")).unwrap();
    let section = docs
        .split("**Bounded inputs**")
        .nth(1)
        .and_then(|s| s.split("**A hostile migrations folder**").next())
        .expect("docs/security.md has its Bounded inputs section");
    for cap in bounded::ALL {
        let size = match cap.bytes {
            b if b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
            b => format!("{} KiB", b >> 10),
        };
        let row = section
            .lines()
            .filter(|l| l.starts_with('|'))
            .find(|l| l.split('|').nth(2).map(str::trim) == Some(size.as_str()));
        assert!(row.is_some(), "{} ({size}) is not in the table", cap.what);
    }
}

#[test]
fn a_sql_file_named_in_several_roles_over_its_cap_is_a_lint_problem_and_nothing_is_packed() {
    let t = tempdir();
    let d = t.path();
    keygen(d, "rm");
    std::fs::create_dir_all(d.join("src/sql")).unwrap();
    write(
        &d.join("src/bundle.toml"),
        "[bundle]\nname = \"m\"\nversion = \"1\"\nsequence = 1\n\n[target]\ndatabase = \"x\"\n\n[[tier]]\nname = \"a\"\nfiles = [\"sql/a.sql\"]\n\n[[tier]]\nname = \"b\"\nfiles = [\"sql/a.sql\"]\nonline = true\n",
    );
    // A transactional and an online tier: the file is judged in two roles.
    let cap = bounded::SQL_MANY_ROLES.bytes;
    sparse(&d.join("src/sql/a.sql"), cap + 1);
    let needle = format!("over {cap} bytes, the cap for a SQL file named in several roles");
    refused(d, &["lint", "src"], 2, &needle);
    refused(
        d,
        &["pack", "src", "--key", "rm.key", "--out", "m.tar.gz"],
        2,
        &needle,
    );
    assert!(!d.join("m.tar.gz").exists());
}
