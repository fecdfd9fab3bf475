//! A session on the target: connected, name-guarded, version-checked, pinned; the
//! gate/probe harness it lends; the ledger read and held against this host's memory.
//!
//! Invariant: every deploy, plan and gate reaches the target through [`open`], so the
//! name guard and the server version are checked before anything else runs.

use crate::deploy::options::Options;
use crate::gates::gate::{self, Harness};
use crate::ledger::chain::{self as ledger, LedgerRow};
use crate::session::conn::{self, ConnSpec, ServerInfo};
use crate::session::hermetic::{BundlePins, SessionFacts};
use crate::{ledger::remembered, sql_err, DbError};
use airlock_bundle::manifest::Manifest;
use airlock_bundle::target_db::TargetDatabase;
use postgres::{Client, Transaction};
use std::collections::BTreeMap;

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
    expected: &TargetDatabase,
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
    pub(crate) fn ledger(&mut self) -> Result<Vec<LedgerRow>, DbError> {
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

pub(crate) fn set_params(
    tx: &mut Transaction<'_>,
    params: &BTreeMap<String, String>,
) -> Result<(), DbError> {
    for (k, v) in params {
        tx.query_typed(
            "SELECT pg_catalog.set_config($1, $2, true)",
            &[
                (&format!("airlock.{k}"), postgres::types::Type::TEXT),
                (v, postgres::types::Type::TEXT),
            ],
        )
        .map_err(|e| sql_err(&format!("setting param {k}"), &e))?;
    }
    Ok(())
}

/// The gate/probe harness, resolved the first time a gate or probe is about to run (a
/// bundle with neither needs no gate role).
pub(crate) struct LazyHarness {
    pins: BundlePins,
    requested: Option<String>,
    resolved: Option<Harness>,
}

impl LazyHarness {
    pub(crate) fn new(pins: BundlePins, requested: Option<String>) -> Self {
        LazyHarness {
            pins,
            requested,
            resolved: None,
        }
    }

    pub(crate) fn get(&mut self, tx: &mut Transaction<'_>) -> Result<&Harness, DbError> {
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
