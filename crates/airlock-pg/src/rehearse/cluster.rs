//! A private, throwaway PostgreSQL cluster for `airlock demo` when no server answers:
//! `initdb` into a temporary directory, started with a Unix socket in that directory
//! and no TCP listener, owned by an unprivileged user when airlock runs as root.
//!
//! Invariant: whatever happens after [`PrivateCluster::start`] begins — success, an
//! error, a panic, SIGINT — the server is stopped (`pg_ctl -m immediate`, then SIGKILL
//! of its process group if that failed) and the directory removed, unless the caller
//! asks to keep it.

use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Port number the server is told (it names the socket file only: no TCP listener).
pub const PORT: u16 = 5432;
/// The cluster's superuser.
pub const SUPERUSER: &str = "postgres";

/// What to install when no server binaries are found, in one line.
pub const INSTALL_HINT: &str = "install the PostgreSQL server (Debian/Ubuntu: apt-get install postgresql; it provides initdb and pg_ctl), or point --db / PGHOST at a running server";

/// A directory holding `initdb` and `pg_ctl`: on `PATH` first, then the newest of
/// `roots`' `*/bin` (Debian's `/usr/lib/postgresql/N/bin`, PGDG's `/usr/pgsql-N/bin`).
pub fn find_server_bin(path_env: Option<&str>, roots: &[&str]) -> Option<PathBuf> {
    let has_tools = |d: &Path| d.join("initdb").is_file() && d.join("pg_ctl").is_file();
    if let Some(p) = path_env {
        if let Some(d) = std::env::split_paths(p).find(|d| has_tools(d)) {
            return Some(d);
        }
    }
    let mut found: Vec<(u32, PathBuf)> = Vec::new();
    for root in roots {
        let (dir, prefix) = match root.rsplit_once('/') {
            Some((dir, prefix)) => (if dir.is_empty() { "/" } else { dir }, prefix),
            None => continue,
        };
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(prefix)) else {
                continue;
            };
            let version = rest.split('.').next().and_then(|v| v.parse::<u32>().ok());
            let bin = e.path().join("bin");
            if let Some(v) = version.filter(|_| has_tools(&bin)) {
                found.push((v, bin));
            }
        }
    }
    found.sort();
    found.pop().map(|(_, b)| b)
}

/// Where server binaries are looked for after `PATH`.
pub const DEFAULT_ROOTS: [&str; 2] = ["/usr/lib/postgresql/", "/usr/pgsql-"];

/// The user and group the cluster runs as: ourselves, or when root (initdb refuses to
/// run as root) `postgres`, else `nobody`.
fn owner() -> Result<Option<(u32, u32, String)>, String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    for name in ["postgres", "nobody"] {
        let c = CString::new(name).expect("no NUL");
        // SAFETY: getpwnam returns null or a pointer to static storage read at once.
        let pw = unsafe { libc::getpwnam(c.as_ptr()) };
        if !pw.is_null() {
            // SAFETY: non-null, just returned by getpwnam.
            let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
            return Ok(Some((uid, gid, name.to_string())));
        }
    }
    Err("running as root and there is neither a `postgres` nor a `nobody` user to own a private cluster (initdb refuses to run as root)".into())
}

/// Can `uid`/`gid` walk down to `dir` (every ancestor searchable for them)?
fn reachable_by(dir: &Path, uid: u32, gid: u32) -> bool {
    use std::os::unix::fs::MetadataExt;
    dir.ancestors().skip(1).all(|a| {
        std::fs::metadata(a).is_ok_and(|m| {
            let mode = m.mode();
            if m.uid() == uid {
                mode & 0o100 != 0
            } else if m.gid() == gid {
                mode & 0o010 != 0
            } else {
                mode & 0o001 != 0
            }
        })
    })
}

/// Paths the server is given must survive pg_ctl's shell and postgresql.conf quoting.
fn plain_path(p: &Path) -> bool {
    p.to_str().is_some_and(|s| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+".contains(&b))
    }) && p.as_os_str().len() < 80
}

/// SIGINT seen while the cluster starts (before the connection's own Ctrl-C handler
/// takes over at the first connect).
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// From now on SIGINT (and SIGTERM) only sets a flag, so that a Ctrl-C while initdb or
/// the server starts still leads to the cleanup. The database connection's Ctrl-C
/// handler replaces it for SIGINT at the first connect and does the same.
pub fn catch_interrupts() {
    // SAFETY: the handler only stores to an atomic (async-signal-safe); sigaction with a
    // zeroed, then filled struct is the documented use.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigint as *const () as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGINT, &sa, std::ptr::null_mut());
        libc::sigaction(libc::SIGTERM, &sa, std::ptr::null_mut());
    }
}

/// True once SIGINT/SIGTERM arrived while [`catch_interrupts`] was in force.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

