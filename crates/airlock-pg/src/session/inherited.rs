//! Settings the database or a role sets (`ALTER DATABASE … SET`, `ALTER ROLE … SET`,
//! `ALTER ROLE … IN DATABASE … SET`, stored in `pg_db_role_setting`) are not
//! inherited: right after connecting, in the same message as the session's facts,
//! every such setting that applies to airlock's session is put back to the server's
//! own value for the whole session, so airlock's statements and the bundle's SQL see
//! the same values on every database of the server (and on a rehearsal's clone, which
//! never has the target's database settings).
//!
//! "The server's own value" is what a session would have with no database or role
//! setting: the configuration file's value (`postgresql.conf`, `ALTER SYSTEM`) where
//! airlock may read it (`pg_file_settings`: superusers; a deploy login asks
//! `airlock_conf.file_setting`, which `airlock setup` made, a superuser's function
//! answering for settings of context `user` only, and is used only while it and its
//! schema are a superuser's), otherwise the compiled-in
//! `boot_val` (`timezone_abbreviations`, whose built-in value is set at startup, is
//! `Default`). `RESET` is not enough: it returns to the session default, which
//! includes the database's and role's settings. A custom setting (`app.tenant`) has
//! no built-in value: it becomes empty. `role` is overridden earlier, in the startup
//! packet (`role=none`, [`crate::session::hermetic::startup_options`]), so not even the
//! statement that reads the facts runs as another role; `seed` gets a fresh random
//! seed (the database's would make `random()` predictable). Settings the startup
//! packet already pinned (source `client`) are left as pinned.
//!
//! Not overridden: settings only a superuser may change when airlock is not one
//! (a superuser or a role it granted `SET` on that parameter chose them), and
//! settings fixed at connection start (`log_connections`…), which change logging,
//! not what SQL means. The bundle declares its own values in its SQL (a `SET` in a
//! tier) or in `bundle.toml` (`search_path`), which come later and win.
//!
//! Invariant: after [`OVERRIDE`] ran, no setting in the session has a value whose
//! source is a database or role default that airlock is allowed to change.

/// One column for the facts query: the names of the database and role settings that
/// apply to this session and that airlock overrides ([`OVERRIDE`], or the startup
/// packet), sorted, joined with ", "; empty when there are none. Read before the
/// override runs, in the same message, for `plan` to show.
pub const OVERRIDDEN_NAMES: &str = r#"coalesce((SELECT pg_catalog.string_agg(DISTINCT n.name, ', ' ORDER BY n.name)
      FROM (SELECT pg_catalog.split_part(c.item, '=', 1) AS name
              FROM pg_catalog.pg_db_role_setting d, pg_catalog.unnest(d.setconfig) AS c(item)
             WHERE d.setdatabase OPERATOR(pg_catalog.=) ANY (ARRAY[0, (SELECT b.oid FROM pg_catalog.pg_database b WHERE b.datname OPERATOR(pg_catalog.=) pg_catalog.current_database())]::pg_catalog.oid[])
               AND d.setrole OPERATOR(pg_catalog.=) ANY (ARRAY[0, (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) SESSION_USER)]::pg_catalog.oid[])) n
      LEFT JOIN pg_catalog.pg_settings p ON pg_catalog.lower(p.name) OPERATOR(pg_catalog.=) pg_catalog.lower(n.name)
     WHERE p.name IS NULL OR p.context OPERATOR(pg_catalog.=) 'user'
        OR (p.context OPERATOR(pg_catalog.=) 'superuser' AND coalesce((SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER), false))), '')"#;

/// What `airlock setup` (a superuser) runs so that a deploy login that may not read
/// `pg_file_settings` (every line of the configuration files, secrets included) still
/// gets the file's value of the settings [`OVERRIDE`] puts back: a `SECURITY DEFINER`
/// function in a schema of the superuser's, answering for one setting of context
/// `user` (which any session may change and shows anyway where no default overrides
/// it), nothing else. Granted to the login by setup.
pub const CONF_SETUP: [&str; 3] = [
    "CREATE SCHEMA IF NOT EXISTS airlock_conf",
    "CREATE OR REPLACE FUNCTION airlock_conf.file_setting(setting_name pg_catalog.text) RETURNS pg_catalog.text \
     LANGUAGE sql STABLE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $airlock_conf$ \
     SELECT f.setting FROM pg_catalog.pg_file_settings f \
       JOIN pg_catalog.pg_settings s ON pg_catalog.lower(s.name) OPERATOR(pg_catalog.=) pg_catalog.lower(f.name) \
      WHERE pg_catalog.lower(f.name) OPERATOR(pg_catalog.=) pg_catalog.lower(setting_name) \
        AND s.context OPERATOR(pg_catalog.=) 'user' AND f.applied AND f.error IS NULL \
      ORDER BY f.seqno DESC LIMIT 1 $airlock_conf$",
    "REVOKE ALL ON FUNCTION airlock_conf.file_setting(pg_catalog.text) FROM PUBLIC",
];

