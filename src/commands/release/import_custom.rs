//! `airlock.toml`'s `[import.custom_change]` for `airlock import`: each Liquibase
//! `customChange` class the team mapped, its SQL file read (UTF-8) or its reason to
//! skip it. A file named that cannot be read stops the import before anything is
//! written.

use crate::error::{Error, Result};
use crate::project::{self, CustomChangeMapping};
use airlock_bundle::import::{CustomChange, CustomChanges};

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
                let bytes = std::fs::read(path).map_err(|e| refuse(e.to_string()))?;
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
