//! Connecting: `--db` / `AIRLOCK_DB` / libpq environment, the bundle's target database
//! as default name, NOTICE collection (db::notices), Ctrl-C → cancel, and the name guard.
//!
//! Invariant: every command that touches a database goes through [`connect`] and then
//! [`name_guard`] before it runs anything else.

use crate::DbError;
use airlock_bundle::target_db::TargetDatabase;
use postgres::{Client, Config, NoTls};
use std::sync::Mutex;

/// Where and how to connect, resolved but not yet connected.
#[derive(Clone, Debug)]
pub struct ConnSpec {
    pub config: Config,
    /// Shown in messages (no password).
    pub shown: String,
    /// Where the database name came from: `--db/AIRLOCK_DB`, `PGDATABASE`, or the
    /// default (the bundle's target.database, or the user name).
    pub dbname_from: String,
}

fn default_socket_dir() -> String {
    for d in ["/var/run/postgresql", "/run/postgresql", "/tmp"] {
        if std::path::Path::new(d).is_dir() {
            return d.to_string();
        }
    }
    "/tmp".into()
}

pub fn os_user() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| {
            // SAFETY: getpwuid returns a pointer into static storage or null; we copy at once.
            unsafe {
                let pw = libc::getpwuid(libc::geteuid());
                if pw.is_null() {
                    "unknown".into()
                } else {
                    std::ffi::CStr::from_ptr((*pw).pw_name)
                        .to_string_lossy()
                        .into_owned()
                }
            }
        })
}

/// [`resolve`] for a bundle: its one exact name is the default database; a bundle for
/// a fleet has none, and the connection must name the database
/// ([`DbError::NoDatabaseNamed`] otherwise).
pub fn resolve_for(db: Option<&str>, target: &TargetDatabase) -> Result<ConnSpec, DbError> {
    resolve_with(db, target.default_name()).map_err(|e| match e {
        DbError::NoDatabaseNamed { .. } => DbError::NoDatabaseNamed {
            target: target.clone(),
        },
        other => other,
    })
}

/// Resolve `--db`/`AIRLOCK_DB` (already merged by clap), then the libpq environment.
/// `default_db` is used when no database name was given anywhere.
pub fn resolve(db: Option<&str>, default_db: &str) -> Result<ConnSpec, DbError> {
    resolve_with(db, Some(default_db))
}

fn resolve_with(db: Option<&str>, default_db: Option<&str>) -> Result<ConnSpec, DbError> {
    let mut config: Config = match db {
        Some(s) if is_bare_name(s) => {
            let mut c = Config::new();
            c.dbname(s);
            c
        }
        Some(s) => s.parse().map_err(|e| {
            DbError::Usage(format!(
                "--db {s:?} is not a database name, libpq connection string or URL: {e}"
            ))
        })?,
        None => Config::new(),
    };
    let mut dbname_from = if config.get_dbname().is_some() {
        "--db or AIRLOCK_DB"
    } else {
        ""
    };
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if config.get_hosts().is_empty() {
        let host = env("PGHOST").unwrap_or_else(default_socket_dir);
        for h in host.split(',') {
            if h.starts_with('/') {
                config.host_path(h);
            } else {
                config.host(h);
            }
        }
    }
    if config.get_ports().is_empty() {
        if let Some(p) = env("PGPORT") {
            let port = p
                .parse()
                .map_err(|_| DbError::Usage(format!("PGPORT={p:?} is not a port number")))?;
            config.port(port);
        }
    }
    if config.get_user().is_none() {
        config.user(&env("PGUSER").unwrap_or_else(os_user));
    }
    if config.get_password().is_none() {
        if let Some(p) = env("PGPASSWORD") {
            config.password(p);
        }
    }
    if config.get_dbname().is_none() {
        let name = if db.is_none() {
            env("PGDATABASE")
        } else {
            None
        };
        dbname_from = if name.is_some() {
            "PGDATABASE"
        } else {
            "default"
        };
        let name =
            name.or_else(|| default_db.map(str::to_string))
                .ok_or(DbError::NoDatabaseNamed {
                    target: TargetDatabase::Fleet(vec![]),
                })?;
        config.dbname(&name);
    }
    if config.get_application_name().is_none() {
        config.application_name("airlock");
    }
    // airlock's settings go last in the startup packet: they outrank the database's and
    // roles' defaults, and a user-given `options` cannot undo them (see db::session).
    let options = match config.get_options() {
        Some(o) if !o.trim().is_empty() => {
            format!("{o} {}", crate::session::hermetic::startup_options())
        }
        _ => crate::session::hermetic::startup_options(),
    };
    config.options(&options);
    config.notice_callback(|n| crate::session::notices::record(&n));
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|h| match h {
            postgres::config::Host::Tcp(s) => s.clone(),
            postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .collect();
    let shown = format!(
        "host={} port={} user={} dbname={}",
        hosts.join(","),
        config.get_ports().first().copied().unwrap_or(5432),
        config.get_user().unwrap_or(""),
        config.get_dbname().unwrap_or("")
    );
    Ok(ConnSpec {
        config,
        shown,
        dbname_from: dbname_from.into(),
    })
}

/// A value as a libpq `key=value` string holds it: bare when it is a plain word,
/// else in single quotes with `\` and `'` escaped.
fn conninfo_value(v: &str) -> String {
    let plain = !v.is_empty()
        && v.chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && c != '\'' && c != '\\');
    if plain {
        v.to_string()
    } else {
        format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
    }
}

