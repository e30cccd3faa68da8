// Package scenario holds the compat scenarios once, written against the Client interface;
// each Go client program (sarama, kafkago, confluentgo) implements Client and calls Main.
//
// Exit status: 0 pass, 1 FAIL (message on stderr), 2 n/a (the client cannot do it; reason on stdout).
package scenario

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"time"
)

// Header is one record header; a nil Value is a null header value.
type Header struct {
	Key   string
	Value []byte
}

// Record is what a scenario sends; nil Key/Value are null. Partition -1 lets the client choose.
type Record struct {
	Key, Value []byte
	Headers    []Header
	Partition  int32
	Timestamp  time.Time
}

// Received is what a scenario reads back.
type Received struct {
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
	Headers   []Header
	Timestamp time.Time
}

// Delivery is where the broker put a record.
type Delivery struct {
	Partition int32
	Offset    int64
}

// Start positions for a Reader; a value >= 0 is an absolute offset.
const (
	Beginning int64 = -2
	End       int64 = -1
)

// ErrTooLarge is returned by Produce when the broker refused a record as too large.
var ErrTooLarge = errors.New("broker: message too large")

// NotApplicable makes a scenario report "n/a" with a reason.
type NotApplicable struct{ Reason string }

func (n NotApplicable) Error() string { return "n/a: " + n.Reason }

// Reader reads one partition from a start position.
type Reader interface {
	Poll(timeout time.Duration) ([]Received, error)
	Close() error
}

// Member is one consumer-group member subscribed to one topic.
type Member interface {
	Poll(timeout time.Duration) ([]Received, error)
	Assignment() []int32
	Commit(next map[int32]int64) error
	Close() error
}

// Client is one Kafka client library behind the scenario interface.
type Client interface {
	ListTopics() (map[string]int, error)
	Brokers() ([]string, error)
	CreateTopic(name string, partitions int, configs map[string]string) error
	TopicConfigs(name string) (map[string]string, error)
	DeleteTopic(name string) error
	Produce(topic string, records []Record, codec string) ([]Delivery, error)
	// ProduceIdempotent produces with the client's idempotent producer (acks=all).
	ProduceIdempotent(topic string, records []Record) ([]Delivery, error)
	// Transactions is nil when the client has a transactional producer, else NotApplicable.
	Transactions() error
	EndOffset(topic string, partition int32) (int64, error)
	OffsetForTime(topic string, partition int32, ts time.Time) (int64, error)
	Reader(topic string, partition int32, start int64) (Reader, error)
	ReaderAtTime(topic string, partition int32, ts time.Time) (Reader, error)
	GroupMember(group, topic string) (Member, error)
	Codecs() []string
	Close()
}

const deadline = 60 * time.Second

func fail(format string, args ...interface{}) error { return fmt.Errorf(format, args...) }

// Main parses -bootstrap/-scenario/-codec, runs one scenario and exits with its status.
func Main(name string, open func(bootstrap string) (Client, error)) {
	bootstrap := flag.String("bootstrap", "", "broker HOST:PORT")
	which := flag.String("scenario", "", "s1..s11")
	codec := flag.String("codec", "none", "compression codec for s3")
	canCreate := flag.Bool("can-create", false, "the broker serves CreateTopics")
	flag.Parse()
	client, err := open(*bootstrap)
	if err == nil {
		defer client.Close()
		s := &run{c: client, name: name, bootstrap: *bootstrap, canCreate: *canCreate}
		err = s.dispatch(*which, *codec)
	}
	var na NotApplicable
	switch {
	case err == nil:
		fmt.Println("pass")
		os.Exit(0)
	case errors.As(err, &na):
		fmt.Println("n/a: " + na.Reason)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "FAIL: "+err.Error())
		os.Exit(1)
	}
}

type run struct {
	c         Client
	name      string
	bootstrap string
	canCreate bool
}

