package main

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"github.com/openrpcbind/rpcbind/internal/access"
	"github.com/openrpcbind/rpcbind/internal/daemon"
	"github.com/openrpcbind/rpcbind/internal/guard"
	"github.com/openrpcbind/rpcbind/internal/hostsaccess"
	"github.com/openrpcbind/rpcbind/internal/ratelimit"
	"github.com/openrpcbind/rpcbind/internal/registry"
	"github.com/openrpcbind/rpcbind/internal/server"
	"github.com/openrpcbind/rpcbind/internal/warmstart"
)

// hostsAllowed returns the hosts.allow/deny check for the service (on by
// default as Debian's binary; --no-hosts-access turns it off).
func (d *rpcbindDaemon) hostsAllowed() func(c *access.Caller) bool {
	if d.f.NoHostsAccess {
		return nil
	}
	hosts := hostsaccess.New(d.hostsFiles[0], d.hostsFiles[1], func(msg string) { d.log.Warn("hosts access: " + msg) })
	return func(c *access.Caller) bool { return hosts.Allowed(c.Addr.Addr()) }
}

// harden puts the guard (UDP amplification control, registration cap,
// CHECK_PORT, pruning) in front of h and makes every table change reach
// both the guard's counts and the journal.
func (d *rpcbindDaemon) harden(ctx context.Context, h server.Handler, table *registry.Table,
	store *warmstart.Store, hostAllowed func(*access.Caller) bool) *guard.Guard {
	f := d.f
	g := guard.New(h, guard.Config{
		Limiter:     d.lim,
		Table:       table,
		Insecure:    f.Insecure,
		HostAllowed: hostAllowed,
		MaxPerOwner: f.MaxRegsPerOwner,
		CheckPort:   f.CheckPort,
		Log:         func(line []byte) { daemon.LogLine(d.log.Handler(), slog.LevelWarn, false, line) },

		MaxRegBytesPerOwner: f.MaxRegBytesPerOwner,
	})
	table.SetObserver(func(op registry.Op, e registry.Entry) error {
		g.Observe(op, e)
		d.mem.changed()
		if store == nil {
			return nil
		}
		return store.Append(op, e)
	})
	if f.Prune {
		cfg := guard.PruneConfig{
			Interval: time.Duration(f.PruneInterval) * time.Second,
			Log:      func(msg string) { d.log.Info(msg) },
		}
		if d.pruneTest != nil {
			d.pruneTest(&cfg)
		}
		d.pruner = g.StartPruner(ctx, cfg)
	}
	return g
}

// save is the last step of a stop: the pruner stops first — a sweep in
// progress finishes, its UNSETs journalled and applied — and only then is
// the table compacted into the state files (written whether or not -w was
// given, as the reference, spec §4.3). In the other order the compaction
// could read the table before the last sweep's UNSET and bring the pruned
// entry back at the next -w. The server has stopped: nothing else changes
// the table.
func (d *rpcbindDaemon) save(table *registry.Table, store *warmstart.Store) {
	if d.pruner != nil {
		d.pruner.Stop()
	}
	if store == nil {
		return
	}
	if err := store.Compact(table.Entries()); err != nil {
		d.log.Error("cannot save the registrations: " + err.Error())
	}
}

// newLimiter is the UDP amplification control, on by default.
func newLimiter(f *daemon.Flags) *ratelimit.Limiter {
	return ratelimit.New(ratelimit.Config{RefuseLists: f.RefuseRemoteUDPDump, Rate: f.UDPRate, Burst: f.UDPBurst})
}

// allowRelay applies the same control to CALLIT/BCAST replies relayed by
// the forwarder (-r), which bypass the handler.
func (d *rpcbindDaemon) allowRelay(to netip.AddrPort, reqLen, replyLen int) bool {
	if replyLen <= reqLen || d.lim == nil {
		return true
	}
	return d.lim.Allow(to.Addr(), reqLen, replyLen, time.Now())
}

// limitListener applies the per-source connection cap to TCP listeners
// (the local socket is never limited).
func (d *rpcbindDaemon) limitListener(s *server.Socket) net.Listener {
	if s.Netid != "tcp" && s.Netid != "tcp6" {
		return s.Listener
	}
	return guard.LimitPerSource(s.Listener, d.f.MaxConnsPerSource)
}

// raiseNoFile raises the soft RLIMIT_NOFILE to the hard limit, so the
// connection cap, not the descriptor table, is what bounds open streams
// (the reference raises it to at least 128). It returns the new soft limit.
func raiseNoFile() (uint64, error) {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return 0, err
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
			return 0, err
		}
	}
	return rl.Cur, nil
}
