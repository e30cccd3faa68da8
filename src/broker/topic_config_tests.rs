//! Unit tests of topic config resolution: cleanup policies and the compaction keys mapped to
//! storage's `CompactionSettings`, their validation and their DescribeConfigs entries.

use std::collections::BTreeMap;

use super::*;

/// `TopicSettings::resolve` over storage defaults, in the same (sorted) order.
fn resolve(pairs: &[(&str, &str)]) -> Result<TopicSettings> {
    let overrides: BTreeMap<&str, &str> = pairs.iter().copied().collect();
    let mut settings = TopicSettings {
        log: LogSettings::default(),
        message_bytes_max: 1_000,
        timestamp_policy: TimestampPolicy::CreateTime,
        min_insync_replicas: 1,
        codec: None,
        is_compacted: false,
        compaction: CompactionSettings::default(),
    };
    for (key, value) in overrides {
        settings.apply(key, value)?;
    }
    settings.finish();
    Ok(settings)
}

#[test]
fn cleanup_policy_maps_to_compaction_and_retention() {
    assert_eq!(resolve(&[]).unwrap().log.compaction, None);
    assert_eq!(
        resolve(&[("cleanup.policy", "delete")])
            .unwrap()
            .log
            .compaction,
        None
    );
    let compact = resolve(&[("cleanup.policy", "compact")]).unwrap().log;
    assert!(!compact.compaction.as_ref().unwrap().is_retention_enabled);
    assert!(!compact.is_retention_enabled());
    let both = resolve(&[("cleanup.policy", "compact, delete")])
        .unwrap()
        .log;
    assert!(both.compaction.as_ref().unwrap().is_retention_enabled);
    assert!(both.is_retention_enabled());
    assert!(resolve(&[("cleanup.policy", "shred")]).is_err());
    assert!(resolve(&[("cleanup.policy", "")]).is_err());
}

#[test]
fn compaction_keys_are_validated_and_applied() {
    let settings = resolve(&[
        ("cleanup.policy", "compact"),
        ("delete.retention.ms", "5"),
        ("min.compaction.lag.ms", "7"),
        ("max.compaction.lag.ms", "1000"),
        ("min.cleanable.dirty.ratio", "0.01"),
        ("segment.ms", "5000"),
    ])
    .unwrap();
    let compaction = settings.log.compaction.unwrap();
    assert_eq!(compaction.delete_retention_ms, 5);
    assert_eq!(compaction.min_compaction_lag_ms, 7);
    assert_eq!(compaction.max_compaction_lag_ms, Some(1000));
    assert_eq!(compaction.min_cleanable_dirty_ratio_ppm, 10_000);
    assert_eq!(
        settings.log.segment_ms_max,
        Some(1000),
        "max.compaction.lag.ms caps segment.ms"
    );
    for (key, value) in [
        ("min.cleanable.dirty.ratio", "1.5"),
        ("min.cleanable.dirty.ratio", "NaN"),
        ("delete.retention.ms", "-1"),
        ("min.compaction.lag.ms", "x"),
        ("max.compaction.lag.ms", "0"),
    ] {
        assert!(resolve(&[(key, value)]).is_err(), "{key}={value}");
    }
}

#[test]
fn compaction_keys_are_described_with_kafka_defaults() {
    for (key, value) in [
        ("delete.retention.ms", "86400000"),
        ("min.cleanable.dirty.ratio", "0.5"),
        ("min.compaction.lag.ms", "0"),
        ("max.compaction.lag.ms", "9223372036854775807"),
    ] {
        assert!(KEYS.iter().any(|spec| spec.name == key), "{key} is listed");
        assert_eq!(compaction_default(key).as_deref(), Some(value));
    }
}

#[test]
fn compression_type_maps_to_a_storage_codec() {
    assert_eq!(
        resolve(&[("compression.type", "producer")]).unwrap().codec,
        None
    );
    assert_eq!(
        resolve(&[("compression.type", "uncompressed")])
            .unwrap()
            .codec,
        Some(Compression::None)
    );
    assert_eq!(
        resolve(&[("compression.type", "zstd")]).unwrap().codec,
        Some(Compression::Zstd)
    );
    assert!(matches!(
        resolve(&[("compression.type", "brotli")]),
        Err(Error::InvalidConfig { .. })
    ));
}

#[test]
fn flush_keys_are_validated_like_kafka_and_change_no_setting() {
    let plain = resolve(&[]).unwrap();
    let flushed = resolve(&[("flush.ms", "12345678"), ("flush.messages", "1")]).unwrap();
    assert_eq!(flushed.log, plain.log);
    assert!(resolve(&[("flush.ms", "0")]).is_ok());
    for bad in [
        ("flush.ms", "-1"),
        ("flush.messages", "0"),
        ("flush.ms", "x"),
    ] {
        assert!(
            matches!(resolve(&[bad]), Err(Error::InvalidConfig { .. })),
            "{bad:?}"
        );
    }
}
