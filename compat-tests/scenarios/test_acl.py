"""Kafka ACLs with real clients (issue 11): a broker of its own with `authorization.enabled`, a
SASL_PLAINTEXT listener, super user `admin` and user `alice`. With confluent-kafka (librdkafka's
admin API for CreateAcls, DescribeAcls and DeleteAcls) each of these is denied to alice, then
allowed by an ACL: produce, consume in a group, create a topic, describe configs, transactional
produce; Metadata leaves out topics she may not describe; deleting her ACLs denies her again;
ACLs survive a restart. On 3 brokers ACLs are replicated by the controller and keep working after
its leader is killed. kafka-python's admin client creates and lists ACLs too. Needs
COMPAT_BROKER_BIN (set by harness/run.py); skipped against --bootstrap.
"""
import os
import re
import sys
import tempfile
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation,
                                   AclPermissionType, AdminClient, ConfigResource, NewTopic,
                                   ResourcePatternType, ResourceType)

from conftest import wait_until
from test_sasl import listener_addr

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
import broker as broker_mod  # noqa: E402

DEADLINE_S = 60
ADMIN_PASSWORD = "admin-s3cret"
ALICE_PASSWORD = "alice-s3cret"


def settings(run_dir):
    files = {}
    for user, password in [("admin", ADMIN_PASSWORD), ("alice", ALICE_PASSWORD)]:
        files[user] = os.path.join(run_dir, f"{user}-password")
        with open(files[user], "w", encoding="utf-8") as f:
            f.write(password + "\n")
    return {
        "TIDELOG_LISTENERS__SASL__BIND": "127.0.0.1:0",
        "TIDELOG_LISTENERS__SASL__SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "TIDELOG_AUTHORIZATION__ENABLED": "true",
        "TIDELOG_AUTHORIZATION__SUPER_USERS": "User:admin",
        "TIDELOG_AUTHORIZATION__BOOTSTRAP_USERS":
            f"admin:{files['admin']},alice:{files['alice']}",
    }


def client(addr, user, **extra):
    password = ADMIN_PASSWORD if user == "admin" else ALICE_PASSWORD
    config = {"bootstrap.servers": addr, "security.protocol": "SASL_PLAINTEXT",
              "sasl.mechanism": "SCRAM-SHA-256", "sasl.username": user,
              "sasl.password": password}
    config.update(extra)
    return config


@pytest.fixture(scope="module")
def acl_broker():
    binary = os.environ.get("COMPAT_BROKER_BIN")
    if not binary:
        pytest.skip("n/a: needs the broker binary (COMPAT_BROKER_BIN); not run against --bootstrap")
    run_dir = tempfile.mkdtemp(prefix="tidelog-compat-acl-")
    broker = broker_mod.Broker(binary, run_dir, name="broker-acl", settings=settings(run_dir))
    try:
        addr = wait_until(lambda: listener_addr(broker.log_path, "sasl"), DEADLINE_S, "listener")
        admin = AdminClient(client(addr, "admin"))
        wait_until(lambda: bool(admin.list_topics(timeout=5).brokers), DEADLINE_S, "admin")
        yield {"broker": broker, "addr": addr, "admin": admin}
    finally:
        broker.stop()


def allow(admin, resource_type, name, operation, pattern=ResourcePatternType.LITERAL,
          principal="User:alice", timeout_s=DEADLINE_S):
    binding = AclBinding(resource_type, name, pattern, principal, "*", operation,
                         AclPermissionType.ALLOW)
    for future in admin.create_acls([binding]).values():
        future.result(timeout_s)


def create_topic(admin, name):
    for future in admin.create_topics([NewTopic(name, 1, 1)]).values():
        future.result(DEADLINE_S)


def produce_error(addr, topic, **extra):
    """The delivery error of one record (None: delivered)."""
    producer = Producer(client(addr, "alice", **{"message.timeout.ms": 10000, **extra}))
    errors = []
    producer.produce(topic, b"v", on_delivery=lambda err, _msg: errors.append(err))
    producer.flush(DEADLINE_S)
    return errors[0] if errors else "not delivered"


def test_produce_is_denied_then_allowed(acl_broker):
    topic = f"acl-produce-{uuid.uuid4().hex[:6]}"
    create_topic(acl_broker["admin"], topic)
    error = produce_error(acl_broker["addr"], topic)
    assert error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, error
    allow(acl_broker["admin"], ResourceType.TOPIC, topic, AclOperation.WRITE)
    assert produce_error(acl_broker["addr"], topic) is None


