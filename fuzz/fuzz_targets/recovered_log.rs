//! A partition directory of arbitrary files, recovered, read, appended to and reopened.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tidelog::fuzzing::recovered_log(data));
