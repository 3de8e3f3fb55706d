package pmap

import (
	"encoding/binary"
	"net/netip"
	"strings"

	"golang.org/x/sys/unix"
)

// Family is the address family of a transport, with Linux AF_* values.
type Family uint16

// Families of the netids rpcbind serves.
const (
	FamilyUnknown Family = unix.AF_UNSPEC // a netid not in /etc/netconfig's inet/inet6/loopback rows
	FamilyLocal   Family = unix.AF_UNIX   // protofmly "loopback": netids local, unix
	FamilyInet    Family = unix.AF_INET   // protofmly "inet": udp, tcp
	FamilyInet6   Family = unix.AF_INET6  // protofmly "inet6": udp6, tcp6
)

// String returns the netconfig protocol family name: "inet", "inet6",
// "loopback", or "unknown".
func (f Family) String() string {
	switch f {
	case FamilyInet:
		return "inet"
	case FamilyInet6:
		return "inet6"
	case FamilyLocal:
		return "loopback"
	}
	return "unknown"
}

// Netids of the transports rpcbind serves (RFC 5665 §5.2 and /etc/netconfig).
const (
	NetidUDP   = "udp"
	NetidTCP   = "tcp"
	NetidUDP6  = "udp6"
	NetidTCP6  = "tcp6"
	NetidLocal = "local" // AF_UNIX stream, the one rpcbind listens on
	NetidUnix  = "unix"  // the same in /etc/netconfig; not served by rpcbind
)

// Transport semantics of netconfig (nc_semantics), as rpcb_entry carries
// them in r_nc_semantics.
const (
	NCTPIClts    = 1 // NC_TPI_CLTS, datagram
	NCTPICots    = 2 // NC_TPI_COTS
	NCTPICotsOrd = 3 // NC_TPI_COTS_ORD, stream with orderly release
	NCTPIRaw     = 4 // NC_TPI_RAW
)

// Netconfig is the part of an /etc/netconfig row that GETADDRLIST reports.
type Netconfig struct {
	Netid     string
	Semantics uint32
	Protofmly string
	Proto     string
	Family    Family
}

// netconfigs are the rows of Debian's default /etc/netconfig (libtirpc)
// that rpcbind can map to an address family.
var netconfigs = [...]Netconfig{
	{NetidUDP, NCTPIClts, "inet", "udp", FamilyInet},
	{NetidTCP, NCTPICotsOrd, "inet", "tcp", FamilyInet},
	{NetidUDP6, NCTPIClts, "inet6", "udp", FamilyInet6},
	{NetidTCP6, NCTPICotsOrd, "inet6", "tcp", FamilyInet6},
	{NetidLocal, NCTPICotsOrd, "loopback", "-", FamilyLocal},
	{NetidUnix, NCTPICotsOrd, "loopback", "-", FamilyLocal},
}

// LookupNetconfig returns the netconfig row of netid. The match is exact
// (case-sensitive), as getnetconfigent's strcmp.
func LookupNetconfig(netid string) (Netconfig, bool) {
	for i := range netconfigs {
		if netconfigs[i].Netid == netid {
			return netconfigs[i], true
		}
	}
	return Netconfig{}, false
}

// FamilyOfNetid maps udp and tcp to FamilyInet, udp6 and tcp6 to
// FamilyInet6, local and unix to FamilyLocal, and anything else to
// FamilyUnknown. The match is exact.
func FamilyOfNetid(netid string) Family {
	switch netid {
	case NetidUDP, NetidTCP:
		return FamilyInet
	case NetidUDP6, NetidTCP6:
		return FamilyInet6
	case NetidLocal, NetidUnix:
		return FamilyLocal
	}
	return FamilyUnknown
}

// Sizes of the Linux socket addresses UADDR2TADDR returns.
const (
	SizeofSockaddrInet4 = unix.SizeofSockaddrInet4 // 16
	SizeofSockaddrInet6 = unix.SizeofSockaddrInet6 // 28
	SizeofSockaddrUnix  = unix.SizeofSockaddrUnix  // 110
	sunPathOff          = 2                        // offsetof(struct sockaddr_un, sun_path)
	sunPathMax          = 108                      // sizeof sun_path
)

