//! Users and permissions, shared by every door: Redis 7.0's ACL model
//! (users, SHA-256 password hashes, command categories, key and channel
//! patterns, selectors), the aclfile, and the ACL LOG of refusals.
//!
//! The doors consult this room: RESP checks each command once in
//! `resp::execute`; memcached and HTTP name the RESP command each of their
//! requests is equivalent to (a memcached `set` is `set`, an HTTP `GET` of a
//! key is `get`) and check that, so one user has the same rights on every
//! door. [`catalog`] holds what the ACL must know of commands; [`user`]
//! the rules; [`mod@file`] the aclfile format; [`mod@log`] the ACL LOG.

pub mod catalog;
pub mod file;
pub mod log;
pub mod user;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

pub use catalog::{Catalog, CommandAcl, KeyAccess, KeyRange};
pub use log::{AclLog, LogEntry, Reason};
pub use user::{Denied, RuleError, User};

/// The name of the user every connection starts as.
pub const DEFAULT_USER: &str = "default";

/// Redis's text when the ACL file commands are used without `--aclfile`.
pub const NO_ACLFILE: &str = "This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.";

/// Every user, the command catalog their rules refer to, the aclfile and
/// the ACL LOG.
pub struct Acl {
    catalog: Catalog,
    users: RwLock<BTreeMap<String, Arc<User>>>,
    /// Bumped by every change of a user, so connections notice (one atomic
    /// load per command) and pick up the new rules.
    epoch: AtomicU64,
    /// Refusals (ACL LOG).
    pub log: Mutex<AclLog>,
    file: Option<PathBuf>,
    /// Redis's protected mode (`--protected-mode`).
    protected_mode: AtomicBool,
}

/// A rule `ACL SETUSER` refused: the rule and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetUserError {
    /// The rule as given.
    pub rule: String,
    /// Redis's reason.
    pub error: RuleError,
}

impl std::fmt::Display for SetUserError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Error in ACL SETUSER modifier '{}': {}",
            self.rule, self.error.0
        )
    }
}

impl Acl {
    /// The ACL with only the `default` user (on, nopass, everything
    /// allowed), given `requirepass` as its password. The users of
    /// `aclfile` come in with [`Acl::load`] (the server calls it at start,
    /// where a bad file stops it).
    pub fn new(catalog: Catalog, requirepass: Option<&str>, aclfile: Option<PathBuf>) -> Acl {
        let acl = Acl {
            users: RwLock::new(BTreeMap::new()),
            epoch: AtomicU64::new(0),
            log: Mutex::new(AclLog::default()),
            file: aclfile,
            protected_mode: AtomicBool::new(true),
            catalog,
        };
        let default = User::default_user(&acl.catalog);
        acl.users
            .write()
            .insert(DEFAULT_USER.to_string(), Arc::new(default));
        acl.set_default_password(requirepass.map(str::as_bytes));
        acl
    }

    /// The commands the rules refer to.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Changes whenever any user changes.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    fn changed(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// A user by name.
    pub fn user(&self, name: &str) -> Option<Arc<User>> {
        self.users.read().get(name).cloned()
    }

    /// The `default` user.
    pub fn default_user(&self) -> Arc<User> {
        self.user(DEFAULT_USER).expect("default user exists")
    }

    /// Every user, sorted by name (ACL LIST, ACL USERS).
    pub fn users(&self) -> Vec<Arc<User>> {
        self.users.read().values().cloned().collect()
    }

    /// True when a new connection must authenticate first: the `default`
    /// user is off or has a password.
    pub fn auth_required(&self) -> bool {
        !self.default_user().open_without_password()
    }

    /// The user that `name` and `password` authenticate, if any.
    pub fn authenticate(&self, name: &[u8], password: &[u8]) -> Option<Arc<User>> {
        let name = std::str::from_utf8(name).ok()?;
        let user = self.user(name)?;
        user.password_ok(password).then_some(user)
    }

