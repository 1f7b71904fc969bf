//! # magpie-engine
//!
//! Magpie's keyspace as a library: binary-safe keys and values with client
//! flags, a CAS version per write and optional expiry, split over logical
//! databases and, within each, over shards behind their own locks.
//!
//! The engine is synchronous and knows nothing of sockets or protocols:
//! every front door (RESP, memcached, HTTP) turns its requests into calls on
//! [`Engine`] and [`Txn`]. All reads and writes of a key go through a [`Txn`],
//! which holds the locks of the shards it touches; a multi-key operation locks
//! its shards in ascending order, so it is atomic and cannot deadlock.
//!
//! ```
//! use magpie_engine::{Engine, EngineConfig, now_ms};
//!
//! let engine = Engine::new(EngineConfig::default());
//! let now = now_ms();
//! engine.txn(0, &[b"greeting"], now).set(b"greeting", &[b"hello"], 0, None);
//! let mut txn = engine.txn(0, &[b"greeting"], now);
//! assert_eq!(txn.get(b"greeting").unwrap().value, b"hello");
//! ```

mod collections;
pub use collections::Detached;
mod entry;
mod evict;
pub mod glob;
mod shard;
pub mod tags;
pub mod types;

use std::cell::Cell;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use foldhash::fast::RandomState;
use parking_lot::{Mutex, MutexGuard};

use entry::{idle_secs, Entry, Extras};
pub use entry::{Meta, MAX_PART_LEN};
pub use evict::{
    EvictionPolicy, MemoryLimit, OutOfMemory, DEFAULT_SAMPLES, MAX_EVICTIONS_PER_CALL, MAX_SAMPLES,
};
use shard::Shard;
pub use tags::{encode_tag_list, TagError, TagLimits, TagList, TagSize, TagSummary};
use tags::{Invalidations, Registry, ShardsLocked};
use types::SharedLimits;
pub use types::{Hash, Kind, Set, TypeLimits, WrongType};

/// Current wall-clock time in ms since the Unix epoch: the unit of every
/// expiry the engine stores.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Sizing of an [`Engine`].
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Number of logical databases (Redis `SELECT 0..N-1`).
    pub databases: usize,
    /// Shards per database; rounded up to a power of two, at most 256.
    pub shards: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        EngineConfig {
            databases: 16,
            shards: (cores * 4).clamp(8, 256),
        }
    }
}

/// Period of the access clock behind [`Txn::idle_time`] and
/// [`Fetched::idle_before`], in seconds: 2^24 (about 194 days), the range of
/// Redis's 24-bit LRU clock. Idle times are exact below it and taken modulo
/// it above, as in Redis.
pub const ACCESS_CLOCK_PERIOD_SECS: u64 = 1 << 24;

/// A read-only view of a stored value and its metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct View<'a> {
    /// The stored bytes (empty for a collection: read those through
    /// [`Txn::read_hash`] and friends).
    pub value: &'a [u8],
    /// CAS, expiry and flags.
    pub meta: Meta,
    /// What the key holds.
    pub kind: Kind,
}

/// What [`Txn::fetch`] reads: the value, and the access state it had
/// before this read (memcached's meta `h` and `l` flags report those).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fetched<'a> {
    /// The stored value and its metadata.
    pub view: View<'a>,
    /// Whether a retrieval had already fetched this version.
    pub fetched_before: bool,
    /// Whole seconds since the key's previous access (modulo
    /// [`ACCESS_CLOCK_PERIOD_SECS`]).
    pub idle_before: u32,
}

/// Largest CAS a caller may choose for a write ([`Txn::use_cas`]):
/// 2^63 - 1. The engine's counter moves past every chosen value so that
/// later automatic CAS values stay unique and increasing; capping chosen
/// values here leaves the counter at least 2^63 more writes before it
/// could wrap (never, in practice), and keeps every CAS inside the signed
/// 64-bit range that many client libraries store it in.
pub const MAX_CHOSEN_CAS: u64 = i64::MAX as u64;

/// A CAS refused by [`Txn::use_cas`]: 0 (which the memcached protocol
/// reads as "no CAS" and the engine never issues) or above
/// [`MAX_CHOSEN_CAS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CasOutOfRange;

impl std::fmt::Display for CasOutOfRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CAS must be between 1 and {MAX_CHOSEN_CAS}")
    }
}

impl std::error::Error for CasOutOfRange {}

/// Counts kept by the engine for INFO / stats.
#[derive(Debug, Default)]
pub struct EngineStats {
    /// Keys removed because their TTL passed (lazily, by the active cycle
    /// or as an eviction's first choice).
    pub expired_keys: AtomicU64,
    /// Keys removed to stay under the memory limit ([`Engine::make_room`]).
    pub evicted_keys: AtomicU64,
    /// Tag invalidations that killed at least one key ([`Engine::invalidate_tags`]).
    pub tag_invalidations: AtomicU64,
    /// Prefix invalidations ([`Engine::invalidate_prefixes`]).
    pub prefix_invalidations: AtomicU64,
    /// Keys killed by tag invalidations (TAG CARD at each call).
    pub keys_invalidated: AtomicU64,
    /// Dead (invalidated) entries removed, by reads or the expiry cycle.
    pub dead_reclaimed: AtomicU64,
}

/// Per-database figures for INFO keyspace.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DbInfo {
    /// Keys in the table (expired keys count until they are collected).
    pub keys: usize,
    /// Keys with a TTL.
    pub expires: usize,
}

/// Memory held by the keyspace, as the engine accounts it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryInfo {
    /// Bytes of entry allocations (headers, keys, values).
    pub entries: usize,
    /// Bytes of hash-table buckets.
    pub tables: usize,
    /// Bytes of tag bookkeeping (registries, member indexes, pending
    /// invalidations).
    pub tags: usize,
}

/// One change to the keyspace, as handed to a [`MutationSink`]: enough to
/// replay it exactly (a durable log, a replica). Every record describes the
/// outcome of the operation, never the command that caused it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutation<'a> {
    /// `key` now holds `value` with this metadata (every kind of write that
    /// changes the value or flags: SET, APPEND, INCR, set_flags...).
    Set {
        /// Database index.
        db: usize,
        /// The key.
        key: &'a [u8],
        /// The whole new value.
        value: &'a [u8],
        /// Client flags.
        flags: u32,
        /// Absolute expiry in ms, if any.
        expire_at: Option<u64>,
        /// CAS of the new version.
        cas: u64,
    },
    /// `key` was removed by a command (not by expiry).
    Del {
        /// Database index.
        db: usize,
        /// The key.
        key: &'a [u8],
    },
    /// The expiry of an existing `key` changed (value and CAS kept).
    Expire {
        /// Database index.
        db: usize,
        /// The key.
        key: &'a [u8],
        /// New absolute expiry in ms, or None for no expiry.
        at: Option<u64>,
    },
    /// Database `db` was emptied.
    FlushDb {
        /// Database index.
        db: usize,
    },
    /// Every database was emptied.
    FlushAll,
    /// Like [`Mutation::Set`], for a key that carries tags: the new
    /// version holds exactly `tags` (a write that keeps the key's tags, such
    /// as APPEND on a tagged key, records them again).
    SetTagged {
        /// Database index.
        db: usize,
        /// The key.
        key: &'a [u8],
        /// The whole new value.
        value: &'a [u8],
        /// Client flags.
        flags: u32,
        /// Absolute expiry in ms, if any.
        expire_at: Option<u64>,
        /// CAS of the new version.
        cas: u64,
        /// The key's tags (not empty).
        tags: TagList<'a>,
    },
    /// The tags of an existing `key` became exactly `tags` (TAG ADD /
    /// REMOVE), value, flags and expiry kept, in a new version `cas`.
    SetTags {
        /// Database index.
        db: usize,
        /// The key.
        key: &'a [u8],
        /// The key's tags now (may be empty).
        tags: TagList<'a>,
        /// CAS of the new version.
        cas: u64,
    },
    /// Every key of `db` written with one of `tags` before `epoch` died.
    InvalidateTags {
        /// Database index.
        db: usize,
        /// The invalidation's epoch (from the CAS counter).
        epoch: u64,
        /// The tags invalidated.
        tags: TagList<'a>,
    },
    /// Every key of `db` starting with one of `prefixes` written before
    /// `epoch` died.
    InvalidatePrefixes {
        /// Database index.
        db: usize,
        /// The invalidation's epoch (from the CAS counter).
        epoch: u64,
        /// The key prefixes invalidated.
        prefixes: TagList<'a>,
    },
    /// Item `item` of the collection `key` (a hash's field, a set's member)
    /// now exists, with `value` (a hash field's value; empty for a set). A
    /// collection is created by its first item; a key holding another kind
    /// is replaced (replay meets that only when a snapshot is newer than
    /// the record). One record per item changed, whatever the collection's
    /// size; the key's metadata after the change rides along, so replay
    /// needs no other state.
    AddItem {
        /// Database index.
        db: usize,
        /// The key.
        key: &'a [u8],
        /// Hash or set.
        kind: Kind,
        /// Field or member.
        item: &'a [u8],
        /// The field's value (empty for sets).
        value: &'a [u8],
        /// The key's absolute expiry in ms, if any.
        expire_at: Option<u64>,
        /// The key's CAS after the change.
        cas: u64,
    },
    /// Item `item` left the collection `key`; a collection left empty is
    /// deleted with it (no separate Del record).
    RemoveItem {
        /// Database index.
        db: usize,
        /// The key.
        key: &'a [u8],
        /// Hash or set.
        kind: Kind,
        /// Field or member.
        item: &'a [u8],
        /// The key's absolute expiry in ms, if any.
        expire_at: Option<u64>,
        /// The key's CAS after the change.
        cas: u64,
    },
}

