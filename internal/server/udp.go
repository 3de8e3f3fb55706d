package server

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/openrpcbind/rpcbind/internal/access"
)

// UDPBatch is the number of datagrams a UDP reader takes from the kernel in
// one recvmmsg and answers in one sendmmsg. Under load it turns two system
// calls per datagram into two per batch; an idle daemon pays for it only in
// buffers (UDPBatch × UDPBufSize per reader).
const UDPBatch = 16

// udpWake bounds a reader's wait for a datagram (SO_RCVTIMEO): a backstop
// for Shutdown, which wakes the readers with empty datagrams to the
// socket's own address and repeats them until every reader has gone
// (udpKick); a firewall or a missing loopback can lose them. An idle
// reader wakes once per udpWake, which costs nothing measurable. A
// variable only so that a test can take the backstop away.
var udpWake = time.Second

// Waits of a UDP reader (SO_SNDTIMEO) and of Shutdown.
const (
	// udpSendWait bounds the wait for room in the socket's send buffer:
	// the replies of a batch the kernel has not taken by then are dropped
	// (and counted in Errors), as a client's retransmission would be
	// answered anyway.
	udpSendWait = time.Second
	// udpKick is the interval at which Shutdown repeats its wake-up
	// datagrams while readers remain.
	udpKick = 5 * time.Millisecond
)

// A UDP socket is served by UDPReaders readers, each a goroutine that waits
// in a blocking recvmmsg(MSG_WAITFORONE): one system call both waits and
// receives, and a call costs it and one sendmmsg, with no goroutine parked
// in the runtime's poller nor woken by it (each waiting reader holds a
// thread, and its P: see Waiters). The
// socket is detached from the poller (as the stream loops' connections
// are): a duplicate descriptor in blocking mode, the UDPConn closed. The
// UDPConn stays the socket's name for SendFrom (relayed replies), which
// sends through the duplicate.

// udpSock is a UDP socket served by blocking readers.
type udpSock struct {
	s     *Server
	uc    *net.UDPConn // closed once detached; the key of udpDetached
	netid string
	local netip.AddrPort // bound address, unmapped; Dst when no packet info arrives
	v6    bool

	mu      sync.RWMutex // fd against its close while SendFrom uses it
	fd      int          // -1 once closed
	live    atomic.Int32 // readers not yet gone
	readers []*udpReader
}

// udpDetached maps each detached UDPConn to its udpSock, for SendFrom.
var udpDetached sync.Map

// udpReader is one reader of a UDP socket with its own buffers, so that
// readers never share memory and the steady state allocates nothing.
type udpReader struct {
	s       *Server
	u       *udpSock
	fd      int // u.fd, which stays open while a reader runs
	netid   string
	local   netip.AddrPort
	caller  access.Caller
	yielded time.Duration // last yield, since s.epoch

	// Receive side, one slot per datagram of a batch.
	rbuf  []byte                  // UDPBatch × UDPBufSize
	oob   []byte                  // UDPBatch × oobSize: received control messages
	names []unix.RawSockaddrInet6 // sources; also the destinations of the replies
	riov  []unix.Iovec            //
	rmsg  []unix.Mmsghdr          //
	recvd int                     // datagrams of the last recvmmsg
	dirty int                     // headers the kernel wrote since they were reset
	sent  int                     // replies of the batch already sent
	serr  unix.Errno              // the last failed datagram's error
	sfail int                     // datagrams that failed
	nout  int                     // replies in the batch
	woob  []byte                  // UDPBatch × oobSize: control messages of the replies
	out   []byte                  // replies, back to back
	ends  [UDPBatch]int           // reply k is out[ends[k-1]:ends[k]]
	siov  []unix.Iovec            //
	smsg  []unix.Mmsghdr          //
	slot  [UDPBatch]int           // receive slot of reply k (its name and oob)
	wlen  [UDPBatch]int           // control message length of reply k
}

