package ec2filter

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestMatch(t *testing.T) {
	for _, c := range []struct {
		pattern, value string
		want           bool
	}{
		{"team-blue", "team-blue", true},
		{"team-blue", "Team-blue", false},
		{"team-*", "team-blue", true},
		{"team-*", "team-", true},
		{"team-*", "team", false},
		{"*", "", true},
		{"*-blue", "team-blue", true},
		{"t*m-*e", "team-blue", true},
		{"t*m-*x", "team-blue", false},
		{"team-?", "team-b", true},
		{"team-?", "team-", false},
		{"team-?", "team-bl", false},
		{"?", "é", true},
		{`team-\*`, "team-*", true},
		{`team-\*`, "team-blue", false},
		{`team-\?`, "team-?", true},
		{`team-\?`, "team-b", false},
		{`a\\b`, `a\b`, true},
		{`a\\*`, `a\bcd`, true},
		{`a\`, `a\`, true},
		{`a\b`, `ab`, true},
		{"**a", "xxa", true},
		{"a*a*a", "aaxa", true},
		{"a*a*a", "aax", false},
	} {
		assert.Equal(t, c.want, Match(c.pattern, c.value), "%q ~ %q", c.pattern, c.value)
	}
}

func TestEscapeMatchesOnlyItself(t *testing.T) {
	for _, v := range []string{"team-blue", "team-*", "team-?", `a\b`, `*\?`, "", "é*"} {
		e := Escape(v)
		assert.True(t, Match(e, v), "%q escaped to %q", v, e)
		lit, ok := Literal(e)
		assert.True(t, ok)
		assert.Equal(t, v, lit)
	}
	assert.False(t, Match(Escape("team-*"), "team-blue"))
	assert.Equal(t, "team-blue", Escape("team-blue"))
}

func TestLiteral(t *testing.T) {
	_, ok := Literal("team-*")
	assert.False(t, ok)
	_, ok = Literal("a?")
	assert.False(t, ok)
	v, ok := Literal(`team-\*`)
	assert.True(t, ok)
	assert.Equal(t, "team-*", v)
	assert.True(t, MatchAny([]string{"x", "team-*"}, "team-blue"))
	assert.False(t, MatchAny(nil, "team-blue"))
}
