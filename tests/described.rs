//! The description this host keeps between runs (crates/airlock-pg/src/described.rs), through the real
//! binary and real PostgreSQL: every receipt records the fingerprint a whole
//! description gives; drift made between runs is refused as before, however it was
//! made; and a kept description that is stale or damaged is never trusted.

mod util;
use std::path::{Path, PathBuf};
use util::*;

/// One apply or rollback receipt, as `--json` prints it.
#[derive(serde::Deserialize)]
struct Receipt {
    fingerprint_before: String,
    fingerprint_after: String,
}

/// `airlock fingerprint --json`: a whole description, kept nowhere.
#[derive(serde::Deserialize)]
struct Whole {
    fingerprint: String,
}

struct Case {
    db: TestDb,
    dir: tempfile::TempDir,
    state: tempfile::TempDir,
    bundle: PathBuf,
    trust: String,
}

impl Case {
    fn new() -> Case {
        let db = TestDb::new("kept");
        // Older than any apply: no run's own changes, so only the stamps tell when
        // something happens to them.
        db.exec(
            "CREATE SCHEMA app;
             CREATE TABLE public.base (a integer);
             COMMENT ON TABLE public.base IS 'kept';
             CREATE VIEW public.base_v AS SELECT a FROM public.base;",
        );
        let dir = tempdir();
        keygen(dir.path(), "k");
        let src = MiniSource::new(
            dir.path(),
            &db.name,
            "SELECT true AS ready",
            &[
                (
                    "one",
                    "CREATE TABLE app.t (id integer PRIMARY KEY, name text);
                     COMMENT ON COLUMN app.t.name IS 'the name';
                     CREATE VIEW app.v AS SELECT id, name FROM app.t;
                     CREATE FUNCTION app.f() RETURNS integer LANGUAGE sql AS 'SELECT 1';",
                    false,
                ),
                (
                    "two",
                    "ALTER TABLE app.t RENAME COLUMN name TO label;
                     CREATE INDEX t_label ON app.t (label);
                     ALTER TABLE app.t ADD COLUMN n integer DEFAULT app.f();",
                    false,
                ),
            ],
            "DROP TABLE IF EXISTS app.t CASCADE; DROP FUNCTION IF EXISTS app.f()",
        );
        let bundle = pack(dir.path(), &src.dir, "k.key", "b.tar.gz");
        let trust = dir.path().join("k.pub").to_string_lossy().into_owned();
        Case {
            db,
            dir,
            state: tempdir(),
            bundle,
            trust,
        }
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        let state = self.state.path().to_string_lossy().into_owned();
        let conn = self.db.conn();
        let mut all = vec!["--json"];
        all.extend(args);
        all.extend(["--db", &conn]);
        airlock_env(self.dir.path(), &all, &[("AIRLOCK_STATE_DIR", &state)])
    }

    /// `apply` or `rollback` with `extra`, expecting exit 0; its receipt.
    fn deploy(&self, command: &str, extra: &[&str]) -> Receipt {
        let bundle = self.bundle.to_string_lossy().into_owned();
        let mut args = vec![command, &bundle, "--trust", &self.trust];
        args.extend(extra);
        let o = self.run(&args);
        expect_code(&o, 0);
        serde_json::from_slice(&o.stdout).expect("a receipt")
    }

    fn whole(&self) -> String {
        let o = self.run(&["fingerprint"]);
        expect_code(&o, 0);
        serde_json::from_slice::<Whole>(&o.stdout)
            .expect("a fingerprint")
            .fingerprint
    }

    /// The one description file this host keeps for the test's database.
    fn kept(&self) -> PathBuf {
        let root = self.state.path().join("descriptions");
        let file = format!("{}.bin", hex::encode(self.db.name.as_bytes()));
        let found: Vec<PathBuf> = std::fs::read_dir(&root)
            .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
            .flatten()
            .map(|d| d.path().join(&file))
            .filter(|p| p.exists())
            .collect();
        assert_eq!(found.len(), 1, "one kept description for {}", self.db.name);
        found[0].clone()
    }
}

fn flip_a_byte(path: &Path) {
    let mut bytes = std::fs::read(path).expect("read the kept description");
    let i = bytes.len() / 2;
    bytes[i] ^= 0x20;
    std::fs::write(path, bytes).expect("write it back");
}

