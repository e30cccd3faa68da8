"""confluent-kafka (Python, bundles its own librdkafka) behind the scenario interface."""

from confluent_kafka import (OFFSET_BEGINNING, OFFSET_END, Consumer, KafkaError, KafkaException,
                             Producer, TopicPartition)
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from .base import REPLICATION_FACTOR, Adapter, Delivery, Received, TooLarge

TIMEOUT_S = 30


class ConfluentAdapter(Adapter):
    def __init__(self, bootstrap):
        super().__init__(name="confluent-kafka", bootstrap=bootstrap)
        self.admin = AdminClient({"bootstrap.servers": bootstrap})

    def list_topics(self):
        metadata = self.admin.list_topics(timeout=TIMEOUT_S)
        return {name: len(topic.partitions) for name, topic in metadata.topics.items()
                if topic.error is None}

    def brokers(self):
        metadata = self.admin.list_topics(timeout=TIMEOUT_S)
        return [f"{b.host}:{b.port}" for b in metadata.brokers.values()]

    def create_topic(self, name, partitions, configs=None):
        futures = self.admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=REPLICATION_FACTOR,
                      config=configs or {})],
            operation_timeout=TIMEOUT_S)
        futures[name].result(timeout=TIMEOUT_S)

    def create_topic_again_is_rejected(self, name):
        futures = self.admin.create_topics(
            [NewTopic(name, num_partitions=1, replication_factor=REPLICATION_FACTOR)])
        try:
            futures[name].result(timeout=TIMEOUT_S)
        except KafkaException as error:
            return error.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS
        return False

    def topic_configs(self, name):
        resource = ConfigResource(ConfigResource.Type.TOPIC, name)
        entries = self.admin.describe_configs([resource])[resource].result(timeout=TIMEOUT_S)
        return {key: entry.value for key, entry in entries.items()}

    def delete_topic(self, name):
        self.admin.delete_topics([name], operation_timeout=TIMEOUT_S)[name].result(timeout=TIMEOUT_S)

    def produce(self, topic, records, codec="none", idempotent=False):
        producer = Producer({"bootstrap.servers": self.bootstrap, "compression.type": codec,
                             "linger.ms": 5, "enable.idempotence": idempotent,
                             "message.max.bytes": 4_000_000})
        results = _send(producer, topic, records)
        remaining = producer.flush(TIMEOUT_S)
        assert remaining == 0, f"{remaining} records still undelivered after {TIMEOUT_S}s"
        for result in results:
            if isinstance(result, KafkaError):
                if result.code() == KafkaError.MSG_SIZE_TOO_LARGE:
                    raise TooLarge(str(result))
                raise RuntimeError(f"delivery failed: {result}")
        return results

    def transactional_producer(self, transactional_id):
        return _Transactional(self.bootstrap, transactional_id)

    def committed_offset(self, group, topic, partition):
        consumer = self._consumer(**{"group.id": group})
        try:
            [found] = consumer.committed([TopicPartition(topic, partition)], timeout=TIMEOUT_S)
            return found.offset
        finally:
            consumer.close()

    def end_offset(self, topic, partition):
        consumer = self._consumer()
        try:
            return consumer.get_watermark_offsets(TopicPartition(topic, partition),
                                                  timeout=TIMEOUT_S)[1]
        finally:
            consumer.close()

    def offset_for_time(self, topic, partition, timestamp_ms):
        consumer = self._consumer()
        try:
            [found] = consumer.offsets_for_times([TopicPartition(topic, partition, timestamp_ms)],
                                                 timeout=TIMEOUT_S)
            return found.offset
        finally:
            consumer.close()

    def reader(self, topic, partition, start, read_committed=None):
        return _Reader(self, topic, partition, start, read_committed)

    def group_member(self, group, topic, read_committed=None):
        return _Member(self.bootstrap, group, topic, read_committed)

    def _consumer(self, **extra):
        # The Python wrapper insists on a group.id; assign() never joins it.
        config = {"bootstrap.servers": self.bootstrap, "group.id": "compat-assign-only",
                  "enable.auto.commit": False, "enable.partition.eof": False}
        config.update(extra)
        return Consumer(config)


