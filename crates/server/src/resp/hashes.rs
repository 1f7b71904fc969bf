//! Hash commands: every command of Redis 7.0's hash group, with its
//! argument parsing, replies (RESP2 and RESP3) and error texts. The hash
//! itself is the engine's ([`magpie_engine::Hash`]); these handlers parse,
//! call [`magpie_engine::Txn`] and write the reply.
//!
//! A key holding another kind of value gets WRONGTYPE; a hash emptied by
//! HDEL is deleted. HRANDFIELD draws from the engine's generator, so its
//! choices differ from Redis's (as two Redis servers' do).

use magpie_engine::{Hash, Txn};
use magpie_protocol::int::parse_i64;
use magpie_protocol::resp::{Args, Proto};

use super::handler::{
    empty_scan, int_arg, is, parse_cursor, scan_options, CommandSpec, Ctx, WRONGTYPE,
};
use super::strings::long_double::LongDouble;

const fn spec(
    name: &'static str,
    arity: i32,
    flags: &'static [&'static str],
    summary: &'static str,
    syntax: &'static str,
    handler: super::handler::Handler,
) -> CommandSpec {
    CommandSpec {
        name,
        arity,
        flags,
        first_key: 1,
        last_key: 1,
        step: 1,
        group: "hash",
        summary,
        syntax,
        handler,
    }
}

/// The hash family's table.
pub const COMMANDS: &[CommandSpec] = &[
    spec("hdel", -3, &["write", "fast"], "Deletes one or more fields and their values from a hash. Deletes the hash if no fields remain.", "key field [field ...]", hdel),
    spec("hexists", 3, &["readonly", "fast"], "Determines whether a field exists in a hash.", "key field", hexists),
    spec("hget", 3, &["readonly", "fast"], "Returns the value of a field in a hash.", "key field", hget),
    spec("hgetall", 2, &["readonly"], "Returns all fields and values in a hash.", "key", hgetall),
    spec("hincrby", 4, &["write", "denyoom", "fast"], "Increments the integer value of a field in a hash by a number. Uses 0 as initial value if the field doesn't exist.", "key field increment", hincrby),
    spec("hincrbyfloat", 4, &["write", "denyoom", "fast"], "Increments the floating point value of a field by a number. Uses 0 as initial value if the field doesn't exist.", "key field increment", hincrbyfloat),
    spec("hkeys", 2, &["readonly"], "Returns all fields in a hash.", "key", hkeys),
    spec("hlen", 2, &["readonly", "fast"], "Returns the number of fields in a hash.", "key", hlen),
    spec("hmget", -3, &["readonly", "fast"], "Returns the values of all fields in a hash.", "key field [field ...]", hmget),
    spec("hmset", -4, &["write", "denyoom", "fast"], "Sets the values of multiple fields.", "key field value [field value ...]", hmset),
    spec("hrandfield", -2, &["readonly"], "Returns one or more random fields from a hash.", "key [count [WITHVALUES]]", hrandfield),
    spec("hscan", -3, &["readonly"], "Iterates over fields and values of a hash.", "key cursor [MATCH pattern] [COUNT count]", hscan),
    spec("hset", -4, &["write", "denyoom", "fast"], "Creates or modifies the value of a field in a hash.", "key field value [field value ...]", hset),
    spec("hsetnx", 4, &["write", "denyoom", "fast"], "Sets the value of a field in a hash only when the field doesn't exist.", "key field value", hsetnx),
    spec("hstrlen", 3, &["readonly", "fast"], "Returns the length of the value of a field.", "key field", hstrlen),
    spec("hvals", 2, &["readonly"], "Returns all values in a hash.", "key", hvals),
];

/// Largest |count| HRANDFIELD (and SRANDMEMBER) serve: a reply of that
/// many elements is already hundreds of megabytes; past it the count is
/// refused (`ERR value is out of range, ...`) rather than building an unbounded
/// reply. Redis 7.0 accepts any count and builds the reply.
pub const MAX_RANDOM_COUNT: i64 = 1 << 24;

