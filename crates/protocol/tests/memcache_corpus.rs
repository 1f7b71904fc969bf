//! Replays the memcache parser fuzz corpus (fuzz/corpus/memcache_parser)
//! through the invariant checker, so every stored input keeps passing
//! without cargo-fuzz, and also feeds prefixes of each input.

use magpie_protocol::memcache::check_memcache_parser_invariants;

#[test]
fn corpus_inputs_keep_the_parser_invariants() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/memcache_parser");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        check_memcache_parser_invariants(&data);
        for cut in (0..data.len()).step_by(7) {
            check_memcache_parser_invariants(&data[..cut]);
        }
        n += 1;
    }
    assert!(n >= 20, "expected at least 20 corpus inputs, found {n}");
}