    /// `ACL SETUSER name rules...`: applies every rule to a copy of the
    /// user (a new one if it does not exist) and keeps it only if all of
    /// them are valid.
    pub fn set_user(&self, name: &str, rules: &[&[u8]]) -> Result<(), SetUserError> {
        let mut users = self.users.write();
        let mut user = users
            .get(name)
            .map(|u| (**u).clone())
            .unwrap_or_else(|| User::new(name, &self.catalog));
        for rule in rules {
            user.apply(&self.catalog, rule)
                .map_err(|error| SetUserError {
                    rule: String::from_utf8_lossy(rule).into_owned(),
                    error,
                })?;
        }
        users.insert(name.to_string(), Arc::new(user));
        drop(users);
        self.changed();
        Ok(())
    }

    /// `ACL DELUSER`: removes the users that exist and says how many;
    /// `default` cannot be removed. Connections of a removed user close.
    pub fn delete_users(&self, names: &[&str]) -> Result<usize, &'static str> {
        if names.contains(&DEFAULT_USER) {
            return Err("ERR The 'default' user cannot be removed");
        }
        let mut users = self.users.write();
        let n = names.iter().filter(|n| users.remove(**n).is_some()).count();
        drop(users);
        if n > 0 {
            self.changed();
        }
        Ok(n)
    }

    /// `requirepass` (flag or CONFIG SET): the `default` user's only
    /// password, or `nopass` when empty or unset, as Redis does.
    pub fn set_default_password(&self, password: Option<&[u8]>) {
        let mut users = self.users.write();
        let mut user = users
            .get(DEFAULT_USER)
            .map(|u| (**u).clone())
            .unwrap_or_else(|| User::default_user(&self.catalog));
        let rules: Vec<Vec<u8>> = match password {
            Some(p) if !p.is_empty() => vec![b"resetpass".to_vec(), [b">", p].concat()],
            _ => vec![b"nopass".to_vec()],
        };
        for r in rules {
            user.apply(&self.catalog, &r)
                .expect("password rules are valid");
        }
        users.insert(DEFAULT_USER.to_string(), Arc::new(user));
        drop(users);
        self.changed();
    }

    /// Turns protected mode on or off.
    pub fn set_protected_mode(&self, on: bool) {
        self.protected_mode.store(on, Ordering::Relaxed);
    }

    /// True while protected mode refuses clients from `peer`: it is on,
    /// `default` needs no password, and the peer is not loopback (Redis's
    /// rule, for every door).
    pub fn protected_refuses(&self, peer: IpAddr) -> bool {
        let loopback = match peer {
            IpAddr::V4(a) => a.is_loopback(),
            IpAddr::V6(a) => {
                a.is_loopback() || a.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
            }
        };
        !loopback && self.protected_mode.load(Ordering::Relaxed) && self.default_user().nopass
    }

    /// The aclfile, when `--aclfile` gave one.
    pub fn file(&self) -> Option<&std::path::Path> {
        self.file.as_deref()
    }

    /// `ACL LOAD`: replaces every user by the aclfile's, all or nothing.
    /// A file without `default` keeps the server's default user as it was
    /// created (on, nopass, everything), as Redis does.
    pub fn load(&self) -> Result<(), String> {
        let path = self.file.as_ref().ok_or(NO_ACLFILE)?;
        let text = std::fs::read(path)
            .map_err(|e| format!("Error loading ACLs, opening file '{}': {e}", path.display()))?;
        let users = file::parse(&self.catalog, &text, &path.display().to_string())?;
        let mut map = BTreeMap::new();
        for u in users {
            map.insert(u.name.clone(), Arc::new(u));
        }
        map.entry(DEFAULT_USER.to_string())
            .or_insert_with(|| Arc::new(User::default_user(&self.catalog)));
        *self.users.write() = map;
        self.changed();
        Ok(())
    }

    /// `ACL SAVE`: writes every user to the aclfile (a temporary file
    /// renamed over it, so a crash leaves the old or the new one whole).
    pub fn save(&self) -> Result<(), String> {
        let path = self.file.as_ref().ok_or(NO_ACLFILE)?;
        let text = file::render(&self.catalog, &self.users());
        file::write_atomically(path, text.as_bytes())
            .map_err(|e| format!("There was an error trying to save the ACLs. Please check the server logs for more information: {e}"))
    }
}

