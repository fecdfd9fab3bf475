//! The order of a plain folder of SQL files (no peer tool's layout, so no version of
//! its own): the files' names as text, or as versions (each run of digits compared as
//! a number). The two usually agree; where they do not (Camunda's `7.10_patch` sorts
//! before `7.1_to_7.2` as text, after it as versions), which order the team applied
//! is not written anywhere, so import asks (`--order`) and writes nothing until told.
//!
//! Invariant: a folder is imported in an order only when the names agree on it, or
//! when `--order` names it.

use std::cmp::Ordering;

/// How `--order` sorts a plain folder's files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FolderOrder {
    /// Byte by byte, as `ls` and import sort by default.
    Text,
    /// Runs of digits as numbers (`7.1` before `7.10`, `2` before `10`), the rest as
    /// text.
    Version,
}

/// `a` and `b` compared as versions: the names cut into runs of digits and runs of
/// other characters, digit runs compared by value (then the shorter first: `01`
/// after `1`), the others as text; the plain text order breaks a tie.
pub fn by_version(a: &str, b: &str) -> Ordering {
    let (mut x, mut y) = (runs(a), runs(b));
    loop {
        match (x.next(), y.next()) {
            (None, None) => return a.cmp(b),
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(p), Some(q)) => {
                let o = match (digits(p), digits(q)) {
                    (true, true) => {
                        let (p0, q0) = (p.trim_start_matches('0'), q.trim_start_matches('0'));
                        p0.len()
                            .cmp(&q0.len())
                            .then_with(|| p0.cmp(q0))
                            .then_with(|| p.len().cmp(&q.len()))
                    }
                    _ => p.cmp(q),
                };
                if o != Ordering::Equal {
                    return o;
                }
            }
        }
    }
}

fn digits(run: &str) -> bool {
    run.as_bytes().first().is_some_and(u8::is_ascii_digit)
}

/// `s` cut where it turns from digits to other characters or back.
fn runs(s: &str) -> impl Iterator<Item = &str> {
    let mut rest = s;
    std::iter::from_fn(move || {
        let first = rest.as_bytes().first()?.is_ascii_digit();
        let end = rest
            .bytes()
            .position(|b| b.is_ascii_digit() != first)
            .unwrap_or(rest.len());
        let (run, more) = rest.split_at(end);
        rest = more;
        Some(run)
    })
}

/// The first two names (in text order) that the version order puts the other way
/// round, if any: `names` sorted as text.
pub fn disagreement(names: &[&str]) -> Option<(String, String)> {
    let mut by_v = names.to_vec();
    by_v.sort_by(|a, b| by_version(a, b));
    let (i, _) = names
        .iter()
        .zip(&by_v)
        .enumerate()
        .find(|(_, (t, v))| t != v)?;
    // names[i] comes first as text; by_v[i] comes first as a version and later as text.
    Some((names[i].to_string(), by_v[i].to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digit_runs_compare_as_numbers_and_the_rest_as_text() {
        let mut v = vec![
            "7.10_patch.sql",
            "7.1_to_7.2.sql",
            "7.2_to_7.3.sql",
            "10_x.sql",
            "2_x.sql",
            "02_x.sql",
        ];
        v.sort_by(|a, b| by_version(a, b));
        assert_eq!(
            v,
            [
                "2_x.sql",
                "02_x.sql",
                "7.1_to_7.2.sql",
                "7.2_to_7.3.sql",
                "7.10_patch.sql",
                "10_x.sql"
            ]
        );
    }

    #[test]
    fn a_folder_whose_orders_agree_has_no_disagreement() {
        assert_eq!(disagreement(&["001_a.sql", "002_b.sql", "010_c.sql"]), None);
        assert_eq!(disagreement(&[]), None);
    }

    #[test]
    fn the_first_pair_the_orders_put_the_other_way_round_is_named() {
        let mut names = vec!["7.1_to_7.2.sql", "7.10_patch.sql", "7.0_base.sql"];
        names.sort();
        assert_eq!(
            disagreement(&names),
            Some(("7.10_patch.sql".into(), "7.1_to_7.2.sql".into()))
        );
    }
}
