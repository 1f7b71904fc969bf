//! # magpie-persist
//!
//! Durability for a [`magpie_engine::Engine`]: every mutation is appended to
//! a log in a data directory, fsynced per policy with group commit; the log
//! is compacted into a snapshot while the server keeps serving (no fork, so
//! memory stays near the dataset size); at start the snapshot is loaded and
//! the log replayed, with torn tails truncated and corruption refused unless
//! repair is asked for. See `docs/persistence.md` for the format and the
//! guarantees.
//!
//! ```no_run
//! use std::sync::Arc;
//! use magpie_engine::{Engine, EngineConfig};
//! use magpie_persist::{Options, Persistence};
//!
//! let engine = Arc::new(Engine::new(EngineConfig::default()));
//! let p = Persistence::open(engine.clone(), Options::new("./data")).unwrap();
//! engine.txn(0, &[b"k"], magpie_engine::now_ms()).set(b"k", &[b"v"], 0, None);
//! p.shutdown();
//! ```

mod activity;
pub mod check;
mod compact;
pub mod files;
pub mod record;
pub mod recover;
mod writer;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use magpie_engine::{Engine, Mutation};
use parking_lot::Mutex;

pub use activity::RuntimeActivity;
pub use compact::Compacted;
use files::{segment_path, sync_dir, DirLock, Fs, RealFs};
use recover::{walk, Mode, Walk};
use writer::{write_now, Core, Writer};

/// When the log is fsynced (Redis's `appendfsync`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// After every batch of writes, before their replies are sent.
    Always,
    /// Once a second: a crash of the machine loses at most about a second.
    EverySec,
    /// Never explicitly; the OS decides. A crash of the process loses
    /// nothing written, a crash of the machine may lose more.
    No,
}

impl FromStr for FsyncPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "always" => Ok(FsyncPolicy::Always),
            "everysec" => Ok(FsyncPolicy::EverySec),
            "no" => Ok(FsyncPolicy::No),
            _ => Err(format!(
                "invalid fsync policy '{s}' (expected always, everysec or no)"
            )),
        }
    }
}

impl fmt::Display for FsyncPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FsyncPolicy::Always => "always",
            FsyncPolicy::EverySec => "everysec",
            FsyncPolicy::No => "no",
        })
    }
}

/// How to open a data directory.
#[derive(Clone)]
pub struct Options {
    /// The data directory (created if missing).
    pub dir: PathBuf,
    /// fsync policy.
    pub fsync: FsyncPolicy,
    /// Truncate at a corrupt record instead of refusing to start.
    pub repair: bool,
    /// Compact only once the live log is at least this many bytes...
    pub compact_min_size: u64,
    /// ...and at least this multiple of the snapshot's size.
    pub compact_ratio: f64,
    /// File system for log segments (tests inject failures here).
    pub fs: Arc<dyn Fs>,
    /// The server runtime's activity, when it reports it: under `always`
    /// a group commit then starts once the runtime runs out of work
    /// (see [`RuntimeActivity`]); without it, once waiters stop coming.
    pub activity: Option<Arc<RuntimeActivity>>,
}

impl Options {
    /// Defaults: `everysec`, no repair, compact at 64 MiB and 1x the snapshot.
    pub fn new(dir: impl Into<PathBuf>) -> Options {
        Options {
            dir: dir.into(),
            fsync: FsyncPolicy::EverySec,
            repair: false,
            compact_min_size: 64 << 20,
            compact_ratio: 1.0,
            fs: Arc::new(RealFs),
            activity: None,
        }
    }
}

/// What recovery found and did at open.
#[derive(Clone, Debug, Default)]
pub struct RecoveryReport {
    /// Entries loaded from the snapshot.
    pub snapshot_records: u64,
    /// Records replayed from the log.
    pub log_records: u64,
    /// Live segments replayed.
    pub segments: usize,
    /// Keys dropped at load because their expiry had passed.
    pub expired: usize,
    /// Torn tails truncated, repairs done.
    pub notes: Vec<String>,
    /// Time taken in ms.
    pub millis: u128,
}

/// The log failed while a batch's reply waited for its records: the writes
/// are applied in memory and stay queued (written, and so kept, once a
/// retry succeeds), so after a crash their outcome is unknown. The server
/// closes such a connection unanswered rather than acknowledge a write it
/// could lose, or refuse one it may keep; the text is the I/O error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotDurable(pub String);