/// Opens a transaction over `key` and reads its hash (None when absent);
/// on WRONGTYPE replies the error and returns Err. Counts the lookup as a
/// keyspace hit or miss.
fn with_hash<R>(
    ctx: &mut Ctx<'_, '_>,
    key: &[u8],
    f: impl FnOnce(&mut Ctx<'_, '_>, Option<&Hash>) -> R,
) -> Option<R> {
    let shared = ctx.shared;
    let mut txn = shared.engine.txn(ctx.session.db, &[key], ctx.now);
    match txn.read_hash(key) {
        Ok(h) => {
            let found = h.is_some();
            let r = f(ctx, h);
            drop(txn);
            ctx.count_read(found);
            Some(r)
        }
        Err(_) => {
            drop(txn);
            ctx.out.error(WRONGTYPE);
            None
        }
    }
}

/// HSET / HMSET: `key field value [field value ...]`; replies how many
/// fields are new (HSET) or OK (HMSET).
fn put(ctx: &mut Ctx<'_, '_>, args: Args<'_>, name: &str) -> Option<usize> {
    if args.len() % 2 == 1 {
        ctx.wrong_args(name);
        return None;
    }
    let key = args.get(1);
    let pairs: Vec<(&[u8], &[u8])> = (2..args.len())
        .step_by(2)
        .map(|i| (args.get(i), args.get(i + 1)))
        .collect();
    let shared = ctx.shared;
    let r = shared
        .engine
        .txn(ctx.session.db, &[key], ctx.now)
        .hash_put(key, &pairs);
    match r {
        Ok(n) => Some(n),
        Err(_) => {
            ctx.out.error(WRONGTYPE);
            None
        }
    }
}

fn hset(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    if let Some(n) = put(ctx, args, "hset") {
        ctx.out.integer(n as i64);
    }
}

fn hmset(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    if put(ctx, args, "hmset").is_some() {
        ctx.out.ok();
    }
}

fn hsetnx(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    let (key, field, value) = (args.get(1), args.get(2), args.get(3));
    let shared = ctx.shared;
    let mut txn = shared.engine.txn(ctx.session.db, &[key], ctx.now);
    let exists = match txn.read_hash(key) {
        Ok(h) => h.is_some_and(|h| h.get(field).is_some()),
        Err(_) => {
            drop(txn);
            ctx.out.error(WRONGTYPE);
            return;
        }
    };
    if !exists {
        // the key's type was checked in this transaction
        let _ = txn.hash_put(key, &[(field, value)]);
    }
    drop(txn);
    ctx.out.integer(!exists as i64);
}

fn hget(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    let field = args.get(2);
    with_hash(ctx, args.get(1), |ctx, h| {
        match h.and_then(|h| h.get(field)) {
            Some(v) => ctx.out.bulk(v),
            None => ctx.out.null(),
        }
    });
}

fn hmget(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    with_hash(ctx, args.get(1), |ctx, h| {
        ctx.out.array(args.len() - 2);
        for i in 2..args.len() {
            match h.and_then(|h| h.get(args.get(i))) {
                Some(v) => ctx.out.bulk(v),
                None => ctx.out.null(),
            }
        }
    });
}

fn hdel(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    let key = args.get(1);
    let fields: Vec<&[u8]> = args.iter().skip(2).collect();
    let shared = ctx.shared;
    let r = shared
        .engine
        .txn(ctx.session.db, &[key], ctx.now)
        .hash_remove(key, &fields);
    match r {
        Ok(n) => ctx.out.integer(n as i64),
        Err(_) => ctx.out.error(WRONGTYPE),
    }
}

fn hlen(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    with_hash(ctx, args.get(1), |ctx, h| {
        ctx.out.integer(h.map_or(0, |h| h.len()) as i64)
    });
}

fn hstrlen(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    let field = args.get(2);
    with_hash(ctx, args.get(1), |ctx, h| {
        let len = h.and_then(|h| h.get(field)).map_or(0, |v| v.len());
        ctx.out.integer(len as i64)
    });
}

fn hexists(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    let field = args.get(2);
    with_hash(ctx, args.get(1), |ctx, h| {
        ctx.out
            .integer(h.is_some_and(|h| h.get(field).is_some()) as i64)
    });
}

/// HGETALL (a map), HKEYS and HVALS (arrays); an absent key is an empty one.
fn all(ctx: &mut Ctx<'_, '_>, args: Args<'_>, keys: bool, values: bool) {
    with_hash(ctx, args.get(1), |ctx, h| {
        let n = h.map_or(0, |h| h.len());
        if keys && values {
            ctx.out.map(n);
        } else {
            ctx.out.array(n);
        }
        for (f, v) in h.into_iter().flat_map(|h| h.iter()) {
            if keys {
                ctx.out.bulk(f);
            }
            if values {
                ctx.out.bulk(v);
            }
        }
    });
}

