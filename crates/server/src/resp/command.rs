//! COMMAND and its subcommands (COUNT, INFO, DOCS, LIST, GETKEYS, HELP):
//! the door's command table as clients and tools read it. The table
//! itself is built in [`crate::resp`] and read here through
//! [`Ctx::commands`].

use magpie_engine::glob::matches_nocase;
use magpie_protocol::resp::{Args, ReplyWriter};

use super::handler::{
    dispatch_subcommand, is, server_subcommand as sub, write_help, CommandSpec, CommandTable, Ctx,
};
use super::redis_docs::REDIS_DOCS;

/// COMMAND's table.
pub const COMMANDS: &[CommandSpec] = &[CommandSpec {
    name: "command",
    arity: -1,
    flags: &["loading", "stale"],
    first_key: 0,
    last_key: 0,
    step: 0,
    group: "server",
    summary: "Returns detailed information about all commands.",
    syntax: "",
    handler: command,
}];

/// COMMAND's subcommands.
pub const COMMAND_SUBCOMMANDS: &[CommandSpec] = &[
    sub(
        "command|count",
        2,
        &["loading", "stale"],
        "Returns a count of commands.",
        "",
        command_count,
    ),
    sub(
        "command|info",
        -2,
        &["loading", "stale"],
        "Returns information about one, multiple or all commands.",
        "[command-name [command-name ...]]",
        command_info,
    ),
    sub(
        "command|docs",
        -2,
        &["loading", "stale"],
        "Returns documentary information about one, multiple or all commands.",
        "[command-name [command-name ...]]",
        command_docs,
    ),
    sub(
        "command|list",
        -2,
        &["loading", "stale"],
        "Returns a list of command names.",
        "[FILTERBY <MODULE module-name | ACLCAT category | PATTERN pattern>]",
        command_list,
    ),
    sub(
        "command|help",
        2,
        &["loading", "stale"],
        "Returns helpful text about the different subcommands.",
        "",
        command_help,
    ),
];

/// Redis's ACL categories in the order Redis lists them.
const CATEGORY_ORDER: &[&str] = &[
    "@keyspace",
    "@read",
    "@write",
    "@set",
    "@sortedset",
    "@list",
    "@hash",
    "@string",
    "@bitmap",
    "@hyperloglog",
    "@geo",
    "@stream",
    "@pubsub",
    "@admin",
    "@fast",
    "@slow",
    "@blocking",
    "@dangerous",
    "@connection",
    "@transaction",
    "@scripting",
];

fn redis_docs(name: &str) -> Option<&'static (&'static str, &'static str, &'static str)> {
    REDIS_DOCS
        .binary_search_by(|(n, _, _)| n.cmp(&name))
        .ok()
        .map(|i| &REDIS_DOCS[i])
}

/// A command's ACL categories: what Redis 7.0 says for its own commands,
/// otherwise derived from the command's flags and group.
pub fn categories(spec: &CommandSpec) -> Vec<&'static str> {
    if let Some((_, _, cats)) = redis_docs(spec.name) {
        return cats.split(' ').filter(|c| !c.is_empty()).collect();
    }
    let has = |f: &str| spec.flags.contains(&f);
    let group = match spec.group {
        "generic" => "@keyspace",
        "string" => "@string",
        "list" => "@list",
        "hash" => "@hash",
        "set" => "@set",
        "sorted-set" => "@sortedset",
        "bitmap" => "@bitmap",
        "hyperloglog" => "@hyperloglog",
        "geo" => "@geo",
        "stream" => "@stream",
        "pubsub" => "@pubsub",
        "connection" => "@connection",
        "transactions" => "@transaction",
        "scripting" => "@scripting",
        _ => "",
    };
    let wanted = |c: &str| match c {
        "@read" => has("readonly"),
        "@write" => has("write"),
        "@admin" => has("admin"),
        // tag invalidation and listing reach keys by tag, not by name, so
        // key patterns cannot limit them (as with FLUSHDB and SCAN): they
        // are dangerous, as FLUSHDB is, and keyspace commands
        "@dangerous" => has("admin") || REACHES_KEYS_BY_TAG.contains(&spec.name),
        "@keyspace" if REACHES_KEYS_BY_TAG.contains(&spec.name) => true,
        "@fast" => has("fast"),
        "@slow" => !has("fast"),
        "@blocking" => has("blocking"),
        other => other == group,
    };
    CATEGORY_ORDER
        .iter()
        .copied()
        .filter(|c| wanted(c))
        .collect()
}

/// Commands that reach keys through a tag or a prefix rather than by name.
const REACHES_KEYS_BY_TAG: &[&str] = &["invalidate|tag", "invalidate|prefix", "tag|scan"];

/// Finds a command or `parent|sub` subcommand by name, ignoring case.
fn find_command(t: &CommandTable, name: &[u8]) -> Option<&'static CommandSpec> {
    let lower = String::from_utf8_lossy(name).to_ascii_lowercase();
    match lower.split_once('|') {
        None => t.lookup(name),
        Some((parent, _)) => t.subcommands(parent).iter().find(|s| s.name == lower),
    }
}

fn write_command_info(t: &CommandTable, out: &mut ReplyWriter<'_>, spec: &CommandSpec) {
    let subs = t.subcommands(spec.name);
    out.array(10);
    out.bulk(spec.name.as_bytes());
    out.integer(spec.arity as i64);
    out.set(spec.flags.len());
    for f in spec.flags {
        out.simple(f);
    }
    out.integer(spec.first_key as i64);
    out.integer(spec.last_key as i64);
    out.integer(spec.step as i64);
    let cats = categories(spec);
    out.set(cats.len());
    for c in cats {
        out.simple(c);
    }
    out.set(0); // tips
    out.set(0); // key specifications: not modelled by magpie's tables
    out.set(subs.len());
    for s in subs {
        write_command_info(t, out, s);
    }
}

