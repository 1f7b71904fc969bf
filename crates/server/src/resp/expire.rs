//! Expiry commands: EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT (with NX, XX, GT,
//! LT), TTL, PTTL, EXPIRETIME, PEXPIRETIME, PERSIST.
//!
//! Replies and error texts follow Redis 7.0 (`expire.c`). The engine keeps
//! expiry as an absolute time in ms, as Redis does, so the arithmetic and
//! its overflow checks are Redis's own.

use magpie_protocol::resp::Args;

use super::handler::{int_arg, is, CommandSpec, Ctx};

/// The expire family's table.
pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "expire",
        arity: -3,
        flags: &["write", "fast"],
        first_key: 1,
        last_key: 1,
        step: 1,
        group: "generic",
        summary: "Set a key's time to live in seconds",
        syntax: "key seconds [NX | XX | GT | LT]",
        handler: expire,
    },
    CommandSpec {
        name: "pexpire",
        arity: -3,
        flags: &["write", "fast"],
        first_key: 1,
        last_key: 1,
        step: 1,
        group: "generic",
        summary: "Set a key's time to live in milliseconds",
        syntax: "key milliseconds [NX | XX | GT | LT]",
        handler: pexpire,
    },
    CommandSpec {
        name: "expireat",
        arity: -3,
        flags: &["write", "fast"],
        first_key: 1,
        last_key: 1,
        step: 1,
        group: "generic",
        summary: "Set the expiration for a key as a UNIX timestamp",
        syntax: "key unix-time-seconds [NX | XX | GT | LT]",
        handler: expireat,
    },
    CommandSpec {
        name: "pexpireat",
        arity: -3,
        flags: &["write", "fast"],
        first_key: 1,
        last_key: 1,
        step: 1,
        group: "generic",
        summary: "Set the expiration for a key as a UNIX timestamp specified in milliseconds",
        syntax: "key unix-time-milliseconds [NX | XX | GT | LT]",
        handler: pexpireat,
    },
    CommandSpec {
        name: "ttl",
        arity: 2,
        flags: &["readonly", "fast"],
        first_key: 1,
        last_key: 1,
        step: 1,
        group: "generic",
        summary: "Get the time to live for a key in seconds",
        syntax: "key",
        handler: ttl,
    },
    CommandSpec {
        name: "pttl",
        arity: 2,
        flags: &["readonly", "fast"],
        first_key: 1,
        last_key: 1,
        step: 1,
        group: "generic",
        summary: "Get the time to live for a key in milliseconds",
        syntax: "key",
        handler: pttl,
    },
    CommandSpec {
        name: "expiretime",
        arity: 2,
        flags: &["readonly", "fast"],
        first_key: 1,
        last_key: 1,
        step: 1,
        group: "generic",
        summary: "Get the expiration Unix timestamp for a key",
        syntax: "key",
        handler: expiretime,
    },
    CommandSpec {
        name: "pexpiretime",
        arity: 2,
        flags: &["readonly", "fast"],
        first_key: 1,
        last_key: 1,
        step: 1,
        group: "generic",
        summary: "Get the expiration Unix timestamp for a key in milliseconds",
        syntax: "key",
        handler: pexpiretime,
    },
    CommandSpec {
        name: "persist",
        arity: 2,
        flags: &["write", "fast"],
        first_key: 1,
        last_key: 1,
        step: 1,
        group: "generic",
        summary: "Remove the expiration from a key",
        syntax: "key",
        handler: persist,
    },
];

fn expire(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    let now = ctx.now as i64;
    expire_generic(ctx, args, "expire", now, true)
}

fn pexpire(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    let now = ctx.now as i64;
    expire_generic(ctx, args, "pexpire", now, false)
}

fn expireat(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    expire_generic(ctx, args, "expireat", 0, true)
}

fn pexpireat(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    expire_generic(ctx, args, "pexpireat", 0, false)
}

/// The NX / XX / GT / LT conditions of the EXPIRE family.
#[derive(Default)]
struct Conditions {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
}

impl Conditions {
    /// Whether setting expiry `when` (ms) passes the conditions, given the
    /// key's current expiry. A key without a TTL counts as never expiring:
    /// GT always fails on it and LT always passes.
    fn allow(&self, current: Option<u64>, when: i64) -> bool {
        let current = current.map(|t| t as i128);
        let when = when as i128;
        !(self.nx && current.is_some()
            || self.xx && current.is_none()
            || self.gt && current.is_none_or(|c| when <= c)
            || self.lt && current.is_some_and(|c| when >= c))
    }
}

/// Parses the options after the time, replying Redis's error and returning
/// None when they are unknown or contradictory.
fn parse_conditions(ctx: &mut Ctx<'_, '_>, args: &Args<'_>) -> Option<Conditions> {
    let mut c = Conditions::default();
    for opt in args.iter().skip(3) {
        if is(opt, "nx") {
            c.nx = true;
        } else if is(opt, "xx") {
            c.xx = true;
        } else if is(opt, "gt") {
            c.gt = true;
        } else if is(opt, "lt") {
            c.lt = true;
        } else {
            unsupported_option(ctx, opt);
            return None;
        }
    }
    if c.nx && (c.xx || c.gt || c.lt) {
        ctx.out
            .error("ERR NX and XX, GT or LT options at the same time are not compatible");
        return None;
    }
    if c.gt && c.lt {
        ctx.out
            .error("ERR GT and LT options at the same time are not compatible");
        return None;
    }
    Some(c)
}

