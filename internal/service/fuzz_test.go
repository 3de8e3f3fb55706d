package service

import (
	"net/netip"
	"testing"

	"github.com/openrpcbind/rpcbind/internal/access"
	"github.com/openrpcbind/rpcbind/internal/rpc"
	"github.com/openrpcbind/rpcbind/internal/testvec"
)

// FuzzServeRPC: any bytes in, on any transport, give silence or one
// well-formed reply to the call's XID; the table stays consistent.
func FuzzServeRPC(f *testing.F) {
	for _, ex := range testvec.Load(f) {
		f.Add(ex.CallMsg(), uint8(0))
	}
	f.Add([]byte{}, uint8(1))
	callers := []access.Caller{
		{Netid: "udp", Addr: netip.MustParseAddrPort("127.0.0.1:700"), UID: -1},
		{Netid: "tcp", Addr: netip.MustParseAddrPort("127.0.0.1:40000"), UID: -1},
		{Netid: "udp6", Addr: netip.MustParseAddrPort("[::1]:40000"), UID: -1},
		{Netid: "udp", Addr: netip.MustParseAddrPort("192.0.2.7:1000"), UID: -1},
		{Netid: "local", UID: 1000},
	}
	s, tab := newTestService()
	f.Fuzz(func(t *testing.T, msg []byte, who uint8) {
		c := callers[int(who)%len(callers)]
		out, send := s.ServeRPC([]byte("pre"), msg, &c)
		if string(out[:3]) != "pre" {
			t.Fatal("prefix clobbered")
		}
		out = out[3:]
		if err := rpc.CheckServerReply(msg, out, send); err != nil {
			t.Fatalf("%v (%s)", err, testvec.Hex(out))
		}
		if send && c.Netid == "udp" && len(out) > MaxUDPReply {
			t.Fatalf("UDP reply of %d bytes", len(out))
		}
		if err := tab.CheckInvariants(); err != nil {
			t.Fatal(err)
		}
	})
}
