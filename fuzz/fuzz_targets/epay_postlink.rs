#![no_main]
//! See `payfleet_fuzz::epay_postlink` for the properties asserted.

libfuzzer_sys::fuzz_target!(|data: &[u8]| payfleet_fuzz::epay_postlink::check(data));
