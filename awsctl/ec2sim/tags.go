package ec2sim

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
)

// EC2's tag limits, enforced by Launch and Tag.
const (
	MaxTags        = 50  // tags per instance
	MaxTagKeyLen   = 128 // characters
	MaxTagValueLen = 256 // characters
)

// reservedTagPrefix starts the keys AWS keeps for itself.
const reservedTagPrefix = "aws:"

func validateTagKey(op, key string) error {
	switch {
	case key == "":
		return invalidParameter(op, "tag key must not be empty")
	case utf8.RuneCountInString(key) > MaxTagKeyLen:
		return invalidParameter(op, fmt.Sprintf("tag key %.20q... is longer than %d characters", key, MaxTagKeyLen))
	case strings.HasPrefix(strings.ToLower(key), reservedTagPrefix):
		return invalidParameter(op, fmt.Sprintf("tag key %q: keys starting with %q are reserved for AWS", key, reservedTagPrefix))
	}
	return nil
}

func validateTags(op string, tags map[string]string) error {
	for k, v := range tags {
		if err := validateTagKey(op, k); err != nil {
			return err
		}
		if utf8.RuneCountInString(v) > MaxTagValueLen {
			return invalidParameter(op, fmt.Sprintf("value of tag %q is longer than %d characters", k, MaxTagValueLen))
		}
	}
	return nil
}

func tagLimitExceeded(op, id string, n int) error {
	return &awsctl.APIError{Op: op, Code: "TagLimitExceeded", Kind: awsctl.ErrInvalidRequest,
		Message: fmt.Sprintf("instance %s would have %d tags; the limit is %d", id, n, MaxTags)}
}

// mergedTags returns a new map with the tags of base and over, over
// winning. The sim owns the result; the caller's maps are never kept.
func mergedTags(base, over map[string]string) map[string]string {
	out := make(map[string]string, len(base)+len(over))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		out[k] = v
	}
	return out
}
