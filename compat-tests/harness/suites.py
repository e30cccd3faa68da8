"""Run the clients' own test suites (librdkafka's, kafka-python's) from their allow-lists.

Allow-list files hold one entry per line (`#` starts a comment); skip-lists hold
`<entry> <reason>` for every test left out. A suite test on neither list is reported, so a test
cannot be dropped silently.
"""
import collections
import concurrent.futures
import os
import re
import subprocess
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field


@dataclass
class SuiteResult:
    name: str
    passed: list = field(default_factory=list)   # [(test, seconds)]
    failed: list = field(default_factory=list)   # [(test, seconds, detail)]
    skipped: list = field(default_factory=list)  # [(test, reason)] skipped at run time
    excluded: int = 0
    unlisted: list = field(default_factory=list)
    # Run twice after a failure that matched a documented client race (FINDINGS #7).
    retried: list = field(default_factory=list)
    seconds: float = 0.0
    note: str = ""

    @property
    def ok(self):
        return not self.failed and not self.unlisted


def read_list(path):
    """{entry: rest-of-line} from an allow- or skip-list."""
    entries = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.split("#", 1)[0].strip() if not line.lstrip().startswith("#") else ""
            if line:
                name, _, rest = line.partition(" ")
                entries[name] = rest.strip()
    return entries


# The tests.allow option of a librdkafka test run without quick mode.
FULL = "full"


def run_librdkafka(here, cache, bootstrap, run_dir, jobs=2, per_test_timeout_s=300):
    tests_dir = os.path.join(cache, "librdkafka", "librdkafka-2.0.2", "tests")
    allow = read_list(os.path.join(here, "librdkafka", "tests.allow"))
    skip = read_list(os.path.join(here, "librdkafka", "tests.skip"))
    result = SuiteResult("librdkafka 2.0.2 test suite", excluded=len(skip))
    present = sorted({name[:4] for name in os.listdir(tests_dir)
                      if re.match(r"^\d{4}-.*\.(c|cpp)$", name)})
    result.unlisted = [t for t in present if t not in allow and t not in skip]
    log_dir = os.path.join(run_dir, "librdkafka")
    os.makedirs(log_dir, exist_ok=True)
    conf = os.path.join(log_dir, "test.conf")
    with open(conf, "w", encoding="utf-8") as handle:
        handle.write(f"bootstrap.servers={bootstrap}\ntest.topic.random=true\n")
    env = dict(os.environ, RDKAFKA_TEST_CONF=conf, TEST_KAFKA_VERSION="3.9.0", BROKERS=bootstrap,
               KAFKA_PATH=os.path.join(here, "librdkafka", "kafka"),
               COMPAT_PYTHON=os.path.join(cache, "venv", "bin", "python"))

    unknown = {test: opt for test, opt in allow.items() if opt not in ("", FULL)}
    if unknown:
        raise ValueError(f"tests.allow: unknown options {unknown} (only '{FULL}')")

    def one(test):
        started = time.monotonic()
        log_path = os.path.join(log_dir, f"{test}.log")
        # `full` tests run without quick mode (-Q), in which they skip sub-tests, and get
        # twice the time.
        full = allow[test] == FULL
        runner = ["./test-runner", "-E", "-p1"] if full else ["./test-runner", "-Q", "-E", "-p1"]
        timeout_s = per_test_timeout_s * (2 if full else 1)
        with open(log_path, "wb") as log:
            proc = subprocess.run(["timeout", "-k", "10", str(timeout_s), *runner],
                                  cwd=tests_dir, stdout=log, stderr=subprocess.STDOUT,
                                  env=dict(env, TESTS=test))
        return test, proc.returncode, time.monotonic() - started, log_path

    # The long `full` tests start first, so they do not run on alone at the end.
    order = sorted(allow, key=lambda test: allow[test] != FULL)
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        for test, code, seconds, log_path in pool.map(one, order):
            if code == 0:
                result.passed.append((test, seconds))
            else:
                why = "timed out" if code in (124, 137) else f"exit {code}"
                result.failed.append((test, seconds, f"{why}: {_librdkafka_failure(log_path)}"))
                # The log stays in the run dir, which CI does not keep: its tail goes to the
                # output, with the timings a rare failure needs to be understood.
                print(f"librdkafka {test} failed; the last lines of its log:\n"
                      + _log_tail(log_path), flush=True)
    result.seconds = time.monotonic() - started
    return result


