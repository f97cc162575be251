#![doc = include_str!("../README.md")]

pub mod child;
pub mod crash;
pub mod crc;
pub mod delay_fs;
pub mod fault;
pub mod faulty_fs;
pub mod history;
pub mod hook_fs;
pub mod kv_model;
pub mod model;
pub mod payload;
pub mod prefix;
pub mod rng;
pub mod sim_fs;
pub mod timeout;

pub use crash::CrashModel;
pub use crc::crc32_ieee;
pub use delay_fs::{Call, Delay, DelayFs, Delays};
pub use fault::{Fault, FaultKind, OpKind, Persistence, Target};
pub use faulty_fs::{faulty_options, AfterFailure, Counting, FaultyFs, FaultyFsHandle};
pub use hook_fs::{CallOn, HookFs, Hooks};
pub use model::{check_recovered, Issued, LogModel, Record, Recovered, Violation};
pub use prefix::{ids_in, PrefixViolation, WriterPrefixes};
pub use rng::Rng;
pub use sim_fs::state::{Change, Ino};
pub use sim_fs::SimFs;
pub use timeout::{run_with_timeout, StepError};
