//! The engine's collection accessors: reads and writes of hashes and sets
//! through a [`Txn`], and their replay. Every write keeps the keyspace's
//! bookkeeping exact (the entry's bytes, its CAS, its place in the expiry
//! index) and hands the [`MutationSink`](crate::MutationSink) one record per
//! item changed, so a log grows with the change, not with the collection.
//!
//! Rules every accessor follows, as Redis does: a key holding another kind
//! of value is [`WrongType`]; a write to an absent key creates the
//! collection; a collection emptied by its last removal is deleted; reads and
//! writes are accesses (last-access time), [`Txn::kind`] is not.

use std::sync::atomic::Ordering;

use crate::entry::{Entry, Meta};
use crate::types::{Collection, Hash, Kind, Set, TypeLimits, WrongType};
use crate::{Engine, Mutation, Txn};

/// One item change reported by a collection write.
enum Change<'x> {
    Add(&'x [u8], &'x [u8]),
    Remove(&'x [u8]),
}

impl<'a> Txn<'a> {
    /// What `key` holds, or None when it is absent (Redis's `TYPE`). Not an
    /// access.
    pub fn kind(&mut self, key: &[u8]) -> Option<Kind> {
        self.peek(key).map(|v| v.kind)
    }

    /// Like [`Txn::get`] for a key of any kind (an access): the commands that
    /// act on a key whatever it holds (EXPIRE, PERSIST) read it so. A
    /// collection's [`View::value`](crate::View) is empty.
    pub fn get_any(&mut self, key: &[u8]) -> Option<crate::View<'_>> {
        let clock = self.clock;
        self.lookup(key).map(|e| {
            e.touch(clock);
            crate::view_of(e)
        })
    }

    /// The encoding name `OBJECT ENCODING` reports for a collection key
    /// (`listpack`, `intset`, `hashtable`); None when `key` is absent or
    /// holds a string (whose encoding the string commands know). Not an
    /// access.
    pub fn collection_encoding(&mut self, key: &[u8]) -> Option<&'static str> {
        let now = self.now;
        let (hash, shard, _) = self.shard(key);
        shard
            .peek(hash, key, now)
            .and_then(|e| e.collection())
            .map(|c| c.encoding())
    }

    /// Items in the collection `key` (HLEN, SCARD): 0 when absent.
    pub fn collection_len(&mut self, key: &[u8], kind: Kind) -> Result<usize, WrongType> {
        Ok(self.read(key, kind)?.map_or(0, |c| c.len()))
    }

    /// The live collection of `key` if it is of `kind` (an access).
    fn read(&mut self, key: &[u8], kind: Kind) -> Result<Option<&Collection>, WrongType> {
        let clock = self.clock;
        match self.lookup(key) {
            None => Ok(None),
            Some(e) if e.kind() != kind => Err(WrongType),
            Some(e) => {
                e.touch(clock);
                Ok(e.collection())
            }
        }
    }

    /// The hash stored at `key` (None when absent), for every hash read:
    /// HGET, HGETALL, HSCAN... An access.
    pub fn read_hash(&mut self, key: &[u8]) -> Result<Option<&Hash>, WrongType> {
        Ok(match self.read(key, Kind::Hash)? {
            Some(Collection::Hash(h)) => Some(h),
            _ => None,
        })
    }

    /// The set stored at `key` (None when absent), for every set read. An
    /// access.
    pub fn read_set(&mut self, key: &[u8]) -> Result<Option<&Set>, WrongType> {
        Ok(match self.read(key, Kind::Set)? {
            Some(Collection::Set(s)) => Some(s),
            _ => None,
        })
    }

    /// Sets each (field, value) of `pairs` in the hash `key`, creating it
    /// (HSET, HMSET). Returns how many fields are new.
    pub fn hash_put(&mut self, key: &[u8], pairs: &[(&[u8], &[u8])]) -> Result<usize, WrongType> {
        if pairs.is_empty() {
            return Ok(0);
        }
        let r = self.write(
            key,
            Kind::Hash,
            Some(|_: &TypeLimits| Collection::Hash(Hash::default())),
            |c, limits, emit| {
                let Collection::Hash(h) = c else { return 0 };
                let mut added = 0;
                for (f, v) in pairs {
                    added += h.put(f, v, limits) as usize;
                    emit(Change::Add(f, v));
                }
                added
            },
        )?;
        Ok(r.unwrap_or(0))
    }

    /// Removes `fields` from the hash `key` (HDEL); returns how many were
    /// there. The hash goes when its last field does.
    pub fn hash_remove(&mut self, key: &[u8], fields: &[&[u8]]) -> Result<usize, WrongType> {
        let r = self.write(
            key,
            Kind::Hash,
            None::<fn(&TypeLimits) -> Collection>,
            |c, _, emit| {
                let Collection::Hash(h) = c else { return 0 };
                let mut removed = 0;
                for f in fields {
                    if h.remove(f) {
                        removed += 1;
                        emit(Change::Remove(f));
                    }
                }
                removed
            },
        )?;
        Ok(r.unwrap_or(0))
    }

    /// Adds `members` to the set `key`, creating it (SADD); returns how
    /// many are new. A new set starts as an intset when its first member is
    /// an integer, else as a listpack (Redis 7.0's `setTypeCreate`).
    pub fn set_add(&mut self, key: &[u8], members: &[&[u8]]) -> Result<usize, WrongType> {
        let Some(first) = members.first() else {
            return Ok(0);
        };
        let r = self.write(
            key,
            Kind::Set,
            Some(|l: &TypeLimits| Collection::Set(Set::new_for(first, l))),
            |c, limits, emit| {
                let Collection::Set(s) = c else { return 0 };
                let mut added = 0;
                for m in members {
                    if s.add(m, limits) {
                        added += 1;
                        emit(Change::Add(m, b""));
                    }
                }
                added
            },
        )?;
        Ok(r.unwrap_or(0))
    }

    /// Removes `members` from the set `key` (SREM); returns how many were
    /// there. The set goes when its last member does.
    pub fn set_remove(&mut self, key: &[u8], members: &[&[u8]]) -> Result<usize, WrongType> {
        let r = self.write(
            key,
            Kind::Set,
            None::<fn(&TypeLimits) -> Collection>,
            |c, _, emit| {
                let Collection::Set(s) = c else { return 0 };
                let mut removed = 0;
                for m in members {
                    if s.remove(m) {
                        removed += 1;
                        emit(Change::Remove(m));
                    }
                }
                removed
            },
        )?;
        Ok(r.unwrap_or(0))
    }

    /// The engine's random numbers, as a source that outlives borrows of
    /// this transaction (for the draws of SRANDMEMBER, SPOP, HRANDFIELD
    /// while a collection is lent out).
    pub fn random_source(&self) -> impl FnMut() -> u64 + 'a {
        let engine = self.engine;
        move || engine.random()
    }

    /// The write path of every collection command: finds `key` (WrongType
    /// for another kind; created by `create` when absent, or Ok(None) when
    /// `create` is None), runs `f` on the collection, then gives the entry
    /// a new CAS if `f` reported a change, records each change, accounts the
    /// bytes, and deletes the key if `f` left it empty.
    fn write<R>(
        &mut self,
        key: &[u8],
        kind: Kind,
        create: Option<impl FnOnce(&TypeLimits) -> Collection>,
        f: impl FnOnce(&mut Collection, &TypeLimits, &mut dyn FnMut(Change<'_>)) -> R,
    ) -> Result<Option<R>, WrongType> {
        let (now, db, clock) = (self.now, self.db, self.clock);
        let (hash, shard, engine) = self.shard(key);
        if shard.watch {
            // a version a tag or prefix invalidation killed is gone
            engine.reclaim_if_dead(db, shard, hash, key);
        }
        let limits = engine.limits.load();
        let (found, expired) = shard.get(hash, key, now);
        if expired {
            engine.stats.expired_keys.fetch_add(1, Ordering::Relaxed);
        }
        let mut created = false;
        match found.map(|e| e.kind()) {
            Some(k) if k != kind => return Err(WrongType),
            Some(_) => {}
            None => {
                created = true;
                let Some(create) = create else {
                    return Ok(None);
                };
                let coll = Box::new(create(&limits));
                let meta = Meta::default();
                let entry = Entry::build_collection(key, coll, meta, clock);
                if let Some(old) = shard.insert(&engine.hasher, hash, entry) {
                    shard.depart(hash, old);
                }
            }
        }
        let (r, empty) = shard
            .modify(hash, key, |e| {
                let expire_at = e.expire_at();
                let mut cas = None;
                let coll = e.collection_mut().expect("a collection entry");
                let mut emit = |c: Change<'_>| {
                    let first = cas.is_none();
                    let cas = *cas.get_or_insert_with(|| engine.cas_for(None));
                    if let Some(sink) = engine.sink() {
                        if first && created {
                            // a log may still hold an older, since expired
                            // version of the key (expiry is not logged):
                            // the new collection must not grow out of it
                            sink.record(Mutation::Del { db, key });
                        }
                        sink.record(match c {
                            Change::Add(item, value) => Mutation::AddItem {
                                db,
                                key,
                                kind,
                                item,
                                value,
                                expire_at,
                                cas,
                            },
                            Change::Remove(item) => Mutation::RemoveItem {
                                db,
                                key,
                                kind,
                                item,
                                expire_at,
                                cas,
                            },
                        });
                    }
                };
                let r = f(coll, &limits, &mut emit);
                let empty = coll.len() == 0;
                if let Some(cas) = cas {
                    e.set_cas(cas);
                }
                e.touch(clock);
                (r, empty)
            })
            .expect("present above");
        if empty {
            // the RemoveItem records that emptied it delete it on replay too
            if let Some(old) = shard.remove(hash, key) {
                shard.depart(hash, old);
            }
        }
        Ok(Some(r))
    }

    /// [`Txn::copy`] of a collection: `dst` gets a deep copy with `src`'s
    /// expiry and CAS `cas`.
    pub(crate) fn copy_collection(&mut self, src: &[u8], dst: &[u8], cas: u64) -> u64 {
        let (hash, shard, _) = self.shard(src);
        let old = shard.peek(hash, src, 0).expect("found by copy");
        let meta = Meta { cas, ..old.meta() };
        let coll = Box::new(old.collection().expect("a collection").clone());
        self.insert_collection(dst, coll, meta);
        cas
    }

    /// Stores `coll` under `dst` with `meta`, replacing whatever it held,
    /// logged as a Del of `dst` and one AddItem per item (a copy is as big
    /// as what it copies).
    fn insert_collection(&mut self, dst: &[u8], coll: Box<Collection>, meta: Meta) {
        let (db, clock) = (self.db, self.clock);
        let entry = Entry::build_collection(dst, coll, meta, clock);
        let (hash, shard, engine) = self.shard(dst);
        if let Some(sink) = engine.sink() {
            sink.record(Mutation::Del { db, key: dst });
            let c = entry.collection().expect("just built");
            items_of(c, |item, value| {
                sink.record(Mutation::AddItem {
                    db,
                    key: dst,
                    kind: c.kind(),
                    item,
                    value,
                    expire_at: meta.expire_at,
                    cas: meta.cas,
                })
            });
        }
        // a tagged string replaced here leaves its tags' registry
        if let Some(old) = shard.insert(&engine.hasher, hash, entry) {
            shard.depart(hash, old);
        }
    }

    /// An owned copy of the live value of `key`, whatever its kind (an
    /// access), for moving a value between databases, which no one
    /// transaction spans (COPY ... DB, MOVE).
    pub fn detach(&mut self, key: &[u8]) -> Option<Detached> {
        let clock = self.clock;
        let e = self.lookup(key)?;
        e.touch(clock);
        let meta = e.meta();
        Some(match e.collection() {
            None => Detached(Value::Bytes(e.value().to_vec(), meta)),
            Some(c) => Detached(Value::Collection(Box::new(c.clone()), meta)),
        })
    }

    /// Stores a [`Detached`] value under `key` with its flags and expiry
    /// and a new CAS, replacing whatever `key` held. Returns the CAS (0
    /// when its expiry has passed, which deletes instead).
    pub fn attach(&mut self, key: &[u8], value: Detached) -> u64 {
        match value.0 {
            Value::Bytes(v, meta) => self.set(key, &[&v], meta.flags, meta.expire_at),
            Value::Collection(coll, meta) => {
                if matches!(meta.expire_at, Some(t) if t <= self.now) {
                    self.remove(key);
                    return 0;
                }
                let cas = self.engine.cas_for(self.chosen_cas.take());
                self.insert_collection(key, coll, Meta { cas, ..meta });
                cas
            }
        }
    }

    /// [`Txn::attach`] with the tags `tags` (by name, as [`Txn::tags`] read
    /// them from the source): a string gets them, unless the tag limits
    /// were lowered since the source met them, when it is stored untagged
    /// rather than fail; a collection carries no tags (TAG ADD refuses one).
    pub fn attach_tagged(&mut self, key: &[u8], value: Detached, tags: &[&[u8]]) -> u64 {
        match value.0 {
            Value::Bytes(v, meta) if !tags.is_empty() => self
                .set_tagged(key, &[&v], meta.flags, meta.expire_at, tags)
                .unwrap_or_else(|_| self.set(key, &[&v], meta.flags, meta.expire_at)),
            other => self.attach(key, Detached(other)),
        }
    }
}

