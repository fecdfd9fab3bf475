//! The demo's roles, set up as the operator's guide recommends: the database belongs
//! to an application role that is no superuser, and every step after the one-time
//! `airlock setup` runs on a deploy login that is none either and has no path to one.
//!
//! Invariant: both roles are the demo's own (named after its process and time, made
//! by it, dropped with its database), so the demo touches no role it did not create.

use crate::db::conn::ConnSpec;
use crate::db::setup::{self, SetupReport};
use crate::db::{quote_ident, sql_err, DbError};

/// The application role that owns the demo database, and the deploy login.
pub(crate) struct DemoRoles {
    /// Owns the database and what the fixture creates (NOLOGIN).
    pub app: String,
    /// The deploy login `airlock setup` makes.
    pub deploy: String,
    /// The deploy login's password: random, for this run only, never shown.
    password: String,
    /// Whether this run created the cluster-wide gate role `airlock_gate` (it was
    /// missing): then it is dropped with the rest, when nothing else uses it.
    pub created_gate: bool,
}

impl DemoRoles {
    /// Names for this run (`tag`: the demo database's own suffix).
    #[allow(unsafe_code)] // getrandom(2), libc
    pub fn new(tag: &str) -> std::io::Result<DemoRoles> {
        // The kernel's generator, not /dev/urandom: the static binary runs the demo in
        // an empty root too (no /dev).
        let mut bytes = [0u8; 16];
        // SAFETY: getrandom(2) writes at most `bytes.len()` bytes into the buffer.
        let n = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
        if n != bytes.len() as isize {
            return Err(std::io::Error::last_os_error());
        }
        Ok(DemoRoles {
            app: format!("airlock_demo_app_{tag}"),
            deploy: format!("airlock_demo_deploy_{tag}"),
            password: hex::encode(bytes),
            created_gate: false,
        })
    }

    /// The application role, before the database it owns.
    pub fn create_app_sql(&self) -> String {
        format!("CREATE ROLE {} NOLOGIN", quote_ident(&self.app))
    }

    /// `airlock setup` on the demo database (connected as the superuser, `admin`),
    /// then the deploy login's password set for this run.
    pub fn set_up(&self, admin: &ConnSpec) -> Result<SetupReport, DbError> {
        let mut client = admin.connect()?;
        let report = setup::run(
            &mut client,
            &setup::SetupRequest {
                login: &self.deploy,
                role: None,
                gate_role: crate::db::gate::DEFAULT_GATE_ROLE,
                createdb: true,
                auditor: None,
            },
        )?;
        // A password, so that the login also gets in where the server asks for one.
        let sql = format!(
            "ALTER ROLE {} PASSWORD '{}'",
            quote_ident(&self.deploy),
            self.password
        );
        client
            .batch_execute(&sql)
            .map_err(|e| sql_err("setting the deploy login's password", &e))?;
        Ok(report)
    }

    /// How the steps reach the database as the deploy login: the address given, else
    /// (a Unix socket whose `peer` rule admits only the OS user) TCP on localhost.
    pub fn deploy_login(&self, target: &ConnSpec) -> Result<ConnSpec, DbError> {
        let direct = target.with_login(&self.deploy, &self.password, false)?;
        let first = match direct.connect() {
            Ok(_) => return Ok(direct),
            Err(e) => e,
        };
        if target.on_unix_socket() {
            let tcp = target.with_login(&self.deploy, &self.password, true)?;
            if tcp.connect().is_ok() {
                return Ok(tcp);
            }
        }
        Err(first)
    }

    /// The gate role dropped, when this run created it, as the superuser `client`:
    /// `Ok(None)` when not ours, `Ok(Some(true))` dropped, `Ok(Some(false))` kept
    /// because another database (another demo running now, an operator's grant)
    /// depends on it.
    pub fn drop_gate(&self, client: &mut postgres::Client) -> Result<Option<bool>, DbError> {
        if !self.created_gate {
            return Ok(None);
        }
        let sql = format!(
            "DROP ROLE IF EXISTS {}",
            quote_ident(crate::db::gate::DEFAULT_GATE_ROLE)
        );
        match client.batch_execute(&sql) {
            Ok(()) => Ok(Some(true)),
            Err(e)
                if e.code() == Some(&postgres::error::SqlState::DEPENDENT_OBJECTS_STILL_EXIST) =>
            {
                Ok(Some(false))
            }
            Err(e) => Err(sql_err("dropping the gate role the demo created", &e)),
        }
    }

    /// Both roles dropped (after the database), as the superuser `admin`.
    pub fn drop_sql(&self) -> String {
        format!(
            "DROP ROLE IF EXISTS {}; DROP ROLE IF EXISTS {}",
            quote_ident(&self.deploy),
            quote_ident(&self.app)
        )
    }
}
