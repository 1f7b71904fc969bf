//! The `arguments` part of `COMMAND DOCS`: each command's argument tree in
//! Redis 7's shape, which redis-cli (7.0 and later) and `magpie cli` turn
//! into the grey hints they show while a command is typed.
//!
//! The trees are a table (`table::ARGUMENTS`) generated from a real
//! redis-server 7.0 by `scripts/gen-command-args.py`, rather than parsed
//! from each command's `syntax` string: the syntax strings carry neither
//! argument types (`integer`, `unix-time`, `pattern`...) nor the names
//! Redis gives to groups (`condition`, `expiration`), and clients read
//! both. A test keeps the two in step: every served command has a row, and
//! rendering its tree in redis.io's synopsis style gives its `syntax`.

mod magpie;
mod table;

use magpie_protocol::resp::ReplyWriter;

/// An argument's `type` as COMMAND DOCS names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `key`: a key name (with a `key_spec_index`).
    Key,
    /// `string`.
    Str,
    /// `integer`.
    Int,
    /// `double`.
    Double,
    /// `pattern`: a glob-style pattern.
    Pattern,
    /// `unix-time`: a Unix timestamp.
    UnixTime,
    /// `pure-token`: the token alone, no value.
    Token,
    /// `oneof`: exactly one of the nested arguments.
    OneOf,
    /// `block`: the nested arguments in order.
    Block,
}

impl Kind {
    /// The name Redis uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Key => "key",
            Kind::Str => "string",
            Kind::Int => "integer",
            Kind::Double => "double",
            Kind::Pattern => "pattern",
            Kind::UnixTime => "unix-time",
            Kind::Token => "pure-token",
            Kind::OneOf => "oneof",
            Kind::Block => "block",
        }
    }
}

/// One argument of a command, with the fields Redis 7.0 reports.
#[derive(Clone, Copy, Debug)]
pub struct Arg {
    /// `name`.
    pub name: &'static str,
    /// `type`.
    pub kind: Kind,
    /// `key_spec_index` (keys only).
    pub key_spec_index: Option<i64>,
    /// `token`: the literal word before the value (`EX`), or the whole
    /// argument for a pure token.
    pub token: Option<&'static str>,
    /// `since`: the version that added the argument.
    pub since: Option<&'static str>,
    /// `deprecated_since`.
    pub deprecated_since: Option<&'static str>,
    /// `optional` flag.
    pub optional: bool,
    /// `multiple` flag: may repeat.
    pub multiple: bool,
    /// `multiple_token` flag: the token repeats with each value.
    pub multiple_token: bool,
    /// Nested arguments of a `oneof` or `block`.
    pub args: &'static [Arg],
}

impl Arg {
    /// A bare argument; the builders below add the rest.
    pub const fn new(name: &'static str, kind: Kind) -> Arg {
        Arg {
            name,
            kind,
            key_spec_index: None,
            token: None,
            since: None,
            deprecated_since: None,
            optional: false,
            multiple: false,
            multiple_token: false,
            args: &[],
        }
    }

    /// Sets `key_spec_index`.
    pub const fn key_spec(self, i: i64) -> Arg {
        Arg {
            key_spec_index: Some(i),
            ..self
        }
    }

    /// Sets `token`.
    pub const fn token(self, t: &'static str) -> Arg {
        Arg {
            token: Some(t),
            ..self
        }
    }

    /// Sets `since`.
    pub const fn since(self, v: &'static str) -> Arg {
        Arg {
            since: Some(v),
            ..self
        }
    }

    /// Sets `deprecated_since`.
    pub const fn deprecated_since(self, v: &'static str) -> Arg {
        Arg {
            deprecated_since: Some(v),
            ..self
        }
    }

    /// Adds the `optional` flag.
    pub const fn optional(self) -> Arg {
        Arg {
            optional: true,
            ..self
        }
    }

    /// Adds the `multiple` flag.
    pub const fn multiple(self) -> Arg {
        Arg {
            multiple: true,
            ..self
        }
    }

    /// Adds the `multiple_token` flag.
    pub const fn multiple_token(self) -> Arg {
        Arg {
            multiple_token: true,
            ..self
        }
    }

