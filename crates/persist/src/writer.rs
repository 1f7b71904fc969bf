//! The log writer: the engine's [`MutationSink`] appends encoded records to
//! one shared buffer (under a short mutex, which also fixes the order of
//! records and their sequence numbers); one thread swaps that buffer out,
//! appends it to the current segment and fsyncs per policy. Everything
//! queued while a write+fsync is in progress goes out in the next single
//! write+fsync: group commit.
//!
//! Under `always` the log thread also decides *when* a commit starts. Left
//! to start one the moment records are queued, it settles into two cohorts
//! of connections that alternate, each commit carrying half of them (one
//! cohort is woken by commit N and comes back while commit N+1, holding the
//! other cohort, is already in flight). So before a commit it *gathers*:
//! it waits until as many connections are waiting as took part in the
//! previous round (those woken by the last commit plus those that queued
//! behind it), but never longer than the last commit took, and not once
//! [`GATHER_GAP`] passes with no new waiter after the first one came back,
//! so a cohort that does not come back costs little.
//!
//! Under `everysec` and `no` the connections write instead: before a batch
//! of replies leaves, its connection appends everything queued to the file
//! itself ([`write_now`], one `write()` for every record queued so far, by
//! any connection), so a reply never acknowledges a write that a crash of
//! the process could lose, as with Redis, which writes its log before it
//! replies. Waking the log thread for that instead cost a cross-thread
//! wake-up per batch. The log thread then only fsyncs (once a second under
//! `everysec`, without holding the writer), writes the records nobody
//! waits for (expiry, eviction, a library caller) every [`LEFTOVERS_EVERY`],
//! and takes over when the writer is busy or the disk fails.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use magpie_engine::{Mutation, MutationSink};
use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::activity::{IdleListener, RuntimeActivity};
use crate::files::{error_text, segment_path, sync_dir, Fs, SegmentFile};
use crate::record::encode;
use crate::FsyncPolicy;

/// Under `everysec` and `no`: how often the log thread writes records that
/// no reply waits for (those of expiry, eviction, or a library caller that
/// never calls `wait_durable`); replies write their own records first.
const LEFTOVERS_EVERY: Duration = Duration::from_millis(100);

/// Queued bytes above which writers wait for the log thread to catch up
/// (only while the disk is healthy: when writes fail, new writes are
/// refused instead, so the queue cannot grow).
const QUEUE_LIMIT: usize = 64 << 20;
/// How long to wait between retries of a failed write or fsync.
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// Upper bound of a gather under `always` (it is otherwise as long as the
/// last commit took).
const GATHER_MAX: Duration = Duration::from_millis(5);
/// A gather also ends when no connection started waiting for this long
/// (the rest of the cohort is not coming back soon: its clients went idle,
/// or the server's CPU is busy with something else).
const GATHER_GAP: Duration = Duration::from_micros(100);
/// With a [`RuntimeActivity`]: how long a gather may last while the runtime
/// stays busy.
const GATHER_MAX_BUSY: Duration = Duration::from_millis(2);
/// Under `always`, the zero-filled space kept ahead of the last record (see
/// [`SegmentFile`]): when less than `PREALLOC_LOW` is left, the log thread
/// fills another `PREALLOC_CHUNK` between two commits (1 MiB took 1-2 ms
/// here, once per about 250 commits of 50 SETs).
const PREALLOC_CHUNK: u64 = 1 << 20;
pub(crate) const PREALLOC_LOW: u64 = 256 << 10;

/// Reply to a rotation request: the new segment's number.
pub(crate) type RotateReply = mpsc::Sender<std::io::Result<u64>>;

#[derive(Default)]
struct Queue {
    buf: Vec<u8>,
    /// Sequence number of the last record in `buf` (or before it).
    seq: u64,
    /// Connections waiting for a record in `buf`: they can only be
    /// answered by the next commit (under `always`), or by the log thread's
    /// next write (under the other policies, when a connection found the
    /// writer busy).
    waiters: usize,
    /// While the log thread gathers: the number of `waiters` at which it
    /// starts the commit (`usize::MAX` otherwise).
    want: usize,
    rotate: Option<RotateReply>,
    stop: bool,
}

