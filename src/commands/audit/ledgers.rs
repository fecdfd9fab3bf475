//! The ledgers an audit checks receipts against: a live database's (`--db`, read in
//! one read-only transaction) or an export of one (`--ledger FILE`, the output of
//! `airlock status --db DB --json`), each with its hash chain re-verified here.
//!
//! Invariant: only a live database's rows that an operator key signed are evidence
//! that a bundle existed by a time (its `at` is the server's clock at commit; the
//! signature, that airlock wrote it: [`crate::commands::deploy::signed_rows`]). An export is a file anyone can
//! write, hash chain included: it vouches for receipts only as far as its custody
//! goes, and never revives a revoked or retired key.

use crate::archive::Opened;
use crate::cli::AuditArgs;
use crate::db::conn;
use crate::db::ledger::chain::{self as ledger, LedgerRow};
use crate::error::{Error, Result};
use crate::spec::TargetDatabase;
use crate::trust::{self, Existence};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where a ledger's rows came from.
pub(super) enum Source {
    /// Read from the database, whose ledger this role owns (`keeper`).
    Database {
        keeper: Option<String>,
    },
    Export {
        file: PathBuf,
        sha256: String,
    },
}

/// One ledger as read.
pub(super) struct Ledger {
    /// The database it belongs to (`current_database()`, or the export's `database`).
    pub database: String,
    pub source: Source,
    pub rows: Vec<LedgerRow>,
    /// Where the hash chain breaks, if it does.
    pub broken: Option<(i64, String)>,
    /// The first row whose receipt's delivery the ledger records
    /// ([`ledger::delivery_era`]); none: it records no deliveries.
    pub era: Option<i64>,
}

/// A ledger as the JSON document reports it.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct AuditedLedger {
    /// `database` (`--db`) or `export` (`--ledger`).
    pub source: String,
    pub database: String,
    /// The export file (`--ledger`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// SHA-256 of the export file, to compare with the one recorded when it was made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    pub rows: usize,
    /// The hash chain holds.
    pub chain_ok: bool,
    /// The role that owns the database's ledger (`--db`): the deploy login `airlock
    /// setup` made, as a login that only reads the ledger sees it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept_by: Option<String>,
    /// For each verified audited release this database is for: the tiers its ledger
    /// records applied, of how many, and its last run, when and by whom.
    pub ran: Vec<super::Ran>,
}

/// A database of a `--fleet` whose name the audited bundles name or match, that the
/// audit could not read: a template, or one that refuses connections. Its owner can
/// make it so (`ALTER DATABASE … IS_TEMPLATE true`, `ALLOW_CONNECTIONS false`) and it
/// keeps serving its tenant: it fails the audit, named, never drops out of it.
pub(super) struct Unaudited {
    pub database: String,
    /// Why it was not read.
    pub why: String,
}

/// Every `--db`, each database of every `--fleet` the audited bundles are for
/// (`targets`), then every `--ledger`; one database given twice is a usage error
/// (which of the two would a receipt be checked against?). Second: the fleet's
/// databases that could not be read ([`Unaudited`]).
pub(super) fn read_all(
    args: &AuditArgs,
    default_db: &TargetDatabase,
    targets: &[&TargetDatabase],
) -> Result<(Vec<Ledger>, Vec<Unaudited>)> {
    let mut out: Vec<Ledger> = vec![];
    let mut unaudited = vec![];
    for spec in &args.db {
        out.push(Ledger::from_db(spec, default_db)?);
    }
    for server in &args.fleet {
        let listed = conn::resolve(Some(server), "postgres")?;
        for member in fleet_databases(&listed, targets)? {
            match member.why_not {
                None => out.push(Ledger::from_conn(&listed.with_dbname(&member.name))?),
                Some(why) => unaudited.push(Unaudited {
                    database: member.name,
                    why,
                }),
            }
        }
    }
    for file in &args.ledgers {
        out.push(Ledger::from_export(file)?);
    }
    for (i, l) in out.iter().enumerate() {
        if let Some(first) = out[..i].iter().find(|x| x.database == l.database) {
            return Err(Error::usage(
                format!(
                    "database {} is given twice: {} and {}",
                    l.database,
                    first.label(),
                    l.label()
                ),
                Some("give each database's ledger once (--db or --ledger)".to_string()),
            ));
        }
    }
    Ok((out, unaudited))
}

