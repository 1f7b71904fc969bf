//! Tags: a key may carry tags (byte strings), a tag can be invalidated in
//! O(1) whatever its number of members, a key prefix can be invalidated as
//! cheaply, and a tag doubles as an index of its members.
//!
//! # Epochs
//! Every version of a key has an *epoch*: its CAS, or (rarely) an explicit
//! epoch stored in the entry when the client chose a CAS below the
//! database's last invalidation. Invalidations take their epoch from the
//! same counter as automatic CAS values, while holding every shard lock of
//! the database, so each write is wholly before or wholly after each
//! invalidation, and the log records them in that order. A version is
//! *dead* when one of its tags, or a prefix of its key, was invalidated at
//! an epoch above its own: that is the whole check, and nothing is visited
//! at the call. A key written after the call has a higher epoch and lives.
//!
//! # What is kept
//! Per database, a `Registry` (behind its own mutex, always locked after
//! shard locks, never before) holds each tag's name, its id (what entries
//! store, 4 bytes), its members (a table of key hashes: the index that TAG
//! SCAN walks and TAG CARD counts) and how many dead entries still hold it.
//! Invalidating a tag moves its member table aside whole into the pending
//! queue (O(1)) and starts an empty one; the expiry cycle then walks the
//! pending tables a bounded number of hashes at a time and removes the dead
//! entries. Every removal of a tagged entry (delete, overwrite, expiry,
//! eviction, reclamation) takes its hash out of the members of its live
//! tags at once, so an index never holds more than its live members plus
//! the dead entries the sweep has not reached.
//!
//! The epochs of the invalidations themselves (`Invalidations`: the last
//! epoch of each tag that still has dead entries, and a trie of pending
//! prefix invalidations) change only while every shard lock of the database
//! is held, so a reader holding any one shard lock reads them without a
//! lock of their own. Each shard has a `watch` flag, set while anything is
//! pending: with it clear, reads pay one byte test for this whole feature.
//! Prefix invalidations are forgotten after a background pass over the
//! database that started after them has removed their dead keys.

use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::fmt;
use std::hash::BuildHasher;

use foldhash::fast::RandomState;
/// The hasher of tag names: another type than the keyspace's, so the key
/// hash keeps its one monomorphic copy (which the compiler then inlines
/// into the hot path; a second caller made it out of line: callgrind).
type NameHasher = foldhash::quality::RandomState;
use hashbrown::{HashMap, HashTable};

use crate::entry::Entry;

#[cfg(test)]
mod engine_tests;
mod ops;

/// Default most tags one key may carry (`--max-tags-per-key`).
pub const DEFAULT_MAX_TAGS_PER_KEY: usize = 64;
/// Default longest tag in bytes (`--max-tag-len`).
pub const DEFAULT_MAX_TAG_LEN: usize = 1024;
/// Hard ceiling of [`TagLimits::max_tags_per_key`] (the entry stores the
/// count in 16 bits).
pub const MAX_TAGS_PER_KEY_CEILING: usize = u16::MAX as usize;
/// Ceiling the server puts on [`TagLimits::max_tag_len`] (1 MiB): a tag, or
/// a prefix in the invalidation trie, is bookkeeping, not a value.
pub const MAX_TAG_LEN_CEILING: usize = 1 << 20;

/// The configurable limits on tags, checked on every tagged write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TagLimits {
    /// Most distinct tags one key may carry (1..=[`MAX_TAGS_PER_KEY_CEILING`]).
    pub max_tags_per_key: usize,
    /// Longest tag in bytes.
    pub max_tag_len: usize,
}

impl Default for TagLimits {
    fn default() -> Self {
        TagLimits {
            max_tags_per_key: DEFAULT_MAX_TAGS_PER_KEY,
            max_tag_len: DEFAULT_MAX_TAG_LEN,
        }
    }
}

