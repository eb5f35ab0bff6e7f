package cloudtest

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
)

// Harness is a cloud under test.
type Harness struct {
	// Client is the cloud. It starts empty or holds only instances without
	// the suite's tags.
	Client awsctl.CloudClient
	// Spec is a launch spec the cloud accepts.
	Spec awsctl.LaunchSpec
	// Offerings the cloud can launch a few instances of; the suite uses
	// them in order with their weights set to 1, except where it tests
	// weights. One offering is enough; more make the checks broader.
	Offerings []awsctl.Offering
}

// Tag keys the suite writes. OwnerTag tells the instances of one subtest
// apart from everything else in the cloud.
const (
	OwnerTag = "cloudtest:owner"
	tagPref  = "cloudtest:"
)

// UnknownID is a well-formed instance id that no cloud under test should
// know.
const UnknownID = "i-0fffffffffffffff0"

// Run runs the conformance subtests against the clouds newHarness makes,
// a fresh one per subtest. It checks behaviour, not timing: a new instance
// must be listed at once, and nothing waits for boots or shutdowns.
// Instances a subtest launches are terminated when it ends.
func Run(t *testing.T, newHarness func(t *testing.T) Harness) {
	t.Helper()
	for _, c := range cases() {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			if h.Client == nil || len(h.Offerings) == 0 {
				t.Fatalf("harness needs a Client and at least one offering (got %d)", len(h.Offerings))
			}
			c.run(newEnv(t, h))
		})
	}
}

type testCase struct {
	name string
	run  func(e *env)
}

func cases() []testCase {
	return []testCase{
		{"LaunchReturnsTaggedInstances", testLaunchReturnsTaggedInstances},
		{"LaunchWeightedCapacity", testLaunchWeightedCapacity},
		{"LaunchEmptySpecIsInvalid", testLaunchEmptySpecIsInvalid},
		{"LaunchTokenReplaysFirstLaunch", testLaunchTokenReplays},
		{"LaunchTokenParameterMismatch", testLaunchTokenMismatch},
		{"ListFiltersByTags", testListFiltersByTags},
		{"ListIncludeTerminated", testListIncludeTerminated},
		{"TerminateIsIdempotent", testTerminateIsIdempotent},
		{"TerminateUnknownIDStillTerminatesKnown", testTerminateUnknownID},
		{"TagAndUntagShowInListing", testTagAndUntag},
		{"ReturnedTagsNeverChange", testReturnedTagsNeverChange},
		{"AppendInstancesListsAlike", testAppendInstances},
		{"TagUnknownIDIsNotFound", testTagUnknownID},
		{"TagLimitsAreInvalid", testTagLimits},
	}
}

// env is one subtest's view of the harness.
type env struct {
	t     *testing.T
	h     Harness
	ctx   context.Context
	owner string
}

func newEnv(t *testing.T, h Harness) *env {
	return &env{t: t, h: h, ctx: t.Context(), owner: "ct-" + shortHash(t.Name())}
}

func shortHash(s string) string {
	f := fnv.New64a()
	f.Write([]byte(s))
	return fmt.Sprintf("%016x", f.Sum64())
}

// token returns an idempotency token unique to the subtest and name.
func (e *env) token(name string) string { return "ct-" + shortHash(e.t.Name()+"/"+name) }

// ownerTags returns the subtest's owner tag plus extra key, value pairs.
func (e *env) ownerTags(extra ...string) map[string]string {
	tags := map[string]string{OwnerTag: e.owner}
	for i := 0; i+1 < len(extra); i += 2 {
		tags[extra[i]] = extra[i+1]
	}
	return tags
}

// offerings returns the harness offerings with weight 1.
func (e *env) offerings() []awsctl.Offering {
	out := slices.Clone(e.h.Offerings)
	for i := range out {
		out[i].Weight = 1
	}
	return out
}

// request returns a valid on-demand request for n instances tagged with
// the subtest's owner.
func (e *env) request(n int) awsctl.LaunchRequest {
	return awsctl.LaunchRequest{
		Spec:      e.h.Spec,
		Offerings: e.offerings(),
		Market:    awsctl.MarketOnDemand,
		Capacity:  n,
		Tags:      e.ownerTags(),
	}
}

