//! The release dossier through the real binary, rendered by a real browser (Debian's
//! headless Chromium, installed by scripts/test-deps): the reference release's page with
//! every option (a database, a real rehearsal, one approval of two, a receipt after the
//! apply) lays out, shows its matrix and lock timeline, and loads nothing from the
//! network; a hostile bundle's markup and bidi overrides are text; the same inputs at
//! the same `--at` write the same bytes, whose digest `approve` prints; and what must
//! not become a page (an unverified bundle, another bundle's rehearsal or receipt, an
//! existing page without `--force`) writes nothing.

mod util;
use serde::Deserialize;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use util::*;

/// What `dossier --json` says (the fields these tests read).
#[derive(Debug, Deserialize)]
struct DossierJson {
    out: String,
    sha256: String,
    bytes: u64,
    digest: String,
    verdict: String,
    sections: Vec<SectionJson>,
    sources: Vec<SourceJson>,
    facts: Facts,
}

#[derive(Debug, Deserialize)]
struct SectionJson {
    id: String,
}

#[derive(Debug, Deserialize)]
struct SourceJson {
    id: String,
    at: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Facts {
    generated_at: String,
    verification: VerificationJson,
    matrix: MatrixJson,
    approvals: Option<QuorumJson>,
    #[serde(default)]
    receipts: Vec<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct VerificationJson {
    manifest: ManifestJson,
}

#[derive(Debug, Deserialize)]
struct ManifestJson {
    files: Vec<FileJson>,
}

#[derive(Debug, Deserialize)]
struct FileJson {
    path: String,
    size: u64,
    sha256: String,
}

impl DossierJson {
    /// A bundle file's size and SHA-256, as the facts give them.
    fn facts_file(&self, path: &str) -> (u64, String) {
        let f = self
            .facts
            .verification
            .manifest
            .files
            .iter()
            .find(|f| f.path == path)
            .unwrap_or_else(|| panic!("no {path} in the manifest"));
        (f.size, f.sha256.clone())
    }
}

#[derive(Debug, Deserialize)]
struct MatrixJson {
    from: String,
    checks: Vec<CheckJson>,
}

#[derive(Debug, Deserialize)]
struct CheckJson {
    check: String,
    verdict: String,
}

#[derive(Debug, Deserialize)]
struct QuorumJson {
    threshold: u32,
    counted: u32,
    met: bool,
}

/// `airlock --json dossier ARGS` in `dir`: the parsed report, checked against
/// schemas/dossier.schema.json.
fn dossier(dir: &Path, args: &[&str]) -> DossierJson {
    let mut a = vec!["--json", "dossier"];
    a.extend(args);
    let o = airlock(dir, &a);
    expect_code(&o, 0);
    let doc = json(&o);
    validate("dossier.schema.json", &doc);
    serde_json::from_value(doc).expect("dossier --json")
}

fn validate(schema_name: &str, doc: &serde_json::Value) {
    let text =
        std::fs::read_to_string(repo().join("schemas").join(schema_name)).expect("schema file");
    let schema: serde_json::Value = serde_json::from_str(&text).expect("schema json");
    let compiled = jsonschema::JSONSchema::compile(&schema).expect("schema compiles");
    if let Err(errors) = compiled.validate(doc) {
        let msgs: Vec<String> = errors
            .map(|e| format!("{e} at {}", e.instance_path))
            .collect();
        panic!(
            "output does not match schemas/{schema_name}:\n{}",
            msgs.join("\n")
        );
    };
}

// ---------------------------------------------------------------------------------
// The browser.

/// What Chromium made of a page: the DOM after rendering, the screenshot, and the
/// URLs the page itself asked the network for (Chromium's own net log).
struct Rendered {
    dom: String,
    png: Png,
    page_requests: Vec<String>,
}

/// Headless Chromium with a fresh profile and no background traffic of its own worth
/// the name; its net log goes to `netlog`. A missing Chromium fails the test loudly.
fn chromium(work: &Path, netlog: &Path) -> Command {
    let bin = which_tool("chromium").unwrap_or_else(|| {
        panic!("this test needs Debian's `chromium` on PATH: run scripts/test-deps (apt-get install chromium)")
    });
    let profile = work.join(format!(
        "profile-{}",
        netlog.file_stem().unwrap().to_string_lossy()
    ));
    std::fs::create_dir_all(&profile).unwrap();
    let mut c = Command::new("timeout");
    c.arg("180").arg(bin).args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ]);
    c.arg(format!("--user-data-dir={}", profile.display()));
    c.arg(format!("--log-net-log={}", netlog.display()));
    c
}

