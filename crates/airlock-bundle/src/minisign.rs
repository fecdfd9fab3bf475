//! minisign key and signature formats: parse, serialize, sign, verify. Nothing else.
//!
//! Invariant: every byte we write is what `minisign` itself would write for the same
//! key, message and trusted comment (Ed25519 is deterministic), and every byte we read
//! is checked strictly: canonical base64, exact lengths, known algorithms, strict
//! Ed25519 verification (small-order keys and non-canonical signatures refused).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use blake2::digest::consts::U32;
use blake2::{Blake2b, Blake2b512, Digest};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use zeroize::{Zeroize, Zeroizing};

/// Key algorithm tag in key files.
const SIGALG: &[u8; 2] = b"Ed";
/// Prehashed signature algorithm (Ed25519 over BLAKE2b-512 of the message).
const SIGALG_HASHED: &[u8; 2] = b"ED";
const KDFALG: &[u8; 2] = b"Sc";
const KDFNONE: &[u8; 2] = b"\0\0";
const CHKALG: &[u8; 2] = b"B2";
/// minisign's defaults: opslimit 2^25, memlimit 2^30, i.e. scrypt N=2^20, r=8, p=1.
const OPSLIMIT: u64 = 33_554_432;
const MEMLIMIT: u64 = 1_073_741_824;
pub const DEFAULT_SIG_COMMENT: &str = "signature from minisign secret key";
const SECRETKEY_COMMENT: &str = "minisign encrypted secret key";
/// Largest trusted comment minisign accepts.
const TRUSTED_COMMENT_MAX: usize = 8192;

type Blake2b256 = Blake2b<U32>;

#[derive(Debug, thiserror::Error)]
pub enum MinisignError {
    #[error("{what}: {why}")]
    Malformed { what: &'static str, why: String },
    #[error("unsupported {what} algorithm {alg:?}")]
    Algorithm { what: &'static str, alg: String },
    #[error("legacy (non-prehashed) 'Ed' signatures are refused; re-sign with a current minisign or airlock")]
    LegacySignature,
    #[error("secret key checksum mismatch: wrong passphrase, or the key file is damaged")]
    WrongPassphrase,
    #[error("the key file is encrypted; a passphrase is required")]
    PassphraseRequired,
    #[error("public key is weak (small order) and is refused")]
    WeakKey,
    #[error("signature was made by key {sig_key}, not by key {key}")]
    KeyIdMismatch { key: String, sig_key: String },
    #[error("signature does not verify")]
    BadSignature,
    #[error("trusted comment signature does not verify")]
    BadGlobalSignature,
    #[error("scrypt: {0}")]
    Kdf(String),
}

type Result<T> = std::result::Result<T, MinisignError>;

fn malformed(what: &'static str, why: impl Into<String>) -> MinisignError {
    MinisignError::Malformed {
        what,
        why: why.into(),
    }
}

/// Key id: 8 bytes, shown as minisign shows it (little-endian u64 in upper-case hex).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 8]);

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016X}", u64::from_le_bytes(self.0))
    }
}
impl std::fmt::Debug for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// Decode base64 and insist the encoding is canonical (re-encoding gives the same text),
/// so one signature has exactly one accepted spelling. Secret key files pass through
/// here too, so the decoded bytes and the re-encoded copy are both zeroized on drop
/// (also when decoding fails half-way).
fn b64_strict(what: &'static str, text: &str) -> Result<Zeroizing<Vec<u8>>> {
    let mut bytes = Zeroizing::new(Vec::new());
    B64.decode_vec(text, &mut bytes)
        .map_err(|e| malformed(what, format!("invalid base64: {e}")))?;
    if *Zeroizing::new(B64.encode(bytes.as_slice())) != text {
        return Err(malformed(what, "non-canonical base64 encoding"));
    }
    Ok(bytes)
}

/// Split a minisign text file into its lines, requiring the `untrusted comment: ` line.
fn lines_of<'a>(what: &'static str, text: &'a str) -> Result<Vec<&'a str>> {
    let lines: Vec<&str> = text.lines().collect();
    match lines.first() {
        Some(l) if l.starts_with("untrusted comment: ") => Ok(lines),
        _ => Err(malformed(
            what,
            "first line must start with 'untrusted comment: '",
        )),
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub key_id: KeyId,
    pub key: VerifyingKey,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", self.key_id)
    }
}