def test_consuming_in_a_group_needs_read_on_topic_and_group(acl_broker):
    addr, admin = acl_broker["addr"], acl_broker["admin"]
    topic, group = f"acl-consume-{uuid.uuid4().hex[:6]}", f"acl-group-{uuid.uuid4().hex[:6]}"
    create_topic(admin, topic)
    producer = Producer(client(addr, "admin"))
    producer.produce(topic, b"for-alice")
    assert producer.flush(DEADLINE_S) == 0

    def consume_once():
        consumer = Consumer(client(addr, "alice", **{
            "group.id": group, "auto.offset.reset": "earliest"}))
        consumer.subscribe([topic])
        seen = []
        try:
            def poll():
                message = consumer.poll(0.5)
                if message is not None:
                    seen.append(message)
                return bool(seen)
            wait_until(poll, 20, "a message or an error")
        finally:
            consumer.close()
        return seen[0]

    denied = consume_once()
    assert denied.error() is not None and denied.error().code() in (
        KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.GROUP_AUTHORIZATION_FAILED), denied.error()
    allow(admin, ResourceType.TOPIC, topic, AclOperation.READ)
    denied = consume_once()
    assert denied.error() is not None and denied.error().code() == \
        KafkaError.GROUP_AUTHORIZATION_FAILED, denied.error()
    allow(admin, ResourceType.GROUP, group, AclOperation.READ)
    message = consume_once()
    assert message.error() is None and message.value() == b"for-alice"


def test_create_topic_is_denied_then_allowed_by_a_prefixed_acl(acl_broker):
    addr, admin = acl_broker["addr"], acl_broker["admin"]
    alice = AdminClient(client(addr, "alice"))
    topic = f"alice-{uuid.uuid4().hex[:6]}"
    with pytest.raises(KafkaException) as denied:
        create_topic(alice, topic)
    assert denied.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    allow(admin, ResourceType.TOPIC, "alice-", AclOperation.CREATE, ResourcePatternType.PREFIXED)
    create_topic(alice, topic)
    with pytest.raises(KafkaException):
        create_topic(alice, f"bob-{uuid.uuid4().hex[:6]}")


def test_describe_configs_is_denied_then_allowed(acl_broker):
    addr, admin = acl_broker["addr"], acl_broker["admin"]
    topic = f"acl-configs-{uuid.uuid4().hex[:6]}"
    create_topic(admin, topic)
    alice = AdminClient(client(addr, "alice"))
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    with pytest.raises(KafkaException) as denied:
        for future in alice.describe_configs([resource]).values():
            future.result(DEADLINE_S)
    assert denied.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    allow(admin, ResourceType.TOPIC, topic, AclOperation.DESCRIBE_CONFIGS)
    for future in alice.describe_configs([resource]).values():
        assert "retention.ms" in future.result(DEADLINE_S)


def test_transactional_produce_needs_write_on_the_transactional_id(acl_broker):
    addr, admin = acl_broker["addr"], acl_broker["admin"]
    topic = f"acl-txn-{uuid.uuid4().hex[:6]}"
    txn_id = f"tx-alice-{uuid.uuid4().hex[:6]}"
    create_topic(admin, topic)
    allow(admin, ResourceType.TOPIC, topic, AclOperation.WRITE)
    producer = Producer(client(addr, "alice", **{"transactional.id": txn_id}))
    with pytest.raises(KafkaException) as denied:
        producer.init_transactions(20)
    assert denied.value.args[0].code() == KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    allow(admin, ResourceType.TRANSACTIONAL_ID, txn_id, AclOperation.WRITE)
    producer = Producer(client(addr, "alice", **{"transactional.id": txn_id}))
    producer.init_transactions(DEADLINE_S)
    producer.begin_transaction()
    producer.produce(topic, b"in-a-transaction")
    producer.commit_transaction(DEADLINE_S)


def test_metadata_hides_topics_and_deleted_acls_deny_again(acl_broker):
    addr, admin = acl_broker["addr"], acl_broker["admin"]
    seen, hidden = f"acl-seen-{uuid.uuid4().hex[:6]}", f"acl-hidden-{uuid.uuid4().hex[:6]}"
    create_topic(admin, seen)
    create_topic(admin, hidden)
    allow(admin, ResourceType.TOPIC, seen, AclOperation.WRITE)
    topics = AdminClient(client(addr, "alice")).list_topics(timeout=DEADLINE_S).topics
    assert seen in topics and hidden not in topics
    assert hidden in admin.list_topics(timeout=DEADLINE_S).topics
    described = admin.describe_acls(AclBindingFilter(
        ResourceType.TOPIC, seen, ResourcePatternType.LITERAL, "User:alice", None,
        AclOperation.ANY, AclPermissionType.ANY)).result(DEADLINE_S)
    assert [(b.name, b.operation) for b in described] == [(seen, AclOperation.WRITE)]
    for future in admin.delete_acls([AclBindingFilter(
            ResourceType.TOPIC, seen, ResourcePatternType.ANY, "User:alice", None,
            AclOperation.ANY, AclPermissionType.ANY)]).values():
        assert len(future.result(DEADLINE_S)) == 1
    error = produce_error(addr, seen)
    assert error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, error


