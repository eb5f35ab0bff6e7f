package role_test

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/role"
)

// chatFleet is a host whose servers hold long-lived sessions (chat, game,
// WebSocket): a router places new sessions, and each server counts the
// sessions it holds and how many of them are idle.
type chatFleet struct {
	mu       sync.Mutex
	now      time.Time
	closed   map[string]bool      // the router places no new sessions there
	busy     map[string]int       // sessions exchanging messages
	idle     map[string]int       // sessions open but silent
	windDown map[string]time.Time // when each wind-down began
}

// Servers that drain in their own way: a session server cannot wait for
// its sessions to end by themselves, which may take days. Its wind-down
// closes the server to new sessions and asks the clients to reconnect
// elsewhere; Check reports it wound down once no busy session is left and
// the idle ones have had a grace period to move, closing those that did not.
func Example_customWindDown() {
	const grace = 2 * time.Minute
	f := &chatFleet{now: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC),
		closed: map[string]bool{}, busy: map[string]int{}, idle: map[string]int{}, windDown: map[string]time.Time{}}

	chat, err := role.New("chat", awsctl.LaunchSpec{ImageID: "ami-0123456789abcdef0"}, role.Hooks{
		// Deliver the request and return: the pool checks progress later.
		WindDown: func(_ context.Context, inst awsctl.Instance) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.closed[inst.ID] = true
			if _, ok := f.windDown[inst.ID]; !ok {
				f.windDown[inst.ID] = f.now // a repeated wind-down keeps its start
			}
			// Here: send every client of inst a "reconnect" message.
			return nil
		},
		Check: func(_ context.Context, inst awsctl.Instance) (role.Status, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			idle := f.busy[inst.ID] == 0
			start, winding := f.windDown[inst.ID]
			if !winding || !idle {
				return role.Status{Idle: idle}, nil
			}
			if f.idle[inst.ID] > 0 && f.now.Sub(start) < grace {
				return role.Status{Idle: true}, nil // silent clients still have time to move
			}
			f.idle[inst.ID] = 0 // close what is left
			return role.Status{Idle: true, WoundDown: true}, nil
		},
		Restore: func(_ context.Context, inst awsctl.Instance) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			delete(f.closed, inst.ID)
			delete(f.windDown, inst.ID)
			return nil
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	ctx, inst := context.Background(), awsctl.Instance{ID: "i-0c4a7"}
	f.busy[inst.ID], f.idle[inst.ID] = 35, 5
	check := func(what string) {
		st, _ := chat.Check(ctx, inst)
		fmt.Printf("%-28s %+v\n", what, st)
	}
	_ = chat.WindDown(ctx, inst)
	check("asked to wind down:")

	f.now, f.busy[inst.ID] = f.now.Add(30*time.Second), 3 // most clients moved
	check("30s later, 3 still busy:")

	f.now, f.busy[inst.ID] = f.now.Add(30*time.Second), 0
	check("1m later, 5 idle left:")

	f.now = f.now.Add(time.Minute)
	check("2m later:")
	// Output:
	// asked to wind down:          {Idle:false WoundDown:false Unhealthy:false}
	// 30s later, 3 still busy:     {Idle:false WoundDown:false Unhealthy:false}
	// 1m later, 5 idle left:       {Idle:true WoundDown:false Unhealthy:false}
	// 2m later:                    {Idle:true WoundDown:true Unhealthy:false}
}
