//! The quorum of signed approvals a gated tier needs (`[ratification]`): judged by
//! one function for `gate`, `plan`, `apply` (under the lock) and `--wait`'s polls.
//!
//! Invariant: a run of a bundle that declares `[ratification]` is READY only with a
//! quorum judged here, from the approval files the operator named and the rows of the
//! bundle's approvals table, read again at each judgement (an approval dropped into a
//! directory or inserted into the table counts at the next poll) and each verified
//! with the trust store's approver keys. A row is read as the gate role, in a
//! read-only savepoint that is rolled back, and counts only by its signature: being
//! in the table proves nothing.

use crate::gates::gate::{self, GateReport, Harness};
use crate::{pg_message, quote_ident, DbError};
use airlock_bundle::approval::{self, QuorumReport, RunClaim, SignedApproval};
use airlock_bundle::spec::Ratification;
use airlock_bundle::trust::TrustStore;
use airlock_bundle::verified::VerifiedBundle;
use postgres::Transaction;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The approvals an operator brings (`--approval FILE|DIR`) and the trust store that
/// judges them.
pub struct Approvals {
    pub store: airlock_bundle::trust::TrustStore,
    pub paths: Vec<std::path::PathBuf>,
}

/// What a run claims, as its approvals are judged: the run's params (an approval
/// names them) and the approvals the operator named (`None`: none).
pub struct Claim<'a> {
    pub params: &'a BTreeMap<String, String>,
    pub approvals: Option<&'a Approvals>,
}

/// Most rows read from the approvals table (more is refused, not truncated).
const MAX_ROWS: usize = 1000;

/// The bundle's quorum judged for this run, now, from the files named and, when the
/// bundle names one, its approvals table read inside `tx` with `harness`; `None` when
/// the bundle asks for no ratification.
fn judge(
    vb: &VerifiedBundle,
    opts: &Claim<'_>,
    tx: &mut Transaction<'_>,
    harness: &Harness,
) -> Result<Option<QuorumReport>, DbError> {
    let m = vb.manifest();
    let Some(ratification) = m.ratification.as_ref() else {
        return Ok(None);
    };
    let claim = RunClaim {
        bundle_id: vb.id(),
        manifest: m,
        params: opts.params,
    };
    let no_store = TrustStore {
        path: PathBuf::new(),
        threshold: 1,
        keys: vec![],
        require_signed_receipts: false,
        rotation: None,
    };
    let store = opts.approvals.map_or(&no_store, |a| &a.store);
    // A path that vanished since the command started reads as no approval: the
    // quorum says what is missing.
    let mut read: Vec<SignedApproval> = opts
        .approvals
        .iter()
        .flat_map(|a| a.paths.iter())
        .flat_map(|p| approval::read_approvals(std::slice::from_ref(p)).unwrap_or_default())
        .collect();
    let mut unread = vec![];
    match read_table(tx, harness, ratification)? {
        TableRead::None => {}
        TableRead::Rows(rows) => read.extend(rows),
        TableRead::Unread(why) => unread.push(why),
    }
    let mut report = approval::judge_quorum(store, ratification, &claim, &read, chrono::Utc::now());
    report.unread = unread;
    Ok(Some(report))
}

/// Whether running the tiers `idx` needs the bundle's quorum: one of them names a
/// gate `[ratification]` guards.
fn needed(vb: &VerifiedBundle, idx: &[usize]) -> bool {
    let m = vb.manifest();
    m.ratification
        .as_ref()
        .is_some_and(|r| idx.iter().any(|&i| r.guards(&m.tier[i].gates)))
}

/// The gate report a run acts on: the database's `gates` run inside `tx`, then the
/// quorum, judged when the tiers `idx` need it (`None`: every tier, as `airlock gate`
/// asks). READY needs both; `gate`, `plan`, `apply` and `--wait`'s polls all call this.
pub fn gate_report(
    vb: &VerifiedBundle,
    opts: &Claim<'_>,
    idx: Option<&[usize]>,
    tx: &mut Transaction<'_>,
    gates: &[(String, String, String)],
    harness: &Harness,
) -> Result<GateReport, DbError> {
    let report = gate::run_gates(tx, gates, harness)?;
    let quorum = match idx {
        Some(idx) if !needed(vb, idx) => None,
        _ => judge(vb, opts, tx, harness)?,
    };
    Ok(report.with_ratification(quorum))
}

/// What the approvals table gave.
enum TableRead {
    /// The bundle names no table.
    None,
    Rows(Vec<SignedApproval>),
    /// It could not be read (the server's reason): none of its rows count.
    Unread(String),
}

/// The rows of the bundle's approvals table, read as the gate role in a read-only
/// savepoint (rolled back; no policies), in a stable order.
fn read_table(
    tx: &mut Transaction<'_>,
    harness: &Harness,
    r: &Ratification,
) -> Result<TableRead, DbError> {
    let Some((schema, name)) = r.table_parts() else {
        return Ok(TableRead::None);
    };
    let table = format!("{schema}.{name}");
    let sql = format!(
        "SELECT document::text, signature::text FROM {}.{} ORDER BY 1, 2 LIMIT {}",
        quote_ident(schema),
        quote_ident(name),
        MAX_ROWS + 1
    );
    let (rows, effects) = gate::in_gate_savepoint(tx, harness, |sp| sp.query(&sql, &[]))?;
    if let Some(refused) = effects.refusal("approvals table read") {
        return Ok(TableRead::Unread(format!("table {table}: {refused}")));
    }
    let rows = match rows {
        Ok(rows) => rows,
        Err(e) => {
            return Ok(TableRead::Unread(format!(
                "table {table} could not be read as the gate role: {}; the gate role needs SELECT on it (`airlock plan` lists the grant)",
                pg_message(&e)
            )))
        }
    };
    if rows.len() > MAX_ROWS {
        return Ok(TableRead::Unread(format!(
            "table {table} holds more than {MAX_ROWS} rows; delete the approvals of earlier releases"
        )));
    }
    Ok(TableRead::Rows(
        rows.iter()
            .enumerate()
            .map(|(i, row)| SignedApproval {
                file: format!("{table} row {}", i + 1),
                document: row.get::<_, Option<String>>(0).unwrap_or_default(),
                signature: row.get::<_, Option<String>>(1).unwrap_or_default(),
            })
            .collect(),
    ))
}