def _librdkafka_failure(log_path):
    ansi = re.compile(r"\x1b\[[0-9;]*m")
    with open(log_path, encoding="utf-8", errors="replace") as log:
        lines = [ansi.sub("", line).strip() for line in log]
    # test_fail0 prints `### Test "NAME" failed at FILE:LINE:FUNC() at DATE: ###` and the
    # message on the next line, before the runner's own assert(0) ends the process.
    failed_at = re.compile(r'^### Test "([^"]*)" failed at (\S+) at .*###$')
    for index, line in enumerate(lines):
        found = failed_at.match(line)
        if found:
            message = lines[index + 1] if index + 1 < len(lines) else ""
            return f"{found.group(1)} failed at {found.group(2)}: {message}"[:300]
    for line in lines:
        if "Test assertion failed" in line or "TEST FAILED" in line or "FAIL:" in line:
            return line[:300]
    return (lines[-1] if lines else "no output")[:300] + f" (log {log_path})"


def _log_tail(log_path, lines=40, width=240):
    ansi = re.compile(r"\x1b\[[0-9;]*m")
    with open(log_path, encoding="utf-8", errors="replace") as log:
        tail = collections.deque((ansi.sub("", line).rstrip() for line in log), maxlen=lines)
    return "\n".join(f"  | {line[:width]}" for line in tail)


def run_kafka_python(here, cache, bootstrap, run_dir, jobs=2, per_test_timeout_s=60):
    """Each allow-listed test id in its own pytest process (a hung teardown cannot stall the rest)."""
    root = os.path.join(cache, "kafka-python", "kafka_python-3.0.12")
    # Our two stubs, which the sdist lacks (see kafka-python/stubs/test/service.py).
    for stub in ("__init__.py", "service.py"):
        with open(os.path.join(here, "kafka-python", "stubs", "test", stub), "rb") as src, \
                open(os.path.join(root, "test", stub), "wb") as dst:
            dst.write(src.read())
    allow = read_list(os.path.join(here, "kafka-python", "tests.allow"))
    skip = read_list(os.path.join(here, "kafka-python", "tests.skip"))
    result = SuiteResult("kafka-python 3.0.12 integration tests", excluded=len(skip))
    log_dir = os.path.join(run_dir, "kafka-python")
    kafka_root = os.path.join(log_dir, "kafka-root")  # its fixtures insist on KAFKA_ROOT existing
    os.makedirs(kafka_root, exist_ok=True)
    env = dict(os.environ, KAFKA_VERSION="4.0.0", KAFKA_URI=f"tcp://{bootstrap}",
               KAFKA_ROOT=kafka_root)
    python = os.path.join(cache, "venv", "bin", "python")
    base = [python, "-m", "pytest", "-p", "no:cacheprovider", "-o", "addopts=",
            f"--timeout={per_test_timeout_s}", "--timeout-method=signal"]
    collected = subprocess.run(base + ["-q", "--collect-only", "test/integration"], cwd=root,
                               env=env, capture_output=True, text=True)
    present = sorted({line.split("[")[0] for line in collected.stdout.splitlines() if "::" in line})
    result.unlisted = [t for t in present if t not in allow and t not in skip]

    def attempt(idx, test, suffix):
        junit = os.path.join(log_dir, f"{idx:03d}{suffix}.xml")
        log_path = os.path.join(log_dir, f"{idx:03d}{suffix}.log")
        with open(log_path, "wb") as log:
            code = subprocess.run(["timeout", "-k", "10", str(per_test_timeout_s * 3), *base, "-q",
                                   "-rfE", f"--junitxml={junit}", test], cwd=root, env=env,
                                  stdout=log, stderr=subprocess.STDOUT).returncode
        return code, junit, log_path

    def one(idx_test):
        idx, test = idx_test
        started = time.monotonic()
        code, junit, log_path = attempt(idx, test, "")
        if code not in (0, 5) and _lost_subscription_metadata(log_path):
            # kafka-python's own race (FINDINGS #7), not the broker's: run it once more.
            result.retried.append(test)
            code, junit, _ = attempt(idx, test, "-retry")
        return test, code, time.monotonic() - started, junit

    # Tests naming the same transactional id run one after another, never beside each other.
    chains = serial_chains(list(enumerate(allow)), lambda item: transactional_ids(root, item[1]))
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        ran = {outcome[0]: outcome for outcomes in pool.map(lambda c: [one(i) for i in c], chains)
               for outcome in outcomes}
        for test, code, seconds, junit in (ran[test] for test in allow):
            cases = _junit_cases(junit) if os.path.exists(junit) else []
            failed = [(name, detail) for name, status, detail in cases if status == "FAIL"]
            if not cases or failed or code not in (0, 5):
                detail = "; ".join(f"{n.split('::')[-1]}: {d}" for n, d in failed)[:400] or \
                    ("timed out" if code in (124, 137) else f"pytest exit {code}")
                result.failed.append((test, seconds, detail))
            elif all(status == "skip" for _, status, _ in cases):
                result.skipped.append((test, cases[0][2]))
            else:
                result.passed.append((test, seconds))
    result.seconds = time.monotonic() - started
    return result