pub struct PrivateCluster {
    bin: PathBuf,
    root: Option<tempfile::TempDir>,
    owner: Option<(u32, u32, String)>,
    /// `initdb`'s version line, for the report.
    pub version: String,
    running: bool,
}

impl PrivateCluster {
    /// The cluster's directory (data, socket, log).
    pub fn dir(&self) -> &Path {
        self.root
            .as_ref()
            .map(|r| r.path())
            .unwrap_or(Path::new(""))
    }

    pub fn socket_dir(&self) -> PathBuf {
        self.dir().join("sock")
    }

    fn data(&self) -> PathBuf {
        self.dir().join("data")
    }

    fn log(&self) -> PathBuf {
        self.dir().join("server.log")
    }

    /// The user the server runs as.
    pub fn user(&self) -> String {
        self.owner
            .as_ref()
            .map(|o| o.2.clone())
            .unwrap_or_else(crate::session::conn::os_user)
    }

    /// libpq key=value string for `dbname` as the superuser (socket only).
    pub fn conninfo(&self, dbname: &str) -> String {
        format!(
            "host={} port={PORT} user={SUPERUSER} dbname={dbname}",
            self.socket_dir().display()
        )
    }

    fn tool(&self, name: &str) -> Command {
        let mut c = Command::new(self.bin.join(name));
        if let Some((uid, gid, _)) = &self.owner {
            c.uid(*uid).gid(*gid);
        }
        for k in [
            "PGDATA",
            "PGHOST",
            "PGPORT",
            "PGUSER",
            "PGDATABASE",
            "PGOPTIONS",
        ] {
            c.env_remove(k);
        }
        // The owner may not be able to read our working directory.
        c.current_dir(self.dir());
        c.stdin(Stdio::null());
        c
    }

    fn run(&self, name: &str, args: &[&str]) -> Result<String, String> {
        let out = self
            .tool(name)
            .args(args)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.bin.join(name).display()))?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.status.success() {
            Ok(text)
        } else {
            let log = std::fs::read_to_string(self.log()).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(5).collect();
            Err(format!(
                "{name} failed ({}): {}{}",
                out.status,
                text.trim(),
                if tail.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; server log: {}",
                        tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
                    )
                }
            ))
        }
    }

    /// initdb, configure (socket in our directory, no TCP), start, create the gate role.
    /// On any error (or SIGINT) what was started is stopped and removed before returning.
    pub fn start(bin: &Path) -> Result<PrivateCluster, String> {
        let owner = owner()?;
        let mut base = std::env::temp_dir();
        let usable = |b: &Path| {
            plain_path(b)
                && owner
                    .as_ref()
                    .is_none_or(|(uid, gid, _)| reachable_by(&b.join("x"), *uid, *gid))
        };
        if !usable(&base) {
            base = PathBuf::from("/tmp");
            if !usable(&base) {
                return Err(format!(
                    "no temporary directory the cluster's owner ({}) can reach; set TMPDIR to one",
                    owner.as_ref().map(|o| o.2.as_str()).unwrap_or("you")
                ));
            }
        }
        let root = tempfile::Builder::new()
            .prefix("airlock-demo-pg-")
            .tempdir_in(&base)
            .map_err(|e| format!("cannot create a directory in {}: {e}", base.display()))?;
        let mut c = PrivateCluster {
            bin: bin.to_path_buf(),
            root: Some(root),
            owner,
            version: String::new(),
            running: false,
        };
        match c.init_and_start() {
            Ok(()) => Ok(c),
            Err(e) => {
                let _ = c.stop_and_remove();
                Err(e)
            }
        }
    }

    fn init_and_start(&mut self) -> Result<(), String> {
        let check = || {
            if interrupted() {
                Err("interrupted (SIGINT) while starting the private cluster".to_string())
            } else {
                Ok(())
            }
        };
        std::fs::create_dir(self.socket_dir()).map_err(|e| e.to_string())?;
        if let Some((uid, gid, _)) = &self.owner {
            for p in [self.dir().to_path_buf(), self.socket_dir()] {
                std::os::unix::fs::chown(&p, Some(*uid), Some(*gid))
                    .map_err(|e| format!("chown {}: {e}", p.display()))?;
            }
        }
        std::fs::set_permissions(self.dir(), std::fs::Permissions::from_mode(0o700))
            .map_err(|e| e.to_string())?;
        self.version = self.run("initdb", &["--version"]).map(|v| {
            let v = v.trim();
            let v = v.strip_prefix("initdb (PostgreSQL) ").unwrap_or(v);
            format!("PostgreSQL {v}")
        })?;
        check()?;
        let data = self.data();
        let data_s = data.to_string_lossy().into_owned();
        self.run(
            "initdb",
            &[
                "-D",
                &data_s,
                "-U",
                SUPERUSER,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ],
        )?;
        check()?;
        let conf = format!(
            "\n# airlock demo: private throwaway cluster\nlisten_addresses = ''\nport = {PORT}\nunix_socket_directories = '{}'\nunix_socket_permissions = 0700\nfsync = off\n",
            self.socket_dir().display()
        );
        use std::io::Write;
        std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .and_then(|mut f| f.write_all(conf.as_bytes()))
            .map_err(|e| format!("cannot configure the private cluster: {e}"))?;
        let log = self.log().to_string_lossy().into_owned();
        // From here on a stop is needed even if pg_ctl reports a failure.
        self.running = true;
        self.run(
            "pg_ctl",
            &["-D", &data_s, "-l", &log, "-w", "-t", "60", "start"],
        )?;
        check()?;
        let mut client = postgres::Client::connect(&self.conninfo("postgres"), postgres::NoTls)
            .map_err(|e| format!("cannot connect to the private cluster: {e}"))?;
        // Gates and probes may run under this role (database hardening); create it the
        // way an operator would, so the demo works either way.
        client
            .batch_execute("CREATE ROLE airlock_gate NOLOGIN;")
            .map_err(|e| format!("cannot create role airlock_gate: {e}"))?;
        check()
    }

    /// Stop the server (`-m immediate`; SIGKILL of its process group if that fails)
    /// and remove the directory.
    pub fn stop_and_remove(&mut self) -> Result<(), String> {
        let stopped = self.stop();
        let removed = match self.root.take() {
            Some(root) => remove_dir(root),
            None => Ok(()),
        };
        stopped.and(removed)
    }

    /// Stop the server and keep the directory; returns it.
    pub fn stop_and_keep(&mut self) -> Result<PathBuf, String> {
        self.stop()?;
        Ok(self.root.take().map(|r| r.keep()).unwrap_or_default())
    }

    fn stop(&mut self) -> Result<(), String> {
        if !std::mem::take(&mut self.running) {
            return Ok(());
        }
        let data = self.data().to_string_lossy().into_owned();
        let by_pg_ctl = self.run(
            "pg_ctl",
            &["-D", &data, "-m", "immediate", "-w", "-t", "30", "stop"],
        );
        let pid_file = self.data().join("postmaster.pid");
        if by_pg_ctl.is_ok() && !pid_file.exists() {
            return Ok(());
        }
        // pg_ctl could not stop it (or it was still starting): the postmaster leads
        // its own session (pg_ctl setsid()s it), so its process group is the server.
        let pid = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|t| t.lines().next().and_then(|l| l.trim().parse::<i32>().ok()));
        if let Some(pid) = pid.filter(|p| *p > 1) {
            // SAFETY: plain kill(2) calls on a pid read from the server's own pid file.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
                libc::kill(pid, libc::SIGKILL);
            }
            let until = Instant::now() + Duration::from_secs(10);
            // SAFETY: signal 0 only checks for existence.
            while unsafe { libc::kill(pid, 0) } == 0 && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(50));
            }
            return Ok(());
        }
        by_pg_ctl.map(|_| ())
    }
}

