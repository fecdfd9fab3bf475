//! The thin binary: parse, run, render, exit. Nothing else.

#![forbid(unsafe_code)]

use airlock::db::notices::{self, Notices};
use airlock::exit::Exit;
use airlock::report::{terminal_safe, ErrorDoc};
use airlock::style;
use clap::{CommandFactory, FromArgMatches};
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let mut project = match airlock::project::load(&args) {
        Ok(p) => p,
        Err(e) => return project_error(&args, e).into(),
    };
    let command = airlock::project::supplied_not_required(airlock::cli::Cli::command());
    let parsed = command
        .clone()
        .try_get_matches_from(&args)
        .and_then(|m| airlock::cli::Cli::from_arg_matches(&m).map(|cli| (cli, m)));
    let cli = match parsed {
        Ok((cli, matches)) => {
            if let Some(p) = project.as_mut() {
                p.narrow(&command, &matches);
            }
            cli
        }
        Err(e) => return argument_error(e).into(),
    };
    let json = cli.global.json;
    let quiet = cli.global.quiet;
    let colour = style::wanted(
        cli.global.color,
        std::io::stdout().is_terminal(),
        style::no_color_env(),
    );
    style::set_width(style::detect_width());
    // Free text is wrapped where a person reads it (a terminal); in a pipe each
    // message stays one line for grep and logs. Tables fit the width either way.
    let prose_out = std::io::stdout().is_terminal().then(style::width);
    let prose_err = std::io::stderr().is_terminal().then(style::width);
    if !json && !quiet {
        say_project(project.as_ref(), prose_err);
    }
    let result = airlock::run(cli);
    let notices = notices::take();
    let carried = airlock::commands::carried::take();
    // What the bundle's carried trust store did to this host's store: said first, on
    // stderr (a diagnostic), whatever the run's outcome.
    if let (false, false, Some(note)) = (json, quiet, &carried) {
        let _ = writeln!(
            std::io::stderr(),
            "{}",
            terminal_safe(&format!("trust: {}", note.line))
        );
    }
    let code = match result {
        Ok(outcome) => {
            if json {
                let mut doc = outcome.to_json();
                envelope(&mut doc, outcome.exit_code());
                attach_project(&mut doc, project.as_ref());
                attach(&mut doc, &notices);
                attach_carried(&mut doc, carried.as_ref());
                print_out(&serde_json::to_string_pretty(&doc).unwrap_or_default());
            } else if !quiet {
                let mut text = human(|| outcome.human(), colour, prose_out);
                if !notices.is_empty() {
                    text.push_str("\n\n");
                    text.push_str(&human(|| notices.human(), false, prose_out));
                }
                print_out(&text);
            } else if let Some(line) = outcome.quiet_line() {
                print_out(&terminal_safe(&line));
            }
            outcome.exit_code()
        }
        Err(err) => show_error(&err, json, quiet, prose_err, &notices, carried.as_ref()),
    };
    code.into()
}

/// An error as the run ends: under `--json` one error document on stdout (stderr
/// stays empty), else the notices, the error, the statement and the hint on stderr.
fn show_error(
    err: &airlock::Error,
    json: bool,
    quiet: bool,
    prose_err: Option<usize>,
    notices: &Notices,
    carried: Option<&airlock::commands::carried::CarriedNote>,
) -> Exit {
    let code = err.exit_code();
    if json {
        let doc = ErrorDoc {
            ok: false,
            exit_code: code,
            json_version: airlock::schema::JSON_VERSION,
            kind: err.kind().into(),
            refusal_kind: err.refusal_kind(),
            error: err.to_string(),
            hint: err.hint(),
            problems: err.problems(),
            drift: err.drift(),
            at: err.at(),
            committed: err.committed(),
            notices: notices.clone(),
            trust_update: carried.cloned(),
        };
        print_out(&serde_json::to_string_pretty(&doc).unwrap_or_default());
    }
    // Under --json the error document on stdout says it all; stderr stays
    // empty, so a script reads one document.
    if !json {
        let mut e = std::io::stderr().lock();
        let safe = |t: &str| {
            let t = terminal_safe(t);
            match prose_err {
                Some(w) => airlock::report::wrap_prose(&t, w),
                None => t.into_owned(),
            }
        };
        if !quiet && !notices.is_empty() {
            let _ = writeln!(e, "{}", safe(&notices.human()));
        }
        let _ = writeln!(e, "{}", safe(&format!("error: {err}")));
        if let Some(at) = err.at() {
            let _ = writeln!(e, "{}", safe(&format!("statement: {}", at.human())));
        }
        if let Some(h) = err.hint() {
            let _ = writeln!(e, "{}", safe(&format!("hint: {h}")));
        }
    }
    code
}

/// A report's human text, safe for a terminal, coloured when asked. It is rendered
/// plain first: a style marker in that text came from outside (the database, a
/// bundle), so that report is shown without colour and the marker escaped.
/// Wrapped at `wrap` columns when given (free text on a terminal).
fn human(render: impl Fn() -> String, colour: bool, wrap: Option<usize>) -> String {
    let fit = |t: std::borrow::Cow<'_, str>| match wrap {
        Some(w) => airlock::report::wrap_prose(&t, w),
        None => t.into_owned(),
    };
    let plain = render();
    if !colour || plain.chars().any(style::is_marker) {
        return fit(terminal_safe(&plain));
    }
    style::set_markers(true);
    let marked = render();
    style::set_markers(false);
    style::render(&fit(airlock::report::terminal_safe_styled(&marked)), true)
}

