//! Every file airlock reads whole, read with a cap: receipts, ledger exports, trust
//! stores, `bundle.toml`, approvals, keys, saved JSON. The caps are here, in one table
//! (docs/security.md, "Bounded inputs", lists them), so none is forgotten or drifts.
//! SQL files are not read whole: tiers are streamed (`airlock-sql`), gates and probes
//! have their own cap (`airlock_sql::MAX_QUERY_FILE`), and import's scripts theirs.
//!
//! Invariant: no file is read past its cap. The size the opened file reports is judged
//! before a byte is read, and the read itself goes through `take(cap + 1)`, so a FIFO,
//! a device or a file that grows meanwhile is refused after at most `cap + 1` bytes;
//! memory stays bounded by the cap (and what parsing the capped bytes costs) whatever
//! the input. This module is the one place the ground floor does I/O.

use std::io::Read;
use std::path::{Path, PathBuf};

/// A cap: the most bytes of one kind of input, and what that input is called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cap {
    pub bytes: u64,
    /// What is read, as an error names it ("a ledger export").
    pub what: &'static str,
}

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;

/// `airlock status --json`, saved (`audit --ledger`): about 1 KiB a ledger row, so
/// some 16,000 rows (years of releases). Parsed straight into rows: at the cap,
/// ~60 MB peak for the worst rows measured.
pub const LEDGER_EXPORT: Cap = Cap {
    bytes: 16 * MIB,
    what: "a ledger export",
};
/// A receipt (`apply --receipt`): a few KiB, one line per tier and check.
pub const RECEIPT: Cap = Cap {
    bytes: MIB,
    what: "a receipt",
};
/// A minisign signature file (`.minisig`) beside a receipt, bundle or approval.
pub const SIGNATURE: Cap = Cap {
    bytes: 64 * KIB,
    what: "a signature file",
};
/// `trust.toml`: a few hundred bytes a key, so some thousand keys.
pub const TRUST_POLICY: Cap = Cap {
    bytes: 256 * KIB,
    what: "a trust store's trust.toml",
};
/// A public key file (`.pub`): two lines, under 200 bytes.
pub const PUBLIC_KEY: Cap = Cap {
    bytes: 4 * KIB,
    what: "a public key file",
};
/// A secret key file (`.key`), encrypted or not: under 1 KiB.
pub const SECRET_KEY: Cap = Cap {
    bytes: 64 * KIB,
    what: "a secret key file",
};
/// A passphrase file: its first line is the passphrase.
pub const PASSPHRASE: Cap = Cap {
    bytes: 64 * KIB,
    what: "a passphrase file",
};
/// `bundle.toml` of a source: some 70 bytes a tier, so several thousand tiers (an
/// imported history of 400 migrations is ~40 KiB).
pub const SPEC: Cap = Cap {
    bytes: 512 * KIB,
    what: "bundle.toml",
};
/// An approval document (`airlock approve`): one bundle's facts.
pub const APPROVAL: Cap = Cap {
    bytes: 64 * KIB,
    what: "an approval",
};
/// A saved `airlock fingerprint --json` (`fingerprint --diff`): some 150 bytes an
/// object of the schema, so about 50,000 objects.
pub const FINGERPRINT: Cap = Cap {
    bytes: 8 * MIB,
    what: "a saved fingerprint",
};
/// A saved `airlock rehearse --json` (`dossier --rehearsal`): a step table and at most
/// 50 measured locks, some KiB; the cap leaves room for long details.
pub const REHEARSAL: Cap = Cap {
    bytes: 4 * MIB,
    what: "a saved rehearsal report",
};
/// What this host remembers of a ledger's head (the state directory).
pub const REMEMBERED_HEAD: Cap = Cap {
    bytes: 64 * KIB,
    what: "this host's memory of a ledger head",
};
/// What this host keeps of a database's description (the state directory).
pub const DESCRIBED: Cap = Cap {
    bytes: 64 * MIB,
    what: "this host's kept description of a database",
};

