//go:build linux

package main

// The cheap engines. The generator shares the machine's cores with the
// daemon it measures, so every cycle it spends is taken from the daemon:
// instead of a goroutine (and a net.Conn, a deadline timer and a few
// allocations) per call, a few workers each multiplex many logical clients.
// Every logical client still has exactly one call outstanding (closed loop)
// and its latency is measured per call, matched by XID.
//
//   - UDP: a connected socket per worker; calls leave in one sendmmsg, replies
//     come in with recvmmsg (MSG_WAITFORONE), raw blocking system calls with
//     SO_RCVTIMEO as the tick for timeouts.
//   - TCP and the local socket: one connection per logical client, all of a
//     worker's in one epoll set; a reply is read into the connection's
//     buffer and the next call written at once.

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Engine limits.
const (
	tick       = 20 * time.Millisecond // SO_RCVTIMEO / epoll timeout: timeouts and the end are checked this often
	udpRecvBuf = 9000                  // the daemon's largest UDP reply (RPC_MAXDATASIZE)
	clientBits = 12                    // XID = client<<20 | sequence; -c is at most 4096
	seqBits    = 32 - clientBits
	seqMask    = 1<<seqBits - 1
)

// lclient is one logical client.
type lclient struct {
	xid uint32
	t0  time.Duration // since the run's start; when the call left
	out []byte        // the call message (with a record mark for streams)
	fd  int           // streams: the connection, -1 when closed
	in  []byte        // streams: bytes of the reply received so far
	dir bool          // streams: reply complete awaiting the next send
}

// workerResult is what one worker counted.
type workerResult struct {
	done, timeouts, errs int64
	samples              []time.Duration
}

// engine holds what every worker shares.
type engine struct {
	c        config
	tmpl     []byte
	start    time.Time
	stop     time.Duration // since start
	done     atomic.Int64  // calls completed over all workers (for -n)
	maxLocal int           // latency samples kept per worker
}

func (e *engine) now() time.Duration { return time.Since(e.start) }

// more reports whether new calls may still be sent.
func (e *engine) more(ctx context.Context, now time.Duration) bool {
	if now >= e.stop || ctx.Err() != nil {
		return false
	}
	return e.c.calls <= 0 || e.done.Load() < e.c.calls
}

func (e *engine) nextXID(ci int, cl *lclient) {
	cl.xid = uint32(ci)<<seqBits | (cl.xid+1)&seqMask
}

func (r *workerResult) sample(e *engine, lat time.Duration) {
	r.done++
	if len(r.samples) < e.maxLocal {
		r.samples = append(r.samples, lat)
	}
}

// sockaddr resolves the -addr of a transport.
func sockaddr(c config) (family int, sa unix.Sockaddr, err error) {
	if c.transport == "unix" {
		return unix.AF_UNIX, &unix.SockaddrUnix{Name: c.addr}, nil
	}
	ap, err := netip.ParseAddrPort(c.addr)
	if err != nil {
		return 0, nil, fmt.Errorf("-addr: %w", err)
	}
	if ap.Addr().Is4() || ap.Addr().Is4In6() {
		return unix.AF_INET, &unix.SockaddrInet4{Addr: ap.Addr().Unmap().As4(), Port: int(ap.Port())}, nil
	}
	return unix.AF_INET6, &unix.SockaddrInet6{Addr: ap.Addr().As16(), Port: int(ap.Port())}, nil
}

// workers splits the clients among the workers: with -workers 0, one
// worker per 64 clients, at most GOMAXPROCS.
func splitClients(clients, workers int) [][2]int {
	if workers <= 0 {
		workers = (clients + 63) / 64
	}
	workers = max(1, min(workers, clients))
	var parts [][2]int
	for w := 0; w < workers; w++ {
		lo, hi := w*clients/workers, (w+1)*clients/workers
		if hi > lo {
			parts = append(parts, [2]int{lo, hi})
		}
	}
	return parts
}

