//! `airlock.ledger`: append-only, hash-chained record of applies and rollbacks.
//!
//! Invariant: `row_hash = sha256(prev_hash || canonical row)` where the canonical row
//! is the sorted-key JSON of every column but `row_hash`; the first row's `prev_hash`
//! is 64 zeros. The table is created by the first apply, inside its transaction, and
//! is never touched by gate/plan/status. A trigger refuses UPDATE/DELETE/TRUNCATE.

use super::{sql_err, DbError};
use postgres::GenericClient;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

const CREATE: &str = r#"
CREATE SCHEMA IF NOT EXISTS airlock;
CREATE TABLE airlock.ledger (
    seq                bigint PRIMARY KEY,
    at                 text   NOT NULL,
    event              text   NOT NULL CHECK (event IN ('apply', 'rollback')),
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
    row_hash           text   NOT NULL UNIQUE
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
}

/// Whether `airlock.ledger` exists, as of this statement's snapshot.
///
/// Not `to_regclass()`: that answers from the backend's catalog cache without taking a
/// lock, so it processes no invalidation messages. An apply that waited on the deploy
/// lock while another created the ledger would still be told "no ledger" and apply the
/// release a second time. A query on the catalogs uses a fresh MVCC snapshot, and
/// opening them processes the pending invalidations for the statements that follow.
pub fn exists(client: &mut impl GenericClient) -> Result<bool, DbError> {
    let row = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'airlock' AND c.relname = 'ledger')",
            &[],
        )
        .map_err(|e| sql_err("reading the ledger", &e))?;
    Ok(row.get(0))
}

/// Every row in order; empty when the ledger does not exist yet (never creates it).
pub fn read_all(client: &mut impl GenericClient) -> Result<Vec<LedgerRow>, DbError> {
    if !exists(client)? {
        return Ok(vec![]);
    }
    let rows = client
        .query(
            "SELECT seq, at, event, bundle_name, bundle_version, sequence, bundle_id, tiers, params, operator, fingerprint_before, fingerprint_after, prev_hash, row_hash FROM airlock.ledger ORDER BY seq",
            &[],
        )
        .map_err(|e| sql_err("reading the ledger", &e))?;
    Ok(rows
        .iter()
        .map(|r| LedgerRow {
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
        })
        .collect())
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
}

/// Create the ledger if needed and append one chained row (inside the caller's
/// transaction, which holds the deploy lock).
pub fn append(client: &mut impl GenericClient, new: NewRow) -> Result<LedgerRow, DbError> {
    if !exists(client)? {
        client
            .batch_execute(CREATE)
            .map_err(|e| sql_err("creating the ledger", &e))?;
    }
    let last = client
        .query_opt(
            "SELECT seq, row_hash FROM airlock.ledger ORDER BY seq DESC LIMIT 1",
            &[],
        )
        .map_err(|e| sql_err("reading the ledger", &e))?;
    let (seq, prev_hash) = match last {
        Some(r) => (r.get::<_, i64>(0) + 1, r.get::<_, String>(1)),
        None => (1, GENESIS.to_string()),
    };
    let at: String = client
        .query_one("SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')", &[])
        .map_err(|e| sql_err("reading the clock", &e))?
        .get(0);
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
    };
    row.row_hash = row.compute_hash();
    client
        .execute(
            "INSERT INTO airlock.ledger (seq, at, event, bundle_name, bundle_version, sequence, bundle_id, tiers, params, operator, fingerprint_before, fingerprint_after, prev_hash, row_hash) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14)",
            &[&row.seq, &row.at, &row.event, &row.bundle_name, &row.bundle_version, &row.sequence, &row.bundle_id, &row.tiers, &row.params, &row.operator, &row.fingerprint_before, &row.fingerprint_after, &row.prev_hash, &row.row_hash],
        )
        .map_err(|e| sql_err("writing the ledger row", &e))?;
    Ok(row)
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
    pub last_apply: Option<LedgerRow>,
}

pub fn state_of(rows: &[LedgerRow], bundle_id: &str) -> BundleState {
    let mut st = BundleState::default();
    for r in rows.iter().filter(|r| r.bundle_id == bundle_id) {
        match r.event.as_str() {
            "apply" => {
                st.applied.extend(r.tier_names());
                st.last_apply = Some(r.clone());
            }
            _ => {
                st.applied.clear();
                st.last_apply = None;
            }
        }
    }
    st
}
