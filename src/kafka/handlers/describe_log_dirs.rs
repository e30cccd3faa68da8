//! DescribeLogDirs (v1–4): the one data directory with the size of each requested partition.
//! Sizes come from the broker; this file only selects and groups them.

use kafka_protocol::ResponseError;
use kafka_protocol::messages;
use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::protocol::StrBytes;

use crate::auth::acl::Operation;
use crate::broker::PartitionDirInfo;
use crate::kafka::{Context, error_code};

pub(crate) async fn handle(
    ctx: &Context,
    version: i16,
    request: messages::DescribeLogDirsRequest,
) -> messages::DescribeLogDirsResponse {
    // Kafka answers an unauthorized client no directories (and the error from v3).
    if !ctx.allowed_on_cluster(Operation::Describe) {
        let response = messages::DescribeLogDirsResponse::default();
        return if version >= 3 {
            response.with_error_code(ResponseError::ClusterAuthorizationFailed.code())
        } else {
            response
        };
    }
    let dir = ctx.broker.log_dirs();
    let topics = select(&dir.partitions, request.topics.as_deref());
    // total_bytes and usable_bytes (v4) stay -1, Kafka's "unknown volume size": the broker does
    // not measure the volume.
    let result = DescribeLogDirsResult::default()
        .with_error_code(error_code::NONE)
        .with_log_dir(StrBytes::from_string(dir.path))
        .with_topics(topics);
    messages::DescribeLogDirsResponse::default()
        .with_throttle_time_ms(0)
        .with_error_code(error_code::NONE)
        .with_results(vec![result])
}

/// The requested partitions (`None` = all) grouped by topic, in the broker's order. Requested
/// partitions this broker does not have are left out, as Kafka does.
fn select(
    partitions: &[PartitionDirInfo],
    requested: Option<&[DescribableLogDirTopic]>,
) -> Vec<DescribeLogDirsTopic> {
    let is_requested = |p: &PartitionDirInfo| match requested {
        None => true,
        Some(topics) => topics
            .iter()
            .any(|t| t.topic.as_str() == p.topic && t.partitions.contains(&p.partition)),
    };
    let mut topics: Vec<DescribeLogDirsTopic> = Vec::new();
    for p in partitions.iter().filter(|p| is_requested(p)) {
        let partition = DescribeLogDirsPartition::default()
            .with_partition_index(p.partition)
            .with_partition_size(i64::try_from(p.size_bytes).unwrap_or(i64::MAX))
            // Kafka's lag of a current log: max(high watermark - log end offset, 0), always 0.
            .with_offset_lag(0)
            .with_is_future_key(false);
        match topics.last_mut() {
            Some(last) if last.name.as_str() == p.topic => last.partitions.push(partition),
            _ => topics.push(
                DescribeLogDirsTopic::default()
                    .with_name(messages::TopicName(StrBytes::from_string(p.topic.clone())))
                    .with_partitions(vec![partition]),
            ),
        }
    }
    topics
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(topic: &str, partition: i32, size_bytes: u64) -> PartitionDirInfo {
        PartitionDirInfo {
            topic: topic.to_owned(),
            partition,
            size_bytes,
        }
    }

    fn summary(topics: &[DescribeLogDirsTopic]) -> Vec<(String, Vec<(i32, i64)>)> {
        topics
            .iter()
            .map(|t| {
                let parts = t
                    .partitions
                    .iter()
                    .map(|p| (p.partition_index, p.partition_size));
                (t.name.to_string(), parts.collect())
            })
            .collect()
    }

    #[test]
    fn null_topics_select_every_partition_grouped_by_topic() {
        let all = [dir("a", 0, 10), dir("a", 1, 0), dir("b", 0, 7)];
        let got = select(&all, None);
        let expected = [
            ("a".to_owned(), vec![(0, 10), (1, 0)]),
            ("b".to_owned(), vec![(0, 7)]),
        ];
        assert_eq!(summary(&got), expected);
    }

    #[test]
    fn requested_partitions_filter_and_unknown_ones_are_left_out() {
        let all = [dir("a", 0, 10), dir("a", 1, 0), dir("b", 0, 7)];
        let requested = [
            DescribableLogDirTopic::default()
                .with_topic(messages::TopicName(StrBytes::from_static_str("a")))
                .with_partitions(vec![1, 5]),
            DescribableLogDirTopic::default()
                .with_topic(messages::TopicName(StrBytes::from_static_str("zz")))
                .with_partitions(vec![0]),
        ];
        let got = select(&all, Some(&requested));
        assert_eq!(summary(&got), [("a".to_owned(), vec![(1, 0)])]);
        assert!(select(&all, Some(&[])).is_empty());
    }
}
