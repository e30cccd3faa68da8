"""SASL with real clients (issue 11): confluent-kafka, kafka-python, aiokafka and kcat with PLAIN,
SCRAM-SHA-256 and SCRAM-SHA-512 on a SASL_PLAINTEXT listener, confluent-kafka and kcat over
SASL_SSL,
users created, described and deleted with confluent-kafka's admin API (AlterUserScramCredentials),
wrong passwords refused, KIP-368 re-authentication by librdkafka, and users replicated by the
controller of a 3-broker cluster across a controller failover. Brokers of their own (needs
COMPAT_BROKER_BIN, set by harness/run.py; skipped against --bootstrap).

Run: compat-tests/setup, build the broker, then
  COMPAT_BROKER_BIN=target/debug/tidelog /var/tmp/tidelog-compat/venv/bin/python -m pytest \\
      compat-tests/scenarios/test_sasl.py --bootstrap unused:1
"""
import os
import re
import subprocess
import sys
import tempfile
import uuid

import pytest
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import (AdminClient, ScramCredentialInfo, ScramMechanism,
                                   UserScramCredentialDeletion, UserScramCredentialUpsertion)

from conftest import wait_until
from test_tls import aiokafka_round_trip, make_ca, make_cert

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
import broker as broker_mod  # noqa: E402

DEADLINE_S = 60
RECORDS = 50
PASSWORD = "admin-s3cret"
MECHANISMS = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


def listener_addr(log_path, name):
    with open(log_path, encoding="utf-8", errors="replace") as log:
        found = re.findall(rf"listening addr=(\S+) listener={name} ", log.read())
    return found[-1] if found else None


def sasl_settings(run_dir, extra=None):
    password_file = os.path.join(run_dir, "admin-password")
    with open(password_file, "w", encoding="utf-8") as f:
        f.write(PASSWORD + "\n")
    make_ca(run_dir, "ca")
    make_cert(run_dir, "broker", "/CN=broker", "ca", "DNS:localhost,IP:127.0.0.1")
    settings = {
        "TIDELOG_LISTENERS__SASL__BIND": "127.0.0.1:0",
        "TIDELOG_LISTENERS__SASL__SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "TIDELOG_LISTENERS__SASLSSL__BIND": "127.0.0.1:0",
        "TIDELOG_LISTENERS__SASLSSL__SECURITY_PROTOCOL": "SASL_SSL",
        "TIDELOG_TLS__CERT_FILE": os.path.join(run_dir, "broker.pem"),
        "TIDELOG_TLS__KEY_FILE": os.path.join(run_dir, "broker.key"),
        "TIDELOG_AUTHORIZATION__BOOTSTRAP_USERS": f"admin:{password_file}",
    }
    settings.update(extra or {})
    return settings


@pytest.fixture(scope="module")
def sasl_broker():
    binary = os.environ.get("COMPAT_BROKER_BIN")
    if not binary:
        pytest.skip("n/a: needs the broker binary (COMPAT_BROKER_BIN); not run against --bootstrap")
    run_dir = tempfile.mkdtemp(prefix="tidelog-compat-sasl-")
    broker = broker_mod.Broker(binary, run_dir, name="broker-sasl",
                               settings=sasl_settings(run_dir))
    try:
        yield {"broker": broker, "dir": run_dir,
               "sasl": wait_until(lambda: listener_addr(broker.log_path, "sasl"), DEADLINE_S,
                                  "the SASL listener"),
               "saslssl": wait_until(lambda: listener_addr(broker.log_path, "saslssl"),
                                     DEADLINE_S, "the SASL_SSL listener")}
    finally:
        broker.stop()


def confluent(bootstrap, mechanism, user="admin", password=PASSWORD, ssl_ca=None, **extra):
    config = {"bootstrap.servers": bootstrap,
              "security.protocol": "SASL_SSL" if ssl_ca else "SASL_PLAINTEXT",
              "sasl.mechanism": mechanism, "sasl.username": user, "sasl.password": password}
    if ssl_ca:
        config["ssl.ca.location"] = ssl_ca
    config.update(extra)
    return config


