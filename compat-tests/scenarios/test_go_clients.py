"""Scenarios 1-11 for the Go clients: one program of ours per client (compat-tests/go), built by
compat-tests/setup into $COMPAT_GO_BIN. Exit 0 = pass, 2 = n/a (reason on stdout), else FAIL."""
import os
import subprocess

import pytest

import scenarios
from adapters.base import CODECS
from conftest import require_apis, served_apis

CLIENTS = {"sarama": "sarama", "kafka-go": "kafkago", "confluent-kafka-go": "confluentgo"}
NEEDS = {"s2": ("CreateTopics", "DescribeConfigs"), "s6": ("CreateTopics",),
         "s7": ("CreateTopics",) + scenarios.GROUP_APIS, "s8": scenarios.GROUP_APIS,
         "s9": ("DeleteTopics",), "s10": scenarios.IDEMPOTENCE_APIS,
         "s11": scenarios.TRANSACTION_APIS}


def run_program(bootstrap, client, scenario, codec="none"):
    require_apis(bootstrap, *NEEDS.get(scenario, ()))
    binary = os.path.join(os.environ.get("COMPAT_GO_BIN", "/var/tmp/tidelog-compat/go-bin"),
                          CLIENTS[client])
    if not os.path.exists(binary):
        pytest.fail(f"{binary} is missing: run compat-tests/setup")
    args = [binary, "-bootstrap", bootstrap, "-scenario", scenario, "-codec", codec]
    if "CreateTopics" in served_apis(bootstrap):
        args.append("-can-create")
    result = subprocess.run(args, capture_output=True, text=True, timeout=170)
    if result.returncode == 2:
        pytest.skip(result.stdout.strip())
    if result.returncode != 0:
        pytest.fail((result.stderr.strip() or result.stdout.strip())[-600:], pytrace=False)
    return result.stdout


@pytest.fixture(params=list(CLIENTS))
def client(request):
    return request.param


def test_s1_metadata(bootstrap, client):
    run_program(bootstrap, client, "s1")


def test_s2_create_topic(bootstrap, client):
    run_program(bootstrap, client, "s2")


@pytest.mark.parametrize("codec", CODECS)
def test_s3_produce(bootstrap, client, codec):
    run_program(bootstrap, client, "s3", codec)


def test_s4_consume_positions(bootstrap, client):
    run_program(bootstrap, client, "s4")


def test_s5_order_10k(bootstrap, client):
    run_program(bootstrap, client, "s5")


def test_s6_max_message(bootstrap, client):
    run_program(bootstrap, client, "s6")


def test_s7_group_takeover(bootstrap, client):
    run_program(bootstrap, client, "s7")


def test_s8_commit_resume(bootstrap, client):
    run_program(bootstrap, client, "s8")


def test_s9_delete_topic(bootstrap, client):
    run_program(bootstrap, client, "s9")


def test_s10_idempotent_producer(bootstrap, client):
    out = run_program(bootstrap, client, "s10")
    [line] = [ln for ln in out.splitlines() if ln.startswith("describe-producers ")]
    _, topic, *counts = line.split()
    scenarios.check_idempotent_producer(
        bootstrap, topic, {int(p): int(n) for p, n in (c.split("=") for c in counts)})


def test_s11_transactions(bootstrap, client):
    run_program(bootstrap, client, "s11")
