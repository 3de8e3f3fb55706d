package server

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/openrpcbind/rpcbind/internal/access"
	"github.com/openrpcbind/rpcbind/internal/rpc"
)

// conn is one stream connection, served by one goroutine: requests are read,
// handled and answered in order, so pipelined calls get ordered replies.
type conn struct {
	s          *Server
	nc         net.Conn
	caller     access.Caller
	lastActive atomic.Int64 // unix nanoseconds of accept or the last reply
	inRecord   bool         // a record has started arriving (owned by the goroutine)
}

func (s *Server) startStream(sock *Socket) {
	s.mu.Lock()
	s.listeners = append(s.listeners, sock.Listener)
	s.mu.Unlock()
	s.wg.Add(1)
	go s.acceptLoop(sock)
}

func (s *Server) acceptLoop(sock *Socket) {
	defer s.wg.Done()
	var backoff time.Duration
	for {
		nc, err := sock.Listener.Accept()
		if err != nil {
			if s.closing.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			// EMFILE and friends: reap, back off, go on (never spin; the
			// CVE-2018-14621 loop).
			s.Stat.Errors.Add(1)
			s.log.Error("server: accept", "netid", sock.Netid, "err", err)
			s.reap(time.Now(), true)
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		s.Stat.Accepted.Add(1)
		c := &conn{s: s, nc: nc, caller: access.Caller{Netid: sock.Netid, UID: -1}}
		if sock.Netid == "local" {
			c.caller.UID = peerUID(nc)
		} else {
			c.caller.Addr = addrPort(nc.RemoteAddr())
			c.caller.Dst = addrPort(nc.LocalAddr())
		}
		c.lastActive.Store(time.Now().UnixNano())
		if !s.addConn(c) {
			nc.Close()
			continue
		}
		go c.serve()
	}
}

func addrPort(a net.Addr) netip.AddrPort {
	if t, ok := a.(*net.TCPAddr); ok {
		ap := t.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}

// addConn registers c, making room first: at 4/5 of MaxConns connections
// idle for ReapIdle go; at MaxConns the least recently active one goes
// (libtirpc's policy, so that a flood of idle connections cannot lock
// clients out).
func (s *Server) addConn(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return false
	}
	if len(s.conns) >= s.opt.MaxConns*4/5 {
		s.reapLocked(time.Now(), len(s.conns) >= s.opt.MaxConns)
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Server) reap(now time.Time, force bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reapLocked(now, force)
}

// reapLocked closes connections idle for ReapIdle; if none was and force is
// set, it closes the least recently active one. Closed connections leave
// the map when their goroutine ends; they are removed here already so that
// the count is right at once.
func (s *Server) reapLocked(now time.Time, force bool) {
	limit := now.Add(-s.opt.ReapIdle).UnixNano()
	var oldest *conn
	reaped := false
	for c := range s.conns {
		la := c.lastActive.Load()
		if la < limit {
			s.dropLocked(c)
			reaped = true
			continue
		}
		if oldest == nil || la < oldest.lastActive.Load() {
			oldest = c
		}
	}
	if !reaped && force && oldest != nil {
		s.dropLocked(oldest)
	}
}

func (s *Server) dropLocked(c *conn) {
	s.Stat.Reaped.Add(1)
	delete(s.conns, c)
	c.nc.Close()
}

func (s *Server) removeConn(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// Read implements io.Reader for the RecordReader: once the first byte of a
// record arrives, the rest must come within RecordTimeout.
func (c *conn) Read(p []byte) (int, error) {
	n, err := c.nc.Read(p)
	if n > 0 && !c.inRecord {
		c.inRecord = true
		c.nc.SetReadDeadline(time.Now().Add(c.s.opt.RecordTimeout))
		if c.s.closing.Load() {
			c.nc.SetReadDeadline(time.Unix(1, 0))
		}
	}
	return n, err
}

func (c *conn) serve() {
	s := c.s
	defer s.wg.Done()
	defer c.nc.Close()
	defer s.removeConn(c)
	rr := rpc.NewRecordReader(c, s.opt.MaxRecord)
	out := make([]byte, 0, 1024)
	for {
		c.inRecord = false
		c.nc.SetReadDeadline(time.Now().Add(s.opt.IdleTimeout))
		if s.closing.Load() {
			return
		}
		req, err := rr.Next()
		if err != nil {
			switch {
			case errors.Is(err, rpc.ErrRecordTooLarge):
				s.Stat.TooLarge.Add(1)
				s.log.Debug("server: record too large, closing", "netid", c.caller.Netid,
					"from", c.caller.Addr.String())
			case err == io.EOF, isTimeout(err), errors.Is(err, net.ErrClosed), s.closing.Load():
			default:
				s.Stat.Errors.Add(1)
				s.log.Debug("server: read", "netid", c.caller.Netid, "from", c.caller.Addr.String(), "err", err)
			}
			return
		}
		s.Stat.Records.Add(1)
		b, start := rpc.BeginRecord(out[:0])
		reply, send, ok := s.serve(b, req, &c.caller)
		if !ok {
			return // the handler panicked: the connection's state is unknown
		}
		c.lastActive.Store(time.Now().UnixNano())
		if send {
			rpc.EndRecord(reply, start)
			c.nc.SetWriteDeadline(time.Now().Add(s.opt.WriteTimeout))
			if _, err := c.nc.Write(reply); err != nil {
				return
			}
		}
		if cap(reply) <= 64<<10 {
			out = reply[:0]
		}
	}
}
