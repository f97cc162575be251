//! The child-process harness: a test binary re-runs one of its own tests as a
//! child process that works on a directory and reports on its standard output;
//! the parent reads the lines, ends the child (SIGKILL after a time, or when it
//! has seen enough) and checks what the directory holds.
//!
//! One test is both sides: it starts with [`child_role`], which is `Some` only
//! in a child, and runs the child's work there (ending with [`work_until_killed`]);
//! otherwise it is the parent and starts children with [`ChildTest::spawn`].
//!
//! ```no_run
//! use std::time::Duration;
//! use flashlog_testkit::child::{child_role, parse_acks, work_until_killed, ChildTest, Say};
//!
//! #[test]
//! fn sigkill_cycles() {
//!     if let Some(role) = child_role() {
//!         let say = Say::stdout();
//!         // ... open the log in role.dir, start writers that append and report:
//!         say.line(format_args!("ack {} {}", role.arg, 1));
//!         work_until_killed();
//!     }
//!     let dir = tempfile::tempdir().unwrap();
//!     let lines = ChildTest::spawn("sigkill_cycles", dir.path(), 0).kill_after(Duration::from_millis(20));
//!     let acks = parse_acks(&lines);
//!     // ... reopen and check ...
//! }
//! ```

use std::ffi::OsString;
use std::fmt;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::Rng;

/// Set in a child: the directory it works on.
const DIR_ENV: &str = "FLASHLOG_CHILD_DIR";
/// Set in a child: the number its parent gave it (a first id, a cycle).
const ARG_ENV: &str = "FLASHLOG_CHILD_ARG";
/// A child that was not ended by then exits by itself (its parent is gone).
const CHILD_LIFETIME: Duration = Duration::from_secs(30);

/// What a child was started to do: set by [`ChildTest::spawn`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildRole {
    /// The directory to work on.
    pub dir: PathBuf,
    /// The number the parent passed.
    pub arg: u64,
}

/// `Some` in a child started by [`ChildTest::spawn`], `None` in the parent.
pub fn child_role() -> Option<ChildRole> {
    let dir = std::env::var_os(DIR_ENV)?;
    let arg = env_u64(ARG_ENV).unwrap_or(0);
    Some(ChildRole {
        dir: PathBuf::from(dir),
        arg,
    })
}

/// In a child, after starting its worker threads: waits for the parent to end
/// it, and exits with 0 after 30 s if it never does, so
/// that no child outlives a parent that died.
pub fn work_until_killed() -> ! {
    std::thread::sleep(CHILD_LIFETIME);
    std::process::exit(0);
}

/// In a child: the value of `result`, or a line on stderr and exit with `code`
/// (the parent then reports that the child exited by itself, with that line).
pub fn or_exit<T, E: fmt::Display>(result: Result<T, E>, what: &str, code: i32) -> T {
    result.unwrap_or_else(|err| {
        eprintln!("child: {what} failed: {err}");
        std::process::exit(code)
    })
}

/// A child's report channel: whole lines on its standard output, flushed at once,
/// shared by its threads.
#[derive(Debug)]
pub struct Say(Mutex<std::io::Stdout>);

impl Say {
    /// The standard output of this process.
    pub fn stdout() -> Say {
        Say(Mutex::new(std::io::stdout()))
    }

