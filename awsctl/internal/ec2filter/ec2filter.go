package ec2filter

import (
	"strings"
	"unicode/utf8"
)

// The EC2 API reference (the Filter data type, and the Filter.N parameter of
// DescribeInstances and the other describes) gives filter values two
// wildcards, "*" for any run of characters, the empty run included, and
// "?" for exactly one character, with a backslash making the character
// after it literal. A value meant literally must therefore be escaped, or a
// value such as "team-*" selects every team's resources.

// Escape returns the filter value that matches v and nothing else: v with
// a backslash before every "*", "?" and "\".
func Escape(v string) string {
	if !strings.ContainsAny(v, `*?\`) {
		return v
	}
	var b strings.Builder
	b.Grow(len(v) + 4)
	for _, r := range v {
		if r == '*' || r == '?' || r == '\\' {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// token is one element of a pattern: a literal character or a wildcard.
type token struct {
	r        rune
	wildcard bool // r is '*' or '?' used as a wildcard
}

// parse splits pattern into tokens. A backslash at the very end has
// nothing to escape and stands for itself.
func parse(pattern string) []token {
	toks := make([]token, 0, len(pattern))
	escaped := false
	for _, r := range pattern {
		switch {
		case escaped:
			toks = append(toks, token{r: r})
			escaped = false
		case r == '\\':
			escaped = true
		case r == '*' || r == '?':
			toks = append(toks, token{r: r, wildcard: true})
		default:
			toks = append(toks, token{r: r})
		}
	}
	if escaped {
		toks = append(toks, token{r: '\\'})
	}
	return toks
}

// Literal reports whether pattern has no wildcard and, if so, returns the
// one value it matches (pattern with its escapes removed).
func Literal(pattern string) (string, bool) {
	if !strings.ContainsAny(pattern, `*?\`) {
		return pattern, true
	}
	var b strings.Builder
	for _, t := range parse(pattern) {
		if t.wildcard {
			return "", false
		}
		b.WriteRune(t.r)
	}
	return b.String(), true
}

// Match reports whether value matches the filter value pattern, by EC2's
// rules: "*" matches any run of characters, "?" exactly one, "\" makes the
// next character literal, and everything else (case included) must be
// equal.
func Match(pattern, value string) bool {
	if !strings.ContainsAny(pattern, `*?\`) {
		return pattern == value
	}
	toks := parse(pattern)
	runes := make([]rune, 0, utf8.RuneCountInString(value))
	for _, r := range value {
		runes = append(runes, r)
	}
	// Greedy matching with one backtrack point, the last "*": linear in
	// practice, quadratic at worst.
	ti, vi := 0, 0
	star, starV := -1, 0
	for vi < len(runes) {
		switch {
		case ti < len(toks) && toks[ti].wildcard && toks[ti].r == '*':
			star, starV = ti, vi
			ti++
		case ti < len(toks) && (toks[ti].wildcard || toks[ti].r == runes[vi]):
			ti++
			vi++
		case star >= 0:
			starV++
			ti, vi = star+1, starV
		default:
			return false
		}
	}
	for ti < len(toks) && toks[ti].wildcard && toks[ti].r == '*' {
		ti++
	}
	return ti == len(toks)
}

// MatchAny reports whether value matches one of patterns: the values of one
// filter are joined with OR.
func MatchAny(patterns []string, value string) bool {
	for _, p := range patterns {
		if Match(p, value) {
			return true
		}
	}
	return false
}
