package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// A world counts its baseline only when no goroutine but its own runs: one
// running or runnable may be on its way out.
func TestOthersRunReadsTheGoroutineStates(t *testing.T) {
	dump := func(states ...string) []byte {
		var b []byte
		for i, s := range states {
			b = append(b, "goroutine "...)
			b = append(b, byte('1'+i))
			b = append(b, " ["+s+"]:\nmain.f()\n\t/x.go:1 +0x1\n\n"...)
		}
		return b
	}
	assert.False(t, othersRun(dump("running")), "the caller itself")
	assert.False(t, othersRun(dump("running", "chan receive", "select, 2 minutes", "semacquire", "syscall", "sleep")))
	assert.True(t, othersRun(dump("running", "chan receive", "runnable")))
	assert.True(t, othersRun(dump("running", "running")))
	n, ok := stillGoroutines()
	assert.True(t, ok)
	assert.Positive(t, n)
}
