//! Tamper evidence for the stored trail: the writer's Ed25519 signing key that signs each
//! link of the hash chain ([`kubetrail_store::chain`]), and [`verify`], which recomputes a
//! store's chains and names every event changed, deleted or inserted since it was stored.
//!
//! What verification proves: every event a link lists is stored as it was when it was
//! committed, nothing was added to a link, no link was removed from the middle of a chain or
//! changed, and (against a checkpoint kept elsewhere) the chain was not rewritten and re-signed
//! after the checkpoint. What it cannot prove: that the apiserver sent every event (an event
//! never received is in no link), or anything about events stored before signing began.

pub mod checkpoint;
mod key;
pub mod verify;

pub use checkpoint::{CHECKPOINT_KIND, Checkpoint, checkpoint};
pub use key::{KeyError, LoadedKey, PublicKey, SigningKey};
pub use verify::{Options, Problem, ProblemKind, Report, verify};
