package main

import (
	"os"
	"runtime"
)

// baseProcs is the number of Ps the Go runtime chose at start (the CPUs
// the process may use, cgroup limits included), before sizeProcs adds the
// waiters' own.
var baseProcs = runtime.GOMAXPROCS(0)

// sizeProcs sets GOMAXPROCS to baseProcs plus waiters, the goroutines that
// wait in blocking system calls holding a P (server.Waiters: the UDP
// readers and the stream event loops), so that the rest of the daemon —
// accept loops, timers, the relay — keeps baseProcs Ps however many of
// them wait. Without it (2 CPUs, 2 UDP readers and a stream loop in their
// waits), a new connection's accept waited for sysmon to retake a P: the
// p99 of a connection per call went from 3 to 12-16 ms. The extra Ps cost
// nothing while their goroutines wait (a waiting thread uses no CPU). The
// GOMAXPROCS environment variable, when set, is left as the operator set
// it. Setting GOMAXPROCS also ends the runtime's own updates when the
// process's CPU limit (cgroup) changes: the daemon keeps the CPUs of its
// start, as its reader and loop counts do. It returns the GOMAXPROCS in
// force.
func sizeProcs(waiters int) int {
	if _, set := os.LookupEnv("GOMAXPROCS"); set || waiters <= 0 {
		return runtime.GOMAXPROCS(0)
	}
	runtime.GOMAXPROCS(baseProcs + waiters)
	return baseProcs + waiters
}
