//! Replays every input of the `log_reader` fuzz corpus through the same
//! rules the fuzz target checks, so the corpus (seeds plus anything the
//! fuzzer found interesting) is a regression suite on stable Rust.

use std::path::Path;

use magpie_persist::check::check_log_reader_invariants;

#[test]
fn log_reader_corpus_keeps_the_rules() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/log_reader");
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    entries.sort();
    assert!(
        entries.len() >= 30,
        "corpus has only {} inputs",
        entries.len()
    );
    for path in &entries {
        let data = std::fs::read(path).expect("read corpus input");
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if let Err(panic) = std::panic::catch_unwind(|| check_log_reader_invariants(&data)) {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!(
                "corpus input {name} ({} bytes) broke a rule: {msg}",
                data.len()
            );
        }
    }
}