    /// Sets the nested arguments.
    pub const fn args(self, args: &'static [Arg]) -> Arg {
        Arg { args, ..self }
    }

    fn flags(&self) -> Vec<&'static str> {
        [
            (self.optional, "optional"),
            (self.multiple, "multiple"),
            (self.multiple_token, "multiple_token"),
        ]
        .into_iter()
        .filter(|(on, _)| *on)
        .map(|(_, f)| f)
        .collect()
    }

    fn nested(&self) -> bool {
        matches!(self.kind, Kind::OneOf | Kind::Block)
    }
}

/// The argument tree of a command or `parent|sub` subcommand (lowercase
/// name), or None for a command the table lacks.
pub fn arguments(name: &str) -> Option<&'static [Arg]> {
    let own = magpie::ARGUMENTS.binary_search_by(|(n, _)| n.cmp(&name));
    if let Ok(i) = own {
        return Some(magpie::ARGUMENTS[i].1);
    }
    table::ARGUMENTS
        .binary_search_by(|(n, _)| n.cmp(&name))
        .ok()
        .map(|i| table::ARGUMENTS[i].1)
}

/// Writes an `arguments` array as Redis 7.0 does: one map per argument
/// with `name`, `type`, then `key_spec_index`, `token`, `since`,
/// `deprecated_since`, `flags` (a set) and `arguments` when present.
pub fn write_arguments(out: &mut ReplyWriter<'_>, args: &[Arg]) {
    out.array(args.len());
    for a in args {
        let flags = a.flags();
        let fields = 2
            + a.key_spec_index.is_some() as usize
            + a.token.is_some() as usize
            + a.since.is_some() as usize
            + a.deprecated_since.is_some() as usize
            + !flags.is_empty() as usize
            + a.nested() as usize;
        out.map(fields);
        out.bulk(b"name");
        out.bulk(a.name.as_bytes());
        out.bulk(b"type");
        out.bulk(a.kind.as_str().as_bytes());
        if let Some(i) = a.key_spec_index {
            out.bulk(b"key_spec_index");
            out.integer(i);
        }
        for (field, value) in [
            ("token", a.token),
            ("since", a.since),
            ("deprecated_since", a.deprecated_since),
        ] {
            if let Some(v) = value {
                out.bulk(field.as_bytes());
                out.bulk(v.as_bytes());
            }
        }
        if !flags.is_empty() {
            out.bulk(b"flags");
            out.set(flags.len());
            for f in flags {
                out.simple(f);
            }
        }
        if a.nested() {
            out.bulk(b"arguments");
            write_arguments(out, a.args);
        }
    }
}

/// Renders arguments as the redis.io command pages write a synopsis (and
/// as magpie's `syntax` strings are written): `key [key ...]`,
/// `[NX | XX]`, `<ON | OFF>`, `[EX seconds | PX milliseconds]`; tokens
/// in capitals.
pub fn synopsis(args: &[Arg]) -> String {
    args.iter().map(arg_synopsis).collect::<Vec<_>>().join(" ")
}

