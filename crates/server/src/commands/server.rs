//! The server command family.

use super::CommandSpec;

/// The server family's table.
pub const COMMANDS: &[CommandSpec] = &[];