def produce_and_consume(config, topic):
    producer = Producer({**config, "acks": "all"})
    values = [f"{topic}-{i}".encode() for i in range(RECORDS)]
    for value in values:
        producer.produce(topic, value)
    assert producer.flush(DEADLINE_S) == 0
    consumer = Consumer({**config, "group.id": f"g-{topic}", "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    read = []

    def poll():
        message = consumer.poll(0.5)
        if message is not None and message.error() is None:
            read.append(message.value())
        return len(read) >= RECORDS

    wait_until(poll, DEADLINE_S, f"{RECORDS} records")
    consumer.commit(asynchronous=False)
    consumer.close()
    assert sorted(read) == sorted(values)


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_confluent_kafka_produces_and_consumes_in_a_group(sasl_broker, mechanism):
    topic = f"compat-sasl-{mechanism.lower()}-{uuid.uuid4().hex[:6]}"
    produce_and_consume(confluent(sasl_broker["sasl"], mechanism), topic)


def test_confluent_kafka_over_sasl_ssl(sasl_broker):
    ca = os.path.join(sasl_broker["dir"], "ca.pem")
    topic = f"compat-saslssl-{uuid.uuid4().hex[:6]}"
    produce_and_consume(confluent(sasl_broker["saslssl"], "SCRAM-SHA-512", ssl_ca=ca), topic)


@pytest.mark.parametrize("mechanism,user,password", [
    ("SCRAM-SHA-256", "admin", "wrong"), ("SCRAM-SHA-512", "nobody", PASSWORD),
    ("PLAIN", "admin", "wrong")])
def test_confluent_kafka_with_bad_credentials_is_refused(sasl_broker, mechanism, user, password):
    admin = AdminClient(confluent(sasl_broker["sasl"], mechanism, user, password))
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=5)


def test_users_are_created_described_and_deleted_with_the_admin_api(sasl_broker):
    admin = AdminClient(confluent(sasl_broker["sasl"], "SCRAM-SHA-512"))
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 8192)
    futures = admin.alter_user_scram_credentials(
        [UserScramCredentialUpsertion("bob", info, b"bob-pw", b"salt-of-bob")])
    for future in futures.values():
        future.result(DEADLINE_S)
    described = admin.describe_user_scram_credentials(["bob"])["bob"].result(DEADLINE_S)
    infos = described.scram_credential_infos
    assert [(i.mechanism, i.iterations) for i in infos] == [(ScramMechanism.SCRAM_SHA_256, 8192)]
    # bob authenticates with SCRAM-SHA-256 and with PLAIN (checked against the same credential).
    for mechanism in ["SCRAM-SHA-256", "PLAIN"]:
        AdminClient(confluent(sasl_broker["sasl"], mechanism, "bob", "bob-pw")).list_topics(
            timeout=DEADLINE_S)
    with pytest.raises(KafkaException):
        AdminClient(confluent(sasl_broker["sasl"], "SCRAM-SHA-512", "bob", "bob-pw")).list_topics(
            timeout=5)
    futures = admin.alter_user_scram_credentials(
        [UserScramCredentialDeletion("bob", ScramMechanism.SCRAM_SHA_256)])
    for future in futures.values():
        future.result(DEADLINE_S)
    with pytest.raises(KafkaException):
        AdminClient(confluent(sasl_broker["sasl"], "SCRAM-SHA-256", "bob", "bob-pw")).list_topics(
            timeout=5)


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_kafka_python(sasl_broker, mechanism):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    config = {"bootstrap_servers": sasl_broker["sasl"], "security_protocol": "SASL_PLAINTEXT",
              "sasl_mechanism": mechanism, "sasl_plain_username": "admin",
              "sasl_plain_password": PASSWORD}
    topic = f"compat-sasl-kp-{uuid.uuid4().hex[:6]}"
    producer = KafkaProducer(**config)
    for i in range(20):
        producer.send(topic, f"kp-{i}".encode()).get(timeout=DEADLINE_S)
    producer.close()
    consumer = KafkaConsumer(**config, consumer_timeout_ms=DEADLINE_S * 1000)
    consumer.assign([TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)])
    consumer.seek_to_beginning()
    read = []
    for message in consumer:
        read.append(message.value)
        if len(read) == 20:
            break
    consumer.close()
    assert sorted(read) == sorted(f"kp-{i}".encode() for i in range(20))


