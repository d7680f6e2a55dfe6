//! Reading the audit log files kube-apiserver's log backend writes: which files form a rotated
//! set and in which order to read them (lumberjack's naming), their lines, plain or
//! gzip-compressed, with a truncated last line reported rather than lost, and following a live
//! log across rotations with fingerprints and durable checkpoints.
//!
//! No network I/O here.

pub mod checkpoint;
pub mod follow;
pub mod lines;
pub mod rotation;

pub use checkpoint::{Checkpoint, CheckpointError, FileState};
pub use follow::{Chunk, FollowError, FollowOptions, Follower, fingerprint_of};
pub use lines::{Damage, Line, LineReader};
pub use rotation::{LogFile, backup_name, order_paths, parse_backup_name};
