//! Feeds arbitrary bytes to the log reader (recovery's scan of a segment)
//! and checks that it never panics and never accepts a record that is not
//! whole in the file with its checksum; see
//! `magpie_persist::check::check_log_reader_invariants`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    magpie_persist::check::check_log_reader_invariants(data);
});
