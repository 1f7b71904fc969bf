//! What every RESP command handler is given and shares: the per-call
//! context [`Ctx`], the [`CommandSpec`] a family's table is made of, the
//! [`CommandTable`] the door builds from every family at start-up, the
//! checks run before a command (its [`Gates`]), argument helpers with
//! Redis's error texts, and the dispatcher of container commands'
//! subcommands (CLIENT, CONFIG, COMMAND, OBJECT, SLOWLOG).
//!
//! Command families import this file and nothing above it; the table
//! that joins them is built in [`crate::resp`] and reaches the handlers
//! that list commands (COMMAND) through [`Ctx::commands`].

use hashbrown::HashMap;

use magpie_protocol::resp::{Args, Framing, Proto, ReplyWriter};

use crate::session::Session;
use crate::shared::Shared;

/// The Redis version magpie reports (INFO, HELLO) so clients that gate
/// features on it treat magpie as the Redis 7.0 it emulates.
pub const REDIS_VERSION: &str = "7.0.15";

/// Redis's reply to a command that meets a key holding another kind of
/// value.
pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

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
    /// The door's command table (COMMAND lists it, the kvs framing looks
    /// its commands up in it).
    pub commands: &'static CommandTable,
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
    /// Whether `argc` arguments (the name included) meet the arity.
    pub fn arity_ok(&self, argc: usize) -> bool {
        let a = self.arity;
        if a >= 0 {
            argc == a as usize
        } else {
            argc >= a.unsigned_abs() as usize
        }
    }
}

/// The RESP door's command table: every family's [`CommandSpec`]s in one
/// order (the order of COMMAND and of the statistics tables), a name
/// index, and the container commands' subcommand tables.
pub struct CommandTable {
    specs: Vec<&'static CommandSpec>,
    by_name: HashMap<&'static [u8], (&'static CommandSpec, u16, Gates), foldhash::fast::FixedState>,
    subcommands: fn(&str) -> &'static [CommandSpec],
}

impl CommandTable {
    /// Indexes `specs` (in their order) by name; `subcommands` gives a
    /// container command's subcommand table (empty for the others). A
    /// fixed-seed foldhash: the keys are our own static names, so there is
    /// nothing for a client to collide, and std's SipHash cost ~300
    /// instructions per command (measured with callgrind).
    pub fn new(
        specs: impl IntoIterator<Item = &'static CommandSpec>,
        subcommands: fn(&str) -> &'static [CommandSpec],
    ) -> CommandTable {
        let specs: Vec<_> = specs.into_iter().collect();
        let by_name = specs
            .iter()
            .enumerate()
            .map(|(i, c)| {
                (
                    c.name.as_bytes(),
                    (*c, i as u16, Gates::of(c.name, c.flags)),
                )
            })
            .collect();
        CommandTable {
            specs,
            by_name,
            subcommands,
        }
    }

    /// Every command, in table order.
    pub fn all(&self) -> impl Iterator<Item = &'static CommandSpec> + '_ {
        self.specs.iter().copied()
    }

    /// How many commands there are (COMMAND COUNT).
    pub fn len(&self) -> usize {
        self.specs.len()
    }

    /// True for a table without commands.
    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }

    /// Finds a command, its index and its [`Gates`] by name, ignoring
    /// ASCII case.
    pub fn lookup_gated(&self, name: &[u8]) -> Option<(&'static CommandSpec, u16, Gates)> {
        let mut buf = [0u8; 32];
        let lower = buf.get_mut(..name.len())?;
        for (d, s) in lower.iter_mut().zip(name) {
            *d = s.to_ascii_lowercase();
        }
        self.by_name.get(&*lower).copied()
    }

    /// Finds a command and its index in [`CommandTable::all`] by name,
    /// ignoring ASCII case.
    pub fn lookup_indexed(&self, name: &[u8]) -> Option<(&'static CommandSpec, u16)> {
        self.lookup_gated(name)
            .map(|(spec, index, _)| (spec, index))
    }

    /// Finds a command by name, ignoring ASCII case.
    pub fn lookup(&self, name: &[u8]) -> Option<&'static CommandSpec> {
        self.lookup_indexed(name).map(|(spec, _)| spec)
    }

    /// The subcommand table of a container command (empty for the others).
    pub fn subcommands(&self, name: &str) -> &'static [CommandSpec] {
        (self.subcommands)(name)
    }
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

/// A subcommand entry (`parent|sub`, no keys) for a container's table.
pub const fn subcommand(
    name: &'static str,
    group: &'static str,
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
        first_key: 0,
        last_key: 0,
        step: 0,
        group,
        summary,
        syntax,
        handler,
    }
}

