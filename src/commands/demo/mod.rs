//! `airlock demo`: the main job end to end on a throw-away database it creates.
//!
//! It runs the way the operator's guide recommends: the database belongs to an
//! application role, and every step after the one-time `airlock setup` runs on a
//! deploy login that is no superuser ([`crate::commands::demo::roles`]).
//!
//! Invariant: the demo only ever changes a database it created itself
//! (`airlock_demo_<pid>_<time>`) and the two roles it made for it, on the server the
//! libpq environment points at, and drops them afterwards unless `--keep`. When no server answers there (and no `--db`
//! was given) it runs on a private cluster of its own (`crate::cluster`), which it
//! stops and removes afterwards, also on failure and Ctrl-C.

mod dossier;
mod roles;

use crate::cli::DemoArgs;
use crate::cluster::{self, PrivateCluster};
use crate::commands::demo::roles::DemoRoles;
use crate::commands::release::pack::pack_dir;
use crate::db::apply::{self, Options};
use crate::db::conn::{self, ConnSpec};
use crate::db::fingerprint::{self, Fingerprint, Level};
use crate::db::ledger::chain as ledger;
use crate::db::ratify::Approvals;
use crate::db::rehearse::cycle::{self as rehearse, RehearseOptions};
use crate::db::{quote_ident, sql_err, DbError};
use crate::error::{Error, Result};
use crate::minisign::SecretKey;
use crate::report::{table, Outcome, Report};
use crate::trust::TrustStore;
use crate::verified::VerifiedBundle;
use include_dir::{include_dir, Dir};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

static SOURCE: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/bundle/one-roof");
static FIXTURE: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/bundle/one-roof-fixture");

/// The demo's stand-in for the approval row the database gate waits for.
const APPROVAL_FILE: &str = "approve.sql";
const DEMO_APR: &str = "APR-BOOT-AUTHMODEL-1";
/// The throw-away approver keys whose signed approvals the reference bundle's
/// `[ratification] threshold = 2` asks for.
const APPROVERS: [&str; 2] = ["approver-1", "approver-2"];

#[derive(Serialize, schemars::JsonSchema)]
pub struct DemoStep {
    pub step: String,
    pub ok: bool,
    pub detail: String,
    pub duration_ms: u64,
    /// The command an operator would type to do this step by hand (airlock, or psql
    /// for the fixture and the stand-in approval). Its paths are in the demo's work
    /// directory, which stays with `--keep`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
}

/// The private cluster the demo ran on when no server answered.
#[derive(Serialize, schemars::JsonSchema)]
pub struct PrivateClusterReport {
    /// Its directory (data, socket, log); gone afterwards unless `--keep`.
    pub directory: PathBuf,
    /// `initdb --version`.
    pub server: String,
    /// The OS user the server ran as.
    pub user: String,
}

#[derive(Serialize, schemars::JsonSchema)]
pub struct DemoReport {
    pub ok: bool,
    pub database: String,
    /// Set when the demo started its own throwaway cluster (no server answered).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_cluster: Option<PrivateClusterReport>,
    pub kept: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workdir: Option<PathBuf>,
    /// The release dossier of the reference release the demo wrote (`airlock
    /// dossier` with the database, the rehearsal and both approvals), when kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dossier: Option<PathBuf>,
    pub steps: Vec<DemoStep>,
    #[serde(skip)]
    rehearsal: Option<String>,
}

impl DemoReport {
    fn kept_line(&self) -> Option<String> {
        self.kept.then(|| {
            format!(
                "kept: database {}{}{}",
                self.database,
                self.workdir
                    .as_ref()
                    .map(|w| format!(" and files in {}", w.display()))
                    .unwrap_or_default(),
                self.dossier
                    .as_ref()
                    .map(|d| format!(
                        "\nthe release dossier: {} (open it in a browser)",
                        d.display()
                    ))
                    .unwrap_or_default()
            )
        })
    }
}

impl Report for DemoReport {
    fn human(&self) -> String {
        let rows: Vec<Vec<String>> = self
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| {
                vec![
                    format!("{:>2}", i + 1),
                    s.step.clone(),
                    if s.ok { "ok".into() } else { "FAILED".into() },
                    format!("{} ms", s.duration_ms),
                    s.detail.clone(),
                ]
            })
            .collect();
        let on = match &self.private_cluster {
            Some(c) => format!(
                " on a private cluster ({}, Unix socket only, run as {})",
                c.server, c.user
            ),
            None => String::new(),
        };
        let mut s = format!(
            "airlock demo on throw-away database {}{on}\n\n{}",
            self.database,
            table(&["#", "step", "", "time", "what happened"], &rows)
        );
        if let Some(r) = &self.rehearsal {
            s.push_str(&format!("\n\nrehearsal step table:\n{r}"));
        }
        let commands: Vec<String> = self
            .steps
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.command.as_ref().map(|c| format!("{:>2}  {c}", i + 1)))
            .collect();
        if !commands.is_empty() {
            s.push_str(&format!(
                "\n\nthe same steps by hand{}:\n{}",
                if self.kept {
                    ""
                } else {
                    " (run with --keep to keep the files they name)"
                },
                commands.join("\n")
            ));
        }
        s.push_str(&format!(
            "\n\n{}",
            if self.ok {
                "DEMO PASSED: verified, gated, shipped the gate-free tiers while BLOCKED (--through), BLOCKED with one signed approval of two and READY with both, rehearsed, applied the rest all-or-nothing once READY (--wait), recorded in the ledger, rolled back to the exact schema baseline (the rehearsal proves the data round trip on its clone)."
            } else {
                "DEMO FAILED: see the step marked FAILED above."
            }
        ));
        if let Some(k) = self.kept_line() {
            s.push('\n');
            s.push_str(&k);
        }
        s
    }
    /// With `--keep`, where things were kept: `--quiet` still says it (they are left
    /// for the user to remove).
    fn quiet_line(&self) -> Option<String> {
        self.kept_line()
    }
    fn exit_code(&self) -> crate::exit::Exit {
        if self.ok {
            crate::exit::Exit::Success
        } else {
            crate::exit::Exit::Runtime
        }
    }
}

fn write_tree(dir: &Dir<'_>, root: &Path) -> std::io::Result<()> {
    for f in dir.files() {
        let dest = root.join(f.path());
        if let Some(p) = dest.parent() {
            std::fs::create_dir_all(p)?;
        }
        std::fs::write(dest, f.contents())?;
    }
    for d in dir.dirs() {
        write_tree(d, root)?;
    }
    Ok(())
}

