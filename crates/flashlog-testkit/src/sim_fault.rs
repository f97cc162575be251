//! Simulated faults ([`SimFault`]): fail the Nth call of the simulated file system
//! ([`SimFs`](crate::SimFs)) with an I/O error, once or from then on, and freeze it
//! at a crash point. Faults on the real disk are [`FaultyDisk`](crate::FaultyDisk)'s.

use std::io;

use crate::hook_fs::Call;

/// Which calls a [`SimFault`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Every call of `Fs` and `FsFile`, reads included.
    AnyCall,
    /// Only calls that can change the disk ([`Call::is_mutation`]).
    Mutations,
    /// Only calls of one kind.
    Kind(Call),
}

impl Target {
    fn matches(self, kind: Call) -> bool {
        match self {
            Target::AnyCall => true,
            Target::Mutations => kind.is_mutation(),
            Target::Kind(wanted) => wanted == kind,
        }
    }
}

/// The error a [`SimFault`] injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// `EIO`: the call fails and changes nothing.
    Eio,
    /// `ENOSPC`: the call fails and changes nothing.
    Enospc,
    /// A write writes only the first half (rounded up) of its buffer and returns
    /// that count; callers must loop. Calls other than writes are not affected.
    ShortWrite,
    /// `EINTR`: the call fails, changes nothing, and would succeed if retried.
    Eintr,
}

impl FaultKind {
    /// Every kind, for sweeps.
    pub const ALL: [FaultKind; 4] = [
        FaultKind::Eio,
        FaultKind::Enospc,
        FaultKind::ShortWrite,
        FaultKind::Eintr,
    ];

    fn error(self) -> io::Error {
        match self {
            FaultKind::Eio => io::Error::from_raw_os_error(5),
            FaultKind::Enospc => io::Error::from_raw_os_error(28),
            FaultKind::Eintr => io::Error::from_raw_os_error(4),
            FaultKind::ShortWrite => io::Error::other("short write is not an error"),
        }
    }
}

/// Whether a fault strikes once or from then on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persistence {
    /// Only the Nth counted call fails.
    Once,
    /// The Nth counted call and every later one fail. For [`FaultKind::Eintr`] every
    /// later counted call is interrupted once and succeeds when retried (a signal
    /// storm): an endless `EINTR` would make any retrying caller spin forever.
    Forever,
}

/// A fault to inject: fail the `nth` (1-based) call that `target` counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimFault {
    /// Which calls are counted.
    pub target: Target,
    /// The first counted call that fails (1-based).
    pub nth: u64,
    /// The error.
    pub kind: FaultKind,
    /// Once or from then on.
    pub persistence: Persistence,
}

/// What a call may do after the fault check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Go ahead.
    Proceed,
    /// Write only part of the buffer.
    ShortWrite,
}

/// The fault state of one simulated file system.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    /// Calls so far, of any kind.
    pub calls: u64,
    /// Mutating calls that went ahead.
    pub mutations: u64,
    /// Writes that went ahead.
    pub writes: u64,
    /// After this many mutations every further mutation fails with `EIO` and changes
    /// nothing: the machine has (logically) lost power at that point.
    pub crash_after: Option<u64>,
    pub fault: Option<SimFault>,
    /// Calls the fault counted so far.
    pub(crate) counted: u64,
    /// Whether the fault struck already.
    pub struck: u64,
    /// For [`Persistence::Forever`] with `EINTR`: the last call was interrupted, the
    /// retry goes through.
    interrupted_last: bool,
}

impl Faults {
    /// Decides whether a call of `kind` goes ahead.
    pub(crate) fn check(&mut self, kind: Call) -> io::Result<Verdict> {
        self.calls += 1;
        if kind.is_mutation() {
            if let Some(limit) = self.crash_after {
                if self.mutations >= limit {
                    return Err(io::Error::from_raw_os_error(5));
                }
            }
        }
        let verdict = self.check_fault(kind)?;
        if kind.is_mutation() {
            self.mutations += 1;
        }
        if kind == Call::WriteAt {
            self.writes += 1;
        }
        Ok(verdict)
    }

    fn check_fault(&mut self, kind: Call) -> io::Result<Verdict> {
        let Some(fault) = self.fault else {
            return Ok(Verdict::Proceed);
        };
        if !fault.target.matches(kind) {
            return Ok(Verdict::Proceed);
        }
        if fault.kind == FaultKind::ShortWrite && kind != Call::WriteAt {
            return Ok(Verdict::Proceed);
        }
        self.counted += 1;
        let strikes = match fault.persistence {
            Persistence::Once => self.counted == fault.nth,
            Persistence::Forever => self.counted >= fault.nth,
        };
        if !strikes {
            return Ok(Verdict::Proceed);
        }
        if fault.kind == FaultKind::Eintr && fault.persistence == Persistence::Forever {
            self.interrupted_last = !self.interrupted_last;
            if !self.interrupted_last {
                return Ok(Verdict::Proceed);
            }
        }
        self.struck += 1;
        match fault.kind {
            FaultKind::ShortWrite => Ok(Verdict::ShortWrite),
            other => Err(other.error()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_fails_only_the_nth_counted_call() {
        let mut faults = Faults {
            fault: Some(SimFault {
                target: Target::Kind(Call::SyncData),
                nth: 2,
                kind: FaultKind::Eio,
                persistence: Persistence::Once,
            }),
            ..Faults::default()
        };
        assert!(faults.check(Call::SyncData).is_ok());
        assert!(faults.check(Call::WriteAt).is_ok());
        assert_eq!(
            faults.check(Call::SyncData).unwrap_err().raw_os_error(),
            Some(5)
        );
        assert!(faults.check(Call::SyncData).is_ok());
    }

    #[test]
    fn forever_eintr_lets_every_retry_through() {
        let mut faults = Faults {
            fault: Some(SimFault {
                target: Target::AnyCall,
                nth: 1,
                kind: FaultKind::Eintr,
                persistence: Persistence::Forever,
            }),
            ..Faults::default()
        };
        for _ in 0..3 {
            assert!(faults.check(Call::WriteAt).is_err());
            assert!(faults.check(Call::WriteAt).is_ok());
        }
    }

    #[test]
    fn a_crash_point_freezes_mutations_but_not_reads() {
        let mut faults = Faults {
            crash_after: Some(1),
            ..Faults::default()
        };
        assert!(faults.check(Call::WriteAt).is_ok());
        assert!(faults.check(Call::WriteAt).is_err());
        assert!(faults.check(Call::ReadAt).is_ok());
        assert_eq!(faults.mutations, 1);
    }
}
