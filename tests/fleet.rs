//! One signed bundle rolled out over many databases by a real `ansible-playbook`,
//! through the `airlock.postgresql` collection in `ansible/` (issue 52): each database
//! a host of the inventory (`ansible_connection=local`, its `db` a libpq string for
//! its own fresh database). Check mode changes nothing and says what would change;
//! `serial: 1` with `max_fail_percentage: 0` stops at the first tenant that fails and
//! leaves the later ones untouched; the rerun applies the rest, changed only where it
//! ran; `wait` waits per tenant; bad input fails the task with airlock's message, never
//! a traceback; the receipt key's passphrase never reaches airlock's command line; the
//! modules' docs render and the collection passes `ansible-test sanity`.
//!
//! ansible-core comes from PyPI into a virtual environment made once by
//! `scripts/ansible-venv` (also run by `scripts/test-deps`) and kept outside the clone,
//! named by its pins (`~/.cache/airlock/ansible-venv`). A missing python3 or PyPI fails these tests loudly.

mod util;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use util::*;

/// The virtual environment with ansible-core (made once per test process).
fn venv() -> PathBuf {
    static VENV: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    VENV.get_or_init(|| {
        let o = Command::new(repo().join("scripts/ansible-venv"))
            .output()
            .expect("run scripts/ansible-venv");
        assert!(
            o.status.success(),
            "scripts/ansible-venv could not make the Ansible virtual environment (it needs python3 with venv, and PyPI): {}{}",
            stdout(&o),
            stderr(&o)
        );
        // It prints the directory it made or found (outside the clone, named by its pins).
        PathBuf::from(stdout(&o).trim())
    })
    .clone()
}

/// A command of the virtual environment (`ansible-playbook`, `ansible-doc`…) with the
/// collection on its path, its state under `d`, airlock's state the tests' own.
fn ansible(d: &Path, program: &str) -> Command {
    let mut c = Command::new(venv().join("bin").join(program));
    c.current_dir(d)
        .env("ANSIBLE_COLLECTIONS_PATH", repo().join("ansible"))
        .env("ANSIBLE_HOME", d.join(".ansible-home"))
        .env("ANSIBLE_LOCAL_TEMP", d.join(".ansible-tmp"))
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_RETRY_FILES_ENABLED", "0")
        .env("ANSIBLE_DEPRECATION_WARNINGS", "0")
        // Each host's last task result, as JSON, in d/tree/HOST.
        .env("ANSIBLE_CALLBACKS_ENABLED", "ansible.builtin.tree")
        .env("ANSIBLE_CALLBACK_TREE_DIR", d.join("tree"))
        .env("AIRLOCK_STATE_DIR", state_dir());
    for k in [
        "AIRLOCK_DB",
        "AIRLOCK_TRUST",
        "AIRLOCK_PASSPHRASE",
        "PGDATABASE",
    ] {
        c.env_remove(k);
    }
    c
}

/// `ansible-playbook -i inventory.ini PLAY ARGS` in `d`, the tree of results emptied
/// first.
fn playbook(d: &Path, play: &str, args: &[&str]) -> Output {
    let _ = std::fs::remove_dir_all(d.join("tree"));
    let o = ansible(d, "ansible-playbook")
        .args(["-i", "inventory.ini", play])
        .args(args)
        .output()
        .expect("run ansible-playbook");
    // Whatever happened, no module died in Python.
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert!(
        !all.contains("Traceback") && !all.contains("MODULE FAILURE"),
        "a module failed with a Python error:\n{all}"
    );
    o
}

/// The last task result of each host that ran (the tree callback's files).
fn results(d: &Path) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    if let Ok(dir) = std::fs::read_dir(d.join("tree")) {
        for e in dir.flatten() {
            let text = std::fs::read_to_string(e.path()).unwrap();
            out.insert(
                e.file_name().to_string_lossy().into_owned(),
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}")),
            );
        }
    }
    out
}

/// Counts of the PLAY RECAP line of each host: (ok, changed, failed).
fn recap(o: &Output) -> BTreeMap<String, (u32, u32, u32)> {
    let text = stdout(o);
    let mut out = BTreeMap::new();
    let Some((_, tail)) = text.split_once("PLAY RECAP") else {
        return out;
    };
    for line in tail.lines().filter(|l| l.contains(" : ok=")) {
        let (host, counts) = line.split_once(" : ").unwrap();
        let count = |k: &str| -> u32 {
            counts
                .split_whitespace()
                .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
                .unwrap()
                .parse()
                .unwrap()
        };
        out.insert(
            host.trim().to_string(),
            (count("ok"), count("changed"), count("failed")),
        );
    }
    out
}

/// Assert the playbook's exit code, with both streams when it differs.
#[track_caller]
fn expect_play(o: &Output, want: i32) {
    assert_eq!(
        code(o),
        want,
        "ansible-playbook exit code\n--- stdout\n{}\n--- stderr\n{}",
        stdout(o),
        stderr(o)
    );
}

/// Tenants on the local server, a bundle for all of them (`[target] database` a glob
/// pattern), and an inventory with one host per tenant.
struct Fleet {
    dir: tempfile::TempDir,
    tenants: Vec<TestDb>,
    pattern: String,
}

impl Fleet {
    /// `n` tenants, each prepared by `setup` (index from 0) before the bundle is packed;
    /// the bundle's one tier runs after `gate_sql` says ready.
    fn new(n: usize, gate_sql: &str, setup: impl Fn(usize, &TestDb)) -> Fleet {
        Fleet::with_tiers(
            n,
            gate_sql,
            setup,
            &[(
                "structure",
                "CREATE SCHEMA app; CREATE TABLE app.t(i int);",
                true,
            )],
            "DROP SCHEMA IF EXISTS app CASCADE;",
            |t| t,
        )
    }