/// `ok` and `exit_code` in every JSON document, as error documents have them: `ok` is
/// true exactly when the exit code is 0. A document that states them already keeps its
/// own (they agree: both come from the same result).
fn envelope(doc: &mut serde_json::Value, code: Exit) {
    if let Some(obj) = doc.as_object_mut() {
        obj.entry("ok").or_insert(code.is_success().into());
        obj.entry("exit_code").or_insert(code.code().into());
        obj.insert("json_version".into(), airlock::schema::JSON_VERSION.into());
    }
}

/// The run's server notices, in every JSON document (an empty list when none).
fn attach(doc: &mut serde_json::Value, notices: &Notices) {
    if let (Some(obj), Ok(serde_json::Value::Object(extra))) =
        (doc.as_object_mut(), serde_json::to_value(notices))
    {
        obj.extend(extra);
    }
}

/// What the bundle's carried trust store did (`trust_update`), when it carried one.
fn attach_carried(
    doc: &mut serde_json::Value,
    note: Option<&airlock::commands::carried::CarriedNote>,
) {
    if let (Some(obj), Some(note)) = (doc.as_object_mut(), note) {
        if let Ok(v) = serde_json::to_value(note) {
            obj.insert("trust_update".into(), v);
        }
    }
}

/// The project file's settings this run used, on stderr (a diagnostic), wrapped at
/// spaces to `wrap` columns on a terminal as every other message there is.
fn say_project(project: Option<&airlock::project::Project>, wrap: Option<usize>) {
    if let Some(p) = project.filter(|p| !p.used.is_empty()) {
        let said = p.line();
        let line = terminal_safe(&said);
        let line = match wrap {
            Some(w) => airlock::report::wrap_prose(&line, w),
            None => line.into_owned(),
        };
        let _ = writeln!(std::io::stderr(), "{line}");
    }
}

/// Which project file's settings this run used (`project_config`), when one was read.
fn attach_project(doc: &mut serde_json::Value, project: Option<&airlock::project::Project>) {
    if let (Some(obj), Some(p)) = (doc.as_object_mut(), project) {
        if let Ok(v) = serde_json::to_value(p) {
            obj.insert("project_config".into(), v);
        }
    }
}

/// A project file that may not be used: nothing runs (exit 2), the reason on stderr,
/// and as the error document under `--json`.
fn project_error(args: &[std::ffi::OsString], e: airlock::project::ProjectError) -> Exit {
    let json = args
        .iter()
        .skip(1)
        .take_while(|a| *a != "--")
        .any(|a| a == "--json");
    let e = airlock::Error::from(e);
    let (error, hint, exit) = (e.to_string(), e.hint(), e.exit_code());
    if json {
        let doc = ErrorDoc {
            ok: false,
            exit_code: exit,
            json_version: airlock::schema::JSON_VERSION,
            kind: e.kind().into(),
            refusal_kind: None,
            error,
            hint,
            problems: vec![],
            drift: None,
            at: None,
            notices: Notices::default(),
            trust_update: None,
            committed: None,
        };
        print_out(&serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{}", terminal_safe(&format!("error: {error}")));
        if let Some(h) = hint {
            let _ = writeln!(err, "{}", terminal_safe(&format!("hint: {h}")));
        }
    }
    exit
}

/// A command line clap refused (or `--help`/`--version`). With `--json` anywhere before
/// `--`, the refusal is the usual error document on stdout (exit 2) as well.
fn argument_error(e: clap::Error) -> Exit {
    use clap::error::ErrorKind;
    let informational = matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion);
    let json = std::env::args_os()
        .skip(1)
        .take_while(|a| a != "--")
        .any(|a| a == "--json");
    if json && !informational {
        let rendered = e.render().to_string();
        let mut message = String::new();
        let mut hint = vec![];
        let mut in_error = false;
        for raw in rendered.lines() {
            let line = raw.trim();
            if line.is_empty() {
                in_error = false;
                continue;
            }
            if let Some(m) = line.strip_prefix("error: ") {
                message = m.to_string();
                in_error = true;
            } else if in_error && raw.starts_with(' ') {
                // The items of "the following required arguments were not provided:".
                let sep = if message.ends_with(':') { " " } else { ", " };
                message.push_str(sep);
                message.push_str(line);
            } else if let Some(t) = line.strip_prefix("tip: ") {
                hint.push(t.to_string());
            } else if let Some(usage) = line.strip_prefix("Usage: ") {
                hint.push(format!("usage: {usage}"));
            }
        }
        if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
            message = "a subcommand is required".into();
        } else if message.is_empty() {
            message = rendered
                .lines()
                .next()
                .unwrap_or("bad arguments")
                .to_string();
        }
        hint.push("airlock --help, or airlock SUBCOMMAND --help, lists the arguments".into());
        let doc = ErrorDoc {
            ok: false,
            exit_code: Exit::Usage,
            json_version: airlock::schema::JSON_VERSION,
            kind: "usage".into(),
            refusal_kind: None,
            error: message,
            hint: Some(hint.join("; ")),
            problems: vec![],
            drift: None,
            at: None,
            committed: None,
            notices: Notices::default(),
            trust_update: None,
        };
        print_out(&serde_json::to_string_pretty(&doc).unwrap_or_default());
        let _ = e.print();
        return Exit::Usage;
    }
    let _ = e.print();
    if informational {
        Exit::Success
    } else {
        Exit::Usage
    }
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
