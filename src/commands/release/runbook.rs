//! `airlock runbook`: list a verified bundle's runbooks, or print one.

use crate::cli::RunbookArgs;
use crate::commands::common::{judge_time, verdicts};
use crate::error::{Error, Result};
use crate::report::{Outcome, Report};
use crate::spec::RunbookSpec;
use crate::verified::VerifiedBundle;
use serde::Serialize;

#[derive(Serialize, schemars::JsonSchema)]
pub struct RunbookReport {
    pub bundle_id: String,
    pub runbooks: Vec<RunbookSpec>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shown: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl Report for RunbookReport {
    fn human(&self) -> String {
        match &self.text {
            Some(t) => t.trim_end().to_string(),
            None => {
                let mut s = String::from("runbooks in this bundle (verified):");
                for r in &self.runbooks {
                    s.push_str(&format!("\n  {:<28} {} [{}]", r.file, r.title, r.audience));
                }
                s.push_str("\n\nprint one with: airlock runbook BUNDLE --trust PATH NAME");
                s
            }
        }
    }
}

pub fn run(args: RunbookArgs) -> Result<Outcome> {
    let store =
        crate::commands::release::carried::load_trust_for_bundle(&args.trust.trust, &args.bundle)?;
    let vb = VerifiedBundle::load(&args.bundle, &store, judge_time(None)?, &verdicts())?;
    let runbooks = vb.manifest().runbook.clone();
    let mut report = RunbookReport {
        bundle_id: vb.id().into(),
        runbooks: runbooks.clone(),
        shown: None,
        text: None,
    };
    if let Some(name) = &args.name {
        let found = runbooks.iter().find(|r| {
            r.file == *name
                || r.audience == *name
                || std::path::Path::new(&r.file)
                    .file_name()
                    .and_then(|f| f.to_str())
                    == Some(name.as_str())
                || std::path::Path::new(&r.file)
                    .file_stem()
                    .and_then(|f| f.to_str())
                    == Some(name.as_str())
        });
        let Some(r) = found else {
            return Err(Error::usage(
                format!("no runbook named {name:?} in this bundle"),
                Some(format!(
                    "choose one of: {}",
                    runbooks
                        .iter()
                        .map(|r| r.file.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            ));
        };
        let text = String::from_utf8_lossy(&vb.read_all(&r.file).unwrap_or_default()).into_owned();
        report.shown = Some(r.file.clone());
        report.text = Some(text);
    }
    Ok(Box::new(report))
}
