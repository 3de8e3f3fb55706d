package main

import (
	"time"

	"golang.org/x/sys/unix"
)

// processCPU is the CPU time the process has used, user and system, all
// threads (getrusage RUSAGE_SELF); 0 when it cannot be read.
func processCPU() time.Duration {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
