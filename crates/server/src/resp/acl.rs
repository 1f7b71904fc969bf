//! The ACL family (`ACL SETUSER`, `GETUSER`, `DELUSER`, `LIST`, `USERS`,
//! `WHOAMI`, `CAT`, `LOG`, `SAVE`, `LOAD`, `GENPASS`, `DRYRUN`, `HELP`),
//! the per-command permission check `resp::execute` runs, and the ACL
//! [`catalog`] built from this door's command table: each command's
//! categories (Redis 7.0's for the commands Redis has) and key positions
//! with how each key is used (Redis 7.0's key specifications).

use magpie_protocol::resp::Args;

use super::handler::{
    dispatch_subcommand, int_arg, is, sanitize, server_subcommand as sub, CommandSpec, Ctx,
};
use crate::acl::catalog::{category_bit, ChannelArgs, CATEGORIES};
use crate::acl::{
    file::valid_name, random_bytes, Catalog, CommandAcl, Denied, KeyAccess, KeyRange, LogEntry,
    Reason, User,
};

/// The ACL family's table.
pub const COMMANDS: &[CommandSpec] = &[CommandSpec {
    name: "acl",
    arity: -2,
    flags: &[],
    first_key: 0,
    last_key: 0,
    step: 0,
    group: "server",
    summary: "A container for Access List Control commands.",
    syntax: "",
    handler: acl,
}];

const ADMIN: &[&str] = &["admin", "noscript", "loading", "stale"];
const PLAIN: &[&str] = &["noscript", "loading", "stale"];

/// ACL's subcommands.
pub const ACL_SUBCOMMANDS: &[CommandSpec] = &[
    sub(
        "acl|cat",
        -2,
        PLAIN,
        "Lists the ACL categories, or the commands inside a category.",
        "[categoryname]",
        acl_cat,
    ),
    sub(
        "acl|deluser",
        -3,
        ADMIN,
        "Deletes ACL users, and terminates their connections.",
        "username [username ...]",
        acl_deluser,
    ),
    sub(
        "acl|dryrun",
        -4,
        ADMIN,
        "Simulates the execution of a command by a user, without executing the command.",
        "username command [arg [arg ...]]",
        acl_dryrun,
    ),
    sub(
        "acl|genpass",
        -2,
        PLAIN,
        "Generates a pseudorandom, secure password that can be used to identify ACL users.",
        "[bits]",
        acl_genpass,
    ),
    sub(
        "acl|getuser",
        3,
        ADMIN,
        "Lists the ACL rules of a user.",
        "username",
        acl_getuser,
    ),
    sub(
        "acl|help",
        2,
        &["loading", "stale"],
        "Returns helpful text about the different subcommands.",
        "",
        acl_help,
    ),
    sub(
        "acl|list",
        2,
        ADMIN,
        "Dumps the effective rules in ACL file format.",
        "",
        acl_list,
    ),
    sub(
        "acl|load",
        2,
        ADMIN,
        "Reloads the rules from the configured ACL file.",
        "",
        acl_load,
    ),
    sub(
        "acl|log",
        -2,
        ADMIN,
        "Lists recent security events generated due to ACL rules.",
        "[count | RESET]",
        acl_log,
    ),
    sub(
        "acl|save",
        2,
        ADMIN,
        "Saves the effective ACL rules in the configured ACL file.",
        "",
        acl_save,
    ),
    sub(
        "acl|setuser",
        -3,
        ADMIN,
        "Creates and modifies an ACL user and its rules.",
        "username [rule [rule ...]]",
        acl_setuser,
    ),
    sub("acl|users", 2, ADMIN, "Lists all ACL users.", "", acl_users),
    sub(
        "acl|whoami",
        2,
        PLAIN,
        "Returns the authenticated username of the current connection.",
        "",
        acl_whoami,
    ),
];

/// Redis 7.0's greeting of a client refused by protected mode, sent before
/// the connection closes.
pub const PROTECTED_MODE_DENIED: &[u8] = b"-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Setup a an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";

