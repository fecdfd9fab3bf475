//! `airlock approve`: an approver's signed consent to one bundle, run with given
//! params. Verifies the bundle, shows what is being approved, asks on a terminal,
//! then writes `FILE` (the canonical approval document) and `FILE.minisig`.

use crate::approval::{self, ApprovalDoc};
use crate::cli::ApproveArgs;
use crate::commands::common::{judge_time, verdicts, write_atomic, NewFileMode};
use crate::commands::signing_key::{how_to_add, load_secret_key};
use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::report::{short, Outcome, Report};
use crate::trust::{rfc3339, Role, TrustStore};
use crate::verified::VerifiedBundle;
use airlock_keys::KeySpec;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

#[derive(Serialize, schemars::JsonSchema)]
pub struct ApproveReport {
    /// The approval document written.
    pub approval: PathBuf,
    /// Its minisign signature.
    pub signature: PathBuf,
    pub key_id: String,
    pub bundle_id: String,
    pub bundle_name: String,
    pub bundle_version: String,
    pub sequence: u64,
    pub params: BTreeMap<String, String>,
    pub approved_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    /// The tiers the approval opens (those that name a gate).
    pub tiers: Vec<String>,
    /// What the bundle asks for: `threshold` approvals, `required` keys among them.
    pub threshold: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required: Vec<String>,
    /// The dossier digest of what was approved (this bundle, these params, the names
    /// the trust store gives): the one `airlock dossier` shows on the page made for the
    /// same bundle, params and trust store.
    pub dossier_digest: String,
}

impl Report for ApproveReport {
    fn human(&self) -> String {
        format!(
            "approved {} {} (sequence {}, bundle {}) with key {}\n  bundle id: {}\n  dossier digest: {} (the page `airlock dossier` makes for this bundle and these params shows the same)\n  params: {}\n  approval: {}\n  signature: {}\n  give both files to the operator: airlock apply … --approval {}",
            self.bundle_name,
            self.bundle_version,
            self.sequence,
            short(&self.bundle_id),
            self.key_id,
            self.bundle_id,
            self.dossier_digest,
            approval::show_params(&self.params),
            self.approval.display(),
            self.signature.display(),
            self.approval.display()
        )
    }
}

/// What is being approved, as the approver reads it before consenting.
fn describe(m: &Manifest, id: &str, params: &BTreeMap<String, String>) -> String {
    let r = m.ratification.as_ref();
    let asks = match r {
        Some(r) => {
            let mut asks = format!("{} approval(s)", r.threshold);
            if !r.required.is_empty() {
                asks.push_str(&format!(", including key(s) {}", r.required.join(", ")));
            }
            match r.required_groups.as_slice() {
                [] => {}
                [one] => asks.push_str(&format!(", one from the group {one}")),
                many => asks.push_str(&format!(
                    ", one from each of the groups {}",
                    many.join(", ")
                )),
            }
            asks
        }
        None => "none".into(),
    };
    let tiers: Vec<String> = m
        .tier
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let gated = match r {
                _ if t.gates.is_empty() => String::new(),
                Some(r) if r.guards(&t.gates) => {
                    format!(" (gates {}; needs the approvals)", t.gates.join(","))
                }
                _ => format!(" (gates {})", t.gates.join(",")),
            };
            format!("    {} {}{gated}", i + 1, t.name)
        })
        .collect();
    let left_out: Vec<String> = m
        .params
        .keys()
        .filter(|k| !params.contains_key(*k))
        .map(|k| format!("    {k}: not given, and a run must not give it either (this approval counts only for a run with exactly the params above)"))
        .collect();
    let described: Vec<String> = params
        .iter()
        .map(|(k, v)| {
            let what = m
                .params
                .get(k)
                .map(|p| p.description.as_str())
                .filter(|d| !d.is_empty())
                .map(|d| format!("  ({d})"))
                .unwrap_or_default();
            format!("    {k} = {v}{what}")
        })
        .collect();
    format!(
        "You are approving:\n  release:   {} {} (sequence {})\n  bundle id: {id}\n  {}\n  tiers:\n{}\n  ratification asked: {asks}\n  params you consent to:\n{}",
        m.bundle.name,
        m.bundle.version,
        m.bundle.sequence,
        if m.bundle.description.is_empty() {
            String::new()
        } else {
            format!("about:     {}", m.bundle.description)
        },
        tiers.join("\n"),
        if described.is_empty() && left_out.is_empty() {
            "    (none)".to_string()
        } else {
            described.into_iter().chain(left_out).collect::<Vec<_>>().join("\n")
        }
    )
}

