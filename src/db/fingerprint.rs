//! Database fingerprint: SHA-256 over a canonical description of the user schemas.
//!
//! Invariant: same database → same fingerprint on every run (the description uses
//! names and server-rendered definitions, never OIDs, statistics or physical layout,
//! so VACUUM/ANALYZE change nothing); any schema change changes it; `--rows` and
//! `--data` add per-table counts and in-server content hashes. The `airlock` schema
//! (the ledger) is excluded.

use super::{sql_err, DbError};
use postgres::GenericClient;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Schema,
    Rows,
    Data,
}

/// One described object; `hash` is the SHA-256 of its canonical line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Part {
    pub kind: String,
    pub name: String,
    pub hash: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct Fingerprint {
    pub fingerprint: String,
    pub level: String,
    pub parts: Vec<Part>,
}

impl Fingerprint {
    pub fn short(&self) -> &str {
        &self.fingerprint[..8]
    }
}

const EXCLUDED: &str = "n.nspname NOT IN ('pg_catalog','information_schema','airlock') AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'";

/// (kind, name, definition) rows, one query per object class.
fn schema_queries() -> Vec<(&'static str, String)> {
    vec![
        ("schema", format!("SELECT n.nspname, n.nspname || ' owner=' || pg_get_userbyid(n.nspowner) || ' acl=' || coalesce(n.nspacl::text,'') FROM pg_namespace n WHERE {EXCLUDED}")),
        ("relation", format!(
            "SELECT n.nspname || '.' || c.relname, c.relkind::text || ' persistence=' || c.relpersistence::text || ' rls=' || c.relrowsecurity::text || ' acl=' || coalesce(c.relacl::text,'') || ' owner=' || pg_get_userbyid(c.relowner) || ' cols=' || coalesce((SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '') || CASE WHEN a.attidentity <> '' THEN ' identity ' || a.attidentity::text ELSE '' END || CASE WHEN a.attgenerated <> '' THEN ' generated ' || a.attgenerated::text ELSE '' END || coalesce(' collate ' || co.collname, ''), ', ' ORDER BY a.attnum) FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum LEFT JOIN pg_collation co ON co.oid = a.attcollation AND a.attcollation <> 100 AND a.attcollation <> 0 WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '') FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r','p','f','v','m','c') AND {EXCLUDED}"
        )),
        ("constraint", format!("SELECT n.nspname || '.' || c.relname || '.' || k.conname, pg_get_constraintdef(k.oid, true) FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {EXCLUDED}")),
        ("domain-constraint", format!("SELECT n.nspname || '.' || t.typname || '.' || k.conname, pg_get_constraintdef(k.oid, true) FROM pg_constraint k JOIN pg_type t ON t.oid = k.contypid JOIN pg_namespace n ON n.oid = t.typnamespace WHERE {EXCLUDED}")),
        ("index", format!("SELECT n.nspname || '.' || i.relname, pg_get_indexdef(x.indexrelid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_namespace n ON n.oid = i.relnamespace WHERE {EXCLUDED}")),
        ("view", format!("SELECT n.nspname || '.' || c.relname, pg_get_viewdef(c.oid, true) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('v','m') AND {EXCLUDED}")),
        ("function", format!("SELECT n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')', CASE WHEN p.prokind IN ('f','p') THEN pg_get_functiondef(p.oid) ELSE p.prokind::text || ' ' || pg_get_function_result(p.oid) END || ' acl=' || coalesce(p.proacl::text,'') FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE {EXCLUDED}")),
        ("trigger", format!("SELECT n.nspname || '.' || c.relname || '.' || t.tgname, pg_get_triggerdef(t.oid, true) || ' enabled=' || t.tgenabled::text FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE NOT t.tgisinternal AND {EXCLUDED}")),
        ("sequence", format!("SELECT n.nspname || '.' || c.relname, format_type(s.seqtypid, NULL) || ' start ' || s.seqstart || ' inc ' || s.seqincrement || ' min ' || s.seqmin || ' max ' || s.seqmax || ' cache ' || s.seqcache || ' cycle ' || s.seqcycle::text FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {EXCLUDED}")),
        ("policy", format!("SELECT n.nspname || '.' || c.relname || '.' || p.polname, p.polcmd::text || ' permissive=' || p.polpermissive::text || ' roles=' || p.polroles::text || ' using=' || coalesce(pg_get_expr(p.polqual, p.polrelid), '') || ' check=' || coalesce(pg_get_expr(p.polwithcheck, p.polrelid), '') FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {EXCLUDED}")),
        ("type", format!("SELECT n.nspname || '.' || t.typname, t.typtype::text || coalesce(' enum ' || (SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid), '') || CASE WHEN t.typtype = 'd' THEN ' base ' || format_type(t.typbasetype, t.typtypmod) || ' notnull=' || t.typnotnull::text || coalesce(' default ' || t.typdefault, '') ELSE '' END FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.typtype IN ('e','d','r') AND {EXCLUDED}")),
        ("extension", "SELECT e.extname, e.extversion || ' in ' || n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace".to_string()),
    ]
}