/// State shared by the sink side (connections), the log thread, the
/// compactor and the server.
pub(crate) struct Core {
    pub(crate) dir: PathBuf,
    pub(crate) policy: FsyncPolicy,
    queue: Mutex<Queue>,
    wake: Condvar,
    drained: Condvar,
    /// Sequence number of the last record accepted (mirror of queue.seq).
    pub(crate) assigned: AtomicU64,
    /// Last sequence number written (and fsynced under `always`).
    pub(crate) durable: AtomicU64,
    pub(crate) durable_tx: tokio::sync::watch::Sender<u64>,
    /// Set while a [`relay`](crate::Persistence::relay_durability) task runs
    /// in the server's runtime: the log thread then wakes that one task
    /// instead of every waiting connection (see `publish_durable`).
    pub(crate) relay_active: AtomicBool,
    pub(crate) relay_wake: tokio::sync::Notify,
    /// fsyncs of the log done so far.
    pub(crate) fsyncs: AtomicU64,
    /// False while the last write or fsync failed.
    pub(crate) ok: AtomicBool,
    pub(crate) last_error: Mutex<String>,
    /// Bytes of live segments before the current one.
    pub(crate) closed_bytes: AtomicU64,
    /// Bytes of the current segment.
    pub(crate) current_bytes: AtomicU64,
    /// Bytes of the snapshot in force.
    pub(crate) snapshot_bytes: AtomicU64,
    /// Number of the current segment.
    pub(crate) segment: AtomicU64,
    /// Set by the log thread when the log outgrew its threshold.
    pub(crate) compact_wanted: Mutex<bool>,
    pub(crate) compact_wake: Condvar,
    pub(crate) compact_min_size: u64,
    pub(crate) compact_ratio: f64,
    pub(crate) compacting: AtomicBool,
    pub(crate) compact_stop: AtomicBool,
    /// The segment a compaction switched the log to before it failed (0:
    /// none). The next compaction snapshots over that segment instead of
    /// switching again, so retries on a full disk do not leave a new
    /// segment every time.
    pub(crate) unfinished_compaction: AtomicU64,
    /// Mirror of `queue.waiters > 0`, readable without the lock.
    has_waiters: AtomicBool,
    activity: Option<Arc<RuntimeActivity>>,
}

impl Core {
    pub(crate) fn new(
        dir: PathBuf,
        policy: FsyncPolicy,
        compact_min_size: u64,
        compact_ratio: f64,
        seq: u64,
        activity: Option<Arc<RuntimeActivity>>,
    ) -> Core {
        Core {
            dir,
            policy,
            queue: Mutex::new(Queue {
                seq,
                want: usize::MAX,
                ..Queue::default()
            }),
            wake: Condvar::new(),
            drained: Condvar::new(),
            assigned: AtomicU64::new(seq),
            durable: AtomicU64::new(seq),
            durable_tx: tokio::sync::watch::Sender::new(seq),
            relay_active: AtomicBool::new(false),
            relay_wake: tokio::sync::Notify::new(),
            fsyncs: AtomicU64::new(0),
            ok: AtomicBool::new(true),
            last_error: Mutex::new(String::new()),
            closed_bytes: AtomicU64::new(0),
            current_bytes: AtomicU64::new(0),
            snapshot_bytes: AtomicU64::new(0),
            segment: AtomicU64::new(0),
            compact_wanted: Mutex::new(false),
            compact_wake: Condvar::new(),
            compact_min_size,
            compact_ratio,
            compacting: AtomicBool::new(false),
            compact_stop: AtomicBool::new(false),
            unfinished_compaction: AtomicU64::new(0),
            has_waiters: AtomicBool::new(false),
            activity,
        }
    }

    /// Total bytes of live segments.
    pub(crate) fn log_bytes(&self) -> u64 {
        self.closed_bytes.load(Ordering::Relaxed) + self.current_bytes.load(Ordering::Relaxed)
    }

