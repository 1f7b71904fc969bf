//! One ACL user as Redis 7.0 models it: enabled or not, its password
//! hashes, and its selectors (the root one and any `(...)` added), each a
//! set of allowed commands, key patterns and channel patterns. Rules are
//! applied as `ACL SETUSER` and the aclfile give them, and described back
//! in the form `ACL LIST` prints and the aclfile stores.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::catalog::{category_bit, Catalog, KeyAccess, KeyRange, CATEGORIES};
use magpie_engine::glob::matches as glob_matches;

/// A SHA-256 password hash, as stored (`#<hex>` in the aclfile).
pub type PasswordHash = [u8; 32];

/// The SHA-256 of a password.
pub fn hash_password(password: &[u8]) -> PasswordHash {
    Sha256::digest(password).into()
}

/// Lowercase hex of a hash, as `ACL LIST` shows it.
pub fn hex(hash: &PasswordHash) -> String {
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_hex_hash(s: &[u8]) -> Option<PasswordHash> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in s.chunks(2).enumerate() {
        let digit = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

/// Why a rule was refused: Redis's text after
/// `ERR Error in ACL SETUSER modifier '<rule>': `.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleError(pub &'static str);

const SYNTAX: RuleError = RuleError("Syntax error");
const UNKNOWN: RuleError = RuleError("Unknown command or category name in ACL");
const BAD_HASH: RuleError = RuleError(
    "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters",
);
const NO_SUCH_PASSWORD: RuleError =
    RuleError("The password you are trying to remove from the user does not exist");
const KEY_AFTER_ALL: RuleError = RuleError(
    "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns",
);
const CHANNEL_AFTER_ALL: RuleError = RuleError(
    "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels",
);
const SELECTOR_PAREN: RuleError =
    RuleError("Unmatched parenthesis in acl selector starting at '('.");

/// A key pattern and what it grants (`~` both, `%R~` read, `%W~` write).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPattern {
    /// Grants reading the keys it matches.
    pub read: bool,
    /// Grants changing them.
    pub write: bool,
    /// Redis glob.
    pub pattern: Vec<u8>,
}

impl KeyPattern {
    fn describe(&self) -> String {
        let p = String::from_utf8_lossy(&self.pattern);
        match (self.read, self.write) {
            (true, true) => format!("~{p}"),
            (true, false) => format!("%R~{p}"),
            _ => format!("%W~{p}"),
        }
    }
}

/// One set of permissions; a user may run a command when any of its
/// selectors allows it whole (the command, every key, every channel).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selector {
    /// Allowed command indexes in the [`Catalog`], one bit each.
    allowed: Vec<u64>,
    /// `+@all` since the last `-@all`: commands added later are allowed
    /// too (Redis's "future commands" bit).
    future: bool,
    /// `+@all` and nothing taken away since (Redis skips the command
    /// check then).
    all_commands: bool,
    /// `~*` / `allkeys`.
    pub all_keys: bool,
    /// Key patterns (empty with `all_keys`).
    pub keys: Vec<KeyPattern>,
    /// `&*` / `allchannels`.
    pub all_channels: bool,
    /// Channel patterns (empty with `all_channels`).
    pub channels: Vec<Vec<u8>>,
}

/// Why a selector (or a user) refuses a command, ordered as Redis ranks
/// them: with several selectors the highest is reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Denied {
    /// The command is not allowed.
    Command,
    /// The key at this argument index is not allowed.
    Key(usize),
    /// The channel at this argument index is not allowed.
    Channel(usize),
}

impl Selector {
    /// Nothing allowed (`resetkeys resetchannels -@all`).
    pub fn empty(catalog: &Catalog) -> Selector {
        Selector {
            allowed: vec![0; catalog.len().div_ceil(64)],
            future: false,
            all_commands: false,
            all_keys: false,
            keys: Vec::new(),
            all_channels: false,
            channels: Vec::new(),
        }
    }

