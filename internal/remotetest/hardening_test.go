// Issue-6 "remote host" scenarios against our daemon (and, where the
// reference has the behaviour, against Debian's rpcbind side by side).

package remotetest

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/openrpcbind/rpcbind/internal/e2e"
	"github.com/openrpcbind/rpcbind/internal/nstest"
	"github.com/openrpcbind/rpcbind/internal/ratelimit"
	"github.com/openrpcbind/rpcbind/internal/rpc"
	"github.com/openrpcbind/rpcbind/pmap"
)

// RefuseFlag is the long option that turns on ratelimit.Config.RefuseLists.
const RefuseFlag = "--refuse-remote-udp-dump"

func ours(t *testing.T, env *e2e.Env) e2e.Impl {
	t.Helper()
	for _, im := range env.Impls {
		if im.Name == "ours" {
			return im
		}
	}
	t.Fatal("our daemon was not built (cmd/rpcbind missing?)")
	return e2e.Impl{}
}

func with(im e2e.Impl, extra ...string) e2e.Impl {
	im.Args = append(append([]string(nil), im.Args...), extra...)
	return im
}

// TestRemoteChangeRefused: from the remote host, SET and UNSET of every
// version over every transport are AUTH_TOOWEAK (spec §3.1), as the
// reference.
func TestRemoteChangeRefused(t *testing.T) {
	env, ok := e2e.Enter(t)
	if !ok {
		return
	}
	r := New(t, dualStack())
	ours(t, env)
	for _, im := range env.Impls {
		t.Run(im.Name, func(t *testing.T) {
			env.Start(t, im)
			for _, tr := range []struct{ network, addr, netid string }{
				{"udp", "192.0.2.1:111", "udp"}, {"tcp", "192.0.2.1:111", "tcp"},
				{"udp6", "[2001:db8::1]:111", "udp6"}, {"tcp6", "[2001:db8::1]:111", "tcp6"},
			} {
				c := r.DialRPC(t, tr.network, tr.addr, quick)
				for _, v := range []uint32{2, 3, 4} {
					if got := set(t, c, v, 300002, tr.netid, "192.0.2.2.15.160"); got != "AUTH_TOOWEAK" {
						t.Errorf("%s v%d SET from the remote host: %s, want AUTH_TOOWEAK", tr.network, v, got)
					}
					if got := unset(t, c, v, 100000, tr.netid); got != "AUTH_TOOWEAK" {
						t.Errorf("%s v%d UNSET from the remote host: %s, want AUTH_TOOWEAK", tr.network, v, got)
					}
				}
			}
		})
	}
}

// bindOver mounts a fresh file over path (private mount namespace) and
// returns the file to edit in place.
func bindOver(t *testing.T, path string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), filepath.Base(path))
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(f, path, "", unix.MS_BIND, ""); err != nil {
		t.Fatalf("bind %s over %s: %v", f, path, err)
	}
	t.Cleanup(func() { unix.Unmount(path, unix.MNT_DETACH) })
	return f
}

