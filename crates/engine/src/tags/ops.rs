//! The tag operations of [`Engine`] and [`Txn`]: tagged writes, TAG
//! ADD/REMOVE/GET, TAG CARD/SCAN, tag and prefix invalidation and the
//! background reclamation. The bookkeeping they rely on, and why it is
//! correct, is in [`crate::tags`].

use std::sync::atomic::Ordering;

use super::{Pass, Registry, MAX_TAGS_PER_KEY_CEILING};
use crate::entry::{Entry, Extras};
use crate::shard::Shard;
use crate::{
    encode_tag_list, view_of, Engine, Meta, Mutation, MutationSink, ShardGuard, TagError,
    TagLimits, TagList, TagSize, TagSummary, Txn, View,
};

impl Engine {
    /// Sets the limits every later tagged write is checked against (CONFIG
    /// SET can change them at any time). `max_tags_per_key` is clamped to
    /// 1..=[`MAX_TAGS_PER_KEY_CEILING`]. Keys already stored keep their tags.
    pub fn set_tag_limits(&self, limits: TagLimits) {
        let max = limits.max_tags_per_key.clamp(1, MAX_TAGS_PER_KEY_CEILING);
        self.max_tags_per_key.store(max, Ordering::Relaxed);
        self.max_tag_len
            .store(limits.max_tag_len, Ordering::Relaxed);
    }

    /// The tag limits in force.
    pub fn tag_limits(&self) -> TagLimits {
        TagLimits {
            max_tags_per_key: self.max_tags_per_key.load(Ordering::Relaxed),
            max_tag_len: self.max_tag_len.load(Ordering::Relaxed),
        }
    }

    /// Checks `tags` against the limits without writing anything (a door
    /// that must refuse before it replies anything else).
    pub fn check_tags(&self, tags: &[&[u8]]) -> Result<(), TagError> {
        self.checked_tags(tags).map(|_| ())
    }

    /// `tags` checked against the limits, sorted, repeats removed.
    fn checked_tags<'t>(&self, tags: &[&'t [u8]]) -> Result<Vec<&'t [u8]>, TagError> {
        let limits = self.tag_limits();
        if tags.iter().any(|t| t.len() > limits.max_tag_len) {
            return Err(TagError::TagTooLong {
                max: limits.max_tag_len,
            });
        }
        let mut names = tags.to_vec();
        names.sort_unstable();
        names.dedup();
        if names.len() > limits.max_tags_per_key {
            return Err(TagError::TooManyTags {
                max: limits.max_tags_per_key,
            });
        }
        Ok(names)
    }

    /// The explicit epoch a new version of `db` needs when its CAS was
    /// chosen by the client (`chosen_cas`): Some only below the database's
    /// last invalidation (see [`crate::tags`]).
    ///
    /// # Safety
    /// The caller holds one of `db`'s shard locks.
    pub(crate) unsafe fn new_epoch(&self, db: usize, chosen_cas: Option<u64>) -> Option<u64> {
        let cas = chosen_cas?;
        self.dbs[db].inv().epoch_for(cas)
    }

    /// Removes the entry of `key` from `shard` (locked, of `db`) if it was
    /// invalidated: a read that meets a dead key collects it, as lazy
    /// expiry does.
    #[cold]
    #[inline(never)]
    pub(crate) fn reclaim_if_dead(&self, db: usize, shard: &mut Shard, hash: u64, key: &[u8]) {
        // SAFETY: the caller holds `shard`'s lock.
        let inv = unsafe { self.dbs[db].inv() };
        if !matches!(shard.peek(hash, key, 0), Some(e) if inv.is_dead(e)) {
            return;
        }
        if let Some(old) = shard.remove(hash, key) {
            shard.depart(hash, old);
            self.stats.dead_reclaimed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records entry `e` of `db` as the outcome of a write: a Set, or a
    /// SetTagged naming its tags.
    pub(crate) fn record_set(&self, sink: &dyn MutationSink, db: usize, e: &Entry) {
        let meta = e.meta();
        let ids = e.tag_ids();
        if ids.is_empty() {
            sink.record(Mutation::Set {
                db,
                key: e.key(),
                value: e.value(),
                flags: meta.flags,
                expire_at: meta.expire_at,
                cas: meta.cas,
            });
            return;
        }
        let mut names = Vec::new();
        {
            let reg = self.dbs[db].tags.lock();
            encode_tag_list(ids.iter().map(|id| reg.name(id)), &mut names);
        }
        sink.record(Mutation::SetTagged {
            db,
            key: e.key(),
            value: e.value(),
            flags: meta.flags,
            expire_at: meta.expire_at,
            cas: meta.cas,
            tags: TagList::from_encoded(&names).expect("encoded here"),
        });
    }

    /// Inserts the tagged `entry` into `shard` (locked, of `db`) and tells
    /// the registry: the replaced entry leaves its tags, the new one joins.
    pub(crate) fn insert_tagged(&self, db: usize, shard: &mut Shard, hash: u64, entry: Entry) {
        let d = &self.dbs[db];
        let mut reg = d.registry();
        d.settle_into(&mut reg, shard);
        let ids = entry.tag_ids().to_vec();
        // SAFETY: the caller holds `shard`'s lock.
        let inv = unsafe { d.inv() };
        if let Some(old) = shard.insert(&self.hasher, hash, entry) {
            if old.has_extras() {
                reg.depart(inv, hash, &old);
            }
        }
        reg.arrive(hash, ids.into_iter());
    }

    /// Number of members of `tag` in `db` (TAG CARD), in O(1). Exact, but a
    /// key that died through another tag or a prefix counts until it is
    /// reclaimed, as DBSIZE counts expired keys.
    pub fn tag_card(&self, db: usize, tag: &[u8]) -> usize {
        self.dbs[db].tags.lock().card(tag)
    }

    /// One step of a TAG SCAN of `tag` in `db`: examines about `count`
    /// member slots from `cursor` (0 starts) and calls `f` with each live
    /// member's key and value. Returns the next cursor, 0 at the end.
    ///
    /// Every key that is a member for the whole iteration is returned; a key
    /// that lost the tag (overwritten without it, TAG REMOVE, deleted,
    /// expired, evicted, invalidated) is not returned once it lost it. A key
    /// may be returned twice if the member table was resized meanwhile, as
    /// SSCAN allows. Dead entries met on the way are reclaimed here.
    pub fn tag_scan(
        &self,
        db: usize,
        tag: &[u8],
        cursor: u64,
        count: usize,
        now: u64,
        mut f: impl FnMut(&[u8], View<'_>),
    ) -> u64 {
        let d = &self.dbs[db];
        let mut hashes = Vec::new();
        let found = d.tags.lock().scan_members(tag, cursor, count, &mut hashes);
        let Some((id, serial, next)) = found else {
            return 0;
        };
        hashes.sort_unstable_by_key(|&h| self.shard_of(h));
        let mut i = 0;
        let mut reclaimed = 0;
        while i < hashes.len() {
            let si = self.shard_of(hashes[i]);
            let j = i + hashes[i..]
                .iter()
                .take_while(|&&h| self.shard_of(h) == si)
                .count();
            let mut shard = self.lock(db, si);
            // SAFETY: `shard` is locked while `inv` is used.
            let inv = unsafe { d.inv() };
            let mut dead_seen = false;
            {
                let reg = d.tags.lock();
                if reg.serial(id) != Some(serial) {
                    // the tag was forgotten meanwhile: it has no members
                    return 0;
                }
                for &h in &hashes[i..j] {
                    for e in shard.with_hash(&self.hasher, h) {
                        if !e.tag_ids().contains(id) || e.is_expired(now) {
                            continue;
                        }
                        if shard.watch && inv.is_dead(e) {
                            dead_seen = true;
                            continue;
                        }
                        f(e.key(), view_of(e));
                    }
                }
            }
            if dead_seen {
                for &h in &hashes[i..j] {
                    reclaimed += shard.reclaim_hash(&self.hasher, h, inv);
                }
            }
            i = j;
        }
        self.stats
            .dead_reclaimed
            .fetch_add(reclaimed as u64, Ordering::Relaxed);
        next
    }

    /// Invalidates `tags` in `db`: every key written with one of them before
    /// this call is gone at once, on every read path; a key written with
    /// them later lives. O(1) per tag whatever its member count (the dead
    /// entries are reclaimed in the background by [`Engine::expire_cycle`]).
    /// Atomic: all of `db`'s shard locks are held, so every write is wholly
    /// before or wholly after it.
    ///
    /// Returns the sum of the tags' member counts ([`Engine::tag_card`]) at
    /// the call: a key carrying two of the tags counts twice. Recorded as one
    /// [`Mutation::InvalidateTags`] (none when nothing died).
    pub fn invalidate_tags(&self, db: usize, tags: &[&[u8]]) -> usize {
        let mut buf = Vec::new();
        encode_tag_list(tags.iter().copied(), &mut buf);
        let list = TagList::from_encoded(&buf).expect("encoded here");
        let mut guards = self.lock_all(db);
        let epoch = self.next_cas.fetch_add(1, Ordering::Relaxed);
        let n = self.invalidate_locked(db, &mut guards, list, epoch, false);
        self.stats
            .tag_invalidations
            .fetch_add(tags.len() as u64, Ordering::Relaxed);
        self.stats
            .keys_invalidated
            .fetch_add(n as u64, Ordering::Relaxed);
        if n > 0 {
            if let Some(sink) = self.sink() {
                sink.record(Mutation::InvalidateTags {
                    db,
                    epoch,
                    tags: list,
                });
            }
        }
        n
    }

    /// [`Engine::invalidate_tags`] once every shard lock of `db` is in
    /// `guards`. Replay classifies each member by its version (a snapshot
    /// may hold versions newer than the record); live, every member
    /// predates `epoch` by construction.
    pub(crate) fn invalidate_locked(
        &self,
        db: usize,
        guards: &mut [ShardGuard<'_>],
        tags: TagList<'_>,
        epoch: u64,
        replaying: bool,
    ) -> usize {
        let d = &self.dbs[db];
        // SAFETY: `guards` holds every shard lock of `db`.
        let inv = unsafe { d.inv.get_mut() };
        let mut reg = d.registry();
        let mut n = 0;
        for t in tags.iter() {
            n += if replaying {
                let shards = &*guards;
                let older = |id: u32, h: u64| {
                    shards[self.shard_of(h)]
                        .with_hash(&self.hasher, h)
                        .any(|e| e.tag_ids().contains(id) && e.epoch() < epoch)
                };
                reg.invalidate_exact(inv, t, epoch, older)
            } else {
                reg.invalidate(inv, t, epoch)
            };
        }
        let watch = inv.any();
        drop(reg);
        for g in guards.iter_mut() {
            g.watch = watch;
        }
        n
    }

    /// Invalidates every key of `db` that starts with one of `prefixes` and
    /// was written before this call; keys written later live. Work at the
    /// call is proportional to the prefixes' lengths; while such an
    /// invalidation is pending, every read of the database walks at most
    /// the key's bytes in a trie, and a background pass of the expiry cycle
    /// over the database reclaims the dead keys and then forgets the
    /// prefixes. Atomic like [`Engine::invalidate_tags`]; recorded as one
    /// [`Mutation::InvalidatePrefixes`]. Returns the number of prefixes;
    /// refused, with nothing done, when one is longer than
    /// [`TagLimits::max_tag_len`] (the trie costs memory per byte).
    pub fn invalidate_prefixes(&self, db: usize, prefixes: &[&[u8]]) -> Result<usize, TagError> {
        let max = self.tag_limits().max_tag_len;
        if prefixes.iter().any(|p| p.len() > max) {
            return Err(TagError::PrefixTooLong { max });
        }
        if prefixes.is_empty() {
            return Ok(0);
        }
        let mut buf = Vec::new();
        encode_tag_list(prefixes.iter().copied(), &mut buf);
        let list = TagList::from_encoded(&buf).expect("encoded here");
        let mut guards = self.lock_all(db);
        let epoch = self.next_cas.fetch_add(1, Ordering::Relaxed);
        self.invalidate_prefixes_locked(db, &mut guards, list, epoch);
        self.stats
            .prefix_invalidations
            .fetch_add(prefixes.len() as u64, Ordering::Relaxed);
        if let Some(sink) = self.sink() {
            sink.record(Mutation::InvalidatePrefixes {
                db,
                epoch,
                prefixes: list,
            });
        }
        Ok(prefixes.len())
    }

    /// [`Engine::invalidate_prefixes`] once every shard lock of `db` is in
    /// `guards`.
    pub(crate) fn invalidate_prefixes_locked(
        &self,
        db: usize,
        guards: &mut [ShardGuard<'_>],
        prefixes: TagList<'_>,
        epoch: u64,
    ) {
        let d = &self.dbs[db];
        // SAFETY: `guards` holds every shard lock of `db`.
        let inv = unsafe { d.inv.get_mut() };
        let mut reg = d.registry();
        for p in prefixes.iter() {
            reg.invalidate_prefix(inv, p, epoch);
        }
        drop(reg);
        for g in guards.iter_mut() {
            g.watch = true;
        }
    }

    /// Background reclamation of `db`'s invalidated entries, examining
    /// about `budget` member slots of invalidated tags and `budget` buckets
    /// of the prefix pass. Returns the entries removed, plus one while a
    /// prefix pass still has buckets to walk (so a caller looping while the
    /// result is nonzero finishes it soon). Called by
    /// [`Engine::expire_cycle`].
    pub fn reclaim(&self, db: usize, budget: usize) -> usize {
        let d = &self.dbs[db];
        let (tag_work, prefix_work) = {
            let r = d.tags.lock();
            (r.has_pending(), r.prefixes_pending > 0)
        };
        let budget = budget.max(1);
        let mut reclaimed = 0;
        if tag_work {
            let mut batch = Vec::new();
            d.registry().take_pending(budget, &mut batch);
            batch.sort_unstable_by_key(|&(h, _)| self.shard_of(h));
            let mut i = 0;
            while i < batch.len() {
                let si = self.shard_of(batch[i].0);
                let mut shard = self.lock(db, si);
                // SAFETY: `shard` is locked while `inv` is used.
                let inv = unsafe { d.inv() };
                while i < batch.len() && self.shard_of(batch[i].0) == si {
                    reclaimed += shard.reclaim_hash(&self.hasher, batch[i].0, inv);
                    i += 1;
                }
            }
        }
        let mut more = 0;
        let mut pass_done = None;
        if prefix_work {
            let (n, done) = self.prefix_pass_step(db, budget);
            reclaimed += n;
            match done {
                Some(covers) => pass_done = Some(covers),
                None => more = 1,
            }
        }
        if pass_done.is_some() || d.tags.lock().cleanup_wanted {
            self.tidy(db, pass_done);
        }
        self.stats
            .dead_reclaimed
            .fetch_add(reclaimed as u64, Ordering::Relaxed);
        reclaimed + more
    }

    /// Reclaims every invalidated entry of every database now (after a
    /// replay). Returns how many were removed.
    pub fn reclaim_all(&self) -> usize {
        let mut removed = 0;
        for db in 0..self.dbs.len() {
            loop {
                let n = self.reclaim(db, usize::MAX);
                removed += n;
                let r = self.dbs[db].tags.lock();
                if !r.has_pending() && r.prefixes_pending == 0 {
                    break;
                }
            }
        }
        removed
    }

    /// One step of the prefix pass over `db`: walks up to `budget` buckets
    /// from the pass's cursor removing dead entries. Returns how many it
    /// removed and, once the pass ended, the prefix epoch it covered.
    fn prefix_pass_step(&self, db: usize, budget: usize) -> (usize, Option<u64>) {
        const BUCKET_BITS: u32 = 40;
        let d = &self.dbs[db];
        let pass = {
            let mut r = d.tags.lock();
            let covers = r.prefix_epoch_max;
            *r.pass.get_or_insert(Pass { cursor: 0, covers })
        };
        let mut shard = (pass.cursor >> 56) as usize;
        let mut epoch = ((pass.cursor >> BUCKET_BITS) & 0xffff) as u16;
        let mut bucket = (pass.cursor & ((1 << BUCKET_BITS) - 1)) as usize;
        let (mut walked, mut removed) = (0usize, 0);
        while shard <= self.shard_mask {
            let mut s = self.lock(db, shard);
            // SAFETY: `s` is locked while `inv` is used.
            let inv = unsafe { d.inv() };
            if bucket != 0 && s.epoch() != epoch {
                bucket = 0;
            }
            epoch = s.epoch();
            let n = if s.len() == 0 { 0 } else { s.num_buckets() };
            while bucket < n {
                if s.reclaim_at(&self.hasher, bucket, inv) {
                    removed += 1;
                }
                bucket += 1;
                walked += 1;
                if walked >= budget && bucket < n {
                    let cursor =
                        ((shard as u64) << 56) | ((epoch as u64) << BUCKET_BITS) | bucket as u64;
                    drop(s);
                    if let Some(p) = d.tags.lock().pass.as_mut() {
                        p.cursor = cursor;
                    }
                    return (removed, None);
                }
            }
            drop(s);
            shard += 1;
            bucket = 0;
            epoch = 0;
        }
        (removed, Some(pass.covers))
    }

    /// Under every shard lock of `db`: forgets the prefix invalidations a
    /// finished pass covered, drops the epochs of tags with no dead entry
    /// left, and clears the shards' watch flags once nothing is pending.
    fn tidy(&self, db: usize, pass_covered: Option<u64>) {
        let d = &self.dbs[db];
        let mut guards = self.lock_all(db);
        // SAFETY: `guards` holds every shard lock of `db`.
        let inv = unsafe { d.inv.get_mut() };
        let mut reg = d.registry();
        if let Some(covers) = pass_covered {
            if reg.pass.is_some_and(|p| p.covers == covers) {
                inv.trie.forget_upto(covers);
                reg.pass = None;
                reg.prefixes_pending = inv.trie.prefixes();
            }
        }
        reg.cleanup(inv);
        let watch = inv.any();
        drop(reg);
        for g in guards.iter_mut() {
            g.watch = watch;
        }
    }

    /// Tag figures of every database, summed.
    pub fn tag_summary(&self) -> TagSummary {
        (0..self.dbs.len()).fold(TagSummary::default(), |a, db| {
            let s = self.db_tag_summary(db);
            TagSummary {
                tags: a.tags + s.tags,
                dead_pending: a.dead_pending + s.dead_pending,
                prefixes_pending: a.prefixes_pending + s.prefixes_pending,
                bytes: a.bytes + s.bytes,
            }
        })
    }

    /// Tag figures of database `db`.
    pub fn db_tag_summary(&self, db: usize) -> TagSummary {
        self.dbs[db].tags.lock().summary()
    }

    /// The `n` tags of `db` with the most members (for the dashboard).
    pub fn largest_tags(&self, db: usize, n: usize) -> Vec<TagSize> {
        self.dbs[db].tags.lock().largest(n)
    }

    /// Test access to a database's registry.
    #[cfg(test)]
    pub(crate) fn with_registry<R>(&self, db: usize, f: impl FnOnce(&Registry, usize) -> R) -> R {
        let d = &self.dbs[db];
        let guards = self.lock_all(db);
        // SAFETY: `guards` holds the shard locks while `inv` is used.
        let inv = unsafe { d.inv() };
        let reg = d.tags.lock();
        let r = f(&reg, reg.recount(inv));
        drop(reg);
        drop(guards);
        r
    }
}

impl Txn<'_> {
    /// Like [`Txn::set`], giving the new version exactly `tags` (repeats
    /// ignored; empty: an untagged set). Refused, with nothing changed,
    /// when the tags break the engine's [`TagLimits`].
    pub fn set_tagged(
        &mut self,
        key: &[u8],
        parts: &[&[u8]],
        flags: u32,
        expire_at: Option<u64>,
        tags: &[&[u8]],
    ) -> Result<u64, TagError> {
        let len = parts.iter().map(|p| p.len()).sum();
        self.set_with_tags(key, len, flags, expire_at, tags, |dst| {
            let mut at = 0;
            for p in parts {
                dst[at..at + p.len()].copy_from_slice(p);
                at += p.len();
            }
        })
    }

    /// [`Txn::set_with`] with tags (see [`Txn::set_tagged`]).
    pub fn set_with_tags(
        &mut self,
        key: &[u8],
        len: usize,
        flags: u32,
        expire_at: Option<u64>,
        tags: &[&[u8]],
        fill: impl FnOnce(&mut [u8]),
    ) -> Result<u64, TagError> {
        let names = self.engine.checked_tags(tags)?;
        if names.is_empty() {
            return Ok(self.set_with(key, len, flags, expire_at, fill));
        }
        let chosen = self.chosen_cas.take();
        if matches!(expire_at, Some(t) if t <= self.now) {
            self.remove(key);
            return Ok(0);
        }
        let (db, clock) = (self.db, self.clock);
        let (hash, shard, engine) = self.shard(key);
        let d = &engine.dbs[db];
        let mut reg = d.registry();
        d.settle_into(&mut reg, shard);
        let mut ids: Vec<u32> = names.iter().map(|n| reg.intern(n)).collect();
        ids.sort_unstable();
        let cas = engine.cas_for(chosen);
        // SAFETY: the transaction holds the key's shard lock.
        let inv = unsafe { d.inv() };
        let epoch = chosen.and_then(|_| inv.epoch_for(cas));
        let meta = Meta {
            cas,
            expire_at,
            flags,
        };
        let entry = Entry::build_extra(key, len, meta, clock, Extras { epoch, tags: &ids }, fill);
        if let Some(sink) = engine.sink() {
            let mut buf = Vec::new();
            encode_tag_list(names.iter().copied(), &mut buf);
            sink.record(Mutation::SetTagged {
                db,
                key,
                value: entry.value(),
                flags,
                expire_at,
                cas,
                tags: TagList::from_encoded(&buf).expect("encoded here"),
            });
        }
        if let Some(old) = shard.insert(&engine.hasher, hash, entry) {
            if old.has_extras() {
                reg.depart(inv, hash, &old);
            }
        }
        reg.arrive(hash, ids.iter().copied());
        Ok(cas)
    }

    /// The tags of the live `key`, sorted (empty for an untagged or absent
    /// key). Not an access.
    pub fn tags(&mut self, key: &[u8]) -> Vec<Vec<u8>> {
        let (db, engine) = (self.db, self.engine);
        let ids = match self.lookup(key) {
            Some(e) => e.tag_ids().to_vec(),
            None => return Vec::new(),
        };
        if ids.is_empty() {
            return Vec::new();
        }
        let reg = engine.dbs[db].tags.lock();
        let mut names: Vec<Vec<u8>> = ids.iter().map(|&id| reg.name(id).to_vec()).collect();
        names.sort();
        names
    }

    /// Adds `tags` to the live `key` (TAG ADD), in a new version (new CAS;
    /// value, flags, expiry and access state kept). Returns how many tags
    /// the key did not have; 0 for an absent key. Refused, with nothing
    /// changed, when the key would break the [`TagLimits`].
    pub fn tag_add(&mut self, key: &[u8], tags: &[&[u8]]) -> Result<usize, TagError> {
        let names = self.engine.checked_tags(tags)?;
        if self.lookup(key).is_none() {
            return Ok(0);
        }
        let max = self.engine.tag_limits().max_tags_per_key;
        self.retag(key, |reg, ids| {
            let mut added = Vec::new();
            for n in &names {
                let id = reg.intern(n);
                if !ids.contains(&id) {
                    ids.push(id);
                    added.push(id);
                }
            }
            if ids.len() > max {
                for id in added {
                    reg.forget_if_unused(id);
                }
                return Err(TagError::TooManyTags { max });
            }
            Ok(added.len())
        })
    }

    /// Removes `tags` from the live `key` (TAG REMOVE), in a new version.
    /// Returns how many of them the key had.
    pub fn tag_remove(&mut self, key: &[u8], tags: &[&[u8]]) -> usize {
        if self.lookup(key).is_none() {
            return 0;
        }
        let r = self.retag(key, |reg, ids| {
            let before = ids.len();
            for n in tags {
                if let Some(id) = reg.id_of(n) {
                    ids.retain(|&x| x != id);
                }
            }
            Ok(before - ids.len())
        });
        r.unwrap_or(0)
    }

    /// Gives the live `key` the tag ids `change` leaves in its list (it
    /// returns how many changed; 0 changes nothing), in a new version,
    /// recorded as [`Mutation::SetTags`].
    fn retag(
        &mut self,
        key: &[u8],
        change: impl FnOnce(&mut Registry, &mut Vec<u32>) -> Result<usize, TagError>,
    ) -> Result<usize, TagError> {
        let db = self.db;
        let (hash, shard, engine) = self.shard(key);
        let d = &engine.dbs[db];
        let mut reg = d.registry();
        d.settle_into(&mut reg, shard);
        let Some(old) = shard.peek(hash, key, 0) else {
            return Ok(0);
        };
        if old.is_collection() {
            // a collection carries no tags: its value is the pointer of the
            // collection it owns, which a rebuilt copy must not share, and
            // its log records (one per item) have no room for them
            return Err(TagError::WrongType);
        }
        let mut ids = old.tag_ids().to_vec();
        let changed = change(&mut reg, &mut ids)?;
        if changed == 0 {
            return Ok(0);
        }
        ids.sort_unstable();
        let cas = engine.cas_for(None);
        let entry = old.rebuilt(
            Meta { cas, ..old.meta() },
            Extras {
                epoch: None,
                tags: &ids,
            },
        );
        if let Some(sink) = engine.sink() {
            let mut buf = Vec::new();
            encode_tag_list(ids.iter().map(|&id| reg.name(id)), &mut buf);
            sink.record(Mutation::SetTags {
                db,
                key,
                tags: TagList::from_encoded(&buf).expect("encoded here"),
                cas,
            });
        }
        // SAFETY: the transaction holds the key's shard lock.
        let inv = unsafe { d.inv() };
        if let Some(old) = shard.insert(&engine.hasher, hash, entry) {
            reg.depart(inv, hash, &old);
        }
        reg.arrive(hash, ids.iter().copied());
        Ok(changed)
    }
}
