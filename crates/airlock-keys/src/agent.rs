//! An Ed25519 key held by ssh-agent, asked to sign over the agent protocol
//! (draft-miller-ssh-agent: REQUEST_IDENTITIES and SIGN_REQUEST, nothing else).
//!
//! Written against the draft rather than taken from `ssh-agent-client-rs`: that crate
//! needs `ssh-key`'s `crypto` feature, which brings RSA (RUSTSEC-2023-0071, unfixed),
//! DSA and the NIST curves into a signing tool for two messages of a few bytes each.

use crate::{verifying_key, KeyError};
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use base64::Engine;
use ed25519_dalek::VerifyingKey;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

const FAILURE: u8 = 5;
const REQUEST_IDENTITIES: u8 = 11;
const IDENTITIES_ANSWER: u8 = 12;
const SIGN_REQUEST: u8 = 13;
const SIGN_RESPONSE: u8 = 14;
/// An answer longer than this is not an agent's (OpenSSH's own limit is 256 KiB).
const MAX_MESSAGE: usize = 256 * 1024;
/// How long the agent may take to take a request and to answer it, unless
/// `AIRLOCK_AGENT_TIMEOUT` (seconds) says otherwise: a socket that accepts and never
/// answers must not hold a signing command forever. Long enough for a confirmation
/// asked on the agent's side (`ssh-add -c`).
const DEFAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// The variable that sets that time, in seconds.
pub const TIMEOUT_VAR: &str = "AIRLOCK_AGENT_TIMEOUT";
const ED25519: &str = "ssh-ed25519";
const SK_ED25519: &str = "sk-ssh-ed25519@openssh.com";

pub(crate) struct AgentKey {
    socket: PathBuf,
    blob: Vec<u8>,
    pub(crate) public: VerifyingKey,
}

/// `SHA256:` and 43 characters of unpadded base64, as `ssh-keygen -l` prints.
pub(crate) fn check_fingerprint(fp: &str) -> Result<String, KeyError> {
    let b64 = fp
        .strip_prefix("SHA256:")
        .ok_or_else(|| KeyError::Fingerprint(fp.into()))?;
    match B64.decode(b64) {
        Ok(raw) if raw.len() == 32 => Ok(fp.into()),
        _ => Err(KeyError::Fingerprint(fp.into())),
    }
}

fn fingerprint(blob: &[u8]) -> String {
    format!("SHA256:{}", B64.encode(Sha256::digest(blob)))
}

/// Reads the SSH wire format's `string`s and `uint32`s off a message.
struct Wire<'a>(&'a [u8]);

impl<'a> Wire<'a> {
    fn u32(&mut self) -> Option<u32> {
        let (head, rest) = self.0.split_first_chunk::<4>()?;
        self.0 = rest;
        Some(u32::from_be_bytes(*head))
    }
    fn string(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        if n > self.0.len() {
            return None;
        }
        let (s, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(s)
    }
}

fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s);
}

fn agent_error(why: impl Into<String>) -> KeyError {
    KeyError::Device {
        what: "ssh-agent".into(),
        why: why.into(),
    }
}

/// How long the agent may take: `AIRLOCK_AGENT_TIMEOUT` seconds (a whole number above
/// zero), else [`DEFAULT_TIMEOUT`].
fn timeout() -> Result<std::time::Duration, KeyError> {
    match std::env::var(TIMEOUT_VAR) {
        Err(std::env::VarError::NotPresent) => Ok(DEFAULT_TIMEOUT),
        Ok(v) => match v.trim().parse::<u64>() {
            Ok(secs) if secs > 0 => Ok(std::time::Duration::from_secs(secs)),
            _ => Err(KeyError::AgentTimeoutValue(v)),
        },
        Err(std::env::VarError::NotUnicode(v)) => Err(KeyError::AgentTimeoutValue(
            v.to_string_lossy().into_owned(),
        )),
    }
}

/// One request, one answer, on a fresh connection, each way within the timeout.
fn ask(socket: &PathBuf, body: &[u8]) -> Result<Vec<u8>, KeyError> {
    let limit = timeout()?;
    let mut s = UnixStream::connect(socket).map_err(|e| KeyError::AgentNotRunning {
        why: format!("cannot connect to SSH_AUTH_SOCK={}: {e}", socket.display()),
    })?;
    s.set_read_timeout(Some(limit))
        .and_then(|()| s.set_write_timeout(Some(limit)))
        .map_err(|e| agent_error(e.to_string()))?;
    let failed = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => KeyError::AgentTimeout {
            socket: socket.display().to_string(),
            secs: limit.as_secs(),
        },
        _ => agent_error(e.to_string()),
    };
    let mut msg = (body.len() as u32).to_be_bytes().to_vec();
    msg.extend_from_slice(body);
    s.write_all(&msg).map_err(failed)?;
    let mut len = [0u8; 4];
    s.read_exact(&mut len).map_err(failed)?;
    let len = u32::from_be_bytes(len) as usize;
    if len == 0 || len > MAX_MESSAGE {
        return Err(agent_error(format!("an answer of {len} bytes")));
    }
    let mut answer = vec![0u8; len];
    s.read_exact(&mut answer).map_err(failed)?;
    Ok(answer)
}

