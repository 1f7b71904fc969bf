//! Storage commands: set, add, replace, append, prepend, cas (and the store
//! step of ms), with memcached's `do_store_item` rules.

use magpie_engine::Txn;
use magpie_protocol::memcache::{item_size_ok, Exptime, StoreOp};

use super::{Mark, McCounters, McCtx, DB};

/// Result of a store, as memcached names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stored {
    /// Stored; the new CAS (0 if the item expired at once).
    Stored(u64),
    /// add/replace/append/prepend condition not met.
    NotStored,
    /// cas: the item changed since it was read.
    Exists,
    /// cas: no such item.
    NotFound,
}

/// One store request, as ms and the classic commands describe it.
pub struct StoreArgs<'a> {
    /// Which command.
    pub op: StoreOp,
    /// The key.
    pub key: &'a [u8],
    /// Client flags (ignored by append/prepend).
    pub flags: u32,
    /// Expiry (ignored by append/prepend).
    pub exptime: Exptime,
    /// CAS to compare (cas; append/prepend when non-zero).
    pub cas: u64,
    /// The value.
    pub data: &'a [u8],
    /// ms I: a cas older than the item's stores the value as stale.
    pub set_stale: bool,
    /// ms E: the CAS the stored version takes instead of the engine's next
    /// one (within the engine's range; the parser checks it).
    pub new_cas: Option<u64>,
    /// magpie's extension: the tags the stored version carries (set, add,
    /// replace and cas only; checked against the limits beforehand).
    pub tags: &'a [&'a [u8]],
}

/// Writes a whole new value: untagged, or with the tags (checked against
/// the limits before the command did anything, so a refusal here can only
/// come from a limit lowered meanwhile, and then the value is stored
/// untagged rather than lost).
fn put(txn: &mut Txn<'_>, a: &StoreArgs<'_>, expire_at: Option<u64>) -> u64 {
    if a.tags.is_empty() {
        return txn.set(a.key, &[a.data], a.flags, expire_at);
    }
    match txn.set_tagged(a.key, &[a.data], a.flags, expire_at, a.tags) {
        Ok(cas) => cas,
        Err(_) => txn.set(a.key, &[a.data], a.flags, expire_at),
    }
}

/// Makes the next write of `txn` take the CAS a meta `E` token chose, if
/// any. The parser admits only `1..=MAX_EXPLICIT_CAS`, which is the
/// engine's own range (checked at compile time below), so the engine
/// cannot refuse it.
pub fn choose_cas(txn: &mut Txn<'_>, new_cas: Option<u64>) {
    if let Some(cas) = new_cas {
        txn.use_cas(cas)
            .expect("E token within the engine's range (checked by the parser)");
    }
}

const _: () = assert!(
    magpie_protocol::memcache::meta::MAX_EXPLICIT_CAS == magpie_engine::MAX_CHOSEN_CAS,
    "the parser's E range must be the engine's"
);