func (s *Server) startUDP(sock *Socket) {
	uc := sock.Packet
	v6 := sock.Netid == "udp6"
	if err := enablePktinfo(uc, v6); err != nil {
		// Without packet info, replies leave from the bound address, which
		// is only wrong on a wildcard socket of a multi-homed host.
		s.log.Warn("server: no packet info, replies may leave from another address",
			"netid", sock.Netid, "err", err)
	}
	fd, err := detachUDP(uc)
	if err != nil {
		s.log.Error("server: udp socket", "netid", sock.Netid, "err", err)
		return
	}
	local := uc.LocalAddr().(*net.UDPAddr).AddrPort()
	u := &udpSock{s: s, uc: uc, netid: sock.Netid, v6: v6, fd: fd,
		local: netip.AddrPortFrom(local.Addr().Unmap(), local.Port())}
	for range s.opt.UDPReaders {
		u.readers = append(u.readers, newUDPReader(s, u))
	}
	u.live.Store(int32(len(u.readers)))
	udpDetached.Store(uc, u)
	s.mu.Lock()
	s.udps = append(s.udps, u)
	s.mu.Unlock()
	for _, r := range u.readers {
		s.loopStarting()
		go r.loop()
	}
}

// detachUDP takes uc's socket out of the runtime's poller: a duplicate
// descriptor in blocking mode with the udpWake and udpSendWait timeouts,
// and uc closed (so that the poller neither watches nor wakes for it).
func detachUDP(uc *net.UDPConn) (int, error) {
	rc, err := uc.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	var derr error
	if err := rc.Control(func(f uintptr) {
		fd, derr = unix.FcntlInt(f, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return -1, err
	}
	if derr != nil {
		return -1, fmt.Errorf("dup: %w", derr)
	}
	rcv, snd := unix.NsecToTimeval(udpWake.Nanoseconds()), unix.NsecToTimeval(udpSendWait.Nanoseconds())
	err = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &rcv)
	if err == nil {
		err = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &snd)
	}
	if err == nil {
		err = unix.SetNonblock(fd, false)
	}
	if err != nil {
		restoreUDP(fd)
		unix.Close(fd)
		return -1, err
	}
	uc.Close()
	return fd, nil
}

// restoreUDP puts a detached socket back as it came: non-blocking, without
// timeouts (systemd may pass it to the next daemon).
func restoreUDP(fd int) {
	var zero unix.Timeval
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &zero)
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &zero)
	unix.SetNonblock(fd, true)
}

// readerGone is called by each reader as it leaves; the last one puts the
// socket back as it came and closes it.
func (u *udpSock) readerGone() {
	if u.live.Add(-1) > 0 {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	restoreUDP(u.fd)
	unix.Close(u.fd)
	u.fd = -1
	udpDetached.Delete(u.uc)
}

// kick sends an empty datagram to u's address for each reader still
// there (a wildcard socket through the loopback address of its family);
// a reader woken by it sees that the server is closing. It reports
// whether any reader remains.
func (u *udpSock) kick() bool {
	n := int(u.live.Load())
	if n <= 0 {
		return false
	}
	to := u.local
	if to.Addr().IsUnspecified() {
		lo := netip.AddrFrom4([4]byte{127, 0, 0, 1})
		if u.v6 {
			lo = netip.IPv6Loopback()
		}
		to = netip.AddrPortFrom(lo, to.Port())
	}
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(to))
	if err != nil {
		return true // udpWake ends the readers' waits
	}
	defer c.Close()
	for range n {
		c.Write(nil)
	}
	return true
}

func newUDPReader(s *Server, u *udpSock) *udpReader {
	r := &udpReader{
		s: s, u: u, fd: u.fd, netid: u.netid, local: u.local,
		rbuf:  make([]byte, UDPBatch*UDPBufSize),
		oob:   make([]byte, UDPBatch*oobSize),
		names: make([]unix.RawSockaddrInet6, UDPBatch),
		riov:  make([]unix.Iovec, UDPBatch),
		rmsg:  make([]unix.Mmsghdr, UDPBatch),
		woob:  make([]byte, UDPBatch*oobSize),
		out:   make([]byte, 0, UDPBatch*256),
		siov:  make([]unix.Iovec, UDPBatch),
		smsg:  make([]unix.Mmsghdr, UDPBatch),
	}
	for k := range r.rmsg {
		r.riov[k].Base = &r.rbuf[k*UDPBufSize]
		r.riov[k].SetLen(UDPBufSize)
		h := &r.rmsg[k].Hdr
		h.Name = (*byte)(unsafe.Pointer(&r.names[k]))
		h.Iov = &r.riov[k]
		h.SetIovlen(1)
		h.Control = &r.oob[k*oobSize]
	}
	r.dirty = UDPBatch
	return r
}