func (s *run) dispatch(which, codec string) error {
	switch which {
	case "s1":
		return s.metadata()
	case "s2":
		return s.createTopic()
	case "s3":
		for _, c := range s.c.Codecs() {
			if c == codec {
				return s.produce(codec)
			}
		}
		return NotApplicable{"client cannot compress with " + codec}
	case "s4":
		return s.consumePositions()
	case "s5":
		_, _, err := s.order("s5", 10000, func(topic string, records []Record) ([]Delivery, error) {
			return s.c.Produce(topic, records, "none")
		})
		return err
	case "s6":
		return s.maxMessage(32768)
	case "s7":
		return s.groupTakeover(4)
	case "s8":
		return s.commitResume()
	case "s9":
		return s.deleteTopic()
	case "s10":
		return s.idempotentProducer(idempotentRecords)
	case "s11":
		if err := s.c.Transactions(); err != nil {
			return err
		}
		return fail("s11 is not written for Go clients yet: the client has transactions, add them")
	}
	return fail("unknown scenario %q", which)
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func (s *run) topicName(scenario string) string {
	return fmt.Sprintf("compat-%s-%s-%s", s.name, scenario, randomHex(4))
}

func waitUntil(what string, cond func() (bool, error)) error {
	end := time.Now().Add(deadline)
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		if time.Now().After(end) {
			return fail("timed out after %s waiting for %s (last error: %v)", deadline, what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *run) waitPartitions(topic string, partitions int) error {
	return waitUntil(fmt.Sprintf("%s with %d partitions in metadata", topic, partitions), func() (bool, error) {
		topics, err := s.c.ListTopics()
		return err == nil && topics[topic] == partitions, err
	})
}

// prepareTopic creates a topic through the admin API when the broker serves it, else auto-creates it.
func (s *run) prepareTopic(scenario string, partitions int) (string, error) {
	topic := s.topicName(scenario)
	if s.canCreate {
		if err := s.c.CreateTopic(topic, partitions, nil); err != nil {
			return "", fail("create topic: %w", err)
		}
		return topic, s.waitPartitions(topic, partitions)
	}
	_, err := s.c.Produce(topic, []Record{{Key: []byte("seed"), Value: []byte("seed"), Partition: 0}}, "none")
	return topic, err
}

func (s *run) readExactly(topic string, partition int32, start int64, count int) ([]Received, error) {
	r, err := s.c.Reader(topic, partition, start)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return collect(r, count, fmt.Sprintf("%s[%d] from %d", topic, partition, start))
}

func collect(r Reader, count int, what string) ([]Received, error) {
	var got []Received
	end := time.Now().Add(deadline)
	for len(got) < count {
		if time.Now().After(end) {
			return nil, fail("%s: got %d of %d records in %s", what, len(got), count, deadline)
		}
		batch, err := r.Poll(500 * time.Millisecond)
		if err != nil {
			return nil, fail("%s: %v", what, err)
		}
		got = append(got, batch...)
	}
	if len(got) > count {
		return nil, fail("%s: expected %d records, got %d", what, count, len(got))
	}
	return got, nil
}

func (s *run) metadata() error {
	topic := s.topicName("s1")
	_, err := s.c.Produce(topic, []Record{{Key: []byte("k"), Value: []byte("v"), Partition: -1}}, "none")
	var na NotApplicable
	if errors.As(err, &na) {
		if !s.canCreate {
			return na
		}
		err = s.c.CreateTopic(topic, 1, nil) // a client that cannot produce still lists topics
	}
	if err != nil {
		return fail("produce to auto-create: %w", err)
	}
	if err := waitUntil(topic+" in the topic list", func() (bool, error) {
		topics, err := s.c.ListTopics()
		return err == nil && topics[topic] >= 1, err
	}); err != nil {
		return err
	}
	brokers, err := s.c.Brokers()
	if err != nil {
		return err
	}
	for _, b := range brokers {
		if b == s.bootstrap {
			return nil
		}
	}
	return fail("broker list %v lacks %s", brokers, s.bootstrap)
}

func (s *run) createTopic() error {
	topic := s.topicName("s2")
	configs := map[string]string{"retention.ms": "3600000", "max.message.bytes": "200000", "cleanup.policy": "delete"}
	if err := s.c.CreateTopic(topic, 3, configs); err != nil {
		return fail("create topic: %w", err)
	}
	if err := s.waitPartitions(topic, 3); err != nil {
		return err
	}
	described, err := s.c.TopicConfigs(topic)
	if err != nil {
		return fail("describe configs: %w", err)
	}
	for k, v := range configs {
		if described[k] != v {
			return fail("DescribeConfigs %s=%q, want %q", k, described[k], v)
		}
	}
	if err := s.c.CreateTopic(topic, 1, nil); err == nil {
		return fail("creating %s again succeeded", topic)
	}
	return nil
}

func produceRecords() []Record {
	records := []Record{
		{Key: []byte("k1"), Value: []byte("v1"), Headers: []Header{{"h1", []byte("x")}, {"h2", []byte{}}}},
		{Key: nil, Value: []byte("no key")},
		{Key: []byte("tombstone"), Value: nil},
		{Key: []byte("k4"), Value: []byte{}, Headers: []Header{{"h1", []byte("one")}, {"h1", []byte("two")}}},
		{Key: []byte("k5"), Value: bytes.Repeat([]byte("compressible "), 400)},
	}
	for i := 0; i < 50; i++ {
		records = append(records, Record{Key: []byte(fmt.Sprintf("key-%d", i)), Value: []byte(randomHex(8))})
	}
	for i := range records {
		records[i].Partition = 0
	}
	return records
}

func sameBytes(a, b []byte) bool { return (a == nil) == (b == nil) && bytes.Equal(a, b) }

func sameHeaders(a, b []Header) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Key != b[i].Key || !bytes.Equal(a[i].Value, b[i].Value) {
			return false
		}
	}
	return true
}

func (s *run) produce(codec string) error {
	topic, err := s.prepareTopic("s3", 1)
	if err != nil {
		return err
	}
	base, err := s.c.EndOffset(topic, 0)
	if err != nil {
		return err
	}
	records := produceRecords()
	deliveries, err := s.c.Produce(topic, records, codec)
	if err != nil {
		return fail("produce with %s: %v", codec, err)
	}
	for i, d := range deliveries {
		if d.Offset != base+int64(i) {
			return fail("record %d delivered at offset %d, want %d", i, d.Offset, base+int64(i))
		}
	}
	got, err := s.readExactly(topic, 0, base, len(records))
	if err != nil {
		return err
	}
	for i, r := range got {
		want := records[i]
		if !sameBytes(r.Key, want.Key) || !sameBytes(r.Value, want.Value) {
			return fail("offset %d: got key=%q value=%.60q (null=%v), sent key=%q value=%.60q (null=%v)",
				r.Offset, r.Key, r.Value, r.Value == nil, want.Key, want.Value, want.Value == nil)
		}
		if !sameHeaders(r.Headers, want.Headers) {
			return fail("offset %d: headers %v, sent %v", r.Offset, r.Headers, want.Headers)
		}
	}
	return nil
}

func (s *run) consumePositions() error {
	topic, err := s.prepareTopic("s4", 1)
	if err != nil {
		return err
	}
	base, err := s.c.EndOffset(topic, 0)
	if err != nil {
		return err
	}
	// In the near future, so an earlier record (an auto-create seed) has a smaller timestamp.
	baseTs := time.Now().Add(20 * time.Second).Truncate(time.Millisecond)
	var records []Record
	for i := 0; i < 10; i++ {
		records = append(records, Record{Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("v%d", i)),
			Partition: 0, Timestamp: baseTs.Add(time.Duration(i) * time.Second)})
	}
	if _, err := s.c.Produce(topic, records, "none"); err != nil {
		return err
	}
	got, err := s.readExactly(topic, 0, Beginning, int(base)+10)
	if err != nil {
		return err
	}
	for i, r := range got[base:] {
		if string(r.Value) != fmt.Sprintf("v%d", i) || !r.Timestamp.Equal(records[i].Timestamp) {
			return fail("from beginning: offset %d is %q at %v, want v%d at %v", r.Offset, r.Value, r.Timestamp, i, records[i].Timestamp)
		}
	}
	got, err = s.readExactly(topic, 0, base+5, 5)
	if err != nil {
		return err
	}
	for i, r := range got {
		if r.Offset != base+5+int64(i) {
			return fail("from offset %d: got offset %d", base+5, r.Offset)
		}
	}
	for _, c := range []struct {
		at   time.Duration
		want int64
	}{{7000 * time.Millisecond, 7}, {6500 * time.Millisecond, 7}, {-500 * time.Millisecond, 0}} {
		found, err := s.c.OffsetForTime(topic, 0, baseTs.Add(c.at))
		if err != nil {
			return fail("offset for time: %v", err)
		}
		if found != base+c.want {
			return fail("offset for timestamp %+v: %d, want %d", c.at, found, base+c.want)
		}
	}
	r, err := s.c.ReaderAtTime(topic, 0, baseTs.Add(6500*time.Millisecond))
	if err != nil {
		return err
	}
	got, err = collect(r, 3, "from timestamp")
	r.Close()
	if err != nil {
		return err
	}
	if got[0].Offset != base+7 {
		return fail("from timestamp: first offset %d, want %d", got[0].Offset, base+7)
	}
	return s.fromEnd(topic, base+10)
}

