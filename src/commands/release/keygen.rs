//! `airlock keygen`: a minisign-compatible key pair.

use crate::cli::KeygenArgs;
use crate::commands::common::{passphrase, write_atomic, NewFileMode, Purpose};
use crate::commands::signing_key;
use crate::error::{Error, Result};
use crate::minisign::{KeySigner, PublicKey, SecretKey};
use crate::report::{Outcome, Report};
use airlock_keys::{DeviceKey, KeyError, KeyRef, KeySpec};
use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(Serialize, schemars::JsonSchema)]
pub struct KeygenReport {
    pub key_id: String,
    /// The secret key file written; null when the key lives on a token or in an
    /// agent (`--from`, `--pkcs11`), where no secret key file is written.
    pub secret_key: Option<PathBuf>,
    /// What `--key` takes to sign with a token's or agent's key; null for a key file.
    pub signing_key: Option<String>,
    pub public_key: PathBuf,
    pub encrypted: bool,
    pub public_key_base64: String,
}

impl Report for KeygenReport {
    fn human(&self) -> String {
        let Some(secret_key) = &self.secret_key else {
            // A token's or agent's key is as often an approver's as a release
            // manager's: the next step is the trust store's, in the role it has there.
            let public = self.public_key.display().to_string();
            let public = airlock_keys::shell_word(&public);
            return format!(
                "key {}: public key written, no secret key file (the key stays where it is)\n  public key: {} - put it in the trust store\n  sign with: --key '{}'\n\nnext: whoever keeps the trust store compares its key id {} with the one you give them, then adds it in its role:\n  a release key (signs bundles): airlock trust add STORE {public}\n  an approver's key (signs approvals): airlock trust add STORE {public} --role approver --name \"WHO\"\n  (--role operator: receipts; --role root: trust stores)",
                self.key_id,
                self.public_key.display(),
                self.signing_key.as_deref().unwrap_or(""),
                self.key_id,
            );
        };
        format!(
            "key {} created\n  secret key: {} (mode 0600{}) - keep it secret\n  public key: {} - put it in the trust store\n\nminisign users can verify with: minisign -Vm FILE -P {}",
            self.key_id,
            secret_key.display(),
            if self.encrypted { ", scrypt-encrypted" } else { ", UNENCRYPTED" },
            self.public_key.display(),
            self.public_key_base64
        )
    }
}

pub fn run(args: KeygenArgs) -> Result<Outcome> {
    if args.from.is_some() || args.pkcs11.is_some() {
        return run_public_only(args);
    }
    let mut key_path = args.out.clone().into_os_string();
    key_path.push(".key");
    let mut pub_path = args.out.clone().into_os_string();
    pub_path.push(".pub");
    let (key_path, pub_path) = (PathBuf::from(key_path), PathBuf::from(pub_path));
    for p in [&key_path, &pub_path] {
        if p.exists() && !args.force {
            return Err(Error::usage(
                format!("{} already exists", p.display()),
                Some("choose another --out, or pass --force to overwrite".into()),
            ));
        }
    }
    let pass = if args.unencrypted {
        None
    } else {
        Some(passphrase(&args.pass, Purpose::NewKey)?)
    };
    let sk = SecretKey::generate().map_err(|e| Error::Key {
        path: key_path.clone(),
        source: e,
    })?;
    let text = sk
        .to_file_text(pass.as_ref().map(|p| p.as_bytes()))
        .map_err(|e| Error::Key {
            path: key_path.clone(),
            source: e,
        })?;
    let pk = sk.public();
    let pub_text = public_text(&pk, args.comment.as_deref())?;
    make_key_dir(&key_path)?;
    write_atomic(&key_path, text.as_bytes(), NewFileMode::Private, args.force)?;
    write_atomic(
        &pub_path,
        pub_text.as_bytes(),
        NewFileMode::Public,
        args.force,
    )?;
    Ok(Box::new(KeygenReport {
        key_id: pk.key_id.to_string(),
        secret_key: Some(key_path),
        signing_key: None,
        public_key: pub_path,
        encrypted: pass.is_some(),
        public_key_base64: pk.to_base64(),
    }))
}

/// The `.pub` text, with the `--comment` as its untrusted comment when given.
fn public_text(pk: &PublicKey, comment: Option<&str>) -> Result<String> {
    match comment {
        Some(c) if c.contains('\n') => Err(Error::usage("--comment must be one line", None)),
        Some(c) => Ok(format!("untrusted comment: {c}\n{}\n", pk.to_base64())),
        None => Ok(pk.to_file_text()),
    }
}

