"""TLS and mTLS with confluent-kafka, kafka-python and aiokafka (issue 11): a broker of its own with a
PLAINTEXT listener and an SSL listener (`client_auth: required`), certificates made with the
`openssl` CLI (a CA, the broker's with localhost and 127.0.0.1 as SANs, a client's and one from
another CA). Needs the broker binary (COMPAT_BROKER_BIN, set by harness/run.py), so it is skipped
against --bootstrap.

Run: compat-tests/setup, build the broker, then
  COMPAT_BROKER_BIN=target/debug/tidelog /var/tmp/tidelog-compat/venv/bin/python -m pytest \\
      compat-tests/scenarios/test_tls.py --bootstrap unused:1
"""
import os
import re
import subprocess
import sys
import tempfile
import uuid

import pytest
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from conftest import wait_until

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
import broker as broker_mod  # noqa: E402

DEADLINE_S = 60
RECORDS = 200


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_cert(directory, name, subject, ca, sans=None):
    """`name`.pem and `name`.key signed by `ca` (a name of files in `directory`). Always with an
    extension: `openssl x509 -req` without one makes an X.509 v1 certificate, which rustls (like
    browsers) refuses."""
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out",
            f"{name}.csr", "-subj", subject, cwd=directory)
    args = ["x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-out", f"{name}.pem", "-days", "2"]
    with open(os.path.join(directory, f"{name}.ext"), "w", encoding="utf-8") as ext:
        ext.write(f"subjectAltName={sans}\n" if sans else "extendedKeyUsage=clientAuth\n")
    args += ["-extfile", f"{name}.ext"]
    openssl(*args, cwd=directory)


def make_ca(directory, name):
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out",
            f"{name}.pem", "-subj", f"/CN={name}", "-days", "2", cwd=directory)


@pytest.fixture(scope="module")
def tls_broker():
    binary = os.environ.get("COMPAT_BROKER_BIN")
    if not binary:
        pytest.skip("n/a: needs the broker binary (COMPAT_BROKER_BIN); not run against --bootstrap")
    run_dir = tempfile.mkdtemp(prefix="tidelog-compat-tls-")
    make_ca(run_dir, "ca")
    make_cert(run_dir, "broker", "/CN=broker", "ca", "DNS:localhost,IP:127.0.0.1")
    make_cert(run_dir, "alice", "/OU=eng/CN=alice", "ca")
    make_ca(run_dir, "other-ca")
    make_cert(run_dir, "mallory", "/CN=mallory", "other-ca")
    path = lambda name: os.path.join(run_dir, name)  # noqa: E731
    broker = broker_mod.Broker(binary, run_dir, name="broker-tls", settings={
        "TIDELOG_LISTENERS__SSL__BIND": "127.0.0.1:0",
        "TIDELOG_LISTENERS__SSL__SECURITY_PROTOCOL": "SSL",
        "TIDELOG_TLS__CERT_FILE": path("broker.pem"),
        "TIDELOG_TLS__KEY_FILE": path("broker.key"),
        "TIDELOG_TLS__CA_FILE": path("ca.pem"),
        "TIDELOG_TLS__CLIENT_AUTH": "required",
        "TIDELOG_LOG": "info,tidelog::server=debug",
    })

    def ssl_addr():
        with open(broker.log_path, encoding="utf-8", errors="replace") as log:
            found = re.search(r"listening addr=(\S+) listener=ssl ", log.read())
        return found.group(1) if found else None

    try:
        yield {"broker": broker, "ssl": wait_until(ssl_addr, DEADLINE_S, "the SSL listener"),
               "dir": run_dir, "path": path}
    finally:
        broker.stop()


def confluent_ssl(tls, cert="alice", **extra):
    config = {"bootstrap.servers": tls["ssl"], "security.protocol": "SSL",
              "ssl.ca.location": tls["path"]("ca.pem")}
    if cert:
        config.update({"ssl.certificate.location": tls["path"](f"{cert}.pem"),
                       "ssl.key.location": tls["path"](f"{cert}.key")})
    config.update(extra)
    return config


