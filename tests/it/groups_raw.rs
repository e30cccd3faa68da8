//! Group coordination with hand-built frames: the error codes of bad input (unknown group and
//! member, wrong generation, oversized metadata, commit to a missing partition), session-timeout
//! eviction, and the admin view (ListGroups, DescribeGroups, DeleteGroups, OffsetFetch).

use bytes::Bytes;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    DeleteGroupsRequest, DescribeGroupsRequest, FindCoordinatorRequest, GroupId, HeartbeatRequest,
    JoinGroupRequest, JoinGroupResponse, ListGroupsRequest, OffsetCommitRequest,
    OffsetFetchRequest, SyncGroupRequest,
};
use kafka_protocol::protocol::StrBytes;
use tempfile::TempDir;

use crate::harness::{self, Broker};
use crate::raw::{RawConn, topic_name};

pub(crate) const NONE: i16 = 0;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const COORDINATOR_NOT_AVAILABLE: i16 = 15;
pub(crate) const ILLEGAL_GENERATION: i16 = 22;
pub(crate) const UNKNOWN_MEMBER_ID: i16 = 25;
pub(crate) const REBALANCE_IN_PROGRESS: i16 = 27;
const INVALID_REQUEST: i16 = 42;
const GROUP_ID_NOT_FOUND: i16 = 69;
pub(crate) const MEMBER_ID_REQUIRED: i16 = 79;

pub(crate) fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_owned())
}

pub(crate) fn join_request(
    group: &str,
    member_id: &str,
    metadata_bytes: usize,
) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(GroupId(text(group)))
        .with_session_timeout_ms(6000)
        .with_rebalance_timeout_ms(10_000)
        .with_member_id(text(member_id))
        .with_protocol_type(text("consumer"))
        .with_protocols(vec![
            JoinGroupRequestProtocol::default()
                .with_name(text("range"))
                .with_metadata(Bytes::from(vec![0u8; metadata_bytes])),
        ])
}

/// JoinGroup v5 twice (the v4+ member-id handshake); returns the second response.
pub(crate) fn join(conn: &mut RawConn, group: &str) -> JoinGroupResponse {
    let first = conn.roundtrip(&join_request(group, "", 16), 5);
    assert_eq!(first.error_code, MEMBER_ID_REQUIRED);
    assert!(!first.member_id.is_empty(), "a member id is handed out");
    let second = conn.roundtrip(&join_request(group, first.member_id.as_str(), 16), 5);
    assert_eq!(second.error_code, NONE);
    second
}

pub(crate) fn heartbeat(conn: &mut RawConn, group: &str, member: &str, generation: i32) -> i16 {
    let request = HeartbeatRequest::default()
        .with_group_id(GroupId(text(group)))
        .with_member_id(text(member))
        .with_generation_id(generation);
    conn.roundtrip(&request, 4).error_code
}

