//! One shard of one database: a hash table of entries plus the index of
//! their expiry times. Always used behind the shard's mutex.

use std::collections::BTreeSet;

use foldhash::fast::RandomState;
use hashbrown::hash_table::{Entry as Slot, HashTable};
use std::hash::BuildHasher;

use crate::entry::{idle_secs, Entry, Extras, Meta};
use crate::evict::EvictionPolicy;
use crate::tags::Invalidations;

/// A shard's table and the bookkeeping that must change with it.
#[derive(Default)]
pub(crate) struct Shard {
    table: HashTable<Entry>,
    /// Keys that carry a TTL, ordered by expiry: (expire_at, cas, hash).
    /// The hash finds the entry and the CAS tells it from a later version
    /// of the same key. A CAS is not unique across keys (a caller may
    /// choose one, `Txn::use_cas`), so removal also checks the key's hash.
    expires: BTreeSet<(u64, u64, u64)>,
    /// Bumped whenever the table may move entries between buckets (growth,
    /// in-place rehash, shrink), so a SCAN cursor from before restarts the shard.
    epoch: u16,
    /// Sum of the entries' allocation sizes.
    bytes: usize,
    /// Set while the database has invalidations pending, so an entry may
    /// be dead (see `crate::tags`); changed only under every shard lock.
    pub(crate) watch: bool,
    /// Tagged entries that left the table, with their key hashes, whose
    /// tags' registry has not been told yet (`Engine::settle`).
    pub(crate) departed: Vec<(u64, Entry)>,
    /// Bumped by every metadata-only change ([`Shard::update_meta`]: an
    /// expiry set or cleared keeps the CAS), so a WATCH that remembered a
    /// key's CAS also sees those changes (`Txn::version`).
    meta_changes: u64,
}

fn hash_of(state: &RandomState, key: &[u8]) -> u64 {
    state.hash_one(key)
}

/// Queues a tagged entry that left the table for its registry (the rare
/// path of [`Shard::depart`], kept out of line).
#[cold]
#[inline(never)]
fn queue_departed(departed: &mut Vec<(u64, Entry)>, hash: u64, old: Entry) {
    departed.push((hash, old));
}

/// [`Shard::forget`] on the two fields it changes.
fn forget_in(bytes: &mut usize, expires: &mut BTreeSet<(u64, u64, u64)>, hash: u64, old: &Entry) {
    *bytes -= old.footprint();
    if let Some(t) = old.expire_at() {
        expires.remove(&(t, old.cas(), hash));
    }
}

