#![doc = include_str!("../README.md")]

pub mod fuzz;
pub mod memfs;
pub mod payload;
pub mod rng;

pub use memfs::MemFs;
pub use rng::Rng;
