//! The stored form of one key: a single heap allocation holding a small header,
//! the optional fields that are actually in use, the key and the value.
//!
//! Memory per key is a headline figure, so an entry is one thin pointer in the
//! table and one allocation sized exactly for what it holds:
//!
//! ```text
//! offset  size  field
//! 0       8     cas         (u64, little endian; unique per write)
//! 8       1     key_len     (u8; 0 and unused when LONG_KEY is set)
//! 9       3     last_access (24-bit access clock, seconds; see below)
//! 12      4     value_len   (u32)
//! 16      1     present     (bit set of the optional fields below, plus
//!                             the FETCHED state bit)
//! 17      8     expire_at   (u64 ms since the Unix epoch)   if EXPIRE
//! ..      4     flags       (u32 client flags, memcached)   if FLAGS
//! ..      4     key_len     (u32, keys over 255 bytes)      if LONG_KEY
//! ..      8     epoch       (u64, see crate::tags)          if EPOCH
//! ..      2+4t  tags        (u16 count t, then t u32 ids)   if TAGS
//! ..      n     key
//! ..      m     value
//! ```
//!
//! A 15-byte key with a 32-byte value and no TTL or flags takes exactly 64
//! bytes, one allocator size class. Keys up to 255 bytes (every memcached
//! key, nearly every Redis key) keep their length in the header's one byte;
//! a longer key pays 4 bytes for the full length. The 3 bytes that a u32
//! key length would take hold the last access time instead, so the header
//! is still 17 bytes.
//!
//! `last_access` is the engine's access clock (whole seconds since the Unix
//! epoch, modulo 2^24) at the key's last read or write: the time behind
//! memcached's meta `l` flag and Redis's `OBJECT IDLETIME`, and what LRU
//! eviction will order keys by. Like Redis's 24-bit LRU clock it wraps
//! every 2^24 s (about 194 days); [`idle_secs`] subtracts modulo 2^24, so
//! an idle time is exact below that period and taken modulo it above. It
//! is not persisted: replayed keys start at the time of the replay.
//!
//! Bit 2 of `present` (FETCHED) marks a version a memcached retrieval has
//! read (memcached's `ITEM_FETCHED`, reported by the meta `h` flag). It adds
//! no field and no byte; every write that makes a new version starts it
//! cleared, metadata-only changes (expiry, flags) keep it, and it is not
//! persisted. Later features add further optional fields behind new
//! `present` bits, so keys that do not use them pay nothing.
//!
//! Tags (see `crate::tags`) are two such fields. TAGS holds the key's tags
//! as ids into its database's tag registry, ascending: 2 + 4 bytes per tag
//! (at most 6 bytes per tag for one tag, 4.x for more). EPOCH is the rare
//! explicit invalidation epoch of a version whose CAS was chosen by the
//! client below the database's last invalidation; without it a version's
//! epoch is its CAS. An untagged key written with an automatic CAS has
//! neither bit and pays nothing.
//!
//! Bit 4 of `present` (COLLECTION) is the type marker: such an entry's
//! value is an 8-byte pointer to the hash, set... it owns (see
//! `types/mod.rs`); strings never set it. A collection entry may carry
//! tags and an epoch like any other; rebuilding it moves the collection
//! ([`Entry::rebuilt`] shares it, the caller disowns the old entry).

use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::ptr::NonNull;

use crate::types::{Collection, Kind};

const HEADER: usize = 17;
const KEY_LEN_AT: usize = 8;
const ACCESS_AT: usize = 9;
const VALUE_LEN_AT: usize = 12;
const PRESENT_AT: usize = 16;

const HAS_EXPIRE: u8 = 1;
const HAS_FLAGS: u8 = 2;
/// Not an optional field: set once a memcached retrieval read this version.
const FETCHED: u8 = 4;
/// The key is longer than 255 bytes: its length follows the expiry and flags.
const LONG_KEY: u8 = 8;
/// An explicit invalidation epoch follows the long key length.
const HAS_EPOCH: u8 = 0x40;
/// The key's tag ids follow the epoch.
const HAS_TAGS: u8 = 0x80;
/// The type marker: the value is not bytes but a pointer (8 bytes, native
/// endian) to a boxed [`Collection`] the entry owns. Unset for strings, so
/// a string entry is exactly what it was before collections existed.
const COLLECTION: u8 = 0x10;

