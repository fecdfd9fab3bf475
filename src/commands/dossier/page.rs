//! The dossier page: one HTML document, its style inline, its sections in the order
//! the issue of record asks (status, GO/NO-GO, what changes, locks, what it destroys,
//! how it is undone, who signed and approved, hashes, runbooks), each naming the
//! sources of its facts.
//!
//! Invariant: the page loads nothing and runs nothing: no script, no external
//! resource, a Content-Security-Policy that forbids everything but inline style, no
//! link or image made from bundle text. Its bytes depend only on the facts: no clock
//! is read here, nothing is iterated in hash order.

use super::changes::{self, Budget};
use super::facts::Dossier;
use super::html::{code, esc, table};
use super::{people, status, Section, SourceRow};
use crate::verified::VerifiedBundle;
use std::fmt::Write;

/// The rendered page and what it holds.
pub(crate) struct Page {
    pub html: String,
    pub sections: Vec<Section>,
    pub sources: Vec<SourceRow>,
}

/// Nothing but inline style: no script, no fetch, no form, no base, no frame.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'";

const STYLE: &str = r#"
:root{color-scheme:light}
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:#1d1d1f;background:#fafaf7;margin:0}
main{max-width:980px;margin:0 auto;padding:24px 28px 60px}
header{border-bottom:3px solid #1d1d1f;margin-bottom:18px;padding-bottom:10px}
h1{font-size:26px;margin:0 0 4px}
h2{font-size:20px;margin:34px 0 6px;padding-top:8px;border-top:1px solid #ddd}
h3{font-size:16px;margin:20px 0 6px}
h4,h5,h6{font-size:15px;margin:14px 0 4px}
code,pre{font-family:ui-monospace,"SFMono-Regular","DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:13px}
code{background:#efefea;padding:0 3px;border-radius:3px;overflow-wrap:anywhere}
code.hash{font-size:12px}
pre{background:#f1f1ec;border:1px solid #ddd;padding:10px;white-space:pre-wrap;overflow-wrap:anywhere;border-radius:4px}
pre code{background:none;padding:0}
pre.cmd{background:#1d1d1f;color:#f5f5f0;border-color:#1d1d1f}
table{border-collapse:collapse;width:100%;margin:8px 0 12px;font-size:13.5px;background:#fff}
th,td{border:1px solid #d6d6cf;padding:4px 7px;text-align:left;vertical-align:top;overflow-wrap:break-word}
.badge,code.nb{white-space:nowrap}
th{background:#ecece6}
.meta,.src{color:#55554f;font-size:13px;margin:2px 0 8px}
.src{border-left:3px solid #b9b9b0;padding-left:8px}
.lead{font-size:17px}
.verdict{font-size:20px;padding:10px 14px;border-radius:6px;margin:10px 0;border:2px solid}
.verdict span{font-size:14px;font-weight:normal}
.v-go{background:#e4f3e7;border-color:#2e6b3f;color:#17421f}
.v-blocked{background:#fdf1dc;border-color:#b86e00;color:#5a3500}
.v-nogo{background:#fbe4e2;border-color:#b3261e;color:#5d130f}
.v-unknown{background:#e8eef8;border-color:#3a5a8c;color:#1b2f4f}
.v-done{background:#eef1f4;border-color:#4a5560;color:#1d242b}
.verdict ul.news{font-size:14.5px;margin:6px 0 0;padding-left:22px}
.decision{font-weight:600}
.badge{display:inline-block;padding:0 6px;border-radius:3px;font-weight:700;font-size:12px}
.b-ok{background:#cfe9d5;color:#17421f}.b-blocked{background:#f6d7a7;color:#5a3500}
.b-fail{background:#f2b8b5;color:#5d130f}.b-warn{background:#fbe7a1;color:#4d3b00}
.b-skip{background:#e3e3dd;color:#444}
.warnbox{background:#fdf1dc;border-left:4px solid #b86e00;padding:6px 10px}
.okbox{background:#e4f3e7;border-left:4px solid #2e6b3f;padding:6px 10px}
.folded,.more{color:#55554f;font-size:13px}
.ctl{background:#f2b8b5;color:#5d130f;font-family:ui-monospace,monospace;font-size:12px;padding:0 2px;border-radius:2px}
.url{color:#55554f;font-family:ui-monospace,monospace;font-size:12.5px}
.bigid code{font-size:14px}
details{margin:4px 0 10px}
summary{cursor:pointer;color:#2b4c7e}
pre.sql .k{color:#7a1f87;font-weight:600}pre.sql .s{color:#1d6b2b}pre.sql .c{color:#6b6b63;font-style:italic}
pre.sql .q{color:#8a4b00}pre.sql .n{color:#0b5c8a}
.chart{width:100%;height:auto;background:#fff;border:1px solid #ddd;margin:6px 0}
nav ol{columns:2;font-size:14px}
article.runbook{background:#fff;border:1px solid #ddd;padding:4px 16px 10px;margin:12px 0;border-radius:4px}
blockquote{border-left:3px solid #ccc;margin:8px 0;padding:2px 12px;color:#444}
footer{margin-top:40px;color:#55554f;font-size:12.5px}
@page{margin:14mm}
@media print{
 body{background:#fff;font-size:11pt}
 main{max-width:none;padding:0}
 nav{display:none}
 h2{break-after:avoid;border-top:none}
 h3{break-after:avoid}
 tr,pre,.verdict{break-inside:avoid}
 details::details-content{content-visibility:visible;display:contents}
 summary{color:#000}
 pre.cmd{background:#f1f1ec;color:#000}
 .chart{break-inside:avoid}
}
"#;

/// Where the page's facts come from, one row each, in a fixed order.
fn sources(d: &Dossier) -> Vec<SourceRow> {
    let v = &d.verification;
    let mut out = vec![
        SourceRow {
            id: "bundle".into(),
            what: format!(
                "the signed bundle {} (bundle id {}), verified: signatures, every file's SHA-256, structure, SQL rules",
                d.bundle_file, v.bundle_id
            ),
            at: Some(d.generated_at.clone()),
        },
        SourceRow {
            id: "trust-store".into(),
            what: format!(
                "the trust store {} ({}): who holds each key, its role and groups",
                d.trust_store.store.display(),
                d.trust_store
                    .version
                    .map_or("no version".to_string(), |n| format!("version {n}"))
            ),
            at: Some(d.generated_at.clone()),
        },
        SourceRow {
            id: "command-line".into(),
            what: if d.subject.params.is_empty() {
                "the params of the run: none given".into()
            } else {
                format!(
                    "the params of the run: {}",
                    d.subject
                        .params
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            },
            at: None,
        },
    ];
    if let Some(p) = &d.plan {
        out.push(SourceRow {
            id: "database".into(),
            what: format!(
                "the database {}, asked read-only as `airlock plan` asks it",
                p.database
            ),
            at: d.database_at.clone(),
        });
    }
    if let Some(r) = &d.rehearsal {
        out.push(SourceRow {
            id: "rehearsal".into(),
            what: format!(
                "the rehearsal report {} (sha256 {}; a saved `rehearse --json`, unsigned: as the file says) of a clone of {}",
                r.file, r.sha256, r.report.target
            ),
            at: r.report.started_at.clone(),
        });
    }
    if let Some(q) = &d.approvals {
        out.push(SourceRow {
            id: "approvals".into(),
            what: format!(
                "the signed approvals given ({} file(s){}), each verified with the trust store's approver keys",
                q.approvals.len(),
                if d.plan.is_some() { ", and the bundle's approvals table when it names one" } else { "" }
            ),
            at: Some(q.judged_at.clone()),
        });
    }
    for (i, r) in d.receipts.iter().enumerate() {
        out.push(SourceRow {
            id: format!("receipt-{}", i + 1),
            what: format!(
                "the receipt {} (sha256 {}; {}{})",
                r.file,
                r.sha256,
                match &r.signature {
                    Some(s) if s.counted => format!("signed by operator key {}", s.key_id),
                    Some(_) => "its signature does not count: as the file says".into(),
                    None => "unsigned: as the file says".into(),
                },
                match &r.receipt.reissued {
                    Some(re) => format!("; reissued from the ledger at {}", re.at),
                    None => String::new(),
                }
            ),
            at: Some(r.receipt.finished_at.clone()),
        });
    }
    out
}

/// `Source: bundle, database (at T)` for a section.
fn source_line(ids: &[String], all: &[SourceRow]) -> String {
    let parts: Vec<String> = ids
        .iter()
        .filter_map(|id| all.iter().find(|s| &s.id == id))
        .map(|s| {
            let label = s.id.replace('-', " ");
            match &s.at {
                Some(t) => format!(
                    "<a href=\"#src-{}\">{}</a> at {}",
                    s.id,
                    esc(&label),
                    esc(t)
                ),
                None => format!("<a href=\"#src-{}\">{}</a>", s.id, esc(&label)),
            }
        })
        .collect();
    format!("<p class=\"src\">Source: {}</p>", parts.join("; "))
}

/// The source ids present among `wanted`.
fn present(all: &[SourceRow], wanted: &[&str]) -> Vec<String> {
    wanted
        .iter()
        .filter(|w| all.iter().any(|s| s.id == **w))
        .map(|w| w.to_string())
        .collect()
}

/// The sources section: every source, then the digest and how it is made.
fn sources_section(d: &Dossier, all: &[SourceRow]) -> String {
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|s| {
            vec![
                format!("<span id=\"src-{}\">{}</span>", s.id, esc(&s.id)),
                esc(&s.what),
                esc(s.at.as_deref().unwrap_or("")),
            ]
        })
        .collect();
    let mut s = table(&["source", "what", "as of"], &rows, 100);
    let _ = write!(
        s,
        "<h3>The dossier digest</h3><p class=\"bigid\"><code class=\"hash\">{}</code></p><p>SHA-256 of what this page is about: the bundle (id, name, version, sequence), the params of the run, and the trust store's version and keys (id, name, role, groups) that give the page its names. No time and no database answer is in it. <code>airlock approve</code> prints the digest of what it signs: the same digest means this page is about exactly that. <code>sha256sum</code> of this file is another thing: it changes with the time and the database answers on the page.</p>",
        esc(&d.digest)
    );
    s
}

/// One section: its anchor, title, the sources of its facts, and its HTML.
struct Part {
    id: &'static str,
    title: &'static str,
    sources: Vec<String>,
    html: String,
}

fn part(id: &'static str, title: &'static str, sources: Vec<String>, html: String) -> Part {
    Part {
        id,
        title,
        sources,
        html,
    }
}

/// The sections, in page order, each with the sources its facts come from.
fn parts(d: &Dossier, vb: &VerifiedBundle, all: &[SourceRow]) -> Vec<Part> {
    let mut budget = Budget(changes::SQL_IN_ALL);
    let receipts: Vec<String> = (1..=d.receipts.len())
        .map(|i| format!("receipt-{i}"))
        .collect();
    let receipt_ids: Vec<&str> = receipts.iter().map(String::as_str).collect();
    let live = |extra: &[&str]| {
        let mut w = vec![
            "bundle",
            "trust-store",
            "command-line",
            "database",
            "approvals",
        ];
        w.extend_from_slice(extra);
        present(all, &w)
    };
    let mut parts: Vec<Part> = vec![
        part("status", "Status", live(&receipt_ids), status::status(d)),
        part("matrix", "GO / NO-GO", live(&[]), status::matrix(d)),
    ];
    if !d.receipts.is_empty() || !d.receipts_later.is_empty() {
        parts.push(part(
            "ran",
            "What ran",
            present(all, &receipt_ids),
            status::what_ran(d),
        ));
    }
    parts.push(part(
        "changes",
        "What changes, tier by tier",
        present(all, &["bundle"]),
        changes::changes(d, vb, &mut budget),
    ));
    parts.push(part(
        "locks",
        "What it locks, and for how long",
        present(all, &["bundle", "database", "rehearsal"]),
        changes::locks(d),
    ));
    parts.push(part(
        "destroys",
        "What it destroys",
        present(all, &["bundle", "database"]),
        changes::destroys(d),
    ));
    let mut undo_src = vec!["bundle", "database", "rehearsal"];
    undo_src.extend_from_slice(&receipt_ids);
    parts.push(part(
        "undo",
        "How it is undone",
        present(all, &undo_src),
        changes::undo(d, vb, &mut budget),
    ));
    parts.push(part(
        "people",
        "Who signed and who approved",
        present(all, &["bundle", "trust-store", "approvals"]),
        people::people(d),
    ));
    parts.push(part(
        "hashes",
        "Hashes, and how to check them without airlock",
        present(all, &["bundle", "trust-store"]),
        people::hashes(d),
    ));
    parts.push(part(
        "runbooks",
        "Runbooks",
        present(all, &["bundle"]),
        people::runbooks(d, vb),
    ));
    let ids: Vec<String> = all.iter().map(|s| s.id.clone()).collect();
    parts.push(part(
        "sources",
        "Where each fact comes from",
        ids,
        sources_section(d, all),
    ));
    parts
}

/// The whole page.
pub(crate) fn render(d: &Dossier, vb: &VerifiedBundle) -> Page {
    let all = sources(d);
    let m = &d.verification.manifest;
    let parts = parts(d, vb, &all);
    let title = format!("Release dossier: {} {}", m.bundle.name, m.bundle.version);
    let mut html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\n<meta name=\"referrer\" content=\"no-referrer\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>{STYLE}</style></head>\n<body><main>\n<header><h1>{}</h1><p class=\"meta\">bundle id <code class=\"hash\">{}</code> · dossier digest (of the bundle, its params and the trust store's keys, as <code>airlock approve</code> prints it; not of this page's bytes) <code class=\"hash\">{}</code><br>made by airlock {} at {} ({}) · every fact says where it comes from</p>{}</header>\n",
        esc(&title),
        esc(&title),
        esc(&d.verification.bundle_id),
        esc(&d.digest),
        esc(&d.airlock_version),
        esc(&d.generated_at),
        if d.generated_by == "--at" { "the time given with --at" } else { "this host's clock" },
        status::banner(d)
    );
    html.push_str("<nav><ol>");
    for p in &parts {
        let _ = write!(html, "<li><a href=\"#{}\">{}</a></li>", p.id, esc(p.title));
    }
    html.push_str("</ol></nav>\n");
    let mut sections = vec![];
    for (i, p) in parts.into_iter().enumerate() {
        let _ = writeln!(
            html,
            "<section id=\"{}\"><h2>{}. {}</h2>{}{}</section>",
            p.id,
            i + 1,
            esc(p.title),
            source_line(&p.sources, &all),
            p.html
        );
        sections.push(Section {
            id: p.id.into(),
            title: p.title.into(),
            sources: p.sources,
        });
    }
    let _ = writeln!(
        html,
        "<footer>Written by {} from the verified bundle; this page runs no script and loads nothing. The bundle's own text (SQL, names, runbooks) is shown escaped: invisible and direction-changing characters appear as <span class=\"ctl\">\\u{{…}}</span>.</footer>\n</main></body></html>",
        code("airlock dossier"),
    );
    Page {
        html,
        sections,
        sources: all,
    }
}
