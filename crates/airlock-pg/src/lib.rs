//! Everything that talks to PostgreSQL: connect, guard, gate, probe, fingerprint,
//! ledger, execute, rehearse, and the private throwaway cluster of `airlock demo`.
//! Bundles reach this crate only as [`airlock_bundle::verified::VerifiedBundle`].
//!
//! Rooms, from the ground up (a room imports only the rooms before it; the line below
//! is what `scripts/check-layers` enforces): `schema_change` and `refusal` (what a
//! refusal says, drift's object list among it), `session` (connecting and pinning),
//! `door` (the one way a question reaches the data), `catalog` (what the schema is),
//! `gates` (the bundle's read-only questions), `ledger` (what was done, the receipts,
//! and which tiers run next), `predict` (what the data says a release will do),
//! `deploy` (plan, apply, rollback), `rehearse` (the whole cycle on a clone). Each
//! room's `mod.rs` says what it owns and its invariant.
//!
//! Room order, lowest first: `schema_change` < `refusal` < `session` < `door` < `catalog` < `gates` < `ledger` < `predict` < `deploy` < `rehearse`.

pub mod catalog;
pub mod deploy;
pub(crate) mod door;
pub mod gates;
pub mod ledger;
pub mod predict;
pub mod refusal;
pub mod rehearse;
pub mod schema_change;
pub mod session;

// The modules under the names the binary (and the tests) have always used: the
// crate's public face. Inside the crate every path names its room.
pub use catalog::{data_values, described, fingerprint, invalid_index, stamps};
pub use deploy::{
    apply, bundle_role, checks, decide, delivery, exec, files, lock_plan, online, options,
    pipeline, plan, retry, setup, target, wait,
};
pub use gates::{gate, gate_grants, leftovers};
pub use ledger::{drift, policy, precheck, ratify, receipt, remembered};
pub use rehearse::{
    cluster, cluster_state, dump_clone, lock_impact, measure, predictions as rehearse_predict,
    proof, storage,
};
pub use session::{conn, db_search_path, inherited, notices, owner_code, sessions};

use airlock_base::exit::Exit;
use std::collections::BTreeMap;

