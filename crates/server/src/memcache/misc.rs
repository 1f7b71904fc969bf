//! flush_all, stats, version, verbosity.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use magpie_protocol::memcache::{encode, Exptime, Words, PROTOCOL_VERSION};

use super::{McCounters, McCtx, McState, DB};
use crate::clients::{ClientInfo, McConnState};
use crate::shared::Shared;

/// `flush_all [delay]`: drops every item of database 0 now, or at the time
/// the delay names (relative seconds or absolute Unix time, as memcached
/// reads exptimes). A later flush_all replaces a pending delayed one.
pub fn flush_all(ctx: &mut McCtx<'_>, delay: i32, noreply: bool) {
    McCounters::bump(&ctx.mc.counters.cmd_flush);
    let generation = ctx.mc.flush_gen.fetch_add(1, Ordering::SeqCst) + 1;
    let at = if delay > 0 {
        Exptime::decode(delay, ctx.now).as_expire_at().unwrap_or(0)
    } else {
        0
    };
    if at <= ctx.now {
        ctx.shared.engine.flush_db(DB);
        ctx.mc.clear_marks();
    } else {
        let (shared, mc) = (ctx.shared.clone(), ctx.mc.clone());
        let wait = Duration::from_millis(at - ctx.now);
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shared.shutdown.notified() => return,
            }
            if mc.flush_gen.load(Ordering::SeqCst) == generation {
                shared.engine.flush_db(DB);
                mc.clear_marks();
            }
        });
    }
    ctx.reply("OK", noreply);
}

/// version
pub fn version(ctx: &mut McCtx<'_>) {
    ctx.out.extend_from_slice(b"VERSION ");
    encode::line(ctx.out, PROTOCOL_VERSION.as_bytes());
}

/// `verbosity <level>`: recorded for `stats settings` (magpie's own logging
/// is set with MAGPIE_LOG).
pub fn verbosity(ctx: &mut McCtx<'_>, level: u32, noreply: bool) {
    ctx.mc.verbosity.store(level.min(2), Ordering::Relaxed);
    ctx.reply("OK", noreply);
}

fn stat(out: &mut Vec<u8>, name: &str, value: impl std::fmt::Display) {
    use std::io::Write;
    let _ = write!(out, "STAT {name} {value}\r\n");
}

/// CPU time of this process (user, system) in seconds, from /proc.
fn rusage() -> (f64, f64) {
    let Ok(s) = std::fs::read_to_string("/proc/self/stat") else {
        return (0.0, 0.0);
    };
    // fields after the parenthesised command name; utime and stime are 14 and 15
    let rest = s.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = 100.0; // USER_HZ on Linux
    let get = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) / tick;
    (get(11), get(12))
}