/// The fixture's SQL files in name order (the approval stand-in excluded).
fn fixture_sql() -> Vec<(&'static str, &'static str)> {
    let mut files: Vec<_> = FIXTURE
        .files()
        .filter(|f| f.path().extension().and_then(|e| e.to_str()) == Some("sql"))
        .filter(|f| f.path().file_name().and_then(|n| n.to_str()) != Some(APPROVAL_FILE))
        .map(|f| {
            (
                f.path().to_str().unwrap_or(""),
                f.contents_utf8().unwrap_or(""),
            )
        })
        .collect();
    files.sort();
    files
}

struct Steps {
    steps: Vec<DemoStep>,
    failed: bool,
    /// The command of the next step ([`Steps::by_hand`]).
    next_command: Option<String>,
}

impl Steps {
    /// The next step is what `command` does.
    fn by_hand(&mut self, command: String) -> &mut Self {
        self.next_command = Some(command);
        self
    }

    fn run<T>(&mut self, name: &str, step: impl FnOnce() -> StepResult<T>) -> Option<T> {
        let command = self.next_command.take();
        if self.failed {
            return None;
        }
        if conn::interrupted() || cluster::interrupted() {
            self.failed = true;
            self.steps.push(DemoStep {
                step: name.into(),
                ok: false,
                detail: "not run: interrupted (Ctrl-C)".into(),
                duration_ms: 0,
                command,
            });
            return None;
        }
        let started = Instant::now();
        let outcome = step();
        let ms = started.elapsed().as_millis() as u64;
        match outcome {
            Ok(Done { value, detail }) => {
                self.steps.push(DemoStep {
                    step: name.into(),
                    ok: true,
                    detail,
                    duration_ms: ms,
                    command,
                });
                Some(value)
            }
            Err(detail) => {
                self.failed = true;
                self.steps.push(DemoStep {
                    step: name.into(),
                    ok: false,
                    detail,
                    duration_ms: ms,
                    command,
                });
                None
            }
        }
    }
}

fn server_unreachable(admin: &ConnSpec, e: DbError) -> Error {
    // A server that answered with a major airlock does not support is refused as such.
    if let DbError::Mismatch(crate::db::refusal::Mismatch::ServerUnsupported { .. }) = e {
        return Error::Db(e);
    }
    Error::usage(
        format!("the demo needs a PostgreSQL server and none answered at {}: {e}", admin.shown),
        Some(
            "start one (Debian: pg_ctlcluster 15 main start; elsewhere: initdb -D /tmp/pgdemo && pg_ctl -D /tmp/pgdemo -l /tmp/pgdemo.log start), or point --db / PGHOST at one"
                .into(),
        ),
    )
}

/// Does a server answer at `admin`? An error the server itself sent (a refused login,
/// a missing database) is an answer.
fn server_answers(admin: &ConnSpec) -> bool {
    match admin.config.connect(postgres::NoTls) {
        Ok(_) => true,
        Err(e) => e.as_db_error().is_some(),
    }
}

/// No server answered and none was named: start a private one, or say what to install.
fn start_private_cluster(admin: &ConnSpec) -> Result<(PrivateCluster, DemoStep)> {
    let path = std::env::var("PATH").ok();
    let Some(bin) = cluster::find_server_bin(path.as_deref(), &cluster::DEFAULT_ROOTS) else {
        return Err(Error::usage(
            format!(
                "no PostgreSQL server answered at {} and no server binaries (initdb, pg_ctl) are installed to start a private one: {}",
                admin.shown,
                cluster::INSTALL_HINT
            ),
            None,
        ));
    };
    cluster::catch_interrupts();
    let t = Instant::now();
    let c = PrivateCluster::start(&bin).map_err(|e| {
        Error::io(
            "cannot start a private PostgreSQL cluster for the demo",
            std::io::Error::other(e),
        )
    })?;
    let step = DemoStep {
        step: "start a private PostgreSQL cluster".into(),
        ok: true,
        detail: format!(
            "no server answered at {}: {} in {} as {}, Unix socket only (no TCP)",
            admin.shown,
            c.version,
            c.dir().display(),
            c.user()
        ),
        duration_ms: t.elapsed().as_millis() as u64,
        command: None,
    };
    Ok((c, step))
}

/// The one-time setup the README asks of a superuser: a role without powers outside
/// the database for gates and probes, created when missing.
const DEMO_GATE_ROLE: &str = "DO $$ BEGIN
  IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = SESSION_USER)
     AND NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'airlock_gate') THEN
    CREATE ROLE airlock_gate NOLOGIN;
    RAISE NOTICE 'created role airlock_gate (NOLOGIN, no grants outside the demo database): gates and probes run as it';
  END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$";

/// The demo database's default privileges for the gate role, when it exists.
const DEMO_GATE_READS: &str = "DO $$ BEGIN
  IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'airlock_gate') THEN
    ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO airlock_gate;
    ALTER DEFAULT PRIVILEGES GRANT USAGE ON SCHEMAS TO airlock_gate;
  END IF;
END $$";

/// The private cluster the demo started, and the step that says so.
struct Private {
    cluster: PrivateCluster,
    started: DemoStep,
}

pub fn run(args: DemoArgs) -> Result<Outcome> {
    let base = conn::resolve(args.db.as_deref(), "postgres")?;
    let mut admin = base.with_dbname("postgres");
    let mut private = None;
    if args.db.is_none() && !server_answers(&admin) {
        let (cluster, started) = start_private_cluster(&admin)?;
        admin = conn::resolve(Some(&cluster.conninfo("postgres")), "postgres")?;
        private = Some(Private { cluster, started });
    }
    let (db, roles) = create_demo_database(&admin)?;
    let target = admin.with_dbname(&db);
    let work = tempfile::Builder::new()
        .prefix("airlock-demo-")
        .tempdir()
        .map_err(|e| Error::io("cannot create a work directory", e))?;
    // The database as an operator would name it: a bare name on the server the
    // environment points at, the whole connection string otherwise.
    let db_arg = if args.db.is_none() && private.is_none() {
        db.clone()
    } else {
        target.shown.clone()
    };
    let create = create_command(&db, &db_arg, &admin, &roles);
    let mut report = run_steps(&target, &roles, &db_arg, work.path(), create);
    if args.keep {
        report.kept = true;
        let kept = work.keep();
        report.dossier =
            Some(kept.join(crate::commands::demo::dossier::PAGE)).filter(|p| p.exists());
        report.workdir = Some(kept);
    } else {
        let cleaned = clean_up(&admin, &db, &roles);
        report.ok &= cleaned.ok;
        report.steps.push(cleaned);
    }
    if let Some(Private {
        mut cluster,
        started,
    }) = private
    {
        report.steps.insert(0, started);
        report.private_cluster = Some(PrivateClusterReport {
            directory: cluster.dir().to_path_buf(),
            server: cluster.version.clone(),
            user: cluster.user(),
        });
        let stopped = stop_private_cluster(&mut cluster, args.keep);
        report.ok &= stopped.ok;
        report.steps.push(stopped);
    }
    Ok(Box::new(report))
}

