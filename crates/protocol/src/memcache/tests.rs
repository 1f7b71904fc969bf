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

#[test]
fn lite_set_is_set_with_flags_0_and_no_expiry() {
    let buf = b"set k 5\r\nhello\r\nget k\r\n";
    let (r, n) = one(buf);
    assert_eq!(n, 16);
    assert_eq!(
        r,
        Request::Store {
            op: StoreOp::Set,
            key: b"k",
            flags: 0,
            exptime: 0,
            cas: 0,
            data: b"hello",
            noreply: false,
        }
    );
    assert_eq!(one(b"set k 0\r\n\r\n").1, 11);
    let mut p = Parser::new(Limits::default());
    assert_eq!(p.parse(b"set k 5\r\nhel"), Parsed::Incomplete);
    // the data block is checked like any set's
    assert_eq!(err(b"set k 2\r\nabc\r\n"), "CLIENT_ERROR bad data chunk");
    assert_eq!(one(b"set k 2\r\nabc\r\n").1, 9 + 4);
}

#[test]
fn only_exactly_set_key_bytes_is_the_lite_form() {
    // memcached's answers for every other short storage line are kept
    for line in [
        &b"set k 5 noreply\r\n"[..],
        b"set k noreply\r\n",
        b"set k abc\r\n",
        b"set k -1\r\n",
        b"set k 2147483646\r\n",
        b"set k 0 0\r\n",
        b"set k\r\n",
        b"add k 5\r\n",
        b"replace k 5\r\n",
        b"append k 5\r\n",
        b"prepend k 5\r\n",
        b"cas k 5\r\n",
        b"cas k 0 0 5\r\n",
    ] {
        let (r, n) = one(line);
        assert_eq!(
            (r, n),
            (
                Request::Error {
                    line: "ERROR",
                    noreply: false
                },
                line.len()
            ),
            "{:?}",
            String::from_utf8_lossy(line)
        );
    }
    // the largest length memcached accepts
    let mut p = Parser::new(Limits::default());
    assert!(matches!(
        p.parse(b"set k 2147483645\r\n"),
        Parsed::Request(Request::TooLarge { .. }, 18)
    ));
}

#[test]
fn lite_set_validates_key_and_size_like_set() {
    let ok = format!("set {} 1\r\nx\r\n", "k".repeat(250));
    assert!(matches!(one(ok.as_bytes()).0, Request::Store { .. }));
    let long = format!("set {} 1\r\nx\r\n", "k".repeat(251));
    let (r, n) = one(long.as_bytes());
    assert_eq!(
        r,
        Request::Error {
            line: "CLIENT_ERROR bad command line format",
            noreply: false
        }
    );
    // as for a long key in a full set line, the data line is left unread
    assert_eq!(n, "set ".len() + 251 + " 1\r\n".len());
    let mut p = Parser::new(Limits {
        max_item_size: 100,
        ..Limits::default()
    });
    assert!(matches!(
        p.parse(b"set k 200\r\n"),
        Parsed::Request(
            Request::TooLarge {
                op: StoreOp::Set,
                noreply: false,
                ..
            },
            11
        )
    ));
    assert_eq!(p.parse(&[b'x'; 202]), Parsed::Skipped(202));
}

/// `E<cas>` (explicit new CAS, memcached 1.6.21+) on the four commands
/// that take it, with the replies for bad and out-of-range tokens: mg and
/// ms name the problem (ms skips its data block), md and ma answer their
/// one flag error for a bad token, and every command names the range.
#[test]
fn meta_e_token_on_each_command() {
    match one(b"ms k 2 C7 E9 c\r\nhi\r\n") {
        (Request::MetaSet { flags, data, .. }, 20) => {
            assert_eq!(
                (flags.cas, flags.new_cas, data),
                (Some(7), Some(9), &b"hi"[..])
            );
        }
        other => panic!("{other:?}"),
    }
    match one(b"mg k N30 E12 c v\r\n").0 {
        Request::MetaGet { flags, .. } => assert_eq!(flags.new_cas, Some(12)),
        other => panic!("{other:?}"),
    }
    match one(b"md k I E13 q\r\n").0 {
        Request::MetaDelete { flags, .. } => assert_eq!(flags.new_cas, Some(13)),
        other => panic!("{other:?}"),
    }
    match one(b"ma k N0 E14 v\r\n").0 {
        Request::MetaArith { flags, .. } => assert_eq!(flags.new_cas, Some(14)),
        other => panic!("{other:?}"),
    }
    let range = "CLIENT_ERROR E token out of range (1 to 9223372036854775807)";
    let bad = "CLIENT_ERROR bad token in command line format";
    let md_ma = "CLIENT_ERROR invalid or duplicate flag";
    for (line, want) in [
        (&b"mg k Ex\r\n"[..], bad),
        (b"mg k E0\r\n", range),
        (b"md k Ex\r\n", md_ma),
        (b"md k E0\r\n", range),
        (b"ma k E-1\r\n", md_ma),
        (b"ma k E9223372036854775808\r\n", range),
    ] {
        assert_eq!(err(line), want, "{}", String::from_utf8_lossy(line));
    }
    // ms: the error, then the data block is skipped, not read as a command
    for (line, want) in [
        (&b"ms k 2 Ex\r\nhi\r\n"[..], bad),
        (b"ms k 2 E0\r\nhi\r\n", range),
    ] {
        let mut p = Parser::new(Limits::default());
        let n = match p.parse(line) {
            Parsed::Request(Request::Error { line: got, .. }, n) => {
                assert_eq!(got, want);
                n
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(p.parse(&line[n..]), Parsed::Skipped(4));
    }
}

#[test]
fn meta_h_and_l() {
    match one(b"mg k h v\r\n").0 {
        Request::MetaGet { flags, .. } => assert!(flags.hit && flags.value),
        other => panic!("{other:?}"),
    }
    // mg answers l (seconds since the last access); ms md ma ignore both,
    // as memcached does
    match one(b"mg k h l\r\n").0 {
        Request::MetaGet { flags, .. } => {
            assert!(flags.hit && flags.last_access && !flags.value)
        }
        other => panic!("{other:?}"),
    }
    match one(b"mg k v\r\n").0 {
        Request::MetaGet { flags, .. } => assert!(!flags.last_access),
        other => panic!("{other:?}"),
    }
    assert_eq!(err(b"mg k l l\r\n"), "CLIENT_ERROR duplicate flag");
    assert!(matches!(one(b"md k h l\r\n").0, Request::MetaDelete { .. }));
    assert!(matches!(one(b"ma k l\r\n").0, Request::MetaArith { .. }));
    assert!(matches!(
        one(b"ms k 1 h l\r\nx\r\n"),
        (Request::MetaSet { .. }, 15)
    ));
}
