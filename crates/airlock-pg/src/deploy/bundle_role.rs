//! Who bundle SQL (tier and rollback files) runs as, and in whose session.
//!
//! The bundle names the role (`[target] role`), or says it needs a superuser
//! (`[target] superuser = true`: the role airlock connects as, which must be one);
//! otherwise it is the target database's owner (`pg_database.datdba`). airlock switches
//! to it in the prelude of every bundle file, in the same message (no round trip):
//! `SET LOCAL SESSION AUTHORIZATION` when airlock logged in as a superuser (so the
//! file cannot `SET ROLE` to anyone its role could not), `SET LOCAL ROLE` otherwise;
//! every prelude first switches back to airlock's login role, so its own pins can be
//! set, and [`crate::session::hermetic::repin_sql`] switches back for airlock's own statements.
//!
//! A switch is no boundary: code fired by bundle SQL (a trigger, a domain's default, a
//! partition key's function…) can `RESET SESSION AUTHORIZATION` or `RESET ROLE` and is
//! the *login* role again. So the boundary is the login itself, by construction:
//! - bundle SQL that runs as a role that is no superuser runs only on a login that is
//!   no superuser and has no path to one, nor to `CREATEROLE` or the server-program and
//!   server-file roles ([`BundleRole::login_powers`] empty): whatever code it fires
//!   reaches at most the login's rights. A superuser login is refused up front, with
//!   the one-time setup (`airlock setup`) that makes such a deploy login;
//! - bundle SQL that runs as a superuser (declared, or because its role is one) runs
//!   only while nothing a non-superuser owns could fire ([`crate::session::owner_code`], derived
//!   from the catalog's ownership and dependency records, not from a list of sites).
//!
//! Invariant: no bundle file runs before [`check`] resolved the role, proved the
//! login role can become it, and proved one of the two above; airlock's own statements
//! never run as that role.

use crate::session::hermetic::Scope;
use crate::session::owner_code::{self, OwnerCode};
use crate::{quote_ident, sql_err, DbError};
use airlock_bundle::spec::Target;
use postgres::GenericClient;
use schemars::JsonSchema;
use serde::Serialize;

/// How many objects a refusal lists by name (the rest are counted).
const LISTED: usize = 20;

/// Where the role came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RoleSource {
    /// `[target] role`.
    Declared,
    /// `[target] superuser = true`: airlock's login role.
    Superuser,
    /// No declaration: the target database's owner.
    DatabaseOwner,
}

/// The role bundle SQL runs as, resolved on this server.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct BundleRole {
    pub role: String,
    pub source: RoleSource,
    /// The role is a superuser.
    pub superuser: bool,
    /// The role airlock logs in as (its own statements run as it).
    pub login_role: String,
    /// The bundle's SQL runs as a superuser (the role is one), so it runs only while
    /// nothing a non-superuser owns could fire ([`crate::session::owner_code`]).
    pub reaches_superuser: bool,
    /// What the login role could reach beyond its own rights (a superuser, CREATEROLE,
    /// the server-program and server-file roles), itself or through a role it belongs
    /// to: code bundle SQL fires can get back to the login and use them. Must be empty
    /// when the bundle's SQL runs as a role that is no superuser.
    pub login_powers: Vec<String>,
    #[serde(skip)]
    login_superuser: bool,
    /// The schemas of the bundle's search_path (`$user` as the role's name): where a
    /// superuser's unqualified names resolve ([`crate::session::shadows`]).
    #[serde(skip)]
    search_path: Vec<String>,
}

impl BundleRole {
    /// The statements that end a bundle file's prelude.
    pub fn switch_sql(&self) -> String {
        self.switch_in(Scope::Transaction)
    }

    fn switch_in(&self, scope: Scope) -> String {
        let set = scope.set();
        if self.login_superuser {
            format!("{set}SESSION AUTHORIZATION {}; ", quote_ident(&self.role))
        } else {
            format!("{set}ROLE {}; ", quote_ident(&self.role))
        }
    }

    /// The prelude of a tier or rollback file: back to airlock's login role (a
    /// previous file's switch lasts until the transaction ends, and the pins below may
    /// need the login role's rights), the bundle's pins, then the switch.
    pub fn prelude(&self, pins_prelude: &str) -> String {
        self.prelude_in(pins_prelude, Scope::Transaction)
    }

    /// [`Self::prelude`] lasting for `scope`; `pins_prelude` must be rendered for the
    /// same scope ([`crate::session::hermetic::BundlePins::prelude_in`]).
    pub fn prelude_in(&self, pins_prelude: &str, scope: Scope) -> String {
        let set = scope.set();
        format!(
            "{set}SESSION AUTHORIZATION DEFAULT; {set}ROLE NONE; {pins_prelude}{}",
            self.switch_in(scope)
        )
    }

