//! Shell completion of `--through` offers the tier names of the bundle on the command
//! line (issue 26), read by `airlock __tiers`, which is not offered as a subcommand.

mod util;
use util::*;

#[test]
fn bash_completes_through_with_the_bundles_tier_names() {
    let t = keyed_dir();
    let d = t.path();
    let b = mini_bundle(
        d,
        "x",
        "b.tar.gz",
        "SELECT true AS ready",
        &[
            ("schema", "CREATE TABLE app.a (i int);\n", false),
            ("data-load", "INSERT INTO app.a VALUES (1);\n", true),
        ],
        "DROP TABLE app.a;\n",
    );
    let o = airlock(d, &["completions", "bash"]);
    expect_code(&o, 0);
    let script = stdout(&o);
    assert!(!script.contains(" __tiers help"), "the helper is offered");
    write(&d.join("airlock.bash"), &script);
    let bin_dir = bin().parent().unwrap().to_path_buf();
    let complete = |words: &str, cword: usize, cur: &str, prev: &str| {
        let o = std::process::Command::new("bash")
            .current_dir(d)
            .env(
                "PATH",
                format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap()),
            )
            .arg("-c")
            .arg(format!(
                "source ./airlock.bash; COMP_WORDS=({words}); COMP_CWORD={cword}; \
                 _airlock airlock '{cur}' '{prev}'; printf '%s\\n' \"${{COMPREPLY[@]}}\""
            ))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        complete(
            &format!("airlock apply {b} --through ''"),
            4,
            "",
            "--through"
        ),
        ["schema", "data-load"]
    );
    assert_eq!(
        complete(
            &format!("airlock plan {b} --through d"),
            4,
            "d",
            "--through"
        ),
        ["data-load"]
    );
    // No bundle on the line: nothing to offer (never file names).
    assert_eq!(
        complete("airlock apply --through ''", 3, "", "--through"),
        Vec::<String>::new()
    );
    // The helper prints the names of any bundle, verified or not, and nothing for a
    // file that is not one.
    let o = airlock(d, &["__tiers", &b]);
    assert_eq!(stdout(&o).trim(), "schema\ndata-load");
    let o = airlock(d, &["__tiers", "airlock.bash"]);
    expect_code(&o, 0);
    assert_eq!(stdout(&o).trim(), "");
}
