//! Set commands: every command of Redis 7.0's set group, with its argument
//! parsing, replies (RESP2 arrays, RESP3 sets where Redis 7.0 sends them)
//! and error texts. The set itself is the engine's ([`magpie_engine::Set`]).
//!
//! Member order: an intset replies in ascending order, as in Redis. Small
//! string sets are listpacks here (Redis 7.2's encoding; Redis 7.0 keeps
//! them in a hash table) and reply in insertion order, where Redis 7.0's
//! order is its table's; clients must not rely on either. Computed sets
//! (SUNION, SDIFF, the *STORE results) are built by the same rules, so an
//! all-integer result is ascending on both. SPOP and SRANDMEMBER draw from
//! the engine's generator.

use magpie_engine::{Set, Txn, TypeLimits, WrongType};
use magpie_protocol::resp::Args;

use super::handler::{empty_scan, is, parse_cursor, scan_options, CommandSpec, Ctx, WRONGTYPE};
use super::hashes::{distinct, range_count};

const fn spec(
    name: &'static str,
    arity: i32,
    flags: &'static [&'static str],
    keys: (i32, i32),
    summary: &'static str,
    syntax: &'static str,
    handler: super::handler::Handler,
) -> CommandSpec {
    CommandSpec {
        name,
        arity,
        flags,
        first_key: keys.0,
        last_key: keys.1,
        step: 1,
        group: "set",
        summary,
        syntax,
        handler,
    }
}

/// The set family's table.
pub const COMMANDS: &[CommandSpec] = &[
    spec("sadd", -3, &["write", "denyoom", "fast"], (1, 1), "Adds one or more members to a set. Creates the key if it doesn't exist.", "key member [member ...]", sadd),
    spec("scard", 2, &["readonly", "fast"], (1, 1), "Returns the number of members in a set.", "key", scard),
    spec("sdiff", -2, &["readonly"], (1, -1), "Returns the difference of multiple sets.", "key [key ...]", sdiff),
    spec("sdiffstore", -3, &["write", "denyoom"], (1, -1), "Stores the difference of multiple sets in a key.", "destination key [key ...]", sdiffstore),
    spec("sinter", -2, &["readonly"], (1, -1), "Returns the intersect of multiple sets.", "key [key ...]", sinter),
    CommandSpec {
        name: "sintercard",
        arity: -3,
        flags: &["readonly", "movablekeys"],
        // keys are named by numkeys (Redis reports 0, 0, 0 and key specs)
        first_key: 0,
        last_key: 0,
        step: 0,
        group: "set",
        summary: "Returns the number of members of the intersect of multiple sets.",
        syntax: "numkeys key [key ...] [LIMIT limit]",
        handler: sintercard,
    },
    spec("sinterstore", -3, &["write", "denyoom"], (1, -1), "Stores the intersect of multiple sets in a key.", "destination key [key ...]", sinterstore),
    spec("sismember", 3, &["readonly", "fast"], (1, 1), "Determines whether a member belongs to a set.", "key member", sismember),
    spec("smembers", 2, &["readonly"], (1, 1), "Returns all members of a set.", "key", smembers),
    spec("smismember", -3, &["readonly", "fast"], (1, 1), "Determines whether multiple members belong to a set.", "key member [member ...]", smismember),
    spec("smove", 4, &["write", "fast"], (1, 2), "Moves a member from one set to another.", "source destination member", smove),
    spec("spop", -2, &["write", "fast"], (1, 1), "Returns one or more random members from a set after removing them. Deletes the set if the last member was popped.", "key [count]", spop),
    spec("srandmember", -2, &["readonly"], (1, 1), "Get one or multiple random members from a set", "key [count]", srandmember),
    spec("srem", -3, &["write", "fast"], (1, 1), "Removes one or more members from a set. Deletes the set if the last member was removed.", "key member [member ...]", srem),
    spec("sscan", -3, &["readonly"], (1, 1), "Iterates over members of a set.", "key cursor [MATCH pattern] [COUNT count]", sscan),
    spec("sunion", -2, &["readonly"], (1, -1), "Returns the union of multiple sets.", "key [key ...]", sunion),
    spec("sunionstore", -3, &["write", "denyoom"], (1, -1), "Stores the union of multiple sets in a key.", "destination key [key ...]", sunionstore),
];

