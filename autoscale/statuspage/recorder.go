package statuspage

import (
	"slices"
	"sync"

	"github.com/ec2autoscale/ec2autoscale/autoscale"
)

// Bounds of a Recorder's memory.
const (
	// DefaultKeep is how many events a Recorder keeps when NewRecorder is
	// given zero or less: a few passes of a busy pool, a day of a quiet one.
	DefaultKeep = 200
	// MaxKeep caps what a Recorder keeps, since every page view copies
	// and renders all of it.
	MaxKeep = 10000
)

// Recorder is an autoscale.Observer that keeps the latest events for the
// status page: the scaler itself keeps none. Set it as
// autoscale.Options.Observer and pass it to Handler.
//
// It is safe for concurrent use. Observe is O(1) and never waits for
// anything but a reader copying the ring, since the scaler calls it
// synchronously inside its pass. A nil *Recorder observes nothing.
type Recorder struct {
	next autoscale.Observer

	mu   sync.Mutex
	keep int
	ring []autoscale.Event // grows to keep, then wraps
	head int               // where the next event goes once the ring is full
	seen uint64
}

// NewRecorder returns a Recorder that keeps the last keep events
// (DefaultKeep if keep <= 0, at most MaxKeep) and passes every event on
// to next, if not nil, so that a host keeps its own observer.
func NewRecorder(keep int, next autoscale.Observer) *Recorder {
	if keep <= 0 {
		keep = DefaultKeep
	}
	return &Recorder{next: next, keep: min(keep, MaxKeep)}
}

// Observe records e, dropping the oldest event once the ring is full, then
// passes e on to the next observer.
func (r *Recorder) Observe(e autoscale.Event) {
	if r == nil {
		return
	}
	r.mu.Lock()
	r.seen++
	if len(r.ring) < r.keep {
		// Grown lazily: a large keep costs nothing until it fills.
		r.ring = append(r.ring, e)
	} else {
		r.ring[r.head] = e
		r.head = (r.head + 1) % r.keep
	}
	r.mu.Unlock()
	// Outside the lock: a slow next observer must not hold up page views.
	if r.next != nil {
		r.next.Observe(e)
	}
}

// Events returns the events kept, oldest first. Events are plain data
// (see pool.Event); the slice is the caller's.
func (r *Recorder) Events() []autoscale.Event {
	events, _ := r.read()
	return events
}

// Seen returns how many events the Recorder observed since it was made,
// those it no longer keeps included.
func (r *Recorder) Seen() uint64 {
	_, seen := r.read()
	return seen
}

// read returns the events, oldest first, and the count seen, consistent
// with each other.
func (r *Recorder) read() ([]autoscale.Event, uint64) {
	if r == nil {
		return nil, 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]autoscale.Event, 0, len(r.ring))
	out = append(out, r.ring[r.head:]...)
	out = append(out, r.ring[:r.head]...)
	return slices.Clip(out), r.seen
}
