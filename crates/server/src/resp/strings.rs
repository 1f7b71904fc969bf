//! String commands: GET, SET and the rest of Redis's string family, with
//! Redis 7.0's replies and error texts.
//!
//! A key holding a hash or a set meets every string command with Redis's
//! WRONGTYPE error (found by [`magpie_engine::Txn::get_string`] in the same
//! probe as the value), except MGET, which reads it as nil, and the
//! commands that replace a value whatever it was (SET, MSET...). Writes
//! that replace a value (SET, MSET, GETSET...) store client flags 0 and drop
//! the TTL; writes that change a value in place (APPEND, SETRANGE, INCR...)
//! go through [`magpie_engine::Txn::rewrite`], which keeps the flags a
//! memcached client stored and the TTL, as Redis keeps the TTL.

pub(crate) mod long_double;

use std::sync::atomic::Ordering;

use magpie_engine::MAX_PART_LEN;
use magpie_protocol::int::parse_i64;
use magpie_protocol::resp::Args;

use super::handler::{int_arg, CommandSpec, Ctx, WRONGTYPE};
use long_double::LongDouble;

/// The string family's table.
pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "get",
        arity: 2,
        flags: &["readonly", "fast"],
        first_key: 1,
        last_key: 1,
        step: 1,
        group: "string",
        summary: "Returns the string value of a key.",
        syntax: "key",
        handler: get,
    },
    CommandSpec {
        name: "set",
        arity: -3,
        flags: &["write", "denyoom"],
        first_key: 1,
        last_key: 1,
        step: 1,
        group: "string",
        summary: "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.",
        syntax: "key value [NX | XX] [GET] [EX seconds | PX milliseconds | EXAT unix-time-seconds | PXAT unix-time-milliseconds | KEEPTTL] [TAGS tag [tag ...]]",
        handler: set,
    },
    CommandSpec {
        name: "setnx",
        arity: 3,
        flags: &["write", "denyoom", "fast"],
        first_key: 1,
        last_key: 1,
        step: 1,
        group: "string",
        summary: "Set the string value of a key only when the key doesn't exist.",
        syntax: "key value",
        handler: setnx,
    },
    CommandSpec {
        name: "setex",
        arity: 4,
        flags: &["write", "denyoom"],
        first_key: 1,
        last_key: 1,
        step: 1,
        group: "string",
        summary: "Sets the string value and expiration time of a key. Creates the key if it doesn't exist.",
        syntax: "key seconds value",
        handler: setex,
    },
    CommandSpec {
        name: "psetex",
        arity: 4,
        flags: &["write", "denyoom"],
        first_key: 1,
        last_key: 1,
        step: 1,
        group: "string",
        summary: "Sets both string value and expiration time in milliseconds of a key. The key is created if it doesn't exist.",
        syntax: "key milliseconds value",
        handler: psetex,
    },
    CommandSpec {
        name: "getset",
        arity: 3,
        flags: &["write", "denyoom", "fast"],
        first_key: 1,
        last_key: 1,
        step: 1,
        group: "string",
        summary: "Returns the previous string value of a key after setting it to a new value.",
        syntax: "key value",
        handler: getset,
    },
    CommandSpec {
        name: "getdel",
        arity: 2,
        flags: &["write", "fast"],
        first_key: 1,
        last_key: 1,
        step: 1,
        group: "string",
        summary: "Returns the string value of a key after deleting the key.",
        syntax: "key",
        handler: getdel,
    },
    CommandSpec {
        name: "getex",
        arity: -2,
        flags: &["write", "fast"],
        first_key: 1,
        last_key: 1,
        step: 1,
        group: "string",
        summary: "Returns the string value of a key after setting its expiration time.",
        syntax: "key [EX seconds | PX milliseconds | EXAT unix-time-seconds | PXAT unix-time-milliseconds | PERSIST]",
        handler: getex,
    },
    CommandSpec {
        name: "mget",
        arity: -2,
        flags: &["readonly", "fast"],
        first_key: 1,
        last_key: -1,
        step: 1,
        group: "string",
        summary: "Atomically returns the string values of one or more keys.",
        syntax: "key [key ...]",
        handler: mget,
    },
    CommandSpec {
        name: "mset",
        arity: -3,
        flags: &["write", "denyoom"],
        first_key: 1,
        last_key: -1,
        step: 2,
        group: "string",
        summary: "Atomically creates or modifies the string values of one or more keys.",
        syntax: "key value [key value ...]",
        handler: mset,
    },
    CommandSpec {
        name: "msetnx",
        arity: -3,
        flags: &["write", "denyoom"],
        first_key: 1,
        last_key: -1,
        step: 2,
        group: "string",
        summary: "Atomically modifies the string values of one or more keys only when all keys don't exist.",
        syntax: "key value [key value ...]",
        handler: msetnx,
    },
    CommandSpec {
        name: "incr",
        arity: 2,
        flags: &["write", "denyoom", "fast"],
        first_key: 1,
        last_key: 1,
        step: 1,
        group: "string",
        summary: "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.",
        syntax: "key",
        handler: incr,
    },
    CommandSpec {
        name: "decr",
        arity: 2,
        flags: &["write", "denyoom", "fast"],
        first_key: 1,
        last_key: 1,
        step: 1,
        group: "string",
        summary: "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.",
        syntax: "key",
        handler: decr,
    },
    CommandSpec {
        name: "incrby",
        arity: 3,
        flags: &["write", "denyoom", "fast"],
        first_key: 1,
        last_key: 1,
        step: 1,
        group: "string",
        summary: "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist.",
        syntax: "key increment",
        handler: incrby,
    },
    CommandSpec {
        name: "decrby",
        arity: 3,
        flags: &["write", "denyoom", "fast"],
        first_key: 1,
        last_key: 1,
        step: 1,
        group: "string",
        summary: "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist.",
        syntax: "key decrement",
        handler: decrby,
    },
    CommandSpec {
        name: "incrbyfloat",
        arity: 3,
        flags: &["write", "denyoom", "fast"],
        first_key: 1,
        last_key: 1,
        step: 1,
        group: "string",
        summary: "Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist.",
        syntax: "key increment",
        handler: incrbyfloat,
    },
    CommandSpec {
        name: "append",
        arity: 3,
        flags: &["write", "denyoom", "fast"],
        first_key: 1,
        last_key: 1,
        step: 1,
        group: "string",
        summary: "Appends a string to the value of a key. Creates the key if it doesn't exist.",
        syntax: "key value",
        handler: append,
    },
    CommandSpec {
        name: "strlen",
        arity: 2,
        flags: &["readonly", "fast"],
        first_key: 1,
        last_key: 1,
        step: 1,
        group: "string",
        summary: "Returns the length of a string value.",
        syntax: "key",
        handler: strlen,
    },
    CommandSpec {
        name: "getrange",
        arity: 4,
        flags: &["readonly"],
        first_key: 1,
        last_key: 1,
        step: 1,
        group: "string",
        summary: "Returns a substring of the string stored at a key.",
        syntax: "key start end",
        handler: getrange,
    },
    CommandSpec {
        name: "substr",
        arity: 4,
        flags: &["readonly"],
        first_key: 1,
        last_key: 1,
        step: 1,
        group: "string",
        summary: "Returns a substring from a string value.",
        syntax: "key start end",
        handler: getrange,
    },
    CommandSpec {
        name: "setrange",
        arity: 4,
        flags: &["write", "denyoom"],
        first_key: 1,
        last_key: 1,
        step: 1,
        group: "string",
        summary: "Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist.",
        syntax: "key offset value",
        handler: setrange,
    },
];