/// A tagged write refused by [`TagLimits`]; nothing was changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TagError {
    /// The key would carry more distinct tags than allowed.
    TooManyTags {
        /// The limit in force.
        max: usize,
    },
    /// A tag is longer than allowed.
    TagTooLong {
        /// The limit in force.
        max: usize,
    },
    /// A prefix to invalidate is longer than allowed (the tag length limit).
    PrefixTooLong {
        /// The limit in force.
        max: usize,
    },
    /// TAG ADD / TAG REMOVE met a key holding a hash or set: only string
    /// keys carry tags (see docs/tags.md).
    WrongType,
}

impl fmt::Display for TagError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TagError::TooManyTags { max } => {
                write!(f, "a key may carry at most {max} tags (max-tags-per-key)")
            }
            TagError::TagTooLong { max } => {
                write!(f, "a tag may be at most {max} bytes long (max-tag-len)")
            }
            TagError::PrefixTooLong { max } => {
                write!(f, "a prefix may be at most {max} bytes long (max-tag-len)")
            }
            TagError::WrongType => crate::types::WrongType.fmt(f),
        }
    }
}

impl std::error::Error for TagError {}

/// A list of byte strings (tag names or key prefixes) in its encoded form,
/// `[len u32 LE][bytes]` repeated: how mutation records carry them, so a
/// log can copy the list as it is and a decoder can lend it without copying.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct TagList<'a>(&'a [u8]);

impl<'a> TagList<'a> {
    /// The empty list.
    pub const EMPTY: TagList<'static> = TagList(&[]);

    /// Checks that `bytes` is a well-formed encoded list.
    pub fn from_encoded(bytes: &'a [u8]) -> Option<TagList<'a>> {
        let mut at = 0usize;
        while at < bytes.len() {
            let len = u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?) as usize;
            at = at.checked_add(4 + len)?;
            if at > bytes.len() {
                return None;
            }
        }
        Some(TagList(bytes))
    }

    /// The encoded bytes.
    pub fn encoded(&self) -> &'a [u8] {
        self.0
    }

    /// The strings, in order.
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let bytes = self.0;
        let mut at = 0usize;
        std::iter::from_fn(move || {
            if at >= bytes.len() {
                return None;
            }
            let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
            let s = &bytes[at + 4..at + 4 + len];
            at += 4 + len;
            Some(s)
        })
    }

    /// Number of strings.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// True for the empty list.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for TagList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.iter().map(String::from_utf8_lossy))
            .finish()
    }
}

/// Appends the encoded form of `items` to `out` (see [`TagList`]).
pub fn encode_tag_list<'x>(items: impl IntoIterator<Item = &'x [u8]>, out: &mut Vec<u8>) {
    for s in items {
        out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        out.extend_from_slice(s);
    }
}

/// Figures for INFO and stats, from [`crate::Engine::tag_summary`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TagSummary {
    /// Tags known (with members, or with dead entries not yet reclaimed).
    pub tags: usize,
    /// Dead entries (invalidated through a tag) not yet reclaimed.
    pub dead_pending: usize,
    /// Prefix invalidations whose background pass has not finished.
    pub prefixes_pending: usize,
    /// Bytes of tag bookkeeping (registry, member tables, pending tables,
    /// prefix trie), counted in used memory.
    pub bytes: usize,
}

/// One tag's name and members, as listed by [`crate::Engine::largest_tags`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagSize {
    /// The tag.
    pub name: Vec<u8>,
    /// Its member count (TAG CARD).
    pub members: usize,
    /// Bytes of its bookkeeping (name, member table).
    pub bytes: usize,
}

// ------------------------------------------------------------ invalidations

/// Pending prefix invalidations: a byte trie whose nodes hold the epoch of
/// the last invalidation of the prefix they spell (0: none).
#[derive(Default)]
pub(crate) struct PrefixTrie {
    /// Node 0 is the root (the empty prefix) once anything was inserted.
    nodes: Vec<Node>,
    /// Prefixes with an epoch.
    prefixes: usize,
}

#[derive(Default, Clone)]
struct Node {
    epoch: u64,
    /// (byte, child index), sorted by byte.
    children: Vec<(u8, u32)>,
}

