package registry

import (
	"strings"

	"github.com/openrpcbind/rpcbind/pmap"
)

// v2Port returns the v2 view of an entry: protocol and port, when the netid
// is exactly the IPv4 TCP or UDP netid (pmap_netid2ipprot uses strcmp) and
// the uaddr yields a port by rpcbind's uaddr2port (pmap.UaddrPort: the last
// two dot fields, atoi-lenient, atoi(p1)*256 + atoi(p2) in C int arithmetic,
// not masked to 16 bits; only fewer than two dots fail).
func v2Port(netid, addr string) (prot, port uint32, ok bool) {
	switch netid {
	case "tcp":
		prot = protoTCP
	case "udp":
		prot = protoUDP
	default:
		return 0, 0, false
	}
	p, ok := pmap.UaddrPort(addr) // its int32 result goes on the wire as 32 bits
	if !ok {
		return 0, 0, false
	}
	return prot, uint32(p), true
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
