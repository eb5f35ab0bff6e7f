package ec2test

import (
	"encoding/base64"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ec2autoscale/ec2autoscale/awsctl/internal/ec2filter"
)

// params reads an EC2 Query API request: flat form keys such as
// "TagSpecification.1.Tag.2.Key", where lists are numbered from 1.
type params struct {
	values url.Values
	keys   []string // sorted, to find nested prefixes
	prefix string
}

func newParams(v url.Values) params {
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return params{values: v, keys: keys}
}

// get returns the value of name below p's prefix, or "".
func (p params) get(name string) string { return p.values.Get(p.prefix + name) }

// has reports whether any key starts with name below p's prefix.
func (p params) has(name string) bool {
	full := p.prefix + name
	i, _ := slices.BinarySearch(p.keys, full)
	return i < len(p.keys) && (p.keys[i] == full || strings.HasPrefix(p.keys[i], full+"."))
}

// sub returns the structure named name below p's prefix.
func (p params) sub(name string) params {
	q := p
	q.prefix = p.prefix + name + "."
	return q
}

// list returns the members of the list name: name.1, name.2, ...
func (p params) list(name string) []params {
	var out []params
	for i := 1; p.has(name + "." + strconv.Itoa(i)); i++ {
		out = append(out, p.sub(name+"."+strconv.Itoa(i)))
	}
	return out
}

// strings returns the values of the scalar list name.
func (p params) strings(name string) []string {
	var out []string
	for i := 1; ; i++ {
		k := p.prefix + name + "." + strconv.Itoa(i)
		if !p.values.Has(k) {
			return out
		}
		out = append(out, p.values.Get(k))
	}
}

func (p params) int(name string, def int) (int, *Fault) {
	s := p.get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, invalidValue("%s %q is not an integer", p.prefix+name, s)
	}
	return n, nil
}

func (p params) float(name string, def float64) (float64, *Fault) {
	s := p.get(name)
	if s == "" {
		return def, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, invalidValue("%s %q is not a number", p.prefix+name, s)
	}
	return f, nil
}

func (p params) bool(name string) bool { return p.get(name) == "true" }

func (p params) time(name string) (time.Time, bool, *Fault) {
	s := p.get(name)
	if s == "" {
		return time.Time{}, false, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, false, invalidValue("%s %q is not a timestamp", p.prefix+name, s)
	}
	return t, true, nil
}

// tags returns the tags of a Tag list, key to value.
func (p params) tags(name string) map[string]string {
	out := map[string]string{}
	for _, t := range p.list(name) {
		out[t.get("Key")] = t.get("Value")
	}
	return out
}

// tagSpecs returns the tags a TagSpecification list gives resourceType.
func (p params) tagSpecs(resourceType string) map[string]string {
	out := map[string]string{}
	for _, spec := range p.list("TagSpecification") {
		if spec.get("ResourceType") == resourceType {
			for k, v := range spec.tags("Tag") {
				out[k] = v
			}
		}
	}
	return out
}

func (p params) userData(name string) (string, *Fault) {
	s := p.get(name)
	if s == "" {
		return "", nil
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return "", invalidValue("%s is not valid base64", p.prefix+name)
	}
	return string(b), nil
}

// filter is one Filter.N of a describe call.
type filter struct {
	name   string
	values []string
}

func (p params) filters() []filter {
	var out []filter
	for _, f := range p.list("Filter") {
		out = append(out, filter{name: f.get("Name"), values: f.strings("Value")})
	}
	return out
}

// match reports whether got matches one of the filter's values, with the
// wildcards and escapes EC2 gives filter values (see package ec2filter).
func (f filter) match(got string) bool { return ec2filter.MatchAny(f.values, got) }

// maxResults reads MaxResults within EC2's bounds for the call; 0 means
// no limit given.
func (p params) maxResults(lo, hi int) (int, *Fault) {
	n, err := p.int("MaxResults", 0)
	if err != nil {
		return 0, err
	}
	if p.get("MaxResults") != "" && (n < lo || n > hi) {
		return 0, invalidValue("MaxResults %d is outside %d..%d", n, lo, hi)
	}
	return n, nil
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}