impl std::fmt::Display for NotDurable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the log cannot be written: {}; the write is applied in memory and kept only if a retry of the log succeeds",
            self.0
        )
    }
}

impl std::error::Error for NotDurable {}

/// An open data directory: the log thread, the compaction thread and the
/// directory lock. Installed as the engine's mutation sink by [`open`](Persistence::open).
pub struct Persistence {
    core: Arc<Core>,
    /// Shared by the log thread and, under `everysec` and `no`, the
    /// connections that write their records before replying.
    writer: Arc<Mutex<Writer>>,
    engine: Arc<Engine>,
    compact_lock: Arc<Mutex<()>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    recovery: RecoveryReport,
    /// Held from open until shutdown.
    lock: Mutex<Option<DirLock>>,
}

impl Persistence {
    /// Locks `opts.dir`, recovers its contents into `engine` (which must be
    /// empty and have no sink), installs the log as the engine's sink and
    /// starts the log and compaction threads.
    pub fn open(engine: Arc<Engine>, opts: Options) -> io::Result<Arc<Persistence>> {
        let dir = opts.dir.clone();
        Self::open_inner(engine, opts).map_err(|e| {
            // a bare OS error (a full disk, say) says nothing of what failed
            if e.raw_os_error().is_some() {
                io::Error::new(
                    e.kind(),
                    format!(
                        "cannot open the data directory {}: {}",
                        dir.display(),
                        files::error_text(&e)
                    ),
                )
            } else {
                e
            }
        })
    }

