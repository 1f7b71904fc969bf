//! Meta commands: mg (get), ms (set), md (delete), ma (arithmetic), me
//! (debug); mn is answered in the dispatcher. Reply flags come back in the
//! order the client sent them, as memcached writes them.

use magpie_engine::{Kind, Meta};
use magpie_protocol::memcache::meta::base64_encode;
use magpie_protocol::memcache::{encode, item_total_size, Exptime, Key, MetaFlags, StoreOp};

use super::arith::{add_delta, Delta};
use super::storage::{choose_cas, store, StoreArgs, Stored};
use super::{Mark, McCounters, McCtx, DB};

/// `" k<key>"`, base64 with a trailing " b" when the client sent it so.
fn echo_key(out: &mut Vec<u8>, key: &Key<'_>) {
    out.extend_from_slice(b" k");
    if key.is_binary() {
        base64_encode(key.bytes(), out);
        out.extend_from_slice(b" b");
    } else {
        out.extend_from_slice(key.bytes());
    }
}

/// Appends the O (opaque) and k flags, the only ones echoed on misses and
/// failures.
fn echo_opaque_and_key(out: &mut Vec<u8>, key: &Key<'_>, f: &MetaFlags<'_>) {
    for tok in f.tokens() {
        match tok[0] {
            b'O' => {
                out.push(b' ');
                out.extend_from_slice(tok);
            }
            b'k' => echo_key(out, key),
            _ => {}
        }
    }
}

/// Seconds of TTL left (rounded up, like memcached's whole-second clock),
/// or -1 without expiry.
fn ttl_left(exp: Option<u64>, now: u64) -> i64 {
    match exp {
        None => -1,
        Some(t) => (t.saturating_sub(now)).div_ceil(1000) as i64,
    }
}

fn decode(raw: Option<i32>, now: u64) -> Option<u64> {
    Exptime::decode(raw.unwrap_or(0), now).as_expire_at()
}

