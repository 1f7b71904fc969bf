//! The memcached front door's commands, executed against database 0 of the
//! engine. One file per family: [`storage`] (set add replace append prepend
//! cas), [`retrieval`] (get gets gat gats touch), [`arith`] (delete incr
//! decr), [`misc`] (flush_all stats version verbosity) and [`meta`] (mg ms md
//! ma mn me). Replies are appended to the connection's output buffer, which
//! is written once per read batch.

pub mod arith;
pub mod auth;
pub mod conn;
pub mod meta;
pub mod misc;
pub mod retrieval;
pub mod storage;
pub mod tags;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use magpie_protocol::memcache::{encode, Request};
use parking_lot::Mutex;

use crate::shared::Shared;

/// The engine database memcached clients see.
pub const DB: usize = 0;

/// Most keys whose meta stale/win state is tracked at once; past this the
/// table is cleared (a lost win token only lets another client win).
const MAX_MARKS: usize = 100_000;

/// memcached's statistics counters, as `stats` reports them.
#[derive(Debug, Default)]
pub struct McCounters {
    /// Retrieval requests (per key).
    pub cmd_get: AtomicU64,
    /// Storage requests.
    pub cmd_set: AtomicU64,
    /// flush_all requests.
    pub cmd_flush: AtomicU64,
    /// Touch requests (touch, gat, mg T).
    pub cmd_touch: AtomicU64,
    /// Meta commands.
    pub cmd_meta: AtomicU64,
    /// Keys found by retrievals.
    pub get_hits: AtomicU64,
    /// Keys not found by retrievals.
    pub get_misses: AtomicU64,
    /// delete of a missing key.
    pub delete_misses: AtomicU64,
    /// delete that removed a key.
    pub delete_hits: AtomicU64,
    /// incr of a missing key.
    pub incr_misses: AtomicU64,
    /// Successful incr.
    pub incr_hits: AtomicU64,
    /// decr of a missing key.
    pub decr_misses: AtomicU64,
    /// Successful decr.
    pub decr_hits: AtomicU64,
    /// cas of a missing key.
    pub cas_misses: AtomicU64,
    /// Successful cas.
    pub cas_hits: AtomicU64,
    /// cas with a stale CAS value.
    pub cas_badval: AtomicU64,
    /// Touches that found the key.
    pub touch_hits: AtomicU64,
    /// Touches that did not.
    pub touch_misses: AtomicU64,
    /// Items stored since start.
    pub total_items: AtomicU64,
    /// Storage refused as larger than the item size limit.
    pub store_too_large: AtomicU64,
    /// Storage refused over the memory limit (memcached's
    /// `store_no_memory`).
    pub store_no_memory: AtomicU64,
    /// Bytes read from memcached clients.
    pub bytes_read: AtomicU64,
    /// Bytes written to memcached clients.
    pub bytes_written: AtomicU64,
    /// memcached connections accepted since start.
    pub total_connections: AtomicU64,
    /// memcached connections open now.
    pub curr_connections: AtomicU64,
}

impl McCounters {
    /// Adds one to a counter.
    pub fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// Meta-protocol state of an item that the engine does not store: whether
/// it was invalidated (md I: "stale") and whether a client already won the
/// right to recache it (mg N/R: "token sent"). Valid only while the item
/// keeps the CAS it had when marked; any other write makes it void.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mark {
    /// Marked stale by md I (mg answers X).
    pub stale: bool,
    /// A win token was handed out (mg answers Z).
    pub token_sent: bool,
}

/// State of the memcached front door shared by its connections.
pub struct McState {
    /// Counters for `stats`.
    pub counters: McCounters,
    /// `verbosity` level (reported by `stats settings`).
    pub verbosity: AtomicU32,
    /// Bumped by every flush_all; a delayed flush runs only if still current.
    pub flush_gen: AtomicU64,
    marks: Mutex<HashMap<Vec<u8>, (u64, Mark)>>,
    marks_len: AtomicUsize,
    /// The listening socket, for `stats conns`: descriptor, address and
    /// when it was opened.
    pub listener: std::sync::OnceLock<(i32, std::net::SocketAddr, std::time::Instant)>,
}

impl Default for McState {
    fn default() -> Self {
        McState::new()
    }
}

impl McState {
    /// Fresh state.
    pub fn new() -> McState {
        McState {
            counters: McCounters::default(),
            verbosity: AtomicU32::new(0),
            flush_gen: AtomicU64::new(0),
            marks: Mutex::new(HashMap::new()),
            marks_len: AtomicUsize::new(0),
            listener: std::sync::OnceLock::new(),
        }
    }

