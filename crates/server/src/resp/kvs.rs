//! The kvs framing's own meanings (see docs/protocol-kvs.md): in that framing
//! `GET` of a missing key is an error, `DEL` says whether it removed the key,
//! `KEYS` takes a regular expression, `RESET` empties the current database
//! and `SHUTDOWN` stops the server. Every other command (and `SET` with
//! options) runs from the regular table, its reply rendered in kvs form.
//!
//! A kvs reply is one line per value, so values and keys holding CR or LF
//! cannot be carried: `SET` refuses a CR (an LF cannot arrive inside a kvs
//! line) and `GET` / `KEYS` answer an error rather than a broken reply when
//! data stored over RESP holds either byte.

use magpie_protocol::resp::Args;
use memchr::{memchr, memchr2};
use regex::bytes::{Regex, RegexBuilder};

use super::handler::{is, sanitize, Ctx, Gates};

/// Most memory one compiled KEYS pattern may use (program and lazy-DFA
/// cache each), so a client cannot make the server build a huge automaton.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// One kvs-framing command: its name (for errors and CLIENT LIST), exact
/// argument count with the name, the checks its Redis namesake meets
/// before it runs ([`super::refusal`]), and handler.
struct KvsCommand {
    name: &'static str,
    arity: usize,
    gates: Gates,
    handler: fn(&mut Ctx<'_, '_>, Args<'_>),
}

const COMMANDS: &[KvsCommand] = &[
    KvsCommand {
        name: "set",
        arity: 3,
        gates: Gates {
            log: true,
            memory: true,
        },
        handler: set,
    },
    KvsCommand {
        name: "get",
        arity: 2,
        gates: Gates {
            log: false,
            memory: false,
        },
        handler: get,
    },
    KvsCommand {
        name: "del",
        arity: 2,
        gates: Gates {
            log: true,
            memory: false,
        },
        handler: del,
    },
    KvsCommand {
        name: "keys",
        arity: 2,
        gates: Gates {
            log: false,
            memory: false,
        },
        handler: keys,
    },
    KvsCommand {
        name: "reset",
        arity: 1,
        gates: Gates {
            log: true,
            memory: false,
        },
        handler: reset,
    },
    KvsCommand {
        name: "shutdown",
        arity: 1,
        gates: Gates {
            log: false,
            memory: false,
        },
        handler: shutdown,
    },
];

const CR_ERROR: &str = "ERR kvs framing cannot carry CR in keys or values";
const UNSENDABLE_ERROR: &str =
    "ERR data contains CR or LF, which kvs framing cannot carry; read it over RESP";

/// Runs `args` if the kvs framing gives the command its own meaning; returns
/// false to let the regular table handle it.
pub fn execute(ctx: &mut Ctx<'_, '_>, args: Args<'_>) -> bool {
    let name = args.get(0);
    let Some(cmd) = COMMANDS.iter().find(|c| is(name, c.name)) else {
        return false;
    };
    if !ctx.session.authenticated {
        ctx.out.error("NOAUTH Authentication required.");
        return true;
    }
    if cmd.name == "set" && args.len() > 3 {
        // SET k v EX 10 ...: Redis SET options, handled by the regular SET
        if args.iter().skip(1).take(2).any(has_cr) {
            ctx.out.error(CR_ERROR);
            return true;
        }
        return false;
    }
    if args.len() != cmd.arity {
        ctx.wrong_args(cmd.name);
        return true;
    }
    if let Some(err) = super::handler::refusal(ctx, cmd.gates) {
        ctx.out.error(&err);
        return true;
    }
    // counted under the Redis command of the same name, if there is one
    let index = ctx
        .commands
        .lookup_indexed(cmd.name.as_bytes())
        .map(|(_, i)| i);
    ctx.session.ran(cmd.name, index);
    (cmd.handler)(ctx, args);
    true
}

fn has_cr(data: &[u8]) -> bool {
    memchr(b'\r', data).is_some()
}

fn has_cr_or_lf(data: &[u8]) -> bool {
    memchr2(b'\r', b'\n', data).is_some()
}

fn invalid_key(ctx: &mut Ctx<'_, '_>, key: &[u8]) {
    ctx.out.error(&format!("invalid key {}", sanitize(key)));
}

fn set(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    let (key, value) = (args.get(1), args.get(2));
    if has_cr(key) || has_cr(value) {
        ctx.out.error(CR_ERROR);
        return;
    }
    ctx.shared
        .engine
        .txn(ctx.session.db, &[key], ctx.now)
        .set(key, &[value], 0, None);
    ctx.out.ok();
}

fn get(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    let key = args.get(1);
    let mut txn = ctx.shared.engine.txn(ctx.session.db, &[key], ctx.now);
    let hit = match txn.get(key) {
        Some(v) if has_cr_or_lf(v.value) => {
            ctx.out.error(UNSENDABLE_ERROR);
            true
        }
        Some(v) => {
            ctx.out.bulk_start(v.value.len());
            ctx.out.buffer().extend_from_slice(v.value);
            ctx.out.bulk_end();
            true
        }
        None => false,
    };
    drop(txn);
    ctx.count_read(hit);
    if !hit {
        invalid_key(ctx, key);
    }
}

fn del(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    let key = args.get(1);
    let removed = ctx
        .shared
        .engine
        .txn(ctx.session.db, &[key], ctx.now)
        .remove(key);
    if removed {
        ctx.out.ok();
    } else {
        invalid_key(ctx, key);
    }
}

/// Compiles a KEYS pattern with bounded size. Unicode mode is off so that
/// `.` and `\xHH` work on bytes (keys are binary); `(?u)` turns it back on.
fn compile(pattern: &[u8]) -> Result<Regex, String> {
    let pattern =
        std::str::from_utf8(pattern).map_err(|_| "pattern is not valid UTF-8".to_string())?;
    RegexBuilder::new(pattern)
        .unicode(false)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| one_line_error(&e))
}

