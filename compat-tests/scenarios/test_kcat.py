"""Scenarios for kcat (Debian's kcat, on Debian's librdkafka): the invocations users type.

kcat has no admin commands, so topics that need a partition count or configs are created with
the confluent-kafka admin client (a helper, not the client under test); s2 and s9 are n/a.
"""
import json
import os
import signal
import subprocess
import time

import pytest

import scenarios
from adapters.confluent import ConfluentAdapter
from conftest import require_apis, served_apis, unique_topic, wait_until

CLIENT = "kcat"
CODECS = ("none", "gzip", "snappy", "lz4", "zstd")
TIMEOUT_S = 60


def kcat(bootstrap, *args, stdin=None, check=True):
    result = subprocess.run(["kcat", "-b", bootstrap, "-m", "15", *args], input=stdin,
                            capture_output=True, timeout=TIMEOUT_S)
    if check and result.returncode != 0:
        raise AssertionError(f"kcat {' '.join(args)} exited {result.returncode}: "
                             f"{result.stderr.decode(errors='replace')[-500:]}")
    return result


def consume_json(bootstrap, topic, *args):
    out = kcat(bootstrap, "-C", "-t", topic, "-e", "-J", *args).stdout.decode()
    return [json.loads(line) for line in out.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def helper(bootstrap):
    return ConfluentAdapter(bootstrap)


def make_topic(helper, bootstrap, scenario, partitions=1, configs=None):
    topic = unique_topic(CLIENT, scenario)
    if "CreateTopics" in served_apis(bootstrap):
        helper.create_topic(topic, partitions, configs)
        wait_until(lambda: helper.list_topics().get(topic) == partitions, TIMEOUT_S, "topic metadata")
    else:
        kcat(bootstrap, "-P", "-t", topic, "-p", "0", stdin=b"seed\n")
    return topic


def test_s1_metadata(bootstrap):
    topic = unique_topic(CLIENT, "s1")
    kcat(bootstrap, "-P", "-t", topic, stdin=b"hello\n")  # auto-creates the topic
    listing = kcat(bootstrap, "-L").stdout.decode()
    assert f'topic "{topic}" with' in listing, f"-L lacks {topic}:\n{listing[:500]}"
    host, port = bootstrap.rsplit(":", 1)
    assert f"at {host}:{port}" in listing, f"-L lacks broker {bootstrap}:\n{listing[:500]}"
    doc = json.loads(kcat(bootstrap, "-L", "-J", "-t", topic).stdout)
    # A single node lists itself; a cluster (compat-tests/run --cluster) every broker.
    assert bootstrap in [b["name"] for b in doc["brokers"]], doc["brokers"]
    [entry] = doc["topics"]
    assert entry["topic"] == topic and len(entry["partitions"]) >= 1, entry


def test_s2_create_topic():
    pytest.skip("n/a: kcat has no admin commands")


@pytest.mark.parametrize("codec", CODECS)
def test_s3_produce(bootstrap, helper, codec):
    topic = make_topic(helper, bootstrap, "s3")
    base = helper.end_offset(topic, 0)
    z = [] if codec == "none" else ["-z", codec]
    lines = b"k1:v1\nno-delim-key:\ntomb:\nk4:" + b"compressible " * 300 + b"\n"
    # -K: splits key:value; -Z turns the empty value into NULL (a tombstone); -H adds headers.
    kcat(bootstrap, "-P", "-t", topic, "-p", "0", "-K:", "-Z", "-H", "h1=x", "-H", "h2=", *z,
         stdin=lines)
    kcat(bootstrap, "-P", "-t", topic, "-p", "0", "-k", "fixed", *z, stdin=b"a\nb\n")
    got = consume_json(bootstrap, topic, "-p", "0", "-o", str(base))
    want = [("k1", "v1"), ("no-delim-key", None), ("tomb", None),
            ("k4", "compressible " * 300), ("fixed", "a"), ("fixed", "b")]
    assert [(m["key"], m["payload"]) for m in got] == want, got[:3]
    assert [m["offset"] for m in got] == list(range(base, base + 6))
    for m in got[:4]:
        assert m["headers"] == ["h1", "x", "h2", ""], m
    formatted = kcat(bootstrap, "-C", "-t", topic, "-p", "0", "-o", str(base), "-c", "1", "-e",
                     "-f", "%t|%p|%o|%k|%S|%h|%K\n").stdout.decode()
    assert formatted == f"{topic}|0|{base}|k1|2|h1=x,h2=|2\n", formatted


def test_s4_consume_positions(bootstrap, helper):
    topic = make_topic(helper, bootstrap, "s4")
    base = helper.end_offset(topic, 0)
    kcat(bootstrap, "-P", "-t", topic, "-p", "0", stdin=b"".join(b"v%d\n" % i for i in range(5)))
    first = consume_json(bootstrap, topic, "-p", "0", "-o", str(base))
    wait_until(lambda: time.time() * 1000 > first[-1]["ts"] + 2, 5, "the clock to move on")
    kcat(bootstrap, "-P", "-t", topic, "-p", "0", stdin=b"".join(b"v%d\n" % i for i in range(5, 10)))

    everything = consume_json(bootstrap, topic, "-p", "0", "-o", "beginning")[-10:]
    assert [m["payload"] for m in everything] == [f"v{i}" for i in range(10)]
    assert [m["payload"] for m in consume_json(bootstrap, topic, "-p", "0", "-o", str(base + 5))] \
        == [f"v{i}" for i in range(5, 10)]
    assert [m["payload"] for m in consume_json(bootstrap, topic, "-p", "0", "-o", "-3")] \
        == ["v7", "v8", "v9"]
    ts = everything[5]["ts"]
    assert everything[4]["ts"] < ts, "the two batches share a timestamp"
    assert [m["payload"] for m in consume_json(bootstrap, topic, "-p", "0", "-o", f"s@{ts}")] \
        == [f"v{i}" for i in range(5, 10)]
    query = kcat(bootstrap, "-Q", "-t", f"{topic}:0:{ts}").stdout.decode()
    assert f"offset {base + 5}" in query, f"-Q answered {query!r}, want offset {base + 5}"

    tail = subprocess.Popen(["kcat", "-b", bootstrap, "-C", "-t", topic, "-p", "0", "-o", "end",
                             "-c", "1", "-f", "%o %s\n"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + TIMEOUT_S
        idx = 0
        while tail.poll() is None:
            assert time.monotonic() < deadline, "-o end: nothing arrived"
            kcat(bootstrap, "-P", "-t", topic, "-p", "0", stdin=b"marker-%d\n" % idx)
            idx += 1
            try:
                tail.wait(0.5)
            except subprocess.TimeoutExpired:
                pass
        offset, value = tail.stdout.read().decode().split()
        assert int(offset) >= base + 10 and value.startswith("marker"), (offset, value)
    finally:
        if tail.poll() is None:
            tail.kill()
        tail.wait()


def test_s5_order_10k(bootstrap, helper):
    produce_keyed(bootstrap, helper, "s5", 10_000)


def produce_keyed(bootstrap, helper, scenario, count, *producer_args):
    """`count` keyed records over 4 partitions with `kcat -P -K:`, read back in send order;
    returns the topic and {partition: records it got}."""
    topic = make_topic(helper, bootstrap, scenario, partitions=4)
    partitions = helper.list_topics()[topic]
    bases = {p: helper.end_offset(topic, p) for p in range(partitions)}
    lines = b"".join(b"key-%d:%05d-%s\n" % (i % 101, i, os.urandom(6).hex().encode())
                     for i in range(count))
    kcat(bootstrap, "-P", "-t", topic, "-K:", *producer_args, stdin=lines)
    out = kcat(bootstrap, "-C", "-t", topic, "-e", "-o", "beginning", "-f", "%p %o %k %s\n")
    by_partition = {}
    for line in out.stdout.decode().splitlines():
        partition, offset, key, value = line.split(" ")
        if int(offset) >= bases[int(partition)]:
            by_partition.setdefault(int(partition), []).append((int(offset), key, value))
    sent = {value: key for key, value in (ln.split(":") for ln in lines.decode().splitlines())}
    seen = 0
    for partition, entries in by_partition.items():
        offsets = [o for o, _, _ in entries]
        assert offsets == list(range(bases[partition], bases[partition] + len(entries))), \
            f"partition {partition}: offsets not contiguous"
        idxs = [int(v.split("-")[0]) for _, _, v in entries]
        assert idxs == sorted(idxs), f"partition {partition}: records out of send order"
        for _, key, value in entries:
            assert sent.get(value) == key, f"partition {partition}: unexpected record {key}:{value}"
        assert len({v for _, _, v in entries}) == len(entries), f"partition {partition}: duplicates"
        seen += len(entries)
    assert seen == count, f"consumed {seen} records, produced {count}"
    return topic, {p: len(entries) for p, entries in by_partition.items()}


def test_s6_max_message(bootstrap, helper):
    require_apis(bootstrap, "CreateTopics")
    limit = 32768
    topic = make_topic(helper, bootstrap, "s6", configs={"max.message.bytes": str(limit)})
    near = os.urandom((limit - 400) // 2).hex().encode()
    kcat(bootstrap, "-P", "-t", topic, "-p", "0", stdin=near + b"\n")
    over = kcat(bootstrap, "-P", "-t", topic, "-p", "0",
                stdin=os.urandom(limit // 2 + 2000).hex().encode() + b"\n", check=False)
    err = over.stderr.decode(errors="replace")
    assert over.returncode != 0 or "too large" in err.lower(), \
        f"an over-limit record was accepted (exit {over.returncode}): {err[-300:]}"
    assert "too large" in err.lower(), f"unclear error for an over-limit record: {err[-300:]}"
    kcat(bootstrap, "-P", "-t", topic, "-p", "0", stdin=b"after\n")
    got = consume_json(bootstrap, topic, "-p", "0", "-o", "beginning")
    assert [m["payload"] for m in got] == [near.decode(), "after"]


class _GroupMember:
    """`kcat -G group topic` in the background; -v shows its rebalances on stderr."""

    def __init__(self, bootstrap, group, topic, log_dir, name, *extra):
        self.out_path = os.path.join(log_dir, f"{name}.out")
        self.err_path = os.path.join(log_dir, f"{name}.err")
        self.proc = subprocess.Popen(
            ["kcat", "-b", bootstrap, "-G", group, "-X", "auto.offset.reset=earliest", "-f", "%p %o %s\n", "-u",
             "-X", "auto.commit.interval.ms=200", *extra, topic],
            stdout=open(self.out_path, "wb"), stderr=open(self.err_path, "wb"))

    def assigned(self):
        """Partitions of the most recent assignment kcat reported."""
        with open(self.err_path, encoding="utf-8", errors="replace") as err:
            lines = [ln for ln in err if "rebalanced" in ln and "assigned:" in ln]
        if not lines:
            return set()
        return {int(part.split("[")[1].split("]")[0])
                for part in lines[-1].split("assigned:")[1].split(",") if "[" in part}

    def seen(self):
        with open(self.out_path, encoding="utf-8", errors="replace") as out:
            return [ln.split(" ", 2)[2].rstrip("\n") for ln in out if ln.count(" ") >= 2]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # kcat commits and leaves the group
            self.proc.wait(TIMEOUT_S)


def test_s7_group_takeover(bootstrap, helper, tmp_path):
    require_apis(bootstrap, "CreateTopics", *scenarios.GROUP_APIS)
    topic = make_topic(helper, bootstrap, "s7", partitions=4)
    group = f"{topic}-group"
    kcat(bootstrap, "-P", "-t", topic, "-K:",
         stdin=b"".join(b"k%d:first-%d\n" % (i, i) for i in range(400)))
    members = [_GroupMember(bootstrap, group, topic, tmp_path, f"m{i}") for i in range(2)]
    try:
        everything = {0, 1, 2, 3}

        def shared():
            a, b = members[0].assigned(), members[1].assigned()
            return a and b and not (a & b) and (a | b) == everything
        wait_until(shared, TIMEOUT_S, "both members to share the partitions", 0.2)
        members[0].stop()
        wait_until(lambda: members[1].assigned() == everything, TIMEOUT_S,
                   "the remaining member to take over", 0.2)
        kcat(bootstrap, "-P", "-t", topic, "-K:",
             stdin=b"".join(b"k%d:second-%d\n" % (i, i) for i in range(400)))
        want = {f"first-{i}" for i in range(400)} | {f"second-{i}" for i in range(400)}
        wait_until(lambda: want <= set(members[0].seen()) | set(members[1].seen()), TIMEOUT_S,
                   "every record consumed by the group", 0.2)
    finally:
        for member in members:
            member.stop()


def test_s8_commit_resume(bootstrap, helper, tmp_path):
    require_apis(bootstrap, *scenarios.GROUP_APIS)
    topic = make_topic(helper, bootstrap, "s8")
    group = f"{topic}-group"
    kcat(bootstrap, "-P", "-t", topic, "-p", "0", stdin=b"".join(b"v%d\n" % i for i in range(100)))
    # No -o with -G: kcat would apply it to every assigned partition, overriding the committed offset.
    earliest = ("-X", "auto.offset.reset=earliest")
    first = kcat(bootstrap, "-G", group, *earliest, "-c", "50", "-f", "%o %s\n", topic)
    offsets = [int(line.split()[0]) for line in first.stdout.decode().splitlines()]
    assert len(offsets) == 50, f"first run consumed {len(offsets)} records"
    second = kcat(bootstrap, "-G", group, *earliest, "-c", "10", "-f", "%o %s\n", topic)
    resumed = [int(line.split()[0]) for line in second.stdout.decode().splitlines()]
    assert resumed[0] == offsets[-1] + 1, f"restart resumed at {resumed[0]}, want {offsets[-1] + 1}"


def test_s9_delete_topic():
    pytest.skip("n/a: kcat has no admin commands")


def test_s10_idempotent_producer(bootstrap, helper):
    require_apis(bootstrap, *scenarios.IDEMPOTENCE_APIS)
    topic, counts = produce_keyed(bootstrap, helper, "s10", scenarios.IDEMPOTENT_RECORDS,
                                  "-X", "enable.idempotence=true")
    scenarios.check_idempotent_producer(bootstrap, topic, counts)


def test_s11_transactions():
    pytest.skip("n/a: kcat cannot produce in a transaction (it never begins or commits one)")
