package service

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/openrpcbind/rpcbind/internal/access"
	"github.com/openrpcbind/rpcbind/internal/registry"
	"github.com/openrpcbind/rpcbind/internal/rpc"
	"github.com/openrpcbind/rpcbind/internal/testvec"
	"github.com/openrpcbind/rpcbind/pmap"
	"github.com/openrpcbind/rpcbind/xdr"
)

func newTestService() (*Service, *registry.Table) {
	tab := registry.New(captureSelf())
	return New(Config{Table: tab, Ifaces: captureIfaces(), Now: func() time.Time { return captureStart }}), tab
}

func udpCaller(addr string) *access.Caller {
	return &access.Caller{Netid: "udp", Addr: netip.MustParseAddrPort(addr), Dst: netip.MustParseAddrPort("127.0.0.1:111"), UID: -1}
}

func call(xid, vers, proc uint32, args []byte) []byte {
	b := rpc.AppendCall(nil, xid, pmap.Prog, vers, proc, nil)
	return append(b, args...)
}

// replyHeader returns the accepted-reply header for xid and stat.
func replyHeader(xid uint32, stat rpc.AcceptStat) []byte {
	return rpc.AppendAccepted(nil, xid, stat)
}

func boolReply(xid uint32, v bool) []byte { return xdr.AppendBool(replyHeader(xid, rpc.Success), v) }

// TestOwnershipMatrix: who may SET/UNSET and which owner is recorded
// (spec §3.1, §3.2; DECISIONS "local" caller and owner strings).
func TestOwnershipMatrix(t *testing.T) {
	local := func(uid int) *access.Caller { return &access.Caller{Netid: "local", UID: uid} }
	cases := []struct {
		name   string
		c      *access.Caller
		allow  bool
		owner  string
		unsetU bool // may remove an "unknown" entry
		unsetR bool // may remove a "superuser" entry
	}{
		{"local socket root", local(0), true, "superuser", true, true},
		{"local socket uid 1000", local(1000), true, "1000", false, false},
		{"127.0.0.1 privileged port", udpCaller("127.0.0.1:700"), true, "superuser", true, true},
		{"127.0.0.1 unprivileged port", udpCaller("127.0.0.1:40700"), true, "unknown", true, false},
		{"::1 privileged port", &access.Caller{Netid: "udp6", Addr: netip.MustParseAddrPort("[::1]:702"), UID: -1}, true, "superuser", true, true},
		{"127.0.0.2", udpCaller("127.0.0.2:700"), false, "", false, false},
		{"remote", udpCaller("192.0.2.1:700"), false, "", false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, tab := newTestService()
			tab.Set(registry.Entry{Prog: 400000, Vers: 1, Netid: "udp", Addr: "0.0.0.0.4.1", Owner: "unknown"})
			tab.Set(registry.Entry{Prog: 400001, Vers: 1, Netid: "udp", Addr: "0.0.0.0.4.2", Owner: "superuser"})
			set := call(1, 3, 1, pmap.AppendRPCB(nil, 400002, 1, "tcp", "0.0.0.0.4.3", "r_owner is ignored"))
			got, send := s.ServeRPC(nil, set, tc.c)
			if !tc.allow {
				want := rpc.AppendAuthError(nil, 1, rpc.AuthTooWeak)
				if !send || !bytes.Equal(got, want) {
					t.Fatalf("SET: got %s, want AUTH_TOOWEAK %s", testvec.Hex(got), testvec.Hex(want))
				}
				return
			}
			if !bytes.Equal(got, boolReply(1, true)) {
				t.Fatalf("SET: got %s", testvec.Hex(got))
			}
			e, ok := tab.Find(400002, 1, "tcp")
			if !ok || e.Owner != tc.owner {
				t.Fatalf("owner = %q (found %v), want %q", e.Owner, ok, tc.owner)
			}
			for _, u := range []struct {
				prog uint32
				want bool
			}{{400000, tc.unsetU}, {400001, tc.unsetR}} {
				un := call(2, 4, 2, pmap.AppendRPCB(nil, u.prog, 1, "", "", ""))
				got, _ := s.ServeRPC(nil, un, tc.c)
				if !bytes.Equal(got, boolReply(2, u.want)) {
					t.Errorf("UNSET %d: got %s, want %v", u.prog, testvec.Hex(got), u.want)
				}
			}
		})
	}
}

