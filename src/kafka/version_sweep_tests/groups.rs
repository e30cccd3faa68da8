//! Group coordination: the classic protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup),
//! ListGroups, DescribeGroups, DeleteGroups and KIP-848 ConsumerGroupHeartbeat and
//! ConsumerGroupDescribe.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::{
    self, ApiKey, join_group_request, leave_group_request, offset_commit_request,
    sync_group_request,
};

use super::{
    NONE, PARTITION_COUNT, Sweep, TOPIC, encode_sized, exactly, group_id, text, topic_name,
};

const PROTOCOL_TYPE: &str = "consumer";
const PROTOCOL_NAME: &str = "range";
const ASSIGNMENT: &[u8] = b"sweep-assignment";
/// A group that never exists.
pub(super) const GHOST_GROUP: &str = "ghost-group";

/// A consumer's JoinGroup metadata: ConsumerProtocolSubscription v0 for `TOPIC`, version first.
fn subscription() -> Bytes {
    let body = messages::ConsumerProtocolSubscription::default().with_topics(vec![text(TOPIC)]);
    let mut buf = BytesMut::new();
    buf.put_i16(0);
    buf.extend_from_slice(&encode_sized(&body, 0, "subscription"));
    buf.freeze()
}

fn join_request(version: i16, group: &str, member_id: &str) -> messages::JoinGroupRequest {
    let protocol = join_group_request::JoinGroupRequestProtocol::default()
        .with_name(text(PROTOCOL_NAME))
        .with_metadata(subscription());
    let mut request = messages::JoinGroupRequest::default()
        .with_group_id(group_id(group))
        .with_session_timeout_ms(30_000)
        .with_member_id(text(member_id))
        .with_protocol_type(text(PROTOCOL_TYPE))
        .with_protocols(vec![protocol]);
    if version >= 1 {
        request.rebalance_timeout_ms = 30_000;
    }
    if version >= 8 {
        request.reason = Some(text("version sweep"));
    }
    request
}

/// Joins `group` as its only member at `version`: v4+ first learn their member id
/// (MEMBER_ID_REQUIRED), then rejoin with it. Checks the leader's view of the group.
async fn join(sweep: &mut Sweep, version: i16, group: &str) -> (String, i32) {
    let at = format!("JoinGroup v{version} {group}");
    let mut response: messages::JoinGroupResponse = sweep
        .call(
            ApiKey::JoinGroup,
            version,
            &join_request(version, group, ""),
        )
        .await;
    if version >= 4 {
        let required = ResponseError::MemberIdRequired.code();
        let got = (response.error_code, response.generation_id);
        assert_eq!(got, (required, -1), "{at}: first join");
        assert!(
            !response.member_id.is_empty(),
            "{at}: a member id is handed out"
        );
        let member_id = response.member_id.to_string();
        let request = join_request(version, group, &member_id);
        response = sweep.call(ApiKey::JoinGroup, version, &request).await;
        assert_eq!(response.member_id.as_str(), member_id, "{at}");
    }
    let member_id = response.member_id.to_string();
    assert!(!member_id.is_empty(), "{at}");
    let got = (
        response.error_code,
        response.generation_id,
        response.protocol_name.as_deref(),
        response.leader.as_str(),
    );
    let expected = (NONE, 1, Some(PROTOCOL_NAME), member_id.as_str());
    assert_eq!(got, expected, "{at}");
    let members: Vec<_> = response
        .members
        .iter()
        .map(|m| {
            (
                m.member_id.to_string(),
                m.group_instance_id.clone(),
                m.metadata.clone(),
            )
        })
        .collect();
    assert_eq!(members, [(member_id.clone(), None, subscription())], "{at}");
    let protocol_type = (version >= 7).then_some(PROTOCOL_TYPE);
    assert_eq!(response.protocol_type.as_deref(), protocol_type, "{at}");
    assert!(!response.skip_assignment, "{at}");
    (member_id, response.generation_id)
}

