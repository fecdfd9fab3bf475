//! A plain `pg_dump` (COPY format, `\restrict` lines and all) ships unchanged: packed
//! as one tier, it verifies, rehearses, applies to an empty database giving the same
//! dump, and rolls back. Also through the large-file path (spill file, statements in
//! many messages), with the thresholds lowered so the data stays small.

mod util;
use airlock::db::apply;
use airlock::verified::{ExecLimits, VerifiedBundle};
use std::path::Path;
use std::process::Command;
use util::*;

/// A database with the kinds of data and objects a real dump carries.
const SOURCE: &str = r#"
CREATE SCHEMA app;
CREATE TYPE app.mood AS ENUM ('sad', 'ok', 'happy');
CREATE SEQUENCE app.ticket_seq START 100;
SELECT setval('app.ticket_seq', 4242, true);
CREATE TABLE app.everything (
    id bigint GENERATED ALWAYS AS IDENTITY,
    "begin" date,
    note text,
    raw bytea,
    tags text[],
    doc json,
    docb jsonb,
    amount numeric(20,6),
    ratio double precision,
    at timestamptz,
    mood app.mood,
    ticket bigint DEFAULT nextval('app.ticket_seq'),
    note_len int GENERATED ALWAYS AS (length(note)) STORED
);
INSERT INTO app.everything ("begin", note, raw, tags, doc, docb, amount, ratio, at, mood) VALUES
  ('2024-02-29', E'tab\there\nnewline and back\\slash', '\x00ff10'::bytea, ARRAY['a','b c','d"e', NULL], '{"k": [1, 2]}', '{"z": null, "a": "é"}', 123456.789012, 1.5e-300, '2024-01-01 12:00+02', 'happy'),
  (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  ('1999-12-31', E'\\.', ''::bytea, '{}', '[]', '{}', -0.000001, 'NaN', 'infinity', 'sad'),
  ('2000-01-01', E'line one\r\nline two\\N', '\x5c2e'::bytea, ARRAY['\.'], '"s"', '[1]', 0, -0, '1970-01-01 00:00Z', 'ok');
INSERT INTO app.everything (note, amount) SELECT 'row ' || g, g FROM generate_series(1, 500) g;
CREATE TABLE app.child (id int, parent bigint, label text);
INSERT INTO app.child SELECT g, 1, 'child ' || g FROM generate_series(1, 50) g;
ALTER TABLE app.everything ADD CONSTRAINT everything_pk PRIMARY KEY (id);
ALTER TABLE app.everything ADD CONSTRAINT note_short CHECK (length(note) < 1000);
ALTER TABLE app.child ADD CONSTRAINT child_parent FOREIGN KEY (parent) REFERENCES app.everything (id);
CREATE INDEX everything_docb ON app.everything USING gin (docb);
CREATE UNIQUE INDEX child_label ON app.child (lower(label));
CREATE VIEW app.happy AS SELECT id, note FROM app.everything WHERE mood = 'happy';
CREATE FUNCTION app.touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.label := NEW.label || ' (touched)';
  RETURN NEW;
END
$$;
CREATE TRIGGER child_touch BEFORE UPDATE ON app.child FOR EACH ROW EXECUTE FUNCTION app.touch();
COMMENT ON TABLE app.everything IS 'one of each; with a ''quote''';
COMMENT ON COLUMN app.everything."begin" IS 'a column pg_dump leaves unquoted';
"#;

/// `dir/src`: bundle.toml with one tier holding `dump` as written, and a rollback.
fn source(dir: &Path, database: &str, dump: &[u8]) -> std::path::PathBuf {
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("sql")).unwrap();
    std::fs::write(src.join("sql/dump.sql"), dump).unwrap();
    write(&src.join("sql/rollback.sql"), "DROP SCHEMA app CASCADE;\n");
    write(
        &src.join("sql/gone.sql"),
        "SELECT 'app_absent'::text AS key, (to_regnamespace('app') IS NULL)::text AS value",
    );
    write(
        &src.join("bundle.toml"),
        &format!(
            "[bundle]\nname = \"dump\"\nversion = \"1.0\"\nsequence = 1\n\n[target]\ndatabase = \"{database}\"\n\n[[tier]]\nname = \"data\"\nfiles = [\"sql/dump.sql\"]\n\n[rollback]\nfiles = [\"sql/rollback.sql\"]\nprobe = \"sql/gone.sql\"\nexpect = {{ app_absent = \"true\" }}\n"
        ),
    );
    src
}