fn line_hash(kind: &str, name: &str, def: &str) -> String {
    let mut h = Sha256::new();
    h.update(kind.as_bytes());
    h.update([0]);
    h.update(name.as_bytes());
    h.update([0]);
    h.update(def.as_bytes());
    hex::encode(h.finalize())
}

pub fn quote_qualified(schema: &str, table: &str) -> String {
    format!(
        "{}.{}",
        super::quote_ident(schema),
        super::quote_ident(table)
    )
}

/// Compute the fingerprint on any client or transaction (it only reads).
pub fn compute(client: &mut impl GenericClient, level: Level) -> Result<Fingerprint, DbError> {
    let mut parts = vec![];
    for (kind, q) in schema_queries() {
        let rows = client
            .query(q.as_str(), &[])
            .map_err(|e| sql_err(&format!("fingerprint ({kind})"), &e))?;
        for r in rows {
            let name: String = r.get(0);
            let def: Option<String> = r.get(1);
            let def = def.unwrap_or_default();
            parts.push(Part {
                kind: kind.into(),
                hash: line_hash(kind, &name, &def),
                name,
            });
        }
    }
    if level != Level::Schema {
        let tables = client
            .query(
                &format!("SELECT n.nspname::text, c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r','p','m') AND {EXCLUDED} ORDER BY 1, 2"),
                &[],
            )
            .map_err(|e| sql_err("fingerprint (tables)", &e))?;
        for t in tables {
            let (s, n): (String, String) = (t.get(0), t.get(1));
            let qn = quote_qualified(&s, &n);
            let name = format!("{s}.{n}");
            let q = if level == Level::Data {
                // Hash of the sorted per-row hashes: independent of physical order, computed in the server.
                format!("SELECT count(*)::text || ' ' || coalesce(md5(string_agg(h, '' ORDER BY h)), '') FROM (SELECT md5(t::text) AS h FROM {qn} t) s")
            } else {
                format!("SELECT count(*)::text FROM {qn}")
            };
            let row = client
                .query_one(q.as_str(), &[])
                .map_err(|e| sql_err(&format!("fingerprint ({name})"), &e))?;
            let v: String = row.get(0);
            let kind = if level == Level::Data { "data" } else { "rows" };
            parts.push(Part {
                kind: kind.into(),
                hash: line_hash(kind, &name, &v),
                name,
            });
        }
    }
    parts.sort_by(|a, b| {
        (a.kind.as_str(), a.name.as_str()).cmp(&(b.kind.as_str(), b.name.as_str()))
    });
    let mut h = Sha256::new();
    for p in &parts {
        h.update(p.kind.as_bytes());
        h.update([0]);
        h.update(p.name.as_bytes());
        h.update([0]);
        h.update(p.hash.as_bytes());
        h.update(b"\n");
    }
    Ok(Fingerprint {
        fingerprint: hex::encode(h.finalize()),
        level: match level {
            Level::Schema => "schema",
            Level::Rows => "rows",
            Level::Data => "data",
        }
        .into(),
        parts,
    })
}

/// Objects whose description differs between two fingerprints (for reports).
pub fn diff(a: &Fingerprint, b: &Fingerprint) -> Vec<String> {
    use std::collections::BTreeMap;
    let ma: BTreeMap<(&str, &str), &str> = a
        .parts
        .iter()
        .map(|p| ((p.kind.as_str(), p.name.as_str()), p.hash.as_str()))
        .collect();
    let mb: BTreeMap<(&str, &str), &str> = b
        .parts
        .iter()
        .map(|p| ((p.kind.as_str(), p.name.as_str()), p.hash.as_str()))
        .collect();
    let mut out = vec![];
    for (k, v) in &ma {
        match mb.get(k) {
            None => out.push(format!("removed {} {}", k.0, k.1)),
            Some(w) if w != v => out.push(format!("changed {} {}", k.0, k.1)),
            _ => {}
        }
    }
    for k in mb.keys() {
        if !ma.contains_key(k) {
            out.push(format!("added {} {}", k.0, k.1));
        }
    }
    out
}