    /// The stale/win state of `key` if its CAS is still `cas`.
    pub fn mark(&self, key: &[u8], cas: u64) -> Mark {
        if self.marks_len.load(Ordering::Relaxed) == 0 {
            return Mark::default();
        }
        let mut m = self.marks.lock();
        match m.get(key) {
            Some(&(c, mark)) if c == cas => mark,
            Some(_) => {
                m.remove(key);
                self.marks_len.store(m.len(), Ordering::Relaxed);
                Mark::default()
            }
            None => Mark::default(),
        }
    }

    /// Records the stale/win state of `key` at CAS `cas`.
    pub fn set_mark(&self, key: &[u8], cas: u64, mark: Mark) {
        let mut m = self.marks.lock();
        if mark == Mark::default() {
            m.remove(key);
        } else {
            if m.len() >= MAX_MARKS && !m.contains_key(key) {
                m.clear();
            }
            m.insert(key.to_vec(), (cas, mark));
        }
        self.marks_len.store(m.len(), Ordering::Relaxed);
    }

    /// Forgets the mark of `key`, whatever CAS it was tied to (a write
    /// with a client-chosen CAS, which may equal the old one).
    pub fn clear_mark(&self, key: &[u8]) {
        if self.marks_len.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut m = self.marks.lock();
        m.remove(key);
        self.marks_len.store(m.len(), Ordering::Relaxed);
    }

    /// Forgets every mark (flush_all).
    pub fn clear_marks(&self) {
        let mut m = self.marks.lock();
        m.clear();
        self.marks_len.store(0, Ordering::Relaxed);
    }
}

/// What a command needs: the server, the front door's state, the reply
/// buffer and the batch's clock.
pub struct McCtx<'a> {
    /// Engine, config, global counters.
    pub shared: &'a Arc<Shared>,
    /// memcached-side state.
    pub mc: &'a Arc<McState>,
    /// Replies.
    pub out: &'a mut Vec<u8>,
    /// Time of this batch (ms).
    pub now: u64,
    /// Set by quit: close once the replies are written.
    pub close: bool,
    /// Who the connection is (see [`auth`]).
    pub auth: &'a mut auth::McAuth,
}

impl McCtx<'_> {
    /// Appends a reply line unless `noreply`.
    pub fn reply(&mut self, line: &str, noreply: bool) {
        if !noreply {
            encode::line(self.out, line.as_bytes());
        }
    }
}

/// Every memcached command, in the order of the memcached door's table in
/// [`crate::stats::CommandStats`] (see [`command_index`]).
pub const COMMANDS: &[&str] = &[
    "get",
    "gets",
    "gat",
    "gats",
    "touch",
    "set",
    "add",
    "replace",
    "append",
    "prepend",
    "cas",
    "delete",
    "incr",
    "decr",
    "flush_all",
    "stats",
    "version",
    "verbosity",
    "quit",
    "mg",
    "ms",
    "md",
    "ma",
    "mn",
    "me",
    "invalidate_tag",
    "invalidate_prefix",
    "tag_keys",
];

/// The index in [`COMMANDS`] of the command `req` runs; None for a request
/// that is only an error reply.
pub fn command_index(req: &Request<'_>) -> Option<u16> {
    use magpie_protocol::memcache::StoreOp;
    Some(match req {
        Request::Get { cas, touch, .. } => match (cas, touch.is_some()) {
            (false, false) => 0,
            (true, false) => 1,
            (false, true) => 2,
            (true, true) => 3,
        },
        Request::Touch { .. } => 4,
        Request::Store { op, .. } | Request::TooLarge { op, .. } => match op {
            StoreOp::Set => 5,
            StoreOp::Add => 6,
            StoreOp::Replace => 7,
            StoreOp::Append => 8,
            StoreOp::Prepend => 9,
            StoreOp::Cas => 10,
        },
        Request::Delete { .. } => 11,
        Request::Arith { incr: true, .. } => 12,
        Request::Arith { incr: false, .. } => 13,
        Request::FlushAll { .. } => 14,
        Request::Stats { .. } => 15,
        Request::Version => 16,
        Request::Verbosity { .. } => 17,
        Request::Quit => 18,
        Request::MetaGet { .. } => 19,
        Request::MetaSet { .. } | Request::MetaSetTooLarge { .. } => 20,
        Request::MetaDelete { .. } => 21,
        Request::MetaArith { .. } => 22,
        Request::MetaNoop => 23,
        Request::MetaDebug { .. } => 24,
        Request::InvalidateTags { .. } => 25,
        Request::InvalidatePrefixes { .. } => 26,
        Request::TagKeys { .. } => 27,
        Request::Error { .. } => return None,
    })
}

