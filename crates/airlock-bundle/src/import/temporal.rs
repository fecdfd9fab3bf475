//! Temporal's versioned schema folder (`temporal-sql-tool`'s layout): a folder per
//! version, `vX.Y/`, whose `manifest.json` names the version (`CurrVersion`) and its
//! files in the order they run (`SchemaUpdateCqlFiles`); the tool runs the versions in
//! numeric order (`v1.10` after `v1.9`). Each file is a tier, named `vX.Y/file`; the
//! layout has no down scripts.
//!
//! Invariant: only what a manifest lists is brought over, in its order; a manifest
//! that does not parse, names another version than its folder, or lists a file that is
//! not there is refused naming it, and nothing is written; every other file of a
//! version folder is named as left behind.

use super::folder::{Entry, Folder};
use super::{layout_error, read, version_key, ImportError, LeftBehind, Migration, Script};
use std::collections::BTreeSet;

/// The manifest each version folder holds.
const MANIFEST: &str = "manifest.json";

/// The version of a version folder's name (`v1.2` → `1.2`), when it is one.
fn version(dir: &str) -> Option<(&str, Vec<u128>)> {
    let v = dir.strip_prefix('v')?;
    Some((v, version_key(v).filter(|k| !k.is_empty())?))
}

/// Whether `folder` holds Temporal's version folders: one `vX.Y/manifest.json`.
pub(super) fn detect(folder: &Folder, dirs: &[String]) -> bool {
    dirs.iter()
        .any(|d| version(d).is_some() && folder.has_file(&format!("{d}/{MANIFEST}")) == Ok(true))
}

/// The files a version's manifest lists, in order.
fn listed(folder: &Folder, dir: &str, v: &str) -> Result<Vec<String>, ImportError> {
    let at = format!("{dir}/{MANIFEST}");
    let manifest: serde_json::Value = serde_json::from_slice(&read(folder, &at)?)
        .map_err(|e| layout_error(&at, format!("not JSON: {e}")))?;
    let current = manifest.get("CurrVersion").and_then(|c| c.as_str());
    if current.map(str::trim) != Some(v) {
        return Err(layout_error(
            &at,
            format!(
                "`CurrVersion` is {}, not {v} as its folder says: the tool refuses such a manifest",
                current.map_or("missing".to_string(), |c| format!("\"{c}\""))
            ),
        ));
    }
    let files = manifest
        .get("SchemaUpdateCqlFiles")
        .and_then(|f| f.as_array())
        .ok_or_else(|| layout_error(&at, "no `SchemaUpdateCqlFiles` list"))?;
    files
        .iter()
        .map(|f| {
            f.as_str()
                .map(|f| format!("{dir}/{}", f.trim()))
                .ok_or_else(|| layout_error(&at, "`SchemaUpdateCqlFiles` holds a non-string"))
        })
        .collect()
}

/// The migrations of the version folders among `dirs`: each listed file, versions in
/// numeric order, files in their manifest's.
pub(super) fn migrations(
    folder: &Folder,
    dirs: &[String],
    used: &mut BTreeSet<String>,
    left: &mut Vec<LeftBehind>,
) -> Result<Vec<Migration>, ImportError> {
    let mut out = vec![];
    for dir in dirs {
        let Some((v, key)) = version(dir) else {
            left.push(LeftBehind {
                refused: false,
                file: dir.clone(),
                why: "not a version folder (vX.Y)".into(),
            });
            continue;
        };
        if folder.has_file(&format!("{dir}/{MANIFEST}")) != Ok(true) {
            left.push(LeftBehind {
                refused: false,
                file: dir.clone(),
                why: format!("a version folder without {MANIFEST}: the tool does not run it"),
            });
            continue;
        }
        let files = listed(folder, dir, v)?;
        used.insert(format!("{dir}/{MANIFEST}"));
        for (i, file) in files.iter().enumerate() {
            match folder.has_file(file) {
                Ok(true) => {}
                Ok(false) => {
                    return Err(layout_error(
                        file,
                        format!("listed in {dir}/{MANIFEST}, not in the folder"),
                    ))
                }
                Err(why) => {
                    left.push(LeftBehind::refused(file.clone(), why));
                    continue;
                }
            }
            used.insert(file.clone());
            let mut key = key.clone();
            key.push(i as u128);
            out.push(Migration {
                key,
                label: file.trim_end_matches(".sql").to_string(),
                up: Some(Script::File(file.clone())),
                down: None,
                up_online: false,
                commits_apart: false,
                verify: None,
                no_down_said: false,
                lb: None,
            });
        }
        unlisted(folder, dir, used, left)?;
    }
    Ok(out)
}

/// The files of a version folder its manifest does not list, as left behind.
fn unlisted(
    folder: &Folder,
    dir: &str,
    used: &BTreeSet<String>,
    left: &mut Vec<LeftBehind>,
) -> Result<(), ImportError> {
    let entries = folder
        .sub(dir)
        .map_err(|_| layout_error(dir, "a version folder import cannot open (a link?)"))?
        .entries()
        .map_err(|source| ImportError::Read {
            path: folder.join(dir),
            source,
        })?;
    for e in entries {
        let (name, why) = match e {
            Entry::File(n) => (
                n,
                format!("not listed in {dir}/{MANIFEST}: the tool does not run it"),
            ),
            Entry::Dir(n) => (
                n,
                "a folder inside a version folder: the tool does not read it".into(),
            ),
            Entry::Refused(n, why) => (n, why.why().to_string()),
        };
        let file = format!("{dir}/{name}");
        if !used.contains(&file) {
            left.push(LeftBehind {
                refused: false,
                file,
                why,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_folders_are_v_and_numbers() {
        assert_eq!(version("v1.10").map(|v| v.1), Some(vec![1, 10]));
        assert!(version("v").is_none());
        assert!(version("1.0").is_none());
        assert!(version("vnext").is_none());
    }
}