#[test]
fn every_receipt_records_the_fingerprint_a_whole_description_gives() {
    let c = Case::new();
    let first = c.deploy("apply", &["--through", "one"]);
    assert_eq!(first.fingerprint_after, c.whole(), "after tier one");
    assert!(c.kept().exists());
    let second = c.deploy("apply", &[]);
    assert_eq!(
        second.fingerprint_before, first.fingerprint_after,
        "nothing changed in between"
    );
    assert_eq!(second.fingerprint_after, c.whole(), "after tier two");
    let back = c.deploy("rollback", &[]);
    assert_eq!(back.fingerprint_before, second.fingerprint_after);
    assert_eq!(back.fingerprint_after, c.whole(), "after the rollback");
    assert_eq!(back.fingerprint_after, first.fingerprint_before);
}

#[test]
fn drift_made_between_runs_is_refused_however_it_was_made() {
    let c = Case::new();
    // (what, the drift, what undoes it)
    let drifts = [
        (
            "a dropped comment on what no apply touched (rows gone, none new)",
            "COMMENT ON TABLE public.base IS NULL",
            "COMMENT ON TABLE public.base IS 'kept'",
        ),
        (
            "a renamed column of what no apply touched, which a view shows",
            "ALTER TABLE public.base RENAME COLUMN a TO b",
            "ALTER TABLE public.base RENAME COLUMN b TO a",
        ),
        (
            "a dropped view no apply touched",
            "DROP VIEW public.base_v",
            "CREATE VIEW public.base_v AS SELECT a FROM public.base",
        ),
        (
            "a renamed column a view shows",
            "ALTER TABLE app.t RENAME COLUMN id TO ident",
            "ALTER TABLE app.t RENAME COLUMN ident TO id",
        ),
        (
            "a dropped comment (rows gone, none new)",
            "COMMENT ON COLUMN app.t.name IS NULL",
            "COMMENT ON COLUMN app.t.name IS 'the name'",
        ),
        (
            "a new table",
            "CREATE TABLE app.extra (a integer)",
            "DROP TABLE app.extra",
        ),
        (
            "a dropped function",
            "DROP FUNCTION app.f()",
            "CREATE FUNCTION app.f() RETURNS integer LANGUAGE sql AS 'SELECT 1'",
        ),
        (
            "a renamed schema, renamed back",
            "ALTER SCHEMA app RENAME TO app2; ALTER SCHEMA app2 RENAME TO app; \
             ALTER VIEW app.v RENAME TO w",
            "ALTER VIEW app.w RENAME TO v",
        ),
    ];
    for (what, drift, undo) in drifts {
        let first = c.deploy("apply", &["--through", "one"]);
        c.db.exec(drift);
        let bundle = c.bundle.to_string_lossy().into_owned();
        let o = c.run(&["apply", &bundle, "--trust", &c.trust]);
        expect_code(&o, 5);
        assert!(
            stderr(&o).contains("drift") || stdout(&o).contains("drift"),
            "{what}: not refused as drift:\n{}{}",
            stdout(&o),
            stderr(&o)
        );
        c.db.exec(undo);
        let second = c.deploy("apply", &[]);
        assert_eq!(
            second.fingerprint_before, first.fingerprint_after,
            "{what}: undone, the schema is as tier one left it"
        );
        assert_eq!(second.fingerprint_after, c.whole(), "{what}");
        c.deploy("rollback", &[]);
    }
}

#[test]
fn a_stale_or_damaged_kept_description_is_never_trusted() {
    let c = Case::new();
    let first = c.deploy("apply", &["--through", "one"]);
    let then = std::fs::read(c.kept()).expect("the kept description");
    let second = c.deploy("apply", &[]);
    c.deploy("rollback", &[]);
    let third = c.deploy("apply", &["--through", "one"]);
    assert_eq!(third.fingerprint_after, first.fingerprint_after);
    // The description kept after tier two's apply, put back after a rollback and a
    // new apply: everything it says about tier two is stale.
    std::fs::write(c.kept(), &then).expect("put the old description back");
    c.db.exec("ALTER TABLE app.t ADD COLUMN late integer");
    let bundle = c.bundle.to_string_lossy().into_owned();
    let o = c.run(&["apply", &bundle, "--trust", &c.trust]);
    expect_code(&o, 5);
    c.db.exec("ALTER TABLE app.t DROP COLUMN late");
    let fourth = c.deploy("apply", &[]);
    assert_eq!(fourth.fingerprint_before, third.fingerprint_after);
    assert_eq!(fourth.fingerprint_after, second.fingerprint_after);
    assert_eq!(fourth.fingerprint_after, c.whole());
    // A damaged one is not used at all.
    flip_a_byte(&c.kept());
    let back = c.deploy("rollback", &[]);
    assert_eq!(back.fingerprint_before, fourth.fingerprint_after);
    assert_eq!(back.fingerprint_after, c.whole());
}

