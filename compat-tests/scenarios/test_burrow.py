"""Burrow, the consumer-lag monitor (Debian's `burrow` 1.2.1), against Tidelog: it reads committed
offsets straight from `__consumer_offsets` (so they must be in Kafka's record format) and the
partitions' ends with ListOffsets v0, and must report the lag of a real group.

Burrow 1.2 needs a ZooKeeper for its own coordination: the test runs Debian's `zookeeper`
(standalone, on a free port, in a temp dir). compat-tests/setup installs both packages.

Run: compat-tests/setup, start a broker, then
  /var/tmp/tidelog-compat/venv/bin/python -m pytest compat-tests/scenarios/test_burrow.py --bootstrap HOST:PORT
"""
import json
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time
import urllib.request
import uuid

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import wait_until

BURROW = shutil.which("Burrow") or "/usr/bin/Burrow"
ZOOKEEPER_CLASSPATH = "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar"
DEADLINE_S = 120
RECORDS_PER_PARTITION = 100
COMMITTED = {0: 60, 1: 30}


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def zookeeper_serves(port):
    """Opens a ZooKeeper session (the ConnectRequest handshake): true once the server hands out
    session ids, which is later than when its port accepts connections."""
    request = struct.pack(">iqiq", 0, 0, 6000, 0) + struct.pack(">i", 16) + bytes(16)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            conn.sendall(struct.pack(">i", len(request)) + request)
            answer = conn.recv(4 + 4 + 4 + 8)
            if len(answer) < 20:
                return False
            _, _protocol, _timeout, session_id = struct.unpack(">iiiq", answer[:20])
            return session_id != 0
    except OSError:
        return False


def require_tools():
    missing = [what for what, path in (("burrow", BURROW), ("java", shutil.which("java") or ""),
                                       ("zookeeper", "/usr/share/java/zookeeper.jar"))
               if not os.path.exists(path)]
    if missing:
        pytest.skip("n/a: not installed: " + ", ".join(missing)
                    + " (apt-get install burrow zookeeper; compat-tests/setup does)")


class Process:
    """A child process with its output in a log file; stopped with SIGTERM, then SIGKILL."""

    def __init__(self, command, log_path, cwd):
        self.log_path = log_path
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen(command, cwd=cwd, stdout=self.log, stderr=subprocess.STDOUT)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def tail(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as log:
            return log.read()[-3000:]


@pytest.fixture
def workdir():
    path = tempfile.mkdtemp(prefix="compat-burrow-")
    yield path
    if not os.environ.get("COMPAT_KEEP"):
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def zookeeper(workdir):
    require_tools()
    port = free_port()
    data = os.path.join(workdir, "zookeeper")
    os.makedirs(data)
    zk = Process(["java", "-cp", ZOOKEEPER_CLASSPATH,
                  "org.apache.zookeeper.server.ZooKeeperServerMain", str(port), data],
                 os.path.join(workdir, "zookeeper.log"), workdir)
    try:
        wait_until(lambda: zookeeper_serves(port), 60, "ZooKeeper to serve sessions", 0.5)
        yield port
    finally:
        zk.stop()


def burrow_config(workdir, bootstrap, zookeeper_port, http_port):
    return f"""
[general]
pidfile="{workdir}/burrow.pid"
[logging]
level="info"
[zookeeper]
servers=["127.0.0.1:{zookeeper_port}"]
timeout=6
root-path="/burrow"
[client-profile.tidelog]
client-id="burrow"
kafka-version="2.0.0"
[cluster.tidelog]
class-name="kafka"
servers=["{bootstrap}"]
client-profile="tidelog"
topic-refresh=5
offset-refresh=2
[consumer.tidelog]
class-name="kafka"
cluster="tidelog"
servers=["{bootstrap}"]
client-profile="tidelog"
offsets-topic="__consumer_offsets"
start-latest=false
[httpserver.default]
address="127.0.0.1:{http_port}"
[storage.default]
class-name="inmemory"
workers=4
intervals=10
expire-group=604800
min-distance=1
"""


class Committer(threading.Thread):
    """Commits the same offsets every second, as a consumer with auto-commit does, so Burrow
    sees a commit after it learned the partitions (it drops offsets of unknown partitions)."""

    def __init__(self, bootstrap, group, topic):
        super().__init__(daemon=True)
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                                  "enable.auto.commit": False})
        self.offsets = [TopicPartition(topic, p, o) for p, o in COMMITTED.items()]
        self.stopping = threading.Event()
        self.error = None

    def run(self):
        try:
            while not self.stopping.is_set():
                self.consumer.commit(offsets=self.offsets, asynchronous=False)
                self.stopping.wait(1)
        except Exception as error:  # reported by the test
            self.error = error
        finally:
            self.consumer.close()

    def stop(self):
        self.stopping.set()
        self.join(30)


def lag(http_port, group):
    url = f"http://127.0.0.1:{http_port}/v3/kafka/tidelog/consumer/{group}/lag"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.load(response).get("status") or {}
    except OSError:
        return {}


def test_burrow_reports_the_lag_of_a_group_from_consumer_offsets(bootstrap, zookeeper, workdir):
    topic = f"compat-burrow-{uuid.uuid4().hex[:8]}"
    group = f"{topic}-group"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=len(COMMITTED),
                                  replication_factor=1)])[topic].result(30)
    producer = Producer({"bootstrap.servers": bootstrap})
    for partition in COMMITTED:
        for i in range(RECORDS_PER_PARTITION):
            producer.produce(topic, value=f"v{i}".encode(), partition=partition)
    assert producer.flush(30) == 0
    committer = Committer(bootstrap, group, topic)
    committer.start()
    http_port = free_port()
    with open(os.path.join(workdir, "burrow.toml"), "w", encoding="utf-8") as config:
        config.write(burrow_config(workdir, bootstrap, zookeeper, http_port))
    burrow = Process([BURROW, "--config-dir", workdir], os.path.join(workdir, "burrow.log"),
                     workdir)
    want = {p: RECORDS_PER_PARTITION - o for p, o in COMMITTED.items()}
    try:
        def reported():
            status = lag(http_port, group)
            lags = {p["partition"]: p["current_lag"] for p in status.get("partitions") or []
                    if p.get("topic") == topic}
            return status if lags == want and status.get("totallag") == sum(want.values()) else None
        try:
            status = wait_until(reported, DEADLINE_S, f"Burrow to report the lag of {group}", 1)
        except AssertionError as error:
            raise AssertionError(f"{error}\nBurrow's log:\n{burrow.tail()}") from None
        assert status["group"] == group
    finally:
        burrow.stop()
        committer.stop()
    assert committer.error is None, f"committing failed: {committer.error!r}"
