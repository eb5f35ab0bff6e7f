package role

import (
	"fmt"
	"regexp"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
)

// zonePattern matches an availability zone name: a region ("us-east-1")
// followed by a letter, or by a Local Zone suffix and a letter
// ("us-east-1-bos-1a"). The first group is the region. ec2sim accepts the
// same names.
var zonePattern = regexp.MustCompile(`^([a-z]{2}(?:-[a-z]+)+-[0-9]+)(?:-[a-z]+-[0-9]+)?[a-z]$`)

// validateSpec rejects a launch spec every launch would fail with, so the
// mistake is reported by New rather than by the pool at every pass.
// Whether the zones belong to the cloud's region only the cloud knows.
func validateSpec(name string, spec awsctl.LaunchSpec) error {
	bad := func(field, format string, args ...any) error {
		return &ConfigError{Role: name, Field: "LaunchSpec." + field, Problem: fmt.Sprintf(format, args...)}
	}
	switch lt := spec.LaunchTemplate; {
	case spec.ImageID == "" && lt == nil:
		return bad("ImageID", "must be set when LaunchTemplate is nil: instances need an image or a launch template")
	case lt != nil && lt.ID == "" && lt.Name == "":
		return bad("LaunchTemplate", "needs an ID or a Name")
	case lt != nil && lt.ID != "" && lt.Name != "":
		// EC2 takes a template by id or by name, never both.
		return bad("LaunchTemplate", "has both an ID (%q) and a Name (%q): give one", lt.ID, lt.Name)
	}
	region := ""
	for i, sn := range spec.Subnets {
		field := fmt.Sprintf("Subnets[%d]", i)
		if sn.ID == "" {
			return bad(field+".ID", "must not be empty")
		}
		m := zonePattern.FindStringSubmatch(sn.Zone)
		switch {
		case sn.Zone == "":
			return bad(field+".Zone", "must not be empty: the pool places instances by the zones of the subnets")
		case m == nil:
			return bad(field+".Zone", "%q is not an availability zone name like %q", sn.Zone, "us-east-1a")
		case region != "" && m[1] != region:
			// Subnets of one launch live in one region.
			return bad(field+".Zone", "%q is in region %s, the subnets before it in %s", sn.Zone, m[1], region)
		}
		region = m[1]
	}
	return nil
}
