//! `airlock apply` and `airlock rollback`.

use crate::cli::{ApplyArgs, RollbackArgs};
use crate::commands::common::{write_atomic, NewFileMode};
use crate::commands::deploy::db_common::{prepare, prepare_streaming};
use crate::commands::deploy::receipt_policy::{check_receipt_policy, receipt_key};
use crate::commands::signing_key::SigningKey;
use crate::db::apply::{self, Options, PlanReport, Receipt};
use crate::error::{Error, Result};
use crate::report::{short, Outcome, Report};
use airlock_keys::KeySpec;
use serde::Serialize;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

#[derive(Serialize, schemars::JsonSchema)]
pub struct ReceiptOutcome {
    #[serde(flatten)]
    pub receipt: Receipt,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receipt_file: Option<PathBuf>,
    /// Set when the receipt could not be written where it should go and was written to
    /// the fallback (`receipt_file`, in airlock's state directory) instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receipt_warning: Option<String>,
    /// Set when the change was committed but no receipt file was written: none could
    /// be written at all (this document is then the only copy of the receipt), or the
    /// `--sign-receipt` key (a token, an agent) failed to sign it, and then none is
    /// written, signed or unsigned (`airlock reissue … --sign-receipt KEY` writes it
    /// later). The exit code stays 0: the change is committed, and the ledger records
    /// it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receipt_error: Option<String>,
    /// `apply --wait`: the poll history before the gate opened.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait: Option<crate::db::wait::WaitReport>,
    /// How each schema fingerprint of the run was taken (two a transaction: before
    /// and after its tiers or rollback files): where a deploy's time went. Not part
    /// of the receipt file.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub schema_descriptions: Vec<crate::db::described::DescriptionStep>,
    /// Whether the ledger records this receipt's delivery (a `receipt` row, written
    /// after the receipt file): an audit tells a hidden receipt from an interrupted
    /// run by it. Not part of the receipt file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery: Option<crate::db::delivery::DeliveryRecord>,
}

