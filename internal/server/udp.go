package server

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/openrpcbind/rpcbind/internal/access"
)

// UDPBatch is the number of datagrams a UDP reader takes from the kernel in
// one recvmmsg and answers in one sendmmsg. Under load it turns two system
// calls and a goroutine wake-up per datagram into two per batch; an idle
// daemon pays for it only in buffers (UDPBatch × UDPBufSize per reader).
const UDPBatch = 16

// udpReader is one reader goroutine of a UDP socket with its own buffers,
// so that readers never share memory and the steady state allocates nothing.
// It waits for the socket in the runtime's poller (syscall.RawConn) and
// moves datagrams with recvmmsg/sendmmsg.
type udpReader struct {
	s      *Server
	uc     *net.UDPConn
	rc     syscall.RawConn
	netid  string
	local  netip.AddrPort // bound address; Dst when no packet info arrives
	caller access.Caller

	// Receive side, one slot per datagram of a batch.
	rbuf  []byte                  // UDPBatch × UDPBufSize
	oob   []byte                  // UDPBatch × oobSize: received control messages
	names []unix.RawSockaddrInet6 // sources; also the destinations of the replies
	riov  []unix.Iovec            //
	rmsg  []unix.Mmsghdr          //
	recvd int                     // datagrams of the last recvmmsg
	rerr  unix.Errno              // its error
	recv  func(fd uintptr) bool   // r.recvmmsg, bound once (a method value allocates)
	send  func(fd uintptr) bool   // r.sendmmsg
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
	if err := enablePktinfo(uc, sock.Netid == "udp6"); err != nil {
		// Without packet info, replies leave from the bound address, which
		// is only wrong on a wildcard socket of a multi-homed host.
		s.log.Warn("server: no packet info, replies may leave from another address",
			"netid", sock.Netid, "err", err)
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		s.log.Error("server: udp socket", "netid", sock.Netid, "err", err)
		return
	}
	local := uc.LocalAddr().(*net.UDPAddr).AddrPort()
	s.mu.Lock()
	s.packets = append(s.packets, uc)
	s.mu.Unlock()
	for i := 0; i < s.opt.UDPReaders; i++ {
		r := newUDPReader(s, uc, rc, sock.Netid, netip.AddrPortFrom(local.Addr().Unmap(), local.Port()))
		s.loopStarting()
		go r.loop()
	}
}

func newUDPReader(s *Server, uc *net.UDPConn, rc syscall.RawConn, netid string, local netip.AddrPort) *udpReader {
	r := &udpReader{
		s: s, uc: uc, rc: rc, netid: netid, local: local,
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
	r.recv = r.recvmmsg
	r.send = r.sendmmsg
	return r
}

// recvmmsg is the RawConn.Read callback: false asks the poller to wait.
func (r *udpReader) recvmmsg(fd uintptr) bool {
	for k := range r.rmsg {
		h := &r.rmsg[k].Hdr
		h.Namelen = unix.SizeofSockaddrInet6
		h.SetControllen(oobSize)
		h.Flags = 0
	}
	n, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.rmsg[0])), UDPBatch, 0, 0, 0)
	if e == unix.EAGAIN || e == unix.EINTR {
		return false
	}
	r.recvd, r.rerr = int(n), e
	return true
}

// sendmmsg is the RawConn.Write callback; a full socket buffer waits.
func (r *udpReader) sendmmsg(fd uintptr) bool {
	for r.sent < r.nout {
		n, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&r.smsg[r.sent])), uintptr(r.nout-r.sent), 0, 0, 0)
		switch e {
		case 0:
			r.sent += int(n)
		case unix.EAGAIN:
			return false
		case unix.EINTR:
		default:
			// This datagram failed (an unreachable destination, a bad
			// source): count it and go on with the others, as one
			// sendmsg per reply would.
			r.serr = e
			r.sfail++
			r.sent++
		}
	}
	return true
}

func (r *udpReader) loop() {
	defer r.s.wg.Done()
	var backoff time.Duration
	r.s.loopRunning()
	for {
		r.recvd, r.rerr = 0, 0
		err := r.rc.Read(r.recv)
		if err == nil && r.rerr != 0 {
			err = os.NewSyscallError("recvmmsg", r.rerr)
		}
		if err != nil {
			if r.s.closing.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			// Transient (ENOBUFS, ENOMEM...): log, back off, go on.
			r.s.Stat.Errors.Add(1)
			r.s.log.Error("server: udp read", "netid", r.netid, "err", err)
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		r.batch()
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
	if err := r.rc.Write(r.send); err != nil {
		if !r.s.closing.Load() {
			r.s.Stat.Errors.Add(1)
			r.s.log.Debug("server: udp write", "netid", r.netid, "err", err)
		}
		return
	}
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
