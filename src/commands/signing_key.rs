//! The one way every command opens the key its `--key` names: a minisign secret key
//! file, a key on a PKCS#11 token (`pkcs11:` URI) or one ssh-agent holds
//! (`ssh-agent:SHA256:…`). Everything that can fail (passphrase, module, PIN, a key
//! of another type) fails here, before the command writes anything.

use crate::cli::PassphraseArgs;
use crate::commands::common::{passphrase, Purpose};
use crate::error::{Error, Result};
use crate::minisign::{sign_with, KeyId, KeySigner, PublicKey, SecretKey, SignatureBox};
use airlock_base::bounded::{self, read_capped_string};
use airlock_keys::{DeviceKey, KeyError, KeyRef};
use std::io::IsTerminal;
use std::path::Path;
use zeroize::Zeroizing;

/// An opened signing key, wherever it lives.
pub struct SigningKey {
    pub key_id: KeyId,
    public: PublicKey,
    inner: Box<dyn KeySigner>,
}

impl SigningKey {
    pub fn from_file_key(key: SecretKey) -> SigningKey {
        let public = key.public();
        SigningKey {
            key_id: public.key_id,
            public,
            inner: Box::new(key),
        }
    }

    fn from_device(key: DeviceKey) -> SigningKey {
        let public = key.public();
        SigningKey {
            key_id: public.key_id,
            public,
            inner: Box::new(key),
        }
    }

    pub fn public(&self) -> PublicKey {
        self.public.clone()
    }

    /// minisign's `ED` signature of `message` with this trusted comment.
    pub fn sign(&self, message: &[u8], trusted_comment: &str) -> Result<SignatureBox> {
        Ok(sign_with(self.inner.as_ref(), message, trusted_comment)?)
    }
}

impl KeySigner for SigningKey {
    fn public(&self) -> PublicKey {
        self.public.clone()
    }
    fn sign_ed25519(
        &self,
        message: &[u8],
    ) -> std::result::Result<[u8; 64], crate::minisign::SignerError> {
        self.inner.sign_ed25519(message)
    }
}

/// What `--key` names, read: a token URI or agent fingerprint, else a file path.
pub fn key_ref(arg: &Path) -> Result<KeyRef> {
    Ok(KeyRef::parse(arg.as_os_str())?)
}

/// Open the key `--key` names (a file's passphrase from `pass`, a token's PIN from its
/// URI or the terminal).
pub fn load_secret_key(arg: &Path, pass: &PassphraseArgs) -> Result<SigningKey> {
    match key_ref(arg)? {
        KeyRef::File(path) => Ok(SigningKey::from_file_key(load_key_file(&path, pass)?)),
        device => Ok(SigningKey::from_device(DeviceKey::open(
            &device,
            &pin_prompt,
        )?)),
    }
}

/// A token's PIN typed on the terminal; never read from a pipe (a PIN belongs in a
/// `pin-source=` file then).
pub fn pin_prompt(token: &str) -> std::result::Result<Zeroizing<String>, KeyError> {
    if !std::io::stdin().is_terminal() {
        return Err(KeyError::PinNeeded {
            token: token.into(),
        });
    }
    rpassword::prompt_password(format!("PIN for token {token:?}: "))
        .map(Zeroizing::new)
        .map_err(|e| KeyError::Device {
            what: format!("token {token:?}"),
            why: format!("cannot read the PIN: {e}"),
        })
}

/// Load a secret key file: refuse group/world-readable files, decrypt if encrypted.
pub fn load_key_file(path: &Path, pass: &PassphraseArgs) -> Result<SecretKey> {
    let text = secret_key_text(path)?;
    let key_err = |source| Error::Key {
        path: path.to_path_buf(),
        source,
    };
    let encrypted = SecretKey::file_is_encrypted(&text).map_err(key_err)?;
    let pw = if encrypted {
        Some(passphrase(pass, Purpose::Unlock)?)
    } else {
        None
    };
    SecretKey::parse(&text, pw.as_ref().map(|p| p.as_bytes())).map_err(key_err)
}

/// Whether opening the secret key at `path` will cost a passphrase and scrypt (after
/// the same file checks as [`load_secret_key`]): the cheap checks go first. A token's
/// or agent's key is no file, and costs neither.
pub fn secret_key_is_encrypted(path: &Path) -> Result<bool> {
    if !matches!(key_ref(path)?, airlock_keys::KeyRef::File(_)) {
        return Ok(false);
    }
    let text = secret_key_text(path)?;
    SecretKey::file_is_encrypted(&text).map_err(|source| Error::Key {
        path: path.to_path_buf(),
        source,
    })
}

/// A secret key file's text, once it is known to be a secret key only its owner reads.
fn secret_key_text(path: &Path) -> Result<Zeroizing<String>> {
    let meta = std::fs::metadata(path)
        .map_err(|e| Error::io(format!("cannot read key {}", path.display()), e))?;
    refuse_public_key(path, &meta)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(Error::usage(
                format!(
                    "secret key {} is readable by others (mode {:o})",
                    path.display(),
                    meta.permissions().mode() & 0o777
                ),
                Some(format!("chmod 600 {}", path.display())),
            ));
        }
    }
    Ok(Zeroizing::new(read_capped_string(
        path,
        bounded::SECRET_KEY,
    )?))
}

/// A public key (`alice.pub`) where a secret key is expected is named as such, before
/// its file mode is judged: it is readable by all on purpose.
fn refuse_public_key(path: &Path, meta: &std::fs::Metadata) -> Result<()> {
    if !meta.is_file() {
        return Ok(());
    }
    let Ok(text) = read_capped_string(path, bounded::PUBLIC_KEY) else {
        return Ok(());
    };
    let Ok(public) = crate::minisign::PublicKey::parse(&text) else {
        return Ok(());
    };
    let secret = path.with_extension("key");
    Err(Error::usage(
        format!(
            "{} is a public key (key id {}); signing needs the secret key",
            path.display(),
            public.key_id
        ),
        Some(format!(
            "pass the secret key made with it by `airlock keygen` (e.g. {}); the .pub belongs in the trust store",
            secret.display()
        )),
    ))
}