    fn bit(&self, i: u16) -> bool {
        self.allowed
            .get(i as usize / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    fn set_bit(&mut self, i: u16, on: bool) {
        if let Some(w) = self.allowed.get_mut(i as usize / 64) {
            if on {
                *w |= 1 << (i % 64);
            } else {
                *w &= !(1 << (i % 64));
            }
        }
    }

    /// Allows or forbids a command and, for a container, all its
    /// subcommands (Redis's `ACLChangeSelectorPerm`).
    fn change(&mut self, catalog: &Catalog, i: u16, on: bool) {
        self.set_bit(i, on);
        for &s in catalog.subcommands(i) {
            self.set_bit(s, on);
        }
    }

    fn set_category(&mut self, catalog: &Catalog, bit: u32, on: bool) {
        let hits: Vec<u16> = catalog.in_category(bit).collect();
        for i in hits {
            self.change(catalog, i, on);
        }
    }

    fn set_all(&mut self, on: bool) {
        for w in &mut self.allowed {
            *w = if on { u64::MAX } else { 0 };
        }
        self.future = on;
        self.all_commands = on;
    }

    /// True when the selector allows every command on every key and
    /// channel (what a user needs for the per-request check to be skipped).
    pub fn unrestricted(&self) -> bool {
        self.all_commands && self.all_keys && self.all_channels
    }

    /// Applies one selector rule (everything but the user-level ones).
    pub fn apply(&mut self, catalog: &Catalog, rule: &[u8]) -> Result<(), RuleError> {
        let lower = rule.to_ascii_lowercase();
        match lower.as_slice() {
            b"allkeys" | b"~*" => {
                self.all_keys = true;
                self.keys.clear();
                return Ok(());
            }
            b"resetkeys" => {
                self.all_keys = false;
                self.keys.clear();
                return Ok(());
            }
            b"allchannels" | b"&*" => {
                self.all_channels = true;
                self.channels.clear();
                return Ok(());
            }
            b"resetchannels" => {
                self.all_channels = false;
                self.channels.clear();
                return Ok(());
            }
            b"allcommands" | b"+@all" => {
                self.set_all(true);
                return Ok(());
            }
            b"nocommands" | b"-@all" => {
                self.set_all(false);
                return Ok(());
            }
            _ => {}
        }
        match rule.first() {
            Some(b'~') | Some(b'%') => self.add_key_pattern(rule),
            Some(b'&') => {
                if self.all_channels {
                    return Err(CHANNEL_AFTER_ALL);
                }
                let p = rule[1..].to_vec();
                if !self.channels.contains(&p) {
                    self.channels.push(p);
                }
                Ok(())
            }
            Some(&sign @ (b'+' | b'-')) => {
                let on = sign == b'+';
                let name = std::str::from_utf8(&rule[1..]).map_err(|_| UNKNOWN)?;
                if let Some(cat) = name.strip_prefix('@') {
                    let bit = category_bit(cat).ok_or(UNKNOWN)?;
                    self.set_category(catalog, bit, on);
                } else {
                    let i = catalog.index(name).ok_or(UNKNOWN)?;
                    self.change(catalog, i, on);
                }
                if !on {
                    self.all_commands = false;
                }
                Ok(())
            }
            _ => Err(SYNTAX),
        }
    }

    fn add_key_pattern(&mut self, rule: &[u8]) -> Result<(), RuleError> {
        if self.all_keys {
            return Err(KEY_AFTER_ALL);
        }
        let (read, write, pattern) = if rule[0] == b'~' {
            (true, true, &rule[1..])
        } else {
            let (mut read, mut write) = (false, false);
            let mut at = 1;
            loop {
                match rule.get(at).map(u8::to_ascii_uppercase) {
                    Some(b'R') if !read => read = true,
                    Some(b'W') if !write => write = true,
                    Some(b'~') => {
                        at += 1;
                        break;
                    }
                    _ => return Err(SYNTAX),
                }
                at += 1;
            }
            if !read && !write {
                return Err(SYNTAX);
            }
            (read, write, &rule[at..])
        };
        if read && write && pattern == b"*" {
            self.all_keys = true;
            self.keys.clear();
            return Ok(());
        }
        let p = KeyPattern {
            read,
            write,
            pattern: pattern.to_vec(),
        };
        if !self.keys.contains(&p) {
            self.keys.push(p);
        }
        Ok(())
    }

    /// Whether this selector lets the command at `index` run with `args`
    /// (every argument, the name first): Redis's `ACLSelectorCheckCmd`.
    pub fn check(&self, catalog: &Catalog, index: u16, args: &[&[u8]]) -> Result<(), Denied> {
        let Some(cmd) = catalog.get(index) else {
            return Err(Denied::Command);
        };
        if !self.all_commands && !cmd.no_auth && !self.bit(index) {
            return Err(Denied::Command);
        }
        if !self.all_keys {
            for (pos, access) in key_positions(cmd, args) {
                if !self.key_allowed(args[pos], access) {
                    return Err(Denied::Key(pos));
                }
            }
        }
        if !self.all_channels {
            use super::catalog::ChannelArgs;
            let (range, literal) = match cmd.channels {
                ChannelArgs::None => (0..0, false),
                ChannelArgs::First => (1..args.len().min(2), false),
                ChannelArgs::All => (1..args.len(), false),
                ChannelArgs::AllPatterns => (1..args.len(), true),
            };
            for pos in range {
                let ok = if literal {
                    self.channels.iter().any(|p| p.as_slice() == args[pos])
                } else {
                    self.channel_allowed(args[pos])
                };
                if !ok {
                    return Err(Denied::Channel(pos));
                }
            }
        }
        Ok(())
    }

    /// Whether a key may be used as `access` says.
    pub fn key_allowed(&self, key: &[u8], access: KeyAccess) -> bool {
        self.all_keys
            || self.keys.iter().any(|p| {
                (p.read || !access.read)
                    && (p.write || !access.write)
                    && glob_matches(&p.pattern, key)
            })
    }

    /// Whether a channel may be used (published to or subscribed).
    pub fn channel_allowed(&self, channel: &[u8]) -> bool {
        self.all_channels || self.channels.iter().any(|p| glob_matches(p, channel))
    }

    /// The command rules as Redis 7.0 describes them: `+@all` or `-@all`,
    /// then each category that moves closer to the selector's commands,
    /// then the single commands that still differ.
    pub fn describe_commands(&self, catalog: &Catalog) -> String {
        let mut fake = Selector::empty(catalog);
        let mut rules = Vec::new();
        let additive = !self.future;
        if additive {
            rules.push("-@all".to_string());
        } else {
            rules.push("+@all".to_string());
            fake.set_all(true);
        }
        for (j, cat) in CATEGORIES.iter().enumerate() {
            let bit = 1 << j;
            // what applying the category would fix against what it would
            // break, among the commands the rules so far leave as they are
            // (a category the earlier ones already cover, as @hash's reads
            // after +@read, adds nothing)
            let (mut fixes, mut breaks) = (0, 0);
            for i in catalog.in_category(bit) {
                if fake.bit(i) != additive {
                    if self.bit(i) == additive {
                        fixes += 1;
                    } else {
                        breaks += 1;
                    }
                }
            }
            if fixes > breaks {
                fake.set_category(catalog, bit, additive);
                rules.push(format!("{}@{cat}", if additive { '+' } else { '-' }));
            }
        }
        for (i, c) in catalog.iter() {
            if c.parent.is_some() {
                continue;
            }
            for j in std::iter::once(i).chain(catalog.subcommands(i).iter().copied()) {
                let want = self.bit(j);
                if want != fake.bit(j) {
                    let name = catalog.get(j).map_or("", |c| c.name);
                    rules.push(format!("{}{name}", if want { '+' } else { '-' }));
                    fake.change(catalog, j, want);
                }
            }
        }
        rules.join(" ")
    }

    /// The key patterns as `ACL GETUSER` shows them (`~*`, or each
    /// pattern).
    pub fn describe_keys(&self) -> String {
        if self.all_keys {
            return "~*".into();
        }
        let list: Vec<String> = self.keys.iter().map(KeyPattern::describe).collect();
        list.join(" ")
    }

    /// The channel patterns as `ACL GETUSER` shows them.
    pub fn describe_channels(&self) -> String {
        if self.all_channels {
            return "&*".into();
        }
        let list: Vec<String> = self
            .channels
            .iter()
            .map(|c| format!("&{}", String::from_utf8_lossy(c)))
            .collect();
        list.join(" ")
    }

    /// The whole selector as `ACL LIST` prints it.
    pub fn describe(&self, catalog: &Catalog) -> String {
        let mut parts = Vec::new();
        let keys = self.describe_keys();
        if !keys.is_empty() {
            parts.push(keys);
        }
        if self.all_channels {
            parts.push("&*".into());
        } else {
            parts.push("resetchannels".into());
            let ch = self.describe_channels();
            if !ch.is_empty() {
                parts.push(ch);
            }
        }
        parts.push(self.describe_commands(catalog));
        parts.join(" ")
    }
}

/// The key arguments of a request and how each is used. SET reads its key
/// only with GET, as Redis's `setGetKeys` says.
fn key_positions<'a>(
    cmd: &'a super::catalog::CommandAcl,
    args: &'a [&[u8]],
) -> impl Iterator<Item = (usize, KeyAccess)> + 'a {
    let set_without_get =
        cmd.name == "set" && !args.iter().skip(3).any(|a| a.eq_ignore_ascii_case(b"get"));
    // SINTERCARD names its keys by count: they end at 1 + numkeys (an
    // unreadable count checks every argument after it, the safe side)
    let numkeys_last = (cmd.name == "sintercard").then(|| {
        args.get(1)
            .and_then(|a| std::str::from_utf8(a).ok())
            .and_then(|a| a.parse::<i32>().ok())
            .filter(|&n| n > 0)
            .map_or(-1, |n| n.saturating_add(1))
    });
    cmd.keys.iter().flat_map(move |r| {
        let mut access = r.access;
        if set_without_get {
            access.read = false;
        }
        let r = match numkeys_last {
            Some(last) => KeyRange { last, ..*r },
            None => *r,
        };
        r.positions(args.len()).map(move |p| (p, access))
    })
}

