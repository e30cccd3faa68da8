//! Request frames dispatched to an in-process broker (see `tidelog::fuzzing::RequestTarget`).
#![no_main]

use std::sync::{Mutex, OnceLock};

use libfuzzer_sys::fuzz_target;
use tidelog::fuzzing::RequestTarget;

static TARGET: OnceLock<Mutex<RequestTarget>> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let target = TARGET.get_or_init(|| Mutex::new(RequestTarget::new()));
    let mut target = target.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    target.request(data);
});
