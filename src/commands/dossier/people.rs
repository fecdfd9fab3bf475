//! The end of the dossier: who signed and who approved (key ids with the names,
//! roles and groups the trust store gives them, and who is still missing), every
//! file's hash with the recipe to check them without airlock, and the runbooks.
//!
//! Invariant: a person is named only as the trust store names their key (never as a
//! file or a signature says); the recipe is the auditor's guide's, with this bundle's
//! file and its signers' keys filled in; runbooks are rendered with no raw HTML
//! ([`super::markdown`]), at most [`RUNBOOK_SHOWN`] bytes each, [`RUNBOOKS_IN_ALL`] in all.

use super::facts::Dossier;
use super::html::{code, esc, esc_bounded, table};
use super::status::{shell, EVIDENCE, ROWS};
use crate::commands::release::trust::KeyRow;
use crate::verified::VerifiedBundle;
use std::fmt::Write;
use std::io::Read;

/// The most bytes of one runbook shown.
pub(super) const RUNBOOK_SHOWN: u64 = 256 << 10;
/// The most bytes of runbooks shown in all.
pub(super) const RUNBOOKS_IN_ALL: u64 = 1 << 20;

fn key_row<'a>(d: &'a Dossier, id: &str) -> Option<&'a KeyRow> {
    d.trust_store.keys.iter().find(|k| k.key_id == id)
}

/// `Carol (key AB12…)`, or the key id alone when the store gives no name.
fn who(d: &Dossier, id: &str) -> String {
    match key_row(d, id).and_then(|k| k.name.as_ref()) {
        Some(n) => format!("{} (key {})", esc(n), code(id)),
        None => format!("key {} (no name in the trust store)", code(id)),
    }
}

fn groups(d: &Dossier, id: &str) -> String {
    esc(&key_row(d, id)
        .map(|k| k.groups.join(", "))
        .unwrap_or_default())
}

/// What the bundle carries of the trust store, if anything.
fn carried(d: &Dossier) -> String {
    match &d.verification.manifest.trust_update {
        Some(t) => format!(
            "<p>The bundle carries version {} of the trust store, signed by its root keys: each host installs it before judging the bundle, when its own root keys approve it.</p>",
            t.version
        ),
        None => String::new(),
    }
}

/// Who signed the bundle, who approved it, and who is still missing.
/// Who signed the bundle: the trust store's judgment, each signature, and what a
/// carried trust store changed.
fn signers(d: &Dossier, s: &mut String) {
    if let Some(t) = &d.verification.trust {
        let _ = write!(
            s,
            "<h3>Who signed the bundle</h3><p>{} of the {} distinct release key(s) the trust store asks for signed it (judged at {}).</p>",
            t.distinct_keys,
            t.threshold,
            esc(&t.judged_at)
        );
        if let Some(e) = &t.evidence {
            let _ = write!(
                s,
                "<p>Evidence the signer could not make alone shows the bundle existed by {}: {}. A key revoked or retired after that still counts for it, as <code>airlock audit</code> counts it.</p>",
                esc(&e.by),
                esc(&e.source)
            );
        }
        let rows: Vec<Vec<String>> = t
            .signatures
            .iter()
            .map(|sig| {
                vec![
                    who(d, &sig.key_id),
                    esc(sig.role.map(|r| r.as_str()).unwrap_or("")),
                    esc(sig.signed_at.as_deref().unwrap_or("")),
                    if sig.counted {
                        "counts".into()
                    } else {
                        format!(
                            "does not count: {}",
                            esc_bounded(sig.note.as_deref().unwrap_or(""), EVIDENCE)
                        )
                    },
                ]
            })
            .collect();
        s.push_str(&table(
            &["signer", "role", "signed at (the signer's claim)", ""],
            &rows,
            ROWS,
        ));
        s.push_str(&carried(d));
    }
}

