package access

import (
	"net/netip"
	"testing"
)

// TestSourcePrefix: IPv4 by address, IPv4-mapped IPv6 as its IPv4
// address, IPv6 by /64 (two hosts of one /64 are one source, the next /64
// another), zones ignored.
func TestSourcePrefix(t *testing.T) {
	for _, tc := range []struct{ addr, want string }{
		{"192.0.2.7", "192.0.2.7/32"},
		{"::ffff:192.0.2.7", "192.0.2.7/32"},
		{"2001:db8::1", "2001:db8::/64"},
		{"2001:db8::ffff:ffff:ffff:ffff", "2001:db8::/64"},
		{"2001:db8:0:1::1", "2001:db8:0:1::/64"},
		{"fe80::1%eth0", "fe80::/64"},
	} {
		if got := SourcePrefix(netip.MustParseAddr(tc.addr)); got.String() != tc.want {
			t.Errorf("SourcePrefix(%s) = %s, want %s", tc.addr, got, tc.want)
		}
	}
	if p := SourcePrefix(netip.Addr{}); p.IsValid() {
		t.Errorf("SourcePrefix(invalid) = %s, want the zero Prefix", p)
	}
}
