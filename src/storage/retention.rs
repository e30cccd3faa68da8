//! Retention decisions as a pure function of (segment summaries, settings, now_ms): which oldest
//! segments may go. Deleting the files is the log's job.

use super::settings::LogSettings;

/// What retention needs to know about one segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SegmentSummary {
    pub(crate) size_bytes: u64,
    pub(crate) next_offset: i64,
    /// Largest batch max_timestamp in the segment; None when it holds no batch.
    pub(crate) max_timestamp_ms: Option<i64>,
}

/// How many of the oldest segments to delete. `segments` is oldest first and its last entry is
/// the active segment, which is never counted. A segment goes when it lies wholly below
/// `log_start_offset`, when its newest timestamp is older than `now_ms - retention_ms`, or when
/// the log without it is still at least `retention_bytes` (Kafka's rule: retention never takes
/// the log below `retention.bytes`); time and size count unless the policy is compact alone.
/// Deletion stops at the first segment that stays.
pub(crate) fn deletable_segment_count(
    segments: &[SegmentSummary],
    log_start_offset: i64,
    settings: &LogSettings,
    now_ms: i64,
) -> usize {
    let Some((_active, candidates)) = segments.split_last() else {
        return 0;
    };
    let mut total_bytes: u64 = segments.iter().map(|segment| segment.size_bytes).sum();
    let mut count = 0;
    for segment in candidates {
        let is_below_start = segment.next_offset <= log_start_offset;
        let is_expired = settings.is_retention_enabled()
            && settings.retention_ms.is_some_and(|retention_ms| {
                segment.max_timestamp_ms.is_some_and(|max_timestamp_ms| {
                    i128::from(now_ms) - i128::from(max_timestamp_ms) > i128::from(retention_ms)
                })
            });
        let is_over_size = settings.is_retention_enabled()
            && settings.retention_bytes.is_some_and(|retention_bytes| {
                total_bytes.saturating_sub(segment.size_bytes) >= retention_bytes
            });
        if !(is_below_start || is_expired || is_over_size) {
            break;
        }
        total_bytes -= segment.size_bytes;
        count += 1;
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(size_bytes: u64, next_offset: i64, max_timestamp_ms: i64) -> SegmentSummary {
        SegmentSummary {
            size_bytes,
            next_offset,
            max_timestamp_ms: Some(max_timestamp_ms),
        }
    }

    fn settings(retention_ms: Option<u64>, retention_bytes: Option<u64>) -> LogSettings {
        LogSettings {
            retention_ms,
            retention_bytes,
            ..LogSettings::default()
        }
    }

    #[track_caller]
    fn check(settings: &LogSettings, log_start_offset: i64, now_ms: i64, expected: usize) {
        let segments = [
            summary(100, 10, 1_000),
            summary(100, 20, 2_000),
            summary(100, 30, 3_000),
        ];
        let count = deletable_segment_count(&segments, log_start_offset, settings, now_ms);
        assert_eq!(count, expected);
    }

    #[test]
    fn deletable_segment_count_follows_time_size_and_start_rules() {
        check(&settings(None, None), 0, 10_000, 0);
        check(&settings(Some(500), None), 0, 1_500, 0);
        check(&settings(Some(500), None), 0, 1_501, 1);
        check(&settings(Some(500), None), 0, 100_000, 2); // never the active segment
        check(&settings(None, Some(300)), 0, 0, 0);
        check(&settings(None, Some(299)), 0, 0, 0);
        check(&settings(None, Some(201)), 0, 0, 0);
        check(&settings(None, Some(200)), 0, 0, 1);
        check(&settings(None, Some(150)), 0, 0, 1);
        check(&settings(None, Some(100)), 0, 0, 2);
        check(&settings(None, Some(0)), 0, 0, 2);
        check(&settings(None, None), 10, 0, 1);
        check(&settings(None, None), 19, 0, 1);
        check(&settings(None, None), 30, 0, 2);
    }

    /// Regression (issue 7): the log was cut while larger than `retention.bytes`, so the last
    /// deletion took it below the limit; Kafka deletes a segment only if what remains is still
    /// at least `retention.bytes`.
    #[test]
    fn retention_bytes_deletes_one_segment_too_many() {
        let segments = [summary(100, 10, 0), summary(100, 20, 0), summary(50, 30, 0)];
        let count = |retention_bytes| {
            deletable_segment_count(&segments, 0, &settings(None, Some(retention_bytes)), 0)
        };
        assert_eq!(count(250), 0, "250 bytes kept means nothing can go");
        assert_eq!(count(249), 0, "deleting 100 would leave 150 < 249");
        assert_eq!(count(150), 1);
        assert_eq!(count(149), 1, "deleting both would leave 50 < 149");
        assert_eq!(count(50), 2);
    }

    #[test]
    fn deletable_segment_count_with_compact_only_policy_ignores_time_and_size() {
        use crate::storage::settings::CompactionSettings;
        let mut compacted = settings(Some(500), Some(100));
        compacted.compaction = Some(CompactionSettings::default());
        check(&compacted, 0, 100_000, 0);
        check(&compacted, 10, 100_000, 1); // the log start offset still applies
        compacted.compaction = Some(CompactionSettings {
            is_retention_enabled: true,
            ..CompactionSettings::default()
        });
        check(&compacted, 0, 100_000, 2);
    }

    #[test]
    fn deletable_segment_count_stops_at_first_kept_segment() {
        let segments = [
            summary(100, 10, 5_000),
            summary(100, 20, 1_000),
            summary(1, 30, 0),
        ];
        assert_eq!(
            deletable_segment_count(&segments, 0, &settings(Some(10), None), 4_000),
            0
        );
    }
}
