package nspawntest

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

//go:embed e2e.sh
var e2eScript []byte

//go:embed deb.sh
var debScript []byte

//go:embed lib.sh
var libScript []byte // sourced by both scripts

// e2eUnit runs e2e.sh once the container has reached multi-user.target.
const e2eUnit = `[Unit]
Description=rpcbind end-to-end checks
After=multi-user.target
[Service]
Type=oneshot
ExecStart=/root/e2e.sh
StandardOutput=journal+console
[Install]
WantedBy=multi-user.target
`

// Defaults. The mirror is not among them: HostMirror takes it from the
// machine's apt sources.
const (
	DefaultCache = "/var/tmp/rpcbind-nspawn-root"
	Suite        = "bookworm"
	Packages     = "systemd,systemd-sysv,dbus,procps,nfs-common,iproute2"
	stampName    = ".rpcbind-nspawn-stamp"
)

// recipe is written to the stamp file: a cache made with another recipe is
// rebuilt.
func recipe(mirror string) string {
	return fmt.Sprintf("debootstrap --variant=minbase --include=%s %s %s\n", Packages, Suite, mirror)
}

// EnsureBase returns dir holding a bootable Debian tree, running debootstrap
// only when the stamp is missing or names another recipe. The tree is built
// in dir+".tmp" and renamed, so an interrupted run leaves no half tree; an
// exclusive lock on dir+".lock" makes concurrent test processes wait for one
// debootstrap instead of racing on the same directories.
func EnsureBase(ctx context.Context, dir, mirror string, logf func(string, ...any)) error {
	lock, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("nspawntest: lock: %w", err)
	}
	defer lock.Close() // releases the lock
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("nspawntest: lock %s: %w", lock.Name(), err)
	}
	want := recipe(mirror)
	if b, err := os.ReadFile(filepath.Join(dir, stampName)); err == nil && string(b) == want {
		return nil
	}
	if _, err := exec.LookPath("debootstrap"); err != nil {
		return fmt.Errorf("nspawntest: debootstrap not installed (apt-get install debootstrap): %w", err)
	}
	tmp := dir + ".tmp"
	os.RemoveAll(tmp)
	logf("nspawntest: %s", strings.TrimSpace(want))
	cmd := exec.CommandContext(ctx, "debootstrap", "--variant=minbase", "--include="+Packages, Suite, tmp, mirror)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nspawntest: debootstrap: %w\n%s", err, tail(out, 40))
	}
	if err := os.WriteFile(filepath.Join(tmp, stampName), []byte(want), 0o644); err != nil {
		return err
	}
	os.RemoveAll(dir)
	return os.Rename(tmp, dir)
}

// Daemon selects the rpcbind binary in the tree.
type Daemon string

const (
	Ours      Daemon = "ours"      // go build ./cmd/rpcbind
	Reference Daemon = "reference" // Debian's rpcbind 1.2.6, as debootstrap installed it
)

// Units selects the unit files in the tree.
type Units string

const (
	OurUnits    Units = "ours"   // systemd/rpcbind.{service,socket,tmpfiles,sysusers}
	DebianUnits Units = "debian" // as Debian's rpcbind package installed them
)

// Mode selects what a boot tests.
type Mode string

const (
	// InstallMode lays our build over Debian's rpcbind (Install) and runs
	// e2e.sh from stopped, disabled units.
	InstallMode Mode = "install"
	// DebMode leaves Debian's rpcbind installed and enabled, copies the
	// packages in (Config.Files) and runs deb.sh: the swap to openrpcbind
	// with apt and dpkg, the roll-back and an upgrade.
	DebMode Mode = "deb"
)

// Config of one boot.
type Config struct {
	Mode    Mode              // default InstallMode
	Files   map[string]string // DebMode: container path -> host file, copied in before the boot
	Units   Units             // which unit files
	Base    string            // EnsureBase's tree, used read-only (overlay lower dir)
	Work    string            // scratch: overlay upper/work/merged dirs
	Repo    string            // repository root, for go build and the unit files
	Daemon  Daemon            // which binary
	Timeout time.Duration     // whole boot, checks and poweroff
}

