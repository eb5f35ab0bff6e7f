package cloudtest_test

import (
	"context"
	"errors"
	"maps"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/cloudtest"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim"
)

// defectEnv names the defect TestBrokenCloud plants; it is set only when
// TestSuiteCatchesDefects runs the test binary again.
const defectEnv = "CLOUDTEST_DEFECT"

// TestSuiteCatchesDefects runs the suite against clouds with one defect
// each and checks that the subtest meant to catch it fails. The suite runs
// in a child process because a failing subtest cannot be contained in this
// one.
func TestSuiteCatchesDefects(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the test binary once per defect")
	}
	caughtBy := map[string]string{
		"ignores-filter":           "ListFiltersByTags",
		"lists-terminated":         "ListIncludeTerminated",
		"ignores-token":            "LaunchTokenReplaysFirstLaunch",
		"token-ignores-params":     "LaunchTokenParameterMismatch",
		"ignores-spec-tags":        "LaunchReturnsTaggedInstances",
		"ignores-weights":          "LaunchWeightedCapacity",
		"bare-errors":              "LaunchEmptySpecIsInvalid",
		"terminate-not-idempotent": "TerminateIsIdempotent",
		"terminate-all-or-nothing": "TerminateUnknownIDStillTerminatesKnown",
		"tag-partial":              "TagUnknownIDIsNotFound",
		"untag-ignored":            "TagAndUntagShowInListing",
		"tag-unchecked-kind":       "TagLimitsAreInvalid",
		"tags-modified-in-place":   "ReturnedTagsNeverChange",
		"append-ignores-filter":    "AppendInstancesListsAlike",
	}
	failLine := regexp.MustCompile(`--- FAIL: TestBrokenCloud/(\w+)`)
	for _, defect := range slices.Sorted(maps.Keys(caughtBy)) {
		t.Run(defect, func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestBrokenCloud$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), defectEnv+"="+defect)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			require.ErrorAs(t, err, &exit, "the suite passed a cloud that %s:\n%s", defect, out)
			var failed []string
			for _, m := range failLine.FindAllStringSubmatch(string(out), -1) {
				failed = append(failed, m[1])
			}
			assert.Contains(t, failed, caughtBy[defect], "output:\n%s", out)
		})
	}
}

func TestBrokenCloud(t *testing.T) {
	defect := os.Getenv(defectEnv)
	if defect == "" {
		t.Skip("run by TestSuiteCatchesDefects")
	}
	cloudtest.Run(t, func(t *testing.T) cloudtest.Harness {
		sim, err := ec2sim.New(ec2sim.Config{ShutdownDelay: ec2sim.Fixed(0)})
		require.NoError(t, err)
		return cloudtest.Harness{
			Client: &brokenCloud{Sim: sim, defect: defect},
			Spec:   awsctl.LaunchSpec{ImageID: "ami-0123456789abcdef0"},
			Offerings: []awsctl.Offering{
				{InstanceType: "m5.large", Zone: "us-east-1a", Weight: 1},
				{InstanceType: "m5.large", Zone: "us-east-1b", Weight: 1},
			},
		}
	})
}

// brokenCloud is the simulator with one planted defect.
type brokenCloud struct {
	*ec2sim.Sim
	defect string
	tokens map[string]bool
	tags   map[string]map[string]string // per instance, the one map tags-modified-in-place returns
}

func (b *brokenCloud) ListInstances(ctx context.Context, f awsctl.ListFilter) ([]awsctl.Instance, error) {
	switch b.defect {
	case "ignores-filter":
		f.Tags = nil
	case "lists-terminated":
		f.IncludeTerminated = true
	case "tags-modified-in-place":
		// One map per instance, kept and rewritten: a listing changes the
		// maps earlier listings returned.
		insts, err := b.Sim.ListInstances(ctx, f)
		if b.tags == nil {
			b.tags = map[string]map[string]string{}
		}
		for i, inst := range insts {
			m := b.tags[inst.ID]
			if m == nil {
				m = map[string]string{}
				b.tags[inst.ID] = m
			}
			clear(m)
			maps.Copy(m, inst.Tags)
			insts[i].Tags = m
		}
		return insts, err
	}
	return b.Sim.ListInstances(ctx, f)
}

func (b *brokenCloud) AppendInstances(ctx context.Context, buf []awsctl.Instance, f awsctl.ListFilter) ([]awsctl.Instance, error) {
	if b.defect == "append-ignores-filter" {
		f.Tags = nil
		return b.Sim.AppendInstances(ctx, buf, f)
	}
	// Alike: what this cloud's ListInstances returns, defects included.
	insts, err := b.ListInstances(ctx, f)
	return append(buf, insts...), err
}

func (b *brokenCloud) Launch(ctx context.Context, req awsctl.LaunchRequest) ([]awsctl.Instance, error) {
	switch b.defect {
	case "ignores-token":
		req.Token = ""
	case "token-ignores-params":
		// Replays by token alone: a changed request still gets the first answer.
		if b.tokens == nil {
			b.tokens = map[string]bool{}
		}
		if req.Token != "" && b.tokens[req.Token] {
			req.Capacity = 1
		}
		b.tokens[req.Token] = true
	case "ignores-spec-tags":
		req.Spec.Tags = nil
	case "ignores-weights":
		req.Offerings = slices.Clone(req.Offerings)
		for i := range req.Offerings {
			req.Offerings[i].Weight = 1
		}
	case "bare-errors":
		insts, err := b.Sim.Launch(ctx, req)
		if err != nil {
			err = errors.New("launch failed")
		}
		return insts, err
	}
	return b.Sim.Launch(ctx, req)
}

func (b *brokenCloud) Terminate(ctx context.Context, ids []string) ([]string, error) {
	switch b.defect {
	case "terminate-not-idempotent":
		for _, id := range ids {
			if inst, ok := b.Sim.Instance(id); ok && !inst.State.Live() {
				return nil, &awsctl.APIError{Op: "Terminate", Code: "IncorrectInstanceState", Kind: awsctl.ErrInvalidRequest}
			}
		}
	case "terminate-all-or-nothing":
		for _, id := range ids {
			if _, ok := b.Sim.Instance(id); !ok {
				return nil, &awsctl.APIError{Op: "Terminate", Code: "InvalidInstanceID.NotFound", Message: id, Kind: awsctl.ErrNotFound}
			}
		}
	}
	return b.Sim.Terminate(ctx, ids)
}

func (b *brokenCloud) Tag(ctx context.Context, ids []string, tags map[string]string) error {
	switch b.defect {
	case "tag-partial":
		var known []string
		for _, id := range ids {
			if _, ok := b.Sim.Instance(id); ok {
				known = append(known, id)
			}
		}
		if len(known) > 0 {
			_ = b.Sim.Tag(ctx, known, tags)
		}
	case "tag-unchecked-kind":
		if err := b.Sim.Tag(ctx, ids, tags); err != nil {
			return errors.New("tagging failed")
		}
		return nil
	}
	return b.Sim.Tag(ctx, ids, tags)
}

func (b *brokenCloud) Untag(ctx context.Context, ids []string, keys []string) error {
	if b.defect == "untag-ignored" {
		return nil
	}
	return b.Sim.Untag(ctx, ids, keys)
}