/// An ACL user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// Its name (any bytes but spaces; `default` always exists).
    pub name: String,
    /// `on`: may authenticate.
    pub enabled: bool,
    /// `nopass`: any password authenticates.
    pub nopass: bool,
    /// `sanitize-payload` (`Some(true)`) / `skip-sanitize-payload`
    /// (`Some(false)`): kept and shown as Redis does; magpie has no
    /// RESTORE payloads to sanitize.
    pub sanitize_payload: Option<bool>,
    /// Its password hashes, in the order they were added.
    pub passwords: Vec<PasswordHash>,
    /// The root selector first, then the `(...)` ones.
    pub selectors: Vec<Selector>,
}

impl User {
    /// A new user as `ACL SETUSER name` creates it: off, no password,
    /// nothing allowed.
    pub fn new(name: &str, catalog: &Catalog) -> User {
        User {
            name: name.to_string(),
            enabled: false,
            nopass: false,
            sanitize_payload: None,
            passwords: Vec::new(),
            selectors: vec![Selector::empty(catalog)],
        }
    }

    /// The `default` user a server starts with: on, nopass, everything.
    pub fn default_user(catalog: &Catalog) -> User {
        let mut u = User::new("default", catalog);
        for rule in ["on", "nopass", "~*", "&*", "+@all"] {
            u.apply(catalog, rule.as_bytes()).expect("default rules");
        }
        u
    }

