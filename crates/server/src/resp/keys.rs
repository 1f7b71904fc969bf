//! Generic keyspace commands: DEL, UNLINK, EXISTS, TYPE, KEYS, SCAN,
//! RANDOMKEY, RENAME, RENAMENX, COPY, DBSIZE, FLUSHDB, FLUSHALL.
//!
//! Replies and error texts follow Redis 7.0 (`db.c`). A command naming
//! several keys of one database takes a single engine transaction over all
//! of them, so it is atomic as in Redis. COPY into another database is the
//! one exception; see `copy`.

use std::sync::atomic::Ordering;

use magpie_engine::glob;
use magpie_protocol::resp::Args;

use super::handler::{int_arg, is, parse_cursor, CommandSpec, Ctx};

/// The keys family's table.
pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "del",
        arity: -2,
        flags: &["write"],
        first_key: 1,
        last_key: -1,
        step: 1,
        group: "generic",
        summary: "Delete a key",
        syntax: "key [key ...]",
        handler: del,
    },
    CommandSpec {
        name: "unlink",
        arity: -2,
        flags: &["write", "fast"],
        first_key: 1,
        last_key: -1,
        step: 1,
        group: "generic",
        summary: "Delete a key asynchronously in another thread. Otherwise it is just as DEL, but non blocking.",
        syntax: "key [key ...]",
        handler: del,
    },
    CommandSpec {
        name: "exists",
        arity: -2,
        flags: &["readonly", "fast"],
        first_key: 1,
        last_key: -1,
        step: 1,
        group: "generic",
        summary: "Determine if a key exists",
        syntax: "key [key ...]",
        handler: exists,
    },
    CommandSpec {
        name: "type",
        arity: 2,
        flags: &["readonly", "fast"],
        first_key: 1,
        last_key: 1,
        step: 1,
        group: "generic",
        summary: "Determine the type stored at key",
        syntax: "key",
        handler: type_,
    },
    CommandSpec {
        name: "keys",
        arity: 2,
        flags: &["readonly"],
        first_key: 0,
        last_key: 0,
        step: 0,
        group: "generic",
        summary: "Find all keys matching the given pattern",
        syntax: "pattern",
        handler: keys,
    },
    CommandSpec {
        name: "scan",
        arity: -2,
        flags: &["readonly"],
        first_key: 0,
        last_key: 0,
        step: 0,
        group: "generic",
        summary: "Incrementally iterate the keys space",
        syntax: "cursor [MATCH pattern] [COUNT count] [TYPE type]",
        handler: scan,
    },
    CommandSpec {
        name: "randomkey",
        arity: 1,
        flags: &["readonly"],
        first_key: 0,
        last_key: 0,
        step: 0,
        group: "generic",
        summary: "Return a random key from the keyspace",
        syntax: "",
        handler: randomkey,
    },
    CommandSpec {
        name: "rename",
        arity: 3,
        flags: &["write"],
        first_key: 1,
        last_key: 2,
        step: 1,
        group: "generic",
        summary: "Rename a key",
        syntax: "key newkey",
        handler: rename,
    },
    CommandSpec {
        name: "renamenx",
        arity: 3,
        flags: &["write", "fast"],
        first_key: 1,
        last_key: 2,
        step: 1,
        group: "generic",
        summary: "Rename a key, only if the new key does not exist",
        syntax: "key newkey",
        handler: renamenx,
    },
    CommandSpec {
        name: "copy",
        arity: -3,
        flags: &["write", "denyoom"],
        first_key: 1,
        last_key: 2,
        step: 1,
        group: "generic",
        summary: "Copy a key",
        syntax: "source destination [DB destination-db] [REPLACE]",
        handler: copy,
    },
    CommandSpec {
        name: "dbsize",
        arity: 1,
        flags: &["readonly", "fast"],
        first_key: 0,
        last_key: 0,
        step: 0,
        group: "server",
        summary: "Return the number of keys in the selected database",
        syntax: "",
        handler: dbsize,
    },
    CommandSpec {
        name: "flushdb",
        arity: -1,
        flags: &["write"],
        first_key: 0,
        last_key: 0,
        step: 0,
        group: "server",
        summary: "Remove all keys from the current database",
        syntax: "[ASYNC | SYNC]",
        handler: flushdb,
    },
    CommandSpec {
        name: "flushall",
        arity: -1,
        flags: &["write"],
        first_key: 0,
        last_key: 0,
        step: 0,
        group: "server",
        summary: "Remove all keys from all databases",
        syntax: "[ASYNC | SYNC]",
        handler: flushall,
    },
];

