//! Pub/sub commands: SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE,
//! PUBLISH, SSUBSCRIBE, SUNSUBSCRIBE, SPUBLISH and PUBSUB, over the
//! server's registry ([`crate::pubsub`]); and RESP2's subscribed mode,
//! where only a few commands may run.
//!
//! Confirmations are push messages in RESP3 (arrays in RESP2), one per
//! channel named. Messages reach the connection through its
//! [`crate::pubsub::Subscriber`] queue, which the connection loop writes.

use magpie_protocol::resp::Args;

use super::handler::{dispatch_subcommand, sanitize, subcommand, CommandSpec, CommandTable, Ctx};
use crate::pubsub::Kind;

const SUBSCRIBE_FLAGS: &[&str] = &["pubsub", "noscript", "loading", "stale"];
const PUBLISH_FLAGS: &[&str] = &["pubsub", "loading", "stale", "fast"];

const fn pubsub_command(
    name: &'static str,
    arity: i32,
    flags: &'static [&'static str],
    keys: (i32, i32, i32),
    summary: &'static str,
    syntax: &'static str,
    handler: super::handler::Handler,
) -> CommandSpec {
    CommandSpec {
        name,
        arity,
        flags,
        first_key: keys.0,
        last_key: keys.1,
        step: keys.2,
        group: "pubsub",
        summary,
        syntax,
        handler,
    }
}

/// The pub/sub family's table (flags and key positions as Redis 7.0's
/// COMMAND INFO has them: shard channels count as keys there).
pub const COMMANDS: &[CommandSpec] = &[
    pubsub_command(
        "subscribe",
        -2,
        SUBSCRIBE_FLAGS,
        (0, 0, 0),
        "Listen for messages published to the given channels",
        "channel [channel ...]",
        |ctx, args| subscribe(ctx, args, Kind::Channel),
    ),
    pubsub_command(
        "unsubscribe",
        -1,
        SUBSCRIBE_FLAGS,
        (0, 0, 0),
        "Stop listening for messages posted to the given channels",
        "[channel [channel ...]]",
        |ctx, args| unsubscribe(ctx, args, Kind::Channel),
    ),
    pubsub_command(
        "psubscribe",
        -2,
        SUBSCRIBE_FLAGS,
        (0, 0, 0),
        "Listen for messages published to channels matching the given patterns",
        "pattern [pattern ...]",
        |ctx, args| subscribe(ctx, args, Kind::Pattern),
    ),
    pubsub_command(
        "punsubscribe",
        -1,
        SUBSCRIBE_FLAGS,
        (0, 0, 0),
        "Stop listening for messages posted to channels matching the given patterns",
        "[pattern [pattern ...]]",
        |ctx, args| unsubscribe(ctx, args, Kind::Pattern),
    ),
    pubsub_command(
        "publish",
        3,
        PUBLISH_FLAGS,
        (0, 0, 0),
        "Post a message to a channel",
        "channel message",
        publish,
    ),
    pubsub_command(
        "ssubscribe",
        -2,
        SUBSCRIBE_FLAGS,
        (1, -1, 1),
        "Listen for messages published to the given shard channels",
        "shardchannel [shardchannel ...]",
        |ctx, args| subscribe(ctx, args, Kind::Shard),
    ),
    pubsub_command(
        "sunsubscribe",
        -1,
        SUBSCRIBE_FLAGS,
        (1, -1, 1),
        "Stop listening for messages posted to the given shard channels",
        "[shardchannel [shardchannel ...]]",
        |ctx, args| unsubscribe(ctx, args, Kind::Shard),
    ),
    pubsub_command(
        "spublish",
        3,
        PUBLISH_FLAGS,
        (1, 1, 1),
        "Post a message to a shard channel",
        "shardchannel message",
        spublish,
    ),
    pubsub_command(
        "pubsub",
        -2,
        &[],
        (0, 0, 0),
        "A container for Pub/Sub commands",
        "",
        pubsub,
    ),
];

const INTROSPECTION_FLAGS: &[&str] = &["pubsub", "loading", "stale"];

