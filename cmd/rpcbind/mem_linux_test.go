package main

import (
	"testing"
	"time"
)

// processCPU counts this process's CPU time: it grows while the test spins.
func TestProcessCPU(t *testing.T) {
	a := processCPU()
	for x, i := 0, 0; processCPU() < a+20*time.Millisecond; i++ {
		x += i
		if i > 1e10 {
			t.Fatalf("processCPU stuck at %v", a)
		}
	}
}
