//! The server-wide pub/sub registry: who listens to which channel, pattern
//! and shard channel, each listener's queue of undelivered messages, and
//! the `client-output-buffer-limit pubsub` that bounds it.
//!
//! A publisher encodes the message straight into each subscriber's queue
//! under that queue's own short lock and moves on: it never waits for a
//! subscriber's socket. The subscriber's connection task is woken when its
//! queue becomes non-empty, moves the queue into its output buffer and
//! writes it. A subscriber whose unsent bytes reach the hard limit, or stay
//! at the soft limit longer than its seconds, is closed (its queue freed at
//! once), as Redis closes it, so a subscriber that does not read costs at
//! most about the hard limit.
//!
//! Other parts of the server use the registry through [`PubSub`] (publish,
//! introspection) and a connection's subscriptions through [`ClientSubs`];
//! [`Subscriber::close`] disconnects a subscriber from outside its
//! connection (e.g. when its permissions change).

use std::sync::Arc;
use std::time::Instant;

use foldhash::fast::RandomState;
use hashbrown::{HashMap, HashSet};
use parking_lot::{Mutex, RwLock};
use tokio::sync::Notify;

/// Redis's `client-output-buffer-limit` for one client class: a
/// subscriber is closed once its unsent output reaches `hard` bytes, or
/// has stayed at `soft` bytes or more for over `soft_seconds`. A byte
/// limit of 0 means none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputLimit {
    /// Bytes at which the client is closed at once (0: no hard limit).
    pub hard: u64,
    /// Bytes the client may stay at for `soft_seconds` (0: no soft limit).
    pub soft: u64,
    /// How long the soft limit may be exceeded, in seconds (Redis keeps
    /// it in a C `int`, so it is one here too).
    pub soft_seconds: i32,
}

impl OutputLimit {
    /// Redis's default for the pubsub class: `32mb 8mb 60`.
    pub const PUBSUB_DEFAULT: OutputLimit = OutputLimit {
        hard: 32 * 1024 * 1024,
        soft: 8 * 1024 * 1024,
        soft_seconds: 60,
    };
    /// Redis's default for the normal class: `0 0 0` (no limit).
    pub const NORMAL_DEFAULT: OutputLimit = OutputLimit {
        hard: 0,
        soft: 0,
        soft_seconds: 0,
    };
    /// Redis's default for the replica class: `256mb 64mb 60`.
    pub const REPLICA_DEFAULT: OutputLimit = OutputLimit {
        hard: 256 * 1024 * 1024,
        soft: 64 * 1024 * 1024,
        soft_seconds: 60,
    };

    /// `hard soft soft_seconds` as CONFIG GET prints one class.
    pub fn render(&self) -> String {
        format!("{} {} {}", self.hard, self.soft, self.soft_seconds)
    }
}

/// The three kinds of subscription, each with its own namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// SUBSCRIBE: exact channel names, reached by PUBLISH.
    Channel,
    /// PSUBSCRIBE: glob patterns over channel names, reached by PUBLISH.
    Pattern,
    /// SSUBSCRIBE: shard channels, reached by SPUBLISH.
    Shard,
}

impl Kind {
    /// The confirmation's first element when subscribing.
    pub fn subscribe_word(self) -> &'static [u8] {
        match self {
            Kind::Channel => b"subscribe",
            Kind::Pattern => b"psubscribe",
            Kind::Shard => b"ssubscribe",
        }
    }

    /// The confirmation's first element when unsubscribing.
    pub fn unsubscribe_word(self) -> &'static [u8] {
        match self {
            Kind::Channel => b"unsubscribe",
            Kind::Pattern => b"punsubscribe",
            Kind::Shard => b"sunsubscribe",
        }
    }
}

type Listeners = HashMap<Box<[u8]>, Vec<Arc<Subscriber>>, RandomState>;

/// Every subscription on the server, by channel, pattern and shard channel.
pub struct PubSub {
    channels: RwLock<Listeners>,
    patterns: RwLock<Listeners>,
    shard_channels: RwLock<Listeners>,
    limit: RwLock<OutputLimit>,
}

