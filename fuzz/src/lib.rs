//! The properties payfleet's fuzz targets assert. Each module's `check` takes one raw
//! input and panics when a property fails; the fuzz targets (`fuzz_targets/`) call it
//! under libFuzzer, and `tests/fuzz_corpus.rs` replays the kept corpus
//! (`corpus/<target>/`) through the same `check` on stable, in `scripts/test`.
//! The test includes these files by path, so this crate must not need libFuzzer.

pub mod decode_command;
pub mod digit_runs;
pub mod ecommpay;
pub mod epay_postlink;
pub mod sim_request;
