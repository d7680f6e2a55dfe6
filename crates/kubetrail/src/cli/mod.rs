//! One module per subcommand group.

pub mod input;
pub mod policy;
