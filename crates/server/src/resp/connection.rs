//! Connection commands: PING, ECHO, QUIT, SELECT, AUTH, HELLO, CLIENT.

use std::time::Instant;

use magpie_protocol::resp::{Args, Proto};

use super::client_line::{client_info_line, client_line, own_state};
use super::handler::{
    dispatch_subcommand, int_arg, is, proto_version, subcommand, write_help, CommandSpec, Ctx,
    REDIS_VERSION,
};
use crate::acl::{AclSession, Reason};

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
        flags: &["loading", "stale", "fast"],
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
        flags: &[
            "noscript",
            "loading",
            "stale",
            "fast",
            "no_auth",
            "allow_busy",
        ],
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
    CommandSpec {
        name: "auth",
        arity: -2,
        flags: &[
            "noscript",
            "loading",
            "stale",
            "fast",
            "no_auth",
            "allow_busy",
        ],
        first_key: 0,
        last_key: 0,
        step: 0,
        group: "connection",
        summary: "Authenticates the connection.",
        syntax: "[username] password",
        handler: auth,
    },
    CommandSpec {
        name: "hello",
        arity: -1,
        flags: &[
            "noscript",
            "loading",
            "stale",
            "fast",
            "no_auth",
            "allow_busy",
        ],
        first_key: 0,
        last_key: 0,
        step: 0,
        group: "connection",
        summary: "Handshakes with the server: protocol version, authentication, client name.",
        syntax: "[protover [AUTH username password] [SETNAME clientname]]",
        handler: hello,
    },
    CommandSpec {
        name: "client",
        arity: -2,
        flags: &[],
        first_key: 0,
        last_key: 0,
        step: 0,
        group: "connection",
        summary: "A container for client connection commands.",
        syntax: "",
        handler: client,
    },
];

const CLIENT_FLAGS: &[&str] = &["noscript", "loading", "stale"];
const CLIENT_ADMIN_FLAGS: &[&str] = &["admin", "noscript", "loading", "stale"];

/// CLIENT's subcommands.
pub const CLIENT_SUBCOMMANDS: &[CommandSpec] = &[
    subcommand(
        "client|id",
        "connection",
        2,
        CLIENT_FLAGS,
        "Returns the unique client ID of the connection.",
        "",
        client_id,
    ),
    subcommand(
        "client|setname",
        "connection",
        3,
        CLIENT_FLAGS,
        "Sets the connection name.",
        "connection-name",
        client_setname,
    ),
    subcommand(
        "client|getname",
        "connection",
        2,
        CLIENT_FLAGS,
        "Returns the name of the connection.",
        "",
        client_getname,
    ),
    subcommand(
        "client|list",
        "connection",
        -2,
        CLIENT_ADMIN_FLAGS,
        "Lists open connections.",
        "[TYPE <NORMAL | MASTER | REPLICA | PUBSUB>] [ID client-id [client-id ...]]",
        client_list,
    ),
    subcommand(
        "client|info",
        "connection",
        2,
        CLIENT_FLAGS,
        "Returns information about the connection.",
        "",
        client_info,
    ),
    subcommand(
        "client|setinfo",
        "connection",
        4,
        CLIENT_FLAGS,
        "Sets information specific to the client or connection.",
        "<LIB-NAME libname | LIB-VER libver>",
        client_setinfo,
    ),
    subcommand(
        "client|no-evict",
        "connection",
        3,
        CLIENT_ADMIN_FLAGS,
        "Sets the client eviction mode of the connection (magpie never evicts clients).",
        "<ON | OFF>",
        client_no_evict,
    ),
    subcommand(
        "client|help",
        "connection",
        2,
        &["loading", "stale"],
        "Returns helpful text about the different subcommands.",
        "",
        client_help,
    ),
];

