//! What the ACL must know of the commands it guards: each command's ACL
//! categories and which of its arguments are keys, read or written. The
//! RESP door builds the [`Catalog`] from its command table (the other doors
//! name the RESP command each of their requests is equivalent to), so this
//! room knows no protocol.

use std::collections::HashMap;

/// Redis 7.0's ACL categories, in the order Redis lists them (`ACL CAT`,
/// and the order `ACL LIST` describes category rules in). A command's
/// categories are a bit set over this list.
pub const CATEGORIES: [&str; 21] = [
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

/// The bit of a category (named without `@`, any case) in a command's
/// category set.
pub fn category_bit(name: &str) -> Option<u32> {
    CATEGORIES
        .iter()
        .position(|c| c.eq_ignore_ascii_case(name))
        .map(|i| 1 << i)
}

/// How a command uses the keys in a range of its arguments, as Redis 7.0's
/// key specifications say: `read` for `ACCESS` (the value is read or
/// returned), `write` for `INSERT`, `UPDATE` or `DELETE`. `%R~` patterns
/// grant the first, `%W~` the second, `~` both.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyAccess {
    /// The command reads the key's value.
    pub read: bool,
    /// The command changes the key.
    pub write: bool,
}

/// Where some of a command's keys are: arguments `first..=last` (a
/// negative `last` counts from the end, -1 the last argument) every
/// `step`, all used with the same [`KeyAccess`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyRange {
    /// First key argument (1 = the first argument after the name).
    pub first: i32,
    /// Last key argument (negative: from the end).
    pub last: i32,
    /// Distance between keys.
    pub step: i32,
    /// How these keys are used.
    pub access: KeyAccess,
}

impl KeyRange {
    /// The key argument indexes of a request of `argc` arguments (the name
    /// included).
    pub fn positions(&self, argc: usize) -> impl Iterator<Item = usize> {
        let argc = argc as i64;
        let first = self.first as i64;
        let last = if self.last < 0 {
            argc + self.last as i64
        } else {
            (self.last as i64).min(argc - 1)
        };
        let step = self.step.max(1) as usize;
        let range = if first >= 1 && last >= first {
            first as usize..last as usize + 1
        } else {
            0..0
        };
        range.step_by(step)
    }
}

/// Which arguments of a pub/sub command are channels (checked against the
/// user's `&` patterns).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ChannelArgs {
    /// None.
    #[default]
    None,
    /// The first argument (PUBLISH, SPUBLISH).
    First,
    /// Every argument (SUBSCRIBE, SSUBSCRIBE).
    All,
    /// Every argument, each a pattern that must equal one of the user's
    /// patterns (PSUBSCRIBE, as Redis 7.0 checks it).
    AllPatterns,
}

/// One command or subcommand as the ACL sees it.
#[derive(Clone, Debug)]
pub struct CommandAcl {
    /// Redis's full name, lowercase (`get`, `client|list`).
    pub name: &'static str,
    /// Bit set over [`CATEGORIES`].
    pub categories: u32,
    /// Where its keys are.
    pub keys: Vec<KeyRange>,
    /// Reachable without authentication (AUTH, HELLO, QUIT): never refused.
    pub no_auth: bool,
    /// Its channel arguments.
    pub channels: ChannelArgs,
    /// The container command of a subcommand.
    pub parent: Option<u16>,
}

/// Every command the ACL guards, indexed: the RESP door's top-level
/// commands first, at their command-table indexes (so a request pays no
/// second lookup), then every subcommand.
#[derive(Debug, Default)]
pub struct Catalog {
    commands: Vec<CommandAcl>,
    by_name: HashMap<&'static str, u16>,
    subcommands: HashMap<u16, Vec<u16>>,
}

impl Catalog {
    /// Indexes `commands` in their order; subcommands (`parent|sub`) must
    /// come after their parent.
    pub fn new(commands: Vec<CommandAcl>) -> Catalog {
        let mut by_name = HashMap::new();
        let mut subcommands: HashMap<u16, Vec<u16>> = HashMap::new();
        let mut list = Vec::with_capacity(commands.len());
        for (i, mut c) in commands.into_iter().enumerate() {
            let i = i as u16;
            if let Some((parent, _)) = c.name.split_once('|') {
                if let Some(&p) = by_name.get(parent) {
                    c.parent = Some(p);
                    subcommands.entry(p).or_default().push(i);
                }
            }
            by_name.insert(c.name, i);
            list.push(c);
        }
        Catalog {
            commands: list,
            by_name,
            subcommands,
        }
    }

