"""Start a Tidelog broker from the current build on 127.0.0.1:0 with its own temp data dir."""
import json
import os
import re
import signal
import subprocess
import tempfile
import time

LISTENING = re.compile(r"listening addr=(\S+)")


def build(repo):
    """`cargo build --bin tidelog` (a no-op when up to date); returns the binary's path."""
    subprocess.run(["cargo", "build", "--bin", "tidelog"], cwd=repo, check=True)
    meta = subprocess.run(["cargo", "metadata", "--format-version", "1", "--no-deps"], cwd=repo,
                          check=True, capture_output=True, text=True)
    return os.path.join(json.loads(meta.stdout)["target_directory"], "debug", "tidelog")


class Broker:
    def __init__(self, binary, run_dir, default_partitions=4, start_timeout_s=60):
        self.data_dir = tempfile.mkdtemp(prefix="broker-", dir=run_dir)
        self.log_path = os.path.join(run_dir, "broker.log")
        # Session timeouts down to 1 s, as kafka-python's own test broker allows
        # (group.min.session.timeout.ms=1000 in its servers/resources/default/kafka.properties;
        # its test_group uses session_timeout_ms=3000). Tidelog's default minimum is Kafka's 6 s.
        # TIDELOG_COMPAT_CACHE is ours: the broker refuses unknown TIDELOG_ variables.
        env = {k: v for k, v in os.environ.items() if not k.startswith("TIDELOG_COMPAT_")}
        env.update(TIDELOG_TOPICS__DEFAULT_PARTITIONS=str(default_partitions),
                   TIDELOG_GROUPS__SESSION_TIMEOUT_MS_MIN="1000")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [binary, "serve", "--data-dir", self.data_dir, "--listen", "127.0.0.1:0"],
            stdout=self.log, stderr=self.log, env=env)
        deadline = time.monotonic() + start_timeout_s
        self.bootstrap = None
        while self.bootstrap is None:
            if self.proc.poll() is not None:
                raise RuntimeError(f"broker exited with {self.proc.returncode}; see {self.log_path}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"broker did not log 'listening addr=' in {start_timeout_s}s")
            with open(self.log_path, encoding="utf-8", errors="replace") as log:
                found = LISTENING.search(log.read())
            if found:
                self.bootstrap = found.group(1)
            else:
                time.sleep(0.05)

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
