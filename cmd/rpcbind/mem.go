package main

import (
	"context"
	"os"
	"runtime/debug"
	"sync/atomic"
	"time"
)

// gcPercent is the collector's GOGC. The daemon's live heap is about 1 MB
// idle and 5 MB with 10,000 registrations; with the default of 100 the heap
// may grow to twice the live size before a collection. The request paths
// (GETPORT, GETADDR, DUMP) do not allocate, so collecting sooner costs only
// the paths that change the table. 25 keeps the resident set near what the
// table needs (measured with 10,000 registrations: 14.6 MiB resident instead
// of 23 MiB, at no cost to GETPORT; see README "Performance").
//
// A soft memory limit (debug.SetMemoryLimit) was tried and rejected: once
// the table's live heap approaches it, every small allocation starts a new
// collection and GETPORT with 10,000 registrations ran at a third of its
// speed.
const gcPercent = 25

// tuneMemory applies gcPercent unless the operator chose with GOGC.
func tuneMemory() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(gcPercent)
	}
}

// releaseQuiet is how long the table must stay unchanged before the daemon
// gives back what start-up or a burst of changes left resident: a second,
// so that a burst (a boot's worth of registrations, a pruning sweep) is
// over, and at most one release per second of changes, each costing one
// collection (about 3 ms of CPU with 10,000 registrations).
const releaseQuiet = time.Second

// memReleaser gives memory back once the daemon has settled: after
// start-up and after each burst of table changes, when the table has not
// changed for releaseQuiet. A release is a forced collection that returns
// the free heap pages to the kernel (debug.FreeOSMemory; the runtime's own
// scavenger returns them over minutes) and, on Linux, drops the mappings of
// the executable's code and read-only data (dropExecPages): start-up code,
// flag parsing and the warm start touch most of the binary, and with the
// kernel's fault-around nearly every page of it stays mapped, counted in
// the resident set. The pages stay in the page cache and come back on the
// next touch as minor faults (a few dozen for the next call), so the
// resident set then shows the code the daemon actually runs.
type memReleaser struct {
	changes  atomic.Uint64 // table changes so far
	release  func()        // nil: releaseMemory
	released uint64        // changes at the last release
	last     uint64        // changes at the previous tick
	fresh    bool          // no release yet: start-up's is due
}

func newMemReleaser() *memReleaser { return &memReleaser{fresh: true} }

// changed counts one table change (the registry's observer calls it, under
// the table's write lock: an atomic add).
func (m *memReleaser) changed() {
	if m != nil {
		m.changes.Add(1)
	}
}

// tick is called every releaseQuiet; it releases when changes have stopped
// for a whole period since the last release (or since start-up).
func (m *memReleaser) tick() bool {
	c := m.changes.Load()
	due := c == m.last && (m.fresh || c != m.released)
	m.last = c
	if !due {
		return false
	}
	m.fresh, m.released = false, c
	if m.release != nil {
		m.release()
	} else {
		releaseMemory()
	}
	return true
}

// run ticks until ctx is done.
func (m *memReleaser) run(ctx context.Context) {
	t := time.NewTicker(releaseQuiet)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.tick()
		}
	}
}

// releaseMemory: the collection first (it touches the collector's code and
// the stacks' unwinding tables), then the executable's pages.
func releaseMemory() {
	debug.FreeOSMemory()
	dropExecPages()
}
