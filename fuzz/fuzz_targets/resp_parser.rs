//! Feeds arbitrary bytes to the RESP/inline/kvs request parser in several
//! read splits and checks the protocol rules; see
//! `magpie_protocol::resp::check::check_parser_invariants`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    magpie_protocol::resp::check::check_parser_invariants(data);
});