// runEngine runs the closed loop with the cheap engines; ok is false for a
// transport they do not serve (tcpconn).
func runEngine(ctx context.Context, c config, tmpl []byte) (res workerResult, elapsed time.Duration, ok bool, err error) {
	var work func(ctx context.Context, e *engine, lo, hi int) (workerResult, error)
	switch c.transport {
	case "udp":
		work = udpWorker
	case "tcp", "unix":
		work = streamWorker
	default:
		return res, 0, false, nil
	}
	parts := splitClients(c.clients, c.workers)
	e := &engine{c: c, tmpl: tmpl, start: time.Now(), stop: c.duration, maxLocal: maxSamples / len(parts)}
	type out struct {
		r   workerResult
		err error
	}
	ch := make(chan out, len(parts))
	for _, p := range parts {
		go func(lo, hi int) {
			r, err := work(ctx, e, lo, hi)
			ch <- out{r, err}
		}(p[0], p[1])
	}
	for range parts {
		o := <-ch
		if o.err != nil && err == nil {
			err = o.err
		}
		res.done += o.r.done
		res.timeouts += o.r.timeouts
		res.errs += o.r.errs
		res.samples = append(res.samples, o.r.samples...)
	}
	return res, min(e.now(), max(e.stop, time.Millisecond)), true, err
}

// udpWorker serves clients [lo, hi) over one connected UDP socket.
func udpWorker(ctx context.Context, e *engine, lo, hi int) (res workerResult, err error) {
	family, sa, err := sockaddr(e.c)
	if err != nil {
		return res, err
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return res, fmt.Errorf("udp socket: %w", err)
	}
	defer unix.Close(fd)
	tv := unix.NsecToTimeval(int64(tick))
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 1<<20)
	if err := unix.Connect(fd, sa); err != nil {
		return res, fmt.Errorf("udp connect: %w", err)
	}
	n := hi - lo
	cls := make([]lclient, n)
	for i := range cls {
		cls[i].out = append([]byte(nil), e.tmpl...)
	}
	// Receive slots: one per client, each with its own buffer.
	rbuf := make([]byte, n*udpRecvBuf)
	riov := make([]unix.Iovec, n)
	rmsg := make([]unix.Mmsghdr, n)
	for i := range rmsg {
		riov[i].Base = &rbuf[i*udpRecvBuf]
		riov[i].SetLen(udpRecvBuf)
		rmsg[i].Hdr.Iov = &riov[i]
		rmsg[i].Hdr.SetIovlen(1)
	}
	siov := make([]unix.Iovec, n)
	smsg := make([]unix.Mmsghdr, n)
	pending := make([]int, 0, n) // clients whose next call is due
	res.samples = make([]time.Duration, 0, min(e.maxLocal, 1<<16))
	for i := range cls {
		pending = append(pending, i)
	}
	outstanding := 0
	lastCheck := time.Duration(0)
	for {
		now := e.now()
		if e.more(ctx, now) && len(pending) > 0 {
			for k, i := range pending {
				cl := &cls[i]
				e.nextXID(lo+i, cl)
				binary.BigEndian.PutUint32(cl.out, cl.xid)
				cl.t0 = now
				siov[k].Base = &cl.out[0]
				siov[k].SetLen(len(cl.out))
				smsg[k].Hdr.Iov = &siov[k]
				smsg[k].Hdr.SetIovlen(1)
			}
			for sent := 0; sent < len(pending); {
				m, errno := mmsg(unix.SYS_SENDMMSG, fd, smsg[sent:len(pending)], 0)
				if errno != 0 {
					if errno == unix.EINTR || errno == unix.EAGAIN || errno == unix.ENOBUFS {
						continue
					}
					if errno == unix.ECONNREFUSED { // an ICMP error of an earlier datagram
						res.errs++
						continue
					}
					return res, fmt.Errorf("sendmmsg: %w", errno)
				}
				sent += m
			}
			outstanding += len(pending)
			pending = pending[:0]
		} else if !e.more(ctx, now) {
			return res, nil
		}
		m, errno := mmsg(unix.SYS_RECVMMSG, fd, rmsg, unix.MSG_WAITFORONE)
		now = e.now()
		switch errno {
		case 0:
		case unix.EAGAIN, unix.EINTR:
			m = 0
		case unix.ECONNREFUSED:
			res.errs++
			m = 0
		default:
			return res, fmt.Errorf("recvmmsg: %w", errno)
		}
		for k := 0; k < m; k++ {
			b := rbuf[k*udpRecvBuf : k*udpRecvBuf+int(rmsg[k].Len)]
			if len(b) < 4 {
				continue
			}
			xid := binary.BigEndian.Uint32(b)
			i := int(xid>>seqBits) - lo
			if i < 0 || i >= n || cls[i].xid != xid || cls[i].t0 < 0 {
				continue // stale: a reply after its timeout
			}
			cl := &cls[i]
			if check(b, xid) != nil {
				res.errs++
			} else {
				res.sample(e, now-cl.t0)
			}
			cl.t0 = -1
			outstanding--
			pending = append(pending, i)
		}
		if e.c.calls > 0 && m > 0 {
			e.done.Add(int64(m))
		}
		if now-lastCheck >= tick {
			lastCheck = now
			for i := range cls {
				if cls[i].t0 >= 0 && now-cls[i].t0 > e.c.timeout {
					res.timeouts++
					cls[i].t0 = -1
					outstanding--
					pending = append(pending, i)
				}
			}
		}
	}
}

