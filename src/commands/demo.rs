//! `airlock demo`: the main job end to end on a throw-away database it creates.
//!
//! Invariant: the demo only ever changes a database it created itself
//! (`airlock_demo_<pid>_<time>`), on the server the libpq environment points at, and
//! drops it afterwards unless `--keep`. When no server answers there (and no `--db`
//! was given) it runs on a private cluster of its own (`crate::cluster`), which it
//! stops and removes afterwards, also on failure and Ctrl-C.

use super::pack::pack_dir;
use crate::cli::DemoArgs;
use crate::cluster::{self, PrivateCluster};
use crate::db::apply::{self, Options};
use crate::db::conn::{self, ConnSpec};
use crate::db::fingerprint::{self, Level};
use crate::db::ledger;
use crate::db::rehearse::{self, RehearseOptions};
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

/// The demo's stand-in for the human ratification the gate waits for.
const APPROVAL_FILE: &str = "approve.sql";
const DEMO_APR: &str = "APR-BOOT-AUTHMODEL-1";

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
    pub steps: Vec<DemoStep>,
    #[serde(skip)]
    rehearsal: Option<String>,
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
                "DEMO PASSED: verified, gated, rehearsed, applied all-or-nothing, recorded in the ledger, rolled back to the exact baseline."
            } else {
                "DEMO FAILED: see the step marked FAILED above."
            }
        ));
        if self.kept {
            s.push_str(&format!(
                "\nkept: database {}{}",
                self.database,
                self.workdir
                    .as_ref()
                    .map(|w| format!(" and files in {}", w.display()))
                    .unwrap_or_default()
            ));
        }
        s
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

    fn run<T>(
        &mut self,
        name: &str,
        f: impl FnOnce() -> std::result::Result<(T, String), String>,
    ) -> Option<T> {
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
        let t = Instant::now();
        let r = f();
        let ms = t.elapsed().as_millis() as u64;
        match r {
            Ok((v, detail)) => {
                self.steps.push(DemoStep {
                    step: name.into(),
                    ok: true,
                    detail,
                    duration_ms: ms,
                    command,
                });
                Some(v)
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

/// The demo database's default privileges for the gate role, when it exists.
const DEMO_GATE_READS: &str = "DO $$ BEGIN
  IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'airlock_gate') THEN
    ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO airlock_gate;
    ALTER DEFAULT PRIVILEGES GRANT USAGE ON SCHEMAS TO airlock_gate;
  END IF;
END $$";

pub fn run(args: DemoArgs) -> Result<Outcome> {
    let base = conn::resolve(args.db.as_deref(), "postgres")?;
    let mut admin = base.with_dbname("postgres");
    let mut private = None;
    if args.db.is_none() && !server_answers(&admin) {
        let (c, step) = start_private_cluster(&admin)?;
        admin = conn::resolve(Some(&c.conninfo("postgres")), "postgres")?;
        private = Some((c, step));
    }
    let mut admin_client = admin.connect().map_err(|e| server_unreachable(&admin, e))?;
    let db = format!(
        "airlock_demo_{}_{}",
        std::process::id(),
        chrono::Utc::now().timestamp()
    );
    admin_client
        .batch_execute(&format!("CREATE DATABASE {}", quote_ident(&db)))
        .map_err(|e| Error::Db(sql_err("creating the demo database", &e)))?;
    // The one-time setup the README asks of a superuser: a role without powers outside
    // the database for gates and probes. Created when missing (a cluster-wide role,
    // not a database: the demo still touches no database it did not create).
    admin_client
        .batch_execute(
            "DO $$ BEGIN
               IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = SESSION_USER)
                  AND NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'airlock_gate') THEN
                 CREATE ROLE airlock_gate NOLOGIN;
                 RAISE NOTICE 'created role airlock_gate (NOLOGIN, no grants outside the demo database): gates and probes run as it';
               END IF;
             EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
             END $$",
        )
        .map_err(|e| Error::Db(sql_err("creating the gate role airlock_gate", &e)))?;
    drop(admin_client);
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
    let mut report = run_steps(&target, &db, &db_arg, work.path());
    if args.keep {
        report.kept = true;
        report.workdir = Some(work.keep());
    } else {
        let dropped = admin.connect().and_then(|mut c| {
            c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                quote_ident(&db)
            ))
            .map_err(|e| sql_err("DROP DATABASE", &e))
        });
        let ok = dropped.is_ok();
        report.steps.push(DemoStep {
            step: "clean up".into(),
            ok,
            detail: match dropped {
                Ok(()) => format!("dropped {db} and the temporary key and bundle"),
                Err(e) => format!("{e}; drop it by hand: DROP DATABASE {db}"),
            },
            duration_ms: 0,
            command: None,
        });
        report.ok &= ok;
    }
    if let Some((mut c, started)) = private {
        report.steps.insert(0, started);
        report.private_cluster = Some(PrivateClusterReport {
            directory: c.dir().to_path_buf(),
            server: c.version.clone(),
            user: c.user(),
        });
        let t = Instant::now();
        let (step, stopped) = if args.keep {
            (
                "stop the private cluster (kept)",
                c.stop_and_keep().map(|dir| {
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
                c.stop_and_remove().map(|()| {
                    "pg_ctl -m immediate stop; directory, socket and log removed".to_string()
                }),
            )
        };
        let ok = stopped.is_ok();
        report.steps.push(DemoStep {
            step: step.into(),
            ok,
            detail: stopped.unwrap_or_else(|e| e),
            duration_ms: t.elapsed().as_millis() as u64,
            command: None,
        });
        report.ok &= ok;
    }
    Ok(Box::new(report))
}

fn run_steps(target: &ConnSpec, db: &str, db_arg: &str, work: &Path) -> DemoReport {
    let mut s = Steps {
        steps: vec![],
        failed: false,
        next_command: None,
    };
    let src = work.join("one-roof");
    let keys = work.join("trust");
    let bundle = work.join("one-roof.airlock.tar.gz");
    let hand = ByHand::new(db_arg, &bundle, &keys);
    s.by_hand(format!(
        "psql -d {} -f FILE  # each fixture file of bundle/one-roof-fixture, in name order",
        hand.db
    ))
    .run("load the greenfield fixture", || {
        let mut c = target.connect().map_err(|e| e.to_string())?;
        // The gate role reads what the demo creates here, and nothing else (never
        // pg_read_all_data): what `airlock plan` lists, granted ahead for the tables
        // the release creates too.
        c.batch_execute(DEMO_GATE_READS)
            .map_err(|e| format!("granting the gate role its reads: {}", crate::db::pg_message(&e)))?;
        let files = fixture_sql();
        for (name, sql) in &files {
            c.batch_execute(sql).map_err(|e| format!("{name}: {}", crate::db::pg_message(&e)))?;
        }
        Ok(((), format!("{} fixture file(s): 35 governed collections, 6 scopes, ownership gap 210, 0 approvals", files.len())))
    });
    let key = s
        .by_hand(format!(
            "airlock keygen --out {0}/demo-release --unencrypted && mkdir -p {1} && cp {0}/demo-release.pub {1}/",
            sh(&work.display().to_string()),
            hand.trust
        ))
        .run("make a throw-away release key", || {
        let k = SecretKey::generate().map_err(|e| e.to_string())?;
        std::fs::create_dir_all(&keys).map_err(|e| e.to_string())?;
        std::fs::write(keys.join("demo-release.pub"), k.public().to_file_text())
            .map_err(|e| e.to_string())?;
        let id = k.key_id.to_string();
        Ok((
            k,
            format!("key {id}; its public key is the whole trust store"),
        ))
    });
    s.by_hand(format!(
        "airlock pack {} --key {}/demo-release.key --out {} --force",
        sh(&src.display().to_string()),
        sh(&work.display().to_string()),
        hand.bundle
    ))
    .run("pack and sign bundle/one-roof", || {
        write_tree(&SOURCE, &src).map_err(|e| e.to_string())?;
        let toml_path = src.join("bundle.toml");
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
        let k = key.as_ref().ok_or("no key")?;
        let r = pack_dir(
            &src,
            k,
            Some(&bundle),
            crate::archive::writer::DEFAULT_LEVEL,
            true,
        )
        .map_err(|e| e.to_string())?;
        Ok((
            (),
            format!(
                "{} files, bundle id {} (target.database set to {db}, was {original})",
                r.files,
                &r.bundle_id[..16]
            ),
        ))
    });
    let vb = s
        .by_hand(format!(
            "airlock verify {} --trust {}",
            hand.bundle, hand.trust
        ))
        .run("verify against the trust store", || {
            let store = TrustStore::load(&keys).map_err(|e| e.to_string())?;
            let vb = VerifiedBundle::load(&bundle, &store, chrono::Utc::now())
                .map_err(|e| e.to_string())?;
            let d = format!(
                "signature threshold met, {} file hashes match",
                vb.manifest().files.len()
            );
            Ok((vb, d))
        });
    let Some(vb) = vb else {
        return finish(s, db, None);
    };
    let mut params = BTreeMap::new();
    params.insert("ratified_apr".to_string(), DEMO_APR.to_string());
    let opts = |params: BTreeMap<String, String>| Options {
        conn: target,
        expected_db: db.to_string(),
        params,
        through: None,
        lock_timeout: "10s".into(),
        statement_timeout: "60s".into(),
        allow_drift: false,
        gate_role: None,
        // Its database is dropped at the end: nothing worth remembering.
        remember: false,
        skip_gates: false,
        confirm: None,
        observer: None,
    };
    s.by_hand(hand.bundle_cmd("gate", ""))
        .run("gate (before ratification)", || {
            let r = apply::gate(&vb, &opts(BTreeMap::new())).map_err(|e| e.to_string())?;
            if r.ready() {
                return Err("expected BLOCKED on the greenfield fixture, got READY".into());
            }
            Ok(((), format!("BLOCKED as expected - {}", r.blocked_summary())))
        });
    s.by_hand(hand.bundle_cmd("apply", &hand.apply_flags()))
        .run("apply is refused while BLOCKED", || {
            match apply::apply(&vb, &opts(params.clone())) {
                Err(DbError::Blocked(m)) => Ok((
                    (),
                    format!("exit 3, nothing changed: {}", crate::report::clip(&m, 80)),
                )),
                Err(e) => Err(format!("expected BLOCKED, got: {e}")),
                Ok(_) => Err("apply ran while the gate was BLOCKED".into()),
            }
        });
    s.by_hand(format!(
        "psql -d {} -f {APPROVAL_FILE}  # from bundle/one-roof-fixture; a human's act in production",
        hand.db
    ))
    .run("DEMO STAND-IN for human ratification", || {
        let sql = FIXTURE.get_file(APPROVAL_FILE).and_then(|f| f.contents_utf8()).ok_or("fixture has no approve.sql")?;
        let mut c = target.connect().map_err(|e| e.to_string())?;
        c.batch_execute(sql).map_err(|e| crate::db::pg_message(&e))?;
        Ok(((), format!("inserted one os_proposal_approvals row for {DEMO_APR}; in production only a human does this")))
    });
    s.by_hand(hand.bundle_cmd("gate", ""))
        .run("gate (after ratification)", || {
            let r = apply::gate(&vb, &opts(BTreeMap::new())).map_err(|e| e.to_string())?;
            if !r.ready() {
                return Err(format!(
                    "expected READY, got BLOCKED: {}",
                    r.blocked_summary()
                ));
            }
            Ok(((), "READY".into()))
        });
    let mut rehearsal = None;
    s.by_hand(hand.bundle_cmd("rehearse", &format!("--param ratified_apr={DEMO_APR}")))
        .run("rehearse on a clone", || {
            let r = rehearse::rehearse(
                &vb,
                &RehearseOptions {
                    conn: target,
                    clone_strategy: crate::db::rehearse::CloneStrategy::Auto,
                    params: params.clone(),
                    assume_gates: false,
                    statement_timeout: "60s".into(),
                    gate_role: None,
                    observer: None,
                },
            );
            rehearsal = Some(super::rehearse::steps_table(&r));
            if !r.ok {
                return Err(format!("rehearsal failed (exit {})", r.exit_code));
            }
            Ok((
                (),
                format!(
                    "{} steps held; clone dropped; target fingerprint unchanged",
                    r.steps.len()
                ),
            ))
        });
    let before = s
        .by_hand(format!("airlock fingerprint --data --db {}", hand.db))
        .run("fingerprint before apply", || {
            let mut c = target.connect().map_err(|e| e.to_string())?;
            let fp = fingerprint::compute_consistent(&mut c, target, Level::Data, 2)
                .map_err(|e| e.to_string())?;
            let d = format!("{} (schema and data)", fp.short());
            Ok((fp, d))
        });
    s.by_hand(hand.bundle_cmd("apply", &hand.apply_flags()))
        .run("apply", || {
            let r = apply::apply(&vb, &opts(params.clone())).map_err(|e| e.to_string())?;
            let verify = r
                .verify
                .as_ref()
                .map(|v| {
                    v.values
                        .iter()
                        .filter(|(k, _)| v.expected.contains_key(*k))
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default();
            Ok((
                (),
                format!(
                    "{} tiers in one transaction; verify probe: {verify}",
                    r.tiers.len()
                ),
            ))
        });
    s.by_hand(format!("airlock status --verify-chain --db {}", hand.db))
        .run("status (the ledger)", || {
            let mut c = target.connect().map_err(|e| e.to_string())?;
            let rows = ledger::read_all(&mut c).map_err(|e| e.to_string())?;
            let chain = ledger::verify_chain(&rows);
            if let Some((seq, why)) = chain {
                return Err(format!("hash chain broken at {seq}: {why}"));
            }
            let last = rows.last().ok_or("no ledger row")?;
            Ok((
                (),
                format!(
                    "{} row(s), chain OK; last: {} {} by {}",
                    rows.len(),
                    last.event,
                    last.bundle_version,
                    last.operator
                ),
            ))
        });
    s.by_hand(hand.bundle_cmd("apply", &hand.apply_flags()))
        .run("re-apply is refused", || {
            match apply::apply(&vb, &opts(params.clone())) {
                Err(DbError::Refused(_)) => {
                    Ok(((), "exit 6: every tier is already applied".into()))
                }
                Err(e) => Err(format!("expected a refusal, got: {e}")),
                Ok(_) => Err("a second apply was not refused".into()),
            }
        });
    s.by_hand(hand.bundle_cmd("rollback", "--yes"))
        .run("rollback", || {
            let r = apply::rollback(&vb, &opts(BTreeMap::new())).map_err(|e| e.to_string())?;
            let probe = r
                .rollback_probe
                .as_ref()
                .map(|p| format!("gap={}", p.values.get("gap").cloned().unwrap_or_default()))
                .unwrap_or_default();
            Ok(((), format!("{}; {probe}", r.outcome)))
        });
    s.by_hand(format!(
        "airlock fingerprint --data --db {}  # compare: airlock fingerprint --diff A.json B.json",
        hand.db
    ))
    .run("fingerprint after rollback == before apply", || {
        let mut c = target.connect().map_err(|e| e.to_string())?;
        let fp = fingerprint::compute_consistent(&mut c, target, Level::Data, 2)
            .map_err(|e| e.to_string())?;
        let b = before.as_ref().ok_or("no earlier fingerprint")?;
        if fp.fingerprint != b.fingerprint {
            return Err(format!("differs: {}", fingerprint::diff(b, &fp).join(", ")));
        }
        Ok((
            (),
            format!(
                "{} == {}: back to the exact baseline",
                fp.short(),
                b.short()
            ),
        ))
    });
    let mut r = finish(s, db, None);
    r.rehearsal = rehearsal;
    r
}

/// Shell-quoted pieces of the commands an operator would type.
struct ByHand {
    /// `--db` value: the demo database's name, or its whole connection string.
    db: String,
    bundle: String,
    trust: String,
}

impl ByHand {
    fn new(db: &str, bundle: &Path, trust: &Path) -> ByHand {
        ByHand {
            db: sh(db),
            bundle: sh(&bundle.display().to_string()),
            trust: sh(&trust.display().to_string()),
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

    fn apply_flags(&self) -> String {
        format!("--param ratified_apr={DEMO_APR} --yes")
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
        steps: s.steps,
        rehearsal: None,
    }
}
