//! INFO: the server's state as Redis prints it, section by section.
//! Built on demand when a client asks, so none of it costs anything on
//! the hot path.

use crate::pubsub::Kind;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use magpie_protocol::resp::Args;

use super::handler::{is, CommandSpec, Ctx, REDIS_VERSION};
use crate::shared::Shared;
use crate::stats::Door;

/// INFO's table.
pub const COMMANDS: &[CommandSpec] = &[CommandSpec {
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
}];

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
    "tags",
    "keyspace",
];

/// Sections left out of a plain `INFO` / `INFO default`, as in Redis.
/// (`tags` is magpie's own: left out too, so a plain INFO lists Redis's
/// sections.)
const NOT_DEFAULT: &[&str] = &["commandstats", "latencystats", "tags"];

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
            "tags" => tags_section(shared, &mut s),
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

/// The wall clock as a duration since the Unix epoch.
pub fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Unix time (seconds) the server started.
/// When the server started, in seconds since the Unix epoch (LASTSAVE,
/// INFO `rdb_last_save_time`).
pub fn start_unix_secs(shared: &Shared) -> u64 {
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
    field!(s, "magpie_keyspace_tag_bytes", keyspace.tags);
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

/// magpie's own section: tags and invalidations (docs/tags.md).
fn tags_section(shared: &Shared, s: &mut String) {
    let e = &shared.engine;
    let st = e.stats();
    let sum = e.tag_summary();
    let get = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    s.push_str("# Tags\r\n");
    field!(s, "tags", sum.tags);
    field!(s, "tag_invalidations", get(&st.tag_invalidations));
    field!(s, "prefix_invalidations", get(&st.prefix_invalidations));
    field!(s, "keys_invalidated", get(&st.keys_invalidated));
    field!(s, "dead_entries_pending", sum.dead_pending);
    field!(s, "dead_entries_reclaimed", get(&st.dead_reclaimed));
    field!(s, "prefix_invalidations_pending", sum.prefixes_pending);
    field!(s, "tag_memory_bytes", sum.bytes);
    let limits = e.tag_limits();
    field!(s, "max_tags_per_key", limits.max_tags_per_key);
    field!(s, "max_tag_len", limits.max_tag_len);
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
    let ps = &shared.pubsub;
    field!(s, "pubsub_channels", ps.count(Kind::Channel));
    field!(s, "pubsub_patterns", ps.count(Kind::Pattern));
    field!(s, "pubsubshard_channels", ps.count(Kind::Shard));
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
