package server

import (
	"net"
	"net/netip"
	"testing"

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
	r := &udpReader{s: s, uc: sock.Packet, netid: "udp", rbuf: make([]byte, UDPBufSize),
		oob: make([]byte, oobSize), woob: make([]byte, oobSize), out: make([]byte, 0, UDPBufSize)}
	oob := appendReplyPktinfo(nil, netip.MustParseAddr("127.0.0.1"), 0)
	src := sink.LocalAddr().(*net.UDPAddr).AddrPort()
	req := make([]byte, 40)
	if n := testing.AllocsPerRun(100, func() { r.handle(req, oob, src) }); n != 0 {
		t.Errorf("handle allocates %v times per datagram", n)
	}
}
