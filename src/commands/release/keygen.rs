//! `airlock keygen`: a minisign-compatible key pair.

use crate::cli::KeygenArgs;
use crate::commands::common::{passphrase, write_atomic, NewFileMode, Purpose};
use crate::error::{Error, Result};
use crate::minisign::SecretKey;
use crate::report::{Outcome, Report};
use serde::Serialize;
use std::path::PathBuf;

#[derive(Serialize, schemars::JsonSchema)]
pub struct KeygenReport {
    pub key_id: String,
    pub secret_key: PathBuf,
    pub public_key: PathBuf,
    pub encrypted: bool,
    pub public_key_base64: String,
}

impl Report for KeygenReport {
    fn human(&self) -> String {
        format!(
            "key {} created\n  secret key: {} (mode 0600{}) - keep it secret\n  public key: {} - put it in the trust store\n\nminisign users can verify with: minisign -Vm FILE -P {}",
            self.key_id,
            self.secret_key.display(),
            if self.encrypted { ", scrypt-encrypted" } else { ", UNENCRYPTED" },
            self.public_key.display(),
            self.public_key_base64
        )
    }
}

pub fn run(args: KeygenArgs) -> Result<Outcome> {
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
    let mut pub_text = pk.to_file_text();
    if let Some(c) = &args.comment {
        if c.contains('\n') {
            return Err(Error::usage("--comment must be one line", None));
        }
        pub_text = format!("untrusted comment: {c}\n{}\n", pk.to_base64());
    }
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
        secret_key: key_path,
        public_key: pub_path,
        encrypted: pass.is_some(),
        public_key_base64: pk.to_base64(),
    }))
}

/// The folder a new key goes in (`~/.airlock/` on a fresh account), made when missing,
/// readable by its owner alone (mode 0700), as ssh-keygen makes `~/.ssh`.
fn make_key_dir(key_path: &std::path::Path) -> Result<()> {
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
