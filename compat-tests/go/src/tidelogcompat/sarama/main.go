// Command sarama runs one compat scenario with Shopify/sarama (Debian's golang-github-shopify-sarama-dev).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/Shopify/sarama"

	"tidelogcompat/scenario"
)

type client struct {
	addrs  []string
	cfg    *sarama.Config
	client sarama.Client
}

func config() *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_1_0_0 // highest it knows is 2.2; 2.1 enables zstd
	cfg.ClientID = "tidelog-compat-sarama"
	cfg.Producer.Return.Successes = true
	// acks=all: with acks=1 the high watermark may trail the ack by one fsync (FINDINGS #1).
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Retry.Max = 0
	cfg.Producer.MaxMessageBytes = 4000000
	cfg.Consumer.Return.Errors = true
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.CommitInterval = 100 * time.Millisecond
	// A retention makes sarama 1.22 commit with OffsetCommit v2 (offset_manager.go constructRequest);
	// without one it sends v1, which Kafka 4.0 removed (KIP-896) and Tidelog, like Kafka 4, refuses.
	cfg.Consumer.Offsets.Retention = 7 * 24 * time.Hour
	cfg.Consumer.Group.Session.Timeout = 10 * time.Second
	cfg.Consumer.Group.Heartbeat.Interval = 500 * time.Millisecond
	cfg.Metadata.Retry.Backoff = 100 * time.Millisecond
	return cfg
}

func open(bootstrap string) (scenario.Client, error) {
	c := &client{addrs: []string{bootstrap}, cfg: config()}
	var err error
	c.client, err = sarama.NewClient(c.addrs, c.cfg)
	return c, err
}

func (c *client) Close() { c.client.Close() }

func (c *client) Codecs() []string { return []string{"none", "gzip", "snappy", "lz4", "zstd"} }

func (c *client) ListTopics() (map[string]int, error) {
	if err := c.client.RefreshMetadata(); err != nil {
		return nil, err
	}
	names, err := c.client.Topics()
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, name := range names {
		parts, err := c.client.Partitions(name)
		if err != nil {
			return nil, err
		}
		out[name] = len(parts)
	}
	return out, nil
}

func (c *client) Brokers() ([]string, error) {
	var out []string
	for _, b := range c.client.Brokers() {
		out = append(out, b.Addr())
	}
	return out, nil
}

func (c *client) admin() (sarama.ClusterAdmin, error) { return sarama.NewClusterAdmin(c.addrs, c.cfg) }

func (c *client) CreateTopic(name string, partitions int, configs map[string]string) error {
	admin, err := c.admin()
	if err != nil {
		return err
	}
	defer admin.Close()
	entries := map[string]*string{}
	for k, v := range configs {
		v := v
		entries[k] = &v
	}
	return admin.CreateTopic(name, &sarama.TopicDetail{NumPartitions: int32(partitions), ReplicationFactor: 1, ConfigEntries: entries}, false)
}

func (c *client) TopicConfigs(name string) (map[string]string, error) {
	admin, err := c.admin()
	if err != nil {
		return nil, err
	}
	defer admin.Close()
	entries, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: name})
	if errors.Is(err, io.EOF) {
		// Kafka 4 (and Tidelog) serve DescribeConfigs >= v1 and close the connection on v0.
		return nil, scenario.NotApplicable{Reason: "sarama 1.22 sends DescribeConfigs v0, removed in Kafka 4.0 (KIP-896); the broker closed the connection as Kafka 4 does"}
	}
	out := map[string]string{}
	for _, e := range entries {
		out[e.Name] = e.Value
	}
	return out, err
}

func (c *client) DeleteTopic(name string) error {
	admin, err := c.admin()
	if err != nil {
		return err
	}
	defer admin.Close()
	return admin.DeleteTopic(name)
}

var codecs = map[string]sarama.CompressionCodec{"none": sarama.CompressionNone, "gzip": sarama.CompressionGZIP,
	"snappy": sarama.CompressionSnappy, "lz4": sarama.CompressionLZ4, "zstd": sarama.CompressionZSTD}

func bytesOrNil(b []byte) sarama.Encoder {
	if b == nil {
		return nil
	}
	return sarama.ByteEncoder(b)
}

func (c *client) Produce(topic string, records []scenario.Record, codec string) ([]scenario.Delivery, error) {
	cfg := config()
	cfg.Producer.Compression = codecs[codec]
	return c.produce(cfg, topic, records)
}

// ProduceIdempotent uses sarama's idempotent producer, which requires acks=all, retries and
// one request in flight per broker (Config.Validate).
func (c *client) ProduceIdempotent(topic string, records []scenario.Record) ([]scenario.Delivery, error) {
	cfg := config()
	cfg.Producer.Idempotent = true
	cfg.Producer.Retry.Max = 5
	cfg.Net.MaxOpenRequests = 1
	return c.produce(cfg, topic, records)
}

