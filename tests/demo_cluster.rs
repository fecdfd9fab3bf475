//! `airlock demo` with no server reachable (`PGHOST` names an empty directory): it
//! starts a private cluster (initdb, Unix socket only), runs the whole story on it and
//! removes it — also when interrupted with SIGINT at any point — leaving no process,
//! directory or socket behind. With no server binaries either, one line says what to
//! install. Needs the PostgreSQL server binaries; fails loudly without them.

mod util;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use util::*;

/// A TMPDIR of the test's own (so that leftovers are visible), searchable by the
/// `postgres` user a root-run demo hands its cluster to; and an empty PGHOST.
struct Scene {
    tmp: tempfile::TempDir,
    nohost: tempfile::TempDir,
}

impl Scene {
    fn new() -> Scene {
        let tmp = tempdir();
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        Scene {
            tmp,
            nohost: tempdir(),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.args(args)
            .current_dir(self.tmp.path())
            .env("TMPDIR", self.tmp.path())
            .env("AIRLOCK_STATE_DIR", state_dir())
            .env("PGHOST", self.nohost.path())
            .env_remove("AIRLOCK_DB")
            .env_remove("PGPORT")
            .env_remove("PGDATABASE");
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run airlock")
    }

    /// The private cluster's directory, once the demo created it.
    fn cluster_dir(&self) -> Option<PathBuf> {
        std::fs::read_dir(self.tmp.path())
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("airlock-demo-pg-"))
            })
    }

    /// Nothing left: no file under TMPDIR, no process whose command line names it.
    fn assert_nothing_left(&self, what: &str) {
        let left: Vec<String> = std::fs::read_dir(self.tmp.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(left.is_empty(), "{what}: left in TMPDIR: {left:?}");
        let procs = processes_naming(self.tmp.path());
        assert!(procs.is_empty(), "{what}: processes left: {procs:?}");
    }
}

/// `pid: command line` of every process whose command line or data directory names
/// `path` (the postmaster's `-D`, and its children's titles name nothing, so the
/// postmaster's open cwd is checked too).
fn processes_naming(path: &Path) -> Vec<String> {
    let needle = path.to_string_lossy().into_owned();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let cmdline = std::fs::read(e.path().join("cmdline"))
            .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
            .unwrap_or_default();
        let cwd = std::fs::read_link(e.path().join("cwd"))
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        if pid != std::process::id() && (cmdline.contains(&needle) || cwd.starts_with(&needle)) {
            out.push(format!("{pid}: {cmdline} (cwd {cwd})"));
        }
    }
    out
}

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let until = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn sigint(child: &Child) {
    // SAFETY: kill(2) on our own child's pid.
    let rc = unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    assert_eq!(rc, 0, "kill -INT");
}

