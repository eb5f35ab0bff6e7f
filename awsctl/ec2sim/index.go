package ec2sim

import (
	"container/heap"
	"time"
	"unsafe"
)

// The listing index. ListInstances must cost what it returns, not what the
// sim holds: a scaler listing its own 100,000 instances should not also walk
// another owner's, nor an hour of terminated history. So instances are
// indexed by every tag they carry, and instances terminated longer ago than
// TerminatedVisibleFor are forgotten.
//
// A posting is the list of instances carrying one tag (key and value), in
// the order they acquired it. Removal is lazy: an instance that loses the
// tag (or is forgotten) stays in the list as a stale entry, recognised
// because its current tags no longer match, and stale entries are swept out
// once they exceed a quarter of the list. That keeps removal O(1) amortised
// and listing within a constant factor of the matching instances.

type tagPair struct{ key, value string }

type posting struct {
	all   bool // the posting of every instance, whatever its tags
	pair  tagPair
	items []postEntry
	stale int // entries in items that are no longer members
}

// postEntry is an instance of a posting, with the Tags map it last had when
// it was found a member: tags maps are replaced, never modified, so while
// the instance keeps that map it keeps the tag, and a listing need not read
// the map again.
type postEntry struct {
	r    *instance
	tags map[string]string
}

// member reports whether e's instance currently belongs to p.
func (p *posting) member(e *postEntry) bool {
	r := e.r
	if r.forgotten {
		return false
	}
	if p.all || sameMap(e.tags, r.view.Tags) {
		return true
	}
	v, ok := r.view.Tags[p.pair.key]
	if ok && v == p.pair.value {
		e.tags = r.view.Tags
		return true
	}
	return false
}

// sameMap reports whether a and b are the same map, not merely equal ones.
// A map value is a pointer to the map's header.
func sameMap(a, b map[string]string) bool {
	return *(*unsafe.Pointer)(unsafe.Pointer(&a)) == *(*unsafe.Pointer)(unsafe.Pointer(&b))
}

// sweepDue reports whether enough of p is stale to be worth sweeping. A
// posting that is entirely stale is always swept, so that one-off tag values
// (timestamps, ids) do not pile up as empty postings.
func (p *posting) sweepDue() bool {
	return p.stale > 0 && (p.stale == len(p.items) || (p.stale >= 16 && 4*p.stale > len(p.items)))
}

// join records that r has just acquired tag pair. The caller has already
// set r.view.Tags.
func (s *Sim) join(r *instance, pair tagPair) {
	p := s.byTag[pair]
	if p == nil {
		p = &posting{pair: pair}
		s.byTag[pair] = p
	}
	for _, q := range r.inPostings {
		if q == p { // a stale entry of an earlier membership becomes live again
			p.stale--
			return
		}
	}
	p.items = append(p.items, postEntry{r: r, tags: r.view.Tags})
	r.inPostings = append(r.inPostings, p)
}

// leave records that r has just lost tag pair (or been forgotten). The
// caller has already updated r.
func (s *Sim) leave(pair tagPair) {
	p := s.byTag[pair]
	p.stale++
	if p.sweepDue() {
		s.sweep(p)
	}
}

// sweep drops p's stale entries, and p itself once empty.
func (s *Sim) sweep(p *posting) {
	kept := p.items[:0]
	for i := range p.items {
		e := &p.items[i]
		r := e.r
		if p.member(e) {
			kept = append(kept, *e)
			continue
		}
		if !p.all {
			for i, q := range r.inPostings {
				if q == p {
					r.inPostings = append(r.inPostings[:i], r.inPostings[i+1:]...)
					break
				}
			}
		}
	}
	clear(p.items[len(kept):]) // let forgotten records be collected
	p.items = kept
	p.stale = 0
	if len(kept) == 0 && !p.all {
		delete(s.byTag, p.pair)
	}
}

// add puts a new instance into the index.
func (s *Sim) add(r *instance) {
	s.all.items = append(s.all.items, postEntry{r: r, tags: r.view.Tags})
	for k, v := range r.view.Tags {
		s.join(r, tagPair{k, v})
	}
}

// forgetUntil forgets the instances terminated at least
// TerminatedVisibleFor before now: they leave the index and the API no
// longer knows them (Instance and Instances still do).
func (s *Sim) forgetUntil(now time.Time) {
	for len(s.forget) > 0 {
		r := s.forget[0]
		if now.Before(r.terminatedAt.Add(s.cfg.TerminatedVisibleFor)) {
			return
		}
		heap.Pop(&s.forget)
		r.forgotten = true
		for k, v := range r.view.Tags {
			s.leave(tagPair{k, v})
		}
		s.all.stale++
		if s.all.sweepDue() {
			s.sweep(&s.all)
		}
	}
}

// terminate starts r's shutdown at now. It is the one place an instance
// stops being live, whoever asks (the API or a spot interruption), so the
// live counts, the forget queue and the interruption queue stay right.
func (s *Sim) terminate(r *instance, now time.Time) {
	if r.terminating {
		return
	}
	r.terminating = true
	r.terminateAt = now
	r.terminatedAt = now.Add(sample(s.cfg.ShutdownDelay, s.shutdownRand))
	if !r.stopping { // a stop already released its capacity
		s.live--
		s.liveBy[offeringKeyOf(r)]--
	}
	heap.Push(&s.forget, r)
	s.cancelInterruption(r)
	s.cancelEvents(r)
}

func offeringKeyOf(r *instance) offeringKey {
	return offeringKey{market: r.view.Market, instanceType: r.view.Type, zone: r.view.Zone}
}

// forgetQueue is a min-heap of terminating instances by the time they are
// to be forgotten (terminatedAt; TerminatedVisibleFor is the same for all).
type forgetQueue []*instance

func (q forgetQueue) Len() int { return len(q) }
func (q forgetQueue) Less(i, j int) bool {
	if c := q[i].terminatedAt.Compare(q[j].terminatedAt); c != 0 {
		return c < 0
	}
	return q[i].seq < q[j].seq
}
func (q forgetQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *forgetQueue) Push(x any)   { *q = append(*q, x.(*instance)) }
func (q *forgetQueue) Pop() any {
	old := *q
	r := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return r
}
