//! This host's memory of the bundles this build of airlock verified whole, every SQL
//! rule (`sql_rules`) and every chunk hash included, so that `verify`, `plan`,
//! `rehearse` and `apply` of one release pay for them once, not once each.
//!
//! Both depend on nothing but the bundle's bytes and this build: the bundle id is the
//! SHA-256 of the signed manifest, which names every file's hash, size, chunk hashes
//! and role, and the rules are this build's ([`RULES_ID`]: a hash of the sources that
//! judge SQL and of the locked dependencies). Every read checks the rest as ever: the
//! signatures against the trust store, the archive's structure, and each file's
//! SHA-256, which proves the very bytes whose chunks were proven; a chunk is still
//! checked before its bytes are used ahead of the file's end (a tier streamed to the
//! server: [`crate::archive::Sink::chunks_proven`]). A file remembers one bundle under
//! one build: `DIR/RULES_ID/BUNDLE_ID`, holding one line that names both.
//!
//! Invariant: a bundle is remembered only after all of it verified and every one of
//! its SQL files passed; a memory that is missing, unreadable, of another build or not
//! exactly the expected line counts for nothing (the bundle is judged again).
//! Forgetting is always safe. Whoever can write the state directory can make this
//! host skip the SQL rules for a bundle a trusted key signed (never the signatures or
//! hashes), as they can already edit what the host remembers of each ledger.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// This build's rules: a hash of the sources that decide a SQL verdict (`build.rs`).
pub const RULES_ID: &str = env!("AIRLOCK_RULES_ID");

/// Where verdicts are remembered, or nowhere.
#[derive(Clone, Debug, Default)]
pub struct Verdicts {
    dir: Option<PathBuf>,
    /// Judge again even when a verdict is remembered (it is still remembered after).
    rejudge: bool,
    /// The last answer of [`passed`](Self::passed), shared by clones: every sink of one
    /// load sees the same answer, and the memory is read once.
    recalled: Arc<Mutex<Option<(String, bool)>>>,
}

impl Verdicts {
    /// Remembered under `dir` (created when the first verdict is).
    pub fn in_dir(dir: impl Into<PathBuf>) -> Verdicts {
        Verdicts {
            dir: Some(dir.into()),
            ..Verdicts::default()
        }
    }

    /// Never remembered: every bundle judged every time.
    pub fn none() -> Verdicts {
        Verdicts::default()
    }

    /// These verdicts, but judge every bundle again (remembering what passes).
    pub fn rejudging(mut self) -> Verdicts {
        self.rejudge = true;
        self
    }

    fn file(&self, bundle_id: &str) -> Option<PathBuf> {
        let plain = !bundle_id.is_empty() && bundle_id.bytes().all(|b| b.is_ascii_hexdigit());
        Some(self.dir.as_ref()?.join(RULES_ID).join(bundle_id)).filter(|_| plain)
    }

    /// Whether this build judged the bundle `bundle_id` on this host and it passed.
    pub fn passed(&self, bundle_id: &str) -> bool {
        if self.rejudge {
            return false;
        }
        let mut recalled = self.recalled.lock().expect("verdicts");
        if let Some((id, passed)) = recalled.as_ref() {
            if id == bundle_id {
                return *passed;
            }
        }
        let passed = self
            .file(bundle_id)
            .and_then(|f| read_small(&f))
            .is_some_and(|b| b == line(bundle_id).as_bytes());
        *recalled = Some((bundle_id.to_string(), passed));
        passed
    }

    /// Remember that `bundle_id` passed. Best effort: a state directory that cannot be
    /// written only means judging again next time. Memories of other builds go (they
    /// can never count again).
    pub fn remember(&self, bundle_id: &str) {
        let (Some(dir), Some(file)) = (&self.dir, self.file(bundle_id)) else {
            return;
        };
        if write_new(&file, line(bundle_id).as_bytes()).is_ok() {
            *self.recalled.lock().expect("verdicts") = Some((bundle_id.to_string(), true));
            forget_other_builds(dir);
        }
    }
}

