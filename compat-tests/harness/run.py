"""compat-tests orchestrator (entry point: compat-tests/run).

Starts a broker from the current build (or uses --bootstrap), runs the client x scenario
matrix (pytest, scenarios/), then the clients' own suites unless --quick, prints the matrix,
writes compat-tests/RESULTS.md and exits 1 on any FAIL.
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import broker as broker_mod  # noqa: E402
import leader_kill  # noqa: E402
import suites  # noqa: E402
from apiversions import api_versions  # noqa: E402

CLIENTS = ["kcat", "confluent-kafka", "kafka-python", "aiokafka", "sarama", "kafka-go",
           "confluent-kafka-go"]
SCENARIOS = [("s1", "metadata"), ("s2", "create topic"), ("s3", "produce keys/headers/null/codecs"),
             ("s4", "consume begin/end/offset/time"), ("s5", "order 10k"),
             ("s6", "max.message.bytes"), ("s7", "group takeover"), ("s8", "commit+resume"),
             ("s9", "delete topic"), ("s10", "idempotent producer"), ("s11", "transactions")]
# Only against a cluster of 3 or more (the harness kills and restarts a broker: leader_kill.py).
CLUSTER_SCENARIOS = [(leader_kill.SCENARIO, leader_kill.SCENARIO_NAME)]
PRECEDENCE = ["FAIL", "not yet", "pass", "n/a"]  # a cell shows the first status any part had
# librdkafka's suite is written for its trivup clusters, which keep Kafka's default
# group.initial.rebalance.delay.ms of 3 s: tests such as 0118 subscribe two consumers and then poll
# only one of them, so both must land in the first generation (FINDINGS #6). kafka-python's test
# broker sets the delay to 0, Tidelog's default, which the main broker keeps.
# Its tests 0109, 0115 and 0119 deny topics to User:* with kafka-acls.sh and expect
# TOPIC_AUTHORIZATION_FAILED: trivup brokers run an authorizer with
# allow.everyone.if.no.acl.found=true, so a resource no ACL covers stays open to every test.
LIBRDKAFKA_BROKER_SETTINGS = {"TIDELOG_GROUPS__INITIAL_REBALANCE_DELAY_MS": "3000",
                              "TIDELOG_AUTHORIZATION__ENABLED": "true",
                              "TIDELOG_AUTHORIZATION__ALLOW_EVERYONE_IF_NO_ACL_FOUND": "true"}


def parse_args():
    parser = argparse.ArgumentParser(prog="compat-tests/run", description=__doc__)
    parser.add_argument("--bootstrap", help="test an already running broker at HOST:PORT")
    parser.add_argument("--quick", action="store_true",
                        help="the matrix only: skip librdkafka's and kafka-python's own suites")
    parser.add_argument("--broker-bin", help="broker binary (default: cargo build --bin tidelog)")
    parser.add_argument("--cluster", type=int, metavar="N",
                        help="start N brokers forming one cluster (cluster mode) instead of one")
    parser.add_argument("--jobs", type=int, default=2, help="librdkafka tests run in parallel")
    parser.add_argument("--results", default=os.path.join(HERE, "RESULTS.md"))
    parser.add_argument("-k", dest="select", help="pytest -k expression for the matrix (debugging); "
                        "with --cluster, s12 runs only if the expression names it")
    return parser.parse_args()


def start_broker(args, binary, run_dir, settings=None, name="broker"):
    """One broker, or a cluster of --cluster N, from `binary` (see broker.py)."""
    if args.cluster:
        return broker_mod.Cluster(binary, run_dir, args.cluster, settings=settings, name=name)
    return broker_mod.Broker(binary, run_dir, settings=settings, name=name)


def stop_broker(broker, problems):
    alive = broker.alive()
    code = broker.stop()
    if not alive:
        problems.append(f"the broker died during the run (exit {code}); see {broker.log_path}")
    for data_dir in getattr(broker, "data_dirs", lambda: [broker.data_dir])():
        shutil.rmtree(data_dir, ignore_errors=True)  # ~0.5 GB per run; logs stay


def run_librdkafka(args, binary, run_dir, bootstrap, problems):
    """librdkafka's suite, against a broker of its own with LIBRDKAFKA_BROKER_SETTINGS unless
    --bootstrap was given."""
    if binary is None:
        return suites.run_librdkafka(HERE, cache_dir(), bootstrap, run_dir, jobs=args.jobs)
    broker = start_broker(args, binary, run_dir, LIBRDKAFKA_BROKER_SETTINGS, "broker-librdkafka")
    try:
        return suites.run_librdkafka(HERE, cache_dir(), broker.bootstrap, run_dir, jobs=args.jobs)
    finally:
        stop_broker(broker, problems)


def cache_dir():
    return os.environ.get("TIDELOG_COMPAT_CACHE", "/var/tmp/tidelog-compat")


def run_matrix(bootstrap, run_dir, select=None, replication_factor=1):
    results_path = os.path.join(run_dir, "matrix.jsonl")
    log_path = os.path.join(run_dir, "scenarios.log")
    env = dict(os.environ, COMPAT_RESULTS=results_path, COMPAT_BOOTSTRAP=bootstrap,
               COMPAT_GO_BIN=os.path.join(cache_dir(), "go-bin"),
               COMPAT_REPLICATION_FACTOR=str(replication_factor))
    command = [sys.executable, "-m", "pytest", "-q", "-rfE", "--bootstrap", bootstrap,
               "test_kcat.py", "test_python_clients.py", "test_go_clients.py"]
    if select:
        command += ["-k", select]
    started = time.monotonic()
    with open(log_path, "wb") as log:
        code = subprocess.run(command, cwd=os.path.join(HERE, "scenarios"), env=env, stdout=log,
                              stderr=subprocess.STDOUT).returncode
    rows = []
    if os.path.exists(results_path):
        with open(results_path, encoding="utf-8") as handle:
            rows = [json.loads(line) for line in handle]
    # 5 = nothing collected: a -k that selects only the harness's own scenario (s12).
    problem = None if code in (0, 1) or (code == 5 and select) else \
        f"pytest exited {code}; see {log_path}"
    return rows, problem, time.monotonic() - started


def fold(rows):
    """{(client, scenario): (status, [(status, detail)])}; FAIL > not yet > pass > n/a."""
    cells = {}
    for row in rows:
        key = (row["client"], row["scenario"])
        status, details = cells.get(key, (row["status"], []))
        status = min(status, row["status"], key=PRECEDENCE.index)
        if row["status"] != "pass" and row["detail"]:
            details = details + [(row["status"], f"{row['test'].split('::')[-1]}: {row['detail']}")]
        cells[key] = (status, details)
    return cells


def scenarios_of(args):
    return SCENARIOS + (CLUSTER_SCENARIOS if has_leader_kill(args) else [])


def has_leader_kill(args):
    """s12 needs a quorum left after one kill: 3 or more brokers started by the run."""
    return bool(args.cluster and args.cluster >= 3 and not args.bootstrap
                and (not args.select or leader_kill.SCENARIO in args.select))


def matrix_lines(cells, markdown, scenarios):
    header = ["client"] + [f"{sid} {name}" if markdown else sid for sid, name in scenarios]
    rows = [[client] + [cells.get((client, sid), ("-", []))[0] for sid, _ in scenarios]
            for client in CLIENTS]
    if markdown:
        out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        return out + ["| " + " | ".join(r) + " |" for r in rows]
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in [header] + rows]


def git_describe():
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                              text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src", "Cargo.toml"], cwd=REPO,
                               capture_output=True, text=True).stdout.strip()
        return (head or "no commit") + (" + uncommitted changes" if dirty else "")
    except OSError:
        return "unknown"


def write_results(path, args, bootstrap_desc, cells, suite_results, counts, seconds, problems):
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out = ["# Compatibility results", "",
           f"Generated by `compat-tests/run{' --quick' if args.quick else ''}` on {now}; "
           f"broker: {bootstrap_desc}; {platform.machine()}, {os.cpu_count()} cores; "
           f"took {seconds:.0f} s.", "",
           "Legend: **pass**; **FAIL**; **not yet** = the broker does not serve the APIs the "
           "scenario needs (never counted as passing); **n/a** = the client itself cannot do it.",
           "Scenario definitions and client versions: [README.md](README.md); "
           "incompatibilities: [FINDINGS.md](FINDINGS.md).", "", "## Client x scenario", ""]
    out += matrix_lines(cells, markdown=True, scenarios=scenarios_of(args))
    notes = [(c, s, st, d) for (c, s), (st, d) in sorted(cells.items()) if st != "pass" and d]
    if notes:
        out += ["", "Why cells are not `pass`:", ""]
        for client, sid, status, details in notes:
            for row_status, detail in dict.fromkeys(details):
                out.append(f"- {client} {sid} ({row_status}): {detail}")
    out += ["", "## Client test suites", ""]
    if args.quick:
        out.append("Skipped (`--quick`).")
    for result in suite_results:
        out += [f"### {result.name}", "",
                f"{len(result.passed)} passed, {len(result.failed)} failed, "
                f"{len(result.skipped)} skipped at run time, {result.excluded} excluded by the "
                f"skip-list, in {result.seconds:.0f} s.", ""]
        for name, secs, detail in result.failed:
            out.append(f"- FAIL `{name}` ({secs:.1f} s): {detail}")
        for name in result.unlisted:
            out.append(f"- UNLISTED `{name}`: on neither the allow-list nor the skip-list")
        if result.passed:
            out.append("- pass: " + ", ".join(f"`{n}` ({s:.1f} s)" for n, s in result.passed))
        for name, reason in result.skipped:
            out.append(f"- skipped at run time `{name}`: {reason}")
        for name in result.retried:
            out.append(f"- retried once `{name}`: its first run hit kafka-python's subscription "
                       "metadata race (FINDINGS.md #7)")
        out.append("")
    if problems:
        out += ["## Problems", ""] + [f"- {p}" for p in problems] + [""]
    out += ["", f"Totals: {counts['passed']} passed, {counts['failed']} failed, "
                f"{counts['skipped']} skipped (not yet / n/a)."]
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(out) + "\n")


def main():
    args = parse_args()
    started = time.monotonic()
    run_dir = tempfile.mkdtemp(prefix="tidelog-compat-run-")
    print(f"compat-tests: logs in {run_dir}", flush=True)
    problems = []
    broker = binary = None
    if args.bootstrap:
        bootstrap, bootstrap_desc = args.bootstrap, f"external `{args.bootstrap}`"
    else:
        binary = args.broker_bin or broker_mod.build(REPO)
        broker = start_broker(args, binary, run_dir)
        if args.cluster:
            bootstrap_desc = (f"a {args.cluster}-broker tidelog {git_describe()} cluster started "
                              "by the run (default partitions 4; topics replication factor "
                              f"{min(3, args.cluster)})")
            if has_leader_kill(args):
                bootstrap_desc += "; s12 kills a partition leader (SIGKILL) and restarts it"
        else:
            bootstrap_desc = f"tidelog {git_describe()} started by the run (default partitions 4)"
        if not args.quick:
            bootstrap_desc += (", the librdkafka suite against another one with "
                               "groups.initial_rebalance_delay_ms=3000")
        bootstrap = broker.bootstrap
        print(f"compat-tests: broker {binary} listening on {bootstrap}", flush=True)
    suite_results = []
    try:
        served = api_versions(bootstrap)
        print("compat-tests: broker serves " + ", ".join(sorted(str(k) for k in served)), flush=True)
        # Against a cluster the scenarios' own topics are replicated like Kafka's default
        # (min(3, brokers)); a single broker, or an external one, gets one replica.
        replication_factor = min(3, args.cluster) if args.cluster else 1
        rows, problem, matrix_s = run_matrix(bootstrap, run_dir, args.select, replication_factor)
        if problem:
            problems.append(problem)
        print(f"compat-tests: matrix done in {matrix_s:.0f} s", flush=True)
        if has_leader_kill(args):
            rows += leader_kill.run(broker)
        if not args.quick:
            for runner in (suites.run_group_scenarios, suites.run_tls_scenarios,
                           suites.run_librdkafka, suites.run_kafka_python):
                if runner is suites.run_librdkafka:
                    result = run_librdkafka(args, binary, run_dir, bootstrap, problems)
                elif runner is suites.run_tls_scenarios:
                    result = runner(HERE, cache_dir(), bootstrap, run_dir, binary)
                else:
                    result = runner(HERE, cache_dir(), bootstrap, run_dir)
                suite_results.append(result)
                print(f"compat-tests: {result.name}: {len(result.passed)} passed, "
                      f"{len(result.failed)} failed in {result.seconds:.0f} s", flush=True)
    finally:
        if broker is not None:
            stop_broker(broker, problems)
    cells = fold(rows)
    counts = {"passed": sum(r["status"] == "pass" for r in rows),
              "failed": sum(r["status"] == "FAIL" for r in rows),
              "skipped": sum(r["status"] in ("not yet", "n/a") for r in rows)}
    for result in suite_results:
        counts["passed"] += len(result.passed)
        counts["failed"] += len(result.failed) + len(result.unlisted)
        counts["skipped"] += len(result.skipped)
    seconds = time.monotonic() - started
    write_results(args.results, args, bootstrap_desc, cells, suite_results, counts, seconds,
                  problems)
    print()
    print("\n".join(matrix_lines(cells, markdown=False, scenarios=scenarios_of(args))))
    print("  " + "  ".join(f"{sid}={name}" for sid, name in scenarios_of(args)))
    for (client, sid), (status, details) in sorted(cells.items()):
        for row_status, detail in dict.fromkeys(details):
            if row_status == "FAIL":
                print(f"FAIL {client} {sid}: {detail}")
    for result in suite_results:
        print(f"{result.name}: {len(result.passed)} passed, {len(result.failed)} failed, "
              f"{result.excluded} excluded ({result.seconds:.0f} s)")
        for name, _, detail in result.failed:
            print(f"  FAIL {name}: {detail}")
        for name in result.unlisted:
            print(f"  UNLISTED {name} (add it to the allow-list or the skip-list with a reason)")
        for name in result.retried:
            print(f"  RETRIED {name}: kafka-python's subscription metadata race (FINDINGS #7)")
    for problem in problems:
        print(f"PROBLEM: {problem}")
    print(f"wrote {os.path.relpath(args.results)}; {seconds:.0f} s; logs in {run_dir}")
    print(f"compat: {counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped")
    failed = counts["failed"] or problems or any(not r.ok for r in suite_results)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