/// On a terminal (and without --yes): show what is approved, ask for the release name.
fn confirm(yes: bool, text: &str, name: &str) -> Result<()> {
    if yes || !std::io::stdin().is_terminal() {
        return Ok(());
    }
    let mut e = std::io::stderr();
    let _ = writeln!(e, "{}", crate::report::for_stderr(text));
    let prompt = format!("Type the release name ({name}) to sign your approval: ");
    let _ = write!(e, "{}", crate::report::for_stderr(&prompt));
    let _ = e.flush();
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    if line.trim() == name {
        Ok(())
    } else {
        Err(Error::usage(
            "cancelled: the release name was not confirmed; no approval was written",
            None,
        ))
    }
}

/// The approver's key must be an approver key of the store, or the approval would
/// never count.
fn check_role(store: &TrustStore, key: &crate::minisign::PublicKey, spec: &KeySpec) -> Result<()> {
    match store.find_key(key) {
        Some(k) if k.policy.role == Role::Approver => Ok(()),
        Some(k) => Err(Error::usage(
            format!(
                "key {} ({spec}) has role {} in trust store {}: an approval counts only from a key with role approver",
                key.key_id,
                k.policy.role.as_str(),
                store.path.display()
            ),
            Some(format!("approve with your approver key; a key has one role (the store's keeper adds an approver key with `airlock trust add {} KEY.pub --role approver`)", store.path.display())),
        )),
        None => Err(Error::usage(
            format!(
                "key {} ({spec}) is not in trust store {}: its approval would not count",
                key.key_id,
                store.path.display()
            ),
            Some(how_to_add(spec, &store.path, "approver", &key.key_id)),
        )),
    }
}

fn out_paths(args: &ApproveArgs, m: &Manifest, key_id: &str) -> Result<(PathBuf, PathBuf)> {
    let doc = args.out.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            "{}-{}.{key_id}.{}",
            m.bundle.name,
            crate::report::terminal_safe(&m.bundle.version).replace(['/', ' '], "_"),
            approval::EXTENSION
        ))
    });
    let sig = approval::signature_path(&doc);
    for p in [&doc, &sig] {
        if p.exists() {
            return Err(Error::usage(
                format!("{} already exists; nothing was written", p.display()),
                Some("choose another file with --out, or move the old approval away".into()),
            ));
        }
    }
    Ok((doc, sig))
}

/// `--expires`: a time in the future, as the document writes it.
fn expiry(given: Option<&str>, now: chrono::DateTime<chrono::Utc>) -> Result<Option<String>> {
    let Some(t) = given else {
        return Ok(None);
    };
    match crate::trust::parse_rfc3339(t) {
        Some(e) if e > now => Ok(Some(rfc3339(e))),
        Some(_) => Err(Error::usage(
            format!("--expires {t} is not in the future: the approval would never count"),
            None,
        )),
        None => Err(Error::usage(
            format!("--expires {t:?} is not a time"),
            Some("use RFC 3339, e.g. 2026-07-01T00:00:00Z".into()),
        )),
    }
}

/// What an approver consents to, besides the bundle: the run's params, an expiry, a
/// note, and when.
pub(crate) struct Consent {
    pub params: BTreeMap<String, String>,
    pub expires: Option<String>,
    pub comment: String,
    pub at: chrono::DateTime<chrono::Utc>,
}

