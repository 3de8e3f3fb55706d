package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openrpcbind/rpcbind/internal/nstest"
	"github.com/openrpcbind/rpcbind/internal/rpc"
	"github.com/openrpcbind/rpcbind/internal/testenv"
	"github.com/openrpcbind/rpcbind/pmap"
	"golang.org/x/sys/unix"
)

// notifyWait bounds each wait for a notification; only a broken daemon
// hits it (no timed assertion: the order is what is checked).
const notifyWait = 20 * time.Second

// notification is one sd_notify datagram and, for READY=1, what the
// namespace looked like the moment it arrived.
type notification struct {
	msg        string
	readyCheck error // READY=1: nil when every socket was bound and an RPC was answered
}

// fakeManager listens on a NOTIFY_SOCKET for the daemon started next (the
// variable is inherited) and delivers each datagram in order.
func fakeManager(t *testing.T) <-chan notification {
	t.Helper()
	path := filepath.Join(nstest.RunDir, "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	// As systemd's /run/systemd/notify: the daemon sends after dropping to _rpc.
	if err := os.Chmod(path, 0o777); err != nil {
		t.Fatal(err)
	}
	t.Setenv("NOTIFY_SOCKET", path)
	ch := make(chan notification, 1024)
	go func() {
		defer close(ch)
		b := make([]byte, 4096)
		for {
			n, err := c.Read(b)
			if err != nil {
				return
			}
			nt := notification{msg: string(b[:n])}
			if strings.HasPrefix(nt.msg, "READY=1") {
				nt.readyCheck = serving()
			}
			ch <- nt
		}
	}()
	return ch
}

// serving checks, at READY=1, that every socket of the default set
// listens and that a call is answered over every transport (UDP included:
// READY=1 waits for the server's UDP readers too).
func serving() error {
	want := map[string]bool{
		"tcp 0.0.0.0:111": false, "tcp6 [::]:111": false, "udp 0.0.0.0:111": false, "udp6 [::]:111": false,
		"unix /run/rpcbind.sock": false, "unix @/run/rpcbind.sock": false,
	}
	for _, s := range listening() {
		if _, ok := want[s]; ok {
			want[s] = true
		}
	}
	for s, ok := range want {
		if !ok {
			return fmt.Errorf("%s not bound at READY=1", s)
		}
	}
	for _, to := range [][2]string{
		{"tcp", "127.0.0.1:111"}, {"unix", nstest.SocketPath},
		{"udp", "127.0.0.1:111"}, {"udp6", "[::1]:111"}, {"tcp6", "[::1]:111"},
	} {
		c, err := rpc.Dial(to[0], to[1], rpc.ClientOptions{Timeout: 5 * time.Second})
		if err != nil {
			return err
		}
		_, err = c.Call(context.Background(), pmap.Prog, 4, uint32(pmap.RPCBProcNull), nil, nil)
		c.Close()
		if err != nil {
			return fmt.Errorf("NULL over %s at READY=1: %v", to[0], err)
		}
	}
	return nil
}

// listening lists "tcp 0.0.0.0:111"-style names of the port-111 listeners
// and unconnected UDP sockets, and "unix PATH" of listening unix sockets.
func listening() []string {
	var out []string
	for _, p := range []struct{ file, name, state, any string }{
		{"/proc/net/tcp", "tcp", "0A", "0.0.0.0"}, {"/proc/net/udp", "udp", "07", "0.0.0.0"},
		{"/proc/net/tcp6", "tcp6", "0A", "[::]"}, {"/proc/net/udp6", "udp6", "07", "[::]"},
	} {
		b, _ := os.ReadFile(p.file)
		for _, l := range strings.Split(string(b), "\n") {
			f := strings.Fields(l)
			// Only wildcard sockets are expected: "00000000:006F" or 32 zeros.
			if len(f) > 3 && f[3] == p.state && strings.TrimLeft(f[1], "0") == ":006F" {
				out = append(out, p.name+" "+p.any+":111")
			}
		}
	}
	b, _ := os.ReadFile("/proc/net/unix")
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 8 && f[3] == "00010000" {
			out = append(out, "unix "+f[7])
		}
	}
	return out
}

func next(t *testing.T, ch <-chan notification, skipWatchdog bool) notification {
	t.Helper()
	for {
		select {
		case n, ok := <-ch:
			if !ok {
				t.Fatal("notify socket closed")
			}
			if skipWatchdog && n.msg == "WATCHDOG=1" {
				continue
			}
			return n
		case <-time.After(notifyWait):
			t.Fatalf("no notification within %v", notifyWait)
		}
	}
}

// TestNotifyLifecycle: READY=1 (with STATUS=) arrives only once every
// socket listens and answers; then the watchdog pings (WATCHDOG_USEC set);
// SIGTERM gives STOPPING=1 and exit 0.
func TestNotifyLifecycle(t *testing.T) {
	bin := binary(t)
	if !nstest.Enter(t) {
		return
	}
	ch := fakeManager(t)
	t.Setenv("WATCHDOG_USEC", "200000") // pings every 100 ms
	t.Setenv("WATCHDOG_PID", "")
	d := nstest.Start(t, bin, "-f", "-w")

	n := next(t, ch, false)
	if n.msg != "READY=1\nSTATUS=serving 6 transports, 12 registrations" {
		t.Fatalf("first notification %q, want READY=1 with STATUS=", n.msg)
	}
	if n.readyCheck != nil {
		t.Errorf("READY=1 too early: %v", n.readyCheck)
	}
	for i := 0; i < 3; i++ {
		if n := next(t, ch, false); n.msg != "WATCHDOG=1" {
			t.Errorf("after READY=1: %q, want WATCHDOG=1", n.msg)
		}
	}
	if err := d.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if n := next(t, ch, true); n.msg != "STOPPING=1" {
		t.Errorf("after SIGTERM: %q, want STOPPING=1", n.msg)
	}
	if err := d.Wait(); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
	if out, n := nstest.WithoutStartLines(d.Output()); out != "" || n != 1 {
		t.Errorf("output: %q besides %d start lines (want 1)", out, n)
	}
}

