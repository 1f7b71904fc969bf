//! The server command family: INFO, COMMAND, CONFIG, TIME, LASTSAVE and
//! SHUTDOWN, plus the subcommand dispatcher the container commands (CLIENT,
//! CONFIG, COMMAND) share.
//!
//! Everything here is built on demand when a client asks (INFO text, CONFIG
//! values, command metadata), so none of it costs anything on the hot path.

use crate::config::parse_memory;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use magpie_engine::glob::matches_nocase;
use magpie_protocol::int::parse_i64;
use magpie_protocol::resp::{Args, ReplyWriter};

use super::redis_docs::REDIS_DOCS;
use super::{connection, is, sanitize, unknown_subcommand, CommandSpec, Ctx};
use crate::shared::{Runtime, Shared};
use crate::stats::Door;

/// The Redis version magpie reports (INFO, HELLO) so clients that gate
/// features on it treat magpie as the Redis 7.0 it emulates.
pub const REDIS_VERSION: &str = "7.0.15";

/// The server family's table.
pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "info",
        arity: -1,
        flags: &["loading", "stale"],
        first_key: 0,
        last_key: 0,
        step: 0,
        group: "server",
        summary: "Returns information and statistics about the server.",
        syntax: "[section [section ...]]",
        handler: info,
    },
    CommandSpec {
        name: "command",
        arity: -1,
        flags: &["loading", "stale"],
        first_key: 0,
        last_key: 0,
        step: 0,
        group: "server",
        summary: "Returns detailed information about all commands.",
        syntax: "",
        handler: command,
    },
    CommandSpec {
        name: "config",
        arity: -2,
        flags: &[],
        first_key: 0,
        last_key: 0,
        step: 0,
        group: "server",
        summary: "A container for server configuration commands.",
        syntax: "",
        handler: config,
    },
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

/// CONFIG's subcommands.
pub const CONFIG_SUBCOMMANDS: &[CommandSpec] = &[
    sub(
        "config|get",
        -3,
        &["admin", "noscript", "loading", "stale"],
        "Returns the effective values of configuration parameters.",
        "parameter [parameter ...]",
        config_get,
    ),
    sub(
        "config|set",
        -4,
        &["admin", "noscript", "loading", "stale"],
        "Sets configuration parameters in-flight.",
        "parameter value [parameter value ...]",
        config_set,
    ),
    sub(
        "config|resetstat",
        2,
        &["admin", "noscript", "loading", "stale"],
        "Resets the server's statistics.",
        "",
        config_resetstat,
    ),
    sub(
        "config|help",
        2,
        &["loading", "stale"],
        "Returns helpful text about the different subcommands.",
        "",
        config_help,
    ),
];

/// COMMAND's subcommands.
pub const COMMAND_SUBCOMMANDS: &[CommandSpec] = &[
    sub(
        "command|count",
        2,
        &["loading", "stale"],
        "Returns a count of commands.",
        "",
        command_count,
    ),
    sub(
        "command|info",
        -2,
        &["loading", "stale"],
        "Returns information about one, multiple or all commands.",
        "[command-name [command-name ...]]",
        command_info,
    ),
    sub(
        "command|docs",
        -2,
        &["loading", "stale"],
        "Returns documentary information about one, multiple or all commands.",
        "[command-name [command-name ...]]",
        command_docs,
    ),
    sub(
        "command|list",
        -2,
        &["loading", "stale"],
        "Returns a list of command names.",
        "[FILTERBY <MODULE module-name | ACLCAT category | PATTERN pattern>]",
        command_list,
    ),
    sub(
        "command|help",
        2,
        &["loading", "stale"],
        "Returns helpful text about the different subcommands.",
        "",
        command_help,
    ),
];

/// A subcommand entry of the server group (no keys).
const fn sub(
    name: &'static str,
    arity: i32,
    flags: &'static [&'static str],
    summary: &'static str,
    syntax: &'static str,
    handler: super::Handler,
) -> CommandSpec {
    subcommand(name, "server", arity, flags, summary, syntax, handler)
}

/// A subcommand entry (`parent|sub`, no keys) for a container's table.
pub const fn subcommand(
    name: &'static str,
    group: &'static str,
    arity: i32,
    flags: &'static [&'static str],
    summary: &'static str,
    syntax: &'static str,
    handler: super::Handler,
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

/// The subcommand table of a container command (empty for the others).
pub fn subcommands(name: &str) -> &'static [CommandSpec] {
    match name {
        "client" => connection::CLIENT_SUBCOMMANDS,
        "config" => CONFIG_SUBCOMMANDS,
        "command" => COMMAND_SUBCOMMANDS,
        "slowlog" => super::slowlog::SLOWLOG_SUBCOMMANDS,
        "object" => super::object::OBJECT_SUBCOMMANDS,
        _ => &[],
    }
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