fn hgetall(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    all(ctx, args, true, true)
}

fn hkeys(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    all(ctx, args, true, false)
}

fn hvals(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    all(ctx, args, false, true)
}

/// Opens a transaction over `key` and reads the value of `field` as a new
/// field would start (None); Err after replying WRONGTYPE.
fn field_for_update<'t>(
    ctx: &mut Ctx<'_, '_>,
    txn: &'t mut Txn<'_>,
    key: &[u8],
    field: &[u8],
) -> Result<Option<&'t [u8]>, ()> {
    match txn.read_hash(key) {
        Ok(h) => Ok(h.and_then(|h| h.get(field))),
        Err(_) => {
            ctx.out.error(WRONGTYPE);
            Err(())
        }
    }
}

fn hincrby(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    let Some(incr) = int_arg(ctx, args.get(3)) else {
        return;
    };
    let (key, field) = (args.get(1), args.get(2));
    let shared = ctx.shared;
    let mut txn = shared.engine.txn(ctx.session.db, &[key], ctx.now);
    let Ok(old) = field_for_update(ctx, &mut txn, key, field) else {
        return;
    };
    let old = match old {
        None => 0,
        Some(v) => match parse_i64(v) {
            Some(n) => n,
            None => {
                drop(txn);
                ctx.out.error("ERR hash value is not an integer");
                return;
            }
        },
    };
    let Some(new) = old.checked_add(incr) else {
        drop(txn);
        ctx.out.error("ERR increment or decrement would overflow");
        return;
    };
    let mut buf = itoa::Buffer::new();
    // the key's type was checked in this transaction
    let _ = txn.hash_put(key, &[(field, buf.format(new).as_bytes())]);
    drop(txn);
    ctx.out.integer(new);
}

fn hincrbyfloat(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    let Some(incr) = LongDouble::parse(args.get(3)) else {
        ctx.out.error("ERR value is not a valid float");
        return;
    };
    if matches!(incr, LongDouble::Inf { .. }) {
        ctx.out.error("ERR value is NaN or Infinity");
        return;
    }
    let (key, field) = (args.get(1), args.get(2));
    let shared = ctx.shared;
    let mut txn = shared.engine.txn(ctx.session.db, &[key], ctx.now);
    let Ok(old) = field_for_update(ctx, &mut txn, key, field) else {
        return;
    };
    let old = match old {
        None => LongDouble::Zero { neg: false },
        Some(v) => match LongDouble::parse(v) {
            Some(n) => n,
            None => {
                drop(txn);
                ctx.out.error("ERR hash value is not a float");
                return;
            }
        },
    };
    let Some(new) = old.add(incr) else {
        drop(txn);
        ctx.out.error("ERR increment would produce NaN or Infinity");
        return;
    };
    let text = new.to_human();
    // the key's type was checked in this transaction
    let _ = txn.hash_put(key, &[(field, text.as_bytes())]);
    drop(txn);
    ctx.out.bulk(text.as_bytes());
}

/// `HRANDFIELD key [count [WITHVALUES]]`, in Redis 7.0's order of checks:
/// the count's range, then the syntax, then the key.
fn hrandfield(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    let key = args.get(1);
    if args.len() == 2 {
        let shared = ctx.shared;
        let mut txn = shared.engine.txn(ctx.session.db, &[key], ctx.now);
        let rand = txn.random_source();
        match txn.read_hash(key) {
            Ok(h) => {
                let found = h.is_some();
                match h.and_then(|h| h.random(rand)) {
                    Some((f, _)) => ctx.out.bulk(f),
                    None => ctx.out.null(),
                }
                drop(txn);
                ctx.count_read(found);
            }
            Err(_) => {
                drop(txn);
                ctx.out.error(WRONGTYPE);
            }
        }
        return;
    }
    let Some(count) = range_count(ctx, args.get(2)) else {
        return;
    };
    if args.len() > 4 || (args.len() == 4 && !is(args.get(3), "withvalues")) {
        ctx.syntax_error();
        return;
    }
    let with_values = args.len() == 4;
    let shared = ctx.shared;
    let mut txn = shared.engine.txn(ctx.session.db, &[key], ctx.now);
    let mut rand = txn.random_source();
    let h = match txn.read_hash(key) {
        Ok(Some(h)) => h,
        Ok(None) => {
            drop(txn);
            ctx.out.array(0);
            ctx.count_read(false);
            return;
        }
        Err(_) => {
            drop(txn);
            ctx.out.error(WRONGTYPE);
            return;
        }
    };
    let picks: Vec<(&[u8], &[u8])> = if count < 0 {
        // with repetitions
        (0..count.unsigned_abs())
            .filter_map(|_| h.random(&mut rand))
            .collect()
    } else if count as usize >= h.len() {
        h.iter().collect()
    } else {
        distinct(h.iter().collect(), count as usize, &mut rand)
    };
    write_pairs(ctx, &picks, with_values);
    drop(txn);
    ctx.count_read(true);
}