/// Opens a transaction over `key` and reads its set (None when absent);
/// on WRONGTYPE replies the error and returns None. Counts the lookup as a
/// keyspace hit or miss.
fn with_set<R>(
    ctx: &mut Ctx<'_, '_>,
    key: &[u8],
    f: impl FnOnce(&mut Ctx<'_, '_>, Option<&Set>) -> R,
) -> Option<R> {
    let shared = ctx.shared;
    let mut txn = shared.engine.txn(ctx.session.db, &[key], ctx.now);
    match txn.read_set(key) {
        Ok(s) => {
            let found = s.is_some();
            let r = f(ctx, s);
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

fn reply_count(ctx: &mut Ctx<'_, '_>, r: Result<usize, WrongType>) {
    match r {
        Ok(n) => ctx.out.integer(n as i64),
        Err(_) => ctx.out.error(WRONGTYPE),
    }
}

fn sadd(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    let key = args.get(1);
    let members: Vec<&[u8]> = args.iter().skip(2).collect();
    let shared = ctx.shared;
    let r = shared
        .engine
        .txn(ctx.session.db, &[key], ctx.now)
        .set_add(key, &members);
    reply_count(ctx, r);
}

fn srem(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    let key = args.get(1);
    let members: Vec<&[u8]> = args.iter().skip(2).collect();
    let shared = ctx.shared;
    let r = shared
        .engine
        .txn(ctx.session.db, &[key], ctx.now)
        .set_remove(key, &members);
    reply_count(ctx, r);
}

fn scard(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    with_set(ctx, args.get(1), |ctx, s| {
        ctx.out.integer(s.map_or(0, |s| s.len()) as i64)
    });
}

fn sismember(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    let m = args.get(2);
    with_set(ctx, args.get(1), |ctx, s| {
        ctx.out.integer(s.is_some_and(|s| s.contains(m)) as i64)
    });
}

fn smismember(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    with_set(ctx, args.get(1), |ctx, s| {
        ctx.out.array(args.len() - 2);
        for i in 2..args.len() {
            ctx.out
                .integer(s.is_some_and(|s| s.contains(args.get(i))) as i64);
        }
    });
}

/// Writes `members` as a RESP3 set (an array in RESP2).
fn write_set(ctx: &mut Ctx<'_, '_>, members: &[Vec<u8>]) {
    ctx.out.set(members.len());
    for m in members {
        ctx.out.bulk(m);
    }
}

fn smembers(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    with_set(ctx, args.get(1), |ctx, s| {
        ctx.out.set(s.map_or(0, |s| s.len()));
        if let Some(s) = s {
            s.for_each(|m| ctx.out.bulk(m));
        }
    });
}

/// `SRANDMEMBER key [count]`: the count's range, then the syntax, then the
/// key, as Redis 7.0 checks them. Replies with a count are arrays.
fn srandmember(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    if args.len() > 3 {
        ctx.syntax_error();
        return;
    }
    let count = if args.len() == 3 {
        match range_count(ctx, args.get(2)) {
            Some(n) => Some(n),
            None => return,
        }
    } else {
        None
    };
    let shared = ctx.shared;
    let key = args.get(1);
    let mut txn = shared.engine.txn(ctx.session.db, &[key], ctx.now);
    let mut rand = txn.random_source();
    let s = match txn.read_set(key) {
        Ok(s) => s,
        Err(_) => {
            drop(txn);
            ctx.out.error(WRONGTYPE);
            return;
        }
    };
    let found = s.is_some();
    match (count, s) {
        (None, s) => match s.and_then(|s| s.random(&mut rand)) {
            Some(m) => ctx.out.bulk(&m),
            None => ctx.out.null(),
        },
        (Some(_), None) => ctx.out.array(0),
        (Some(n), Some(s)) => {
            let picks: Vec<Vec<u8>> = if n < 0 {
                (0..n.unsigned_abs())
                    .filter_map(|_| s.random(&mut rand))
                    .collect()
            } else if n as usize >= s.len() {
                s.members()
            } else {
                distinct(s.members(), n as usize, &mut rand)
            };
            ctx.out.array(picks.len());
            for m in &picks {
                ctx.out.bulk(m);
            }
        }
    }
    drop(txn);
    ctx.count_read(found);
}

/// `SPOP key [count]`: without a count one member (or nil); with one a set
/// of up to `count` members, the whole set (and the key) when it has no
/// more.
fn spop(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    if args.len() > 3 {
        ctx.syntax_error();
        return;
    }
    let count = if args.len() == 3 {
        match magpie_protocol::int::parse_i64(args.get(2)) {
            Some(n) if n >= 0 => Some(n as u64),
            _ => {
                ctx.out.error("ERR value is out of range, must be positive");
                return;
            }
        }
    } else {
        None
    };
    let shared = ctx.shared;
    let key = args.get(1);
    let mut txn = shared.engine.txn(ctx.session.db, &[key], ctx.now);
    let mut rand = txn.random_source();
    let picks: Option<Vec<Vec<u8>>> = match txn.read_set(key) {
        Err(_) => {
            drop(txn);
            ctx.out.error(WRONGTYPE);
            return;
        }
        Ok(None) => None,
        Ok(Some(s)) => Some(match count {
            None => s.random(&mut rand).into_iter().collect(),
            Some(n) if n as usize >= s.len() => s.members(),
            Some(n) => distinct(s.members(), n as usize, &mut rand),
        }),
    };
    if let Some(picks) = &picks {
        let refs: Vec<&[u8]> = picks.iter().map(|m| &m[..]).collect();
        // the key's type was checked in this transaction
        let _ = txn.set_remove(key, &refs);
    }
    drop(txn);
    match (count, picks) {
        (None, Some(p)) if !p.is_empty() => ctx.out.bulk(&p[0]),
        (None, _) => ctx.out.null(),
        (Some(_), p) => write_set(ctx, &p.unwrap_or_default()),
    }
}

/// `SMOVE source destination member`, in Redis 7.0's order: an absent
/// source is 0 before any type check.
fn smove(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    let (src, dst, m) = (args.get(1), args.get(2), args.get(3));
    let shared = ctx.shared;
    let mut txn = shared.engine.txn(ctx.session.db, &[src, dst], ctx.now);
    let (src_kind, dst_kind) = (txn.kind(src), txn.kind(dst));
    let set = Some(magpie_engine::Kind::Set);
    if src_kind.is_none() {
        drop(txn);
        ctx.out.integer(0);
        return;
    }
    if src_kind != set || (dst_kind.is_some() && dst_kind != set) {
        drop(txn);
        ctx.out.error(WRONGTYPE);
        return;
    }
    if src == dst {
        let is_member = matches!(txn.read_set(src), Ok(Some(s)) if s.contains(m));
        drop(txn);
        ctx.out.integer(is_member as i64);
        return;
    }
    let moved = txn.set_remove(src, &[m]) == Ok(1);
    if moved {
        let _ = txn.set_add(dst, &[m]);
    }
    drop(txn);
    ctx.out.integer(moved as i64);
}

/// What a multi-key set operation computes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Inter,
    Union,
    Diff,
}

/// Reads the sets at `keys` in order: WRONGTYPE for any key of another
/// type; an absent key reads as an empty set, which for SINTER makes the
/// result empty (None), after every key's type was checked, as in Redis.
fn read_sets(
    txn: &mut Txn<'_>,
    keys: &[&[u8]],
    op: Op,
) -> Result<Option<Vec<Option<Set>>>, WrongType> {
    let mut sets = Vec::with_capacity(keys.len());
    let mut empty = false;
    for k in keys {
        let s = txn.read_set(k)?;
        empty |= s.is_none();
        if !empty || op != Op::Inter {
            sets.push(s.cloned());
        }
    }
    Ok((!(empty && op == Op::Inter)).then_some(sets))
}

/// The members of `op` over `sets`, in Redis 7.0's order: SINTER walks the
/// smallest set; SUNION and SDIFF build a set by Redis's encoding rules and
/// walk it.
fn compute(sets: &[Option<Set>], op: Op, limits: &TypeLimits, limit: usize) -> Vec<Vec<u8>> {
    match op {
        Op::Inter => {
            let mut order: Vec<&Set> = sets.iter().flatten().collect();
            if order.len() < sets.len() {
                return Vec::new();
            }
            order.sort_by_key(|s| s.len());
            let mut out = Vec::new();
            if let Some((first, rest)) = order.split_first() {
                first.for_each(|m| {
                    if (limit == 0 || out.len() < limit) && rest.iter().all(|s| s.contains(m)) {
                        out.push(m.to_vec());
                    }
                });
            }
            out
        }
        Op::Union | Op::Diff => {
            let mut members: Vec<Vec<u8>> = Vec::new();
            let mut seen = std::collections::HashSet::new();
            let mut push = |m: &[u8]| {
                if seen.insert(m.to_vec()) {
                    members.push(m.to_vec());
                }
            };
            if op == Op::Union {
                for s in sets.iter().flatten() {
                    s.for_each(&mut push);
                }
            } else if let Some(Some(first)) = sets.first() {
                first.for_each(|m| {
                    if !sets[1..].iter().flatten().any(|s| s.contains(m)) {
                        push(m)
                    }
                });
            }
            let refs: Vec<&[u8]> = members.iter().map(|m| &m[..]).collect();
            Set::built_from(&refs, limits).map_or_else(Vec::new, |s| s.members())
        }
    }
}

/// SINTER / SUNION / SDIFF over `keys`, replied as a set.
fn set_op(ctx: &mut Ctx<'_, '_>, keys: &[&[u8]], op: Op) {
    let shared = ctx.shared;
    let limits = shared.engine.type_limits();
    let mut txn = shared.engine.txn(ctx.session.db, keys, ctx.now);
    let read = read_sets(&mut txn, keys, op);
    drop(txn);
    match read {
        Err(_) => ctx.out.error(WRONGTYPE),
        Ok(None) => ctx.out.set(0),
        Ok(Some(sets)) => write_set(ctx, &compute(&sets, op, &limits, 0)),
    }
}

/// SINTERSTORE / SUNIONSTORE / SDIFFSTORE: `dst` becomes the result
/// (deleted when it is empty), replied with its size.
fn set_op_store(ctx: &mut Ctx<'_, '_>, args: Args<'_>, op: Op) {
    let dst = args.get(1);
    let sources: Vec<&[u8]> = args.iter().skip(2).collect();
    let mut keys = sources.clone();
    keys.push(dst);
    let shared = ctx.shared;
    let limits = shared.engine.type_limits();
    let mut txn = shared.engine.txn(ctx.session.db, &keys, ctx.now);
    let members = match read_sets(&mut txn, &sources, op) {
        Err(_) => {
            drop(txn);
            ctx.out.error(WRONGTYPE);
            return;
        }
        Ok(None) => Vec::new(),
        Ok(Some(sets)) => compute(&sets, op, &limits, 0),
    };
    let refs: Vec<&[u8]> = members.iter().map(|m| &m[..]).collect();
    txn.remove(dst);
    if !refs.is_empty() {
        // dst was just removed: it cannot be of another type
        let _ = txn.set_add(dst, &refs);
    }
    drop(txn);
    ctx.out.integer(refs.len() as i64);
}

fn keys_from<'a>(args: &Args<'a>, from: usize) -> Vec<&'a [u8]> {
    args.iter().skip(from).collect()
}

