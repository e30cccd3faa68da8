"""aiokafka behind the scenario interface; each object drives its own event loop."""
import asyncio

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import MessageSizeTooLargeError
from aiokafka.structs import OffsetAndMetadata

from .base import (REPLICATION_FACTOR, Adapter, Delivery, Received, TooLarge,
                   isolation_level)

TIMEOUT_S = 30
TOPIC_ALREADY_EXISTS = 36


def _error_codes(obj):
    """Every non-zero `error_code` anywhere in a response's to_object() tree."""
    if isinstance(obj, dict):
        codes = [obj["error_code"]] if obj.get("error_code") else []
        return codes + [c for v in obj.values() for c in _error_codes(v)]
    if isinstance(obj, list):
        return [c for v in obj for c in _error_codes(v)]
    return []


class AiokafkaAdapter(Adapter):
    def __init__(self, bootstrap):
        super().__init__(name="aiokafka", bootstrap=bootstrap)
        self.loop = asyncio.new_event_loop()

    def run(self, coro):
        return self.loop.run_until_complete(asyncio.wait_for(coro, TIMEOUT_S * 2))

    def close(self):
        self.loop.close()

    async def _admin(self, action):
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap,
                                    request_timeout_ms=TIMEOUT_S * 1000)
        await admin.start()
        try:
            return await action(admin)
        finally:
            await admin.close()

    def list_topics(self):
        topics = self.run(self._admin(lambda a: a.describe_topics()))
        return {t["topic"]: len(t["partitions"]) for t in topics if t["error_code"] == 0}

    def brokers(self):
        cluster = self.run(self._admin(lambda a: a.describe_cluster()))
        return [f"{b['host']}:{b['port']}" for b in cluster["brokers"]]

    def _create(self, name, partitions, configs):
        response = self.run(self._admin(lambda a: a.create_topics(
            [NewTopic(name, partitions, REPLICATION_FACTOR, topic_configs=configs or {})],
            timeout_ms=TIMEOUT_S * 1000)))
        return _error_codes(response.to_object())

    def create_topic(self, name, partitions, configs=None):
        codes = self._create(name, partitions, configs)
        assert not codes, f"CreateTopics answered error codes {codes}"

    def create_topic_again_is_rejected(self, name):
        return self._create(name, 1, None) == [TOPIC_ALREADY_EXISTS]

    def topic_configs(self, name):
        [response] = self.run(self._admin(lambda a: a.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name)])))
        obj = response.to_object()
        codes = _error_codes(obj)
        assert not codes, f"DescribeConfigs answered error codes {codes}"
        [resource] = obj["resources"]
        return {entry["config_names"]: entry["config_value"] for entry in resource["config_entries"]}

    def delete_topic(self, name):
        response = self.run(self._admin(lambda a: a.delete_topics([name], TIMEOUT_S * 1000)))
        codes = _error_codes(response.to_object())
        assert not codes, f"DeleteTopics answered error codes {codes}"

    def produce(self, topic, records, codec="none", idempotent=False):
        return self.run(self._produce(topic, records, codec, idempotent))

    async def _produce(self, topic, records, codec, idempotent):
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=5,
                                    compression_type=None if codec == "none" else codec,
                                    max_request_size=4_000_000, enable_idempotence=idempotent)
        await producer.start()
        try:
            return await _send(producer, topic, records)
        finally:
            await producer.stop()

    def transactional_producer(self, transactional_id):
        return _Transactional(self.bootstrap, transactional_id)

    def committed_offset(self, group, topic, partition):
        async def committed():
            consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=group,
                                        enable_auto_commit=False)
            await consumer.start()
            try:
                return await consumer.committed(TopicPartition(topic, partition))
            finally:
                await consumer.stop()
        return self.run(committed())

    async def _with_consumer(self, action):
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            return await action(consumer)
        finally:
            await consumer.stop()

    def end_offset(self, topic, partition):
        tp = TopicPartition(topic, partition)
        return self.run(self._with_consumer(lambda c: c.end_offsets([tp])))[tp]

    def offset_for_time(self, topic, partition, timestamp_ms):
        tp = TopicPartition(topic, partition)
        found = self.run(self._with_consumer(lambda c: c.offsets_for_times({tp: timestamp_ms})))[tp]
        return None if found is None else found.offset

    def reader(self, topic, partition, start, read_committed=None):
        return _Reader(self.bootstrap, topic, partition, start, read_committed)

    def group_member(self, group, topic, read_committed=None):
        return _Member(self.bootstrap, group, topic, read_committed)