/// Receives every [`Mutation`] as it is applied. Called while the shard
/// lock(s) of the change are held, so the order in which a sink sees the
/// records of one key is the order they were applied in. Implementations
/// must be quick and must not call back into the engine.
pub trait MutationSink: Send + Sync {
    /// Takes one record.
    fn record(&self, m: Mutation<'_>);
}

struct Db {
    /// The shards. Lock through [`Engine::lock`] to change one, so the
    /// byte counts follow; a bare `lock()` is for reading.
    shards: Box<[Mutex<Shard>]>,
    /// Sum of the shards' [`Shard::footprint`], kept as each guard from
    /// [`Engine::lock`] is dropped.
    used: AtomicUsize,
    /// The engine's sum over every database, shared by all of them (so a
    /// guard reaches both counts through its database).
    all_used: Arc<AtomicUsize>,
    /// Tag names, ids and indexes. Lock after the shard locks, never before.
    tags: Mutex<Registry>,
    /// The database's invalidation epochs (see [`ShardsLocked`]).
    inv: ShardsLocked<Invalidations>,
}

impl Db {
    /// Adds a change of bytes to this database's count and the engine's.
    fn account(&self, before: usize, after: usize) {
        if after > before {
            self.used.fetch_add(after - before, Ordering::Relaxed);
            self.all_used.fetch_add(after - before, Ordering::Relaxed);
        } else if after < before {
            self.used.fetch_sub(before - after, Ordering::Relaxed);
            self.all_used.fetch_sub(before - after, Ordering::Relaxed);
        }
    }

    /// Locks the tag registry for a change; its change of bytes is
    /// accounted when the guard goes.
    fn registry(&self) -> RegistryGuard<'_> {
        let guard = self.tags.lock();
        RegistryGuard {
            before: guard.bytes(),
            guard,
            db: self,
        }
    }

    /// The invalidation epochs.
    ///
    /// # Safety
    /// The caller holds one of this database's shard locks for as long as
    /// the reference lives.
    unsafe fn inv(&self) -> &Invalidations {
        self.inv.get()
    }

    /// Tells the registry about the tagged entries that left `shard`
    /// (whose lock the caller holds).
    #[cold]
    #[inline(never)]
    fn settle(&self, shard: &mut Shard) {
        if shard.departed.is_empty() {
            return;
        }
        let mut reg = self.registry();
        self.settle_into(&mut reg, shard);
    }

    /// [`Db::settle`] with the registry already locked.
    fn settle_into(&self, reg: &mut Registry, shard: &mut Shard) {
        // SAFETY: the caller holds `shard`'s lock.
        let inv = unsafe { self.inv.get() };
        for (hash, e) in shard.departed.drain(..) {
            reg.depart(inv, hash, &e);
        }
    }
}

/// A lock of a database's tag registry that accounts the change of its
/// bytes when dropped.
struct RegistryGuard<'a> {
    guard: MutexGuard<'a, Registry>,
    before: usize,
    db: &'a Db,
}

impl std::ops::Deref for RegistryGuard<'_> {
    type Target = Registry;
    fn deref(&self) -> &Registry {
        &self.guard
    }
}

impl std::ops::DerefMut for RegistryGuard<'_> {
    fn deref_mut(&mut self) -> &mut Registry {
        &mut self.guard
    }
}

impl Drop for RegistryGuard<'_> {
    fn drop(&mut self) {
        self.guard.forget_unused();
        self.db.account(self.before, self.guard.bytes());
    }
}

/// A shard lock that accounts the shard's change of bytes, in its
/// database's count and the engine's, when dropped.
struct ShardGuard<'a> {
    /// The lock, or None when this thread's [`Exclusive`] section holds it.
    _guard: Option<MutexGuard<'a, Shard>>,
    /// The locked shard.
    shard: *mut Shard,
    before: usize,
    db: &'a Db,
}

impl std::ops::Deref for ShardGuard<'_> {
    type Target = Shard;
    #[inline]
    fn deref(&self) -> &Shard {
        // SAFETY: the shard's lock is held (by `guard` or this thread's
        // exclusive section) for as long as this guard lives
        unsafe { &*self.shard }
    }
}

impl std::ops::DerefMut for ShardGuard<'_> {
    #[inline]
    fn deref_mut(&mut self) -> &mut Shard {
        // SAFETY: as for deref; `&mut self` makes this the only reference
        unsafe { &mut *self.shard }
    }
}

impl Drop for ShardGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        if !self.departed.is_empty() {
            // SAFETY: the shard's lock is held (see Deref)
            self.db.settle(unsafe { &mut *self.shard });
        }
        let after = self.footprint();
        if after > self.before {
            let grew = after - self.before;
            self.db.used.fetch_add(grew, Ordering::Relaxed);
            self.db.all_used.fetch_add(grew, Ordering::Relaxed);
        } else if after < self.before {
            let shrank = self.before - after;
            self.db.used.fetch_sub(shrank, Ordering::Relaxed);
            self.db.all_used.fetch_sub(shrank, Ordering::Relaxed);
        }
    }
}

/// `now` (ms) in whole seconds, saturating (u32 seconds last until 2106).
fn whole_secs(now: u64) -> u32 {
    u32::try_from(now / 1000).unwrap_or(u32::MAX)
}

/// The engine's access clock: the latest whole second (since the Unix
/// epoch) any transaction has started at. Read once per transaction and
/// written at most once a second, so it sits on a cache line of its own,
/// away from the CAS counter every write bumps.
#[repr(align(64))]
struct AccessClock(AtomicU32);

impl AccessClock {
    /// The clock reading for a transaction evaluated at `now` ms: its own
    /// second, or a later one another transaction already recorded. Never
    /// goes back, so a transaction that took its `now` early (a long
    /// pipelined batch) cannot see an entry as accessed in its future, and
    /// a wall clock stepped back only holds the clock until it catches up.
    fn reading(&self, now: u64) -> u32 {
        let secs = whole_secs(now);
        let seen = self.0.load(Ordering::Relaxed);
        if secs <= seen {
            return seen;
        }
        self.0.fetch_max(secs, Ordering::Relaxed).max(secs)
    }
}

