"""Scenario s12 of a cluster run (`compat-tests/run --cluster 3`): the leader of the partitions in
use is killed with SIGKILL in the middle of a stream, and nothing acknowledged is lost.

The harness runs it (it owns the broker processes), after the matrix, once per client in CLIENTS:
a topic of PARTITIONS partitions with replication factor 3; the client's idempotent acks=all
producer sends RECORDS records at RATE_PER_S, alternating partitions, while a member of a consumer
group (the same client) reads them and commits after every batch. Once KILL_AFTER_ACKED records
are acknowledged and the member has committed, the broker that leads partition 0 (Metadata) is
killed with SIGKILL; the clients carry on by themselves. Then:
- every record sent was acknowledged (the producer kept going through the failover);
- a final read of every partition from the start (assign, until end of partition) holds every
  acknowledged record exactly once, at the offset its acknowledgement named, in send order, and
  nothing else;
- the group's reads, with re-deliveries from a committed offset folded (what a group member sees
  after a rebalance), are exactly that sequence;
- the group's committed offsets are the partitions' ends, read through the new coordinator, and
  again once the killed broker is restarted (same data dir and port), lists every broker and its
  replicas hold what the others hold (DescribeLogDirs at each broker) and every partition is led
  by its preferred replica again, so later scenarios get the whole cluster, settled (FINDINGS #9).
  Its return to the in-sync replicas is printed, not asserted (FINDINGS #8).
Every wait polls with a deadline.
"""
import threading
import time
import uuid

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KpTopicPartition
from kafka.admin import KafkaAdminClient
from kafka.admin import NewTopic as KpNewTopic
from kafka.structs import OffsetAndMetadata

from log_dirs import log_sizes
from polling import wait_until

SCENARIO = "s12"
SCENARIO_NAME = "leader kill (cluster)"
PARTITIONS = 2
REPLICATION_FACTOR = 3
RECORDS = 3000
RATE_PER_S = 500
KILL_AFTER_ACKED = RECORDS // 3
DEADLINE_S = 90
TIMEOUT_S = 30


class _ConfluentClient:
    name = "confluent-kafka"

    def __init__(self, bootstrap):
        self.bootstrap = bootstrap

    def create_topic(self, topic):
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        futures = admin.create_topics(
            [NewTopic(topic, num_partitions=PARTITIONS, replication_factor=REPLICATION_FACTOR)],
            operation_timeout=TIMEOUT_S)
        futures[topic].result(timeout=TIMEOUT_S)

    def producer(self):
        return _ConfluentProducer(self.bootstrap)

    def member(self, group, topic):
        return _ConfluentMember(self.bootstrap, group, topic)


class _ConfluentProducer:
    def __init__(self, bootstrap):
        self.producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                                  "acks": "all", "linger.ms": 5,
                                  "message.timeout.ms": DEADLINE_S * 1000})

    def send(self, topic, partition, value, on_ack):
        def callback(error, message):
            if error is not None:
                on_ack(None, None, str(error))
            else:
                on_ack(message.partition(), message.offset(), None)
        self.producer.produce(topic, value=value, partition=partition, on_delivery=callback)
        self.producer.poll(0)

    def flush(self, timeout_s):
        """Records still unacknowledged after `timeout_s`."""
        return self.producer.flush(timeout_s)

    def close(self):
        self.producer.flush(0)


class _ConfluentMember:
    def __init__(self, bootstrap, group, topic):
        self.topic = topic
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                                  "enable.auto.commit": False, "auto.offset.reset": "earliest",
                                  "session.timeout.ms": 10000, "heartbeat.interval.ms": 500})
        self.consumer.subscribe([topic])

    def poll(self, timeout_s):
        """[(partition, offset, value)] and the transient errors the client reported."""
        records, errors = [], []
        for message in self.consumer.consume(num_messages=500, timeout=timeout_s):
            if message.error() is None:
                records.append((message.partition(), message.offset(), message.value()))
            elif message.error().fatal():
                raise RuntimeError(f"fatal consumer error: {message.error()}")
            else:
                errors.append(str(message.error()))
        return records, errors

    def commit(self, offsets):
        self.consumer.commit(offsets=[TopicPartition(self.topic, p, o) for p, o in offsets.items()],
                             asynchronous=False)

    def close(self):
        self.consumer.close()


