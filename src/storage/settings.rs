//! Per-log settings (plain data with Kafka defaults) and their clamping to hard limits.
//! Mapping Kafka topic config names to these fields happens outside storage.

use crate::limits;

const DAY_MS: u64 = 24 * 60 * 60 * 1000;
/// Smallest index file accepted: room for a few entries of either index.
const INDEX_FILE_BYTES_MIN: u32 = 64;

/// How one partition log rolls, indexes and retains its segments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LogSettings {
    /// Roll when the active segment would exceed this (`segment.bytes`).
    pub(crate) segment_bytes_max: u64,
    /// Roll when the active segment's first batch is older than this (`segment.ms`).
    pub(crate) segment_ms_max: Option<u64>,
    /// Bytes between sparse offset-index entries (`index.interval.bytes`).
    pub(crate) index_interval_bytes: u32,
    /// Preallocated size of each index file (`segment.index.bytes`).
    pub(crate) index_file_bytes: u32,
    /// Delete segments whose newest record is older than this (`retention.ms`); None = forever.
    pub(crate) retention_ms: Option<u64>,
    /// Delete oldest segments while the log is larger than this (`retention.bytes`).
    pub(crate) retention_bytes: Option<u64>,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            segment_bytes_max: limits::SEGMENT_BYTES_DEFAULT,
            segment_ms_max: Some(7 * DAY_MS),
            index_interval_bytes: limits::INDEX_INTERVAL_BYTES_DEFAULT,
            index_file_bytes: limits::INDEX_FILE_BYTES_DEFAULT,
            retention_ms: Some(7 * DAY_MS),
            retention_bytes: None,
        }
    }
}

impl LogSettings {
    /// The same settings with every bound forced into the range the storage format supports.
    pub(crate) fn clamped(mut self) -> LogSettings {
        self.segment_bytes_max = self
            .segment_bytes_max
            .clamp(limits::SEGMENT_BYTES_MIN, limits::SEGMENT_BYTES_MAX);
        self.index_file_bytes = self.index_file_bytes.max(INDEX_FILE_BYTES_MIN);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clamped_segment_bytes_max_above_limit_is_limit() {
        let settings = LogSettings {
            segment_bytes_max: u64::MAX,
            index_file_bytes: 1,
            ..LogSettings::default()
        }
        .clamped();
        assert_eq!(settings.segment_bytes_max, limits::SEGMENT_BYTES_MAX);
        assert_eq!(settings.index_file_bytes, INDEX_FILE_BYTES_MIN);
    }
}
