//! `airlock man`: the manual page airlock(1) in roff, generated from the same clap
//! definitions as `--help`, with EXIT STATUS, ENVIRONMENT and EXAMPLES added
//! (`man_sections`); `--out-dir` writes one page per subcommand as well.
//!
//! Invariant: nothing is written unless `--out-dir` names an existing directory.

use super::completions::GeneratedText;
use crate::cli::{Cli, ManArgs};
use crate::error::{Error, Result};
use crate::report::Outcome;
use clap::CommandFactory;

pub fn run(args: ManArgs) -> Result<Outcome> {
    let cmd = Cli::command();
    let Some(dir) = args.dir.or(args.out) else {
        return Ok(Box::new(GeneratedText {
            kind: "man".into(),
            name: "airlock.1".into(),
            files: vec![],
            text: page(cmd, "airlock")?,
        }));
    };
    if !dir.is_dir() {
        return Err(Error::usage(
            format!("{}: not a directory", dir.display()),
            Some("create it first".to_string()),
        ));
    }
    write_pages(cmd, &dir)?;
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map_err(|e| Error::io(format!("cannot list {}", dir.display()), e))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("airlock") && n.ends_with(".1"))
        })
        .collect();
    files.sort();
    Ok(Box::new(GeneratedText {
        kind: "man".into(),
        name: "airlock.1".into(),
        files,
        text: String::new(),
    }))
}

/// One page: clap's sections, then ours.
fn page(cmd: clap::Command, command: &str) -> Result<String> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut buf)
        .map_err(|e| Error::io("cannot render the manual page", e))?;
    let mut text = String::from_utf8_lossy(&buf).into_owned();
    text.push_str(&super::man_sections::sections(command));
    Ok(text)
}

/// airlock.1 and airlock-COMMAND.1 for every visible subcommand, into `dir`.
fn write_pages(mut cmd: clap::Command, dir: &std::path::Path) -> Result<()> {
    cmd.build();
    let subs: Vec<clap::Command> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .cloned()
        .collect();
    for sub in subs {
        let file = format!("{}.1", sub.get_display_name().unwrap_or(sub.get_name()));
        let name = sub.get_name().to_string();
        write_page(dir, &file, &page(sub, &name)?)?;
    }
    write_page(dir, "airlock.1", &page(cmd, "airlock")?)
}

fn write_page(dir: &std::path::Path, file: &str, text: &str) -> Result<()> {
    let path = dir.join(file);
    std::fs::write(&path, text)
        .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))
}
