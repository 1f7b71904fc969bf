//! Redis command dispatch: the command table, the per-call context, and the
//! checks every command shares (unknown command, arity, authentication).
//!
//! Each command family lives in its own file and exports a `COMMANDS` table
//! of [`CommandSpec`]s; the table here is their union. Handlers run inline on
//! the connection's task: they lock what they need in the engine, write
//! their reply straight into the output buffer and return.

use hashbrown::HashMap;
use std::sync::OnceLock;

use magpie_protocol::resp::{Args, Framing, Proto, ReplyWriter};

use crate::session::Session;
use crate::shared::Shared;
use crate::stats::Door;

pub mod command_docs;
pub mod conn;
pub mod connection;
pub mod expire;
pub mod keys;
pub mod kvs;
pub mod object;
pub mod redis_docs;
pub mod server;
pub mod slowlog;
pub mod strings;

/// Everything a handler may use while it runs.
pub struct Ctx<'a, 'o> {
    /// Server-wide state (engine, settings, counters).
    pub shared: &'a Shared,
    /// This connection's state (database, protocol, auth...).
    pub session: &'a mut Session,
    /// Where the reply goes.
    pub out: &'a mut ReplyWriter<'o>,
    /// Time (ms since the epoch) the command is evaluated at.
    pub now: u64,
    /// How the request was framed.
    pub framing: Framing,
}

impl Ctx<'_, '_> {
    /// `ERR wrong number of arguments for '<name>' command`.
    pub fn wrong_args(&mut self, name: &str) {
        self.out.error(&format!(
            "ERR wrong number of arguments for '{name}' command"
        ));
    }

    /// `ERR syntax error`.
    pub fn syntax_error(&mut self) {
        self.out.error("ERR syntax error");
    }

    /// `ERR value is not an integer or out of range`.
    pub fn not_integer(&mut self) {
        self.out
            .error("ERR value is not an integer or out of range");
    }

    /// Counts a keyspace read as a hit or a miss.
    pub fn count_read(&mut self, hit: bool) {
        let c = &mut self.session.counters;
        if hit {
            c.hits += 1;
        } else {
            c.misses += 1;
        }
    }
}

/// A command handler: reads its arguments (index 0 is the name) and writes
/// exactly one reply.
pub type Handler = fn(&mut Ctx<'_, '_>, Args<'_>);

/// One command: how to call it and what COMMAND reports about it.
#[derive(Debug)]
pub struct CommandSpec {
    /// Lowercase name.
    pub name: &'static str,
    /// Redis arity: N = exactly N arguments with the name, -N = at least N.
    pub arity: i32,
    /// COMMAND INFO flags (`write`, `readonly`, `fast`, ...).
    pub flags: &'static [&'static str],
    /// First key argument (0 = none).
    pub first_key: i32,
    /// Last key argument (-1 = the last argument).
    pub last_key: i32,
    /// Step between keys.
    pub step: i32,
    /// COMMAND DOCS group (`string`, `generic`, `connection`, `server`).
    pub group: &'static str,
    /// One-line description for COMMAND DOCS and `magpie cli` hints.
    pub summary: &'static str,
    /// Argument synopsis shown as a hint (`key value [EX seconds] ...`).
    pub syntax: &'static str,
    /// The code that runs it.
    pub handler: Handler,
}

impl CommandSpec {
    fn arity_ok(&self, argc: usize) -> bool {
        let a = self.arity;
        if a >= 0 {
            argc == a as usize
        } else {
            argc >= a.unsigned_abs() as usize
        }
    }
}

/// Every command magpie serves over RESP.
pub fn all() -> impl Iterator<Item = &'static CommandSpec> {
    [
        connection::COMMANDS,
        strings::COMMANDS,
        keys::COMMANDS,
        expire::COMMANDS,
        object::COMMANDS,
        server::COMMANDS,
        slowlog::COMMANDS,
    ]
    .into_iter()
    .flatten()
}

/// Name -> (spec, index in [`all`]). A fixed-seed foldhash: the keys are our own static names, so
/// there is nothing for a client to collide, and std's SipHash cost ~300
/// instructions per command (measured with callgrind).
type Table = HashMap<&'static [u8], (&'static CommandSpec, u16, Gates), foldhash::fast::FixedState>;

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        all()
            .enumerate()
            .map(|(i, c)| (c.name.as_bytes(), (c, i as u16, Gates::of(c.name, c.flags))))
            .collect()
    })
}

/// Which checks a command meets before it runs (see [`refusal`]), read
/// once from its COMMAND flags when the table is built, so a request pays
/// no string comparison for them.
#[derive(Clone, Copy, Debug, Default)]
pub struct Gates {
    /// Refused while the log cannot be written: `write` commands, and PING
    /// so that health checks notice.
    pub log: bool,
    /// Refused over the memory limit when nothing can be evicted: `denyoom`.
    pub memory: bool,
}

