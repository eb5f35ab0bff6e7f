package ec2sim

// builtinOnDemand holds hourly on-demand list prices in US dollars of common
// instance types: AWS us-east-1, Linux, shared tenancy (the same figures
// AWS publishes in its price list). They are used in every simulated
// region; set Config.OnDemandPrices for others. The table is also the list
// of instance types the sim can launch (with those of
// Config.OnDemandPrices).
var builtinOnDemand = map[string]float64{
	"m5.large":     0.096,
	"m5.xlarge":    0.192,
	"m5.2xlarge":   0.384,
	"m5a.large":    0.086,
	"m5a.xlarge":   0.172,
	"m6i.large":    0.096,
	"m6i.xlarge":   0.192,
	"m6i.2xlarge":  0.384,
	"c5.large":     0.085,
	"c5.xlarge":    0.17,
	"c5.2xlarge":   0.34,
	"c6i.large":    0.085,
	"c6i.xlarge":   0.17,
	"c6i.2xlarge":  0.34,
	"r5.large":     0.126,
	"r5.xlarge":    0.252,
	"r6i.large":    0.126,
	"r6i.xlarge":   0.252,
	"g4dn.xlarge":  0.526,
	"g4dn.2xlarge": 0.752,
	"g5.xlarge":    1.006,
	"p3.2xlarge":   3.06,
	"t3.nano":      0.0052,
	"t3.micro":     0.0104,
	"t3.small":     0.0208,
	"t3.medium":    0.0416,
	"t3.large":     0.0832,
	"t3.xlarge":    0.1664,
	"t3.2xlarge":   0.3328,
}

// BuiltinOnDemandPrice returns the built-in hourly on-demand price of
// instanceType: the AWS us-east-1 Linux list price, for 29 common types of
// the m5, m5a, m6i, c5, c6i, r5, r6i, g4dn, g5, p3 and t3 families.
func BuiltinOnDemandPrice(instanceType string) (float64, bool) {
	p, ok := builtinOnDemand[instanceType]
	return p, ok
}

// knownType reports whether instanceType exists for the sim: it is in the
// built-in table or in Config.OnDemandPrices. Launches of any other type
// fail as EC2 fails a type it does not have.
func (s *Sim) knownType(instanceType string) bool {
	if _, ok := s.cfg.OnDemandPrices[instanceType]; ok {
		return true
	}
	_, ok := builtinOnDemand[instanceType]
	return ok
}