/// Commands whose key is read (Redis's `ACCESS`) besides being written.
const WRITE_AND_READ: &[&str] = &[
    "set",
    "getset",
    "getdel",
    "getex",
    "incr",
    "decr",
    "incrby",
    "decrby",
    "incrbyfloat",
    "hincrby",
    "hincrbyfloat",
    "spop",
];
/// Read-only commands that do not return the value (no `ACCESS`): any
/// key pattern grants them.
const NO_ACCESS: &[&str] = &[
    "strlen",
    "exists",
    "type",
    "hexists",
    "hlen",
    "hstrlen",
    "scard",
    "sismember",
];

/// How `spec` uses its keys, as Redis 7.0's key specifications say.
fn key_ranges(spec: &CommandSpec) -> Vec<KeyRange> {
    let range = |first, last, step, read, write| KeyRange {
        first,
        last,
        step,
        access: KeyAccess { read, write },
    };
    if spec.name.starts_with("object|") && spec.name != "object|help" {
        return vec![range(2, 2, 1, false, false)];
    }
    match spec.name {
        "rename" | "renamenx" => {
            return vec![range(1, 1, 1, true, true), range(2, 2, 1, false, true)]
        }
        "copy" => return vec![range(1, 1, 1, true, false), range(2, 2, 1, false, true)],
        // the destination is written, the sources read
        "sinterstore" | "sunionstore" | "sdiffstore" => {
            return vec![range(1, 1, 1, false, true), range(2, -1, 1, true, false)]
        }
        // the source gives up the member (read), the destination gets it
        "smove" => return vec![range(1, 1, 1, true, true), range(2, 2, 1, false, true)],
        // keys named by numkeys (argument 1): see the ACL's key_positions,
        // which ends the range there
        "sintercard" => return vec![range(2, -1, 1, true, false)],
        _ => {}
    }
    if spec.first_key == 0 {
        return Vec::new();
    }
    let readonly = spec.flags.contains(&"readonly");
    let write = spec.flags.contains(&"write");
    let read = if write {
        WRITE_AND_READ.contains(&spec.name)
    } else {
        readonly && !NO_ACCESS.contains(&spec.name)
    };
    vec![range(spec.first_key, spec.last_key, spec.step, read, write)]
}

fn category_bits(spec: &CommandSpec) -> u32 {
    super::command::categories(spec)
        .iter()
        .filter_map(|c| category_bit(c.trim_start_matches('@')))
        .fold(0, |a, b| a | b)
}

/// The ACL's view of this door's commands: every top-level command at its
/// table index, then every subcommand.
pub fn catalog() -> Catalog {
    let table = super::table();
    let acl_of = |spec: &'static CommandSpec| CommandAcl {
        name: spec.name,
        categories: category_bits(spec),
        keys: key_ranges(spec),
        no_auth: spec.flags.contains(&"no_auth"),
        channels: match spec.name {
            "publish" | "spublish" => ChannelArgs::First,
            "subscribe" | "ssubscribe" => ChannelArgs::All,
            "psubscribe" => ChannelArgs::AllPatterns,
            _ => ChannelArgs::None,
        },
        parent: None,
    };
    let mut list: Vec<CommandAcl> = table.all().map(acl_of).collect();
    for spec in table.all() {
        list.extend(table.subcommands(spec.name).iter().map(acl_of));
    }
    Catalog::new(list)
}

/// Redis 7.0's NOPERM text for a refusal.
pub fn noperm_text(catalog: &Catalog, index: u16, denied: Denied) -> String {
    match denied {
        Denied::Command => format!(
            "NOPERM this user has no permissions to run the '{}' command",
            catalog.get(index).map_or("", |c| c.name)
        ),
        Denied::Key(_) => {
            "NOPERM this user has no permissions to access one of the keys used as arguments".into()
        }
        Denied::Channel(_) => {
            "NOPERM this user has no permissions to access one of the channels used as arguments"
                .into()
        }
    }
}