func (s *run) fromEnd(topic string, end int64) error {
	r, err := s.c.Reader(topic, 0, End)
	if err != nil {
		return err
	}
	defer r.Close()
	stop := time.Now().Add(deadline)
	for i := 0; ; i++ {
		if time.Now().After(stop) {
			return fail("from end: nothing new arrived")
		}
		if _, err := s.c.Produce(topic, []Record{{Key: []byte("marker"), Value: []byte(fmt.Sprintf("marker-%d", i)), Partition: 0}}, "none"); err != nil {
			return err
		}
		got, err := r.Poll(500 * time.Millisecond)
		if err != nil {
			return err
		}
		if len(got) == 0 {
			continue
		}
		for _, m := range got {
			if m.Offset < end || !bytes.HasPrefix(m.Value, []byte("marker")) {
				return fail("from end: read old record at offset %d (%q)", m.Offset, m.Value)
			}
		}
		return nil
	}
}

// idempotentRecords is the record count of s10, as in scenarios.py.
const idempotentRecords = 5000

// idempotentProducer is s10: s5 with the idempotent producer. It prints the records per
// partition for test_go_clients.py, which checks with DescribeProducers that the broker saw one
// producer id per partition and every sequence number.
func (s *run) idempotentProducer(count int) error {
	topic, counts, err := s.order("s10", count, s.c.ProduceIdempotent)
	if err != nil {
		return err
	}
	line := "describe-producers " + topic
	for p, n := range counts {
		line += fmt.Sprintf(" %d=%d", p, n)
	}
	fmt.Println(line)
	return nil
}

