//! Retrieval: get, gets, gat, gats, and touch.

use magpie_protocol::memcache::{encode, Exptime, Words};

use super::{McCounters, McCtx, DB};

/// get / gets (touch None) and gat / gats (touch Some(exptime)).
pub fn get(ctx: &mut McCtx<'_>, with_cas: bool, touch: Option<i32>, keys: Words<'_>) {
    let c = &ctx.mc.counters;
    let engine = &ctx.shared.engine;
    let new_exp = touch.map(|t| Exptime::decode(t, ctx.now).as_expire_at());
    for key in keys.iter() {
        let mut txn = engine.txn(DB, &[key], ctx.now);
        // every retrieval counts as a fetch (the meta `h` flag)
        let hit = match txn.fetch(key, true) {
            Some(found) => {
                let v = found.view;
                let cas = with_cas.then_some(v.meta.cas);
                encode::value(ctx.out, key, v.meta.flags, v.value, cas);
                true
            }
            None => false,
        };
        if let Some(exp) = new_exp {
            McCounters::bump(&c.cmd_touch);
            if hit {
                txn.set_expiry(key, exp);
                McCounters::bump(&c.touch_hits);
            } else {
                McCounters::bump(&c.touch_misses);
            }
        } else {
            McCounters::bump(&c.cmd_get);
            McCounters::bump(if hit { &c.get_hits } else { &c.get_misses });
        }
    }
    encode::line(ctx.out, b"END");
}

/// `touch <key> <exptime>` (a fetch, for the meta `h` flag, as in memcached)
pub fn touch(ctx: &mut McCtx<'_>, key: &[u8], exptime: i32, noreply: bool) {
    let c = &ctx.mc.counters;
    McCounters::bump(&c.cmd_touch);
    let exp = Exptime::decode(exptime, ctx.now).as_expire_at();
    let mut txn = ctx.shared.engine.txn(DB, &[key], ctx.now);
    let found = txn.fetch(key, true).is_some() && txn.set_expiry(key, exp);
    drop(txn);
    McCounters::bump(if found {
        &c.touch_hits
    } else {
        &c.touch_misses
    });
    ctx.reply(if found { "TOUCHED" } else { "NOT_FOUND" }, noreply);
}
