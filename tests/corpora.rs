//! The corpora of issue 25 in CI. The corpora themselves (MusicBrainz's admin/sql,
//! Chinook, Northwind, PostgREST's fixtures, Temporal's schema versions, supabase/auth's
//! migrations) are fetched and run by `scripts/corpora`, out of CI; here, small
//! excerpts written for these tests (not copies of their files) reproduce each one's
//! hard constructs, and each is compared with what `psql -1` leaves.

mod util;
use std::path::{Path, PathBuf};
use std::process::Command;
use util::*;

/// `psql -1 -f` each file (its own session, as a loader running one psql per file),
/// with `PGOPTIONS` set to `options` when given.
fn psql_each(db: &TestDb, files: &[PathBuf], options: Option<&str>) {
    for f in files {
        let mut c = Command::new("psql");
        c.args([
            "-X",
            "-q",
            "-1",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            &db.name,
            "-f",
        ])
        .arg(f);
        if let Some(o) = options {
            c.env("PGOPTIONS", o);
        }
        let o = c.output().expect("psql");
        assert!(
            o.status.success(),
            "{}: {}",
            f.display(),
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

/// Pack `src` and apply it to `db`.
fn pack_and_apply(dir: &Path, src: &Path, db: &TestDb) {
    keygen(dir, "rm");
    pack(dir, src, "rm.key", "b.tar.gz");
    expect_code(
        &airlock(
            dir,
            &["apply", "b.tar.gz", "--trust", "rm.pub", "--db", &db.conn()],
        ),
        0,
    );
}

/// `airlock --json import MIGRATIONS --out OUT --database DB EXTRA…`.
fn import(
    dir: &Path,
    migrations: &Path,
    out: &Path,
    db: &str,
    extra: &[&str],
) -> std::process::Output {
    let mut args = vec![
        "--json",
        "import",
        migrations.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--database",
        db,
    ];
    args.extend_from_slice(extra);
    airlock(dir, &args)
}

/// Chinook's shape: a script that drops and creates its database, connects to it with
/// `\c name;`, then creates tables and fills them with `N'…'` strings and multi-row
/// VALUES.
const SHOP: &str = "\n/*******************************************************************************\n   A record shop, written for this test\n********************************************************************************/\nDROP DATABASE IF EXISTS shop;\n\n\nCREATE DATABASE shop;\n\n\n\\c shop;\n\n\nCREATE TABLE album\n(\n    album_id INT NOT NULL,\n    title VARCHAR(160) NOT NULL,\n    CONSTRAINT album_pkey PRIMARY KEY  (album_id)\n);\n\nCREATE TABLE track\n(\n    track_id INT NOT NULL,\n    name VARCHAR(200) NOT NULL,\n    album_id INT,\n    unit_price NUMERIC(10,2) NOT NULL,\n    CONSTRAINT track_pkey PRIMARY KEY  (track_id)\n);\n\nALTER TABLE track ADD CONSTRAINT track_album_id_fkey\n    FOREIGN KEY (album_id) REFERENCES album (album_id) ON DELETE NO ACTION ON UPDATE NO ACTION;\n\nCREATE INDEX track_album_id_idx ON track (album_id);\n\nINSERT INTO album (album_id, title) VALUES\n    (1, N'Songs of a Lighthouse'),\n    (2, N'Caf\u{e9} Nights; Vol. 2');\n\nINSERT INTO track (track_id, name, album_id, unit_price) VALUES\n    (1, N'Fog Horn', 1, 0.99),\n    (2, N'It''s Late', 2, 1.29);\n";

#[test]
fn a_script_that_creates_its_database_imports_and_applies_as_psql_runs_what_follows_its_connect() {
    let t = tempdir();
    let dir = t.path();
    let scripts = layout(&dir.join("shop"), &[("Shop_PostgreSql.sql", SHOP)]);
    // As it is, lint refuses it: the database statements and `\c`.
    let raw = layout(
        &dir.join("raw"),
        &[
            ("sql/shop.sql", SHOP),
            (
                "bundle.toml",
                "[bundle]\nname = \"shop\"\nversion = \"1\"\nsequence = 1\n\n[target]\ndatabase = \"shop\"\n\n[[tier]]\nname = \"all\"\nfiles = [\"sql/shop.sql\"]\n",
            ),
        ],
    );
    let refused = stderr(&airlock(dir, &["lint", raw.to_str().unwrap()]));
    assert!(
        refused.contains("CREATE/DROP DATABASE") && refused.contains("`\\c`"),
        "{refused}"
    );

    let target = TestDb::new("corpshop");
    let peer = TestDb::new("corpshoppeer");
    let out = dir.join("src");
    let o = import(dir, &scripts, &out, &target.name, &[]);
    expect_code(&o, 0);
    let report = json(&o);
    assert_eq!(report["problems"], serde_json::json!([]), "{report}");
    let change = report["files"][0]["change"].as_str().unwrap();
    assert!(
        change.contains("from the line after `\\c shop` (line 11)")
            && change.contains("createdb shop"),
        "{change}"
    );
    let written = std::fs::read_to_string(out.join("sql/tiers/001_Shop_PostgreSql.sql")).unwrap();
    let after_connect = SHOP.split_once("\\c shop;\n").unwrap().1;
    assert_eq!(
        written, after_connect,
        "the bytes after the `\\c` line, unchanged"
    );
    pack_and_apply(dir, &out, &target);
    let peer_file = dir.join("after_connect.sql");
    std::fs::write(&peer_file, after_connect).unwrap();
    psql_each(&peer, &[peer_file], None);
    assert_eq!(target.dump_without_ledger(), peer.dump());
    assert_eq!(
        target.scalar("SELECT title FROM album WHERE album_id = 2"),
        "Caf\u{e9} Nights; Vol. 2"
    );
}

/// supabase/auth's shape: pop migrations (`*.up.sql`, no down files) whose SQL is a Go
/// template naming the schema `{{ index .Options "Namespace" }}` (with and without a
/// space after `{{`), lower-case SQL, a DO block that tolerates a duplicate type, an
/// enum value added in a migration of its own, and an array literal `'{{…}}'` that is
/// not a template.
const POP: &[(&str, &str)] = &[
    ("00_init_schema.up.sql", "-- ns.users definition\n\nCREATE TABLE IF NOT EXISTS {{ index .Options \"Namespace\" }}.users (\n\tinstance_id uuid NULL,\n\tid uuid NOT NULL UNIQUE,\n\temail varchar(255) NULL UNIQUE,\n\traw_app_meta_data jsonb NULL,\n\tCONSTRAINT users_pkey PRIMARY KEY (id)\n);\nCREATE INDEX IF NOT EXISTS users_instance_id_idx ON {{ index .Options \"Namespace\" }}.users USING btree (instance_id);\ncomment on table {{ index .Options \"Namespace\" }}.users is 'Auth: user logins, written for this test.';\n"),
    ("20210101000000_add_factors.up.sql", "do $$ begin\n    create type {{index .Options \"Namespace\" }}.factor_type as enum('totp', 'webauthn');\nexception\n    when duplicate_object then null;\nend $$;\n\ncreate table if not exists {{ index .Options \"Namespace\" }}.factors (\n    id uuid not null primary key,\n    user_id uuid not null references {{ index .Options \"Namespace\" }}.users(id) on delete cascade,\n    factor_type {{ index .Options \"Namespace\" }}.factor_type not null,\n    grid int[][] not null default '{{1,2},{3,4}}'\n);\n"),
    ("20210202000000_add_phone_factor.up.sql", "alter type {{ index .Options \"Namespace\" }}.factor_type add value 'phone';\n"),
    ("20210303000000_backfill.up.sql", "insert into {{ index .Options \"Namespace\" }}.users (id, email) values ('00000000-0000-0000-0000-000000000001', 'ann@example.com');\n"),
];

#[test]
fn pop_template_migrations_import_with_their_option_and_apply_as_pop_renders_them() {
    let t = tempdir();
    let dir = t.path();
    let migrations = layout(&dir.join("migrations"), POP);
    let target = TestDb::new("corppop");
    let peer = TestDb::new("corppoppeer");
    for db in [&target, &peer] {
        db.exec("CREATE SCHEMA auth");
    }
    // Without the option's value: refused, naming it, and nothing written.
    let out = dir.join("src");
    let o = import(dir, &migrations, &out, &target.name, &[]);
    expect_code(&o, 2);
    let err = json(&o).to_string();
    assert!(err.contains("--option Namespace=VALUE"), "{err}");
    assert!(!out.exists());
    assert_eq!(leftovers(dir), Vec::<String>::new());

    let o = import(
        dir,
        &migrations,
        &out,
        &target.name,
        &["--option", "Namespace=auth"],
    );
    expect_code(&o, 0);
    let report = json(&o);
    assert_eq!(report["problems"], serde_json::json!([]), "{report}");
    let changes: Vec<&str> = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["change"].as_str().unwrap())
        .collect();
    assert!(
        changes[0].contains("rendered as `auth` (3 place(s))")
            && changes[1].contains("(4 place(s))"),
        "{changes:?}"
    );
    pack_and_apply(dir, &out, &target);
    let rendered: Vec<PathBuf> = POP
        .iter()
        .map(|(name, text)| {
            let p = dir.join("rendered").join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(
                &p,
                text.replace("{{ index .Options \"Namespace\" }}", "auth")
                    .replace("{{index .Options \"Namespace\" }}", "auth"),
            )
            .unwrap();
            p
        })
        .collect();
    psql_each(&peer, &rendered, None);
    assert_eq!(target.dump_without_ledger(), peer.dump());
    // The array literal is not a template: it is the column's default, as written.
    assert_eq!(
        target.scalar("SELECT column_default FROM information_schema.columns WHERE table_schema = 'auth' AND table_name = 'factors' AND column_name = 'grid'"),
        "'{{1,2},{3,4}}'::integer[]"
    );
}

/// MusicBrainz's shape: psql scripts run one psql each with `PGOPTIONS -c
/// search_path=musicbrainz,public` (here `[target] search_path`), each with `\set
/// ON_ERROR_STOP 1`, a file-wide `BEGIN;` … `COMMIT;`, its own `SET search_path`, an ICU
/// collation, a DO block with an EXCEPTION handler, and sequences set from the data.
const MB: &[(&str, &str)] = &[
    ("Extensions.sql", "\\set ON_ERROR_STOP 1\nBEGIN;\n\nCREATE EXTENSION IF NOT EXISTS cube WITH SCHEMA public;\n\nDO $$\nBEGIN\n  CREATE OR REPLACE FUNCTION musicbrainz.mb_simplify(text)\n    RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS\n  $func$\n    SELECT lower($1)\n  $func$;\nEXCEPTION\n  WHEN insufficient_privilege THEN\n    NULL;\nEND\n$$;\n\nCOMMIT;\n-- vi: set ts=4 sw=4 et :\n"),
    ("CreateCollations.sql", "\\set ON_ERROR_STOP 1\n\nSET search_path = musicbrainz, public;\n\nBEGIN;\n\nCREATE COLLATION musicbrainz (\n    provider = icu,\n    locale = '@colCaseFirst=lower;colNumeric=yes'\n);\n\nCOMMIT;\n"),
    ("CreateTables.sql", "\\set ON_ERROR_STOP 1\nBEGIN;\n\nCREATE TABLE artist ( -- replicate (verbose)\n    id                  SERIAL,\n    gid                 UUID NOT NULL,\n    name                VARCHAR NOT NULL COLLATE musicbrainz,\n    sort_name           VARCHAR NOT NULL,\n    location            public.cube\n);\n\nCOMMIT;\n"),
    ("InsertDefaultRows.sql", "\\set ON_ERROR_STOP 1\nSET search_path = musicbrainz;\n\nBEGIN;\n\nINSERT INTO artist (name, sort_name, gid) VALUES\n    ('Various Artists', 'Various Artists', '89ad4ac3-39f7-470e-963a-56509c546377'),\n    ('Deleted Artist', 'Deleted Artist', 'c06aa285-520e-40c0-b776-83d2c9e8a6d1');\n\nCOMMIT;\n"),
    ("CreatePrimaryKeys.sql", "-- Automatically generated, do not edit.\n\\set ON_ERROR_STOP 1\nBEGIN;\n\nALTER TABLE artist ADD CONSTRAINT artist_pkey PRIMARY KEY (id);\n\nCOMMIT;\n"),
    ("SetSequences.sql", "\\set ON_ERROR_STOP 1\nBEGIN;\n\nSELECT setval('artist_id_seq', COALESCE((SELECT MAX(id) FROM artist), 0) + 1, FALSE);\n\nCOMMIT;\n"),
];

#[test]
fn psql_scripts_run_one_session_each_under_a_search_path_apply_as_fetched_and_match_psql() {
    let t = tempdir();
    let dir = t.path();
    let src = dir.join("src");
    layout(&src.join("sql"), MB);
    let files: Vec<String> = MB.iter().map(|(n, _)| format!("\"sql/{n}\"")).collect();
    let target = TestDb::new("corpmb");
    let peer = TestDb::new("corpmbpeer");
    let tiers: String = MB
        .iter()
        .zip(&files)
        .map(|((n, _), f)| {
            format!(
                "\n[[tier]]\nname = \"{}\"\nfiles = [{f}]\n",
                n.trim_end_matches(".sql")
            )
        })
        .collect();
    write(
        &src.join("bundle.toml"),
        &format!("[bundle]\nname = \"mb\"\nversion = \"1\"\nsequence = 1\n\n[target]\ndatabase = \"{}\"\nsearch_path = [\"musicbrainz\", \"public\"]\n{tiers}", target.name),
    );
    let o = airlock(dir, &["--json", "lint", src.to_str().unwrap()]);
    expect_code(&o, 0);
    let notes = json(&o)["notes"].to_string();
    assert!(
        notes.contains("ON_ERROR_STOP") && notes.contains("`BEGIN;` … `COMMIT;`"),
        "{notes}"
    );
    for db in [&target, &peer] {
        db.exec("CREATE SCHEMA musicbrainz");
    }
    pack_and_apply(dir, &src, &target);
    let paths: Vec<PathBuf> = MB.iter().map(|(n, _)| src.join("sql").join(n)).collect();
    psql_each(&peer, &paths, Some("-c search_path=musicbrainz,public"));
    assert_eq!(target.dump_without_ledger(), peer.dump());
    assert_eq!(
        target.scalar("SELECT nextval('musicbrainz.artist_id_seq')"),
        "3"
    );
}

/// Temporal's shape: a schema version that drops invalid indexes in a DO block with
/// `EXECUTE format('DROP INDEX %I', …)` (fine in a transaction), next to one that
/// builds with `EXECUTE format('CREATE INDEX CONCURRENTLY …')` or runs VACUUM, which
/// the server refuses when the EXECUTE runs: lint warns, naming the line.
#[test]
fn a_do_block_executing_what_cannot_run_in_a_transaction_is_warned_about() {
    let t = tempdir();
    let dir = t.path();
    let body = "CREATE TABLE executions (id int, ns text);\n\nDO LANGUAGE 'plpgsql' $$\nDECLARE\n  r RECORD;\nBEGIN\n  FOR r IN SELECT i.relname AS indexname FROM pg_class i, pg_index ix\n    WHERE i.oid = ix.indexrelid AND NOT ix.indisvalid\n  LOOP\n    EXECUTE format('DROP INDEX %I', r.indexname);\n  END LOOP;\nEND$$;\n\nDO $$\nBEGIN\n  EXECUTE format('CREATE INDEX CONCURRENTLY IF NOT EXISTS %I ON executions (ns)', 'by_ns');\n  EXECUTE 'VACUUM executions';\nEND$$;\n";
    let src = layout(
        &dir.join("src"),
        &[
            ("sql/v1.sql", body),
            (
                "bundle.toml",
                "[bundle]\nname = \"t\"\nversion = \"1\"\nsequence = 1\n\n[target]\ndatabase = \"t\"\n\n[[tier]]\nname = \"v1\"\nfiles = [\"sql/v1.sql\"]\n",
            ),
        ],
    );
    let o = airlock(dir, &["--json", "lint", src.to_str().unwrap()]);
    expect_code(&o, 0);
    let warnings: Vec<String> = json(&o)["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap().to_string())
        .collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings[0].starts_with("sql/v1.sql:16: this DO block runs `CREATE INDEX CONCURRENTLY IF NOT EXISTS …` with EXECUTE"),
        "{warnings:?}"
    );
    assert!(
        warnings[1]
            .starts_with("sql/v1.sql:17: this DO block runs `VACUUM executions` with EXECUTE"),
        "{warnings:?}"
    );
    // And the human output says it too.
    let human = airlock(dir, &["lint", src.to_str().unwrap()]);
    expect_code(&human, 0);
    assert!(
        stdout(&human).contains("warning: sql/v1.sql:17"),
        "{}",
        stdout(&human)
    );
}

/// PostgREST's shape: strings that end with a backslash (`'\'`, standard SQL) long
/// before a `COPY … TO` a server file, which stays refused for what it is, not blamed
/// on a legacy `standard_conforming_strings = off`.
#[test]
fn a_copy_to_a_file_after_backslash_strings_is_refused_for_what_it_is() {
    let t = tempdir();
    let dir = t.path();
    let src = layout(
        &dir.join("src"),
        &[
            ("sql/data.sql", "INSERT INTO names VALUES ('\"');\nINSERT INTO names VALUES ('\\');\nINSERT INTO names VALUES ('/\\Slash/\\Beast/\\');\n\n-- for a foreign table\ncopy (select id, name from projects) to '/tmp/projects_dump.csv' with csv;\n"),
            (
                "bundle.toml",
                "[bundle]\nname = \"t\"\nversion = \"1\"\nsequence = 1\n\n[target]\ndatabase = \"t\"\n\n[[tier]]\nname = \"data\"\nfiles = [\"sql/data.sql\"]\n",
            ),
        ],
    );
    let o = airlock(dir, &["lint", src.to_str().unwrap()]);
    expect_code(&o, 2);
    let err = stderr(&o);
    assert!(err.contains("sql/data.sql:6: COPY … TO"), "{err}");
    assert!(!err.contains("standard_conforming_strings"), "{err}");
}
