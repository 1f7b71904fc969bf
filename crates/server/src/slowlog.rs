//! How RESP and memcached commands are written down. Logging each one on the
//! hot path would cost more than running it, so instead there are the slow
//! log (Redis `SLOWLOG`: the last `slowlog-max-len` commands that took at
//! least `slowlog-log-slower-than` microseconds) and the sampled command
//! log (one command in `command-log-sample` as a log line). A connection
//! keeps an [`Observer`] that times its commands, feeds their figures to
//! [`crate::stats`] and says which ones to write down.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

use crate::clients::ClientInfo;
use crate::stats::{BatchStats, CommandStats, Door};

/// Most arguments kept per slow log entry (Redis `SLOWLOG_ENTRY_MAX_ARGC`).
pub const MAX_ARGS: usize = 32;
/// Longest argument kept per slow log entry (Redis
/// `SLOWLOG_ENTRY_MAX_STRING`).
pub const MAX_ARG_LEN: usize = 128;

/// One slow command, as `SLOWLOG GET` shows it.
#[derive(Clone, Debug)]
pub struct SlowEntry {
    /// Unique, increasing id (not reset by `SLOWLOG RESET`).
    pub id: u64,
    /// Unix time (seconds) the command finished.
    pub unix_secs: u64,
    /// How long it ran, in microseconds.
    pub duration_us: u64,
    /// Its arguments, shortened as Redis shortens them.
    pub args: Vec<Vec<u8>>,
    /// Client `ip:port`.
    pub peer: String,
    /// Client name (CLIENT SETNAME), empty if none.
    pub name: Vec<u8>,
    /// The front door the command came through.
    pub door: Door,
}

/// The slow log and the settings of both command logs.
#[derive(Debug)]
pub struct SlowLog {
    slower_than_us: AtomicI64,
    max_len: AtomicUsize,
    sample_every: AtomicU64,
    next_id: AtomicU64,
    entries: Mutex<VecDeque<SlowEntry>>,
}

impl SlowLog {
    /// An empty log. `slower_than_us` < 0 turns the slow log off;
    /// `sample_every` 0 turns the sampled log off.
    pub fn new(slower_than_us: i64, max_len: usize, sample_every: u64) -> SlowLog {
        let log = SlowLog {
            slower_than_us: AtomicI64::new(0),
            max_len: AtomicUsize::new(0),
            sample_every: AtomicU64::new(0),
            next_id: AtomicU64::new(0),
            entries: Mutex::new(VecDeque::new()),
        };
        log.configure(slower_than_us, max_len, sample_every);
        log
    }

    /// Applies new settings (CONFIG SET), dropping entries beyond `max_len`.
    pub fn configure(&self, slower_than_us: i64, max_len: usize, sample_every: u64) {
        self.slower_than_us.store(slower_than_us, Ordering::Relaxed);
        self.max_len.store(max_len, Ordering::Relaxed);
        self.sample_every.store(sample_every, Ordering::Relaxed);
        self.entries.lock().truncate(max_len);
    }

    /// Adds an entry for a command that took `duration_us`.
    pub fn push(&self, door: Door, args: &[&[u8]], duration_us: u64, client: &ClientInfo) {
        let max_len = self.max_len.load(Ordering::Relaxed);
        if max_len == 0 {
            return;
        }
        let entry = SlowEntry {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            unix_secs: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            duration_us,
            args: shorten(args),
            peer: client.addr.to_string(),
            name: client.state.lock().name.clone(),
            door,
        };
        let mut entries = self.entries.lock();
        entries.push_front(entry);
        entries.truncate(max_len);
    }

    /// Up to `count` entries, newest first.
    pub fn get(&self, count: usize) -> Vec<SlowEntry> {
        self.entries.lock().iter().take(count).cloned().collect()
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.entries.lock().len()
    }

    /// True when no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every entry (`SLOWLOG RESET`).
    pub fn reset(&self) {
        self.entries.lock().clear();
    }
}

/// Redis's shortening: at most [`MAX_ARGS`] arguments, the last one saying
/// how many more there were; each at most [`MAX_ARG_LEN`] bytes, followed
/// by how many more bytes there were.
fn shorten(args: &[&[u8]]) -> Vec<Vec<u8>> {
    let kept = args.len().min(MAX_ARGS);
    let mut out = Vec::with_capacity(kept);
    for (i, a) in args.iter().take(kept).enumerate() {
        if kept < args.len() && i == kept - 1 {
            out.push(format!("... ({} more arguments)", args.len() - kept + 1).into_bytes());
        } else if a.len() > MAX_ARG_LEN {
            let mut s = a[..MAX_ARG_LEN].to_vec();
            s.extend_from_slice(format!("... ({} more bytes)", a.len() - MAX_ARG_LEN).as_bytes());
            out.push(s);
        } else {
            out.push(a.to_vec());
        }
    }
    out
}