/// The server's message (with detail and hint), not the driver's wrapper text.
pub fn pg_message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => {
            // A message is bounded (a RAISE can carry megabytes); the SQLSTATE stays.
            let b = |t: &str| {
                airlock_base::text::bound(t, airlock_base::text::MAX_LINE_BYTES).into_owned()
            };
            let mut s = format!("{} (SQLSTATE {})", b(d.message()), d.code().code());
            if let Some(detail) = d.detail() {
                s.push_str(&format!("; detail: {}", b(detail)));
            }
            if let Some(hint) = d.hint() {
                s.push_str(&format!("; hint: {}", b(hint)));
            }
            // The context, without airlock's own wrapper of a gate or probe (the
            // function `pg_temp.airlock_query`, which is no part of the user's SQL).
            let context: Vec<&str> = d
                .where_()
                .unwrap_or_default()
                .lines()
                .filter(|l| !l.starts_with("SQL function \"airlock_query\""))
                .collect();
            if !context.is_empty() {
                s.push_str(&format!("; where: {}", b(&context.join(" / "))));
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

/// Quote an SQL string literal ('it''s').
pub fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Quote an SQL identifier ("a""b").
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Parse `--param K=V` and check each against the manifest's declarations, then add
/// each declared default not given. Required params are checked by the caller (only
/// runs that include gated tiers need them).
pub fn parse_params(
    given: &[String],
    decl: &BTreeMap<String, airlock_bundle::spec::ParamSpec>,
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
    // A declared default is the value of a param not given (signed with the bundle:
    // lint checked it against the pattern).
    for (k, spec) in decl {
        if let Some(d) = &spec.default {
            out.entry(k.clone()).or_insert_with(|| d.clone());
        }
    }
    Ok(out)
}

pub fn require_params(
    given: &BTreeMap<String, String>,
    decl: &BTreeMap<String, airlock_bundle::spec::ParamSpec>,
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

/// What to do about a failed connection, by what the server (or the socket) said.
fn connect_hint(message: &str) -> String {
    if message.contains("SQLSTATE 3D000") {
        "the server runs, but has no database by that name: check the name (--db NAME, AIRLOCK_DB, PGDATABASE; `psql -l` lists them) or create it".into()
    } else if message.contains("SQLSTATE 28P01") || message.contains("SQLSTATE 28000") {
        "the server runs, but refused this role: check the user (--db \"user=…\", PGUSER), its password (PGPASSWORD, ~/.pgpass) and pg_hba.conf".into()
    } else if message.contains("SQLSTATE 53300") || message.contains("SQLSTATE 57P03") {
        "the server runs, but takes no connection now (too many clients, or starting up / shutting down): try again shortly".into()
    } else if message.contains("SQLSTATE") {
        "the server answered with the error above: fix what it names, or check --db / AIRLOCK_DB"
            .into()
    } else {
        "no server answered there: check --db / AIRLOCK_DB / PGHOST / PGPORT, and that the server runs (e.g. pg_ctlcluster 15 main start)".into()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot connect to PostgreSQL ({target}): {message}")]
    Connect { target: String, message: String },
    #[error("{context}: {message}")]
    Sql { context: String, message: String },
    /// A statement of a bundle file failed (its message says so); `at` is where.
    #[error("{context}: {message}")]
    Statement {
        context: String,
        message: String,
        at: Box<files::StatementAt>,
    },
    #[error("name guard: connected to database {actual:?}, but the bundle is for {}", expected.describe())]
    NameGuard {
        expected: airlock_bundle::target_db::TargetDatabase,
        actual: String,
    },
    /// A bundle for a fleet, and no database named anywhere (`--db`, `AIRLOCK_DB`,
    /// `PGDATABASE`): airlock does not choose one of the fleet.
    #[error("the bundle is for {}, and the connection names no database; airlock does not pick one of them, nothing was done", target.describe())]
    NoDatabaseNamed {
        target: airlock_bundle::target_db::TargetDatabase,
    },
    #[error("{0}")]
    State(String),
    /// The ledger does not allow this deploy (already applied, downgrade,
    /// equivocation, `--through` behind the applied tiers).
    #[error("{0}")]
    Refused(refusal::Refusal),
    /// The target is not where the bundle expects it (server version, preflight,
    /// drift, verify or rollback probe).
    #[error("{0}")]
    Mismatch(refusal::Mismatch),
    /// The operator did not confirm the database name.
    #[error("cancelled: the database name was not confirmed; nothing was changed")]
    Cancelled,
    /// The operator's Ctrl-C, seen between two statements.
    #[error("interrupted: cancelled by the operator (Ctrl-C); everything was rolled back")]
    Interrupted,
    /// `--through` names no tier of the bundle.
    #[error("--through {through:?}: no such tier (tiers: {})", tiers.join(", "))]
    NoSuchTier { through: String, tiers: Vec<String> },
    /// `rollback` of a bundle without a `[rollback]` section.
    #[error("this bundle has no [rollback] section; it cannot be rolled back by airlock")]
    NoRollback,
    #[error("gate BLOCKED: {0}")]
    Blocked(String),
    #[error("{0}")]
    Usage(String),
    /// A session setting inherited from the database or role that airlock cannot pin.
    #[error("{0}")]
    Session(String),
    /// `airlock.ledger` (or its schema, trigger, function) is not exactly what airlock
    /// creates, so it cannot be trusted to record or refuse anything.
    ///
    /// `login`: the one non-superuser role that owns the ledger, its schema and
    /// function, when that is all that is wrong (airlock setup made it so for its
    /// deploy login): a session of another role must not use it (its trigger would run
    /// in that session under the owner's control), but nothing was tampered with.
    #[error("{}", ledger_untrusted(problems, login.as_deref()))]
    LedgerUntrusted {
        problems: Vec<String>,
        login: Option<String>,
    },
    /// The ledger's hash chain is broken or a row is malformed.
    #[error("the airlock ledger is damaged at seq {seq}: {reason}")]
    LedgerBroken { seq: i64, reason: String },
    /// The ledger no longer holds the head this host saw last (a deleted tail, a
    /// replaced or restored ledger).
    #[error("the airlock ledger of {database:?} lost history this host saw: {what}")]
    LedgerRewound {
        database: String,
        what: String,
        memory: std::path::PathBuf,
    },
    /// `reissue` met another airlock session on the database: a run in progress
    /// delivers its own receipt.
    #[error("an airlock session is connected to this database, so a run may still be in progress and deliver its own receipt: {}", sessions.join("; "))]
    RunInProgress { sessions: Vec<String> },
    /// The deploy lock is held by another session.
    #[error("the deploy lock on this database is held by another session (waited {waited}): {}", if holders.is_empty() { "the holder has gone since".to_string() } else { holders.join("; ") })]
    LockBusy {
        waited: String,
        holders: Vec<String>,
    },
    /// `plan`: an airlock run is running online steps on this database now (it holds
    /// the online key between its transactions), so an apply would wait for it up to
    /// `--lock-timeout` and then refuse ([`DbError::LockBusy`]): nothing of the schema
    /// it is changing can be judged before that run has ended.
    #[error("the deploy lock on this database is held by an airlock run that is running online steps now: {}; apply refuses (exit 6): off a terminal after waiting up to --lock-timeout for that run to end, on a terminal (where it shows this plan first) at once", holders.join("; "))]
    OnlineRun { holders: Vec<String> },
    /// No role without outside powers to run gates and probes under.
    ///
    /// `setup`: the gate role to create and grant (the named one, or airlock_gate),
    /// when that is the way out.
    #[error("{message}")]
    GateRole {
        message: String,
        setup: Option<String>,
    },
    /// Bundle SQL cannot run as the role it is to run as: the role is missing, airlock's
    /// login role cannot become it, or code owned by a non-superuser sits where a
    /// superuser's bundle SQL would fire it (DESIGN §5 "Who runs what").
    #[error("{message}")]
    BundleRole { message: String, hint: String },
    /// airlock's login is a superuser and an enabled event trigger runs a function a
    /// non-superuser owns: it would fire on airlock's own DDL (the ledger, temporary
    /// functions) with the superuser's rights.
    #[error("airlock's login is a superuser, and event triggers run code a non-superuser owns, which would fire on airlock's own statements with a superuser's rights: {triggers}; nothing ran")]
    EventTriggers { triggers: String },
    /// `airlock setup` refused: the caller is no superuser, the role bundle SQL runs
    /// as is missing or a superuser, or the login has powers a deploy login must not.
    #[error("{message}")]
    Setup { message: String, hint: String },
    /// Something the deploy login would keep after the run ([`login_kept`]): a role
    /// changed inside the deploy transaction (a password set, a membership granted, a
    /// default for the login), or a fleet pattern matched a database the login owns or
    /// one `airlock setup` did not set up for it.
    /// Refused, rolled back.
    #[error("{message}")]
    LoginKept { message: String, hint: String },
    /// A row was written to `airlock.ledger` inside an airlock transaction that
    /// airlock did not append (code bundle SQL fired, back at the deploy login, forging
    /// a chained row): refused before COMMIT, rolled back ([`ledger::chain::ours_only`]).
    #[error("{message}")]
    LedgerForged { message: String },
    /// A superuser session would plan a table whose attached code (an index
    /// expression or predicate, a statistics expression, a partition key, a check) is
    /// not built in: planning const-folds it, running a role's function as the
    /// superuser ([`door::attached`]). Refused before anything of the table is planned.
    #[error("{message}")]
    AttachedCode { message: String, hint: String },
    /// Bundle SQL ended airlock's transaction (a COMMIT, ROLLBACK or PREPARE
    /// TRANSACTION lint did not see), caught by the guard after that message
    /// ([`exec::TxGuard`]): what became of the transaction, never "nothing changed".
    #[error("{context}, lines {}-{}: bundle SQL ended airlock's transaction (a COMMIT, ROLLBACK or PREPARE TRANSACTION that lint did not see), and airlock stopped there; {}", lines.0, lines.1, fate_text(fate))]
    TransactionEnded {
        context: String,
        lines: (u64, u64),
        fate: exec::Fate,
    },
    /// A message of bundle SQL reached the server while a setting that decides how it
    /// is decoded or lexed (`client_encoding`, `standard_conforming_strings`,
    /// `backslash_quote`) was not what lint lexed it with; airlock's check at the head
    /// of the message stopped it before anything of it ran, and the transaction was
    /// rolled back ([`exec::FileError::Lexing`]).
    #[error("{context}, lines {}-{}: the server would have read these lines otherwise than lint did (settings in force: {found}; lint reads client_encoding=UTF8 standard_conforming_strings=on backslash_quote=safe_encoding); nothing of them ran, and the transaction was rolled back", lines.0, lines.1)]
    LexingChanged {
        context: String,
        lines: (u64, u64),
        found: String,
    },
    /// A bundle statement could not have its lock within `--lock-timeout` (another
    /// session holds a conflicting one): its transaction rolled back; apply and
    /// rollback run it again (`--lock-retries`, [`retry::retrying`]), and, out of
    /// retries, refuse with this error (exit 6), `in_the_way` the sessions with a
    /// transaction open as the login saw them then (its message names them).
    #[error("{context}: {message}; the transaction was rolled back, nothing of it was changed")]
    LockTimeout {
        context: String,
        message: String,
        in_the_way: Option<Box<sessions::OpenTransactions>>,
    },
    /// The run stopped after part of it committed (an online step, or a tier of a
    /// per-tier apply): `error` is why it stopped; `receipt` records what committed
    /// (outcome `partial`), and `saved` where the caller wrote it.
    #[error("{}", partial_message(error, receipt, saved.as_deref()))]
    Partial {
        error: Box<DbError>,
        receipt: Box<receipt::Receipt>,
        saved: Option<String>,
    },
    /// A bundle whose data streams during `apply` failed verification part-way
    /// (DESIGN §6: the verification exit code); everything was rolled back.
    #[error("the bundle failed verification during the run, and nothing was committed (everything was rolled back): {0}")]
    Unverified(Box<airlock_bundle::archive::VerifyError>),
}

/// What [`DbError::Partial`] says: why the run stopped (its own transaction rolled
/// back, not "nothing was changed": part of the run committed), then what committed
/// before it and where that is recorded.
fn partial_message(error: &DbError, receipt: &receipt::Receipt, saved: Option<&str>) -> String {
    let why = error.to_string().replace(
        "the whole transaction was rolled back, nothing was changed",
        "its transaction was rolled back, nothing of it was changed",
    );
    let tiers = committed_tiers(&receipt.tiers);
    let steps = match receipt.online_steps.len() {
        0 => String::new(),
        n => format!(" ({n} online step(s))"),
    };
    let what = match (tiers.is_empty(), steps.is_empty()) {
        (true, true) => "what committed before it".to_string(),
        (true, false) => format!("before it, this run committed{steps}, which stay applied"),
        _ => format!("before it, this run committed tier(s) {tiers}{steps}, which stay applied"),
    };
    match saved {
        Some(f) => format!("{why}; {what}: recorded in the ledger and in receipt {f}"),
        None => format!("{why}; {what}: recorded in the ledger (airlock status)"),
    }
}

/// The tiers a run committed, as a message names them: every one when there are a
/// few, else the first and the last with how many (a list of hundreds would pass the
/// line's bound and lose its end, the last tier committed, which matters most).
fn committed_tiers(tiers: &[String]) -> String {
    const NAMED: usize = 6;
    match tiers {
        [first, .., last] if tiers.len() > NAMED => {
            format!("{first:?} … {last:?} ({} tiers)", tiers.len())
        }
        _ => tiers
            .iter()
            .map(|t| format!("{t:?}"))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// What [`DbError::TransactionEnded`] says of the transaction's fate.
fn fate_text(fate: &exec::Fate) -> String {
    match fate {
        exec::Fate::Committed => "the transaction was COMMITTED: everything this run did in it up to that point stays in the database (earlier tiers of the same transaction included), and the ledger records none of it".into(),
        exec::Fate::RolledBack => "the transaction was rolled back, so nothing this run did in it stays; statements from those lines that ran after it ended ran on their own and may have".into(),
        exec::Fate::Prepared => "the transaction is PREPARED (see pg_prepared_xacts): it keeps its locks and changes pending until someone runs COMMIT PREPARED or ROLLBACK PREPARED".into(),
        exec::Fate::Unknown(why) => format!("what became of the transaction is unknown ({why})"),
    }
}

/// [`DbError::LedgerUntrusted`]'s message.
fn ledger_untrusted(problems: &[String], login: Option<&str>) -> String {
    match login {
        Some(login) => format!(
            "the airlock ledger in this database belongs to the deploy login {login:?} (it owns the ledger, its schema and its trigger function, as airlock setup makes them), and this connection is another role's: only {login:?} writes it, and a superuser's session uses no ledger another role keeps (code {login:?} attached to it would run as the superuser); nothing in it is wrong"
        ),
        None => format!(
            "the airlock ledger in this database is not airlock's own, so it cannot be trusted: {}",
            problems.join("; ")
        ),
    }
}

impl DbError {
    /// A statement's lock wait ran out (SQLSTATE 55P03), before anyone asked who was
    /// in the way ([`retry::retrying`] does).
    pub(crate) fn lock_timeout(context: String, message: String) -> DbError {
        DbError::LockTimeout {
            context,
            message,
            in_the_way: None,
        }
    }

    pub fn exit_code(&self) -> Exit {
        match self {
            DbError::Connect { .. }
            | DbError::Sql { .. }
            | DbError::Statement { .. }
            | DbError::Interrupted
            | DbError::TransactionEnded { .. } => Exit::Runtime,
            DbError::NameGuard { .. } | DbError::State(_) | DbError::Mismatch(_) => Exit::State,
            DbError::Refused(_)
            | DbError::LockBusy { .. }
            | DbError::OnlineRun { .. }
            | DbError::LockTimeout { .. }
            | DbError::RunInProgress { .. } => Exit::Refused,
            DbError::Blocked(_) => Exit::Blocked,
            DbError::Usage(_)
            | DbError::NoDatabaseNamed { .. }
            | DbError::Cancelled
            | DbError::NoSuchTier { .. }
            | DbError::NoRollback => Exit::Usage,
            DbError::Session(_)
            | DbError::LedgerUntrusted { .. }
            | DbError::LedgerBroken { .. }
            | DbError::LedgerRewound { .. }
            | DbError::GateRole { .. }
            | DbError::BundleRole { .. }
            | DbError::Setup { .. }
            | DbError::LoginKept { .. }
            | DbError::LedgerForged { .. }
            | DbError::AttachedCode { .. }
            | DbError::EventTriggers { .. }
            | DbError::LexingChanged { .. } => Exit::State,
            DbError::Unverified(e) => e.exit_code(),
            DbError::Partial { error, .. } => error.exit_code(),
        }
    }
    /// Which ledger refusal this is, when it is one.
    pub fn refusal_kind(&self) -> Option<refusal::RefusalKind> {
        match self {
            DbError::Refused(r) => Some(r.kind()),
            DbError::Partial { error, .. } => error.refusal_kind(),
            _ => None,
        }
    }

    /// Where in a bundle file the failing statement is, when a statement failed.
    pub fn at(&self) -> Option<&files::StatementAt> {
        match self {
            DbError::Statement { at, .. } => Some(at),
            DbError::Partial { error, .. } => error.at(),
            _ => None,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            DbError::Connect { .. } => "connect",
            DbError::Sql { .. } | DbError::Statement { .. } | DbError::Interrupted => "sql",
            DbError::NameGuard { .. } => "name-guard",
            DbError::State(_) | DbError::Mismatch(_) => "state-check",
            DbError::Refused(_) => "refused",
            DbError::Blocked(_) => "blocked",
            DbError::Usage(_)
            | DbError::NoDatabaseNamed { .. }
            | DbError::Cancelled
            | DbError::NoSuchTier { .. }
            | DbError::NoRollback => "usage",
            DbError::Session(_) => "session",
            DbError::LedgerUntrusted { .. } => "ledger-untrusted",
            DbError::LedgerBroken { .. } => "ledger-broken",
            DbError::LedgerRewound { .. } => "ledger-rewound",
            DbError::LockBusy { .. } | DbError::OnlineRun { .. } | DbError::LockTimeout { .. } => {
                "lock-busy"
            }
            DbError::RunInProgress { .. } => "run-in-progress",
            DbError::GateRole { .. } => "gate-role",
            DbError::BundleRole { .. } => "bundle-role",
            DbError::Setup { .. } => "setup",
            DbError::LoginKept { .. } => "login-kept",
            DbError::LedgerForged { .. } => "ledger-forged",
            DbError::AttachedCode { .. } => "attached-code",
            DbError::EventTriggers { .. } => "event-trigger",
            DbError::Unverified(_) => "verification",
            DbError::TransactionEnded { .. } => "transaction-ended",
            DbError::LexingChanged { .. } => "lexing-changed",
            DbError::Partial { error, .. } => error.kind(),
        }
    }
    pub fn hint(&self) -> Option<String> {
        match self {
            DbError::Connect { message, .. } => Some(connect_hint(message)),
            DbError::NameGuard {
                expected: airlock_bundle::target_db::TargetDatabase::Name(expected),
                ..
            } => Some(format!(
                "connect to the database the bundle is for (--db \"dbname={expected} …\", keeping the connection's user= and host=; a name from AIRLOCK_DB, db in airlock.toml or PGDATABASE counts as given), or use the bundle made for this one"
            )),
            DbError::NameGuard { expected, .. } => Some(format!(
                "connect to one of {} (--db \"dbname=NAME\"), or use the bundle made for this one",
                expected.describe()
            )),
            DbError::Mismatch(refusal::Mismatch::ServerUnsupported { version, .. }) => {
                let (oldest, newest) = session::conn::SUPPORTED_MAJORS;
                Some(format!(
                    "the server runs PostgreSQL {version}; airlock supports PostgreSQL {oldest} to {newest}, each tested against its own server (docs/operator.md, \"Supported PostgreSQL majors\"): upgrade the server (pg_upgrade, or dump and restore) or use the airlock release that supports it. Nothing was read or written"
                ))
            }
            DbError::NoDatabaseNamed { target } => Some(format!(
                "name the database in the connection: --db \"dbname=NAME\" (or AIRLOCK_DB, PGDATABASE), NAME one of {}",
                target.describe()
            )),
            // A rollback statement that failed: nothing of the rollback committed.
            DbError::Statement { context, .. } if context.starts_with("rollback file") => Some(
                "`airlock plan BUNDLE --rollback` names the rows that stop it; the signed rollback cannot be edited: change the data it trips on, or ship a follow-up release whose rollback handles them".into(),
            ),
            DbError::Session(_) => Some(
                "remove the setting (ALTER DATABASE … RESET session_replication_role / ALTER ROLE … RESET …), or connect as a superuser".into(),
            ),
            DbError::LedgerUntrusted {
                login: Some(login), ..
            } => Some(format!(
                "connect as {login:?} (--db \"… user={login}\", or AIRLOCK_DB / db in airlock.toml), as plan, apply and status do on a database airlock setup set up; to read it (audit, status, dossier --db), connect as {login:?} or as a login that may only read it (airlock setup --login {login} --auditor NAME makes one). A superuser's connection uses only a ledger a superuser owns"
            )),
            DbError::LedgerUntrusted { .. } => Some(format!(
                "inspect it as a superuser: psql -c '\\dn+ airlock' -c '\\d+ airlock.ledger' -c '\\df+ airlock.*'; the ledger, its schema, trigger and function must be owned by a superuser or by the role airlock connects as, with no other triggers, rules, policies, defaults, indexes or write grants. {}",
                "Remove what does not belong (or restore the ledger from a backup) before deploying"
            )),
            DbError::LedgerBroken { .. } => Some(
                "someone edited the ledger outside airlock; compare it with the receipts (airlock audit) and a backup before deploying".into(),
            ),
            DbError::LedgerRewound { memory, .. } => Some(format!(
                "find out who removed ledger rows (compare with receipts and backups). If the database was deliberately restored or rebuilt, make this host forget what it saw: airlock status --forget-head (memory file: {})",
                memory.display()
            )),
            DbError::LockTimeout { in_the_way, .. } => {
                Some(sessions::lock_timeout_hint(in_the_way.as_deref()))
            }
            DbError::RunInProgress { .. } => Some(
                "nothing was written: reissue writes the receipt of a run that ended without one; run it again once that session has ended (or end it: SELECT pg_terminate_backend(PID), if it is a run that hangs)".into(),
            ),
            DbError::LockBusy { .. } => Some(
                "wait for that session to finish, or end it (SELECT pg_terminate_backend(PID)) if it should not hold the lock; --lock-timeout waits longer".into(),
            ),
            DbError::OnlineRun { .. } => Some(
                "its step goes on in that server session even when its airlock was stopped (a killed apply's CREATE INDEX CONCURRENTLY too): wait for the session to end, then plan again, which judges what the run left (a build the server finished is recorded as done; an unfinished one is built again by apply --resume). End it (SELECT pg_terminate_backend(PID)) only if it should not run. What it builds is the release's own step, not drift".into(),
            ),
            DbError::GateRole {
                setup: Some(role), ..
            } => Some(format!(
                "create the gate role once, as a superuser: CREATE ROLE {r} NOLOGIN; then give it exactly the grants the bundle's gates and probes need, which `airlock plan BUNDLE` lists (USAGE on their schemas, SELECT on what they read; never pg_read_all_data, which includes every password hash), and GRANT {r} TO the role airlock connects as if that is not a superuser (airlock setup --gate-role {role} does both but the grants). Or name another such role with --gate-role ROLE (or AIRLOCK_GATE_ROLE, or gate_role in airlock.toml)",
                r = quote_ident(role)
            )),
            DbError::BundleRole { hint, .. }
            | DbError::Setup { hint, .. }
            | DbError::LoginKept { hint, .. }
            | DbError::AttachedCode { hint, .. } => Some(hint.clone()),
            DbError::LedgerForged { .. } => Some(
                "find the code that fires in the tables the tiers touch (triggers, defaults, rules: `airlock plan` names the owner's code on them) and remove it; only airlock writes airlock.ledger, one row per transaction".into(),
            ),
            DbError::EventTriggers { .. } => Some(
                "log in as a deploy login that is no superuser (airlock setup, once, after a superuser reviewed these event triggers), or have a superuser drop them or take their functions over (ALTER FUNCTION … OWNER TO postgres)".into(),
            ),
            DbError::Unverified(e) => e.hint(),
            DbError::Partial { error, .. } => error.hint(),
            DbError::LexingChanged { .. } => Some(
                "code that ran before these lines (in the database, or fired by bundle SQL) changed a setting airlock puts back after every message; find it (SELECT the functions that call set_config) and remove it before deploying".into(),
            ),
            DbError::TransactionEnded { .. } => Some(
                "compare the target with what it was before this run (airlock fingerprint; the last receipt), undo by hand what stays, and keep this bundle from running again: lint should have refused what ended the transaction (report it)".into(),
            ),
            _ => None,
        }
    }
}