/// A bare database name, as psql takes it (`--db mydb`): no `=` (a key=value string)
/// and no URL scheme. Such a word is never a valid connection string, so reading it
/// as a name takes nothing away.
fn is_bare_name(s: &str) -> bool {
    let s = s.trim();
    !s.is_empty()
        && !s.contains('=')
        && !s.starts_with("postgres://")
        && !s.starts_with("postgresql://")
        && !s.chars().any(char::is_whitespace)
}

impl ConnSpec {
    pub fn dbname(&self) -> &str {
        self.config.get_dbname().unwrap_or("")
    }

    /// The same server, another database.
    pub fn with_dbname(&self, name: &str) -> ConnSpec {
        let mut c = self.clone();
        c.config.dbname(name);
        c.shown = c.shown.replace(
            &format!("dbname={}", self.dbname()),
            &format!("dbname={name}"),
        );
        c
    }

    /// The same server and database, logged in as `user` with `password` (none kept in
    /// what is shown); `tcp_localhost`: over TCP to 127.0.0.1 on the same port instead
    /// of the address given (a Unix socket whose `peer` rule admits only the OS user).
    pub fn with_login(
        &self,
        user: &str,
        password: &str,
        tcp_localhost: bool,
    ) -> Result<ConnSpec, DbError> {
        if tcp_localhost {
            let port = self.config.get_ports().first().copied().unwrap_or(5432);
            let quote = |v: &str| format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"));
            let conninfo = format!(
                "host=127.0.0.1 port={port} dbname={} user={} password={}",
                quote(self.dbname()),
                quote(user),
                quote(password)
            );
            let mut c = resolve(Some(&conninfo), self.dbname())?;
            c.shown = format!(
                "host=127.0.0.1 port={port} user={user} dbname={}",
                self.dbname()
            );
            c.dbname_from = self.dbname_from.clone();
            return Ok(c);
        }
        let mut c = self.clone();
        c.config.user(user);
        c.config.password(password);
        c.shown = c.shown.replace(
            &format!("user={}", self.config.get_user().unwrap_or("")),
            &format!("user={user}"),
        );
        Ok(c)
    }

    /// A libpq connection string to the same server (every host and port, as
    /// resolved) and database, as `user`: what a person types to connect there as that
    /// login. No password, and nothing else of this one's.
    pub fn conninfo_as(&self, user: &str) -> String {
        let hosts: Vec<String> = self
            .config
            .get_hosts()
            .iter()
            .map(|h| match h {
                postgres::config::Host::Tcp(s) => s.clone(),
                postgres::config::Host::Unix(p) => p.display().to_string(),
            })
            .collect();
        let ports: Vec<String> = match self.config.get_ports() {
            [] => vec!["5432".into()],
            ports => ports.iter().map(u16::to_string).collect(),
        };
        format!(
            "host={} port={} dbname={} user={}",
            conninfo_value(&hosts.join(",")),
            ports.join(","),
            conninfo_value(self.dbname()),
            conninfo_value(user)
        )
    }

    /// Whether the first address is a Unix socket.
    pub fn on_unix_socket(&self) -> bool {
        matches!(
            self.config.get_hosts().first(),
            Some(postgres::config::Host::Unix(_)) | None
        )
    }

    /// Connect, and refuse a server whose major airlock does not support
    /// ([`SUPPORTED_MAJORS`]) before anything else is read or written.
    pub fn connect(&self) -> Result<Client, DbError> {
        let mut client = self.config.connect(NoTls).map_err(|e| DbError::Connect {
            target: self.shown.clone(),
            message: crate::pg_message(&e),
        })?;
        register_cancel(&client);
        check_supported(&mut client)?;
        Ok(client)
    }
}

static CANCEL: Mutex<Option<postgres::CancelToken>> = Mutex::new(None);
static INSTALLED: std::sync::Once = std::sync::Once::new();
pub static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// True while `--wait` polls: Ctrl-C then ends a read-only wait, not a deploy.
static WAITING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Marks a `--wait` in progress until dropped (what Ctrl-C says depends on it).
pub struct Waiting(());

