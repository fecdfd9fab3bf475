//! Names, types and values as Liquibase's PostgreSQL generator writes them (4.x, its
//! default `objectQuotingStrategy` LEGACY): a name is written bare unless it holds an
//! upper-case letter or another character a bare name cannot, or is a reserved word,
//! then double-quoted; Liquibase's portable types become PostgreSQL's (`int` →
//! INTEGER, `datetime` → TIMESTAMP WITHOUT TIME ZONE, `clob` → TEXT, `blob` → OID,
//! `currency` → DECIMAL, `serial` → INTEGER with an identity), and a type it does not
//! know is written as given; a value is quoted as a string literal, or written bare
//! where the column's type is a number or a boolean, as Liquibase does.
//!
//! Invariant: quoting a name Liquibase would leave bare changes nothing (a lower-case
//! name means the same quoted), so the reserved list may be wider than Liquibase's,
//! never narrower than PostgreSQL's.

/// PostgreSQL's reserved key words (and those reserved as function or type names).
const RESERVED: &[&str] = &[
    "all",
    "analyse",
    "analyze",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "asymmetric",
    "authorization",
    "between",
    "binary",
    "both",
    "case",
    "cast",
    "check",
    "collate",
    "collation",
    "column",
    "concurrently",
    "constraint",
    "create",
    "cross",
    "current_catalog",
    "current_date",
    "current_role",
    "current_schema",
    "current_time",
    "current_timestamp",
    "current_user",
    "default",
    "deferrable",
    "desc",
    "distinct",
    "do",
    "else",
    "end",
    "except",
    "false",
    "fetch",
    "for",
    "foreign",
    "freeze",
    "from",
    "full",
    "grant",
    "group",
    "having",
    "ilike",
    "in",
    "initially",
    "inner",
    "intersect",
    "into",
    "is",
    "isnull",
    "join",
    "lateral",
    "leading",
    "left",
    "like",
    "limit",
    "localtime",
    "localtimestamp",
    "natural",
    "not",
    "notnull",
    "null",
    "offset",
    "on",
    "only",
    "or",
    "order",
    "outer",
    "overlaps",
    "placing",
    "primary",
    "references",
    "returning",
    "right",
    "select",
    "session_user",
    "similar",
    "some",
    "symmetric",
    "system_user",
    "table",
    "tablesample",
    "then",
    "to",
    "trailing",
    "true",
    "union",
    "unique",
    "user",
    "using",
    "variadic",
    "verbose",
    "when",
    "where",
    "window",
    "with",
];

/// A name as Liquibase writes it.
pub(super) fn name(n: &str) -> String {
    let n = n.trim();
    let bare = n
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && n.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$');
    if bare && !RESERVED.contains(&n) {
        n.to_string()
    } else {
        format!("\"{}\"", n.replace('"', "\"\""))
    }
}

/// `schema.name` (or `name`), each part as Liquibase writes it.
pub(super) fn qualified(schema: Option<&str>, n: &str) -> String {
    match schema {
        Some(s) => format!("{}.{}", name(s), name(n)),
        None => name(n),
    }
}

/// A comma-separated list of names (`a, b`), each written as Liquibase does.
pub(super) fn names(list: &str) -> String {
    list.split(',').map(name).collect::<Vec<_>>().join(", ")
}

