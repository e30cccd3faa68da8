"""Ask a broker which Kafka APIs it serves (ApiVersions v0 over a plain socket).

The matrix uses this to show a scenario "not yet" when the broker does not serve the APIs it
needs, instead of running it and counting a failure (or worse, a pass).
"""
import socket
import struct
import time

API_NAMES = {
    0: "Produce", 1: "Fetch", 2: "ListOffsets", 3: "Metadata", 8: "OffsetCommit",
    9: "OffsetFetch", 10: "FindCoordinator", 11: "JoinGroup", 12: "Heartbeat",
    13: "LeaveGroup", 14: "SyncGroup", 15: "DescribeGroups", 16: "ListGroups",
    18: "ApiVersions", 19: "CreateTopics", 20: "DeleteTopics", 21: "DeleteRecords",
    22: "InitProducerId", 23: "OffsetForLeaderEpoch", 24: "AddPartitionsToTxn",
    25: "AddOffsetsToTxn", 26: "EndTxn", 28: "TxnOffsetCommit", 32: "DescribeConfigs",
    33: "AlterConfigs", 35: "DescribeLogDirs", 36: "SaslAuthenticate", 37: "CreatePartitions",
    42: "DeleteGroups", 44: "IncrementalAlterConfigs", 47: "OffsetDelete", 60: "DescribeCluster",
    61: "DescribeProducers", 65: "DescribeTransactions", 66: "ListTransactions",
    68: "ConsumerGroupHeartbeat", 69: "ConsumerGroupDescribe",
}
NAME_KEYS = {name: key for key, name in API_NAMES.items()}


class FrameReader:
    """Reads a response body field by field (struct formats, varints, strings, tags)."""

    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, fmt):
        values = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return values if len(values) > 1 else values[0]

    def uvarint(self):
        value, shift = 0, 0
        while True:
            byte = self.data[self.pos]
            self.pos += 1
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7

    def string(self):
        """A non-flexible STRING (int16 length, -1 = null)."""
        return self._text(self.take(">h"))

    def compact_string(self):
        return self._text(self.uvarint() - 1)

    def _text(self, length):
        if length < 0:
            return None
        text = self.data[self.pos:self.pos + length].decode()
        self.pos += length
        return text

    def skip_tagged_fields(self):
        for _ in range(self.uvarint()):
            self.uvarint()
            self.pos += self.uvarint()


def recv_exact(sock, count, api="ApiVersions"):
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError(f"broker closed the connection during {api}")
        data += chunk
    return data


def api_versions(bootstrap, timeout_s=10.0):
    """Return {api_name_or_key: (min_version, max_version)} as served by the broker."""
    host, port = bootstrap.rsplit(":", 1)
    client_id = b"tidelog-compat"
    # Request header v1: api_key, api_version, correlation_id, client_id; ApiVersions v0 body is empty.
    body = struct.pack(">hhih", 18, 0, 1, len(client_id)) + client_id
    deadline = time.monotonic() + timeout_s
    last_error = None
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, int(port)), timeout=timeout_s) as sock:
                sock.sendall(struct.pack(">i", len(body)) + body)
                (size,) = struct.unpack(">i", recv_exact(sock, 4))
                payload = recv_exact(sock, size)
            break
        except OSError as error:  # broker still starting: retry until the deadline
            last_error = error
            time.sleep(0.2)
    else:
        raise ConnectionError(f"ApiVersions to {bootstrap} failed: {last_error}")
    correlation_id, error_code, count = struct.unpack(">ihi", payload[:10])
    if correlation_id != 1 or error_code != 0:
        raise ValueError(f"ApiVersions answered correlation {correlation_id} error {error_code}")
    served = {}
    for idx in range(count):
        key, low, high = struct.unpack(">hhh", payload[10 + 6 * idx: 16 + 6 * idx])
        served[API_NAMES.get(key, key)] = (low, high)
    return served


def missing_apis(bootstrap, names):
    """The subset of `names` the broker does not serve (empty when everything is there)."""
    served = api_versions(bootstrap)
    return [name for name in names if name not in served]


if __name__ == "__main__":
    import sys
    for name, (low, high) in sorted(api_versions(sys.argv[1]).items(), key=lambda kv: str(kv[0])):
        print(f"{name}: {low}-{high}")