impl Waiting {
    pub fn begin() -> Waiting {
        WAITING.store(true, std::sync::atomic::Ordering::SeqCst);
        Waiting(())
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        WAITING.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Ctrl-C cancels the statement running on the most recent connection; the error that
/// follows rolls the transaction back.
fn register_cancel(client: &Client) {
    if let Ok(mut slot) = CANCEL.lock() {
        *slot = Some(client.cancel_token());
    }
    install_interrupt_handler();
}

/// Ctrl-C sets [`interrupted`] and cancels the statement running on the most recent
/// connection (installed once; also before a `--wait` that sleeps between polls).
pub fn install_interrupt_handler() {
    INSTALLED.call_once(|| {
        let _ = ctrlc::set_handler(|| {
            INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
            if WAITING.load(std::sync::atomic::Ordering::SeqCst) {
                eprintln!("interrupted: no longer waiting for the gate; nothing was changed");
            } else {
                eprintln!(
                    "interrupted: cancelling the running statement; everything will be rolled back"
                );
            }
            if let Ok(slot) = CANCEL.lock() {
                if let Some(t) = slot.as_ref() {
                    let _ = t.cancel_query(NoTls);
                }
            }
        });
    });
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst)
}

pub use crate::session::hermetic::ServerInfo;

/// The name guard: `current_database()` must be the bundle's target, or match it when
/// the bundle names a fleet (or, only during a rehearsal, be the clone's name). Reads
/// the session's facts and sets its `statement_timeout` in the same round trip.
pub fn name_guard_with(
    client: &mut Client,
    expected: &TargetDatabase,
    statement_timeout: &str,
) -> Result<crate::session::hermetic::SessionFacts, DbError> {
    let facts = crate::session::hermetic::open_facts(client, statement_timeout)?;
    match expected.matching(&facts.database) {
        None => {
            return Err(DbError::NameGuard {
                expected: expected.clone(),
                actual: facts.database,
            })
        }
        Some(entry) if airlock_bundle::target_db::is_pattern(entry) => {
            crate::session::fleet_member::fleet_database_set_up(client, entry)?
        }
        Some(_) => {}
    }
    Ok(facts)
}

/// [`name_guard_with`] without a statement timeout.
pub fn name_guard(client: &mut Client, expected: &TargetDatabase) -> Result<ServerInfo, DbError> {
    name_guard_with(client, expected, "0").map(|f| f.info())
}

/// The name guard for a database airlock named itself (a rehearsal's clone): exactly
/// that name.
pub fn name_guard_exact(client: &mut Client, name: &str) -> Result<ServerInfo, DbError> {
    name_guard(client, &TargetDatabase::Name(name.into()))
}

/// The PostgreSQL majors airlock supports (kept beside the refusal that names them).
pub use crate::refusal::SUPPORTED_MAJORS;

/// Refuses (exit 5) a server outside [`SUPPORTED_MAJORS`]: the first question of every
/// connection. `SHOW` resolves no names and runs nothing a role defines, and
/// `server_version_num` is fixed when the server was built (no one can set it).
fn check_supported(client: &mut Client) -> Result<(), DbError> {
    let mut num = None;
    let mut version = String::new();
    for m in client
        .simple_query("SHOW server_version_num; SHOW server_version")
        .map_err(|e| crate::sql_err("reading the server's version", &e))?
    {
        if let postgres::SimpleQueryMessage::Row(r) = m {
            let v = r.get(0).unwrap_or_default();
            match num {
                None => num = Some(v.parse::<i64>().unwrap_or(0)),
                Some(_) => version = v.to_string(),
            }
        }
    }
    let major = num.unwrap_or(0) / 10000;
    let (oldest, newest) = SUPPORTED_MAJORS;
    if (oldest..=newest).contains(&major) {
        Ok(())
    } else {
        Err(DbError::Mismatch(
            crate::refusal::Mismatch::ServerUnsupported { major, version },
        ))
    }
}

pub fn check_server_version(info: &ServerInfo, min: Option<i64>) -> Result<(), DbError> {
    match min {
        Some(need) if info.server_version_num < need => {
            Err(DbError::Mismatch(crate::refusal::Mismatch::ServerTooOld {
                have: info.server_version_num,
                need,
            }))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conninfo_as_keeps_the_server_and_quotes_what_needs_it() {
        let spec = resolve(
            Some("host=db.example port=6543 dbname=shop user=admin password=secret"),
            "x",
        )
        .unwrap();
        let advice = spec.conninfo_as("deployer");
        assert_eq!(
            advice,
            "host=db.example port=6543 dbname=shop user=deployer"
        );
        let spec = resolve(
            Some("host=/run/pg port=5433 dbname='my shop' user=admin"),
            "x",
        )
        .unwrap();
        let advice = spec.conninfo_as("o'brien\\x");
        assert_eq!(
            advice,
            "host=/run/pg port=5433 dbname='my shop' user='o\\'brien\\\\x'"
        );
        // What it says is what it connects to.
        let back: Config = advice.parse().unwrap();
        assert_eq!(back.get_dbname(), Some("my shop"));
        assert_eq!(back.get_user(), Some("o'brien\\x"));
        assert!(back.get_password().is_none());
    }
}