/// Longest key whose length fits the header's key_len byte.
const SHORT_KEY_MAX: usize = u8::MAX as usize;

/// The access clock's range: it counts seconds modulo 2^24, as Redis's
/// `LRU_CLOCK` does with its 24-bit `lru` field.
pub(crate) const CLOCK_MASK: u32 = (1 << 24) - 1;

/// Largest key or value an entry can hold (lengths are stored as u32).
pub const MAX_PART_LEN: usize = u32::MAX as usize;

/// Seconds from access-clock reading `last` to reading `now`, modulo the
/// clock's 2^24-second period (Redis's `estimateObjectIdleTime`, which
/// handles the wrap the same way; Redis's is one second short after a wrap).
pub(crate) fn idle_secs(last: u32, now: u32) -> u32 {
    now.wrapping_sub(last) & CLOCK_MASK
}

/// The optional fields the tag feature adds to an entry (see the module
/// docs): kept apart from [`Meta`] so untagged code paths never see them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Extras<'a> {
    /// Explicit invalidation epoch (None: the epoch is the CAS).
    pub epoch: Option<u64>,
    /// Tag ids, ascending, without repeats (at most u16::MAX).
    pub tags: &'a [u32],
}

/// Owned, compact storage for one key (see the module docs for the layout).
pub(crate) struct Entry {
    ptr: NonNull<u8>,
}

// SAFETY: an Entry exclusively owns its allocation, like a Box<[u8]>.
unsafe impl Send for Entry {}
// SAFETY: shared access only reads the allocation.
unsafe impl Sync for Entry {}

/// The fields of an entry other than key and value, as passed to `Entry::build`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    /// Version number of this write (CAS).
    pub cas: u64,
    /// Absolute expiry in ms since the Unix epoch, if any.
    pub expire_at: Option<u64>,
    /// Opaque 32-bit client flags (memcached); 0 for RESP writes.
    pub flags: u32,
}

impl Entry {
    /// Allocates an entry whose value is the concatenation of `parts`, last
    /// accessed at access-clock reading `clock`.
    ///
    /// Panics if the key or the total value length exceeds [`MAX_PART_LEN`];
    /// callers enforce much smaller configured limits first.
    pub(crate) fn build(key: &[u8], parts: &[&[u8]], meta: Meta, clock: u32) -> Entry {
        let value_len: usize = parts.iter().map(|p| p.len()).sum();
        Self::build_with(key, value_len, meta, clock, |dst| {
            let mut at = 0;
            for p in parts {
                dst[at..at + p.len()].copy_from_slice(p);
                at += p.len();
            }
        })
    }

    /// Allocates an entry with a value of `value_len` bytes written by `fill`
    /// (which receives a zeroed buffer).
    pub(crate) fn build_with(
        key: &[u8],
        value_len: usize,
        meta: Meta,
        clock: u32,
        fill: impl FnOnce(&mut [u8]),
    ) -> Entry {
        Self::build_extra(key, value_len, meta, clock, Extras::default(), fill)
    }

