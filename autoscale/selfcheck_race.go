//go:build race

package autoscale

// selfCheck: under the race detector (the tests' slowest and most thorough
// runs), every pass checks what it kept from earlier passes against a
// reading afresh (see groupByPool).
const selfCheck = true
