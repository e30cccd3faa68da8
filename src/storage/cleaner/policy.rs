//! Compaction decisions as pure functions of (segment summaries, cleaner checkpoint, settings,
//! now_ms): which closed segments a pass may clean and whether their dirty share warrants it.

use crate::storage::settings::CompactionSettings;

/// What the decision needs to know about one closed segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SegmentSummary {
    pub(crate) size_bytes: u64,
    pub(crate) next_offset: i64,
    /// Largest batch max_timestamp; None when the segment holds no batch.
    pub(crate) max_timestamp_ms: Option<i64>,
    /// The first batch's max_timestamp (approximates its oldest record).
    pub(crate) first_timestamp_ms: Option<i64>,
}

fn is_older(timestamp_ms: i64, now_ms: i64, age_ms: u64) -> bool {
    i128::from(now_ms) - i128::from(timestamp_ms) > i128::from(age_ms)
}

/// How many of the oldest closed segments (`closed`, oldest first, the active segment
/// excluded) one pass should clean, or None when no pass is due. Segments are cleanable up to
/// the first one holding a record younger than `min_compaction_lag_ms`. Those ending at or
/// below `first_dirty_offset` are clean (compacted before); the pass is due when the dirty
/// bytes reach `min_cleanable_dirty_ratio` of the cleanable bytes, or when the oldest dirty
/// segment is older than `max_compaction_lag_ms`.
pub(crate) fn cleanable_count(
    closed: &[SegmentSummary],
    first_dirty_offset: i64,
    settings: &CompactionSettings,
    now_ms: i64,
) -> Option<usize> {
    let count = closed
        .iter()
        .take_while(|segment| {
            settings.min_compaction_lag_ms == 0
                || segment.max_timestamp_ms.is_none_or(|max| {
                    is_older(
                        max,
                        now_ms,
                        settings.min_compaction_lag_ms.saturating_sub(1),
                    )
                })
        })
        .count();
    let cleanable = closed.get(..count)?;
    let (clean, dirty): (Vec<&SegmentSummary>, Vec<&SegmentSummary>) = cleanable
        .iter()
        .partition(|segment| segment.next_offset <= first_dirty_offset);
    let dirty_bytes: u64 = dirty.iter().map(|segment| segment.size_bytes).sum();
    let clean_bytes: u64 = clean.iter().map(|segment| segment.size_bytes).sum();
    if dirty_bytes == 0 {
        return None;
    }
    let total_bytes = u128::from(dirty_bytes) + u128::from(clean_bytes);
    let is_ratio_reached = u128::from(dirty_bytes) * 1_000_000
        >= u128::from(settings.min_cleanable_dirty_ratio_ppm) * total_bytes;
    let is_lag_exceeded = settings.max_compaction_lag_ms.is_some_and(|max_lag_ms| {
        dirty
            .first()
            .and_then(|segment| segment.first_timestamp_ms)
            .is_some_and(|first| is_older(first, now_ms, max_lag_ms))
    });
    (is_ratio_reached || is_lag_exceeded).then_some(count)
}

/// Whether a tombstone in a batch with `max_timestamp_ms` may be removed: it must sit in a
/// segment already compacted once (`is_in_clean_segment`) and be older than
/// `delete_retention_ms`.
pub(crate) fn is_tombstone_expired(
    max_timestamp_ms: i64,
    is_in_clean_segment: bool,
    settings: &CompactionSettings,
    now_ms: i64,
) -> bool {
    is_in_clean_segment && is_older(max_timestamp_ms, now_ms, settings.delete_retention_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(size_bytes: u64, next_offset: i64, timestamp_ms: i64) -> SegmentSummary {
        SegmentSummary {
            size_bytes,
            next_offset,
            max_timestamp_ms: Some(timestamp_ms),
            first_timestamp_ms: Some(timestamp_ms),
        }
    }

    fn settings(ratio_ppm: u32, min_lag_ms: u64, max_lag_ms: Option<u64>) -> CompactionSettings {
        CompactionSettings {
            min_cleanable_dirty_ratio_ppm: ratio_ppm,
            min_compaction_lag_ms: min_lag_ms,
            max_compaction_lag_ms: max_lag_ms,
            ..CompactionSettings::default()
        }
    }

    #[track_caller]
    fn check(
        settings: &CompactionSettings,
        first_dirty: i64,
        now_ms: i64,
        expected: Option<usize>,
    ) {
        let closed = [
            summary(100, 10, 1_000),
            summary(100, 20, 2_000),
            summary(100, 30, 3_000),
        ];
        assert_eq!(
            cleanable_count(&closed, first_dirty, settings, now_ms),
            expected
        );
    }

    #[test]
    fn cleanable_count_follows_dirty_ratio_and_lags() {
        check(&settings(500_000, 0, None), 0, 0, Some(3));
        check(&settings(500_000, 0, None), 30, 0, None); // nothing dirty
        check(&settings(500_000, 0, None), 20, 0, None); // 1/3 dirty
        check(&settings(300_000, 0, None), 20, 0, Some(3));
        check(&settings(1_000_000, 0, Some(500)), 20, 3_501, Some(3)); // max lag forces it
        check(&settings(1_000_000, 0, Some(500)), 20, 3_500, None);
        check(&settings(500_000, 1_500, None), 0, 3_600, Some(2)); // newest too young
        check(&settings(500_000, 5_000, None), 0, 3_600, None);
    }

    #[test]
    fn tombstone_expires_only_in_clean_segments_after_delete_retention() {
        let settings = CompactionSettings {
            delete_retention_ms: 100,
            ..CompactionSettings::default()
        };
        assert!(!is_tombstone_expired(0, false, &settings, 1_000));
        assert!(!is_tombstone_expired(900, true, &settings, 1_000));
        assert!(is_tombstone_expired(899, true, &settings, 1_000));
    }
}