/// Creates the throw-away database, owned by an application role of its own (and the
/// gate role when missing); returns its name and the demo's roles.
fn create_demo_database(admin: &ConnSpec) -> Result<(String, DemoRoles)> {
    let mut admin_client = admin.connect().map_err(|e| server_unreachable(admin, e))?;
    let tag = format!("{}_{}", std::process::id(), chrono::Utc::now().timestamp());
    let db = format!("airlock_demo_{tag}");
    let mut roles = DemoRoles::new(&tag)
        .map_err(|e| Error::io("cannot make a password for the demo's deploy login", e))?;
    for sql in [
        roles.create_app_sql(),
        format!(
            "CREATE DATABASE {} OWNER {}",
            quote_ident(&db),
            quote_ident(&roles.app)
        ),
    ] {
        admin_client
            .batch_execute(&sql)
            .map_err(|e| Error::Db(sql_err("creating the demo database and its owner", &e)))?;
    }
    // The one-time setup the README asks of a superuser: a role without powers outside
    // the database for gates and probes. Created when missing (a cluster-wide role,
    // not a database: the demo still touches no database it did not create).
    let gate_exists = |c: &mut postgres::Client| {
        c.query_one(
            "SELECT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'airlock_gate')",
            &[],
        )
        .map(|r| r.get::<_, bool>(0))
        .map_err(|e| Error::Db(sql_err("looking for the gate role airlock_gate", &e)))
    };
    let existed = gate_exists(&mut admin_client)?;
    admin_client
        .batch_execute(DEMO_GATE_ROLE)
        .map_err(|e| Error::Db(sql_err("creating the gate role airlock_gate", &e)))?;
    roles.created_gate = !existed && gate_exists(&mut admin_client)?;
    Ok((db, roles))
}

/// The "clean up" step: the demo database and the demo's roles dropped (the work
/// directory goes with its guard).
fn clean_up(admin: &ConnSpec, db: &str, roles: &DemoRoles) -> DemoStep {
    let dropped = admin.connect().and_then(|mut c| {
        c.batch_execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            quote_ident(db)
        ))
        .and_then(|()| c.batch_execute(&roles.drop_sql()))
        .map_err(|e| sql_err("DROP DATABASE", &e))?;
        roles.drop_gate(&mut c)
    });
    let gate = match &dropped {
        Ok(Some(true)) => ", the role airlock_gate it created",
        Ok(Some(false)) => {
            " (airlock_gate, which it created, is kept: another database uses it now)"
        }
        _ => "",
    };
    DemoStep {
        step: "clean up".into(),
        ok: dropped.is_ok(),
        detail: match dropped {
            Ok(_) => format!(
                "dropped {db}, roles {} and {}{gate}, and the temporary keys, approvals and bundle",
                roles.deploy, roles.app
            ),
            Err(e) => format!(
                "{e}; drop them by hand: DROP DATABASE {db}; {}",
                roles.drop_sql()
            ),
        },
        duration_ms: 0,
        command: None,
    }
}

/// The last step on a private cluster: stopped, and removed unless `--keep`.
fn stop_private_cluster(cluster: &mut PrivateCluster, keep: bool) -> DemoStep {
    let started = Instant::now();
    let (step, stopped) = if keep {
        (
            "stop the private cluster (kept)",
            cluster.stop_and_keep().map(|dir| {
                format!(
                    "stopped; kept in {}: start it with pg_ctl -D {}/data start",
                    dir.display(),
                    dir.display()
                )
            }),
        )
    } else {
        (
            "stop and remove the private cluster",
            cluster.stop_and_remove().map(|()| {
                "pg_ctl -m immediate stop; directory, socket and log removed".to_string()
            }),
        )
    };
    DemoStep {
        step: step.into(),
        ok: stopped.is_ok(),
        detail: stopped.unwrap_or_else(|e| e),
        duration_ms: started.elapsed().as_millis() as u64,
        command: None,
    }
}

/// The demo database the steps work on.
struct Demo<'a> {
    target: &'a ConnSpec,
    db: &'a str,
}

impl<'a> Demo<'a> {
    /// The options of a run with `params` and, when given, the signed approvals.
    fn ratified(
        &'a self,
        params: BTreeMap<String, String>,
        approvals: &'a Approvals,
    ) -> Options<'a> {
        let mut o = self.options(params);
        o.approvals = Some(approvals);
        o
    }

    fn options(&self, params: BTreeMap<String, String>) -> Options<'_> {
        Options {
            conn: self.target,
            expected_db: crate::spec::TargetDatabase::Name(self.db.to_string()),
            params,
            through: None,
            lock_timeout: "10s".into(),
            lock_retries: 3,
            statement_timeout: "60s".into(),
            allow_drift: false,
            resume: false,
            gate_role: None,
            // Its database is dropped at the end: nothing worth remembering.
            remember: false,
            approvals: None,
            skip_gates: false,
            confirm: None,
            observer: None,
            deliver: None,
            vouch: None,
        }
    }
}

/// The demo's files in its work directory, and how an operator would name them.
struct DemoFiles {
    work: PathBuf,
    /// The release source, `bundle/one-roof` with its target database patched.
    src: PathBuf,
    /// The trust store: the throw-away keys' public halves (release, approvers).
    keys: PathBuf,
    bundle: PathBuf,
    /// Where the approvers' signed approvals go (`--approval DIR`).
    approvals: PathBuf,
    hand: ByHand,
}