/// The regex crate's syntax errors span several lines (pattern, caret,
/// message); a kvs error is one line, so keep the message.
fn one_line_error(e: &regex::Error) -> String {
    let text = match e {
        regex::Error::Syntax(s) => s
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("error: "))
            .unwrap_or(s)
            .to_string(),
        regex::Error::CompiledTooBig(n) => {
            format!("compiled pattern exceeds the size limit of {n} bytes")
        }
        other => other.to_string(),
    };
    sanitize(text.as_bytes())
}

/// True when the pattern matches `key` starting at its first byte. The
/// leftmost match starts at 0 whenever any match does, so this is the
/// same as anchoring the pattern, without rewriting pattern text (which a
/// pattern such as `(?x)a#` could subvert).
fn matches_at_start(re: &Regex, key: &[u8]) -> bool {
    re.find(key).is_some_and(|m| m.start() == 0)
}

fn keys(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    let re = match compile(args.get(1)) {
        Ok(re) => re,
        Err(msg) => {
            ctx.out.error(&format!("invalid regex: {msg}"));
            return;
        }
    };
    // matching keys back to back, and where each ends: the count must be
    // known before `*N`, and this costs two buffers rather than one per key
    let mut found = Vec::new();
    let mut ends = Vec::new();
    let mut unsendable = false;
    ctx.shared
        .engine
        .for_each_key(ctx.session.db, ctx.now, |key| {
            if !unsendable && matches_at_start(&re, key) {
                unsendable = has_cr_or_lf(key);
                found.extend_from_slice(key);
                ends.push(found.len());
            }
        });
    if unsendable {
        ctx.out.error(UNSENDABLE_ERROR);
        return;
    }
    ctx.out.array(ends.len());
    let mut start = 0;
    for end in ends {
        ctx.out.bulk(&found[start..end]);
        start = end;
    }
}

fn reset(ctx: &mut Ctx<'_, '_>, _args: Args<'_>) {
    ctx.shared.engine.flush_db(ctx.session.db);
    ctx.out.ok();
}

fn shutdown(ctx: &mut Ctx<'_, '_>, _args: Args<'_>) {
    tracing::info!(
        client = ctx.session.id(),
        "SHUTDOWN received in kvs framing"
    );
    ctx.out.ok();
    ctx.session.close = true;
    ctx.shared.request_shutdown();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys_matching(pattern: &str, keys: &[&[u8]]) -> Vec<Vec<u8>> {
        let re = compile(pattern.as_bytes()).unwrap();
        keys.iter()
            .filter(|k| matches_at_start(&re, k))
            .map(|k| k.to_vec())
            .collect()
    }

    #[test]
    fn patterns_are_anchored_at_the_start_only() {
        let keys: &[&[u8]] = &[b"user:1", b"user:22", b"xuser:3", b"user", b"a\xffb"];
        assert_eq!(
            keys_matching("user:", keys),
            vec![b"user:1".to_vec(), b"user:22".to_vec()]
        );
        assert_eq!(keys_matching("user:[0-9]$", keys), vec![b"user:1".to_vec()]);
        assert_eq!(
            keys_matching("x|user$", keys),
            vec![b"xuser:3".to_vec(), b"user".to_vec()]
        );
        // bytes, not code points
        assert_eq!(keys_matching(r"a\xFFb", keys), vec![b"a\xffb".to_vec()]);
        assert_eq!(keys_matching("a.b", keys), vec![b"a\xffb".to_vec()]);
        // verbose-mode comments cannot undo the anchoring
        assert_eq!(
            keys_matching("(?x)ser # comment", keys),
            Vec::<Vec<u8>>::new()
        );
    }

    #[test]
    fn bad_and_oversized_patterns_give_one_line_errors() {
        let err = compile(b"a(").unwrap_err();
        assert_eq!(err, "unclosed group");
        let err = compile(b"(\\w{1000}){1000}").unwrap_err();
        assert!(
            err.starts_with("compiled pattern exceeds the size limit"),
            "{err}"
        );
        assert_eq!(compile(b"\xff").unwrap_err(), "pattern is not valid UTF-8");
        assert!(!compile(b"[").unwrap_err().contains('\n'));
    }
}
