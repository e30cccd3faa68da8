#!/usr/bin/env bash
# Our stand-in for Kafka's kafka-topics.sh (no JVM here): librdkafka's test suite shells out to
# $KAFKA_PATH/bin/kafka-topics.sh; this does the same through an admin client (kafka_topics.py).
exec "${COMPAT_PYTHON:-python3}" "$(dirname "${BASH_SOURCE[0]}")/kafka_topics.py" "$@"
