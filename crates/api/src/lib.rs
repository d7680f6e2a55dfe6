//! kubetrail's HTTP API as both ends see it: the paths ([`paths`]), the JSON bodies
//! ([`wire`]), the typed filter written as query parameters ([`params`]), and a blocking
//! [`Client`] that the agent and the command line's `--server` mode use.
//!
//! `kubetrail serve` implements these paths; this crate holds no server code.

mod client;
pub mod params;
pub mod paths;
pub mod wire;

pub use client::{Client, ClientError, ClientOptions};