/// The catalog index of the command a request runs: the subcommand's for
/// a container (None when the subcommand does not exist: the container
/// answers that error itself).
fn request_index(catalog: &Catalog, index: u16, args: Args<'_>) -> Option<u16> {
    if catalog.subcommands(index).is_empty() {
        return Some(index);
    }
    if args.len() < 2 {
        return None;
    }
    catalog.subcommand(index, args.get(1))
}

/// The ACL part of `resp::execute` once the fast test failed (a user's
/// rules changed, or the user is not allowed everything): picks up the
/// changes (a deleted user's connection closes, as Redis closes it, and
/// the command does not run), then checks the command. True when it may
/// run.
#[cold]
#[inline(never)]
pub fn check_slow(ctx: &mut Ctx<'_, '_>, index: u16, args: Args<'_>) -> bool {
    if !ctx.session.acl.refresh(&ctx.shared.acl) {
        ctx.session.close = true;
        return false;
    }
    ctx.session.acl.unrestricted || permitted(ctx, index, args)
}

/// Arguments kept on the stack for the check (longer requests allocate).
const INLINE_ARGS: usize = 8;

/// The permission check for a user that is not unrestricted: true when the
/// command may run; otherwise writes NOPERM and records the refusal in the
/// ACL LOG.
fn permitted(ctx: &mut Ctx<'_, '_>, index: u16, args: Args<'_>) -> bool {
    let catalog = ctx.shared.acl.catalog();
    let Some(index) = request_index(catalog, index, args) else {
        return true;
    };
    let mut inline: [&[u8]; INLINE_ARGS] = [&[]; INLINE_ARGS];
    let heap: Vec<&[u8]>;
    let words: &[&[u8]] = if args.len() <= INLINE_ARGS {
        for (slot, a) in inline.iter_mut().zip(args.iter()) {
            *slot = a;
        }
        &inline[..args.len()]
    } else {
        heap = args.iter().collect();
        &heap
    };
    let Err(denied) = ctx.session.acl.user.check(catalog, index, words) else {
        return true;
    };
    let username = ctx.session.acl.name().to_string();
    ctx.out.error(&noperm_text(catalog, index, denied));
    let (reason, object) = match denied {
        Denied::Command => (
            Reason::Command,
            catalog.get(index).map_or("", |c| c.name).to_string(),
        ),
        Denied::Key(i) => (Reason::Key, String::from_utf8_lossy(words[i]).into_owned()),
        Denied::Channel(i) => (
            Reason::Channel,
            String::from_utf8_lossy(words[i]).into_owned(),
        ),
    };
    log_refusal(ctx, reason, object, username);
    false
}

/// Adds an ACL LOG entry for this connection.
pub fn log_refusal(ctx: &mut Ctx<'_, '_>, reason: Reason, object: String, username: String) {
    let client_info = super::client_line::client_info_line(ctx);
    ctx.shared.acl.log.lock().add(LogEntry {
        count: 1,
        reason,
        context: "toplevel",
        object,
        username,
        last_ms: magpie_engine::now_ms(),
        client_info: client_info.trim_end().to_string(),
    });
}

fn acl(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    dispatch_subcommand(ctx, args, "acl", ACL_SUBCOMMANDS);
}

fn acl_cat(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    if args.len() > 3 {
        ctx.wrong_args("acl|cat");
        return;
    }
    if args.len() == 2 {
        ctx.out.array(CATEGORIES.len());
        for c in CATEGORIES {
            ctx.out.bulk(c.as_bytes());
        }
        return;
    }
    let name = String::from_utf8_lossy(args.get(2)).into_owned();
    let Some(bit) = category_bit(&name) else {
        ctx.out
            .error(&format!("ERR Unknown category '{}'", sanitize(args.get(2))));
        return;
    };
    let catalog = ctx.shared.acl.catalog();
    let names: Vec<&str> = catalog
        .in_category(bit)
        .filter_map(|i| catalog.get(i).map(|c| c.name))
        .collect();
    ctx.out.array(names.len());
    for n in names {
        ctx.out.bulk(n.as_bytes());
    }
}

