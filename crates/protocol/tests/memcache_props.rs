//! Properties of the memcached parser's "memcached-lite" short form
//! `set <key> <bytes>`: it means exactly `set <key> 0 0 <bytes>`, however
//! the bytes arrive, and no other short storage line changes meaning. And
//! of the meta `E<cas>` token: any number is either taken as the new CAS
//! or refused as out of range, on every command that has it, without
//! losing the request that follows.

use magpie_protocol::memcache::meta::{E_OUT_OF_RANGE, MAX_EXPLICIT_CAS};
use magpie_protocol::memcache::{
    check_memcache_parser_invariants, Limits, Parsed, Parser, Request,
};
use proptest::prelude::*;

/// A key as memcached tokenises one: any bytes but space and newline.
fn key() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        any::<u8>().prop_filter("no separators", |b| *b != b' ' && *b != b'\n'),
        1..=250,
    )
    // a trailing '\r' would be taken for the line end
    .prop_filter("no trailing CR", |k| k.last() != Some(&b'\r'))
}

/// Parses every request in `input`, delivered in pieces of `chunk` bytes,
/// rendering each as text.
fn parse_all(input: &[u8], chunk: usize) -> Vec<String> {
    let mut p = Parser::new(Limits::default());
    let mut out = Vec::new();
    let (mut off, mut avail) = (0, chunk.min(input.len()));
    loop {
        match p.parse(&input[off..avail]) {
            Parsed::Request(r, n) => {
                out.push(format!("{r:?}"));
                off += n;
            }
            Parsed::Skipped(n) => off += n,
            Parsed::Close => {
                out.push("close".into());
                return out;
            }
            Parsed::Incomplete if avail < input.len() => avail = (avail + chunk).min(input.len()),
            Parsed::Incomplete => return out,
        }
    }
}

proptest! {
    #[test]
    fn lite_set_means_set_with_flags_0_exptime_0(
        key in key(),
        value in prop::collection::vec(any::<u8>(), 0..300),
        chunk in 1usize..64,
    ) {
        let mut lite = b"set ".to_vec();
        lite.extend_from_slice(&key);
        lite.extend_from_slice(format!(" {}\r\n", value.len()).as_bytes());
        lite.extend_from_slice(&value);
        lite.extend_from_slice(b"\r\nmn\r\n");
        let mut full = b"set ".to_vec();
        full.extend_from_slice(&key);
        full.extend_from_slice(format!(" 0 0 {}\r\n", value.len()).as_bytes());
        full.extend_from_slice(&value);
        full.extend_from_slice(b"\r\nmn\r\n");
        let got = parse_all(&lite, chunk);
        prop_assert_eq!(&got, &parse_all(&full, usize::MAX));
        prop_assert_eq!(got.len(), 2);
        prop_assert!(got[0].starts_with("Store { op: Set"), "{}", got[0]);
        check_memcache_parser_invariants(&lite);
    }

    #[test]
    fn other_three_word_storage_lines_stay_errors(
        cmd in prop::sample::select(vec!["set", "add", "replace", "append", "prepend", "cas"]),
        third in prop_oneof![
            (0u32..100_000).prop_map(|n| n.to_string()),
            (1i64..1_000_000).prop_map(|n| format!("-{n}")),
            "[a-z]{1,8}",
            Just("noreply".to_string()),
        ],
        tail in prop::sample::select(vec!["", " noreply"]),
    ) {
        let is_lite = cmd == "set" && tail.is_empty() && third.bytes().all(|b| b.is_ascii_digit());
        prop_assume!(!is_lite);
        let line = format!("{cmd} k {third}{tail}\r\n");
        let mut p = Parser::new(Limits::default());
        let want = Parsed::Request(Request::Error { line: "ERROR", noreply: false }, line.len());
        prop_assert_eq!(p.parse(line.as_bytes()), want);
    }

    #[test]
    fn e_token_is_the_new_cas_or_out_of_range_on_every_meta_command(
        cas in prop_oneof![
            any::<u64>(),
            Just(0u64),
            Just(MAX_EXPLICIT_CAS),
            Just(MAX_EXPLICIT_CAS + 1),
            Just(u64::MAX),
        ],
        cmd in prop::sample::select(vec!["mg", "md", "ma", "ms"]),
        before in prop::sample::select(vec!["", "v ", "C5 ", "q ", "I "]),
        after in prop::sample::select(vec!["", " c", " k", " O9"]),
        chunk in 1usize..48,
    ) {
        let body = if cmd == "ms" { " 3" } else { "" };
        let data = if cmd == "ms" { "a\r\n\r\n" } else { "" };
        let input = format!("{cmd} key{body} {before}E{cas}{after}\r\n{data}mn\r\n");
        let got = parse_all(input.as_bytes(), chunk);
        prop_assert_eq!(got.len(), 2, "{:?}", got);
        if (1..=MAX_EXPLICIT_CAS).contains(&cas) {
            let want = format!("new_cas: Some({cas})");
            prop_assert!(got[0].contains(&want), "{}", got[0]);
        } else {
            let want = format!("{:?}", Request::Error { line: E_OUT_OF_RANGE, noreply: false });
            prop_assert_eq!(&got[0], &want);
        }
        // the request after it (ms: after its skipped block) is intact
        prop_assert_eq!(&got[1], "MetaNoop");
        check_memcache_parser_invariants(input.as_bytes());
    }
}
