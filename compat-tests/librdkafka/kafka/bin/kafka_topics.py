"""The subset of kafka-topics.sh that librdkafka's tests use: --create/--delete/--alter/--list/
--describe with --topic, --partitions, --replication-factor, --config k=v, --if-not-exists,
against --bootstrap-server. Implemented with confluent-kafka's AdminClient."""
import argparse
import sys

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

TIMEOUT_S = 30


def main():
    parser = argparse.ArgumentParser(prog="kafka-topics.sh")
    parser.add_argument("--bootstrap-server", required=True)
    for action in ("create", "delete", "alter", "list", "describe"):
        parser.add_argument(f"--{action}", action="store_true")
    parser.add_argument("--topic")
    parser.add_argument("--partitions", type=int)
    parser.add_argument("--replication-factor", type=int, default=1)
    parser.add_argument("--config", action="append", default=[])
    parser.add_argument("--if-not-exists", action="store_true")
    parser.add_argument("--if-exists", action="store_true")
    args = parser.parse_args()
    admin = AdminClient({"bootstrap.servers": args.bootstrap_server})
    try:
        if args.create:
            configs = dict(item.split("=", 1) for item in args.config)
            topic = NewTopic(args.topic, num_partitions=args.partitions or 1,
                             replication_factor=args.replication_factor, config=configs)
            admin.create_topics([topic])[args.topic].result(TIMEOUT_S)
            print(f"Created topic {args.topic}.")
        elif args.delete:
            admin.delete_topics([args.topic])[args.topic].result(TIMEOUT_S)
        elif args.alter:
            admin.create_partitions([NewPartitions(args.topic, args.partitions)])[args.topic] \
                .result(TIMEOUT_S)
        elif args.list:
            for name in sorted(admin.list_topics(timeout=TIMEOUT_S).topics):
                print(name)
        elif args.describe:
            metadata = admin.list_topics(args.topic, timeout=TIMEOUT_S)
            for name, topic in metadata.topics.items():
                print(f"Topic: {name}\tPartitionCount: {len(topic.partitions)}")
        else:
            parser.error("one of --create/--delete/--alter/--list/--describe is required")
    except KafkaException as error:
        code = error.args[0].code()
        if (args.if_not_exists and code == KafkaError.TOPIC_ALREADY_EXISTS) or \
                (args.if_exists and code == KafkaError.UNKNOWN_TOPIC_OR_PART):
            return 0
        print(f"Error while executing topic command : {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
