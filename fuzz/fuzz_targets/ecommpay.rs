#![no_main]
//! See `payfleet_fuzz::ecommpay` for the properties asserted.

libfuzzer_sys::fuzz_target!(|data: &[u8]| payfleet_fuzz::ecommpay::check(data));