    /// Applies one `ACL SETUSER` rule (a selector rule applies to the root
    /// selector; `(...)` adds a selector).
    pub fn apply(&mut self, catalog: &Catalog, rule: &[u8]) -> Result<(), RuleError> {
        let lower = rule.to_ascii_lowercase();
        match lower.as_slice() {
            b"on" => self.enabled = true,
            b"off" => self.enabled = false,
            b"nopass" => {
                self.nopass = true;
                self.passwords.clear();
            }
            b"resetpass" => {
                self.nopass = false;
                self.passwords.clear();
            }
            b"sanitize-payload" => self.sanitize_payload = Some(true),
            b"skip-sanitize-payload" => self.sanitize_payload = Some(false),
            b"clearselectors" => self.selectors.truncate(1),
            b"reset" => {
                let name = std::mem::take(&mut self.name);
                *self = User::new(&name, catalog);
                self.sanitize_payload = Some(true);
            }
            _ => match rule.first() {
                Some(b'>') => {
                    let h = hash_password(&rule[1..]);
                    self.add_password(h);
                }
                Some(b'#') => {
                    let h = parse_hex_hash(&rule[1..]).ok_or(BAD_HASH)?;
                    self.add_password(h);
                }
                Some(b'<') => self.remove_password(&hash_password(&rule[1..]))?,
                Some(b'!') => {
                    let h = parse_hex_hash(&rule[1..]).ok_or(BAD_HASH)?;
                    self.remove_password(&h)?;
                }
                Some(b'(') => {
                    let inner = rule
                        .strip_prefix(b"(")
                        .and_then(|r| r.strip_suffix(b")"))
                        .ok_or(SELECTOR_PAREN)?;
                    let mut s = Selector::empty(catalog);
                    for word in inner.split(|&b| b == b' ').filter(|w| !w.is_empty()) {
                        s.apply(catalog, word)?;
                    }
                    self.selectors.push(s);
                }
                _ => self.selectors[0].apply(catalog, rule)?,
            },
        }
        Ok(())
    }

