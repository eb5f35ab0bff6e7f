package statuspage_test

import (
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ec2autoscale/ec2autoscale/autoscale"
	"github.com/ec2autoscale/ec2autoscale/autoscale/statuspage"
	"github.com/ec2autoscale/ec2autoscale/pool"
)

func ev(i int) autoscale.Event {
	return autoscale.Event{Time: time.Unix(int64(i), 0), Kind: pool.EventGrant, Capacity: i}
}

func capacities(events []autoscale.Event) []int {
	out := make([]int, len(events))
	for i, e := range events {
		out[i] = e.Capacity
	}
	return out
}

func TestRecorderKeepsTheLatestEventsOldestFirst(t *testing.T) {
	var forwarded []int
	r := statuspage.NewRecorder(3, autoscale.ObserverFunc(func(e autoscale.Event) { forwarded = append(forwarded, e.Capacity) }))
	if got := r.Events(); len(got) != 0 {
		t.Fatalf("a new recorder holds %v", got)
	}
	for i := 1; i <= 2; i++ {
		r.Observe(ev(i))
	}
	if got := capacities(r.Events()); len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Errorf("before the ring fills: %v, want [1 2]", got)
	}
	for i := 3; i <= 7; i++ {
		r.Observe(ev(i))
	}
	if got := capacities(r.Events()); len(got) != 3 || got[0] != 5 || got[1] != 6 || got[2] != 7 {
		t.Errorf("after wrapping: %v, want [5 6 7]", got)
	}
	if r.Seen() != 7 {
		t.Errorf("seen %d, want 7", r.Seen())
	}
	if len(forwarded) != 7 || forwarded[6] != 7 {
		t.Errorf("forwarded %v, want every event in order", forwarded)
	}
	events := r.Events()
	events[0].Capacity = 99 // the copy is the caller's
	if r.Events()[0].Capacity != 5 {
		t.Error("Events returned the recorder's own storage")
	}
}

func TestRecorderBounds(t *testing.T) {
	r := statuspage.NewRecorder(0, nil)
	for i := range statuspage.DefaultKeep + 10 {
		r.Observe(ev(i))
	}
	if n := len(r.Events()); n != statuspage.DefaultKeep {
		t.Errorf("keep 0 kept %d, want DefaultKeep", n)
	}
	big := statuspage.NewRecorder(1<<40, nil)
	for i := range statuspage.MaxKeep + 1 {
		big.Observe(ev(i))
	}
	if n := len(big.Events()); n != statuspage.MaxKeep {
		t.Errorf("a huge keep kept %d, want MaxKeep", n)
	}

	var none *statuspage.Recorder
	none.Observe(ev(1)) // a nil recorder observes nothing, without panicking
	if none.Events() != nil || none.Seen() != 0 {
		t.Error("a nil recorder holds events")
	}
}

func TestRecorderIsSafeForConcurrentUse(t *testing.T) {
	r := statuspage.NewRecorder(16, nil)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 500 {
				r.Observe(ev(w*1000 + i))
			}
		})
	}
	wg.Go(func() {
		for range 200 {
			if n := len(r.Events()); n > 16 {
				t.Errorf("kept %d of a ring of 16", n)
			}
		}
	})
	wg.Wait()
	if r.Seen() != 2000 || len(r.Events()) != 16 {
		t.Errorf("seen %d, kept %d", r.Seen(), len(r.Events()))
	}
}

func TestReadFlattensInputs(t *testing.T) {
	r := statuspage.NewRecorder(1, nil)
	e := ev(1)
	e.Inputs = []slog.Attr{slog.Int("held", 2), slog.Group("why", slog.String("a", "x"), slog.Duration("age", time.Minute))}
	r.Observe(e)
	// No scaler is needed: the events come from the recorder.
	snap := statuspage.Read(nil, r)
	if len(snap.Events) != 1 {
		t.Fatalf("events %+v", snap.Events)
	}
	got := snap.Events[0].Inputs
	if got["held"] != "2" || got["why.a"] != "x" || got["why.age"] != "1m0s" || len(got) != 3 {
		t.Errorf("inputs %v", got)
	}
}
