//go:build !race

package autoscale_test

// mcDefaultSeeds is the number of seeds TestModelCheck runs by default.
const mcDefaultSeeds = 300