/// PUBSUB's subcommands.
pub const PUBSUB_SUBCOMMANDS: &[CommandSpec] = &[
    subcommand(
        "pubsub|channels",
        "pubsub",
        -2,
        INTROSPECTION_FLAGS,
        "List active channels",
        "[pattern]",
        |ctx, args| channels(ctx, args, Kind::Channel),
    ),
    subcommand(
        "pubsub|numsub",
        "pubsub",
        -2,
        INTROSPECTION_FLAGS,
        "Get the count of subscribers for channels",
        "[channel [channel ...]]",
        |ctx, args| numsub(ctx, args, Kind::Channel),
    ),
    subcommand(
        "pubsub|numpat",
        "pubsub",
        2,
        INTROSPECTION_FLAGS,
        "Get the count of unique patterns pattern subscriptions",
        "",
        numpat,
    ),
    subcommand(
        "pubsub|shardchannels",
        "pubsub",
        -2,
        INTROSPECTION_FLAGS,
        "List active shard channels",
        "[pattern]",
        |ctx, args| channels(ctx, args, Kind::Shard),
    ),
    subcommand(
        "pubsub|shardnumsub",
        "pubsub",
        -2,
        INTROSPECTION_FLAGS,
        "Get the count of subscribers for shard channels",
        "[shardchannel [shardchannel ...]]",
        |ctx, args| numsub(ctx, args, Kind::Shard),
    ),
    subcommand(
        "pubsub|help",
        "pubsub",
        2,
        &["loading", "stale"],
        "Show helpful text about the different subcommands",
        "",
        help,
    ),
];

/// The subscription count a confirmation of `kind` reports: channels and
/// patterns together, shard channels alone (as Redis 7.0 counts them).
fn reported_count(ctx: &Ctx<'_, '_>, kind: Kind) -> i64 {
    let subs = &ctx.session.pubsub;
    match kind {
        Kind::Shard => subs.shard_count() as i64,
        _ => subs.count() as i64,
    }
}

fn confirm(ctx: &mut Ctx<'_, '_>, word: &[u8], name: Option<&[u8]>, kind: Kind) {
    ctx.out.push(3);
    ctx.out.bulk(word);
    match name {
        Some(n) => ctx.out.bulk(n),
        None => ctx.out.null(),
    }
    let n = reported_count(ctx, kind);
    ctx.out.integer(n);
}

fn subscribe(ctx: &mut Ctx<'_, '_>, args: Args<'_>, kind: Kind) {
    let resp3 = ctx.session.proto == magpie_protocol::resp::Proto::Resp3;
    let id = ctx.session.id();
    for name in args.iter().skip(1) {
        ctx.session
            .pubsub
            .subscribe(&ctx.shared.pubsub, id, resp3, kind, name);
        confirm(ctx, kind.subscribe_word(), Some(name), kind);
    }
    note_counts(ctx);
}

fn unsubscribe(ctx: &mut Ctx<'_, '_>, args: Args<'_>, kind: Kind) {
    if args.len() == 1 {
        let names = ctx.session.pubsub.names(kind);
        if names.is_empty() {
            confirm(ctx, kind.unsubscribe_word(), None, kind);
        }
        for name in names {
            ctx.session.pubsub.unsubscribe(kind, &name);
            confirm(ctx, kind.unsubscribe_word(), Some(&name), kind);
        }
    } else {
        for name in args.iter().skip(1) {
            ctx.session.pubsub.unsubscribe(kind, name);
            confirm(ctx, kind.unsubscribe_word(), Some(name), kind);
        }
    }
    note_counts(ctx);
}

/// Shows the subscription counts in CLIENT LIST.
fn note_counts(ctx: &mut Ctx<'_, '_>) {
    let subs = &ctx.session.pubsub;
    let counts = [Kind::Channel, Kind::Pattern, Kind::Shard].map(|k| subs.of_kind(k) as u32);
    ctx.session.info.state.lock().subscriptions = counts;
}

/// Writes the messages already queued for this client (its own publish
/// among them) before the reply that follows, as Redis orders them.
fn flush_own_messages(ctx: &mut Ctx<'_, '_>) {
    if let Some(sub) = ctx.session.pubsub.subscriber() {
        // a closed subscriber is noticed by the connection loop
        let _ = sub.drain_into(ctx.out.buffer());
    }
}

