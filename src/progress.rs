//! Progress for long byte-streaming jobs (pack, verify, extract of large bundles), and
//! the running tier and file of apply, rollback and rehearse ([`Deploy`]).
//!
//! Invariant: a bar is drawn only when the process allowed it (stderr is a terminal and
//! neither `--json` nor `--quiet` was given; decided once, in [`allow`]) and the job is
//! large enough to be worth watching. Otherwise every call is a no-op, so domain code
//! can report bytes without caring where, or whether, they are shown.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

static ALLOWED: AtomicBool = AtomicBool::new(false);
/// Notices for the operator on stderr (a lock retry): off under `--json`/`--quiet`.
static NOTICES: AtomicBool = AtomicBool::new(false);

/// Below this many bytes a job finishes before a bar would be worth drawing.
pub const MIN_BYTES: u64 = 32 << 20;

/// Called once by the command dispatcher with the global flags.
pub fn allow(json: bool, quiet: bool) {
    NOTICES.store(!json && !quiet, Ordering::Relaxed);
    ALLOWED.store(
        !json && !quiet && std::io::stderr().is_terminal(),
        Ordering::Relaxed,
    );
    if ALLOWED.load(Ordering::Relaxed) {
        watch_questions();
    }
}

/// `plan`'s long questions (the full question on a big table) on the terminal: a
/// spinner naming the table and what is asked, the time so far, the estimate and the
/// timeout; cleared when the question ends.
fn watch_questions() {
    let shown: std::sync::Mutex<Option<indicatif::ProgressBar>> = std::sync::Mutex::new(None);
    crate::db::predict::watch(Box::new(move |asking| {
        let Ok(mut shown) = shown.lock() else {
            return;
        };
        if let Some(old) = shown.take() {
            old.finish_and_clear();
        }
        let Some(a) = asking else {
            return;
        };
        let bar =
            indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                .expect("valid template"),
        );
        let about = a
            .estimate
            .map(|e| format!(", about {:.0} s", e.as_secs_f64().ceil()))
            .unwrap_or_default();
        bar.set_message(format!(
            "asking {}{about}, at most {} s (--predict-timeout)",
            a.what,
            a.timeout.as_secs_f64()
        ));
        bar.enable_steady_tick(std::time::Duration::from_millis(250));
        *shown = Some(bar);
    }));
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

impl airlock_bundle::archive::Meter for Progress {
    fn set_position(&self, consumed: u64) {
        Progress::set_position(self, consumed);
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The progress line of apply, rollback and rehearse on a terminal: the running tier
/// and file, the time since the first file started and the bytes of SQL run of the
/// total of the current transaction (or rollback).
/// A file runs as one message, so the count moves per file; the elapsed time ticks on
/// while a long statement runs. Drawn from the first file on (never over the
/// confirmation prompt), cleared when dropped.
pub struct Deploy {
    show: bool,
    bar: std::sync::OnceLock<indicatif::ProgressBar>,
    tier: std::sync::Mutex<String>,
    /// Files started and files in all, of the current transaction.
    files: std::sync::Mutex<(usize, usize)>,
}

impl Deploy {
    /// A progress line when allowed (stderr is a terminal, no `--json`/`--quiet`).
    pub fn new() -> Deploy {
        Deploy {
            show: ALLOWED.load(Ordering::Relaxed),
            bar: std::sync::OnceLock::new(),
            tier: std::sync::Mutex::new(String::new()),
            files: std::sync::Mutex::new((0, 0)),
        }
    }

    /// The line, drawn from the first `start` on.
    fn bar(&self) -> Option<&indicatif::ProgressBar> {
        self.bar.get()
    }

    fn bar_for(&self, bytes: u64) -> Option<&indicatif::ProgressBar> {
        if !self.show {
            return None;
        }
        Some(self.bar.get_or_init(|| {
            let bar = indicatif::ProgressBar::with_draw_target(
                Some(bytes),
                indicatif::ProgressDrawTarget::stderr(),
            );
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} {elapsed_precise} {prefix} {wide_msg} {bytes}/{total_bytes}",
                )
                .expect("valid template"),
            );
            bar.enable_steady_tick(std::time::Duration::from_millis(200));
            bar
        }))
    }
}

