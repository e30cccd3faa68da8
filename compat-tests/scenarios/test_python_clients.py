"""Scenarios 1-11 for confluent-kafka, kafka-python and aiokafka (see scenarios.py)."""
import pytest

import scenarios
from adapters.aiokafka_adapter import AiokafkaAdapter
from adapters.base import CODECS
from adapters.confluent import ConfluentAdapter
from adapters.kafka_python import KafkaPythonAdapter
from conftest import require_apis, served_apis

ADAPTERS = {"confluent-kafka": ConfluentAdapter, "kafka-python": KafkaPythonAdapter,
            "aiokafka": AiokafkaAdapter}


@pytest.fixture(scope="module", params=list(ADAPTERS))
def client(request, bootstrap):
    adapter = ADAPTERS[request.param](bootstrap)
    yield adapter
    adapter.close()


def can_create(bootstrap):
    return "CreateTopics" in served_apis(bootstrap)


def test_s1_metadata(client, bootstrap):
    scenarios.metadata(client, bootstrap)


def test_s2_create_topic(client, bootstrap):
    require_apis(bootstrap, "CreateTopics", "DescribeConfigs")
    scenarios.create_topic(client)


@pytest.mark.parametrize("codec", CODECS)
def test_s3_produce(client, bootstrap, codec):
    scenarios.produce(client, can_create(bootstrap), codec)


def test_s4_consume_positions(client, bootstrap):
    scenarios.consume_positions(client, can_create(bootstrap))


def test_s5_order_10k(client, bootstrap):
    scenarios.order(client, can_create(bootstrap))


def test_s6_max_message(client, bootstrap):
    require_apis(bootstrap, "CreateTopics")
    scenarios.max_message(client)


def test_s7_group_takeover(client, bootstrap):
    require_apis(bootstrap, "CreateTopics", *scenarios.GROUP_APIS)
    scenarios.group_takeover(client)


def test_s8_commit_resume(client, bootstrap):
    require_apis(bootstrap, *scenarios.GROUP_APIS)
    scenarios.commit_resume(client)


def test_s9_delete_topic(client, bootstrap):
    require_apis(bootstrap, "DeleteTopics")
    scenarios.delete_topic(client, can_create(bootstrap))


def test_s10_idempotent_producer(client, bootstrap):
    require_apis(bootstrap, *scenarios.IDEMPOTENCE_APIS)
    scenarios.idempotent_producer(client, bootstrap, can_create(bootstrap))


def test_s11_transactions(client, bootstrap):
    require_apis(bootstrap, *scenarios.TRANSACTION_APIS)
    scenarios.transactions(client, can_create(bootstrap))