thread_local! {
    /// The address of the engine whose [`Exclusive`] section this thread
    /// holds (0: none): its shard locks are already this thread's.
    static EXCLUSIVE_OWNER: Cell<usize> = const { Cell::new(0) };
}

/// An exclusive section over the whole engine ([`Engine::exclusive`]): it
/// holds every shard lock of every database, so no other thread's
/// transaction, flush, walk, expiry cycle or eviction runs while it lives,
/// and this thread's own transactions use the locks it holds. Everything
/// this thread does meanwhile (EXEC's queued commands) is one step for
/// every door.
pub struct Exclusive<'a> {
    engine: &'a Engine,
    /// Every shard's lock, database by database in ascending order.
    _held: Vec<MutexGuard<'a, Shard>>,
}

impl Drop for Exclusive<'_> {
    fn drop(&mut self) {
        // before the locks go: no other thread can see the flag while it
        // could still reach a shard through it
        self.engine.exclusive.store(false, Ordering::Relaxed);
        EXCLUSIVE_OWNER.with(|o| o.set(0));
    }
}

/// What WATCH remembers of a key ([`Txn::version`]): equal versions mean
/// the key was neither written, deleted, expired nor given a new TTL in
/// between (a TTL change of another key of the same shard also counts as a
/// change: the check errs on the side of aborting).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyVersion {
    /// The live value's CAS (unique per write), 0 when absent.
    cas: u64,
    /// The shard's metadata-change count when the key is live, else 0.
    meta_changes: u64,
}

/// The keyspace: `databases` x `shards` hash tables plus the CAS counter.
pub struct Engine {
    /// True while an [`Exclusive`] section holds every shard lock: only
    /// then does [`Engine::lock`] check whether this thread is its owner
    /// (one relaxed load on every lock otherwise).
    exclusive: AtomicBool,
    dbs: Box<[Db]>,
    shard_mask: usize,
    hasher: RandomState,
    next_cas: AtomicU64,
    stats: EngineStats,
    sink: OnceLock<Arc<dyn MutationSink>>,
    clock: AccessClock,
    /// [`MemoryLimit::max_bytes`] (0 = none): read by every write command.
    max_bytes: AtomicUsize,
    /// [`MemoryLimit::policy`], as [`EvictionPolicy::to_u8`].
    policy: AtomicU8,
    /// [`MemoryLimit::samples`].
    samples: AtomicUsize,
    /// Counter behind [`Engine::random`].
    rng: AtomicU64,
    /// Sum of every database's `used`: what the memory limit reads, in one
    /// load per command.
    used: Arc<AtomicUsize>,
    /// [`TagLimits::max_tags_per_key`].
    max_tags_per_key: AtomicUsize,
    /// [`TagLimits::max_tag_len`].
    max_tag_len: AtomicUsize,
    /// Collection encoding thresholds.
    limits: SharedLimits,
}

impl Engine {
    /// Creates an empty keyspace.
    pub fn new(config: EngineConfig) -> Engine {
        let shards = config.shards.clamp(1, 256).next_power_of_two();
        let used = Arc::new(AtomicUsize::new(0));
        let dbs = (0..config.databases.max(1))
            .map(|_| Db {
                shards: (0..shards).map(|_| Mutex::new(Shard::default())).collect(),
                used: AtomicUsize::new(0),
                all_used: used.clone(),
                tags: Mutex::new(Registry::default()),
                inv: ShardsLocked::default(),
            })
            .collect();
        Engine {
            exclusive: AtomicBool::new(false),
            dbs,
            shard_mask: shards - 1,
            hasher: RandomState::default(),
            next_cas: AtomicU64::new(1),
            stats: EngineStats::default(),
            sink: OnceLock::new(),
            // replayed entries take this reading: their access times are
            // not persisted, so a restart counts as their last access
            clock: AccessClock(AtomicU32::new(whole_secs(now_ms()))),
            max_bytes: AtomicUsize::new(0),
            policy: AtomicU8::new(EvictionPolicy::NoEviction.to_u8()),
            samples: AtomicUsize::new(DEFAULT_SAMPLES),
            rng: AtomicU64::new(0),
            used,
            max_tags_per_key: AtomicUsize::new(tags::DEFAULT_MAX_TAGS_PER_KEY),
            max_tag_len: AtomicUsize::new(tags::DEFAULT_MAX_TAG_LEN),
            limits: SharedLimits::new(TypeLimits::default()),
        }
    }

