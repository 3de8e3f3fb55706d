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

// releaseQuiet is the period over which the daemon must stay quiet before
// it gives back what start-up or a burst of work left resident: a second,
// so that a burst (a boot's worth of registrations, a pruning sweep, a
// client's storm of calls) is over. A release costs one collection (about
// 3 ms of CPU with 10,000 registrations) and comes at most once per burst.
const releaseQuiet = time.Second

// quietCPU is the CPU time (user and system) below which a period counts as
// quiet when the table did not change either: 2.5% of a CPU, about 5,000
// GETPORTs a second. The runtime's background scavenger alone paces itself
// at 1% after a burst has freed memory (10 ms, the first figure tried,
// kept the daemon "busy" for seconds after 10,000 SETs). A daemon
// answering a trickle of calls settles; one under load is never
// interrupted by a release.
const quietCPU = 25 * time.Millisecond

// memReleaser gives memory back once the daemon has settled: after
// start-up and after each burst of work (table changes, or more than
// quietCPU of CPU in a period), once a whole releaseQuiet period passed
// without either. A release is a forced collection that returns the free
// heap pages to the kernel (debug.FreeOSMemory; the runtime's own
// scavenger returns them over minutes). The executable's own pages are left
// alone: dropping them (madvise) lowers the resident figure without saving
// memory — they stay in the page cache and fault back on the next call.
type memReleaser struct {
	changes atomic.Uint64        // table changes so far
	cpu     func() time.Duration // the process's CPU time; nil: processCPU
	release func()               // nil: releaseMemory
	last    uint64               // changes at the previous tick
	lastCPU time.Duration        // CPU time at the previous tick
	dirty   bool                 // busy since the last release (start-up counts)
}

func newMemReleaser() *memReleaser { return &memReleaser{dirty: true} }

// changed counts one table change (the registry's observer calls it, under
// the table's write lock: an atomic add).
func (m *memReleaser) changed() {
	if m != nil {
		m.changes.Add(1)
	}
}

func (m *memReleaser) now() time.Duration {
	if m.cpu != nil {
		return m.cpu()
	}
	return processCPU()
}

// tick is called every releaseQuiet; it releases when the period since the
// previous tick was quiet and there was work since the last release.
func (m *memReleaser) tick() bool {
	c, cpu := m.changes.Load(), m.now()
	busy := c != m.last || cpu-m.lastCPU > quietCPU
	m.last, m.lastCPU = c, cpu
	if busy {
		m.dirty = true
		return false
	}
	if !m.dirty {
		return false
	}
	m.dirty = false
	if m.release != nil {
		m.release()
	} else {
		releaseMemory()
	}
	m.lastCPU = m.now() // the release's own work is not activity
	return true
}

// run ticks until ctx is done.
func (m *memReleaser) run(ctx context.Context) {
	m.lastCPU = m.now()
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

// releaseMemory returns the free heap to the kernel.
func releaseMemory() {
	debug.FreeOSMemory()
}
