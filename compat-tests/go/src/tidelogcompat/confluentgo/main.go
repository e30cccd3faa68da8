// Command confluentgo runs one compat scenario with confluent-kafka-go (Debian's
// golang-github-confluentinc-confluent-kafka-go-dev, linked against Debian's librdkafka).
package main

import (
	"context"
	"fmt"
	"time"

	"github.com/confluentinc/confluent-kafka-go/kafka"

	"tidelogcompat/scenario"
)

const timeoutMs = 30000

type client struct {
	bootstrap string
	admin     *kafka.AdminClient
}

func open(bootstrap string) (scenario.Client, error) {
	admin, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": bootstrap})
	return &client{bootstrap: bootstrap, admin: admin}, err
}

func (c *client) Close() { c.admin.Close() }

func (c *client) Codecs() []string { return []string{"none", "gzip", "snappy", "lz4", "zstd"} }

func (c *client) ListTopics() (map[string]int, error) {
	md, err := c.admin.GetMetadata(nil, true, timeoutMs)
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for name, t := range md.Topics {
		if t.Error.Code() == kafka.ErrNoError {
			out[name] = len(t.Partitions)
		}
	}
	return out, nil
}

func (c *client) Brokers() ([]string, error) {
	md, err := c.admin.GetMetadata(nil, false, timeoutMs)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, b := range md.Brokers {
		out = append(out, fmt.Sprintf("%s:%d", b.Host, b.Port))
	}
	return out, nil
}

func ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), timeoutMs*time.Millisecond)
}

func firstError(results []kafka.TopicResult, err error) error {
	if err != nil {
		return err
	}
	for _, r := range results {
		if r.Error.Code() != kafka.ErrNoError {
			return r.Error
		}
	}
	return nil
}

func (c *client) CreateTopic(name string, partitions int, configs map[string]string) error {
	cx, cancel := ctx()
	defer cancel()
	return firstError(c.admin.CreateTopics(cx, []kafka.TopicSpecification{{Topic: name, NumPartitions: partitions, ReplicationFactor: 1, Config: configs}}))
}

func (c *client) TopicConfigs(name string) (map[string]string, error) {
	cx, cancel := ctx()
	defer cancel()
	results, err := c.admin.DescribeConfigs(cx, []kafka.ConfigResource{{Type: kafka.ResourceTopic, Name: name}})
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, r := range results {
		if r.Error.Code() != kafka.ErrNoError {
			return nil, r.Error
		}
		for k, e := range r.Config {
			out[k] = e.Value
		}
	}
	return out, nil
}

func (c *client) DeleteTopic(name string) error {
	cx, cancel := ctx()
	defer cancel()
	return firstError(c.admin.DeleteTopics(cx, []string{name}))
}

func (c *client) Produce(topic string, records []scenario.Record, codec string) ([]scenario.Delivery, error) {
	return c.produce(topic, records, &kafka.ConfigMap{"bootstrap.servers": c.bootstrap, "compression.codec": codec,
		"linger.ms": 5, "message.max.bytes": 4000000, "go.delivery.reports": true})
}

// ProduceIdempotent sets librdkafka's enable.idempotence (the Go wrapper passes it through).
func (c *client) ProduceIdempotent(topic string, records []scenario.Record) ([]scenario.Delivery, error) {
	return c.produce(topic, records, &kafka.ConfigMap{"bootstrap.servers": c.bootstrap, "linger.ms": 5,
		"enable.idempotence": true, "go.delivery.reports": true})
}

func (c *client) Transactions() error {
	return scenario.NotApplicable{Reason: "confluent-kafka-go 0.11.6 predates its transactions API (InitTransactions came in 1.4.0)"}
}

func (c *client) produce(topic string, records []scenario.Record, config *kafka.ConfigMap) ([]scenario.Delivery, error) {
	p, err := kafka.NewProducer(config)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	reports := make(chan kafka.Event, len(records))
	for i, r := range records {
		partition := kafka.PartitionAny
		if r.Partition >= 0 {
			partition = r.Partition
		}
		m := &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: partition},
			Key: r.Key, Value: r.Value, Timestamp: r.Timestamp, Opaque: i}
		for _, h := range r.Headers {
			m.Headers = append(m.Headers, kafka.Header{Key: h.Key, Value: h.Value})
		}
		for {
			err := p.Produce(m, reports)
			if err == nil {
				break
			}
			if e, ok := err.(kafka.Error); ok && e.Code() == kafka.ErrQueueFull {
				time.Sleep(10 * time.Millisecond) // local queue full: let deliveries drain
				continue
			}
			return nil, err
		}
	}
	out := make([]scenario.Delivery, len(records))
	deadline := time.After(timeoutMs * time.Millisecond)
	for n := 0; n < len(records); n++ {
		select {
		case ev := <-reports:
			m := ev.(*kafka.Message)
			if err := m.TopicPartition.Error; err != nil {
				if e, ok := err.(kafka.Error); ok && e.Code() == kafka.ErrMsgSizeTooLarge {
					return nil, fmt.Errorf("%w (%v)", scenario.ErrTooLarge, err)
				}
				return nil, err
			}
			out[m.Opaque.(int)] = scenario.Delivery{Partition: m.TopicPartition.Partition, Offset: int64(m.TopicPartition.Offset)}
		case <-deadline:
			return nil, fmt.Errorf("%d of %d delivery reports after %dms", n, len(records), timeoutMs)
		}
	}
	return out, nil
}