    /// Waits until no other thread holds a shard and returns a section in
    /// which only this thread reaches the keyspace: every other thread's
    /// transactions, flushes, walks, expiry cycles and evictions wait for
    /// it to end, while this thread's own run as usual on the locks the
    /// section holds. This is how EXEC runs its queued commands as one
    /// step. Panics when this thread already holds one; the thread must not
    /// hold a [`Txn`] when calling it (it would wait for itself).
    pub fn exclusive(&self) -> Exclusive<'_> {
        let me = self as *const Engine as usize;
        EXCLUSIVE_OWNER.with(|o| {
            assert_eq!(o.get(), 0, "exclusive sections do not nest");
            // the order every multi-shard lock takes (see flush_all)
            let held: Vec<_> = self
                .dbs
                .iter()
                .flat_map(|d| d.shards.iter().map(|s| s.lock()))
                .collect();
            o.set(me);
            self.exclusive.store(true, Ordering::Relaxed);
            Exclusive {
                engine: self,
                _held: held,
            }
        })
    }

    /// [`Engine::lock`] while an exclusive section is open: the thread
    /// that holds it reaches the shard through the section's lock, every
    /// other thread waits for the lock as usual.
    #[cold]
    #[inline(never)]
    fn lock_in_a_section(&self, db: usize, i: usize) -> ShardGuard<'_> {
        let d = &self.dbs[db];
        if EXCLUSIVE_OWNER.with(Cell::get) != self as *const Engine as usize {
            let mut guard = d.shards[i].lock();
            return ShardGuard {
                before: guard.footprint(),
                shard: &mut *guard,
                _guard: Some(guard),
                db: d,
            };
        }
        let shard = d.shards[i].data_ptr();
        // SAFETY: this thread's Exclusive section holds the lock of every
        // shard, so no other thread reaches this one until it ends, and a
        // thread never holds two guards of one shard at a time (with a
        // mutex that would be a self-deadlock; Txn dedups its shards)
        let before = unsafe { (*shard).footprint() };
        ShardGuard {
            _guard: None,
            shard,
            before,
            db: d,
        }
    }

    /// Locks shard `i` of database `db` for a change: when the guard goes,
    /// the change in the shard's bytes is added to the database's count and
    /// the engine's (two atomic operations, and none when the bytes did not
    /// move, as for reads and same-size overwrites).
    #[inline(always)]
    fn lock(&self, db: usize, i: usize) -> ShardGuard<'_> {
        if self.exclusive.load(Ordering::Relaxed) {
            return self.lock_in_a_section(db, i);
        }
        let db = &self.dbs[db];
        let mut guard = db.shards[i].lock();
        ShardGuard {
            before: guard.footprint(),
            shard: &mut *guard,
            _guard: Some(guard),
            db,
        }
    }

    /// Installs the sink that receives every later mutation (persistence).
    /// Only one sink can ever be installed; returns false if one already was.
    /// Without a sink, writes pay one pointer check.
    pub fn set_sink(&self, sink: Arc<dyn MutationSink>) -> bool {
        self.sink.set(sink).is_ok()
    }

    fn sink(&self) -> Option<&dyn MutationSink> {
        self.sink.get().map(|s| &**s)
    }

    /// Applies a logged mutation without emitting a record (recovery). A
    /// replayed key's last access is the engine's clock (access times are not
    /// logged; Redis too starts them afresh when it loads an AOF). Expiry
    /// is not evaluated: an entry keeps its expiry, even a past one, so later
    /// records (a PERSIST) act on it exactly as they did live; call
    /// [`Engine::expire_cycle`] with `usize::MAX` once replay is over.
    /// Set records keep their CAS, and later CAS values are issued above it.
    /// Panics if a record names a database out of range (check first).
    pub fn replay(&self, m: Mutation<'_>) {
        match m {
            Mutation::Set {
                db,
                key,
                value,
                flags,
                expire_at,
                cas,
            } => self.replay_set(db, key, value, flags, expire_at, cas, TagList::EMPTY),
            Mutation::SetTagged {
                db,
                key,
                value,
                flags,
                expire_at,
                cas,
                tags,
            } => self.replay_set(db, key, value, flags, expire_at, cas, tags),
            Mutation::SetTags { db, key, tags, cas } => {
                self.next_cas
                    .fetch_max(cas.saturating_add(1), Ordering::Relaxed);
                let hash = self.hash(key);
                let mut shard = self.lock(db, self.shard_of(hash));
                let d = &self.dbs[db];
                let Some(old) = shard.peek(hash, key, 0) else {
                    return;
                };
                if old.is_collection() {
                    // never logged for one (TAG ADD refuses a collection)
                    return;
                }
                let meta = Meta { cas, ..old.meta() };
                let mut reg = d.registry();
                d.settle_into(&mut reg, &mut shard);
                let mut ids: Vec<u32> = tags.iter().map(|t| reg.intern(t)).collect();
                ids.sort_unstable();
                ids.dedup();
                // SAFETY: `shard` is locked for the rest of this call.
                let inv = unsafe { d.inv() };
                let old = shard.peek(hash, key, 0).expect("still there");
                let entry = old.rebuilt(
                    meta,
                    Extras {
                        epoch: inv.epoch_for(cas),
                        tags: &ids,
                    },
                );
                if let Some(old) = shard.insert(&self.hasher, hash, entry) {
                    reg.depart(inv, hash, &old);
                }
                reg.arrive(hash, ids.iter().copied());
            }
            Mutation::InvalidateTags { db, epoch, tags } => {
                self.next_cas
                    .fetch_max(epoch.saturating_add(1), Ordering::Relaxed);
                let mut guards = self.lock_all(db);
                self.invalidate_locked(db, &mut guards, tags, epoch, true);
            }
            Mutation::InvalidatePrefixes {
                db,
                epoch,
                prefixes,
            } => {
                self.next_cas
                    .fetch_max(epoch.saturating_add(1), Ordering::Relaxed);
                let mut guards = self.lock_all(db);
                self.invalidate_prefixes_locked(db, &mut guards, prefixes, epoch);
            }
            Mutation::Del { db, key } => {
                let hash = self.hash(key);
                let mut shard = self.lock(db, self.shard_of(hash));
                if let Some(old) = shard.remove(hash, key) {
                    shard.depart(hash, old);
                }
            }
            Mutation::Expire { db, key, at } => {
                let hash = self.hash(key);
                self.lock(db, self.shard_of(hash))
                    .update_meta(&self.hasher, hash, key, |m| Meta { expire_at: at, ..m });
            }
            Mutation::FlushDb { db } => {
                let mut guards = self.lock_all(db);
                self.clear_locked(db, &mut guards);
            }
            Mutation::FlushAll => {
                for db in 0..self.dbs.len() {
                    let mut guards = self.lock_all(db);
                    self.clear_locked(db, &mut guards);
                }
            }
            Mutation::AddItem { .. } | Mutation::RemoveItem { .. } => self.replay_item(m),
        }
    }

    /// [`Engine::replay`] of a Set or SetTagged record.
    #[allow(clippy::too_many_arguments)]
    fn replay_set(
        &self,
        db: usize,
        key: &[u8],
        value: &[u8],
        flags: u32,
        expire_at: Option<u64>,
        cas: u64,
        tags: TagList<'_>,
    ) {
        let hash = self.hash(key);
        let meta = Meta {
            cas,
            expire_at,
            flags,
        };
        self.next_cas
            .fetch_max(cas.saturating_add(1), Ordering::Relaxed);
        let clock = self.clock.0.load(Ordering::Relaxed);
        let d = &self.dbs[db];
        let mut shard = self.lock(db, self.shard_of(hash));
        // SAFETY: `shard` is locked.
        let epoch = unsafe { d.inv() }.epoch_for(cas);
        if tags.is_empty() {
            let extras = Extras { epoch, tags: &[] };
            let entry = Entry::build_extra(key, value.len(), meta, clock, extras, |d| {
                d.copy_from_slice(value)
            });
            if let Some(old) = shard.insert(&self.hasher, hash, entry) {
                shard.depart(hash, old);
            }
            return;
        }
        let mut reg = d.registry();
        d.settle_into(&mut reg, &mut shard);
        let mut ids: Vec<u32> = tags.iter().map(|t| reg.intern(t)).collect();
        ids.sort_unstable();
        ids.dedup();
        let extras = Extras { epoch, tags: &ids };
        let entry = Entry::build_extra(key, value.len(), meta, clock, extras, |d| {
            d.copy_from_slice(value)
        });
        // SAFETY: `shard` is locked for the rest of this call.
        let inv = unsafe { d.inv() };
        if let Some(old) = shard.insert(&self.hasher, hash, entry) {
            reg.depart(inv, hash, &old);
        }
        reg.arrive(hash, ids.iter().copied());
    }

    /// Every shard lock of `db`, in ascending order.
    fn lock_all(&self, db: usize) -> Vec<ShardGuard<'_>> {
        (0..self.shards()).map(|i| self.lock(db, i)).collect()
    }

    /// Empties `db`, whose every shard lock is in `guards`.
    fn clear_locked(&self, db: usize, guards: &mut [ShardGuard<'_>]) {
        for g in guards.iter_mut() {
            g.clear();
        }
        let d = &self.dbs[db];
        // SAFETY: `guards` holds every shard lock of `db`.
        let inv = unsafe { d.inv.get_mut() };
        *inv = Invalidations::default();
        let mut reg = d.registry();
        *reg.guard = Registry::default();
    }

    /// Calls `f` with every entry of shard `shard` of database `db`, expired
    /// or not, holding only that shard's lock for the duration (snapshots
    /// walk the keyspace one shard at a time while writes go on elsewhere).
    /// Invalidated entries not yet reclaimed are not visited.
    pub fn visit_shard(&self, db: usize, shard: usize, mut f: impl FnMut(&[u8], View<'_>)) {
        let d = &self.dbs[db];
        let s = self.lock(db, shard);
        // SAFETY: `s` is locked for the rest of this call.
        let inv = unsafe { d.inv() };
        s.for_each_live(0, |e| {
            if s.watch && inv.is_dead(e) {
                return;
            }
            f(e.key(), view_of(e))
        });
    }

    /// Number of logical databases.
    pub fn databases(&self) -> usize {
        self.dbs.len()
    }

    /// Shards per database.
    pub fn shards(&self) -> usize {
        self.shard_mask + 1
    }

    /// Engine-wide counters.
    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }

    fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The table uses the low bits (bucket) and top 7 bits (tag) of the hash;
    /// the shard is picked from bits 48.. so the two stay independent.
    fn shard_of(&self, hash: u64) -> usize {
        ((hash >> 48) as usize) & self.shard_mask
    }

    /// The CAS of a new version: `chosen` (see [`Txn::use_cas`]), after
    /// moving the counter past it, or else the counter's next value.
    fn cas_for(&self, chosen: Option<u64>) -> u64 {
        match chosen {
            Some(cas) => {
                // cas <= MAX_CHOSEN_CAS, so cas + 1 cannot overflow
                self.next_cas.fetch_max(cas + 1, Ordering::Relaxed);
                cas
            }
            None => self.next_cas.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// Locks the shards holding `keys` in database `db` (in ascending shard
    /// order) and returns a transaction over exactly those keys, evaluated at
    /// time `now` (ms). Every key it reads or writes counts as accessed at
    /// `now`'s second (or the engine's latest, if later; see
    /// [`Txn::idle_time`]). Panics if `db` is out of range.
    #[inline]
    pub fn txn<K: AsRef<[u8]>>(&self, db: usize, keys: &[K], now: u64) -> Txn<'_> {
        // the one-key case (nearly every command) stays small enough to
        // inline; the sorting and the guard vector live apart
        match keys {
            [key] => self.txn_one(db, key.as_ref(), now),
            _ => self.txn_many(db, keys, now),
        }
    }

    #[inline(always)]
    fn txn_one(&self, db: usize, key: &[u8], now: u64) -> Txn<'_> {
        let hash = self.hash(key);
        let i = self.shard_of(hash);
        let guards = Guards::One(i, self.lock(db, i));
        let remembered = Some((key.as_ptr() as usize, key.len(), hash));
        self.txn_over(db, guards, remembered, now)
    }

    fn txn_many<K: AsRef<[u8]>>(&self, db: usize, keys: &[K], now: u64) -> Txn<'_> {
        let mut idx: Vec<usize> = keys
            .iter()
            .map(|k| self.shard_of(self.hash(k.as_ref())))
            .collect();
        idx.sort_unstable();
        idx.dedup();
        let guards = Guards::Many(idx.into_iter().map(|i| (i, self.lock(db, i))).collect());
        self.txn_over(db, guards, None, now)
    }

    #[inline]
    fn txn_over<'e>(
        &'e self,
        db: usize,
        guards: Guards<'e>,
        remembered: Option<(usize, usize, u64)>,
        now: u64,
    ) -> Txn<'e> {
        // read under the locks: a write this transaction waited for has
        // already moved the clock to its own reading or later
        let clock = self.clock.reading(now);
        Txn {
            engine: self,
            db,
            now,
            clock,
            guards,
            remembered,
            chosen_cas: None,
        }
    }

    /// Keys in database `db` (expired keys count until collected).
    pub fn dbsize(&self, db: usize) -> usize {
        self.db_info(db).keys
    }

    /// Key and TTL counts of database `db`.
    pub fn db_info(&self, db: usize) -> DbInfo {
        (0..self.shards()).fold(DbInfo::default(), |acc, i| {
            let s = self.lock(db, i);
            DbInfo {
                keys: acc.keys + s.len(),
                expires: acc.expires + s.expires_len(),
            }
        })
    }

    /// Bytes held by the entries and tables of database `db`.
    pub fn db_memory(&self, db: usize) -> MemoryInfo {
        let mut m = MemoryInfo::default();
        for i in 0..self.shards() {
            let s = self.lock(db, i);
            m.entries += s.bytes();
            m.tables += s.table_bytes();
        }
        m.tags = self.dbs[db].tags.lock().bytes();
        m
    }

    /// Bytes held by entries and tables across all databases.
    pub fn memory(&self) -> MemoryInfo {
        let mut m = MemoryInfo::default();
        for db in 0..self.dbs.len() {
            for i in 0..self.shards() {
                let s = self.lock(db, i);
                m.entries += s.bytes();
                m.tables += s.table_bytes();
            }
            m.tags += self.dbs[db].tags.lock().bytes();
        }
        m
    }

    /// Bytes of entries, tables and tag bookkeeping across all databases,
    /// as the memory limit counts them: the same sum as [`Engine::memory`], kept as
    /// shards change, so reading it takes no lock.
    pub fn used_memory(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Sets the memory limit that [`Engine::make_room`] enforces; it can be
    /// changed at any time (Redis's `CONFIG SET maxmemory`). `samples` is
    /// clamped to 1..=[`MAX_SAMPLES`].
    pub fn set_memory_limit(&self, limit: MemoryLimit) {
        self.samples
            .store(limit.samples.clamp(1, MAX_SAMPLES), Ordering::Relaxed);
        self.policy.store(limit.policy.to_u8(), Ordering::Relaxed);
        self.max_bytes.store(limit.max_bytes, Ordering::Relaxed);
    }

    /// The memory limit in force.
    pub fn memory_limit(&self) -> MemoryLimit {
        MemoryLimit {
            max_bytes: self.max_bytes.load(Ordering::Relaxed),
            policy: EvictionPolicy::from_u8(self.policy.load(Ordering::Relaxed)),
            samples: self.samples.load(Ordering::Relaxed),
        }
    }

    /// True while a memory limit is set and the keyspace is over it.
    pub fn over_memory_limit(&self) -> bool {
        let max = self.max_bytes.load(Ordering::Relaxed);
        max != 0 && self.used_memory() > max
    }

    /// Called before a write that may need memory (Redis calls its
    /// `performEvictions` at the same point): while the keyspace is over
    /// its limit, evicts keys as the policy says, at most
    /// [`MAX_EVICTIONS_PER_CALL`] per call. Refuses with [`OutOfMemory`] when
    /// it is over and nothing (more) can be evicted, so the caller refuses
    /// the write; a write that was let through may then take the keyspace
    /// over by its own size, as in Redis. Without a limit this is one
    /// atomic load.
    ///
    /// Each eviction is recorded as a [`Mutation::Del`] (a log must forget
    /// the key as memory did); an entry found expired is removed as expired
    /// instead, unrecorded, as lazy expiry does.
    #[inline]
    pub fn make_room(&self, now: u64) -> Result<(), OutOfMemory> {
        if self.max_bytes.load(Ordering::Relaxed) == 0 {
            return Ok(());
        }
        self.make_room_under_a_limit(now)
    }

    /// [`Engine::make_room`] once a limit is set.
    fn make_room_under_a_limit(&self, now: u64) -> Result<(), OutOfMemory> {
        if !self.over_memory_limit() {
            return Ok(());
        }
        // one reading of the limit for the whole call (CONFIG SET may change it)
        let limit = self.memory_limit();
        let max = limit.max_bytes;
        if max == 0 {
            return Ok(());
        }
        if limit.policy == EvictionPolicy::NoEviction {
            return Err(OutOfMemory);
        }
        for _ in 0..MAX_EVICTIONS_PER_CALL {
            if !self.evict_one(now, limit) {
                return Err(OutOfMemory);
            }
            if self.used_memory() <= max {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Evicts one key as `limit.policy` says; false when no shard of any
    /// database holds a candidate. The database is drawn with a chance
    /// proportional to its bytes, then its shards are tried from a random
    /// one on; one shard lock is held at a time.
    fn evict_one(&self, now: u64, limit: MemoryLimit) -> bool {
        let used = |db: usize| self.dbs[db].used.load(Ordering::Relaxed);
        let total = self.used_memory();
        let mut first_db = 0;
        if total > 0 {
            // (the counts may move meanwhile: this only steers the choice)
            let mut r = (self.random() % total as u64) as usize;
            while first_db + 1 < self.dbs.len() && r >= used(first_db) {
                r -= used(first_db);
                first_db += 1;
            }
        }
        let clock = self.clock.reading(now);
        let first_shard = self.random() as usize;
        for d in 0..self.dbs.len() {
            let db = (first_db + d) % self.dbs.len();
            if used(db) == 0 {
                continue;
            }
            for step in 0..self.shards() {
                let mut shard = self.lock(db, (first_shard + step) & self.shard_mask);
                let start = self.random() as usize;
                let Some(index) =
                    shard.pick_victim(&self.hasher, limit.policy, limit.samples, start, now, clock)
                else {
                    continue;
                };
                let Some(old) = shard.remove_at(&self.hasher, index) else {
                    continue;
                };
                if old.is_expired(now) {
                    self.stats.expired_keys.fetch_add(1, Ordering::Relaxed);
                } else {
                    if let Some(sink) = self.sink() {
                        sink.record(Mutation::Del { db, key: old.key() });
                    }
                    self.stats.evicted_keys.fetch_add(1, Ordering::Relaxed);
                }
                if old.has_extras() {
                    let hash = self.hash(old.key());
                    shard.depart(hash, old);
                }
                return true;
            }
        }
        false
    }

    /// Empties database `db`. All its shards are locked together (in
    /// ascending order, like a [`Txn`]) so the flush is one point in time
    /// relative to every write, which is what a replayed log needs.
    pub fn flush_db(&self, db: usize) {
        let mut guards = self.lock_all(db);
        if let Some(sink) = self.sink() {
            sink.record(Mutation::FlushDb { db });
        }
        self.clear_locked(db, &mut guards);
    }

    /// Empties every database, atomically with respect to writes (all
    /// shards locked; a [`Txn`] never holds shards of two databases, so the
    /// database-by-database order cannot deadlock).
    pub fn flush_all(&self) {
        let mut guards: Vec<_> = (0..self.dbs.len()).map(|db| self.lock_all(db)).collect();
        if let Some(sink) = self.sink() {
            sink.record(Mutation::FlushAll);
        }
        for (db, g) in guards.iter_mut().enumerate() {
            self.clear_locked(db, g);
        }
    }

    /// The active expiry cycle: removes keys whose TTL has passed at `now`,
    /// at most `budget` per shard per call so a call's cost stays bounded.
    /// Returns how many were removed; if that reached the budget anywhere,
    /// calling again soon is worthwhile.
    ///
    /// The same cycle reclaims invalidated entries (see [`Engine::reclaim`]),
    /// within the same budget per shard; the result counts those too (only
    /// expired keys count in [`EngineStats::expired_keys`]), and is nonzero
    /// while a prefix pass has buckets left.
    pub fn expire_cycle(&self, now: u64, budget: usize) -> usize {
        let mut removed = 0;
        for db in 0..self.dbs.len() {
            for i in 0..self.shards() {
                removed += self.lock(db, i).expire_due(&self.hasher, now, budget);
            }
        }
        self.stats
            .expired_keys
            .fetch_add(removed as u64, Ordering::Relaxed);
        for db in 0..self.dbs.len() {
            removed += self.reclaim(db, budget.saturating_mul(self.shards()));
        }
        removed
    }

    /// Calls `f` with every key of `db` that is live at `now`, locking one
    /// shard at a time (so the result is not a point-in-time snapshot, as in
    /// Redis it is not either across a long KEYS).
    pub fn for_each_key(&self, db: usize, now: u64, mut f: impl FnMut(&[u8])) {
        let d = &self.dbs[db];
        for i in 0..self.shards() {
            let s = self.lock(db, i);
            // SAFETY: `s` is locked while `inv` is used.
            let inv = unsafe { d.inv() };
            s.for_each_live(now, |e| {
                if !(s.watch && inv.is_dead(e)) {
                    f(e.key())
                }
            });
        }
    }

    /// One step of a SCAN over `db`: visits buckets from `cursor` until at
    /// least `count` entries were examined or the keyspace ends, calling `f`
    /// with each live key. Returns the next cursor (0 when the scan is done).
    ///
    /// Cursor bits: shard (8) | shard table epoch (16) | bucket (40). Entries
    /// never move within an epoch, so every key present for the whole scan is
    /// returned; if the shard's table was resized or rehashed since the cursor
    /// was issued, that shard is restarted (keys may repeat, as Redis allows).
    pub fn scan(
        &self,
        db: usize,
        cursor: u64,
        count: usize,
        now: u64,
        mut f: impl FnMut(&[u8], View<'_>),
    ) -> u64 {
        self.scan_inner(db, cursor, count, now, false, |k, v, _| f(k, v))
    }

    /// [`Engine::scan`] that also passes each key's tags (empty for an
    /// untagged key): what a snapshot writes.
    pub fn scan_tagged(
        &self,
        db: usize,
        cursor: u64,
        count: usize,
        now: u64,
        f: impl FnMut(&[u8], View<'_>, TagList<'_>),
    ) -> u64 {
        self.scan_inner(db, cursor, count, now, true, f)
    }

    fn scan_inner(
        &self,
        db: usize,
        cursor: u64,
        count: usize,
        now: u64,
        with_tags: bool,
        mut f: impl FnMut(&[u8], View<'_>, TagList<'_>),
    ) -> u64 {
        let d = &self.dbs[db];
        let mut names = Vec::new();
        const BUCKET_BITS: u32 = 40;
        let mut shard = (cursor >> 56) as usize;
        let mut epoch = ((cursor >> BUCKET_BITS) & 0xffff) as u16;
        let mut bucket = (cursor & ((1 << BUCKET_BITS) - 1)) as usize;
        if shard > self.shard_mask {
            return 0;
        }
        let count = count.max(1);
        let mut examined = 0;
        while shard <= self.shard_mask {
            let s = self.lock(db, shard);
            // SAFETY: `s` is locked while `inv` is used.
            let inv = unsafe { d.inv() };
            if bucket != 0 && s.epoch() != epoch {
                bucket = 0;
            }
            epoch = s.epoch();
            let n = s.num_buckets();
            while bucket < n {
                if let Some(e) = s.bucket(bucket) {
                    examined += 1;
                    if !(e.is_expired(now) || s.watch && inv.is_dead(e)) {
                        names.clear();
                        if with_tags && e.has_extras() {
                            let reg = d.tags.lock();
                            encode_tag_list(e.tag_ids().iter().map(|id| reg.name(id)), &mut names);
                        }
                        f(
                            e.key(),
                            view_of(e),
                            TagList::from_encoded(&names).expect("encoded here"),
                        );
                    }
                }
                bucket += 1;
                if examined >= count && bucket < n {
                    return ((shard as u64) << 56)
                        | ((epoch as u64) << BUCKET_BITS)
                        | bucket as u64;
                }
            }
            drop(s);
            shard += 1;
            bucket = 0;
            epoch = 0;
            if examined >= count && shard <= self.shard_mask {
                return (shard as u64) << 56;
            }
        }
        0
    }

    /// A random live key of `db`, or None when it has none.
    pub fn random_key(&self, db: usize, now: u64) -> Option<Vec<u8>> {
        let d = &self.dbs[db];
        let start = self.random() as usize;
        for step in 0..self.shards() {
            let s = self.lock(db, (start + step) & self.shard_mask);
            if s.len() == 0 {
                continue;
            }
            // SAFETY: `s` is locked while `inv` is used.
            let inv = unsafe { d.inv() };
            let live = |e: &Entry| !(e.is_expired(now) || s.watch && inv.is_dead(e));
            let n = s.num_buckets();
            // sample buckets; fall back to a walk if the shard is mostly expired
            for _ in 0..64 {
                if let Some(e) = s.bucket(self.random() as usize % n) {
                    if live(e) {
                        return Some(e.key().to_vec());
                    }
                }
            }
            let mut found = None;
            s.for_each_live(now, |e| {
                if found.is_none() && live(e) {
                    found = Some(e.key().to_vec())
                }
            });
            if found.is_some() {
                return found;
            }
        }
        None
    }

    fn random(&self) -> u64 {
        // a seeded hash of a counter: good enough for sampling, no dependency
        self.hasher
            .hash_one(self.rng.fetch_add(1, Ordering::Relaxed))
    }
}

#[inline]
fn view_of(e: &Entry) -> View<'_> {
    if e.is_collection() {
        return collection_view(e);
    }
    string_view(e)
}

/// [`view_of`] for an entry known to hold a string.
#[inline]
fn string_view(e: &Entry) -> View<'_> {
    View {
        value: e.value(),
        meta: e.meta(),
        kind: Kind::String,
    }
}

/// [`view_of`] of a collection entry: its metadata and kind, no bytes.
#[cold]
#[inline(never)]
fn collection_view(e: &Entry) -> View<'_> {
    View {
        value: &[],
        meta: e.meta(),
        kind: e.kind(),
    }
}

enum Guards<'a> {
    One(usize, ShardGuard<'a>),
    Many(Vec<(usize, ShardGuard<'a>)>),
}

/// Exclusive access to the keys an operation named when it began.
///
/// Every method takes a key; the key must be one of those passed to
/// [`Engine::txn`] (or live in the same shard), otherwise the call panics.
/// Writes here are the only way the keyspace changes, which is where
/// persistence and replication hook in.
pub struct Txn<'a> {
    engine: &'a Engine,
    db: usize,
    now: u64,
    /// Access-clock reading (whole seconds) every access here records.
    clock: u32,
    guards: Guards<'a>,
    /// (address, length, hash) of a single key named at the start, so the
    /// usual one-key command hashes its key once, not twice.
    remembered: Option<(usize, usize, u64)>,
    /// The CAS the next new version takes instead of the counter's next
    /// value ([`Txn::use_cas`]).
    chosen_cas: Option<u64>,
}

impl<'a> Txn<'a> {
    /// The time (ms) this transaction evaluates expiry against.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// Makes the next write of this transaction that creates a new version
    /// ([`Txn::set`], [`Txn::set_with`], [`Txn::rewrite`], [`Txn::copy`],
    /// [`Txn::set_flags`]) take `cas` as its CAS instead of the counter's
    /// next value (memcached's meta `E` flag). The choice is used once:
    /// that write consumes it whether or not it stores anything (a set
    /// whose expiry has passed deletes; a rewrite of an absent key does
    /// nothing), and later writes are numbered by the counter again.
    /// [`Txn::set_expiry`] keeps the CAS and leaves the choice pending.
    ///
    /// The write is logged with `cas` like any other, and the counter moves
    /// past `cas`, so automatic CAS values issued afterwards are above it
    /// (also after a restart, which resumes above the largest logged CAS).
    /// Uniqueness becomes the caller's business: two writes given the same
    /// `cas` carry the same CAS. Refused (nothing changes) for 0 and for
    /// values above [`MAX_CHOSEN_CAS`].
    pub fn use_cas(&mut self, cas: u64) -> Result<(), CasOutOfRange> {
        if cas == 0 || cas > MAX_CHOSEN_CAS {
            return Err(CasOutOfRange);
        }
        self.chosen_cas = Some(cas);
        Ok(())
    }

    #[inline]
    fn shard(&mut self, key: &[u8]) -> (u64, &mut Shard, &'a Engine) {
        let engine = self.engine;
        let hash = match self.remembered {
            Some((ptr, len, h)) if ptr == key.as_ptr() as usize && len == key.len() => h,
            _ => engine.hash(key),
        };
        let want = engine.shard_of(hash);
        let shard = match &mut self.guards {
            Guards::One(i, g) if *i == want => &mut **g,
            Guards::Many(v) => match v.iter_mut().find(|(i, _)| *i == want) {
                Some((_, g)) => &mut **g,
                None => panic!("key outside the transaction's shards"),
            },
            Guards::One(..) => panic!("key outside the transaction's shards"),
        };
        (hash, shard, engine)
    }

    /// The live value of `key`, if any (an expired key is removed here).
    /// This is an access: the key's last access time becomes this
    /// transaction's (Redis's `lookupKey`; see [`Txn::peek`] for the reads
    /// that must not count).
    ///
    /// A key holding a collection reads as absent here (and is not
    /// touched): this is the string read of the doors that only know
    /// strings (memcached, HTTP). Commands that must tell the two apart
    /// use [`Txn::get_string`].
    #[inline]
    pub fn get(&mut self, key: &[u8]) -> Option<View<'_>> {
        self.get_string(key).ok().flatten()
    }

    /// Like [`Txn::get`], but a key holding a collection is
    /// `Err(WrongType)` (Redis's string commands), found in the same probe.
    #[inline]
    pub fn get_string(&mut self, key: &[u8]) -> Result<Option<View<'_>>, WrongType> {
        let clock = self.clock;
        match self.lookup(key) {
            None => Ok(None),
            Some(e) if e.is_collection() => Err(WrongType),
            Some(e) => {
                e.touch(clock);
                Ok(Some(string_view(e)))
            }
        }
    }

    /// Like [`Txn::get`], without counting as an access: for commands that
    /// inspect a key rather than use it (Redis's `LOOKUP_NOTOUCH`: EXISTS,
    /// TYPE, TTL, OBJECT). An expired key is still removed here. Sees
    /// every kind of value ([`View::kind`]).
    pub fn peek(&mut self, key: &[u8]) -> Option<View<'_>> {
        self.lookup(key).map(|e| view_of(e))
    }

    /// Whole seconds since `key` was last read or written, without counting
    /// as an access (Redis's `OBJECT IDLETIME`); None when it is absent.
    ///
    /// The access clock has one-second steps and a period of
    /// [`ACCESS_CLOCK_PERIOD_SECS`]: a key idle for longer reads as idle for
    /// that time modulo the period, as in Redis. Keys replayed at start
    /// count as accessed then.
    pub fn idle_time(&mut self, key: &[u8]) -> Option<u32> {
        let clock = self.clock;
        self.lookup(key).map(|e| idle_secs(e.last_access(), clock))
    }

    /// The live entry for `key` (lazy expiry, counted in the stats).
    #[inline]
    fn lookup(&mut self, key: &[u8]) -> Option<&mut Entry> {
        let (now, db) = (self.now, self.db);
        let (hash, shard, engine) = self.shard(key);
        if shard.watch {
            engine.reclaim_if_dead(db, shard, hash, key);
        }
        let (found, expired) = shard.get(hash, key, now);
        if expired {
            engine.stats.expired_keys.fetch_add(1, Ordering::Relaxed);
        }
        found
    }

    /// Like [`Txn::get`], for memcached retrievals: also says whether a
    /// retrieval already fetched this version of the value (memcached's
    /// "hit before", the meta `h` flag) and how long the key had been idle
    /// (the meta `l` flag), both as they were before this call. With
    /// `access` the read counts: it marks the version fetched and sets the
    /// key's last access time; without it (the meta `u` flag, `me`) nothing
    /// changes. A write that makes a new version (set, append, incr...)
    /// clears the fetched mark; expiry and flag changes keep it. The mark is
    /// a bit of the entry's header (no extra memory); neither it nor the
    /// access time is persisted.
    ///
    /// Like [`Txn::get`], a key holding a collection reads as absent.
    pub fn fetch(&mut self, key: &[u8], access: bool) -> Option<Fetched<'_>> {
        let clock = self.clock;
        let e = self.lookup(key).filter(|e| !e.is_collection())?;
        let fetched_before = e.fetched();
        let idle_before = idle_secs(e.last_access(), clock);
        if access {
            if !fetched_before {
                e.mark_fetched();
            }
            e.touch(clock);
        }
        Some(Fetched {
            view: view_of(e),
            fetched_before,
            idle_before,
        })
    }

    /// The version of `key` WATCH remembers and EXEC compares: it changes
    /// with every write, delete, expiry (lazy or active), eviction, flush
    /// and TTL change of the key, from any door. Not an access.
    pub fn version(&mut self, key: &[u8]) -> KeyVersion {
        // a key a tag or prefix invalidation killed reads as absent here
        let cas = self.lookup(key).map_or(0, |e| e.cas());
        let (_, shard, _) = self.shard(key);
        KeyVersion {
            cas,
            meta_changes: if cas == 0 { 0 } else { shard.meta_changes() },
        }
    }

    /// True when `key` holds a live value. Not an access (Redis's EXISTS
    /// and TYPE do not touch the key).
    pub fn exists(&mut self, key: &[u8]) -> bool {
        self.peek(key).is_some()
    }

    /// Stores the concatenation of `parts` under `key` with the given client
    /// flags and absolute expiry (ms), replacing any previous value. An expiry
    /// at or before now deletes the key instead. Returns the new CAS (0 if the
    /// key was deleted).
    pub fn set(&mut self, key: &[u8], parts: &[&[u8]], flags: u32, expire_at: Option<u64>) -> u64 {
        let len = parts.iter().map(|p| p.len()).sum();
        self.set_with(key, len, flags, expire_at, |dst| {
            let mut at = 0;
            for p in parts {
                dst[at..at + p.len()].copy_from_slice(p);
                at += p.len();
            }
        })
    }

    /// Like [`Txn::set`], with a value of `len` bytes written by `fill` into a
    /// zeroed buffer (so a new value can be made from the old one in place).
    pub fn set_with(
        &mut self,
        key: &[u8],
        len: usize,
        flags: u32,
        expire_at: Option<u64>,
        fill: impl FnOnce(&mut [u8]),
    ) -> u64 {
        let chosen = self.chosen_cas.take();
        if matches!(expire_at, Some(t) if t <= self.now) {
            self.remove(key);
            return 0;
        }
        let (db, clock) = (self.db, self.clock);
        let (hash, shard, engine) = self.shard(key);
        let cas = engine.cas_for(chosen);
        let meta = Meta {
            cas,
            expire_at,
            flags,
        };
        let entry = match chosen {
            None => Entry::build_with(key, len, meta, clock, fill),
            Some(_) => {
                // SAFETY: the transaction holds the key's shard lock.
                let epoch = unsafe { engine.new_epoch(db, Some(cas)) };
                let extras = Extras { epoch, tags: &[] };
                Entry::build_extra(key, len, meta, clock, extras, fill)
            }
        };
        if let Some(sink) = engine.sink() {
            sink.record(Mutation::Set {
                db,
                key,
                value: entry.value(),
                flags,
                expire_at,
                cas,
            });
        }
        if let Some(old) = shard.insert(&engine.hasher, hash, entry) {
            shard.depart(hash, old);
        }
        cas
    }

    /// Rewrites the value of an existing live `key`, keeping its flags and
    /// expiry: `fill` receives the old value and a zeroed buffer of `len`
    /// bytes. Returns the new CAS, or None when the key is absent or holds
    /// a collection (callers read the key first and report the type).
    pub fn rewrite(
        &mut self,
        key: &[u8],
        len: usize,
        fill: impl FnOnce(&[u8], &mut [u8]),
    ) -> Option<u64> {
        let (now, db, clock) = (self.now, self.db, self.clock);
        let chosen = self.chosen_cas.take();
        let (hash, shard, engine) = self.shard(key);
        if shard.watch {
            engine.reclaim_if_dead(db, shard, hash, key);
        }
        let (old, _) = shard.get(hash, key, now);
        let old = old.filter(|e| !e.is_collection())?;
        let cas = engine.cas_for(chosen);
        let meta = Meta { cas, ..old.meta() };
        let entry = if old.has_extras() || chosen.is_some() {
            // an in-place change keeps the key's tags
            let tags = old.tag_ids().to_vec();
            // SAFETY: the transaction holds the key's shard lock.
            let epoch = unsafe { engine.new_epoch(db, chosen.map(|_| cas)) };
            let extras = Extras { tags: &tags, epoch };
            Entry::build_extra(key, len, meta, clock, extras, |dst| fill(old.value(), dst))
        } else {
            Entry::build_with(key, len, meta, clock, |dst| fill(old.value(), dst))
        };
        if let Some(sink) = engine.sink() {
            engine.record_set(sink, db, &entry);
        }
        // same key, same tags: the registry sees no change
        shard.insert(&engine.hasher, hash, entry);
        Some(cas)
    }

    /// Stores a copy of the live value of `src` under `dst`, keeping its
    /// flags and expiry and giving it a new CAS, replacing whatever `dst`
    /// held. Both keys must belong to this transaction. This is what RENAME
    /// and COPY need: the value goes straight from one entry into the other
    /// (one copy, no intermediate buffer). A collection is copied deep and
    /// logged as a Del of `dst` and one AddItem per item. Returns the new
    /// CAS, or None when `src` is absent (then `dst` is untouched).
    pub fn copy(&mut self, src: &[u8], dst: &[u8]) -> Option<u64> {
        let (now, clock, db) = (self.now, self.clock, self.db);
        let chosen = self.chosen_cas.take();
        let (hash, shard, engine) = self.shard(src);
        if shard.watch {
            engine.reclaim_if_dead(db, shard, hash, src);
        }
        let (found, expired) = shard.get(hash, src, now);
        if expired {
            engine.stats.expired_keys.fetch_add(1, Ordering::Relaxed);
        }
        let old = found?;
        // reading the source is an access of it, as in Redis
        old.touch(clock);
        let cas = engine.cas_for(chosen);
        if old.is_collection() {
            return Some(self.copy_collection(src, dst, cas));
        }
        let meta = Meta { cas, ..old.meta() };
        let value = old.value();
        // the copy carries the source's tags
        let tags = old.tag_ids().to_vec();
        // SAFETY: the transaction holds the source's shard lock.
        let epoch = unsafe { engine.new_epoch(db, chosen.map(|_| cas)) };
        let extras = Extras { tags: &tags, epoch };
        let entry = Entry::build_extra(dst, value.len(), meta, clock, extras, |d| {
            d.copy_from_slice(value)
        });
        let (hash, shard, engine) = self.shard(dst);
        if let Some(sink) = engine.sink() {
            engine.record_set(sink, db, &entry);
        }
        if tags.is_empty() {
            if let Some(old) = shard.insert(&engine.hasher, hash, entry) {
                shard.depart(hash, old);
            }
        } else {
            engine.insert_tagged(db, shard, hash, entry);
        }
        Some(cas)
    }

    /// Deletes `key`; true if a live value was removed.
    pub fn remove(&mut self, key: &[u8]) -> bool {
        let (now, db) = (self.now, self.db);
        let (hash, shard, engine) = self.shard(key);
        if shard.watch {
            engine.reclaim_if_dead(db, shard, hash, key);
        }
        match shard.remove(hash, key) {
            Some(old) => {
                if let Some(sink) = engine.sink() {
                    sink.record(Mutation::Del { db, key });
                }
                let live = !old.is_expired(now);
                shard.depart(hash, old);
                live
            }
            None => false,
        }
    }

    /// Sets (Some) or clears (None) the expiry of a live `key` without
    /// touching its value or CAS. An expiry at or before now deletes the key.
    /// Returns false when the key is absent. Not an access by itself: the
    /// commands that change a TTL read the key first ([`Txn::get`] or
    /// [`Txn::fetch`]) when their protocol counts that as one.
    pub fn set_expiry(&mut self, key: &[u8], expire_at: Option<u64>) -> bool {
        if !self.exists(key) {
            return false;
        }
        if matches!(expire_at, Some(t) if t <= self.now) {
            self.remove(key);
            return true;
        }
        let db = self.db;
        let (hash, shard, engine) = self.shard(key);
        if let Some(sink) = engine.sink() {
            sink.record(Mutation::Expire {
                db,
                key,
                at: expire_at,
            });
        }
        shard.update_meta(&engine.hasher, hash, key, |m| Meta { expire_at, ..m })
    }

    /// Replaces the client flags of a live `key`, giving it a new CAS. Like
    /// [`Txn::set_expiry`], keeps the key's last access time.
    /// Keys holding a collection have no client flags: false for them.
    pub fn set_flags(&mut self, key: &[u8], flags: u32) -> bool {
        let chosen = self.chosen_cas.take();
        if self.peek(key).is_none_or(|v| v.kind != Kind::String) {
            return false;
        }
        let db = self.db;
        let (hash, shard, engine) = self.shard(key);
        let cas = engine.cas_for(chosen);
        let updated = shard.update_meta(&engine.hasher, hash, key, |m| Meta { flags, cas, ..m });
        if updated && chosen.is_some() {
            // SAFETY: the transaction holds the key's shard lock.
            if let Some(epoch) = unsafe { engine.new_epoch(db, Some(cas)) } {
                shard.set_explicit_epoch(&engine.hasher, hash, key, epoch);
            }
        }
        if let (true, Some(sink)) = (updated, engine.sink()) {
            if let Some(e) = shard.peek(hash, key, 0) {
                engine.record_set(sink, db, e);
            }
        }
        updated
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod types_tests;