/// Joins the arguments of a selector given over several words
/// (`(` `~a` `+get)`) into one, as Redis's `ACLMergeSelectorArguments`.
fn merge_selectors(words: &[&[u8]]) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    // the selector being joined, and the word it started at
    let mut open: Option<(Vec<u8>, &[u8])> = None;
    for w in words {
        match open.as_mut() {
            Some((acc, _)) => {
                acc.push(b' ');
                acc.extend_from_slice(w);
                if w.ends_with(b")") {
                    out.push(open.take().expect("open selector").0);
                }
            }
            None if w.starts_with(b"(") && !w.ends_with(b")") => open = Some((w.to_vec(), w)),
            None => out.push(w.to_vec()),
        }
    }
    if let Some((_, first)) = open {
        return Err(format!(
            "ERR Unmatched parenthesis in acl selector starting at '{}'.",
            String::from_utf8_lossy(first)
        ));
    }
    Ok(out)
}

fn acl_setuser(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    let name = args.get(2);
    if !valid_name(name) {
        ctx.out
            .error("ERR Usernames can't contain spaces or null characters");
        return;
    }
    let name = String::from_utf8_lossy(name).into_owned();
    let words: Vec<&[u8]> = args.iter().skip(3).collect();
    let rules = match merge_selectors(&words) {
        Ok(r) => r,
        Err(e) => {
            ctx.out.error(&e);
            return;
        }
    };
    let rules: Vec<&[u8]> = rules.iter().map(Vec::as_slice).collect();
    match ctx.shared.acl.set_user(&name, &rules) {
        Ok(()) => ctx.out.ok(),
        Err(e) => ctx.out.error(&format!("ERR {e}")),
    }
}

fn acl_getuser(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    let name = String::from_utf8_lossy(args.get(2));
    let Some(user) = ctx.shared.acl.user(&name) else {
        ctx.out.null();
        return;
    };
    let catalog = ctx.shared.acl.catalog();
    let out = &mut *ctx.out;
    out.map(6);
    out.bulk(b"flags");
    let flags = user.flags();
    out.array(flags.len());
    for f in flags {
        out.bulk(f.as_bytes());
    }
    out.bulk(b"passwords");
    out.array(user.passwords.len());
    for p in &user.passwords {
        out.bulk(crate::acl::user::hex(p).as_bytes());
    }
    let root = &user.selectors[0];
    out.bulk(b"commands");
    out.bulk(root.describe_commands(catalog).as_bytes());
    out.bulk(b"keys");
    out.bulk(root.describe_keys().as_bytes());
    out.bulk(b"channels");
    out.bulk(root.describe_channels().as_bytes());
    out.bulk(b"selectors");
    out.array(user.selectors.len() - 1);
    for s in &user.selectors[1..] {
        out.map(3);
        out.bulk(b"commands");
        out.bulk(s.describe_commands(catalog).as_bytes());
        out.bulk(b"keys");
        out.bulk(s.describe_keys().as_bytes());
        out.bulk(b"channels");
        out.bulk(s.describe_channels().as_bytes());
    }
}

fn acl_deluser(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    let names: Vec<String> = args
        .iter()
        .skip(2)
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    match ctx.shared.acl.delete_users(&names) {
        Ok(n) => ctx.out.integer(n as i64),
        Err(e) => ctx.out.error(e),
    }
}

fn acl_list(ctx: &mut Ctx<'_, '_>, _args: Args<'_>) {
    let catalog = ctx.shared.acl.catalog();
    let users = ctx.shared.acl.users();
    ctx.out.array(users.len());
    for u in users {
        ctx.out.bulk(u.describe(catalog).as_bytes());
    }
}

fn acl_users(ctx: &mut Ctx<'_, '_>, _args: Args<'_>) {
    let users = ctx.shared.acl.users();
    ctx.out.array(users.len());
    for u in users {
        ctx.out.bulk(u.name.as_bytes());
    }
}

fn acl_whoami(ctx: &mut Ctx<'_, '_>, _args: Args<'_>) {
    let name = ctx.session.acl.name().to_string();
    ctx.out.bulk(name.as_bytes());
}