/// Hands in the leader's assignment at `version`; the group is then stable.
async fn sync(sweep: &mut Sweep, version: i16, group: &str, member_id: &str, generation: i32) {
    let assignment = sync_group_request::SyncGroupRequestAssignment::default()
        .with_member_id(text(member_id))
        .with_assignment(Bytes::from_static(ASSIGNMENT));
    let mut request = messages::SyncGroupRequest::default()
        .with_group_id(group_id(group))
        .with_generation_id(generation)
        .with_member_id(text(member_id))
        .with_assignments(vec![assignment]);
    if version >= 5 {
        request.protocol_type = Some(text(PROTOCOL_TYPE));
        request.protocol_name = Some(text(PROTOCOL_NAME));
    }
    let response: messages::SyncGroupResponse =
        sweep.call(ApiKey::SyncGroup, version, &request).await;
    let at = format!("SyncGroup v{version} {group}");
    assert_eq!(response.error_code, NONE, "{at}");
    assert_eq!(&response.assignment[..], ASSIGNMENT, "{at}");
    let protocol = if version >= 5 {
        (Some(PROTOCOL_TYPE), Some(PROTOCOL_NAME))
    } else {
        (None, None)
    };
    let got = (
        response.protocol_type.as_deref(),
        response.protocol_name.as_deref(),
    );
    assert_eq!(got, protocol, "{at}");
}

/// A stable group with one member, set up at the newest versions; returns the member and
/// generation.
pub(super) async fn stable_group(sweep: &mut Sweep, group: &str) -> (String, i32) {
    let (member_id, generation) = join(sweep, 9, group).await;
    sync(sweep, 5, group, &member_id, generation).await;
    (member_id, generation)
}

pub(super) async fn join_group(sweep: &mut Sweep, version: i16) {
    join(sweep, version, &format!("joined-v{version}")).await;
}

pub(super) async fn sync_group(sweep: &mut Sweep, version: i16) {
    let group = format!("synced-v{version}");
    let (member_id, generation) = join(sweep, 9, &group).await;
    sync(sweep, version, &group, &member_id, generation).await;
}

pub(super) async fn heartbeat(sweep: &mut Sweep, version: i16) {
    let group = format!("heartbeat-v{version}");
    let (member_id, generation) = stable_group(sweep, &group).await;
    let unknown_member = ResponseError::UnknownMemberId.code();
    let illegal_generation = ResponseError::IllegalGeneration.code();
    for (member, generation, code) in [
        (member_id.as_str(), generation, NONE),
        ("ghost-member", generation, unknown_member),
        (member_id.as_str(), generation + 1, illegal_generation),
    ] {
        let request = messages::HeartbeatRequest::default()
            .with_group_id(group_id(&group))
            .with_generation_id(generation)
            .with_member_id(text(member));
        let response: messages::HeartbeatResponse =
            sweep.call(ApiKey::Heartbeat, version, &request).await;
        let at = format!("Heartbeat v{version} member {member} generation {generation}");
        assert_eq!(response.error_code, code, "{at}");
    }
}

pub(super) async fn leave_group(sweep: &mut Sweep, version: i16) {
    let group = format!("left-v{version}");
    let (member_id, _) = stable_group(sweep, &group).await;
    let request = messages::LeaveGroupRequest::default().with_group_id(group_id(&group));
    let request = if version >= 3 {
        let member = leave_group_request::MemberIdentity::default()
            .with_member_id(text(&member_id))
            .with_reason((version >= 5).then(|| text("version sweep")));
        request.with_members(vec![member])
    } else {
        request.with_member_id(text(&member_id))
    };
    let response: messages::LeaveGroupResponse =
        sweep.call(ApiKey::LeaveGroup, version, &request).await;
    let at = format!("LeaveGroup v{version}");
    assert_eq!(response.error_code, NONE, "{at}");
    let members: Vec<_> = response
        .members
        .iter()
        .map(|m| {
            (
                m.member_id.to_string(),
                m.group_instance_id.clone(),
                m.error_code,
            )
        })
        .collect();
    let expected = if version >= 3 {
        vec![(member_id, None, NONE)]
    } else {
        Vec::new()
    };
    assert_eq!(members, expected, "{at}");
    let described = describe_groups_once(sweep, &group).await;
    let state = (described.group_state.as_str(), described.members.len());
    assert_eq!(state, ("Empty", 0), "{at}: the group is empty");
}

