//! A rehearsal clone that needs nobody to leave the target: `pg_dump` of one exported
//! snapshot of the target (directory format, parallel jobs), restored with
//! `pg_restore` into a fresh database made from `template0` with the target's
//! encoding and locale. `CREATE DATABASE … TEMPLATE` needs the target to have no other
//! session; a live database always has some.
//!
//! Invariant: the target is only read, in one `REPEATABLE READ, READ ONLY` transaction
//! whose snapshot every dump job shares, so the clone holds the target's schema and
//! rows at one instant. The schema fingerprint is taken in that same snapshot, for the
//! rehearsal to compare with the restored clone's: a dump that did not restore
//! faithfully is named, not assumed away. Passwords reach the tools in their
//! environment, never on their command line; the dump lives in a private temporary
//! directory removed afterwards.

use crate::catalog::fingerprint::{self, Fingerprint};
use crate::session::conn::ConnSpec;
use crate::{quote_ident, sql_err, DbError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

/// What the dump clone cost, for the report.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct DumpCost {
    /// `pg_dump` (in the exported snapshot), milliseconds.
    pub dump_ms: u64,
    /// `pg_restore` into the clone, milliseconds.
    pub restore_ms: u64,
    /// Bytes of the directory-format dump (compressed).
    pub dump_bytes: u64,
    /// Parallel jobs of each tool.
    pub jobs: usize,
    /// The `pg_dump` used.
    pub pg_dump: String,
}

