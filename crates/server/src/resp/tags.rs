//! Tags (magpie's own commands, not Redis's): `TAG ADD / REMOVE / GET /
//! CARD / SCAN` and `INVALIDATE TAG / PREFIX`. `SET ... TAGS` is in
//! [`super::strings`]. The semantics are the engine's
//! ([`magpie_engine::tags`]); see docs/tags.md.
//!
//! Errors follow Redis's style: `ERR` and a sentence, the argument-count
//! and syntax errors Redis uses, `ERR invalid cursor` as SSCAN says it.

use magpie_engine::TagError;
use magpie_protocol::resp::Args;

use super::handler::{
    dispatch_subcommand, is, refusal, subcommand, write_help, CommandSpec, Ctx, Gates, Handler,
};

/// The TAG and INVALIDATE container commands.
pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "tag",
        arity: -2,
        flags: &[],
        first_key: 0,
        last_key: 0,
        step: 0,
        group: "tags",
        summary: "A container for commands on the tags of keys",
        syntax: "",
        handler: tag,
    },
    CommandSpec {
        name: "invalidate",
        arity: -2,
        flags: &[],
        first_key: 0,
        last_key: 0,
        step: 0,
        group: "tags",
        summary: "A container for invalidating classes of keys at once",
        syntax: "",
        handler: invalidate,
    },
];

/// A TAG subcommand naming one key (argument 2).
const fn keyed(
    name: &'static str,
    arity: i32,
    flags: &'static [&'static str],
    summary: &'static str,
    syntax: &'static str,
    handler: Handler,
) -> CommandSpec {
    CommandSpec {
        name,
        arity,
        flags,
        first_key: 2,
        last_key: 2,
        step: 1,
        group: "tags",
        summary,
        syntax,
        handler,
    }
}

/// TAG's subcommands.
pub const TAG_SUBCOMMANDS: &[CommandSpec] = &[
    keyed(
        "tag|add",
        -4,
        &["write", "denyoom"],
        "Adds tags to a key. Returns how many it did not have.",
        "key tag [tag ...]",
        add,
    ),
    subcommand(
        "tag|card",
        "tags",
        3,
        &["readonly", "fast"],
        "Returns the number of keys carrying a tag.",
        "tag",
        card,
    ),
    keyed(
        "tag|get",
        3,
        &["readonly"],
        "Returns the tags of a key, sorted.",
        "key",
        get,
    ),
    subcommand(
        "tag|help",
        "tags",
        2,
        &["loading", "stale"],
        "Show helpful text about the different subcommands",
        "",
        tag_help,
    ),
    keyed(
        "tag|remove",
        -4,
        &["write"],
        "Removes tags from a key. Returns how many it had.",
        "key tag [tag ...]",
        remove,
    ),
    subcommand(
        "tag|scan",
        "tags",
        -4,
        &["readonly"],
        "Incrementally iterates over the keys carrying a tag, optionally with their values.",
        "tag cursor [COUNT count] [WITHVALUES]",
        scan,
    ),
];

/// INVALIDATE's subcommands.
pub const INVALIDATE_SUBCOMMANDS: &[CommandSpec] = &[
    subcommand(
        "invalidate|help",
        "tags",
        2,
        &["loading", "stale"],
        "Show helpful text about the different subcommands",
        "",
        invalidate_help,
    ),
    subcommand(
        "invalidate|prefix",
        "tags",
        -3,
        &["write"],
        "Deletes every key starting with a prefix, at once. Returns the number of prefixes.",
        "prefix [prefix ...]",
        prefix,
    ),
    subcommand(
        "invalidate|tag",
        "tags",
        -3,
        &["write"],
        "Deletes every key carrying a tag, at once. Returns the number of keys deleted.",
        "tag [tag ...]",
        invalidate_tag,
    ),
];

fn tag(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    dispatch_subcommand(ctx, args, "tag", TAG_SUBCOMMANDS);
}

fn invalidate(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    dispatch_subcommand(ctx, args, "invalidate", INVALIDATE_SUBCOMMANDS);
}

/// The checks a container's subcommand meets before it runs, as a
/// top-level command with its flags would (the container has none): the
/// memory limit for `denyoom`, the log's health for `write`.
fn refused(ctx: &mut Ctx<'_, '_>, name: &str, flags: &[&str]) -> bool {
    match refusal(ctx, Gates::of(name, flags)) {
        Some(err) => {
            ctx.out.error(&err);
            true
        }
        None => false,
    }
}

/// Replies a refused tagged write in Redis's style.
pub fn tag_error(ctx: &mut Ctx<'_, '_>, e: TagError) {
    if e == TagError::WrongType {
        // Redis's error code, not ERR
        ctx.out.error(&e.to_string());
        return;
    }
    ctx.out.error(&format!("ERR {e}"));
}

