//! Why a deploy stops before it changes anything, as evidence rather than a string
//! (STYLE move 1): which refusal happened is a variant, what it is about are fields,
//! and the advice is its own [`Refusal::hint`] / [`Mismatch::hint`].
//!
//! Invariant: the text a user sees is byte-identical to what these refusals said as
//! strings (`Display` is the evidence, then the advice, in the old words; drift since
//! also names the objects that changed), and so are their `kind` and exit code: `Refusal` is `refused` (exit 6), `Mismatch` is
//! `state-check` (exit 5). The advice stays inside the message because the output is
//! pinned; `hint()` names it apart for callers that want it alone.

use airlock_base::text::short;
use std::fmt;

/// The PostgreSQL majors airlock supports, oldest and newest: each is tested against a
/// server of its own (scripts/pg-majors, tests/pg_majors.rs, .ci/run), and airlock's
/// catalog questions are written for exactly these.
pub const SUPPORTED_MAJORS: (i64, i64) = (14, 18);

/// What the ledger does not allow (exit 6, kind `refused`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Two different signed bundles claim the same name and sequence.
    Equivocation {
        bundle: String,
        sequence: u64,
        /// The ledger row holding the other bundle.
        ledger_seq: i64,
        /// The other bundle's id, and this one's.
        theirs: String,
        ours: String,
    },
    /// A later sequence of the same bundle is applied.
    Downgrade {
        bundle: String,
        applied_sequence: i64,
        applied_id: String,
        ledger_seq: i64,
        sequence: u64,
    },
    /// Every tier of this bundle is applied already.
    AlreadyApplied {
        bundle: String,
        version: String,
        id: String,
        /// The last apply's ledger seq and time, when the ledger has it.
        last: Option<(i64, String)>,
    },
    /// `--through` names a tier that is already applied.
    ThroughApplied { through: String, next: String },
    /// `plan --rollback` on a database where no tier of the release is applied.
    NothingToRollBack {
        bundle: String,
        version: String,
        database: String,
    },
    /// The release this one follows (`[follows]`) is not applied here, or not whole.
    NotFollowed(Box<NotFollowed>),
}

/// What [`Refusal::NotFollowed`] is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotFollowed {
    pub bundle: String,
    pub version: String,
    pub follows: String,
    pub follows_version: String,
    pub follows_id: String,
    /// Its tiers not applied here (empty: none of them is, it never was or was rolled
    /// back).
    pub missing: Vec<String>,
}

/// Which refusal it was, as `--json` names it (`refusal_kind` of an error document
/// and of `plan`): scripts (the Ansible modules) tell "nothing left to do" from a
/// refusal that needs a person by this, never by the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RefusalKind {
    /// Two different signed bundles claim the same name and sequence.
    Equivocation,
    /// A later sequence of the same bundle is applied.
    Downgrade,
    /// Every tier of this bundle is applied already: nothing to do.
    AlreadyApplied,
    /// `--through` names a tier that is applied already: nothing to do up to it.
    ThroughApplied,
    /// The release this one follows is not applied here.
    NotFollowed,
    /// The release never reached this database: nothing to roll back.
    NothingToRollBack,
}

impl Refusal {
    /// Which refusal this is.
    pub fn kind(&self) -> RefusalKind {
        match self {
            Refusal::Equivocation { .. } => RefusalKind::Equivocation,
            Refusal::Downgrade { .. } => RefusalKind::Downgrade,
            Refusal::AlreadyApplied { .. } => RefusalKind::AlreadyApplied,
            Refusal::ThroughApplied { .. } => RefusalKind::ThroughApplied,
            Refusal::NotFollowed(_) => RefusalKind::NotFollowed,
            Refusal::NothingToRollBack { .. } => RefusalKind::NothingToRollBack,
        }
    }

    /// What to do about it.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            Refusal::Equivocation { .. } => Some("Find out which one is genuine before going on. If the release manager changed the source after the first was applied (the honest case), the change is a new release: roll the applied one back or leave it, bump [bundle] sequence in bundle.toml, and pack again"),
            Refusal::Downgrade { .. } => {
                Some("Roll that one back first if you really mean to go back")
            }
            Refusal::AlreadyApplied { .. } => {
                Some("To run it again, roll it back first (airlock rollback)")
            }
            Refusal::ThroughApplied { .. } => None,
            Refusal::NothingToRollBack { .. } => Some("Connect to a database the release was applied to (airlock status lists what the ledger holds)"),
            Refusal::NotFollowed(_) => Some("Apply the release it follows here first (a release train runs in order), then this one; nothing was done"),
        }
    }

    /// What happened, without the advice ([`Refusal::hint`]).
    pub fn evidence(&self) -> String {
        match self {
            Refusal::Equivocation {
                bundle,
                sequence,
                ledger_seq,
                theirs,
                ours,
            } => format!(
                "equivocation: the ledger (seq {ledger_seq}) holds {bundle} sequence {sequence} with bundle id {}, but this bundle is {}; two different signed bundles claim the same release",
                short(theirs),
                short(ours)
            ),
            Refusal::Downgrade {
                bundle,
                applied_sequence,
                applied_id,
                ledger_seq,
                sequence,
            } => format!(
                "downgrade: {bundle} sequence {applied_sequence} (bundle {}) is applied (ledger seq {ledger_seq}); this bundle has sequence {sequence}",
                short(applied_id)
            ),
            Refusal::AlreadyApplied {
                bundle,
                version,
                id,
                last,
            } => format!(
                "every tier of {bundle} {version} (bundle {}) is already applied{}; nothing to do",
                short(id),
                last.as_ref()
                    .map(|(seq, at)| format!(" (ledger seq {seq} at {at})"))
                    .unwrap_or_default()
            ),
            Refusal::ThroughApplied { through, next } => format!(
                "--through {through}: tier {through} is already applied; the next tier is {next}"
            ),
            Refusal::NothingToRollBack {
                bundle,
                version,
                database,
            } => format!(
                "no tier of {bundle} {version} is applied on {database} (the release never reached it, or was rolled back): there is nothing for its rollback to plan"
            ),
            Refusal::NotFollowed(n) => format!(
                "{} {} follows {} {} (bundle {}), which is not applied here: {}",
                n.bundle,
                n.version,
                n.follows,
                n.follows_version,
                short(&n.follows_id),
                if n.missing.is_empty() {
                    "none of its tiers is".to_string()
                } else {
                    format!("tier(s) {} not applied", n.missing.join(", "))
                }
            ),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.hint() {
            Some(hint) => write!(f, "{}. {hint}", self.evidence()),
            None => f.write_str(&self.evidence()),
        }
    }
}

