//! The sections of the manual pages clap does not write: EXIT STATUS (DESIGN §6, from
//! [`Exit::meaning`]), ENVIRONMENT (every variable airlock reads), and EXAMPLES for
//! each command, in roff.

use airlock_base::exit::Exit;

/// Every variable airlock reads, and what for.
const ENVIRONMENT: &[(&str, &str)] = &[
    ("AIRLOCK_TRUST", "the trust store (a directory of *.pub files and an optional trust.toml, or one .pub file) when --trust is not given"),
    ("AIRLOCK_DB", "the connection (libpq key=value string or postgresql:// URI) when --db is not given"),
    ("PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE", "libpq's environment, used when neither --db nor AIRLOCK_DB is given (the Unix socket by default); without a database name the bundle's target database is used"),
    ("AIRLOCK_PASSPHRASE", "the passphrase of an encrypted secret key (pack, sign, keygen, --sign-receipt) when --passphrase-file is not given; otherwise airlock asks on the terminal"),
    ("AIRLOCK_STATE_DIR", "where this host remembers each target's ledger head and schema description (default $XDG_STATE_HOME/airlock, else ~/.local/state/airlock)"),
    ("AIRLOCK_AGENT_TIMEOUT", "how many seconds a request to ssh-agent (an ssh-agent: key) may wait to be taken, and then for its answer, before airlock stops naming the socket (default 30)"),
    ("SOURCE_DATE_EPOCH", "the time pack records in the manifest, for reproducible bundles"),
    ("TMPDIR", "where large bundle files are spilled while they are verified (apply, rehearse)"),
    ("COLUMNS", "the width of human output when stdout is not a terminal"),
    ("NO_COLOR", "no colour in human output (as --color never)"),
];

/// Examples per command (`airlock` for the top page), each a comment and a command.
fn examples(command: &str) -> &'static [(&'static str, &'static str)] {
    match command {
        "airlock" => &[
            ("The whole story on a throw-away database", "airlock demo"),
            ("Verify a bundle against a trust store", "airlock verify release.airlock.tar.gz --trust trust/"),
            ("The GO/NO-GO, then the apply", "airlock plan B --trust trust/ --db dbname=app\nairlock apply B --trust trust/ --db dbname=app"),
        ],
        "keygen" => &[("A release key, encrypted", "airlock keygen --out ~/.airlock/release")],
        "new" => &[("A bundle source to start from, then lint it", "airlock new release/ --database app\nairlock lint release/")],
        "lint" => &[("Check a source directory before packing", "airlock lint release/")],
        "import" => &[("A golang-migrate, dbmate, Flyway or Sqitch history as a new bundle source", "airlock import db/migrations --out release/ --database app")],
        "pack" => &[
            ("Lint, hash, sign and pack", "airlock pack release/ --key ~/.airlock/release.key --out release.airlock.tar.gz"),
            ("Carry the trust store's signed next version to every host (a revocation, a new key)", "airlock pack release/ --key ~/.airlock/release.key --trust-update trust/"),
        ],
        "sign" => &[("A second release manager co-signs", "airlock sign release.airlock.tar.gz --key ~/.airlock/second.key")],
        "verify" => &[
            ("Signatures, hashes and SQL rules", "airlock verify B --trust trust/"),
            ("As an auditor, at the time it was applied", "airlock verify B --trust trust/ --at 2026-06-03T10:00:00Z"),
        ],
        "inspect" => &[("What a bundle holds, without a trust store", "airlock inspect B")],
        "extract" => &[("Verified files into a new directory", "airlock extract B --trust trust/ --to /tmp/release")],
        "sql" => &[
            ("The SQL apply would send, tier by tier, from the verified bundle", "airlock sql B --trust trust/"),
            ("The rollback's SQL", "airlock sql B --trust trust/ --rollback"),
        ],
        "runbook" => &[("Read the engineer's runbook", "airlock runbook B --trust trust/ engineer")],
        "dossier" => &[
            ("The page an approver reads before signing (no database needed)", "airlock dossier B --trust trust/ --param ratified_apr=APR-1 --out dossier.html"),
            ("Every fact: the database now, a saved rehearsal, the approvals so far", "airlock rehearse B --trust trust/ --db dbname=app --param ratified_apr=APR-1 --json > rehearsal.json\nairlock dossier B --trust trust/ --db dbname=app --param ratified_apr=APR-1 --rehearsal rehearsal.json --approval approvals/ --out dossier.html"),
            ("After the fact, for the archive", "airlock dossier B --trust trust/ --param ratified_apr=APR-1 --receipt receipts/apply.receipt.json --out dossier.html"),
        ],
        "approve" => &[("Approve a release with your approver key, consenting to its params", "airlock approve B --trust trust/ --key ~/.airlock/alice.key --param ratified_apr=APR-1 --out alice.approval")],
        "gate" => &[
            ("Ask the gate once", "airlock gate B --trust trust/ --db dbname=app --param ratified_apr=APR-1"),
            ("Wait for READY, polling every 5 minutes", "airlock gate B --trust trust/ --wait --poll-interval 5m"),
        ],
        "plan" => &[("Every check apply makes, and the lock plan", "airlock plan B --trust trust/ --db dbname=app --param ratified_apr=APR-1")],
        "apply" => &[
            ("Apply the ungated tiers now", "airlock apply B --trust trust/ --db dbname=app --through structure"),
            ("Apply the rest the moment the gate opens", "airlock apply B --trust trust/ --db dbname=app --param ratified_apr=APR-1 --wait --yes"),
            ("With the approvals a bundle's [ratification] asks for", "airlock apply B --trust trust/ --db dbname=app --param ratified_apr=APR-1 --approval approvals/"),
        ],
        "rollback" => &[("Undo an applied bundle", "airlock rollback B --trust trust/ --db dbname=app")],
        "reissue" => &[("After a run was killed once it committed: its receipt, from the ledger", "airlock status --db dbname=app   # names the rows with no delivered receipt\nairlock reissue B --trust trust/ --db dbname=app --sign-receipt op.key")],
        "rehearse" => &[
            ("The whole cycle on a clone", "airlock rehearse B --trust trust/ --db dbname=app --param ratified_apr=APR-1"),
            ("Before ratification: past the BLOCKED gate, on the clone only (the default; --require-ready stops at it)", "airlock rehearse B --trust trust/ --db dbname=app --param ratified_apr=APR-1"),
            ("A live target: clone from a pg_dump snapshot, nobody disconnected", "airlock rehearse B --trust trust/ --db dbname=app --param ratified_apr=APR-1 --clone-strategy dump"),
        ],
        "setup" => &[("Once, as a superuser: the deploy login every later command uses", "airlock setup --db \"dbname=app user=postgres\" --login deployer\nairlock apply B --trust trust/ --db \"dbname=app user=deployer\"")],
        "status" => &[("The ledger, with the hash chain checked", "airlock status --db dbname=app --verify-chain")],
        "fingerprint" => &[("Schema and data fingerprints, saved", "airlock --json fingerprint --db dbname=app --data > before.json")],
        "audit" => &[
            ("Re-verify an archive against the ledger", "airlock audit archive/*.airlock.tar.gz --trust trust/ --receipt receipts/*.json --db dbname=app"),
            ("Against a ledger export when the database is gone", "airlock status --db app --json > app-ledger.json   # saved with the archive\nairlock audit archive/ --trust trust/ --receipt receipts/ --ledger app-ledger.json"),
        ],
        "trust" => &[
            ("The key id of a public key", "airlock trust id carol.pub"),
            ("Add an approver key, then list the store", "airlock trust add trust/ carol.pub --role approver --name \"Carol Jones\"\nairlock trust list trust/"),
            ("Revoke a key for good", "airlock trust revoke trust/ 9F00AA11BB22CC33 --reason \"laptop stolen\""),
            ("Sign the next version with each root key, then install it on a host", "airlock trust sign next/ --key ~/.airlock/root1.key\nairlock trust update next/ --trust /etc/airlock/trust"),
        ],
        "demo" => &[("The demo, keeping its database", "airlock demo --keep")],
        "completions" => &[("Bash completion", "airlock completions bash > /etc/bash_completion.d/airlock")],
        "man" => &[("Every page into a directory", "airlock man --out /usr/local/share/man/man1")],
        _ => &[],
    }
}