/// PostgreSQL's `hash_bytes_extended(k, len, 0)` (lookup3), which
/// `hashtextextended(text, 0)` computes on the text's bytes; and its inversion, as
/// /work/shared/tools/collide does it: a colliding input made in well under a second.
mod lookup3 {
    fn rd(k: &[u8]) -> u32 {
        u32::from_le_bytes([k[0], k[1], k[2], k[3]])
    }

    fn mix(a: &mut u32, b: &mut u32, c: &mut u32) {
        *a = a.wrapping_sub(*c);
        *a ^= c.rotate_left(4);
        *c = c.wrapping_add(*b);
        *b = b.wrapping_sub(*a);
        *b ^= a.rotate_left(6);
        *a = a.wrapping_add(*c);
        *c = c.wrapping_sub(*b);
        *c ^= b.rotate_left(8);
        *b = b.wrapping_add(*a);
        *a = a.wrapping_sub(*c);
        *a ^= c.rotate_left(16);
        *c = c.wrapping_add(*b);
        *b = b.wrapping_sub(*a);
        *b ^= a.rotate_left(19);
        *a = a.wrapping_add(*c);
        *c = c.wrapping_sub(*b);
        *c ^= b.rotate_left(4);
        *b = b.wrapping_add(*a);
    }

    fn unmix(a: &mut u32, b: &mut u32, c: &mut u32) {
        *b = b.wrapping_sub(*a);
        *c ^= b.rotate_left(4);
        *c = c.wrapping_add(*b);
        *a = a.wrapping_sub(*c);
        *b ^= a.rotate_left(19);
        *b = b.wrapping_add(*a);
        *c = c.wrapping_sub(*b);
        *a ^= c.rotate_left(16);
        *a = a.wrapping_add(*c);
        *b = b.wrapping_sub(*a);
        *c ^= b.rotate_left(8);
        *c = c.wrapping_add(*b);
        *a = a.wrapping_sub(*c);
        *b ^= a.rotate_left(6);
        *b = b.wrapping_add(*a);
        *c = c.wrapping_sub(*b);
        *a ^= c.rotate_left(4);
        *a = a.wrapping_add(*c);
    }

    fn fin(a: &mut u32, b: &mut u32, c: &mut u32) {
        *c ^= *b;
        *c = c.wrapping_sub(b.rotate_left(14));
        *a ^= *c;
        *a = a.wrapping_sub(c.rotate_left(11));
        *b ^= *a;
        *b = b.wrapping_sub(a.rotate_left(25));
        *c ^= *b;
        *c = c.wrapping_sub(b.rotate_left(16));
        *a ^= *c;
        *a = a.wrapping_sub(c.rotate_left(4));
        *b ^= *a;
        *b = b.wrapping_sub(a.rotate_left(14));
        *c ^= *b;
        *c = c.wrapping_sub(b.rotate_left(24));
    }

    fn unfin(a: &mut u32, b: &mut u32, c: &mut u32) {
        *c = c.wrapping_add(b.rotate_left(24));
        *c ^= *b;
        *b = b.wrapping_add(a.rotate_left(14));
        *b ^= *a;
        *a = a.wrapping_add(c.rotate_left(4));
        *a ^= *c;
        *c = c.wrapping_add(b.rotate_left(16));
        *c ^= *b;
        *b = b.wrapping_add(a.rotate_left(25));
        *b ^= *a;
        *a = a.wrapping_add(c.rotate_left(11));
        *a ^= *c;
        *c = c.wrapping_add(b.rotate_left(14));
        *c ^= *b;
    }

    fn init(len: usize) -> u32 {
        0x9e37_79b9u32
            .wrapping_add(len as u32)
            .wrapping_add(3_923_095)
    }