_TRANSACTIONAL_ID = re.compile(r"""transactional_id\s*=\s*['"]([^'"]+)['"]""")


def _lost_subscription_metadata(log_path):
    """Whether a kafka-python test log shows FINDINGS #7: a consumer that subscribed while its
    bootstrap Metadata request (no topics) was in flight took that answer as the refresh it asked
    for, assigned itself nothing and slept until the next refresh, minutes away."""
    with open(log_path, encoding="utf-8", errors="replace") as log:
        text = log.read()
    subscribed = text.find("Updating subscribed topics to:")
    if subscribed < 0:
        return False
    after = text[subscribed:]
    empty = after.find("Updated partition assignment: []")
    bootstrap = after.find("Bootstrap complete: ClusterMetadata(brokers: 1, topics: 0")
    return 0 <= empty and 0 <= bootstrap and abs(bootstrap - empty) < 400


def transactional_ids(root, test):
    """The transactional ids a test function of the suite names literally (`transactional_id='x'`)."""
    path, _, name = test.partition("::")
    with open(os.path.join(root, path), encoding="utf-8") as handle:
        source = handle.read()
    body = re.search(rf"^def {re.escape(name)}\(.*?(?=^\S|\Z)", source, re.M | re.S)
    return set(_TRANSACTIONAL_ID.findall(body.group(0))) if body else set()


def serial_chains(items, ids_of):
    """Splits `items` into chains run one at a time each: items sharing an id (as `ids_of` gives
    them) go into one chain in their order, so a second InitProducerId of a transactional id
    cannot fence a test still using it (Kafka's rule); every other item is a chain of its own."""
    chains, chain_of_id = [], {}
    for item in items:
        ids = ids_of(item)
        chain = next((chain_of_id[i] for i in sorted(ids) if i in chain_of_id), None)
        if chain is None:
            chain = []
            chains.append(chain)
        chain.append(item)
        for i in ids:
            chain_of_id.setdefault(i, chain)
    return chains