/// `ERR Unsupported option <opt>`, echoing the option exactly as Redis's
/// `addReplyErrorFormat("... %s")` does: the text ends at a NUL byte,
/// trailing CR/LF are trimmed and inner ones become spaces; other bytes
/// (including invalid UTF-8) pass through unchanged.
fn unsupported_option(ctx: &mut Ctx<'_, '_>, opt: &[u8]) {
    let opt = memchr::memchr(0, opt).map_or(opt, |nul| &opt[..nul]);
    let keep = opt
        .iter()
        .rposition(|&c| c != b'\r' && c != b'\n')
        .map_or(0, |i| i + 1);
    // an error reply is `-text\r\n` in every dialect
    let out = ctx.out.buffer();
    out.extend_from_slice(b"-ERR Unsupported option ");
    out.extend(opt[..keep].iter().map(|&c| match c {
        b'\r' | b'\n' => b' ',
        c => c,
    }));
    out.extend_from_slice(b"\r\n");
}

/// EXPIRE and friends: `basetime` is added to the given time (now for the
/// relative forms, 0 for the absolute ones), after converting seconds to
/// ms. Overflow on either step is an error; a resulting time at or before
/// now deletes the key (and still replies 1).
fn expire_generic(ctx: &mut Ctx<'_, '_>, args: Args<'_>, name: &str, basetime: i64, seconds: bool) {
    let Some(conditions) = parse_conditions(ctx, &args) else {
        return;
    };
    let Some(mut when) = int_arg(ctx, args.get(2)) else {
        return;
    };
    let invalid = || format!("ERR invalid expire time in '{name}' command");
    if seconds {
        match when.checked_mul(1000) {
            Some(ms) => when = ms,
            None => {
                ctx.out.error(&invalid());
                return;
            }
        }
    }
    match when.checked_add(basetime) {
        // Redis only checks the upward overflow; basetime >= 0 cannot
        // overflow downwards
        Some(t) => when = t,
        None => {
            ctx.out.error(&invalid());
            return;
        }
    }
    let key = args.get(1);
    let mut txn = ctx.shared.engine.txn(ctx.session.db, &[key], ctx.now);
    let Some(current) = txn.get_any(key).map(|v| v.meta.expire_at) else {
        drop(txn);
        ctx.out.integer(0);
        return;
    };
    if !conditions.allow(current, when) {
        drop(txn);
        ctx.out.integer(0);
        return;
    }
    if when <= ctx.now as i64 {
        txn.remove(key);
    } else {
        txn.set_expiry(key, Some(when as u64));
    }
    drop(txn);
    ctx.out.integer(1);
}

fn ttl(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    ttl_generic(ctx, args, false, false)
}

fn pttl(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    ttl_generic(ctx, args, true, false)
}

fn expiretime(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    ttl_generic(ctx, args, false, true)
}

fn pexpiretime(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    ttl_generic(ctx, args, true, true)
}

/// TTL / PTTL / EXPIRETIME / PEXPIRETIME: -2 when the key is missing, -1
/// when it has no expiry, otherwise the remaining time (`absolute` false)
/// or the expiry instant, in ms or in seconds rounded to nearest as Redis
/// does (`(ms + 500) / 1000`).
fn ttl_generic(ctx: &mut Ctx<'_, '_>, args: Args<'_>, ms: bool, absolute: bool) {
    let key = args.get(1);
    let found = ctx
        .shared
        .engine
        .txn(ctx.session.db, &[key], ctx.now)
        // Redis reads the TTL without touching the key (LOOKUP_NOTOUCH)
        .peek(key)
        .map(|v| v.meta.expire_at);
    ctx.count_read(found.is_some());
    let reply = match found {
        None => -2,
        Some(None) => -1,
        Some(Some(at)) => {
            let t = if absolute {
                at
            } else {
                at.saturating_sub(ctx.now)
            };
            let t = if ms { t } else { t.saturating_add(500) / 1000 };
            i64::try_from(t).unwrap_or(i64::MAX)
        }
    };
    ctx.out.integer(reply);
}

/// PERSIST: removes a key's TTL; 1 if it had one.
fn persist(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    let key = args.get(1);
    let mut txn = ctx.shared.engine.txn(ctx.session.db, &[key], ctx.now);
    let had_ttl = matches!(txn.get_any(key), Some(v) if v.meta.expire_at.is_some());
    if had_ttl {
        txn.set_expiry(key, None);
    }
    drop(txn);
    ctx.out.integer(had_ttl as i64);
}

#[cfg(test)]
mod tests {
    use super::Conditions;

    #[test]
    fn conditions_follow_redis() {
        let c = |nx, xx, gt, lt| Conditions { nx, xx, gt, lt };
        let none = c(false, false, false, false);
        assert!(none.allow(None, 5) && none.allow(Some(10), 5));
        assert!(c(true, false, false, false).allow(None, 5));
        assert!(!c(true, false, false, false).allow(Some(10), 5));
        assert!(!c(false, true, false, false).allow(None, 5));
        assert!(c(false, true, false, false).allow(Some(10), 5));
        assert!(
            !c(false, false, true, false).allow(None, 5),
            "GT: no TTL is infinite"
        );
        assert!(!c(false, false, true, false).allow(Some(10), 10));
        assert!(c(false, false, true, false).allow(Some(10), 11));
        assert!(
            c(false, false, false, true).allow(None, -5),
            "LT: no TTL is infinite"
        );
        assert!(!c(false, false, false, true).allow(Some(10), 10));
        assert!(c(false, false, false, true).allow(Some(10), 9));
        assert!(!c(false, true, true, false).allow(None, 9));
    }
}
