package hostsaccess

import (
	"bytes"
	"strings"
)

// Limits of the file syntax.
const (
	// MaxLine is libwrap's logical line buffer (BUFLEN 2048, one byte for
	// the NUL): a longer line is skipped.
	MaxLine = 2047
	// MaxFile caps how much of a file is read; the rest is ignored and
	// logged. Real files are a few KiB.
	MaxFile = 1 << 20
)

// verdict of a matching rule.
type verdict uint8

const (
	vDefault verdict = iota // the file's: grant in hosts.allow, deny in hosts.deny
	vAllow                  // option "allow"
	vDeny                   // option "deny", or an option error (tcpd_jump)
)

// rule is one line whose daemon list matches "rpcbind".
type rule struct {
	line    int
	clients *list
	verdict verdict
}

// parseFile compiles the rules of one file for daemon "rpcbind". note
// receives one message per problem (name is the file's path for messages).
func parseFile(name string, data []byte, note func(string)) []rule {
	if len(data) > MaxFile {
		note(name + ": larger than 1 MiB, the rest is ignored")
		data = data[:MaxFile]
	}
	var rules []rule
	lineNo := 0
	var buf []byte
	for len(data) > 0 {
		// A logical line: physical lines joined where a backslash precedes
		// the newline (the backslash and newline vanish).
		buf = buf[:0]
		start := lineNo + 1
		for len(data) > 0 {
			i := bytes.IndexByte(data, '\n')
			var phys []byte
			if i < 0 {
				phys, data = data, nil
			} else {
				phys, data = data[:i], data[i+1:]
			}
			lineNo++
			if i >= 0 && len(phys) > 0 && phys[len(phys)-1] == '\\' {
				buf = append(buf, phys[:len(phys)-1]...)
				continue
			}
			buf = append(buf, phys...)
			break
		}
		where := name + ":" + itoa(start)
		if len(buf) > MaxLine {
			note(where + ": line too long, skipped")
			continue
		}
		line := string(buf)
		if strings.HasPrefix(line, "#") || strings.Trim(line, " \t\r\n") == "" {
			continue
		}
		r, ok := parseRule(line, where, note)
		if ok {
			r.line = start
			rules = append(rules, r)
		}
	}
	return rules
}

// parseRule compiles "daemon_list : client_list [ : options ]". ok is false
// when the line is malformed or its daemon list does not match "rpcbind".
func parseRule(line, where string, note func(string)) (r rule, ok bool) {
	c := splitAt(line, 0, ':')
	if c < 0 {
		note(where + `: missing ":" separator`)
		return rule{}, false
	}
	daemons, rest := line[:c], line[c+1:]
	clients, options, hasOptions := rest, "", false
	if o := splitAt(rest, 0, ':'); o >= 0 {
		clients, options, hasOptions = rest[:o], rest[o+1:], true
	}
	if !daemonListMatch(fields(daemons), where, note) {
		return rule{}, false
	}
	r.clients = compileList(fields(clients), where, note)
	if hasOptions {
		r.verdict = parseOptions(options, where, note)
	}
	return r, true
}

// fields splits a list at libwrap's separators (", \t\r\n").
func fields(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool {
		return r == ',' || r == ' ' || r == '\t' || r == '\r' || r == '\n'
	})
}

// daemonListMatch is list_match(server_match) for daemon "rpcbind".
func daemonListMatch(toks []string, where string, note func(string)) bool {
	for i, t := range toks {
		if strings.EqualFold(t, "EXCEPT") {
			return false
		}
		if at := splitAt(t, 1, '@'); at >= 0 && !strings.EqualFold(t[at+1:], "ALL") {
			note(where + ": daemon@host " + t + ": rpcbind gives no server address; only @ALL/@UNKNOWN match")
		}
		if serverMatch(t) {
			for j := i + 1; j < len(toks); j++ {
				if strings.EqualFold(toks[j], "EXCEPT") {
					return !daemonListMatch(toks[j+1:], where, note)
				}
			}
			return true
		}
	}
	return false
}

// compileList compiles a client list with its EXCEPT chain. Tokens after
// the first EXCEPT belong to the exception list, recursively.
func compileList(toks []string, where string, note func(string)) *list {
	l := &list{}
	for i, t := range toks {
		if strings.EqualFold(t, "EXCEPT") {
			l.except = compileList(toks[i+1:], where, note)
			if len(l.except.pats) == 0 && l.except.except == nil {
				l.except = nil // "a EXCEPT" with nothing after: a
			}
			break
		}
		l.pats = append(l.pats, compileClient(t, where, note))
	}
	return l
}

