//! The pieces the database fixtures of the test files are made of: cluster roles
//! named for this process and dropped with the fixture, a directory with the release
//! manager's key, a mini bundle packed in it, and `airlock --json … --trust … --db …`.

use super::*;
use std::path::Path;
use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A role name no other test process or fixture uses: `PREFIX_PID_N`.
pub fn role_name(prefix: &str) -> String {
    static ROLES: AtomicUsize = AtomicUsize::new(0);
    let n = ROLES.fetch_add(1, Ordering::SeqCst);
    format!("{prefix}_{}_{n}", std::process::id())
}

/// Cluster roles a fixture created, dropped (`DROP ROLE IF EXISTS`) when this goes
/// away. Declare it after the fixture's [`TestDb`]: fields drop in order, so the
/// database (which a role may own) is gone first.
pub struct DropRoles(pub Vec<String>);

impl Drop for DropRoles {
    fn drop(&mut self) {
        if let Ok(mut c) = std::panic::catch_unwind(admin) {
            for role in &self.0 {
                if c.batch_execute(&format!("DROP ROLE IF EXISTS {role}"))
                    .is_ok()
                {
                    continue;
                }
                // Declared after the database it has grants or objects in (so dropped
                // first), or left by a failed test: those go first, in each database.
                let dbs: Vec<String> = c
                    .query(
                        "SELECT DISTINCT d.datname::text FROM pg_shdepend s \
                           JOIN pg_database d ON d.oid = s.dbid \
                           JOIN pg_roles r ON r.oid = s.refobjid WHERE r.rolname = $1",
                        &[role],
                    )
                    .map(|rows| rows.iter().map(|r| r.get(0)).collect())
                    .unwrap_or_default();
                for db in dbs {
                    let host =
                        std::env::var("PGHOST").unwrap_or_else(|_| "/var/run/postgresql".into());
                    let user = std::env::var("PGUSER").unwrap_or_else(|_| "root".into());
                    if let Ok(mut there) = postgres::Config::new()
                        .host(&host)
                        .port(super::pg_port())
                        .user(&user)
                        .dbname(&db)
                        .connect(postgres::NoTls)
                    {
                        let _ = there.batch_execute(&format!("DROP OWNED BY {role}"));
                    }
                }
                let _ = c.batch_execute(&format!("DROP ROLE IF EXISTS {role}"));
            }
        }
    }
}

/// The recommended deploy login for `db`, made by `airlock setup` as the superuser the
/// tests run as: `login` (created, no superuser, no path to one) may become the
/// database's owner and the gate role, and owns airlock's ledger there. Returns the
/// connection string that logs in as it. The caller drops the role (after the
/// database: see [`DropRoles`]).
/// With `--createdb`: the tests on it rehearse too.
pub fn deploy_login(dir: &Path, db: &TestDb, login: &str) -> String {
    let out = airlock(
        dir,
        &["setup", "--db", &db.conn(), "--login", login, "--createdb"],
    );
    assert_eq!(
        code(&out),
        0,
        "airlock setup: {}{}",
        stdout(&out),
        stderr(&out)
    );
    format!("dbname={} user={login}", db.name)
}

/// Whether `role` (which must exist) is a superuser now.
pub fn is_superuser(role: &str) -> bool {
    admin()
        .query_one("SELECT rolsuper FROM pg_roles WHERE rolname = $1", &[&role])
        .unwrap_or_else(|e| panic!("role {role}: {e}"))
        .get(0)
}

impl TestDb {
    /// Run SQL in this database as `role` (trust authentication).
    pub fn exec_as(&self, role: &str, sql: &str) {
        self.client_as(role)
            .batch_execute(sql)
            .unwrap_or_else(|e| panic!("as {role}: {sql}: {e}"));
    }

    /// How many rows of what ran (apply, rollback, step) the ledger holds, or `none`
    /// when there is no ledger (a `receipt` row records a receipt delivered).
    pub fn ledger_rows(&self) -> String {
        if self.scalar("SELECT (to_regclass('airlock.ledger') IS NULL)::text") == "true" {
            return "none".into();
        }
        self.scalar("SELECT count(*)::text FROM airlock.ledger WHERE event <> 'receipt'")
    }
}

/// A fresh directory holding the key pair `rm.key` / `rm.pub`.
pub fn keyed_dir() -> tempfile::TempDir {
    let t = tempdir();
    keygen(t.path(), "rm");
    t
}

