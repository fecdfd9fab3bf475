//! The hermetic session: what airlock pins in every session it opens, and the prelude
//! that re-asserts the bundle's settings before every bundle file.
//!
//! The target database is hostile territory: any role other than airlock's own may
//! own the database, create objects in `public`, or set `ALTER DATABASE/ROLE … SET`
//! defaults. None of that may change what airlock's own statements mean, nor what a
//! bundle file means. So:
//! - airlock's own statements run with `search_path = pg_catalog, pg_temp` and fixed
//!   meaning/rendering settings ([`AIRLOCK_PINS`]), passed in the startup packet, which
//!   outranks every database and role default; [`REPIN`] restores them (one message)
//!   after bundle SQL ran, because a file can change them;
//! - every bundle file (tier, rollback, gate, probe) runs behind [`BundlePins::prelude`]:
//!   the bundle's declared `search_path`, `standard_conforming_strings = on`,
//!   `session_replication_role = origin` and the operator's timeouts, as `SET LOCAL`
//!   in the same message as the file (no extra round trip), so one file cannot lift
//!   them for the next.
//!
//! Invariant: no statement airlock composes itself runs under a search_path or setting
//! that a database role other than airlock's chose.

use crate::{pg_message, DbError};
use postgres::Client;

/// Settings pinned for airlock's own statements: (name, value). Rendering settings
/// (DateStyle, TimeZone, extra_float_digits…) make fingerprints and probe values
/// identical whatever the database's defaults; the rest fix what SQL text means.
pub const AIRLOCK_PINS: [(&str, &str); 14] = [
    ("search_path", "pg_catalog, pg_temp"),
    ("standard_conforming_strings", "on"),
    ("backslash_quote", "safe_encoding"),
    ("transform_null_equals", "off"),
    ("array_nulls", "on"),
    ("check_function_bodies", "on"),
    ("row_security", "on"),
    ("DateStyle", "ISO, MDY"),
    ("IntervalStyle", "postgres"),
    ("TimeZone", "UTC"),
    ("extra_float_digits", "1"),
    ("bytea_output", "hex"),
    ("xmloption", "content"),
    ("default_transaction_read_only", "off"),
];

/// The settings that decide how the server decodes and lexes a message, with the
/// values airlock's lint lexer assumes: `client_encoding` (how the bytes become text:
/// in SJIS the byte after a lead byte, even `\\`, is part of a character),
/// `standard_conforming_strings` (whether `\\` escapes in `'…'`) and `backslash_quote`
/// (whether `\\'` in `E'…'` is refused). PostgreSQL's scanner (`scan.l`) reads no
/// other setting but `escape_string_warning`, which only warns.
pub const LEXING_PINS: [(&str, &str); 3] = [
    ("client_encoding", "UTF8"),
    ("standard_conforming_strings", "on"),
    ("backslash_quote", "safe_encoding"),
];

/// The text with which [`lexing_check`] fails when a setting of [`LEXING_PINS`] is not
/// in force.
pub const LEXING_MARK: &str = "airlock-lexing";

/// Session-level `SET`s of [`LEXING_PINS`]. Session level, not `SET LOCAL`: a `SET
/// LOCAL` ends with its transaction and gives way to the session's value, which bundle
/// SQL may have changed (`set_config(…, false)` in a `DO` block or a trigger lint
/// cannot read); inside a transaction that rolls back, the value goes back to the one
/// before it, which airlock set.
pub fn lexing_set() -> String {
    LEXING_PINS
        .iter()
        .map(|(k, v)| format!("SET {k} TO {}; ", quote_literal(v)))
        .collect()
}