fn run_browser(mut c: Command, what: &str) -> Output {
    let o = c.output().expect("run chromium");
    assert!(
        o.status.success(),
        "chromium ({what}) exit {:?}: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// The URLs the page asked for: the net log's request starts whose initiator is a
/// page (Chromium's own updates and sign-in checks say "not an origin") or that belong
/// to the file:// page's network partition.
fn page_requests(netlog: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(netlog).expect("chromium wrote its net log");
    let log: serde_json::Value = serde_json::from_str(&text).expect("net log is JSON");
    let start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
        .as_u64()
        .expect("URL_REQUEST_START_JOB in the net log's constants");
    let events = log["events"].as_array().expect("events");
    assert!(!events.is_empty(), "an empty net log proves nothing");
    events
        .iter()
        .filter(|e| e["type"].as_u64() == Some(start))
        .filter_map(|e| {
            let p = &e["params"];
            let url = p["url"].as_str()?;
            let initiator = p["initiator"].as_str().unwrap_or("");
            let partition = p["network_isolation_key"].as_str().unwrap_or("");
            (initiator != "not an origin" || partition.contains("file://")).then(|| url.to_string())
        })
        .collect()
}

/// Render `page` in Chromium: a screenshot (1200×2400) and the DOM, each run with its
/// own net log.
fn browse(page: &Path, work: &Path) -> Rendered {
    let url = format!("file://{}", page.display());
    let shot = work.join("shot.png");
    let net_shot = work.join("net-shot.json");
    let mut c = chromium(work, &net_shot);
    c.arg(format!("--screenshot={}", shot.display()))
        .arg("--window-size=1200,2400")
        .arg(&url);
    run_browser(c, "screenshot");
    let net_dom = work.join("net-dom.json");
    let mut c = chromium(work, &net_dom);
    c.arg("--dump-dom").arg(&url);
    let o = run_browser(c, "dump-dom");
    let mut requests = page_requests(&net_shot);
    requests.extend(page_requests(&net_dom));
    Rendered {
        dom: String::from_utf8(o.stdout).expect("the DOM is UTF-8"),
        png: decode_png(&std::fs::read(&shot).expect("chromium wrote the screenshot")),
        page_requests: requests,
    }
}

/// An 8-bit RGB(A) PNG, decoded (what Chromium's screenshots are).
struct Png {
    width: usize,
    height: usize,
    /// Row-major RGB.
    pixels: Vec<[u8; 3]>,
}

impl Png {
    fn distinct_colours(&self) -> usize {
        let mut seen: std::collections::HashSet<[u8; 3]> = Default::default();
        seen.extend(self.pixels.iter().copied());
        seen.len()
    }

    /// Rows holding a pixel far from the page background (#fafaf7).
    fn rows_with_ink(&self) -> usize {
        (0..self.height)
            .filter(|y| {
                self.pixels[y * self.width..(y + 1) * self.width]
                    .iter()
                    .any(|p| {
                        p.iter()
                            .zip([250u8, 250, 247])
                            .any(|(a, b)| a.abs_diff(b) > 40)
                    })
            })
            .count()
    }

    /// Pixels within 3 of `rgb` on every channel.
    fn count_near(&self, rgb: [u8; 3]) -> usize {
        self.pixels
            .iter()
            .filter(|p| p.iter().zip(rgb).all(|(a, b)| a.abs_diff(b) <= 3))
            .count()
    }
}

/// PNG: chunks, zlib inflate of the IDAT stream, then each scanline unfiltered.
fn decode_png(bytes: &[u8]) -> Png {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let (mut width, mut height, mut channels) = (0usize, 0usize, 0usize);
    let mut idat = vec![];
    let mut i = 8;
    while i + 8 <= bytes.len() {
        let n = u32::from_be_bytes(bytes[i..i + 4].try_into().unwrap()) as usize;
        let kind = &bytes[i + 4..i + 8];
        let data = &bytes[i + 8..i + 8 + n];
        match kind {
            b"IHDR" => {
                width = u32::from_be_bytes(data[0..4].try_into().unwrap()) as usize;
                height = u32::from_be_bytes(data[4..8].try_into().unwrap()) as usize;
                assert_eq!(data[8], 8, "bit depth");
                channels = match data[9] {
                    2 => 3,
                    6 => 4,
                    other => panic!("PNG colour type {other} is not RGB(A)"),
                };
                assert_eq!(data[12], 0, "interlaced PNG");
            }
            b"IDAT" => idat.extend_from_slice(data),
            _ => {}
        }
        i += 12 + n;
    }
    let mut raw = vec![];
    flate2::read::ZlibDecoder::new(&idat[..])
        .read_to_end(&mut raw)
        .expect("IDAT inflates");
    let stride = width * channels;
    assert_eq!(raw.len(), height * (stride + 1), "scanlines");
    let mut out: Vec<u8> = vec![0; height * stride];
    for y in 0..height {
        let filter = raw[y * (stride + 1)];
        let line = &raw[y * (stride + 1) + 1..(y + 1) * (stride + 1)];
        for x in 0..stride {
            let a = if x >= channels {
                out[y * stride + x - channels]
            } else {
                0
            } as i16;
            let b = if y > 0 { out[(y - 1) * stride + x] } else { 0 } as i16;
            let c = if x >= channels && y > 0 {
                out[(y - 1) * stride + x - channels]
            } else {
                0
            } as i16;
            let predicted = match filter {
                0 => 0,
                1 => a,
                2 => b,
                3 => (a + b) / 2,
                4 => {
                    let p = a + b - c;
                    let (pa, pb, pc) = ((p - a).abs(), (p - b).abs(), (p - c).abs());
                    if pa <= pb && pa <= pc {
                        a
                    } else if pb <= pc {
                        b
                    } else {
                        c
                    }
                }
                f => panic!("PNG filter {f}"),
            };
            out[y * stride + x] = line[x].wrapping_add(predicted as u8);
        }
    }
    let pixels = out.chunks(channels).map(|p| [p[0], p[1], p[2]]).collect();
    Png {
        width,
        height,
        pixels,
    }
}

// ---------------------------------------------------------------------------------
// The reference release with every option.

fn fixture(db: &TestDb) {
    db.exec(
        &std::fs::read_to_string(repo().join("bundle/one-roof-fixture/01_greenfield.sql")).unwrap(),
    );
}

/// The reference release for `db` in `dir`, with one of its two approvers' approvals
/// in `dir/one-approval` (both are in `dir/approvals`).
fn reference_with_one_approval(dir: &Path, db: &TestDb) -> Reference {
    let r = reference_release(dir, &db.name);
    std::fs::create_dir_all(dir.join("one-approval")).unwrap();
    for ext in ["approval", "approval.minisig"] {
        std::fs::copy(
            dir.join(format!("approvals/{}.{ext}", APPROVERS[0])),
            dir.join(format!("one-approval/{}.{ext}", APPROVERS[0])),
        )
        .unwrap();
    }
    r
}

/// A page's raw HTML holds no tag of the bundle's and no network address it would load.
fn assert_self_contained(html: &str) {
    assert!(html.starts_with("<!DOCTYPE html>"), "{}", &html[..200]);
    assert!(
        html.contains("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'"),
        "no CSP"
    );
    for forbidden in [
        "<script",
        "<img",
        "<link",
        "<iframe",
        "<object",
        "<embed",
        " src=\"",
        " href=\"http",
        " href=\"javascript",
    ] {
        assert!(!html.contains(forbidden), "{forbidden} in the page");
    }
    // Its style loads nothing either (text from outside is escaped: `<`, `"` and `'`
    // are entities, so none of this can come from the bundle).
    let style = html
        .split("<style>")
        .nth(1)
        .and_then(|s| s.split("</style>").next())
        .expect("the page's style");
    for forbidden in ["url(", "@import", "@font-face"] {
        assert!(!style.contains(forbidden), "{forbidden} in the style");
    }
    assert_eq!(
        html.matches("<style>").count(),
        1,
        "one style element, the page's own"
    );
}

#[test]
fn the_reference_dossier_with_every_option_renders_in_a_browser_and_loads_nothing() {
    let t = tempdir();
    let dir = t.path();
    let db = TestDb::new("dossier");
    fixture(&db);
    let r = reference_with_one_approval(dir, &db);
    let conn = db.conn();
    // A real rehearsal, saved as the operator saves it.
    let o = airlock(
        dir,
        &[
            "--json",
            "rehearse",
            &r.bundle,
            "--trust",
            &r.trust,
            "--db",
            &conn,
            "--param",
            REFERENCE_APR,
            "--approval",
            "one-approval",
        ],
    );
    expect_code(&o, 0);
    std::fs::write(dir.join("rehearsal.json"), &o.stdout).unwrap();

    let page = dir.join("dossier.html");
    let d = dossier(
        dir,
        &[
            &r.bundle,
            "--trust",
            &r.trust,
            "--db",
            &conn,
            "--rehearsal",
            "rehearsal.json",
            "--approval",
            "one-approval",
            "--param",
            REFERENCE_APR,
            "--out",
            "dossier.html",
        ],
    );
    // BLOCKED: the database gate is closed and one approval of two counts.
    assert_eq!(d.verdict, "BLOCKED");
    assert_eq!(d.facts.matrix.from, "database");
    let rows: Vec<(&str, &str)> = d
        .facts
        .matrix
        .checks
        .iter()
        .map(|c| (c.check.as_str(), c.verdict.as_str()))
        .collect();
    assert!(
        rows.contains(&("gates", "BLOCKED")) && rows.contains(&("preflight", "OK")),
        "{rows:?}"
    );
    let q = d.facts.approvals.as_ref().expect("the quorum");
    assert_eq!((q.threshold, q.counted, q.met), (2, 1, false));
    let ids: Vec<&str> = d.sections.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "status", "matrix", "changes", "locks", "destroys", "undo", "people", "hashes",
            "runbooks", "sources"
        ]
    );
    for source in [
        "bundle",
        "trust-store",
        "command-line",
        "database",
        "rehearsal",
        "approvals",
    ] {
        let s = d
            .sources
            .iter()
            .find(|s| s.id == source)
            .unwrap_or_else(|| panic!("no source {source}: {:?}", d.sources));
        if source != "command-line" {
            assert!(s.at.is_some(), "{source} has no time");
        }
    }
    let html = std::fs::read_to_string(&page).unwrap();
    assert_eq!(d.bytes as usize, html.len());
    assert_eq!(d.sha256, sha256_hex(html.as_bytes()));
    assert_eq!(d.out, "dossier.html");
    assert_self_contained(&html);

    renders_in_a_browser(&page, dir);
    prints(&page, dir);

    after_the_apply(dir, &db, &r);
}

