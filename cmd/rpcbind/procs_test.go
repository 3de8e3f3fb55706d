package main

import (
	"os"
	"runtime"
	"testing"
)

// TestSizeProcs: the daemon adds one P per waiter to what the runtime
// chose, and leaves a GOMAXPROCS set in the environment alone.
func TestSizeProcs(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	tests := []struct {
		name    string
		env     string // "-": unset
		waiters int
		want    int
	}{
		{"unset", "-", 3, baseProcs + 3},
		{"no waiters", "-", 0, baseProcs},
		{"set by the operator", "1", 3, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runtime.GOMAXPROCS(baseProcs)
			if tt.env != "-" {
				t.Setenv("GOMAXPROCS", tt.env)
				runtime.GOMAXPROCS(1) // as the runtime read it at start
			} else {
				t.Setenv("GOMAXPROCS", "") // restored at the end
				os.Unsetenv("GOMAXPROCS")
			}
			if got := sizeProcs(tt.waiters); got != tt.want {
				t.Errorf("sizeProcs(%d) = %d, want %d", tt.waiters, got, tt.want)
			}
			if got := runtime.GOMAXPROCS(0); got != tt.want {
				t.Errorf("GOMAXPROCS = %d, want %d", got, tt.want)
			}
		})
	}
}
