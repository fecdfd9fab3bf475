//! Everything that talks to PostgreSQL: connect, guard, gate, probe, fingerprint,
//! ledger, execute, rehearse.

pub mod apply;
pub mod conn;
pub mod fingerprint;
pub mod gate;
pub mod ledger;
pub mod rehearse;

use std::collections::BTreeMap;

/// The server's message (with detail and hint), not the driver's wrapper text.
pub fn pg_message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => {
            let mut s = format!("{} (SQLSTATE {})", d.message(), d.code().code());
            if let Some(detail) = d.detail() {
                s.push_str(&format!("; detail: {detail}"));
            }
            if let Some(hint) = d.hint() {
                s.push_str(&format!("; hint: {hint}"));
            }
            if let Some(w) = d.where_() {
                s.push_str(&format!("; where: {}", w.replace('\n', " / ")));
            }
            s
        }
        None => {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(x) = src {
                s.push_str(&format!(": {x}"));
                src = x.source();
            }
            s
        }
    }
}

pub fn sql_err(context: &str, e: &postgres::Error) -> DbError {
    DbError::Sql {
        context: context.into(),
        message: pg_message(e),
    }
}

pub fn sqlstate(e: &postgres::Error) -> Option<&str> {
    e.code().map(|c| c.code())
}

/// Quote an SQL identifier ("a""b").
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Parse `--param K=V` and check each against the manifest's declarations. Required
/// params are checked by the caller (only runs that include gated tiers need them).
pub fn parse_params(
    given: &[String],
    decl: &BTreeMap<String, crate::spec::ParamSpec>,
) -> Result<BTreeMap<String, String>, DbError> {
    let mut out = BTreeMap::new();
    for g in given {
        let Some((k, v)) = g.split_once('=') else {
            return Err(DbError::Usage(format!("--param {g:?} must be NAME=VALUE")));
        };
        let Some(spec) = decl.get(k) else {
            let known: Vec<&str> = decl.keys().map(String::as_str).collect();
            return Err(DbError::Usage(format!(
                "--param {k}: the bundle declares no such parameter (declared: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )));
        };
        if let Some(p) = &spec.pattern {
            let re = regex::Regex::new(p)
                .map_err(|e| DbError::Usage(format!("params.{k}.pattern: {e}")))?;
            if !re.is_match(v) {
                return Err(DbError::Usage(format!(
                    "--param {k}={v:?} does not match the pattern {p} ({k}: {})",
                    spec.description
                )));
            }
        }
        if out.insert(k.to_string(), v.to_string()).is_some() {
            return Err(DbError::Usage(format!("--param {k} given twice")));
        }
    }
    Ok(out)
}

pub fn require_params(
    given: &BTreeMap<String, String>,
    decl: &BTreeMap<String, crate::spec::ParamSpec>,
) -> Result<(), DbError> {
    for (k, spec) in decl {
        if spec.required && !given.contains_key(k) {
            return Err(DbError::Usage(format!(
                "missing required --param {k}=VALUE ({}{})",
                spec.description,
                spec.pattern
                    .as_ref()
                    .map(|p| format!("; pattern {p}"))
                    .unwrap_or_default()
            )));
        }
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot connect to PostgreSQL ({target}): {message}")]
    Connect { target: String, message: String },
    #[error("{context}: {message}")]
    Sql { context: String, message: String },
    #[error("name guard: connected to database {actual:?}, but the bundle is for {expected:?}")]
    NameGuard { expected: String, actual: String },
    #[error("{0}")]
    State(String),
    #[error("{0}")]
    Refused(String),
    #[error("gate BLOCKED: {0}")]
    Blocked(String),
    #[error("{0}")]
    Usage(String),
}

impl DbError {
    pub fn exit_code(&self) -> u8 {
        match self {
            DbError::Connect { .. } | DbError::Sql { .. } => 1,
            DbError::NameGuard { .. } | DbError::State(_) => 5,
            DbError::Refused(_) => 6,
            DbError::Blocked(_) => 3,
            DbError::Usage(_) => 2,
        }
    }
    pub fn kind(&self) -> &'static str {
        match self {
            DbError::Connect { .. } => "connect",
            DbError::Sql { .. } => "sql",
            DbError::NameGuard { .. } => "name-guard",
            DbError::State(_) => "state-check",
            DbError::Refused(_) => "refused",
            DbError::Blocked(_) => "blocked",
            DbError::Usage(_) => "usage",
        }
    }
    pub fn hint(&self) -> Option<String> {
        match self {
            DbError::Connect { .. } => Some(
                "check --db / AIRLOCK_DB / PGHOST and that the server runs (pg_ctlcluster 15 main start)".into(),
            ),
            DbError::NameGuard { expected, .. } => Some(format!(
                "connect to the database the bundle is for (--db \"dbname={expected}\"), or use the bundle made for this one"
            )),
            _ => None,
        }
    }
}
