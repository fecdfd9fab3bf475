//! A running airlock process whose output a test watches: airlock's own lines (not a
//! sleep) say when it is waiting.

use super::{code, stdout};
use std::io::{BufRead, Read};
use std::path::Path;
use std::process::{Child, Stdio};

/// Start airlock in `dir` with `args`, stdout and stderr piped, no environment
/// defaults.
pub fn spawn(dir: &Path, args: &[&str]) -> Child {
    super::airlock_command(dir, args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run airlock")
}

/// Read the child's stderr until a line contains `needle`; returns the reader and the
/// lines seen.
pub fn until_line(
    child: &mut Child,
    needle: &str,
) -> (std::io::BufReader<std::process::ChildStderr>, Vec<String>) {
    let mut r = std::io::BufReader::new(child.stderr.take().expect("stderr"));
    let mut seen = vec![];
    loop {
        let mut line = String::new();
        let n = r.read_line(&mut line).expect("read stderr");
        assert!(
            n > 0,
            "airlock ended before printing {needle:?}; stderr: {seen:#?}"
        );
        let hit = line.contains(needle);
        seen.push(line);
        if hit {
            return (r, seen);
        }
    }
}

/// Finish the child: exit code, stdout, and the rest of stderr.
pub fn finish(child: Child, mut err: impl Read) -> (i32, String, String) {
    let mut rest = String::new();
    err.read_to_string(&mut rest).expect("read stderr");
    let o = child.wait_with_output().expect("wait");
    (code(&o), stdout(&o), rest)
}
