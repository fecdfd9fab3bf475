//! `airlock new`: a bundle source to start from, every file commented: a gate, a
//! preflight and verify probe, one gate-free and one gated tier, a param with a
//! default, a rollback with its probe, and a runbook. It lints as written, and packs,
//! applies and rolls back on an empty database.
//!
//! Invariant: it writes only into a directory that does not exist or is empty, and
//! on failure leaves nothing there (the files are written into a temporary directory
//! beside it, which is then renamed).

use crate::cli::NewArgs;
use crate::error::{Error, Result};
use crate::report::{Outcome, Report};
use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(Serialize, schemars::JsonSchema)]
pub struct NewReport {
    /// The source directory written.
    pub out: PathBuf,
    /// Its files, relative to it.
    pub files: Vec<String>,
}

impl Report for NewReport {
    fn human(&self) -> String {
        let d = self.out.display();
        format!(
            "wrote a bundle source in {d}:\n  {}\n\nnext:\n  airlock lint {d}                       # every file, every statement\n  airlock keygen --out ~/.airlock/release  # once: your release key\n  airlock pack {d} --key ~/.airlock/release.key\n\nEach file says what it is for; replace the example SQL with your release's.",
            self.files.join("\n  ")
        )
    }
}

const GATE: &str = "\
-- The gate: a read-only question asked of the target before the gated tiers run.
-- Shape: one row with a boolean column `ready` (READY when true) and, optionally, a
-- text column `reason` shown to the operator either way. It runs in a READ ONLY
-- transaction as the gate role (airlock_gate), which needs SELECT on what it reads
-- (`airlock plan` lists the grants). Replace the example question with yours, e.g.
--   SELECT EXISTS (SELECT 1 FROM ops.release_flags WHERE flag = 'go') AS ready,
--          'the go flag in ops.release_flags' AS reason;
SELECT true AS ready,
       'example gate: always READY; ask your own question here' AS reason;
";

const BEFORE: &str = "\
-- The preflight probe: rows of (key, value), both text, compared with
-- [preflight] expect in bundle.toml before anything runs. A mismatch stops the
-- apply with nothing changed. It runs read-only, as the gate role. The rollback probe
-- is the same file by default: after a rollback the target must look like this again.
SELECT 'example_table' AS key,
       CASE WHEN to_regclass('public.airlock_example') IS NULL THEN 'absent' ELSE 'present' END AS value;
";

const AFTER: &str = "\
-- The verify probe: rows of (key, value) compared with [verify] expect after the
-- tiers ran, inside the same transaction: a mismatch rolls the whole apply back.
-- Like every probe it runs as the gate role: to read a table the release creates,
-- e.g. (SELECT count(*) FROM public.airlock_example)::text, the gate role needs
-- SELECT on it (`airlock plan` names every grant the probes need).
SELECT 'example_table' AS key,
       CASE WHEN to_regclass('public.airlock_example') IS NULL THEN 'absent' ELSE 'present' END AS value;
";

const SCHEMA: &str = "\
-- Tier 1, gate-free: runs as soon as the preflight holds (even while the gate says
-- BLOCKED; `airlock apply --through schema` stops after it). Every tier of a run
-- commits together or not at all. Replace with your structure changes.
CREATE TABLE public.airlock_example (
    id     integer PRIMARY KEY,
    ticket text NOT NULL
);
";

const DATA: &str = "\
-- Tier 2, gated: runs only when the gate says READY. A param is read with
-- current_setting('airlock.NAME'); `ticket` has a default in bundle.toml, so a run
-- without --param ticket=... uses it. Replace with your data changes.
INSERT INTO public.airlock_example (id, ticket)
VALUES (1, current_setting('airlock.ticket'));
";

const UNDO: &str = "\
-- The rollback: undoes the whole release, in one transaction, then the rollback
-- probe must give the preflight's expected rows again. Write it so it also undoes a
-- partial apply (IF EXISTS).
DROP TABLE IF EXISTS public.airlock_example;
";

const RUNBOOK: &str = "\
# Operator runbook

What this release does, for the person who runs it: replace this text.

1. `airlock verify BUNDLE --trust trust/`: signatures, hashes and the SQL rules.
2. `airlock plan BUNDLE --trust trust/ --db CONN`: every check apply makes; GO or NO-GO.
3. `airlock apply BUNDLE --trust trust/ --db CONN`: runs the tiers, all-or-nothing,
   and writes a receipt.
4. If it must be undone: `airlock rollback BUNDLE --trust trust/ --db CONN`.

