//! The background scrubber ([`Options::scrub_every`](crate::Options::scrub_every)):
//! a thread that scrubs the log every interval until it closes, keeping the last
//! report for [`Wal::last_scrub`](crate::Wal::last_scrub).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::scrub::{scrub, ScrubReport};
use crate::state::Shared;
use crate::sync::thread::{self, JoinHandle};
use crate::sync::{Condvar, Mutex};

/// The last run's outcome.
pub(crate) type Outcome = Result<ScrubReport, Arc<Error>>;

/// What the scrubber thread and the log share.
#[derive(Debug)]
struct Signal {
    stopped: Mutex<bool>,
    wake: Condvar,
    last: Mutex<Option<Outcome>>,
}

impl Signal {
    /// Sleeps `duration` unless stopped first; returns whether stopped.
    fn sleep(&self, duration: Duration) -> bool {
        let deadline = Instant::now().checked_add(duration);
        let mut stopped = self
            .stopped
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        loop {
            if *stopped {
                return true;
            }
            let left = match deadline {
                Some(deadline) => deadline.saturating_duration_since(Instant::now()),
                None => Duration::MAX,
            };
            if left.is_zero() {
                return false;
            }
            stopped = self
                .wake
                .wait_timeout(stopped, left)
                .unwrap_or_else(|poison| poison.into_inner())
                .0;
        }
    }
}

/// The background scrubber of an open log (a thread only when the options ask
/// for one).
#[derive(Debug)]
pub(crate) struct Scrubber {
    signal: Arc<Signal>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Scrubber {
    /// Starts the scrubber the log's options ask for, if any.
    ///
    /// # Errors
    /// [`Error::Io`] if the thread cannot be started.
    pub(crate) fn start(shared: &Arc<Shared>) -> Result<Scrubber> {
        let signal = Arc::new(Signal {
            stopped: Mutex::new(false),
            wake: Condvar::new(),
            last: Mutex::new(None),
        });
        let thread = match shared.options.scrub {
            None => None,
            Some((interval, rate)) => {
                let dir = shared.dir.path().to_path_buf();
                let shared = Arc::clone(shared);
                let signal = Arc::clone(&signal);
                let spawned = thread::Builder::new()
                    .name("flashlog-scrubber".into())
                    .spawn(move || loop {
                        if signal.sleep(interval) {
                            return;
                        }
                        let outcome = scrub(&shared, rate, &|pause| signal.sleep(pause));
                        let stopped = outcome.as_ref().is_ok_and(|report| report.stopped)
                            || matches!(outcome, Err(Error::Closed));
                        *signal
                            .last
                            .lock()
                            .unwrap_or_else(|poison| poison.into_inner()) =
                            Some(outcome.map_err(Arc::new));
                        if stopped {
                            return;
                        }
                    });
                match spawned {
                    Ok(handle) => Some(handle),
                    Err(err) => return Err(Error::io("start scrubber thread for", dir, err)),
                }
            }
        };
        Ok(Scrubber {
            signal,
            thread: Mutex::new(thread),
        })
    }

    /// The last background scrub's outcome, if one finished.
    pub(crate) fn last(&self) -> Option<Outcome> {
        self.signal
            .last
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone()
    }

    /// Stops the thread (a scrub under way stops after its chunk) and joins it.
    pub(crate) fn stop(&self) {
        *self
            .signal
            .stopped
            .lock()
            .unwrap_or_else(|poison| poison.into_inner()) = true;
        self.signal.wake.notify_all();
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}