/// Arguments `from..` as a key list for [`magpie_engine::Engine::txn`].
fn keys_from<'a>(args: &Args<'a>, from: usize) -> Vec<&'a [u8]> {
    args.iter().skip(from).collect()
}

/// DEL / UNLINK: removes every named key in one transaction; replies how
/// many existed (a key named twice counts once, as it is gone the second
/// time). Freeing is cheap here (one allocation per key), so UNLINK does
/// the same work as DEL.
fn del(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    let keys = keys_from(&args, 1);
    let mut txn = ctx.shared.engine.txn(ctx.session.db, &keys, ctx.now);
    let removed = keys.iter().filter(|k| txn.remove(k)).count();
    drop(txn);
    ctx.out.integer(removed as i64);
}

/// EXISTS: how many of the named keys exist, counting repeats.
fn exists(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    let keys = keys_from(&args, 1);
    let mut txn = ctx.shared.engine.txn(ctx.session.db, &keys, ctx.now);
    let (mut hits, mut misses) = (0u64, 0u64);
    for k in &keys {
        if txn.exists(k) {
            hits += 1;
        } else {
            misses += 1;
        }
    }
    drop(txn);
    let c = &ctx.shared.counters;
    c.keyspace_hits.fetch_add(hits, Ordering::Relaxed);
    c.keyspace_misses.fetch_add(misses, Ordering::Relaxed);
    ctx.out.integer(hits as i64);
}

/// TYPE: `string`, `hash`, `set`, or `none` for a missing key. Not an
/// access of the key.
fn type_(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    let key = args.get(1);
    let kind = ctx
        .shared
        .engine
        .txn(ctx.session.db, &[key], ctx.now)
        .kind(key);
    ctx.count_read(kind.is_some());
    ctx.out.simple(kind.map_or("none", |k| k.name()));
}

/// Whether `key` exists, without counting as an access to it (Redis's
/// LOOKUP_NOTOUCH), counted as a keyspace hit or miss.
pub(super) fn looked_up(ctx: &mut Ctx<'_, '_>, key: &[u8]) -> bool {
    let found = ctx
        .shared
        .engine
        .txn(ctx.session.db, &[key], ctx.now)
        .exists(key);
    ctx.count_read(found);
    found
}

/// Matched keys gathered while shards are locked, written out once the
/// count (which the array header needs first) is known. One flat buffer
/// rather than one allocation per key.
#[derive(Default)]
struct KeyList {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl KeyList {
    fn push(&mut self, key: &[u8]) {
        self.bytes.extend_from_slice(key);
        self.ends.push(self.bytes.len());
    }