    /// Asks the log thread to switch to a new segment once everything queued
    /// so far is durable in the current one; returns the new number.
    pub(crate) fn rotate(&self) -> std::io::Result<u64> {
        let (tx, rx) = mpsc::channel();
        {
            let mut q = self.queue.lock();
            q.rotate = Some(tx);
        }
        self.wake.notify_one();
        rx.recv()
            .unwrap_or_else(|_| Err(std::io::Error::other("log thread stopped")))
    }

    /// Asks the log thread to write and fsync everything and exit.
    pub(crate) fn stop(&self) {
        self.queue.lock().stop = true;
        self.wake.notify_one();
    }

    /// Called by a connection about to wait for durability: returns the
    /// sequence number to wait for (the last record accepted) and, when that
    /// record is still queued, counts the caller among the next commit's
    /// waiters (waking a gathering log thread once enough are there).
    pub(crate) fn register_waiter(&self) -> u64 {
        let mut q = self.queue.lock();
        if !q.buf.is_empty() {
            q.waiters += 1;
            self.has_waiters.store(true, Ordering::Relaxed);
            // the log thread only waits for these under `always`; under
            // the other policies a waiter means the writer was busy
            if q.waiters >= q.want || self.policy != FsyncPolicy::Always {
                self.wake.notify_one();
            }
        }
        q.seq
    }

    /// Makes this writer the one [`RuntimeActivity`] wakes.
    pub(crate) fn listen_to(self: &Arc<Core>, activity: &RuntimeActivity) {
        let core: Arc<dyn IdleListener> = self.clone();
        activity.attach(Arc::downgrade(&core));
    }
}

impl IdleListener for Core {
    /// Called by [`RuntimeActivity`] when the runtime ran out of work: wakes
    /// a gathering log thread if anyone waits for a commit.
    fn runtime_went_idle(&self) {
        if self.policy == FsyncPolicy::Always && self.has_waiters.load(Ordering::Relaxed) {
            let _q = self.queue.lock();
            self.wake.notify_one();
        }
    }
}

impl Core {
    /// Makes records up to `seq` visible as durable and wakes whoever waits
    /// for them. Waking a task from this (non-runtime) thread costs the
    /// runtime a wake-up syscall, and the scheduler paid one per waking
    /// task (measured under `always`, 50 clients: 50 eventfd writes per
    /// commit, each able to preempt this thread on a shared core). With a
    /// relay running, this thread wakes only the relay, which fans the
    /// news out from inside the runtime.
    fn publish_durable(&self, seq: u64) {
        self.durable.store(seq, Ordering::SeqCst);
        // under the other policies this runs mostly in a connection's
        // thread (`write_now`), where waking the few waiters (those that
        // found the writer busy) directly is cheap, and waking the relay
        // would cost the runtime a wake-up per write()
        if self.policy == FsyncPolicy::Always && self.relay_active.load(Ordering::SeqCst) {
            self.relay_wake.notify_one();
        } else {
            self.durable_tx.send_replace(seq);
        }
    }

    fn set_error(&self, what: &str, e: &std::io::Error) {
        let text = error_text(e);
        *self.last_error.lock() = text.clone();
        if self.ok.swap(false, Ordering::SeqCst) {
            tracing::error!(
                "error {what} the log in {}: {text}; refusing writes until it succeeds again",
                self.dir.display()
            );
            // waiters whose batch wrote nothing stop waiting now (see
            // `Persistence::wait_durable`); never lowers the published value
            let d = self.durable.load(Ordering::SeqCst);
            self.durable_tx.send_modify(|v| *v = (*v).max(d));
        }
    }

    fn set_ok(&self) {
        if !self.ok.swap(true, Ordering::SeqCst) {
            tracing::warn!("log writes succeed again; accepting writes");
        }
    }

    fn maybe_request_compaction(&self) {
        if self.compacting.load(Ordering::Relaxed) {
            return;
        }
        let log = self.log_bytes();
        let base = self.snapshot_bytes.load(Ordering::Relaxed) as f64;
        if log >= self.compact_min_size && log as f64 >= base * self.compact_ratio {
            let mut w = self.compact_wanted.lock();
            if !*w {
                *w = true;
                self.compact_wake.notify_one();
            }
        }
    }
}

