package e2e

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openrpcbind/rpcbind/internal/nstest"
	"github.com/openrpcbind/rpcbind/internal/rpc"
	"github.com/openrpcbind/rpcbind/internal/testenv"
	"github.com/openrpcbind/rpcbind/pmap"
)

// envActivationBin passes the static build of cmd/rpcbind to the namespace
// children of the activation tests.
const envActivationBin = "E2E_ACTIVATION_BIN"

// activationBinary builds cmd/rpcbind as `make build` does (CGO_ENABLED=0)
// outside the namespaces; inside it returns the path the parent exported.
func activationBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv(envActivationBin); p != "" {
		return p
	}
	if nstest.Inside() {
		t.Fatal("e2e: " + envActivationBin + " not set in the namespace child")
	}
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "rpcbind")
	cmd := exec.Command(goTool(), "build", "-o", bin, "./cmd/rpcbind")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("e2e: go build ./cmd/rpcbind: %v\n%s", err, out)
	}
	t.Setenv(envActivationBin, bin)
	return bin
}

// activationEnv prepares an activation test: the binary is built outside,
// then the test re-runs inside the namespaces. false: return at once.
func activationEnv(t *testing.T) (impls []Impl, sa string, ok bool) {
	t.Helper()
	if !nstest.Inside() {
		testenv.Root(t, "e2e: network and mount namespaces")
		activationBinary(t)
	}
	if !nstest.Enter(t) {
		return nil, "", false
	}
	sa = nstest.Need(t, "systemd-socket-activate")
	nstest.Need(t, "rpcinfo")
	impls = []Impl{
		{Name: "reference", Path: nstest.ReferenceRpcbind(t), Args: []string{"-f"}},
		{Name: "ours", Path: activationBinary(t), Args: []string{"-f"}},
	}
	return impls, sa, true
}

// setBindV6Only sets net.ipv6.bindv6only of the test's network namespace:
// with 1, systemd-socket-activate's IPv6 sockets are IPV6_V6ONLY (it leaves
// the option at the kernel default, like BindIPv6Only=default).
func setBindV6Only(t *testing.T, on bool) {
	t.Helper()
	v := "0"
	if on {
		v = "1"
	}
	if err := os.WriteFile("/proc/sys/net/ipv6/bindv6only", []byte(v), 0o644); err != nil {
		t.Fatalf("bindv6only: %v", err)
	}
}

// sockKey names a socket as "tcp 127.0.0.1:111", "udp6 [::]:111",
// "unix /run/rpcbind.sock", "unix @/run/rpcbind.sock".
type sockTable map[string][]string // key -> socket inodes

// sockets lists the listening stream sockets and unconnected datagram
// sockets of the namespace, on port 111 or named *rpcbind.sock.
func sockets(t *testing.T) sockTable {
	t.Helper()
	st := sockTable{}
	for _, p := range []struct {
		file, proto, state string
	}{
		{"/proc/net/tcp", "tcp", "0A"}, {"/proc/net/tcp6", "tcp6", "0A"},
		{"/proc/net/udp", "udp", "07"}, {"/proc/net/udp6", "udp6", "07"},
	} {
		b, err := os.ReadFile(p.file)
		if err != nil {
			continue // no IPv6
		}
		for _, l := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(l)
			if len(f) < 10 || f[3] != p.state {
				continue
			}
			ap, err := procAddr(f[1])
			if err != nil {
				t.Fatalf("%s: %v", p.file, err)
			}
			if ap.Port() != 111 {
				continue
			}
			k := p.proto + " " + ap.String()
			st[k] = append(st[k], f[9])
		}
	}
	b, err := os.ReadFile("/proc/net/unix")
	if err != nil {
		t.Fatal(err)
	}
	// Num RefCount Protocol Flags Type St Inode Path; Flags 00010000 = listening.
	for _, l := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(l)
		if len(f) < 8 || f[3] != "00010000" || !strings.HasSuffix(f[7], "rpcbind.sock") {
			continue
		}
		k := "unix " + f[7]
		st[k] = append(st[k], f[6])
	}
	return st
}