/// `--from KEY` / `--pkcs11 URI`: PREFIX.pub for a key that stays on its token or in
/// its agent; no secret key file is written. Where the .pub goes is checked before
/// the token or agent is asked: a key made on a token must not be left without one.
fn run_public_only(args: KeygenArgs) -> Result<Outcome> {
    let mut pub_path = args.out.clone().into_os_string();
    pub_path.push(".pub");
    let pub_path = PathBuf::from(pub_path);
    if pub_path.exists() && !args.force {
        return Err(Error::usage(
            format!("{} already exists", pub_path.display()),
            Some("choose another --out, or pass --force to overwrite".into()),
        ));
    }
    let nothing = if args.pkcs11.is_some() {
        "no key was made on the token"
    } else {
        "nothing was written"
    };
    check_destination(&pub_path, nothing)?;
    let (pk, signing_key) = match (&args.from, &args.pkcs11) {
        (Some(from), _) => public_of(from)?,
        (None, Some(uri)) => made_on_token(uri, &args.out)?,
        (None, None) => unreachable!("run_public_only is called with --from or --pkcs11"),
    };
    let pub_text = public_text(&pk, args.comment.as_deref())?;
    let written = make_key_dir(&pub_path).and_then(|()| {
        write_atomic(
            &pub_path,
            pub_text.as_bytes(),
            NewFileMode::Public,
            args.force,
        )
    });
    if let (Err(e), Some(uri)) = (&written, &args.pkcs11) {
        // The key is on the token now: its .pub can be had at any time.
        return Err(Error::usage(
            format!(
                "the key {} was made on the token, but its .pub could not be written: {e}",
                pk.key_id
            ),
            Some(from_hint(uri, &args.out)),
        ));
    }
    written?;
    Ok(Box::new(KeygenReport {
        key_id: pk.key_id.to_string(),
        secret_key: None,
        signing_key: Some(signing_key),
        public_key: pub_path,
        encrypted: false,
        public_key_base64: pk.to_base64(),
    }))
}

/// `--from KEY`: the public key of a token's or agent's key, and the `--key` that
/// signs with it (shown without a PIN).
fn public_of(from: &KeySpec) -> Result<(PublicKey, String)> {
    let key = match from.key_ref()? {
        KeyRef::File(p) if p.exists() => {
            return Err(Error::usage(
                format!("--from {from}: a key file already has its .pub"),
                Some("--from takes a pkcs11: URI or ssh-agent:SHA256:...; for a key file use the .pub made with it".into()),
            ))
        }
        KeyRef::File(_) => return Err(signing_key::neither("--from", from)),
        device => device,
    };
    let opened = DeviceKey::open(&key, &signing_key::pin_prompt)?;
    let shown = match &key {
        KeyRef::Pkcs11(uri) => uri.without_pin(),
        _ => opened.label.clone(),
    };
    Ok((KeySigner::public(&opened), shown))
}

/// `--pkcs11 URI`: a new key pair on the token, and the `--key` that signs with it.
fn made_on_token(uri: &KeySpec, out: &Path) -> Result<(PublicKey, String)> {
    let parsed = uri.pkcs11()?;
    let made =
        airlock_keys::generate_on_token(&parsed, &signing_key::pin_prompt).map_err(
            |e| match e {
                KeyError::KeyExists { .. } => {
                    Error::usage(e.to_string(), Some(from_hint(uri, out)))
                }
                e => e.into(),
            },
        )?;
    let public = PublicKey {
        key_id: airlock_keys::key_id_of(&made.public),
        key: made.public,
    };
    Ok((public, parsed.without_pin()))
}

/// How to get the .pub of a key already on the token.
fn from_hint(uri: &KeySpec, out: &Path) -> String {
    format!(
        "the key on the token gets its .pub with `airlock keygen --from {} --out {}`; to make another key, give another object= (or id=)",
        uri.runnable(),
        airlock_keys::shell_word(&out.display().to_string())
    )
}

/// Before a token or agent is asked: PREFIX.pub can be written (the nearest folder
/// that exists takes a new file; missing folders are made under it later). Nothing is
/// left behind by the check.
fn check_destination(pub_path: &Path, nothing: &str) -> Result<()> {
    let mut dir = pub_path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    while dir.symlink_metadata().is_err() {
        dir = dir
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
    }
    let refuse = |why: String| {
        Error::usage(
            format!("cannot write {}: {why}; {nothing}", pub_path.display()),
            Some(
                "choose an --out PREFIX in a folder you can write (missing folders are made)"
                    .into(),
            ),
        )
    };
    if !dir.is_dir() {
        return Err(refuse(format!("{} is not a folder", dir.display())));
    }
    // A file of our own, made and removed (tempfile's error would name its own name).
    let probe = dir.join(format!(".airlock-tmp-probe-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map(|_| {
            let _ = std::fs::remove_file(&probe);
        })
        .map_err(|e| refuse(format!("cannot write in {}: {e}", dir.display())))
}

/// The folder a new key goes in (`~/.airlock/` on a fresh account), made when missing,
/// readable by its owner alone (mode 0700), as ssh-keygen makes `~/.ssh`.
fn make_key_dir(key_path: &Path) -> Result<()> {
    let Some(dir) = key_path.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    if dir.is_dir() {
        return Ok(());
    }
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))
}
