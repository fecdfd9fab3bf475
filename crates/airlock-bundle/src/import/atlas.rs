//! Atlas's versioned history: `<version>_<name>.sql` files applied in name order, and
//! `atlas.sum`, the folder's integrity file, checked first as `atlas migrate apply`
//! checks it: a file edited, added or removed since `atlas migrate hash` is refused,
//! named, before anything is read as a migration.
//!
//! `atlas.sum`, as Atlas writes it: a first line `h1:<sum>`, then one line `<file>
//! h1:<hash>` per `.sql` file in name order. One SHA-256 runs over the files in that
//! order, fed each file's name then its bytes (only its name when the file starts with
//! the directive `-- atlas:sum ignore`, which then has no line); a file's hash is the
//! running digest after it, base64. `<sum>` is the SHA-256 of every line's name and
//! hash in turn, base64. A file with `-- atlas:txmode none` at its top runs outside a
//! transaction (marked as such here). Atlas writes no down files.
//!
//! In golang-migrate format (`?format=golang-migrate`: `.up.sql` and `.down.sql`
//! files), Atlas's directory reads the `.up.sql` files as its migrations, and
//! `atlas.sum` sums those alone: it is checked over them, and the folder is then read
//! as golang-migrate reads it (the downs as the rollback).
//!
//! Invariant: no migration of a folder whose `atlas.sum` disagrees with its files is
//! brought over; the first file that differs is named.

use super::folder::Folder;
use super::{layout_error, read, version_key, ImportError, Migration, Script};
use base64::Engine;
use sha2::{Digest, Sha256};

/// Atlas's integrity file.
pub(super) const SUM: &str = "atlas.sum";

