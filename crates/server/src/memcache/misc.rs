//! flush_all, stats, version, verbosity.

use std::sync::atomic::Ordering;
use std::time::Duration;

use magpie_protocol::memcache::{encode, Exptime, Words, PROTOCOL_VERSION};

use super::{McCounters, McCtx, DB};

/// flush_all [delay]: drops every item of database 0 now, or at the time
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

/// verbosity <level>: recorded for `stats settings` (magpie's own logging
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

/// stats, stats settings, stats reset. Other groups (items, slabs, sizes,
/// conns) describe memcached's slab allocator, which magpie does not have:
/// they answer ERROR as memcached does for an unknown group.
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
            stat(out, "evictions", "off");
        }
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
        &c.bytes_read,
        &c.bytes_written,
        &c.total_items,
        &c.total_connections,
    ] {
        a.store(0, Ordering::Relaxed);
    }
}
