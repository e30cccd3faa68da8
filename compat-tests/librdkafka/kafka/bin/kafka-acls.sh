#!/usr/bin/env bash
# Our stand-in for Kafka's kafka-acls.sh (no JVM here): librdkafka's tests 0109, 0115 and 0119
# shell out to $KAFKA_PATH/bin/kafka-acls.sh; this does the same through an admin client.
exec "${COMPAT_PYTHON:-python3}" "$(dirname "${BASH_SOURCE[0]}")/kafka_acls.py" "$@"