/// The reference page in Chromium: nothing asked of the network; title, matrix with
/// plan's rows, quorum, lock timeline and round-trip proof in the rendered DOM, no
/// script; a screenshot of many colours, ink on most rows and the BLOCKED banner.
fn renders_in_a_browser(page: &Path, dir: &Path) {
    let seen = browse(page, dir);
    assert_eq!(
        seen.page_requests,
        Vec::<String>::new(),
        "the page asked the network"
    );
    let dom = &seen.dom;
    assert!(
        dom.contains("<title>Release dossier: one-roof-phase1 2026.06.03</title>"),
        "no title"
    );
    assert!(
        dom.contains("<section id=\"matrix\"><h2>2. GO / NO-GO</h2>"),
        "no matrix"
    );
    assert!(
        dom.contains("<code class=\"nb\">predicted-failures</code>"),
        "the matrix lacks plan's rows"
    );
    assert!(
        dom.contains("ratification: 1 of 2 approval(s)"),
        "no quorum"
    );
    assert!(
        dom.contains("<svg class=\"chart\"") && dom.contains("<rect "),
        "no lock timeline"
    );
    assert!(
        dom.contains("The round trip returned the clone to its entry fingerprint"),
        "no round-trip proof"
    );
    assert!(!dom.contains("<script"), "a script element");
    // Laid out: a screenshot of many colours, ink on most rows, and the BLOCKED banner.
    assert_eq!((seen.png.width, seen.png.height), (1200, 2400));
    assert!(
        seen.png.distinct_colours() > 200,
        "{} colours",
        seen.png.distinct_colours()
    );
    assert!(
        seen.png.rows_with_ink() > seen.png.height / 3,
        "{} rows with ink",
        seen.png.rows_with_ink()
    );
    assert!(
        seen.png.count_near([0xfd, 0xf1, 0xdc]) > 5_000,
        "no BLOCKED banner"
    );
}

