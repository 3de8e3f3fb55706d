package main

import (
	"strconv"
	"strings"

	"github.com/openrpcbind/rpcbind/internal/server"
	"github.com/openrpcbind/rpcbind/pmap"
)

// startPrefix begins the one line the daemon logs once its sockets are
// handed to the server: on stderr with -f ("rpcbind: serving ..."), to
// syslog (the journal) when detached. Debian's C daemon logs nothing at
// start, so internal/e2e removes exactly this line from our output before
// comparing it with the reference's (nstest.StartLinePrefix is the same
// text; TestStartLine checks that they agree).
const startPrefix = "serving "

// startNetids is the order of the line: the reference's order of the self
// entries, then the local socket.
var startNetids = []string{"udp", "tcp", "udp6", "tcp6", "local"}

// startLine says what the daemon listens on and where its state is, e.g.
//
//	serving udp 0.0.0.0:111, tcp 0.0.0.0:111, udp6 [::]:111, tcp6 [::]:111,
//	local /run/rpcbind.sock @/run/rpcbind.sock; state /run/rpcbind (warm
//	start: 3 registrations); user _rpc
//
// (one line). A socket systemd passed is marked "(systemd)". stateDir is
// "" when the state directory could not be opened; loaded < 0 means a
// cold start (no -w).
func startLine(socks []*server.Socket, stateDir string, loaded int, user string) string {
	var b strings.Builder
	b.WriteString(startPrefix)
	first := true
	for _, netid := range startNetids {
		var addrs []string
		for _, s := range socks {
			if s.Netid != netid {
				continue
			}
			a := s.Addr
			switch {
			case s.Abstract:
				a = "@" + a
			case netid != "local":
				if ap, err := pmap.ParseUaddr(a); err == nil {
					a = ap.String()
				}
			}
			if s.Activated {
				a += " (systemd)"
			}
			addrs = append(addrs, a)
		}
		if len(addrs) == 0 {
			continue
		}
		if !first {
			b.WriteString(", ")
		}
		first = false
		b.WriteString(netid + " " + strings.Join(addrs, " "))
	}
	if first {
		b.WriteString("nothing")
	}
	switch {
	case stateDir == "":
		b.WriteString("; state not saved (see the error above)")
	case loaded < 0:
		b.WriteString("; state " + stateDir + " (cold start)")
	case loaded == 1:
		b.WriteString("; state " + stateDir + " (warm start: 1 registration)")
	default:
		b.WriteString("; state " + stateDir + " (warm start: " + strconv.Itoa(loaded) + " registrations)")
	}
	b.WriteString("; user " + user)
	return b.String()
}