fn finish(mut child: Child, what: &str) -> std::process::ExitStatus {
    let until = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > until {
            let _ = child.kill();
            panic!("{what}: the demo did not exit within 90 s of SIGINT");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn demo_with_no_server_runs_on_a_private_cluster_and_removes_it() {
    let s = Scene::new();
    let o = s.run(&["--json", "demo"]);
    expect_code(&o, 0);
    let d = json(&o);
    assert_eq!(d["ok"], true, "{d:#}");
    let cluster = &d["private_cluster"];
    let dir = cluster["directory"]
        .as_str()
        .expect("private_cluster.directory");
    assert!(
        dir.starts_with(&*s.tmp.path().to_string_lossy()),
        "{dir} is not under TMPDIR"
    );
    assert!(cluster["server"]
        .as_str()
        .unwrap()
        .starts_with("PostgreSQL "));
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        assert_ne!(cluster["user"], "root", "the cluster must not run as root");
    }
    let steps: Vec<&str> = d["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(steps.first(), Some(&"start a private PostgreSQL cluster"));
    assert_eq!(steps.last(), Some(&"stop and remove the private cluster"));
    assert!(
        steps.contains(&"apply") && steps.contains(&"rollback"),
        "{steps:?}"
    );
    assert!(!Path::new(dir).exists(), "{dir} still exists");
    s.assert_nothing_left("after a green demo");
}

/// Names of the private cluster's databases, when its server answers.
fn databases(s: &Scene) -> Vec<String> {
    let Some(dir) = s.cluster_dir() else {
        return vec![];
    };
    let conn = format!(
        "host={} port=5432 user=postgres dbname=postgres connect_timeout=2",
        dir.join("sock").display()
    );
    let Ok(mut c) = postgres::Client::connect(&conn, postgres::NoTls) else {
        return vec![];
    };
    c.query("SELECT datname::text FROM pg_database", &[])
        .map(|rows| rows.iter().map(|r| r.get(0)).collect())
        .unwrap_or_default()
}

#[test]
fn a_sigint_at_any_point_stops_the_private_cluster_and_removes_it() {
    // Where to interrupt, each seen happening (not guessed from a delay): while initdb
    // runs, once the server listens, once the demo database exists (the story starts),
    // and while the rehearsal's clone exists (mid-story, steps still to come).
    type Ready = fn(&Scene) -> bool;
    let points: [(&str, Ready); 4] = [
        ("initdb running", |s| s.cluster_dir().is_some()),
        ("server listening", |s| {
            s.cluster_dir()
                .is_some_and(|d| d.join("sock/.s.PGSQL.5432").exists())
        }),
        ("demo database created", |s| {
            databases(s).iter().any(|d| d.starts_with("airlock_demo_"))
        }),
        ("rehearsal running", |s| {
            databases(s).iter().any(|d| d.contains("_rehearse_"))
        }),
    ];
    for (what, ready) in points {
        let s = Scene::new();
        let child = s
            .command(&["demo"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn airlock demo");
        wait_for(what, Duration::from_secs(60), || ready(&s));
        sigint(&child);
        let status = finish(child, what);
        // It handled the signal (cleaned up and exited), it was not killed by it, and
        // it did not claim success.
        assert!(
            status.code().is_some(),
            "{what}: killed by a signal: {status:?}"
        );
        assert_ne!(status.code(), Some(0), "{what}: exit 0 after SIGINT");
        s.assert_nothing_left(what);
    }
}

#[test]
fn with_no_server_binaries_either_one_line_says_what_to_install() {
    // Hide the server binaries in a private mount namespace (needs root, as CI is).
    let s = Scene::new();
    let empty = tempdir();
    let script = format!(
        "mount --bind {empty} /usr/lib/postgresql 2>/dev/null || mount -t tmpfs none /usr/lib/postgresql; exec \"$0\" demo",
        empty = empty.path().display()
    );
    assert!(
        Path::new("/usr/lib/postgresql").is_dir(),
        "this test hides /usr/lib/postgresql, which must exist (apt-get install postgresql)"
    );
    let o = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .arg(bin())
        .current_dir(s.tmp.path())
        .env("TMPDIR", s.tmp.path())
        .env("PGHOST", s.nohost.path())
        .env("PATH", "/usr/bin:/bin")
        .env_remove("AIRLOCK_DB")
        .output()
        .expect("unshare (util-linux) must be installed; this test runs as root");
    let err = stderr(&o);
    assert!(
        !err.contains("unshare failed") && !err.contains("Operation not permitted"),
        "cannot make a mount namespace (run as root): {err}"
    );
    expect_code(&o, 2);
    let first = err.lines().next().unwrap_or_default();
    assert!(
        first.contains("no PostgreSQL server answered")
            && first.contains("apt-get install postgresql"),
        "{err}"
    );
    s.assert_nothing_left("no server binaries");
}

/// On a server where `airlock_gate` did not exist, the demo creates it as an operator
/// would and drops it with its own roles (issue 48, finding 10: it was left behind on a
/// shared server); with `--keep --quiet` the one line printed says what was kept.
#[test]
fn the_demo_drops_the_gate_role_it_created_and_keep_quiet_says_what_it_kept() {
    let c = util::cluster::Cluster::start();
    let roles = |c: &util::cluster::Cluster| {
        c.scalar(
            "postgres",
            "SELECT count(*) FROM pg_roles WHERE rolname = 'airlock_gate' OR rolname LIKE 'airlock\\_demo\\_%'",
        )
    };
    // The test cluster is made with the gate role; this server has none.
    c.client("postgres")
        .batch_execute("DROP ROLE IF EXISTS airlock_gate")
        .unwrap();
    assert_eq!(roles(&c), "0");
    let t = tempdir();
    let state = t.path().join("state");
    let env = [("AIRLOCK_STATE_DIR", state.to_str().unwrap())];
    let o = airlock_env(
        t.path(),
        &["--json", "demo", "--db", &c.conn("postgres")],
        &env,
    );
    expect_code(&o, 0);
    let clean = json(&o)["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == "clean up")
        .map(|s| s["detail"].as_str().unwrap().to_string())
        .unwrap();
    assert!(
        clean.contains("the role airlock_gate it created"),
        "{clean}"
    );
    assert_eq!(roles(&c), "0", "the demo left a role behind");

    let o = airlock_env(
        t.path(),
        &["--quiet", "demo", "--keep", "--db", &c.conn("postgres")],
        &env,
    );
    expect_code(&o, 0);
    let out = stdout(&o);
    assert!(out.starts_with("kept: database airlock_demo_"), "{out}");
    let kept = out.lines().next().unwrap();
    let dir = kept.trim().rsplit(' ').next().unwrap().to_string();
    assert!(Path::new(&dir).join("trust").is_dir(), "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
}
