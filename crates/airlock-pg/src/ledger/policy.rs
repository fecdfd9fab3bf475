//! Deploy policy that needs no database: which tiers run next given the ledger
//! (refusing equivocation, downgrade, a bundle already applied, `--through` behind the
//! applied tiers), which gates guard them, which params they need.
//!
//! Invariant: pure functions of the manifest, the bundle id and the ledger rows; `plan`,
//! `apply`, `apply --wait` and `rehearse` all decide through them.

use crate::ledger::chain::{self as ledger, LedgerRow};
use crate::refusal::Refusal;
use crate::DbError;
use airlock_bundle::manifest::Manifest;
use airlock_bundle::verified::VerifiedBundle;
use std::collections::BTreeMap;

/// The index of a run's last tier: `--through`'s (already checked to name a tier by
/// [`next_tiers`]), else the bundle's last.
pub(crate) fn last_of_run(m: &Manifest, through: Option<&str>) -> usize {
    through
        .and_then(|t| m.tier_index(t))
        .unwrap_or(m.tier.len() - 1)
}

/// Ledger refusals and the next tiers to run: (the tiers applied so far, the indexes
/// of the tiers to run now).
pub(crate) fn next_tiers(
    m: &Manifest,
    id: &str,
    rows: &[LedgerRow],
    through: Option<&str>,
) -> Result<(Vec<String>, Vec<usize>), DbError> {
    refuse_other_releases(m, id, rows)?;
    refuse_unfollowed(m, rows)?;
    let st = ledger::state_of(rows, id);
    let first = m
        .tier
        .iter()
        .position(|t| !st.applied.contains(&t.name))
        .unwrap_or(m.tier.len());
    if first == m.tier.len() {
        return Err(DbError::Refused(Refusal::AlreadyApplied {
            bundle: m.bundle.name.clone(),
            version: m.bundle.version.clone(),
            id: id.into(),
            last: st
                .last_apply
                .as_ref()
                .map(|r| (r.seq, airlock_bundle::trust::shown(&r.at))),
        }));
    }
    let last = match through {
        None => m.tier.len() - 1,
        Some(t) => {
            let i = m.tier_index(t).ok_or_else(|| DbError::NoSuchTier {
                through: t.into(),
                tiers: m.tier.iter().map(|t| t.name.clone()).collect(),
            })?;
            if i < first {
                return Err(DbError::Refused(Refusal::ThroughApplied {
                    through: t.into(),
                    next: m.tier[first].name.clone(),
                }));
            }
            i
        }
    };
    Ok((st.applied, (first..=last).collect()))
}

/// The refusal `apply` would give this bundle on these rows (absent: it would run its
/// next tiers), decided by [`next_tiers`] as `plan` and `apply` decide: `status`
/// judges a bundle given against its train by it.
pub fn apply_refusal(m: &Manifest, id: &str, rows: &[LedgerRow]) -> Option<Refusal> {
    match next_tiers(m, id, rows, None) {
        Err(DbError::Refused(refusal)) => Some(refusal),
        _ => None,
    }
}

/// The release this one follows (`[follows]`, `airlock import --since`), whole: every
/// tier of it applied here, since its last rollback. Returns its last apply row.
pub(crate) fn refuse_unfollowed(
    m: &Manifest,
    rows: &[LedgerRow],
) -> Result<Option<LedgerRow>, DbError> {
    let Some(f) = &m.follows else {
        return Ok(None);
    };
    let st = ledger::state_of(rows, &f.bundle_id);
    let missing: Vec<String> = f
        .tiers
        .iter()
        .filter(|t| !st.applied.contains(t))
        .cloned()
        .collect();
    if st.applied.is_empty() || !missing.is_empty() {
        return Err(DbError::Refused(Refusal::NotFollowed(Box::new(
            crate::refusal::NotFollowed {
                bundle: m.bundle.name.clone(),
                version: m.bundle.version.clone(),
                follows: f.name.clone(),
                follows_version: f.version.clone(),
                follows_id: f.bundle_id.clone(),
                missing: if st.applied.is_empty() {
                    vec![]
                } else {
                    missing
                },
            },
        ))));
    }
    Ok(st.last_apply)
}

/// Another bundle of the same name in the ledger: the same sequence with another id
/// (equivocation), or a later sequence still applied (downgrade). A downgrade names
/// the release on top (the highest sequence applied, at its last apply row): the one
/// to roll back first.
fn refuse_other_releases(m: &Manifest, id: &str, rows: &[LedgerRow]) -> Result<(), DbError> {
    let ours = m.bundle.sequence as i64;
    let same_name = || rows.iter().filter(|r| r.bundle_name == m.bundle.name);
    if let Some(r) = same_name().find(|r| r.sequence == ours && r.bundle_id != id) {
        return Err(DbError::Refused(Refusal::Equivocation {
            bundle: m.bundle.name.clone(),
            sequence: m.bundle.sequence,
            ledger_seq: r.seq,
            theirs: r.bundle_id.clone(),
            ours: id.into(),
        }));
    }
    let top = same_name()
        .filter(|r| r.sequence > ours)
        .map(|r| ledger::state_of(rows, &r.bundle_id))
        .filter(|st| !st.applied.is_empty())
        .filter_map(|st| st.last_apply)
        .max_by_key(|last| (last.sequence, last.seq));
    match top {
        Some(last) => Err(DbError::Refused(Refusal::Downgrade {
            bundle: m.bundle.name.clone(),
            applied_sequence: last.sequence,
            applied_id: last.bundle_id,
            ledger_seq: last.seq,
            sequence: m.bundle.sequence,
        })),
        None => Ok(()),
    }
}

