//! `airlock.ledger`: append-only, hash-chained record of applies and rollbacks.
//!
//! Invariant: `row_hash = sha256(prev_hash || canonical row)` where the canonical row
//! is the sorted-key JSON of every column but `row_hash`; the first row's `prev_hash`
//! is 64 zeros. The table is created by the first apply, inside its transaction, and
//! is never written by gate/plan/status. A trigger refuses UPDATE/DELETE/TRUNCATE.
//!
//! The ledger lives in a database other roles may control, so before every use it is
//! checked to be exactly what airlock creates ([`inspect`]): schema, table, trigger and
//! function owned by a superuser or airlock's own role, the expected columns,
//! constraints, indexes and single enabled trigger, no rules, policies, inheritance,
//! defaults or write grants to anyone else. Otherwise airlock refuses (exit 5).

use crate::session::sessions::{
    creation_holders, lock_holders, online_holders, BY_A_LEDGER_WRITER, ONLINE_HOLDS,
};
use crate::{sql_err, DbError};
use postgres::types::Type;
use postgres::GenericClient;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

const CREATE: &str = r#"
CREATE SCHEMA IF NOT EXISTS airlock;
CREATE TABLE airlock.ledger (
    seq                bigint PRIMARY KEY,
    at                 text   NOT NULL,
    event              text   NOT NULL CHECK (event IN ('apply', 'rollback', 'step', 'receipt')),
    bundle_name        text   NOT NULL,
    bundle_version     text   NOT NULL,
    sequence           bigint NOT NULL,
    bundle_id          text   NOT NULL,
    tiers              text   NOT NULL,
    params             text   NOT NULL,
    operator           text   NOT NULL,
    fingerprint_before text   NOT NULL,
    fingerprint_after  text   NOT NULL,
    prev_hash          text   NOT NULL,
    row_hash           text   NOT NULL UNIQUE,
    bundle_tiers       text,
    approvals          text,
    receipt            text
);
COMMENT ON TABLE airlock.ledger IS 'airlock: append-only, hash-chained deploy ledger. Do not edit; airlock status --verify-chain detects edits.';
CREATE OR REPLACE FUNCTION airlock.ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'airlock.ledger is append-only (% refused)', TG_OP;
END $$;
CREATE TRIGGER ledger_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON airlock.ledger
    FOR EACH STATEMENT EXECUTE FUNCTION airlock.ledger_append_only();
"#;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LedgerRow {
    pub seq: i64,
    pub at: String,
    pub event: String,
    pub bundle_name: String,
    pub bundle_version: String,
    pub sequence: i64,
    pub bundle_id: String,
    /// JSON array of tier names.
    pub tiers: String,
    /// JSON object of params.
    pub params: String,
    pub operator: String,
    pub fingerprint_before: String,
    pub fingerprint_after: String,
    pub prev_hash: String,
    pub row_hash: String,
    /// JSON array of every tier of the bundle, in order, so that `status` can say what
    /// remains without the bundle. Absent from rows written before it was recorded
    /// (and from ledgers created then, which have no such column): it is left out of
    /// the canonical row when absent, so those rows keep their hashes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle_tiers: Option<String>,
    /// JSON array of the signed approvals that opened a ratified gate (each
    /// `{key_id, document, signature}`), on the row of the apply they let run. Absent
    /// from other rows and from ledgers created before it was recorded (no column):
    /// left out of the canonical row when absent, so those rows keep their hashes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvals: Option<String>,
    /// On a `receipt` row (a receipt was delivered): the JSON [`Delivery`] it records.
    /// Absent from other rows and from ledgers made before deliveries were recorded
    /// (no column): left out of the canonical row when absent, so those rows keep
    /// their hashes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<String>,
}

/// What a `receipt` row records: a receipt left the run that wrote the rows it
/// covers, as these exact bytes. Written after the receipt file was saved, so a row
/// without one was never delivered (its run was interrupted), and a receipt that
/// differs from these bytes is not the one delivered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Delivery {
    /// SHA-256 of the receipt file's exact bytes, lowercase hex.
    pub sha256: String,
    /// The `seq` of every ledger row the receipt holds.
    pub covers: Vec<i64>,
    /// Written after an interrupted run, from the ledger (`airlock reissue`).
    pub reissued: bool,
    /// On the first delivery a ledger made before deliveries were recorded holds: the
    /// first row whose delivery it records (its rows before were written when none
    /// was; see [`delivery_era`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<i64>,
    /// The operator key's signature (`.minisig` text) over the rows `covers` names
    /// ([`super::signed_rows::document`]), when the run was given one
    /// (`--sign-receipt`): what makes those rows airlock's, and their times evidence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

/// The first ledger row whose receipt's delivery the ledger records (or would record,
/// had it been delivered): the `since` of the delivery that began recording in a ledger
/// made before, else 1 when the ledger records deliveries at all (a delivery row, or
/// `has_column`: made with the column), else none.
pub fn delivery_era(rows: &[LedgerRow], has_column: bool) -> Option<i64> {
    let deliveries: Vec<Delivery> = rows.iter().filter_map(LedgerRow::delivery).collect();
    if let Some(since) = deliveries.iter().filter_map(|d| d.since).min() {
        return Some(since);
    }
    (has_column || !deliveries.is_empty()).then_some(1)
}

/// Whether the ledger has the `receipt` column (made with it, or widened).
pub fn has_receipt_column(client: &mut impl GenericClient) -> Result<bool, DbError> {
    let row = client
        .query_one(
            "SELECT EXISTS (SELECT FROM pg_catalog.pg_attribute a \
              WHERE a.attrelid OPERATOR(pg_catalog.=) pg_catalog.to_regclass('airlock.ledger') \
                AND a.attname OPERATOR(pg_catalog.=) 'receipt' AND NOT a.attisdropped)",
            &[],
        )
        .map_err(|e| sql_err("reading the ledger's columns", &e))?;
    Ok(row.get(0))
}

impl LedgerRow {
    /// The canonical bytes hashed into `row_hash` (sorted keys, no row_hash).
    fn canonical(&self) -> Vec<u8> {
        let mut v = serde_json::to_value(self).expect("row serializes");
        v.as_object_mut().expect("object").remove("row_hash");
        serde_json::to_vec(&v).expect("value serializes")
    }

    pub fn compute_hash(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.prev_hash.as_bytes());
        h.update(self.canonical());
        hex::encode(h.finalize())
    }

    pub fn tier_names(&self) -> Vec<String> {
        serde_json::from_str(&self.tiers).unwrap_or_default()
    }

    /// Every tier of the bundle, when the row records them.
    pub fn bundle_tier_names(&self) -> Option<Vec<String>> {
        self.bundle_tiers
            .as_deref()
            .and_then(|t| serde_json::from_str(t).ok())
    }

    /// The signed approvals the row records, when it records them.
    pub fn recorded_approvals(&self) -> Option<Vec<RecordedApproval>> {
        self.approvals
            .as_deref()
            .and_then(|t| serde_json::from_str(t).ok())
    }

    /// The delivery a `receipt` row records.
    pub fn delivery(&self) -> Option<Delivery> {
        self.receipt
            .as_deref()
            .filter(|_| self.event == RECEIPT_EVENT)
            .and_then(|t| serde_json::from_str(t).ok())
    }

    /// A row of what ran (`apply`, `rollback`, `step`), not of a receipt delivered.
    pub fn ran(&self) -> bool {
        self.event != RECEIPT_EVENT
    }
}

/// The event of a row that records a receipt delivered ([`Delivery`]).
pub const RECEIPT_EVENT: &str = "receipt";

/// One signed approval as a ledger row records it: enough to verify it again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordedApproval {
    pub key_id: String,
    /// The exact signed document.
    pub document: String,
    /// The exact `.minisig` text.
    pub signature: String,
}

/// What the target holds of airlock's ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Presence {
    /// No schema `airlock` at all.
    Absent,
    /// Schema `airlock` (airlock's own) without the table: a first apply creates it.
    SchemaOnly,
    /// The ledger, checked to be exactly what airlock creates.
    Present,
}

