package ifaddr

import (
	"fmt"
	"github.com/openrpcbind/rpcbind/internal/testenv"

	"net/netip"
	"testing"
)

var (
	lo  = FlagUp | FlagLoopback
	eth = FlagUp
	ptp = FlagUp | FlagPointToPoint
)

func addr(p string, fl Flags, idx int, name string) Addr {
	return Addr{Prefix: netip.MustParsePrefix(p), Flags: fl, Index: idx, Name: name}
}

// capture is the namespace of the reference capture (testvectors/README.md).
var capture = []Addr{
	addr("127.0.0.1/8", lo, 1, "lo"),
	addr("127.0.0.2/8", lo, 1, "lo"),
	addr("::1/128", lo, 1, "lo"),
}

var host = []Addr{
	addr("127.0.0.1/8", lo, 1, "lo"),
	addr("10.0.0.5/24", ptp, 2, "tun0"),
	addr("192.168.1.10/24", eth, 3, "eth0"),
	addr("192.168.2.10/24", eth, 4, "eth1"),
	addr("172.16.0.1/16", FlagLoopback, 5, "down0"), // not UP
	addr("::1/128", lo, 1, "lo"),
	addr("fe80::1/64", eth, 3, "eth0"),
	addr("fe80::2/64", eth, 4, "eth1"),
	addr("2001:db8::10/64", eth, 3, "eth0"),
}

