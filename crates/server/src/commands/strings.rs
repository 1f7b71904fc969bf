//! String commands: GET, SET and the rest of Redis's string family.

use magpie_protocol::resp::Args;

use super::{CommandSpec, Ctx};

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
        syntax: "key value [NX | XX] [GET] [EX seconds | PX milliseconds | EXAT unix-time-seconds | PXAT unix-time-milliseconds | KEEPTTL]",
        handler: set,
    },
];

fn get(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    let key = args.get(1);
    let mut txn = ctx.shared.engine.txn(ctx.session.db, &[key], ctx.now);
    match txn.get(key) {
        Some(v) => {
            ctx.out.bulk_start(v.value.len());
            ctx.out.buffer().extend_from_slice(v.value);
            ctx.out.bulk_end();
            drop(txn);
            ctx.count_read(true);
        }
        None => {
            drop(txn);
            ctx.out.null();
            ctx.count_read(false);
        }
    }
}

fn set(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    if args.len() != 3 {
        ctx.syntax_error();
        return;
    }
    let (key, value) = (args.get(1), args.get(2));
    ctx.shared
        .engine
        .txn(ctx.session.db, &[key], ctx.now)
        .set(key, &[value], 0, None);
    ctx.out.ok();
}