// launch makes req, which must fully succeed, and schedules the
// termination of what it launched.
func (e *env) launch(req awsctl.LaunchRequest) []awsctl.Instance {
	e.t.Helper()
	insts, err := e.h.Client.Launch(e.ctx, req)
	e.cleanup(insts)
	if err != nil {
		e.t.Fatalf("Launch(capacity %d): %v", req.Capacity, err)
	}
	return insts
}

func (e *env) cleanup(insts []awsctl.Instance) {
	if len(insts) == 0 {
		return
	}
	ids := idsOf(insts)
	e.t.Cleanup(func() {
		if _, err := e.h.Client.Terminate(context.Background(), ids); err != nil {
			e.t.Logf("cleanup: Terminate(%v): %v", ids, err)
		}
	})
}

// list lists the instances with tags and fails the test on error.
func (e *env) list(tags map[string]string, includeTerminated bool) []awsctl.Instance {
	e.t.Helper()
	insts, err := e.h.Client.ListInstances(e.ctx, awsctl.ListFilter{Tags: tags, IncludeTerminated: includeTerminated})
	if err != nil {
		e.t.Fatalf("ListInstances(%v): %v", tags, err)
	}
	return insts
}

// find returns the instance with id in insts.
func find(insts []awsctl.Instance, id string) (awsctl.Instance, bool) {
	for _, inst := range insts {
		if inst.ID == id {
			return inst, true
		}
	}
	return awsctl.Instance{}, false
}

func idsOf(insts []awsctl.Instance) []string {
	ids := make([]string, len(insts))
	for i, inst := range insts {
		ids[i] = inst.ID
	}
	return ids
}