// SET / GETEX options, as Redis's OBJ_* flags.
const NX: u16 = 1;
const XX: u16 = 1 << 1;
const GET: u16 = 1 << 2;
const KEEPTTL: u16 = 1 << 3;
const PERSIST: u16 = 1 << 4;
const EX: u16 = 1 << 5;
const PX: u16 = 1 << 6;
const EXAT: u16 = 1 << 7;
const PXAT: u16 = 1 << 8;
const ANY_EXPIRE: u16 = EX | PX | EXAT | PXAT;
/// SET's magpie-only last option: `TAGS tag [tag ...]` takes the rest.
const TAGS: u16 = 1 << 9;

/// What SET and GETEX were asked to do.
struct Options<'a> {
    flags: u16,
    /// The argument after EX/PX/EXAT/PXAT.
    expire: Option<&'a [u8]>,
    /// Index of the first tag after SET's TAGS (which takes the rest).
    tags_from: usize,
}

/// True when `arg`, read as a C string (up to its first NUL, as Redis
/// compares options), is `word` ignoring ASCII case.
fn opt_is(arg: &[u8], word: &str) -> bool {
    let end = memchr::memchr(0, arg).unwrap_or(arg.len());
    arg[..end].eq_ignore_ascii_case(word.as_bytes())
}