    fn open_inner(engine: Arc<Engine>, opts: Options) -> io::Result<Arc<Persistence>> {
        let started = Instant::now();
        std::fs::create_dir_all(&opts.dir).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot create data directory {}: {e}", opts.dir.display()),
            )
        })?;
        let lock = DirLock::acquire(&opts.dir)?;
        let dbs = engine.databases();
        let w = walk(
            &opts.dir,
            Mode::Recover {
                repair: opts.repair,
            },
            |m| {
                if let Some(db) = db_of(&m) {
                    if db >= dbs {
                        return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("the log holds database {db} but only {dbs} are configured (--databases)"),
                    ));
                    }
                }
                engine.replay(m);
                Ok(())
            },
        )?;
        // invalidated keys replayed before their invalidation go first, so
        // the count below is of expired keys only
        engine.reclaim_all();
        let expired = engine.expire_cycle(magpie_engine::now_ms(), usize::MAX);
        // keys that died while the server was down are not expirations it saw
        engine
            .stats()
            .expired_keys
            .fetch_sub(expired as u64, Ordering::Relaxed);
        let manifest = w.manifest.expect("recovery always yields a manifest");
        let (last, last_len) = w
            .segments
            .last()
            .map_or((manifest.first_segment, 0), |(n, s)| (*n, s.valid_len));
        let closed: u64 = w
            .segments
            .iter()
            .filter(|(n, _)| *n != last)
            .map(|(_, s)| s.valid_len)
            .sum();
        let file = Arc::from(opts.fs.open_segment(&segment_path(&opts.dir, last))?);
        sync_dir(&opts.dir)?;

        let core = Arc::new(Core::new(
            opts.dir.clone(),
            opts.fsync,
            opts.compact_min_size,
            opts.compact_ratio,
            0,
            opts.activity.clone(),
        ));
        if let Some(a) = &opts.activity {
            core.listen_to(a);
        }
        core.segment.store(last, Ordering::Relaxed);
        core.closed_bytes.store(closed, Ordering::Relaxed);
        core.current_bytes.store(last_len, Ordering::Relaxed);
        core.snapshot_bytes
            .store(w.snapshot_bytes, Ordering::Relaxed);
        let recovery = RecoveryReport {
            snapshot_records: w.snapshot_records,
            log_records: w.log_records(),
            segments: w.segments.len(),
            expired,
            notes: w.notes,
            millis: started.elapsed().as_millis(),
        };
        if !engine.set_sink(core.clone()) {
            return Err(io::Error::other("the engine already has a mutation sink"));
        }
        let writer = Arc::new(Mutex::new(Writer {
            core: core.clone(),
            fs: opts.fs.clone(),
            file,
            synced_len: last_len,
            file_len: last_len,
            allocated: last_len,
            prealloc_after: None,
            pending: Vec::new(),
            written: 0,
            pending_seq: 0,
            last_sync: Instant::now(),
            sync_failed: false,
            spare: Vec::new(),
            stopped: false,
        }));
        let compact_lock = Arc::new(Mutex::new(()));
        let log_thread = std::thread::Builder::new()
            .name("magpie-log".into())
            .spawn({
                let writer = writer.clone();
                move || writer::run(writer)
            })?;
        let (c, e, l) = (core.clone(), engine.clone(), compact_lock.clone());
        let compact_thread = std::thread::Builder::new()
            .name("magpie-compact".into())
            .spawn(move || compact::run(&c, &e, &l))?;
        Ok(Arc::new(Persistence {
            core,
            writer,
            engine,
            compact_lock,
            threads: Mutex::new(vec![compact_thread, log_thread]),
            recovery,
            lock: Mutex::new(Some(lock)),
        }))
    }

    /// What recovery found at open.
    pub fn recovery(&self) -> &RecoveryReport {
        &self.recovery
    }

    /// The fsync policy in force.
    pub fn policy(&self) -> FsyncPolicy {
        self.core.policy
    }

    /// False while writing or fsyncing the log fails: the server must refuse
    /// writes then (MISCONF), and accepts them again once a retry succeeds.
    pub fn is_ok(&self) -> bool {
        self.core.ok.load(Ordering::Relaxed)
    }

    /// Text of the last write or fsync error (strerror style).
    pub fn last_error(&self) -> String {
        self.core.last_error.lock().clone()
    }

    /// Sequence number of the last record accepted.
    pub fn assigned_seq(&self) -> u64 {
        self.core.assigned.load(Ordering::Acquire)
    }

    /// Sequence number of the last record durable per the policy.
    pub fn durable_seq(&self) -> u64 {
        self.core.durable.load(Ordering::Acquire)
    }

    /// A point in the log, taken before a batch of requests runs and passed
    /// to [`wait_durable`](Self::wait_durable) after it: it tells whether
    /// records were accepted while the batch ran.
    pub fn mark(&self) -> u64 {
        self.assigned_seq()
    }

    /// Waits until every record accepted before this call is durable per
    /// the policy, so a reply sent afterwards never acknowledges a write, or
    /// shows data, that a crash could lose: fsynced under `always`, written
    /// to the file under `everysec` and `no` (a crash of the process then
    /// loses nothing acknowledged). Under those two the caller writes the
    /// records itself when the writer is free (see the writer's module
    /// comment).
    ///
    /// While the log cannot be written, a batch during which no record was
    /// accepted since `mark` (reads; writes are refused then) returns at
    /// once, so reads keep working. One that wrote gets [`NotDurable`]
    /// instead of waiting for the disk to come back, which could be never.
    pub async fn wait_durable(&self, mark: u64) -> Result<(), NotDurable> {
        let target = self.assigned_seq();
        if self.durable_seq() >= target {
            return Ok(());
        }
        let wrote = target > mark;
        let healthy = self.core.ok.load(Ordering::Relaxed);
        if self.core.policy != FsyncPolicy::Always && healthy {
            // let the other connections of this runtime thread queue their
            // records first: one write() then covers them all
            tokio::task::yield_now().await;
            if self.durable_seq() >= target || write_now(&self.writer) {
                return Ok(());
            }
        } else if !healthy {
            return self.failed_wait(target, wrote);
        }
        let target = self.core.register_waiter();
        let mut rx = self.core.durable_tx.subscribe();
        let core = &self.core;
        let _ = rx
            .wait_for(|d| *d >= target || !core.ok.load(Ordering::Relaxed))
            .await;
        self.failed_wait(target, wrote)
    }

    /// The end of a wait that the log's health may have cut short.
    fn failed_wait(&self, target: u64, wrote: bool) -> Result<(), NotDurable> {
        if !wrote || self.durable_seq() >= target {
            Ok(())
        } else {
            Err(NotDurable(self.last_error()))
        }
    }

    /// Fans durability news out to the connections waiting in
    /// [`wait_durable`](Self::wait_durable): spawn it once on the runtime
    /// that runs them. The log thread then wakes only this task per commit
    /// (one cross-thread wake-up instead of one per waiting connection);
    /// without it the log thread wakes every waiter itself. Runs until the
    /// runtime drops it.
    pub async fn relay_durability(self: Arc<Self>) {
        struct Active<'a>(&'a Core);
        impl Drop for Active<'_> {
            fn drop(&mut self) {
                // after this store the log thread publishes by itself; what
                // it published before is sent here, so nothing is missed
                self.0.relay_active.store(false, Ordering::SeqCst);
                self.0
                    .durable_tx
                    .send_replace(self.0.durable.load(Ordering::SeqCst));
            }
        }
        if self.core.relay_active.swap(true, Ordering::SeqCst) {
            return; // one relay is enough
        }
        let core = &self.core;
        let _active = Active(core);
        loop {
            let d = core.durable.load(Ordering::SeqCst);
            if *core.durable_tx.borrow() != d {
                core.durable_tx.send_replace(d);
            }
            core.relay_wake.notified().await;
        }
    }

    /// Blocking form of [`wait_durable`](Self::wait_durable) for threads
    /// outside an async runtime (tests, tools).
    pub fn wait_durable_blocking(&self) {
        let target = self.assigned_seq();
        if self.core.policy != FsyncPolicy::Always && write_now(&self.writer) {
            return;
        }
        let mut rx = self.core.durable_tx.subscribe();
        while *rx.borrow_and_update() < target {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// Number of fsyncs of the log so far (under `always`, one per group
    /// commit).
    pub fn fsyncs(&self) -> u64 {
        self.core.fsyncs.load(Ordering::Relaxed)
    }

    /// Bytes of the live log segments.
    pub fn log_bytes(&self) -> u64 {
        self.core.log_bytes()
    }

    /// Compacts now, in the calling thread (waits for a running compaction).
    pub fn compact(&self) -> io::Result<Compacted> {
        let _one = self.compact_lock.lock();
        self.core.compacting.store(true, Ordering::Relaxed);
        let r = compact::compact(&self.core, &self.engine);
        self.core.compacting.store(false, Ordering::Relaxed);
        r
    }

    /// Stops compaction, writes and fsyncs everything queued, joins the
    /// threads and releases the directory lock. Writes after this are no
    /// longer logged.
    pub fn shutdown(&self) {
        self.core.compact_stop.store(true, Ordering::SeqCst);
        {
            let _w = self.core.compact_wanted.lock();
            self.core.compact_wake.notify_all();
        }
        let threads = std::mem::take(&mut *self.threads.lock());
        let mut threads = threads.into_iter();
        if let Some(c) = threads.next() {
            let _ = c.join();
        }
        self.core.stop();
        for t in threads {
            let _ = t.join();
        }
        self.lock.lock().take();
    }
}

fn db_of(m: &Mutation<'_>) -> Option<usize> {
    match *m {
        Mutation::Set { db, .. }
        | Mutation::Del { db, .. }
        | Mutation::Expire { db, .. }
        | Mutation::AddItem { db, .. }
        | Mutation::RemoveItem { db, .. }
        | Mutation::FlushDb { db }
        | Mutation::SetTagged { db, .. }
        | Mutation::SetTags { db, .. }
        | Mutation::InvalidateTags { db, .. }
        | Mutation::InvalidatePrefixes { db, .. } => Some(db),
        Mutation::FlushAll => None,
    }
}

/// Counts from an offline check of a data directory.
#[derive(Debug, Default)]
pub struct CheckReport {
    /// What the walk found.
    pub walk: Walk,
    /// SET records in the log.
    pub sets: u64,
    /// DEL records in the log.
    pub dels: u64,
    /// EXPIRE records in the log.
    pub expires: u64,
    /// FLUSHDB / FLUSHALL records in the log.
    pub flushes: u64,
    /// Of the SET records, those of tagged keys.
    pub tagged_sets: u64,
    /// Tag changes of existing keys (TAG ADD / REMOVE) in the log.
    pub tag_changes: u64,
    /// Tag invalidation records in the log (one per call, however many
    /// keys it killed).
    pub tag_invalidations: u64,
    /// Prefix invalidation records in the log.
    pub prefix_invalidations: u64,
    /// Collection item records (ADDITEM / REMITEM) in the log.
    pub items: u64,
    /// True when a server held the directory's lock during the check.
    pub in_use: bool,
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = &self.walk;
        if self.in_use {
            writeln!(
                f,
                "note: a running server holds this directory; its tail may be moving"
            )?;
        }
        match w.manifest {
            None => writeln!(f, "manifest: none")?,
            Some(m) => writeln!(
                f,
                "manifest: snapshot {}, first segment {}",
                m.snapshot
                    .map_or("none".to_string(), |n| format!("snap.{n:06}")),
                m.first_segment
            )?,
        }
        writeln!(
            f,
            "snapshot: {} entries, {} bytes",
            w.snapshot_records, w.snapshot_bytes
        )?;
        for (n, s) in &w.segments {
            if s.valid_len == s.file_len {
                writeln!(f, "log.{n:06}: {} records, {} bytes", s.records, s.file_len)?;
            } else {
                writeln!(
                    f,
                    "log.{n:06}: {} records in {} bytes, file {} bytes",
                    s.records, s.valid_len, s.file_len
                )?;
            }
        }
        writeln!(
            f,
            "log records: {} ({} set, {} del, {} expire, {} flush, {} item)",
            w.log_records(),
            self.sets,
            self.dels,
            self.expires,
            self.flushes,
            self.items
        )?;
        if self.tagged_sets + self.tag_changes + self.tag_invalidations + self.prefix_invalidations
            > 0
        {
            writeln!(
                f,
                "tags: {} tagged set, {} tag change, {} tag invalidation, {} prefix invalidation",
                self.tagged_sets,
                self.tag_changes,
                self.tag_invalidations,
                self.prefix_invalidations
            )?;
        }
        for n in &w.notes {
            writeln!(f, "{n}")?;
        }
        write!(
            f,
            "status: {}",
            if w.notes.is_empty() {
                "ok"
            } else {
                "ok (see notes)"
            }
        )
    }
}

