package main

import (
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/elbrole/elbsim"
)

// Server model: a server answers in baseLatency when idle and slows down as
// it fills up (an M/M/1 queue: latency = base / (1 - utilisation)); it
// cannot take more than capacity requests per second, and the load balancer
// answers 503 for the excess. One request in longShare is a long one (an
// upload, a long poll) lasting up to longRequest, which is what a
// deregistration must wait for.
const (
	defaultCapacity = 170.0 // requests per second
	baseLatency     = 40 * time.Millisecond
	longShare       = 0.01
	longRequest     = 4 * time.Minute
)

// load is the request rate over a simulated day: quiet nights, a morning
// peak, a larger evening one, and a flash crowd in the afternoon, with a
// little noise.
type load struct {
	start time.Time
	rng   *rand.Rand
	noise float64
}

func newLoad(start time.Time, seed uint64) *load {
	return &load{start: start, rng: rand.New(rand.NewPCG(seed, 11))}
}

// at returns the request rate at now; call it once per tick, in order.
func (l *load) at(now time.Time) float64 {
	h := math.Mod(now.Sub(l.start).Hours(), 24)
	bump := func(peak, centre, width float64) float64 {
		x := (h - centre) / width
		return peak * math.Exp(-x*x/2)
	}
	rate := 150 + bump(1100, 11, 2.5) + bump(500, 15, 2) + bump(1700, 20, 1.8)
	if h >= 14 && h < 14.25 {
		rate += 500 * math.Min(1, (h-14)*60) // the crowd arrives within a minute
	}
	l.noise = 0.9*l.noise + 0.1*l.rng.NormFloat64()
	return math.Max(0, rate*(1+0.05*l.noise))
}

// backend is one server as the traffic sees it.
type backend struct {
	inflight float64   // requests in progress
	leftAt   time.Time // when it stopped taking new requests; zero while it does
	leftWith float64   // requests in progress then
}

// traffic routes the request load through the load balancer to the servers
// it reports healthy, and counts what happens to the requests.
type traffic struct {
	lb  *elbsim.LB
	arn string
	ec2 func(id string) (awsctl.Instance, bool)
	// capacity is the most requests per second a server takes.
	capacity float64

	mu       sync.Mutex
	backends map[string]*backend
	open     bool // the first servers are in service

	served, refused, cut float64
	latencySum           float64 // latency × requests, for the mean
	worstLatency         time.Duration
	healthy, draining    int // of the latest tick
	latency              time.Duration
	perServer            float64
}

func newTraffic(lb *elbsim.LB, arn string, ec2 func(string) (awsctl.Instance, bool), capacity float64) *traffic {
	return &traffic{lb: lb, arn: arn, ec2: ec2, capacity: capacity, backends: map[string]*backend{}}
}

// serve sends rate requests a second for tick to the healthy servers.
func (t *traffic) serve(now time.Time, tick time.Duration, rate float64) {
	// Read the load balancer first: it asks busy, which takes t.mu.
	targets := t.lb.Targets(t.arn)
	t.mu.Lock()
	defer t.mu.Unlock()
	var healthy []string
	t.draining = 0
	in := map[string]bool{}
	for _, tg := range targets {
		in[tg.ID] = true
		switch tg.State {
		case "healthy":
			healthy = append(healthy, tg.ID)
		case "draining":
			t.draining++
		}
		if t.backends[tg.ID] == nil {
			t.backends[tg.ID] = &backend{}
		}
	}
	t.healthy = len(healthy)
	t.open = t.open || len(healthy) > 0
	secs := tick.Seconds()
	if len(healthy) == 0 {
		if t.open {
			t.refused += rate * secs
		}
		t.perServer, t.latency = 0, 0
	} else {
		t.perServer = rate / float64(len(healthy))
		taken := math.Min(t.perServer, t.capacity)
		t.refused += (t.perServer - taken) * float64(len(healthy)) * secs
		t.served += taken * float64(len(healthy)) * secs
		util := math.Min(taken/t.capacity, 0.98)
		t.latency = time.Duration(float64(baseLatency) / (1 - util))
		t.latencySum += t.latency.Seconds() * taken * float64(len(healthy)) * secs
		t.worstLatency = max(t.worstLatency, t.latency)
	}
	isHealthy := map[string]bool{}
	for _, id := range healthy {
		isHealthy[id] = true
	}
	for id, b := range t.backends {
		if isHealthy[id] {
			// Little's law: the short requests in flight, and the long
			// ones, which last half of longRequest on average.
			taken := math.Min(t.perServer, t.capacity)
			b.inflight = taken*t.latency.Seconds() + taken*longShare*longRequest.Seconds()/2
			b.leftAt = time.Time{}
			continue
		}
		// Out of service (draining, or not healthy yet): no new requests;
		// those in flight end within longRequest.
		if b.leftAt.IsZero() {
			b.leftAt, b.leftWith = now, b.inflight
		}
		b.inflight = b.leftWith * math.Max(0, 1-float64(now.Sub(b.leftAt))/float64(longRequest))
		if !in[id] && b.inflight == 0 {
			delete(t.backends, id)
		}
	}
}

// reap counts the requests in flight on servers that stopped running: those
// are cut off. With the target-group role there are none.
func (t *traffic) reap() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, b := range t.backends {
		inst, ok := t.ec2(id)
		if ok && inst.State == awsctl.StateRunning {
			continue
		}
		t.cut += b.inflight
		delete(t.backends, id)
	}
}
