//! Per-command statistics for every front door: calls, failures, rejected
//! calls, total time and a latency histogram per (door, command). They feed
//! Redis `INFO commandstats` / `INFO latencystats`, `/v1/stats` and
//! `/metrics`.
//!
//! Connections do not touch the shared atomics per command: they collect a
//! batch's figures in a [`BatchStats`] and add them once per read batch, as
//! the other per-connection counters are (a pipelined batch of 16 GETs is one
//! entry, so one set of atomic adds instead of sixteen).

use std::sync::atomic::{AtomicU64, Ordering};

/// Which front door ran a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Door {
    /// Redis protocol (RESP2, RESP3 and the kvs framing).
    Resp = 0,
    /// memcached text and meta protocol.
    Memcache = 1,
    /// HTTP/JSON API.
    Http = 2,
}

impl Door {
    /// Every door, in the order their tables are kept.
    pub const ALL: [Door; 3] = [Door::Resp, Door::Memcache, Door::Http];

    /// The door's label in `/metrics` and `/v1/stats`.
    pub fn label(self) -> &'static str {
        match self {
            Door::Resp => "resp",
            Door::Memcache => "memcache",
            Door::Http => "http",
        }
    }
}

/// Histogram buckets: bucket 0 holds durations under 256 ns; after it, four
/// buckets per power of two of nanoseconds (so a bucket is at most 25% wide)
/// up to 2^34 ns (~17 s); the last bucket holds everything longer.
pub const BUCKETS: usize = 2 + 4 * (MAX_OCTAVE - MIN_OCTAVE) as usize;
const MIN_OCTAVE: u32 = 8;
const MAX_OCTAVE: u32 = 34;

/// The bucket a duration of `ns` nanoseconds falls in.
pub fn bucket_of(ns: u64) -> usize {
    if ns < 1 << MIN_OCTAVE {
        return 0;
    }
    let octave = 63 - ns.leading_zeros();
    if octave >= MAX_OCTAVE {
        return BUCKETS - 1;
    }
    let quarter = ((ns >> (octave - 2)) & 3) as usize;
    1 + 4 * (octave - MIN_OCTAVE) as usize + quarter
}

/// The exclusive upper bound of bucket `i` in nanoseconds (`u64::MAX` for
/// the last one).
pub fn bucket_upper_ns(i: usize) -> u64 {
    if i == 0 {
        return 1 << MIN_OCTAVE;
    }
    if i >= BUCKETS - 1 {
        return u64::MAX;
    }
    let octave = MIN_OCTAVE + ((i - 1) / 4) as u32;
    let quarter = ((i - 1) % 4) as u64;
    (1u64 << octave) + (quarter + 1) * (1u64 << (octave - 2))
}

/// One command's shared figures.
pub struct CommandStat {
    /// The command's name as the door knows it (lowercase).
    pub name: &'static str,
    calls: AtomicU64,
    failed: AtomicU64,
    rejected: AtomicU64,
    nanos: AtomicU64,
    hist: [AtomicU64; BUCKETS],
}

/// A reading of one [`CommandStat`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandReading {
    /// Command name.
    pub name: &'static str,
    /// Calls that ran (including the failed ones).
    pub calls: u64,
    /// Calls that ran and answered with an error.
    pub failed: u64,
    /// Calls refused before running (arity, authentication, a failing log).
    pub rejected: u64,
    /// Total time spent in the calls, in nanoseconds.
    pub nanos: u64,
    /// Calls per latency bucket (see [`bucket_of`]).
    pub hist: Vec<u64>,
}

impl CommandReading {
    /// The smallest bucket bound (ns) below which at least `q` (0..=1) of
    /// the calls fall; 0 when there were none.
    pub fn quantile_ns(&self, q: f64) -> u64 {
        let total: u64 = self.hist.iter().sum();
        if total == 0 {
            return 0;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (i, &n) in self.hist.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return bucket_upper_ns(i);
            }
        }
        u64::MAX
    }
}