    /// Writes one line and flushes it. A failed write means the parent is gone:
    /// there is nobody to report to, so it is ignored.
    pub fn line(&self, line: fmt::Arguments<'_>) {
        let mut out = self.0.lock().unwrap_or_else(|poison| poison.into_inner());
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

/// A `u64` from the environment variable `name`, if it is set and a number.
pub fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// A run of kill cycles as the environment sets it: how many cycles (`$cycles_env`
/// if set, else the long or the short count, by `FLASHLOG_LONG`), the seed
/// (`FLASHLOG_KILL_SEED` replays a printed one), the run's generator and when it
/// began.
#[derive(Debug)]
pub struct KillRun {
    /// Cycles to run.
    pub cycles: u64,
    /// The seed of [`KillRun::rng`], to print.
    pub seed: u64,
    /// The generator of the run's choices (kill moments, fresh logs).
    pub rng: Rng,
    /// When the run began.
    pub began: Instant,
}

impl KillRun {
    /// The run's settings from the environment, with these defaults.
    pub fn from_env(cycles_env: &str, long: u64, short: u64, default_seed: u64) -> KillRun {
        let cycles = match (std::env::var_os("FLASHLOG_LONG"), env_u64(cycles_env)) {
            (_, Some(cycles)) => cycles,
            (Some(_), None) => long,
            (None, None) => short,
        };
        let seed = env_u64("FLASHLOG_KILL_SEED").unwrap_or(default_seed);
        KillRun {
            cycles,
            seed,
            rng: Rng::new(seed),
            began: Instant::now(),
        }
    }

    /// What a failure in `cycle` on `dir` names: `cycle N (seed S, dir D)`.
    pub fn context(&self, cycle: u64, dir: &Path) -> String {
        format!("cycle {cycle} (seed {}, dir {})", self.seed, dir.display())
    }
}

/// One `ack ID SEQ` line of a child: entry `id` was acknowledged at `seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    /// The id the entry was derived from ([`crate::payload`]).
    pub id: u64,
    /// The sequence number its append returned.
    pub seq: u64,
}

/// The acknowledgements among a child's lines: each `ack ID SEQ` line (further
/// fields ignored), in order; other lines are passed over.
///
/// ```
/// use flashlog_testkit::child::{parse_acks, Ack};
///
/// let lines = ["running 1 test", "ack 7 1", "ack 9 2 extra"].map(String::from);
/// assert_eq!(parse_acks(&lines), [Ack { id: 7, seq: 1 }, Ack { id: 9, seq: 2 }]);
/// ```
pub fn parse_acks(lines: &[String]) -> Vec<Ack> {
    lines
        .iter()
        .filter_map(|line| {
            let mut fields = line.strip_prefix("ack ")?.split(' ');
            let id = fields.next()?.parse().ok()?;
            let seq = fields.next()?.parse().ok()?;
            Some(Ack { id, seq })
        })
        .collect()
}

/// A child process running one test of this binary (see the module docs).
#[derive(Debug)]
pub struct ChildTest {
    child: std::process::Child,
    lines: Receiver<String>,
    stdout: JoinHandle<()>,
    stderr: JoinHandle<String>,
}

impl ChildTest {
    /// Runs `test` (its full name, e.g. `kill::sigkill_cycles`; ignored tests too)
    /// of this test binary as a child with [`child_role`] giving `dir` and `arg`.
    ///
    /// # Panics
    /// If the child cannot be started.
    pub fn spawn(test: &str, dir: &Path, arg: u64) -> ChildTest {
        let exe = std::env::current_exe().expect("the test binary's path");
        let mut child = Command::new(exe)
            .args([test, "--exact", "--include-ignored", "--nocapture"])
            .args(["--test-threads=1", "-q"])
            .env(DIR_ENV, OsString::from(dir))
            .env(ARG_ENV, arg.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the child");
        // The child has exec'd: it holds none of this process's files any more.
        let stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let (send, lines) = mpsc::channel();
        let stdout = std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            loop {
                let mut line = String::new();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    // Without its newline, the kill cut the line short: left out.
                    Ok(_) if !line.ends_with('\n') => break,
                    Ok(_) => {
                        line.pop();
                        if send.send(line).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        ChildTest {
            child,
            lines,
            stdout,
            stderr,
        }
    }

    /// The next complete line the child printed, waiting at most `timeout`;
    /// `Disconnected` once its standard output is closed.
    pub fn next_line(&self, timeout: Duration) -> Result<String, RecvTimeoutError> {
        self.lines.recv_timeout(timeout)
    }

    /// Lets the child run for `after`, kills it with SIGKILL and returns every
    /// complete line it printed (not yet taken by [`ChildTest::next_line`]).
    ///
    /// # Panics
    /// If the child exited by itself before the kill (with its stderr).
    pub fn kill_after(self, after: Duration) -> Vec<String> {
        std::thread::sleep(after);
        let (status, lines, errors) = self.kill();
        assert!(
            status.code().is_none(),
            "the child exited by itself ({status}) instead of being killed:\n{errors}"
        );
        lines
    }

    /// Kills the child with SIGKILL now (if it still runs) and returns how it
    /// ended, the complete lines not yet taken, and its stderr.
    pub fn kill(mut self) -> (std::process::ExitStatus, Vec<String>, String) {
        let _ = self.child.kill();
        let status = self.child.wait().expect("wait for the child");
        self.stdout.join().expect("stdout reader");
        let errors = self.stderr.join().expect("stderr reader");
        (status, self.lines.try_iter().collect(), errors)
    }
}
