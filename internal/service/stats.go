package service

import (
	"slices"
	"sync"
	"sync/atomic"

	"github.com/openrpcbind/rpcbind/pmap"
	"github.com/openrpcbind/rpcbind/xdr"
)

// MaxStatEntries caps each of the per-version addrinfo and rmtinfo lists of
// GETSTAT (DECISIONS "statistics"): the reference grows them without bound, one
// entry per distinct (prog, vers, netid) a client asks about. When a list is
// full the least recently updated entry makes room.
const MaxStatEntries = 1024

// statNetids are the netids rpcbind_get_conf knows (/etc/netconfig): a
// statistic is only recorded for one of them, and the list stores its index.
var statNetids = [...]string{"udp", "tcp", "udp6", "tcp6", "rawip", "local", "unix"}

func netidIndex(netid string) (uint8, bool) {
	for i, n := range statNetids {
		if n == netid {
			return uint8(i), true
		}
	}
	return 0, false
}

// Encoded sizes (RFC 1833 §2.2.2): an rpcbs_addrlist element is "value
// follows", prog, vers, success, failure and the netid string; an
// rpcbs_rmtcalllist element adds proc and indirect. An rpcb_stat without its
// list elements is the procedure counters, setinfo, unsetinfo and the two
// list terminators.
const (
	addrStatFixed = 5 * 4
	rmtStatFixed  = 7 * 4
	statFixed     = (pmap.NumProcs + 2 + 2) * 4
)

// netidWireSize is the XDR size of each statNetids string.
var netidWireSize = func() (s [len(statNetids)]int64) {
	for i, n := range statNetids {
		s[i] = int64(4 + len(n) + xdr.Padding(len(n)))
	}
	return s
}()

type statKey struct {
	prog, vers, proc uint32
	netid            uint8
}

// statEntry is one element of a statList. Links are pool indexes plus one;
// 0 ends a chain.
type statEntry struct {
	key                        statKey
	success, failure, indirect int32
	older, newer               int32 // creation order: the wire order
	lruPrev, lruNext           int32 // update order: eviction
}

// statList is rpcbs_addrlist or rpcbs_rmtcalllist of one version: a fixed
// pool with an index and two intrusive doubly linked lists, so that every
// update, creation and eviction is O(1) and only creation allocates (the
// pool and the index grow by doubling up to MaxStatEntries, then stay). The reference prepends new keys: the wire order is
// newest-created first, the creation chain's order. The encoded size of the
// elements is kept as they change, so a GETSTAT knows its reply's size
// without walking anything.
//
// Each list has its own mutex, held by an update for O(1) work and by a
// GETSTAT only to copy the pool (at most MaxStatEntries entries, about
// 45 KB): no lookup waits behind an encoding, and concurrent lookups on
// different versions or lists never meet.
type statList struct {
	mu     sync.Mutex
	idx    map[statKey]int32 // key → pool index
	ents   []statEntry       // the pool, len ≤ MaxStatEntries
	newest int32             // head of the creation chain
	mru    int32             // head of the update chain
	lru    int32             // its tail: the next to go
	size   atomic.Int64      // encoded bytes of the elements
	rmt    bool              // rpcbs_rmtcalllist layout
}

func (l *statList) entrySize(e *statEntry) int64 {
	if l.rmt {
		return rmtStatFixed + netidWireSize[e.key.netid]
	}
	return addrStatFixed + netidWireSize[e.key.netid]
}

