"""KIP-848 consumer groups (`group.protocol=consumer`) with confluent-kafka (bundled librdkafka >= 2.4;
the Debian librdkafka 2.0 behind the Rust tests cannot speak it). Not part of the sN matrix.

Run: compat-tests/setup, start a broker, then
  /var/tmp/tidelog-compat/venv/bin/python -m pytest compat-tests/scenarios/test_kip848.py --bootstrap HOST:PORT
"""
import threading
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import require_apis, wait_until

PARTITIONS = 4


def _produce(bootstrap, topic, count, tag):
    producer = Producer({"bootstrap.servers": bootstrap})
    for i in range(count):
        producer.produce(topic, value=f"{tag}-{i}".encode(), partition=i % PARTITIONS)
    assert producer.flush(30) == 0


class _Member(threading.Thread):
    """Polls and commits each record synchronously; counts a record only once committed."""

    def __init__(self, name, bootstrap, group, topic, seen, extra=None):
        super().__init__(daemon=True)
        self.name = name
        config = {"bootstrap.servers": bootstrap, "group.id": group, "group.protocol": "consumer",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False}
        config.update(extra or {})
        self.consumer = Consumer(config)
        self.consumer.subscribe([topic])
        self.seen, self.lock = seen, threading.Lock()
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.is_set():
            message = self.consumer.poll(0.2)
            if message is None or message.error():
                continue
            try:
                self.consumer.commit(message=message, asynchronous=False)
            except Exception:  # lost a reassignment race: read it again (here, or its next owner)
                try:
                    self.consumer.seek(TopicPartition(message.topic(), message.partition(),
                                                      message.offset()))
                except Exception:
                    pass
                continue
            self.seen.append((self.name, message.partition(), message.offset()))
        self.consumer.close()

    def leave(self):
        self.stopping.set()
        self.join(60)


def _wait_exactly_once(seen, expected):
    wait_until(lambda: len(seen) >= expected, 90, f"{expected} records")
    records = [(partition, offset) for _, partition, offset in seen]
    assert len(set(records)) == len(records), f"duplicates: {len(records) - len(set(records))}"
    assert len(records) == expected


def test_consumer_protocol_group_join_leave_commit_and_describe(bootstrap):
    require_apis(bootstrap, "ConsumerGroupHeartbeat", "ConsumerGroupDescribe")
    topic, group = f"kip848-{uuid.uuid4().hex[:8]}", f"kip848-group-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, PARTITIONS, 1)]).values():
        future.result()
    seen = []
    first = _Member("first", bootstrap, group, topic, seen)
    first.start()
    _produce(bootstrap, topic, 40, "first")
    _wait_exactly_once(seen, 40)

    # A second member joins: partitions move only after the first revoked them.
    second = _Member("second", bootstrap, group, topic, seen, {"group.remote.assignor": "range"})
    second.start()
    produced = 40
    # Produce until the second member owns partitions (it gets them once the first revoked them).
    while not any(name == "second" for name, _, _ in seen):
        assert produced < 4000, "the second member never got an assignment"
        _produce(bootstrap, topic, 8, f"after-join-{produced}")
        produced += 8
        _wait_exactly_once(seen, produced)

    describer = AdminClient({"bootstrap.servers": bootstrap})
    described = describer.describe_consumer_groups([group])[group].result(timeout=30)
    assert len(described.members) == 2, described

    first.leave()
    _produce(bootstrap, topic, 40, "after-leave")
    produced += 40
    _wait_exactly_once(seen, produced)
    assert {p for name, p, _ in seen[-40:]} == set(range(PARTITIONS)), "the survivor owns everything"
    second.leave()

    check = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    committed = check.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=30)
    check.close()
    assert sum(tp.offset for tp in committed) == produced, committed