// recvmmsg takes the datagrams that have arrived, up to UDPBatch. After a
// full batch it only looks (more may be queued); otherwise it waits for
// the first one (MSG_WAITFORONE), at most udpWake. A wait may end with
// EAGAIN (the timeout) or EINTR (a signal).
func (r *udpReader) recvmmsg() unix.Errno {
	for k := range r.rmsg[:r.dirty] {
		h := &r.rmsg[k].Hdr
		h.Namelen = unix.SizeofSockaddrInet6
		h.SetControllen(oobSize)
		h.Flags = 0
	}
	var n uintptr
	var e unix.Errno
	if r.recvd == UDPBatch {
		n, _, e = unix.RawSyscall6(unix.SYS_RECVMMSG, uintptr(r.fd), uintptr(unsafe.Pointer(&r.rmsg[0])), UDPBatch, unix.MSG_DONTWAIT, 0, 0)
		if e == unix.EAGAIN {
			n, _, e = unix.Syscall6(unix.SYS_RECVMMSG, uintptr(r.fd), uintptr(unsafe.Pointer(&r.rmsg[0])), UDPBatch, unix.MSG_WAITFORONE, 0, 0)
		}
	} else {
		n, _, e = unix.Syscall6(unix.SYS_RECVMMSG, uintptr(r.fd), uintptr(unsafe.Pointer(&r.rmsg[0])), UDPBatch, unix.MSG_WAITFORONE, 0, 0)
	}
	if e != 0 {
		r.recvd, r.dirty = 0, 1 // at most the first header was written
		return e
	}
	r.recvd, r.dirty = int(n), int(n)
	return 0
}

// sendmmsg sends the nout replies of the batch: at once when the socket
// has room, else waiting at most udpSendWait for it.
func (r *udpReader) sendmmsg() {
	wait := false
	for r.sent < r.nout {
		p, cnt := uintptr(unsafe.Pointer(&r.smsg[r.sent])), uintptr(r.nout-r.sent)
		var n uintptr
		var e unix.Errno
		if wait {
			n, _, e = unix.Syscall6(unix.SYS_SENDMMSG, uintptr(r.fd), p, cnt, 0, 0, 0)
		} else {
			n, _, e = unix.RawSyscall6(unix.SYS_SENDMMSG, uintptr(r.fd), p, cnt, unix.MSG_DONTWAIT, 0, 0)
		}
		switch e {
		case 0:
			r.sent += int(n)
		case unix.EAGAIN:
			if wait { // no room within udpSendWait: drop the rest
				r.serr = e
				r.sfail += r.nout - r.sent
				return
			}
			wait = true
		case unix.EINTR:
			if r.s.closing.Load() {
				r.serr = e
				r.sfail += r.nout - r.sent
				return
			}
		default:
			// This datagram failed (an unreachable destination, a bad
			// source): count it and go on with the others, as one
			// sendmsg per reply would.
			r.serr = e
			r.sfail++
			r.sent++
		}
	}
}

func (r *udpReader) loop() {
	defer r.s.wg.Done()
	defer r.u.readerGone()
	var backoff time.Duration
	r.s.loopRunning()
	for !r.s.closing.Load() {
		r.yield()
		switch e := r.recvmmsg(); e {
		case 0:
			backoff = 0
			if r.s.closing.Load() {
				return // what arrived since Shutdown (its wake-ups among it) is not served
			}
			r.batch()
		case unix.EAGAIN, unix.EINTR:
		default:
			// Transient (ENOBUFS, ENOMEM...): log, back off, go on.
			r.s.Stat.Errors.Add(1)
			r.s.log.Error("server: udp read", "netid", r.netid, "err", os.NewSyscallError("recvmmsg", e))
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			time.Sleep(backoff)
		}
	}
}

// yield passes through the scheduler before the reader waits, at most
// once per loopYield (see there).
func (r *udpReader) yield() {
	if now := time.Since(r.s.epoch); now-r.yielded >= loopYield {
		r.yielded = now
		runtime.Gosched()
	}
}

