//! Keys where people keep them (issue 70): every `--key` takes a key on a PKCS#11
//! token (a throwaway SoftHSM2 token, made with OpenSC's pkcs11-tool or `airlock
//! keygen --pkcs11`) or one a private ssh-agent holds; the signatures are minisign's
//! (plain `minisign -V` checks them); no secret key file is written anywhere; and every
//! failure (wrong PIN, missing module, an agent without the key, a key of another type)
//! is a clear error with nothing written.

mod util;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use util::*;

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const PIN: &str = "1234";

/// A SoftHSM2 token of its own (its config and store in a temp dir), labelled `label`.
struct Token {
    dir: tempfile::TempDir,
    label: String,
    pin: String,
}

impl Token {
    fn new(label: &str) -> Token {
        Token::with_pin(label, PIN)
    }

    /// A token whose user PIN is `pin` (one no other text of a run could contain, for
    /// the tests that prove a PIN is never shown).
    fn with_pin(label: &str, pin: &str) -> Token {
        let dir = tempdir();
        std::fs::create_dir_all(dir.path().join("store")).unwrap();
        std::fs::write(
            dir.path().join("softhsm2.conf"),
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                dir.path().join("store").display()
            ),
        )
        .unwrap();
        let t = Token {
            dir,
            label: label.into(),
            pin: pin.into(),
        };
        t.init_another(label);
        t
    }

    /// Initialise one more token in this store (SoftHSM2's free slot), labelled `label`,
    /// with this token's PIN.
    fn init_another(&self, label: &str) {
        self.tool(
            "softhsm2-util",
            &[
                "--init-token",
                "--free",
                "--label",
                label,
                "--pin",
                &self.pin,
                "--so-pin",
                "5678",
            ],
        );
    }

    fn conf(&self) -> String {
        self.dir.path().join("softhsm2.conf").display().to_string()
    }

    fn tool(&self, name: &str, args: &[&str]) -> String {
        let o = tool(name)
            .args(args)
            .env("SOFTHSM2_CONF", self.conf())
            .output()
            .unwrap();
        assert!(o.status.success(), "{name} {args:?}: {}", stderr(&o));
        stdout(&o)
    }

    /// A key pair made by OpenSC's pkcs11-tool: `key_type` as it spells them
    /// (EC:edwards25519, rsa:2048, EC:prime256v1).
    fn keypair(&self, object: &str, id: &str, key_type: &str) {
        self.tool(
            "pkcs11-tool",
            &[
                "--module",
                MODULE,
                "--token-label",
                &self.label,
                "--login",
                "--pin",
                &self.pin,
                "--keypairgen",
                "--key-type",
                key_type,
                "--label",
                object,
                "--id",
                id,
            ],
        );
    }

    /// The URI of `object` on this token, with the PIN in the URI.
    fn uri(&self, object: &str) -> String {
        format!(
            "pkcs11:token={};object={object}?module-path={MODULE}&pin-value={}",
            self.label, self.pin
        )
    }

    /// Mark the user PIN locked in the token's store, as a token that counted too many
    /// wrong PINs does. SoftHSM2 never locks a PIN itself (after any number of wrong
    /// ones it only says "count low"), but it keeps the token's flags in its store
    /// (`token.object`, attribute CKA_OS_TOKENFLAGS 0x8000534b: an 8-byte big-endian
    /// type, 8-byte kind, 8-byte value) and reports them as C_GetTokenInfo's flags.
    fn lock_user_pin(&self) {
        const CKA_OS_TOKENFLAGS: [u8; 8] = [0, 0, 0, 0, 0x80, 0, 0x53, 0x4b];
        const CKF_USER_PIN_LOCKED: u64 = 0x0004_0000;
        let store = self.dir.path().join("store");
        let token = std::fs::read_dir(&store).unwrap().next().unwrap().unwrap();
        let path = token.path().join("token.object");
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes
            .windows(8)
            .position(|w| w == CKA_OS_TOKENFLAGS)
            .expect("the token's flags in its store")
            + 16;
        let flags = u64::from_be_bytes(bytes[at..at + 8].try_into().unwrap());
        bytes[at..at + 8].copy_from_slice(&(flags | CKF_USER_PIN_LOCKED).to_be_bytes());
        std::fs::write(&path, bytes).unwrap();
        let o = self.tool("pkcs11-tool", &["--module", MODULE, "--list-token-slots"]);
        assert!(o.contains("user PIN locked"), "{o}");
    }

    fn env(&self) -> [(&'static str, String); 1] {
        [("SOFTHSM2_CONF", self.conf())]
    }
}

/// A PIN file only its owner reads, as airlock asks of one.
fn chmod_600(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// `airlock ARGS` in `dir` with these environment variables.
fn run(dir: &Path, args: &[&str], env: &[(&str, String)]) -> Output {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    airlock_env(dir, args, &env)
}

/// A private ssh-agent (`ssh-agent -D -a SOCK`, ended on drop) and its socket.
struct Agent {
    child: Child,
    sock: PathBuf,
    _dir: tempfile::TempDir,
}

impl Agent {
    fn start() -> Agent {
        let dir = tempdir();
        let sock = dir.path().join("agent.sock");
        let mut child = tool("ssh-agent")
            .args(["-D", "-a"])
            .arg(&sock)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // It prints SSH_AUTH_SOCK=… once it listens.
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.contains("SSH_AUTH_SOCK"), "ssh-agent said {line:?}");
        Agent {
            child,
            sock,
            _dir: dir,
        }
    }

    fn env(&self) -> [(&'static str, String); 1] {
        [("SSH_AUTH_SOCK", self.sock.display().to_string())]
    }

    /// `ssh-keygen -t TYPE` into `dir/NAME` (test setup: the agent's own key file),
    /// `ssh-add`ed; returns its `ssh-agent:SHA256:…` name.
    fn add(&self, dir: &Path, name: &str, key_type: &str) -> String {
        let path = dir.join(name);
        let o = tool("ssh-keygen")
            .args(["-q", "-t", key_type, "-N", "", "-C", name, "-f"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(o.status.success(), "ssh-keygen: {}", stderr(&o));
        let o = tool("ssh-add")
            .arg(&path)
            .env("SSH_AUTH_SOCK", &self.sock)
            .output()
            .unwrap();
        assert!(o.status.success(), "ssh-add: {}", stderr(&o));
        // The agent holds it now: the key file is not needed again.
        std::fs::remove_file(&path).unwrap();
        let o = tool("ssh-keygen")
            .args(["-l", "-E", "sha256", "-f"])
            .arg(path.with_extension("pub"))
            .output()
            .unwrap();
        let fp = stdout(&o)
            .split_whitespace()
            .nth(1)
            .expect("fingerprint")
            .to_string();
        format!("ssh-agent:{fp}")
    }
}

/// The SSH wire format's `string`.
fn ssh_string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s);
}

impl Agent {
    /// A FIDO-backed `sk-ssh-ed25519@openssh.com` key `ssh-add`ed to the agent (adding
    /// one needs no authenticator: the agent keeps its key handle, and would ask the
    /// device only when signing). The key file is written by hand in OpenSSH's format
    /// (PROTOCOL.key), around the public key of a plain Ed25519 key `ssh-keygen` made.
    fn add_sk(&self, dir: &Path) -> String {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        let plain = dir.join("plain");
        let o = tool("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&plain)
            .output()
            .unwrap();
        assert!(o.status.success(), "ssh-keygen: {}", stderr(&o));
        let text = std::fs::read_to_string(plain.with_extension("pub")).unwrap();
        let blob = b64.decode(text.split_whitespace().nth(1).unwrap()).unwrap();
        let pk = &blob[blob.len() - 32..];
        let kind = b"sk-ssh-ed25519@openssh.com";
        let mut public = vec![];
        for part in [&kind[..], pk, b"ssh:"] {
            ssh_string(&mut public, part);
        }
        let mut private = [7u32.to_be_bytes(), 7u32.to_be_bytes()].concat();
        for part in [&kind[..], pk, b"ssh:"] {
            ssh_string(&mut private, part);
        }
        private.push(1); // flags: user presence
        ssh_string(&mut private, &[0x5a; 64]); // the key handle
        ssh_string(&mut private, b""); // reserved
        ssh_string(&mut private, b"fido");
        let mut pad = 1u8;
        while private.len() % 8 != 0 {
            private.push(pad);
            pad += 1;
        }
        let mut body = b"openssh-key-v1\0".to_vec();
        for part in [&b"none"[..], b"none", b""] {
            ssh_string(&mut body, part);
        }
        body.extend_from_slice(&1u32.to_be_bytes());
        ssh_string(&mut body, &public);
        ssh_string(&mut body, &private);
        let encoded = b64.encode(&body);
        let lines: Vec<&str> = encoded
            .as_bytes()
            .chunks(70)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        let path = dir.join("fido");
        std::fs::write(
            &path,
            format!(
                "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----\n",
                lines.join("\n")
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let o = tool("ssh-add")
            .arg(&path)
            .env("SSH_AUTH_SOCK", &self.sock)
            .output()
            .unwrap();
        assert!(o.status.success(), "ssh-add: {}", stderr(&o));
        std::fs::remove_file(&path).unwrap();
        // ssh-agent's own list names its fingerprint.
        let o = tool("ssh-add")
            .args(["-l", "-E", "sha256"])
            .env("SSH_AUTH_SOCK", &self.sock)
            .output()
            .unwrap();
        let line = stdout(&o)
            .lines()
            .find(|l| l.contains("ED25519-SK"))
            .expect("the agent lists the sk key")
            .to_string();
        format!("ssh-agent:{}", line.split_whitespace().nth(1).unwrap())
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every file under `d`, relative, sorted.
fn files(d: &Path) -> Vec<String> {
    let mut out: Vec<String> = walkdir::WalkDir::new(d)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.path().strip_prefix(d).unwrap().display().to_string())
        .collect();
    out.sort();
    out
}

/// No minisign or OpenSSH secret key file anywhere under `d`.
fn assert_no_secret_key(d: &Path) {
    for f in files(d) {
        let text = std::fs::read_to_string(d.join(&f)).unwrap_or_default();
        assert!(
            !airlock::minisign::SecretKey::is_secret_key_text(&text)
                && !text.contains("PRIVATE KEY"),
            "{f} holds a secret key"
        );
    }
}

fn mini(d: &Path) -> String {
    let s = MiniSource::new(
        &d.join("src"),
        "x",
        "SELECT true AS ready",
        &[("t1", "SELECT 1;", false)],
        "SELECT 1;",
    );
    s.dir.to_str().unwrap().to_string()
}

/// `airlock keygen --from KEY --out PREFIX`: the key id it prints.
fn public_from(d: &Path, key: &str, out: &str, env: &[(&str, String)]) -> String {
    let o = run(d, &["--json", "keygen", "--from", key, "--out", out], env);
    expect_code(&o, 0);
    let j = json(&o);
    assert!(j["secret_key"].is_null(), "{j}");
    j["key_id"].as_str().unwrap().to_string()
}

#[test]
fn a_bundle_packed_on_a_token_verifies_with_airlock_and_plain_minisign() {
    let tok = Token::new("release");
    tok.keypair("rm", "01", "EC:edwards25519");
    let t = tempdir();
    let d = t.path();
    let key = tok.uri("rm");
    let id = public_from(d, &key, "rm", &tok.env());
    assert_eq!(key_id_of(&d.join("rm.pub")), id);
    // The same key, asked again, gives the same key id.
    assert_eq!(public_from(d, &key, "again", &tok.env()), id);
    assert!(!d.join("rm.key").exists() && !d.join("again.key").exists());
    let src = mini(d);
    let o = run(
        d,
        &["pack", &src, "--key", &key, "--out", "b.tar.gz"],
        &tok.env(),
    );
    expect_code(&o, 0);
    expect_code(&airlock(d, &["verify", "b.tar.gz", "--trust", "rm.pub"]), 0);
    // minisign itself checks the token's signature, trusted comment included.
    let x = d.join("x");
    std::fs::create_dir(&x).unwrap();
    let o = Command::new("tar")
        .args(["xzf", "../b.tar.gz"])
        .current_dir(&x)
        .output()
        .unwrap();
    assert!(o.status.success());
    let sig = format!("signatures/{id}.minisig");
    let o = tool("minisign")
        .args(["-V", "-p", "../rm.pub", "-m", "manifest.json", "-x", &sig])
        .current_dir(&x)
        .output()
        .unwrap();
    assert!(o.status.success(), "minisign -V: {}", stderr(&o));
    assert!(stdout(&o).contains("Trusted comment:"), "{}", stdout(&o));
    std::fs::remove_dir_all(&x).unwrap();
    // A second key on the token co-signs (`airlock sign`, the bundle rewritten).
    tok.keypair("co", "02", "EC:edwards25519");
    public_from(d, &tok.uri("co"), "co", &tok.env());
    let o = run(
        d,
        &["sign", "b.tar.gz", "--key", &tok.uri("co")],
        &tok.env(),
    );
    expect_code(&o, 0);
    expect_code(&airlock(d, &["verify", "b.tar.gz", "--trust", "co.pub"]), 0);
    assert_no_secret_key(d);
}

/// `pack --key KEY` is refused with `code`, saying `says`, and writes nothing: no
/// bundle, no temp file.
#[track_caller]
fn pack_refused(d: &Path, key: &str, env: &[(&str, String)], code: i32, says: &str) {
    let src = mini(d);
    let before = files(d);
    let o = run(d, &["pack", &src, "--key", key, "--out", "b.tar.gz"], env);
    expect_code(&o, code);
    assert!(stderr(&o).contains(says), "{key}: {}", stderr(&o));
    assert!(
        stderr(&o).contains("hint") || stderr(&o).contains("next"),
        "{}",
        stderr(&o)
    );
    assert_eq!(files(d), before, "{key}: something was written");
    assert!(leftovers(d).is_empty());
}

#[test]
fn token_failures_are_clear_and_write_nothing() {
    let tok = Token::new("release");
    tok.keypair("rm", "01", "EC:edwards25519");
    tok.keypair("rsa", "02", "rsa:2048");
    tok.keypair("p256", "03", "EC:prime256v1");
    tok.tool(
        "pkcs11-tool",
        &[
            "--module",
            MODULE,
            "--token-label",
            "release",
            "--login",
            "--pin",
            PIN,
            "--keypairgen",
            "--key-type",
            "EC:edwards25519",
            "--label",
            "always",
            "--id",
            "04",
            "--always-auth",
        ],
    );
    let t = tempdir();
    let d = t.path();
    let env = tok.env();
    let uri = |rest: &str| format!("pkcs11:token=release;{rest}");
    // A wrong PIN: a usage error naming the token.
    pack_refused(
        d,
        &uri(&format!("object=rm?module-path={MODULE}&pin-value=9999")),
        &env,
        2,
        "refused the PIN",
    );
    // The PIN from a file (pin-source), wrong too.
    std::fs::write(d.join("pin"), "0000\n").unwrap();
    chmod_600(&d.join("pin"));
    let pin_file = d.join("pin").display().to_string();
    pack_refused(
        d,
        &uri(&format!(
            "object=rm?module-path={MODULE}&pin-source=file:{pin_file}"
        )),
        &env,
        2,
        "refused the PIN",
    );
    // No PIN in the URI, and stdin no terminal: nothing to ask.
    pack_refused(
        d,
        &uri(&format!("object=rm?module-path={MODULE}")),
        &env,
        2,
        "needs a PIN and stdin is not a terminal",
    );
    // A module that is not there; no module at all.
    pack_refused(
        d,
        &uri("object=rm?module-path=/nonexistent/libnothing.so&pin-value=1234"),
        &env,
        2,
        "cannot load the PKCS#11 module",
    );
    pack_refused(
        d,
        &uri("object=rm?pin-value=1234"),
        &env,
        2,
        "AIRLOCK_PKCS11_MODULE",
    );
    // A key that is not on the token; a token that is not there.
    pack_refused(d, &tok.uri("nosuch"), &env, 2, "no such key on the token");
    pack_refused(
        d,
        &format!("pkcs11:token=other;object=rm?module-path={MODULE}&pin-value={PIN}"),
        &env,
        2,
        "no such token",
    );
    // Keys of other types are refused by name (exit 4: a key that cannot sign).
    pack_refused(d, &tok.uri("rsa"), &env, 4, "an RSA key");
    pack_refused(d, &tok.uri("p256"), &env, 4, "ECDSA");
    // A key that wants the PIN again before each signature (a YubiKey's slot 9c).
    pack_refused(d, &tok.uri("always"), &env, 2, "CKA_ALWAYS_AUTHENTICATE");
    // A malformed URI.
    pack_refused(d, "pkcs11:token=release", &env, 2, "names no key");
    // keygen --from with a wrong PIN writes no .pub.
    let o = run(
        d,
        &[
            "keygen",
            "--from",
            &uri(&format!("object=rm?module-path={MODULE}&pin-value=9999")),
            "--out",
            "k",
        ],
        &env,
    );
    expect_code(&o, 2);
    assert!(!d.join("k.pub").exists());
}

/// A token whose user PIN is locked (too many wrong PINs) is refused before any PIN
/// is tried, with how to unblock it; pack, approve and keygen --from write nothing.
#[test]
fn a_locked_token_is_refused_with_how_to_unblock_it() {
    let tok = Token::new("locked");
    tok.keypair("rm", "01", "EC:edwards25519");
    let t = tempdir();
    let d = t.path();
    let env = tok.env();
    // Before: the key signs (so what follows is the lock, nothing else).
    let pubkey = public_from(d, &tok.uri("rm"), "rm", &env);
    assert!(!pubkey.is_empty());
    std::fs::remove_file(d.join("rm.pub")).unwrap();
    tok.lock_user_pin();
    let src = mini(d);
    let before = files(d);
    let o = run(
        d,
        &["pack", &src, "--key", &tok.uri("rm"), "--out", "b.tar.gz"],
        &env,
    );
    expect_code(&o, 2);
    assert!(stderr(&o).contains("is locked"), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("security officer PIN"),
        "{}",
        stderr(&o)
    );
    assert_eq!(files(d), before, "pack wrote something");
    let o = run(d, &["keygen", "--from", &tok.uri("rm"), "--out", "k"], &env);
    expect_code(&o, 2);
    assert!(stderr(&o).contains("is locked"), "{}", stderr(&o));
    assert_eq!(files(d), before, "keygen --from wrote something");
}

#[test]
fn the_module_comes_from_airlock_pkcs11_module_and_the_pin_from_a_file() {
    let tok = Token::new("release");
    tok.keypair("rm", "01", "EC:edwards25519");
    let t = tempdir();
    let d = t.path();
    std::fs::write(d.join("pin"), format!("{PIN}\n")).unwrap();
    chmod_600(&d.join("pin"));
    let key = format!(
        "pkcs11:token=release;id=%01?pin-source=file:{}",
        d.join("pin").display()
    );
    let env = [
        ("SOFTHSM2_CONF", tok.conf()),
        ("AIRLOCK_PKCS11_MODULE", MODULE.to_string()),
    ];
    public_from(d, &key, "rm", &env);
    let src = mini(d);
    expect_code(
        &run(d, &["pack", &src, "--key", &key, "--out", "b.tar.gz"], &env),
        0,
    );
    expect_code(&airlock(d, &["verify", "b.tar.gz", "--trust", "rm.pub"]), 0);
}

#[test]
fn with_no_pin_in_the_uri_the_terminal_asks_for_it() {
    let tok = Token::new("release");
    tok.keypair("rm", "01", "EC:edwards25519");
    let t = tempdir();
    let d = t.path();
    let key = format!("pkcs11:token=release;object=rm?module-path={MODULE}");
    let conf = tok.conf();
    let env = [("SOFTHSM2_CONF", conf.as_str())];
    let src = mini(d);
    let args = [
        "pack",
        src.as_str(),
        "--key",
        key.as_str(),
        "--out",
        "b.tar.gz",
    ];
    // A wrong PIN typed: refused, nothing written.
    let o = airlock_tty_env(d, &args, "9999\n", &env);
    expect_code(&o, 2);
    let shown = stdout(&o);
    assert!(shown.contains("PIN for token \"release\""), "{shown}");
    assert!(shown.contains("refused the PIN"), "{shown}");
    assert!(!d.join("b.tar.gz").exists());
    // The right one: packed.
    let o = airlock_tty_env(d, &args, &format!("{PIN}\n"), &env);
    expect_code(&o, 0);
    public_from(d, &tok.uri("rm"), "rm", &tok.env());
    expect_code(&airlock(d, &["verify", "b.tar.gz", "--trust", "rm.pub"]), 0);
}

#[test]
fn keygen_pkcs11_makes_a_non_extractable_key_on_the_token_and_it_signs() {
    let tok = Token::new("release");
    let t = tempdir();
    let d = t.path();
    let key =
        format!("pkcs11:token=release;object=made;id=%0a?module-path={MODULE}&pin-value={PIN}");
    let o = run(
        d,
        &["--json", "keygen", "--pkcs11", &key, "--out", "made"],
        &tok.env(),
    );
    expect_code(&o, 0);
    let id = json(&o)["key_id"].as_str().unwrap().to_string();
    assert_eq!(files(d), vec!["made.pub".to_string()]);
    // The token says: sensitive, never extractable.
    let listed = tok.tool(
        "pkcs11-tool",
        &[
            "--module",
            MODULE,
            "--token-label",
            "release",
            "--login",
            "--pin",
            PIN,
            "-O",
        ],
    );
    assert!(listed.contains("made"), "{listed}");
    let private = listed
        .split("Private Key Object")
        .nth(1)
        .expect("a private key object");
    assert!(private.contains("always sensitive"), "{listed}");
    assert!(private.contains("never extractable"), "{listed}");
    // A second keygen for the same label refuses and makes nothing.
    let o = run(
        d,
        &["keygen", "--pkcs11", &key, "--out", "twice"],
        &tok.env(),
    );
    expect_code(&o, 2);
    assert!(!d.join("twice.pub").exists());
    // It signs, and the .pub keygen --from writes for it is the same.
    assert_eq!(public_from(d, &key, "from", &tok.env()), id);
    let src = mini(d);
    expect_code(
        &run(
            d,
            &["pack", &src, "--key", &key, "--out", "b.tar.gz"],
            &tok.env(),
        ),
        0,
    );
    expect_code(
        &airlock(d, &["verify", "b.tar.gz", "--trust", "made.pub"]),
        0,
    );
}

#[test]
fn agent_keys_sign_and_every_agent_failure_writes_nothing() {
    let agent = Agent::start();
    let t = tempdir();
    let d = t.path();
    let keys = tempdir();
    let ed = agent.add(keys.path(), "ed", "ed25519");
    let rsa = agent.add(keys.path(), "rsa", "rsa");
    let ecdsa = agent.add(keys.path(), "ecdsa", "ecdsa");
    let fido = agent.add_sk(keys.path());
    public_from(d, &ed, "ed", &agent.env());
    let src = mini(d);
    expect_code(
        &run(
            d,
            &["pack", &src, "--key", &ed, "--out", "b.tar.gz"],
            &agent.env(),
        ),
        0,
    );
    expect_code(&airlock(d, &["verify", "b.tar.gz", "--trust", "ed.pub"]), 0);
    std::fs::remove_file(d.join("b.tar.gz")).unwrap();
    // Keys of other types in the agent: refused by name.
    pack_refused(d, &rsa, &agent.env(), 4, "ssh-rsa");
    pack_refused(d, &ecdsa, &agent.env(), 4, "ecdsa-sha2-nistp256");
    pack_refused(d, &fido, &agent.env(), 4, "sk-ssh-ed25519");
    let o = run(
        d,
        &["keygen", "--from", &fido, "--out", "fido"],
        &agent.env(),
    );
    expect_code(&o, 4);
    assert!(!d.join("fido.pub").exists());
    // A key the agent does not hold: the message lists what it holds.
    let other = "ssh-agent:SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU";
    pack_refused(d, other, &agent.env(), 2, "does not hold the key");
    // No agent at all: SSH_AUTH_SOCK unset, or naming no socket.
    pack_refused(d, &ed, &[], 2, "SSH_AUTH_SOCK is not set");
    let gone = [("SSH_AUTH_SOCK", d.join("no.sock").display().to_string())];
    pack_refused(d, &ed, &gone, 2, "cannot connect");
    // Not a fingerprint.
    pack_refused(d, "ssh-agent:MD5:aa:bb", &agent.env(), 2, "ssh-keygen -l");
    assert_no_secret_key(d);
}

/// The demo's story with no secret key file anywhere: the release manager's key and
/// the store's root on a token, two approvers' keys in ssh-agent, the operator's
/// receipt signed through the token, against a real database.
#[test]
fn the_whole_story_runs_on_a_token_and_an_agent() {
    let db = TestDb::new("hwkeys");
    db.exec("CREATE SCHEMA app");
    let tok = Token::new("hsm");
    for (object, id) in [("rm", "01"), ("root", "02"), ("op", "03")] {
        tok.keypair(object, id, "EC:edwards25519");
    }
    let agent = Agent::start();
    let keys = tempdir();
    let alice = agent.add(keys.path(), "alice", "ed25519");
    let bob = agent.add(keys.path(), "bob", "ed25519");
    let t = tempdir();
    let d = t.path();
    let env = [
        ("SOFTHSM2_CONF", tok.conf()),
        ("SSH_AUTH_SOCK", agent.sock.display().to_string()),
    ];
    for object in ["rm", "root", "op"] {
        public_from(d, &tok.uri(object), object, &env);
    }
    let a = public_from(d, &alice, "alice", &env);
    let b = public_from(d, &bob, "bob", &env);
    let ok = |args: &[&str]| {
        let o = run(d, args, &env);
        expect_code(&o, 0);
        stdout(&o)
    };
    // The store: rm releases, alice and bob approve, op signs receipts, and the
    // token's root signs the store itself.
    ok(&["trust", "add", "trust", "rm.pub", "--name", "Rita"]);
    ok(&["trust", "add", "trust", "alice.pub", "--role", "approver"]);
    ok(&["trust", "add", "trust", "bob.pub", "--role", "approver"]);
    ok(&["trust", "add", "trust", "op.pub", "--role", "operator"]);
    ok(&["trust", "add", "trust", "root.pub", "--role", "root"]);
    ok(&["trust", "set", "trust", "--root-threshold", "1"]);
    // A wrong PIN signs nothing: the store is as it was.
    let wrong = format!("pkcs11:token=hsm;object=root?module-path={MODULE}&pin-value=0000");
    let before = files(&d.join("trust"));
    expect_code(
        &run(d, &["trust", "sign", "trust", "--key", &wrong], &env),
        2,
    );
    assert_eq!(files(&d.join("trust")), before);
    ok(&["trust", "sign", "trust", "--key", &tok.uri("root")]);
    let listed = ok(&["trust", "list", "trust"]);
    assert!(listed.contains("signed by 1 of the 1"), "{listed}");
    // A bundle whose gated tier asks two approvals, packed on the token.
    let s = MiniSource::new(
        &d.join("src"),
        &db.name,
        "SELECT true AS ready",
        &[
            ("structure", "CREATE TABLE app.s(i int);", false),
            ("seed", "CREATE TABLE app.seeded(i int);", true),
        ],
        "DROP TABLE IF EXISTS app.seeded; DROP TABLE IF EXISTS app.s;",
    );
    let toml = s.dir.join("bundle.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(&toml, format!("{text}\n[ratification]\nthreshold = 2\n")).unwrap();
    let src = s.dir.to_str().unwrap();
    ok(&["pack", src, "--key", &tok.uri("rm"), "--out", "b.tar.gz"]);
    ok(&["verify", "b.tar.gz", "--trust", "trust"]);
    std::fs::create_dir(d.join("approvals")).unwrap();
    // An approver whose key the agent does not hold writes no approval.
    let o = run(
        d,
        &[
            "approve",
            "b.tar.gz",
            "--trust",
            "trust",
            "--key",
            "ssh-agent:SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU",
            "--param",
            "code=APR-1",
            "--out",
            "approvals/x.approval",
            "--yes",
        ],
        &env,
    );
    expect_code(&o, 2);
    assert!(
        stderr(&o).contains("does not hold the key"),
        "{}",
        stderr(&o)
    );
    assert!(files(&d.join("approvals")).is_empty());
    for (who, key) in [("alice", &alice), ("bob", &bob)] {
        let out = format!("approvals/{who}.approval");
        ok(&[
            "approve",
            "b.tar.gz",
            "--trust",
            "trust",
            "--key",
            key,
            "--param",
            "code=APR-1",
            "--out",
            &out,
            "--yes",
        ]);
        // Plain minisign checks the agent's signature of the approval.
        let o = tool("minisign")
            .args(["-V", "-p", &format!("{who}.pub"), "-m", &out])
            .current_dir(d)
            .output()
            .unwrap();
        assert!(o.status.success(), "minisign -V {out}: {}", stderr(&o));
    }
    // Both agent approvals count toward the quorum of 2.
    let db_args = ["--trust", "trust", "--db", &db.conn()].map(String::from);
    let with_db = |args: &[&str]| {
        let mut a = vec!["--json"];
        a.extend(args);
        a.extend(db_args.iter().map(String::as_str));
        run(d, &a, &env)
    };
    let o = with_db(&[
        "gate",
        "b.tar.gz",
        "--param",
        "code=APR-1",
        "--approval",
        "approvals",
    ]);
    expect_code(&o, 0);
    let q = &json(&o)["ratification"];
    assert_eq!(q["counted"], 2, "{q}");
    assert_eq!(q["met"], true, "{q}");
    let counted: Vec<&str> = q["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["key_id"].as_str().unwrap())
        .collect();
    assert!(
        counted.contains(&a.as_str()) && counted.contains(&b.as_str()),
        "{q}"
    );
    // The operator applies; the receipt is signed through the token.
    let o = with_db(&[
        "apply",
        "b.tar.gz",
        "--param",
        "code=APR-1",
        "--approval",
        "approvals",
        "--sign-receipt",
        &tok.uri("op"),
        "--receipt",
        "r.json",
        "--yes",
    ]);
    expect_code(&o, 0);
    assert_eq!(
        db.scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'app'"),
        "2"
    );
    let o = tool("minisign")
        .args(["-V", "-p", "op.pub", "-m", "r.json"])
        .current_dir(d)
        .output()
        .unwrap();
    assert!(o.status.success(), "minisign -V r.json: {}", stderr(&o));
    // The rollback's receipt too.
    let o = with_db(&[
        "rollback",
        "b.tar.gz",
        "--sign-receipt",
        &tok.uri("op"),
        "--receipt",
        "rb.json",
        "--yes",
    ]);
    expect_code(&o, 0);
    let o = tool("minisign")
        .args(["-V", "-p", "op.pub", "-m", "rb.json"])
        .current_dir(d)
        .output()
        .unwrap();
    assert!(o.status.success(), "minisign -V rb.json: {}", stderr(&o));
    assert_no_secret_key(d);
}

#[test]
fn a_receipt_key_that_cannot_open_stops_apply_before_it_changes_anything() {
    let db = TestDb::new("hwkeys_receipt");
    db.exec("CREATE SCHEMA app");
    let tok = Token::new("hsm");
    tok.keypair("rm", "01", "EC:edwards25519");
    let t = tempdir();
    let d = t.path();
    let env = tok.env();
    public_from(d, &tok.uri("rm"), "rm", &env);
    let s = MiniSource::new(
        &d.join("src"),
        &db.name,
        "SELECT true AS ready",
        &[("structure", "CREATE TABLE app.s(i int);", false)],
        "DROP TABLE IF EXISTS app.s;",
    );
    let src = s.dir.to_str().unwrap();
    expect_code(
        &run(
            d,
            &["pack", src, "--key", &tok.uri("rm"), "--out", "b.tar.gz"],
            &env,
        ),
        0,
    );
    let wrong = format!("pkcs11:token=hsm;object=rm?module-path={MODULE}&pin-value=9999");
    let before = files(d);
    let mut args = vec!["--json", "apply", "b.tar.gz", "--param", "code=X"];
    args.extend(["--sign-receipt", &wrong, "--receipt", "r.json", "--yes"]);
    args.extend(["--trust", "rm.pub"]);
    let conn = db.conn();
    args.extend(["--db", &conn]);
    let o = run(d, &args, &env);
    expect_code(&o, 2);
    assert!(stderr(&o).contains("refused the PIN") || stdout(&o).contains("refused the PIN"));
    assert_eq!(files(d), before, "something was written");
    assert_eq!(db.ledger_rows(), "none");
    assert_eq!(
        db.scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'app'"),
        "0"
    );
}

/// One message of the agent protocol off `s`: its body (type byte first), or `None`
/// when the peer hung up.
fn agent_message(s: &mut impl std::io::Read) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).ok()?;
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).ok()?;
    Some(body)
}

fn send_agent_message(s: &mut impl std::io::Write, body: &[u8]) -> std::io::Result<()> {
    s.write_all(&(body.len() as u32).to_be_bytes())?;
    s.write_all(body)
}

/// A device that fails while signing, as a token pulled out mid-run or a confirmation
/// declined looks to airlock: a real Unix socket speaking the real ssh-agent protocol
/// (draft-miller-ssh-agent), which forwards every request to a real `ssh-agent` and
/// answers each SIGN_REQUEST (13) with SSH_AGENT_FAILURE (5) instead. It lists the real
/// agent's keys, so airlock opens the key as usual; only the signature fails. A thread
/// of the test serves it; it ends with the test process.
struct FailingAgent {
    sock: PathBuf,
    _dir: tempfile::TempDir,
}

impl FailingAgent {
    fn start(real: &Path) -> FailingAgent {
        let dir = tempdir();
        let sock = dir.path().join("failing.sock");
        let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let real = real.to_path_buf();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(mut client) = client else { return };
                while let Some(body) = agent_message(&mut client) {
                    let answer = if body.first() == Some(&13) {
                        vec![5]
                    } else {
                        let mut agent = std::os::unix::net::UnixStream::connect(&real).unwrap();
                        send_agent_message(&mut agent, &body).unwrap();
                        agent_message(&mut agent).unwrap_or_else(|| vec![5])
                    };
                    if send_agent_message(&mut client, &answer).is_err() {
                        break;
                    }
                }
            }
        });
        FailingAgent { sock, _dir: dir }
    }

    fn env(&self) -> [(&'static str, String); 1] {
        [("SSH_AUTH_SOCK", self.sock.display().to_string())]
    }
}

impl Agent {
    /// Lock the agent with a password (SSH_AGENTC_LOCK, 22: what `ssh-add -x` sends):
    /// a locked agent lists no keys and signs nothing until `ssh-add -X`.
    fn lock(&self) {
        let mut s = std::os::unix::net::UnixStream::connect(&self.sock).unwrap();
        let mut body = vec![22];
        ssh_string(&mut body, b"lock-password");
        send_agent_message(&mut s, &body).unwrap();
        assert_eq!(agent_message(&mut s), Some(vec![6]), "the agent locked");
        let o = tool("ssh-add")
            .arg("-l")
            .env("SSH_AUTH_SOCK", &self.sock)
            .output()
            .unwrap();
        assert!(!o.status.success(), "a locked agent lists no key");
    }
}

/// A bundle for `db` whose one tier asks one approval ([ratification]), packed with
/// `key` into `d/b.tar.gz`.
fn ratified_bundle(d: &Path, db: &str, key: &str, env: &[(&str, String)]) {
    let s = MiniSource::new(
        &d.join("src"),
        db,
        "SELECT true AS ready",
        &[("structure", "CREATE TABLE app.s(i int);", true)],
        "DROP TABLE IF EXISTS app.s;",
    );
    let toml = s.dir.join("bundle.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(&toml, format!("{text}\n[ratification]\nthreshold = 1\n")).unwrap();
    let src = s.dir.to_str().unwrap();
    expect_code(
        &run(d, &["pack", src, "--key", key, "--out", "b.tar.gz"], env),
        0,
    );
}

/// A PIN no other text of a run contains (no digest, id or time can).
const SECRET_PIN: &str = "Zq-pin-8675309";

/// Neither stream of `o` holds the PIN; returns both, for what else is asserted.
#[track_caller]
fn never_shows_the_pin(what: &str, o: &Output) -> String {
    let both = format!("{}\n{}", stdout(o), stderr(o));
    assert!(!both.contains(SECRET_PIN), "{what} shows the PIN:\n{both}");
    both
}

/// Every message that quotes a `--key` with `pin-value=` in it (approve's role and
/// trust-store errors and their hints, apply/rollback/reissue/plan --sign-receipt,
/// plan's row and --json evidence, trust add and trust id, keygen, a malformed URI, a
/// mistyped one, one read as a file) shows `pin-value=***`, never the PIN, on stdout,
/// stderr and in --json; and each refusal writes nothing.
#[test]
fn a_pin_in_the_uri_is_never_shown_in_any_message_hint_plan_row_or_json() {
    let db = TestDb::new("hwkeys_pin");
    db.exec("CREATE SCHEMA app");
    let tok = Token::with_pin("hsm", SECRET_PIN);
    for (object, id) in [("rm", "01"), ("op", "03"), ("stray", "42")] {
        tok.keypair(object, id, "EC:edwards25519");
    }
    let t = tempdir();
    let d = t.path();
    let env = tok.env();
    for object in ["rm", "op"] {
        public_from(d, &tok.uri(object), object, &env);
    }
    let ok = |args: &[&str]| expect_code(&run(d, args, &env), 0);
    ok(&["trust", "add", "trust", "rm.pub"]);
    ok(&["trust", "add", "trust", "op.pub", "--role", "operator"]);
    ratified_bundle(d, &db.name, &tok.uri("rm"), &env);
    let conn = db.conn();
    let before = files(d);
    // Each refused command, human and --json: exit 2, the PIN nowhere, the spec
    // quoted masked where it is quoted, nothing written.
    let refused = |what: &str, args: &[&str], shows_masked: bool| {
        for json_flag in [false, true] {
            let mut a: Vec<&str> = if json_flag { vec!["--json"] } else { vec![] };
            a.extend(args);
            let o = run(d, &a, &env);
            let shown = never_shows_the_pin(what, &o);
            assert!(code(&o) != 0, "{what}: {shown}");
            if shows_masked {
                assert!(shown.contains("pin-value=***"), "{what}: {shown}");
            }
            if json_flag {
                let j = json(&o);
                assert_eq!(j["ok"], false, "{what}: {j}");
            }
            assert_eq!(files(d), before, "{what} wrote something");
        }
    };
    let approve = |key: &str| -> Vec<String> {
        [
            "approve",
            "b.tar.gz",
            "--trust",
            "trust",
            "--key",
            key,
            "--param",
            "code=X",
            "--out",
            "a.approval",
            "--yes",
        ]
        .map(String::from)
        .to_vec()
    };
    let call = |what: &str, v: Vec<String>, masked: bool| {
        let args: Vec<&str> = v.iter().map(String::as_str).collect();
        refused(what, &args, masked);
    };
    // approve: a key with another role; a key the store does not list (and its hint).
    call("approve (role)", approve(&tok.uri("rm")), true);
    call(
        "approve (not in the store)",
        approve(&tok.uri("stray")),
        false,
    );
    // A pin-value put in the URI's path by mistake: malformed, still masked.
    let in_path = format!("pkcs11:token=hsm;object=rm;pin-value={SECRET_PIN}?module-path={MODULE}");
    call("approve (pin in the path)", approve(&in_path), true);
    // apply, rollback, reissue and plan with a receipt key of another role.
    for verb in ["apply", "rollback", "reissue", "plan"] {
        let mut v: Vec<String> = [verb, "b.tar.gz", "--trust", "trust", "--db", &conn]
            .map(String::from)
            .to_vec();
        if verb != "reissue" {
            v.extend(["--param".into(), "code=X".into()]);
        }
        if verb == "apply" || verb == "rollback" {
            v.push("--yes".into());
        }
        v.extend(["--sign-receipt".into(), tok.uri("rm")]);
        call(verb, v, true);
    }
    assert_eq!(db.ledger_rows(), "none");
    // trust add and trust id with a token's key for a .pub.
    for v in [
        vec![
            "trust",
            "add",
            "trust2",
            &tok.uri("rm"),
            "--role",
            "approver",
        ],
        vec!["trust", "id", &tok.uri("rm")],
    ] {
        refused(&v[..2].join(" "), &v, false);
    }
    assert!(!d.join("trust2").exists());
    // A mistyped scheme; a URI with a blank before it (read as a file path).
    let typo = format!("pkcs11token=hsm?pin-value={SECRET_PIN}");
    refused(
        "keygen --from (typo)",
        &["keygen", "--from", &typo, "--out", "k"],
        true,
    );
    let blank = format!(" {}", tok.uri("rm"));
    call("approve (a file path)", approve(&blank), true);
    // What succeeds shows no PIN either: keygen's `sign with:`, pack, trust sign.
    let op = tok.uri("op");
    for json_flag in [false, true] {
        let out = format!("k{json_flag}");
        let mut a = if json_flag { vec!["--json"] } else { vec![] };
        a.extend(["keygen", "--from", &op, "--out", &out]);
        let o = run(d, &a, &env);
        expect_code(&o, 0);
        never_shows_the_pin("keygen --from", &o);
    }
}

/// Every `*.receipt.json` and `*.minisig` under `dir` (none when it is missing).
fn receipt_files_in(dir: &Path) -> Vec<String> {
    if !dir.exists() {
        return vec![];
    }
    files(dir)
        .into_iter()
        .filter(|f| f.ends_with(".receipt.json") || f.ends_with(".minisig"))
        .collect()
}

/// The token or agent fails while signing a receipt, after COMMIT: the run is
/// committed (exit 0), and no unsigned receipt is written anywhere (a signed one was
/// asked for); the warning says what was and was not written and names `airlock
/// reissue … --sign-receipt KEY`, which then writes the signed receipt, and the audit
/// passes with no stray unsigned file.
#[test]
fn a_device_that_fails_signing_the_receipt_after_commit_leaves_no_unsigned_receipt() {
    let db = TestDb::new("hwkeys_failsign");
    db.exec("CREATE SCHEMA app");
    let agent = Agent::start();
    let keys = tempdir();
    let rm = agent.add(keys.path(), "rm", "ed25519");
    let op = agent.add(keys.path(), "op", "ed25519");
    let failing = FailingAgent::start(&agent.sock);
    let t = tempdir();
    let d = t.path();
    public_from(d, &rm, "rm", &agent.env());
    public_from(d, &op, "op", &agent.env());
    for (file, role) in [("rm.pub", "release"), ("op.pub", "operator")] {
        expect_code(
            &run(d, &["trust", "add", "trust", file, "--role", role], &[]),
            0,
        );
    }
    let s = MiniSource::new(
        &d.join("src"),
        &db.name,
        "SELECT true AS ready",
        &[("structure", "CREATE TABLE app.s(i int);", false)],
        "DROP TABLE IF EXISTS app.s;",
    );
    let src = s.dir.to_str().unwrap();
    expect_code(
        &run(
            d,
            &["pack", src, "--key", &rm, "--out", "b.tar.gz"],
            &agent.env(),
        ),
        0,
    );
    let conn = db.conn();
    let deploy = |verb: &str, json_flag: bool| {
        let mut a = if json_flag { vec!["--json"] } else { vec![] };
        a.extend([verb, "b.tar.gz", "--trust", "trust", "--db", &conn]);
        a.extend(["--param", "code=X", "--sign-receipt", &op, "--yes"]);
        run(d, &a, &failing.env())
    };
    let fallback = state_dir().join("receipts");
    let ours = || -> Vec<String> {
        receipt_files_in(&fallback)
            .into_iter()
            .filter(|f| f.contains(&db.name))
            .collect()
    };
    // apply: committed, exit 0; the warning says what happened.
    let o = deploy("apply", false);
    expect_code(&o, 0);
    let out = stdout(&o);
    assert!(out.contains("IS committed"), "{out}");
    assert!(out.contains("not signed"), "{out}");
    assert!(out.contains("No receipt file was written"), "{out}");
    let reissue_cmd = format!("airlock reissue b.tar.gz --trust trust --sign-receipt {op}");
    assert!(out.contains(&reissue_cmd), "{out}");
    assert_eq!(
        db.scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'app'"),
        "1"
    );
    assert_eq!(receipt_files_in(&d.join("receipts")), Vec::<String>::new());
    assert_eq!(
        ours(),
        Vec::<String>::new(),
        "an unsigned receipt in the state dir"
    );
    // rollback, --json: the same, in the document.
    let o = deploy("rollback", true);
    expect_code(&o, 0);
    let j = json(&o);
    assert!(j["receipt_file"].is_null(), "{j}");
    let e = j["receipt_error"].as_str().expect("receipt_error");
    assert!(e.contains("not signed") && e.contains(&reissue_cmd), "{e}");
    assert_eq!(receipt_files_in(&d.join("receipts")), Vec::<String>::new());
    assert_eq!(ours(), Vec::<String>::new());
    // reissue while the device still fails: exit 1, said as a signing failure,
    // nothing written or recorded.
    let reissue = |env: &[(&str, String)]| {
        run(
            d,
            &[
                "--json",
                "reissue",
                "b.tar.gz",
                "--trust",
                "trust",
                "--db",
                &conn,
                "--sign-receipt",
                &op,
            ],
            env,
        )
    };
    let o = reissue(&failing.env());
    expect_code(&o, 1);
    let e = json(&o)["error"].as_str().unwrap().to_string();
    assert!(e.starts_with("cannot sign:"), "{e}");
    assert_eq!(receipt_files_in(&d.join("receipts")), Vec::<String>::new());
    assert_eq!(ours(), Vec::<String>::new());
    // The token works again: reissue writes both signed receipts, and the audit
    // passes (no stray unsigned receipt keeps it UNVERIFIED).
    let o = reissue(&agent.env());
    expect_code(&o, 0);
    let written = receipt_files_in(&d.join("receipts"));
    assert_eq!(written.len(), 4, "{written:?}");
    for r in written.iter().filter(|f| f.ends_with(".json")) {
        let o = tool("minisign")
            .args(["-V", "-p", "op.pub", "-m", &format!("receipts/{r}")])
            .current_dir(d)
            .output()
            .unwrap();
        assert!(o.status.success(), "minisign -V {r}: {}", stderr(&o));
    }
    let o = run(
        d,
        &[
            "audit",
            "b.tar.gz",
            "--trust",
            "trust",
            "--receipt",
            "receipts",
            "--db",
            &conn,
        ],
        &[],
    );
    assert!(
        stdout(&o).contains("AUDIT PASS"),
        "{}\n{}",
        stdout(&o),
        stderr(&o)
    );
    expect_code(&o, 0);
}

/// `keygen --pkcs11` checks that PREFIX.pub can be written before it makes a key on
/// the token: a bad --out directory makes nothing there. A key already on the token
/// is refused with the way to its .pub (`airlock keygen --from URI --out PREFIX`).
#[test]
fn keygen_pkcs11_checks_where_the_pub_goes_before_it_makes_a_key_on_the_token() {
    let tok = Token::new("release");
    let t = tempdir();
    let d = t.path();
    let env = tok.env();
    let key = format!("pkcs11:token=release;object=fresh?module-path={MODULE}&pin-value={PIN}");
    let objects = || {
        tok.tool(
            "pkcs11-tool",
            &[
                "--module",
                MODULE,
                "--token-label",
                "release",
                "--login",
                "--pin",
                PIN,
                "-O",
            ],
        )
    };
    std::fs::write(d.join("ptk.pub"), "not a directory\n").unwrap();
    for out in ["/proc/nope/x", "ptk.pub/x"] {
        let o = run(d, &["keygen", "--pkcs11", &key, "--out", out], &env);
        assert!(code(&o) != 0, "{out}: {}", stdout(&o));
        let err = stderr(&o);
        assert!(err.contains("no key was made"), "{out}: {err}");
        assert!(err.contains("hint:"), "{out}: {err}");
        assert!(
            !objects().contains("fresh"),
            "{out}: a key was made on the token"
        );
    }
    // Made once; asked again, the hint names keygen --from (without the PIN).
    let o = run(d, &["keygen", "--pkcs11", &key, "--out", "fresh"], &env);
    expect_code(&o, 0);
    let o = run(d, &["keygen", "--pkcs11", &key, "--out", "again"], &env);
    expect_code(&o, 2);
    let err = stderr(&o);
    let from = format!("airlock keygen --from 'pkcs11:token=release;object=fresh?module-path={MODULE}' --out again");
    assert!(err.contains(&from), "{err}");
    assert!(!d.join("again.pub").exists());
}

/// An approver whose key is in an agent (or on a token) and not in the store is told
/// to make the .pub with `keygen --from` and send that, never to `trust add` the key
/// spec with `.pub` glued on; `trust add` given such a spec points to keygen --from
/// and writes nothing.
#[test]
fn a_token_or_agent_key_not_in_the_store_is_told_to_make_its_pub_with_keygen_from() {
    let agent = Agent::start();
    let keys = tempdir();
    let rm = agent.add(keys.path(), "rm", "ed25519");
    let carol = agent.add(keys.path(), "carol", "ed25519");
    let t = tempdir();
    let d = t.path();
    let env = agent.env();
    public_from(d, &rm, "rm", &env);
    expect_code(&run(d, &["trust", "add", "trust", "rm.pub"], &[]), 0);
    ratified_bundle(d, "hwkeys_nodb", &rm, &env);
    let o = run(
        d,
        &[
            "approve",
            "b.tar.gz",
            "--trust",
            "trust",
            "--key",
            &carol,
            "--param",
            "code=X",
            "--out",
            "c.approval",
            "--yes",
        ],
        &env,
    );
    expect_code(&o, 2);
    let err = stderr(&o);
    let hint = err
        .lines()
        .find(|l| l.starts_with("hint:"))
        .expect("a hint");
    assert!(
        hint.contains(&format!("airlock keygen --from {carol} --out PREFIX")),
        "{hint}"
    );
    assert!(
        hint.contains("airlock trust add trust PREFIX.pub --role approver"),
        "{hint}"
    );
    assert!(!hint.contains(&format!("{carol}.pub")), "{hint}");
    assert!(!d.join("c.approval").exists());
    let before = files(d);
    let o = run(
        d,
        &["trust", "add", "trust", &carol, "--role", "approver"],
        &env,
    );
    expect_code(&o, 2);
    let err = stderr(&o);
    assert!(!err.contains("cannot read"), "{err}");
    assert!(
        err.contains(&format!("airlock keygen --from {carol} --out PREFIX")),
        "{err}"
    );
    assert_eq!(files(d), before);
}

/// `text` holds `prefix` and then both tokens, "solo" and "second", in the module's
/// slot order (which SoftHSM2 draws from the tokens' serials), and nothing else.
fn lists_both(text: &str, prefix: &str) -> bool {
    [r#""solo", "second")"#, r#""second", "solo")"#]
        .iter()
        .any(|both| text.contains(&format!("{prefix}{both}")))
}

/// A URI without token= on a module whose store also holds SoftHSM2's uninitialised
/// free slot: only initialised tokens are candidates, so one token is the one; with
/// two, the message lists both, with no blank name and plain words.
#[test]
fn a_uri_without_token_counts_only_initialised_tokens() {
    let tok = Token::new("solo");
    tok.keypair("k1", "01", "EC:edwards25519");
    let t = tempdir();
    let d = t.path();
    let env = tok.env();
    let key = format!("pkcs11:object=k1?module-path={MODULE}&pin-value={PIN}");
    public_from(d, &key, "k1", &env);
    tok.init_another("second");
    let o = run(d, &["keygen", "--from", &key, "--out", "k2"], &env);
    expect_code(&o, 2);
    let err = stderr(&o);
    assert!(lists_both(&err, "2 tokens match the URI ("), "{err}");
    assert!(!err.contains("the token:"), "{err}");
    let o = run(
        d,
        &[
            "keygen",
            "--from",
            &format!("pkcs11:token=other;object=k1?module-path={MODULE}&pin-value={PIN}"),
            "--out",
            "k3",
        ],
        &env,
    );
    expect_code(&o, 2);
    let err = stderr(&o);
    assert!(lists_both(&err, "(the module's tokens: "), "{err}");
    assert!(!d.join("k2.pub").exists() && !d.join("k3.pub").exists());
}

/// At the PIN prompt, an empty answer or end of input (Ctrl-D) cancels: exit 2,
/// nothing written, and the token is not asked (no wrong-PIN try used up).
#[test]
fn an_empty_pin_or_ctrl_d_at_the_prompt_cancels_without_asking_the_token() {
    let tok = Token::new("release");
    tok.keypair("rm", "01", "EC:edwards25519");
    let t = tempdir();
    let d = t.path();
    let key = format!("pkcs11:token=release;object=rm?module-path={MODULE}");
    let conf = tok.conf();
    let env = [("SOFTHSM2_CONF", conf.as_str())];
    let src = mini(d);
    let args = [
        "pack",
        src.as_str(),
        "--key",
        key.as_str(),
        "--out",
        "b.tar.gz",
    ];
    for typed in ["\n", "\u{4}"] {
        let o = airlock_tty_env(d, &args, typed, &env);
        let shown = stdout(&o);
        expect_code(&o, 2);
        assert!(
            shown.contains("cancelled: no PIN given"),
            "{typed:?}: {shown}"
        );
        assert!(shown.contains("nothing was written"), "{typed:?}: {shown}");
        assert!(!shown.contains("refused the PIN"), "{typed:?}: {shown}");
        assert!(!shown.contains("inserted"), "{typed:?}: {shown}");
        assert!(!d.join("b.tar.gz").exists());
    }
}

/// `airlock sign` with a device that fails while signing says "cannot sign", with a
/// hint, as pack and approve do (not "bundle verification failed"), and leaves the
/// bundle as it was; `trust sign` says it with a hint too.
#[test]
fn sign_and_trust_sign_report_a_device_that_fails_while_signing_with_a_hint() {
    let agent = Agent::start();
    let keys = tempdir();
    let rm = agent.add(keys.path(), "rm", "ed25519");
    let co = agent.add(keys.path(), "co", "ed25519");
    let failing = FailingAgent::start(&agent.sock);
    let t = tempdir();
    let d = t.path();
    let src = mini(d);
    expect_code(
        &run(
            d,
            &["pack", &src, "--key", &rm, "--out", "b.tar.gz"],
            &agent.env(),
        ),
        0,
    );
    let bundle = std::fs::read(d.join("b.tar.gz")).unwrap();
    let o = run(d, &["sign", "b.tar.gz", "--key", &co], &failing.env());
    expect_code(&o, 1);
    let err = stderr(&o);
    assert!(err.starts_with("error: cannot sign:"), "{err}");
    assert!(!err.contains("verification failed"), "{err}");
    assert!(
        err.contains("hint:") && err.contains("nothing was written"),
        "{err}"
    );
    assert_eq!(std::fs::read(d.join("b.tar.gz")).unwrap(), bundle);
    assert!(leftovers(d).is_empty());
    // trust sign: a versioned store with co as its root.
    public_from(d, &co, "co", &agent.env());
    let ok = |args: &[&str]| expect_code(&run(d, args, &[]), 0);
    ok(&["trust", "add", "trust", "co.pub", "--role", "root"]);
    ok(&["trust", "set", "trust", "--root-threshold", "1"]);
    let before = files(&d.join("trust"));
    let o = run(d, &["trust", "sign", "trust", "--key", &co], &failing.env());
    expect_code(&o, 1);
    let err = stderr(&o);
    assert!(err.contains("cannot sign"), "{err}");
    assert!(
        err.contains("hint:") && err.contains("nothing was written"),
        "{err}"
    );
    assert_eq!(files(&d.join("trust")), before);
}

/// A locked agent lists no keys: the hint says so (`ssh-add -X` unlocks it), not only
/// to add the key file (which, in the docs' flow, was deleted).
#[test]
fn a_locked_agent_is_named_as_a_reason_it_lists_no_key() {
    let agent = Agent::start();
    let keys = tempdir();
    let ed = agent.add(keys.path(), "ed", "ed25519");
    agent.lock();
    let t = tempdir();
    let d = t.path();
    pack_refused(d, &ed, &agent.env(), 2, "it lists no key");
    let src = mini(d);
    let o = run(
        d,
        &["pack", &src, "--key", &ed, "--out", "b.tar.gz"],
        &agent.env(),
    );
    let err = stderr(&o);
    assert!(err.contains("ssh-add -X"), "{err}");
}

/// The smaller messages: a wrong PIN in plain words; a module path from
/// AIRLOCK_PKCS11_MODULE said to come from there; `--from` with neither a key file
/// nor a device key; a PIN file others can read refused (chmod 600), as a secret
/// key file with loose modes is.
#[test]
fn pin_and_module_messages_say_plainly_what_is_wrong() {
    let tok = Token::new("release");
    tok.keypair("rm", "01", "EC:edwards25519");
    let t = tempdir();
    let d = t.path();
    let env = tok.env();
    let wrong = format!("pkcs11:token=release;object=rm?module-path={MODULE}&pin-value=9999");
    let o = run(d, &["keygen", "--from", &wrong, "--out", "k"], &env);
    expect_code(&o, 2);
    let err = stderr(&o);
    assert!(err.contains("wrong PIN"), "{err}");
    assert!(!err.contains("PinIncorrect"), "{err}");
    // The module named by the environment.
    let from_env = [
        ("SOFTHSM2_CONF", tok.conf()),
        (
            "AIRLOCK_PKCS11_MODULE",
            "/nonexistent/libnothing.so".to_string(),
        ),
    ];
    let no_module = format!("pkcs11:token=release;object=rm?pin-value={PIN}");
    let o = run(
        d,
        &["keygen", "--from", &no_module, "--out", "k"],
        &from_env,
    );
    expect_code(&o, 2);
    let err = stderr(&o);
    assert!(err.contains("AIRLOCK_PKCS11_MODULE"), "{err}");
    // A mistyped scheme.
    let o = run(
        d,
        &["keygen", "--from", "pkcs11token=release", "--out", "k"],
        &env,
    );
    expect_code(&o, 2);
    let err = stderr(&o);
    assert!(!err.contains("already has its .pub"), "{err}");
    assert!(err.contains("neither a key file nor"), "{err}");
    // A PIN file others can read.
    let pin = d.join("pin");
    std::fs::write(&pin, format!("{PIN}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pin, std::fs::Permissions::from_mode(0o644)).unwrap();
    let key = format!(
        "pkcs11:token=release;object=rm?module-path={MODULE}&pin-source=file:{}",
        pin.display()
    );
    let o = run(d, &["keygen", "--from", &key, "--out", "k"], &env);
    expect_code(&o, 2);
    let err = stderr(&o);
    assert!(err.contains("readable by others"), "{err}");
    assert!(
        err.contains(&format!("chmod 600 {}", pin.display())),
        "{err}"
    );
    assert!(!d.join("k.pub").exists());
    std::fs::set_permissions(&pin, std::fs::Permissions::from_mode(0o600)).unwrap();
    public_from(d, &key, "k", &env);
}

/// An ssh-agent socket that takes every connection and never answers (a hung agent, or
/// a socket someone else put at SSH_AUTH_SOCK): a thread of the test accepts and keeps
/// each connection open, reading and writing nothing. It ends with the test process.
struct SilentAgent {
    sock: PathBuf,
    _dir: tempfile::TempDir,
}

impl SilentAgent {
    fn start() -> SilentAgent {
        let dir = tempdir();
        let sock = dir.path().join("silent.sock");
        let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        std::thread::spawn(move || {
            let mut held = vec![];
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                held.push(client);
            }
        });
        SilentAgent { sock, _dir: dir }
    }
}

/// `airlock ARGS` in `d` with `env`, which must end by itself: a run still going after
/// two minutes is killed and fails the test (a guard against a hang, not a measure of
/// the timeout).
fn ends_by_itself(d: &Path, args: &[&str], env: &[(&str, String)]) -> Output {
    let mut c = airlock_command(d, args);
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run airlock");
    let guard = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > guard {
            child.kill().unwrap();
            let o = child.wait_with_output().unwrap();
            panic!(
                "airlock {args:?} still waited for the agent after two minutes: {}",
                stderr(&o)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// Issue 74, item 8: an agent that accepts and never answers stops `keygen --from` and
/// `sign --key` with an error naming the socket once the agent timeout passes
/// (AIRLOCK_AGENT_TIMEOUT, in seconds, shortened here), never a run that waits
/// forever; nothing is written.
#[test]
fn an_agent_that_never_answers_is_given_up_on_naming_its_socket_and_nothing_is_written() {
    let agent = SilentAgent::start();
    let t = tempdir();
    let d = t.path();
    // A bundle to sign, packed with a key file.
    let src = mini(d);
    keygen(d, "rm");
    pack(d, Path::new(&src), "rm.key", "b.tar.gz");
    let bundle_before = std::fs::read(d.join("b.tar.gz")).unwrap();
    let before = files(d);
    let env = [
        ("SSH_AUTH_SOCK", agent.sock.display().to_string()),
        ("AIRLOCK_AGENT_TIMEOUT", "1".to_string()),
    ];
    let key = "ssh-agent:SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU";
    for args in [
        &["keygen", "--from", key, "--out", "agent"][..],
        &["sign", "b.tar.gz", "--key", key][..],
    ] {
        let o = ends_by_itself(d, args, &env);
        expect_code(&o, 1);
        let err = stderr(&o);
        assert!(
            err.contains(&agent.sock.display().to_string()) && err.contains("did not answer"),
            "{args:?}: {err}"
        );
        assert!(err.contains("hint: "), "{args:?}: {err}");
        assert!(err.contains("AIRLOCK_AGENT_TIMEOUT"), "{args:?}: {err}");
        assert_eq!(files(d), before, "{args:?}: something was written");
        assert_eq!(std::fs::read(d.join("b.tar.gz")).unwrap(), bundle_before);
    }
}

/// `keygen --from` closed with a `minisign -Vm FILE -P …` line, which tells an
/// approver (whose token or agent key signs approvals) nothing: it says the next step
/// for the key in either role, the trust store's `trust add` (issue 75, part 5).
#[test]
fn keygen_from_says_the_next_step_for_a_release_or_an_approver_key() {
    let agent = Agent::start();
    let t = tempdir();
    let d = t.path();
    let keys = tempdir();
    let ed = agent.add(keys.path(), "ed", "ed25519");
    let o = run(
        d,
        &["keygen", "--from", &ed, "--out", "carol"],
        &agent.env(),
    );
    expect_code(&o, 0);
    let out = stdout(&o);
    assert!(!out.contains("minisign -Vm"), "{out}");
    assert!(
        out.contains("airlock trust add STORE carol.pub --role approver"),
        "{out}"
    );
    assert!(out.contains("airlock trust add STORE carol.pub\n"), "{out}");
    assert!(out.contains(&key_id_of(&d.join("carol.pub"))), "{out}");
}
