//! One module per subcommand.

pub mod classify;
pub mod decode;
pub mod export;
pub mod import;
pub mod list;
pub mod sensors;
