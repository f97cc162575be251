#![doc = include_str!("../README.md")]

pub mod client;
pub mod error;
pub mod files;
pub mod http;
pub mod identity;
pub mod keys;
pub mod metrics;
pub mod network;
pub mod node;
pub mod serve;
pub mod snapshot;
pub mod state_machine;
pub mod tls;
pub mod transport;
pub mod types;

pub use client::ClusterClient;
pub use error::{Error, Result};
pub use node::{serve_until_signal, start, NodeConfig, RunningNode};
pub use types::{Command, Response, TypeConfig};
