package ec2test_test

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"

	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2client/ec2test"
	"github.com/ec2autoscale/ec2autoscale/awsctl/ec2sim"
)

// The server speaks the EC2 Query API, so any EC2 client works with it;
// here, plain HTTP. Tests usually hand Server.AWSConfig to an SDK client.
func Example() {
	sim, err := ec2sim.New(ec2sim.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	srv, err := ec2test.New(sim, ec2test.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	endpoint := srv.Start()
	defer srv.Close()

	call := func(action string, params url.Values, answer any) int {
		params.Set("Action", action)
		params.Set("Version", ec2test.APIVersion)
		resp, err := http.PostForm(endpoint, params)
		if err != nil {
			fmt.Println(err)
			return 0
		}
		defer resp.Body.Close()
		if err := xml.NewDecoder(resp.Body).Decode(answer); err != nil {
			fmt.Println(err)
		}
		return resp.StatusCode
	}

	var run struct {
		Instances []struct {
			ID    string `xml:"instanceId"`
			State string `xml:"instanceState>name"`
		} `xml:"instancesSet>item"`
	}
	status := call("RunInstances", url.Values{
		"ImageId": {"ami-0123456789abcdef0"}, "InstanceType": {"m5.large"},
		"MinCount": {"1"}, "MaxCount": {"2"}, "Placement.AvailabilityZone": {"us-east-1a"},
	}, &run)
	fmt.Println(status, len(run.Instances), run.Instances[0].State)

	// Scripted failures answer as EC2 does, with EC2's status code.
	srv.FailNext("TerminateInstances", ec2test.Fault{Code: "RequestLimitExceeded", Message: "Request limit exceeded."})
	var failed struct {
		Code string `xml:"Errors>Error>Code"`
	}
	status = call("TerminateInstances", url.Values{"InstanceId.1": {run.Instances[0].ID}}, &failed)
	fmt.Println(status, failed.Code)
	// Output:
	// 200 2 pending
	// 503 RequestLimitExceeded
}
