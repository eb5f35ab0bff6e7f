package manager_test

import (
	"context"
	"fmt"
	"time"

	"github.com/ec2autoscale/ec2autoscale/manager"
)

// A forecasting manager for a queue whose jobs should wait under two
// minutes for a server, 95 times in 100, on servers that take five minutes
// to boot: no reactive policy can meet that, so it keeps a buffer of idle
// capacity sized by what it learns of the demand's rises: how large they
// are and at what hours they come. After a few days of a morning ramp it
// holds the ramp's rise before the ramp starts.
func ExampleForecast() {
	f, err := manager.NewForecast("batch", manager.ForecastConfig{
		Goal:  manager.WaitGoal{Quantile: 0.95, Wait: 2 * time.Minute},
		Queue: manager.QueueConfig{ScaleDownDelay: time.Minute},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	// Four days of 10 jobs at night and a ramp of 2 jobs a minute from
	// 08:00 to 10:00, observed every 30 seconds; the pool says its servers
	// take five minutes to boot, and the capacity asked for arrives then.
	demand := func(t time.Time) int {
		if m := t.Hour()*60 + t.Minute() - 8*60; m >= 0 && m < 120 {
			return 10 + 2*m
		} else if m >= 120 && m < 600 {
			return 250
		}
		return 10
	}
	day := time.Date(2025, 3, 3, 0, 0, 0, 0, time.UTC)
	var asked []int
	for now := day; now.Before(day.Add(4*24*time.Hour + 7*time.Hour + 58*time.Minute)); now = now.Add(30 * time.Second) {
		f.Observe(now, demand(now), 0)
		ready := 0
		if len(asked) >= 10 {
			ready = asked[len(asked)-10]
		}
		req, _ := f.Demand(context.Background(), manager.State{Now: now, BootTime: 5 * time.Minute,
			Servers: []manager.Server{{ID: "all", Weight: ready}}})
		asked = append(asked, req.Target)
	}
	st := f.Status()
	fmt.Printf("07:57: demand %d, target %d (a buffer of %d ahead of the ramp)\n", demand(day.Add(7*time.Hour+57*time.Minute)),
		f.Target(), st.Buffer)
	fmt.Printf("lead %v; goal met for %.0f%% of %d rises\n", st.Lead, 100*st.Attainment, st.Rises)
	// Output:
	// 07:57: demand 10, target 18 (a buffer of 8 ahead of the ramp)
	// lead 3m30s; goal met for 98% of 481 rises
}