fn acl_load(ctx: &mut Ctx<'_, '_>, _args: Args<'_>) {
    match ctx.shared.acl.load() {
        Ok(()) => ctx.out.ok(),
        Err(e) => ctx.out.error(&format!("ERR {e}")),
    }
}

fn acl_save(ctx: &mut Ctx<'_, '_>, _args: Args<'_>) {
    match ctx.shared.acl.save() {
        Ok(()) => ctx.out.ok(),
        Err(e) => ctx.out.error(&format!("ERR {e}")),
    }
}

fn acl_genpass(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    let bits = if args.len() == 3 {
        let Some(b) = int_arg(ctx, args.get(2)) else {
            return;
        };
        match b {
            1..=4096 => b as usize,
            _ => {
                ctx.out.error(
                    "ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096",
                );
                return;
            }
        }
    } else if args.len() == 2 {
        256
    } else {
        ctx.wrong_args("acl|genpass");
        return;
    };
    let chars = bits.div_ceil(4);
    let mut raw = vec![0u8; chars.div_ceil(2)];
    if random_bytes(&mut raw).is_err() {
        ctx.out.error("ERR Failed to read from the random source");
        return;
    }
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    ctx.out.bulk(&hex.as_bytes()[..chars]);
}

fn acl_log(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    let count = match args.len() {
        2 => Some(10),
        3 if is(args.get(2), "reset") => {
            ctx.shared.acl.log.lock().reset();
            ctx.out.ok();
            return;
        }
        3 => {
            let Some(n) = int_arg(ctx, args.get(2)) else {
                return;
            };
            // as Redis: a negative count shows nothing
            Some(n.max(0) as usize)
        }
        _ => {
            ctx.syntax_error();
            return;
        }
    };
    let now = magpie_engine::now_ms();
    let entries: Vec<LogEntry> = ctx.shared.acl.log.lock().recent(count).cloned().collect();
    ctx.out.array(entries.len());
    for e in entries {
        ctx.out.map(7);
        ctx.out.bulk(b"count");
        ctx.out.integer(e.count as i64);
        ctx.out.bulk(b"reason");
        ctx.out.bulk(e.reason.name().as_bytes());
        ctx.out.bulk(b"context");
        ctx.out.bulk(e.context.as_bytes());
        ctx.out.bulk(b"object");
        ctx.out.bulk(e.object.as_bytes());
        ctx.out.bulk(b"username");
        ctx.out.bulk(e.username.as_bytes());
        ctx.out.bulk(b"age-seconds");
        ctx.out
            .double(now.saturating_sub(e.last_ms) as f64 / 1000.0);
        ctx.out.bulk(b"client-info");
        ctx.out.bulk(e.client_info.as_bytes());
    }
}

fn acl_dryrun(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    let name = String::from_utf8_lossy(args.get(2)).into_owned();
    let Some(user) = ctx.shared.acl.user(&name) else {
        ctx.out
            .error(&format!("ERR User '{}' not found", sanitize(args.get(2))));
        return;
    };
    let cmd_name = args.get(3);
    let Some((spec, index)) = ctx.commands.lookup_indexed(cmd_name) else {
        ctx.out
            .error(&format!("ERR Command '{}' not found", sanitize(cmd_name)));
        return;
    };
    let words: Vec<&[u8]> = args.iter().skip(3).collect();
    if !spec.arity_ok(words.len()) {
        ctx.wrong_args(spec.name);
        return;
    }
    let catalog = ctx.shared.acl.catalog();
    let index = if catalog.subcommands(index).is_empty() {
        index
    } else {
        match words.get(1).and_then(|s| catalog.subcommand(index, s)) {
            Some(i) => i,
            None => {
                ctx.out
                    .error(&format!("ERR Command '{}' not found", sanitize(cmd_name)));
                return;
            }
        }
    };
    match dry_run(&user, catalog, index, &words) {
        None => ctx.out.ok(),
        Some(text) => ctx.out.bulk(text.as_bytes()),
    }
}