impl MutationSink for Core {
    fn record(&self, m: Mutation<'_>) {
        let mut q = self.queue.lock();
        while q.buf.len() >= QUEUE_LIMIT && self.ok.load(Ordering::Relaxed) && !q.stop {
            self.drained.wait_for(&mut q, Duration::from_millis(100));
        }
        let was_empty = q.buf.is_empty();
        encode(&m, &mut q.buf);
        q.seq += 1;
        self.assigned.store(q.seq, Ordering::Release);
        // under the other policies the replies write (see the module
        // comment): the log thread is only needed when the queue is full
        let wake = if self.policy == FsyncPolicy::Always {
            was_empty
        } else {
            q.buf.len() >= QUEUE_LIMIT
        };
        drop(q);
        if wake {
            self.wake.notify_one();
        }
    }
}

/// The log thread's own state.
pub(crate) struct Writer {
    pub(crate) core: Arc<Core>,
    pub(crate) fs: Arc<dyn Fs>,
    pub(crate) file: Arc<dyn SegmentFile>,
    /// Bytes of the current segment known durable (or, under `no`, handed
    /// to the OS).
    pub(crate) synced_len: u64,
    /// Bytes of the current segment written: the end of its last record.
    pub(crate) file_len: u64,
    /// Length of the file itself: `file_len` plus the zero-filled space
    /// ahead of it (under `always`), which a clean stop or a rotation cuts.
    pub(crate) allocated: u64,
    /// After a failed preallocation: not before this instant again.
    pub(crate) prealloc_after: Option<Instant>,
    /// Bytes not yet durable: those after `synced_len`, of which the first
    /// `written` are already in the file. Kept so a failed fsync can be
    /// redone by rewriting them (after a failed fsync the kernel may have
    /// dropped the dirty pages).
    pub(crate) pending: Vec<u8>,
    pub(crate) written: usize,
    /// Sequence number of the last record in `pending`.
    pub(crate) pending_seq: u64,
    pub(crate) last_sync: Instant,
    /// The last fsync failed: writes stay refused until one succeeds (a
    /// successful `write()` proves nothing about durability), as Redis's
    /// `aof_bio_fsync_status` does, and every flush retries the fsync.
    pub(crate) sync_failed: bool,
    /// The buffer swapped with the queue's (kept to reuse its allocation).
    pub(crate) spare: Vec<u8>,
    /// Set when the log thread has stopped: nothing is written after that.
    pub(crate) stopped: bool,
}

/// Under `everysec` and `no`: writes everything queued so far, from the
/// calling connection's thread, unless someone else holds the writer (the
/// log thread fsyncing, or another connection writing; the caller then
/// waits for the log thread). True when the caller need not wait: every
/// record queued before the call is in the file (or the log has stopped).
pub(crate) fn write_now(writer: &Mutex<Writer>) -> bool {
    let Some(mut w) = writer.try_lock() else {
        return false;
    };
    if w.stopped {
        return true;
    }
    let core = w.core.clone();
    {
        let mut q = core.queue.lock();
        if q.buf.is_empty() {
            // whoever swapped the queue out held the writer, and is done
            return core.ok.load(Ordering::Relaxed);
        }
        w.take_queued(&mut q);
    }
    core.drained.notify_all();
    w.absorb_spare();
    w.flush(false).is_ok() && !w.sync_failed
}

impl Writer {
    /// Takes the queued records (into `spare`) with the queue locked.
    fn take_queued(&mut self, q: &mut Queue) {
        std::mem::swap(&mut q.buf, &mut self.spare);
        self.pending_seq = q.seq;
    }

    /// Appends the records taken by [`take_queued`](Self::take_queued) to
    /// what is pending.
    fn absorb_spare(&mut self) {
        if self.pending.is_empty() {
            std::mem::swap(&mut self.pending, &mut self.spare);
        } else {
            self.pending.extend_from_slice(&self.spare);
        }
        self.spare.clear();
        if self.spare.capacity() > QUEUE_LIMIT {
            self.spare = Vec::new();
        }
    }