impl Ledger {
    pub(super) fn from_db(spec: &str, default_db: &TargetDatabase) -> Result<Ledger> {
        Ledger::from_conn(&conn::resolve_for(Some(spec), default_db)?)
    }

    fn from_conn(spec: &conn::ConnSpec) -> Result<Ledger> {
        let back = crate::db::ledger::reader::read_back(&mut spec.connect()?)?;
        Ok(Ledger::new(
            back.database,
            Source::Database {
                keeper: back.keeper,
            },
            back.rows,
            back.era,
        ))
    }

    /// `airlock status --json` of the database, saved: its `database` and `rows`.
    fn from_export(file: &Path) -> Result<Ledger> {
        let bytes = airlock_base::bounded::read_capped(file, airlock_base::bounded::LEDGER_EXPORT)?;
        let (database, rows, era) = parse_export(&bytes).map_err(|why| {
            Error::usage(
                format!("{} is not a ledger export: {why}", file.display()),
                Some(
                    "a ledger export is the output of `airlock status --db DB --json`, saved whole"
                        .to_string(),
                ),
            )
        })?;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let source = Source::Export {
            file: file.to_path_buf(),
            sha256,
        };
        Ok(Ledger::new(database, source, rows, era))
    }

    fn new(database: String, source: Source, rows: Vec<LedgerRow>, era: Option<i64>) -> Ledger {
        let broken = ledger::verify_chain(&rows);
        Ledger {
            database,
            source,
            rows,
            broken,
            era,
        }
    }

    /// How verdicts and lines name it: `database D` or `ledger export F (database D)`.
    pub fn label(&self) -> String {
        match &self.source {
            Source::Database { .. } => format!("database {}", self.database),
            Source::Export { file, .. } => format!(
                "ledger export {} (database {})",
                file.display(),
                self.database
            ),
        }
    }

    /// Where its rows were read, for a basis.
    pub fn read_how(&self) -> String {
        match &self.source {
            Source::Database { .. } => format!(
                "database {}, read in one read-only transaction",
                self.database
            ),
            Source::Export { file, sha256 } => format!(
                "ledger export {} (SHA-256 {sha256}; a copy, as good as its custody), of database {}",
                file.display(),
                self.database
            ),
        }
    }

    /// As the JSON document reports it, with what ran of each of `releases` (the
    /// verified audited bundles, by id) that is for its database.
    pub fn report(&self, releases: &BTreeMap<String, &Opened>) -> AuditedLedger {
        let (source, file, sha256, kept_by) = match &self.source {
            Source::Database { keeper } => ("database", None, None, keeper.clone()),
            Source::Export { file, sha256 } => {
                ("export", Some(file.clone()), Some(sha256.clone()), None)
            }
        };
        AuditedLedger {
            source: source.into(),
            database: self.database.clone(),
            file,
            sha256,
            rows: self.rows.len(),
            chain_ok: self.broken.is_none(),
            kept_by,
            ran: super::ran::of_ledger(&self.database, &self.rows, releases),
        }
    }

    /// Its rows' operator signatures, judged ([`crate::commands::deploy::signed_rows::judge`]); none for an
    /// export (anyone can write one, signatures included: a copy's rows are as good
    /// as its custody) or a chain that breaks.
    pub fn signed(
        &self,
        history: &crate::trust_history::History,
        now: DateTime<Utc>,
    ) -> crate::commands::deploy::signed_rows::Signed {
        if self.broken.is_some() || !matches!(self.source, Source::Database { .. }) {
            return crate::commands::deploy::signed_rows::Signed::default();
        }
        crate::commands::deploy::signed_rows::judge(&self.database, &self.rows, history, now)
    }

