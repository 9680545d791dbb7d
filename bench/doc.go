// Package bench measures nanofs against the way images are turned into
// unikernels today (pull everything, flatten, copy the program's closure,
// write the disk), side by side in one run, over a shaped network path.
//
// The macro benchmark is TestMacroBench (run by `make bench`, skipped unless
// NANOFS_BENCH=1): it builds the workloads, serves them from Debian's
// docker-registry inside a network namespace reached through a veth pair
// rate-limited with tc tbf and a delay proxy, runs every contender cold and
// warm as a subprocess (so that its peak RSS and CPU time are its own), and
// writes RESULTS.md, results.json and results.png. The pieces it is made of
// live here: the shaped link (Link), the delay proxy (DelayProxy), the
// registry inside the namespace (StartRegistry), the ballast layers
// (WriteBallastTar, EncodeLayer), and the report (Report).
package bench
