package server

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/openrpcbind/rpcbind/internal/access"
	"github.com/openrpcbind/rpcbind/internal/rpc"
)

// streamConn is an open stream connection of either engine, as the
// Server's accounting (cap, reaping, shutdown) sees it.
type streamConn interface {
	active() int64        // unix nanoseconds of accept or the last reply
	wake()                // shutdown: stop waiting for the next request
	kill()                // close it now (reaped, or shutdown out of time)
	peer() *access.Caller // who it is budgeted to (conns.go)
}

// conn is one stream connection, served by one goroutine: requests are read,
// handled and answered in order, so pipelined calls get ordered replies.
//
// Fairness needs no per-turn budget here: each connection has its own
// goroutine, the runtime preempts a goroutine that runs for 10 ms and
// runs a connection whose data arrives on an idle P at once, so a
// pipelining peer delays another by at most a scheduler quantum, not by
// its backlog. Memory: a reply the socket does not take at once is held by
// the goroutine blocked writing it, and is charged to the held-bytes
// budget (with its shared tail) until written; a shed connection is closed,
// which ends the blocked write.
type conn struct {
	s          *Server
	nc         net.Conn
	caller     access.Caller
	hold       hold
	lastActive atomic.Int64 // unix nanoseconds of accept or the last reply
	inRecord   bool         // a record has started arriving (owned by the goroutine)

	// Reads go through a small buffer: a call's record mark and body
	// arrive together, and one read(2) takes both (and pipelined calls).
	rbuf       []byte
	rpos, rend int
	recordDL   bool // the record deadline is set for the current record

	// Replies are first written with one non-blocking writev of the reply
	// and its shared tail; only what the socket does not take at once
	// waits, under a write deadline.
	rc     syscall.RawConn // nil: plain Write with a deadline
	iov    [2]unix.Iovec
	niov   int
	wn     int
	werr   unix.Errno
	writev func(fd uintptr) bool // c.doWritev, bound once
}

// streamReadBuf is the read buffer of a connection; a longer record is read
// straight into the RecordReader's buffer.
const streamReadBuf = 1024

func (c *conn) active() int64 { return c.lastActive.Load() }
func (c *conn) wake()         { c.nc.SetReadDeadline(time.Unix(1, 0)) }
func (c *conn) kill()         { c.nc.Close() }

func (s *Server) startStream(sock *Socket) {
	s.mu.Lock()
	s.listeners = append(s.listeners, sock.Listener)
	startLoops := s.opt.StreamEngine == EngineEpoll && s.loops == nil
	s.mu.Unlock()
	if startLoops {
		s.startLoops()
	}
	s.loopStarting()
	if s.loops != nil && s.startRawAccept(sock) {
		return
	}
	go s.acceptLoop(sock)
}

func (s *Server) acceptLoop(sock *Socket) {
	defer s.wg.Done()
	var backoff time.Duration
	s.loopRunning()
	for {
		nc, err := sock.Listener.Accept()
		if err != nil {
			if !s.acceptFailed(sock.Netid, err, &backoff) {
				return
			}
			continue
		}
		backoff = 0
		s.Stat.Accepted.Add(1)
		caller := access.Caller{Netid: sock.Netid, UID: -1}
		if sock.Netid == "local" {
			caller.UID, caller.PID = peerCred(nc)
		} else {
			caller.Addr = addrPort(nc.RemoteAddr())
			caller.Dst = addrPort(nc.LocalAddr())
		}
		if s.loops != nil && s.handOff(nc, &caller) {
			continue
		}
		c := newConn(s, nc, sock.Netid)
		c.caller = caller
		c.lastActive.Store(time.Now().UnixNano())
		if !s.addConn(c) {
			nc.Close()
			continue
		}
		go c.serve()
	}
}

// acceptFailed handles an accept error of either accept loop: false when
// the listener is closed (the loop ends); otherwise (EMFILE and friends)
// it counts and logs the error, reaps and sleeps a growing backoff, so the
// loop never spins (the CVE-2018-14621 loop).
func (s *Server) acceptFailed(netid string, err error, backoff *time.Duration) bool {
	if s.closing.Load() || errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrClosed) {
		return false
	}
	s.Stat.Errors.Add(1)
	s.log.Error("server: accept", "netid", netid, "err", err)
	s.reap(time.Now())
	*backoff = min(max(2**backoff, 5*time.Millisecond), time.Second)
	time.Sleep(*backoff)
	return true
}

func newConn(s *Server, nc net.Conn, netid string) *conn {
	c := &conn{s: s, nc: nc, caller: access.Caller{Netid: netid, UID: -1}, rbuf: make([]byte, streamReadBuf)}
	c.hold.c = c
	if sc, ok := nc.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			c.rc = rc
			c.writev = c.doWritev
		}
	}
	return c
}