func (c *client) consumer(group string) (*kafka.Consumer, error) {
	// The Go wrapper requires a group.id even for assign(); assign never joins the group.
	return kafka.NewConsumer(&kafka.ConfigMap{"bootstrap.servers": c.bootstrap, "group.id": group,
		"enable.auto.commit": false, "auto.offset.reset": "earliest", "session.timeout.ms": 10000,
		"heartbeat.interval.ms": 500})
}

func (c *client) EndOffset(topic string, partition int32) (int64, error) {
	consumer, err := c.consumer("compat-assign-only")
	if err != nil {
		return 0, err
	}
	defer consumer.Close()
	_, high, err := consumer.QueryWatermarkOffsets(topic, partition, timeoutMs)
	return high, err
}

func (c *client) OffsetForTime(topic string, partition int32, ts time.Time) (int64, error) {
	consumer, err := c.consumer("compat-assign-only")
	if err != nil {
		return 0, err
	}
	defer consumer.Close()
	found, err := consumer.OffsetsForTimes([]kafka.TopicPartition{{Topic: &topic, Partition: partition,
		Offset: kafka.Offset(ts.UnixNano() / int64(time.Millisecond))}}, timeoutMs)
	if err != nil {
		return 0, err
	}
	return int64(found[0].Offset), found[0].Error
}

type reader struct{ consumer *kafka.Consumer }

func (c *client) Reader(topic string, partition int32, start int64) (scenario.Reader, error) {
	offset := kafka.Offset(start)
	switch start {
	case scenario.Beginning:
		offset = kafka.OffsetBeginning
	case scenario.End:
		offset = kafka.OffsetEnd
	}
	consumer, err := c.consumer("compat-assign-only")
	if err != nil {
		return nil, err
	}
	if err := consumer.Assign([]kafka.TopicPartition{{Topic: &topic, Partition: partition, Offset: offset}}); err != nil {
		consumer.Close()
		return nil, err
	}
	return &reader{consumer}, nil
}

func (c *client) ReaderAtTime(topic string, partition int32, ts time.Time) (scenario.Reader, error) {
	offset, err := c.OffsetForTime(topic, partition, ts)
	if err != nil {
		return nil, err
	}
	return c.Reader(topic, partition, offset)
}

func poll(consumer *kafka.Consumer, timeout time.Duration) ([]scenario.Received, error) {
	var out []scenario.Received
	end := time.Now().Add(timeout)
	for wait := timeout; wait > 0 && len(out) < 1000; wait = time.Until(end) {
		switch ev := consumer.Poll(int(wait / time.Millisecond)).(type) {
		case *kafka.Message:
			if ev.TopicPartition.Error != nil {
				return out, ev.TopicPartition.Error
			}
			r := scenario.Received{Partition: ev.TopicPartition.Partition, Offset: int64(ev.TopicPartition.Offset),
				Key: ev.Key, Value: ev.Value, Timestamp: ev.Timestamp}
			for _, h := range ev.Headers {
				r.Headers = append(r.Headers, scenario.Header{Key: h.Key, Value: h.Value})
			}
			out = append(out, r)
		case kafka.Error:
			if ev.Code() != kafka.ErrPartitionEOF {
				return out, ev
			}
		}
	}
	return out, nil
}

func (r *reader) Poll(timeout time.Duration) ([]scenario.Received, error) {
	return poll(r.consumer, timeout)
}
func (r *reader) Close() error { return r.consumer.Close() }

type member struct {
	consumer *kafka.Consumer
	topic    string
}

func (c *client) GroupMember(group, topic string) (scenario.Member, error) {
	consumer, err := c.consumer(group)
	if err != nil {
		return nil, err
	}
	if err := consumer.Subscribe(topic, nil); err != nil {
		consumer.Close()
		return nil, err
	}
	return &member{consumer, topic}, nil
}

func (m *member) Poll(timeout time.Duration) ([]scenario.Received, error) {
	return poll(m.consumer, timeout)
}

func (m *member) Assignment() []int32 {
	parts, _ := m.consumer.Assignment()
	var out []int32
	for _, p := range parts {
		out = append(out, p.Partition)
	}
	return out
}

func (m *member) Commit(next map[int32]int64) error {
	if len(next) == 0 {
		return nil
	}
	var offsets []kafka.TopicPartition
	for p, o := range next {
		offsets = append(offsets, kafka.TopicPartition{Topic: &m.topic, Partition: p, Offset: kafka.Offset(o)})
	}
	_, err := m.consumer.CommitOffsets(offsets)
	return err
}

func (m *member) Close() error { return m.consumer.Close() }

func main() { scenario.Main("confluent-kafka-go", open) }
