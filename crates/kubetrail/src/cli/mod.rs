//! One module per subcommand group, plus what they share.

pub mod agent;
pub mod common;
pub mod demo;
pub mod detect;
pub mod diff;
pub mod generate;
pub mod import;
pub mod install;
pub mod policy;
pub mod question;
pub mod rbac;
pub mod report;
pub mod serve;
pub mod table;
pub mod verify;