/// Stores per memcached's rules. Nothing changes unless the result is
/// [`Stored::Stored`].
pub fn store(ctx: &mut McCtx<'_>, a: &StoreArgs<'_>) -> Stored {
    let c = &ctx.mc.counters;
    McCounters::bump(&c.cmd_set);
    let engine = &ctx.shared.engine;
    let mut txn = engine.txn(DB, &[a.key], ctx.now);
    // each outcome below writes at most once, and that write takes it
    choose_cas(&mut txn, a.new_cas);
    // a key holding a hash or a set is never overwritten from here: it
    // reads as a miss and refuses every store
    let Ok(old) = txn.get_string(a.key) else {
        return Stored::NotStored;
    };
    let old = old.map(|v| (v.meta, v.value.len()));
    let expire_at = a.exptime.as_expire_at();
    let mut marked = false;
    let result = match a.op {
        StoreOp::Set => Stored::Stored(put(&mut txn, a, expire_at)),
        StoreOp::Add => match old {
            Some(_) => Stored::NotStored,
            None => Stored::Stored(put(&mut txn, a, expire_at)),
        },
        StoreOp::Replace => match old {
            None => Stored::NotStored,
            Some(_) => Stored::Stored(put(&mut txn, a, expire_at)),
        },
        StoreOp::Append | StoreOp::Prepend => match old {
            None => Stored::NotStored,
            Some((meta, _)) if a.cas != 0 && a.cas != meta.cas => Stored::Exists,
            Some((meta, old_len)) => {
                let len = old_len + a.data.len();
                if !item_size_ok(
                    a.key.len(),
                    meta.flags,
                    len,
                    ctx.shared.config.memcache_max_item_size,
                ) {
                    // memcached cannot allocate the combined item
                    Stored::NotStored
                } else {
                    let append = a.op == StoreOp::Append;
                    let cas = txn.rewrite(a.key, len, |old, dst| {
                        if append {
                            dst[..old.len()].copy_from_slice(old);
                            dst[old.len()..].copy_from_slice(a.data);
                        } else {
                            dst[..a.data.len()].copy_from_slice(a.data);
                            dst[a.data.len()..].copy_from_slice(old);
                        }
                    });
                    Stored::Stored(cas.unwrap_or(0))
                }
            }
        },
        StoreOp::Cas => match old {
            None => {
                McCounters::bump(&c.cas_misses);
                Stored::NotFound
            }
            Some((meta, _)) if meta.cas == a.cas => {
                McCounters::bump(&c.cas_hits);
                let cas = put(&mut txn, a, expire_at);
                Stored::Stored(cas)
            }
            Some((meta, _)) if a.set_stale && a.cas < meta.cas => {
                // ms I with an older CAS: store, keep the TTL, mark stale
                McCounters::bump(&c.cas_hits);
                let prev = ctx.mc.mark(a.key, meta.cas);
                let cas = put(&mut txn, a, meta.expire_at);
                ctx.mc.set_mark(
                    a.key,
                    cas,
                    Mark {
                        stale: true,
                        token_sent: prev.token_sent,
                    },
                );
                marked = true;
                Stored::Stored(cas)
            }
            Some(_) => {
                McCounters::bump(&c.cas_badval);
                Stored::Exists
            }
        },
    };
    if matches!(result, Stored::Stored(_)) {
        McCounters::bump(&c.total_items);
        if a.new_cas.is_some() && !marked {
            // a chosen CAS may repeat the one an old stale/win mark of
            // this key is tied to; the new version starts unmarked
            ctx.mc.clear_mark(a.key);
        }
    }
    result
}

/// set / add / replace / append / prepend / cas.
#[allow(clippy::too_many_arguments)]
pub fn store_cmd(
    ctx: &mut McCtx<'_>,
    op: StoreOp,
    key: &[u8],
    flags: u32,
    exptime: i32,
    cas: u64,
    data: &[u8],
    noreply: bool,
    tags: Option<&[u8]>,
) {
    // magpie's extension: `tags=a,b` (checked before anything changes)
    let tags: Vec<&[u8]> = tags.map_or(Vec::new(), super::tags::split_list);
    if let Err(e) = super::tags::check(ctx, op, &tags) {
        ctx.reply(&e, noreply);
        return;
    }
    let args = StoreArgs {
        op,
        key,
        flags,
        exptime: Exptime::decode(exptime, ctx.now),
        cas,
        data,
        set_stale: false,
        new_cas: None,
        tags: &tags,
    };
    let line = match store(ctx, &args) {
        Stored::Stored(_) => "STORED",
        Stored::NotStored => "NOT_STORED",
        Stored::Exists => "EXISTS",
        Stored::NotFound => "NOT_FOUND",
    };
    ctx.reply(line, noreply);
}

/// A storage command over the item size limit: SERVER_ERROR, as memcached.
/// Unlike memcached, which also drops the old value of a `set`, magpie
/// leaves what is stored untouched: a rejected command never loses data.
pub fn too_large(ctx: &mut McCtx<'_>, _op: StoreOp, _key: &[u8], noreply: bool) {
    McCounters::bump(&ctx.mc.counters.store_too_large);
    ctx.reply("SERVER_ERROR object too large for cache", noreply);
}