class _KafkaPythonClient:
    name = "kafka-python"

    def __init__(self, bootstrap):
        self.bootstrap = bootstrap.split(",")

    def create_topic(self, topic):
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap,
                                 request_timeout_ms=TIMEOUT_S * 1000)
        try:
            admin.create_topics([KpNewTopic(topic, num_partitions=PARTITIONS,
                                            replication_factor=REPLICATION_FACTOR)],
                                timeout_ms=TIMEOUT_S * 1000)
        finally:
            admin.close()

    def producer(self):
        return _KafkaPythonProducer(self.bootstrap)

    def member(self, group, topic):
        return _KafkaPythonMember(self.bootstrap, group, topic)


class _KafkaPythonProducer:
    def __init__(self, bootstrap):
        # kafka-python 3 is idempotent (and so acks=all) by default; both said for the reader.
        self.producer = KafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True,
                                      acks="all", linger_ms=5,
                                      delivery_timeout_ms=DEADLINE_S * 1000)
        self.futures = []

    def send(self, topic, partition, value, on_ack):
        future = self.producer.send(topic, value=value, partition=partition)
        future.add_callback(lambda metadata: on_ack(metadata.partition, metadata.offset, None))
        future.add_errback(lambda error: on_ack(None, None, repr(error)))
        self.futures.append(future)

    def flush(self, timeout_s):
        try:
            self.producer.flush(timeout=timeout_s)
        except Exception:  # a timeout: the count below says how many are missing
            pass
        return sum(not f.is_done for f in self.futures)

    def close(self):
        self.producer.close(timeout=TIMEOUT_S)


class _KafkaPythonMember:
    def __init__(self, bootstrap, group, topic):
        self.topic = topic
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                                      enable_auto_commit=False, auto_offset_reset="earliest",
                                      session_timeout_ms=10000, heartbeat_interval_ms=500)
        # Metadata before subscribing (FINDINGS #5, as the matrix adapter does).
        self.consumer.partitions_for_topic(topic)
        self.consumer.subscribe([topic])

    def poll(self, timeout_s):
        batches = self.consumer.poll(timeout_ms=int(timeout_s * 1000), max_records=500)
        return [(r.partition, r.offset, r.value) for rs in batches.values() for r in rs], []

    def commit(self, offsets):
        self.consumer.commit({KpTopicPartition(self.topic, p): OffsetAndMetadata(o, "", -1)
                              for p, o in offsets.items()})

    def close(self):
        self.consumer.close()


CLIENTS = (_ConfluentClient, _KafkaPythonClient)


def value_of(client_name, idx):
    return f"{client_name}-s12-{idx:06d}".encode()


class _Acks:
    """Every record's acknowledgement: (partition, offset) or an error, by send index."""

    def __init__(self):
        self.lock = threading.Lock()
        self.by_idx = {}

    def callback(self, idx):
        def on_ack(partition, offset, error):
            with self.lock:
                self.by_idx[idx] = error if error is not None else (partition, offset)
        return on_ack

    def acked_count(self):
        with self.lock:
            return sum(isinstance(a, tuple) for a in self.by_idx.values())

    def snapshot(self):
        with self.lock:
            return dict(self.by_idx)


class _ProducerThread(threading.Thread):
    """Sends RECORDS records at RATE_PER_S (the stream's pace), then flushes."""

    def __init__(self, client, topic, acks):
        super().__init__(daemon=True)
        self.client, self.topic, self.acks = client, topic, acks
        self.unacked, self.error = None, None

    def run(self):
        try:
            producer = self.client.producer()
            try:
                started = time.monotonic()
                for idx in range(RECORDS):
                    pause = started + idx / RATE_PER_S - time.monotonic()
                    if pause > 0:
                        time.sleep(pause)
                    producer.send(self.topic, idx % PARTITIONS, value_of(self.client.name, idx),
                                  self.acks.callback(idx))
                self.unacked = producer.flush(DEADLINE_S)
            finally:
                producer.close()
        except Exception as error:  # reported by the scenario
            self.error = error


