//! A compact sequence of byte strings in one allocation: the small-collection
//! encoding behind `listpack` hashes and sets (Redis's listpack is the same
//! kind of thing: length-prefixed items back to back, searched linearly).
//!
//! Each item is a LEB128 length followed by its bytes, so an item of up to
//! 127 bytes costs one byte more than its contents. The buffer is grown with
//! exact reservations (as Redis reallocates a listpack to its new size on
//! every write): a pack is small by construction, bounded by the
//! `*-max-listpack-entries` / `-value` thresholds, so the copying stays cheap
//! and no capacity is wasted.

/// Length-prefixed byte strings back to back (see the module docs).
#[derive(Clone, Default, Debug, PartialEq, Eq)]
pub(crate) struct Pack {
    buf: Vec<u8>,
    items: u32,
}

/// Bytes of the LEB128 encoding of `n`.
fn varint_len(mut n: usize) -> usize {
    let mut len = 1;
    while n >= 0x80 {
        n >>= 7;
        len += 1;
    }
    len
}

fn put_varint(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Decodes the LEB128 length at `buf[at..]`: (value, bytes used). The pack
/// only ever holds lengths it wrote itself.
fn get_varint(buf: &[u8], at: usize) -> (usize, usize) {
    let (mut n, mut shift, mut i) = (0usize, 0, at);
    loop {
        let b = buf[i];
        n |= ((b & 0x7f) as usize) << shift;
        i += 1;
        if b & 0x80 == 0 {
            return (n, i - at);
        }
        shift += 7;
    }
}

impl Pack {
    /// Number of items.
    pub(crate) fn len(&self) -> usize {
        self.items as usize
    }

    /// Heap bytes held (the buffer's capacity).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.buf.capacity()
    }

    /// The items in order, each with its byte offset in the buffer (what
    /// [`Pack::remove_at`] and [`Pack::replace_at`] take).
    pub(crate) fn iter(&self) -> PackIter<'_> {
        PackIter {
            buf: &self.buf,
            at: 0,
        }
    }

    /// Appends `item`.
    pub(crate) fn push(&mut self, item: &[u8]) {
        self.buf.reserve_exact(varint_len(item.len()) + item.len());
        put_varint(&mut self.buf, item.len());
        self.buf.extend_from_slice(item);
        self.items += 1;
    }

    /// Byte length of the item starting at offset `at`, prefix included.
    fn span_at(&self, at: usize) -> usize {
        let (n, used) = get_varint(&self.buf, at);
        n + used
    }

    /// Removes `count` consecutive items starting at byte offset `at`.
    pub(crate) fn remove_at(&mut self, at: usize, count: usize) {
        let mut end = at;
        for _ in 0..count {
            end += self.span_at(end);
        }
        self.buf.drain(at..end);
        self.items -= count as u32;
        if self.buf.capacity() > self.buf.len() + 64 {
            self.buf.shrink_to_fit();
        }
    }

    /// Replaces the item at byte offset `at` with `item`.
    pub(crate) fn replace_at(&mut self, at: usize, item: &[u8]) {
        let old = self.span_at(at);
        let mut enc = Vec::with_capacity(varint_len(item.len()) + item.len());
        put_varint(&mut enc, item.len());
        enc.extend_from_slice(item);
        if enc.len() > old {
            self.buf.reserve_exact(enc.len() - old);
        }
        self.buf.splice(at..at + old, enc);
        if self.buf.capacity() > self.buf.len() + 64 {
            self.buf.shrink_to_fit();
        }
    }

    /// Byte length of the buffer.
    #[cfg(test)]
    pub(crate) fn end(&self) -> usize {
        self.buf.len()
    }
}

/// Iterator over a [`Pack`]'s items: (byte offset, item).
pub(crate) struct PackIter<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Iterator for PackIter<'a> {
    type Item = (usize, &'a [u8]);

    fn next(&mut self) -> Option<(usize, &'a [u8])> {
        if self.at >= self.buf.len() {
            return None;
        }
        let start = self.at;
        let (n, used) = get_varint(self.buf, start);
        let item = &self.buf[start + used..start + used + n];
        self.at = start + used + n;
        Some((start, item))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(p: &Pack) -> Vec<Vec<u8>> {
        p.iter().map(|(_, i)| i.to_vec()).collect()
    }

    #[test]
    fn push_insert_replace_remove_round_trip() {
        let mut p = Pack::default();
        p.push(b"a");
        p.push(&[b'x'; 200]);
        p.push(b"");
        assert_eq!(p.len(), 3);
        assert_eq!(items(&p), vec![b"a".to_vec(), vec![b'x'; 200], vec![]]);
        // one prefix byte for short items, two for 128..16383
        assert_eq!(p.end(), 2 + 202 + 1);
        let second = p.iter().nth(1).unwrap().0;
        p.replace_at(second, b"yy");
        assert_eq!(items(&p), vec![b"a".to_vec(), b"yy".to_vec(), vec![]]);
        let at = p.iter().nth(1).unwrap().0;
        p.remove_at(at, 2);
        assert_eq!(items(&p), vec![b"a".to_vec()]);
        assert_eq!(p.len(), 1);
        p.push(b"last");
        assert_eq!(items(&p).last().unwrap(), b"last");
        p.remove_at(0, 2);
        assert_eq!((p.len(), p.end()), (0, 0));
    }

    #[test]
    fn long_lengths_use_multi_byte_prefixes() {
        for n in [127usize, 128, 16_383, 16_384, 70_000] {
            let mut p = Pack::default();
            p.push(&vec![7; n]);
            p.push(b"z");
            assert_eq!(p.end(), varint_len(n) + n + 2);
            assert_eq!(items(&p), vec![vec![7; n], b"z".to_vec()]);
        }
    }
}