impl DemoFiles {
    fn new(work: &Path, db_arg: &str, create: String) -> DemoFiles {
        let keys = work.join("trust");
        let bundle = work.join("one-roof.airlock.tar.gz");
        DemoFiles {
            work: work.to_path_buf(),
            src: work.join("one-roof"),
            hand: ByHand::new(db_arg, work, &bundle, &keys, create),
            keys,
            bundle,
            approvals: work.join("approvals"),
        }
    }
}

/// How an operator would create the demo database, owned by its application role:
/// `createdb -O APP NAME` on the server the environment points at, else SQL on the
/// maintenance database `admin` names.
fn create_command(db: &str, db_arg: &str, admin: &ConnSpec, roles: &DemoRoles) -> String {
    let role = format!("psql -X -q -c {}", sh(&roles.create_app_sql()));
    if db_arg == db {
        format!("{role} && createdb -O {} {}", sh(&roles.app), sh(db))
    } else {
        format!(
            "psql -X -v ON_ERROR_STOP=1 -d {} -c {} -c {}",
            sh(&admin.shown),
            sh(&roles.create_app_sql()),
            sh(&format!(
                "CREATE DATABASE {} OWNER {}",
                quote_ident(db),
                quote_ident(&roles.app)
            ))
        )
    }
}

fn run_steps(
    admin_target: &ConnSpec,
    roles: &DemoRoles,
    db_arg: &str,
    work: &Path,
    create: String,
) -> DemoReport {
    let mut steps = Steps {
        steps: vec![],
        failed: false,
        next_command: None,
    };
    let db = admin_target.dbname().to_string();
    let mut files = DemoFiles::new(work, db_arg, create);
    let admin = Demo {
        target: admin_target,
        db: &db,
    };
    let Some(deploy) = set_up(&mut steps, &admin, roles, &files) else {
        return finish(steps, &db, None);
    };
    // Every step from here on runs on the deploy login, as an operator's would.
    files.hand.db = sh(&if deploy.on_unix_socket() && db_arg == db {
        format!("dbname={db} user={}", roles.deploy)
    } else {
        deploy.shown.clone()
    });
    let demo = Demo {
        target: &deploy,
        db: &db,
    };
    let Some(ready) = prepare(&mut steps, &demo, &files) else {
        return finish(steps, &db, None);
    };
    let rehearsal = deploy_and_roll_back(&mut steps, &demo, &files, &ready);
    let mut report = finish(steps, &db, None);
    report.rehearsal = rehearsal;
    report
}

/// The superuser's part, once: the database (made before the steps, shown as the
/// first), the fixture loaded as the application role that owns it, and the deploy
/// login `airlock setup` makes. Returns how the later steps reach the database.
fn set_up(
    steps: &mut Steps,
    admin: &Demo,
    roles: &DemoRoles,
    files: &DemoFiles,
) -> Option<ConnSpec> {
    let hand = &files.hand;
    let work = &hand.work;
    steps
        .by_hand(hand.create.clone())
        .run("create the throw-away database", || {
            Ok(Done::said(format!(
                "created {}, owned by {} (an application role, no superuser)",
                admin.db, roles.app
            )))
        });
    let fixture = files.work.join("fixture");
    let loads: Vec<String> = fixture_files()
        .iter()
        .map(|(name, _)| match *name {
            FIXTURE_AS_APP => format!(
                "-c {} -f {work}/fixture/{name}",
                sh(&format!("SET ROLE {}", quote_ident(&roles.app)))
            ),
            _ => format!("-f {work}/fixture/{name}"),
        })
        .collect();
    steps
        .by_hand(format!(
            "psql -X -q -v ON_ERROR_STOP=1 -d {} {}",
            hand.admin_db,
            loads.join(" ")
        ))
        .run("load the greenfield fixture", || {
            load_fixture(admin.target, &fixture, &roles.app)
        });
    steps
        .by_hand(format!(
            "airlock setup --db {} --login {} --createdb",
            hand.admin_db, roles.deploy
        ))
        .run("one-time setup: the deploy login", || {
            let report = roles.set_up(admin.target).map_err(|e| e.to_string())?;
            let spec = roles
                .deploy_login(admin.target)
                .map_err(|e| format!("{e} (the server would not let the demo's deploy login in: let it in pg_hba.conf, or run airlock demo with no server, on a private cluster)"))?;
            Ok(Done {
                value: spec,
                detail: format!(
                    "{}: no superuser, no path to one; may become {} (bundle SQL) and {}; every step below runs as it",
                    report.login, report.role, report.gate_role
                ),
            })
        })
}

/// What the release manager's half leaves the operator's: the verified bundle, the
/// approvers' keys, and the approvals as `--approval DIR` names them (none yet).
struct Prepared {
    vb: VerifiedBundle,
    approvers: Vec<SecretKey>,
    approvals: Approvals,
}

/// The release manager's half: keys made (release, approvers), the bundle packed,
/// signed and verified.
fn prepare(steps: &mut Steps, demo: &Demo, files: &DemoFiles) -> Option<Prepared> {
    let hand = &files.hand;
    let work = &hand.work;
    let key = steps
        .by_hand(format!(
            "airlock keygen --out {0}/demo-release --unencrypted --force && rm -rf {1} && airlock trust add {1} {0}/demo-release.pub --name 'demo release manager'",
            work, hand.trust
        ))
        .run("make a throw-away release key", || {
            make_key(&files.work, &files.keys)
        });
    let approvers = steps
        .by_hand(format!(
            "for a in {}; do airlock keygen --out {work}/$a --unencrypted --force && airlock trust add {1} {work}/$a.pub --role approver --name $a; done",
            APPROVERS.join(" "),
            hand.trust
        ))
        .run("make two throw-away approver keys", || {
            make_approvers(&files.work, &files.keys)
        });
    steps
        .by_hand(format!(
            "airlock pack {} --key {work}/demo-release.key --out {} --force",
            sh(&files.src.display().to_string()),
            hand.bundle
        ))
        .run("pack and sign bundle/one-roof", || {
            pack_demo_bundle(files, demo.db, key.as_ref())
        });
    steps
        .by_hand(format!(
            "airlock verify {} --trust {}",
            hand.bundle, hand.trust
        ))
        .run("verify against the trust store", || verify_bundle(files))
        .map(|(vb, store)| Prepared {
            vb,
            approvers: approvers.unwrap_or_default(),
            approvals: Approvals {
                store,
                paths: vec![files.approvals.clone()],
            },
        })
}