impl Default for Deploy {
    fn default() -> Self {
        Deploy::new()
    }
}

impl crate::db::apply::Observer for Deploy {
    /// Nothing is measured at a tier's edges here.
    fn tiers_share_messages(&self) -> bool {
        true
    }

    fn start(&self, event: &str, files: usize, bytes: u64) {
        if let Ok(mut t) = self.tier.lock() {
            t.clear();
        }
        if let Ok(mut f) = self.files.lock() {
            *f = (0, files);
        }
        if let Some(b) = self.bar_for(bytes) {
            b.set_prefix(event.to_string());
            b.set_length(bytes);
            b.set_position(0);
        }
    }
    fn tier(&self, index: usize, of: usize, name: &str) {
        if let Ok(mut t) = self.tier.lock() {
            *t = format!("tier {}/{of} {name}", index + 1);
        }
    }
    fn file(&self, path: &str, _bytes: u64) {
        if let Some(b) = self.bar() {
            let tier = self.tier.lock().map(|t| t.clone()).unwrap_or_default();
            let sep = if tier.is_empty() { "" } else { ": " };
            let (n, of) = self
                .files
                .lock()
                .map(|mut f| {
                    f.0 += 1;
                    *f
                })
                .unwrap_or_default();
            let line = format!("{tier}{sep}{path} (file {n}/{of})");
            b.set_message(crate::report::terminal_safe(&line).into_owned());
        }
    }
    fn file_done(&self, _path: &str, bytes: u64) {
        if let Some(b) = self.bar() {
            b.inc(bytes);
        }
    }
    fn step(&self, k: usize, of: usize, file: &str, line: usize) {
        if let Some(b) = self.bar() {
            let tier = self.tier.lock().map(|t| t.clone()).unwrap_or_default();
            let sep = if tier.is_empty() { "" } else { ": " };
            let line = format!("{tier}{sep}{file}:{line} (online step {k}/{of})");
            b.set_message(crate::report::terminal_safe(&line).into_owned());
        }
    }
    fn retry(&self, attempt: u32, of: u32, wait: std::time::Duration, why: &str) {
        if !NOTICES.load(Ordering::Relaxed) {
            return;
        }
        let line = format!(
            "{} lock busy, retry {attempt}/{of} in {:.1}s: {why}",
            chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ"),
            wait.as_secs_f64()
        );
        match self.bar() {
            Some(b) => b.println(line),
            None => eprintln!("{line}"),
        }
    }
    fn notice(&self, line: &str) {
        if !NOTICES.load(Ordering::Relaxed) {
            return;
        }
        let line = format!(
            "{} notice: {}",
            chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ"),
            crate::report::terminal_safe(line)
        );
        match self.bar() {
            Some(b) => b.println(line),
            None => eprintln!("{line}"),
        }
    }
}

impl Drop for Deploy {
    fn drop(&mut self) {
        if let Some(b) = self.bar.get() {
            b.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Deploy;
    use crate::db::apply::Observer;

    /// A deploy line that is shown, drawn nowhere.
    fn shown() -> Deploy {
        let d = Deploy {
            show: true,
            bar: std::sync::OnceLock::new(),
            tier: std::sync::Mutex::new(String::new()),
            files: std::sync::Mutex::new((0, 0)),
        };
        d.bar
            .set(indicatif::ProgressBar::hidden())
            .expect("a fresh line");
        d
    }

    /// An online tier after a transaction gets a line of its own (issue 48, finding 9:
    /// it kept the transaction's bytes and total, and never named the online tier).
    #[test]
    fn an_online_tier_after_a_transaction_has_its_own_line() {
        let d = shown();
        d.start("apply", 1, 100);
        d.tier(0, 2, "schema");
        d.file("sql/a.sql", 100);
        d.file_done("sql/a.sql", 100);
        let b = d.bar.get().unwrap();
        assert_eq!((b.position(), b.length()), (100, Some(100)));
        d.start("apply (online)", 1, 40);
        d.tier(1, 2, "index");
        d.step(1, 2, "sql/b.sql", 3);
        assert_eq!((b.position(), b.length()), (0, Some(40)));
        assert_eq!(b.prefix(), "apply (online)");
        assert_eq!(b.message(), "tier 2/2 index: sql/b.sql:3 (online step 1/2)");
    }
}