/// Remove a directory whose last server processes may still be exiting.
fn remove_dir(root: tempfile::TempDir) -> Result<(), String> {
    let path = root.keep();
    let mut last = None;
    for _ in 0..20 {
        match std::fs::remove_dir_all(&path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => last = Some(e),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!(
        "cannot remove {}: {}; remove it by hand",
        path.display(),
        last.map(|e| e.to_string()).unwrap_or_default()
    ))
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let _ = self.stop_and_remove();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_binaries_are_found_on_path_first_then_the_newest_version() {
        let t = tempfile::tempdir().unwrap();
        let make = |dir: &Path| {
            std::fs::create_dir_all(dir).unwrap();
            for tool in ["initdb", "pg_ctl"] {
                std::fs::write(dir.join(tool), "").unwrap();
            }
        };
        let root = t.path().join("lib/postgresql");
        make(&root.join("13/bin"));
        make(&root.join("16/bin"));
        std::fs::create_dir_all(root.join("17/bin")).unwrap(); // no tools: skipped
        let roots = [format!("{}/", root.display())];
        let roots: Vec<&str> = roots.iter().map(String::as_str).collect();
        assert_eq!(find_server_bin(None, &roots), Some(root.join("16/bin")));
        let on_path = t.path().join("usr/bin");
        make(&on_path);
        let path = format!("/nonexistent:{}", on_path.display());
        assert_eq!(find_server_bin(Some(&path), &roots), Some(on_path));
        let empty = t.path().join("empty/");
        let empty = empty.to_str().unwrap();
        assert_eq!(find_server_bin(Some("/nonexistent"), &[empty]), None);
    }

    #[test]
    fn only_plain_short_paths_reach_the_server_configuration() {
        assert!(plain_path(Path::new("/tmp/airlock-demo-pg-Ab12_x")));
        assert!(!plain_path(Path::new("/tmp/it's")));
        assert!(!plain_path(Path::new("/tmp/a b")));
        assert!(!plain_path(Path::new(&format!("/tmp/{}", "x".repeat(90)))));
    }
}
