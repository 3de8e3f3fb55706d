package guard

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/openrpcbind/rpcbind/internal/access"
	"github.com/openrpcbind/rpcbind/internal/ratelimit"
	"github.com/openrpcbind/rpcbind/internal/registry"
	"github.com/openrpcbind/rpcbind/internal/rpc"
	"github.com/openrpcbind/rpcbind/internal/service"
	"github.com/openrpcbind/rpcbind/pmap"
	"github.com/openrpcbind/rpcbind/xdr"
)

func setup(cfg Config) (*Guard, *registry.Table) {
	tab := registry.New(registry.SelfEntries("::.0.111", "::.0.111", "0.0.0.0.0.111", "0.0.0.0.0.111", "/run/rpcbind.sock"))
	cfg.Table = tab
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return time.Unix(1700000000, 0) }
	}
	svc := service.New(service.Config{Table: tab})
	g := New(svc, cfg)
	tab.SetObserver(func(op registry.Op, e registry.Entry) error { g.Observe(op, e); return nil })
	return g, tab
}

func local(uid, pid int) *access.Caller { return &access.Caller{Netid: "local", UID: uid, PID: pid} }

func udp(addr string) *access.Caller {
	return &access.Caller{Netid: "udp", Addr: netip.MustParseAddrPort(addr), UID: -1}
}

func call(xid, vers, proc uint32, args []byte) []byte {
	return append(rpc.AppendCall(nil, xid, pmap.Prog, vers, proc, nil), args...)
}

func setV2(xid, prog, port uint32) []byte {
	m := pmap.Mapping{Prog: prog, Vers: 1, Prot: pmap.IPProtoTCP, Port: port}
	return call(xid, 2, uint32(pmap.PmapProcSet), m.AppendXDR(nil))
}

func setV4(xid, prog uint32, netid, uaddr string) []byte {
	return call(xid, 4, uint32(pmap.RPCBProcSet), pmap.AppendRPCB(nil, prog, 1, netid, uaddr, "ignored"))
}

// answer returns "TRUE"/"FALSE" for a bool reply, the auth error name, or
// "silent".
func answer(t *testing.T, g *Guard, req []byte, c *access.Caller) string {
	t.Helper()
	reply, send := g.ServeRPC([]byte("prefix"), req, c)
	if string(reply[:6]) != "prefix" {
		t.Fatalf("prefix overwritten")
	}
	if !send {
		if len(reply) != 6 {
			t.Errorf("silent reply appended %d bytes", len(reply)-6)
		}
		return "silent"
	}
	res, err := rpc.ParseReply(reply[6:], xidOf(req))
	if re, ok := err.(*rpc.ReplyError); ok && re.Stat == rpc.MsgDenied {
		return re.AuthStat.String()
	}
	if err != nil {
		t.Fatalf("reply: %v", err)
	}
	if len(res) == 4 {
		var d xdr.Decoder
		d.Reset(res)
		if d.Bool() {
			return "TRUE"
		}
		return "FALSE"
	}
	return "ok"
}