/// Verifies the data directory `dir` without changing it. Err (naming the
/// file and offset) when recovery would refuse to start.
pub fn check(dir: &Path) -> io::Result<CheckReport> {
    if !dir.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{} is not a directory", dir.display()),
        ));
    }
    let mut r = CheckReport {
        in_use: DirLock::is_held(dir),
        ..CheckReport::default()
    };
    let (mut sets, mut dels, mut expires, mut flushes, mut items) = (0, 0, 0, 0, 0);
    let (mut tagged, mut changes, mut tag_inv, mut prefix_inv) = (0u64, 0, 0, 0);
    let w = walk(dir, Mode::Check, |m| {
        match m {
            Mutation::Set { .. } => sets += 1,
            Mutation::SetTagged { .. } => {
                sets += 1;
                tagged += 1;
            }
            Mutation::Del { .. } => dels += 1,
            Mutation::Expire { .. } => expires += 1,
            Mutation::FlushDb { .. } | Mutation::FlushAll => flushes += 1,
            Mutation::SetTags { .. } => changes += 1,
            Mutation::InvalidateTags { .. } => tag_inv += 1,
            Mutation::InvalidatePrefixes { .. } => prefix_inv += 1,
            Mutation::AddItem { .. } | Mutation::RemoveItem { .. } => items += 1,
        }
        Ok(())
    })?;
    // the walk counted snapshot entries as SETs too; report log records only
    r.sets = sets - (w.snapshot_records - w.snapshot_items);
    r.items = items - w.snapshot_items;
    // and of the tagged ones, those outside the snapshot
    let mut snapshot_tagged = 0;
    if let Some(n) = w.manifest.and_then(|m| m.snapshot) {
        record::scan_file(&files::snapshot_path(dir, n), |m| {
            snapshot_tagged += matches!(m, Mutation::SetTagged { .. }) as u64;
            Ok(())
        })?;
    }
    r.tagged_sets = tagged - snapshot_tagged.min(tagged);
    r.tag_changes = changes;
    r.tag_invalidations = tag_inv;
    r.prefix_invalidations = prefix_inv;
    r.dels = dels;
    r.expires = expires;
    r.flushes = flushes;
    r.walk = w;
    Ok(r)
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_types;