impl Report for ReceiptOutcome {
    fn human(&self) -> String {
        let r = &self.receipt;
        let mut s = headline(r);
        checks_shown(r, &mut s);
        if !r.ledger.is_empty() {
            s.push_str(&format!(
                "\n\nschema fingerprint {} -> {}; ledger row(s) {}",
                short(&r.fingerprint_before),
                short(&r.fingerprint_after),
                r.ledger
                    .iter()
                    .map(|l| format!("#{} {}", l.seq, short(&l.row_hash)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        // What airlock did about an earlier run's leftovers (a build the server
        // finished, an INVALID index dropped): the receipt keeps it, the operator sees it.
        for step in &r.online_steps {
            for note in &step.notes {
                s.push_str(&format!(
                    "
note: tier {:?} step {}/{} ({}:{}): {note}",
                    step.tier, step.step, step.of, step.file, step.line
                ));
            }
        }
        if r.event == "apply" && !r.remaining_tiers.is_empty() {
            s.push_str(&format!(
                "\nnot yet applied: {} (run apply again to continue)",
                r.remaining_tiers.join(", ")
            ));
        }
        self.receipt_lines(&mut s);
        s
    }
}

impl ReceiptOutcome {
    /// Where the receipt went, and what its delivery or saving said.
    fn receipt_lines(&self, s: &mut String) {
        let r = &self.receipt;
        if let Some(f) = &self.receipt_file {
            s.push_str(&format!("\nreceipt: {}", f.display()));
        }
        if let Some(w) = &self.receipt_warning {
            s.push_str(&format!("\nWARNING: {w}"));
        }
        match &self.delivery {
            Some(crate::db::delivery::DeliveryRecord {
                ledger_seq: Some(seq),
                ..
            }) => s.push_str(&format!(
                "\nreceipt delivered: ledger row #{seq} records it"
            )),
            Some(crate::db::delivery::DeliveryRecord {
                warning: Some(w), ..
            }) => s.push_str(&format!("\nWARNING: {w}")),
            _ => {}
        }
        if let Some(e) = &self.receipt_error {
            s.push_str(&format!(
                "\n\nWARNING: the change above IS committed (ledger seq {}), but {e}.",
                r.ledger.last().map(|l| l.seq).unwrap_or(0)
            ));
        }
    }
}

/// The first line (what happened, to which bundle, on which database) and, for a
/// fleet, which pattern the database matched.
fn headline(r: &Receipt) -> String {
    let mut s = match r.outcome.as_str() {
        "nothing-to-roll-back" => format!(
            "nothing to roll back: {} {} (bundle {}) is not applied on {}",
            r.bundle_name,
            r.bundle_version,
            short(&r.bundle_id),
            r.database
        ),
        "rolled-back" => format!(
            "{} {} {} (bundle {}) on {}: tiers {}",
            crate::style::verdict("ROLLED BACK"),
            r.bundle_name,
            r.bundle_version,
            short(&r.bundle_id),
            r.database,
            r.tiers.join(", ")
        ),
        _ => format!(
            "{} {} {} (bundle {}) on {}: tiers {}",
            crate::style::verdict("APPLIED"),
            r.bundle_name,
            r.bundle_version,
            short(&r.bundle_id),
            r.database,
            r.tiers.join(", ")
        ),
    };
    if let Some(t) = &r.target_database {
        s.push_str(&format!(
            "\nfleet: {}; {} matches {:?}",
            t.describe(),
            r.database,
            t.matching(&r.database).unwrap_or_default()
        ));
    }
    s
}

/// The gates' and probes' tables the run asked.
fn checks_shown(r: &Receipt, s: &mut String) {
    if let Some(g) = &r.gates {
        if !g.gates.is_empty() {
            s.push_str(&format!(
                "\n\ngates:\n{}",
                crate::commands::deploy::gate::gate_table(g)
            ));
        }
    }
    let probes = [
        ("preflight", &r.preflight),
        ("verify", &r.verify),
        ("rollback probe", &r.rollback_probe),
    ];
    for (what, p) in probes {
        if let Some(p) = p {
            s.push_str(&format!(
                "\n\n{what} {}:\n{}",
                p.file,
                crate::commands::deploy::gate::probe_table(p)
            ));
        }
    }
}

/// On a terminal, show the plan and ask for the database name; never prompt otherwise.
type Confirm = Box<dyn Fn(&PlanReport) -> bool>;

fn confirm_on_tty(yes: bool, verb: &'static str) -> Option<Confirm> {
    if yes || !std::io::stdin().is_terminal() {
        return None;
    }
    Some(Box::new(move |p: &PlanReport| {
        let mut e = std::io::stderr();
        let mut text = format!(
            "About to {verb} {} {} (bundle {}) on database {}.",
            p.bundle_name,
            p.bundle_version,
            short(&p.bundle_id),
            p.database
        );
        if !p.already_applied.is_empty() {
            text.push_str(&format!(
                "\n  applied so far: {}",
                p.already_applied.join(", ")
            ));
        }
        for t in &p.tiers {
            text.push_str(&format!(
                "\n  tier {} {} ({} file(s){})",
                t.index,
                t.name,
                t.files.len(),
                if t.gates.is_empty() {
                    String::new()
                } else {
                    format!(", gates {}", t.gates.join(","))
                }
            ));
        }
        if let Some(pr) = &p.predictions {
            for d in &pr.destroys {
                text.push_str(&format!(
                    "\n  destroys {}{}",
                    d.object,
                    match d.rows {
                        Some(n) =>
                            format!(" ({n} row(s){})", if d.exact { "" } else { ", estimated" }),
                        None => String::new(),
                    }
                ));
            }
            for f in pr
                .predictions
                .iter()
                .filter(|x| x.outcome == crate::db::predict::Outcome::Fails)
            {
                text.push_str(&format!("\n  FAILS at {}:{}: {}", f.file, f.line, f.reason));
            }
        }
        let _ = writeln!(e, "{}", crate::report::for_stderr(&text));
        // Wrapped at spaces: the name to type is never split by the terminal.
        let prompt = format!("Type the database name ({}) to go on: ", p.database);
        let _ = write!(e, "{}", crate::report::for_stderr(&prompt));
        let _ = e.flush();
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
        line.trim() == p.database
    }))
}

/// Where a receipt goes: the file `--receipt` names, or a new file in a receipts
/// directory (`--receipt-dir`, default `./receipts`).
#[derive(Clone, Debug)]
pub enum ReceiptDest {
    File(PathBuf),
    Dir(PathBuf),
}

impl ReceiptDest {
    fn from_args(file: Option<&std::path::Path>, dir: &std::path::Path) -> ReceiptDest {
        match file {
            Some(f) => ReceiptDest::File(f.to_path_buf()),
            None => ReceiptDest::Dir(dir.to_path_buf()),
        }
    }
}

/// A file name part made of `[A-Za-z0-9._-]` only.
fn name_part(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.is_empty() {
        "unknown".into()
    } else {
        cleaned
    }
}

/// `NAME-VERSION.DATABASE@SYSTEMID.EVENT-SEQ.receipt.json`: the target (database and
/// the server's system identifier) is in the name, so receipts of the same release
/// on staging and production, or on two tenants, never share a name.
pub fn default_receipt_name(r: &Receipt) -> String {
    let seq = r.ledger.last().map(|l| l.seq).unwrap_or(0);
    format!(
        "{}-{}.{}@{}.{}-{seq}",
        name_part(&r.bundle_name),
        name_part(&r.bundle_version),
        name_part(&r.database),
        name_part(&r.system_identifier),
        r.event
    )
}

fn sig_path_of(path: &std::path::Path) -> PathBuf {
    let mut sig = path.as_os_str().to_owned();
    sig.push(".minisig");
    PathBuf::from(sig)
}

fn taken(p: &std::path::Path) -> bool {
    p.symlink_metadata().is_ok()
}

/// The new file in `dir` for this receipt: the default name, or with `.2`, `.3`… when
/// that is taken (a database recreated under the same name restarts its ledger).
fn free_name_in(dir: &std::path::Path, r: &Receipt, signing: bool) -> PathBuf {
    let stem = default_receipt_name(r);
    let mut n = 1;
    loop {
        let name = if n == 1 {
            format!("{stem}.receipt.json")
        } else {
            format!("{stem}.{n}.receipt.json")
        };
        let p = dir.join(name);
        let sig_taken = signing && taken(&sig_path_of(&p));
        if !taken(&p) && !sig_taken {
            return p;
        }
        n += 1;
    }
}

/// Why a receipt was not saved.
enum NotSaved {
    /// The key (a token, an agent) could not sign it: no file was written, for a
    /// receipt a key was asked to sign is never written without its signature.
    Unsigned(crate::minisign::SignerError),
    /// It could not be written there (nothing of it is left there).
    Unwritable(Box<Error>),
}

/// Sign the receipt first (with a key), then write it atomically and, with a key,
/// RECEIPT.minisig over its exact bytes: a receipt a key was asked to sign is never
/// left without its signature. Where it went, and the SHA-256 of those bytes.
fn save_receipt(
    r: &Receipt,
    dest: &ReceiptDest,
    key: Option<&SigningKey>,
) -> std::result::Result<(PathBuf, String), NotSaved> {
    let seq = r.ledger.last().map(|l| l.seq).unwrap_or(0);
    let mut text = serde_json::to_vec_pretty(r)
        .map_err(|e| NotSaved::Unwritable(Box::new(Error::io("receipt", e.into()))))?;
    text.push(b'\n');
    let sig = match key {
        Some(k) => {
            let tc = format!(
                "timestamp:{}\tairlock-receipt\tbundle_id:{}\tevent:{}\tledger_seq:{seq}",
                chrono::Utc::now().timestamp(),
                r.bundle_id,
                r.event
            );
            Some(crate::minisign::sign_with(k, &text, &tc).map_err(NotSaved::Unsigned)?)
        }
        None => None,
    };
    let path = match dest {
        ReceiptDest::File(p) => p.clone(),
        ReceiptDest::Dir(d) => {
            std::fs::create_dir_all(d).map_err(|e| {
                NotSaved::Unwritable(Box::new(Error::io(
                    format!("cannot create {}", d.display()),
                    e,
                )))
            })?;
            free_name_in(d, r, key.is_some())
        }
    };
    write_atomic(&path, &text, NewFileMode::Public, false)
        .map_err(|e| NotSaved::Unwritable(Box::new(e)))?;
    if let Some(sig) = sig {
        let written = write_atomic(
            &sig_path_of(&path),
            sig.to_file_text().as_bytes(),
            NewFileMode::Public,
            false,
        );
        if let Err(e) = written {
            // No receipt without the signature asked for.
            let _ = std::fs::remove_file(&path);
            return Err(NotSaved::Unwritable(Box::new(e)));
        }
    }
    Ok((
        path,
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&text)),
    ))
}

/// Before anything changes: an explicit receipt path (and its signature) must not
/// exist; the directory it goes to must exist and take a new file, or, for a receipts
/// directory not there yet, the nearest directory above it that is there must (it is
/// created only when a receipt is written into it: a refused run leaves nothing
/// behind). After the commit it is too late to find out.
pub(super) fn check_receipt_target(dest: &ReceiptDest, signing: bool) -> Result<()> {
    let dir = match dest {
        ReceiptDest::File(p) => {
            let mut paths = vec![p.to_path_buf()];
            if signing {
                paths.push(sig_path_of(p));
            }
            for t in paths {
                if taken(&t) {
                    return Err(Error::usage(
                        format!(
                            "receipt {} already exists; nothing was changed",
                            t.display()
                        ),
                        Some(
                            "receipts are never overwritten: give another --receipt path, or leave it out to use the receipts directory".into(),
                        ),
                    ));
                }
            }
            match p.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => PathBuf::from("."),
            }
        }
        ReceiptDest::Dir(d) => nearest_dir(d)?,
    };
    tempfile::Builder::new()
        .prefix(".airlock-tmp-")
        .tempfile_in(&dir)
        .map(drop)
        .map_err(|e| {
            Error::io(
                format!(
                    "cannot write the receipt in {}; nothing was changed",
                    dir.display()
                ),
                e,
            )
        })
}

/// The receipts directory `d` when it is there, else the nearest directory above it
/// that is (where `d` would be created); refused when what is there is not a
/// directory.
fn nearest_dir(d: &std::path::Path) -> Result<PathBuf> {
    let refused = |e: std::io::Error| {
        Error::io(
            format!(
                "cannot create the receipts directory {}; nothing was changed",
                d.display()
            ),
            e,
        )
    };
    let mut at = d;
    loop {
        match std::fs::metadata(at) {
            Ok(m) if m.is_dir() => return Ok(at.to_path_buf()),
            Ok(_) => {
                return Err(refused(std::io::Error::new(
                    std::io::ErrorKind::NotADirectory,
                    format!("{} is not a directory", at.display()),
                )))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(refused(e)),
        }
        at = match at.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => return Ok(PathBuf::from(".")),
        };
    }
}

/// Where a receipt goes when its destination failed after the commit: this host's
/// airlock state directory.
fn fallback_dir() -> PathBuf {
    crate::db::remembered::state_dir().join("receipts")
}

/// Saves a run's receipt after its commit ([`crate::db::delivery::Deliver`]), and
/// keeps where it went for the outcome. The change is committed whatever happens here,
/// so nothing here turns it into a failure: a receipt that cannot go where it should
/// goes to the state directory, and the outcome says so (exit 0 either way).
pub(super) struct Saver<'k> {
    dest: ReceiptDest,
    key: Option<&'k SigningKey>,
    /// The command that writes a signed receipt later (`airlock reissue … --sign-receipt
    /// KEY`), for a key that fails to sign after the commit.
    reissue: String,
    saved: std::cell::RefCell<Vec<Saved>>,
    /// Why the key last failed to sign a receipt, for a command that fails on it.
    sign_failed: std::cell::RefCell<Option<crate::minisign::SignerError>>,
}

/// Where the last receipt went ([`ReceiptOutcome`]'s fields).
#[derive(Default)]
struct Saved {
    file: Option<PathBuf>,
    warning: Option<String>,
    error: Option<String>,
}

impl<'k> Saver<'k> {
    /// `bundle`, `trust` and `spec` as the run was given them: for the reissue
    /// command a warning names.
    pub(super) fn new(
        dest: ReceiptDest,
        key: Option<&'k SigningKey>,
        bundle: &std::path::Path,
        trust: &std::path::Path,
        spec: Option<&KeySpec>,
    ) -> Saver<'k> {
        let word = |p: &std::path::Path| airlock_keys::shell_word(&p.display().to_string());
        Saver {
            dest,
            key,
            reissue: format!(
                "airlock reissue {} --trust {} --sign-receipt {}",
                word(bundle),
                word(trust),
                spec.map_or("KEY".into(), KeySpec::runnable)
            ),
            saved: Default::default(),
            sign_failed: Default::default(),
        }
    }