/// True for requests that change the keyspace (refused while the log
/// cannot be written).
fn is_write(req: &Request<'_>) -> bool {
    matches!(
        req,
        Request::Touch { .. }
            | Request::Store { .. }
            | Request::Delete { .. }
            | Request::Arith { .. }
            | Request::FlushAll { .. }
            | Request::MetaSet { .. }
            | Request::MetaDelete { .. }
            | Request::MetaArith { .. }
            | Request::InvalidateTags { .. }
            | Request::InvalidatePrefixes { .. }
    ) || matches!(req, Request::Get { touch: Some(_), .. })
}

/// The `noreply` of a classic command (meta commands have none: their `q`
/// never hides an error).
fn noreply(req: &Request<'_>) -> bool {
    match req {
        Request::Store { noreply, .. }
        | Request::Delete { noreply, .. }
        | Request::Arith { noreply, .. }
        | Request::Touch { noreply, .. }
        | Request::FlushAll { noreply, .. }
        | Request::InvalidateTags { noreply, .. }
        | Request::InvalidatePrefixes { noreply, .. } => *noreply,
        _ => false,
    }
}

/// True for the requests that store an item (memcached allocates one for
/// each, and answers SERVER_ERROR when it cannot). Arithmetic is not among
/// them: memcached rewrites a number in place, and an increment grows a
/// value by at most 20 bytes.
fn stores_an_item(req: &Request<'_>) -> bool {
    matches!(req, Request::Store { .. } | Request::MetaSet { .. })
}

/// Runs one request.
pub fn execute(ctx: &mut McCtx<'_>, req: Request<'_>) {
    if !auth::gate(ctx, &req) {
        return;
    }
    // over the memory limit, a store first evicts as the policy says; with
    // nothing left to evict (or under `noeviction`, memcached's -M) it is
    // refused. Under noreply the refusal is silent, as memcached's
    // out_string makes it: a reply the client does not read would be taken
    // for the answer to its next command.
    if stores_an_item(&req) && ctx.shared.engine.make_room(ctx.now).is_err() {
        McCounters::bump(&ctx.mc.counters.store_no_memory);
        ctx.reply("SERVER_ERROR out of memory storing object", noreply(&req));
        return;
    }
    if is_write(&req) {
        if let Some(e) = ctx.shared.log_error() {
            // the data could not be made durable: refuse, as RESP does
            // with MISCONF (silent under noreply, as above)
            ctx.reply(
                &format!("SERVER_ERROR errors writing to the log: {e}"),
                noreply(&req),
            );
            return;
        }
    }
    match req {
        Request::Get { cas, touch, keys } => retrieval::get(ctx, cas, touch, keys),
        Request::Touch {
            key,
            exptime,
            noreply,
        } => retrieval::touch(ctx, key, exptime, noreply),
        Request::Store {
            op,
            key,
            flags,
            exptime,
            cas,
            data,
            noreply,
            tags,
        } => storage::store_cmd(ctx, op, key, flags, exptime, cas, data, noreply, tags),
        Request::TooLarge { op, key, noreply } => storage::too_large(ctx, op, key, noreply),
        Request::Delete { key, noreply } => arith::delete(ctx, key, noreply),
        Request::Arith {
            incr,
            key,
            delta,
            noreply,
        } => arith::arith_cmd(ctx, incr, key, delta, noreply),
        Request::FlushAll { delay, noreply } => misc::flush_all(ctx, delay, noreply),
        Request::Stats { args } => misc::stats(ctx, args),
        Request::Version => misc::version(ctx),
        Request::Verbosity { level, noreply } => misc::verbosity(ctx, level, noreply),
        Request::Quit => ctx.close = true,
        Request::MetaGet { flags, .. }
        | Request::MetaDelete { flags, .. }
        | Request::MetaArith { flags, .. }
            if flags.tagged =>
        {
            // G<tag> is for ms only
            ctx.reply("CLIENT_ERROR invalid flag", false)
        }
        Request::MetaGet { key, flags } => meta::mg(ctx, key, flags),
        Request::MetaSet { key, flags, data } => meta::ms(ctx, key, flags, data),
        Request::MetaSetTooLarge { key } => meta::ms_too_large(ctx, key),
        Request::MetaDelete { key, flags } => meta::md(ctx, key, flags),
        Request::MetaArith { key, flags } => meta::ma(ctx, key, flags),
        Request::MetaNoop => {
            McCounters::bump(&ctx.mc.counters.cmd_meta);
            ctx.reply("MN", false)
        }
        Request::MetaDebug { key } => meta::me(ctx, key),
        Request::InvalidateTags { tags, noreply } => tags::invalidate_tags(ctx, tags, noreply),
        Request::InvalidatePrefixes { prefixes, noreply } => {
            tags::invalidate_prefixes(ctx, prefixes, noreply)
        }
        Request::TagKeys { tag, cursor, count } => tags::tag_keys(ctx, tag, cursor, count),
        Request::Error { line, noreply } => ctx.reply(line, noreply),
    }
}
