//! Committed group offsets: OffsetCommit, OffsetFetch (v1-v7 and the v8+ multi-group form)
//! and OffsetDelete.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{
    self, ApiKey, offset_commit_request, offset_delete_request, offset_fetch_request,
};

use super::groups::{GHOST_GROUP, stable_group};
use super::{NONE, Sweep, TOPIC, exactly, group_id, text, topic_name};

/// The committed offsets of the group OffsetCommit writes at `version`: (partition, offset,
/// leader epoch, metadata).
fn committed(version: i16) -> [(i32, i64, i32, String); 2] {
    let epoch = if version >= 6 { 0 } else { -1 };
    let metadata = format!("committed at v{version}");
    [(0, 3, epoch, metadata.clone()), (1, 1, epoch, metadata)]
}

pub(super) async fn offset_commit(sweep: &mut Sweep, version: i16) {
    let group = format!("committed-v{version}");
    let partitions = committed(version)
        .into_iter()
        .map(|(partition, offset, epoch, metadata)| {
            offset_commit_request::OffsetCommitRequestPartition::default()
                .with_partition_index(partition)
                .with_committed_offset(offset)
                .with_committed_leader_epoch(epoch)
                .with_committed_metadata(Some(text(&metadata)))
        })
        .collect();
    let topic = offset_commit_request::OffsetCommitRequestTopic::default()
        .with_name(topic_name(TOPIC))
        .with_partitions(partitions);
    // A standalone commit (no generation, no member), as admin tools and manual-assignment
    // consumers send it.
    let request = messages::OffsetCommitRequest::default()
        .with_group_id(group_id(&group))
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(text(""))
        .with_topics(vec![topic]);
    let request = if version <= 4 {
        request.with_retention_time_ms(-1)
    } else {
        request
    };
    let response: messages::OffsetCommitResponse =
        sweep.call(ApiKey::OffsetCommit, version, &request).await;
    let at = format!("OffsetCommit v{version}");
    let [topic] = exactly(&response.topics, &at);
    assert_eq!(topic.name.as_str(), TOPIC, "{at}");
    let got: Vec<_> = topic
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.error_code))
        .collect();
    assert_eq!(got, [(0, NONE), (1, NONE)], "{at}");
}

pub(super) async fn offset_fetch(sweep: &mut Sweep, version: i16) {
    // Reads what OffsetCommit wrote at the same version (v2 for v1).
    let commit_version = version.max(2);
    let group = format!("committed-v{commit_version}");
    let epoch_from = if version >= 8 { 0 } else { 5 };
    let expected: Vec<_> = committed(commit_version)
        .into_iter()
        .map(|(partition, offset, epoch, metadata)| {
            let epoch = if version >= epoch_from { epoch } else { -1 };
            (partition, offset, epoch, Some(metadata), NONE)
        })
        .collect();
    // v1 must name partitions; v2+ also ask for every committed partition (null topics).
    let all_forms: &[bool] = if version >= 2 {
        &[false, true]
    } else {
        &[false]
    };
    for &is_all in all_forms {
        let at = format!("OffsetFetch v{version} all={is_all}");
        let topics = if version >= 8 {
            offset_fetch_v8(sweep, version, &group, is_all, &at).await
        } else {
            offset_fetch_v1(sweep, version, &group, is_all, &at).await
        };
        let [(name, partitions)] = exactly(&topics, &at);
        assert_eq!(name, TOPIC, "{at}");
        assert_eq!(partitions, &expected, "{at}");
    }
}

/// One topic's committed offsets, as OffsetFetch reports them.
type Fetched = (String, Vec<(i32, i64, i32, Option<String>, i16)>);

async fn offset_fetch_v1(
    sweep: &mut Sweep,
    version: i16,
    group: &str,
    is_all: bool,
    at: &str,
) -> Vec<Fetched> {
    let topics = (!is_all).then(|| {
        vec![
            offset_fetch_request::OffsetFetchRequestTopic::default()
                .with_name(topic_name(TOPIC))
                .with_partition_indexes(vec![0, 1]),
        ]
    });
    let request = messages::OffsetFetchRequest::default()
        .with_group_id(group_id(group))
        .with_topics(topics);
    let request = if version >= 7 {
        request.with_require_stable(true)
    } else {
        request
    };
    let response: messages::OffsetFetchResponse =
        sweep.call(ApiKey::OffsetFetch, version, &request).await;
    assert_eq!(response.error_code, NONE, "{at}");
    response
        .topics
        .iter()
        .map(|t| {
            let partitions = t.partitions.iter().map(|p| {
                let metadata = p.metadata.as_deref().map(str::to_owned);
                let offset = (p.partition_index, p.committed_offset);
                (
                    offset.0,
                    offset.1,
                    p.committed_leader_epoch,
                    metadata,
                    p.error_code,
                )
            });
            (t.name.to_string(), partitions.collect())
        })
        .collect()
}