/// A [`MiniSource`] for `database` under `dir/src-OUT`, packed with `dir/rm.key` into `dir/OUT`; returns `out`.
pub fn mini_bundle(
    dir: &Path,
    database: &str,
    out: &str,
    gate: &str,
    tiers: &[(&str, &str, bool)],
    rollback: &str,
) -> String {
    let s = MiniSource::new(
        &dir.join(format!("src-{out}")),
        database,
        gate,
        tiers,
        rollback,
    );
    pack(dir, &s.dir, "rm.key", out);
    out.to_string()
}

/// A one-tier bundle running `sql` on `db` (a gate that is always ready), packed into
/// `d/b.tar.gz` with `d/rm.key`; returns its name.
pub fn one_tier_bundle(d: &Path, db: &TestDb, sql: &str) -> String {
    mini_bundle(
        d,
        &db.name,
        "b.tar.gz",
        "SELECT true AS ready",
        &[("one", sql, false)],
        "SELECT 1;\n",
    )
}

/// `airlock --json plan` of a one-tier bundle running `sql` on `db`, with `extra`
/// arguments (no dump before and after, as tests/predict.rs makes: for big tables):
/// its exit and report.
pub fn plan_one(db: &TestDb, sql: &str, extra: &[&str]) -> (i32, serde_json::Value) {
    let t = keyed_dir();
    let d = t.path();
    let b = one_tier_bundle(d, db, sql);
    let mut args = vec!["plan", b.as_str()];
    args.extend(extra);
    let o = run_json(d, "rm.pub", &db.conn(), &args);
    (code(&o), json(&o))
}

/// `airlock --json ARGS --trust TRUST --db CONN` in `dir`.
pub fn run_json(dir: &Path, trust: &str, conn: &str, args: &[&str]) -> Output {
    let mut a: Vec<&str> = vec!["--json"];
    a.extend(args);
    a.extend(["--trust", trust, "--db", conn]);
    airlock(dir, &a)
}

/// A trust store directory `d/NAME` (made afresh) with the given `d/KEY.pub` files
/// and, unless `toml` is empty, that trust.toml; returns its path.
pub fn trust_store(d: &Path, name: &str, keys: &[&str], toml: &str) -> std::path::PathBuf {
    let s = d.join(name);
    let _ = std::fs::remove_dir_all(&s);
    std::fs::create_dir_all(&s).unwrap();
    for k in keys {
        std::fs::copy(d.join(format!("{k}.pub")), s.join(format!("{k}.pub"))).unwrap();
    }
    if !toml.is_empty() {
        std::fs::write(s.join("trust.toml"), toml).unwrap();
    }
    s
}

/// The params the reference release runs with, and its approvals consent to.
pub const REFERENCE_APR: &str = "ratified_apr=APR-BOOT-AUTHMODEL-1";

/// The approver keys the reference release's `[ratification] threshold = 2` asks for.
pub const APPROVERS: [&str; 2] = ["approver-1", "approver-2"];

/// The trust store `dir/trust` a ratified release is judged with: the release keys
/// `dir/KEY.pub` given, and the approver keys [`APPROVERS`] (made in `dir` when
/// missing) with role `approver`. Returns its name, relative to `dir`.
pub fn approver_trust(dir: &Path, release_keys: &[&str]) -> String {
    let mut toml = String::new();
    for a in APPROVERS {
        if !dir.join(format!("{a}.key")).exists() {
            keygen(dir, a);
        }
        let id = key_id_of(&dir.join(format!("{a}.pub")));
        toml.push_str(&format!("[keys.{id}]\nrole = \"approver\"\n"));
    }
    let mut keys: Vec<&str> = release_keys.to_vec();
    keys.extend(APPROVERS);
    trust_store(dir, "trust", &keys, &toml);
    "trust".into()
}

/// The key id a `.pub` file names (its untrusted comment).
pub fn key_id_of(public: &Path) -> String {
    let text = std::fs::read_to_string(public).expect("read .pub");
    text.lines()
        .next()
        .and_then(|l| l.rsplit(' ').next())
        .expect("untrusted comment with the key id")
        .to_string()
}

/// `airlock approve BUNDLE` in `dir` by approver `who` (a key [`approver_trust`]
/// made), consenting to `params`, written to `dir/OUT_DIR/WHO.approval` (the directory
/// made when missing).
pub fn approve_as(
    dir: &Path,
    trust: &str,
    bundle: &str,
    who: &str,
    params: &[&str],
    out_dir: &str,
) {
    std::fs::create_dir_all(dir.join(out_dir)).expect("approvals directory");
    let key = format!("{who}.key");
    let out = format!("{out_dir}/{who}.approval");
    let mut a = vec![
        "approve", bundle, "--trust", trust, "--key", &key, "--out", &out, "--yes",
    ];
    for p in params {
        a.extend(["--param", p]);
    }
    expect_code(&airlock(dir, &a), 0);
}

