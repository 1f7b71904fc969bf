//! The scalable encoding behind `hashtable` hashes and sets: a hashbrown
//! table of boxed byte strings, one allocation per element, found by the
//! hash of a prefix of the element (the member of a set, the field of a
//! hash's `field + value` element).

use std::hash::BuildHasher;

use foldhash::fast::RandomState;
use hashbrown::hash_table::{Entry as Slot, HashTable};

/// Heap cost of one bucket: the fat pointer plus its control byte.
const BUCKET_BYTES: usize = std::mem::size_of::<Box<[u8]>>() + 1;

/// A table of elements keyed by `key_of(element)` (see the module docs).
#[derive(Clone, Default)]
pub(crate) struct Table {
    table: HashTable<Box<[u8]>>,
    hasher: RandomState,
    /// Sum of the elements' lengths.
    element_bytes: usize,
    /// Bumped whenever the table may move elements between buckets, so a
    /// chunked walk ([`Table::walk`]) restarts instead of missing one.
    epoch: u16,
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table").field("len", &self.len()).finish()
    }
}

impl Table {
    pub(crate) fn with_capacity(n: usize) -> Table {
        Table {
            table: HashTable::with_capacity(n),
            ..Table::default()
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    /// Heap bytes: buckets plus element allocations.
    pub(crate) fn heap_bytes(&self) -> usize {
        let buckets = if self.table.capacity() == 0 {
            0
        } else {
            self.table.num_buckets() * BUCKET_BYTES
        };
        buckets + self.element_bytes
    }

    /// The element whose key (by `key_of`) is `key`.
    pub(crate) fn find(&self, key: &[u8], key_of: fn(&[u8]) -> &[u8]) -> Option<&[u8]> {
        let h = self.hasher.hash_one(key);
        self.table.find(h, |e| key_of(e) == key).map(|e| &e[..])
    }

    /// Inserts `element` (whose key is `key_of(element)`), replacing an
    /// element with the same key. True when the key is new.
    pub(crate) fn put(&mut self, element: Box<[u8]>, key_of: fn(&[u8]) -> &[u8]) -> bool {
        let h = self.hasher.hash_one(key_of(&element));
        if self.table.len() == self.table.capacity() {
            self.epoch = self.epoch.wrapping_add(1);
        }
        let hasher = &self.hasher;
        let len = element.len();
        match self.table.entry(
            h,
            |e| key_of(e) == key_of(&element),
            |e| hasher.hash_one(key_of(e)),
        ) {
            Slot::Occupied(mut o) => {
                self.element_bytes -= o.get().len();
                *o.get_mut() = element;
                self.element_bytes += len;
                false
            }
            Slot::Vacant(v) => {
                v.insert(element);
                self.element_bytes += len;
                true
            }
        }
    }

    /// Removes the element with key `key`; true when there was one.
    pub(crate) fn remove(&mut self, key: &[u8], key_of: fn(&[u8]) -> &[u8]) -> bool {
        let h = self.hasher.hash_one(key);
        match self.table.find_entry(h, |e| key_of(e) == key) {
            Ok(found) => {
                let (old, _) = found.remove();
                self.element_bytes -= old.len();
                true
            }
            Err(_) => false,
        }
    }

    /// Every element, in table order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.table.iter().map(|e| &e[..])
    }

    /// One step of a walk that may be interrupted between steps while the
    /// table changes: visits elements from `cursor` on until `count` were
    /// visited, returning the cursor to resume at (0 when done). Every
    /// element present for the whole walk is visited at least once: if the
    /// table may have moved elements since `cursor` was issued, the walk
    /// restarts (repeats are possible, misses are not).
    pub(crate) fn walk<'s>(
        &'s self,
        cursor: u64,
        count: usize,
        mut f: impl FnMut(&'s [u8]),
    ) -> u64 {
        let epoch = (cursor >> 48) as u16;
        let mut bucket = (cursor & ((1 << 48) - 1)) as usize;
        if bucket != 0 && epoch != self.epoch {
            bucket = 0;
        }
        let n = self.table.num_buckets();
        let mut seen = 0;
        while bucket < n {
            if let Some(e) = self.table.get_bucket(bucket) {
                f(e);
                seen += 1;
            }
            bucket += 1;
            if seen >= count.max(1) && bucket < n {
                return ((self.epoch as u64) << 48) | bucket as u64;
            }
        }
        0
    }

    /// The element at bucket `index` modulo the bucket count, if occupied
    /// (random sampling).
    pub(crate) fn bucket(&self, index: usize) -> Option<&[u8]> {
        let n = self.table.num_buckets();
        self.table.get_bucket(index % n).map(|e| &e[..])
    }

    /// Number of buckets.
    #[cfg(test)]
    pub(crate) fn num_buckets(&self) -> usize {
        self.table.num_buckets()
    }
}