/// [`INSPECT`]'s text, the roles it trusts (`me`: besides superusers) given.
macro_rules! inspect_sql {
    ($me:literal) => {
        concat!("\nWITH me AS (", $me, "),", r#"
     s AS (SELECT n.oid, n.nspowner, n.nspacl FROM pg_catalog.pg_namespace n WHERE n.nspname = 'airlock'),
     t AS (SELECT c.* FROM pg_catalog.pg_class c JOIN s ON c.relnamespace = s.oid WHERE c.relname = 'ledger'),
     f AS (SELECT p.* FROM pg_catalog.pg_proc p JOIN s ON p.pronamespace = s.oid
            WHERE p.proname = 'ledger_append_only' AND p.pronargs = 0),
     trusted AS (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolsuper OR r.oid IN (SELECT oid FROM me))
SELECT pg_catalog.format('%s', pg_catalog.json_build_object(
  'schema', (SELECT pg_catalog.json_build_object(
      'owner', pg_catalog.pg_get_userbyid(s.nspowner),
      'owner_ok', s.nspowner IN (SELECT oid FROM trusted),
      'foreign_create', ARRAY(SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(a.grantee) END
                                FROM pg_catalog.aclexplode(s.nspacl) a
                               WHERE a.privilege_type = 'CREATE' AND a.grantee <> s.nspowner AND a.grantee NOT IN (SELECT oid FROM trusted))) FROM s),
  'table', (SELECT pg_catalog.json_build_object(
      'kind', t.relkind, 'persistence', t.relpersistence,
      'owner', pg_catalog.pg_get_userbyid(t.relowner),
      'owner_ok', t.relowner IN (SELECT oid FROM trusted),
      'rls', t.relrowsecurity OR t.relforcerowsecurity,
      'typed', t.reloftype <> 0,
      'partition', t.relispartition,
      'inherits', EXISTS (SELECT FROM pg_catalog.pg_inherits i WHERE i.inhrelid = t.oid OR i.inhparent = t.oid),
      'rules', ARRAY(SELECT r.rulename FROM pg_catalog.pg_rewrite r WHERE r.ev_class = t.oid ORDER BY 1),
      'policies', ARRAY(SELECT p.polname FROM pg_catalog.pg_policy p WHERE p.polrelid = t.oid ORDER BY 1),
      'columns', ARRAY(SELECT pg_catalog.format('%s %s', a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod))
                              || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
                              || CASE WHEN a.atthasdef THEN ' default' ELSE '' END
                              || CASE WHEN a.attgenerated <> '' THEN ' generated' ELSE '' END
                              || CASE WHEN a.attidentity <> '' THEN ' identity' ELSE '' END
                         FROM pg_catalog.pg_attribute a WHERE a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum),
      'constraints', ARRAY(SELECT pg_catalog.format('%s %s', k.conname, pg_catalog.pg_get_constraintdef(k.oid, true))
                             FROM pg_catalog.pg_constraint k WHERE k.conrelid = t.oid
                              AND NOT (k.contype = 'n' AND k.convalidated AND NOT k.connoinherit) ORDER BY 1),
      'indexes', ARRAY(SELECT pg_catalog.pg_get_indexdef(x.indexrelid) FROM pg_catalog.pg_index x WHERE x.indrelid = t.oid ORDER BY 1),
      'triggers', ARRAY(SELECT pg_catalog.format('%s [enabled=%s]', pg_catalog.pg_get_triggerdef(g.oid, true), g.tgenabled)
                          FROM pg_catalog.pg_trigger g WHERE g.tgrelid = t.oid ORDER BY 1),
      'grants', ARRAY(SELECT pg_catalog.format('%s %s', CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(a.grantee) END, a.privilege_type)
                        FROM pg_catalog.aclexplode(t.relacl) a
                       WHERE a.privilege_type <> 'SELECT' AND a.grantee <> t.relowner AND a.grantee NOT IN (SELECT oid FROM trusted) ORDER BY 1),
      'column_grants', ARRAY(SELECT pg_catalog.format('%s: %s %s', c.attname, CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(a.grantee) END, a.privilege_type)
                               FROM pg_catalog.pg_attribute c, pg_catalog.aclexplode(c.attacl) a
                              WHERE c.attrelid = t.oid AND a.privilege_type <> 'SELECT' ORDER BY 1)) FROM t),
  'function', (SELECT pg_catalog.json_build_object(
      'owner', pg_catalog.pg_get_userbyid(f.proowner),
      'owner_ok', f.proowner IN (SELECT oid FROM trusted),
      'language', (SELECT l.lanname FROM pg_catalog.pg_language l WHERE l.oid = f.prolang),
      'source', f.prosrc, 'security_definer', f.prosecdef, 'config', pg_catalog.array_to_string(f.proconfig, ',')) FROM f)
))"#)
    };
}

/// The ledger's structure as the catalogs describe it (one JSON document, one round
/// trip). Read with a fresh snapshot, so an apply that waited on the deploy lock
/// while another created the ledger sees it. It runs under airlock's pinned
/// `search_path = pg_catalog, pg_temp`, and casts nothing to text: names go to JSON and
/// into text by their types' output functions (`format('%s', …)`, as `door::text_of`).
/// PostgreSQL 18 records each column's NOT NULL in `pg_constraint` too (`contype 'n'`):
/// a validated, inheritable one says no more than `attnotnull` in `columns`, so it is
/// left out; a `NOT VALID` or `NO INHERIT` one stays and makes the ledger not airlock's.
const INSPECT: &str =
    inspect_sql!("SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = SESSION_USER");

/// [`INSPECT`] for a session that only reads the ledger ([`super::reader`]): one that
/// is no superuser trusts, besides itself and superusers, the role that owns the
/// schema `airlock` (the deploy login `airlock setup` made keeps the ledger; a reader
/// may read a ledger it does not own). Everything else is judged as for a writer.
pub(super) const INSPECT_TO_READ: &str = inspect_sql!(
    "SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = SESSION_USER \
     UNION ALL SELECT n.nspowner FROM pg_catalog.pg_namespace n WHERE n.nspname = 'airlock' \
       AND NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = SESSION_USER)"
);

/// The ledger exactly as [`CREATE`] makes it, as [`INSPECT`] renders it: these, then
/// [`BUNDLE_TIERS`] (a ledger created before it was recorded lacks that one).
const COLUMNS: [&str; 14] = [
    "seq bigint not null",
    "at text not null",
    "event text not null",
    "bundle_name text not null",
    "bundle_version text not null",
    "sequence bigint not null",
    "bundle_id text not null",
    "tiers text not null",
    "params text not null",
    "operator text not null",
    "fingerprint_before text not null",
    "fingerprint_after text not null",
    "prev_hash text not null",
    "row_hash text not null",
];
/// The columns added since ([`LedgerRow::bundle_tiers`], then
/// [`LedgerRow::approvals`], then [`LedgerRow::receipt`]): a ledger has none, or the
/// first one, two or three.
const BUNDLE_TIERS: &str = "bundle_tiers text";
const APPROVALS: &str = "approvals text";
const RECEIPT: &str = "receipt text";
const CONSTRAINTS: [&str; 3] = [
    EVENT_CHECK,
    "ledger_pkey PRIMARY KEY (seq)",
    "ledger_row_hash_key UNIQUE (row_hash)",
];
/// The events a ledger records: `step` (an online statement completed) since online
/// tiers came, `receipt` (a receipt delivered) since deliveries are recorded; a ledger
/// made before them allows only [`STEP_EVENT_CHECK`]'s or [`OLD_EVENT_CHECK`]'s, and is
/// widened ([`allow_steps`], [`allow_receipts`]) by the first such row it records.
const EVENT_CHECK: &str = "ledger_event_check CHECK (event = ANY (ARRAY['apply'::text, 'rollback'::text, 'step'::text, 'receipt'::text]))";
const STEP_EVENT_CHECK: &str =
    "ledger_event_check CHECK (event = ANY (ARRAY['apply'::text, 'rollback'::text, 'step'::text]))";
const OLD_EVENT_CHECK: &str =
    "ledger_event_check CHECK (event = ANY (ARRAY['apply'::text, 'rollback'::text]))";