// order produces count keyed records over 4 partitions and checks contiguous offsets, send order,
// content and high watermarks; it returns the topic and the records each partition got.
func (s *run) order(scenario string, count int, produce func(string, []Record) ([]Delivery, error)) (string, map[int32]int, error) {
	topic, err := s.prepareTopic(scenario, 4)
	if err != nil {
		return "", nil, err
	}
	topics, err := s.c.ListTopics()
	if err != nil {
		return "", nil, err
	}
	bases := map[int32]int64{}
	for p := 0; p < topics[topic]; p++ {
		if bases[int32(p)], err = s.c.EndOffset(topic, int32(p)); err != nil {
			return "", nil, err
		}
	}
	records := make([]Record, count)
	for i := range records {
		records[i] = Record{Key: []byte(fmt.Sprintf("key-%d", i%101)), Value: []byte(fmt.Sprintf("%05d:%s", i, randomHex(6))), Partition: -1}
	}
	deliveries, err := produce(topic, records)
	if err != nil {
		return "", nil, err
	}
	counts := map[int32]int{}
	byPartition := map[int32][][2]int64{}
	for i, d := range deliveries {
		byPartition[d.Partition] = append(byPartition[d.Partition], [2]int64{d.Offset, int64(i)})
	}
	for p, entries := range byPartition {
		sort.Slice(entries, func(a, b int) bool { return entries[a][0] < entries[b][0] })
		for j, e := range entries {
			if e[0] != bases[p]+int64(j) {
				return "", nil, fail("partition %d: offsets not contiguous at %d", p, e[0])
			}
			if j > 0 && e[1] < entries[j-1][1] {
				return "", nil, fail("partition %d: offset %d holds an earlier-sent record", p, e[0])
			}
		}
		got, err := s.readExactly(topic, p, bases[p], len(entries))
		if err != nil {
			return "", nil, err
		}
		for j, r := range got {
			want := records[entries[j][1]]
			if !bytes.Equal(r.Key, want.Key) || !bytes.Equal(r.Value, want.Value) {
				return "", nil, fail("partition %d offset %d: got %q=%q, want %q=%q", p, r.Offset, r.Key, r.Value, want.Key, want.Value)
			}
		}
		end, err := s.c.EndOffset(topic, p)
		if err != nil {
			return "", nil, err
		}
		if end != bases[p]+int64(len(entries)) {
			return "", nil, fail("partition %d: high watermark %d after %d records from %d: the log holds records that were not sent (duplicates)", p, end, len(entries), bases[p])
		}
		counts[p] = len(entries)
	}
	return topic, counts, nil
}