/// The operator's half as the field notes tell it: the gate-free tiers shipped while
/// BLOCKED (`--through`), ratified, rehearsed, the rest applied (`--wait`), recorded,
/// refused again, rolled back to the fingerprint it started from. Returns the
/// rehearsal's step table.
fn deploy_and_roll_back(
    steps: &mut Steps,
    demo: &Demo,
    files: &DemoFiles,
    ready: &Prepared,
) -> Option<String> {
    let vb = &ready.vb;
    let hand = &files.hand;
    let mut params = BTreeMap::new();
    params.insert("ratified_apr".to_string(), DEMO_APR.to_string());
    steps
        .by_hand(format!(
            "{} || test $? -eq 3  # BLOCKED until ratified",
            hand.bundle_cmd("gate", "")
        ))
        .run("gate (before ratification)", || {
            gate_blocked(vb, &demo.options(BTreeMap::new()))
        });
    let before = steps
        .by_hand(format!(
            "airlock fingerprint --db {} --json > {}",
            hand.db, hand.before
        ))
        .run("fingerprint before apply", || {
            fingerprint_now(demo.target, &files.work.join(BEFORE_JSON))
        });
    let through = gate_free_prefix(vb);
    steps
        .by_hand(hand.bundle_cmd(
            "apply",
            &format!(
                "{} --through {}",
                hand.apply_flags(),
                through.as_deref().unwrap_or("?")
            ),
        ))
        .run("apply --through the gate-free tiers while BLOCKED", || {
            let mut o = demo.options(params.clone());
            o.through.clone_from(&through);
            apply_through(vb, &o)
        });
    steps
        .by_hand(format!("airlock status --db {}", hand.db))
        .run("status (partially applied)", || ledger_status(demo.target));
    let rehearsal = after_ratification(steps, demo, files, ready, &params);
    steps
        .by_hand(hand.bundle_cmd("rollback", &format!("--yes --out {}/receipts", hand.work)))
        .run("rollback", || roll_back(vb, &demo.options(BTreeMap::new())));
    steps
        .by_hand(format!(
            "airlock fingerprint --db {} --json > {} && airlock fingerprint --diff {} {}",
            hand.db, hand.after, hand.before, hand.after
        ))
        .run("fingerprint after rollback == before apply", || {
            back_to_baseline(demo.target, before.as_ref(), &files.work.join(AFTER_JSON))
        });
    rehearsal
}

/// Ratified (the approval row, then the approvers' signatures one by one: BLOCKED
/// with one of two, READY with both), rehearsed, the rest applied (`--wait`),
/// recorded, refused again; the rehearsal's step table.
fn after_ratification(
    steps: &mut Steps,
    demo: &Demo,
    files: &DemoFiles,
    ready: &Prepared,
    params: &BTreeMap<String, String>,
) -> Option<String> {
    let (vb, approvals) = (&ready.vb, &ready.approvals);
    let hand = &files.hand;
    steps
        .by_hand(format!(
            "psql -X -q -v ON_ERROR_STOP=1 -d {} -f {}/fixture/{APPROVAL_FILE}  # a human's act in production",
            hand.db, hand.work
        ))
        .run("DEMO STAND-IN for the approval row", || ratify(demo.target));
    let run_flags = format!(
        "--param ratified_apr={DEMO_APR} --approval {}",
        hand.approvals
    );
    for (i, name) in APPROVERS.iter().enumerate() {
        let key = ready.approvers.get(i);
        steps
            .by_hand(hand.approve_cmd(name))
            .run(&format!("{name} signs an approval"), || {
                sign_approval(vb, key, params, &files.approvals.join(approval_file(name)))
            });
        if i + 1 < APPROVERS.len() {
            steps
                .by_hand(format!(
                    "{} || test $? -eq 3  # BLOCKED: {} of {} approvals",
                    hand.bundle_cmd("gate", &run_flags),
                    i + 1,
                    APPROVERS.len()
                ))
                .run(
                    &format!("gate with {} of {} approvals", i + 1, APPROVERS.len()),
                    || gate_blocked(vb, &demo.ratified(params.clone(), approvals)),
                );
        }
    }
    steps
        .by_hand(hand.bundle_cmd("gate", &run_flags))
        .run("gate (after ratification)", || {
            gate_ready(vb, &demo.ratified(params.clone(), approvals))
        });
    let rehearsal = rehearse_and_write_dossier(steps, demo, files, ready, params, &run_flags);
    steps
        .by_hand(hand.bundle_cmd(
            "apply",
            &format!(
                "{} --approval {} --wait --poll-interval 1s",
                hand.apply_flags(),
                hand.approvals
            ),
        ))
        .run("apply", || {
            apply_all(vb, &demo.ratified(params.clone(), approvals))
        });
    steps
        .by_hand(format!("airlock status --verify-chain --db {}", hand.db))
        .run("status (the ledger)", || ledger_status(demo.target));
    steps
        .by_hand(format!(
            "{} || test $? -eq 6  # refused: every tier is applied",
            hand.bundle_cmd("apply", &hand.apply_flags())
        ))
        .run("re-apply is refused", || {
            reapply_refused(vb, &demo.options(params.clone()))
        });
    rehearsal
}

/// The rehearsal (saved as `rehearse --json` prints it) and the release dossier made
/// from it, the database and the approvals; the rehearsal's step table.
fn rehearse_and_write_dossier(
    steps: &mut Steps,
    demo: &Demo,
    files: &DemoFiles,
    ready: &Prepared,
    params: &BTreeMap<String, String>,
    run_flags: &str,
) -> Option<String> {
    let (vb, approvals) = (&ready.vb, &ready.approvals);
    let hand = &files.hand;
    let mut rehearsal = None;
    let saved = files.work.join(crate::commands::demo::dossier::REHEARSAL);
    steps
        .by_hand(format!(
            "{} --json > {}/{}",
            hand.bundle_cmd("rehearse", run_flags),
            hand.work,
            crate::commands::demo::dossier::REHEARSAL
        ))
        .run("rehearse on a clone", || {
            rehearse_on_clone(vb, demo.target, params, approvals, &saved, &mut rehearsal)
        });
    steps
        .by_hand(hand.bundle_cmd(
            "dossier",
            &format!(
                "{run_flags} --rehearsal {0}/{1} --out {0}/{2} --force",
                hand.work,
                crate::commands::demo::dossier::REHEARSAL,
                crate::commands::demo::dossier::PAGE
            ),
        ))
        .run("write the release dossier", || {
            let (value, detail) = crate::commands::demo::dossier::write(
                demo.target,
                vb,
                approvals,
                &files.work,
                &files.bundle,
                &files.keys,
                DEMO_APR,
            )?;
            Ok(Done { value, detail })
        });
    rehearsal
}