// ---------------------------------------------------------------- INFO

/// INFO sections magpie produces, in the order Redis prints them.
const SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "commandstats",
    "latencystats",
    "keyspace",
];

/// Sections left out of a plain `INFO` / `INFO default`, as in Redis.
const NOT_DEFAULT: &[&str] = &["commandstats", "latencystats"];

fn info(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    let mut wanted = [false; SECTIONS.len()];
    let default = |wanted: &mut [bool]| {
        for (w, s) in wanted.iter_mut().zip(SECTIONS) {
            *w |= !NOT_DEFAULT.contains(s);
        }
    };
    if args.len() == 1 {
        default(&mut wanted);
    }
    for a in args.iter().skip(1) {
        if is(a, "all") || is(a, "everything") {
            wanted = [true; SECTIONS.len()];
        } else if is(a, "default") {
            default(&mut wanted);
        } else if let Some(i) = SECTIONS.iter().position(|s| is(a, s)) {
            wanted[i] = true;
        }
    }
    let text = info_text(ctx.shared, &wanted);
    ctx.out.verbatim(text.as_bytes());
}

/// Builds the INFO text for the sections flagged in `wanted` (indexes into
/// the section list), in Redis's format: `# Name\r\n` then `field:value\r\n`
/// lines, sections separated by an empty line.
fn info_text(shared: &Shared, wanted: &[bool]) -> String {
    let mut s = String::with_capacity(2048);
    let mut first = true;
    for (i, name) in SECTIONS.iter().enumerate() {
        if !wanted[i] {
            continue;
        }
        if !first {
            s.push_str("\r\n");
        }
        first = false;
        match *name {
            "server" => server_section(shared, &mut s),
            "clients" => clients_section(shared, &mut s),
            "memory" => memory_section(shared, &mut s),
            "persistence" => persistence_section(shared, &mut s),
            "stats" => stats_section(shared, &mut s),
            "replication" => replication_section(&mut s),
            "commandstats" => commandstats_section(shared, &mut s),
            "latencystats" => latencystats_section(shared, &mut s),
            _ => keyspace_section(shared, &mut s),
        }
    }
    s
}

macro_rules! field {
    ($s:expr, $name:expr, $value:expr) => {
        let _ = write!($s, "{}:{}\r\n", $name, $value);
    };
}

fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Unix time (seconds) the server started.
fn start_unix_secs(shared: &Shared) -> u64 {
    unix_now()
        .saturating_sub(shared.started.elapsed())
        .as_secs()
}

fn os_line() -> String {
    let read = |p: &str| std::fs::read_to_string(p).map(|s| s.trim().to_string());
    match (
        read("/proc/sys/kernel/ostype"),
        read("/proc/sys/kernel/osrelease"),
    ) {
        (Ok(t), Ok(r)) => format!("{t} {r} {}", std::env::consts::ARCH),
        _ => format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
    }
}

fn server_section(shared: &Shared, s: &mut String) {
    let rt = shared.runtime.read().clone();
    let uptime = shared.started.elapsed().as_secs();
    s.push_str("# Server\r\n");
    field!(s, "redis_version", REDIS_VERSION);
    field!(s, "magpie_version", env!("CARGO_PKG_VERSION"));
    field!(s, "redis_mode", "standalone");
    field!(s, "os", os_line());
    field!(s, "arch_bits", usize::BITS);
    if cfg!(target_os = "linux") {
        field!(s, "multiplexing_api", "epoll");
    } else if cfg!(any(target_os = "macos", target_os = "freebsd")) {
        field!(s, "multiplexing_api", "kqueue");
    }
    field!(s, "process_id", std::process::id());
    field!(s, "process_supervised", "no");
    field!(s, "run_id", shared.run_id);
    field!(s, "tcp_port", shared.config.port);
    field!(s, "server_time_usec", unix_now().as_micros());
    field!(s, "uptime_in_seconds", uptime);
    field!(s, "uptime_in_days", uptime / 86400);
    field!(s, "hz", rt.hz);
    field!(s, "configured_hz", rt.hz);
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    field!(s, "executable", exe);
    field!(s, "config_file", "");
    field!(s, "io_threads_active", 0);
}