    /// `hashtextextended(k, 0)` as PostgreSQL's int8.
    pub fn hash(k: &[u8]) -> i64 {
        let (mut a, mut b, mut c) = (init(k.len()), init(k.len()), init(k.len()));
        let mut k = k;
        while k.len() >= 12 {
            a = a.wrapping_add(rd(k));
            b = b.wrapping_add(rd(&k[4..]));
            c = c.wrapping_add(rd(&k[8..]));
            mix(&mut a, &mut b, &mut c);
            k = &k[12..];
        }
        let byte = |i: usize, shift: u32| (k[i] as u32) << shift;
        let n = k.len();
        if n >= 9 {
            for i in (8..n).rev() {
                c = c.wrapping_add(byte(i, 8 * (i as u32 - 7)));
            }
        }
        if n >= 8 {
            b = b.wrapping_add(rd(&k[4..]));
            a = a.wrapping_add(rd(k));
        } else if n >= 4 {
            for i in (4..n).rev() {
                b = b.wrapping_add(byte(i, 8 * (i as u32 - 4)));
            }
            a = a.wrapping_add(rd(k));
        } else {
            for i in (0..n).rev() {
                a = a.wrapping_add(byte(i, 8 * i as u32));
            }
        }
        fin(&mut a, &mut b, &mut c);
        (((b as u64) << 32) | c as u64) as i64
    }

    /// Twelve printable bytes `m` (no quote, backslash, brace, comma or parenthesis:
    /// nothing a record's or an array's text would quote) with
    /// `hash(prefix + m + tail) == hash(original)`. `prefix` is a multiple of 12 bytes
    /// long, `tail` 3 bytes.
    pub fn middle(original: &[u8], prefix: &[u8], tail: &[u8; 3]) -> String {
        assert_eq!(prefix.len() % 12, 0, "prefix {prefix:?}");
        let h = hash(original) as u64;
        let len = prefix.len() + 15;
        let (mut a0, mut b0, mut c0) = (init(len), init(len), init(len));
        for blk in prefix.chunks(12) {
            a0 = a0.wrapping_add(rd(blk));
            b0 = b0.wrapping_add(rd(&blk[4..]));
            c0 = c0.wrapping_add(rd(&blk[8..]));
            mix(&mut a0, &mut b0, &mut c0);
        }
        let tail_add = tail[0] as u32 | (tail[1] as u32) << 8 | (tail[2] as u32) << 16;
        let ok = |ch: u8| ch > 0x20 && ch < 0x7f && !b"\"\\{},()'".contains(&ch);
        for i in 1u64.. {
            let mut a = (i.wrapping_mul(2_654_435_761) as u32) ^ (i >> 32) as u32;
            let (mut b, mut c) = ((h >> 32) as u32, h as u32);
            unfin(&mut a, &mut b, &mut c);
            a = a.wrapping_sub(tail_add);
            unmix(&mut a, &mut b, &mut c);
            let mut m = vec![];
            for w in [a.wrapping_sub(a0), b.wrapping_sub(b0), c.wrapping_sub(c0)] {
                m.extend_from_slice(&w.to_le_bytes());
            }
            if m.iter().all(|ch| ok(*ch)) {
                let mut whole = prefix.to_vec();
                whole.extend_from_slice(&m);
                whole.extend_from_slice(tail);
                assert_eq!(hash(&whole), hash(original), "the inversion is exact");
                return String::from_utf8(m).expect("printable");
            }
        }
        unreachable!()
    }
}

/// `prefix` padded with `pad` to a multiple of 12 bytes.
fn padded(prefix: &str, pad: char) -> String {
    let mut p = prefix.to_string();
    while !p.len().is_multiple_of(12) {
        p.push(pad);
    }
    p
}

static ROLES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Roles of the collision tests (cluster-wide): `mapped` has a user mapping with a
/// password on a foreign server of the test database and may change it (as any role
/// with USAGE on the server may); `owner` owns schema `owned`. Dropped with the
/// database.
struct Colliding<'a> {
    case: &'a Case,
    mapped: String,
    owner: String,
    /// What `owner` may have been renamed to.
    renamed: std::cell::RefCell<Option<String>>,
}