def _isolation(read_committed):
    """isolation.level when a scenario asks for one; None keeps librdkafka's (read_committed)."""
    if read_committed is None:
        return {}
    return {"isolation.level": "read_committed" if read_committed else "read_uncommitted"}


def _send(producer, topic, records):
    """Enqueue every record; the list fills with a Delivery or a KafkaError per record."""
    results = [None] * len(records)

    def on_delivery(idx):
        def callback(error, message):
            results[idx] = error if error is not None else Delivery(message.partition(),
                                                                    message.offset())
        return callback

    for idx, record in enumerate(records):
        kwargs = {"key": record.key, "value": record.value, "on_delivery": on_delivery(idx)}
        if record.partition is not None:
            kwargs["partition"] = record.partition
        if record.headers:
            kwargs["headers"] = list(record.headers)
        if record.timestamp_ms is not None:
            kwargs["timestamp"] = record.timestamp_ms
        while True:
            try:
                producer.produce(topic, **kwargs)
                break
            except BufferError:  # local queue full: serve delivery reports, then retry
                producer.poll(0.1)
        producer.poll(0)
    return results


class _Transactional:
    """A transactional producer (init_transactions at creation)."""

    def __init__(self, bootstrap, transactional_id):
        self.producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5,
                                  "transactional.id": transactional_id})
        self.producer.init_transactions(TIMEOUT_S)

    def begin(self):
        self.producer.begin_transaction()

    def send(self, topic, records):
        results = _send(self.producer, topic, records)
        remaining = self.producer.flush(TIMEOUT_S)
        assert remaining == 0, f"{remaining} records still undelivered after {TIMEOUT_S}s"
        errors = [r for r in results if isinstance(r, KafkaError)]
        assert not errors, f"transactional delivery failed: {errors[0]}"

    def send_offsets(self, member, topic, offsets):
        self.producer.send_offsets_to_transaction(
            [TopicPartition(topic, p, o) for p, o in offsets.items()],
            member.consumer.consumer_group_metadata(), TIMEOUT_S)

    def commit(self):
        self.producer.commit_transaction(TIMEOUT_S)

    def abort(self):
        self.producer.abort_transaction(TIMEOUT_S)

    def close(self):
        self.producer.flush(TIMEOUT_S)


def _received(message):
    headers = tuple(message.headers() or ())
    return Received(message.partition(), message.offset(), message.key(), message.value(),
                    headers, message.timestamp()[1])


class _Reader:
    def __init__(self, adapter, topic, partition, start, read_committed):
        self.consumer = adapter._consumer(**_isolation(read_committed))
        if start == "beginning":
            offset = OFFSET_BEGINNING
        elif start == "end":
            offset = OFFSET_END
        elif isinstance(start, tuple):
            [found] = self.consumer.offsets_for_times([TopicPartition(topic, partition, start[1])],
                                                      timeout=TIMEOUT_S)
            offset = found.offset
        else:
            offset = start
        self.consumer.assign([TopicPartition(topic, partition, offset)])

    def poll(self, timeout_s):
        messages = self.consumer.consume(num_messages=1000, timeout=timeout_s)
        for message in messages:
            if message.error() is not None:
                raise RuntimeError(f"consume error: {message.error()}")
        return [_received(m) for m in messages]

    def close(self):
        self.consumer.close()


class _Member:
    def __init__(self, bootstrap, group, topic, read_committed):
        self.topic = topic
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                                  "enable.auto.commit": False, "auto.offset.reset": "earliest",
                                  "session.timeout.ms": 10000, "heartbeat.interval.ms": 500,
                                  **_isolation(read_committed)})
        self.consumer.subscribe([topic])

    def poll(self, timeout_s):
        messages = self.consumer.consume(num_messages=500, timeout=timeout_s)
        for message in messages:
            if message.error() is not None:
                raise RuntimeError(f"consume error: {message.error()}")
        return [_received(m) for m in messages]

    def assignment(self):
        return {tp.partition for tp in self.consumer.assignment()}

    def commit(self, offsets):
        if offsets:
            self.consumer.commit(offsets=[TopicPartition(self.topic, p, o)
                                          for p, o in offsets.items()], asynchronous=False)

    def close(self):
        self.consumer.close()