The next release of a history kept in another tool's layout: `airlock import DIR
--since THIS_BUNDLE` (docs/release-train.md); it refuses a database where this one is
not applied.

Who to call when the gate stays BLOCKED: replace this line.
";

fn bundle_toml(name: &str, database: &str) -> String {
    format!(
        r#"# A bundle source, made by `airlock new`. Every field: docs/release-manager.md, "The source",
# and schemas/bundle.toml.schema.json.

[bundle]
name = "{name}"              # bundle names and versions are what the ledger records
version = "0.1.0"
sequence = 1                 # raise it for each release of this name: older ones are refused
description = "Replace with one sentence an approver understands."

[target]
database = "{database}"      # the name guard: any other database is refused

# A param: given at run time as --param ticket=CHG-1234, read in SQL with
# current_setting('airlock.ticket'). With a default it may be left out; `required =
# true` (and no default) makes a run that needs it name it.
[params.ticket]
default = "CHG-0000"
pattern = "^CHG-[0-9]+$"
description = "the change ticket this release belongs to"

# A gate: a read-only question (sql/gate/ready.sql). Tiers that list it run only on
# READY.
[[gate]]
name = "ready"
file = "sql/gate/ready.sql"

# Checked before anything runs: the probe's (key, value) rows must be exactly these.
[preflight]
file = "sql/probe/before.sql"
expect = {{ example_table = "absent" }}

# Tiers run in order, all in one transaction.
[[tier]]
name = "schema"
files = ["sql/tiers/01_schema.sql"]
gates = []                   # gate-free

[[tier]]
name = "data"
files = ["sql/tiers/02_data.sql"]
gates = ["ready"]

# Checked after the tiers, in the same transaction: a mismatch rolls it all back.
[verify]
file = "sql/probe/after.sql"
expect = {{ example_table = "present" }}

# `airlock rollback`: these files, then the probe (the preflight's by default) must
# give the preflight's expected rows again.
[rollback]
files = ["sql/rollback/01_undo.sql"]

[[runbook]]
file = "runbooks/operator.md"
title = "Operator runbook"
audience = "operator"
"#
    )
}

/// The files of a new source, by path relative to it.
fn files(name: &str, database: &str) -> Vec<(&'static str, String)> {
    vec![
        ("bundle.toml", bundle_toml(name, database)),
        ("sql/gate/ready.sql", GATE.into()),
        ("sql/probe/before.sql", BEFORE.into()),
        ("sql/probe/after.sql", AFTER.into()),
        ("sql/tiers/01_schema.sql", SCHEMA.into()),
        ("sql/tiers/02_data.sql", DATA.into()),
        ("sql/rollback/01_undo.sql", UNDO.into()),
        ("runbooks/operator.md", RUNBOOK.into()),
    ]
}

fn toml_safe(flag: &str, value: &str) -> Result<()> {
    if value.is_empty()
        || value
            .chars()
            .any(|c| c.is_control() || c == '"' || c == '\\')
    {
        return Err(Error::usage(
            format!("{flag} {value:?} cannot be written into bundle.toml as it is"),
            Some("use letters, digits, '-', '_' and '.'".into()),
        ));
    }
    Ok(())
}

pub fn run(args: NewArgs) -> Result<Outcome> {
    let dir = args.dir();
    let name = match &args.name {
        Some(n) => n.clone(),
        None => dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "release".into()),
    };
    toml_safe("--name", &name)?;
    toml_safe("--database", &args.database)?;
    let out = &dir;
    if out.exists() {
        let empty = out.is_dir()
            && std::fs::read_dir(out)
                .map_err(|e| Error::io(format!("cannot read {}", out.display()), e))?
                .next()
                .is_none();
        if !empty {
            return Err(Error::usage(
                format!(
                    "{} exists and is not an empty directory; nothing written",
                    out.display()
                ),
                Some("name a new directory".into()),
            ));
        }
    }
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let stage = tempfile::Builder::new()
        .prefix(".airlock-new-")
        .tempdir_in(&parent)
        .map_err(|e| Error::io(format!("cannot write in {}", parent.display()), e))?;
    let written = files(&name, &args.database);
    for (rel, text) in &written {
        write_file(stage.path(), rel, text)?;
    }
    if out.exists() {
        std::fs::remove_dir(out)
            .map_err(|e| Error::io(format!("cannot replace {}", out.display()), e))?;
    }
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(stage.path(), std::fs::Permissions::from_mode(0o755))
            .map_err(|e| Error::io(format!("cannot write in {}", parent.display()), e))?;
    }
    let staged = stage.keep();
    std::fs::rename(&staged, out).map_err(|e| {
        let _ = std::fs::remove_dir_all(&staged);
        Error::io(format!("cannot create {}", out.display()), e)
    })?;
    Ok(Box::new(NewReport {
        out: out.clone(),
        files: written.iter().map(|(rel, _)| rel.to_string()).collect(),
    }))
}

fn write_file(base: &Path, rel: &str, text: &str) -> Result<()> {
    let path = base.join(rel);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
    }
    std::fs::write(&path, text)
        .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))
}
