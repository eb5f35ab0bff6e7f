//go:build !aws

package main

import (
	"bytes"
	"context"
	"regexp"
	"testing"
)

func TestAWSModeRefusesWithoutItsBuild(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"-aws"}, &out, nil)
	if err == nil || !regexp.MustCompile(`-tags aws`).MatchString(err.Error()) {
		t.Fatalf("want a refusal naming the aws build tag, got %v", err)
	}
	if out.Len() != 0 {
		t.Errorf("printed before refusing: %q", out.String())
	}
}
