//! `airlock apply` and `airlock rollback`.

use super::common::{load_secret_key, load_trust, write_atomic, NewFileMode};
use super::db_common::prepare;
use crate::cli::{ApplyArgs, RollbackArgs};
use crate::db::apply::{self, Options, PlanReport, Receipt};
use crate::error::{Error, Result};
use crate::minisign::SecretKey;
use crate::report::{short, Outcome, Report};
use crate::trust::Role;
use serde::Serialize;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

#[derive(Serialize, schemars::JsonSchema)]
pub struct ReceiptOutcome {
    #[serde(flatten)]
    pub receipt: Receipt,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receipt_file: Option<PathBuf>,
    /// Set when the change was committed but the receipt file could not be written
    /// (exit 1): this document is then the only copy of the receipt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receipt_error: Option<String>,
}

impl Report for ReceiptOutcome {
    fn human(&self) -> String {
        let r = &self.receipt;
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
        if let Some(g) = &r.gates {
            if !g.gates.is_empty() {
                s.push_str(&format!("\n\ngates:\n{}", super::gate::gate_table(g)));
            }
        }
        if let Some(p) = &r.preflight {
            s.push_str(&format!(
                "\n\npreflight {}:\n{}",
                p.file,
                super::gate::probe_table(p)
            ));
        }
        if let Some(p) = &r.verify {
            s.push_str(&format!(
                "\n\nverify {}:\n{}",
                p.file,
                super::gate::probe_table(p)
            ));
        }
        if let Some(p) = &r.rollback_probe {
            s.push_str(&format!(
                "\n\nrollback probe {}:\n{}",
                p.file,
                super::gate::probe_table(p)
            ));
        }
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
        if r.event == "apply" && !r.remaining_tiers.is_empty() {
            s.push_str(&format!(
                "\nnot yet applied: {} (run apply again to continue)",
                r.remaining_tiers.join(", ")
            ));
        }
        if let Some(f) = &self.receipt_file {
            s.push_str(&format!("\nreceipt: {}", f.display()));
        }
        if let Some(e) = &self.receipt_error {
            s.push_str(&format!(
                "\n\nERROR: the change above IS committed (ledger seq {}), but its receipt could not be written: {e}\n  The ledger keeps the record (airlock status); run with --json to capture this receipt.",
                r.ledger.last().map(|l| l.seq).unwrap_or(0)
            ));
        }
        s
    }

    fn exit_code(&self) -> u8 {
        if self.receipt_error.is_some() {
            1
        } else {
            0
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
        let _ = writeln!(
            e,
            "About to {verb} {} {} (bundle {}) on database {}.",
            p.bundle_name,
            p.bundle_version,
            short(&p.bundle_id),
            p.database
        );
        if !p.already_applied.is_empty() {
            let _ = writeln!(e, "  applied so far: {}", p.already_applied.join(", "));
        }
        for t in &p.tiers {
            let _ = writeln!(
                e,
                "  tier {} {} ({} file(s){})",
                t.index,
                t.name,
                t.files.len(),
                if t.gates.is_empty() {
                    String::new()
                } else {
                    format!(", gates {}", t.gates.join(","))
                }
            );
        }
        let _ = write!(e, "Type the database name ({}) to go on: ", p.database);
        let _ = e.flush();
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
        line.trim() == p.database
    }))
}

/// Write the receipt atomically; with a key, also RECEIPT.minisig over its exact bytes.
fn save_receipt(
    r: &Receipt,
    path: Option<PathBuf>,
    key: Option<&SecretKey>,
) -> Result<Option<PathBuf>> {
    if r.ledger.is_empty() {
        return Ok(None);
    }
    let seq = r.ledger.last().map(|l| l.seq).unwrap_or(0);
    let path = path.unwrap_or_else(|| {
        PathBuf::from(format!(
            "{}-{}.{}-{seq}.receipt.json",
            r.bundle_name,
            r.bundle_version.replace(['/', ' '], "_"),
            r.event
        ))
    });
    let mut text = serde_json::to_vec_pretty(r).map_err(|e| Error::io("receipt", e.into()))?;
    text.push(b'\n');
    write_atomic(&path, &text, NewFileMode::Public, false)?;
    if let Some(k) = key {
        let tc = format!(
            "timestamp:{}\tairlock-receipt\tbundle_id:{}\tevent:{}\tledger_seq:{seq}",
            chrono::Utc::now().timestamp(),
            r.bundle_id,
            r.event
        );
        let sig = k.sign(&text, &tc);
        let mut sig_path = path.clone().into_os_string();
        sig_path.push(".minisig");
        write_atomic(
            std::path::Path::new(&sig_path),
            sig.to_file_text().as_bytes(),
            NewFileMode::Public,
            false,
        )?;
    }
    Ok(Some(path))
}

/// Before anything changes: an explicit receipt path (and its signature) must not
/// exist, and the directory must take a new file. After the commit it is too late to
/// find out.
fn check_receipt_target(path: Option<&std::path::Path>, signing: bool) -> Result<()> {
    if let Some(p) = path {
        let mut taken = vec![p.to_path_buf()];
        if signing {
            let mut sig = p.as_os_str().to_owned();
            sig.push(".minisig");
            taken.push(PathBuf::from(sig));
        }
        for t in taken {
            if t.exists() || t.symlink_metadata().is_ok() {
                return Err(Error::usage(
                    format!(
                        "receipt {} already exists; nothing was changed",
                        t.display()
                    ),
                    Some("receipts are never overwritten: give another --receipt path".into()),
                ));
            }
        }
    }
    let dir = match path.and_then(std::path::Path::parent) {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
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

/// Save the receipt after the commit; a failure no longer undoes anything, so it is
/// reported on the outcome (exit 1) instead of replacing it.
fn finish(receipt: Receipt, path: Option<PathBuf>, key: Option<&SecretKey>) -> Result<Outcome> {
    let (receipt_file, receipt_error) = match save_receipt(&receipt, path, key) {
        Ok(f) => (f, None),
        Err(e) => (None, Some(e.to_string())),
    };
    Ok(Box::new(ReceiptOutcome {
        receipt,
        receipt_file,
        receipt_error,
    }))
}

fn receipt_key(
    path: Option<&std::path::Path>,
    pass: &crate::cli::PassphraseArgs,
) -> Result<Option<SecretKey>> {
    path.map(|p| load_secret_key(p, pass)).transpose()
}

/// Before anything changes: a receipt the trust store would not count is refused.
/// `require_signed_receipts` needs `--sign-receipt` with one of its operator keys; a
/// key the store lists must be an operator key, unrevoked and valid now, whether or
/// not signing is required (its signature would never count).
fn check_receipt_policy(
    trust: &crate::cli::TrustArgs,
    key: Option<&SecretKey>,
    receipt_arg: &std::path::Path,
) -> Result<()> {
    let store = load_trust(&trust.trust)?;
    let store_name = store.path.display().to_string();
    let Some(key) = key else {
        if store.require_signed_receipts {
            return Err(Error::usage(
                format!("trust store {store_name} requires signed receipts (require_signed_receipts = true); nothing was changed"),
                Some("pass --sign-receipt KEY with an operator key listed in the trust store".into()),
            ));
        }
        return Ok(());
    };
    let public = key.public();
    let id = public.key_id;
    let Some(entry) = store.find_key(&public) else {
        if store.require_signed_receipts {
            return Err(Error::usage(
                format!("receipt key {} ({id}) is not in trust store {store_name}, so its receipts would not count; nothing was changed", receipt_arg.display()),
                Some(format!("add its .pub to the trust store with role = \"operator\" under [keys.{id}] in trust.toml, or sign with an operator key listed there")),
            ));
        }
        return Ok(());
    };
    let now = chrono::Utc::now();
    let p = &entry.policy;
    let why = if p.role != Role::Operator {
        Some(format!(
            "has role {} in trust store {store_name}; receipts count only from operator keys",
            p.role.as_str()
        ))
    } else if matches!(p.revoked, Some(None)) || matches!(p.revoked, Some(Some(t)) if t <= now) {
        Some(format!("is revoked in trust store {store_name}"))
    } else if p.not_before.is_some_and(|nb| now < nb) || p.not_after.is_some_and(|na| now > na) {
        Some(format!(
            "is outside its validity window in trust store {store_name}"
        ))
    } else {
        None
    };
    match why {
        None => Ok(()),
        Some(why) => Err(Error::usage(
            format!(
                "receipt key {} ({id}) {why}: its signature would not count; nothing was changed",
                receipt_arg.display()
            ),
            Some(
                "sign receipts with a current operator key (role = \"operator\" in trust.toml)"
                    .into(),
            ),
        )),
    }
}

pub fn apply(args: ApplyArgs) -> Result<Outcome> {
    let (vb, conn, params) = prepare(&args.bundle, &args.trust, &args.db, &args.params)?;
    let key = receipt_key(args.deploy.sign_receipt.as_deref(), &args.deploy.pass)?;
    check_receipt_policy(
        &args.trust,
        key.as_ref(),
        args.deploy
            .sign_receipt
            .as_deref()
            .unwrap_or(std::path::Path::new("")),
    )?;
    check_receipt_target(args.deploy.receipt.as_deref(), key.is_some())?;
    let confirm = confirm_on_tty(args.deploy.yes, "apply");
    let progress = crate::progress::Deploy::new();
    let o = Options {
        conn: &conn,
        expected_db: vb.manifest().target.database.clone(),
        params,
        through: args.through.clone(),
        lock_timeout: args.deploy.lock_timeout.clone(),
        statement_timeout: args.db.statement_timeout.clone(),
        allow_drift: args.allow_drift,
        gate_role: args.gate.gate_role.clone(),
        remember: true,
        skip_gates: false,
        confirm: confirm.as_deref(),
        observer: Some(&progress),
    };
    let receipt = apply::apply(&vb, &o)?;
    drop(progress);
    finish(receipt, args.deploy.receipt.clone(), key.as_ref())
}

pub fn rollback(args: RollbackArgs) -> Result<Outcome> {
    let (vb, conn, params) = prepare(&args.bundle, &args.trust, &args.db, &args.params)?;
    let key = receipt_key(args.deploy.sign_receipt.as_deref(), &args.deploy.pass)?;
    check_receipt_policy(
        &args.trust,
        key.as_ref(),
        args.deploy
            .sign_receipt
            .as_deref()
            .unwrap_or(std::path::Path::new("")),
    )?;
    check_receipt_target(args.deploy.receipt.as_deref(), key.is_some())?;
    let confirm = confirm_on_tty(args.deploy.yes, "ROLL BACK");
    let progress = crate::progress::Deploy::new();
    let o = Options {
        conn: &conn,
        expected_db: vb.manifest().target.database.clone(),
        params,
        through: None,
        lock_timeout: args.deploy.lock_timeout.clone(),
        statement_timeout: args.db.statement_timeout.clone(),
        allow_drift: false,
        gate_role: args.gate.gate_role.clone(),
        remember: true,
        skip_gates: false,
        confirm: confirm.as_deref(),
        observer: Some(&progress),
    };
    let receipt = apply::rollback(&vb, &o)?;
    drop(progress);
    finish(receipt, args.deploy.receipt.clone(), key.as_ref())
}