    fn add_password(&mut self, h: PasswordHash) {
        if !self.passwords.contains(&h) {
            self.passwords.push(h);
        }
        self.nopass = false;
    }

    fn remove_password(&mut self, h: &PasswordHash) -> Result<(), RuleError> {
        let before = self.passwords.len();
        self.passwords.retain(|p| p != h);
        if self.passwords.len() == before {
            return Err(NO_SUCH_PASSWORD);
        }
        Ok(())
    }

    /// Whether `password` authenticates this user: enabled, and nopass or
    /// one of its hashes. Every stored hash is compared in constant time,
    /// so timing tells nothing of how close a guess was.
    pub fn password_ok(&self, password: &[u8]) -> bool {
        if !self.enabled {
            return false;
        }
        if self.nopass {
            return true;
        }
        let h = hash_password(password);
        let mut ok = subtle::Choice::from(0);
        for p in &self.passwords {
            ok |= p.ct_eq(&h);
        }
        ok.into()
    }

    /// True when a connection that never authenticated is this user
    /// (`default` while it is on and nopass).
    pub fn open_without_password(&self) -> bool {
        self.enabled && self.nopass
    }

    /// True when every command on every key is allowed: the per-request
    /// check is skipped.
    pub fn unrestricted(&self) -> bool {
        self.selectors.iter().any(Selector::unrestricted)
    }

    /// Whether the user may run the command at `index` with `args`; the
    /// most relevant refusal among its selectors otherwise (Redis's
    /// `ACLCheckAllUserCommandPerm`).
    pub fn check(&self, catalog: &Catalog, index: u16, args: &[&[u8]]) -> Result<(), Denied> {
        let mut worst = Denied::Command;
        for s in &self.selectors {
            match s.check(catalog, index, args) {
                Ok(()) => return Ok(()),
                Err(d) => worst = worst.max(d),
            }
        }
        Err(worst)
    }

    /// Whether any selector allows the channel.
    pub fn channel_allowed(&self, channel: &[u8]) -> bool {
        self.selectors.iter().any(|s| s.channel_allowed(channel))
    }

