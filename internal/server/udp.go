package server

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"github.com/openrpcbind/rpcbind/internal/access"
)

// udpReader is one reader goroutine of a UDP socket with its own buffers,
// so that readers never share memory and the steady state allocates nothing.
type udpReader struct {
	s      *Server
	uc     *net.UDPConn
	netid  string
	local  netip.AddrPort // bound address; Dst when no packet info arrives
	rbuf   []byte
	oob    []byte // received control messages
	woob   []byte // control message of the reply
	out    []byte
	caller access.Caller
}

func (s *Server) startUDP(sock *Socket) {
	uc := sock.Packet
	if err := enablePktinfo(uc, sock.Netid == "udp6"); err != nil {
		// Without packet info, replies leave from the bound address, which
		// is only wrong on a wildcard socket of a multi-homed host.
		s.log.Warn("server: no packet info, replies may leave from another address",
			"netid", sock.Netid, "err", err)
	}
	local := uc.LocalAddr().(*net.UDPAddr).AddrPort()
	s.mu.Lock()
	s.packets = append(s.packets, uc)
	s.mu.Unlock()
	for i := 0; i < s.opt.UDPReaders; i++ {
		r := &udpReader{
			s: s, uc: uc, netid: sock.Netid,
			local: netip.AddrPortFrom(local.Addr().Unmap(), local.Port()),
			rbuf:  make([]byte, UDPBufSize),
			oob:   make([]byte, oobSize),
			woob:  make([]byte, oobSize),
			out:   make([]byte, 0, UDPBufSize),
		}
		s.wg.Add(1)
		go r.loop()
	}
}

func (r *udpReader) loop() {
	defer r.s.wg.Done()
	var backoff time.Duration
	for {
		n, oobn, flags, src, err := r.uc.ReadMsgUDPAddrPort(r.rbuf, r.oob)
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
		r.s.Stat.UDPIn.Add(1)
		if flags&syscall.MSG_TRUNC != 0 {
			r.s.Stat.UDPTruncated.Add(1)
		}
		r.handle(r.rbuf[:n], r.oob[:oobn], src)
	}
}

func (r *udpReader) handle(req, oob []byte, src netip.AddrPort) {
	dst, spec, ifindex, ok := parsePktinfo(oob)
	c := &r.caller // a field: a local would escape through the interface call
	*c = access.Caller{
		Netid: r.netid,
		Addr:  netip.AddrPortFrom(src.Addr().Unmap(), src.Port()),
		Dst:   r.local,
		UID:   -1,
	}
	if ok {
		c.Dst = netip.AddrPortFrom(dst, r.local.Port())
	}
	reply, send, _ := r.s.serve(r.out[:0], req, c)
	if cap(reply) <= 4*UDPBufSize {
		r.out = reply[:0] // keep a grown buffer, within reason
	}
	if !send {
		r.s.Stat.UDPSilent.Add(1)
		return
	}
	var woob []byte
	if ok {
		woob = appendReplyPktinfo(r.woob[:0], spec, ifindex)
	}
	if _, _, err := r.uc.WriteMsgUDPAddrPort(reply, woob, src); err != nil {
		if !r.s.closing.Load() {
			r.s.Stat.Errors.Add(1)
			r.s.log.Debug("server: udp write", "netid", r.netid, "to", src.String(), "err", err)
		}
		return
	}
	r.s.Stat.UDPOut.Add(1)
}

// isTimeout reports a deadline error.
func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }
