//! A type change that keeps every value's text: `varchar(n)` to a longer `varchar`,
//! to unbounded `varchar` or `text`; `smallint` to `integer` or `bigint`, `integer`
//! to `bigint`. The rows after it are the rows before it, value for value and equal
//! under the same equality, so a later UNIQUE or NOT NULL on the table is still
//! decided by the rows there now.
//!
//! Invariant: anything else (a USING, a COLLATE, a char(n) that pads, a shorter
//! varchar whose assignment trims trailing spaces, numeric scales) is not a widening
//! here, and leaves the table to rehearse as before.

use airlock_sql::{TypeRef, Using};

/// The family and length of a column type as `format_type` prints it.
fn now_type(sql_type: &str) -> Option<(&'static str, Option<i64>)> {
    match sql_type {
        "text" => Some(("text", None)),
        "character varying" => Some(("varchar", None)),
        "smallint" => Some(("int2", None)),
        "integer" => Some(("int4", None)),
        "bigint" => Some(("int8", None)),
        _ => {
            let n = sql_type
                .strip_prefix("character varying(")?
                .strip_suffix(')')?
                .parse()
                .ok()?;
            Some(("varchar", Some(n)))
        }
    }
}

/// Whether `ALTER COLUMN … TYPE to` (written as `statement`) from the column's type
/// `sql_type` keeps every value's text and equality.
pub(super) fn keeps_text(sql_type: &str, to: &TypeRef, using: &Using, statement: &str) -> bool {
    if !matches!(using, Using::Absent)
        || to.array
        || statement.to_ascii_uppercase().contains("COLLATE")
    {
        return false;
    }
    let Some(now) = now_type(sql_type) else {
        return false;
    };
    let schema_ok =
        to.names.len() == 1 || to.names.first().map(String::as_str) == Some("pg_catalog");
    if !schema_ok {
        return false;
    }
    let to_name = to.names.last().map(String::as_str).unwrap_or("");
    match (now, to_name, to.typmods.as_slice()) {
        (("varchar", _) | ("text", None), "text", []) => true,
        (("varchar" | "text", _), "varchar", []) => true,
        (("varchar", Some(n)), "varchar", [m]) => *m >= n,
        (("int2", _), "int4" | "int8", []) => true,
        (("int4", _), "int8", []) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(names: &[&str], typmods: &[i64]) -> TypeRef {
        TypeRef {
            names: names.iter().map(|s| s.to_string()).collect(),
            typmods: typmods.to_vec(),
            array: false,
            text: String::new(),
        }
    }

    #[test]
    fn widenings_keep_text_and_the_rest_do_not() {
        let s = "ALTER TABLE t ALTER COLUMN c TYPE x";
        let a = &Using::Absent;
        assert!(keeps_text(
            "character varying(50)",
            &t(&["pg_catalog", "varchar"], &[100]),
            a,
            s
        ));
        assert!(keeps_text(
            "character varying(50)",
            &t(&["pg_catalog", "varchar"], &[50]),
            a,
            s
        ));
        assert!(keeps_text(
            "character varying(50)",
            &t(&["text"], &[]),
            a,
            s
        ));
        assert!(keeps_text(
            "integer",
            &t(&["pg_catalog", "int8"], &[]),
            a,
            s
        ));
        assert!(!keeps_text(
            "character varying(50)",
            &t(&["pg_catalog", "varchar"], &[10]),
            a,
            s
        ));
        assert!(!keeps_text(
            "text",
            &t(&["pg_catalog", "varchar"], &[10]),
            a,
            s
        ));
        assert!(!keeps_text(
            "character varying(5)",
            &t(&["pg_catalog", "bpchar"], &[60]),
            a,
            s
        ));
        assert!(!keeps_text(
            "bigint",
            &t(&["pg_catalog", "int4"], &[]),
            a,
            s
        ));
        assert!(!keeps_text("text", &t(&["myschema", "text"], &[]), a, s));
        assert!(!keeps_text(
            "text",
            &t(&["text"], &[]),
            a,
            "ALTER TABLE t ALTER c TYPE text COLLATE \"C\""
        ));
    }
}