// TestTruncatedUDPArgs: improvement (spec §1.1, §10): decoding is bounded by
// the datagram, so truncated arguments get GARBAGE_ARGS over UDP as over TCP.
// The reference decoded stale buffer bytes and registered garbage; these
// goldens are RFC-derived (RFC 5531 §9 GARBAGE_ARGS).
func TestTruncatedUDPArgs(t *testing.T) {
	s, tab := newTestService()
	before := tab.Len()
	full := map[string][]byte{
		"v2 SET":      call(7, 2, 1, (&pmap.Mapping{Prog: 1, Vers: 1, Prot: 6, Port: 5}).AppendXDR(nil)),
		"v2 GETPORT":  call(7, 2, 3, (&pmap.Mapping{Prog: 1, Vers: 1, Prot: 6}).AppendXDR(nil)),
		"v3 SET":      call(7, 3, 1, pmap.AppendRPCB(nil, 5, 1, "udp", "0.0.0.0.0.5", "x")),
		"v4 GETADDR":  call(7, 4, 3, pmap.AppendRPCB(nil, 5, 1, "udp", "", "")),
		"v4 INDIRECT": call(7, 4, 10, (&pmap.CallArgs{Prog: 5, Vers: 1, Proc: 1, Args: []byte{1, 2, 3, 4}}).AppendXDR(nil)),
	}
	for name, msg := range full {
		for cut := len(msg) - 1; cut >= 40; cut-- {
			got, send := s.ServeRPC(nil, msg[:cut], udpCaller("127.0.0.1:700"))
			want := replyHeader(7, rpc.GarbageArgs)
			if !send || !bytes.Equal(got, want) {
				t.Errorf("%s cut at %d: got send=%v %s, want GARBAGE_ARGS", name, cut, send, testvec.Hex(got))
			}
		}
	}
	if tab.Len() != before {
		t.Errorf("truncated calls changed the table: %d → %d entries", before, tab.Len())
	}
}

// TestUnsetAllOrNothing: improvement (DECISIONS "UNSET"): when one match
// belongs to another owner nothing is removed (the reference removed the
// matches it met first and left its v2 view stale).
func TestUnsetAllOrNothing(t *testing.T) {
	s, tab := newTestService()
	tab.Set(registry.Entry{Prog: 400000, Vers: 1, Netid: "tcp", Addr: "0.0.0.0.4.1", Owner: "unknown"})
	tab.Set(registry.Entry{Prog: 400000, Vers: 1, Netid: "udp", Addr: "0.0.0.0.4.1", Owner: "superuser"})
	got, _ := s.ServeRPC(nil, call(3, 3, 2, pmap.AppendRPCB(nil, 400000, 1, "", "", "")), udpCaller("127.0.0.1:40000"))
	if !bytes.Equal(got, boolReply(3, false)) {
		t.Fatalf("UNSET: got %s, want FALSE", testvec.Hex(got))
	}
	if _, ok := tab.Find(400000, 1, "tcp"); !ok {
		t.Error("the caller's own tcp entry was removed although the UNSET failed")
	}
	if p := tab.GetPort(400000, 1, 6); p != 0x401 {
		t.Errorf("v2 view lost the tcp entry: GETPORT = %d", p)
	}
	if err := tab.CheckInvariants(); err != nil {
		t.Error(err)
	}
}

// TestUDPReplyLimit: a reply over 9000 bytes cannot be sent over UDP:
// v3/v4 answer SYSTEM_ERR, v2 stays silent (pmap_svc.c ignores the failed
// svc_sendreply); TCP carries it.
func TestUDPReplyLimit(t *testing.T) {
	s, tab := newTestService()
	for i := uint32(0); i < 500; i++ {
		tab.SetV2(500000+i, 1, 6, 1000, "superuser")
	}
	c := udpCaller("127.0.0.1:700")
	got, send := s.ServeRPC(nil, call(9, 4, 4, nil), c)
	if want := replyHeader(9, rpc.SystemErr); !send || !bytes.Equal(got, want) {
		t.Errorf("v4 DUMP over UDP: got %d bytes, want SYSTEM_ERR", len(got))
	}
	if got, send := s.ServeRPC(nil, call(9, 2, 4, nil), c); send || len(got) != 0 {
		t.Errorf("v2 DUMP over UDP: got send=%v, %d bytes; want silence", send, len(got))
	}
	tc := &access.Caller{Netid: "tcp", Addr: c.Addr, UID: -1}
	if got, send := s.ServeRPC(nil, call(9, 4, 4, nil), tc); !send || len(got) <= MaxUDPReply {
		t.Errorf("v4 DUMP over TCP: got send=%v, %d bytes", send, len(got))
	}
}