/// stats, stats settings, stats reset, and the groups monitoring tools
/// read: items, slabs, sizes, conns. magpie has no slab allocator, so those
/// report what it does have (see `stats_items` and the others) in
/// memcached's format; an unknown group answers ERROR, as in memcached.
pub fn stats(ctx: &mut McCtx<'_>, args: Words<'_>) {
    let mut words = args.iter();
    let sub = words.next();
    let c = &ctx.mc.counters;
    let shared = ctx.shared;
    let out = &mut *ctx.out;
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    match sub {
        None => {
            let now_s = ctx.now / 1000;
            let (user, sys) = rusage();
            stat(out, "pid", std::process::id());
            stat(out, "uptime", shared.started.elapsed().as_secs());
            stat(out, "time", now_s);
            stat(out, "version", PROTOCOL_VERSION);
            stat(out, "pointer_size", usize::BITS);
            stat(out, "rusage_user", format_args!("{user:.6}"));
            stat(out, "rusage_system", format_args!("{sys:.6}"));
            stat(out, "max_connections", shared.runtime.read().maxclients);
            stat(out, "curr_connections", load(&c.curr_connections));
            stat(out, "total_connections", load(&c.total_connections));
            stat(
                out,
                "rejected_connections",
                load(&shared.counters.rejected_connections),
            );
            stat(out, "cmd_get", load(&c.cmd_get));
            stat(out, "cmd_set", load(&c.cmd_set));
            stat(out, "cmd_flush", load(&c.cmd_flush));
            stat(out, "cmd_touch", load(&c.cmd_touch));
            stat(out, "cmd_meta", load(&c.cmd_meta));
            stat(out, "get_hits", load(&c.get_hits));
            stat(out, "get_misses", load(&c.get_misses));
            stat(out, "delete_misses", load(&c.delete_misses));
            stat(out, "delete_hits", load(&c.delete_hits));
            stat(out, "incr_misses", load(&c.incr_misses));
            stat(out, "incr_hits", load(&c.incr_hits));
            stat(out, "decr_misses", load(&c.decr_misses));
            stat(out, "decr_hits", load(&c.decr_hits));
            stat(out, "cas_misses", load(&c.cas_misses));
            stat(out, "cas_hits", load(&c.cas_hits));
            stat(out, "cas_badval", load(&c.cas_badval));
            stat(out, "touch_hits", load(&c.touch_hits));
            stat(out, "touch_misses", load(&c.touch_misses));
            stat(out, "store_too_large", load(&c.store_too_large));
            stat(out, "store_no_memory", load(&c.store_no_memory));
            stat(out, "bytes_read", load(&c.bytes_read));
            stat(out, "bytes_written", load(&c.bytes_written));
            stat(
                out,
                "threads",
                shared.config.threads.unwrap_or_else(num_cpus),
            );
            // magpie's keyspace figures: items of database 0; bytes of all
            // entries (the engine accounts memory across databases)
            stat(out, "bytes", shared.engine.memory().entries);
            stat(out, "curr_items", shared.engine.dbsize(DB));
            stat(out, "total_items", load(&c.total_items));
            // memcached's -m: the memory limit (0 here means none)
            stat(
                out,
                "limit_maxbytes",
                shared.engine.memory_limit().max_bytes,
            );
            stat(
                out,
                "evictions",
                shared.engine.stats().evicted_keys.load(Ordering::Relaxed),
            );
            // magpie's tags (docs/tags.md), server-wide
            let e = shared.engine.stats();
            let tags = shared.engine.tag_summary();
            stat(out, "tags", tags.tags);
            stat(out, "tag_invalidations", load(&e.tag_invalidations));
            stat(out, "prefix_invalidations", load(&e.prefix_invalidations));
            stat(out, "keys_invalidated", load(&e.keys_invalidated));
            stat(out, "dead_entries_pending", tags.dead_pending);
            stat(out, "dead_entries_reclaimed", load(&e.dead_reclaimed));
            stat(out, "prefix_invalidations_pending", tags.prefixes_pending);
        }
        Some(b"settings") => {
            let cfg = &shared.config;
            stat(out, "maxconns", shared.runtime.read().maxclients);
            stat(out, "tcpport", cfg.memcache_port);
            stat(out, "udpport", 0);
            stat(out, "inter", &cfg.bind);
            stat(out, "verbosity", ctx.mc.verbosity.load(Ordering::Relaxed));
            stat(out, "num_threads", cfg.threads.unwrap_or_else(num_cpus));
            stat(out, "cas_enabled", "yes");
            stat(out, "item_size_max", cfg.memcache_max_item_size);
            stat(out, "flush_enabled", "yes");
            let limit = shared.engine.memory_limit();
            stat(out, "maxbytes", limit.max_bytes);
            // memcached's -M (refuse instead of evicting) is "off"
            let evicting = limit.policy != magpie_engine::EvictionPolicy::NoEviction;
            stat(out, "evictions", if evicting { "on" } else { "off" });
        }
        Some(b"items") => stats_items(shared, ctx.mc, out),
        Some(b"slabs") => stats_slabs(shared, out),
        // memcached's default (its size histogram is off unless enabled);
        // magpie keeps no histogram
        Some(b"sizes") => stat(out, "sizes_status", "disabled"),
        Some(b"conns") => stats_conns(shared, ctx.mc, out),
        Some(b"reset") => {
            reset(c);
            encode::line(out, b"RESET");
            return;
        }
        Some(b"detail") => {
            encode::line(out, b"CLIENT_ERROR usage: stats detail on|off|dump");
            return;
        }
        Some(_) => {
            encode::line(out, b"ERROR");
            return;
        }
    }
    encode::line(out, b"END");
}