// TestCheckPort: with CHECK_PORT, an unprivileged caller's SET of port 700
// is FALSE in every version (portmap 6.0 check_privileged_port: ans = 0)
// while root's and any caller's port >= 1024 are TRUE; off, port 700 is
// anyone's, as the reference.
func TestCheckPort(t *testing.T) {
	g, tab := setup(Config{CheckPort: true})
	cases := []struct {
		name string
		req  []byte
		c    *access.Caller
		want string
	}{
		{"uid 1000 v2 port 700", setV2(1, 300001, 700), local(1000, 0), "FALSE"},
		{"uid 1000 v4 tcp .2.188 (700)", setV4(2, 300002, "tcp", "0.0.0.0.2.188"), local(1000, 0), "FALSE"},
		{"uid 1000 v4 udp6 ::.2.188", setV4(3, 300003, "udp6", "::.2.188"), local(1000, 0), "FALSE"},
		{"127.0.0.1 unprivileged source v2 700", setV2(4, 300004, 700), udp("127.0.0.1:40000"), "FALSE"},
		{"uid 1000 v2 port 1024", setV2(5, 300005, 1024), local(1000, 0), "TRUE"},
		{"uid 1000 v4 local path", setV4(6, 300006, "local", "/run/x.sock"), local(1000, 0), "TRUE"},
		{"root v2 port 700", setV2(7, 300007, 700), local(0, 0), "TRUE"},
		{"root v4 port 700", setV4(8, 300008, "tcp", "0.0.0.0.2.188"), local(0, 0), "TRUE"},
		{"127.0.0.1 privileged source v2 700", setV2(9, 300009, 700), udp("127.0.0.1:800"), "TRUE"},
		{"remote v2 700: the service's denial", setV2(10, 300010, 700), udp("192.0.2.9:800"), "AUTH_TOOWEAK"},
	}
	for _, tc := range cases {
		if got := answer(t, g, tc.req, tc.c); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
	if _, ok := tab.Find(300001, 1, "tcp"); ok {
		t.Error("a refused SET is in the table")
	}
	if g.Stat.PortCheck.Load() != 4 {
		t.Errorf("PortCheck = %d, want 4", g.Stat.PortCheck.Load())
	}
	off, _ := setup(Config{})
	if got := answer(t, off, setV2(1, 300001, 700), local(1000, 0)); got != "TRUE" {
		t.Errorf("without CHECK_PORT, uid 1000 port 700: %s, want TRUE (the reference)", got)
	}
}

// TestOwnerCap: a non-superuser owner is capped at MaxPerOwner; a SET of an
// existing (prog, vers, netid) still gets the service's answer; UNSET frees
// room; superuser is never capped.
func TestOwnerCap(t *testing.T) {
	var logs []string
	g, tab := setup(Config{MaxPerOwner: 3, Log: func(m []byte) { logs = append(logs, string(m)) }})
	u := local(1000, 0)
	for i := uint32(0); i < 3; i++ {
		if got := answer(t, g, setV2(i, 400000+i, 2000), u); got != "TRUE" {
			t.Fatalf("SET %d: %s", i, got)
		}
	}
	if got := answer(t, g, setV2(10, 400010, 2000), u); got != "FALSE" {
		t.Errorf("4th SET of uid 1000: %s, want FALSE", got)
	}
	if got := answer(t, g, setV2(11, 400000, 2000), u); got != "TRUE" {
		t.Errorf("re-SET of an existing entry at the cap: %s, want TRUE", got)
	}
	if got := answer(t, g, setV2(12, 400000, 2001), u); got != "FALSE" {
		t.Errorf("conflicting re-SET at the cap: %s, want the service's FALSE", got)
	}
	if got := answer(t, g, setV4(13, 400011, "tcp", "0.0.0.0.8.0"), local(1001, 0)); got != "TRUE" {
		t.Errorf("another uid: %s, want TRUE", got)
	}
	for i := uint32(0); i < 10; i++ {
		if got := answer(t, g, setV2(20+i, 410000+i, 2000), local(0, 0)); got != "TRUE" {
			t.Fatalf("root SET %d: %s", i, got)
		}
	}
	unset := call(30, 2, uint32(pmap.PmapProcUnset), (&pmap.Mapping{Prog: 400001, Vers: 1}).AppendXDR(nil))
	if got := answer(t, g, unset, u); got != "TRUE" {
		t.Fatalf("UNSET: %s", got)
	}
	if got := answer(t, g, setV2(31, 400010, 2000), u); got != "TRUE" {
		t.Errorf("SET after an UNSET freed room: %s, want TRUE", got)
	}
	if g.Owned("1000") != 3 || g.Owned("superuser") != 10+12 || g.Owned("1001") != 1 {
		t.Errorf("counts: 1000=%d superuser=%d 1001=%d", g.Owned("1000"), g.Owned("superuser"), g.Owned("1001"))
	}
	if g.Stat.OverCap.Load() != 1 || len(logs) != 1 {
		t.Errorf("OverCap %d, logs %q", g.Stat.OverCap.Load(), logs)
	}
	if err := tab.CheckInvariants(); err != nil {
		t.Error(err)
	}
}

// TestUDPAmplification: amplifying UDP replies to a non-local source pass
// the bucket (burst, then nothing at a frozen clock); loopback and TCP are
// never limited; small replies always pass; RefuseLists answers
// AUTH_TOOWEAK to remote UDP DUMP/GETSTAT only.
func TestUDPAmplification(t *testing.T) {
	lim := ratelimit.New(ratelimit.Config{Burst: 5})
	g, _ := setup(Config{Limiter: lim})
	dump := call(1, 4, uint32(pmap.RPCBProcDump), nil)
	getport := call(2, 2, uint32(pmap.PmapProcGetPort), (&pmap.Mapping{Prog: pmap.Prog, Vers: 2, Prot: 6}).AppendXDR(nil))
	remote := udp("192.0.2.7:999")
	n := 0
	for i := 0; i < 50; i++ {
		if answer(t, g, dump, remote) == "ok" {
			n++
		}
	}
	// GCRA admits burst+1 at one instant.
	if n < 5 || n > 6 {
		t.Errorf("remote UDP DUMPs answered at a frozen clock: %d of 50, want the burst (5..6)", n)
	}
	if got := answer(t, g, getport, remote); got == "silent" {
		t.Errorf("remote GETPORT (smaller than its call) after the burst: %s", got)
	}
	for _, c := range []*access.Caller{udp("127.0.0.1:999"), udp("127.0.0.2:999"),
		{Netid: "tcp", Addr: netip.MustParseAddrPort("192.0.2.7:999"), UID: -1}, local(0, 0)} {
		for i := 0; i < 50; i++ {
			if got := answer(t, g, dump, c); got != "ok" {
				t.Fatalf("%s %v DUMP %d: %s; must never be limited", c.Netid, c.Addr, i, got)
			}
		}
	}
	if g.Stat.Limited.Load() != uint64(50-n) {
		t.Errorf("Limited = %d, want %d", g.Stat.Limited.Load(), 50-n)
	}

	r, _ := setup(Config{Limiter: ratelimit.New(ratelimit.Config{RefuseLists: true})})
	for _, vp := range [][2]uint32{{2, 4}, {3, 4}, {4, 4}, {4, 12}} {
		if got := answer(t, r, call(7, vp[0], vp[1], nil), remote); got != "AUTH_TOOWEAK" {
			t.Errorf("RefuseLists: remote UDP v%d proc %d: %s", vp[0], vp[1], got)
		}
		if got := answer(t, r, call(7, vp[0], vp[1], nil), udp("127.0.0.1:5")); got != "ok" {
			t.Errorf("RefuseLists: loopback UDP v%d proc %d: %s", vp[0], vp[1], got)
		}
	}
}

// TestTailPassThrough: the guard keeps the service's writev path for
// streams (ServeRPCTail returns the shared DUMP as the tail).
func TestTailPassThrough(t *testing.T) {
	g, tab := setup(Config{Limiter: ratelimit.New(ratelimit.Config{})})
	c := &access.Caller{Netid: "tcp", Addr: netip.MustParseAddrPort("192.0.2.7:999"), UID: -1}
	reply, tail, send := g.ServeRPCTail(nil, call(1, 4, uint32(pmap.RPCBProcDump), nil), c)
	if !send || len(tail) == 0 || string(tail) != string(tab.DumpV3()) {
		t.Errorf("tail: send %v, %d reply + %d tail bytes", send, len(reply), len(tail))
	}
}

// TestPrune: a registration whose process is gone and whose port is free
// goes; one whose process lives stays; an untracked TCP entry goes after
// PruneMisses sweeps without a listener; removals reach the observer as
// UNSETs.
func TestPrune(t *testing.T) {
	g, tab := setup(Config{})
	alive := map[int]bool{100: true, 200: true}
	tcp := map[uint16]bool{2000: true, 2001: true, 2002: true}
	p := g.NewPruner(PruneConfig{
		Alive: func(pid int, _ uint64) bool { return alive[pid] },
		Ports: func() (map[uint16]bool, map[uint16]bool, error) { return tcp, map[uint16]bool{}, nil },
		Local: func(netip.Addr) bool { return false },
	})
	var unsets []uint32
	tab.SetObserver(func(op registry.Op, e registry.Entry) error {
		g.Observe(op, e)
		if op == registry.OpUnset {
			unsets = append(unsets, e.Prog)
		}
		return nil
	})
	// track reads the start time of the pid: use ours.
	pid := osPid()
	alive[pid] = true
	for i, prog := range []uint32{500000, 500001} {
		if got := answer(t, g, setV4(uint32(i), prog, "tcp", "127.0.0.1.7."+itoa(208+i)), local(1000, pid)); got != "TRUE" {
			t.Fatal(got)
		}
	}
	answer(t, g, setV4(9, 500002, "tcp", "0.0.0.0.7.210"), local(0, 0))    // untracked, port 2002
	answer(t, g, setV4(8, 500003, "tcp", "192.0.2.50.7.211"), local(0, 0)) // not this host's address
	if p.Tracked() != 2 {
		t.Fatalf("tracked %d, want 2", p.Tracked())
	}
	if n := p.Sweep(); n != 0 {
		t.Fatalf("first sweep removed %d, all alive", n)
	}
	// The process dies and 500000's port closes; 500001's port stays bound
	// (a child serves it); 500002's listener closes.
	alive[pid] = false
	delete(tcp, 2000)
	delete(tcp, 2002)
	if n := p.Sweep(); n != 1 {
		t.Errorf("sweep after the death removed %d, want 1 (500000)", n)
	}
	if n := p.Sweep(); n != 1 {
		t.Errorf("second sweep removed %d, want 1 (500002 after %d misses)", n, PruneMisses)
	}
	for prog, want := range map[uint32]bool{500000: false, 500001: true, 500002: false, 500003: true} {
		if _, ok := tab.Find(prog, 1, "tcp"); ok != want {
			t.Errorf("%d present %v, want %v", prog, ok, want)
		}
	}
	if len(unsets) != 2 || p.Tracked() != 1 {
		t.Errorf("observer UNSETs %v, tracked %d", unsets, p.Tracked())
	}
	if _, ok := tab.Find(pmap.Prog, 4, "tcp"); !ok {
		t.Error("a self entry was pruned")
	}
}

// TestSourceLimit: the per-source cap closes a source's connection over
// the cap at once and counts; closing one frees a slot; exempt sources
// are not counted.
func TestSourceLimit(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := LimitPerSource(ln, 2)
	l.local = func(netip.Addr) bool { return false } // treat 127.0.0.1 as remote
	defer l.Close()
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	var clients []net.Conn
	for i := 0; i < 2; i++ {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	a1, a2 := <-accepted, <-accepted
	// The third is reset by the listener (the RST may already fail the
	// connect), so its read ends.
	if c3, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		clients = append(clients, c3)
		c3.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c3.Read(make([]byte, 1)); err == nil {
			t.Error("the connection over the cap was not closed")
		}
	} else {
		for l.Denied() == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	if l.Denied() != 1 || l.Open(netip.MustParseAddr("127.0.0.1")) != 2 {
		t.Errorf("denied %d open %d", l.Denied(), l.Open(netip.MustParseAddr("127.0.0.1")))
	}
	a1.Close()
	a1.Close() // twice: one slot only
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a3 := <-accepted
	if l.Open(netip.MustParseAddr("127.0.0.1")) != 2 {
		t.Errorf("open %d after close+accept, want 2", l.Open(netip.MustParseAddr("127.0.0.1")))
	}
	a2.Close()
	a3.Close()
	for _, c := range clients {
		c.Close()
	}
}

// TestSourceLimitNetConn: a server that takes the socket (NetConn) and
// closes it keeps the slot until it closes the counted connection.
func TestSourceLimitNetConn(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := LimitPerSource(ln, 1)
	l.local = func(netip.Addr) bool { return false } // treat 127.0.0.1 as remote
	defer l.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	nc, ok := a.(interface{ NetConn() net.Conn })
	if !ok {
		t.Fatal("counted connection has no NetConn")
	}
	if _, ok := nc.NetConn().(*net.TCPConn); !ok {
		t.Fatalf("NetConn is %T, want *net.TCPConn", nc.NetConn())
	}
	nc.NetConn().Close()
	lo := netip.MustParseAddr("127.0.0.1")
	if n := l.Open(lo); n != 1 {
		t.Errorf("open %d after the socket was closed, want 1 (the slot is held)", n)
	}
	a.Close()
	if n := l.Open(lo); n != 0 {
		t.Errorf("open %d after Close, want 0", n)
	}
}