    /// How many commands and subcommands there are.
    pub fn len(&self) -> usize {
        self.commands.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.commands.is_empty()
    }

    /// The command at `index`.
    pub fn get(&self, index: u16) -> Option<&CommandAcl> {
        self.commands.get(index as usize)
    }

    /// Every command with its index, in catalog order.
    pub fn iter(&self) -> impl Iterator<Item = (u16, &CommandAcl)> {
        self.commands.iter().enumerate().map(|(i, c)| (i as u16, c))
    }

    /// The index of a command or `parent|sub` by name, ignoring case.
    pub fn index(&self, name: &str) -> Option<u16> {
        if name.bytes().any(|b| b.is_ascii_uppercase()) {
            self.by_name
                .get(name.to_ascii_lowercase().as_str())
                .copied()
        } else {
            self.by_name.get(name).copied()
        }
    }

    /// The subcommands of the command at `index` (empty for most).
    pub fn subcommands(&self, index: u16) -> &[u16] {
        self.subcommands.get(&index).map_or(&[], |v| v.as_slice())
    }

    /// The subcommand `sub` (any case) of the container at `parent`.
    pub fn subcommand(&self, parent: u16, sub: &[u8]) -> Option<u16> {
        let parent_name = self.get(parent)?.name;
        self.subcommands(parent).iter().copied().find(|&i| {
            self.commands[i as usize]
                .name
                .strip_prefix(parent_name)
                .and_then(|s| s.strip_prefix('|'))
                .is_some_and(|s| s.as_bytes().eq_ignore_ascii_case(sub))
        })
    }

    /// Every command (and subcommand) in a category bit.
    pub fn in_category(&self, bit: u32) -> impl Iterator<Item = u16> + '_ {
        self.iter()
            .filter(move |(_, c)| c.categories & bit != 0)
            .map(|(i, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(name: &'static str, cats: &[&str]) -> CommandAcl {
        CommandAcl {
            name,
            categories: cats.iter().map(|c| category_bit(c).unwrap()).sum(),
            keys: Vec::new(),
            no_auth: false,
            channels: ChannelArgs::None,
            parent: None,
        }
    }

    #[test]
    fn categories_are_redis_ordered_bits() {
        assert_eq!(category_bit("keyspace"), Some(1));
        assert_eq!(category_bit("READ"), Some(2));
        assert_eq!(category_bit("scripting"), Some(1 << 20));
        assert_eq!(category_bit("nosuch"), None);
    }

    #[test]
    fn subcommands_are_found_under_their_parent() {
        let c = Catalog::new(vec![
            cmd("get", &["read"]),
            cmd("client", &["slow"]),
            cmd("client|id", &["connection"]),
            cmd("client|list", &["admin"]),
        ]);
        assert_eq!(c.index("GET"), Some(0));
        assert_eq!(c.subcommands(1), &[2, 3]);
        assert_eq!(c.subcommand(1, b"LIST"), Some(3));
        assert_eq!(c.subcommand(1, b"nosuch"), None);
        assert_eq!(c.get(3).unwrap().parent, Some(1));
        assert_eq!(
            c.in_category(category_bit("read").unwrap())
                .collect::<Vec<_>>(),
            [0]
        );
    }

    #[test]
    fn key_positions_follow_first_last_step() {
        let r = |first, last, step| KeyRange {
            first,
            last,
            step,
            access: KeyAccess::default(),
        };
        assert_eq!(r(1, 1, 1).positions(3).collect::<Vec<_>>(), [1]);
        assert_eq!(r(1, -1, 1).positions(4).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(r(1, -1, 2).positions(5).collect::<Vec<_>>(), [1, 3]);
        assert_eq!(r(2, 2, 1).positions(3).collect::<Vec<_>>(), [2]);
        assert_eq!(r(2, 2, 1).positions(2).count(), 0);
        assert_eq!(r(0, 0, 0).positions(5).count(), 0);
    }
}
