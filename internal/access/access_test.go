package access

import (
	"net/netip"
	"testing"
)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// The ownership and may-change matrix. Expected values come from the
// reference (spec §3.1/§3.2 and testvectors 167–181: SET from 127.0.0.2 is
// AUTH_TOOWEAK even with AUTH_SYS uid 0; port 700/701/702 records
// "superuser"; 40700/40701 record "unknown").
func TestOwnerAndMayChange(t *testing.T) {
	tests := []struct {
		name     string
		c        Caller
		owner    string
		may      bool // without -i
		insecure bool // MayChange with -i
		nonLocal bool
	}{
		{"root on local socket", Caller{Netid: "local", UID: 0}, "superuser", true, true, false},
		{"uid 1000 on local socket", Caller{Netid: "local", UID: 1000}, "1000", true, true, false},
		{"nobody on local socket", Caller{Netid: "local", UID: 65534}, "65534", true, true, false},
		{"unix netid, uid 0", Caller{Netid: "unix", UID: 0}, "superuser", true, true, false},
		{"local socket without peercred", Caller{Netid: "local", UID: -1}, "unknown", true, true, false},
		{"loopback udp port 700 [173]", Caller{Netid: "udp", Addr: ap("127.0.0.1:700"), UID: -1}, "superuser", true, true, false},
		{"loopback tcp port 701 [175]", Caller{Netid: "tcp", Addr: ap("127.0.0.1:701"), UID: -1}, "superuser", true, true, false},
		{"loopback port 1023", Caller{Netid: "udp", Addr: ap("127.0.0.1:1023"), UID: -1}, "superuser", true, true, false},
		{"loopback port 1024", Caller{Netid: "udp", Addr: ap("127.0.0.1:1024"), UID: -1}, "unknown", true, true, false},
		{"loopback unprivileged port 40700 [174]", Caller{Netid: "udp", Addr: ap("127.0.0.1:40700"), UID: -1}, "unknown", true, true, false},
		{"127.0.0.2 privileged port", Caller{Netid: "udp", Addr: ap("127.0.0.2:700"), UID: -1}, "unknown", false, true, false},
		{"127.0.0.2 unprivileged [167]", Caller{Netid: "udp", Addr: ap("127.0.0.2:40000"), UID: -1}, "unknown", false, true, false},
		{"::1 port 702 [177]", Caller{Netid: "udp6", Addr: ap("[::1]:702"), UID: -1}, "superuser", true, true, false},
		{"::1 unprivileged", Caller{Netid: "tcp6", Addr: ap("[::1]:50000"), UID: -1}, "unknown", true, true, false},
		{"::ffff:127.0.0.1 port 700", Caller{Netid: "udp6", Addr: ap("[::ffff:127.0.0.1]:700"), UID: -1}, "superuser", true, true, false},
		{"::ffff:127.0.0.1 unprivileged", Caller{Netid: "udp6", Addr: ap("[::ffff:127.0.0.1]:40000"), UID: -1}, "unknown", true, true, false},
		{"::ffff:127.0.0.2", Caller{Netid: "udp6", Addr: ap("[::ffff:127.0.0.2]:700"), UID: -1}, "unknown", false, true, false},
		{"remote privileged port", Caller{Netid: "udp", Addr: ap("192.0.2.7:700"), UID: -1}, "unknown", false, true, true},
		{"remote unprivileged", Caller{Netid: "tcp", Addr: ap("192.0.2.7:40000"), UID: -1}, "unknown", false, true, true},
		{"remote v6", Caller{Netid: "tcp6", Addr: ap("[2001:db8::1]:700"), UID: -1}, "unknown", false, true, true},
		{"uid set but not on the local socket", Caller{Netid: "tcp", Addr: ap("192.0.2.7:700"), UID: 0}, "unknown", false, true, true},
		{"zero caller", Caller{UID: -1}, "unknown", false, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Owner(&tt.c); got != tt.owner {
				t.Errorf("Owner = %q, want %q", got, tt.owner)
			}
			if got := MayChange(&tt.c, false); got != tt.may {
				t.Errorf("MayChange(secure) = %v, want %v", got, tt.may)
			}
			if got := MayChange(&tt.c, true); got != tt.insecure {
				t.Errorf("MayChange(insecure) = %v, want %v", got, tt.insecure)
			}
			if got := tt.c.IsNonLocal(); got != tt.nonLocal {
				t.Errorf("IsNonLocal = %v, want %v", got, tt.nonLocal)
			}
		})
	}
}

