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
//     local sources over theirs.
//   - At MaxConns one connection is closed per new one: the least recently
//     active connection (idle ones first) of the source holding the most
//     connections, taken from the first non-empty tier of: remote sources
//     over their share; local sources over theirs; remote sources; local
//     sources. Ties go to the source with the oldest connection.
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

// lruConn is a source's least recently active connection (shedLocked).
type lruConn struct {
	c  streamConn
	at int64
}

func (c *conn) peer() *access.Caller  { return &c.caller }
func (c *econn) peer() *access.Caller { return &c.caller }

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
	if src.localSocket() && src.uid != 0 && s.bySource[src] >= s.opt.MaxConnsPerUID {
		s.Stat.UIDDenied.Add(1)
		s.log.Debug("server: connections per uid at cap, closing", "uid", src.uid,
			"max", s.opt.MaxConnsPerUID)
		return false
	}
	if len(s.conns) >= s.opt.MaxConns*4/5 {
		s.sweepLocked(time.Now(), &src)
	}
	for len(s.conns) >= s.opt.MaxConns && s.shedLocked(&src) {
	}
	s.conns[c] = src
	s.bySource[src]++
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
	n := len(s.bySource)
	if next != nil && s.bySource[*next] == 0 {
		n++
	}
	return max(1, s.opt.MaxConns/max(n, 1))
}

// tier ranks src for reaping (lower goes first): 0 remote over its share,
// 1 local over its share, 2 remote, 3 local.
func (s *Server) tier(src source, n, fair int) int {
	switch {
	case !src.local && n > fair:
		return 0
	case src.local && n > max(fair, s.opt.MaxConnsPerUID):
		return 1
	case !src.local:
		return 2
	}
	return 3
}

// sweepLocked closes the connections idle since now-ReapIdle of the
// sources over their share (remote ones if any is, else local ones) and
// returns how many it closed.
func (s *Server) sweepLocked(now time.Time, next *source) int {
	fair := s.fairLocked(next)
	over := s.overScratch
	clear(over)
	for _, t := range [2]int{0, 1} {
		for src, n := range s.bySource {
			if s.tier(src, n, fair) == t {
				over[src] = true
			}
		}
		if len(over) > 0 {
			break
		}
	}
	if len(over) == 0 {
		return 0
	}
	limit := now.Add(-s.opt.ReapIdle).UnixNano()
	closed := 0
	for c, src := range s.conns {
		if over[src] && c.active() < limit {
			s.dropLocked(c, true)
			closed++
		}
	}
	return closed
}

// shedLocked closes the least recently active connection of the heaviest
// source of the first non-empty tier; false when there is none.
func (s *Server) shedLocked(next *source) bool {
	fair := s.fairLocked(next)
	lru := s.lruScratch
	clear(lru)
	for c, src := range s.conns {
		if at := c.active(); lru[src].c == nil || at < lru[src].at {
			lru[src] = lruConn{c, at}
		}
	}
	var (
		victim    streamConn
		vTier, vN int
		vAt       int64
		vSrc      source
	)
	for src, k := range lru {
		n := s.bySource[src]
		t := s.tier(src, n, fair)
		if victim == nil || t < vTier || t == vTier && (n > vN || n == vN && k.at < vAt) {
			victim, vTier, vN, vAt, vSrc = k.c, t, n, k.at, src
		}
	}
	if victim == nil {
		return false
	}
	if s.log.Enabled(context.Background(), slog.LevelDebug) { // spare the formatting in a flood
		s.log.Debug("server: connections at cap, closing the least active of the heaviest source",
			"source", vSrc.String(), "conns", vN, "fair", fair)
	}
	s.dropLocked(victim, vTier <= 1)
	return true
}

// dropLocked closes c for reaping. It leaves the accounting at once (its
// goroutine or loop calls removeConn later, which then finds nothing).
func (s *Server) dropLocked(c streamConn, overShare bool) {
	src, ok := s.conns[c]
	if !ok {
		return
	}
	s.Stat.Reaped.Add(1)
	if overShare {
		s.Stat.ReapedShare.Add(1)
	}
	if src.local {
		s.Stat.ReapedLocal.Add(1)
	}
	s.forgetLocked(c, src)
	c.kill()
}

func (s *Server) removeConn(c streamConn) {
	s.mu.Lock()
	if src, ok := s.conns[c]; ok {
		s.forgetLocked(c, src)
	}
	s.mu.Unlock()
}

func (s *Server) forgetLocked(c streamConn, src source) {
	delete(s.conns, c)
	if s.bySource[src]--; s.bySource[src] <= 0 {
		delete(s.bySource, src)
	}
}