// Uaddr2AddrPort converts an IPv4 or IPv6 universal address as libtirpc's
// __rpc_uaddr2taddr_af does for family f (FamilyInet or FamilyInet6): the
// string up to its first NUL is cut at its last two dots, the port is
// (atoi(p1)<<8 | atoi(p2)) truncated to 16 bits (lenient: "x" counts as
// 0), and the host must pass inet_pton for f. The merge hint of GETADDR is
// parsed this way, so "127.0.0.2.junk.junk" is a usable hint.
func Uaddr2AddrPort(f Family, uaddr string) (netip.AddrPort, bool) {
	uaddr = cString(uaddr)
	if f != FamilyInet && f != FamilyInet6 {
		return netip.AddrPort{}, false
	}
	if strings.HasPrefix(uaddr, "/") {
		// libtirpc takes a leading '/' as a path: port 0, host the whole
		// string, which inet_pton then refuses.
		return netip.AddrPort{}, false
	}
	host, p1, p2, ok := splitUaddr(uaddr)
	if !ok {
		return netip.AddrPort{}, false
	}
	port := uint16(uint32(atoi(p1))<<8 | uint32(atoi(p2)))
	if f == FamilyInet {
		a, ok := inetPton4(host)
		if !ok {
			return netip.AddrPort{}, false
		}
		return netip.AddrPortFrom(netip.AddrFrom4(a), port), true
	}
	a, ok := inetPton6(host)
	if !ok {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(netip.AddrFrom16(a), port), true
}

// Uaddr2Taddr converts a universal address to the raw Linux socket address
// that UADDR2TADDR returns, as libtirpc 1.3.3's __rpc_uaddr2taddr_af does
// for the family of the arrival transport:
//
//   - FamilyInet: sockaddr_in, 16 bytes: sin_family (native-endian u16),
//     sin_port (big-endian), sin_addr, 8 zero bytes;
//   - FamilyInet6: sockaddr_in6, 28 bytes: family, port, flowinfo 0, addr,
//     scope_id 0;
//   - FamilyLocal: sockaddr_un up to SUN_LEN: family then the path (at most
//     107 bytes, no NUL). A uaddr not starting with '/' first loses its
//     last two dot fields ("foo.1.2" gives "foo"), as in libtirpc.
//
// It returns nil when libtirpc would fail. The family word is native-endian
// because that is what the reference puts on the wire ([EMP] exchange 64:
// 02 00 on x86-64).
func Uaddr2Taddr(f Family, uaddr string) []byte {
	nb := Uaddr2Netbuf(f, uaddr)
	return nb.Buf
}

// Uaddr2Netbuf is Uaddr2Taddr with the netbuf's maxlen as the reference
// sends it: 16 or 28 (= len) for IP, sizeof(struct sockaddr_un) = 110 for
// AF_UNIX. Failure gives the zero Netbuf, which the reference sends as
// maxlen 0, len 0 (exchanges 65-67, 69, 70).
func Uaddr2Netbuf(f Family, uaddr string) Netbuf {
	switch f {
	case FamilyInet:
		ap, ok := Uaddr2AddrPort(f, uaddr)
		if !ok {
			return Netbuf{}
		}
		b := make([]byte, SizeofSockaddrInet4)
		binary.NativeEndian.PutUint16(b[0:], unix.AF_INET)
		binary.BigEndian.PutUint16(b[2:], ap.Port())
		a := ap.Addr().As4()
		copy(b[4:8], a[:])
		return Netbuf{MaxLen: SizeofSockaddrInet4, Buf: b}
	case FamilyInet6:
		ap, ok := Uaddr2AddrPort(f, uaddr)
		if !ok {
			return Netbuf{}
		}
		b := make([]byte, SizeofSockaddrInet6)
		binary.NativeEndian.PutUint16(b[0:], unix.AF_INET6)
		binary.BigEndian.PutUint16(b[2:], ap.Port())
		a := ap.Addr().As16()
		copy(b[8:24], a[:])
		return Netbuf{MaxLen: SizeofSockaddrInet6, Buf: b}
	case FamilyLocal:
		path := cString(uaddr)
		if !strings.HasPrefix(path, "/") {
			host, _, _, ok := splitUaddr(path)
			if !ok {
				return Netbuf{}
			}
			path = host
		}
		if len(path) > sunPathMax-1 { // strncpy(sun_path, addr, sizeof - 1)
			path = path[:sunPathMax-1]
		}
		b := make([]byte, sunPathOff+len(path)) // SUN_LEN
		binary.NativeEndian.PutUint16(b[0:], unix.AF_UNIX)
		copy(b[sunPathOff:], path)
		return Netbuf{MaxLen: SizeofSockaddrUnix, Buf: b}
	}
	return Netbuf{}
}

// Taddr2Uaddr formats buf, a raw socket address, as a universal address of
// family f, as libtirpc 1.3.3's __rpc_taddr2uaddr_af does: the family
// field inside buf is ignored; IPv4 needs at least 16 bytes and IPv6 at
// least 28, else the result is ""; an AF_UNIX address gives the path bytes
// after the family, up to the first NUL. So 16 bytes of "garbage!garbage!"
// over udp give "97.103.101.33.114.98" (exchange 72).
func Taddr2Uaddr(f Family, buf []byte) string {
	var tmp [64]byte
	return string(AppendTaddr2Uaddr(tmp[:0], f, buf))
}

// AppendTaddr2Uaddr appends Taddr2Uaddr(f, buf) to b; it appends nothing
// where Taddr2Uaddr returns "".
func AppendTaddr2Uaddr(b []byte, f Family, buf []byte) []byte {
	switch f {
	case FamilyInet:
		if len(buf) < SizeofSockaddrInet4 {
			return b
		}
		b = appendInetNtop4(b, [4]byte(buf[4:8]))
		return appendPort(b, binary.BigEndian.Uint16(buf[2:4]))
	case FamilyInet6:
		if len(buf) < SizeofSockaddrInet6 {
			return b
		}
		b = appendInetNtop6(b, [16]byte(buf[8:24]))
		return appendPort(b, binary.BigEndian.Uint16(buf[2:4]))
	case FamilyLocal:
		if len(buf) < sunPathOff {
			return b
		}
		p := buf[sunPathOff:]
		for i, c := range p {
			if c == 0 {
				p = p[:i]
				break
			}
		}
		return append(b, p...)
	}
	return b
}