fn clients_section(shared: &Shared, s: &mut String) {
    s.push_str("# Clients\r\n");
    field!(
        s,
        "connected_clients",
        shared.connected.load(Ordering::Relaxed)
    );
    field!(s, "cluster_connections", 0);
    field!(s, "maxclients", shared.runtime.read().maxclients);
    field!(s, "blocked_clients", 0);
    field!(s, "tracking_clients", 0);
}

/// Redis's `bytesToHuman`: `123B`, `1.50K`, `2.00M`...
fn human_bytes(n: u64) -> String {
    const UNITS: &[(f64, &str)] = &[
        (1024.0, "K"),
        (1024.0 * 1024.0, "M"),
        (1024.0 * 1024.0 * 1024.0, "G"),
        (1024.0 * 1024.0 * 1024.0 * 1024.0, "T"),
    ];
    if n < 1024 {
        return format!("{n}B");
    }
    let d = n as f64;
    for (i, (unit, suffix)) in UNITS.iter().enumerate() {
        if i + 1 == UNITS.len() || d < UNITS[i + 1].0 {
            return format!("{:.2}{suffix}", d / unit);
        }
    }
    unreachable!("the last unit always matches")
}

/// Bytes allocated through jemalloc (the global allocator of the binary).
fn allocated_bytes() -> u64 {
    let _ = tikv_jemalloc_ctl::epoch::advance();
    tikv_jemalloc_ctl::stats::allocated::read().unwrap_or(0) as u64
}

/// Resident set size: `/proc/self/status` VmRSS, else jemalloc's resident.
fn rss_bytes() -> u64 {
    let from_proc = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|st| {
            let line = st.lines().find(|l| l.starts_with("VmRSS:"))?;
            let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kb * 1024)
        });
    from_proc.unwrap_or_else(|| {
        let _ = tikv_jemalloc_ctl::epoch::advance();
        tikv_jemalloc_ctl::stats::resident::read().unwrap_or(0) as u64
    })
}