    /// Why the key failed to sign the last receipt it was given, if it did.
    pub(super) fn sign_failure(&self) -> Option<crate::minisign::SignerError> {
        self.sign_failed.borrow_mut().take()
    }

    /// What a receipt whose key failed to sign leaves, in words.
    fn unsigned(&self, why: crate::minisign::SignerError) -> String {
        let there = match &self.dest {
            ReceiptDest::File(f) => f.display().to_string(),
            ReceiptDest::Dir(d) => format!("{}/", d.display()),
        };
        let text = format!(
            "its receipt was not signed: cannot sign: {why}. No receipt file was written, signed or unsigned (a signed one was asked for): none in {there}, none in {}/. The ledger keeps the record (airlock status); once the key signs again, `{}` writes the signed receipt (with this run's database options)",
            fallback_dir().display(),
            self.reissue
        );
        *self.sign_failed.borrow_mut() = Some(why);
        text
    }

    /// The outcome of `receipt`, the last this saver delivered (or of one it did not
    /// deliver: its run committed nothing).
    pub(super) fn outcome(&self, receipt: Receipt) -> ReceiptOutcome {
        let saved = self.saved.borrow_mut().pop().unwrap_or_default();
        ReceiptOutcome {
            receipt_file: saved.file,
            receipt_warning: saved.warning,
            receipt_error: saved.error,
            wait: None,
            schema_descriptions: receipt.descriptions.clone(),
            delivery: receipt.delivery.clone(),
            receipt,
        }
    }
}

