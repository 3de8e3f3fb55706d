package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/openrpcbind/rpcbind/internal/access"
)

// Connection accounting (STYLE 13: over budget, shed the heaviest
// consumer). Every open stream connection counts against one source:
//
//   - the local socket: the peer's SO_PEERCRED uid (-1 when unknown);
//   - TCP: the source address as access.SourcePrefix sees it (an IPv4
//     address, an IPv6 /64), a loopback address (127/8, ::1) being a
//     local source.
//
// Budgets:
//
//   - A uid other than 0 holds at most MaxConnsPerUID local-socket
//     connections; the next one is closed at accept (Stat.UIDDenied).
//     Root is exempt: a root process can raise any limit of ours anyway
//     (kill us, ptrace us, take the socket), and the NFS services
//     (rpc.statd, rpc.mountd, nfsd) register as root at boot, which must
//     never be refused. Remote sources are capped per source by the
//     listener (guard.SourceLimit, --max-conns-per-source); loopback TCP is
//     not, as DECISIONS says, but counts in the global cap.
//   - All sources together hold at most MaxConns; reaping makes room.
//
// Reaping. The fair share F is MaxConns divided by the number of sources
// holding connections (counting the newcomer's), at least 1. A remote
// source is over its share above F, a local source above
// max(F, MaxConnsPerUID): a local caller keeps its per-uid budget even
// when a flood from thousands of remote addresses drives F to 1, so
// boot-time NFS is never squeezed out.
//
//   - At 4/5 of MaxConns (libtirpc's threshold, CVE-2021-46828), the
//     connections idle for ReapIdle of every remote source over its share
//     are closed; only when no remote source is over its share, those of
//     local sources over theirs (at most sweepsPerReapIdle sweeps per
//     ReapIdle).
//   - At MaxConns one connection is closed per new one: the least recently
//     active connection (idle ones first) of the source holding the most
//     connections, taken from the first non-empty tier of: remote sources
//     over their share; local sources over theirs, if that connection has
//     been idle for DefaultLocalGrace; remote sources; local sources. Ties go to the source with the oldest connection (among
//     the first shedTies sources to reach that count).
//
// So no local-socket or loopback connection is closed to make room while
// any remote source is over its fair share, and a source at or under its
// share is reaped only after every source over it. Stat.Reaped counts
// every reaped connection, ReapedShare those of sources over their share,
// ReapedLocal the local ones.

// DefaultMaxConnsPerUID caps the local-socket connections of one non-root
// uid. Local clients of the portmapper (rpcinfo, NFS helpers, daemons
// registering) open a connection per call and close it; 64 is the
// per-source cap of remote hosts, far above what any local program
// holds, and keeps one user from taking more than 1/16 of the default
// MaxConns (1,024).
const DefaultMaxConnsPerUID = 64

// source is whom a stream connection is budgeted to (comparable: a map
// key).
type source struct {
	local bool         // the local socket or a loopback address
	uid   int          // local socket: the SO_PEERCRED uid (-1: unknown); TCP: -1
	net   netip.Prefix // TCP: access.SourcePrefix of the address
}

func sourceOf(c *access.Caller) source {
	if c.IsLocalSocket() {
		return source{local: true, uid: c.UID}
	}
	a := c.Addr.Addr()
	return source{local: access.IsLoopback(a), uid: -1, net: access.SourcePrefix(a)}
}

// localSocket reports whether s is a uid on the local socket.
func (s source) localSocket() bool { return !s.net.IsValid() }

func (s source) String() string {
	switch {
	case s.localSocket():
		return fmt.Sprintf("uid %d", s.uid)
	case s.net.Addr().Is4():
		return s.net.Addr().String()
	}
	return s.net.String()
}

func (c *conn) peer() *access.Caller  { return &c.caller }
func (c *econn) peer() *access.Caller { return &c.caller }

// The accounting is O(1) per accept at the cap, whatever MaxConns (issue
// 11: a walk over every connection per accept held the accept loop to
// about 2,000 connections a second, so a flood of 10,000 overflowed the
// listen queue and local callers' SYNs were dropped):
//
//   - each source keeps its connections in accept order (its LRU
//     connection is found by a walk of that source's connections alone:
//     at most --max-conns-per-source for a remote source);
//   - the sources of each class (remote, local) sit in buckets by
//     connection count, so the heaviest one of a class is at hand;
//   - ties among the heaviest go to the one with the oldest connection
//     among the first shedTies to reach that count;
//   - the idle sweep walks the connections of the sources over their
//     share, at most once per ReapIdle/sweepsPerReapIdle.

// DefaultLocalGrace: a local source over its share (tier 1) loses a
// connection to reaping only once that connection has been idle this
// long. Local clients open a connection per call; while the daemon is
// slow (the flood it is shedding), a burst of them is waiting to be
// answered, not hogging, and closing them lost the loopback victim's
// probes under the bench-attack idle flood. A local hog's idle
// connections still go after 1 s, before any remote at its share.
const DefaultLocalGrace = time.Second

