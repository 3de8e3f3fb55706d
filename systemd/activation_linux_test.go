package systemd

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestUaddr(t *testing.T) {
	tests := []struct {
		ip   string
		port int
		want string
	}{
		{"0.0.0.0", 111, "0.0.0.0.0.111"},
		{"127.0.0.1", 2049, "127.0.0.1.8.1"},
		{"::", 111, "::.0.111"},
		{"::1", 65535, "::1.255.255"},
		{"fe80::1%eth0", 111, "fe80::1.0.111"}, // taddr2uaddr drops the scope
		{"::ffff:10.0.0.1", 111, "::ffff:10.0.0.1.0.111"},
		{"2001:db8::1:0:0:1", 1, "2001:db8::1:0:0:1.0.1"},
	}
	for _, tt := range tests {
		if got := uaddr(netip.MustParseAddr(tt.ip), tt.port); got != tt.want {
			t.Errorf("uaddr(%s, %d) = %q, want %q", tt.ip, tt.port, got, tt.want)
		}
	}
}

func TestMissing(t *testing.T) {
	a := &Activation{
		Sockets: []Socket{{Netid: "local", Addr: "/run/rpcbind.sock"}, {Netid: "tcp", Addr: "0.0.0.0.0.111"}},
		Refused: []Refused{
			{FD: 5, Netid: "tcp6", Addr: "::.0.111", Err: ErrDualStack},
			{FD: 6, Netid: "udp", Addr: "0.0.0.0.0.111", Err: errors.New("some failure")},
			{FD: 7, Err: ErrNotSocket},
		},
	}
	got := a.Missing(Transports)
	want := []Transport{{Netid: "local", Abstract: true}, {Netid: "udp"}, {Netid: "udp6"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Missing = %v, want %v (dual-mode tcp6 counts as passed, a failed udp does not)", got, want)
	}
	var none *Activation
	if got := none.Missing(Transports); len(got) != len(Transports) {
		t.Errorf("nil Activation: Missing = %v, want all", got)
	}
	if !strings.Contains(a.Refused[0].Error(), "fd 5 (tcp6 ::.0.111)") || !errors.Is(a.Refused[0], ErrDualStack) {
		t.Errorf("Refused.Error = %q", a.Refused[0].Error())
	}
}

// The reference's exact text (rpcbind 1.2.6 src/rpcbind.c handle_ipv6_socket,
// also in `strings /sbin/rpcbind` of Debian's 1.2.6-6+b1).
func TestDualStackLog(t *testing.T) {
	if DualStackLog[0] != "systemd has passed an IPv4/IPv6 dual-mode socket." ||
		DualStackLog[1] != "Please fix your systemd config by specifying IPv4 and IPv6 sockets separately and using BindIPv6Only=ipv6-only." {
		t.Errorf("DualStackLog = %q", DualStackLog)
	}
}

func TestOutsideActivation(t *testing.T) {
	t.Setenv("LISTEN_PID", "")
	t.Setenv("LISTEN_FDS", "")
	a := TakeActivated()
	if len(a.Sockets)+len(a.Refused) != 0 {
		t.Fatalf("TakeActivated outside systemd = %+v, want empty", a)
	}
	if got := a.Missing(Transports); len(got) != len(Transports) {
		t.Errorf("Missing = %v, want every transport", got)
	}
}

// --- re-exec: real descriptors at fd 3.. with LISTEN_PID set for the child ---

const helperEnv = "RPCBIND_SYSTEMD_TEST_HELPER" // the child writes its report here

type report struct {
	Sockets    []reportSocket
	Refused    []reportRefused
	Second     int    // what a second TakeActivated found
	EnvLeft    string // LISTEN_* left in the environment
	ServeError string // first failure of the self-check
}

type reportSocket struct {
	Netid, Addr, Name string
	Abstract          bool
	FD                int
	Stream, Datagram  bool
}

type reportRefused struct {
	FD                   int
	Netid, Addr, Name    string
	DualStack, NotSocket bool
	Unsupported          bool
}

// TestHelperActivated is the child: it takes the passed sockets, proves
// each one serves, and writes a report. It does nothing in a normal run.
func TestHelperActivated(t *testing.T) {
	out := os.Getenv(helperEnv)
	if out == "" {
		t.Skip("helper for TestActivatedReExec")
	}
	a := TakeActivated()
	var r report
	for _, s := range a.Sockets {
		r.Sockets = append(r.Sockets, reportSocket{Netid: s.Netid, Addr: s.Addr, Name: s.Name, Abstract: s.Abstract,
			FD: s.FD, Stream: s.Listener != nil, Datagram: s.PacketConn != nil})
		if err := selfCheck(&s); err != nil && r.ServeError == "" {
			r.ServeError = fmt.Sprintf("%s %s: %v", s.Netid, s.Addr, err)
		}
	}
	for _, f := range a.Refused {
		r.Refused = append(r.Refused, reportRefused{FD: f.FD, Netid: f.Netid, Addr: f.Addr, Name: f.Name,
			DualStack: errors.Is(f.Err, ErrDualStack), NotSocket: errors.Is(f.Err, ErrNotSocket),
			Unsupported: errors.Is(f.Err, ErrUnsupported)})
	}
	second := TakeActivated()
	r.Second = len(second.Sockets) + len(second.Refused)
	for _, k := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
		if v, ok := os.LookupEnv(k); ok {
			r.EnvLeft += k + "=" + v + " "
		}
	}
	a.Close()
	b, _ := json.Marshal(r)
	if err := os.WriteFile(out, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// selfCheck sends one message through the socket from inside the child.
func selfCheck(s *Socket) error {
	deadline := time.Now().Add(10 * time.Second)
	if s.Listener != nil {
		addr := s.Listener.Addr()
		c, err := net.Dial(addr.Network(), addr.String())
		if err != nil {
			return err
		}
		defer c.Close()
		c.Write([]byte("x"))
		if d, ok := s.Listener.(interface{ SetDeadline(time.Time) error }); ok {
			d.SetDeadline(deadline)
		}
		sc, err := s.Listener.Accept()
		if err != nil {
			return err
		}
		defer sc.Close()
		sc.SetDeadline(deadline)
		buf := make([]byte, 1)
		_, err = sc.Read(buf)
		return err
	}
	la := s.PacketConn.LocalAddr().(*net.UDPAddr)
	c, err := net.DialUDP("udp", nil, la)
	if err != nil {
		return err
	}
	defer c.Close()
	c.Write([]byte("x"))
	s.PacketConn.SetDeadline(deadline)
	buf := make([]byte, 16)
	_, _, err = s.PacketConn.ReadFrom(buf)
	return err
}

// passed is one descriptor the parent hands to the child.
type passed struct {
	label string
	file  *os.File
	want  reportSocket  // when served
	ref   reportRefused // when refused
	serve bool
}

func inetUaddr(a net.Addr) string {
	ap := netip.MustParseAddrPort(a.String())
	return uaddr(ap.Addr(), int(ap.Port()))
}

func makePassed(t *testing.T) []passed {
	t.Helper()
	var ps []passed
	add := func(label string, f *os.File, err error, netid, addr string, abstract, stream bool) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", label, err)
		}
		t.Cleanup(func() { f.Close() })
		ps = append(ps, passed{label: label, file: f, serve: true,
			want: reportSocket{Netid: netid, Addr: addr, Abstract: abstract, Stream: stream, Datagram: !stream}})
	}
	listen := func(network, addr string) (net.Listener, *os.File, error) {
		l, err := net.Listen(network, addr)
		if err != nil {
			return nil, nil, err
		}
		t.Cleanup(func() { l.Close() })
		f, err := l.(interface{ File() (*os.File, error) }).File()
		return l, f, err
	}
	packet := func(network, addr string) (net.PacketConn, *os.File, error) {
		c, err := net.ListenPacket(network, addr)
		if err != nil {
			return nil, nil, err
		}
		t.Cleanup(func() { c.Close() })
		f, err := c.(*net.UDPConn).File()
		return c, f, err
	}

	path := filepath.Join(t.TempDir(), "rpcbind.sock")
	_, f, err := listen("unix", path)
	add("unixpath", f, err, "local", path, false, true)

	abs := fmt.Sprintf("/run/rpcbind-test-%d.sock", os.Getpid())
	_, f, err = listen("unix", "@"+abs)
	add("abstract", f, err, "local", abs, true, true)

	l, f, err := listen("tcp4", "0.0.0.0:0")
	add("tcp", f, err, "tcp", l.Addr().(*net.TCPAddr).AddrPort().String(), false, true)
	ps[len(ps)-1].want.Addr = uaddr(netip.IPv4Unspecified(), l.Addr().(*net.TCPAddr).Port)

	l, f, err = listen("tcp6", "[::1]:0") // Go sets IPV6_V6ONLY for "tcp6"
	add("tcp6", f, err, "tcp6", inetUaddr(l.Addr()), false, true)

	c, f, err := packet("udp4", "127.0.0.1:0")
	add("udp", f, err, "udp", inetUaddr(c.LocalAddr()), false, false)

	c, f, err = packet("udp6", "[::]:0")
	add("udp6", f, err, "udp6", uaddr(netip.IPv6Unspecified(), c.LocalAddr().(*net.UDPAddr).Port), false, false)

	// Refused: a dual-mode IPv6 listener ("tcp" on [::] leaves V6ONLY off),
	// a pipe, and an AF_UNIX datagram socket.
	l, f, err = listen("tcp", "[::]:0")
	if err != nil {
		t.Fatal(err)
	}
	if v, err := unix.GetsockoptInt(int(f.Fd()), unix.IPPROTO_IPV6, unix.IPV6_V6ONLY); err != nil || v != 0 {
		t.Fatalf("dual-mode fixture: IPV6_V6ONLY = %d, %v", v, err)
	}
	t.Cleanup(func() { f.Close() })
	ps = append(ps, passed{label: "dualtcp6", file: f,
		ref: reportRefused{Netid: "tcp6", Addr: uaddr(netip.IPv6Unspecified(), l.Addr().(*net.TCPAddr).Port), DualStack: true}})

	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pr.Close(); pw.Close() })
	ps = append(ps, passed{label: "pipe", file: pr, ref: reportRefused{NotSocket: true}})

	ug, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(t.TempDir(), "dgram"), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ug.Close() })
	f, err = ug.File()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	ps = append(ps, passed{label: "unixgram", file: f, ref: reportRefused{Addr: ug.LocalAddr().String(), Unsupported: true}})
	return ps
}

