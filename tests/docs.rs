//! Every command the docs show is run here, and every relative link resolves.
//!
//! The convention (docs/README.md, "How the examples are tested"):
//! - a block fenced ```sh is run, line by line in order, by one `bash` per document
//!   (so `export` and `cd` carry to the document's later blocks). A line ending in `\`
//!   continues on the next; a here-document (`<<EOF`) runs to its terminator. A
//!   command whose text holds `# exit N` must exit with N, every other with 0;
//! - a ```sh block whose first line is a `# not run: REASON` comment (or a comment
//!   holding `(tests/docs.rs skips this block: REASON)`) is not run, and the set of
//!   such blocks is [`NOT_RUN`], small and listed;
//! - every other fence names a language that is not a shell (`text`, `toml`, `sql`…),
//!   and is never run: output, file contents. ```bash, ```console and the like are
//!   refused, so a command cannot slip out of the test by its fence.
//!
//! The documents run as one story, in [`STORY`] order, in one scratch directory
//! holding a copy of the repository's `bundle/`, against one fresh, uniquely named
//! database on the local server (`PGDATABASE`), with the built `airlock` first on
//! `PATH`, `HOME` inside the scratch directory, and stdin empty (no prompt can wait:
//! the walk-through's keys are throw-away ones, made with `--unencrypted`).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The documents whose ```sh blocks run, in order: the release manager packs the
/// bundle the approvers approve, the operator applies and the auditor audits; the references after them
/// use what the guides made.
const STORY: [&str; 12] = [
    "docs/release-manager.md",
    "docs/approver.md",
    "docs/operator.md",
    "docs/auditor.md",
    "docs/trust-store.md",
    "docs/rotating-keys.md",
    "docs/keys-on-hardware.md",
    "docs/bundle-format.md",
    "docs/sql.md",
    "docs/large-databases.md",
    "docs/fleets.md",
    "README.md",
];