class _MemberThread(threading.Thread):
    """A group member that commits after every batch, then its final positions on stop."""

    def __init__(self, client, group, topic):
        super().__init__(daemon=True)
        self.client, self.group, self.topic = client, group, topic
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.seen = []  # (partition, offset, value) in the order read
        self.attempted = {p: {0} for p in range(PARTITIONS)}  # offsets it tried to commit
        self.commits, self.commit_errors, self.poll_errors = 0, [], []
        self.final_commit, self.error = None, None

    def values(self):
        with self.lock:
            return {v for _, _, v in self.seen}

    def run(self):
        try:
            member = self.client.member(self.group, self.topic)
            try:
                while not self.stop_event.is_set():
                    try:
                        batch, errors = member.poll(0.3)
                    except Exception as error:  # e.g. its coordinator just died
                        errors, batch = [repr(error)], []
                    self.poll_errors += errors
                    if batch:
                        with self.lock:
                            self.seen += batch
                        self._commit(member, {p: max(o for q, o, _ in batch if q == p) + 1
                                              for p in {q for q, _, _ in batch}})
                self._final_commit(member)
            finally:
                member.close()
        except Exception as error:  # reported by the scenario
            self.error = error

    def _commit(self, member, offsets):
        for partition, offset in offsets.items():
            self.attempted[partition].add(offset)
        try:
            member.commit(offsets)
            self.commits += 1
            return True
        except Exception as error:  # a failover in progress; the next batch's commit covers it
            self.commit_errors.append(repr(error))
            return False

    def _final_commit(self, member):
        """Commits the position after every record read, retrying until it is taken."""
        ends = {}
        for partition, offset, _ in self.seen:
            ends[partition] = max(ends.get(partition, 0), offset + 1)
        deadline = time.monotonic() + DEADLINE_S
        while ends and not self._commit(member, ends):
            assert time.monotonic() < deadline, f"final commit of {ends} not taken in {DEADLINE_S}s"
            member.poll(0.3)  # serves the client's rejoin / coordinator lookup
        self.final_commit = ends

    def stop(self):
        self.stop_event.set()
        self.join(DEADLINE_S + TIMEOUT_S)
        assert not self.is_alive(), "the group member did not stop"
        if self.error is not None:
            raise AssertionError(f"group member failed: {self.error!r}")


def partitions_of(admin, topic):
    """{partition: (leader, isr)} from one Metadata answer; {} while the topic is unknown."""
    try:
        metadata = admin.list_topics(topic, timeout=10)
    except Exception:  # no broker answered in time
        return {}
    found = metadata.topics.get(topic)
    if found is None or found.error is not None:
        return {}
    return {p.id: (p.leader, sorted(p.isrs)) for p in found.partitions.values()}


def fully_in_sync(admin, topic, brokers):
    """Every partition led and every broker in its in-sync replicas."""
    view = partitions_of(admin, topic)
    whole = sorted(b.node_id for b in brokers)
    ok = len(view) == PARTITIONS and all(l > 0 and isr == whole for l, isr in view.values())
    return view if ok else None


def sees_every_broker(broker, brokers):
    """The broker's own Metadata lists every broker of the run."""
    try:
        found = AdminClient({"bootstrap.servers": broker.bootstrap}).list_topics(timeout=5)
    except Exception:  # not answering yet
        return False
    return len(found.brokers) == len(brokers)


def leaders_preferred(admin):
    """Every partition of every topic (the internal ones too) led by its first replica."""
    try:
        metadata = admin.list_topics(timeout=10)
    except Exception:  # no broker answered in time
        return False
    return all(p.replicas and p.leader == p.replicas[0]
               for t in metadata.topics.values() for p in t.partitions.values())


def caught_up(broker, brokers, topic):
    """Each of the broker's replicas of `topic` is as long as the longest other replica
    (DescribeLogDirs at every broker)."""
    try:
        sizes = {b.node_id: log_sizes(b.bootstrap, topic, PARTITIONS) for b in brokers}
    except OSError:  # a broker not answering yet
        return False
    own = sizes[broker.node_id]
    longest = {p: max(s.get(p, 0) for n, s in sizes.items() if n != broker.node_id)
               for p in range(PARTITIONS)}
    return all(own.get(p, -1) >= longest[p] for p in range(PARTITIONS))


def answer_offsets(bootstrap, topic):
    """Every partition's end offset, or False while a leader does not answer."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{topic}-offsets"})
    try:
        return [consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=5)
                for p in range(PARTITIONS)]
    except Exception:  # KafkaException: not led yet, or the request timed out
        return False
    finally:
        consumer.close()


def drain(bootstrap, topic):
    """Every record of every partition from the start to the end: {partition: [(offset, value)]}."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{topic}-drain",
                         "enable.auto.commit": False, "enable.partition.eof": True,
                         "isolation.level": "read_uncommitted"})
    try:
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
        log, at_end = {p: [] for p in range(PARTITIONS)}, set()
        deadline = time.monotonic() + DEADLINE_S
        while len(at_end) < PARTITIONS:
            assert time.monotonic() < deadline, \
                f"final read: partitions {sorted(set(log) - at_end)} not read to their end"
            for message in consumer.consume(num_messages=1000, timeout=0.5):
                error = message.error()
                if error is not None and error.code() == KafkaError._PARTITION_EOF:
                    at_end.add(message.partition())
                elif error is not None:
                    raise AssertionError(f"final read: {error}")
                else:
                    log[message.partition()].append((message.offset(), message.value()))
        return log
    finally:
        consumer.close()