// batch answers the datagrams of the last recvmmsg and sends the replies.
func (r *udpReader) batch() {
	r.out = r.out[:0]
	r.nout = 0
	for k := 0; k < r.recvd; k++ {
		m := &r.rmsg[k]
		n := int(m.Len)
		r.s.Stat.UDPIn.Add(1)
		if m.Hdr.Flags&unix.MSG_TRUNC != 0 {
			r.s.Stat.UDPTruncated.Add(1)
			n = min(n, UDPBufSize)
		}
		src, ok := sockaddrAddrPort(&r.names[k], m.Hdr.Namelen)
		if !ok {
			continue
		}
		req := r.rbuf[k*UDPBufSize : k*UDPBufSize+n]
		oob := r.oob[k*oobSize : k*oobSize+int(m.Hdr.Controllen)]
		woob := r.woob[r.nout*oobSize : r.nout*oobSize]
		reply, woob, send := r.handle(r.out, req, oob, woob, src)
		if !send {
			continue
		}
		r.out = reply
		r.slot[r.nout] = k
		r.wlen[r.nout] = len(woob)
		r.ends[r.nout] = len(r.out)
		r.nout++
	}
	if r.nout > 0 {
		r.sendBatch()
	}
	if cap(r.out) > 4*UDPBatch*UDPBufSize {
		r.out = make([]byte, 0, UDPBatch*256) // do not keep a huge arena
	}
}

// sendBatch sends the nout replies of the batch with sendmmsg.
func (r *udpReader) sendBatch() {
	start := 0
	for j := 0; j < r.nout; j++ {
		k := r.slot[j]
		r.siov[j].Base = unsafe.SliceData(r.out[start:r.ends[j]])
		r.siov[j].SetLen(r.ends[j] - start)
		start = r.ends[j]
		h := &r.smsg[j].Hdr
		h.Name = (*byte)(unsafe.Pointer(&r.names[k]))
		h.Namelen = r.rmsg[k].Hdr.Namelen
		h.Iov = &r.siov[j]
		h.SetIovlen(1)
		h.Control = nil
		h.SetControllen(0)
		if r.wlen[j] > 0 {
			h.Control = &r.woob[j*oobSize]
			h.SetControllen(r.wlen[j])
		}
	}
	r.sent, r.serr, r.sfail = 0, 0, 0
	r.sendmmsg()
	r.s.Stat.UDPOut.Add(uint64(r.nout - r.sfail))
	if r.sfail != 0 {
		r.s.Stat.Errors.Add(uint64(r.sfail))
		if !r.s.closing.Load() {
			r.s.log.Debug("server: udp write", "netid", r.netid, "err", r.serr)
		}
	}
}

// handle serves one datagram: it appends the reply to out and the control
// message the reply must carry to woob.
func (r *udpReader) handle(out, req, oob, woob []byte, src netip.AddrPort) ([]byte, []byte, bool) {
	dst, spec, ifindex, ok := parsePktinfo(oob)
	c := &r.caller // a field: a local would escape through the interface call
	*c = access.Caller{
		Netid: r.netid,
		Addr:  src,
		Dst:   r.local,
		UID:   -1,
	}
	if ok {
		c.Dst = netip.AddrPortFrom(dst, r.local.Port())
	}
	start := len(out)
	reply, send, _ := r.s.serve(out, req, c)
	if !send {
		r.s.Stat.UDPSilent.Add(1)
		return reply[:start], woob, false
	}
	if ok {
		woob = appendReplyPktinfo(woob, spec, ifindex)
	}
	return reply, woob, true
}

// sockaddrAddrPort decodes a source address the kernel wrote; an
// IPv4-mapped IPv6 source is unmapped, as the Caller wants it. A link-local
// IPv6 source keeps its scope as a numeric zone.
func sockaddrAddrPort(sa *unix.RawSockaddrInet6, n uint32) (netip.AddrPort, bool) {
	switch sa.Family {
	case unix.AF_INET:
		if n < unix.SizeofSockaddrInet4 {
			return netip.AddrPort{}, false
		}
		s4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		p := (*[2]byte)(unsafe.Pointer(&s4.Port))
		return netip.AddrPortFrom(netip.AddrFrom4(s4.Addr), uint16(p[0])<<8|uint16(p[1])), true
	case unix.AF_INET6:
		if n < unix.SizeofSockaddrInet6 {
			return netip.AddrPort{}, false
		}
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		a := netip.AddrFrom16(sa.Addr).Unmap()
		if sa.Scope_id != 0 && a.Is6() {
			a = a.WithZone(strconv.FormatUint(uint64(sa.Scope_id), 10))
		}
		return netip.AddrPortFrom(a, uint16(p[0])<<8|uint16(p[1])), true
	}
	return netip.AddrPort{}, false
}

// isTimeout reports a deadline error.
func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }
