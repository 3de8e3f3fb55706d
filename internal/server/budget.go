package server

import (
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// Budgets of the stream engines (STYLE 13, DECISIONS "budgets").
//
// Threat 1, a loop held by one connection: an event loop serves many
// connections; a peer that pipelines thousands of calls in one write would
// be served until its input is gone while every other connection of the
// loop waits (measured before: 6.5 s for a local SET behind two remote
// GETSTAT pipelines). Each connection therefore gets RecordsPerWakeup
// records and wakeupOutput bytes of output per turn (Netty's
// maxMessagesPerRead); the rest of its input is kept and the loop turns to
// the others, coming back on its next iteration.
//
// Threat 2, memory pinned by peers that do not read: a reply the socket
// does not take at once is kept until the peer reads it or WriteTimeout
// passes; a DUMP reply keeps its shared tail, the registry's encoding of
// one table version, alive. A peer that changes the table and asks for a
// DUMP on many connections it never reads pins one encoding per version
// (measured before: RSS 5 MB -> 2.2 GB in 20 s). Every byte held on a
// peer's behalf — pending replies, shared tails (a backing array counted
// once however many connections reference it), stashed input and record
// reassembly — counts against MaxHeldBytes over all connections of both
// engines. A connection that would push the total over it makes room by
// shedding among the heaviest holders (weights within a factor of two
// count as equal) the one whose write has waited longest, the slowest
// reader; it is itself shed when it is more than twice as heavy as any;
// the total never exceeds the budget (Envoy's overload manager sheds the
// same way). Per connection, the high watermark is one reply: a connection
// with a reply pending is not read (back-pressure), so it cannot queue a
// second one.
const (
	// DefaultRecordsPerWakeup is the records one connection may have
	// served per turn. 16 keeps a pipelining client's throughput (one
	// read and one epoll_wait share per 16 calls) while another
	// connection waits at most 16 calls of each busy one.
	DefaultRecordsPerWakeup = 16
	// wakeupOutput bounds the bytes of replies one connection may have
	// written per turn (the same budget counted in bytes, for large
	// replies such as DUMP); a turn always serves at least one record.
	wakeupOutput = 64 << 10
	// heavyOutput: a turn that wrote this much (or served
	// RecordsPerWakeup records) makes its connection heavy, served after
	// the light ones with a look at epoll between heavy turns. 16 KiB is
	// a DUMP of ~100 registrations; GETPORT, GETADDR, SET and a small
	// table's DUMP stay light.
	heavyOutput = 16 << 10
	// DefaultHeavyShare is the percentage of each event loop's time that
	// heavy connections together may take. At half, a flood of GETSTAT,
	// DUMP or pipelined calls leaves the loop (and the CPU the flood's
	// replies would cost) idle half the time for everything else, while
	// one honest DUMP of a large table still runs at full speed (the
	// burst).
	DefaultHeavyShare = 50
	// heavyBurst is the heavy budget a quiet loop accumulates.
	heavyBurst = 5 * time.Millisecond
	// DefaultMaxHeldBytes is the memory held on all peers' behalf. The
	// resident set under attack must stay within 64 MiB: the daemon's
	// live heap is ~5 MB with 10,000 registrations and GOGC is 25, so
	// 16 MiB held (at most ~20 MiB of heap with the collector's slack)
	// plus the table and its cached encodings stays below (measured: 200
	// never-reading DUMP clients, a new 4.5 MB encoding each, peak RSS
	// 47-54 MiB), while a DUMP of a large honest table (10,000
	// registrations: under 1 MB) always fits.
	DefaultMaxHeldBytes = 16 << 20
	// keepBuf: a connection's stash or reassembly buffer larger than this
	// is dropped once empty instead of being kept (and charged) idle.
	keepBuf = 1 << 10
)

// hold is what one connection holds on its peer's behalf. The fields from
// bytes to listed belong to heldBudget.mu; has and hasTail to the
// connection's owner (its loop or goroutine), which alone calls charge.
type hold struct {
	c       streamConn
	has     int // what the owner last charged, so that unchanged charges take no lock
	hasTail *byte
	bytes   int   // owned buffers: pending reply copy, stash, reassembly
	tail    *byte // backing array of a shared tail still to be written; nil if none
	tailLen int   // its size, counted once for all holders
	shed    bool  // closed to make room; charges fail from then on
	listed  bool  // in heldBudget.holders
	// waiting is the loop or wall time (unix ns) since which a pending
	// write has made no progress; 0 when nothing waits.
	waiting atomic.Int64
}

func (h *hold) weight() int { return h.bytes + h.tailLen }

// tailRef counts the holders of one shared tail.
type tailRef struct{ n, size int }

// heldBudget accounts held memory over all connections of a Server.
type heldBudget struct {
	mu      sync.Mutex
	max     int
	total   int
	tails   map[*byte]*tailRef
	holders map[*hold]struct{}
	stat    *Stats
}

func newHeldBudget(max int, stat *Stats) *heldBudget {
	return &heldBudget{max: max, tails: make(map[*byte]*tailRef), holders: make(map[*hold]struct{}), stat: stat}
}

// tailKey identifies a shared tail by its backing array; nil for none.
func tailKey(tail []byte) (*byte, int) {
	if len(tail) == 0 {
		return nil, 0
	}
	return unsafe.SliceData(tail), cap(tail)
}

// set makes h hold bytes of owned buffers and reference the tail key (nil:
// none) of size tailLen. A decrease always succeeds. An increase that
// would take the total over the budget sheds holders (victimLocked) until
// it fits, unless h itself is picked: then h is shed, holds nothing and
// set returns false (the caller closes it). After a shed set returns
// false without accounting.
func (b *heldBudget) set(h *hold, bytes int, tail *byte, tailLen int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if h.shed {
		return false
	}
	grow := bytes > h.bytes || (tail != nil && tail != h.tail)
	b.unsetLocked(h)
	if tail == nil {
		tailLen = 0
	}
	for grow {
		need := bytes
		if tail != nil && b.tails[tail] == nil {
			need += tailLen
		}
		if b.total+need <= b.max {
			break
		}
		v := b.victimLocked(h, bytes+tailLen)
		if v == h {
			b.shedLocked(h)
			return false
		}
		b.shedLocked(v)
	}
	h.bytes = bytes
	if tail != nil {
		r := b.tails[tail]
		if r == nil {
			r = &tailRef{size: tailLen}
			b.tails[tail] = r
			b.total += tailLen
		}
		r.n++
		h.tail, h.tailLen = tail, tailLen
	}
	b.total += bytes
	if h.weight() > 0 && !h.listed {
		h.listed = true
		b.holders[h] = struct{}{}
	}
	b.gaugeLocked()
	return true
}

// charge is set from h's owner, skipped when nothing changed; false means
// h was shed and must be closed.
func (b *heldBudget) charge(h *hold, bytes int, tail []byte) bool {
	key, size := tailKey(tail)
	if bytes == h.has && key == h.hasTail {
		return true
	}
	h.has, h.hasTail = bytes, key
	return b.set(h, bytes, key, size)
}

// release drops everything h holds (its connection is closing).
func (b *heldBudget) release(h *hold) {
	if h.has == 0 && h.hasTail == nil {
		return
	}
	h.has, h.hasTail = 0, nil
	b.mu.Lock()
	if !h.shed {
		b.unsetLocked(h)
		b.gaugeLocked()
	}
	b.mu.Unlock()
}

func (b *heldBudget) unsetLocked(h *hold) {
	b.total -= h.bytes
	h.bytes = 0
	if h.tail != nil {
		if r := b.tails[h.tail]; r != nil {
			if r.n--; r.n == 0 {
				b.total -= r.size
				delete(b.tails, h.tail)
			}
		}
		h.tail, h.tailLen = nil, 0
	}
	if h.listed {
		h.listed = false
		delete(b.holders, h)
	}
}

// older reports whether a's write has waited longer than b's (a write not
// waiting counts as just started).
func older(a, b *hold) bool {
	wa, wb := a.waiting.Load(), b.waiting.Load()
	return wa != 0 && (wb == 0 || wa < wb)
}

// victimLocked picks who goes to make room for newcomer h of weight w:
// among the heaviest — every holder (h included) weighing at least half
// the largest weight — the one whose write has waited longest. Weights
// within a factor of two count as equal, so that a slightly larger reply
// (a DUMP of a table grown by one entry) does not make every newcomer
// "the heaviest" while old non-readers keep the budget; a newcomer more
// than twice as heavy as any holder goes itself.
func (b *heldBudget) victimLocked(h *hold, w int) *hold {
	top := w
	for o := range b.holders {
		top = max(top, o.weight())
	}
	var v *hold
	if 2*w >= top {
		v = h
	}
	for o := range b.holders {
		if 2*o.weight() >= top && (v == nil || older(o, v)) {
			v = o
		}
	}
	return v
}

// shedLocked takes h out of the accounting and asks its engine to close
// it; the engine's own release is then a no-op.
func (b *heldBudget) shedLocked(h *hold) {
	b.unsetLocked(h)
	h.shed = true
	b.stat.Shed.Add(1)
	if h.c != nil {
		h.c.kill()
	}
	b.gaugeLocked()
}

func (b *heldBudget) gaugeLocked() {
	b.stat.HeldBytes.Store(int64(b.total))
	if int64(b.total) > b.stat.HeldPeak.Load() {
		b.stat.HeldPeak.Store(int64(b.total))
	}
}
