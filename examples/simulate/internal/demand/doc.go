// Package demand builds the demand traces the simulation replays: how many
// capacity units a host wants over time, as a step function.
//
// Traces come from seeded generators ([Steady], [Diurnal], [Bursty]) or from
// CSV files ([ReadCSV]): a plain time_s,servers series, or a batch-job log
// in the submit_s,wait_s,run_s,procs form of the Parallel Workloads
// Archive. A trace built from jobs ([FromJobs]) keeps them, so a simulation
// can tell which work an interruption cuts short.
//
// [Trace.Served] and [Trace.BootLimited] integrate a trace exactly between
// its change points, so unmet demand does not depend on how often it is
// sampled.
package demand
