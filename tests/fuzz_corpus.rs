//! Replays the corpus the fuzz targets keep (`fuzz/corpus/<target>/`) through the very
//! properties they assert: the files under `fuzz/src/` are included here, so a stable
//! `cargo test` runs the same checks on every input the fuzzer found interesting.

#[path = "../fuzz/src/decode_command.rs"]
mod decode_command;
#[path = "../fuzz/src/digit_runs.rs"]
mod digit_runs;
#[path = "../fuzz/src/ecommpay.rs"]
mod ecommpay;
#[path = "../fuzz/src/epay_postlink.rs"]
mod epay_postlink;
#[path = "../fuzz/src/sim_request.rs"]
mod sim_request;

use std::path::Path;

/// Runs `check` on every file of the target's corpus (there must be some).
fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("the corpus {} cannot be read: {e}", dir.display()));
    let mut replayed = 0;
    for entry in entries {
        let path = entry.expect("a corpus entry").path();
        let data = std::fs::read(&path).expect("a corpus file reads");
        // Shown only if the check fails: names the input to fuzz or debug.
        eprintln!("replaying {}", path.display());
        check(&data);
        replayed += 1;
    }
    assert!(replayed > 0, "the corpus {} is empty", dir.display());
}

#[test]
fn decode_command_corpus_holds() {
    replay("decode_command", decode_command::check);
}

#[test]
fn ecommpay_corpus_holds() {
    replay("ecommpay", ecommpay::check);
}

#[test]
fn epay_postlink_corpus_holds() {
    replay("epay_postlink", epay_postlink::check);
}

#[test]
fn sim_request_corpus_holds() {
    replay("sim_request", sim_request::check);
}