// edit rewrites f in place (same inode, so the bind mount shows it).
func edit(t *testing.T, f, content string) {
	t.Helper()
	if err := os.WriteFile(f, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// until polls cond for up to limit and returns how long it took.
func until(t *testing.T, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not after %v", what, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// TestHostsDenyFromRemote: a hosts.deny rule refuses GETPORT from the
// remote host with AUTH_TOOWEAK while NULL is still answered and loopback is
// untouched; editing the file applies without a restart (ours: within
// hostsaccess.CheckInterval, the reference: at once).
func TestHostsDenyFromRemote(t *testing.T) {
	env, ok := e2e.Enter(t)
	if !ok {
		return
	}
	r := New(t, dualStack())
	ours(t, env)
	bindOver(t, "/etc/hosts.allow")
	deny := bindOver(t, "/etc/hosts.deny")
	for _, im := range env.Impls {
		t.Run(im.Name, func(t *testing.T) {
			edit(t, deny, "")
			env.Start(t, im)
			c4 := r.DialRPC(t, "udp", "192.0.2.1:111", quick)
			c6 := r.DialRPC(t, "tcp6", "[2001:db8::1]:111", quick)
			lo, err := rpc.Dial("udp", "127.0.0.1:111", quick)
			if err != nil {
				t.Fatal(err)
			}
			defer lo.Close()
			for _, c := range []*rpc.Client{c4, c6} {
				if got := getport(t, c); got != "port 111" {
					t.Fatalf("GETPORT before any rule: %s", got)
				}
			}
			edit(t, deny, "# issue 6\nrpcbind: 192.0.2.2 [2001:db8::2]\n")
			took := until(t, 3*time.Second, "the hosts.deny rule", func() bool { return getport(t, c4) == "AUTH_TOOWEAK" })
			t.Logf("%s: hosts.deny edit applied after %v", im.Name, took.Round(time.Millisecond))
			for name, c := range map[string]*rpc.Client{"udp": c4, "tcp6": c6} {
				if got := getport(t, c); got != "AUTH_TOOWEAK" {
					t.Errorf("%s GETPORT from a denied host: %s, want AUTH_TOOWEAK", name, got)
				}
				if got := null(t, c); got != "ok" {
					t.Errorf("%s NULL from a denied host: %s, want an answer", name, got)
				}
			}
			if got := getport(t, lo); got != "port 111" {
				t.Errorf("GETPORT from 127.0.0.1 under a rule for 192.0.2.2: %s", got)
			}
			edit(t, deny, "rpcbind: 10.0.0.0/255.0.0.0\n")
			took = until(t, 3*time.Second, "lifting the rule", func() bool { return getport(t, c4) == "port 111" })
			t.Logf("%s: lifting the rule applied after %v", im.Name, took.Round(time.Millisecond))
		})
	}
}

// dialLocalUDP is a UDP socket from 127.0.0.1 (exempt from limits).
func dialLocalUDP(t *testing.T) *net.UDPConn {
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:111")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestRemoteUDPFlood: a UDP DUMP flood from the remote host is cut to the
// default rate (burst + rate × time), a flood from loopback is not.
func TestRemoteUDPFlood(t *testing.T) {
	env, ok := e2e.Enter(t)
	if !ok {
		return
	}
	r := New(t, dualStack())
	im := ours(t, env)
	for _, im := range []e2e.Impl{env.Impls[0], im} {
		t.Run(im.Name, func(t *testing.T) {
			env.Start(t, im)
			const n, d = 2000, 2 * time.Second
			start := time.Now()
			remote, rbytes := flood(t, r.DialUDP(t, netip.MustParseAddrPort("192.0.2.1:111")), 4, uint32(pmap.RPCBProcDump), n, d)
			elapsed := time.Since(start)
			local, lbytes := flood(t, dialLocalUDP(t), 4, uint32(pmap.RPCBProcDump), n, d)
			t.Logf("%s: remote flood %d/%d replies (%d B) in %v; local flood %d/%d replies (%d B)",
				im.Name, remote, n, rbytes, elapsed.Round(time.Millisecond), local, n, lbytes)
			if local < n*99/100 {
				t.Errorf("loopback flood: %d of %d answered; local callers must not be limited", local, n)
			}
			if im.Name == "reference" {
				return // the figure only: the reference answers everything
			}
			max := ratelimit.DefaultBurst + int(ratelimit.DefaultRate*elapsed.Seconds()) + 5
			if remote > max || remote < ratelimit.DefaultBurst/2 {
				t.Errorf("remote flood: %d of %d answered, want between %d and %d (burst %d + %d/s × %v)",
					remote, n, ratelimit.DefaultBurst/2, max, ratelimit.DefaultBurst, ratelimit.DefaultRate, elapsed.Round(time.Millisecond))
			}
		})
	}
}

// TestRefuseRemoteUDPDump: with RefuseFlag, UDP DUMP and GETSTAT from the
// remote host are refused (AUTH_TOOWEAK, smaller than the call) while the
// same DUMP over TCP works, rpcinfo -p from the remote host works, and
// loopback UDP DUMP works.
func TestRefuseRemoteUDPDump(t *testing.T) {
	env, ok := e2e.Enter(t)
	if !ok {
		return
	}
	r := New(t, dualStack())
	env.Start(t, with(ours(t, env), RefuseFlag))
	u := r.DialRPC(t, "udp", "192.0.2.1:111", quick)
	u6 := r.DialRPC(t, "udp6", "[2001:db8::1]:111", quick)
	for _, c := range []*rpc.Client{u, u6} {
		for _, vp := range [][2]uint32{{2, 4}, {3, 4}, {4, 4}, {4, 12}} {
			if got := outcome(c.Call(ctx(t), pmap.Prog, vp[0], vp[1], nil, nil)); got != "AUTH_TOOWEAK" {
				t.Errorf("remote UDP v%d proc %d: %s, want AUTH_TOOWEAK", vp[0], vp[1], got)
			}
		}
		if got := getport(t, c); got != "port 111" {
			t.Errorf("remote UDP GETPORT with the option on: %s", got)
		}
	}
	tc := r.DialRPC(t, "tcp", "192.0.2.1:111", quick)
	res, err := tc.Call(ctx(t), pmap.Prog, 4, uint32(pmap.RPCBProcDump), nil, nil)
	if err != nil || len(res) < 100 {
		t.Errorf("remote TCP v4 DUMP: %d bytes, %v; want the list", len(res), err)
	}
	lo, err := rpc.Dial("udp", "127.0.0.1:111", quick)
	if err != nil {
		t.Fatal(err)
	}
	defer lo.Close()
	if res, err := lo.Call(ctx(t), pmap.Prog, 4, uint32(pmap.RPCBProcDump), nil, nil); err != nil || len(res) < 100 {
		t.Errorf("loopback UDP v4 DUMP: %d bytes, %v; want the list", len(res), err)
	}
	out, err := r.Command(nstest.Need(t, "rpcinfo"), "-p", "192.0.2.1").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "portmapper") {
		t.Errorf("rpcinfo -p from the remote host with the option on: %v\n%s", err, out)
	}
}

// TestInsecureFromRemote: -i opens exactly what the reference opens: the
// same script from the remote host gives the same answers.
func TestInsecureFromRemote(t *testing.T) {
	env, ok := e2e.Enter(t)
	if !ok {
		return
	}
	r := New(t, dualStack())
	ours(t, env)
	var ref []string
	for _, im := range env.Impls {
		t.Run(im.Name, func(t *testing.T) {
			env.Start(t, with(im, "-i"))
			root, err := rpc.Dial("unix", nstest.SocketPath, quick)
			if err != nil {
				t.Fatal(err)
			}
			defer root.Close()
			var got []string
			step := func(what, res string) { got = append(got, what+": "+res) }
			step("local root v4 SET 300010 tcp", set(t, root, 4, 300010, "tcp", "192.0.2.1.15.160"))
			u := r.DialRPC(t, "udp", "192.0.2.1:111", quick)
			tc := r.DialRPC(t, "tcp6", "[2001:db8::1]:111", quick)
			step("remote v2 SET udp", set(t, u, 2, 300011, "udp", ""))
			step("remote v3 SET tcp6", set(t, tc, 3, 300012, "tcp6", "2001:db8::2.15.160"))
			step("remote v4 SET udp6 over tcp6", set(t, tc, 4, 300013, "udp6", "2001:db8::2.15.161"))
			step("remote v4 UNSET of root's 300010", unset(t, tc, 4, 300010, "tcp"))
			step("remote v2 UNSET of its own 300011", unset(t, u, 2, 300011, ""))
			step("remote v4 UNSET of 100000 v4", unsetPV(t, u, 4, 100000, 4, ""))
			step("remote v2 UNSET of 100000 v2", unsetPV(t, u, 2, 100000, 2, ""))
			step("remote v2 CALLIT to 100000 NULL", outcome(u.Call(ctx(t), pmap.Prog, 2, uint32(pmap.PmapProcCallit), nil,
				append(mapping(100000, 2, 0, 0)[:12], 0, 0, 0, 0))))
			step("remote GETPORT", getport(t, u))
			res, err := tc.Call(ctx(t), pmap.Prog, 2, uint32(pmap.PmapProcDump), nil, nil)
			step("remote v2 DUMP entries", fmt.Sprint(len(res)/20, " ", err))
			if im.Name == "reference" {
				ref = got
				t.Logf("reference:\n%s", strings.Join(got, "\n"))
				return
			}
			if strings.Join(got, "\n") != strings.Join(ref, "\n") {
				t.Errorf("with -i, ours differs from the reference:\n--- reference\n%s\n--- ours\n%s",
					strings.Join(ref, "\n"), strings.Join(got, "\n"))
			}
		})
	}
}