impl Gates {
    /// The gates of a command with this name and these COMMAND flags.
    pub fn of(name: &str, flags: &[&str]) -> Gates {
        Gates {
            log: flags.contains(&"write") || name == "ping",
            memory: flags.contains(&"denyoom"),
        }
    }
}

/// Every command's name in [`all`] order: the RESP door's table in
/// [`crate::stats::CommandStats`].
pub fn names() -> Vec<&'static str> {
    all().map(|c| c.name).collect()
}

/// Finds a command and its index in [`all`] by name, ignoring ASCII case.
pub fn lookup_indexed(name: &[u8]) -> Option<(&'static CommandSpec, u16)> {
    lookup_gated(name).map(|(spec, index, _)| (spec, index))
}

/// [`lookup_indexed`] with the command's [`Gates`].
fn lookup_gated(name: &[u8]) -> Option<(&'static CommandSpec, u16, Gates)> {
    let mut buf = [0u8; 32];
    let lower = buf.get_mut(..name.len())?;
    for (d, s) in lower.iter_mut().zip(name) {
        *d = s.to_ascii_lowercase();
    }
    table().get(&*lower).copied()
}

/// Finds a command by name, ignoring ASCII case.
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    lookup_indexed(name).map(|(spec, _)| spec)
}

/// Commands an unauthenticated client may run.
const NO_AUTH: &[&str] = &["auth", "hello", "quit"];

/// Commands whose arguments may carry a password: never written to the
/// slow log or the sampled command log (Redis skips or redacts them too).
pub fn is_secret(name: &[u8]) -> bool {
    ["auth", "hello", "config"].iter().any(|c| is(name, c))
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
    let Some((spec, index, gates)) = lookup_gated(name) else {
        unknown_command(ctx, args);
        return;
    };
    let reject = |ctx: &mut Ctx<'_, '_>| ctx.shared.command_stats.reject(Door::Resp, index);
    // Redis checks the argument count before authentication
    if !spec.arity_ok(args.len()) {
        ctx.wrong_args(spec.name);
        reject(ctx);
        return;
    }
    if !ctx.session.authenticated && !NO_AUTH.contains(&spec.name) {
        ctx.out.error("NOAUTH Authentication required.");
        reject(ctx);
        return;
    }
    if let Some(err) = refusal(ctx, gates) {
        ctx.out.error(&err);
        reject(ctx);
        return;
    }
    ctx.session.ran(spec.name, Some(index));
    (spec.handler)(ctx, args);
}

/// Redis's reply to a `denyoom` command while the keyspace is over
/// `maxmemory` and nothing can be evicted.
pub const OOM_ERROR: &str = "OOM command not allowed when used memory > 'maxmemory'.";

/// Why a command with these [`Gates`] may not run now, checked in the
/// order of Redis's `processCommand`: with a memory limit, every command
/// first evicts what the policy allows, and one that may grow memory
/// (`denyoom`) is refused while the keyspace stays over; then, while the
/// log cannot be written, writes (and PING, so health checks notice) are
/// refused and reads go on.
pub fn refusal(ctx: &Ctx<'_, '_>, gates: Gates) -> Option<String> {
    if ctx.shared.engine.make_room(ctx.now).is_err() && gates.memory {
        return Some(OOM_ERROR.into());
    }
    if gates.log {
        return ctx.shared.write_refusal();
    }
    None
}

/// Replaces CR and LF by spaces, as Redis does in error messages that echo
/// client input.
pub fn sanitize(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).replace(['\r', '\n'], " ")
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

/// `ERR unknown subcommand '<sub>'. Try <CMD> HELP.`
pub fn unknown_subcommand(ctx: &mut Ctx<'_, '_>, cmd: &str, sub: &[u8]) {
    let sub = sanitize(&sub[..sub.len().min(128)]);
    ctx.out.error(&format!(
        "ERR unknown subcommand '{sub}'. Try {} HELP.",
        cmd.to_ascii_uppercase()
    ));
}

/// Parses an integer argument as Redis does, replying the standard error
/// (and returning None) when it is not one.
pub fn int_arg(ctx: &mut Ctx<'_, '_>, arg: &[u8]) -> Option<i64> {
    let v = magpie_protocol::int::parse_i64(arg);
    if v.is_none() {
        ctx.not_integer();
    }
    v
}

/// True when `arg` equals `word` ignoring ASCII case.
pub fn is(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// Current protocol version number as Redis reports it.
pub fn proto_version(p: Proto) -> i64 {
    if p == Proto::Resp3 {
        3
    } else {
        2
    }
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
