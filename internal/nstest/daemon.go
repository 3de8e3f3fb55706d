package nstest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// StartTimeout bounds how long StartDaemon waits for a daemon's sockets.
const StartTimeout = 15 * time.Second

// stopTimeout is how long Stop and the cleanup wait before SIGKILL.
const stopTimeout = 10 * time.Second

// Daemon is a process started by Start or StartDaemon. It is killed when
// the test ends; its stdout and stderr go to the test log, prefixed with its
// name.
type Daemon struct {
	// Name prefixes the process's lines in the test log. It is fixed when
	// the process starts (StartNamed, StartDaemonNamed): the output
	// goroutine reads its own copy, so setting Name later changes only
	// what the caller reads back.
	Name string
	Cmd  *exec.Cmd

	t      testing.TB
	done   chan struct{} // closed when the process has exited and output is drained
	err    error         // the process's exit status, valid after done
	mu     sync.Mutex
	output bytes.Buffer
}

// Start starts path with args and returns at once, named after path's
// base name. The process is sent SIGTERM, then SIGKILL, when the test ends.
func Start(t testing.TB, path string, args ...string) *Daemon {
	t.Helper()
	return StartNamed(t, filepath.Base(path), path, args...)
}

// StartNamed is Start with the name that prefixes the process's output in
// the test log (e.g. "reference" or "ours" for two rpcbinds).
func StartNamed(t testing.TB, name, path string, args ...string) *Daemon {
	t.Helper()
	d := &Daemon{Name: name, t: t, done: make(chan struct{})}
	d.Cmd = exec.Command(path, args...)
	d.Cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	d.Cmd.Stdout = pw
	d.Cmd.Stderr = pw
	if err := d.Cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		t.Fatalf("nstest: start %s: %v", path, err)
	}
	pw.Close()
	t.Logf("nstest: started %s %s (pid %d)", path, strings.Join(args, " "), d.Cmd.Process.Pid)
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 1<<20)
		for sc.Scan() {
			d.mu.Lock()
			d.output.WriteString(sc.Text() + "\n")
			d.mu.Unlock()
			// name, never d.Name: callers may still assign it.
			fmt.Fprintf(t.Output(), "[%s] %s\n", name, sc.Text())
		}
		io.Copy(io.Discard, pr)
		pr.Close()
	}()
	go func() {
		d.err = d.Cmd.Wait()
		<-copied
		close(d.done)
	}()
	t.Cleanup(func() {
		if d.Exited() {
			return
		}
		if err := d.Stop(syscall.SIGTERM); err != nil {
			t.Logf("nstest: %s at cleanup: %v", d.Name, err)
		}
	})
	return d
}

// StartDaemon starts an rpcbind (ours or the reference) and waits until it
// is reachable: /run/rpcbind.sock exists, 127.0.0.1:111 accepts TCP, UDP
// port 111 is bound, and so are the IPv6 ports when the namespace has IPv6.
// No RPC is sent, so the daemon's statistics stay untouched.
func StartDaemon(t testing.TB, path string, args ...string) *Daemon {
	t.Helper()
	return StartDaemonNamed(t, filepath.Base(path), path, args...)
}

// StartDaemonNamed is StartDaemon with the name that prefixes the daemon's
// output in the test log.
func StartDaemonNamed(t testing.TB, name, path string, args ...string) *Daemon {
	t.Helper()
	d := StartNamed(t, name, path, args...)
	v6 := ipv6Enabled()
	d.WaitUntil(StartTimeout, "rpcbind sockets", func() bool {
		if _, err := os.Stat(SocketPath); err != nil {
			return false
		}
		if !portBound("/proc/net/udp", 111, false) || !portBound("/proc/net/tcp", 111, true) {
			return false
		}
		if v6 && (!portBound("/proc/net/udp6", 111, false) || !portBound("/proc/net/tcp6", 111, true)) {
			return false
		}
		c, err := net.DialTimeout("tcp", "127.0.0.1:111", time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	return d
}

// WaitUntil polls cond every 10ms until it holds, failing the test after
// timeout or as soon as the daemon exits.
func (d *Daemon) WaitUntil(timeout time.Duration, what string, cond func() bool) {
	d.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if d.Exited() {
			d.t.Fatalf("nstest: %s exited (%v) before %s", d.Name, d.err, what)
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("nstest: %s: no %s after %v", d.Name, what, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Exited reports whether the process has exited.
func (d *Daemon) Exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// Stop sends sig and waits for the process to exit (SIGKILL after 10s). It
// returns the exit status: nil for exit 0.
func (d *Daemon) Stop(sig os.Signal) error {
	if !d.Exited() {
		if err := d.Cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
			return err
		}
		select {
		case <-d.done:
		case <-time.After(stopTimeout):
			d.Cmd.Process.Kill()
			<-d.done
			return fmt.Errorf("nstest: %s ignored %v for %v; killed", d.Name, sig, stopTimeout)
		}
	}
	return d.err
}

// Wait waits for the process to exit and returns its exit status.
func (d *Daemon) Wait() error {
	<-d.done
	return d.err
}

// Output returns what the process has written to stdout and stderr so far.
func (d *Daemon) Output() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.output.String()
}

// ipv6Enabled reports whether lo has ::1 (IPv6 may be disabled by sysctl).
func ipv6Enabled() bool {
	b, err := os.ReadFile("/proc/net/if_inet6")
	return err == nil && bytes.Contains(b, []byte("00000000000000000000000000000001"))
}

// portBound scans a /proc/net/{tcp,udp}[6] table for a local port; listen
// restricts TCP to sockets in state LISTEN (0A).
func portBound(table string, port int, listen bool) bool {
	b, err := os.ReadFile(table)
	if err != nil {
		return false
	}
	want := fmt.Sprintf(":%04X", port)
	lines := strings.Split(string(b), "\n")
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) < 4 || !strings.HasSuffix(f[1], want) {
			continue
		}
		if !listen || f[3] == "0A" {
			return true
		}
	}
	return false
}

// StartLinePrefix begins the one line our daemon logs when it starts
// serving (cmd/rpcbind's startLine, checked there to agree). Debian's C
// daemon logs nothing at start.
const StartLinePrefix = "rpcbind: serving "

// WithoutStartLines returns a daemon's output without our start lines
// (whole lines beginning with StartLinePrefix) and how many it removed.
// Comparisons of our daemon's output with the reference's remove exactly
// these and nothing else; callers check the count (one per start of ours,
// none for the reference).
func WithoutStartLines(out string) (string, int) {
	if !strings.Contains(out, StartLinePrefix) {
		return out, 0
	}
	var b strings.Builder
	n := 0
	for _, line := range strings.SplitAfter(out, "\n") {
		if strings.HasPrefix(line, StartLinePrefix) && strings.HasSuffix(line, "\n") {
			n++
			continue
		}
		b.WriteString(line)
	}
	return b.String(), n
}
