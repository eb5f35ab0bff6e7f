// Package ec2filter implements the matching rules of EC2's describe
// filters, for the SDK-backed client (which must send literal values) and
// for the in-repo servers that answer it (which must match as EC2 does):
// start at [Match] and [Escape].
package ec2filter