/// Redis's `parseExtendedStringArgumentsOrReply`: the options of SET
/// (`for_set`) or GETEX from argument `from` on, or None for a syntax error
/// (unknown word, repeated-but-conflicting option, missing value).
fn parse_options<'a>(args: &Args<'a>, from: usize, for_set: bool) -> Option<Options<'a>> {
    let mut o = Options {
        flags: 0,
        expire: None,
        tags_from: args.len(),
    };
    let mut j = from;
    while j < args.len() {
        let opt = args.get(j);
        if for_set && opt_is(opt, "tags") {
            // the last option: every argument after it is a tag, at least one
            if j + 1 == args.len() {
                return None;
            }
            o.flags |= TAGS;
            o.tags_from = j + 1;
            break;
        }
        let next = (j + 1 < args.len()).then(|| args.get(j + 1));
        let f = o.flags;
        // an expiry option excludes KEEPTTL, PERSIST and the other three
        let expire_ok =
            |me: u16| f & (KEEPTTL | PERSIST | (ANY_EXPIRE & !me)) == 0 && next.is_some();
        let set_flag = if for_set && opt_is(opt, "nx") && f & XX == 0 {
            NX
        } else if for_set && opt_is(opt, "xx") && f & NX == 0 {
            XX
        } else if for_set && opt_is(opt, "get") {
            GET
        } else if for_set && opt_is(opt, "keepttl") && f & (PERSIST | ANY_EXPIRE) == 0 {
            KEEPTTL
        } else if !for_set && opt_is(opt, "persist") && f & (ANY_EXPIRE | KEEPTTL) == 0 {
            PERSIST
        } else if opt_is(opt, "ex") && expire_ok(EX) {
            EX
        } else if opt_is(opt, "px") && expire_ok(PX) {
            PX
        } else if opt_is(opt, "exat") && expire_ok(EXAT) {
            EXAT
        } else if opt_is(opt, "pxat") && expire_ok(PXAT) {
            PXAT
        } else {
            return None;
        };
        o.flags |= set_flag;
        if set_flag & ANY_EXPIRE != 0 {
            o.expire = next;
            j += 1;
        }
        j += 1;
    }
    Some(o)
}

/// Redis's `getExpireMillisecondsOrReply`: the absolute expiry (ms) that
/// `arg` means under option `kind` (one of EX, PX, EXAT, PXAT), or None
/// after replying the error (`cmd` names the command in it).
fn expire_at(ctx: &mut Ctx<'_, '_>, arg: &[u8], kind: u16, cmd: &str) -> Option<u64> {
    let v = int_arg(ctx, arg)?;
    let seconds = kind & (EX | EXAT) != 0;
    let ms = if v <= 0 || (seconds && v > i64::MAX / 1000) {
        None
    } else {
        let v = if seconds { v * 1000 } else { v };
        if kind & (EX | PX) != 0 {
            v.checked_add(ctx.now as i64)
        } else {
            Some(v)
        }
    };
    match ms {
        Some(ms) if ms > 0 => Some(ms as u64),
        _ => {
            ctx.out
                .error(&format!("ERR invalid expire time in '{cmd}' command"));
            None
        }
    }
}

