//! The folder `import` reads, and nothing outside it. A migrations folder comes from
//! anyone (a cloned repository, an archive): its `sqitch.plan` can name
//! `../../secret` or an absolute path, and any of its files or subfolders can be a
//! symbolic link to a file elsewhere on this host, which import would otherwise copy
//! into a source the user then signs.
//!
//! Invariant: every byte import reads comes from a regular file reached from the
//! folder's open handle by plain names (no `..`, no `.`, no absolute path, no empty
//! step), each step opened with `O_NOFOLLOW` (`openat`), so no path, no link (of a
//! file or of a folder on the way) and no swap after a check can make it read outside
//! the folder; what is refused says why ([`Refused`]). Every link is refused, even one
//! pointing inside: one rule, nothing to resolve. The folder named on the command line
//! may itself be a link: that one is the user's choice.

use std::ffi::CString;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd};
use std::path::{Path, PathBuf};

/// The most bytes of one migration script import reads: import holds the scripts in
/// memory (to cut dbmate sections and find the tables they create). A larger script
/// is refused; write it as a tier of a bundle by hand (tiers are streamed).
pub(crate) const MAX_SCRIPT: u64 = 64 << 20;

/// Why an entry of the folder was not read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The name reaches out of the folder: `..`, `.`, an absolute path, an empty step.
    Outside,
    /// The entry, or a folder on its way, is a symbolic link.
    Link,
    /// Not a regular file (a FIFO, a device, a socket, a folder).
    NotRegular,
    /// A name that is not UTF-8, or holds a NUL.
    BadName,
}

impl Refused {
    /// The reason, as "not brought over" says it.
    pub(crate) fn why(self) -> &'static str {
        match self {
            Refused::Outside => "names a path outside the folder (`..`, `.` or an absolute path): import reads only files inside the folder it is given; copy the file into the folder",
            Refused::Link => "a symbolic link (or on a path through one): import reads only regular files inside the folder and follows no link; copy the file into the folder instead",
            Refused::NotRegular => "not a regular file (a FIFO, a device, a folder…): not read",
            Refused::BadName => "a file name that is not UTF-8: not read; rename it",
        }
    }
}

/// What reading a file of the folder came to, short of its bytes.
#[derive(Debug)]
pub(crate) enum NotRead {
    Refused(Refused),
    TooLarge { size: u64 },
    Io(std::io::Error),
}

/// One entry of a folder's listing, judged by the entry itself (never its target).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Entry {
    File(String),
    Dir(String),
    /// An entry that is not read, and why.
    Refused(String, Refused),
}

/// The imported folder: its path (for messages) and an open handle every read starts
/// from.
#[derive(Debug)]
pub(crate) struct Folder {
    path: PathBuf,
    root: File,
}