/// A statement that fails (with [`LEXING_MARK`] and the values in force) unless every
/// setting of [`LEXING_PINS`] holds airlock's value. First in a message, it proves the
/// settings the server decoded and lexed that whole message with (the server reads a
/// whole message before it runs any of it, and nothing runs between); its failure
/// stops the message before anything of it runs. Plain ASCII without a backslash, so
/// it reads the same under any client encoding and either string setting.
pub fn lexing_check() -> String {
    // Short (every operator still schema-qualified): pg_stat_activity shows a message
    // only up to track_activity_query_size (1 kB by default), and the bundle's SQL
    // follows it.
    let found = LEXING_PINS
        .iter()
        .map(|(k, _)| format!("'{k}='OPERATOR(pg_catalog.||)pg_catalog.current_setting('{k}')"))
        .collect::<Vec<_>>()
        .join(",");
    let wanted = LEXING_PINS
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ");
    format!(
        "SELECT CASE WHEN s OPERATOR(pg_catalog.=) '{wanted}' THEN 0 ELSE ('{LEXING_MARK} 'OPERATOR(pg_catalog.||)s)::pg_catalog.int4 END FROM pg_catalog.concat_ws(' ',{found}) s;\n"
    )
}

/// The values [`lexing_check`] found, from the server's error, when it failed.
pub fn lexing_refused(error: &postgres::Error) -> Option<String> {
    let message = error.as_db_error()?.message();
    let at = message.find(LEXING_MARK)? + LEXING_MARK.len();
    Some(
        message[at..]
            .trim()
            .trim_end_matches('"')
            .trim()
            .to_string(),
    )
}

/// Set in the startup packet only: `role` (a database or role default `role = x`
/// would run the whole session, airlock's own statements included, as `x`). Not in
/// [`AIRLOCK_PINS`], which the prelude re-asserts for bundle SQL: bundle SQL may run
/// under `SET LOCAL ROLE`.
const STARTUP_ONLY: [(&str, &str); 1] = [("role", "none")];

/// The `options` startup parameter carrying [`AIRLOCK_PINS`] (libpq syntax: spaces
/// inside a value escaped with a backslash).
pub fn startup_options() -> String {
    AIRLOCK_PINS
        .iter()
        .chain(STARTUP_ONLY.iter())
        .map(|(k, v)| format!("-c {k}={}", v.replace('\\', "\\\\").replace(' ', "\\ ")))
        .collect::<Vec<_>>()
        .join(" ")
}

pub use crate::quote_literal;

/// How long a bundle prelude's settings last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// `SET LOCAL`: until the transaction ends (every transactional file).
    Transaction,
    /// `SET`: for the session (online steps, which run outside any transaction and
    /// get the prelude again before each).
    Session,
}

impl Scope {
    /// `SET LOCAL ` or `SET `.
    pub fn set(self) -> &'static str {
        match self {
            Scope::Transaction => "SET LOCAL ",
            Scope::Session => "SET ",
        }
    }
}

fn set_in(scope: Scope, out: &mut String, name: &str, value: &str) {
    out.push_str(scope.set());
    out.push_str(name);
    out.push_str(" TO ");
    out.push_str(&quote_literal(value));
    out.push_str("; ");
}

/// One message that puts airlock's own settings back after bundle SQL ran in the
/// transaction (and drops any role a file switched to). Session-level `SET`, not
/// `SET LOCAL`: committed with the transaction, so with `transaction = "per-tier"` a
/// tier's own session-level `SET` cannot reach airlock's statements in the next one.
pub fn repin_sql(statement_timeout: &str) -> String {
    // search_path is a list: a quoted literal would be one schema named "pg_catalog, pg_temp".
    let mut s = String::from(
        "SET SESSION AUTHORIZATION DEFAULT; SET ROLE NONE; SET search_path TO pg_catalog, pg_temp; ",
    );
    for (k, v) in AIRLOCK_PINS {
        if k != "search_path" {
            s.push_str(&format!("SET {k} TO {}; ", quote_literal(v)));
        }
    }
    s.push_str(&format!(
        "SET statement_timeout TO {}; ",
        quote_literal(statement_timeout)
    ));
    // Bundle SQL may have changed the encoding at session level: airlock's own
    // statements (params, names) and results are UTF-8.
    s.push_str(&lexing_set());
    s
}