pub(super) fn people(d: &Dossier) -> String {
    let mut s = String::new();
    signers(d, &mut s);
    let Some(r) = &d.verification.manifest.ratification else {
        s.push_str("<h3>Who approved it</h3><p>This bundle asks for no signed approvals (no <code>[ratification]</code>).</p>");
        return s;
    };
    let _ = write!(
        s,
        "<h3>Who approved it</h3><p>The bundle asks for {} signed approval(s) from approver keys{}{}.</p>",
        r.threshold,
        if r.required.is_empty() {
            String::new()
        } else {
            format!(", including {}", r.required.iter().map(|k| who(d, k)).collect::<Vec<_>>().join(", "))
        },
        if r.required_groups.is_empty() {
            String::new()
        } else {
            format!(", one from each of the groups {}", esc(&r.required_groups.join(", ")))
        }
    );
    let Some(q) = &d.approvals else {
        return s;
    };
    let rows: Vec<Vec<String>> = q
        .approvals
        .iter()
        .map(|a| {
            vec![
                if a.key_id.is_empty() {
                    code(&a.file)
                } else {
                    who(d, &a.key_id)
                },
                groups(d, &a.key_id),
                esc(a.approved_at.as_deref().unwrap_or("")),
                esc(a.expires.as_deref().unwrap_or("")),
                esc_bounded(&a.comment, EVIDENCE),
                if a.counted {
                    "counts".into()
                } else {
                    format!("does not count: {}", esc_bounded(&a.describe(), EVIDENCE))
                },
            ]
        })
        .collect();
    if rows.is_empty() {
        s.push_str("<p>No approval was given to this page (<code>--approval</code>).</p>");
    } else {
        s.push_str(&table(
            &[
                "approver",
                "groups",
                "approved at (their claim)",
                "expires",
                "their note",
                "",
            ],
            &rows,
            ROWS,
        ));
    }
    s.push_str(&missing(d, q));
    s
}

/// Who is still missing from the quorum, by name.
fn missing(d: &Dossier, q: &airlock_bundle::approval::QuorumReport) -> String {
    if q.met {
        return format!(
            "<p class=\"okbox\">The quorum is met: {} of {} approval(s) count (judged at {}).</p>",
            q.counted,
            q.threshold,
            esc(&q.judged_at)
        );
    }
    let mut items = vec![];
    let short = q.threshold.saturating_sub(q.counted);
    if short > 0 {
        items.push(format!(
            "{short} more approval(s) from distinct approver keys"
        ));
    }
    for k in &q.missing_required {
        items.push(format!("the required approver {}", who(d, k)));
    }
    for g in &q.missing_groups {
        let in_group: Vec<String> = d
            .trust_store
            .keys
            .iter()
            .filter(|k| k.groups.contains(g))
            .map(|k| who(d, &k.key_id))
            .collect();
        items.push(format!(
            "an approver of the group {} ({})",
            esc(g),
            if in_group.is_empty() {
                "the trust store has none".into()
            } else {
                in_group.join(", ")
            }
        ));
    }
    let approved: Vec<&str> = q
        .approvals
        .iter()
        .filter(|a| a.counted)
        .map(|a| a.key_id.as_str())
        .collect();
    let could: Vec<String> = d
        .trust_store
        .keys
        .iter()
        .filter(|k| k.role == crate::trust::Role::Approver && k.state == "counts")
        .filter(|k| !approved.contains(&k.key_id.as_str()))
        .map(|k| who(d, &k.key_id))
        .collect();
    let mut s = format!(
        "<p class=\"warnbox\">Still missing ({} of {} count, judged at {}):</p><ul>",
        q.counted,
        q.threshold,
        esc(&q.judged_at)
    );
    for i in items {
        let _ = write!(s, "<li>{i}</li>");
    }
    s.push_str("</ul>");
    if !could.is_empty() {
        let _ = write!(
            s,
            "<p>Approver keys of the trust store that have not approved: {}.</p>",
            could.join(", ")
        );
    }
    s
}