def test_kafka_python_admin_creates_and_lists_acls(acl_broker):
    from kafka.admin import (ACL, ACLFilter, ACLOperation, ACLPermissionType,
                             ACLResourcePatternType, KafkaAdminClient, ResourcePattern,
                             ResourcePatternFilter)
    from kafka.admin import ResourceType as KpResourceType
    admin = KafkaAdminClient(bootstrap_servers=acl_broker["addr"],
                             security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-512",
                             sasl_plain_username="admin", sasl_plain_password=ADMIN_PASSWORD)
    group = f"kp-group-{uuid.uuid4().hex[:6]}"
    acl = ACL("User:alice", "*", ACLOperation.READ, ACLPermissionType.ALLOW,
              ResourcePattern(KpResourceType.GROUP, group, ACLResourcePatternType.LITERAL))
    created = admin.create_acls([acl])
    assert created["failed"] == [], created
    found, error = admin.describe_acls(ACLFilter(
        "User:alice", None, ACLOperation.ANY, ACLPermissionType.ANY,
        ResourcePatternFilter(KpResourceType.GROUP, group, ACLResourcePatternType.LITERAL)))
    assert error.errno == 0 and [a.resource_pattern.resource_name for a in found] == [group]
    admin.close()


def test_acls_survive_a_restart(acl_broker):
    addr, admin = acl_broker["addr"], acl_broker["admin"]
    topic = f"acl-restart-{uuid.uuid4().hex[:6]}"
    create_topic(admin, topic)
    allow(admin, ResourceType.TOPIC, topic, AclOperation.WRITE)
    broker = acl_broker["broker"]
    broker.proc.terminate()
    broker.proc.wait(DEADLINE_S)
    broker.restart()

    def new_listener():
        with open(broker.log_path, encoding="utf-8", errors="replace") as log:
            text = log.read().split("----- restart -----")[-1]
        found = re.findall(r"listening addr=(\S+) listener=sasl ", text)
        return found[-1] if found else None

    addr = wait_until(new_listener, DEADLINE_S, "the restarted listener")
    acl_broker["addr"] = addr
    acl_broker["admin"] = AdminClient(client(addr, "admin"))
    assert produce_error(addr, topic) is None


def test_acls_are_replicated_and_survive_a_controller_failover():
    binary = os.environ.get("COMPAT_BROKER_BIN")
    if not binary:
        pytest.skip("n/a: needs the broker binary (COMPAT_BROKER_BIN); not run against --bootstrap")
    run_dir = tempfile.mkdtemp(prefix="tidelog-compat-acl-cluster-")
    # The cluster's own readiness check bootstraps on the PLAINTEXT listener as ANONYMOUS.
    extra = dict(settings(run_dir), TIDELOG_AUTHORIZATION__SUPER_USERS="User:admin,User:ANONYMOUS")
    cluster = broker_mod.Cluster(binary, run_dir, 3, name="broker-acl", settings=extra)
    try:
        addrs = [wait_until(lambda b=b: listener_addr(b.log_path, "sasl"), DEADLINE_S, "listener")
                 for b in cluster.brokers]
        admin = AdminClient(client(addrs[0], "admin"))
        wait_until(lambda: bool(admin.list_topics(timeout=5).brokers), DEADLINE_S, "admin")
        topic = f"acl-cluster-{uuid.uuid4().hex[:6]}"
        wait_until(lambda: (admin.create_topics([NewTopic(topic, 3, 3)])[topic].result(30)
                            or True), DEADLINE_S, "the topic")
        allow(admin, ResourceType.TOPIC, topic, AclOperation.WRITE)
        for addr in addrs:
            wait_until(lambda a=addr: produce_error(a, topic) is None, DEADLINE_S,
                       f"alice producing through {addr}")
        leader = admin.describe_cluster(request_timeout=DEADLINE_S).result(DEADLINE_S).controller.id
        victim = next(b for b in cluster.brokers if b.node_id == leader)
        victim.kill9()
        survivors = [a for b, a in zip(cluster.brokers, addrs) if b is not victim]
        for addr in survivors:
            wait_until(lambda a=addr: produce_error(a, topic) is None, DEADLINE_S,
                       f"alice producing through {addr} after the failover")
        other = f"acl-cluster-after-{uuid.uuid4().hex[:6]}"

        def grant():
            # A fresh client each time: librdkafka sends CreateAcls to the controller its
            # Metadata named, and a client that learnt the killed one keeps waiting for it.
            survivor_admin = AdminClient(client(survivors[0], "admin"))
            try:
                allow(survivor_admin, ResourceType.TOPIC, other, AclOperation.DESCRIBE,
                      timeout_s=10)
                return True
            except (KafkaException, TimeoutError):
                return False

        wait_until(grant, DEADLINE_S, "an ACL created after the failover")
        survivor_admin = AdminClient(client(survivors[0], "admin"))
        found = survivor_admin.describe_acls(AclBindingFilter(
            ResourceType.TOPIC, other, ResourcePatternType.LITERAL, None, None,
            AclOperation.ANY, AclPermissionType.ANY)).result(DEADLINE_S)
        assert len(found) == 1
    finally:
        cluster.stop()
