// Package interrupt gives the examples their Ctrl-C behaviour: the first
// interrupt ends the run and starts the exit wind-down, a second one stops
// waiting for it.
package interrupt

import (
	"context"
	"os"
)

// Contexts returns run, cancelled by the first value on interrupts, and
// abort, cancelled by the second; both end with ctx. Call stop when done:
// it cancels both and ends the goroutine that watches interrupts.
func Contexts(ctx context.Context, interrupts <-chan os.Signal) (run, abort context.Context, stop func()) {
	run, stopRun := context.WithCancel(ctx)
	abort, stopAbort := context.WithCancel(ctx)
	go func() {
		for _, cancel := range []context.CancelFunc{stopRun, stopAbort} {
			select {
			case <-interrupts:
				cancel()
			case <-abort.Done():
				return
			}
		}
	}()
	return run, abort, func() { stopRun(); stopAbort() }
}
