//! The session room: connecting (`conn`), what airlock pins in every session it opens
//! (`hermetic`), settings the database or a role sets (`inherited`,
//! `db_search_path`), who else is in the database (`sessions`), what could fire in a
//! superuser's session (`owner_code`) or be put in the way of its unqualified names
//! (`shadows`), what reaches beyond the database (`outside`),
//! server notices (`notices`), and the fleet guard at connect (`fleet_member`).
//!
//! Invariant: no session of airlock's runs anything before it is pinned
//! (`search_path = pg_catalog, pg_temp`, the settings that change meaning), and a
//! superuser's session refuses as it opens while a non-superuser's code could fire in
//! it.

pub mod conn;
pub mod db_search_path;
pub mod fleet_member;
pub mod hermetic;
pub mod inherited;
pub mod notices;
pub(crate) mod outside;
pub mod owner_code;
pub mod sessions;
pub mod shadows;
