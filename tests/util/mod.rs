//! Shared helpers for the integration tests: run the real binary, make keys and
//! sources, and give each database test its own fresh PostgreSQL database.
#![allow(dead_code)]

pub mod child;
pub mod cluster;
pub mod craft;
mod fixture;
pub mod liquibase;
#[allow(unused_imports)]
pub use fixture::*;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_airlock"))
}

/// `airlock ARGS` in `dir`, with a clean environment for the knobs that matter.
pub fn airlock(dir: &Path, args: &[&str]) -> Output {
    airlock_env(dir, args, &[])
}

pub fn airlock_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(bin());
    c.args(args);
    run_clean(c, dir, env)
}

/// `airlock ARGS` in `dir` under the file-creation mask `umask` (e.g. "027").
pub fn airlock_umask(dir: &Path, umask: &str, args: &[&str]) -> Output {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(format!("umask {umask} && exec \"$0\" \"$@\""))
        .arg(bin())
        .args(args);
    run_clean(c, dir, &[])
}

/// `airlock ARGS` in `dir` with stdin, stdout and stderr on a pseudo-terminal
/// (util-linux `script`), `input` typed on it. Returns what the terminal showed.
pub fn airlock_tty(dir: &Path, args: &[&str], input: &str) -> Output {
    airlock_tty_with(dir, args, input, None, &[])
}

/// [`airlock_tty`] with these environment variables.
pub fn airlock_tty_env(dir: &Path, args: &[&str], input: &str, env: &[(&str, &str)]) -> Output {
    airlock_tty_with(dir, args, input, None, env)
}

/// [`airlock_tty`] on a terminal `cols` columns wide (`stty cols`), when given.
pub fn airlock_tty_sized(dir: &Path, args: &[&str], input: &str, cols: Option<u16>) -> Output {
    airlock_tty_with(dir, args, input, cols, &[])
}

fn airlock_tty_with(
    dir: &Path,
    args: &[&str],
    input: &str,
    cols: Option<u16>,
    env: &[(&str, &str)],
) -> Output {
    use std::io::Write;
    let mut line = match cols {
        Some(n) => format!("stty cols {n} rows 50; exec "),
        None => String::new(),
    };
    line.push_str(&shell_quote(&bin().to_string_lossy()));
    for a in args {
        line.push(' ');
        line.push_str(&shell_quote(a));
    }
    let mut c = Command::new("script");
    c.args(["--quiet", "--return", "--command", &line, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    clean(&mut c, dir);
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c.spawn().expect("run script(1) from util-linux");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("type on the terminal");
    child.wait_with_output().expect("script(1)")
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The knobs every test run starts without.
const CLEARED_ENV: [&str; 12] = [
    "AIRLOCK_DB",
    "AIRLOCK_TRUST",
    "AIRLOCK_GATE_ROLE",
    "AIRLOCK_CONFIG",
    "AIRLOCK_RECEIPTS",
    "AIRLOCK_LOCK_TIMEOUT",
    "AIRLOCK_PASSPHRASE",
    "PGDATABASE",
    "SOURCE_DATE_EPOCH",
    // Keys on hardware (tests/hardware_keys.rs): no token or agent of the user's.
    "AIRLOCK_PKCS11_MODULE",
    "SOFTHSM2_CONF",
    "SSH_AUTH_SOCK",
];

/// Where the binary keeps what it remembers of ledgers (per test process, never the
/// real user's state directory).
pub fn state_dir() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("airlock-test-state-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("test state dir");
        d
    })
    .clone()
}

/// `airlock ARGS` in `dir`, started and not waited for (stdout and stderr piped): for
/// tests that act while it runs.
pub fn airlock_spawn(dir: &Path, args: &[&str]) -> std::process::Child {
    airlock_command(dir, args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start airlock")
}

/// `airlock ARGS` in `dir`, not started, with the clean environment every helper here
/// gives (the test state directory included): for tests that choose its stdio.
pub fn airlock_command(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(bin());
    c.args(args);
    clean(&mut c, dir);
    c
}

/// Runs `c` in `dir` without the knobs every test run starts without, keeping what it
/// remembers in the test state directory, never the user's.
fn clean(c: &mut Command, dir: &Path) {
    c.current_dir(dir);
    for k in CLEARED_ENV {
        c.env_remove(k);
    }
    c.env("AIRLOCK_STATE_DIR", state_dir());
}

fn run_clean(mut c: Command, dir: &Path, env: &[(&str, &str)]) -> Output {
    clean(&mut c, dir);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run airlock")
}

/// This process's file-creation mask (children inherit it).
pub fn umask() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let mask = status
        .lines()
        .find_map(|l| l.strip_prefix("Umask:"))
        .expect("Umask in /proc/self/status");
    u32::from_str_radix(mask.trim(), 8).expect("octal umask")
}

/// Permission bits of a file.
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// Assert a file's permission bits (shown in octal when they differ).
#[track_caller]
pub fn assert_mode(path: &Path, want: u32) {
    let got = mode(path);
    assert!(
        got == want,
        "{}: mode {got:o}, expected {want:o}",
        path.display()
    );
}

pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Assert the exit code, printing both streams when it differs.
#[track_caller]
pub fn expect_code(o: &Output, want: i32) {
    assert_eq!(
        code(o),
        want,
        "exit code\n--- stdout\n{}\n--- stderr\n{}",
        stdout(o),
        stderr(o)
    );
}

/// Parse the `--json` document on stdout.
#[track_caller]
pub fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}\n{}", stdout(o), stderr(o)))
}

