package main

import (
	"bytes"
	"log/slog"
	"net/netip"
	"testing"

	"github.com/openrpcbind/rpcbind/internal/access"
	"github.com/openrpcbind/rpcbind/internal/daemon"
	"github.com/openrpcbind/rpcbind/internal/service"
)

// Access and denial events in the reference's words (spec §4.5); access
// events only with -l.
func TestEventLog(t *testing.T) {
	remote := &access.Caller{Netid: "udp", Addr: netip.MustParseAddrPort("10.1.2.3:700"), UID: -1}
	local := &access.Caller{Netid: "local", UID: 1000}
	for _, tc := range []struct {
		verbose bool
		e       service.Event
		want    string
	}{
		{false, service.Event{Kind: service.EventAccess, Caller: remote, Vers: 2, Proc: 3, Prog: 100003}, ""},
		{true, service.Event{Kind: service.EventAccess, Caller: remote, Vers: 2, Proc: 3, Prog: 100003},
			"rpcbind: connect from 10.1.2.3 to getport/addr(100003)\n"},
		{false, service.Event{Kind: service.EventNonLocal, Caller: remote, Vers: 2, Proc: 1, Prog: 100000},
			"rpcbind: connect from 10.1.2.3 to set(portmapper) declined (non-loopback sender)\n"},
		{false, service.Event{Kind: service.EventHostDenied, Caller: remote, Vers: 4, Proc: 4},
			"rpcbind: connect from 10.1.2.3 to dump(0) request from unauthorized host\n"},
		{false, service.Event{Kind: service.EventCallitDenied, Caller: local, Vers: 4, Proc: 10, Prog: 100000},
			"rpcbind: connect from local to indirect(portmapper) indirect call not allowed\n"},
	} {
		var b bytes.Buffer
		d := &rpcbindDaemon{f: &daemon.Flags{Verbose: tc.verbose},
			log: slog.New(daemon.NewStderrHandler(&b, slog.LevelInfo))}
		d.event(tc.e)
		if b.String() != tc.want {
			t.Errorf("%+v: got %q want %q", tc.e, b.String(), tc.want)
		}
	}
}
