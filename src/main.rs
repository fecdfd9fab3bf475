//! The thin binary: parse, run, render, exit. Nothing else.

use clap::Parser;
use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = airlock::cli::Cli::parse();
    let json = cli.global.json;
    let quiet = cli.global.quiet;
    let code = match airlock::run(cli) {
        Ok(outcome) => {
            let text = if json {
                serde_json::to_string_pretty(&outcome.to_json()).unwrap_or_default()
            } else {
                airlock::report::terminal_safe(&outcome.human()).into_owned()
            };
            if !quiet || json {
                print_out(&text);
            }
            outcome.exit_code()
        }
        Err(err) => {
            let code = err.exit_code();
            if json {
                let doc = airlock::report::ErrorDoc {
                    ok: false,
                    exit_code: code,
                    kind: err.kind().into(),
                    error: err.to_string(),
                    hint: err.hint(),
                };
                print_out(&serde_json::to_string_pretty(&doc).unwrap_or_default());
            }
            let mut e = std::io::stderr().lock();
            let safe = |t: &str| airlock::report::terminal_safe(t).into_owned();
            let _ = writeln!(e, "error: {}", safe(&err.to_string()));
            if let Some(h) = err.hint() {
                let _ = writeln!(e, "hint: {}", safe(&h));
            }
            code
        }
    };
    ExitCode::from(code)
}

/// Print to stdout; a closed pipe (`airlock ... | head`) ends quietly.
fn print_out(text: &str) {
    let mut out = std::io::stdout().lock();
    if text.is_empty() {
        return;
    }
    if writeln!(out, "{text}").and_then(|_| out.flush()).is_err() {
        std::process::exit(0);
    }
}
