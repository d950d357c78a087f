//! One module per subcommand.

pub mod decode;
pub mod export;
pub mod import;
pub mod list;