fn publish(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    let n = ctx.shared.pubsub.publish(args.get(1), args.get(2));
    flush_own_messages(ctx);
    ctx.out.integer(n as i64);
}

fn spublish(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    let n = ctx.shared.pubsub.spublish(args.get(1), args.get(2));
    flush_own_messages(ctx);
    ctx.out.integer(n as i64);
}

fn pubsub(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    dispatch_subcommand(ctx, args, "pubsub", PUBSUB_SUBCOMMANDS);
}

fn channels(ctx: &mut Ctx<'_, '_>, args: Args<'_>, kind: Kind) {
    if args.len() > 3 {
        // Redis's addReplySubcommandSyntaxError: the words as typed
        let sub = sanitize(&args.get(1)[..args.get(1).len().min(128)]);
        ctx.out.error(&format!(
            "ERR unknown subcommand or wrong number of arguments for '{sub}'. Try {} HELP.",
            sanitize(args.get(0)).to_ascii_uppercase()
        ));
        return;
    }
    let pattern = (args.len() == 3).then(|| args.get(2));
    let names = ctx.shared.pubsub.active(kind, pattern);
    ctx.out.array(names.len());
    for n in &names {
        ctx.out.bulk(n);
    }
}

fn numsub(ctx: &mut Ctx<'_, '_>, args: Args<'_>, kind: Kind) {
    ctx.out.array((args.len() - 2) * 2);
    for name in args.iter().skip(2) {
        ctx.out.bulk(name);
        let n = ctx.shared.pubsub.subscribers(kind, name);
        ctx.out.integer(n as i64);
    }
}

fn numpat(ctx: &mut Ctx<'_, '_>, _args: Args<'_>) {
    let n = ctx.shared.pubsub.count(Kind::Pattern);
    ctx.out.integer(n as i64);
}

fn help(ctx: &mut Ctx<'_, '_>, _args: Args<'_>) {
    // Redis's text, NUMSUB's description on two lines
    const LINES: &[&str] = &[
        "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CHANNELS [<pattern>]",
        "    Return the currently active channels matching a <pattern> (default: '*').",
        "NUMPAT",
        "    Return number of subscriptions to patterns.",
        "NUMSUB [<channel> ...]",
        "    Return the number of subscribers for the specified channels, excluding",
        "    pattern subscriptions(default: no channels).",
        "SHARDCHANNELS [<pattern>]",
        "    Return the currently active shard level channels matching a <pattern> (default: '*').",
        "SHARDNUMSUB [<shardchannel> ...]",
        "    Return the number of subscribers for the specified shard level channel(s)",
        "HELP",
        "    Prints this help.",
    ];
    ctx.out.array(LINES.len());
    for line in LINES {
        ctx.out.simple(line);
    }
}

/// Commands a RESP2 client may run while subscribed (Redis 7.0's list).
const ALLOWED_WHILE_SUBSCRIBED: &[&str] = &[
    "ping",
    "subscribe",
    "ssubscribe",
    "unsubscribe",
    "sunsubscribe",
    "psubscribe",
    "punsubscribe",
    "quit",
    "reset",
];

/// Redis 7.0's refusal of a command a RESP2 client in subscribed mode may
/// not run, naming it as Redis does (`client|id` for a subcommand); None
/// when it may run, and for an unknown subcommand or a wrong argument
/// count, whose own errors Redis reports first.
pub fn subscribed_mode_refusal(
    commands: &CommandTable,
    spec: &CommandSpec,
    args: Args<'_>,
) -> Option<String> {
    if ALLOWED_WHILE_SUBSCRIBED.contains(&spec.name) {
        return None;
    }
    let subs = commands.subcommands(spec.name);
    let name = if subs.is_empty() {
        spec.name
    } else {
        let sub = args.get(1);
        let found = subs.iter().find(|s| {
            s.name
                .split_once('|')
                .is_some_and(|(_, n)| n.as_bytes().eq_ignore_ascii_case(sub))
        })?;
        if !found.arity_ok(args.len()) {
            return None;
        }
        found.name
    };
    Some(format!(
        "ERR Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
    ))
}