const INDEXES: [&str; 2] = [
    "CREATE UNIQUE INDEX ledger_pkey ON airlock.ledger USING btree (seq)",
    "CREATE UNIQUE INDEX ledger_row_hash_key ON airlock.ledger USING btree (row_hash)",
];
const TRIGGER: &str = "CREATE TRIGGER ledger_append_only BEFORE DELETE OR UPDATE OR TRUNCATE ON airlock.ledger FOR EACH STATEMENT EXECUTE FUNCTION airlock.ledger_append_only()";
const FUNCTION_BODY: &str =
    "\nBEGIN\n    RAISE EXCEPTION 'airlock.ledger is append-only (% refused)', TG_OP;\nEND ";

#[derive(Deserialize)]
struct Inspected {
    schema: Option<SchemaFacts>,
    table: Option<TableFacts>,
    function: Option<FunctionFacts>,
}
#[derive(Deserialize)]
struct SchemaFacts {
    owner: String,
    owner_ok: bool,
    foreign_create: Vec<String>,
}
#[derive(Deserialize)]
struct TableFacts {
    kind: String,
    persistence: String,
    owner: String,
    owner_ok: bool,
    rls: bool,
    typed: bool,
    partition: bool,
    inherits: bool,
    rules: Vec<String>,
    policies: Vec<String>,
    columns: Vec<String>,
    constraints: Vec<String>,
    indexes: Vec<String>,
    triggers: Vec<String>,
    grants: Vec<String>,
    column_grants: Vec<String>,
}
#[derive(Deserialize)]
struct FunctionFacts {
    owner: String,
    owner_ok: bool,
    language: Option<String>,
    source: String,
    security_definer: bool,
    config: Option<String>,
}

/// The columns of a ledger airlock made: [`COLUMNS`], then [`BUNDLE_TIERS`] unless an
/// earlier version created it.
fn airlocks_columns(columns: &[String]) -> bool {
    match columns.split_at_checked(COLUMNS.len()) {
        Some((first, rest)) => {
            first == COLUMNS
                && rest.len() <= 3
                && rest
                    .iter()
                    .zip([BUNDLE_TIERS, APPROVALS, RECEIPT])
                    .all(|(have, want)| have == want)
        }
        None => false,
    }
}

/// Everything that makes the ledger not airlock's own (empty = trusted).
fn problems(i: &Inspected) -> Vec<String> {
    let mut out = vec![];
    let owner_rule = "must be owned by a superuser or the role airlock connects as";
    let Some(schema) = &i.schema else {
        if i.table.is_some() || i.function.is_some() {
            out.push("ledger objects exist without schema airlock".into());
        }
        return out;
    };
    if !schema.owner_ok {
        out.push(format!(
            "schema airlock is owned by {:?} ({owner_rule})",
            schema.owner
        ));
    }
    if !schema.foreign_create.is_empty() {
        out.push(format!(
            "schema airlock grants CREATE to {} (only its owner may create objects there)",
            schema.foreign_create.join(", ")
        ));
    }
    let Some(t) = &i.table else {
        if i.function.is_some() {
            out.push("function airlock.ledger_append_only() exists without the ledger table (created by someone else?)".into());
        }
        return out;
    };
    table_problems(t, owner_rule, &mut out);
    match &i.function {
        None => out.push("function airlock.ledger_append_only() is missing".into()),
        Some(f) => {
            if !f.owner_ok {
                out.push(format!(
                    "function airlock.ledger_append_only() is owned by {:?} ({owner_rule})",
                    f.owner
                ));
            }
            if f.language.as_deref() != Some("plpgsql")
                || f.source != FUNCTION_BODY
                || f.security_definer
                || f.config.is_some()
            {
                out.push("function airlock.ledger_append_only() is not airlock's (its body, language or settings were changed)".into());
            }
        }
    }
    out
}

/// What makes the ledger table itself not airlock's own.
fn table_problems(t: &TableFacts, owner_rule: &str, out: &mut Vec<String>) {
    if !t.owner_ok {
        out.push(format!(
            "table airlock.ledger is owned by {:?} ({owner_rule})",
            t.owner
        ));
    }
    if t.kind != "r" || t.typed || t.partition {
        out.push(format!(
            "airlock.ledger is not a plain table (relkind {})",
            t.kind
        ));
    }
    if t.persistence != "p" {
        out.push("airlock.ledger is not a permanent (logged) table".into());
    }
    if t.rls {
        out.push("row-level security is enabled on airlock.ledger (it could hide rows)".into());
    }
    if t.inherits {
        out.push("airlock.ledger takes part in table inheritance".into());
    }
    let list = |what: &str, v: &[String], out: &mut Vec<String>| {
        if !v.is_empty() {
            out.push(format!("airlock.ledger has {what}: {}", v.join(", ")));
        }
    };
    list("rules", &t.rules, out);
    list("policies", &t.policies, out);
    list("write grants to other roles", &t.grants, out);
    list("column grants", &t.column_grants, out);
    if !airlocks_columns(&t.columns) {
        out.push(format!(
            "airlock.ledger's columns are not airlock's (found: {})",
            t.columns.join(", ")
        ));
    }
    let older = matches!(
        t.constraints.first().map(String::as_str),
        Some(OLD_EVENT_CHECK | STEP_EVENT_CHECK)
    ) && t.constraints[1..] == CONSTRAINTS[1..];
    if t.constraints != CONSTRAINTS && !older {
        out.push(format!(
            "airlock.ledger's constraints are not airlock's (found: {})",
            t.constraints.join("; ")
        ));
    }
    if t.indexes != INDEXES {
        out.push(format!(
            "airlock.ledger's indexes are not airlock's (found: {})",
            t.indexes.join("; ")
        ));
    }
    let trigger_ok = t.triggers.len() == 1
        && (t.triggers[0] == format!("{TRIGGER} [enabled=O]")
            || t.triggers[0] == format!("{TRIGGER} [enabled=A]"));
    if !trigger_ok {
        out.push(format!(
            "airlock.ledger's triggers are not exactly airlock's enabled append-only trigger (found: {})",
            if t.triggers.is_empty() { "none".to_string() } else { t.triggers.join("; ") }
        ));
    }
}

/// The one role that owns the schema, the ledger and its function, when the
/// `problems` (`count` of them) are only that each is owned by it, not by a superuser
/// or the connecting role: airlock's own ledger, another login's (a deploy login's,
/// seen from a superuser's connection).
fn only_owned_by_another(i: &Inspected, count: usize) -> Option<String> {
    let (s, t, f) = (i.schema.as_ref()?, i.table.as_ref()?, i.function.as_ref()?);
    let all_theirs =
        !s.owner_ok && !t.owner_ok && !f.owner_ok && s.owner == t.owner && t.owner == f.owner;
    (all_theirs && count == 3).then(|| s.owner.clone())
}

/// Check the ledger is airlock's own before any use; refuse (exit 5) otherwise.
pub fn inspect(client: &mut impl GenericClient) -> Result<Presence, DbError> {
    inspect_with(client, INSPECT).map(|(presence, _)| presence)
}

/// What `sql` ([`INSPECT`] or [`INSPECT_TO_READ`]) answers, judged: the ledger's
/// presence and the role that owns its table (none without one).
pub(super) fn inspect_with(
    client: &mut impl GenericClient,
    sql: &str,
) -> Result<(Presence, Option<String>), DbError> {
    let row = client
        .query_typed_one(sql, &[])
        .map_err(|e| sql_err("inspecting the ledger", &e))?;
    let text = row.get::<_, String>(0);
    judge(&text)
}

/// What [`INSPECT`] answered (`text`), judged: the presence, and the table's owner.
fn judge(text: &str) -> Result<(Presence, Option<String>), DbError> {
    let facts: Inspected = serde_json::from_str(text).map_err(|e| DbError::Sql {
        context: "inspecting the ledger".into(),
        message: format!("unexpected catalog answer: {e}"),
    })?;
    let problems = problems(&facts);
    if !problems.is_empty() {
        let login = only_owned_by_another(&facts, problems.len());
        return Err(DbError::LedgerUntrusted { problems, login });
    }
    let presence = match (&facts.schema, &facts.table) {
        (None, _) => Presence::Absent,
        (Some(_), None) => Presence::SchemaOnly,
        (Some(_), Some(_)) => Presence::Present,
    };
    Ok((presence, facts.table.map(|t| t.owner)))
}

