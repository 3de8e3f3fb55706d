package main

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/openrpcbind/rpcbind/internal/access"
	"github.com/openrpcbind/rpcbind/internal/daemon"
	"github.com/openrpcbind/rpcbind/internal/guard"
	"github.com/openrpcbind/rpcbind/internal/registry"
	"github.com/openrpcbind/rpcbind/internal/server"
	"github.com/openrpcbind/rpcbind/internal/warmstart"
)

// TestPruneBeforeFinalSave (issue 11 item 8a): a stop that lands while a
// --prune sweep is removing an entry must not write the entry back. The
// sweep is held inside its port scan when the stop comes; the final save
// must wait for it, so that the UNSET reaches the table before the
// compaction reads it. On fee1c75 the compaction read the table first, the
// store was closed, the UNSET came too late, and the next -w brought the
// pruned entry back.
func TestPruneBeforeFinalSave(t *testing.T) {
	dir := t.TempDir()
	store, err := warmstart.Open(dir, warmstart.Options{})
	if err != nil {
		t.Fatal(err)
	}
	table := registry.New(nil)
	if err := store.Compact(table.Entries()); err != nil {
		t.Fatal(err)
	}
	sweeping := make(chan struct{}, 8) // a sweep has entered its port scan
	release := make(chan struct{})
	d := &rpcbindDaemon{
		f:   &daemon.Flags{Prune: true, PruneInterval: 1},
		log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		pruneTest: func(c *guard.PruneConfig) {
			c.Interval = 5 * time.Millisecond
			c.Local = func(netip.Addr) bool { return true }
			c.Ports = func() (map[uint16]bool, map[uint16]bool, error) {
				sweeping <- struct{}{}
				<-release // nothing listens: the entry goes after PruneMisses sweeps
				return map[uint16]bool{}, map[uint16]bool{}, nil
			}
		},
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	none := server.HandlerFunc(func(out, _ []byte, _ *access.Caller) ([]byte, bool) { return out, false })
	d.harden(ctx, none, table, store, nil)
	dead := registry.Entry{Prog: 300100, Vers: 1, Netid: "tcp", Addr: "192.0.2.1.39.16", Owner: "superuser"}
	if !table.Set(dead) {
		t.Fatal("SET refused")
	}
	// Let PruneMisses-1 sweeps count their miss; hold the one that removes.
	for i := 0; i < guard.PruneMisses-1; i++ {
		<-sweeping
		release <- struct{}{}
	}
	<-sweeping

	stop() // SIGTERM
	saved := make(chan struct{})
	go func() {
		d.save(table, store) // the end of rpcbindDaemon.run
		store.Close()        // its deferred Close
		close(saved)
	}()
	select {
	case <-saved:
		t.Error("the final save did not wait for the sweep in progress")
	case <-time.After(300 * time.Millisecond):
	}
	close(release)
	<-saved
	if _, ok := table.Find(dead.Prog, dead.Vers, dead.Netid); ok {
		t.Fatal("the sweep did not remove the entry")
	}

	// The next -w.
	s2, _ := warmstart.Open(dir, warmstart.Options{})
	es, err := s2.Recover()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if e.Prog == dead.Prog {
			t.Errorf("the pruned entry came back at the next -w: %+v", e)
		}
	}
}