/// Bytes one trie node is counted as (the node and one child link).
const NODE_BYTES: usize = std::mem::size_of::<Node>() + 8;

impl PrefixTrie {
    pub(crate) fn is_empty(&self) -> bool {
        self.prefixes == 0
    }

    pub(crate) fn prefixes(&self) -> usize {
        self.prefixes
    }

    pub(crate) fn bytes(&self) -> usize {
        self.nodes.len() * NODE_BYTES
    }

    fn child(&self, node: usize, b: u8) -> Option<usize> {
        let c = &self.nodes[node].children;
        c.binary_search_by_key(&b, |x| x.0)
            .ok()
            .map(|i| c[i].1 as usize)
    }

    /// Records an invalidation of `prefix` at `epoch` (work proportional to
    /// the prefix's length).
    pub(crate) fn insert(&mut self, prefix: &[u8], epoch: u64) {
        if self.nodes.is_empty() {
            self.nodes.push(Node::default());
        }
        let mut at = 0;
        for &b in prefix {
            at = match self.child(at, b) {
                Some(c) => c,
                None => {
                    let id = self.nodes.len() as u32;
                    self.nodes.push(Node::default());
                    let c = &mut self.nodes[at].children;
                    let i = c.partition_point(|x| x.0 < b);
                    c.insert(i, (b, id));
                    id as usize
                }
            };
        }
        let n = &mut self.nodes[at];
        if n.epoch == 0 {
            self.prefixes += 1;
        }
        n.epoch = n.epoch.max(epoch);
    }

    /// True when a prefix of `key` was invalidated at an epoch above
    /// `epoch`: a walk of at most the key's bytes.
    pub(crate) fn kills(&self, key: &[u8], epoch: u64) -> bool {
        if self.nodes.is_empty() {
            return false;
        }
        if self.nodes[0].epoch > epoch {
            return true;
        }
        let mut at = 0;
        for &b in key {
            match self.child(at, b) {
                Some(c) => at = c,
                None => return false,
            }
            if self.nodes[at].epoch > epoch {
                return true;
            }
        }
        false
    }

    /// Forgets the invalidations at or below `covers` (their keys have been
    /// reclaimed) and rebuilds the trie from the rest.
    pub(crate) fn forget_upto(&mut self, covers: u64) {
        let mut keep = Vec::new();
        let mut stack = vec![(0usize, Vec::new())];
        if self.nodes.is_empty() {
            return;
        }
        while let Some((n, path)) = stack.pop() {
            let node = &self.nodes[n];
            if node.epoch > covers {
                keep.push((path.clone(), node.epoch));
            }
            for &(b, c) in &node.children {
                let mut p = path.clone();
                p.push(b);
                stack.push((c as usize, p));
            }
        }
        *self = PrefixTrie::default();
        for (p, e) in keep {
            self.insert(&p, e);
        }
    }
}

/// What decides whether an entry is dead. Changed only while every shard
/// lock of the database is held (see [`ShardsLocked`]).
#[derive(Default)]
pub(crate) struct Invalidations {
    /// Tag id -> epoch of its last invalidation, for tags that may still
    /// have dead entries.
    pub(crate) tags: HashMap<u32, u64, RandomState>,
    /// Pending prefix invalidations.
    pub(crate) trie: PrefixTrie,
    /// The highest epoch of any invalidation in this database: a version
    /// whose chosen CAS is below it stores this as its explicit epoch.
    pub(crate) watermark: u64,
}

impl Invalidations {
    /// True while an entry may be dead.
    pub(crate) fn any(&self) -> bool {
        !self.tags.is_empty() || !self.trie.is_empty()
    }

    /// True when `e` was invalidated (by one of its tags or a prefix).
    pub(crate) fn is_dead(&self, e: &Entry) -> bool {
        let epoch = e.epoch();
        if !self.tags.is_empty() {
            for id in e.tag_ids().iter() {
                if matches!(self.tags.get(&id), Some(&t) if t > epoch) {
                    return true;
                }
            }
        }
        self.trie.kills(e.key(), epoch)
    }