    /// Writes what is pending and, if `fsync`, makes it durable. Nothing
    /// is cut from the file on error: under `everysec` a reply may already
    /// have acknowledged the records written, and a kill -9 while the disk
    /// fails must still find them. A failed write leaves `file_len` at the
    /// end of the last complete write, and the retry writes the rest over
    /// whatever part of it reached the file (recovery would see that part
    /// as a torn tail).
    fn flush(&mut self, fsync: bool) -> std::io::Result<()> {
        let r = self.try_flush(fsync);
        if let Err(e) = &r {
            self.core
                .set_error(if fsync { "fsyncing" } else { "writing" }, e);
        }
        r
    }

    fn try_flush(&mut self, fsync: bool) -> std::io::Result<()> {
        if self.written < self.pending.len() {
            self.file
                .write_at(self.file_len, &self.pending[self.written..])?;
            self.file_len += (self.pending.len() - self.written) as u64;
            self.allocated = self.allocated.max(self.file_len);
            self.written = self.pending.len();
            self.core
                .current_bytes
                .store(self.file_len, Ordering::Relaxed);
        }
        let durable = if fsync {
            if self.synced_len < self.file_len {
                let r = self.file.sync();
                self.synced(self.file_len, r)?;
            }
            self.last_sync = Instant::now();
            true
        } else {
            // under `no`, handed to the OS is enough, unless an fsync
            // failed: then only a rewrite and a successful fsync are
            self.core.policy == FsyncPolicy::No && !self.sync_failed
        };
        if durable {
            self.synced_len = self.file_len;
            self.pending.clear();
            self.written = 0;
        }
        if self.sync_failed {
            return Ok(());
        }
        self.core.set_ok();
        if durable || self.core.policy != FsyncPolicy::Always {
            self.core.publish_durable(self.pending_seq);
        }
        Ok(())
    }

    /// Takes in the outcome of an fsync that covered the segment up to
    /// `upto`. On success those bytes are durable and leave `pending`. On
    /// failure the kernel may have marked the dirty pages clean without
    /// writing them: only rewriting everything after the durable length
    /// (same bytes, same offsets) and a new fsync prove anything.
    fn synced(&mut self, upto: u64, r: std::io::Result<()>) -> std::io::Result<()> {
        if let Err(e) = r {
            self.file_len = self.synced_len;
            self.written = 0;
            self.sync_failed = true;
            return Err(e);
        }
        self.core.fsyncs.fetch_add(1, Ordering::Relaxed);
        let n = (upto - self.synced_len) as usize;
        self.pending.drain(..n);
        self.written -= n;
        self.synced_len = upto;
        self.last_sync = Instant::now();
        self.sync_failed = false;
        Ok(())
    }

