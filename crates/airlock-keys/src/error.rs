//! Why a token's or an agent's key cannot sign, each with the next step.

/// A key on a token or in an agent that cannot be used. Every variant happens while
/// the key is opened, before anything is written.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{uri:?} is not a usable pkcs11: URI: {why}")]
    Uri { uri: String, why: String },
    #[error("{0:?} is not an ssh-agent key: give the fingerprint `ssh-keygen -l` prints, as ssh-agent:SHA256:...")]
    Fingerprint(String),
    #[error("no PKCS#11 module: the URI has no module-path= and AIRLOCK_PKCS11_MODULE is not set")]
    NoModule,
    #[error("cannot load the PKCS#11 module {module}{}: {why}", if *.from_env { " (from AIRLOCK_PKCS11_MODULE)" } else { "" })]
    Module {
        module: String,
        why: String,
        /// The path came from `AIRLOCK_PKCS11_MODULE`, not the URI's `module-path=`.
        from_env: bool,
    },
    /// No initialised token matches; the message says which were there.
    #[error("{0}")]
    NoToken(String),
    /// More than one initialised token matches; the message lists them.
    #[error("{0}")]
    TokenAmbiguous(String),
    #[error("token {token:?} refused the PIN: {why}")]
    Pin { token: String, why: String },
    #[error("cancelled: no PIN given for token {token:?}; nothing was written")]
    PinCancelled { token: String },
    #[error("the PIN file {path} is readable by others (mode {mode:o}): a PIN is kept as a secret key is")]
    PinFileLoose { path: String, mode: u32 },
    /// `keygen --pkcs11` for a label/id the token already holds a key under.
    #[error("{key}: a private key with that label/id is already on the token; nothing was made")]
    KeyExists { key: String },
    #[error("token {token:?} is locked (too many wrong PINs)")]
    PinLocked { token: String },
    #[error("token {token:?} needs a PIN and stdin is not a terminal")]
    PinNeeded { token: String },
    #[error("cannot read the PIN from {path}: {why}")]
    PinFile { path: String, why: String },
    #[error("{key}: no such key on the token ({why})")]
    NoKey { key: String, why: String },
    #[error("{key} asks for the PIN before every signature (CKA_ALWAYS_AUTHENTICATE), which airlock cannot give it")]
    AlwaysAuthenticate { key: String },
    #[error("{key} is {kind}, not an Ed25519 key: minisign signatures are Ed25519")]
    WrongType { key: String, kind: String },
    #[error("no ssh-agent to ask: {why}")]
    AgentNotRunning { why: String },
    #[error("the ssh-agent does not hold the key {fingerprint} ({held})")]
    AgentNoKey {
        fingerprint: String,
        held: String,
        /// It lists no key at all (empty, or locked with `ssh-add -x`).
        lists_none: bool,
    },
    /// The agent's socket took the connection but did not take the request or answer
    /// it in time (a hung agent, or something else listening there).
    #[error("the ssh-agent at {socket} did not answer within {secs} s")]
    AgentTimeout { socket: String, secs: u64 },
    #[error("AIRLOCK_AGENT_TIMEOUT={0:?} is not a number of seconds above zero")]
    AgentTimeoutValue(String),
    #[error("{what}: {why}")]
    Device { what: String, why: String },
    #[error("{0} is a key file, not a token or agent key")]
    NotDevice(String),
}

impl KeyError {
    /// The key is there but cannot make a minisign signature (another algorithm, a
    /// hardware-backed `sk-` key): a refused key, not a mistyped command.
    pub fn is_refused_key(&self) -> bool {
        matches!(self, KeyError::WrongType { .. })
    }

    /// A device that failed mid-way (I/O with the token or agent), not the input.
    pub fn is_runtime(&self) -> bool {
        matches!(
            self,
            KeyError::Device { .. } | KeyError::AgentTimeout { .. }
        )
    }

    /// What to do next.
    pub fn hint(&self) -> String {
        match self {
            KeyError::Uri { .. } => "write it as pkcs11:token=LABEL;object=KEYLABEL?module-path=/path/to/module.so&pin-source=file:/path/to/pin (RFC 7512); docs/keys-on-hardware.md".into(),
            KeyError::Fingerprint(_) => "`ssh-add -l` lists the agent's keys with their fingerprints (SHA256:...)".into(),
            KeyError::NoModule => "add ?module-path=/usr/lib/softhsm/libsofthsm2.so (or your token's module) to the URI, or set AIRLOCK_PKCS11_MODULE".into(),
            KeyError::Module { from_env: true, .. } => "set AIRLOCK_PKCS11_MODULE to your token's module (a YubiKey: libykcs11.so from yubico-piv-tool; SoftHSM: /usr/lib/softhsm/libsofthsm2.so), or give module-path= in the URI".into(),
            KeyError::Module { .. } => "check the module path (a YubiKey: libykcs11.so from yubico-piv-tool; SoftHSM: /usr/lib/softhsm/libsofthsm2.so)".into(),
            KeyError::NoToken(_) | KeyError::TokenAmbiguous(_) => "`pkcs11-tool --module MODULE -L` lists the tokens and their labels; name one with token=".into(),
            KeyError::Pin { .. } => "check the PIN (pin-source=file:PATH or pin-value= in the URI, or type it on a terminal); tokens lock after a few wrong PINs".into(),
            KeyError::PinCancelled { .. } => "type the token's PIN at the prompt (an empty answer or Ctrl-D cancels), or give it in a file: pin-source=file:PATH in the URI (mode 0600)".into(),
            KeyError::PinFileLoose { path, .. } => format!("chmod 600 {}", airlock_base::text::shell_word(path)),
            KeyError::KeyExists { .. } => "its .pub comes from `airlock keygen --from URI --out PREFIX`; to make another key, give another object= (or id=)".into(),
            KeyError::PinLocked { .. } => "unlock the token with its security officer PIN or PUK (e.g. `pkcs11-tool --init-pin --login --login-type so`, `ykman piv access unblock-pin`)".into(),
            KeyError::PinNeeded { .. } => "add pin-source=file:PATH to the URI's query (a file holding the PIN, mode 0600), or run on a terminal to be asked".into(),
            KeyError::PinFile { .. } => "pin-source=file:PATH must name a readable file whose first line is the PIN".into(),
            KeyError::NoKey { .. } => "`pkcs11-tool --module MODULE --login -O` lists the token's objects; name the key with object=LABEL or id=%xx; `airlock keygen --pkcs11 URI` makes one".into(),
            KeyError::AlwaysAuthenticate { .. } => "use a key whose PIN is asked once per session (a YubiKey: slot 9a, PIV Authentication, not 9c), or make one with `airlock keygen --pkcs11 URI`".into(),
            KeyError::WrongType { .. } => "use an Ed25519 key: `airlock keygen --pkcs11 URI` on a token, or `ssh-keygen -t ed25519` then `ssh-add` for the agent (not -t ed25519-sk)".into(),
            KeyError::AgentNotRunning { .. } => "start one (`eval $(ssh-agent)`) and `ssh-add` the key, or set SSH_AUTH_SOCK to the running agent's socket".into(),
            KeyError::AgentNoKey { lists_none: true, .. } => "a locked agent lists no key: `ssh-add -X` unlocks it; else `ssh-add KEYFILE` adds the key; `ssh-add -l` lists what the agent holds".into(),
            KeyError::AgentNoKey { .. } => "`ssh-add KEYFILE` adds it; `ssh-add -l` lists what the agent holds".into(),
            KeyError::AgentTimeout { .. } => "check the agent answers (`ssh-add -l` with the same SSH_AUTH_SOCK) and that the socket is ssh-agent's; an agent that asks for a confirmation may need longer: AIRLOCK_AGENT_TIMEOUT=SECONDS (default 30)".into(),
            KeyError::AgentTimeoutValue(_) => "set AIRLOCK_AGENT_TIMEOUT to a whole number of seconds (e.g. 60), or unset it for 30".into(),
            KeyError::Device { .. } => "check the token is inserted or the agent still runs, and try again".into(),
            KeyError::NotDevice(_) => "pass a pkcs11: URI or ssh-agent:SHA256:... fingerprint".into(),
        }
    }
}