/// Text for roff: a line starting with `.` or `'` would be a request; backslashes
/// and hyphens are escaped.
fn roff(text: &str) -> String {
    text.lines()
        .map(|l| {
            let l = l.replace('\\', "\\e").replace('-', "\\-");
            if l.starts_with('.') || l.starts_with('\'') {
                format!("\\&{l}")
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// EXIT STATUS, ENVIRONMENT and EXAMPLES for the page of `command`.
pub fn sections(command: &str) -> String {
    let mut s = String::from(".SH \"EXIT STATUS\"\n");
    for e in Exit::ALL {
        s.push_str(&format!(
            ".TP\n\\fB{}\\fR\n{}\n",
            e.code(),
            roff(e.meaning())
        ));
    }
    s.push_str(".SH ENVIRONMENT\n");
    for (name, what) in ENVIRONMENT {
        s.push_str(&format!(".TP\n\\fB{name}\\fR\n{}\n", roff(what)));
    }
    let ex = examples(command);
    if !ex.is_empty() {
        s.push_str(".SH EXAMPLES\n");
        for (what, cmd) in ex {
            s.push_str(&format!(
                ".PP\n{}:\n.PP\n.nf\n.RS 4\n{}\n.RE\n.fi\n",
                roff(what),
                roff(cmd)
            ));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_exit_code_every_variable_and_examples_are_on_the_page() {
        let s = sections("apply");
        for e in Exit::ALL {
            assert!(s.contains(&format!("\\fB{}\\fR", e.code())), "{s}");
        }
        assert!(s.contains("\\fBAIRLOCK_TRUST\\fR") && s.contains("\\fBAIRLOCK_DB\\fR"));
        assert!(
            s.contains(".SH EXAMPLES") && s.contains("\\-\\-through structure"),
            "{s}"
        );
        assert!(roff(".x\n'y").starts_with("\\&.x\n\\&'y"));
    }
}
