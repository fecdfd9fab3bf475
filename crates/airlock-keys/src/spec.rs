//! What a `--key` says, as it was typed: a key file's path, a `pkcs11:` URI (which may
//! hold the PIN itself, `pin-value=`) or `ssh-agent:SHA256:…`.
//!
//! Invariant: a [`KeySpec`] is shown to people only through `Display` and `Debug`,
//! both with every `pin-value=` masked as `pin-value=***`; its text leaves this type
//! unmasked only to be parsed ([`KeySpec::key_ref`]) or, for a key file, as the path
//! to open ([`KeySpec::file`]). So no message, hint, report or JSON document can quote
//! a PIN by quoting a `--key`.

use crate::{uri, KeyError, KeyRef, Pkcs11Uri, AGENT_PREFIX};
use std::ffi::OsString;
use std::path::Path;

/// A `--key` (or `--sign-receipt`, `--from`) value, unparsed.
#[derive(Clone, PartialEq, Eq)]
pub struct KeySpec(OsString);

impl From<OsString> for KeySpec {
    fn from(text: OsString) -> KeySpec {
        KeySpec(text)
    }
}

impl From<&str> for KeySpec {
    fn from(text: &str) -> KeySpec {
        KeySpec(text.into())
    }
}

impl From<&Path> for KeySpec {
    fn from(path: &Path) -> KeySpec {
        KeySpec(path.as_os_str().to_owned())
    }
}

/// The spec with its PIN masked (`pin-value=***`).
impl std::fmt::Display for KeySpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&uri::mask_pin(&self.0.to_string_lossy()))
    }
}

impl std::fmt::Debug for KeySpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeySpec({self})")
    }
}

impl KeySpec {
    /// What the spec names: a token's key, an agent's, else a key file.
    pub fn key_ref(&self) -> Result<KeyRef, KeyError> {
        KeyRef::parse(&self.0)
    }

    /// The `pkcs11:` URI it is (`keygen --pkcs11`), or why it is not one.
    pub fn pkcs11(&self) -> Result<Pkcs11Uri, KeyError> {
        Pkcs11Uri::parse(&self.0.to_string_lossy())
    }

    /// Whether it names a key on a token or in an agent (by its scheme), not a file.
    pub fn is_device(&self) -> bool {
        self.0
            .to_str()
            .is_some_and(|t| uri::has_scheme(t) || t.starts_with(AGENT_PREFIX))
    }

    /// The key file it names; `None` for a token's or an agent's key.
    pub fn file(&self) -> Option<&Path> {
        (!self.is_device()).then(|| Path::new(&self.0))
    }

    /// The spec as a shell command shown to be run takes it: a `pkcs11:` URI without
    /// its `pin-value=` (the PIN is then asked for, or read from `pin-source=`),
    /// anything else as shown; in single quotes when the shell would read it otherwise.
    pub fn runnable(&self) -> String {
        shell_word(&match self.0.to_str().map(Pkcs11Uri::parse) {
            Some(Ok(parsed)) => parsed.without_pin(),
            _ => self.to_string(),
        })
    }

    /// For a key file, the `.pub` made with it (`rm.key` → `rm.pub`), as a spec (so
    /// shown as one); `None` for a token's or an agent's key, which has no file.
    pub fn pub_beside(&self) -> Option<KeySpec> {
        self.file()
            .map(|p| KeySpec::from(p.with_extension("pub").as_path()))
    }

    /// Whether it looks like a token's or agent's key typed wrong (`pkcs11token=…`,
    /// `ssh-agent SHA256:…`), rather than a key file's path: for a message that says
    /// it is neither.
    pub fn looks_like_a_device(&self) -> bool {
        let text = self.0.to_string_lossy().to_ascii_lowercase();
        !self.is_device()
            && (text.starts_with("pkcs11")
                || text.starts_with("ssh-agent")
                || text.starts_with("sha256:")
                || [
                    "token=",
                    "object=",
                    "pin-value=",
                    "pin-source=",
                    "module-path=",
                ]
                .iter()
                .any(|a| text.contains(a)))
    }
}

pub use airlock_base::text::shell_word;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_is_shown_without_its_pin() {
        let s = KeySpec::from("pkcs11:token=t;object=rm?module-path=/m.so&pin-value=1234");
        assert_eq!(
            s.to_string(),
            "pkcs11:token=t;object=rm?module-path=/m.so&pin-value=***"
        );
        assert!(!format!("{s:?}").contains("1234"));
        assert_eq!(s.runnable(), "'pkcs11:token=t;object=rm?module-path=/m.so'");
        assert!(s.is_device() && s.file().is_none());
        // Unparsable, the PIN is still masked, and the runnable form is the shown one.
        let s = KeySpec::from("pkcs11:token=t?pin-value=1234");
        assert_eq!(s.runnable(), "'pkcs11:token=t?pin-value=***'");
        let s = KeySpec::from("keys/rm.key");
        assert_eq!(s.file(), Some(Path::new("keys/rm.key")));
        assert_eq!(s.to_string(), "keys/rm.key");
        assert!(!s.looks_like_a_device());
        assert_eq!(s.pub_beside().unwrap().to_string(), "keys/rm.pub");
        assert_eq!(s.runnable(), "keys/rm.key");
        assert_eq!(KeySpec::from("it's.key").runnable(), r"'it'\''s.key'");
        let agent = KeySpec::from("ssh-agent:SHA256:a+b/c");
        assert!(agent.is_device() && agent.pub_beside().is_none());
        assert_eq!(agent.runnable(), "ssh-agent:SHA256:a+b/c");
        assert!(KeySpec::from("pkcs11token=release").looks_like_a_device());
    }
}