/// Every file's hash, the bundle id, and the auditor's recipe without airlock.
pub(super) fn hashes(d: &Dossier) -> String {
    let v = &d.verification;
    let mut s = format!(
        "<p>The bundle id is the SHA-256 of its <code>manifest.json</code>, which every signature signs and which lists every file's SHA-256 and size:</p><p class=\"bigid\"><code class=\"hash\">{}</code></p>",
        esc(&v.bundle_id)
    );
    let rows: Vec<Vec<String>> = v
        .manifest
        .files
        .iter()
        .map(|f| {
            vec![
                code(&f.path),
                f.size.to_string(),
                format!("<code class=\"hash\">{}</code>", esc(&f.sha256)),
            ]
        })
        .collect();
    s.push_str(&table(
        &["file", "bytes", "sha256"],
        &rows,
        ROWS.max(v.manifest.files.len().min(5000)),
    ));
    let keys: Vec<String> = v
        .trust
        .iter()
        .flat_map(|t| t.signatures.iter())
        .filter(|sig| sig.counted)
        .filter_map(|sig| sig.key_file.clone())
        .collect();
    let key = keys.first().cloned().unwrap_or_else(|| "KEY.pub".into());
    let mut recipe = format!(
        "B={}\n# Every entry as pack writes it: a plain file, mode 0644, owner 0/0, time 0. Prints nothing:\ntar --numeric-owner --utc -tvzf \"$B\" | grep -v '^-rw-r--r-- 0/0 .* 1970-01-01 00:00 '   # exit 1\nmkdir audit && tar --no-same-owner --no-same-permissions -xzf \"$B\" -C audit && cd audit\n",
        shell(&d.bundle_file)
    );
    for k in keys.iter().chain(keys.is_empty().then_some(&key)) {
        let _ = writeln!(
            recipe,
            "for s in signatures/*.minisig; do minisign -Vm manifest.json -p {} -x \"$s\" 2>/dev/null && break; done   # its trusted comment must name this release",
            shell(&from_audit_dir(k))
        );
    }
    let _ = write!(
        recipe,
        "sha256sum -c SHA256SUMS\ngrep -o '\"path\":\"SHA256SUMS\",\"sha256\":\"[0-9a-f]*\"' manifest.json; sha256sum SHA256SUMS   # same hash\nsha256sum manifest.json        # = the bundle id: {}",
        v.bundle_id
    );
    let _ = write!(
        s,
        "<h3>Checking it without airlock</h3><p>With <code>tar</code>, <code>minisign</code> and <code>sha256sum</code> only (the auditor's guide, \"Without airlock\"), one <code>minisign</code> line per key that signed:</p><pre class=\"cmd\">{}</pre><p>This checks signatures and hashes only: the trust store's threshold, revocations, windows and roles are airlock's to apply.</p>",
        esc(&recipe)
    );
    s
}

/// A key file as the recipe names it from inside `audit/`: a relative path (relative
/// to where the page was made) gets `../`.
fn from_audit_dir(p: &str) -> String {
    if std::path::Path::new(p).is_relative() {
        format!("../{p}")
    } else {
        p.to_string()
    }
}

/// The bundle's runbooks, rendered: at most [`RUNBOOK_SHOWN`] bytes each and
/// [`RUNBOOKS_IN_ALL`] in all, the rest said.
pub(super) fn runbooks(d: &Dossier, vb: &VerifiedBundle) -> String {
    let m = &d.verification.manifest;
    if m.runbook.is_empty() {
        return "<p>This bundle carries no runbook.</p>".into();
    }
    let mut s = String::new();
    let mut left = RUNBOOKS_IN_ALL;
    for (i, r) in m.runbook.iter().enumerate() {
        let size = m
            .files
            .iter()
            .find(|f| f.path == r.file)
            .map_or(0, |f| f.size);
        let _ = write!(
            s,
            "<article class=\"runbook\" id=\"runbook-{}\"><h3>{}</h3><p class=\"meta\">{}{} ({} bytes)</p>",
            i + 1,
            esc(&r.title),
            if r.audience.is_empty() {
                String::new()
            } else {
                format!("for: {}; ", esc(&r.audience))
            },
            code(&r.file),
            size
        );
        let shown = RUNBOOK_SHOWN.min(left);
        let mut bytes = vec![];
        let read = vb
            .payload(&r.file)
            .map_err(|e| e.to_string())
            .and_then(|p| {
                crate::verified::reader_of(p)
                    .take(shown)
                    .read_to_end(&mut bytes)
                    .map_err(|e| e.to_string())
            });
        match read {
            Ok(_) => {
                left -= bytes.len() as u64;
                s.push_str(&super::markdown::render(
                    &String::from_utf8_lossy(&bytes),
                    3,
                ));
                if size > bytes.len() as u64 {
                    let _ = write!(
                        s,
                        "<p class=\"folded\">… the page shows its first {} of {size} bytes (at most {} KiB a runbook, {} MiB in all; <code>airlock runbook</code> prints it whole).</p>",
                        bytes.len(),
                        RUNBOOK_SHOWN >> 10,
                        RUNBOOKS_IN_ALL >> 20
                    );
                }
            }
            Err(e) => {
                let _ = write!(s, "<p class=\"folded\">Not read: {}</p>", esc(&e));
            }
        }
        s.push_str("</article>");
    }
    s
}