/// The largest string a command may build: `proto-max-bulk-len`, and never
/// more than an engine entry can hold.
fn max_string_len(ctx: &Ctx<'_, '_>) -> usize {
    ctx.shared
        .runtime
        .read()
        .limits
        .max_bulk_len
        .min(MAX_PART_LEN)
}

/// Replies the error Redis gives when a command would build a string longer
/// than `proto-max-bulk-len`.
fn too_long(ctx: &mut Ctx<'_, '_>) {
    ctx.out
        .error("ERR string exceeds maximum allowed size (proto-max-bulk-len)");
}

fn get(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    let key = args.get(1);
    let mut txn = ctx.shared.engine.txn(ctx.session.db, &[key], ctx.now);
    match txn.get_string(key) {
        Ok(Some(v)) => {
            ctx.out.bulk_start(v.value.len());
            ctx.out.buffer().extend_from_slice(v.value);
            ctx.out.bulk_end();
            drop(txn);
            ctx.count_read(true);
        }
        Ok(None) => {
            drop(txn);
            ctx.out.null();
            ctx.count_read(false);
        }
        Err(_) => {
            drop(txn);
            ctx.out.error(WRONGTYPE);
        }
    }
}

fn set(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    let Some(opts) = parse_options(&args, 3, true) else {
        ctx.syntax_error();
        return;
    };
    let expire = match opts.expire {
        Some(arg) => match expire_at(ctx, arg, opts.flags & ANY_EXPIRE, "set") {
            Some(t) => Some(t),
            None => return,
        },
        None => None,
    };
    let (key, value, flags) = (args.get(1), args.get(2), opts.flags);
    let shared = ctx.shared;
    if flags & (NX | XX | GET | KEEPTTL | TAGS) == 0 {
        // plain SET (the hot path): no need to look at the old value
        let mut txn = shared.engine.txn(ctx.session.db, &[key], ctx.now);
        txn.set(key, &[value], 0, expire);
        drop(txn);
        ctx.out.ok();
        return;
    }
    let tags: Vec<&[u8]> = (opts.tags_from..args.len()).map(|i| args.get(i)).collect();
    // refused before anything is read or written, so GET's reply is never
    // followed by an error
    if let Err(e) = shared.engine.check_tags(&tags) {
        super::tags::tag_error(ctx, e);
        return;
    }
    let mut txn = shared.engine.txn(ctx.session.db, &[key], ctx.now);
    let old = match txn.get_string(key) {
        Ok(old) => old,
        Err(_) if flags & GET != 0 => {
            drop(txn);
            ctx.out.error(WRONGTYPE);
            return;
        }
        // NX / XX / KEEPTTL over another type: it exists, and SET replaces it
        Err(_) => txn.peek(key),
    };
    let found = old.is_some();
    let old_expire = old.and_then(|v| v.meta.expire_at);
    if flags & GET != 0 {
        match old {
            Some(v) => ctx.out.bulk(v.value),
            None => ctx.out.null(),
        }
        ctx.count_read(found);
    }
    if (flags & NX != 0 && found) || (flags & XX != 0 && !found) {
        if flags & GET == 0 {
            ctx.out.null();
        }
        return;
    }
    let expire = if flags & KEEPTTL != 0 {
        old_expire
    } else {
        expire
    };
    // the limits were checked above (a CONFIG SET in between could only
    // make this write untagged-refused; it then stores nothing)
    let _ = txn.set_tagged(key, &[value], 0, expire, &tags);
    if flags & GET == 0 {
        ctx.out.ok();
    }
}

fn setnx(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    let (key, value) = (args.get(1), args.get(2));
    let mut txn = ctx.shared.engine.txn(ctx.session.db, &[key], ctx.now);
    let added = !txn.exists(key);
    if added {
        txn.set(key, &[value], 0, None);
    }
    drop(txn);
    ctx.out.integer(added as i64);
}

