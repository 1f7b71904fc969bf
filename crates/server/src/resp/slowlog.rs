//! SLOWLOG GET / LEN / RESET / HELP: reading the slow log that every RESP
//! and memcached connection feeds (see [`crate::slowlog`]).

use magpie_protocol::resp::Args;

use super::handler::{dispatch_subcommand, subcommand, CommandSpec, Ctx};

/// The SLOWLOG container command.
pub const COMMANDS: &[CommandSpec] = &[CommandSpec {
    name: "slowlog",
    arity: -2,
    flags: &[],
    first_key: 0,
    last_key: 0,
    step: 0,
    group: "server",
    summary: "A container for slow log commands.",
    syntax: "",
    handler: slowlog,
}];

const ADMIN: &[&str] = &["admin", "loading", "stale"];

/// SLOWLOG's subcommands.
pub const SLOWLOG_SUBCOMMANDS: &[CommandSpec] = &[
    subcommand(
        "slowlog|get",
        "server",
        -2,
        ADMIN,
        "Returns the slow log's entries.",
        "[count]",
        get,
    ),
    subcommand(
        "slowlog|len",
        "server",
        2,
        ADMIN,
        "Returns the number of entries in the slow log.",
        "",
        len,
    ),
    subcommand(
        "slowlog|reset",
        "server",
        2,
        ADMIN,
        "Clears all entries from the slow log.",
        "",
        reset,
    ),
    subcommand(
        "slowlog|help",
        "server",
        2,
        &["loading", "stale"],
        "Show helpful text about the different subcommands",
        "",
        help,
    ),
];

fn slowlog(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    dispatch_subcommand(ctx, args, "slowlog", SLOWLOG_SUBCOMMANDS);
}

/// Newest first, `count` entries (10 by default, -1 for all), each
/// `[id, unix time, microseconds, [args...], "ip:port", client name]`.
fn get(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    if args.len() > 3 {
        let sub = super::handler::sanitize(&args.get(1)[..args.get(1).len().min(128)]);
        ctx.out.error(&format!(
            "ERR unknown subcommand or wrong number of arguments for '{sub}'. Try SLOWLOG HELP."
        ));
        return;
    }
    let count = if args.len() == 3 {
        match magpie_protocol::int::parse_i64(args.get(2)) {
            Some(-1) => usize::MAX,
            Some(n) if n >= 0 => n as usize,
            _ => {
                ctx.out
                    .error("ERR count should be greater than or equal to -1");
                return;
            }
        }
    } else {
        10
    };
    let entries = ctx.shared.slowlog.get(count);
    ctx.out.array(entries.len());
    for e in entries {
        ctx.out.array(6);
        ctx.out.integer(e.id as i64);
        ctx.out.integer(e.unix_secs as i64);
        ctx.out.integer(e.duration_us as i64);
        ctx.out.array(e.args.len());
        for a in &e.args {
            ctx.out.bulk(a);
        }
        ctx.out.bulk(e.peer.as_bytes());
        ctx.out.bulk(&e.name);
    }
}

fn len(ctx: &mut Ctx<'_, '_>, _args: Args<'_>) {
    ctx.out.integer(ctx.shared.slowlog.len() as i64);
}

fn reset(ctx: &mut Ctx<'_, '_>, _args: Args<'_>) {
    ctx.shared.slowlog.reset();
    ctx.out.ok();
}

/// Redis 7.0's SLOWLOG HELP text, line for line.
fn help(ctx: &mut Ctx<'_, '_>, _args: Args<'_>) {
    const LINES: &[&str] = &[
        "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GET [<count>]",
        "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
        "    Entries are made of:",
        "    id, timestamp, time in microseconds, arguments array, client IP and port,",
        "    client name",
        "LEN",
        "    Return the length of the slowlog.",
        "RESET",
        "    Reset the slowlog.",
        "HELP",
        "    Prints this help.",
    ];
    ctx.out.array(LINES.len());
    for line in LINES {
        ctx.out.simple(line);
    }
}