/// The ```sh blocks that are shown but not run here: (document, first command).
const NOT_RUN: [(&str, &str); 21] = [
    // The release train on a history of the reader's own: tests/release_train.rs runs
    // the same story; its year on two servers (16, then 18), tests/pg_majors.rs.
    (
        "docs/release-train.md",
        "airlock import db/migrations --out rel-1.0.0 --database shop --name shop --bundle-version 1.0.0",
    ),
    (
        "docs/release-train.md",
        "airlock import db/migrations --since shop-1.0.0.tar.gz --trust keys/ \\",
    ),
    (
        "docs/release-train.md",
        "airlock import db/migrations --from golang-migrate --out rel-1.0.0 --database shop --name shop --bundle-version 1.0.0",
    ),
    (
        "docs/release-train.md",
        "airlock status --verify-chain --db \"host=new dbname=shop user=deployer\"   # hash chain: OK (4 rows); shop stands at 1.1.0",
    ),
    // An auditor's login beside a deploy login: the docs' database has no deploy login
    // (tests/least_privilege.rs makes both and audits as the auditor).
    (
        "docs/auditor.md",
        "airlock setup --db \"dbname=app user=postgres\" --login deployer --auditor auditor",
    ),
    // The auditor's story: six tenants with a deploy login, a stolen key
    // (tests/auditor_story.rs lives it through the binary).
    (
        "docs/auditor.md",
        "airlock setup --db \"dbname=tenant_001 user=postgres\" --login deployer --auditor auditor   # once per tenant, by their DBA",
    ),
    // Two servers of different majors (tests/pg_majors.rs moves a database from 16 to 18).
    (
        "docs/operator.md",
        "pg_dumpall --roles-only -d \"host=old user=postgres\" | psql -d \"host=new dbname=postgres user=postgres\"",
    ),
    // A new root set: it would move the walk-through's store on past the versions the
    // later sections name (tests/trust_rotation.rs runs these commands).
    (
        "docs/rotating-keys.md",
        "airlock keygen --out ~/.airlock/root3",
    ),
    // CI's own two commands (.ci/run runs both verbatim): a release build and the
    // whole suite, this test included.
    (
        "README.md",
        "cargo run --release -- demo     # the whole story on a throw-away database",
    ),
    // A cluster-wide role, made once per cluster; the test's cluster has it already.
    (
        "docs/operator.md",
        "psql -c 'CREATE ROLE airlock_gate NOLOGIN'",
    ),
    // Needs a login role "deployer", which the test's cluster does not have.
    (
        "docs/operator.md",
        "psql -c 'GRANT airlock_gate TO deployer'",
    ),
    // PostgreSQL 14's public schema given 15's default: needs a 14 server
    // (scripts/pg-majors does it for the tests' clusters).
    (
        "docs/operator.md",
        "psql -d \"dbname=app user=postgres\" -c \"ALTER SCHEMA public OWNER TO pg_database_owner; REVOKE CREATE ON SCHEMA public FROM PUBLIC\"",
    ),
    // The one-time deploy login: for a database an application role owns; the
    // story's database is a superuser's (tests/least_privilege.rs runs setup).
    (
        "docs/operator.md",
        "airlock setup --db \"dbname=app user=postgres\" --login deployer",
    ),
    // A release build and two packages: minutes, and .ci/run does it.
    (
        "docs/release-manager.md",
        "packaging/build-packages.sh --key ~/.airlock/release.key     # target/packages/",
    ),
    // The offline source build: the network to vendor, then minutes of building;
    // .ci/run does it (vendored, then built in a network namespace).
    (
        "README.md",
        "mkdir -p .cargo && cargo vendor --locked vendor >>.cargo/config.toml   # with network",
    ),
    (
        "docs/packages.md",
        "git archive --format=tar --prefix=airlock/ HEAD | tar -x -C /tmp",
    ),
    (
        "docs/packages.md",
        "tar -xzf airlock-src.tar.gz && cd airlock",
    ),
    // A fleet on Ansible: ansible-core and many databases; tests/fleet.rs runs the
    // same playbooks (and a vault) against local databases, tests/fleet_targets.rs the
    // audit of two tenants' receipts.
    (
        "docs/fleets.md",
        "ansible-playbook -i fleet.ini rollout.yml --check --diff    # the preview",
    ),
    (
        "docs/fleets.md",
        "ansible-vault encrypt_string --name vault_operator_passphrase   # paste the passphrase; the output goes in group_vars/all/vault.yml",
    ),
    (
        "docs/fleets.md",
        "airlock audit shop-2026.06.airlock.tar.gz --trust /etc/airlock/trust --receipt receipts/ --db \"dbname=tenant_001\" --db \"dbname=tenant_002\"",
    ),
    // Needs the package built above, and root to install it; .ci/run does it.
    (
        "docs/operator.md",
        "minisign -Vm SHA256SUMS -p release.pub                    # signed by the release key?",
    ),
];