impl Shard {
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    pub(crate) fn expires_len(&self) -> usize {
        self.expires.len()
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    #[inline]
    pub(crate) fn table_bytes(&self) -> usize {
        // one pointer plus one control byte per bucket; a table that never
        // allocated reports one (static, shared) bucket and owns nothing
        if self.table.capacity() == 0 {
            return 0;
        }
        self.table.num_buckets() * (std::mem::size_of::<Entry>() + 1)
    }

    /// Bytes this shard holds (entries and buckets): what the memory limit
    /// counts.
    #[inline]
    pub(crate) fn footprint(&self) -> usize {
        self.bytes + self.table_bytes()
    }

    /// The bucket of the entry `policy` would evict next, examining up to
    /// `samples` candidates from bucket `start` onwards: an expired entry
    /// first, else the longest idle (LRU, idle measured at access-clock
    /// reading `clock`), the first candidate (random), or the soonest to
    /// expire (`volatile-ttl`, exact: the expiry index is ordered). None
    /// when the shard holds no candidate. The scan is bounded: a volatile
    /// policy that meets few keys with a TTL falls back to the soonest to
    /// expire.
    pub(crate) fn pick_victim(
        &self,
        state: &RandomState,
        policy: EvictionPolicy,
        samples: usize,
        start: usize,
        now: u64,
        clock: u32,
    ) -> Option<usize> {
        let volatile = policy.volatile_only();
        if self.table.is_empty() || (volatile && self.expires.is_empty()) {
            return None;
        }
        let soonest = || {
            let &(_, cas, hash) = self.expires.first()?;
            let is_it = |e: &Entry| e.cas() == cas && hash_of(state, e.key()) == hash;
            self.table.find_bucket_index(hash, is_it)
        };
        if policy == EvictionPolicy::VolatileTtl {
            return soonest();
        }
        let n = self.table.num_buckets();
        let lru = matches!(
            policy,
            EvictionPolicy::AllKeysLru | EvictionPolicy::VolatileLru
        );
        if !volatile {
            return self.pick_any(if lru { samples } else { 1 }, start, now, clock);
        }
        // volatile: only keys with a TTL count, and past this many buckets
        // settle for what was found, or else the expiry index's soonest
        // (never empty here)
        let probes = n.min(samples.saturating_mul(64));
        let mut best: Option<(usize, u32)> = None;
        let mut seen = 0;
        for step in 0..probes {
            let index = (start + step) & (n - 1);
            let Some(e) = self.table.get_bucket(index) else {
                continue;
            };
            if e.expire_at().is_none() {
                continue;
            }
            if e.is_expired(now) {
                return Some(index);
            }
            let idle = if lru {
                idle_secs(e.last_access(), clock)
            } else {
                0
            };
            if best.is_none_or(|(_, b)| idle > b) {
                best = Some((index, idle));
            }
            seen += 1;
            if seen >= samples || !lru {
                break;
            }
        }
        best.map(|(index, _)| index).or_else(soonest)
    }

    /// [`Shard::pick_victim`] for the all-keys policies: the first `want`
    /// occupied buckets from `start` on are found reading only the table's
    /// own arrays (each entry prefetched as its bucket is found), and only
    /// then are their entries read, so their cache misses overlap: in a full
    /// 64 MB keyspace, reading each entry as its bucket was found spent 80%
    /// of the sampling's time waiting on one miss at a time (perf annotate).
    fn pick_any(&self, want: usize, start: usize, now: u64, clock: u32) -> Option<usize> {
        let n = self.table.num_buckets();
        debug_assert!(n.is_power_of_two());
        let mut found = [0usize; crate::evict::MAX_SAMPLES];
        let want = want.min(found.len());
        let mut k = 0;
        for step in 0..n {
            if k == want {
                break;
            }
            let index = (start + step) & (n - 1);
            if let Some(e) = self.table.get_bucket(index) {
                e.prefetch();
                found[k] = index;
                k += 1;
            }
        }
        let mut best: Option<(usize, u32)> = None;
        for &index in &found[..k] {
            let e = self.table.get_bucket(index)?;
            if e.is_expired(now) {
                return Some(index);
            }
            let idle = idle_secs(e.last_access(), clock);
            if best.is_none_or(|(_, b)| idle > b) {
                best = Some((index, idle));
            }
        }
        best.map(|(index, _)| index)
    }

    /// Removes the entry at bucket `index` (from [`Shard::pick_victim`]).
    pub(crate) fn remove_at(&mut self, state: &RandomState, index: usize) -> Option<Entry> {
        let (old, _) = self.table.get_bucket_entry(index).ok()?.remove();
        let hash = hash_of(state, old.key());
        self.forget(hash, &old);
        Some(old)
    }

    pub(crate) fn epoch(&self) -> u16 {
        self.epoch
    }

    pub(crate) fn num_buckets(&self) -> usize {
        self.table.num_buckets()
    }

    /// The live entry at bucket `index`, if that bucket is occupied.
    pub(crate) fn bucket(&self, index: usize) -> Option<&Entry> {
        self.table.get_bucket(index)
    }

    /// Looks `key` up without removing it: None when absent or expired at `now`
    /// (pass 0 to see expired entries too).
    pub(crate) fn peek(&self, hash: u64, key: &[u8], now: u64) -> Option<&Entry> {
        self.table
            .find(hash, |e| e.key() == key)
            .filter(|e| !e.is_expired(now))
    }

    /// Looks `key` up; an entry that has expired by `now` is removed and
    /// reported as missing (lazy expiry). Returns whether one was expired.
    /// The entry is lent mutably so the caller can record the access.
    pub(crate) fn get(&mut self, hash: u64, key: &[u8], now: u64) -> (Option<&mut Entry>, bool) {
        // one probe: the slot either lends the entry or removes it
        let Ok(slot) = self.table.find_entry(hash, |e| e.key() == key) else {
            return (None, false);
        };
        if !slot.get().is_expired(now) {
            return (Some(slot.into_mut()), false);
        }
        let (old, _) = slot.remove();
        // the fields apart from the table, which the early return keeps lent
        forget_in(&mut self.bytes, &mut self.expires, hash, &old);
        if old.has_extras() {
            queue_departed(&mut self.departed, hash, old);
        }
        (None, true)
    }

    /// Inserts or replaces the entry for its key; returns the replaced entry.
    pub(crate) fn insert(&mut self, state: &RandomState, hash: u64, entry: Entry) -> Option<Entry> {
        let index_key = entry.expire_at().map(|t| (t, entry.cas(), hash));
        self.bytes += entry.footprint();
        if self.table.len() == self.table.capacity() {
            // the insert may grow or rehash the table
            self.epoch = self.epoch.wrapping_add(1);
        }
        let key_eq = |e: &Entry| e.key() == entry.key();
        let old = match self.table.entry(hash, key_eq, |e| hash_of(state, e.key())) {
            Slot::Occupied(mut o) => Some(std::mem::replace(o.get_mut(), entry)),
            Slot::Vacant(v) => {
                v.insert(entry);
                None
            }
        };
        // forget the old entry before indexing the new one: both may carry
        // the same (expiry, cas) when only the metadata was rebuilt
        if let Some(old) = &old {
            self.forget(hash, old);
        }
        if let Some(k) = index_key {
            self.expires.insert(k);
        }
        old
    }

    /// Removes the entry for `key`, returning it.
    pub(crate) fn remove(&mut self, hash: u64, key: &[u8]) -> Option<Entry> {
        let found = self.table.find_entry(hash, |e| e.key() == key).ok()?;
        let (old, _) = found.remove();
        self.forget(hash, &old);
        Some(old)
    }

    /// Removes the bookkeeping of an entry that left the table.
    fn forget(&mut self, hash: u64, old: &Entry) {
        forget_in(&mut self.bytes, &mut self.expires, hash, old);
    }

    /// Takes an entry that left the table (returned by [`Shard::insert`],
    /// [`Shard::remove`] or [`Shard::remove_at`]): a tagged one is queued
    /// for its tags' registry, any other is dropped.
    #[inline]
    pub(crate) fn depart(&mut self, hash: u64, old: Entry) {
        if old.has_extras() {
            queue_departed(&mut self.departed, hash, old);
        }
    }

    /// The entries whose key hashes to `hash` (one, but for a 64-bit collision).
    pub(crate) fn with_hash<'s>(
        &'s self,
        state: &'s RandomState,
        hash: u64,
    ) -> impl Iterator<Item = &'s Entry> + 's {
        self.table
            .iter_hash(hash)
            .filter(move |e| hash_of(state, e.key()) == hash)
    }