fn socket() -> Result<PathBuf, KeyError> {
    match std::env::var_os("SSH_AUTH_SOCK") {
        Some(s) if !s.is_empty() => Ok(s.into()),
        _ => Err(KeyError::AgentNotRunning {
            why: "SSH_AUTH_SOCK is not set".into(),
        }),
    }
}

/// The key blobs the agent holds.
fn identities(socket: &PathBuf) -> Result<Vec<Vec<u8>>, KeyError> {
    let answer = ask(socket, &[REQUEST_IDENTITIES])?;
    let malformed = || agent_error("a malformed list of identities");
    if answer[0] != IDENTITIES_ANSWER {
        return Err(agent_error(format!(
            "answered {} to a list request",
            answer[0]
        )));
    }
    let mut w = Wire(&answer[1..]);
    let n = w.u32().ok_or_else(malformed)?;
    let mut blobs = vec![];
    for _ in 0..n {
        let blob = w.string().ok_or_else(malformed)?;
        w.string().ok_or_else(malformed)?; // the comment
        blobs.push(blob.to_vec());
    }
    Ok(blobs)
}

fn key_type(blob: &[u8]) -> String {
    Wire(blob)
        .string()
        .map(|t| String::from_utf8_lossy(t).into_owned())
        .unwrap_or_else(|| "an unreadable key".into())
}

impl AgentKey {
    pub(crate) fn open(fp: &str) -> Result<AgentKey, KeyError> {
        let socket = socket()?;
        let blobs = identities(&socket)?;
        let Some(blob) = blobs.iter().find(|b| fingerprint(b) == fp) else {
            let held = if blobs.is_empty() {
                "it lists no key".to_string()
            } else {
                let list: Vec<String> = blobs
                    .iter()
                    .map(|b| format!("{} {}", fingerprint(b), key_type(b)))
                    .collect();
                format!("it holds {}", list.join(", "))
            };
            return Err(KeyError::AgentNoKey {
                fingerprint: fp.into(),
                held,
                lists_none: blobs.is_empty(),
            });
        };
        let label = format!("{}{fp}", crate::AGENT_PREFIX);
        let mut w = Wire(blob);
        let kind = key_type(blob);
        w.string();
        match kind.as_str() {
            ED25519 => {}
            SK_ED25519 => {
                return Err(KeyError::WrongType {
                    key: label,
                    kind: "a hardware-backed sk-ssh-ed25519 (FIDO) key, whose signatures cover more than the message".into(),
                })
            }
            other => {
                return Err(KeyError::WrongType {
                    key: label,
                    kind: format!("an {other} key"),
                })
            }
        }
        let pk = w
            .string()
            .ok_or_else(|| agent_error("a malformed ssh-ed25519 key"))?;
        let public = verifying_key(&label, pk)?;
        Ok(AgentKey {
            socket,
            blob: blob.clone(),
            public,
        })
    }

    pub(crate) fn sign(&self, message: &[u8]) -> Result<[u8; 64], String> {
        let mut req = vec![SIGN_REQUEST];
        put_string(&mut req, &self.blob);
        put_string(&mut req, message);
        req.extend_from_slice(&0u32.to_be_bytes());
        let answer = ask(&self.socket, &req).map_err(|e| e.to_string())?;
        match answer[0] {
            SIGN_RESPONSE => {}
            FAILURE => {
                return Err(
                    "the agent refused to sign (was the key removed, or a confirmation declined?)"
                        .into(),
                )
            }
            other => return Err(format!("the agent answered {other} to a sign request")),
        }
        let mut w = Wire(&answer[1..]);
        let sig = w.string().ok_or("a malformed signature answer")?;
        let mut s = Wire(sig);
        if s.string() != Some(ED25519.as_bytes()) {
            return Err("the agent answered with a signature that is not ssh-ed25519".into());
        }
        let raw = s.string().ok_or("a malformed ssh-ed25519 signature")?;
        raw.try_into()
            .map_err(|_| format!("an ssh-ed25519 signature of {} bytes", raw.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_truncated_answer_reads_as_nothing_never_past_its_end() {
        assert!(Wire(&[0, 0, 0, 9, 1, 2]).string().is_none());
        assert!(Wire(&[0, 0]).u32().is_none());
        let mut out = vec![];
        put_string(&mut out, b"ab");
        assert_eq!(Wire(&out).string(), Some(&b"ab"[..]));
        assert_eq!(key_type(&[0, 0, 0, 40]), "an unreadable key");
    }

    #[test]
    fn fingerprints_are_checked_for_shape() {
        let fp = fingerprint(b"x");
        assert_eq!(check_fingerprint(&fp).unwrap(), fp);
        assert!(check_fingerprint("MD5:aa:bb").is_err());
        assert!(check_fingerprint("SHA256:short").is_err());
    }
}
