package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/openrpcbind/rpcbind/internal/access"
	"github.com/openrpcbind/rpcbind/internal/testenv"
)

// ioTimeout only guards against a hung test; no assertion depends on it.
const ioTimeout = 10 * time.Second

// echo answers "netid|addr|dst|uid|req"; requests starting with "silent"
// get no answer and those starting with "panic" panic.
type echo struct{ calls atomic.Int64 }

func (e *echo) ServeRPC(out, req []byte, c *access.Caller) ([]byte, bool) {
	e.calls.Add(1)
	switch {
	case bytes.HasPrefix(req, []byte("silent")):
		return out, false
	case bytes.HasPrefix(req, []byte("panic")):
		panic("test panic")
	}
	out = fmt.Appendf(out, "%s|%s|%s|%d|", c.Netid, c.Addr, c.Dst, c.UID)
	return append(out, req...), true
}

func quietLog() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func newServer(t testing.TB, opt Options) (*Server, *echo) {
	t.Helper()
	h := &echo{}
	opt.Log = quietLog()
	s := New(h, opt)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return s, h
}

func startUDP(t testing.TB, s *Server, netid, addr string) netip.AddrPort {
	t.Helper()
	sock, err := listenUDP(netid, netip.MustParseAddrPort(addr))
	if err != nil {
		testenv.Missing(t, "a %s socket on %s (%v)", netid, addr, err)
	}
	s.Start(sock)
	return sock.Packet.LocalAddr().(*net.UDPAddr).AddrPort()
}

func udpExchange(t testing.TB, c *net.UDPConn, to netip.AddrPort, req []byte) (string, netip.AddrPort) {
	t.Helper()
	if _, err := c.WriteToUDPAddrPort(req, to); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(ioTimeout))
	buf := make([]byte, 65536)
	n, from, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n]), from
}

// The reply leaves from the address the request was sent to, although the
// socket is bound to the wildcard (spec §4.7): 127.0.0.2 is on lo without
// configuration on Linux.
func TestUDPReplyFromRequestDestination(t *testing.T) {
	s, _ := newServer(t, Options{UDPReaders: 2})
	port := startUDP(t, s, "udp", "0.0.0.0:0").Port()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	me := c.LocalAddr().(*net.UDPAddr).AddrPort()
	for _, dst := range []string{"127.0.0.1", "127.0.0.2", "127.1.2.3"} {
		to := netip.AddrPortFrom(netip.MustParseAddr(dst), port)
		got, from := udpExchange(t, c, to, []byte("hello"))
		if from != to {
			t.Errorf("request to %v answered from %v", to, from)
		}
		want := fmt.Sprintf("udp|%s|%s|-1|hello", me, to)
		if got != want {
			t.Errorf("caller seen by the handler:\n got %q\nwant %q", got, want)
		}
	}
}

func TestUDP6ReplyFromRequestDestination(t *testing.T) {
	s, _ := newServer(t, Options{})
	port := startUDP(t, s, "udp6", "[::]:0").Port()
	c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		testenv.Missing(t, "IPv6 loopback ::1 (%v)", err)
	}
	defer c.Close()
	me := c.LocalAddr().(*net.UDPAddr).AddrPort()
	to := netip.AddrPortFrom(netip.IPv6Loopback(), port)
	got, from := udpExchange(t, c, to, []byte("x"))
	if from != to {
		t.Errorf("answered from %v, want %v", from, to)
	}
	if want := fmt.Sprintf("udp6|%s|%s|-1|x", me, to); got != want {
		t.Errorf("got %q want %q", got, want)
	}
}