fn total_system_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let line = m.lines().find(|l| l.starts_with("MemTotal:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kb| kb * 1024)
}

fn memory_section(shared: &Shared, s: &mut String) {
    let used = allocated_bytes();
    let rss = rss_bytes();
    let keyspace = shared.engine.memory();
    let total = total_system_memory();
    s.push_str("# Memory\r\n");
    field!(s, "used_memory", used);
    field!(s, "used_memory_human", human_bytes(used));
    field!(s, "used_memory_rss", rss);
    field!(s, "used_memory_rss_human", human_bytes(rss));
    field!(s, "magpie_keyspace_entry_bytes", keyspace.entries);
    field!(s, "magpie_keyspace_table_bytes", keyspace.tables);
    field!(s, "total_system_memory", total);
    field!(s, "total_system_memory_human", human_bytes(total));
    let limit = shared.engine.memory_limit();
    field!(s, "maxmemory", limit.max_bytes);
    field!(s, "maxmemory_human", human_bytes(limit.max_bytes as u64));
    field!(s, "maxmemory_policy", limit.policy);
    // magpie's own: what maxmemory is compared with (the two keyspace
    // figures above, summed as they change)
    field!(s, "magpie_maxmemory_used", shared.engine.used_memory());
    if used > 0 {
        field!(
            s,
            "mem_fragmentation_ratio",
            format!("{:.2}", rss as f64 / used as f64)
        );
    }
    let version = tikv_jemalloc_ctl::version::read().unwrap_or("unknown");
    let version = version.split('-').next().unwrap_or(version);
    field!(s, "mem_allocator", format!("jemalloc-{version}"));
}

fn persistence_section(shared: &Shared, s: &mut String) {
    // the append-only log is replayed before the ports open, so a client
    // never sees the server loading
    let log = shared.persist.get();
    s.push_str("# Persistence\r\n");
    field!(s, "loading", 0);
    field!(s, "async_loading", 0);
    field!(s, "rdb_bgsave_in_progress", 0);
    field!(s, "rdb_last_save_time", start_unix_secs(shared));
    field!(s, "aof_enabled", log.is_some() as u8);
    field!(s, "aof_rewrite_in_progress", 0);
    if let Some(log) = log {
        field!(
            s,
            "aof_last_write_status",
            if log.is_ok() { "ok" } else { "err" }
        );
        field!(s, "aof_current_size", log.log_bytes());
        field!(s, "aof_fsync_policy", log.policy());
        // magpie's own: fsyncs of the log so far; under `always` one per
        // group commit, so writes / fsyncs is how many a commit carries
        field!(s, "aof_fsyncs", log.fsyncs());
    }
}

fn stats_section(shared: &Shared, s: &mut String) {
    let c = &shared.counters;
    let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    s.push_str("# Stats\r\n");
    field!(
        s,
        "total_connections_received",
        get(&c.connections_received)
    );
    field!(s, "total_commands_processed", get(&c.commands_processed));
    field!(s, "total_net_input_bytes", get(&c.net_input_bytes));
    field!(s, "total_net_output_bytes", get(&c.net_output_bytes));
    field!(s, "rejected_connections", get(&c.rejected_connections));
    field!(s, "expired_keys", get(&shared.engine.stats().expired_keys));
    field!(s, "evicted_keys", get(&shared.engine.stats().evicted_keys));
    field!(s, "keyspace_hits", get(&c.keyspace_hits));
    field!(s, "keyspace_misses", get(&c.keyspace_misses));
}

/// The name a command has in INFO: Redis commands as Redis names them,
/// the other doors' with their door as a prefix (`memcache_get`,
/// `http_keys_put`).
fn info_command_name(door: Door, name: &str) -> String {
    match door {
        Door::Resp => name.to_owned(),
        _ => format!("{}_{name}", door.label()),
    }
}

fn commandstats_section(shared: &Shared, s: &mut String) {
    s.push_str("# Commandstats\r\n");
    for door in Door::ALL {
        for c in shared.command_stats.read(door) {
            let usec = c.nanos / 1000;
            let per_call = if c.calls == 0 {
                0.0
            } else {
                usec as f64 / c.calls as f64
            };
            let _ = write!(
                s,
                "cmdstat_{}:calls={},usec={usec},usec_per_call={per_call:.2},rejected_calls={},failed_calls={}\r\n",
                info_command_name(door, c.name),
                c.calls,
                c.rejected,
                c.failed
            );
        }
    }
}

fn latencystats_section(shared: &Shared, s: &mut String) {
    s.push_str("# Latencystats\r\n");
    for door in Door::ALL {
        for c in shared.command_stats.read(door) {
            if c.calls == 0 {
                continue;
            }
            let us = |q: f64| c.quantile_ns(q) as f64 / 1000.0;
            let _ = write!(
                s,
                "latency_percentiles_usec_{}:p50={:.3},p99={:.3},p99.9={:.3}\r\n",
                info_command_name(door, c.name),
                us(0.5),
                us(0.99),
                us(0.999)
            );
        }
    }
}

fn replication_section(s: &mut String) {
    s.push_str("# Replication\r\n");
    field!(s, "role", "master");
    field!(s, "connected_slaves", 0);
}

fn keyspace_section(shared: &Shared, s: &mut String) {
    s.push_str("# Keyspace\r\n");
    for db in 0..shared.engine.databases() {
        let d = shared.engine.db_info(db);
        if d.keys > 0 {
            let _ = write!(
                s,
                "db{db}:keys={},expires={},avg_ttl=0\r\n",
                d.keys, d.expires
            );
        }
    }
}

// ---------------------------------------------------------------- COMMAND

/// Redis's ACL categories in the order Redis lists them.
const CATEGORY_ORDER: &[&str] = &[
    "@keyspace",
    "@read",
    "@write",
    "@set",
    "@sortedset",
    "@list",
    "@hash",
    "@string",
    "@bitmap",
    "@hyperloglog",
    "@geo",
    "@stream",
    "@pubsub",
    "@admin",
    "@fast",
    "@slow",
    "@blocking",
    "@dangerous",
    "@connection",
    "@transaction",
    "@scripting",
];

fn redis_docs(name: &str) -> Option<&'static (&'static str, &'static str, &'static str)> {
    REDIS_DOCS
        .binary_search_by(|(n, _, _)| n.cmp(&name))
        .ok()
        .map(|i| &REDIS_DOCS[i])
}

/// A command's ACL categories: what Redis 7.0 says for its own commands,
/// otherwise derived from the command's flags and group.
fn categories(spec: &CommandSpec) -> Vec<&'static str> {
    if let Some((_, _, cats)) = redis_docs(spec.name) {
        return cats.split(' ').filter(|c| !c.is_empty()).collect();
    }
    let has = |f: &str| spec.flags.contains(&f);
    let group = match spec.group {
        "generic" => "@keyspace",
        "string" => "@string",
        "list" => "@list",
        "hash" => "@hash",
        "set" => "@set",
        "sorted-set" => "@sortedset",
        "bitmap" => "@bitmap",
        "hyperloglog" => "@hyperloglog",
        "geo" => "@geo",
        "stream" => "@stream",
        "pubsub" => "@pubsub",
        "connection" => "@connection",
        "transactions" => "@transaction",
        "scripting" => "@scripting",
        _ => "",
    };
    let wanted = |c: &str| match c {
        "@read" => has("readonly"),
        "@write" => has("write"),
        "@admin" | "@dangerous" => has("admin"),
        "@fast" => has("fast"),
        "@slow" => !has("fast"),
        "@blocking" => has("blocking"),
        other => other == group,
    };
    CATEGORY_ORDER
        .iter()
        .copied()
        .filter(|c| wanted(c))
        .collect()
}

