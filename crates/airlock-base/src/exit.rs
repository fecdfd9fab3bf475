//! The exit codes of every command (DESIGN.md §6, plus 7 for an UNVERIFIED audit and 8
//! for a plan that CANNOT TELL, which §6 does not have): part of the interface, so they are named once here and every error, report and JSON document uses these names.
//!
//! Invariant: a number leaves airlock only through [`Exit::code`]; in JSON an `Exit`
//! is that number, so the committed schemas say `exit_code` is an integer.

use schemars::gen::SchemaGenerator;
use schemars::schema::Schema;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Exit {
    /// Success; gate READY.
    Success,
    /// Runtime error: I/O, connection, an SQL error (rolled back).
    Runtime,
    /// Usage error: arguments, the source, a trust store, a passphrase.
    Usage,
    /// Gate BLOCKED (also: a wait that ended before READY).
    Blocked,
    /// Bundle verification failed: signature, hash, structure, expiry, trust.
    Verification,
    /// A database state check failed: name guard, preflight, verify probe, ledger.
    State,
    /// Refused by the ledger (already applied, downgrade) or the deploy lock.
    Refused,
    /// An audit found nothing that failed, but something it cannot vouch for.
    Unverified,
    /// A plan CANNOT TELL: code a database role attached stops airlock from predicting
    /// a statement (rehearse it, or remove the code).
    CannotTell,
}

impl Exit {
    pub const fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::Runtime => 1,
            Exit::Usage => 2,
            Exit::Blocked => 3,
            Exit::Verification => 4,
            Exit::State => 5,
            Exit::Refused => 6,
            Exit::Unverified => 7,
            Exit::CannotTell => 8,
        }
    }

    pub fn is_success(self) -> bool {
        self == Exit::Success
    }

    /// Every exit, in code order.
    pub const ALL: [Exit; 9] = [
        Exit::Success,
        Exit::Runtime,
        Exit::Usage,
        Exit::Blocked,
        Exit::Verification,
        Exit::State,
        Exit::Refused,
        Exit::Unverified,
        Exit::CannotTell,
    ];

    /// The exit for a code read back from a report (`None` for a number no airlock
    /// exits with).
    pub fn from_code(code: u8) -> Option<Exit> {
        Exit::ALL.into_iter().find(|e| e.code() == code)
    }

    /// What the code means, as DESIGN §6 and the manual pages say it.
    pub fn meaning(self) -> &'static str {
        match self {
            Exit::Success => "success; the gate is READY; a plan says GO",
            Exit::Runtime => "runtime error: I/O, the connection, an SQL error (rolled back: nothing changed; online steps already recorded stay, and the next apply continues)",
            Exit::Usage => "usage error: arguments, the source directory, a trust store, a passphrase, a param",
            Exit::Blocked => "a gate is BLOCKED (also a --wait that ended before READY)",
            Exit::Verification => "bundle verification failed: signature, hash, structure, expiry, trust, a SQL rule of this airlock",
            Exit::State => "a database state check failed: name guard, preflight, drift, verify probe, ledger (rolled back)",
            Exit::Refused => "refused by the ledger (already applied, downgrade, equivocation), or a lock could not be had: the deploy lock, online steps running, or a bundle statement's lock after --lock-retries",
            Exit::Unverified => "audit UNVERIFIED: nothing failed, but something rests on nothing an auditor can rely on (its last lines say what would make it VERIFIED)",
            Exit::CannotTell => "a plan CANNOT TELL: code a database role attached (an index expression, a function a CHECK calls…) stops airlock from predicting a statement; rehearse the bundle, or remove the code, and plan again",
        }
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e.code())
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.code())
    }
}

impl Serialize for Exit {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(self.code())
    }
}

/// A saved report's exit code read back (`dossier --rehearsal`): a number airlock exits
/// with, nothing else.
impl<'de> Deserialize<'de> for Exit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = u8::deserialize(d)?;
        Exit::from_code(n)
            .ok_or_else(|| serde::de::Error::custom(format!("{n} is not an exit code of airlock")))
    }
}

impl JsonSchema for Exit {
    fn is_referenceable() -> bool {
        false
    }
    fn schema_name() -> String {
        u8::schema_name()
    }
    fn json_schema(gen: &mut SchemaGenerator) -> Schema {
        u8::json_schema(gen)
    }
}

#[cfg(test)]
mod tests {
    use super::Exit;

    #[test]
    fn codes_are_design_section_6_with_7_and_8() {
        let all = [
            (Exit::Success, 0),
            (Exit::Runtime, 1),
            (Exit::Usage, 2),
            (Exit::Blocked, 3),
            (Exit::Verification, 4),
            (Exit::State, 5),
            (Exit::Refused, 6),
            (Exit::Unverified, 7),
            (Exit::CannotTell, 8),
        ];
        for (e, n) in all {
            assert_eq!(e.code(), n);
            assert_eq!(Exit::from_code(n), Some(e));
            assert_eq!(serde_json::to_string(&e).unwrap(), n.to_string());
            assert_eq!(serde_json::from_str::<Exit>(&n.to_string()).unwrap(), e);
        }
        assert_eq!(Exit::from_code(9), None);
        assert!(serde_json::from_str::<Exit>("9").is_err());
    }
}
