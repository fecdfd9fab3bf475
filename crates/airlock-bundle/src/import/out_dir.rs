//! Where an import is written: the `--out` source directory, whole or not at all.
//! The source is staged in a directory beside `--out` and put in place by one
//! rename; with [`Existing::Replace`] (`--force`) an existing source is exchanged with
//! the staged one in one step (`renameat2` `RENAME_EXCHANGE`), then removed.
//!
//! Invariant: nothing at `--out` changes until the new source is whole, and what is
//! replaced is only ever a source directory (a real directory holding bundle.toml):
//! never a file, a link, the folder holding the migrations read, or the current one.

use super::ImportError;
use std::path::{Path, PathBuf};

/// What to do when `--out` already holds something.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Existing {
    /// Refuse ([`ImportError::OutExists`]): import writes a new source directory.
    Refuse,
    /// Replace a source directory there, whole (`--force`).
    Replace,
}

/// Whether `out` may be written as `existing` says, before any work; `migrations`: the
/// folders the import reads.
pub fn check(out: &Path, existing: Existing, migrations: &[&Path]) -> Result<(), ImportError> {
    let Ok(meta) = std::fs::symlink_metadata(out) else {
        return Ok(());
    };
    let empty_dir = meta.is_dir()
        && std::fs::read_dir(out)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
    if empty_dir {
        return Ok(());
    }
    if existing == Existing::Refuse {
        return Err(ImportError::OutExists(out.to_path_buf()));
    }
    let refuse = |why: String| {
        Err(ImportError::NotReplaceable {
            out: out.to_path_buf(),
            why,
        })
    };
    if let Some(why) = not_a_source(out) {
        return refuse(why.into());
    }
    let real = canonical(out)?;
    for m in migrations {
        if canonical(m)?.starts_with(&real) {
            return refuse(format!(
                "it holds the migrations being imported ({})",
                m.display()
            ));
        }
    }
    if std::env::current_dir().is_ok_and(|cwd| cwd.starts_with(&real)) {
        return refuse("it is the current directory, or holds it".into());
    }
    Ok(())
}

/// Why `out` (which exists) is not a source directory `--force` may replace: a link,
/// not a directory, or one without a bundle.toml file.
fn not_a_source(out: &Path) -> Option<&'static str> {
    let meta = std::fs::symlink_metadata(out).ok()?;
    if meta.file_type().is_symlink() {
        return Some("it is a symbolic link (--force replaces a source directory, never what a link points to)");
    }
    if !meta.is_dir() {
        return Some("it is not a directory");
    }
    let holds_spec = std::fs::symlink_metadata(out.join("bundle.toml")).is_ok_and(|m| m.is_file());
    (!holds_spec).then_some(
        "it holds no bundle.toml: --force replaces only a bundle source directory, never another directory",
    )
}

fn canonical(p: &Path) -> Result<PathBuf, ImportError> {
    p.canonicalize().map_err(|source| ImportError::Read {
        path: p.to_path_buf(),
        source,
    })
}

/// A new, empty directory beside `out` to write the source into (removed when
/// dropped, unless put in place).
pub fn stage(out: &Path) -> Result<tempfile::TempDir, ImportError> {
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    tempfile::Builder::new()
        .prefix(".airlock-import-")
        .tempdir_in(parent)
        .map_err(|source| ImportError::Write {
            path: out.to_path_buf(),
            source,
        })
}

/// The whole staged source put at `out`: renamed there (an empty directory there
/// removed first), or, when a source is there and `existing` replaces it ([`check`]
/// allowed it), exchanged with it in one step and the old one removed.
pub fn put_in_place(
    staged: tempfile::TempDir,
    out: &Path,
    existing: Existing,
) -> Result<(), ImportError> {
    let write_err = |source| ImportError::Write {
        path: out.to_path_buf(),
        source,
    };
    let occupied = std::fs::read_dir(out).is_ok_and(|mut d| d.next().is_some());
    if occupied && existing == Existing::Refuse {
        // Filled while the import ran.
        return Err(ImportError::OutExists(out.to_path_buf()));
    }
    if occupied {
        // Judged again at the act: what is there now is what is exchanged and removed.
        if let Some(why) = not_a_source(out) {
            return Err(ImportError::NotReplaceable {
                out: out.to_path_buf(),
                why: format!("{why} (it changed while the import ran)"),
            });
        }
        crate::exchange::exchange(staged.path(), out).map_err(write_err)?;
        // The staged path now holds the old source: dropping it removes it.
        return Ok(());
    }
    if out.exists() {
        std::fs::remove_dir(out).map_err(write_err)?;
    }
    std::fs::rename(staged.path(), out).map_err(write_err)?;
    let _ = staged.keep();
    Ok(())
}
