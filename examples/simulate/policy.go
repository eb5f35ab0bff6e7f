package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ec2autoscale/ec2autoscale/manager"
	"github.com/ec2autoscale/ec2autoscale/pool"
)

// policy is one way of running the same pool, compared in one run.
type policy struct {
	name  string
	about string
	// market is what the host's manager accepts.
	market manager.MarketPreference
	// configure sets the pool's market strategy on top of the common
	// configuration (types, zones, prices, Max).
	configure func(*pool.Config)
	// notices: the scaler polls the sim's spot interruption notices.
	notices bool
	// host, if set, builds the host's manager in place of a plain Queue,
	// and lists its settings (goal.go).
	host func(sc *scenario, qc manager.QueueConfig) (Queue, []string, error)
	// jobAware: the host reports its jobs by class (jobaware.go).
	jobAware bool
}

// recommendedSpotShare caps any one spot (type, zone) at a quarter of the
// pool, so a single capacity event takes at most that much at once.
const recommendedSpotShare = 0.25

var allPolicies = []policy{
	{
		name: "recommended",
		about: fmt.Sprintf("spot first, on-demand when spot is dear or out; on-demand replaced by spot when it pays; "+
			"at most %.0f%% of the pool in one spot offering; interruption notices acted on", 100*recommendedSpotShare),
		configure: func(c *pool.Config) {
			c.Market = pool.Spot
			c.MaxSpotShare = recommendedSpotShare
		},
		notices: true,
	},
	{
		name:      "on-demand",
		about:     "on-demand only, on the cheapest type per capacity unit",
		configure: func(c *pool.Config) { c.Market = pool.OnDemand },
	},
	{
		name:      "spot-only",
		about:     "spot only, never on-demand (the manager asks for spot only); interruption notices acted on",
		market:    manager.SpotOnly,
		configure: func(c *pool.Config) { c.Market = pool.Spot },
		notices:   true,
	},
	{
		// PiCloud's 2016 rules: every server starts on-demand and is
		// swapped for spot as soon as spot costs less than 0.8 of
		// on-demand, whatever the swap costs.
		name:  "2016-rules",
		about: "on-demand first, each server replaced by spot when spot < 0.8 x on-demand, swap cost ignored; interruption notices acted on",
		configure: func(c *pool.Config) {
			c.Market = pool.FastStart
			c.Policy.SpotRatio = 0.8
			c.Replace = pool.ReplaceConfig{ExpectedLife: 10 * 365 * 24 * time.Hour, Overlap: time.Second, MaxPerPass: 1 << 20}
		},
		notices: true,
	},
}

// jobAwarePolicy is the recommended policy with a host that says how long
// its jobs run (jobaware.go). It runs only when named: with demand that is
// not a job log it is the recommended policy.
var jobAwarePolicy = policy{
	name: "job-aware",
	about: fmt.Sprintf("recommended, and the host tells its Queue each job's class (estimated run time, width): "+
		"classes whose expected cost on spot, counting the work interruptions lose, is above on-demand go on-demand; "+
		"at most %.0f%% of the pool in one spot offering; interruption notices acted on", 100*recommendedSpotShare),
	configure: func(c *pool.Config) {
		c.Market = pool.Spot
		c.MaxSpotShare = recommendedSpotShare
	},
	notices:  true,
	jobAware: true,
}

// namedPolicies are the policies -policies can name besides the goal's
// (goalPolicy): those of "all", and the job-aware one.
var namedPolicies = append(allPolicies[:len(allPolicies):len(allPolicies)], jobAwarePolicy)

// choosePolicies returns the policies named in a comma-separated list, or
// every policy for "all".
func choosePolicies(list string) ([]policy, error) {
	if list == "" || list == "all" {
		return allPolicies, nil
	}
	var out []policy
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		if p, ok := goalPolicy(name); ok {
			out = append(out, p)
			continue
		}
		i := slices.IndexFunc(namedPolicies, func(p policy) bool { return p.name == name })
		if i < 0 {
			var names []string
			for _, p := range namedPolicies {
				names = append(names, p.name)
			}
			return nil, fmt.Errorf("-policies: unknown policy %q (have %s, forecast, buffer-N)", name, strings.Join(names, ", "))
		}
		out = append(out, namedPolicies[i])
	}
	return out, nil
}