impl Saver<'_> {
    /// The key's signature over the receipt's ledger rows, for the delivery row: what
    /// makes them airlock's to an auditor ([`crate::db::ledger::signed_rows`]). A key
    /// that signed the receipt and then fails here leaves the rows unsigned, said.
    fn sign_rows(&self, receipt: &Receipt, saved: &mut Saved) -> Option<String> {
        use crate::db::ledger::signed_rows;
        let key = self.key?;
        let rows: Vec<_> = receipt.ledger.iter().collect();
        let tc = signed_rows::trusted_comment(&rows, chrono::Utc::now().timestamp())?;
        let doc = signed_rows::document(&receipt.database, rows.iter().copied());
        match crate::minisign::sign_with(key, &doc, &tc) {
            Ok(sig) => Some(sig.to_file_text()),
            Err(why) => {
                let said = format!(
                    "the receipt is signed, but its ledger rows are not: cannot sign: {why}. An audit of the database alone takes them for rows anyone could have written; the signed receipt still vouches for them"
                );
                saved.warning = Some(match saved.warning.take() {
                    Some(w) => format!("{w}; {said}"),
                    None => said,
                });
                None
            }
        }
    }
}

impl crate::db::delivery::Deliver for Saver<'_> {
    fn deliver(&self, receipt: &Receipt) -> Option<crate::db::delivery::Delivered> {
        let mut saved = Saved::default();
        let sha = match save_receipt(receipt, &self.dest, self.key) {
            Ok((f, sha)) => {
                saved.file = Some(f);
                Some(sha)
            }
            // The key fails wherever the file would go: no fallback, no file.
            Err(NotSaved::Unsigned(why)) => {
                saved.error = Some(self.unsigned(why));
                None
            }
            Err(NotSaved::Unwritable(first)) => {
                let fallback = fallback_dir();
                match save_receipt(receipt, &ReceiptDest::Dir(fallback.clone()), self.key) {
                    Ok((f, sha)) => {
                        saved.warning = Some(format!(
                            "the receipt could not be written where it should go ({first}); it was written to {} instead",
                            f.display()
                        ));
                        saved.file = Some(f);
                        Some(sha)
                    }
                    Err(NotSaved::Unsigned(why)) => {
                        saved.error = Some(self.unsigned(why));
                        None
                    }
                    Err(NotSaved::Unwritable(second)) => {
                        saved.error = Some(format!(
                            "its receipt could not be written: {first}; and in {}: {second}. The ledger keeps the record (airlock status), and this output holds the receipt (--json gives it whole)",
                            fallback.display()
                        ));
                        None
                    }
                }
            }
        };
        let delivered = sha.map(|sha256| crate::db::delivery::Delivered {
            sha256,
            rows_signature: self.sign_rows(receipt, &mut saved),
        });
        self.saved.borrow_mut().push(saved);
        delivered
    }
}

