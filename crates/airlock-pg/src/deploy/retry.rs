//! Lock waits that never become outages: a bundle statement waits for its lock at most
//! `--lock-timeout` (so it never queues the application's queries behind it for
//! long); then its transaction (an online step: the statement) rolls back and runs
//! again after a backoff, up to `--lock-retries` times, each time naming the sessions
//! that may hold the lock. Out of retries, the run is refused as lock-busy (exit 6)
//! with nothing of that transaction changed.

use crate::deploy::options::Options;
use crate::DbError;
use std::time::Duration;

/// The wait before attempt `attempt` (1-based) runs again: 0.5 s, 1 s, 2 s, … at most
/// 30 s.
pub(crate) fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(500u64.saturating_mul(1 << attempt.saturating_sub(1).min(6)))
        .min(Duration::from_secs(30))
}

/// Run `attempt` on `on` until it does not fail on a lock timeout, at most
/// `--lock-retries` more times, telling the observer each time; `client` gives the
/// session that names who holds locks.
pub(crate) fn retrying<S, T>(
    opts: &Options<'_>,
    on: &mut S,
    client: fn(&mut S) -> &mut postgres::Client,
    mut attempt: impl FnMut(&mut S) -> Result<T, DbError>,
) -> Result<T, DbError> {
    let mut tried = 0u32;
    loop {
        match attempt(on) {
            Err(DbError::LockTimeout {
                context, message, ..
            }) => {
                let in_the_way = crate::session::sessions::open_transactions(client(on));
                let held = in_the_way.describe();
                if tried >= opts.lock_retries {
                    return Err(DbError::LockTimeout {
                        context,
                        message: format!(
                            "{message}; tried {} time(s), each waiting at most --lock-timeout {} (--lock-retries {}); {held}",
                            tried + 1,
                            opts.lock_timeout,
                            opts.lock_retries
                        ),
                        in_the_way: Some(Box::new(in_the_way)),
                    });
                }
                tried += 1;
                let wait = backoff(tried);
                if let Some(o) = opts.observer {
                    o.retry(
                        tried,
                        opts.lock_retries,
                        wait,
                        &format!("{context}: {message}; {held}"),
                    );
                }
                std::thread::sleep(wait);
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_stops_at_thirty_seconds() {
        assert_eq!(backoff(1), Duration::from_millis(500));
        assert_eq!(backoff(2), Duration::from_secs(1));
        assert_eq!(backoff(3), Duration::from_secs(2));
        assert_eq!(backoff(7), Duration::from_secs(30));
        assert_eq!(backoff(40), Duration::from_secs(30));
    }
}