    /// [`Fleet::new`] with these tiers (name, sql, gated) and rollback, the
    /// bundle.toml edited by `edit` before it is packed.
    fn with_tiers(
        n: usize,
        gate_sql: &str,
        setup: impl Fn(usize, &TestDb),
        tiers: &[(&str, &str, bool)],
        rollback: &str,
        edit: impl Fn(String) -> String,
    ) -> Fleet {
        let dir = keyed_dir();
        let d = dir.path();
        // One tag for the whole fleet of this test: the pattern names it alone.
        static FLEETS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let tag = format!(
            "fl{}",
            FLEETS.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        );
        let tenants: Vec<TestDb> = (0..n).map(|_| TestDb::new(&tag)).collect();
        for (i, t) in tenants.iter().enumerate() {
            setup(i, t);
        }
        let pattern = format!("airlock_t_{tag}_{}_*", std::process::id());
        let s = MiniSource::new(d, "PLACEHOLDER", gate_sql, tiers, rollback);
        let toml = s.dir.join("bundle.toml");
        let text = std::fs::read_to_string(&toml).unwrap();
        write(
            &toml,
            &edit(text.replace("\"PLACEHOLDER\"", &format!("\"{pattern}\""))),
        );
        pack(d, &s.dir, "rm.key", "release.tar.gz");
        let fleet = Fleet {
            dir,
            tenants,
            pattern,
        };
        fleet.inventory(&[]);
        fleet
    }

    fn d(&self) -> &Path {
        self.dir.path()
    }

    /// `inventory.ini`: host tN for the Nth tenant (from 1), then the extra hosts
    /// (name, database) given, each with its `db`.
    fn inventory(&self, extra: &[(&str, &str)]) {
        let mut hosts: Vec<(String, String)> = self
            .tenants
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("t{}", i + 1), t.name.clone()))
            .collect();
        hosts.extend(extra.iter().map(|(h, db)| (h.to_string(), db.to_string())));
        let mut ini = String::from("[tenants]\n");
        for (host, db) in &hosts {
            ini.push_str(&format!(
                "{host} db=\"host=/var/run/postgresql dbname={db}\"\n"
            ));
        }
        ini.push_str(&format!(
            "\n[tenants:vars]\nansible_connection=local\nansible_python_interpreter={}\n",
            venv().join("bin/python").display()
        ));
        write(&self.d().join("inventory.ini"), &ini);
    }

    /// A playbook over the tenants: `play` options (serial…), then one task of
    /// `module` with the release's bundle, trust store, the host's db, the param the
    /// bundle asks for, the receipts directory and airlock, plus `options`.
    fn play(&self, name: &str, play: &str, module: &str, options: &str) -> String {
        let d = self.d();
        let text = format!(
            "- hosts: tenants\n  gather_facts: false\n{play}  tasks:\n    - name: {module}\n      {module}:\n        bundle: {}\n        trust: {}\n        db: \"{{{{ db }}}}\"\n        executable: {}\n{options}",
            d.join("release.tar.gz").display(),
            d.join("rm.pub").display(),
            bin().display(),
        );
        write(&d.join(name), &text);
        name.to_string()
    }

    /// The rollout: one tenant at a time, stopping at the first failure.
    fn rollout(&self, extra: &str) -> String {
        let receipts = self.d().join("receipts");
        self.play(
            "rollout.yml",
            "  serial: 1\n  max_fail_percentage: 0\n",
            "airlock.postgresql.apply",
            &format!(
                "        params:\n          code: A1\n        receipt_dir: \"{}/{{{{ inventory_hostname }}}}\"\n{extra}",
                receipts.display()
            ),
        )
    }
}

/// Whether the tier ran on `db` (it makes schema `app` with table `t`).
fn has_release(db: &TestDb) -> bool {
    db.scalar("SELECT (to_regclass('app.t') IS NOT NULL)::text") == "true"
}

#[test]
fn check_mode_changes_nothing_and_reports_changed_for_each_tenant() {
    let fleet = Fleet::new(3, "SELECT true AS ready", |_, _| {});
    let d = fleet.d();
    // The first tenant has the release already.
    let first = &fleet.tenants[0];
    expect_code(
        &run_json(
            d,
            "rm.pub",
            &first.conn(),
            &["apply", "release.tar.gz", "--param", "code=A1"],
        ),
        0,
    );
    let before: Vec<String> = fleet.tenants.iter().map(TestDb::dump).collect();
    let play = fleet.rollout("");
    let o = playbook(d, &play, &["--check", "--diff"]);
    expect_play(&o, 0);
    let counts = recap(&o);
    assert_eq!(counts["t1"], (1, 0, 0), "{}", stdout(&o));
    assert_eq!(counts["t2"], (1, 1, 0), "{}", stdout(&o));
    assert_eq!(counts["t3"], (1, 1, 0), "{}", stdout(&o));
    let after: Vec<String> = fleet.tenants.iter().map(TestDb::dump).collect();
    assert_eq!(before, after, "check mode changed a database");
    assert_eq!(fleet.tenants[1].ledger_rows(), "none");
    assert_eq!(fleet.tenants[2].ledger_rows(), "none");
    let r = results(d);
    assert_eq!(r["t1"]["verdict"], "ALREADY-APPLIED");
    assert_eq!(r["t1"]["refusal_kind"], "already-applied");
    for host in ["t2", "t3"] {
        assert_eq!(r[host]["verdict"], "GO", "{}", r[host]);
        assert_eq!(r[host]["tiers"], serde_json::json!(["structure"]));
        assert_eq!(r[host]["document"]["target_match"], fleet.pattern.as_str());
    }
    // Diff mode shows each tenant's ledger before and after.
    let text = stdout(&o);
    assert!(
        text.contains("-  nothing applied\n+  applied: structure"),
        "{text}"
    );
    assert!(
        text.contains(&format!("--- before: ledger of {}", fleet.tenants[1].name)),
        "{text}"
    );
}

