package main

import (
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/ec2autoscale/ec2autoscale/autoscale"
	"github.com/ec2autoscale/ec2autoscale/manager"
	"github.com/ec2autoscale/ec2autoscale/pool"
)

// settingsOf lists the settings of a policy that differ from the library's
// defaults: the pool's configuration as the library fills it in, against
// the same pool given only what the scenario needs (name, role, manager,
// types, zones, Max, prices); the scaler's options; and the Queue's
// configuration. Each line reads "Field: value (default: value)".
func settingsOf(base, cfg pool.Config, opts autoscale.Options, qc manager.QueueConfig) ([]string, error) {
	got, err := pool.New(cfg)
	if err != nil {
		return nil, err
	}
	want, err := pool.New(base)
	if err != nil {
		return nil, err
	}
	scenario := map[string]bool{"Name": true, "Role": true, "Managers": true, "Types": true, "Zones": true, "Max": true, "Prices": true}
	var out []string
	diff("pool.Config.", reflect.ValueOf(got.Config()), reflect.ValueOf(want.Config()), scenario, &out)
	plumbing := map[string]bool{"Identity": true, "Clock": true, "Wait": true, "Observer": true, "Logger": true}
	var o []string
	diff("autoscale.Options.", reflect.ValueOf(opts), reflect.ValueOf(autoscale.Options{}), plumbing, &o)
	for i, line := range o {
		if opts.SpotNotices != nil && strings.HasPrefix(line, "autoscale.Options.SpotNotices:") {
			o[i] = "autoscale.Options.SpotNotices: the simulated EC2's interruption notices and rebalance recommendations (default: none)"
		}
	}
	out = append(out, o...)
	diff("manager.QueueConfig.", reflect.ValueOf(qc), reflect.ValueOf(manager.QueueConfig{}), nil, &out)
	return out, nil
}

// diff appends a line for each exported field of a and b (structs of one
// type, walked into) that differs, except the top-level fields in skip.
func diff(prefix string, a, b reflect.Value, skip map[string]bool, out *[]string) {
	t := a.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() || skip[f.Name] {
			continue
		}
		x, y := a.Field(i), b.Field(i)
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[time.Time]() {
			diff(prefix+f.Name+".", x, y, nil, out)
			continue
		}
		if f.Type.Kind() == reflect.Func {
			if x.IsNil() != y.IsNil() {
				*out = append(*out, fmt.Sprintf("%s%s: set (default: none)", prefix, f.Name))
			}
			continue
		}
		if reflect.DeepEqual(x.Interface(), y.Interface()) {
			continue
		}
		*out = append(*out, fmt.Sprintf("%s%s: %s (default: %s)", prefix, f.Name, show(x), show(y)))
	}
}

func show(v reflect.Value) string {
	switch x := v.Interface().(type) {
	case pool.MarketStrategy:
		if name, ok := map[pool.MarketStrategy]string{pool.OnDemand: "OnDemand", pool.Spot: "Spot", pool.FastStart: "FastStart"}[x]; ok {
			return name
		}
	case manager.MarketPreference:
		if name, ok := map[manager.MarketPreference]string{manager.AnyMarket: "AnyMarket", manager.OnDemandOnly: "OnDemandOnly",
			manager.SpotOnly: "SpotOnly"}[x]; ok {
			return name
		}
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return "none"
		}
		if v.Kind() == reflect.Pointer && v.Elem().Kind() == reflect.Struct {
			return fmt.Sprintf("%+v", v.Elem().Interface())
		}
	}
	if d, ok := v.Interface().(time.Duration); ok {
		return d.String()
	}
	if s, ok := v.Interface().(fmt.Stringer); ok {
		return s.String()
	}
	return fmt.Sprintf("%v", v.Interface())
}