/// The rows, whichever layout the ledger has: `bundle_tiers` is read through the row's
/// JSON, NULL where there is no such column.
const SELECT_ROWS: &str = "SELECT seq, at, event, bundle_name, bundle_version, sequence, bundle_id, tiers, params, operator, fingerprint_before, fingerprint_after, prev_hash, row_hash, pg_catalog.to_jsonb(l) ->> 'bundle_tiers', pg_catalog.to_jsonb(l) ->> 'approvals', pg_catalog.to_jsonb(l) ->> 'receipt' FROM airlock.ledger l";

fn row_of(r: &postgres::Row) -> LedgerRow {
    LedgerRow {
        seq: r.get(0),
        at: r.get(1),
        event: r.get(2),
        bundle_name: r.get(3),
        bundle_version: r.get(4),
        sequence: r.get(5),
        bundle_id: r.get(6),
        tiers: r.get(7),
        params: r.get(8),
        operator: r.get(9),
        fingerprint_before: r.get(10),
        fingerprint_after: r.get(11),
        prev_hash: r.get(12),
        row_hash: r.get(13),
        bundle_tiers: r.get(14),
        approvals: r.get(15),
        receipt: r.get(16),
    }
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

impl LedgerRow {
    /// Why this row cannot be a row airlock wrote (None = well-formed).
    pub fn malformed(&self) -> Option<String> {
        for (name, v) in [
            ("bundle_id", &self.bundle_id),
            ("fingerprint_before", &self.fingerprint_before),
            ("fingerprint_after", &self.fingerprint_after),
            ("prev_hash", &self.prev_hash),
            ("row_hash", &self.row_hash),
        ] {
            if !is_hex64(v) {
                return Some(format!("{name} is not 64 lowercase hex digits"));
            }
        }
        if serde_json::from_str::<Vec<String>>(&self.tiers).is_err() {
            return Some("tiers is not a JSON array of tier names".into());
        }
        if serde_json::from_str::<std::collections::BTreeMap<String, String>>(&self.params).is_err()
        {
            return Some("params is not a JSON object of strings".into());
        }
        if self.bundle_tiers.is_some() && self.bundle_tier_names().is_none() {
            return Some("bundle_tiers is not a JSON array of tier names".into());
        }
        if self.approvals.is_some() && self.recorded_approvals().is_none() {
            return Some("approvals is not a JSON array of signed approvals".into());
        }
        match (self.event == RECEIPT_EVENT, &self.receipt) {
            (true, _) => match self.delivery() {
                Some(d) if is_hex64(&d.sha256) && !d.covers.is_empty() => {}
                _ => {
                    return Some(
                        "a receipt row's receipt is not a delivery (sha256, covers, reissued)"
                            .into(),
                    )
                }
            },
            (false, Some(_)) => return Some("only a receipt row records a receipt".into()),
            (false, None) => {}
        }
        None
    }
}

/// Every row in order, after checking the ledger is airlock's own; empty when there
/// is no ledger yet (never creates it). A malformed row is an error naming it.
pub fn read_all(client: &mut impl GenericClient) -> Result<Vec<LedgerRow>, DbError> {
    if inspect(client)? != Presence::Present {
        return Ok(vec![]);
    }
    rows_of_checked(client)
}

/// Every row in order, of a ledger [`inspect`] found airlock's own; a malformed row is
/// an error naming it.
pub(super) fn rows_of_checked(client: &mut impl GenericClient) -> Result<Vec<LedgerRow>, DbError> {
    let rows = client
        .query_typed(&format!("{SELECT_ROWS} ORDER BY l.seq"), &[])
        .map_err(|e| sql_err("reading the ledger", &e))?;
    let rows: Vec<LedgerRow> = rows.iter().map(row_of).collect();
    if let Some((seq, reason)) = rows.iter().find_map(|r| r.malformed().map(|m| (r.seq, m))) {
        return Err(DbError::LedgerBroken { seq, reason });
    }
    Ok(rows)
}

/// The head row alone (none on an empty ledger), checked to be well-formed and to
/// hash to its `row_hash`.
fn head_checked(client: &mut impl GenericClient) -> Result<Vec<LedgerRow>, DbError> {
    let rows = client
        .query_typed(&format!("{SELECT_ROWS} ORDER BY l.seq DESC LIMIT 1"), &[])
        .map_err(|e| sql_err("reading the ledger's head", &e))?;
    let rows: Vec<LedgerRow> = rows.iter().map(row_of).collect();
    let broken = |r: &LedgerRow| {
        r.malformed().or_else(|| {
            (r.compute_hash() != r.row_hash)
                .then(|| "row_hash does not match the row's contents (edited?)".to_string())
        })
    };
    if let Some((seq, reason)) = rows.iter().find_map(|r| broken(r).map(|m| (r.seq, m))) {
        return Err(DbError::LedgerBroken { seq, reason });
    }
    Ok(rows)
}

/// [`read_all`], and the hash chain must hold: what apply, rollback and plan act on.
pub fn read_chained(client: &mut impl GenericClient) -> Result<Vec<LedgerRow>, DbError> {
    let rows = read_all(client)?;
    if let Some((seq, reason)) = verify_chain(&rows) {
        return Err(DbError::LedgerBroken { seq, reason });
    }
    Ok(rows)
}

/// Take the deploy lock inside the caller's transaction, creating the ledger first if
/// this is the database's first apply, and return the ledger's rows, checked
/// ([`inspect`], after the lock, so nobody can change it between the check and the
/// use) and chained. The lock is `SHARE ROW EXCLUSIVE` on `airlock.ledger`:
/// self-conflicting, and it can only be taken (or blocked with a conflicting lock) by
/// roles with write rights on the ledger, which [`inspect`] allows only to its owner
/// and superusers.
///
/// Before there is a ledger there is nothing to lock, and no lock a role without
/// rights in the database could not also take (any role may take any advisory lock,
/// so one squatting a fixed key would block every first apply). So the creation is
/// not serialised by a lock of airlock's: two first applies meet in the catalogs'
/// unique indexes (`pg_namespace`, `pg_class`), where the second waits for the
/// first's transaction; if that commits, the second's creation fails as a duplicate,
/// is rolled back to its savepoint, and the second locks the ledger the first made.
/// Only a session that is itself creating a schema `airlock` can make a first apply
/// wait: the database's owner or a role with CREATE on it, which could as well commit
/// such a schema and have every apply refused as untrusted. The wait is bounded by
/// `lock_timeout`, then refused as [`DbError::LockBusy`] (exit 6) naming the sessions
/// with a write transaction open.
///
/// The lock is first asked for without waiting; only when another session holds it
/// does `on_busy` run (apply's precheck: the ledger's verdict read without the lock,
/// so that a refusal is not kept waiting), then the wait.
///
/// `inspect` holds [`INSPECT`] prepared on this connection (prepared here when `None`),
/// so that PostgreSQL plans it once a connection, not at every deploy transaction.
pub fn lock_for_deploy(
    tx: &mut postgres::Transaction<'_>,
    lock_timeout: &str,
    on_busy: &mut dyn FnMut(&mut postgres::Transaction<'_>) -> Result<(), DbError>,
    inspect: &mut Option<postgres::Statement>,
) -> Result<Locked, DbError> {
    lock_for_deploy_with(tx, lock_timeout, on_busy, Rows::All, inspect)
}

/// Which rows a deploy lock reads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Rows {
    /// Every row, chained.
    All,
    /// The head row alone ([`lock_head_for_record`]).
    Head,
}

fn lock_for_deploy_with(
    tx: &mut postgres::Transaction<'_>,
    lock_timeout: &str,
    on_busy: &mut dyn FnMut(&mut postgres::Transaction<'_>) -> Result<(), DbError>,
    read: Rows,
    inspect: &mut Option<postgres::Statement>,
) -> Result<Locked, DbError> {
    crate::session::hermetic::check_duration("--lock-timeout", lock_timeout)?;
    let set_timeout = format!(
        "SET LOCAL lock_timeout TO {}; ",
        crate::session::hermetic::quote_literal(lock_timeout)
    );
    let lock_table = "LOCK TABLE airlock.ledger IN SHARE ROW EXCLUSIVE MODE";
    // The common case in two round trips: the ledger exists and nobody holds the
    // lock; then the inspection (prepared).
    let mut created_by = None;
    let nowait = format!("{lock_table} NOWAIT");
    let (inspected, squatted) = match try_lock(tx, &set_timeout, &nowait, inspect)? {
        Lock::Taken(inspected, squatted) => (inspected, squatted),
        Lock::Busy => {
            // Someone holds it: the ledger's verdict first, so that a refusal is not
            // kept waiting behind another session's lock; then wait.
            on_busy(tx)?;
            wait_for_lock(tx, &set_timeout, lock_table, lock_timeout, inspect)?
        }
        Lock::OnlineRun => {
            on_busy(tx)?;
            wait_for_lock(tx, &set_timeout, lock_table, lock_timeout, inspect)?
        }
        Lock::NoLedger => {
            created_by = create(tx, &set_timeout, lock_timeout, inspect)?;
            // When another first apply created it while this one waited, the name
            // lookup would still miss it: opening the ledger first makes this session
            // see the catalogs as they are now.
            let lock = format!("{SEE_LEDGER}{lock_table}");
            wait_for_lock(tx, &set_timeout, &lock, lock_timeout, inspect)?
        }
    };
    let rows = match judge(&inspected)?.0 {
        Presence::Present if read == Rows::Head => head_checked(tx)?,
        Presence::Present => rows_of_checked(tx)?,
        _ => vec![],
    };
    if read == Rows::All {
        if let Some((seq, reason)) = verify_chain(&rows) {
            return Err(DbError::LedgerBroken { seq, reason });
        }
    }
    Ok(Locked {
        rows,
        created_by,
        online_squatted: squatted,
    })
}

/// [`lock_for_deploy`] for a record transaction of an online run, which verified the
/// whole ledger under the deploy lock when it began and has held the online lock
/// since: the head row only (well-formed, hashing to its `row_hash`), so each step's
/// record costs the same however long the ledger is. The caller compares it with the
/// head the run last saw or wrote; a full chain check runs again at the next plan or
/// deploy.
pub fn lock_head_for_record(
    tx: &mut postgres::Transaction<'_>,
    lock_timeout: &str,
    inspect: &mut Option<postgres::Statement>,
) -> Result<Option<LedgerRow>, DbError> {
    let locked = lock_for_deploy_with(tx, lock_timeout, &mut |_| Ok(()), Rows::Head, inspect)?;
    Ok(locked.rows.into_iter().next_back())
}

/// Opens the ledger (found through the catalogs' rows, not the name lookup, whose
/// cache may still say there is no schema `airlock`): taking a lock on a relation
/// makes the session take in the catalog changes committed since it last did.
const SEE_LEDGER: &str = "SELECT pg_catalog.pg_relation_size(c.oid) FROM pg_catalog.pg_class c \
    JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace \
    WHERE n.nspname OPERATOR(pg_catalog.=) 'airlock' AND c.relname OPERATOR(pg_catalog.=) 'ledger'; ";

/// What taking the deploy lock met.
enum Lock {
    /// Taken: what [`INSPECT`] said right after, and whether sessions that cannot
    /// write the ledger hold the online key (ignored).
    Taken(String, bool),
    /// Another session holds a conflicting lock (NOWAIT, or `lock_timeout` ran out).
    Busy,
    /// There is no `airlock.ledger` (or no schema `airlock`) to lock.
    NoLedger,
    /// Taken, but another session is running online steps ([`ONLINE_KEY`]).
    OnlineRun,
}

/// The advisory lock a session holds while it runs online steps, between the
/// transactions that record them: a deploy transaction looks for it (under the deploy
/// lock), so no other deploy runs while online steps do. Advisory locks are per
/// database.
///
/// Any role that may connect can take any advisory lock, so a hold counts only when
/// it is an airlock run's ([`ONLINE_HOLDS`](crate::session::sessions::ONLINE_HOLDS)): the session's login may write the
/// ledger (INSERT on `airlock.ledger`), as every airlock run must. A run holds the
/// key's high half with a random low half (`pg_advisory_lock(int4, int4)`), taken
/// under the deploy lock, so that the key a run holds cannot be taken first; the
/// whole 64-bit key, as airlock held it before, still counts. Other holders are
/// ignored, and named in a notice ([`crate::session::sessions::online_squatters`]).
pub const ONLINE_KEY: i64 = 0x6169_726c_6f63_6b31;

/// Whether no airlock run holds the online key (`true`), or only sessions that
/// cannot write the ledger do (`squatted`), or an airlock run does (`busy`). Sent
/// under the deploy lock: a run takes its hold under it too. ([`online_runs`] sends it
/// without the lock, where there may be no ledger: then no holder can write it.)
fn online_free() -> String {
    format!(
        "SELECT CASE WHEN pg_catalog.bool_or({BY_A_LEDGER_WRITER}) THEN 'busy' WHEN pg_catalog.count(*) OPERATOR(pg_catalog.>) 0 THEN 'squatted' ELSE 'true' END
           FROM pg_catalog.pg_locks l LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid OPERATOR(pg_catalog.=) l.pid
           CROSS JOIN (SELECT pg_catalog.to_regclass('airlock.ledger')::pg_catalog.oid AS oid) c
          WHERE {ONLINE_HOLDS};"
    )
}

/// Who holds [`ONLINE_KEY`], as [`online_free`] answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OnlineKey {
    /// Nobody.
    Free,
    /// Only sessions that cannot write the ledger (ignored).
    Squatted,
    /// An airlock run: its online steps run now. Also any answer not understood.
    Busy,
}

impl OnlineKey {
    /// The last row's answer among `messages` (what comes before may answer too).
    fn answered(messages: &[postgres::SimpleQueryMessage]) -> OnlineKey {
        let answer = messages.iter().rev().find_map(|m| match m {
            postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        });
        match answer.as_deref() {
            Some("true") => OnlineKey::Free,
            Some("squatted") => OnlineKey::Squatted,
            _ => OnlineKey::Busy,
        }
    }
}

/// Who holds [`ONLINE_KEY`] now (the activity statistics read afresh).
fn online_key(client: &mut impl GenericClient) -> Result<OnlineKey, DbError> {
    let messages = client
        .simple_query(&format!(
            "SELECT pg_catalog.pg_stat_clear_snapshot(); {}",
            online_free()
        ))
        .map_err(|e| sql_err("looking for online steps", &e))?;
    Ok(OnlineKey::answered(&messages))
}

/// The airlock runs running online steps on this database now, each named as a
/// deploy's refusal names it ([`online_holders`]); empty when none. The question every
/// deploy transaction asks under the deploy lock ([`try_lock`]) and waits on
/// ([`wait_for_online_run`]), asked without the lock: `plan`'s deploy-lock check,
/// so that plan sees what apply will wait for.
pub fn online_runs(client: &mut impl GenericClient) -> Result<Vec<String>, DbError> {
    match online_key(client)? {
        OnlineKey::Busy => online_holders(client),
        OnlineKey::Free | OnlineKey::Squatted => Ok(vec![]),
    }
}

/// Hold the online key for this session (outside any transaction it outlives), under
/// the deploy lock: true when taken (a random low half, [`ONLINE_KEY`]), false when
/// that one is held already.
pub fn hold_online_lock(client: &mut impl GenericClient) -> Result<bool, DbError> {
    let row = client
        .query_one(
            "SELECT pg_catalog.pg_try_advisory_lock(($1::pg_catalog.int8 >> 32)::pg_catalog.int4,
                 pg_catalog.floor(pg_catalog.random() * 4294967295 - 2147483648)::pg_catalog.int4)",
            &[&ONLINE_KEY],
        )
        .map_err(|e| sql_err("taking the online-steps lock", &e))?;
    Ok(row.get(0))
}