/// Finds a command or `parent|sub` subcommand by name, ignoring case.
fn find_command(name: &[u8]) -> Option<&'static CommandSpec> {
    let lower = String::from_utf8_lossy(name).to_ascii_lowercase();
    match lower.split_once('|') {
        None => super::lookup(name),
        Some((parent, _)) => subcommands(parent).iter().find(|s| s.name == lower),
    }
}

fn write_command_info(out: &mut ReplyWriter<'_>, spec: &CommandSpec) {
    let subs = subcommands(spec.name);
    out.array(10);
    out.bulk(spec.name.as_bytes());
    out.integer(spec.arity as i64);
    out.set(spec.flags.len());
    for f in spec.flags {
        out.simple(f);
    }
    out.integer(spec.first_key as i64);
    out.integer(spec.last_key as i64);
    out.integer(spec.step as i64);
    let cats = categories(spec);
    out.set(cats.len());
    for c in cats {
        out.simple(c);
    }
    out.set(0); // tips
    out.set(0); // key specifications: not modelled by magpie's tables
    out.set(subs.len());
    for s in subs {
        write_command_info(out, s);
    }
}

fn write_command_docs(out: &mut ReplyWriter<'_>, spec: &CommandSpec) {
    let subs = subcommands(spec.name);
    let since = redis_docs(spec.name).map(|(_, since, _)| *since);
    // as Redis: no `arguments` field for a command without arguments
    let args = super::command_docs::arguments(spec.name).unwrap_or(&[]);
    out.map(2 + since.is_some() as usize + !args.is_empty() as usize + !subs.is_empty() as usize);
    out.bulk(b"summary");
    out.bulk(spec.summary.as_bytes());
    if let Some(since) = since {
        out.bulk(b"since");
        out.bulk(since.as_bytes());
    }
    out.bulk(b"group");
    out.bulk(spec.group.as_bytes());
    if !args.is_empty() {
        out.bulk(b"arguments");
        super::command_docs::write_arguments(out, args);
    }
    if !subs.is_empty() {
        out.bulk(b"subcommands");
        out.map(subs.len());
        for s in subs {
            out.bulk(s.name.as_bytes());
            write_command_docs(out, s);
        }
    }
}

fn all_command_info(out: &mut ReplyWriter<'_>) {
    out.array(super::all().count());
    for spec in super::all() {
        write_command_info(out, spec);
    }
}

fn command(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    if args.len() == 1 {
        all_command_info(ctx.out);
        return;
    }
    dispatch_subcommand(ctx, args, "command", COMMAND_SUBCOMMANDS);
}

fn command_count(ctx: &mut Ctx<'_, '_>, _args: Args<'_>) {
    ctx.out.integer(super::all().count() as i64);
}

fn command_info(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    if args.len() == 2 {
        all_command_info(ctx.out);
        return;
    }
    ctx.out.array(args.len() - 2);
    for name in args.iter().skip(2) {
        match find_command(name) {
            Some(spec) => write_command_info(ctx.out, spec),
            None => ctx.out.null(),
        }
    }
}

fn command_docs(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    let specs: Vec<&CommandSpec> = if args.len() == 2 {
        super::all().collect()
    } else {
        args.iter().skip(2).filter_map(find_command).collect()
    };
    ctx.out.map(specs.len());
    for spec in specs {
        ctx.out.bulk(spec.name.as_bytes());
        write_command_docs(ctx.out, spec);
    }
}

fn command_list(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    enum Filter<'a> {
        All,
        Module,
        Category(String),
        Pattern(&'a [u8]),
    }
    let filter = match args.len() {
        2 => Filter::All,
        5 if is(args.get(2), "filterby") => {
            let (kind, value) = (args.get(3), args.get(4));
            if is(kind, "module") {
                Filter::Module
            } else if is(kind, "aclcat") {
                Filter::Category(format!(
                    "@{}",
                    String::from_utf8_lossy(value).to_ascii_lowercase()
                ))
            } else if is(kind, "pattern") {
                Filter::Pattern(value)
            } else {
                ctx.syntax_error();
                return;
            }
        }
        _ => {
            ctx.syntax_error();
            return;
        }
    };
    let keep = |spec: &CommandSpec| match &filter {
        Filter::All => true,
        Filter::Module => false,
        Filter::Category(c) => categories(spec).contains(&c.as_str()),
        Filter::Pattern(p) => matches_nocase(p, spec.name.as_bytes()),
    };
    let names: Vec<&str> = super::all()
        .flat_map(|c| std::iter::once(c).chain(subcommands(c.name)))
        .filter(|c| keep(c))
        .map(|c| c.name)
        .collect();
    ctx.out.array(names.len());
    for n in names {
        ctx.out.bulk(n.as_bytes());
    }
}

