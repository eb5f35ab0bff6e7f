package pool

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// A window keeps the latest BootWindow samples whatever order they come in
// and however often each comes: what makes a restarted scaler, which reads
// the listing in its own order, learn what a running one learnt.
func TestBootWindowDependsOnlyOnTheSamples(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for round := range 500 {
		n := r.IntN(4 * BootWindow)
		xs := make([]bootSample, n)
		for i := range xs {
			// Few distinct ready times: ties are broken by id.
			xs[i] = bootSample{ready: int64(r.IntN(20)), id: fmt.Sprintf("i-%03d", i), d: time.Duration(r.IntN(1000)) * time.Second}
		}
		var inOrder, shuffled bootWindow
		for _, x := range xs {
			inOrder.add(x)
		}
		perm := r.Perm(n)
		for j, i := range perm {
			shuffled.add(xs[i])
			shuffled.add(xs[perm[r.IntN(j+1)]]) // one seen before, again
		}
		a, _ := inOrder.estimate()
		b, _ := shuffled.estimate()
		if a != b || len(inOrder.s) != len(shuffled.s) || len(inOrder.s) != min(n, BootWindow) {
			t.Fatalf("round %d: %v over %d samples in order, %v over %d shuffled", round, a, len(inOrder.s), b, len(shuffled.s))
		}
	}
}
