//! gate, plan, apply and rollback against the target.
//!
//! Invariant: nothing is written unless, inside the same transaction, the deploy lock
//! is held, the ledger permits it, the gates of the tiers about to run said READY under
//! read-only enforcement, and the preflight (or no-drift) check held; any failure before
//! COMMIT rolls back everything, ledger included. Params reach SQL only through
//! `set_config('airlock.NAME', value, true)`.

use super::bundle_role;
use super::conn::{self, ConnSpec, ServerInfo};
use super::described::Tracker;
use super::exec;
use super::gate::{self, GateReport, Harness, ProbeReport};
use super::ledger::{self, LedgerRow, NewRow};
pub use super::plan::PlanReport;
use super::session::{self, BundlePins, SessionFacts};
use super::{remembered, sql_err, sqlstate, DbError};
use airlock_bundle::archive::VerifyError;
use airlock_bundle::manifest::Manifest;
use airlock_bundle::spec::TxMode;
use airlock_bundle::verified::VerifiedBundle;
use postgres::{Client, Transaction};
use schemars::JsonSchema;
use serde::Serialize;
use std::collections::BTreeMap;

/// What the operator asked for, resolved.
pub struct Options<'a> {
    pub conn: &'a ConnSpec,
    /// The database the name guard requires (the bundle's target, or a rehearsal clone).
    pub expected_db: String,
    pub params: BTreeMap<String, String>,
    pub through: Option<String>,
    pub lock_timeout: String,
    pub statement_timeout: String,
    pub allow_drift: bool,
    pub gate_role: Option<String>,
    /// Only rehearsals on a clone set this (`--assume-gates`).
    pub skip_gates: bool,
    /// Remember the ledger head on this host after a commit, and keep the schema
    /// description between runs (read by `plan` and deploys, written after a commit);
    /// not for rehearsal clones, which are dropped.
    pub remember: bool,
    /// Asked on a terminal before anything changes; false cancels.
    pub confirm: Option<&'a dyn Fn(&PlanReport) -> bool>,
    /// Told which tier and file run (a terminal's progress line); `None` tells nobody.
    pub observer: Option<&'a dyn Observer>,
}

/// Watches a deploy as it runs, between the messages airlock sends (never inside the
/// server's work). Every method has a do-nothing default.
pub trait Observer {
    /// `files` files of `bytes` bytes in all are about to run (apply: the tiers of this
    /// transaction; rollback: the rollback files).
    fn start(&self, _event: &str, _files: usize, _bytes: u64) {}
    /// Tier `index` (0-based) of `of` begins.
    fn tier(&self, _index: usize, _of: usize, _name: &str) {}
    /// A file of `bytes` bytes is sent and runs.
    fn file(&self, _path: &str, _bytes: u64) {}
    /// That file ran.
    fn file_done(&self, _path: &str, _bytes: u64) {}
}

/// The files of these tiers, with their sizes (for an [`Observer`]).
fn tier_files<'m>(m: &'m Manifest, idx: &[usize]) -> Vec<(&'m str, u64)> {
    idx.iter()
        .flat_map(|&i| m.tier[i].files.iter())
        .map(|f| (f.as_str(), file_size(m, f)))
        .collect()
}

fn file_size(m: &Manifest, path: &str) -> u64 {
    m.files
        .binary_search_by(|f| f.path.as_str().cmp(path))
        .map(|i| m.files[i].size)
        .unwrap_or(0)
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct PlannedFile {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct PlannedTier {
    pub index: usize,
    pub name: String,
    pub gates: Vec<String>,
    pub files: Vec<PlannedFile>,
}

/// The receipt: what happened, tied to the bundle id. Also the `--json` of apply/rollback.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Receipt {
    pub format: String,
    /// apply | rollback
    pub event: String,
    /// applied | rolled-back | nothing-to-roll-back
    pub outcome: String,
    pub bundle_id: String,
    pub bundle_name: String,
    pub bundle_version: String,
    pub sequence: u64,
    pub database: String,
    /// The server's system identifier (pg_control_system()): with `database`, which
    /// target this is, also when two clusters have a database of the same name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub system_identifier: String,
    pub server_version_num: i64,
    pub session_user: String,
    pub operator: String,
    pub tiers: Vec<String>,
    pub remaining_tiers: Vec<String>,
    pub params: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gates: Option<GateReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preflight: Option<ProbeReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify: Option<ProbeReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback_probe: Option<ProbeReport>,
    pub fingerprint_before: String,
    pub fingerprint_after: String,
    pub ledger: Vec<LedgerRow>,
    pub started_at: String,
    pub finished_at: String,
    pub duration_ms: u64,
}

impl Receipt {
    /// A receipt for `event` on this bundle and server, before anything ran.
    fn new(
        event: &str,
        outcome: &str,
        vb: &VerifiedBundle,
        info: &ServerInfo,
        params: &BTreeMap<String, String>,
        started_at: String,
    ) -> Receipt {
        let m = vb.manifest();
        Receipt {
            format: "airlock-receipt/1".into(),
            event: event.into(),
            outcome: outcome.into(),
            bundle_id: vb.id().into(),
            bundle_name: m.bundle.name.clone(),
            bundle_version: m.bundle.version.clone(),
            sequence: m.bundle.sequence,
            database: info.database.clone(),
            system_identifier: String::new(),
            server_version_num: info.server_version_num,
            session_user: info.session_user.clone(),
            operator: operator_name(),
            tiers: vec![],
            remaining_tiers: vec![],
            params: params.clone(),
            gates: None,
            preflight: None,
            verify: None,
            rollback_probe: None,
            fingerprint_before: String::new(),
            fingerprint_after: String::new(),
            ledger: vec![],
            started_at,
            finished_at: String::new(),
            duration_ms: 0,
        }
    }

    fn finish(mut self, started: std::time::Instant) -> Receipt {
        self.finished_at = now();
        self.duration_ms = started.elapsed().as_millis() as u64;
        self
    }
}

pub fn operator_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into our buffer.
    let host = unsafe {
        if libc::gethostname(buf.as_mut_ptr() as *mut libc::c_char, buf.len()) == 0 {
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            String::from_utf8_lossy(&buf[..end]).into_owned()
        } else {
            "unknown-host".into()
        }
    };
    format!("{}@{}", conn::os_user(), host)
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A session on the target: connected, name-guarded, version-checked, pinned.
pub struct Session {
    pub client: Client,
    pub facts: SessionFacts,
    pub info: ServerInfo,
}

/// Connect, name-guard, version-check, session settings (one round trip after the
/// connection itself).
pub fn open(
    opts_conn: &ConnSpec,
    expected: &str,
    m: &Manifest,
    statement_timeout: &str,
) -> Result<Session, DbError> {
    let mut client = opts_conn.connect()?;
    let facts = conn::name_guard_with(&mut client, expected, statement_timeout)?;
    let info = facts.info();
    conn::check_server_version(&info, m.target.min_server_version)?;
    Ok(Session {
        client,
        facts,
        info,
    })
}

impl Session {
    /// The settings every bundle file runs under.
    pub fn pins(&self, m: &Manifest, opts: &Options<'_>) -> BundlePins {
        BundlePins {
            search_path: m.target.search_path(),
            statement_timeout: opts.statement_timeout.clone(),
            lock_timeout: opts.lock_timeout.clone(),
            superuser: self.facts.superuser,
        }
    }

    /// Pins plus the role gates and probes run as (checked to have no outside powers),
    /// when gates or probes will run (`needed`); a bundle with neither needs no role.
    pub fn harness_if(
        &mut self,
        needed: bool,
        m: &Manifest,
        opts: &Options<'_>,
    ) -> Result<Harness, DbError> {
        let role = if needed {
            gate::resolve_role(&mut self.client, opts.gate_role.as_deref())?
        } else {
            None
        };
        Ok(Harness {
            pins: self.pins(m, opts),
            role,
        })
    }

    /// The ledger, checked (structure, chain) and held against this host's memory.
    fn ledger(&mut self) -> Result<Vec<LedgerRow>, DbError> {
        read_checked(&mut self.client, &self.facts)
    }
}

/// [`ledger::read_chained`] plus the host's memory of the head.
pub(crate) fn read_checked(
    client: &mut impl postgres::GenericClient,
    facts: &SessionFacts,
) -> Result<Vec<LedgerRow>, DbError> {
    let rows = ledger::read_chained(client)?;
    remembered::check(&facts.system_identifier, &facts.database, &rows)?;
    Ok(rows)
}

/// After a commit: remember the new head and keep the schema description (a failure
/// is only a warning; the change has committed).
fn remember(opts: &Options<'_>, facts: &SessionFacts, row: &LedgerRow, tracker: &Tracker) {
    if opts.remember {
        if let Some(w) = remembered::remember(&facts.system_identifier, &facts.database, row) {
            eprintln!("{w}");
        }
        if let Some(w) = tracker.keep() {
            eprintln!("{w}");
        }
    }
}

pub(crate) fn set_params(
    tx: &mut Transaction<'_>,
    params: &BTreeMap<String, String>,
) -> Result<(), DbError> {
    for (k, v) in params {
        tx.query(
            "SELECT pg_catalog.set_config($1, $2, true)",
            &[&format!("airlock.{k}"), v],
        )
        .map_err(|e| sql_err(&format!("setting param {k}"), &e))?;
    }
    Ok(())
}

pub(crate) fn gates_for(
    vb: &VerifiedBundle,
    tiers: &[usize],
) -> Result<Vec<(String, String, String)>, DbError> {
    let m = vb.manifest();
    let mut names: Vec<&str> = vec![];
    for &i in tiers {
        for g in &m.tier[i].gates {
            if !names.contains(&g.as_str()) {
                names.push(g);
            }
        }
    }
    let mut out = vec![];
    for g in &m.gate {
        if names.contains(&g.name.as_str()) {
            let sql = vb.sql(&g.file).map_err(|e| DbError::State(e.to_string()))?;
            out.push((g.name.clone(), g.file.clone(), sql.to_string()));
        }
    }
    Ok(out)
}

pub fn all_gates(vb: &VerifiedBundle) -> Result<Vec<(String, String, String)>, DbError> {
    let all: Vec<usize> = (0..vb.manifest().tier.len()).collect();
    let mut g = gates_for(vb, &all)?;
    // Gates no tier uses are still asked by `airlock gate`.
    for spec in &vb.manifest().gate {
        if !g.iter().any(|(n, _, _)| *n == spec.name) {
            let sql = vb
                .sql(&spec.file)
                .map_err(|e| DbError::State(e.to_string()))?;
            g.push((spec.name.clone(), spec.file.clone(), sql.to_string()));
        }
    }
    Ok(g)
}

/// Ledger refusals and the next tiers to run.
pub(crate) fn next_tiers(
    m: &Manifest,
    id: &str,
    rows: &[LedgerRow],
    through: Option<&str>,
) -> Result<(Vec<String>, Vec<usize>), DbError> {
    let short = airlock_base::text::short(id);
    for r in rows.iter().filter(|r| r.bundle_name == m.bundle.name) {
        if r.sequence == m.bundle.sequence as i64 && r.bundle_id != id {
            return Err(DbError::Refused(format!(
                "equivocation: the ledger (seq {}) holds {} sequence {} with bundle id {}, but this bundle is {short}; two different signed bundles claim the same release. Find out which one is genuine before going on",
                r.seq, m.bundle.name, m.bundle.sequence, airlock_base::text::short(&r.bundle_id)
            )));
        }
        if r.sequence > m.bundle.sequence as i64
            && !ledger::state_of(rows, &r.bundle_id).applied.is_empty()
        {
            return Err(DbError::Refused(format!(
                "downgrade: {} sequence {} (bundle {}) is applied (ledger seq {}); this bundle has sequence {}. Roll that one back first if you really mean to go back",
                m.bundle.name, r.sequence, airlock_base::text::short(&r.bundle_id), r.seq, m.bundle.sequence
            )));
        }
    }
    let st = ledger::state_of(rows, id);
    let first = m
        .tier
        .iter()
        .position(|t| !st.applied.contains(&t.name))
        .unwrap_or(m.tier.len());
    if first == m.tier.len() {
        let when = st
            .last_apply
            .as_ref()
            .map(|r| format!(" (ledger seq {} at {})", r.seq, r.at))
            .unwrap_or_default();
        return Err(DbError::Refused(format!(
            "every tier of {} {} (bundle {short}) is already applied{when}; nothing to do. To run it again, roll it back first (airlock rollback)",
            m.bundle.name, m.bundle.version
        )));
    }
    let last = match through {
        None => m.tier.len() - 1,
        Some(t) => {
            let i = m.tier_index(t).ok_or_else(|| {
                DbError::Usage(format!(
                    "--through {t:?}: no such tier (tiers: {})",
                    m.tier
                        .iter()
                        .map(|t| t.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
            if i < first {
                return Err(DbError::Refused(format!(
                    "--through {t}: tier {t} is already applied; the next tier is {}",
                    m.tier[first].name
                )));
            }
            i
        }
    };
    Ok((st.applied, (first..=last).collect()))
}

pub(crate) fn planned(vb: &VerifiedBundle, idx: &[usize]) -> Vec<PlannedTier> {
    let m = vb.manifest();
    idx.iter()
        .map(|&i| PlannedTier {
            index: i + 1,
            name: m.tier[i].name.clone(),
            gates: m.tier[i].gates.clone(),
            files: m.tier[i]
                .files
                .iter()
                .map(|f| {
                    let e = m.file(f);
                    PlannedFile {
                        path: f.clone(),
                        size: e.map(|e| e.size).unwrap_or(0),
                        sha256: e.map(|e| e.sha256.clone()).unwrap_or_default(),
                    }
                })
                .collect(),
        })
        .collect()
}

/// Params a run needs: required ones, when any tier about to run is gated.
pub fn check_required(
    vb: &VerifiedBundle,
    idx: &[usize],
    params: &BTreeMap<String, String>,
) -> Result<(), DbError> {
    let m = vb.manifest();
    if idx.iter().any(|&i| !m.tier[i].gates.is_empty()) {
        super::require_params(params, &m.params)?;
    }
    Ok(())
}

/// `airlock gate`: one read-only transaction, always rolled back; the session closes.
pub fn gate(vb: &VerifiedBundle, opts: &Options<'_>) -> Result<GateReport, DbError> {
    let m = vb.manifest();
    let mut session = open(opts.conn, &opts.expected_db, m, &opts.statement_timeout)?;
    let gates = all_gates(vb)?;
    let harness = session.harness_if(!gates.is_empty(), m, opts)?;
    let mut tx = session
        .client
        .build_transaction()
        .read_only(true)
        .start()
        .map_err(|e| sql_err("BEGIN READ ONLY", &e))?;
    set_params(&mut tx, &opts.params)?;
    let report = gate::run_gates(&mut tx, &gates, &harness)?;
    tx.rollback().map_err(|e| sql_err("ROLLBACK", &e))?;
    drop(session);
    Ok(report)
}

/// Run one tier or rollback file as it was verified (see [`exec`]): behind the prelude
/// that re-asserts the bundle's settings (search_path, standard_conforming_strings as
/// lint read it, timeouts…), because an earlier file may have changed them; a small
/// file is one message with the prelude, so no round trip is added.
fn run_file(
    tx: &mut Transaction<'_>,
    guard: &exec::TxGuard,
    prelude: &str,
    vb: &VerifiedBundle,
    file: &str,
) -> Result<(), FileFailure> {
    let unverified = |e: VerifyError| FileFailure {
        line: None,
        what: e.to_string(),
        cancelled: false,
        unverified: Some(Box::new(e)),
        ended: None,
    };
    let message_bytes = vb.limits().message_bytes;
    let result = if vb.streamed_file().as_deref() == Some(file) {
        // Executed as it streams from the archive: each chunk authenticated (and
        // linted) by the reader before it is handed on.
        let total = vb.manifest().file(file).map_or(0, |f| f.size);
        let mut next = || vb.next_chunk(file).map_err(exec::FileError::Unverified);
        exec::run_source(
            tx,
            guard,
            prelude,
            file,
            exec::Source::Stream {
                next: &mut next,
                total,
            },
            message_bytes,
            &mut |_, _| {},
        )
    } else {
        let payload = vb.payload(file).map_err(unverified)?;
        exec::run_file(
            tx,
            guard,
            prelude,
            file,
            payload,
            message_bytes,
            &mut |_, _| {},
        )
    };
    result.map_err(|e| match e {
        exec::FileError::Sql { line, error } => FileFailure {
            line,
            cancelled: sqlstate(&error) == Some("57014") && conn::interrupted(),
            what: super::pg_message(&error),
            unverified: None,
            ended: None,
        },
        exec::FileError::Read(what) => FileFailure {
            line: None,
            what,
            cancelled: false,
            unverified: None,
            ended: None,
        },
        exec::FileError::Unverified(e) => unverified(e),
        exec::FileError::Ended { lines, fate } => FileFailure {
            line: Some(lines.0),
            what: String::new(),
            cancelled: false,
            unverified: None,
            ended: Some((lines, fate)),
        },
    })
}

/// The whole bundle verified (streaming loads read its rest now), or the run fails
/// with the verification error before anything commits.
fn all_verified(vb: &VerifiedBundle) -> Result<(), DbError> {
    vb.complete().map_err(|e| DbError::Unverified(Box::new(e)))
}

/// Why a bundle file failed, where.
struct FileFailure {
    line: Option<u64>,
    what: String,
    /// The operator's Ctrl-C cancelled the statement.
    cancelled: bool,
    /// The file failed verification as it streamed (or the bundle did before it
    /// could be read back).
    unverified: Option<Box<VerifyError>>,
    /// Bundle SQL ended airlock's transaction in these lines (see [`exec::TxGuard`]).
    ended: Option<((u64, u64), exec::Fate)>,
}

impl FileFailure {
    /// The error to report when this failure is not an ordinary SQL error: the file
    /// failed verification, or it ended airlock's transaction.
    fn special(&mut self, context: impl Fn() -> String) -> Option<DbError> {
        if let Some(v) = self.unverified.take() {
            return Some(DbError::Unverified(v));
        }
        self.ended
            .take()
            .map(|(lines, fate)| DbError::TransactionEnded {
                context: context(),
                lines,
                fate,
            })
    }
}

impl FileFailure {
    /// ", line N" when the line is known.
    fn at(&self) -> String {
        self.line.map(|l| format!(" line {l}")).unwrap_or_default()
    }
}

fn interrupted_check() -> Result<(), DbError> {
    if conn::interrupted() {
        return Err(DbError::Sql {
            context: "interrupted".into(),
            message: "cancelled by the operator (Ctrl-C); everything was rolled back".into(),
        });
    }
    Ok(())
}

/// `airlock apply`.
pub fn apply(vb: &VerifiedBundle, opts: &Options<'_>) -> Result<Receipt, DbError> {
    let m = vb.manifest();
    let Deploy {
        mut session,
        info,
        facts,
        prelude,
        mut harness,
        started,
        started_at,
    } = Deploy::start(vb, opts)?;
    let mut tracker = super::drift::tracker(&facts, opts);
    // Decide outside the lock; on a terminal, run every read-only check `plan` makes
    // first and ask only when they all passed. Everything is decided again under the
    // lock before anything runs.
    match opts.confirm {
        None => {
            let rows = session.ledger()?;
            let (_, idx) = next_tiers(m, vb.id(), &rows, opts.through.as_deref())?;
            check_required(vb, &idx, &opts.params)?;
        }
        Some(confirm) => {
            let start = PlanReport::new(vb, &info.database, vec![]);
            let (preview, failed) = super::plan::plan_on(&mut session, vb, opts, start);
            if let Some(e) = failed {
                return Err(e);
            }
            if !confirm(&preview) {
                return Err(DbError::Usage(
                    "cancelled: the database name was not confirmed; nothing was changed".into(),
                ));
            }
        }
    }
    let mut receipt = Receipt::new("apply", "applied", vb, &info, &opts.params, started_at);
    receipt.system_identifier = facts.system_identifier.clone();
    let client = &mut session.client;
    loop {
        let mut tx = client.transaction().map_err(|e| sql_err("BEGIN", &e))?;
        let rows = ledger::lock_for_deploy(&mut tx, &opts.lock_timeout)?;
        remembered::check(&facts.system_identifier, &facts.database, &rows)?;
        let (applied, mut idx) = next_tiers(m, vb.id(), &rows, opts.through.as_deref())?;
        if m.bundle.transaction == TxMode::PerTier {
            idx.truncate(1);
        }
        check_required(vb, &idx, &opts.params)?;
        set_params(&mut tx, &opts.params)?;
        if !opts.skip_gates {
            let gates = gates_for(vb, &idx)?;
            let report = if gates.is_empty() {
                GateReport::from_results(vec![])
            } else {
                let h = harness.get(&mut tx)?;
                gate::run_gates(&mut tx, &gates, h)?
            };
            let ready = report.ready();
            let summary = report.blocked_summary();
            merge_gates(&mut receipt, report);
            if !ready {
                return Err(DbError::Blocked(format!("{summary}; nothing was changed")));
            }
        }
        let before = tracker.fingerprint(&mut tx)?;
        let st = ledger::state_of(&rows, vb.id());
        if applied.is_empty() {
            if let Some(p) = &m.preflight {
                let sql = vb.sql(&p.file).map_err(|e| DbError::State(e.to_string()))?;
                let h = harness.get(&mut tx)?;
                let pr = gate::run_probe(&mut tx, &p.file, sql, &p.expect, h)?;
                if !pr.matches {
                    return Err(DbError::State(format!(
                        "preflight: the target is not where the bundle expects it ({}); nothing was changed",
                        pr.describe()
                    )));
                }
                receipt.preflight = Some(pr);
            }
        } else if let Some(last) = &st.last_apply {
            if let Some(e) = super::drift::judge(&before, last, opts.allow_drift).refusal {
                return Err(e);
            }
        }
        if receipt.fingerprint_before.is_empty() {
            receipt.fingerprint_before = before.clone();
        }
        // Who the tiers run as, decided last before they run (under the lock).
        let tier_prelude = bundle_role::check(&mut tx, &m.target)?.prelude(&prelude);
        let n = m.tier.len();
        let guard = exec::TxGuard::begin(&mut tx)
            .map_err(|e| sql_err("marking where bundle SQL begins", &e))?;
        if let Some(o) = opts.observer {
            let files = tier_files(m, &idx);
            o.start("apply", files.len(), files.iter().map(|f| f.1).sum());
        }
        for &i in &idx {
            let tier = &m.tier[i];
            if let Some(o) = opts.observer {
                o.tier(i, n, &tier.name);
            }
            for f in &tier.files {
                interrupted_check()?;
                if let Some(o) = opts.observer {
                    o.file(f, file_size(m, f));
                }
                run_file(&mut tx, &guard, &tier_prelude, vb, f).map_err(|mut e| {
                    if let Some(special) =
                        e.special(|| format!("tier {}/{n} {:?}, file {f}", i + 1, tier.name))
                    {
                        return special;
                    }
                    let what = if e.cancelled {
                        "cancelled by the operator (Ctrl-C)".to_string()
                    } else {
                        e.what.clone()
                    };
                    DbError::Sql {
                        context: format!("tier {}/{n} {:?}, file {f}{}", i + 1, tier.name, e.at()),
                        message: format!(
                            "{what}; the whole transaction was rolled back, nothing was changed"
                        ),
                    }
                })?;
                if let Some(o) = opts.observer {
                    o.file_done(f, file_size(m, f));
                }
            }
        }
        interrupted_check()?;
        // The tiers may have changed any setting (search_path, role…): airlock's own
        // statements from here on run under its pins again.
        session::repin(&mut tx, &opts.statement_timeout)?;
        let last_tier_ran = idx.last() == Some(&(n - 1));
        if last_tier_ran {
            if let Some(v) = &m.verify {
                let sql = vb.sql(&v.file).map_err(|e| DbError::State(e.to_string()))?;
                let h = harness.get(&mut tx)?;
                let pr = gate::run_probe(&mut tx, &v.file, sql, &v.expect, h)?;
                if !pr.matches {
                    return Err(DbError::State(format!(
                        "verify probe after the last tier failed ({}); everything was rolled back",
                        pr.describe()
                    )));
                }
                receipt.verify = Some(pr);
            }
        }
        let after = tracker.fingerprint(&mut tx)?;
        let names: Vec<String> = idx.iter().map(|&i| m.tier[i].name.clone()).collect();
        let row = ledger::append(
            &mut tx,
            NewRow {
                event: "apply",
                bundle_name: m.bundle.name.clone(),
                bundle_version: m.bundle.version.clone(),
                sequence: m.bundle.sequence as i64,
                bundle_id: vb.id().into(),
                tiers: names.clone(),
                params: opts.params.clone(),
                operator: receipt.operator.clone(),
                fingerprint_before: before.clone(),
                fingerprint_after: after.clone(),
            },
        )?;
        interrupted_check()?;
        // Nothing commits before the whole bundle verified (a streamed tier ran while
        // the rest of the archive was still being read).
        all_verified(vb)?;
        tx.commit().map_err(|e| sql_err("COMMIT", &e))?;
        remember(opts, &facts, &row, &tracker);
        receipt.tiers.extend(names);
        receipt.fingerprint_after = after;
        receipt.ledger.push(row);
        let through_idx = opts
            .through
            .as_deref()
            .and_then(|t| m.tier_index(t))
            .unwrap_or(n - 1);
        let done = idx.last().copied().unwrap_or(n - 1) >= through_idx;
        if done {
            let applied_now: Vec<&String> = applied.iter().chain(receipt.tiers.iter()).collect();
            receipt.remaining_tiers = m
                .tier
                .iter()
                .filter(|t| !applied_now.contains(&&t.name))
                .map(|t| t.name.clone())
                .collect();
            break;
        }
    }
    Ok(receipt.finish(started))
}

fn merge_gates(receipt: &mut Receipt, report: GateReport) {
    match &mut receipt.gates {
        None => receipt.gates = Some(report),
        Some(g) => {
            g.gates.extend(report.gates);
            *g = GateReport::from_results(std::mem::take(&mut g.gates));
        }
    }
}

/// `airlock rollback`: idempotent; a no-op that says so when nothing is applied.
pub fn rollback(vb: &VerifiedBundle, opts: &Options<'_>) -> Result<Receipt, DbError> {
    let m = vb.manifest();
    let Deploy {
        mut session,
        info,
        facts,
        prelude,
        mut harness,
        started,
        started_at,
    } = Deploy::start(vb, opts)?;
    let mut tracker = super::drift::tracker(&facts, opts);
    let rb = m.rollback.as_ref().ok_or_else(|| {
        DbError::Usage(
            "this bundle has no [rollback] section; it cannot be rolled back by airlock".into(),
        )
    })?;
    if let Some(confirm) = opts.confirm {
        let rows = session.ledger()?;
        let st = ledger::state_of(&rows, vb.id());
        if !st.applied.is_empty() {
            let preview = PlanReport::preview(vb, &info.database, st.applied, vec![]);
            if !confirm(&preview) {
                return Err(DbError::Usage(
                    "cancelled: the database name was not confirmed; nothing was changed".into(),
                ));
            }
        }
    }
    let mut tx = session
        .client
        .transaction()
        .map_err(|e| sql_err("BEGIN", &e))?;
    let rows = ledger::lock_for_deploy(&mut tx, &opts.lock_timeout)?;
    remembered::check(&facts.system_identifier, &facts.database, &rows)?;
    let st = ledger::state_of(&rows, vb.id());
    let mut receipt = Receipt::new(
        "rollback",
        "rolled-back",
        vb,
        &info,
        &opts.params,
        started_at,
    );
    receipt.system_identifier = facts.system_identifier.clone();
    receipt.tiers = st.applied.clone();
    if st.applied.is_empty() {
        tx.rollback().map_err(|e| sql_err("ROLLBACK", &e))?;
        receipt.outcome = "nothing-to-roll-back".into();
        return Ok(receipt.finish(started));
    }
    set_params(&mut tx, &opts.params)?;
    let before = tracker.fingerprint(&mut tx)?;
    let rollback_prelude = bundle_role::check(&mut tx, &m.target)?.prelude(&prelude);
    let guard = exec::TxGuard::begin(&mut tx)
        .map_err(|e| sql_err("marking where bundle SQL begins", &e))?;
    if let Some(o) = opts.observer {
        let bytes = rb.files.iter().map(|f| file_size(m, f)).sum();
        o.start("rollback", rb.files.len(), bytes);
    }
    for f in &rb.files {
        interrupted_check()?;
        if let Some(o) = opts.observer {
            o.file(f, file_size(m, f));
        }
        run_file(&mut tx, &guard, &rollback_prelude, vb, f).map_err(|mut e| {
            if let Some(special) = e.special(|| format!("rollback file {f}")) {
                return special;
            }
            DbError::Sql {
                context: format!("rollback file {f}{}", e.at()),
                message: format!(
                    "{}; the rollback was rolled back, the database is as it was",
                    e.what
                ),
            }
        })?;
        if let Some(o) = opts.observer {
            o.file_done(f, file_size(m, f));
        }
    }
    session::repin(&mut tx, &opts.statement_timeout)?;
    if let (Some(probe), Some(expect)) = (&rb.probe, &rb.expect) {
        let sql = vb.sql(probe).map_err(|e| DbError::State(e.to_string()))?;
        let h = harness.get(&mut tx)?;
        let pr = gate::run_probe(&mut tx, probe, sql, expect, h)?;
        if !pr.matches {
            return Err(DbError::State(format!(
                "rollback probe: the database is not back where it should be ({}); the rollback was rolled back",
                pr.describe()
            )));
        }
        receipt.rollback_probe = Some(pr);
    }
    let after = tracker.fingerprint(&mut tx)?;
    let row = ledger::append(
        &mut tx,
        NewRow {
            event: "rollback",
            bundle_name: m.bundle.name.clone(),
            bundle_version: m.bundle.version.clone(),
            sequence: m.bundle.sequence as i64,
            bundle_id: vb.id().into(),
            tiers: st.applied.clone(),
            params: opts.params.clone(),
            operator: receipt.operator.clone(),
            fingerprint_before: before.clone(),
            fingerprint_after: after.clone(),
        },
    )?;
    interrupted_check()?;
    tx.commit().map_err(|e| sql_err("COMMIT", &e))?;
    remember(opts, &facts, &row, &tracker);
    receipt.fingerprint_before = before;
    receipt.fingerprint_after = after;
    receipt.ledger.push(row);
    receipt.remaining_tiers = m.tier.iter().map(|t| t.name.clone()).collect();
    Ok(receipt.finish(started))
}

/// What apply and rollback both start from: a pinned session on the target, the
/// prelude every bundle file runs behind, and the gate/probe harness.
struct Deploy {
    session: Session,
    info: ServerInfo,
    facts: SessionFacts,
    prelude: String,
    harness: LazyHarness,
    started: std::time::Instant,
    started_at: String,
}

impl Deploy {
    fn start(vb: &VerifiedBundle, opts: &Options<'_>) -> Result<Deploy, DbError> {
        let started = std::time::Instant::now();
        let started_at = now();
        let m = vb.manifest();
        let session = open(opts.conn, &opts.expected_db, m, &opts.statement_timeout)?;
        let pins = session.pins(m, opts);
        Ok(Deploy {
            info: session.info.clone(),
            facts: session.facts.clone(),
            prelude: pins.prelude(),
            harness: LazyHarness::new(pins, opts.gate_role.clone()),
            session,
            started,
            started_at,
        })
    }
}

/// The gate/probe harness, resolved the first time a gate or probe is about to run (a
/// bundle with neither needs no gate role).
struct LazyHarness {
    pins: BundlePins,
    requested: Option<String>,
    resolved: Option<Harness>,
}

impl LazyHarness {
    fn new(pins: BundlePins, requested: Option<String>) -> Self {
        LazyHarness {
            pins,
            requested,
            resolved: None,
        }
    }

    fn get(&mut self, tx: &mut Transaction<'_>) -> Result<&Harness, DbError> {
        if self.resolved.is_none() {
            let role = gate::resolve_role(tx, self.requested.as_deref())?;
            self.resolved = Some(Harness {
                pins: self.pins.clone(),
                role,
            });
        }
        Ok(self.resolved.as_ref().expect("resolved above"))
    }
}