func runHelper(t *testing.T, files []*os.File, env []string, viaShell bool) report {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "report.json")
	args := []string{"-test.run=^TestHelperActivated$", "-test.v"}
	var cmd *exec.Cmd
	if viaShell {
		// exec keeps the shell's pid, so $$ is the helper's pid: the same
		// LISTEN_PID check systemd's children pass.
		cmd = exec.Command("/bin/sh", append([]string{"-c", `LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@"`, exe}, args...)...)
	} else {
		cmd = exec.Command(exe, args...)
	}
	cmd.Env = append(os.Environ(), helperEnv+"="+out)
	cmd.Env = append(cmd.Env, env...)
	cmd.ExtraFiles = files
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("helper: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var r report
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestActivatedReExec(t *testing.T) {
	if os.Getenv(helperEnv) != "" {
		t.Skip("in helper")
	}
	ps := makePassed(t)
	rng := rand.New(rand.NewPCG(1, 2)) // fixed: failures reproduce
	for run := 0; run < 4; run++ {
		order := rng.Perm(len(ps))
		withNames := run%2 == 0
		t.Run(fmt.Sprintf("order%d/names=%v", run, withNames), func(t *testing.T) {
			var files []*os.File
			var names []string
			var labels []string
			for _, i := range order {
				files = append(files, ps[i].file)
				names = append(names, "n-"+ps[i].label)
				labels = append(labels, ps[i].label)
			}
			t.Logf("fd 3.. = %v", labels)
			env := []string{"LISTEN_FDS=" + strconv.Itoa(len(files)), "LISTEN_FDNAMES="}
			if withNames {
				env[1] = "LISTEN_FDNAMES=" + strings.Join(names, ":")
			}
			r := runHelper(t, files, env, true)
			if r.ServeError != "" {
				t.Errorf("self-check: %s", r.ServeError)
			}
			if r.Second != 0 || r.EnvLeft != "" {
				t.Errorf("second TakeActivated found %d, env left %q; want 0 and none", r.Second, r.EnvLeft)
			}
			var wantS []reportSocket
			var wantR []reportRefused
			for pos, i := range order {
				p := ps[i]
				name := ""
				if withNames {
					name = names[pos]
				}
				if p.serve {
					w := p.want
					w.FD, w.Name = 3+pos, name
					wantS = append(wantS, w)
				} else {
					w := p.ref
					w.FD, w.Name = 3+pos, name
					wantR = append(wantR, w)
				}
			}
			if got, want := fmt.Sprintf("%+v", r.Sockets), fmt.Sprintf("%+v", wantS); got != want {
				t.Errorf("sockets:\n got %s\nwant %s", got, want)
			}
			if got, want := fmt.Sprintf("%+v", r.Refused), fmt.Sprintf("%+v", wantR); got != want {
				t.Errorf("refused:\n got %s\nwant %s", got, want)
			}
		})
	}
}

// Descriptors meant for another process (LISTEN_PID not ours) are not taken,
// and the variables are still cleared.
func TestActivatedOtherPID(t *testing.T) {
	if os.Getenv(helperEnv) != "" {
		t.Skip("in helper")
	}
	ps := makePassed(t)
	r := runHelper(t, []*os.File{ps[0].file}, []string{"LISTEN_PID=1", "LISTEN_FDS=1"}, false)
	if len(r.Sockets)+len(r.Refused) != 0 || r.EnvLeft != "" {
		t.Errorf("LISTEN_PID=1: got %+v", r)
	}
}