async fn offset_fetch_v8(
    sweep: &mut Sweep,
    version: i16,
    group: &str,
    is_all: bool,
    at: &str,
) -> Vec<Fetched> {
    let topics = (!is_all).then(|| {
        vec![
            offset_fetch_request::OffsetFetchRequestTopics::default()
                .with_name(topic_name(TOPIC))
                .with_partition_indexes(vec![0, 1]),
        ]
    });
    let groups = [group, GHOST_GROUP].map(|g| {
        offset_fetch_request::OffsetFetchRequestGroup::default()
            .with_group_id(group_id(g))
            .with_topics(topics.clone())
    });
    let request = messages::OffsetFetchRequest::default()
        .with_groups(groups.into())
        .with_require_stable(true);
    let response: messages::OffsetFetchResponse =
        sweep.call(ApiKey::OffsetFetch, version, &request).await;
    let [found, ghost] = exactly(&response.groups, at);
    let got = (
        found.group_id.as_str(),
        found.error_code,
        ghost.group_id.as_str(),
    );
    assert_eq!(got, (group, NONE, GHOST_GROUP), "{at}");
    // A group without commits answers -1 for every partition asked, and nothing for all.
    let ghost: Vec<_> = ghost
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (p.committed_offset, p.error_code))
        })
        .collect();
    let expected = if is_all { vec![] } else { vec![(-1, NONE); 2] };
    assert_eq!((ghost, ghost_error(&response)), (expected, NONE), "{at}");
    found
        .topics
        .iter()
        .map(|t| {
            let partitions = t.partitions.iter().map(|p| {
                let metadata = p.metadata.as_deref().map(str::to_owned);
                let offset = (p.partition_index, p.committed_offset);
                (
                    offset.0,
                    offset.1,
                    p.committed_leader_epoch,
                    metadata,
                    p.error_code,
                )
            });
            (t.name.to_string(), partitions.collect())
        })
        .collect()
}

fn ghost_error(response: &messages::OffsetFetchResponse) -> i16 {
    response.groups.get(1).map_or(-1, |g| g.error_code)
}

pub(super) async fn offset_delete(sweep: &mut Sweep, version: i16) {
    let at = format!("OffsetDelete v{version}");
    // An empty group's offsets go; a group whose members subscribe to the topic keeps them.
    let empty = "committed-v2";
    let busy = format!("subscribed-v{version}");
    stable_group(sweep, &busy).await;
    let subscribed = ResponseError::GroupSubscribedToTopic.code();
    let not_found = ResponseError::GroupIdNotFound.code();
    for (group, group_code, topic_code) in [
        (empty, NONE, Some(NONE)),
        (busy.as_str(), NONE, Some(subscribed)),
        (GHOST_GROUP, not_found, None),
    ] {
        let partition =
            offset_delete_request::OffsetDeleteRequestPartition::default().with_partition_index(1);
        let topic = offset_delete_request::OffsetDeleteRequestTopic::default()
            .with_name(topic_name(TOPIC))
            .with_partitions(vec![partition]);
        let request = messages::OffsetDeleteRequest::default()
            .with_group_id(group_id(group))
            .with_topics(vec![topic]);
        let response: messages::OffsetDeleteResponse =
            sweep.call(ApiKey::OffsetDelete, version, &request).await;
        let codes: Vec<_> = response
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| (p.partition_index, p.error_code))
            })
            .collect();
        let expected: Vec<_> = topic_code.map(|code| (1, code)).into_iter().collect();
        assert_eq!(
            (response.error_code, codes),
            (group_code, expected),
            "{at} {group}"
        );
    }
    let remaining = sweep.ctx.broker.fetch_offsets(empty, None);
    let partitions: Vec<_> = remaining.iter().map(|(t, p, _)| (t.as_str(), *p)).collect();
    assert_eq!(partitions, [(TOPIC, 0)], "{at}: partition 1 deleted");
}