// get returns the entry of k and moves it to the head of the update chain;
// when k is absent it is created, evicting the least recently updated entry
// of a full list. The caller holds l.mu.
func (l *statList) get(k statKey) (e *statEntry, created bool) {
	if i, ok := l.idx[k]; ok {
		l.touch(i + 1)
		return &l.ents[i], false
	}
	if l.idx == nil {
		// Grown on demand, not sized for MaxStatEntries: a client asks
		// about a handful of (prog, vers, netid), and a map sized for 1,024
		// keys has all its control words written (about 90 KB resident per
		// list with the pool, 180 KB after a GETPORT and a GETADDR).
		l.idx = make(map[statKey]int32)
	}
	var i int32
	if len(l.ents) < MaxStatEntries {
		i = int32(len(l.ents))
		l.ents = append(l.ents, statEntry{})
	} else {
		i = l.lru - 1
		old := &l.ents[i]
		l.unlinkLRU(i + 1)
		l.unlinkCreated(i + 1)
		delete(l.idx, old.key)
		l.size.Add(-l.entrySize(old))
	}
	l.idx[k] = i
	e = &l.ents[i]
	*e = statEntry{key: k, older: l.newest}
	if l.newest != 0 {
		l.ents[l.newest-1].newer = i + 1
	}
	l.newest = i + 1
	l.pushLRU(i + 1)
	l.size.Add(l.entrySize(e))
	return e, true
}

// touch moves link n to the head of the update chain.
func (l *statList) touch(n int32) {
	if l.mru == n {
		return
	}
	l.unlinkLRU(n)
	l.pushLRU(n)
}

func (l *statList) pushLRU(n int32) {
	e := &l.ents[n-1]
	e.lruPrev, e.lruNext = 0, l.mru
	if l.mru != 0 {
		l.ents[l.mru-1].lruPrev = n
	} else {
		l.lru = n
	}
	l.mru = n
}

func (l *statList) unlinkLRU(n int32) {
	e := &l.ents[n-1]
	if e.lruPrev != 0 {
		l.ents[e.lruPrev-1].lruNext = e.lruNext
	} else {
		l.mru = e.lruNext
	}
	if e.lruNext != 0 {
		l.ents[e.lruNext-1].lruPrev = e.lruPrev
	} else {
		l.lru = e.lruPrev
	}
	e.lruPrev, e.lruNext = 0, 0
}

func (l *statList) unlinkCreated(n int32) {
	e := &l.ents[n-1]
	if e.newer != 0 {
		l.ents[e.newer-1].older = e.older
	} else {
		l.newest = e.older
	}
	if e.older != 0 {
		l.ents[e.older-1].newer = e.newer
	}
	e.older, e.newer = 0, 0
}

// copyTo copies the pool into dst (len MaxStatEntries) under the list's
// lock and returns the number of entries and the creation chain's head.
func (l *statList) copyTo(dst []statEntry) (n int, newest int32) {
	l.mu.Lock()
	n = copy(dst, l.ents)
	newest = l.newest
	l.mu.Unlock()
	return n, newest
}

// stats is rpcb_stat_byvers with the reference's counting rules
// (rpcb_stat.c; spec §1.8). The per-procedure, SET and UNSET counters are
// atomic; the lists have their own locks (see statList).
type stats struct {
	info  [pmap.NumStatVers][pmap.NumProcs]atomic.Int32
	set   [pmap.NumStatVers]atomic.Int32
	unset [pmap.NumStatVers]atomic.Int32

	addr [pmap.NumStatVers]statList
	rmt  [pmap.NumStatVers]statList

	// snapMu serializes GETSTAT encodings, which share scratch: one list's
	// copy at a time, so the scratch is one pool (about 45 KB), allocated
	// by the first GETSTAT. Lookups never take it.
	snapMu  sync.Mutex
	scratch []statEntry
	visited uint64 // list elements encoded so far (tests)
}

// statEncodeHook, when set (tests), runs after each list is copied and
// before it is encoded, with no list lock held.
var statEncodeHook func()

func (s *stats) init() {
	for vi := range s.rmt {
		s.rmt[vi].rmt = true
	}
}

// procInfo is rpcbs_procinfo: the caller has checked proc against the
// version's highest procedure.
func (s *stats) procInfo(vi int, proc uint32) { s.info[vi][proc].Add(1) }

func (s *stats) setDone(vi int, ok bool) {
	if ok {
		s.set[vi].Add(1)
	}
}

func (s *stats) unsetDone(vi int, ok bool) {
	if ok {
		s.unset[vi].Add(1)
	}
}

