//! OBJECT IDLETIME / FREQ / HELP: Redis's per-key introspection, as far as
//! magpie's engine keeps the facts it reports.
//!
//! IDLETIME is the seconds since the key was last read or written (the
//! engine's access clock, also behind memcached's meta `l`). FREQ answers
//! what Redis answers under a maxmemory policy other than LFU, which is
//! always magpie's case (it has no LFU policy). ENCODING names a hash's or a
//! set's encoding as Redis does (`listpack`, `intset`, `hashtable`: the
//! engine's representation is the same kind); for a string it answers what
//! Redis answers for a value SET stored (`int`, `embstr` up to 44 bytes,
//! `raw`), which is also what Redis reports after INCR; magpie does not
//! record how a string was written, so a string built by APPEND or SETRANGE,
//! which Redis reports as `raw`, gets the same answer as if SET had stored
//! it. REFCOUNT is not served (magpie shares no values). None of them counts
//! as an access (Redis looks the key up with `LOOKUP_NOTOUCH`); a lookup is
//! a keyspace hit or miss.
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
        "object|encoding",
        "Returns the internal encoding of a Redis object.",
        encoding,
    ),
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

/// The encoding name, or nil when the key does not exist.
fn encoding(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    let key = args.get(2);
    let shared = ctx.shared;
    let mut txn = shared.engine.txn(ctx.session.db, &[key], ctx.now);
    let name = match txn.collection_encoding(key) {
        Some(name) => Some(name),
        None => txn.peek(key).map(|v| string_encoding(v.value)),
    };
    drop(txn);
    ctx.count_read(name.is_some());
    match name {
        Some(name) => ctx.out.bulk(name.as_bytes()),
        None => ctx.out.null(),
    }
}

/// Redis's encoding of a string value as SET stores it (`tryObjectEncoding`).
fn string_encoding(value: &[u8]) -> &'static str {
    if value.len() <= 20 && magpie_protocol::int::parse_i64(value).is_some() {
        "int"
    } else if value.len() <= 44 {
        "embstr"
    } else {
        "raw"
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

/// Redis 7.0's OBJECT HELP, without the REFCOUNT entry magpie does not
/// serve.
fn help(ctx: &mut Ctx<'_, '_>, _args: Args<'_>) {
    const LINES: &[&str] = &[
        "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "ENCODING <key>",
        "    Return the kind of internal representation used in order to store the value",
        "    associated with a <key>.",
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
