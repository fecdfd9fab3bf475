//! Keys where people keep them: a `--key` that names a PKCS#11 token's key (RFC 7512
//! `pkcs11:` URI) or an ssh-agent's (`ssh-agent:SHA256:…`) signs minisign `ED`
//! signatures without the private key ever reaching airlock.
//!
//! Invariant: a [`DeviceKey`] is opened (module loaded, PIN checked, key found and
//! of type Ed25519) before any caller writes anything, and every signature it returns
//! has been checked against its public key.
//!
//! No `unsafe` here: `cryptoki` holds the calls into the PKCS#11 module.
//!
//! Room order, lowest first: `error` < `uri`, `key_id` < `spec` < `agent`, `pkcs11`.
#![forbid(unsafe_code)]

mod agent;
mod error;
mod key_id;
mod pkcs11;
mod spec;
mod uri;

pub use error::KeyError;
pub use key_id::key_id_of;
pub use pkcs11::{generate_on_token, Generated};
pub use spec::{shell_word, KeySpec};
pub use uri::Pkcs11Uri;

use airlock_bundle::minisign::{KeySigner, PublicKey, SignerError};
use ed25519_dalek::{Signature, VerifyingKey};
use std::ffi::OsStr;
use std::path::PathBuf;
use zeroize::Zeroizing;

/// What a `--key` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRef {
    /// A minisign secret key file.
    File(PathBuf),
    /// A key on a PKCS#11 token.
    Pkcs11(Box<Pkcs11Uri>),
    /// An Ed25519 key the running ssh-agent holds, by its SHA-256 fingerprint.
    Agent(String),
}

pub const AGENT_PREFIX: &str = "ssh-agent:";

impl KeyRef {
    /// Read a `--key` value: `pkcs11:…`, `ssh-agent:SHA256:…`, else a file path.
    pub fn parse(arg: &OsStr) -> Result<KeyRef, KeyError> {
        let Some(text) = arg.to_str() else {
            return Ok(KeyRef::File(PathBuf::from(arg)));
        };
        if uri::has_scheme(text) {
            return Ok(KeyRef::Pkcs11(Box::new(Pkcs11Uri::parse(text)?)));
        }
        if let Some(fp) = text.strip_prefix(AGENT_PREFIX) {
            return Ok(KeyRef::Agent(agent::check_fingerprint(fp)?));
        }
        Ok(KeyRef::File(PathBuf::from(arg)))
    }
}

/// Asks for a token's PIN (on a terminal) when the URI gives none; its argument names
/// the token.
pub type PinPrompt<'a> = &'a dyn Fn(&str) -> Result<Zeroizing<String>, KeyError>;

enum Backend {
    Token(pkcs11::TokenKey),
    Agent(agent::AgentKey),
}

/// An opened key on a token or in an agent.
pub struct DeviceKey {
    public: PublicKey,
    /// What `--key` said, for messages.
    pub label: String,
    backend: Backend,
}

impl DeviceKey {
    /// Open the key a `pkcs11:` URI or `ssh-agent:` fingerprint names: everything that
    /// can fail before signing fails here.
    pub fn open(key: &KeyRef, prompt: PinPrompt<'_>) -> Result<DeviceKey, KeyError> {
        let (label, backend, vk) = match key {
            KeyRef::File(p) => {
                return Err(KeyError::NotDevice(p.display().to_string()));
            }
            KeyRef::Pkcs11(uri) => {
                let k = pkcs11::TokenKey::open(uri, prompt)?;
                let vk = k.public;
                (uri.to_string(), Backend::Token(k), vk)
            }
            KeyRef::Agent(fp) => {
                let k = agent::AgentKey::open(fp)?;
                let vk = k.public;
                (format!("{AGENT_PREFIX}{fp}"), Backend::Agent(k), vk)
            }
        };
        if vk.is_weak() {
            return Err(KeyError::WrongType {
                key: label,
                kind: "a weak (small-order) Ed25519 public key".into(),
            });
        }
        Ok(DeviceKey {
            public: PublicKey {
                key_id: key_id_of(&vk),
                key: vk,
            },
            label,
            backend,
        })
    }
}

impl KeySigner for DeviceKey {
    fn public(&self) -> PublicKey {
        self.public.clone()
    }

    fn sign_ed25519(&self, message: &[u8]) -> Result<[u8; 64], SignerError> {
        let sig = match &self.backend {
            Backend::Token(k) => k.sign(message),
            Backend::Agent(k) => k.sign(message),
        }
        .map_err(|e| SignerError(format!("{}: {e}", self.label)))?;
        // A device that answers with anything but a signature by this key is refused
        // here, before a caller writes it anywhere.
        self.public
            .key
            .verify_strict(message, &Signature::from_bytes(&sig))
            .map_err(|_| {
                SignerError(format!(
                    "{}: the signature it returned does not verify with its public key {}",
                    self.label, self.public.key_id
                ))
            })?;
        Ok(sig)
    }
}

/// The Ed25519 public key from 32 bytes a device gave.
fn verifying_key(label: &str, bytes: &[u8]) -> Result<VerifyingKey, KeyError> {
    let raw: [u8; 32] = bytes.try_into().map_err(|_| KeyError::WrongType {
        key: label.into(),
        kind: format!("a public key of {} bytes, not Ed25519's 32", bytes.len()),
    })?;
    VerifyingKey::from_bytes(&raw).map_err(|_| KeyError::WrongType {
        key: label.into(),
        kind: "a public key that is not an Ed25519 point".into(),
    })
}