/// A column for `airlock setup`'s facts: the owner of a schema `airlock_conf` that is
/// no superuser's (someone else made it first), or NULL.
pub const CONF_SQUATTED: &str =
    "(SELECT o.rolname::pg_catalog.text FROM pg_catalog.pg_namespace n \
    JOIN pg_catalog.pg_roles o ON o.oid OPERATOR(pg_catalog.=) n.nspowner \
   WHERE n.nspname OPERATOR(pg_catalog.=) 'airlock_conf' AND NOT o.rolsuper)";

/// A `DO` block (plpgsql, which the ledger's trigger needs anyway) sent in the same
/// simple-protocol message as the session's facts. Everything is schema-qualified;
/// it runs under airlock's pinned `search_path = pg_catalog, pg_temp`. The file
/// settings are read by `EXECUTE` only when airlock may read them, so a role that may
/// not is not refused by a permission check on the plan. Whether airlock may change a
/// superuser's setting is asked of `CURRENT_USER`, the role `set_config` checks (the
/// session user: `role` is pinned to `none` at startup). A setting it then still
/// cannot change is an error naming it, never skipped in silence.
pub const OVERRIDE: &str = r#"DO $airlock_inherited$
DECLARE
    su boolean := coalesce((SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER), false);
    files boolean := pg_catalog.has_function_privilege('pg_catalog.pg_show_all_file_settings()', 'EXECUTE')
                     AND pg_catalog.has_table_privilege('pg_catalog.pg_file_settings', 'SELECT');
    conf boolean := coalesce((SELECT pg_catalog.bool_or(pg_catalog.has_function_privilege(p.oid, 'EXECUTE'))
                                FROM pg_catalog.pg_proc p
                                JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) p.pronamespace
                                JOIN pg_catalog.pg_roles po ON po.oid OPERATOR(pg_catalog.=) p.proowner
                                JOIN pg_catalog.pg_roles no ON no.oid OPERATOR(pg_catalog.=) n.nspowner
                               WHERE n.nspname OPERATOR(pg_catalog.=) 'airlock_conf' AND p.proname OPERATOR(pg_catalog.=) 'file_setting'
                                 AND p.proargtypes OPERATOR(pg_catalog.=) '25'::pg_catalog.oidvector
                                 AND p.prosecdef AND po.rolsuper AND no.rolsuper), false);
    n text;
    v text;
    s record;
BEGIN
    FOR n IN
        SELECT DISTINCT pg_catalog.split_part(c.item, '=', 1)
          FROM pg_catalog.pg_db_role_setting d, pg_catalog.unnest(d.setconfig) AS c(item)
         WHERE d.setdatabase OPERATOR(pg_catalog.=) ANY (ARRAY[0, (SELECT b.oid FROM pg_catalog.pg_database b WHERE b.datname OPERATOR(pg_catalog.=) pg_catalog.current_database())]::pg_catalog.oid[])
           AND d.setrole OPERATOR(pg_catalog.=) ANY (ARRAY[0, (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) SESSION_USER)]::pg_catalog.oid[])
    LOOP
        SELECT p.name, p.context, p.source, p.boot_val INTO s
          FROM pg_catalog.pg_settings p
         WHERE pg_catalog.lower(p.name) OPERATOR(pg_catalog.=) pg_catalog.lower(n);
        IF NOT FOUND THEN
            IF pg_catalog.strpos(n, '.') OPERATOR(pg_catalog.>) 0 THEN
                PERFORM pg_catalog.set_config(n, '', false);
            ELSIF pg_catalog.lower(n) OPERATOR(pg_catalog.=) 'seed' THEN
                PERFORM pg_catalog.setseed(((('x' OPERATOR(pg_catalog.||) pg_catalog.substr(pg_catalog.md5(pg_catalog.gen_random_uuid()::pg_catalog.text), 1, 7))::pg_catalog.bit(28)::pg_catalog.int4)::pg_catalog.float8 OPERATOR(pg_catalog./) 268435455::pg_catalog.float8));
            END IF;
        ELSIF s.source OPERATOR(pg_catalog.=) ANY (ARRAY['database', 'user', 'database user']::pg_catalog.text[])
              AND (s.context OPERATOR(pg_catalog.=) 'user' OR (s.context OPERATOR(pg_catalog.=) 'superuser' AND su)) THEN
            v := NULL;
            IF files THEN
                EXECUTE 'SELECT f.setting FROM pg_catalog.pg_file_settings f WHERE pg_catalog.lower(f.name) OPERATOR(pg_catalog.=) pg_catalog.lower($1) AND f.applied AND f.error IS NULL ORDER BY f.seqno DESC LIMIT 1'
                   INTO v USING s.name;
            ELSIF conf AND s.context OPERATOR(pg_catalog.=) 'user' THEN
                EXECUTE 'SELECT airlock_conf.file_setting($1::pg_catalog.text)' INTO v USING s.name;
            END IF;
            IF v IS NULL THEN
                v := CASE WHEN s.name OPERATOR(pg_catalog.=) 'timezone_abbreviations' THEN 'Default' ELSE s.boot_val END;
            END IF;
            PERFORM pg_catalog.set_config(s.name, v, false);
        END IF;
    END LOOP;
    IF su AND pg_catalog.current_setting('session_replication_role') OPERATOR(pg_catalog.<>) 'origin' THEN
        PERFORM pg_catalog.set_config('session_replication_role', 'origin', false);
    END IF;
END
$airlock_inherited$"#;
