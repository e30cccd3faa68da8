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
    /// Log compaction (`cleanup.policy` contains `compact`); None = delete-only.
    pub(crate) compaction: Option<CompactionSettings>,
}

/// How a compacted log is cleaned (`cleanup.policy=compact` or `compact,delete`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CompactionSettings {
    /// Whether time and size retention also delete segments (`compact,delete`).
    pub(crate) is_retention_enabled: bool,
    /// How long a compacted tombstone stays readable (`delete.retention.ms`).
    pub(crate) delete_retention_ms: u64,
    /// Segments holding records younger than this are not cleaned (`min.compaction.lag.ms`).
    pub(crate) min_compaction_lag_ms: u64,
    /// Clean regardless of the dirty ratio once dirty data is older (`max.compaction.lag.ms`).
    pub(crate) max_compaction_lag_ms: Option<u64>,
    /// Clean when dirty bytes / cleanable bytes reaches this, in millionths
    /// (`min.cleanable.dirty.ratio` times 10^6).
    pub(crate) min_cleanable_dirty_ratio_ppm: u32,
}

impl Default for CompactionSettings {
    fn default() -> Self {
        CompactionSettings {
            is_retention_enabled: false,
            delete_retention_ms: DAY_MS,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: None,
            min_cleanable_dirty_ratio_ppm: 500_000,
        }
    }
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
            compaction: None,
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
        if let Some(compaction) = &mut self.compaction {
            compaction.min_cleanable_dirty_ratio_ppm =
                compaction.min_cleanable_dirty_ratio_ppm.min(1_000_000);
        }
        self
    }

    /// Whether time and size retention delete segments (any policy but `compact` alone).
    pub(crate) fn is_retention_enabled(&self) -> bool {
        self.compaction
            .as_ref()
            .is_none_or(|compaction| compaction.is_retention_enabled)
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