fn command_help(ctx: &mut Ctx<'_, '_>, _args: Args<'_>) {
    write_help(
        ctx.out,
        "COMMAND",
        &[
            ("(no subcommand)", "Return details about all commands."),
            (
                "COUNT",
                "Return the total number of commands in this server.",
            ),
            ("LIST", "Return a list of all commands in this server."),
            (
                "INFO [<command-name> ...]",
                "Return details about multiple commands.",
            ),
            (
                "DOCS [<command-name> ...]",
                "Return documentation details about multiple commands.",
            ),
        ],
    );
}

// ---------------------------------------------------------------- CONFIG

/// How CONFIG SET checks and stores one parameter.
enum Setter {
    /// Read-only while running (`can't set immutable config`).
    Immutable,
    /// Stored in [`Runtime`]; returns Redis's error text on bad input.
    Runtime(fn(&mut Runtime, &[u8]) -> Result<(), String>),
    /// Accepts only the value magpie runs with (fixed at start or by
    /// design); the function validates like Redis then says why others are
    /// refused.
    Fixed(fn(&Shared, &[u8]) -> Result<(), String>),
}

/// One parameter CONFIG GET / SET knows.
struct Param {
    name: &'static str,
    get: fn(&Shared) -> String,
    set: Setter,
}

const PARAMS: &[Param] = &[
    Param {
        name: "maxclients",
        get: |s| s.runtime.read().maxclients.to_string(),
        set: Setter::Runtime(|rt, v| {
            rt.maxclients = parse_int_in(v, 1, u32::MAX as i64)? as usize;
            Ok(())
        }),
    },
    Param {
        name: "maxmemory",
        get: |s| s.runtime.read().memory_limit.max_bytes.to_string(),
        set: Setter::Runtime(|rt, v| {
            rt.memory_limit.max_bytes = parse_memory_in(v, 0, i64::MAX as u64)? as usize;
            Ok(())
        }),
    },
    Param {
        name: "maxmemory-policy",
        get: |s| s.runtime.read().memory_limit.policy.to_string(),
        set: Setter::Runtime(|rt, v| {
            rt.memory_limit.policy = crate::config::eviction_policy(&String::from_utf8_lossy(v))?;
            Ok(())
        }),
    },
    Param {
        name: "maxmemory-samples",
        get: |s| s.runtime.read().memory_limit.samples.to_string(),
        set: Setter::Runtime(|rt, v| {
            rt.memory_limit.samples =
                parse_int_in(v, 1, magpie_engine::MAX_SAMPLES as i64)? as usize;
            Ok(())
        }),
    },
    Param {
        name: "requirepass",
        get: |s| s.runtime.read().requirepass.clone().unwrap_or_default(),
        set: Setter::Runtime(|rt, v| {
            rt.requirepass = if v.is_empty() {
                None
            } else {
                Some(String::from_utf8_lossy(v).into_owned())
            };
            Ok(())
        }),
    },
    Param {
        name: "databases",
        get: |s| s.engine.databases().to_string(),
        set: Setter::Immutable,
    },
    Param {
        name: "proto-max-bulk-len",
        get: |s| s.runtime.read().limits.max_bulk_len.to_string(),
        set: Setter::Runtime(|rt, v| {
            rt.limits.max_bulk_len =
                parse_memory_in(v, 1024 * 1024, magpie_engine::MAX_PART_LEN as u64)? as usize;
            Ok(())
        }),
    },
    Param {
        name: "client-query-buffer-limit",
        get: |s| s.runtime.read().client_query_buffer_limit.to_string(),
        set: Setter::Runtime(|rt, v| {
            rt.client_query_buffer_limit =
                parse_memory_in(v, 1024 * 1024, i64::MAX as u64)? as usize;
            Ok(())
        }),
    },
    Param {
        name: "hz",
        get: |s| s.runtime.read().hz.to_string(),
        set: Setter::Runtime(|rt, v| {
            // Redis accepts any non-negative int and clamps it to 1..=500
            rt.hz = parse_int_in(v, 0, i32::MAX as i64)?.clamp(1, 500) as u32;
            Ok(())
        }),
    },
    Param {
        name: "port",
        get: |s| s.config.port.to_string(),
        set: Setter::Immutable,
    },
    Param {
        name: "bind",
        get: |s| s.config.bind.clone(),
        set: Setter::Immutable,
    },
    Param {
        name: "save",
        get: |_| String::new(),
        set: Setter::Fixed(|_, v| {
            if v.is_empty() {
                Ok(())
            } else {
                Err("magpie does not write RDB snapshots; only \"\" is accepted".into())
            }
        }),
    },
    Param {
        name: "appendonly",
        get: |s| yes_no(!s.config.ephemeral).into(),
        set: Setter::Fixed(|s, v| {
            let on = !s.config.ephemeral;
            if !is(v, "yes") && !is(v, "no") {
                Err("argument must be 'yes' or 'no'".into())
            } else if is(v, yes_no(on)) {
                Ok(())
            } else {
                Err(format!(
                    "the log is chosen at start (--ephemeral); only '{}' is accepted",
                    yes_no(on)
                ))
            }
        }),
    },
    Param {
        name: "appendfsync",
        get: |s| s.config.appendfsync.to_string(),
        set: Setter::Immutable,
    },
    Param {
        name: "dir",
        get: |s| s.config.dir.display().to_string(),
        set: Setter::Immutable,
    },
    Param {
        name: "slowlog-log-slower-than",
        get: |s| s.runtime.read().slowlog_log_slower_than.to_string(),
        set: Setter::Runtime(|rt, v| {
            rt.slowlog_log_slower_than = parse_int_in(v, -1, i64::MAX)?;
            Ok(())
        }),
    },
    Param {
        name: "slowlog-max-len",
        get: |s| s.runtime.read().slowlog_max_len.to_string(),
        set: Setter::Runtime(|rt, v| {
            rt.slowlog_max_len = parse_int_in(v, 0, i64::MAX)? as usize;
            Ok(())
        }),
    },
    Param {
        name: "command-log-sample",
        get: |s| s.runtime.read().command_log_sample.to_string(),
        set: Setter::Runtime(|rt, v| {
            rt.command_log_sample = parse_int_in(v, 0, i64::MAX)? as u64;
            Ok(())
        }),
    },
];