    /// Under `everysec`: the once-a-second fsync, without holding the
    /// writer while the disk works (7-9 ms at pipeline 1 here, up to 44 ms
    /// at pipeline 16), so connections keep writing their records and
    /// replying meanwhile. Only the log thread fsyncs, rotates or stops,
    /// so the segment cannot change under it.
    fn sync_unlocked<'a>(
        writer: &'a Mutex<Writer>,
        mut w: MutexGuard<'a, Writer>,
    ) -> (MutexGuard<'a, Writer>, std::io::Result<()>) {
        if let Err(e) = w.flush(false) {
            return (w, Err(e));
        }
        if w.synced_len == w.file_len {
            w.last_sync = Instant::now();
            return (w, Ok(()));
        }
        let (file, upto) = (w.file.clone(), w.file_len);
        drop(w);
        let r = file.sync();
        let mut w = writer.lock();
        let r = w.synced(upto, r);
        match &r {
            // unless a connection's write failed meanwhile
            Ok(()) if w.written == w.pending.len() => w.core.set_ok(),
            Ok(()) => {}
            Err(e) => w.core.set_error("fsyncing", e),
        }
        (w, r)
    }

    /// Under `always`, zero-fills the next [`PREALLOC_CHUNK`] once the space
    /// ahead of the last record runs low. A failure (a full disk, say) only
    /// means later commits append, and is retried after [`RETRY_AFTER`].
    fn preallocate(&mut self) {
        if self.core.policy != FsyncPolicy::Always
            || self.allocated - self.file_len >= PREALLOC_LOW
            || self.prealloc_after.is_some_and(|t| Instant::now() < t)
        {
            return;
        }
        let from = self.allocated;
        match self.file.zero_fill(from, PREALLOC_CHUNK) {
            Ok(()) => {
                self.allocated = from + PREALLOC_CHUNK;
                self.prealloc_after = None;
            }
            Err(e) => {
                let _ = self.file.truncate(from);
                if self.prealloc_after.is_none() {
                    tracing::warn!(
                        "cannot preallocate log space in {}: {}; commits append until it succeeds",
                        self.core.dir.display(),
                        error_text(&e)
                    );
                }
                self.prealloc_after = Some(Instant::now() + RETRY_AFTER);
            }
        }
    }

    /// Cuts the zero-filled space after the last record, so a closed
    /// segment ends with its last record.
    fn cut_tail(&mut self) -> std::io::Result<()> {
        if self.allocated > self.file_len {
            self.file.truncate(self.file_len)?;
            self.file.sync()?;
            self.allocated = self.file_len;
        }
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<u64> {
        self.flush(true)?;
        self.cut_tail()?;
        let next = self.core.segment.load(Ordering::Relaxed) + 1;
        let path = segment_path(&self.core.dir, next);
        let file = self.fs.open_segment(&path)?;
        sync_dir(&self.core.dir)?;
        self.file = Arc::from(file);
        self.core
            .closed_bytes
            .fetch_add(self.file_len, Ordering::Relaxed);
        self.core.current_bytes.store(0, Ordering::Relaxed);
        self.file_len = 0;
        self.allocated = 0;
        self.synced_len = 0;
        self.core.segment.store(next, Ordering::Relaxed);
        Ok(next)
    }
}

/// Gathers until `want` connections wait, or the runtime runs out of
/// work, or [`GATHER_MAX_BUSY`] passed. The commit starts the moment
/// the runtime parks, with no confirmation that it stays idle: measured
/// against waiting 10, 30 or 80 us for that, starting at once was
/// fastest (pipeline 1: 66-72k SET/s against 59-64k with 30 us), as a
/// commit that starts early overlaps with the requests still coming.
fn gather_until_idle(
    core: &Core,
    activity: &RuntimeActivity,
    q: &mut parking_lot::MutexGuard<'_, Queue>,
) {
    let cap = Instant::now() + GATHER_MAX_BUSY;
    while q.waiters < q.want && q.rotate.is_none() && !q.stop {
        let now = Instant::now();
        if now >= cap {
            break;
        }
        if activity.is_idle() {
            break;
        }
        // woken when the runtime parks or `want` is reached
        let _ = core.wake.wait_until(q, cap);
    }
}

/// Without a runtime gauge: gathers until `want` connections wait, or
/// no new one came for [`GATHER_GAP`], or as long as the last commit
/// took. The gap counts from the first waiter seen coming back: before
/// that the runtime is still busy sending the last commit's replies.
fn gather_until_gap(
    core: &Core,
    last_commit: Duration,
    q: &mut parking_lot::MutexGuard<'_, Queue>,
) {
    let cap = Instant::now() + last_commit.min(GATHER_MAX);
    let (mut seen, mut came) = (q.waiters, false);
    while q.waiters < q.want && q.rotate.is_none() && !q.stop {
        let until = cap.min(Instant::now() + GATHER_GAP);
        let timed_out = core.wake.wait_until(q, until).timed_out();
        if q.waiters > seen {
            (seen, came) = (q.waiters, true);
        } else if timed_out && came {
            break; // nobody came for GATHER_GAP
        }
        if Instant::now() >= cap {
            break;
        }
    }
}

