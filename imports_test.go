package ec2autoscale_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The core must build without the AWS SDK: it is slow to compile and heavy
// to link, and the core has no use for it. Only SDK-backed subpackages of
// awsctl may import it.
func TestCoreDoesNotImportAWSSDK(t *testing.T) {
	core := []string{
		"./autoscale/...", "./pool", "./manager", "./role", "./spotprice",
		"./awsctl", "./awsctl/ec2sim/...", "./awsctl/cloudtest", "./awsctl/ratelimit",
	}
	args := append([]string{"list", "-deps", "-test", "-f", "{{.ImportPath}}"}, core...)
	out, err := exec.Command("go", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "github.com/aws/") {
			t.Errorf("core packages depend on %s", dep)
		}
	}
}
