"""The size of each partition's log on one broker (DescribeLogDirs v1 over a plain socket).

Scenario s12 (leader_kill.py) uses it to tell when a restarted broker's replicas hold what the
others hold: clients' Metadata shows only the leader's view, and ListOffsets is answered by the
leader alone.
"""
import socket
import struct

from apiversions import FrameReader, recv_exact

DESCRIBE_LOG_DIRS = 35
CORRELATION_ID = 11


def _string(text):
    data = text.encode()
    return struct.pack(">h", len(data)) + data


def log_sizes(address, topic, partitions, timeout_s=10.0):
    """{partition: bytes of its log on the broker at `address` (HOST:PORT)} for partitions
    0..partitions-1 of `topic`; a partition the broker holds no replica of is absent."""
    client_id = b"tidelog-compat"
    # Request header v1: api_key, api_version, correlation_id, client_id.
    header = struct.pack(">hhih", DESCRIBE_LOG_DIRS, 1, CORRELATION_ID, len(client_id)) + client_id
    body = (struct.pack(">i", 1) + _string(topic) + struct.pack(">i", partitions)
            + b"".join(struct.pack(">i", p) for p in range(partitions)))
    request = header + body
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout_s) as sock:
        sock.sendall(struct.pack(">i", len(request)) + request)
        (size,) = struct.unpack(">i", recv_exact(sock, 4, "DescribeLogDirs"))
        reader = FrameReader(recv_exact(sock, size, "DescribeLogDirs"))
    correlation_id = reader.take(">i")
    assert correlation_id == CORRELATION_ID, f"DescribeLogDirs answered correlation id {correlation_id}"
    reader.take(">i")  # throttle_time_ms
    sizes = {}
    for _ in range(reader.take(">i")):
        error_code = reader.take(">h")
        log_dir = reader.string()
        assert error_code == 0, f"DescribeLogDirs {address} {log_dir}: error {error_code}"
        for _ in range(reader.take(">i")):
            name = reader.string()
            for _ in range(reader.take(">i")):
                index, partition_size, _, _ = reader.take(">iqq?")
                if name == topic:
                    sizes[index] = sizes.get(index, 0) + partition_size
    return sizes
