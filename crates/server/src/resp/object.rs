//! OBJECT IDLETIME / FREQ / HELP: Redis's per-key introspection, as far as
//! magpie's engine keeps the facts it reports.
//!
//! IDLETIME is the seconds since the key was last read or written (the
//! engine's access clock, also behind memcached's meta `l`). FREQ answers
//! what Redis answers under a maxmemory policy other than LFU, which is
//! always magpie's case (it has no LFU policy). ENCODING and REFCOUNT are not
//! served: Redis's answers depend on how each value was written (`int` /
//! `embstr` / `raw`, shared integers), which magpie does not record, and a
//! guess would mislead. None of them counts as an access (Redis looks the
//! key up with `LOOKUP_NOTOUCH`); a lookup is a keyspace hit or miss.
//!
//! One Redis answer is not reproduced: Redis stores the integers 0..9999 as
//! shared objects (without a maxmemory limit), so every key holding, say,
//! `1` reports the idle time of that one object, touched by an access to
//! any of them. magpie keeps the time per key, for every value.

use magpie_protocol::resp::Args;

use super::handler::{dispatch_subcommand, CommandSpec, Ctx};

/// The OBJECT container command.
pub const COMMANDS: &[CommandSpec] = &[CommandSpec {
    name: "object",
    arity: -2,
    flags: &[],
    first_key: 0,
    last_key: 0,
    step: 0,
    group: "generic",
    summary: "A container for object introspection commands",
    syntax: "",
    handler: object,
}];

/// A subcommand naming one key (argument 2), as Redis declares them.
const fn keyed(
    name: &'static str,
    summary: &'static str,
    handler: super::handler::Handler,
) -> CommandSpec {
    CommandSpec {
        name,
        arity: 3,
        flags: &["readonly"],
        first_key: 2,
        last_key: 2,
        step: 1,
        group: "generic",
        summary,
        syntax: "key",
        handler,
    }
}

/// OBJECT's subcommands (the ones magpie can answer exactly).
pub const OBJECT_SUBCOMMANDS: &[CommandSpec] = &[
    keyed(
        "object|freq",
        "Get the logarithmic access frequency counter of a Redis object",
        freq,
    ),
    super::handler::subcommand(
        "object|help",
        "generic",
        2,
        &["loading", "stale"],
        "Show helpful text about the different subcommands",
        "",
        help,
    ),
    keyed(
        "object|idletime",
        "Get the time since a Redis object was last accessed",
        idletime,
    ),
];

fn object(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    dispatch_subcommand(ctx, args, "object", OBJECT_SUBCOMMANDS);
}

/// Seconds since the key's last access, or nil when it does not exist.
fn idletime(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    let key = args.get(2);
    let idle = ctx
        .shared
        .engine
        .txn(ctx.session.db, &[key], ctx.now)
        .idle_time(key);
    ctx.count_read(idle.is_some());
    match idle {
        Some(secs) => ctx.out.integer(i64::from(secs)),
        None => ctx.out.null(),
    }
}

/// Nil for a missing key; otherwise Redis's error for a server whose
/// maxmemory policy is not LFU (magpie has no LFU policy).
fn freq(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    if !super::keys::looked_up(ctx, args.get(2)) {
        ctx.out.null();
        return;
    }
    ctx.out.error(
        "ERR An LFU maxmemory policy is not selected, access frequency not tracked. \
         Please note that when switching between policies at runtime LRU and LFU data \
         will take some time to adjust.",
    );
}

/// Redis 7.0's OBJECT HELP, without the ENCODING and REFCOUNT entries
/// magpie does not serve.
fn help(ctx: &mut Ctx<'_, '_>, _args: Args<'_>) {
    const LINES: &[&str] = &[
        "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "FREQ <key>",
        "    Return the access frequency index of the <key>. The returned integer is",
        "    proportional to the logarithm of the recent access frequency of the key.",
        "IDLETIME <key>",
        "    Return the idle time of the <key>, that is the approximated number of",
        "    seconds elapsed since the last access to the key.",
        "HELP",
        "    Prints this help.",
    ];
    ctx.out.array(LINES.len());
    for line in LINES {
        ctx.out.simple(line);
    }
}