    /// Removes every entry of key hash `hash` that `inv` says is dead.
    /// Returns how many were removed.
    pub(crate) fn reclaim_hash(
        &mut self,
        state: &RandomState,
        hash: u64,
        inv: &Invalidations,
    ) -> usize {
        let mut removed = 0;
        loop {
            let is_it = |e: &Entry| inv.is_dead(e) && hash_of(state, e.key()) == hash;
            let Ok(found) = self.table.find_entry(hash, is_it) else {
                return removed;
            };
            let (old, _) = found.remove();
            self.forget(hash, &old);
            self.depart(hash, old);
            removed += 1;
        }
    }

    /// Removes the entry at bucket `index` if `inv` says it is dead; true
    /// if it did. Other entries do not move.
    pub(crate) fn reclaim_at(
        &mut self,
        state: &RandomState,
        index: usize,
        inv: &Invalidations,
    ) -> bool {
        if !matches!(self.table.get_bucket(index), Some(e) if inv.is_dead(e)) {
            return false;
        }
        if let Some(old) = self.remove_at(state, index) {
            let hash = hash_of(state, old.key());
            self.depart(hash, old);
        }
        true
    }

    /// Gives the live entry for `key` the explicit epoch `epoch`, keeping
    /// everything else (a version whose chosen CAS is below an
    /// invalidation's epoch).
    pub(crate) fn set_explicit_epoch(
        &mut self,
        state: &RandomState,
        hash: u64,
        key: &[u8],
        epoch: u64,
    ) {
        let Some(old) = self.table.find(hash, |e| e.key() == key) else {
            return;
        };
        let tags = old.tag_ids().to_vec();
        let rebuilt = old.rebuilt(
            old.meta(),
            Extras {
                epoch: Some(epoch),
                tags: &tags,
            },
        );
        self.replace_rebuilt(state, hash, rebuilt);
    }