// shedTies bounds the sources of equal weight compared at a shed (each
// costs a walk of its connections): with 8, one shed at the default caps
// looks at no more than 8*64 connections, and under a flood from many
// sources (each near the fair share, a few connections) far fewer.
const shedTies = 8

// sweepsPerReapIdle: the idle sweep at 4/5 of MaxConns runs at most this
// many times per ReapIdle, so a connection goes at most 1/16 later than
// ReapIdle (about 16 s instead of 15) while a flood of accepts does not
// pay a walk of every connection each.
const sweepsPerReapIdle = 16

// Classes of sources (srcState.class).
const (
	classRemote = iota
	classLocal
	nClasses
)

// srcState is one source's open connections.
type srcState struct {
	key        source
	class      int
	n          int        // open connections
	head, tail *connEntry // the connections, in accept order
	prev, next *srcState  // in its class's bucket n
}

// connEntry is one connection in its source's list.
type connEntry struct {
	c          streamConn
	src        *srcState
	prev, next *connEntry
}

// srcBuckets holds the sources of one class by connection count. A
// source changes bucket on every open and close (leave, then join).
type srcBuckets struct {
	by  []srcList // by[n]: the sources holding n connections, in the order they reached n
	max int       // the highest n with a source (0: none)
}

type srcList struct{ head, tail *srcState }

func (b *srcBuckets) join(ss *srcState) {
	for len(b.by) <= ss.n {
		b.by = append(b.by, srcList{})
	}
	l := &b.by[ss.n]
	ss.prev, ss.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = ss
	} else {
		l.head = ss
	}
	l.tail = ss
	b.max = max(b.max, ss.n)
}

func (b *srcBuckets) leave(ss *srcState) {
	l := &b.by[ss.n]
	if ss.prev != nil {
		ss.prev.next = ss.next
	} else {
		l.head = ss.next
	}
	if ss.next != nil {
		ss.next.prev = ss.prev
	} else {
		l.tail = ss.prev
	}
	ss.prev, ss.next = nil, nil
}

// settle lowers max past emptied buckets. A source moves by one count at
// a time, so this takes one step (or, when the last source goes, the
// steps down from 1).
func (b *srcBuckets) settle() {
	for b.max > 0 && b.by[b.max].head == nil {
		b.max--
	}
}

// addConn registers c, making room first (see Reaping above). It returns
// false when c must be closed instead: the server is shutting down, or c
// is a local-socket connection over its uid's budget.
func (s *Server) addConn(c streamConn) bool {
	src := sourceOf(c.peer())
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return false
	}
	ss := s.sources[src]
	if src.localSocket() && src.uid != 0 && ss != nil && ss.n >= s.opt.MaxConnsPerUID {
		s.Stat.UIDDenied.Add(1)
		s.log.Debug("server: connections per uid at cap, closing", "uid", src.uid,
			"max", s.opt.MaxConnsPerUID)
		return false
	}
	if len(s.conns) >= s.opt.MaxConns*4/5 {
		now := time.Now()
		if every := s.opt.ReapIdle / sweepsPerReapIdle; now.Sub(s.lastSweep) >= every {
			s.lastSweep = now
			s.sweepLocked(now, &src)
		}
	}
	for len(s.conns) >= s.opt.MaxConns && s.shedLocked(&src) {
	}
	if ss = s.sources[src]; ss == nil { // the shed may have closed its last one
		ss = &srcState{key: src}
		if src.local {
			ss.class = classLocal
		}
		s.sources[src] = ss
	} else {
		s.classes[ss.class].leave(ss)
	}
	e := &connEntry{c: c, src: ss, prev: ss.tail}
	if ss.tail != nil {
		ss.tail.next = e
	} else {
		ss.head = e
	}
	ss.tail = e
	ss.n++
	s.classes[ss.class].join(ss)
	s.conns[c] = e
	s.wg.Add(1)
	return true
}

// reap makes room without a newcomer (accept failed for lack of
// descriptors): the idle sweep, or if it closed nothing, one connection
// of the heaviest source.
func (s *Server) reap(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sweepLocked(now, nil) == 0 {
		s.shedLocked(nil)
	}
}

// fairLocked is the fair share F with next joining (nil: no newcomer).
func (s *Server) fairLocked(next *source) int {
	n := len(s.sources)
	if next != nil && s.sources[*next] == nil {
		n++
	}
	return max(1, s.opt.MaxConns/max(n, 1))
}

// overLocked is the class whose heaviest source is over its share, remote
// first, and the count above which a source of it is (ok false: none).
func (s *Server) overLocked(fair int) (class, above int, ok bool) {
	if s.classes[classRemote].max > fair {
		return classRemote, fair, true
	}
	if lim := max(fair, s.opt.MaxConnsPerUID); s.classes[classLocal].max > lim {
		return classLocal, lim, true
	}
	return 0, 0, false
}