func (c *client) Transactions() error {
	return scenario.NotApplicable{Reason: "sarama 1.22 has no transactional producer (it came in 1.37); it only has the raw request types"}
}

func (c *client) produce(cfg *sarama.Config, topic string, records []scenario.Record) ([]scenario.Delivery, error) {
	cfg.Producer.Partitioner = sarama.NewHashPartitioner
	if len(records) > 0 && records[0].Partition >= 0 {
		cfg.Producer.Partitioner = sarama.NewManualPartitioner
	}
	client, err := sarama.NewClient(c.addrs, cfg)
	if err != nil {
		return nil, err
	}
	defer client.Close()
	if err := connectLeaders(client, topic); err != nil {
		return nil, err
	}
	producer, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		return nil, err
	}
	defer producer.Close()
	msgs := make([]*sarama.ProducerMessage, len(records))
	for i, r := range records {
		m := &sarama.ProducerMessage{Topic: topic, Key: bytesOrNil(r.Key), Value: bytesOrNil(r.Value), Partition: r.Partition, Timestamp: r.Timestamp}
		for _, h := range r.Headers {
			m.Headers = append(m.Headers, sarama.RecordHeader{Key: []byte(h.Key), Value: h.Value})
		}
		msgs[i] = m
	}
	if err := producer.SendMessages(msgs); err != nil {
		if errs, ok := err.(sarama.ProducerErrors); ok && len(errs) > 0 {
			if errs[0].Err == sarama.ErrMessageSizeTooLarge {
				return nil, fmt.Errorf("%w (%v)", scenario.ErrTooLarge, errs[0].Err)
			}
			return nil, produceFailure(errs)
		}
		return nil, err
	}
	out := make([]scenario.Delivery, len(msgs))
	for i, m := range msgs {
		out[i] = scenario.Delivery{Partition: m.Partition, Offset: m.Offset}
	}
	return out, nil
}

// connectLeaders opens the connection to each partition's leader and waits until it is up.
// sarama 1.22's Broker.Open marks a broker opened before it takes the connection lock (it
// validates the config in between): a second partition producer that finds the broker opened
// may send on it before the dial even started and fail with "kafka: broker not connected"
// (seen under CPU load, FINDINGS.md). With every leader connected first, the producer's own
// Open calls find the connection made.
func connectLeaders(client sarama.Client, topic string) error {
	partitions, err := client.Partitions(topic)
	if err != nil {
		return err
	}
	for _, p := range partitions {
		leader, err := client.Leader(topic, p)
		if err != nil {
			return err
		}
		if _, err := leader.Connected(); err != nil {
			return fmt.Errorf("connecting to the leader of %s/%d: %w", topic, p, err)
		}
	}
	return nil
}

func (c *client) EndOffset(topic string, partition int32) (int64, error) {
	return c.client.GetOffset(topic, partition, sarama.OffsetNewest)
}

func (c *client) OffsetForTime(topic string, partition int32, ts time.Time) (int64, error) {
	return c.client.GetOffset(topic, partition, ts.UnixNano()/int64(time.Millisecond))
}

func received(m *sarama.ConsumerMessage) scenario.Received {
	r := scenario.Received{Partition: m.Partition, Offset: m.Offset, Key: m.Key, Value: m.Value, Timestamp: m.Timestamp}
	for _, h := range m.Headers {
		r.Headers = append(r.Headers, scenario.Header{Key: string(h.Key), Value: h.Value})
	}
	return r
}

type reader struct {
	consumer sarama.Consumer
	pc       sarama.PartitionConsumer
}

func (c *client) Reader(topic string, partition int32, start int64) (scenario.Reader, error) {
	consumer, err := sarama.NewConsumer(c.addrs, config())
	if err != nil {
		return nil, err
	}
	pc, err := consumer.ConsumePartition(topic, partition, start)
	if err != nil {
		consumer.Close()
		return nil, err
	}
	return &reader{consumer, pc}, nil
}

func (c *client) ReaderAtTime(topic string, partition int32, ts time.Time) (scenario.Reader, error) {
	offset, err := c.OffsetForTime(topic, partition, ts)
	if err != nil {
		return nil, err
	}
	return c.Reader(topic, partition, offset)
}

func (r *reader) Poll(timeout time.Duration) ([]scenario.Received, error) {
	var out []scenario.Received
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case m := <-r.pc.Messages():
			out = append(out, received(m))
			if len(out) >= 1000 {
				return out, nil
			}
		case err := <-r.pc.Errors():
			return out, err
		case <-timer.C:
			return out, nil
		}
	}
}

func (r *reader) Close() error {
	r.pc.Close()
	return r.consumer.Close()
}

// member runs sarama's ConsumerGroup loop in a goroutine and hands messages over a channel.
type member struct {
	group    sarama.ConsumerGroup
	topic    string
	cancel   context.CancelFunc
	messages chan *sarama.ConsumerMessage
	mu       sync.Mutex
	session  sarama.ConsumerGroupSession
	claims   []int32
	errs     chan error
	done     chan struct{}
}

