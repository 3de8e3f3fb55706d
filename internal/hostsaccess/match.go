package hostsaccess

import (
	"net/netip"
	"strings"
)

// daemonName is what rpcbind passes as RQ_DAEMON.
const daemonName = "rpcbind"

// unknown is libwrap's value for a name, address or user it does not know.
const unknown = "unknown"

// kind is how a client pattern matches an address.
type kind uint8

const (
	kNever  kind = iota // unsupported or invalid: never matches
	kAll                // ALL
	kLocal              // LOCAL: loopback (see doc.go)
	kV4                 // IPv4: addr & mask == net
	kV6                 // IPv6: the first bits of addr and net are equal
	kGlob               // '*' / '?' against the numeric address text
	kExcept             // the EXCEPT separator (only inside a list)
)

// pattern is one compiled client pattern.
type pattern struct {
	kind      kind
	net, mask uint32       // kV4
	v6        netip.Prefix // kV6: Masked() prefix of a 16-byte address
	glob      string       // kGlob
}

// list is a compiled client list: any of pats, unless except matches.
type list struct {
	pats   []pattern
	except *list
}

// match is list_match for one address a (already unmapped, no zone).
func (l *list) match(a netip.Addr, text []byte) bool {
	for l != nil {
		hit := false
		for i := range l.pats {
			if l.pats[i].match(a, text) {
				hit = true
				break
			}
		}
		if !hit {
			return false
		}
		if l.except == nil {
			return true
		}
		// a EXCEPT rest: true unless rest matches.
		if !l.except.match(a, text) {
			return true
		}
		return false
	}
	return false
}

func (p *pattern) match(a netip.Addr, text []byte) bool {
	switch p.kind {
	case kAll:
		return true
	case kLocal:
		return a.IsLoopback()
	case kV4:
		if !a.Is4() {
			return false
		}
		b := a.As4()
		v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		return v&p.mask == p.net
	case kV6:
		if !a.Is6() {
			return false
		}
		return p.v6.Contains(a)
	case kGlob:
		return globMatch(text, p.glob)
	}
	return false
}

// globMatch is match_pattern_ylo: '*' any run, '?' one byte, the rest
// byte for byte (case sensitive). It does not allocate; patterns are short
// (a token of one line) so the backtracking is bounded by the line limit.
func globMatch(s []byte, pat string) bool {
	// Iterative with one backtrack point: equivalent for '*' patterns.
	si, pi := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		case pi < len(pat) && pat[pi] == '*':
			star, mark = pi, si
			pi++
		case pi < len(pat) && (pat[pi] == '?' || pat[pi] == s[si]):
			si++
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(pat) && pat[pi] == '*' {
		pi++
	}
	return pi == len(pat)
}

func globString(s, pat string) bool { return globMatch([]byte(s), pat) }

func isGlob(tok string) bool { return strings.ContainsAny(tok, "*?") }

// stringMatch is libwrap's string_match for a constant string that is not
// an address (the daemon name, or "unknown" for the server host and the
// client user).
func stringMatch(tok, s string) bool {
	switch {
	case isGlob(tok):
		return globString(s, tok)
	case strings.HasPrefix(tok, "."):
		n := len(s) - len(tok)
		return n > 0 && strings.EqualFold(tok, s[n:])
	case strings.EqualFold(tok, "ALL"):
		return true
	case strings.EqualFold(tok, "KNOWN"):
		return !strings.EqualFold(s, unknown)
	case strings.HasSuffix(tok, "."):
		return len(s) >= len(tok) && strings.EqualFold(tok, s[:len(tok)])
	}
	return strings.EqualFold(tok, s)
}

// unknownHostMatch is host_match against a host whose name and address are
// both "unknown": the server endpoint of daemon@host (rpcbind gives libwrap
// no server address).
func unknownHostMatch(tok string) bool {
	switch {
	case tok == "" || tok[0] == '@' || tok[0] == '/':
		return false
	case strings.EqualFold(tok, "KNOWN"), strings.EqualFold(tok, "LOCAL"):
		return false
	case strings.Contains(tok, "/"):
		return false
	}
	return stringMatch(tok, unknown)
}

// serverMatch is server_match for daemon "rpcbind": it depends on nothing
// but the token, so daemon lists are decided when the file is parsed.
func serverMatch(tok string) bool {
	if at := splitAt(tok, 1, '@'); at >= 0 {
		return stringMatch(tok[:at], daemonName) && unknownHostMatch(tok[at+1:])
	}
	return stringMatch(tok, daemonName)
}

// splitAt returns the index of the first delim at or after from that is
// not inside [ ], or -1 (libwrap's split_at with IPv6 brackets).
func splitAt(s string, from int, delim byte) int {
	depth := 0
	for i := from; i < len(s); i++ {
		switch s[i] {
		case '[':
			depth++
		case ']':
			depth--
		default:
			if depth == 0 && s[i] == delim {
				return i
			}
		}
	}
	return -1
}

// notInaddr is libwrap's NOT_INADDR: the token has a character other than
// digits, dots and slashes, so libwrap would also try it as a host name.
func notInaddr(tok string) bool {
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if (c < '0' || c > '9') && c != '.' && c != '/' {
			return true
		}
	}
	return false
}

