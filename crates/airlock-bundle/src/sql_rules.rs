//! The SQL rules a bundle's files must pass before anything acts on them, judged once
//! and the same way by `verify` and by every command that loads a bundle to run it
//! (`gate`, `plan`, `apply`, `rehearse`, `rollback`, through [`crate::verified`]): each
//! file the spec names with a role (gates, probes, tier and rollback files), through
//! `airlock_sql`, which is also what `lint` and `pack` run on a source directory.
//!
//! Invariant: a bundle `verify` accepts is one the same airlock will run. A verdict
//! about SQL is a [`VerifyError::SqlRule`], never reported as tampering, and it is only
//! given for bytes whose integrity was proven first (a tampered file is reported as
//! tampered, whatever its SQL says).

use crate::archive::{Opened, Sink, VerifyError, SQL_RULE};
use crate::bundle_path::BundlePath;
use crate::manifest::Manifest;
use airlock_sql::{ScriptChecker, SqlProblem, SqlRole, MAX_QUERY_FILE};
use std::collections::BTreeMap;
use std::io::{self, Read};

/// The role of every SQL file a bundle's spec names.
#[derive(Debug, Default)]
pub struct Roles(BTreeMap<String, SqlRole>);

impl Roles {
    pub fn of(manifest: &Manifest) -> Roles {
        Roles(
            manifest
                .spec()
                .named_files()
                .into_iter()
                .filter_map(|(file, role, _)| Some((file, role?)))
                .collect(),
        )
    }

    pub fn get(&self, path: &str) -> Option<SqlRole> {
        self.0.get(path).copied()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, SqlRole)> {
        self.0.iter().map(|(f, r)| (f.as_str(), *r))
    }
}

/// One file's judgment, fed its bytes as they are read (scripts in bounded memory;
/// a gate or probe is one query, at most [`MAX_QUERY_FILE`] bytes, judged whole).
pub enum FileJudge<'f> {
    Script(Box<ScriptChecker<'f>>),
    Query {
        file: &'f str,
        role: SqlRole,
        bytes: Vec<u8>,
    },
}

impl<'f> FileJudge<'f> {
    pub fn new(file: &'f str, role: SqlRole) -> Self {
        match role {
            SqlRole::Script | SqlRole::Online => FileJudge::Script(Box::new(
                ScriptChecker::new(file).online(role == SqlRole::Online),
            )),
            SqlRole::Gate | SqlRole::Probe => FileJudge::Query {
                file,
                role,
                bytes: Vec::new(),
            },
        }
    }

    /// The next bytes of the file (any split).
    pub fn feed(&mut self, data: &[u8]) {
        match self {
            FileJudge::Script(c) => c.feed(data),
            FileJudge::Query { bytes, .. } => {
                let room = (MAX_QUERY_FILE as usize + 1).saturating_sub(bytes.len());
                bytes.extend_from_slice(&data[..data.len().min(room)]);
            }
        }
    }

    /// A problem already certain before the end of the file (a script's statements
    /// are judged as they end).
    pub fn first_problem(&self) -> Option<&SqlProblem> {
        match self {
            FileJudge::Script(c) => c.first_problem(),
            FileJudge::Query { .. } => None,
        }
    }

    /// The verdict at the end of the file: its first problem, if any.
    pub fn finish(self) -> Option<SqlProblem> {
        match self {
            FileJudge::Script(c) => c.finish().into_iter().next(),
            FileJudge::Query { file, role, bytes } => {
                airlock_sql::check_reader(file, &mut bytes.as_slice(), role)
                    .ok()?
                    .into_iter()
                    .next()
            }
        }
    }
}

/// The verdict on one SQL problem.
pub fn violated(p: &SqlProblem) -> VerifyError {
    VerifyError::SqlRule(p.to_string())
}

/// The same verdict as an I/O error of a sink, which the archive reader turns back
/// into [`VerifyError::SqlRule`].
pub fn violated_io(p: &SqlProblem) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("{SQL_RULE}{p}"))
}

/// Judge a whole file from `r`.
pub fn judge(file: &str, role: SqlRole, r: &mut dyn Read) -> Result<(), VerifyError> {
    let mut judge = FileJudge::new(file, role);
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = r
            .read(&mut buf)
            .map_err(|e| VerifyError::Write(format!("reading {file} back: {e}")))?;
        if n == 0 || judge.first_problem().is_some() {
            break;
        }
        judge.feed(&buf[..n]);
    }
    match judge.finish() {
        Some(p) => Err(violated(&p)),
        None => Ok(()),
    }
}

/// A sink that judges every file with a role as `inner` reads it (what it leaves
/// unread is read and judged too). The verdict is kept for [`Judged::verdict`], asked
/// once the whole bundle verified, so that integrity is always judged first.
pub struct Judged<'a> {
    inner: &'a mut dyn Sink,
    roles: Roles,
    problem: Option<SqlProblem>,
}

impl<'a> Judged<'a> {
    pub fn new(inner: &'a mut dyn Sink) -> Self {
        Judged {
            inner,
            roles: Roles::default(),
            problem: None,
        }
    }

    /// The SQL verdict on every file read.
    pub fn verdict(self) -> Result<(), VerifyError> {
        match &self.problem {
            Some(p) => Err(violated(p)),
            None => Ok(()),
        }
    }
}

/// Hands `data` on to a reader and to the judge.
struct Tee<'r, 'j, 'f> {
    data: &'r mut dyn Read,
    judge: &'j mut FileJudge<'f>,
}

impl Read for Tee<'_, '_, '_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.data.read(out)?;
        self.judge.feed(&out[..n]);
        Ok(n)
    }
}

impl Sink for Judged<'_> {
    fn begin(&mut self, opened: &Opened) -> Result<(), VerifyError> {
        self.roles = Roles::of(&opened.manifest);
        self.inner.begin(opened)
    }

    fn file(&mut self, path: &BundlePath, size: u64, data: &mut dyn Read) -> io::Result<()> {
        let role = match self.roles.get(path.as_str()) {
            Some(role) if self.problem.is_none() => role,
            _ => return self.inner.file(path, size, data),
        };
        let mut judge = FileJudge::new(path.as_str(), role);
        let mut tee = Tee {
            data,
            judge: &mut judge,
        };
        self.inner.file(path, size, &mut tee)?;
        io::copy(&mut tee, &mut io::sink())?;
        self.problem = judge.finish();
        Ok(())
    }
}