async def _send(producer, topic, records):
    futures = []
    for record in records:
        futures.append(await producer.send(
            topic, key=record.key, value=record.value, partition=record.partition,
            headers=list(record.headers) or None, timestamp_ms=record.timestamp_ms))
    results = []
    for future in futures:
        try:
            metadata = await future
        except MessageSizeTooLargeError as error:
            raise TooLarge(str(error)) from error
        results.append(Delivery(metadata.partition, metadata.offset))
    return results


class _Transactional:
    """A transactional producer with its own loop; start() runs InitProducerId."""

    def __init__(self, bootstrap, transactional_id):
        self.loop = asyncio.new_event_loop()
        self.producer = None

        async def start():
            self.producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5,
                                             transactional_id=transactional_id)
            await self.producer.start()
        self.run(start())

    def run(self, coro):
        return self.loop.run_until_complete(asyncio.wait_for(coro, TIMEOUT_S * 2))

    def begin(self):
        self.run(self.producer.begin_transaction())

    def send(self, topic, records):
        self.run(_send(self.producer, topic, records))

    def send_offsets(self, member, topic, offsets):
        self.run(self.producer.send_offsets_to_transaction(
            {TopicPartition(topic, p): o for p, o in offsets.items()}, member.group))

    def commit(self):
        self.run(self.producer.commit_transaction())

    def abort(self):
        self.run(self.producer.abort_transaction())

    def close(self):
        self.run(self.producer.stop())
        self.loop.close()


def _received(record):
    return Received(record.partition, record.offset, record.key, record.value,
                    tuple(record.headers or ()), record.timestamp)


class _Consumer:
    """A consumer with its own loop, so a scenario can drive it from any one thread.

    aiokafka's synchronous methods (assign, seek, subscribe) must also run inside the loop.
    """

    def __init__(self, setup, **config):
        self.loop = asyncio.new_event_loop()
        self.consumer = None
        self.run(self._start(config, setup))

    async def _start(self, config, setup):
        self.consumer = AIOKafkaConsumer(**config)
        await self.consumer.start()
        await setup(self.consumer)

    def run(self, coro):
        return self.loop.run_until_complete(asyncio.wait_for(coro, TIMEOUT_S * 2))

    def call(self, function):
        async def inside():
            return function()
        return self.run(inside())

    def poll(self, timeout_s):
        batches = self.run(self.consumer.getmany(timeout_ms=int(timeout_s * 1000), max_records=1000))
        return [_received(r) for records in batches.values() for r in records]

    def close(self):
        self.run(self.consumer.stop())
        self.loop.close()


class _Reader(_Consumer):
    def __init__(self, bootstrap, topic, partition, start, read_committed):
        async def setup(consumer):
            tp = TopicPartition(topic, partition)
            consumer.assign([tp])
            if start == "beginning":
                await consumer.seek_to_beginning(tp)
            elif start == "end":
                await consumer.seek_to_end(tp)
                await consumer.position(tp)  # resolve now, before the caller produces more
            elif isinstance(start, tuple):
                found = (await consumer.offsets_for_times({tp: start[1]}))[tp]
                consumer.seek(tp, found.offset)
            else:
                consumer.seek(tp, start)
        super().__init__(setup, bootstrap_servers=bootstrap, enable_auto_commit=False,
                         **isolation_level(read_committed))


class _Member(_Consumer):
    def __init__(self, bootstrap, group, topic, read_committed):
        async def setup(consumer):
            consumer.subscribe([topic])
        super().__init__(setup, bootstrap_servers=bootstrap, group_id=group,
                         enable_auto_commit=False, auto_offset_reset="earliest",
                         session_timeout_ms=10000, heartbeat_interval_ms=500,
                         **isolation_level(read_committed))
        self.topic, self.group = topic, group

    def assignment(self):
        return {tp.partition for tp in self.call(self.consumer.assignment)}

    def commit(self, offsets):
        if offsets:
            self.run(self.consumer.commit({TopicPartition(self.topic, p): OffsetAndMetadata(o, "")
                                           for p, o in offsets.items()}))
