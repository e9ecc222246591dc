#![no_main]
//! See `payfleet_fuzz::sim_request` for the properties asserted.

libfuzzer_sys::fuzz_target!(|data: &[u8]| payfleet_fuzz::sim_request::check(data));
