package imdsnotice_test

import (
	"context"
	"fmt"
	"net/http/httptest"

	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/imdsnotice"
)

// On an instance the client needs no endpoint:
//
//	client := imds.New(imds.Options{})
//
// Here a local server stands in for the instance metadata service, with an
// interruption pending.
func ExampleWatcher_Watch() {
	meta := newMetadataServer("i-0b662ef9931388ba0")
	meta.set(imdsnotice.InstanceActionPath, answer{body: `{"action":"terminate","time":"2026-11-28T12:00:00Z"}`})
	srv := httptest.NewServer(meta)
	defer srv.Close()
	client := imds.New(imds.Options{Endpoint: srv.URL})

	w, err := imdsnotice.New(client, imdsnotice.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err = w.Watch(ctx, func(n awsctl.SpotNotice) {
		// A worker would send n to the host that runs the scaler, which
		// calls scaler.HandleSpotNotice(n).
		fmt.Println(n.InstanceID, n.Kind, n.Action, "at", n.Deadline.Format("15:04:05"))
		cancel()
	})
	fmt.Println(err)
	// Output:
	// i-0b662ef9931388ba0 interruption terminate at 12:00:00
	// context canceled
}

func ExampleWatcher_Check() {
	meta := newMetadataServer("i-0b662ef9931388ba0")
	meta.set(imdsnotice.RebalancePath, answer{body: `{"noticeTime":"2026-11-28T11:40:00Z"}`})
	srv := httptest.NewServer(meta)
	defer srv.Close()

	w, err := imdsnotice.New(imds.New(imds.Options{Endpoint: srv.URL}), imdsnotice.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	notices, err := w.Check(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, n := range notices {
		fmt.Println(n.InstanceID, n.Kind, "since", n.Time.Format("15:04:05"))
	}
	// Output:
	// i-0b662ef9931388ba0 rebalance since 11:40:00
}