/// The bundles of a `status --json` document `doc` (only those given on its command
/// line when `given_only`): (version, state, place in its train), in its order.
pub fn train_places(doc: &serde_json::Value, given_only: bool) -> Vec<(String, String, String)> {
    doc["bundles"]
        .as_array()
        .unwrap_or_else(|| panic!("no bundles: {doc:#}"))
        .iter()
        .filter(|b| !given_only || b["given"] == true)
        .map(|b| {
            let s = |k: &str| b[k].as_str().unwrap_or_default().to_string();
            (s("bundle_version"), s("state"), s("train"))
        })
        .collect()
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("airlock-test-")
        .tempdir()
        .expect("tempdir")
}

/// An unencrypted key pair `dir/NAME.key` + `dir/NAME.pub`; returns the key id.
pub fn keygen(dir: &Path, name: &str) -> String {
    let o = airlock(dir, &["--json", "keygen", "--out", name, "--unencrypted"]);
    expect_code(&o, 0);
    json(&o)["key_id"].as_str().expect("key_id").to_string()
}

/// `.airlock-*` temp files or directories left in `d` (airlock writes through them
/// and must never leave one behind).
pub fn leftovers(d: &Path) -> Vec<String> {
    std::fs::read_dir(d)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".airlock-"))
        .collect()
}

pub fn write(path: &Path, text: &str) {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).expect("mkdir");
    }
    std::fs::write(path, text).expect("write");
}

/// Copy a directory tree.
pub fn copy_dir(from: &Path, to: &Path) {
    for e in walkdir::WalkDir::new(from) {
        let e = e.expect("walk");
        let rel = e.path().strip_prefix(from).expect("prefix");
        let dest = to.join(rel);
        if e.file_type().is_dir() {
            std::fs::create_dir_all(&dest).expect("mkdir");
        } else {
            std::fs::copy(e.path(), &dest).expect("copy");
        }
    }
}