// TestNotifyDegraded: a full /run/rpcbind keeps registrations working from
// memory, turns STATUS= degraded, logs once (LOG_ERR, rate-limited), and
// heals by itself once space is back (the periodic retry).
func TestNotifyDegraded(t *testing.T) {
	bin := binary(t)
	if !nstest.Enter(t) {
		return
	}
	// A tiny tmpfs for the state files, owned by _rpc as tmpfiles makes it.
	if err := unix.Mount("tmpfs", nstest.RPCBindDir, "tmpfs", 0, "size=64k,mode=0755"); err != nil {
		t.Fatal(err)
	}
	uid, gid := lookupRPC(t)
	if err := os.Chown(nstest.RPCBindDir, uid, gid); err != nil {
		t.Fatal(err)
	}
	ch := fakeManager(t)
	t.Setenv("WATCHDOG_USEC", "")
	d := nstest.Start(t, bin, "-f", "-w")
	if n := next(t, ch, true); n.msg != "READY=1\nSTATUS=serving 6 transports, 12 registrations" {
		t.Fatalf("first notification %q", n.msg)
	}

	// Fill the file system (root ignores no limit on tmpfs), then register
	// until a journal append finds no room.
	filler := filepath.Join(nstest.RPCBindDir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	for buf := make([]byte, 1024); ; {
		if _, err := f.Write(buf); err != nil {
			break
		}
	}
	f.Close()
	c, err := rpc.Dial("unix", nstest.SocketPath, rpc.ClientOptions{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	set := func(prog uint32) {
		t.Helper()
		args := pmap.AppendRPCB(nil, prog, 1, "tcp", "0.0.0.0.8.1", "")
		res, err := c.Call(context.Background(), pmap.Prog, 3, uint32(pmap.RPCBProcSet), nil, args)
		if err != nil || len(res) != 4 || res[3] != 1 {
			t.Fatalf("SET %d: %x, %v (registrations must go on from memory)", prog, res, err)
		}
	}
	var degraded string
	sets := 0
	for prog := uint32(400000); prog < 401000 && degraded == ""; prog++ {
		set(prog)
		sets++
		select {
		case n := <-ch:
			if !strings.HasPrefix(n.msg, "STATUS=degraded: ") {
				t.Fatalf("notification %q, want a degraded STATUS=", n.msg)
			}
			degraded = n.msg
		default:
		}
	}
	if degraded == "" {
		// The last append may have failed just now: its STATUS= is on its way.
		degraded = next(t, ch, true).msg
	}
	if !strings.HasPrefix(degraded, "STATUS=degraded: cannot save the registrations in /run/rpcbind (no space left on device), serving them from memory; serving 6 transports, ") {
		t.Errorf("degraded STATUS: %q", degraded)
	}
	for i := 0; i < 5; i++ { // more failures: no more LOG_ERR within the minute
		set(401000 + uint32(i))
		sets++
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	// The retry timer rewrites the state files without a new change.
	want := fmt.Sprintf("STATUS=serving 6 transports, %d registrations", 12+sets)
	// Degraded updates of the failed SETs may still be queued (one per
	// registration count); the healthy one must follow within the timer's
	// period, not within a fixed number of updates.
	for deadline := time.Now().Add(30 * time.Second); ; {
		if time.Now().After(deadline) {
			t.Fatal("still degraded 30 s after space was freed")
		}
		n := next(t, ch, true)
		if n.msg == want {
			break
		}
		if !strings.HasPrefix(n.msg, "STATUS=degraded: ") {
			t.Fatalf("while healing: %q, want %q", n.msg, want)
		}
	}
	if err := d.Stop(syscall.SIGTERM); err != nil {
		t.Errorf("SIGTERM: %v", err)
	}
	out := d.Output()
	if got := strings.Count(out, "cannot save the registrations:"); got != 1 {
		t.Errorf("%d persistence errors logged, want 1 (rate-limited); output:\n%s", got, out)
	}
	if !strings.Contains(out, "registrations saved again") {
		t.Errorf("no recovery logged; output:\n%s", out)
	}
	// Everything acknowledged was saved once the space was back.
	b, err := os.ReadFile(filepath.Join(nstest.RPCBindDir, "rpcbind.xdr"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "0.0.0.0.8.1") || len(b) < sets*40 {
		t.Errorf("rpcbind.xdr has %d bytes for %d registrations", len(b), sets)
	}
}

func lookupRPC(t *testing.T) (int, int) {
	t.Helper()
	u, err := user.Lookup("_rpc")
	if err != nil {
		testenv.Missing(t, "user _rpc (package rpcbind creates it; `make run` too): %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return uid, gid
}