/// Which user a connection is, kept in step with the [`Acl`]: it holds an
/// immutable snapshot of its user and the epoch it was taken at.
#[derive(Clone, Debug)]
pub struct AclSession {
    /// The user's rules as of `epoch`.
    pub user: Arc<User>,
    /// The [`Acl::epoch`] the snapshot was taken at.
    pub epoch: u64,
    /// Cached [`User::unrestricted`].
    pub unrestricted: bool,
}

impl AclSession {
    /// A connection starting as `default`.
    pub fn new(acl: &Acl) -> AclSession {
        AclSession::of(acl, acl.default_user())
    }

    /// A connection authenticated as `user`.
    pub fn of(acl: &Acl, user: Arc<User>) -> AclSession {
        AclSession {
            unrestricted: user.unrestricted(),
            user,
            epoch: acl.epoch(),
        }
    }

    /// Picks up changes of the user since the snapshot; false when the
    /// user was deleted (the connection must close, as Redis closes it).
    #[inline]
    pub fn refresh(&mut self, acl: &Acl) -> bool {
        let now = acl.epoch();
        if now == self.epoch {
            return true;
        }
        match acl.user(&self.user.name) {
            Some(u) => {
                *self = AclSession::of(acl, u);
                self.epoch = now;
                true
            }
            None => false,
        }
    }

    /// The user's name.
    pub fn name(&self) -> &str {
        &self.user.name
    }
}

/// Fills `buf` from the operating system's random source (ACL GENPASS).
pub fn random_bytes(buf: &mut [u8]) -> std::io::Result<()> {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")?.read_exact(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl() -> Acl {
        let cats = |c: &[&str]| c.iter().map(|c| catalog::category_bit(c).unwrap()).sum();
        let cmd = |name, c: &[&str]| CommandAcl {
            name,
            categories: cats(c),
            keys: vec![],
            no_auth: false,
            channels: Default::default(),
            parent: None,
        };
        Acl::new(
            Catalog::new(vec![cmd("get", &["read"]), cmd("set", &["write"])]),
            None,
            None,
        )
    }

    #[test]
    fn protected_mode_refuses_remote_peers_only_without_a_password() {
        let acl = acl();
        let remote: IpAddr = "10.1.2.3".parse().unwrap();
        assert!(acl.protected_refuses(remote));
        assert!(!acl.protected_refuses("127.0.0.1".parse().unwrap()));
        assert!(!acl.protected_refuses("::1".parse().unwrap()));
        assert!(!acl.protected_refuses("::ffff:127.0.0.1".parse().unwrap()));
        acl.set_default_password(Some(b"pw"));
        assert!(!acl.protected_refuses(remote));
        acl.set_default_password(None);
        acl.set_protected_mode(false);
        assert!(!acl.protected_refuses(remote));
    }

    #[test]
    fn requirepass_is_the_default_users_password() {
        let acl = acl();
        assert!(!acl.auth_required());
        acl.set_default_password(Some(b"pw"));
        assert!(acl.auth_required());
        assert!(acl.authenticate(b"default", b"pw").is_some());
        assert!(acl.authenticate(b"default", b"x").is_none());
        acl.set_default_password(Some(b""));
        assert!(!acl.auth_required());
    }

    #[test]
    fn set_user_is_all_or_nothing_and_sessions_follow() {
        let acl = acl();
        acl.set_user("alice", &[b"on", b">a", b"+get"]).unwrap();
        let mut s = AclSession::of(&acl, acl.user("alice").unwrap());
        let err = acl.set_user("alice", &[b"+set", b"bogus"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Error in ACL SETUSER modifier 'bogus': Syntax error"
        );
        assert!(s.refresh(&acl));
        let set = acl.catalog().index("set").unwrap();
        assert!(s.user.check(acl.catalog(), set, &[b"set"]).is_err());
        acl.set_user("alice", &[b"+set"]).unwrap();
        assert!(s.refresh(&acl));
        assert!(s.user.check(acl.catalog(), set, &[b"set"]).is_ok());
        assert_eq!(acl.delete_users(&["alice", "bob"]), Ok(1));
        assert!(!s.refresh(&acl));
        assert!(acl.delete_users(&["default"]).is_err());
    }
}