    /// True when `e` is dead through tag `id` itself.
    fn dead_through(&self, id: u32, epoch: u64) -> bool {
        matches!(self.tags.get(&id), Some(&t) if t > epoch)
    }

    /// The explicit epoch a new version with CAS `cas` needs (Some only
    /// when `cas` is below the watermark: a chosen CAS).
    pub(crate) fn epoch_for(&self, cas: u64) -> Option<u64> {
        (cas < self.watermark).then_some(self.watermark)
    }

    fn bytes(&self) -> usize {
        self.tags.capacity() * 16 + self.trie.bytes()
    }
}

/// A value every shard lock of one database guards together: changed only
/// while all of them are held, read while any one is.
pub(crate) struct ShardsLocked<T>(UnsafeCell<T>);

// SAFETY: access follows the locking rule of `get`/`get_mut`, under which
// a writer excludes every reader through the shard mutexes (which also give
// the happens-before between them).
unsafe impl<T: Send + Sync> Sync for ShardsLocked<T> {}

impl<T: Default> Default for ShardsLocked<T> {
    fn default() -> Self {
        ShardsLocked(UnsafeCell::new(T::default()))
    }
}

impl<T> ShardsLocked<T> {
    /// # Safety
    /// The caller holds at least one shard lock of the database this value
    /// belongs to, for as long as the reference lives.
    pub(crate) unsafe fn get(&self) -> &T {
        &*self.0.get()
    }

    /// # Safety
    /// The caller holds every shard lock of the database this value
    /// belongs to, for as long as the reference lives.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn get_mut(&self) -> &mut T {
        &mut *self.0.get()
    }
}

// ------------------------------------------------------------ registry

/// One tag.
struct Tag {
    name: Box<[u8]>,
    /// Hashes of the keys holding this tag whose versions are not dead
    /// through it (TAG CARD is its length).
    members: HashTable<u64>,
    /// Entries holding this tag that are dead through it, not yet removed.
    dead: usize,
    /// Changes whenever the member table may have moved its slots
    /// (creation, growth, shrink, invalidation): a TAG SCAN cursor from
    /// before restarts.
    gen: u32,
    /// Unique per tag created (ids are reused once a tag is forgotten).
    serial: u64,
}

/// Fixed bytes a tag is counted as, beyond its name and member buckets.
const TAG_BYTES: usize = std::mem::size_of::<Option<Tag>>() + 5;

impl Tag {
    fn bytes(&self) -> usize {
        TAG_BYTES + self.name.len() + table_bytes(&self.members)
    }
}

fn table_bytes(t: &HashTable<u64>) -> usize {
    if t.capacity() == 0 {
        0
    } else {
        t.num_buckets() * 9
    }
}

/// A member table set aside by an invalidation, walked by the sweep.
struct Pending {
    id: u32,
    members: HashTable<u64>,
    bucket: usize,
}

/// The background pass over the keyspace that reclaims prefix-invalidated
/// keys: an [`crate::Engine::scan`]-style cursor and the highest prefix
/// epoch it covers.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pass {
    pub(crate) cursor: u64,
    pub(crate) covers: u64,
}

/// Per-database tag bookkeeping (see the module docs). Lock it only while
/// holding the shard locks the operation needs, never the other way round.
#[derive(Default)]
pub(crate) struct Registry {
    hasher: NameHasher,
    /// Tag ids, found by the hash of their name.
    ids: HashTable<u32>,
    tags: Vec<Option<Tag>>,
    free: Vec<u32>,
    pending: VecDeque<Pending>,
    /// Sum of the tags' `dead`.
    dead_total: usize,
    next_serial: u64,
    /// Bytes of everything here plus the database's [`Invalidations`].
    bytes: usize,
    /// The prefix pass in progress, if any.
    pub(crate) pass: Option<Pass>,
    /// Mirror of the trie's prefix count and highest epoch (the trie
    /// itself is read under shard locks).
    pub(crate) prefixes_pending: usize,
    pub(crate) prefix_epoch_max: u64,
    /// An invalidated tag ran out of dead entries: [`Invalidations::tags`]
    /// can drop it (under all shard locks).
    pub(crate) cleanup_wanted: bool,
    /// Bytes of the Invalidations last counted into `bytes`.
    inv_bytes: usize,
    /// Tags that may have lost their last member or dead entry.
    maybe_unused: Vec<u32>,
}

