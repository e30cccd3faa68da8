"""kafka-python 3.x behind the scenario interface."""
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.errors import (MessageSizeTooLargeError, RebalanceInProgressError,
                          TopicAlreadyExistsError)
from kafka.structs import OffsetAndMetadata

from .base import (REPLICATION_FACTOR, Adapter, Delivery, Received, TooLarge,
                   isolation_level)

TIMEOUT_S = 30


class KafkaPythonAdapter(Adapter):
    def __init__(self, bootstrap):
        # KafkaProducer.send rejects a header whose value is None (a client-side check).
        super().__init__(name="kafka-python", bootstrap=bootstrap, null_header_values=False)
        self._admin = None

    @property
    def admin(self):
        if self._admin is None:
            self._admin = KafkaAdminClient(bootstrap_servers=self.bootstrap,
                                           request_timeout_ms=TIMEOUT_S * 1000)
        return self._admin

    def close(self):
        if self._admin is not None:
            self._admin.close()

    def list_topics(self):
        described = self.admin.describe_topics()
        return {t["topic"] if "topic" in t else t["name"]: len(t["partitions"]) for t in described
                if t.get("error_code", 0) == 0}

    def brokers(self):
        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap)
        try:
            consumer.topics()
            return [f"{b.host}:{b.port}" for b in consumer._client.cluster.brokers()]
        finally:
            consumer.close()

    def create_topic(self, name, partitions, configs=None):
        self.admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=REPLICATION_FACTOR,
                                           topic_configs=configs or {})],
                                 timeout_ms=TIMEOUT_S * 1000)

    def create_topic_again_is_rejected(self, name):
        try:
            self.admin.create_topics([NewTopic(name, num_partitions=1,
                                               replication_factor=REPLICATION_FACTOR)])
        except TopicAlreadyExistsError:
            return True
        return False

    def topic_configs(self, name):
        result = self.admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)],
                                             config_filter="all")
        entries = result["topic"][name]
        return {key: entry.get("value") for key, entry in entries.items()}

    def delete_topic(self, name):
        self.admin.delete_topics([name], timeout_ms=TIMEOUT_S * 1000)

    def produce(self, topic, records, codec="none", idempotent=False):
        if idempotent:  # kafka-python 3 as a new user gets it: idempotence is its default
            producer = KafkaProducer(bootstrap_servers=self.bootstrap)
        else:  # the plain produce path, without idempotence's acks=all and retries
            producer = KafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=5,
                                     compression_type=None if codec == "none" else codec,
                                     enable_idempotence=False, acks=1, retries=0,
                                     max_request_size=4_000_000)
        try:
            return _send(producer, topic, records)
        finally:
            producer.close(timeout=TIMEOUT_S)

    def transactional_producer(self, transactional_id):
        return _Transactional(self.bootstrap, transactional_id)

    def committed_offset(self, group, topic, partition):
        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, group_id=group,
                                 enable_auto_commit=False)
        try:
            return consumer.committed(TopicPartition(topic, partition))
        finally:
            consumer.close()

    def end_offset(self, topic, partition):
        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap)
        try:
            tp = TopicPartition(topic, partition)
            return consumer.end_offsets([tp])[tp]
        finally:
            consumer.close()

    def offset_for_time(self, topic, partition, timestamp_ms):
        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap)
        try:
            tp = TopicPartition(topic, partition)
            found = consumer.offsets_for_times({tp: timestamp_ms})[tp]
            return None if found is None else found.offset
        finally:
            consumer.close()

    def reader(self, topic, partition, start, read_committed=None):
        return _Reader(self.bootstrap, topic, partition, start, read_committed)

    def group_member(self, group, topic, read_committed=None):
        return _Member(self.bootstrap, group, topic, read_committed)



def _send(producer, topic, records):
    futures = []
    for record in records:
        futures.append(producer.send(
            topic, key=record.key, value=record.value, partition=record.partition,
            headers=list(record.headers) or None, timestamp_ms=record.timestamp_ms))
    producer.flush(timeout=TIMEOUT_S)
    results = []
    for future in futures:
        try:
            metadata = future.get(timeout=TIMEOUT_S)
        except MessageSizeTooLargeError as error:
            raise TooLarge(str(error)) from error
        results.append(Delivery(metadata.partition, metadata.offset))
    return results


class _Transactional:
    """A transactional producer (init_transactions at creation)."""

    def __init__(self, bootstrap, transactional_id):
        self.producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5,
                                      transactional_id=transactional_id)
        self.producer.init_transactions()

    def begin(self):
        self.producer.begin_transaction()

    def send(self, topic, records):
        _send(self.producer, topic, records)

    def send_offsets(self, member, topic, offsets):
        self.producer.send_offsets_to_transaction(
            {TopicPartition(topic, p): OffsetAndMetadata(o, "", -1) for p, o in offsets.items()},
            member.consumer.group_metadata())  # member id and generation: KIP-447 fencing

    def commit(self):
        self.producer.commit_transaction()

    def abort(self):
        self.producer.abort_transaction()

    def close(self):
        self.producer.close(timeout=TIMEOUT_S)


def _received(record):
    return Received(record.partition, record.offset, record.key, record.value,
                    tuple(record.headers or ()), record.timestamp)


def _drain(consumer, timeout_s):
    batches = consumer.poll(timeout_ms=int(timeout_s * 1000), max_records=1000)
    return [_received(r) for records in batches.values() for r in records]


class _Reader:
    def __init__(self, bootstrap, topic, partition, start, read_committed):
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                      **isolation_level(read_committed))
        tp = TopicPartition(topic, partition)
        self.consumer.assign([tp])
        if start == "beginning":
            self.consumer.seek_to_beginning(tp)
        elif start == "end":
            self.consumer.seek_to_end(tp)
            self.consumer.position(tp)  # resolve now, before the caller produces more
        elif isinstance(start, tuple):
            self.consumer.seek(tp, self.consumer.offsets_for_times({tp: start[1]})[tp].offset)
        else:
            self.consumer.seek(tp, start)

    def poll(self, timeout_s):
        return _drain(self.consumer, timeout_s)

    def close(self):
        self.consumer.close()


class _Member:
    def __init__(self, bootstrap, group, topic, read_committed):
        self.topic = topic
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                                      enable_auto_commit=False, auto_offset_reset="earliest",
                                      session_timeout_ms=10000, heartbeat_interval_ms=500,
                                      **isolation_level(read_committed))
        # Metadata first, so the leader's first assignment already sees the topic's partitions.
        # Otherwise the leader assigns nothing, rejoins when metadata arrives, and kafka-python
        # 3.0.12 can hang in that rejoin: if poll()'s timeout expires while the SyncGroup is in
        # flight, the next poll() finds need_rejoin() False (the leader's own new assignment
        # snapshot cleared it) and never completes the join: no assignment, no heartbeats, and the
        # coordinator expires the member after session.timeout.ms (FINDINGS #5: a client bug).
        self.consumer.partitions_for_topic(topic)
        self.consumer.subscribe([topic])

    def poll(self, timeout_s):
        return _drain(self.consumer, timeout_s)

    def assignment(self):
        return {tp.partition for tp in self.consumer.assignment()}

    def commit(self, offsets):
        if offsets:
            try:
                self.consumer.commit({TopicPartition(self.topic, p): OffsetAndMetadata(o, "", -1)
                                      for p, o in offsets.items()})
            except RebalanceInProgressError:
                # Raised by the client itself while it rejoins (not fatal, it says: poll, then
                # retry); the next batch's commit covers these offsets, as in an application.
                pass

    def close(self):
        self.consumer.close()