func TestMerge(t *testing.T) {
	cases := []struct {
		name         string
		ifs          []Addr
		caller, hint string
		reg, netid   string
		want         string
		ok           bool
	}{
		// Reference exchanges 41-49 (spec §1.6, [EMP]).
		{"no hint: caller's address", capture, "127.0.0.1:4000", "", "0.0.0.0.3.233", "udp", "127.0.0.1.3.233", true},
		{"hint 127.0.0.2: exact match first", capture, "127.0.0.1:4000", "127.0.0.2.0.0", "0.0.0.0.3.233", "udp", "127.0.0.2.3.233", true},
		{"caller 127.0.0.2", capture, "127.0.0.2:4000", "", "0.0.0.0.3.233", "udp", "127.0.0.2.3.233", true},
		{"junk hint fails", capture, "127.0.0.1:4000", "junk", "0.0.0.0.3.233", "udp", "", false},
		{"IPv6 hint over udp fails", capture, "127.0.0.1:4000", "::1.0.111", "0.0.0.0.3.233", "udp", "", false},
		{"registered host part ignored", capture, "127.0.0.2:4000", "", "10.9.8.7.3.232", "udp", "127.0.0.2.3.232", true},
		{"udp6", capture, "[::1]:4000", "", "::.3.234", "udp6", "::1.3.234", true},
		{"127.0.0.5: first matching prefix", capture, "127.0.0.5:4000", "", "0.0.0.0.0.1", "tcp", "127.0.0.1.0.1", true},
		// addrmerge's loop on a host with several interfaces.
		{"subnet of the first normal interface", host, "192.168.1.77:1", "", "0.0.0.0.8.1", "udp", "192.168.1.10.8.1", true},
		// 1.2.6 quirk (b5937e1): a prefix match only becomes bestif when none
		// is remembered yet, so an earlier "normal" interface keeps its place.
		{"later subnet does not displace a normal interface (1.2.6)", host, "192.168.2.77:1", "", "0.0.0.0.8.1", "udp", "192.168.1.10.8.1", true},
		{"no subnet: first normal interface", host, "198.51.100.1:1", "", "0.0.0.0.8.1", "udp", "192.168.1.10.8.1", true},
		{"loopback match displaced by a normal interface", host, "127.0.0.9:1", "", "0.0.0.0.8.1", "udp", "192.168.1.10.8.1", true},
		{"exact loopback wins", host, "127.0.0.1:1", "", "0.0.0.0.8.1", "udp", "127.0.0.1.8.1", true},
		{"ptp exact", host, "10.0.0.5:1", "", "0.0.0.0.8.1", "udp", "10.0.0.5.8.1", true},
		{"link-local by scope", host, "[fe80::99%eth1]:1", "", "::.8.1", "udp6", "fe80::2.8.1", true},
		{"link-local by numeric scope", host, "[fe80::99%3]:1", "", "::.8.1", "udp6", "fe80::1.8.1", true},
		{"global v6 after a link-local (1.2.6)", host, "[2001:db8::77]:1", "", "::.8.1", "tcp6", "fe80::1.8.1", true},
		{"global v6 exact", host, "[2001:db8::10]:1", "", "::.8.1", "tcp6", "2001:db8::10.8.1", true},
		{"hint overrides caller", host, "192.168.1.1:1", "192.168.2.10.0.0", "0.0.0.0.8.1", "udp", "192.168.2.10.8.1", true},
		{"lenient port", host, "192.168.1.1:1", "", "0.0.0.0.1x.-1", "udp", "192.168.1.10.255.255", true},
		// Failures, where GETADDR returns the registration unmerged.
		{"wildcard caller: unchanged", host, "0.0.0.0:1", "", "anything", "udp", "anything", true},
		{"unknown netid", host, "127.0.0.1:1", "", "0.0.0.0.8.1", "foo", "", false},
		{"local netid", host, "127.0.0.1:1", "", "/run/x", "local", "", false},
		{"no caller address", host, "", "", "0.0.0.0.8.1", "udp", "", false},
		{"unparsable registration", host, "127.0.0.1:1", "", "nonsense", "udp", "", false},
		{"no interfaces", nil, "127.0.0.1:1", "", "0.0.0.0.8.1", "udp", "", false},
		{"zone in hint", host, "[fe80::99%eth1]:1", "fe80::2%eth1.0.0", "::.8.1", "udp6", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := NewStatic(tc.ifs)
			var ap netip.AddrPort
			if tc.caller != "" {
				ap = netip.MustParseAddrPort(tc.caller)
			}
			got, ok := c.Merge(ap, tc.hint, tc.reg, tc.netid)
			if got != tc.want || ok != tc.ok {
				t.Errorf("Merge(%v, %q, %q, %s) = %q, %v; want %q, %v", ap, tc.hint, tc.reg, tc.netid, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestAtoi(t *testing.T) {
	for s, want := range map[string]int32{"": 0, "12": 12, " +7x": 7, "-1": -1, "abc": 0, "99999999999999999999": -1, "4294967297": 1} {
		if got := atoi(s); got != want {
			t.Errorf("atoi(%q) = %d, want %d", s, got, want)
		}
	}
}

// TestAtoiOverflow: the clamp happens exactly past LONG_MAX (and
// LONG_MIN), as strtol's.
func TestAtoiOverflow(t *testing.T) {
	for s, want := range map[string]int32{
		"9223372036854775807":   trunc(9223372036854775807),  // LONG_MAX
		"9223372036854775808":   trunc(9223372036854775807),  // clamped
		"9223372036854775810":   trunc(9223372036854775807),  // clamped
		"-9223372036854775807":  trunc(-9223372036854775807), // in range
		"-9223372036854775808":  trunc(-9223372036854775808), // LONG_MIN, by the clamp
		"-99999999999999999999": trunc(-9223372036854775808),
		"922337203685477580":    trunc(922337203685477580),
	} {
		if got := atoi(s); got != want {
			t.Errorf("atoi(%q) = %d, want %d", s, got, want)
		}
	}
}

// trunc is C's conversion of a long to int.
func trunc(l int64) int32 { return int32(l) }

// TestAppendUaddr: every octet and port byte as strconv writes it.
func TestAppendUaddr(t *testing.T) {
	for x := 0; x < 256; x++ {
		a := netip.AddrFrom4([4]byte{byte(x), 0, byte(255 - x), 10})
		port := uint16(x)<<8 | uint16(255-x)
		want := fmt.Sprintf("%d.0.%d.10.%d.%d", x, 255-x, x, 255-x)
		if got := string(appendUaddr(nil, a, port)); got != want {
			t.Fatalf("appendUaddr(%v, %d) = %q, want %q", a, port, got, want)
		}
	}
	if got := string(appendUaddr(nil, netip.MustParseAddr("fe80::1%eth0"), 0x0102)); got != "fe80::1.1.2" {
		t.Errorf("IPv6: %q", got)
	}
}

func TestMergeAllocs(t *testing.T) {
	c := NewStatic(capture)
	ap := netip.MustParseAddrPort("127.0.0.1:4000")
	hint := []byte("127.0.0.2.0.0")
	buf := make([]byte, 0, 64)
	if n := testing.AllocsPerRun(100, func() { c.AppendMerge(buf, ap, hint, "0.0.0.0.3.233", "udp") }); n != 0 {
		t.Errorf("%v allocations, want 0", n)
	}
}

// TestSystem reads the real list; it must at least hold a loopback address
// when the host has one, and New/Close must not leak the watcher.
func TestSystem(t *testing.T) {
	c, err := New()
	if err != nil {
		testenv.Missing(t, "the interface list from netlink (%v)", err)
	}
	defer c.Close()
	for _, a := range c.Addrs() {
		if a.Prefix.Addr().Zone() != "" {
			t.Errorf("zone kept in %v", a.Prefix)
		}
	}
	if err := c.Refresh(); err != nil {
		t.Error(err)
	}
}

func FuzzMerge(f *testing.F) {
	f.Add("127.0.0.1:1", "127.0.0.2.0.0", "0.0.0.0.3.233", "udp")
	f.Add("[fe80::1%eth0]:1", "", "::.1.2", "udp6")
	c := NewStatic(host)
	f.Fuzz(func(t *testing.T, caller, hint, reg, netid string) {
		ap, _ := netip.ParseAddrPort(caller)
		got, ok := c.Merge(ap, hint, reg, netid)
		if !ok && got != "" {
			t.Fatalf("failed merge returned %q", got)
		}
	})
}