/// The other sessions on `target` (`pid user application`), and prepared transactions
/// in it: what keeps `CREATE DATABASE … TEMPLATE` from starting.
pub fn others_on(admin: &mut postgres::Client, target: &str) -> Result<Vec<String>, DbError> {
    let rows = admin
        .query(
            "SELECT a.pid::pg_catalog.text OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) \
               coalesce(a.usename::pg_catalog.text, '?') OPERATOR(pg_catalog.||) ' ' \
               OPERATOR(pg_catalog.||) coalesce(a.application_name, '') \
             FROM pg_catalog.pg_stat_activity a \
             WHERE a.datname OPERATOR(pg_catalog.=) $1 AND a.pid OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid() \
             UNION ALL \
             SELECT 'prepared transaction ' OPERATOR(pg_catalog.||) p.gid FROM pg_catalog.pg_prepared_xacts p \
             WHERE p.database OPERATOR(pg_catalog.=) $1",
            &[&target],
        )
        .map_err(|e| sql_err("sessions on the target", &e))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// [`others_on`], once sessions named `own_app` (airlock's own connections of a moment
/// ago, whose backends may not have exited yet: PostgreSQL's own `CREATE DATABASE`
/// waits up to 5 s for them) are gone, or after about a second.
pub fn others_settled(
    admin: &mut postgres::Client,
    target: &str,
    own_app: &str,
) -> Result<Vec<String>, DbError> {
    let own = format!(" {own_app}");
    for _ in 0..20 {
        let others = others_on(admin, target)?;
        if !others.iter().any(|s| s.ends_with(&own)) {
            return Ok(others);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    others_on(admin, target)
}

/// `pg_dump`/`pg_restore` for a server of `server_version` (`server_version_num`):
/// `$AIRLOCK_PG_BIN/NAME`, else the server's own major version's
/// `/usr/lib/postgresql/MAJOR/bin/NAME` (Debian), else `NAME` on the `PATH`.
fn tool(name: &str, server_version: i64) -> PathBuf {
    if let Ok(dir) = std::env::var("AIRLOCK_PG_BIN") {
        return PathBuf::from(dir).join(name);
    }
    let debian = PathBuf::from(format!(
        "/usr/lib/postgresql/{}/bin/{name}",
        server_version / 10000
    ));
    if debian.exists() {
        debian
    } else {
        PathBuf::from(name)
    }
}

/// Refuse, before anything is made, a `pg_restore` that cannot restore into a server
/// of `server_version`: from 17 on it sets `transaction_timeout` in every session it
/// opens, and a server older than 17 rejects it (`--exit-on-error` then stops the
/// restore). A `pg_restore` whose version cannot be read is left to the run itself.
fn restore_fits(server_version: i64) -> Result<(), DbError> {
    let restore = tool("pg_restore", server_version);
    let Ok(out) = Command::new(&restore).arg("--version").output() else {
        return Ok(());
    };
    let Some(major) = tool_major(&String::from_utf8_lossy(&out.stdout)) else {
        return Ok(());
    };
    let server = server_version / 10000;
    if major < 17 || server >= 17 {
        return Ok(());
    }
    Err(DbError::State(format!(
        "{} is PostgreSQL {major}'s, which cannot restore into PostgreSQL {server} (it sets transaction_timeout, which 17 added); nothing was cloned. Install PostgreSQL {server}'s client tools (Debian: postgresql-client-{server}), or set AIRLOCK_PG_BIN to a directory with pg_dump and pg_restore of PostgreSQL {server} to 16, or rehearse with a template clone (--clone-strategy wal_log or file_copy) when nobody else is connected",
        restore.display()
    )))
}

/// The major version in a client tool's `--version` line (`pg_restore (PostgreSQL)
/// 18.6`, `pg_restore (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)`, `… 18beta1`).
fn tool_major(line: &str) -> Option<i64> {
    let mut words = line.split_whitespace();
    words.find(|w| *w == "(PostgreSQL)")?;
    let digits: String = words
        .next()?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// libpq's environment for `spec` (host, port, user, password), the database given
/// apart.
fn libpq_env(spec: &ConnSpec) -> Vec<(&'static str, String)> {
    let c = &spec.config;
    let mut env = Vec::new();
    let hosts: Vec<String> = c
        .get_hosts()
        .iter()
        .map(|h| match h {
            postgres::config::Host::Tcp(s) => s.clone(),
            postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .collect();
    if !hosts.is_empty() {
        env.push(("PGHOST", hosts.join(",")));
    }
    let ports: Vec<String> = c.get_ports().iter().map(u16::to_string).collect();
    if !ports.is_empty() {
        env.push(("PGPORT", ports.join(",")));
    }
    if let Some(u) = c.get_user() {
        env.push(("PGUSER", u.to_string()));
    }
    if let Some(p) = c.get_password() {
        env.push(("PGPASSWORD", String::from_utf8_lossy(p).into_owned()));
    }
    env.push(("PGAPPNAME", "airlock rehearse (dump clone)".into()));
    env
}

/// Run a tool; its stderr (cut) when it fails.
fn run(mut cmd: Command, what: &str) -> Result<(), DbError> {
    let out = cmd.output().map_err(|e| {
        DbError::State(format!(
            "could not run {what} ({}): {e}; install the PostgreSQL client tools of the server's version, or set AIRLOCK_PG_BIN to their directory",
            cmd.get_program().to_string_lossy()
        ))
    })?;
    if out.status.success() {
        return Ok(());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    Err(DbError::State(format!(
        "{what} failed ({}): {}",
        out.status,
        airlock_base::text::clip(err.trim(), 600)
    )))
}

/// `dbname='NAME'`: a database name as libpq's connection string (a bare name with
/// `=` in it would be read as one).
fn conninfo_db(name: &str) -> String {
    format!(
        "dbname='{}'",
        name.replace('\\', "\\\\").replace('\'', "\\'")
    )
}

fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

/// Make `clone` from one snapshot of `target` by `pg_dump -Fd -j` and `pg_restore -j`,
/// and check that the restored clone's schema fingerprint is the target's in the
/// dumped snapshot. On failure the clone is dropped again.
pub fn clone_by_dump(
    admin: &ConnSpec,
    target_spec: &ConnSpec,
    (target, clone): (&str, &str),
    owner: Option<&str>,
    server_version: i64,
) -> Result<DumpCost, DbError> {
    let made = dump_and_restore(admin, target_spec, (target, clone), owner, server_version)
        .and_then(|(cost, at_snapshot)| {
            let mut c = admin.with_dbname(clone).connect()?;
            let mut tx = c
                .build_transaction()
                .read_only(true)
                .start()
                .map_err(|e| sql_err("BEGIN READ ONLY on the clone", &e))?;
            let restored = fingerprint::compute(&mut tx)?;
            let _ = tx.rollback();
            if restored.fingerprint == at_snapshot.fingerprint {
                return Ok(cost);
            }
            let diff = fingerprint::diff(&at_snapshot, &restored);
            Err(DbError::State(format!(
                "the restored clone's schema is not the target's at the dumped snapshot ({} != {}; {} object(s) differ: {}): a rehearsal on it would prove nothing about the target. Rehearse with a template clone (--clone-strategy wal_log or file_copy) in a quiet moment, or on a replica",
                restored.short(),
                at_snapshot.short(),
                diff.len(),
                diff.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
            )))
        });
    if made.is_err() {
        if let Ok(mut a) = admin.connect() {
            let _ = a.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                quote_ident(clone)
            ));
        }
    }
    made
}

/// `clone`, empty: from `template0`, with the target's encoding and locale, owned by
/// `owner` (the target's owner).
fn empty_clone(
    admin: &ConnSpec,
    (target, clone): (&str, &str),
    owner: Option<&str>,
) -> Result<(), DbError> {
    let mut a = admin.connect()?;
    let locale = a
        .query_one(
            // The ICU provider (PostgreSQL 15+) read through to_jsonb: older servers have
            // no such column.
            "SELECT pg_catalog.pg_encoding_to_char(d.encoding)::pg_catalog.text, d.datcollate::pg_catalog.text, \
             d.datctype::pg_catalog.text, pg_catalog.to_jsonb(d) OPERATOR(pg_catalog.->>) 'datlocprovider', \
             pg_catalog.to_jsonb(d) OPERATOR(pg_catalog.->>) 'daticulocale' \
             FROM pg_catalog.pg_database d WHERE d.datname OPERATOR(pg_catalog.=) $1",
            &[&target],
        )
        .map_err(|e| sql_err("the target's encoding and locale", &e))?;
    let (encoding, collate, ctype): (String, String, String) =
        (locale.get(0), locale.get(1), locale.get(2));
    let lit = |s: &str| format!("'{}'", s.replace('\'', "''"));
    let owned_by = owner
        .map(|r| format!(" OWNER {}", quote_ident(r)))
        .unwrap_or_default();
    let icu = match (
        locale.get::<_, Option<String>>(3).as_deref(),
        locale.get::<_, Option<String>>(4),
    ) {
        (Some("i"), Some(icu)) => format!(" LOCALE_PROVIDER icu ICU_LOCALE {}", lit(&icu)),
        _ => String::new(),
    };
    a.batch_execute(&format!(
        "CREATE DATABASE {} TEMPLATE template0 ENCODING {} LC_COLLATE {} LC_CTYPE {}{icu}{owned_by}",
        quote_ident(clone),
        lit(&encoding),
        lit(&collate),
        lit(&ctype)
    ))
    .map_err(|e| sql_err("CREATE DATABASE (for the dump clone)", &e))?;
    Ok(())
}

/// The dump and the restore; the target's schema fingerprint in the dumped snapshot.
fn dump_and_restore(
    admin: &ConnSpec,
    target_spec: &ConnSpec,
    (target, clone): (&str, &str),
    owner: Option<&str>,
    server_version: i64,
) -> Result<(DumpCost, Fingerprint), DbError> {
    restore_fits(server_version)?;
    empty_clone(admin, (target, clone), owner)?;
    let jobs = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, 4);
    let dir = tempfile::Builder::new()
        .prefix("airlock-rehearse-dump-")
        .tempdir()
        .map_err(|e| DbError::State(format!("a temporary directory for the dump: {e}")))?;
    let out = dir.path().join("dump");
    // The snapshot every dump job reads: held open until pg_dump is done.
    let mut t = target_spec.connect()?;
    let mut tx = t
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .map_err(|e| sql_err("BEGIN REPEATABLE READ, READ ONLY on the target", &e))?;
    let snapshot: String = tx
        .query_one("SELECT pg_catalog.pg_export_snapshot()", &[])
        .map_err(|e| sql_err("pg_export_snapshot", &e))?
        .get(0);
    let at_snapshot = fingerprint::compute(&mut tx)?;
    let pg_dump = tool("pg_dump", server_version);
    let started = Instant::now();
    let mut dump = Command::new(&pg_dump);
    dump.envs(libpq_env(target_spec))
        .arg(format!("--snapshot={snapshot}"))
        .args(["--format=directory", "--no-subscriptions", "--compress=1"])
        .arg(format!("--jobs={jobs}"))
        .arg("--file")
        .arg(&out)
        .arg("--dbname")
        .arg(conninfo_db(target));
    run(dump, "pg_dump of the target")?;
    let dump_ms = started.elapsed().as_millis() as u64;
    let _ = tx.rollback();
    drop(t);
    let started = Instant::now();
    let mut restore = Command::new(tool("pg_restore", server_version));
    restore
        .envs(libpq_env(admin))
        .args(["--exit-on-error", "--no-subscriptions"])
        .arg(format!("--jobs={jobs}"))
        .arg("--dbname")
        .arg(conninfo_db(clone))
        .arg(&out);
    run(restore, "pg_restore into the clone")?;
    let restore_ms = started.elapsed().as_millis() as u64;
    Ok((
        DumpCost {
            dump_ms,
            restore_ms,
            dump_bytes: dir_bytes(&out),
            jobs,
            pg_dump: pg_dump.display().to_string(),
        },
        at_snapshot,
    ))
}

#[cfg(test)]
mod tests {
    use super::tool_major;

    #[test]
    fn a_tool_major_is_read_from_its_version_line() {
        assert_eq!(tool_major("pg_restore (PostgreSQL) 18.6\n"), Some(18));
        assert_eq!(
            tool_major("pg_restore (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)"),
            Some(15)
        );
        assert_eq!(tool_major("pg_restore (PostgreSQL) 18beta1"), Some(18));
        assert_eq!(tool_major("pg_restore 9.6"), None);
    }
}
