// Package ec2autoscale keeps pools of EC2 instances at the size a host
// application needs, as cheaply as the spot market allows.
//
// A host (a job scheduler, a web-tier controller) embeds an
// [github.com/ec2autoscale/ec2autoscale/autoscale.Scaler]. It describes its
// pools: which instance types are interchangeable, which role the instances
// play and which managers (the host's consumers) share them. Each pass, every
// manager says how much capacity it wants; the scaler launches, grants,
// winds down and terminates instances so that exactly that much exists.
//
// # Architecture
//
// The scaler is stateless: everything it must remember is written as EC2
// tags on the instances themselves (owner, pool, role, the manager a server
// is granted to, a wind-down's start and deadline). A scaler killed at any
// moment and started again adopts what exists and carries on.
//
// A pass ([github.com/ec2autoscale/ec2autoscale/autoscale.Scaler.Step]) is
// snapshot, decide, act: one listing of every owned instance, a plan per pool
// computed by plain code over plain data
// ([github.com/ec2autoscale/ec2autoscale/pool.Pool.Plan]), then the plan
// carried out in as few cloud calls as possible. Role hooks (provision, wind
// down, check, restore, teardown) run in the background, so a slow server
// never stalls the pass.
//
// Packages:
//   - autoscale: the Scaler, its options, events and shutdown. Start here.
//   - pool: one pool's configuration and decisions.
//   - manager: the Manager interface the host implements, and ready-made
//     managers (Fixed, Queue, TargetTracking).
//   - role: the Role interface (launch spec and lifecycle hooks), with
//     roles built from functions or calling HTTP endpoints on the server.
//   - spotprice: on-demand and spot prices, reservations and the choice of
//     market.
//   - awsctl: the CloudClient interface and the cloud vocabulary. Below
//     it, ec2sim is a simulated EC2 for tests and simulations, and the
//     SDK-backed packages talk to AWS: ec2client (EC2), pricing (the Price
//     List API), imdsnotice and sqsnotice (spot interruption feeds) and
//     elbrole (a role that registers servers in load balancer target
//     groups). Only the awsctl tree imports the AWS SDK, and the core never
//     builds it.
//   - autoscale also takes a Leader, so that only one of several replicas
//     of a host acts; module leader/etcd implements it on etcd.
//
// The examples directory holds runnable programs on the simulated EC2, with
// no AWS account needed: examples/jobqueue (a job queue), examples/webtier
// (web servers behind a load balancer) and examples/simulate (cost and
// capacity of several policies on real spot price history).
package ec2autoscale