// mmsg is sendmmsg/recvmmsg on a blocking socket.
func mmsg(trap uintptr, fd int, msgs []unix.Mmsghdr, flags int) (int, unix.Errno) {
	if len(msgs) == 0 {
		return 0, 0
	}
	r, _, errno := unix.Syscall6(trap, uintptr(fd), uintptr(unsafe.Pointer(&msgs[0])), uintptr(len(msgs)), uintptr(flags), 0, 0)
	return int(r), errno
}

// streamWorker serves clients [lo, hi), one connection each, from one epoll
// set. A timed-out or broken connection is closed and dialled again for
// the client's next call, as a client with a deadline would.
func streamWorker(ctx context.Context, e *engine, lo, hi int) (res workerResult, err error) {
	family, sa, err := sockaddr(e.c)
	if err != nil {
		return res, err
	}
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return res, err
	}
	defer unix.Close(ep)
	n := hi - lo
	cls := make([]lclient, n)
	msgLen := len(e.tmpl)
	for i := range cls {
		cl := &cls[i]
		cl.fd = -1
		cl.out = binary.BigEndian.AppendUint32(make([]byte, 0, 4+msgLen), 0x80000000|uint32(msgLen))
		cl.out = append(cl.out, e.tmpl...)
		cl.in = make([]byte, 0, 4096)
		cl.t0 = -1
	}
	defer func() {
		for i := range cls {
			if cls[i].fd >= 0 {
				unix.Close(cls[i].fd)
			}
		}
	}()
	drop := func(i int) {
		if cls[i].fd >= 0 {
			unix.EpollCtl(ep, unix.EPOLL_CTL_DEL, cls[i].fd, nil)
			unix.Close(cls[i].fd)
			cls[i].fd = -1
		}
		cls[i].t0 = -1
	}
	// send dials when needed and writes client i's next call; false after
	// an error it has counted.
	send := func(i int, now time.Duration) bool {
		cl := &cls[i]
		if cl.fd < 0 {
			fd, err := dialStream(family, sa, e.c.timeout)
			if err != nil {
				res.errs++
				return false
			}
			cl.fd = fd
			ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(i)}
			if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
				drop(i)
				res.errs++
				return false
			}
		}
		e.nextXID(lo+i, cl)
		binary.BigEndian.PutUint32(cl.out[4:], cl.xid)
		cl.in = cl.in[:0]
		cl.t0 = now
		// A closed-loop client's call is small and the socket buffer is
		// empty: one write takes it whole, or the connection is broken.
		if w, err := unix.Write(cl.fd, cl.out); err != nil || w != len(cl.out) {
			drop(i)
			res.errs++
			return false
		}
		return true
	}
	now := e.now()
	for i := range cls {
		if e.more(ctx, now) {
			send(i, now)
		}
	}
	events := make([]unix.EpollEvent, n)
	lastCheck := time.Duration(0)
	for {
		now = e.now()
		if !e.more(ctx, now) {
			return res, nil
		}
		k, err := unix.EpollWait(ep, events, int(tick/time.Millisecond))
		if err != nil && err != unix.EINTR {
			return res, fmt.Errorf("epoll_wait: %w", err)
		}
		now = e.now()
		completed := int64(0)
		for _, ev := range events[:max(k, 0)] {
			i := int(ev.Fd)
			cl := &cls[i]
			if cl.fd < 0 {
				continue
			}
			reply, st := readReply(cl)
			switch st {
			case replyPartial:
				continue
			case replyBroken:
				drop(i)
				res.errs++
			case replyDone:
				if cl.t0 >= 0 {
					if check(reply, cl.xid) != nil {
						res.errs++
					} else {
						res.sample(e, now-cl.t0)
						completed++
					}
				}
				cl.t0 = -1
			}
			if e.more(ctx, now) {
				send(i, now)
			}
		}
		if e.c.calls > 0 && completed > 0 {
			e.done.Add(completed)
		}
		if now-lastCheck >= tick {
			lastCheck = now
			for i := range cls {
				cl := &cls[i]
				switch {
				case cl.t0 >= 0 && now-cl.t0 > e.c.timeout:
					res.timeouts++
					drop(i)
				case cl.t0 >= 0:
					continue
				}
				if e.more(ctx, now) {
					send(i, now) // idle after an error or a timeout: try again
				}
			}
		}
	}
}

