//! The expire command family.

use super::CommandSpec;

/// The expire family's table.
pub const COMMANDS: &[CommandSpec] = &[];