def test_kafka_python_with_a_wrong_password_is_refused(sasl_broker):
    from kafka import KafkaProducer
    from kafka.errors import KafkaError
    with pytest.raises(KafkaError):
        KafkaProducer(bootstrap_servers=sasl_broker["sasl"], security_protocol="SASL_PLAINTEXT",
                      sasl_mechanism="SCRAM-SHA-256", sasl_plain_username="admin",
                      sasl_plain_password="wrong", request_timeout_ms=5000)


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"])
def test_aiokafka(sasl_broker, mechanism):
    topic = f"compat-sasl-aio-{uuid.uuid4().hex[:6]}"
    config = {"bootstrap_servers": sasl_broker["sasl"], "security_protocol": "SASL_PLAINTEXT",
              "sasl_mechanism": mechanism, "sasl_plain_username": "admin",
              "sasl_plain_password": PASSWORD}
    aiokafka_round_trip(lambda: config, topic, group_id=f"g-{topic}")


@pytest.mark.parametrize("mechanism,tls", [("PLAIN", False), ("SCRAM-SHA-256", False),
                                           ("SCRAM-SHA-512", False), ("SCRAM-SHA-512", True)])
def test_kcat(sasl_broker, mechanism, tls):
    topic = f"compat-sasl-kcat-{uuid.uuid4().hex[:6]}"
    config = ["-X", f"sasl.mechanisms={mechanism}", "-X", "sasl.username=admin",
              "-X", f"sasl.password={PASSWORD}"]
    if tls:
        config += ["-b", sasl_broker["saslssl"], "-X", "security.protocol=SASL_SSL",
                   "-X", f"ssl.ca.location={os.path.join(sasl_broker['dir'], 'ca.pem')}"]
    else:
        config += ["-b", sasl_broker["sasl"], "-X", "security.protocol=SASL_PLAINTEXT"]
    values = [f"kcat-{i}" for i in range(20)]
    subprocess.run(["kcat", *config, "-P", "-t", topic, "-X", "acks=all"], check=True,
                   input="\n".join(values) + "\n", text=True, timeout=DEADLINE_S)
    read = subprocess.run(["kcat", *config, "-C", "-t", topic, "-o", "beginning", "-c", "20",
                           "-e", "-q"], check=True, capture_output=True, text=True,
                          timeout=DEADLINE_S).stdout.split()
    assert sorted(read) == sorted(values)
    refused = subprocess.run(["kcat", *config, "-X", "sasl.password=wrong", "-L"],
                             capture_output=True, text=True, timeout=DEADLINE_S)
    assert refused.returncode != 0, refused.stdout


def test_librdkafka_reauthenticates_when_the_session_expires():
    """KIP-368: sessions of 2 s; a producer writing for several lifetimes re-authenticates on
    its connections (confluent-kafka 2.16's librdkafka does) and loses nothing."""
    binary = os.environ.get("COMPAT_BROKER_BIN")
    if not binary:
        pytest.skip("n/a: needs the broker binary (COMPAT_BROKER_BIN); not run against --bootstrap")
    run_dir = tempfile.mkdtemp(prefix="tidelog-compat-reauth-")
    broker = broker_mod.Broker(binary, run_dir, name="broker-reauth", settings=sasl_settings(
        run_dir, {"TIDELOG_SASL__CONNECTIONS_MAX_REAUTH_MS": "2000"}))
    try:
        sasl = wait_until(lambda: listener_addr(broker.log_path, "sasl"), DEADLINE_S, "listener")
        producer = Producer(confluent(sasl, "SCRAM-SHA-256", acks="all"))
        topic = f"compat-reauth-{uuid.uuid4().hex[:6]}"
        errors = []
        sent = [0]

        def delivered(err, _msg):
            if err is not None:
                errors.append(err)

        def authentications():
            with open(broker.log_path, encoding="utf-8", errors="replace") as log:
                return log.read().count("SASL authentication succeeded")

        # Produce until every connection has re-authenticated at least twice (bounded).
        def write():
            producer.produce(topic, f"r-{sent[0]}".encode(), on_delivery=delivered)
            sent[0] += 1
            producer.flush(DEADLINE_S)
            return authentications() >= 6

        wait_until(write, DEADLINE_S, "re-authentications")
        assert producer.flush(DEADLINE_S) == 0
        assert errors == []
        consumer = Consumer(confluent(sasl, "SCRAM-SHA-256", **{
            "group.id": f"g-{topic}", "auto.offset.reset": "earliest"}))
        consumer.subscribe([topic])
        read = []

        def poll():
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                read.append(message.value())
            return len(read) >= sent[0]

        wait_until(poll, DEADLINE_S, "every record back")
        consumer.close()
        assert len(read) == sent[0]
    finally:
        broker.stop()


