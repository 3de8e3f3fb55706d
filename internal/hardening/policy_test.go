package hardening

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openrpcbind/rpcbind/internal/e2e"
	"github.com/openrpcbind/rpcbind/internal/rpc"
)

// TestCheckPortLocal: with --check-port, an unprivileged user's SET of
// port 700 over the local socket (libtirpc rpcb_set) is refused (FALSE, as
// portmap's CHECK_PORT) and logged, as is one of the NFS port 2049; root's
// is accepted; port 2000 is
// anyone's. Without the option, the same SET is accepted (the reference).
// Also: a non-root user cannot unset root's entry or another user's.
func TestCheckPortLocal(t *testing.T) {
	env, ok := e2e.Enter(t)
	if !ok {
		return
	}
	d := startOurs(t, env, "--check-port")
	for _, step := range []struct{ line, want string }{
		{"@nobody tirpcclient set 300700 1 tcp 0.0.0.0.2.188", "set: false"},
		{"@nobody tirpcclient set 300701 1 udp 0.0.0.0.7.208", "set: true"},
		{"@nobody tirpcclient set 300704 1 udp 0.0.0.0.8.1", "set: false"}, // 2049, the NFS port
		{"tirpcclient set 300702 1 tcp 0.0.0.0.2.188", "set: true"},
		{"@daemon tirpcclient set 300703 1 tcp 0.0.0.0.7.209", "set: true"},
		{"@nobody tirpcclient unset 300702 1", "unset: false"}, // root's
		{"@nobody tirpcclient unset 300703 1", "unset: false"}, // daemon's
		{"@daemon tirpcclient unset 300703 1", "unset: true"},  // its own
		{"tirpcclient unset 300701 1", "unset: true"},          // root removes anyone's
	} {
		r := env.Run(t, step.line)
		if strings.TrimSpace(r.Stdout) != step.want {
			t.Errorf("%s:\n%s\nwant %q", step.line, r, step.want)
		}
	}
	d.Stop(syscall.SIGTERM)
	if !strings.Contains(d.Output(), "request from unprivileged port") {
		t.Errorf("no log line for the refused SET:\n%s", d.Output())
	}
	startOurs(t, env)
	if r := env.Run(t, "@nobody tirpcclient set 300700 1 tcp 0.0.0.0.2.188"); strings.TrimSpace(r.Stdout) != "set: true" {
		t.Errorf("without --check-port: %s", r)
	}
}

// TestPruneKilled: with --prune, the registration of a service killed
// with SIGKILL disappears within a few sweeps while a live one stays.
func TestPruneKilled(t *testing.T) {
	env, ok := e2e.Enter(t)
	if !ok {
		return
	}
	startOurs(t, env, "--prune", "--prune-interval=1")
	dead := startService(t, 300800)
	startService(t, 300801)
	c, err := rpc.Dial("udp", "127.0.0.1:111", quick)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, p := range []uint32{300800, 300801} {
		if port, err := getportOn(t, c, p); err != nil || port == 0 {
			t.Fatalf("GETPORT %d before the kill: %d %v", p, port, err)
		}
	}
	dead.Process.Kill()
	dead.Wait()
	start := time.Now()
	for {
		port, err := getportOn(t, c, 300800)
		if err != nil {
			t.Fatal(err)
		}
		if port == 0 {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatal("the killed service's registration is still there after 10 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("killed service's registration pruned %v after SIGKILL (sweep every 1 s)", time.Since(start).Round(10*time.Millisecond))
	time.Sleep(3 * time.Second) // three more sweeps
	if port, err := getportOn(t, c, 300801); err != nil || port == 0 {
		t.Errorf("the live service's registration was pruned: %d %v", port, err)
	}
}