#[test]
fn serial_one_stops_at_the_first_failing_tenant_and_the_rerun_applies_the_rest() {
    // The second tenant is not where the release expects it: its preflight (no table
    // in schema app) fails.
    let fleet = Fleet::new(4, "SELECT true AS ready", |i, db| {
        if i == 1 {
            db.exec("CREATE SCHEMA app; CREATE TABLE app.stray(i int);");
        }
    });
    let d = fleet.d();
    let untouched: Vec<String> = fleet.tenants[1..].iter().map(TestDb::dump).collect();
    let play = fleet.rollout("");
    let o = playbook(d, &play, &[]);
    assert_ne!(code(&o), 0, "a failed tenant must fail the run");
    let counts = recap(&o);
    assert_eq!(counts["t1"], (1, 1, 0), "{}", stdout(&o));
    assert_eq!(counts["t2"].2, 1, "{}", stdout(&o));
    assert!(
        !counts.contains_key("t3") && !counts.contains_key("t4"),
        "{counts:?}"
    );
    let r = results(d);
    assert_eq!(
        r.keys().collect::<Vec<_>>(),
        ["t1", "t2"],
        "the run went past the failing tenant"
    );
    // (The tree keeps a result without its `failed`: the recap above counts it.)
    let failed = &r["t2"];
    assert_eq!(failed["rc"], 5, "{failed}");
    assert_eq!(failed["kind"], "state-check", "{failed}");
    assert!(
        failed["msg"].as_str().unwrap().contains("preflight"),
        "{failed}"
    );
    // A failure inside the transaction changed nothing there, and the result says so.
    assert_eq!(failed["changed"], false, "{failed}");
    assert_eq!(failed["changed_tiers"], serde_json::json!([]), "{failed}");
    assert!(
        failed["msg"]
            .as_str()
            .unwrap()
            .contains("nothing changed on this database"),
        "{failed}"
    );
    // The first tenant has it; the failing one and every later one are as they were.
    assert!(has_release(&fleet.tenants[0]));
    assert_eq!(fleet.tenants[0].ledger_rows(), "1");
    let now: Vec<String> = fleet.tenants[1..].iter().map(TestDb::dump).collect();
    assert_eq!(untouched, now, "a tenant after the failure was touched");
    for t in &fleet.tenants[1..] {
        assert_eq!(t.ledger_rows(), "none", "{}", t.name);
    }

    // The fix, and the same run again: changed only where it ran.
    fleet.tenants[1].exec("DROP TABLE app.stray; DROP SCHEMA app;");
    let o = playbook(d, &play, &[]);
    expect_play(&o, 0);
    let counts = recap(&o);
    assert_eq!(counts["t1"], (1, 0, 0), "{}", stdout(&o));
    for host in ["t2", "t3", "t4"] {
        assert_eq!(counts[host], (1, 1, 0), "{host}: {}", stdout(&o));
    }
    for t in &fleet.tenants {
        assert!(has_release(t), "{}", t.name);
        assert_eq!(t.ledger_rows(), "1", "{}", t.name);
    }
    // Each tenant's receipt is where the play put it.
    for host in ["t1", "t2", "t3", "t4"] {
        let n = std::fs::read_dir(d.join("receipts").join(host))
            .unwrap()
            .count();
        assert_eq!(n, 1, "{host}");
    }
}

/// How many sequential scans `public.flag` of `db` has had: each gate poll reads it
/// once (every poll is a new session, whose counts reach the statistics as it ends).
fn flag_reads(db: &TestDb) -> i64 {
    db.scalar("SELECT coalesce((SELECT seq_scan FROM pg_stat_user_tables WHERE relname = 'flag'), 0)::text")
        .parse()
        .unwrap()
}

/// Wait (bounded) until `cond` holds; a hang guard, not a timing assertion.
#[track_caller]
fn until(what: &str, child: &mut std::process::Child, mut cond: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    while !cond() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("ansible-playbook ended ({status}) before {what}");
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(300),
            "not seen in 5 minutes: {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[test]
fn wait_waits_for_each_tenants_own_gate() {
    let fleet = Fleet::new(2, "SELECT ready FROM public.flag", |_, db| {
        db.exec("CREATE TABLE public.flag(ready boolean NOT NULL); INSERT INTO public.flag VALUES (false);");
    });
    let d = fleet.d();
    let (one, two) = (&fleet.tenants[0], &fleet.tenants[1]);
    let play = fleet.rollout("        wait: 600\n        poll_interval: 1\n");
    let _ = std::fs::remove_dir_all(d.join("tree"));
    let mut child = ansible(d, "ansible-playbook")
        .args(["-i", "inventory.ini", &play])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start ansible-playbook");
    // The first tenant's gate is read again and again (plan's look, then polls), and
    // the second tenant's not at all: one tenant at a time, each waiting for its own.
    until("the first tenant's gate polled twice", &mut child, || {
        flag_reads(one) >= 3
    });
    assert_eq!(
        flag_reads(two),
        0,
        "the second tenant was asked before the first was done"
    );
    assert_eq!(one.ledger_rows(), "none", "applied while BLOCKED");
    one.exec("UPDATE public.flag SET ready = true");
    until("the second tenant's gate polled twice", &mut child, || {
        flag_reads(two) >= 3
    });
    assert!(
        has_release(one),
        "the first tenant was not applied when its gate opened"
    );
    assert_eq!(two.ledger_rows(), "none", "applied while BLOCKED");
    two.exec("UPDATE public.flag SET ready = true");
    let o = child.wait_with_output().expect("ansible-playbook");
    expect_play(&o, 0);
    let counts = recap(&o);
    assert_eq!(counts["t1"], (1, 1, 0));
    assert_eq!(counts["t2"], (1, 1, 0));
    let r = results(d);
    for host in ["t1", "t2"] {
        let wait = &r[host]["document"]["wait"];
        assert_eq!(wait["ended"], "ready", "{host}: {wait}");
        assert!(wait["polls"].as_u64().unwrap() >= 2, "{host}: {wait}");
    }
    assert!(has_release(two));
}

#[test]
fn bad_input_fails_the_task_with_airlocks_message_never_a_traceback() {
    let fleet = Fleet::new(1, "SELECT true AS ready", |_, _| {});
    let d = fleet.d();
    let outsider = TestDb::new("fleetout");
    fleet.inventory(&[("outsider", &outsider.name)]);
    let before = outsider.dump();
    let task = |name: &str, extra: &str| {
        format!(
            "    - name: {name}\n      airlock.postgresql.apply:\n        bundle: {}\n        trust: {}\n        db: \"{{{{ db }}}}\"\n        params: {{code: A1}}\n{extra}      register: {name}\n      ignore_errors: true\n",
            d.join("release.tar.gz").display(),
            d.join("rm.pub").display(),
        )
    };
    let airlock = format!("        executable: {}\n", bin().display());
    let mut play = String::from("- hosts: tenants\n  gather_facts: false\n  tasks:\n");
    play.push_str(&task(
        "unknown_param",
        &format!("{airlock}        no_such_option: 1\n"),
    ));
    play.push_str(&task(
        "missing_binary",
        "        executable: /nonexistent/airlock\n",
    ));
    play.push_str(&task(
        "not_on_path",
        "        executable: airlock-that-is-not-installed\n",
    ));
    play.push_str(&task(
        "undeclared_param",
        &format!("{airlock}        params: {{code: A1, nope: 1}}\n"),
    ));
    play.push_str(&task(
        "tenant",
        &format!(
            "{airlock}        receipt_dir: {}\n",
            d.join("receipts").display()
        ),
    ));
    play.push_str(&format!(
        "    - ansible.builtin.copy:\n        dest: \"{}/{{{{ inventory_hostname }}}}.json\"\n        content: \"{{{{ {{'unknown_param': unknown_param, 'missing_binary': missing_binary, 'not_on_path': not_on_path, 'undeclared_param': undeclared_param, 'tenant': tenant}} | to_json }}}}\"\n",
        d.display()
    ));
    write(&d.join("bad.yml"), &play);
    let o = playbook(d, "bad.yml", &[]);
    expect_play(&o, 0);
    let read = |host: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(d.join(format!("{host}.json"))).unwrap())
            .unwrap()
    };
    for host in ["t1", "outsider"] {
        let r = read(host);
        for (case, says) in [
            ("unknown_param", "no_such_option"),
            ("missing_binary", "/nonexistent/airlock"),
            ("not_on_path", "airlock-that-is-not-installed"),
            ("undeclared_param", "nope"),
        ] {
            let res = &r[case];
            assert_eq!(res["failed"], true, "{host} {case}: {res}");
            let msg = res["msg"].as_str().unwrap();
            assert!(msg.contains(says), "{host} {case}: {res}");
            // Ansible's own refusal of an unknown option carries an `exception` of
            // "(traceback unavailable)"; no Python traceback, no module output.
            let exception = res
                .get("exception")
                .map(Value::to_string)
                .unwrap_or_default();
            assert!(
                !exception.contains("Traceback") && res.get("module_stderr").is_none(),
                "{host} {case}: {res}"
            );
        }
        assert_eq!(r["undeclared_param"]["rc"], 2, "{}", r["undeclared_param"]);
        assert_eq!(r["undeclared_param"]["kind"], "usage");
    }
    // The tenant the bundle is for: applied. The outsider: the name guard, airlock's
    // words, and nothing written.
    let r = read("t1");
    assert_eq!(r["tenant"]["changed"], true, "{}", r["tenant"]);
    let r = read("outsider");
    let guard = &r["tenant"];
    assert_eq!(guard["failed"], true);
    assert_eq!(guard["rc"], 5, "{guard}");
    assert_eq!(guard["kind"], "name-guard");
    let msg = guard["msg"].as_str().unwrap();
    assert!(
        msg.contains("name guard") && msg.contains(&format!("{:?}", fleet.pattern)),
        "{guard}"
    );
    assert!(guard["hint"].as_str().unwrap().contains("--db"), "{guard}");
    // The database it reached, though airlock's error document names none.
    assert_eq!(guard["database"], outsider.name.as_str(), "{guard}");
    // A task that reached no database has no `database`, never a null one.
    let r = read("t1");
    assert!(
        r["missing_binary"].get("database").is_none(),
        "{}",
        r["missing_binary"]
    );
    assert_eq!(outsider.ledger_rows(), "none");
    assert_eq!(outsider.dump(), before);
}