impl Default for PubSub {
    fn default() -> Self {
        PubSub::new(OutputLimit::PUBSUB_DEFAULT)
    }
}

impl PubSub {
    /// An empty registry whose subscribers are held to `limit`.
    pub fn new(limit: OutputLimit) -> PubSub {
        PubSub {
            channels: RwLock::new(Listeners::default()),
            patterns: RwLock::new(Listeners::default()),
            shard_channels: RwLock::new(Listeners::default()),
            limit: RwLock::new(limit),
        }
    }

    fn table(&self, kind: Kind) -> &RwLock<Listeners> {
        match kind {
            Kind::Channel => &self.channels,
            Kind::Pattern => &self.patterns,
            Kind::Shard => &self.shard_channels,
        }
    }

    /// The limit subscribers are held to now.
    pub fn limit(&self) -> OutputLimit {
        *self.limit.read()
    }

    /// Changes the limit (CONFIG SET client-output-buffer-limit); checked
    /// from the next message on.
    pub fn set_limit(&self, limit: OutputLimit) {
        *self.limit.write() = limit;
    }

    fn add(&self, kind: Kind, name: &[u8], sub: &Arc<Subscriber>) {
        let mut t = self.table(kind).write();
        match t.get_mut(name) {
            Some(list) => list.push(sub.clone()),
            None => {
                t.insert(name.into(), vec![sub.clone()]);
            }
        }
    }

    fn remove(&self, kind: Kind, name: &[u8], id: u64) {
        let mut t = self.table(kind).write();
        if let Some(list) = t.get_mut(name) {
            list.retain(|s| s.id != id);
            if list.is_empty() {
                t.remove(name);
            }
        }
    }

    /// PUBLISH: delivers `payload` to the subscribers of `channel` and of
    /// every pattern it matches; returns how many deliveries that made
    /// (a client subscribed both ways counts twice, as in Redis).
    pub fn publish(&self, channel: &[u8], payload: &[u8]) -> usize {
        let limit = self.limit();
        let now = Instant::now();
        let mut receivers = 0;
        if let Some(list) = self.channels.read().get(channel) {
            for s in list {
                s.deliver(&[b"message", channel, payload], limit, now);
            }
            receivers += list.len();
        }
        let patterns = self.patterns.read();
        for (pattern, list) in patterns.iter() {
            if magpie_engine::glob::matches(pattern, channel) {
                for s in list {
                    s.deliver(&[b"pmessage", pattern, channel, payload], limit, now);
                }
                receivers += list.len();
            }
        }
        receivers
    }

    /// SPUBLISH: delivers `payload` to the subscribers of the shard
    /// channel `channel`; returns how many there were.
    pub fn spublish(&self, channel: &[u8], payload: &[u8]) -> usize {
        let limit = self.limit();
        let now = Instant::now();
        let t = self.shard_channels.read();
        let Some(list) = t.get(channel) else {
            return 0;
        };
        for s in list {
            s.deliver(&[b"smessage", channel, payload], limit, now);
        }
        list.len()
    }

    /// Channels (or shard channels) with at least one subscriber whose
    /// names match `pattern` (all of them without one): PUBSUB CHANNELS.
    pub fn active(&self, kind: Kind, pattern: Option<&[u8]>) -> Vec<Box<[u8]>> {
        self.table(kind)
            .read()
            .keys()
            .filter(|name| pattern.is_none_or(|p| magpie_engine::glob::matches(p, name)))
            .cloned()
            .collect()
    }

    /// How many clients subscribe to `name` (PUBSUB NUMSUB, SHARDNUMSUB).
    pub fn subscribers(&self, kind: Kind, name: &[u8]) -> usize {
        self.table(kind).read().get(name).map_or(0, Vec::len)
    }

    /// How many distinct names of this kind have subscribers (PUBSUB
    /// NUMPAT counts patterns this way; INFO's `pubsub_channels` too).
    pub fn count(&self, kind: Kind) -> usize {
        self.table(kind).read().len()
    }
}

