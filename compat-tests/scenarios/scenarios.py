"""The scenarios, written once against the adapter interface (adapters/base.py).

test_python_clients.py runs them for each Python client. Each function raises AssertionError
with a precise message on a mismatch; "not yet" / "n/a" are decided by the caller.
"""
import os
import threading
import time

from adapters.base import Record, TooLarge
from conftest import unique_topic, wait_until
from describe_producers import describe_producers

DEADLINE_S = 60
GROUP_APIS = ("FindCoordinator", "JoinGroup", "SyncGroup", "Heartbeat", "LeaveGroup",
              "OffsetCommit", "OffsetFetch")
IDEMPOTENCE_APIS = ("InitProducerId", "DescribeProducers")
TRANSACTION_APIS = ("InitProducerId", "AddPartitionsToTxn", "AddOffsetsToTxn", "EndTxn",
                    "TxnOffsetCommit") + GROUP_APIS
IDEMPOTENT_RECORDS = 5_000


def now_ms():
    return int(time.time() * 1000)


def read_exactly(adapter, topic, partition, start, count, deadline_s=DEADLINE_S,
                 read_committed=None):
    """Read from `start` until `count` records arrived; fail on a timeout or on extra records."""
    reader = adapter.reader(topic, partition, start, read_committed=read_committed)
    try:
        got = []
        deadline = time.monotonic() + deadline_s
        while len(got) < count:
            assert time.monotonic() < deadline, \
                f"{topic}[{partition}] from {start}: got {len(got)} of {count} records in {deadline_s}s"
            got.extend(reader.poll(0.5))
        return got[:count] if len(got) == count else _too_many(got, count)
    finally:
        reader.close()


def _too_many(got, count):
    raise AssertionError(f"expected {count} records, got {len(got)}; extra offsets "
                         f"{[r.offset for r in got[count:]][:10]}")


def normalize_headers(headers):
    return tuple((name, None if value is None else bytes(value)) for name, value in headers or ())


def prepare_topic(adapter, can_create, scenario, partitions, configs=None):
    """A fresh topic: through the client's admin API when possible, else by auto-creation."""
    topic = unique_topic(adapter.name, scenario)
    if can_create:
        adapter.create_topic(topic, partitions, configs)
        wait_until(lambda: adapter.list_topics().get(topic) == partitions, DEADLINE_S,
                   f"{topic} with {partitions} partitions in metadata")
    else:
        assert configs is None, "a topic with configs needs CreateTopics"
        adapter.produce(topic, [Record(b"seed", b"seed", partition=0)])
    return topic


def metadata(adapter, bootstrap):
    topic = unique_topic(adapter.name, "s1")
    adapter.produce(topic, [Record(b"k", b"v")])  # auto-creates the topic
    topics = wait_until(lambda: (t := adapter.list_topics()) and topic in t and t, DEADLINE_S,
                        f"{topic} in the topic list")
    assert topics[topic] >= 1, f"{topic} listed with {topics[topic]} partitions"
    brokers = adapter.brokers()
    assert bootstrap in brokers, f"broker list {brokers} lacks {bootstrap}"


def create_topic(adapter):
    topic = unique_topic(adapter.name, "s2")
    configs = {"retention.ms": "3600000", "max.message.bytes": "200000",
               "cleanup.policy": "delete"}
    adapter.create_topic(topic, 3, configs)
    wait_until(lambda: adapter.list_topics().get(topic) == 3, DEADLINE_S,
               f"{topic} with 3 partitions in metadata")
    described = adapter.topic_configs(topic)
    for key, value in configs.items():
        assert described.get(key) == value, f"DescribeConfigs {key}={described.get(key)!r}, want {value!r}"
    assert adapter.create_topic_again_is_rejected(topic), "creating it again was not TOPIC_ALREADY_EXISTS"


def produce_records(adapter):
    records = [
        Record(b"k1", b"v1", (("h1", b"x"), ("h2", b""))),
        Record(None, b"no key"),
        Record(b"tombstone", None),
        Record(b"k4", b"", (("h1", b"one"), ("h1", b"two"))),
        Record(b"k5", b"compressible " * 400),
    ]
    if adapter.null_header_values:
        records.append(Record(b"k6", b"null header", (("hnull", None),)))
    records += [Record(f"key-{i}".encode(), os.urandom(8).hex().encode()) for i in range(50)]
    return [Record(r.key, r.value, r.headers, partition=0) for r in records]


def produce(adapter, can_create, codec):
    topic = prepare_topic(adapter, can_create, "s3", 1)
    base = adapter.end_offset(topic, 0)
    records = produce_records(adapter)
    deliveries = adapter.produce(topic, records, codec=codec)
    offsets = [d.offset for d in deliveries]
    assert offsets == list(range(base, base + len(records))), f"delivery offsets {offsets[:8]}..."
    got = read_exactly(adapter, topic, 0, base, len(records))
    for sent, received in zip(records, got):
        assert (received.key, received.value) == (sent.key, sent.value), \
            f"offset {received.offset}: got key={received.key!r} value={received.value!r:.60}, " \
            f"sent key={sent.key!r} value={sent.value!r:.60}"
        assert normalize_headers(received.headers) == normalize_headers(sent.headers), \
            f"offset {received.offset}: headers {received.headers!r}, sent {sent.headers!r}"


def consume_positions(adapter, can_create):
    topic = prepare_topic(adapter, can_create, "s4", 1)
    base = adapter.end_offset(topic, 0)
    # In the near future, so any earlier record (an auto-create seed) has a smaller timestamp:
    # ListOffsets answers the first offset whose timestamp is >= the one asked for.
    base_ts = now_ms() + 20_000
    records = [Record(f"k{i}".encode(), f"v{i}".encode(), partition=0, timestamp_ms=base_ts + i * 1000)
               for i in range(10)]
    adapter.produce(topic, records)

    # From the beginning: the auto-create seed if there is one, then ours. (Offsets below `base`
    # need not all be records: a replicated partition's raft control batches take offsets too.)
    seeded = 0 if can_create else 1
    got = read_exactly(adapter, topic, 0, "beginning", seeded + 10)[seeded:]
    assert [r.value for r in got] == [r.value for r in records], "from beginning: wrong values"
    assert [r.timestamp_ms for r in got] == [r.timestamp_ms for r in records], \
        f"timestamps {[r.timestamp_ms for r in got]} != {[r.timestamp_ms for r in records]}"

    got = read_exactly(adapter, topic, 0, base + 5, 5)
    assert [r.offset for r in got] == list(range(base + 5, base + 10)), "from offset: wrong offsets"
    assert [r.value for r in got] == [f"v{i}".encode() for i in range(5, 10)]

    for ts, want in ((base_ts + 7000, 7), (base_ts + 6500, 7), (base_ts - 500, 0)):
        found = adapter.offset_for_time(topic, 0, ts)
        assert found == base + want, f"offset for timestamp {ts - base_ts:+} ms: {found}, want {base + want}"
    got = read_exactly(adapter, topic, 0, ("timestamp", base_ts + 6500), 3)
    assert [r.offset for r in got] == [base + 7, base + 8, base + 9], "from timestamp: wrong offsets"

    reader = adapter.reader(topic, 0, "end")
    try:
        got, idx, deadline = [], 0, time.monotonic() + DEADLINE_S
        while not got:
            assert time.monotonic() < deadline, "from end: nothing new arrived"
            adapter.produce(topic, [Record(b"marker", f"marker-{idx}".encode(), partition=0)])
            idx += 1
            got = reader.poll(0.5)
        assert all(r.offset >= base + 10 and r.value.startswith(b"marker") for r in got), \
            f"from end: read old records {[(r.offset, r.value) for r in got][:5]}"
    finally:
        reader.close()


def order(adapter, can_create, count=10_000, scenario="s5", idempotent=False):
    """`count` keyed records over 4 partitions: contiguous offsets, send order, exact content.

    Returns the topic and {partition: records it got}; a partition's high watermark must grow by
    exactly its records (a duplicate appended behind the client's back would show there).
    """
    topic = prepare_topic(adapter, can_create, scenario, 4)
    partitions = adapter.list_topics()[topic]
    bases = {p: adapter.end_offset(topic, p) for p in range(partitions)}
    records = [Record(f"key-{i % 101}".encode(), f"{i:05d}:{os.urandom(6).hex()}".encode())
               for i in range(count)]
    deliveries = adapter.produce(topic, records, idempotent=idempotent)
    by_partition = {}
    for idx, delivery in enumerate(deliveries):
        by_partition.setdefault(delivery.partition, []).append((delivery.offset, idx))
    for partition, entries in by_partition.items():
        entries.sort()
        offsets = [o for o, _ in entries]
        want = list(range(bases[partition], bases[partition] + len(entries)))
        assert offsets == want, f"partition {partition}: offsets not contiguous from {want[0]}"
        sent_order = [idx for _, idx in entries]
        assert sent_order == sorted(sent_order), f"partition {partition}: offsets not in send order"
        got = read_exactly(adapter, topic, partition, bases[partition], len(entries))
        want_records = [(records[idx].key, records[idx].value) for idx in sent_order]
        got_records = [(r.key, r.value) for r in got]
        if got_records != want_records:
            first = next(i for i, (a, b) in enumerate(zip(got_records, want_records)) if a != b)
            raise AssertionError(f"partition {partition} offset {bases[partition] + first}: "
                                 f"got {got_records[first]}, want {want_records[first]}")
        end = adapter.end_offset(topic, partition)
        assert end == bases[partition] + len(entries), \
            f"partition {partition}: high watermark {end} after {len(entries)} records from " \
            f"{bases[partition]}: the log holds records that were not sent (duplicates)"
    return topic, {p: len(entries) for p, entries in by_partition.items()}