    /// The first row of what ran naming `bundle_id` that an operator key signed
    /// (`signed`: [`crate::commands::deploy::signed_rows::judge`] of this ledger), as evidence: the bundle
    /// existed by the later of that row's time, taken as the latest `at` of it and
    /// every row before it (a row appended later cannot be earlier than the rows it
    /// follows), and the time the operator claims to have signed it. None when the
    /// chain breaks, always for an export (anyone can write one, times included), and
    /// for a row no signature covers: code running as the deploy login could have
    /// written it, time and all.
    pub fn evidence(
        &self,
        bundle_id: &str,
        signed: &crate::commands::deploy::signed_rows::Signed,
    ) -> Option<Existence> {
        if self.broken.is_some() || !matches!(self.source, Source::Database { .. }) {
            return None;
        }
        let mut latest: Option<DateTime<Utc>> = None;
        for r in &self.rows {
            let at = trust::parse_rfc3339(&r.at)?;
            latest = Some(latest.map_or(at, |l| l.max(at)));
            if r.bundle_id != bundle_id || !r.ran() {
                continue;
            }
            if let Some(s) = signed.rows.get(&r.seq) {
                return Some(Existence::new(
                    latest?.max(s.signed_at),
                    format!(
                        "ledger row {} of database {}, signed by operator key {} (its receipt's delivery, row {})",
                        r.seq, self.database, s.key_id, s.kept_in
                    ),
                ));
            }
        }
        None
    }
}

/// A database of the fleet on its server.
struct Member {
    name: String,
    /// Why it cannot be audited (a template, or it refuses connections); none: it can.
    why_not: Option<String>,
}

/// Why a database with these flags cannot be audited, if it cannot.
fn why_not(is_template: bool, allows_connections: bool) -> Option<String> {
    let mut why = vec![];
    if is_template {
        why.push("it is marked a template (pg_database.datistemplate; ALTER DATABASE … IS_TEMPLATE false undoes it)");
    }
    if !allows_connections {
        why.push("it refuses connections (pg_database.datallowconn is false; ALTER DATABASE … ALLOW_CONNECTIONS true undoes it)");
    }
    (!why.is_empty()).then(|| why.join(", and "))
}

/// The databases on the server `listed` connects to that one of `targets` names or
/// matches, by name, templates and those that refuse connections included (they
/// cannot be audited: [`Unaudited`]). None is a usage error: the fleet is not on that
/// server (or the login may not connect to its databases).
fn fleet_databases(listed: &conn::ConnSpec, targets: &[&TargetDatabase]) -> Result<Vec<Member>> {
    let mut c = listed.connect()?;
    let fleet: Vec<Member> = c
        .query(
            "SELECT d.datname::pg_catalog.text, d.datistemplate, d.datallowconn \
               FROM pg_catalog.pg_database d ORDER BY 1",
            &[],
        )
        .map_err(|e| crate::db::sql_err("list the server's databases", &e))?
        .iter()
        .map(|row| Member {
            name: row.get(0),
            why_not: why_not(row.get(1), row.get(2)),
        })
        .filter(|m| targets.iter().any(|t| t.matching(&m.name).is_some()))
        .collect();
    if fleet.is_empty() {
        let wanted: Vec<String> = targets.iter().map(|t| t.describe()).collect();
        return Err(Error::usage(
            format!(
                "--fleet {}: no database there that the audited bundles are for ({}); nothing was audited",
                listed.shown,
                if wanted.is_empty() { "no bundle could be read".to_string() } else { wanted.join(", ") }
            ),
            Some("give --fleet a connection to the server that holds the fleet's databases (any database of it), or each database with --db".to_string()),
        ));
    }
    Ok(fleet)
}

/// The `database` and `rows` of a `status --json` document, read straight into rows:
/// the other fields are skipped unbuilt, so memory follows the rows (a generic JSON
/// tree of a file costs many times its size).
/// An export's database, rows, and the first row whose delivery its ledger records
/// (`deliveries_recorded_from`; from the rows alone when the export predates it).
type Export = (String, Vec<LedgerRow>, Option<i64>);

fn parse_export(bytes: &[u8]) -> std::result::Result<Export, String> {
    #[derive(serde::Deserialize)]
    struct Doc {
        database: Option<String>,
        rows: Option<Vec<LedgerRow>>,
        deliveries_recorded_from: Option<i64>,
    }
    let doc: Doc = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let database = doc.database.ok_or("it has no \"database\" name")?;
    let rows = doc.rows.ok_or("it has no \"rows\" array")?;
    let era = doc
        .deliveries_recorded_from
        .or_else(|| ledger::delivery_era(&rows, false));
    Ok((database, rows, era))
}
