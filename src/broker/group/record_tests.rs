//! Tests of the offsets-topic record format: Kafka's exact bytes for what Tidelog writes,
//! every version Kafka wrote read back, the legacy format still read, and damage never a panic.

use super::*;
use crate::broker::group::record_legacy::encode as legacy;

fn committed(expire_timestamp_ms: i64) -> CommittedOffset {
    CommittedOffset {
        offset: 42,
        leader_epoch: 7,
        metadata: Some("meta".to_owned()),
        commit_timestamp_ms: 1000,
        expire_timestamp_ms,
    }
}

/// Kafka's non-flexible string: i16 length, then the bytes.
fn s(text: &str) -> Vec<u8> {
    let mut out = i16::try_from(text.len())
        .expect("short")
        .to_be_bytes()
        .to_vec();
    out.extend_from_slice(text.as_bytes());
    out
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

#[test]
fn offset_key_is_kafkas_offset_commit_key_v1() {
    let key = Key::Offset {
        group: "g".to_owned(),
        topic: "t".to_owned(),
        partition: 3,
    };
    let expected = cat(&[&[0, 1], &s("g"), &s("t"), &3i32.to_be_bytes()]);
    assert_eq!(key.encode(), expected);
    assert_eq!(Key::decode(&expected), Some((key.clone(), Format::Kafka)));
    // Version 0 keys (older Kafka) read the same.
    let v0 = cat(&[&[0, 0], &s("g"), &s("t"), &3i32.to_be_bytes()]);
    assert_eq!(Key::decode(&v0), Some((key, Format::Kafka)));
    let group = Key::Group {
        group: "g".to_owned(),
    };
    assert_eq!(group.encode(), cat(&[&[0, 2], &s("g")]));
    // Other Kafka record types (KIP-848 and share groups) are not ours to read.
    assert_eq!(Key::decode(&cat(&[&[0, 3], &s("g")])), None);
}

#[test]
fn offset_value_is_kafkas_v3_or_v1_with_an_expiry() {
    let v3 = cat(&[
        &3i16.to_be_bytes(),
        &42i64.to_be_bytes(),
        &7i32.to_be_bytes(),
        &s("meta"),
        &1000i64.to_be_bytes(),
    ]);
    assert_eq!(encode_offset(&committed(-1)), v3);
    assert_eq!(decode_offset(&v3, Format::Kafka), Some(committed(-1)));
    let v1 = cat(&[
        &1i16.to_be_bytes(),
        &42i64.to_be_bytes(),
        &s("meta"),
        &1000i64.to_be_bytes(),
        &5000i64.to_be_bytes(),
    ]);
    assert_eq!(encode_offset(&committed(5000)), v1);
    let mut expected = committed(5000);
    expected.leader_epoch = -1;
    assert_eq!(decode_offset(&v1, Format::Kafka), Some(expected));
    // No metadata is stored as Kafka's empty string.
    let mut bare = committed(-1);
    bare.metadata = None;
    let decoded = decode_offset(&encode_offset(&bare), Format::Kafka).expect("decodes");
    assert_eq!(decoded.metadata.as_deref(), Some(""));
}

#[test]
fn offset_values_of_every_kafka_version_are_read() {
    let v0 = cat(&[
        &0i16.to_be_bytes(),
        &9i64.to_be_bytes(),
        &s(""),
        &5i64.to_be_bytes(),
    ]);
    let read = decode_offset(&v0, Format::Kafka).expect("v0");
    assert_eq!(
        (read.offset, read.leader_epoch, read.commit_timestamp_ms),
        (9, -1, 5)
    );
    let v2 = cat(&[
        &2i16.to_be_bytes(),
        &9i64.to_be_bytes(),
        &s("m"),
        &5i64.to_be_bytes(),
    ]);
    assert_eq!(
        decode_offset(&v2, Format::Kafka)
            .expect("v2")
            .metadata
            .as_deref(),
        Some("m")
    );
    // v4 is flexible: compact string (length + 1 as a varint) and an empty tagged-field list.
    let v4 = cat(&[
        &4i16.to_be_bytes(),
        &9i64.to_be_bytes(),
        &3i32.to_be_bytes(),
        &[2, b'm'],
        &5i64.to_be_bytes(),
        &[0],
    ]);
    let read = decode_offset(&v4, Format::Kafka).expect("v4");
    assert_eq!((read.offset, read.leader_epoch), (9, 3));
    assert_eq!(read.metadata.as_deref(), Some("m"));
    assert_eq!(
        decode_offset(
            &cat(&[&5i16.to_be_bytes(), v0.get(2..).unwrap_or_default()]),
            Format::Kafka
        ),
        None
    );
}

fn stable_group() -> Group {
    let mut group = Group::new("g", 0);
    group.generation = 4;
    group.protocol_type = Some("consumer".to_owned());
    group.protocol_name = Some("range".to_owned());
    group.leader = Some("m-1".to_owned());
    group.state_since_ms = 77;
    for (id, instance) in [("m-1", None), ("m-2", Some("static-2"))] {
        group.members.insert(
            id.to_owned(),
            Member {
                member_id: id.to_owned(),
                instance_id: instance.map(str::to_owned),
                client_id: "client".to_owned(),
                client_host: "/127.0.0.1".to_owned(),
                rebalance_timeout_ms: 30_000,
                session_timeout_ms: 10_000,
                protocols: vec![Protocol {
                    name: "range".to_owned(),
                    metadata: Bytes::from_static(b"subscription"),
                }],
                assignment: Bytes::from(format!("assignment-{id}")),
                awaiting_join: false,
                awaiting_sync: false,
                last_heartbeat_ms: 0,
            },
        );
    }
    group
}

#[test]
fn group_value_is_kafkas_group_metadata_value_v3() {
    let group = stable_group();
    let bytes = encode_group(&group);
    let member = |id: &str, instance: Option<&str>| {
        let instance = match instance {
            Some(instance) => s(instance),
            None => (-1i16).to_be_bytes().to_vec(),
        };
        cat(&[
            &s(id),
            &instance,
            &s("client"),
            &s("/127.0.0.1"),
            &30_000i32.to_be_bytes(),
            &10_000i32.to_be_bytes(),
            &12i32.to_be_bytes(),
            b"subscription",
            &(format!("assignment-{id}").len() as i32).to_be_bytes(),
            format!("assignment-{id}").as_bytes(),
        ])
    };
    let expected = cat(&[
        &3i16.to_be_bytes(),
        &s("consumer"),
        &4i32.to_be_bytes(),
        &s("range"),
        &s("m-1"),
        &77i64.to_be_bytes(),
        &2i32.to_be_bytes(),
        &member("m-1", None),
        &member("m-2", Some("static-2")),
    ]);
    assert_eq!(bytes, expected);
    let restored = decode_group("g", &bytes, Format::Kafka, 5).expect("decodes");
    assert_eq!(restored.generation, 4);
    assert_eq!(restored.leader.as_deref(), Some("m-1"));
    assert_eq!(restored.state, crate::broker::group::GroupState::Stable);
    let second = restored.members.get("m-2").expect("member");
    assert_eq!(second.instance_id.as_deref(), Some("static-2"));
    assert_eq!(
        second.metadata("range"),
        Bytes::from_static(b"subscription")
    );
    assert_eq!(second.assignment, Bytes::from_static(b"assignment-m-2"));
    assert_eq!(
        restored.static_members.get("static-2").map(String::as_str),
        Some("m-2")
    );
}

#[test]
fn group_values_of_versions_0_and_4_are_read() {
    let v0 = cat(&[
        &0i16.to_be_bytes(),
        &s("consumer"),
        &2i32.to_be_bytes(),
        &s("range"),
        &s("m"),
        &1i32.to_be_bytes(),
        &s("m"),
        &s("c"),
        &s("/h"),
        &9_000i32.to_be_bytes(),
        &1i32.to_be_bytes(),
        b"s",
        &1i32.to_be_bytes(),
        b"a",
    ]);
    let group = decode_group("g", &v0, Format::Kafka, 0).expect("v0");
    let member = group.members.get("m").expect("member");
    assert_eq!(
        member.rebalance_timeout_ms, 9_000,
        "v0: the session timeout"
    );
    assert_eq!(member.assignment, Bytes::from_static(b"a"));
    // v4: compact strings and bytes, tagged fields after each member and the value.
    let v4 = cat(&[
        &4i16.to_be_bytes(),
        &[9],
        b"consumer",
        &2i32.to_be_bytes(),
        &[6],
        b"range",
        &[0],
        &(-1i64).to_be_bytes(),
        &[2],
        &[2, b'm', 0, 2, b'c', 3, b'/', b'h'],
        &30_000i32.to_be_bytes(),
        &9_000i32.to_be_bytes(),
        &[2, b's', 2, b'a', 0],
        &[1, 7, 1, 0xff],
    ]);
    let group = decode_group("g", &v4, Format::Kafka, 0).expect("v4");
    assert_eq!(group.leader, None);
    let member = group.members.get("m").expect("member");
    assert_eq!(
        (member.rebalance_timeout_ms, member.session_timeout_ms),
        (30_000, 9_000)
    );
    assert_eq!(member.metadata("range"), Bytes::from_static(b"s"));
}

#[test]
fn legacy_records_are_still_read() {
    let key = legacy::offset_key("g", "t", 3);
    assert_eq!(
        Key::decode(&key),
        Some((
            Key::Offset {
                group: "g".to_owned(),
                topic: "t".to_owned(),
                partition: 3,
            },
            Format::Legacy
        ))
    );
    let value = legacy::offset_value(&committed(-1));
    assert_eq!(decode_offset(&value, Format::Legacy), Some(committed(-1)));
    let group_key = legacy::group_key("g");
    assert!(matches!(
        Key::decode(&group_key),
        Some((Key::Group { .. }, Format::Legacy))
    ));
    let group = decode_group("g", &legacy::empty_group_value(6), Format::Legacy, 0);
    assert_eq!(group.map(|g| g.generation), Some(6));
}

#[test]
fn truncated_records_decode_to_none_without_panic() {
    let offset = encode_offset(&committed(-1));
    let group = encode_group(&stable_group());
    let legacy_offset = legacy::offset_value(&committed(-1));
    for cut in 0..offset.len() {
        assert_eq!(
            decode_offset(offset.get(..cut).unwrap_or_default(), Format::Kafka),
            None
        );
    }
    for cut in 0..group.len() {
        let cut = group.get(..cut).unwrap_or_default();
        assert!(decode_group("g", cut, Format::Kafka, 0).is_none());
    }
    for cut in 0..legacy_offset.len() {
        let cut = legacy_offset.get(..cut).unwrap_or_default();
        assert_eq!(decode_offset(cut, Format::Legacy), None);
    }
    assert_eq!(Key::decode(&[9, 0, 0]), None);
    assert_eq!(Key::decode(&[]), None);
    // A member count far beyond the bytes left is refused before looping.
    let mut huge = group.clone();
    // version, protocol type, generation, protocol, leader, state timestamp, then the count.
    let count_at = 2 + s("consumer").len() + 4 + s("range").len() + s("m-1").len() + 8;
    huge.splice(count_at..count_at + 4, i32::MAX.to_be_bytes());
    assert!(decode_group("g", &huge, Format::Kafka, 0).is_none());
}