/// Every file under `dir` (recursively, in name order) and its bytes: compared before
/// and after a refusal to prove nothing there changed.
pub fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = vec![];
    for e in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let e = e.expect("walk");
        if e.file_type().is_file() {
            out.push((
                e.path()
                    .strip_prefix(dir)
                    .expect("prefix")
                    .display()
                    .to_string(),
                std::fs::read(e.path()).expect("read"),
            ));
        }
    }
    out
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The reference source copied to `dir/one-roof`, retargeted at `database`.
pub fn reference_source(dir: &Path, database: &str) -> PathBuf {
    let src = dir.join("one-roof");
    copy_dir(&repo().join("bundle/one-roof"), &src);
    let toml = src.join("bundle.toml");
    let text = std::fs::read_to_string(&toml).expect("bundle.toml");
    let text = text.replace(
        "database = \"directus\"",
        &format!("database = \"{database}\""),
    );
    std::fs::write(&toml, text).expect("write bundle.toml");
    src
}

/// A small source: one gate (`gate.sql`), a probe, tiers as given, a rollback.
pub struct MiniSource {
    pub dir: PathBuf,
}

impl MiniSource {
    /// `tiers`: (name, sql, gated)
    pub fn new(
        root: &Path,
        database: &str,
        gate_sql: &str,
        tiers: &[(&str, &str, bool)],
        rollback_sql: &str,
    ) -> MiniSource {
        let dir = root.join("src");
        let mut toml = format!(
            "[bundle]\nname = \"mini\"\nversion = \"1.0\"\nsequence = 1\n\n[target]\ndatabase = \"{database}\"\n\n[params.code]\nrequired = true\npattern = \"^[A-Za-z0-9';\\\\- ]+$\"\ndescription = \"a code\"\n\n[[gate]]\nname = \"g\"\nfile = \"sql/gate.sql\"\n\n[preflight]\nfile = \"sql/probe.sql\"\nexpect = {{ t = \"0\" }}\n\n"
        );
        for (i, (name, sql, gated)) in tiers.iter().enumerate() {
            let f = format!("sql/tier{}.sql", i + 1);
            write(&dir.join(&f), sql);
            toml.push_str(&format!(
                "[[tier]]\nname = \"{name}\"\nfiles = [\"{f}\"]\ngates = [{}]\n\n",
                if *gated { "\"g\"" } else { "" }
            ));
        }
        toml.push_str("[rollback]\nfiles = [\"sql/rollback.sql\"]\n");
        write(&dir.join("bundle.toml"), &toml);
        write(&dir.join("sql/gate.sql"), gate_sql);
        write(
            &dir.join("sql/probe.sql"),
            "SELECT 't'::text AS key, (SELECT count(*) FROM pg_tables WHERE schemaname = 'app')::text AS value",
        );
        write(&dir.join("sql/rollback.sql"), rollback_sql);
        MiniSource { dir }
    }
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// One test of the calling file at a time, for files whose tests change cluster-wide
/// state (roles, database settings) another test of the file reads. (A rehearsal
/// counts only what its own transactions change in the cluster, so rehearsing alone
/// needs no guard.) Hold the guard for the whole test (a fixture field
/// declared last, so the fixture's own cleanup runs under it). A test that makes a
/// second fixture while it holds the first gets a guard that holds nothing more.
pub fn cluster_serial() -> Serial {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    if SERIAL_HELD.with(|h| h.get()) {
        return Serial(None);
    }
    let guard = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    SERIAL_HELD.with(|h| h.set(true));
    Serial(Some(guard))
}

thread_local!(static SERIAL_HELD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) });