/// SETEX and PSETEX: SET with a mandatory relative expiry of unit `kind`.
fn set_expiring(ctx: &mut Ctx<'_, '_>, args: Args<'_>, kind: u16, cmd: &str) {
    let Some(expire) = expire_at(ctx, args.get(2), kind, cmd) else {
        return;
    };
    let (key, value) = (args.get(1), args.get(3));
    ctx.shared
        .engine
        .txn(ctx.session.db, &[key], ctx.now)
        .set(key, &[value], 0, Some(expire));
    ctx.out.ok();
}

fn setex(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    set_expiring(ctx, args, EX, "setex");
}

fn psetex(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    set_expiring(ctx, args, PX, "psetex");
}

fn getset(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    let (key, value) = (args.get(1), args.get(2));
    let shared = ctx.shared;
    let mut txn = shared.engine.txn(ctx.session.db, &[key], ctx.now);
    let found = match txn.get_string(key) {
        Ok(Some(v)) => {
            ctx.out.bulk(v.value);
            true
        }
        Ok(None) => {
            ctx.out.null();
            false
        }
        Err(_) => {
            drop(txn);
            ctx.out.error(WRONGTYPE);
            return;
        }
    };
    txn.set(key, &[value], 0, None);
    drop(txn);
    ctx.count_read(found);
}

fn getdel(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    let key = args.get(1);
    let shared = ctx.shared;
    let mut txn = shared.engine.txn(ctx.session.db, &[key], ctx.now);
    let found = match txn.get_string(key) {
        Ok(Some(v)) => {
            ctx.out.bulk(v.value);
            true
        }
        Ok(None) => {
            ctx.out.null();
            false
        }
        Err(_) => {
            drop(txn);
            ctx.out.error(WRONGTYPE);
            return;
        }
    };
    if found {
        txn.remove(key);
    }
    drop(txn);
    ctx.count_read(found);
}

fn getex(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    let Some(opts) = parse_options(&args, 2, false) else {
        ctx.syntax_error();
        return;
    };
    let key = args.get(1);
    let shared = ctx.shared;
    let mut txn = shared.engine.txn(ctx.session.db, &[key], ctx.now);
    match txn.kind(key) {
        None => {
            drop(txn);
            ctx.out.null();
            ctx.count_read(false);
            return;
        }
        Some(magpie_engine::Kind::String) => {}
        Some(_) => {
            drop(txn);
            ctx.out.error(WRONGTYPE);
            return;
        }
    }
    ctx.count_read(true);
    // Redis validates the expiry only once it found the key
    let expire = match opts.expire {
        Some(arg) => match expire_at(ctx, arg, opts.flags & ANY_EXPIRE, "getex") {
            Some(t) => Some(t),
            None => return,
        },
        None => None,
    };
    if let Some(v) = txn.get(key) {
        ctx.out.bulk(v.value);
    }
    if expire.is_some() {
        // an EXAT/PXAT already past deletes the key
        txn.set_expiry(key, expire);
    } else if opts.flags & PERSIST != 0 {
        txn.set_expiry(key, None);
    }
}

fn mget(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    let keys: Vec<&[u8]> = args.iter().skip(1).collect();
    let shared = ctx.shared;
    let mut txn = shared.engine.txn(ctx.session.db, &keys, ctx.now);
    ctx.out.array(keys.len());
    let mut hits = 0;
    for key in &keys {
        match txn.get(key) {
            Some(v) => {
                ctx.out.bulk(v.value);
                hits += 1;
            }
            None => ctx.out.null(),
        }
    }
    drop(txn);
    let c = &ctx.shared.counters;
    c.keyspace_hits.fetch_add(hits, Ordering::Relaxed);
    c.keyspace_misses
        .fetch_add(keys.len() as u64 - hits, Ordering::Relaxed);
}