#[test]
fn the_passphrase_reaches_airlock_in_its_environment_never_on_its_command_line() {
    let fleet = Fleet::new(1, "SELECT true AS ready", |_, _| {});
    let d = fleet.d();
    let secret = "correct-horse-battery-staple";
    expect_code(
        &airlock_env(
            d,
            &["keygen", "--out", "op"],
            &[("AIRLOCK_PASSPHRASE", secret)],
        ),
        0,
    );
    // airlock behind a wrapper that writes down its arguments and whether the
    // passphrase variable was set (never its value).
    write(
        &d.join("airlock-wrapper"),
        &format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> {log}\nif [ -n \"$AIRLOCK_PASSPHRASE\" ]; then echo 'AIRLOCK_PASSPHRASE set' >> {log}; fi\nexec {bin} \"$@\"\n",
            log = d.join("argv.log").display(),
            bin = bin().display()
        ),
    );
    std::fs::set_permissions(
        d.join("airlock-wrapper"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    // The passphrase from a vault.
    write(&d.join("vault.pw"), "vault-password\n");
    let vaulted = ansible(d, "ansible-vault")
        .args([
            "encrypt_string",
            "--vault-password-file",
            "vault.pw",
            secret,
            "--name",
            "operator_passphrase",
        ])
        .output()
        .unwrap();
    expect_code(&vaulted, 0);
    assert!(!stdout(&vaulted).contains(secret));
    write(&d.join("secrets.yml"), &stdout(&vaulted));
    let play = fleet.rollout(&format!(
        "        executable: {}\n        sign_receipt: {}\n        passphrase: \"{{{{ operator_passphrase }}}}\"\n",
        d.join("airlock-wrapper").display(),
        d.join("op.key").display()
    ));
    // The wrapper replaces the executable the play names first.
    let text = std::fs::read_to_string(d.join(&play)).unwrap();
    let text = text.replacen(&format!("        executable: {}\n", bin().display()), "", 1);
    let text = text.replace("  tasks:", "  vars_files:\n    - secrets.yml\n  tasks:");
    write(&d.join(&play), &text);
    let o = playbook(d, &play, &["--vault-password-file", "vault.pw", "-vvv"]);
    expect_play(&o, 0);
    assert_eq!(recap(&o)["t1"], (1, 1, 0));
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert!(
        !all.contains(secret),
        "the passphrase shows in ansible-playbook's output"
    );
    let argv = std::fs::read_to_string(d.join("argv.log")).unwrap();
    assert!(
        !argv.contains(secret),
        "the passphrase was on airlock's command line: {argv}"
    );
    assert!(argv.contains("--sign-receipt"), "{argv}");
    assert!(argv.contains("AIRLOCK_PASSPHRASE set"), "{argv}");
    // The receipt is signed by the operator key: plain minisign says so.
    let r = &results(d)["t1"];
    let receipt = r["receipt_file"].as_str().unwrap();
    let verified = tool("minisign")
        .args(["-Vm", receipt, "-p"])
        .arg(d.join("op.pub"))
        .output()
        .unwrap();
    assert!(verified.status.success(), "{}", stderr(&verified));
}

#[test]
fn rollback_and_status_modules_read_and_undo_a_rollout() {
    let fleet = Fleet::new(2, "SELECT true AS ready", |_, _| {});
    let d = fleet.d();
    let play = fleet.rollout("");
    expect_play(&playbook(d, &play, &[]), 0);
    let status = fleet.play(
        "status.yml",
        "",
        "airlock.postgresql.status",
        &format!(
            "        bundles: [\"{}\"]\n        verify_chain: true\n",
            d.join("release.tar.gz").display()
        ),
    );
    let status = status.as_str();
    // The status module's `trust` and `bundles` come from the play's shared options;
    // it takes no `bundle` option, so that line goes.
    let text = std::fs::read_to_string(d.join(status)).unwrap();
    let text = text.replacen(
        &format!("        bundle: {}\n", d.join("release.tar.gz").display()),
        "",
        1,
    );
    write(&d.join(status), &text);
    let o = playbook(d, status, &["--check"]);
    expect_play(&o, 0);
    let r = results(d);
    for host in ["t1", "t2"] {
        assert_eq!(r[host]["changed"], false);
        let facts = &r[host]["ansible_facts"]["airlock_status"];
        assert_eq!(facts["chain"]["ok"], true, "{facts}");
        let given = facts["bundles"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["given"] == true)
            .unwrap();
        assert_eq!(given["state"], "applied", "{given}");
        assert_eq!(given["target_match"], fleet.pattern.as_str());
    }
    let rollback = fleet.play(
        "rollback.yml",
        "  serial: 1\n  max_fail_percentage: 0\n",
        "airlock.postgresql.rollback",
        &format!(
            "        params:\n          code: A1\n        receipt_dir: \"{}\"\n",
            d.join("receipts").display()
        ),
    );
    let before: Vec<String> = fleet.tenants.iter().map(TestDb::dump).collect();
    let o = playbook(d, &rollback, &["--check", "--diff"]);
    expect_play(&o, 0);
    assert_eq!(recap(&o)["t1"], (1, 1, 0));
    assert_eq!(recap(&o)["t2"], (1, 1, 0));
    let after: Vec<String> = fleet.tenants.iter().map(TestDb::dump).collect();
    assert_eq!(before, after, "check mode rolled back");
    let o = playbook(d, &rollback, &[]);
    expect_play(&o, 0);
    assert_eq!(recap(&o)["t1"], (1, 1, 0));
    assert_eq!(results(d)["t2"]["outcome"], "rolled-back");
    for t in &fleet.tenants {
        assert!(!has_release(t), "{}", t.name);
    }
    let o = playbook(d, &rollback, &[]);
    expect_play(&o, 0);
    assert_eq!(recap(&o)["t1"], (1, 0, 0));
    assert_eq!(results(d)["t1"]["outcome"], "nothing-to-roll-back");
}

#[test]
fn the_module_docs_render_with_ansible_doc() {
    let t = tempdir();
    for module in ["apply", "rehearse", "rollback", "status"] {
        let o = ansible(t.path(), "ansible-doc")
            .arg(format!("airlock.postgresql.{module}"))
            .output()
            .unwrap();
        expect_code(&o, 0);
        let text = stdout(&o);
        assert!(
            text.contains(&format!("airlock.postgresql.{module}"))
                && text.contains("OPTIONS")
                && text.contains("EXAMPLES")
                && text.contains("RETURN VALUES")
                && text.contains("executable"),
            "{text}"
        );
        assert!(!stderr(&o).contains("ERROR"), "{}", stderr(&o));
    }
    let o = ansible(t.path(), "ansible-doc")
        .args(["-l", "airlock.postgresql"])
        .output()
        .unwrap();
    expect_code(&o, 0);
    assert_eq!(stdout(&o).lines().count(), 4, "{}", stdout(&o));
}

#[test]
fn the_collection_passes_ansible_test_sanity() {
    // ansible-test runs from the collection's own directory, with the HOME that holds
    // its primed virtual environments (scripts/ansible-venv).
    let collection = repo().join("ansible/ansible_collections/airlock/postgresql");
    let venv = venv();
    let o = Command::new(venv.join("bin/ansible-test"))
        .args(["sanity", "--python", "3.11"])
        .current_dir(&collection)
        .env("HOME", venv.join("ansible-test-home"))
        .env("LC_ALL", "C.UTF-8")
        .output()
        .expect("run ansible-test");
    let text = format!("{}{}", stdout(&o), stderr(&o));
    assert!(o.status.success(), "ansible-test sanity failed:\n{text}");
    for test in [
        "validate-modules",
        "ansible-doc",
        "compile",
        "import",
        "pep8",
        "pylint",
        "yamllint",
        "runtime-metadata",
        "shebang",
        "no-smart-quotes",
    ] {
        assert!(
            text.contains(&format!("Running sanity test \"{test}\"")),
            "{test} did not run:\n{text}"
        );
    }
    assert!(!text.contains("ERROR:"), "{text}");
}

/// The release day's shape over a fleet (issue 68, finding 2): a column added and
/// filled by a transactional tier, then an online unique index on it. Each tenant has
/// `shop.customers`; tenant 2 (`dup`) has two e-mails that differ only by case, so its
/// online step fails after the transactional tier committed.
fn release_day_fleet(dup: usize) -> Fleet {
    Fleet::with_tiers(
        3,
        "SELECT true AS ready",
        |i, db| {
            db.exec(
                "CREATE SCHEMA shop; CREATE TABLE shop.customers (id int PRIMARY KEY, email text); \
                 INSERT INTO shop.customers SELECT g, 'c' || g || '@x' FROM generate_series(1, 50) g;",
            );
            if i == dup {
                db.exec("INSERT INTO shop.customers VALUES (51, 'Ann@x'), (52, 'ann@x');");
            }
        },
        &[
            (
                "schema",
                "ALTER TABLE shop.customers ADD COLUMN email_n text;\nUPDATE shop.customers SET email_n = lower(email) WHERE email_n IS NULL;\n",
                false,
            ),
            (
                "index",
                "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS customers_email_n ON shop.customers (email_n);\n",
                false,
            ),
        ],
        "DROP INDEX IF EXISTS shop.customers_email_n;\nALTER TABLE shop.customers DROP COLUMN IF EXISTS email_n;\n",
        |t| t.replace("name = \"index\"\n", "name = \"index\"\nonline = true\n"),
    )
}

fn has_column(db: &TestDb) -> bool {
    db.scalar(
        "SELECT count(*)::text FROM information_schema.columns \
          WHERE table_schema = 'shop' AND table_name = 'customers' AND column_name = 'email_n'",
    ) == "1"
}

#[test]
fn a_failed_online_tier_reports_the_tenant_changed_and_how_to_go_on_or_back() {
    let fleet = release_day_fleet(1);
    let d = fleet.d();
    let play = fleet.rollout("        lock_timeout: 5s\n        gate_role: airlock_gate\n");
    let o = playbook(d, &play, &[]);
    assert_ne!(code(&o), 0, "a failed tenant must fail the run");
    let counts = recap(&o);
    assert_eq!(counts["t1"], (1, 1, 0), "{}", stdout(&o));
    // The failed tenant is counted changed: it is.
    assert_eq!(counts["t2"].2, 1, "{}", stdout(&o));
    let r = results(d);
    let failed = &r["t2"];
    assert_eq!(failed["changed"], true, "{failed:#}");
    assert_eq!(
        failed["changed_tiers"],
        serde_json::json!(["schema"]),
        "{failed:#}"
    );
    assert_eq!(
        failed["remaining_tiers"],
        serde_json::json!(["index"]),
        "{failed:#}"
    );
    assert_eq!(failed["state"], "partially-applied", "{failed:#}");
    assert_eq!(failed["online_steps"], serde_json::json!({}), "{failed:#}");
    // Never null: the database this run changed.
    assert_eq!(
        failed["database"],
        fleet.tenants[1].name.as_str(),
        "{failed:#}"
    );
    // From airlock's own error document: what this run committed, and its receipt.
    assert_eq!(
        failed["document"]["committed"]["tiers"],
        serde_json::json!(["schema"]),
        "{failed:#}"
    );
    let receipt = failed["receipt_file"].as_str().unwrap();
    assert!(std::path::Path::new(receipt).exists(), "{failed:#}");
    let msg = failed["msg"].as_str().unwrap();
    for needle in [
        "CHANGED",
        "committed tier(s) schema",
        "not applied: index",
        "run the task again",
        "airlock.postgresql.rollback",
    ] {
        assert!(msg.contains(needle), "{needle:?} not in {msg}");
    }
    assert!(!msg.contains("nothing changed"), "{msg}");
    // As the database and its ledger say.
    assert!(has_column(&fleet.tenants[1]));
    let o = run_json(
        d,
        "rm.pub",
        &fleet.tenants[1].conn(),
        &["status", "release.tar.gz"],
    );
    let status = json(&o);
    assert_eq!(
        status["bundles"][0]["state"], "partially-applied",
        "{status:#}"
    );
    // The untouched tenant after it is as it was.
    assert!(!has_column(&fleet.tenants[2]));

    // Roll the failed tenant back through the module: changed, the column gone.
    let back = fleet.play(
        "back.yml",
        "",
        "airlock.postgresql.rollback",
        "        params:\n          code: A1\n        gate_role: airlock_gate\n        lock_timeout: 5s\n",
    );
    let o = playbook(d, &back, &["--limit", "t2"]);
    expect_play(&o, 0);
    assert_eq!(recap(&o)["t2"], (1, 1, 0), "{}", stdout(&o));
    assert!(!has_column(&fleet.tenants[1]));
}

#[test]
fn check_mode_lists_what_plan_cannot_predict_and_the_rehearse_module_runs_it() {
    let fleet = release_day_fleet(1);
    let d = fleet.d();
    let before: Vec<String> = fleet.tenants.iter().map(TestDb::dump).collect();
    let play = fleet.rollout("");
    let o = playbook(d, &play, &["--check"]);
    expect_play(&o, 0);
    let r = results(d);
    for host in ["t1", "t2", "t3"] {
        let h = &r[host];
        assert_eq!(h["verdict"], "GO", "{h:#}");
        let unknown = h["not_predictable"].as_array().unwrap();
        assert_eq!(unknown.len(), 1, "{h:#}");
        assert!(
            unknown[0].as_str().unwrap().contains("customers_email_n")
                || unknown[0].as_str().unwrap().contains("shop.customers"),
            "{h:#}"
        );
        assert!(
            h["msg"]
                .as_str()
                .unwrap()
                .contains("1 statement(s) not predictable here"),
            "{h:#}"
        );
    }
    assert!(
        stderr(&o).contains("not predictable here") || stdout(&o).contains("not predictable here"),
        "no warning: {}{}",
        stdout(&o),
        stderr(&o)
    );

    // The rehearse module runs it on each tenant's clone: tenant 2's duplicates fail
    // there, the others pass; no database changed.
    let rehearse = fleet.play(
        "rehearse.yml",
        "",
        "airlock.postgresql.rehearse",
        "        params:\n          code: A1\n        gate_role: airlock_gate\n",
    );
    let o = playbook(d, &rehearse, &[]);
    assert_ne!(code(&o), 0, "{}", stdout(&o));
    let counts = recap(&o);
    assert_eq!(counts["t1"], (1, 0, 0), "{}", stdout(&o));
    assert_eq!(counts["t3"], (1, 0, 0), "{}", stdout(&o));
    assert_eq!(counts["t2"].2, 1, "{}", stdout(&o));
    let r = results(d);
    assert_eq!(r["t1"]["verdict"], "PASS", "{:#}", r["t1"]);
    assert_eq!(r["t2"]["verdict"], "FAIL", "{:#}", r["t2"]);
    assert!(
        r["t2"]["msg"]
            .as_str()
            .unwrap()
            .contains("the database itself is unchanged"),
        "{:#}",
        r["t2"]
    );
    let after: Vec<String> = fleet.tenants.iter().map(TestDb::dump).collect();
    assert_eq!(
        before, after,
        "check mode or a rehearsal changed a database"
    );
}

/// Issue 86, finding 2: in check mode, a tenant where code the database defines stops
/// plan's question (an operator `>(numeric, integer)` in `public` that the tier's CHECK
/// would call) fails its task CANNOT TELL (`kind: cannot-tell`, rc 8, what to do),
/// never GO; the tenant beside it is GO; nothing changes.
#[test]
fn check_mode_fails_a_tenant_plan_cannot_tell_about_never_go() {
    let fleet = Fleet::with_tiers(
        2,
        "SELECT true AS ready",
        |i, db| {
            db.exec(
                "CREATE SCHEMA shop; CREATE TABLE shop.customers (id int PRIMARY KEY, amount numeric); \
                 INSERT INTO shop.customers SELECT g, g FROM generate_series(1, 5) g;",
            );
            if i == 1 {
                db.exec(
                    "CREATE FUNCTION public.gt(numeric, integer) RETURNS boolean LANGUAGE sql IMMUTABLE \
                       AS 'SELECT $1 OPERATOR(pg_catalog.>) $2::numeric'; \
                     CREATE OPERATOR public.> (LEFTARG = numeric, RIGHTARG = integer, FUNCTION = public.gt);",
                );
            }
        },
        &[(
            "schema",
            "ALTER TABLE shop.customers ADD CONSTRAINT pos CHECK (amount > 0);\n",
            false,
        )],
        "ALTER TABLE shop.customers DROP CONSTRAINT IF EXISTS pos;\n",
        |t| t,
    );
    let d = fleet.d();
    let before: Vec<String> = fleet.tenants.iter().map(TestDb::dump).collect();
    let o = playbook(d, &fleet.rollout(""), &["--check"]);
    expect_play(&o, 2);
    assert_eq!(recap(&o)["t2"].2, 1, "{}", stdout(&o));
    let r = results(d);
    assert_eq!(r["t1"]["verdict"], "GO", "{:#}", r["t1"]);
    let t2 = &r["t2"];
    assert_eq!(
        (&t2["rc"], &t2["kind"]),
        (&8.into(), &"cannot-tell".into()),
        "{t2:#}"
    );
    let msg = t2["msg"].as_str().unwrap();
    assert!(
        msg.starts_with("CANNOT TELL: predicted-failures: ")
            && msg.contains("operator >(numeric,integer)")
            && msg.contains("airlock rehearse"),
        "{t2:#}"
    );
    let after: Vec<String> = fleet.tenants.iter().map(TestDb::dump).collect();
    assert_eq!(before, after, "check mode changed a database");
}

/// Issue 74, item 7: a receipt key on a token, named by a `pkcs11:` URI that holds the
/// PIN (`pin-value=`), is a secret of the task: `sign_receipt` is no_log, so the PIN
/// never shows in `-vvv` (the module's arguments, its invocation, its result), and the
/// task warns that the PIN is on airlock's command line (pin-source=file: keeps it
/// off). The receipt is still signed by the token's key.
#[test]
fn a_pin_in_the_sign_receipt_uri_never_shows_in_verbose_output() {
    let fleet = Fleet::new(1, "SELECT true AS ready", |_, _| {});
    let d = fleet.d();
    // A SoftHSM2 token of its own, with a PIN no other text of the run could contain.
    let pin = "73914682";
    std::fs::create_dir_all(d.join("hsm/store")).unwrap();
    let conf = d.join("hsm/softhsm2.conf");
    write(
        &conf,
        &format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            d.join("hsm/store").display()
        ),
    );
    let init = tool("softhsm2-util")
        .args(["--init-token", "--free", "--label", "ops", "--pin", pin])
        .args(["--so-pin", "5678"])
        .env("SOFTHSM2_CONF", &conf)
        .output()
        .unwrap();
    assert!(init.status.success(), "{}", stderr(&init));
    let uri = format!(
        "pkcs11:token=ops;object=receipts?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value={pin}"
    );
    let conf_s = conf.display().to_string();
    expect_code(
        &airlock_env(
            d,
            &["keygen", "--pkcs11", &uri, "--out", "op"],
            &[("SOFTHSM2_CONF", &conf_s)],
        ),
        0,
    );
    let play = fleet.rollout(&format!("        sign_receipt: \"{uri}\"\n"));
    let o = ansible(d, "ansible-playbook")
        .args(["-i", "inventory.ini", &play, "-vvv"])
        .env("SOFTHSM2_CONF", &conf)
        .output()
        .unwrap();
    expect_play(&o, 0);
    assert_eq!(recap(&o)["t1"], (1, 1, 0));
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert!(
        !all.contains(pin),
        "the PIN shows in ansible-playbook -vvv:\n{all}"
    );
    assert!(all.contains("pin-source=file:"), "no warning:\n{all}");
    // The tree callback's result holds no PIN either, and the receipt verifies with
    // plain minisign against the token's public key.
    let r = &results(d)["t1"];
    assert!(!r.to_string().contains(pin), "{r}");
    let receipt = r["receipt_file"].as_str().unwrap();
    let verified = tool("minisign")
        .args(["-Vm", receipt, "-p"])
        .arg(d.join("op.pub"))
        .output()
        .unwrap();
    assert!(verified.status.success(), "{}", stderr(&verified));
}

/// The rollout playbook of docs/fleets.md ("A canary first, then waves"), as written
/// there, with this fleet's files for its paths: the bundle, a trust store in which
/// the receipt key `op` is an operator key, the receipts directory, the param. The
/// inventory puts the first tenant in `canary`, the others in `tenants`; airlock is
/// found on PATH (the docs' task names no executable); the receipt key's passphrase
/// is the docs' `vault_operator_passphrase`, given with `-e`. Returns the extra
/// arguments every run of it takes.
fn docs_rollout(fleet: &Fleet) -> Vec<String> {
    let d = fleet.d();
    let secret = "docs-passphrase";
    let made = airlock_env(
        d,
        &["--json", "keygen", "--out", "op"],
        &[("AIRLOCK_PASSPHRASE", secret)],
    );
    expect_code(&made, 0);
    let op = json(&made)["key_id"].as_str().unwrap().to_string();
    let trust = trust_store(
        d,
        "trust",
        &["rm", "op"],
        &format!("[keys.{op}]\nrole = \"operator\"\n"),
    );
    let docs = std::fs::read_to_string(repo().join("docs/fleets.md")).unwrap();
    let start = "A canary first, then waves, stopping at the first failure:\n\n```yaml\n";
    let yaml = docs.split_once(start).expect("the docs' rollout").1;
    let yaml = yaml.split_once("```").unwrap().0;
    let mut play = yaml.to_string();
    for (from, to) in [
        (
            "/srv/releases/shop-2026.06.airlock.tar.gz".to_string(),
            d.join("release.tar.gz").display().to_string(),
        ),
        ("/etc/airlock/trust".into(), trust.display().to_string()),
        ("{ ticket: CHG-1234 }".into(), "{ code: A1 }".into()),
        (
            "/var/lib/airlock/receipts".into(),
            d.join("receipts").display().to_string(),
        ),
        (
            "/etc/airlock/operator.key".into(),
            d.join("op.key").display().to_string(),
        ),
    ] {
        assert!(play.contains(&from), "the docs' playbook has no {from}");
        play = play.replace(&from, &to);
    }
    write(&d.join("docs-rollout.yml"), &play);
    let mut ini = String::from("[canary]\n");
    for (i, t) in fleet.tenants.iter().enumerate() {
        if i == 1 {
            ini.push_str("\n[tenants]\n");
        }
        ini.push_str(&format!(
            "t{} db=\"host=/var/run/postgresql dbname={}\"\n",
            i + 1,
            t.name
        ));
    }
    ini.push_str(&format!(
        "\n[all:vars]\nansible_connection=local\nansible_python_interpreter={}\n",
        venv().join("bin/python").display()
    ));
    write(&d.join("inventory.ini"), &ini);
    vec!["-e".into(), format!("vault_operator_passphrase={secret}")]
}

/// `ansible-playbook` of the docs' rollout, airlock on PATH.
fn docs_playbook(d: &Path, extra: &[String], args: &[&str]) -> Output {
    let _ = std::fs::remove_dir_all(d.join("tree"));
    let path = format!(
        "{}:{}",
        bin().parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let o = ansible(d, "ansible-playbook")
        .env("PATH", path)
        .args(["-i", "inventory.ini", "docs-rollout.yml"])
        .args(extra)
        .args(args)
        .output()
        .expect("run ansible-playbook");
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert!(
        !all.contains("Traceback") && !all.contains("MODULE FAILURE"),
        "a module failed with a Python error:\n{all}"
    );
    o
}

/// Tenants with `shop.customers`; the tenants in `dup` (index from 0) hold two rows
/// with the same e-mail.
fn customers(dup: &'static [usize]) -> impl Fn(usize, &TestDb) {
    move |i, db| {
        db.exec(
            "CREATE SCHEMA shop; CREATE TABLE shop.customers (id int PRIMARY KEY, email text); \
             INSERT INTO shop.customers SELECT g, 'c' || g || '@x' FROM generate_series(1, 20) g;",
        );
        if dup.contains(&i) {
            db.exec("INSERT INTO shop.customers VALUES (51, 'ann@x'), (52, 'ann@x');");
        }
    }
}

/// Issue 75, part 4: `--check` with the docs' playbook (`max_fail_percentage: 0`)
/// previews every tenant past a predicted failure, even the canary's; the failure's
/// message says what to do (fix the data first), the run fails; and plan judges the
/// receipts the rollout signs (`sign_receipt`), never "receipts unsigned".
#[test]
fn the_docs_preview_covers_every_tenant_past_a_predicted_failure_and_says_what_to_do() {
    let fleet = Fleet::with_tiers(
        3,
        "SELECT true AS ready",
        customers(&[0]),
        &[(
            "unique",
            "CREATE UNIQUE INDEX customers_email_u ON shop.customers (email);\n",
            false,
        )],
        "DROP INDEX IF EXISTS shop.customers_email_u;\n",
        |t| t,
    );
    let d = fleet.d();
    let extra = docs_rollout(&fleet);
    let before: Vec<String> = fleet.tenants.iter().map(TestDb::dump).collect();
    let o = docs_playbook(d, &extra, &["--check", "--diff"]);
    assert_ne!(code(&o), 0, "a NO-GO tenant must fail the preview");
    let counts = recap(&o);
    assert_eq!(counts["t1"].2, 1, "{}", stdout(&o));
    for host in ["t2", "t3"] {
        assert_eq!(counts.get(host), Some(&(1, 1, 0)), "{host}: {}", stdout(&o));
    }
    let r = results(d);
    let failed = r["t1"]["msg"].as_str().unwrap();
    assert!(
        failed.contains("predicted-failures") && failed.contains("to do: fix the data first"),
        "{failed}"
    );
    assert!(
        stdout(&o).contains("to do: fix the data first"),
        "{}",
        stdout(&o)
    );
    for host in ["t2", "t3"] {
        assert_eq!(r[host]["verdict"], "GO", "{:#}", r[host]);
        let policy = r[host]["document"]["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == "receipt-policy")
            .unwrap_or_else(|| panic!("{:#}", r[host]))
            .clone();
        let evidence = policy["evidence"].as_str().unwrap();
        assert!(
            evidence.contains("receipts signed with operator key")
                && !evidence.contains("unsigned"),
            "{policy:#}"
        );
    }
    let after: Vec<String> = fleet.tenants.iter().map(TestDb::dump).collect();
    assert_eq!(before, after, "the preview changed a database");
}

/// Issue 75, part 4: a tenant on which two tiers committed before its online tier
/// failed counts `changed` in the recap of the docs' playbook (and failed), the run
/// stops there.
#[test]
fn a_tenant_changed_before_its_failure_counts_changed_in_the_docs_rollout_recap() {
    let fleet = Fleet::with_tiers(
        3,
        "SELECT true AS ready",
        customers(&[0]),
        &[
            (
                "schema",
                "ALTER TABLE shop.customers ADD COLUMN email_n text;\n",
                false,
            ),
            (
                "data",
                "UPDATE shop.customers SET email_n = lower(email) WHERE email_n IS NULL;\n",
                false,
            ),
            (
                "index",
                "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS customers_email_n ON shop.customers (email_n);\n",
                false,
            ),
        ],
        "DROP INDEX IF EXISTS shop.customers_email_n;\nALTER TABLE shop.customers DROP COLUMN IF EXISTS email_n;\n",
        |t| t.replace("name = \"index\"\n", "name = \"index\"\nonline = true\n"),
    );
    let d = fleet.d();
    let extra = docs_rollout(&fleet);
    let untouched: Vec<String> = fleet.tenants[1..].iter().map(TestDb::dump).collect();
    let o = docs_playbook(d, &extra, &[]);
    assert_ne!(code(&o), 0, "a failed tenant must fail the run");
    let counts = recap(&o);
    assert_eq!(counts["t1"], (1, 1, 1), "{}", stdout(&o));
    assert!(!counts.contains_key("t2"), "{}", stdout(&o));
    let msg = results(d)["t1"]["msg"].as_str().unwrap().to_string();
    for needle in [
        "CHANGED",
        "committed tier(s) schema, data",
        "not applied: index",
    ] {
        assert!(msg.contains(needle), "{needle:?} not in {msg}");
    }
    assert!(has_column(&fleet.tenants[0]));
    let now: Vec<String> = fleet.tenants[1..].iter().map(TestDb::dump).collect();
    assert_eq!(untouched, now, "a tenant after the failure was touched");
}