impl CommandStat {
    fn new(name: &'static str) -> CommandStat {
        CommandStat {
            name,
            calls: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            nanos: AtomicU64::new(0),
            hist: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    fn read(&self) -> CommandReading {
        CommandReading {
            name: self.name,
            calls: self.calls.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            nanos: self.nanos.load(Ordering::Relaxed),
            hist: self
                .hist
                .iter()
                .map(|h| h.load(Ordering::Relaxed))
                .collect(),
        }
    }

    fn reset(&self) {
        for a in [&self.calls, &self.failed, &self.rejected, &self.nanos] {
            a.store(0, Ordering::Relaxed);
        }
        for h in &self.hist {
            h.store(0, Ordering::Relaxed);
        }
    }
}

/// Every door's command table. A command is known by its index in its
/// door's name list, fixed at start.
pub struct CommandStats {
    doors: [Vec<CommandStat>; 3],
}

impl CommandStats {
    /// Tables for the given command names of each door (in [`Door::ALL`]
    /// order).
    pub fn new(names: [Vec<&'static str>; 3]) -> CommandStats {
        CommandStats {
            doors: names.map(|n| n.into_iter().map(CommandStat::new).collect()),
        }
    }

    /// The index of `name` in `door`'s table.
    pub fn index(&self, door: Door, name: &str) -> Option<u16> {
        self.doors[door as usize]
            .iter()
            .position(|c| c.name == name)
            .map(|i| i as u16)
    }

    /// Counts one call refused before it ran.
    pub fn reject(&self, door: Door, cmd: u16) {
        if let Some(c) = self.doors[door as usize].get(cmd as usize) {
            c.rejected.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Adds one call directly (for doors that run a request at a time,
    /// such as HTTP).
    pub fn record(&self, door: Door, cmd: u16, nanos: u64, failed: bool) {
        let Some(c) = self.doors[door as usize].get(cmd as usize) else {
            return;
        };
        c.calls.fetch_add(1, Ordering::Relaxed);
        c.nanos.fetch_add(nanos, Ordering::Relaxed);
        c.hist[bucket_of(nanos)].fetch_add(1, Ordering::Relaxed);
        if failed {
            c.failed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Readings of `door`'s commands that were called or rejected at least
    /// once, in table order.
    pub fn read(&self, door: Door) -> Vec<CommandReading> {
        self.doors[door as usize]
            .iter()
            .filter(|c| {
                c.calls.load(Ordering::Relaxed) > 0 || c.rejected.load(Ordering::Relaxed) > 0
            })
            .map(CommandStat::read)
            .collect()
    }

    /// Zeroes every figure (CONFIG RESETSTAT).
    pub fn reset(&self) {
        self.doors.iter().flatten().for_each(CommandStat::reset);
    }
}

/// One command's figures gathered during a batch.
#[derive(Debug)]
struct Pending {
    cmd: u16,
    calls: u64,
    failed: u64,
    nanos: u64,
    /// Lowest and highest bucket touched, so a flush reads only those.
    lo: usize,
    hi: usize,
    hist: [u32; BUCKETS],
}

/// Figures of the commands one connection ran in its current batch; added
/// to the shared [`CommandStats`] by [`BatchStats::flush`].
#[derive(Debug, Default)]
pub struct BatchStats {
    pending: Vec<Pending>,
    used: usize,
}

impl BatchStats {
    /// Notes one call of `cmd` that took `nanos`.
    pub fn record(&mut self, cmd: u16, nanos: u64, failed: bool) {
        let b = bucket_of(nanos);
        let p = match self.pending[..self.used].iter().position(|p| p.cmd == cmd) {
            Some(i) => &mut self.pending[i],
            None => {
                if self.used == self.pending.len() {
                    self.pending.push(Pending {
                        cmd,
                        calls: 0,
                        failed: 0,
                        nanos: 0,
                        lo: b,
                        hi: b,
                        hist: [0; BUCKETS],
                    });
                }
                let p = &mut self.pending[self.used];
                self.used += 1;
                p.cmd = cmd;
                p.lo = b;
                p.hi = b;
                p
            }
        };
        p.calls += 1;
        p.nanos += nanos;
        p.failed += failed as u64;
        p.hist[b] += 1;
        p.lo = p.lo.min(b);
        p.hi = p.hi.max(b);
    }

    /// Adds the batch's figures to `door`'s shared table and starts afresh.
    pub fn flush(&mut self, stats: &CommandStats, door: Door) {
        let table = &stats.doors[door as usize];
        for p in &mut self.pending[..self.used] {
            if let Some(c) = table.get(p.cmd as usize) {
                c.calls.fetch_add(p.calls, Ordering::Relaxed);
                c.nanos.fetch_add(p.nanos, Ordering::Relaxed);
                if p.failed > 0 {
                    c.failed.fetch_add(p.failed, Ordering::Relaxed);
                }
                for i in p.lo..=p.hi {
                    let n = std::mem::take(&mut p.hist[i]);
                    if n > 0 {
                        c.hist[i].fetch_add(n as u64, Ordering::Relaxed);
                    }
                }
            }
            p.calls = 0;
            p.nanos = 0;
            p.failed = 0;
        }
        self.used = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_ordered_contiguous_and_at_most_a_quarter_wide() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(255), 0);
        assert_eq!(bucket_of(256), 1);
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
        assert_eq!(bucket_of(1 << MAX_OCTAVE), BUCKETS - 1);
        let mut lower = 1u64 << MIN_OCTAVE;
        for i in 1..BUCKETS - 1 {
            let upper = bucket_upper_ns(i);
            assert!(upper > lower);
            assert!((upper - lower) * 4 <= lower, "bucket {i} too wide");
            assert_eq!(bucket_of(lower), i, "lower bound of {i}");
            assert_eq!(bucket_of(upper - 1), i, "upper bound of {i}");
            lower = upper;
        }
        assert_eq!(lower, 1 << MAX_OCTAVE);
    }

    #[test]
    fn batches_add_up_to_the_same_figures_as_direct_records() {
        let names = || [vec!["get", "set"], vec![], vec![]];
        let batched = CommandStats::new(names());
        let direct = CommandStats::new(names());
        let mut batch = BatchStats::default();
        let calls = [
            (0, 300, false),
            (1, 5_000, true),
            (0, 90_000, false),
            (0, 300, false),
        ];
        for round in 0..3 {
            for &(cmd, ns, failed) in &calls[round..] {
                batch.record(cmd, ns, failed);
                direct.record(Door::Resp, cmd, ns, failed);
            }
            batch.flush(&batched, Door::Resp);
        }
        assert_eq!(batched.read(Door::Resp), direct.read(Door::Resp));
        let get = &batched.read(Door::Resp)[0];
        assert_eq!((get.name, get.calls, get.failed), ("get", 7, 0));
        // 300 ns: twice in round 0, once in each later round
        assert_eq!(get.nanos, 300 * 4 + 90_000 * 3);
        batched.reset();
        assert!(batched.read(Door::Resp).is_empty());
    }

    #[test]
    fn quantiles_come_from_bucket_bounds() {
        let stats = CommandStats::new([vec!["get"], vec![], vec![]]);
        for _ in 0..98 {
            stats.record(Door::Resp, 0, 1_000, false);
        }
        stats.record(Door::Resp, 0, 1_000_000, false);
        stats.record(Door::Resp, 0, 1_000_000, false);
        let r = &stats.read(Door::Resp)[0];
        let p50 = r.quantile_ns(0.5);
        assert!((1_000..=1_250).contains(&p50), "{p50}");
        let p99 = r.quantile_ns(0.99);
        assert!((1_000_000..=1_250_000).contains(&p99), "{p99}");
        assert_eq!(r.quantile_ns(0.98), p50);
        stats.reject(Door::Resp, 0);
        assert_eq!(stats.read(Door::Resp)[0].rejected, 1);
    }
}