/// A regular file's first bytes, enough for one line. Opened without following a
/// symlink and without blocking, then judged by what was opened, so nothing put there
/// (a FIFO, a link, a directory) is read or waited on, even if swapped in meanwhile.
fn read_small(path: &Path) -> Option<Vec<u8>> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut bytes = Vec::new();
    file.take(512).read_to_end(&mut bytes).ok()?;
    Some(bytes)
}

fn line(bundle_id: &str) -> String {
    format!("airlock SQL rules {RULES_ID} passed bundle {bundle_id}\n")
}

/// `bytes` into `path` whole or not at all: a temporary file beside it, renamed.
fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().expect("a verdict file has a directory");
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    tmp.persist(path).map(drop).map_err(|e| e.error)
}

fn forget_other_builds(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_name() != RULES_ID {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn a_verdict_counts_once_remembered_and_only_for_its_bundle() {
        let t = tempfile::tempdir().unwrap();
        let v = Verdicts::in_dir(t.path().join("judged"));
        assert!(!v.passed(ID));
        v.remember(ID);
        assert!(v.passed(ID));
        assert!(
            Verdicts::in_dir(t.path().join("judged")).passed(ID),
            "on disk"
        );
        assert!(!v.passed(&ID.replace('0', "1")));
        assert!(!v.clone().rejudging().passed(ID));
        assert!(!Verdicts::none().passed(ID));
    }

    #[test]
    fn a_memory_that_is_not_exactly_this_builds_line_counts_for_nothing() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("judged");
        // A new memory each time (one reads the disk once a bundle).
        let v = || Verdicts::in_dir(&dir);
        let file = dir.join(RULES_ID).join(ID);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        for wrong in ["", "airlock SQL rules", &line(ID).replace(RULES_ID, "0000")] {
            std::fs::write(&file, wrong).unwrap();
            assert!(!v().passed(ID), "{wrong:?}");
        }
        // Not a regular file: a FIFO (never opened, so never waited on), a symlink to
        // the right line, a directory.
        std::fs::remove_file(&file).unwrap();
        let made = std::process::Command::new("mkfifo")
            .arg(&file)
            .status()
            .unwrap();
        assert!(made.success());
        assert!(!v().passed(ID));
        std::fs::remove_file(&file).unwrap();
        let elsewhere = t.path().join("line");
        std::fs::write(&elsewhere, line(ID)).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &file).unwrap();
        assert!(!v().passed(ID));
        std::fs::remove_file(&file).unwrap();
        std::fs::create_dir(&file).unwrap();
        assert!(!v().passed(ID));
        std::fs::remove_dir(&file).unwrap();
        // Another build's memory of the same bundle: not this build's verdict, and
        // gone once this build remembers one.
        let other = dir.join("another-build").join(ID);
        std::fs::create_dir_all(other.parent().unwrap()).unwrap();
        std::fs::write(&other, line(ID)).unwrap();
        assert!(!v().passed(ID));
        v().remember(ID);
        assert!(v().passed(ID) && !other.exists());
    }

    #[test]
    fn an_id_that_is_not_a_hash_is_never_a_path() {
        let t = tempfile::tempdir().unwrap();
        let v = Verdicts::in_dir(t.path().join("judged"));
        for id in ["", "../x", "a/b", "."] {
            v.remember(id);
            assert!(!v.passed(id), "{id:?}");
        }
        assert!(!t.path().join("judged").exists());
    }

    #[test]
    fn a_state_directory_that_cannot_be_written_only_means_judging_again() {
        let t = tempfile::tempdir().unwrap();
        let blocked = t.path().join("file");
        std::fs::write(&blocked, "not a directory").unwrap();
        let v = Verdicts::in_dir(blocked.join("judged"));
        v.remember(ID);
        assert!(!v.passed(ID));
    }
}