impl Consent {
    /// Sign this consent to `vb` with `key`, written to `doc_path` and its `.minisig`
    /// beside it (the signature first, so that a directory `--wait` reads never holds
    /// a document without its signature; neither is left alone on failure).
    pub(crate) fn write(
        self,
        vb: &VerifiedBundle,
        key: &dyn crate::minisign::KeySigner,
        doc_path: &Path,
    ) -> Result<ApprovalDoc> {
        let m = vb.manifest();
        let doc = ApprovalDoc {
            format: approval::FORMAT.into(),
            approver: key.public().key_id.to_string(),
            bundle_id: vb.id().into(),
            bundle_name: m.bundle.name.clone(),
            bundle_version: m.bundle.version.clone(),
            sequence: m.bundle.sequence,
            params: self.params,
            approved_at: rfc3339(self.at),
            expires: self.expires,
            comment: self.comment,
        };
        let (bytes, sig) = doc.sign(key, self.at.timestamp())?;
        let sig_path = approval::signature_path(doc_path);
        write_atomic(&sig_path, sig.as_bytes(), NewFileMode::Public, false)?;
        if let Err(e) = write_atomic(doc_path, &bytes, NewFileMode::Public, false) {
            let _ = std::fs::remove_file(&sig_path);
            return Err(e);
        }
        Ok(doc)
    }
}

pub fn run(args: ApproveArgs) -> Result<Outcome> {
    let store =
        crate::commands::release::carried::load_trust_for_bundle(&args.trust.trust, &args.bundle)?;
    let vb = VerifiedBundle::load(&args.bundle, &store, judge_time(None)?, &verdicts())?;
    let m = vb.manifest();
    if m.ratification.is_none() {
        return Err(Error::usage(
            format!(
                "{} {} declares no [ratification]: no approval is asked for, and none would be read",
                m.bundle.name, m.bundle.version
            ),
            Some("the release manager adds [ratification] threshold = N to bundle.toml and packs a new bundle".into()),
        ));
    }
    let params = crate::db::parse_params(&args.params.params, &m.params)?;
    let all: Vec<usize> = (0..m.tier.len()).collect();
    crate::db::apply::check_required(&vb, &all, &params)?;
    let now = chrono::Utc::now();
    let expires = expiry(args.expires.as_deref(), now)?;
    let dossier_digest = crate::commands::release::subject::digest(&vb, &store, &params);
    let shown = format!(
        "{}\n  dossier digest: {dossier_digest} (compare it with the page you read)",
        describe(m, vb.id(), &params)
    );
    confirm(args.yes, &shown, &m.bundle.name)?;
    let key = load_secret_key(&args.key, &args.pass)?;
    check_role(&store, &key.public(), &args.key)?;
    let key_id = key.key_id.to_string();
    let (doc_path, sig_path) = out_paths(&args, m, &key_id)?;
    let doc = Consent {
        params: params.clone(),
        expires: expires.clone(),
        comment: args.comment.clone().unwrap_or_default(),
        at: now,
    }
    .write(&vb, &key, &doc_path)?;
    let r = m.ratification.clone();
    Ok(Box::new(ApproveReport {
        approval: doc_path,
        signature: sig_path,
        key_id,
        bundle_id: vb.id().into(),
        bundle_name: m.bundle.name.clone(),
        bundle_version: m.bundle.version.clone(),
        sequence: m.bundle.sequence,
        params,
        approved_at: doc.approved_at,
        expires,
        tiers: m
            .tier
            .iter()
            .filter(|t| r.as_ref().is_some_and(|r| r.guards(&t.gates)))
            .map(|t| t.name.clone())
            .collect(),
        threshold: r.as_ref().map_or(0, |r| r.threshold),
        required: r.map(|r| r.required).unwrap_or_default(),
        dossier_digest,
    }))
}
