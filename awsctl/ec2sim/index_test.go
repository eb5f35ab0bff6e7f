package ec2sim

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
)

// TestIndexMatchesBruteForce drives the sim with random launches, tag
// changes, terminations and clock moves, and checks after each step that
// the indexed listing equals a scan of every instance, and that the index's
// bookkeeping is exact.
func TestIndexMatchesBruteForce(t *testing.T) {
	ctx := context.Background()
	s, err := New(Config{
		BootDelay:            Uniform(0, 30*time.Second),
		ShutdownDelay:        Uniform(0, 30*time.Second),
		ListDelay:            Uniform(0, 10*time.Second),
		TerminatedVisibleFor: 2 * time.Minute,
		Seed:                 42,
	})
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(1, 2))
	values := []string{"a", "b", "c"}
	pick := func() string { return values[rng.IntN(len(values))] }
	randomIDs := func() []string {
		var ids []string
		for _, inst := range s.Instances() {
			if rng.IntN(4) == 0 {
				ids = append(ids, inst.ID)
			}
		}
		return ids
	}
	liveIDs := func() []string {
		var ids []string
		for _, inst := range s.Instances() {
			if !s.byID[inst.ID].forgotten && rng.IntN(3) == 0 {
				ids = append(ids, inst.ID)
			}
		}
		return ids
	}
	off := awsctl.Offering{InstanceType: "m5.large", Zone: "us-east-1a", Weight: 1}

	for step := range 3000 {
		switch rng.IntN(6) {
		case 0:
			tags := map[string]string{"owner": pick()}
			if rng.IntN(2) == 0 {
				tags["pool"] = pick()
			}
			_, err := s.Launch(ctx, awsctl.LaunchRequest{Spec: awsctl.LaunchSpec{ImageID: "ami-1"}, Offerings: []awsctl.Offering{off},
				Market: awsctl.MarketOnDemand, Capacity: 1 + rng.IntN(5), Tags: tags})
			require.NoError(t, err)
		case 1:
			if ids := liveIDs(); len(ids) > 0 {
				// Unique values exercise postings that empty out.
				require.NoError(t, s.Tag(ctx, ids, map[string]string{"pool": pick(), "stamp": fmt.Sprint(step)}))
			}
		case 2:
			if ids := liveIDs(); len(ids) > 0 {
				require.NoError(t, s.Untag(ctx, ids, []string{[]string{"pool", "stamp", "owner"}[rng.IntN(3)]}))
			}
		case 3:
			_, _ = s.Terminate(ctx, randomIDs())
		case 4, 5:
			require.NoError(t, s.Advance(time.Duration(rng.IntN(20))*time.Second))
		}
		for _, f := range []awsctl.ListFilter{
			{},
			{IncludeTerminated: true},
			{Tags: map[string]string{"owner": pick()}},
			{Tags: map[string]string{"owner": pick(), "pool": pick()}, IncludeTerminated: rng.IntN(2) == 0},
			{Tags: map[string]string{"stamp": fmt.Sprint(step - rng.IntN(10))}},
		} {
			got, err := s.ListInstances(ctx, f)
			require.NoError(t, err)
			require.Equal(t, bruteForce(s, f), sortedIDs(got), "step %d, filter %+v", step, f)
		}
		checkIndex(t, s)
	}
}

func bruteForce(s *Sim, f awsctl.ListFilter) []string {
	now := s.Now()
	var ids []string
	for _, r := range s.history {
		st := r.state(now)
		if r.forgotten || now.Before(r.visibleAt) || (st == awsctl.StateTerminated && !f.IncludeTerminated) || !hasTags(r.view.Tags, f.Tags) {
			continue
		}
		ids = append(ids, r.view.ID)
	}
	slices.Sort(ids)
	return ids
}

func sortedIDs(insts []awsctl.Instance) []string {
	var ids []string
	for _, inst := range insts {
		ids = append(ids, inst.ID)
	}
	slices.Sort(ids)
	return ids
}

// checkIndex verifies the index's bookkeeping: stale counts are exact, each
// current tag has exactly one entry, and inPostings mirrors the postings.
func checkIndex(t *testing.T, s *Sim) {
	t.Helper()
	holds := map[*instance]map[*posting]int{}
	for pair, p := range s.byTag {
		require.Equal(t, pair, p.pair)
		require.NotEmpty(t, p.items, "empty posting %v kept", pair)
		stale := 0
		for i := range p.items {
			e := &p.items[i]
			r := e.r
			if holds[r] == nil {
				holds[r] = map[*posting]int{}
			}
			holds[r][p]++
			if sameMap(e.tags, r.view.Tags) && !p.all {
				v, ok := e.tags[pair.key]
				require.True(t, ok && v == pair.value, "%s listed under %v by a map without it", r.view.ID, pair)
			}
			if !p.member(e) {
				stale++
			}
		}
		require.Equal(t, stale, p.stale, "stale count of %v", pair)
	}
	for _, r := range s.history {
		for k, v := range r.view.Tags {
			if !r.forgotten {
				require.Equal(t, 1, holds[r][s.byTag[tagPair{k, v}]], "%s tag %s=%s", r.view.ID, k, v)
			}
		}
		require.Len(t, r.inPostings, len(holds[r]), r.view.ID)
		for _, p := range r.inPostings {
			require.Equal(t, 1, holds[r][p])
		}
	}
	stale := 0
	for _, e := range s.all.items {
		if e.r.forgotten {
			stale++
		}
	}
	require.Equal(t, stale, s.all.stale)
}

// TestForgettingShrinksIndex checks that terminated history does not stay
// in the listing's path.
func TestForgettingShrinksIndex(t *testing.T) {
	ctx := context.Background()
	s, err := New(Config{TerminatedVisibleFor: time.Minute})
	require.NoError(t, err)
	off := awsctl.Offering{InstanceType: "m5.large", Zone: "us-east-1a", Weight: 1}
	for i := range 1000 {
		insts, err := s.Launch(ctx, awsctl.LaunchRequest{Spec: awsctl.LaunchSpec{ImageID: "ami-1"}, Offerings: []awsctl.Offering{off},
			Market: awsctl.MarketOnDemand, Capacity: 1, Tags: map[string]string{"owner": "x", "n": fmt.Sprint(i)}})
		require.NoError(t, err)
		_, err = s.Terminate(ctx, []string{insts[0].ID})
		require.NoError(t, err)
	}
	require.Len(t, s.byTag, 1001)
	require.NoError(t, s.Advance(2*time.Minute))
	got, err := s.ListInstances(ctx, awsctl.ListFilter{IncludeTerminated: true})
	require.NoError(t, err)
	require.Empty(t, got)
	require.Empty(t, s.byTag)
	require.Empty(t, s.all.items)
	require.Empty(t, s.forget)
	require.Len(t, s.Instances(), 1000, "the sim's own history is kept")
}

func hasTags(tags, want map[string]string) bool {
	for k, v := range want {
		if got, ok := tags[k]; !ok || got != v {
			return false
		}
	}
	return true
}