/// Parses a Redis integer config value within `[min, max]`, with Redis's
/// error texts.
fn parse_int_in(v: &[u8], min: i64, max: i64) -> Result<i64, String> {
    let n =
        parse_i64(v).ok_or_else(|| "argument couldn't be parsed into an integer".to_string())?;
    if n < min || n > max {
        return Err(format!(
            "argument must be between {min} and {max} inclusive"
        ));
    }
    Ok(n)
}

fn parse_memory_in(v: &[u8], min: u64, max: u64) -> Result<u64, String> {
    let n = parse_memory(v).ok_or_else(|| "argument must be a memory value".to_string())?;
    if n < min || n > max {
        return Err(format!(
            "argument must be between {min} and {max} inclusive"
        ));
    }
    Ok(n)
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn find_param(name: &[u8]) -> Option<&'static Param> {
    PARAMS.iter().find(|p| is(name, p.name))
}

fn config(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    dispatch_subcommand(ctx, args, "config", CONFIG_SUBCOMMANDS);
}

fn config_get(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    // (name as reported, parameter), first match wins, each parameter once
    let mut found: Vec<(&[u8], &Param)> = Vec::new();
    for pattern in args.iter().skip(2) {
        let is_glob = pattern.iter().any(|b| matches!(b, b'*' | b'?' | b'['));
        if !is_glob {
            if let Some(p) = find_param(pattern) {
                if !found.iter().any(|(_, q)| q.name == p.name) {
                    found.push((pattern, p));
                }
            }
            continue;
        }
        for p in PARAMS {
            if matches_nocase(pattern, p.name.as_bytes())
                && !found.iter().any(|(_, q)| q.name == p.name)
            {
                found.push((p.name.as_bytes(), p));
            }
        }
    }
    ctx.out.map(found.len());
    for (name, p) in found {
        ctx.out.bulk(name);
        ctx.out.bulk((p.get)(ctx.shared).as_bytes());
    }
}

