//! What `fingerprint --data` reads besides tables: each sequence's value
//! (`last_value`, `is_called`, read from the sequence itself, as `pg_dump` dumps it
//! with `setval`) and the bytes of each large object (SHA-256 of `lo_get`, in the
//! server), one `data` part each, at the fingerprint's snapshot.
//!
//! Invariant: read in the leader's read-only transaction, in a savepoint with the
//! fingerprint's pinned settings, rolled back; only `pg_catalog` objects are named
//! besides the sequences themselves (quoted and qualified). The rehearsal's proof does
//! not read them (a sequence advanced by apply stays advanced after its rollback:
//! sequences are not transactional).

use crate::DbError;

/// Rows of one query, every value as text.
pub type Rows = Vec<Vec<Option<String>>>;

/// One value read: its part's name and the canonical line the fingerprint hashes
/// (as a `data` part).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Value {
    pub name: String,
    pub line: String,
}

fn text(row: &[Option<String>], i: usize) -> String {
    row.get(i).cloned().flatten().unwrap_or_default()
}

/// The sequences of the schemas the fingerprint describes.
const SEQUENCES: &str = "SELECT n.nspname, c.relname
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
WHERE c.relkind OPERATOR(pg_catalog.=) 'S'
  AND pg_catalog.left(n.nspname, 3) OPERATOR(pg_catalog.<>) 'pg_'
  AND n.nspname OPERATOR(pg_catalog.<>) 'information_schema'
ORDER BY 1, 2";

/// Each large object: its oid and the SHA-256 and length of its bytes.
const LARGE_OBJECTS: &str = "SELECT m.oid::pg_catalog.text,
       pg_catalog.encode(pg_catalog.sha256(b), 'hex'), pg_catalog.length(b)::pg_catalog.text
FROM pg_catalog.pg_largeobject_metadata m, pg_catalog.lo_get(m.oid) b
ORDER BY m.oid";

/// The sequences' values and the large objects' bytes, each query run by `run` (the
/// fingerprint's pinned savepoint: `run(sql, what)`).
pub fn values(
    run: &mut dyn FnMut(&str, &str) -> Result<Rows, DbError>,
) -> Result<Vec<Value>, DbError> {
    let mut parts = vec![];
    let listed = run(SEQUENCES, "sequences")?;
    let sequences: Vec<(String, String)> =
        listed.iter().map(|r| (text(r, 0), text(r, 1))).collect();
    if !sequences.is_empty() {
        let sql: Vec<String> = (sequences.iter().enumerate())
            .map(|(i, (s, q))| {
                format!(
                    "SELECT {i}, last_value::pg_catalog.text, is_called::pg_catalog.text FROM {}.{}",
                    crate::quote_ident(s),
                    crate::quote_ident(q)
                )
            })
            .collect();
        let mut values = run(&sql.join(" UNION ALL "), "sequence values")?;
        values.sort_by_key(|r| text(r, 0).parse::<usize>().unwrap_or(usize::MAX));
        for ((s, q), row) in sequences.iter().zip(values) {
            let row = &row[1..];
            let name = format!("{s}.{q}");
            let line = format!("v3 sequence {} {}", text(row, 0), text(row, 1));
            parts.push(Value { name, line });
        }
    }
    for row in run(LARGE_OBJECTS, "large objects")? {
        let name = format!("large object {}", text(&row, 0));
        let line = format!("v3 large object {} {}", text(&row, 2), text(&row, 1));
        parts.push(Value { name, line });
    }
    Ok(parts)
}