    /// One line for people: who runs what.
    pub fn describe(&self) -> String {
        let why = match self.source {
            RoleSource::Declared => "declared by the bundle",
            RoleSource::Superuser => "the bundle declares superuser = true",
            RoleSource::DatabaseOwner => "the database's owner",
        };
        let su = if self.superuser { ", a superuser" } else { "" };
        format!(
            "bundle SQL runs as {} ({why}{su}); airlock's own statements as {}",
            self.role, self.login_role
        )
    }

    /// [`Self::describe`], once [`guard`] passed: why the code it fires cannot climb.
    pub fn describe_guarded(&self) -> String {
        if self.superuser {
            format!(
                "{}; nothing a non-superuser owns could fire in that session",
                self.describe()
            )
        } else {
            format!(
                "{}; the login is no superuser and has no path to one, so code the SQL fires gets no more than its rights",
                self.describe()
            )
        }
    }
}

const RESOLVE: &str = "SELECT w.name, r.oid IS NOT NULL, coalesce(r.rolsuper, false), \
        coalesce(pg_catalog.pg_has_role(SESSION_USER, r.oid, 'MEMBER'), false), \
        s.rolsuper, \
        SESSION_USER::pg_catalog.text, \
        {powers} \
   FROM pg_catalog.pg_database d \
   JOIN pg_catalog.pg_roles o ON o.oid OPERATOR(pg_catalog.=) d.datdba \
   JOIN pg_catalog.pg_roles s ON s.rolname OPERATOR(pg_catalog.=) SESSION_USER \
  CROSS JOIN LATERAL (SELECT CASE WHEN $2 THEN SESSION_USER::pg_catalog.text \
                                  ELSE coalesce($1::pg_catalog.text, o.rolname::pg_catalog.text) END) w(name) \
   LEFT JOIN pg_catalog.pg_roles r ON r.rolname::pg_catalog.text OPERATOR(pg_catalog.=) w.name \
  WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database()";

/// What role `who` (a role name or oid expression; `is_super`: its `rolsuper`) could
/// reach beyond its own rights, as a `text[]` expression (empty: nothing): a superuser,
/// CREATEROLE, the server-program and server-file roles, reading the server's
/// configuration (`pg_read_all_settings`, `pg_file_settings`), itself or through a
/// role it belongs to. The one list `airlock setup` proves a deploy login by, too.
pub(crate) fn powers_sql(who: &str, is_super: &str) -> String {
    let member = |role: &str| format!("pg_catalog.pg_has_role({who}, {role}, 'MEMBER')");
    let via = |attr: &str| {
        format!(
            "EXISTS (SELECT FROM pg_catalog.pg_roles x WHERE x.{attr} AND {})",
            member("x.oid")
        )
    };
    format!(
        "CASE WHEN {is_super} THEN ARRAY['is a superuser'] ELSE pg_catalog.array_remove(ARRAY[ \
           CASE WHEN {} THEN 'may become a superuser (a member of one)' END, \
           CASE WHEN {} THEN 'has CREATEROLE, itself or through a role it belongs to (it could grant itself more)' END, \
           CASE WHEN {} THEN 'may run server programs (pg_execute_server_program)' END, \
           CASE WHEN {} THEN 'may write server files (pg_write_server_files)' END, \
           CASE WHEN {} THEN 'may read server files (pg_read_server_files)' END, \
           CASE WHEN {} THEN 'may read every setting, secrets included (pg_read_all_settings, which pg_monitor holds)' END, \
           CASE WHEN pg_catalog.has_table_privilege({who}, 'pg_catalog.pg_file_settings', 'SELECT') \
                  OR pg_catalog.has_function_privilege({who}, 'pg_catalog.pg_show_all_file_settings()', 'EXECUTE') \
                THEN 'may read the configuration files (pg_file_settings; an older airlock setup granted it: run airlock setup again, which revokes it)' END \
         ], NULL) END",
        via("rolsuper"),
        via("rolcreaterole"),
        member("'pg_execute_server_program'"),
        member("'pg_write_server_files'"),
        member("'pg_read_server_files'"),
        member("'pg_read_all_settings'"),
    )
}

fn refuse(message: String, hint: String) -> DbError {
    DbError::BundleRole { message, hint }
}

/// Resolve the role bundle SQL runs as, prove airlock's login role can become it,
/// and, when that login role can reach a superuser, refuse while code owned by a
/// non-superuser sits on the database's relations.
pub fn check(client: &mut impl GenericClient, target: &Target) -> Result<BundleRole, DbError> {
    let role = resolve(client, target)?;
    guard(client, &role)?;
    Ok(role)
}

