//! Progress for long byte-streaming jobs (pack, verify, extract of large bundles).
//!
//! Invariant: a bar is drawn only when the process allowed it (stderr is a terminal and
//! neither `--json` nor `--quiet` was given; decided once, in [`allow`]) and the job is
//! large enough to be worth watching. Otherwise every call is a no-op, so domain code
//! can report bytes without caring where, or whether, they are shown.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

static ALLOWED: AtomicBool = AtomicBool::new(false);

/// Below this many bytes a job finishes before a bar would be worth drawing.
pub const MIN_BYTES: u64 = 32 << 20;

/// Called once by the command dispatcher with the global flags.
pub fn allow(json: bool, quiet: bool) {
    ALLOWED.store(
        !json && !quiet && std::io::stderr().is_terminal(),
        Ordering::Relaxed,
    );
}

/// A byte counter that may be shown as a bar on stderr. Not `Clone`: it is lent by
/// reference, so dropping it (on success or on an error path) clears the bar.
#[derive(Default)]
pub struct Progress(Option<indicatif::ProgressBar>);

impl Progress {
    /// Never shown.
    pub fn hidden() -> Progress {
        Progress(None)
    }

    /// A bar for `total` bytes labelled `what`, when allowed and `total` is large.
    pub fn bytes(total: u64, what: &str) -> Progress {
        if total < MIN_BYTES || !ALLOWED.load(Ordering::Relaxed) {
            return Progress(None);
        }
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(total),
            indicatif::ProgressDrawTarget::stderr(),
        );
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg:>10} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_message(what.to_string());
        Progress(Some(bar))
    }

    pub fn inc(&self, n: u64) {
        if let Some(b) = &self.0 {
            b.inc(n);
        }
    }

    /// Move the bar to `pos` bytes (for counters kept elsewhere).
    pub fn set_position(&self, pos: u64) {
        if let Some(b) = &self.0 {
            b.set_position(pos);
        }
    }

    /// `r`, counting the bytes read through it on this bar.
    pub fn reader<R: std::io::Read>(&self, r: R) -> Counted<'_, R> {
        Counted {
            inner: r,
            progress: self,
        }
    }

    /// Relabel the bar for the next phase of the same job.
    pub fn phase(&self, what: &str) {
        if let Some(b) = &self.0 {
            b.set_message(what.to_string());
        }
    }

    /// Remove the bar (the command's report follows on stdout).
    pub fn finish(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}

/// A reader whose bytes count on a [`Progress`].
pub struct Counted<'p, R> {
    inner: R,
    progress: &'p Progress,
}

impl<R: std::io::Read> std::io::Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.inc(n as u64);
        Ok(n)
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}