/// Every Markdown document of the book and the front door.
fn documents() -> Vec<PathBuf> {
    let root = repo();
    let mut docs = vec![root.join("README.md")];
    let mut book: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .map(|e| e.expect("docs entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    book.sort();
    docs.extend(book);
    docs
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rel(p: &Path) -> String {
    p.strip_prefix(repo())
        .unwrap_or(p)
        .to_string_lossy()
        .into_owned()
}

/// One fenced block: where it starts, its info string and its lines.
struct Block {
    line: usize,
    lang: String,
    body: Vec<(usize, String)>,
}

fn blocks(doc: &str, text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<(Block, usize)> = None;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let indent = raw.len() - raw.trim_start().len();
        let t = raw.trim_start();
        match open.take() {
            None => {
                if let Some(info) = t.strip_prefix("```") {
                    let lang = info.trim().to_string();
                    assert!(
                        !lang.is_empty(),
                        "{doc}:{n}: a fence names its language (```sh runs, ```text does not)"
                    );
                    open = Some((
                        Block {
                            line: n,
                            lang,
                            body: Vec::new(),
                        },
                        indent,
                    ));
                }
            }
            Some((mut b, ind)) => {
                if t == "```" {
                    out.push(b);
                } else {
                    let strip = ind.min(indent);
                    b.body.push((n, raw[strip..].to_string()));
                    open = Some((b, ind));
                }
            }
        }
    }
    assert!(open.is_none(), "{doc}: a fence is never closed");
    out
}

/// One command of a ```sh block: its first line in the document, its text, the exit
/// code it must end with.
struct Cmd {
    line: usize,
    text: String,
    exit: i32,
}

fn commands(block: &Block) -> Vec<Cmd> {
    let mut out = Vec::new();
    let mut lines = block.body.iter().peekable();
    while let Some((n, l)) = lines.next() {
        if l.trim().is_empty() || l.trim_start().starts_with('#') {
            continue;
        }
        let mut text = l.clone();
        let mut last = l.clone();
        while last.trim_end().ends_with('\\') {
            let (_, next) = lines.next().expect("a continued line continues");
            text.push('\n');
            text.push_str(next);
            last = next.clone();
        }
        if let Some(tag) = heredoc_tag(&text) {
            for (_, next) in lines.by_ref() {
                text.push('\n');
                text.push_str(next);
                if next.trim() == tag {
                    break;
                }
            }
        }
        let exit = text
            .split("# exit ")
            .nth(1)
            .map(|rest| {
                let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
                digits.parse().expect("`# exit N` names a number")
            })
            .unwrap_or(0);
        out.push(Cmd {
            line: *n,
            text,
            exit,
        });
    }
    out
}

/// `EOF` of `cat > f <<'EOF'` (or `<<EOF`, `<<-EOF`).
fn heredoc_tag(text: &str) -> Option<String> {
    let rest = text.split("<<").nth(1)?;
    let rest = rest.trim_start_matches('-').trim_start();
    let tag: String = rest
        .trim_start_matches(['\'', '"'])
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    (!tag.is_empty()).then_some(tag)
}

/// A first line that invites the reader to run the block yet tells this test to skip
/// it: `# … (tests/docs.rs skips this block: REASON)`. (The README's quick start: its
/// two commands are CI's own; `# not run:` read to a newcomer as "do not run these".)
fn is_skip_note(line: &str) -> bool {
    line.starts_with('#') && line.contains("(tests/docs.rs skips this block:")
}

/// The ```sh blocks of a document, run and not run.
fn shell_blocks(doc: &Path) -> (Vec<Block>, Vec<Block>) {
    let name = rel(doc);
    let text = std::fs::read_to_string(doc).expect("read doc");
    let (mut run, mut skipped) = (Vec::new(), Vec::new());
    for b in blocks(&name, &text) {
        let lang = b.lang.as_str();
        assert!(
            !matches!(
                lang,
                "bash" | "shell" | "console" | "shell-session" | "zsh" | "sh-session"
            ),
            "{name}:{}: fence commands as ```sh (run by tests/docs.rs), not ```{lang}",
            b.line
        );
        if lang != "sh" {
            continue;
        }
        let first = b.body.first().map(|(_, l)| l.as_str()).unwrap_or("");
        if first.starts_with("# not run:") || is_skip_note(first) {
            skipped.push(b);
        } else {
            run.push(b);
        }
    }
    (run, skipped)
}

#[test]
fn only_the_listed_blocks_are_not_run() {
    let mut found = Vec::new();
    for doc in documents() {
        let (_, skipped) = shell_blocks(&doc);
        for b in skipped {
            let first = commands(&b)
                .first()
                .map(|c| c.text.lines().next().unwrap_or("").to_string())
                .unwrap_or_default();
            found.push((rel(&doc), first));
        }
    }
    let mut want: Vec<(String, String)> = NOT_RUN
        .iter()
        .map(|(d, c)| (d.to_string(), c.to_string()))
        .collect();
    want.sort();
    found.sort();
    assert_eq!(
        found, want,
        "the ```sh blocks marked `# not run:` are exactly those listed in NOT_RUN"
    );
}

#[test]
fn every_document_with_commands_is_in_the_story() {
    for doc in documents() {
        let (run, _) = shell_blocks(&doc);
        if !run.is_empty() {
            assert!(
                STORY.contains(&rel(&doc).as_str()),
                "{} shows commands but is not in STORY, so they would not run",
                rel(&doc)
            );
        }
    }
}

/// A fresh database on the local server for the story, dropped (WITH FORCE) at the end.
struct Db(String);

impl Db {
    fn new() -> Db {
        let name = format!("airlock_docs_{}", std::process::id());
        psql("postgres", &format!("CREATE DATABASE \"{name}\""));
        // The cluster's gate role (operator guide, "one-time setup"), as tests/util
        // makes it: created when missing, with no reads of its own.
        psql(
            "postgres",
            "DO $$ BEGIN
               IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'airlock_gate') THEN
                 CREATE ROLE airlock_gate NOLOGIN;
               END IF;
             EXCEPTION WHEN duplicate_object OR unique_violation OR internal_error THEN NULL;
             END $$",
        );
        Db(name)
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args(["-X", "-q", "-d", "postgres", "-c"])
            .arg(format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.0
            ))
            .output();
    }
}