pub fn apply(args: ApplyArgs) -> Result<Outcome> {
    let (vb, conn, params) = prepare_streaming(&args.bundle, &args.trust, &args.db, &args.params)?;
    let result = apply_verified(&args, &vb, conn, params);
    // A bundle still streaming when the run stopped (a refusal, a SQL error): the rest
    // is read, and a bundle that is not what was signed is reported as such first, as
    // if it had been verified whole before the run.
    match (result, vb.complete()) {
        (Err(e @ crate::error::Error::Db(crate::db::DbError::Unverified(_))), _) => Err(e),
        (_, Err(v)) => Err(crate::db::DbError::Unverified(Box::new(v)).into()),
        (result, _) => result,
    }
}

fn apply_verified(
    args: &ApplyArgs,
    vb: &crate::verified::VerifiedBundle,
    conn: crate::db::conn::ConnSpec,
    params: std::collections::BTreeMap<String, String>,
) -> Result<Outcome> {
    // The argument checks first: nothing below may be asked for (a passphrase) by a
    // run these refuse.
    if args.wait.wait && !args.deploy.yes && std::io::stdin().is_terminal() {
        return Err(Error::usage(
            "--wait on a terminal needs --yes: the run goes on unattended when the gate opens, and must not stop at a question then; nothing was changed",
            Some("confirm in advance: airlock apply BUNDLE … --wait --yes (check first with airlock plan)".into()),
        ));
    }
    let dest = ReceiptDest::from_args(args.deploy.receipt.as_deref(), &args.deploy.receipt_dir);
    check_receipt_target(&dest, args.deploy.sign_receipt.is_some())?;
    if let Some(key) = args.deploy.sign_receipt.as_ref() {
        // Opening an encrypted key costs seconds (scrypt) and a passphrase: a run the
        // ledger refuses (every tier already applied…) is refused before it, read-only;
        // the run's own check under the lock is made all the same.
        if crate::commands::signing_key::secret_key_is_encrypted(key)? {
            crate::db::precheck::ledger_allows(vb, &conn, args.through.as_deref())?;
        }
    }
    let key = receipt_key(args.deploy.sign_receipt.as_ref(), &args.deploy.pass)?;
    let store = check_receipt_policy(&args.trust, key.as_ref(), args.deploy.sign_receipt.as_ref())?;
    let vouch = crate::commands::deploy::signed_rows::Vouched::required_by(&store);
    let approvals = crate::commands::deploy::db_common::approvals(&args.approvals, &args.trust)?;
    let confirm = confirm_on_tty(args.deploy.yes, "apply");
    let progress = crate::progress::Deploy::new();
    let saver = Saver::new(
        dest,
        key.as_ref(),
        &args.bundle,
        &args.trust.trust,
        args.deploy.sign_receipt.as_ref(),
    );
    let o = Options {
        conn: &conn,
        expected_db: vb.manifest().target.database.clone(),
        params,
        through: args.through.clone(),
        lock_timeout: args.deploy.lock_timeout.clone(),
        lock_retries: args.deploy.lock_retries,
        statement_timeout: args.db.statement_timeout.clone(),
        allow_drift: args.allow_drift,
        resume: args.resume,
        gate_role: args.gate.gate_role.clone(),
        remember: true,
        approvals: Some(&approvals),
        skip_gates: false,
        confirm: confirm.as_deref(),
        observer: Some(&progress),
        deliver: Some(&saver),
        vouch: vouch
            .as_ref()
            .map(|v| v as &dyn crate::db::ledger::signed_rows::Vouch),
    };
    let mut waited = None;
    if args.wait.wait {
        refuse_a_hopeless_wait(vb, &o)?;
        let (report, history) = crate::commands::deploy::gate::wait_for_ready(&args.wait, || {
            crate::db::wait::poll_apply_gates(vb, &o)
        })?;
        if history.ended != crate::db::wait::WaitEnd::Ready {
            return Ok(Box::new(crate::commands::deploy::gate::GateOutcome {
                bundle_id: vb.id().into(),
                database: o.shown_db(),
                report,
                wait: Some(history),
            }));
        }
        waited = Some(history);
    }
    // READY (or no --wait): exactly a plain apply, every check again under the lock.
    let receipt = match apply::apply(vb, &o) {
        Ok(r) => r,
        // Part of the run committed before it stopped: its receipt is written all the
        // same (outcome `partial`), and the error says where.
        Err(crate::db::DbError::Partial { error, receipt, .. }) => {
            drop(progress);
            let kept = saver.outcome(*receipt);
            let saved = kept.receipt_file.as_ref().map(|f| f.display().to_string());
            return Err(crate::db::DbError::Partial {
                error,
                receipt: Box::new(kept.receipt),
                saved,
            }
            .into());
        }
        Err(e) => return Err(e.into()),
    };
    drop(progress);
    let mut outcome = saver.outcome(receipt);
    outcome.wait = waited;
    Ok(Box::new(outcome))
}

