package nstest

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/openrpcbind/rpcbind/internal/testenv"
)

// envChild marks a re-executed test binary; its value is the name of the test
// the child runs inside the namespaces.
const envChild = "NSTEST_CHILD"

// RunDir is where the tmpfs goes; RPCBindDir is Debian's warm-start
// directory (tmpfiles: "D /run/rpcbind 0755 _rpc root").
const (
	RunDir     = "/run"
	RPCBindDir = "/run/rpcbind"
	SocketPath = "/run/rpcbind.sock"
)

var (
	setupOnce sync.Once
	setupErr  error
)

// Inside reports whether this process is a child started by Enter.
func Inside() bool { return os.Getenv(envChild) != "" }

// Enter reports true when the caller runs inside the private namespaces. When
// it runs outside, Enter runs the test again in a child process inside new
// namespaces, fails t if the child fails, skips t if the child skipped, and
// reports false: the caller must return at once.
func Enter(t *testing.T) bool {
	t.Helper()
	if name := os.Getenv(envChild); name != "" {
		if t.Name() != name && !strings.HasPrefix(t.Name(), name+"/") {
			t.Skipf("nstest: this child runs %s only", name)
		}
		setupOnce.Do(func() { setupErr = setup() })
		if setupErr != nil {
			t.Fatalf("nstest: namespace setup: %v", setupErr)
		}
		return true
	}
	testenv.Root(t, "nstest: network and mount namespaces")
	runChild(t)
	return false
}

// runPattern builds a -test.run pattern matching exactly t.Name(), one
// anchored element per subtest level.
func runPattern(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}

func runChild(t *testing.T) {
	t.Helper()
	args := []string{
		"-test.run=" + runPattern(t.Name()),
		"-test.v=true",
		"-test.count=1",
	}
	if deadline, ok := t.Deadline(); ok {
		// Leave the parent a moment to report the child's timeout itself.
		if left := time.Until(deadline) - 5*time.Second; left > 0 {
			args = append(args, "-test.timeout="+left.String())
		}
	}
	if testing.Short() {
		args = append(args, "-test.short=true")
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), envChild+"="+t.Name())
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWNET | syscall.CLONE_NEWNS,
		Pdeathsig:  syscall.SIGKILL,
	}
	pr, pw := io.Pipe()
	cmd.Stdout = pw
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatalf("nstest: start child in namespaces: %v", err)
	}
	var (
		skipped, passed, noTests bool
		lastLog                  string // the child's last log line: a skip's reason
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 1<<20)
		out := t.Output()
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintf(out, "ns| %s\n", line)
			trim := strings.TrimSpace(line)
			switch {
			case strings.HasPrefix(trim, "--- SKIP: "+t.Name()+" "):
				skipped = true
			case strings.HasPrefix(trim, "--- PASS: "+t.Name()+" "):
				passed = true
			case strings.Contains(line, "testing: warning: no tests to run"):
				noTests = true
			case strings.HasPrefix(line, "    ") && !strings.HasPrefix(trim, "---"):
				lastLog = trim
			}
		}
		io.Copy(io.Discard, pr) // a line over 1 MiB: drain so the child never blocks
	}()
	err := cmd.Wait()
	pw.Close()
	<-done
	switch {
	case err != nil:
		t.Fatalf("nstest: child running %s in namespaces failed: %v", t.Name(), err)
	case noTests:
		t.Fatalf("nstest: child ran no test for pattern %q", runPattern(t.Name()))
	case skipped:
		t.Skipf("nstest: skipped inside the namespaces: %s", lastLog)
	case !passed:
		t.Fatalf("nstest: child exited 0 without reporting PASS for %s", t.Name())
	}
}

// setup prepares a fresh child: private mounts, lo up, a tmpfs on /run.
func setup() error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make / rprivate: %w", err)
	}
	if err := loopbackUp(); err != nil {
		return err
	}
	return freshRun()
}

// freshRun mounts an empty tmpfs on /run with Debian's /run/rpcbind.
func freshRun() error {
	if err := mountTmpfs(RunDir, "mode=0755"); err != nil {
		return err
	}
	if err := os.Mkdir(RPCBindDir, 0o755); err != nil {
		return err
	}
	if u, err := user.Lookup("_rpc"); err == nil {
		uid, _ := strconv.Atoi(u.Uid)
		if err := os.Chown(RPCBindDir, uid, 0); err != nil {
			return err
		}
	}
	return os.Mkdir(RunDir+"/lock", 0o755)
}

// loopbackUp sets IFF_UP on lo, which gives it 127.0.0.1/8 and ::1.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket for lo: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("get lo flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("set lo up: %w", err)
	}
	return nil
}

func mountTmpfs(dir, opts string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		return fmt.Errorf("mount tmpfs on %s: %w", dir, err)
	}
	return nil
}

// MountTmpfs mounts an empty tmpfs on dir (created if missing) inside the
// namespaces, e.g. /var/lib/nfs for rpc.statd. It fails t outside them.
func MountTmpfs(t testing.TB, dir string) {
	t.Helper()
	if !Inside() {
		t.Fatalf("nstest: MountTmpfs(%s) outside the namespaces", dir)
	}
	if err := mountTmpfs(dir, "mode=0755"); err != nil {
		t.Fatal(err)
	}
}

// FreshRun replaces /run with a new empty tmpfs (and /run/rpcbind), so that
// the next daemon starts as on a fresh boot. Stop the previous daemon first.
func FreshRun(t testing.TB) {
	t.Helper()
	if !Inside() {
		t.Fatal("nstest: FreshRun outside the namespaces")
	}
	if err := unix.Unmount(RunDir, unix.MNT_DETACH); err != nil {
		t.Fatalf("nstest: unmount %s: %v", RunDir, err)
	}
	if err := freshRun(); err != nil {
		t.Fatalf("nstest: %v", err)
	}
}

// Need returns the path of the first of candidates that is installed (a
// name in $PATH or an executable path); when none is, the test fails, or is
// skipped in a reduced run (internal/testenv).
func Need(t testing.TB, candidates ...string) string {
	t.Helper()
	return testenv.Tool(t, candidates...)
}

// ReferenceRpcbind returns the path of Debian's C rpcbind (package rpcbind).
func ReferenceRpcbind(t testing.TB) string {
	t.Helper()
	return Need(t, "/sbin/rpcbind", "/usr/sbin/rpcbind")
}
