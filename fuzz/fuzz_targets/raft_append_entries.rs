//! A cluster peer's AppendEntries payload, decoded as a follower decodes it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tidelog::fuzzing::raft_append_entries(data));
