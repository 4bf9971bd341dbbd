package events

import (
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lispd/lispd/internal/adminapi"
	"github.com/lispd/lispd/internal/stats"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func counter(reg *stats.Registry, name string) uint64 {
	for _, s := range reg.Snapshot() {
		if s.Desc.Subsystem == "events" && s.Desc.Name == name {
			return s.Value
		}
	}
	return 0
}

func TestBusOrderFilterHistory(t *testing.T) {
	reg := stats.NewRegistry()
	b := NewBus(nil, reg, 4)
	for _, typ := range []string{adminapi.EventRegistered, adminapi.EventMapCacheInstall, adminapi.EventLocatorDown} {
		b.Publish(adminapi.Event{Type: typ})
	}
	s := b.Subscribe(adminapi.EventQuery{Types: []string{"locator", adminapi.EventRegistered}, History: 10}, 0)
	defer s.Close()
	b.Publish(adminapi.Event{Type: adminapi.EventMapCacheExpire}) // filtered out
	b.Publish(adminapi.Event{Type: adminapi.EventLocatorUp})
	var got []string
	var seqs []uint64
	for range 3 {
		select {
		case e := <-s.C():
			got = append(got, e.Type)
			seqs = append(seqs, e.Seq)
			if e.Time.IsZero() {
				t.Errorf("event %d has no time", e.Seq)
			}
		case <-time.After(time.Second):
			t.Fatalf("only %v", got)
		}
	}
	want := []string{adminapi.EventRegistered, adminapi.EventLocatorDown, adminapi.EventLocatorUp}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	if seqs[0] != 1 || seqs[1] != 3 || seqs[2] != 5 {
		t.Errorf("seqs %v, want 1 3 5", seqs)
	}
	if n := counter(reg, "published"); n != 5 {
		t.Errorf("published %d, want 5", n)
	}
}

func TestBusHistoryWraps(t *testing.T) {
	b := NewBus(nil, stats.NewRegistry(), 3)
	for range 5 {
		b.Publish(adminapi.Event{Type: adminapi.EventDrop})
	}
	s := b.Subscribe(adminapi.EventQuery{History: 2}, 0)
	defer s.Close()
	if e := <-s.C(); e.Seq != 4 {
		t.Errorf("first of history is %d, want 4", e.Seq)
	}
	if e := <-s.C(); e.Seq != 5 {
		t.Errorf("second of history is %d, want 5", e.Seq)
	}
}

// A reader that does not read costs events, never a blocked publisher; it
// learns how many it lost before the next event it gets.
func TestBusSlowReaderDropsAndCounts(t *testing.T) {
	reg := stats.NewRegistry()
	b := NewBus(nil, reg, 0)
	s := b.Subscribe(adminapi.EventQuery{}, 4)
	defer s.Close()
	done := make(chan struct{})
	go func() {
		for range 1000 {
			b.Publish(adminapi.Event{Type: adminapi.EventDrop})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Publish blocked on a reader that does not read")
	}
	if n := counter(reg, "lost"); n != 996 {
		t.Errorf("lost %d, want 996", n)
	}
	for range 4 {
		<-s.C()
	}
	b.Publish(adminapi.Event{Type: adminapi.EventLocatorDown})
	if e := <-s.C(); e.Type != adminapi.EventLost || e.Count != 996 {
		t.Errorf("after a loss got %+v, want events-lost count=996", e)
	}
	if e := <-s.C(); e.Type != adminapi.EventLocatorDown {
		t.Errorf("got %+v, want the locator-down after the notice", e)
	}
	if b.Subscribers() != 1 || !b.Active() {
		t.Errorf("%d subscribers", b.Subscribers())
	}
	s.Close()
	if b.Active() {
		t.Error("active with no subscriber")
	}
}

func TestNilBusPublishes(t *testing.T) {
	var b *Bus
	b.Publish(adminapi.Event{Type: adminapi.EventDrop}) // must not panic
}