/// The arguments from index `from` on.
fn rest<'a>(args: &Args<'a>, from: usize) -> Vec<&'a [u8]> {
    (from..args.len()).map(|i| args.get(i)).collect()
}

fn add(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    if refused(ctx, "tag|add", &["write", "denyoom"]) {
        return;
    }
    let key = args.get(2);
    let tags = rest(&args, 3);
    let r = ctx
        .shared
        .engine
        .txn(ctx.session.db, &[key], ctx.now)
        .tag_add(key, &tags);
    match r {
        Ok(n) => ctx.out.integer(n as i64),
        Err(e) => tag_error(ctx, e),
    }
}

fn remove(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    if refused(ctx, "tag|remove", &["write"]) {
        return;
    }
    let key = args.get(2);
    let tags = rest(&args, 3);
    let n = ctx
        .shared
        .engine
        .txn(ctx.session.db, &[key], ctx.now)
        .tag_remove(key, &tags);
    ctx.out.integer(n as i64);
}

fn get(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    let key = args.get(2);
    let tags = ctx
        .shared
        .engine
        .txn(ctx.session.db, &[key], ctx.now)
        .tags(key);
    ctx.out.array(tags.len());
    for t in &tags {
        ctx.out.bulk(t);
    }
}

fn card(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    let n = ctx.shared.engine.tag_card(ctx.session.db, args.get(2));
    ctx.out.integer(n as i64);
}

/// Largest COUNT honoured: a bigger one examines this many slots per call
/// (the reply then holds at most this many keys, and the cursor goes on).
const MAX_COUNT: usize = 1 << 20;

fn scan(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    let tag = args.get(2);
    let Some(cursor) = std::str::from_utf8(args.get(3))
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    else {
        ctx.out.error("ERR invalid cursor");
        return;
    };
    let mut count = 10usize;
    let mut values = false;
    let mut j = 4;
    while j < args.len() {
        let opt = args.get(j);
        if is(opt, "count") && j + 1 < args.len() {
            match magpie_protocol::int::parse_i64(args.get(j + 1)) {
                None => {
                    ctx.not_integer();
                    return;
                }
                Some(n) if n < 1 => {
                    ctx.syntax_error();
                    return;
                }
                Some(n) => count = (n as u64).min(MAX_COUNT as u64) as usize,
            }
            j += 2;
        } else if is(opt, "withvalues") {
            values = true;
            j += 1;
        } else {
            ctx.syntax_error();
            return;
        }
    }
    let mut found: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::new();
    let next = ctx
        .shared
        .engine
        .tag_scan(ctx.session.db, tag, cursor, count, ctx.now, |k, v| {
            found.push((k.to_vec(), values.then(|| v.value.to_vec())));
        });
    ctx.out.array(2);
    ctx.out.bulk(next.to_string().as_bytes());
    ctx.out.array(found.len() * if values { 2 } else { 1 });
    for (k, v) in &found {
        ctx.out.bulk(k);
        if let Some(v) = v {
            ctx.out.bulk(v);
        }
    }
    let hit = !found.is_empty();
    ctx.count_read(hit);
}

fn invalidate_tag(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    if refused(ctx, "invalidate|tag", &["write"]) {
        return;
    }
    let tags = rest(&args, 2);
    let n = ctx.shared.engine.invalidate_tags(ctx.session.db, &tags);
    ctx.out.integer(n as i64);
}

fn prefix(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    if refused(ctx, "invalidate|prefix", &["write"]) {
        return;
    }
    let prefixes = rest(&args, 2);
    match ctx
        .shared
        .engine
        .invalidate_prefixes(ctx.session.db, &prefixes)
    {
        Ok(n) => ctx.out.integer(n as i64),
        Err(e) => tag_error(ctx, e),
    }
}

fn tag_help(ctx: &mut Ctx<'_, '_>, _args: Args<'_>) {
    write_help(
        ctx.out,
        "TAG",
        &[
            (
                "ADD <key> <tag> [<tag> ...]",
                "Add tags to a key; returns how many it lacked.",
            ),
            (
                "REMOVE <key> <tag> [<tag> ...]",
                "Remove tags from a key; returns how many it had.",
            ),
            ("GET <key>", "Return the key's tags, sorted."),
            ("CARD <tag>", "Return the number of keys carrying <tag>."),
            (
                "SCAN <tag> <cursor> [COUNT <count>] [WITHVALUES]",
                "Iterate over the keys carrying <tag> (and their values).",
            ),
        ],
    );
}

fn invalidate_help(ctx: &mut Ctx<'_, '_>, _args: Args<'_>) {
    write_help(
        ctx.out,
        "INVALIDATE",
        &[
            (
                "TAG <tag> [<tag> ...]",
                "Delete every key carrying one of the tags, at once; returns the sum of their TAG CARDs.",
            ),
            (
                "PREFIX <prefix> [<prefix> ...]",
                "Delete every key starting with one of the prefixes, at once; returns the number of prefixes.",
            ),
        ],
    );
}
