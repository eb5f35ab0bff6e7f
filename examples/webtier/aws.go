package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/pool"
)

// awsConfig is what a run against real AWS needs.
type awsConfig struct {
	enabled        bool
	confirm        bool
	targetGroup    string
	port           int
	region         string
	image          string
	instanceType   string
	subnets        string // subnet-id:zone,...
	securityGroups string
	profile        string
}

func (c *awsConfig) register(fs *flag.FlagSet) {
	fs.BoolVar(&c.enabled, "aws", false, "run against real AWS (EC2 and a target group) instead of the simulation")
	fs.BoolVar(&c.confirm, "confirm", false, "with -aws: really launch instances (they cost money)")
	fs.StringVar(&c.targetGroup, "target-group", "", "with -aws: ARN of the target group (target type instance) to register the servers in")
	fs.IntVar(&c.port, "port", 0, "with -aws: port the servers serve the target group on (0: the target group's)")
	fs.StringVar(&c.region, "region", "", "with -aws: AWS region")
	fs.StringVar(&c.image, "image", "", "with -aws: AMI whose user data starts the web server at boot")
	fs.StringVar(&c.instanceType, "instance-type", "t3.micro", "with -aws: instance type")
	fs.StringVar(&c.subnets, "subnets", "", "with -aws: subnets as id:zone pairs, comma-separated (subnet-0a1:us-east-1a,...)")
	fs.StringVar(&c.securityGroups, "security-groups", "", "with -aws: security group ids, comma-separated")
	fs.StringVar(&c.profile, "instance-profile", "", "with -aws: IAM instance profile of the servers (optional)")
}

// spec checks the flags and returns the servers' launch spec.
func (c awsConfig) spec() (awsctl.LaunchSpec, error) {
	var missing []string
	for _, f := range []struct{ name, value string }{
		{"-target-group", c.targetGroup}, {"-region", c.region}, {"-image", c.image}, {"-subnets", c.subnets},
	} {
		if f.value == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return awsctl.LaunchSpec{}, fmt.Errorf("-aws needs %s", strings.Join(missing, ", "))
	}
	if !strings.Contains(c.targetGroup, ":targetgroup/") {
		return awsctl.LaunchSpec{}, fmt.Errorf("-target-group %q is not a target group ARN", c.targetGroup)
	}
	spec := awsctl.LaunchSpec{ImageID: c.image, InstanceProfile: c.profile}
	for _, pair := range strings.Split(c.subnets, ",") {
		id, zone, ok := strings.Cut(strings.TrimSpace(pair), ":")
		if !ok || id == "" || zone == "" {
			return awsctl.LaunchSpec{}, fmt.Errorf("-subnets: %q is not id:zone", pair)
		}
		spec.Subnets = append(spec.Subnets, awsctl.Subnet{ID: id, Zone: zone})
	}
	if c.securityGroups != "" {
		spec.SecurityGroupIDs = strings.Split(c.securityGroups, ",")
	}
	return spec, nil
}

// plan says what a run would launch and change.
func (c awsConfig) plan(cfg config, spec awsctl.LaunchSpec) string {
	zones := make([]string, len(spec.Subnets))
	for i, s := range spec.Subnets {
		zones[i] = s.ID + " (" + s.Zone + ")"
	}
	port := "the target group's port"
	if c.port != 0 {
		port = fmt.Sprintf("port %d", c.port)
	}
	return fmt.Sprintf(`With the default AWS credentials, in %s, this would:
  - launch between 2 and %d on-demand %s instances from %s in %s,
    tagged %s=webtier-example;
  - register each in %s on %s, and count it ready once healthy there;
  - size the fleet for %.0f requests per second per server, following the
    example's simulated day compressed into %v of wall time;
  - deregister servers, wait for their drain, and terminate them when the
    load falls, and terminate every one of them when it ends (or on Ctrl-C).
The instances cost money while they run.
`, c.region, cfg.max, c.instanceType, c.image, strings.Join(zones, ", "), pool.TagOwner,
		c.targetGroup, port, cfg.target, cfg.length)
}

// runAWS runs the web tier against real AWS until ctx ends or -length has
// passed, then winds every server down unless abort ends first; it returns
// the exit status. Without -confirm it only says what it would do.
func runAWS(ctx, abort context.Context, out io.Writer, cfg config) int {
	spec, err := cfg.aws.spec()
	if err != nil {
		fmt.Fprintln(out, "webtier:", err)
		return 2
	}
	plan := cfg.aws.plan(cfg, spec)
	if !cfg.aws.confirm {
		fmt.Fprint(out, plan)
		fmt.Fprintln(out, "Nothing was launched. Run again with -confirm to do it.")
		return 2
	}
	fmt.Fprint(out, plan)
	if err := liveRun(ctx, abort, out, cfg, spec); err != nil {
		fmt.Fprintln(out, "webtier:", err)
		return 1
	}
	return 0
}
