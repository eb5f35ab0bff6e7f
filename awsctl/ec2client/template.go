package ec2client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
)

// TemplateNamePrefix starts the name of every launch template the client
// creates.
const TemplateNamePrefix = "ec2autoscale-"

const codeTemplateExists = "InvalidLaunchTemplateName.AlreadyExistsException"

// isTemplateNotFound reports whether err says a launch template named in
// the call does not exist (or is not visible yet).
func isTemplateNotFound(err error) bool {
	return isCode(err, "InvalidLaunchTemplateName.NotFoundException") || isCode(err, "InvalidLaunchTemplateId.NotFound")
}

// fleetTemplate returns the launch template a CreateFleet for req uses:
// the spec's own, or one made from the spec; with recreate, that one is
// made again even if the client made it before.
func (c *Client) fleetTemplate(ctx context.Context, req awsctl.LaunchRequest, recreate bool) (*types.FleetLaunchTemplateSpecificationRequest, error) {
	if lt := req.Spec.LaunchTemplate; lt != nil {
		version := lt.Version
		if version == "" {
			version = "$Default"
		}
		return &types.FleetLaunchTemplateSpecificationRequest{
			LaunchTemplateId: optional(lt.ID), LaunchTemplateName: optional(lt.Name), Version: aws.String(version),
		}, nil
	}
	name, err := c.specTemplate(ctx, req.Spec, req.Tags[OwnerTagKey], recreate)
	if err != nil {
		return nil, err
	}
	// Version 1 is the one created from the spec: a template named after
	// the spec's digest never needs another.
	return &types.FleetLaunchTemplateSpecificationRequest{LaunchTemplateName: aws.String(name), Version: aws.String("1")}, nil
}

// templateName derives a launch template's name from everything that goes
// into it, so that the same spec always maps to the same template, across
// restarts and across clients.
func templateName(spec awsctl.LaunchSpec, owner string) string {
	h := sha256.New()
	for _, part := range []string{spec.ImageID, strings.Join(spec.SecurityGroupIDs, ","), spec.InstanceProfile, spec.KeyName, spec.UserData, owner} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return TemplateNamePrefix + hex.EncodeToString(h.Sum(nil)[:16])
}

// forgetTemplate drops the client's memory of the launch template name,
// so that the next launch creates it again.
func (c *Client) forgetTemplate(name string) {
	c.templatesMu.Lock()
	defer c.templatesMu.Unlock()
	delete(c.templates, name)
}

// specTemplate creates, once per client and spec, the launch template for
// spec, tagged with the owner tag; with recreate, again.
//
// The first creation's client token is the template's name, so that
// clients creating the same template at once make one. A creation again
// needs another token: EC2 answers a token it knows with its first answer,
// creating nothing, even if that template was deleted since.
func (c *Client) specTemplate(ctx context.Context, spec awsctl.LaunchSpec, owner string, recreate bool) (string, error) {
	name := templateName(spec, owner)
	// Held across the call: concurrent launches of a new spec wait for one
	// creation instead of racing several.
	c.templatesMu.Lock()
	defer c.templatesMu.Unlock()
	token := name
	if recreate {
		delete(c.templates, name)
		// At most 64 characters: 45 of name, 14 of suffix.
		token = name + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	} else if c.templates[name] {
		return name, nil
	}
	if err := wait(ctx, "CreateLaunchTemplate", c.limits.mutating, 1); err != nil {
		return "", err
	}
	data := &types.RequestLaunchTemplateData{
		ImageId:          aws.String(spec.ImageID),
		SecurityGroupIds: spec.SecurityGroupIDs,
		KeyName:          optional(spec.KeyName),
		UserData:         encodeUserData(spec.UserData),
	}
	if p := instanceProfile(spec.InstanceProfile); p != nil {
		data.IamInstanceProfile = &types.LaunchTemplateIamInstanceProfileSpecificationRequest{Arn: p.Arn, Name: p.Name}
	}
	var tags map[string]string
	if owner != "" {
		tags = map[string]string{OwnerTagKey: owner}
	}
	_, err := c.api.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{
		LaunchTemplateName: aws.String(name),
		ClientToken:        aws.String(token),
		LaunchTemplateData: data,
		TagSpecifications:  tagSpecs(types.ResourceTypeLaunchTemplate, tags),
	})
	err = classify("CreateLaunchTemplate", err)
	// The name is a digest of the content: a template of that name is
	// this one, created earlier by this or another client (or just now,
	// and not yet visible to the call that failed).
	if err != nil && !isCode(err, codeTemplateExists) {
		return "", err
	}
	c.log.Debug("CreateLaunchTemplate", "name", name, "existed", err != nil)
	c.templates[name] = true
	return name, nil
}