def max_message(adapter, limit=32768):
    topic = unique_topic(adapter.name, "s6")
    adapter.create_topic(topic, 1, {"max.message.bytes": str(limit)})
    wait_until(lambda: topic in adapter.list_topics(), DEADLINE_S, f"{topic} in metadata")
    near = Record(b"near", os.urandom((limit - 400) // 2).hex().encode(), partition=0)
    adapter.produce(topic, [near])
    over = Record(b"over", os.urandom(limit // 2 + 2000).hex().encode(), partition=0)
    try:
        adapter.produce(topic, [over])
    except TooLarge:
        pass
    else:
        raise AssertionError(f"a {len(over.value)}-byte record on a topic with max.message.bytes="
                             f"{limit} was accepted")
    adapter.produce(topic, [Record(b"after", b"small", partition=0)])
    got = read_exactly(adapter, topic, 0, "beginning", 2)
    assert [(r.key, r.value) for r in got] == [(near.key, near.value), (b"after", b"small")]


def delete_topic(adapter, can_create):
    topic = prepare_topic(adapter, can_create, "s9", 1)
    wait_until(lambda: topic in adapter.list_topics(), DEADLINE_S, f"{topic} in metadata")
    adapter.delete_topic(topic)
    wait_until(lambda: topic not in adapter.list_topics(), DEADLINE_S, f"{topic} gone from metadata")


class _MemberThread(threading.Thread):
    """One group member polling in its own thread, committing after every batch."""

    def __init__(self, adapter, group, topic):
        super().__init__(daemon=True)
        self.adapter, self.group, self.topic = adapter, group, topic
        self.stop_event = threading.Event()
        self.seen, self.assigned, self.error = [], set(), None

    def run(self):
        try:
            member = self.adapter.group_member(self.group, self.topic)
            try:
                while not self.stop_event.is_set():
                    batch = member.poll(0.3)
                    self.seen.extend((r.partition, r.offset, r.value) for r in batch)
                    member.commit({p: max(r.offset for r in batch if r.partition == p) + 1
                                   for p in {r.partition for r in batch}})
                    self.assigned = set(member.assignment())
            finally:
                member.close()
        except Exception as error:  # reported by the scenario
            self.error = error

    def stop(self):
        self.stop_event.set()
        self.join(DEADLINE_S)
        assert not self.is_alive(), "group member did not stop"
        if self.error is not None:
            raise AssertionError(f"group member failed: {self.error!r}")


def group_takeover(adapter, partitions=4):
    topic = unique_topic(adapter.name, "s7")
    adapter.create_topic(topic, partitions)
    wait_until(lambda: adapter.list_topics().get(topic) == partitions, DEADLINE_S, "topic metadata")
    group = f"{topic}-group"
    first = [Record(b"k", f"first-{i}".encode(), partition=i % partitions) for i in range(400)]
    adapter.produce(topic, first)
    members = [_MemberThread(adapter, group, topic) for _ in range(2)]
    try:
        for member in members:
            member.start()
        everything = set(range(partitions))

        def shared():
            a, b = members[0].assigned, members[1].assigned
            return a and b and not (a & b) and (a | b) == everything
        wait_until(shared, DEADLINE_S, "both members to share the partitions", 0.2)
        members[0].stop()
        wait_until(lambda: members[1].assigned == everything, DEADLINE_S,
                   "the remaining member to take over every partition", 0.2)
        second = [Record(b"k", f"second-{i}".encode(), partition=i % partitions) for i in range(400)]
        adapter.produce(topic, second)
        want = {r.value for r in first + second}

        def everything_seen():
            return want <= {v for m in members for _, _, v in m.seen}
        wait_until(everything_seen, DEADLINE_S, "every record consumed by the group", 0.2)
    finally:
        for member in members:
            if member.is_alive():
                member.stop()


def commit_resume(adapter):
    topic = unique_topic(adapter.name, "s8")
    adapter.produce(topic, [Record(b"k", f"v{i}".encode(), partition=0) for i in range(100)])
    group = f"{topic}-group"
    member = adapter.group_member(group, topic)
    try:
        got = []
        wait_until(lambda: got.extend(r for r in member.poll(0.3) if r.partition == 0) or
                   len(got) >= 50, DEADLINE_S, "the first 50 records")
        member.commit({0: got[0].offset + 50})
        resume_at = got[0].offset + 50
    finally:
        member.close()
    member = adapter.group_member(group, topic)
    try:
        got = []
        wait_until(lambda: got.extend(r for r in member.poll(0.3) if r.partition == 0) or
                   (got and got[-1].offset >= resume_at + 49), DEADLINE_S, "the other 50 records")
        assert got[0].offset == resume_at, f"restarted member began at {got[0].offset}, want {resume_at}"
        assert [r.value for r in got[:50]] == [f"v{i}".encode() for i in range(50, 100)]
    finally:
        member.close()


def check_idempotent_producer(bootstrap, topic, counts):
    """The broker holds one producer id per partition written, its last sequence = records - 1.

    This tells an idempotent produce from a client that silently fell back to plain produce.
    """
    for partition, count in sorted(counts.items()):
        producers = describe_producers(bootstrap, topic, partition)
        assert len(producers) == 1, \
            f"{topic}[{partition}]: DescribeProducers lists {producers}, want one idempotent producer"
        [producer] = producers
        assert producer.producer_id >= 0 and producer.last_sequence == count - 1, \
            f"{topic}[{partition}]: {producer}, want last_sequence {count - 1} for {count} records"


def idempotent_producer(adapter, bootstrap, can_create):
    topic, counts = order(adapter, can_create, IDEMPOTENT_RECORDS, "s10", idempotent=True)
    check_idempotent_producer(bootstrap, topic, counts)


def _values(records):
    return [r.value for r in records]


def transactions(adapter, can_create):
    """Commit, abort, commit; a read_committed reader sees the committed records only and a
    read_uncommitted one every record; then consume-transform-produce with the offsets committed
    in the transaction, and an aborted one whose output and offsets must both vanish."""
    topic = prepare_topic(adapter, can_create, "s11", 1)
    out_topic = prepare_topic(adapter, can_create, "s11-out", 1)
    base, out_base = adapter.end_offset(topic, 0), adapter.end_offset(out_topic, 0)
    committed = [Record(f"k{i}".encode(), f"committed-{i}".encode(), partition=0) for i in range(10)]
    aborted = [Record(f"a{i}".encode(), f"aborted-{i}".encode(), partition=0) for i in range(5)]
    txn = adapter.transactional_producer(f"{topic}-txn")
    try:
        for records, commit in ((committed[:5], True), (aborted, False), (committed[5:], True)):
            txn.begin()
            txn.send(topic, records)
            if commit:
                txn.commit()
            else:
                txn.abort()
        # 15 records and 3 markers (control batches of one record each).
        wait_until(lambda: adapter.end_offset(topic, 0) == base + 18, DEADLINE_S,
                   f"{topic}[0] high watermark {base + 18}")
        got = read_exactly(adapter, topic, 0, base, 10, read_committed=True)
        assert _values(got) == _values(committed), f"read_committed got {_values(got)}"
        got = read_exactly(adapter, topic, 0, base, 15, read_committed=False)
        want = _values(committed[:5] + aborted + committed[5:])
        assert _values(got) == want, f"read_uncommitted got {_values(got)}, want {want}"

        group = f"{topic}-ctp"
        member = adapter.group_member(group, topic, read_committed=True)
        try:
            inputs = []
            wait_until(lambda: inputs.extend(r for r in member.poll(0.3) if r.offset >= base)
                       or len(inputs) >= 10, DEADLINE_S, "the 10 committed input records")
            assert _values(inputs) == _values(committed), f"ctp input {_values(inputs)}"
            next_offset = inputs[-1].offset + 1
            txn.begin()
            txn.send(out_topic, [Record(r.key, r.value.upper(), partition=0) for r in inputs])
            txn.send_offsets(member, topic, {0: next_offset})
            txn.commit()
            txn.begin()
            txn.send(out_topic, [Record(b"zombie", b"aborted output", partition=0)])
            txn.send_offsets(member, topic, {0: base})
            txn.abort()
        finally:
            member.close()
        # A committed record after the aborted one: reading up to it shows the aborted one hidden.
        txn.begin()
        txn.send(out_topic, [Record(b"sentinel", b"after the abort", partition=0)])
        txn.commit()
    finally:
        txn.close()
    wait_until(lambda: adapter.committed_offset(group, topic, 0) == next_offset, DEADLINE_S,
               f"the group's offset committed in the transaction ({next_offset})")
    # 10 records and a COMMIT marker, an aborted record and its ABORT marker, the sentinel and
    # its COMMIT marker.
    wait_until(lambda: adapter.end_offset(out_topic, 0) == out_base + 15, DEADLINE_S,
               f"{out_topic}[0] high watermark {out_base + 15}")
    got = read_exactly(adapter, out_topic, 0, out_base, 11, read_committed=True)
    want = [v.upper() for v in _values(committed)] + [b"after the abort"]
    assert _values(got) == want, f"ctp output (read_committed) {_values(got)}, want {want}"
