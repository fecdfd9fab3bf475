//! The concurrent writer of `benches/online.sh`: inserts one row per statement into
//! `app.t` on its own connection, in a loop, timing each statement, while it runs one
//! command (an `airlock apply`, a `psql -c`); then prints what the writer saw during
//! that command as one tab-separated line:
//!
//!   wall_ms  rows  worst_ms  p99_ms  p50_ms  worst_at_ms
//!
//! wall_ms is the command's wall time; rows the inserts that completed while it ran;
//! the latencies are those of every insert that overlapped it (one waiting on a lock
//! when the command started or still waiting when it ended counts); worst_at_ms is when
//! the worst of them began, from the command's start. The writer has written a few
//! hundred rows before the command starts, so its connection and plan are warm.
//!
//!   online_writer CONNINFO COMMAND [ARGS...]
//!
//! Built with `cargo build --release --bench online_writer`; run by benches/online.sh.
//! Without arguments (`cargo bench` passes only `--bench`) it says so and does nothing.

use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Inserts the writer makes before the command starts.
const WARM_UP: u64 = 200;

/// One insert: when it started and how long it took, in microseconds since `base`.
struct Insert {
    start_us: u64,
    took_us: u64,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.len() < 2 {
        eprintln!("online_writer CONNINFO COMMAND [ARGS...] (run by benches/online.sh)");
        return ExitCode::SUCCESS;
    }
    match run(&args[0], &args[1..]) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("online_writer: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(conninfo: &str, command: &[String]) -> Result<String, String> {
    let mut client = postgres::Client::connect(conninfo, postgres::NoTls)
        .map_err(|e| format!("connect: {e}"))?;
    let insert = client
        .prepare("INSERT INTO app.t (a, b) VALUES ($1, $2)")
        .map_err(|e| format!("prepare: {e}"))?;
    let base = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let writer = {
        let (stop, done) = (stop.clone(), done.clone());
        std::thread::spawn(move || -> Result<Vec<Insert>, String> {
            let mut seen = Vec::with_capacity(1 << 20);
            let mut n: i32 = 0;
            while !stop.load(Ordering::Relaxed) {
                let start = Instant::now();
                client
                    .execute(&insert, &[&(n % 1000), &n])
                    .map_err(|e| format!("insert: {e}"))?;
                seen.push(Insert {
                    start_us: micros(start - base),
                    took_us: micros(start.elapsed()),
                });
                done.fetch_add(1, Ordering::Relaxed);
                n = n.wrapping_add(1);
            }
            Ok(seen)
        })
    };
    while done.load(Ordering::Relaxed) < WARM_UP && !writer.is_finished() {
        std::thread::sleep(Duration::from_millis(5));
    }
    let from = micros(base.elapsed());
    // The command's output goes to stderr: stdout carries only the summary line.
    let status = Command::new(&command[0])
        .args(&command[1..])
        .stdout(std::io::stderr())
        .status();
    let to = micros(base.elapsed());
    stop.store(true, Ordering::Relaxed);
    let seen = writer.join().map_err(|_| "the writer panicked")??;
    let status = status.map_err(|e| format!("{}: {e}", command[0]))?;
    if !status.success() {
        return Err(format!("{} failed: {status}", command.join(" ")));
    }
    Ok(summary(&seen, from, to))
}

fn micros(d: Duration) -> u64 {
    d.as_micros() as u64
}

/// The tab-separated line for the inserts seen while the command ran from `from` to `to`.
fn summary(seen: &[Insert], from: u64, to: u64) -> String {
    let rows = seen
        .iter()
        .filter(|i| i.start_us + i.took_us >= from && i.start_us + i.took_us <= to)
        .count();
    let during: Vec<&Insert> = seen
        .iter()
        .filter(|i| i.start_us <= to && i.start_us + i.took_us >= from)
        .collect();
    // When the worst insert began, from the command's start (negative: before it).
    let worst_at = during
        .iter()
        .max_by_key(|i| i.took_us)
        .map_or(0.0, |i| (i.start_us as f64 - from as f64) / 1000.0);
    let mut took: Vec<u64> = during.iter().map(|i| i.took_us).collect();
    took.sort_unstable();
    // Nearest rank: the smallest latency at or above which lie p% of the inserts.
    let rank = |p: f64| -> f64 {
        if took.is_empty() {
            return 0.0;
        }
        let k = ((p / 100.0) * took.len() as f64).ceil().max(1.0) as usize;
        took[k - 1] as f64 / 1000.0
    };
    format!(
        "{:.0}\t{rows}\t{:.1}\t{:.2}\t{:.2}\t{worst_at:.0}",
        (to - from) as f64 / 1000.0,
        rank(100.0),
        rank(99.0),
        rank(50.0)
    )
}
