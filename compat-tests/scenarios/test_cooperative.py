"""A cooperative-sticky consumer group with confluent-kafka under CPU load (issue 7): 3 members
over 6 partitions, a synchronous commit after each record, heartbeat 500 ms, session 6 s; a member
joins mid-stream and another closes. Every record is consumed, committed offsets reach every
partition's end and the final members own every partition. Not part of the sN matrix.

Run: compat-tests/setup, start a broker, then
  /var/tmp/tidelog-compat/venv/bin/python -m pytest compat-tests/scenarios/test_cooperative.py --bootstrap HOST:PORT
COMPAT_COOP_RECORDS (default 6000) sets the record count (issue 7's report used 30000) and
COMPAT_COOP_MEMBERS (default 3) the members before the join.
"""
import multiprocessing
import os
import threading
import time
import uuid

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import require_apis, wait_until

PARTITIONS = 6
RECORDS = int(os.environ.get("COMPAT_COOP_RECORDS", "6000"))
MEMBERS = int(os.environ.get("COMPAT_COOP_MEMBERS", "3"))
CHUNKS = 6
LOAD_PROCESSES = 2
LOAD_LIMIT_S = 150
DEADLINE_S = 150


def _spin(stop, limit_s):
    ends = time.monotonic() + limit_s
    x = 1
    while not stop.is_set() and time.monotonic() < ends:
        for _ in range(20000):
            x = (x * 6364136223846793005 + 1) & 0xFFFFFFFFFFFFFFFF


class _CpuLoad:
    """Processes spinning on the CPU (not threads: they would hold the GIL) until stopped."""

    def __init__(self, count, limit_s):
        self.stop = multiprocessing.Event()
        self.processes = [multiprocessing.Process(target=_spin, args=(self.stop, limit_s), daemon=True)
                          for _ in range(count)]
        for process in self.processes:
            process.start()

    def close(self):
        self.stop.set()
        for process in self.processes:
            process.join(10)
            if process.is_alive():
                process.kill()


class _Member(threading.Thread):
    """Polls and commits each record synchronously; counts a record only once committed."""

    def __init__(self, name, bootstrap, group, topic, seen, errors):
        super().__init__(daemon=True)
        self.name = name
        self.consumer = Consumer({
            "bootstrap.servers": bootstrap, "group.id": group,
            "partition.assignment.strategy": "cooperative-sticky",
            "auto.offset.reset": "earliest", "enable.auto.commit": False,
            "session.timeout.ms": 6000, "heartbeat.interval.ms": 500,
        })
        self.consumer.subscribe([topic])
        self.seen, self.errors = seen, errors
        self.owned = set()
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.is_set():
            message = self.consumer.poll(0.1)
            self.owned = {tp.partition for tp in self.consumer.assignment()}
            if message is None or message.error():
                continue
            try:
                self.consumer.commit(message=message, asynchronous=False)
            except KafkaException as error:
                # Lost a rebalance race: read it again (here, or its next owner from the commit).
                self.errors.append(error.args[0].name())
                try:
                    self.consumer.seek(TopicPartition(message.topic(), message.partition(),
                                                      message.offset()))
                except KafkaException:
                    pass
                continue
            self.seen.append((message.partition(), message.offset()))
        self.consumer.close()

    def leave(self):
        self.stopping.set()
        self.join(60)
        assert not self.is_alive(), f"{self.name} did not close"


def _produce(bootstrap, topic, count, tag):
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(count):
        producer.produce(topic, value=f"{tag}-{i}".encode(), partition=i % PARTITIONS)
        producer.poll(0)
    assert producer.flush(60) == 0


def _high_watermarks(bootstrap, topic):
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"hw-{uuid.uuid4().hex[:8]}"})
    try:
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
                for p in range(PARTITIONS)}
    finally:
        consumer.close()


def _committed(bootstrap, group, topic):
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        found = consumer.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=30)
        return {tp.partition: tp.offset for tp in found}
    finally:
        consumer.close()


def test_cooperative_sticky_join_and_leave_under_cpu_load_consume_every_record(bootstrap):
    require_apis(bootstrap, "JoinGroup", "SyncGroup", "Heartbeat", "LeaveGroup", "OffsetCommit")
    topic, group = f"coop-{uuid.uuid4().hex[:8]}", f"coop-group-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, PARTITIONS, 1)]).values():
        future.result()
    seen, errors = [], []
    load = _CpuLoad(LOAD_PROCESSES, LOAD_LIMIT_S)
    members = []
    try:
        members = [_Member(f"m{i}", bootstrap, group, topic, seen, errors) for i in range(MEMBERS)]
        for member in members:
            member.start()
        chunk = RECORDS // CHUNKS
        for index in range(CHUNKS):
            _produce(bootstrap, topic, chunk, f"chunk-{index}")
            # Mid-stream: a member joins once a sixth is consumed, the first member (the leader)
            # closes at half, each while produced records still wait.
            if index == 1:
                wait_until(lambda: len(seen) >= chunk, DEADLINE_S, "records before the join")
                members.append(_Member(f"m{MEMBERS}", bootstrap, group, topic, seen, errors))
                members[-1].start()
            elif index == 3:
                wait_until(lambda: len(seen) >= 3 * chunk, DEADLINE_S, "records before the leave")
                members.pop(0).leave()
        produced = chunk * CHUNKS

        def owners():
            return [sorted(m.owned) for m in members]
        deadline = time.monotonic() + DEADLINE_S
        while len(set(seen)) < produced:
            assert time.monotonic() < deadline, (
                f"{produced - len(set(seen))} records never consumed; owners {owners()}, "
                f"committed {_committed(bootstrap, group, topic)}")
            time.sleep(0.2)
        ends = _high_watermarks(bootstrap, topic)
        assert sum(ends.values()) == produced, ends
        wait_until(lambda: _committed(bootstrap, group, topic) == ends, 30,
                   f"committed offsets at the ends {ends}", interval_s=0.5)
        wait_until(lambda: sorted(p for o in owners() for p in o) == list(range(PARTITIONS)),
                   30, "the final members owning every partition once")
    finally:
        load.close()
        for member in members:
            member.leave()
    print(f"records {produced}, consumed {len(seen)} ({len(seen) - produced} again), "
          f"commit errors {sorted(set(errors))} x{len(errors)}")