type replyState int

const (
	replyPartial replyState = iota
	replyDone
	replyBroken
)

// readReply reads what the connection has and reports whether a whole
// record (all fragments) is in; reply is its body, fragments joined in place.
func readReply(cl *lclient) (reply []byte, st replyState) {
	if len(cl.in) == cap(cl.in) {
		if cap(cl.in) >= maxReply+64<<10 {
			return nil, replyBroken
		}
		cl.in = append(cl.in, make([]byte, cap(cl.in))...)[:len(cl.in)]
	}
	m, err := unix.Read(cl.fd, cl.in[len(cl.in):cap(cl.in)])
	if err == unix.EAGAIN || err == unix.EINTR {
		return nil, replyPartial
	}
	if err != nil || m <= 0 {
		return nil, replyBroken
	}
	cl.in = cl.in[:len(cl.in)+m]
	// Walk the fragments; join them by moving each body down over the
	// marks once the record is complete.
	off := 0
	for {
		if len(cl.in)-off < 4 {
			return nil, replyPartial
		}
		mark := binary.BigEndian.Uint32(cl.in[off:])
		fl := int(mark & 0x7fffffff)
		if fl > maxReply {
			return nil, replyBroken
		}
		if len(cl.in)-off-4 < fl {
			return nil, replyPartial
		}
		off += 4 + fl
		if mark&0x80000000 != 0 {
			break
		}
	}
	if off != len(cl.in) {
		return nil, replyBroken // bytes after the reply: not a closed loop
	}
	w, r := 0, 0
	for r < len(cl.in) {
		mark := binary.BigEndian.Uint32(cl.in[r:])
		fl := int(mark & 0x7fffffff)
		w += copy(cl.in[w:], cl.in[r+4:r+4+fl])
		r += 4 + fl
	}
	return cl.in[:w], replyDone
}

// dialStream connects a blocking socket, then makes it non-blocking for
// epoll.
func dialStream(family int, sa unix.Sockaddr, timeout time.Duration) (int, error) {
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	tv := unix.NsecToTimeval(int64(timeout))
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv) // bounds connect
	if err := unix.Connect(fd, sa); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if family != unix.AF_UNIX {
		unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// rawDgram is a UDP client on a blocking connected socket for the
// sequential workloads (SET/UNSET, preload): the caller's thread sleeps in
// recv(2) and wakes on the reply, without the runtime poller's hand-offs,
// so the round trip measures the daemon rather than the generator.
type rawDgram struct {
	fd  int
	buf []byte
}

func dialRawUDP(c config) (conn, error) {
	family, sa, err := sockaddr(c)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	tv := unix.NsecToTimeval(int64(c.timeout))
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	if err := unix.Connect(fd, sa); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &rawDgram{fd: fd, buf: make([]byte, 65536)}, nil
}

func (d *rawDgram) call(msg []byte, deadline time.Time) ([]byte, error) {
	if _, err := unix.Write(d.fd, msg); err != nil {
		return nil, err
	}
	xid := binary.BigEndian.Uint32(msg)
	for {
		n, err := unix.Read(d.fd, d.buf)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			return nil, errTimeout
		}
		if err != nil {
			return nil, err
		}
		if n >= 4 && binary.BigEndian.Uint32(d.buf) == xid {
			return d.buf[:n], nil
		}
		if time.Now().After(deadline) {
			return nil, errTimeout
		}
	}
}

func (d *rawDgram) close() { unix.Close(d.fd) }

// errTimeout is a net.Error timeout, counted as such by the callers.
var errTimeout error = timeoutError{}

type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }
