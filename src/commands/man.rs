//! `airlock man`: the manual page airlock(1) in roff, generated from the same clap
//! definitions as `--help`; `--out-dir` writes one page per subcommand as well.
//!
//! Invariant: nothing is written unless `--out-dir` names an existing directory.

use super::completions::GeneratedText;
use crate::cli::{Cli, ManArgs};
use crate::error::{Error, Result};
use crate::report::Outcome;
use clap::CommandFactory;

pub fn run(args: ManArgs) -> Result<Outcome> {
    let cmd = Cli::command();
    let Some(dir) = args.out_dir else {
        let mut buf = Vec::new();
        clap_mangen::Man::new(cmd)
            .render(&mut buf)
            .map_err(|e| Error::io("cannot render the manual page", e))?;
        return Ok(Box::new(GeneratedText {
            kind: "man".into(),
            name: "airlock.1".into(),
            files: vec![],
            text: String::from_utf8_lossy(&buf).into_owned(),
        }));
    };
    if !dir.is_dir() {
        return Err(Error::usage(
            format!("--out-dir {}: not a directory", dir.display()),
            Some("create it first".to_string()),
        ));
    }
    clap_mangen::generate_to(cmd, &dir).map_err(|e| {
        Error::io(
            format!("cannot write manual pages into {}", dir.display()),
            e,
        )
    })?;
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