fn sinter(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    set_op(ctx, &keys_from(&args, 1), Op::Inter)
}

fn sunion(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    set_op(ctx, &keys_from(&args, 1), Op::Union)
}

fn sdiff(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    set_op(ctx, &keys_from(&args, 1), Op::Diff)
}

fn sinterstore(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    set_op_store(ctx, args, Op::Inter)
}

fn sunionstore(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    set_op_store(ctx, args, Op::Union)
}

fn sdiffstore(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    set_op_store(ctx, args, Op::Diff)
}

/// `SINTERCARD numkeys key [key ...] [LIMIT limit]` with Redis 7.0's errors.
fn sintercard(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    let numkeys = match magpie_protocol::int::parse_i64(args.get(1)) {
        Some(n) if n >= 1 => n,
        _ => {
            ctx.out.error("ERR numkeys should be greater than 0");
            return;
        }
    };
    if numkeys as u64 > (args.len() - 2) as u64 {
        ctx.out
            .error("ERR Number of keys can't be greater than number of args");
        return;
    }
    let numkeys = numkeys as usize;
    let mut limit = 0usize;
    let mut j = 2 + numkeys;
    while j < args.len() {
        if is(args.get(j), "limit") && j + 1 < args.len() {
            let Some(n) = magpie_protocol::int::parse_i64(args.get(j + 1)).filter(|n| *n >= 0)
            else {
                ctx.out.error("ERR LIMIT can't be negative");
                return;
            };
            limit = usize::try_from(n).unwrap_or(usize::MAX);
            j += 2;
        } else {
            ctx.syntax_error();
            return;
        }
    }
    let keys: Vec<&[u8]> = (2..2 + numkeys).map(|i| args.get(i)).collect();
    let shared = ctx.shared;
    let limits = shared.engine.type_limits();
    let mut txn = shared.engine.txn(ctx.session.db, &keys, ctx.now);
    let read = read_sets(&mut txn, &keys, Op::Inter);
    drop(txn);
    match read {
        Err(_) => ctx.out.error(WRONGTYPE),
        Ok(None) => ctx.out.integer(0),
        Ok(Some(sets)) => ctx
            .out
            .integer(compute(&sets, Op::Inter, &limits, limit).len() as i64),
    }
}