/// A string literal.
pub(super) fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `(10,2)` → `(10, 2)`.
fn params(p: &str) -> String {
    let inner = p.trim().trim_start_matches('(').trim_end_matches(')');
    format!(
        "({})",
        inner
            .split(',')
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// A Liquibase type as PostgreSQL's, and whether it is an identity of itself
/// (`serial`).
pub(super) fn data_type(t: &str) -> (String, bool) {
    let t = t.trim();
    let t = t.strip_prefix("java.sql.Types.").unwrap_or(t);
    let (base, p) = match t.find('(') {
        Some(i) => (t[..i].trim(), Some(&t[i..])),
        None => (t, None),
    };
    let lower = base.to_ascii_lowercase();
    let with = |s: &str| match p {
        Some(p) => format!("{s}{}", params(p)),
        None => s.to_string(),
    };
    let mapped = match lower.as_str() {
        "int" | "integer" | "int4" | "mediumint" => "INTEGER".into(),
        "bigint" | "int8" | "long" => "BIGINT".into(),
        "smallint" | "int2" | "tinyint" => "SMALLINT".into(),
        "serial" | "serial4" => return ("INTEGER".into(), true),
        "bigserial" | "serial8" => return ("BIGINT".into(), true),
        "smallserial" | "serial2" => return ("SMALLINT".into(), true),
        "varchar" | "varchar2" | "nvarchar" | "character varying" => with("VARCHAR"),
        "char" | "nchar" | "character" => with("CHAR"),
        "boolean" | "bool" => "BOOLEAN".into(),
        "bit" => with("BIT"),
        // The precision stays: `timestamp(3)` → TIMESTAMP(3) WITHOUT TIME ZONE.
        "datetime" | "timestamp" | "timestamp without time zone" => {
            format!("{} WITHOUT TIME ZONE", with("TIMESTAMP"))
        }
        "timestamptz" => format!("{} WITH TIME ZONE", with("TIMESTAMP")),
        "time" => format!("{} WITHOUT TIME ZONE", with("time")),
        "clob" | "text" | "longtext" | "nclob" | "mediumtext" => "TEXT".into(),
        "blob" | "longblob" => "OID".into(),
        "uuid" | "uniqueidentifier" => "UUID".into(),
        "currency" => "DECIMAL".into(),
        "decimal" => with("DECIMAL"),
        "double" | "double precision" => "DOUBLE PRECISION".into(),
        "float" => with("FLOAT"),
        "real" | "float4" => "REAL".into(),
        "jsonb" => "JSONB".into(),
        "json" => "JSON".into(),
        _ => match p {
            Some(p) => format!("{base}{}", params(p)),
            None => t.to_string(),
        },
    };
    (mapped, false)
}

/// Whether a PostgreSQL type (as [`data_type`] writes it) takes a bare number.
fn numeric(t: &str) -> bool {
    let t = t.to_ascii_lowercase();
    [
        "integer", "bigint", "smallint", "decimal", "numeric", "double", "float", "real",
    ]
    .iter()
    .any(|k| t.starts_with(k))
}

/// A `defaultValue`/`value` for a column of type `t` (None: unknown): a number bare
/// for a number type, TRUE/FALSE for a boolean, else a string literal.
pub(super) fn value_for(t: Option<&str>, v: &str) -> String {
    match t {
        Some(t) if numeric(t) && v.trim().parse::<f64>().is_ok() => v.trim().to_string(),
        Some("BOOLEAN")
            if matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "true" | "false" | "1" | "0"
            ) =>
        {
            boolean(if v.trim() == "1" { "true" } else { v })
        }
        _ => literal(v),
    }
}

/// A date value (`2020-01-02T03:04:05` → `'2020-01-02 03:04:05'`).
pub(super) fn date(v: &str) -> String {
    literal(&v.replacen('T', " ", 1))
}

/// A boolean value.
pub(super) fn boolean(v: &str) -> String {
    if v.trim().eq_ignore_ascii_case("true") {
        "TRUE".into()
    } else {
        "FALSE".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_types_and_values_as_liquibase_writes_them() {
        assert_eq!(name("person"), "person");
        assert_eq!(name("MyTable"), "\"MyTable\"");
        assert_eq!(name("user"), "\"user\"");
        assert_eq!(data_type("int").0, "INTEGER");
        assert_eq!(data_type("varchar(255)").0, "VARCHAR(255)");
        assert_eq!(data_type("numeric(5,2)").0, "numeric(5, 2)");
        assert_eq!(data_type("datetime").0, "TIMESTAMP WITHOUT TIME ZONE");
        assert_eq!(data_type("blob").0, "OID");
        // As Liquibase 4.28's update-sql writes them.
        assert_eq!(
            data_type("timestamp(3)").0,
            "TIMESTAMP(3) WITHOUT TIME ZONE"
        );
        assert_eq!(data_type("datetime(6)").0, "TIMESTAMP(6) WITHOUT TIME ZONE");
        assert_eq!(data_type("timestamptz(3)").0, "TIMESTAMP(3) WITH TIME ZONE");
        assert_eq!(data_type("time(3)").0, "time(3) WITHOUT TIME ZONE");
        assert_eq!(data_type("bit(8)").0, "BIT(8)");
        assert_eq!(data_type("int(11)").0, "INTEGER");
        assert_eq!(value_for(Some("BOOLEAN"), "0"), "FALSE");
        assert_eq!(value_for(Some("BOOLEAN"), "1"), "TRUE");
        assert_eq!(data_type("serial"), ("INTEGER".into(), true));
        assert_eq!(data_type("java.sql.Types.VARCHAR(20)").0, "VARCHAR(20)");
        assert_eq!(value_for(Some("INTEGER"), "7"), "7");
        assert_eq!(value_for(Some("VARCHAR(20)"), "7"), "'7'");
        assert_eq!(value_for(Some("BOOLEAN"), "true"), "TRUE");
        assert_eq!(value_for(None, "x'y"), "'x''y'");
    }
}
