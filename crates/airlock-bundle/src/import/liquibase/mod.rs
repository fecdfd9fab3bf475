//! Liquibase, read as Liquibase reads it: formatted SQL (`sql`) and XML/YAML
//! changelogs (`changelog`: the file read as a tree, `tree`; each change written as
//! Liquibase's PostgreSQL generator writes it, `changes`, with its types, `types`, and
//! its automatic rollback, `inverse`; its checksum as Liquibase computes it, `checksum`), preconditions decided for the target the
//! bundle is made for (`preconditions`), and the team's mapping of each `customChange`
//! class (`custom`); `${…}` properties substituted as Liquibase substitutes them
//! (`properties`).

pub(in crate::import) mod changelog;
mod changes;
mod checksum;
pub(in crate::import) mod custom;
pub(in crate::import) mod history;
mod inverse;
mod modify_sql;
pub(in crate::import) mod preconditions;
mod properties;
pub(in crate::import) mod sql;
mod tree;
mod types;