func addrPort(a net.Addr) netip.AddrPort {
	if t, ok := a.(*net.TCPAddr); ok {
		ap := t.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}

// Read implements io.Reader for the RecordReader, from the read buffer
// when it holds bytes. Before going to the network it sets the deadline:
// the idle one between records; once part of a record has arrived, the rest
// must come within RecordTimeout (slow-loris), set once per record.
func (c *conn) Read(p []byte) (int, error) {
	if c.rpos < c.rend {
		n := copy(p, c.rbuf[c.rpos:c.rend])
		c.rpos += n
		c.inRecord = true
		return n, nil
	}
	s := c.s
	switch {
	case !c.inRecord:
		c.nc.SetReadDeadline(time.Now().Add(s.opt.IdleTimeout))
	case !c.recordDL:
		c.recordDL = true
		c.nc.SetReadDeadline(time.Now().Add(s.opt.RecordTimeout))
	}
	if s.closing.Load() {
		c.nc.SetReadDeadline(time.Unix(1, 0))
	}
	if len(p) >= len(c.rbuf) {
		n, err := c.nc.Read(p)
		if n > 0 {
			c.inRecord = true
		}
		return n, err
	}
	n, err := c.nc.Read(c.rbuf)
	if n <= 0 {
		return 0, err
	}
	c.inRecord = true
	c.rpos, c.rend = copy(p, c.rbuf[:n]), n
	return c.rpos, nil
}

func (c *conn) serve() {
	s := c.s
	defer s.wg.Done()
	defer c.nc.Close()
	defer s.removeConn(c)
	defer s.held.release(&c.hold)
	rr := rpc.NewRecordReader(c, s.opt.MaxRecord)
	out := make([]byte, 0, 1024)
	for {
		c.inRecord, c.recordDL = false, false
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
		reply, tail, send, ok := s.serveTail(b, req, &c.caller)
		if !ok {
			return // the handler panicked: the connection's state is unknown
		}
		c.lastActive.Store(time.Now().UnixNano())
		if send {
			if len(reply)-start-4+len(tail) > maxFragment {
				reply, tail = append(reply, tail...), nil // cannot happen with a 32-bit table; stay correct
			}
			endRecord(reply, start, len(tail))
			if err := c.write(reply, tail); err != nil {
				return
			}
		}
		if cap(reply) <= 64<<10 {
			out = reply[:0]
		}
	}
}

// maxFragment is the largest record fragment (RFC 5531 §11: 31 bits).
const maxFragment = 1<<31 - 1

// endRecord patches the record mark at b[start:] for a last fragment that
// is the rest of b plus extra bytes written after it.
func endRecord(b []byte, start, extra int) {
	n := len(b) - start - 4 + extra
	binary.BigEndian.PutUint32(b[start:], 1<<31|uint32(n))
}

// write sends reply and tail: one non-blocking writev, then, for what the
// socket did not take, blocking writes under the write deadline.
func (c *conn) write(reply, tail []byte) error {
	whole := tail
	if c.rc != nil {
		c.niov = 0
		for _, b := range [2][]byte{reply, tail} {
			if len(b) > 0 {
				c.iov[c.niov].Base = unsafe.SliceData(b)
				c.iov[c.niov].SetLen(len(b))
				c.niov++
			}
		}
		c.wn, c.werr = 0, 0
		if err := c.rc.Write(c.writev); err != nil {
			return err
		}
		if c.werr != 0 && c.werr != unix.EAGAIN {
			return c.werr
		}
		if c.wn >= len(reply) {
			tail = tail[c.wn-len(reply):]
			reply = nil
		} else {
			reply = reply[c.wn:]
		}
		if len(reply)+len(tail) == 0 {
			return nil
		}
	}
	// What waits is held until written: the rest of the reply buffer and
	// the whole shared tail.
	if len(tail) == 0 {
		whole = nil
	}
	now := time.Now()
	c.hold.waiting.Store(now.UnixNano())
	if !c.s.held.charge(&c.hold, cap(reply), whole) {
		c.s.log.Debug("server: held-bytes budget spent, closing the heaviest holder",
			"netid", c.caller.Netid, "from", c.caller.Addr.String())
		return errShed
	}
	c.nc.SetWriteDeadline(now.Add(c.s.opt.WriteTimeout))
	bufs := net.Buffers{reply, tail}
	_, err := bufs.WriteTo(c.nc)
	c.hold.waiting.Store(0)
	c.s.held.charge(&c.hold, 0, nil)
	return err
}

// errShed ends a connection closed to keep held memory within budget.
var errShed = errors.New("server: held-bytes budget spent")

// doWritev is the RawConn.Write callback: it never waits (true), the
// caller goes on with what was not written.
func (c *conn) doWritev(fd uintptr) bool {
	for {
		n, _, e := unix.Syscall(unix.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&c.iov[0])), uintptr(c.niov))
		if e == unix.EINTR {
			continue
		}
		if e == 0 {
			c.wn = int(n)
		}
		c.werr = e
		return true
	}
}
