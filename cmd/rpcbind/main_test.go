package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/openrpcbind/rpcbind/internal/nstest"
	"github.com/openrpcbind/rpcbind/internal/rpc"
)

// envBin passes the daemon built for the tests to nstest's namespace
// children (and lets a developer test another build).
const envBin = "RPCBIND_TEST_BIN"

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// binary builds cmd/rpcbind without cgo, as `make build` does (the privilege
// drop then changes every thread in place; privs_test.go tests cgo too),
// into a directory uid 65534 can execute from.
func binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(envBin); p != "" {
		return p
	}
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "rpcbind-test-")
		if buildErr != nil {
			return
		}
		os.Chmod(buildDir, 0o755)
		cmd := exec.Command("go", "build", "-o", buildDir+"/rpcbind", ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	p := buildDir + "/rpcbind"
	os.Setenv(envBin, p)
	return p
}

type result struct {
	stdout, stderr string
	code           int
}

func runBin(t *testing.T, cred *syscall.Credential, path string, args ...string) result {
	t.Helper()
	cmd := exec.Command(path, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	done := make(chan struct{})
	timer := time.AfterFunc(30*time.Second, func() { // a hung daemon must not hang the test
		cmd.Process.Kill()
	})
	defer timer.Stop()
	err := cmd.Run()
	close(done)
	r := result{stdout: o.String(), stderr: e.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("%s %q: %v", path, args, err)
	}
	return r
}

// Bad options: getopt's line with argv[0], then the usage line, exit 1 —
// byte for byte as Debian's binary. The reference runs only inside private
// namespaces, in case an option list ever starts it.
func TestBadOptionsMatchReference(t *testing.T) {
	bin := binary(t)
	if !nstest.Enter(t) {
		return
	}
	bad := [][]string{{"-x"}, {"-L"}, {"-fx"}, {"-h"}, {"-wf", "-h"}, {"-dZ"}, {"-v"}, {"-fv"}}
	ref := nstest.ReferenceRpcbind(t)
	for _, args := range bad {
		got := runBin(t, nil, bin, args...)
		got.stderr = strings.ReplaceAll(got.stderr, bin+":", "ARGV0:")
		if got.code != 1 || !strings.HasSuffix(got.stderr, "usage: rpcbind [-adhilswfr]\n") || got.stdout != "" {
			t.Errorf("%q: %+v", args, got)
		}
		want := runBin(t, nil, ref, args...)
		want.stderr = strings.ReplaceAll(want.stderr, ref+":", "ARGV0:")
		if got != want {
			t.Errorf("%q:\n ours %+v\n ref  %+v", args, got, want)
		}
	}
	// Our long options fail the GNU way (the reference has none).
	got := runBin(t, nil, bin, "--bogus")
	if want := bin + ": unrecognized option '--bogus'\nusage: rpcbind [-adhilswfr]\n"; got.stderr != want || got.code != 1 {
		t.Errorf("--bogus: %+v", got)
	}
	if got := runBin(t, nil, bin, "--help"); got.code != 0 || !strings.Contains(got.stdout, "--state-dir") {
		t.Errorf("--help: %+v", got)
	}
	// --version: the reference's version, then ours (the Makefile's
	// -X main.version, else the VCS stamp or "devel"), then Go's.
	if got := runBin(t, nil, bin, "--version"); got.code != 0 || got.stderr != "" ||
		!regexp.MustCompile(`^rpcbind 1\.2\.6 \(openrpcbind [0-9A-Za-z.+~-]+, go[0-9][^)]*\)\n$`).MatchString(got.stdout) {
		t.Errorf("--version: %+v", got)
	}
}

// As a user other than root, exit 1 with the reference's words: the lock
// is tried first, so a root-owned /run refuses with the lock's error; with
// a world-writable /run, "Sorry. You are not superuser".
func TestNonRootRefused(t *testing.T) {
	bin := binary(t)
	if !nstest.Enter(t) {
		return
	}
	nobody := &syscall.Credential{Uid: 65534, Gid: 65534}
	ref := nstest.ReferenceRpcbind(t)
	os.Chmod("/run", 0o755)
	for _, want := range []result{
		{stderr: "rpcbind: /run/rpcbind.lock: Permission denied\n", code: 1},
		{stderr: "Sorry. You are not superuser\n", code: 1},
	} {
		for _, b := range []string{bin, ref} {
			if b == "" {
				continue
			}
			os.Remove("/run/rpcbind.lock")
			if got := runBin(t, nobody, b, "-f"); got != want {
				t.Errorf("%s: %+v, want %+v", b, got, want)
			}
		}
		os.Chmod("/run", 0o1777)
	}
	if _, err := os.Stat(nstest.SocketPath); err == nil {
		t.Error("a refused start left a socket")
	}
}

func nullCall(t *testing.T, network, addr string) {
	t.Helper()
	c, err := rpc.Dial(network, addr, rpc.ClientOptions{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("dial %s %s: %v", network, addr, err)
	}
	defer c.Close()
	if res, err := c.Call(context.Background(), 100000, 4, 0, nil, nil); err != nil || len(res) != 0 {
		t.Fatalf("NULL over %s: %v %x", network, err, res)
	}
}

func procStatus(t *testing.T, pid int) map[string]string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			m[k] = strings.Join(strings.Fields(v), " ")
		}
	}
	return m
}

