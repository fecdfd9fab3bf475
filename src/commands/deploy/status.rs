//! `airlock status` and `airlock fingerprint`: read-only views of the target. `status`
//! shows every release the ledger holds, each on its train (`status_train`).

use super::status_train::{self, ApplyRefusal};
use crate::cli::{FingerprintArgs, StatusArgs};
use crate::db::fingerprint::{self, Fingerprint, Level};
use crate::db::ledger::chain::{self as ledger, LedgerRow};
use crate::db::ledger::train::{self, Place, Train};
use crate::db::{conn, remembered, session, DbError};
use crate::error::Result;
use crate::report::{one_line, short, table, Outcome, Report};
use crate::spec::TargetDatabase;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// libpq's default database name is the user name.
pub(crate) fn default_db() -> String {
    std::env::var("PGUSER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(conn::os_user)
}

#[derive(Serialize, schemars::JsonSchema)]
pub struct BundleStatus {
    pub bundle_name: String,
    pub bundle_version: String,
    pub sequence: i64,
    pub bundle_id: String,
    /// applied | partially-applied (k of n tiers) | rolled-back | not-applied (a
    /// --bundle the ledger has no row for). Partial applies are known from the ledger
    /// rows that record the bundle's tiers (`bundle_tiers`), or with --bundle; an
    /// older row without them says `applied` unless --bundle is given.
    pub state: String,
    pub applied_tiers: Vec<String>,
    /// How many tiers the bundle has (from the ledger row's `bundle_tiers`, or
    /// --bundle).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tiers_total: Option<usize>,
    /// The bundle's tiers not applied yet, in order (when `tiers_total` is known).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining_tiers: Option<Vec<String>>,
    pub last_event: String,
    pub at: String,
    pub operator: String,
    pub params: String,
    pub ledger_seq: i64,
    /// Online tiers part-way done: tier → statements completed and recorded (an apply
    /// continues with the next).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub online_steps: BTreeMap<String, usize>,
    /// Ledger rows of this bundle whose receipt the ledger does not record as
    /// delivered: a run interrupted after it committed (`airlock reissue` writes their
    /// receipt). Rows written before the ledger recorded deliveries are not listed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub undelivered: Vec<i64>,
    /// Ledger rows of this bundle whose only delivered receipt was reissued from the
    /// ledger after its run was interrupted (`airlock reissue`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reissued: Vec<i64>,
    /// This is a bundle given on the command line (`status BUNDLE`), as its ledger
    /// rows show it (absent: a release the ledger holds that was not given).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub given: bool,
    /// A given bundle for a fleet: its `[target] database` (names and patterns).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_database: Option<TargetDatabase>,
    /// A given bundle for a fleet: the name or pattern this database matches; absent
    /// when it matches none (the name guard refuses the bundle here).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_match: Option<String>,
    /// Its place on its train (the releases of its name; see `trains`): `current`,
    /// the release the database stands at; `superseded` by a later one in force;
    /// `rolled-back`. Absent: the ledger holds no row of it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train: Option<Place>,
    /// A given bundle with tiers not applied that `apply` would refuse here (a later
    /// release of its train is in force, the one it follows is not…), as `apply`
    /// decides it. Absent: `apply` would run its remaining tiers, or none remains.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apply_refusal: Option<ApplyRefusal>,
}

#[derive(Serialize, schemars::JsonSchema)]
pub struct ChainCheck {
    pub ok: bool,
    pub rows: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_broken_seq: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What this host remembers of the target's ledger, and whether the ledger holds it.
#[derive(Serialize, schemars::JsonSchema)]
pub struct HeadMemory {
    /// none (nothing remembered yet) | held | lost | forgotten
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row_hash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub file: String,
}

/// How `status` and `fingerprint` chose their database, for people.
fn chosen_by(from: &str) -> String {
    match from {
        "default" => "no --db, AIRLOCK_DB or PGDATABASE: libpq's default, the user name; pass --db NAME for another".into(),
        other => format!("from {other}"),
    }
}

#[derive(Serialize, schemars::JsonSchema)]
pub struct StatusReport {
    /// The database read (`current_database()`).
    pub database: String,
    /// Where its name came from: "--db or AIRLOCK_DB", "db in airlock.toml (PATH)",
    /// "PGDATABASE", "the bundle's
    /// [target] database" (with --bundle) or "default" (no name given anywhere: libpq's
    /// default, the user name).
    pub database_from: String,
    pub ledger_exists: bool,
    pub remembered_head: HeadMemory,
    /// Every release the ledger holds (by its latest row), by name and sequence; then
    /// each bundle given that the ledger has no row of.
    pub bundles: Vec<BundleStatus>,
    /// Where each train stands: the trains the ledger holds, and those of the bundles
    /// given, by name.
    pub trains: Vec<Train>,
    pub rows: Vec<RowView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chain: Option<ChainCheck>,
    /// The first ledger row whose receipt's delivery the ledger records (rows before
    /// were written when none was); absent: the ledger records no deliveries yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deliveries_recorded_from: Option<i64>,
    /// The trust store that verified the bundles given (with BUNDLE and --trust).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trust_store: Option<StoreState>,
}

/// A ledger row as stored (its `tiers` and `params` are the JSON text the hash chain
/// covers, kept for scripts that read them), with both decoded beside it.
#[derive(Serialize, schemars::JsonSchema)]
pub struct RowView {
    #[serde(flatten)]
    pub row: LedgerRow,
    /// `tiers`, decoded: the tiers this row applied or rolled back, in order.
    pub tier_names: Vec<String>,
    /// `params`, decoded.
    pub param_values: BTreeMap<String, String>,
}

impl From<LedgerRow> for RowView {
    fn from(row: LedgerRow) -> Self {
        RowView {
            tier_names: row.tier_names(),
            param_values: serde_json::from_str(&row.params).unwrap_or_default(),
            row,
        }
    }
}

impl Report for StatusReport {
    fn human(&self) -> String {
        if !self.ledger_exists {
            return format!(
                "database {} ({}): no airlock ledger yet (nothing was ever applied with airlock){}\nremembered head: {}",
                self.database,
                chosen_by(&self.database_from),
                self.bundles
                    .iter()
                    .map(BundleStatus::target_line)
                    .collect::<String>(),
                memory_line(&self.remembered_head)
            );
        }
        let rows: Vec<Vec<String>> = self.bundles.iter().map(BundleStatus::row).collect();
        let mut out = format!(
            "database {} ({}): {} ledger row(s)\n\n{}",
            self.database,
            chosen_by(&self.database_from),
            self.rows.len(),
            table(
                &[
                    "bundle",
                    "version",
                    "seq",
                    "id",
                    "state",
                    "tiers",
                    "last change",
                    "operator",
                    "params"
                ],
                &rows
            )
        );
        for train in &self.trains {
            out.push_str(&status_train::stands_line(train));
        }
        for bundle in &self.bundles {
            out.push_str(&bundle.remaining_line());
        }
        if let Some(chain) = &self.chain {
            out.push_str(&chain.line());
        }
        out.push_str(&format!(
            "\nremembered head: {}",
            memory_line(&self.remembered_head)
        ));
        if let Some(store) = &self.trust_store {
            out.push_str(&store.line());
        }
        out
    }
    fn exit_code(&self) -> crate::exit::Exit {
        match &self.chain {
            Some(c) if !c.ok => crate::exit::Exit::State,
            _ if self.remembered_head.state == "lost" => crate::exit::Exit::State,
            _ => crate::exit::Exit::Success,
        }
    }
    /// Under `--quiet`, a broken hash chain or a lost head still says so (exit 5).
    fn quiet_line(&self) -> Option<String> {
        let mut why = Vec::new();
        if let Some(c) = self.chain.as_ref().filter(|c| !c.ok) {
            why.push(one_line(c.line().trim_start()));
        }
        if self.remembered_head.state == "lost" {
            why.push(format!(
                "remembered head: {}",
                one_line(&memory_line(&self.remembered_head))
            ));
        }
        (!why.is_empty()).then(|| why.join("\n"))
    }
}

/// A row's params (compact JSON) with a space after each comma between values, so a
/// narrow terminal wraps between params, never inside a name; other text as it is.
fn spaced_params(params: &str) -> String {
    match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(params) {
        Ok(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{}:{v}", serde_json::Value::from(k.as_str())))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Err(_) => params.to_string(),
    }
}

impl BundleStatus {
    /// Its row of the status table.
    fn row(&self) -> Vec<String> {
        vec![
            self.bundle_name.clone(),
            self.bundle_version.clone(),
            self.sequence.to_string(),
            short(&self.bundle_id).into(),
            match self.tiers_total {
                Some(total) if self.state == "partially-applied" => {
                    format!("partial {}/{total}", self.applied_tiers.len())
                }
                _ => self.state.clone(),
            },
            // At spaces, so a narrow terminal wraps between tier names, never in one.
            self.applied_tiers.join(", "),
            crate::trust::shown(&self.at),
            self.operator.clone(),
            spaced_params(&self.params),
        ]
    }

    /// A given bundle for a fleet: its names and patterns, and whether this database
    /// matches one (nothing for a bundle for one database).
    fn target_line(&self) -> String {
        match (&self.target_database, &self.target_match) {
            (Some(t), Some(m)) => format!(
                "\n{} {}: for {}; this database matches {m:?}",
                self.bundle_name,
                self.bundle_version,
                t.describe()
            ),
            (Some(t), None) => format!(
                "\n{} {}: for {}; this database matches none of them (the name guard refuses the bundle here)",
                self.bundle_name,
                self.bundle_version,
                t.describe()
            ),
            _ => String::new(),
        }
    }

    /// The lines under the table about this bundle, if there are any.
    fn remaining_line(&self) -> String {
        self.tiers_line()
            + &self.target_line()
            + &self
                .online_steps
            .iter()
            .map(|(tier, k)| {
                format!(
                    "\n{} {}: online tier {tier:?}: {k} step(s) done and recorded; airlock apply continues with step {}",
                    self.bundle_name,
                    self.bundle_version,
                    k + 1
                )
            })
            .collect::<String>()
            + &self.undelivered_line()
            + &self.reissued_line()
    }

    /// The line about the tiers still to apply: where `apply` continues, or why it
    /// would refuse; nothing for a release a later one of its train builds on.
    fn tiers_line(&self) -> String {
        if let Some(refusal) = &self.apply_refusal {
            return status_train::refusal_line(&self.bundle_name, &self.bundle_version, refusal);
        }
        if self.train == Some(Place::Superseded) {
            return String::new();
        }
        match (&self.remaining_tiers, self.tiers_total) {
            (Some(rest), Some(total)) if !rest.is_empty() && self.state != "rolled-back" => {
                format!(
                    "\n{} {}: {} of {total} tier(s) applied; remaining: {} (airlock apply continues with {})",
                    self.bundle_name,
                    self.bundle_version,
                    self.applied_tiers.len(),
                    rest.join(", "),
                    rest[0]
                )
            }
            (None, _) if self.state == "applied" => format!(
                "\n{} {}: {} tier(s) applied; give --bundle to see whether any remain",
                self.bundle_name,
                self.bundle_version,
                self.applied_tiers.len()
            ),
            _ => String::new(),
        }
    }

    /// Rows whose receipt was reissued from the ledger (no receipt of theirs was
    /// delivered by their run).
    fn reissued_line(&self) -> String {
        if self.reissued.is_empty() {
            return String::new();
        }
        let seqs: Vec<String> = self.reissued.iter().map(|s| format!("#{s}")).collect();
        format!(
            "\n{} {}: the receipt of ledger row(s) {} was reissued from the ledger (its run was interrupted after it committed)",
            self.bundle_name,
            self.bundle_version,
            seqs.join(", ")
        )
    }

    /// Rows whose receipt was never delivered, and the command that writes it.
    fn undelivered_line(&self) -> String {
        if self.undelivered.is_empty() {
            return String::new();
        }
        let seqs: Vec<String> = self.undelivered.iter().map(|s| format!("#{s}")).collect();
        format!(
            "\n{} {}: no delivered receipt for ledger row(s) {} (a run interrupted after it committed): airlock reissue BUNDLE --trust STORE writes it",
            self.bundle_name,
            self.bundle_version,
            seqs.join(", ")
        )
    }
}

impl ChainCheck {
    fn of(rows: &[LedgerRow]) -> ChainCheck {
        match ledger::verify_chain(rows) {
            None => ChainCheck {
                ok: true,
                rows: rows.len(),
                first_broken_seq: None,
                reason: None,
            },
            Some((seq, why)) => ChainCheck {
                ok: false,
                rows: rows.len(),
                first_broken_seq: Some(seq),
                reason: Some(why),
            },
        }
    }

    fn line(&self) -> String {
        match (self.ok, self.first_broken_seq) {
            (true, _) => format!("\n\nhash chain: OK ({} rows)", self.rows),
            (false, Some(seq)) => format!(
                "\n\nhash chain: BROKEN at row {seq}: {}",
                self.reason.clone().unwrap_or_default()
            ),
            _ => "\n\nhash chain: BROKEN".into(),
        }
    }
}

fn memory_line(memory: &HeadMemory) -> String {
    match memory.state.as_str() {
        "held" => format!(
            "this host last saw seq {} ({}): still in the ledger",
            memory.seq.unwrap_or(0),
            short(memory.row_hash.as_deref().unwrap_or(""))
        ),
        "lost" => format!(
            "LOST: {} (memory: {})",
            memory.detail.clone().unwrap_or_default(),
            memory.file
        ),
        "forgotten" => format!("forgotten as asked ({})", memory.file),
        _ => "this host has not seen this ledger before".into(),
    }
}

struct GivenBundle {
    name: String,
    version: String,
    sequence: i64,
    tiers: Vec<String>,
    /// `[target] database`.
    target: TargetDatabase,
    /// Its manifest, to judge it by `apply`'s policy.
    manifest: crate::manifest::Manifest,
}

/// The database to read when no name is given anywhere: the given bundles' target
/// (one, or a usage error naming them), else libpq's default, the user name. A bundle
/// for a fleet names no one database: the connection must.
fn default_for(given: &BTreeMap<String, GivenBundle>) -> Result<(TargetDatabase, bool)> {
    if let Some(fleet) = given.values().find(|g| g.target.default_name().is_none()) {
        return Ok((fleet.target.clone(), true));
    }
    let targets: std::collections::BTreeSet<&str> = given
        .values()
        .filter_map(|g| g.target.default_name())
        .collect();
    match targets.len() {
        0 => Ok((TargetDatabase::Name(default_db()), false)),
        1 => Ok((
            TargetDatabase::Name(targets.into_iter().next().unwrap_or_default().to_string()),
            true,
        )),
        _ => Err(crate::error::Error::usage(
            format!(
                "the bundles given target different databases ({}); say which to read",
                targets.into_iter().collect::<Vec<_>>().join(", ")
            ),
            Some("pass --db NAME".into()),
        )),
    }
}

/// The tier lists of the bundles given (as arguments, or with the older --bundle),
/// verified, by bundle id; and the version of the trust store that verified them.
fn given_bundles(args: &StatusArgs) -> Result<(BTreeMap<String, GivenBundle>, Option<StoreState>)> {
    let mut out = BTreeMap::new();
    let given: Vec<&std::path::PathBuf> = args.bundles.iter().chain(&args.bundle_flags).collect();
    if given.is_empty() {
        return Ok((out, None));
    }
    let Some(trust) = &args.trust else {
        return Err(crate::error::Error::usage(
            "a BUNDLE needs --trust (or AIRLOCK_TRUST) to verify it",
            Some("airlock status BUNDLE --trust PATH".into()),
        ));
    };
    let mut state = None;
    for path in given {
        // A signed trust store a bundle carries is installed before it is judged.
        let store = crate::commands::release::carried::load_trust_for_bundle(trust, path)?;
        state = Some(StoreState {
            version: store.rotation.as_ref().map(|r| r.version),
        });
        let vb = crate::verified::VerifiedBundle::load(
            path,
            &store,
            crate::commands::common::judge_time(None)?,
            &crate::commands::common::verdicts(),
        )?;
        let manifest = vb.manifest();
        out.insert(
            vb.id().to_string(),
            GivenBundle {
                name: manifest.bundle.name.clone(),
                version: manifest.bundle.version.clone(),
                sequence: manifest.bundle.sequence as i64,
                tiers: manifest.tier.iter().map(|t| t.name.clone()).collect(),
                target: manifest.target.database.clone(),
                manifest: manifest.clone(),
            },
        );
    }
    Ok((out, state))
}

/// The trust store `status` verified the bundles given with.
#[derive(Serialize, schemars::JsonSchema)]
pub struct StoreState {
    /// Its version (absent: it has none, and cannot be rotated by signature).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
}

impl StoreState {
    fn line(&self) -> String {
        match self.version {
            Some(v) => format!("\ntrust store: version {v}"),
            None => "\ntrust store: no version: it cannot be rotated by signature (airlock trust add --role root)".into(),
        }
    }
}

/// The target's ledger as read in one read-only transaction.
struct LedgerRead {
    database: String,
    system_identifier: String,
    exists: bool,
    rows: Vec<LedgerRow>,
    /// The first row whose receipt's delivery the ledger records.
    era: Option<i64>,
}

impl LedgerRead {
    fn read(spec: &conn::ConnSpec, statement_timeout: &str) -> Result<LedgerRead> {
        let mut client = spec.connect()?;
        let facts = session::hermetic::open_facts(&mut client, statement_timeout)?;
        let mut tx = client
            .build_transaction()
            .read_only(true)
            .start()
            .map_err(|e| crate::db::sql_err("BEGIN READ ONLY", &e))?;
        let read = crate::db::ledger::reader::read_in(&mut tx)?;
        let (exists, rows, era) = (
            read.presence == ledger::Presence::Present,
            read.rows,
            read.era,
        );
        tx.rollback()
            .map_err(|e| crate::db::sql_err("ROLLBACK", &e))?;
        Ok(LedgerRead {
            database: facts.database.clone(),
            system_identifier: facts.system_identifier.clone(),
            exists,
            rows,
            era,
        })
    }

    /// What this host remembers of this ledger; `--forget-head` forgets it first.
    /// A ledger that verifies teaches this host its newest row.
    fn head_memory(&self, forget: bool) -> Result<HeadMemory> {
        let sys = self.system_identifier.as_str();
        let database = self.database.as_str();
        let file = remembered::file_for(sys, database).display().to_string();
        if forget {
            remembered::forget(sys, database)?;
            self.learn_head();
            return Ok(HeadMemory {
                state: "forgotten".into(),
                seq: None,
                row_hash: None,
                detail: None,
                file,
            });
        }
        match remembered::check(sys, database, &self.rows) {
            Ok(head) => {
                // A ledger that verifies and holds what this host saw teaches it the newer head.
                self.learn_head();
                Ok(HeadMemory {
                    state: if head.is_some() { "held" } else { "none" }.into(),
                    seq: head.as_ref().map(|h| h.seq),
                    row_hash: head.map(|h| h.row_hash),
                    detail: None,
                    file,
                })
            }
            Err(DbError::LedgerRewound { what, .. }) => {
                let head = remembered::load(sys, database).ok().flatten();
                Ok(HeadMemory {
                    state: "lost".into(),
                    seq: head.as_ref().map(|h| h.seq),
                    row_hash: head.map(|h| h.row_hash),
                    detail: Some(what),
                    file,
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Remember the last row, when the chain verifies.
    fn learn_head(&self) {
        let chain_ok = ledger::verify_chain(&self.rows).is_none();
        if let (true, Some(last)) = (chain_ok, self.rows.last()) {
            if let Some(warning) =
                remembered::remember(&self.system_identifier, &self.database, last)
            {
                eprintln!("{warning}");
            }
        }
    }

    /// Every release of each train in the ledger, by its latest row, then each given
    /// bundle the ledger has no row of; a given one judged against its train.
    fn bundles(
        &self,
        given: &BTreeMap<String, GivenBundle>,
        trains: &[Train],
    ) -> Vec<BundleStatus> {
        let mut latest: BTreeMap<&str, &LedgerRow> = BTreeMap::new();
        for row in self.rows.iter().filter(|r| r.ran()) {
            latest.insert(row.bundle_id.as_str(), row);
        }
        let mut bundles: Vec<BundleStatus> = (trains.iter().flat_map(|t| &t.releases))
            .filter_map(|release| {
                let row = latest.get(release.bundle_id.as_str())?;
                let mut b = BundleStatus::in_ledger(row, self, given.get(&row.bundle_id));
                b.train = Some(release.place);
                Some(b)
            })
            .collect();
        // A given bundle the ledger has never seen (or only other releases of its name).
        for (id, bundle) in given {
            if !bundles.iter().any(|b| &b.bundle_id == id) {
                bundles.push(BundleStatus::not_applied(id, bundle));
            }
        }
        for b in &mut bundles {
            let Some(g) = given.get(&b.bundle_id) else {
                continue;
            };
            b.given = true;
            let remaining = b.remaining_tiers.as_deref().unwrap_or_default();
            b.apply_refusal =
                status_train::apply_refusal(&g.manifest, &b.bundle_id, &self.rows, remaining);
            if g.target.is_fleet() {
                b.target_match = g.target.matching(&self.database).map(str::to_string);
                b.target_database = Some(g.target.clone());
            }
        }
        bundles
    }
}

impl BundleStatus {
    /// A bundle by its latest ledger row (`row`), with its tiers when it was given.
    fn in_ledger(row: &LedgerRow, read: &LedgerRead, given: Option<&GivenBundle>) -> Self {
        let rows = &read.rows;
        let st = ledger::state_of(rows, &row.bundle_id);
        let applied = st.applied;
        let online_steps: BTreeMap<String, usize> = st
            .steps
            .iter()
            .filter(|(t, _)| !applied.contains(t))
            .map(|(t, k)| (t.clone(), *k))
            .collect();
        // The bundle's tiers: given, or as its last apply row records them.
        let tiers: Option<Vec<String>> = given.map(|g| g.tiers.clone()).or_else(|| {
            st.last_apply
                .as_ref()
                .and_then(LedgerRow::bundle_tier_names)
        });
        let remaining = tiers.as_ref().map(|all| {
            all.iter()
                .filter(|name| !applied.contains(name))
                .cloned()
                .collect::<Vec<_>>()
        });
        let state = if row.event == "rollback" {
            "rolled-back"
        } else if row.event == "step" {
            "partially-applied"
        } else if row.tiers.is_empty() {
            "unknown"
        } else if remaining.as_ref().is_some_and(|rest| !rest.is_empty()) {
            "partially-applied"
        } else {
            "applied"
        };
        BundleStatus {
            tiers_total: tiers.as_ref().map(Vec::len),
            remaining_tiers: remaining,
            bundle_name: row.bundle_name.clone(),
            bundle_version: row.bundle_version.clone(),
            sequence: row.sequence,
            bundle_id: row.bundle_id.clone(),
            state: state.into(),
            applied_tiers: applied,
            last_event: row.event.clone(),
            at: row.at.clone(),
            operator: row.operator.clone(),
            params: row.params.clone(),
            ledger_seq: row.seq,
            online_steps,
            undelivered: crate::db::delivery::undelivered(rows, read.era, Some(&row.bundle_id))
                .iter()
                .map(|r| r.seq)
                .collect(),
            reissued: reissued_rows(rows, &row.bundle_id),
            given: false,
            target_database: None,
            target_match: None,
            train: None,
            apply_refusal: None,
        }
    }

    fn not_applied(id: &str, given: &GivenBundle) -> Self {
        BundleStatus {
            bundle_name: given.name.clone(),
            bundle_version: given.version.clone(),
            sequence: given.sequence,
            bundle_id: id.to_string(),
            state: "not-applied".into(),
            applied_tiers: vec![],
            tiers_total: Some(given.tiers.len()),
            remaining_tiers: Some(given.tiers.clone()),
            last_event: String::new(),
            at: String::new(),
            operator: String::new(),
            params: String::new(),
            ledger_seq: 0,
            online_steps: BTreeMap::new(),
            undelivered: vec![],
            reissued: vec![],
            given: false,
            target_database: None,
            target_match: None,
            train: None,
            apply_refusal: None,
        }
    }
}

/// The rows of bundle `id` that a reissued delivery covers and no delivery by their
/// own run does, in ledger order.
fn reissued_rows(rows: &[LedgerRow], id: &str) -> Vec<i64> {
    let (mut reissued, mut delivered) = (BTreeSet::new(), BTreeSet::new());
    for d in rows
        .iter()
        .filter(|r| r.bundle_id == id)
        .filter_map(LedgerRow::delivery)
    {
        let set = if d.reissued {
            &mut reissued
        } else {
            &mut delivered
        };
        set.extend(d.covers);
    }
    reissued.difference(&delivered).copied().collect()
}

pub fn status(args: StatusArgs) -> Result<Outcome> {
    let (given, trust_store) = given_bundles(&args)?;
    let (default, from_bundle) = default_for(&given)?;
    let spec = conn::resolve_for(args.db.db.as_deref(), &default)?;
    let database_from = match spec.dbname_from.as_str() {
        "default" if from_bundle => "the bundle's [target] database".to_string(),
        other => crate::project::db_source(other),
    };
    let read = LedgerRead::read(&spec, &args.db.statement_timeout)?;
    let remembered_head = read.head_memory(args.forget_head)?;
    let trains = status_train::with_given(
        train::trains(&read.rows),
        given.values().map(|g| g.name.as_str()),
    );
    let bundles = read.bundles(&given, &trains);
    let chain = args.verify_chain.then(|| ChainCheck::of(&read.rows));
    Ok(Box::new(StatusReport {
        database: read.database,
        database_from,
        ledger_exists: read.exists,
        remembered_head,
        bundles,
        trains,
        deliveries_recorded_from: read.era,
        trust_store,
        rows: read.rows.into_iter().map(RowView::from).collect(),
        chain,
    }))
}

#[derive(Serialize, schemars::JsonSchema)]
pub struct FingerprintReport {
    /// The database fingerprinted (`current_database()`).
    pub database: String,
    /// Where its name came from: "--db or AIRLOCK_DB", "db in airlock.toml (PATH)",
    /// "PGDATABASE" or "default".
    pub database_from: String,
    #[serde(flatten)]
    pub fingerprint: Fingerprint,
}

impl Report for FingerprintReport {
    fn human(&self) -> String {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for p in &self.fingerprint.parts {
            *counts.entry(p.kind.as_str()).or_default() += 1;
        }
        format!(
            "{}  ({} level, database {} ({}), short {})\n  {}",
            self.fingerprint.fingerprint,
            self.fingerprint.level,
            self.database,
            chosen_by(&self.database_from),
            self.fingerprint.short(),
            counts
                .iter()
                .map(|(k, n)| format!("{n} {k}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

#[derive(Serialize, schemars::JsonSchema)]
pub struct FingerprintDiff {
    pub a: String,
    pub b: String,
    pub equal: bool,
    /// "added KIND NAME", "dropped KIND NAME" or "changed KIND NAME" (before 0.x:
    /// "removed" for dropped): `changes`, one line each.
    pub differences: Vec<String>,
    /// The objects that differ, by kind and name: in B only (added), in A only
    /// (dropped), or described differently (changed).
    pub changes: Vec<fingerprint::SchemaChange>,
    /// airlock's own objects that differ, left out of `changes` and `equal`: the
    /// schema `airlock_conf` and what is in it, which `airlock setup` makes and grants
    /// (as the ledger is airlock's, left out of the fingerprint itself).
    pub airlock_own: Vec<fingerprint::SchemaChange>,
}

/// The schema `airlock setup` keeps its function and record in ([`FingerprintDiff::airlock_own`]).
const SETUP_SCHEMA: &str = "airlock_conf";

/// Whether a change is of airlock's own setup objects.
fn airlock_own(c: &fingerprint::SchemaChange) -> bool {
    c.name == SETUP_SCHEMA
        || c.name
            .strip_prefix(SETUP_SCHEMA)
            .is_some_and(|rest| rest.starts_with('.'))
}

impl Report for FingerprintDiff {
    fn human(&self) -> String {
        let own = if self.airlock_own.is_empty() {
            String::new()
        } else {
            format!(
                "\n  apart from airlock's own objects (what `airlock setup` makes), which do not count:\n    {}",
                (self.airlock_own.iter())
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n    ")
            )
        };
        if self.equal && self.a == self.b {
            format!("equal: {}", short(&self.a))
        } else if self.equal {
            format!("equal: {} vs {}{own}", short(&self.a), short(&self.b))
        } else {
            format!(
                "DIFFERENT: {} vs {}\n  {}{own}",
                short(&self.a),
                short(&self.b),
                self.differences.join("\n  ")
            )
        }
    }
    fn exit_code(&self) -> crate::exit::Exit {
        if self.equal {
            crate::exit::Exit::Success
        } else {
            crate::exit::Exit::State
        }
    }
    /// Under `--quiet`, two fingerprints that differ still say so, as `diff -q` does.
    fn quiet_line(&self) -> Option<String> {
        (!self.equal).then(|| {
            format!(
                "DIFFERENT: {} vs {}: {} object(s) differ",
                short(&self.a),
                short(&self.b),
                self.changes.len()
            )
        })
    }
}

fn read_fingerprint(p: &std::path::Path) -> Result<Fingerprint> {
    let text = airlock_base::bounded::read_capped_string(p, airlock_base::bounded::FINGERPRINT)?;
    serde_json::from_str(&text).map_err(|e| {
        crate::Error::usage(
            format!(
                "{} is not a saved `airlock fingerprint --json` output: {e}",
                p.display()
            ),
            Some("save one with: airlock fingerprint --json --db ... > A.json".into()),
        )
    })
}

pub fn fingerprint(args: FingerprintArgs) -> Result<Outcome> {
    if let Some(files) = &args.diff {
        let (a, b) = (read_fingerprint(&files[0])?, read_fingerprint(&files[1])?);
        if let Some(why) = a.incomparable(&b) {
            return Err(crate::Error::usage(why, None));
        }
        let (airlock_own, changes): (Vec<_>, Vec<_>) = fingerprint::diff_changes(&a, &b)
            .into_iter()
            .partition(airlock_own);
        return Ok(Box::new(FingerprintDiff {
            equal: a.fingerprint == b.fingerprint
                || (changes.is_empty() && !airlock_own.is_empty()),
            a: a.fingerprint,
            b: b.fingerprint,
            differences: changes.iter().map(ToString::to_string).collect(),
            changes,
            airlock_own,
        }));
    }
    let spec = conn::resolve(args.db.db.as_deref(), &default_db())?;
    let mut c = spec.connect()?;
    // The session's facts as every command reads them: settings pinned, and refused on
    // a superuser's login while an event trigger would fire a non-superuser's code on
    // the temporary function the description makes.
    let database = session::hermetic::open_facts(&mut c, &args.db.statement_timeout)?.database;
    let level = if args.data_strict {
        Level::DataStrict
    } else if args.data {
        Level::Data
    } else if args.rows {
        Level::Rows
    } else {
        Level::Schema
    };
    // The readers must reach the database the leader is on, whatever the connection
    // string left to defaults.
    let readers = spec.with_dbname(&database);
    let fp = fingerprint::compute_consistent(&mut c, &readers, level, args.jobs.into())?;
    Ok(Box::new(FingerprintReport {
        database,
        database_from: crate::project::db_source(&spec.dbname_from),
        fingerprint: fp,
    }))
}