/// `SSCAN key cursor [MATCH pattern] [COUNT count]`, as HSCAN.
fn sscan(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    let Some(cursor) = parse_cursor(args.get(2)) else {
        ctx.out.error("ERR invalid cursor");
        return;
    };
    let key = args.get(1);
    let shared = ctx.shared;
    let mut txn = shared.engine.txn(ctx.session.db, &[key], ctx.now);
    let s = match txn.read_set(key) {
        Ok(s) => s,
        Err(_) => {
            drop(txn);
            ctx.out.error(WRONGTYPE);
            return;
        }
    };
    let Some(s) = s else {
        drop(txn);
        empty_scan(ctx);
        return;
    };
    let Some(opts) = scan_options(ctx, &args, 3) else {
        return;
    };
    let mut found: Vec<Vec<u8>> = Vec::new();
    let next = s.scan(cursor, opts.count, |m| {
        if opts
            .pattern
            .is_none_or(|p| magpie_engine::glob::matches(p, m))
        {
            found.push(m.to_vec());
        }
    });
    drop(txn);
    ctx.count_read(true);
    ctx.out.array(2);
    let mut digits = itoa::Buffer::new();
    ctx.out.bulk(digits.format(next).as_bytes());
    ctx.out.array(found.len());
    for m in &found {
        ctx.out.bulk(m);
    }
}