    /// Puts `rebuilt` (from [`Entry::rebuilt`] of the entry for its key) in
    /// the place of that entry, which is freed: for a collection, without
    /// the collection both shared, which `rebuilt` now owns alone. The
    /// replaced version is not a departure (same key, same tags).
    pub(crate) fn replace_rebuilt(&mut self, state: &RandomState, hash: u64, rebuilt: Entry) {
        if let Some(replaced) = self.insert(state, hash, rebuilt) {
            if replaced.is_collection() {
                replaced.disown();
            }
        }
    }

    /// Removes up to `budget` entries whose expiry is at or before `now`.
    /// Returns how many were removed.
    pub(crate) fn expire_due(&mut self, state: &RandomState, now: u64, budget: usize) -> usize {
        let mut removed = 0;
        while removed < budget {
            let Some(&(t, cas, hash)) = self.expires.first() else {
                break;
            };
            if t > now {
                break;
            }
            self.expires.pop_first();
            // the CAS first (cheap), then the key's own hash: another key
            // probed on the way may carry the same caller-chosen CAS
            let is_it = |e: &Entry| e.cas() == cas && hash_of(state, e.key()) == hash;
            if let Ok(found) = self.table.find_entry(hash, is_it) {
                let (old, _) = found.remove();
                self.bytes -= old.footprint();
                self.depart(hash, old);
                removed += 1;
            }
        }
        removed
    }

    /// Runs `f` on the entry for `key` (None when absent), then accounts
    /// for what `f` changed: the entry's bytes (a collection grew or shrank
    /// in place) and, when its CAS changed, its place in the expiry index.
    /// `f` must not change the entry's expiry.
    pub(crate) fn modify<R>(
        &mut self,
        hash: u64,
        key: &[u8],
        f: impl FnOnce(&mut Entry) -> R,
    ) -> Option<R> {
        let e = self.table.find_mut(hash, |e| e.key() == key)?;
        let (before, cas) = (e.footprint(), e.cas());
        let r = f(e);
        let (after, new_cas, at) = (e.footprint(), e.cas(), e.expire_at());
        self.bytes = self.bytes + after - before;
        if let (Some(t), true) = (at, new_cas != cas) {
            self.expires.remove(&(t, cas, hash));
            self.expires.insert((t, new_cas, hash));
        }
        Some(r)
    }

    /// Drops every entry.
    pub(crate) fn clear(&mut self) {
        *self = Shard {
            epoch: self.epoch.wrapping_add(1),
            meta_changes: self.meta_changes,
            ..Shard::default()
        };
    }

    /// Visits every entry that is not expired at `now`.
    pub(crate) fn for_each_live(&self, now: u64, mut f: impl FnMut(&Entry)) {
        for e in self.table.iter() {
            if !e.is_expired(now) {
                f(e);
            }
        }
    }

    /// How many metadata-only changes this shard has seen (see
    /// `meta_changes`).
    pub(crate) fn meta_changes(&self) -> u64 {
        self.meta_changes
    }

