"""Ask the broker which producers wrote to a partition (DescribeProducers v0 over a plain socket).

The idempotence scenario uses it to check that a client really produced idempotently (the broker
holds a producer id and the last sequence number for it) instead of silently falling back to
plain produce, whatever the client reports about itself.
"""
import socket
import struct
from dataclasses import dataclass

from apiversions import FrameReader, recv_exact

DESCRIBE_PRODUCERS = 61


@dataclass(frozen=True)
class ActiveProducer:
    producer_id: int
    producer_epoch: int
    last_sequence: int
    current_txn_start_offset: int


def _uvarint(value):
    out = b""
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out += bytes([byte | 0x80])
        else:
            return out + bytes([byte])


def _compact_string(text):
    data = text.encode()
    return _uvarint(len(data) + 1) + data


def _leader(bootstrap, topic, partition, timeout_s):
    """(host, port) of the partition's leader (the only broker that answers for it, as in
    Kafka, whose admin client sends DescribeProducers there); the bootstrap broker if unknown."""
    try:
        from confluent_kafka.admin import AdminClient
        metadata = AdminClient({"bootstrap.servers": bootstrap}).list_topics(
            topic, timeout=timeout_s)
        leader = metadata.topics[topic].partitions[partition].leader
        broker = metadata.brokers[leader]
        return broker.host, broker.port
    except Exception:  # no client or no leader known: ask the bootstrap broker
        host, port = bootstrap.rsplit(":", 1)
        return host, int(port)


def describe_producers(bootstrap, topic, partition, timeout_s=10.0):
    """The active producers of one partition, as the broker (its leader) reports them."""
    client_id = b"tidelog-compat"
    # Request header v2 (flexible): api_key, api_version, correlation_id, client_id, tags.
    header = struct.pack(">hhih", DESCRIBE_PRODUCERS, 0, 7, len(client_id)) + client_id + b"\0"
    body = (_uvarint(2) + _compact_string(topic) + _uvarint(2) + struct.pack(">i", partition)
            + b"\0" + b"\0")
    request = header + body
    host, port = _leader(bootstrap, topic, partition, timeout_s)
    with socket.create_connection((host, int(port)), timeout=timeout_s) as sock:
        sock.sendall(struct.pack(">i", len(request)) + request)
        (size,) = struct.unpack(">i", recv_exact(sock, 4, "DescribeProducers"))
        reader = FrameReader(recv_exact(sock, size, "DescribeProducers"))
    correlation_id = reader.take(">i")
    assert correlation_id == 7, f"DescribeProducers answered correlation id {correlation_id}"
    reader.skip_tagged_fields()  # response header v1
    reader.take(">i")  # throttle_time_ms
    producers = []
    for _ in range(reader.uvarint() - 1):
        name = reader.compact_string()
        for _ in range(reader.uvarint() - 1):
            index, error_code = reader.take(">ih")
            message = reader.compact_string()
            if (name, index) == (topic, partition) and error_code != 0:
                raise AssertionError(f"DescribeProducers {topic}[{partition}]: error {error_code} "
                                     f"{message or ''}")
            for _ in range(reader.uvarint() - 1):
                producer_id, epoch, last_sequence, _, _, txn_start = reader.take(">qiiqiq")
                reader.skip_tagged_fields()
                if (name, index) == (topic, partition):
                    producers.append(ActiveProducer(producer_id, epoch, last_sequence, txn_start))
            reader.skip_tagged_fields()
        reader.skip_tagged_fields()
    return producers


if __name__ == "__main__":
    import sys
    for found in describe_producers(sys.argv[1], sys.argv[2], int(sys.argv[3])):
        print(found)
