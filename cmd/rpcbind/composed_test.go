package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/openrpcbind/rpcbind/internal/access"
	"github.com/openrpcbind/rpcbind/internal/daemon"
	"github.com/openrpcbind/rpcbind/internal/ifaddr"
	"github.com/openrpcbind/rpcbind/internal/registry"
	"github.com/openrpcbind/rpcbind/internal/rpc"
	"github.com/openrpcbind/rpcbind/internal/server"
	"github.com/openrpcbind/rpcbind/internal/warmstart"
	"github.com/openrpcbind/rpcbind/pmap"
)

// lineCounter is the daemon's stderr in these tests: it counts the lines
// written and keeps nothing (it must not allocate itself).
type lineCounter struct{ lines atomic.Int64 }

func (w *lineCounter) Write(p []byte) (int, error) {
	for _, c := range p {
		if c == '\n' {
			w.lines.Add(1)
		}
	}
	return len(p), nil
}

// composed is the handler exactly as run() serves it (d.handler), over a
// table with the self entries, a few registrations, a journal in a temp
// directory, the interface list and hosts.allow/deny files that deny
// deniedNet.
type composed struct {
	h     server.Handler
	tab   *registry.Table
	store *warmstart.Store
	lines *lineCounter
}

const deniedNet = "198.51.100.0/24"

func newComposed(t testing.TB, args ...string) *composed {
	t.Helper()
	return newComposedIn(t, "", args...)
}

// newComposedIn is newComposed with the state directory under stateParent
// ("" for the test's temporary directory).
func newComposedIn(t testing.TB, stateParent string, args ...string) *composed {
	t.Helper()
	f, err := daemon.Parse("rpcbind", args)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	allow, deny := filepath.Join(dir, "hosts.allow"), filepath.Join(dir, "hosts.deny")
	if err := os.WriteFile(allow, []byte("# nothing\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(deny, []byte("rpcbind: "+deniedNet+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	w := &lineCounter{}
	syslogPath := ""
	if !f.Foreground {
		// A syslog daemon: counts the datagrams.
		syslogPath = filepath.Join(dir, "log")
		pc, err := net.ListenPacket("unixgram", syslogPath)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pc.Close() })
		go func() {
			buf := make([]byte, 1024)
			for {
				if _, _, err := pc.ReadFrom(buf); err != nil {
					return
				}
				w.lines.Add(1)
			}
		}()
	}
	log, closeLog := newLogger(f, w, syslogPath)
	t.Cleanup(closeLog)
	d := &rpcbindDaemon{f: f, log: log, hostsFiles: [2]string{allow, deny}}

	tab := registry.New(registry.SelfEntries("::.0.111", "::.0.111", "0.0.0.0.0.111", "0.0.0.0.0.111", "/run/rpcbind.sock"))
	for i := 0; i < 50; i++ {
		for _, netid := range []string{"udp", "tcp"} {
			tab.Set(registry.Entry{Prog: uint32(300000 + i), Vers: 1, Netid: netid,
				Addr: fmt.Sprintf("0.0.0.0.%d.%d", 4+i/256, i%256), Owner: "superuser"})
		}
	}
	stateDir := filepath.Join(dir, "state")
	if stateParent != "" {
		if stateDir, err = os.MkdirTemp(stateParent, "rpcbind-state-"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(stateDir) })
	}
	store, err := warmstart.Open(stateDir, warmstart.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if err := store.Compact(tab.Entries()); err != nil {
		t.Fatal(err)
	}
	ifaces, err := ifaddr.New()
	if err != nil {
		t.Fatalf("interface list: %v", err)
	}
	t.Cleanup(func() { ifaces.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return &composed{h: d.handler(ctx, tab, store, nil, ifaces), tab: tab, store: store, lines: w}
}

// server-side buffers, as internal/server keeps them: a UDP reader's arena
// (a datagram's reply is at most 9000 bytes) and a stream's out buffer,
// kept while it is at most 64 KiB.
type transport struct {
	out []byte
}

// serve is what the server does with one request: a stream goes through
// ServeRPCTail when the handler has it, a datagram through ServeRPC.
func (tr *transport) serve(h server.Handler, req []byte, c *access.Caller) (reply, tail []byte, send bool) {
	out := tr.out[:0]
	if th, ok := h.(server.TailHandler); ok && !isUDP(c) {
		reply, tail, send = th.ServeRPCTail(out, req, c)
	} else {
		reply, send = h.ServeRPC(out, req, c)
	}
	if cap(reply) <= 64<<10 {
		tr.out = reply[:0]
	}
	return reply, tail, send
}

func isUDP(c *access.Caller) bool { return c.Netid == "udp" || c.Netid == "udp6" }

type allocCall struct {
	name string
	reqs [][]byte // served in order in one run (SET then UNSET)
}

func pmapCall(vers uint32, proc pmap.Proc, args []byte) []byte {
	return append(rpc.AppendCall(nil, 7, pmap.Prog, vers, uint32(proc), nil), args...)
}

func allocCalls() []allocCall {
	m := func(prog, vers, prot, port uint32) []byte {
		return (&pmap.Mapping{Prog: prog, Vers: vers, Prot: prot, Port: port}).AppendXDR(nil)
	}
	rpcb := func(prog, vers uint32, netid, addr string) []byte {
		return pmap.AppendRPCB(nil, prog, vers, netid, addr, "superuser")
	}
	callArgs := (&pmap.CallArgs{Prog: 300001, Vers: 1, Proc: 0}).AppendXDR(nil)
	return []allocCall{
		{"v2 NULL", [][]byte{pmapCall(2, pmap.PmapProcNull, nil)}},
		{"v4 NULL", [][]byte{pmapCall(4, pmap.RPCBProcNull, nil)}},
		{"v2 GETPORT", [][]byte{pmapCall(2, pmap.PmapProcGetPort, m(300001, 1, 17, 0))}},
		{"v2 GETPORT miss", [][]byte{pmapCall(2, pmap.PmapProcGetPort, m(399999, 1, 6, 0))}},
		{"v3 GETADDR", [][]byte{pmapCall(3, pmap.RPCBProcGetAddr, rpcb(300002, 1, "udp", ""))}},
		{"v4 GETADDR", [][]byte{pmapCall(4, pmap.RPCBProcGetAddr, rpcb(300003, 1, "tcp", ""))}},
		{"v2 DUMP", [][]byte{pmapCall(2, pmap.PmapProcDump, nil)}},
		{"v4 DUMP", [][]byte{pmapCall(4, pmap.RPCBProcDump, nil)}},
		{"v4 GETSTAT", [][]byte{pmapCall(4, pmap.RPCBProcGetStat, nil)}},
		{"v2 CALLIT", [][]byte{pmapCall(2, pmap.PmapProcCallit, callArgs)}},
		{"v3 CALLIT", [][]byte{pmapCall(3, pmap.RPCBProcCallit, callArgs)}},
		{"v4 INDIRECT", [][]byte{pmapCall(4, pmap.RPCBProcIndirect, callArgs)}},
		{"v2 SET+UNSET", [][]byte{
			pmapCall(2, pmap.PmapProcSet, m(400001, 1, 17, 4000)),
			pmapCall(2, pmap.PmapProcUnset, m(400001, 1, 17, 4000))}},
		{"v4 SET+UNSET", [][]byte{
			pmapCall(4, pmap.RPCBProcSet, rpcb(400002, 1, "udp", "0.0.0.0.15.161")),
			pmapCall(4, pmap.RPCBProcUnset, rpcb(400002, 1, "udp", ""))}},
	}
}

// allocCallers: the local socket (root and a user), loopback and remote
// callers over UDP and TCP, and a remote one hosts.deny refuses.
func allocCallers() []*access.Caller {
	ip := func(netid, ap string) *access.Caller {
		a := netip.MustParseAddrPort(ap)
		dst := netip.MustParseAddrPort("127.0.0.1:111")
		if a.Addr().Is6() {
			dst = netip.MustParseAddrPort("[::1]:111")
		}
		return &access.Caller{Netid: netid, Addr: a, Dst: dst, UID: -1}
	}
	return []*access.Caller{
		{Netid: "local", UID: 0, PID: 4321},
		{Netid: "local", UID: 1000, PID: 4322},
		ip("udp", "127.0.0.1:700"),
		ip("tcp", "127.0.0.1:701"),
		ip("udp6", "[::1]:702"),
		ip("udp", "192.0.2.1:40000"),
		ip("tcp", "192.0.2.1:40001"),
		ip("udp6", "[2001:db8::1]:40002"),
		ip("udp", "198.51.100.7:40003"), // hosts.deny
	}
}

func callerName(c *access.Caller) string {
	if c.IsLocalSocket() {
		return fmt.Sprintf("local uid %d", c.UID)
	}
	return c.Netid + " " + c.Addr.String()
}

// allocModes are the daemon's logging modes: -l (access log) and -d (a
// line per request) off and on, to stderr (-f) and to syslog.
var allocModes = [][]string{
	{"-f"},
	{"-f", "-l"},
	{"-f", "-d"},
	{"-f", "-l", "-d"},
	{},
	{"-l"},
	{"-d"},
	{"-l", "-d"},
}

// A DUMP over a stream leaves the table's cached encoding as the tail, in
// every mode: the -d wrapper must not hide the guard's ServeRPCTail.
func TestComposedHandlerDumpTail(t *testing.T) {
	for _, args := range allocModes {
		cs := newComposed(t, args...)
		c := &access.Caller{Netid: "tcp", Addr: netip.MustParseAddrPort("127.0.0.1:701"), UID: -1}
		tr := &transport{out: make([]byte, 0, 1024)}
		for _, vers := range []uint32{2, 3, 4} {
			_, tail, send := tr.serve(cs.h, pmapCall(vers, pmap.RPCBProcDump, nil), c)
			if !send || len(tail) < 100*20 {
				t.Errorf("%v: v%d DUMP over tcp: send %v, tail of %d bytes", args, vers, send, len(tail))
			}
		}
	}
}

// BenchmarkComposedHandler: the daemon's handler, a loopback UDP caller;
// "remote SET" is a denied SET from a remote caller (a warning, rate
// limited: the flood path), "tcp DUMP" a DUMP over a stream (the tail
// path), "local SET+UNSET" a pair from uid 1000 on the local socket (a
// journalled change: fdatasync included).
func BenchmarkComposedHandler(b *testing.B) {
	loop := &access.Caller{Netid: "udp", Addr: netip.MustParseAddrPort("127.0.0.1:700"),
		Dst: netip.MustParseAddrPort("127.0.0.1:111"), UID: -1}
	remote := &access.Caller{Netid: "udp", Addr: netip.MustParseAddrPort("192.0.2.1:40000"),
		Dst: netip.MustParseAddrPort("127.0.0.1:111"), UID: -1}
	tcp := &access.Caller{Netid: "tcp", Addr: netip.MustParseAddrPort("127.0.0.1:701"),
		Dst: netip.MustParseAddrPort("127.0.0.1:111"), UID: -1}
	local := &access.Caller{Netid: "local", UID: 1000, PID: 4322}
	for _, args := range allocModes[:4] {
		cs := newComposed(b, args...)
		for _, call := range allocCalls() {
			name, c, reqs := call.name, loop, call.reqs[:1]
			switch name {
			case "v2 NULL", "v2 GETPORT", "v4 GETADDR", "v4 DUMP", "v4 INDIRECT":
			case "v2 DUMP":
				name, c = "tcp DUMP", tcp
			case "v2 SET+UNSET":
				name, c = "remote SET", remote
			case "v4 SET+UNSET":
				name, c, reqs = "local SET+UNSET", local, call.reqs
			default:
				continue
			}
			b.Run(fmt.Sprintf("%v/%s", args[1:], name), func(b *testing.B) {
				tr := &transport{out: make([]byte, 0, 1024)}
				if isUDP(c) {
					tr.out = make([]byte, 0, server.UDPBufSize)
				}
				b.ReportAllocs()
				for b.Loop() {
					for _, req := range reqs {
						tr.serve(cs.h, req, c)
					}
				}
			})
		}
	}
}
