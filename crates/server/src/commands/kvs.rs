//! The kvs framing's own meanings (see docs/protocol-kvs.md): in that framing
//! `GET` of a missing key is an error, `KEYS` takes a regular expression and
//! `RESET` empties the store. Other commands run as usual.

use magpie_protocol::resp::Args;

use super::Ctx;

/// Runs `args` if the kvs framing gives the command its own meaning; returns
/// false to let the regular table handle it.
pub fn execute(_ctx: &mut Ctx<'_, '_>, _args: Args<'_>) -> bool {
    false
}
