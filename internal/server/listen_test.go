package server

import (
	"github.com/openrpcbind/rpcbind/internal/testenv"

	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func closeAll(t *testing.T, socks []*Socket) {
	t.Cleanup(func() {
		for _, s := range socks {
			s.Close()
		}
	})
}

func netids(socks []*Socket) []string {
	var n []string
	for _, s := range socks {
		id := s.Netid
		if s.Abstract {
			id = "@" + id
		}
		n = append(n, id)
	}
	return n
}

func v6only(t *testing.T, c syscall.Conn) int {
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	rc.Control(func(fd uintptr) { v, err = unix.GetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_V6ONLY) })
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestListenDefaultSet(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "rpcbind.sock")
	// A stale socket file from a previous run is replaced.
	if l, err := net.Listen("unix", path); err == nil {
		l.(*net.UnixListener).SetUnlinkOnClose(false)
		l.Close()
	}
	socks, err := Listen(ListenConfig{Port: -1, UnixSocket: path, Abstract: true, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	closeAll(t, socks)
	got := netids(socks)
	want := []string{"local", "@local", "udp", "tcp", "udp6", "tcp6"}
	if !ipv6Available() {
		want = want[:4]
	}
	if !slices.Equal(got, want) {
		t.Fatalf("netids %v, want %v", got, want)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o666 || fi.Mode().Type() != os.ModeSocket {
		t.Errorf("socket mode %v, want srw-rw-rw-", fi.Mode())
	}
	for _, s := range socks {
		switch s.Netid {
		case "local":
			if s.Addr != path {
				t.Errorf("local uaddr %q", s.Addr)
			}
		case "udp", "tcp":
			if !strings.HasPrefix(s.Addr, "0.0.0.0.") {
				t.Errorf("%s uaddr %q", s.Netid, s.Addr)
			}
		case "udp6", "tcp6":
			if !strings.HasPrefix(s.Addr, "::.") {
				t.Errorf("%s uaddr %q", s.Netid, s.Addr)
			}
			var c syscall.Conn
			if s.Packet != nil {
				c = s.Packet
			} else {
				c = s.Listener.(*net.TCPListener)
			}
			if v6only(t, c) != 1 {
				t.Errorf("%s without IPV6_V6ONLY", s.Netid)
			}
		}
	}
	// The abstract twin answers connections.
	c, err := net.Dial("unix", "@"+path)
	if err != nil {
		t.Errorf("abstract socket: %v", err)
	} else {
		c.Close()
	}
}

func TestListenRefusesNonSocketPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "file")
	os.WriteFile(path, []byte("keep me"), 0o644)
	socks, err := Listen(ListenConfig{Port: -1, UnixSocket: path, NoIPv6: true, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	closeAll(t, socks)
	if slices.Contains(netids(socks), "local") {
		t.Error("listened on a path that held a regular file")
	}
	if b, _ := os.ReadFile(path); string(b) != "keep me" {
		t.Error("regular file clobbered")
	}
}

// -h restricts UDP to the given addresses plus 127.0.0.1 and ::1, without
// duplicates (the reference aborts on the duplicate); TCP stays wildcard
// unless RestrictTCP. An address that cannot be bound is skipped.
func TestListenHosts(t *testing.T) {
	cfg := ListenConfig{Port: -1, Hosts: []string{"127.0.0.2", "127.0.0.1", "192.0.2.77"}, Log: quietLog()}
	socks, err := Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	closeAll(t, socks)
	var udp, tcp []string
	for _, s := range socks {
		a := strings.Join(strings.Split(s.Addr, ".")[:max(0, len(strings.Split(s.Addr, "."))-2)], ".")
		switch s.Netid {
		case "udp", "udp6":
			udp = append(udp, a)
		case "tcp", "tcp6":
			tcp = append(tcp, a)
		}
	}
	wantUDP := []string{"127.0.0.2", "127.0.0.1", "::1"}
	wantTCP := []string{"0.0.0.0", "::"}
	if !ipv6Available() {
		wantUDP, wantTCP = wantUDP[:2], wantTCP[:1]
	}
	if !slices.Equal(udp, wantUDP) || !slices.Equal(tcp, wantTCP) {
		t.Errorf("udp %v tcp %v, want udp %v tcp %v", udp, tcp, wantUDP, wantTCP)
	}

	cfg.RestrictTCP = true
	cfg.NoIPv6 = true
	socks, err = Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	closeAll(t, socks)
	for _, s := range socks {
		if s.Netid == "tcp" && strings.HasPrefix(s.Addr, "0.0.0.0.") {
			t.Errorf("tcp on the wildcard with RestrictTCP")
		}
	}
}

func TestFromListenerRefusesDualStack(t *testing.T) {
	if !ipv6Available() {
		testenv.Missing(t, "IPv6")
	}
	l, err := net.Listen("tcp", "[::]:0") // Go leaves "tcp" on [::] dual-stack
	if err != nil {
		testenv.Missing(t, "a dual-stack tcp socket on [::] (%v)", err)
	}
	defer l.Close()
	if _, err := FromListener(l); !errors.Is(err, ErrDualStack) {
		t.Errorf("dual-stack listener: err %v, want ErrDualStack", err)
	}
	s, err := listenTCP("tcp6", netip.MustParseAddrPort("[::1]:0"))
	if err != nil {
		testenv.Missing(t, "IPv6 loopback ::1 (%v)", err)
	}
	defer s.Close()
	got, err := FromListener(s.Listener)
	if err != nil || got.Netid != "tcp6" || !got.Activated || !strings.HasPrefix(got.Addr, "::1.") {
		t.Errorf("FromListener(tcp6 ::1) = %+v, %v", got, err)
	}
}

func TestFromPacketConn(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	s, err := FromPacketConn(pc)
	if err != nil || s.Netid != "udp" || !strings.HasPrefix(s.Addr, "127.0.0.1.") {
		t.Errorf("FromPacketConn = %+v, %v", s, err)
	}
}

func TestUaddr(t *testing.T) {
	for _, tc := range []struct {
		a    net.Addr
		want string
	}{
		{&net.UDPAddr{IP: net.IPv4zero, Port: 111}, "0.0.0.0.0.111"},
		{&net.TCPAddr{IP: net.IPv6unspecified, Port: 111}, "::.0.111"},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:127.0.0.2"), Port: 1000}, "127.0.0.2.3.232"},
		{&net.UnixAddr{Name: "/run/rpcbind.sock", Net: "unix"}, "/run/rpcbind.sock"},
	} {
		if got := uaddr(tc.a); got != tc.want {
			t.Errorf("uaddr(%v) = %q, want %q", tc.a, got, tc.want)
		}
	}
}

// Parsing control messages never reads out of bounds.
func FuzzParsePktinfo(f *testing.F) {
	f.Add(appendReplyPktinfo(nil, netip.MustParseAddr("127.0.0.2"), 1))
	f.Add(appendReplyPktinfo(nil, netip.MustParseAddr("fe80::1"), 2))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		parsePktinfo(b)
	})
}
