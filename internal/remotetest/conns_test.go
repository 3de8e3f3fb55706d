// Issue 11 item 6: connection budgets by source seen from a remote host
// that owns many addresses — an IPv6 /64 is one source, and reaping at
// the total cap sheds the heaviest source, never the idle local callers.

package remotetest

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openrpcbind/rpcbind/internal/e2e"
	"github.com/openrpcbind/rpcbind/internal/guard"
	"github.com/openrpcbind/rpcbind/internal/rpc"
)

// hostAddrs returns n addresses counting up from first.
func hostAddrs(first string, n int) []netip.Addr {
	a := netip.MustParseAddr(first)
	out := make([]netip.Addr, n)
	for i := range out {
		out[i] = a
		a = a.Next()
	}
	return out
}

// addRemoteAddrs puts addrs on the remote end of the veth ("rt1"), each
// with the prefix length bits (so they are on the link's subnet), in one
// ip -batch run.
func addRemoteAddrs(t *testing.T, r *Remote, bits int, addrs []netip.Addr) {
	t.Helper()
	var b strings.Builder
	for _, a := range addrs {
		fmt.Fprintf(&b, "addr add %s dev rt1", netip.PrefixFrom(a, bits))
		if a.Is6() {
			b.WriteString(" nodad")
		}
		b.WriteByte('\n')
	}
	cmd := r.Command("ip", "-batch", "-")
	cmd.Stdin = strings.NewReader(b.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("remotetest: (remote) ip -batch: %v\n%s", err, out)
	}
}

// dialFrom opens a TCP connection from the remote host's address from to
// to; an error is the dial's (a reset before the dial returned included).
func dialFrom(t *testing.T, r *Remote, from netip.Addr, to string) (net.Conn, error) {
	t.Helper()
	var c net.Conn
	err := r.Do(func() (err error) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: from.AsSlice()}, Timeout: capPrompt}
		c, err = d.Dial("tcp", to)
		return err
	})
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

// answers sends a NULL over c and reports whether a reply came.
func answers(c net.Conn) bool {
	c.SetDeadline(time.Now().Add(capPrompt))
	if _, err := c.Write(nullRecord(5)); err != nil {
		return false
	}
	n, err := c.Read(make([]byte, 512))
	return n > 0 && err == nil
}

// TestPerSourceConnCapIPv6By64: the remote host has 80 addresses of
// 2001:db8::/64 and opens each connection from a different one. The first
// DefaultMaxConnsPerSource are answered; the rest are reset at once, as
// one /64 is one source; the held connections still work and the remote
// host's IPv4 address (another source) is served. On fee1c75 every
// address was its own source and all 80 were accepted.
func TestPerSourceConnCapIPv6By64(t *testing.T) {
	env, ok := e2e.Enter(t)
	if !ok {
		return
	}
	r := New(t, dualStack())
	const max = guard.DefaultMaxConnsPerSource
	addrs := hostAddrs("2001:db8::a:1", max+capExtra)
	addRemoteAddrs(t, r, 64, addrs)
	env.Start(t, ours(t, env))

	var held []net.Conn
	for i, a := range addrs[:max] {
		c, err := dialFrom(t, r, a, "[2001:db8::1]:111")
		if err != nil {
			t.Fatalf("connection %d from %s: %v", i+1, a, err)
		}
		if !answers(c) {
			t.Fatalf("connection %d of %d from %s: NULL not answered", i+1, max, a)
		}
		held = append(held, c)
	}
	resets := 0
	for i, a := range addrs[max:] {
		c, err := dialFrom(t, r, a, "[2001:db8::1]:111")
		switch {
		case errors.Is(err, syscall.ECONNRESET):
			err = nil
		case err != nil:
			t.Fatalf("connection %d from %s: dial: %v", max+i+1, a, err)
		default:
			err = refused(c)
		}
		if err != nil {
			t.Errorf("connection %d from %s (2001:db8::/64 holds %d): %v, want a reset", max+i+1, a, max, err)
			continue
		}
		resets++
	}
	t.Logf("%d connections over the cap of %d from 2001:db8::/64 (each from a new address): %d reset", capExtra, max, resets)
	for i, c := range held {
		if !answers(c) {
			t.Errorf("held connection %d after the refusals: NULL not answered", i+1)
		}
	}
	if got := null(t, r.DialRPC(t, "tcp", "192.0.2.1:111", quick)); got != "ok" {
		t.Errorf("remote host's IPv4 address while its /64 is capped: NULL %s", got)
	}
}

// TestReapKeepsLocalConnections: a daemon with --max-conns=24 holds three
// idle local-socket connections and an idle loopback one, each having
// answered a GETPORT. A remote host then opens 40 connections, one at a
// time and each answered, from one /64 (a new address each time) or from
// 40 IPv4 addresses. The cap is met by reaping the flood's connections:
// the first of them is closed, and GETPORT over the four local
// connections still works. On fee1c75 the least recently active
// connection anywhere went first: the idle local ones.
func TestReapKeepsLocalConnections(t *testing.T) {
	env, ok := e2e.Enter(t)
	if !ok {
		return
	}
	r := New(t, dualStack())
	const maxConns, flood = 24, 40
	v6 := hostAddrs("2001:db8::b:1", flood)
	v4 := hostAddrs("192.0.2.10", flood)
	addRemoteAddrs(t, r, 64, v6)
	addRemoteAddrs(t, r, 24, v4)
	for _, tc := range []struct {
		name string
		from []netip.Addr
		to   string
	}{
		{"one IPv6 /64", v6, "[2001:db8::1]:111"},
		{"40 IPv4 addresses", v4, "192.0.2.1:111"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env.Start(t, with(ours(t, env), fmt.Sprintf("--max-conns=%d", maxConns)))
			var local []*rpc.Client
			for i := range 3 {
				c, err := rpc.Dial("unix", "/run/rpcbind.sock", quick)
				if err != nil {
					t.Fatalf("local-socket client %d: %v", i, err)
				}
				t.Cleanup(func() { c.Close() })
				local = append(local, c)
			}
			lo, err := rpc.Dial("tcp", "127.0.0.1:111", quick)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { lo.Close() })
			local = append(local, lo)
			for i, c := range local {
				if got := getport(t, c); got != "port 111" {
					t.Fatalf("local client %d before the flood: GETPORT %s", i, got)
				}
			}
			var fl []net.Conn
			for i, a := range tc.from {
				c, err := dialFrom(t, r, a, tc.to)
				if err != nil {
					t.Fatalf("flood connection %d from %s: %v", i+1, a, err)
				}
				if !answers(c) {
					t.Fatalf("flood connection %d from %s: NULL not answered", i+1, a)
				}
				fl = append(fl, c)
			}
			for i, c := range local {
				if got := getport(t, c); got != "port 111" {
					t.Errorf("local client %d (%s) after %d remote connections over a cap of %d: GETPORT %s, want port 111",
						i, []string{"local", "local", "local", "127.0.0.1"}[i], flood, maxConns, got)
				}
			}
			if err := refused(fl[0]); err != nil {
				t.Errorf("the flood's first connection at the cap: %v, want it reaped", err)
			}
		})
	}
}
