//! The one way every command opens the key its `--key` names: a minisign secret key
//! file, a key on a PKCS#11 token (`pkcs11:` URI) or one ssh-agent holds
//! (`ssh-agent:SHA256:…`). Everything that can fail (passphrase, module, PIN, a key
//! of another type) fails here, before the command writes anything.

use crate::cli::PassphraseArgs;
use crate::error::Result;
use crate::minisign::{sign_with, KeyId, KeySigner, PublicKey, SecretKey, SignatureBox};
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
pub fn open(arg: &Path, pass: &PassphraseArgs) -> Result<SigningKey> {
    match key_ref(arg)? {
        KeyRef::File(path) => Ok(SigningKey::from_file_key(
            crate::commands::common::load_key_file(&path, pass)?,
        )),
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