impl<'a> Colliding<'a> {
    fn new(case: &'a Case) -> Colliding<'a> {
        let n = ROLES.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mapped = format!("mapped_{}_{n}", std::process::id());
        let owner = format!("owner_{}_{n}", std::process::id());
        admin()
            .batch_execute(&format!("CREATE ROLE {mapped} LOGIN; CREATE ROLE {owner};"))
            .expect("roles");
        case.db.exec(&format!(
            "CREATE FOREIGN DATA WRAPPER fdw;
             CREATE SERVER srv FOREIGN DATA WRAPPER fdw;
             GRANT USAGE ON FOREIGN SERVER srv TO {mapped};
             CREATE USER MAPPING FOR {mapped} SERVER srv OPTIONS (password 'secret0');
             CREATE SCHEMA owned AUTHORIZATION {owner};"
        ));
        Colliding {
            case,
            mapped,
            owner,
            renamed: None.into(),
        }
    }

    /// The row text the stamps of `pg_user_mappings` hashed before this change.
    fn mapping_row(&self) -> String {
        self.case.db.scalar(&format!(
            "SELECT ROW(umid, srvid, umuser, umoptions)::text FROM pg_user_mappings \
             WHERE usename = '{}'",
            self.mapped
        ))
    }

    /// A password that leaves `hashtextextended` of the mapping's row as it was.
    fn colliding_password(&self) -> String {
        let row = self.mapping_row();
        let at = row.find("password=").expect("the password option") + "password=".len();
        let prefix = padded(&format!("{}pad_", &row[..at]), 'x');
        let middle = lookup3::middle(row.as_bytes(), prefix.as_bytes(), b"_})");
        format!("{}{middle}_", &prefix[at..])
    }

    /// A name for `owner` that leaves `hashtextextended` of its `pg_roles` row as it was.
    fn colliding_name(&self) -> String {
        let row = self.case.db.scalar(&format!(
            "SELECT ROW(oid, rolname)::text FROM pg_roles WHERE rolname = '{}'",
            self.owner
        ));
        let at = row.find(',').expect("oid, name") + 1;
        let prefix = padded(&format!("{}ren_", &row[..at]), 'x');
        let middle = lookup3::middle(row.as_bytes(), prefix.as_bytes(), b"zz)");
        let name = format!("{}{middle}zz", &prefix[at..]);
        *self.renamed.borrow_mut() = Some(name.clone());
        name
    }

    /// Run `sql` as the role that has the user mapping.
    fn as_mapped(&self, sql: &str) {
        self.case
            .db
            .client_as(&self.mapped)
            .batch_execute(sql)
            .unwrap_or_else(|e| panic!("as {}: {sql}: {e}", self.mapped));
    }

    /// The stamps' old hash of a row text, and of the text the change made.
    fn same_old_hash(&self, before: &str, after: &str) {
        let q = |t: &str| {
            self.case.db.scalar(&format!(
                "SELECT hashtextextended({}, 0)",
                postgres_literal(t)
            ))
        };
        assert_ne!(before, after);
        assert_eq!(q(before), q(after), "{before} and {after} collide");
        assert_eq!(q(before), lookup3::hash(before.as_bytes()).to_string());
    }
}

fn postgres_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

impl Drop for Colliding<'_> {
    fn drop(&mut self) {
        if let Ok(mut c) = std::panic::catch_unwind(admin) {
            // One statement a message: DROP DATABASE runs in no transaction block.
            let mut sql = vec![
                format!(
                    "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                    self.case.db.name
                ),
                format!("DROP ROLE IF EXISTS {}", self.mapped),
                format!("DROP ROLE IF EXISTS {}", self.owner),
            ];
            if let Some(r) = self.renamed.borrow().as_ref() {
                sql.push(format!("DROP ROLE IF EXISTS \"{r}\""));
            }
            for s in sql {
                let _ = c.batch_execute(&s);
            }
        }
    }
}

/// A change made to collide with the stamps' old `hashtextextended`: a user mapping's
/// password set by the role it maps (no privilege beyond USAGE on the server), and a
/// role renamed. The whole description (`airlock fingerprint`) sees each; `apply`
/// must refuse it as drift (exit 5), and `plan` must say the same.
#[test]
fn a_change_made_to_collide_with_a_stamp_is_refused_as_drift() {
    let c = Case::new();
    let k = Colliding::new(&c);
    let bundle = c.bundle.to_string_lossy().into_owned();
    for what in ["user mapping password", "role renamed"] {
        let first = c.deploy("apply", &["--through", "one"]);
        assert_eq!(first.fingerprint_after, c.whole());
        let undo = match what {
            "user mapping password" => {
                let before = k.mapping_row();
                let password = k.colliding_password();
                k.as_mapped(&format!(
                    "ALTER USER MAPPING FOR CURRENT_USER SERVER srv OPTIONS (SET password '{password}')"
                ));
                k.same_old_hash(&before, &k.mapping_row());
                "ALTER USER MAPPING FOR CURRENT_USER SERVER srv OPTIONS (SET password 'secret0')"
                    .to_string()
            }
            _ => {
                let row = |name: &str| {
                    c.db.scalar(&format!(
                        "SELECT ROW(oid, rolname)::text FROM pg_roles WHERE rolname = '{name}'"
                    ))
                };
                let before = row(&k.owner);
                let name = k.colliding_name();
                c.db.exec(&format!("ALTER ROLE {} RENAME TO \"{name}\"", k.owner));
                k.same_old_hash(&before, &row(&name));
                format!("ALTER ROLE \"{name}\" RENAME TO {}", k.owner)
            }
        };
        assert_ne!(
            c.whole(),
            first.fingerprint_after,
            "{what}: the change shows"
        );
        let plan = c.run(&["plan", &bundle, "--trust", &c.trust]);
        let o = c.run(&["apply", &bundle, "--trust", &c.trust]);
        expect_code(&o, 5);
        assert!(
            json(&o)["error"]
                .as_str()
                .unwrap_or_default()
                .contains("drift"),
            "{what}: not refused as drift:\n{}{}",
            stdout(&o),
            stderr(&o)
        );
        expect_code(&plan, 5);
        assert_eq!(
            c.db.scalar(
                "SELECT count(*) FROM information_schema.columns \
                 WHERE table_schema = 'app' AND column_name = 'label'"
            ),
            "0",
            "{what}: nothing of tier two ran"
        );
        if what == "user mapping password" {
            k.as_mapped(&undo);
        } else {
            c.db.exec(&undo);
        }
        let second = c.deploy("apply", &[]);
        assert_eq!(
            second.fingerprint_before, first.fingerprint_after,
            "{what}: undone"
        );
        c.deploy("rollback", &[]);
    }
}

