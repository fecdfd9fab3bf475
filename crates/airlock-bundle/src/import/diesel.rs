//! diesel's history: `migrations/<version>_<name>/up.sql` and `down.sql`, one folder per
//! migration, the version `2024-01-01-120000` (or diesel's own
//! `00000000000000_diesel_initial_setup`, imported as written), applied in version
//! order as diesel orders them: the text before the first `_`, dashes dropped,
//! compared as text (`2026-07-30-140000-0000` is `202607301400000000`). diesel runs
//! each in a transaction unless the folder has a `metadata.toml` whose
//! `run_in_transaction` is false (or missing: diesel's default for a file that is
//! there); such a migration is marked as run outside one, and becomes an online tier
//! when a transaction would refuse it. Folders whose name starts with `.` are not
//! migrations, as diesel skips them.
//!
//! Invariant: `up.sql` and `down.sql` are brought over byte for byte; a folder without
//! `up.sql` is named as left behind.

use super::folder::Folder;
use super::{layout_error, read, version_key, ImportError, LeftBehind, Migration, Script};
use std::collections::BTreeSet;

/// diesel's version of a folder name: the text before the first `_`, dashes dropped.
fn version(dir: &str) -> String {
    let (v, _) = dir.split_once('_').unwrap_or((dir, ""));
    v.replace('-', "")
}

/// A diesel version's numbers (for `--history`), when it is digits.
fn key(version: &str) -> Option<Vec<u128>> {
    (!version.is_empty() && version.chars().all(|c| c.is_ascii_digit()))
        .then(|| version_key(version))
        .flatten()
}

/// Whether `dir/metadata.toml` says `run_in_transaction = false`.
fn outside_transaction(folder: &Folder, dir: &str) -> Result<bool, ImportError> {
    let rel = format!("{dir}/metadata.toml");
    if folder.has_file(&rel) != Ok(true) {
        return Ok(false);
    }
    let text =
        String::from_utf8(read(folder, &rel)?).map_err(|_| layout_error(&rel, "not UTF-8"))?;
    let value: toml::Value = text
        .parse()
        .map_err(|e| layout_error(&rel, format!("not TOML: {e}")))?;
    // diesel reads a metadata.toml it can read with `run_in_transaction` defaulting to
    // false, and one it cannot parse as absent (run in a transaction).
    Ok(match value.get("run_in_transaction") {
        Some(v) => v.as_bool() == Some(false),
        None => true,
    })
}

/// diesel's migrations of `folder` (its subfolders `dirs`).
pub(super) fn migrations(
    folder: &Folder,
    dirs: &[String],
    left: &mut Vec<LeftBehind>,
) -> Result<Vec<Migration>, ImportError> {
    let mut out = vec![];
    let mut seen = BTreeSet::new();
    let mut dirs: Vec<&String> = dirs.iter().filter(|d| !d.starts_with('.')).collect();
    dirs.sort_by_key(|d| version(d));
    for dir in dirs {
        let version = version(dir);
        let Some(key) = key(&version) else {
            continue;
        };
        let up = format!("{dir}/up.sql");
        match folder.has_file(&up) {
            Ok(true) => {}
            Ok(false) => {
                left.push(LeftBehind {
                    refused: false,
                    file: dir.clone(),
                    why: "a migration folder without up.sql: nothing to run".into(),
                });
                continue;
            }
            Err(why) => {
                left.push(LeftBehind::refused(up, why));
                continue;
            }
        }
        if !seen.insert(key.clone()) {
            return Err(layout_error(
                dir,
                format!("a second migration with version {version}: diesel refuses a duplicate version; keep one"),
            ));
        }
        let down_rel = format!("{dir}/down.sql");
        let down = match folder.has_file(&down_rel) {
            Ok(true) => Some(Script::File(down_rel)),
            Ok(false) => None,
            Err(why) => {
                left.push(LeftBehind::refused(down_rel, why));
                None
            }
        };
        let outside = outside_transaction(folder, dir)?;
        out.push(Migration {
            key,
            label: dir.clone(),
            up: Some(Script::File(up)),
            down,
            up_online: outside,
            commits_apart: false,
            verify: None,
            no_down_said: false,
            lb: None,
        });
    }
    Ok(out)
}

/// Whether `folder` looks like diesel's: a subfolder holding `up.sql`.
pub(super) fn detect(folder: &Folder, dirs: &[String]) -> bool {
    dirs.iter()
        .any(|d| folder.has_file(&format!("{d}/up.sql")) == Ok(true))
}

#[cfg(test)]
mod tests {
    #[test]
    fn versions_are_their_digits() {
        assert_eq!(super::version("2024-01-01-120000_a_b"), "20240101120000");
        assert_eq!(
            super::version("2026-07-30-140000-0000_x"),
            "202607301400000000"
        );
        assert_eq!(super::key("20240101120000"), Some(vec![20240101120000]));
        assert_eq!(super::key("00000000000000"), Some(vec![0]));
        assert_eq!(super::key("abc"), None);
        assert_eq!(super::key(""), None);
    }
}