/// ACL DRYRUN's verdict: None when allowed, else Redis's sentence.
fn dry_run(user: &User, catalog: &Catalog, index: u16, words: &[&[u8]]) -> Option<String> {
    match user.check(catalog, index, words) {
        Ok(()) => None,
        Err(Denied::Command) => Some(format!(
            "This user has no permissions to run the '{}' command",
            catalog.get(index).map_or("", |c| c.name)
        )),
        Err(Denied::Key(i)) => Some(format!(
            "This user has no permissions to access the '{}' key",
            String::from_utf8_lossy(words[i])
        )),
        Err(Denied::Channel(i)) => Some(format!(
            "This user has no permissions to access the '{}' channel",
            String::from_utf8_lossy(words[i])
        )),
    }
}

fn acl_help(ctx: &mut Ctx<'_, '_>, _args: Args<'_>) {
    // Redis's lines: two of its descriptions take two lines each
    const LINES: &[&str] = &[
        "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CAT [<category>]",
        "    List all commands that belong to <category>, or all command categories",
        "    when no category is specified.",
        "DELUSER <username> [<username> ...]",
        "    Delete a list of users.",
        "DRYRUN <username> <command> [<arg> ...]",
        "    Returns whether the user can execute the given command without executing the command.",
        "GETUSER <username>",
        "    Get the user's details.",
        "GENPASS [<bits>]",
        "    Generate a secure 256-bit user password. The optional `bits` argument can",
        "    be used to specify a different size.",
        "LIST",
        "    Show users details in config file format.",
        "LOAD",
        "    Reload users from the ACL file.",
        "LOG [<count> | RESET]",
        "    Show the ACL log entries.",
        "SAVE",
        "    Save the current config to the ACL file.",
        "SETUSER <username> <attribute> [<attribute> ...]",
        "    Create or modify a user with the specified attributes.",
        "USERS",
        "    List all the registered usernames.",
        "WHOAMI",
        "    Return the current connection username.",
        "HELP",
        "    Prints this help.",
    ];
    ctx.out.array(LINES.len());
    for l in LINES {
        ctx.out.simple(l);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_has_every_command_and_subcommand_with_redis_categories() {
        let c = catalog();
        let get = c.index("get").unwrap();
        assert_eq!(get, crate::resp::table().lookup_indexed(b"get").unwrap().1);
        let read = category_bit("read").unwrap();
        assert!(c.get(get).unwrap().categories & read != 0);
        let list = c.index("client|list").unwrap();
        assert!(c.get(list).unwrap().categories & category_bit("dangerous").unwrap() != 0);
        assert_eq!(c.get(list).unwrap().parent, c.index("client"));
        let setuser = c.index("acl|setuser").unwrap();
        assert!(c.get(setuser).unwrap().categories & category_bit("admin").unwrap() != 0);
    }

    #[test]
    fn key_access_follows_redis_key_specs() {
        let c = catalog();
        let access = |n: &str| c.get(c.index(n).unwrap()).unwrap().keys[0].access;
        assert_eq!(
            access("get"),
            KeyAccess {
                read: true,
                write: false
            }
        );
        assert_eq!(
            access("incr"),
            KeyAccess {
                read: true,
                write: true
            }
        );
        assert_eq!(
            access("del"),
            KeyAccess {
                read: false,
                write: true
            }
        );
        assert_eq!(
            access("append"),
            KeyAccess {
                read: false,
                write: true
            }
        );
        assert_eq!(access("exists"), KeyAccess::default());
        let mset = &c.get(c.index("mset").unwrap()).unwrap().keys[0];
        assert_eq!(mset.positions(5).collect::<Vec<_>>(), [1, 3]);
    }

    #[test]
    fn selectors_over_several_words_are_merged() {
        let m = merge_selectors(&[b"on", b"(~a", b"+get)", b"(~b)"]).unwrap();
        assert_eq!(m, [&b"on"[..], b"(~a +get)", b"(~b)"]);
        assert!(merge_selectors(&[b"(~a"]).is_err());
    }
}
