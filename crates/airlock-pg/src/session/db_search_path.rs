//! The target database's own `search_path` (`ALTER DATABASE … SET search_path`, and
//! the same for the role bundle SQL runs as): airlock runs bundle SQL under the
//! bundle's `[target] search_path` (default `public`), whatever the database says, so
//! `plan` says when the two differ (a history written for the database's default may
//! expect its schemas).
//!
//! Invariant: information only; read with airlock's pinned settings.

use postgres::Client;

/// The database's (and its role's) `search_path` settings, as `pg_db_role_setting`
/// holds them: (who, value).
const SETTINGS: &str = "
SELECT CASE WHEN s.setrole OPERATOR(pg_catalog.=) 0 THEN 'ALTER DATABASE'
            ELSE 'ALTER ROLE ' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(r.rolname::pg_catalog.text) OPERATOR(pg_catalog.||) ' IN DATABASE' END,
       pg_catalog.substr(c, 13)
  FROM pg_catalog.pg_db_role_setting s
  JOIN pg_catalog.pg_database d ON d.oid OPERATOR(pg_catalog.=) s.setdatabase
  LEFT JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) s.setrole,
       pg_catalog.unnest(s.setconfig) c
 WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database()
   AND (s.setrole OPERATOR(pg_catalog.=) 0 OR r.rolname OPERATOR(pg_catalog.=) $1::pg_catalog.text)
   AND c LIKE 'search\\_path=%'
 ORDER BY s.setrole";

/// What to say when the target's own search_path differs from the bundle's
/// (`bundle`: its entries; `role`: the role bundle SQL runs as, if known).
pub fn differs(client: &mut Client, bundle: &[String], role: Option<&str>) -> Option<String> {
    let rows = client.query(SETTINGS, &[&role]).ok()?;
    let (who, value): (String, String) = rows.last().map(|r| (r.get(0), r.get(1)))?;
    let theirs: Vec<String> = value
        .split(',')
        .map(|s| s.trim().trim_matches('"').to_string())
        .filter(|s| !s.is_empty())
        .collect();
    (theirs != bundle).then(|| {
        format!(
            "the database's own search_path ({who} … SET search_path = {value}) differs from the bundle's ({}): airlock runs bundle SQL, gates and probes under the bundle's; if the SQL expects the database's schemas, set [target] search_path = [{}] in bundle.toml",
            crate::session::hermetic::render_search_path(bundle),
            theirs.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(", ")
        )
    })
}