// sameIDs reports whether the two lists hold the same ids, in any order.
func sameIDs(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// expectKind fails the test unless err is of kind, with a message beyond
// the bare kind.
func (e *env) expectKind(what string, err, kind error) {
	e.t.Helper()
	switch {
	case err == nil:
		e.t.Errorf("%s: got no error, want %v", what, kind)
	case !errors.Is(err, kind):
		e.t.Errorf("%s: got %v, want an error of kind %v", what, err, kind)
	case err.Error() == kind.Error():
		e.t.Errorf("%s: error %q says nothing about the problem", what, err)
	}
}

func testLaunchReturnsTaggedInstances(e *env) {
	spec := e.h.Spec
	spec.Tags = maps.Clone(spec.Tags)
	if spec.Tags == nil {
		spec.Tags = map[string]string{}
	}
	spec.Tags[tagPref+"tier"] = "spec"
	spec.Tags[tagPref+"spec-only"] = "yes"
	req := e.request(2)
	req.Spec = spec
	req.Tags[tagPref+"tier"] = "request"

	insts := e.launch(req)
	if len(insts) != 2 {
		e.t.Fatalf("Launch(capacity 2) returned %d instances, want 2", len(insts))
	}
	want := maps.Clone(spec.Tags)
	maps.Copy(want, req.Tags)
	offered := map[[2]string]bool{}
	for _, o := range req.Offerings {
		offered[[2]string{o.InstanceType, o.Zone}] = true
	}
	seen := map[string]bool{}
	for _, inst := range insts {
		if inst.ID == "" || seen[inst.ID] {
			e.t.Errorf("instance id %q is empty or repeated", inst.ID)
		}
		seen[inst.ID] = true
		if inst.Market != awsctl.MarketOnDemand {
			e.t.Errorf("%s: market %q, want %q", inst.ID, inst.Market, awsctl.MarketOnDemand)
		}
		if !offered[[2]string{inst.Type, inst.Zone}] {
			e.t.Errorf("%s: %s in %s is not one of the offerings %v", inst.ID, inst.Type, inst.Zone, req.Offerings)
		}
		if inst.State != awsctl.StatePending && inst.State != awsctl.StateRunning {
			e.t.Errorf("%s: state %q right after launch, want pending or running", inst.ID, inst.State)
		}
		if inst.LaunchTime.IsZero() {
			e.t.Errorf("%s: no launch time", inst.ID)
		}
		for k, v := range want {
			if inst.Tags[k] != v {
				e.t.Errorf("%s: tag %q = %q, want %q (spec tags overlaid with request tags)", inst.ID, k, inst.Tags[k], v)
			}
		}
	}
	listed := e.list(e.ownerTags(), false)
	if !sameIDs(idsOf(listed), idsOf(insts)) {
		e.t.Errorf("listing by owner found %v, want the launched %v", idsOf(listed), idsOf(insts))
	}
}

func testLaunchWeightedCapacity(e *env) {
	req := e.request(3)
	req.Offerings = []awsctl.Offering{e.h.Offerings[0]}
	req.Offerings[0].Weight = 2
	insts := e.launch(req)
	if len(insts) != 2 {
		e.t.Fatalf("capacity 3 of a weight-2 offering launched %d instances, want 2", len(insts))
	}
	for _, inst := range insts {
		if inst.Type != req.Offerings[0].InstanceType || inst.Zone != req.Offerings[0].Zone {
			e.t.Errorf("%s: %s in %s, want %s in %s", inst.ID, inst.Type, inst.Zone, req.Offerings[0].InstanceType, req.Offerings[0].Zone)
		}
	}
}

func testLaunchEmptySpecIsInvalid(e *env) {
	bad := map[string]awsctl.LaunchRequest{}
	bad["zero request"] = awsctl.LaunchRequest{}
	r := e.request(1)
	r.Spec = awsctl.LaunchSpec{}
	bad["empty spec"] = r
	r = e.request(1)
	r.Capacity = 0
	bad["zero capacity"] = r
	r = e.request(1)
	r.Offerings = nil
	bad["no offerings"] = r
	for _, name := range slices.Sorted(maps.Keys(bad)) {
		insts, err := e.h.Client.Launch(e.ctx, bad[name])
		e.cleanup(insts)
		e.expectKind("Launch with "+name, err, awsctl.ErrInvalidRequest)
		if len(insts) > 0 {
			e.t.Errorf("Launch with %s launched %v", name, idsOf(insts))
		}
	}
	if got := e.list(e.ownerTags(), true); len(got) > 0 {
		e.t.Errorf("invalid launches left instances %v", idsOf(got))
	}
}

func testLaunchTokenReplays(e *env) {
	req := e.request(2)
	req.Token = e.token("replay")
	first := e.launch(req)
	again := e.launch(req)
	if !sameIDs(idsOf(first), idsOf(again)) {
		e.t.Errorf("retry with the same token returned %v, want the first launch's %v", idsOf(again), idsOf(first))
	}
	if got := e.list(e.ownerTags(), true); !sameIDs(idsOf(got), idsOf(first)) {
		e.t.Errorf("after a retried launch the owner has %v, want only %v", idsOf(got), idsOf(first))
	}
}

func testLaunchTokenMismatch(e *env) {
	req := e.request(1)
	req.Token = e.token("mismatch")
	first := e.launch(req)
	req.Capacity = 2
	insts, err := e.h.Client.Launch(e.ctx, req)
	e.cleanup(insts)
	e.expectKind("token reused with another capacity", err, awsctl.ErrTokenMismatch)
	if got := e.list(e.ownerTags(), true); !sameIDs(idsOf(got), idsOf(first)) {
		e.t.Errorf("after a mismatched retry the owner has %v, want only %v", idsOf(got), idsOf(first))
	}
}

func testListFiltersByTags(e *env) {
	mine := e.launch(e.request(2))
	other := e.request(1)
	other.Tags = map[string]string{OwnerTag: e.owner + "-other"}
	theirs := e.launch(other)
	marked := mine[0].ID
	if err := e.h.Client.Tag(e.ctx, []string{marked}, map[string]string{tagPref + "mark": "x"}); err != nil {
		e.t.Fatalf("Tag: %v", err)
	}

	if got := e.list(e.ownerTags(), false); !sameIDs(idsOf(got), idsOf(mine)) {
		e.t.Errorf("listing owner %q found %v, want %v", e.owner, idsOf(got), idsOf(mine))
	}
	if got := e.list(other.Tags, false); !sameIDs(idsOf(got), idsOf(theirs)) {
		e.t.Errorf("listing the other owner found %v, want %v", idsOf(got), idsOf(theirs))
	}
	if got := e.list(e.ownerTags(tagPref+"mark", "x"), false); !sameIDs(idsOf(got), []string{marked}) {
		e.t.Errorf("listing owner and mark found %v, want only %s", idsOf(got), marked)
	}
	if got := e.list(e.ownerTags(tagPref+"mark", "y"), false); len(got) > 0 {
		e.t.Errorf("listing a tag value nobody has found %v", idsOf(got))
	}
	if got := e.list(map[string]string{OwnerTag: e.owner + "-nobody"}, true); len(got) > 0 {
		e.t.Errorf("listing an owner without instances found %v", idsOf(got))
	}
}

func testListIncludeTerminated(e *env) {
	insts := e.launch(e.request(2))
	gone, kept := insts[0].ID, insts[1].ID
	if _, err := e.h.Client.Terminate(e.ctx, []string{gone}); err != nil {
		e.t.Fatalf("Terminate: %v", err)
	}
	live := e.list(e.ownerTags(), false)
	if inst, ok := find(live, kept); !ok || !inst.State.Live() {
		e.t.Errorf("live listing lost the running instance %s (found %v)", kept, live)
	}
	for _, inst := range live {
		if inst.State == awsctl.StateTerminated {
			e.t.Errorf("listing without IncludeTerminated returned terminated %s", inst.ID)
		}
	}
	if inst, ok := find(live, gone); ok && inst.State != awsctl.StateShuttingDown {
		e.t.Errorf("terminated %s is listed in state %q, want shutting-down or absent", gone, inst.State)
	}
	all := e.list(e.ownerTags(), true)
	inst, ok := find(all, gone)
	switch {
	case !ok:
		e.t.Errorf("listing with IncludeTerminated lacks %s, terminated just now", gone)
	case inst.State != awsctl.StateShuttingDown && inst.State != awsctl.StateTerminated:
		e.t.Errorf("terminated %s is in state %q", gone, inst.State)
	}
	if _, ok := find(all, kept); !ok {
		e.t.Errorf("listing with IncludeTerminated lacks live %s", kept)
	}
}

func testTerminateIsIdempotent(e *env) {
	insts := e.launch(e.request(2))
	gone, kept := insts[0].ID, insts[1].ID
	for i := range 2 {
		accepted, err := e.h.Client.Terminate(e.ctx, []string{gone})
		if err != nil || !slices.Equal(accepted, []string{gone}) {
			e.t.Errorf("Terminate #%d of %s = %v, %v; want it accepted without error", i+1, gone, accepted, err)
		}
	}
	all := e.list(e.ownerTags(), true)
	if inst, ok := find(all, gone); ok && inst.State.Live() {
		e.t.Errorf("terminated %s is still %s", gone, inst.State)
	}
	if inst, ok := find(all, kept); !ok || !inst.State.Live() {
		e.t.Errorf("terminating %s affected %s (%+v)", gone, kept, inst)
	}
}

func testTerminateUnknownID(e *env) {
	known := e.launch(e.request(1))[0].ID
	accepted, err := e.h.Client.Terminate(e.ctx, []string{known, UnknownID})
	e.expectKind("Terminate with an unknown id", err, awsctl.ErrNotFound)
	if !slices.Contains(accepted, known) || slices.Contains(accepted, UnknownID) {
		e.t.Errorf("Terminate accepted %v, want %s and not %s", accepted, known, UnknownID)
	}
	if err != nil && !strings.Contains(err.Error(), UnknownID) {
		e.t.Errorf("error %q does not name the unknown id", err)
	}
	inst, ok := find(e.list(e.ownerTags(), true), known)
	if !ok || inst.State.Live() {
		e.t.Errorf("known %s was not terminated alongside the unknown id (listed: %v, state %q)", known, ok, inst.State)
	}
}

func testTagAndUntag(e *env) {
	id := e.launch(e.request(1))[0].ID
	get := func() map[string]string {
		e.t.Helper()
		inst, ok := find(e.list(e.ownerTags(), false), id)
		if !ok {
			e.t.Fatalf("%s vanished from the listing", id)
		}
		return inst.Tags
	}
	a, b := tagPref+"a", tagPref+"b"
	if err := e.h.Client.Tag(e.ctx, []string{id}, map[string]string{a: "1", b: "2"}); err != nil {
		e.t.Fatalf("Tag: %v", err)
	}
	if tags := get(); tags[a] != "1" || tags[b] != "2" || tags[OwnerTag] != e.owner {
		e.t.Errorf("after Tag the listing shows %v", tags)
	}
	if err := e.h.Client.Tag(e.ctx, []string{id}, map[string]string{a: "3"}); err != nil {
		e.t.Fatalf("Tag overwrite: %v", err)
	}
	if tags := get(); tags[a] != "3" || tags[b] != "2" {
		e.t.Errorf("after overwriting %s the listing shows %v", a, tags)
	}
	if got := e.list(e.ownerTags(a, "3"), false); !sameIDs(idsOf(got), []string{id}) {
		e.t.Errorf("listing by the new tag value found %v, want %s", idsOf(got), id)
	}
	if got := e.list(e.ownerTags(a, "1"), false); len(got) > 0 {
		e.t.Errorf("listing by the overwritten tag value found %v", idsOf(got))
	}
	if err := e.h.Client.Untag(e.ctx, []string{id}, []string{a}); err != nil {
		e.t.Fatalf("Untag: %v", err)
	}
	if tags := get(); tags[b] != "2" || tags[OwnerTag] != e.owner {
		e.t.Errorf("Untag of %s took other tags: %v", a, tags)
	} else if _, has := tags[a]; has {
		e.t.Errorf("after Untag the listing still shows %s: %v", a, tags)
	}
}

// testReturnedTagsNeverChange checks that a Tags map a client returned is
// never modified afterwards: changed tags show in a new map (the scaler
// takes the same map to mean the same tags).
func testReturnedTagsNeverChange(e *env) {
	launched := e.launch(e.request(1))[0]
	id := launched.ID
	type kept struct {
		what string
		m    map[string]string
		was  map[string]string
	}
	var maps []kept
	keep := func(what string, m map[string]string) {
		maps = append(maps, kept{what, m, copyTags(m)})
	}
	listed := func() map[string]string {
		e.t.Helper()
		inst, ok := find(e.list(e.ownerTags(), false), id)
		if !ok {
			e.t.Fatalf("%s vanished from the listing", id)
		}
		return inst.Tags
	}
	keep("the map Launch returned", launched.Tags)
	keep("the map listed after Launch", listed())
	a := tagPref + "a"
	if err := e.h.Client.Tag(e.ctx, []string{id}, map[string]string{a: "1"}); err != nil {
		e.t.Fatalf("Tag: %v", err)
	}
	keep("the map listed after Tag", listed())
	if err := e.h.Client.Tag(e.ctx, []string{id}, map[string]string{a: "2"}); err != nil {
		e.t.Fatalf("Tag overwrite: %v", err)
	}
	keep("the map listed after a Tag that overwrote a value", listed())
	if err := e.h.Client.Untag(e.ctx, []string{id}, []string{a}); err != nil {
		e.t.Fatalf("Untag: %v", err)
	}
	if tags := listed(); tags[a] != "" {
		e.t.Errorf("after Untag the listing still shows %s: %v", a, tags)
	}
	for _, k := range maps {
		if !sameTags(k.m, k.was) {
			e.t.Errorf("%s changed after it was returned: was %v, now %v (changed tags must come in a new map)", k.what, k.was, k.m)
		}
	}
}

// testAppendInstances checks, for a client that implements
// awsctl.InstanceAppender, that AppendInstances appends what ListInstances
// returns, in its order, after what buf holds.
func testAppendInstances(e *env) {
	a, ok := e.h.Client.(awsctl.InstanceAppender)
	if !ok {
		e.t.Skip("the client does not implement awsctl.InstanceAppender")
	}
	insts := e.launch(e.request(3))
	if _, err := e.h.Client.Terminate(e.ctx, []string{insts[0].ID}); err != nil {
		e.t.Fatalf("Terminate: %v", err)
	}
	head := awsctl.Instance{ID: "kept-by-the-caller"}
	buf := make([]awsctl.Instance, 1, 8)
	buf[0] = head
	for _, f := range []awsctl.ListFilter{
		{Tags: e.ownerTags()},
		{Tags: e.ownerTags(), IncludeTerminated: true},
		{Tags: e.ownerTags(tagPref+"none", "x")},
	} {
		want := e.list(f.Tags, f.IncludeTerminated)
		got, err := a.AppendInstances(e.ctx, buf, f)
		if err != nil {
			e.t.Fatalf("AppendInstances(%+v): %v", f, err)
		}
		if len(got) == 0 || got[0].ID != head.ID {
			e.t.Errorf("AppendInstances(%+v) did not keep what buf held: %v", f, idsOf(got))
			continue
		}
		if !sameIDs(idsOf(got[1:]), idsOf(want)) {
			e.t.Errorf("AppendInstances(%+v) appended %v, ListInstances returns %v", f, idsOf(got[1:]), idsOf(want))
			continue
		}
		for i, w := range want {
			g := got[1+i]
			if g.ID != w.ID || g.State != w.State || g.Type != w.Type || g.Zone != w.Zone || g.Market != w.Market ||
				!g.LaunchTime.Equal(w.LaunchTime) || !sameTags(g.Tags, w.Tags) {
				e.t.Errorf("AppendInstances(%+v) shows %+v, ListInstances %+v", f, g, w)
			}
		}
		buf = got[:1] // the caller hands its buffer back, as the scaler does
	}
}

func copyTags(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func sameTags(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func testTagUnknownID(e *env) {
	id := e.launch(e.request(1))[0].ID
	mark := map[string]string{tagPref + "mark": "x"}
	e.expectKind("Tag of an unknown id", e.h.Client.Tag(e.ctx, []string{UnknownID}, mark), awsctl.ErrNotFound)
	e.expectKind("Tag of a known and an unknown id", e.h.Client.Tag(e.ctx, []string{id, UnknownID}, mark), awsctl.ErrNotFound)
	e.expectKind("Untag of an unknown id", e.h.Client.Untag(e.ctx, []string{UnknownID}, []string{OwnerTag}), awsctl.ErrNotFound)
	if got := e.list(e.ownerTags(tagPref+"mark", "x"), false); len(got) > 0 {
		e.t.Errorf("a failed Tag still tagged %v", idsOf(got))
	}
}

func testTagLimits(e *env) {
	id := e.launch(e.request(1))[0].ID
	tooMany := map[string]string{}
	for i := range 51 {
		tooMany[fmt.Sprintf("%sk%02d", tagPref, i)] = "v"
	}
	bad := map[string]map[string]string{
		"51 tags":               tooMany,
		"a 129-character key":   {tagPref + strings.Repeat("k", 129-len(tagPref)): "v"},
		"a 257-character value": {tagPref + "long": strings.Repeat("v", 257)},
		"an aws: key":           {"aws:cloudtest": "v"},
	}
	for _, name := range slices.Sorted(maps.Keys(bad)) {
		e.expectKind("Tag with "+name, e.h.Client.Tag(e.ctx, []string{id}, bad[name]), awsctl.ErrInvalidRequest)
	}
	inst, ok := find(e.list(e.ownerTags(), false), id)
	if !ok {
		e.t.Fatalf("%s vanished from the listing", id)
	}
	for k := range inst.Tags {
		if _, fromSpec := e.h.Spec.Tags[k]; k != OwnerTag && !fromSpec {
			e.t.Errorf("a refused Tag call left tag %q", k)
		}
	}

	req := e.request(1)
	req.Tags = maps.Clone(tooMany)
	req.Tags[OwnerTag] = e.owner + "-many"
	insts, err := e.h.Client.Launch(e.ctx, req)
	e.cleanup(insts)
	e.expectKind("Launch with 52 tags", err, awsctl.ErrInvalidRequest)
	if got := e.list(map[string]string{OwnerTag: e.owner + "-many"}, true); len(got) > 0 || len(insts) > 0 {
		e.t.Errorf("a launch with too many tags launched %v", idsOf(got))
	}
}