fn arg_synopsis(a: &Arg) -> String {
    let body = match a.kind {
        Kind::Token => a.token.unwrap_or(a.name).to_ascii_uppercase(),
        Kind::OneOf => {
            let alts = a
                .args
                .iter()
                .map(arg_synopsis)
                .collect::<Vec<_>>()
                .join(" | ");
            // `[NX | XX]` when the brackets alone enclose the choice
            if a.optional && a.token.is_none() && !a.multiple && !a.multiple_token {
                alts
            } else {
                format!("<{alts}>")
            }
        }
        Kind::Block => synopsis(a.args),
        _ => a.name.to_string(),
    };
    // a token with a value: the token once, then the value (repeated)
    let value_token = a.token.filter(|_| a.kind != Kind::Token);
    let value_token = value_token.map(str::to_ascii_uppercase);
    let one = match &value_token {
        Some(t) => format!("{t} {body}"),
        None => body.clone(),
    };
    let s = match (a.multiple, a.multiple_token, value_token) {
        (_, true, _) | (true, false, None) => format!("{one} [{one} ...]"),
        (true, false, Some(t)) => format!("{t} {body} [{body} ...]"),
        (false, false, _) => one,
    };
    if a.optional {
        format!("[{s}]")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use magpie_protocol::resp::Proto;

    fn all_names() -> Vec<&'static str> {
        crate::resp::all()
            .flat_map(|c| {
                std::iter::once(c.name).chain(
                    crate::resp::table()
                        .subcommands(c.name)
                        .iter()
                        .map(|s| s.name),
                )
            })
            .collect()
    }

    #[test]
    fn table_is_sorted_and_covers_every_served_command() {
        assert!(table::ARGUMENTS.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(magpie::ARGUMENTS.windows(2).all(|w| w[0].0 < w[1].0));
        let names = all_names();
        for name in &names {
            assert!(
                arguments(name).is_some(),
                "{name} has no row in command_docs/table.rs: rerun scripts/gen-command-args.py"
            );
        }
        for (name, _) in table::ARGUMENTS.iter().chain(magpie::ARGUMENTS) {
            assert!(
                names.contains(name),
                "{name} is in the table but not served"
            );
        }
        assert!(arguments("nosuch").is_none());
    }

    #[test]
    fn syntax_strings_agree_with_the_argument_trees() {
        let specs = crate::resp::all().flat_map(|c| {
            std::iter::once(c).chain(crate::resp::table().subcommands(c.name).iter())
        });
        let mut wrong = Vec::new();
        for spec in specs {
            let from_tree = synopsis(arguments(spec.name).unwrap_or(&[]));
            if from_tree != spec.syntax {
                wrong.push(format!(
                    "{}: syntax {:?}, arguments say {:?}",
                    spec.name, spec.syntax, from_tree
                ));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn synopsis_forms() {
        let set = arguments("set").unwrap();
        assert_eq!(
            synopsis(set),
            "key value [NX | XX] [GET] [EX seconds | PX milliseconds | EXAT unix-time-seconds | PXAT unix-time-milliseconds | KEEPTTL] [TAGS tag [tag ...]]"
        );
        assert_eq!(
            synopsis(arguments("tag|scan").unwrap()),
            "tag cursor [COUNT count] [WITHVALUES]"
        );
        assert_eq!(synopsis(arguments("del").unwrap()), "key [key ...]");
        assert_eq!(
            synopsis(arguments("client|no-evict").unwrap()),
            "<ON | OFF>"
        );
        assert_eq!(
            synopsis(arguments("client|list").unwrap()),
            "[TYPE <NORMAL | MASTER | REPLICA | PUBSUB>] [ID client-id [client-id ...]]"
        );
        const TOKEN_REPEATS: &[Arg] = &[Arg::new("prefix", Kind::Str)
            .token("PREFIX")
            .optional()
            .multiple()
            .multiple_token()];
        assert_eq!(
            synopsis(TOKEN_REPEATS),
            "[PREFIX prefix [PREFIX prefix ...]]"
        );
        const VALUES_REPEAT: &[Arg] = &[Arg::new("key", Kind::Key).token("KEYS").multiple()];
        assert_eq!(synopsis(VALUES_REPEAT), "KEYS key [key ...]");
    }

    #[test]
    fn arguments_are_written_in_redis_shape() {
        let mut buf = Vec::new();
        let mut out = ReplyWriter::new(&mut buf, Proto::Resp3);
        write_arguments(&mut out, &arguments("get").unwrap()[..1]);
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "*1\r\n%3\r\n$4\r\nname\r\n$3\r\nkey\r\n$4\r\ntype\r\n$3\r\nkey\r\n$14\r\nkey_spec_index\r\n:0\r\n"
        );
        let mut buf = Vec::new();
        let mut out = ReplyWriter::new(&mut buf, Proto::Resp2);
        const GET: &[Arg] = &[Arg::new("get", Kind::Token)
            .token("GET")
            .since("6.2.0")
            .optional()];
        write_arguments(&mut out, GET);
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "*1\r\n*10\r\n$4\r\nname\r\n$3\r\nget\r\n$4\r\ntype\r\n$10\r\npure-token\r\n$5\r\ntoken\r\n$3\r\nGET\r\n$5\r\nsince\r\n$5\r\n6.2.0\r\n$5\r\nflags\r\n*1\r\n+optional\r\n"
        );
    }
}