/// The source database and its plain dump (as pg_dump writes it: nothing stripped).
fn dumped_source(tag: &str) -> (TestDb, Vec<u8>) {
    let db = TestDb::new(tag);
    db.exec(SOURCE);
    let o = Command::new("pg_dump")
        .args(["-d", &db.name])
        .output()
        .expect("pg_dump");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("FROM stdin;\n"), "not a COPY-format dump");
    (db, o.stdout)
}

#[test]
fn a_plain_pg_dump_verifies_rehearses_applies_identically_and_rolls_back() {
    let t = tempdir();
    let dir = t.path();
    let (source_db, dump) = dumped_source("dumpsrc");
    let target = TestDb::new("dumpdst");
    let empty = target.dump_without_ledger();
    let src = source(dir, &target.name, &dump);
    keygen(dir, "rm");
    let o = airlock(dir, &["lint", src.to_str().unwrap()]);
    expect_code(&o, 0);
    pack(dir, &src, "rm.key", "b.tar.gz");
    let db = target.conn();
    let run = |cmd: &str| airlock(dir, &[cmd, "b.tar.gz", "--trust", "rm.pub", "--db", &db]);
    expect_code(
        &airlock(dir, &["verify", "b.tar.gz", "--trust", "rm.pub"]),
        0,
    );
    expect_code(&run("rehearse"), 0);
    assert_eq!(
        target.dump_without_ledger(),
        empty,
        "rehearse changed the target"
    );
    expect_code(&run("apply"), 0);
    assert_eq!(target.dump_without_ledger(), source_db.dump());
    // airlock's own settings are back after the dump's SETs (the ledger row was
    // written under them, and the session is gone): a second apply is refused as
    // already applied, not confused by a leftover search_path.
    expect_code(&run("apply"), 6);
    expect_code(&run("rollback"), 0);
    assert_eq!(target.dump_without_ledger(), empty);
}

#[test]
fn a_pg_dump_runs_from_the_spill_file_in_many_messages() {
    let t = tempdir();
    let dir = t.path();
    let (source_db, dump) = dumped_source("spillsrc");
    let target = TestDb::new("spilldst");
    let empty = target.dump_without_ledger();
    let src = source(dir, &target.name, &dump);
    keygen(dir, "rm");
    pack(dir, &src, "rm.key", "b.tar.gz");
    let store = airlock::trust::TrustStore::load(&dir.join("rm.pub")).expect("trust store");
    // Every payload file goes to the spill file; every statement is its own message.
    let limits = ExecLimits {
        spill_above: 0,
        message_bytes: 1,
    };
    let vb = VerifiedBundle::load_with(
        &dir.join("b.tar.gz"),
        &store,
        chrono::Utc::now(),
        limits,
        &airlock::verdicts::Verdicts::none(),
    )
    .expect("verified");
    // Every payload file but the rollback probe (a query, always in memory) is in the
    // spill file.
    let probe = "SELECT 'app_absent'::text AS key, (to_regnamespace('app') IS NULL)::text AS value";
    assert_eq!(
        vb.bytes_in_memory(),
        probe.len() as u64,
        "payload kept in memory"
    );
    let conn = airlock::db::conn::resolve(Some(&target.conn()), &target.name).expect("conn");
    let opts = plain_apply_options(&conn, &target);
    apply::apply(&vb, &opts).expect("apply");
    assert_eq!(target.dump_without_ledger(), source_db.dump());
    apply::rollback(&vb, &opts).expect("rollback");
    assert_eq!(target.dump_without_ledger(), empty);
}

