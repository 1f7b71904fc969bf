//! Connection commands: PING, ECHO, QUIT, SELECT, AUTH, HELLO, CLIENT.

use magpie_protocol::resp::{Args, Proto};

use super::{int_arg, CommandSpec, Ctx};

/// The connection family's table.
pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "ping",
        arity: -1,
        flags: &["fast"],
        first_key: 0,
        last_key: 0,
        step: 0,
        group: "connection",
        summary: "Returns the server's liveliness response.",
        syntax: "[message]",
        handler: ping,
    },
    CommandSpec {
        name: "echo",
        arity: 2,
        flags: &["fast"],
        first_key: 0,
        last_key: 0,
        step: 0,
        group: "connection",
        summary: "Returns the given string.",
        syntax: "message",
        handler: echo,
    },
    CommandSpec {
        name: "quit",
        arity: -1,
        flags: &["fast", "no-auth"],
        first_key: 0,
        last_key: 0,
        step: 0,
        group: "connection",
        summary: "Closes the connection.",
        syntax: "",
        handler: quit,
    },
    CommandSpec {
        name: "select",
        arity: 2,
        flags: &["loading", "stale", "fast"],
        first_key: 0,
        last_key: 0,
        step: 0,
        group: "connection",
        summary: "Changes the selected database.",
        syntax: "index",
        handler: select,
    },
];

fn ping(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    match args.len() {
        1 => ctx.out.simple("PONG"),
        2 => ctx.out.bulk(args.get(1)),
        _ => ctx.wrong_args("ping"),
    }
}

fn echo(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    ctx.out.bulk(args.get(1));
}

fn quit(ctx: &mut Ctx<'_, '_>, _args: Args<'_>) {
    ctx.out.ok();
    ctx.session.close = true;
}

fn select(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    let Some(db) = int_arg(ctx, args.get(1)) else {
        return;
    };
    if db < 0 || db as usize >= ctx.shared.engine.databases() {
        ctx.out.error("ERR DB index is out of range");
        return;
    }
    ctx.session.db = db as usize;
    ctx.out.ok();
}

/// Switches the reply dialect (HELLO).
pub fn set_proto(ctx: &mut Ctx<'_, '_>, proto: Proto) {
    ctx.session.proto = proto;
    ctx.out.set_proto(proto);
}
