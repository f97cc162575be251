#![doc = include_str!("../README.md")]

pub mod child;
pub mod crash;
pub mod crc;
pub mod delay_fs;
pub mod faulty_disk;
pub mod history;
pub mod hook_fs;
pub mod kv_model;
pub mod linearizability;
pub mod model;
pub mod payload;
pub mod pki;
pub mod prefix;
pub mod rng;
pub mod sim_fault;
pub mod sim_fs;
pub mod timeout;
pub mod trace_capture;

pub use crash::CrashModel;
pub use crc::crc32_ieee;
pub use delay_fs::{Delay, DelayFs, Delays};
pub use faulty_disk::{faulty_disk_options, AfterFailure, Counting, FaultyDisk, FaultyDiskFs};
pub use hook_fs::{Call, CallOn, HookFs, Hooks};
pub use model::{check_recovered, Issued, LogModel, Record, Recovered, Violation};
pub use prefix::{ids_in, PrefixViolation, WriterPrefixes};
pub use rng::Rng;
pub use sim_fault::{FaultKind, Persistence, SimFault, Target};
pub use sim_fs::state::{Change, Ino};
pub use sim_fs::SimFs;
pub use timeout::{run_with_timeout, StepError};
pub use trace_capture::TraceCapture;

/// The former name of [`FaultyDisk`], kept only for the unit test in
/// `crates/flashlog-cli/src/cmd/stats.rs`, which the change that renamed it could
/// not edit (and for branches written before it); remove it with that use.
#[doc(hidden)]
pub type FaultyFs = FaultyDisk;

/// The former name of [`faulty_disk_options`]; see [`FaultyFs`].
#[doc(hidden)]
pub use faulty_disk::faulty_disk_options as faulty_options;