impl PublicKey {
    /// Parse the text of a `.pub` file.
    pub fn parse(text: &str) -> Result<PublicKey> {
        let lines = lines_of("public key", text)?;
        let b64 = lines
            .get(1)
            .ok_or_else(|| malformed("public key", "missing key line"))?;
        if lines.iter().skip(2).any(|l| !l.trim().is_empty()) {
            return Err(malformed(
                "public key",
                "unexpected data after the key line",
            ));
        }
        Self::from_base64(b64)
    }

    pub fn from_base64(b64: &str) -> Result<PublicKey> {
        let raw = b64_strict("public key", b64.trim())?;
        if raw.len() != 42 {
            return Err(malformed(
                "public key",
                format!("expected 42 bytes, got {}", raw.len()),
            ));
        }
        if &raw[..2] != SIGALG {
            return Err(MinisignError::Algorithm {
                what: "public key",
                alg: String::from_utf8_lossy(&raw[..2]).into(),
            });
        }
        let mut id = [0u8; 8];
        id.copy_from_slice(&raw[2..10]);
        let mut pk = [0u8; 32];
        pk.copy_from_slice(&raw[10..42]);
        let key = VerifyingKey::from_bytes(&pk)
            .map_err(|e| malformed("public key", format!("not an Ed25519 point: {e}")))?;
        if key.is_weak() {
            return Err(MinisignError::WeakKey);
        }
        Ok(PublicKey {
            key_id: KeyId(id),
            key,
        })
    }

    pub fn to_base64(&self) -> String {
        let mut raw = Vec::with_capacity(42);
        raw.extend_from_slice(SIGALG);
        raw.extend_from_slice(&self.key_id.0);
        raw.extend_from_slice(self.key.as_bytes());
        B64.encode(raw)
    }

    /// The `.pub` file text, exactly as `minisign -G` writes it.
    pub fn to_file_text(&self) -> String {
        format!(
            "untrusted comment: minisign public key {}\n{}\n",
            self.key_id,
            self.to_base64()
        )
    }

    /// Verify a signature over `message`: key id, prehashed Ed25519 (strict), then the
    /// global signature over signature || trusted comment.
    pub fn verify(&self, message: &[u8], sig: &SignatureBox) -> Result<()> {
        self.verify_prehashed(&blake2b512(message), sig)
    }

    /// As [`verify`](Self::verify), given the BLAKE2b-512 of the message.
    pub fn verify_prehashed(&self, prehash: &[u8; 64], sig: &SignatureBox) -> Result<()> {
        if sig.key_id != self.key_id {
            return Err(MinisignError::KeyIdMismatch {
                key: self.key_id.to_string(),
                sig_key: sig.key_id.to_string(),
            });
        }
        self.key
            .verify_strict(prehash, &Signature::from_bytes(&sig.signature))
            .map_err(|_| MinisignError::BadSignature)?;
        let mut global = Vec::with_capacity(64 + sig.trusted_comment.len());
        global.extend_from_slice(&sig.signature);
        global.extend_from_slice(sig.trusted_comment.as_bytes());
        self.key
            .verify_strict(&global, &Signature::from_bytes(&sig.global_signature))
            .map_err(|_| MinisignError::BadGlobalSignature)
    }
}

/// What makes the Ed25519 signatures of one minisign key: a key file's [`SecretKey`]
/// here; a PKCS#11 token or an ssh-agent in `airlock-keys`. The signer signs bytes
/// (pure Ed25519); [`sign_with`] makes them a minisign `ED` signature.
pub trait KeySigner {
    /// The key's public half and minisign key id.
    fn public(&self) -> PublicKey;
    /// Pure Ed25519 over `message`.
    fn sign_ed25519(&self, message: &[u8]) -> std::result::Result<[u8; 64], SignerError>;
}

/// A signer that could not sign (a token removed, an agent gone away) after it was
/// opened: nothing signed, nothing to write.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SignerError(pub String);

/// minisign's prehashed `ED` signature of `message` with the trusted comment, made
/// by any [`KeySigner`]: Ed25519 over BLAKE2b-512(message), then the global signature
/// over signature || trusted comment.
pub fn sign_with(
    signer: &dyn KeySigner,
    message: &[u8],
    trusted_comment: &str,
) -> std::result::Result<SignatureBox, SignerError> {
    sign_prehashed_with(signer, &blake2b512(message), trusted_comment)
}