/// What to write down about one finished command.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Notes {
    /// It reached the slow log's threshold.
    pub slow: bool,
    /// It is the one in N the sampled log writes.
    pub sampled: bool,
}

impl Notes {
    /// True when anything is to be written.
    pub fn any(self) -> bool {
        self.slow || self.sampled
    }
}

/// One connection's view of the command logs and statistics: the settings
/// as of the current batch, the batch's figures and the sampling countdown.
#[derive(Debug)]
pub struct Observer {
    door: Door,
    batch: BatchStats,
    /// Slow log threshold in ns for this batch (`u64::MAX`: off).
    slow_ns: u64,
    sample_every: u64,
    countdown: u64,
}

impl Observer {
    /// A fresh observer for a connection of `door`.
    pub fn new(door: Door) -> Observer {
        Observer {
            door,
            batch: BatchStats::default(),
            slow_ns: u64::MAX,
            sample_every: 0,
            countdown: 0,
        }
    }

    /// Reads the current settings; call at the start of each batch.
    pub fn begin(&mut self, log: &SlowLog) {
        let us = log.slower_than_us.load(Ordering::Relaxed);
        self.slow_ns = if us < 0 {
            u64::MAX
        } else {
            (us as u64).saturating_mul(1000)
        };
        let every = log.sample_every.load(Ordering::Relaxed);
        if every != self.sample_every {
            self.sample_every = every;
            self.countdown = every;
        }
    }

    /// Records a command that took `nanos` (`cmd`: its index in the door's
    /// table, if it has one) and says what to write down about it.
    pub fn finish(&mut self, cmd: Option<u16>, nanos: u64, failed: bool) -> Notes {
        if let Some(cmd) = cmd {
            self.batch.record(cmd, nanos, failed);
        }
        let mut notes = Notes {
            slow: nanos >= self.slow_ns,
            sampled: false,
        };
        if self.sample_every > 0 {
            self.countdown -= 1;
            if self.countdown == 0 {
                self.countdown = self.sample_every;
                notes.sampled = true;
            }
        }
        notes
    }

    /// Adds the batch's figures to the shared statistics.
    pub fn end(&mut self, stats: &CommandStats) {
        self.batch.flush(stats, self.door);
    }
}

/// Writes down one command according to `notes`: a slow log entry, a
/// sampled log line, or both. `args` are the request's words (for RESP the
/// command and its arguments; for memcached the request line).
pub fn write_down(
    log: &SlowLog,
    door: Door,
    client: &ClientInfo,
    args: &[&[u8]],
    nanos: u64,
    failed: bool,
    notes: Notes,
) {
    let duration_us = nanos / 1000;
    if notes.slow {
        log.push(door, args, duration_us, client);
    }
    if notes.sampled {
        let mut line = String::new();
        for (i, a) in shorten(args).iter().enumerate() {
            if i > 0 {
                line.push(' ');
            }
            line.push_str(&String::from_utf8_lossy(a));
        }
        tracing::info!(
            target: "magpie::commands",
            door = door.label(),
            client = client.id,
            peer = %client.addr,
            command = %line,
            duration_us,
            failed,
            "sampled command"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortens_arguments_as_redis() {
        let long = vec![b'x'; MAX_ARG_LEN + 5];
        let out = shorten(&[b"set", &long]);
        assert_eq!(out[0], b"set");
        assert_eq!(out[1].len(), MAX_ARG_LEN + "... (5 more bytes)".len());
        assert!(out[1].ends_with(b"... (5 more bytes)"));
        let exact = vec![b'y'; MAX_ARG_LEN];
        assert_eq!(shorten(&[&exact])[0], exact);

        let many: Vec<Vec<u8>> = (0..40).map(|i| i.to_string().into_bytes()).collect();
        let refs: Vec<&[u8]> = many.iter().map(|a| a.as_slice()).collect();
        let out = shorten(&refs);
        assert_eq!(out.len(), MAX_ARGS);
        assert_eq!(out[30], b"30");
        assert_eq!(out[31], b"... (9 more arguments)");
        assert_eq!(shorten(&refs[..32]).len(), 32);
        assert_eq!(shorten(&refs[..32])[31], b"31");
    }

    #[test]
    fn observer_flags_slow_and_one_in_n() {
        let log = SlowLog::new(10, 128, 3);
        let mut obs = Observer::new(Door::Resp);
        obs.begin(&log);
        let notes: Vec<Notes> = [9_999, 10_000, 5, 5, 5, 5]
            .iter()
            .map(|&ns| obs.finish(None, ns, false))
            .collect();
        assert_eq!(
            notes.iter().map(|n| n.slow).collect::<Vec<_>>(),
            [false, true, false, false, false, false]
        );
        assert_eq!(
            notes.iter().map(|n| n.sampled).collect::<Vec<_>>(),
            [false, false, true, false, false, true]
        );
        log.configure(-1, 128, 0);
        obs.begin(&log);
        assert!(!obs.finish(None, u64::MAX - 1, false).any());
    }
}