/// The page prints: Letter pages (Chromium's default paper), nothing requested.
fn prints(page: &Path, dir: &Path) {
    let pdf = dir.join("dossier.pdf");
    let mut c = chromium(dir, &dir.join("net-pdf.json"));
    c.arg(format!("--print-to-pdf={}", pdf.display()))
        .arg("--no-pdf-header-footer")
        .arg(format!("file://{}", page.display()));
    run_browser(c, "print-to-pdf");
    let printed = std::fs::read(&pdf).expect("chromium printed the page");
    assert!(printed.starts_with(b"%PDF-"));
    let text = String::from_utf8_lossy(&printed);
    let pages = text.matches("/MediaBox [0 0 612 792]").count();
    assert!(pages > 3, "{pages} Letter page(s)");
    assert_eq!(
        page_requests(&dir.join("net-pdf.json")),
        Vec::<String>::new()
    );
}

/// After ratification and the apply: a page with the receipt says what ran; a receipt
/// given with another bundle is refused.
fn after_the_apply(dir: &Path, db: &TestDb, r: &Reference) {
    db.exec(&std::fs::read_to_string(repo().join("bundle/one-roof-fixture/approve.sql")).unwrap());
    let conn = db.conn();
    let o = airlock(
        dir,
        &[
            "apply",
            &r.bundle,
            "--trust",
            &r.trust,
            "--db",
            &conn,
            "--param",
            REFERENCE_APR,
            "--approval",
            &r.approvals,
            "--receipt",
            "apply.json",
            "--yes",
        ],
    );
    expect_code(&o, 0);
    let d = dossier(
        dir,
        &[
            &r.bundle,
            "--trust",
            &r.trust,
            "--db",
            &conn,
            "--rehearsal",
            "rehearsal.json",
            "--approval",
            "one-approval",
            "--receipt",
            "apply.json",
            "--param",
            REFERENCE_APR,
            "--out",
            "after.html",
        ],
    );
    // Applied: the page judges the past (issue 75), not a new apply today, and says
    // what ran.
    assert_eq!(d.verdict, "APPLIED");
    assert_eq!(d.facts.receipts.len(), 1);
    assert!(d.sections.iter().any(|s| s.id == "ran"));
    let html = std::fs::read_to_string(dir.join("after.html")).unwrap();
    assert!(
        html.contains("this page records what happened"),
        "no after-the-fact status"
    );
    assert!(
        html.contains("<h3 id=\"receipt-1\">apply 1: applied</h3>"),
        "no receipt"
    );
    let seen = browse(&dir.join("after.html"), dir);
    assert_eq!(seen.page_requests, Vec::<String>::new());
    assert!(seen.dom.contains("id=\"ran\""));

    // The receipt of this bundle is not a receipt of another.
    let other = mini_bundle(
        dir,
        &db.name,
        "other.tar.gz",
        "SELECT true AS ready",
        &[("t", "SELECT 1;", false)],
        "SELECT 1;",
    );
    let o = airlock(
        dir,
        &[
            "dossier",
            &other,
            "--trust",
            &r.trust,
            "--receipt",
            "apply.json",
            "--param",
            "code=x",
            "--out",
            "other.html",
        ],
    );
    expect_code(&o, 2);
    assert!(stderr(&o).contains("a receipt of bundle"), "{}", stderr(&o));
    assert!(!dir.join("other.html").exists());
    // A receipts directory: this bundle's receipts are read, another release's left out.
    std::fs::create_dir_all(dir.join("receipts")).unwrap();
    std::fs::copy(
        dir.join("apply.json"),
        dir.join("receipts/ref.apply-1.receipt.json"),
    )
    .unwrap();
    let mine = dossier(
        dir,
        &[
            &r.bundle,
            "--trust",
            &r.trust,
            "--receipt",
            "receipts",
            "--param",
            REFERENCE_APR,
            "--out",
            "dir.html",
        ],
    );
    assert_eq!(mine.facts.receipts.len(), 1);
    let theirs = dossier(
        dir,
        &[
            &other,
            "--trust",
            &r.trust,
            "--receipt",
            "receipts",
            "--param",
            "code=x",
            "--out",
            "other.html",
        ],
    );
    assert_eq!(theirs.facts.receipts.len(), 0);
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

// ---------------------------------------------------------------------------------
// A hostile bundle.

const XSS: &str = "<img src=x onerror=alert(1)>";
const BIDI: char = '\u{202e}';

/// A source whose every free text holds markup, a `javascript:` link and a bidi
/// override: description, version, tier name, SQL (comments, identifiers, strings),
/// param description, runbook title and body.
fn hostile_source(dir: &Path) -> PathBuf {
    let src = dir.join("hostile");
    let toml = format!(
        "[bundle]\nname = \"hostile\"\nversion = \"1.0<style>body{{display:none}}</style>{BIDI}\"\nsequence = 1\ndescription = \"</script><script>alert(1)</script>{XSS} {BIDI}evil\"\n\n[target]\ndatabase = \"nowhere\"\n\n[params.code]\nrequired = true\ndescription = \"<b onmouseover=alert(1)>the code</b>\"\n\n[[tier]]\nname = \"{XSS}{BIDI}\"\nfiles = [\"sql/t.sql\"]\n\n[preflight]\nfile = \"sql/probe.sql\"\nexpect = {{ n = \"0\" }}\n\n[rollback]\nfiles = [\"sql/r.sql\"]\n\n[[runbook]]\nfile = \"runbooks/evil.md\"\ntitle = \"<b>bold</b>{BIDI} title\"\naudience = \"<i>owner</i>\"\n"
    );
    write(&src.join("bundle.toml"), &toml);
    write(
        &src.join("sql/t.sql"),
        &format!("-- </script>{XSS} javascript:alert(1)\nCREATE TABLE \"<style>x</style>\" (i int);\nCOMMENT ON TABLE \"<style>x</style>\" IS '<script>alert(1)</script>{BIDI}';\n"),
    );
    write(
        &src.join("sql/r.sql"),
        "DROP TABLE IF EXISTS \"<style>x</style>\";\n",
    );
    write(
        &src.join("sql/probe.sql"),
        "SELECT 'n'::text AS key, '0'::text AS value -- </script><img src=x onerror=alert(1)>",
    );
    write(
        &src.join("runbooks/evil.md"),
        &format!("# Title {XSS}\n\n<script>alert(1)</script>\n\n[click me](javascript:alert(1)) and ![logo](http://evil.example/x.png)\n\n<a href=\"javascript:alert(2)\">raw link</a>\n\n<style>body{{background:red}}</style>\n\n<iframe src=\"http://evil.example/\"></iframe>\n\nText with {BIDI} an override.\n"),
    );
    src
}

#[test]
fn a_hostile_bundles_markup_links_and_bidi_overrides_are_text_in_the_browser() {
    let t = keyed_dir();
    let dir = t.path();
    let src = hostile_source(dir);
    pack(dir, &src, "rm.key", "hostile.tar.gz");
    let d = dossier(
        dir,
        &[
            "hostile.tar.gz",
            "--trust",
            "rm.pub",
            "--param",
            "code=x",
            "--out",
            "hostile.html",
        ],
    );
    assert_eq!(d.verdict, "NOT-ASKED");
    assert_eq!(d.facts.matrix.from, "verification");
    let html = std::fs::read_to_string(dir.join("hostile.html")).unwrap();
    assert_self_contained(&html);
    assert!(!html.contains(BIDI), "a raw bidi override in the page");
    assert!(
        html.contains("<span class=\"ctl\">\\u{202e}</span>"),
        "the override is not shown"
    );
    for text in [
        "&lt;img src=x onerror=alert(1)&gt;",
        "&lt;/script&gt;",
        "&lt;style&gt;x&lt;/style&gt;",
        "&lt;b onmouseover=alert(1)&gt;",
    ] {
        assert!(html.contains(text), "{text} is not on the page as text");
    }

    let seen = browse(&dir.join("hostile.html"), dir);
    let dom = &seen.dom;
    assert_eq!(
        seen.page_requests,
        Vec::<String>::new(),
        "the page asked the network"
    );
    for element in [
        "<img",
        "<script",
        "<iframe",
        "<a href=\"javascript",
        "<b onmouseover",
        "<b>bold",
    ] {
        assert!(
            !dom.contains(element),
            "{element} became an element:\n{dom}"
        );
    }
    assert_eq!(
        dom.matches("<style>").count(),
        1,
        "a style element from the bundle"
    );
    assert!(!dom.contains(" onerror=\""), "an attribute from the bundle");
    // As text: the markup, the links' addresses, and the override's escape.
    for text in [
        "&lt;img src=x onerror=alert(1)&gt;",
        "&lt;script&gt;alert(1)&lt;/script&gt;",
        "click me <span class=\"url\">⟨javascript:alert(1)⟩</span>",
        "&lt;a href=\"javascript:alert(2)\"&gt;raw link&lt;/a&gt;",
        "\\u{202e}",
    ] {
        assert!(
            dom.contains(text),
            "{text} is not text in the rendered page"
        );
    }
    assert!(!dom.contains(BIDI));
    // The page still lays out (the bundle's `display:none` is text, not style).
    assert!(
        seen.png.rows_with_ink() > seen.png.height / 3,
        "{} rows with ink",
        seen.png.rows_with_ink()
    );
}

#[test]
fn a_browser_check_sees_a_page_that_asks_the_network() {
    // The check above is worth something only if it sees a page's request: a page
    // with no CSP asking a closed local port is caught.
    let t = tempdir();
    let dir = t.path();
    let page = dir.join("asks.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><title>x</title><img src=\"http://127.0.0.1:9/x.png\">",
    )
    .unwrap();
    let seen = browse(&page, dir);
    assert!(
        seen.page_requests
            .iter()
            .any(|u| u == "http://127.0.0.1:9/x.png"),
        "{:?}",
        seen.page_requests
    );
}

// ---------------------------------------------------------------------------------
// Determinism, the digest, and what writes nothing.

/// A packed mini bundle (with [ratification]) and a trust store `trust` naming its
/// release key and an approver `carol`.
fn ratified_mini(dir: &Path) -> String {
    keygen(dir, "carol");
    let s = MiniSource::new(
        &dir.join("src"),
        "nowhere",
        "SELECT true AS ready",
        &[("one", "CREATE TABLE t (i int);", true)],
        "DROP TABLE t;",
    );
    let toml = s.dir.join("bundle.toml");
    let text = std::fs::read_to_string(&toml).unwrap() + "\n[ratification]\nthreshold = 1\n";
    std::fs::write(&toml, text).unwrap();
    pack(dir, &s.dir, "rm.key", "mini.tar.gz");
    let o = airlock(dir, &["trust", "add", "trust", "rm.pub", "--name", "Rita"]);
    expect_code(&o, 0);
    let o = airlock(
        dir,
        &[
            "trust",
            "add",
            "trust",
            "carol.pub",
            "--role",
            "approver",
            "--name",
            "Carol",
        ],
    );
    expect_code(&o, 0);
    "mini.tar.gz".into()
}

/// `approve` prints (and its `--json` carries) the digest of what it signs.
fn approve_prints_the_digest(dir: &Path, b: &str, digest: &str) {
    // approve prints the digest of what it signs: the page's.
    std::fs::create_dir_all(dir.join("approvals")).unwrap();
    let o = airlock(
        dir,
        &[
            "--json",
            "approve",
            b,
            "--trust",
            "trust",
            "--key",
            "carol.key",
            "--param",
            "code=APR-1",
            "--out",
            "approvals/carol.approval",
            "--yes",
        ],
    );
    expect_code(&o, 0);
    let approved = json(&o);
    validate("approve.schema.json", &approved);
    assert_eq!(approved["dossier_digest"].as_str(), Some(digest));
    let o = airlock(
        dir,
        &[
            "approve",
            b,
            "--trust",
            "trust",
            "--key",
            "carol.key",
            "--param",
            "code=APR-1",
            "--out",
            "approvals/again.approval",
            "--yes",
        ],
    );
    expect_code(&o, 0);
    assert!(
        stdout(&o).contains(&format!("dossier digest: {}", digest)),
        "{}",
        stdout(&o)
    );
}

#[test]
fn the_same_inputs_at_the_same_time_write_the_same_bytes_whose_digest_approve_prints() {
    let t = keyed_dir();
    let dir = t.path();
    let b = ratified_mini(dir);
    let at = "2030-01-01T00:00:00Z";
    let one = dossier(
        dir,
        &[
            &b,
            "--trust",
            "trust",
            "--param",
            "code=APR-1",
            "--at",
            at,
            "--out",
            "one.html",
        ],
    );
    let two = dossier(
        dir,
        &[
            &b,
            "--trust",
            "trust",
            "--param",
            "code=APR-1",
            "--at",
            at,
            "--out",
            "two.html",
        ],
    );
    let (a, b2) = (
        std::fs::read(dir.join("one.html")).unwrap(),
        std::fs::read(dir.join("two.html")).unwrap(),
    );
    assert!(a == b2, "two runs with the same inputs and --at differ");
    assert_eq!(one.sha256, two.sha256);
    assert_eq!(one.facts.generated_at, at);
    let page = String::from_utf8(a).unwrap();
    assert!(
        page.contains(&one.digest),
        "the page does not show its digest"
    );

    approve_prints_the_digest(dir, &b, &one.digest);
    // Other params, or a store that names someone else: another digest.
    let other = dossier(
        dir,
        &[
            &b,
            "--trust",
            "trust",
            "--param",
            "code=APR-2",
            "--at",
            at,
            "--out",
            "other.html",
        ],
    );
    assert_ne!(other.digest, one.digest);
    let o = airlock(
        dir,
        &["trust", "add", "renamed", "rm.pub", "--name", "Mallory"],
    );
    expect_code(&o, 0);
    let renamed = dossier(
        dir,
        &[
            &b,
            "--trust",
            "renamed",
            "--param",
            "code=APR-1",
            "--at",
            at,
            "--out",
            "renamed.html",
        ],
    );
    assert_ne!(renamed.digest, one.digest);
    // The approval now counts on the page (the quorum of one is met).
    let with = dossier(
        dir,
        &[
            &b,
            "--trust",
            "trust",
            "--param",
            "code=APR-1",
            "--approval",
            "approvals",
            "--out",
            "with.html",
        ],
    );
    let q = with.facts.approvals.expect("quorum");
    assert!(q.met && q.counted == 1);
}

#[test]
fn a_bundle_that_does_not_verify_gets_no_page() {
    let t = keyed_dir();
    let dir = t.path();
    let b = ratified_mini(dir);
    keygen(dir, "stranger");
    let o = airlock(
        dir,
        &[
            "dossier",
            &b,
            "--trust",
            "stranger.pub",
            "--param",
            "code=x",
            "--out",
            "page.html",
        ],
    );
    expect_code(&o, 4);
    assert!(!dir.join("page.html").exists());
    assert_eq!(leftovers(dir), Vec::<String>::new());
}

/// A rehearsal report of a bundle that is not this one (every field a report needs).
const OTHER_REHEARSAL: &str = r#"{"bundle_id":"0000000000000000000000000000000000000000000000000000000000000000","target":"x","clone":"y","clone_strategy":null,"clone_wal_bytes":null,"ok":true,"exit_code":0,"gate":null,"gates_assumed":false,"steps":[],"entry_fingerprint":null,"exit_fingerprint":null}"#;

#[test]
fn a_rehearsal_that_is_not_this_bundles_rehearse_report_is_refused_and_nothing_is_written() {
    let t = keyed_dir();
    let dir = t.path();
    let b = ratified_mini(dir);
    let o = airlock(dir, &["--json", "inspect", &b]);
    expect_code(&o, 0);
    std::fs::write(dir.join("inspect.json"), &o.stdout).unwrap();
    std::fs::write(dir.join("text.json"), "not json at all").unwrap();
    std::fs::write(dir.join("other.json"), OTHER_REHEARSAL).unwrap();
    let big = std::fs::File::create(dir.join("big.json")).unwrap();
    big.set_len((4 << 20) + 1).unwrap();
    for (file, says) in [
        ("inspect.json", "not a rehearsal report"),
        ("text.json", "not a rehearsal report"),
        ("other.json", "a rehearsal of bundle 00000000"),
        ("big.json", "over the cap"),
        ("missing.json", "missing.json"),
    ] {
        let o = airlock(
            dir,
            &[
                "dossier",
                &b,
                "--trust",
                "trust",
                "--param",
                "code=x",
                "--rehearsal",
                file,
                "--out",
                "page.html",
            ],
        );
        expect_code(&o, 2);
        assert!(stderr(&o).contains(says), "{file}: {}", stderr(&o));
        assert!(
            !dir.join("page.html").exists(),
            "{file}: a page was written"
        );
        assert_eq!(leftovers(dir), Vec::<String>::new());
    }
    let o = airlock(
        dir,
        &[
            "dossier",
            &b,
            "--trust",
            "trust",
            "--param",
            "code=x",
            "--receipt",
            "inspect.json",
            "--out",
            "page.html",
        ],
    );
    expect_code(&o, 2);
    assert!(stderr(&o).contains("not a receipt"), "{}", stderr(&o));
    assert!(!dir.join("page.html").exists());
}

#[test]
fn an_existing_page_is_kept_without_force_and_replaced_with_it() {
    let t = keyed_dir();
    let dir = t.path();
    let b = ratified_mini(dir);
    std::fs::write(dir.join("page.html"), "mine").unwrap();
    let o = airlock(
        dir,
        &[
            "dossier",
            &b,
            "--trust",
            "trust",
            "--param",
            "code=x",
            "--out",
            "page.html",
        ],
    );
    expect_code(&o, 2);
    assert!(
        stderr(&o).contains("page.html already exists"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("page.html")).unwrap(),
        "mine"
    );
    let d = dossier(
        dir,
        &[
            &b,
            "--trust",
            "trust",
            "--param",
            "code=x",
            "--out",
            "page.html",
            "--force",
        ],
    );
    let html = std::fs::read_to_string(dir.join("page.html")).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert_eq!(d.sha256, sha256_hex(html.as_bytes()));
    assert_mode(&dir.join("page.html"), 0o666 & !umask());
    assert_eq!(leftovers(dir), Vec::<String>::new());
}

#[test]
fn a_huge_bundle_gets_a_bounded_page_with_long_sql_and_runbooks_folded_to_size_and_hash() {
    let t = keyed_dir();
    let dir = t.path();
    let src = dir.join("huge");
    // One statement of ~100 KiB, as a data file holds them.
    let insert = |n: usize| {
        format!(
            "INSERT INTO big VALUES ({n}, '{}');\n",
            "x".repeat(100 << 10)
        )
    };
    let mut toml = String::from("[bundle]\nname = \"huge\"\nversion = \"1\"\nsequence = 1\n\n[target]\ndatabase = \"nowhere\"\n\n[preflight]\nfile = \"sql/probe.sql\"\nexpect = { n = \"0\" }\n\n");
    // A 3 MiB file (over what the page shows of one file), then 12 files of ~100 KiB
    // (each shown, until the page's SQL in all is spent).
    write(
        &src.join("sql/big.sql"),
        &(0..30).map(insert).collect::<String>(),
    );
    toml.push_str("[[tier]]\nname = \"big\"\nfiles = [\"sql/big.sql\"]\n\n");
    for i in 0..12 {
        write(&src.join(format!("sql/t{i:02}.sql")), &insert(i));
        toml.push_str(&format!(
            "[[tier]]\nname = \"t{i:02}\"\nfiles = [\"sql/t{i:02}.sql\"]\n\n"
        ));
    }
    toml.push_str("[rollback]\nfiles = [\"sql/r.sql\"]\n\n[[runbook]]\nfile = \"runbooks/long.md\"\ntitle = \"Long\"\n");
    write(&src.join("bundle.toml"), &toml);
    write(
        &src.join("sql/probe.sql"),
        "SELECT 'n'::text AS key, '0'::text AS value",
    );
    write(&src.join("sql/r.sql"), "DELETE FROM big;\n");
    write(
        &src.join("runbooks/long.md"),
        &"A line of a very long runbook.\n".repeat(20_000),
    );
    pack(dir, &src, "rm.key", "huge.tar.gz");

    let d = dossier(
        dir,
        &["huge.tar.gz", "--trust", "rm.pub", "--out", "huge.html"],
    );
    let html = std::fs::read_to_string(dir.join("huge.html")).unwrap();
    assert!(d.bytes < 6 << 20, "a page of {} bytes", d.bytes);
    let big = d.facts_file("sql/big.sql");
    assert!(
        html.contains(&format!("<code>sql/big.sql</code> ({} bytes, sha256 <code class=\"hash\">{}</code>): not shown, over the 128 KiB a file the page shows", big.0, big.1)),
        "the big file is not folded to its size and hash"
    );
    assert!(
        html.contains("not shown, the page shows at most 1 MiB of SQL in all"),
        "no file was folded by the page's bound"
    );
    assert!(
        html.contains("the page shows its first 262144 of 620000 bytes"),
        "the runbook is not cut"
    );
    // What the page shows of the big file is its statement kinds, all of them.
    assert!(
        html.contains("<td>adds rows</td><td><code>INSERT</code></td><td>30</td>"),
        "no summary of the big file"
    );
}

#[test]
fn a_no_go_release_gets_a_page_that_says_no_go_and_exit_0() {
    let t = keyed_dir();
    let dir = t.path();
    let b = ratified_mini(dir);
    // The bundle's target database does not exist: apply would stop at the connection.
    let d = dossier(
        dir,
        &[
            &b,
            "--trust",
            "trust",
            "--param",
            "code=x",
            "--db",
            "dbname=nowhere",
            "--out",
            "nogo.html",
        ],
    );
    assert_eq!(d.verdict, "NO-GO");
    assert_eq!(d.facts.matrix.from, "database");
    let database = d
        .facts
        .matrix
        .checks
        .iter()
        .find(|c| c.check == "database")
        .unwrap();
    assert_eq!(database.verdict, "FAIL");
    let html = std::fs::read_to_string(dir.join("nogo.html")).unwrap();
    assert!(
        html.contains("<div class=\"verdict v-nogo\"><strong>NO-GO: apply would refuse</strong>"),
        "no NO-GO banner"
    );
    // The approval asked for is still the reader's decision; the page says it cannot
    // make the release run yet.
    assert!(
        html.contains("No decision can make it run yet: apply would refuse"),
        "no NO-GO decision line"
    );
    assert!(
        html.contains("The decision asked of you: whether to approve this release"),
        "no decision"
    );
}
