package guard

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/openrpcbind/rpcbind/internal/access"
)

// DefaultMaxConnsPerSource caps the open stream connections of one
// non-local source: an IPv4 address or an IPv6 /64 (access.SourcePrefix;
// a host owning a /64 picks a fresh address per connection, so counting
// full IPv6 addresses would cap nothing). A client of the portmapper opens
// one connection per lookup and closes it; 64 leaves room for a busy NFS
// client's parallel mounts while one remote host can hold at most 64 of
// the server's MaxConns (default 1024) descriptors (CVE-2021-46828 was one
// host exhausting them all). Loopback sources are never counted here (the
// server's global cap and reaping still count them).
const DefaultMaxConnsPerSource = 64

// SourceLimit wraps a TCP listener: a connection from a non-local source
// (access.SourcePrefix of its address) that already has max open
// connections is reset at once, before the server sees it. Connections
// from loopback and non-TCP listeners pass.
type SourceLimit struct {
	net.Listener
	max   int
	local func(netip.Addr) bool // exempt sources; access.IsLoopback

	mu     sync.Mutex
	open   map[netip.Prefix]int
	denied atomic.Uint64
}

// LimitPerSource returns l with the per-source cap max (0: the default).
func LimitPerSource(l net.Listener, max int) *SourceLimit {
	if max <= 0 {
		max = DefaultMaxConnsPerSource
	}
	return &SourceLimit{Listener: l, max: max, local: access.IsLoopback, open: map[netip.Prefix]int{}}
}

// Denied is the number of connections closed for the cap.
func (l *SourceLimit) Denied() uint64 { return l.denied.Load() }

// Open returns the connections counted for a's source (its IPv4 address
// or IPv6 /64).
func (l *SourceLimit) Open(a netip.Addr) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open[access.SourcePrefix(a)]
}

// Accept implements net.Listener.
func (l *SourceLimit) Accept() (net.Conn, error) {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			return nc, err
		}
		tc, ok := nc.(*net.TCPConn)
		if !ok {
			return nc, nil
		}
		ra, _ := tc.RemoteAddr().(*net.TCPAddr)
		if ra == nil {
			return nc, nil
		}
		a := ra.AddrPort().Addr().Unmap().WithZone("")
		if l.local(a) {
			return nc, nil
		}
		src := access.SourcePrefix(a)
		if !l.take(src) {
			tc.SetLinger(0) // RST: no TIME_WAIT kept for a refused peer
			tc.Close()
			continue
		}
		return &countedConn{TCPConn: tc, l: l, src: src}, nil
	}
}

// take counts a connection of src, or counts a denial when src is at the
// cap.
func (l *SourceLimit) take(src netip.Prefix) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[src] >= l.max {
		l.denied.Add(1)
		return false
	}
	l.open[src]++
	return true
}

// give returns a slot of src.
func (l *SourceLimit) give(src netip.Prefix) {
	l.mu.Lock()
	if l.open[src]--; l.open[src] <= 0 {
		delete(l.open, src)
	}
	l.mu.Unlock()
}

// Unwrap returns the wrapped listener, for a server that accepts from the
// socket itself; it then asks Admit for each connection.
func (l *SourceLimit) Unwrap() net.Listener { return l.Listener }

// Admit applies the cap to a connection from a, accepted by a server from
// the unwrapped listener: ok false means it must be reset; otherwise
// release gives the slot back, once, when the connection closes.
func (l *SourceLimit) Admit(a netip.Addr) (release func(), ok bool) {
	a = a.Unmap().WithZone("")
	if l.local(a) {
		return func() {}, true
	}
	src := access.SourcePrefix(a)
	if !l.take(src) {
		return nil, false
	}
	var once sync.Once
	return func() { once.Do(func() { l.give(src) }) }, true
}

// countedConn gives its slot back on the first Close. It embeds the
// *net.TCPConn so the server still finds syscall.Conn (writev).
type countedConn struct {
	*net.TCPConn
	l    *SourceLimit
	src  netip.Prefix
	once sync.Once
}

// NetConn returns the connection's socket, for a server that serves the
// descriptor itself (the epoll engine takes a duplicate and closes this
// one); the slot is still given back only by Close.
func (c *countedConn) NetConn() net.Conn { return c.TCPConn }

func (c *countedConn) Close() error {
	c.once.Do(func() { c.l.give(c.src) })
	return c.TCPConn.Close()
}