    /// [`Entry::build_with`] with the tag feature's optional fields
    /// (always inlined, so the untagged callers' constant extras fold away).
    #[inline(always)]
    pub(crate) fn build_extra(
        key: &[u8],
        value_len: usize,
        meta: Meta,
        clock: u32,
        extras: Extras<'_>,
        fill: impl FnOnce(&mut [u8]),
    ) -> Entry {
        assert!(key.len() <= MAX_PART_LEN && value_len <= MAX_PART_LEN);
        assert!(extras.tags.len() <= u16::MAX as usize);
        let mut present = 0u8;
        let mut opt = 0;
        if meta.expire_at.is_some() {
            present |= HAS_EXPIRE;
            opt += 8;
        }
        if meta.flags != 0 {
            present |= HAS_FLAGS;
            opt += 4;
        }
        let long_key = key.len() > SHORT_KEY_MAX;
        if long_key {
            present |= LONG_KEY;
            opt += 4;
        }
        if extras.epoch.is_some() {
            present |= HAS_EPOCH;
            opt += 8;
        }
        if !extras.tags.is_empty() {
            present |= HAS_TAGS;
            opt += 2 + 4 * extras.tags.len();
        }
        let size = HEADER + opt + key.len() + value_len;
        let layout = Layout::from_size_align(size, 1).expect("entry layout");
        // SAFETY: size >= HEADER > 0.
        let raw = unsafe { alloc(layout) };
        let Some(ptr) = NonNull::new(raw) else {
            handle_alloc_error(layout)
        };
        // SAFETY: `raw` points to `size` writable bytes that we initialise in full
        // below before any read.
        let buf = unsafe { std::slice::from_raw_parts_mut(raw, size) };
        buf[0..8].copy_from_slice(&meta.cas.to_le_bytes());
        buf[KEY_LEN_AT] = if long_key { 0 } else { key.len() as u8 };
        buf[ACCESS_AT..ACCESS_AT + 3].copy_from_slice(&(clock & CLOCK_MASK).to_le_bytes()[..3]);
        buf[VALUE_LEN_AT..VALUE_LEN_AT + 4].copy_from_slice(&(value_len as u32).to_le_bytes());
        buf[PRESENT_AT] = present;
        let mut at = HEADER;
        if let Some(t) = meta.expire_at {
            buf[at..at + 8].copy_from_slice(&t.to_le_bytes());
            at += 8;
        }
        if meta.flags != 0 {
            buf[at..at + 4].copy_from_slice(&meta.flags.to_le_bytes());
            at += 4;
        }
        if long_key {
            buf[at..at + 4].copy_from_slice(&(key.len() as u32).to_le_bytes());
            at += 4;
        }
        if let Some(epoch) = extras.epoch {
            buf[at..at + 8].copy_from_slice(&epoch.to_le_bytes());
            at += 8;
        }
        if !extras.tags.is_empty() {
            buf[at..at + 2].copy_from_slice(&(extras.tags.len() as u16).to_le_bytes());
            at += 2;
            for id in extras.tags {
                buf[at..at + 4].copy_from_slice(&id.to_le_bytes());
                at += 4;
            }
        }
        buf[at..at + key.len()].copy_from_slice(key);
        at += key.len();
        let value = &mut buf[at..];
        value.fill(0);
        fill(value);
        Entry { ptr }
    }

    #[inline]
    fn header(&self) -> &[u8; HEADER] {
        // SAFETY: every entry starts with HEADER initialised bytes.
        unsafe { &*(self.ptr.as_ptr() as *const [u8; HEADER]) }
    }

    #[inline]
    fn present(&self) -> u8 {
        self.header()[PRESENT_AT]
    }

    /// Bytes of the optional fields in use, between the header and the key.
    #[inline]
    fn opt_len(&self) -> usize {
        let p = self.present();
        let base = Self::base_opt_len(p);
        if p & (HAS_EPOCH | HAS_TAGS) == 0 {
            return base;
        }
        base + self.extra_len(p, base)
    }

    /// Bytes of the expiry, flags and long key length fields.
    #[inline]
    fn base_opt_len(p: u8) -> usize {
        (if p & HAS_EXPIRE != 0 { 8 } else { 0 })
            + (if p & HAS_FLAGS != 0 { 4 } else { 0 })
            + (if p & LONG_KEY != 0 { 4 } else { 0 })
    }

    /// Bytes of the epoch and tags fields, which start at HEADER + `base`.
    #[cold]
    fn extra_len(&self, p: u8, base: usize) -> usize {
        let mut len = 0;
        if p & HAS_EPOCH != 0 {
            len += 8;
        }
        if p & HAS_TAGS != 0 {
            len += 2 + 4 * self.tag_count_at(HEADER + base + len);
        }
        len
    }

    /// The tag count stored at byte `at` of the allocation.
    fn tag_count_at(&self, at: usize) -> usize {
        // SAFETY: a HAS_TAGS entry holds the 2 count bytes at `at` (written
        // by build_extra); read without a slice of the whole entry, whose
        // size depends on this count.
        let bytes = unsafe { *(self.ptr.as_ptr().add(at) as *const [u8; 2]) };
        u16::from_le_bytes(bytes) as usize
    }

