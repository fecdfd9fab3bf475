//! Which gates a bundle names: those guarding a run's tiers ([`gates_for`]), and every
//! gate of the bundle ([`all_gates`]), each with its file and SQL.
//!
//! Invariant: pure functions of the verified bundle; the manifest's order, each gate
//! once.

use crate::DbError;
use airlock_bundle::manifest::Manifest;
use airlock_bundle::verified::VerifiedBundle;

/// The gates of these tiers, in the manifest's order: (name, file, SQL).
pub(crate) fn gates_for(
    vb: &VerifiedBundle,
    tiers: &[usize],
) -> Result<Vec<(String, String, String)>, DbError> {
    let m = vb.manifest();
    let names = gate_names(m, tiers);
    let mut out = vec![];
    for g in &m.gate {
        if names.contains(&g.name.as_str()) {
            let sql = vb.sql(&g.file).map_err(|e| DbError::State(e.to_string()))?;
            out.push((g.name.clone(), g.file.clone(), sql.to_string()));
        }
    }
    Ok(out)
}

/// The names of the gates guarding these tiers, each once, first use first.
fn gate_names<'m>(m: &'m Manifest, tiers: &[usize]) -> Vec<&'m str> {
    let mut names: Vec<&str> = vec![];
    for &i in tiers {
        for g in &m.tier[i].gates {
            if !names.contains(&g.as_str()) {
                names.push(g);
            }
        }
    }
    names
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