/// Params a run needs: required ones, when any tier about to run is gated.
pub fn check_required(
    vb: &VerifiedBundle,
    idx: &[usize],
    params: &BTreeMap<String, String>,
) -> Result<(), DbError> {
    let m = vb.manifest();
    if idx.iter().any(|&i| !m.tier[i].gates.is_empty()) {
        crate::require_params(params, &m.params)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlock_bundle::manifest::FileEntry;
    use airlock_bundle::spec::Spec;

    fn manifest(sequence: u64, tiers: &[&str]) -> Manifest {
        let mut toml = format!(
            "[bundle]\nname = \"shop\"\nversion = \"{sequence}.0\"\nsequence = {sequence}\n[target]\ndatabase = \"x\"\n"
        );
        for t in tiers {
            toml.push_str(&format!(
                "[[tier]]\nname = \"{t}\"\nfiles = [\"sql/{t}.sql\"]\n"
            ));
        }
        let spec: Spec = toml::from_str(&toml).unwrap();
        let files = tiers
            .iter()
            .map(|t| FileEntry {
                path: format!("sql/{t}.sql"),
                sha256: "0".repeat(64),
                size: 0,
                chunks: None,
            })
            .collect();
        Manifest::from_spec(spec, files)
    }

    fn row(seq: i64, event: &str, sequence: i64, id: &str, tiers: &[&str]) -> LedgerRow {
        let release = ("shop", format!("{sequence}.0"), sequence);
        crate::ledger::chain::test_row(seq, event, release, id, tiers)
    }

    const ID: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const OTHER: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    #[test]
    fn an_empty_ledger_runs_every_tier_through_the_last_or_through() {
        let m = manifest(1, &["a", "b", "c"]);
        assert_eq!(
            next_tiers(&m, ID, &[], None).unwrap(),
            (vec![], vec![0, 1, 2])
        );
        assert_eq!(
            next_tiers(&m, ID, &[], Some("b")).unwrap(),
            (vec![], vec![0, 1])
        );
    }

    #[test]
    fn a_partly_applied_bundle_continues_after_its_applied_tiers() {
        let m = manifest(1, &["a", "b", "c"]);
        let rows = [row(1, "apply", 1, ID, &["a"])];
        let (applied, idx) = next_tiers(&m, ID, &rows, None).unwrap();
        assert_eq!((applied, idx), (vec!["a".to_string()], vec![1, 2]));
    }

    #[test]
    fn a_fully_applied_bundle_is_refused_until_rolled_back() {
        let m = manifest(1, &["a"]);
        let rows = vec![row(1, "apply", 1, ID, &["a"])];
        let e = next_tiers(&m, ID, &rows, None).unwrap_err();
        assert!(matches!(
            &e,
            DbError::Refused(Refusal::AlreadyApplied {
                last: Some((1, _)),
                ..
            })
        ));
        let mut rows = rows;
        rows.push(row(2, "rollback", 1, ID, &["a"]));
        assert_eq!(next_tiers(&m, ID, &rows, None).unwrap().1, vec![0]);
    }

    #[test]
    fn a_receipt_delivered_changes_nothing_the_ledger_says_is_applied() {
        let m = manifest(1, &["a", "b"]);
        let rows = [
            row(1, "apply", 1, ID, &["a"]),
            row(2, "receipt", 1, ID, &["a"]),
        ];
        let (applied, idx) = next_tiers(&m, ID, &rows, None).unwrap();
        assert_eq!((applied, idx), (vec!["a".to_string()], vec![1]));
    }

    #[test]
    fn through_behind_the_applied_tiers_and_an_unknown_tier_are_refused() {
        let m = manifest(1, &["a", "b"]);
        let rows = [row(1, "apply", 1, ID, &["a"])];
        let e = next_tiers(&m, ID, &rows, Some("a")).unwrap_err();
        assert!(matches!(
            e,
            DbError::Refused(Refusal::ThroughApplied { .. })
        ));
        let e = next_tiers(&m, ID, &rows, Some("zzz")).unwrap_err();
        assert!(matches!(e, DbError::NoSuchTier { .. }));
        assert_eq!(e.kind(), "usage");
    }

    #[test]
    fn equivocation_and_downgrade_are_refused_with_their_evidence() {
        let m = manifest(2, &["a"]);
        let rows = [row(4, "apply", 2, OTHER, &["a"])];
        match next_tiers(&m, ID, &rows, None).unwrap_err() {
            DbError::Refused(Refusal::Equivocation { ledger_seq, .. }) => assert_eq!(ledger_seq, 4),
            e => panic!("{e}"),
        }
        let rows = [row(5, "apply", 3, OTHER, &["a"])];
        let e = next_tiers(&m, ID, &rows, None).unwrap_err();
        assert!(matches!(
            e,
            DbError::Refused(Refusal::Downgrade {
                applied_sequence: 3,
                ..
            })
        ));
        assert_eq!(e.exit_code(), airlock_base::exit::Exit::Refused);
        // With sequences 2 and 3 applied on top of it, the one on top is named.
        let m1 = manifest(1, &["a"]);
        let rows = [
            row(5, "apply", 2, OTHER, &["a"]),
            row(6, "apply", 3, "id-three", &["a"]),
        ];
        match next_tiers(&m1, ID, &rows, None).unwrap_err() {
            DbError::Refused(Refusal::Downgrade {
                applied_sequence,
                ledger_seq,
                ..
            }) => assert_eq!((applied_sequence, ledger_seq), (3, 6)),
            e => panic!("{e}"),
        }
        // A later sequence that was rolled back does not hold this one back.
        let rows = [
            row(5, "apply", 3, OTHER, &["a"]),
            row(6, "rollback", 3, OTHER, &["a"]),
        ];
        assert!(next_tiers(&m, ID, &rows, None).is_ok());
    }
}