pub(crate) fn commit(
    conn: &mut RawConn,
    group: &str,
    member: &str,
    generation: i32,
    topic: &str,
) -> i16 {
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(text(group)))
        .with_member_id(text(member))
        .with_generation_id_or_member_epoch(generation)
        .with_topics(vec![
            OffsetCommitRequestTopic::default()
                .with_name(topic_name(topic))
                .with_partitions(vec![
                    OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(5)
                        .with_committed_metadata(Some(text("meta"))),
                ]),
        ]);
    let response = conn.roundtrip(&request, 8);
    response.topics[0].partitions[0].error_code
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_requests_with_bad_input_get_kafka_error_codes() {
    let dir = TempDir::new().expect("tempdir");
    let broker = Broker::start(dir.path());
    harness::create_topic(&broker.bootstrap(), "present", 1, &[]).await;
    let mut conn = RawConn::connect(broker.addr());

    assert_eq!(
        heartbeat(&mut conn, "no-such-group", "m", 1),
        UNKNOWN_MEMBER_ID
    );
    let fetch = OffsetFetchRequest::default()
        .with_group_id(GroupId(text("no-such-group")))
        .with_topics(Some(vec![
            OffsetFetchRequestTopic::default()
                .with_name(topic_name("present"))
                .with_partition_indexes(vec![0]),
        ]));
    let fetched = conn.roundtrip(&fetch, 5);
    assert_eq!(fetched.topics[0].partitions[0].committed_offset, -1);

    let joined = join(&mut conn, "bad-input");
    let member = joined.member_id.as_str().to_owned();
    assert_eq!(joined.generation_id, 1);
    assert_eq!(joined.leader, joined.member_id, "the only member leads");
    assert_eq!(joined.members.len(), 1, "the leader sees every member");
    // Before the leader's SyncGroup the group is completing its rebalance.
    assert_eq!(
        commit(&mut conn, "bad-input", &member, 1, "present"),
        REBALANCE_IN_PROGRESS
    );
    assert_eq!(
        heartbeat(&mut conn, "bad-input", &member, 7),
        ILLEGAL_GENERATION
    );
    assert_eq!(
        heartbeat(&mut conn, "bad-input", "stranger", 1),
        UNKNOWN_MEMBER_ID
    );
    let sync = |member: &str, generation: i32| {
        SyncGroupRequest::default()
            .with_group_id(GroupId(text("bad-input")))
            .with_member_id(text(member))
            .with_generation_id(generation)
            .with_assignments(vec![
                SyncGroupRequestAssignment::default()
                    .with_member_id(text(member))
                    .with_assignment(Bytes::from_static(b"assigned")),
            ])
    };
    assert_eq!(
        conn.roundtrip(&sync("stranger", 1), 3).error_code,
        UNKNOWN_MEMBER_ID
    );
    assert_eq!(
        conn.roundtrip(&sync(&member, 9), 3).error_code,
        ILLEGAL_GENERATION
    );
    let synced = conn.roundtrip(&sync(&member, 1), 3);
    assert_eq!(synced.error_code, NONE);
    assert_eq!(synced.assignment, Bytes::from_static(b"assigned"));
    assert_eq!(heartbeat(&mut conn, "bad-input", &member, 1), NONE);

    assert_eq!(commit(&mut conn, "bad-input", &member, 1, "present"), NONE);
    assert_eq!(
        commit(&mut conn, "bad-input", &member, 1, "absent"),
        UNKNOWN_TOPIC_OR_PARTITION
    );
    assert_eq!(
        commit(&mut conn, "bad-input", &member, 2, "present"),
        ILLEGAL_GENERATION
    );
    let oversized = join_request("bad-input", "", 1024 * 1024);
    assert_eq!(conn.roundtrip(&oversized, 5).error_code, INVALID_REQUEST);

    // Transactional ids are coordinated here too; share groups are not served.
    let transactional = FindCoordinatorRequest::default()
        .with_key(text("txn"))
        .with_key_type(1);
    assert_eq!(conn.roundtrip(&transactional, 3).error_code, NONE);
    let share = FindCoordinatorRequest::default()
        .with_key(text("share"))
        .with_key_type(2);
    assert_eq!(
        conn.roundtrip(&share, 3).error_code,
        COORDINATOR_NOT_AVAILABLE
    );
    let deleted = conn.roundtrip(
        &DeleteGroupsRequest::default().with_groups_names(vec![GroupId(text("nope"))]),
        2,
    );
    assert_eq!(deleted.results[0].error_code, GROUP_ID_NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_member_is_evicted_after_session_timeout_and_group_can_be_deleted() {
    let dir = TempDir::new().expect("tempdir");
    let broker = Broker::start(dir.path());
    harness::create_topic(&broker.bootstrap(), "present", 1, &[]).await;
    let mut conn = RawConn::connect(broker.addr());
    let joined = join(&mut conn, "evicted");
    let member = joined.member_id.as_str().to_owned();
    let sync = SyncGroupRequest::default()
        .with_group_id(GroupId(text("evicted")))
        .with_member_id(text(&member))
        .with_generation_id(1);
    assert_eq!(conn.roundtrip(&sync, 3).error_code, NONE);
    assert_eq!(commit(&mut conn, "evicted", &member, 1, "present"), NONE);

    let describe = DescribeGroupsRequest::default().with_groups(vec![GroupId(text("evicted"))]);
    let described = conn.roundtrip(&describe, 5);
    assert_eq!(described.groups[0].group_state.as_str(), "Stable");
    assert_eq!(described.groups[0].members.len(), 1);
    // No heartbeats: the 6 s session expires and the member is removed.
    harness::wait_until(std::time::Duration::from_secs(30), "session expiry", || {
        let described = conn.roundtrip(&describe, 5);
        described.groups[0].group_state.as_str() == "Empty"
    });
    assert_eq!(
        heartbeat(&mut conn, "evicted", &member, 1),
        UNKNOWN_MEMBER_ID
    );
    let listed = conn.roundtrip(
        &ListGroupsRequest::default().with_states_filter(vec![text("Empty")]),
        4,
    );
    assert!(
        listed
            .groups
            .iter()
            .any(|g| g.group_id.as_str() == "evicted"),
        "{listed:?}"
    );
    // The committed offset outlives the members, until the group is deleted.
    let fetch = OffsetFetchRequest::default()
        .with_group_id(GroupId(text("evicted")))
        .with_topics(None);
    let fetched = conn.roundtrip(&fetch, 7);
    assert_eq!(fetched.topics[0].partitions[0].committed_offset, 5);
    assert_eq!(
        fetched.topics[0].partitions[0]
            .metadata
            .as_ref()
            .map(|m| m.as_str()),
        Some("meta")
    );
    let deleted = conn.roundtrip(
        &DeleteGroupsRequest::default().with_groups_names(vec![GroupId(text("evicted"))]),
        2,
    );
    assert_eq!(deleted.results[0].error_code, NONE);
    let fetched = conn.roundtrip(&fetch, 7);
    assert!(fetched.topics.is_empty(), "{fetched:?}");
    let described = conn.roundtrip(&describe, 6);
    assert_eq!(described.groups[0].error_code, GROUP_ID_NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offset_delete_batch_leave_and_multi_group_offset_fetch_work() {
    use kafka_protocol::messages::leave_group_request::MemberIdentity;
    use kafka_protocol::messages::offset_delete_request::{
        OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
    };
    use kafka_protocol::messages::offset_fetch_request::{
        OffsetFetchRequestGroup, OffsetFetchRequestTopics,
    };
    use kafka_protocol::messages::{LeaveGroupRequest, OffsetDeleteRequest};

    let dir = TempDir::new().expect("tempdir");
    let broker = Broker::start(dir.path());
    harness::create_topic(&broker.bootstrap(), "present", 1, &[]).await;
    let mut conn = RawConn::connect(broker.addr());
    // Simple (memberless) commits to two groups, then one OffsetFetch v8 for both.
    assert_eq!(commit(&mut conn, "simple-a", "", -1, "present"), NONE);
    assert_eq!(commit(&mut conn, "simple-b", "", -1, "present"), NONE);
    let group = |id: &str| {
        OffsetFetchRequestGroup::default()
            .with_group_id(GroupId(text(id)))
            .with_topics(Some(vec![
                OffsetFetchRequestTopics::default()
                    .with_name(topic_name("present"))
                    .with_partition_indexes(vec![0]),
            ]))
    };
    let fetch =
        OffsetFetchRequest::default().with_groups(vec![group("simple-a"), group("simple-b")]);
    let fetched = conn.roundtrip(&fetch, 8);
    let offsets: Vec<i64> = fetched
        .groups
        .iter()
        .map(|g| g.topics[0].partitions[0].committed_offset)
        .collect();
    assert_eq!(offsets, vec![5, 5]);

    let delete = OffsetDeleteRequest::default()
        .with_group_id(GroupId(text("simple-a")))
        .with_topics(vec![
            OffsetDeleteRequestTopic::default()
                .with_name(topic_name("present"))
                .with_partitions(vec![
                    OffsetDeleteRequestPartition::default().with_partition_index(0),
                ]),
        ]);
    let deleted = conn.roundtrip(&delete, 0);
    assert_eq!(deleted.error_code, NONE);
    assert_eq!(deleted.topics[0].partitions[0].error_code, NONE);
    let fetched = conn.roundtrip(&fetch, 8);
    assert_eq!(
        fetched.groups[0].topics[0].partitions[0].committed_offset,
        -1
    );
    assert_eq!(
        fetched.groups[1].topics[0].partitions[0].committed_offset,
        5
    );

    // LeaveGroup v3+ answers per member: the joined member leaves, a stranger is unknown.
    let joined = join(&mut conn, "leavers");
    let leave = LeaveGroupRequest::default()
        .with_group_id(GroupId(text("leavers")))
        .with_members(vec![
            MemberIdentity::default().with_member_id(joined.member_id.clone()),
            MemberIdentity::default().with_member_id(text("stranger")),
        ]);
    let left = conn.roundtrip(&leave, 5);
    assert_eq!(left.error_code, NONE);
    let codes: Vec<i16> = left.members.iter().map(|m| m.error_code).collect();
    assert_eq!(codes, vec![NONE, UNKNOWN_MEMBER_ID]);
    let describe = DescribeGroupsRequest::default().with_groups(vec![GroupId(text("leavers"))]);
    assert_eq!(
        conn.roundtrip(&describe, 5).groups[0].group_state.as_str(),
        "Empty"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_answers_a_join_waiting_for_rebalance_and_exits_promptly() {
    let dir = TempDir::new().expect("tempdir");
    let mut broker = Broker::start(dir.path());
    let mut first = RawConn::connect(broker.addr());
    let joined = join(&mut first, "draining");
    let sync = SyncGroupRequest::default()
        .with_group_id(GroupId(text("draining")))
        .with_member_id(joined.member_id.clone())
        .with_generation_id(joined.generation_id);
    assert_eq!(first.roundtrip(&sync, 3).error_code, NONE);
    // A second member's join waits for the first to rejoin (rebalance timeout 10 s).
    let mut second = RawConn::connect(broker.addr());
    let handshake = second.roundtrip(&join_request("draining", "", 16), 5);
    let waiting = second.send(
        &join_request("draining", handshake.member_id.as_str(), 16),
        5,
    );
    // The join must be waiting in the coordinator, not still unread in the socket, when the
    // stop comes: a request the broker never read is not answered, only its connection closed.
    let describe = DescribeGroupsRequest::default().with_groups(vec![GroupId(text("draining"))]);
    harness::wait_until(
        std::time::Duration::from_secs(30),
        "the second join to start a rebalance",
        || first.roundtrip(&describe, 5).groups[0].group_state.as_str() == "PreparingRebalance",
    );
    let started = std::time::Instant::now();
    let status = broker.stop();
    assert!(status.success(), "{status:?}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(8),
        "shutdown waited {:?} for the rebalance",
        started.elapsed()
    );
    let answer = second.receive::<JoinGroupRequest>(waiting, 5);
    assert_eq!(answer.error_code, COORDINATOR_NOT_AVAILABLE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_protocol_heartbeat_assigns_fences_and_describes() {
    use kafka_protocol::messages::{ConsumerGroupDescribeRequest, ConsumerGroupHeartbeatRequest};

    const FENCED_MEMBER_EPOCH: i16 = 110;
    let dir = TempDir::new().expect("tempdir");
    let broker = Broker::start(dir.path());
    harness::create_topic(&broker.bootstrap(), "present", 2, &[]).await;
    let mut conn = RawConn::connect(broker.addr());
    let heartbeat = |epoch: i32| {
        ConsumerGroupHeartbeatRequest::default()
            .with_group_id(GroupId(text("kip848")))
            .with_member_id(text("member-1"))
            .with_member_epoch(epoch)
            .with_rebalance_timeout_ms(30_000)
            .with_subscribed_topic_names((epoch == 0).then(|| vec![topic_name("present")]))
            .with_topic_partitions((epoch == 0).then(Vec::new))
    };
    let joined = conn.roundtrip(&heartbeat(0), 1);
    assert_eq!(joined.error_code, NONE, "{joined:?}");
    assert_eq!(
        joined.member_id.as_ref().map(|m| m.as_str()),
        Some("member-1")
    );
    assert!(joined.member_epoch > 0);
    let assignment = joined.assignment.expect("an assignment on join");
    assert_eq!(assignment.topic_partitions.len(), 1);
    assert_eq!(assignment.topic_partitions[0].partitions, vec![0, 1]);

    let fenced = conn.roundtrip(&heartbeat(joined.member_epoch + 7), 1);
    assert_eq!(fenced.error_code, FENCED_MEMBER_EPOCH);
    let described = conn.roundtrip(
        &ConsumerGroupDescribeRequest::default().with_group_ids(vec![GroupId(text("kip848"))]),
        1,
    );
    assert_eq!(described.groups[0].error_code, NONE);
    assert_eq!(described.groups[0].members.len(), 1);
    assert_eq!(described.groups[0].assignor_name.as_str(), "uniform");
    let listed = conn.roundtrip(
        &ListGroupsRequest::default().with_types_filter(vec![text("consumer")]),
        5,
    );
    let ids: Vec<&str> = listed.groups.iter().map(|g| g.group_id.as_str()).collect();
    assert_eq!(ids, vec!["kip848"]);
    let left = conn.roundtrip(&heartbeat(-1), 1);
    assert_eq!((left.error_code, left.member_epoch), (NONE, -1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_for_all_topics_lists_the_offsets_topic_as_internal() {
    use kafka_protocol::messages::MetadataRequest;

    let dir = TempDir::new().expect("tempdir");
    let broker = Broker::start(dir.path());
    harness::create_topic(&broker.bootstrap(), "user-topic", 2, &[]).await;
    let mut conn = RawConn::connect(broker.addr());
    for version in [1, 9, 12] {
        let all = conn.roundtrip(&MetadataRequest::default().with_topics(None), version);
        let listed: Vec<(String, bool, usize)> = all
            .topics
            .iter()
            .map(|t| {
                let name = t.name.as_ref().map(|n| n.to_string()).unwrap_or_default();
                (name, t.is_internal, t.partitions.len())
            })
            .collect();
        assert!(
            listed.contains(&("__consumer_offsets".to_owned(), true, 8)),
            "v{version}: {listed:?}"
        );
        assert!(
            listed.contains(&("user-topic".to_owned(), false, 2)),
            "v{version}: {listed:?}"
        );
    }
}
