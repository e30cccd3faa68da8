"""What a scenario needs from a client, in the client's own terms.

`Record` is what we send and `Received` what we read back; adapters translate to and from their
client's types. `start` for readers is "beginning", "end", an int offset or ("timestamp", ms).
"""
import os
from dataclasses import dataclass, field

CODECS = ("none", "gzip", "snappy", "lz4", "zstd")
# Replicas of the topics the scenarios create: what the run gives (3 against a cluster of three
# or more brokers, 1 against one broker).
REPLICATION_FACTOR = int(os.environ.get("COMPAT_REPLICATION_FACTOR", "1"))


@dataclass(frozen=True)
class Record:
    key: bytes | None
    value: bytes | None
    headers: tuple = ()  # ((name: str, value: bytes | None), ...)
    partition: int | None = None
    timestamp_ms: int | None = None


@dataclass(frozen=True)
class Received:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple = ()
    timestamp_ms: int | None = None


@dataclass
class Delivery:
    partition: int
    offset: int


@dataclass
class TooLarge(Exception):
    """Raised by produce when the broker (not the client) refused a record as too large."""
    detail: str = ""


@dataclass
class Adapter:
    name: str
    bootstrap: str
    codecs: tuple = CODECS
    has_admin: bool = True
    null_header_values: bool = True
    extra: dict = field(default_factory=dict)

    def close(self):
        pass


def isolation_level(read_committed):
    """`isolation_level=` for kafka-python and aiokafka when a scenario asks for one (None keeps
    the client's default, read_uncommitted for both)."""
    if read_committed is None:
        return {}
    return {"isolation_level": "read_committed" if read_committed else "read_uncommitted"}