/// What the sum file of a folder says: its total and each file's (name, hash).
struct SumFile {
    total: String,
    files: Vec<(String, String)>,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Atlas's total over (name, hash) lines.
fn total(files: &[(String, String)]) -> String {
    let mut h = Sha256::new();
    for (n, hash) in files {
        h.update(n.as_bytes());
        h.update(hash.as_bytes());
    }
    b64(&h.finalize())
}

/// The lines of `atlas.sum`; a line that is not `<file> h1:<hash>` is refused.
fn parse(text: &str) -> Result<SumFile, ImportError> {
    let mut lines = text.lines();
    let total = lines
        .next()
        .and_then(|l| l.strip_prefix("h1:"))
        .ok_or_else(|| {
            layout_error(
                SUM,
                "checksum file format invalid: the first line is not `h1:<sum>`",
            )
        })?
        .to_string();
    let mut files = vec![];
    for (i, line) in lines.enumerate() {
        let (name, hash) = line.split_once("h1:").ok_or_else(|| {
            layout_error(
                SUM,
                format!(
                    "checksum file format invalid (line {}): not `<file> h1:<hash>`",
                    i + 2
                ),
            )
        })?;
        files.push((name.trim().to_string(), hash.to_string()));
    }
    Ok(SumFile { total, files })
}

/// Whether the file's first line is Atlas's directive `atlas:NAME VALUE`.
fn directive(bytes: &[u8], name: &str, value: &str) -> bool {
    let first = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    let Ok(first) = std::str::from_utf8(first) else {
        return false;
    };
    let Some((_, rest)) = first.split_once("atlas:") else {
        return false;
    };
    let mut words = rest.split_whitespace();
    words.next() == Some(name) && words.next() == Some(value)
}

/// Whether the file's leading comment block (before its first blank line) holds the
/// directive `-- atlas:txmode none`.
fn outside_transaction(bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(bytes);
    text.lines()
        .take_while(|l| l.starts_with("--") || l.starts_with('#'))
        .any(|l| {
            let mut w = l.trim_start_matches(['-', '#', ' ']).split_whitespace();
            w.next() == Some("atlas:txmode") && w.next() == Some("none")
        })
}

/// Atlas's hashes of `files` (name, bytes), in order.
fn hashes(files: &[(String, Vec<u8>)]) -> Vec<(String, String)> {
    let mut h = Sha256::new();
    let mut out = vec![];
    for (name, bytes) in files {
        h.update(name.as_bytes());
        if directive(bytes, "sum", "ignore") {
            continue;
        }
        h.update(bytes);
        out.push((name.clone(), b64(&h.clone().finalize())));
    }
    out
}

/// Check the folder's `.sql` files (`names`, sorted) against `atlas.sum`: Ok, or the
/// first file that differs, named.
fn verify(folder: &Folder, names: &[String]) -> Result<Vec<(String, Vec<u8>)>, ImportError> {
    let text = String::from_utf8(read(folder, SUM)?).map_err(|_| layout_error(SUM, "not UTF-8"))?;
    let sum = parse(&text)?;
    if total(&sum.files) != sum.total {
        return Err(layout_error(SUM, "checksum mismatch: its first line is not the sum of its other lines, so atlas.sum itself was edited; run `atlas migrate hash` where the history is kept (after checking why), then import"));
    }
    let mut files = vec![];
    let summed = |n: &&String| match golang_migrate_format(names) {
        true => n.ends_with(".up.sql"),
        false => n.ends_with(".sql"),
    };
    for n in names.iter().filter(summed) {
        files.push((n.clone(), read(folder, n)?));
    }
    let actual = hashes(&files);
    for i in 0..actual.len().max(sum.files.len()) {
        let (a, r) = (actual.get(i), sum.files.get(i));
        if a == r {
            continue;
        }
        let (file, what) = match (a, r) {
            (Some((an, _)), Some((rn, _))) if an == rn => (
                an.clone(),
                "edited since atlas.sum was written (its hash differs)",
            ),
            (Some((an, _)), Some((rn, _))) if !sum.files.iter().any(|(n, _)| n == an) => {
                let _ = rn;
                (an.clone(), "not in atlas.sum: added since it was written")
            }
            (_, Some((rn, _))) if !actual.iter().any(|(n, _)| n == rn) => (
                rn.clone(),
                "in atlas.sum but not in the folder: removed since it was written",
            ),
            (Some((an, _)), _) => (
                an.clone(),
                "not where atlas.sum has it: the files changed since it was written",
            ),
            (None, Some((rn, _))) => (rn.clone(), "in atlas.sum but not in the folder"),
            (None, None) => unreachable!("one of them is there"),
        };
        return Err(layout_error(&file, format!("checksum mismatch: {what}; Atlas refuses to apply this folder as it is (check the change, then `atlas migrate hash`)")));
    }
    Ok(files)
}

/// Whether the folder is in Atlas's golang-migrate format: it has `.up.sql` files.
fn golang_migrate_format(names: &[String]) -> bool {
    names.iter().any(|n| n.ends_with(".up.sql"))
}

/// Atlas's migrations of `folder` (its files `names`, sorted), after `atlas.sum` agrees.
pub(super) fn migrations(
    folder: &Folder,
    names: &[String],
    used: &mut std::collections::BTreeSet<String>,
) -> Result<Vec<Migration>, ImportError> {
    let files = verify(folder, names)?;
    used.insert(SUM.into());
    if golang_migrate_format(names) {
        return super::golang_migrate(names, used);
    }
    let mut out = vec![];
    for (name, bytes) in files {
        let stem = name.trim_end_matches(".sql");
        let (version, _) = stem.split_once('_').unwrap_or((stem, ""));
        used.insert(name.clone());
        let online = outside_transaction(&bytes);
        out.push(Migration {
            key: version_key(version).unwrap_or_default(),
            label: stem.into(),
            up: Some(Script::File(name)),
            down: None,
            up_online: online,
            commits_apart: false,
            verify: None,
            no_down_said: false,
            lb: None,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sum_is_a_running_digest() {
        let files = vec![
            ("1_a.sql".to_string(), b"CREATE TABLE a (i int);\n".to_vec()),
            ("2_b.sql".to_string(), b"-- atlas:sum ignore\nx".to_vec()),
            ("3_c.sql".to_string(), b"CREATE TABLE c (i int);\n".to_vec()),
        ];
        let h = hashes(&files);
        assert_eq!(h.len(), 2);
        let mut d = Sha256::new();
        d.update(b"1_a.sql");
        d.update(b"CREATE TABLE a (i int);\n");
        assert_eq!(h[0].1, b64(&d.clone().finalize()));
        d.update(b"2_b.sql");
        d.update(b"3_c.sql");
        d.update(b"CREATE TABLE c (i int);\n");
        assert_eq!(h[1].1, b64(&d.finalize()));
        assert!(outside_transaction(
            b"-- atlas:txmode none\n\nCREATE INDEX CONCURRENTLY i ON t (x);\n"
        ));
        assert!(!outside_transaction(
            b"CREATE TABLE t ();\n-- atlas:txmode none\n"
        ));
    }
}
