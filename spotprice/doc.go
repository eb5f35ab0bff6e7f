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
package spotprice