/// The role bundle SQL runs as, once airlock's login role is proved able to become it.
pub fn resolve(client: &mut impl GenericClient, target: &Target) -> Result<BundleRole, DbError> {
    let row = client
        .query_typed_one(
            &RESOLVE.replace("{powers}", &powers_sql("SESSION_USER", "s.rolsuper")),
            &[
                (&target.role, postgres::types::Type::TEXT),
                (&target.superuser, postgres::types::Type::BOOL),
            ],
        )
        .map_err(|e| sql_err("resolving the role bundle SQL runs as", &e))?;
    let source = if target.superuser {
        RoleSource::Superuser
    } else if target.role.is_some() {
        RoleSource::Declared
    } else {
        RoleSource::DatabaseOwner
    };
    let role = BundleRole {
        role: row.get(0),
        source,
        superuser: row.get(2),
        login_role: row.get(5),
        reaches_superuser: row.get(2),
        login_powers: row.get(6),
        login_superuser: row.get(4),
        search_path: vec![],
    };
    let role = BundleRole {
        search_path: target
            .search_path
            .clone()
            .unwrap_or_else(crate::session::hermetic::default_search_path)
            .into_iter()
            .map(|s| if s == "$user" { role.role.clone() } else { s })
            .collect(),
        ..role
    };
    let (exists, member): (bool, bool) = (row.get(1), row.get(3));
    if !exists {
        return Err(refuse(
            format!(
                "the bundle's SQL is to run as role {:?} ([target] role), which does not exist on this server; nothing ran",
                role.role
            ),
            format!(
                "create it (CREATE ROLE {}) and grant it what the tiers need, or use a bundle made for this server",
                quote_ident(&role.role)
            ),
        ));
    }
    if target.superuser && !role.login_superuser {
        return Err(refuse(
            format!(
                "the bundle declares superuser = true, but airlock connects as {:?}, which is not a superuser; nothing ran",
                role.login_role
            ),
            "connect as a superuser (--db \"user=…\"), or use a bundle that names the role its SQL needs ([target] role)".into(),
        ));
    }
    if !role.login_superuser && !member {
        return Err(refuse(
            format!(
                "airlock connects as {:?}, which cannot become {:?}, the role the bundle's SQL runs as ({}); nothing ran",
                role.login_role,
                role.role,
                match source {
                    RoleSource::DatabaseOwner => "the database's owner",
                    _ => "[target] role",
                }
            ),
            format!(
                "let it: GRANT {} TO {}; or connect as a role that is a member of it",
                quote_ident(&role.role),
                quote_ident(&role.login_role)
            ),
        ));
    }
    Ok(role)
}

/// Bundle SQL that runs as a role that is no superuser, on a login that could give the
/// code it fires more than that (see the module comment).
fn login_refusal(role: &BundleRole) -> DbError {
    refuse(
        format!(
            "the bundle's SQL runs as {:?}, which is no superuser, but airlock logs in as {:?}, which {}: code that SQL fires (a trigger, a default, a domain, a partition key…) can switch back to the login (RESET SESSION AUTHORIZATION, RESET ROLE) and use that, whatever role the SQL runs as; nothing ran",
            role.role,
            role.login_role,
            role.login_powers.join(", ")
        ),
        format!(
            "log in as a deploy login that is no superuser and may become {0}; a superuser makes one once: airlock setup --db \"…user=postgres\" --login deployer (then --db \"…user=deployer\"), or see docs/operator.md, \"One-time setup\"",
            quote_ident(&role.role)
        ),
    )
}

/// Refused when bundle SQL of a role that is no superuser would run on a login with
/// powers beyond its own; when bundle SQL runs as a superuser, refused while anything
/// a non-superuser owns could fire ([`owner_code`]).
pub fn guard(client: &mut impl GenericClient, role: &BundleRole) -> Result<(), DbError> {
    guard_by(role, || {
        let mut found = owner_code::find(client)?;
        found.extend(crate::session::shadows::find(client, &role.search_path)?);
        Ok(found)
    })
}

/// [`guard`] by the statement prepared once on this connection (`cache`: see
/// [`owner_code::find_prepared`]); [`guard`] asks once, in one round trip, unprepared.
///
/// `hold`: the `lock_timeout` of a pass that goes on to run the bundle's SQL in this
/// transaction; then a superuser's answer is made to hold until the end of it
/// ([`owner_code::hold_still`], before the question).
pub fn guard_prepared(
    client: &mut impl GenericClient,
    role: &BundleRole,
    cache: &mut Option<postgres::Statement>,
    hold: Option<&str>,
) -> Result<(), DbError> {
    if let (true, Some(lock_timeout)) = (role.superuser, hold) {
        owner_code::hold_still(client, lock_timeout)?;
    }
    guard_by(role, || {
        let mut found = owner_code::find_prepared(client, cache)?;
        found.extend(crate::session::shadows::find(client, &role.search_path)?);
        Ok(found)
    })
}

