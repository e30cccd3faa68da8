//! Fuzzing entry (built only with `--cfg fuzzing`, by `fuzz/`): produced record batches through
//! the produce-side checks, with their CRCs set right first so the fuzzer gets past them.

use super::validate::{Rules, batches};
use crate::limits;
use crate::storage::Compression;
pub(crate) use crate::storage::fuzzing::seal_crcs;

/// Checks `data` (after a first byte that picks the topic's rules) as a produce request's
/// records would be checked. Whatever a check rewrites must pass the same checks again: a
/// broker must accept the batches it would store itself.
pub fn produced_batches(data: &[u8]) {
    let Some((&pick, records)) = data.split_first() else {
        return;
    };
    let mut records = records.to_vec();
    seal_crcs(&mut records);
    let codec = match pick % 7 {
        0 => Some(Compression::None),
        1 => Some(Compression::Gzip),
        2 => Some(Compression::Snappy),
        3 => Some(Compression::Lz4),
        4 => Some(Compression::Zstd),
        _ => None,
    };
    let rules = Rules {
        message_bytes_max: limits::MESSAGE_BYTES_MAX_DEFAULT,
        segment_bytes_max: limits::SEGMENT_BYTES_DEFAULT,
        require_keys: pick & 0x80 != 0,
        codec,
    };
    let Ok(checked) = batches(&records, &rules) else {
        return;
    };
    let again = Rules {
        message_bytes_max: u32::MAX,
        segment_bytes_max: limits::SEGMENT_BYTES_MAX,
        ..rules
    };
    for rewritten in checked.iter().filter_map(|c| c.rewritten.as_deref()) {
        if let Err(error) = batches(rewritten, &again) {
            panic!("a batch the broker rewrote fails its own checks: {error}");
        }
    }
}

/// A broker in a directory of its own under the temp dir, for a fuzz target to send requests
/// to; dropping it shuts the broker down and removes the directory (drop it inside the runtime
/// it was opened in).
#[derive(Debug)]
pub(crate) struct ScratchBroker {
    pub(crate) broker: std::sync::Arc<super::Broker>,
    dir: std::path::PathBuf,
}

impl ScratchBroker {
    /// Opens broker number `n` of this process with two topics a fuzzer can guess: `t` (two
    /// partitions) and `c` (compacted).
    pub(crate) async fn open(n: u64) -> ScratchBroker {
        let dir = std::env::temp_dir().join(format!("tidelog-fuzz-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("the fuzzed broker's data directory");
        let settings = super::BrokerSettings::for_test(
            1,
            "fuzz-cluster",
            &dir,
            super::Endpoint {
                host: "broker.fuzz".to_owned(),
                port: 19092,
            },
        );
        let broker =
            super::Broker::open(settings).expect("the fuzzed broker opens in a fresh directory");
        let compacted = [("cleanup.policy".to_owned(), Some("compact".to_owned()))];
        for (name, configs) in [("t", &[][..]), ("c", &compacted[..])] {
            broker
                .create_topic(name, Some(2), None, configs, false)
                .await
                .expect("the fuzzed broker creates its topics");
        }
        ScratchBroker { broker, dir }
    }
}

impl Drop for ScratchBroker {
    fn drop(&mut self) {
        let _closed = self.broker.shutdown();
        let _removed = std::fs::remove_dir_all(&self.dir);
    }
}