// Result of one boot.
type Result struct {
	Passed  bool
	Failed  string        // first failed check
	Log     string        // e2e.sh transcript (diagnostics included on failure)
	Console string        // systemd-nspawn output
	Elapsed time.Duration // boot to poweroff
}

// Install lays our build over the tree. With daemon Ours and OurUnits it
// runs the real `make install DESTDIR=dest` (what an admin runs: daemon,
// rpcinfo, units, tmpfiles, sysusers, man pages at Debian's paths), unless
// RPCBIND_NSPAWN_INSTALL=copy asks for the copy below. Otherwise, and with
// copy, it copies the files itself: the daemon at /usr/sbin/rpcbind (=
// /sbin/rpcbind on merged-/usr, the path Debian's unit runs), the unit
// files, tmpfiles and sysusers at Debian's paths. With daemon Reference
// the tree's own binary stays; with DebianUnits the tree's unit files and
// man page stay.
func Install(ctx context.Context, repo, dest string, daemon Daemon, units Units) error {
	if os.Getenv("RPCBIND_NSPAWN_INSTALL") != "copy" && daemon == Ours && units == OurUnits {
		cmd := exec.CommandContext(ctx, "make", "install", "DESTDIR="+dest)
		cmd.Dir = repo
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("nspawntest: make install: %w\n%s", err, out)
		}
		return nil
	}
	if daemon == Ours {
		bin := filepath.Join(dest, "usr/sbin/rpcbind")
		os.Remove(bin) // may be the reference binary, or /sbin's target
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin, "./cmd/rpcbind")
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("nspawntest: go build ./cmd/rpcbind: %w\n%s", err, out)
		}
	}
	if units == DebianUnits {
		return nil
	}
	files := []struct {
		src, dst string
		mode     os.FileMode
	}{
		{"systemd/rpcbind.service", "usr/lib/systemd/system/rpcbind.service", 0o644},
		{"systemd/rpcbind.socket", "usr/lib/systemd/system/rpcbind.socket", 0o644},
		{"systemd/rpcbind.tmpfiles", "usr/lib/tmpfiles.d/rpcbind.conf", 0o644},
		{"systemd/rpcbind.sysusers", "usr/lib/sysusers.d/rpcbind.conf", 0o644},
		{"cmd/rpcbind/rpcbind.8", "usr/share/man/man8/rpcbind.8", 0o644},
	}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(repo, f.src))
		if err != nil {
			return fmt.Errorf("nspawntest: install: %w", err)
		}
		dst := filepath.Join(dest, f.dst)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		os.Remove(dst) // never write through into the overlay's lower file
		if err := os.WriteFile(dst, b, f.mode); err != nil {
			return fmt.Errorf("nspawntest: install: %w", err)
		}
	}
	// Debian ships the man page compressed; ours replaces it.
	os.Remove(filepath.Join(dest, "usr/share/man/man8/rpcbind.8.gz"))
	return nil
}