/// One subscribing connection's message queue, shared between the
/// publishers that fill it and the connection task that empties it.
pub struct Subscriber {
    /// The connection's client id.
    pub id: u64,
    queue: Mutex<Queue>,
    /// Woken when the queue turns non-empty (and on close).
    ready: Notify,
    /// Woken once, when the subscriber is closed.
    closing: Notify,
}

struct Queue {
    /// Encoded messages not yet taken by the connection.
    buf: Vec<u8>,
    /// Bytes the connection took but has not yet written.
    in_flight: usize,
    /// Messages are encoded as RESP3 push messages (else RESP2 arrays).
    resp3: bool,
    /// Since when the unsent bytes have been at the soft limit or over.
    soft_since: Option<Instant>,
    /// Over the limit (or closed from outside): the connection must close.
    closed: bool,
}

/// A queue above this capacity is given back once the connection took it.
const KEEP_CAPACITY: usize = 64 * 1024;

impl Subscriber {
    /// A subscriber for client `id` whose messages are encoded for RESP3
    /// (`resp3`) or RESP2.
    pub fn new(id: u64, resp3: bool) -> Subscriber {
        Subscriber {
            id,
            queue: Mutex::new(Queue {
                buf: Vec::new(),
                in_flight: 0,
                resp3,
                soft_since: None,
                closed: false,
            }),
            ready: Notify::new(),
            closing: Notify::new(),
        }
    }

    /// Appends one message made of `parts` (its kind, the channel, ...)
    /// and applies the output limit; never waits for the connection.
    fn deliver(&self, parts: &[&[u8]], limit: OutputLimit, now: Instant) {
        let mut q = self.queue.lock();
        if q.closed {
            return;
        }
        let was_empty = q.buf.is_empty();
        let head = if q.resp3 { b'>' } else { b'*' };
        encode_message(&mut q.buf, head, parts);
        let used = (q.buf.len() + q.in_flight) as u64;
        if over_limit(&mut q, used, limit, now) {
            q.closed = true;
            q.buf = Vec::new();
            drop(q);
            tracing::warn!(
                client = self.id,
                bytes = used,
                "closing subscriber over the client-output-buffer-limit for pubsub"
            );
            self.ready.notify_one();
            self.closing.notify_one();
        } else if was_empty {
            drop(q);
            self.ready.notify_one();
        }
    }

    /// Moves the queued messages to the end of `out`; false once the
    /// subscriber is closed (then the connection must close).
    pub fn drain_into(&self, out: &mut Vec<u8>) -> bool {
        let mut q = self.queue.lock();
        if q.closed {
            return false;
        }
        if !q.buf.is_empty() {
            out.extend_from_slice(&q.buf);
            q.in_flight += q.buf.len();
            q.buf.clear();
            if q.buf.capacity() > KEEP_CAPACITY {
                q.buf = Vec::new();
            }
        }
        true
    }

    /// The connection wrote everything it took: those bytes no longer
    /// count against the limit.
    pub fn sent(&self) {
        self.queue.lock().in_flight = 0;
    }

    /// Unsent bytes: queued plus taken but not yet written.
    pub fn unsent(&self) -> usize {
        let q = self.queue.lock();
        q.buf.len() + q.in_flight
    }

    /// Encodes the next messages for RESP3 (`true`) or RESP2 (after HELLO).
    pub fn set_resp3(&self, resp3: bool) {
        self.queue.lock().resp3 = resp3;
    }

    /// True once the subscriber was closed.
    pub fn is_closed(&self) -> bool {
        self.queue.lock().closed
    }

    /// Closes the subscriber: its queue is dropped and its connection
    /// closes without writing anything more.
    pub fn close(&self) {
        let mut q = self.queue.lock();
        q.closed = true;
        q.buf = Vec::new();
        drop(q);
        self.ready.notify_one();
        self.closing.notify_one();
    }

    /// Resolves when messages are waiting (or the subscriber closed).
    pub async fn ready(&self) {
        self.ready.notified().await
    }

    /// Resolves once the subscriber is closed.
    pub async fn closed(&self) {
        self.closing.notified().await
    }
}