/// See [`cluster_serial`]; released on the thread that took it.
pub struct Serial(Option<std::sync::MutexGuard<'static, ()>>);

impl Drop for Serial {
    fn drop(&mut self) {
        if self.0.take().is_some() {
            SERIAL_HELD.with(|h| h.set(false));
        }
    }
}

/// A fresh database on the local server, dropped (WITH FORCE) when this goes away.
/// Fails loudly when no server is reachable: these tests never skip.
pub struct TestDb {
    pub name: String,
}

pub fn admin() -> postgres::Client {
    let host = std::env::var("PGHOST").unwrap_or_else(|_| "/var/run/postgresql".into());
    let user = std::env::var("PGUSER").unwrap_or_else(|_| "root".into());
    postgres::Config::new()
        .host(&host)
        .port(pg_port())
        .user(&user)
        .dbname("postgres")
        .connect(postgres::NoTls)
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is not reachable at {host} as {user}: {e}\n\
                 These tests need a real server. Start it (pg_ctlcluster --skip-systemctl-redirect 15 main start) or run .ci/run."
            )
        })
}

/// The one-time setup the README asks for: the cluster role gates and probes run as
/// (airlock refuses to run them as a superuser), with no read rights of its own — no
/// `pg_read_all_data`; each test database grants it what its gates read
/// ([`TestDb::new`]). Idempotent and safe to race.
pub fn ensure_gate_role() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        admin()
            .batch_execute(
                "DO $$ BEGIN
                   IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'airlock_gate') THEN
                     CREATE ROLE airlock_gate NOLOGIN;
                   END IF;
                   -- The recommended setup has no pg_read_all_data (a machine set up by
                   -- an older README may still grant it): tests see what a fresh one does.
                   IF EXISTS (SELECT FROM pg_auth_members m
                                JOIN pg_roles g ON g.oid = m.roleid AND g.rolname = 'pg_read_all_data'
                                JOIN pg_roles a ON a.oid = m.member AND a.rolname = 'airlock_gate') THEN
                     REVOKE pg_read_all_data FROM airlock_gate;
                   END IF;
                 EXCEPTION WHEN duplicate_object OR unique_violation OR internal_error THEN NULL;
                 END $$",
            )
            .expect("create the airlock_gate role");
    });
}

/// What an operator grants the gate role in a test database, short of listing each
/// table `airlock plan` derives: SELECT on the tables and USAGE on the schemas the
/// test's own (superuser) role creates there, from now on. Nothing outside this
/// database, nothing in `pg_catalog`.
const GATE_ROLE_READS: &str = "ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO airlock_gate;
     ALTER DEFAULT PRIVILEGES GRANT USAGE ON SCHEMAS TO airlock_gate;
     GRANT SELECT ON ALL TABLES IN SCHEMA public TO airlock_gate;";

impl TestDb {
    pub fn new(tag: &str) -> TestDb {
        ensure_gate_role();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("airlock_t_{tag}_{}_{n}", std::process::id());
        admin()
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .expect("create test database");
        let db = TestDb { name };
        db.exec(GATE_ROLE_READS);
        db
    }

    pub fn client(&self) -> postgres::Client {
        let user = std::env::var("PGUSER").unwrap_or_else(|_| "root".into());
        self.client_as(&user)
    }

    /// A connection to this database as `user`.
    pub fn client_as(&self, user: &str) -> postgres::Client {
        let host = std::env::var("PGHOST").unwrap_or_else(|_| "/var/run/postgresql".into());
        postgres::Config::new()
            .host(&host)
            .port(pg_port())
            .user(user)
            .dbname(&self.name)
            .connect(postgres::NoTls)
            .unwrap_or_else(|e| panic!("connect to {} as {user}: {e}", self.name))
    }