/// `mg <key> <flags>*`
pub fn mg(ctx: &mut McCtx<'_>, key: Key<'_>, f: MetaFlags<'_>) {
    let c = &ctx.mc.counters;
    McCounters::bump(&c.cmd_meta);
    let k = key.bytes();
    let now = ctx.now;
    let mut txn = ctx.shared.engine.txn(DB, &[k], now);
    let mut created = None;
    // (a key holding a hash or a set is a miss that N does not replace)
    if f.vivify.is_some() && txn.peek(k).is_none() {
        // N: create an empty item and hand this client the win token (E:
        // with the CAS the client chose)
        let expire_at = decode(f.vivify, now);
        choose_cas(&mut txn, f.new_cas);
        let cas = txn.set(k, &[], 0, expire_at);
        if f.new_cas.is_some() {
            // the chosen CAS may be one an old mark of this key names
            ctx.mc.clear_mark(k);
        }
        created = Some(Meta {
            cas,
            expire_at,
            flags: 0,
        });
    }
    // a hit counts as a fetch and an access unless `u` (memcached's
    // delayed LRU bump: `h` and `l` report the state from before this
    // request); a vivified item is marked once the reply is built
    let hit = match created {
        Some(m) => Some((m, &[][..], false, 0)),
        None => txn
            .fetch(k, !f.no_update)
            .map(|h| (h.view.meta, h.view.value, h.fetched_before, h.idle_before)),
    };
    let out = &mut *ctx.out;
    let Some((meta, value, fetched_before, idle_before)) = hit else {
        drop(txn);
        if f.ttl.is_some() {
            McCounters::bump(&c.cmd_touch);
            McCounters::bump(&c.touch_misses);
        } else {
            McCounters::bump(&c.cmd_get);
            McCounters::bump(&c.get_misses);
        }
        if !f.quiet {
            out.extend_from_slice(b"EN");
            echo_opaque_and_key(out, &key, &f);
            out.extend_from_slice(b"\r\n");
        }
        return;
    };
    let mark = ctx.mc.mark(k, meta.cas);
    let mut exp = meta.expire_at;
    let mut ttl_set = false;
    let mut won = false;
    if f.value {
        out.extend_from_slice(b"VA ");
        encode::num(out, value.len());
    } else {
        out.extend_from_slice(b"HD");
    }
    for tok in f.tokens() {
        match tok[0] {
            b'T' => {
                exp = decode(f.ttl, now);
                ttl_set = true;
            }
            b'N' if created.is_some() => won = true,
            b'R' => {
                let recache = decode(f.recache, now);
                if !mark.token_sent && created.is_none() {
                    if let (Some(e), Some(r)) = (exp, recache) {
                        won |= e < r;
                    }
                }
            }
            b's' => encode::flag_num(out, b's', value.len()),
            b't' => encode::flag_num(out, b't', ttl_left(exp, now)),
            b'c' => encode::flag_num(out, b'c', meta.cas),
            b'f' => encode::flag_num(out, b'f', meta.flags),
            b'h' => encode::flag_num(out, b'h', u8::from(fetched_before)),
            b'l' => encode::flag_num(out, b'l', idle_before),
            b'O' => {
                out.push(b' ');
                out.extend_from_slice(tok);
            }
            b'k' => echo_key(out, &key),
            _ => {}
        }
    }
    if mark.token_sent {
        out.extend_from_slice(b" Z");
    }
    if mark.stale {
        out.extend_from_slice(b" X");
        won |= !mark.token_sent;
    }
    if won {
        out.extend_from_slice(b" W");
    }
    out.extend_from_slice(b"\r\n");
    if f.value {
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    if created.is_some() && !f.no_update {
        txn.fetch(k, true);
    }
    if ttl_set {
        txn.set_expiry(k, exp);
    }
    drop(txn);
    if won {
        ctx.mc.set_mark(
            k,
            meta.cas,
            Mark {
                stale: mark.stale,
                token_sent: true,
            },
        );
    }
    if ttl_set {
        McCounters::bump(&c.cmd_touch);
        McCounters::bump(&c.touch_hits);
    } else {
        McCounters::bump(&c.cmd_get);
        McCounters::bump(&c.get_hits);
    }
}

/// `ms <key> <datalen> <flags>*`
pub fn ms(ctx: &mut McCtx<'_>, key: Key<'_>, f: MetaFlags<'_>, data: &[u8]) {
    McCounters::bump(&ctx.mc.counters.cmd_meta);
    let op = match f.mode {
        Some(b'E') => StoreOp::Add,
        Some(b'A') => StoreOp::Append,
        Some(b'P') => StoreOp::Prepend,
        Some(b'R') => StoreOp::Replace,
        _ => StoreOp::Set,
    };
    // a CAS turns set and replace into cas
    let op = match op {
        StoreOp::Set | StoreOp::Replace if f.cas.is_some() => StoreOp::Cas,
        op => op,
    };
    // magpie's extension: G<tag> tokens (checked before anything changes)
    let tags: Vec<&[u8]> = f.tags().collect();
    if let Err(e) = super::tags::check(ctx, op, &tags) {
        ctx.reply(&e, false);
        return;
    }
    let args = StoreArgs {
        op,
        key: key.bytes(),
        flags: f.client_flags,
        exptime: Exptime::decode(f.ttl.unwrap_or(0), ctx.now),
        cas: f.cas.unwrap_or(0),
        data,
        set_stale: f.invalidate && op == StoreOp::Cas,
        new_cas: f.new_cas,
        tags: &tags,
    };
    let result = store(ctx, &args);
    let (code, cas) = match result {
        Stored::Stored(cas) => ("HD", cas),
        Stored::NotStored => ("NS", 0),
        Stored::Exists => ("EX", 0),
        Stored::NotFound => ("NF", 0),
    };
    if code == "HD" && f.quiet {
        return;
    }
    let out = &mut *ctx.out;
    out.extend_from_slice(code.as_bytes());
    for tok in f.tokens() {
        match tok[0] {
            b'O' => {
                out.push(b' ');
                out.extend_from_slice(tok);
            }
            b'k' => echo_key(out, &key),
            b'c' => encode::flag_num(out, b'c', cas),
            _ => {}
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// ms over the item size limit: refused as memcached refuses it, but the
/// stored value is kept (memcached drops it; a rejected command must not
/// lose data here).
pub fn ms_too_large(ctx: &mut McCtx<'_>, _key: Key<'_>) {
    McCounters::bump(&ctx.mc.counters.store_too_large);
    ctx.reply("SERVER_ERROR object too large for cache", false);
}

/// `md <key> <flags>*`
pub fn md(ctx: &mut McCtx<'_>, key: Key<'_>, f: MetaFlags<'_>) {
    let c = &ctx.mc.counters;
    McCounters::bump(&c.cmd_meta);
    let k = key.bytes();
    let mut txn = ctx.shared.engine.txn(DB, &[k], ctx.now);
    // not an access (memcached looks the item up without a bump), even
    // with I, which keeps the item
    // a key holding a hash or a set is not found (and not deleted)
    let code = match txn
        .peek(k)
        .filter(|v| v.kind == Kind::String)
        .map(|v| v.meta)
    {
        None => {
            McCounters::bump(&c.delete_misses);
            "NF"
        }
        Some(m) if f.cas.is_some_and(|cas| cas != m.cas) => {
            McCounters::bump(&c.delete_misses);
            "EX"
        }
        Some(m) if f.invalidate => {
            // I: keep the item but mark it stale, with a new CAS, so the
            // next mg wins the right to recompute it
            if f.ttl.is_some() {
                txn.set_expiry(k, decode(f.ttl, ctx.now));
            }
            // the new version's CAS: E's if given (the mark below is tied
            // to it either way)
            choose_cas(&mut txn, f.new_cas);
            txn.set_flags(k, m.flags);
            if let Some(v) = txn.peek(k) {
                let cas = v.meta.cas;
                ctx.mc.set_mark(
                    k,
                    cas,
                    Mark {
                        stale: true,
                        token_sent: false,
                    },
                );
            }
            "HD"
        }
        Some(_) => {
            txn.remove(k);
            McCounters::bump(&c.delete_hits);
            "HD"
        }
    };
    drop(txn);
    if code == "HD" && f.quiet {
        return;
    }
    miss_reply(ctx.out, code, &key, &f);
}

/// `ma <key> <flags>*`
pub fn ma(ctx: &mut McCtx<'_>, key: Key<'_>, f: MetaFlags<'_>) {
    let c = &ctx.mc.counters;
    McCounters::bump(&c.cmd_meta);
    let k = key.bytes();
    let now = ctx.now;
    let incr = !matches!(f.mode, Some(b'D' | b'-'));
    let mut txn = ctx.shared.engine.txn(DB, &[k], now);
    // E: the CAS of the changed (or vivified) counter; unused on a miss or
    // a failed compare
    choose_cas(&mut txn, f.new_cas);
    let mut quiet_ok = false;
    let (value, cas) = match add_delta(&mut txn, k, incr, f.delta, f.cas.unwrap_or(0)) {
        Delta::Done(n, cas) => {
            McCounters::bump(if incr { &c.incr_hits } else { &c.decr_hits });
            quiet_ok = f.quiet;
            (n, cas)
        }
        Delta::NonNumeric => {
            drop(txn);
            ctx.reply(
                "CLIENT_ERROR cannot increment or decrement non-numeric value",
                false,
            );
            return;
        }
        Delta::CasMismatch => {
            drop(txn);
            miss_reply(ctx.out, "EX", &key, &f);
            return;
        }
        // N does not replace a key holding a hash or a set
        Delta::NotFound if f.vivify.is_none() || txn.peek(k).is_some() => {
            drop(txn);
            McCounters::bump(if incr { &c.incr_misses } else { &c.decr_misses });
            miss_reply(ctx.out, "NF", &key, &f);
            return;
        }
        Delta::NotFound => {
            // N: create the counter at J's initial value
            let mut buf = itoa::Buffer::new();
            let digits = buf.format(f.initial).as_bytes();
            let cas = txn.set(k, &[digits], 0, decode(f.vivify, now));
            (f.initial, cas)
        }
    };
    if f.new_cas.is_some() {
        // a stale item that changes is no longer stale (its CAS moves on);
        // a chosen CAS may not, so forget the mark outright
        ctx.mc.clear_mark(k);
    }
    if quiet_ok {
        return;
    }
    let mut exp = txn.get(k).and_then(|v| v.meta.expire_at);
    let mut ttl_set = false;
    let mut buf = itoa::Buffer::new();
    let digits = buf.format(value).as_bytes();
    let out = &mut *ctx.out;
    if f.value {
        out.extend_from_slice(b"VA ");
        encode::num(out, digits.len());
    } else {
        out.extend_from_slice(b"HD");
    }
    for tok in f.tokens() {
        match tok[0] {
            b'c' => encode::flag_num(out, b'c', cas),
            b't' => encode::flag_num(out, b't', ttl_left(exp, now)),
            b'T' => {
                exp = decode(f.ttl, now);
                ttl_set = true;
            }
            b'O' => {
                out.push(b' ');
                out.extend_from_slice(tok);
            }
            b'k' => echo_key(out, &key),
            _ => {}
        }
    }
    out.extend_from_slice(b"\r\n");
    if f.value {
        out.extend_from_slice(digits);
        out.extend_from_slice(b"\r\n");
    }
    if ttl_set {
        txn.set_expiry(k, exp);
    }
}

/// A status line carrying only the O and k flags (misses and failures).
fn miss_reply(out: &mut Vec<u8>, code: &str, key: &Key<'_>, f: &MetaFlags<'_>) {
    out.extend_from_slice(code.as_bytes());
    echo_opaque_and_key(out, key, f);
    out.extend_from_slice(b"\r\n");
}

/// `me <key>`: memcached's debug line. magpie reports what its engine keeps
/// (TTL in memcached's "exp" form, seconds since the last access, CAS,
/// whether it was fetched, and the size memcached would use); memcached's
/// cls names a slab class, which magpie lacks. Like memcached's, it is
/// neither a fetch nor an access.
pub fn me(ctx: &mut McCtx<'_>, key: Key<'_>) {
    McCounters::bump(&ctx.mc.counters.cmd_meta);
    let k = key.bytes();
    let now = ctx.now;
    let mut txn = ctx.shared.engine.txn(DB, &[k], now);
    let Some(found) = txn.fetch(k, false) else {
        drop(txn);
        ctx.reply("EN", false);
        return;
    };
    let (v, fetched) = (found.view, found.fetched_before);
    let out = &mut *ctx.out;
    out.extend_from_slice(b"ME ");
    if key.is_binary() {
        base64_encode(k, out);
    } else {
        out.extend_from_slice(k);
    }
    out.extend_from_slice(b" exp=");
    // memcached prints (now - exptime): minus the seconds left, or -1
    let exp = match v.meta.expire_at {
        None => -1,
        Some(_) => -ttl_left(v.meta.expire_at, now),
    };
    encode::num(out, exp);
    out.extend_from_slice(b" la=");
    encode::num(out, found.idle_before);
    out.extend_from_slice(b" cas=");
    encode::num(out, v.meta.cas);
    out.extend_from_slice(if fetched { b" fetch=yes" } else { b" fetch=no" });
    out.extend_from_slice(b" size=");
    encode::num(out, item_total_size(k.len(), v.meta.flags, v.value.len()));
    out.extend_from_slice(b"\r\n");
}