/// Let [`ONLINE_KEY`] go (every hold of this session's).
pub fn release_online_lock(client: &mut impl GenericClient) {
    let _ = client.batch_execute("SELECT pg_catalog.pg_advisory_unlock_all()");
}

/// Widen a ledger made before online tiers to record `step` rows, inside the caller's
/// transaction (which holds the deploy lock). Once per ledger; a no-op after.
pub fn allow_steps(client: &mut impl GenericClient) -> Result<(), DbError> {
    let row = client
        .query_one(
            "SELECT pg_catalog.pg_get_constraintdef(k.oid, true) FROM pg_catalog.pg_constraint k \
              WHERE k.conrelid OPERATOR(pg_catalog.=) 'airlock.ledger'::pg_catalog.regclass \
                AND k.conname OPERATOR(pg_catalog.=) 'ledger_event_check'",
            &[],
        )
        .map_err(|e| sql_err("reading the ledger's events", &e))?;
    let def: String = row.get(0);
    if def.contains("'step'") {
        return Ok(());
    }
    client
        .batch_execute(
            "ALTER TABLE airlock.ledger DROP CONSTRAINT ledger_event_check, \
             ADD CONSTRAINT ledger_event_check CHECK (event IN ('apply', 'rollback', 'step'))",
        )
        .map_err(|e| sql_err("letting the ledger record online steps (its owner or a superuser must run this apply once)", &e))
}