fn psql(db: &str, sql: &str) {
    let o = Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db, "-c", sql])
        .output()
        .expect("run psql (the PostgreSQL client)");
    assert!(
        o.status.success(),
        "psql: {sql}\n{}\nThese tests need a real server. Start it (pg_ctlcluster --skip-systemctl-redirect 15 main start) or run .ci/run.",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read dir") {
        let e = e.expect("entry");
        let dest = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).expect("copy");
        }
    }
}

/// One document's commands as one bash script: each command in a `{ … }` group (so
/// `cd` and `export` hold for the next), its output to a file of its own; the first
/// whose exit code is not the one shown stops the script and is named.
fn script(cmds: &[Cmd], logs: &Path) -> String {
    let mut s = String::new();
    for (i, c) in cmds.iter().enumerate() {
        let log = logs.join(i.to_string());
        s.push_str(&format!(
            "__t=$(date +%s%N)\n{{\n{}\n}} >'{}' 2>&1 </dev/null\n__rc=$?\necho \"{i} $(( ($(date +%s%N) - __t) / 1000000 ))\" >>'{}'\nif [ \"$__rc\" != {} ]; then echo \"{i} $__rc\" >'{}'; exit 0; fi\n",
            c.text,
            log.display(),
            logs.join("times").display(),
            c.exit,
            logs.join("failed").display()
        ));
    }
    s
}