/// A subcommand entry of the server group (no keys).
pub const fn server_subcommand(
    name: &'static str,
    arity: i32,
    flags: &'static [&'static str],
    summary: &'static str,
    syntax: &'static str,
    handler: Handler,
) -> CommandSpec {
    subcommand(name, "server", arity, flags, summary, syntax, handler)
}

fn arity_ok(arity: i32, argc: usize) -> bool {
    if arity >= 0 {
        argc == arity as usize
    } else {
        argc >= arity.unsigned_abs() as usize
    }
}

/// Runs `args[1]` as a subcommand of `parent` from `table`, with Redis's
/// errors for an unknown subcommand and for a wrong argument count
/// (`ERR wrong number of arguments for 'client|id' command`).
pub fn dispatch_subcommand(
    ctx: &mut Ctx<'_, '_>,
    args: Args<'_>,
    parent: &str,
    table: &'static [CommandSpec],
) {
    let name = args.get(1);
    let found = table.iter().find(|s| {
        s.name
            .split_once('|')
            .is_some_and(|(_, n)| n.as_bytes().eq_ignore_ascii_case(name))
    });
    let Some(spec) = found else {
        unknown_subcommand(ctx, parent, name);
        return;
    };
    if !arity_ok(spec.arity, args.len()) {
        ctx.wrong_args(spec.name);
        return;
    }
    ctx.session.last_cmd = spec.name;
    (spec.handler)(ctx, args);
}

/// Writes a HELP reply in Redis's layout: the usage line, then each
/// `(synopsis, description)` pair, then HELP itself.
pub fn write_help(out: &mut ReplyWriter<'_>, cmd: &str, entries: &[(&str, &str)]) {
    out.array(1 + 2 * entries.len() + 2);
    out.simple(&format!(
        "{cmd} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    ));
    for (synopsis, text) in entries {
        out.simple(synopsis);
        out.simple(&format!("    {text}"));
    }
    out.simple("HELP");
    out.simple("    Prints this help.");
}

/// Replaces CR and LF by spaces, as Redis does in error messages that echo
/// client input.
pub fn sanitize(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).replace(['\r', '\n'], " ")
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

/// The cursor as Redis reads it (`strtoul` base 10 plus a check that the
/// whole C string was used): optional sign (`-` wraps around, as in C), no
/// leading space, the empty string is 0, overflow is an error, and the text
/// ends at the first NUL byte. None means "invalid cursor".
pub fn parse_cursor(arg: &[u8]) -> Option<u64> {
    let text = memchr::memchr(0, arg).map_or(arg, |nul| &arg[..nul]);
    let (negative, digits) = match text.first() {
        None => return Some(0),
        Some(b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') => return None,
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        Some(_) => (false, text),
    };
    if digits.is_empty() {
        return None;
    }
    let value = digits.iter().try_fold(0u64, |v, &c| {
        if c.is_ascii_digit() {
            v.checked_mul(10)?.checked_add((c - b'0') as u64)
        } else {
            None
        }
    })?;
    Some(if negative {
        value.wrapping_neg()
    } else {
        value
    })
}

/// The MATCH and COUNT options of HSCAN and SSCAN.
pub struct ScanOptions<'a> {
    /// COUNT (default 10).
    pub count: usize,
    /// MATCH, unless it is the bare `*` (which matches everything).
    pub pattern: Option<&'a [u8]>,
}

/// The reply of HSCAN and SSCAN on a missing key: cursor 0 and no
/// elements, counted as a miss.
pub fn empty_scan(ctx: &mut Ctx<'_, '_>) {
    ctx.count_read(false);
    ctx.out.array(2);
    ctx.out.bulk(b"0");
    ctx.out.array(0);
}

/// Parses `[MATCH pattern] [COUNT count]` from `args[from..]` as Redis's
/// `scanGenericCommand` does for a key's collection: a COUNT that is not an
/// integer is that error, below 1 or any other option (TYPE included) a
/// syntax error. Replies the error and returns None on failure.
pub fn scan_options<'a>(
    ctx: &mut Ctx<'_, '_>,
    args: &Args<'a>,
    from: usize,
) -> Option<ScanOptions<'a>> {
    let mut opts = ScanOptions {
        count: 10,
        pattern: None,
    };
    let mut i = from;
    while i < args.len() {
        let (opt, has_value) = (args.get(i), i + 1 < args.len());
        if is(opt, "count") && has_value {
            let n = int_arg(ctx, args.get(i + 1))?;
            if n < 1 {
                ctx.syntax_error();
                return None;
            }
            opts.count = usize::try_from(n).unwrap_or(usize::MAX);
        } else if is(opt, "match") && has_value {
            let p = args.get(i + 1);
            opts.pattern = (p != b"*").then_some(p);
        } else {
            ctx.syntax_error();
            return None;
        }
        i += 2;
    }
    Some(opts)
}
