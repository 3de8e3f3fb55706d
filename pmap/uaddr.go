package pmap

import (
	"net/netip"
	"strings"
)

// Universal addresses (RFC 1833 §2, RFC 5665 §5.2.3.3-4): the host in text
// form followed by ".p1.p2", the port's high and low bytes in decimal, e.g.
// "127.0.0.1.3.232" (port 1000) or "::1.0.111". AF_UNIX addresses are the
// socket's path.

// ParseUaddr parses an IPv4 or IPv6 universal address strictly: the string
// is split at its last two dots, p1 and p2 must be decimal numbers 0-255
// (at most three digits, no sign or space), and the host must be what
// glibc's inet_pton accepts for AF_INET (no ':') or AF_INET6 (with ':').
// An IPv6 host yields a 16-byte address (IPv4-mapped stays mapped); no zone.
// It does not allocate. The error is ErrUaddr.
func ParseUaddr(s string) (netip.AddrPort, error) {
	host, p1, p2, ok := splitUaddr(s)
	if !ok {
		return netip.AddrPort{}, ErrUaddr
	}
	hi, ok1 := portByte(p1)
	lo, ok2 := portByte(p2)
	if !ok1 || !ok2 {
		return netip.AddrPort{}, ErrUaddr
	}
	var a netip.Addr
	if strings.IndexByte(host, ':') >= 0 {
		a16, ok := inetPton6(host)
		if !ok {
			return netip.AddrPort{}, ErrUaddr
		}
		a = netip.AddrFrom16(a16)
	} else {
		a4, ok := inetPton4(host)
		if !ok {
			return netip.AddrPort{}, ErrUaddr
		}
		a = netip.AddrFrom4(a4)
	}
	return netip.AddrPortFrom(a, hi<<8|lo), nil
}

// splitUaddr cuts s at its last two dots.
func splitUaddr(s string) (host, p1, p2 string, ok bool) {
	i := strings.LastIndexByte(s, '.')
	if i < 0 {
		return "", "", "", false
	}
	j := strings.LastIndexByte(s[:i], '.')
	if j < 0 {
		return "", "", "", false
	}
	return s[:j], s[j+1 : i], s[i+1:], true
}

// portByte parses a strict port field: 1-3 decimal digits, at most 255.
func portByte(s string) (uint16, bool) {
	if len(s) == 0 || len(s) > 3 {
		return 0, false
	}
	var v uint16
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint16(c-'0')
	}
	return v, v <= 255
}

// FormatUaddr returns the universal address of ap: "h1.h2.h3.h4.p1.p2" for
// IPv4, and glibc inet_ntop text plus ".p1.p2" for IPv6 (e.g. "::.0.111",
// "::1.3.232", "::ffff:1.2.3.4.0.111"). The zone is dropped. An invalid
// ap gives "".
func FormatUaddr(ap netip.AddrPort) string {
	var buf [64]byte
	return string(AppendUaddr(buf[:0], ap))
}

// AppendUaddr appends the universal address of ap (see FormatUaddr) and
// does not allocate beyond growing b.
func AppendUaddr(b []byte, ap netip.AddrPort) []byte {
	a := ap.Addr()
	switch {
	case a.Is4():
		b = appendInetNtop4(b, a.As4())
	case a.Is6():
		b = appendInetNtop6(b, a.As16())
	default:
		return b
	}
	return appendPort(b, ap.Port())
}

// appendPort appends ".p1.p2" as libtirpc's "%s.%u.%u".
func appendPort(b []byte, port uint16) []byte {
	b = append(b, '.')
	b = appendDec(b, uint32(port>>8))
	b = append(b, '.')
	return appendDec(b, uint32(port&0xff))
}

func appendDec(b []byte, v uint32) []byte {
	var tmp [10]byte
	i := len(tmp)
	for {
		i--
		tmp[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return append(b, tmp[i:]...)
}

// appendInetNtop4 appends "a.b.c.d", as inet_ntop(AF_INET).
func appendInetNtop4(b []byte, a [4]byte) []byte {
	for i, v := range a {
		if i > 0 {
			b = append(b, '.')
		}
		b = appendDec(b, uint32(v))
	}
	return b
}

// appendInetNtop6 appends a as glibc's inet_ntop(AF_INET6) does (resolv/
// inet_ntop.c): lowercase hex without leading zeros; the longest run of
// two or more zero words (the first one on a tie) becomes "::"; and an
// address whose first 96 bits are zero, or whose first 80 bits are zero and
// next 16 are ffff, ends in dotted IPv4 ("::1.2.3.4", "::ffff:1.2.3.4").
// Go's netip differs in the first of these two IPv4 cases ("::102:304").
func appendInetNtop6(b []byte, a [16]byte) []byte {
	var w [8]uint16
	for i := range w {
		w[i] = uint16(a[2*i])<<8 | uint16(a[2*i+1])
	}
	bestBase, bestLen := -1, 0
	curBase, curLen := -1, 0
	for i := 0; i < 8; i++ {
		if w[i] == 0 {
			if curBase < 0 {
				curBase, curLen = i, 1
			} else {
				curLen++
			}
			continue
		}
		if curBase >= 0 {
			if bestBase < 0 || curLen > bestLen {
				bestBase, bestLen = curBase, curLen
			}
			curBase = -1
		}
	}
	if curBase >= 0 && (bestBase < 0 || curLen > bestLen) {
		bestBase, bestLen = curBase, curLen
	}
	if bestBase >= 0 && bestLen < 2 {
		bestBase = -1
	}
	for i := 0; i < 8; i++ {
		if bestBase >= 0 && i >= bestBase && i < bestBase+bestLen {
			if i == bestBase {
				b = append(b, ':')
			}
			continue
		}
		if i != 0 {
			b = append(b, ':')
		}
		if i == 6 && bestBase == 0 && (bestLen == 6 || (bestLen == 5 && w[5] == 0xffff)) {
			return appendInetNtop4(b, [4]byte{a[12], a[13], a[14], a[15]})
		}
		b = appendHex(b, w[i])
	}
	if bestBase >= 0 && bestBase+bestLen == 8 {
		b = append(b, ':')
	}
	return b
}

func appendHex(b []byte, v uint16) []byte {
	const digits = "0123456789abcdef"
	started := false
	for shift := 12; shift >= 0; shift -= 4 {
		d := (v >> uint(shift)) & 0xf
		if d != 0 || started || shift == 0 {
			b = append(b, digits[d])
			started = true
		}
	}
	return b
}

// inetPton4 is glibc's inet_pton(AF_INET): exactly four decimal octets
// 0-255, no leading zeros, nothing else.
func inetPton4(s string) (a [4]byte, ok bool) {
	sawDigit := false
	octets := 0
	var cur uint32
	idx := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			if sawDigit && cur == 0 {
				return a, false // leading zero
			}
			cur = cur*10 + uint32(c-'0')
			if cur > 255 {
				return a, false
			}
			if !sawDigit {
				octets++
				if octets > 4 {
					return a, false
				}
				sawDigit = true
			}
			a[idx] = byte(cur)
		case c == '.' && sawDigit:
			if octets == 4 {
				return a, false
			}
			idx++
			cur = 0
			sawDigit = false
		default:
			return a, false
		}
	}
	if octets < 4 {
		return [4]byte{}, false
	}
	return a, true
}

// inetPton6 is glibc's inet_pton(AF_INET6) (resolv/inet_pton.c): up to
// eight groups of 1-4 hex digits, one "::", an optional dotted IPv4 tail,
// no zone, no brackets.
func inetPton6(s string) (a [16]byte, ok bool) {
	if len(s) == 0 {
		return a, false
	}
	i := 0
	if s[0] == ':' {
		i++
		if i == len(s) || s[i] != ':' {
			return a, false
		}
	}
	var tmp [16]byte
	tp := 0
	colonp := -1
	curtok := i
	digits := 0
	var val uint32
	for i < len(s) {
		c := s[i]
		i++
		if v, isHex := hexValue(c); isHex {
			if digits == 4 {
				return a, false
			}
			val = val<<4 | uint32(v)
			digits++
			continue
		}
		if c == ':' {
			curtok = i
			if digits == 0 {
				if colonp >= 0 {
					return a, false
				}
				colonp = tp
				continue
			} else if i == len(s) {
				return a, false
			}
			if tp+2 > 16 {
				return a, false
			}
			tmp[tp] = byte(val >> 8)
			tmp[tp+1] = byte(val)
			tp += 2
			digits = 0
			val = 0
			continue
		}
		if c == '.' && tp+4 <= 16 {
			if v4, ok4 := inetPton4(s[curtok:]); ok4 {
				copy(tmp[tp:], v4[:])
				tp += 4
				digits = 0
				break
			}
		}
		return a, false
	}
	if digits > 0 {
		if tp+2 > 16 {
			return a, false
		}
		tmp[tp] = byte(val >> 8)
		tmp[tp+1] = byte(val)
		tp += 2
	}
	if colonp >= 0 {
		if tp == 16 {
			return a, false // "::" would stand for no group at all
		}
		n := tp - colonp
		copy(tmp[16-n:], tmp[colonp:tp])
		for k := colonp; k < 16-n; k++ {
			tmp[k] = 0
		}
		tp = 16
	}
	if tp != 16 {
		return a, false
	}
	return tmp, true
}

