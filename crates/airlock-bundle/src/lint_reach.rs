//! What a source's tier and rollback files reach beyond the database, as `spec`'s
//! `lint` lists it in `Linted::reaches_beyond` for `lint`, `pack` and `import`:
//! taken from lint's one pass over each file (`airlock_sql::check_script_reaching`),
//! and read again through `airlock_sql::reaches_in` only for a file that pass could not
//! settle.
//!
//! Invariant: the list is what reading every tier and rollback file through
//! `reaches_in` gives, in `Spec::named_files` order, each file once
//! (`tests/lint_reach.rs`).

use airlock_sql::{Reach, Reaches, SqlRole};
use std::collections::BTreeMap;
use std::path::Path;

/// Whether a file in `role` is one whose statements run (a tier or rollback file).
pub(crate) fn is_script(role: SqlRole) -> bool {
    matches!(role, SqlRole::Script | SqlRole::Online)
}

/// `found`, or, when the pass could not settle the file, what reading `file` (in
/// `dir`) again through `reaches_in` gives. A file that cannot be read again is named
/// as such (the list is information; lint has already judged the file).
pub(crate) fn settle(dir: &Path, file: &str, found: Reaches) -> Vec<Reach> {
    match found {
        Reaches::Found(found) => found,
        Reaches::ReadAgain => read_again(dir, file),
    }
}

fn read_again(dir: &Path, file: &str) -> Vec<Reach> {
    let read =
        std::fs::File::open(dir.join(file)).and_then(|mut f| airlock_sql::reaches_in(file, &mut f));
    read.unwrap_or_else(|e| {
        vec![Reach {
            file: file.into(),
            line: 0,
            statement: format!("unknown (the file could not be read again: {e})"),
        }]
    })
}

/// Each file's reaches (keyed by file), in the order the spec names its tier and
/// rollback files (`named`: `Spec::named_files`), each file once.
pub(crate) fn in_named_order(
    named: &[(String, Option<SqlRole>, &'static str)],
    mut by_file: BTreeMap<String, Vec<Reach>>,
) -> Vec<Reach> {
    let mut out = Vec::new();
    for (file, role, _) in named {
        if role.is_some_and(is_script) {
            out.extend(by_file.remove(file).unwrap_or_default());
        }
    }
    out
}
