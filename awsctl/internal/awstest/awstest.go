// Package awstest builds SDK configurations that point aws-sdk-go-v2 clients
// at the in-repo test servers (ec2client/ec2test, elbrole/elbtest): static
// fake credentials, a fixed region, and optionally an HTTP client that hands
// requests straight to the server with no socket.
package awstest

import (
	"context"
	"net/http"
	"net/http/httptest"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Config returns an SDK config for region that sends calls to endpoint with
// fake credentials named after source. A nil client means the SDK's default.
func Config(region, endpoint, source string, client aws.HTTPClient) aws.Config {
	cfg := aws.Config{
		Region:       region,
		BaseEndpoint: aws.String(endpoint),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "AKIDTEST", SecretAccessKey: source + "-secret", Source: source}, nil
		}),
	}
	if client != nil {
		cfg.HTTPClient = client
	}
	return cfg
}

// InProcess is an HTTP client that serves each request with h directly.
// The SDK still encodes and decodes real HTTP requests and answers, but no
// goroutine waits on a socket, which tests inside a testing/synctest bubble
// need (a socket wait is not durably blocking and would stall the bubble's
// clock).
func InProcess(h http.Handler) aws.HTTPClient { return inProcess{h} }

type inProcess struct{ h http.Handler }

func (c inProcess) Do(r *http.Request) (*http.Response, error) {
	if err := r.Context().Err(); err != nil {
		return nil, err
	}
	rec := httptest.NewRecorder()
	c.h.ServeHTTP(rec, r)
	resp := rec.Result()
	resp.Request = r
	return resp, nil
}
