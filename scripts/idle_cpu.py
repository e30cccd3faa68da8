"""The measuring half of scripts/idle-cpu: three release brokers in cluster mode, N partitions
with replication factor 3, then each broker's idle CPU (% of one core) and RSS.
Every broker it starts is killed by PID when it ends, however it ends."""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from confluent_kafka.admin import AdminClient, NewTopic

FORM_TIMEOUT_S = 120
TOPIC_TIMEOUT_S = 300
POLL_S = 0.2
PARTITIONS_PER_TOPIC = 100
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


class Broker:
    def __init__(self, binary, root, node_id, seeds, started):
        self.node_id = node_id
        self.dir = os.path.join(root, f"n{node_id}")
        os.makedirs(self.dir)
        self.log_path = os.path.join(root, f"n{node_id}.log")
        env = {k: v for k, v in os.environ.items() if not k.startswith("TIDELOG_")}
        env.update(
            {
                "NO_COLOR": "1",
                "TIDELOG_LOG": os.environ.get("IDLE_CPU_LOG", "info"),
                "TIDELOG_NODE_ID": str(node_id),
                "TIDELOG_CLUSTER__LISTEN": "127.0.0.1:0",
                "TIDELOG_CLUSTER__BOOTSTRAP_EXPECT": "3",
                "TIDELOG_CLUSTER__SEEDS": seeds,
                "TIDELOG_CLUSTER__GOSSIP_INTERVAL_MS": "100",
                "TIDELOG_CLUSTER__BROKER_SESSION_TIMEOUT_MS": "3000",
            }
        )
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [binary, "serve", "--data-dir", self.dir, "--listen", "127.0.0.1:0"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        started.append(self)
        self.addr = self.wait_for_log(r"listening addr=(\S+)")

    def wait_for_log(self, pattern):
        deadline = time.monotonic() + FORM_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"broker {self.node_id} exited: {self.tail()}")
            with open(self.log_path, errors="replace") as log:
                found = re.search(pattern, log.read())
            if found:
                return found.group(1).strip('"')
            time.sleep(POLL_S)
        raise RuntimeError(f"broker {self.node_id} never logged {pattern!r}: {self.tail()}")

    def tail(self, lines=20):
        with open(self.log_path, errors="replace") as log:
            return "".join(log.readlines()[-lines:])

    def cpu_ticks(self):
        with open(f"/proc/{self.process.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)

    def rss_bytes(self):
        with open(f"/proc/{self.process.pid}/statm") as statm:
            return int(statm.read().split()[1]) * PAGE_BYTES

    def kill(self):
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()


def admin(brokers):
    return AdminClient(
        {"bootstrap.servers": ",".join(b.addr for b in brokers), "log_level": 0}
    )


def leaderless(client, topics, expected):
    """How many of the expected partitions have no leader (or are not listed yet)."""
    metadata = client.list_topics(timeout=10)
    led = 0
    for name in topics:
        topic = metadata.topics.get(name)
        if topic is None or topic.error is not None:
            continue
        led += sum(1 for p in topic.partitions.values() if p.leader >= 0)
    return expected - led


def measure_failover(brokers, topics, count):
    """Kills broker 1 (-9) and times until Metadata names a live leader for every partition."""
    victim, survivors = brokers[0], brokers[1:]
    client = admin(survivors)
    before = client.list_topics(timeout=10)
    led_before = sum(
        1
        for name in topics
        for p in before.topics[name].partitions.values()
        if p.leader == victim.node_id
    )
    victim.kill()
    killed = time.monotonic()
    deadline = killed + TOPIC_TIMEOUT_S
    while True:
        metadata = client.list_topics(timeout=10)
        stale = sum(
            1
            for name in topics
            for p in metadata.topics[name].partitions.values()
            if p.leader < 0 or p.leader == victim.node_id
        )
        if stale == 0:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"{stale} partitions without a live leader after the kill")
        time.sleep(0.1)
    print(f"failover: broker {victim.node_id} (leader of {led_before} of {count} partitions) "
          f"killed with SIGKILL; every partition named a live leader after "
          f"{time.monotonic() - killed:.1f} s")


def create_partitions(brokers, count):
    client = admin(brokers)
    topics = []
    left = count
    while left > 0:
        size = min(PARTITIONS_PER_TOPIC, left)
        name = f"idle-{len(topics)}"
        futures = client.create_topics(
            [NewTopic(name, num_partitions=size, replication_factor=3)],
            operation_timeout=TOPIC_TIMEOUT_S,
            request_timeout=TOPIC_TIMEOUT_S,
        )
        futures[name].result(timeout=TOPIC_TIMEOUT_S)
        topics.append(name)
        left -= size
    deadline = time.monotonic() + TOPIC_TIMEOUT_S
    while True:
        missing = leaderless(client, topics, count)
        if missing == 0:
            return topics
        if time.monotonic() > deadline:
            raise RuntimeError(f"{missing} partitions still without a leader")
        time.sleep(1)
    return topics


def form(binary, root, brokers):
    """Starts three brokers into `brokers` (so the caller can stop them whatever happens)."""
    first = Broker(binary, root, 1, "", brokers)
    seeds = first.wait_for_log(r"cluster member started.*?gossip=(\S+)")
    for node_id in (2, 3):
        Broker(binary, root, node_id, seeds, brokers)
    deadline = time.monotonic() + FORM_TIMEOUT_S
    while True:
        try:
            metadata = admin(brokers).list_topics(timeout=5)
            if len(metadata.brokers) == 3 and metadata.controller_id >= 0:
                return
        except Exception:  # noqa: BLE001 - the cluster is still forming
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the cluster did not form")
        time.sleep(POLL_S)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bin", required=True)
    parser.add_argument("--partitions", type=int, default=1000)
    parser.add_argument("--settle-secs", type=float, default=20)
    parser.add_argument("--sample-secs", type=float, default=30)
    parser.add_argument("--keep-logs", action="store_true")
    parser.add_argument("--failover", action="store_true",
                        help="then kill broker 1 and time until every partition has a live leader")
    args = parser.parse_args()

    root = tempfile.mkdtemp(prefix="tidelog-idle-cpu-")
    brokers = []

    def stop(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        started = time.monotonic()
        form(args.bin, root, brokers)
        print(f"cluster formed in {time.monotonic() - started:.1f} s "
              f"(pids {[b.process.pid for b in brokers]})", flush=True)
        started = time.monotonic()
        topics = create_partitions(brokers, args.partitions)
        print(f"{args.partitions} partitions (RF 3) led after "
              f"{time.monotonic() - started:.1f} s; settling {args.settle_secs:.0f} s", flush=True)
        time.sleep(args.settle_secs)
        before = [b.cpu_ticks() for b in brokers]
        began = time.monotonic()
        time.sleep(args.sample_secs)
        elapsed = time.monotonic() - began
        after = [b.cpu_ticks() for b in brokers]
        for broker, b0, b1 in zip(brokers, before, after):
            if broker.process.poll() is not None:
                raise RuntimeError(f"broker {broker.node_id} exited: {broker.tail()}")
            percent = 100.0 * (b1 - b0) / CLOCK_TICKS / elapsed
            rss = broker.rss_bytes() / (1 << 20)
            print(f"broker {broker.node_id}: {percent:5.1f}% of one core, RSS {rss:.0f} MiB "
                  f"(idle, {args.partitions} partitions RF 3, {elapsed:.0f} s sample)")
        if args.failover:
            measure_failover(brokers, topics, args.partitions)
    finally:
        for broker in brokers:
            broker.kill()
        if args.keep_logs:
            print(f"logs and data kept in {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
