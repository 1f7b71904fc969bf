//! Feeds arbitrary bytes to the memcached text/meta request parser and
//! checks the protocol rules; see
//! `magpie_protocol::memcache::check_memcache_parser_invariants`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    magpie_protocol::memcache::check_memcache_parser_invariants(data);
});