def _junit_cases(path):
    cases = []
    for case in ET.parse(path).getroot().iter("testcase"):
        failure = case.find("failure")
        if failure is None:
            failure = case.find("error")
        skipped = case.find("skipped")
        if failure is not None:
            cases.append((case.get("name"), "FAIL", (failure.get("message") or "")[:200]))
        elif skipped is not None:
            cases.append((case.get("name"), "skip", (skipped.get("message") or "")[:200]))
        else:
            cases.append((case.get("name"), "pass", ""))
    return cases


GROUP_SCENARIOS = ("test_kip848.py", "test_burrow.py", "test_cooperative.py")


def run_group_scenarios(here, cache, bootstrap, run_dir, per_test_timeout_s=180):
    """Our consumer-group scenarios outside the sN matrix: KIP-848 (scenarios/test_kip848.py;
    only confluent-kafka's bundled librdkafka speaks the protocol), Burrow reading the lag of a
    group from __consumer_offsets (scenarios/test_burrow.py) and a cooperative-sticky group with
    confluent-kafka under CPU load (scenarios/test_cooperative.py, issue 7)."""
    result = SuiteResult("Group scenarios (KIP-848 with confluent-kafka; Burrow; cooperative-sticky "
                         "under load; "
                         + ", ".join(f"scenarios/{name}" for name in GROUP_SCENARIOS) + ")")
    return _run_pytest(result, here, cache, bootstrap, os.path.join(run_dir, "groups"),
                       GROUP_SCENARIOS, per_test_timeout_s)


TLS_SCENARIOS = ("test_tls.py", "test_sasl.py", "test_acl.py")


def run_tls_scenarios(here, cache, bootstrap, run_dir, binary, per_test_timeout_s=180):
    """TLS and mTLS (scenarios/test_tls.py), SASL (scenarios/test_sasl.py) and ACLs
    (scenarios/test_acl.py) against brokers of their own, started from `binary`; skipped
    without a binary."""
    result = SuiteResult("Security scenarios (confluent-kafka, kafka-python and aiokafka over SSL "
                         "with client_auth required, scenarios/test_tls.py; SASL PLAIN and SCRAM "
                         "with confluent-kafka, kafka-python, aiokafka and kcat, "
                         "scenarios/test_sasl.py; an ACL matrix, scenarios/test_acl.py)")
    env = {"COMPAT_BROKER_BIN": binary} if binary else {}
    return _run_pytest(result, here, cache, bootstrap, os.path.join(run_dir, "tls"),
                       TLS_SCENARIOS, per_test_timeout_s, env)


def _run_pytest(result, here, cache, bootstrap, log_dir, files, per_test_timeout_s, env=None):
    """Runs pytest on `files` (in scenarios/) and folds its junit report into `result`."""
    os.makedirs(log_dir, exist_ok=True)
    junit = os.path.join(log_dir, "junit.xml")
    python = os.path.join(cache, "venv", "bin", "python")
    started = time.monotonic()
    with open(os.path.join(log_dir, "pytest.log"), "wb") as log:
        code = subprocess.run(["timeout", "-k", "10", str(per_test_timeout_s * 3), python, "-m",
                               "pytest", "-p", "no:cacheprovider", "-q", "-rfE",
                               f"--junitxml={junit}", "--bootstrap", bootstrap, *files],
                              cwd=os.path.join(here, "scenarios"), stdout=log,
                              stderr=subprocess.STDOUT,
                              env=dict(os.environ, **(env or {}))).returncode
    cases = _junit_cases(junit) if os.path.exists(junit) else []
    seconds = time.monotonic() - started
    for name, status, detail in cases:
        if status == "pass":
            result.passed.append((name, seconds / max(len(cases), 1)))
        elif status == "skip":
            result.skipped.append((name, detail))
        else:
            result.failed.append((name, seconds, detail))
    if not cases or code not in (0, 1, 5):
        result.failed.append((" ".join(files), seconds,
                              "timed out" if code in (124, 137) else f"pytest exit {code}"))
    result.seconds = seconds
    return result
