//! Redis command dispatch: the command table, the per-call context, and the
//! checks every command shares (unknown command, arity, authentication).
//!
//! Each command family lives in its own file and exports a `COMMANDS` table
//! of [`CommandSpec`]s; the table here is their union. Handlers run inline on
//! the connection's task: they lock what they need in the engine, write
//! their reply straight into the output buffer and return.

use std::sync::OnceLock;

use magpie_protocol::resp::{Args, Framing, Proto};

use crate::stats::Door;
use handler::{is, refusal, sanitize, CommandSpec, CommandTable};
pub use handler::{proto_version, Ctx};

pub mod acl;
pub mod client_line;
pub mod command;
pub mod command_docs;
pub mod config;
pub mod conn;
pub mod connection;
pub mod expire;
pub mod handler;
pub mod hashes;
pub mod info;
pub mod keys;
pub mod kvs;
pub mod object;
pub mod pubsub;
pub mod redis_docs;
pub mod server;
pub mod sets;
pub mod slowlog;
pub mod strings;
pub mod tags;
pub mod transactions;

/// Every command magpie serves over RESP, family by family.
const FAMILIES: &[&[CommandSpec]] = &[
    connection::COMMANDS,
    strings::COMMANDS,
    hashes::COMMANDS,
    sets::COMMANDS,
    keys::COMMANDS,
    expire::COMMANDS,
    object::COMMANDS,
    pubsub::COMMANDS,
    info::COMMANDS,
    command::COMMANDS,
    config::COMMANDS,
    server::COMMANDS,
    slowlog::COMMANDS,
    tags::COMMANDS,
    acl::COMMANDS,
    transactions::COMMANDS,
];

/// The subcommand table of a container command (empty for the others).
fn subcommands(name: &str) -> &'static [CommandSpec] {
    match name {
        "client" => connection::CLIENT_SUBCOMMANDS,
        "config" => config::CONFIG_SUBCOMMANDS,
        "command" => command::COMMAND_SUBCOMMANDS,
        "slowlog" => slowlog::SLOWLOG_SUBCOMMANDS,
        "object" => object::OBJECT_SUBCOMMANDS,
        "pubsub" => pubsub::PUBSUB_SUBCOMMANDS,
        "tag" => tags::TAG_SUBCOMMANDS,
        "invalidate" => tags::INVALIDATE_SUBCOMMANDS,
        "acl" => acl::ACL_SUBCOMMANDS,
        _ => &[],
    }
}

/// The door's [`CommandTable`], built once from every family's table.
pub fn table() -> &'static CommandTable {
    static TABLE: OnceLock<CommandTable> = OnceLock::new();
    TABLE.get_or_init(|| CommandTable::new(FAMILIES.iter().copied().flatten(), subcommands))
}

/// Every command magpie serves over RESP.
pub fn all() -> impl Iterator<Item = &'static CommandSpec> {
    table().all()
}

/// Every command's name in [`all`] order: the RESP door's table in
/// [`crate::stats::CommandStats`].
pub fn names() -> Vec<&'static str> {
    all().map(|c| c.name).collect()
}

/// Finds a command by name, ignoring ASCII case.
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    table().lookup(name)
}

/// Commands an unauthenticated client may run.
const NO_AUTH: &[&str] = &["auth", "hello", "quit"];

/// Commands whose arguments may carry a password (AUTH, HELLO AUTH,
/// CONFIG SET requirepass, ACL SETUSER >password): never written to the
/// slow log or the sampled command log (Redis skips or redacts them too).
pub fn is_secret(name: &[u8]) -> bool {
    ["auth", "hello", "config", "acl"]
        .iter()
        .any(|c| is(name, c))
}

/// Runs one request and writes its reply.
pub fn execute(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    if args.is_empty() {
        return;
    }
    if ctx.framing == Framing::Kvs && kvs::execute(ctx, args) {
        return;
    }
    let name = args.get(0);
    let Some((spec, index, gates)) = ctx.commands.lookup_gated(name) else {
        unknown_command(ctx, args);
        ctx.session.multi.flag();
        return;
    };
    // a refusal also fails the transaction when in MULTI
    let reject = |ctx: &mut Ctx<'_, '_>| {
        ctx.session.multi.flag();
        ctx.shared.command_stats.reject(Door::Resp, index)
    };
    // Redis checks the argument count before authentication
    if !spec.arity_ok(args.len()) {
        // Redis answers a malformed EXEC this way in or out of MULTI
        if spec.name == "exec" {
            ctx.out.error(&format!(
                "EXECABORT Transaction discarded because of: wrong number of arguments for '{}' command",
                spec.name
            ));
            ctx.session.multi = Default::default();
        } else {
            ctx.wrong_args(spec.name);
        }
        reject(ctx);
        return;
    }
    if !ctx.session.authenticated && !NO_AUTH.contains(&spec.name) {
        ctx.out.error("NOAUTH Authentication required.");
        reject(ctx);
        return;
    }
    // the ACL: one load and two tests for a user allowed everything whose
    // rules did not change; the rest is out of line
    let session = &ctx.session.acl;
    if (session.epoch != ctx.shared.acl.epoch() || !session.unrestricted)
        && !acl::check_slow(ctx, index, args)
    {
        reject(ctx);
        return;
    }
    if let Some(err) = refusal(ctx, gates) {
        ctx.out.error(&err);
        reject(ctx);
        return;
    }
    if ctx.session.pubsub.active() && ctx.session.proto == Proto::Resp2 {
        if let Some(err) = pubsub::subscribed_mode_refusal(ctx.commands, spec, args) {
            ctx.out.error(&err);
            reject(ctx);
            return;
        }
    }
    if ctx.session.multi.queued.is_some() && transactions::queues(spec) {
        if let Some(err) = transactions::refused_in_multi(spec) {
            ctx.out.error(err);
            reject(ctx);
            return;
        }
        ctx.session.ran(spec.name, Some(index));
        transactions::queue(ctx, args);
        return;
    }
    ctx.session.ran(spec.name, Some(index));
    (spec.handler)(ctx, args);
}

fn unknown_command(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    let mut rest = String::new();
    for a in args.iter().skip(1) {
        if rest.len() >= 128 {
            break;
        }
        let room = 128 - rest.len();
        let a = sanitize(&a[..a.len().min(room)]);
        rest.push_str(&format!("'{a}' "));
    }
    let name = sanitize(&args.get(0)[..args.get(0).len().min(128)]);
    ctx.out.error(&format!(
        "ERR unknown command '{name}', with args beginning with: {rest}"
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_names_are_unique_lowercase_and_fit_the_lookup_buffer() {
        let mut seen = std::collections::HashSet::new();
        for c in all() {
            assert!(seen.insert(c.name), "duplicate {}", c.name);
            assert_eq!(c.name, c.name.to_ascii_lowercase());
            assert!(c.name.len() <= 32);
            assert!(lookup(c.name.to_ascii_uppercase().as_bytes()).is_some());
        }
    }
}