/// Run [`repin_sql`] inside the caller's transaction, after the constraint triggers
/// bundle SQL deferred have run (`SET CONSTRAINTS ALL IMMEDIATE`, in the same message):
/// left for COMMIT, they would run after it as airlock's own role, after the
/// rehearsal's last look at the cluster, and free to change a setting that decides
/// lexing with nothing after them to put it back.
pub fn repin(tx: &mut postgres::Transaction<'_>, statement_timeout: &str) -> Result<(), DbError> {
    tx.batch_execute(&format!(
        "SET CONSTRAINTS ALL IMMEDIATE; {}",
        repin_sql(statement_timeout)
    ))
    .map_err(|e| {
        crate::sql_err(
            "the bundle's deferred constraints, then airlock's session settings",
            &e,
        )
    })
}

/// Render a search_path list from bundle.toml: `$user` keeps its special meaning,
/// every other entry is a quoted identifier.
pub fn render_search_path(path: &[String]) -> String {
    path.iter()
        .map(|p| crate::quote_ident(p))
        .collect::<Vec<_>>()
        .join(", ")
}

pub use airlock_bundle::spec::default_search_path;

/// What every bundle file runs under, re-asserted before each one.
#[derive(Clone, Debug)]
pub struct BundlePins {
    pub search_path: Vec<String>,
    pub statement_timeout: String,
    pub lock_timeout: String,
    /// Only a superuser may set `session_replication_role`; for anyone else it was
    /// checked to be `origin` when the session opened, and no file can change it.
    pub superuser: bool,
}

impl BundlePins {
    /// `SET LOCAL …;` statements to send in the same message as a bundle file.
    pub fn prelude(&self) -> String {
        self.prelude_in(Scope::Transaction)
    }

    /// The prelude's statements, lasting for `scope`.
    pub fn prelude_in(&self, scope: Scope) -> String {
        let mut s = self.settings_in(scope);
        // With the pins above, every setting of [`LEXING_PINS`]. An online step is a
        // message of its own, right after this one at session level, and a gate's
        // query follows its prelude's message in the transaction: what lexes either is
        // set here and proven.
        s.push_str(&lexing_check());
        s
    }

    /// [`Self::prelude`] for a bundle file's own message (deploy's `exec`): without
    /// the closing check, which would prove only what lexes the transaction's next
    /// message (already lexed, this message runs after its own opening check), and
    /// every message of a file begins with that check.
    pub fn file_prelude(&self) -> String {
        self.settings_in(Scope::Transaction)
    }

    /// The prelude's `SET`s, lasting for `scope`.
    fn settings_in(&self, scope: Scope) -> String {
        let mut s = String::with_capacity(512);
        s.push_str(scope.set());
        s.push_str("search_path TO ");
        s.push_str(&render_search_path(&self.search_path));
        s.push_str("; ");
        for (k, v) in AIRLOCK_PINS {
            if k != "search_path" && k != "default_transaction_read_only" {
                set_in(scope, &mut s, k, v);
            }
        }
        if self.superuser {
            set_in(scope, &mut s, "session_replication_role", "origin");
        }
        set_in(scope, &mut s, "statement_timeout", &self.statement_timeout);
        set_in(scope, &mut s, "lock_timeout", &self.lock_timeout);
        set_in(scope, &mut s, "client_encoding", "UTF8");
        s
    }
}