    fn write(&self, ctx: &mut Ctx<'_, '_>) {
        ctx.out.array(self.ends.len());
        let mut start = 0;
        for &end in &self.ends {
            ctx.out.bulk(&self.bytes[start..end]);
            start = end;
        }
    }
}

/// Redis treats the bare `*` pattern as "everything" without running the
/// matcher, which is also the only way the empty key matches a `*`.
fn matches_all(pattern: &[u8]) -> bool {
    pattern == b"*"
}

/// KEYS pattern: every live key of the database matching the glob.
fn keys(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    let pattern = args.get(1);
    let all = matches_all(pattern);
    let mut found = KeyList::default();
    ctx.shared
        .engine
        .for_each_key(ctx.session.db, ctx.now, |k| {
            if all || glob::matches(pattern, k) {
                found.push(k);
            }
        });
    found.write(ctx);
}

/// SCAN cursor [MATCH pattern] [COUNT count] [TYPE type].
///
/// The cursor is the engine's (shard | table epoch | bucket); it is printed
/// as an unsigned decimal. Guarantees are Redis's: a key present for the
/// whole iteration is returned at least once, and may be returned twice.
fn scan(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    let Some(cursor) = parse_cursor(args.get(1)) else {
        ctx.out.error("ERR invalid cursor");
        return;
    };
    let mut count = 10usize;
    let mut pattern: Option<&[u8]> = None;
    let mut type_name: Option<&[u8]> = None;
    let mut i = 2;
    while i < args.len() {
        let (opt, has_value) = (args.get(i), i + 1 < args.len());
        if is(opt, "count") && has_value {
            let Some(n) = int_arg(ctx, args.get(i + 1)) else {
                return;
            };
            if n < 1 {
                ctx.syntax_error();
                return;
            }
            count = usize::try_from(n).unwrap_or(usize::MAX);
        } else if is(opt, "match") && has_value {
            let p = args.get(i + 1);
            pattern = (!matches_all(p)).then_some(p);
        } else if is(opt, "type") && has_value {
            type_name = Some(args.get(i + 1));
        } else {
            ctx.syntax_error();
            return;
        }
        i += 2;
    }
    // Redis 7.0 compares type names case-insensitively and accepts unknown
    // ones (which match nothing)
    let mut found = KeyList::default();
    let next = ctx
        .shared
        .engine
        .scan(ctx.session.db, cursor, count, ctx.now, |k, v| {
            let type_ok = type_name.is_none_or(|t| is(t, v.kind.name()));
            if type_ok && pattern.is_none_or(|p| glob::matches(p, k)) {
                found.push(k);
            }
        });
    ctx.out.array(2);
    let mut digits = itoa::Buffer::new();
    ctx.out.bulk(digits.format(next).as_bytes());
    found.write(ctx);
}

/// RANDOMKEY: a random live key, or null when the database is empty.
fn randomkey(ctx: &mut Ctx<'_, '_>, _args: Args<'_>) {
    match ctx.shared.engine.random_key(ctx.session.db, ctx.now) {
        Some(k) => ctx.out.bulk(&k),
        None => ctx.out.null(),
    }
}

fn rename(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    rename_generic(ctx, args, false)
}

fn renamenx(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    rename_generic(ctx, args, true)
}

/// RENAME / RENAMENX in one transaction over both keys: the value moves
/// with its TTL; renaming a key to itself is a no-op that still requires
/// the key to exist.
fn rename_generic(ctx: &mut Ctx<'_, '_>, args: Args<'_>, nx: bool) {
    let (src, dst) = (args.get(1), args.get(2));
    let mut txn = ctx.shared.engine.txn(ctx.session.db, &[src, dst], ctx.now);
    if !txn.exists(src) {
        drop(txn);
        ctx.out.error("ERR no such key");
        return;
    }
    let renamed = src != dst && !(nx && txn.exists(dst));
    if renamed {
        txn.copy(src, dst);
        txn.remove(src);
    }
    drop(txn);
    if nx {
        ctx.out.integer(renamed as i64);
    } else {
        ctx.out.ok();
    }
}

/// `COPY source destination [DB destination-db] [REPLACE]`.
///
/// Within one database the copy is a single transaction over both keys.
/// Into another database it is two: the source is read (and its value
/// copied out) under the first, the destination written under the second.
/// Holding both at once would need a lock order across databases that
/// every multi-database command obeys; without it, COPY 0->1 racing a
/// 1->0 operation could deadlock. Redis runs commands one at a time, so
/// there the copy is atomic; here a write to the source between the two
/// steps can be missed by the copy, which then reflects the value just
/// before that write.
fn copy(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    let (src, dst) = (args.get(1), args.get(2));
    let src_db = ctx.session.db;
    let mut dst_db = src_db;
    let mut replace = false;
    let mut j = 3;
    while j < args.len() {
        let opt = args.get(j);
        if is(opt, "replace") {
            replace = true;
        } else if is(opt, "db") && j + 1 < args.len() {
            let Some(db) = int_arg(ctx, args.get(j + 1)) else {
                return;
            };
            if i32::try_from(db).is_err() {
                ctx.out.error(
                    "ERR value is out of range, value must between -2147483648 and 2147483647",
                );
                return;
            }
            if db < 0 || db as usize >= ctx.shared.engine.databases() {
                ctx.out.error("ERR DB index is out of range");
                return;
            }
            dst_db = db as usize;
            j += 1;
        } else {
            ctx.syntax_error();
            return;
        }
        j += 1;
    }
    if src_db == dst_db && src == dst {
        ctx.out
            .error("ERR source and destination objects are the same");
        return;
    }
    // None: no source; Some(false): destination exists and no REPLACE
    let engine = &ctx.shared.engine;
    let copied = if src_db == dst_db {
        let mut txn = engine.txn(src_db, &[src, dst], ctx.now);
        if !txn.exists(src) {
            None
        } else if !replace && txn.exists(dst) {
            Some(false)
        } else {
            Some(txn.copy(src, dst).is_some())
        }
    } else {
        let source = {
            let mut txn = engine.txn(src_db, &[src], ctx.now);
            let found = txn.detach(src);
            // the copy carries the tags, by name (tags belong to a database)
            found.map(|f| (f, txn.tags(src)))
        };
        source.map(|(value, tags)| {
            let tags: Vec<&[u8]> = tags.iter().map(|t| t.as_slice()).collect();
            let mut txn = engine.txn(dst_db, &[dst], ctx.now);
            if !replace && txn.exists(dst) {
                false
            } else {
                txn.attach_tagged(dst, value, &tags);
                true
            }
        })
    };
    ctx.count_read(copied.is_some());
    ctx.out.integer((copied == Some(true)) as i64);
}

/// DBSIZE: keys in the selected database (like Redis, keys whose TTL has
/// passed count until they are collected).
fn dbsize(ctx: &mut Ctx<'_, '_>, _args: Args<'_>) {
    let n = ctx.shared.engine.dbsize(ctx.session.db);
    ctx.out.integer(n as i64);
}

/// The optional ASYNC / SYNC word of FLUSHDB and FLUSHALL. Both flush at
/// once: dropping entries is one free per key. Replies the syntax error and
/// returns false when the arguments are anything else.
fn flush_args_ok(ctx: &mut Ctx<'_, '_>, args: &Args<'_>) -> bool {
    let ok = match args.len() {
        1 => true,
        2 => is(args.get(1), "sync") || is(args.get(1), "async"),
        _ => false,
    };
    if !ok {
        ctx.syntax_error();
    }
    ok
}

/// FLUSHDB [ASYNC | SYNC].
fn flushdb(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    if flush_args_ok(ctx, &args) {
        ctx.shared.engine.flush_db(ctx.session.db);
        ctx.out.ok();
    }
}

/// FLUSHALL [ASYNC | SYNC].
fn flushall(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    if flush_args_ok(ctx, &args) {
        ctx.shared.engine.flush_all();
        ctx.out.ok();
    }
}

#[cfg(test)]
mod tests {
    use super::parse_cursor;

    #[test]
    fn cursor_parses_like_strtoul() {
        assert_eq!(parse_cursor(b"0"), Some(0));
        assert_eq!(parse_cursor(b""), Some(0));
        assert_eq!(parse_cursor(b"007"), Some(7));
        assert_eq!(parse_cursor(b"+5"), Some(5));
        assert_eq!(parse_cursor(b"-1"), Some(u64::MAX));
        assert_eq!(parse_cursor(b"-18446744073709551615"), Some(1));
        assert_eq!(parse_cursor(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_cursor(b"12\0junk"), Some(12));
        for bad in [
            &b"18446744073709551616"[..],
            b" 1",
            b"\t1",
            b"1 ",
            b"-",
            b"+",
            b"0x1",
            b"- 1",
            b"1a",
        ] {
            assert_eq!(
                parse_cursor(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
