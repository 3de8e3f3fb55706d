package guard

import (
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/openrpcbind/rpcbind/internal/nstest"
)

// addLoopbackAddrs puts each address on lo (namespace only) so that a
// test can dial from it; IPv6 without duplicate address detection.
func addLoopbackAddrs(t *testing.T, addrs ...string) {
	t.Helper()
	ip := nstest.Need(t, "ip", "/usr/sbin/ip", "/sbin/ip")
	for _, a := range addrs {
		p := netip.PrefixFrom(netip.MustParseAddr(a), netip.MustParseAddr(a).BitLen())
		args := []string{"addr", "add", p.String(), "dev", "lo"}
		if p.Addr().Is6() {
			args = append(args, "nodad")
		}
		if out, err := exec.Command(ip, args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestSourceLimitCountsIPv6By64: 2001:db8::1 and 2001:db8::2 share one
// /64 and so one budget: with a cap of 2, a second connection from ::1
// after one from ::2 is reset, while 2001:db8:0:1::1 (the next /64) is a
// source of its own. An IPv4 client reaching a dual-stack listener
// (::ffff:192.0.2.1) is counted as 192.0.2.1. Issue 11 item 6: the cap
// keyed IPv6 by full address, so one /64 could take every slot.
func TestSourceLimitCountsIPv6By64(t *testing.T) {
	if !nstest.Enter(t) {
		return
	}
	addLoopbackAddrs(t, "2001:db8::ff", "2001:db8::1", "2001:db8::2", "2001:db8:0:1::1", "192.0.2.1", "192.0.2.255")
	ln, err := net.Listen("tcp", "[::]:0") // dual-stack: IPv4 arrives v4-mapped
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).AddrPort().Port()
	l := LimitPerSource(ln, 2)
	defer l.Close()
	accepted := make(chan net.Conn, 16)
	go func() {
		defer close(accepted)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	var keep []net.Conn
	defer func() {
		for _, c := range keep {
			c.Close()
		}
	}()
	// admitted dials from → to and reports whether the listener let the
	// connection through (true) or reset it (false).
	admitted := func(from, to string) bool {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
		denied := l.Denied()
		c, err := d.Dial("tcp", netip.AddrPortFrom(netip.MustParseAddr(to), port).String())
		if err == nil {
			keep = append(keep, c)
		}
		deadline := time.After(5 * time.Second)
		for {
			select {
			case a := <-accepted:
				keep = append(keep, a)
				return true
			case <-deadline:
				t.Fatalf("dial from %s: neither accepted nor denied (dial err %v)", from, err)
			case <-time.After(5 * time.Millisecond):
				if l.Denied() > denied {
					return false
				}
			}
		}
	}
	for i, step := range []struct {
		from, to string
		want     bool
	}{
		{"2001:db8::2", "2001:db8::ff", true},
		{"2001:db8::1", "2001:db8::ff", true},
		{"2001:db8::1", "2001:db8::ff", false}, // third of 2001:db8::/64
		{"2001:db8::2", "2001:db8::ff", false},
		{"2001:db8:0:1::1", "2001:db8::ff", true}, // another /64
		{"2001:db8:0:1::1", "2001:db8::ff", true},
		{"2001:db8:0:1::1", "2001:db8::ff", false},
		{"192.0.2.1", "192.0.2.255", true},
		{"192.0.2.1", "192.0.2.255", true},
		{"192.0.2.1", "192.0.2.255", false},
	} {
		if got := admitted(step.from, step.to); got != step.want {
			t.Errorf("step %d: connection from %s admitted = %v, want %v", i+1, step.from, got, step.want)
		}
	}
	for _, tc := range []struct {
		addr string
		want int
	}{
		{"2001:db8::1", 2}, {"2001:db8::2", 2}, {"2001:db8::abcd", 2},
		{"2001:db8:0:1::1", 2}, {"2001:db8:0:2::1", 0},
		{"192.0.2.1", 2}, {"::ffff:192.0.2.1", 2}, {"192.0.2.2", 0},
	} {
		if got := l.Open(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("Open(%s) = %d, want %d", tc.addr, got, tc.want)
		}
	}
	if got := l.Denied(); got != 4 {
		t.Errorf("Denied() = %d, want 4", got)
	}
}