/// As [`sign_with`], given the BLAKE2b-512 of the message.
pub fn sign_prehashed_with(
    signer: &dyn KeySigner,
    prehash: &[u8; 64],
    trusted_comment: &str,
) -> std::result::Result<SignatureBox, SignerError> {
    let signature = signer.sign_ed25519(prehash)?;
    let mut global = Vec::with_capacity(64 + trusted_comment.len());
    global.extend_from_slice(&signature);
    global.extend_from_slice(trusted_comment.as_bytes());
    let global_signature = signer.sign_ed25519(&global)?;
    Ok(SignatureBox {
        untrusted_comment: DEFAULT_SIG_COMMENT.to_string(),
        key_id: signer.public().key_id,
        signature,
        trusted_comment: trusted_comment.to_string(),
        global_signature,
    })
}

impl KeySigner for SecretKey {
    fn public(&self) -> PublicKey {
        SecretKey::public(self)
    }
    fn sign_ed25519(&self, message: &[u8]) -> std::result::Result<[u8; 64], SignerError> {
        Ok(self.signing.sign(message).to_bytes())
    }
}

pub fn blake2b512(message: &[u8]) -> [u8; 64] {
    let mut out = [0u8; 64];
    out.copy_from_slice(&Blake2b512::digest(message));
    out
}

/// A parsed `.minisig` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureBox {
    pub untrusted_comment: String,
    pub key_id: KeyId,
    pub signature: [u8; 64],
    pub trusted_comment: String,
    pub global_signature: [u8; 64],
}

impl SignatureBox {
    pub fn parse(text: &str) -> Result<SignatureBox> {
        let lines = lines_of("signature", text)?;
        if lines.len() < 4 {
            return Err(malformed("signature", "expected four lines"));
        }
        if lines.iter().skip(4).any(|l| !l.trim().is_empty()) {
            return Err(malformed(
                "signature",
                "unexpected data after the fourth line",
            ));
        }
        let raw = b64_strict("signature", lines[1])?;
        if raw.len() != 74 {
            return Err(malformed(
                "signature",
                format!("expected 74 bytes, got {}", raw.len()),
            ));
        }
        match &raw[..2] {
            a if a == SIGALG_HASHED => {}
            a if a == SIGALG => return Err(MinisignError::LegacySignature),
            a => {
                return Err(MinisignError::Algorithm {
                    what: "signature",
                    alg: String::from_utf8_lossy(a).into(),
                })
            }
        }
        let trusted_comment = lines[2]
            .strip_prefix("trusted comment: ")
            .ok_or_else(|| {
                malformed(
                    "signature",
                    "third line must start with 'trusted comment: '",
                )
            })?
            .to_string();
        if trusted_comment.len() > TRUSTED_COMMENT_MAX {
            return Err(malformed("signature", "trusted comment too long"));
        }
        // A line may end in CRLF, and nowhere else may a CR appear: a comment ending
        // in CR would lose it each time the file is rewritten (found by fuzzing: the
        // parsed signature did not re-parse equal from its own serialization).
        let untrusted_comment = &lines[0]["untrusted comment: ".len()..];
        if untrusted_comment.contains('\r') || trusted_comment.contains('\r') {
            return Err(malformed(
                "signature",
                "carriage return inside a comment line",
            ));
        }
        let global = b64_strict("signature", lines[3])?;
        if global.len() != 64 {
            return Err(malformed("signature", "global signature must be 64 bytes"));
        }
        let mut key_id = [0u8; 8];
        key_id.copy_from_slice(&raw[2..10]);
        let mut signature = [0u8; 64];
        signature.copy_from_slice(&raw[10..74]);
        let mut global_signature = [0u8; 64];
        global_signature.copy_from_slice(&global[..]);
        Ok(SignatureBox {
            untrusted_comment: untrusted_comment.to_string(),
            key_id: KeyId(key_id),
            signature,
            trusted_comment,
            global_signature,
        })
    }

    /// The `.minisig` text, byte-identical to what `minisign -S -t` writes.
    pub fn to_file_text(&self) -> String {
        let mut raw = Vec::with_capacity(74);
        raw.extend_from_slice(SIGALG_HASHED);
        raw.extend_from_slice(&self.key_id.0);
        raw.extend_from_slice(&self.signature);
        format!(
            "untrusted comment: {}\n{}\ntrusted comment: {}\n{}\n",
            self.untrusted_comment,
            B64.encode(raw),
            self.trusted_comment,
            B64.encode(self.global_signature)
        )
    }
}

