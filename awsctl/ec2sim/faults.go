package ec2sim

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
)

// Throttled returns the error EC2 gives when the request rate is too high
// (code RequestLimitExceeded, kind awsctl.ErrThrottled), for fault injection.
func Throttled(op string) error {
	return &awsctl.APIError{Op: op, Code: "RequestLimitExceeded", Message: "Request limit exceeded.", Kind: awsctl.ErrThrottled}
}

// ServerError returns a transient server-side failure (code InternalError,
// kind awsctl.ErrUnavailable), for fault injection.
func ServerError(op string) error {
	return &awsctl.APIError{Op: op, Code: "InternalError", Message: "An internal error has occurred.", Kind: awsctl.ErrUnavailable}
}

// InsufficientCapacity returns the error of an offering EC2 has no capacity
// for (code InsufficientInstanceCapacity, kind
// awsctl.ErrInsufficientCapacity), for fault injection. Launch itself
// reports capacity shortfalls per offering, wrapped in *awsctl.LaunchError.
func InsufficientCapacity(op string) error {
	return &awsctl.APIError{Op: op, Code: "InsufficientInstanceCapacity",
		Message: "There is not enough capacity to fulfill the request.", Kind: awsctl.ErrInsufficientCapacity}
}

func invalidParameter(op, msg string) error {
	return &awsctl.APIError{Op: op, Code: "InvalidParameterValue", Message: msg, Kind: awsctl.ErrInvalidRequest}
}

func missingParameter(op, msg string) error {
	return &awsctl.APIError{Op: op, Code: "MissingParameter", Message: msg, Kind: awsctl.ErrInvalidRequest}
}

func instancesNotFound(op string, ids []string) error {
	return &awsctl.APIError{Op: op, Code: "InvalidInstanceID.NotFound", Kind: awsctl.ErrNotFound,
		Message: fmt.Sprintf("The instance IDs '%s' do not exist", strings.Join(ids, ", "))}
}

// opFaults holds the faults injected into one operation.
type opFaults struct {
	queue []queuedFault
	rate  float64
	err   error
}

type queuedFault struct {
	err         error
	afterEffect bool
}

// SetErrorRate makes each call of op fail with err with probability rate,
// without effect; rate 0 turns it off. The draws come from the sim's seeded
// random source, so the same calls fail on every run. A nil err means
// ServerError(op). Rates outside [0, 1] are clamped; an op that is not one
// of the Op constants is logged and ignored.
func (s *Sim) SetErrorRate(op string, rate float64, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.opFaults(op)
	if f == nil {
		return
	}
	if math.IsNaN(rate) {
		rate = 0
	}
	f.rate = min(max(rate, 0), 1)
	f.err = orServerError(err, op)
}

// FailNext makes the next call of op fail with err, without effect. Faults
// queue up: two FailNext calls fail the next two calls. Queued faults come
// before SetErrorRate draws. A nil err means ServerError(op).
func (s *Sim) FailNext(op string, err error) {
	s.queueFault(op, queuedFault{err: orServerError(err, op)})
}

// FailNextAfterEffect makes the next call of op take effect and then return
// err with an empty result, like a request that succeeded but whose response
// was lost to a timeout. It queues with FailNext. A nil err means
// ServerError(op).
func (s *Sim) FailNextAfterEffect(op string, err error) {
	s.queueFault(op, queuedFault{err: orServerError(err, op), afterEffect: true})
}

func (s *Sim) queueFault(op string, q queuedFault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f := s.opFaults(op); f != nil {
		f.queue = append(f.queue, q)
	}
}

func orServerError(err error, op string) error {
	if err == nil {
		return ServerError(op)
	}
	return err
}

// opFaults returns op's fault settings, or nil (after logging) for an
// unknown op. The caller holds s.mu.
func (s *Sim) opFaults(op string) *opFaults {
	if !slices.Contains(ops[:], op) && !slices.Contains(optionalOps[:], op) {
		s.log.Warn("ec2sim: fault injection for unknown operation ignored", "op", op)
		return nil
	}
	f := s.faults[op]
	if f == nil {
		f = &opFaults{}
		s.faults[op] = f
	}
	return f
}

// fault decides whether this call of op fails: it returns a fault with a
// nil err when it does not. The caller holds s.mu.
func (s *Sim) fault(op string) queuedFault {
	f := s.faults[op]
	if f == nil {
		return queuedFault{}
	}
	if len(f.queue) > 0 {
		q := f.queue[0]
		f.queue = f.queue[1:]
		return q
	}
	if f.rate > 0 && s.faultRand.Float64() < f.rate {
		return queuedFault{err: f.err}
	}
	return queuedFault{}
}
