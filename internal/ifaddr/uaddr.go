package ifaddr

import (
	"net/netip"
	"strings"
	"unsafe"
)

// parseUaddr parses a universal address the way libtirpc's
// __rpc_uaddr2taddr_af does for AF_INET (fam 4) or AF_INET6 (fam 6): split
// at the last two dots, atoi each port half, port = hi<<8 | lo truncated to
// 16 bits (htons), host by inet_pton of that family.
func parseUaddr(fam int, s string) (netip.Addr, uint16, bool) {
	i := strings.LastIndexByte(s, '.')
	if i < 0 {
		return netip.Addr{}, 0, false
	}
	lo := atoi(s[i+1:])
	s = s[:i]
	i = strings.LastIndexByte(s, '.')
	if i < 0 {
		return netip.Addr{}, 0, false
	}
	hi := atoi(s[i+1:])
	s = s[:i]
	// inet_pton takes no zone ("%eth0"); netip would accept and keep one.
	if strings.IndexByte(s, '%') >= 0 {
		return netip.Addr{}, 0, false
	}
	a, err := netip.ParseAddr(s)
	if err != nil || (fam == 4) != a.Is4() {
		return netip.Addr{}, 0, false
	}
	return a, uint16(uint32(hi)<<8 | uint32(lo)), true
}

// atoi is C atoi as glibc implements it (strtol truncated to int): leading
// white space, an optional sign, then digits up to the first non-digit;
// overflow clamps to LONG_MAX/LONG_MIN before the truncation.
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
	var v uint64
	const longMax = 1<<63 - 1
	over := false
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		d := uint64(s[i] - '0')
		// v*10+d > longMax, with constants only (no division per digit).
		if v > longMax/10 || (v == longMax/10 && d > longMax%10) {
			over = true
		}
		v = v*10 + d
	}
	var l int64
	switch {
	case over && neg:
		l = -longMax - 1
	case over:
		l = longMax
	case neg:
		l = -int64(v)
	default:
		l = int64(v)
	}
	return int32(l)
}

// appendUaddr appends the universal address of a and port (taddr2uaddr).
func appendUaddr(b []byte, a netip.Addr, port uint16) []byte {
	if a.Is4() {
		ip := a.As4()
		for _, x := range ip {
			b = appendOctet(b, x)
			b = append(b, '.')
		}
	} else {
		b = a.WithZone("").AppendTo(b)
		b = append(b, '.')
	}
	b = appendOctet(b, uint8(port>>8))
	b = append(b, '.')
	return appendOctet(b, uint8(port))
}

// appendOctet appends x in decimal: the digits of a uaddr, with fewer
// instructions than strconv.AppendUint's general case (GETADDR formats six
// of them per call).
func appendOctet(b []byte, x uint8) []byte {
	switch {
	case x >= 100:
		return append(b, '0'+x/100, '0'+x/10%10, '0'+x%10)
	case x >= 10:
		return append(b, '0'+x/10, '0'+x%10)
	}
	return append(b, '0'+x)
}

// bytesString views b as a string without copying. The result must not be
// kept: parseUaddr only reads it (netip.ParseAddr retains nothing of a
// zone-free input, and zones are rejected before it is called).
func bytesString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
