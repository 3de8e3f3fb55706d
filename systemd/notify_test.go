package systemd

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"
)

// fakeManager is a NOTIFY_SOCKET: a unixgram socket in t.TempDir().
func fakeManager(t *testing.T) *net.UnixConn {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	t.Setenv("WATCHDOG_USEC", "")
	t.Setenv("WATCHDOG_PID", "")
	return c
}

// next reads one datagram; the deadline only bounds a broken test.
func next(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, 4096)
	n, err := c.Read(b)
	if err != nil {
		t.Fatalf("read notification: %v", err)
	}
	return string(b[:n])
}

func TestNotifierMessages(t *testing.T) {
	c := fakeManager(t)
	n := NewNotifier()
	if !n.Enabled() {
		t.Fatal("Enabled = false with NOTIFY_SOCKET set")
	}
	tests := []struct {
		name string
		send func() (bool, error)
		want string
	}{
		{"ready", func() (bool, error) { return n.Ready("") }, "READY=1"},
		{"ready+status", func() (bool, error) { return n.Ready("serving 6 transports") }, "READY=1\nSTATUS=serving 6 transports"},
		{"status", func() (bool, error) { return n.Status("degraded: /run/rpcbind read-only") }, "STATUS=degraded: /run/rpcbind read-only"},
		{"status newline", func() (bool, error) { return n.Status("a\nREADY=1") }, "STATUS=a READY=1"},
		{"stopping", n.Stopping, "STOPPING=1"},
	}
	for _, tt := range tests {
		sent, err := tt.send()
		if !sent || err != nil {
			t.Errorf("%s: (%v, %v), want (true, nil)", tt.name, sent, err)
			continue
		}
		if got := next(t, c); got != tt.want {
			t.Errorf("%s: sent %q, want %q", tt.name, got, tt.want)
		}
	}
	// NOTIFY_SOCKET stays set: a daemon notifies more than once.
	if !n.Enabled() {
		t.Error("NOTIFY_SOCKET cleared after sending")
	}
}

func TestNotifierOutsideSystemd(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	t.Setenv("WATCHDOG_USEC", "")
	n := NewNotifier()
	if n.Enabled() {
		t.Error("Enabled with NOTIFY_SOCKET unset")
	}
	for name, f := range map[string]func() (bool, error){
		"ready": func() (bool, error) { return n.Ready("x") }, "status": func() (bool, error) { return n.Status("x") },
		"stopping": n.Stopping,
	} {
		if sent, err := f(); sent || err != nil {
			t.Errorf("%s outside systemd = (%v, %v), want (false, nil)", name, sent, err)
		}
	}
	if d := n.WatchdogInterval(); d != 0 {
		t.Errorf("WatchdogInterval = %v, want 0", d)
	}
	if err := n.Watchdog(context.Background(), nil); err != nil {
		t.Errorf("Watchdog without WATCHDOG_USEC = %v, want immediate nil", err)
	}
}

func TestNotifierSendError(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "nobody-listens"))
	sent, err := NewNotifier().Ready("")
	if sent || err == nil {
		t.Fatalf("Ready to a dead socket = (%v, %v), want (false, error)", sent, err)
	}
	if got := err.Error(); got[:len("systemd: notify READY: ")] != "systemd: notify READY: " {
		t.Errorf("error = %q", got)
	}
}

func TestWatchdog(t *testing.T) {
	c := fakeManager(t)
	t.Setenv("WATCHDOG_USEC", "2000") // pings every 1ms
	n := NewNotifier()
	if d := n.WatchdogInterval(); d != time.Millisecond {
		t.Fatalf("WatchdogInterval = %v, want half of WATCHDOG_USEC", d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Watchdog(ctx, nil) }()
	for i := 0; i < 3; i++ {
		if got := next(t, c); got != "WATCHDOG=1" {
			t.Fatalf("ping %d = %q, want WATCHDOG=1", i, got)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Watchdog = %v after cancel, want nil", err)
	}
}

func TestWatchdogOtherPID(t *testing.T) {
	fakeManager(t)
	t.Setenv("WATCHDOG_USEC", "2000")
	t.Setenv("WATCHDOG_PID", "1")
	if d := NewNotifier().WatchdogInterval(); d != 0 {
		t.Errorf("WatchdogInterval for another pid = %v, want 0", d)
	}
}

// An unhealthy server stops pinging: systemd then restarts it.
func TestWatchdogUnhealthy(t *testing.T) {
	c := fakeManager(t)
	t.Setenv("WATCHDOG_USEC", "2000")
	n := NewNotifier()
	ctx, cancel := context.WithCancel(context.Background())
	checks := make(chan struct{}, 1)
	done := make(chan error, 1)
	healthy := func() bool {
		select {
		case checks <- struct{}{}:
		default:
		}
		return false
	}
	go func() { done <- n.Watchdog(ctx, healthy) }()
	for i := 0; i < 3; i++ {
		<-checks
	}
	cancel()
	<-done
	n.Status("after") // the next datagram must be this, not a ping
	if got := next(t, c); got != "STATUS=after" {
		t.Errorf("unhealthy watchdog sent %q", got)
	}
}