    pub fn exec(&self, sql: &str) {
        let mut c = self.client();
        c.batch_execute(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        self.close(c);
    }

    pub fn scalar(&self, sql: &str) -> String {
        let mut c = self.client();
        let rows = c.simple_query(sql).expect("query");
        self.close(c);
        for m in rows {
            if let postgres::SimpleQueryMessage::Row(r) = m {
                return r.get(0).unwrap_or("NULL").to_string();
            }
        }
        panic!("no row from {sql}")
    }

    /// Close `c` and wait until the server's backend for it has gone: a backend exits
    /// after its client has, and a rehearse started at once would see it as another
    /// session on the target (and clone from a dump instead of a template).
    fn close(&self, mut c: postgres::Client) {
        let pid: i32 = c
            .query_one("SELECT pg_backend_pid()", &[])
            .expect("pg_backend_pid")
            .get(0);
        drop(c);
        let mut a = admin();
        for _ in 0..1000 {
            let left: i64 = a
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = $1",
                    &[&pid],
                )
                .expect("pg_stat_activity")
                .get(0);
            if left == 0 {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!(
            "the backend {pid} of a closed connection to {} has not exited in 10 s",
            self.name
        );
    }

    /// `--db` value for the binary.
    pub fn conn(&self) -> String {
        format!("dbname={}", self.name)
    }

    /// A full `pg_dump` (schema + data), `\restrict` lines stripped.
    pub fn dump(&self) -> String {
        self.dump_with(&[])
    }

    /// The dump without the `airlock` schema (the ledger remembers; nothing else may).
    pub fn dump_without_ledger(&self) -> String {
        self.dump_with(&["--exclude-schema=airlock"])
    }

    fn dump_with(&self, extra: &[&str]) -> String {
        pg_dump(Path::new("pg_dump"), &self.name, extra)
    }

    pub fn exists(name: &str) -> bool {
        let rows = admin()
            .query("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
            .expect("query");
        !rows.is_empty()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Ok(mut c) = std::panic::catch_unwind(admin) {
            let _ = c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// A full `pg_dump` (schema + data, no owners) of `conn` by `program`, with the
/// `\restrict <random token>` lines this pg_dump prints stripped, so that two dumps
/// of the same database compare equal.
pub fn pg_dump(program: &Path, conn: &str, extra: &[&str]) -> String {
    let o = Command::new(program)
        .args(["--no-owner", "-d", conn])
        .args(extra)
        .output()
        .expect("pg_dump");
    assert!(
        o.status.success(),
        "pg_dump failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Pack `src` with `key` into `dir/OUT`; returns the bundle path.
pub fn pack(dir: &Path, src: &Path, key: &str, out: &str) -> PathBuf {
    let o = airlock(
        dir,
        &["pack", src.to_str().unwrap(), "--key", key, "--out", out],
    );
    expect_code(&o, 0);
    dir.join(out)
}

/// `apply`'s options for a plain library-level apply to `db` (no params, gates run,
/// nothing remembered, no question asked).
pub fn plain_apply_options<'a>(
    conn: &'a airlock::db::conn::ConnSpec,
    db: &TestDb,
) -> airlock::db::apply::Options<'a> {
    airlock::db::apply::Options {
        conn,
        expected_db: airlock::spec::TargetDatabase::Name(db.name.clone()),
        params: Default::default(),
        through: None,
        lock_timeout: "10s".into(),
        lock_retries: 3,
        statement_timeout: "5min".into(),
        allow_drift: false,
        resume: false,
        gate_role: None,
        approvals: None,
        skip_gates: false,
        remember: false,
        confirm: None,
        observer: None,
        deliver: None,
        vouch: None,
    }
}

/// An external tool a test runs (`minisign`…): a missing one is named, with what to
/// do, instead of a bare `NotFound`.
pub fn tool(name: &str) -> Command {
    if which_tool(name).is_none() {
        panic!(
            "this test needs `{name}` on PATH and it is not there (it may have been removed since scripts/test checked for it): install {name} and run the test again"
        );
    }
    Command::new(name)
}

/// Where `name` is on PATH, if anywhere.
pub fn which_tool(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// The port of the server the tests talk to: `$PGPORT`, else 5432 (the postgres
/// crate reads no libpq environment of its own).
pub fn pg_port() -> u16 {
    match std::env::var("PGPORT") {
        Ok(p) if !p.is_empty() => p
            .parse()
            .unwrap_or_else(|_| panic!("PGPORT={p:?} is not a port number")),
        _ => 5432,
    }
}
