//go:build race

package autoscale_test

// mcDefaultSeeds is fewer under the race detector, which slows the model
// check about threefold.
const mcDefaultSeeds = 100
