//! Two directories swapped in one step (Linux `renameat2(2)` with `RENAME_EXCHANGE`):
//! how a directory is replaced whole. A reader of either path finds the old tree or
//! the new one, never a mix, and never nothing.
//!
//! Invariant: both paths exist before and after; on any error neither moved.

use std::path::Path;

/// Exchange `a` and `b` atomically, then sync the directory holding `b` (best effort).
pub fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE)?;
    let parent = b
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if let Ok(d) = std::fs::File::open(parent) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn two_directories_change_places_and_a_missing_one_moves_nothing() {
        let t = tempfile::tempdir().unwrap();
        let (a, b) = (t.path().join("a"), t.path().join("b"));
        std::fs::create_dir(&a).unwrap();
        std::fs::create_dir(&b).unwrap();
        std::fs::write(a.join("x"), "a").unwrap();
        std::fs::write(b.join("x"), "b").unwrap();
        super::exchange(&a, &b).unwrap();
        assert_eq!(std::fs::read_to_string(a.join("x")).unwrap(), "b");
        assert_eq!(std::fs::read_to_string(b.join("x")).unwrap(), "a");
        assert!(super::exchange(&t.path().join("gone"), &b).is_err());
        assert_eq!(std::fs::read_to_string(b.join("x")).unwrap(), "a");
    }
}
