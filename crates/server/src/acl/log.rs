//! The ACL LOG: the most recent refusals (a forbidden command, key or
//! channel, a failed authentication), grouped as Redis groups them.

use std::collections::VecDeque;

/// Most entries kept (Redis's `acllog-max-len` default).
pub const MAX_LEN: usize = 128;

/// Two refusals alike within this many milliseconds are one entry with a
/// count (Redis's `ACL_LOG_GROUPING_MAX_TIME_DELTA`).
const GROUPING_MS: u64 = 60_000;

/// Why a request was refused (ACL LOG's `reason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The command is not allowed.
    Command,
    /// One of its keys is not.
    Key,
    /// One of its channels is not.
    Channel,
    /// Wrong user name or password.
    Auth,
}

impl Reason {
    /// Redis's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Reason::Command => "command",
            Reason::Key => "key",
            Reason::Channel => "channel",
            Reason::Auth => "auth",
        }
    }
}

/// One ACL LOG entry. Never holds a password: `object` is the command
/// name, the key or the channel (`AUTH` for a failed authentication).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    /// How many refusals it stands for.
    pub count: u64,
    /// Why.
    pub reason: Reason,
    /// Where (`toplevel`; magpie has no MULTI, Lua or modules).
    pub context: &'static str,
    /// The command, key or channel refused.
    pub object: String,
    /// The user (the name tried, for a failed authentication).
    pub username: String,
    /// When it last happened, ms since the epoch.
    pub last_ms: u64,
    /// The client, as CLIENT LIST shows it.
    pub client_info: String,
}

/// The entries, most recent first.
#[derive(Debug, Default)]
pub struct AclLog {
    entries: VecDeque<LogEntry>,
}

impl AclLog {
    /// Records a refusal, merged with a like one of the last minute.
    pub fn add(&mut self, mut entry: LogEntry) {
        let alike = self.entries.iter().position(|e| {
            e.reason == entry.reason
                && e.context == entry.context
                && e.object == entry.object
                && e.username == entry.username
                && entry.last_ms.saturating_sub(e.last_ms) < GROUPING_MS
        });
        if let Some(i) = alike {
            let old = self.entries.remove(i).expect("index is in range");
            entry.count = old.count + 1;
        }
        self.entries.push_front(entry);
        self.entries.truncate(MAX_LEN);
    }

    /// The `count` most recent entries (all with None).
    pub fn recent(&self, count: Option<usize>) -> impl Iterator<Item = &LogEntry> {
        self.entries.iter().take(count.unwrap_or(usize::MAX))
    }

    /// ACL LOG RESET.
    pub fn reset(&mut self) {
        self.entries.clear();
    }

    /// How many entries there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(object: &str, at: u64) -> LogEntry {
        LogEntry {
            count: 1,
            reason: Reason::Command,
            context: "toplevel",
            object: object.into(),
            username: "u".into(),
            last_ms: at,
            client_info: String::new(),
        }
    }

    #[test]
    fn alike_refusals_within_a_minute_are_grouped() {
        let mut log = AclLog::default();
        log.add(entry("get", 0));
        log.add(entry("set", 1));
        log.add(entry("get", 2));
        let v: Vec<_> = log
            .recent(None)
            .map(|e| (e.object.as_str(), e.count))
            .collect();
        assert_eq!(v, [("get", 2), ("set", 1)]);
        log.add(entry("get", 2 + GROUPING_MS));
        assert_eq!(log.len(), 3);
        assert_eq!(log.recent(Some(1)).count(), 1);
        log.reset();
        assert!(log.is_empty());
    }

    #[test]
    fn the_log_is_bounded() {
        let mut log = AclLog::default();
        for i in 0..MAX_LEN + 10 {
            log.add(entry(&i.to_string(), 0));
        }
        assert_eq!(log.len(), MAX_LEN);
    }
}