    /// The flags `ACL GETUSER` lists.
    pub fn flags(&self) -> Vec<&'static str> {
        let mut f = vec![if self.enabled { "on" } else { "off" }];
        if self.nopass {
            f.push("nopass");
        }
        match self.sanitize_payload {
            Some(false) => f.push("skip-sanitize-payload"),
            Some(true) => f.push("sanitize-payload"),
            None => {}
        }
        f
    }

    /// The user as one `ACL LIST` line (also the aclfile's line).
    pub fn describe(&self, catalog: &Catalog) -> String {
        let mut parts = vec![format!("user {}", self.name)];
        parts.extend(self.flags().iter().map(|f| f.to_string()));
        parts.extend(self.passwords.iter().map(|h| format!("#{}", hex(h))));
        parts.push(self.selectors[0].describe(catalog));
        for s in &self.selectors[1..] {
            parts.push(format!("({})", s.describe(catalog)));
        }
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::super::catalog::{CommandAcl, KeyRange};
    use super::*;

    fn catalog() -> Catalog {
        let c = |name, cats: &[&str], keys: Vec<KeyRange>| CommandAcl {
            name,
            categories: cats.iter().map(|c| category_bit(c).unwrap()).sum(),
            keys,
            no_auth: name == "auth",
            channels: Default::default(),
            parent: None,
        };
        let one = |read, write| {
            vec![KeyRange {
                first: 1,
                last: 1,
                step: 1,
                access: KeyAccess { read, write },
            }]
        };
        Catalog::new(vec![
            c("get", &["read", "string", "fast"], one(true, false)),
            c("set", &["write", "string", "slow"], one(true, true)),
            c("incr", &["write", "string", "fast"], one(true, true)),
            c("auth", &["fast", "connection"], vec![]),
            c(
                "flushall",
                &["keyspace", "write", "slow", "dangerous"],
                vec![],
            ),
            c("client", &["slow"], vec![]),
            c("client|id", &["slow", "connection"], vec![]),
            c(
                "client|kill",
                &["admin", "slow", "dangerous", "connection"],
                vec![],
            ),
        ])
    }

    fn user(rules: &str) -> User {
        let cat = catalog();
        let mut u = User::new("u", &cat);
        for r in rules.split(' ') {
            u.apply(&cat, r.as_bytes()).unwrap();
        }
        u
    }

    #[test]
    fn default_user_is_unrestricted_and_described_as_redis() {
        let cat = catalog();
        let u = User::default_user(&cat);
        assert!(u.unrestricted());
        assert_eq!(u.describe(&cat), "user default on nopass ~* &* +@all");
    }

    #[test]
    fn new_user_is_off_with_nothing() {
        let cat = catalog();
        let u = User::new("alice", &cat);
        assert_eq!(u.describe(&cat), "user alice off resetchannels -@all");
        assert!(!u.password_ok(b""));
    }

    #[test]
    fn passwords_are_hashed_and_checked() {
        let u = user("on >pw");
        assert!(u.password_ok(b"pw"));
        assert!(!u.password_ok(b"pW"));
        assert_eq!(
            hex(&u.passwords[0]),
            "30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4"
        );
        let mut off = u.clone();
        off.enabled = false;
        assert!(!off.password_ok(b"pw"));
        let cat = catalog();
        let mut u = u;
        assert_eq!(u.apply(&cat, b"<nope"), Err(NO_SUCH_PASSWORD));
        assert_eq!(u.apply(&cat, b"#abc"), Err(BAD_HASH));
        u.apply(&cat, b"<pw").unwrap();
        assert!(!u.password_ok(b"pw"));
    }

    #[test]
    fn commands_categories_and_keys() {
        let cat = catalog();
        let u = user("on nopass %R~r:* ~rw:* -@all +@read +set");
        let get = cat.index("get").unwrap();
        let set = cat.index("set").unwrap();
        let incr = cat.index("incr").unwrap();
        assert_eq!(u.check(&cat, get, &[b"get", b"r:1"]), Ok(()));
        assert_eq!(u.check(&cat, get, &[b"get", b"x"]), Err(Denied::Key(1)));
        assert_eq!(
            u.check(&cat, set, &[b"set", b"r:1", b"v"]),
            Err(Denied::Key(1))
        );
        assert_eq!(u.check(&cat, set, &[b"set", b"rw:1", b"v"]), Ok(()));
        assert_eq!(
            u.check(&cat, incr, &[b"incr", b"rw:1"]),
            Err(Denied::Command)
        );
        let auth = cat.index("auth").unwrap();
        assert_eq!(u.check(&cat, auth, &[b"auth", b"x"]), Ok(()));
        assert_eq!(
            u.describe(&cat),
            // +@read already gave get: of the string commands it left, set
            // is on and incr off, so the category would fix no more than it
            // breaks and the command is named
            "user u on nopass %R~r:* ~rw:* resetchannels -@all +@read +set"
        );
    }

    #[test]
    fn write_only_pattern_allows_set_but_not_set_get() {
        let cat = catalog();
        let u = user("on nopass %W~w:* +@all");
        let set = cat.index("set").unwrap();
        assert_eq!(u.check(&cat, set, &[b"set", b"w:1", b"v"]), Ok(()));
        assert_eq!(
            u.check(&cat, set, &[b"set", b"w:1", b"v", b"GET"]),
            Err(Denied::Key(1))
        );
    }

    #[test]
    fn subtraction_from_all_and_subcommands() {
        let cat = catalog();
        let u = user("+@all -@dangerous");
        // in this small catalog flushall is all of @keyspace and
        // client|kill all of @admin, which leave nothing of @dangerous
        assert_eq!(
            u.selectors[0].describe_commands(&cat),
            "+@all -@keyspace -@admin"
        );
        let u = user("-@all +client|id");
        assert_eq!(u.selectors[0].describe_commands(&cat), "-@all +client|id");
        let id = cat.index("client|id").unwrap();
        let kill = cat.index("client|kill").unwrap();
        assert!(u.check(&cat, id, &[b"client", b"id"]).is_ok());
        assert!(u.check(&cat, kill, &[b"client", b"kill"]).is_err());
        let u = user("-@all +client -client|kill");
        assert_eq!(
            u.selectors[0].describe_commands(&cat),
            "-@all +client -client|kill"
        );
    }

    #[test]
    fn selectors_grant_alternatives_and_rank_refusals() {
        let cat = catalog();
        let mut u = user("on nopass ~a:* +get");
        u.apply(&cat, b"(~b:* +set)").unwrap();
        let get = cat.index("get").unwrap();
        let set = cat.index("set").unwrap();
        assert!(u.check(&cat, set, &[b"set", b"b:1", b"v"]).is_ok());
        assert_eq!(
            u.check(&cat, set, &[b"set", b"a:1", b"v"]),
            Err(Denied::Key(1))
        );
        assert_eq!(u.check(&cat, get, &[b"get", b"b:1"]), Err(Denied::Key(1)));
        assert_eq!(
            u.describe(&cat),
            "user u on nopass ~a:* resetchannels -@all +@read (~b:* resetchannels -@all +set)"
        );
    }

    #[test]
    fn rule_errors_are_redis_texts() {
        let cat = catalog();
        let mut u = User::new("u", &cat);
        assert_eq!(u.apply(&cat, b"bogus"), Err(SYNTAX));
        assert_eq!(u.apply(&cat, b"+nosuch"), Err(UNKNOWN));
        assert_eq!(u.apply(&cat, b"+@nosuch"), Err(UNKNOWN));
        assert_eq!(u.apply(&cat, b"%X~a"), Err(SYNTAX));
        u.apply(&cat, b"allkeys").unwrap();
        assert_eq!(u.apply(&cat, b"~a"), Err(KEY_AFTER_ALL));
        u.apply(&cat, b"&*").unwrap();
        assert_eq!(u.apply(&cat, b"&a"), Err(CHANNEL_AFTER_ALL));
        assert_eq!(u.apply(&cat, b"(~a"), Err(SELECTOR_PAREN));
    }

    #[test]
    fn channels() {
        let u = user("&news.* &x");
        assert!(u.channel_allowed(b"news.today"));
        assert!(!u.channel_allowed(b"y"));
        assert_eq!(u.selectors[0].describe_channels(), "&news.* &x");
    }
}
