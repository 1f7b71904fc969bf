//! The keys command family.

use super::CommandSpec;

/// The keys family's table.
pub const COMMANDS: &[CommandSpec] = &[];
