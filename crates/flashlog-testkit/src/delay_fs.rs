//! A file system wrapper that sleeps before chosen calls, to widen race windows.
//!
//! A race between two threads of the log shows only when one thread's I/O lands in
//! the gap between another's steps. [`DelayFs`] sits in front of any [`Fs`] and,
//! per call, sleeps for a random time before forwarding it: reads, writes, syncs,
//! truncations, opens, renames, removals, listings. Which calls are delayed, how
//! often and how long is set per kind of call ([`Call`]) and may be limited to
//! threads with chosen names, e.g. only a reader thread's `read_at`, which turns a
//! rare interleaving into a certain one. Each thread draws its delays from its own
//! generator, seeded from the seed and the thread's name, so a named thread's
//! choices are reproducible. It can also cut writes short, as a slow disk does
//! ([`DelayFs::max_write`]). The forwarding itself is [`HookFs`]'s; this file
//! holds only the rules ([`Delays`]).

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::thread;
use std::time::Duration;

use flashlog_wal::fs::Fs;

pub use crate::hook_fs::Call;
use crate::hook_fs::{CallOn, HookFs, Hooks};
use crate::rng::Rng;

/// How one kind of call is delayed: with `probability`, a sleep of a uniformly
/// random length in `min..=max`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Delay {
    /// Chance that a call sleeps, from 0.0 (never) to 1.0 (always).
    pub probability: f64,
    /// Shortest sleep.
    pub min: Duration,
    /// Longest sleep.
    pub max: Duration,
}

impl Delay {
    /// Every call sleeps between zero and `max`.
    pub fn up_to(max: Duration) -> Delay {
        Delay {
            probability: 1.0,
            min: Duration::ZERO,
            max,
        }
    }

    /// Every call sleeps exactly `length`.
    pub fn exactly(length: Duration) -> Delay {
        Delay {
            probability: 1.0,
            min: length,
            max: length,
        }
    }

    /// The same delay, made only with `probability` (clamped to 0.0..=1.0).
    #[must_use]
    pub fn with_probability(mut self, probability: f64) -> Delay {
        self.probability = probability.clamp(0.0, 1.0);
        self
    }
}

/// A file system that forwards every call to another one, sleeping first when its
/// rules say so. Results and errors are the inner file system's, untouched.
///
/// Clones share the rules and counters: keep one to change or inspect them while
/// the log uses another.
///
/// # Examples
///
/// Delay only the reads made by the thread named `reader`:
///
/// ```
/// use std::sync::Arc;
/// use std::time::{Duration, Instant};
/// use flashlog_testkit::delay_fs::{Call, Delay, DelayFs};
/// use flashlog_wal::fs::StdFs;
/// use flashlog_wal::{Op, Options, Wal};
///
/// let dir = tempfile::tempdir()?;
/// let fs = DelayFs::new(Arc::new(StdFs), 7)
///     .delay(Call::ReadAt, Delay::exactly(Duration::from_millis(50)))
///     .only_threads(["reader"]);
/// let wal = Arc::new(Wal::open(dir.path(), Options::default().fs(Arc::new(fs.clone())))?);
/// wal.append(Op::Put, b"k", b"v")?;
///
/// let reader = Arc::clone(&wal);
/// let started = Instant::now();
/// let entry = std::thread::Builder::new()
///     .name("reader".into())
///     .spawn(move || reader.read(1))?
///     .join()
///     .expect("the reader does not panic")?;
/// assert_eq!(entry.key(), b"k");
/// assert!(started.elapsed() >= Duration::from_millis(50));
/// assert!(fs.delayed(Call::ReadAt) >= 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub type DelayFs = HookFs<Delays>;

/// The [`Hooks`] of a [`DelayFs`]: its rules, its per-thread generators and its
/// counters.
pub struct Delays {
    /// Tells this instance's generators apart in each thread's table.
    id: u64,
    seed: u64,
    rules: RwLock<Rules>,
    enabled: AtomicBool,
    calls: [AtomicU64; Call::ALL.len()],
    delayed: [AtomicU64; Call::ALL.len()],
    slept_nanos: AtomicU64,
}