def committed(bootstrap, group, topic):
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "enable.auto.commit": False})
    try:
        found = consumer.committed([TopicPartition(topic, p) for p in range(PARTITIONS)],
                                   timeout=TIMEOUT_S)
        return {tp.partition: tp.offset for tp in found}
    finally:
        consumer.close()


def check_log(client_name, acks, log):
    """Every acknowledged record exactly once, at its acknowledged offset, in send order."""
    unacked = {idx: a for idx, a in acks.items() if not isinstance(a, tuple)}
    missing = [idx for idx in range(RECORDS) if idx not in acks]
    assert not unacked and not missing, \
        f"{len(unacked)} records failed (first: {next(iter(unacked.items()), None)}), " \
        f"{len(missing)} never answered: the producer did not carry on through the failover"
    for partition in range(PARTITIONS):
        want = [(acks[idx][1], value_of(client_name, idx)) for idx in range(RECORDS)
                if acks[idx][0] == partition]
        got = log[partition]
        if got != sorted(want):
            lost = sorted(set(want) - set(got))
            extra = sorted(set(got) - set(want))
            raise AssertionError(
                f"partition {partition}: {len(got)} records, {len(want)} acknowledged; lost "
                f"(offset, value) {lost[:3]}, unexpected {extra[:3]}"
                + ("" if lost or extra else "; out of order"))
        assert [v for _, v in sorted(want)] == [v for _, v in want], \
            f"partition {partition}: acknowledged offsets are not in send order"


def fold_group_reads(member, log):
    """The member's reads with every re-delivery from a committed offset folded; fails on a
    rewind to anywhere else. Returns {partition: [(offset, value)]} and the re-delivered count."""
    effective, redelivered = {p: [] for p in range(PARTITIONS)}, 0
    for partition, offset, value in member.seen:
        records = effective[partition]
        if records and offset <= records[-1][0]:
            # A member resumes at a committed offset (or the first record after it: raft control
            # batches and markers take offsets too).
            starts = {next((o for o, _ in log[partition] if o >= c), None)
                      for c in member.attempted[partition]}
            assert offset in starts, \
                f"partition {partition}: the group read offset {offset} again after " \
                f"{records[-1][0]}, not from a committed offset ({sorted(member.attempted[partition])[-5:]})"
            keep = [r for r in records if r[0] < offset]
            redelivered += len(records) - len(keep)
            effective[partition] = records = keep
        records.append((offset, value))
    return effective, redelivered


def progress(acks, producer, member):
    """Where the clients were, for a failure's message."""
    errors = [e for e in acks.snapshot().values() if not isinstance(e, tuple)]
    return (f"acknowledged {acks.acked_count()} of {RECORDS}, failed {len(errors)} "
            f"{errors[:1]}, producer error {producer.error!r}; group read {len(member.seen)}, "
            f"{member.commits} commits, commit errors {member.commit_errors[-2:]}, poll errors "
            f"{member.poll_errors[-2:]}, member error {member.error!r}")


