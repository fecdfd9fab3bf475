//! Everything that talks to PostgreSQL: connect, guard, gate, probe, fingerprint,
//! ledger, execute, rehearse.

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