/// Redis's `checkClientOutputBufferLimits`: the hard limit closes at once;
/// the soft one starts a clock when first reached, which stops when the
/// output falls below it again, and closes once it ran over its seconds.
fn over_limit(q: &mut Queue, used: u64, limit: OutputLimit, now: Instant) -> bool {
    if limit.hard > 0 && used >= limit.hard {
        return true;
    }
    if limit.soft > 0 && used >= limit.soft {
        match q.soft_since {
            None => q.soft_since = Some(now),
            Some(since) => {
                let elapsed = now.saturating_duration_since(since).as_secs();
                if elapsed > limit.soft_seconds.max(0) as u64 {
                    return true;
                }
            }
        }
    } else {
        q.soft_since = None;
    }
    false
}

/// Appends `parts` as one array (`head` `*`) or push message (`>`) of
/// bulk strings.
fn encode_message(out: &mut Vec<u8>, head: u8, parts: &[&[u8]]) {
    let mut n = itoa::Buffer::new();
    out.push(head);
    out.extend_from_slice(n.format(parts.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    for p in parts {
        out.push(b'$');
        out.extend_from_slice(n.format(p.len()).as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(p);
        out.extend_from_slice(b"\r\n");
    }
}

/// One connection's subscriptions. Created empty with the session; the
/// first subscription registers a [`Subscriber`] with the registry, and
/// dropping this (the connection closing) removes every subscription.
#[derive(Default)]
pub struct ClientSubs {
    registry: Option<Arc<PubSub>>,
    subscriber: Option<Arc<Subscriber>>,
    channels: HashSet<Box<[u8]>, RandomState>,
    /// In subscription order: PUNSUBSCRIBE without arguments goes through
    /// them in that order, as Redis's list does.
    patterns: Vec<Box<[u8]>>,
    shard_channels: HashSet<Box<[u8]>, RandomState>,
}

impl ClientSubs {
    /// The queue messages arrive in, once the client subscribed to anything.
    pub fn subscriber(&self) -> Option<&Arc<Subscriber>> {
        self.subscriber.as_ref()
    }

    /// True while subscribed to anything: RESP2 clients are then in
    /// subscribed mode, where only a few commands may run.
    pub fn active(&self) -> bool {
        self.total() > 0
    }

    /// Channels plus patterns: the count SUBSCRIBE, PSUBSCRIBE and their
    /// UNSUBSCRIBEs report.
    pub fn count(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }

    /// Shard channels: the count SSUBSCRIBE and SUNSUBSCRIBE report.
    pub fn shard_count(&self) -> usize {
        self.shard_channels.len()
    }

    /// Every subscription of every kind.
    pub fn total(&self) -> usize {
        self.count() + self.shard_count()
    }

    /// How many subscriptions of `kind` (CLIENT LIST's sub, psub, ssub).
    pub fn of_kind(&self, kind: Kind) -> usize {
        match kind {
            Kind::Channel => self.channels.len(),
            Kind::Pattern => self.patterns.len(),
            Kind::Shard => self.shard_channels.len(),
        }
    }

    /// The names subscribed to with `kind` (for UNSUBSCRIBE without
    /// arguments, and for permission checks).
    pub fn names(&self, kind: Kind) -> Vec<Box<[u8]>> {
        match kind {
            Kind::Channel => self.channels.iter().cloned().collect(),
            Kind::Pattern => self.patterns.clone(),
            Kind::Shard => self.shard_channels.iter().cloned().collect(),
        }
    }

    /// Subscribes client `id` to `name`; false if it already was. The
    /// first subscription creates the client's [`Subscriber`], encoding
    /// for RESP3 when `resp3`.
    pub fn subscribe(
        &mut self,
        registry: &Arc<PubSub>,
        id: u64,
        resp3: bool,
        kind: Kind,
        name: &[u8],
    ) -> bool {
        let added = match kind {
            Kind::Channel => self.channels.insert(name.into()),
            Kind::Shard => self.shard_channels.insert(name.into()),
            Kind::Pattern => {
                let new = !self.patterns.iter().any(|p| **p == *name);
                if new {
                    self.patterns.push(name.into());
                }
                new
            }
        };
        if added {
            let sub = self
                .subscriber
                .get_or_insert_with(|| Arc::new(Subscriber::new(id, resp3)));
            registry.add(kind, name, sub);
            self.registry.get_or_insert_with(|| registry.clone());
        }
        added
    }

    /// Unsubscribes from `name`; false if the client was not subscribed.
    pub fn unsubscribe(&mut self, kind: Kind, name: &[u8]) -> bool {
        let removed = match kind {
            Kind::Channel => self.channels.remove(name),
            Kind::Shard => self.shard_channels.remove(name),
            Kind::Pattern => match self.patterns.iter().position(|p| **p == *name) {
                Some(i) => {
                    self.patterns.remove(i);
                    true
                }
                None => false,
            },
        };
        if removed {
            if let (Some(reg), Some(sub)) = (&self.registry, &self.subscriber) {
                reg.remove(kind, name, sub.id);
            }
        }
        removed
    }
}

impl Drop for ClientSubs {
    fn drop(&mut self) {
        let (Some(reg), Some(sub)) = (&self.registry, &self.subscriber) else {
            return;
        };
        for name in &self.channels {
            reg.remove(Kind::Channel, name, sub.id);
        }
        for name in &self.patterns {
            reg.remove(Kind::Pattern, name, sub.id);
        }
        for name in &self.shard_channels {
            reg.remove(Kind::Shard, name, sub.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(hard: u64, soft: u64, soft_seconds: i32) -> OutputLimit {
        OutputLimit {
            hard,
            soft,
            soft_seconds,
        }
    }

    fn taken(sub: &Subscriber) -> String {
        let mut out = Vec::new();
        assert!(sub.drain_into(&mut out));
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn publish_reaches_channels_and_matching_patterns_in_each_dialect() {
        let reg = Arc::new(PubSub::default());
        let (mut a, mut b) = (ClientSubs::default(), ClientSubs::default());
        assert!(a.subscribe(&reg, 1, false, Kind::Channel, b"news"));
        assert!(!a.subscribe(&reg, 1, false, Kind::Channel, b"news"));
        assert!(b.subscribe(&reg, 2, true, Kind::Pattern, b"n*"));
        assert!(b.subscribe(&reg, 2, true, Kind::Pattern, b"x*"));
        assert_eq!(reg.publish(b"news", b"hi"), 2);
        assert_eq!(reg.publish(b"other", b"hi"), 0);
        assert_eq!(
            taken(a.subscriber().unwrap()),
            "*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$2\r\nhi\r\n"
        );
        assert_eq!(
            taken(b.subscriber().unwrap()),
            ">4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$2\r\nhi\r\n"
        );
        assert_eq!(reg.count(Kind::Pattern), 2);
        assert_eq!(reg.subscribers(Kind::Channel, b"news"), 1);
        assert_eq!(a.count(), 1);
        assert_eq!(b.count(), 2);
        assert_eq!(
            b.names(Kind::Pattern),
            vec![b"n*"[..].into(), b"x*"[..].into()]
        );
    }

    #[test]
    fn shard_channels_are_their_own_namespace() {
        let reg = Arc::new(PubSub::default());
        let mut a = ClientSubs::default();
        a.subscribe(&reg, 1, false, Kind::Shard, b"s");
        assert_eq!(reg.publish(b"s", b"x"), 0);
        assert_eq!(reg.spublish(b"s", b"x"), 1);
        assert_eq!(a.count(), 0);
        assert_eq!(a.shard_count(), 1);
        assert!(a.active());
        assert_eq!(
            taken(a.subscriber().unwrap()),
            "*3\r\n$8\r\nsmessage\r\n$1\r\ns\r\n$1\r\nx\r\n"
        );
        assert_eq!(reg.active(Kind::Shard, None), vec![b"s"[..].into()]);
        assert!(reg.active(Kind::Channel, None).is_empty());
    }

    #[test]
    fn unsubscribing_and_dropping_leave_the_registry_empty() {
        let reg = Arc::new(PubSub::default());
        let mut a = ClientSubs::default();
        a.subscribe(&reg, 1, false, Kind::Channel, b"c");
        a.subscribe(&reg, 1, false, Kind::Pattern, b"p*");
        a.subscribe(&reg, 1, false, Kind::Shard, b"s");
        let mut b = ClientSubs::default();
        b.subscribe(&reg, 2, false, Kind::Channel, b"c");
        assert!(a.unsubscribe(Kind::Channel, b"c"));
        assert!(!a.unsubscribe(Kind::Channel, b"c"));
        assert_eq!(reg.subscribers(Kind::Channel, b"c"), 1);
        drop(a);
        assert_eq!(reg.count(Kind::Pattern), 0);
        assert_eq!(reg.count(Kind::Shard), 0);
        drop(b);
        assert_eq!(reg.count(Kind::Channel), 0);
    }

    #[test]
    fn the_hard_limit_closes_at_its_edge_and_frees_the_queue() {
        let reg = Arc::new(PubSub::new(limit(150, 0, 0)));
        let mut a = ClientSubs::default();
        a.subscribe(&reg, 1, false, Kind::Channel, b"c");
        let sub = a.subscriber().unwrap().clone();
        // each message is 34 bytes: *3 $7 message $1 c $4 xxxx
        let msg = b"xxxx";
        for _ in 0..4 {
            reg.publish(b"c", msg);
        }
        assert_eq!(sub.unsent(), 136);
        assert!(!sub.is_closed());
        // taken but unwritten bytes still count
        let mut out = Vec::new();
        assert!(sub.drain_into(&mut out));
        assert_eq!(sub.unsent(), 136);
        reg.publish(b"c", msg); // 170 >= 150
        assert!(sub.is_closed());
        assert_eq!(sub.unsent(), 136);
        assert!(!sub.drain_into(&mut out));
        // publishing to a closed subscriber queues nothing
        reg.publish(b"c", msg);
        sub.sent();
        assert_eq!(sub.unsent(), 0);
    }

    #[test]
    fn writing_out_makes_room_again() {
        let reg = Arc::new(PubSub::new(limit(60, 0, 0)));
        let mut a = ClientSubs::default();
        a.subscribe(&reg, 1, false, Kind::Channel, b"c");
        let sub = a.subscriber().unwrap().clone();
        let mut out = Vec::new();
        for _ in 0..10 {
            reg.publish(b"c", b"xxxx");
            assert!(sub.drain_into(&mut out));
            sub.sent();
        }
        assert!(!sub.is_closed());
        assert_eq!(out.len(), 340);
    }

    #[test]
    fn the_soft_limit_closes_only_after_its_seconds() {
        let mut q = Queue {
            buf: Vec::new(),
            in_flight: 0,
            resp3: false,
            soft_since: None,
            closed: false,
        };
        let l = limit(0, 10, 2);
        let t0 = Instant::now();
        let at = |s: u64| t0 + std::time::Duration::from_secs(s);
        assert!(!over_limit(&mut q, 9, l, at(0)));
        assert!(!over_limit(&mut q, 10, l, at(0)));
        assert!(!over_limit(&mut q, 10, l, at(2)));
        // back under the soft limit: the clock stops
        assert!(!over_limit(&mut q, 5, l, at(3)));
        assert!(!over_limit(&mut q, 10, l, at(4)));
        assert!(!over_limit(&mut q, 10, l, at(6)));
        assert!(over_limit(&mut q, 10, l, at(7)));
        // no limits at all
        let mut q2 = Queue {
            buf: Vec::new(),
            in_flight: 0,
            resp3: false,
            soft_since: None,
            closed: false,
        };
        assert!(!over_limit(&mut q2, u64::MAX, limit(0, 0, 0), at(100)));
    }

    #[test]
    fn closing_from_outside_wakes_the_connection() {
        let sub = Subscriber::new(7, false);
        sub.close();
        assert!(sub.is_closed());
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            sub.ready().await;
            sub.closed().await;
        });
    }
}
