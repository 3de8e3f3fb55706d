package server

import (
	"io"
	"net"
	"net/netip"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/openrpcbind/rpcbind/internal/access"
)

// The UDP loop with a handler that answers a fixed 24-byte reply: measures
// the transport alone (read, pktinfo, dispatch, sendmsg), ping-pong.
func BenchmarkUDPLoop(b *testing.B) {
	reply := make([]byte, 24)
	h := HandlerFunc(func(out, req []byte, c *access.Caller) ([]byte, bool) {
		return append(out, reply...), true
	})
	s := New(h, Options{Log: quietLog(), UDPReaders: 1})
	defer s.Shutdown(b.Context())
	sock, err := listenUDP("udp", netip.MustParseAddrPort("0.0.0.0:0"))
	if err != nil {
		b.Fatal(err)
	}
	s.Start(sock)
	to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), sock.Packet.LocalAddr().(*net.UDPAddr).AddrPort().Port())
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req := make([]byte, 40)
	buf := make([]byte, 100)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.WriteToUDPAddrPort(req, to); err != nil {
			b.Fatal(err)
		}
		if _, _, err := c.ReadFromUDPAddrPort(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// The server side of one datagram must not allocate.
func TestUDPHandleAllocs(t *testing.T) {
	h := HandlerFunc(func(out, req []byte, c *access.Caller) ([]byte, bool) {
		return append(out, req...), true
	})
	s := New(h, Options{Log: quietLog(), UDPReaders: 1})
	sock, err := listenUDP("udp", netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	sink, _ := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	defer sink.Close()
	fd, err := detachUDP(sock.Packet)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	u := &udpSock{s: s, uc: sock.Packet, netid: "udp", local: netip.MustParseAddrPort("127.0.0.1:111"), fd: fd}
	r := newUDPReader(s, u)
	oob := appendReplyPktinfo(nil, netip.MustParseAddr("127.0.0.1"), 0)
	src := sink.LocalAddr().(*net.UDPAddr).AddrPort()
	req := make([]byte, 40)
	if n := testing.AllocsPerRun(100, func() {
		out, _, _ := r.handle(r.out[:0], req, oob, r.woob[:0:oobSize], src)
		r.out = out[:0]
	}); n != 0 {
		t.Errorf("handle allocates %v times per datagram", n)
	}
	// A whole batch: decode sources, serve, build and send the replies.
	var sa unix.RawSockaddrInet4
	sa.Family = unix.AF_INET
	sa.Addr = src.Addr().As4()
	p := (*[2]byte)(unsafe.Pointer(&sa.Port))
	p[0], p[1] = byte(src.Port()>>8), byte(src.Port())
	for k := range UDPBatch {
		*(*unix.RawSockaddrInet4)(unsafe.Pointer(&r.names[k])) = sa
		r.rmsg[k].Hdr.Namelen = unix.SizeofSockaddrInet4
		r.rmsg[k].Len = 40
		copy(r.oob[k*oobSize:], oob)
		r.rmsg[k].Hdr.SetControllen(len(oob))
	}
	r.recvd = UDPBatch
	if n := testing.AllocsPerRun(100, r.batch); n != 0 {
		t.Errorf("batch allocates %v times per %d datagrams", n, UDPBatch)
	}
	if got := s.Stat.UDPOut.Load(); got == 0 {
		t.Errorf("batch sent nothing")
	}
}

// The stream loop, ping-pong over TCP: buffered read, dispatch, writev.
func BenchmarkTCPLoop(b *testing.B) {
	reply := make([]byte, 24)
	h := HandlerFunc(func(out, req []byte, c *access.Caller) ([]byte, bool) {
		return append(out, reply...), true
	})
	s := New(h, Options{Log: quietLog()})
	defer s.Shutdown(b.Context())
	addr := startStream(b, s, "tcp", "127.0.0.1:0")
	c := dial(b, "tcp", addr)
	req := record(string(make([]byte, 40)))
	buf := make([]byte, 28)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
	}
}

// Pipelined calls over TCP, 64 per write: with the per-wake-up budget the
// loop serves them in turns of RecordsPerWakeup (the stash path).
func BenchmarkTCPPipelined(b *testing.B) {
	const depth = 64
	reply := make([]byte, 24)
	h := HandlerFunc(func(out, req []byte, c *access.Caller) ([]byte, bool) {
		return append(out, reply...), true
	})
	s := New(h, Options{Log: quietLog()})
	defer s.Shutdown(b.Context())
	addr := startStream(b, s, "tcp", "127.0.0.1:0")
	c := dial(b, "tcp", addr)
	var req []byte
	for range depth {
		req = append(req, record(string(make([]byte, 40)))...)
	}
	buf := make([]byte, 28*depth)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*depth), "ns/call")
}

// The accounting of one accepted connection at the cap during the
// bench-attack "idle" flood: MaxConns 1024 held by 176 remote sources (a
// loopback and a local-socket caller among them), each new connection
// from the next source in turn, so every accept sheds one. The accept
// loop pays this per connection; issue 11's flood outran it (2,000
// accepts/s) and the listen queue overflowed.
func BenchmarkAddConnAtCap(b *testing.B) {
	const maxConns, sources = 1024, 176
	s := New(HandlerFunc(func(out, _ []byte, _ *access.Caller) ([]byte, bool) { return out, false }),
		Options{Log: quietLog(), MaxConns: maxConns})
	defer s.closing.Store(true)
	addrs := make([]netip.AddrPort, sources)
	for i := range addrs {
		addrs[i] = netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, byte(i), 2}), 1000)
	}
	at := time.Now().UnixNano() // active: never idle enough for the sweep
	mk := func(i int) *fakeConn {
		at++
		return &fakeConn{at: at, caller: access.Caller{Netid: "tcp", UID: -1, Addr: addrs[i%sources]}}
	}
	s.addConn(&fakeConn{at: at, caller: access.Caller{Netid: "local", UID: 0}})
	s.addConn(&fakeConn{at: at, caller: access.Caller{Netid: "tcp", UID: -1,
		Addr: netip.MustParseAddrPort("127.0.0.1:1000")}})
	for i := range maxConns {
		s.addConn(mk(i))
	}
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		if !s.addConn(mk(i)) {
			b.Fatal("refused")
		}
		i++
	}
	if n := s.Conns(); n != maxConns {
		b.Fatalf("%d connections, want %d", n, maxConns)
	}
}