impl Registry {
    /// Bytes of tag bookkeeping, counted in used memory.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(crate) fn summary(&self) -> TagSummary {
        TagSummary {
            tags: self.tags.len() - self.free.len(),
            dead_pending: self.dead_total,
            prefixes_pending: self.prefixes_pending,
            bytes: self.bytes,
        }
    }

    fn name_hash(&self, name: &[u8]) -> u64 {
        self.hasher.hash_one(name)
    }

    /// The id of tag `name`, if it is known.
    pub(crate) fn id_of(&self, name: &[u8]) -> Option<u32> {
        let h = self.name_hash(name);
        let tags = &self.tags;
        self.ids
            .find(
                h,
                |&id| matches!(&tags[id as usize], Some(t) if &*t.name == name),
            )
            .copied()
    }

    /// The name of tag `id` (which must be known).
    pub(crate) fn name(&self, id: u32) -> &[u8] {
        &self.tags[id as usize].as_ref().expect("known tag").name
    }

    /// The serial of tag `id`, if known.
    pub(crate) fn serial(&self, id: u32) -> Option<u64> {
        self.tags
            .get(id as usize)
            .and_then(|t| t.as_ref())
            .map(|t| t.serial)
    }

    /// The id of tag `name`, created (with no members) if unknown. A tag
    /// created here and then given no member must go through
    /// [`Registry::forget_if_unused`].
    pub(crate) fn intern(&mut self, name: &[u8]) -> u32 {
        if let Some(id) = self.id_of(name) {
            return id;
        }
        self.next_serial += 1;
        let tag = Tag {
            name: name.into(),
            members: HashTable::new(),
            dead: 0,
            gen: self.next_serial as u32,
            serial: self.next_serial,
        };
        self.bytes += tag.bytes();
        let id = match self.free.pop() {
            Some(id) => {
                self.tags[id as usize] = Some(tag);
                id
            }
            None => {
                self.tags.push(Some(tag));
                self.bytes += 4; // the id's share of the tables below
                (self.tags.len() - 1) as u32
            }
        };
        let h = self.name_hash(name);
        let before = self.ids_bytes();
        let (tags, hasher) = (&self.tags, &self.hasher);
        self.ids.insert_unique(h, id, |&i| {
            hasher.hash_one(&tags[i as usize].as_ref().expect("known tag").name)
        });
        self.bytes = self.bytes + self.ids_bytes() - before;
        id
    }

    /// Bytes of the name -> id table's buckets.
    fn ids_bytes(&self) -> usize {
        if self.ids.capacity() == 0 {
            0
        } else {
            self.ids.num_buckets() * 5
        }
    }

    /// Forgets tag `id` if it has no member and no dead entry.
    pub(crate) fn forget_if_unused(&mut self, id: u32) {
        let Some(t) = &self.tags[id as usize] else {
            return;
        };
        if !t.members.is_empty() || t.dead > 0 {
            return;
        }
        let t = self.tags[id as usize].take().expect("checked");
        self.bytes -= t.bytes();
        let h = self.name_hash(&t.name);
        if let Ok(slot) = self.ids.find_entry(h, |&i| i == id) {
            slot.remove();
        }
        self.free.push(id);
        // its member tables set aside by invalidations are empty of dead
        // entries by now: free them
        self.drop_pending_of(id);
    }

    fn drop_pending_of(&mut self, id: u32) {
        let mut freed = 0;
        self.pending.retain(|p| {
            if p.id == id {
                freed += table_bytes(&p.members);
                false
            } else {
                true
            }
        });
        self.bytes -= freed;
    }

    /// Number of members of tag `name` (TAG CARD).
    pub(crate) fn card(&self, name: &[u8]) -> usize {
        self.id_of(name).map_or(0, |id| {
            self.tags[id as usize].as_ref().unwrap().members.len()
        })
    }

    /// Records that the entry of key hash `hash` with tag ids `ids` is in
    /// the table (a write).
    pub(crate) fn arrive(&mut self, hash: u64, ids: impl Iterator<Item = u32>) {
        for id in ids {
            let t = self.tags[id as usize].as_mut().expect("known tag");
            if t.members.find(hash, |&h| h == hash).is_some() {
                continue;
            }
            let before = table_bytes(&t.members);
            if t.members.len() == t.members.capacity() {
                self.next_serial += 1;
                t.gen = self.next_serial as u32;
            }
            t.members.insert_unique(hash, hash, |&h| h);
            let after = table_bytes(&t.members);
            self.bytes = self.bytes + after - before;
        }
    }

    /// Records that entry `e` (of key hash `hash`) left the table, by any
    /// path: its live tags lose it as a member, the tags it is dead through
    /// count one dead entry less.
    pub(crate) fn depart(&mut self, inv: &Invalidations, hash: u64, e: &Entry) {
        let epoch = e.epoch();
        for id in e.tag_ids().iter() {
            if inv.dead_through(id, epoch) {
                let t = self.tags[id as usize].as_mut().expect("known tag");
                t.dead = t.dead.saturating_sub(1);
                self.dead_total = self.dead_total.saturating_sub(1);
                if t.dead == 0 {
                    self.cleanup_wanted = true;
                    self.drop_pending_of(id);
                }
            } else {
                let t = self.tags[id as usize].as_mut().expect("known tag");
                if let Ok(slot) = t.members.find_entry(hash, |&h| h == hash) {
                    slot.remove();
                }
                // shrink a table that emptied out, so an index stays within
                // its live members plus a bounded share
                let cap = t.members.capacity();
                if cap > 64 && t.members.len() * 4 < cap {
                    let before = table_bytes(&t.members);
                    t.members.shrink_to(t.members.len() * 2, |&h| h);
                    self.next_serial += 1;
                    t.gen = self.next_serial as u32;
                    self.bytes = self.bytes + table_bytes(&t.members) - before;
                }
            }
            // forgotten only once the caller is done (a rewrite of the same
            // key departs, then arrives again)
            self.maybe_unused.push(id);
        }
    }

    /// Forgets the tags that lost their last member or dead entry during
    /// this lock of the registry (called as its guard goes).
    pub(crate) fn forget_unused(&mut self) {
        while let Some(id) = self.maybe_unused.pop() {
            self.forget_if_unused(id);
        }
        if self.free.len() == self.tags.len() && !self.tags.is_empty() {
            // no tag left: give the tables' memory back
            self.bytes -= self.ids_bytes() + 4 * self.tags.len();
            self.ids = HashTable::new();
            self.tags = Vec::new();
            self.free = Vec::new();
        }
    }

    /// Invalidates tag `name` (all shard locks held; `inv` is the
    /// database's). Returns its member count before the call.
    pub(crate) fn invalidate(&mut self, inv: &mut Invalidations, name: &[u8], epoch: u64) -> usize {
        let Some(id) = self.id_of(name) else {
            return 0;
        };
        self.next_serial += 1;
        let gen = self.next_serial as u32;
        let t = self.tags[id as usize].as_mut().expect("known tag");
        let n = t.members.len();
        if n == 0 {
            return 0;
        }
        let members = std::mem::take(&mut t.members);
        t.gen = gen;
        t.dead += n;
        self.dead_total += n;
        self.pending.push_back(Pending {
            id,
            members,
            bucket: 0,
        });
        inv.tags.insert(id, epoch);
        inv.watermark = inv.watermark.max(epoch);
        self.recount_inv(inv);
        n
    }

    /// [`Registry::invalidate`] for replay, where a snapshot may already
    /// hold versions written after the invalidation (compaction does not
    /// stop writes): only the members for which `older` says their version
    /// predates `epoch` are set aside as dead, the others stay members.
    pub(crate) fn invalidate_exact(
        &mut self,
        inv: &mut Invalidations,
        name: &[u8],
        epoch: u64,
        older: impl Fn(u32, u64) -> bool,
    ) -> usize {
        let Some(id) = self.id_of(name) else {
            return 0;
        };
        self.next_serial += 1;
        let gen = self.next_serial as u32;
        let t = self.tags[id as usize].as_mut().expect("known tag");
        let before = table_bytes(&t.members);
        let mut dead = HashTable::new();
        for h in t.members.extract_if(|h| older(id, *h)) {
            dead.insert_unique(h, h, |&h| h);
        }
        let n = dead.len();
        if n == 0 {
            return 0;
        }
        t.gen = gen;
        t.dead += n;
        self.dead_total += n;
        self.bytes = self.bytes + table_bytes(&t.members) + table_bytes(&dead) - before;
        self.pending.push_back(Pending {
            id,
            members: dead,
            bucket: 0,
        });
        inv.tags.insert(id, epoch);
        inv.watermark = inv.watermark.max(epoch);
        self.recount_inv(inv);
        n
    }

    /// Records a prefix invalidation (all shard locks held).
    pub(crate) fn invalidate_prefix(&mut self, inv: &mut Invalidations, prefix: &[u8], epoch: u64) {
        inv.trie.insert(prefix, epoch);
        inv.watermark = inv.watermark.max(epoch);
        self.prefixes_pending = inv.trie.prefixes();
        self.prefix_epoch_max = self.prefix_epoch_max.max(epoch);
        self.recount_inv(inv);
    }

    /// Brings the count of the Invalidations' bytes up to date.
    pub(crate) fn recount_inv(&mut self, inv: &Invalidations) {
        let now = inv.bytes();
        self.bytes = self.bytes + now - self.inv_bytes;
        self.inv_bytes = now;
    }

    /// Drops the tags of [`Invalidations::tags`] that have no dead entry
    /// left (all shard locks held).
    pub(crate) fn cleanup(&mut self, inv: &mut Invalidations) {
        let tags = &self.tags;
        inv.tags
            .retain(|&id, _| matches!(tags.get(id as usize), Some(Some(t)) if t.dead > 0));
        if inv.tags.is_empty() {
            inv.tags = HashMap::default();
        }
        self.cleanup_wanted = false;
        self.recount_inv(inv);
    }

    /// Takes up to `max` (key hash, tag id) pairs from the pending tables
    /// for the sweep to check, freeing the tables it finishes.
    pub(crate) fn take_pending(&mut self, max: usize, out: &mut Vec<(u64, u32)>) {
        while out.len() < max {
            let Some(p) = self.pending.front_mut() else {
                break;
            };
            let n = p.members.num_buckets();
            while p.bucket < n && out.len() < max {
                if let Some(&h) = p.members.get_bucket(p.bucket) {
                    out.push((h, p.id));
                }
                p.bucket += 1;
            }
            if p.bucket >= n || p.members.capacity() == 0 {
                let p = self.pending.pop_front().expect("front");
                self.bytes -= table_bytes(&p.members);
            }
        }
    }

    /// True when the sweep has tag work queued.
    pub(crate) fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// One step of a TAG SCAN: up to `count` member hashes of tag `name`
    /// from `cursor`, and the next cursor (0 at the end). Also returns the
    /// tag's id and serial, for the caller to check after relocking.
    pub(crate) fn scan_members(
        &self,
        name: &[u8],
        cursor: u64,
        count: usize,
        out: &mut Vec<u64>,
    ) -> Option<(u32, u64, u64)> {
        const BUCKET_BITS: u32 = 40;
        let id = self.id_of(name)?;
        let t = self.tags[id as usize].as_ref().expect("known tag");
        let gen = (t.gen & 0x7f_ffff) as u64;
        let mut bucket = (cursor & ((1 << BUCKET_BITS) - 1)) as usize;
        if cursor != 0 && (cursor >> BUCKET_BITS) != gen {
            bucket = 0; // the table moved: start again (keys may repeat)
        }
        let n = if t.members.capacity() == 0 {
            0
        } else {
            t.members.num_buckets()
        };
        let count = count.max(1);
        while bucket < n {
            if let Some(&h) = t.members.get_bucket(bucket) {
                out.push(h);
            }
            bucket += 1;
            if out.len() >= count && bucket < n {
                return Some((id, t.serial, (gen << BUCKET_BITS) | bucket as u64));
            }
        }
        Some((id, t.serial, 0))
    }

    /// The `n` tags with the most members.
    pub(crate) fn largest(&self, n: usize) -> Vec<TagSize> {
        let mut all: Vec<TagSize> = self
            .tags
            .iter()
            .flatten()
            .map(|t| TagSize {
                name: t.name.to_vec(),
                members: t.members.len(),
                bytes: t.bytes(),
            })
            .collect();
        all.sort_by(|a, b| b.members.cmp(&a.members).then(a.name.cmp(&b.name)));
        all.truncate(n);
        all
    }

    /// The bytes this registry should count, computed from scratch (tests
    /// compare it with the running count).
    #[cfg(test)]
    pub(crate) fn recount(&self, inv: &Invalidations) -> usize {
        let tags: usize = self.tags.iter().flatten().map(|t| t.bytes()).sum();
        let pending: usize = self.pending.iter().map(|p| table_bytes(&p.members)).sum();
        tags + pending + self.ids_bytes() + self.tags.len() * 4 + inv.bytes()
    }

    /// Per-tag counts from scratch: (members, dead) of tag `name`.
    #[cfg(test)]
    pub(crate) fn counts(&self, name: &[u8]) -> Option<(usize, usize)> {
        let id = self.id_of(name)?;
        let t = self.tags[id as usize].as_ref()?;
        Some((t.members.len(), t.dead))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_lists_round_trip_and_reject_bad_lengths() {
        let mut buf = Vec::new();
        encode_tag_list([&b"a"[..], b"", b"cart:13"], &mut buf);
        let l = TagList::from_encoded(&buf).unwrap();
        assert_eq!(l.iter().collect::<Vec<_>>(), [&b"a"[..], b"", b"cart:13"]);
        assert_eq!(l.len(), 3);
        for cut in 1..buf.len() {
            let ok = TagList::from_encoded(&buf[..cut]).is_some();
            assert_eq!(ok, cut == 5 || cut == 9, "cut {cut}");
        }
        assert!(TagList::from_encoded(&[255, 255, 255, 255]).is_none());
        assert!(TagList::EMPTY.is_empty());
    }

    #[test]
    fn the_trie_kills_keys_under_a_prefix_written_before_it() {
        let mut t = PrefixTrie::default();
        assert!(!t.kills(b"abc", 0));
        t.insert(b"ab", 10);
        t.insert(b"abcd", 20);
        t.insert(b"x", 5);
        assert_eq!(t.prefixes(), 3);
        assert!(t.kills(b"ab", 9));
        assert!(t.kills(b"abz", 9));
        assert!(
            !t.kills(b"abz", 10),
            "written at the invalidation's epoch: after it"
        );
        assert!(!t.kills(b"a", 1));
        assert!(t.kills(b"abcde", 15));
        assert!(!t.kills(b"abc", 15));
        t.forget_upto(10);
        assert_eq!(t.prefixes(), 1);
        assert!(!t.kills(b"abz", 9));
        assert!(t.kills(b"abcdq", 19));
        t.forget_upto(20);
        assert!(t.is_empty());
        assert_eq!(t.bytes(), 0);
        // the empty prefix covers every key
        t.insert(b"", 3);
        assert!(t.kills(b"", 2) && t.kills(b"anything", 2) && !t.kills(b"k", 3));
    }
}
