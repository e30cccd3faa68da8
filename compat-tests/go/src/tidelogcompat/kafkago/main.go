// Command kafkago runs one compat scenario with segmentio/kafka-go 0.2.1 (Debian's
// golang-github-segmentio-kafka-go-dev). That version speaks Metadata v1, CreateTopics v0,
// DeleteTopics v1, but only Produce v2 / Fetch v2 / ListOffsets v1 with message format v1,
// which Kafka 4.0 removed; scenarios that produce or consume report what the broker answered.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	kafka "github.com/segmentio/kafka-go"

	"tidelogcompat/scenario"
)

type client struct{ bootstrap string }

func open(bootstrap string) (scenario.Client, error) { return &client{bootstrap}, nil }

func (c *client) Close() {}

func (c *client) Codecs() []string { return []string{"none", "gzip", "snappy", "lz4"} }

func (c *client) dial() (*kafka.Conn, error) {
	conn, err := kafka.Dial("tcp", c.bootstrap)
	if err == nil {
		conn.SetDeadline(time.Now().Add(30 * time.Second))
	}
	return conn, err
}

func (c *client) ListTopics() (map[string]int, error) {
	conn, err := c.dial()
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	parts, err := conn.ReadPartitions()
	out := map[string]int{}
	for _, p := range parts {
		out[p.Topic]++
	}
	return out, err
}

func (c *client) Brokers() ([]string, error) {
	conn, err := c.dial()
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	parts, err := conn.ReadPartitions()
	seen := map[string]bool{}
	var out []string
	for _, p := range parts {
		addr := fmt.Sprintf("%s:%d", p.Leader.Host, p.Leader.Port)
		if !seen[addr] {
			seen[addr] = true
			out = append(out, addr)
		}
	}
	return out, err
}

func (c *client) CreateTopic(name string, partitions int, configs map[string]string) error {
	conn, err := c.dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	var entries []kafka.ConfigEntry
	for k, v := range configs {
		entries = append(entries, kafka.ConfigEntry{ConfigName: k, ConfigValue: v})
	}
	if err := conn.CreateTopics(kafka.TopicConfig{Topic: name, NumPartitions: partitions, ReplicationFactor: 1, ConfigEntries: entries}); err != nil {
		if errors.Is(err, io.EOF) {
			// Kafka 4 (and Tidelog) serve CreateTopics >= v2 and close the connection on older versions.
			return legacy("CreateTopics v0", err)
		}
		return err
	}
	return nil
}

func (c *client) TopicConfigs(name string) (map[string]string, error) {
	return nil, scenario.NotApplicable{Reason: "kafka-go 0.2.1 has no DescribeConfigs"}
}

func (c *client) DeleteTopic(name string) error {
	conn, err := c.dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.DeleteTopics(name)
}

// legacy wraps an error from a request only message-format-v1 versions of which kafka-go knows.
func legacy(api string, err error) error {
	return scenario.NotApplicable{Reason: fmt.Sprintf(
		"kafka-go 0.2.1 only sends %s, removed in Kafka 4.0 (KIP-896); broker answered: %v", api, err)}
}

func (c *client) Produce(topic string, records []scenario.Record, codec string) ([]scenario.Delivery, error) {
	partition := 0
	if len(records) > 0 && records[0].Partition > 0 {
		partition = int(records[0].Partition)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	conn, err := kafka.DialLeader(ctx, "tcp", c.bootstrap, topic, partition)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(15 * time.Second))
	var msgs []kafka.Message
	for _, r := range records {
		msgs = append(msgs, kafka.Message{Key: r.Key, Value: r.Value, Time: r.Timestamp})
	}
	if _, err := conn.WriteMessages(msgs...); err != nil {
		return nil, legacy("Produce v2 (message format v1)", err)
	}
	return nil, scenario.NotApplicable{Reason: "kafka-go 0.2.1 Produce v2 unexpectedly succeeded; extend this adapter"}
}

func (c *client) ProduceIdempotent(topic string, records []scenario.Record) ([]scenario.Delivery, error) {
	return nil, scenario.NotApplicable{Reason: "kafka-go 0.2.1 has no idempotent producer"}
}

func (c *client) Transactions() error {
	return scenario.NotApplicable{Reason: "kafka-go 0.2.1 has no transactional producer"}
}

func (c *client) EndOffset(topic string, partition int32) (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	conn, err := kafka.DialLeader(ctx, "tcp", c.bootstrap, topic, int(partition))
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(15 * time.Second))
	return conn.ReadLastOffset()
}

func (c *client) OffsetForTime(topic string, partition int32, ts time.Time) (int64, error) {
	return 0, legacy("ListOffsets v1", fmt.Errorf("not attempted"))
}

func (c *client) Reader(topic string, partition int32, start int64) (scenario.Reader, error) {
	return nil, legacy("Fetch v2 (message format v1)", fmt.Errorf("not attempted"))
}

func (c *client) ReaderAtTime(topic string, partition int32, ts time.Time) (scenario.Reader, error) {
	return nil, legacy("Fetch v2 (message format v1)", fmt.Errorf("not attempted"))
}

func (c *client) GroupMember(group, topic string) (scenario.Member, error) {
	return nil, legacy("Fetch v2 (message format v1)", fmt.Errorf("not attempted"))
}

func main() { scenario.Main("kafka-go", open) }
