package hostsaccess

import (
	"net/netip"
	"testing"
)

// A typical Debian hardening setup: hosts.allow lists the LAN, hosts.deny
// denies the rest.
const (
	benchAllow = "rpcbind: 127.0.0.1 [::1] 192.168.0.0/255.255.0.0 10. [fd00::]/8\nsshd: ALL\n"
	benchDeny  = "rpcbind: ALL\nALL: ALL\n"
)

func benchChecker(b *testing.B) *Checker {
	c, _ := files(b, benchAllow, benchDeny)
	return c
}

// BenchmarkAllowed: the real clock, so the per-second stat is included.
func BenchmarkAllowed(b *testing.B) {
	c := benchChecker(b)
	for _, a := range []string{"192.168.7.7", "203.0.113.9", "fd00::1", "::ffff:10.1.2.3"} {
		addr := netip.MustParseAddr(a)
		b.Run(a, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c.Allowed(addr)
			}
		})
	}
}

func BenchmarkAllowedParallel(b *testing.B) {
	c := benchChecker(b)
	addr := netip.MustParseAddr("203.0.113.9")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Allowed(addr)
		}
	})
}

func BenchmarkReload(b *testing.B) {
	c := benchChecker(b)
	b.ReportAllocs()
	for b.Loop() {
		c.Reload()
	}
}