/// A decrypted secret key. The signing key is zeroized on drop (ed25519-dalek's
/// `zeroize` feature).
pub struct SecretKey {
    pub key_id: KeyId,
    signing: SigningKey,
}

impl SecretKey {
    pub fn generate() -> Result<SecretKey> {
        let mut seed = Zeroizing::new([0u8; 32]);
        let mut id = [0u8; 8];
        getrandom::getrandom(seed.as_mut()).map_err(|e| malformed("random", e.to_string()))?;
        getrandom::getrandom(&mut id).map_err(|e| malformed("random", e.to_string()))?;
        Ok(SecretKey {
            key_id: KeyId(id),
            signing: SigningKey::from_bytes(&seed),
        })
    }

    pub fn public(&self) -> PublicKey {
        PublicKey {
            key_id: self.key_id,
            key: self.signing.verifying_key(),
        }
    }

    /// True when `text` is a minisign secret key file (encrypted or not): what must
    /// never sit in a trust store.
    pub fn is_secret_key_text(text: &str) -> bool {
        Self::raw_from_text(text).is_ok_and(|raw| &raw[..2] == SIGALG)
    }

    /// True when the key file text says it is encrypted (kdf `Sc`).
    pub fn file_is_encrypted(text: &str) -> Result<bool> {
        let raw = Self::raw_from_text(text)?;
        Ok(&raw[2..4] == KDFALG)
    }

    fn raw_from_text(text: &str) -> Result<Zeroizing<Vec<u8>>> {
        let lines = lines_of("secret key", text)?;
        let b64 = lines
            .get(1)
            .ok_or_else(|| malformed("secret key", "missing key line"))?;
        let raw = b64_strict("secret key", b64.trim())?;
        if raw.len() != 158 {
            return Err(malformed(
                "secret key",
                format!("expected 158 bytes, got {}", raw.len()),
            ));
        }
        Ok(raw)
    }

    /// Parse (and decrypt, for `Sc` keys) the text of a `.key` file.
    pub fn parse(text: &str, passphrase: Option<&[u8]>) -> Result<SecretKey> {
        let mut raw = Self::raw_from_text(text)?;
        if &raw[..2] != SIGALG {
            return Err(MinisignError::Algorithm {
                what: "secret key",
                alg: String::from_utf8_lossy(&raw[..2]).into(),
            });
        }
        if &raw[4..6] != CHKALG {
            return Err(MinisignError::Algorithm {
                what: "secret key checksum",
                alg: String::from_utf8_lossy(&raw[4..6]).into(),
            });
        }
        let encrypted = match &raw[2..4] {
            k if k == KDFALG => true,
            k if k == KDFNONE => false,
            k => {
                return Err(MinisignError::Algorithm {
                    what: "key derivation",
                    alg: String::from_utf8_lossy(k).into(),
                })
            }
        };
        if encrypted {
            let pass = passphrase.ok_or(MinisignError::PassphraseRequired)?;
            let ops = u64::from_le_bytes(raw[38..46].try_into().expect("8 bytes"));
            let mem = u64::from_le_bytes(raw[46..54].try_into().expect("8 bytes"));
            let mut salt = [0u8; 32];
            salt.copy_from_slice(&raw[6..38]);
            let stream = kdf_stream(pass, &salt, ops, mem)?;
            for (b, k) in raw[54..158].iter_mut().zip(stream.iter()) {
                *b ^= k;
            }
        }
        let mut id = [0u8; 8];
        id.copy_from_slice(&raw[54..62]);
        let mut keypair = Zeroizing::new([0u8; 64]);
        keypair.copy_from_slice(&raw[62..126]);
        let chk = &raw[126..158];
        // `minisign -W` writes an all-zero checksum for unencrypted keys.
        if encrypted || chk.iter().any(|&b| b != 0) {
            let expect = checksum(&id, &keypair);
            if chk != expect.as_slice() {
                return Err(MinisignError::WrongPassphrase);
            }
        }
        let signing = SigningKey::from_keypair_bytes(&keypair)
            .map_err(|_| malformed("secret key", "public half does not match the secret key"))?;
        Ok(SecretKey {
            key_id: KeyId(id),
            signing,
        })
    }

