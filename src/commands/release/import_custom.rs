//! `airlock.toml`'s `[import.custom_change]` for `airlock import`: each Liquibase
//! `customChange` class the team mapped, its SQL file read (UTF-8) or its reason to
//! skip it. A file named that cannot be read stops the import before anything is
//! written; so does one that is a symbolic link, not a regular file (a FIFO would hold
//! the import forever) or larger than a migration script may be, as in the folder
//! import reads.

use crate::error::{Error, Result};
use crate::project::{self, CustomChangeMapping};
use airlock_bundle::import::{CustomChange, CustomChanges, MAX_SCRIPT_BYTES};
use std::path::Path;

/// The project file's mapping, each SQL file read; empty without one.
pub fn read() -> Result<CustomChanges> {
    let Some((file, mapping)) = project::custom_changes() else {
        return Ok(CustomChanges::new());
    };
    let mut out = CustomChanges::new();
    for (class, m) in mapping {
        let change = match m {
            CustomChangeMapping::Skip(why) => CustomChange::Skip { why: why.clone() },
            CustomChangeMapping::Sql { written, path } => {
                let refuse = |why: String| {
                    Error::usage(
                        format!(
                            "{}: [import.custom_change] {class:?}: sql {}: {why}",
                            file.display(),
                            written.display()
                        ),
                        Some(format!(
                            "write the SQL that does what the class does in {} (relative to {}), or skip the class with the reason it need not run",
                            written.display(),
                            file.parent().map(|d| d.display().to_string()).unwrap_or_default()
                        )),
                    )
                };
                let bytes = read_sql(path).map_err(refuse)?;
                let text = String::from_utf8(bytes)
                    .map_err(|_| refuse("not UTF-8 (SQL files must be UTF-8)".into()))?;
                CustomChange::Sql {
                    file: written.display().to_string(),
                    text,
                }
            }
        };
        out.insert(class.clone(), change);
    }
    Ok(out)
}

/// The bytes of a mapped SQL file, opened once without following a symbolic link
/// (`O_NOFOLLOW`) or waiting on a FIFO (`O_NONBLOCK`), judged by what was opened
/// (`fstat`), at most [`MAX_SCRIPT_BYTES`] of them; or why not.
fn read_sql(path: &Path) -> std::result::Result<Vec<u8>, String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => "a symbolic link: import follows no link to a SQL file; name the file itself, inside the project".to_string(),
            _ => e.to_string(),
        })?;
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file (a FIFO, a device, a folder…): not read".into());
    }
    if meta.len() > MAX_SCRIPT_BYTES {
        return Err(format!(
            "{} bytes, over the {MAX_SCRIPT_BYTES} a SQL file import reads may have (it holds the file in memory)",
            meta.len()
        ));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_SCRIPT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_SCRIPT_BYTES {
        return Err(format!(
            "it grew past the {MAX_SCRIPT_BYTES} bytes a SQL file import reads may have while it was read"
        ));
    }
    Ok(bytes)
}
