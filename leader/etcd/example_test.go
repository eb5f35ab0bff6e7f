package etcdleader_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/signal"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/ec2autoscale/ec2autoscale/autoscale"
	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim"
	etcdleader "github.com/ec2autoscale/ec2autoscale/leader/etcd"
	"github.com/ec2autoscale/ec2autoscale/manager"
	"github.com/ec2autoscale/ec2autoscale/pool"
	"github.com/ec2autoscale/ec2autoscale/role"
)

// One replica of a host that runs several for availability. Every replica
// runs this same code; only the one elected acts, and when it stops or
// dies another takes over. It needs an etcd cluster, so it is not run here.
func Example() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	client, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{"etcd-0.internal:2379", "etcd-1.internal:2379", "etcd-2.internal:2379"},
		DialTimeout: 5 * time.Second,
		// Notice a dead connection, so that calls fail rather than hang
		// while the network is partitioned.
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: 5 * time.Second,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	host, _ := os.Hostname()
	elector, err := etcdleader.New(client, etcdleader.Options{
		Prefix:   "/ec2autoscale/leader/jobs",
		Identity: host,
		TTL:      10 * time.Second,
	})
	if err != nil {
		log.Fatal(err)
	}

	// The real EC2 client (package awsctl/ec2client) goes here.
	cloud, _ := ec2sim.New(ec2sim.Config{})
	worker, _ := role.New("worker", awsctl.LaunchSpec{ImageID: "ami-0123456789abcdef0"}, role.Hooks{})
	jobs, _ := manager.NewFixed("jobs", 3)
	scaler, err := autoscale.New(cloud, []pool.Config{{
		Name:     "workers",
		Role:     worker,
		Managers: []manager.Manager{jobs},
		Types:    []pool.InstanceType{{Name: "c5.large"}},
		Zones:    []string{"us-east-1a", "us-east-1b"},
	}}, autoscale.Options{
		// The same identity on every replica: they are one scaler.
		Identity: "jobs",
		Leader:   elector,
	})
	if err != nil {
		log.Fatal(err)
	}

	var wg sync.WaitGroup
	wg.Go(func() {
		if err := elector.Run(ctx); err != nil {
			log.Print(err)
		}
	})
	_ = scaler.Run(ctx) // followers' passes return at once, changing nothing
	_ = scaler.Shutdown(context.Background(), autoscale.ShutdownOptions{})
	// Run revokes the lease on its way out: the next replica takes over
	// at once instead of after the TTL.
	wg.Wait()
}

func ExampleNew() {
	// Creating a client does not connect; New does not call etcd either.
	client, err := clientv3.New(clientv3.Config{Endpoints: []string{"127.0.0.1:2379"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.Close()

	_, err = etcdleader.New(client, etcdleader.Options{Prefix: "/ec2autoscale/leader/jobs"})
	fmt.Println(err)
	// Output: invalid etcd elector options: Identity: must not be empty
}