    /// The `.key` file text: scrypt-encrypted with minisign's parameters when a
    /// passphrase is given, else the `minisign -W` layout (no KDF, zero checksum).
    pub fn to_file_text(&self, passphrase: Option<&[u8]>) -> Result<Zeroizing<String>> {
        let mut raw = Zeroizing::new(Vec::with_capacity(158));
        raw.extend_from_slice(SIGALG);
        let mut keypair = Zeroizing::new(self.signing.to_keypair_bytes());
        match passphrase {
            Some(pass) => {
                let mut salt = [0u8; 32];
                getrandom::getrandom(&mut salt).map_err(|e| malformed("random", e.to_string()))?;
                raw.extend_from_slice(KDFALG);
                raw.extend_from_slice(CHKALG);
                raw.extend_from_slice(&salt);
                raw.extend_from_slice(&OPSLIMIT.to_le_bytes());
                raw.extend_from_slice(&MEMLIMIT.to_le_bytes());
                let chk = checksum(&self.key_id.0, &keypair);
                let mut secret = Zeroizing::new(Vec::with_capacity(104));
                secret.extend_from_slice(&self.key_id.0);
                secret.extend_from_slice(keypair.as_ref());
                secret.extend_from_slice(&chk);
                let stream = kdf_stream(pass, &salt, OPSLIMIT, MEMLIMIT)?;
                for (b, k) in secret.iter_mut().zip(stream.iter()) {
                    *b ^= k;
                }
                raw.extend_from_slice(&secret);
            }
            None => {
                raw.extend_from_slice(KDFNONE);
                raw.extend_from_slice(CHKALG);
                raw.extend_from_slice(&[0u8; 48]);
                raw.extend_from_slice(&self.key_id.0);
                raw.extend_from_slice(keypair.as_ref());
                raw.extend_from_slice(&[0u8; 32]);
            }
        }
        keypair.zeroize();
        // Built in one allocation of the final size: `format!` would grow (and leave
        // copies of) the text, and the encoded key is the secret itself for `-W` keys.
        let b64 = Zeroizing::new(B64.encode(raw.as_slice()));
        let head = "untrusted comment: ";
        let mut text = Zeroizing::new(String::with_capacity(
            head.len() + SECRETKEY_COMMENT.len() + b64.len() + 2,
        ));
        text.push_str(head);
        text.push_str(SECRETKEY_COMMENT);
        text.push('\n');
        text.push_str(&b64);
        text.push('\n');
        Ok(text)
    }

    /// Sign `message` with minisign's prehashed algorithm and the given trusted comment.
    pub fn sign(&self, message: &[u8], trusted_comment: &str) -> SignatureBox {
        self.sign_prehashed(&blake2b512(message), trusted_comment)
    }

    pub fn sign_prehashed(&self, prehash: &[u8; 64], trusted_comment: &str) -> SignatureBox {
        sign_prehashed_with(self, prehash, trusted_comment).expect("a key file's key always signs")
    }
}

fn checksum(id: &[u8; 8], keypair: &[u8; 64]) -> [u8; 32] {
    let mut h = Blake2b256::new();
    h.update(SIGALG);
    h.update(id);
    h.update(keypair);
    let mut out = [0u8; 32];
    out.copy_from_slice(&h.finalize_reset());
    scrub(&mut h);
    out
}

/// BLAKE2b keeps the last (here: only) input block in its buffer until dropped, and
/// `digest` 0.10 does not zeroize it. After a reset the buffer is empty, and BLAKE2b's
/// lazy buffering copies one whole block of input into it without compressing, so
/// writing 128 zero bytes overwrites every byte of secret the buffer held.
fn scrub(h: &mut Blake2b256) {
    h.update([0u8; 128]);
}

/// libsodium's `crypto_pwhash_scryptsalsa208sha256` parameter choice, so keys made by
/// minisign (and by us) decrypt with the same N, r, p.
fn pick_params(opslimit: u64, memlimit: u64) -> (u8, u32, u32) {
    let opslimit = opslimit.max(32768);
    let r: u64 = 8;
    let mut n_log2: u8 = 1;
    let p: u64;
    if opslimit < memlimit / 32 {
        p = 1;
        let max_n = opslimit / (r * 4);
        while n_log2 < 63 && (1u64 << n_log2) <= max_n / 2 {
            n_log2 += 1;
        }
    } else {
        let max_n = memlimit / (r * 128);
        while n_log2 < 63 && (1u64 << n_log2) <= max_n / 2 {
            n_log2 += 1;
        }
        let max_rp = ((opslimit / 4) / (1u64 << n_log2)).min(0x3fff_ffff);
        p = max_rp / r;
    }
    (n_log2, r as u32, p as u32)
}