fn guard_by(
    role: &BundleRole,
    find: impl FnOnce() -> Result<Vec<OwnerCode>, DbError>,
) -> Result<(), DbError> {
    if !role.superuser && !role.login_powers.is_empty() {
        return Err(login_refusal(role));
    }
    if role.superuser {
        let found = find()?;
        if !found.is_empty() {
            return Err(owner_code_refusal(role, &found));
        }
    }
    Ok(())
}

/// [`check`] on the target before a rehearsal clones it (roles are cluster-wide: code
/// fired on the clone as a superuser changes the real cluster), in a read-only
/// transaction that is rolled back. Returns the role and the target's owner, whom the
/// clone must belong to as well (the default role, and `public` in PostgreSQL 15+).
pub fn check_target(
    spec: &crate::session::conn::ConnSpec,
    expected: &airlock_bundle::target_db::TargetDatabase,
    target: &Target,
) -> Result<(BundleRole, String), DbError> {
    let mut c = spec.connect()?;
    crate::session::conn::name_guard(&mut c, expected)?;
    let mut tx = c
        .build_transaction()
        .read_only(true)
        .start()
        .map_err(|e| sql_err("BEGIN READ ONLY", &e))?;
    let role = check(&mut tx, target)?;
    let owner: String = tx
        .query_one(
            "SELECT pg_catalog.pg_get_userbyid(d.datdba)::pg_catalog.text FROM pg_catalog.pg_database d \
              WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database()",
            &[],
        )
        .map_err(|e| sql_err("reading the target's owner", &e))?
        .get(0);
    tx.rollback().map_err(|e| sql_err("ROLLBACK", &e))?;
    Ok((role, owner))
}

fn owner_code_refusal(role: &BundleRole, found: &[OwnerCode]) -> DbError {
    let mut listed: Vec<String> = found.iter().take(LISTED).map(|c| c.to_string()).collect();
    if found.len() > LISTED {
        listed.push(format!("and {} more", found.len() - LISTED));
    }
    refuse(
        format!(
            "bundle SQL would run as superuser {:?}; refused while something a non-superuser owns could fire in that session, or a non-superuser may put something in the way of its unqualified names ({} object(s)): {}; nothing ran",
            role.role,
            found.len(),
            listed.join("; ")
        ),
        "run the bundle's SQL as a role that is no superuser, from a deploy login that is none either ([target] role, and airlock setup --login deployer), so that this code runs with no more than that role's rights; or have a superuser review and remove (or take over) the objects listed, and revoke the CREATE a non-superuser holds on the search_path's schemas (REVOKE CREATE ON SCHEMA public FROM PUBLIC: PostgreSQL 15's default), or declare a search_path of schemas only superusers own and create in ([target] search_path) and qualify the names".to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(login_superuser: bool) -> BundleRole {
        BundleRole {
            role: "app \"x\"".into(),
            source: RoleSource::DatabaseOwner,
            superuser: false,
            login_role: "root".into(),
            reaches_superuser: false,
            login_powers: vec![],
            login_superuser,
            search_path: vec!["public".into()],
        }
    }

    #[test]
    fn the_switch_is_quoted_and_ends_the_prelude() {
        let p = role(true).prelude("SET LOCAL search_path TO \"public\"; ");
        assert_eq!(
            p,
            "SET LOCAL SESSION AUTHORIZATION DEFAULT; SET LOCAL ROLE NONE; SET LOCAL search_path TO \"public\"; SET LOCAL SESSION AUTHORIZATION \"app \"\"x\"\"\"; "
        );
        assert!(role(false)
            .prelude("")
            .ends_with("SET LOCAL ROLE \"app \"\"x\"\"\"; "));
    }

    #[test]
    fn a_session_prelude_sets_for_the_session_throughout() {
        let pins = crate::session::hermetic::BundlePins {
            search_path: vec!["app".into()],
            statement_timeout: "5min".into(),
            lock_timeout: "10s".into(),
            superuser: true,
        };
        let p = role(true).prelude_in(&pins.prelude_in(Scope::Session), Scope::Session);
        assert!(!p.contains("LOCAL"), "{p}");
        assert!(
            p.starts_with(
                "SET SESSION AUTHORIZATION DEFAULT; SET ROLE NONE; SET search_path TO \"app\"; "
            ),
            "{p}"
        );
        assert!(
            p.contains("SET session_replication_role TO 'origin'; "),
            "{p}"
        );
        assert!(
            p.ends_with("SET SESSION AUTHORIZATION \"app \"\"x\"\"\"; "),
            "{p}"
        );
        // The transaction prelude is the same statements, each LOCAL.
        let local = role(true).prelude(&pins.prelude());
        assert_eq!(local.replace("SET LOCAL ", "SET "), p);
    }
}
