"""Ours: the kafka-python sdist's fixtures import test.service, which the sdist lacks.

compat-tests only runs the integration tests against an external broker (KAFKA_URI), so
ExternalService is a plain record of host/port and spawning a broker is refused.
"""


class ExternalService:
    def __init__(self, host, port):
        self.host = host
        self.port = port

    def open(self):
        pass

    def close(self):
        pass

    def stop(self):
        pass

    def dump_logs(self):
        pass

    def wait_for(self, pattern, timeout=30):
        return True


class SpawnedService:
    def __init__(self, *args, **kwargs):
        raise RuntimeError("compat-tests runs kafka-python's tests against an external broker only "
                           "(set KAFKA_URI); spawning a Kafka broker is not supported here")