fn kdf_stream(pass: &[u8], salt: &[u8; 32], ops: u64, mem: u64) -> Result<Zeroizing<[u8; 104]>> {
    // Refuse absurd parameters from a hostile key file before allocating for them.
    if ops > (1 << 34) || mem > (1 << 33) {
        return Err(MinisignError::Kdf(
            "KDF limits in the key file are too large".into(),
        ));
    }
    let (n_log2, r, p) = pick_params(ops, mem);
    // Params' `len` only matters for PHC strings (and is capped at 64); the derived
    // length is the output buffer's, 104 bytes as minisign needs.
    let params =
        scrypt::Params::new(n_log2, r, p, 32).map_err(|e| MinisignError::Kdf(e.to_string()))?;
    let mut out = Zeroizing::new([0u8; 104]);
    scrypt::scrypt(pass, salt, &params, out.as_mut())
        .map_err(|e| MinisignError::Kdf(e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minisign_default_params_are_n20_r8_p1() {
        assert_eq!(pick_params(OPSLIMIT, MEMLIMIT), (20, 8, 1));
    }

    #[test]
    fn unencrypted_key_round_trips_and_signs() {
        let sk = SecretKey::generate().unwrap();
        let text = sk.to_file_text(None).unwrap();
        let back = SecretKey::parse(&text, None).unwrap();
        assert_eq!(back.key_id, sk.key_id);
        let sig = back.sign(b"hello", "tc");
        sk.public().verify(b"hello", &sig).unwrap();
        let reparsed = SignatureBox::parse(&sig.to_file_text()).unwrap();
        assert_eq!(reparsed, sig);
        assert!(matches!(
            sk.public().verify(b"hellO", &sig),
            Err(MinisignError::BadSignature)
        ));
    }

    #[test]
    fn encrypted_key_round_trips_and_wrong_passphrase_is_refused() {
        let sk = SecretKey::generate().unwrap();
        let text = sk.to_file_text(Some(b"pw")).unwrap();
        assert!(SecretKey::file_is_encrypted(&text).unwrap());
        let back = SecretKey::parse(&text, Some(b"pw")).unwrap();
        assert_eq!(back.public(), sk.public());
        assert!(matches!(
            SecretKey::parse(&text, Some(b"nope")),
            Err(MinisignError::WrongPassphrase)
        ));
        assert!(matches!(
            SecretKey::parse(&text, None),
            Err(MinisignError::PassphraseRequired)
        ));
    }

    #[test]
    fn edited_trusted_comment_fails_global_signature() {
        let sk = SecretKey::generate().unwrap();
        let mut sig = sk.sign(b"m", "name:a");
        sig.trusted_comment = "name:b".into();
        assert!(matches!(
            sk.public().verify(b"m", &sig),
            Err(MinisignError::BadGlobalSignature)
        ));
    }

    #[test]
    fn crlf_line_ends_are_read_but_a_carriage_return_inside_a_comment_is_refused() {
        let sk = SecretKey::generate().unwrap();
        let text = sk.sign(b"m", "tc").to_file_text();
        let crlf = text.replace('\n', "\r\n");
        assert_eq!(
            SignatureBox::parse(&crlf).unwrap(),
            SignatureBox::parse(&text).unwrap()
        );
        for bad in [
            text.replacen("\n", "\r\r\n", 1),
            text.replace("trusted comment: tc\n", "trusted comment: tc\r\r\n"),
            text.replace("trusted comment: tc", "trusted comment: t\rc"),
        ] {
            assert!(SignatureBox::parse(&bad).is_err(), "{bad:?}");
        }
        // Extra CRs after base64 are no longer trimmed away either.
        let lines: Vec<&str> = text.lines().collect();
        let bad = format!(
            "{}\n{}\r\r\n{}\n{}\n",
            lines[0], lines[1], lines[2], lines[3]
        );
        assert!(SignatureBox::parse(&bad).is_err());
    }

    #[test]
    fn non_canonical_base64_is_refused() {
        let sk = SecretKey::generate().unwrap();
        let b64 = sk.public().to_base64();
        // Same bytes, but with a non-zero padding bit in the last character when possible.
        assert!(PublicKey::from_base64(&b64).is_ok());
        let mut bad = b64.clone();
        bad.push('=');
        assert!(PublicKey::from_base64(&bad).is_err());
    }
}