/// `stats items`: the whole of database 0 as one "slab class" 1, with the
/// figures that hold without slabs: the item count (expired items count
/// until collected, as in memcached), the bytes of their entries, and the
/// evictions (of every database: the engine counts them server-wide). Nothing when there are no items,
/// as memcached prints nothing for an empty cache.
fn stats_items(shared: &Shared, mc: &McState, out: &mut Vec<u8>) {
    let number = shared.engine.dbsize(DB);
    if number == 0 {
        return;
    }
    stat(out, "items:1:number", number);
    stat(
        out,
        "items:1:mem_requested",
        shared.engine.db_memory(DB).entries,
    );
    let evicted = shared.engine.stats().evicted_keys.load(Ordering::Relaxed);
    stat(out, "items:1:evicted", evicted);
    for field in ["evicted_nonzero", "evicted_time"] {
        stat(out, &format!("items:1:{field}"), 0);
    }
    let refused = mc.counters.store_no_memory.load(Ordering::Relaxed);
    stat(out, "items:1:outofmemory", refused);
}

/// `stats slabs`: no slab classes, and the memory database 0 holds (its
/// entries and hash tables) as `total_malloced`.
fn stats_slabs(shared: &Shared, out: &mut Vec<u8>) {
    let m = shared.engine.db_memory(DB);
    stat(out, "active_slabs", 0);
    stat(out, "total_malloced", m.entries + m.tables);
}

/// `stats conns`: one group per socket, named by its descriptor as memcached
/// names them: first the listening socket (address, `conn_listening`,
/// seconds since it opened), then each client (peer address, listening
/// address, state as memcached names it, seconds since its last request
/// batch). The connection asking is in `conn_parse_cmd`, as in memcached.
fn stats_conns(shared: &Shared, mc: &McState, out: &mut Vec<u8>) {
    let port = shared.config.memcache_port;
    let mut conns: Vec<Arc<ClientInfo>> = shared
        .clients
        .lock()
        .values()
        .filter(|c| c.laddr.port() == port)
        .cloned()
        .collect();
    conns.sort_by_key(|c| c.fd);
    let tcp = |a: &SocketAddr| match a {
        SocketAddr::V4(_) => format!("tcp:{a}"),
        SocketAddr::V6(_) => format!("tcp6:{a}"),
    };
    // in descriptor order, the listening socket among the clients
    let mut listener = mc.listener.get();
    let mut print_listener = |out: &mut Vec<u8>, before: Option<i32>| {
        if let Some(&(fd, addr, opened)) = listener {
            if before.is_none_or(|b| fd < b) {
                stat(out, &format!("{fd}:addr"), tcp(&addr));
                stat(out, &format!("{fd}:state"), "conn_listening");
                stat(
                    out,
                    &format!("{fd}:secs_since_last_cmd"),
                    opened.elapsed().as_secs(),
                );
                listener = None;
            }
        }
    };
    for c in conns {
        print_listener(out, Some(c.fd));
        let last = c.state.lock().last_active.unwrap_or(c.created);
        let state = McConnState::from_u8(c.memcache_state.load(Ordering::Relaxed));
        stat(out, &format!("{}:addr", c.fd), tcp(&c.addr));
        stat(out, &format!("{}:listen_addr", c.fd), tcp(&c.laddr));
        stat(out, &format!("{}:state", c.fd), state.name());
        stat(
            out,
            &format!("{}:secs_since_last_cmd", c.fd),
            last.elapsed().as_secs(),
        );
    }
    print_listener(out, None);
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn reset(c: &McCounters) {
    for a in [
        &c.cmd_get,
        &c.cmd_set,
        &c.cmd_flush,
        &c.cmd_touch,
        &c.cmd_meta,
        &c.get_hits,
        &c.get_misses,
        &c.delete_misses,
        &c.delete_hits,
        &c.incr_misses,
        &c.incr_hits,
        &c.decr_misses,
        &c.decr_hits,
        &c.cas_misses,
        &c.cas_hits,
        &c.cas_badval,
        &c.touch_hits,
        &c.touch_misses,
        &c.store_too_large,
        &c.store_no_memory,
        &c.bytes_read,
        &c.bytes_written,
        &c.total_items,
        &c.total_connections,
    ] {
        a.store(0, Ordering::Relaxed);
    }
}
