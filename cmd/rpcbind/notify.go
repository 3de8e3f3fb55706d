package main

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/openrpcbind/rpcbind/internal/registry"
	"github.com/openrpcbind/rpcbind/internal/warmstart"
	"github.com/openrpcbind/rpcbind/systemd"
)

// statusEvery is how often STATUS= is refreshed (only sent when it
// changed) and, while persistence is failing, how often the state files
// are rewritten (DECISIONS: "keep retrying").
const statusEvery = 5 * time.Second

// errLogEvery rate-limits the LOG_ERR of a persistence failure (DECISIONS:
// "at most once a minute").
const errLogEvery = time.Minute

// loopListener marks the moment a server accept loop first calls Accept
// (the loop runs) and the moment it gets net.ErrClosed (the loop ends).
type loopListener struct {
	net.Listener
	once    sync.Once
	entered chan struct{}
	closed  atomic.Bool
}

func newLoopListener(l net.Listener) *loopListener {
	return &loopListener{Listener: l, entered: make(chan struct{})}
}

func (l *loopListener) Accept() (net.Conn, error) {
	l.once.Do(func() { close(l.entered) })
	c, err := l.Listener.Accept()
	if err != nil && errors.Is(err, net.ErrClosed) {
		l.closed.Store(true)
	}
	return c, err
}

// Unwrap lets the server accept from the listener below (its raw accept
// loop for TCP); that loop runs from then on, so it counts as entered.
func (l *loopListener) Unwrap() net.Listener {
	l.once.Do(func() { close(l.entered) })
	return l.Listener
}

// alive reports whether the accept loop has started and not ended.
func (l *loopListener) alive() bool {
	select {
	case <-l.entered:
		return !l.closed.Load()
	default:
		return false
	}
}

// waitLoops returns once every accept loop calls Accept, or ctx ends.
func waitLoops(ctx context.Context, loops []*loopListener) error {
	for _, l := range loops {
		select {
		case <-l.entered:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// waitRunning returns once running (server.Running) is closed, or ctx ends.
func waitRunning(ctx context.Context, running <-chan struct{}) error {
	select {
	case <-running:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// health is what systemd is told: STATUS= and the watchdog's verdict.
type health struct {
	d       *rpcbindDaemon
	n       *systemd.Notifier
	table   *registry.Table
	store   *warmstart.Store // nil without a state directory
	sockets int
	loops   []*loopListener

	lastLog atomic.Int64  // unix nanoseconds of the last persistence LOG_ERR
	kick    chan struct{} // a persistence failure: refresh STATUS= now
}

func newHealth(d *rpcbindDaemon, n *systemd.Notifier, table *registry.Table, store *warmstart.Store, sockets int) *health {
	return &health{d: d, n: n, table: table, store: store, sockets: sockets, kick: make(chan struct{}, 1)}
}

// persistErr logs a persistence failure at LOG_ERR at most once every
// errLogEvery and has STATUS= updated. It may run under the table's lock.
func (h *health) persistErr(err error) {
	now := time.Now().UnixNano()
	if last := h.lastLog.Load(); (last == 0 || now-last >= int64(errLogEvery)) && h.lastLog.CompareAndSwap(last, now) {
		h.d.log.Error("cannot save the registrations: " + err.Error())
	}
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// status is the one-line summary, e.g. "serving 6 transports, 12
// registrations", prefixed with the degraded state when the registrations
// cannot be saved.
func (h *health) status() string {
	s := "serving " + strconv.Itoa(h.sockets) + " transports, " + strconv.Itoa(h.table.Len()) + " registrations"
	if h.store != nil {
		if err := h.store.Err(); err != nil {
			s = "degraded: cannot save the registrations in " + h.d.f.StateDir + " (" + reason(err) + "), serving them from memory; " + s
		}
	}
	return s
}

// reason is the errno of a persistence failure ("no space left on
// device"), stable across retries unlike the temporary file names in err.
func reason(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	return err.Error()
}

// healthy gates the watchdog: every accept loop runs and the table answers
// (a deadlocked table blocks here, so no ping is sent).
func (h *health) healthy() bool {
	for _, l := range h.loops {
		if !l.alive() {
			return false
		}
	}
	_ = h.table.Len()
	return true
}

// run refreshes STATUS= when it changes and, while persistence fails,
// retries it every statusEvery, until ctx ends.
func (h *health) run(ctx context.Context, sent string) {
	t := time.NewTicker(statusEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if h.store != nil && h.store.Err() != nil {
				if err := h.store.Retry(); err != nil {
					h.persistErr(err)
				} else {
					h.d.log.Info("registrations saved again")
				}
			}
		case <-h.kick:
		}
		if s := h.status(); s != sent {
			if _, err := h.n.Status(s); err != nil {
				h.d.log.Warn("sd_notify: " + err.Error())
			}
			sent = s
		}
	}
}

// watchdog pings systemd while healthy when the unit sets WatchdogSec=.
func (h *health) watchdog(ctx context.Context) {
	if err := h.n.Watchdog(ctx, h.healthy); err != nil {
		h.d.log.Warn("sd_notify: " + err.Error())
	}
}
