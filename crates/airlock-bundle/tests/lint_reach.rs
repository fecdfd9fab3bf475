//! `spec::lint` lists what the tier and rollback files reach beyond the database from
//! its one read of each file: exactly what reading every file again through
//! `reaches_in` gives, in the spec's order, each file once.

use airlock_bundle::spec::{lint, Spec};
use airlock_sql::{reaches_in, Reach, SqlRole};
use std::path::Path;

fn write(dir: &Path, file: &str, text: &str) {
    let path = dir.join(file);
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

/// What the second read of every tier and rollback file gave before lint listed them:
/// each file through `reaches_in`, in the spec's order, each file once.
fn read_twice(dir: &Path, spec: &Spec) -> Vec<Reach> {
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for (file, role, _) in spec.named_files() {
        let script = matches!(role, Some(SqlRole::Script | SqlRole::Online));
        if script && seen.insert(file.clone()) {
            let mut f = std::fs::File::open(dir.join(&file)).expect("open");
            out.extend(reaches_in(&file, &mut f).expect("read"));
        }
    }
    out
}

/// Files settled in one pass, files read again (a DML call, an over-long DML
/// statement), a file named by two tiers, and one that is a tier's and the rollback's.
#[test]
fn lint_lists_what_reading_every_file_again_lists() {
    let t = tempfile::tempdir().expect("tempdir");
    let dir = t.path();
    write(
        dir,
        "sql/a.sql",
        "CREATE ROLE a;\nINSERT INTO t VALUES (1);\n",
    );
    write(
        dir,
        "sql/b.sql",
        "SELECT 1;\nSELECT dblink_exec('c', 'q');\nGRANT r TO u;\n",
    );
    let mut long = String::from("ALTER ROLE a SET work_mem = 1;\nINSERT INTO t VALUES ('");
    long.push_str(&"x".repeat(9 << 20));
    long.push_str("');\n");
    write(dir, "sql/c.sql", &long);
    write(dir, "sql/r.sql", "DROP ROLE a;\n");
    write(
        dir,
        "sql/p.sql",
        "SELECT 'k'::text AS key, 'v'::text AS value\n",
    );
    write(
        dir,
        "bundle.toml",
        "[bundle]\nname = \"lr\"\nversion = \"1\"\nsequence = 1\n\n[target]\ndatabase = \"d\"\n\n\
         [[tier]]\nname = \"one\"\nfiles = [\"sql/c.sql\", \"sql/a.sql\"]\n\n\
         [[tier]]\nname = \"two\"\nfiles = [\"sql/b.sql\", \"sql/r.sql\"]\n\n\
         [rollback]\nfiles = [\"sql/r.sql\", \"sql/a.sql\"]\nprobe = \"sql/p.sql\"\nexpect = { k = \"v\" }\n",
    );
    let linted = lint(dir).expect("lint");
    let want = read_twice(dir, &linted.spec);
    assert_eq!(linted.reaches_beyond, want);
    let said: Vec<String> = want.iter().map(ToString::to_string).collect();
    assert_eq!(
        said,
        [
            "ALTER ROLE at sql/c.sql:1",
            "a DML statement over 8 MiB, too long to look for calls that reach beyond at sql/c.sql:2",
            "CREATE ROLE at sql/a.sql:1",
            "dblink_exec(…) (another database) at sql/b.sql:2",
            "GRANT role (membership) at sql/b.sql:3",
            "DROP ROLE at sql/r.sql:1",
        ]
    );
}