// Boot runs one end-to-end boot: overlay over the base tree, install,
// prepare the checks, systemd-nspawn --boot, collect the transcript.
func Boot(ctx context.Context, cfg Config) (*Result, error) {
	upper, work, merged := filepath.Join(cfg.Work, "upper"), filepath.Join(cfg.Work, "work"), filepath.Join(cfg.Work, "merged")
	for _, d := range []string{upper, work, merged} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	opts := "lowerdir=" + cfg.Base + ",upperdir=" + upper + ",workdir=" + work
	if err := syscall.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		return nil, fmt.Errorf("nspawntest: mount overlay on %s: %w", merged, err)
	}
	defer syscall.Unmount(merged, syscall.MNT_DETACH)

	script, label, disable := e2eScript, fmt.Sprintf("daemon=%s units=%s", cfg.Daemon, cfg.Units), true
	if cfg.Mode == DebMode {
		script, label, disable = debScript, "deb", false
		if err := copyIn(merged, cfg.Files); err != nil {
			return nil, err
		}
	} else if err := Install(ctx, cfg.Repo, merged, cfg.Daemon, cfg.Units); err != nil {
		return nil, err
	}
	if err := prepare(ctx, merged, script, label, disable); err != nil {
		return nil, err
	}

	bctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	cmd := exec.CommandContext(bctx, "systemd-nspawn", "--boot", "--private-network", "--register=no",
		"--keep-unit", "--console=pipe", "-D", merged)
	// On timeout ask nspawn for an orderly container shutdown first.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 20 * time.Second
	var console strings.Builder
	cmd.Stdout, cmd.Stderr = &console, &console
	start := time.Now()
	runErr := cmd.Run()
	r := &Result{Console: console.String(), Elapsed: time.Since(start)}

	// The overlay's upper dir has what the container wrote.
	if b, err := os.ReadFile(filepath.Join(upper, "root/e2e.log")); err == nil {
		r.Log = string(b)
	}
	res, err := os.ReadFile(filepath.Join(upper, "root/e2e.result"))
	switch {
	case errors.Is(bctx.Err(), context.DeadlineExceeded):
		return r, fmt.Errorf("nspawntest: container did not finish within %v", cfg.Timeout)
	case err != nil:
		return r, fmt.Errorf("nspawntest: no result from the container (nspawn: %v)", runErr)
	}
	r.Failed = strings.TrimSpace(string(res))
	r.Passed = r.Failed == "PASS"
	if r.Passed {
		r.Failed = ""
	}
	return r, nil
}

// prepare masks console-getty.service, optionally disables what Debian
// enabled at install time (so that the checks start from stopped units), and
// installs the check script and its unit. Without a terminal the console
// getty keeps copies of the socket unit's descriptors, and a restarted
// rpcbind.socket then fails with "Address already in use".
func prepare(ctx context.Context, root string, script []byte, label string, disable bool) error {
	if disable {
		out, err := exec.CommandContext(ctx, "systemctl", "--root="+root, "disable",
			"rpcbind.service", "rpcbind.socket", "nfs-client.target").CombinedOutput()
		if err != nil {
			return fmt.Errorf("nspawntest: systemctl --root disable: %w\n%s", err, out)
		}
	}
	if out, err := exec.CommandContext(ctx, "systemctl", "--root="+root, "mask",
		"console-getty.service").CombinedOutput(); err != nil {
		return fmt.Errorf("nspawntest: systemctl --root mask: %w\n%s", err, out)
	}
	write := func(name string, b []byte, mode os.FileMode) error {
		p := filepath.Join(root, name)
		os.Remove(p)
		return os.WriteFile(p, b, mode)
	}
	if err := write("root/lib.sh", libScript, 0o644); err != nil {
		return err
	}
	if err := write("root/e2e.sh", script, 0o755); err != nil {
		return err
	}
	if err := write("root/e2e.daemon", []byte(label+"\n"), 0o644); err != nil {
		return err
	}
	if err := write("etc/systemd/system/e2e.service", []byte(e2eUnit), 0o644); err != nil {
		return err
	}
	wants := filepath.Join(root, "etc/systemd/system/multi-user.target.wants")
	if err := os.MkdirAll(wants, 0o755); err != nil {
		return err
	}
	return os.Symlink("/etc/systemd/system/e2e.service", filepath.Join(wants, "e2e.service"))
}

// copyIn copies host files into the container tree, keeping their modes.
func copyIn(root string, files map[string]string) error {
	for dst, src := range files {
		b, err := os.ReadFile(src)
		if err != nil {
			return fmt.Errorf("nspawntest: copy in: %w", err)
		}
		st, err := os.Stat(src)
		if err != nil {
			return fmt.Errorf("nspawntest: copy in: %w", err)
		}
		p := filepath.Join(root, dst)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		os.Remove(p)
		if err := os.WriteFile(p, b, st.Mode().Perm()); err != nil {
			return fmt.Errorf("nspawntest: copy in: %w", err)
		}
	}
	return nil
}

func tail(b []byte, lines int) string {
	s := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(s) > lines {
		s = s[len(s)-lines:]
	}
	return strings.Join(s, "\n")
}