func (s *run) maxMessage(limit int) error {
	topic := s.topicName("s6")
	if err := s.c.CreateTopic(topic, 1, map[string]string{"max.message.bytes": fmt.Sprint(limit)}); err != nil {
		return fail("create topic: %w", err)
	}
	if err := s.waitPartitions(topic, 1); err != nil {
		return err
	}
	near := Record{Key: []byte("near"), Value: []byte(randomHex((limit - 400) / 2)), Partition: 0}
	if _, err := s.c.Produce(topic, []Record{near}, "none"); err != nil {
		return fail("a record just under max.message.bytes: %v", err)
	}
	over := Record{Key: []byte("over"), Value: []byte(randomHex(limit/2 + 2000)), Partition: 0}
	_, err := s.c.Produce(topic, []Record{over}, "none")
	if err == nil {
		return fail("a %d-byte record on a topic with max.message.bytes=%d was accepted", len(over.Value), limit)
	}
	if !errors.Is(err, ErrTooLarge) {
		return fail("an over-limit record failed with %v, want MESSAGE_TOO_LARGE", err)
	}
	after := Record{Key: []byte("after"), Value: []byte("small"), Partition: 0}
	if _, err := s.c.Produce(topic, []Record{after}, "none"); err != nil {
		return fail("produce after the refused record: %v", err)
	}
	got, err := s.readExactly(topic, 0, Beginning, 2)
	if err != nil {
		return err
	}
	if !bytes.Equal(got[0].Value, near.Value) || !bytes.Equal(got[1].Value, after.Value) {
		return fail("read back %q.., %q", got[0].Value[:20], got[1].Value)
	}
	return nil
}

func (s *run) deleteTopic() error {
	topic, err := s.prepareTopic("s9", 1)
	if err != nil {
		return err
	}
	if err := s.c.DeleteTopic(topic); err != nil {
		return fail("delete topic: %v", err)
	}
	return waitUntil(topic+" gone from metadata", func() (bool, error) {
		topics, err := s.c.ListTopics()
		_, present := topics[topic]
		return err == nil && !present, err
	})
}