// TestRemoteCallsWithoutForwarder: transport and -r gating (spec §1.7).
func TestRemoteCallsWithoutForwarder(t *testing.T) {
	s, tab := newTestService()
	tab.Set(registry.Entry{Prog: 400000, Vers: 1, Netid: "udp", Addr: "0.0.0.0.4.1", Owner: "unknown"})
	args := (&pmap.CallArgs{Prog: 400000, Vers: 1, Proc: 0}).AppendXDR(nil)
	for _, tc := range []struct {
		netid      string
		vers, proc uint32
		want       []byte
	}{
		{"udp", 2, 5, nil},
		{"udp", 3, 5, nil},
		{"udp", 4, 5, nil},
		{"udp", 4, 10, replyHeader(4, rpc.SystemErr)},
		{"tcp", 4, 10, nil},
		{"local", 4, 10, nil},
	} {
		c := &access.Caller{Netid: tc.netid, Addr: netip.MustParseAddrPort("127.0.0.1:40000"), UID: -1}
		if tc.netid == "local" {
			c = &access.Caller{Netid: "local", UID: 0}
		}
		got, send := s.ServeRPC(nil, call(4, tc.vers, tc.proc, args), c)
		if send != (tc.want != nil) || !bytes.Equal(got, tc.want) {
			t.Errorf("%s v%d proc %d: got send=%v %s, want %s", tc.netid, tc.vers, tc.proc, send, testvec.Hex(got), testvec.Hex(tc.want))
		}
	}
}

// TestGetAddrListLocal: over AF_UNIX the merge fails for every entry, so the
// list is empty (spec §1.4 GETADDRLIST quirk b).
func TestGetAddrListLocal(t *testing.T) {
	s, tab := newTestService()
	tab.Set(registry.Entry{Prog: 400000, Vers: 1, Netid: "local", Addr: "/run/x.sock", Owner: "superuser"})
	got, _ := s.ServeRPC(nil, call(5, 4, 11, pmap.AppendRPCB(nil, 400000, 1, "", "", "")), &access.Caller{Netid: "local", UID: 0})
	want := xdr.AppendUint32(replyHeader(5, rpc.Success), 0)
	if !bytes.Equal(got, want) {
		t.Errorf("got %s, want empty list", testvec.Hex(got))
	}
}

// TestStatListCap: addrinfo keeps at most MaxStatEntries keys; the least
// recently updated one goes.
func TestStatListCap(t *testing.T) {
	s, _ := newTestService()
	c := udpCaller("127.0.0.1:40000")
	getport := func(prog uint32) {
		s.ServeRPC(nil, call(1, 2, 3, (&pmap.Mapping{Prog: prog, Vers: 1, Prot: 17}).AppendXDR(nil)), c)
	}
	for p := uint32(0); p < MaxStatEntries; p++ {
		getport(600000 + p)
	}
	getport(600000) // refresh the oldest key
	getport(700000) // evicts 600001, the least recently updated
	st := s.Stats()
	addr := st[0].Addr
	if len(addr) != MaxStatEntries {
		t.Fatalf("addrinfo has %d entries, want %d", len(addr), MaxStatEntries)
	}
	if addr[0].Prog != 700000 {
		t.Errorf("newest entry first: got prog %d", addr[0].Prog)
	}
	seen := map[uint32]int32{}
	for _, a := range addr {
		seen[a.Prog] = a.Failure
	}
	if _, ok := seen[600001]; ok {
		t.Error("600001 should have been evicted")
	}
	if seen[600000] != 2 {
		t.Errorf("600000 failures = %d, want 2", seen[600000])
	}
}

