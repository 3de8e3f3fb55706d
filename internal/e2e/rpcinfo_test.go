package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/openrpcbind/rpcbind/internal/nstest"
)

// envOurRpcinfo passes the path of our rpcinfo, built outside the
// namespaces, to the namespace child.
const envOurRpcinfo = "E2E_OUR_RPCINFO"

// buildRpcinfo compiles ./cmd/rpcinfo into t.TempDir() once per test, in
// the parent (the child inherits the path through the environment).
func buildRpcinfo(t *testing.T) {
	t.Helper()
	if nstest.Inside() || os.Geteuid() != 0 {
		return
	}
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	// Not t.TempDir(): its parent is private, and steps run as nobody.
	dir, err := os.MkdirTemp("", "rpcinfo-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "rpcinfo")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command(goTool(), append(args, "./cmd/rpcinfo")...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("e2e: go build ./cmd/rpcinfo: %v\n%s", err, out)
	}
	t.Setenv(envOurRpcinfo, bin)
}

// runRpcinfo runs one rpcinfo binary with the words of line, argv[0] being
// "rpcinfo" for both binaries so that getopt's messages match.
func (e *Env) runRpcinfo(t testing.TB, bin, line string) Result {
	t.Helper()
	return e.run(t, line, bin)
}

// compareRpcinfo runs script against every daemon twice, once with the
// reference /usr/sbin/rpcinfo and once with ours, each time on a fresh
// daemon, and fails where our rpcinfo's stdout, stderr or exit status
// differ from the reference rpcinfo's against the same daemon. Lines
// starting with "tirpcclient" drive the daemon and are not compared.
func (e *Env) compareRpcinfo(t *testing.T, script ...string) {
	t.Helper()
	ref := nstest.Need(t, "/usr/sbin/rpcinfo", "/sbin/rpcinfo")
	ours := os.Getenv(envOurRpcinfo)
	if ours == "" {
		t.Fatal("e2e: our rpcinfo was not built")
	}
	for _, impl := range e.Impls {
		t.Run(impl.Name, func(t *testing.T) {
			var outs [2][]Result
			for i, bin := range []string{ref, ours} {
				d := e.Start(t, impl)
				for _, line := range script {
					outs[i] = append(outs[i], e.runRpcinfo(t, bin, line))
				}
				if err := d.Stop(syscall.SIGTERM); err != nil {
					t.Errorf("%s: exit after SIGTERM: %v", impl.Name, err)
				}
			}
			same := 0
			for i, r := range outs[0] {
				if strings.HasPrefix(r.Cmd, "tirpcclient") {
					continue
				}
				if r.Exit == -1 {
					t.Errorf("reference rpcinfo timed out on %q", r.Cmd)
				}
				if got := outs[1][i]; got != r {
					t.Errorf("our rpcinfo differs from the reference against %s:\n%s", impl.Name, resultDiff(r, got))
				} else {
					same++
				}
			}
			t.Logf("against %s: %d commands byte-identical", impl.Name, same)
		})
	}
}