    #[inline]
    fn key_len(&self) -> usize {
        if self.present() & LONG_KEY == 0 {
            return self.header()[KEY_LEN_AT] as usize;
        }
        // the long length follows the expiry and flags
        let at = HEADER + Self::base_opt_len(self.present()) - 4;
        // SAFETY: a LONG_KEY entry holds the 4 bytes at `at` (written by
        // build_with); read them without forming a slice of the whole entry,
        // whose size depends on this very length.
        let bytes = unsafe { *(self.ptr.as_ptr().add(at) as *const [u8; 4]) };
        u32::from_le_bytes(bytes) as usize
    }

    #[inline]
    fn value_len(&self) -> usize {
        let h = self.header();
        u32::from_le_bytes(h[VALUE_LEN_AT..VALUE_LEN_AT + 4].try_into().unwrap()) as usize
    }

    /// Asks the CPU to start loading this entry's header into cache, so
    /// that reading several entries (eviction's samples) waits for their
    /// misses together rather than one after another. A hint only: no-op
    /// off x86_64.
    #[inline]
    pub(crate) fn prefetch(&self) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch never faults and reads nothing into the
        // program; the pointer is this entry's live allocation anyway.
        unsafe {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            _mm_prefetch::<_MM_HINT_T0>(self.ptr.as_ptr() as *const i8);
        }
    }

    /// True once [`Entry::mark_fetched`] was called on this version.
    pub(crate) fn fetched(&self) -> bool {
        self.present() & FETCHED != 0
    }

    /// Records that a retrieval read this version (see the module docs).
    pub(crate) fn mark_fetched(&mut self) {
        // SAFETY: byte PRESENT_AT is part of the header every entry starts
        // with, and `&mut self` gives exclusive access to the allocation.
        unsafe { *self.ptr.as_ptr().add(PRESENT_AT) |= FETCHED }
    }

    /// The access-clock reading (24 bits) of the last read or write.
    pub(crate) fn last_access(&self) -> u32 {
        let h = self.header();
        u32::from_le_bytes([h[ACCESS_AT], h[ACCESS_AT + 1], h[ACCESS_AT + 2], 0])
    }

    /// Records an access at access-clock reading `clock`. The bytes are only
    /// written when the second changed, so repeated reads of a hot key
    /// within one second leave its cache line clean.
    pub(crate) fn touch(&mut self, clock: u32) {
        let clock = clock & CLOCK_MASK;
        if self.last_access() != clock {
            let b = clock.to_le_bytes();
            // SAFETY: bytes ACCESS_AT..ACCESS_AT+3 are part of the header,
            // and `&mut self` gives exclusive access to the allocation.
            unsafe {
                let p = self.ptr.as_ptr().add(ACCESS_AT);
                std::ptr::copy_nonoverlapping(b.as_ptr(), p, 3);
            }
        }
    }

    /// Total bytes of the allocation (what the entry costs beyond its table slot).
    #[inline]
    pub(crate) fn alloc_size(&self) -> usize {
        HEADER + self.opt_len() + self.key_len() + self.value_len()
    }

    #[inline]
    fn bytes(&self) -> &[u8] {
        // SAFETY: the allocation is alloc_size() bytes, all initialised.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.alloc_size()) }
    }

    /// CAS version of the last write.
    pub(crate) fn cas(&self) -> u64 {
        u64::from_le_bytes(self.header()[0..8].try_into().unwrap())
    }

    /// Absolute expiry in ms, if the entry has one.
    pub(crate) fn expire_at(&self) -> Option<u64> {
        if self.present() & HAS_EXPIRE != 0 {
            Some(u64::from_le_bytes(
                self.bytes()[HEADER..HEADER + 8].try_into().unwrap(),
            ))
        } else {
            None
        }
    }

    /// Client flags (0 when none were stored).
    pub(crate) fn flags(&self) -> u32 {
        let p = self.present();
        if p & HAS_FLAGS == 0 {
            return 0;
        }
        let at = HEADER + if p & HAS_EXPIRE != 0 { 8 } else { 0 };
        u32::from_le_bytes(self.bytes()[at..at + 4].try_into().unwrap())
    }

    #[inline]
    pub(crate) fn key(&self) -> &[u8] {
        let at = HEADER + self.opt_len();
        // SAFETY: the key's `key_len` bytes start at `at`, inside the
        // allocation (written by build_extra).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(at), self.key_len()) }
    }

    #[inline]
    pub(crate) fn value(&self) -> &[u8] {
        let at = HEADER + self.opt_len() + self.key_len();
        // SAFETY: the value's `value_len` bytes start at `at` and end the
        // allocation (written by build_extra).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(at), self.value_len()) }
    }

    /// All non-key, non-value fields.
    pub(crate) fn meta(&self) -> Meta {
        Meta {
            cas: self.cas(),
            expire_at: self.expire_at(),
            flags: self.flags(),
        }
    }

    /// True when the entry carries tags or an explicit epoch: the only
    /// entries whose liveness depends on tag invalidations.
    #[inline]
    pub(crate) fn has_extras(&self) -> bool {
        self.present() & (HAS_EPOCH | HAS_TAGS) != 0
    }

    /// The entry's tag ids, ascending (empty for an untagged entry).
    pub(crate) fn tag_ids(&self) -> TagIds<'_> {
        let p = self.present();
        if p & HAS_TAGS == 0 {
            return TagIds(&[]);
        }
        let mut at = HEADER + Self::base_opt_len(p);
        if p & HAS_EPOCH != 0 {
            at += 8;
        }
        let n = self.tag_count_at(at);
        TagIds(&self.bytes()[at + 2..at + 2 + 4 * n])
    }

    /// The explicit epoch, if the entry has one.
    pub(crate) fn explicit_epoch(&self) -> Option<u64> {
        let p = self.present();
        if p & HAS_EPOCH == 0 {
            return None;
        }
        let at = HEADER + Self::base_opt_len(p);
        Some(u64::from_le_bytes(
            self.bytes()[at..at + 8].try_into().unwrap(),
        ))
    }

    /// The invalidation epoch of this version: an invalidation taken at a
    /// later epoch kills it (see `crate::tags`).
    pub(crate) fn epoch(&self) -> u64 {
        self.explicit_epoch().unwrap_or_else(|| self.cas())
    }

    /// A copy of this entry with new metadata and extras, keeping key,
    /// value, last access time and fetched state.
    ///
    /// For a collection entry the copy points at the same collection and
    /// carries the marker: both entries then claim it, so the caller must
    /// [`Entry::disown`] this one as soon as the copy has replaced it
    /// (`Shard::replace_rebuilt`), and never keep both.
    pub(crate) fn rebuilt(&self, meta: Meta, extras: Extras<'_>) -> Entry {
        let value = self.value();
        let mut e = Entry::build_extra(
            self.key(),
            value.len(),
            meta,
            self.last_access(),
            extras,
            |d| d.copy_from_slice(value),
        );
        if self.is_collection() {
            // SAFETY: byte PRESENT_AT is in the header; we own the allocation.
            unsafe { *e.ptr.as_ptr().add(PRESENT_AT) |= COLLECTION }
        }
        if self.fetched() {
            e.mark_fetched();
        }
        e
    }

    /// True when the entry has expired at time `now` (ms).
    pub(crate) fn is_expired(&self, now: u64) -> bool {
        matches!(self.expire_at(), Some(t) if t <= now)
    }
}