fn write_command_docs(t: &CommandTable, out: &mut ReplyWriter<'_>, spec: &CommandSpec) {
    let subs = t.subcommands(spec.name);
    let since = redis_docs(spec.name).map(|(_, since, _)| *since);
    // as Redis: no `arguments` field for a command without arguments
    let args = super::command_docs::arguments(spec.name).unwrap_or(&[]);
    out.map(2 + since.is_some() as usize + !args.is_empty() as usize + !subs.is_empty() as usize);
    out.bulk(b"summary");
    out.bulk(spec.summary.as_bytes());
    if let Some(since) = since {
        out.bulk(b"since");
        out.bulk(since.as_bytes());
    }
    out.bulk(b"group");
    out.bulk(spec.group.as_bytes());
    if !args.is_empty() {
        out.bulk(b"arguments");
        super::command_docs::write_arguments(out, args);
    }
    if !subs.is_empty() {
        out.bulk(b"subcommands");
        out.map(subs.len());
        for s in subs {
            out.bulk(s.name.as_bytes());
            write_command_docs(t, out, s);
        }
    }
}

fn all_command_info(t: &CommandTable, out: &mut ReplyWriter<'_>) {
    out.array(t.len());
    for spec in t.all() {
        write_command_info(t, out, spec);
    }
}

fn command(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    if args.len() == 1 {
        all_command_info(ctx.commands, ctx.out);
        return;
    }
    dispatch_subcommand(ctx, args, "command", COMMAND_SUBCOMMANDS);
}

fn command_count(ctx: &mut Ctx<'_, '_>, _args: Args<'_>) {
    ctx.out.integer(ctx.commands.len() as i64);
}

fn command_info(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    if args.len() == 2 {
        all_command_info(ctx.commands, ctx.out);
        return;
    }
    ctx.out.array(args.len() - 2);
    for name in args.iter().skip(2) {
        match find_command(ctx.commands, name) {
            Some(spec) => write_command_info(ctx.commands, ctx.out, spec),
            None => ctx.out.null(),
        }
    }
}

fn command_docs(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    let specs: Vec<&CommandSpec> = if args.len() == 2 {
        ctx.commands.all().collect()
    } else {
        args.iter()
            .skip(2)
            .filter_map(|n| find_command(ctx.commands, n))
            .collect()
    };
    ctx.out.map(specs.len());
    for spec in specs {
        ctx.out.bulk(spec.name.as_bytes());
        write_command_docs(ctx.commands, ctx.out, spec);
    }
}

fn command_list(ctx: &mut Ctx<'_, '_>, args: Args<'_>) {
    enum Filter<'a> {
        All,
        Module,
        Category(String),
        Pattern(&'a [u8]),
    }
    let filter = match args.len() {
        2 => Filter::All,
        5 if is(args.get(2), "filterby") => {
            let (kind, value) = (args.get(3), args.get(4));
            if is(kind, "module") {
                Filter::Module
            } else if is(kind, "aclcat") {
                Filter::Category(format!(
                    "@{}",
                    String::from_utf8_lossy(value).to_ascii_lowercase()
                ))
            } else if is(kind, "pattern") {
                Filter::Pattern(value)
            } else {
                ctx.syntax_error();
                return;
            }
        }
        _ => {
            ctx.syntax_error();
            return;
        }
    };
    let keep = |spec: &CommandSpec| match &filter {
        Filter::All => true,
        Filter::Module => false,
        Filter::Category(c) => categories(spec).contains(&c.as_str()),
        Filter::Pattern(p) => matches_nocase(p, spec.name.as_bytes()),
    };
    let t = ctx.commands;
    let names: Vec<&str> = t
        .all()
        .flat_map(|c| std::iter::once(c).chain(t.subcommands(c.name)))
        .filter(|c| keep(c))
        .map(|c| c.name)
        .collect();
    ctx.out.array(names.len());
    for n in names {
        ctx.out.bulk(n.as_bytes());
    }
}

fn command_help(ctx: &mut Ctx<'_, '_>, _args: Args<'_>) {
    write_help(
        ctx.out,
        "COMMAND",
        &[
            ("(no subcommand)", "Return details about all commands."),
            (
                "COUNT",
                "Return the total number of commands in this server.",
            ),
            ("LIST", "Return a list of all commands in this server."),
            (
                "INFO [<command-name> ...]",
                "Return details about multiple commands.",
            ),
            (
                "DOCS [<command-name> ...]",
                "Return documentation details about multiple commands.",
            ),
        ],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_docs_are_sorted_for_binary_search() {
        assert!(REDIS_DOCS.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(redis_docs("get").map(|d| d.1), Some("1.0.0"));
        assert_eq!(redis_docs("client|id").map(|d| d.1), Some("5.0.0"));
        assert!(redis_docs("nosuch").is_none());
    }

    #[test]
    fn derived_categories_follow_flags_and_group() {
        let spec = CommandSpec {
            name: "magpie-only",
            arity: 2,
            flags: &["write", "fast"],
            first_key: 1,
            last_key: 1,
            step: 1,
            group: "string",
            summary: "",
            syntax: "",
            handler: |_, _| {},
        };
        assert_eq!(categories(&spec), ["@write", "@string", "@fast"]);
        let get = crate::resp::lookup(b"get").unwrap();
        assert_eq!(categories(get), ["@read", "@string", "@fast"]);
    }
}