/// Widen a ledger made before deliveries were recorded to record `receipt` rows (the
/// event, and the columns it lacks, in order), inside the caller's transaction (which
/// holds the deploy lock). Once per ledger; a no-op after (one catalog read). True when
/// it widened the ledger just now.
pub fn allow_receipts(client: &mut impl GenericClient) -> Result<bool, DbError> {
    let row = client
        .query_one(
            "SELECT pg_catalog.pg_get_constraintdef(k.oid, true), \
                    ARRAY(SELECT a.attname::pg_catalog.text FROM pg_catalog.pg_attribute a \
                           WHERE a.attrelid OPERATOR(pg_catalog.=) k.conrelid AND a.attnum OPERATOR(pg_catalog.>) 0 \
                             AND NOT a.attisdropped) \
               FROM pg_catalog.pg_constraint k \
              WHERE k.conrelid OPERATOR(pg_catalog.=) 'airlock.ledger'::pg_catalog.regclass \
                AND k.conname OPERATOR(pg_catalog.=) 'ledger_event_check'",
            &[],
        )
        .map_err(|e| sql_err("reading the ledger's events", &e))?;
    let def: String = row.get(0);
    let columns: Vec<String> = row.get(1);
    let mut alter = vec![];
    if !def.contains("'receipt'") {
        alter.push(
            "DROP CONSTRAINT ledger_event_check, ADD CONSTRAINT ledger_event_check CHECK (event IN ('apply', 'rollback', 'step', 'receipt'))".to_string(),
        );
    }
    for column in ["bundle_tiers", "approvals", "receipt"] {
        if !columns.iter().any(|c| c == column) {
            alter.push(format!("ADD COLUMN {column} text"));
        }
    }
    if alter.is_empty() {
        return Ok(false);
    }
    client
        .batch_execute(&format!("ALTER TABLE airlock.ledger {}", alter.join(", ")))
        .map_err(|e| sql_err("letting the ledger record delivered receipts (its owner or a superuser must run an apply once)", &e))?;
    Ok(true)
}

/// `lock` in a savepoint and whether the online lock is free, in one message; then
/// [`INSPECT`] ([`inspected`]).
fn try_lock(
    tx: &mut postgres::Transaction<'_>,
    set_timeout: &str,
    lock: &str,
    inspect: &mut Option<postgres::Statement>,
) -> Result<Lock, DbError> {
    match tx.simple_query(&format!(
        "SAVEPOINT airlock_lock; {set_timeout}{lock}; SELECT pg_catalog.pg_stat_clear_snapshot(); {}",
        online_free()
    )) {
        Ok(messages) => {
            let squatted = match OnlineKey::answered(&messages) {
                OnlineKey::Free => false,
                OnlineKey::Squatted => true,
                OnlineKey::Busy => {
                    // An airlock run holds the online key: the deploy lock is let go
                    // again (so that run can record its steps) before anyone waits.
                    tx.batch_execute(
                        "ROLLBACK TO SAVEPOINT airlock_lock; RELEASE SAVEPOINT airlock_lock",
                    )
                    .map_err(|e| sql_err("letting the deploy lock go", &e))?;
                    return Ok(Lock::OnlineRun);
                }
            };
            tx.batch_execute("RELEASE SAVEPOINT airlock_lock")
                .map_err(|e| sql_err("taking the deploy lock", &e))?;
            inspected(tx, inspect).map(|i| Lock::Taken(i, squatted))
        }
        Err(e) => {
            let code = crate::sqlstate(&e).map(str::to_string);
            tx.batch_execute("ROLLBACK TO SAVEPOINT airlock_lock")
                .map_err(|e| sql_err("after taking the deploy lock failed", &e))?;
            match code.as_deref() {
                Some("55P03") => Ok(Lock::Busy),
                Some("42P01") | Some("3F000") => Ok(Lock::NoLedger),
                // A login that may not lock it (one that only reads it): the ledger
                // says whose it is, and that is the refusal.
                Some("42501") => {
                    judge(&inspected(tx, inspect)?)?;
                    Err(sql_err("taking the deploy lock", &e))
                }
                _ => Err(sql_err("taking the deploy lock", &e)),
            }
        }
    }
}

/// What [`INSPECT`] says now: the statement prepared once a connection (`inspect`
/// holds it), so that its plan is kept.
fn inspected(
    tx: &mut postgres::Transaction<'_>,
    inspect: &mut Option<postgres::Statement>,
) -> Result<String, DbError> {
    let st = match inspect {
        Some(st) => st.clone(),
        None => {
            let st = tx
                .prepare(INSPECT)
                .map_err(|e| sql_err("inspecting the ledger", &e))?;
            inspect.insert(st).clone()
        }
    };
    tx.query_opt(&st, &[])
        .map_err(|e| sql_err("inspecting the ledger", &e))?
        .and_then(|row| row.get::<_, Option<String>>(0))
        .ok_or_else(|| DbError::Sql {
            context: "inspecting the ledger".into(),
            message: "the catalogs sent no answer".into(),
        })
}

/// Take the deploy lock, waiting up to `lock_timeout`; what [`INSPECT`] said after,
/// and whether the online key is squatted ([`Lock::Taken`]).
///
/// Taken while an airlock run holds the online key (its online steps run between
/// transactions), the deploy lock is let go, the key is looked at again until no run
/// holds it (within `lock_timeout`), and the deploy lock is taken again. A holder that
/// has gone meanwhile — PostgreSQL lets a committing session's table locks go before
/// its advisory locks — means only: take it again. The key is looked at between
/// statements, never waited for inside one: a statement waiting on the key would keep
/// the run's `CREATE INDEX CONCURRENTLY` waiting for its snapshot (a deadlock).
fn wait_for_lock(
    tx: &mut postgres::Transaction<'_>,
    set_timeout: &str,
    lock_table: &str,
    lock_timeout: &str,
    inspect: &mut Option<postgres::Statement>,
) -> Result<(String, bool), DbError> {
    let deadline = crate::session::hermetic::duration_of(lock_timeout).map(|d| Instant::now() + d);
    loop {
        match try_lock(tx, set_timeout, lock_table, inspect)? {
            Lock::OnlineRun => wait_for_online_run(tx, deadline, lock_timeout)?,
            other => return locked_or_refused(tx, other, lock_timeout),
        }
    }
}