func TestIsLoopback(t *testing.T) {
	tests := []struct {
		addr string
		want bool
	}{
		{"127.0.0.1", true},
		{"127.0.0.2", true},
		{"127.255.255.254", true},
		{"::1", true},
		{"::ffff:127.0.0.1", true},
		{"::ffff:127.9.9.9", true},
		{"128.0.0.1", false},
		{"10.0.0.1", false},
		{"::2", false},
		{"::", false},
		{"0.0.0.0", false},
		{"fe80::1", false},
	}
	for _, tt := range tests {
		if got := IsLoopback(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("IsLoopback(%s) = %v, want %v", tt.addr, got, tt.want)
		}
	}
	if IsLoopback(netip.Addr{}) {
		t.Error("IsLoopback(invalid) = true")
	}
}

func TestIsLocalSocket(t *testing.T) {
	for netid, want := range map[string]bool{"local": true, "unix": true, "udp": false, "tcp6": false, "": false, "LOCAL": false} {
		c := Caller{Netid: netid}
		if got := c.IsLocalSocket(); got != want {
			t.Errorf("IsLocalSocket(%q) = %v, want %v", netid, got, want)
		}
	}
}

// The reference's check_callit deny list (security.c; spec §1.7; [EMP]
// 100000/1, 100003/1, 100005/1 denied and 100005/2 allowed; exchanges 27
// and 141 got AUTH_TOOWEAK for prog 100000).
func TestCallitAllowed(t *testing.T) {
	tests := []struct {
		prog, proc uint32
		insecure   bool
		want       bool
	}{
		{100000, 0, false, true}, // NULL always allowed
		{100000, 1, false, false},
		{100000, 1, true, true},
		{100000, 3, false, false},
		{100003, 0, false, true},
		{100003, 1, false, false},
		{100003, 1, true, false},
		{100003, 22, false, false},
		{100004, 1, false, true},
		{100004, 2, false, true},
		{100004, 3, false, false}, // YPPROC_MATCH
		{100004, 4, false, false}, // YPPROC_FIRST
		{100004, 5, false, false}, // YPPROC_NEXT
		{100004, 6, false, true},
		{100004, 7, false, true},
		{100004, 8, false, false}, // YPPROC_ALL
		{100004, 9, false, true},
		{100005, 0, false, true},
		{100005, 1, false, false}, // MNT
		{100005, 2, false, true},  // DUMP
		{100005, 3, false, false}, // UMNT
		{100005, 4, false, true},
		{100005, 5, false, true},
		{100007, 1, false, true},
		{100007, 2, false, false}, // SETDOM
		{100007, 3, false, true},
		{100009, 1, false, false},
		{100009, 1, true, false},
		{100011, 1, false, false},
		{100011, 2, false, false},
		{100001, 1, false, true},
		{300001, 7, false, true},
		{0, 1, false, true},
	}
	for _, tt := range tests {
		if got := CallitAllowed(tt.prog, tt.proc, tt.insecure); got != tt.want {
			t.Errorf("CallitAllowed(%d, %d, %v) = %v, want %v", tt.prog, tt.proc, tt.insecure, got, tt.want)
		}
	}
}

func TestOwnerAllocs(t *testing.T) {
	c := Caller{Netid: "udp", Addr: ap("127.0.0.1:700"), UID: -1}
	if n := testing.AllocsPerRun(100, func() { _ = Owner(&c); _ = MayChange(&c, false) }); n != 0 {
		t.Errorf("Owner+MayChange allocate %v times, want 0", n)
	}
}

// AppendOwner appends what Owner returns, without allocating for a uid.
func TestAppendOwner(t *testing.T) {
	for _, c := range []Caller{
		{Netid: "local", UID: 0}, {Netid: "local", UID: 1000}, {Netid: "unix", UID: 65534},
		{Netid: "local", UID: -1}, {Netid: "udp", Addr: ap("127.0.0.1:700"), UID: -1},
		{Netid: "tcp", Addr: ap("127.0.0.1:40000"), UID: -1}, {Netid: "udp", Addr: ap("192.0.2.1:700"), UID: -1},
	} {
		var buf [32]byte
		if got, want := string(AppendOwner(buf[:0], &c)), Owner(&c); got != want {
			t.Errorf("%+v: AppendOwner %q, Owner %q", c, got, want)
		}
		if n := testing.AllocsPerRun(100, func() { AppendOwner(buf[:0], &c) }); n != 0 {
			t.Errorf("%+v: AppendOwner allocates %v times", c, n)
		}
	}
}