// Silence, panics and truncation: each is followed by a normal request, and
// the first reply read must be that request's (no reply was sent before).
func TestUDPSilencePanicTruncation(t *testing.T) {
	s, h := newServer(t, Options{UDPReaders: 1})
	to := startUDP(t, s, "udp", "127.0.0.1:0")
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	if _, err := c.WriteToUDPAddrPort([]byte("silent please"), to); err != nil {
		t.Fatal(err)
	}
	if got, _ := udpExchange(t, c, to, []byte("after-silent")); !strings.HasSuffix(got, "|after-silent") {
		t.Errorf("after a silent request got %q", got)
	}
	if _, err := c.WriteToUDPAddrPort([]byte("panic now"), to); err != nil {
		t.Fatal(err)
	}
	if got, _ := udpExchange(t, c, to, []byte("after-panic")); !strings.HasSuffix(got, "|after-panic") {
		t.Errorf("after a panic got %q", got)
	}
	if n := s.Stat.Panics.Load(); n != 1 {
		t.Errorf("panics = %d, want 1", n)
	}
	if n := s.Stat.UDPSilent.Load(); n != 2 { // the silent request and the panic
		t.Errorf("silent = %d, want 2", n)
	}

	// 12000 bytes: the handler sees the first UDPBufSize, as the reference
	// (a 12 KB NULL call is answered).
	big := bytes.Repeat([]byte("b"), 12000)
	got, _ := udpExchange(t, c, to, big)
	if i := strings.LastIndexByte(got, '|'); len(got)-i-1 != UDPBufSize {
		t.Errorf("handler saw %d bytes of a 12000-byte datagram, want %d", len(got)-i-1, UDPBufSize)
	}
	if n := s.Stat.UDPTruncated.Load(); n != 1 {
		t.Errorf("truncated = %d, want 1", n)
	}
	if n := h.calls.Load(); n != 5 {
		t.Errorf("handler calls = %d, want 5", n)
	}
}

func startStream(t testing.TB, s *Server, netid, addr string) string {
	t.Helper()
	var sock *Socket
	var err error
	if netid == "local" {
		sock, err = listenUnix(addr)
	} else {
		sock, err = listenTCP(netid, netip.MustParseAddrPort(addr))
	}
	if err != nil {
		testenv.Missing(t, "a %s socket on %s (%v)", netid, addr, err)
	}
	s.Start(sock)
	return sock.Listener.Addr().String()
}

// record frames msg as one last fragment.
func record(msg string) []byte {
	b := binary.BigEndian.AppendUint32(nil, 1<<31|uint32(len(msg)))
	return append(b, msg...)
}

func readRecord(t testing.TB, c net.Conn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(ioTimeout))
	var mark [4]byte
	if _, err := io.ReadFull(c, mark[:]); err != nil {
		t.Fatalf("read mark: %v", err)
	}
	m := binary.BigEndian.Uint32(mark[:])
	if m>>31 != 1 {
		t.Fatalf("reply not sent as one last fragment: mark %08x", m)
	}
	b := make([]byte, m&(1<<31-1))
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("read record: %v", err)
	}
	return string(b)
}

// expectClosed reads until the server closes the connection.
func expectClosed(t testing.TB, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(ioTimeout))
	n, err := io.Copy(io.Discard, c)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("connection not closed by the server: %v", err)
	}
	if n != 0 {
		t.Errorf("%d unexpected bytes before close", n)
	}
}