    /// Rebuilds the entry for `key` with new metadata, keeping key, value,
    /// last access time and fetched state. Returns false when the key is absent.
    pub(crate) fn update_meta(
        &mut self,
        state: &RandomState,
        hash: u64,
        key: &[u8],
        meta: impl FnOnce(Meta) -> Meta,
    ) -> bool {
        let Some(old) = self.table.find(hash, |e| e.key() == key) else {
            return false;
        };
        let new_meta = meta(old.meta());
        self.meta_changes = self.meta_changes.wrapping_add(1);
        // the same value with new metadata: not an access of its own, and
        // still fetched; the same tags (the registry sees no change)
        let rebuilt = if old.has_extras() {
            let tags = old.tag_ids().to_vec();
            let extras = Extras {
                epoch: old.explicit_epoch(),
                tags: &tags,
            };
            old.rebuilt(new_meta, extras)
        } else {
            old.rebuilt(new_meta, Extras::default())
        };
        self.replace_rebuilt(state, hash, rebuilt);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(cas: u64, expire_at: Option<u64>) -> Meta {
        Meta {
            cas,
            expire_at,
            flags: 0,
        }
    }

    #[test]
    fn insert_replace_remove_keeps_bytes_and_expiry_index_exact() {
        let st = RandomState::default();
        let mut s = Shard::default();
        let h = hash_of(&st, b"a");
        assert!(s
            .insert(&st, h, Entry::build(b"a", &[b"1"], meta(1, Some(10)), 0))
            .is_none());
        assert_eq!(s.expires_len(), 1);
        let old = s.insert(&st, h, Entry::build(b"a", &[b"22"], meta(2, None), 0));
        assert_eq!(old.unwrap().value(), b"1");
        assert_eq!(s.expires_len(), 0);
        assert_eq!(s.bytes(), 17 + 1 + 2);
        assert_eq!(s.remove(h, b"a").unwrap().value(), b"22");
        assert_eq!((s.len(), s.bytes(), s.expires_len()), (0, 0, 0));
    }

    #[test]
    fn lazy_and_active_expiry() {
        let st = RandomState::default();
        let mut s = Shard::default();
        for (i, t) in [5u64, 10, 15].iter().enumerate() {
            let k = [b'k', i as u8];
            s.insert(
                &st,
                hash_of(&st, &k),
                Entry::build(&k, &[b"v"], meta(i as u64 + 1, Some(*t)), 0),
            );
        }
        let h0 = hash_of(&st, &[b'k', 0]);
        assert!(
            s.get(h0, &[b'k', 0], 4).0.is_some(),
            "live just before its expiry"
        );
        let (found, expired) = s.get(h0, &[b'k', 0], 6);
        assert!(found.is_none() && expired);
        assert_eq!(s.expire_due(&st, 12, 10), 1);
        assert_eq!(s.len(), 1);
        assert_eq!(s.expire_due(&st, 100, 0), 0);
        assert_eq!(s.expire_due(&st, 100, 10), 1);
        assert_eq!((s.len(), s.expires_len(), s.bytes()), (0, 0, 0));
    }

    #[test]
    fn active_expiry_removes_the_right_key_when_keys_share_a_cas() {
        // every key has CAS 7 (chosen by a client); half expire at 5, half
        // at 50. With a few thousand keys many share a probe group and tag,
        // so matching on the CAS alone would remove the wrong ones.
        let st = RandomState::default();
        let mut s = Shard::default();
        let key = |i: u32| format!("key{i}").into_bytes();
        for i in 0..4000u32 {
            let k = key(i);
            let t = if i % 2 == 0 { 5 } else { 50 };
            s.insert(
                &st,
                hash_of(&st, &k),
                Entry::build(&k, &[b"v"], meta(7, Some(t)), 0),
            );
        }
        assert_eq!(s.expire_due(&st, 10, usize::MAX), 2000);
        assert_eq!((s.len(), s.expires_len()), (2000, 2000));
        for i in 0..4000u32 {
            let k = key(i);
            let found = s.peek(hash_of(&st, &k), &k, 0).is_some();
            assert_eq!(found, i % 2 == 1, "key{i}");
        }
        assert_eq!(s.expire_due(&st, 100, usize::MAX), 2000);
        assert_eq!((s.len(), s.expires_len(), s.bytes()), (0, 0, 0));
    }

    #[test]
    fn rebuilding_a_collection_entry_moves_its_collection() {
        use crate::types::{Collection, Hash, TypeLimits};
        let state = RandomState::default();
        let mut s = Shard::default();
        let h = hash_of(&state, b"h");
        let mut hash = Hash::default();
        hash.put(b"f", b"v", &TypeLimits::default());
        let e = Entry::build_collection(b"h", Box::new(Collection::Hash(hash)), meta(1, None), 0);
        let footprint = e.footprint();
        assert!(s.insert(&state, h, e).is_none());
        assert_eq!(s.bytes(), footprint);
        // an explicit epoch, then new metadata: each a rebuilt entry taking
        // over the collection (the old one disowned, never freed with it)
        s.set_explicit_epoch(&state, h, b"h", 9);
        assert!(s.update_meta(&state, h, b"h", |m| Meta {
            expire_at: Some(50),
            ..m
        }));
        let e = s.peek(h, b"h", 0).expect("still there");
        assert!(e.is_collection());
        assert_eq!(e.explicit_epoch(), Some(9));
        assert_eq!(e.collection().map(|c| c.len()), Some(1));
        assert_eq!(s.bytes(), e.footprint());
        // expiry removes and drops it: the one free of the collection
        assert_eq!(s.expire_due(&state, 60, 10), 1);
        assert_eq!(s.bytes(), 0);
        s.departed.clear();
    }
}