/// Where the fingerprints before the first apply and after the rollback are saved
/// (`fingerprint --json`), in the work directory.
const BEFORE_JSON: &str = "before.json";
const AFTER_JSON: &str = "after.json";

/// The last of the leading tiers no gate guards: what `--through` ships while BLOCKED.
fn gate_free_prefix(vb: &VerifiedBundle) -> Option<String> {
    vb.manifest()
        .tier
        .iter()
        .take_while(|t| t.gates.is_empty())
        .last()
        .map(|t| t.name.clone())
}

/// A step that held: its value for the next steps, and the line the step table shows.
struct Done<T> {
    value: T,
    detail: String,
}

impl Done<()> {
    /// A step that leaves nothing for the next ones.
    fn said(detail: impl Into<String>) -> Done<()> {
        Done {
            value: (),
            detail: detail.into(),
        }
    }
}

/// A step's outcome; an error is the line the step table shows.
type StepResult<T> = std::result::Result<Done<T>, String>;

/// The files the fixture step runs, in order: the gate role (when missing), its reads,
/// then the fixture's SQL in name order. Written to `fixture/` in the work directory
/// (with the approval stand-in), so that `--keep` leaves what the steps by hand read.
fn fixture_files() -> Vec<(&'static str, &'static str)> {
    let mut files = vec![
        ("00_gate_role.sql", DEMO_GATE_ROLE),
        ("00_gate_reads.sql", DEMO_GATE_READS),
    ];
    files.extend(fixture_sql());
    files
}

/// The first fixture file loaded as the application role (after the gate role, which
/// only a superuser creates): what it and the rest create belong to that role.
const FIXTURE_AS_APP: &str = "00_gate_reads.sql";

fn load_fixture(target: &ConnSpec, dir: &Path, app: &str) -> StepResult<()> {
    write_tree(&FIXTURE, dir).map_err(|e| e.to_string())?;
    let files = fixture_files();
    for (name, sql) in &files {
        std::fs::write(dir.join(name), sql).map_err(|e| e.to_string())?;
    }
    let mut client = target.connect().map_err(|e| e.to_string())?;
    // The gate role reads what the demo creates here, and nothing else (never
    // pg_read_all_data): what `airlock plan` lists, granted ahead for the tables
    // the release creates too.
    for (name, sql) in &files {
        if *name == FIXTURE_AS_APP {
            client
                .batch_execute(&format!("SET ROLE {}", quote_ident(app)))
                .map_err(|e| crate::db::pg_message(&e))?;
        }
        client
            .batch_execute(sql)
            .map_err(|e| format!("{name}: {}", crate::db::pg_message(&e)))?;
    }
    Ok(Done::said(format!(
        "{} fixture file(s): 35 governed collections, 6 scopes, an ownership gap of 210 (rows no accountable owner covers yet, which the release closes), 0 approvals (the gate waits for a human ratification)",
        files.len() - 2
    )))
}

/// A throw-away key `NAME`: `NAME.key` (unencrypted, 0600) and `.pub` in the work
/// directory, the public half also in the trust store `keys`.
fn throw_away_key(work: &Path, keys: &Path, name: &str) -> std::result::Result<SecretKey, String> {
    let key = SecretKey::generate().map_err(|e| e.to_string())?;
    std::fs::create_dir_all(keys).map_err(|e| e.to_string())?;
    let secret = key.to_file_text(None).map_err(|e| e.to_string())?;
    super::common::write_atomic(
        &work.join(format!("{name}.key")),
        secret.as_bytes(),
        super::common::NewFileMode::Private,
        true,
    )
    .map_err(|e| e.to_string())?;
    let public = key.public().to_file_text();
    std::fs::write(work.join(format!("{name}.pub")), &public).map_err(|e| e.to_string())?;
    std::fs::write(keys.join(format!("{name}.pub")), &public).map_err(|e| e.to_string())?;
    Ok(key)
}

/// The release key `demo-release`, the first key of the trust store.
fn make_key(work: &Path, keys: &Path) -> StepResult<SecretKey> {
    let key = throw_away_key(work, keys, "demo-release")?;
    let id = key.key_id.to_string();
    // Named as the step by hand names it (`trust add … --name`): the dossier shows it.
    std::fs::write(
        keys.join("trust.toml"),
        format!("[keys.{id}]\nname = \"demo release manager\"\n"),
    )
    .map_err(|e| e.to_string())?;
    Ok(Done {
        value: key,
        detail: format!("key {id}; its public key is the trust store's release key"),
    })
}

/// The approver keys [`APPROVERS`], each with role `approver` in the trust store's
/// trust.toml (an approver key never counts as a release signature).
fn make_approvers(work: &Path, keys: &Path) -> StepResult<Vec<SecretKey>> {
    let mut made = vec![];
    let policy = keys.join("trust.toml");
    let mut toml = std::fs::read_to_string(&policy).unwrap_or_default();
    for name in APPROVERS {
        let key = throw_away_key(work, keys, name)?;
        toml.push_str(&format!(
            "[keys.{}]\nrole = \"approver\"\nname = \"{name}\"\n",
            key.key_id
        ));
        made.push(key);
    }
    std::fs::write(policy, toml).map_err(|e| e.to_string())?;
    let ids: Vec<String> = made.iter().map(|k| k.key_id.to_string()).collect();
    Ok(Done {
        value: made,
        detail: format!(
            "keys {}, role approver in the trust store: the bundle asks for 2 signed approvals",
            ids.join(", ")
        ),
    })
}

/// The file an approver's signed approval is written to, in the approvals directory.
fn approval_file(approver: &str) -> String {
    format!("{approver}.{}", crate::approval::EXTENSION)
}