/// The tag ids of an entry, as stored (4 bytes each, little endian).
#[derive(Clone, Copy, Debug)]
pub(crate) struct TagIds<'a>(&'a [u8]);

impl TagIds<'_> {
    /// Number of tags.
    pub(crate) fn len(&self) -> usize {
        self.0.len() / 4
    }

    /// True for an untagged entry.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Tag id `i`.
    pub(crate) fn get(&self, i: usize) -> u32 {
        u32::from_le_bytes(self.0[4 * i..4 * i + 4].try_into().unwrap())
    }

    /// The ids, ascending.
    pub(crate) fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.0
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
    }

    /// True when the entry carries tag `id`.
    pub(crate) fn contains(&self, id: u32) -> bool {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.get(mid).cmp(&id) {
                std::cmp::Ordering::Equal => return true,
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
            }
        }
        false
    }

    /// The ids as a vector.
    pub(crate) fn to_vec(self) -> Vec<u32> {
        self.iter().collect()
    }
}

/// The collection-specific part of [`Entry`]: the type marker's methods.
impl Entry {
    /// Allocates an entry owning collection `coll` (see [`COLLECTION`]).
    pub(crate) fn build_collection(
        key: &[u8],
        coll: Box<Collection>,
        meta: Meta,
        clock: u32,
    ) -> Entry {
        let raw = Box::into_raw(coll) as usize;
        let e = Self::build(key, &[&raw.to_ne_bytes()], meta, clock);
        // SAFETY: byte PRESENT_AT is in the header; we own the allocation.
        unsafe { *e.ptr.as_ptr().add(PRESENT_AT) |= COLLECTION }
        e
    }