def test_users_are_replicated_and_survive_a_controller_failover():
    """3 brokers: the bootstrap user authenticates on every broker, a user created through one
    broker authenticates on the others, and both still do after the controller leader is
    killed (and another created after the failover)."""
    binary = os.environ.get("COMPAT_BROKER_BIN")
    if not binary:
        pytest.skip("n/a: needs the broker binary (COMPAT_BROKER_BIN); not run against --bootstrap")
    run_dir = tempfile.mkdtemp(prefix="tidelog-compat-sasl-cluster-")
    cluster = broker_mod.Cluster(binary, run_dir, 3, name="broker-sasl",
                                 settings=sasl_settings(run_dir))
    try:
        addrs = [wait_until(lambda b=b: listener_addr(b.log_path, "sasl"), DEADLINE_S, "listener")
                 for b in cluster.brokers]

        def create(admin_addr, user, password):
            """Whether creating `user` through `admin_addr` succeeded (the client sends it to
            the controller its Metadata names, which is briefly the killed one after it)."""
            admin = AdminClient(confluent(admin_addr, "SCRAM-SHA-512"))
            info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096)
            try:
                for future in admin.alter_user_scram_credentials([UserScramCredentialUpsertion(
                        user, info, password.encode(), os.urandom(16))]).values():
                    future.result(10)
                return True
            except (KafkaException, TimeoutError):
                return False

        def authenticates(addr, user, password):
            try:
                AdminClient(confluent(addr, "SCRAM-SHA-512", user, password)).list_topics(
                    timeout=5)
                return True
            except KafkaException:
                return False

        # The bootstrap user exists once the controller applied it (any broker may create it).
        for addr in addrs:
            wait_until(lambda a=addr: authenticates(a, "admin", PASSWORD), DEADLINE_S,
                       f"admin on {addr}")
        assert create(addrs[0], "carol", "carol-pw")
        for addr in addrs:
            wait_until(lambda a=addr: authenticates(a, "carol", "carol-pw"), DEADLINE_S,
                       f"carol on {addr}")
        # Kill the controller leader.
        admin = AdminClient(confluent(addrs[0], "SCRAM-SHA-512"))
        described = admin.describe_cluster(request_timeout=DEADLINE_S).result(DEADLINE_S)
        leader = described.controller.id
        victim = next(b for b in cluster.brokers if b.node_id == leader)
        victim.kill9()
        survivors = [a for b, a in zip(cluster.brokers, addrs) if b is not victim]
        for user, password in [("admin", PASSWORD), ("carol", "carol-pw")]:
            for addr in survivors:
                wait_until(lambda a=addr, u=user, p=password: authenticates(a, u, p), DEADLINE_S,
                           f"{user} on {addr} after the failover")
        wait_until(lambda: create(survivors[0], "dave", "dave-pw"), DEADLINE_S,
                   "a user created after the failover")
        for addr in survivors:
            wait_until(lambda a=addr: authenticates(a, "dave", "dave-pw"), DEADLINE_S,
                       f"dave on {addr}")
    finally:
        cluster.stop()
