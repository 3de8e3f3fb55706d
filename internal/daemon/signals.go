package daemon

import (
	"context"
	"os/signal"
	"syscall"
)

// Signals applies the reference's signal semantics (spec §4.4): SIGHUP,
// SIGPIPE, SIGUSR1 and SIGUSR2 are ignored; SIGINT, SIGTERM and SIGQUIT end
// the returned context (a clean stop: the caller writes the state files).
func Signals(parent context.Context) (context.Context, context.CancelFunc) {
	signal.Ignore(syscall.SIGHUP, syscall.SIGPIPE, syscall.SIGUSR1, syscall.SIGUSR2)
	return signal.NotifyContext(parent, syscall.SIGINT, syscall.SIGTERM, syscall.SIGQUIT)
}
