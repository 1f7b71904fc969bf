//! The transactions family: MULTI, EXEC, DISCARD, WATCH and UNWATCH, with
//! Redis 7.0's semantics. Queueing happens in [`super::execute`] (a command
//! sent in MULTI is checked as usual and stored in the session's
//! [`Transaction`]); EXEC runs the queue inside the engine's exclusive
//! section ([`magpie_engine::Engine::exclusive`]), so no command of any door
//! interleaves with it, after comparing every watched key's version.

use magpie_protocol::resp::Args;

use super::handler::{refusal, CommandSpec, CommandTable, Ctx};
use crate::session::{Transaction, Watched};

/// The error EXEC answers when a queued command was refused.
pub const EXECABORT: &str = "EXECABORT Transaction discarded because of previous errors.";

/// Commands that run at once inside MULTI instead of being queued (Redis's
/// list; RESET is not served on this door).
const RUN_NOW: &[&str] = &["exec", "discard", "multi", "watch", "quit"];

/// True when `spec` is queued rather than run while the client is in MULTI.
pub fn queues(spec: &CommandSpec) -> bool {
    !RUN_NOW.contains(&spec.name)
}

/// Redis's refusal of a command inside MULTI (the `no_multi` flag:
/// SHUTDOWN among the commands magpie serves).
pub fn refused_in_multi(spec: &CommandSpec) -> Option<&'static str> {
    spec.flags
        .contains(&"no_multi")
        .then_some("ERR Command not allowed inside a transaction")
}

/// Queues a checked command and answers `+QUEUED`.
pub fn queue(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    if let Some(q) = ctx.session.multi.queued.as_mut() {
        q.push(args.iter().map(<[u8]>::to_vec).collect());
    }
    ctx.out.simple("QUEUED");
}

/// The family's table.
pub const COMMANDS: &[CommandSpec] = &[
    spec(
        "multi",
        1,
        &["noscript", "loading", "stale", "fast", "allow_busy"],
        (0, 0, 0),
        "Starts a transaction.",
        "",
        multi,
    ),
    spec(
        "exec",
        1,
        &["noscript", "loading", "stale", "skip_slowlog"],
        (0, 0, 0),
        "Executes all commands in a transaction.",
        "",
        exec,
    ),
    spec(
        "discard",
        1,
        &["noscript", "loading", "stale", "fast", "allow_busy"],
        (0, 0, 0),
        "Discards a transaction.",
        "",
        discard,
    ),
    spec(
        "watch",
        -2,
        &["noscript", "loading", "stale", "fast", "allow_busy"],
        (1, -1, 1),
        "Monitors changes to keys to determine the execution of a transaction.",
        "key [key ...]",
        watch,
    ),
    spec(
        "unwatch",
        1,
        &["noscript", "loading", "stale", "fast", "allow_busy"],
        (0, 0, 0),
        "Forgets about watched keys of a transaction.",
        "",
        unwatch,
    ),
];

const fn spec(
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
        group: "transactions",
        summary,
        syntax,
        handler,
    }
}

fn multi(ctx: &mut Ctx<'_, '_>, _args: Args<'_>) {
    let tx = &mut ctx.session.multi;
    if tx.queued.is_some() {
        // not queued and not a refusal: the transaction goes on
        ctx.out.error("ERR MULTI calls can not be nested");
        return;
    }
    tx.queued = Some(Vec::new());
    tx.dirty = false;
    ctx.out.ok();
}

fn discard(ctx: &mut Ctx<'_, '_>, _args: Args<'_>) {
    if ctx.session.multi.queued.is_none() {
        ctx.out.error("ERR DISCARD without MULTI");
        return;
    }
    ctx.session.multi = Transaction::default();
    ctx.out.ok();
}

fn watch(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    if ctx.session.multi.queued.is_some() {
        ctx.out.error("ERR WATCH inside MULTI is not allowed");
        return;
    }
    let db = ctx.session.db;
    for key in args.iter().skip(1) {
        let watched = &mut ctx.session.multi.watched;
        if watched.iter().any(|w| w.db == db && w.key == key) {
            continue;
        }
        let version = ctx.shared.engine.txn(db, &[key], ctx.now).version(key);
        watched.push(Watched {
            db,
            key: key.to_vec(),
            version,
        });
    }
    ctx.out.ok();
}

fn unwatch(ctx: &mut Ctx<'_, '_>, _args: Args<'_>) {
    ctx.session.multi.watched.clear();
    ctx.out.ok();
}

fn exec(ctx: &mut Ctx<'_, '_>, _args: Args<'_>) {
    let Some(queued) = ctx.session.multi.queued.take() else {
        ctx.out.error("ERR EXEC without MULTI");
        return;
    };
    let tx = std::mem::take(&mut ctx.session.multi);
    if tx.dirty {
        ctx.out.error(EXECABORT);
        return;
    }
    let shared = ctx.shared;
    // from here to the last reply no other thread reaches the keyspace
    let _section = shared.engine.exclusive();
    let changed = tx
        .watched
        .iter()
        .any(|w| shared.engine.txn(w.db, &[&w.key], ctx.now).version(&w.key) != w.version);
    if changed {
        ctx.out.null_array();
        return;
    }
    ctx.out.array(queued.len());
    for argv in &queued {
        run_queued(ctx, ctx.commands, Args::Owned(argv));
    }
}

/// Runs one queued command inside EXEC: the checks made at queue time are
/// not repeated, the memory and log gates are (their state may have
/// changed), and a refusal is this command's element of EXEC's reply.
fn run_queued(ctx: &mut Ctx<'_, '_>, commands: &CommandTable, args: Args<'_>) {
    let Some((spec, _, gates)) = commands.lookup_gated(args.get(0)) else {
        // looked up when queued; the table does not change
        ctx.out.error("ERR unknown command");
        return;
    };
    if let Some(err) = refusal(ctx, gates) {
        ctx.out.error(&err);
        return;
    }
    ctx.session.counters.commands += 1;
    (spec.handler)(ctx, args);
}