/// What happens between two applies in [`plan_judges_drift_as_apply_does`].
enum Between {
    Nothing,
    /// SQL, and the SQL that undoes it.
    Sql(&'static str, &'static str),
    /// The user mapping's password, set to collide under the stamps' old hash.
    CollidingPassword,
}

/// `plan` and `apply` judge drift with one function on the same inputs: the same
/// exit code and the same words, for no drift, for drift made between runs, and for
/// drift only a whole description shows under the stamps' old hash.
#[test]
fn plan_judges_drift_as_apply_does() {
    let c = Case::new();
    let k = Colliding::new(&c);
    let bundle = c.bundle.to_string_lossy().into_owned();
    let cases = [
        ("no drift", Between::Nothing),
        (
            "a new table",
            Between::Sql("CREATE TABLE app.extra (a integer)", "DROP TABLE app.extra"),
        ),
        (
            "a colliding user mapping password",
            Between::CollidingPassword,
        ),
    ];
    for (what, between) in cases {
        c.deploy("apply", &["--through", "one"]);
        match between {
            Between::Nothing => {}
            Between::Sql(sql, _) => c.db.exec(sql),
            Between::CollidingPassword => {
                let password = k.colliding_password();
                k.as_mapped(&format!(
                    "ALTER USER MAPPING FOR CURRENT_USER SERVER srv OPTIONS (SET password '{password}')"
                ));
            }
        }
        let plan = c.run(&["plan", &bundle, "--trust", &c.trust]);
        let report = json(&plan);
        let drift_check = report["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .find(|x| x["check"] == "drift")
            .unwrap_or_else(|| panic!("{what}: plan has a drift check:\n{report}"))
            .clone();
        let o = c.run(&["apply", &bundle, "--trust", &c.trust]);
        assert_eq!(
            code(&plan),
            code(&o),
            "{what}: plan exits as apply does\nplan: {report}\napply: {}{}",
            stdout(&o),
            stderr(&o)
        );
        assert_eq!(
            report["exit_code"].as_i64(),
            Some(code(&o) as i64),
            "{what}: plan's exit code says apply's"
        );
        match between {
            Between::Nothing => {
                assert_eq!(code(&o), 0, "{what}: applied\n{}", stderr(&o));
                assert_eq!(drift_check["verdict"], "OK", "{what}: {drift_check}");
            }
            _ => {
                assert_eq!(code(&o), 5, "{what}: drift");
                let words = drift_check["evidence"].as_str().expect("evidence");
                assert!(words.starts_with("drift: "), "{what}: {words}");
                let said = json(&o)["error"].as_str().unwrap_or_default().to_string();
                assert!(
                    said.contains(words),
                    "{what}: apply says what plan says\nplan: {words}\napply: {said}"
                );
                match between {
                    Between::Sql(_, undo) => c.db.exec(undo),
                    _ => k.as_mapped(
                        "ALTER USER MAPPING FOR CURRENT_USER SERVER srv OPTIONS (SET password 'secret0')",
                    ),
                }
                c.deploy("apply", &[]);
            }
        }
        c.deploy("rollback", &[]);
    }
}
