//! magpie's tag extension of the memcached protocol (docs/memcached.md):
//! stores with tags (`tags=a,b` after a text store's numbers, `G<tag>` on
//! `ms`), `invalidate_tag`, `invalidate_prefix` and `tag_keys`. None of it
//! is a memcached command or flag, so no memcached client that does not
//! use it can trigger it.

use magpie_protocol::memcache::meta::base64_encode;
use magpie_protocol::memcache::{encode, StoreOp, Words, KEY_MAX_LENGTH};

use super::{McCounters, McCtx, DB};

/// The tags of a text store's `tags=` token: comma-separated.
pub fn split_list(list: &[u8]) -> Vec<&[u8]> {
    list.split(|&b| b == b',').collect()
}

/// The refusal of a store's tags, if any: tags on append or prepend (which
/// keep the key's tags), or tags beyond the limits.
pub fn check(ctx: &McCtx<'_>, op: StoreOp, tags: &[&[u8]]) -> Result<(), String> {
    if tags.is_empty() {
        return Ok(());
    }
    if matches!(op, StoreOp::Append | StoreOp::Prepend) {
        return Err("CLIENT_ERROR tags only with set, add, replace and cas".into());
    }
    ctx.shared
        .engine
        .check_tags(tags)
        .map_err(|e| format!("CLIENT_ERROR {e}"))
}

/// `invalidate_tag <tag>+ [noreply]` -> `INVALIDATED <n>` (the sum of the
/// tags' member counts at the call, as INVALIDATE TAG).
pub fn invalidate_tags(ctx: &mut McCtx<'_>, tags: Words<'_>, noreply: bool) {
    McCounters::bump(&ctx.mc.counters.cmd_meta);
    let tags: Vec<&[u8]> = tags.iter().collect();
    let n = ctx.shared.engine.invalidate_tags(DB, &tags);
    ctx.reply(&format!("INVALIDATED {n}"), noreply);
}

/// `invalidate_prefix <prefix>+ [noreply]` -> `INVALIDATED <n>` (the
/// number of prefixes, as INVALIDATE PREFIX).
pub fn invalidate_prefixes(ctx: &mut McCtx<'_>, prefixes: Words<'_>, noreply: bool) {
    McCounters::bump(&ctx.mc.counters.cmd_meta);
    let prefixes: Vec<&[u8]> = prefixes.iter().collect();
    match ctx.shared.engine.invalidate_prefixes(DB, &prefixes) {
        Ok(n) => ctx.reply(&format!("INVALIDATED {n}"), noreply),
        Err(e) => ctx.reply(&format!("CLIENT_ERROR {e}"), noreply),
    }
}

/// Largest count honoured per step.
const MAX_COUNT: u64 = 1 << 20;

/// `tag_keys <tag> <cursor> [<count>]`: one TAG SCAN step, as
/// `KEY <key>` lines and `END <next-cursor>` (0 at the end). A key that is
/// not a valid memcached key (stored through another door) is sent in
/// base64 with a ` b` after it, as meta commands do.
pub fn tag_keys(ctx: &mut McCtx<'_>, tag: &[u8], cursor: u64, count: u64) {
    McCounters::bump(&ctx.mc.counters.cmd_meta);
    let count = count.min(MAX_COUNT) as usize;
    let mut keys: Vec<Vec<u8>> = Vec::new();
    let next = ctx
        .shared
        .engine
        .tag_scan(DB, tag, cursor, count, ctx.now, |k, _| {
            keys.push(k.to_vec())
        });
    let mut line = Vec::new();
    for k in &keys {
        line.clear();
        line.extend_from_slice(b"KEY ");
        let plain =
            !k.is_empty() && k.len() <= KEY_MAX_LENGTH && k.iter().all(|&b| b > b' ' && b != 0x7f);
        if plain {
            line.extend_from_slice(k);
        } else {
            base64_encode(k, &mut line);
            line.extend_from_slice(b" b");
        }
        encode::line(ctx.out, &line);
    }
    encode::line(ctx.out, format!("END {next}").as_bytes());
}