// sweepLocked closes the connections idle since now-ReapIdle of the
// sources over their share (remote ones if any is, else local ones) and
// returns how many it closed.
func (s *Server) sweepLocked(now time.Time, next *source) int {
	class, above, ok := s.overLocked(s.fairLocked(next))
	if !ok {
		return 0
	}
	b := &s.classes[class]
	over := s.sweepScratch[:0]
	for n := b.max; n > above; n-- {
		for ss := b.by[n].head; ss != nil; ss = ss.next {
			over = append(over, ss)
		}
	}
	limit := now.Add(-s.opt.ReapIdle).UnixNano()
	closed := 0
	for i, ss := range over {
		for e := ss.head; e != nil; {
			next := e.next
			if e.c.active() < limit {
				s.dropLocked(e, true)
				closed++
			}
			e = next
		}
		over[i] = nil
	}
	s.sweepScratch = over[:0]
	return closed
}

// lru is ss's least recently active connection.
func (ss *srcState) lru() (*connEntry, int64) {
	var old *connEntry
	var at int64
	for e := ss.head; e != nil; e = e.next {
		if t := e.c.active(); old == nil || t < at {
			old, at = e, t
		}
	}
	return old, at
}

// shedLocked closes the least recently active connection of the heaviest
// source of the first non-empty tier; false when there is none. A local
// source over its share (tier 1) gives up a connection only once idle for
// s.localGrace; until then the next tier goes.
func (s *Server) shedLocked(next *source) bool {
	fair := s.fairLocked(next)
	var victim *connEntry
	over := false
	if r := &s.classes[classRemote]; r.max > fair {
		victim, over = heaviestLRU(r, r.max), true
	}
	if lim := max(fair, s.opt.MaxConnsPerUID); victim == nil && s.classes[classLocal].max > lim {
		victim, over = s.idleLocalLocked(lim), true
	}
	if victim == nil {
		over = false
		for _, b := range []*srcBuckets{&s.classes[classRemote], &s.classes[classLocal]} {
			if b.max > 0 {
				victim = heaviestLRU(b, b.max)
				break
			}
		}
	}
	if victim == nil {
		return false
	}
	if s.log.Enabled(context.Background(), slog.LevelDebug) { // spare the formatting in a flood
		s.log.Debug("server: connections at cap, closing the least active of the heaviest source",
			"source", victim.src.key.String(), "conns", victim.src.n, "fair", fair)
	}
	s.dropLocked(victim, over)
	return true
}

// heaviestLRU is the least recently active connection of the sources of
// b holding n connections: among the first shedTies to reach n, the one
// with the oldest connection.
func heaviestLRU(b *srcBuckets, n int) *connEntry {
	var victim *connEntry
	var vAt int64
	k := 0
	for ss := b.by[n].head; ss != nil && k < shedTies; ss = ss.next {
		if e, at := ss.lru(); e != nil && (victim == nil || at < vAt) {
			victim, vAt = e, at
		}
		k++
	}
	return victim
}

// idleLocalLocked is the connection tier 1 gives up: the least recently
// active one of the heaviest local source over lim (ties as
// heaviestLRU), looking at no more than shedTies sources, heaviest first,
// provided it has been idle for s.localGrace; else nil.
func (s *Server) idleLocalLocked(lim int) *connEntry {
	b := &s.classes[classLocal]
	limit := time.Now().Add(-s.localGrace).UnixNano()
	k := 0
	for n := b.max; n > lim && k < shedTies; n-- {
		var victim *connEntry
		var vAt int64
		for ss := b.by[n].head; ss != nil && k < shedTies; ss = ss.next {
			if e, at := ss.lru(); e != nil && at <= limit && (victim == nil || at < vAt) {
				victim, vAt = e, at
			}
			k++
		}
		if victim != nil {
			return victim
		}
	}
	return nil
}

// dropLocked closes e's connection for reaping. It leaves the accounting
// at once (its goroutine or loop calls removeConn later, which then finds
// nothing).
func (s *Server) dropLocked(e *connEntry, overShare bool) {
	s.Stat.Reaped.Add(1)
	if overShare {
		s.Stat.ReapedShare.Add(1)
	}
	if e.src.key.local {
		s.Stat.ReapedLocal.Add(1)
	}
	s.forgetLocked(e)
	e.c.kill()
}

func (s *Server) removeConn(c streamConn) {
	s.mu.Lock()
	if e, ok := s.conns[c]; ok {
		s.forgetLocked(e)
	}
	s.mu.Unlock()
}

func (s *Server) forgetLocked(e *connEntry) {
	delete(s.conns, e.c)
	ss := e.src
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		ss.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		ss.tail = e.prev
	}
	e.prev, e.next = nil, nil
	b := &s.classes[ss.class]
	b.leave(ss)
	if ss.n--; ss.n > 0 {
		b.join(ss)
	} else {
		delete(s.sources, ss.key)
	}
	b.settle()
}