/// MSET and MSETNX: every pair is written under one transaction, so other
/// clients see all of them or none; with `nx`, nothing is written if any key
/// exists. None after replying the arity error.
fn mset_generic(ctx: &mut Ctx<'_, '_>, args: Args<'_>, nx: bool) -> Option<bool> {
    if args.len() & 1 == 0 {
        ctx.wrong_args(if nx { "msetnx" } else { "mset" });
        return None;
    }
    let keys: Vec<&[u8]> = args.iter().skip(1).step_by(2).collect();
    let mut txn = ctx.shared.engine.txn(ctx.session.db, &keys, ctx.now);
    if nx && keys.iter().any(|k| txn.exists(k)) {
        return Some(false);
    }
    for (i, key) in keys.iter().enumerate() {
        txn.set(key, &[args.get(2 + 2 * i)], 0, None);
    }
    Some(true)
}

fn mset(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    if mset_generic(ctx, args, false).is_some() {
        ctx.out.ok();
    }
}

fn msetnx(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    if let Some(done) = mset_generic(ctx, args, true) {
        ctx.out.integer(done as i64);
    }
}

/// Adds `delta` to the integer stored at `key` (0 if absent), keeping its
/// TTL and flags, and replies the new value.
fn incr_by(ctx: &mut Ctx<'_, '_>, key: &[u8], delta: i64) {
    let shared = ctx.shared;
    let mut txn = shared.engine.txn(ctx.session.db, &[key], ctx.now);
    let (old, exists) = match txn.get_string(key) {
        Ok(Some(v)) => (parse_i64(v.value), true),
        Ok(None) => (Some(0), false),
        Err(_) => {
            drop(txn);
            ctx.out.error(WRONGTYPE);
            return;
        }
    };
    let Some(old) = old else {
        drop(txn);
        ctx.not_integer();
        return;
    };
    let Some(new) = old.checked_add(delta) else {
        drop(txn);
        ctx.out.error("ERR increment or decrement would overflow");
        return;
    };
    let mut buf = itoa::Buffer::new();
    let text = buf.format(new).as_bytes();
    if exists {
        txn.rewrite(key, text.len(), |_, dst| dst.copy_from_slice(text));
    } else {
        txn.set(key, &[text], 0, None);
    }
    drop(txn);
    ctx.out.integer(new);
}

fn incr(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    incr_by(ctx, args.get(1), 1);
}

fn decr(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    incr_by(ctx, args.get(1), -1);
}

fn incrby(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    if let Some(n) = int_arg(ctx, args.get(2)) {
        incr_by(ctx, args.get(1), n);
    }
}

fn decrby(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    match int_arg(ctx, args.get(2)) {
        Some(i64::MIN) => ctx.out.error("ERR decrement would overflow"),
        Some(n) => incr_by(ctx, args.get(1), -n),
        None => {}
    }
}

fn incrbyfloat(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    const NOT_FLOAT: &str = "ERR value is not a valid float";
    let key = args.get(1);
    let shared = ctx.shared;
    let mut txn = shared.engine.txn(ctx.session.db, &[key], ctx.now);
    let (old, exists) = match txn.get_string(key) {
        Ok(Some(v)) => (LongDouble::parse(v.value), true),
        Ok(None) => (Some(LongDouble::Zero { neg: false }), false),
        Err(_) => {
            drop(txn);
            ctx.out.error(WRONGTYPE);
            return;
        }
    };
    let (Some(old), Some(incr)) = (old, LongDouble::parse(args.get(2))) else {
        drop(txn);
        ctx.out.error(NOT_FLOAT);
        return;
    };
    let Some(new) = old.add(incr) else {
        drop(txn);
        ctx.out.error("ERR increment would produce NaN or Infinity");
        return;
    };
    let text = new.to_human();
    let text = text.as_bytes();
    if exists {
        txn.rewrite(key, text.len(), |_, dst| dst.copy_from_slice(text));
    } else {
        txn.set(key, &[text], 0, None);
    }
    drop(txn);
    ctx.out.bulk(text);
}

