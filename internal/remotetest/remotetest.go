package remotetest

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/openrpcbind/rpcbind/internal/nstest"
	"github.com/openrpcbind/rpcbind/internal/rpc"
)

// Default addresses: TEST-NET-1 (RFC 5737), never routed.
var (
	DefaultLocal  = netip.MustParsePrefix("192.0.2.1/24")
	DefaultRemote = netip.MustParsePrefix("192.0.2.2/24")
)

// Options choose the addresses; zero values take the defaults. Extra
// prefixes (e.g. an IPv6 pair) are added to the same link.
type Options struct {
	Local, Remote           netip.Prefix
	ExtraLocal, ExtraRemote []netip.Prefix
	// Name is the veth base name ("rt" → rt0 here, rt1 there).
	Name string
}

// Remote is a second network namespace joined to the test's by a veth pair.
type Remote struct {
	Local, Remote netip.Addr // this side's and the remote side's first address
	PID           int        // a process living in the remote namespace
	NetNS         string     // /proc/PID/ns/net

	t     testing.TB
	cmd   *exec.Cmd
	netfd int // open handle on the remote namespace
}

// New creates the remote host; it is torn down when the test ends. It
// fails the test outside nstest's namespaces (it would change the host).
func New(t testing.TB, opt Options) *Remote {
	t.Helper()
	if !nstest.Inside() {
		t.Fatal("remotetest: New outside nstest's namespaces")
	}
	if !opt.Local.IsValid() {
		opt.Local = DefaultLocal
	}
	if !opt.Remote.IsValid() {
		opt.Remote = DefaultRemote
	}
	if opt.Name == "" {
		opt.Name = "rt"
	}
	ip := nstest.Need(t, "ip", "/usr/sbin/ip", "/sbin/ip")
	nstest.Need(t, "nsenter")

	// A placeholder that only lives in the new namespace until the test
	// ends. Pdeathsig kills it with us.
	cmd := exec.Command("sleep", "infinity")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("remotetest: start a process in a new network namespace: %v", err)
	}
	r := &Remote{
		Local: opt.Local.Addr(), Remote: opt.Remote.Addr(),
		PID: cmd.Process.Pid, NetNS: "/proc/" + strconv.Itoa(cmd.Process.Pid) + "/ns/net",
		t: t, cmd: cmd, netfd: -1,
	}
	t.Cleanup(r.close)
	fd, err := unix.Open(r.NetNS, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("remotetest: open %s: %v", r.NetNS, err)
	}
	r.netfd = fd

	here, there := opt.Name+"0", opt.Name+"1"
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(ip, args...).CombinedOutput(); err != nil {
			t.Fatalf("remotetest: ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	runThere := func(args ...string) {
		t.Helper()
		if out, err := r.Command(ip, args...).CombinedOutput(); err != nil {
			t.Fatalf("remotetest: (remote) ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("link", "add", here, "type", "veth", "peer", "name", there)
	run("link", "set", there, "netns", strconv.Itoa(r.PID))
	for _, p := range append([]netip.Prefix{opt.Local}, opt.ExtraLocal...) {
		run(addrArgs(p, here)...)
	}
	run("link", "set", here, "up")
	runThere("link", "set", "lo", "up")
	for _, p := range append([]netip.Prefix{opt.Remote}, opt.ExtraRemote...) {
		runThere(addrArgs(p, there)...)
	}
	runThere("link", "set", there, "up")
	r.waitReady(ip, here)
	return r
}

// addrArgs adds p to dev; IPv6 skips duplicate address detection so the
// address is usable at once.
func addrArgs(p netip.Prefix, dev string) []string {
	a := []string{"addr", "add", p.String(), "dev", dev}
	if p.Addr().Is6() {
		a = append(a, "nodad")
	}
	return a
}

// waitReady waits until the veth carrier is up on this side.
func (r *Remote) waitReady(ip, dev string) {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		out, _ := exec.Command(ip, "-br", "link", "show", dev).Output()
		if strings.Contains(string(out), "UP") && !strings.Contains(string(out), "NO-CARRIER") {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.t.Fatalf("remotetest: %s has no carrier after 5s", dev)
}

func (r *Remote) close() {
	if r.netfd >= 0 {
		unix.Close(r.netfd)
	}
	r.cmd.Process.Kill()
	r.cmd.Wait()
	// The veth pair vanishes with the remote namespace.
}

// Command returns a command that runs name in the remote namespace (only
// the network namespace changes: files, /run and users are shared).
func (r *Remote) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("nsenter", append([]string{"--net=" + r.NetNS, "--", name}, args...)...)
}

// CommandContext is Command with a context.
func (r *Remote) CommandContext(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + r.NetNS, "--", name}, args...)...)
}

// Do runs fn with the calling goroutine's thread in the remote network
// namespace. Sockets fn creates stay there after Do returns. fn must not
// start goroutines that create sockets (they run on other threads).
func (r *Remote) Do(fn func() error) error {
	runtime.LockOSThread()
	self, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("remotetest: open own netns: %w", err)
	}
	defer unix.Close(self)
	if err := unix.Setns(r.netfd, unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("remotetest: setns remote: %w", err)
	}
	ferr := fn()
	if err := unix.Setns(self, unix.CLONE_NEWNET); err != nil {
		// Leave the thread locked: it dies with the goroutine instead of
		// serving others in the wrong namespace.
		return fmt.Errorf("remotetest: setns back: %w", err)
	}
	runtime.UnlockOSThread()
	return ferr
}

// DialRPC returns an internal/rpc client whose socket lives in the remote
// namespace; it is closed when the test ends.
func (r *Remote) DialRPC(t testing.TB, network, addr string, opt rpc.ClientOptions) *rpc.Client {
	t.Helper()
	var c *rpc.Client
	err := r.Do(func() error {
		var err error
		c, err = rpc.Dial(network, addr, opt)
		return err
	})
	if err != nil {
		t.Fatalf("remotetest: dial %s %s from the remote host: %v", network, addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// DialUDP returns a connected UDP socket in the remote namespace (for raw
// datagrams and floods); it is closed when the test ends.
func (r *Remote) DialUDP(t testing.TB, raddr netip.AddrPort) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	err := r.Do(func() error {
		var err error
		c, err = net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(raddr))
		return err
	})
	if err != nil {
		t.Fatalf("remotetest: dial udp %v from the remote host: %v", raddr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
