//go:build !race

package autoscale

// selfCheck is off outside the race detector's runs: see selfcheck_race.go.
const selfCheck = false