#[test]
fn every_command_the_docs_show_runs_as_shown() {
    let t = tempfile::Builder::new()
        .prefix("airlock-docs-")
        .tempdir()
        .expect("tempdir");
    let work = t.path().join("work");
    copy_dir(&repo().join("bundle"), &work.join("bundle"));
    let home = t.path().join("home");
    std::fs::create_dir_all(&home).expect("home");
    let db = Db::new();
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_airlock"));
    let path = format!(
        "{}:{}",
        bin.parent().expect("bin dir").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut ran = 0;
    for doc in STORY {
        let (blocks, _) = shell_blocks(&repo().join(doc));
        let cmds: Vec<Cmd> = blocks.iter().flat_map(commands).collect();
        if cmds.is_empty() {
            continue;
        }
        let logs = t.path().join("logs").join(doc.replace('/', "_"));
        std::fs::create_dir_all(&logs).expect("logs");
        let o = Command::new("timeout")
            .args(["300", "bash", "-c", &script(&cmds, &logs)])
            .current_dir(&work)
            .env("PATH", &path)
            .env("HOME", &home)
            .env("PGDATABASE", &db.0)
            .env("AIRLOCK_STATE_DIR", t.path().join("state"))
            .env("NO_COLOR", "1")
            .env("COLUMNS", "100")
            .env_remove("AIRLOCK_DB")
            .env_remove("AIRLOCK_PASSPHRASE")
            .env_remove("AIRLOCK_TRUST")
            .env_remove("SOURCE_DATE_EPOCH")
            .output()
            .expect("run bash");
        let failed = std::fs::read_to_string(logs.join("failed")).ok();
        if let Some(f) = failed {
            let mut it = f.split_whitespace();
            let i: usize = it.next().unwrap().parse().unwrap();
            let rc = it.next().unwrap();
            let c = &cmds[i];
            let out = std::fs::read_to_string(logs.join(i.to_string())).unwrap_or_default();
            panic!(
                "{doc}:{}: exit {rc}, the document shows exit {}:\n{}\n--- its output ---\n{out}",
                c.line, c.exit, c.text
            );
        }
        assert!(
            o.status.success() && logs.join((cmds.len() - 1).to_string()).exists(),
            "{doc}: the script did not run to its end (exit {:?}):\n{}\n{}",
            o.status.code(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        // The slowest commands, to keep this test fast (`--nocapture` shows them).
        let times = std::fs::read_to_string(logs.join("times")).unwrap_or_default();
        let mut times: Vec<(u64, usize)> = times
            .lines()
            .filter_map(|l| {
                let (i, ms) = l.split_once(' ')?;
                Some((ms.parse().ok()?, i.parse().ok()?))
            })
            .collect();
        times.sort_unstable_by(|a, b| b.cmp(a));
        for (ms, i) in times.iter().take(3) {
            eprintln!("{doc}:{}: {ms} ms", cmds[*i].line);
        }
        ran += cmds.len();
    }
    eprintln!("{ran} commands ran");
    if std::env::var_os("AIRLOCK_DOCS_KEEP").is_some() {
        // Each command's output, for whoever writes the docs: logs/DOC/N.
        eprintln!("kept: {}", t.keep().display());
    }
    assert!(ran > 0, "no command ran");
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces as `-`.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn anchors(text: &str) -> Vec<String> {
    let mut in_fence = false;
    let mut out = Vec::new();
    for l in text.lines() {
        if l.trim_start().starts_with("```") {
            in_fence = !in_fence;
        } else if !in_fence && l.starts_with('#') {
            out.push(slug(l.trim_start_matches('#')));
        }
    }
    out
}

/// The targets of `[text](target)` links outside code.
fn links(text: &str) -> Vec<String> {
    let mut in_fence = false;
    let mut out = Vec::new();
    for l in text.lines() {
        if l.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            continue;
        }
        let mut rest = l;
        while let Some(i) = rest.find("](") {
            let after = &rest[i + 2..];
            let Some(end) = after.find(')') else { break };
            out.push(after[..end].to_string());
            rest = &after[end..];
        }
    }
    out
}

#[test]
fn every_relative_link_resolves() {
    let mut broken = Vec::new();
    for doc in documents() {
        let text = std::fs::read_to_string(&doc).expect("read");
        for target in links(&text) {
            if target.starts_with("http://")
                || target.starts_with("https://")
                || target.starts_with("mailto:")
            {
                continue;
            }
            let (file, anchor) = match target.split_once('#') {
                Some((f, a)) => (f, Some(a)),
                None => (target.as_str(), None),
            };
            let path = if file.is_empty() {
                doc.clone()
            } else {
                doc.parent().unwrap().join(file)
            };
            if !path.exists() {
                broken.push(format!("{}: {target} (no such file)", rel(&doc)));
                continue;
            }
            if let Some(a) = anchor {
                if path.extension().is_some_and(|e| e == "md") {
                    let t = std::fs::read_to_string(&path).expect("read target");
                    if !anchors(&t).iter().any(|x| x == a) {
                        broken.push(format!("{}: {target} (no such heading)", rel(&doc)));
                    }
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn the_readme_is_a_front_door() {
    let text = std::fs::read_to_string(repo().join("README.md")).expect("README");
    let lines = text.lines().count();
    assert!(
        lines <= 250,
        "README.md has {lines} lines; the book holds the rest"
    );
    for guide in [
        "docs/release-manager.md",
        "docs/operator.md",
        "docs/auditor.md",
    ] {
        assert!(
            links(&text).iter().any(|l| l == guide),
            "README.md links each role's guide: {guide}"
        );
    }
}
