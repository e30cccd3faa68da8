"""Start a Tidelog broker from the current build on 127.0.0.1:0 with its own temp data dir."""
import json
import os
import re
import signal
import subprocess
import tempfile
import time

LISTENING = re.compile(r"listening addr=(\S+)")
GOSSIP = re.compile(r"cluster member started .*gossip=(\S+)")


def build(repo):
    """`cargo build --bin tidelog` (a no-op when up to date); returns the binary's path."""
    subprocess.run(["cargo", "build", "--bin", "tidelog"], cwd=repo, check=True)
    meta = subprocess.run(["cargo", "metadata", "--format-version", "1", "--no-deps"], cwd=repo,
                          check=True, capture_output=True, text=True)
    return os.path.join(json.loads(meta.stdout)["target_directory"], "debug", "tidelog")


class Broker:
    def __init__(self, binary, run_dir, default_partitions=4, start_timeout_s=60, cluster=None,
                 settings=None, name="broker"):
        """`cluster`: None for a single node, else a dict of node_id, bootstrap_expect, seeds.
        `settings`: more TIDELOG_ variables; `name`: of the log file (name.log, name-N.log)."""
        self.data_dir = tempfile.mkdtemp(prefix=f"{name}-", dir=run_dir)
        log_name = f"{name}.log" if cluster is None else f"{name}-{cluster['node_id']}.log"
        self.log_path = os.path.join(run_dir, log_name)
        # Session timeouts down to 1 s, as kafka-python's own test broker allows
        # (group.min.session.timeout.ms=1000 in its servers/resources/default/kafka.properties;
        # its test_group uses session_timeout_ms=3000). Tidelog's default minimum is Kafka's 6 s.
        # TIDELOG_COMPAT_CACHE is ours: the broker refuses unknown TIDELOG_ variables.
        env = {k: v for k, v in os.environ.items() if not k.startswith("TIDELOG_COMPAT_")}
        env.update(TIDELOG_TOPICS__DEFAULT_PARTITIONS=str(default_partitions),
                   TIDELOG_GROUPS__SESSION_TIMEOUT_MS_MIN="1000")
        if cluster is not None:
            env.update(TIDELOG_NODE_ID=str(cluster["node_id"]),
                       TIDELOG_CLUSTER__LISTEN="127.0.0.1:0",
                       TIDELOG_CLUSTER__BOOTSTRAP_EXPECT=str(cluster["bootstrap_expect"]),
                       TIDELOG_CLUSTER__SEEDS=",".join(cluster["seeds"]),
                       TIDELOG_CLUSTER__GOSSIP_INTERVAL_MS="100")
        env.update(settings or {})
        self.binary, self.env, self.start_timeout_s = binary, env, start_timeout_s
        self.node_id = None if cluster is None else cluster["node_id"]
        self.log = open(self.log_path, "wb")
        self.bootstrap = self._spawn("127.0.0.1:0", 0)

    def _spawn(self, listen, log_from):
        """Starts the process on `listen` and waits for the `listening addr=` line that follows
        byte `log_from` of the log; returns that address."""
        self.proc = subprocess.Popen(
            [self.binary, "serve", "--data-dir", self.data_dir, "--listen", listen],
            stdout=self.log, stderr=self.log, env=self.env)
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"broker exited with {self.proc.returncode}; see {self.log_path}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"broker did not log 'listening addr=' in {self.start_timeout_s}s")
            with open(self.log_path, "rb") as log:
                log.seek(log_from)
                found = LISTENING.search(log.read().decode("utf-8", errors="replace"))
            if found:
                return found.group(1)
            time.sleep(0.05)

    def kill9(self):
        """SIGKILL (no chance to flush or hand anything over) and reap."""
        self.proc.kill()
        self.proc.wait()

    def restart(self, seeds=None):
        """A new process on the same data dir and Kafka port (so clients and the run's bootstrap
        address keep working), appending to the same log; `seeds` replaces the gossip seeds
        (the broker first started without any)."""
        assert self.proc.poll() is not None, "restart needs a stopped broker"
        if seeds is not None:
            self.env["TIDELOG_CLUSTER__SEEDS"] = ",".join(seeds)
        self.log.write(b"\n----- restart -----\n")
        self.log.flush()
        listening = self._spawn(self.bootstrap, self.log.tell())
        if listening != self.bootstrap:
            raise RuntimeError(f"restarted broker listens on {listening}, not {self.bootstrap}")

    def gossip_addr(self, timeout_s=60):
        """The gossip address a cluster member logged (a seed for the others); the last one,
        as a restart logs another."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with open(self.log_path, encoding="utf-8", errors="replace") as log:
                found = GOSSIP.findall(log.read())
            if found:
                return found[-1].strip('"')
            time.sleep(0.05)
        raise RuntimeError(f"no 'cluster member started' line in {self.log_path}")

    def alive(self):
        return self.proc.poll() is None

    def stop(self, timeout_s=30):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


class Cluster:
    """`count` brokers of one cluster (node ids 1..count), formed by gossip from broker 1."""

    def __init__(self, binary, run_dir, count, form_timeout_s=120, settings=None, name="broker"):
        self.brokers = []
        try:
            first = Broker(binary, run_dir, settings=settings, name=name,
                           cluster={"node_id": 1, "bootstrap_expect": count, "seeds": []})
            self.brokers.append(first)
            seed = first.gossip_addr()
            for node_id in range(2, count + 1):
                self.brokers.append(Broker(binary, run_dir, settings=settings, name=name, cluster={
                    "node_id": node_id, "bootstrap_expect": count, "seeds": [seed]}))
            # Clients bootstrap from one broker and find the others in Metadata, as users do.
            self.bootstrap = first.bootstrap
            self._wait_formed(count, form_timeout_s)
        except BaseException:
            self.stop()
            raise

    def _wait_formed(self, count, timeout_s):
        from confluent_kafka.admin import AdminClient  # the venv's client
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                formed = all(
                    len(AdminClient({"bootstrap.servers": b.bootstrap}).list_topics(
                        timeout=5).brokers) == count
                    for b in self.brokers)
            except Exception:  # not answering yet
                formed = False
            if formed:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the {count} brokers did not form one cluster in {timeout_s}s")
            time.sleep(0.2)

    @property
    def log_path(self):
        return ", ".join(b.log_path for b in self.brokers)

    @property
    def data_dir(self):
        return os.path.dirname(self.brokers[0].data_dir) if self.brokers else None

    def alive(self):
        return all(b.alive() for b in self.brokers)

    def stop(self):
        codes = [b.stop() for b in self.brokers]
        return next((c for c in codes if c), 0)

    def data_dirs(self):
        return [b.data_dir for b in self.brokers]