/// The target is not where the bundle expects it (exit 5, kind `state-check`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mismatch {
    /// The server is older than the bundle's `min_server_version`.
    ServerTooOld { have: i64, need: i64 },
    /// The server's major is not one airlock supports
    /// ([`SUPPORTED_MAJORS`]): refused at connect.
    ServerUnsupported { major: i64, version: String },
    /// First apply: the preflight probe's values (described) are not its expectation.
    Preflight { described: String },
    /// Continuation: the schema is not what the previous apply left.
    Drift {
        ledger_seq: i64,
        tiers: Vec<String>,
        now: String,
        then: String,
        /// What changed, object by object (or why that is not known here).
        changes: Box<crate::schema_change::DriftChanges>,
    },
    /// The verify probe after the last tier failed (everything rolled back).
    Verify { described: String },
    /// The rollback probe failed (the rollback rolled back).
    RollbackProbe { described: String },
}

impl Mismatch {
    /// What to do about it.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            Mismatch::Drift { changes, .. } if changes.unnamed.is_none() => Some("Find out who changed these objects and why, and undo the change or continue with --allow-drift"),
            Mismatch::Drift { .. } => Some("Find out what changed: compare `airlock fingerprint --json` now with one saved when the previous apply ended (airlock fingerprint --diff A.json B.json); --allow-drift continues anyway"),
            _ => None,
        }
    }
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mismatch::ServerTooOld { have, need } => write!(
                f,
                "server_version_num is {have}, the bundle needs at least {need}"
            ),
            Mismatch::ServerUnsupported { major, .. } => {
                let (oldest, newest) = SUPPORTED_MAJORS;
                if *major < oldest {
                    write!(f, "PostgreSQL {major} is not supported ({oldest} or newer)")
                } else {
                    write!(
                        f,
                        "PostgreSQL {major} is not supported yet ({oldest} to {newest})"
                    )
                }
            }
            Mismatch::Preflight { described } => write!(
                f,
                "preflight: the target is not where the bundle expects it ({described}); nothing was changed"
            ),
            Mismatch::Drift {
                ledger_seq,
                tiers,
                now,
                then,
                changes,
            } => write!(
                f,
                "drift: the schema changed since ledger seq {ledger_seq} applied {} (fingerprint now {}, then {}): {}; nothing was changed. {}",
                tiers.join(", "),
                short(now),
                short(then),
                changes.said(),
                self.hint().unwrap_or_default()
            ),
            Mismatch::Verify { described } => write!(
                f,
                "verify probe after the last tier failed ({described}); everything was rolled back"
            ),
            Mismatch::RollbackProbe { described } => write!(
                f,
                "rollback probe: the database is not back where it should be ({described}); the rollback was rolled back"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_read_as_the_strings_they_replace() {
        let r = Refusal::AlreadyApplied {
            bundle: "shop".into(),
            version: "1.0".into(),
            id: "ab".repeat(32),
            last: Some((3, "2026-01-01".into())),
        };
        assert_eq!(
            r.to_string(),
            format!(
                "every tier of shop 1.0 (bundle {}) is already applied (ledger seq 3 at 2026-01-01); nothing to do. To run it again, roll it back first (airlock rollback)",
                short(&"ab".repeat(32))
            )
        );
        let t = Refusal::ThroughApplied {
            through: "one".into(),
            next: "two".into(),
        };
        assert_eq!(
            t.to_string(),
            "--through one: tier one is already applied; the next tier is two"
        );
        assert_eq!(t.hint(), None);
    }

    #[test]
    fn drift_keeps_its_advice_at_the_end() {
        let d = Mismatch::Drift {
            ledger_seq: 2,
            tiers: vec!["a".into(), "b".into()],
            now: "1".repeat(64),
            then: "2".repeat(64),
            changes: Box::new(crate::schema_change::DriftChanges::from(Err(
                "no description".into(),
            ))),
        };
        assert!(d.to_string().ends_with("--allow-drift continues anyway"));
    }
}
