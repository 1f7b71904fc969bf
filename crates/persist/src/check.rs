//! The log reader's rules on arbitrary bytes, shared by the `log_reader`
//! fuzz target and the test that replays its corpus: reading a file never
//! panics, and never accepts a record that is not in the file whole with
//! its checksum.

use std::io;

use crate::record::{encode, scan_file, End};

/// Writes `data` to a scratch file, scans it as a log segment and checks:
/// the accepted records, encoded again, are exactly the file's valid
/// prefix (so each one was present byte for byte, checksum included, and
/// nothing between them was skipped); the prefix ends where the scan says;
/// and the end is classified consistently (`Clean` only for a whole file,
/// `Zeros` only before zero bytes, `Torn` only when zeros or nothing follow
/// the damaged record, `Corrupt` only when something else does). Panics on
/// a broken rule.
pub fn check_log_reader_invariants(data: &[u8]) {
    let path = std::env::temp_dir().join(format!(
        "magpie-log-check-{}-{:?}.seg",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::write(&path, data).expect("write scratch segment");
    let mut reencoded = Vec::new();
    let scan = scan_file(&path, |m| {
        encode(&m, &mut reencoded);
        Ok::<(), io::Error>(())
    });
    let _ = std::fs::remove_file(&path);
    let scan = scan.expect("reading a regular file succeeds");
    let valid = scan.valid_len as usize;
    assert_eq!(scan.file_len as usize, data.len(), "file length");
    assert!(valid <= data.len(), "valid prefix within the file");
    assert_eq!(
        reencoded,
        &data[..valid],
        "accepted records are exactly the valid prefix"
    );
    assert_eq!(
        scan.records as usize,
        count_records(&reencoded),
        "record count"
    );
    let rest = &data[valid..];
    match &scan.end {
        End::Clean => assert!(rest.is_empty(), "clean only at the end"),
        End::Zeros { .. } => {
            assert!(
                !rest.is_empty() && rest.iter().all(|&b| b == 0),
                "zeros after"
            )
        }
        End::Torn { .. } => {
            assert!(!rest.is_empty(), "a torn record has bytes");
            let header_and_body = torn_extent(rest);
            assert!(
                rest[header_and_body..].iter().all(|&b| b == 0),
                "only zeros follow a torn record"
            );
        }
        End::Corrupt { .. } => assert!(
            rest.iter().any(|&b| b != 0),
            "corruption has non-zero bytes"
        ),
    }
}

/// How many records a run of well-formed records holds.
fn count_records(mut bytes: &[u8]) -> usize {
    let mut n = 0;
    while bytes.len() >= crate::record::HEADER {
        let len = u32::from_le_bytes(bytes[0..4].try_into().unwrap()) as usize;
        bytes = &bytes[crate::record::HEADER + len..];
        n += 1;
    }
    n
}

/// The bytes a damaged record at the start of `rest` covers: its header
/// and as much of its announced body as is there.
fn torn_extent(rest: &[u8]) -> usize {
    if rest.len() < crate::record::HEADER {
        return rest.len();
    }
    let len = u32::from_le_bytes(rest[0..4].try_into().unwrap()) as usize;
    (crate::record::HEADER + len).min(rest.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use magpie_engine::Mutation;

    fn rec(m: Mutation<'_>) -> Vec<u8> {
        let mut v = Vec::new();
        encode(&m, &mut v);
        v
    }

    #[test]
    fn the_rules_hold_on_good_torn_zeroed_and_corrupt_logs() {
        let set = rec(Mutation::Set {
            db: 0,
            flags: 0,
            expire_at: None,
            cas: 7,
            key: b"k",
            value: b"v",
        });
        let del = rec(Mutation::Del { db: 1, key: b"k" });
        let good = [set.clone(), del.clone()].concat();
        check_log_reader_invariants(&good);
        check_log_reader_invariants(&[good.clone(), vec![0; 100]].concat());
        check_log_reader_invariants(&good[..good.len() - 1]);
        let mut flipped = good.clone();
        flipped[set.len() + 9] ^= 1;
        check_log_reader_invariants(&flipped);
        check_log_reader_invariants(&[flipped, set].concat());
        check_log_reader_invariants(b"");
        check_log_reader_invariants(&[0xff; 3]);
    }
}