// procAddr decodes /proc/net/{tcp,udp}[6]'s "0100007F:006F": the address
// in 32-bit host-order words, the port in hex.
func procAddr(s string) (netip.AddrPort, error) {
	a, p, ok := strings.Cut(s, ":")
	raw, err := hex.DecodeString(a)
	if !ok || err != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.AddrPort{}, fmt.Errorf("bad address %q", s)
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("bad port %q", s)
	}
	for i := 0; i < len(raw); i += 4 {
		binary.BigEndian.PutUint32(raw[i:], binary.NativeEndian.Uint32(raw[i:]))
	}
	ip, _ := netip.AddrFromSlice(raw)
	return netip.AddrPortFrom(ip, uint16(port)), nil
}

func (st sockTable) keys() []string {
	var ks []string
	for k := range st {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// activated is one daemon started by systemd-socket-activate.
type activated struct {
	d      *nstest.Daemon
	before sockTable // systemd-socket-activate's sockets, before the exec
	after  sockTable // once the daemon serves
	table  string    // `rpcinfo` (the v4 dump) once the daemon serves
}

// runActivated starts impl under `systemd-socket-activate saArgs... --
// impl`, waits for the activator's sockets (want: their keys), calls
// trigger (the first request, which execs the daemon), and records what
// the daemon serves.
func runActivated(t *testing.T, sa string, impl Impl, saArgs []string, want []string, trigger func(t *testing.T, a *activated)) *activated {
	t.Helper()
	nstest.FreshRun(t)
	args := append(append(slices.Clone(saArgs), "--", impl.Path), impl.Args...)
	a := &activated{d: nstest.StartNamed(t, impl.Name, sa, args...)}
	a.d.WaitUntil(nstest.StartTimeout, "the activator's sockets", func() bool {
		a.before = sockets(t)
		for _, k := range want {
			if len(a.before[k]) == 0 {
				return false
			}
		}
		return true
	})
	if got := a.before.keys(); !slices.Equal(got, want) {
		t.Fatalf("%s: before activation the namespace has sockets %v, want %v", impl.Name, got, want)
	}
	trigger(t, a)
	a.table = rpcinfo(t, impl.Name)
	a.after = sockets(t)
	t.Logf("%s: sockets after activation: %v", impl.Name, a.after)
	return a
}

func rpcinfo(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), CmdTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "rpcinfo", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: rpcinfo %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// getport asks 100000 v2 GETPORT(prog, vers, proto) over network to addr,
// retransmitting until the daemon, started by the first datagram, answers.
func getport(t *testing.T, network, addr string, prog, vers, proto uint32) uint32 {
	t.Helper()
	c, err := rpc.Dial(network, addr, rpc.ClientOptions{Timeout: CmdTimeout, Retransmit: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	m := pmap.Mapping{Prog: prog, Vers: vers, Prot: proto}
	res, err := c.Call(context.Background(), pmap.Prog, 2, uint32(pmap.PmapProcGetPort), nil, m.AppendXDR(nil))
	if err != nil {
		t.Fatalf("GETPORT over %s %s: %v", network, addr, err)
	}
	if len(res) != 4 {
		t.Fatalf("GETPORT over %s %s: %d result bytes", network, addr, len(res))
	}
	return binary.BigEndian.Uint32(res)
}

// selfAddrs returns netid -> the addresses of program 100000 in `rpcinfo`.
func selfAddrs(table string) map[string][]string {
	m := map[string][]string{}
	for _, l := range strings.Split(table, "\n") {
		f := strings.Fields(l)
		if len(f) >= 4 && f[0] == "100000" && !slices.Contains(m[f[2]], f[3]) {
			m[f[2]] = append(m[f[2]], f[3])
		}
	}
	return m
}

// checkPassed asserts the daemon serves each passed socket itself: the
// same socket (inode) as systemd-socket-activate bound, and no second one.
func checkPassed(t *testing.T, name string, a *activated, passed []string) {
	t.Helper()
	for _, k := range passed {
		if !slices.Equal(a.after[k], a.before[k]) {
			t.Errorf("%s: %s is socket %v after activation, want the passed socket %v (re-bound?)", name, k, a.after[k], a.before[k])
		}
	}
}

// sameTables compares the reference's and our `rpcinfo` output.
func sameTables(t *testing.T, ref, ours *activated) {
	t.Helper()
	if ref.table != ours.table {
		t.Errorf("rpcinfo differs (-reference +ours):\n%s", lineDiff(ref.table, ours.table))
	}
}

// withoutAbstract drops our abstract socket, which the reference does not
// have, from a socket list.
func withoutAbstract(ks []string) []string {
	return slices.DeleteFunc(slices.Clone(ks), func(k string) bool { return k == "unix @/run/rpcbind.sock" })
}

// TestActivationStream: systemd-socket-activate passes the local socket and
// TCP on 127.0.0.1:111 only. Both daemons serve on them without binding
// them again, bind the transports not passed (UDP and IPv6 on the
// wildcard), and show 127.0.0.1.0.111 as the tcp self-entry.
func TestActivationStream(t *testing.T) {
	impls, sa, ok := activationEnv(t)
	if !ok {
		return
	}
	setBindV6Only(t, false)
	saArgs := []string{"-l", "/run/rpcbind.sock", "-l", "127.0.0.1:111"}
	passed := []string{"tcp 127.0.0.1:111", "unix /run/rpcbind.sock"}
	var runs []*activated
	for _, impl := range impls {
		a := runActivated(t, sa, impl, saArgs, passed, func(t *testing.T, a *activated) {
			out := rpcinfo(t, impl.Name, "-p") // over the passed local socket
			if !strings.Contains(out, "100000    2   tcp    111  portmapper") {
				t.Errorf("%s: rpcinfo -p:\n%s", impl.Name, out)
			}
		})
		checkPassed(t, impl.Name, a, passed)
		// Served on the passed TCP socket: NULL of v2, v3 and v4 over TCP.
		if out := rpcinfo(t, impl.Name, "-t", "127.0.0.1", "100000"); strings.Count(out, "ready and waiting") != 3 {
			t.Errorf("%s: rpcinfo -t 127.0.0.1 100000:\n%s", impl.Name, out)
		}
		if p := getport(t, "tcp", "127.0.0.1:111", pmap.Prog, 2, pmap.IPProtoUDP); p != 111 {
			t.Errorf("%s: GETPORT(100000, 2, udp) over tcp = %d, want 111", impl.Name, p)
		}
		self := selfAddrs(a.table)
		if !slices.Equal(self["tcp"], []string{"127.0.0.1.0.111"}) || !slices.Equal(self["local"], []string{"/run/rpcbind.sock"}) {
			t.Errorf("%s: self-entries %v, want tcp 127.0.0.1.0.111 and local /run/rpcbind.sock", impl.Name, self)
		}
		// What was not passed is bound by the daemon itself.
		want := []string{"tcp 127.0.0.1:111", "tcp6 [::]:111", "udp 0.0.0.0:111", "udp6 [::]:111", "unix /run/rpcbind.sock"}
		if got := withoutAbstract(a.after.keys()); !slices.Equal(got, want) {
			t.Errorf("%s: sockets after activation %v, want %v", impl.Name, got, want)
		}
		for k, inodes := range a.after {
			if len(inodes) != 1 {
				t.Errorf("%s: %d sockets on %s", impl.Name, len(inodes), k)
			}
		}
		if impl.Name == "ours" && len(a.after["unix @/run/rpcbind.sock"]) != 1 {
			t.Errorf("ours: no abstract socket (not passed, so bound by the daemon)")
		}
		runs = append(runs, a)
		if err := a.d.Stop(syscall.SIGTERM); err != nil {
			t.Errorf("%s: SIGTERM: %v", impl.Name, err)
		}
	}
	sameTables(t, runs[0], runs[1])
}

// TestActivationDatagram: `--datagram` passes UDP on 127.0.0.1:111 only;
// the first datagram starts the daemon, which answers it on that socket.
func TestActivationDatagram(t *testing.T) {
	impls, sa, ok := activationEnv(t)
	if !ok {
		return
	}
	setBindV6Only(t, false)
	saArgs := []string{"--datagram", "-l", "127.0.0.1:111"}
	passed := []string{"udp 127.0.0.1:111"}
	var runs []*activated
	for _, impl := range impls {
		a := runActivated(t, sa, impl, saArgs, passed, func(t *testing.T, a *activated) {
			if p := getport(t, "udp", "127.0.0.1:111", pmap.Prog, 2, pmap.IPProtoTCP); p != 111 {
				t.Errorf("%s: GETPORT(100000, 2, tcp) over udp = %d, want 111", impl.Name, p)
			}
		})
		checkPassed(t, impl.Name, a, passed)
		self := selfAddrs(a.table)
		if !slices.Equal(self["udp"], []string{"127.0.0.1.0.111"}) || !slices.Equal(self["tcp"], []string{"0.0.0.0.0.111"}) {
			t.Errorf("%s: self-entries %v, want udp 127.0.0.1.0.111 and tcp 0.0.0.0.0.111", impl.Name, self)
		}
		// No UDP wildcard next to the passed socket; the rest is bound.
		want := []string{"tcp 0.0.0.0:111", "tcp6 [::]:111", "udp 127.0.0.1:111", "udp6 [::]:111", "unix /run/rpcbind.sock"}
		if got := withoutAbstract(a.after.keys()); !slices.Equal(got, want) {
			t.Errorf("%s: sockets after activation %v, want %v", impl.Name, got, want)
		}
		runs = append(runs, a)
		if err := a.d.Stop(syscall.SIGTERM); err != nil {
			t.Errorf("%s: SIGTERM: %v", impl.Name, err)
		}
	}
	sameTables(t, runs[0], runs[1])
}

// TestActivationAll passes every socket rpcbind.socket lists, stream and
// datagram, IPv6 ones IPv6-only: an outer systemd-socket-activate (streams)
// passes its descriptors through an inner one (`--datagram`). Nothing is
// bound by the reference; ours adds only the abstract socket.
func TestActivationAll(t *testing.T) {
	impls, sa, ok := activationEnv(t)
	if !ok {
		return
	}
	if _, err := os.Stat("/proc/sys/net/ipv6/bindv6only"); err != nil {
		testenv.Missing(t, "IPv6 (%v)", err)
	}
	setBindV6Only(t, true)
	defer setBindV6Only(t, false)
	saArgs := []string{"-l", "/run/rpcbind.sock", "-l", "0.0.0.0:111", "-l", "[::]:111", "--",
		sa, "--datagram", "-l", "0.0.0.0:111", "-l", "[::]:111"}
	streams := []string{"tcp 0.0.0.0:111", "tcp6 [::]:111", "unix /run/rpcbind.sock"}
	passed := []string{"tcp 0.0.0.0:111", "tcp6 [::]:111", "udp 0.0.0.0:111", "udp6 [::]:111", "unix /run/rpcbind.sock"}
	var runs []*activated
	for _, impl := range impls {
		// The daemon is exec'd through sh, which first records which
		// sockets arrive as fds 3-7 (LISTEN_PID stays right: exec keeps
		// the pid).
		const record = `for f in /proc/$$/fd/[3-7]; do readlink "$f"; done >/run/passed-fds; exec "$0" "$@"`
		wrapped := Impl{Name: impl.Name, Path: "/bin/sh", Args: append([]string{"-c", record, impl.Path}, impl.Args...)}
		a := runActivated(t, sa, wrapped, saArgs, streams, func(t *testing.T, a *activated) {
			// A connection execs the inner activator, which binds UDP
			// and, seeing the connection pending, execs the daemon.
			c, err := net.Dial("tcp", "127.0.0.1:111")
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			a.d.WaitUntil(nstest.StartTimeout, "UDP on port 111", func() bool {
				st := sockets(t)
				return len(st["udp 0.0.0.0:111"]) > 0 && len(st["udp6 [::]:111"]) > 0
			})
			if p := getport(t, "udp6", "[::1]:111", pmap.Prog, 2, pmap.IPProtoUDP); p != 111 {
				t.Errorf("%s: GETPORT over udp6 = %d, want 111", impl.Name, p)
			}
		})
		b, err := os.ReadFile("/run/passed-fds")
		if err != nil {
			t.Fatal(err)
		}
		var fds, served []string
		for _, l := range strings.Fields(string(b)) {
			fds = append(fds, strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]"))
		}
		for _, k := range passed {
			if len(a.after[k]) != 1 {
				t.Errorf("%s: %s: sockets %v, want one", impl.Name, k, a.after[k])
			}
			served = append(served, a.after[k]...)
		}
		slices.Sort(fds)
		slices.Sort(served)
		if !slices.Equal(fds, served) {
			t.Errorf("%s: serves sockets %v, was passed %v (%s)", impl.Name, served, fds, b)
		}
		checkPassed(t, impl.Name, a, streams)
		if got := withoutAbstract(a.after.keys()); !slices.Equal(got, passed) {
			t.Errorf("%s: sockets %v, want %v", impl.Name, got, passed)
		}
		if p := getport(t, "tcp6", "[::1]:111", pmap.Prog, 4, pmap.IPProtoTCP); p != 111 {
			t.Errorf("%s: GETPORT over tcp6 = %d, want 111", impl.Name, p)
		}
		runs = append(runs, a)
		if err := a.d.Stop(syscall.SIGTERM); err != nil {
			t.Errorf("%s: SIGTERM: %v", impl.Name, err)
		}
	}
	sameTables(t, runs[0], runs[1])
}

// TestActivationDualStack: a dual-mode [::]:111 TCP socket is refused with
// the reference's message; the reference then has no TCP at all (the
// refused socket still holds port 111 while the IPv4 wildcard is bound),
// and neither have we.
func TestActivationDualStack(t *testing.T) {
	impls, sa, ok := activationEnv(t)
	if !ok {
		return
	}
	if _, err := os.Stat("/proc/sys/net/ipv6/bindv6only"); err != nil {
		testenv.Missing(t, "IPv6 (%v)", err)
	}
	setBindV6Only(t, false)
	refBin, err := os.ReadFile(impls[0].Path)
	if err != nil {
		t.Fatal(err)
	}
	msgs := []string{
		"systemd has passed an IPv4/IPv6 dual-mode socket.",
		"Please fix your systemd config by specifying IPv4 and IPv6 sockets separately and using BindIPv6Only=ipv6-only.",
	}
	for _, m := range msgs {
		if !strings.Contains(string(refBin), m+"\x00") {
			t.Fatalf("the reference binary has no string %q", m)
		}
	}
	saArgs := []string{"-l", "/run/rpcbind.sock", "-l", "[::]:111"}
	passed := []string{"tcp6 [::]:111", "unix /run/rpcbind.sock"}
	var runs []*activated
	for _, impl := range impls {
		a := runActivated(t, sa, impl, saArgs, passed, func(t *testing.T, a *activated) { rpcinfo(t, impl.Name, "-p") })
		checkPassed(t, impl.Name, a, []string{"unix /run/rpcbind.sock"})
		self := selfAddrs(a.table)
		if self["tcp6"] != nil || self["tcp"] != nil {
			t.Errorf("%s: tcp self-entries with a dual-mode socket: %v", impl.Name, self)
		}
		want := []string{"udp 0.0.0.0:111", "udp6 [::]:111", "unix /run/rpcbind.sock"}
		if got := withoutAbstract(a.after.keys()); !slices.Equal(got, want) {
			t.Errorf("%s: sockets %v, want %v", impl.Name, got, want)
		}
		if impl.Name == "ours" {
			// The reference says it to syslog; ours, with -f, on stderr.
			for _, m := range msgs {
				if !strings.Contains(a.d.Output(), "rpcbind: "+m+"\n") {
					t.Errorf("ours: %q not logged; output:\n%s", m, a.d.Output())
				}
			}
		}
		runs = append(runs, a)
		if err := a.d.Stop(syscall.SIGTERM); err != nil {
			t.Errorf("%s: SIGTERM: %v", impl.Name, err)
		}
	}
	sameTables(t, runs[0], runs[1])
}
