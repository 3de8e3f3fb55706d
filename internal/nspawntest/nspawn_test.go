package nspawntest

import (
	"github.com/openrpcbind/rpcbind/internal/testenv"

	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestSystemdE2E boots a Debian bookworm container under systemd and runs
// e2e.sh against the installed rpcbind. Opt-in: RPCBIND_NSPAWN=1.
// RPCBIND_NSPAWN_DAEMON=reference|ours (default ours),
// RPCBIND_NSPAWN_UNITS=ours|debian (default ours); RPCBIND_NSPAWN_CACHE
// and RPCBIND_NSPAWN_MIRROR override the cached tree and the mirror.
func TestSystemdE2E(t *testing.T) {
	if os.Getenv("RPCBIND_NSPAWN") != "1" {
		testenv.Missing(t, "the opt-in RPCBIND_NSPAWN=1 (boots a Debian container: root, systemd-nspawn, debootstrap; minutes when cold; `make test` sets it)")
	}
	testenv.Root(t, "nspawntest: systemd-nspawn")
	testenv.Tool(t, "systemd-nspawn")
	testenv.Tool(t, "debootstrap")
	daemon := Ours
	if d := os.Getenv("RPCBIND_NSPAWN_DAEMON"); d != "" {
		daemon = Daemon(d)
	}
	if daemon != Ours && daemon != Reference {
		t.Fatalf("RPCBIND_NSPAWN_DAEMON=%q, want ours or reference", daemon)
	}
	units := Units(envOr("RPCBIND_NSPAWN_UNITS", string(OurUnits)))
	if units != OurUnits && units != DebianUnits {
		t.Fatalf("RPCBIND_NSPAWN_UNITS=%q, want ours or debian", units)
	}
	cache := envOr("RPCBIND_NSPAWN_CACHE", DefaultCache)
	mirror := envOr("RPCBIND_NSPAWN_MIRROR", DefaultMirror)
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	start := time.Now()
	if err := EnsureBase(ctx, cache, mirror, t.Logf); err != nil {
		t.Fatal(err)
	}
	t.Logf("base tree %s ready in %v", cache, time.Since(start).Round(time.Millisecond))

	work, err := os.MkdirTemp("/var/tmp", "rpcbind-nspawn-run-") // overlayfs upper: not on tmpfs t.TempDir may be
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(work)
	r, err := Boot(ctx, Config{Base: cache, Work: work, Repo: repo, Daemon: daemon, Units: units, Timeout: 3 * time.Minute})
	if r != nil {
		t.Logf("daemon=%s units=%s boot+checks+poweroff: %v", daemon, units, r.Elapsed.Round(time.Millisecond))
	}
	if err != nil || !r.Passed {
		if r != nil {
			t.Logf("e2e transcript:\n%s", r.Log)
			t.Logf("console (tail):\n%s", tail([]byte(r.Console), 60))
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Fatalf("daemon=%s units=%s: first failed check: %s", daemon, units, r.Failed)
	}
	if testing.Verbose() {
		t.Logf("e2e transcript:\n%s", r.Log)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