pub(super) async fn list_groups(sweep: &mut Sweep, version: i16) {
    let group = format!("listed-v{version}");
    stable_group(sweep, &group).await;
    let mut request = messages::ListGroupsRequest::default();
    if version >= 4 {
        request.states_filter = vec![text("Stable")];
    }
    if version >= 5 {
        request.types_filter = vec![text("classic")];
    }
    let response: messages::ListGroupsResponse =
        sweep.call(ApiKey::ListGroups, version, &request).await;
    let at = format!("ListGroups v{version}");
    assert_eq!(response.error_code, NONE, "{at}");
    let listed: Vec<_> = response
        .groups
        .iter()
        .map(|g| {
            let id = g.group_id.to_string();
            (
                id,
                g.protocol_type.to_string(),
                g.group_state.to_string(),
                g.group_type.to_string(),
            )
        })
        .collect();
    let state = if version >= 4 { "Stable" } else { "" };
    let group_type = if version >= 5 { "classic" } else { "" };
    let ours = (
        group,
        PROTOCOL_TYPE.to_owned(),
        state.to_owned(),
        group_type.to_owned(),
    );
    assert!(listed.contains(&ours), "{at}: {ours:?} in {listed:?}");
    if version >= 4 {
        assert!(
            listed.iter().all(|g| g.2 == "Stable"),
            "{at}: filtered by state"
        );
    } else {
        // A group that only ever committed offsets is listed too, without a protocol type.
        let standalone = (
            "committed-v2".to_owned(),
            String::new(),
            String::new(),
            String::new(),
        );
        assert!(listed.contains(&standalone), "{at}: {listed:?}");
    }
}

async fn describe_groups_once(
    sweep: &mut Sweep,
    group: &str,
) -> messages::describe_groups_response::DescribedGroup {
    let request = messages::DescribeGroupsRequest::default().with_groups(vec![group_id(group)]);
    let response: messages::DescribeGroupsResponse =
        sweep.call(ApiKey::DescribeGroups, 5, &request).await;
    let [described] = exactly(&response.groups, "DescribeGroups v5");
    assert_eq!(described.error_code, NONE);
    described.clone()
}

pub(super) async fn describe_groups(sweep: &mut Sweep, version: i16) {
    let group = format!("described-v{version}");
    let (member_id, _) = stable_group(sweep, &group).await;
    let request = messages::DescribeGroupsRequest::default()
        .with_groups(vec![group_id(&group), group_id(GHOST_GROUP)]);
    let response: messages::DescribeGroupsResponse =
        sweep.call(ApiKey::DescribeGroups, version, &request).await;
    let at = format!("DescribeGroups v{version}");
    let [described, ghost] = exactly(&response.groups, &at);
    let got = (
        described.error_code,
        described.group_id.as_str(),
        described.group_state.as_str(),
        described.protocol_type.as_str(),
        described.protocol_data.as_str(),
    );
    let expected = (NONE, group.as_str(), "Stable", PROTOCOL_TYPE, PROTOCOL_NAME);
    assert_eq!(got, expected, "{at}");
    let operations = described.authorized_operations;
    assert_eq!(operations, i32::MIN, "{at}: not requested");
    let members: Vec<_> = described
        .members
        .iter()
        .map(|m| {
            let client = (m.client_id.to_string(), m.client_host.to_string());
            let data = (m.member_metadata.clone(), m.member_assignment.clone());
            (
                m.member_id.to_string(),
                m.group_instance_id.clone(),
                client,
                data,
            )
        })
        .collect();
    let client = ("version-sweep".to_owned(), "/127.0.0.1".to_owned());
    let data = (subscription(), Bytes::from_static(ASSIGNMENT));
    assert_eq!(members, [(member_id, None, client, data)], "{at}");
    // An unknown group is Dead without an error before v6, GROUP_ID_NOT_FOUND from v6.
    let (code, has_message) = if version >= 6 {
        (ResponseError::GroupIdNotFound.code(), true)
    } else {
        (NONE, false)
    };
    let got = (
        ghost.error_code,
        ghost.group_state.as_str(),
        ghost.members.len(),
    );
    assert_eq!(got, (code, "Dead", 0), "{at}");
    assert_eq!(ghost.error_message.is_some(), has_message, "{at}");
}