def run_client(cluster, client_cls):
    """One client's scenario; returns a one-line summary or raises AssertionError."""
    brokers = cluster.brokers
    bootstrap = ",".join(b.bootstrap for b in brokers)
    client = client_cls(bootstrap)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic = f"compat-{client.name}-s12-{uuid.uuid4().hex[:8]}"
    group = f"{topic}-group"
    client.create_topic(topic)
    wait_until(lambda: fully_in_sync(admin, topic, brokers), DEADLINE_S,
               f"{topic}: every partition led, all {len(brokers)} brokers in sync")
    # Metadata names the assigned leader before its raft group elected it (FINDINGS #9): wait
    # for ListOffsets, which only an elected leader answers.
    wait_until(lambda: answer_offsets(bootstrap, topic), DEADLINE_S,
               f"{topic}: every partition's leader answering ListOffsets")
    acks = _Acks()
    member = _MemberThread(client, group, topic)
    producer = _ProducerThread(client, topic, acks)
    victim = None
    try:
        member.start()
        producer.start()
        wait_until(lambda: (acks.acked_count() >= KILL_AFTER_ACKED and member.commits > 0)
                   or producer.error or member.error, DEADLINE_S,
                   f"{KILL_AFTER_ACKED} records acknowledged and a group commit")
        assert producer.is_alive(), "the stream ended before the kill: raise RECORDS"
        leader = partitions_of(admin, topic).get(0, (-1, []))[0]
        victim = next((b for b in brokers if b.node_id == leader), None)
        assert victim is not None, f"partition 0's leader {leader} is not a broker of the run"
        victim.kill9()
        acked_at_kill = acks.acked_count()
        survivors = [b for b in brokers if b is not victim]
        producer.join(RECORDS / RATE_PER_S + DEADLINE_S + TIMEOUT_S)
        assert not producer.is_alive(), "the producer did not finish"
        assert producer.error is None, f"producer failed: {producer.error!r}"
        acked = acks.snapshot()
        log = drain(",".join(b.bootstrap for b in survivors), topic)
        check_log(client.name, acked, log)
        wanted = {v for _, v in sum(log.values(), [])}
        wait_until(lambda: wanted <= member.values() or member.error, DEADLINE_S,
                   "the group to read every acknowledged record")
        member.stop()
        effective, redelivered = fold_group_reads(member, log)
        for partition in range(PARTITIONS):
            assert effective[partition] == log[partition], \
                f"partition {partition}: the group read {len(effective[partition])} records " \
                f"(re-deliveries folded), the log holds {len(log[partition])}"
        ends = {p: records[-1][0] + 1 for p, records in log.items() if records}
        assert member.final_commit == ends, f"final commit {member.final_commit}, ends {ends}"
        survived = committed(",".join(b.bootstrap for b in survivors), group, topic)
        assert survived == ends, f"committed offsets {survived} after the kill, want {ends}"
        restarting, victim = victim, None
        restarting.restart([survivors[0].gossip_addr()])
        wait_until(lambda: sees_every_broker(restarting, brokers), DEADLINE_S,
                   f"the restarted broker {leader} to list every broker", 0.5)
        wait_until(lambda: caught_up(restarting, brokers, topic), DEADLINE_S,
                   f"the restarted broker {leader}'s replicas to hold what the others hold")
        # The leaders move back to it (every 10 s a leader offers its partition to the preferred
        # replica); a group coordinator moving then would hit whatever scenario runs next.
        wait_until(lambda: leaders_preferred(admin), DEADLINE_S,
                   "every partition led by its preferred replica again", 0.5)
        after = committed(bootstrap, group, topic)
        assert after == ends, f"committed offsets {after} after the restart, want {ends}"
        # Back in every partition's in-sync replicas (FINDINGS #8, fixed).
        wait_until(lambda: fully_in_sync(admin, topic, brokers), DEADLINE_S,
                   f"the restarted broker {leader} back in every in-sync replica set", 0.5)
        isr = {p: i for p, (_, i) in partitions_of(admin, topic).items()}
        return (f"killed broker {leader} (leader of partition 0) after {acked_at_kill} of "
                f"{RECORDS} records were acknowledged; all acknowledged once, in order; the group "
                f"made {member.commits} commits ({len(member.commit_errors)} failed, "
                f"{redelivered} records re-delivered from a committed offset, "
                f"{len(member.poll_errors)} transient poll errors); committed offsets {ends} "
                f"before and after the restart; in-sync replicas once it caught up: {isr}")
    except AssertionError as error:
        raise AssertionError(f"{error} [{progress(acks, producer, member)}]") from None
    finally:
        if member.is_alive():
            member.stop_event.set()
            member.join(DEADLINE_S + TIMEOUT_S)
        if victim is not None:  # a failed check: still give later scenarios the whole cluster
            victim.restart([b.gossip_addr() for b in brokers if b is not victim][:1])


def run(cluster):
    """Runs every client in turn; returns matrix rows (as the pytest plugin writes them)."""
    rows = []
    for client_cls in CLIENTS:
        test = f"harness/leader_kill.py::{SCENARIO}[{client_cls.name}]"
        started = time.monotonic()
        try:
            summary = run_client(cluster, client_cls)
        except Exception as error:  # AssertionError or a client's error: the cell fails
            rows.append({"client": client_cls.name, "scenario": SCENARIO, "status": "FAIL",
                         "test": test, "detail": f"{type(error).__name__}: {error}"[:300]})
            print(f"compat-tests: {SCENARIO} {client_cls.name}: FAIL: {error}", flush=True)
            continue
        rows.append({"client": client_cls.name, "scenario": SCENARIO, "status": "pass",
                     "test": test, "detail": ""})
        print(f"compat-tests: {SCENARIO} {client_cls.name}: pass in "
              f"{time.monotonic() - started:.0f} s: {summary}", flush=True)
    return rows
