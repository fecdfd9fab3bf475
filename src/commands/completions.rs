//! `airlock completions SHELL`: a completion script generated from the same clap
//! definitions as `--help`.
//!
//! Invariant: the script is complete on stdout; `--json` wraps the same text.

use crate::cli::{Cli, CompletionsArgs};
use crate::error::Result;
use crate::report::{Outcome, Report};
use clap::CommandFactory;
use serde::Serialize;

/// Generated text (a completion script, a manual page) and what it is.
#[derive(Serialize, schemars::JsonSchema)]
pub struct GeneratedText {
    /// "completions" or "man".
    pub kind: String,
    /// The shell, or the page name.
    pub name: String,
    /// Files written (`man --out-dir`); empty when the text is printed.
    pub files: Vec<std::path::PathBuf>,
    pub text: String,
}

impl Report for GeneratedText {
    fn human(&self) -> String {
        if self.files.is_empty() {
            self.text.trim_end_matches('\n').to_string()
        } else {
            self.files
                .iter()
                .map(|f| format!("wrote {}", f.display()))
                .collect::<Vec<_>>()
                .join("\n")
        }
    }
}

pub fn run(args: CompletionsArgs) -> Result<Outcome> {
    let mut buf = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "airlock", &mut buf);
    Ok(Box::new(GeneratedText {
        kind: "completions".into(),
        name: args.shell.to_string(),
        files: vec![],
        text: String::from_utf8_lossy(&buf).into_owned(),
    }))
}
