package registry

import (
	"math"
	"strings"
)

// uaddrPort is rpcbind's uaddr2port (rpcb_svc_com.c): split at the last two
// dots and compute atoi(p1)*256 + atoi(p2) in C int arithmetic. It fails only
// when the string has fewer than two dots; the fields are parsed leniently
// (atoi), and the result is not masked to 16 bits: the C code stores it in a
// u_long and the wire carries its low 32 bits, which is what the uint32
// conversion of the wrapped int32 sum reproduces.
func uaddrPort(uaddr string) (port uint32, ok bool) {
	i := strings.LastIndexByte(uaddr, '.')
	if i < 0 {
		return 0, false
	}
	j := strings.LastIndexByte(uaddr[:i], '.')
	if j < 0 {
		return 0, false
	}
	return uint32(atoi(uaddr[j+1:i])*256 + atoi(uaddr[i+1:])), true
}

// atoi is glibc's atoi: (int)strtol(s, NULL, 10). Leading white space is
// skipped, one sign is accepted, digits are read up to the first non-digit,
// an out-of-range value clamps to LONG_MIN/LONG_MAX (64-bit), and the cast
// keeps the low 32 bits. Junk yields 0.
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
	limit := uint64(math.MaxInt64)
	if neg {
		limit++ // -LONG_MIN
	}
	var v uint64
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		d := uint64(s[i] - '0')
		if v > (limit-d)/10 {
			v = limit // ERANGE: clamp, keep consuming digits
			continue
		}
		v = v*10 + d
	}
	if neg {
		return int32(-int64(v)) // v = 1<<63 wraps to LONG_MIN, as intended
	}
	return int32(int64(v))
}

// v2Port returns the v2 view of an entry: protocol and port, when the netid
// is exactly the IPv4 TCP or UDP netid (pmap_netid2ipprot uses strcmp) and
// the uaddr yields a port.
func v2Port(netid, addr string) (prot, port uint32, ok bool) {
	switch netid {
	case "tcp":
		prot = protoTCP
	case "udp":
		prot = protoUDP
	default:
		return 0, 0, false
	}
	port, ok = uaddrPort(addr)
	return prot, port, ok
}

// cString returns s up to its first NUL byte. The reference keeps netids,
// addresses and owners as C strings (strdup, strcmp, strcasecmp), so a string
// decoded from XDR with an embedded NUL is stored and compared truncated.
func cString(s string) string {
	if i := strings.IndexByte(s, 0); i >= 0 {
		return s[:i]
	}
	return s
}

// foldKey returns s with ASCII upper case folded to lower case: the key of
// strcasecmp in the C locale (bytes ≥ 0x80 are left alone). It does not
// allocate when s has no upper-case letter.
func foldKey(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; c >= 'A' && c <= 'Z' {
					b[j] = c + ('a' - 'A')
				}
			}
			return string(b)
		}
	}
	return s
}

// foldBytes is foldKey for a byte slice; it writes into dst only when p has
// an upper-case letter and returns p itself otherwise.
func foldBytes(dst, p []byte) []byte {
	for i := 0; i < len(p); i++ {
		if c := p[i]; c >= 'A' && c <= 'Z' {
			dst = append(dst[:0], p...)
			for j := i; j < len(dst); j++ {
				if c := dst[j]; c >= 'A' && c <= 'Z' {
					dst[j] = c + ('a' - 'A')
				}
			}
			return dst
		}
	}
	return p
}
