// Package ec2sim is a simulated EC2 region that implements
// [awsctl.CloudClient], for tests, examples and simulations of the scaler,
// with no AWS account and no network.
//
// Start with [New] and a [Config]; the zero Config is a us-east-1 with three
// zones whose instances boot in 40 s and shut down in 20 s:
//
//	sim, err := ec2sim.New(ec2sim.Config{Seed: 1})
//	insts, err := sim.Launch(ctx, req)
//	err = sim.Advance(time.Minute)
//	bill := sim.Bill()
//
// # Time
//
// Nothing happens in the background. Each instance's state follows from
// times fixed when it is launched or terminated (a boot delay, a shutdown
// delay, a list delay, each sampled from a [Delay]), so the sim only needs a
// clock.
//
// An instance boots in two phases, as on EC2: pending (Config.BootDelay),
// which is not billed, then running while its operating system boots and it
// starts up (Config.ReadyDelay, per type with Config.TypeDelays), which is
// billed although the instance cannot work yet. [Sim.ReadyAt] tells when it
// is ready, for a simulated role's Provision hook to wait for. By default that is a manual clock moved by [Sim.Advance]. With
// Config.Clock set to time.Now inside a testing/synctest bubble, the sim
// follows the bubble's fake time instead, which suits code that sleeps and
// uses timers itself.
//
// # What it models
//
//   - Launch walks the offerings in order, honours weights, capacity limits
//     per offering ([Sim.SetCapacity]) and an account instance limit, and
//     reports shortfalls per offering as *awsctl.LaunchError alongside
//     what it did launch. Client tokens make launches idempotent.
//   - Terminate accepts ids again once they are shutting down, and reports
//     unknown ids while still terminating the known ones of the call.
//   - Tag and Untag are all or nothing and enforce EC2's tag limits.
//   - ListInstances is eventually consistent (Config.ListDelay), hides
//     terminated instances unless asked, and forgets them after
//     Config.TerminatedVisibleFor. Its cost follows the instances it
//     returns: instances are indexed by tag.
//   - Errors are *awsctl.APIError values with EC2's error codes, of the
//     awsctl kinds (awsctl.ErrInvalidRequest, awsctl.ErrNotFound, ...).
//
// # Inspection and faults
//
// [Sim.Instance] and [Sim.Instances] show the true state, ignoring the list
// delay. [Sim.Calls] counts calls per operation (listings per page of
// [ListPageSize]), and [Sim.Bill] prices every instance per second with a
// one-minute minimum, at on-demand list prices or at spot prices (see
// below). [Sim.SetErrorRate],
// [Sim.FailNext] and [Sim.FailNextAfterEffect] inject faults such as
// [Throttled] and [ServerError]; with the same [Config.Seed] and the same
// calls, every run is identical.
//
// # Spot market
//
// Config.SpotPrices replays a spot price history, such as a
// DescribeSpotPriceHistory export read with [ReadSpotCSV], on the sim's
// clock: the price of an (instance type, zone) is that of its latest record
// so far. [Sim.SpotPrices] reports it (awsctl.SpotPriceSource). A spot
// launch needs a known price, and one at or below its MaxPrice (the
// on-demand price when zero); else that offering fails with
// InsufficientInstanceCapacity or SpotMaxPriceTooLow and the launch moves
// on to the next. Spot instances are billed at the price in effect as it
// changes. Without SpotPrices, spot launches succeed like on-demand ones
// and are billed at the on-demand price.
//
// Config.InterruptionRates gives instance types a monthly interruption
// probability (the Spot Instance Advisor's buckets). Each spot instance of
// such a type draws its interruption time at launch; when it comes, EC2
// issues an interruption notice, sometimes preceded 5 to 30 minutes
// earlier by a rebalance recommendation (Config.RebalanceShare), and
// terminates the instance InterruptionNoticeLead (two minutes) after the
// notice. [Sim.Interrupt] forces a notice. [Sim.SpotNotices] delivers the
// notices once each (awsctl.SpotNoticeSource) and [Sim.Interruptions]
// counts them. As on EC2, a spot instance that EC2 interrupts within its
// first hour of running costs nothing.
//
// Config.InterruptionShare correlates interruptions within a pool (an
// instance type in a zone): the pool has interruption events, each taking
// about that share of its running spot instances at once, at a rate that
// keeps each instance's monthly probability. [Sim.AddCapacityOutage] makes
// an offering of a market unavailable for a window of time, as EC2's
// shortages of a pool are, and [Sim.ScheduleReclaim] takes a share of a
// pool's running spot instances (with the two-minute notice) at a given
// time, such as the start of an outage.
//
// [Sim.Stop] stops an on-demand instance as a person could from the console:
// it stays listed, tagged and in its zone, in state stopping then stopped,
// but it does no work, holds no capacity and is no longer billed.
//
// Config.Reservations are reserved instances: [Sim.Reservations] lists the
// active ones (awsctl.ReservationSource), and [Sim.Bill] applies them to
// running on-demand instances (zonal ones first, then regional ones), which
// then cost nothing, and charges their fees (Config.ReservedPriceRatio of
// on-demand) whether used or not.
//
// # Health
//
// [Sim.InstanceHealth] (awsctl.HealthReader) reports status checks and
// scheduled events as DescribeInstanceStatus does. A running instance's
// checks are initializing for Config.StatusInitDelay (two minutes), then
// ok; [Sim.Impair] makes the system or the instance check fail until
// [Sim.Repair]. [Sim.ScheduleEvent] plays AWS scheduling maintenance, and
// at the event's NotBefore EC2 carries it out on the sim's clock:
// instance-stop and instance-retirement stop the instance (terminate a
// spot one), reboots and system maintenance leave it running.
//
// To check another CloudClient against the behaviour the scaler relies on,
// see package cloudtest.
package ec2sim