impl Folder {
    pub(crate) fn open(path: &Path) -> std::io::Result<Folder> {
        use std::os::unix::fs::OpenOptionsExt;
        let root = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY)
            .open(path)?;
        Ok(Folder {
            path: path.to_path_buf(),
            root,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// `rel` under the folder, for messages.
    pub(crate) fn join(&self, rel: &str) -> PathBuf {
        self.path.join(rel)
    }

    /// The folder's own entries, by name, sorted; links and other non-files as
    /// [`Entry::Refused`]. Only names come from the listing: every read opens the name
    /// again from the handle, without following a link.
    pub(crate) fn entries(&self) -> std::io::Result<Vec<Entry>> {
        let mut out = vec![];
        for entry in std::fs::read_dir(proc_path(&self.root).as_deref().unwrap_or(&self.path))? {
            let entry = entry?;
            let kind = entry.file_type()?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                let lossy = entry.file_name().to_string_lossy().into_owned();
                out.push(Entry::Refused(lossy, Refused::BadName));
                continue;
            };
            out.push(if kind.is_symlink() {
                Entry::Refused(name, Refused::Link)
            } else if kind.is_dir() {
                Entry::Dir(name)
            } else if kind.is_file() {
                Entry::File(name)
            } else {
                Entry::Refused(name, Refused::NotRegular)
            });
        }
        out.sort_by(|a, b| entry_name(a).cmp(entry_name(b)));
        Ok(out)
    }

    /// The bytes of the regular file `rel` (`/`-separated plain names), at most
    /// [`MAX_SCRIPT`] of them.
    pub(crate) fn read(&self, rel: &str) -> Result<Vec<u8>, NotRead> {
        let file = self.open_file(rel)?;
        let size = file.metadata().map_err(NotRead::Io)?.len();
        if size > MAX_SCRIPT {
            return Err(NotRead::TooLarge { size });
        }
        let mut bytes = Vec::with_capacity(size as usize);
        file.take(MAX_SCRIPT + 1)
            .read_to_end(&mut bytes)
            .map_err(NotRead::Io)?;
        if bytes.len() as u64 > MAX_SCRIPT {
            return Err(NotRead::TooLarge {
                size: bytes.len() as u64,
            });
        }
        Ok(bytes)
    }

    /// The subfolder `rel` (`/`-separated plain names), reached as every file is: from
    /// the folder's handle, step by step, no link followed. Its reads and listing start
    /// from its own handle.
    pub(crate) fn sub(&self, rel: &str) -> Result<Folder, NotRead> {
        let steps = plain_steps(rel).ok_or(NotRead::Refused(Refused::Outside))?;
        let mut at: Option<File> = None;
        for dir in steps {
            let parent = at.as_ref().unwrap_or(&self.root);
            let opened = open_at(parent, dir, libc::O_NONBLOCK).map_err(refused_or_io)?;
            if !opened.metadata().map_err(NotRead::Io)?.is_dir() {
                return Err(NotRead::Refused(Refused::NotRegular));
            }
            at = Some(opened);
        }
        Ok(Folder {
            path: self.path.join(rel),
            root: at.expect("at least one step"),
        })
    }

    /// Whether `rel` is a regular file of the folder; `Err` when it is there but
    /// refused (a link, a FIFO, a name out of the folder), `Ok(false)` when absent.
    pub(crate) fn has_file(&self, rel: &str) -> Result<bool, Refused> {
        match self.open_file(rel) {
            Ok(_) => Ok(true),
            Err(NotRead::Refused(why)) => Err(why),
            Err(_) => Ok(false),
        }
    }

    /// `rel` opened step by step from the folder's handle, each step with `O_NOFOLLOW |
    /// O_NONBLOCK` (a link fails the open; a FIFO put there cannot block it) and judged
    /// by what was opened: a folder on the way, a regular file at the end.
    fn open_file(&self, rel: &str) -> Result<File, NotRead> {
        let steps = plain_steps(rel).ok_or(NotRead::Refused(Refused::Outside))?;
        let (last, dirs) = steps.split_last().expect("at least one step");
        let mut at: Option<File> = None;
        for dir in dirs {
            let parent = at.as_ref().unwrap_or(&self.root);
            // Not O_DIRECTORY: with it, a link is ENOTDIR, like a file; without, ELOOP.
            let opened = open_at(parent, dir, libc::O_NONBLOCK).map_err(refused_or_io)?;
            if !opened.metadata().map_err(NotRead::Io)?.is_dir() {
                return Err(NotRead::Refused(Refused::NotRegular));
            }
            at = Some(opened);
        }
        let parent = at.as_ref().unwrap_or(&self.root);
        let file = open_at(parent, last, libc::O_NONBLOCK).map_err(refused_or_io)?;
        if !file.metadata().map_err(NotRead::Io)?.is_file() {
            return Err(NotRead::Refused(Refused::NotRegular));
        }
        Ok(file)
    }
}

fn entry_name(e: &Entry) -> &str {
    match e {
        Entry::File(n) | Entry::Dir(n) | Entry::Refused(n, _) => n,
    }
}

/// `rel`'s steps when every one is a plain name; None for `..`, `.`, an absolute path
/// or an empty step (`a//b`).
fn plain_steps(rel: &str) -> Option<Vec<&str>> {
    let steps: Vec<&str> = rel.split('/').collect();
    steps
        .iter()
        .all(|s| !s.is_empty() && *s != "." && *s != "..")
        .then_some(steps)
}

/// A link met on the way (`ELOOP`) or a file where a folder should be (`ENOTDIR`) is
/// refused; anything else is an I/O error.
fn refused_or_io(e: std::io::Error) -> NotRead {
    match e.raw_os_error() {
        Some(libc::ELOOP) => NotRead::Refused(Refused::Link),
        Some(libc::ENOTDIR) => NotRead::Refused(Refused::NotRegular),
        _ if e.kind() == std::io::ErrorKind::InvalidInput => NotRead::Refused(Refused::BadName),
        _ => NotRead::Io(e),
    }
}

/// `openat(dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | flags)`.
#[allow(unsafe_code)] // openat(2), libc
fn open_at(dir: &File, name: &str, flags: libc::c_int) -> std::io::Result<File> {
    let name = CString::new(name).map_err(|_| std::io::ErrorKind::InvalidInput)?;
    // SAFETY: `dir` is an open descriptor for the duration of the call and `name` a
    // NUL-terminated string; openat does not keep either.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC | flags,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by openat, is valid, and nothing else owns it.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// The handle's own path on Linux (`/proc/self/fd/N`), so the listing is of the very
/// folder the reads start from; elsewhere the folder's path.
fn proc_path(root: &File) -> Option<PathBuf> {
    let p = PathBuf::from(format!("/proc/self/fd/{}", root.as_raw_fd()));
    p.exists().then_some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_are_steps() {
        assert_eq!(plain_steps("deploy/a.sql"), Some(vec!["deploy", "a.sql"]));
        for bad in ["../a", "a/../b", "/etc/passwd", "a//b", "./a", "a/", ""] {
            assert_eq!(plain_steps(bad), None, "{bad}");
        }
    }
}
