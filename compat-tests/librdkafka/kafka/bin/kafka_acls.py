"""The subset of kafka-acls.sh that librdkafka's tests use: --add with --allow-principal or
--deny-principal, --operation, --allow-host or --deny-host and --topic, against
--bootstrap-server. Implemented with confluent-kafka's AdminClient (CreateAcls)."""
import argparse
import sys

from confluent_kafka import KafkaException
from confluent_kafka.admin import (AclBinding, AclOperation, AclPermissionType, AdminClient,
                                   ResourcePatternType, ResourceType)

TIMEOUT_S = 30


def main():
    parser = argparse.ArgumentParser(prog="kafka-acls.sh")
    parser.add_argument("--bootstrap-server", required=True)
    parser.add_argument("--add", action="store_true", required=True)
    parser.add_argument("--allow-principal", action="append", default=[])
    parser.add_argument("--deny-principal", action="append", default=[])
    parser.add_argument("--allow-host", action="append", default=[])
    parser.add_argument("--deny-host", action="append", default=[])
    parser.add_argument("--operation", action="append", required=True)
    parser.add_argument("--topic", required=True)
    args = parser.parse_args()
    # Kafka's CLI: hosts default to '*'; operation names are CamelCase (All, Read, Describe).
    grants = [(AclPermissionType.ALLOW, p, args.allow_host or ["*"]) for p in args.allow_principal]
    grants += [(AclPermissionType.DENY, p, args.deny_host or ["*"]) for p in args.deny_principal]
    if not grants:
        parser.error("--allow-principal or --deny-principal is required")
    bindings = [
        AclBinding(ResourceType.TOPIC, args.topic, ResourcePatternType.LITERAL, principal, host,
                   AclOperation[_upper_snake(operation)], permission)
        for permission, principal, hosts in grants for host in hosts
        for operation in args.operation
    ]
    admin = AdminClient({"bootstrap.servers": args.bootstrap_server})
    try:
        for binding, future in admin.create_acls(bindings).items():
            future.result(TIMEOUT_S)
            print(f"Adding ACL: {binding}")
    except KafkaException as error:
        print(f"Error while executing ACL command: {error}", file=sys.stderr)
        return 1
    return 0


def _upper_snake(operation):
    """`DescribeConfigs` -> `DESCRIBE_CONFIGS` (AclOperation's member names)."""
    return "".join(f"_{c}" if c.isupper() and i else c for i, c in enumerate(operation)).upper()


if __name__ == "__main__":
    sys.exit(main())