/// What `airlock approve` does, with the throw-away key: the approver's consent to
/// this bundle and these params, signed, written to `doc` (and `doc.minisig`).
fn sign_approval(
    vb: &VerifiedBundle,
    key: Option<&SecretKey>,
    params: &BTreeMap<String, String>,
    doc: &Path,
) -> StepResult<()> {
    let key = key.ok_or("no approver key")?;
    if let Some(dir) = doc.parent() {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    crate::commands::release::approve::Consent {
        params: params.clone(),
        expires: None,
        comment: "airlock demo: a throw-away approver key".into(),
        at: chrono::Utc::now(),
    }
    .write(vb, key, doc)
    .map_err(|e| e.to_string())?;
    Ok(Done::said(format!(
        "key {} signed its consent to bundle {} with ratified_apr={DEMO_APR}",
        key.key_id,
        &vb.id()[..16]
    )))
}

/// `bundle/one-roof` written out with its target database set to the demo's, packed
/// and signed.
fn pack_demo_bundle(files: &DemoFiles, db: &str, key: Option<&SecretKey>) -> StepResult<()> {
    write_tree(&SOURCE, &files.src).map_err(|e| e.to_string())?;
    let toml_path = files.src.join("bundle.toml");
    let text = std::fs::read_to_string(&toml_path).map_err(|e| e.to_string())?;
    let mut spec: toml::Value = toml::from_str(&text).map_err(|e| e.to_string())?;
    let original = spec
        .get("target")
        .and_then(|t| t.get("database"))
        .and_then(|d| d.as_str())
        .unwrap_or("")
        .to_string();
    let patched = text.replace(
        &format!("database = \"{original}\""),
        &format!("database = \"{db}\""),
    );
    if let Some(t) = spec.get_mut("target").and_then(|t| t.as_table_mut()) {
        t.insert("database".into(), toml::Value::String(db.into()));
    }
    std::fs::write(&toml_path, patched).map_err(|e| e.to_string())?;
    let key = key.ok_or("no key")?;
    let packed = pack_dir(
        &files.src,
        key,
        Some(&files.bundle),
        crate::archive::writer::DEFAULT_LEVEL,
        true,
    )
    .map_err(|e| e.to_string())?;
    Ok(Done::said(format!(
        "{} files, bundle id {} (target.database set to {db}, was {original})",
        packed.files,
        &packed.bundle_id[..16]
    )))
}

/// The bundle verified, and the trust store that judges the approvals too.
fn verify_bundle(files: &DemoFiles) -> StepResult<(VerifiedBundle, TrustStore)> {
    let store = TrustStore::load(&files.keys).map_err(|e| e.to_string())?;
    // Signed by throw-away keys and applied to a database dropped at the end: nothing
    // worth remembering on this host.
    let vb = VerifiedBundle::load(
        &files.bundle,
        &store,
        chrono::Utc::now(),
        &crate::verdicts::Verdicts::none(),
    )
    .map_err(|e| e.to_string())?;
    let detail = format!(
        "signature threshold met, {} file hashes match",
        vb.manifest().files.len()
    );
    Ok(Done {
        value: (vb, store),
        detail,
    })
}

fn gate_blocked(vb: &VerifiedBundle, opts: &Options<'_>) -> StepResult<()> {
    let gate = apply::gate(vb, opts).map_err(|e| e.to_string())?;
    if gate.ready() {
        return Err("expected BLOCKED on the greenfield fixture, got READY".into());
    }
    Ok(Done::said(format!(
        "BLOCKED as expected - {}",
        gate.blocked_summary()
    )))
}

/// `--through` the gate-free tiers while the gate is BLOCKED: only those run.
fn apply_through(vb: &VerifiedBundle, opts: &Options<'_>) -> StepResult<()> {
    let receipt = apply::apply(vb, opts).map_err(|e| e.to_string())?;
    Ok(Done::said(format!(
        "tiers {} applied while BLOCKED (no gate guards them); not yet: {}",
        receipt.tiers.join(", "),
        receipt.remaining_tiers.len()
    )))
}

/// The stand-in for the human act the database gate reads: the fixture's approval row
/// inserted.
fn ratify(target: &ConnSpec) -> StepResult<()> {
    let sql = FIXTURE
        .get_file(APPROVAL_FILE)
        .and_then(|f| f.contents_utf8())
        .ok_or("fixture has no approve.sql")?;
    let mut client = target.connect().map_err(|e| e.to_string())?;
    client
        .batch_execute(sql)
        .map_err(|e| crate::db::pg_message(&e))?;
    Ok(Done::said(format!(
        "inserted one os_proposal_approvals row for {DEMO_APR} (in production only a human does this); the signed approvals are still missing"
    )))
}

fn gate_ready(vb: &VerifiedBundle, opts: &Options<'_>) -> StepResult<()> {
    let gate = apply::gate(vb, opts).map_err(|e| e.to_string())?;
    if !gate.ready() {
        return Err(format!(
            "expected READY, got BLOCKED: {}",
            gate.blocked_summary()
        ));
    }
    let quorum = gate
        .ratification
        .as_ref()
        .map(|q| format!(" - {}", q.summary()))
        .unwrap_or_default();
    Ok(Done::said(format!("READY{quorum}")))
}

/// Rehearses on a clone; its step table goes to `table` whether or not it held.
fn rehearse_on_clone(
    vb: &VerifiedBundle,
    target: &ConnSpec,
    params: &BTreeMap<String, String>,
    approvals: &Approvals,
    save: &Path,
    table: &mut Option<String>,
) -> StepResult<()> {
    let rehearsal = rehearse::rehearse(
        vb,
        &RehearseOptions {
            conn: target,
            clone_strategy: crate::db::rehearse::cycle::CloneStrategy::Auto,
            params: params.clone(),
            assume_gates: false,
            statement_timeout: "60s".into(),
            gate_role: None,
            approvals: Some(approvals),
            observer: None,
            predict_timeout: std::time::Duration::from_secs(5),
        },
    );
    *table = Some(crate::commands::deploy::rehearse::steps_table(&rehearsal));
    // As `rehearse --json` prints it, for the dossier step and an operator by hand.
    let text = serde_json::to_string_pretty(
        &crate::commands::deploy::rehearse::RehearseOutcome::new(rehearsal.clone()),
    )
    .map_err(|e| e.to_string())?;
    std::fs::write(save, text).map_err(|e| e.to_string())?;
    if !rehearsal.ok {
        return Err(format!("rehearsal failed (exit {})", rehearsal.exit_code));
    }
    Ok(Done::said(format!(
        "{} steps held; clone dropped; target fingerprint unchanged",
        rehearsal.steps.len()
    )))
}

/// The schema fingerprint now, saved to `save` as `fingerprint --json` prints it (what
/// `fingerprint --diff` reads). Schema, not data: the ratification row inserted
/// between the first apply and the rollback stays (the rollback undoes the release,
/// not the approval); the rehearsal proves the data-level round trip on its clone.
fn fingerprint_now(target: &ConnSpec, save: &Path) -> StepResult<Fingerprint> {
    let mut client = target.connect().map_err(|e| e.to_string())?;
    let fp = fingerprint::compute_consistent(&mut client, target, Level::Schema, 2)
        .map_err(|e| e.to_string())?;
    let text = serde_json::to_string_pretty(&fp).map_err(|e| e.to_string())?;
    std::fs::write(save, text).map_err(|e| e.to_string())?;
    let detail = format!("{} (schema), saved", fp.short());
    Ok(Done { value: fp, detail })
}

fn apply_all(vb: &VerifiedBundle, opts: &Options<'_>) -> StepResult<()> {
    let receipt = apply::apply(vb, opts).map_err(|e| e.to_string())?;
    let verify = receipt
        .verify
        .as_ref()
        .map(|probe| {
            probe
                .values
                .iter()
                .filter(|(k, _)| probe.expected.contains_key(*k))
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    Ok(Done::said(format!(
        "{} tiers in one transaction; verify probe: {verify}",
        receipt.tiers.len()
    )))
}

fn ledger_status(target: &ConnSpec) -> StepResult<()> {
    let mut client = target.connect().map_err(|e| e.to_string())?;
    let rows = ledger::read_all(&mut client).map_err(|e| e.to_string())?;
    let chain = ledger::verify_chain(&rows);
    if let Some((seq, why)) = chain {
        return Err(format!("hash chain broken at {seq}: {why}"));
    }
    let last = rows.last().ok_or("no ledger row")?;
    let applied = ledger::state_of(&rows, &last.bundle_id).applied;
    let state = match last.bundle_tier_names() {
        Some(all) if applied.len() < all.len() => {
            format!(
                "partially applied, {} of {} tiers",
                applied.len(),
                all.len()
            )
        }
        _ => "every tier applied".to_string(),
    };
    Ok(Done::said(format!(
        "{} row(s), chain OK; last: {} {} by {}: {state}",
        rows.len(),
        last.event,
        last.bundle_version,
        last.operator
    )))
}

fn reapply_refused(vb: &VerifiedBundle, opts: &Options<'_>) -> StepResult<()> {
    // Only the refusal this step names passes: a downgrade, an equivocation or a lock
    // timeout (`LockBusy`) is a failed demo, not "already applied".
    match apply::apply(vb, opts) {
        Err(DbError::Refused(crate::db::refusal::Refusal::AlreadyApplied { .. })) => {
            Ok(Done::said("exit 6: every tier is already applied"))
        }
        Err(e) => Err(format!("expected a refusal, got: {e}")),
        Ok(_) => Err("a second apply was not refused".into()),
    }
}

fn roll_back(vb: &VerifiedBundle, opts: &Options<'_>) -> StepResult<()> {
    let receipt = apply::rollback(vb, opts).map_err(|e| e.to_string())?;
    let probe = receipt
        .rollback_probe
        .as_ref()
        .map(|p| format!("gap={}", p.values.get("gap").cloned().unwrap_or_default()))
        .unwrap_or_default();
    Ok(Done::said(format!("{}; {probe}", receipt.outcome)))
}

fn back_to_baseline(
    target: &ConnSpec,
    before: Option<&Fingerprint>,
    save: &Path,
) -> StepResult<()> {
    let fp = fingerprint_now(target, save)?.value;
    let before = before.ok_or("no earlier fingerprint")?;
    if fp.fingerprint != before.fingerprint {
        return Err(format!(
            "differs: {}",
            fingerprint::diff(before, &fp).join(", ")
        ));
    }
    Ok(Done::said(format!(
        "{} == {}: schema back to the exact baseline",
        fp.short(),
        before.short()
    )))
}

/// Shell-quoted pieces of the commands an operator would type.
struct ByHand {
    /// `--db` value: the demo database's name, or its whole connection string.
    db: String,
    /// The work directory, as one shell word.
    work: String,
    bundle: String,
    trust: String,
    /// The approvals directory.
    approvals: String,
    /// The saved fingerprints.
    before: String,
    after: String,
    /// How to create the demo database.
    create: String,
    /// `--db` for the superuser's steps (the database as the operator names it).
    admin_db: String,
}

impl ByHand {
    fn new(db: &str, work: &Path, bundle: &Path, trust: &Path, create: String) -> ByHand {
        let word = |p: &Path| sh(&p.display().to_string());
        ByHand {
            db: sh(db),
            admin_db: sh(db),
            work: word(work),
            bundle: word(bundle),
            trust: word(trust),
            approvals: word(&work.join("approvals")),
            before: word(&work.join(BEFORE_JSON)),
            after: word(&work.join(AFTER_JSON)),
            create,
        }
    }

    fn bundle_cmd(&self, sub: &str, extra: &str) -> String {
        let mut c = format!(
            "airlock {sub} {} --trust {} --db {}",
            self.bundle, self.trust, self.db
        );
        if !extra.is_empty() {
            c.push(' ');
            c.push_str(extra);
        }
        c
    }

    /// `airlock approve` by the throw-away approver key `name` (its approval of an
    /// earlier run removed first: approve never overwrites one).
    fn approve_cmd(&self, name: &str) -> String {
        format!(
            "mkdir -p {0} && rm -f {0}/{4}* && airlock approve {1} --trust {2} --key {3}/{name}.key --param ratified_apr={DEMO_APR} --out {0}/{4} --yes",
            self.approvals,
            self.bundle,
            self.trust,
            self.work,
            approval_file(name)
        )
    }

    fn apply_flags(&self) -> String {
        format!(
            "--param ratified_apr={DEMO_APR} --yes --out {}/receipts",
            self.work
        )
    }
}

/// `text` as one shell word (single-quoted unless it is plainly safe).
fn sh(text: &str) -> String {
    if !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-=:,+@".contains(c))
    {
        return text.to_string();
    }
    format!("'{}'", text.replace('\'', "'\\''"))
}

fn finish(s: Steps, db: &str, workdir: Option<PathBuf>) -> DemoReport {
    DemoReport {
        ok: !s.failed,
        database: db.into(),
        private_cluster: None,
        kept: false,
        workdir,
        dossier: None,
        steps: s.steps,
        rehearsal: None,
    }
}
