//! The server command family: TIME, LASTSAVE and SHUTDOWN. INFO, COMMAND
//! and CONFIG, which Redis also files under "server", have files of their
//! own ([`super::info`], [`super::command`], [`super::config`]).

use magpie_protocol::resp::Args;

use super::handler::{is, CommandSpec, Ctx};
use super::info::{start_unix_secs, unix_now};

/// The server family's table.
pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "time",
        arity: 1,
        flags: &["loading", "stale", "fast"],
        first_key: 0,
        last_key: 0,
        step: 0,
        group: "server",
        summary: "Returns the server time.",
        syntax: "",
        handler: time,
    },
    CommandSpec {
        name: "lastsave",
        arity: 1,
        flags: &["loading", "stale", "fast"],
        first_key: 0,
        last_key: 0,
        step: 0,
        group: "server",
        summary: "Returns the Unix timestamp of the last successful save to disk (magpie never saves: its start time).",
        syntax: "",
        handler: lastsave,
    },
    CommandSpec {
        name: "shutdown",
        arity: -1,
        flags: &["admin", "noscript", "loading", "stale", "no_multi", "allow_busy"],
        first_key: 0,
        last_key: 0,
        step: 0,
        group: "server",
        summary: "Stops the server.",
        syntax: "[NOSAVE | SAVE] [NOW] [FORCE] [ABORT]",
        handler: shutdown,
    },
];

fn time(ctx: &mut Ctx<'_, '_>, _args: Args<'_>) {
    let now = unix_now();
    ctx.out.array(2);
    ctx.out.bulk_integer(now.as_secs() as i64);
    ctx.out.bulk_integer(now.subsec_micros() as i64);
}

fn lastsave(ctx: &mut Ctx<'_, '_>, _args: Args<'_>) {
    ctx.out.integer(start_unix_secs(ctx.shared) as i64);
}

fn shutdown(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    let (mut save, mut nosave, mut abort) = (false, false, false);
    for a in args.iter().skip(1) {
        if is(a, "save") {
            save = true;
        } else if is(a, "nosave") {
            nosave = true;
        } else if is(a, "abort") {
            abort = true;
        } else if !(is(a, "now") || is(a, "force")) {
            ctx.syntax_error();
            return;
        }
    }
    if (save && nosave) || (abort && args.len() > 2) {
        ctx.syntax_error();
        return;
    }
    if abort {
        ctx.out.error("ERR No shutdown in progress.");
        return;
    }
    if save {
        tracing::warn!("SHUTDOWN SAVE: magpie keeps no data on disk, nothing to save");
    }
    tracing::info!(client = ctx.session.id(), "SHUTDOWN requested by a client");
    ctx.shared.request_shutdown();
    // Redis closes the connection without replying when it shuts down
    ctx.session.close = true;
}