    /// True when the entry holds a collection rather than bytes.
    #[inline]
    pub(crate) fn is_collection(&self) -> bool {
        self.present() & COLLECTION != 0
    }

    fn collection_ptr(&self) -> *mut Collection {
        let v = self.value();
        usize::from_ne_bytes(v[..8].try_into().unwrap()) as *mut Collection
    }

    /// The collection this entry owns, if it holds one.
    pub(crate) fn collection(&self) -> Option<&Collection> {
        // SAFETY: a COLLECTION entry's value is the pointer of a live box
        // it owns (build_collection); shared access to the entry lends it.
        self.is_collection()
            .then(|| unsafe { &*self.collection_ptr() })
    }

    /// The collection this entry owns, mutably.
    pub(crate) fn collection_mut(&mut self) -> Option<&mut Collection> {
        // SAFETY: as in `collection`, with `&mut self` exclusive.
        self.is_collection()
            .then(|| unsafe { &mut *self.collection_ptr() })
    }

    /// What the entry holds.
    #[inline]
    pub(crate) fn kind(&self) -> Kind {
        match self.collection() {
            None => Kind::String,
            Some(c) => c.kind(),
        }
    }

    /// Frees this entry without its collection (now owned by the entry
    /// [`Entry::rebuilt`] made).
    pub(crate) fn disown(self) {
        // SAFETY: clearing the marker makes Drop free only the entry (the
        // allocation's size does not depend on the marker).
        unsafe { *self.ptr.as_ptr().add(PRESENT_AT) &= !COLLECTION };
    }

    /// Gives the entry a new CAS in place (a collection's every write makes
    /// a new version without rebuilding the entry).
    pub(crate) fn set_cas(&mut self, cas: u64) {
        // SAFETY: bytes 0..8 are the header's CAS; `&mut self` is exclusive.
        unsafe { std::ptr::copy_nonoverlapping(cas.to_le_bytes().as_ptr(), self.ptr.as_ptr(), 8) }
    }

    /// Bytes this entry accounts for: its allocation plus, for a
    /// collection, everything the collection holds.
    #[inline]
    pub(crate) fn footprint(&self) -> usize {
        if self.is_collection() {
            return self.collection_footprint();
        }
        self.alloc_size()
    }

    /// [`Entry::footprint`] of a collection entry, apart from the string
    /// path.
    #[cold]
    #[inline(never)]
    fn collection_footprint(&self) -> usize {
        self.alloc_size() + self.collection().map_or(0, |c| c.footprint())
    }

    /// Frees the collection a collection entry owns (Drop's cold path).
    #[cold]
    #[inline(never)]
    fn drop_collection(&mut self) {
        // SAFETY: a COLLECTION entry owns the box its value points to
        // (build_collection), and this runs once, from Drop.
        drop(unsafe { Box::from_raw(self.collection_ptr()) });
    }
}

impl Drop for Entry {
    #[inline]
    fn drop(&mut self) {
        if self.is_collection() {
            self.drop_collection();
        }
        let layout = Layout::from_size_align(self.alloc_size(), 1).expect("entry layout");
        // SAFETY: allocated in build_with with this exact layout.
        unsafe { dealloc(self.ptr.as_ptr(), layout) }
    }
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("key", &String::from_utf8_lossy(self.key()))
            .field("value_len", &self.value_len())
            .field("meta", &self.meta())
            .field("last_access", &self.last_access())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLOCK: u32 = 1_234_567;