fn config_set(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    if args.len() & 1 == 1 {
        ctx.syntax_error();
        return;
    }
    let pairs: Vec<(&[u8], &[u8])> = (2..args.len())
        .step_by(2)
        .map(|i| (args.get(i), args.get(i + 1)))
        .collect();
    let fail = |ctx: &mut Ctx<'_, '_>, name: &[u8], why: &str| {
        ctx.out.error(&format!(
            "ERR CONFIG SET failed (possibly related to argument '{}') - {why}",
            sanitize(name)
        ));
    };
    // first every name: unknown, immutable or repeated names fail before
    // anything is applied
    let mut params = Vec::with_capacity(pairs.len());
    for (i, (name, _)) in pairs.iter().enumerate() {
        let Some(p) = find_param(name) else {
            ctx.out.error(&format!(
                "ERR Unknown option or number of arguments for CONFIG SET - '{}'",
                sanitize(name)
            ));
            return;
        };
        if matches!(p.set, Setter::Immutable) {
            fail(ctx, name, "can't set immutable config");
            return;
        }
        if pairs[..i].iter().any(|(n, _)| is(n, p.name)) {
            fail(ctx, name, "duplicate parameter");
            return;
        }
        params.push(p);
    }
    // then apply them all to a copy, and publish it only if all succeed
    let mut rt = ctx.shared.runtime.read().clone();
    for (p, (name, value)) in params.iter().zip(&pairs) {
        let res = match p.set {
            Setter::Runtime(set) => set(&mut rt, value),
            Setter::Fixed(check) => check(ctx.shared, value),
            Setter::Immutable => unreachable!("rejected above"),
        };
        if let Err(why) = res {
            fail(ctx, name, &why);
            return;
        }
    }
    ctx.shared.set_runtime(rt);
    ctx.out.ok();
}

fn config_resetstat(ctx: &mut Ctx<'_, '_>, _args: Args<'_>) {
    let c = &ctx.shared.counters;
    for counter in [
        &c.connections_received,
        &c.rejected_connections,
        &c.commands_processed,
        &c.keyspace_hits,
        &c.keyspace_misses,
        &c.net_input_bytes,
        &c.net_output_bytes,
        &ctx.shared.engine.stats().expired_keys,
        &ctx.shared.engine.stats().evicted_keys,
    ] {
        counter.store(0, Ordering::Relaxed);
    }
    ctx.shared.command_stats.reset();
    ctx.out.ok();
}

fn config_help(ctx: &mut Ctx<'_, '_>, _args: Args<'_>) {
    write_help(
        ctx.out,
        "CONFIG",
        &[
            (
                "GET <pattern>",
                "Return parameters matching the glob-like <pattern> and their values.",
            ),
            (
                "SET <directive> <value>",
                "Set the configuration <directive> to <value>.",
            ),
            (
                "RESETSTAT",
                "Reset statistics reported by the INFO command.",
            ),
        ],
    );
}

// ---------------------------------------------------------------- misc

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_docs_are_sorted_for_binary_search() {
        assert!(REDIS_DOCS.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(redis_docs("get").map(|d| d.1), Some("1.0.0"));
        assert_eq!(redis_docs("client|id").map(|d| d.1), Some("5.0.0"));
        assert!(redis_docs("nosuch").is_none());
    }

    #[test]
    fn memory_values_parse_like_redis() {
        assert_eq!(parse_memory(b"1mb"), Some(1024 * 1024));
        assert_eq!(parse_memory(b"2MB"), Some(2 * 1024 * 1024));
        assert_eq!(parse_memory(b"1k"), Some(1000));
        assert_eq!(parse_memory(b"100"), Some(100));
        assert_eq!(parse_memory(b"100b"), Some(100));
        for bad in [
            &b""[..],
            b"x",
            b"-1",
            b"1.5mb",
            b"1tb",
            b"mb",
            b"99999999999999999999",
        ] {
            assert_eq!(parse_memory(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn human_bytes_matches_redis_format() {
        assert_eq!(human_bytes(0), "0B");
        assert_eq!(human_bytes(1023), "1023B");
        assert_eq!(human_bytes(1024), "1.00K");
        assert_eq!(human_bytes(1536), "1.50K");
        assert_eq!(human_bytes(3 * 1024 * 1024), "3.00M");
        assert_eq!(human_bytes(5 << 30), "5.00G");
        assert_eq!(human_bytes(2 << 40), "2.00T");
    }

    #[test]
    fn derived_categories_follow_flags_and_group() {
        let spec = CommandSpec {
            name: "magpie-only",
            arity: 2,
            flags: &["write", "fast"],
            first_key: 1,
            last_key: 1,
            step: 1,
            group: "string",
            summary: "",
            syntax: "",
            handler: time,
        };
        assert_eq!(categories(&spec), ["@write", "@string", "@fast"]);
        let get = super::super::lookup(b"get").unwrap();
        assert_eq!(categories(get), ["@read", "@string", "@fast"]);
    }
}