fn ping(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    if args.len() <= 2 && ctx.session.pubsub.active() && ctx.session.proto == Proto::Resp2 {
        // RESP2's subscribed mode answers in the shape of a message
        ctx.out.array(2);
        ctx.out.bulk(b"pong");
        ctx.out
            .bulk(if args.len() == 2 { args.get(1) } else { b"" });
        return;
    }
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

/// Redis's `ACLAuthenticateUser`: on success the connection becomes the
/// user (CLIENT LIST shows it); a failure is recorded in the ACL LOG
/// under the name tried, never with the password.
fn authenticate(ctx: &mut Ctx<'_, '_>, cmd: &[u8], user: &[u8], pass: &[u8]) -> bool {
    match ctx.shared.acl.authenticate(user, pass) {
        Some(u) => {
            ctx.session.info.state.lock().user = u.name.clone();
            ctx.session.acl = AclSession::of(&ctx.shared.acl, u);
            ctx.session.authenticated = true;
            true
        }
        None => {
            let object = String::from_utf8_lossy(cmd).into_owned();
            let name = String::from_utf8_lossy(user).into_owned();
            super::acl::log_refusal(ctx, Reason::Auth, object, name);
            false
        }
    }
}

/// Redis's reply to a failed AUTH or HELLO AUTH.
pub const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

fn auth(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    let (user, pass) = match args.len() {
        2 => {
            if ctx.shared.acl.default_user().nopass {
                ctx.out.error(
                    "ERR AUTH <password> called without any password configured for the default user. \
                     Are you sure your configuration is correct?",
                );
                return;
            }
            (&b"default"[..], args.get(1))
        }
        3 => (args.get(1), args.get(2)),
        _ => {
            ctx.syntax_error();
            return;
        }
    };
    if authenticate(ctx, args.get(0), user, pass) {
        ctx.out.ok();
    } else {
        ctx.out.error(WRONGPASS);
    }
}

/// Redis accepts client names and library info made only of the printable
/// characters `!`..`~` (no spaces or newlines).
fn valid_client_attr(v: &[u8]) -> bool {
    v.iter().all(|&b| (b'!'..=b'~').contains(&b))
}

fn hello(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    let mut proto = None;
    if args.len() >= 2 {
        let Some(v) = magpie_protocol::int::parse_i64(args.get(1)) else {
            ctx.out
                .error("ERR Protocol version is not an integer or out of range");
            return;
        };
        proto = match v {
            2 => Some(Proto::Resp2),
            3 => Some(Proto::Resp3),
            _ => {
                ctx.out.error("NOPROTO unsupported protocol version");
                return;
            }
        };
    }
    let mut credentials = None;
    let mut name = None;
    let mut i = 2;
    while i < args.len() {
        let opt = args.get(i);
        let more = args.len() - 1 - i;
        if is(opt, "auth") && more >= 2 {
            credentials = Some((args.get(i + 1), args.get(i + 2)));
            i += 3;
        } else if is(opt, "setname") && more >= 1 {
            let n = args.get(i + 1);
            if !valid_client_attr(n) {
                ctx.out.error(BAD_NAME);
                return;
            }
            name = Some(n);
            i += 2;
        } else {
            ctx.out.error(&format!(
                "ERR Syntax error in HELLO option '{}'",
                super::handler::sanitize(opt)
            ));
            return;
        }
    }
    if let Some((user, pass)) = credentials {
        if !authenticate(ctx, args.get(0), user, pass) {
            ctx.out.error(WRONGPASS);
            return;
        }
    }
    if !ctx.session.authenticated {
        ctx.out.error(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the \
             HELLO AUTH <user> <pass> option can be used to authenticate the client and select \
             the RESP protocol version at the same time",
        );
        return;
    }
    if let Some(n) = name {
        set_name(ctx, n);
    }
    if let Some(p) = proto {
        set_proto(ctx, p);
    }
    ctx.out.map(7);
    ctx.out.bulk(b"server");
    ctx.out.bulk(b"redis");
    ctx.out.bulk(b"version");
    ctx.out.bulk(REDIS_VERSION.as_bytes());
    ctx.out.bulk(b"proto");
    ctx.out.integer(proto_version(ctx.session.proto));
    ctx.out.bulk(b"id");
    ctx.out.integer(ctx.session.id() as i64);
    ctx.out.bulk(b"mode");
    ctx.out.bulk(b"standalone");
    ctx.out.bulk(b"role");
    ctx.out.bulk(b"master");
    ctx.out.bulk(b"modules");
    ctx.out.array(0);
}

const BAD_NAME: &str = "ERR Client names cannot contain spaces, newlines or special characters.";

/// Sets (or with an empty name clears) the connection name in the registry,
/// where CLIENT LIST and GETNAME read it.
fn set_name(ctx: &mut Ctx<'_, '_>, name: &[u8]) {
    let mut st = ctx.session.info.state.lock();
    st.name.clear();
    st.name.extend_from_slice(name);
}

fn client(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    dispatch_subcommand(ctx, args, "client", CLIENT_SUBCOMMANDS);
}

fn client_id(ctx: &mut Ctx<'_, '_>, _args: Args<'_>) {
    ctx.out.integer(ctx.session.id() as i64);
}

fn client_setname(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    let name = args.get(2);
    if !valid_client_attr(name) {
        ctx.out.error(BAD_NAME);
        return;
    }
    set_name(ctx, name);
    ctx.out.ok();
}

fn client_getname(ctx: &mut Ctx<'_, '_>, _args: Args<'_>) {
    let st = ctx.session.info.state.lock();
    if st.name.is_empty() {
        drop(st);
        ctx.out.null();
    } else {
        ctx.out.bulk(&st.name);
    }
}

fn client_setinfo(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    let (attr, value) = (args.get(2), args.get(3));
    let lib_name = if is(attr, "lib-name") {
        true
    } else if is(attr, "lib-ver") {
        false
    } else {
        ctx.out.error(&format!(
            "ERR Unrecognized option '{}'",
            super::handler::sanitize(attr)
        ));
        return;
    };
    if !valid_client_attr(value) {
        ctx.out.error(&format!(
            "ERR {} cannot contain spaces, newlines or special characters.",
            super::handler::sanitize(attr)
        ));
        return;
    }
    {
        let mut st = ctx.session.info.state.lock();
        let field = if lib_name {
            &mut st.lib_name
        } else {
            &mut st.lib_ver
        };
        field.clear();
        field.extend_from_slice(value);
    }
    ctx.out.ok();
}

fn client_no_evict(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    // accepted for compatibility: magpie never evicts clients either way
    if is(args.get(2), "on") || is(args.get(2), "off") {
        ctx.out.ok();
    } else {
        ctx.syntax_error();
    }
}

fn client_list(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    // like Redis 7.0: no option, or exactly one of TYPE t / ID id...
    let mut ids: Option<Vec<u64>> = None;
    // TYPE pubsub / normal: Some(subscribed to anything)
    let mut subscribed: Option<bool> = None;
    if args.len() == 4 && is(args.get(2), "type") {
        let t = args.get(3);
        if ["master", "replica", "slave"].iter().any(|w| is(t, w)) {
            ids = Some(Vec::new()); // magpie has no such clients
        } else if is(t, "pubsub") {
            subscribed = Some(true);
        } else if is(t, "normal") {
            subscribed = Some(false);
        } else {
            ctx.out.error(&format!(
                "ERR Unknown client type '{}'",
                super::handler::sanitize(t)
            ));
            return;
        }
    } else if args.len() > 3 && is(args.get(2), "id") {
        let mut list = Vec::with_capacity((args.len() - 3).min(64));
        for a in args.iter().skip(3) {
            match magpie_protocol::int::parse_i64(a) {
                Some(n) if n > 0 => list.push(n as u64),
                Some(_) => {}
                None => {
                    ctx.out.error("ERR Invalid client ID");
                    return;
                }
            }
        }
        ids = Some(list);
    } else if args.len() != 2 {
        ctx.syntax_error();
        return;
    }
    let clients: Vec<_> = ctx.shared.clients.lock().values().cloned().collect();
    let now = Instant::now();
    let mut text = String::with_capacity(clients.len() * 300);
    for c in clients {
        if ids.as_ref().is_some_and(|ids| !ids.contains(&c.id)) {
            continue;
        }
        let st = if c.id == ctx.session.id() {
            own_state(ctx)
        } else {
            c.state.lock().clone()
        };
        if subscribed.is_some_and(|want| want != (st.subscriptions.iter().sum::<u32>() > 0)) {
            continue;
        }
        client_line(&mut text, &c, &st, now);
    }
    ctx.out.verbatim(text.as_bytes());
}

fn client_info(ctx: &mut Ctx<'_, '_>, _args: Args<'_>) {
    let text = client_info_line(ctx);
    ctx.out.verbatim(text.as_bytes());
}

fn client_help(ctx: &mut Ctx<'_, '_>, _args: Args<'_>) {
    write_help(
        ctx.out,
        "CLIENT",
        &[
            ("GETNAME", "Return the name of the current connection."),
            ("ID", "Return the ID of the current connection."),
            (
                "INFO",
                "Return information about the current client connection.",
            ),
            (
                "LIST [options ...]",
                "Return information about client connections. Options:",
            ),
            (
                "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
                "  Return clients of specified type.",
            ),
            (
                "    * ID <client-id> [<client-id> ...]",
                "  Return clients of the given ids.",
            ),
            (
                "SETNAME <name>",
                "Assign the name <name> to the current connection.",
            ),
            (
                "SETINFO <LIB-NAME|LIB-VER> <value>",
                "Set the client library name or version.",
            ),
            (
                "NO-EVICT (ON|OFF)",
                "Accepted for compatibility; magpie never evicts clients.",
            ),
        ],
    );
}
