//! Text the database supplies (gate reasons, probe values, notices, object names)
//! reaches the terminal bounded in size, so in time, and with bidi and other format
//! controls escaped like C0/C1 controls: a hostile gate cannot make the operator wait
//! minutes for a report, nor make a line read backwards.

mod util;
use util::*;

fn gate_bundle(db: &TestDb, dir: &std::path::Path, gate: &str) -> String {
    let tiers = [("structure", "CREATE TABLE t1(i int);", true)];
    mini_bundle(
        dir,
        &db.name,
        "b.tar.gz",
        gate,
        &tiers,
        "DROP TABLE IF EXISTS t1;",
    )
}

#[test]
fn a_four_megabyte_gate_reason_is_clipped_in_human_output() {
    let db = TestDb::new("huge_reason");
    let t = keyed_dir();
    let b = gate_bundle(
        &db,
        t.path(),
        "SELECT false AS ready, repeat('x', 4 * 1024 * 1024) AS reason",
    );
    let conn = db.conn();
    let o = airlock(t.path(), &["gate", &b, "--trust", "rm.pub", "--db", &conn]);
    expect_code(&o, 3);
    let out = stdout(&o);
    assert!(
        out.len() < 64 * 1024,
        "{} bytes of human output for one reason",
        out.len()
    );
    assert!(out.contains("bytes more)"), "{out}");
    // --json keeps the whole reason: it is a machine's to read, and it is linear.
    let o = airlock(
        t.path(),
        &["gate", &b, "--json", "--trust", "rm.pub", "--db", &conn],
    );
    expect_code(&o, 3);
    let reason = json(&o)["gates"][0]["reason"].as_str().unwrap().to_string();
    assert_eq!(reason.len(), 4 * 1024 * 1024);
}

#[test]
fn bidi_and_format_controls_from_the_database_are_escaped() {
    let db = TestDb::new("bidi");
    let t = keyed_dir();
    let b = gate_bundle(
        &db,
        t.path(),
        "SELECT false AS ready, E'approved by \\u202Eyddad\\u2066x\\u2069\\u200F\\u200B\\uFEFF' AS reason",
    );
    let conn = db.conn();
    let o = airlock(t.path(), &["gate", &b, "--trust", "rm.pub", "--db", &conn]);
    expect_code(&o, 3);
    let out = stdout(&o);
    for c in [
        '\u{202e}', '\u{2066}', '\u{2069}', '\u{200f}', '\u{200b}', '\u{feff}',
    ] {
        assert!(
            !out.contains(c),
            "U+{:04X} reached the terminal: {out:?}",
            c as u32
        );
    }
    assert!(out.contains("\\u{202e}yddad"), "{out}");
}
