//! A throwaway PostgreSQL cluster of a test's own: initdb into a temporary directory,
//! its own socket directory and no TCP listener, owned by `postgres` when the tests run
//! as root. For tests that stop the server (tests/restart.rs) or need the whole lock
//! table (tests/fingerprint_scale.rs): never the shared server.
//!
//! Invariant: the server is stopped (`-m immediate`) when the `Cluster` drops, also on
//! panic; the directory goes with its `TempDir`. Fails loudly when the server binaries
//! are missing: a test that needs them never skips.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The directory holding initdb/pg_ctl/postgres: `$PG_BIN`, else the newest
/// `/usr/lib/postgresql/*/bin`.
pub fn pg_bin() -> PathBuf {
    if let Ok(p) = std::env::var("PG_BIN") {
        return PathBuf::from(p);
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, b)| b).unwrap_or_else(|| {
        panic!(
            "PostgreSQL server binaries (initdb, pg_ctl) not found under /usr/lib/postgresql/*/bin \
             and PG_BIN is not set; this test needs them (apt-get install postgresql)"
        )
    })
}

/// initdb refuses to run as root: as root, the cluster belongs to `postgres`.
pub fn cluster_owner() -> Option<(u32, u32)> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let name = std::ffi::CString::new("postgres").unwrap();
    // SAFETY: a NUL-terminated name; getpwnam returns null or static storage read at once.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    assert!(
        !pw.is_null(),
        "running as root and there is no `postgres` user to own a throwaway cluster"
    );
    // SAFETY: non-null (asserted above), just returned by getpwnam.
    Some(unsafe { ((*pw).pw_uid, (*pw).pw_gid) })
}

pub struct Cluster {
    bin: PathBuf,
    root: tempfile::TempDir,
    owner: Option<(u32, u32)>,
    port: u16,
}

impl Cluster {
    pub fn data(&self) -> PathBuf {
        self.root.path().join("data")
    }

    pub fn sock(&self) -> PathBuf {
        self.root.path().join("sock")
    }

    /// A server program, run as the cluster's owner.
    pub fn tool(&self, name: &str) -> Command {
        let mut c = Command::new(self.bin.join(name));
        if let Some((uid, gid)) = self.owner {
            c.uid(uid).gid(gid);
        }
        c.env_remove("PGDATA");
        c
    }

    pub fn run(&self, name: &str, args: &[&str]) {
        let o = self.tool(name).args(args).output().expect(name);
        assert!(
            o.status.success(),
            "{name} {args:?} failed\n{}\n{}\nserver log:\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
            std::fs::read_to_string(self.root.path().join("log")).unwrap_or_default()
        );
    }

    pub fn start() -> Cluster {
        let bin = pg_bin();
        let owner = cluster_owner();
        let root = tempfile::Builder::new()
            .prefix("airlock-cluster-")
            .tempdir()
            .expect("tempdir");
        std::fs::create_dir(root.path().join("sock")).unwrap();
        if let Some((uid, gid)) = owner {
            for p in [root.path().to_path_buf(), root.path().join("sock")] {
                std::os::unix::fs::chown(&p, Some(uid), Some(gid)).expect("chown");
            }
        }
        // The socket lives in our own directory, so any port number is free there;
        // no TCP listener at all.
        let port = 20_000 + (std::process::id() % 20_000) as u16;
        let c = Cluster {
            bin,
            root,
            owner,
            port,
        };
        let data = c.data();
        c.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        );
        c.pg_ctl(&["start"]);
        // The one-time setup: gates and probes run as a role without outside powers
        // (these gates and probes read only what PUBLIC may: no grant at all).
        c.client("postgres")
            .batch_execute("CREATE ROLE airlock_gate NOLOGIN;")
            .expect("create airlock_gate");
        c
    }

    pub fn pg_ctl(&self, action: &[&str]) {
        let data = self.data();
        let log = self.root.path().join("log");
        let opts = format!(
            "-p {} -k {} -c listen_addresses='' -c fsync=off",
            self.port,
            self.sock().display()
        );
        let mut args = vec![
            "-D",
            data.to_str().unwrap(),
            "-l",
            log.to_str().unwrap(),
            "-o",
            &opts,
            "-w",
            "-t",
            "60",
        ];
        args.extend_from_slice(action);
        self.run("pg_ctl", &args);
    }

    pub fn conn(&self, db: &str) -> String {
        format!(
            "host={} port={} user=postgres dbname={db}",
            self.sock().display(),
            self.port
        )
    }

    pub fn client(&self, db: &str) -> postgres::Client {
        postgres::Client::connect(&self.conn(db), postgres::NoTls)
            .unwrap_or_else(|e| panic!("connect to the throwaway cluster: {e}"))
    }

    pub fn scalar(&self, db: &str, sql: &str) -> String {
        let rows = self.client(db).simple_query(sql).expect(sql);
        for m in rows {
            if let postgres::SimpleQueryMessage::Row(r) = m {
                return r.get(0).unwrap_or("NULL").to_string();
            }
        }
        panic!("no row from {sql}")
    }

    /// Full schema + data dump, `\restrict` lines stripped.
    pub fn dump(&self, db: &str) -> String {
        let pg_dump = if self.bin.join("pg_dump").exists() {
            self.bin.join("pg_dump")
        } else {
            PathBuf::from("pg_dump")
        };
        super::pg_dump(&pg_dump, &self.conn(db), &[])
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self
            .tool("pg_ctl")
            .args([
                "-D",
                data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
