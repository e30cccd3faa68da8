//! Produced record batches through the produce-side checks (CRCs sealed first).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tidelog::fuzzing::produced_batches(data));
