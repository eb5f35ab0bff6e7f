//go:build race

package pool

// selfCheck: under the race detector (the tests' slowest and most thorough
// runs), every pass checks what it kept from earlier passes against what a
// pass reading everything afresh would see (see checkObserved).
const selfCheck = true
