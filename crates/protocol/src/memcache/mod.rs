//! The memcached text protocol (memcached 1.6 `protocol.txt`): classic
//! commands (`get`, `set`, `incr`, ...) and meta commands (`mg`, `ms`, `md`,
//! `ma`, `mn`, `me`).
//!
//! [`Parser`] turns a read buffer into [`Request`]s that borrow from it;
//! [`encode`] appends reply lines. Errors are memcached's own texts, and the
//! bytes consumed after a bad request are the ones memcached consumes, so a
//! client sees the same stream of replies from either server.

pub mod encode;
pub mod meta;
pub mod num;
pub mod parse;

pub use meta::{Key, MetaFlags};
pub use parse::{Limits, Parsed, Parser, Request, StoreOp, Words};

/// Longest key memcached accepts.
pub const KEY_MAX_LENGTH: usize = 250;
/// A connection whose unfinished line passes this many bytes is closed
/// (unless it is a get, which may list many keys).
pub const MAX_LINE_WITHOUT_NEWLINE: usize = 2048;
/// memcached tokenises at most 23 words of a line (plus a terminal token).
pub const MAX_TOKENS: usize = 24;
/// Meta commands with more than this many tokens (terminal included) are
/// refused ("options flags too long").
pub const MAX_META_TOKENS: usize = 20;
/// memcached's default `-I` (item size limit).
pub const DEFAULT_MAX_ITEM_SIZE: usize = 1024 * 1024;
/// The memcached release whose protocol this module implements; reported
/// by `version` and `stats`.
pub const PROTOCOL_VERSION: &str = "1.6.18";

/// Bytes memcached would use for an item: its 48-byte header, the key and
/// a NUL, the value and "\r\n", 4 bytes of client flags when non-zero and
/// 8 of CAS. memcached refuses items whose size exceeds `-I`; magpie applies
/// the same formula so the same values are accepted and refused.
pub fn item_total_size(key_len: usize, flags: u32, value_len: usize) -> usize {
    48 + key_len + 1 + if flags != 0 { 4 } else { 0 } + value_len + 2 + 8
}

/// True when an item of these sizes fits under `max_item_size`.
pub fn item_size_ok(key_len: usize, flags: u32, value_len: usize, max_item_size: usize) -> bool {
    item_total_size(key_len, flags, value_len) <= max_item_size
}

/// A memcached exptime, decoded at time `now_ms` the way memcached's
/// `realtime()` does: 0 never expires, up to 30 days is relative seconds,
/// larger is an absolute Unix time, and negative means already expired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exptime {
    /// No expiry.
    Never,
    /// Expires at this absolute time in ms (possibly already past).
    At(u64),
}

/// Seconds in 30 days: the largest relative exptime.
pub const REALTIME_MAXDELTA: i64 = 60 * 60 * 24 * 30;

impl Exptime {
    /// Decodes a raw exptime at `now_ms`.
    pub fn decode(raw: i32, now_ms: u64) -> Exptime {
        let raw = raw as i64;
        if raw == 0 {
            Exptime::Never
        } else if raw < 0 {
            Exptime::At(0)
        } else if raw > REALTIME_MAXDELTA {
            Exptime::At(raw as u64 * 1000)
        } else {
            Exptime::At(now_ms + raw as u64 * 1000)
        }
    }

    /// As the engine's `expire_at` (ms); an already-passed time makes the
    /// engine drop the key.
    pub fn as_expire_at(self) -> Option<u64> {
        match self {
            Exptime::Never => None,
            Exptime::At(t) => Some(t),
        }
    }
}

/// Checks the parser's rules on arbitrary input (the fuzz target
/// `memcache_parser` calls this): it never panics, every request consumes
/// at least one byte and no more than it was given, keys and values lie
/// inside the input, keys are at most 250 bytes, stored values fit the item
/// limit, and feeding the same bytes in two pieces gives the same requests
/// (up to a too-long-line close, which depends on arrival like memcached's).
pub fn check_memcache_parser_invariants(data: &[u8]) {
    let limits = Limits {
        max_item_size: 4096,
        max_get_line: 8192,
    };
    let whole = run_all(&limits, data, None);
    // split once at an input-derived point and compare
    let cut = if data.is_empty() {
        0
    } else {
        data[0] as usize % (data.len() + 1)
    };
    let split = run_all(&limits, data, Some(cut));
    if split.last().is_some_and(|s| s == "close") && whole != split {
        // a line that had not ended when the first piece arrived may pass
        // the 2048-byte limit in one run and not the other (memcached too
        // depends on how the bytes arrive); up to there both must agree
        let agreed = &split[..split.len() - 1];
        assert!(whole.len() >= agreed.len(), "split run saw more requests");
        assert_eq!(merge_skips(whole[..agreed.len()].to_vec()), agreed.to_vec());
    } else {
        assert_eq!(whole, split, "requests depend on how the input was split");
    }
}

/// Debug rendering of every step, for the split-equivalence check.
fn run_all(limits: &Limits, data: &[u8], cut: Option<usize>) -> Vec<String> {
    let mut p = Parser::new(limits.clone());
    let mut out = Vec::new();
    let mut avail = cut.unwrap_or(data.len());
    let mut off = 0;
    let range = data.as_ptr_range();
    let inside =
        |s: &[u8]| s.is_empty() || (range.start <= s.as_ptr() && s.as_ptr_range().end <= range.end);
    let mut steps = 0;
    loop {
        steps += 1;
        assert!(steps <= 2 * data.len() + 4, "parser made no progress");
        let buf = &data[off..avail];
        match p.parse(buf) {
            Parsed::Request(r, n) => {
                assert!(n >= 1 && n <= buf.len(), "consumed {n} of {}", buf.len());
                match &r {
                    Request::Store {
                        key,
                        data: v,
                        flags,
                        ..
                    } => {
                        assert!(key.len() <= KEY_MAX_LENGTH && inside(key) && inside(v));
                        assert!(item_size_ok(
                            key.len(),
                            *flags,
                            v.len(),
                            limits.max_item_size
                        ));
                    }
                    Request::MetaSet {
                        key,
                        data: v,
                        flags,
                    } => {
                        assert!(inside(v));
                        assert!(item_size_ok(
                            key.bytes().len(),
                            flags.client_flags,
                            v.len(),
                            limits.max_item_size
                        ));
                    }
                    Request::Get { keys, .. } => {
                        for k in keys.iter() {
                            assert!(!k.is_empty() && k.len() <= KEY_MAX_LENGTH && inside(k));
                        }
                    }
                    Request::Delete { key, .. }
                    | Request::Touch { key, .. }
                    | Request::Arith { key, .. } => {
                        assert!(key.len() <= KEY_MAX_LENGTH && inside(key));
                    }
                    Request::MetaGet { key, .. }
                    | Request::MetaDelete { key, .. }
                    | Request::MetaArith { key, .. } => {
                        assert!(key.bytes().len() <= KEY_MAX_LENGTH);
                    }
                    _ => {}
                }
                out.push(format!("{r:?}"));
                off += n;
            }
            Parsed::Skipped(n) => {
                assert!(n >= 1 && n <= buf.len());
                out.push(format!("skip{n}"));
                off += n;
            }
            Parsed::Close => {
                out.push("close".into());
                return merge_skips(out);
            }
            Parsed::Incomplete => {
                if avail < data.len() {
                    avail = data.len();
                } else {
                    return merge_skips(out);
                }
            }
        }
    }
}

/// Skips may arrive in different pieces depending on the split; merge
/// adjacent ones so only what was skipped in total is compared.
fn merge_skips(v: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in v {
        if let (Some(n), Some(last)) = (s.strip_prefix("skip"), out.last_mut()) {
            if let Some(m) = last.strip_prefix("skip") {
                let total: usize = n.parse::<usize>().unwrap() + m.parse::<usize>().unwrap();
                *last = format!("skip{total}");
                continue;
            }
        }
        out.push(s);
    }
    out
}

#[cfg(test)]
mod tests;