func (m *member) Setup(s sarama.ConsumerGroupSession) error {
	m.mu.Lock()
	m.session, m.claims = s, s.Claims()[m.topic]
	m.mu.Unlock()
	return nil
}

func (m *member) Cleanup(sarama.ConsumerGroupSession) error {
	m.mu.Lock()
	m.session, m.claims = nil, nil
	m.mu.Unlock()
	return nil
}

func (m *member) ConsumeClaim(s sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for msg := range claim.Messages() {
		select {
		case m.messages <- msg:
		case <-s.Context().Done():
			return nil
		}
	}
	return nil
}

// groupsRemoved: set to true to report the group scenarios as n/a. Without
// cfg.Consumer.Offsets.Retention sarama 1.22 commits with OffsetCommit v1, removed in Kafka 4.0
// (KIP-896); with it, it sends v2 (Tidelog serves OffsetCommit v2-9, JoinGroup v0-9, as Kafka 4).
const groupsRemoved = false

func (c *client) GroupMember(group, topic string) (scenario.Member, error) {
	if groupsRemoved {
		return nil, scenario.NotApplicable{Reason: "sarama 1.22 commits with OffsetCommit v1, removed in Kafka 4.0 (KIP-896); the broker closes the connection as Kafka 4 does"}
	}
	g, err := sarama.NewConsumerGroup(c.addrs, group, config())
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &member{group: g, topic: topic, cancel: cancel, messages: make(chan *sarama.ConsumerMessage, 1000),
		errs: make(chan error, 16), done: make(chan struct{})}
	go func() {
		defer close(m.done)
		for ctx.Err() == nil {
			if err := g.Consume(ctx, []string{topic}, m); err != nil {
				m.errs <- err
				return
			}
		}
	}()
	return m, nil
}

func (m *member) Poll(timeout time.Duration) ([]scenario.Received, error) {
	var out []scenario.Received
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case msg := <-m.messages:
			out = append(out, received(msg))
		case err := <-m.errs:
			return out, err
		case err := <-m.group.Errors():
			return out, err
		case <-timer.C:
			return out, nil
		}
	}
}

func (m *member) Assignment() []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]int32(nil), m.claims...)
}

func (m *member) Commit(next map[int32]int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(next) > 0 && m.session == nil {
		return fmt.Errorf("commit outside a group session")
	}
	for p, o := range next {
		m.session.MarkOffset(m.topic, p, o, "")
	}
	return nil
}

func (m *member) Close() error {
	m.cancel()
	<-m.done
	return m.group.Close() // flushes marked offsets and leaves the group
}

// saramaLog keeps the last lines of sarama's own log, so a failure can say what sarama saw
// (connections closed, metadata errors, producer state changes).
type saramaLog struct {
	mu    sync.Mutex
	lines []string
	echo  bool
}

const saramaLogLines = 400

func (l *saramaLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.echo {
		os.Stderr.Write(p)
	}
	l.lines = append(l.lines, strings.TrimRight(string(p), "\n"))
	if len(l.lines) > saramaLogLines {
		l.lines = l.lines[len(l.lines)-saramaLogLines:]
	}
	return len(p), nil
}

// notable returns the last `most` lines that tell of trouble.
func (l *saramaLog) notable(most int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var found []string
	for _, line := range l.lines {
		for _, mark := range []string{"closing", "error", "Failed", "abandoning", "retrying", "deregistered"} {
			if strings.Contains(line, mark) {
				found = append(found, line)
				break
			}
		}
	}
	if len(found) > most {
		found = found[len(found)-most:]
	}
	return found
}

var clientLog = &saramaLog{}

// produceFailure describes a failed SendMessages: every distinct error with the records it
// failed (the first record's error alone can be a follow-on, e.g. "broker not connected" after
// the connection was closed for another error) and what sarama logged of trouble.
func produceFailure(errs sarama.ProducerErrors) error {
	counts := map[string]int{}
	var order []string
	for _, e := range errs {
		text := e.Err.Error()
		if counts[text] == 0 {
			order = append(order, text)
		}
		counts[text]++
	}
	parts := make([]string, 0, len(order))
	for _, text := range order {
		parts = append(parts, fmt.Sprintf("%s (%d records)", text, counts[text]))
	}
	return fmt.Errorf("%w; all errors: %s; sarama log: %s", errs[0].Err, strings.Join(parts, ", "),
		strings.Join(clientLog.notable(4), " | "))
}

func main() {
	// COMPAT_SARAMA_LOG=1 also prints sarama's own log to stderr as it goes.
	clientLog.echo = os.Getenv("COMPAT_SARAMA_LOG") != ""
	sarama.Logger = log.New(clientLog, "[sarama] ", log.Lmicroseconds)
	scenario.Main("sarama", open)
}
