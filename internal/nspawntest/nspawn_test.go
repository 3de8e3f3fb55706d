package nspawntest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openrpcbind/rpcbind/internal/testenv"
)

// TestSystemdE2E boots a Debian bookworm container under systemd and runs
// e2e.sh against the installed rpcbind. Opt-in: RPCBIND_NSPAWN=1.
// RPCBIND_NSPAWN_DAEMON=reference|ours (default ours),
// RPCBIND_NSPAWN_UNITS=ours|debian (default ours); RPCBIND_NSPAWN_CACHE
// and RPCBIND_NSPAWN_MIRROR override the cached tree and the mirror (by
// default the machine's apt source for bookworm).
func TestSystemdE2E(t *testing.T) {
	needNspawn(t)
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
	repo, cache := setup(t)
	boot(t, Config{Base: cache, Repo: repo, Daemon: daemon, Units: units, Timeout: 3 * time.Minute})
}

// TestDebSwap boots bookworm with nfs-common, Debian's rpcbind and
// rpc-statd running, copies in `make deb`'s package, a second build of it
// with a higher version and Debian's rpcbind package (apt-get download on
// the host), and runs deb.sh: apt swaps Debian's rpcbind for openrpcbind and
// back, openrpcbind upgrades itself, dpkg -i swaps without apt, and every
// step keeps the registrations and the files. Opt-in: RPCBIND_NSPAWN=1.
// The figures (registrations before and after each step) are logged.
func TestDebSwap(t *testing.T) {
	needNspawn(t)
	testenv.Tool(t, "dpkg-deb")
	testenv.Tool(t, "apt-get")
	repo, cache := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dir := t.TempDir()

	// make deb, as an admin runs it, then a newer build of the same tree.
	ours := makeDeb(ctx, t, repo, filepath.Join(dir, "ours"), "")
	version := strings.SplitN(filepath.Base(ours), "_", 3)[1]
	next := makeDeb(ctx, t, repo, filepath.Join(dir, "next"), version+"+next1")

	// Debian's own package, fetched with the host's apt configuration.
	dl := filepath.Join(dir, "debian")
	if err := os.MkdirAll(dl, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, "apt-get", "download", "rpcbind")
	cmd.Dir = dl
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("apt-get download rpcbind: %v\n%s", err, out)
	}
	debian, _ := filepath.Glob(filepath.Join(dl, "rpcbind_*.deb"))
	if len(debian) != 1 {
		t.Fatalf("apt-get download rpcbind left %v", debian)
	}

	rpcreg := filepath.Join(dir, "rpcreg")
	cmd = exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", rpcreg, "./internal/nspawntest/rpcreg")
	cmd.Dir, cmd.Env = repo, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build rpcreg: %v\n%s", err, out)
	}
	t.Logf("packages: %s, %s, %s", filepath.Base(ours), filepath.Base(next), filepath.Base(debian[0]))
	files := map[string]string{
		"root/debs/ours/" + filepath.Base(ours):        ours,
		"root/debs/next/" + filepath.Base(next):        next,
		"root/debs/debian/" + filepath.Base(debian[0]): debian[0],
		"root/rpcreg": rpcreg,
		// netbase's /etc/services, which every real install has (priority
		// important) and debootstrap's minbase lacks: without it Debian's
		// rpcinfo fails "RPC: Unknown host" on any host argument.
		"etc/services": "/etc/services",
	}
	boot(t, Config{Mode: DebMode, Files: files, Base: cache, Repo: repo, Timeout: 5 * time.Minute})
}

// makeDeb runs `make deb BIN=out` (VERSION=version unless empty) over a
// stale package left in out, and returns the one package it leaves, after
// checking the relation fields nfs-common and dpkg depend on.
func makeDeb(ctx context.Context, t *testing.T, repo, out, version string) string {
	t.Helper()
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(out, "openrpcbind_0.0~stale_amd64.deb")
	if err := os.WriteFile(stale, []byte("stale"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"deb", "BIN=" + out}
	if version != "" {
		args = append(args, "VERSION="+version)
	}
	cmd := exec.CommandContext(ctx, "make", args...)
	cmd.Dir = repo
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make deb: %v\n%s", err, b)
	}
	debs, _ := filepath.Glob(filepath.Join(out, "openrpcbind_*.deb"))
	if len(debs) != 1 {
		t.Fatalf("make deb left %v in %s, want exactly one openrpcbind_*.deb", debs, out)
	}
	want := map[string]string{
		"Package":   "openrpcbind",
		"Provides":  "rpcbind", // nfs-common's Depends; not portmap: rpcbind conflicts with it
		"Conflicts": "rpcbind",
		"Replaces":  "rpcbind",
	}
	for field, v := range want {
		got, err := exec.CommandContext(ctx, "dpkg-deb", "-f", debs[0], field).Output()
		if err != nil || strings.TrimSpace(string(got)) != v {
			t.Errorf("%s: %s: %q (%v), want %q", filepath.Base(debs[0]), field, got, err, v)
		}
	}
	return debs[0]
}

func needNspawn(t *testing.T) {
	t.Helper()
	if os.Getenv("RPCBIND_NSPAWN") != "1" {
		testenv.Missing(t, "the opt-in RPCBIND_NSPAWN=1 (boots a Debian container: root, systemd-nspawn, debootstrap; minutes when cold; `make test` sets it)")
	}
	testenv.Root(t, "nspawntest: systemd-nspawn")
	testenv.Tool(t, "systemd-nspawn")
	testenv.Tool(t, "debootstrap")
}

// setup returns the repository root and a ready base tree.
func setup(t *testing.T) (repo, cache string) {
	t.Helper()
	cache = envOr("RPCBIND_NSPAWN_CACHE", DefaultCache)
	mirror := os.Getenv("RPCBIND_NSPAWN_MIRROR")
	if mirror == "" {
		var err error
		if mirror, err = HostMirror(Suite); err != nil {
			t.Fatal(err)
		}
	}
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
	t.Logf("base tree %s (mirror %s) ready in %v", cache, mirror, time.Since(start).Round(time.Millisecond))
	return repo, cache
}

// boot runs one container and fails the test on its first failed check.
// Lines of the transcript that start with "figures" are always logged.
func boot(t *testing.T, cfg Config) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Timeout+time.Minute)
	defer cancel()
	work, err := os.MkdirTemp("/var/tmp", "rpcbind-nspawn-run-") // overlayfs upper: not on tmpfs t.TempDir may be
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(work)
	cfg.Work = work
	label := "mode=deb"
	if cfg.Mode != DebMode {
		label = "daemon=" + string(cfg.Daemon) + " units=" + string(cfg.Units)
	}
	r, err := Boot(ctx, cfg)
	if r != nil {
		t.Logf("%s boot+checks+poweroff: %v", label, r.Elapsed.Round(time.Millisecond))
		for _, line := range strings.Split(r.Log, "\n") {
			if strings.HasPrefix(line, "figures") {
				t.Log(line)
			}
		}
	}
	if err != nil || !r.Passed {
		if r != nil {
			t.Logf("e2e transcript:\n%s", r.Log)
			t.Logf("console (tail):\n%s", tail([]byte(r.Console), 60))
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Fatalf("%s: first failed check: %s", label, r.Failed)
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