// compileClient is client_match: host, or user@host with user "unknown".
func compileClient(tok, where string, note func(string)) pattern {
	host := tok
	if at := splitAt(tok, 1, '@'); at >= 0 {
		user := tok[:at]
		host = tok[at+1:]
		if !stringMatch(user, unknown) {
			note(where + ": " + tok + ": rpcbind does no IDENT lookup, the user is \"unknown\"; never matches")
			return pattern{}
		}
	}
	p, why := compileHost(host)
	if why != "" {
		note(where + ": " + host + ": unsupported (" + why + "), never matches")
	}
	return p
}

// Options (hosts_options(5)): how many values each takes.
const (
	argNone = iota
	argOptional
	argRequired
)

var optionArgs = map[string]int{
	"allow": argNone, "deny": argNone, "keepalive": argNone,
	"nice": argOptional, "rfc931": argOptional,
	"severity": argRequired, "spawn": argRequired, "twist": argRequired,
	"aclexec": argRequired, "user": argRequired, "group": argRequired,
	"umask": argRequired, "linger": argRequired, "setenv": argRequired,
	"banners": argRequired,
}

// parseOptions reads the options field: ':'-separated (a backslash escapes
// a ':'), each "keyword", "keyword value" or "keyword=value". An error
// makes the rule deny, as libwrap's tcpd_jump does.
func parseOptions(s, where string, note func(string)) verdict {
	opts := splitOptions(s)
	v := vDefault
	for i, o := range opts {
		o = strings.Trim(o, " \t\r\n")
		key, val := o, ""
		if k := strings.IndexAny(o, " \t="); k >= 0 {
			key = o[:k]
			val = strings.TrimLeft(o[k:], " \t")
			if strings.HasPrefix(val, "=") {
				val = strings.TrimLeft(val[1:], " \t")
			}
		}
		key = strings.ToLower(key)
		if key == "" {
			note(where + ": missing option name: the rule denies")
			return vDeny
		}
		arity, known := optionArgs[key]
		switch {
		case !known:
			note(where + ": bad option name " + strconvQuote(key) + ": the rule denies")
			return vDeny
		case arity == argNone && val != "":
			note(where + ": option " + key + " takes no value: the rule denies")
			return vDeny
		case arity == argRequired && val == "":
			note(where + ": option " + key + " requires a value: the rule denies")
			return vDeny
		}
		switch key {
		case "allow", "deny":
			if i != len(opts)-1 {
				note(where + ": option " + key + " must be the last one: the rule denies")
				return vDeny
			}
			if key == "allow" {
				v = vAllow
			} else {
				v = vDeny
			}
		case "severity":
			if !validSeverity(val) {
				note(where + ": bad severity " + strconvQuote(val) + ": the rule denies")
				return vDeny
			}
		case "umask":
			if !validOctal(val) {
				note(where + ": bad umask " + strconvQuote(val) + ": the rule denies")
				return vDeny
			}
		default:
			note(where + ": option " + key + " is ignored (rpcbind runs no command and changes no process state for a client)")
		}
	}
	return v
}

// splitOptions splits at ':' not preceded by a backslash; "\:" becomes ":".
func splitOptions(s string) []string {
	var out []string
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && i+1 < len(s) && s[i+1] == ':':
			cur.WriteByte(':')
			i++
		case s[i] == ':':
			out = append(out, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(s[i])
		}
	}
	return append(out, cur.String())
}

var (
	syslogLevels = []string{"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
		"panic", "error", "warn"}
	syslogFacilities = []string{"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news",
		"uucp", "cron", "authpriv", "ftp", "local0", "local1", "local2", "local3", "local4",
		"local5", "local6", "local7", "security"}
)

// validSeverity accepts "level" or "facility.level" (syslog names).
func validSeverity(v string) bool {
	lvl := v
	if i := strings.IndexByte(v, '.'); i >= 0 {
		if !oneOf(v[:i], syslogFacilities) {
			return false
		}
		lvl = v[i+1:]
	}
	return oneOf(lvl, syslogLevels)
}

func oneOf(s string, set []string) bool {
	for _, x := range set {
		if strings.EqualFold(s, x) {
			return true
		}
	}
	return false
}

func validOctal(v string) bool {
	if v == "" {
		return false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '7' {
			return false
		}
	}
	return true
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	if n == 0 {
		return "0"
	}
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}

func strconvQuote(s string) string { return `"` + s + `"` }