/// Look at the online key between statements, backing off, until no airlock run holds
/// it; refused as [`DbError::LockBusy`] naming the run when `deadline` passes.
fn wait_for_online_run(
    tx: &mut postgres::Transaction<'_>,
    deadline: Option<Instant>,
    lock_timeout: &str,
) -> Result<(), DbError> {
    let mut pause = Duration::from_millis(10);
    loop {
        if online_key(tx)? != OnlineKey::Busy {
            return Ok(());
        }
        if deadline.is_some_and(|d| Instant::now() + pause > d) {
            // Named as they are now: a run that ended since the look leaves the key
            // free, and the lock is tried again rather than refused for no one.
            let holders = online_holders(tx)?;
            if holders.is_empty() && online_key(tx)? != OnlineKey::Busy {
                return Ok(());
            }
            return Err(DbError::LockBusy {
                waited: format!("{lock_timeout} (online steps run between transactions)"),
                holders,
            });
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

/// What a wait for the deploy lock ended in, other than an online run.
fn locked_or_refused(
    tx: &mut postgres::Transaction<'_>,
    lock: Lock,
    lock_timeout: &str,
) -> Result<(String, bool), DbError> {
    match lock {
        Lock::Taken(inspected, squatted) => Ok((inspected, squatted)),
        Lock::Busy => Err(DbError::LockBusy {
            waited: lock_timeout.to_string(),
            holders: lock_holders(tx)?,
        }),
        Lock::OnlineRun => Err(DbError::LockBusy {
            waited: format!("{lock_timeout} (online steps run between transactions)"),
            holders: online_holders(tx)?,
        }),
        // Created (or found created) just now, and gone again: someone dropped it.
        Lock::NoLedger => Err(DbError::State(
            "airlock.ledger vanished while this apply was creating or locking it".into(),
        )),
    }
}

/// The ledger under the deploy lock ([`lock_for_deploy`]).
pub struct Locked {
    /// Every row, checked and chained ([`lock_for_deploy`]); the head row alone,
    /// checked, for [`lock_head_for_record`].
    pub rows: Vec<LedgerRow>,
    /// The (sub)transaction that created the ledger just now, ended (released):
    /// its catalog rows are all the creation wrote.
    pub created_by: Option<u32>,
    /// Sessions that cannot write the ledger hold the online key: ignored (an airlock
    /// run's hold is a ledger writer's), to be named in a notice
    /// ([`crate::session::sessions::online_squatters`]).
    pub online_squatted: bool,
}

/// The subtransaction that created the ledger, as its table's catalog row says (all
/// of the creation runs in it).
const CREATED_BY: &str = "SELECT c.xmin::pg_catalog.text FROM pg_catalog.pg_class c \
    WHERE c.oid OPERATOR(pg_catalog.=) 'airlock.ledger'::pg_catalog.regclass;";

/// What creating the ledger runs in a schema `airlock` that exists (as `airlock
/// setup` makes it): the table, its comment, its append-only function and trigger.
pub(crate) fn create_in_schema_sql() -> String {
    CREATE
        .replacen("CREATE SCHEMA IF NOT EXISTS airlock;", "", 1)
        .trim()
        .to_string()
}

/// Create the ledger (see [`lock_for_deploy`]) unless a concurrent first apply created
/// it first; the subtransaction that created it, when this one did.
fn create(
    tx: &mut postgres::Transaction<'_>,
    set_timeout: &str,
    lock_timeout: &str,
    inspect: &mut Option<postgres::Statement>,
) -> Result<Option<u32>, DbError> {
    let presence = judge(&inspected(tx, inspect)?)?.0;
    if presence == Presence::Present {
        return Ok(None);
    }
    let create = if presence == Presence::Absent {
        CREATE.to_string()
    } else {
        create_in_schema_sql()
    };
    let e = match tx.simple_query(&format!(
        "SAVEPOINT airlock_create; {set_timeout}{create}{CREATED_BY} RELEASE SAVEPOINT airlock_create"
    )) {
        Ok(messages) => {
            return Ok(messages.iter().find_map(|m| match m {
                postgres::SimpleQueryMessage::Row(r) => r.get(0).and_then(|x| x.parse().ok()),
                _ => None,
            }))
        }
        Err(e) => e,
    };
    let code = crate::sqlstate(&e).map(str::to_string);
    tx.batch_execute("ROLLBACK TO SAVEPOINT airlock_create")
        .map_err(|e| sql_err("after creating the ledger failed", &e))?;
    match code.as_deref() {
        Some("55P03") => Err(DbError::LockBusy {
            waited: lock_timeout.to_string(),
            holders: creation_holders(tx)?,
        }),
        // Another first apply committed the schema, table or function first: lock and
        // inspect what it made.
        Some("23505") | Some("42P06") | Some("42P07") | Some("42710") | Some("42723") => Ok(None),
        _ => Err(sql_err("creating the ledger", &e)),
    }
}

/// Fields of a new row; seq, at, prev_hash and row_hash are filled by [`append`].
pub struct NewRow {
    pub event: &'static str,
    pub bundle_name: String,
    pub bundle_version: String,
    pub sequence: i64,
    pub bundle_id: String,
    pub tiers: Vec<String>,
    pub params: std::collections::BTreeMap<String, String>,
    pub operator: String,
    pub fingerprint_before: String,
    pub fingerprint_after: String,
    /// Every tier of the bundle, in order (recorded when the ledger has the column).
    pub bundle_tiers: Vec<String>,
    /// The approvals that opened a ratified gate for this row's tiers (recorded when
    /// there are some and the ledger has the column).
    pub approvals: Vec<RecordedApproval>,
    /// A `receipt` row's delivery (the ledger must have the column: [`allow_receipts`]).
    pub receipt: Option<Delivery>,
}

/// Append one chained row inside the caller's transaction, which holds the deploy
/// lock (so the ledger exists and was checked). The row the server stored is read
/// back: anything but exactly the computed row is an error, never a success.
pub fn append(client: &mut impl GenericClient, new: NewRow) -> Result<LedgerRow, DbError> {
    // The head and the clock in one round trip (one row, the head's columns NULL on
    // an empty ledger).
    let last = client
        .query_typed_one(
            "SELECT l.seq, l.row_hash, to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), \
             EXISTS (SELECT FROM pg_catalog.pg_attribute a WHERE a.attrelid = 'airlock.ledger'::pg_catalog.regclass \
                     AND a.attname = 'bundle_tiers' AND NOT a.attisdropped), \
             EXISTS (SELECT FROM pg_catalog.pg_attribute a WHERE a.attrelid = 'airlock.ledger'::pg_catalog.regclass \
                     AND a.attname = 'approvals' AND NOT a.attisdropped), \
             EXISTS (SELECT FROM pg_catalog.pg_attribute a WHERE a.attrelid = 'airlock.ledger'::pg_catalog.regclass \
                     AND a.attname = 'receipt' AND NOT a.attisdropped) \
             FROM (SELECT 1) o LEFT JOIN (SELECT seq, row_hash FROM airlock.ledger ORDER BY seq DESC LIMIT 1) l ON true",
            &[],
        )
        .map_err(|e| sql_err("reading the ledger", &e))?;
    let at: String = last.get(2);
    let records_bundle_tiers: bool = last.get(3);
    let records_approvals: bool = last.get(4);
    let records_receipts: bool = last.get(5);
    if new.receipt.is_some() && !records_receipts {
        return Err(DbError::State(
            "airlock.ledger has no receipt column: it was not widened to record deliveries".into(),
        ));
    }
    let (seq, prev_hash) = match last.get::<_, Option<i64>>(0) {
        Some(seq) => (seq + 1, last.get::<_, String>(1)),
        None => (1, GENESIS.to_string()),
    };
    let mut row = LedgerRow {
        seq,
        at,
        event: new.event.into(),
        bundle_name: new.bundle_name,
        bundle_version: new.bundle_version,
        sequence: new.sequence,
        bundle_id: new.bundle_id,
        tiers: serde_json::to_string(&new.tiers).expect("json"),
        params: serde_json::to_string(&new.params).expect("json"),
        operator: new.operator,
        fingerprint_before: new.fingerprint_before,
        fingerprint_after: new.fingerprint_after,
        prev_hash,
        row_hash: String::new(),
        bundle_tiers: records_bundle_tiers
            .then(|| serde_json::to_string(&new.bundle_tiers).expect("json")),
        approvals: (records_approvals && !new.approvals.is_empty())
            .then(|| serde_json::to_string(&new.approvals).expect("json")),
        receipt: new
            .receipt
            .as_ref()
            .map(|d| serde_json::to_string(d).expect("json")),
    };
    row.row_hash = row.compute_hash();
    let stored = insert(client, &row)?;
    let back = client
        .query_typed(
            &format!("{SELECT_ROWS} WHERE l.seq = $1"),
            &[(&row.seq, Type::INT8)],
        )
        .map_err(|e| sql_err("reading back the ledger row", &e))?;
    if stored.len() != 1 || row_of(&stored[0]) != row || back.len() != 1 || row_of(&back[0]) != row
    {
        return Err(DbError::LedgerUntrusted {
            login: None,
            problems: vec![format!(
                "the ledger did not store the row airlock wrote (seq {}): something in the database intercepts writes to airlock.ledger; everything was rolled back",
                row.seq
            )],
        });
    }
    Ok(row)
}

/// The rows of `airlock.ledger` this backend inserted and has not yet reported to the
/// statistics (0 when there is no ledger): PostgreSQL's count of its own pending writes
/// (`pg_stat_get_xact_tuples_inserted`), subtransactions rolled back included, which
/// nothing that runs in a transaction can reset. It is reported (and starts again from
/// 0) only between transactions, and not at every one: what a transaction inserted is
/// the count at its end less the count at its start.
const INSERTED: &str = "SELECT coalesce(pg_catalog.pg_stat_get_xact_tuples_inserted(\
    pg_catalog.to_regclass('airlock.ledger')::pg_catalog.oid), 0)";

/// [`INSERTED`] now: read when an airlock transaction begins, before any bundle SQL.
pub fn inserted(client: &mut impl GenericClient) -> Result<i64, DbError> {
    Ok(client
        .query_typed_one(INSERTED, &[])
        .map_err(|e| sql_err("counting the ledger rows this session wrote", &e))?
        .get(0))
}

/// The last look before COMMIT: refused unless this transaction inserted exactly
/// `ours` rows into the ledger (the ones airlock appended: one for a run, one per
/// receipt `reissue` delivers, none for an online step's own transaction; `since`:
/// [`inserted`] when it began). The ledger takes only airlock's rows. A row
/// that code fired by bundle SQL inserted (back at the deploy login, `RESET ROLE`,
/// chained onto the head so that it reads as airlock's) would otherwise be chained
/// under airlock's own and count as evidence.
pub fn ours_only(client: &mut impl GenericClient, since: i64, ours: i64) -> Result<(), DbError> {
    let inserted = inserted(client)? - since;
    if inserted == ours {
        return Ok(());
    }
    Err(DbError::LedgerForged {
        message: format!(
            "{inserted} row(s) were inserted into airlock.ledger in this transaction, {ours} of them airlock's: something that ran in it (code that bundle SQL fired, acting as the deploy login) wrote a ledger row airlock did not append; refused before COMMIT, rolled back, nothing changed"
        ),
    })
}

/// INSERT `row` (with `bundle_tiers` and `approvals` when the row has them, that is
/// when the ledger has the columns); the row as the server returned it.
fn insert(client: &mut impl GenericClient, row: &LedgerRow) -> Result<Vec<postgres::Row>, DbError> {
    fn text(v: &String) -> (&(dyn postgres::types::ToSql + Sync), Type) {
        (v, Type::TEXT)
    }
    let mut params = vec![
        (&row.seq as &(dyn postgres::types::ToSql + Sync), Type::INT8),
        text(&row.at),
        text(&row.event),
        text(&row.bundle_name),
        text(&row.bundle_version),
        (&row.sequence, Type::INT8),
        text(&row.bundle_id),
        text(&row.tiers),
        text(&row.params),
        text(&row.operator),
        text(&row.fingerprint_before),
        text(&row.fingerprint_after),
        text(&row.prev_hash),
        text(&row.row_hash),
    ];
    let mut column = String::new();
    let mut value = String::new();
    for (name, v) in [
        ("bundle_tiers", &row.bundle_tiers),
        ("approvals", &row.approvals),
        ("receipt", &row.receipt),
    ] {
        if let Some(t) = v {
            params.push(text(t));
            column.push_str(&format!(", {name}"));
            value.push_str(&format!(",${}", params.len()));
        }
    }
    client
        .query_typed(
            &format!("INSERT INTO airlock.ledger AS l (seq, at, event, bundle_name, bundle_version, sequence, bundle_id, tiers, params, operator, fingerprint_before, fingerprint_after, prev_hash, row_hash{column}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14{value}) RETURNING {}", &SELECT_ROWS["SELECT ".len()..SELECT_ROWS.find(" FROM").expect("FROM")]),
            &params,
        )
        .map_err(|e| sql_err("writing the ledger row", &e))
}

/// The first row that breaks the chain, with the reason.
pub fn verify_chain(rows: &[LedgerRow]) -> Option<(i64, String)> {
    let mut prev = GENESIS.to_string();
    for (expect_seq, r) in (1i64..).zip(rows.iter()) {
        if r.seq != expect_seq {
            return Some((
                r.seq,
                format!("expected seq {expect_seq}: a row is missing or was inserted out of order"),
            ));
        }
        if r.prev_hash != prev {
            return Some((r.seq, "prev_hash does not match the previous row's row_hash (a row was removed or edited)".into()));
        }
        let h = r.compute_hash();
        if h != r.row_hash {
            return Some((
                r.seq,
                format!(
                    "row_hash does not match the row's content (edited?): stored {}, computed {}",
                    &r.row_hash[..r.row_hash.len().min(16)],
                    &h[..16]
                ),
            ));
        }
        prev = r.row_hash.clone();
    }
    None
}

/// What the ledger says about one bundle id: the tiers currently applied (since its
/// last rollback), and the last apply row.
#[derive(Clone, Debug, Default)]
pub struct BundleState {
    pub applied: Vec<String>,
    /// The last row of the run so far (an apply, or an online step): the schema it
    /// left is the one a continuation expects.
    pub last_apply: Option<LedgerRow>,
    /// Online steps recorded per tier (statements completed, in order) since the last
    /// rollback; a tier's last statement is recorded by its `apply` row.
    pub steps: BTreeMap<String, usize>,
    /// The first apply since the last rollback: its `fingerprint_before` is the schema
    /// the bundle's rollback promises to return to.
    pub first_apply: Option<LedgerRow>,
}

impl BundleState {
    /// The tiers a rollback undoes, in the bundle's order: applied, or with online
    /// steps recorded.
    pub fn touched(&self, m: &airlock_bundle::manifest::Manifest) -> Vec<String> {
        m.tier
            .iter()
            .map(|t| &t.name)
            .filter(|t| self.applied.contains(t) || self.steps.contains_key(*t))
            .cloned()
            .collect()
    }
}

pub fn state_of(rows: &[LedgerRow], bundle_id: &str) -> BundleState {
    let mut st = BundleState::default();
    for r in rows.iter().filter(|r| r.bundle_id == bundle_id) {
        match r.event.as_str() {
            "apply" | "step" => {
                if r.event == "apply" {
                    st.applied.extend(r.tier_names());
                } else {
                    for t in r.tier_names() {
                        *st.steps.entry(t).or_default() += 1;
                    }
                }
                st.last_apply = Some(r.clone());
                if st.first_apply.is_none() {
                    st.first_apply = Some(r.clone());
                }
            }
            "rollback" => {
                st.applied.clear();
                st.steps.clear();
                st.last_apply = None;
                st.first_apply = None;
            }
            // A receipt delivered changes nothing in the database.
            _ => {}
        }
    }
    st
}

/// A ledger row for unit tests of what reads rows (`policy`, `train`): the fields
/// they judge given, the rest empty.
#[cfg(test)]
pub(crate) fn test_row(
    seq: i64,
    event: &str,
    (name, version, sequence): (&str, String, i64),
    id: &str,
    tiers: &[&str],
) -> LedgerRow {
    LedgerRow {
        seq,
        at: format!("t{seq}"),
        event: event.into(),
        bundle_name: name.into(),
        bundle_version: version,
        sequence,
        bundle_id: id.into(),
        tiers: serde_json::to_string(tiers).unwrap(),
        params: "{}".into(),
        operator: "op".into(),
        fingerprint_before: String::new(),
        fingerprint_after: String::new(),
        prev_hash: String::new(),
        row_hash: String::new(),
        bundle_tiers: None,
        approvals: None,
        receipt: None,
    }
}