/// A SQL file of a source named in several roles (a tier and a rollback file): each
/// role judges it from one read kept in memory (a file in one role is streamed).
pub const SQL_MANY_ROLES: Cap = Cap {
    bytes: 64 * MIB,
    what: "a SQL file named in several roles",
};

/// Every cap (`tests/bounded_inputs.rs` checks each is in docs/security.md's table).
pub const ALL: [Cap; 14] = [
    LEDGER_EXPORT,
    RECEIPT,
    SIGNATURE,
    TRUST_POLICY,
    PUBLIC_KEY,
    SECRET_KEY,
    PASSPHRASE,
    SPEC,
    APPROVAL,
    FINGERPRINT,
    REHEARSAL,
    REMEMBERED_HEAD,
    DESCRIBED,
    SQL_MANY_ROLES,
];

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{} is {}, over the cap of {} bytes for {what}", path.display(), size_words(*.size), cap)]
    TooLarge {
        path: PathBuf,
        what: &'static str,
        /// The size the file reports; None when it reports none it keeps to (a FIFO,
        /// a file that grew): then more than `cap` bytes were read.
        size: Option<u64>,
        cap: u64,
    },
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn size_words(size: Option<u64>) -> String {
    match size {
        Some(n) => format!("{n} bytes"),
        None => "longer than that".to_string(),
    }
}

impl ReadError {
    /// What to do, on its own line.
    pub fn hint(&self) -> Option<String> {
        match self {
            ReadError::TooLarge { what, .. } => Some(format!(
                "this is not {what} airlock wrote, or it was padded: check where it came from; the caps are in docs/security.md (\"Bounded inputs\")"
            )),
            ReadError::Io { .. } => None,
        }
    }

    /// Whether the input was over its cap (not a failed read).
    pub fn is_too_large(&self) -> bool {
        matches!(self, ReadError::TooLarge { .. })
    }
}

/// The bytes of `path`, at most `cap.bytes` of them, or [`ReadError::TooLarge`].
pub fn read_capped(path: &Path, cap: Cap) -> Result<Vec<u8>, ReadError> {
    let io = |source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let too_large = |size| ReadError::TooLarge {
        path: path.to_path_buf(),
        what: cap.what,
        size,
        cap: cap.bytes,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if meta.is_file() && meta.len() > cap.bytes {
        return Err(too_large(Some(meta.len())));
    }
    let mut bytes = Vec::with_capacity(if meta.is_file() {
        meta.len() as usize
    } else {
        0
    });
    file.take(cap.bytes + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > cap.bytes {
        return Err(too_large(None));
    }
    Ok(bytes)
}

/// [`read_capped`] as UTF-8 text (invalid UTF-8 is an I/O error of kind `InvalidData`,
/// as `std::fs::read_to_string` says it).
pub fn read_capped_string(path: &Path, cap: Cap) -> Result<String, ReadError> {
    let bytes = read_capped(path, cap)?;
    String::from_utf8(bytes).map_err(|e| ReadError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e.utf8_error()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_over_its_cap_is_refused_by_its_size_and_one_at_the_cap_is_read() {
        let dir = std::env::temp_dir().join(format!("airlock-bounded-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cap = Cap {
            bytes: 10,
            what: "a test input",
        };
        let at = dir.join("at");
        std::fs::write(&at, [b'x'; 10]).unwrap();
        assert_eq!(read_capped(&at, cap).unwrap().len(), 10);
        let over = dir.join("over");
        // Sparse: nothing is read, the size says it all.
        std::fs::File::create(&over)
            .unwrap()
            .set_len(1 << 40)
            .unwrap();
        let e = read_capped(&over, cap).unwrap_err();
        assert!(
            matches!(e, ReadError::TooLarge { size: Some(n), cap: 10, .. } if n == 1 << 40),
            "{e}"
        );
        assert!(e
            .to_string()
            .contains("over the cap of 10 bytes for a test input"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_stream_without_a_size_is_cut_after_cap_plus_one_bytes() {
        // /dev/zero reports no size and never ends.
        let e = read_capped(Path::new("/dev/zero"), PUBLIC_KEY).unwrap_err();
        assert!(matches!(e, ReadError::TooLarge { size: None, .. }), "{e}");
    }
}