pub(super) async fn delete_groups(sweep: &mut Sweep, version: i16) {
    let empty = format!("deleted-v{version}");
    let busy = format!("busy-v{version}");
    stable_group(sweep, &busy).await;
    // A standalone commit creates the empty group.
    let partition = offset_commit_request::OffsetCommitRequestPartition::default()
        .with_partition_index(0)
        .with_committed_offset(1);
    let topic = offset_commit_request::OffsetCommitRequestTopic::default()
        .with_name(topic_name(TOPIC))
        .with_partitions(vec![partition]);
    let commit = messages::OffsetCommitRequest::default()
        .with_group_id(group_id(&empty))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![topic]);
    let committed: messages::OffsetCommitResponse =
        sweep.call(ApiKey::OffsetCommit, 9, &commit).await;
    assert_eq!(committed.topics[0].partitions[0].error_code, NONE);
    let request = messages::DeleteGroupsRequest::default().with_groups_names(vec![
        group_id(&empty),
        group_id(&busy),
        group_id(GHOST_GROUP),
    ]);
    let response: messages::DeleteGroupsResponse =
        sweep.call(ApiKey::DeleteGroups, version, &request).await;
    let got: Vec<_> = response
        .results
        .iter()
        .map(|r| (r.group_id.to_string(), r.error_code))
        .collect();
    let expected = [
        (empty.clone(), NONE),
        (busy, ResponseError::NonEmptyGroup.code()),
        (
            GHOST_GROUP.to_owned(),
            ResponseError::GroupIdNotFound.code(),
        ),
    ];
    assert_eq!(got, expected, "DeleteGroups v{version}");
    let remaining = sweep.ctx.broker.fetch_offsets(&empty, None);
    assert!(
        remaining.is_empty(),
        "DeleteGroups v{version}: offsets deleted"
    );
}

/// Joins a KIP-848 group subscribed to `TOPIC` as `member`; returns the member epoch.
async fn consumer_group_join(sweep: &mut Sweep, version: i16, group: &str, member: &str) -> i32 {
    let request = messages::ConsumerGroupHeartbeatRequest::default()
        .with_group_id(group_id(group))
        .with_member_id(text(member))
        .with_member_epoch(0)
        .with_rebalance_timeout_ms(30_000)
        .with_subscribed_topic_names(Some(vec![topic_name(TOPIC)]))
        .with_topic_partitions(Some(Vec::new()));
    let response: messages::ConsumerGroupHeartbeatResponse = sweep
        .call(ApiKey::ConsumerGroupHeartbeat, version, &request)
        .await;
    let at = format!("ConsumerGroupHeartbeat v{version} join");
    assert_eq!(response.error_code, NONE, "{at}");
    assert_eq!(response.member_id.as_deref(), Some(member), "{at}");
    let assigned: Vec<i32> = response
        .assignment
        .iter()
        .flat_map(|a| a.topic_partitions.iter())
        .filter(|t| t.topic_id == sweep.topic_id)
        .flat_map(|t| t.partitions.iter().copied())
        .collect();
    assert_eq!(assigned, (0..PARTITION_COUNT).collect::<Vec<_>>(), "{at}");
    response.member_epoch
}

pub(super) async fn consumer_group_heartbeat(sweep: &mut Sweep, version: i16) {
    let group = format!("kip848-v{version}");
    let epoch = consumer_group_join(sweep, version, &group, "sweep-member").await;
    let fenced = ResponseError::FencedMemberEpoch.code();
    for (member_epoch, code) in [(epoch, NONE), (epoch + 3, fenced), (-1, NONE)] {
        let request = messages::ConsumerGroupHeartbeatRequest::default()
            .with_group_id(group_id(&group))
            .with_member_id(text("sweep-member"))
            .with_member_epoch(member_epoch);
        let response: messages::ConsumerGroupHeartbeatResponse = sweep
            .call(ApiKey::ConsumerGroupHeartbeat, version, &request)
            .await;
        let at = format!("ConsumerGroupHeartbeat v{version} epoch {member_epoch}");
        assert_eq!(response.error_code, code, "{at}");
    }
}

pub(super) async fn consumer_group_describe(sweep: &mut Sweep, version: i16) {
    let group = format!("kip848-described-v{version}");
    consumer_group_join(sweep, version.min(1), &group, "described-member").await;
    let request = messages::ConsumerGroupDescribeRequest::default()
        .with_group_ids(vec![group_id(&group), group_id("no-such-group")]);
    let response: messages::ConsumerGroupDescribeResponse = sweep
        .call(ApiKey::ConsumerGroupDescribe, version, &request)
        .await;
    let at = format!("ConsumerGroupDescribe v{version}");
    assert_eq!(response.groups.len(), 2, "{at}");
    let described = &response.groups[0];
    assert_eq!(described.error_code, NONE, "{at}");
    assert_eq!(described.group_state.as_str(), "Stable", "{at}");
    assert_eq!(described.members.len(), 1, "{at}");
    assert_eq!(
        described.members[0].member_id.as_str(),
        "described-member",
        "{at}"
    );
    assert_eq!(
        response.groups[1].error_code,
        ResponseError::GroupIdNotFound.code(),
        "{at}"
    );
}
