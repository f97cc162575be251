//! Running a test step on its own thread with a deadline, so that a hang is a
//! reported failure instead of a stuck test run.

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// How a step run with [`run_with_timeout`] ended, other than by returning.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    /// The step panicked.
    #[error("panicked: {0}")]
    Panicked(String),
    /// The step did not finish in time (its thread is left behind).
    #[error("did not finish within {0:?}")]
    TimedOut(Duration),
}

/// Runs `step` on a new thread and waits at most `limit` for its result.
///
/// # Errors
/// [`StepError::Panicked`] if it panicked, [`StepError::TimedOut`] if it hung.
pub fn run_with_timeout<T: Send + 'static>(
    limit: Duration,
    step: impl FnOnce() -> T + Send + 'static,
) -> Result<T, StepError> {
    let (sender, receiver) = mpsc::channel();
    let spawned = thread::Builder::new()
        .name("flashlog-testkit-step".into())
        .spawn(move || {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(step));
            let _ = sender.send(outcome);
        });
    if let Err(err) = spawned {
        return Err(StepError::Panicked(format!("cannot spawn: {err}")));
    }
    match receiver.recv_timeout(limit) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(panic)) => {
            let text = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_string()))
                .unwrap_or_else(|| "non-string panic".into());
            Err(StepError::Panicked(text))
        }
        Err(_) => Err(StepError::TimedOut(limit)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_panics_and_hangs_are_told_apart() {
        let short = Duration::from_millis(50);
        assert_eq!(run_with_timeout(short, || 7), Ok(7));
        // Generous: printing a panic's backtrace takes a while in debug builds.
        let panicked = run_with_timeout(Duration::from_secs(20), || -> u8 { panic!("boom") });
        assert_eq!(panicked, Err(StepError::Panicked("boom".into())));
        assert_eq!(
            run_with_timeout(short, || thread::sleep(Duration::from_secs(1))),
            Err(StepError::TimedOut(short))
        );
    }
}