    #[test]
    fn round_trips_every_optional_field_combination() {
        for key_len in [0, 14, 255, 256, 300, 70_000] {
            let key: Vec<u8> = (0..key_len).map(|i| (i % 251) as u8).collect();
            for expire_at in [None, Some(1_700_000_000_123)] {
                for flags in [0, 1, u32::MAX] {
                    let meta = Meta {
                        cas: 42,
                        expire_at,
                        flags,
                    };
                    let e = Entry::build(&key, &[b"hello ", b"world"], meta, CLOCK);
                    assert_eq!(e.key(), &key[..], "key of {key_len} bytes");
                    assert_eq!(e.value(), b"hello world");
                    assert_eq!(e.meta(), meta);
                    assert_eq!(e.last_access(), CLOCK);
                    let opt = 8 * expire_at.is_some() as usize
                        + 4 * (flags != 0) as usize
                        + 4 * (key_len > 255) as usize;
                    assert_eq!(e.alloc_size(), HEADER + opt + key_len + 11);
                }
            }
        }
    }

    #[test]
    fn a_255_byte_key_fits_the_header_byte_and_256_takes_the_long_field() {
        let short = Entry::build(&[b'a'; 255], &[b"v"], Meta::default(), CLOCK);
        assert_eq!(short.alloc_size(), HEADER + 255 + 1);
        assert_eq!(short.present() & LONG_KEY, 0);
        assert_eq!(short.key(), &[b'a'; 255][..]);
        let long = Entry::build(&[b'b'; 256], &[b"v"], Meta::default(), CLOCK);
        assert_eq!(long.alloc_size(), HEADER + 4 + 256 + 1);
        assert_ne!(long.present() & LONG_KEY, 0);
        assert_eq!(long.key(), &[b'b'; 256][..]);
        assert_eq!(long.value(), b"v");
    }

    #[test]
    fn a_300_byte_key_with_expiry_and_flags_round_trips() {
        let key: Vec<u8> = (0..300u32).map(|i| b'a' + (i % 26) as u8).collect();
        let meta = Meta {
            cas: u64::MAX,
            expire_at: Some(u64::MAX - 1),
            flags: 0xdead_beef,
        };
        let mut e = Entry::build(&key, &[b"value"], meta, CLOCK);
        e.mark_fetched();
        e.touch(CLOCK + 9);
        assert_eq!(e.key(), &key[..]);
        assert_eq!(e.value(), b"value");
        assert_eq!(e.meta(), meta);
        assert!(e.fetched());
        assert_eq!(e.last_access(), CLOCK + 9);
        assert_eq!(e.alloc_size(), HEADER + 8 + 4 + 4 + 300 + 5);
    }

    #[test]
    fn the_fetched_bit_changes_nothing_else() {
        let meta = Meta {
            cas: 9,
            expire_at: Some(1_700_000_000_123),
            flags: 5,
        };
        let mut e = Entry::build(b"key", &[b"value"], meta, CLOCK);
        let size = e.alloc_size();
        assert!(!e.fetched());
        e.mark_fetched();
        assert!(e.fetched());
        assert_eq!(
            (
                e.key(),
                e.value(),
                e.meta(),
                e.alloc_size(),
                e.last_access()
            ),
            (&b"key"[..], &b"value"[..], meta, size, CLOCK)
        );
    }

    #[test]
    fn touching_changes_only_the_access_time() {
        let meta = Meta {
            cas: 3,
            expire_at: Some(77),
            flags: 1,
        };
        let mut e = Entry::build(b"k", &[b"v"], meta, 5);
        for clock in [6, CLOCK_MASK, 0, 1 << 23] {
            e.touch(clock);
            assert_eq!(e.last_access(), clock);
            assert_eq!((e.key(), e.value(), e.meta()), (&b"k"[..], &b"v"[..], meta));
            assert!(!e.fetched());
        }
        // only the low 24 bits are kept
        e.touch(CLOCK_MASK + 1 + 42);
        assert_eq!(e.last_access(), 42);
        assert_eq!(e.meta(), meta);
    }

