package main

import (
	"bufio"
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/openrpcbind/rpcbind/internal/rpc"
	"github.com/openrpcbind/rpcbind/pmap"
)

const bcastXID = 0x11223344

// bcastApp returns an app whose stdout is out; name lookups give up fast.
func bcastApp(out *bytes.Buffer) *app {
	cfg := DefaultConfig()
	cfg.LookupTimeout = 200 * time.Millisecond
	return &app{cfg: cfg, stdout: bufio.NewWriter(out)}
}

// TestBcastReply: which datagrams rpc_broadcast prints (the responder is
// the v3 reply's uaddr, or the v2 sender with the replied port), which it
// drops while waiting on (failed or undecodable replies to its XIDs), and
// which end the round (anything else).
func TestBcastReply(t *testing.T) {
	from4 := netip.MustParseAddrPort("192.0.2.2:40000")
	v4 := &bcastSock{family: pmap.FamilyInet}
	v6 := &bcastSock{family: pmap.FamilyInet6}
	ok := func(x uint32) []byte { return rpc.AppendAccepted(nil, x, rpc.Success) }
	for _, tc := range []struct {
		name  string
		s     *bcastSock
		msg   []byte
		ours  bool
		first string // the printed uaddr, "" for no line
	}{
		{"v3 reply names the service's uaddr, not the sender", v4,
			pmap.AppendRmtCallRes(ok(bcastXID), "192.0.2.2.0.111", nil), true, "192.0.2.2.0.111"},
		{"v2 reply: sender address, replied port", v4,
			pmap.AppendCallResult(ok(bcastXID+1), 111, nil), true, "192.0.2.2.0.111"},
		{"v3 uaddr is converted for the socket's family", v6,
			pmap.AppendRmtCallRes(ok(bcastXID), "192.0.2.2.0.111", nil), true, ""},
		{"v3 IPv6 uaddr on the udp6 socket", v6,
			pmap.AppendRmtCallRes(ok(bcastXID), "2001:db8::2.0.111", nil), true, "2001:db8::2.0.111"},
		{"denied reply to our XID: no line, keep waiting", v4,
			rpc.AppendAuthError(nil, bcastXID, rpc.AuthTooWeak), true, ""},
		{"truncated results: no line, keep waiting", v4,
			ok(bcastXID + 1), true, ""},
		{"uaddr longer than the message", v4,
			append(ok(bcastXID), 0xff, 0xff, 0xff, 0xf0), true, ""},
		{"another XID ends the round", v4,
			pmap.AppendCallResult(ok(bcastXID+2), 111, nil), false, ""},
		{"three bytes end the round", v4, []byte{0x11, 0x22, 0x33}, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			a := bcastApp(&out)
			if got := a.bcastReply(bcastDatagram{tc.s, from4, tc.msg}, bcastXID); got != tc.ours {
				t.Errorf("bcastReply = %v, want %v", got, tc.ours)
			}
			line := out.String()
			switch {
			case tc.first == "" && line != "":
				t.Errorf("printed %q, want nothing", line)
			case tc.first != "" && !strings.HasPrefix(line, tc.first+"\t"):
				t.Errorf("printed %q, want a line for %s", line, tc.first)
			}
		})
	}
}

// FuzzBcastReply: no datagram makes the broadcast receive path panic, and
// at most one line comes out of one datagram.
func FuzzBcastReply(f *testing.F) {
	ok := rpc.AppendAccepted(nil, bcastXID, rpc.Success)
	f.Add(pmap.AppendRmtCallRes(ok, "192.0.2.2.0.111", nil), false)
	f.Add(pmap.AppendCallResult(rpc.AppendAccepted(nil, bcastXID+1, rpc.Success), 111, []byte{1, 2, 3, 4}), true)
	f.Add([]byte{0x11, 0x22, 0x33, 0x44, 0, 0, 0, 1}, false)
	f.Fuzz(func(t *testing.T, msg []byte, six bool) {
		s := &bcastSock{family: pmap.FamilyInet}
		if six {
			s.family = pmap.FamilyInet6
		}
		var out bytes.Buffer
		a := bcastApp(&out)
		a.cfg.LookupTimeout = time.Millisecond
		a.bcastReply(bcastDatagram{s, netip.MustParseAddrPort("[2001:db8::2]:111"), msg}, bcastXID)
		if n := strings.Count(out.String(), "\n"); n > 1 {
			t.Fatalf("%d lines from one datagram", n)
		}
	})
}