/// A PostgreSQL duration as `statement_timeout` takes it: a number with an optional
/// unit. Checked here so a bad flag is a usage error before anything connects.
/// A duration as PostgreSQL reads a timeout setting (no unit: milliseconds); `None`
/// for 0 (no limit) or what does not parse ([`check_duration`] refuses that first).
pub(crate) fn duration_of(value: &str) -> Option<std::time::Duration> {
    let v = value.trim();
    let digits = v.trim_end_matches(|c: char| c.is_ascii_alphabetic()).trim();
    let n: f64 = digits.parse().ok()?;
    let ms = n * match v[digits.len()..].trim() {
        "us" => 0.001,
        "" | "ms" => 1.0,
        "s" => 1e3,
        "min" => 6e4,
        "h" => 3.6e6,
        "d" => 8.64e7,
        _ => return None,
    };
    (ms > 0.0).then(|| std::time::Duration::from_secs_f64(ms / 1e3))
}

pub fn check_duration(flag: &str, value: &str) -> Result<(), DbError> {
    let v = value.trim();
    let digits = v.trim_end_matches(|c: char| c.is_ascii_alphabetic()).trim();
    let unit = v[digits.len()..].trim();
    let number_ok = !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
        && digits.chars().filter(|&c| c == '.').count() <= 1;
    let unit_ok = matches!(unit, "" | "us" | "ms" | "s" | "min" | "h" | "d");
    if number_ok && unit_ok {
        Ok(())
    } else {
        Err(DbError::Usage(format!(
            "{flag} {value:?} is not a duration (examples: 30s, 5min, 500ms, 0 for none)"
        )))
    }
}

/// Facts about the session, read in one round trip right after connecting.
#[derive(Clone, Debug)]
pub struct SessionFacts {
    pub database: String,
    pub server_version_num: i64,
    pub session_user: String,
    pub superuser: bool,
    pub system_identifier: String,
    pub session_replication_role: String,
    /// The database and role settings this session does not inherit (see
    /// [`crate::session::inherited`]), ", "-joined; empty when there were none.
    pub overridden: String,
}

/// Facts about the server we are talking to.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct ServerInfo {
    pub database: String,
    pub server_version_num: i64,
    pub session_user: String,
}

impl SessionFacts {
    pub fn info(&self) -> ServerInfo {
        ServerInfo {
            database: self.database.clone(),
            server_version_num: self.server_version_num,
            session_user: self.session_user.clone(),
        }
    }
}

/// Read [`SessionFacts`], set the session's `statement_timeout` and override every
/// database and role default ([`crate::session::inherited`]), in one message (simple protocol:
/// the facts query and the override block travel together, one round trip).
/// `session_replication_role` other than `origin` (a database or role default that
/// silently disables triggers and foreign keys) is reset when airlock may, refused
/// otherwise.
pub fn open_facts(client: &mut Client, statement_timeout: &str) -> Result<SessionFacts, DbError> {
    check_duration("--statement-timeout", statement_timeout)?;
    let sql = format!(
        "SELECT pg_catalog.current_database()::pg_catalog.text, \
                pg_catalog.current_setting('server_version_num'), \
                SESSION_USER::pg_catalog.text, \
                coalesce((SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) SESSION_USER), false)::pg_catalog.text, \
                (SELECT s.system_identifier::pg_catalog.text FROM pg_catalog.pg_control_system() s), \
                pg_catalog.current_setting('session_replication_role'), \
                pg_catalog.set_config('statement_timeout', {}, false), \
                {}, {}; {}",
        quote_literal(statement_timeout),
        crate::session::inherited::OVERRIDDEN_NAMES,
        crate::session::owner_code::EVENT_TRIGGER_CODE,
        crate::session::inherited::OVERRIDE
    );
    let messages = client.simple_query(&sql).map_err(|e| {
        if crate::sqlstate(&e) == Some("22023") {
            DbError::Usage(format!(
                "--statement-timeout {statement_timeout:?}: {}",
                pg_message(&e)
            ))
        } else {
            crate::sql_err("reading the session (name guard)", &e)
        }
    })?;
    let row = messages
        .iter()
        .find_map(|m| match m {
            postgres::SimpleQueryMessage::Row(r) => Some(r),
            _ => None,
        })
        .ok_or_else(|| DbError::State("the session's facts query returned no row".into()))?;
    let text = |i: usize| row.get(i).unwrap_or_default().to_string();
    let facts = SessionFacts {
        database: text(0),
        server_version_num: text(1).parse().map_err(|_| {
            DbError::State(format!("server_version_num {:?} is not a number", text(1)))
        })?,
        session_user: text(2),
        superuser: text(3) == "true",
        system_identifier: text(4),
        session_replication_role: text(5),
        overridden: text(7),
    };
    // Event triggers fire on airlock's own DDL too: in a superuser's session, one that
    // runs a non-superuser's function is that owner's way to the superuser.
    if let (true, Some(triggers)) = (facts.superuser, row.get(8)) {
        return Err(DbError::EventTriggers {
            triggers: triggers.to_string(),
        });
    }
    // A superuser's session had it reset by the override block, in the same message.
    if facts.session_replication_role != "origin" && !facts.superuser {
        return Err(DbError::Session(format!(
            "session_replication_role is {:?} in this session (a database or role default): triggers and foreign keys would not fire, and airlock, connected as non-superuser {:?}, cannot reset it",
            facts.session_replication_role, facts.session_user
        )));
    }
    Ok(SessionFacts {
        session_replication_role: "origin".into(),
        ..facts
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn startup_options_escape_spaces() {
        let o = startup_options();
        assert!(o.contains("-c search_path=pg_catalog,\\ pg_temp"), "{o}");
        assert!(o.contains("-c DateStyle=ISO,\\ MDY"), "{o}");
    }

    #[test]
    fn prelude_pins_the_bundle_search_path_and_timeouts() {
        let p = BundlePins {
            search_path: default_search_path(),
            statement_timeout: "5min".into(),
            lock_timeout: "10s".into(),
            superuser: true,
        };
        let s = p.prelude();
        assert!(
            s.starts_with("SET LOCAL search_path TO \"public\"; "),
            "{s}"
        );
        assert!(s.contains("SET LOCAL statement_timeout TO '5min'; "));
        assert!(s.contains("SET LOCAL session_replication_role TO 'origin'; "));
        let p = BundlePins {
            superuser: false,
            ..p
        };
        assert!(!p.prelude().contains("session_replication_role"));
        // A file's prelude is the same settings; its message opens with the check.
        assert_eq!(
            p.prelude(),
            format!("{}{}", p.file_prelude(), lexing_check())
        );
        assert!(!p.file_prelude().contains(LEXING_MARK));
    }

    #[test]
    fn the_lexing_check_reads_the_same_under_any_encoding_and_string_setting() {
        // Plain ASCII (every client encoding reads it alike), no backslash (either
        // standard_conforming_strings reads its strings alike), first in a message.
        let check = lexing_check();
        assert!(check.is_ascii() && !check.contains('\\'), "{check}");
        for (name, value) in LEXING_PINS {
            assert!(
                check.contains(&format!("pg_catalog.current_setting('{name}')"))
                    && check.contains(&format!("{name}={value}")),
                "{check}"
            );
        }
        // Every operator schema-qualified: a session search_path bundle SQL left cannot
        // lend it another `=` or `||`.
        assert!(!check.contains(" = ") && !check.contains(")||"), "{check}");
        assert!(lexing_set().contains("SET client_encoding TO 'UTF8'; "));
        assert!(
            !lexing_set().contains("LOCAL"),
            "session level: a SET LOCAL gives way at COMMIT"
        );
    }

    #[test]
    fn durations() {
        for ok in ["0", "30s", "5min", "1.5h", "500 ms", "10"] {
            check_duration("--x", ok).unwrap();
        }
        for bad in ["", "s", "5 weeks", "1;DROP", "1.2.3s", "'5s'"] {
            assert!(check_duration("--x", bad).is_err(), "{bad}");
        }
    }
}
