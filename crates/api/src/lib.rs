//! kubetrail's HTTP API as both ends see it: the paths ([`paths`]), the JSON bodies
//! ([`wire`]), the typed filter written as query parameters ([`params`]), and, with the
//! `client` feature, a blocking `Client` that the agent and the command line's `--server`
//! mode use. Without it the crate does no I/O.
//!
//! `kubetrail serve` implements these paths; this crate holds no server code.

#[cfg(feature = "client")]
mod client;
pub mod params;
pub mod paths;
pub mod wire;

#[cfg(feature = "client")]
pub use client::{Client, ClientError, ClientOptions};