func dial(t testing.TB, network, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout(network, addr, ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestTCPPipelinedAndCaller(t *testing.T) {
	eachEngine(t, func(t *testing.T, engine string) {
		s, _ := newServer(t, Options{StreamEngine: engine})
		addr := startStream(t, s, "tcp", "127.0.0.1:0")
		c := dial(t, "tcp", addr)
		var all []byte
		for _, m := range []string{"one", "silent", "two", "three"} {
			all = append(all, record(m)...)
		}
		if _, err := c.Write(all); err != nil { // one write: the requests are pipelined
			t.Fatal(err)
		}
		prefix := fmt.Sprintf("tcp|%s|%s|-1|", c.LocalAddr(), c.RemoteAddr())
		for _, m := range []string{"one", "two", "three"} {
			if got := readRecord(t, c); got != prefix+m {
				t.Errorf("got %q, want %q", got, prefix+m)
			}
		}
	})
}

// RFC 5531 §11 records of several fragments are reassembled (the reference
// answers GARBAGE_ARGS or resets: spec §7 "should improve").
func TestStreamMultiFragment(t *testing.T) {
	eachEngine(t, func(t *testing.T, engine string) {
		s, _ := newServer(t, Options{StreamEngine: engine})
		addr := startStream(t, s, "tcp", "127.0.0.1:0")
		c := dial(t, "tcp", addr)
		var b []byte
		b = binary.BigEndian.AppendUint32(b, 3) // not last, 3 bytes
		b = append(b, "abc"...)
		b = binary.BigEndian.AppendUint32(b, 2)
		b = append(b, "de"...)
		b = binary.BigEndian.AppendUint32(b, 1<<31|1) // last, 1 byte
		b = append(b, "f"...)
		c.Write(b)
		if got := readRecord(t, c); !strings.HasSuffix(got, "|-1|abcdef") {
			t.Errorf("got %q", got)
		}
	})
}

func TestStreamRecordTooLargeCloses(t *testing.T) {
	eachEngine(t, func(t *testing.T, engine string) {
		s, _ := newServer(t, Options{StreamEngine: engine})
		addr := startStream(t, s, "tcp", "127.0.0.1:0")

		c := dial(t, "tcp", addr)
		c.Write(record(strings.Repeat("x", DefaultMaxRecord))) // exactly the cap: served
		if got := readRecord(t, c); len(got) < DefaultMaxRecord {
			t.Fatalf("record of exactly %d bytes not served", DefaultMaxRecord)
		}
		// Two fragments whose running total passes the cap.
		var b []byte
		b = binary.BigEndian.AppendUint32(b, 5000)
		b = append(b, make([]byte, 5000)...)
		b = binary.BigEndian.AppendUint32(b, 1<<31|4001)
		c.Write(b)
		expectClosed(t, c)
		if n := s.Stat.TooLarge.Load(); n != 1 {
			t.Errorf("too large = %d, want 1", n)
		}
	})
}

func TestStreamPanicClosesConnection(t *testing.T) {
	eachEngine(t, func(t *testing.T, engine string) {
		s, _ := newServer(t, Options{StreamEngine: engine})
		addr := startStream(t, s, "tcp", "127.0.0.1:0")
		c := dial(t, "tcp", addr)
		c.Write(record("panic"))
		expectClosed(t, c)
		c2 := dial(t, "tcp", addr)
		c2.Write(record("still"))
		if got := readRecord(t, c2); !strings.HasSuffix(got, "|still") {
			t.Errorf("got %q", got)
		}
		if n := s.Stat.Panics.Load(); n != 1 {
			t.Errorf("panics = %d", n)
		}
	})
}

func TestStreamIdleTimeout(t *testing.T) {
	eachEngine(t, func(t *testing.T, engine string) {
		s, _ := newServer(t, Options{StreamEngine: engine, IdleTimeout: 20 * time.Millisecond})
		addr := startStream(t, s, "tcp", "127.0.0.1:0")
		c := dial(t, "tcp", addr)
		c.Write(record("a"))
		readRecord(t, c)
		expectClosed(t, c) // nothing more sent: the server hangs up
	})
}

// A record that starts but never ends is cut after RecordTimeout, although
// the idle timeout is long (slow-loris).
func TestStreamPartialRecordTimeout(t *testing.T) {
	eachEngine(t, func(t *testing.T, engine string) {
		s, _ := newServer(t, Options{StreamEngine: engine, RecordTimeout: 20 * time.Millisecond})
		addr := startStream(t, s, "tcp", "127.0.0.1:0")
		c := dial(t, "tcp", addr)
		c.Write([]byte{0x80, 0, 0, 10, 'a'})
		expectClosed(t, c)
	})
}

// At MaxConns the least recently active connection makes room.
func TestStreamConnCapEvictsLeastActive(t *testing.T) {
	eachEngine(t, func(t *testing.T, engine string) {
		const max = 5
		s, _ := newServer(t, Options{StreamEngine: engine, MaxConns: max})
		addr := startStream(t, s, "tcp", "127.0.0.1:0")
		var cs []net.Conn
		for i := range max {
			c := dial(t, "tcp", addr)
			c.Write(record(fmt.Sprint(i)))
			readRecord(t, c) // served, so registered, in order of activity
			cs = append(cs, c)
		}
		extra := dial(t, "tcp", addr)
		extra.Write(record("extra"))
		readRecord(t, extra)
		expectClosed(t, cs[0])
		for i, c := range cs[1:] {
			c.Write(record("again"))
			if got := readRecord(t, c); !strings.HasSuffix(got, "|again") {
				t.Errorf("conn %d: %q", i+1, got)
			}
		}
		if n := s.Conns(); n != max {
			t.Errorf("open connections = %d, want %d", n, max)
		}
	})
}

// At 4/5 of MaxConns, connections idle longer than ReapIdle are closed,
// only those of a source over its share: 127.0.0.1 holds 3 of MaxConns 5
// with two sources (fair share 2, local share max(2, MaxConnsPerUID 1)),
// 127.0.0.2 holds 1 and keeps it.
func TestStreamReapIdleUnderPressure(t *testing.T) {
	eachEngine(t, func(t *testing.T, engine string) {
		s, _ := newServer(t, Options{StreamEngine: engine, MaxConns: 5, ReapIdle: time.Nanosecond, MaxConnsPerUID: 1})
		addr := startStream(t, s, "tcp", "0.0.0.0:0")
		var cs []net.Conn
		for i := range 3 {
			c := dialFrom(t, "127.0.0.1", addr)
			c.Write(record(fmt.Sprint(i)))
			readRecord(t, c)
			cs = append(cs, c)
		}
		other := dialFrom(t, "127.0.0.2", addr)
		other.Write(record("other"))
		readRecord(t, other)
		dialFrom(t, "127.0.0.2", addr).Write(record("new")) // the 5th: the 3 idle ones of 127.0.0.1 go
		for _, c := range cs {
			expectClosed(t, c)
		}
		other.Write(record("still"))
		if got := readRecord(t, other); !strings.HasSuffix(got, "|still") {
			t.Errorf("127.0.0.2's connection after the sweep: %q", got)
		}
		if n, share := s.Stat.Reaped.Load(), s.Stat.ReapedShare.Load(); n != 3 || share != 3 {
			t.Errorf("reaped = %d (over share %d), want 3 (3)", n, share)
		}
	})
}

func TestUnixPeerCredRoot(t *testing.T) {
	eachEngine(t, func(t *testing.T, engine string) {
		s, _ := newServer(t, Options{StreamEngine: engine})
		path := filepath.Join(t.TempDir(), "s.sock")
		startStream(t, s, "local", path)
		c := dial(t, "unix", path)
		c.Write(record("hi"))
		want := fmt.Sprintf("local|%s|%s|%d|hi", netip.AddrPort{}, netip.AddrPort{}, os.Getuid())
		if got := readRecord(t, c); got != want {
			t.Errorf("got %q want %q", got, want)
		}
	})
}

const envPeerClient = "SERVER_TEST_PEERCRED_CLIENT"

func TestMain(m *testing.M) {
	if spec := os.Getenv(envHoldClient); spec != "" {
		os.Exit(holdClient(spec))
	}
	if path := os.Getenv(envPeerClient); path != "" {
		c, err := net.Dial("unix", path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		c.Write(record("who"))
		var mark [4]byte
		io.ReadFull(c, mark[:])
		b := make([]byte, binary.BigEndian.Uint32(mark[:])&(1<<31-1))
		io.ReadFull(c, b)
		os.Stdout.Write(b)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// A client running as uid 65534 is seen with that uid (SO_PEERCRED).
func TestUnixPeerCredOtherUser(t *testing.T) {
	eachEngine(t, func(t *testing.T, engine string) {
		testenv.Root(t, "a client running as another uid")
		dir := t.TempDir()
		os.Chmod(dir, 0o755)
		os.Chmod(filepath.Dir(dir), 0o755)
		self, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		// A copy of the test binary that uid 65534 can execute.
		bin := filepath.Join(dir, "client")
		data, err := os.ReadFile(self)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(bin, data, 0o755); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "s.sock")
		s, _ := newServer(t, Options{StreamEngine: engine})
		startStream(t, s, "local", path)

		cmd := exec.Command(bin)
		cmd.Env = append(os.Environ(), envPeerClient+"="+path)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("client: %v %s", err, out)
		}
		if want := fmt.Sprintf("local|%s|%s|65534|who", netip.AddrPort{}, netip.AddrPort{}); string(out) != want {
			t.Errorf("got %q want %q", out, want)
		}
	})
}

// Shutdown unblocks idle readers (UDP and streams) and returns once every
// goroutine has ended.
func TestShutdown(t *testing.T) {
	eachEngine(t, func(t *testing.T, engine string) {
		h := &echo{}
		s := New(h, Options{StreamEngine: engine, Log: quietLog()})
		to := startUDP(t, s, "udp", "127.0.0.1:0")
		addr := startStream(t, s, "tcp", "127.0.0.1:0")
		c := dial(t, "tcp", addr)
		c.Write(record("a"))
		readRecord(t, c)
		u, _ := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		defer u.Close()
		udpExchange(t, u, to, []byte("x"))

		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		expectClosed(t, c)
		if n := s.Conns(); n != 0 {
			t.Errorf("%d connections left", n)
		}
		if _, err := net.DialTimeout("tcp", addr, ioTimeout); err == nil {
			t.Error("listener still accepting after Shutdown")
		}
	})
}