/// Waits (with the queue locked, the writer not) until the log thread has
/// something to do.
fn wait_for_work(core: &Core, q: &mut parking_lot::MutexGuard<'_, Queue>) {
    loop {
        if q.rotate.is_some() || q.stop {
            return;
        }
        if core.policy == FsyncPolicy::Always {
            if !q.buf.is_empty() {
                return;
            }
            if core.ok.load(Ordering::Relaxed) {
                core.wake.wait(q);
            } else if core.wake.wait_for(q, RETRY_AFTER).timed_out() {
                return;
            }
        } else {
            // replies write their own records; come for a waiter (the
            // writer was busy), a full queue, and every LEFTOVERS_EVERY
            // (leftovers, the everysec fsync, a retry after an error)
            if q.waiters > 0 || q.buf.len() >= QUEUE_LIMIT {
                return;
            }
            if core.wake.wait_for(q, LEFTOVERS_EVERY).timed_out() {
                return;
            }
        }
    }
}

/// The log thread's loop.
pub(crate) fn run(writer: Arc<Mutex<Writer>>) {
    let core = writer.lock().core.clone();
    if core.policy == FsyncPolicy::Always {
        // gathers time out after GATHER_GAP; the default timer slack
        // (50 us) would stretch that by half
        // SAFETY: prctl with integer arguments only changes this
        // thread's timer slack.
        unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 10_000u64, 0u64, 0u64, 0u64) };
    }
    // under `always`: how long the last write+fsync took (the bound of the
    // next gather), and the waiters it answered (those expected back)
    let mut last_commit = Duration::ZERO;
    let mut last_cohort = 0;
    loop {
        let expected = {
            let mut q = core.queue.lock();
            // under `always`: the cohort answered by the last commit and
            // those who queued behind it
            let expected = last_cohort + q.waiters;
            wait_for_work(&core, &mut q);
            expected
        };
        // lock order: writer, then queue
        let mut w = writer.lock();
        let (rotate, stop) = {
            let mut q = core.queue.lock();
            if core.policy == FsyncPolicy::Always
                && !q.buf.is_empty()
                && q.waiters < expected
                && q.rotate.is_none()
                && !q.stop
                && core.ok.load(Ordering::Relaxed)
            {
                // gather (see the module comment)
                q.want = expected;
                match &core.activity {
                    Some(a) => gather_until_idle(&core, a, &mut q),
                    None => gather_until_gap(&core, last_commit, &mut q),
                }
                q.want = usize::MAX;
            }
            if !q.buf.is_empty() {
                w.take_queued(&mut q);
            }
            last_cohort = std::mem::take(&mut q.waiters);
            core.has_waiters.store(false, Ordering::Relaxed);
            (q.rotate.take(), q.stop)
        };
        core.drained.notify_all();
        w.absorb_spare();
        let fsync = w.sync_failed
            || match core.policy {
                FsyncPolicy::Always => true,
                FsyncPolicy::EverySec => w.last_sync.elapsed() >= Duration::from_secs(1),
                FsyncPolicy::No => false,
            };
        let started = Instant::now();
        let flushed = if fsync && !stop && core.policy == FsyncPolicy::EverySec {
            let (relocked, r) = Writer::sync_unlocked(&writer, w);
            w = relocked;
            r
        } else {
            w.flush(fsync || stop)
        };
        last_commit = started.elapsed();
        if let Some(reply) = rotate {
            let _ = reply.send(w.rotate());
        }
        core.maybe_request_compaction();
        if stop {
            if let Err(e) = flushed.and_then(|()| w.cut_tail()) {
                tracing::error!("final log flush failed: {}", error_text(&e));
            }
            w.stopped = true;
            return;
        }
        if flushed.is_ok() {
            // the commit's waiters are woken: their replies and next
            // requests take longer than this
            w.preallocate();
        } else {
            // back off before retrying; new records keep queueing
            drop(w);
            std::thread::sleep(RETRY_AFTER.min(Duration::from_millis(200)));
        }
    }
}
