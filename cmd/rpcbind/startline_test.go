package main

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openrpcbind/rpcbind/internal/nstest"
	"github.com/openrpcbind/rpcbind/internal/rpc"
	"github.com/openrpcbind/rpcbind/internal/server"
	"github.com/openrpcbind/rpcbind/pmap"
)

func TestStartLineFormat(t *testing.T) {
	if got := "rpcbind: " + startPrefix; got != nstest.StartLinePrefix {
		t.Fatalf("the line begins %q on stderr, nstest (and so internal/e2e) removes %q", got, nstest.StartLinePrefix)
	}
	std := []*server.Socket{
		{Netid: "local", Addr: "/run/rpcbind.sock"},
		{Netid: "local", Addr: "/run/rpcbind.sock", Abstract: true},
		{Netid: "udp", Addr: "0.0.0.0.0.111"},
		{Netid: "tcp", Addr: "0.0.0.0.0.111"},
		{Netid: "udp6", Addr: "::.0.111"},
		{Netid: "tcp6", Addr: "::.0.111"},
	}
	for _, tc := range []struct {
		name   string
		socks  []*server.Socket
		dir    string
		loaded int
		user   string
		want   string
	}{
		{"warm", std, "/run/rpcbind", 3, "_rpc",
			"serving udp 0.0.0.0:111, tcp 0.0.0.0:111, udp6 [::]:111, tcp6 [::]:111, local /run/rpcbind.sock @/run/rpcbind.sock; state /run/rpcbind (warm start: 3 registrations); user _rpc"},
		{"one", std[2:3], "/run/rpcbind", 1, "daemon", "serving udp 0.0.0.0:111; state /run/rpcbind (warm start: 1 registration); user daemon"},
		{"cold", std[3:4], "/var/lib/rpcbind", -1, "_rpc", "serving tcp 0.0.0.0:111; state /var/lib/rpcbind (cold start); user _rpc"},
		{"no state", std[4:5], "", -1, "_rpc", "serving udp6 [::]:111; state not saved (see the error above); user _rpc"},
		{"-h and systemd", []*server.Socket{
			{Netid: "tcp", Addr: "0.0.0.0.0.111", Activated: true},
			{Netid: "udp", Addr: "127.0.0.2.0.111"},
			{Netid: "udp", Addr: "127.0.0.1.0.111"},
			{Netid: "local", Addr: "/run/rpcbind.sock", Activated: true},
		}, "/run/rpcbind", 0, "_rpc",
			"serving udp 127.0.0.2:111 127.0.0.1:111, tcp 0.0.0.0:111 (systemd), local /run/rpcbind.sock (systemd); state /run/rpcbind (warm start: 0 registrations); user _rpc"},
		{"nothing", nil, "/run/rpcbind", -1, "_rpc", "serving nothing; state /run/rpcbind (cold start); user _rpc"},
	} {
		if got := startLine(tc.socks, tc.dir, tc.loaded, tc.user); got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
}

// TestStartLine: in the foreground the daemon says, once, at start, what it
// listens on and where its state is; a warm start counts what it reloaded.
func TestStartLine(t *testing.T) {
	bin := binary(t)
	if !nstest.Enter(t) {
		return
	}
	v6 := ""
	if _, err := os.Stat("/proc/sys/net/ipv6"); err == nil {
		v6 = `, udp6 \[::\]:111, tcp6 \[::\]:111`
	}
	line := func(state string) *regexp.Regexp {
		return regexp.MustCompile(`^rpcbind: serving udp 0\.0\.0\.0:111, tcp 0\.0\.0\.0:111` + v6 +
			`, local /run/rpcbind\.sock @/run/rpcbind\.sock; state /run/rpcbind \(` + regexp.QuoteMeta(state) + `\); user _rpc\n$`)
	}

	d := nstest.StartDaemon(t, bin, "-f")
	c, err := rpc.Dial("unix", nstest.SocketPath, rpc.ClientOptions{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		args := pmap.AppendRPCB(nil, uint32(430000+i), 1, "tcp", fmt.Sprintf("0.0.0.0.8.%d", i), "")
		if res, err := c.Call(context.Background(), pmap.Prog, 3, uint32(pmap.RPCBProcSet), nil, args); err != nil || len(res) != 4 || res[3] != 1 {
			t.Fatalf("SET %d: %x, %v", 430000+i, res, err)
		}
	}
	c.Close()
	if err := d.Stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if out := d.Output(); !line("cold start").MatchString(out) {
		t.Errorf("without -w the daemon said %q, want one line matching %s", out, line("cold start"))
	}

	d = nstest.StartDaemon(t, bin, "-f", "-w")
	if err := d.Stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if out := d.Output(); !line("warm start: 2 registrations").MatchString(out) {
		t.Errorf("with -w the daemon said %q, want one line matching %s", out, line("warm start: 2 registrations"))
	}
	if rest, n := nstest.WithoutStartLines(d.Output()); n != 1 || rest != "" {
		t.Errorf("nstest.WithoutStartLines removed %d lines, left %q", n, rest)
	}
	if !strings.HasPrefix(d.Output(), nstest.StartLinePrefix) {
		t.Errorf("output does not begin with %q", nstest.StartLinePrefix)
	}
}