#[derive(Debug, Default, Clone)]
struct Rules {
    delays: [Option<Delay>; Call::ALL.len()],
    /// Delay only calls made by threads with one of these names (`None`: all).
    threads: Option<Vec<String>>,
    /// Cut each `write_at` to at most this many bytes (`None`: whole writes).
    max_write: Option<usize>,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// This thread's generator for each `DelayFs`, by id.
    static GENERATORS: RefCell<HashMap<u64, Rng>> = RefCell::new(HashMap::new());
    /// Where this thread stands among the unnamed threads that made delayed calls.
    static UNNAMED: u64 = NEXT_UNNAMED.fetch_add(1, Ordering::Relaxed);
}

static NEXT_UNNAMED: AtomicU64 = AtomicU64::new(0);

impl HookFs<Delays> {
    /// A wrapper around `inner` that delays nothing yet; `seed` fixes the choices.
    pub fn new(inner: Arc<dyn Fs>, seed: u64) -> DelayFs {
        let delays = Delays {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            seed,
            rules: RwLock::new(Rules::default()),
            enabled: AtomicBool::new(true),
            calls: Default::default(),
            delayed: Default::default(),
            slept_nanos: AtomicU64::new(0),
        };
        HookFs::wrap(inner, Arc::new(delays))
    }

    /// A wrapper that delays every kind of call with `probability`, by up to `max`.
    pub fn everywhere(inner: Arc<dyn Fs>, seed: u64, probability: f64, max: Duration) -> DelayFs {
        let delay = Delay::up_to(max).with_probability(probability);
        Call::ALL
            .into_iter()
            .fold(DelayFs::new(inner, seed), |fs, call| fs.delay(call, delay))
    }

    /// Delays calls of kind `call` per `delay` (replacing its earlier rule). By
    /// default no call is delayed. Takes effect for every clone at once.
    #[must_use]
    pub fn delay(self, call: Call, delay: Delay) -> DelayFs {
        self.write_rules(|rules| rules.delays[call.index()] = Some(delay));
        self
    }

    /// Stops delaying calls of kind `call`.
    #[must_use]
    pub fn no_delay(self, call: Call) -> DelayFs {
        self.write_rules(|rules| rules.delays[call.index()] = None);
        self
    }

    /// Delays only calls made by threads with one of these names
    /// ([`thread::Builder::name`]); by default calls from every thread are.
    #[must_use]
    pub fn only_threads<S: Into<String>>(self, names: impl IntoIterator<Item = S>) -> DelayFs {
        let names = names.into_iter().map(Into::into).collect();
        self.write_rules(|rules| rules.threads = Some(names));
        self
    }

    /// Delays calls from every thread again (undoes [`DelayFs::only_threads`]).
    #[must_use]
    pub fn all_threads(self) -> DelayFs {
        self.write_rules(|rules| rules.threads = None);
        self
    }

    /// Makes each `write_at` write at most `bytes` (at least 1) and return that
    /// count, as a slow disk makes progress: the log writes the rest with further
    /// calls, as after any short write. With a [`Call::WriteAt`] delay this is a
    /// slow disk, on which a kill lands inside a write often and cuts it for real.
    /// Applies to every thread (not only those of [`DelayFs::only_threads`]).
    #[must_use]
    pub fn max_write(self, bytes: usize) -> DelayFs {
        self.write_rules(|rules| rules.max_write = Some(bytes.max(1)));
        self
    }

    /// Turns every delay on or off at once (on by default), e.g. to set a log up
    /// quickly before the part of a test that races.
    pub fn set_enabled(&self, enabled: bool) {
        self.hooks().enabled.store(enabled, Ordering::SeqCst);
    }

    /// Calls of kind `call` forwarded so far (delayed or not).
    pub fn calls(&self, call: Call) -> u64 {
        self.hooks().calls[call.index()].load(Ordering::Relaxed)
    }

    /// Calls of kind `call` that slept first.
    pub fn delayed(&self, call: Call) -> u64 {
        self.hooks().delayed[call.index()].load(Ordering::Relaxed)
    }

    /// Total time slept, all calls and threads together.
    pub fn slept(&self) -> Duration {
        Duration::from_nanos(self.hooks().slept_nanos.load(Ordering::Relaxed))
    }

    fn write_rules(&self, change: impl FnOnce(&mut Rules)) {
        let mut rules = self
            .hooks()
            .rules
            .write()
            .unwrap_or_else(|poison| poison.into_inner());
        change(&mut rules);
    }
}

