// Package spotprice knows what EC2 capacity costs and decides, for each
// launch, between unused reservations, spot and on-demand.
//
// Start with a [Book], the price book of one region: on-demand list prices
// (compiled in for common types in us-east-1 and eu-west-1, configurable,
// and refreshable from the AWS Price List API through an [OnDemandSource]),
// spot prices fetched from an [awsctl.SpotPriceSource] at most once per TTL
// or pushed with [Book.SetSpot], and reservations from an
// [awsctl.ReservationSource]. A scaler calls [Book.Refresh] itself at every
// pass, for the types of the pools the book prices, and Refresh calls out
// only when the TTLs say so: the host calls it only to use a Book outside a
// scaler. [Book.RefreshOnDemand] is the host's to call (at start, then
// daily, say), since list prices change rarely and the scaler never fetches
// them.
//
// Then [Policy.Rank] turns a list of offerings into ranked [Choice] values:
// cheapest per capacity unit first, each with the reason it was accepted or
// rejected, so that a pool can launch down the list and explain why. An
// [Unavailable] cache keeps offerings that EC2 could not fill out of the
// ranking for a few minutes.
//
// The safe default throughout is to refuse what cannot be priced: a
// missing, zero, negative or stale price is never used, an offering without
// an on-demand price is rejected in every market, and spot is never chosen
// above the on-demand price.
//
// The package is plain code over plain data and imports no AWS SDK. Every
// function that depends on time takes the current time as an argument, so
// simulations can run it on virtual time. Spot Instance Advisor
// interruption buckets ([InterruptionBucket], [Risk]) are compiled in too;
// data/README.md cites the sources and dates of the compiled-in tables.
//
// # What an interruption costs a piece of work
//
// [SpotWorkCost] prices a piece of work on spot with its interruptions:
// work of run time R that checkpoints every C (or never), running on k
// instances, each interrupted at a rate λ per hour. The assumptions:
//
//   - Interruptions are a Poisson process per instance at a constant rate,
//     taken from the Advisor bucket: [HourlyRate] reads the bucket's
//     monthly probability p as λ = -ln(1-p) / 720 h. The bucket is coarse
//     (a range, its midpoint used; ">20%" read as 25%), per type and
//     region, not per zone, and describes the trailing month, not the
//     next hour. The Advisor's figure is a share of instances interrupted
//     over a month; if the instances it counts ran for hours rather than
//     the whole month, the hourly hazard behind it is higher than λ.
//   - Instances are interrupted independently, so a piece on k instances
//     is interrupted at k λ. EC2 reclaims capacity by spot pool, many
//     instances at once: the expected number of interruptions per
//     instance is the same, but a piece spread over one pool is hit less
//     often than k λ says and several pieces are hit together, which the
//     expectation does not show.
//   - An interruption loses the segment in progress (since the last
//     checkpoint, or everything), which runs again after a wait for a
//     replacement. The two minutes' notice could save a checkpoint; the
//     model does not count on it. Checkpoints cost nothing in it.
//
// Under them the piece costs, per hour of work, the spot price times
// (e^(k λ s) - 1) / (k λ s) for segments s = min(C, R), plus the wait for
// each of its (R/s)(e^(k λ s) - 1) interruptions. At the Advisor's rates
// (λ below 0.0004 an hour even for ">20%") this adds well under 1% to a
// ten-hour job on one instance, so spot at a fraction of the on-demand
// price stays cheaper in expectation; on-demand wins only for long,
// wide, uncheckpointed work where interruptions are much more frequent
// than the buckets say (a spot pool under capacity pressure), or when the
// host prices the wait high. The model gives expectations; a host that
// cannot afford the variance (a deadline) should ask for on-demand
// outright.
package spotprice