// compileHost compiles a client host pattern (host_match). unsupported gets
// a reason when the pattern depends on something we do not do (names,
// netgroups, files); the pattern then never matches.
func compileHost(tok string) (p pattern, unsupported string) {
	switch {
	case tok == "":
		return pattern{}, ""
	case tok[0] == '@':
		return pattern{}, "NIS netgroup"
	case tok[0] == '/':
		return pattern{}, "file pattern"
	case strings.EqualFold(tok, "KNOWN"), strings.EqualFold(tok, "UNKNOWN"), strings.EqualFold(tok, "PARANOID"):
		return pattern{}, "name-resolution wildcard"
	case strings.EqualFold(tok, "LOCAL"):
		return pattern{kind: kLocal}, ""
	}
	if i := strings.IndexByte(tok, '/'); i >= 0 {
		return compileMasked(tok[:i], tok[i+1:])
	}
	switch {
	case isGlob(tok):
		return pattern{kind: kGlob, glob: tok}, ""
	case tok[0] == '.':
		return pattern{}, "domain name suffix"
	case strings.EqualFold(tok, "ALL"):
		return pattern{kind: kAll}, ""
	case strings.HasSuffix(tok, "."):
		if notInaddr(tok) {
			return pattern{}, "host name"
		}
		return compilePrefix(tok)
	case len(tok) > 2 && tok[0] == '[' && tok[len(tok)-1] == ']':
		a, ok := parseV6(tok[1 : len(tok)-1])
		if !ok {
			return pattern{}, "not an IPv6 address"
		}
		return pattern{kind: kV6, v6: netip.PrefixFrom(a, 128)}, ""
	}
	if notInaddr(tok) {
		return pattern{}, "host name"
	}
	a, err := netip.ParseAddr(tok)
	if err != nil || !a.Is4() {
		return pattern{}, "not a canonical IPv4 address"
	}
	return v4Pattern(a, 0xffffffff), ""
}

// parseV6 parses the inside of [ ]: an IPv6 address that is not IPv4-mapped
// (libwrap compares such a pattern with the unmapped IPv4 text and fails).
func parseV6(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is6() || a.Is4In6() {
		return netip.Addr{}, false
	}
	return a.WithZone(""), true
}

func v4Pattern(net netip.Addr, mask uint32) pattern {
	b := net.As4()
	return pattern{kind: kV4, net: uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]), mask: mask}
}

// compilePrefix compiles "a.b.c." — a string prefix of the dotted-quad
// text, i.e. a /8, /16 or /24 when every field is a canonical octet.
func compilePrefix(tok string) (pattern, string) {
	fields := strings.Split(tok[:len(tok)-1], ".")
	if len(fields) > 3 {
		return pattern{}, "prefix longer than three octets"
	}
	var net uint32
	for _, f := range fields {
		v, ok := octet(f)
		if !ok {
			return pattern{}, "not a canonical address prefix"
		}
		net = net<<8 | uint32(v)
	}
	bits := 8 * len(fields)
	net <<= 32 - bits
	return pattern{kind: kV4, net: net, mask: ^uint32(0) << (32 - bits)}, ""
}

// octet parses a canonical decimal octet (no sign, no leading zero).
func octet(f string) (int, bool) {
	if f == "" || len(f) > 3 || (len(f) > 1 && f[0] == '0') {
		return 0, false
	}
	v := 0
	for i := 0; i < len(f); i++ {
		if f[i] < '0' || f[i] > '9' {
			return 0, false
		}
		v = v*10 + int(f[i]-'0')
	}
	return v, v <= 255
}

// atoi is C atoi: leading blanks, a sign, then digits; anything else ends
// the number and no digits is 0. libwrap reads prefix lengths with it.
func atoi(s string) int {
	i := 0
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	v := 0
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		if v < 1<<20 {
			v = v*10 + int(s[i]-'0')
		}
	}
	if neg {
		return -v
	}
	return v
}

// compileMasked compiles net/mask, net/len and [v6]/len.
func compileMasked(netTok, maskTok string) (pattern, string) {
	if len(netTok) > 2 && netTok[0] == '[' && netTok[len(netTok)-1] == ']' {
		a, ok := parseV6(netTok[1 : len(netTok)-1])
		if !ok {
			return pattern{}, "not an IPv6 network"
		}
		n := atoi(maskTok)
		if n < 0 || n > 128 {
			return pattern{}, "bad IPv6 prefix length"
		}
		return pattern{kind: kV6, v6: netip.PrefixFrom(a, n).Masked()}, ""
	}
	net, err := netip.ParseAddr(netTok)
	if err != nil || !net.Is4() {
		if notInaddr(netTok) {
			return pattern{}, "host name with a mask"
		}
		return pattern{}, "not a canonical IPv4 network"
	}
	if net == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return pattern{}, "network 255.255.255.255 (INADDR_NONE to libwrap)"
	}
	if strings.IndexByte(maskTok, '.') >= 0 {
		m, err := netip.ParseAddr(maskTok)
		if err != nil || !m.Is4() {
			return pattern{}, "not a canonical IPv4 mask"
		}
		p := v4Pattern(m, 0)
		if p.net == 0xffffffff {
			// inet_addr returns INADDR_NONE for it: libwrap rejects it.
			return pattern{}, "mask 255.255.255.255 (use the address alone)"
		}
		return v4Pattern(net, p.net), ""
	}
	// Debian's n.n.n.n/len: 1..32, read like atoi; /0 does not match.
	n := atoi(maskTok)
	if maskTok == "" || maskTok[0] < '0' || maskTok[0] > '9' || n < 1 || n > 32 {
		return pattern{}, "bad IPv4 prefix length"
	}
	return v4Pattern(net, ^uint32(0)<<(32-n)), ""
}