    #[test]
    fn idle_time_is_taken_modulo_the_24_bit_clock() {
        assert_eq!(idle_secs(100, 100), 0);
        assert_eq!(idle_secs(100, 160), 60);
        // accessed 5 s before the clock wrapped, read 10 s after it
        assert_eq!(idle_secs(CLOCK_MASK - 4, 10), 15);
        assert_eq!(idle_secs(CLOCK_MASK, 0), 1);
        // readings are masked first, so a full u32 clock works too
        let now = 1_700_000_000u32;
        let e = Entry::build(b"k", &[], Meta::default(), now - 30);
        assert_eq!(idle_secs(e.last_access(), now), 30);
        assert_eq!(idle_secs(e.last_access(), now + (1 << 24)), 30);
    }

    #[test]
    fn benchmark_shape_fits_one_64_byte_class() {
        let e = Entry::build(&[b'k'; 15], &[&[b'v'; 32]], Meta::default(), CLOCK);
        assert_eq!(e.alloc_size(), 64);
        assert_eq!(HEADER, 17, "the header must not grow");
    }

    #[test]
    fn tags_and_epoch_round_trip_beside_every_other_field() {
        for key_len in [0, 14, 255, 256, 300] {
            let key: Vec<u8> = (0..key_len).map(|i| (i % 251) as u8).collect();
            for expire_at in [None, Some(1_700_000_000_123)] {
                for flags in [0, 9] {
                    for epoch in [None, Some(77)] {
                        for tags in [&[][..], &[3][..], &[1, 5, 9, u32::MAX][..]] {
                            let meta = Meta {
                                cas: 42,
                                expire_at,
                                flags,
                            };
                            let x = Extras { epoch, tags };
                            let e = Entry::build_extra(&key, 5, meta, CLOCK, x, |d| {
                                d.copy_from_slice(b"hello")
                            });
                            assert_eq!(e.key(), &key[..]);
                            assert_eq!(e.value(), b"hello");
                            assert_eq!(e.meta(), meta);
                            assert_eq!(e.tag_ids().to_vec(), tags);
                            assert_eq!(e.explicit_epoch(), epoch);
                            assert_eq!(e.epoch(), epoch.unwrap_or(42));
                            assert_eq!(e.has_extras(), epoch.is_some() || !tags.is_empty());
                            for &t in tags {
                                assert!(e.tag_ids().contains(t));
                            }
                            assert!(!e.tag_ids().contains(4));
                            let opt = 8 * expire_at.is_some() as usize
                                + 4 * (flags != 0) as usize
                                + 4 * (key_len > 255) as usize
                                + 8 * epoch.is_some() as usize
                                + if tags.is_empty() {
                                    0
                                } else {
                                    2 + 4 * tags.len()
                                };
                            assert_eq!(e.alloc_size(), HEADER + opt + key_len + 5);
                            let mut f = e.rebuilt(Meta { cas: 43, ..meta }, x);
                            f.mark_fetched();
                            let g = f.rebuilt(meta, Extras::default());
                            assert!(g.fetched());
                            assert_eq!((g.key(), g.value()), (&key[..], &b"hello"[..]));
                            assert!(g.tag_ids().is_empty() && !g.has_extras());
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_tag_costs_at_most_8_bytes() {
        let plain = Entry::build(&[b'k'; 15], &[&[b'v'; 32]], Meta::default(), CLOCK).alloc_size();
        for n in 1..=64u32 {
            let tags: Vec<u32> = (0..n).collect();
            let x = Extras {
                epoch: None,
                tags: &tags,
            };
            let e = Entry::build_extra(&[b'k'; 15], 32, Meta::default(), CLOCK, x, |_| {});
            assert!(e.alloc_size() - plain <= 8 * n as usize);
        }
    }

    #[test]
    fn empty_key_and_value() {
        let e = Entry::build(
            b"",
            &[],
            Meta {
                cas: 7,
                ..Meta::default()
            },
            CLOCK,
        );
        assert_eq!(e.key(), b"");
        assert_eq!(e.value(), b"");
        assert_eq!(e.cas(), 7);
    }
}