/// A value copied out of the keyspace by [`Txn::detach`], to be stored
/// elsewhere by [`Txn::attach`].
#[derive(Debug)]
pub struct Detached(Value);

#[derive(Debug)]
enum Value {
    Bytes(Vec<u8>, Meta),
    Collection(Box<Collection>, Meta),
}

/// Calls `f` with every (item, value) of `c` (value empty for sets).
fn items_of(c: &Collection, mut f: impl FnMut(&[u8], &[u8])) {
    match c {
        Collection::Hash(h) => h.iter().for_each(|(k, v)| f(k, v)),
        Collection::Set(s) => s.for_each(|m| f(m, b"")),
    }
}

impl Engine {
    /// The encoding thresholds in force.
    pub fn type_limits(&self) -> TypeLimits {
        self.limits.load()
    }

    /// Changes the encoding thresholds (CONFIG SET): later writes convert
    /// by them; existing collections keep their encoding until a write
    /// takes them past the new limits.
    pub fn set_type_limits(&self, limits: TypeLimits) {
        self.limits.store(limits)
    }

    /// One step of writing the collection `key` of database `db` as
    /// records (a snapshot): calls `f` with an AddItem record for up to
    /// `count` items from `cursor` on (compact encodings: all of them),
    /// holding the key's shard lock only for that step, and returns the
    /// cursor of the next step (0 when done, or when `key` holds no
    /// collection). Between steps the collection may change: every item
    /// present throughout is written at least once, and every change after
    /// the walk began must come from a log replayed after the records.
    pub fn collection_records(
        &self,
        db: usize,
        key: &[u8],
        cursor: u64,
        count: usize,
        mut f: impl FnMut(Mutation<'_>),
    ) -> u64 {
        let hash = self.hash(key);
        let shard = self.dbs[db].shards[self.shard_of(hash)].lock();
        let Some(e) = shard.peek(hash, key, 0) else {
            return 0;
        };
        let Some(c) = e.collection() else {
            return 0;
        };
        let (kind, expire_at, cas) = (c.kind(), e.expire_at(), e.cas());
        let mut emit = |item: &[u8], value: &[u8]| {
            f(Mutation::AddItem {
                db,
                key,
                kind,
                item,
                value,
                expire_at,
                cas,
            })
        };
        match c {
            Collection::Hash(h) => h.walk(cursor, count, &mut emit),
            Collection::Set(s) => s.walk(cursor, count, |m| emit(m, b"")),
        }
    }

    /// [`Engine::replay`] of AddItem / RemoveItem.
    pub(crate) fn replay_item(&self, m: Mutation<'_>) {
        let (db, key, kind, expire_at, cas) = match m {
            Mutation::AddItem {
                db,
                key,
                kind,
                expire_at,
                cas,
                ..
            }
            | Mutation::RemoveItem {
                db,
                key,
                kind,
                expire_at,
                cas,
                ..
            } => (db, key, kind, expire_at, cas),
            _ => return,
        };
        let hash = self.hash(key);
        let limits = self.limits.load();
        self.next_cas
            .fetch_max(cas.saturating_add(1), Ordering::Relaxed);
        let clock = self.clock.0.load(Ordering::Relaxed);
        let mut shard = self.lock(db, self.shard_of(hash));
        let holds = shard.peek(hash, key, 0).map(|e| e.kind());
        if let Mutation::AddItem { item, .. } = m {
            if holds != Some(kind) {
                let coll = match kind {
                    Kind::Hash => Collection::Hash(Hash::default()),
                    Kind::Set => Collection::Set(Set::new_for(item, &limits)),
                    // a string never comes as an item record
                    Kind::String => return,
                };
                let meta = Meta {
                    cas,
                    expire_at,
                    flags: 0,
                };
                let e = Entry::build_collection(key, Box::new(coll), meta, clock);
                if let Some(old) = shard.insert(&self.hasher, hash, e) {
                    shard.depart(hash, old);
                }
            }
        } else if holds != Some(kind) {
            return;
        }
        let empty = shard
            .modify(hash, key, |e| {
                let c = e.collection_mut().expect("a collection entry");
                match (m, c) {
                    (Mutation::AddItem { item, value, .. }, Collection::Hash(h)) => {
                        h.put(item, value, &limits);
                    }
                    (Mutation::AddItem { item, .. }, Collection::Set(s)) => {
                        s.add(item, &limits);
                    }
                    (Mutation::RemoveItem { item, .. }, Collection::Hash(h)) => {
                        h.remove(item);
                    }
                    (Mutation::RemoveItem { item, .. }, Collection::Set(s)) => {
                        s.remove(item);
                    }
                    _ => {}
                }
                e.set_cas(cas);
                e.collection().is_some_and(|c| c.len() == 0)
            })
            .unwrap_or(false);
        if empty {
            if let Some(old) = shard.remove(hash, key) {
                shard.depart(hash, old);
            }
        } else if shard
            .peek(hash, key, 0)
            .is_some_and(|e| e.expire_at() != expire_at)
        {
            shard.update_meta(&self.hasher, hash, key, |m| Meta { expire_at, ..m });
        }
    }
}
