//! `airlock completions SHELL`: a completion script generated from the same clap
//! definitions as `--help`.
//!
//! Invariant: the script is complete on stdout; `--json` wraps the same text.

use crate::cli::{Cli, CompletionsArgs, TiersArgs};
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
    let text = with_tier_names(args.shell, String::from_utf8_lossy(&buf).into_owned());
    Ok(Box::new(GeneratedText {
        kind: "completions".into(),
        name: args.shell.to_string(),
        files: vec![],
        text,
    }))
}

/// `--through` completes the tier names of the bundle on the command line (the first
/// word naming an existing file), read by `airlock __tiers`; other shells keep no
/// completion for it.
fn with_tier_names(shell: clap_complete::Shell, script: String) -> String {
    use clap_complete::Shell;
    // The helper command is not offered as a subcommand.
    let script: String = script
        .replace(" __tiers help", " help")
        .lines()
        .filter(|l| !l.contains("-a \"__tiers\"") && !l.starts_with("'__tiers:"))
        .map(|l| format!("{l}\n"))
        .collect();
    match shell {
        Shell::Bash => {
            let lookup = r#"_airlock_tiers() {
    local w
    for w in "${COMP_WORDS[@]:2}"; do
        case "$w" in
            -*) ;;
            *) if [[ -f "$w" ]]; then airlock __tiers "$w" 2>/dev/null; return; fi ;;
        esac
    done
}

"#;
            let through = "--through)\n                    COMPREPLY=(\"${cur}\")";
            let tiers = "--through)\n                    COMPREPLY=( $(compgen -W \"$(_airlock_tiers)\" -- \"${cur}\") )";
            format!("{lookup}{}", script.replace(through, tiers))
        }
        Shell::Zsh => {
            let lookup = r#"_airlock_tiers() {
    local w
    for w in ${words[3,-1]}; do
        if [[ $w != -* && -f $w ]]; then
            compadd -- ${(f)"$(airlock __tiers $w 2>/dev/null)"}
            return
        fi
    done
}

"#;
            let script = script.replace("]:TIER:' \\\n", "]:TIER:_airlock_tiers' \\\n");
            // The function must exist before compdef's function runs: after the
            // `#compdef` line.
            match script.split_once('\n') {
                Some((first, rest)) => format!("{first}\n{lookup}{rest}"),
                None => script,
            }
        }
        Shell::Fish => {
            let lookup = "function __fish_airlock_tiers\n    for w in (commandline -opc)[3..-1]\n        if test -f \"$w\"\n            airlock __tiers \"$w\" 2>/dev/null\n            return\n        end\n    end\nend\n\n";
            let script = script
                .lines()
                .map(|l| {
                    if l.contains(" -l through ") && l.ends_with(" -r -f") {
                        format!("{l} -a '(__fish_airlock_tiers)'")
                    } else {
                        l.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join("\n");
            format!("{lookup}{script}\n")
        }
        _ => script,
    }
}

/// A bundle's tier names, one per line (`airlock __tiers`).
#[derive(Serialize, schemars::JsonSchema)]
pub struct TierNames {
    pub tiers: Vec<String>,
}

impl Report for TierNames {
    fn human(&self) -> String {
        self.tiers.join("\n")
    }
}

/// `airlock __tiers BUNDLE`: the tiers its manifest names (structure checked, nothing
/// trusted: shell completion only). A file that is not a bundle has none.
pub fn tiers(args: TiersArgs) -> Result<Outcome> {
    let opened = crate::archive::read_bundle(
        &args.bundle,
        crate::archive::Judge::StructureOnly,
        &crate::archive::Limits::default(),
        &mut crate::archive::Discard,
    );
    let tiers = opened
        .map(|o| o.manifest.tier.iter().map(|t| t.name.clone()).collect())
        .unwrap_or_default();
    Ok(Box::new(TierNames { tiers }))
}
