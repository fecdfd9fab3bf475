//! The one way every command opens the key its `--key` names: a minisign secret key
//! file, a key on a PKCS#11 token (`pkcs11:` URI) or one ssh-agent holds
//! (`ssh-agent:SHA256:…`). Everything that can fail (passphrase, module, PIN, a key
//! of another type) fails here, before the command writes anything.

use crate::cli::PassphraseArgs;
use crate::commands::common::{passphrase, Purpose};
use crate::error::{Error, Result};
use crate::minisign::{sign_with, KeyId, KeySigner, PublicKey, SecretKey, SignatureBox};
use airlock_base::bounded::{self, read_capped_string};
use airlock_keys::{DeviceKey, KeyError, KeyRef, KeySpec};
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

/// The hint for a key a trust store does not list: how its `.pub` reaches the store
/// with `role`. A key file's `.pub` is beside it; a token's or agent's is made with
/// `keygen --from` first.
pub fn how_to_add(spec: &KeySpec, store: &Path, role: &str, key_id: &KeyId) -> String {
    let store = airlock_keys::shell_word(&store.display().to_string());
    match spec.pub_beside() {
        Some(public) => format!(
            "the store's keeper adds it with `airlock trust add {store} {} --role {role}` (your .pub, key id {key_id})",
            airlock_keys::shell_word(&public.to_string())
        ),
        None => format!(
            "make its .pub with `airlock keygen --from {} --out PREFIX`; the store's keeper adds PREFIX.pub with `airlock trust add {store} PREFIX.pub --role {role}` (key id {key_id})",
            spec.runnable()
        ),
    }
}

/// Open the key `--key` names (a file's passphrase from `pass`, a token's PIN from its
/// URI or the terminal).
pub fn load_secret_key(spec: &KeySpec, pass: &PassphraseArgs) -> Result<SigningKey> {
    match spec.key_ref()? {
        KeyRef::File(path) => Ok(SigningKey::from_file_key(load_key_file(spec, &path, pass)?)),
        device => Ok(SigningKey::from_device(DeviceKey::open(
            &device,
            &pin_prompt,
        )?)),
    }
}

/// A token's PIN typed on the terminal; never read from a pipe (a PIN belongs in a
/// `pin-source=` file then). An empty answer or end of input (Ctrl-D) cancels before
/// the token is asked: a try a token counts is never spent on it.
pub fn pin_prompt(token: &str) -> std::result::Result<Zeroizing<String>, KeyError> {
    if !std::io::stdin().is_terminal() {
        return Err(KeyError::PinNeeded {
            token: token.into(),
        });
    }
    let cancelled = || KeyError::PinCancelled {
        token: token.into(),
    };
    match rpassword::prompt_password(format!("PIN for token {token:?}: ")).map(Zeroizing::new) {
        Ok(pin) if pin.is_empty() => Err(cancelled()),
        Ok(pin) => Ok(pin),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            // The cursor is still after the prompt: the message goes below it.
            eprintln!();
            Err(cancelled())
        }
        Err(e) => Err(KeyError::Device {
            what: format!("token {token:?}"),
            why: format!("cannot read the PIN: {e}"),
        }),
    }
}

/// Load a secret key file: refuse group/world-readable files, decrypt if encrypted.
/// Messages name it by `spec` (how it was given), never by anything else.
fn load_key_file(spec: &KeySpec, path: &Path, pass: &PassphraseArgs) -> Result<SecretKey> {
    let text = secret_key_text(spec, path)?;
    let key_err = |source| Error::Key {
        path: spec.to_string().into(),
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

/// Whether opening the secret key `spec` names will cost a passphrase and scrypt
/// (after the same file checks as [`load_secret_key`]): the cheap checks go first. A
/// token's or agent's key is no file, and costs neither.
pub fn secret_key_is_encrypted(spec: &KeySpec) -> Result<bool> {
    let KeyRef::File(path) = spec.key_ref()? else {
        return Ok(false);
    };
    let text = secret_key_text(spec, &path)?;
    SecretKey::file_is_encrypted(&text).map_err(|source| Error::Key {
        path: spec.to_string().into(),
        source,
    })
}

/// A `--key` (`flag`) that is no file and reads like a token's or agent's key typed
/// wrong.
pub fn neither(flag: &str, spec: &KeySpec) -> Error {
    Error::usage(
        format!("{flag} {spec} is neither a key file nor a token's or agent's key (pkcs11:… or ssh-agent:SHA256:…)"),
        Some("a token's key is a URI that starts with pkcs11: (pkcs11:token=LABEL;object=KEYLABEL), an agent's is ssh-agent: and the fingerprint `ssh-add -l` prints; docs/keys-on-hardware.md".into()),
    )
}

/// A secret key file's text, once it is known to be a secret key only its owner reads.
fn secret_key_text(spec: &KeySpec, path: &Path) -> Result<Zeroizing<String>> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && spec.looks_like_a_device() => {
            return Err(neither("key", spec))
        }
        Err(e) => return Err(Error::io(format!("cannot read key {spec}"), e)),
    };
    refuse_public_key(spec, path, &meta)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(Error::usage(
                format!(
                    "secret key {spec} is readable by others (mode {:o})",
                    meta.permissions().mode() & 0o777
                ),
                Some(format!("chmod 600 {}", spec.runnable())),
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
fn refuse_public_key(spec: &KeySpec, path: &Path, meta: &std::fs::Metadata) -> Result<()> {
    if !meta.is_file() {
        return Ok(());
    }
    let Ok(text) = read_capped_string(path, bounded::PUBLIC_KEY) else {
        return Ok(());
    };
    let Ok(public) = crate::minisign::PublicKey::parse(&text) else {
        return Ok(());
    };
    let secret = KeySpec::from(path.with_extension("key").as_path());
    Err(Error::usage(
        format!(
            "{spec} is a public key (key id {}); signing needs the secret key",
            public.key_id
        ),
        Some(format!(
            "pass the secret key made with it by `airlock keygen` (e.g. {secret}); the .pub belongs in the trust store"
        )),
    ))
}