impl Hooks for Delays {
    fn before(&self, on: &CallOn<'_>) -> io::Result<()> {
        self.sleep_before(on.call);
        Ok(())
    }

    fn write_len(&self, len: usize) -> usize {
        let rules = self
            .rules
            .read()
            .unwrap_or_else(|poison| poison.into_inner());
        rules.max_write.map_or(len, |max| len.min(max))
    }
}

impl Delays {
    /// Counts a call of kind `call` and sleeps first if the rules say so.
    fn sleep_before(&self, call: Call) {
        self.calls[call.index()].fetch_add(1, Ordering::Relaxed);
        if !self.enabled.load(Ordering::SeqCst) {
            return;
        }
        let current = thread::current();
        let (delay, allowed) = {
            let rules = self
                .rules
                .read()
                .unwrap_or_else(|poison| poison.into_inner());
            let allowed = match (&rules.threads, current.name()) {
                (None, _) => true,
                (Some(names), Some(name)) => names.iter().any(|allowed| allowed == name),
                (Some(_), None) => false,
            };
            (rules.delays[call.index()], allowed)
        };
        let Some(delay) = delay.filter(|_| allowed) else {
            return;
        };
        let length = GENERATORS.with(|generators| {
            let mut generators = generators.borrow_mut();
            let rng = generators
                .entry(self.id)
                .or_insert_with(|| Rng::new(thread_seed(self.seed, current.name())));
            choose(rng, delay)
        });
        if let Some(length) = length {
            self.delayed[call.index()].fetch_add(1, Ordering::Relaxed);
            let nanos = u64::try_from(length.as_nanos()).unwrap_or(u64::MAX);
            self.slept_nanos.fetch_add(nanos, Ordering::Relaxed);
            thread::sleep(length);
        }
    }
}

/// The seed of one thread's generator: the test's seed mixed with the thread's name
/// (FNV-1a, stable across runs and toolchains), or for an unnamed thread with the
/// order in which unnamed threads first made a delayed call.
fn thread_seed(seed: u64, name: Option<&str>) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    match name {
        Some(name) => {
            for byte in name.bytes() {
                hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
            }
        }
        None => hash ^= UNNAMED.with(|n| *n).wrapping_mul(0x9E37_79B9_7F4A_7C15),
    }
    seed ^ hash
}

/// Whether and how long one call sleeps under `delay`.
fn choose(rng: &mut Rng, delay: Delay) -> Option<Duration> {
    // 53 random bits make a uniform fraction in 0.0..1.0.
    let draw = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    if draw >= delay.probability {
        return None;
    }
    let min = u64::try_from(delay.min.as_nanos()).unwrap_or(u64::MAX);
    let max = u64::try_from(delay.max.as_nanos())
        .unwrap_or(u64::MAX)
        .max(min);
    // A fixed length draws nothing: the same seed gives the same delays as before.
    let length = if min == max { min } else { rng.range(min, max) };
    Some(Duration::from_nanos(length))
}

