package role_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/role"
)

func TestNewValidatesName(t *testing.T) {
	for _, tc := range []struct {
		desc, name string
		ok         bool
	}{
		{"empty", "", false},
		{"longest tag value", strings.Repeat("w", 256), true},
		{"longer than a tag value", strings.Repeat("w", 257), false},
		{"invalid UTF-8", "work\xffer", false},
		{"plain", "worker", true},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			r, err := role.New(tc.name, anImage, role.Hooks{})
			if tc.ok {
				require.NoError(t, err)
				assert.Equal(t, tc.name, r.Name())
				return
			}
			require.ErrorIs(t, err, role.ErrInvalidConfig)
			var ce *role.ConfigError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, "Name", ce.Field)
		})
	}
}

func TestFuncNilHooksSucceed(t *testing.T) {
	r, err := role.New("worker", anImage, role.Hooks{})
	require.NoError(t, err)
	ctx, inst := context.Background(), awsctl.Instance{ID: "i-1"}
	assert.NoError(t, r.Provision(ctx, inst))
	assert.NoError(t, r.WindDown(ctx, inst))
	assert.NoError(t, r.Restore(ctx, inst))
	assert.NoError(t, r.Teardown(ctx, inst))
	st, err := r.Check(ctx, inst)
	require.NoError(t, err)
	assert.Equal(t, role.Status{Idle: true, WoundDown: true}, st, "a role without Check winds down at once")
}

func TestFuncCallsItsHooks(t *testing.T) {
	type key struct{}
	var calls []string
	errBroken := errors.New("broken")
	hook := func(name string) func(context.Context, awsctl.Instance) error {
		return func(ctx context.Context, inst awsctl.Instance) error {
			calls = append(calls, name+" "+inst.ID+" "+ctx.Value(key{}).(string))
			return errBroken
		}
	}
	r, err := role.New("worker", anImage, role.Hooks{
		Provision: hook("provision"),
		WindDown:  hook("wind-down"),
		Restore:   hook("restore"),
		Teardown:  hook("teardown"),
		Check: func(ctx context.Context, inst awsctl.Instance) (role.Status, error) {
			calls = append(calls, "check "+inst.ID+" "+ctx.Value(key{}).(string))
			return role.Status{Idle: true}, nil
		},
	})
	require.NoError(t, err)
	ctx := context.WithValue(context.Background(), key{}, "ctx")
	inst := awsctl.Instance{ID: "i-7"}
	assert.ErrorIs(t, r.Provision(ctx, inst), errBroken)
	assert.ErrorIs(t, r.WindDown(ctx, inst), errBroken)
	assert.ErrorIs(t, r.Restore(ctx, inst), errBroken)
	assert.ErrorIs(t, r.Teardown(ctx, inst), errBroken)
	st, err := r.Check(ctx, inst)
	require.NoError(t, err)
	assert.Equal(t, role.Status{Idle: true}, st)
	assert.Equal(t, []string{
		"provision i-7 ctx", "wind-down i-7 ctx", "restore i-7 ctx", "teardown i-7 ctx", "check i-7 ctx",
	}, calls)
}

func TestLaunchSpecIsACopy(t *testing.T) {
	spec := awsctl.LaunchSpec{
		ImageID:          "ami-1",
		LaunchTemplate:   &awsctl.LaunchTemplate{Name: "lt", Version: "3"},
		Subnets:          []awsctl.Subnet{{ID: "subnet-1", Zone: "us-east-1a"}},
		SecurityGroupIDs: []string{"sg-1"},
		Tags:             map[string]string{"team": "batch"},
	}
	want := awsctl.LaunchSpec{
		ImageID:          "ami-1",
		LaunchTemplate:   &awsctl.LaunchTemplate{Name: "lt", Version: "3"},
		Subnets:          []awsctl.Subnet{{ID: "subnet-1", Zone: "us-east-1a"}},
		SecurityGroupIDs: []string{"sg-1"},
		Tags:             map[string]string{"team": "batch"},
	}
	mutate := func(s awsctl.LaunchSpec) {
		s.LaunchTemplate.Version = "9"
		s.Subnets[0].Zone = "eu-west-1a"
		s.SecurityGroupIDs[0] = "sg-evil"
		s.Tags["team"] = "other"
	}
	fr, err := role.New("worker", spec, role.Hooks{})
	require.NoError(t, err)
	hr, err := role.NewHTTP("web", spec, role.HTTPConfig{})
	require.NoError(t, err)
	mutate(spec)
	for _, r := range []role.Role{fr, hr} {
		mutate(r.LaunchSpec())
		assert.Equal(t, want, r.LaunchSpec(), r.Name())
	}
}
