//! The server side of PLAIN and SCRAM exchanges fed a client's arbitrary tokens.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tidelog::fuzzing::sasl_exchange(data));