def test_confluent_kafka_produces_and_consumes_over_mtls(tls_broker):
    topic = f"compat-tls-{uuid.uuid4().hex[:8]}"
    producer = Producer(confluent_ssl(tls_broker, acks="all"))
    values = [f"record-{i}".encode() for i in range(RECORDS)]
    for value in values:
        producer.produce(topic, value, key=b"k")
    assert producer.flush(DEADLINE_S) == 0
    consumer = Consumer(confluent_ssl(tls_broker, **{"group.id": f"g-{topic}",
                                                     "auto.offset.reset": "earliest"}))
    consumer.subscribe([topic])
    read = []

    def poll():
        message = consumer.poll(0.5)
        if message is not None and message.error() is None:
            read.append(message.value())
        return len(read) >= RECORDS

    wait_until(poll, DEADLINE_S, f"{RECORDS} records over TLS")
    consumer.commit(asynchronous=False)
    consumer.close()
    assert read == values
    # Metadata over the SSL listener names the SSL endpoint; over PLAINTEXT, the plaintext one.
    brokers = AdminClient(confluent_ssl(tls_broker)).list_topics(timeout=DEADLINE_S).brokers
    assert [f"{b.host}:{b.port}" for b in brokers.values()] == [tls_broker["ssl"]]
    plain = tls_broker["broker"].bootstrap
    brokers = AdminClient({"bootstrap.servers": plain}).list_topics(timeout=DEADLINE_S).brokers
    assert [f"{b.host}:{b.port}" for b in brokers.values()] == [plain]
    with open(tls_broker["broker"].log_path, encoding="utf-8", errors="replace") as log:
        assert "principal=User:CN=alice,OU=eng" in log.read()


@pytest.mark.parametrize("cert", [None, "mallory"])
def test_confluent_kafka_without_a_certificate_of_the_ca_is_refused(tls_broker, cert):
    admin = AdminClient(confluent_ssl(tls_broker, cert=cert))
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=5)


def test_kafka_python_over_mtls(tls_broker):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    path = tls_broker["path"]
    ssl = {"bootstrap_servers": tls_broker["ssl"], "security_protocol": "SSL",
           "ssl_cafile": path("ca.pem"), "ssl_certfile": path("alice.pem"),
           "ssl_keyfile": path("alice.key")}
    topic = f"compat-tls-kp-{uuid.uuid4().hex[:8]}"
    producer = KafkaProducer(**ssl)
    for i in range(20):
        producer.send(topic, f"kp-{i}".encode()).get(timeout=DEADLINE_S)
    producer.close()
    consumer = KafkaConsumer(**ssl, consumer_timeout_ms=DEADLINE_S * 1000)
    consumer.assign([TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)])
    consumer.seek_to_beginning()
    read = []
    for message in consumer:
        read.append(message.value)
        if len(read) == 20:
            break
    consumer.close()
    assert sorted(read) == sorted(f"kp-{i}".encode() for i in range(20))


def aiokafka_round_trip(config, topic, group_id=None, count=20):
    """Produces `count` records with aiokafka and reads them back (in group `group_id` if
    given); `config()` makes each client's settings (an SSL context is not shared)."""
    import asyncio
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    async def run():
        producer = AIOKafkaProducer(**config())
        await producer.start()
        try:
            for i in range(count):
                await producer.send_and_wait(topic, f"aio-{i}".encode())
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(topic, **config(), auto_offset_reset="earliest",
                                    group_id=group_id)
        await consumer.start()
        read = []
        try:
            async def take():
                async for message in consumer:
                    read.append(message.value)
                    if len(read) == count:
                        return
            await asyncio.wait_for(take(), DEADLINE_S)
        finally:
            await consumer.stop()
        return read

    assert sorted(asyncio.run(run())) == sorted(f"aio-{i}".encode() for i in range(count))


def test_aiokafka_over_mtls(tls_broker):
    from aiokafka.helpers import create_ssl_context
    path = tls_broker["path"]

    def config():
        context = create_ssl_context(cafile=path("ca.pem"), certfile=path("alice.pem"),
                                     keyfile=path("alice.key"))
        return {"bootstrap_servers": tls_broker["ssl"], "security_protocol": "SSL",
                "ssl_context": context}

    aiokafka_round_trip(config, f"compat-tls-aio-{uuid.uuid4().hex[:8]}")
