//go:build !linux

package main

import (
	"context"
	"os"
	"time"
)

type workerResult struct {
	done, timeouts, errs int64
	samples              []time.Duration
}

// runEngine: the multiplexing engines are Linux-only; elsewhere every
// transport uses a goroutine per client.
func runEngine(ctx context.Context, c config, tmpl []byte) (workerResult, time.Duration, bool, error) {
	return workerResult{}, 0, false, nil
}

func dialRawUDP(c config) (conn, error) { return dial(c) }

// subcommands: the attack bench needs Linux namespaces; only its report
// runs elsewhere.
var subcommands = map[string]func([]string) error{
	"attack-report": func([]string) error { return attackReport(os.Stdin, os.Stdout) },
	"instr-client":  instrClientMain,
	"instr-report":  func([]string) error { return instrReport(os.Stdin, os.Stdout) },
}