fn append(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    let (key, value) = (args.get(1), args.get(2));
    let shared = ctx.shared;
    let mut txn = shared.engine.txn(ctx.session.db, &[key], ctx.now);
    let Ok(old) = txn.get_string(key) else {
        drop(txn);
        ctx.out.error(WRONGTYPE);
        return;
    };
    let Some(old_len) = old.map(|v| v.value.len()) else {
        txn.set(key, &[value], 0, None);
        drop(txn);
        ctx.out.integer(value.len() as i64);
        return;
    };
    let total = old_len + value.len();
    if total > max_string_len(ctx) {
        drop(txn);
        too_long(ctx);
        return;
    }
    txn.rewrite(key, total, |old, dst| {
        dst[..old.len()].copy_from_slice(old);
        dst[old.len()..].copy_from_slice(value);
    });
    drop(txn);
    ctx.out.integer(total as i64);
}

fn strlen(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    let key = args.get(1);
    let Ok(len) = ctx
        .shared
        .engine
        .txn(ctx.session.db, &[key], ctx.now)
        .get_string(key)
        .map(|v| v.map(|v| v.value.len()))
    else {
        ctx.out.error(WRONGTYPE);
        return;
    };
    ctx.count_read(len.is_some());
    ctx.out.integer(len.unwrap_or(0) as i64);
}

/// GETRANGE and SUBSTR.
fn getrange(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    let Some(start) = int_arg(ctx, args.get(2)) else {
        return;
    };
    let Some(end) = int_arg(ctx, args.get(3)) else {
        return;
    };
    let key = args.get(1);
    let shared = ctx.shared;
    let mut txn = shared.engine.txn(ctx.session.db, &[key], ctx.now);
    let Ok(found) = txn.get_string(key) else {
        drop(txn);
        ctx.out.error(WRONGTYPE);
        return;
    };
    let Some(v) = found else {
        drop(txn);
        ctx.count_read(false);
        ctx.out.bulk(b"");
        return;
    };
    ctx.count_read(true);
    let value = v.value;
    let len = value.len() as i64;
    let (mut start, mut end) = (start, end);
    if start < 0 && end < 0 && start > end {
        ctx.out.bulk(b"");
        return;
    }
    if start < 0 {
        start = start.saturating_add(len).max(0);
    }
    if end < 0 {
        end = end.saturating_add(len).max(0);
    }
    end = end.min(len - 1);
    if start > end || len == 0 {
        ctx.out.bulk(b"");
    } else {
        ctx.out.bulk(&value[start as usize..=end as usize]);
    }
}

fn setrange(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    let Some(offset) = int_arg(ctx, args.get(2)) else {
        return;
    };
    if offset < 0 {
        ctx.out.error("ERR offset is out of range");
        return;
    }
    let (key, value) = (args.get(1), args.get(3));
    let shared = ctx.shared;
    let mut txn = shared.engine.txn(ctx.session.db, &[key], ctx.now);
    let Ok(old) = txn.get_string(key) else {
        drop(txn);
        ctx.out.error(WRONGTYPE);
        return;
    };
    let old_len = old.map(|v| v.value.len());
    if value.is_empty() {
        drop(txn);
        ctx.out.integer(old_len.unwrap_or(0) as i64);
        return;
    }
    let end = match (offset as u64).checked_add(value.len() as u64) {
        Some(end) if end <= max_string_len(ctx) as u64 => end as usize,
        _ => {
            drop(txn);
            too_long(ctx);
            return;
        }
    };
    let offset = offset as usize;
    let total = match old_len {
        Some(old_len) => {
            let total = old_len.max(end);
            txn.rewrite(key, total, |old, dst| {
                dst[..old.len()].copy_from_slice(old);
                dst[offset..end].copy_from_slice(value);
            });
            total
        }
        None => {
            txn.set_with(key, end, 0, None, |dst| {
                dst[offset..].copy_from_slice(value)
            });
            end
        }
    };
    drop(txn);
    ctx.out.integer(total as i64);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_compare_like_c_strings() {
        assert!(opt_is(b"NX", "nx"));
        assert!(opt_is(b"nX\0junk", "nx"));
        assert!(!opt_is(b"nxx", "nx"));
        assert!(!opt_is(b"", "nx"));
    }
}
