package ec2client_test

import (
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2client"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2client/ec2test"
)

type policy struct {
	Statement []struct {
		Sid       string
		Action    json.RawMessage
		Condition map[string]map[string]json.RawMessage
	}
}

func stringOrList(raw json.RawMessage) []string {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}
	}
	var many []string
	_ = json.Unmarshal(raw, &many)
	return many
}

// The policy must grant each EC2 call the client can make, and nothing
// more: the EC2API interface lists exactly those calls.
func TestIAMPolicyGrantsExactlyTheCallsMade(t *testing.T) {
	raw, err := os.ReadFile("../../docs/iam-policy.json")
	require.NoError(t, err)
	var p policy
	require.NoError(t, json.Unmarshal(raw, &p))

	var granted []string
	conditionKeys := map[string]bool{}
	for _, s := range p.Statement {
		for _, a := range stringOrList(s.Action) {
			if name, ok := strings.CutPrefix(a, "ec2:"); ok && !slices.Contains(granted, name) {
				granted = append(granted, name)
			}
		}
		for _, cond := range s.Condition {
			for k := range cond {
				conditionKeys[k] = true
			}
		}
	}
	api := reflect.TypeFor[ec2client.EC2API]()
	var used []string
	for i := range api.NumMethod() {
		used = append(used, api.Method(i).Name)
	}
	assert.ElementsMatch(t, used, granted)
	assert.ElementsMatch(t, used, ec2test.Actions(), "the test server serves every call the client makes")

	for _, key := range []string{"aws:RequestTag/", "ec2:ResourceTag/"} {
		assert.True(t, conditionKeys[key+ec2client.OwnerTagKey], "a condition on %s%s", key, ec2client.OwnerTagKey)
	}
}
