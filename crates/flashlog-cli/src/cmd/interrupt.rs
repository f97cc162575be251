//! Ctrl-C for commands that must not stop in the middle of a write (`compact`)
//! or must clean up first (`bench`): the signal sets a flag the command checks
//! at safe points; a second Ctrl-C ends the process at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use signal_hook::consts::{SIGINT, SIGTERM};

/// Set once SIGINT (Ctrl-C) or SIGTERM arrived.
#[derive(Debug, Clone)]
pub struct Interrupt(Arc<AtomicBool>);

impl Interrupt {
    /// Catches SIGINT and SIGTERM from now on, for the rest of the process.
    pub fn catch() -> anyhow::Result<Interrupt> {
        let flag = Arc::new(AtomicBool::new(false));
        for signal in [SIGINT, SIGTERM] {
            // The first signal only sets the flag; one arriving with the flag
            // already set ends the process (exit 130) for a user who insists.
            signal_hook::flag::register_conditional_shutdown(
                signal,
                crate::EXIT_INTERRUPTED.into(),
                Arc::clone(&flag),
            )
            .and_then(|_| signal_hook::flag::register(signal, Arc::clone(&flag)))
            .context("cannot catch Ctrl-C")?;
        }
        Ok(Interrupt(flag))
    }

    /// Whether a signal arrived.
    pub fn raised(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}
