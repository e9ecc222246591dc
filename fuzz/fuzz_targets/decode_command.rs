#![no_main]
//! See `payfleet_fuzz::decode_command` for the properties asserted.

libfuzzer_sys::fuzz_target!(|data: &[u8]| payfleet_fuzz::decode_command::check(data));
