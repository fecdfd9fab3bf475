//! What the release declares it destroys (`[[tier]] destroys`), held against what its
//! statements destroy: each destruction is declared when its tier names the object or
//! what holds it (`public` covers everything in schema public, `public.t` the table
//! and its columns); a declared name nothing in its tier destroys is a note.

use super::{NotDestroyed, Predictions};
use airlock_bundle::verified::VerifiedBundle;

/// Mark each destruction declared or not, and list the declared names nothing
/// destroys, for the tiers `tiers` names.
pub(super) fn judge(vb: &VerifiedBundle, tiers: &[String], out: &mut Predictions) {
    let m = vb.manifest();
    for tier in m.tier.iter().filter(|t| tiers.contains(&t.name)) {
        let declared: Vec<(String, Vec<String>)> = tier
            .destroys
            .iter()
            .filter_map(|n| Some((n.clone(), airlock_sql::object_name(n).ok()?)))
            .collect();
        let mut used = vec![false; declared.len()];
        for d in out.destroys.iter_mut().filter(|d| d.tier == tier.name) {
            let Ok(object) = airlock_sql::object_name(&d.object) else {
                continue;
            };
            for (i, (_, parts)) in declared.iter().enumerate() {
                if object.starts_with(parts) {
                    d.declared = true;
                    used[i] = true;
                }
            }
        }
        out.declared_not_destroyed
            .extend(
                declared
                    .iter()
                    .zip(used)
                    .filter(|(_, u)| !u)
                    .map(|((name, _), _)| NotDestroyed {
                        tier: tier.name.clone(),
                        name: name.clone(),
                    }),
            );
    }
}