/// `count` distinct elements of `all`, drawn uniformly (a partial
/// Fisher-Yates shuffle).
pub(super) fn distinct<T>(mut all: Vec<T>, count: usize, rand: &mut impl FnMut() -> u64) -> Vec<T> {
    let n = all.len();
    for i in 0..count.min(n) {
        let j = i + (rand() as usize) % (n - i);
        all.swap(i, j);
    }
    all.truncate(count);
    all
}

/// HRANDFIELD's reply: fields, or with WITHVALUES field/value pairs (flat
/// in RESP2, two-element arrays in RESP3, as Redis 7.0).
fn write_pairs(ctx: &mut Ctx<'_, '_>, picks: &[(&[u8], &[u8])], with_values: bool) {
    let resp3 = ctx.out.proto() == Proto::Resp3;
    if with_values && !resp3 {
        ctx.out.array(picks.len() * 2);
    } else {
        ctx.out.array(picks.len());
    }
    for (f, v) in picks {
        if with_values && resp3 {
            ctx.out.array(2);
        }
        ctx.out.bulk(f);
        if with_values {
            ctx.out.bulk(v);
        }
    }
}

/// A random-member count as Redis 7.0 reads it (`getRangeLongFromObject`
/// over -LONG_MAX..LONG_MAX), within [`MAX_RANDOM_COUNT`].
pub(super) fn range_count(ctx: &mut Ctx<'_, '_>, arg: &[u8]) -> Option<i64> {
    let n = int_arg(ctx, arg)?;
    if n == i64::MIN {
        ctx.out.error(
            "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
        );
        return None;
    }
    if n.abs() > MAX_RANDOM_COUNT {
        ctx.out.error(&format!(
            "ERR value is out of range, value must between -{MAX_RANDOM_COUNT} and {MAX_RANDOM_COUNT}"
        ));
        return None;
    }
    Some(n)
}

/// `HSCAN key cursor [MATCH pattern] [COUNT count]`: the cursor is checked
/// first, then the key, then the options (Redis's order).
fn hscan(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    let Some(cursor) = parse_cursor(args.get(2)) else {
        ctx.out.error("ERR invalid cursor");
        return;
    };
    let key = args.get(1);
    let shared = ctx.shared;
    let mut txn = shared.engine.txn(ctx.session.db, &[key], ctx.now);
    let h = match txn.read_hash(key) {
        Ok(h) => h,
        Err(_) => {
            drop(txn);
            ctx.out.error(WRONGTYPE);
            return;
        }
    };
    let Some(h) = h else {
        drop(txn);
        empty_scan(ctx);
        return;
    };
    let Some(opts) = scan_options(ctx, &args, 3) else {
        return;
    };
    let mut found: Vec<(&[u8], &[u8])> = Vec::new();
    let next = h.scan(cursor, opts.count, |f, v| {
        if opts
            .pattern
            .is_none_or(|p| magpie_engine::glob::matches(p, f))
        {
            found.push((f, v));
        }
    });
    ctx.out.array(2);
    let mut digits = itoa::Buffer::new();
    ctx.out.bulk(digits.format(next).as_bytes());
    ctx.out.array(found.len() * 2);
    for (f, v) in found {
        ctx.out.bulk(f);
        ctx.out.bulk(v);
    }
    drop(txn);
    ctx.count_read(true);
}
