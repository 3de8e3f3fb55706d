package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/openrpcbind/rpcbind/internal/nstest"
)

// envCgoBin passes the cgo build of the daemon to the namespace children.
const envCgoBin = "RPCBIND_TEST_CGO_BIN"

var (
	cgoOnce sync.Once
	cgoErr  error
)

// cgoBinary builds cmd/rpcbind as a plain `go build` does where gcc is
// installed: with cgo, so syscall.AllThreadsSyscall is unavailable and the
// privilege drop must take its other path.
func cgoBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv(envCgoBin); p != "" {
		return p
	}
	binary(t) // creates buildDir
	p := buildDir + "/rpcbind-cgo"
	cgoOnce.Do(func() {
		cmd := exec.Command("go", "build", "-o", p, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			cgoErr = fmt.Errorf("go build (cgo): %v\n%s", err, out)
			return
		}
		// A build that silently fell back to no cgo would test nothing.
		out, err := exec.Command("go", "version", "-m", p).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "CGO_ENABLED=1") {
			cgoErr = fmt.Errorf("%s is not a cgo build: %v\n%s", p, err, out)
		}
	})
	if cgoErr != nil {
		t.Fatal(cgoErr)
	}
	os.Setenv(envCgoBin, p)
	return p
}

// builds are the two ways the daemon can be built: `make build`
// (CGO_ENABLED=0) and a plain `go build` with gcc present (cgo).
func builds(t *testing.T) map[string]string {
	return map[string]string{"nocgo": binary(t), "cgo": cgoBinary(t)}
}

// taskStatus reads /proc/PID/task/*/status: one map per thread id.
func taskStatus(t *testing.T, pid int) map[string]map[string]string {
	t.Helper()
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]string{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name(), "status"))
		if err != nil {
			continue // exited meanwhile
		}
		m := map[string]string{}
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok {
				m[k] = strings.Join(strings.Fields(v), " ")
			}
		}
		out[e.Name()] = m
	}
	return out
}

// TestPrivilegeDropEveryThread: after the drop, every thread of the daemon
// — not only the main one — has empty CapInh/CapPrm/CapEff/CapBnd/CapAmb,
// no_new_privs and the unprivileged uid, in both builds (issue 11 item 5:
// with cgo, 7 of 8 threads kept the bounding set and no_new_privs unset).
func TestPrivilegeDropEveryThread(t *testing.T) {
	for name, bin := range builds(t) {
		t.Run(name, func(t *testing.T) {
			if !nstest.Enter(t) {
				return
			}
			state := "/run/privs-state"
			d := nstest.StartDaemon(t, bin, "-f", "-w", "--user=nobody", "--state-dir="+state)
			pid := d.Cmd.Process.Pid
			nullCall(t, "unix", nstest.SocketPath) // served: the drop is over
			nullCall(t, "tcp", "127.0.0.1:111")
			nullCall(t, "udp", "127.0.0.1:111")
			tasks := taskStatus(t, pid)
			if len(tasks) < 2 {
				t.Fatalf("%d threads: the test needs a multi-threaded daemon", len(tasks))
			}
			for tid, st := range tasks {
				for _, k := range []string{"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"} {
					if st[k] != "0000000000000000" {
						t.Errorf("thread %s/%d: %s = %s after the drop", tid, len(tasks), k, st[k])
					}
				}
				if st["NoNewPrivs"] != "1" || st["Uid"] != "65534 65534 65534 65534" ||
					st["Gid"] != "65534 65534 65534 65534" || st["Groups"] != "" {
					t.Errorf("thread %s: NoNewPrivs %q Uid %q Gid %q Groups %q", tid,
						st["NoNewPrivs"], st["Uid"], st["Gid"], st["Groups"])
				}
			}
			t.Logf("%s: %d threads checked", name, len(tasks))
			if err := d.Stop(syscall.SIGTERM); err != nil {
				t.Fatalf("stop: %v", err)
			}
			fi, err := os.Stat(filepath.Join(state, "rpcbind.xdr"))
			if err != nil {
				t.Fatalf("state file after SIGTERM: %v", err)
			}
			if st := fi.Sys().(*syscall.Stat_t); st.Uid != 65534 {
				t.Errorf("rpcbind.xdr owned by %d, want 65534", st.Uid)
			}
			// The same daemon, detached: the readiness pipe and the lock
			// survive the drop too.
			t.Cleanup(func() {
				if p := findProcess(t, bin); p != 0 {
					syscall.Kill(p, syscall.SIGKILL)
				}
			})
			if got := runBin(t, nil, bin, "--user=nobody", "--state-dir="+state); got.code != 0 || got.stderr != "" {
				t.Fatalf("detached start: %+v", got)
			}
			nullCall(t, "unix", nstest.SocketPath)
			if got := runBin(t, nil, bin, "-f"); got.code != 1 || !strings.Contains(got.stderr, "another rpcbind is already running") {
				t.Errorf("lock not held by the detached, dropped daemon: %+v", got)
			}
			p := findProcess(t, bin)
			for tid, st := range taskStatus(t, p) {
				if st["CapBnd"] != "0000000000000000" || st["NoNewPrivs"] != "1" {
					t.Errorf("detached, thread %s: CapBnd %s NoNewPrivs %s", tid, st["CapBnd"], st["NoNewPrivs"])
				}
			}
			syscall.Kill(p, syscall.SIGTERM)
			deadline := time.Now().Add(10 * time.Second)
			for findProcess(t, bin) != 0 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

// TestPrivilegeDropFailsClosed: when the bounding set cannot be emptied —
// started without CAP_SETPCAP in its bounding set, as the shipped unit's
// CapabilityBoundingSet= did (CapBnd stayed 0x4c1) — the daemon refuses to
// start, exit 1, saying why, in both builds.
func TestPrivilegeDropFailsClosed(t *testing.T) {
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Fatal("setpriv (util-linux) not installed")
	}
	for name, bin := range builds(t) {
		t.Run(name, func(t *testing.T) {
			if !nstest.Enter(t) {
				return
			}
			got := runBin(t, nil, setpriv, "--bounding-set", "-setpcap", "--", bin, "-f", "--user=nobody", "--state-dir=/run/privs-state")
			if got.code != 1 || !strings.Contains(got.stderr, "cannot drop privileges: cannot empty the capability bounding set") ||
				!strings.Contains(got.stderr, "CAP_SETPCAP") {
				t.Errorf("started without CAP_SETPCAP: %+v, want exit 1 and the reason", got)
			}
			if _, err := os.Stat(nstest.SocketPath); err == nil {
				t.Error("the refused daemon left its socket")
			}
		})
	}
}