/// The reference release as the tests run it: `bundle/one-roof` for `database`,
/// packed in `dir` as `ref.tar.gz` with a release key `rm` made here, judged with the
/// trust store [`approver_trust`] makes, and ratified by both [`APPROVERS`] for
/// [`REFERENCE_APR`] in `dir/approvals`. Give `--trust` [`Reference::trust`] and
/// `--approval` [`Reference::approvals`]; the database gate (the approval row) is
/// still the test's to open.
pub struct Reference {
    pub bundle: String,
    pub trust: String,
    pub approvals: String,
}

pub fn reference_release(dir: &Path, database: &str) -> Reference {
    keygen(dir, "rm");
    let src = reference_source(dir, database);
    pack(dir, &src, "rm.key", "ref.tar.gz");
    let trust = approver_trust(dir, &["rm"]);
    for who in APPROVERS {
        approve_as(
            dir,
            &trust,
            "ref.tar.gz",
            who,
            &[REFERENCE_APR],
            "approvals",
        );
    }
    Reference {
        bundle: "ref.tar.gz".into(),
        trust,
        approvals: "approvals".into(),
    }
}

/// What `plan` said of a one-tier bundle (`--json` and the human text).
pub struct Planned {
    pub code: i32,
    pub json: serde_json::Value,
    pub human: String,
}

impl Planned {
    /// A check row by name.
    pub fn row(&self, check: &str) -> &serde_json::Value {
        self.json["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == check)
            .unwrap_or_else(|| panic!("no {check} row: {:#}", self.json))
    }

    /// The `i`th prediction.
    pub fn prediction(&self, i: usize) -> &serde_json::Value {
        &self.json["predictions"]["predictions"][i]
    }

    /// The predictions about statements at line `line`.
    pub fn at_line(&self, line: u64) -> Vec<&serde_json::Value> {
        self.json["predictions"]["predictions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["line"] == line)
            .collect()
    }

    /// What the release destroys.
    pub fn destroys(&self) -> Vec<&serde_json::Value> {
        self.json["predictions"]["destroys"]
            .as_array()
            .into_iter()
            .flatten()
            .collect()
    }
}

/// `plan --json` (and the human plan) of a one-tier bundle running `sql` on `db`,
/// its bundle.toml edited by `edit` before packing; asserts plan changed nothing.
pub fn plan_tier(
    db: &TestDb,
    sql: &str,
    edit: &dyn Fn(String) -> String,
    extra: &[&str],
) -> Planned {
    let t = keyed_dir();
    let d = t.path();
    let src = MiniSource::new(
        &d.join("s"),
        &db.name,
        "SELECT true AS ready",
        &[("one", sql, false)],
        "SELECT 1;\n",
    );
    let toml = src.dir.join("bundle.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(&toml, edit(text)).unwrap();
    pack(d, &src.dir, "rm.key", "b.tar.gz");
    let mut args = vec!["plan", "b.tar.gz"];
    args.extend(extra);
    let before = db.dump_without_ledger();
    let o = run_json(d, "rm.pub", &db.conn(), &args);
    assert_eq!(
        db.dump_without_ledger(),
        before,
        "plan changed the database"
    );
    let human = airlock(
        d,
        &[&args[..], &["--trust", "rm.pub", "--db", &db.conn()]].concat(),
    );
    Planned {
        code: code(&o),
        json: json(&o),
        human: stdout(&human),
    }
}

/// [`plan_tier`] with the bundle.toml as written.
pub fn plan_sql(db: &TestDb, sql: &str) -> Planned {
    plan_tier(db, sql, &|t| t, &[])
}

/// Each `(name, text)` written under `dir` (folders made as needed); returns `dir`: a
/// migration history laid out as its tool lays it out.
pub fn layout(dir: &Path, files: &[(&str, &str)]) -> std::path::PathBuf {
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir.to_path_buf()
}

/// `airlock fingerprint --data` of `db` (schema and rows), run in `dir`.
pub fn data_fingerprint(dir: &Path, db: &TestDb) -> String {
    let o = airlock(
        dir,
        &["--json", "fingerprint", "--data", "--db", &db.conn()],
    );
    expect_code(&o, 0);
    json(&o)["fingerprint"]
        .as_str()
        .expect("fingerprint")
        .to_string()
}
