#![doc = include_str!("../README.md")]

pub mod crash;
pub mod delay_fs;
pub mod fault;
pub mod faulty_fs;
pub mod history;
pub mod model;
pub mod rng;
pub mod sim_fs;
pub mod timeout;

pub use crash::CrashModel;
pub use delay_fs::{Call, Delay, DelayFs};
pub use fault::{Fault, FaultKind, OpKind, Persistence, Target};
pub use faulty_fs::{faulty_options, FaultyFs, FaultyFsHandle};
pub use model::{check_recovered, Issued, LogModel, Record, Recovered, Violation};
pub use rng::Rng;
pub use sim_fs::state::{Change, Ino};
pub use sim_fs::SimFs;
pub use timeout::{run_with_timeout, StepError};
