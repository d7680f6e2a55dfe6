//! Reading the audit log files kube-apiserver's log backend writes: which files form a rotated
//! set and in which order to read them (lumberjack's naming), and their lines, plain or
//! gzip-compressed, with a truncated last line reported rather than lost.
//!
//! No network I/O here.

pub mod lines;
pub mod rotation;

pub use lines::{Line, LineReader};
pub use rotation::{LogFile, backup_name, order_paths, parse_backup_name};