/// Before `--wait`: every check `plan` makes. One that fails for a reason other than
/// a BLOCKED gate (a preflight mismatch, drift, the ledger's refusal, the bundle role…)
/// would still fail when the gate opens, so there is nothing to wait for.
fn refuse_a_hopeless_wait(vb: &crate::verified::VerifiedBundle, o: &Options<'_>) -> Result<()> {
    // The same run, asking nothing, showing nothing, remembering nothing.
    let quiet = Options {
        remember: false,
        approvals: o.approvals,
        skip_gates: false,
        confirm: None,
        observer: None,
        deliver: None,
        ..o.clone()
    };
    let plan = crate::db::plan::plan(vb, &quiet, vec![], None);
    let hopeless = plan.checks.iter().find(|c| {
        c.verdict == crate::db::plan::CheckVerdict::Fail
            && !matches!(
                c.check,
                crate::db::plan::CheckName::Gates | crate::db::plan::CheckName::DeployLock
            )
    });
    match hopeless {
        Some(c) => Err(Error::NotWaiting {
            check: serde_json::to_value(c.check)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            evidence: c.evidence.clone(),
            hint: c.hint.clone(),
            exit: c.exit_code,
        }),
        None => Ok(()),
    }
}

pub fn rollback(args: RollbackArgs) -> Result<Outcome> {
    let (vb, conn, params) = prepare(&args.bundle, &args.trust, &args.db, &args.params)?;
    let dest = ReceiptDest::from_args(args.deploy.receipt.as_deref(), &args.deploy.receipt_dir);
    check_receipt_target(&dest, args.deploy.sign_receipt.is_some())?;
    let key = receipt_key(args.deploy.sign_receipt.as_ref(), &args.deploy.pass)?;
    let store = check_receipt_policy(&args.trust, key.as_ref(), args.deploy.sign_receipt.as_ref())?;
    let vouch = crate::commands::deploy::signed_rows::Vouched::required_by(&store);
    let confirm = confirm_on_tty(args.deploy.yes, "ROLL BACK");
    let progress = crate::progress::Deploy::new();
    let saver = Saver::new(
        dest,
        key.as_ref(),
        &args.bundle,
        &args.trust.trust,
        args.deploy.sign_receipt.as_ref(),
    );
    let o = Options {
        conn: &conn,
        expected_db: vb.manifest().target.database.clone(),
        params,
        through: None,
        lock_timeout: args.deploy.lock_timeout.clone(),
        lock_retries: args.deploy.lock_retries,
        statement_timeout: args.db.statement_timeout.clone(),
        allow_drift: false,
        resume: false,
        gate_role: args.gate.gate_role.clone(),
        remember: true,
        approvals: None,
        skip_gates: false,
        confirm: confirm.as_deref(),
        observer: Some(&progress),
        deliver: Some(&saver),
        vouch: vouch
            .as_ref()
            .map(|v| v as &dyn crate::db::ledger::signed_rows::Vouch),
    };
    let receipt = apply::rollback(&vb, &o)?;
    drop(progress);
    Ok(Box::new(saver.outcome(receipt)))
}
