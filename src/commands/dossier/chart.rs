//! The lock timeline: an inline SVG drawn from a rehearsal's measured holds
//! (`db::lock_impact::LockImpact`), one bar per lock, starting when its statement was
//! sent: the dark part while the statement ran, the light part while the lock stayed
//! held after it (until COMMIT in a transactional tier).
//!
//! Invariant: every length is a measured duration from the report, scaled; nothing is
//! estimated or reordered in time. The labels are text from outside (relation names),
//! escaped; numbers are the report's, whatever their size (the scale is the largest).

use super::html::esc_svg;
use crate::db::lock_impact::{HeldUntil, LockImpact};
use std::fmt::Write;

/// At most this many bars (the report lists at most 50).
const MAX_BARS: usize = 60;
const WIDTH: u64 = 760;
const LABEL: u64 = 300;
/// Room right of the bars for the held time.
const RIGHT: u64 = 130;
const ROW: u64 = 22;
const TOP: u64 = 28;

/// A round step for the axis: 1, 2 or 5 times a power of ten, about a fifth of `max`.
fn tick(max: u64) -> u64 {
    let rough = (max / 5).max(1);
    let mut p = 1u64;
    while p.saturating_mul(10) <= rough {
        p = p.saturating_mul(10);
    }
    [1, 2, 5, 10]
        .into_iter()
        .map(|m| p.saturating_mul(m))
        .find(|&t| t >= rough)
        .unwrap_or(p)
}

/// `1 234 ms` / `2.5 s` / `3 min`.
pub(crate) fn ms(n: u64) -> String {
    match n {
        n if n < 10_000 => format!("{n} ms"),
        n if n < 600_000 => format!("{:.1} s", n as f64 / 1000.0),
        n => format!("{:.1} min", n as f64 / 60_000.0),
    }
}

/// The colour of a lock mode: red when it blocks reads, orange when it blocks writes.
fn colour(mode: airlock_sql::LockMode) -> (&'static str, &'static str) {
    if mode.blocks_reads() {
        ("#b3261e", "#f2b8b5")
    } else if mode.blocks_writes() {
        ("#b86e00", "#f6d7a7")
    } else {
        ("#2e6b3f", "#b9dfc3")
    }
}

/// The chart as an `<svg>` element (empty when nothing was measured).
pub(crate) fn timeline(impact: &LockImpact) -> String {
    let locks: Vec<_> = impact.locks.iter().take(MAX_BARS).collect();
    if locks.is_empty() {
        return String::new();
    }
    let max = locks
        .iter()
        .map(|l| l.held_ms.max(l.statement_ms))
        .max()
        .unwrap_or(1)
        .max(1);
    let step = tick(max);
    let span = max.div_ceil(step).max(1).saturating_mul(step);
    let area = WIDTH - LABEL - RIGHT;
    let x = |t: u64| LABEL + ((t as u128 * area as u128) / span as u128) as u64;
    let height = TOP + ROW * locks.len() as u64 + 48;
    let mut s = format!(
        "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {height}\" role=\"img\" aria-label=\"lock timeline\">"
    );
    let mut t = 0;
    while t <= span {
        let at = x(t);
        let _ = write!(
            s,
            "<line x1=\"{at}\" y1=\"{}\" x2=\"{at}\" y2=\"{}\" stroke=\"#ccc\"/><text x=\"{at}\" y=\"18\" font-size=\"11\" text-anchor=\"middle\" fill=\"#555\">{}</text>",
            TOP - 4,
            height - 30,
            ms(t)
        );
        match t.checked_add(step) {
            Some(next) => t = next,
            None => break,
        }
    }
    for (i, l) in locks.iter().enumerate() {
        let y = TOP + ROW * i as u64;
        let (dark, light) = colour(l.mode);
        let label = format!("{} · {}", l.relation, l.mode.name());
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" font-size=\"12\" text-anchor=\"end\" fill=\"#222\">{}</text>",
            LABEL - 8,
            y + 14,
            esc_svg(&airlock_base::text::clip(&label, 44))
        );
        let held = l.held_ms.max(l.statement_ms);
        let _ = write!(
            s,
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"14\" fill=\"{light}\"/><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"14\" fill=\"{dark}\"/>",
            x(0),
            y + 3,
            (x(held) - x(0)).max(1),
            x(0),
            y + 3,
            (x(l.statement_ms) - x(0)).max(1)
        );
        let until = match l.held_until {
            HeldUntil::Commit => "until COMMIT",
            HeldUntil::StatementEnd => "while it ran",
        };
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" font-size=\"11\" fill=\"#333\">{} {until}</text>",
            x(held) + 4,
            y + 14,
            ms(l.held_ms)
        );
    }
    let _ = write!(
        s,
        "<text x=\"10\" y=\"{}\" font-size=\"11\" fill=\"#555\">dark: the statement ran · light: the lock stayed held after it</text><text x=\"10\" y=\"{}\" font-size=\"11\" fill=\"#555\">red: blocks reads and writes · orange: blocks writes · green: blocks neither</text></svg>",
        height - 22,
        height - 8
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_steps_are_round() {
        assert_eq!(tick(1), 1);
        assert_eq!(tick(9), 1);
        assert_eq!(tick(60), 20);
        assert_eq!(tick(1000), 200);
        let none = crate::db::lock_impact::LockImpact {
            locks: vec![],
            omitted: 0,
            error: None,
        };
        assert_eq!(timeline(&none), "");
        assert_eq!(ms(950), "950 ms");
        assert_eq!(ms(12_500), "12.5 s");
    }

    #[test]
    fn a_hostile_relation_name_stays_text_inside_the_svg_and_huge_times_scale() {
        use crate::db::lock_impact::{HeldLock, HeldUntil, LockImpact};
        let lock = HeldLock {
            tier: "t".into(),
            file: "f.sql".into(),
            line: 1,
            statement: "ALTER TABLE".into(),
            relation: "</svg><img src=x onerror=alert(1)>\u{202e}".into(),
            mode: airlock_sql::LockMode::AccessExclusive,
            size: crate::db::lock_plan::RelSize {
                bytes: 0,
                pages: 0,
                rows: 0,
            },
            held_until: HeldUntil::Commit,
            statement_ms: u64::MAX,
            held_ms: u64::MAX,
        };
        let svg = timeline(&LockImpact {
            locks: vec![lock],
            omitted: 0,
            error: None,
        });
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"), "{svg}");
        assert_eq!(svg.matches("</svg>").count(), 1, "{svg}");
        assert!(!svg.contains("<img") && !svg.contains("<span"), "{svg}");
        assert!(
            svg.contains("&lt;/svg&gt;&lt;img src=x onerror=alert(1)&gt;\\u{202e}"),
            "{svg}"
        );
    }
}
