//! Prisma Migrate's history: `migrations/<timestamp>_<name>/migration.sql`, one folder per
//! migration, applied in folder-name order (as `prisma migrate deploy` does), and
//! `migration_lock.toml` saying the database the history is for (`provider =
//! "postgresql"`). Prisma writes no down scripts: the report says so once.
//!
//! Invariant: a history whose lock file names another provider is refused whole, never
//! read as PostgreSQL's; a folder without `migration.sql` is named as left behind.

use super::folder::Folder;
use super::{layout_error, read, version_key, ImportError, LeftBehind, Migration, Script};
use std::collections::BTreeSet;

/// The lock file Prisma writes beside the migration folders.
pub(super) const LOCK: &str = "migration_lock.toml";

/// The provider `migration_lock.toml` names, when the folder has one.
fn provider(folder: &Folder) -> Result<Option<String>, ImportError> {
    match folder.has_file(LOCK) {
        Ok(true) => {}
        Ok(false) => return Ok(None),
        Err(why) => {
            return Err(ImportError::Refused {
                file: LOCK.into(),
                why: why.why(),
            })
        }
    }
    let text =
        String::from_utf8(read(folder, LOCK)?).map_err(|_| layout_error(LOCK, "not UTF-8"))?;
    let value: toml::Value = text
        .parse()
        .map_err(|e| layout_error(LOCK, format!("not TOML: {e}")))?;
    Ok(value
        .get("provider")
        .and_then(|p| p.as_str())
        .map(str::to_string))
}

/// Prisma's migrations of `folder` (its subfolders `dirs`, sorted by name).
pub(super) fn migrations(
    folder: &Folder,
    dirs: &[String],
    used: &mut BTreeSet<String>,
    left: &mut Vec<LeftBehind>,
) -> Result<Vec<Migration>, ImportError> {
    if let Some(p) = provider(folder)? {
        if p != "postgresql" && p != "postgres" {
            return Err(layout_error(
                LOCK,
                format!("provider = \"{p}\": a history for {p}, not PostgreSQL"),
            ));
        }
        used.insert(LOCK.into());
    }
    let mut out = vec![];
    for dir in dirs {
        let (version, _) = dir.split_once('_').unwrap_or((dir, ""));
        let Some(key) = version_key(version) else {
            continue;
        };
        let file = format!("{dir}/migration.sql");
        match folder.has_file(&file) {
            Ok(true) => {}
            Ok(false) => {
                left.push(LeftBehind {
                    refused: false,
                    file: dir.clone(),
                    why: "a migration folder without migration.sql: nothing to run".into(),
                });
                continue;
            }
            Err(why) => {
                left.push(LeftBehind::refused(file, why));
                continue;
            }
        }
        out.push(Migration {
            key,
            label: dir.clone(),
            up: Some(Script::File(file)),
            down: None,
            up_online: false,
            commits_apart: false,
            verify: None,
            no_down_said: false,
            lb: None,
        });
    }
    Ok(out)
}

/// Whether `folder` looks like Prisma's: its lock file, or a subfolder holding
/// `migration.sql`.
pub(super) fn detect(folder: &Folder, dirs: &[String]) -> bool {
    folder.has_file(LOCK) == Ok(true)
        || dirs
            .iter()
            .any(|d| folder.has_file(&format!("{d}/migration.sql")) == Ok(true))
}
