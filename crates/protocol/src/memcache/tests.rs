use super::*;

fn one(input: &[u8]) -> (Request<'_>, usize) {
    let mut p = Parser::new(Limits::default());
    match p.parse(input) {
        Parsed::Request(r, n) => (r, n),
        other => panic!("expected a request, got {other:?}"),
    }
}

fn err(input: &[u8]) -> &'static str {
    match one(input).0 {
        Request::Error { line, .. } => line,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn storage_waits_for_the_whole_block_and_borrows_it() {
    let mut p = Parser::new(Limits::default());
    assert_eq!(p.parse(b"set k 5 0 3\r\nab"), Parsed::Incomplete);
    let buf = b"set k 5 0 3\r\nabc\r\nget k\r\n";
    match p.parse(buf) {
        Parsed::Request(
            Request::Store {
                key, flags, data, ..
            },
            n,
        ) => {
            assert_eq!((key, flags, data, n), (&b"k"[..], 5, &b"abc"[..], 18));
            assert_eq!(data.as_ptr(), buf[13..].as_ptr());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn errors_are_memcacheds() {
    assert_eq!(err(b"bogus\r\n"), "ERROR");
    assert_eq!(err(b"\r\n"), "ERROR");
    assert_eq!(err(b"get\r\n"), "ERROR");
    assert_eq!(err(b"set k 0 0\r\n"), "ERROR");
    assert_eq!(
        err(b"set k 0 0 abc\r\n"),
        "CLIENT_ERROR bad command line format"
    );
    assert_eq!(
        err(b"set k 0 0 -1\r\n"),
        "CLIENT_ERROR bad command line format"
    );
    assert_eq!(err(b"set k 0 0 1\r\nxy\r\n"), "CLIENT_ERROR bad data chunk");
    assert_eq!(
        err(b"incr k x\r\n"),
        "CLIENT_ERROR invalid numeric delta argument"
    );
    assert_eq!(
        err(b"touch k x\r\n"),
        "CLIENT_ERROR invalid exptime argument"
    );
    assert_eq!(
        err(b"delete k 1\r\n"),
        "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]"
    );
    let long = format!("get a {} b\r\n", "k".repeat(251));
    assert_eq!(err(long.as_bytes()), "CLIENT_ERROR bad command line format");
    assert_eq!(err(b"mg\r\n"), "ERROR");
    assert_eq!(err(b"mg k v v\r\n"), "CLIENT_ERROR duplicate flag");
    assert_eq!(
        err(b"md k v v\r\n"),
        "CLIENT_ERROR invalid or duplicate flag"
    );
    assert_eq!(err(b"ms k\r\n"), "CLIENT_ERROR bad command line format");
    let many = format!("mg k{}\r\n", " v".repeat(19));
    assert_eq!(
        err(many.as_bytes()),
        "CLIENT_ERROR options flags are too long"
    );
}

#[test]
fn bad_data_chunk_consumes_exactly_the_announced_block() {
    let (_, n) = one(b"set k 0 0 3\r\nabcdefgh\r\n");
    assert_eq!(n, 13 + 5);
}

#[test]
fn too_large_skips_the_block_as_it_arrives() {
    let mut p = Parser::new(Limits {
        max_item_size: 100,
        ..Limits::default()
    });
    let (r, n) = match p.parse(b"set k 0 0 1000\r\nxx") {
        Parsed::Request(r, n) => (r, n),
        o => panic!("{o:?}"),
    };
    assert!(matches!(
        r,
        Request::TooLarge {
            op: StoreOp::Set,
            ..
        }
    ));
    assert_eq!(n, 16);
    assert_eq!(p.parse(b"xx"), Parsed::Skipped(2));
    assert_eq!(p.parse(&[b'x'; 2000]), Parsed::Skipped(1000));
    assert!(matches!(
        p.parse(b"mn\r\n"),
        Parsed::Request(Request::MetaNoop, 4)
    ));
}

#[test]
fn long_lines_close_unless_get() {
    let mut p = Parser::new(Limits::default());
    assert_eq!(p.parse(&[b'x'; 2048]), Parsed::Incomplete);
    assert_eq!(p.parse(&[b'x'; 2049]), Parsed::Close);
    let mut p = Parser::new(Limits::default());
    let get: Vec<u8> = b"get "
        .iter()
        .chain([b'k', b' '].iter().cycle().take(5000))
        .copied()
        .collect();
    assert_eq!(p.parse(&get), Parsed::Incomplete);
}

#[test]
fn item_size_formula_matches_memcached_limit() {
    // memcached -I 1m stores 1048516 bytes under a 1-byte key, not one more
    assert!(item_size_ok(1, 0, 1_048_516, DEFAULT_MAX_ITEM_SIZE));
    assert!(!item_size_ok(1, 0, 1_048_517, DEFAULT_MAX_ITEM_SIZE));
}

#[test]
fn invariants_hold_on_samples() {
    for s in [
        &b"set k 0 0 3\r\nabc\r\nget k k2\r\n"[..],
        b"ms k 2 T10 F3\r\nhi\r\nmg k v\r\n",
        b"set k 0 0 99999\r\nabc",
        b"\x05get a b c\r\nquit\r\n",
    ] {
        check_memcache_parser_invariants(s);
    }
}