/// Applies a one-file tier that the server rejects: exit 1, stderr names each of
/// `expect`, and the target is as it was.
fn refused_tier_changes_nothing(db: &str, tier: &str, expect: &[&str]) {
    let t = tempdir();
    let dir = t.path();
    let target = TestDb::new(db);
    let empty = target.dump_without_ledger();
    let src = source(dir, &target.name, tier.as_bytes());
    keygen(dir, "rm");
    pack(dir, &src, "rm.key", "b.tar.gz");
    let o = airlock(
        dir,
        &[
            "apply",
            "b.tar.gz",
            "--trust",
            "rm.pub",
            "--db",
            &target.conn(),
        ],
    );
    expect_code(&o, 1);
    let err = stderr(&o);
    for needle in expect {
        assert!(err.contains(needle), "{needle:?} not in: {err}");
    }
    assert_eq!(target.dump_without_ledger(), empty);
}

#[test]
fn bad_copy_data_names_the_file_and_line_and_changes_nothing() {
    let dump = "CREATE SCHEMA app;\nCREATE TABLE app.t (i int, s text);\n\nCOPY app.t (i, s) FROM stdin;\n1\tone\nnot a number\ttwo\n\\.\n";
    refused_tier_changes_nothing(
        "badcopy",
        dump,
        &[
            "file sql/dump.sql:4:1",
            "invalid input syntax for type integer",
        ],
    );
}

#[test]
fn a_server_error_position_names_the_line_in_a_one_message_file() {
    let tier = "CREATE SCHEMA app;\nCREATE TABLE app.a (i int);\n\n-- the third statement names a column that does not exist\nINSERT INTO app.a\n  SELECT nosuch FROM app.a;\n";
    refused_tier_changes_nothing("errline", tier, &["file sql/dump.sql:6:10", "nosuch"]);
}

#[test]
fn per_tier_transactions_commit_each_copy_tier_on_its_own() {
    let t = tempdir();
    let dir = t.path();
    let target = TestDb::new("pertier");
    let src = dir.join("src");
    write(
        &src.join("sql/one.sql"),
        "\\restrict abc\nCREATE SCHEMA app;\nCREATE TABLE app.t (i int, s text);\nCOPY app.t (i, s) FROM stdin;\n1\tone\n2\t\\N\n\\.\n\\unrestrict abc\n",
    );
    write(
        &src.join("sql/two.sql"),
        "SET search_path = app;\nCOPY t FROM stdin WITH (FORMAT csv);\n3,\"three\nlines\n\\.\"\n\\.\nUPDATE t SET s = upper(s) WHERE i = 1;\n",
    );
    write(
        &src.join("bundle.toml"),
        &format!(
            "[bundle]\nname = \"pertier\"\nversion = \"1\"\nsequence = 1\ntransaction = \"per-tier\"\n\n[target]\ndatabase = \"{}\"\n\n[[tier]]\nname = \"one\"\nfiles = [\"sql/one.sql\"]\n\n[[tier]]\nname = \"two\"\nfiles = [\"sql/two.sql\"]\n",
            target.name
        ),
    );
    keygen(dir, "rm");
    pack(dir, &src, "rm.key", "b.tar.gz");
    let o = airlock(
        dir,
        &[
            "--json",
            "apply",
            "b.tar.gz",
            "--trust",
            "rm.pub",
            "--db",
            &target.conn(),
        ],
    );
    expect_code(&o, 0);
    assert_eq!(
        json(&o)["ledger"].as_array().unwrap().len(),
        2,
        "one ledger row per tier"
    );
    assert_eq!(
        target.scalar(
            "SELECT string_agg(i || '=' || coalesce(s, 'NULL'), ';' ORDER BY i) FROM app.t"
        ),
        "1=ONE;2=NULL;3=three\nlines\n\\."
    );
}