// getAddr is rpcbs_getaddr: success when the answer is a non-empty address.
// An unknown netid is not recorded.
func (s *stats) getAddr(vi int, prog, vers uint32, netid string, success bool) {
	ni, ok := netidIndex(netid)
	if !ok {
		return
	}
	l := &s.addr[vi]
	l.mu.Lock()
	e, _ := l.get(statKey{prog: prog, vers: vers, netid: ni})
	if success {
		e.success++
	} else {
		e.failure++
	}
	l.mu.Unlock()
}

// rmtCall is rpcbs_rmtcall, including its quirk: a new entry starts with
// indirect = 1 whatever the procedure, and only INDIRECT adds to it later.
func (s *stats) rmtCall(vi int, indirect bool, prog, vers, proc uint32, netid string, success bool) {
	ni, ok := netidIndex(netid)
	if !ok {
		return
	}
	l := &s.rmt[vi]
	l.mu.Lock()
	e, created := l.get(statKey{prog: prog, vers: vers, proc: proc, netid: ni})
	if success {
		e.success++
	} else {
		e.failure++
	}
	if created {
		e.indirect = 1
	} else if indirect {
		e.indirect++
	}
	l.mu.Unlock()
}

// wireSize is the encoded size of rpcb_stat_byvers now, in O(1): the fixed
// parts plus the lists' maintained sizes.
func (s *stats) wireSize() int64 {
	n := int64(pmap.NumStatVers * statFixed)
	for vi := range s.addr {
		n += s.addr[vi].size.Load() + s.rmt[vi].size.Load()
	}
	return n
}

// appendXDR appends rpcb_stat_byvers straight from the lists, newest-created
// first, with no intermediate values and no sort; b grows at most once
// (by the size known in advance). Each list is copied under its lock and
// encoded outside it.
func (s *stats) appendXDR(b []byte) []byte {
	if need := int(s.wireSize()); cap(b)-len(b) < need {
		b = slices.Grow(b, need+64) // slack for lists growing meanwhile
	}
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	if s.scratch == nil {
		s.scratch = make([]statEntry, MaxStatEntries)
	}
	for vi := range s.addr {
		for p := range s.info[vi] {
			b = xdr.AppendInt32(b, s.info[vi][p].Load())
		}
		b = xdr.AppendInt32(b, s.set[vi].Load())
		b = xdr.AppendInt32(b, s.unset[vi].Load())
		b = s.appendList(b, &s.addr[vi])
		b = s.appendList(b, &s.rmt[vi])
	}
	return b
}

// appendList encodes one list and its terminator. The caller holds snapMu.
func (s *stats) appendList(b []byte, l *statList) []byte {
	n, i := l.copyTo(s.scratch)
	if h := statEncodeHook; h != nil {
		h()
	}
	ents := s.scratch[:n]
	// At most n steps: the chain is acyclic, and the bound keeps it so.
	var w [rmtStatFixed + 12]byte // the longest element: netid ≤ 8 bytes
	for k := 0; k < n && i > 0 && int(i) <= n; k++ {
		e := &ents[i-1]
		xdr.PutUint32(w[0:], 1) // value follows
		xdr.PutUint32(w[4:], e.key.prog)
		xdr.PutUint32(w[8:], e.key.vers)
		o := 12
		if l.rmt {
			xdr.PutUint32(w[o:], e.key.proc)
			o += 4
		}
		xdr.PutUint32(w[o:], uint32(e.success))
		xdr.PutUint32(w[o+4:], uint32(e.failure))
		o += 8
		if l.rmt {
			xdr.PutUint32(w[o:], uint32(e.indirect))
			o += 4
		}
		netid := statNetids[e.key.netid]
		xdr.PutUint32(w[o:], uint32(len(netid)))
		o += 4
		o += copy(w[o:], netid)
		for ; o&3 != 0; o++ {
			w[o] = 0
		}
		b = append(b, w[:o]...)
		s.visited++
		i = e.older
	}
	return xdr.AppendBool(b, false)
}
