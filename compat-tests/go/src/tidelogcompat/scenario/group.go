package scenario

import (
	"fmt"
	"sync"
	"time"
)

// memberLoop polls one group member in its own goroutine, committing after every batch.
type memberLoop struct {
	mu       sync.Mutex
	seen     map[string]bool
	assigned map[int32]bool
	err      error
	stop     chan struct{}
	done     chan struct{}
}

func startMember(c Client, group, topic string) *memberLoop {
	m := &memberLoop{seen: map[string]bool{}, assigned: map[int32]bool{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(m.done)
		member, err := c.GroupMember(group, topic)
		if err != nil {
			m.setErr(err)
			return
		}
		defer member.Close()
		for {
			select {
			case <-m.stop:
				return
			default:
			}
			batch, err := member.Poll(300 * time.Millisecond)
			if err != nil {
				m.setErr(err)
				return
			}
			next := map[int32]int64{}
			for _, r := range batch {
				if r.Offset+1 > next[r.Partition] {
					next[r.Partition] = r.Offset + 1
				}
			}
			if err := member.Commit(next); err != nil {
				m.setErr(err)
				return
			}
			m.mu.Lock()
			for _, r := range batch {
				m.seen[string(r.Value)] = true
			}
			m.assigned = map[int32]bool{}
			for _, p := range member.Assignment() {
				m.assigned[p] = true
			}
			m.mu.Unlock()
		}
	}()
	return m
}

func (m *memberLoop) setErr(err error) {
	m.mu.Lock()
	m.err = err
	m.mu.Unlock()
}

func (m *memberLoop) snapshot() (map[int32]bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[int32]bool{}
	for p := range m.assigned {
		out[p] = true
	}
	return out, m.err
}

func (m *memberLoop) halt() error {
	select {
	case <-m.stop:
	default:
		close(m.stop)
	}
	select {
	case <-m.done:
	case <-time.After(deadline):
		return fail("group member did not stop")
	}
	_, err := m.snapshot()
	return err
}

func (s *run) groupTakeover(partitions int) error {
	topic := s.topicName("s7")
	if err := s.c.CreateTopic(topic, partitions, nil); err != nil {
		return fail("create topic: %w", err)
	}
	if err := s.waitPartitions(topic, partitions); err != nil {
		return err
	}
	group := topic + "-group"
	var records []Record
	for i := 0; i < 400; i++ {
		records = append(records, Record{Key: []byte("k"), Value: []byte(fmt.Sprintf("first-%d", i)), Partition: int32(i % partitions)})
	}
	if _, err := s.c.Produce(topic, records, "none"); err != nil {
		return err
	}
	if probe, err := s.c.GroupMember(group, topic); err != nil {
		return err // n/a for a client that cannot take part in a group
	} else if err := probe.Close(); err != nil {
		return err
	}
	a, b := startMember(s.c, group, topic), startMember(s.c, group, topic)
	defer a.halt()
	defer b.halt()
	if err := waitUntil("both members to share the partitions", func() (bool, error) {
		pa, errA := a.snapshot()
		pb, errB := b.snapshot()
		if errA != nil || errB != nil {
			return false, fmt.Errorf("%v %v", errA, errB)
		}
		for p := range pa {
			if pb[p] {
				return false, nil
			}
		}
		return len(pa) > 0 && len(pb) > 0 && len(pa)+len(pb) == partitions, nil
	}); err != nil {
		return err
	}
	if err := a.halt(); err != nil {
		return fail("first member: %v", err)
	}
	if err := waitUntil("the remaining member to take over", func() (bool, error) {
		pb, err := b.snapshot()
		return err == nil && len(pb) == partitions, err
	}); err != nil {
		return err
	}
	var second []Record
	for i := 0; i < 400; i++ {
		second = append(second, Record{Key: []byte("k"), Value: []byte(fmt.Sprintf("second-%d", i)), Partition: int32(i % partitions)})
	}
	if _, err := s.c.Produce(topic, second, "none"); err != nil {
		return err
	}
	return waitUntil("every record consumed by the group", func() (bool, error) {
		a.mu.Lock()
		b.mu.Lock()
		defer a.mu.Unlock()
		defer b.mu.Unlock()
		for _, r := range append(records, second...) {
			if !a.seen[string(r.Value)] && !b.seen[string(r.Value)] {
				return false, nil
			}
		}
		return true, nil
	})
}

func (s *run) commitResume() error {
	topic := s.topicName("s8")
	var records []Record
	for i := 0; i < 100; i++ {
		records = append(records, Record{Key: []byte("k"), Value: []byte(fmt.Sprintf("v%d", i)), Partition: 0})
	}
	if _, err := s.c.Produce(topic, records, "none"); err != nil {
		return err
	}
	group := topic + "-group"
	first, err := s.groupRead(group, topic, 50)
	if err != nil {
		return err
	}
	resumeAt := first[0].Offset + 50
	second, err := s.groupRead(group, topic, 50)
	if err != nil {
		return err
	}
	if second[0].Offset != resumeAt {
		return fail("restarted member began at %d, want %d", second[0].Offset, resumeAt)
	}
	return nil
}

// groupRead joins the group, reads `count` records of partition 0, commits exactly past them and leaves.
func (s *run) groupRead(group, topic string, count int) ([]Received, error) {
	member, err := s.c.GroupMember(group, topic)
	if err != nil {
		return nil, err // NotApplicable passes through unwrapped
	}
	defer member.Close()
	var got []Received
	end := time.Now().Add(deadline)
	for len(got) < count {
		if time.Now().After(end) {
			return nil, fail("group read: got %d of %d records", len(got), count)
		}
		batch, err := member.Poll(300 * time.Millisecond)
		if err != nil {
			return nil, err
		}
		for _, r := range batch {
			if r.Partition == 0 {
				got = append(got, r)
			}
		}
	}
	got = got[:count]
	return got, member.Commit(map[int32]int64{0: got[count-1].Offset + 1})
}
