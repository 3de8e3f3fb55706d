//go:build !linux

package main

import "time"

// dropExecPages is Linux-only (madvise on the executable's mappings).
func dropExecPages() {}

// processCPU is not read outside Linux: every period counts as quiet.
func processCPU() time.Duration { return 0 }
