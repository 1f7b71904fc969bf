//! delete, incr and decr.

use magpie_engine::{Kind, Txn};
use magpie_protocol::memcache::num::item_counter;

use super::{McCounters, McCtx, DB};

/// `delete <key>`
pub fn delete(ctx: &mut McCtx<'_>, key: &[u8], noreply: bool) {
    let c = &ctx.mc.counters;
    let mut txn = ctx.shared.engine.txn(DB, &[key], ctx.now);
    // a key holding a hash or a set is not found (and not deleted)
    let removed = txn.kind(key) == Some(Kind::String) && txn.remove(key);
    drop(txn);
    McCounters::bump(if removed {
        &c.delete_hits
    } else {
        &c.delete_misses
    });
    ctx.reply(if removed { "DELETED" } else { "NOT_FOUND" }, noreply);
}

/// Outcome of applying a delta to a stored counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delta {
    /// The new value and the item's new CAS.
    Done(u64, u64),
    /// The value is not a decimal u64.
    NonNumeric,
    /// No such key.
    NotFound,
    /// The CAS given (ma C) does not match.
    CasMismatch,
}

/// memcached's `do_add_delta`: incr wraps at 2^64, decr stops at 0. A
/// result no longer than the old value is written over it padded with
/// spaces (as memcached does in place, so the item stays "fetched" for the
/// meta `h` flag); a longer one replaces it (a new, unfetched item). Flags
/// and expiry are kept.
pub fn add_delta(txn: &mut Txn<'_>, key: &[u8], incr: bool, delta: u64, cas: u64) -> Delta {
    let Some(found) = txn.fetch(key, false) else {
        return Delta::NotFound;
    };
    let (v, fetched) = (found.view, found.fetched_before);
    if cas != 0 && v.meta.cas != cas {
        return Delta::CasMismatch;
    }
    let Some(old) = item_counter(v.value) else {
        return Delta::NonNumeric;
    };
    let new = if incr {
        old.wrapping_add(delta)
    } else {
        old.saturating_sub(delta)
    };
    let mut buf = itoa::Buffer::new();
    let digits = buf.format(new).as_bytes();
    let in_place = digits.len() <= v.value.len();
    let len = v.value.len().max(digits.len());
    let cas = txn
        .rewrite(key, len, |_, dst| {
            dst[..digits.len()].copy_from_slice(digits);
            dst[digits.len()..].fill(b' ');
        })
        .unwrap_or(0);
    if in_place && fetched {
        txn.fetch(key, true);
    }
    Delta::Done(new, cas)
}

/// `incr <key> <delta>` / `decr <key> <delta>`
pub fn arith_cmd(ctx: &mut McCtx<'_>, incr: bool, key: &[u8], delta: u64, noreply: bool) {
    let c = &ctx.mc.counters;
    let mut txn = ctx.shared.engine.txn(DB, &[key], ctx.now);
    match add_delta(&mut txn, key, incr, delta, 0) {
        Delta::Done(n, _) => {
            drop(txn);
            McCounters::bump(if incr { &c.incr_hits } else { &c.decr_hits });
            if !noreply {
                magpie_protocol::memcache::encode::num(ctx.out, n);
                ctx.out.extend_from_slice(b"\r\n");
            }
        }
        Delta::NonNumeric => ctx.reply(
            "CLIENT_ERROR cannot increment or decrement non-numeric value",
            noreply,
        ),
        Delta::NotFound | Delta::CasMismatch => {
            McCounters::bump(if incr { &c.incr_misses } else { &c.decr_misses });
            ctx.reply("NOT_FOUND", noreply);
        }
    }
}