impl fmt::Debug for Delays {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rules = self
            .rules
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone();
        f.debug_struct("Delays")
            .field("seed", &self.seed)
            .field("rules", &rules)
            .field("enabled", &self.enabled.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Instant;

    use flashlog_wal::fs::OpenMode;

    use super::*;
    use crate::{Call, FaultKind, Persistence, SimFault, SimFs, Target};

    fn sim_with_file() -> (SimFs, DelayFs) {
        let sim = SimFs::new();
        sim.create_dir_all(Path::new("/d")).unwrap();
        let file = sim.open(Path::new("/d/f"), OpenMode::CreateNew).unwrap();
        file.write_at(b"hello", 0).unwrap();
        let fs = DelayFs::new(Arc::new(sim.clone()), 1);
        (sim, fs)
    }

    #[test]
    fn delays_the_chosen_calls_only() {
        let (_sim, fs) = sim_with_file();
        let fs = fs.delay(Call::ReadAt, Delay::exactly(Duration::from_millis(20)));
        let file = fs.open(Path::new("/d/f"), OpenMode::Read).unwrap();
        let started = Instant::now();
        let mut buf = [0u8; 5];
        assert_eq!(file.read_at(&mut buf, 0).unwrap(), 5);
        assert!(started.elapsed() >= Duration::from_millis(20));
        assert_eq!(file.len().unwrap(), 5);
        assert_eq!((fs.calls(Call::ReadAt), fs.delayed(Call::ReadAt)), (1, 1));
        assert_eq!((fs.calls(Call::Len), fs.delayed(Call::Len)), (1, 0));
        assert_eq!((fs.calls(Call::Open), fs.delayed(Call::Open)), (1, 0));
        assert!(fs.slept() >= Duration::from_millis(20));

        fs.set_enabled(false);
        file.read_at(&mut buf, 0).unwrap();
        assert_eq!(fs.delayed(Call::ReadAt), 1);
    }

    #[test]
    fn delays_only_the_named_threads() {
        let (_sim, fs) = sim_with_file();
        let fs = fs
            .delay(Call::ListDir, Delay::exactly(Duration::from_millis(1)))
            .only_threads(["slow"]);
        fs.list_dir(Path::new("/d")).unwrap();
        assert_eq!(fs.delayed(Call::ListDir), 0);
        let slow = fs.clone();
        thread::Builder::new()
            .name("slow".into())
            .spawn(move || slow.list_dir(Path::new("/d")).unwrap())
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(fs.delayed(Call::ListDir), 1);
    }

    #[test]
    fn forwards_results_and_errors_untouched() {
        let (sim, _) = sim_with_file();
        let fs = DelayFs::everywhere(Arc::new(sim.clone()), 3, 1.0, Duration::from_micros(50));
        let file = fs.open(Path::new("/d/f"), OpenMode::ReadWrite).unwrap();
        assert_eq!(file.write_at(b"J", 0).unwrap(), 1);
        file.sync_data().unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(file.read_at(&mut buf, 0).unwrap(), 5);
        assert_eq!(&buf[..5], b"Jello");
        file.set_len(2).unwrap();
        assert_eq!(file.len().unwrap(), 2);
        assert!(!file.is_empty().unwrap());
        fs.rename(Path::new("/d/f"), Path::new("/d/g")).unwrap();
        assert_eq!(fs.list_dir(Path::new("/d")).unwrap(), ["g"]);
        fs.sync_dir(Path::new("/d")).unwrap();

        let missing = fs.open(Path::new("/d/f"), OpenMode::Read).unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
        let missing = fs.remove_file(Path::new("/d/f")).unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
        sim.set_fault(Some(SimFault {
            target: Target::Kind(Call::WriteAt),
            nth: 1,
            kind: FaultKind::Eio,
            persistence: Persistence::Once,
        }));
        let failed = file.write_at(b"x", 0).unwrap_err();
        assert_eq!(failed.raw_os_error(), Some(5));
        fs.remove_file(Path::new("/d/g")).unwrap();
        assert!(fs.list_dir(Path::new("/d")).unwrap().is_empty());
        for call in [Call::ReadAt, Call::WriteAt, Call::Rename, Call::RemoveFile] {
            assert!(fs.delayed(call) >= 1, "{call:?} was not delayed");
        }
    }

    #[test]
    fn max_write_cuts_writes_short_and_the_log_writes_the_rest() {
        let sim = SimFs::new();
        let fs = DelayFs::new(Arc::new(sim.clone()), 1).max_write(5);
        let options = flashlog_wal::Options::default().fs(Arc::new(fs.clone()));
        let wal = flashlog_wal::Wal::open("/log", options).unwrap();
        let value = vec![7u8; 40];
        assert_eq!(
            wal.append(flashlog_wal::Op::Put, b"key", &value).unwrap(),
            1
        );
        assert_eq!(wal.read(1).unwrap().value(), value);
        // 13 + 3 + 40 bytes, 5 at a time.
        assert!(fs.calls(Call::WriteAt) >= 12, "{}", fs.calls(Call::WriteAt));
    }

    #[test]
    fn same_seed_and_thread_name_same_delays() {
        let delay = Delay::up_to(Duration::from_secs(1)).with_probability(0.5);
        let draws = |seed| {
            let mut rng = Rng::new(thread_seed(seed, Some("worker-3")));
            (0..50).map(|_| choose(&mut rng, delay)).collect::<Vec<_>>()
        };
        assert_eq!(draws(9), draws(9));
        assert_ne!(draws(9), draws(10));
        let taken = draws(9).iter().filter(|d| d.is_some()).count();
        assert!((10..=40).contains(&taken), "{taken} of 50 delayed");
    }
}