func hexValue(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// UaddrPort returns the port of a TCP/UDP universal address the way
// rpcbind's uaddr2port (src/rpcb_svc_com.c) derives the v2 mirror's pm_port:
// the string (up to its first NUL, as C sees it) is cut at its last two
// dots and port = atoi(p1)*256 + atoi(p2), in C int arithmetic. atoi is
// lenient: leading space and a sign are skipped, parsing stops at the first
// non-digit, junk gives 0. So "10.9.8.7.3.232" gives 1000, "127.0.0.1"
// gives 1 (host ".0" and ".1" are taken as the port) and "a.b.c" gives 0.
// The result is not range-checked: it may exceed 65535 or be negative;
// rpcbind stores it in a u_long and puts its low 32 bits on the wire, i.e.
// uint32(port). ok is false only when there are fewer than two dots.
func UaddrPort(s string) (port int, ok bool) {
	s = cString(s)
	_, p1, p2, ok := splitUaddr(s)
	if !ok {
		return 0, false
	}
	return int(atoi(p1)*256 + atoi(p2)), true
}

// UaddrClientPorts returns the ports a client can derive from the IPv4 or
// IPv6 universal address s as rpcbind stores and serves it, for the
// --check-port decision: every reader takes the string up to its first NUL
// and its last two dot fields, atoi-lenient, and puts the result in a
// 16-bit in_port_t, but they combine the fields differently:
//
//   - rpcbind's uaddr2port (the v2 view: GETPORT, v2 DUMP), and any client
//     computing p1*256 + p2: atoi(p1)*256 + atoi(p2) in C int arithmetic
//     (wrapping at 2^32), which v2 clients truncate to 16 bits (xdr_u_short);
//   - libtirpc's __rpc_uaddr2taddr_af (GETADDR clients, rpcbind's own
//     address merge): (unsigned)atoi(p1) << 8 | (unsigned)atoi(p2), then
//     htons.
//
// They differ when p2 is outside 0-255 ("3.300": 1068 and 812). Strict
// readers (the kernel's rpc_uaddr2sockaddr) refuse such fields and derive
// no port. ok is false when s has fewer than two dots: no reader finds a
// port in it.
func UaddrClientPorts(s string) (mult, or uint16, ok bool) {
	s = cString(s)
	_, p1, p2, ok := splitUaddr(s)
	if !ok {
		return 0, 0, false
	}
	h, l := atoi(p1), atoi(p2)
	return uint16(h*256 + l), uint16(uint32(h)<<8 | uint32(l)), true
}

// cString returns s up to its first NUL byte: a C string decoded by
// xdr_string ends there.
func cString(s string) string {
	if i := strings.IndexByte(s, 0); i >= 0 {
		return s[:i]
	}
	return s
}

// atoi is glibc's atoi: (int)strtol(s, NULL, 10). strtol skips isspace
// characters, takes one sign, reads decimal digits and saturates at the
// bounds of a 64-bit long; the conversion to int keeps the low 32 bits.
func atoi(s string) int32 {
	i := 0
	for i < len(s) && (s[i] == ' ' || (s[i] >= '\t' && s[i] <= '\r')) {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	const maxMag = uint64(1) << 63 // |LONG_MIN|
	var v uint64
	overflow := false
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		if d := uint64(s[i] - '0'); !overflow && v > (maxMag-d)/10 {
			overflow = true
		} else if !overflow {
			v = v*10 + d
		}
	}
	var l int64
	switch {
	case neg && (overflow || v >= maxMag):
		l = -1 << 63 // LONG_MIN
	case neg:
		l = -int64(v)
	case overflow || v >= maxMag:
		l = 1<<63 - 1 // LONG_MAX
	default:
		l = int64(v)
	}
	return int32(l)
}