// The foreground daemon: lock contention (with the reference too, which
// shares the lock file), privileges after the drop, ignored signals and a
// clean stop on SIGTERM that writes the state files.
func TestForegroundDaemon(t *testing.T) {
	bin := binary(t)
	if !nstest.Enter(t) {
		return
	}
	d := nstest.StartDaemon(t, bin, "-f")
	nullCall(t, "tcp", "127.0.0.1:111")
	nullCall(t, "udp", "127.0.0.1:111")
	nullCall(t, "unix", nstest.SocketPath)

	lockMsg := result{stderr: "rpcbind: another rpcbind is already running. Aborting\n", code: 1}
	if got := runBin(t, nil, bin, "-f"); got != lockMsg {
		t.Errorf("second daemon: %+v, want %+v", got, lockMsg)
	}
	if got := runBin(t, nil, nstest.ReferenceRpcbind(t), "-f"); got != lockMsg {
		t.Errorf("reference while ours runs: %+v, want %+v", got, lockMsg)
	}

	if fi, err := os.Stat(nstest.SocketPath); err != nil || fi.Mode().Perm() != 0o666 {
		t.Errorf("%s: %v %v, want srw-rw-rw-", nstest.SocketPath, fi.Mode(), err)
	}
	st := procStatus(t, d.Cmd.Process.Pid)
	if st["Uid"] == "0 0 0 0" {
		t.Errorf("still root: Uid %s", st["Uid"])
	}
	for _, k := range []string{"CapPrm", "CapEff", "CapAmb", "CapBnd"} {
		if st[k] != "0000000000000000" {
			t.Errorf("%s = %s after the privilege drop", k, st[k])
		}
	}
	if st["NoNewPrivs"] != "1" || st["Groups"] != "" {
		t.Errorf("NoNewPrivs %q Groups %q", st["NoNewPrivs"], st["Groups"])
	}

	// Ignored signals: had one killed it, the exit status would say so.
	for _, s := range []syscall.Signal{syscall.SIGHUP, syscall.SIGPIPE, syscall.SIGUSR1, syscall.SIGUSR2} {
		d.Cmd.Process.Signal(s)
	}
	nullCall(t, "tcp", "127.0.0.1:111")
	if err := d.Stop(syscall.SIGTERM); err != nil {
		t.Fatalf("stop: %v (want exit 0 after SIGTERM)", err)
	}
	for _, f := range []string{"rpcbind.xdr", "portmap.xdr"} {
		if fi, err := os.Stat(filepath.Join("/run/rpcbind", f)); err != nil || fi.Size() == 0 {
			t.Errorf("state file %s after SIGTERM: %v", f, err)
		}
	}
	// A new daemon starts at once: the lock died with the process and the
	// stale socket file is replaced.
	d2 := nstest.StartDaemon(t, bin, "-f")
	nullCall(t, "unix", nstest.SocketPath)
	if err := d2.Stop(syscall.SIGINT); err != nil {
		t.Fatalf("stop on SIGINT: %v", err)
	}
}

// Without -f the command returns 0 only once the detached daemon serves;
// the daemon runs in its own session.
func TestDetach(t *testing.T) {
	bin := binary(t)
	if !nstest.Enter(t) {
		return
	}
	t.Cleanup(func() { // never leave a detached daemon behind, even on failure
		if pid := findProcess(t, bin); pid != 0 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	if got := runBin(t, nil, bin); got.code != 0 || got.stderr != "" {
		t.Fatalf("detach: %+v", got)
	}
	nullCall(t, "unix", nstest.SocketPath) // ready means serving: no wait
	pid := findProcess(t, bin)
	if pid == 0 {
		t.Fatal("detached daemon not found")
	}
	stat, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	if len(f) < 4 || f[3] != strconv.Itoa(pid) {
		t.Errorf("daemon is not a session leader: %q", stat)
	}
	syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(30 * time.Second)
	for findProcess(t, bin) != 0 {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatal("detached daemon ignored SIGTERM")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A failed start is reported by the parent's exit status.
	if got := runBin(t, nil, bin, "--user=no-such-user-here"); got.code != 1 {
		t.Errorf("detached start as a missing user: %+v, want exit 1", got)
	}
}

func findProcess(t *testing.T, exe string) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if p, err := os.Readlink("/proc/" + e.Name() + "/exe"); err == nil && p == exe {
			if st, err := os.ReadFile("/proc/" + e.Name() + "/stat"); err == nil && !bytes.Contains(st, []byte(") Z")) {
				return pid
			}
		}
	}
	return 0
}
