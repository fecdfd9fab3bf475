//! `BundlePath`: a path inside a bundle that is safe by construction.
//!
//! Invariant: a `BundlePath` is relative, UTF-8, normalized (no `.`/`..`/empty
//! components, no backslashes, no drive prefix, no control characters), fits a ustar
//! header (name ≤ 100 bytes or prefix ≤ 155 + name ≤ 100), and is NFC. Nothing else
//! can be written to disk by the extractor.

use unicode_normalization::UnicodeNormalization;

/// The bundle's own files; payload files may not take these names ([`is_reserved`]).
pub const MANIFEST: &str = "manifest.json";
pub const SUMS: &str = "SHA256SUMS";
pub const SIG_DIR: &str = "signatures/";
/// Where a bundle carries a signed trust store (`pack --trust-update`).
pub const TRUST_UPDATE_DIR: &str = "trust-update/";

/// Names the bundle itself uses; payload files may not take them.
pub fn is_reserved(path: &str) -> bool {
    path == MANIFEST
        || path == SUMS
        || path.starts_with(SIG_DIR)
        || path == "signatures"
        || path.starts_with(TRUST_UPDATE_DIR)
        || path == "trust-update"
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BundlePath(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PathProblem(pub String);

impl BundlePath {
    pub fn new(p: &str) -> Result<BundlePath, PathProblem> {
        let bad = |why: &str| Err(PathProblem(why.to_string()));
        if p.is_empty() {
            return bad("empty path");
        }
        if p.starts_with('/') {
            return bad("absolute path");
        }
        if p.contains('\\') {
            return bad("backslash in path");
        }
        if p.len() >= 2 && p.as_bytes()[1] == b':' {
            return bad("drive prefix in path");
        }
        if p.chars().any(|c| c.is_control()) {
            return bad("control character in path");
        }
        for comp in p.split('/') {
            match comp {
                "" => return bad("empty path component (// or trailing /)"),
                "." => return bad("'.' component in path"),
                ".." => return bad("'..' component in path"),
                _ => {}
            }
        }
        // ASCII text is NFC as it is (no combining marks, nothing to compose).
        if !p.is_ascii() && p.nfc().collect::<String>() != p {
            return bad("path is not Unicode NFC");
        }
        if !fits_ustar(p) {
            return bad("path too long for a ustar header (name 100 bytes, prefix 155)");
        }
        Ok(BundlePath(p.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for BundlePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn fits_ustar(p: &str) -> bool {
    if p.len() <= 100 {
        return true;
    }
    // Split at a '/' so that the prefix is ≤ 155 and the name ≤ 100.
    p.char_indices()
        .filter(|&(_, c)| c == '/')
        .any(|(i, _)| i <= 155 && p.len() - i - 1 <= 100 && p.len() - i - 1 > 0)
}

/// The key two paths collide on: NFC + lowercase. Used to refuse `A.sql` next to
/// `a.sql`, or NFC next to NFD spellings, which would overwrite each other on some
/// file systems.
pub fn collision_key(p: &str) -> String {
    let stripped = p.trim_start_matches("./");
    if stripped.is_ascii() {
        // NFC already; lowercase by the same table for ASCII.
        return stripped.to_ascii_lowercase();
    }
    stripped.nfc().flat_map(char::to_lowercase).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_paths_cannot_be_constructed() {
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a//b",
            "./a",
            "a/",
            "C:x",
            "a\\b",
            "a\nb",
            "e\u{301}.sql",
        ] {
            assert!(BundlePath::new(bad).is_err(), "{bad:?} accepted");
        }
        for good in [
            "bundle.toml",
            "sql/tiers/01.sql",
            "runbooks/owner.md",
            "\u{e9}.sql",
        ] {
            assert!(BundlePath::new(good).is_ok(), "{good:?} refused");
        }
        assert!(BundlePath::new(&"a".repeat(101)).is_err());
        assert!(BundlePath::new(&format!("{}/{}", "d".repeat(150), "f".repeat(90))).is_ok());
    }

    #[test]
    fn collisions_fold_case_and_normalization() {
        assert_eq!(collision_key("A.sql"), collision_key("a.sql"));
        assert_eq!(collision_key("e\u{301}.sql"), collision_key("\u{e9}.sql"));
        assert_eq!(collision_key("./a"), collision_key("a"));
    }

    /// The ASCII shortcuts give what normalizing gives: every ASCII character is NFC
    /// and lowercases alone to its ASCII lowercase.
    #[test]
    fn ascii_needs_no_normalizing() {
        for c in 0u8..128 {
            let p = format!("Dir/{}x.SQL", c as char);
            assert_eq!(p.nfc().collect::<String>(), p, "{c}");
            let slow: String = p.nfc().flat_map(char::to_lowercase).collect();
            assert_eq!(collision_key(&p), slow, "{c}");
        }
    }
}