// TestZeroAllocs guards the hot path: GETPORT and GETADDR over UDP, with
// an event hook installed as the daemon does (each of these calls reports
// an access event).
func TestZeroAllocs(t *testing.T) {
	s, tab := newTestService()
	var events int
	s.cfg.Log = func(e Event) {
		if e.Kind == EventAccess && e.Caller != nil {
			events++
		}
	}
	tab.Set(registry.Entry{Prog: 100003, Vers: 3, Netid: "udp", Addr: "0.0.0.0.8.1", Owner: "superuser"})
	tab.SetV2(100005, 1, 17, 20048, "superuser")
	c := udpCaller("127.0.0.1:40000")
	for name, msg := range map[string][]byte{
		"GETPORT":   call(1, 2, 3, (&pmap.Mapping{Prog: 100005, Vers: 1, Prot: 17}).AppendXDR(nil)),
		"GETADDR":   call(1, 4, 3, pmap.AppendRPCB(nil, 100003, 3, "udp", "", "")),
		"GETADDR h": call(1, 3, 3, pmap.AppendRPCB(nil, 100003, 3, "udp", "127.0.0.2.0.111", "")),
	} {
		buf := make([]byte, 0, 512)
		s.ServeRPC(buf, msg, c) // create the statistics key
		if n := testing.AllocsPerRun(200, func() { s.ServeRPC(buf, msg, c) }); n != 0 {
			t.Errorf("%s: %v allocations per call, want 0", name, n)
		}
	}
	if events == 0 {
		t.Error("no access event reached the hook")
	}
}

func benchService(b *testing.B, n int) (*Service, *access.Caller) {
	s, tab := newTestService()
	for i := 0; i < n; i++ {
		tab.SetV2(uint32(300000+i), 1, 17, uint32(1000+i%60000), "superuser")
		tab.Set(registry.Entry{Prog: uint32(300000 + i), Vers: 1, Netid: "udp6", Addr: "::.3.232", Owner: "superuser"})
	}
	return s, udpCaller("127.0.0.1:40000")
}

func BenchmarkGetPort(b *testing.B) {
	for _, n := range []int{10, 10000} {
		b.Run(fmt.Sprintf("regs=%d", n), func(b *testing.B) {
			s, c := benchService(b, n)
			msg := call(1, 2, 3, (&pmap.Mapping{Prog: uint32(300000 + n/2), Vers: 1, Prot: 17}).AppendXDR(nil))
			buf := make([]byte, 0, 512)
			b.ReportAllocs()
			for b.Loop() {
				s.ServeRPC(buf, msg, c)
			}
		})
	}
}

func BenchmarkGetAddr(b *testing.B) {
	s, c := benchService(b, 10)
	msg := call(1, 4, 3, pmap.AppendRPCB(nil, 300005, 1, "udp", "", ""))
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		s.ServeRPC(buf, msg, c)
	}
}

// ServeRPCTail answers a DUMP with the table's cached body as the tail,
// without copying it, and the bytes are those of ServeRPC; the UDP size
// check counts the tail.
func TestServeRPCTailDump(t *testing.T) {
	s, tab := newTestService()
	for i := 0; i < 1000; i++ {
		tab.Set(registry.Entry{Prog: uint32(400000 + i), Vers: 1, Netid: "tcp", Addr: "0.0.0.0.8.1", Owner: "superuser"})
	}
	c := udpCaller("127.0.0.1:40000")
	c.Netid = pmap.NetidTCP
	for _, vers := range []uint32{2, 3, 4} {
		msg := call(7, vers, 4, nil)
		want, ok := s.ServeRPC(nil, msg, c)
		if !ok {
			t.Fatalf("v%d DUMP: no reply", vers)
		}
		reply, tail, ok := s.ServeRPCTail(make([]byte, 0, 64), msg, c)
		if !ok || len(tail) < 1000*20 {
			t.Fatalf("v%d DUMP: send %v, tail of %d bytes", vers, ok, len(tail))
		}
		if got := append(reply, tail...); !bytes.Equal(got, want) {
			t.Errorf("v%d DUMP: reply+tail differs from ServeRPC", vers)
		}
		buf := make([]byte, 0, 64)
		if n := testing.AllocsPerRun(100, func() { s.ServeRPCTail(buf, msg, c) }); n != 0 {
			t.Errorf("v%d DUMP: %v allocations per call, want 0", vers, n)
		}
	}
	// Over UDP the body does not fit in 9000 bytes: v3 answers SYSTEM_ERR.
	u := udpCaller("127.0.0.1:40000")
	reply, tail, ok := s.ServeRPCTail(nil, call(8, 3, 4, nil), u)
	if !ok || len(tail) != 0 || len(reply) != 24 || reply[23] != byte(rpc.SystemErr) {
		t.Errorf("v3 DUMP over UDP: send %v, reply % x, tail %d bytes", ok, reply, len(tail))
	}
}

func BenchmarkDumpTail(b *testing.B) {
	s, c := benchService(b, 10000)
	c.Netid = pmap.NetidTCP
	msg := call(1, 4, 4, nil)
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		s.ServeRPCTail(buf, msg, c)
	}
}
