package pmap

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseUaddr(t *testing.T) {
	good := []struct {
		in   string
		want string // netip.AddrPort text
	}{
		{"0.0.0.0.0.111", "0.0.0.0:111"},      // exchange 2, tcp/udp self-entries
		{"127.0.0.1.3.232", "127.0.0.1:1000"}, // exchange 64
		{"255.255.255.255.255.255", "255.255.255.255:65535"},
		{"::.0.111", "[::]:111"},            // exchange 2, tcp6/udp6 self-entries
		{"::1.3.232", "[::1]:1000"},         // exchange 68
		{"fe80::1.3.234", "[fe80::1]:1002"}, // spec §2.1
		{"::ffff:127.0.0.1.0.111", "[::ffff:127.0.0.1]:111"},
		{"::1.2.3.4.0.1", "[::102:304]:1"}, // IPv6 with a dotted tail
		{"1:2:3:4:5:6:7:8.0.0", "[1:2:3:4:5:6:7:8]:0"},
		{"ABCD::EF.0.7", "[abcd::ef]:7"},
		{"127.0.0.1.003.232", "127.0.0.1:1000"}, // leading zeros in port fields
	}
	for _, tc := range good {
		ap, err := ParseUaddr(tc.in)
		if err != nil {
			t.Errorf("ParseUaddr(%q): %v", tc.in, err)
			continue
		}
		if got := ap.String(); got != tc.want {
			t.Errorf("ParseUaddr(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
	bad := []string{
		"", "garbage", "127.0.0.1", "::1", // exchanges 65, 67, 69, 70
		"junk",            // exchange 45 hint
		"127.0.0.1.3.256", // port field above 255
		"127.0.0.1.-1.0", "127.0.0.1. 3.2", "127.0.0.1.+3.2", "127.0.0.1.3.",
		"127.0.0.1.0003.2", "127.0.0.1..2",
		"127.0.0.01.0.1", // inet_pton refuses leading zeros
		"127.0.0.1.0.0.1", "127.0.0.256.0.1", "1.2.3.0.1",
		"::1%lo.0.1", // no zone in a uaddr
		"[::1].0.1", ":::1.0.1", "1::2::3.0.1", "12345::.0.1", "1:2:3:4:5:6:7:8:9.0.1",
		"1:2:3:4::5:6:7:8.0.1", // "::" standing for no group
		"::1:.0.1", ":1::.0.1",
		"/run/rpcbind.sock", "127.0.0.1.3.232\x00",
	}
	for _, in := range bad {
		if ap, err := ParseUaddr(in); !errors.Is(err, ErrUaddr) {
			t.Errorf("ParseUaddr(%q) = %v, %v; want ErrUaddr", in, ap, err)
		}
	}
}

// Goldens for IPv6 text come from the reference where it printed them
// (exchanges 2, 48, 68, 75) and otherwise from glibc's inet_ntop algorithm
// (resolv/inet_ntop.c), noted "glibc".
func TestFormatUaddr(t *testing.T) {
	tests := []struct {
		ap   netip.AddrPort
		want string
	}{
		{netip.MustParseAddrPort("0.0.0.0:111"), "0.0.0.0.0.111"},      // exchange 2
		{netip.MustParseAddrPort("127.0.0.1:1000"), "127.0.0.1.3.232"}, // exchange 71
		{netip.MustParseAddrPort("[::]:111"), "::.0.111"},              // exchange 2
		{netip.MustParseAddrPort("[::1]:1002"), "::1.3.234"},           // exchange 48
		{netip.MustParseAddrPort("[6761:7262:6167:6521:6761:7262:6167:6521]:29282"),
			"6761:7262:6167:6521:6761:7262:6167:6521.114.98"}, // exchange 75
		{netip.MustParseAddrPort("[::ffff:1.2.3.4]:1"), "::ffff:1.2.3.4.0.1"},   // glibc
		{netip.MustParseAddrPort("[::102:304]:1"), "::1.2.3.4.0.1"},             // glibc: IPv4-compatible, Go says ::102:304
		{netip.MustParseAddrPort("[::1:0]:1"), "::0.1.0.0.0.1"},                 // glibc
		{netip.MustParseAddrPort("[::ffff:0:0]:1"), "::ffff:0.0.0.0.0.1"},       // glibc
		{netip.MustParseAddrPort("[1::]:1"), "1::.0.1"},                         // glibc: trailing run
		{netip.MustParseAddrPort("[1:0:0:1:0:0:0:1]:1"), "1:0:0:1::1.0.1"},      // glibc: longest run
		{netip.MustParseAddrPort("[1:0:0:1:1:0:0:1]:1"), "1::1:1:0:0:1.0.1"},    // glibc: first of equal runs
		{netip.MustParseAddrPort("[1:0:2:3:4:5:6:7]:1"), "1:0:2:3:4:5:6:7.0.1"}, // glibc: a single zero stays
		{netip.MustParseAddrPort("[fe80::1%eth0]:1"), "fe80::1.0.1"},            // zone dropped
		{netip.MustParseAddrPort("[0:0:0:0:0:1:0:0]:1"), "::1:0:0.0.1"},         // glibc
		{netip.MustParseAddrPort("[abcd:ef01::]:65535"), "abcd:ef01::.255.255"},
		{netip.AddrPort{}, ""},
	}
	for _, tc := range tests {
		if got := FormatUaddr(tc.ap); got != tc.want {
			t.Errorf("FormatUaddr(%v) = %q, want %q", tc.ap, got, tc.want)
		}
		b := AppendUaddr([]byte("x"), tc.ap)
		if string(b) != "x"+tc.want {
			t.Errorf("AppendUaddr(%v) = %q", tc.ap, b)
		}
		if tc.want == "" {
			continue
		}
		back, err := ParseUaddr(tc.want)
		if err != nil || back != netip.AddrPortFrom(tc.ap.Addr().WithZone(""), tc.ap.Port()) {
			t.Errorf("ParseUaddr(FormatUaddr(%v)) = %v, %v", tc.ap, back, err)
		}
	}
}

func TestUaddrPort(t *testing.T) {
	tests := []struct {
		in   string
		port int
		ok   bool
	}{
		{"0.0.0.0.3.232", 1000, true},
		{"10.9.8.7.3.232", 1000, true}, // spec §1.5: host discarded
		{"127.0.0.1.3.235", 1003, true},
		{"::.3.234", 1002, true},
		{"0.0.0.0.17.112", 4464, true}, // v2 SET of 70000 is stored truncated; the mirror reads it back
		{"127.0.0.1", 1, true},         // ".0" and ".1" are taken as the port
		{"a.b.c", 0, true},             // atoi of junk is 0
		{"x.1.300", 556, true},         // no range check
		{"x. +1.\t2junk", 258, true},   // atoi skips space, takes a sign, stops at junk
		{"x.-1.0", -256, true},
		{"x.99999999999.0", 1994915584, true},     // (int)99999999999 = 1215752191; *256 wraps in C int
		{"x.0.99999999999999999999999", -1, true}, // LONG_MAX → (int)-1
		{"x.0.-99999999999999999999999", 0, true}, // LONG_MIN → (int)0
		{"1.2.3.4.5.6\x00.7.8", 1286, true},       // C string ends at NUL
		{"garbage", 0, false},
		{"1.2", 0, false},
		{"", 0, false},
	}
	for _, tc := range tests {
		port, ok := UaddrPort(tc.in)
		if port != tc.port || ok != tc.ok {
			t.Errorf("UaddrPort(%q) = %d, %v; want %d, %v", tc.in, port, ok, tc.port, tc.ok)
		}
	}
}

func TestAtoi(t *testing.T) {
	tests := []struct {
		in   string
		want int32
	}{
		{"", 0}, {"0", 0}, {"232", 232}, {"-5", -5}, {"+5", 5}, {"  \n\t\v\f\r7", 7},
		{"--1", 0}, {"+-1", 0}, {"1x2", 1}, {"x", 0}, {" - 1", 0},
		{"2147483647", 2147483647}, {"2147483648", -2147483648}, {"4294967296", 0},
		{"9223372036854775807", -1}, {"9223372036854775808", -1}, {"-9223372036854775808", 0},
		{"-9223372036854775809", 0}, {"18446744073709551616", -1}, {"184467440737095516160", -1},
	}
	for _, tc := range tests {
		if got := atoi(tc.in); got != tc.want {
			t.Errorf("atoi(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestFamilyOfNetid(t *testing.T) {
	tests := map[string]Family{
		"udp": FamilyInet, "tcp": FamilyInet, "udp6": FamilyInet6, "tcp6": FamilyInet6,
		"local": FamilyLocal, "unix": FamilyLocal,
		"": FamilyUnknown, "foo": FamilyUnknown, "UDP": FamilyUnknown, "rawip": FamilyUnknown,
	}
	for netid, want := range tests {
		if got := FamilyOfNetid(netid); got != want {
			t.Errorf("FamilyOfNetid(%q) = %v, want %v", netid, got, want)
		}
		nc, ok := LookupNetconfig(netid)
		if ok != (want != FamilyUnknown) || (ok && (nc.Family != want || nc.Protofmly != want.String())) {
			t.Errorf("LookupNetconfig(%q) = %+v, %v", netid, nc, ok)
		}
	}
	// Exchanges 109-111: the netconfig fields rpcbind reports.
	for _, tc := range []Netconfig{
		{"udp", 1, "inet", "udp", FamilyInet},
		{"tcp", 3, "inet", "tcp", FamilyInet},
		{"udp6", 1, "inet6", "udp", FamilyInet6},
		{"tcp6", 3, "inet6", "tcp", FamilyInet6},
		{"local", 3, "loopback", "-", FamilyLocal},
	} {
		if nc, _ := LookupNetconfig(tc.Netid); nc != tc {
			t.Errorf("LookupNetconfig(%q) = %+v, want %+v", tc.Netid, nc, tc)
		}
	}
	if FamilyInet != unix.AF_INET || FamilyInet6 != unix.AF_INET6 || FamilyLocal != unix.AF_UNIX {
		t.Error("Family values are not Linux AF_*")
	}
}

// native returns the 2-byte sa_family as this host lays it out.
func native(f uint16) string {
	var b [2]byte
	binary.NativeEndian.PutUint16(b[:], f)
	return string(b[:])
}

func TestUaddr2Taddr(t *testing.T) {
	tests := []struct {
		name   string
		f      Family
		uaddr  string
		maxlen uint32
		buf    string // after the family
	}{
		// Exchange 64: 00000010 00000010 020003e8 7f000001 00000000 00000000.
		{"exchange 64", FamilyInet, "127.0.0.1.3.232", 16, "\x03\xe8\x7f\x00\x00\x01" + zero(8)},
		// Exchange 68: 0000001c 0000001c 0a0003e8 00000000 (::1) 00000000.
		{"exchange 68", FamilyInet6, "::1.3.232", 28, "\x03\xe8" + zero(4) + zero(15) + "\x01" + zero(4)},
		// Spec §2.3 [EMP]: /tmp/foo over AF_UNIX → maxlen 110, len 10.
		{"spec 2.3 local", FamilyLocal, "/tmp/foo", 110, "/tmp/foo"},
		// libtirpc leniency: atoi ports, (hi<<8 | lo) truncated to 16 bits.
		{"lenient port", FamilyInet, "10.0.0.1.x.1y", 16, "\x00\x01\x0a\x00\x00\x01" + zero(8)},
		{"port wraps", FamilyInet, "10.0.0.1.256.1", 16, "\x00\x01\x0a\x00\x00\x01" + zero(8)},
		{"mapped v6", FamilyInet6, "::ffff:1.2.3.4.0.111", 28, "\x00\x6f" + zero(4) + zero(10) + "\xff\xff\x01\x02\x03\x04" + zero(4)},
		{"local without slash", FamilyLocal, "foo.1.2", 110, "foo"},
		{"local stops at NUL", FamilyLocal, "/a\x00b", 110, "/a"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			nb := Uaddr2Netbuf(tc.f, tc.uaddr)
			want := native(uint16(tc.f)) + tc.buf
			if nb.MaxLen != tc.maxlen || string(nb.Buf) != want {
				t.Fatalf("Uaddr2Netbuf = %d % x, want %d % x", nb.MaxLen, nb.Buf, tc.maxlen, want)
			}
			if got := Uaddr2Taddr(tc.f, tc.uaddr); string(got) != want {
				t.Fatalf("Uaddr2Taddr = % x", got)
			}
		})
	}
	// On little-endian hosts the family bytes are exactly the reference's.
	if binary.NativeEndian.Uint16([]byte{2, 0}) == 2 {
		got := Uaddr2Taddr(FamilyInet, "127.0.0.1.3.232")
		if want := hx(t, "020003e8 7f000001 00000000 00000000"); string(got) != string(want) {
			t.Fatalf("exchange 64 bytes % x, want % x", got, want)
		}
	}
	long := "/" + string(make([]byte, 0)) + repeat('p', 200)
	if nb := Uaddr2Netbuf(FamilyLocal, long); len(nb.Buf) != 2+107 || nb.MaxLen != 110 {
		t.Fatalf("long path: len %d maxlen %d, want 109 and 110 (strncpy of 107)", len(nb.Buf), nb.MaxLen)
	}
	fails := []struct {
		f     Family
		uaddr string
	}{
		{FamilyInet, "garbage"},   // exchange 65
		{FamilyInet, "::1.3.232"}, // exchange 66
		{FamilyInet, "127.0.0.1"}, // exchange 67: host "127.0" after the cut
		{FamilyInet6, "garbage"},  // exchange 69
		{FamilyInet6, "::1"},      // exchange 70
		{FamilyInet6, "127.0.0.1.3.232"},
		{FamilyInet, "/tmp/foo"},
		{FamilyLocal, "garbage"},
		{FamilyLocal, ""},
		{FamilyUnknown, "127.0.0.1.3.232"},
	}
	for _, tc := range fails {
		if nb := Uaddr2Netbuf(tc.f, tc.uaddr); nb.MaxLen != 0 || nb.Buf != nil {
			t.Errorf("Uaddr2Netbuf(%v, %q) = %+v, want zero", tc.f, tc.uaddr, nb)
		}
		if b := Uaddr2Taddr(tc.f, tc.uaddr); b != nil {
			t.Errorf("Uaddr2Taddr(%v, %q) = % x, want nil", tc.f, tc.uaddr, b)
		}
	}
}

func TestUaddr2AddrPort(t *testing.T) {
	// The GETADDR hint "127.0.0.2.0.0" (exchange 43) and a lenient one.
	for in, want := range map[string]string{
		"127.0.0.2.0.0":       "127.0.0.2:0",
		"127.0.0.2.junk.junk": "127.0.0.2:0",
	} {
		ap, ok := Uaddr2AddrPort(FamilyInet, in)
		if !ok || ap.String() != want {
			t.Errorf("Uaddr2AddrPort(%q) = %v, %v", in, ap, ok)
		}
	}
	// Exchange 45: "junk" is no hint; exchange 95 the same over v4.
	if _, ok := Uaddr2AddrPort(FamilyInet, "junk"); ok {
		t.Error("junk parsed")
	}
	if _, ok := Uaddr2AddrPort(FamilyLocal, "/x.1.2"); ok {
		t.Error("local parsed as IP")
	}
}

func TestTaddr2Uaddr(t *testing.T) {
	tests := []struct {
		name string
		f    Family
		hex  string
		want string
	}{
		{"exchange 71", FamilyInet, "020003e8 7f000001 00000000 00000000", "127.0.0.1.3.232"},
		{"exchange 72", FamilyInet, "67617262 61676521 67617262 61676521", "97.103.101.33.114.98"},
		{"exchange 73", FamilyInet, "020003e8", ""},
		{"exchange 74", FamilyInet6, "0a0003e8 00000000 00000000 00000000 00000000 00000001 00000000", "::1.3.232"},
		{"exchange 75", FamilyInet6, "67617262 61676521 67617262 61676521 67617262 61676521 67726267",
			"6761:7262:6167:6521:6761:7262:6167:6521.114.98"},
		{"exchange 76", FamilyInet6, "020003e8 7f000001 00000000 00000000", ""},
		{"longer than a sockaddr_in", FamilyInet, "020003e8 7f000001 00000000 00000000 ffffffff", "127.0.0.1.3.232"},
		{"local", FamilyLocal, "0100 2f746d70 2f666f6f", "/tmp/foo"},
		{"local NUL", FamilyLocal, "0100 2f6100 62", "/a"},
		{"local family only", FamilyLocal, "0100", ""},
		{"local 1 byte", FamilyLocal, "01", ""},
		{"empty", FamilyInet, "", ""},
		{"unknown family", FamilyUnknown, "020003e8 7f000001 00000000 00000000", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Taddr2Uaddr(tc.f, hx(t, tc.hex)); got != tc.want {
				t.Fatalf("Taddr2Uaddr = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestInetPton6MatchesNetip(t *testing.T) {
	for _, s := range []string{"::", "::1", "1::", "1:2:3:4:5:6:7:8", "::ffff:1.2.3.4", "1::1.2.3.4",
		"fe80::abcd:1", "0:0:0:0:0:0:0:0", "A:b:C:d:E:f:0:1", "1:2:3:4:5:6:1.2.3.4", "::0.0.0.0"} {
		a, ok := inetPton6(s)
		n, err := netip.ParseAddr(s)
		if !ok || err != nil || a != n.As16() {
			t.Errorf("inetPton6(%q) = %x, %v; netip %v %v", s, a, ok, n, err)
		}
	}
}

func zero(n int) string { return string(make([]byte, n)) }

func repeat(c byte, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = c
	}
	return string(b)
}

// TestUaddrClientPorts pins the two readers' arithmetic.
func TestUaddrClientPorts(t *testing.T) {
	cases := []struct {
		uaddr     string
		mult, or  uint16
		wantFound bool
	}{
		{"0.0.0.0.3.232", 1000, 1000, true},
		{"0.0.0.0.256.22", 22, 22, true},
		{"::1.-256.22", 22, 22, true},
		{"0.0.0.0.3.300", 1068, 812, true},
		{"0.0.0.0.-1.-1", 65279, 65535, true},
		{"0.0.0.0.16777216.22", 22, 22, true},
		{"0.0.0.0.x.y", 0, 0, true},
		{"22", 0, 0, false},
	}
	for _, tc := range cases {
		m, o, ok := UaddrClientPorts(tc.uaddr)
		if m != tc.mult || o != tc.or || ok != tc.wantFound {
			t.Errorf("%q: %d, %d, %v; want %d, %d, %v", tc.uaddr, m, o, ok, tc.mult, tc.or, tc.wantFound)
		}
	}
}