// TestRpcinfoClient compares our rpcinfo with the reference rpcinfo, mode
// by mode (spec §6.3), against both daemons.
func TestRpcinfoClient(t *testing.T) {
	buildRpcinfo(t)
	env, ok := Enter(t)
	if !ok {
		return
	}
	env.compareRpcinfo(t,
		// Dumps, local and remote, with their fallbacks.
		"rpcinfo",
		"rpcinfo -p",
		"rpcinfo -s",
		"rpcinfo 127.0.0.1",
		"rpcinfo -s 127.0.0.1",
		"rpcinfo -p 127.0.0.1",
		"rpcinfo ::1",
		"rpcinfo -s ::1",
		"rpcinfo -p ::1",
		"rpcinfo -T udp 127.0.0.1",
		"rpcinfo -T tcp6 ::1",
		"rpcinfo -T udp6 ::1",
		"rpcinfo -T local 127.0.0.1",
		"rpcinfo -T udp",
		// Address lists.
		"rpcinfo -l 127.0.0.1 100000 4",
		"rpcinfo -l 127.0.0.1 100000 2",
		"rpcinfo -l ::1 100000 3",
		"rpcinfo -l 127.0.0.1 300000 1",
		"rpcinfo -l -T udp 127.0.0.1 portmapper 4",
		// Pings and version discovery.
		"rpcinfo -t 127.0.0.1 100000",
		"rpcinfo -u 127.0.0.1 100000",
		"rpcinfo -u 127.0.0.1 portmapper 2",
		"rpcinfo -u 127.0.0.1 100000 5",
		"rpcinfo -t 127.0.0.1 300000",
		"rpcinfo -t ::1 100000 4",
		"rpcinfo -u ::1 rpcbind",
		"rpcinfo -T tcp 127.0.0.1 100000 2",
		"rpcinfo -T udp 127.0.0.1 100000",
		"rpcinfo -T tcp6 ::1 100000",
		"rpcinfo -T udp6 ::1 100000 4",
		"rpcinfo -T tcp ::1 100000 2",
		"rpcinfo -T local 127.0.0.1 100000 2",
		"rpcinfo -T tcp 127.0.0.1 300000",
		"rpcinfo -n 111 -u 127.0.0.1 100000 2",
		"rpcinfo -n 5 -t 127.0.0.1 100000 2",
		"rpcinfo -a 127.0.0.1.0.111 -T udp 100000 3",
		"rpcinfo -a 127.0.0.1.0.111 -T tcp 100000",
		"rpcinfo -a ::1.0.111 -T tcp6 100000",
		"rpcinfo -a /run/rpcbind.sock -T local 100000",
		"rpcinfo -a 127.0.0.1.0.112 -T tcp 100000 2",
		"rpcinfo -a 127.0.0.1.0.112 -T udp 100000",
		"rpcinfo -u 127.0.0.1 100000 99999999999",
		"rpcinfo -T udp 127.0.0.1 100000 -- -1",
		// Registrations and deletions.
		"tirpcclient set 300000 1 tcp 0.0.0.0.3.232",
		"tirpcclient set 300000 1 udp6 ::.3.232",
		"tirpcclient set 300000 2 udp 0.0.0.0.3.233",
		"tirpcclient pmapset 300001 2 udp 1234",
		"tirpcclient pmapset 300001 3 99 1236",
		"rpcinfo",
		"rpcinfo -s",
		"rpcinfo -p",
		"rpcinfo -l 127.0.0.1 300000 1",
		"rpcinfo -l ::1 300000 1",
		"rpcinfo -t 127.0.0.1 300000 1",
		"rpcinfo -u 127.0.0.1 300000",
		"@nobody rpcinfo -d 300000 1",
		"rpcinfo -d -T udp6 300000 1",
		"rpcinfo -d 300000 1",
		"rpcinfo -d -T foo 300000 2",
		"rpcinfo -d 300001 2",
		"rpcinfo -s",
		// Statistics after all of the above.
		"rpcinfo -m",
		"rpcinfo -m 127.0.0.1",
		// Broadcast: the namespace has no broadcast interface.
		"rpcinfo -b 100000 2",
		"rpcinfo -b foo 2",
		// Bad input.
		"rpcinfo -x",
		"rpcinfo -T",
		"rpcinfo -p -s",
		"rpcinfo -n abc -p",
		"rpcinfo -n 12 -p",
		"rpcinfo 127.0.0.1 100000",
		"rpcinfo -d foo bar",
		"rpcinfo -b 1a 2",
		"rpcinfo -a junk -T udp 1 1",
		"rpcinfo -a 127.0.0.1.0.111 100000",
		"rpcinfo -T foo 127.0.0.1 1",
		"rpcinfo -T foo 127.0.0.1",
		"rpcinfo -T rawip 127.0.0.1 1 1",
		"rpcinfo nosuchhost.invalid",
		"rpcinfo -l 127.0.0.1 1",
		"rpcinfo -s a b",
	)
}
